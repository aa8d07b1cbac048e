/*
 * The HTTP/1.x dispatcher: llhttp glue between a connection and the handlers.
 *
 * One request at a time per connection. The dispatcher feeds llhttp the bytes of the in-buffer,
 * records the request head as offsets into it (the buffer may move while the head arrives in
 * pieces), and calls the handler at the end of the head. A handler may answer at once (static
 * files) or later: then the request is "held" (its head copied into its arena, parsing of what
 * follows paused) until the handler reads the body (pt_request_read_body) or answers. A body
 * nobody reads is discarded. At the end of the message llhttp pauses, so the next pipelined
 * request starts from a clean state once the response is complete; responses to pipelined
 * requests pile up in the out-queue and leave in one write.
 *
 * The connection's single timer is moved at each phase (Racket's reset-connection-timeout!):
 *   waiting for a request   request_read_timeout (new connection) / keepalive_timeout (idle)
 *   request head            request_read_timeout from its first byte, not extended by trickles
 *   request body            request_body_timeout between reads
 *   handler                 response_timeout to the first byte, and between streamed pieces
 *   response                response_send_timeout per write stall (conn.c)
 */
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <string.h>

#include "connmgr/conn.h"
#include "connmgr/connmgr.h"
#include "connmgr/tls.h"
#include "server/core/uri.h"
#include "server/http1/client.h"
#include "server/http1/conn.h"
#include "server/http1/fold.h"
#include "server/http1/token.h"

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
    pt_http1_conn *hc;
    span url;
    hdr_span *hdrs; /* in the request arena */
    size_t nhdrs, hdr_cap;
    size_t head_bytes;
    uint64_t body_seen;
    int error_status;      /* set by a callback that stops the parser */
    const char *error_why; /* and its reason (llhttp names every callback's error alike) */
    bool begun;            /* llhttp saw the request's first byte */
    bool head_timed;       /* the head came in pieces: request_read_timeout runs */
    bool in_value;
    bool responded;     /* the response head is queued */
    bool response_done; /* and its body complete */
    bool message_done;  /* llhttp saw the end of the request */
    bool held;          /* parsing paused: the handler has not said what to do with the body */
    bool body_paused;   /* the body reader asked for a pause (back-pressure) */
    bool pinned;        /* the head lives in the arena, not the in-buffer */
    bool streaming, chunked_out; /* a streamed response body; chunk-framed on the wire */
    bool until_close;            /* a stream of unknown length to an HTTP/1.0 client */
    bool continue_sent;          /* "100 Continue" went out */
    bool rated;                  /* its response goes at a send rate (limit_rate) */
    int status;                  /* the response's, for the access log of a stream */
    uint64_t stream_left;        /* bytes a stream of known length still owes */
    uint64_t sent;               /* body bytes of a stream */
    const char *fed_from;        /* the data of the llhttp_execute() call in progress */
    char tail;                   /* pt_h1_tail() of what llhttp was given before it */
} http_req;

#define HTTP_REQ_SIZE ((sizeof(http_req) + 15) & ~(size_t)15)

/* Room for this many header fields at a request's start; more is made as they come, up to
 * max_request_headers (a head's size, max_request_header_length, bounds them otherwise). */
#define HDRS_FIRST 32

/* The in-buffer's cap when the head limits are unlimited or absurd. */
#define MAX_HEAD_BUFFER (1u << 20)

struct pt_http1_conn {
    pt_conn *conn;
    const pt_site_ops *site_ops; /* how requests reach the site */
    void *site;
    struct ev_loop *loop;
    bool tls;
    http_req *r; /* NULL between requests */
    size_t fed;  /* bytes of the in-buffer already given to llhttp */
    phase phase;
    bool close_after;             /* the response said Connection: close */
    bool pipelined;               /* the next request's bytes came before its predecessor ended */
    bool in_process;              /* process() is on the stack: handlers' calls only leave marks */
    const pt_upgrade_ops *up_ops; /* after pt_request_upgrade: who runs the connection */
    void *up_data;
    struct sent_hold *sent; /* ended requests' sent custodians, waiting for the out-queue */
};

/* The sent custodian (pt_request_sent_custodian) of a request that ended with its response
 * still in the out-queue: shut down when the queue empties, or with the connection. */
typedef struct sent_hold {
    struct sent_hold *next;
    pt_custodian *custodian;
} sent_hold;

static llhttp_settings_t settings;

/* ---- request arena ---- */

/* The request state, made when input arrives for a connection that has none. A fresh llhttp
 * parser is as good as a reused one: requests are parsed one at a time, from a clean state. */
static const pt_request_proto http1_proto;

static http_req *req_state(pt_http1_conn *hc)
{
    if (!hc->r) {
        http_req *x = pt_chunk_get();
        memset(x, 0, sizeof *x);
        llhttp_init(&x->parser, HTTP_REQUEST, &settings);
        x->parser.data = hc;
        x->hc = hc;
        pt_request *r = &x->req;
        pt_request_init(r, &http1_proto, hc->loop, (char *)x, HTTP_REQ_SIZE);
        r->tls = hc->tls;
        r->ssl = hc->tls ? pt_tls_ssl(&hc->conn->transport) : NULL;
        r->peer = &hc->conn->peer.sa;
        r->peerlen = hc->conn->peerlen;
        r->conn_custodian = pt_conn_custodian(hc->conn);
        r->connection = hc->conn->serial;
        r->connection_requests = hc->conn->requests + 1;
        r->pipelined = hc->pipelined;
        hc->pipelined = false;
        hc->r = x;
    }
    return hc->r;
}

/* The HTTP/1 state of a request. */
static http_req *x_of(const pt_request *req)
{
    return (http_req *)((char *)req - offsetof(http_req, req));
}

/* The request's first byte. Its state is a fresh one from req_state(): a request ends (and
 * its state goes) before the parser sees the next one's first byte. */
static void request_begin(pt_http1_conn *hc)
{
    http_req *x = req_state(hc);
    pt_request *r = &x->req;
    r->start = ev_now(hc->loop);
    /* Here, not in req_state(), which stays small enough to be inlined where it is called. */
    if (hc->conn->proxied) /* its PROXY header named the client */
        pt_request_set_proxied(r, hc->conn->proxied);
    x->hdr_cap = hc->conn->limits->max_request_headers;
    if (x->hdr_cap > HDRS_FIRST)
        x->hdr_cap = HDRS_FIRST;
    x->hdrs = pt_request_alloc(r, x->hdr_cap * sizeof *x->hdrs);
    x->begun = true;
}

static void request_end(pt_http1_conn *hc)
{
    http_req *x = hc->r;
    if (!x)
        return;
    hc->r = NULL;
    pt_request_dispose(&x->req);
    pt_chunk_put(x);
}

/* ---- llhttp callbacks ---- */

static pt_http1_conn *hc_of(llhttp_t *p)
{
    return p->data;
}

static uint32_t offset_of(pt_http1_conn *hc, const char *at)
{
    return (uint32_t)(at - pt_inbuf_begin(&hc->conn->in));
}

static int fail(pt_http1_conn *hc, int status, const char *why)
{
    hc->r->error_status = status;
    hc->r->error_why = why;
    return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
    pt_http1_conn *hc = hc_of(p);
    request_begin(hc);
    hc->phase = PHASE_HEAD;
    return 0;
}

/* The input ended inside a head. The whole head must arrive within request_read_timeout of its
 * first byte: the clock starts here, in the call that saw that byte (the request's start), and
 * only once. A head that comes whole in one read goes to its handler without it. */
static void head_incomplete(pt_http1_conn *hc)
{
    http_req *x = hc->r;
    if (x->head_timed)
        return;
    x->head_timed = true;
    pt_conn_set_state(hc->conn, PT_CONN_READING);
    pt_conn_reset_timeout(hc->conn, hc->conn->limits->request_read_timeout);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    pt_http1_conn *hc = hc_of(p);
    if (hc->r->url.len == 0)
        hc->r->url.off = offset_of(hc, at);
    hc->r->url.len += (uint32_t)len;
    /* method, two spaces and "HTTP/1.1" count toward the request line. */
    if (hc->r->url.len + 18 > hc->conn->limits->max_request_line_length)
        return fail(hc, 414, "request line too long");
    return 0;
}

static bool header_budget(pt_http1_conn *hc, size_t len)
{
    hc->r->head_bytes += len;
    return hc->r->head_bytes <= hc->conn->limits->max_request_header_length;
}

/* Doubles the room for header fields (max_request_headers caps their number before this). */
static bool more_headers(http_req *x)
{
    size_t cap = x->hdr_cap ? 2 * x->hdr_cap : HDRS_FIRST;
    hdr_span *more = pt_request_alloc_large(&x->req, cap * sizeof *more);
    if (!more)
        return false;
    memcpy(more, x->hdrs, x->nhdrs * sizeof *more);
    x->hdrs = more;
    x->hdr_cap = cap;
    return true;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    pt_http1_conn *hc = hc_of(p);
    if (!hc->r->in_value && hc->r->nhdrs > 0 && hc->r->hdrs[hc->r->nhdrs - 1].value.len == 0 &&
        hc->r->hdrs[hc->r->nhdrs - 1].name.off + hc->r->hdrs[hc->r->nhdrs - 1].name.len ==
            offset_of(hc, at)) {
        hc->r->hdrs[hc->r->nhdrs - 1].name.len += (uint32_t)len; /* continuation of a split name */
    } else {
        if (hc->r->nhdrs >= hc->conn->limits->max_request_headers)
            return fail(hc, 431, "too many header fields");
        if (hc->r->nhdrs == hc->r->hdr_cap && !more_headers(hc->r))
            return fail(hc, 431, "request header fields too large");
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
    pt_http1_conn *hc = hc_of(p);
    if (pt_h1_folded(hc->r->fed_from, at, len, hc->r->tail))
        return fail(hc, 400, "obsolete line folding in a header field");
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

/* Checks Transfer-Encoding (RFC 9112 section 6): chunked must come last, once, or the body's
 * length cannot be known (400); another coding before it is not implemented (501). */
static int check_transfer_encoding(pt_http1_conn *hc, pt_str v)
{
    size_t i = 0;
    bool chunked_last = false, other = false;
    while (i <= v.len) {
        size_t j = i;
        while (j < v.len && v.p[j] != ',')
            j++;
        pt_str tok = trim((pt_str){v.p + i, j - i});
        if (tok.len) {
            if (chunked_last)
                return fail(hc, 400, "a transfer coding after chunked");
            if (pt_str_ieq(tok, "chunked"))
                chunked_last = true;
            else
                other = true;
        }
        i = j + 1;
    }
    if (!chunked_last)
        return fail(hc, 400, "Transfer-Encoding without chunked last");
    return other ? fail(hc, 501, "unsupported transfer coding") : 0;
}

/* Whether an authority-form target names a port, as CONNECT's must (RFC 9110 section 9.3.6). */
static bool has_port(pt_str t)
{
    const char *colon = memrchr(t.p, ':', t.len);
    return colon && colon + 1 < t.p + t.len && t.p[t.len - 1] != ']';
}

/* Splits the target into path and query by its form (RFC 9112 section 3.2): origin-form
 * "/path?query"; absolute-form "http://authority/path?query", whose authority names the server
 * instead of Host; asterisk-form "*", for OPTIONS only; authority-form "host:port", for CONNECT
 * only, which porter does not offer (405). */
static int parse_target(pt_http1_conn *hc, pt_request *r)
{
    pt_str t = r->target;
    if (r->method_id == PT_METHOD_CONNECT) {
        if (!pt_uri_authority_valid(t.p, t.len) || !has_port(t))
            return fail(hc, 400, "CONNECT without an authority-form target");
        return fail(hc, 405, "CONNECT is not offered");
    }
    if (t.len == 1 && t.p[0] == '*') {
        if (r->method_id != PT_METHOD_OPTIONS)
            return fail(hc, 400, "asterisk-form target of a method other than OPTIONS");
        r->path = t;
        r->query = (pt_str){"", 0};
        return 0;
    }
    if (t.len && t.p[0] != '/') {
        /* absolute-form: scheme "://" authority path */
        const char *sep = memmem(t.p, t.len, "://", 3);
        if (!sep)
            return fail(hc, 400, "invalid request target");
        pt_str scheme = {t.p, (size_t)(sep - t.p)};
        if (!pt_str_ieq(scheme, "http") && !pt_str_ieq(scheme, "https"))
            return fail(hc, 400, "request target of a scheme other than http or https");
        const char *auth = sep + 3, *end = t.p + t.len, *auth_end = auth;
        while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
            auth_end++;
        if (!pt_uri_authority_valid(auth, (size_t)(auth_end - auth)))
            return fail(hc, 400, "invalid authority in the request target");
        r->host = (pt_str){auth, (size_t)(auth_end - auth)};
        t = (pt_str){auth_end, (size_t)(end - auth_end)};
        if (t.len == 0 || t.p[0] == '?') {
            r->path = PT_STR_LIT("/");
            r->query = t.len ? (pt_str){t.p + 1, t.len - 1} : (pt_str){"", 0};
            return 0;
        }
    }
    const char *q = NULL; /* the first '?'; a '#' before it is a fragment */
    for (const char *s = t.p, *end = t.p + t.len; s < end; s++) {
        if (*s == '?') {
            q = s;
            break;
        }
        if (*s == '#')
            return fail(hc, 400, "fragment in request target");
    }
    if (q) {
        r->path = (pt_str){t.p, (size_t)(q - t.p)};
        r->query = (pt_str){q + 1, t.len - (size_t)(q - t.p) - 1};
    } else {
        r->path = t;
        r->query = (pt_str){"", 0};
    }
    return 0;
}

static void pin(pt_http1_conn *hc);
static void abort_handler(pt_http1_conn *hc);
static void body_started(pt_http1_conn *hc);

/* A copy of `s` in the arena (the empty string if the arena is out of room: a 16 KiB head
 * limit keeps that from happening with the default limits). */
static pt_str copy_str(pt_request *r, pt_str s)
{
    if (!s.p || !s.len)
        return (pt_str){"", 0};
    char *d = pt_request_alloc(r, s.len + 1);
    if (!d)
        return (pt_str){"", 0};
    memcpy(d, s.p, s.len);
    d[s.len] = '\0';
    return (pt_str){d, s.len};
}

/* The core's number of an llhttp method: the same where the core names it. */
_Static_assert((int)PT_METHOD_DELETE == (int)HTTP_DELETE && (int)PT_METHOD_GET == (int)HTTP_GET &&
                   (int)PT_METHOD_HEAD == (int)HTTP_HEAD && (int)PT_METHOD_POST == (int)HTTP_POST &&
                   (int)PT_METHOD_PUT == (int)HTTP_PUT &&
                   (int)PT_METHOD_CONNECT == (int)HTTP_CONNECT &&
                   (int)PT_METHOD_OPTIONS == (int)HTTP_OPTIONS &&
                   (int)PT_METHOD_TRACE == (int)HTTP_TRACE &&
                   (int)PT_METHOD_PATCH == (int)HTTP_PATCH,
               "pt_method numbers llhttp's");

static int method_id(int method)
{
    return method <= HTTP_TRACE || method == HTTP_PATCH ? method : PT_METHOD_OTHER;
}

static pt_str method_name(int method)
{
    static pt_str names[64]; /* filled once: llhttp's names with their lengths */
    if (method < 0 || method >= 64)
        return PT_STR_LIT("-");
    if (!names[method].p) {
        const char *n = llhttp_method_name((llhttp_method_t)method);
        names[method] = (pt_str){n, strlen(n)};
    }
    return names[method];
}

/* "OPTIONS *" asks about the server in general (RFC 9110 section 9.3.7): the methods porter
 * answers itself. */
static void answer_options_asterisk(pt_request *r)
{
    pt_response resp;
    pt_response_init(&resp, 204);
    resp.allow = "GET, HEAD, OPTIONS";
    pt_request_respond(r, &resp);
}

static int on_headers_complete(llhttp_t *p)
{
    pt_http1_conn *hc = hc_of(p);
    pt_request *r = &hc->r->req;
    const char *base = pt_inbuf_begin(&hc->conn->in);

    r->version_major = p->http_major;
    r->version_minor = p->http_minor;
    r->method_id = method_id(p->method);
    r->method = method_name(p->method);
    r->target = (pt_str){base + hc->r->url.off, hc->r->url.len};
    if (p->http_major != 1) {
        /* llhttp reads a request line without a version as HTTP/0.9: malformed here. */
        const char *after_url = base + hc->r->url.off + hc->r->url.len;
        if (*after_url == '\r' || *after_url == '\n')
            return fail(hc, 400, "request line without an HTTP version");
        return fail(hc, 505, "unsupported HTTP version");
    }
    r->keep_alive = llhttp_should_keep_alive(p);
    r->headers = pt_request_alloc_large(r, hc->r->nhdrs * sizeof *r->headers);
    if (hc->r->nhdrs && !r->headers)
        return fail(hc, 431, "request header fields too large");
    r->nheaders = hc->r->nhdrs;
    /* Every field is in place before any is checked: a refused request is still logged and
     * answered, and those look at its fields. */
    for (size_t i = 0; i < hc->r->nhdrs; i++) {
        r->headers[i].name = (pt_str){base + hc->r->hdrs[i].name.off, hc->r->hdrs[i].name.len};
        r->headers[i].value =
            trim((pt_str){base + hc->r->hdrs[i].value.off, hc->r->hdrs[i].value.len});
    }

    int nhost = 0;
    for (size_t i = 0; i < hc->r->nhdrs; i++) {
        const pt_header *h = &r->headers[i];
        /* llhttp lets "Name :" through; RFC 9112 section 5.1 says reject it (smuggling). */
        for (size_t k = 0; k < h->name.len; k++)
            if (!pt_h1_is_tchar((unsigned char)h->name.p[k]))
                return fail(hc, 400, "invalid header field name");
        if (h->name.len == 0)
            return fail(hc, 400, "empty header field name");
        /* Only four names matter here; their lengths tell most others apart at once. */
        size_t nl = h->name.len;
        if (nl == 2 && pt_str_ieq(h->name, "te")) {
            r->te_trailers = pt_h1_has_token(h->value.p, h->value.len, "trailers");
            continue;
        }
        if (nl != 4 && nl != 6 && nl != 17)
            continue;
        if (pt_str_ieq(h->name, "host")) {
            nhost++;
            if (!r->host.p)
                r->host = h->value;
        } else if (pt_str_ieq(h->name, "transfer-encoding")) {
            /* HTTP/1.0 has no chunked coding: its framing would be read two ways (RFC 9112
             * section 6.1). */
            if (r->version_minor == 0)
                return fail(hc, 400, "Transfer-Encoding in an HTTP/1.0 request");
            if (check_transfer_encoding(hc, h->value))
                return HPE_USER;
            r->chunked = true;
        } else if (pt_str_ieq(h->name, "expect")) {
            if (!pt_str_ieq(h->value, "100-continue"))
                return fail(hc, 417, "unsupported expectation");
            /* An HTTP/1.0 client cannot have asked for it (RFC 9110 section 10.1.1). */
            r->expect_continue = r->version_minor >= 1;
        }
    }
    if (nhost > 1)
        return fail(hc, 400, "duplicate Host");
    if (nhost == 0 && r->version_minor >= 1)
        return fail(hc, 400, "missing Host");
    if (nhost && !pt_uri_authority_valid(r->host.p, r->host.len))
        return fail(hc, 400, "invalid Host");
    if (p->flags & F_CONTENT_LENGTH) {
        r->has_length = true;
        r->content_length = p->content_length;
    }
    if (parse_target(hc, r))
        return HPE_USER;

    hc->site_ops->select(hc->site, r);
    const pt_limits *lim = r->limits;
    if (r->has_length && r->content_length > lim->max_request_body_length)
        return fail(hc, 413, "request body too large");

    pt_conn_set_state(hc->conn, PT_CONN_WRITING);
    hc->phase = PHASE_BODY;
    pt_conn_count_request(hc->conn);
    http_req *x = hc->r;
    /* The request line (one space each side of the target, strict parsing) and the fields as
     * header_budget counted them, with the blank line. */
    r->request_length =
        r->method.len + 1 + x->url.len + sizeof " HTTP/1.1\r\n" - 1 + x->head_bytes + 2;
    /* The handler's time to answer starts now, before it runs, so that it may move it. */
    pt_conn_reset_timeout(hc->conn, hc->conn->limits->response_timeout);
    if (r->path.len == 1 && r->path.p[0] == '*')
        answer_options_asterisk(r);
    else
        hc->site_ops->route(r);
    if (hc->conn->dead)
        return HPE_USER;
    bool has_body = r->has_length || r->chunked;
    if (!x->response_done || r->body_cb) {
        /* The handler goes on after this call: the head must outlive the in-buffer's bytes. */
        pin(hc);
    }
    if (has_body && !r->body_cb && !x->response_done) {
        /* Nobody has said yet whether the body is wanted: stop here, keep it in the socket. */
        x->held = true;
        return HPE_PAUSED;
    }
    if (has_body)
        body_started(hc);
    return 0;
}

/* Reading a body (to a handler, or to discard it) starts: its idle timeout, and the answer to
 * a client that waits for "100 Continue". */
static void body_started(pt_http1_conn *hc)
{
    http_req *x = hc->r;
    pt_request *r = &x->req;
    pt_conn_reset_timeout(hc->conn, hc->conn->limits->request_body_timeout);
    if (!r->expect_continue || x->continue_sent)
        return;
    if (r->body_cb && !x->responded) {
        static const char go[] = "HTTP/1.1 100 Continue\r\n\r\n";
        pt_outq_push_ref(&hc->conn->out, go, sizeof go - 1, NULL, NULL);
        x->continue_sent = true;
    } else {
        /* We answered without inviting the body, so it may never come (or come anyway): this
         * connection cannot carry another request. */
        hc->close_after = true;
    }
}

/* Copies the request head out of the in-buffer into the arena, for a handler that keeps the
 * request past the end of its first call. (norm_path was the router's and is not kept, unless
 * the guard, holding the request, copied it into the arena for the handler to come.) */
static void pin(pt_http1_conn *hc)
{
    http_req *x = hc->r;
    pt_request *r = &x->req;
    if (x->pinned)
        return;
    x->pinned = true;
    pt_str *strs[] = {&r->target, &r->path, &r->query, &r->host};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        *strs[i] = copy_str(r, *strs[i]);
    for (size_t i = 0; i < r->nheaders; i++) {
        r->headers[i].name = copy_str(r, r->headers[i].name);
        r->headers[i].value = copy_str(r, r->headers[i].value);
    }
    /* (The guard's copy of a held request's path is in the arena already: it stays.) */
    if (!r->norm_path_kept)
        r->norm_path = (pt_str){"", 0};
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    pt_http1_conn *hc = hc_of(p);
    http_req *x = hc->r;
    x->body_seen += len;
    x->req.request_length += len;
    if (x->body_seen > x->req.limits->max_request_body_length)
        return fail(hc, 413, "request body too large");
    /* An idle timeout between body reads: moving a timer later costs no system call. */
    pt_conn_reset_timeout(hc->conn, hc->conn->limits->request_body_timeout);
    if (x->req.body_cb) {
        x->req.body_cb(&x->req, at, len, 0, x->req.body_data);
        if (hc->conn->dead || hc->r != x)
            return HPE_USER;
        if (x->body_paused)
            return HPE_PAUSED; /* the reader is full: stop right after this piece */
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    pt_http1_conn *hc = hc_of(p);
    hc->r->message_done = true;
    /* One request at a time: the next pipelined one waits until this one is finished. */
    return HPE_PAUSED;
}

/* ---- responses ---- */

bool pt_http1_conn_should_close(pt_http1_conn *hc)
{
    pt_request *r = &hc->r->req;
    pt_conn *c = hc->conn;
    return hc->close_after || !r->keep_alive || c->requests >= c->limits->keepalive_requests ||
           pt_connmgr_is_draining(c->mgr);
}

pt_conn *pt_http1_conn_conn(pt_http1_conn *hc)
{
    return hc->conn;
}

pt_http1_conn *pt_http1_conn_of(const pt_request *req)
{
    return x_of(req)->hc;
}

void pt_http1_conn_responded(pt_http1_conn *hc, bool close)
{
    http_req *x = hc->r;
    x->responded = x->response_done = true;
    if (close)
        hc->close_after = true;
    if (x->held) {
        /* Answered without reading the body: it is discarded. */
        x->held = false;
        body_started(hc);
    }
}

void pt_http1_conn_rate(pt_http1_conn *hc)
{
    http_req *x = hc->r;
    pt_request *r = &x->req;
    x->rated = true;
    pt_conn_set_send_rate(hc->conn, r->limit_rate, r->limit_rate_after, r->start);
}

void pt_http1_conn_stream_started(pt_http1_conn *hc, bool close, bool chunked, int64_t length,
                                  int status)
{
    http_req *x = hc->r;
    x->responded = x->streaming = true;
    x->chunked_out = chunked;
    x->until_close = length < 0 && !chunked;
    x->stream_left = length > 0 ? (uint64_t)length : 0;
    x->status = status;
    if (close)
        hc->close_after = true;
}

/* Answers a request that failed before a handler saw it, then closes: framing may be lost. */
static void respond_error_and_close(pt_http1_conn *hc, int status, const char *why)
{
    if (!req_state(hc)->begun)
        request_begin(hc);
    pt_request *r = &hc->r->req;
    if (!r->vhost) {
        /* Refused before a virtual host was chosen: the address's default one answers. */
        pt_str host = r->host;
        r->host = (pt_str){"", 0};
        hc->site_ops->select(hc->site, r);
        r->host = host;
    }
    if (!r->method.p)
        r->method = PT_STR_LIT("-");
    hc->close_after = true;
    pt_conn_set_linger(hc->conn);
    pt_conn_set_state(hc->conn, PT_CONN_WRITING);
    http_req *x = hc->r;
    if (r->body_cb && !x->message_done) {
        pt_body_cb cb = r->body_cb;
        r->body_cb = NULL;
        cb(r, NULL, 0, status == 413 ? -EMSGSIZE : -EPROTO, r->body_data);
        if (hc->conn->dead)
            return;
    }
    if (x->streaming && !x->response_done) {
        /* Half a response is out: its framing cannot be finished. */
        pt_conn_kill(hc->conn);
        return;
    }
    if (!hc->r->responded) {
        if (status == 408)
            pt_request_log(r, PT_LOG_INFO, "client timed out (408): %s", why);
        else
            pt_request_log(r, PT_LOG_INFO, "client sent an invalid request (%d): %s", status, why);
        pt_request_respond_error(r, status);
    }
    request_end(hc);
    pt_conn_close(hc->conn);
}

/* Whether the request line ends in a well-formed "HTTP/D.D" llhttp would not take (HTTP/1.2,
 * HTTP/4.0): that version is not supported (505). Anything else is a bad request line. */
static bool well_formed_version(pt_http1_conn *hc)
{
    const char *b = pt_inbuf_begin(&hc->conn->in);
    size_t n = pt_inbuf_len(&hc->conn->in);
    const char *end = memchr(b, '\n', n);
    if (end && end > b && end[-1] == '\r')
        end--;
    else if (!end)
        end = b + n; /* llhttp stopped at the version before the line's end arrived */
    if (end - b < 10)
        return false;
    const char *v = end - 9; /* " HTTP/D.D" */
    return v[0] == ' ' && memcmp(v + 1, "HTTP/", 5) == 0 && v[6] >= '0' && v[6] <= '9' &&
           v[7] == '.' && v[8] >= '0' && v[8] <= '9';
}

/* A request refused as malformed or over a limit: counted, answered, closed. */
static void reject(pt_http1_conn *hc, int status, const char *why)
{
    pt_conn_count_invalid(hc->conn);
    respond_error_and_close(hc, status, why);
}

static int status_for(pt_http1_conn *hc, llhttp_errno_t err)
{
    /* A callback that stopped the parser chose the status (llhttp reports an error from
     * on_headers_complete as HPE_CB_HEADERS_COMPLETE, from the others as HPE_USER). */
    if (hc->r->error_status)
        return hc->r->error_status;
    switch (err) {
    case HPE_INVALID_VERSION:
        return well_formed_version(hc) ? 505 : 400;
    case HPE_INVALID_METHOD: {
        /* An unknown but well-formed method is not implemented; anything else is garbage. */
        const char *b = pt_inbuf_begin(&hc->conn->in);
        size_t n = pt_inbuf_len(&hc->conn->in), i = 0;
        while (i < n && b[i] >= 'A' && b[i] <= 'Z')
            i++;
        return (i > 0 && i < n && b[i] == ' ') ? 501 : 400;
    }
    default:
        return 400;
    }
}

/* ---- the protocol ---- */

/* A response is complete: the connection goes on if its head said so. A drain that began after
 * the head went out with keep-alive leaves the connection open: the client may be sending its
 * next request already, which is answered with Connection: close (a close now would lose it). */
static void finish_request(pt_http1_conn *hc)
{
    bool close = hc->close_after || !hc->r->responded;
    if (hc->r->rated)
        pt_conn_set_send_rate(hc->conn, 0, 0, 0);
    request_end(hc);
    /* $pipe: the next request is here already */
    hc->pipelined = pt_inbuf_len(&hc->conn->in) > 0;
    hc->phase = PHASE_IDLE;
    if (close)
        pt_conn_close(hc->conn);
}

/* Parses what the in-buffer holds, answering every complete request, as far as the handlers
 * let it: a request whose response is not complete, or whose body is held or paused, stops
 * it until the handler moves (kick). */
static void process(pt_http1_conn *hc)
{
    pt_conn *c = hc->conn;
    hc->in_process = true;
    while (!c->dead && !c->close_after) {
        http_req *x = hc->r;
        if (x && x->message_done) {
            if (x->req.body_cb) {
                pt_body_cb cb = x->req.body_cb;
                x->req.body_cb = NULL;
                cb(&x->req, NULL, 0, PT_BODY_END, x->req.body_data);
                continue;
            }
            if (!x->response_done)
                break; /* the handler is still answering: the next request waits */
            if (x->rated && !pt_outq_is_empty(&c->out))
                break; /* its rate is its own: the next response waits until it is out */
            finish_request(hc);
            continue;
        }
        if (x && (x->held || x->body_paused))
            break;
        size_t avail = pt_inbuf_len(&c->in);
        if (hc->fed >= avail)
            break;
        const char *begin = pt_inbuf_begin(&c->in), *from = begin + hc->fed;
        x = req_state(hc);
        x->fed_from = from;
        llhttp_errno_t err = llhttp_execute(&x->parser, from, avail - hc->fed);
        if (c->dead)
            break;
        if (hc->r == x && (err == HPE_OK || err == HPE_PAUSED)) {
            const char *to = err == HPE_OK ? begin + avail : llhttp_get_error_pos(&x->parser);
            x->tail = pt_h1_tail(from, to, x->tail);
        }
        x = hc->r;
        if (err == HPE_OK) {
            hc->fed = avail;
            if (hc->phase == PHASE_HEAD) {
                head_incomplete(hc);
            } else if (hc->phase == PHASE_BODY) {
                /* Body bytes are not kept (the head is pinned or done with): let them go. */
                pt_inbuf_consume(&c->in, hc->fed);
                hc->fed = 0;
            }
            break;
        }
        if (err == HPE_PAUSED) {
            /* At the end of the message, of a held head, or of a body piece the reader could
             * not take more after: what was parsed is done with. */
            const char *end = llhttp_get_error_pos(&x->parser);
            pt_inbuf_consume(&c->in, (size_t)(end - begin));
            hc->fed = 0;
            llhttp_resume(&x->parser);
            continue;
        }
        const char *why = x->error_why ? x->error_why : llhttp_get_error_reason(&x->parser);
        reject(hc, status_for(hc, err), why ? why : llhttp_errno_name(err));
        break;
    }
    hc->in_process = false;
}

/* Between requests: the keep-alive timeout runs (a draining manager closes the connection as it
 * turns idle). */
static void become_idle(pt_conn *c)
{
    pt_conn_set_nodelay(c);
    pt_conn_set_state(c, PT_CONN_IDLE);
    pt_conn_reset_timeout(c, c->limits->keepalive_timeout);
}

/* The out-queue is empty: what waited for the responses before it to leave is released. */
static void release_sent(pt_http1_conn *hc)
{
    while (hc->sent) {
        sent_hold *h = hc->sent;
        hc->sent = h->next;
        pt_custodian_shutdown(h->custodian); /* `h` is its memory, valid until reaped */
    }
}

static void after_io(pt_http1_conn *hc)
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
                abort_handler(hc); /* a handler still answering hears that its client left */
                request_end(hc);
                pt_conn_kill(c);
                return;
            }
            pt_conn_close(c);
        }
    }
    if (c->dead)
        return;
    if (c->read_paused && !c->close_after && pt_inbuf_len(&c->in) >= c->in_max &&
        hc->phase == PHASE_HEAD) {
        /* The in-buffer hit its cap without a complete head. */
        bool line = hc->r && hc->r->url.len && hc->r->nhdrs == 0;
        reject(hc, line ? 414 : 431, line ? "request line too long" : "request header too large");
        return;
    }
    /* Input waiting behind a request in progress filled the buffer; once it has room again
     * (and the body reader is not pausing), read on. */
    if (c->read_paused && !(hc->r && hc->r->body_paused) && pt_inbuf_len(&c->in) < c->in_max)
        pt_conn_resume_read(c);
    int r = pt_conn_flush(c);
    if (r < 0 && r != -EAGAIN)
        return;
    if (hc->sent && pt_outq_is_empty(&c->out))
        release_sent(hc);
    if (!c->close_after && hc->phase == PHASE_IDLE && pt_outq_is_empty(&c->out))
        become_idle(c);
}

/* A handler moved (answered, asked for the body, resumed it) from outside the dispatcher's own
 * call: carry on with what it unblocked. */
static void kick(pt_http1_conn *hc)
{
    if (hc->in_process || hc->conn->dead)
        return;
    process(hc);
    after_io(hc);
}

void pt_http1_conn_kick(pt_http1_conn *hc)
{
    kick(hc);
}

static void http_on_read(pt_conn *c)
{
    pt_http1_conn *hc = c->proto_data;
    process(hc);
    after_io(hc);
}

static void http_on_drain(pt_conn *c)
{
    pt_http1_conn *hc = c->proto_data;
    release_sent(hc);
    if (hc->phase == PHASE_IDLE) {
        become_idle(c);
        return;
    }
    http_req *x = hc->r;
    if (x && x->streaming && !x->response_done) {
        /* Written out: the handler's turn again, within response_timeout. */
        pt_conn_reset_timeout(c, c->limits->response_timeout);
        if (x->req.writable_cb)
            x->req.writable_cb(&x->req, x->req.writable_data);
    } else if (x && x->rated && x->response_done) {
        kick(hc); /* a rated response is out: the next request's turn */
    }
}

/* Tells a handler that has not finished that its request is over (client gone, timeout), and
 * releases what it registered with the request. */
static void abort_handler(pt_http1_conn *hc)
{
    http_req *x = hc->r;
    if (!x || x->response_done)
        return;
    pt_request *r = &x->req;
    pt_request_tell_abort(r);
    if (hc->r == x) { /* the callback may have ended the request */
        pt_custodian_shutdown(r->custodian);
        r->custodian = NULL;
    }
}

static void http_on_timeout(pt_conn *c)
{
    pt_http1_conn *hc = c->proto_data;
    if (hc->phase == PHASE_HEAD && pt_outq_is_empty(&c->out)) {
        respond_error_and_close(hc, 408, "request head not received in time");
        if (!c->dead)
            pt_conn_flush(c);
        return;
    }
    http_req *x = hc->r;
    if (x && !x->responded && pt_outq_is_empty(&c->out) && x->req.body_cb && !x->message_done &&
        !x->held && !x->body_paused) {
        /* Its handler waits for the body, and the client stopped sending it within
         * request_body_timeout (nginx's client_body_timeout): the handler is told, its
         * resources are released, and the client gets a 408. */
        abort_handler(hc);
        respond_error_and_close(hc, 408, "request body not received in time");
        if (!c->dead)
            pt_conn_flush(c);
        return;
    }
    if (x && !x->responded && pt_outq_is_empty(&c->out) &&
        (x->message_done || x->held || x->req.body_cb || x->body_paused)) {
        /* The handler did not answer within response_timeout: it is told, its resources are
         * released, and the client gets a 503. */
        pt_request_log(&x->req, PT_LOG_ERROR, "no response within response_timeout");
        abort_handler(hc);
        respond_error_and_close(hc, 503, "response timeout");
        if (!c->dead)
            pt_conn_flush(c);
        return;
    }
    /* Idle, a body stalled after the answer, or a stalled write: nothing useful can be said. */
    pt_conn_kill(c);
}

static void http_on_close(pt_conn *c)
{
    pt_http1_conn *hc = c->proto_data;
    if (!hc)
        return;
    abort_handler(hc);
    request_end(hc);
    release_sent(hc);
}

const pt_conn_proto pt_http1_proto = {
    .on_read = http_on_read,
    .on_drain = http_on_drain,
    .on_timeout = http_on_timeout,
    .on_close = http_on_close,
};

void pt_http1_conn_attach(pt_conn *c, const pt_site_ops *ops, void *site, bool tls)
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
    pt_http1_conn *hc = pt_custodian_alloc(pt_conn_custodian(c), sizeof *hc);
    hc->conn = c;
    hc->site_ops = ops;
    hc->site = site;
    hc->loop = c->timer.loop;
    hc->tls = tls;
    pt_conn_set_proto(c, &pt_http1_proto, hc);
    /* The in-buffer holds at most one request head (plus slack for what follows it). */
    const pt_limits *l = c->limits;
    size_t head = l->max_request_line_length + l->max_request_header_length;
    if (head < l->max_request_line_length || head > MAX_HEAD_BUFFER) /* overflow, or unlimited */
        head = MAX_HEAD_BUFFER;
    pt_conn_set_input_max(c, head + 1024 < PT_CHUNK_SIZE ? PT_CHUNK_SIZE : head + 1024);
}

/* ---- the handler's side of a request ---- */

/* A streamed response's queue above this asks the handler to wait for the writable callback. */
#define STREAM_HIGH_WATER (64 * 1024)

static void h1_read_body(pt_request *req)
{
    http_req *x = x_of(req);
    pt_http1_conn *hc = x->hc;
    if (x->held) {
        x->held = false;
        body_started(hc);
    }
    kick(hc);
}

static void h1_pause_body(pt_request *req, bool pause)
{
    http_req *x = x_of(req);
    pt_http1_conn *hc = x->hc;
    if (x->body_paused == pause)
        return;
    x->body_paused = pause;
    if (pause) {
        pt_conn_pause_read(hc->conn);
    } else {
        pt_conn_resume_read(hc->conn);
        kick(hc);
    }
}

static void h1_reset_timeout(pt_request *req, double secs)
{
    pt_conn_reset_timeout(x_of(req)->hc->conn, secs);
}

static void h1_adjust_timeout(pt_request *req, double secs)
{
    pt_conn_adjust_timeout(x_of(req)->hc->conn, secs);
}

static int h1_write(pt_request *req, const void *data, size_t len)
{
    http_req *x = x_of(req);
    pt_conn *c = x->hc->conn;
    if (c->dead)
        return -ECONNABORTED;
    if (!x->streaming || x->response_done)
        return -EINVAL;
    if (len && req->method_id != PT_METHOD_HEAD) {
        if (x->chunked_out) {
            char size[24];
            int n = snprintf(size, sizeof size, "%zx\r\n", len);
            pt_outq_push_copy(&c->out, size, (size_t)n);
            pt_outq_push_copy(&c->out, data, len);
            pt_outq_push_copy(&c->out, "\r\n", 2);
        } else {
            if (!x->until_close && len > x->stream_left)
                return -EMSGSIZE; /* more than the Content-Length promised */
            pt_outq_push_copy(&c->out, data, len);
            if (!x->until_close)
                x->stream_left -= len;
        }
        x->sent += len;
    }
    int r = pt_conn_flush(c);
    if (r < 0 && r != -EAGAIN)
        return r;
    if (r == 0)
        pt_conn_reset_timeout(c, c->limits->response_timeout); /* the next piece's deadline */
    return pt_outq_pending(&c->out) > STREAM_HIGH_WATER ? 1 : 0;
}

static int h1_end(pt_request *req)
{
    http_req *x = x_of(req);
    pt_http1_conn *hc = x->hc;
    pt_conn *c = hc->conn;
    if (c->dead)
        return -ECONNABORTED;
    if (!x->streaming || x->response_done)
        return -EINVAL;
    if (x->chunked_out && req->method_id != PT_METHOD_HEAD) {
        if (req->trailers.len) { /* the last chunk, then the trailer section */
            pt_outq_push_copy(&c->out, "0\r\n", 3);
            pt_outq_push_copy(&c->out, req->trailers.p, req->trailers.len);
            pt_outq_push_copy(&c->out, "\r\n", 2);
        } else {
            pt_outq_push_copy(&c->out, "0\r\n\r\n", 5);
        }
    }
    if (x->stream_left && req->method_id != PT_METHOD_HEAD) {
        /* Shorter than its Content-Length: the client would wait for the rest forever. */
        pt_request_log(req, PT_LOG_ERROR, "streamed response ended %llu bytes short",
                       (unsigned long long)x->stream_left);
        pt_conn_kill(c);
        return -EPIPE;
    }
    x->response_done = true;
    req->writable_cb = NULL;
    req->abort_cb = NULL;
    pt_request_access_log(req, x->status, x->sent);
    if (x->held) {
        x->held = false;
        body_started(hc);
    }
    kick(hc);
    return 0;
}

size_t pt_http1_conn_size(void)
{
    return sizeof(pt_http1_conn);
}

/* ---- leaving HTTP (pt_request_upgrade) ---- */

static void upgraded_on_read(pt_conn *c)
{
    pt_http1_conn *hc = c->proto_data;
    hc->up_ops->on_read(c, hc->up_data);
}

static void upgraded_on_drain(pt_conn *c)
{
    pt_http1_conn *hc = c->proto_data;
    release_sent(hc); /* the responses before the upgrade's */
    if (hc->up_ops->on_drain)
        hc->up_ops->on_drain(c, hc->up_data);
}

static void upgraded_on_timeout(pt_conn *c)
{
    pt_http1_conn *hc = c->proto_data;
    if (hc->up_ops->on_timeout)
        hc->up_ops->on_timeout(c, hc->up_data);
    else
        pt_conn_kill(c);
}

static void upgraded_on_close(pt_conn *c)
{
    pt_http1_conn *hc = c->proto_data;
    if (hc->up_ops->on_close)
        hc->up_ops->on_close(c, hc->up_data);
}

static const pt_conn_proto upgraded_proto = {
    .on_read = upgraded_on_read,
    .on_drain = upgraded_on_drain,
    .on_timeout = upgraded_on_timeout,
    .on_close = upgraded_on_close,
};

static int h1_upgrade(pt_request *req, int status, const void *head, size_t len,
                      const pt_upgrade_ops *ops, void *data, pt_conn **out)
{
    http_req *x = x_of(req);
    pt_http1_conn *hc = x->hc;
    pt_conn *c = hc->conn;
    if (c->dead)
        return -ECONNABORTED;
    /* Inside process() the parser would read on into the new protocol's bytes. */
    if (hc->in_process)
        return -EBUSY;
    if (!x->message_done || x->responded)
        return -EINVAL;
    x->responded = x->response_done = true;
    pt_request_access_log(req, status, 0);
    /* What the handler registered stays, and goes with the connection (the request's custodian
     * is a child of the connection's); so does what waits for the response to leave (the
     * upgraded connection is that response's body). */
    req->custodian = NULL;
    req->sent_custodian = NULL;
    req->body_cb = NULL;
    req->abort_cb = NULL;
    req->writable_cb = NULL;
    request_end(hc);
    hc->phase = PHASE_IDLE;
    hc->up_ops = ops;
    hc->up_data = data;
    pt_conn_set_proto(c, &upgraded_proto, hc);
    pt_conn_set_state(c, PT_CONN_WRITING);
    pt_conn_reset_timeout(c, PT_TIMEOUT_NONE);
    pt_conn_resume_read(c);
    pt_outq_push_copy(&c->out, head, len);
    *out = c;
    int r = pt_conn_flush(c);
    return r == -EAGAIN ? 0 : r;
}

/* ---- the rest of what handlers ask ---- */

static void h1_abandon(pt_request *req)
{
    pt_conn_kill(x_of(req)->hc->conn);
}

static bool h1_pending(const pt_request *req)
{
    return !pt_outq_is_empty(&x_of(req)->hc->conn->out);
}

static void h1_release_when_sent(pt_request *req, pt_custodian *c)
{
    pt_http1_conn *hc = x_of(req)->hc;
    if (hc->conn->dead || pt_outq_is_empty(&hc->conn->out)) {
        pt_custodian_shutdown(c);
        return;
    }
    sent_hold *h = pt_custodian_alloc(c, sizeof *h);
    h->custodian = c;
    h->next = hc->sent;
    hc->sent = h;
}

static int h1_local_addr(const pt_request *req, struct sockaddr_storage *out, socklen_t *len)
{
    const pt_conn *c = x_of(req)->hc->conn;
    socklen_t n = sizeof *out;
    memset(out, 0, sizeof *out);
    /* Asked on demand: most handlers never want it, and it costs a system call. */
    if (c->transport.fd < 0)
        return -ENOTCONN;
    if (getsockname(c->transport.fd, (struct sockaddr *)out, &n) < 0)
        return -errno;
    if (len)
        *len = n;
    return 0;
}

static const pt_request_proto http1_proto = {
    .respond = pt_http1_respond,
    .write = h1_write,
    .end = h1_end,
    .read_body = h1_read_body,
    .pause_body = h1_pause_body,
    .reset_timeout = h1_reset_timeout,
    .adjust_timeout = h1_adjust_timeout,
    .abandon = h1_abandon,
    .pending = h1_pending,
    .local_addr = h1_local_addr,
    .upgrade = h1_upgrade,
    .release_when_sent = h1_release_when_sent,
};
