/*
 * HTTP requests and responses as handlers see them.
 *
 * A pt_request lives from the first byte of a request until its response has been queued and
 * its body read (or discarded). Its strings point into the connection's in-buffer and stay
 * valid for the request's life; they are not NUL-terminated. Memory for the request comes from
 * one pool chunk (the request's arena, pt_request_alloc), returned when the request ends.
 *
 * A handler answers exactly once with pt_request_respond() (or asks the router for an internal
 * redirect, server/location.h); the dispatcher then keeps the connection alive or closes it.
 * A response to a routed request also carries its location's add_header and expires lines.
 * Threading: the loop's thread only.
 */
#ifndef PORTER_SERVER_HTTP_H
#define PORTER_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <string.h>
#include <time.h>

typedef struct pt_str {
    const char *p;
    size_t len;
} pt_str;

#define PT_STR_LIT(s) ((pt_str){(s), sizeof(s) - 1})

typedef struct pt_header {
    pt_str name, value;
} pt_header;

typedef struct pt_vhost pt_vhost;
typedef struct pt_location pt_location;
typedef struct pt_http_conn pt_http_conn;
struct pt_outq;

typedef struct pt_request pt_request;

/* A handler's callback about its request (client gone, room to write). */
typedef void (*pt_request_cb)(pt_request *req, void *data);

/* Delivers the request body: `status` is 0 with `len` bytes at `data`, PT_BODY_END at its
 * end (len 0), or a negative errno when it cannot be read to its end: -EMSGSIZE (over
 * max_request_body_length; the client gets 413 unless the handler already answered), -EPROTO
 * (bad framing: 400), -ECONNRESET (client gone; the abort callback follows). */
typedef void (*pt_body_cb)(pt_request *req, const void *data, size_t len, int status, void *ud);
#define PT_BODY_END 1

struct pt_request {
    pt_http_conn *hc;
    const pt_vhost *vhost;
    pt_str method;
    int method_id; /* llhttp_method */
    pt_str target; /* as sent: origin-form or absolute-form */
    pt_str path;   /* target's path, still percent-encoded */
    pt_str query;  /* after '?', without it; empty if none */
    pt_str host;   /* Host header, or the authority of an absolute-form target */
    int version_major, version_minor;
    pt_header *headers;
    size_t nheaders;
    uint64_t content_length; /* when has_length */
    bool has_length, chunked, expect_continue;
    bool keep_alive; /* what the client asked for (RFC 9112 section 9.3) */
    double start;    /* ev_now() at the first byte */
    char *arena;
    size_t arena_used;

    /* Routing (server/location.h), set before a handler runs. */
    pt_location *location; /* what answers; NULL before routing */
    pt_str norm_path;      /* the decoded, normalised path, NUL-terminated; valid in the handler */
    pt_str redirect;       /* an internal redirect the handler asked for (pt_route_redirect) */
    unsigned redirects;    /* internal redirects so far */
    bool error_page;       /* answering through an error_page: no error page for its errors */
    int error_status;      /* the status that answer keeps (0: what the target answers) */
};

/* A response head kept for reuse by whoever sends the same response again (the file cache,
 * for a file's 200): its lines up to the Connection line, made in the second `second` (its
 * Date). pt_request_respond fills it and reuses it within that second. */
typedef struct pt_head_memo {
    char *buf; /* malloc'ed; NULL until made */
    size_t len, cap;
    time_t second;
} pt_head_memo;

/* A response, described; pt_request_respond formats the head and queues head and body. */
typedef struct pt_response {
    int status;
    const char *content_type; /* NULL: none */
    /* Body: from memory, or a file range (fd taken: closed after). A memory body is copied,
     * unless it has a holder: then body_hold(body_holder) runs as it is queued without a copy,
     * and body_release(body_holder) once it is written or dropped. */
    const void *body;
    size_t body_len;
    void (*body_hold)(const void *holder);
    void (*body_release)(void *holder);
    void *body_holder;
    int file_fd; /* -1: none */
    off_t file_off;
    bool file_borrowed; /* file_fd is not taken (the open-file cache's): read at once, or dup'ed
                           for sendfile; never closed */
    /* Or a body the caller queues itself, after the head and not for HEAD: exactly body_len
     * bytes; returns 0 or a negative errno (the connection is then killed). */
    int (*push_body)(struct pt_outq *q, void *data);
    void *push_body_data;
    bool no_body;         /* a head-only response (304): no Content-Length */
    bool omit_server;     /* extra_headers carry their own Server (proxy_pass_header) */
    bool omit_date;       /* and their own Date */
    time_t last_modified; /* 0: none */
    time_t mtime;         /* the file's time for `expires modified` when no last_modified */
    const char *location; /* Location header */
    const char *allow;    /* Allow header */
    pt_str extra_headers; /* preformatted "Name: value\r\n" lines */
    pt_str more_headers;  /* more of them (Content-Range) */
    bool close;           /* close the connection after this response */
    /* A streamed body: pt_request_respond queues the head only, and the handler follows with
     * pt_response_write() and pt_response_end(). With stream_length < 0 (unknown) the body is
     * chunked (HTTP/1.1) or runs until the connection closes (HTTP/1.0). */
    bool stream;
    int64_t stream_length;
    /* The same response as the last one given this memo, but for Date and Connection: a 200
     * with everything above derived from what the memo belongs to, and no error_page. */
    pt_head_memo *head_memo;
} pt_response;

/* Initialises `r` for `status` with no body. */
void pt_response_init(pt_response *r, int status);

/* Queues the response to `req`. HEAD requests get the head only. Returns 0 or a negative errno
 * (the connection is gone). */
int pt_request_respond(pt_request *req, const pt_response *r);

/* Streamed bodies (after pt_request_respond with `stream`): queues `len` bytes (copied) and
 * writes what the socket takes. Returns 0 when more is welcome, 1 when the queue is full (wait
 * for the writable callback), or a negative errno (the connection is gone). */
int pt_response_write(pt_request *req, const void *data, size_t len);

/* Ends a streamed body (a stream of known length must have been written in full). The request
 * is then over for the handler: `req` must not be used after this call. Returns 0 or a negative
 * errno. */
int pt_response_end(pt_request *req);

/* Calls `cb` whenever the out-queue of a streamed response has been written out. */
void pt_response_on_writable(pt_request *req, pt_request_cb cb, void *data);

/* Reads the request body: `cb` gets its pieces as they arrive (see pt_body_cb), within
 * max_request_body_length. A client that sent "Expect: 100-continue" is invited now. Until a
 * handler calls this (or answers), the body stays unread in the socket. */
void pt_request_read_body(pt_request *req, pt_body_cb cb, void *data);

/* Stops (true) or restarts (false) the body's delivery: the socket is not read meanwhile, so
 * the client is slowed down (back-pressure). */
void pt_request_pause_body(pt_request *req, bool pause);

/* Calls `cb` if the request ends before the handler finished its answer: the client went away
 * or the handler ran out of response_timeout. After it, `req` must not be used. */
void pt_request_on_abort(pt_request *req, pt_request_cb cb, void *data);

/* The request's custodian, a child of the connection's: what the handler registers there
 * (timers, upstream connections, memory) is released when the request ends, whichever way. */
struct pt_custodian *pt_request_custodian(pt_request *req);

/* The connection's timer, for a handler that knows better (Racket's reset-/adjust-connection-
 * timeout!): the deadline becomes now + secs, or moves secs later. */
void pt_request_reset_timeout(pt_request *req, double secs);
void pt_request_adjust_timeout(pt_request *req, double secs);

/* An upgraded connection's events (pt_request_upgrade), each with the `data` given there. */
struct pt_conn;
typedef struct pt_upgrade_ops {
    /* New bytes are in c->in (consume what is taken: pt_inbuf_consume), or c->eof is set. */
    void (*on_read)(struct pt_conn *c, void *data);
    /* The out-queue was written out after a flush that had to wait. Optional. */
    void (*on_drain)(struct pt_conn *c, void *data);
    /* The connection's timer expired. Optional: the default kills the connection. */
    void (*on_timeout)(struct pt_conn *c, void *data);
    /* The connection is being released (what the request's custodian held already is). Do not
     * write. Optional. */
    void (*on_close)(struct pt_conn *c, void *data);
} pt_upgrade_ops;

/* Takes the connection of `req` out of HTTP (a 101 Switching Protocols answer): queues `head`
 * (`len` bytes, the response head exactly as it must go out, copied) and writes it, logs the
 * request with `status`, ends the request, and from then on hands the connection's reads,
 * drains, timeout and close to `ops`. *out receives the connection: its transport, in-buffer
 * (bytes the client sent after the request head are already there; no on_read announces
 * them), out-queue and timer (now without a deadline) are the caller's to drive through the
 * pt_conn API. What the handler registered with pt_request_custodian() is not released with
 * the request: it now goes with the connection. `req` must not be used after the call.
 * Returns 0, or a negative errno: -EINVAL if the request's body has not been read to its end
 * or a response was already started (nothing changed), -EBUSY from inside the dispatcher's own
 * calls (a body or route callback; nothing changed), or the write's error (the connection has
 * been killed and ops->on_close has run). Call it from the handler's own event callbacks. */
int pt_request_upgrade(pt_request *req, int status, const void *head, size_t len,
                       const pt_upgrade_ops *ops, void *data, struct pt_conn **out);

/* Writes the access log line of `req` (done by pt_request_respond, or at the end of a stream). */
void pt_request_access_log(pt_request *req, int status, uint64_t body_bytes);

/* Queues a short HTML error page for `status` (nginx-like). */
int pt_request_respond_error(pt_request *req, int status);

/* The same with preformatted header lines `headers` ("Content-Range: bytes * /10\r\n"). */
int pt_request_respond_error_with(pt_request *req, int status, pt_str headers);

/* Logs a message about `req` to its server's error log, with the client's address and the
 * request line appended as nginx does. `level` is a pt_log_level. */
void pt_request_log(pt_request *req, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns the first header named `name` (case-insensitive), or NULL. */
const pt_header *pt_request_header(const pt_request *req, const char *name);

/* Returns `size` bytes from the request's arena (NULL if it is exhausted). */
void *pt_request_alloc(pt_request *req, size_t size);

/* Writes the short HTML page porter answers a status with (nginx's) into `buf`; returns its
 * length. PT_STATUS_PAGE_MAX bytes always suffice. */
#define PT_STATUS_PAGE_MAX 512
size_t pt_http_status_page(int status, char *buf, size_t cap);

/* The reason phrase for `status` ("Not Found"), or "Unknown". */
const char *pt_http_reason(int status);

/* Formats `t` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into `buf` (30 bytes). */
size_t pt_http_date_format(time_t t, char *buf);

/* Parses an IMF-fixdate (also RFC 850 and asctime forms); returns -1 if invalid. */
time_t pt_http_date_parse(const char *s, size_t len);

/* The name part of a Host value: without its port ("example.com:8080", "[::1]:8080") and
 * without a trailing dot ("example.com."). */
pt_str pt_host_name(pt_str host);

/* c in lower case, if it is an ASCII letter. */
static inline unsigned char pt_ascii_lower(unsigned char c)
{
    return (unsigned)(c - 'A') < 26u ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive comparison of a pt_str with a C string, in ASCII (as HTTP's names and tokens
 * are: no locale). Inline, so that a literal's length and letters are known where it is used. */
static inline bool pt_str_ieq(pt_str s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (pt_ascii_lower((unsigned char)s.p[i]) != pt_ascii_lower((unsigned char)lit[i]))
            return false;
    return true;
}

#endif
