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
 * Choosing a server (balance.c, nginx's methods): smooth weighted round-robin, least_conn,
 * ip_hash, hash KEY [consistent] (a ketama ring: 160 points per unit of weight), random
 * [two]; each over the servers the request has not tried that may take it: not `down`, not
 * failed (passively or by the health checks), under max_conns. Backup servers only when no
 * primary may. When none may because every one is out, the one that comes back first is tried
 * anyway rather than failing the request without trying; when every one is at max_conns the
 * request may wait in the upstream's queue (`queue N timeout=T`), else it is refused.
 *
 * Health. Passive: max_fails failures within fail_timeout mark a server out for fail_timeout;
 * a success clears its count; an upstream of one server is never marked out. Active
 * (health_check, health.c): one process (worker 0) asks each server every interval; a server
 * its checks failed is out in every worker until they pass again. A server that comes back
 * (either way) with slow_start ramps its weight up over that long.
 *
 * Names: a server's DNS name is resolved when connecting (connector.h). A `resolve` server's
 * name is looked up again every resolver_interval, off the loop (a work pool's thread), by each
 * worker: its connections go to the addresses of the last answer in turn; idle pooled
 * connections to an address the name no longer has are closed, those to the others kept; a
 * name that stops resolving keeps its last addresses (and says so once).
 *
 * Shared state: what one process learns of a server (its failures, its checks, how many
 * connections it has) every process of the server sees: each upstream block's state lives in
 * memory mapped before the workers fork, read without a lock on the request path (atomics) and
 * written under a process-shared robust mutex on the failure path. A reload keeps the health
 * of a block whose servers stay the same; connection counts are a generation's own. Each
 * worker counts its own connections in its own row too, so a worker that died and is started
 * again gives back what it held.
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
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "connmgr/authority.h"
#include "connmgr/connector.h"
#include "connmgr/pool.h"
#include "server/core/conf.h"
#include "server/core/request.h"

/* The most servers one upstream may list (a request's tried set is a 64-bit mask). */
#define PT_UPSTREAM_MAX_SERVERS 64
/* Points per unit of weight on a consistent hash ring (nginx's, ketama's). */
#define PT_UPSTREAM_RING_POINTS 160
/* Draws of a hashing or random method before it falls back to round-robin (nginx's). */
#define PT_UPSTREAM_MAX_DRAWS 20

typedef struct pt_resolved pt_resolved;

/* What every process sees of one server (in shared memory). Times are ev_now() values. */
typedef struct pt_peer_state {
    /* passive health: written under the lock */
    uint32_t fails;      /* failures in the current window */
    double fail_checked; /* the last failure */
    double down_until;   /* out until then */
    /* active health: written by the checking process */
    uint32_t unhealthy;        /* 1: the checks failed it */
    uint32_t check_fails;      /* checks failed in a row */
    uint32_t check_passes;     /* checks passed in a row */
    double back_at;            /* when the checks brought it back (slow_start) */
    uint64_t checks;           /* checks made */
    uint64_t checks_failed;    /* of which failed */
    int32_t last_check_status; /* the last answer's status; 0: none (no connection, timeout) */
} pt_peer_state;

typedef struct pt_upstream_peer {
    pt_authority authority;
    char name[PT_AUTHORITY_STRLEN]; /* for messages: "127.0.0.1:8080", "unix:/run/app.sock" */
    const char *address;            /* as written (the ring's key) */
    const char *tls_name;           /* SNI and the name verified (a host name, or an address) */
    pt_pool *pool;
    int weight;
    int max_fails;
    double fail_timeout;
    uint32_t max_conns; /* 0: no bound */
    double slow_start;  /* 0: none */
    bool backup, down;
    int current_weight;    /* smooth weighted round-robin: this process's */
    pt_peer_state *st;     /* shared */
    uint32_t *conns;       /* connections now, every process's (shared, atomic) */
    uint32_t *mine;        /* this process's share of them (its row) */
    SSL_SESSION *session;  /* the last TLS session, offered to resume */
    pt_resolved *resolved; /* `resolve`: its addresses, looked up again (upstream.c) */
} pt_upstream_peer;

/* A point of a consistent hash ring. */
typedef struct pt_ring_point {
    uint32_t hash;
    uint32_t peer; /* index */
} pt_ring_point;

/* A request waiting in an upstream's queue for a server under max_conns. */
typedef struct pt_upstream_waiter pt_upstream_waiter;
struct pt_upstream_waiter {
    /* Called from the loop when a connection ended: pick again. It leaves the queue
     * (pt_upstream_unwait) unless it must wait on. */
    void (*wake)(pt_upstream_waiter *w);
    pt_upstream_waiter *prev, *next;
    bool queued;
};

typedef struct pt_upstream_group pt_upstream_group;

typedef struct pt_upstream {
    char *key;                     /* what makes it distinct (name and TLS settings) */
    const char *name;              /* the block's name, or the address of proxy_pass */
    char *own_name;                /* the latter's storage */
    const pt_conf_upstream *block; /* NULL: proxy_pass's own address */
    bool tls, verify, server_name;
    SSL_CTX *ssl_ctx;
    pt_connector *connector;
    pt_upstream_peer *peers;
    size_t npeers;
    pt_balance balance;
    bool random_two;
    pthread_mutex_t *lock; /* the shared state's (NULL: none, in tests) */
    pt_ring_point *ring;   /* hash ... consistent */
    size_t nring;
    pt_upstream_group *group; /* the shared state (upstream.c) */
    /* the queue: this process's requests waiting for a server under max_conns */
    pt_upstream_waiter *wait_first, *wait_last;
    size_t nwaiting;
    ev_timer wake;
    struct ev_loop *loop;
    ev_timer resolve; /* `resolve` servers: every resolver_interval, their names again */
    struct pt_upstreams *registry;
} pt_upstream;

typedef struct pt_upstreams pt_upstreams;

/* A request's way through an upstream's servers: those it tried, and what its method keeps. */
typedef struct pt_upstream_sel {
    uint64_t tried;   /* by index */
    uint32_t hash;    /* hash: the key's, then the rehashes'; ip_hash: the running hash */
    uint32_t point;   /* hash ... consistent: the ring's point for the next draw */
    unsigned draws;   /* peers drawn by hash, ip_hash or random */
    unsigned rehash;  /* hash: rehashes made */
    uint8_t addr[16]; /* ip_hash: the client's address (3 bytes of IPv4, or 16 of IPv6) */
    uint8_t addrlen;  /* 0: no key (round-robin) */
    bool keyed;       /* hash: the key was made */
} pt_upstream_sel;

/* A `proxy_pass` URL taken apart: "http[s]://NAME[/URI]" or "http[s]://unix:PATH:[/URI]". */
typedef struct pt_proxy_url {
    bool tls;
    char name[PT_AUTHORITY_HOST_MAX + 16]; /* an upstream name, HOST[:PORT], or unix:PATH */
    const char *uri;                       /* points into the URL; NULL: none given */
} pt_proxy_url;

/* Parses `url`. Returns 0 or -EINVAL with a reason in `why`. */
int pt_proxy_url_parse(const char *url, pt_proxy_url *out, const char **why);

/* Creates the registry of `conf`'s upstreams on `loop` under `parent`, for `nslots` worker
 * processes; the health of blocks `previous` (the registry of the server a reload replaces;
 * NULL: none) had with the same servers is taken over. Call it before the workers fork. */
int pt_upstreams_new(pt_upstreams **out, struct ev_loop *loop, pt_custodian *parent,
                     const pt_conf *conf, const pt_upstreams *previous, int nslots);

/* Shuts everything down (idle transports closed) and frees the registry. NULL: no-op. */
void pt_upstreams_free(pt_upstreams *u);

/* The process serves as worker `slot`: it takes over the connection counts a worker of that
 * slot left (one that died), and worker 0 starts the health checks. */
void pt_upstreams_start(pt_upstreams *u, int slot);

/* Stops the health checks (the server stops or retires). Twice is a no-op. */
void pt_upstreams_stop(pt_upstreams *u);
/* The upstream of the proxy settings `px` (location `lc`'s own, or an `if` block's of it),
 * made on first use. On error writes "file:line:col: reason" into `err` and returns NULL. */
pt_upstream *pt_upstreams_get(pt_upstreams *u, const pt_conf_proxy *px, const pt_conf_location *lc,
                              char *err, size_t errlen);

/* Starts a request's way through `up` (its key for hash, its address for ip_hash). */
void pt_upstream_sel_init(const pt_upstream *up, const pt_request *req, pt_upstream_sel *sel);

/* Picks a server for the request `sel` (not one it tried) at `now`, counts a connection to it
 * and marks it tried. Returns 0 with it in *out; -EBUSY when the servers that may take it are
 * all at max_conns; -ENOENT when none is left. (balance.c) */
int pt_upstream_pick(pt_upstream *up, pt_upstream_sel *sel, double now, pt_upstream_peer **out);

/* Counts a connection to `p` for the request `sel` again (a retry on the same server), unless
 * it reached max_conns meanwhile: -EBUSY. (balance.c) */
int pt_upstream_take(pt_upstream *up, pt_upstream_sel *sel, pt_upstream_peer *p);

/* The connection pt_upstream_pick() counted to `p` ended; a request waiting in the queue is
 * woken. */
void pt_upstream_peer_done(pt_upstream *up, pt_upstream_peer *p);

/* The servers of `up` no request may be sent to now, by index: `down`, or failed by their
 * health checks. (balance.c) */
uint64_t pt_upstream_unavailable(const pt_upstream *up);

/* Connections to `p` now, every process's. */
uint32_t pt_upstream_peer_conns(const pt_upstream_peer *p);

/* `p`'s weight at `now`: its weight, scaled down while it ramps up after coming back
 * (slow_start); in thousandths. (balance.c) */
int pt_upstream_peer_weight(const pt_upstream_peer *p, double now);

/* Builds the consistent hash ring of `up` from its servers' addresses and weights. Returns 0
 * or -ENOMEM. (balance.c) */
int pt_upstream_ring_build(pt_upstream *up);

/* The index of the first point of `up`'s ring at or after `hash` (the ring wraps round).
 * (balance.c) */
uint32_t pt_upstream_ring_find(const pt_upstream *up, uint32_t hash);

/* The hash of a key, as `hash` takes it (CRC-32). */
uint32_t pt_upstream_key_hash(const void *key, size_t len);

/* Takes and releases the lock of `up`'s shared state (no-op without one). A process that died
 * holding it left numbers that are each whole: the lock is made consistent and taken. */
void pt_upstream_lock(pt_upstream *up);
void pt_upstream_unlock(pt_upstream *up);

/* Passive health: a request failed on `p` (connect error, timeout, I/O error, bad answer),
 * or got its answer from it. */
void pt_upstream_peer_failed(pt_upstream *up, pt_upstream_peer *p, double now);
void pt_upstream_peer_ok(pt_upstream_peer *p);

/* Puts `w` at the end of `up`'s queue. Returns 0, or -EBUSY when the upstream has no queue or
 * it is full. */
int pt_upstream_wait(pt_upstream *up, pt_upstream_waiter *w);

/* Takes `w` out of the queue (if it is in it). */
void pt_upstream_unwait(pt_upstream *up, pt_upstream_waiter *w);

/* Appends the upstreams and their servers' state as a JSON array (for the status page) to
 * `buf` (`cap` bytes) from `len`; returns the new length (more than `cap`: it did not fit). */
size_t pt_upstreams_json(const pt_upstreams *u, char *buf, size_t len, size_t cap);

/* Checks what start-up would (the trusted-certificate files load), for `porter -t`. */
int pt_upstreams_check(const pt_conf *conf, char *err, size_t errlen);

#endif
