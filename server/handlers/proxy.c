/*
 * The reverse proxy (see proxy.h): the request head sent upstream, attempts and retries, the
 * response streamed to the client. HTTP/1 itself (the head writer, the response parser) is
 * http1/client.c's; upgraded connections are relayed by tunnel.c.
 */
#include "server/handlers/proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connmgr/buffer.h"
#include "connmgr/limits.h"
#include "connmgr/timer.h"
#include "connmgr/tls.h"
#include "server/core/vars.h"
#include "server/handlers/tunnel.h"
#include "server/http1/client.h"
#include "server/site/location.h"
#include "server/site/site.h"

/* Bytes queued towards the upstream above which the client's body is paused, and below which
 * it resumes. */
#define UP_HIGH (64 * 1024)
#define UP_LOW (16 * 1024)
/* The upstream's response head: at most this many bytes. */
#define RESP_HEAD_MAX PT_CHUNK_SIZE
/* The header lines passed to the client (the response head holds 8 KiB in all). */
#define PASSED_MAX 7000
/* Reads from the upstream per readiness event, so one busy upstream does not starve others. */
#define READS_PER_EVENT 8

/* ---- per location ---- */

typedef struct set_header {
    const char *name, *value; /* borrowed from the conf; the value may hold variables */
    size_t name_len;
} set_header;

/* A proxy_redirect: a Location starting with `from` gets `to` instead of that prefix. */
typedef struct redirect {
    char *from, *to; /* one allocation: `from`, then `to` */
    size_t from_len, to_len;
} redirect;

typedef struct proxy_target {
    pt_upstream *up;
    const pt_conf_proxy *conf;
    const char *uri; /* replaces the location's prefix; NULL: the request's URI as sent */
    size_t uri_len;
    char proxy_host[PT_AUTHORITY_HOST_MAX + 16]; /* $proxy_host: the default Host */
    size_t proxy_host_len;
    set_header *sets;
    size_t nsets;
    redirect *redirects;
    size_t nredirects;
    /* proxy_set_header names one of the headers the proxy otherwise writes itself */
    bool set_host, set_xff, set_xfp, set_xfh, set_fwd;
} proxy_target;

typedef struct proxy_vhost {
    proxy_target **targets; /* parallel to the vhost's locations; NULL for other handlers */
    size_t n;
} proxy_vhost;

/* ---- per request ---- */

typedef enum timer_kind { TIMER_NONE, TIMER_SEND, TIMER_READ, TIMER_QUEUE } timer_kind;

/* What proxy_next_upstream weighs when an attempt failed. */
typedef struct retry_facts {
    size_t attempts;      /* counted against proxy_next_upstream_tries (not a stale retry) */
    double first_attempt; /* when the first began, for proxy_next_upstream_timeout */
    bool idempotent;      /* the method may be repeated */
    bool sent_any;        /* a byte of the request went upstream, in any attempt */
    bool body_consumed;   /* a byte of the client's body was read */
} retry_facts;

typedef struct proxy_req {
    pt_request *req; /* NULL once the request is over for us */
    struct ev_loop *loop;
    const proxy_target *t;
    pt_upstream *up;
    pt_upstream_peer *peer;
    pt_upstream_sel sel;       /* the servers tried, and what the balancing method keeps */
    pt_upstream_waiter waiter; /* in the upstream's queue, waiting for a server */
    retry_facts rt;
    pt_connect *connecting;
    pt_outbound *o; /* its watcher (o->io) is ours while we hold it */
    pt_timer timer;
    timer_kind timer_kind;
    pt_outq uq;  /* towards the upstream */
    pt_inbuf ub; /* from the upstream */
    char *head;  /* the request head (a pool chunk), sent again by a retry */
    size_t head_len;
    pt_h1_client *cl; /* the response parser, in `client_mem` */
    int last_error;
    bool has_body, chunked_up, upgrade_req, head_req;
    bool fresh_only, reused;
    bool counted;     /* a connection to `peer` is counted (pt_upstream_pick) */
    bool same_server; /* the next attempt goes to `peer` again (a stale transport) */
    bool got_any;     /* a byte of the response came, in this attempt */
    bool progress;    /* bytes moved since the timer was last set */
    bool body_reading, body_done, body_paused;
    bool request_sent; /* head and whole body written upstream */
    bool responded;    /* a streamed response was started */
    bool paused_for_client;
    bool finished; /* nothing more to do for HTTP */
    bool closed;   /* released */
    _Alignas(max_align_t) unsigned char client_mem[];
} proxy_req;

static void update_io(proxy_req *p);
static void update_timers(proxy_req *p);
static void next_attempt(proxy_req *p);
static void parse(proxy_req *p);
static void pump_read(proxy_req *p);

static bool ieq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return alen == n && strncasecmp(a, lit, n) == 0;
}

/* ---- the request head ---- */

/* X-Forwarded-For's value: what the client sent, then its address. */
static void put_xff_value(pt_h1_hbuf *o, const pt_header *xff, const char *addr)
{
    if (xff && xff->value.len) {
        pt_h1_put(o, xff->value.p, xff->value.len);
        PT_H1_PUT_LIT(o, ", ");
    }
    pt_h1_puts(o, addr);
}

/* One piece of a proxy_set_header value (pt_vars_expand): $uri percent-encoded as a path, the
 * proxy's own variables here, the rest as they are (put refuses CR, LF and NUL). */
typedef struct set_value {
    pt_h1_hbuf *o;
    const proxy_target *t;
    const pt_request *req;
} set_value;

static void put_piece(void *ctx, const pt_var_ref *ref, const char *p, size_t n)
{
    set_value *v = ctx;
    char addr[INET6_ADDRSTRLEN];
    switch (ref->id) {
    case PT_VAR_URI:
        pt_h1_put_path(v->o, (pt_str){p, n});
        break;
    case PT_VAR_PROXY_HOST:
        pt_h1_put(v->o, v->t->proxy_host, v->t->proxy_host_len);
        break;
    case PT_VAR_PROXY_ADD_X_FORWARDED_FOR:
        pt_var_remote_addr(v->req, addr, sizeof addr);
        put_xff_value(v->o, pt_request_header(v->req, "x-forwarded-for"), addr);
        break;
    default:
        pt_h1_put(v->o, p, n);
    }
}

/* Appends `text` with its variables ($name, ${name}) expanded. */
static void expand(pt_h1_hbuf *o, const proxy_target *t, pt_request *req, const char *text)
{
    set_value v = {o, t, req};
    pt_vars_expand(req, text, put_piece, &v);
}

static const set_header *set_for(const proxy_target *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->nsets; i++)
        if (t->sets[i].name_len == len && strncasecmp(t->sets[i].name, name, len) == 0)
            return &t->sets[i];
    return NULL;
}

/* What build_head does with a client's header field: pass it, drop it (hop-by-hop, or one the
 * proxy writes itself), or note it. Decided by length first. */
enum { PASS, DROP, NOTE_CONNECTION, NOTE_XFF, NOTE_FORWARDED };

static int classify(const char *n, size_t len)
{
    switch (len) {
    case 2:
        return ieq(n, len, "te") ? DROP : PASS;
    case 4:
        return ieq(n, len, "host") ? DROP : PASS;
    case 6:
        return ieq(n, len, "expect") ? DROP : PASS; /* the proxy asks for the body itself */
    case 7:
        return ieq(n, len, "trailer") || ieq(n, len, "upgrade") ? DROP : PASS;
    case 9:
        return ieq(n, len, "forwarded") ? NOTE_FORWARDED : PASS;
    case 10:
        return ieq(n, len, "connection")   ? NOTE_CONNECTION
               : ieq(n, len, "keep-alive") ? DROP
                                           : PASS;
    case 14:
        return ieq(n, len, "content-length") ? DROP : PASS;
    case 15:
        return ieq(n, len, "x-forwarded-for") ? NOTE_XFF : PASS;
    case 16:
        return ieq(n, len, "x-forwarded-host") || ieq(n, len, "proxy-connection") ? DROP : PASS;
    case 17:
        return ieq(n, len, "x-forwarded-proto") || ieq(n, len, "transfer-encoding") ? DROP : PASS;
    default:
        return PASS;
    }
}

/* Builds the request head for the upstream into `o`. */
static void build_head(proxy_req *p, pt_h1_hbuf *o)
{
    const proxy_target *t = p->t;
    pt_request *req = p->req;
    const pt_header *conn = NULL, *xff = NULL, *fw = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const pt_header *h = &req->headers[i];
        int k = classify(h->name.p, h->name.len);
        if (k == NOTE_CONNECTION && !conn)
            conn = h;
        else if (k == NOTE_XFF && !xff)
            xff = h;
        else if (k == NOTE_FORWARDED && !fw)
            fw = h;
    }
    /* Fields the client's Connection header names are hop-by-hop too. */
    bool named = conn && pt_h1_names_other_fields(conn->value);

    pt_h1_put(o, req->method.p, req->method.len);
    PT_H1_PUT_LIT(o, " ");
    if (t->uri) {
        /* The location's prefix replaced by the URI of proxy_pass (nginx's rule). */
        const pt_location *loc = req->location;
        pt_h1_put(o, t->uri, t->uri_len);
        pt_str rest = req->norm_path;
        size_t skip = loc->match == PT_MATCH_EXACT ? rest.len
                      : loc->path_len <= rest.len  ? loc->path_len
                                                   : rest.len;
        pt_h1_put_path(o, (pt_str){rest.p + skip, rest.len - skip});
        if (req->query.len) {
            PT_H1_PUT_LIT(o, "?");
            pt_h1_put(o, req->query.p, req->query.len);
        }
    } else {
        char buf[64];
        static const pt_var_ref request_uri = {.id = PT_VAR_REQUEST_URI};
        pt_str u = pt_var_value(req, &request_uri, buf, sizeof buf);
        pt_h1_put(o, u.p, u.len);
    }
    PT_H1_PUT_LIT(o, " HTTP/1.1\r\n");
    if (!t->set_host) {
        PT_H1_PUT_LIT(o, "Host: ");
        pt_h1_put(o, t->proxy_host, t->proxy_host_len);
        PT_H1_PUT_LIT(o, "\r\n");
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const pt_header *h = &req->headers[i];
        const char *n = h->name.p;
        size_t nl = h->name.len;
        if (classify(n, nl) != PASS || (t->nsets && set_for(t, n, nl)))
            continue;
        if (named && pt_h1_named_by(conn->value, h->name))
            continue;
        pt_h1_put_field(o, h->name, h->value);
    }
    char addr[INET6_ADDRSTRLEN], hostbuf[256];
    pt_var_remote_addr(req, addr, sizeof addr);
    const char *scheme = pt_request_scheme(req);
    if (!t->set_xff) {
        PT_H1_PUT_LIT(o, "X-Forwarded-For: ");
        put_xff_value(o, xff, addr);
        PT_H1_PUT_LIT(o, "\r\n");
    }
    if (!t->set_xfp) {
        PT_H1_PUT_LIT(o, "X-Forwarded-Proto: ");
        pt_h1_puts(o, scheme);
        PT_H1_PUT_LIT(o, "\r\n");
    }
    if (!t->set_xfh && req->host.len) {
        PT_H1_PUT_LIT(o, "X-Forwarded-Host: ");
        pt_h1_put(o, req->host.p, req->host.len);
        PT_H1_PUT_LIT(o, "\r\n");
    }
    if (!t->set_fwd) {
        /* RFC 7239: an IPv6 address is quoted and bracketed; the host is quoted when it is not a
         * plain token (a port's colon). */
        PT_H1_PUT_LIT(o, "Forwarded: ");
        if (fw && fw->value.len) {
            pt_h1_put(o, fw->value.p, fw->value.len);
            PT_H1_PUT_LIT(o, ", ");
        }
        bool v6 = strchr(addr, ':') != NULL;
        if (v6)
            PT_H1_PUT_LIT(o, "for=\"[");
        else
            PT_H1_PUT_LIT(o, "for=");
        pt_h1_puts(o, addr);
        if (v6)
            PT_H1_PUT_LIT(o, "]\"");
        pt_str h = req->host;
        if (h.len && h.len < sizeof hostbuf) {
            bool token = true;
            for (size_t k = 0; k < h.len && token; k++)
                token = isalnum((unsigned char)h.p[k]) || strchr("-._~", h.p[k]);
            if (token)
                PT_H1_PUT_LIT(o, ";host=");
            else
                PT_H1_PUT_LIT(o, ";host=\"");
            pt_h1_put(o, h.p, h.len);
            if (!token)
                PT_H1_PUT_LIT(o, "\"");
        }
        PT_H1_PUT_LIT(o, ";proto=");
        pt_h1_puts(o, scheme);
        PT_H1_PUT_LIT(o, "\r\n");
    }
    for (size_t i = 0; i < t->nsets; i++) {
        const set_header *sh = &t->sets[i];
        size_t before = o->len;
        pt_h1_put(o, sh->name, sh->name_len);
        PT_H1_PUT_LIT(o, ": ");
        size_t value_at = o->len;
        expand(o, t, req, sh->value);
        if (o->len == value_at) {
            o->len = before; /* an empty value: the header is not sent (nginx's rule) */
            continue;
        }
        PT_H1_PUT_LIT(o, "\r\n");
    }
    if (req->has_length) {
        char digits[24];
        int n = snprintf(digits, sizeof digits, "%" PRIu64, req->content_length);
        PT_H1_PUT_LIT(o, "Content-Length: ");
        pt_h1_put(o, digits, (size_t)n);
        PT_H1_PUT_LIT(o, "\r\n");
    } else if (req->chunked) {
        PT_H1_PUT_LIT(o, "Transfer-Encoding: chunked\r\n");
    }
    /* TE is the connection's own: the upstream hears that trailers are welcome only when
     * this client welcomes them (they are passed on). */
    if (req->te_trailers)
        PT_H1_PUT_LIT(o, "TE: trailers\r\n");
    if (p->upgrade_req) {
        const pt_header *up = pt_request_header(req, "upgrade");
        PT_H1_PUT_LIT(o, "Connection: upgrade\r\nUpgrade: ");
        pt_h1_put(o, up->value.p, up->value.len);
        PT_H1_PUT_LIT(o, "\r\n");
    }
    PT_H1_PUT_LIT(o, "\r\n");
}

/* ---- releasing ---- */

/* Stops watching the upstream and gives its transport back to the pool (after a complete
 * exchange that left it reusable) or closes it. */
static void release_upstream(proxy_req *p, bool reusable)
{
    if (p->req) /* the attempt's end, for $upstream_response_time */
        pt_request_upstream_end(p->req, ev_now(p->loop));
    if (p->o)
        ev_io_stop(p->loop, &p->o->io);
    pt_timer_cancel(&p->timer);
    p->timer_kind = TIMER_NONE;
    if (p->connecting) {
        pt_connect_cancel(p->connecting);
        p->connecting = NULL;
    }
    if (p->counted) {
        p->counted = false;
        pt_upstream_peer_done(p->up, p->peer);
    }
    if (!p->o)
        return;
    if (reusable && p->up->tls) {
        /* The session (its ticket) lets the next connection to this server skip a full
         * handshake. */
        SSL_SESSION *s = SSL_get1_session(pt_tls_ssl(&p->o->transport));
        if (s) {
            SSL_SESSION_free(p->peer->session);
            p->peer->session = s;
        }
    }
    if (reusable)
        pt_pool_give_back(p->peer->pool, p->o);
    else
        pt_outbound_close(p->o);
    p->o = NULL;
}

/* The request's custodian shuts down: the request ended (answered, client gone, timed out) or
 * the upgraded connection closed. */
static void proxy_release(void *data)
{
    proxy_req *p = data;
    p->closed = true;
    p->req = NULL;
    pt_upstream_unwait(p->up, &p->waiter);
    release_upstream(p, false);
    pt_timer_dispose(&p->timer);
    pt_outq_dispose(&p->uq);
    pt_inbuf_dispose(&p->ub);
    if (p->head)
        pt_chunk_put(p->head);
    p->head = NULL;
}

static void on_client_abort(pt_request *req, void *data)
{
    proxy_req *p = data;
    if (!p->finished)
        pt_request_log(req, PT_LOG_INFO, "client went away while proxying to %s",
                       p->peer ? p->peer->name : p->up->name);
    p->req = NULL;
}

/* The response is half sent and cannot be finished: the client connection goes. */
static void abandon_client(proxy_req *p)
{
    p->finished = true;
    release_upstream(p, false);
    if (p->req)
        pt_request_abandon(p->req);
}

/* ---- proxy_next_upstream: the decisions ----
 *
 * Pure functions of the configuration and of what happened, so that they can be read (and
 * tested) apart from the events they are taken in. */

/* Whether proxy_next_upstream (`conf`) lets the request go to a next server after a failure of
 * `kind` (PT_NEXT_*), at time `now`. A request the server may have acted on goes again only if
 * repeating it is harmless (an idempotent method, or non_idempotent) and the proxy still has
 * all of it (no body byte read from the client); and within proxy_next_upstream_tries and
 * _timeout. Whether a server is left to ask is the balancer's to say. */
static bool may_go_again(const pt_conf_proxy *conf, const retry_facts *f, unsigned kind, double now)
{
    if (!(conf->next_upstream & kind))
        return false;
    bool harmless = f->idempotent || (conf->next_upstream & PT_NEXT_NON_IDEMPOTENT);
    if (f->sent_any && (!harmless || f->body_consumed))
        return false;
    if (conf->next_upstream_tries && f->attempts >= conf->next_upstream_tries)
        return false;
    return now - f->first_attempt < conf->next_upstream_timeout;
}

/* Whether a failure `err` of a transport taken from the pool (`reused`), before any byte of the
 * answer came (`got_any`), says only that the server had closed it while it was idle. */
static bool stale_failure(bool reused, bool got_any, int err)
{
    return reused && !got_any &&
           (err == -ECONNRESET || err == -EPIPE || err == -ECONNABORTED || err == 0);
}

/* What follows an attempt that failed with `err`. */
typedef enum next_step {
    ANSWER_ERROR, /* the client gets 502, or 504 after a timeout */
    ABANDON,      /* the response has started: the client connection goes */
    NEXT_SERVER,  /* the request goes to the next server */
    SAME_SERVER,  /* and again to the same server on a fresh transport (`stale`) */
} next_step;

/* A closed idle connection (`stale`) is always retried; anything else only if proxy_next_upstream
 * names the failure and the request may go again. Nothing is retried once the response has
 * started (`responded`), or when nobody waits for it (`!waiting`). */
static next_step after_failure(const pt_conf_proxy *conf, const retry_facts *f, int err, bool stale,
                               bool responded, bool waiting, double now)
{
    if (responded)
        return ABANDON;
    unsigned kind = err == -ETIMEDOUT ? PT_NEXT_TIMEOUT : PT_NEXT_ERROR;
    if (!waiting || (!stale && !may_go_again(conf, f, kind, now)))
        return ANSWER_ERROR;
    return stale ? SAME_SERVER : NEXT_SERVER;
}

/* The proxy_next_upstream flag of an answer's status (0: none). */
static unsigned next_flag(int status)
{
    switch (status) {
    case 500:
        return PT_NEXT_HTTP_500;
    case 502:
        return PT_NEXT_HTTP_502;
    case 503:
        return PT_NEXT_HTTP_503;
    case 504:
        return PT_NEXT_HTTP_504;
    case 429:
        return PT_NEXT_HTTP_429;
    case 403:
        return PT_NEXT_HTTP_403;
    case 404:
        return PT_NEXT_HTTP_404;
    default:
        return 0;
    }
}

/* Whether a server is left that the request has not been to, of `npeers` (`tried`: by index,
 * with those that cannot be asked: down, or failed by their checks). */
static bool server_left(uint64_t tried, size_t npeers)
{
    uint64_t all = npeers >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << npeers) - 1;
    return (tried & all) != all;
}

/* Whether an answer of `kind` (PT_NEXT_HTTP_*, PT_NEXT_INVALID_HEADER; 0: none) is dropped for
 * the next server's. Only while a server is left to ask: the last answer is passed on as it is
 * (or, invalid, is a 502), as in nginx. */
static bool next_for_answer(const pt_conf_proxy *conf, const retry_facts *f, unsigned kind,
                            bool left, double now)
{
    return kind && may_go_again(conf, f, kind, now) && left;
}

/* ---- failures and retries ---- */

/* Ends the upstream side (the transport goes back to the pool if `reusable`) and hands the
 * client's request back for its last answer: the dispatcher discards what the client still
 * sends. Returns the request, or NULL when there is no one left to answer. */
static pt_request *finish(proxy_req *p, bool reusable)
{
    p->finished = true;
    release_upstream(p, reusable);
    pt_request *req = p->req;
    if (!req)
        return NULL;
    if (p->body_paused) {
        p->body_paused = false;
        pt_request_pause_body(req, false);
        if (p->closed)
            return NULL;
    }
    p->req = NULL; /* the request may end inside the answer */
    return req;
}

static void respond_error(proxy_req *p, int status)
{
    pt_request *req = finish(p, false);
    if (req)
        pt_request_respond_error(req, status);
}

/* Sends the request to the next server (or, after a stale transport, the same one again). What
 * the client still sends of the body waits until the next transport can take it. */
static void go_again(proxy_req *p)
{
    release_upstream(p, false);
    if (p->body_reading && !p->body_done && !p->body_paused) {
        p->body_paused = true;
        pt_request_pause_body(p->req, true);
    }
    next_attempt(p);
}

/* An attempt failed with `err` during `what`. Retries where that is safe, else answers. */
static void attempt_failed(proxy_req *p, int err, const char *what)
{
    bool stale = stale_failure(p->reused, p->got_any, err);
    /* A TLS failure says why (a certificate that does not verify, ...). */
    const char *tls = err == -EPROTO && p->up->tls ? pt_tls_last_error() : "";
    if (p->req)
        pt_request_log(p->req, stale ? PT_LOG_INFO : PT_LOG_ERROR,
                       "upstream %s \"%s\" %s (%s)%s%s%s", p->peer->name, p->up->name, what,
                       err ? strerror(-err) : "connection closed", tls[0] ? ": " : "", tls,
                       stale ? ", retrying on a new connection" : "");
    next_step next = after_failure(p->t->conf, &p->rt, err, stale, p->responded, p->req != NULL,
                                   ev_now(p->loop));
    if (p->req)
        pt_request_upstream_status(p->req, err == -ETIMEDOUT ? 504 : 502);
    if (next == ABANDON) {
        abandon_client(p);
        return;
    }
    release_upstream(p, false);
    p->last_error = err;
    if (!stale)
        pt_upstream_peer_failed(p->up, p->peer, ev_now(p->loop));
    if (next == ANSWER_ERROR) {
        respond_error(p, err == -ETIMEDOUT ? 504 : 502);
        return;
    }
    if (next == SAME_SERVER) {
        /* The server closed an idle connection as it was reused: not its failure, nor a try. */
        p->rt.attempts--;
        p->fresh_only = true;
        p->same_server = true;
    }
    go_again(p);
}

/* ---- writing to the upstream ---- */

/* Writes what is queued. Returns false if the attempt ended. */
static bool pump_write(proxy_req *p)
{
    if (!p->o)
        return false;
    if (!pt_outq_is_empty(&p->uq)) {
        size_t before = p->uq.written;
        int r = pt_outq_flush(&p->uq, &p->o->transport);
        if (p->uq.written != before) {
            p->rt.sent_any = true;
            p->progress = true;
        }
        if (r < 0 && r != -EAGAIN) {
            attempt_failed(p, r, "failed while sending the request");
            return false;
        }
    }
    if (pt_outq_is_empty(&p->uq) && (!p->has_body || p->body_done))
        p->request_sent = true;
    if (p->body_paused && pt_outq_pending(&p->uq) < UP_LOW && p->req) {
        p->body_paused = false;
        pt_request_pause_body(p->req, false);
        if (p->closed || !p->o)
            return false;
    }
    return true;
}

static void on_client_body(pt_request *req, const void *data, size_t len, int status, void *ud)
{
    proxy_req *p = ud;
    if (p->finished || p->closed)
        return; /* answered already: the dispatcher discards the rest */
    if (status < 0) {
        /* The client's body is broken (too large, bad framing) or the client left: the
         * dispatcher answers; the upstream has half a request and cannot be reused. */
        p->finished = true;
        release_upstream(p, false);
        return;
    }
    if (status == PT_BODY_END) {
        p->body_done = true;
        if (p->chunked_up)
            pt_outq_push_copy(&p->uq, "0\r\n\r\n", 5);
    } else if (len) {
        p->rt.body_consumed = true;
        if (p->chunked_up) {
            char size[24];
            int n = snprintf(size, sizeof size, "%zx\r\n", len);
            pt_outq_push_copy(&p->uq, size, (size_t)n);
            pt_outq_push_copy(&p->uq, data, len);
            pt_outq_push_copy(&p->uq, "\r\n", 2);
        } else {
            pt_outq_push_copy(&p->uq, data, len);
        }
    }
    if (!p->o)
        return; /* still connecting: it goes out once connected */
    if (!pump_write(p))
        return;
    if (!p->body_paused && !p->body_done && pt_outq_pending(&p->uq) > UP_HIGH) {
        p->body_paused = true;
        pt_request_pause_body(req, true);
    }
    update_io(p);
    update_timers(p);
}

/* ---- the response ---- */

/* A Location the location's proxy_redirect list rewrites, written into `o`. Returns false
 * when no prefix matches (the line is passed as it is). */
static bool redirect_location(const proxy_target *t, pt_h1_hbuf *o, pt_str v)
{
    for (size_t i = 0; i < t->nredirects; i++) {
        const redirect *r = &t->redirects[i];
        if (v.len < r->from_len || memcmp(v.p, r->from, r->from_len) != 0)
            continue;
        PT_H1_PUT_LIT(o, "Location: ");
        pt_h1_put(o, r->to, r->to_len);
        pt_h1_put(o, v.p + r->from_len, v.len - r->from_len);
        PT_H1_PUT_LIT(o, "\r\n");
        return true;
    }
    return false;
}

/* Whether `name` is one of the `n` (lower-case) names of a proxy_hide_header or
 * proxy_pass_header list. */
static bool listed(char *const *names, size_t n, pt_str name)
{
    for (size_t i = 0; i < n; i++)
        if (ieq(name.p, name.len, names[i]))
            return true;
    return false;
}

/* X-Accel-Limit-Rate: the upstream's send rate for this response, bytes per second, as nginx
 * reads it (digits only; 0: no limit; anything else is ignored). */
static void accel_limit_rate(pt_request *req, pt_str v)
{
    uint64_t n = 0;
    if (!v.len)
        return;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9' || n > (UINT64_MAX - 9) / 10)
            return;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    pt_request_set_limit_rate(req, n);
}

/* The header lines of the upstream's answer `rs` (its fields in `base`) to pass on ("Name:
 * value\r\n" each) into `o`; Content-Type into `ctype` (NUL-terminated) when it fits. `upgrade`
 * keeps Upgrade and Connection. Date and Server are porter's own unless proxy_pass_header names
 * them; proxy_hide_header drops more. X-Accel-Limit-Rate sets the rate of `rated` (if not NULL)
 * and is not passed unless proxy_pass_header names it. Returns which of Date and Server were
 * passed: PASSED_SERVER, PASSED_DATE. */
enum { PASSED_SERVER = 1, PASSED_DATE = 2 };
static int passed_headers(const proxy_target *t, const pt_h1_response *rs, const char *base,
                          pt_h1_hbuf *o, char *ctype, size_t ctype_len, bool upgrade,
                          pt_request *rated)
{
    int passed = 0;
    const pt_conf_proxy *cf = t->conf;
    ctype[0] = '\0';
    /* A Connection header naming other fields makes them hop-by-hop too (rare: looked at only
     * when it does). */
    pt_str conn = {NULL, 0};
    for (size_t i = 0; i < rs->nfields && !conn.p; i++) {
        pt_str n = pt_h1_span_str(base, rs->fields[i].name);
        if (ieq(n.p, n.len, "connection")) {
            pt_str v = pt_h1_span_str(base, rs->fields[i].value);
            if (pt_h1_names_other_fields(v))
                conn = v;
        }
    }
    for (size_t i = 0; i < rs->nfields; i++) {
        pt_str n = pt_h1_span_str(base, rs->fields[i].name);
        pt_str v = pt_h1_span_str(base, rs->fields[i].value);

        if (cf->nhide_headers && listed(cf->hide_headers, cf->nhide_headers, n))
            continue;
        if (n.len == 18 && ieq(n.p, n.len, "x-accel-limit-rate")) {
            if (rated)
                accel_limit_rate(rated, v);
            if (!listed(cf->pass_headers, cf->npass_headers, n))
                continue;
        }
        bool drop;
        switch (n.len) {
        case 4:
        case 6:
            if (!ieq(n.p, n.len, n.len == 4 ? "date" : "server")) {
                drop = false;
            } else if (listed(cf->pass_headers, cf->npass_headers, n)) {
                drop = false;
                passed |= n.len == 4 ? PASSED_DATE : PASSED_SERVER;
            } else {
                drop = true;
            }
            break;
        case 12:
            if (!upgrade && ieq(n.p, n.len, "content-type") && v.len < ctype_len) {
                memcpy(ctype, v.p, v.len);
                ctype[v.len] = '\0';
                continue;
            }
            drop = false;
            break;
        case 8:
            if (!upgrade && ieq(n.p, n.len, "location") && redirect_location(t, o, v))
                continue;
            drop = false;
            break;
        case 14:
            drop = ieq(n.p, n.len, "content-length");
            break;
        default:
            drop = pt_h1_hop_by_hop(n) &&
                   !(upgrade && (ieq(n.p, n.len, "upgrade") || ieq(n.p, n.len, "connection")));
            break;
        }
        if (drop)
            continue;
        if (conn.p && pt_h1_named_by(conn, n))
            continue;
        pt_h1_put_field(o, n, v);
    }
    return passed;
}

/* The client's response from the upstream's head: streamed, or complete without a body.
 * Header lines go into `o` (its `overflow` says they did not fit), the content type into
 * `ctype`; both must outlive pt_request_respond(). */
static void build_response(proxy_req *p, pt_response *r, pt_h1_hbuf *o, char *ctype,
                           size_t ctype_len, bool stream)
{
    const pt_h1_response *rs = pt_h1_client_response(p->cl);
    int passed =
        passed_headers(p->t, rs, pt_inbuf_begin(&p->ub), o, ctype, ctype_len, false, p->req);
    pt_response_init(r, rs->status);
    r->omit_server = passed & PASSED_SERVER;
    r->omit_date = passed & PASSED_DATE;
    r->content_type = ctype[0] ? ctype : NULL;
    r->extra_headers = (pt_str){o->buf, o->len};
    if (stream) {
        r->stream = true;
        r->stream_length = rs->sized ? (int64_t)rs->length : -1;
    } else if (p->head_req && rs->sized) {
        r->body_len = rs->length; /* HEAD: the length of what GET would send */
    } else {
        r->no_body = true;
    }
}

static void on_client_writable(pt_request *req, void *data);
static void start_tunnel(proxy_req *p);

/* The upstream's answer cannot be used. */
static void bad_response(proxy_req *p, const char *why)
{
    char what[200];
    snprintf(what, sizeof what, "sent an invalid response: %s", why);
    if (p->req)
        pt_request_upstream_status(p->req, 502);
    if (p->req)
        pt_request_log(p->req, PT_LOG_ERROR, "upstream %s \"%s\" %s", p->peer->name, p->up->name,
                       what);
    if (p->responded) {
        abandon_client(p);
        return;
    }
    pt_upstream_peer_failed(p->up, p->peer, ev_now(p->loop));
    if (p->req && !pt_h1_client_response(p->cl)->switching &&
        next_for_answer(p->t->conf, &p->rt, PT_NEXT_INVALID_HEADER,
                        server_left(p->sel.tried | pt_upstream_unavailable(p->up), p->up->npeers),
                        ev_now(p->loop))) {
        go_again(p);
        return;
    }
    respond_error(p, 502);
}

/* The final head came: the answer goes to the next server (proxy_next_upstream http_NNN), or
 * streams to the client, or is answered when its message ends (no body; a 101). Returns false
 * when this attempt has nothing more to parse. */
static bool response_head(proxy_req *p)
{
    const pt_h1_response *rs = pt_h1_client_response(p->cl);
    if (p->req)
        pt_request_upstream_status(p->req, rs->status);
    if (rs->switching)
        return true;
    if (p->req &&
        next_for_answer(p->t->conf, &p->rt, next_flag(rs->status),
                        server_left(p->sel.tried | pt_upstream_unavailable(p->up), p->up->npeers),
                        ev_now(p->loop))) {
        pt_request_log(p->req, PT_LOG_ERROR,
                       "upstream %s \"%s\" answered %d, trying the next server", p->peer->name,
                       p->up->name, rs->status);
        /* A 403 or 404 says nothing of the server's health (nginx's rule). */
        if (rs->status != 403 && rs->status != 404)
            pt_upstream_peer_failed(p->up, p->peer, ev_now(p->loop));
        go_again(p);
        return false;
    }
    if (rs->no_body)
        return true; /* answered when the message ends, which is now */
    char lines[PASSED_MAX], ctype[256];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, lines, sizeof lines);
    pt_response r;
    build_response(p, &r, &o, ctype, sizeof ctype, true);
    if (o.overflow || o.forbidden) {
        bad_response(p, o.overflow ? "too big a header" : "CR, LF or NUL in a header field");
        return false;
    }
    p->responded = true;
    if (pt_request_respond(p->req, &r) < 0 || p->closed) {
        /* The client could not take the response (it is gone, or its connection was killed):
         * nothing more can be sent. */
        if (!p->closed && !p->finished)
            abandon_client(p);
        return false;
    }
    pt_response_on_writable(p->req, on_client_writable, p);
    return true;
}

/* A piece of the body: to the client. Returns false when parsing stops here. */
static bool response_piece(proxy_req *p, pt_str piece)
{
    if (!p->responded || !p->req)
        return true;
    int w = pt_response_write(p->req, piece.p, piece.len);
    if (p->closed)
        return false;
    if (w < 0) {
        if (!p->finished)
            abandon_client(p);
        return false;
    }
    if (pt_response_is_full(p->req)) {
        /* The client is full: what was read goes, the rest waits for on_client_writable. */
        p->paused_for_client = true;
        size_t n = pt_h1_client_parsed(p->cl);
        pt_inbuf_consume(&p->ub, n);
        pt_h1_client_consumed(p->cl, n);
        return false;
    }
    return true;
}

/* The end of the upstream's answer. */
static void message_complete(proxy_req *p)
{
    const pt_h1_response *rs = pt_h1_client_response(p->cl);
    if (rs->switching) {
        start_tunnel(p);
        return;
    }
    bool extra = pt_inbuf_len(&p->ub) > pt_h1_client_parsed(p->cl);
    bool reusable = rs->keep_alive && !extra && p->request_sent && !p->upgrade_req;
    /* An answer without a body is built while its head is still in the in-buffer; the
     * transport goes back before the answer, which may end the request. */
    char lines[PASSED_MAX], ctype[256];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, lines, sizeof lines);
    pt_response r;
    if (rs->no_body) {
        build_response(p, &r, &o, ctype, sizeof ctype, false);
        if (o.overflow || o.forbidden) {
            bad_response(p, o.overflow ? "too big a header" : "CR, LF or NUL in a header field");
            return;
        }
    }
    bool no_body = rs->no_body;
    if (!no_body && p->req)
        pt_response_trailers(p->req, pt_h1_client_trailers(p->cl));
    pt_upstream_peer_ok(p->peer);
    pt_request *req = finish(p, reusable);
    if (!req)
        return;
    if (no_body)
        pt_request_respond(req, &r);
    else
        pt_response_end(req);
}

/* Feeds the response parser what the in-buffer holds beyond what it has read, and acts on what
 * it finds. */
static void parse(proxy_req *p)
{
    while (!p->closed && !p->finished && !p->paused_for_client) {
        size_t len = pt_inbuf_len(&p->ub);
        pt_str piece;
        switch (pt_h1_client_feed(p->cl, len ? pt_inbuf_begin(&p->ub) : NULL, len, &piece)) {
        case PT_H1_MORE:
            if (pt_h1_client_response(p->cl)->head_done) {
                /* Body bytes went to the client already; the head is not needed any more. */
                pt_inbuf_consume(&p->ub, len);
                pt_h1_client_consumed(p->cl, len);
            }
            /* A head that came without body bytes goes out now, not with the first piece
             * (which may be long in coming: a stream of events). */
            if (p->responded && p->req && pt_response_pending(p->req))
                pt_response_write(p->req, "", 0);
            return;
        case PT_H1_HEAD:
            if (!response_head(p))
                return;
            break;
        case PT_H1_BODY:
            if (!response_piece(p, piece))
                return;
            break;
        case PT_H1_DONE:
            message_complete(p);
            return;
        case PT_H1_INVALID:
            bad_response(p, pt_h1_client_error(p->cl));
            return;
        }
    }
}

/* ---- reading from the upstream ---- */

static void upstream_eof(proxy_req *p)
{
    switch (pt_h1_client_eof(p->cl)) {
    case PT_H1_DONE: /* a body that runs to the end of the connection ends here */
        message_complete(p);
        return;
    case PT_H1_INVALID:
        bad_response(p, pt_h1_client_error(p->cl));
        return;
    default:
        break;
    }
    if (p->responded) {
        if (p->req)
            pt_request_log(p->req, PT_LOG_ERROR,
                           "upstream %s \"%s\" closed the connection in the middle of the "
                           "response",
                           p->peer->name, p->up->name);
        abandon_client(p);
        return;
    }
    attempt_failed(p, p->got_any ? -ECONNRESET : 0,
                   p->got_any ? "closed the connection before the end of the response head"
                              : "closed the connection before answering");
}

static void pump_read(proxy_req *p)
{
    for (int i = 0; i < READS_PER_EVENT; i++) {
        if (p->paused_for_client || p->finished || p->closed || !p->o)
            return;
        ssize_t n = pt_inbuf_read(&p->ub, &p->o->transport, RESP_HEAD_MAX);
        if (n == -EAGAIN)
            return;
        if (n == -ENOBUFS) {
            bad_response(p, "the response head is too large");
            return;
        }
        if (n == 0) {
            upstream_eof(p);
            return;
        }
        if (n < 0) {
            attempt_failed(p, (int)n, "failed while reading the response");
            return;
        }
        p->got_any = true;
        p->progress = true;
        parse(p);
    }
    /* More may be waiting (or decoded inside TLS): come back in the next iteration. */
    if (!p->paused_for_client && !p->finished && !p->closed && p->o)
        ev_feed_event(p->loop, &p->o->io, EV_READ);
}

static void on_client_writable(pt_request *req, void *data)
{
    proxy_req *p = data;
    if (!p->paused_for_client || p->finished || p->closed)
        return;
    p->paused_for_client = false;
    parse(p);
    if (p->finished || p->closed)
        return;
    pump_read(p);
    if (p->finished || p->closed)
        return;
    update_io(p);
    update_timers(p);
}

/* ---- watching the upstream ---- */

static void update_io(proxy_req *p)
{
    if (!p->o || p->closed)
        return; /* (release_upstream stopped the watcher) */
    int ev = 0;
    if (!p->finished && !p->paused_for_client)
        ev |= EV_READ;
    if (!pt_outq_is_empty(&p->uq))
        ev |= (p->o->transport.want & PT_WANT_READ) ? EV_READ : EV_WRITE;
    if (p->o->transport.want & PT_WANT_WRITE)
        ev |= EV_WRITE;
    pt_outbound_watch(p->o, p->loop, ev);
}

static void update_timers(proxy_req *p)
{
    const pt_conf_proxy *cf = p->t->conf;
    timer_kind k = TIMER_NONE;
    if (p->waiter.queued) {
        k = TIMER_QUEUE;
    } else if (p->o && !p->finished && !p->closed) {
        if (!pt_outq_is_empty(&p->uq))
            k = TIMER_SEND;
        else if (p->request_sent && !p->paused_for_client)
            k = TIMER_READ;
    }
    if (k == TIMER_NONE) {
        pt_timer_cancel(&p->timer);
    } else if (k == TIMER_QUEUE) {
        if (p->timer_kind != TIMER_QUEUE || !pt_timer_is_armed(&p->timer))
            pt_timer_reset(&p->timer, p->up->block->queue_timeout);
    } else if (k != p->timer_kind || p->progress || !pt_timer_is_armed(&p->timer)) {
        pt_timer_reset(&p->timer, k == TIMER_SEND ? cf->send_timeout : cf->read_timeout);
    }
    p->timer_kind = k;
    p->progress = false;
    /* While the proxy waits on the upstream, its own deadlines bound the wait: the client
     * connection's is lifted (it would otherwise be response_timeout). Waiting on the client
     * (its body, or its reading of ours) keeps the client's. */
    if (p->req && !p->finished && !p->closed &&
        (!p->body_reading || p->body_done || p->body_paused) && !pt_response_pending(p->req))
        pt_request_reset_timeout(p->req, PT_TIMEOUT_NONE);
}

static void on_timer(pt_timer *t, void *data)
{
    proxy_req *p = data;
    timer_kind kind = p->timer_kind;
    p->timer_kind = TIMER_NONE;
    if (kind == TIMER_QUEUE) {
        pt_upstream_unwait(p->up, &p->waiter);
        if (p->req)
            pt_request_log(p->req, PT_LOG_ERROR,
                           "no server of upstream \"%s\" could take the request within the "
                           "queue's timeout",
                           p->up->name);
        respond_error(p, 503);
        return;
    }
    if (p->responded) {
        if (p->req)
            pt_request_log(p->req, PT_LOG_ERROR,
                           "upstream %s \"%s\" timed out in the middle of the response",
                           p->peer->name, p->up->name);
        abandon_client(p);
        return;
    }
    attempt_failed(p, -ETIMEDOUT,
                   pt_outq_is_empty(&p->uq) ? "timed out waiting for the response"
                                            : "timed out taking the request");
}

static void on_upstream_io(struct ev_loop *loop, ev_io *w, int revents)
{
    proxy_req *p = w->data;
    int want = p->o->transport.want;
    if (((revents & EV_WRITE) || ((revents & EV_READ) && (want & PT_WANT_READ))) &&
        !pt_outq_is_empty(&p->uq)) {
        if (!pump_write(p))
            return;
    }
    if ((revents & EV_READ) || ((revents & EV_WRITE) && (want & PT_WANT_WRITE)))
        pump_read(p);
    if (p->closed || p->finished || !p->o)
        return;
    update_io(p);
    update_timers(p);
}

/* ---- attempts ---- */

/* Sends the request over `o`, which the attempt now holds. */
static void attach(proxy_req *p, pt_outbound *o)
{
    p->o = o;
    ev_set_cb(&o->io, on_upstream_io);
    o->io.data = p;
    p->got_any = false;
    p->request_sent = false;
    /* A previous attempt's buffers: its head (sent again below) and nothing of the body, or
     * there would be no retry. */
    pt_outq_dispose(&p->uq);
    pt_outq_init(&p->uq);
    pt_inbuf_dispose(&p->ub);
    pt_inbuf_init(&p->ub);
    pt_h1_client_init(p->cl, p->head_req, p->upgrade_req);
    pt_outq_push_ref(&p->uq, p->head, p->head_len, NULL, NULL);
    if (p->has_body && !p->body_reading) {
        /* The body is read now that it has somewhere to go (a client waiting for
         * "100 Continue" is invited now). Pieces may arrive inside this call. */
        p->body_reading = true;
        pt_request_read_body(p->req, on_client_body, p);
        if (p->closed || p->finished || p->o != o)
            return;
    }
    if (!pump_write(p))
        return;
    update_io(p);
    update_timers(p);
}

static void on_connected(pt_outbound *o, int status, void *data)
{
    proxy_req *p = data;
    p->connecting = NULL;
    if (status < 0) {
        attempt_failed(p, status,
                       status == -ETIMEDOUT      ? "timed out connecting"
                       : status == -ECONNREFUSED ? "refused the connection"
                                                 : "could not be connected to");
        return;
    }
    if (p->up->tls) {
        int r = pt_tls_wrap_client(&o->transport, p->up->ssl_ctx, o->transport.fd,
                                   p->peer->tls_name, p->up->verify);
        if (r < 0) {
            pt_outbound_close(o);
            attempt_failed(p, r, "could not start TLS");
            return;
        }
        SSL *ssl = pt_tls_ssl(&o->transport);
        if (!p->up->server_name)
            SSL_set_tlsext_host_name(ssl, NULL); /* the name is still verified, not sent */
        if (p->peer->session)
            SSL_set_session(ssl, p->peer->session);
    }
    attach(p, o);
}

/* Tries the next server (or the same one on a fresh transport, after a stale one). When every
 * server that may take the request is at max_conns, the request waits in the upstream's queue
 * (on_queue_wake comes back here), or is refused when there is no room. */
static void next_attempt(proxy_req *p)
{
    pt_upstream_peer *peer = NULL;
    int r = -EBUSY;
    if (p->same_server) {
        p->same_server = false;
        if (pt_upstream_take(p->up, &p->sel, p->peer) == 0) {
            peer = p->peer;
            r = 0;
        }
    }
    if (!peer)
        r = pt_upstream_pick(p->up, &p->sel, ev_now(p->loop), &peer);
    if (r == -EBUSY) {
        if (p->waiter.queued)
            return;
        if (pt_upstream_wait(p->up, &p->waiter) == 0) {
            update_timers(p); /* queue_timeout bounds the wait */
            return;
        }
        if (p->req)
            pt_request_log(p->req, PT_LOG_ERROR,
                           "every server of upstream \"%s\" is at max_conns%s", p->up->name,
                           p->up->block && p->up->block->queue ? " and its queue is full" : "");
        respond_error(p, 503);
        return;
    }
    pt_upstream_unwait(p->up, &p->waiter);
    if (r < 0) {
        if (p->req)
            pt_request_log(p->req, PT_LOG_ERROR, "no server of upstream \"%s\" answered",
                           p->up->name);
        respond_error(p, p->last_error == -ETIMEDOUT ? 504 : 502);
        return;
    }
    p->peer = peer;
    p->counted = true;
    if (p->req)
        pt_request_upstream_begin(p->req, peer->name, ev_now(p->loop));
    if (p->rt.attempts++ == 0)
        p->rt.first_attempt = ev_now(p->loop);
    pt_outbound *o = p->fresh_only ? NULL : pt_pool_take(peer->pool);
    p->reused = o != NULL;
    if (o) {
        attach(p, o);
        return;
    }
    r = pt_pool_connect(peer->pool, p->t->conf->connect_timeout, on_connected, p, &p->connecting);
    if (r < 0)
        attempt_failed(p, r, "could not be connected to");
}

/* A connection ended somewhere: a request waiting in the queue tries again. */
static void on_queue_wake(pt_upstream_waiter *w)
{
    proxy_req *p = (proxy_req *)(void *)((char *)w - offsetof(proxy_req, waiter));
    next_attempt(p);
    if (!p->closed && !p->finished)
        update_timers(p);
}

static bool method_idempotent(int m)
{
    switch (m) {
    case PT_METHOD_GET:
    case PT_METHOD_HEAD:
    case PT_METHOD_OPTIONS:
    case PT_METHOD_TRACE:
    case PT_METHOD_PUT:
    case PT_METHOD_DELETE:
        return true;
    default:
        return false;
    }
}

static const proxy_target *target_of(pt_request *req)
{
    if (req->overlay && req->overlay->proxy) /* an `if` with proxy_pass held */
        return req->overlay->proxy;
    const proxy_vhost *pv = req->vhost->proxy;
    size_t i = (size_t)(req->location - req->vhost->locations);
    return pv && i < pv->n ? pv->targets[i] : NULL;
}

void pt_proxy_handle(pt_request *req)
{
    const proxy_target *t = target_of(req);
    if (!t) {
        pt_request_respond_error(req, 500);
        return;
    }
    if (req->method_id == PT_METHOD_CONNECT) {
        pt_request_respond_error(req, 405);
        return;
    }
    pt_custodian *cust = pt_request_custodian(req);
    proxy_req *p = pt_custodian_alloc(cust, sizeof *p + pt_h1_client_size());
    pt_custodian_register(cust, proxy_release, p);
    p->cl = (pt_h1_client *)p->client_mem;
    p->req = req;
    p->t = t;
    p->up = t->up;
    p->loop = pt_connector_loop(t->up->connector);
    pt_timer_init(&p->timer, p->loop, on_timer, p);
    pt_outq_init(&p->uq);
    pt_inbuf_init(&p->ub);
    pt_request_on_abort(req, on_client_abort, p);
    p->waiter.wake = on_queue_wake;
    pt_upstream_sel_init(t->up, req, &p->sel);

    p->head_req = req->method_id == PT_METHOD_HEAD;
    p->has_body = req->has_length ? req->content_length > 0 : req->chunked;
    p->chunked_up = req->chunked && !req->has_length;
    const pt_header *conn = pt_request_header(req, "connection");
    p->upgrade_req = conn && pt_h1_has_token(conn->value.p, conn->value.len, "upgrade") &&
                     pt_request_header(req, "upgrade") && !p->has_body && req->version_minor >= 1;
    p->rt.idempotent = method_idempotent(req->method_id);
    /* Only an idempotent request without a body may meet a pooled transport the server is
     * closing: it is sent again on a fresh one. An upgrade never goes back to the pool. */
    p->fresh_only = !p->rt.idempotent || p->has_body || p->upgrade_req;

    p->head = pt_chunk_get();
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, p->head, PT_CHUNK_SIZE);
    build_head(p, &o);
    if (o.forbidden) {
        /* The parser should have refused it; the head is not sent either way. */
        pt_request_log(req, PT_LOG_ERROR,
                       "CR, LF or NUL in a field of the request for the upstream");
        respond_error(p, 400);
        return;
    }
    if (o.overflow) {
        pt_request_log(req, PT_LOG_ERROR, "the request head for the upstream is too large");
        respond_error(p, 500);
        return;
    }
    p->head_len = o.len;
    next_attempt(p);
    /* The proxy's own deadlines take over from the response_timeout the dispatcher set. */
    if (!p->closed && !p->finished)
        update_timers(p);
}

/* ---- upgraded connections ---- */

/* A 101: the client connection is handed to the tunnel (tunnel.h) with the upstream's. */
static void start_tunnel(proxy_req *p)
{
    char head[PASSED_MAX + 64], ctype[8];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, head, sizeof head);
    PT_H1_PUT_LIT(&o, "HTTP/1.1 101 Switching Protocols\r\n");
    passed_headers(p->t, pt_h1_client_response(p->cl), pt_inbuf_begin(&p->ub), &o, ctype,
                   sizeof ctype, true, NULL);
    PT_H1_PUT_LIT(&o, "\r\n");
    if (o.overflow || o.forbidden) {
        bad_response(p, o.overflow ? "the 101 response head is too large"
                                   : "CR, LF or NUL in a header field");
        return;
    }
    pt_upstream_peer_ok(p->peer);
    pt_request *req = p->req;
    ev_io_stop(p->loop, &p->o->io);
    pt_timer_cancel(&p->timer);
    /* What the upstream sent after its head already belongs to the new protocol. */
    size_t parsed = pt_h1_client_parsed(p->cl), extra = pt_inbuf_len(&p->ub) - parsed;
    int r = pt_tunnel_start(req, head, o.len, &p->o, &p->uq,
                            extra ? pt_inbuf_begin(&p->ub) + parsed : NULL, extra,
                            p->t->conf->read_timeout);
    if (r == -EINVAL || r == -EBUSY || r == -ENOTSUP) {
        pt_request_log(req, PT_LOG_ERROR, "cannot switch protocols here (%s)", strerror(-r));
        respond_error(p, 502);
        return;
    }
    if (r < 0 || p->closed)
        return; /* the client went away: everything is released */
    p->req = NULL;
    p->finished = true;
    pt_inbuf_dispose(&p->ub);
}

/* ---- set-up ---- */

static bool conf_name_is(const pt_conf_header *h, const char *lit)
{
    return strcasecmp(h->name, lit) == 0;
}

int pt_proxy_check(const pt_conf *conf, char *err, size_t errlen)
{
    return pt_upstreams_check(conf, err, errlen);
}

static void target_free(proxy_target *t)
{
    if (!t)
        return;
    free(t->sets);
    for (size_t i = 0; i < t->nredirects; i++)
        free(t->redirects[i].from);
    free(t->redirects);
    free(t);
}

/* The location's proxy_redirect list, `default` made concrete: the proxy_pass URL (with its
 * URI, or "/") becomes the location's prefix (or "/"), as nginx's default. */
static int target_redirects(proxy_target *t, const pt_location *loc, const pt_proxy_url *url)
{
    const pt_conf_proxy *px = t->conf;
    if (!px->nredirects)
        return 0;
    t->redirects = calloc(px->nredirects, sizeof *t->redirects);
    if (!t->redirects)
        return -ENOMEM;
    for (size_t i = 0; i < px->nredirects; i++) {
        const pt_conf_header *h = &px->redirects[i];
        const char *to = h->name ? h->value : url->uri ? loc->path : "/";
        redirect *r = &t->redirects[t->nredirects];
        int n = h->name ? asprintf(&r->from, "%s%c%s", h->name, '\0', to)
                        : asprintf(&r->from, "%s://%s%s%c%s", url->tls ? "https" : "http",
                                   url->name, url->uri ? url->uri : "/", '\0', to);
        if (n < 0)
            return -ENOMEM;
        r->from_len = strlen(r->from);
        r->to = r->from + r->from_len + 1;
        r->to_len = strlen(r->to);
        t->nredirects++;
    }
    return 0;
}

/* The target of the proxy settings `px` (location `loc`'s, or an `if` block's of it). */
static int target_new(proxy_target **out, const pt_location *loc, const pt_conf_proxy *px,
                      pt_upstreams *u, char *err, size_t errlen)
{
    pt_upstream *up = pt_upstreams_get(u, px, loc->conf, err, errlen);
    if (!up)
        return -EINVAL;
    proxy_target *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->up = up;
    t->conf = px;
    pt_proxy_url url;
    const char *why;
    pt_proxy_url_parse(px->pass, &url, &why); /* checked by pt_upstreams_get */
    if (url.uri) {
        t->uri = url.uri;
        t->uri_len = strlen(url.uri);
    }
    snprintf(t->proxy_host, sizeof t->proxy_host, "%s", url.name);
    t->proxy_host_len = strlen(t->proxy_host);
    if (target_redirects(t, loc, &url) < 0) {
        target_free(t);
        return -ENOMEM;
    }
    t->sets = calloc(px->nset_headers ? px->nset_headers : 1, sizeof *t->sets);
    if (!t->sets) {
        free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < px->nset_headers; i++) {
        const pt_conf_header *h = &px->set_headers[i];
        t->sets[t->nsets++] = (set_header){h->name, h->value, strlen(h->name)};
        t->set_host |= conf_name_is(h, "host");
        t->set_xff |= conf_name_is(h, "x-forwarded-for");
        t->set_xfp |= conf_name_is(h, "x-forwarded-proto");
        t->set_xfh |= conf_name_is(h, "x-forwarded-host");
        t->set_fwd |= conf_name_is(h, "forwarded");
    }
    *out = t;
    return 0;
}

int pt_proxy_vhost_setup(pt_vhost *vh, pt_upstreams *u, char *err, size_t errlen)
{
    proxy_vhost *pv = NULL;
    for (size_t i = 0; i < vh->nlocations; i++) {
        const pt_location *loc = &vh->locations[i];
        for (size_t k = 0; k < loc->noverlays; k++) {
            pt_overlay *ov = &loc->overlays[k];
            int r = ov->conf->pass ? target_new((proxy_target **)&ov->proxy, loc, &ov->conf->proxy,
                                                u, err, errlen)
                                   : 0;
            if (r < 0)
                return r;
        }
        if (loc->handler != PT_HANDLER_PROXY || !loc->conf)
            continue;
        if (!pv) {
            pv = calloc(1, sizeof *pv);
            if (!pv || !(pv->targets = calloc(vh->nlocations, sizeof *pv->targets))) {
                free(pv);
                return -ENOMEM;
            }
            pv->n = vh->nlocations;
            vh->proxy = pv;
        }
        int r = target_new(&pv->targets[i], loc, &loc->conf->proxy, u, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}

void pt_proxy_vhost_dispose(pt_vhost *vh)
{
    for (size_t i = 0; i < vh->nlocations; i++)
        for (size_t k = 0; k < vh->locations[i].noverlays; k++) {
            target_free(vh->locations[i].overlays[k].proxy);
            vh->locations[i].overlays[k].proxy = NULL;
        }
    proxy_vhost *pv = vh->proxy;
    if (!pv)
        return;
    for (size_t i = 0; i < pv->n; i++)
        target_free(pv->targets[i]);
    free(pv->targets);
    free(pv);
    vh->proxy = NULL;
}
