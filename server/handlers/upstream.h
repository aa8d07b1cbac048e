/*
 * Upstreams: the servers behind `proxy_pass`, as the proxy sees them at run time.
 *
 * A pt_upstreams (one per pt_server) makes a pt_upstream for each distinct target the
 * locations name: an `upstream NAME { ... }` block, or the one address of
 * `proxy_pass http://HOST:PORT`, together with the TLS settings of the locations using it
 * (`https://`, proxy_ssl_verify, proxy_ssl_server_name, proxy_ssl_trusted_certificate), so
 * locations that agree share one. Each pt_upstream owns a connector (connmgr/connector.h),
 * one transport pool per server (connmgr/pool.h: keepalive, keepalive_timeout,
 * keepalive_requests of the block) and, for https, a client SSL_CTX.
 *
 * Choosing a server: smooth weighted round-robin (nginx's) over the servers not marked down
 * and not yet tried by the request. Passive failure marking: max_fails failures within
 * fail_timeout mark a server down for fail_timeout; a success clears its count. An upstream
 * of one server is never marked down, and when every untried server is down the one that
 * comes back first is tried anyway rather than failing the request without trying.
 *
 * Ownership: the pt_upstreams owns a custodian (a child of the server's) under which every
 * connector, pool and transport lives; pt_upstreams_free() shuts it down and frees all.
 * Upstreams borrow strings from the pt_conf, which outlives them. Threading: the loop's
 * thread (connectors may run resolver threads, see connector.h). Errors: negative errno, with
 * a "file:line:col: reason" message for set-up.
 */
#ifndef PORTER_SERVER_HANDLERS_UPSTREAM_H
#define PORTER_SERVER_HANDLERS_UPSTREAM_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "connmgr/authority.h"
#include "connmgr/connector.h"
#include "connmgr/pool.h"
#include "server/core/conf.h"

/* The most servers one upstream may list (a request's tried set is a 64-bit mask). */
#define PT_UPSTREAM_MAX_SERVERS 64

typedef struct pt_upstream_peer {
    pt_authority authority;
    char name[PT_AUTHORITY_STRLEN]; /* for messages: "127.0.0.1:8080", "unix:/run/app.sock" */
    const char *tls_name;           /* SNI and the name verified (a host name, or an address) */
    pt_pool *pool;
    int weight, current_weight;
    int max_fails;
    double fail_timeout;
    unsigned fails;       /* failures in the current window */
    double fail_checked;  /* the last failure */
    double down_until;    /* marked down until then */
    SSL_SESSION *session; /* the last TLS session, offered to resume */
} pt_upstream_peer;

typedef struct pt_upstream {
    char *key;        /* what makes it distinct (name and TLS settings) */
    const char *name; /* the block's name, or the address of proxy_pass */
    char *own_name;   /* the latter's storage */
    bool tls, verify, server_name;
    SSL_CTX *ssl_ctx;
    pt_connector *connector;
    pt_upstream_peer *peers;
    size_t npeers;
} pt_upstream;

typedef struct pt_upstreams pt_upstreams;

/* A `proxy_pass` URL taken apart: "http[s]://NAME[/URI]" or "http[s]://unix:PATH:[/URI]". */
typedef struct pt_proxy_url {
    bool tls;
    char name[PT_AUTHORITY_HOST_MAX + 16]; /* an upstream name, HOST[:PORT], or unix:PATH */
    const char *uri;                       /* points into the URL; NULL: none given */
} pt_proxy_url;

/* Parses `url`. Returns 0 or -EINVAL with a reason in `why`. */
int pt_proxy_url_parse(const char *url, pt_proxy_url *out, const char **why);

/* Creates the registry of `conf`'s upstreams on `loop` under `parent`. */
int pt_upstreams_new(pt_upstreams **out, struct ev_loop *loop, pt_custodian *parent,
                     const pt_conf *conf);

/* Shuts everything down (idle transports closed) and frees the registry. NULL: no-op. */
void pt_upstreams_free(pt_upstreams *u);

/* The upstream of the proxy settings `px` (location `lc`'s own, or an `if` block's of it),
 * made on first use. On error writes "file:line:col: reason" into `err` and returns NULL. */
pt_upstream *pt_upstreams_get(pt_upstreams *u, const pt_conf_proxy *px, const pt_conf_location *lc,
                              char *err, size_t errlen);

/* Picks a server for a request that tried the servers of mask `tried` already, at `now`.
 * Returns NULL when every server was tried. */
pt_upstream_peer *pt_upstream_pick(pt_upstream *up, uint64_t tried, double now);

/* Passive health: a request failed on `p` (connect error, timeout, I/O error, bad answer),
 * or got its answer from it. */
void pt_upstream_peer_failed(pt_upstream *up, pt_upstream_peer *p, double now);
void pt_upstream_peer_ok(pt_upstream_peer *p);

/* Checks what start-up would (the trusted-certificate files load), for `porter -t`. */
int pt_upstreams_check(const pt_conf *conf, char *err, size_t errlen);

#endif
