/*
 * What the dispatcher and handlers know of the server: virtual hosts and the listening groups
 * that pick among them. Internal to server/.
 *
 * A pt_site is one listening address (possibly several sockets, one per address family) with
 * its connection manager and the virtual hosts that listen there; its first `default_server`
 * (else its first vhost) answers requests whose Host matches no server_name, and its limits
 * govern the connection until the request head names a vhost. Owned by the pt_server.
 *
 * A site whose listen says `ssl` speaks TLS (tls_site.c): each of its vhosts has an SSL_CTX
 * with its certificates, every accepted connection gets a TLS transport over its socket (the
 * connection manager's wrap_transport), SNI switches the connection to the vhost it names,
 * and the site bounds the time and the number of handshakes in progress. The SSL_CTXs share
 * one set of session-ticket keys (pt_tls_keyring), which a reload hands to the next server.
 *
 * A site whose listen says `proxy_protocol` (proxy_site.c) reads a PROXY protocol header at the
 * start of each connection, before TLS and HTTP; then the connection goes on as on any site.
 */
#ifndef PORTER_SERVER_SITE_SITE_H
#define PORTER_SERVER_SITE_SITE_H

#include <ev.h>
#include <stdbool.h>

#include "connmgr/connmgr.h"
#include "listener/listener.h"
#include "server/core/conf.h"
#include "server/core/log.h"
#include "server/core/mime.h"
#include "server/core/request.h"
#include "server/core/stats.h"
#include "server/h2/conn.h"

typedef struct pt_server pt_server;
typedef struct pt_tls_keyring pt_tls_keyring;
typedef struct pt_filecache pt_filecache;       /* server/handlers/filecache.h */
typedef struct pt_access_state pt_access_state; /* server/site/access.h */
struct ssl_ctx_st;

struct pt_vhost {
    pt_server *server; /* the server it belongs to */
    const pt_conf_server *conf;
    pt_str server_name; /* its first plain server_name (not a wildcard, regex or ".name") */
    int root_fd;        /* the document root, O_PATH|O_DIRECTORY */
    pt_limits limits;
    /* its own location's access logs (server/site/location.h): those of requests that no
     * location answers */
    const struct pt_access_log *access_logs;
    size_t naccess_logs;
    pt_log *error_log; /* NULL: the process's error log */
    pt_log_level error_level;
    const pt_mime *mime;
    pt_mime *own_mime;             /* when the server block has its own types or default_type */
    pt_filecache *cache;           /* the server's, shared by its vhosts */
    pt_access_state *access_state; /* the server's: auth_basic's work pool and memory */
    /* The server's compression settings when a coding is on in them (an embedder's routes
     * answer with these), else NULL. */
    const pt_conf_compress *compress;
    /* The server's realip settings when it trusts a peer (set_real_ip_from), else NULL:
     * applied to each request before it is routed (site/realip.h). */
    const pt_conf_realip *realip;
    /* The location blocks, a run for each level (the server's first, then those nested in
     * each location, server/site/location.h), named ones, and the server's own last. */
    pt_location *locations;
    size_t nlocations, nnamed;
    struct ssl_ctx_st *ssl_ctx; /* its certificates, when it is on a TLS site; else NULL */
    /* its proxy locations' state (server/handlers/proxy.c); NULL: none */
    void *proxy;
    /* The server's shared zones (server/site/limiter.h), which its locations' limits count
     * in; NULL: none. */
    struct pt_limit_zones *zones;
    /* The server's upstreams (server/handlers/upstream.h), for the status page. */
    struct pt_upstreams *upstreams;
    /* The server's stats board, with its number of worker slots and this worker's, the
     * asking worker's own numbers made current first (the status handler's source). */
    pt_stats_board *(*stats_board)(pt_server *s, int *nslots, int *slot);
    /* Where this worker counts its requests (its series of the board: `stats_series`), set
     * when the worker starts; its server NULL before. */
    pt_stats_sink stats;
    int stats_series;
    /* What answers each kind of location (PT_HANDLER_COUNT of them; the router's own for
     * PT_HANDLER_RETURN), installed by the server. */
    const pt_handler_fn *handlers;
};

typedef struct pt_site {
    pt_server *server;
    struct ev_loop *loop;
    pt_vhost **vhosts;
    size_t nvhosts;
    pt_vhost *default_vhost;
    const pt_conf_listen *listen; /* the directive that made this site */
    bool has_explicit_default;
    pt_listener **listeners; /* one per worker slot (SO_REUSEPORT), or one */
    size_t nlisteners;
    pt_connmgr *mgr;
    /* TLS (tls_site.c): the default vhost's ssl settings bound the handshakes. */
    bool tls;
    /* HTTP/2: the address offers it (its listen's `http2`, or `http2 on` in its default
     * server), with the default server's settings; h2 counts its connections. */
    bool http2;
    pt_h2_settings h2;
    pt_h2_counters h2_counters;
    double handshake_timeout;
    size_t handshakes, max_handshakes; /* in progress now, and the most before pausing */
    bool mgr_full;                     /* the manager said max_concurrent (on_full) */
    bool handshakes_full;              /* max_handshakes in progress: accepting paused */
    bool closing;                      /* the server is being freed: connections go quietly */
    bool http2_listen;   /* a listen of the address says `http2` (ALPN offers h2 on a TLS one) */
    bool h2_chosen;      /* a connection may speak HTTP/2: its first read decides (server.c) */
    bool proxy_protocol; /* a listen of the address says `proxy_protocol` (proxy_site.c) */
    /* TLS: handshakes completed, those of them that resumed a session, and connections that
     * ended before theirs completed (the stats board adds them up) */
    uint64_t tls_handshakes, tls_resumed, tls_failed;
} pt_site;

/* Starts or pauses the site's listeners as its two bounds say (server.c). */
void pt_site_update_accepting(pt_site *site);

/* ---- TLS sites (tls_site.c) ---- */

/* Session-ticket keys shared by a process tree (server/tls_ctx.h), counted: servers that
 * replaced one another (reload) hold the same keys. NULL if out of memory. */
pt_tls_keyring *pt_tls_keyring_new(void);
pt_tls_keyring *pt_tls_keyring_ref(pt_tls_keyring *k);
void pt_tls_keyring_unref(pt_tls_keyring *k);
void pt_tls_keyring_rotate(pt_tls_keyring *k);

/* Builds the SSL_CTX of `vh` (on a TLS site) from its conf, with the keys of `ring`. On error
 * writes "FILE:LINE:COL: reason" to `err` and returns a negative errno. */
int pt_tls_vhost_setup(pt_vhost *vh, pt_tls_keyring *ring, char *err, size_t errlen);

/* Releases the SSL_CTX of `vh`. Twice is a no-op. */
void pt_tls_vhost_dispose(pt_vhost *vh);

/* Makes `site` a TLS site (its vhosts are set up): the handshake bounds, the servername
 * callback, and the connection manager's wrap_transport in `mo`. */
void pt_tls_site_setup(pt_site *site, pt_connmgr_options *mo);

/* A connection was admitted on a TLS site: its handshake is counted and timed. */
void pt_tls_site_admit(pt_site *site, pt_conn *c);

/* Bytes pt_tls_site_admit takes from each connection's custodian. */
size_t pt_tls_conn_size(void);

/* ---- PROXY protocol sites (proxy_site.c) ---- */

/* Makes `site` read a PROXY protocol header on each connection: its state's room in `mo`. */
void pt_proxy_site_setup(pt_site *site, pt_connmgr_options *mo);

/* What sets a connection of a site going once its PROXY header is read (server.c's: its
 * protocol, and over TLS its handshake). */
typedef void (*pt_site_start_fn)(pt_site *site, pt_conn *c);

/* A connection was admitted on a PROXY protocol site: its header is read (now, if it has
 * arrived), then `start` sets it going; a malformed or missing header closes it. */
void pt_proxy_site_admit(pt_site *site, pt_conn *c, pt_site_start_fn start);

/* Picks the virtual host for `host` (a Host header value, port allowed) on `site`. */
const pt_vhost *pt_site_select(const pt_site *site, pt_str host, pt_request *req);

/* Gives `req` the virtual host `vh` and the settings that come with it: limits, logs,
 * server_tokens, sendfile (what pt_site_ops.select does once it has chosen). */
void pt_vhost_apply(const pt_vhost *vh, pt_request *req);

#endif
