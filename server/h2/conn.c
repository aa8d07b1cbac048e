/*
 * HTTP/2 on libnghttp2: a connection's frames in and out, each stream a pt_request.
 *
 * nghttp2 does the protocol: framing, HPACK, flow control, stream states, and the checks of
 * RFC 9113 section 8 (pseudo-headers, connection-specific fields, content-length against DATA),
 * answering what breaks them with RST_STREAM or GOAWAY. This file is the glue between it and
 * the rest of porter:
 *
 *   in   the connection's in-buffer goes to nghttp2_session_mem_recv(); a request's fields are
 *        copied into its arena as they are decoded; at the end of its head the stream becomes a
 *        pt_request that the site selects a virtual host for and routes, as HTTP/1 does;
 *   out  frames are produced by nghttp2_session_mem_send() into the out-queue; a DATA frame's
 *        payload is written by send_data (NGHTTP2_DATA_FLAG_NO_COPY) straight into the
 *        out-queue from the body's source: memory, a file (pread), or what a streaming handler
 *        wrote; at most OUT_HIGH_WATER bytes are queued ahead of the socket.
 *
 * Memory: a stream lives in one pool chunk (its state, then its request's arena) and its
 * request's custodian, a child of the connection's; both go when nghttp2 closes the stream
 * (done or reset). nghttp2 never calls back into a stream after closing it; no nghttp2 call is
 * made from inside another (handlers' calls made from nghttp2's callbacks only queue, and the
 * queue is sent when the outer call returns).
 *
 * Time: the connection's timer runs request_read_timeout for the first stream and
 * keepalive_timeout whenever no stream is open; each stream has its own timer for the phases
 * HTTP/1 times on the connection (head, body, handler, and response_send_timeout while its
 * DATA does not move, which bounds a client that keeps its window shut). A stream with a send
 * rate (limit_rate) is held to it where its DATA is framed: its data source defers while the
 * rate allows nothing, and its timer resumes it (no send timeout runs meanwhile).
 *
 * Attack limits (docs/http2.md): nghttp2's own bounds (rapid reset, CONTINUATION frames,
 * SETTINGS entries, queued ACKs) plus a budget here for frames that ask work of the server
 * without asking for anything (SETTINGS, PING, PRIORITY, empty DATA): past it, GOAWAY
 * ENHANCE_YOUR_CALM and the connection closes once that is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <llhttp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "connmgr/connmgr.h"
#include "connmgr/tls.h"
#include "connmgr/timer.h"
#include "server/core/uri.h"
#include "server/h2/conn.h"

/* Bytes of frames queued ahead of the socket before the session is asked for more. */
#define OUT_HIGH_WATER (256 * 1024)
/* A streaming handler is asked to wait above this many unsent bytes of its stream. */
#define STREAM_HIGH_WATER (64 * 1024)
/* A DATA frame's payload goes in one out-queue room with its 9-byte frame header. */
#define DATA_MAX (PT_CHUNK_SIZE - 9)
/* The largest response head (the fields, formatted once as HTTP/1 lines). */
#define HEAD_MAX 8192
#define NV_MAX 128
/* A held memory body's frames of at least this size are queued by reference, not copied. */
#define REF_MIN 4096
/* A multipart/byteranges body is gathered in memory up to this size. */
#define GATHERED_MAX (1024 * 1024)

typedef struct h2_conn h2_conn;

typedef enum body_kind {
    BODY_NONE,
    BODY_MEMORY, /* mem[0..len), kept by the holder or by us (owned) */
    BODY_FILE,   /* fd from off, len bytes */
    BODY_STREAM, /* what the handler writes: out */
} body_kind;

typedef struct h2_stream {
    pt_request req;
    h2_conn *hc;
    int32_t id;
    pt_timer timer;
    struct h2_stream *prev, *next; /* the connection's streams */

    /* The head, as nghttp2 decodes it. */
    pt_header *hdrs; /* in the arena; grown by doubling */
    size_t nhdrs, hdr_cap;
    size_t head_bytes;
    pt_str method, scheme, authority, path;
    int refuse; /* a status to answer instead of routing (431, 400) */
    const char *refuse_why;
    bool dispatched; /* the head was complete and handed to the site */

    /* The request body. */
    char *in;      /* received, not yet delivered (malloc) */
    size_t in_len; /* bytes in `in` */
    uint64_t body_seen;
    bool body_end;     /* END_STREAM received */
    bool end_told;     /* the reader got PT_BODY_END */
    bool body_paused;  /* the reader asked for a pause */
    bool continue_due; /* "expect: 100-continue": 100 goes out when the body is read */
    bool discard;      /* nobody reads it: consume and drop */

    /* The response. */
    bool responded;     /* its head is submitted */
    bool response_done; /* the handler has given all of it */
    bool deferred;      /* the data source said NGHTTP2_ERR_DEFERRED */
    bool rate_held;     /* ... for the send rate: the timer resumes it */
    bool want_writable; /* write() said wait: tell the handler when out is empty */
    bool head_only;
    int status;
    uint64_t sent;
    body_kind kind;
    const char *mem;
    uint64_t len; /* bytes of the body still to frame (memory and file) */
    void (*hold)(const void *holder);
    void (*release)(void *holder);
    void *holder;
    char *owned; /* malloc'ed copy of a memory body */
    int fd;
    off_t off;
    bool close_fd;
    pt_bytes out; /* BODY_STREAM: written, not yet framed */
    bool out_end; /* pt_response_end() */
    int64_t owed; /* a stream of known length: bytes it still owes (-1: unknown) */
    pt_rate rate; /* its send rate (limit_rate; rate 0: none) */
} h2_stream;

#define STREAM_SIZE ((sizeof(h2_stream) + 15) & ~(size_t)15)

struct h2_conn {
    pt_conn *conn;
    nghttp2_session *session;
    const pt_site_ops *site_ops;
    void *site;
    struct ev_loop *loop;
    const pt_h2_settings *settings;
    pt_h2_counters *counters;
    bool tls;
    h2_stream *streams;
    size_t nstreams;
    unsigned depth;  /* inside an nghttp2 call: sending waits until it returns */
    bool send_due;   /* something was submitted meanwhile */
    bool goaway;     /* GOAWAY submitted: no new streams, close when the last one ends */
    bool closing;    /* on_close ran: callbacks do nothing */
    bool started;    /* a stream was opened: idle means keepalive_timeout from now on */
    bool flooded;    /* a flood was counted (GOAWAY ENHANCE_YOUR_CALM decided here) */
    uint64_t resets; /* RST_STREAM frames received */
    double tokens;   /* the control-frame budget */
    ev_tstamp tokens_at;
};

static h2_stream *stream_of(const pt_request *req)
{
    return (h2_stream *)((char *)req - offsetof(h2_stream, req));
}

static void h2_send(h2_conn *hc);
static void response_sent(h2_conn *hc, h2_stream *st);

/* Moves the stream's deadline, unless its DATA waits for its send rate: then the timer is the
 * rate's, and the send timeout starts again when the DATA does (on_stream_timer). */
static void stream_timeout(h2_stream *st, double secs)
{
    if (!st->rate_held)
        pt_timer_reset(&st->timer, secs);
}

/* Deletes the session of a closed connection once no nghttp2 call is on the stack. */
static void session_release(h2_conn *hc)
{
    if (hc->closing && hc->depth == 0 && hc->session) {
        nghttp2_session_del(hc->session);
        hc->session = NULL;
    }
}

int pt_h2_preface_match(const char *p, size_t len)
{
    size_t n = len < PT_H2_PREFACE_LEN ? len : PT_H2_PREFACE_LEN;
    if (n && memcmp(p, PT_H2_PREFACE, n) != 0) /* (nothing read: no buffer, p NULL) */
        return -1;
    return n == PT_H2_PREFACE_LEN ? 1 : 0;
}

/* ---- streams ---- */

static const pt_request_proto h2_request_proto;
static void on_stream_timer(pt_timer *t, void *data);

static h2_stream *stream_new(h2_conn *hc, int32_t id)
{
    char *chunk = pt_chunk_get();
    h2_stream *st = (h2_stream *)chunk;
    memset(st, 0, sizeof *st);
    st->hc = hc;
    st->id = id;
    st->fd = -1;
    pt_request *r = &st->req;
    pt_request_init(r, &h2_request_proto, hc->loop, chunk, STREAM_SIZE);
    r->tls = hc->tls;
    r->ssl = hc->tls ? pt_tls_ssl(&hc->conn->transport) : NULL;
    r->peer = &hc->conn->peer.sa;
    r->peerlen = hc->conn->peerlen;
    if (hc->conn->proxied) /* its PROXY header named the client */
        pt_request_set_proxied(r, hc->conn->proxied);
    r->conn_custodian = pt_conn_custodian(hc->conn);
    r->connection = hc->conn->serial;
    r->connection_requests = hc->conn->requests + 1;
    r->start = ev_now(hc->loop);
    r->version_major = 2;
    r->version_minor = 0;
    r->keep_alive = true;
    pt_timer_init(&st->timer, hc->loop, on_stream_timer, st);
    pt_timer_start(&st->timer, hc->conn->limits->request_read_timeout);
    st->next = hc->streams;
    if (hc->streams)
        hc->streams->prev = st;
    hc->streams = st;
    if (hc->nstreams++ == 0) {
        /* Streams bound their own time; the connection's waits for none. */
        pt_conn_reset_timeout(hc->conn, PT_TIMEOUT_NONE);
        pt_conn_set_state(hc->conn, PT_CONN_WRITING);
    }
    hc->started = true;
    if (hc->counters)
        hc->counters->streams++;
    return st;
}

/* Tells a handler that has not finished that its stream is over (reset, or the connection
 * gone), and releases what it registered with the request. */
static void abort_handler(h2_stream *st)
{
    if (!st->dispatched || st->response_done)
        return;
    pt_request *r = &st->req;
    st->response_done = true;
    pt_request_tell_abort(r); /* (a stream goes only in nghttp2's calls: it is still here) */
    pt_custodian_shutdown(r->custodian);
    r->custodian = NULL;
}

static void body_dispose(h2_stream *st)
{
    if (st->release) {
        st->release(st->holder);
        st->release = NULL;
    }
    free(st->owned);
    st->owned = NULL;
    if (st->fd >= 0 && st->close_fd)
        close(st->fd);
    st->fd = -1;
    free(st->out.p);
    st->out.p = NULL;
    st->out.len = st->out.cap = 0;
    st->kind = BODY_NONE;
}

static void start_goaway(h2_conn *hc);

static void stream_free(h2_stream *st)
{
    h2_conn *hc = st->hc;
    abort_handler(st);
    if (st->responded)
        pt_request_access_log(&st->req, st->status, st->sent);
    if (st->in_len && !hc->closing)
        nghttp2_session_consume_connection(hc->session, st->in_len);
    free(st->in);
    body_dispose(st);
    pt_timer_dispose(&st->timer);
    if (st->prev)
        st->prev->next = st->next;
    else
        hc->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    pt_request_dispose(&st->req);
    pt_chunk_put(st);
    if (--hc->nstreams == 0 && !hc->closing) {
        pt_conn_set_state(hc->conn, PT_CONN_IDLE);
        pt_conn_reset_timeout(hc->conn, hc->conn->limits->keepalive_timeout);
        if (pt_connmgr_is_draining(hc->conn->mgr))
            start_goaway(hc);
    }
}

/* Resets a stream whose response cannot go on (its source failed, or it timed out). */
static void stream_reset(h2_stream *st, uint32_t code)
{
    h2_conn *hc = st->hc;
    if (hc->closing)
        return;
    nghttp2_submit_rst_stream(hc->session, NGHTTP2_FLAG_NONE, st->id, code);
    h2_send(hc);
}

/* ---- the control-frame budget ---- */

static bool control_frame_allowed(h2_conn *hc)
{
    const pt_h2_settings *s = hc->settings;
    ev_tstamp now = ev_now(hc->loop);
    hc->tokens += (now - hc->tokens_at) * s->control_rate;
    if (hc->tokens > s->control_burst)
        hc->tokens = s->control_burst;
    hc->tokens_at = now;
    if (hc->tokens < 1)
        return false;
    hc->tokens -= 1;
    return true;
}

static void conn_log(h2_conn *hc, pt_log_level level, const char *why)
{
    char addr[PT_SOCKADDR_STRLEN];
    if (pt_sockaddr_format(&hc->conn->peer.sa, addr, sizeof addr) < 0)
        strcpy(addr, "-");
    pt_log_error(level, "HTTP/2: %s, client: %s", why, addr);
}

/* Counts and logs the flood that ends this connection, once whoever noticed it. */
static void count_flood(h2_conn *hc, const char *what)
{
    if (hc->flooded)
        return;
    hc->flooded = true;
    if (hc->counters)
        hc->counters->floods++;
    conn_log(hc, PT_LOG_INFO, what);
}

/* Ends the connection for a flood: GOAWAY ENHANCE_YOUR_CALM, then close once written. */
static void flood(h2_conn *hc, const char *what)
{
    count_flood(hc, what);
    nghttp2_session_terminate_session(hc->session, NGHTTP2_ENHANCE_YOUR_CALM);
    hc->goaway = true;
}

/* ---- the request head ---- */

static pt_str arena_copy(pt_request *r, const uint8_t *p, size_t len)
{
    char *s = pt_request_alloc_large(r, len + 1);
    if (!s)
        return (pt_str){NULL, 0};
    memcpy(s, p, len);
    s[len] = '\0';
    return (pt_str){s, len};
}

static void refuse(h2_stream *st, int status, const char *why)
{
    if (!st->refuse) {
        st->refuse = status;
        st->refuse_why = why;
    }
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *data)
{
    h2_conn *hc = data;
    if (hc->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream *st = stream_new(hc, f->hd.stream_id);
    st->hdr_cap = 16;
    st->hdrs = pt_request_alloc(&st->req, st->hdr_cap * sizeof *st->hdrs);
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *data)
{
    h2_conn *hc = data;
    if (hc->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: nghttp2 has checked them; nothing here reads them */
    h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    pt_request *r = &st->req;
    /* The header list's size as RFC 9113 section 6.5.2 counts it, decompressed. */
    st->head_bytes += namelen + valuelen + 32;
    if (st->head_bytes > hc->settings->max_header_list_size)
        refuse(st, 431, "request header list too large");
    if (st->refuse)
        return 0;
    if (namelen && name[0] == ':') {
        pt_str *to = NULL;
        if (namelen == 7 && memcmp(name, ":method", 7) == 0)
            to = &st->method;
        else if (namelen == 7 && memcmp(name, ":scheme", 7) == 0)
            to = &st->scheme;
        else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
            to = &st->authority;
        else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
            to = &st->path;
        if (to && !(*to = arena_copy(r, value, valuelen)).p)
            refuse(st, 431, "request header list too large");
        return 0;
    }
    if (st->nhdrs >= hc->conn->limits->max_request_headers) {
        refuse(st, 431, "too many header fields");
        return 0;
    }
    if (st->nhdrs == st->hdr_cap) {
        pt_header *more = pt_request_alloc_large(r, 2 * st->hdr_cap * sizeof *more);
        if (!more) {
            refuse(st, 431, "too many header fields");
            return 0;
        }
        memcpy(more, st->hdrs, st->nhdrs * sizeof *more);
        st->hdrs = more;
        st->hdr_cap *= 2;
    }
    pt_header *h = &st->hdrs[st->nhdrs];
    h->name = arena_copy(r, name, namelen);
    h->value = arena_copy(r, value, valuelen);
    if (!h->name.p || !h->value.p) {
        refuse(st, 431, "request header list too large");
        return 0;
    }
    st->nhdrs++;
    return 0;
}

/* Cookie fields arrive as crumbs (RFC 9113 section 8.2.3): one field again, for handlers and
 * for an HTTP/1.1 upstream, which allows one Cookie line. */
static void join_cookies(h2_stream *st)
{
    pt_request *r = &st->req;
    size_t n = 0, total = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        if (pt_str_ieq(r->headers[i].name, "cookie")) {
            n++;
            total += r->headers[i].value.len + 2;
        }
    if (n < 2)
        return;
    char *joined = pt_request_alloc(r, total);
    if (!joined)
        return;
    size_t pos = 0, out = 0, first = SIZE_MAX;
    for (size_t i = 0; i < r->nheaders; i++) {
        pt_header h = r->headers[i];
        if (pt_str_ieq(h.name, "cookie")) {
            if (first == SIZE_MAX) {
                first = out;
            } else {
                memcpy(joined + pos, "; ", 2);
                pos += 2;
            }
            memcpy(joined + pos, h.value.p, h.value.len);
            pos += h.value.len;
            if (out != first)
                continue;
        }
        r->headers[out++] = h;
    }
    r->headers[first].value = (pt_str){joined, pos};
    r->nheaders = out;
}

static void answer(pt_request *r, int status)
{
    if (status != 204) {
        pt_request_respond_error(r, status); /* porter's page for the status, as on HTTP/1 */
        return;
    }
    pt_response resp;
    pt_response_init(&resp, status);
    resp.allow = "GET, HEAD, OPTIONS";
    pt_request_respond(r, &resp);
}

/* The methods HTTP/1 can carry, with llhttp's numbers (which pt_method follows): a request goes
 * on to an HTTP/1.1 upstream as it came, so an HTTP/2 request is held to what an HTTP/1 one
 * would be. */
static const struct {
    int num;
    const char *name;
} http1_methods[] = {
#define XX(num, name, string) {num, #string},
    HTTP_METHOD_MAP(XX)
#undef XX
};

/* llhttp's number of method `m`, or -1 for one HTTP/1 does not carry (PRI is the HTTP/2
 * preface's, not a method). */
static int http1_method(pt_str m)
{
    for (size_t i = 0; i < sizeof http1_methods / sizeof *http1_methods; i++)
        if (m.len == strlen(http1_methods[i].name) &&
            memcmp(m.p, http1_methods[i].name, m.len) == 0)
            return http1_methods[i].num == HTTP_PRI ? -1 : http1_methods[i].num;
    return -1;
}

/* The status an HTTP/1 request with a method it does not carry gets: 501 for one that looks
 * like a method (upper-case letters), 400 for anything else. */
static int unknown_method_status(pt_str m)
{
    for (size_t i = 0; i < m.len; i++)
        if (m.p[i] < 'A' || m.p[i] > 'Z')
            return 400;
    return 501;
}

/* Whether a :path is what an HTTP/1 request target may be: origin-form (or "*"), visible
 * US-ASCII (nghttp2 has refused controls and space already). */
static bool path_valid(pt_str p)
{
    if (p.len == 0 || (p.p[0] != '/' && !(p.len == 1 && p.p[0] == '*')))
        return false;
    for (size_t i = 0; i < p.len; i++)
        if ((unsigned char)p.p[i] > 0x7e || (unsigned char)p.p[i] <= 0x20)
            return false;
    return true;
}

/* The head is complete: the stream becomes a request for the site. */
static void dispatch(h2_stream *st, bool end_stream)
{
    h2_conn *hc = st->hc;
    pt_request *r = &st->req;
    st->dispatched = true;
    r->headers = st->hdrs;
    r->nheaders = st->nhdrs;
    r->method = st->method;
    int method = http1_method(st->method);
    r->method_id =
        method >= 0 && (method <= HTTP_TRACE || method == HTTP_PATCH) ? method : PT_METHOD_OTHER;
    r->target = st->path;
    const char *q = st->path.len ? memchr(st->path.p, '?', st->path.len) : NULL;
    r->path = (pt_str){st->path.p, q ? (size_t)(q - st->path.p) : st->path.len};
    r->query = q ? (pt_str){q + 1, st->path.len - r->path.len - 1} : (pt_str){"", 0};
    r->host = st->authority;
    const pt_header *host = NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        const pt_header *h = &r->headers[i];
        if (h->name.len == 4 && pt_str_ieq(h->name, "host")) {
            if (host)
                refuse(st, 400, "duplicate Host");
            host = h;
        } else if (h->name.len == 14 && pt_str_ieq(h->name, "content-length")) {
            r->has_length = true;
            r->content_length = strtoull(h->value.p, NULL, 10); /* nghttp2 checked the digits */
        } else if (h->name.len == 2 && pt_str_ieq(h->name, "te")) {
            r->te_trailers = true; /* nghttp2 lets only "trailers" through */
        } else if (h->name.len == 6 && pt_str_ieq(h->name, "expect")) {
            if (!pt_str_ieq(h->value, "100-continue"))
                refuse(st, 417, "unsupported expectation");
            st->continue_due = !end_stream;
        }
    }
    if (!r->host.p && host)
        r->host = host->value;
    if (!r->host.p)
        r->host = (pt_str){"", 0};
    if (r->host.len && !pt_uri_authority_valid(r->host.p, r->host.len))
        refuse(st, 400, "invalid :authority or Host");
    if (method < 0) {
        int status = unknown_method_status(r->method);
        refuse(st, status, status == 501 ? "unknown method" : "invalid method");
    }
    if (r->method_id != PT_METHOD_CONNECT && !path_valid(st->path))
        refuse(st, 400, "invalid :path");
    /* A body without a length is one of unknown length (HTTP/1.1's chunked, to an upstream). */
    r->chunked = !end_stream && !r->has_length;
    join_cookies(st);
    st->body_end = end_stream;

    hc->site_ops->select(hc->site, r);
    pt_conn_count_request(hc->conn);
    r->connection_requests = hc->conn->requests;
    /* As the head would read in HTTP/1.1 (HPACK's bytes are the connection's) */
    r->request_length = r->method.len + 1 + r->target.len + sizeof " HTTP/2.0\r\n" - 1 + 2;
    for (size_t i = 0; i < r->nheaders; i++)
        r->request_length += r->headers[i].name.len + 2 + r->headers[i].value.len + 2;
    pt_timer_reset(&st->timer, hc->conn->limits->response_timeout);
    if (!st->refuse && r->has_length && r->content_length > r->limits->max_request_body_length)
        refuse(st, 413, "request body too large");
    if (st->refuse) {
        pt_request_log(r, PT_LOG_INFO, "client sent an invalid request: %s", st->refuse_why);
        pt_conn_count_invalid(hc->conn);
        answer(r, st->refuse);
        return;
    }
    if (r->method_id == PT_METHOD_CONNECT) {
        answer(r, 405); /* no CONNECT tunnels (nor RFC 8441's extended CONNECT) */
        return;
    }
    if (r->path.len == 1 && r->path.p[0] == '*') {
        answer(r, r->method_id == PT_METHOD_OPTIONS ? 204 : 400);
        return;
    }
    hc->site_ops->route(r);
}

/* ---- the request body ---- */

/* Gives the reader what is buffered, and the end when it has come; returns to the client
 * the window of what the reader took. */
static void deliver_body(h2_stream *st)
{
    h2_conn *hc = st->hc;
    pt_request *r = &st->req;
    /* A reader may end the connection: nothing of the stream is touched after that. */
    while (!hc->closing && r->body_cb && !st->body_paused) {
        if (st->in_len) {
            size_t n = st->in_len;
            char *buf = st->in;
            st->in = NULL;
            st->in_len = 0;
            nghttp2_session_consume(hc->session, st->id, n);
            hc->send_due = true;
            r->body_cb(r, buf, n, 0, r->body_data);
            free(buf);
            continue;
        }
        if (st->body_end && !st->end_told) {
            st->end_told = true;
            pt_body_cb cb = r->body_cb;
            r->body_cb = NULL;
            cb(r, NULL, 0, PT_BODY_END, r->body_data);
        }
        break;
    }
}

/* deliver_body() from a handler's own call (not nghttp2's): what the reader does in its
 * callback (answer, reset) is sent after it, so no stream goes while the body is delivered. */
static void deliver_held(h2_conn *hc, h2_stream *st)
{
    hc->depth++;
    deliver_body(st);
    hc->depth--;
    if (hc->closing)
        session_release(hc);
    else
        h2_send(hc);
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    h2_conn *hc = ud;
    if (hc->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->discard || !st->dispatched) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    pt_request *r = &st->req;
    st->body_seen += len;
    if (st->body_seen > r->limits->max_request_body_length) {
        nghttp2_session_consume(s, id, len);
        st->discard = true;
        if (!st->responded) {
            pt_request_log(r, PT_LOG_INFO, "client sent too large a request body");
            abort_handler(st);
            st->response_done = false;
            answer(r, 413);
        } else {
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        }
        return 0;
    }
    stream_timeout(st, hc->conn->limits->request_body_timeout);
    /* Kept until the reader takes it; the stream's window bounds how much. */
    char *more = realloc(st->in, st->in_len + len);
    if (!more)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(more + st->in_len, data, len);
    st->in = more;
    st->in_len += len;
    st->req.request_length += len;
    deliver_body(st);
    return 0;
}

/* ---- frames received ---- */

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *data)
{
    h2_conn *hc = data;
    if (hc->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS: {
        h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (!st)
            return 0;
        bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (hc->goaway) {
                nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                          NGHTTP2_REFUSED_STREAM);
                return 0;
            }
            dispatch(st, end);
        } else if (end && st->dispatched) {
            st->body_end = true; /* trailers end the body */
            deliver_body(st);
        }
        return 0;
    }
    case NGHTTP2_DATA: {
        if (f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            !control_frame_allowed(hc)) {
            flood(hc, "empty DATA frame flood");
            return 0;
        }
        h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (st && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && st->dispatched) {
            st->body_end = true;
            if (!st->responded)
                pt_timer_reset(&st->timer, hc->conn->limits->response_timeout);
            deliver_body(st);
        }
        return 0;
    }
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && !control_frame_allowed(hc))
            flood(hc, "SETTINGS flood");
        return 0;
    case NGHTTP2_PING:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && !control_frame_allowed(hc))
            flood(hc, "PING flood");
        return 0;
    case NGHTTP2_PRIORITY:
        if (!control_frame_allowed(hc))
            flood(hc, "PRIORITY flood");
        return 0;
    case NGHTTP2_RST_STREAM:
        hc->resets++;
        if (hc->counters)
            hc->counters->resets++;
        return 0;
    default:
        return 0;
    }
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *data)
{
    h2_conn *hc = data;
    if (hc->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        hc->goaway = true;
        /* nghttp2's own bound on resets decides some (its GOAWAY says INTERNAL_ERROR, which
         * nothing here sends): count those too. */
        bool reset_flood = f->goaway.error_code == NGHTTP2_INTERNAL_ERROR &&
                           hc->resets >= hc->settings->reset_burst;
        if (f->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM || reset_flood)
            count_flood(hc, "stream reset flood");
        return 0;
    }
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    response_sent(hc, st);
    if (st->discard && !st->body_end) {
        /* Answered before the request body ended, and nobody reads it: the client may stop
         * sending it (RFC 9113 section 8.1). */
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *data)
{
    h2_conn *hc = data;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || hc->closing)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    stream_free(st);
    return 0;
}

/* ---- frames sent ---- */

static int lines_to_nv(char *buf, size_t pos, nghttp2_nv *nv, int n);

/* At the end of a streamed body: its trailer fields, if the handler gave some, end the stream
 * in a HEADERS frame of their own. */
static void send_trailers(h2_stream *st, uint32_t *flags)
{
    pt_request *r = &st->req;
    nghttp2_nv nv[NV_MAX];
    int n = r->trailers.len ? lines_to_nv((char *)r->trailers.p, r->trailers.len, nv, 0) : 0;
    if (n > 0 && nghttp2_submit_trailer(st->hc->session, st->id, nv, (size_t)n) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *data)
{
    h2_stream *st = src->ptr;
    if (st->hc->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    size_t n;
    if (length > DATA_MAX)
        length = DATA_MAX;
    if (st->rate.rate && (st->kind == BODY_STREAM ? st->out.len : st->len) > 0) {
        /* The stream's own rate: other streams go on meanwhile. */
        double wait;
        uint64_t quota = pt_rate_quota(&st->rate, st->sent, ev_now(st->hc->loop), &wait);
        if (quota == 0) {
            st->rate_held = true;
            pt_timer_reset(&st->timer, wait);
            return NGHTTP2_ERR_DEFERRED;
        }
        if (length > quota)
            length = (size_t)quota;
    }
    if (st->kind == BODY_STREAM) {
        if (st->out.len == 0) {
            if (!st->out_end) {
                st->deferred = true;
                return NGHTTP2_ERR_DEFERRED;
            }
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            send_trailers(st, flags);
            return 0;
        }
        n = st->out.len < length ? st->out.len : length;
        if (n == st->out.len && st->out_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            send_trailers(st, flags);
        }
    } else {
        n = st->len < length ? (size_t)st->len : length;
        if (n == st->len)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    if (n)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    return (ssize_t)n;
}

/* The whole response is out: the stream waits only for the rest of a request body still read
 * (within request_body_timeout), else for nothing. */
static void response_sent(h2_conn *hc, h2_stream *st)
{
    if (st->body_end)
        pt_timer_cancel(&st->timer);
    else
        pt_timer_reset(&st->timer, hc->conn->limits->request_body_timeout);
}

/* A DATA frame of `length` bytes went into the out-queue: the response is moving, and its
 * next frame has response_send_timeout to follow (the last one's END_STREAM is
 * on_frame_send's). */
static int sent_data(h2_conn *hc, h2_stream *st, size_t length)
{
    st->sent += length;
    if (st->rate.rate)
        pt_rate_wrote(&st->rate, st->sent - length, st->sent, ev_now(hc->loop));
    pt_timer_reset(&st->timer, hc->conn->limits->response_send_timeout);
    return 0;
}

/* A DATA frame's payload, written after its header straight into the out-queue. */
static int send_data(nghttp2_session *s, nghttp2_frame *f, const uint8_t *framehd, size_t length,
                     nghttp2_data_source *src, void *data)
{
    h2_conn *hc = data;
    if (hc->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    h2_stream *st = src->ptr;
    pt_outq *q = &hc->conn->out;
    if (st->kind == BODY_MEMORY && st->hold && length >= REF_MIN) {
        /* Memory someone holds (the file cache's) goes out from where it is, a reference a
         * frame: no copy. */
        pt_outq_push_copy(q, framehd, 9);
        st->hold(st->holder);
        pt_outq_push_ref(q, st->mem, length, st->release, st->holder);
        st->mem += length;
        st->len -= length;
        return sent_data(hc, st, length);
    }
    char *room = pt_outq_reserve(q, 9 + length);
    memcpy(room, framehd, 9);
    switch (st->kind) {
    case BODY_MEMORY:
        memcpy(room + 9, st->mem, length);
        st->mem += length;
        st->len -= length;
        break;
    case BODY_FILE: {
        ssize_t got = pread(st->fd, room + 9, length, st->off);
        if (got != (ssize_t)length) {
            pt_outq_commit(q, 0);
            pt_request_log(&st->req, PT_LOG_ERROR, "file read failed mid-response (%s)",
                           got < 0 ? strerror(errno) : "file shrank");
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        st->off += length;
        st->len -= length;
        break;
    }
    case BODY_STREAM:
        memcpy(room + 9, st->out.p, length);
        memmove(st->out.p, st->out.p + length, st->out.len - length);
        st->out.len -= length;
        break;
    case BODY_NONE:
        break;
    }
    pt_outq_commit(q, 9 + length);
    return sent_data(hc, st, length);
}

/* What nghttp2 has to send, into the out-queue, then to the socket. */
static void h2_send(h2_conn *hc)
{
    pt_conn *c = hc->conn;
    if (hc->depth) {
        hc->send_due = true;
        return;
    }
    for (;;) {
        if (c->dead || hc->closing)
            return;
        hc->depth++;
        hc->send_due = false;
        size_t made = 0, before = pt_outq_pending(&c->out);
        bool full = before >= OUT_HIGH_WATER;
        int idle = 0;
        while (pt_outq_pending(&c->out) < OUT_HIGH_WATER) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(hc->session, &p);
            if (n < 0 || c->dead) {
                hc->depth--;
                if (!c->dead) {
                    conn_log(hc, PT_LOG_ERROR, nghttp2_strerror((int)n));
                    pt_conn_kill(c);
                }
                session_release(hc);
                return;
            }
            /* 0 is "nothing more" unless the session still wants to write: it also follows a
             * DATA frame that send_data queued itself, and a frame packed for the next call. */
            size_t queued = pt_outq_pending(&c->out);
            if (n > 0) {
                pt_outq_push_copy(&c->out, p, (size_t)n);
                idle = 0;
            } else if (queued == before &&
                       (++idle > 2 || !nghttp2_session_want_write(hc->session))) {
                break;
            }
            made += pt_outq_pending(&c->out) - before;
            before = pt_outq_pending(&c->out);
        }
        /* Handlers that waited for their stream's output to go: their turn (what they send
         * goes on the next round; no stream goes meanwhile, since only nghttp2's calls close
         * streams). */
        for (h2_stream *st = hc->streams; st; st = st->next) {
            if (st->want_writable && st->out.len == 0 && !st->response_done) {
                st->want_writable = false;
                stream_timeout(st, c->limits->response_timeout);
                if (st->req.writable_cb)
                    st->req.writable_cb(&st->req, st->req.writable_data);
                if (c->dead)
                    break;
            }
        }
        hc->depth--;
        if (c->dead) {
            session_release(hc);
            return;
        }
        if (hc->send_due)
            continue;
        int r = pt_conn_flush(c);
        if (r < 0)
            return; /* -EAGAIN: on_drain carries on; else the connection is gone */
        /* All written: if the session stopped at the high-water mark (or did not start, the
         * queue being above it), it has more. */
        if (!nghttp2_session_want_write(hc->session) || (!made && !full))
            break;
    }
    bool done = !nghttp2_session_want_write(hc->session) &&
                (!nghttp2_session_want_read(hc->session) || (hc->goaway && hc->nstreams == 0));
    if (done && !c->close_after)
        pt_conn_close(c); /* after GOAWAY, with nothing left to say */
}

/* ---- the connection ---- */

static void start_goaway(h2_conn *hc)
{
    if (hc->goaway || hc->closing)
        return;
    hc->goaway = true;
    nghttp2_submit_goaway(hc->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(hc->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
}

static void h2_on_read(pt_conn *c)
{
    h2_conn *hc = c->proto_data;
    size_t len = pt_inbuf_len(&c->in);
    if (len) {
        hc->depth++;
        ssize_t n =
            nghttp2_session_mem_recv(hc->session, (const uint8_t *)pt_inbuf_begin(&c->in), len);
        hc->depth--;
        if (c->dead) {
            session_release(hc);
            return;
        }
        if (n < 0) {
            bool flooded = n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
            if (flooded) {
                count_flood(hc, nghttp2_strerror((int)n));
            } else {
                if (hc->counters)
                    hc->counters->errors++;
                conn_log(hc, PT_LOG_INFO, nghttp2_strerror((int)n));
            }
            if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
                pt_conn_kill(c);
                return;
            }
            pt_inbuf_consume(&c->in, len);
            nghttp2_session_terminate_session(hc->session, flooded ? NGHTTP2_ENHANCE_YOUR_CALM
                                                                   : NGHTTP2_PROTOCOL_ERROR);
            hc->goaway = true;
        } else {
            pt_inbuf_consume(&c->in, (size_t)n);
        }
    }
    if (c->eof) {
        /* The client is gone (a half-close is not HTTP/2's way to end): nothing to finish. */
        pt_conn_kill(c);
        return;
    }
    if (pt_connmgr_is_draining(c->mgr))
        start_goaway(hc);
    h2_send(hc);
    if (c->dead)
        return;
    /* The manager paused reading when the in-buffer was full: all of it was taken. */
    if (c->read_paused)
        pt_conn_resume_read(c);
}

static void h2_on_drain(pt_conn *c)
{
    h2_conn *hc = c->proto_data;
    if (hc->nstreams == 0)
        pt_conn_reset_timeout(c, hc->started ? c->limits->keepalive_timeout
                                             : c->limits->request_read_timeout);
    else
        pt_conn_reset_timeout(c, PT_TIMEOUT_NONE);
    h2_send(hc);
}

static void h2_on_timeout(pt_conn *c)
{
    h2_conn *hc = c->proto_data;
    if (!pt_outq_is_empty(&c->out) || hc->goaway) {
        pt_conn_kill(c); /* a write stalled, or a GOAWAY the client did not take */
        return;
    }
    /* Idle: say so, and close. */
    start_goaway(hc);
    h2_send(hc);
    if (!c->dead && !c->close_after)
        pt_conn_close(c);
}

/* The connection's custodian releases its HTTP/2 state (an entry of its own, which also tells
 * the manager that the connection is not bare: an HTTP/2 connection is never parked, since its
 * session cannot be given up and made again). */
static void h2_release(void *data)
{
    h2_conn *hc = data;
    if (hc->closing)
        return;
    /* Streams first (their handlers hear it), then the session; callbacks of an nghttp2 call
     * still on the stack fail from now on, and the session goes when that call returns. */
    hc->closing = true;
    while (hc->streams)
        stream_free(hc->streams);
    if (hc->counters)
        hc->counters->live--;
    session_release(hc);
}

static void h2_on_close(pt_conn *c)
{
    if (c->proto_data)
        h2_release(c->proto_data);
}

/* A reload or a stop: GOAWAY with the last stream taken, at once; the connection closes when
 * its streams are done (h2_send). */
static void h2_on_retire(pt_conn *c)
{
    h2_conn *hc = c->proto_data;
    start_goaway(hc);
    h2_send(hc);
}

static const pt_conn_proto h2_proto = {
    .on_read = h2_on_read,
    .on_drain = h2_on_drain,
    .on_timeout = h2_on_timeout,
    .on_close = h2_on_close,
    .on_retire = h2_on_retire,
};

static void on_stream_timer(pt_timer *t, void *data)
{
    h2_stream *st = data;
    h2_conn *hc = st->hc;
    if (st->rate_held) {
        /* The send rate allows more: DATA on, within the send timeout as any. */
        st->rate_held = false;
        pt_timer_reset(&st->timer, hc->conn->limits->response_send_timeout);
        nghttp2_session_resume_data(hc->session, st->id);
        h2_send(hc);
        return;
    }
    if (!st->dispatched) {
        /* A head left unfinished holds the whole connection (its CONTINUATION frames must
         * come next): the connection goes. */
        conn_log(hc, PT_LOG_INFO, "request head not received in time");
        pt_conn_kill(hc->conn);
        return;
    }
    if (!st->responded && st->req.body_cb && !st->body_end && !st->body_paused) {
        /* Its handler waits for the body, and the client stopped sending it within
         * request_body_timeout (nginx's client_body_timeout): 408. */
        pt_request_log(&st->req, PT_LOG_INFO, "request body not received in time");
        abort_handler(st);
        st->response_done = false;
        st->discard = true; /* what may still come of the body is dropped */
        answer(&st->req, 408);
        return;
    }
    if (!st->responded) {
        pt_request_log(&st->req, PT_LOG_ERROR, "no response within response_timeout");
        abort_handler(st);
        st->response_done = false;
        answer(&st->req, 503);
        return;
    }
    /* A stalled body (in or out), or a handler that stopped streaming. */
    abort_handler(st);
    stream_reset(st, NGHTTP2_CANCEL);
}

static nghttp2_session_callbacks *callbacks_made;

static void make_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data);
    callbacks_made = cbs; /* published whole (servers may run on several threads) */
}

static nghttp2_session_callbacks *callbacks(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_callbacks);
    return callbacks_made;
}

size_t pt_h2_conn_size(void)
{
    return sizeof(h2_conn);
}

int pt_h2_conn_attach(pt_conn *c, const pt_site_ops *ops, void *site, bool tls,
                      const pt_h2_settings *settings, pt_h2_counters *counters)
{
    h2_conn *hc = pt_custodian_alloc(pt_conn_custodian(c), sizeof *hc);
    memset(hc, 0, sizeof *hc);
    hc->conn = c;
    hc->site_ops = ops;
    hc->site = site;
    hc->loop = c->timer.loop;
    hc->settings = settings;
    hc->counters = counters;
    hc->tls = tls;
    hc->tokens = settings->control_burst;
    hc->tokens_at = ev_now(hc->loop);

    nghttp2_session_callbacks *cbs = callbacks();
    nghttp2_option *opt = NULL;
    if (!cbs || nghttp2_option_new(&opt) != 0) {
        pt_conn_kill(c);
        return -ENOMEM;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_settings(opt, settings->max_settings);
    nghttp2_option_set_stream_reset_rate_limit(opt, settings->reset_burst, settings->reset_rate);
    nghttp2_option_set_max_continuations(opt, settings->max_continuations);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    int rv = nghttp2_session_server_new2(&hc->session, cbs, hc, opt);
    nghttp2_option_del(opt);
    if (rv != 0) {
        pt_conn_kill(c);
        return -ENOMEM;
    }
    pt_conn_set_proto(c, &h2_proto, hc);
    pt_custodian_register(pt_conn_custodian(c), h2_release, hc);
    if (counters) {
        counters->connections++;
        counters->live++;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings->stream_window},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, settings->max_frame_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings->max_header_list_size},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(hc->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof *iv);
    if (settings->connection_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)
        nghttp2_session_set_local_window_size(hc->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)settings->connection_window);
    /* Frames can be bigger than HTTP/1's head: the in-buffer holds one whole frame. */
    pt_conn_set_input_max(c, settings->max_frame_size + 9 > PT_CHUNK_SIZE
                                 ? settings->max_frame_size + 9
                                 : PT_CHUNK_SIZE);
    pt_conn_set_nodelay(c);
    pt_conn_reset_timeout(c, c->limits->request_read_timeout);
    h2_on_read(c);
    return c->dead ? -ECONNRESET : 0;
}

/* ---- the handler's side of a stream ---- */

/* Connection-specific fields, which HTTP/2 forbids (RFC 9113 section 8.2.2). */
static bool connection_specific(const char *n, size_t len)
{
    pt_str s = {n, len};
    return pt_str_ieq(s, "connection") || pt_str_ieq(s, "keep-alive") ||
           pt_str_ieq(s, "proxy-connection") || pt_str_ieq(s, "transfer-encoding") ||
           pt_str_ieq(s, "upgrade");
}

static int lines_to_nv(char *buf, size_t pos, nghttp2_nv *nv, int n);

/* The response's fields as nghttp2 name/value pairs, from its lines ("Name: value\r\n", the
 * form handlers and filters write them in) in `buf`. Returns the number of pairs, or -1 when
 * they do not fit. */
static int head_fields(const pt_request *req, const pt_response *r, char *buf, size_t cap,
                       nghttp2_nv *nv, char *status)
{
    const pt_clock *clock = pt_clock_at((time_t)ev_now(req->loop));
    size_t pos = pt_response_head_fields(req, r, false, clock, buf, 0, cap);
    if (pos > cap)
        return -1;

    int code = r->status >= 100 && r->status <= 999 ? r->status : 500;
    status[0] = (char)('0' + code / 100);
    status[1] = (char)('0' + code / 10 % 10);
    status[2] = (char)('0' + code % 10);
    nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    return lines_to_nv(buf, pos, nv, 1);
}

/* Appends the fields of the lines ("Name: value\r\n") in `buf` to `nv` from `n` on, lower-
 * casing their names in place and leaving out connection-specific ones. Returns the new count,
 * or -1 past NV_MAX. */
static int lines_to_nv(char *buf, size_t pos, nghttp2_nv *nv, int n)
{
    for (size_t at = 0; at < pos;) {
        char *eol = memchr(buf + at, '\n', pos - at);
        if (!eol)
            break;
        size_t end = (size_t)(eol - buf), line_end = end;
        if (line_end > at && buf[line_end - 1] == '\r')
            line_end--;
        char *colon = memchr(buf + at, ':', line_end - at);
        if (colon) {
            char *name = buf + at;
            size_t nlen = (size_t)(colon - name);
            const char *v = colon + 1;
            while (v < buf + line_end && (*v == ' ' || *v == '\t'))
                v++;
            for (size_t k = 0; k < nlen; k++)
                if (name[k] >= 'A' && name[k] <= 'Z')
                    name[k] = (char)(name[k] + 32);
            if (nlen && !connection_specific(name, nlen)) {
                if (n == NV_MAX)
                    return -1;
                nv[n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)v, nlen,
                                       (size_t)(buf + line_end - v), NGHTTP2_NV_FLAG_NONE};
            }
        }
        at = end + 1;
    }
    return n;
}

/* A transport that keeps what is written: a body a handler pushes into a queue (multipart
 * ranges) becomes one memory body. */
typedef struct gather {
    char *buf;
    size_t len, cap;
} gather;

static ssize_t gather_writev(pt_transport *t, const struct iovec *iov, int n)
{
    gather *g = t->impl;
    ssize_t total = 0;
    for (int i = 0; i < n; i++) {
        if (g->len + iov[i].iov_len > GATHERED_MAX)
            return -EFBIG;
        if (g->len + iov[i].iov_len > g->cap) {
            size_t cap = g->cap ? g->cap : 16384;
            while (cap < g->len + iov[i].iov_len)
                cap *= 2;
            char *b = realloc(g->buf, cap);
            if (!b)
                return -ENOMEM;
            g->buf = b;
            g->cap = cap;
        }
        memcpy(g->buf + g->len, iov[i].iov_base, iov[i].iov_len);
        g->len += iov[i].iov_len;
        total += (ssize_t)iov[i].iov_len;
    }
    return total;
}

static ssize_t gather_sendfile(pt_transport *t, int fd, off_t *off, size_t len)
{
    return -ENOTSUP;
}

static const pt_transport_ops gather_ops = {.writev = gather_writev, .sendfile = gather_sendfile};

static int gather_body(const pt_response *r, gather *g)
{
    pt_outq q;
    pt_outq_init(&q);
    int e = r->push_body(&q, r->push_body_data);
    pt_transport t = {.ops = &gather_ops, .fd = -1, .impl = g, .wfd = -1};
    if (e == 0)
        e = pt_outq_flush(&q, &t);
    pt_outq_dispose(&q);
    return e;
}

static int h2_respond(pt_request *req, const pt_response *r)
{
    h2_stream *st = stream_of(req);
    h2_conn *hc = st->hc;
    bool owns_fd = r->file_fd >= 0 && !r->file_borrowed;
    if (hc->conn->dead || hc->closing || st->responded) {
        if (owns_fd)
            close(r->file_fd);
        return st->responded ? -EINVAL : -ECONNABORTED;
    }
    char lines[HEAD_MAX], status[4];
    nghttp2_nv nv[NV_MAX];
    int nvlen = head_fields(req, r, lines, sizeof lines, nv, status);
    if (nvlen < 0) {
        if (owns_fd)
            close(r->file_fd);
        pt_request_log(req, PT_LOG_ERROR, "response head too large");
        stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        return -E2BIG;
    }
    st->status = r->status;
    if (req->limit_rate)
        pt_rate_init(&st->rate, req->limit_rate, req->limit_rate_after, req->start);
    st->head_only =
        req->method_id == PT_METHOD_HEAD || !pt_http_status_has_body(r->status) || r->no_body;
    st->kind = BODY_NONE;
    st->owed = -1;
    if (r->stream) {
        /* Even without a body (HEAD, 204, 304) the stream lasts until the handler ends it: what
         * it writes is dropped, and its end is an empty DATA frame. */
        st->kind = BODY_STREAM;
        if (!st->head_only && r->stream_length >= 0)
            st->owed = r->stream_length;
    } else if (!st->head_only) {
        if (r->push_body) {
            gather g = {0};
            int e = gather_body(r, &g);
            if (e < 0) {
                free(g.buf);
                pt_request_log(req, PT_LOG_ERROR, "response body failed (%s)", strerror(-e));
                stream_reset(st, NGHTTP2_INTERNAL_ERROR);
                return e;
            }
            st->kind = BODY_MEMORY;
            st->owned = g.buf;
            st->mem = g.buf;
            st->len = g.len;
        } else if (r->file_fd >= 0) {
            st->kind = BODY_FILE;
            st->off = r->file_off;
            st->len = r->body_len;
            st->close_fd = true;
            /* A borrowed fd (the open-file cache's) may close before the last frame. */
            st->fd = owns_fd ? r->file_fd : fcntl(r->file_fd, F_DUPFD_CLOEXEC, 0);
            owns_fd = false;
            if (st->fd < 0) {
                pt_request_log(req, PT_LOG_CRIT, "dup() failed (%s)", strerror(errno));
                stream_reset(st, NGHTTP2_INTERNAL_ERROR);
                return -errno;
            }
        } else if (r->body_len) {
            st->kind = BODY_MEMORY;
            st->len = r->body_len;
            if (r->body_hold) {
                r->body_hold(r->body_holder);
                st->hold = r->body_hold;
                st->release = r->body_release;
                st->holder = r->body_holder;
                st->mem = r->body;
            } else {
                if (!(st->owned = malloc(r->body_len)))
                    return -ENOMEM;
                memcpy(st->owned, r->body, r->body_len);
                st->mem = st->owned;
            }
        }
    }
    if (owns_fd)
        close(r->file_fd);
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_body};
    int rv = nghttp2_submit_response(hc->session, st->id, nv, (size_t)nvlen,
                                     st->kind == BODY_NONE ? NULL : &dp);
    if (rv != 0) {
        body_dispose(st);
        return -EPROTO;
    }
    st->responded = true;
    st->continue_due = false;
    if (!r->stream) {
        st->response_done = true;
        req->writable_cb = NULL;
        req->abort_cb = NULL;
        pt_timer_reset(&st->timer, hc->conn->limits->response_send_timeout);
    } else {
        pt_timer_reset(&st->timer, hc->conn->limits->response_timeout);
    }
    if (!req->body_cb && !st->body_end) {
        /* Nobody will read the body: its bytes go as they come. */
        st->discard = true;
        if (st->in_len) {
            nghttp2_session_consume(hc->session, st->id, st->in_len);
            st->in_len = 0;
        }
    }
    h2_send(hc);
    return 0;
}

static int h2_write(pt_request *req, const void *data, size_t len)
{
    h2_stream *st = stream_of(req);
    h2_conn *hc = st->hc;
    if (hc->conn->dead || hc->closing)
        return -ECONNABORTED;
    if (st->kind != BODY_STREAM || st->response_done)
        return -EINVAL;
    if (st->owed >= 0 && !st->head_only) {
        if ((uint64_t)len > (uint64_t)st->owed)
            return -EMSGSIZE; /* more than the content-length promised */
        st->owed -= (int64_t)len;
    }
    if (len && !st->head_only) {
        if (pt_bytes_append(&st->out, data, len) < 0)
            return -ENOMEM;
    }
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(hc->session, st->id);
    }
    h2_send(hc);
    if (hc->conn->dead)
        return -ECONNABORTED;
    if (st->out.len > STREAM_HIGH_WATER) {
        st->want_writable = true;
        return 1;
    }
    stream_timeout(st, hc->conn->limits->response_timeout);
    return 0;
}

static int h2_end(pt_request *req)
{
    h2_stream *st = stream_of(req);
    h2_conn *hc = st->hc;
    if (hc->conn->dead || hc->closing)
        return -ECONNABORTED;
    if (st->kind != BODY_STREAM || st->response_done)
        return -EINVAL;
    if (st->owed > 0) {
        /* Shorter than its content-length: the client would wait for the rest forever. */
        pt_request_log(req, PT_LOG_ERROR, "streamed response ended %lld bytes short",
                       (long long)st->owed);
        st->response_done = true;
        req->writable_cb = NULL;
        req->abort_cb = NULL;
        stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        return -EPIPE;
    }
    st->out_end = true;
    st->response_done = true;
    req->writable_cb = NULL;
    req->abort_cb = NULL;
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(hc->session, st->id);
    }
    stream_timeout(st, hc->conn->limits->response_send_timeout);
    h2_send(hc);
    return 0;
}

static void h2_read_body(pt_request *req)
{
    h2_stream *st = stream_of(req);
    h2_conn *hc = st->hc;
    if (st->continue_due && !st->responded) {
        st->continue_due = false;
        nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE};
        nghttp2_submit_headers(hc->session, NGHTTP2_FLAG_NONE, st->id, NULL, &nv, 1, NULL);
    }
    if (!st->body_end)
        stream_timeout(st, hc->conn->limits->request_body_timeout);
    deliver_held(hc, st);
}

static void h2_pause_body(pt_request *req, bool pause)
{
    h2_stream *st = stream_of(req);
    if (st->body_paused == pause)
        return;
    st->body_paused = pause;
    if (!pause)
        deliver_held(st->hc, st);
}

static void h2_reset_timeout(pt_request *req, double secs)
{
    stream_timeout(stream_of(req), secs);
}

static void h2_adjust_timeout(pt_request *req, double secs)
{
    h2_stream *st = stream_of(req);
    pt_timer *t = &st->timer;
    if (pt_timer_is_armed(t))
        stream_timeout(st, t->deadline - ev_now(t->loop) + secs);
}

static void h2_abandon(pt_request *req)
{
    h2_stream *st = stream_of(req);
    st->response_done = true;
    req->writable_cb = NULL;
    req->abort_cb = NULL;
    stream_reset(st, NGHTTP2_INTERNAL_ERROR);
}

static bool h2_pending(const pt_request *req)
{
    return stream_of(req)->out.len > 0;
}

static int h2_local_addr(const pt_request *req, struct sockaddr_storage *out, socklen_t *len)
{
    socklen_t l = sizeof *out;
    if (getsockname(stream_of(req)->hc->conn->transport.fd, (struct sockaddr *)out, &l) < 0)
        return -errno;
    if (len)
        *len = l;
    return 0;
}

static int h2_upgrade(pt_request *req, int status, const void *head, size_t len,
                      const pt_upgrade_ops *ops, void *data, struct pt_conn **out)
{
    return -ENOTSUP; /* HTTP/2 has no Upgrade (RFC 9113 section 8.6) */
}

static const pt_request_proto h2_request_proto = {
    .respond = h2_respond,
    .write = h2_write,
    .end = h2_end,
    .read_body = h2_read_body,
    .pause_body = h2_pause_body,
    .reset_timeout = h2_reset_timeout,
    .adjust_timeout = h2_adjust_timeout,
    .abandon = h2_abandon,
    .pending = h2_pending,
    .local_addr = h2_local_addr,
    .upgrade = h2_upgrade,
};
