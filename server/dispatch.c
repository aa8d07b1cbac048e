/*
 * The HTTP/1.x dispatcher: llhttp glue between a connection and the handlers.
 *
 * One request at a time per connection. The dispatcher feeds llhttp the bytes of the in-buffer,
 * records the request head as offsets into it (the buffer may move while the head arrives in
 * pieces), answers at the end of the head, discards any body the handler did not read, and on
 * the end of the message pauses llhttp so the next pipelined request starts from a clean state.
 * Responses to pipelined requests pile up in the out-queue and leave in one write.
 *
 * The connection's single timer is moved at each phase (Racket's reset-connection-timeout!):
 *   waiting for a request   request_read_timeout (new connection) / keepalive_timeout (idle)
 *   request head            request_read_timeout from its first byte, not extended by trickles
 *   request body            request_body_timeout between reads
 *   response                response_send_timeout per write stall (conn.c)
 */
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <string.h>

#include "connmgr/conn.h"
#include "connmgr/connmgr.h"
#include "server/dispatch.h"
#include "server/location.h"
#include "server/site.h"

typedef struct span {
    uint32_t off, len; /* offsets from the in-buffer's start */
} span;

typedef struct hdr_span {
    span name, value;
} hdr_span;

typedef enum phase {
    PHASE_IDLE, /* between requests */
    PHASE_HEAD,
    PHASE_BODY,
} phase;

/* What exists only while a request is being read or answered. It lives at the start of the
 * request's pool chunk (the rest is the request's arena), so an idle keep-alive connection
 * holds none of it. */
typedef struct http_req {
    llhttp_t parser;
    pt_request req;
    span url;
    hdr_span *hdrs; /* in the request arena */
    size_t nhdrs, hdr_cap;
    size_t head_bytes;
    uint64_t body_seen;
    int error_status; /* set by a callback that stops the parser */
    bool begun;       /* llhttp saw the request's first byte */
    bool in_value;
    bool responded;
} http_req;

#define HTTP_REQ_SIZE ((sizeof(http_req) + 15) & ~(size_t)15)

/* The in-buffer's cap when the head limits are unlimited or absurd. */
#define MAX_HEAD_BUFFER (1u << 20)

struct pt_http_conn {
    pt_conn *conn;
    pt_site *site;
    http_req *r; /* NULL between requests */
    size_t fed;  /* bytes of the in-buffer already given to llhttp */
    phase phase;
    bool close_after; /* the response said Connection: close */
};

static llhttp_settings_t settings;

/* ---- request arena ---- */

/* The request state, made when input arrives for a connection that has none. A fresh llhttp
 * parser is as good as a reused one: requests are parsed one at a time, from a clean state. */
static http_req *req_state(pt_http_conn *hc)
{
    if (!hc->r) {
        http_req *x = pt_chunk_get();
        memset(x, 0, sizeof *x);
        llhttp_init(&x->parser, HTTP_REQUEST, &settings);
        x->parser.data = hc;
        x->req.hc = hc;
        x->req.arena = (char *)x;
        x->req.arena_used = HTTP_REQ_SIZE;
        hc->r = x;
    }
    return hc->r;
}

static void request_begin(pt_http_conn *hc)
{
    http_req *x = req_state(hc);
    pt_request *r = &x->req;
    memset(r, 0, sizeof *r);
    r->hc = hc;
    r->arena = (char *)x;
    r->arena_used = HTTP_REQ_SIZE;
    r->start = ev_now(hc->site->loop);
    x->hdr_cap = hc->conn->limits->max_request_headers;
    if (x->hdr_cap > 256)
        x->hdr_cap = 256;
    x->hdrs = pt_request_alloc(r, x->hdr_cap * sizeof *x->hdrs);
    x->nhdrs = 0;
    x->url = (span){0, 0};
    x->head_bytes = 0;
    x->body_seen = 0;
    x->error_status = 0;
    x->begun = true;
    x->in_value = false;
    x->responded = false;
}

static void request_end(pt_http_conn *hc)
{
    if (hc->r) {
        pt_chunk_put(hc->r);
        hc->r = NULL;
    }
}

void *pt_request_alloc(pt_request *req, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!req->arena || size > PT_CHUNK_SIZE - req->arena_used)
        return NULL;
    void *p = req->arena + req->arena_used;
    req->arena_used += size;
    return p;
}

/* ---- llhttp callbacks ---- */

static pt_http_conn *hc_of(llhttp_t *p)
{
    return p->data;
}

static uint32_t offset_of(pt_http_conn *hc, const char *at)
{
    return (uint32_t)(at - pt_inbuf_begin(&hc->conn->in));
}

static int fail(pt_http_conn *hc, int status, const char *why)
{
    hc->r->error_status = status;
    llhttp_set_error_reason(&hc->r->parser, why);
    return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
    pt_http_conn *hc = hc_of(p);
    request_begin(hc);
    hc->phase = PHASE_HEAD;
    pt_conn_set_state(hc->conn, PT_CONN_READING);
    /* The whole head must arrive within request_read_timeout of its first byte. */
    pt_conn_reset_timeout(hc->conn, hc->conn->limits->request_read_timeout);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    pt_http_conn *hc = hc_of(p);
    if (hc->r->url.len == 0)
        hc->r->url.off = offset_of(hc, at);
    hc->r->url.len += (uint32_t)len;
    /* method, two spaces and "HTTP/1.1" count toward the request line. */
    if (hc->r->url.len + 18 > hc->conn->limits->max_request_line_length)
        return fail(hc, 414, "request line too long");
    return 0;
}

static bool header_budget(pt_http_conn *hc, size_t len)
{
    hc->r->head_bytes += len;
    return hc->r->head_bytes <= hc->conn->limits->max_request_header_length;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    pt_http_conn *hc = hc_of(p);
    if (!hc->r->in_value && hc->r->nhdrs > 0 && hc->r->hdrs[hc->r->nhdrs - 1].value.len == 0 &&
        hc->r->hdrs[hc->r->nhdrs - 1].name.off + hc->r->hdrs[hc->r->nhdrs - 1].name.len ==
            offset_of(hc, at)) {
        hc->r->hdrs[hc->r->nhdrs - 1].name.len += (uint32_t)len; /* continuation of a split name */
    } else {
        if (hc->r->nhdrs >= hc->conn->limits->max_request_headers || hc->r->nhdrs >= hc->r->hdr_cap)
            return fail(hc, 431, "too many header fields");
        hdr_span *h = &hc->r->hdrs[hc->r->nhdrs++];
        h->name = (span){offset_of(hc, at), (uint32_t)len};
        h->value = (span){0, 0};
    }
    hc->r->in_value = false;
    if (!header_budget(hc, len + 4))
        return fail(hc, 431, "request header fields too large");
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    pt_http_conn *hc = hc_of(p);
    hdr_span *h = &hc->r->hdrs[hc->r->nhdrs - 1];
    if (!hc->r->in_value && h->value.len == 0)
        h->value.off = offset_of(hc, at);
    h->value.len += (uint32_t)len;
    hc->r->in_value = true;
    if (!header_budget(hc, len))
        return fail(hc, 431, "request header fields too large");
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    hc_of(p)->r->in_value = false;
    return 0;
}

static bool is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr(extra, c));
}

static pt_str trim(pt_str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Checks Transfer-Encoding: only chunked is implemented (501 otherwise) and it must come last
 * (400 otherwise: the body's framing is unknown). */
static int check_transfer_encoding(pt_http_conn *hc, pt_str v)
{
    size_t i = 0;
    bool chunked_last = false;
    while (i <= v.len) {
        size_t j = i;
        while (j < v.len && v.p[j] != ',')
            j++;
        pt_str tok = trim((pt_str){v.p + i, j - i});
        if (tok.len) {
            if (!pt_str_ieq(tok, "chunked"))
                return fail(hc, 501, "unsupported transfer coding");
            if (chunked_last)
                return fail(hc, 400, "chunked applied twice");
            chunked_last = true;
        }
        i = j + 1;
    }
    return chunked_last ? 0 : fail(hc, 400, "empty Transfer-Encoding");
}

/* Splits the target into path and query, and takes the authority of an absolute-form target. */
static int parse_target(pt_http_conn *hc, pt_request *r)
{
    pt_str t = r->target;
    if (t.len == 1 && t.p[0] == '*') {
        r->path = t;
        return 0;
    }
    if (t.len && t.p[0] != '/') {
        /* absolute-form: scheme "://" authority path */
        const char *sep = memmem(t.p, t.len, "://", 3);
        if (!sep)
            return fail(hc, 400, "invalid request target");
        const char *auth = sep + 3, *end = t.p + t.len;
        const char *slash = memchr(auth, '/', (size_t)(end - auth));
        const char *q = memchr(auth, '?', (size_t)(end - auth));
        const char *auth_end = slash ? slash : (q ? q : end);
        if (q && q < auth_end)
            auth_end = q;
        r->host = (pt_str){auth, (size_t)(auth_end - auth)};
        t = (pt_str){auth_end, (size_t)(end - auth_end)};
        if (t.len == 0 || t.p[0] == '?') {
            r->path = PT_STR_LIT("/");
            r->query = t.len ? (pt_str){t.p + 1, t.len - 1} : (pt_str){"", 0};
            return 0;
        }
    }
    const char *q = memchr(t.p, '?', t.len);
    const char *hash = memchr(t.p, '#', t.len);
    if (hash && (!q || hash < q))
        return fail(hc, 400, "fragment in request target");
    if (q) {
        r->path = (pt_str){t.p, (size_t)(q - t.p)};
        r->query = (pt_str){q + 1, t.len - (size_t)(q - t.p) - 1};
    } else {
        r->path = t;
        r->query = (pt_str){"", 0};
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    pt_http_conn *hc = hc_of(p);
    pt_request *r = &hc->r->req;
    const char *base = pt_inbuf_begin(&hc->conn->in);

    r->version_major = p->http_major;
    r->version_minor = p->http_minor;
    if (p->http_major != 1)
        return fail(hc, 505, "unsupported HTTP version");
    r->method_id = p->method;
    r->method = (pt_str){llhttp_method_name(p->method), strlen(llhttp_method_name(p->method))};
    r->target = (pt_str){base + hc->r->url.off, hc->r->url.len};
    r->keep_alive = llhttp_should_keep_alive(p);
    r->headers = pt_request_alloc(r, hc->r->nhdrs * sizeof *r->headers);
    if (hc->r->nhdrs && !r->headers)
        return fail(hc, 431, "too many header fields");
    r->nheaders = hc->r->nhdrs;

    int nhost = 0;
    for (size_t i = 0; i < hc->r->nhdrs; i++) {
        pt_header *h = &r->headers[i];
        h->name = (pt_str){base + hc->r->hdrs[i].name.off, hc->r->hdrs[i].name.len};
        h->value = trim((pt_str){base + hc->r->hdrs[i].value.off, hc->r->hdrs[i].value.len});
        /* llhttp lets "Name :" through; RFC 9112 section 5.1 says reject it (smuggling). */
        for (size_t k = 0; k < h->name.len; k++)
            if (!is_tchar((unsigned char)h->name.p[k]))
                return fail(hc, 400, "invalid header field name");
        if (h->name.len == 0)
            return fail(hc, 400, "empty header field name");
        if (pt_str_ieq(h->name, "host")) {
            nhost++;
            if (!r->host.p)
                r->host = h->value;
        } else if (pt_str_ieq(h->name, "transfer-encoding")) {
            if (check_transfer_encoding(hc, h->value))
                return HPE_USER;
            r->chunked = true;
        } else if (pt_str_ieq(h->name, "expect")) {
            if (!pt_str_ieq(h->value, "100-continue"))
                return fail(hc, 417, "unsupported expectation");
            r->expect_continue = true;
        }
    }
    if (nhost > 1)
        return fail(hc, 400, "duplicate Host");
    if (nhost == 0 && r->version_minor >= 1)
        return fail(hc, 400, "missing Host");
    if (p->flags & F_CONTENT_LENGTH) {
        r->has_length = true;
        r->content_length = p->content_length;
    }
    if (parse_target(hc, r))
        return HPE_USER;

    r->vhost = pt_site_select(hc->site, r->host);
    const pt_limits *lim = &r->vhost->limits;
    if (r->has_length && r->content_length > lim->max_request_body_length)
        return fail(hc, 413, "request body too large");

    pt_conn_set_state(hc->conn, PT_CONN_WRITING);
    hc->phase = PHASE_BODY;
    pt_conn_count_request(hc->conn);
    pt_route(r);
    if (hc->conn->dead)
        return HPE_USER;
    /* A body that nobody reads is discarded, bounded by request_body_timeout between reads. */
    if (r->has_length || r->chunked) {
        pt_conn_reset_timeout(hc->conn, hc->conn->limits->request_body_timeout);
        /* The client waits for "100 Continue" before sending; we answered without it, so the
         * body may never come: this connection cannot be reused. */
        if (r->expect_continue)
            hc->close_after = true;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    pt_http_conn *hc = hc_of(p);
    hc->r->body_seen += len;
    if (hc->r->body_seen > hc->r->req.vhost->limits.max_request_body_length)
        return fail(hc, 413, "request body too large");
    /* An idle timeout between body reads: moving a timer later costs no system call. */
    pt_conn_reset_timeout(hc->conn, hc->conn->limits->request_body_timeout);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    /* One request at a time: the next pipelined one waits until this one is finished. */
    return HPE_PAUSED;
}

/* ---- responses ---- */

bool pt_http_conn_should_close(pt_http_conn *hc)
{
    pt_request *r = &hc->r->req;
    pt_conn *c = hc->conn;
    return hc->close_after || !r->keep_alive || c->requests >= c->limits->keepalive_requests ||
           pt_connmgr_is_draining(c->mgr);
}

pt_conn *pt_http_conn_conn(pt_http_conn *hc)
{
    return hc->conn;
}

pt_site *pt_http_conn_site(pt_http_conn *hc)
{
    return hc->site;
}

void pt_http_conn_responded(pt_http_conn *hc, bool close)
{
    hc->r->responded = true;
    if (close)
        hc->close_after = true;
}

/* Answers a request that failed before a handler saw it, then closes: framing may be lost. */
static void respond_error_and_close(pt_http_conn *hc, int status, const char *why)
{
    if (!req_state(hc)->begun)
        request_begin(hc);
    pt_request *r = &hc->r->req;
    if (!r->vhost)
        r->vhost = hc->site->default_vhost;
    if (!r->method.p)
        r->method = PT_STR_LIT("-");
    hc->close_after = true;
    hc->conn->linger = true;
    pt_conn_set_state(hc->conn, PT_CONN_WRITING);
    if (!hc->r->responded) {
        pt_request_log(r, PT_LOG_INFO, "client sent an invalid request (%d): %s", status, why);
        pt_request_respond_error(r, status);
    }
    request_end(hc);
    pt_conn_close(hc->conn);
}

static int status_for(pt_http_conn *hc, llhttp_errno_t err)
{
    /* A callback that stopped the parser chose the status (llhttp reports an error from
     * on_headers_complete as HPE_CB_HEADERS_COMPLETE, from the others as HPE_USER). */
    if (hc->r->error_status)
        return hc->r->error_status;
    switch (err) {
    case HPE_INVALID_VERSION:
        return 505;
    case HPE_INVALID_METHOD: {
        /* An unknown but well-formed method is not implemented; anything else is garbage. */
        const char *b = pt_inbuf_begin(&hc->conn->in);
        size_t n = pt_inbuf_len(&hc->conn->in), i = 0;
        while (i < n && b[i] >= 'A' && b[i] <= 'Z')
            i++;
        return (i > 0 && i < n && b[i] == ' ') ? 501 : 400;
    }
    case HPE_INVALID_TRANSFER_ENCODING:
        return 501;
    default:
        return 400;
    }
}

/* ---- the protocol ---- */

static void finish_request(pt_http_conn *hc)
{
    bool close = pt_http_conn_should_close(hc);
    request_end(hc);
    hc->phase = PHASE_IDLE;
    if (close)
        pt_conn_close(hc->conn);
}

/* Parses what the in-buffer holds, answering every complete request. */
static void process(pt_http_conn *hc)
{
    pt_conn *c = hc->conn;
    while (!c->dead && !c->close_after) {
        size_t avail = pt_inbuf_len(&c->in);
        if (hc->fed >= avail)
            break;
        const char *begin = pt_inbuf_begin(&c->in);
        llhttp_errno_t err =
            llhttp_execute(&req_state(hc)->parser, begin + hc->fed, avail - hc->fed);
        if (c->dead)
            return;
        if (err == HPE_OK) {
            hc->fed = avail;
            if (hc->phase == PHASE_BODY) {
                /* Body bytes are not kept: let the buffer go. */
                pt_inbuf_consume(&c->in, hc->fed);
                hc->fed = 0;
            }
            break;
        }
        if (err == HPE_PAUSED) {
            const char *end = llhttp_get_error_pos(&hc->r->parser);
            pt_inbuf_consume(&c->in, (size_t)(end - begin));
            hc->fed = 0;
            llhttp_resume(&hc->r->parser);
            finish_request(hc);
            continue;
        }
        const char *why = llhttp_get_error_reason(&hc->r->parser);
        respond_error_and_close(hc, status_for(hc, err), why ? why : llhttp_errno_name(err));
        return;
    }
}

/* Between requests: the keep-alive timeout runs (a draining manager closes the connection as it
 * turns idle). */
static void become_idle(pt_conn *c)
{
    pt_conn_set_state(c, PT_CONN_IDLE);
    pt_conn_reset_timeout(c, c->limits->keepalive_timeout);
}

static void after_io(pt_http_conn *hc)
{
    pt_conn *c = hc->conn;
    if (c->dead)
        return;
    if (c->eof && !c->close_after) {
        if (hc->phase == PHASE_IDLE && pt_inbuf_len(&c->in) == 0) {
            pt_conn_close(c);
        } else {
            /* The client half-closed mid-request: let llhttp judge what it has. */
            if (!hc->r || llhttp_finish(&hc->r->parser) != HPE_OK || hc->phase != PHASE_IDLE) {
                request_end(hc);
                pt_conn_kill(c);
                return;
            }
            pt_conn_close(c);
        }
    }
    if (c->dead)
        return;
    if (c->read_paused && !c->close_after) {
        /* The in-buffer hit its cap without a complete head. */
        bool line = hc->r && hc->r->url.len && hc->r->nhdrs == 0;
        respond_error_and_close(hc, line ? 414 : 431,
                                line ? "request line too long" : "request header too large");
        return;
    }
    int r = pt_conn_flush(c);
    if (r < 0 && r != -EAGAIN)
        return;
    if (!c->close_after && hc->phase == PHASE_IDLE && pt_outq_is_empty(&c->out))
        become_idle(c);
}

static void http_on_read(pt_conn *c)
{
    pt_http_conn *hc = c->proto_data;
    process(hc);
    after_io(hc);
}

static void http_on_drain(pt_conn *c)
{
    pt_http_conn *hc = c->proto_data;
    if (hc->phase == PHASE_IDLE)
        become_idle(c);
}

static void http_on_timeout(pt_conn *c)
{
    pt_http_conn *hc = c->proto_data;
    if (hc->phase == PHASE_HEAD && pt_outq_is_empty(&c->out)) {
        respond_error_and_close(hc, 408, "request head not received in time");
        if (!c->dead)
            pt_conn_flush(c);
        return;
    }
    /* Idle, a stalled body, or a stalled write: nothing useful can be said. */
    pt_conn_kill(c);
}

static void http_on_close(pt_conn *c)
{
    pt_http_conn *hc = c->proto_data;
    if (hc)
        request_end(hc);
}

const pt_conn_proto pt_http_proto = {
    .on_read = http_on_read,
    .on_drain = http_on_drain,
    .on_timeout = http_on_timeout,
    .on_close = http_on_close,
};

void pt_http_conn_attach(pt_conn *c, pt_site *site)
{
    if (!settings.on_message_complete) {
        llhttp_settings_init(&settings);
        settings.on_message_begin = on_message_begin;
        settings.on_url = on_url;
        settings.on_header_field = on_header_field;
        settings.on_header_value = on_header_value;
        settings.on_header_value_complete = on_header_value_complete;
        settings.on_headers_complete = on_headers_complete;
        settings.on_body = on_body;
        settings.on_message_complete = on_message_complete;
    }
    pt_http_conn *hc = pt_custodian_alloc(pt_conn_custodian(c), sizeof *hc);
    hc->conn = c;
    hc->site = site;
    c->proto_data = hc;
    /* The in-buffer holds at most one request head (plus slack for what follows it). */
    const pt_limits *l = c->limits;
    size_t head = l->max_request_line_length + l->max_request_header_length;
    if (head < l->max_request_line_length || head > MAX_HEAD_BUFFER) /* overflow, or unlimited */
        head = MAX_HEAD_BUFFER;
    c->in_max = head + 1024 < PT_CHUNK_SIZE ? PT_CHUNK_SIZE : head + 1024;
}

size_t pt_http_conn_size(void)
{
    return sizeof(pt_http_conn);
}
