/*
 * The server: a conf turned into virtual hosts, listening sites, connection managers and logs.
 *
 * Each distinct `listen` address is one site: one listener (a socket per address family) and
 * one connection manager whose limits are those of the site's default server. Virtual hosts
 * sharing an address are chosen by Host. Everything hangs off the server's root custodian.
 * An address with `ssl` is a TLS site (site/tls_site.c); the server holds the session-ticket keys
 * its TLS contexts share, and hands them to its successor on a reload. An address with
 * `proxy_protocol` reads a PROXY header on each connection first (site/proxy_site.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/opensslconf.h>

#include "connmgr/tls.h"
#include "listener/sized.h"
#include "porter.h"
#include "server/h2/conn.h"
#include "server/http1/conn.h"
#include "server/handlers/embed.h"
#include "server/site/access.h"
#include "server/site/limiter.h"
#include "server/site/location.h"
#include "server/site/realip.h"
#include "server/handlers/proxy.h"
#include "server/site/site.h"
#include "server/core/logfmt.h"
#include "server/core/stats.h"
#include "server/handlers/upstream.h"
#include "server/handlers/filecache.h"
#include "server/handlers/static.h"
#include "server/handlers/status.h"
#include "server/handlers/metrics.h"
#include "server/conf/conf.h"
#include "server/options.h"

/* Idle connections closed each time accepting backs off for want of file descriptors. */
#define FD_PRESSURE_EVICT 8

/* Sent to a client refused for max_concurrent_per_client. */
#define REFUSAL                                                                                    \
    "HTTP/1.1 503 Service Unavailable\r\nServer: porter\r\nContent-Type: text/plain\r\n"           \
    "Content-Length: 20\r\nConnection: close\r\n\r\ntoo many connections"

struct pt_server {
    struct ev_loop *loop;
    pt_conf *conf;
    pt_custodian *custodian;
    pt_mime *mime;
    pt_filecache *cache;
    pt_access_state *access; /* auth_basic's work pool and remembered passwords */
    pt_vhost *vhosts;
    size_t nvhosts;
    pt_site **sites; /* each its own allocation: listeners and managers point at them */
    size_t nsites;
    pt_log **logs; /* access and servers' error logs, one per distinct path */
    size_t nlogs;
    pt_log *error_log;
    ev_timer tick; /* once a second: flush access logs, publish stats */
    pt_stats_board *board;
    pt_tls_keyring *keyring; /* session-ticket keys of the TLS contexts; NULL without TLS */
    /* the servers behind proxy_pass, with their connection pools */
    pt_upstreams *upstreams;
    int nsockets;     /* listening sockets per address */
    int nslots, slot; /* workers (stats board slots) and this worker's */
    pt_server_stopped_cb on_stopped;
    void *stopped_data;
    size_t sites_draining;
    bool started, stopping;
    pt_embed *embed; /* handlers and added addresses (handlers/embed.c); NULL: none */
    /* The shared zones of limit_req and limit_conn, mapped here, before the workers fork; a
     * reload takes over those that stay the same. NULL: none. */
    pt_limit_zones *zones;
    /* while it is made: sockets inherited from the process before (a binary upgrade) */
    int *inherited;
    size_t ninherited;
};

const char *pt_strerror(int err)
{
    return strerror(err < 0 ? -err : err);
}

void pt_resource_counts_get(pt_resource_counts *out)
{
    out->custodians = pt_custodian_live_count();
    out->unreaped = pt_custodian_unreaped_count();
    out->chunks = pt_chunk_outstanding();
}

const char *pt_version(void)
{
    return PORTER_VERSION_STRING;
}

int pt_version_number(void)
{
    return PORTER_VERSION_NUMBER;
}

/* ---- callbacks from the listener and the managers ---- */

static void on_accept(pt_listener *l, int fd, const struct sockaddr *peer, socklen_t peerlen,
                      void *data)
{
    pt_site *site = data;
    pt_connmgr_admit(site->mgr, fd, peer, peerlen);
}

static void on_accept_error(pt_listener *l, int err, void *data)
{
    pt_log_error(PT_LOG_ERROR, "accept() failed: %s; pausing accepts briefly", strerror(err));
}

/* Out of file descriptors with clients waiting: idle keep-alive connections give theirs up
 * (nginx does the same with its reusable connections), this site's first. */
static void on_fd_pressure(pt_listener *l, void *data)
{
    pt_site *site = data;
    pt_server *s = site->server;
    size_t freed = pt_connmgr_evict_idle(site->mgr, FD_PRESSURE_EVICT);
    for (size_t i = 0; i < s->nsites && freed < FD_PRESSURE_EVICT; i++)
        freed += pt_connmgr_evict_idle(s->sites[i]->mgr, FD_PRESSURE_EVICT - freed);
}

/* ---- what a protocol asks of the site ---- */

/* The virtual host for req->host, and the settings of the request that come with it. */
static void site_select(void *data, pt_request *req)
{
    const pt_vhost *vh = pt_site_select(data, req->host, req);
    pt_vhost_apply(vh, req);
}

/* The server's set_real_ip_from first (nginx's post-read phase), then an embedder's handlers,
 * then the conf's locations. */
static void site_route(pt_request *req)
{
    if (req->vhost->realip && pt_realip_apply(req, req->vhost->realip) != PT_GUARD_PASS) {
        pt_request_respond_error(req, 500);
        return;
    }
    if (!pt_embed_route(req->vhost->server->embed, req))
        pt_route(req);
}

static const pt_site_ops site_ops = {.select = site_select, .route = site_route};

/* On an address that offers HTTP/2, a connection's protocol is chosen by its first read: by
 * ALPN over TLS (the handshake is done by then), else by whether the bytes begin the HTTP/2
 * connection preface (prior knowledge, h2c). */
static void choose_on_read(pt_conn *c)
{
    pt_site *site = c->proto_data;
    bool h2;
    if (site->tls) {
        const unsigned char *alpn = NULL;
        unsigned len = 0;
        SSL *ssl = pt_tls_ssl(&c->transport);
        if (ssl)
            SSL_get0_alpn_selected(ssl, &alpn, &len);
        h2 = len == 2 && memcmp(alpn, "h2", 2) == 0;
    } else {
        int m = pt_h2_preface_match(pt_inbuf_begin(&c->in), pt_inbuf_len(&c->in));
        if (m == 0 && !c->eof)
            return; /* a prefix of the preface: wait for the rest */
        h2 = m == 1;
    }
    if (h2) {
        pt_h2_conn_attach(c, &site_ops, site, site->tls, &site->h2, &site->h2_counters);
        return;
    }
    pt_http1_conn_attach(c, &site_ops, site, site->tls);
    c->proto->on_read(c);
}

static const pt_conn_proto choose_proto = {.on_read = choose_on_read};

/* Sets the connection `c` of `site` going: its protocol (HTTP/1, or the choice by its first
 * read where HTTP/2 may be spoken), and over TLS its handshake's count and time. */
static void site_start(pt_site *site, pt_conn *c)
{
    if (site->h2_chosen)
        pt_conn_set_proto(c, &choose_proto, site);
    else
        pt_http1_conn_attach(c, &site_ops, site, site->tls);
    if (site->tls)
        pt_tls_site_admit(site, c);
}

static void on_admit(pt_conn *c, void *data)
{
    pt_site *site = data;
    if (site->proxy_protocol)
        pt_proxy_site_admit(site, c, site_start); /* the header first, then site_start */
    else
        site_start(site, c);
}

static void on_full(void *data)
{
    pt_site *site = data;
    pt_log_error(PT_LOG_WARN, "max_concurrent connections reached; accepting paused");
    site->mgr_full = true;
    pt_site_update_accepting(site);
}

static void on_room(void *data)
{
    pt_site *site = data;
    site->mgr_full = false;
    pt_site_update_accepting(site);
}

static void stop_tick(pt_server *s)
{
    if (ev_is_active(&s->tick)) {
        ev_ref(s->loop); /* it was unreferenced when started */
        ev_timer_stop(s->loop, &s->tick);
    }
}

/* Copies this worker's counters to its slot of the shared stats board. */
static void publish_stats(pt_server *s)
{
    pt_worker_stats *w = pt_stats_board_slot(s->board, s->slot);
    pt_worker_stats st = {.pid = getpid(), .slot = s->slot, .started = w->started};
    if (!st.started)
        st.started = ev_now(s->loop);
    st.updated = ev_now(s->loop);
    for (size_t i = 0; i < s->nsites; i++) {
        pt_connmgr_stats c;
        pt_connmgr_get_stats(s->sites[i]->mgr, &c);
        st.live += c.live;
        st.reading += c.reading;
        st.writing += c.writing;
        st.idle += c.idle;
        st.parked += c.parked;
        st.lingering += c.lingering;
        if (pt_connmgr_is_draining(s->sites[i]->mgr))
            st.draining += c.live;
        st.accepted += c.accepted;
        st.handled += c.closed;
        st.rejected += c.rejected;
        st.requests += c.requests;
        st.invalid += c.invalid;
        st.bytes_in += c.bytes_in;
        st.bytes_out += c.bytes_out;
        const pt_h2_counters *h2 = &s->sites[i]->h2_counters;
        st.h2_connections += h2->connections;
        st.h2_live += h2->live;
        st.h2_streams += h2->streams;
        st.h2_resets += h2->resets;
        st.h2_floods += h2->floods;
        st.h2_errors += h2->errors;
        st.tls_handshakes += s->sites[i]->tls_handshakes;
        st.tls_resumed += s->sites[i]->tls_resumed;
        st.tls_failed += s->sites[i]->tls_failed;
    }
    st.custodians = pt_custodian_live_count();
    st.timers = pt_timer_armed_count();
    pt_filecache_stats fc;
    pt_filecache_get_stats(s->cache, &fc);
    st.cache_hits = fc.hits;
    st.cache_misses = fc.misses;
    st.cache_bytes = fc.bytes;
    *w = st;
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_server *s = w->data;
    for (size_t i = 0; i < s->nlogs; i++)
        pt_log_tick(s->logs[i]);
    publish_stats(s);
}

static void on_site_drained(void *data)
{
    pt_site *site = data;
    pt_server *s = site->server;
    if (s->sites_draining && --s->sites_draining == 0) {
        stop_tick(s);
        publish_stats(s); /* no connection left: the board says so */
        for (size_t i = 0; i < s->nlogs; i++)
            pt_log_flush(s->logs[i]);
        if (s->on_stopped)
            s->on_stopped(s, s->stopped_data);
    }
}

/* ---- construction ---- */

/* Why the log at `path` did not open with `r`: a syslog server's name that does not resolve
 * says so, anything else is the errno's text. */
static const char *open_failure(const char *path, int r, char *why, size_t len)
{
    const size_t n = strlen(PT_SYSLOG_PREFIX);
    pt_syslog_target t;
    if (r == -EINVAL && strncmp(path, PT_SYSLOG_PREFIX, n) == 0 &&
        pt_syslog_parse(path + n, true, &t, why, len) < 0)
        return why;
    return strerror(-r);
}

static int open_log(pt_server *s, const char *path, const char *what, pt_log **out, char *err,
                    size_t elen)
{
    for (size_t i = 0; i < s->nlogs; i++) {
        if (strcmp(pt_log_path(s->logs[i]), path) == 0) {
            *out = s->logs[i];
            return 0;
        }
    }
    pt_log **logs = realloc(s->logs, (s->nlogs + 1) * sizeof *logs);
    if (!logs)
        return -ENOMEM;
    s->logs = logs;
    int r = pt_log_open(&s->logs[s->nlogs], path);
    if (r < 0) {
        char why[300];
        snprintf(err, elen, "cannot open %s \"%s\": %s", what, path,
                 open_failure(path, r, why, sizeof why));
        return r;
    }
    *out = s->logs[s->nlogs++];
    return 0;
}

/* Opens the access logs `cl` (`n` of them) of a server or location into *out. A file named
 * by several shares one pt_log and its buffering (the conf checked that they agree). */
static int open_access_logs(pt_server *s, const pt_conf_access_log *cl, size_t n,
                            pt_access_log **out, size_t *nout, char *err, size_t elen)
{
    *out = NULL;
    *nout = 0;
    if (!n)
        return 0;
    pt_access_log *v = calloc(n, sizeof *v);
    if (!v)
        return -ENOMEM;
    *out = v;
    for (size_t i = 0; i < n; i++) {
        int r = open_log(s, cl[i].path, "access log", &v[i].log, err, elen);
        size_t size;
        double flush;
        if (r == 0 && cl[i].buffer && !pt_log_buffered(v[i].log, &size, &flush))
            r = pt_log_set_buffer(v[i].log, cl[i].buffer, cl[i].flush, s->loop);
        if (r < 0)
            return r;
        v[i].fmt = cl[i].fmt;
        v[i].cond = cl[i].cond;
        *nout = i + 1;
    }
    return 0;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Applies a conf's default_type and types over the system table. */
static int load_types(pt_mime **out, const char *default_type, const pt_conf_type *types,
                      size_t ntypes, bool *fallback)
{
    int r = pt_mime_new(out, NULL, fallback);
    if (r < 0)
        return r;
    if (default_type && (r = pt_mime_set_default(*out, default_type)) < 0)
        return r;
    for (size_t i = 0; i < ntypes; i++)
        if ((r = pt_mime_add(*out, types[i].type, types[i].ext)) < 0)
            return r;
    return 0;
}

/* A server block whose types differ from the top level's gets a table of its own. */
static int vhost_types(pt_server *s, pt_vhost *vh, const pt_conf_server *cs)
{
    const pt_conf *conf = s->conf;
    bool same = same_str(cs->default_type, conf->default_type) && cs->ntypes == conf->ntypes;
    for (size_t i = 0; same && i < cs->ntypes; i++)
        same = same_str(cs->types[i].type, conf->types[i].type) &&
               same_str(cs->types[i].ext, conf->types[i].ext);
    vh->mime = s->mime;
    if (same)
        return 0;
    int r = load_types(&vh->own_mime, cs->default_type, cs->types, cs->ntypes, NULL);
    vh->mime = vh->own_mime;
    return r;
}

/* Opens the directory `dir` that files are served from into *fd. One that no directive named
 * (the default root) may be missing, as in nginx: a server that only proxies or redirects needs
 * none, and the files it would hold answer 404. Then *fd is -1 and 0 is returned. */
static int open_root(const char *dir, bool named, int *fd)
{
    *fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*fd >= 0)
        return 0;
    int e = -errno;
    return e == -ENOENT && !named ? 0 : e;
}

static pt_stats_board *stats_board(pt_server *s, int *nslots, int *slot);

/* "FILE:LINE:COL: root "DIR": reason", at the root directive that named the directory (the
 * server block when none did: a root from the embedding API). */
static void root_error(const pt_conf_server *cs, char *err, size_t elen, int r)
{
    pt_conf_place at =
        cs->root_at.file ? cs->root_at : (pt_conf_place){cs->file, cs->line, cs->col};
    snprintf(err, elen, "%s:%d:%d: root \"%s\": %s", at.file, at.line, at.col, cs->root,
             strerror(-r));
}

/* What answers each kind of location (the router answers `return` itself). */
static const pt_handler_fn handlers[PT_HANDLER_COUNT] = {
    [PT_HANDLER_STATIC] = pt_static_handle,
    [PT_HANDLER_STATUS] = pt_status_handle,
    [PT_HANDLER_PROXY] = pt_proxy_handle,
    [PT_HANDLER_METRICS] = pt_metrics_handle,
};

/* limit_rate and limit_rate_after of the location that answers (after an internal redirect,
 * the last one's), given to the request as its handler starts, unless a handler set the rate
 * itself (nginx's limit_rate_set). The router answers `return` itself: its text goes unlimited. */
static void apply_rate(pt_request *req)
{
    const pt_conf_location *lc = req->location->conf;
    const pt_conf_limit_rate *lr = lc ? &lc->limit_rate : &req->vhost->conf->limit_rate;
    const pt_conf_if *f = req->overlay ? req->overlay->conf : NULL;
    if (!req->limit_rate_set) /* an `if` that held names its own (site/location.h) */
        req->limit_rate = f && f->rate_named ? f->rate : lr->rate;
    req->limit_rate_after = lr->after;
}

static void rated_static(pt_request *req)
{
    apply_rate(req);
    pt_static_handle(req);
}

static void rated_status(pt_request *req)
{
    apply_rate(req);
    pt_status_handle(req);
}

static void rated_proxy(pt_request *req)
{
    apply_rate(req);
    pt_proxy_handle(req);
}

static void rated_metrics(pt_request *req)
{
    apply_rate(req);
    pt_metrics_handle(req);
}

/* The same for a virtual host whose conf names a send rate: only those pay for it. */
static const pt_handler_fn rated_handlers[PT_HANDLER_COUNT] = {
    [PT_HANDLER_STATIC] = rated_static,
    [PT_HANDLER_STATUS] = rated_status,
    [PT_HANDLER_PROXY] = rated_proxy,
    [PT_HANDLER_METRICS] = rated_metrics,
};

static bool names_rate(const pt_conf_limit_rate *lr)
{
    return lr->rate || lr->after;
}

/* Whether an `if` block of `sc` names limit_rate. */
static bool script_names_rate(const pt_conf_script *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        if (sc->steps[i].cond && sc->steps[i].cond->rate_named)
            return true;
    return false;
}

static bool vhost_names_rate(const pt_conf_server *cs)
{
    bool any = names_rate(&cs->limit_rate);
    for (size_t i = 0; i < cs->nlocations && !any; i++)
        any =
            names_rate(&cs->locations[i].limit_rate) || script_names_rate(&cs->locations[i].script);
    return any;
}

static int setup_vhost(pt_server *s, pt_vhost *vh, const pt_conf_server *cs, char *err, size_t elen)
{
    vh->server = s;
    for (size_t i = 0; i < cs->nnames && !vh->server_name.len; i++)
        if (!strpbrk(cs->names[i], "*~") && cs->names[i][0] != '.')
            vh->server_name = (pt_str){cs->names[i], strlen(cs->names[i])};
    vh->stats_board = stats_board;
    char label[PT_METRICS_LABEL_MAX];
    if ((vh->stats_series = pt_stats_board_add_server(
             s->board, pt_metrics_server_label(cs, label, sizeof label))) < 0)
        return vh->stats_series;
    vh->handlers = vhost_names_rate(cs) ? rated_handlers : handlers;
    vh->conf = cs;
    vh->compress = pt_conf_compress_active(&cs->compress);
    vh->realip = pt_conf_realip_active(&cs->realip);
    vh->limits = cs->limits;
    int r = vhost_types(s, vh, cs);
    if (r < 0) {
        snprintf(err, elen, "%s:%d:%d: cannot load MIME types: %s", cs->file, cs->line, cs->col,
                 strerror(-r));
        return r;
    }
    vh->cache = s->cache;
    vh->access_state = s->access;
    vh->zones = s->zones;
    vh->upstreams = s->upstreams;
    if ((r = open_root(cs->root, cs->root_named, &vh->root_fd)) < 0) {
        root_error(cs, err, elen, r);
        return r;
    }
    if (vh->root_fd < 0) {
        pt_log_error(PT_LOG_NOTICE,
                     "%s:%d: the default root \"%s\" does not exist: files answer 404", cs->file,
                     cs->line, cs->root);
    }
    if ((r = pt_locations_setup(vh, err, elen)) < 0)
        return r;
    if ((r = pt_proxy_vhost_setup(vh, s->upstreams, err, elen)) < 0)
        return r;
    if (cs->ssl.ncerts && (r = pt_tls_vhost_setup(vh, s->keyring, err, elen)) < 0)
        return r;
    for (size_t i = 0; i < vh->nlocations; i++) {
        pt_location *loc = &vh->locations[i];
        const pt_conf_access_log *cl = loc->conf ? loc->conf->access_logs : cs->access_logs;
        size_t n = loc->conf ? loc->conf->naccess_logs : cs->naccess_logs;
        if ((r = open_access_logs(s, cl, n, &loc->access_logs, &loc->naccess_logs, err, elen)) < 0)
            return r;
    }
    const pt_location *base = pt_location_base(vh);
    vh->access_logs = base->access_logs;
    vh->naccess_logs = base->naccess_logs;
    /* A server's own error log; one naming the process's log shares it. */
    vh->error_level = cs->error_log_level;
    if (cs->error_log && !same_str(cs->error_log, s->conf->error_log))
        return open_log(s, cs->error_log, "error log", &vh->error_log, err, elen);
    vh->error_log = s->error_log;
    return 0;
}

static bool same_address(const pt_conf_listen *a, const pt_conf_listen *b)
{
    bool ha = a->host != NULL, hb = b->host != NULL;
    return ha == hb && (!ha || strcmp(a->host, b->host) == 0) && strcmp(a->port, b->port) == 0 &&
           strcmp(a->port, "0") != 0;
}

static int add_to_site(pt_server *s, pt_vhost *vh, const pt_conf_listen *ls)
{
    pt_site *site = NULL;
    for (size_t i = 0; i < s->nsites && !site; i++)
        if (same_address(s->sites[i]->listen, ls))
            site = s->sites[i];
    if (!site) {
        pt_site **sites = realloc(s->sites, (s->nsites + 1) * sizeof *sites);
        if (!sites)
            return -ENOMEM;
        s->sites = sites;
        if (!(site = calloc(1, sizeof *site)))
            return -ENOMEM;
        s->sites[s->nsites++] = site;
        site->server = s;
        site->loop = s->loop;
        site->listen = ls;
    }
    /* The listen that gives the socket options is the address's (the conf allows one). */
    if (ls->options)
        site->listen = ls;
    /* One `ssl` on an address makes it TLS for every server on it, as in nginx; one `http2`
     * makes it offer HTTP/2 (nginx ORs it too). */
    site->tls |= ls->ssl;
    site->http2_listen |= ls->http2;
    site->proxy_protocol |= ls->proxy_protocol; /* as `ssl`: the address's */
    size_t k = 0;
    while (k < site->nvhosts && site->vhosts[k] != vh)
        k++;
    if (k == site->nvhosts) {
        pt_vhost **v = realloc(site->vhosts, (site->nvhosts + 1) * sizeof *v);
        if (!v)
            return -ENOMEM;
        site->vhosts = v;
        site->vhosts[site->nvhosts++] = vh;
        /* The first server listing the address answers unknown hosts, unless one says
         * default_server. */
        if (!site->default_vhost || (ls->default_server && !site->has_explicit_default)) {
            site->default_vhost = vh;
            site->has_explicit_default = ls->default_server;
        }
    }
    /* The address's HTTP/2 connections take its default server's settings, and that server's
     * `http2 on` turns HTTP/2 on for the address (cleartext connections name no server). */
    site->http2 = site->http2_listen || site->default_vhost->conf->http2;
    site->h2 = site->default_vhost->conf->h2;
    return 0;
}

static void format_listen(const pt_conf_listen *ls, char *buf, size_t len)
{
    bool v6 = ls->host && strchr(ls->host, ':');
    snprintf(buf, len, "%s%s%s:%s", v6 ? "[" : "", ls->host ? ls->host : "*", v6 ? "]" : "",
             ls->port);
}

/* TCP_DEFER_ACCEPT for a listen: nginx's `deferred`, one second, after which a silent client is
 * accepted all the same and meets request_read_timeout (or ssl_handshake_timeout). */
static int defer_seconds(const pt_conf_listen *ls)
{
    return ls->deferred ? 1 : 0;
}

/* The sockets of `site` that a previous server already has open for the same listen address and
 * worker count: taken over so that a reload never closes a socket clients are connecting to. */
static bool take_over(pt_server *prev, pt_site *site)
{
    if (!prev)
        return false;
    const pt_conf_listen *ls = site->listen;
    for (size_t i = 0; i < prev->nsites; i++) {
        pt_site *old = prev->sites[i];
        const pt_conf_listen *ol = old->listen;
        if (!old->listeners || !old->listeners[0] || old->nlisteners != site->nlisteners ||
            !same_str(ol->host, ls->host) || strcmp(ol->port, ls->port) != 0 ||
            ol->reuseport != ls->reuseport)
            continue;
        for (size_t k = 0; k < site->nlisteners; k++) {
            site->listeners[k] = old->listeners[k];
            old->listeners[k] = NULL;
            pt_listener_set_callbacks(site->listeners[k], on_accept, on_accept_error, site);
            if (ol->deferred != ls->deferred)
                pt_listener_set_defer_accept(site->listeners[k], defer_seconds(ls));
            if (ol->notsent_lowat != ls->notsent_lowat)
                pt_listener_set_notsent_lowat(site->listeners[k], ls->notsent_lowat);
        }
        return true;
    }
    return false;
}

/* Opens the site's sockets: one set per worker slot when workers share the port with
 * SO_REUSEPORT, so each worker accepts from its own queue. */
static int open_listeners(pt_server *s, pt_site *site, char *err, size_t elen)
{
    const pt_conf_listen *ls = site->listen;
    const pt_limits *limits = &site->default_vhost->limits;
    pt_listener_options lo;
    pt_listener_options_init(&lo);
    lo.host = ls->host;
    lo.port = ls->port;
    lo.backlog = ls->backlog > 0 ? ls->backlog
                                 : (int)(limits->max_waiting > 65535 ? 65535 : limits->max_waiting);
    lo.reuseport = ls->reuseport || site->nlisteners > 1;
    lo.defer_accept = defer_seconds(ls);
    lo.notsent_lowat = ls->notsent_lowat;
    lo.fd_reserve = -1; /* admitted connections keep descriptors for their files */
    char port[16];
    for (size_t k = 0; k < site->nlisteners; k++) {
        /* A socket the process before had bound to the address is taken as it is. */
        int r = -ENOENT;
        if (s->ninherited)
            r = pt_listener_adopt(&site->listeners[k], s->loop, &lo, s->inherited, s->ninherited,
                                  on_accept, on_accept_error, site);
        if (r == -ENOENT)
            r = pt_listener_open(&site->listeners[k], s->loop, &lo, on_accept, on_accept_error,
                                 site);
        if (r < 0) {
            char addr[300];
            format_listen(ls, addr, sizeof addr);
            snprintf(err, elen, "%s:%d:%d: cannot listen on %s: %s", ls->file, ls->line, ls->col,
                     addr, strerror(-r));
            return r;
        }
        pt_listener_set_pressure_cb(site->listeners[k], on_fd_pressure);
        /* Port 0: every slot's sockets share the port the first one got. */
        snprintf(port, sizeof port, "%d", pt_listener_port(site->listeners[0]));
        lo.port = port;
    }
    return 0;
}

static int open_site(pt_server *s, pt_site *site, pt_server *prev, char *err, size_t elen)
{
    site->listeners = calloc(site->nlisteners, sizeof *site->listeners);
    if (!site->listeners)
        return -ENOMEM;
    int r = 0;
    if (!take_over(prev, site) && (r = open_listeners(s, site, err, elen)) < 0)
        return r;
    /* Over TLS, ALPN may choose h2 for a server that SNI names, whatever the default says. */
    site->h2_chosen = site->http2;
    for (size_t k = 0; site->tls && k < site->nvhosts; k++)
        site->h2_chosen |= site->vhosts[k]->conf->http2;
    pt_connmgr_options mo;
    pt_connmgr_options_init(&mo);
    mo.limits = &site->default_vhost->limits;
    mo.proto = &pt_http1_proto;
    mo.proto_size = pt_http1_conn_size();
    /* HTTP/2's state comes after the choice, from the same first arena. */
    if (site->h2_chosen)
        mo.proto_size += pt_h2_conn_size();
    mo.custodian = s->custodian;
    mo.on_admit = on_admit;
    mo.on_full = on_full;
    mo.on_room = on_room;
    mo.on_drained = on_site_drained;
    mo.refusal = REFUSAL;
    mo.refusal_len = sizeof REFUSAL - 1;
    mo.data = site;
    if (site->tls)
        pt_tls_site_setup(site, &mo);
    if (site->proxy_protocol)
        pt_proxy_site_setup(site, &mo);
    r = pt_connmgr_new(&site->mgr, s->loop, &mo);
    if (r < 0)
        snprintf(err, elen, "cannot create the connection manager: %s", strerror(-r));
    return r;
}

void pt_server_options_init_sized(pt_server_options *o, size_t size)
{
    pt_server_options d = {.size = sizeof d};
    pt_sized_init(o, size, &d, sizeof d);
}

int pt_server_new(pt_server **out, struct ev_loop *loop, const char *conf_path, const char *prefix,
                  char *err, size_t errlen)
{
    pt_server_options o;
    pt_server_options_init(&o);
    o.conf_path = conf_path;
    o.prefix = prefix;
    return pt_server_new_with(out, loop, &o, err, errlen);
}

/* A peer that goes away while a response is written must not kill the process: OpenSSL writes
 * with write(2), which raises SIGPIPE. A program that chose its own SIGPIPE handling keeps it. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

int pt_server_new_with(pt_server **out, struct ev_loop *loop, const pt_server_options *o, char *err,
                       size_t errlen)
{
    char dummy[8];
    *out = NULL;
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    pt_server_options opts;
    pt_server_options_init(&opts);
    if (!o || pt_sized_copy(&opts, sizeof opts, o) < 0) {
        snprintf(err, errlen,
                 "pt_server_options of a size this version cannot read (filled by "
                 "pt_server_options_init()?)");
        return -EINVAL;
    }
    o = &opts;
    ignore_sigpipe();
    pt_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    int r = o->conf_path ? pt_conf_load(&s->conf, o->conf_path, o->prefix, err, errlen)
                         : pt_options_conf(&s->conf, o, err, errlen);
    if (r < 0)
        goto fail;
    const pt_conf *conf = s->conf;
    if (conf->error_log) {
        r = pt_log_open(&s->error_log, conf->error_log);
        if (r < 0) {
            char why[300];
            snprintf(err, errlen, "cannot open error log \"%s\": %s", conf->error_log,
                     open_failure(conf->error_log, r, why, sizeof why));
            goto fail;
        }
    }

    bool fallback = false;
    r = load_types(&s->mime, conf->default_type, conf->types, conf->ntypes, &fallback);
    if (r < 0) {
        snprintf(err, errlen, "cannot load MIME types: %s", strerror(-r));
        goto fail;
    }

    s->inherited = o->inherited;
    s->ninherited = o->inherited ? o->ninherited : 0;
    s->nsockets = o->worker_slots > 0 ? o->worker_slots : 1;
    s->nslots = o->workers > 0 ? o->workers : s->nsockets;
    s->board = pt_stats_board_new(s->nslots);
    s->custodian = pt_custodian_new(NULL);
    s->vhosts = calloc(conf->nservers, sizeof *s->vhosts);
    pt_filecache_options fco = {
        .max_bytes = conf->file_cache_size,
        .max_file = conf->file_cache_max_file,
        .validity = conf->file_cache_valid,
        .max_open = conf->open_file_cache_max,
        .inactive = conf->open_file_cache_inactive,
    };
    /* Cached fds must leave room for connections: at most a quarter of the fd table. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        fco.max_open > nofile.rlim_cur / 4)
        fco.max_open = (size_t)(nofile.rlim_cur / 4);
    s->cache = pt_filecache_new(&fco);
    if (s->custodian) {
        pt_upstreams_new(&s->upstreams, loop, s->custodian, conf,
                         o->previous ? o->previous->upstreams : NULL, s->nslots);
        if (pt_access_state_new(&s->access, loop, s->custodian) < 0)
            s->access = NULL;
    }
    if (!s->custodian || !s->vhosts || !s->cache || !s->board || !s->upstreams || !s->access) {
        r = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < conf->nservers; i++)
        s->vhosts[i].root_fd = -1;
    s->nvhosts = conf->nservers;
    /* One set of ticket keys for the life of the process tree: a reload keeps them, so the
     * tickets clients hold still resume. */
    if (o->previous && o->previous->keyring) {
        s->keyring = pt_tls_keyring_ref(o->previous->keyring);
    } else {
        for (size_t i = 0; i < conf->nservers && !s->keyring; i++) {
            if (conf->servers[i].ssl.ncerts && !(s->keyring = pt_tls_keyring_new())) {
                r = -ENOMEM;
                goto fail;
            }
        }
    }
    r = pt_limit_zones_new(&s->zones, conf, o->previous ? o->previous->zones : NULL, err, errlen);
    if (r < 0)
        goto fail;
    for (size_t i = 0; i < conf->nservers; i++) {
        r = setup_vhost(s, &s->vhosts[i], &conf->servers[i], err, errlen);
        if (r < 0)
            goto fail;
        for (size_t j = 0; j < conf->servers[i].nlistens; j++)
            if ((r = add_to_site(s, &s->vhosts[i], &conf->servers[i].listens[j])) < 0)
                goto fail;
    }
    /* Every series is known now: the slots take their final size. */
    if ((r = pt_metrics_add_upstreams(s->board, s->upstreams, conf)) < 0 ||
        (r = pt_stats_board_open(s->board)) < 0)
        goto fail;
    if (o->previous)
        pt_stats_board_set_previous(s->board, o->previous->board);
    for (size_t i = 0; i < s->nsites; i++) {
        s->sites[i]->nlisteners = (size_t)s->nsockets;
        if ((r = open_site(s, s->sites[i], o->previous, err, errlen)) < 0)
            goto fail;
    }
    /* Only now, when nothing can fail any more, does this server's log become the process's. */
    pt_error_log_set(s->error_log, conf->error_log_level);
    if (fallback)
        pt_log_error(PT_LOG_WARN, "/etc/mime.types not readable; using built-in MIME types");
    ev_timer_init(&s->tick, on_tick, 1.0, 1.0);
    s->tick.data = s;
    s->inherited = NULL;
    s->ninherited = 0;
    *out = s;
    return 0;
fail:
    pt_server_free(s);
    *out = NULL;
    return r;
}

/* How files go out over TLS: SSL_sendfile needs OpenSSL built with kernel TLS and a kernel
 * that takes the "tls" socket layer; each connection then also needs a cipher the kernel
 * knows (AES-GCM, ChaCha20-Poly1305), else it falls back by itself. */
static const char *tls_file_bodies(void)
{
#if defined(OPENSSL_NO_KTLS) || !defined(SSL_OP_ENABLE_KTLS)
    return "read + SSL_write (OpenSSL is built without kernel TLS)";
#else
    return pt_tls_ktls_available() ? "sendfile via kernel TLS"
                                   : "read + SSL_write (kernel TLS unavailable)";
#endif
}

/* Worker `slot` of nslots accepts on sockets slot, slot + nslots, ... (or, with more workers
 * than sockets, shares socket slot % sockets): every socket has a worker whatever the two
 * counts, so a reload may change the worker count and take every socket over. */
static void start_listeners(pt_server *s, pt_site *site)
{
    size_t n = site->nlisteners, workers = (size_t)s->nslots, slot = (size_t)s->slot;
    if (workers >= n) {
        if (site->listeners[slot % n])
            pt_listener_start(site->listeners[slot % n]);
        return;
    }
    for (size_t k = slot; k < n; k += workers)
        if (site->listeners[k])
            pt_listener_start(site->listeners[k]);
}

int pt_server_start_worker(pt_server *s, int slot)
{
    if (s->started)
        return -EALREADY;
    if (slot < 0 || slot >= s->nslots)
        return -EINVAL;
    s->started = true;
    s->slot = slot;
    for (size_t i = 0; i < s->nvhosts; i++)
        pt_stats_board_sink(s->board, slot, s->vhosts[i].stats_series, &s->vhosts[i].stats);
    pt_upstreams_start(s->upstreams, slot);
    for (size_t i = 0; i < s->nsites; i++)
        start_listeners(s, s->sites[i]);
    ev_timer_start(s->loop, &s->tick);
    ev_unref(s->loop); /* the once-a-second chores alone must not keep the loop running */
    publish_stats(s);
    if (slot != 0)
        return 0;
    char addr[PT_SOCKADDR_STRLEN];
    bool tls = false;
    for (size_t i = 0; i < s->nsites; i++) {
        struct sockaddr_storage ss[4];
        size_t n = pt_listener_addresses(s->sites[i]->listeners[0], ss, 4);
        tls |= s->sites[i]->tls;
        for (size_t k = 0; k < n && k < 4; k++)
            if (pt_sockaddr_format((struct sockaddr *)&ss[k], addr, sizeof addr) >= 0)
                pt_log_error(PT_LOG_NOTICE, "listening on %s://%s",
                             s->sites[i]->tls ? "https" : "http", addr);
    }
    if (tls)
        pt_log_error(PT_LOG_NOTICE, "TLS file bodies: %s", tls_file_bodies());
    return 0;
}

int pt_server_start(pt_server *s)
{
    return pt_server_start_worker(s, 0);
}

static void close_listeners(pt_site *site)
{
    for (size_t k = 0; site->listeners && k < site->nlisteners; k++) {
        pt_listener_close(site->listeners[k]);
        site->listeners[k] = NULL;
    }
}

static void stop(pt_server *s, bool gentle, pt_server_stopped_cb cb, void *data)
{
    if (s->stopping) {
        for (size_t i = 0; i < s->nsites; i++)
            pt_connmgr_drain(s->sites[i]->mgr, 0);
        return;
    }
    s->stopping = true;
    pt_upstreams_stop(s->upstreams); /* no more health checks from here */
    s->on_stopped = cb;
    s->stopped_data = data;
    s->sites_draining = s->nsites;
    /* Closing this process's copies: a successor holding the same sockets keeps their queues. */
    for (size_t i = 0; i < s->nsites; i++)
        close_listeners(s->sites[i]);
    if (s->nsites == 0) {
        stop_tick(s);
        if (cb)
            cb(s, data);
        return;
    }
    for (size_t i = 0; i < s->nsites; i++) {
        const pt_limits *l = &s->sites[i]->default_vhost->limits;
        if (gentle)
            pt_connmgr_retire(s->sites[i]->mgr, l->shutdown_grace_period);
        else
            pt_connmgr_drain(s->sites[i]->mgr, l->shutdown_grace_period);
    }
}

void pt_server_stop(pt_server *s, pt_server_stopped_cb cb, void *data)
{
    stop(s, false, cb, data);
}

void pt_server_retire(pt_server *s, pt_server_stopped_cb cb, void *data)
{
    stop(s, true, cb, data);
}

void pt_server_free(pt_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nsites; i++) {
        close_listeners(s->sites[i]);
        free(s->sites[i]->listeners);
        s->sites[i]->listeners = NULL; /* connections released below may look at them */
        s->sites[i]->closing = true;
        pt_connmgr_free(s->sites[i]->mgr);
        free(s->sites[i]->vhosts);
        free(s->sites[i]);
    }
    free(s->sites);
    stop_tick(s);
    pt_upstreams_free(s->upstreams); /* idle upstream connections close */
    pt_custodian_shutdown(s->custodian);
    pt_custodian_reap();
    pt_chunk_pool_trim();
    for (size_t i = 0; i < s->nvhosts; i++) {
        pt_tls_vhost_dispose(&s->vhosts[i]);
        pt_proxy_vhost_dispose(&s->vhosts[i]);
        for (size_t k = 0; k < s->vhosts[i].nlocations; k++)
            free(s->vhosts[i].locations[k].access_logs);
        pt_locations_dispose(&s->vhosts[i]);
        if (s->vhosts[i].root_fd >= 0)
            close(s->vhosts[i].root_fd);
        pt_mime_free(s->vhosts[i].own_mime);
    }
    free(s->vhosts);
    for (size_t i = 0; i < s->nlogs; i++)
        pt_log_close(s->logs[i]);
    free(s->logs);
    pt_mime_free(s->mime);
    pt_filecache_free(s->cache);
    pt_log_close(s->error_log); /* the process's error log falls back to stderr if it was this */
    pt_stats_board_unref(s->board);
    pt_limit_zones_free(s->zones); /* after the connections: what they counted is given back */
    pt_tls_keyring_unref(s->keyring);
    pt_conf_free(s->conf);
    pt_embed_free(s->embed); /* after the sites: they point at its listen records */
    free(s);
}

/* ---- what an embedder adds ---- */

static pt_embed *embed_of(pt_server *s)
{
    if (!s->embed)
        s->embed = pt_embed_new();
    return s->embed;
}

int pt_server_handle(pt_server *s, const char *method, const char *path, pt_path_match match,
                     pt_handler_cb cb, void *data)
{
    pt_embed *e = embed_of(s);
    return e ? pt_embed_add_route(e, method, path, match, cb, data) : -ENOMEM;
}

/* Adds the listening address `ls` (borrowed; it must outlive the server) served by the server's
 * first virtual host: opens its sockets and its connection manager, and starts accepting if the
 * server is started. Returns 0 or a negative errno with a message in `err`. */
static int add_listen(pt_server *s, const pt_conf_listen *ls, char *err, size_t errlen)
{
    if (s->stopping)
        return -EBUSY;
    pt_vhost *vh = &s->vhosts[0];
    if (ls->ssl && !vh->ssl_ctx) {
        snprintf(err, errlen, "TLS needs a certificate");
        return -EINVAL;
    }
    for (size_t i = 0; i < s->nsites; i++)
        if (same_address(s->sites[i]->listen, ls))
            return -EEXIST;
    size_t n = s->nsites;
    int r = add_to_site(s, vh, ls);
    if (r == 0) {
        s->sites[n]->nlisteners = (size_t)s->nsockets;
        r = open_site(s, s->sites[n], NULL, err, errlen);
    }
    if (r < 0) {
        for (size_t i = n; i < s->nsites; i++) {
            close_listeners(s->sites[i]);
            free(s->sites[i]->listeners);
            pt_connmgr_free(s->sites[i]->mgr);
            free(s->sites[i]->vhosts);
            free(s->sites[i]);
        }
        s->nsites = n;
        return r;
    }
    if (s->started)
        start_listeners(s, s->sites[n]);
    return 0;
}

int pt_server_listen(pt_server *s, const char *host, const char *port, unsigned flags)
{
    if (!port || !*port ||
        (flags & ~(unsigned)(PT_LISTEN_TLS | PT_LISTEN_REUSEPORT | PT_LISTEN_HTTP2 |
                             PT_LISTEN_PROXY_PROTOCOL)))
        return -EINVAL;
    pt_embed *e = embed_of(s);
    if (!e)
        return -ENOMEM;
    pt_conf_listen *ls = calloc(1, sizeof *ls);
    if (!ls)
        return -ENOMEM;
    /* Stored as a conf's listen is: every address as NULL, IPv6 without brackets. */
    size_t hlen = host ? strlen(host) : 0;
    if (hlen > 1 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen && !(hlen == 1 && host[0] == '*'))
        ls->host = strndup(host, hlen);
    ls->port = strdup(port);
    ls->reuseport = flags & PT_LISTEN_REUSEPORT;
    ls->ssl = flags & PT_LISTEN_TLS;
    ls->http2 = flags & PT_LISTEN_HTTP2;
    ls->proxy_protocol = flags & PT_LISTEN_PROXY_PROTOCOL;
    ls->file = "pt_server_listen";
    ls->line = ls->col = 1;
    if (!ls->port || (hlen && !ls->host)) {
        free(ls->host);
        free(ls->port);
        free(ls);
        return -ENOMEM;
    }
    int r = pt_embed_keep_listen(e, ls);
    if (r < 0) {
        free(ls->host);
        free(ls->port);
        free(ls);
        return r;
    }
    char err[512];
    r = add_listen(s, ls, err, sizeof err);
    if (r < 0)
        pt_embed_drop_listen(e); /* the last kept: `ls` */
    return r;
}

double pt_server_ticket_rotation(const pt_server *s)
{
    return s->keyring ? s->conf->ssl_ticket_rotate : 0;
}

void pt_server_rotate_ticket_keys(pt_server *s)
{
    pt_tls_keyring_rotate(s->keyring);
}

size_t pt_server_addresses(const pt_server *s, struct sockaddr_storage *out, size_t max)
{
    size_t total = 0;
    for (size_t i = 0; i < s->nsites; i++) {
        if (!s->sites[i]->listeners || !s->sites[i]->listeners[0])
            continue;
        struct sockaddr_storage ss[8];
        size_t n = pt_listener_addresses(s->sites[i]->listeners[0], ss, 8);
        for (size_t k = 0; k < n && k < 8; k++, total++)
            if (total < max)
                out[total] = ss[k];
    }
    return total;
}

/* The public levels are the error log's. */
_Static_assert(PT_SERVER_LOG_DEBUG == (int)PT_LOG_DEBUG && PT_SERVER_LOG_INFO == (int)PT_LOG_INFO &&
                   PT_SERVER_LOG_NOTICE == (int)PT_LOG_NOTICE &&
                   PT_SERVER_LOG_WARN == (int)PT_LOG_WARN &&
                   PT_SERVER_LOG_ERROR == (int)PT_LOG_ERROR &&
                   PT_SERVER_LOG_CRIT == (int)PT_LOG_CRIT,
               "pt_server_log levels");

void pt_server_log(pt_server *s, int level, const char *fmt, ...)
{
    (void)s; /* its error log is the process's while it lives */
    if (level < PT_SERVER_LOG_DEBUG)
        level = PT_SERVER_LOG_DEBUG;
    if (level > PT_SERVER_LOG_CRIT)
        level = PT_SERVER_LOG_CRIT;
    va_list ap;
    va_start(ap, fmt);
    pt_log_process((pt_log_level)level, fmt, ap);
    va_end(ap);
}

int pt_server_reopen_logs(pt_server *s)
{
    int r = 0;
    for (size_t i = 0; i < s->nlogs; i++)
        if (pt_log_reopen(s->logs[i]) < 0)
            r = -EIO;
    if (s->error_log && pt_log_reopen(s->error_log) < 0)
        r = -EIO;
    return r;
}

static pt_stats_board *stats_board(pt_server *s, int *nslots, int *slot)
{
    publish_stats(s); /* the asking worker's own numbers are current */
    *nslots = s->nslots;
    *slot = s->slot;
    return s->board;
}

int pt_server_worker_connections(const pt_server *s, int slot, pid_t pid, uint64_t *open,
                                 uint64_t *busy)
{
    if (slot < 0 || slot >= s->nslots)
        return -EINVAL;
    const pt_worker_stats *w = pt_stats_board_slot(s->board, slot);
    if (w->pid != pid)
        return -ESRCH;
    *open = w->live;
    *busy = w->reading + w->writing;
    return 0;
}

static int workers_of(const pt_conf *conf)
{
    if (conf->worker_processes > 0)
        return conf->worker_processes;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int pt_server_worker_processes(const pt_server *s)
{
    return workers_of(s->conf);
}

int pt_server_conf_workers(const char *conf_path, const char *prefix, char *err, size_t errlen)
{
    pt_conf *conf;
    int r = pt_conf_load(&conf, conf_path, prefix, err, errlen);
    if (r < 0)
        return r;
    r = workers_of(conf);
    pt_conf_free(conf);
    return r;
}

const char *pt_server_pid_path(const pt_server *s)
{
    return s->conf->pid_path;
}

/* What a check reports through: its callback, and the first error. */
typedef struct checker {
    pt_server_report_cb report;
    void *data;
    int first;
    int errors;
} checker;

__attribute__((format(printf, 3, 4))) static int found(checker *ck, int r, const char *fmt, ...)
{
    char msg[PATH_MAX + 1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ck->report)
        ck->report(msg, ck->data);
    ck->errors++;
    if (!ck->first)
        ck->first = r;
    return r;
}

static void on_conf_error(const char *msg, void *data)
{
    checker *ck = data;
    if (ck->report)
        ck->report(msg, ck->data);
    ck->errors++;
}

/* Opens the log at `path` as start-up does. An error names the server block `cs` whose log it
 * is (NULL: the top level's own error log, which no server uses and which has no place). */
static void test_log(checker *ck, const pt_conf_server *cs, const char *path, const char *what)
{
    pt_log *l = NULL;
    char why[300];
    int r = pt_log_open(&l, path);
    if (r < 0 && cs)
        found(ck, r, "%s:%d:%d: cannot open %s \"%s\": %s", cs->file, cs->line, cs->col, what, path,
              open_failure(path, r, why, sizeof why));
    else if (r < 0)
        found(ck, r, "cannot open %s \"%s\": %s", what, path,
              open_failure(path, r, why, sizeof why));
    pt_log_close(l);
}

/* The directory a static location serves from, as its vhost opens it (site/location.c):
 * `server_root` says whether the server's own was found. */
static void test_location_root(checker *ck, const pt_conf_server *cs, const pt_conf_location *lc,
                               bool server_root)
{
    const char *dir = lc->alias ? lc->alias : lc->root;
    int fd, r;
    /* the server's own directory was checked with the server, unless it is a missing default
     * that this location names */
    if (lc->handler != PT_HANDLER_STATIC ||
        (!lc->alias && strcmp(lc->root, cs->root) == 0 && (server_root || !lc->root_named)))
        return;
    if ((r = open_root(dir, lc->alias || lc->root_named, &fd)) < 0) {
        /* the root or alias directive; a location that names none: the location itself */
        pt_conf_place at =
            lc->root_at.file ? lc->root_at : (pt_conf_place){lc->file, lc->line, lc->col};
        found(ck, r, "%s:%d:%d: %s \"%s\": %s", at.file, at.line, at.col,
              lc->alias ? "alias" : "root", dir, strerror(-r));
        return;
    }
    if (fd >= 0)
        close(fd);
}

int pt_server_check(const char *conf_path, const char *prefix, pt_server_report_cb report,
                    void *data)
{
    checker ck = {.report = report, .data = data};
    pt_conf *conf = NULL;
    int r = pt_conf_check(&conf, conf_path, prefix, on_conf_error, &ck);
    if (!conf)
        return r;
    ck.first = r;
    /* Upstreams and certificates only in a conf read without error: what they are checked
     * against may be missing from one with errors. */
    char err[1024];
    if (r == 0 && (r = pt_proxy_check(conf, err, sizeof err)) < 0)
        found(&ck, r, "%s", err);
    for (size_t i = 0; i < conf->nservers; i++) {
        const pt_conf_server *cs = &conf->servers[i];
        int fd = -1;
        if ((r = open_root(cs->root, cs->root_named, &fd)) < 0) {
            root_error(cs, err, sizeof err, r);
            found(&ck, r, "%s", err);
        } else if (fd >= 0) {
            close(fd);
        }
        for (size_t k = 0; k < cs->nlocations; k++)
            test_location_root(&ck, cs, &cs->locations[k], fd >= 0);
        for (size_t k = 0; k < cs->naccess_logs; k++)
            test_log(&ck, cs, cs->access_logs[k].path, "access log");
        for (size_t k = 0; k < cs->nlocations; k++) {
            const pt_conf_location *lc = &cs->locations[k];
            for (size_t j = 0; j < lc->naccess_logs; j++)
                test_log(&ck, cs, lc->access_logs[j].path, "access log");
        }
        test_log(&ck, cs, cs->error_log, "error log");
        /* Certificates and keys are read and matched as at start-up. */
        if (cs->ssl.ncerts && !ck.first) {
            pt_vhost vh = {.conf = cs};
            if ((r = pt_tls_vhost_setup(&vh, NULL, err, sizeof err)) < 0)
                found(&ck, r, "%s", err);
            pt_tls_vhost_dispose(&vh);
        }
    }
    /* Opened at start-up even when every server has its own (a server that inherits it was
     * tested above, with its place). */
    if (conf->error_log)
        test_log(&ck, NULL, conf->error_log, "error log");
    pt_conf_free(conf);
    return ck.first;
}

/* The first error of a check, for pt_server_test(). */
typedef struct first_error {
    char *err;
    size_t errlen;
    bool seen;
} first_error;

static void keep_first(const char *msg, void *data)
{
    first_error *f = data;
    if (!f->seen && f->err && f->errlen)
        snprintf(f->err, f->errlen, "%s", msg);
    f->seen = true;
}

int pt_server_test(const char *conf_path, const char *prefix, char *err, size_t errlen)
{
    first_error f = {err, errlen, false};
    if (err && errlen)
        err[0] = '\0';
    return pt_server_check(conf_path, prefix, keep_first, &f);
}

int pt_server_conf_files(const char *conf_path, const char *prefix, pt_server_file_cb cb,
                         void *data, char *err, size_t errlen)
{
    pt_conf *conf;
    int r = pt_conf_load(&conf, conf_path, prefix, err, errlen);
    if (r < 0)
        return r;
    for (size_t i = 0; i < conf->nfiles; i++) {
        size_t k = 0;
        while (k < i && strcmp(conf->files[k], conf->files[i]) != 0)
            k++;
        if (k == i) /* a file included twice is one file */
            cb(conf->files[i], data);
    }
    pt_conf_free(conf);
    return 0;
}

int pt_server_conf_pid(const char *conf_path, const char *prefix, char *out, size_t outlen,
                       char *err, size_t errlen)
{
    /* Read as a check reads it, so that an error elsewhere in the conf does not keep a signal
     * from the running porter (a bad conf is what a reload then reports). */
    first_error f = {err, errlen, false};
    pt_conf *conf = NULL;
    if (err && errlen)
        err[0] = '\0';
    int r = pt_conf_check(&conf, conf_path, prefix, keep_first, &f);
    if (!conf)
        return r;
    snprintf(out, outlen, "%s", conf->pid_path ? conf->pid_path : "");
    pt_conf_free(conf);
    return 0;
}

bool pt_server_user(const pt_server *s, const char **user, const char **group, uid_t *uid,
                    gid_t *gid)
{
    const pt_conf *c = s->conf;
    if (!c->user)
        return false;
    *user = c->user;
    *group = c->group;
    *uid = c->user_uid;
    *gid = c->user_gid;
    return true;
}

int pt_server_chown_logs(pt_server *s, uid_t uid)
{
    int r = 0;
    for (size_t i = 0; i < s->nlogs; i++) {
        const char *path = pt_log_path(s->logs[i]);
        if (strcmp(path, "stderr") != 0 && chown(path, uid, (gid_t)-1) < 0 && r == 0)
            r = -errno;
    }
    if (s->error_log && strcmp(pt_log_path(s->error_log), "stderr") != 0 &&
        chown(pt_log_path(s->error_log), uid, (gid_t)-1) < 0 && r == 0)
        r = -errno;
    return r;
}

size_t pt_server_listen_fds(const pt_server *s, int *out, size_t max)
{
    size_t total = 0;
    for (size_t i = 0; i < s->nsites; i++) {
        const pt_site *site = s->sites[i];
        for (size_t k = 0; site->listeners && k < site->nlisteners; k++) {
            if (!site->listeners[k])
                continue;
            int fds[8];
            size_t n = pt_listener_fds(site->listeners[k], fds, 8);
            for (size_t j = 0; j < n && j < 8; j++, total++)
                if (total < max)
                    out[total] = fds[j];
        }
    }
    return total;
}
