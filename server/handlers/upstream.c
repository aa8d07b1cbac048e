/*
 * Upstreams at run time (see upstream.h): the registry, the state the processes share,
 * passive health, the queue, and the status page's view. Choosing a server is balance.c's.
 */
#include "server/handlers/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>

#include "connmgr/limits.h"
#include "connmgr/tls.h"
#include "server/core/log.h"
#include "server/core/vars.h"
#include "server/core/workpool.h"
#include "server/handlers/health.h"

/* How often a process with requests in a queue looks whether another process's connections
 * ended (its own wake the queue at once). */
#define QUEUE_POLL 0.01

/* A mapping shared by the processes (made before they fork), counted by this process's
 * users: a reload's registry takes over its predecessor's. */
typedef struct shm {
    int refs;
    size_t size;
    void *p;
} shm;

/* The health of a block's servers: the lock, then a state per server. */
typedef struct health_region {
    pthread_mutex_t lock;
    uint32_t npeers;
    pt_peer_state peers[];
} health_region;

/* What the upstreams of one block (or one proxy_pass address) share, whatever their TLS
 * settings: the servers' health and connection counts. */
struct pt_upstream_group {
    char *name;
    char *servers; /* the servers' addresses and flags: what a reload matches */
    size_t npeers;
    shm *health;        /* health_region */
    pt_health *checker; /* health_check: on the first upstream of the block */
    uint32_t *conns;    /* [npeers] every process's, then [nslots][npeers] each worker's */
    size_t conns_size;
    int nslots;
};

/* A `resolve` server's addresses (this process's): the last good answer, read by the
 * connector's resolver threads at each connect (so under a lock), written by the loop when a
 * lookup on the work pool's thread comes back. */
struct pt_resolved {
    pthread_mutex_t mu;
    pt_connect_addr addrs[PT_CONNECTOR_MAX_ADDRESSES];
    size_t n;      /* 0: never resolved */
    unsigned turn; /* where the next connect starts in `addrs` */
    bool failing;  /* the last lookup failed (said once) */
    /* the lookup in flight */
    pt_work work;
    bool busy;
    pt_connect_addr fresh[PT_CONNECTOR_MAX_ADDRESSES];
    int nfresh; /* or a negative errno */
    pt_upstream *up;
    size_t peer;
};

struct pt_upstreams {
    struct ev_loop *loop;
    const pt_conf *conf;
    const pt_upstreams *previous; /* while made: the registry a reload replaces */
    pt_custodian *custodian;
    pt_upstream **list;
    size_t n;
    pt_upstream_group **groups;
    size_t ngroups;
    int nslots, slot;
    pt_custodian *resolving; /* the work pool's (`resolve` servers); NULL: none yet */
    pt_workpool *workpool;
    bool closing;
};

/* ---- proxy_pass URLs ---- */

int pt_proxy_url_parse(const char *url, pt_proxy_url *out, const char **why)
{
    memset(out, 0, sizeof *out);
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        rest = url + 8;
        out->tls = true;
    } else {
        *why = "the URL must start with \"http://\" or \"https://\"";
        return -EINVAL;
    }
    const char *end;
    if (strncmp(rest, "unix:", 5) == 0) {
        /* nginx's form: the path ends at the next ':' */
        end = strchr(rest + 5, ':');
        if (!end || end == rest + 5) {
            *why = "a unix socket path must end with \":\" (\"http://unix:/run/app.sock:\")";
            return -EINVAL;
        }
        if ((size_t)(end - rest) >= sizeof out->name) {
            *why = "the unix socket path is too long";
            return -EINVAL;
        }
        memcpy(out->name, rest, (size_t)(end - rest));
        end++;
    } else {
        end = rest + strcspn(rest, "/?#");
        if (end == rest) {
            *why = "no host in the URL";
            return -EINVAL;
        }
        if ((size_t)(end - rest) >= sizeof out->name) {
            *why = "the host is too long";
            return -EINVAL;
        }
        memcpy(out->name, rest, (size_t)(end - rest));
    }
    if (*end == '?' || *end == '#') {
        *why = "a query or fragment is not allowed in the URL";
        return -EINVAL;
    }
    out->uri = *end ? end : NULL;
    return 0;
}

/* ---- shared memory ---- */

static void *map_shared(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void shm_unref(shm *m)
{
    if (!m || --m->refs > 0)
        return;
    /* The mutex is not destroyed: other processes may still use their mapping of it. */
    munmap(m->p, m->size);
    free(m);
}

/* A block's health: each server up, nobody holding the lock. */
static shm *health_new(size_t npeers)
{
    shm *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->refs = 1;
    m->size = sizeof(health_region) + npeers * sizeof(pt_peer_state);
    health_region *h = m->p = map_shared(m->size);
    if (!h) {
        free(m);
        return NULL;
    }
    h->npeers = (uint32_t)npeers;
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (r == 0)
        r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0)
        r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (r == 0)
        r = pthread_mutex_init(&h->lock, &a);
    pthread_mutexattr_destroy(&a);
    if (r != 0) {
        munmap(m->p, m->size);
        free(m);
        return NULL;
    }
    return m;
}

/* Takes the lock of a block's health. A process that died holding it left numbers that are
 * each whole (nothing there is a list to repair): the lock is made consistent and kept. */
static void lock(pthread_mutex_t *m)
{
    if (!m)
        return;
    int r = pthread_mutex_lock(m);
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(m);
    } else if (r != 0) {
        fprintf(stderr, "porter: cannot lock an upstream's state: %s (%s:%d)\n", strerror(r),
                __FILE__, __LINE__);
        abort();
    }
}

static void unlock(pthread_mutex_t *m)
{
    if (m)
        pthread_mutex_unlock(m);
}

void pt_upstream_lock(pt_upstream *up)
{
    lock(up->lock);
}

void pt_upstream_unlock(pt_upstream *up)
{
    unlock(up->lock);
}

/* ---- groups ---- */

static void group_free(pt_upstream_group *g)
{
    if (!g)
        return;
    pt_health_free(g->checker);
    shm_unref(g->health);
    if (g->conns)
        munmap(g->conns, g->conns_size);
    free(g->servers);
    free(g->name);
    free(g);
}

/* What identifies a block's servers across a reload: each one's address and what makes its
 * state mean the same (a server that was `down` has none worth keeping), and whether checks
 * keep a verdict (a block that stops checking must not keep one nobody will lift). */
static char *servers_of(const pt_conf_upstream *block, const char *address)
{
    size_t n = block ? block->nservers : 1, len = sizeof "checked\n";
    for (size_t i = 0; i < n; i++)
        len += strlen(block ? block->servers[i].address : address) + sizeof " b d\n";
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const pt_conf_upstream_server *sv = block ? &block->servers[i] : NULL;
        p += sprintf(p, "%s%s%s\n", sv ? sv->address : address, sv && sv->backup ? " b" : "",
                     sv && sv->down ? " d" : "");
    }
    sprintf(p, "%s", block && block->health.on ? "checked\n" : "");
    return s;
}

static pt_upstream_group *group_find(const pt_upstreams *u, const char *name)
{
    for (size_t i = 0; u && i < u->ngroups; i++)
        if (strcmp(u->groups[i]->name, name) == 0)
            return u->groups[i];
    return NULL;
}

/* The group of `name` (a block's name, or an address of proxy_pass), made on first use; its
 * health taken over from the registry a reload replaces when the servers are the same. */
static pt_upstream_group *group_get(pt_upstreams *u, const char *name,
                                    const pt_conf_upstream *block)
{
    pt_upstream_group *g = group_find(u, name);
    if (g)
        return g;
    pt_upstream_group **list = realloc(u->groups, (u->ngroups + 1) * sizeof *list);
    if (!list)
        return NULL;
    u->groups = list;
    g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->npeers = block ? block->nservers : 1;
    g->nslots = u->nslots;
    g->name = strdup(name);
    g->servers = servers_of(block, name);
    g->conns_size = (size_t)(u->nslots + 1) * g->npeers * sizeof(uint32_t);
    g->conns = map_shared(g->conns_size);
    if (!g->name || !g->servers || !g->conns)
        goto fail;
    const pt_upstream_group *old = group_find(u->previous, name);
    if (old && old->npeers == g->npeers && strcmp(old->servers, g->servers) == 0) {
        g->health = old->health;
        g->health->refs++;
    } else if (!(g->health = health_new(g->npeers))) {
        goto fail;
    }
    u->groups[u->ngroups++] = g;
    return g;
fail:
    if (!g->conns)
        g->conns_size = 0;
    group_free(g);
    return NULL;
}

/* ---- names looked up again (`resolve`) ---- */

static bool same_ip(const pt_connect_addr *a, const pt_connect_addr *b)
{
    if (a->addr.sa.sa_family != b->addr.sa.sa_family)
        return false;
    if (a->addr.sa.sa_family == AF_INET)
        return a->addr.in.sin_addr.s_addr == b->addr.in.sin_addr.s_addr;
    return a->addr.sa.sa_family == AF_INET6 &&
           memcmp(&a->addr.in6.sin6_addr, &b->addr.in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

static bool has_ip(const pt_connect_addr *list, size_t n, const pt_connect_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (same_ip(&list[i], a))
            return true;
    return false;
}

/* Whether two answers hold the same addresses (in any order). */
static bool same_addrs(const pt_connect_addr *a, size_t na, const pt_connect_addr *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!has_ip(b, nb, &a[i]))
            return false;
    return true;
}

/* "192.0.2.1, 2001:db8::1" */
static void format_addrs(const pt_connect_addr *a, size_t n, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len + INET6_ADDRSTRLEN + 2 < cap; i++) {
        const void *ip = a[i].addr.sa.sa_family == AF_INET ? (const void *)&a[i].addr.in.sin_addr
                                                           : (const void *)&a[i].addr.in6.sin6_addr;
        if (i)
            len += (size_t)snprintf(buf + len, cap - len, ", ");
        if (inet_ntop(a[i].addr.sa.sa_family, ip, buf + len, (socklen_t)(cap - len)))
            len += strlen(buf + len);
    }
}

/* The connector's resolver (on its thread): a `resolve` server's last answer, each connect
 * starting from the next address; another name of the block is looked up as always. */
static int resolve_for(const char *host, pt_connect_addr *out, size_t max, void *data)
{
    pt_upstream *up = data;
    pt_resolved *r = NULL;
    for (size_t i = 0; i < up->npeers && !r; i++)
        if (up->peers[i].resolved && strcmp(up->peers[i].authority.host, host) == 0)
            r = up->peers[i].resolved;
    if (!r)
        return pt_resolve_getaddrinfo(host, out, max, NULL);
    pthread_mutex_lock(&r->mu);
    if (!r->n) {
        /* a connect before the first lookup came back: this one looks it up */
        pthread_mutex_unlock(&r->mu);
        int n = pt_resolve_getaddrinfo(host, out, max, NULL);
        if (n <= 0)
            return n < 0 ? n : -ENOENT;
        pthread_mutex_lock(&r->mu);
        if (!r->n) {
            memcpy(r->addrs, out, (size_t)n * sizeof *out);
            r->n = (size_t)n;
        }
        pthread_mutex_unlock(&r->mu);
        return n;
    }
    size_t n = r->n < max ? r->n : max, start = r->turn++ % r->n;
    for (size_t k = 0; k < n; k++)
        out[k] = r->addrs[(start + k) % r->n];
    pthread_mutex_unlock(&r->mu);
    return (int)n;
}

static void lookup_run(pt_work *w)
{
    pt_resolved *r = (pt_resolved *)(void *)((char *)w - offsetof(pt_resolved, work));
    const pt_upstream_peer *p = &r->up->peers[r->peer];
    r->nfresh =
        pt_resolve_getaddrinfo(p->authority.host, r->fresh, PT_CONNECTOR_MAX_ADDRESSES, NULL);
}

/* Idle pooled connections are kept to the addresses the name still has. */
static bool keep_addr(const pt_connect_addr *peer, void *data)
{
    const pt_resolved *r = data;
    return has_ip(r->addrs, r->n, peer);
}

static void lookup_done(pt_work *w)
{
    pt_resolved *r = (pt_resolved *)(void *)((char *)w - offsetof(pt_resolved, work));
    r->busy = false;
    pt_upstream *up = r->up;
    if (w->status < 0 || up->registry->closing)
        return;
    pt_upstream_peer *p = &up->peers[r->peer];
    char list[512];
    if (r->nfresh <= 0) {
        if (r->failing)
            return;
        r->failing = true;
        pthread_mutex_lock(&r->mu);
        format_addrs(r->addrs, r->n, list, sizeof list);
        pthread_mutex_unlock(&r->mu);
        pt_log_error(PT_LOG_WARN,
                     "upstream server %s of \"%s\": \"%s\" does not resolve (%s); %s%s", p->name,
                     up->name, p->authority.host,
                     r->nfresh == -ENOENT ? "no such name" : strerror(-r->nfresh),
                     list[0] ? "its last addresses are kept: " : "no address known yet", list);
        return;
    }
    pthread_mutex_lock(&r->mu);
    bool first = r->n == 0, changed = !same_addrs(r->addrs, r->n, r->fresh, (size_t)r->nfresh);
    if (changed) {
        memcpy(r->addrs, r->fresh, (size_t)r->nfresh * sizeof *r->fresh);
        r->n = (size_t)r->nfresh;
    }
    pthread_mutex_unlock(&r->mu);
    bool was_failing = r->failing;
    r->failing = false;
    if (changed || was_failing) {
        format_addrs(r->fresh, (size_t)r->nfresh, list, sizeof list);
        pt_log_error(first ? PT_LOG_INFO : PT_LOG_NOTICE,
                     "upstream server %s of \"%s\": \"%s\" resolves to %s", p->name, up->name,
                     p->authority.host, list);
    }
    /* (the loop's thread is the only writer of `addrs`: read without the lock) */
    pt_pool_drop_idle(p->pool, keep_addr, r);
}

static void on_resolve(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_upstream *up = w->data;
    pt_upstreams *u = up->registry;
    for (size_t i = 0; i < up->npeers; i++) {
        pt_resolved *r = up->peers[i].resolved;
        if (!r || r->busy)
            continue;
        r->work.run = lookup_run;
        r->work.done = lookup_done;
        if (pt_workpool_submit(u->workpool, &r->work) == 0)
            r->busy = true;
    }
}

static void resolving_closing(void *data)
{
    pt_upstreams *u = data;
    u->closing = true;
}

static void resolving_gone(void *data)
{
    pt_upstreams *u = data;
    u->resolving = NULL;
    u->workpool = NULL;
}

/* Each worker looks its `resolve` names up again every resolver_interval, the first time at
 * once. */
static void resolve_start(pt_upstreams *u, pt_upstream *up)
{
    if (!ev_cb(&up->resolve) || ev_is_active(&up->resolve))
        return;
    if (!u->workpool) {
        /* Released last to first: the registry is told it closes, the pool's threads are
         * joined (lookups that finish then are dropped), the registry forgets the pool. */
        u->resolving = pt_custodian_new(u->custodian);
        if (!u->resolving || !pt_custodian_register(u->resolving, resolving_gone, u) ||
            pt_workpool_new(&u->workpool, u->loop, u->resolving) < 0 ||
            !pt_custodian_register(u->resolving, resolving_closing, u)) {
            pt_log_error(PT_LOG_ERROR, "cannot look upstream names up again: out of memory");
            return;
        }
    }
    ev_timer_set(&up->resolve, 0, up->block->resolver_interval);
    ev_timer_start(u->loop, &up->resolve);
    ev_unref(u->loop); /* (it never keeps the loop running by itself) */
}

static void resolve_stop(pt_upstream *up)
{
    if (ev_cb(&up->resolve) && ev_is_active(&up->resolve)) {
        ev_ref(up->loop);
        ev_timer_stop(up->loop, &up->resolve);
    }
}

/* ---- the registry ---- */

/* The parent shut down first: what lives under the custodian is released already. */
static void upstreams_release(void *data)
{
    pt_upstreams *u = data;
    u->custodian = NULL;
}

int pt_upstreams_new(pt_upstreams **out, struct ev_loop *loop, pt_custodian *parent,
                     const pt_conf *conf, const pt_upstreams *previous, int nslots)
{
    *out = NULL;
    pt_upstreams *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->loop = loop;
    u->conf = conf;
    u->previous = previous;
    u->nslots = nslots > 0 ? nslots : 1;
    u->custodian = pt_custodian_new(parent);
    if (!u->custodian) {
        free(u);
        return -ECANCELED;
    }
    pt_custodian_register(u->custodian, upstreams_release, u);
    *out = u;
    return 0;
}

static void upstream_free(pt_upstream *up)
{
    ev_timer_stop(up->loop, &up->wake);
    resolve_stop(up);
    for (size_t i = 0; i < up->npeers; i++) {
        pt_pool_free(up->peers[i].pool);
        SSL_SESSION_free(up->peers[i].session);
        if (up->peers[i].resolved) {
            pthread_mutex_destroy(&up->peers[i].resolved->mu);
            free(up->peers[i].resolved);
        }
    }
    pt_connector_free(up->connector);
    SSL_CTX_free(up->ssl_ctx);
    free(up->ring);
    free(up->peers);
    free(up->own_name);
    free(up->key);
    free(up);
}

void pt_upstreams_free(pt_upstreams *u)
{
    if (!u)
        return;
    /* the lookups first (what they finish is dropped), then the checkers: both use the
     * upstreams */
    u->closing = true;
    pt_custodian_shutdown(u->resolving);
    for (size_t i = 0; i < u->ngroups; i++) {
        pt_health_free(u->groups[i]->checker);
        u->groups[i]->checker = NULL;
    }
    for (size_t i = 0; i < u->n; i++)
        upstream_free(u->list[i]);
    pt_custodian_shutdown(u->custodian);
    for (size_t i = 0; i < u->ngroups; i++)
        group_free(u->groups[i]);
    free(u->groups);
    free(u->list);
    free(u);
}

/* Points each server's `mine` at the row of worker `slot`. */
static void point_rows(pt_upstream *up, int slot)
{
    uint32_t *rows = up->group->conns + up->group->npeers;
    for (size_t i = 0; i < up->npeers; i++)
        up->peers[i].mine = &rows[(size_t)slot * up->group->npeers + i];
}

void pt_upstreams_start(pt_upstreams *u, int slot)
{
    if (slot < 0 || slot >= u->nslots)
        slot = 0;
    u->slot = slot;
    /* What a worker of this slot that died held is counted no more. */
    for (size_t k = 0; k < u->ngroups; k++) {
        pt_upstream_group *g = u->groups[k];
        uint32_t *row = g->conns + g->npeers * (size_t)(slot + 1);
        for (size_t i = 0; i < g->npeers; i++) {
            uint32_t held = __atomic_exchange_n(&row[i], 0, __ATOMIC_RELAXED);
            if (held)
                __atomic_sub_fetch(&g->conns[i], held, __ATOMIC_RELAXED);
        }
    }
    for (size_t i = 0; i < u->n; i++)
        point_rows(u->list[i], slot);
    /* One process checks: the first worker (or the only process). */
    for (size_t k = 0; slot == 0 && k < u->ngroups; k++)
        pt_health_start(u->groups[k]->checker);
    for (size_t i = 0; i < u->n; i++)
        resolve_start(u, u->list[i]);
}

void pt_upstreams_stop(pt_upstreams *u)
{
    for (size_t k = 0; u && k < u->ngroups; k++)
        pt_health_stop(u->groups[k]->checker);
    for (size_t i = 0; u && i < u->n; i++)
        resolve_stop(u->list[i]);
}

static const pt_conf_upstream *find_block(const pt_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->nupstreams; i++)
        if (strcmp(conf->upstreams[i].name, name) == 0)
            return &conf->upstreams[i];
    return NULL;
}

/* Fills peer `i` of `up` from its address; `dflt_port` for one written without a port. */
static int peer_init(pt_upstream *up, size_t i, const char *address, uint16_t dflt_port,
                     const pt_pool_options *po)
{
    pt_upstream_peer *p = &up->peers[i];
    int r = pt_authority_parse(&p->authority, address, strlen(address), dflt_port);
    if (r < 0)
        return r;
    pt_authority_format(&p->authority, p->name, sizeof p->name);
    p->address = address;
    /* The name a certificate is checked against: the host as written; for a unix socket the
     * upstream's own name. */
    p->tls_name = p->authority.kind == PT_AUTHORITY_UNIX ? up->name : p->authority.host;
    p->weight = 1;
    p->max_fails = 1;
    p->fail_timeout = PT_CONF_UPSTREAM_FAIL_TIMEOUT;
    health_region *h = up->group->health->p;
    p->st = &h->peers[i];
    p->conns = &up->group->conns[i];
    return pt_pool_new(&p->pool, up->connector, &p->authority, po);
}

static void on_wake(struct ev_loop *loop, ev_timer *w, int revents);

static pt_upstream *upstream_new(pt_upstreams *u, const char *key, const pt_proxy_url *url,
                                 const pt_conf_proxy *px, const pt_conf_location *lc, char *err,
                                 size_t errlen)
{
    const pt_conf_upstream *block = find_block(u->conf, url->name);
    pt_upstream *up = calloc(1, sizeof *up);
    if (!up)
        goto oom;
    up->loop = u->loop;
    up->registry = u;
    ev_init(&up->wake, on_wake);
    up->wake.data = up;
    up->key = strdup(key);
    up->block = block;
    up->tls = url->tls;
    up->verify = px->ssl_verify;
    up->server_name = px->ssl_server_name;
    size_t n = block ? block->nservers : 1;
    up->peers = calloc(n, sizeof *up->peers);
    if (!up->key || !up->peers)
        goto oom;
    /* An address in proxy_pass names itself. */
    up->own_name = block ? NULL : strdup(url->name);
    if (!block && !up->own_name)
        goto oom;
    up->name = block ? block->name : up->own_name;
    /* proxy_pass's own address is its group with its port (http:// and https:// to one host
     * are two servers) */
    char group[PT_AUTHORITY_STRLEN];
    pt_authority ga;
    if (block || pt_authority_parse(&ga, up->name, strlen(up->name), url->tls ? 443 : 80) < 0 ||
        pt_authority_format(&ga, group, sizeof group) < 0)
        snprintf(group, sizeof group, "%s", up->name);
    up->group = group_get(u, group, block);
    if (!up->group)
        goto oom;
    up->lock = &((health_region *)up->group->health->p)->lock;
    if (block) {
        up->balance = block->balance;
        up->random_two = block->random_two;
    }
    pt_connector_options co;
    pt_connector_options_init(&co);
    co.custodian = u->custodian;
    bool resolving = false;
    for (size_t i = 0; block && i < block->nservers; i++)
        resolving |= block->servers[i].resolve;
    if (resolving) {
        /* Every connect asks resolve_for, which answers from the last lookup. */
        co.resolve = resolve_for;
        co.resolve_data = up;
        co.resolve_valid = 0;
        ev_init(&up->resolve, on_resolve);
        up->resolve.data = up;
    }
    int r = pt_connector_new(&up->connector, u->loop, &co);
    if (r < 0)
        goto oom;
    if (up->tls) {
        char why[256];
        up->ssl_ctx = pt_tls_client_ctx_new(px->ssl_trusted_certificate, why, sizeof why);
        if (!up->ssl_ctx) {
            snprintf(err, errlen, "%s:%d:%d: proxy_ssl_trusted_certificate: %s", lc->file, lc->line,
                     lc->col, why);
            upstream_free(up);
            return NULL;
        }
    }
    pt_pool_options po;
    pt_pool_options_init(&po);
    po.max_idle = block ? block->keepalive : PT_CONF_UPSTREAM_KEEPALIVE;
    po.idle_timeout = block ? block->keepalive_timeout : PT_CONF_UPSTREAM_KEEPALIVE_TIMEOUT;
    po.max_requests = block ? block->keepalive_requests : PT_CONF_UPSTREAM_KEEPALIVE_REQUESTS;
    up->npeers = n;
    uint16_t dflt_port = url->tls && !block ? 443 : 80;
    for (size_t i = 0; i < n; i++) {
        pt_upstream_peer *p = &up->peers[i];
        const pt_conf_upstream_server *sv = block ? &block->servers[i] : NULL;
        const char *addr = sv ? sv->address : up->own_name;
        if ((r = peer_init(up, i, addr, dflt_port, &po)) < 0) {
            snprintf(err, errlen, "%s:%d:%d: invalid upstream address \"%s\"",
                     sv ? sv->file : px->pass_file, sv ? sv->line : px->pass_line,
                     sv ? sv->col : px->pass_col, addr);
            upstream_free(up);
            return NULL;
        }
        if (sv) {
            p->weight = sv->weight;
            p->max_fails = sv->max_fails;
            p->fail_timeout = sv->fail_timeout;
            p->max_conns = (uint32_t)sv->max_conns;
            p->slow_start = sv->slow_start;
            p->backup = sv->backup;
            p->down = sv->down;
            if (sv->resolve) {
                if (!(p->resolved = calloc(1, sizeof *p->resolved)))
                    goto oom;
                pthread_mutex_init(&p->resolved->mu, NULL);
                p->resolved->up = up;
                p->resolved->peer = i;
            }
        }
    }
    point_rows(up, u->slot);
    if (block && block->balance == PT_BALANCE_HASH && block->hash_consistent &&
        pt_upstream_ring_build(up) < 0)
        goto oom;
    if (block && block->health.on && !up->group->checker &&
        pt_health_new(&up->group->checker, up, &block->health) < 0)
        goto oom;
    return up;
oom:
    snprintf(err, errlen, "%s:%d:%d: out of memory", lc->file, lc->line, lc->col);
    if (up)
        upstream_free(up);
    return NULL;
}

pt_upstream *pt_upstreams_get(pt_upstreams *u, const pt_conf_proxy *px, const pt_conf_location *lc,
                              char *err, size_t errlen)
{
    pt_proxy_url url;
    const char *why = "";
    if (pt_proxy_url_parse(px->pass, &url, &why) < 0) {
        snprintf(err, errlen, "%s:%d:%d: invalid URL \"%s\" in \"proxy_pass\": %s", px->pass_file,
                 px->pass_line, px->pass_col, px->pass, why);
        return NULL;
    }
    char key[1024];
    snprintf(key, sizeof key, "%s|%d|%d|%d|%s", url.name, url.tls, url.tls && px->ssl_verify,
             url.tls && px->ssl_server_name,
             url.tls && px->ssl_trusted_certificate ? px->ssl_trusted_certificate : "");
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->list[i]->key, key) == 0)
            return u->list[i];
    pt_upstream **list = realloc(u->list, (u->n + 1) * sizeof *list);
    if (!list) {
        snprintf(err, errlen, "%s:%d:%d: out of memory", lc->file, lc->line, lc->col);
        return NULL;
    }
    u->list = list;
    pt_upstream *up = upstream_new(u, key, &url, px, lc, err, errlen);
    if (!up)
        return NULL;
    u->list[u->n++] = up;
    return up;
}

/* ---- a request's way through the servers ---- */

static void put_key(void *ctx, const pt_var_ref *ref, const char *p, size_t n)
{
    uLong *crc = ctx;
    if (n)
        *crc = crc32(*crc, (const Bytef *)p, (uInt)n);
}

void pt_upstream_sel_init(const pt_upstream *up, const pt_request *req, pt_upstream_sel *sel)
{
    memset(sel, 0, sizeof *sel);
    if (up->balance == PT_BALANCE_IP_HASH && req && req->peer) {
        const struct sockaddr *sa = req->peer;
        sel->hash = 89;
        if (sa->sa_family == AF_INET) {
            memcpy(sel->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 3);
            sel->addrlen = 3;
        } else if (sa->sa_family == AF_INET6) {
            const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
            if (IN6_IS_ADDR_V4MAPPED(a)) {
                memcpy(sel->addr, a->s6_addr + 12, 3);
                sel->addrlen = 3;
            } else {
                memcpy(sel->addr, a->s6_addr, 16);
                sel->addrlen = 16;
            }
        }
    } else if (up->balance == PT_BALANCE_HASH && req && up->block) {
        uLong crc = crc32(0L, Z_NULL, 0);
        pt_vars_expand(req, up->block->hash_key, put_key, &crc);
        sel->hash = (uint32_t)crc;
        sel->keyed = true;
        if (up->nring)
            sel->point = pt_upstream_ring_find(up, sel->hash);
    }
}

/* ---- passive health ---- */

void pt_upstream_peer_failed(pt_upstream *up, pt_upstream_peer *p, double now)
{
    if (p->max_fails == 0 || up->npeers < 2)
        return;
    pt_peer_state *st = p->st;
    bool marked = false;
    lock(up->lock);
    if (now - st->fail_checked > p->fail_timeout)
        st->fails = 0;
    st->fail_checked = now;
    uint32_t fails = st->fails + 1;
    __atomic_store_n(&st->fails, fails, __ATOMIC_RELAXED);
    if (fails >= (unsigned)p->max_fails && st->down_until <= now) {
        double until = now + p->fail_timeout;
        __atomic_store(&st->down_until, &until, __ATOMIC_RELAXED);
        marked = true;
    }
    unlock(up->lock);
    if (marked)
        pt_log_error(PT_LOG_WARN, "upstream server %s of \"%s\" temporarily disabled for %gs",
                     p->name, up->name, p->fail_timeout);
}

void pt_upstream_peer_ok(pt_upstream_peer *p)
{
    if (__atomic_load_n(&p->st->fails, __ATOMIC_RELAXED))
        __atomic_store_n(&p->st->fails, 0, __ATOMIC_RELAXED);
}

/* ---- the count of connections, and the queue ---- */

void pt_upstream_peer_done(pt_upstream *up, pt_upstream_peer *p)
{
    __atomic_sub_fetch(p->conns, 1, __ATOMIC_RELAXED);
    if (*p->mine)
        __atomic_store_n(p->mine, *p->mine - 1, __ATOMIC_RELAXED);
    if (up->nwaiting && up->loop) {
        /* The first waiting request tries again in the next loop iteration (not from inside
         * the caller, which is ending a request of its own). */
        ev_timer_stop(up->loop, &up->wake);
        ev_timer_set(&up->wake, 0, QUEUE_POLL);
        ev_timer_start(up->loop, &up->wake);
    }
}

static void on_wake(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_upstream *up = w->data;
    /* In turn while the first leaves the queue: one that must wait on keeps its place, and
     * the ones behind it wait too. */
    while (up->wait_first) {
        pt_upstream_waiter *first = up->wait_first;
        first->wake(first);
        if (up->wait_first == first)
            break;
    }
    if (!up->wait_first)
        ev_timer_stop(loop, w);
}

int pt_upstream_wait(pt_upstream *up, pt_upstream_waiter *w)
{
    if (!up->block || up->nwaiting >= up->block->queue)
        return -EBUSY;
    w->next = NULL;
    w->prev = up->wait_last;
    if (up->wait_last)
        up->wait_last->next = w;
    else
        up->wait_first = w;
    up->wait_last = w;
    w->queued = true;
    if (!up->nwaiting++ && up->loop) {
        ev_timer_set(&up->wake, QUEUE_POLL, QUEUE_POLL);
        ev_timer_start(up->loop, &up->wake);
    }
    return 0;
}

void pt_upstream_unwait(pt_upstream *up, pt_upstream_waiter *w)
{
    if (!w->queued)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        up->wait_first = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        up->wait_last = w->prev;
    w->prev = w->next = NULL;
    w->queued = false;
    if (!--up->nwaiting && up->loop)
        ev_timer_stop(up->loop, &up->wake);
}

/* ---- the status page ---- */

static size_t append(char *buf, size_t len, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t append(char *buf, size_t len, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + (len < cap ? len : cap), len < cap ? cap - len : 0, fmt, ap);
    va_end(ap);
    return n > 0 ? len + (size_t)n : len;
}

/* `s` as a JSON string's contents. */
static size_t append_str(char *buf, size_t len, size_t cap, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            len = append(buf, len, cap, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            len = append(buf, len, cap, "\\u%04x", c);
        else
            len = append(buf, len, cap, "%c", c);
    }
    return len;
}

static const char *balance_name(pt_balance b, bool two)
{
    switch (b) {
    case PT_BALANCE_LEAST_CONN:
        return "least_conn";
    case PT_BALANCE_IP_HASH:
        return "ip_hash";
    case PT_BALANCE_HASH:
        return "hash";
    case PT_BALANCE_RANDOM:
        return two ? "random two" : "random";
    default:
        return "round_robin";
    }
}

/* A server's state for the page: what keeps it from taking requests, first found. */
static const char *peer_state_name(const pt_upstream *up, const pt_upstream_peer *p, double now)
{
    double until;
    __atomic_load(&p->st->down_until, &until, __ATOMIC_RELAXED);
    if (p->down)
        return "down";
    if (__atomic_load_n(&p->st->unhealthy, __ATOMIC_RELAXED))
        return "unhealthy";
    if (up->npeers > 1 && p->max_fails && until > now)
        return "failed";
    return "up";
}

size_t pt_upstreams_json(const pt_upstreams *u, char *buf, size_t len, size_t cap)
{
    double now = ev_now(u->loop);
    len = append(buf, len, cap, "[");
    size_t shown = 0;
    for (size_t k = 0; k < u->ngroups; k++) {
        const pt_upstream_group *g = u->groups[k];
        const pt_upstream *up = NULL;
        for (size_t i = 0; i < u->n && !up; i++)
            if (u->list[i]->group == g)
                up = u->list[i];
        if (!up)
            continue;
        len = append(buf, len, cap, "%s{\"name\":\"", shown++ ? "," : "");
        len = append_str(buf, len, cap, g->name);
        len = append(buf, len, cap, "\",\"balance\":\"%s\",\"health_checks\":%s,\"servers\":[",
                     balance_name(up->balance, up->random_two),
                     up->block && up->block->health.on ? "true" : "false");
        for (size_t i = 0; i < up->npeers; i++) {
            const pt_upstream_peer *p = &up->peers[i];
            const pt_peer_state *st = p->st;
            len = append(buf, len, cap, "%s{\"address\":\"", i ? "," : "");
            len = append_str(buf, len, cap, p->name);
            len = append(buf, len, cap,
                         "\",\"state\":\"%s\",\"backup\":%s,\"weight\":%d,\"active\":%" PRIu32
                         ",\"max_conns\":%" PRIu32 ",\"fails\":%" PRIu32 ",\"checks\":%" PRIu64
                         ",\"checks_failed\":%" PRIu64 ",\"last_check_status\":%" PRId32 "}",
                         peer_state_name(up, p, now), p->backup ? "true" : "false", p->weight,
                         pt_upstream_peer_conns(p), p->max_conns,
                         __atomic_load_n(&st->fails, __ATOMIC_RELAXED),
                         __atomic_load_n(&st->checks, __ATOMIC_RELAXED),
                         __atomic_load_n(&st->checks_failed, __ATOMIC_RELAXED),
                         __atomic_load_n(&st->last_check_status, __ATOMIC_RELAXED));
        }
        len = append(buf, len, cap, "]}");
    }
    return append(buf, len, cap, "]");
}

/* ---- porter -t ---- */

static int check_trusted(const pt_conf_proxy *px, const char *file, int line, int col, char *err,
                         size_t errlen)
{
    if (!px->pass || !px->ssl_trusted_certificate)
        return 0;
    char why[256];
    SSL_CTX *ctx = pt_tls_client_ctx_new(px->ssl_trusted_certificate, why, sizeof why);
    if (!ctx) {
        snprintf(err, errlen, "%s:%d:%d: proxy_ssl_trusted_certificate: %s", file, line, col, why);
        return -EINVAL;
    }
    SSL_CTX_free(ctx);
    return 0;
}

int pt_upstreams_check(const pt_conf *conf, char *err, size_t errlen)
{
    for (size_t s = 0; s < conf->nservers; s++) {
        const pt_conf_server *cs = &conf->servers[s];
        for (size_t i = 0; i < cs->nlocations; i++) {
            const pt_conf_location *lc = &cs->locations[i];
            if (lc->handler != PT_HANDLER_PROXY)
                continue;
            int r = check_trusted(&lc->proxy, lc->file, lc->line, lc->col, err, errlen);
            if (r < 0)
                return r;
        }
    }
    return 0;
}
