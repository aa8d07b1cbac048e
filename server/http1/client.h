/*
 * The HTTP/1 client (http1/client.c): what talking HTTP/1 to an upstream server takes, apart
 * from any connection. The reverse proxy (handlers/proxy.c) drives it; it knows nothing of the
 * proxy, of sites or of sockets.
 *
 * The head writer (pt_h1_hbuf) writes a request head, or header lines to pass on, into a buffer
 * its caller owns. Whatever goes inside a field goes through pt_h1_put(), which refuses CR, LF
 * and NUL: a line break there would end the field and start another (or another message) at the
 * next reader, whatever the parser before it let through. A refused field marks the whole head
 * as not to be sent (`forbidden`); one that does not fit marks it `overflow`.
 *
 * The response parser (pt_h1_client) reads one response from bytes its caller receives, with
 * llhttp in response mode, strictly, and stops at each event: the final head, a piece of the
 * body, the end of the response. The head's fields stay where they are, as offsets into the
 * caller's buffer. Interim answers (100 Continue, 103 Early Hints) are read and dropped. A
 * response is refused (PT_H1_INVALID, with a reason) for what llhttp refuses in strict mode
 * (bad status line, Transfer-Encoding with Content-Length, a bad chunk, ...) and for what it
 * lets through: obs-fold (http1/fold.h), more than PT_H1_FIELDS_MAX fields, a field that
 * pt_h1_invalid_field() refuses, a status outside 100-599, a transfer coding other than chunked
 * (it would reach the next reader undone), Transfer-Encoding in an HTTP/1.0 response (RFC 9112
 * section 6.1), a 101 to a request that did not ask to upgrade.
 *
 * Ownership: the caller owns the buffer it feeds and the parser's memory (pt_h1_client_size()
 * bytes); nothing is allocated. Errors come back as events. Threading: no shared state.
 */
#ifndef PORTER_SERVER_HTTP1_CLIENT_H
#define PORTER_SERVER_HTTP1_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server/core/str.h"

/* ---- the head writer ---- */

/* A head being written into `buf` (`cap` bytes, the caller's). */
typedef struct pt_h1_hbuf {
    char *buf;
    size_t len, cap;
    bool overflow;  /* it did not fit */
    bool forbidden; /* a field held CR, LF or NUL: the head must not be sent */
} pt_h1_hbuf;

/* Starts an empty head in `buf` (borrowed; `cap` bytes). */
static inline void pt_h1_hbuf_init(pt_h1_hbuf *o, char *buf, size_t cap)
{
    *o = (pt_h1_hbuf){buf, 0, cap, false, false};
}

/* Appends `n` bytes as they are: line ends and fixed text only (no field's content). */
static inline void pt_h1_put_raw(pt_h1_hbuf *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* Appends `n` bytes of a field (a method, a target, a name, a value). If they hold CR, LF or
 * NUL nothing is appended and the head is `forbidden`. */
static inline void pt_h1_put(pt_h1_hbuf *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= '\r' && (c == '\r' || c == '\n' || c == '\0')) {
            o->forbidden = true;
            return;
        }
    }
    pt_h1_put_raw(o, s, n);
}

/* pt_h1_put() of a C string. */
static inline void pt_h1_puts(pt_h1_hbuf *o, const char *s)
{
    pt_h1_put(o, s, strlen(s));
}

/* pt_h1_put_raw() of a string literal. */
#define PT_H1_PUT_LIT(o, lit) pt_h1_put_raw(o, lit, sizeof(lit) - 1)

/* Appends `s` to a request target, percent-encoding what may not stand in a path: controls,
 * space, bytes above 0x7e and "#%<>?\^`{|}. */
void pt_h1_put_path(pt_h1_hbuf *o, pt_str s);

/* Appends the header line "name: value\r\n" (both go through pt_h1_put()). */
void pt_h1_put_field(pt_h1_hbuf *o, pt_str name, pt_str value);

/* ---- connection-specific fields (RFC 9110 section 7.6.1) ---- */

/* Whether the comma-separated list `v` (`len` bytes) holds `token` (case-insensitive). */
bool pt_h1_has_token(const char *v, size_t len, const char *token);

/* Whether `name` is a hop-by-hop field: Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Transfer-Encoding, Upgrade. */
bool pt_h1_hop_by_hop(pt_str name);

/* Whether a Connection value names fields beyond keep-alive, close and upgrade (those fields
 * are hop-by-hop too). */
bool pt_h1_names_other_fields(pt_str v);

/* Whether a field named `name` is one that the Connection value `conn` names. */
bool pt_h1_named_by(pt_str conn, pt_str name);

/* Why a header field cannot be passed on, or NULL: a name that is not a token (or is empty), a
 * value that holds CR, LF or NUL. (llhttp lets an empty name through; the rest is the same
 * guard again: a field that reached the next reader so would be read as two.) */
const char *pt_h1_invalid_field(pt_str name, pt_str value);

/* ---- the response parser ---- */

/* The most header fields a response head may have. */
#define PT_H1_FIELDS_MAX 100

/* Bytes of the caller's buffer, as offsets from its start (the buffer may move; offsets stay). */
typedef struct pt_h1_span {
    uint32_t off, len;
} pt_h1_span;

typedef struct pt_h1_field {
    pt_h1_span name, value;
} pt_h1_field;

/* What the final response's head said, from the PT_H1_HEAD event on. */
typedef struct pt_h1_response {
    int status;
    bool head_done;  /* the final head was read: what follows is valid */
    bool switching;  /* a 101: after PT_H1_DONE the bytes belong to the upgraded protocol */
    bool no_body;    /* a response to HEAD, a 204 or a 304: the response ends with its head */
    bool keep_alive; /* at PT_H1_DONE: the connection may carry the next request */
    bool sized;      /* its body is framed by Content-Length (not chunked) */
    uint64_t length; /* if so, that length (for HEAD: what GET would send) */
    size_t nfields;
    pt_h1_field fields[PT_H1_FIELDS_MAX];
} pt_h1_response;

typedef enum pt_h1_event {
    PT_H1_MORE,    /* everything given was read: feed again once more bytes have come */
    PT_H1_HEAD,    /* the final head is complete (pt_h1_client_response) */
    PT_H1_BODY,    /* a piece of the body (never empty), in the caller's buffer */
    PT_H1_DONE,    /* the response ended; what follows pt_h1_client_parsed() is not its */
    PT_H1_INVALID, /* the response cannot be used: pt_h1_client_error() says why */
} pt_h1_event;

typedef struct pt_h1_client pt_h1_client;

/* The bytes a pt_h1_client takes (in memory aligned as malloc's is). */
size_t pt_h1_client_size(void);

/* Makes `cl` (pt_h1_client_size() bytes) ready for the response to one request: `head_req` for
 * a HEAD request, `upgrade_req` for a request that asked to upgrade (Connection: upgrade). */
void pt_h1_client_init(pt_h1_client *cl, bool head_req, bool upgrade_req);

/* Reads the response from `buf` (`len` bytes: everything received and not yet consumed, the
 * start of it at the same place as at the previous call; NULL when `len` is 0) on from where it
 * stopped, up to the next event. After PT_H1_BODY `*piece` is the piece; it lies in `buf`. After
 * PT_H1_DONE or PT_H1_INVALID, the same event again. Call it again after an event even with
 * nothing new: the end of the response may follow at once. */
pt_h1_event pt_h1_client_feed(pt_h1_client *cl, const char *buf, size_t len, pt_str *piece);

/* The connection ended (after a PT_H1_MORE). Returns PT_H1_DONE when that ends the response (a
 * body that runs to the end of the connection), PT_H1_INVALID when the response cannot end
 * there although its body was to run so, PT_H1_MORE otherwise: the response was cut short. */
pt_h1_event pt_h1_client_eof(pt_h1_client *cl);

/* What the final head said (valid from PT_H1_HEAD on; its fields' spans while the head's bytes
 * stay in the buffer). */
const pt_h1_response *pt_h1_client_response(const pt_h1_client *cl);

/* Bytes of the buffer read so far. */
size_t pt_h1_client_parsed(const pt_h1_client *cl);

/* The caller dropped the first `n` bytes (at most pt_h1_client_parsed()) of its buffer: the
 * next feed's `buf` starts after them. The head's spans are no longer valid. */
void pt_h1_client_consumed(pt_h1_client *cl, size_t n);

/* The most bytes of a chunked body's trailer section kept (PT_H1_DONE's trailers). */
#define PT_H1_TRAILERS_MAX 4096

/* The trailer fields of a chunked response ("Name: value\r\n" lines; empty when there were
 * none, or when they did not fit in PT_H1_TRAILERS_MAX), valid after PT_H1_DONE until the next
 * init. Fields no trailer may carry (framing, routing, the connection's own, RFC 9110 section
 * 6.5.1) are left out. */
pt_str pt_h1_client_trailers(const pt_h1_client *cl);

/* Why the response was refused (after PT_H1_INVALID). */
const char *pt_h1_client_error(const pt_h1_client *cl);

/* A span's bytes in `buf` (the start of the buffer fed), without surrounding spaces and tabs. */
static inline pt_str pt_h1_span_str(const char *buf, pt_h1_span s)
{
    const char *b = buf + s.off;
    size_t n = s.len;
    while (n && (b[0] == ' ' || b[0] == '\t'))
        b++, n--;
    while (n && (b[n - 1] == ' ' || b[n - 1] == '\t'))
        n--;
    return (pt_str){b, n};
}

#endif
