/*
 * The connector: resolution (cache, resolver threads), connect-each-address, and the outbound
 * transports it hands out (see connector.h).
 */
#include "connmgr/connector.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connmgr/limits.h"
#include "connmgr/timer.h"
#include "listener/sized.h"

#define CACHE_SIZE 8

/* A lookup handed to a resolver thread. Queued and done lists are guarded by the connector's
 * mutex; `waiter` belongs to the loop thread. */
typedef struct job {
    struct job *next;
    char host[PT_AUTHORITY_HOST_MAX + 1];
    pt_resolve_fn fn;
    void *fn_data;
    int status; /* addresses found, or a negative errno */
    pt_connect_addr addrs[PT_CONNECTOR_MAX_ADDRESSES];
    pt_connect *waiter; /* NULL once the connect was abandoned */
} job;

typedef struct cache_entry {
    char host[PT_AUTHORITY_HOST_MAX + 1];
    double expires;
    size_t n;
    pt_connect_addr addrs[PT_CONNECTOR_MAX_ADDRESSES]; /* port 0 */
} cache_entry;

struct pt_connect {
    pt_connector *c;
    pt_custodian_entry *entry;
    pt_authority authority;
    pt_connect_cb cb;
    void *data;
    pt_connect_addr addrs[PT_CONNECTOR_MAX_ADDRESSES];
    size_t naddrs, next;
    int fd;
    int last_error;
    bool in_call; /* inside pt_connector_connect: results wait for the loop */
    ev_io io;
    pt_timer attempt, total;
    ev_timer defer; /* delivers a result decided inside pt_connector_connect */
    int result;
    job *job; /* a lookup in progress */
};

struct pt_connector {
    struct ev_loop *loop;
    pt_connector_options o;
    pt_connect_addr local;
    pt_custodian *custodian; /* NULL once shut down */
    size_t pending, open;

    /* resolver */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *queue, *queue_tail, *done;
    pthread_t threads[PT_CONNECTOR_RESOLVER_THREADS];
    int nthreads, idle_threads;
    bool quit;
    ev_async async;
    size_t outstanding; /* jobs handed to the threads and not yet collected */
    cache_entry cache[CACHE_SIZE];
};

void pt_connector_options_init_sized(pt_connector_options *o, size_t size)
{
    pt_connector_options d = {
        .size = sizeof d,
        .attempt_timeout = 10.0,
        .connect_timeout = 60.0,
        .resolve_valid = 10.0,
        .nodelay = true,
    };
    pt_sized_init(o, size, &d, sizeof d);
}

bool pt_connect_error_is_transient(int err)
{
    switch (err < 0 ? -err : err) {
    case ECONNREFUSED:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
    case ETIMEDOUT:
    case ECONNRESET:
    case ECONNABORTED:
    case EAFNOSUPPORT: /* no IPv6 here: the next (IPv4) address may do */
    case EADDRNOTAVAIL:
    case ENOENT: /* a unix socket not there (yet): like a refusal */
        return true;
    default:
        return false;
    }
}

static void set_port(pt_connect_addr *a, uint16_t port)
{
    if (a->addr.sa.sa_family == AF_INET)
        a->addr.in.sin_port = htons(port);
    else if (a->addr.sa.sa_family == AF_INET6)
        a->addr.in6.sin6_port = htons(port);
}

/* ---- the default resolver ---- */

static int gai_errno(int r)
{
    switch (r) {
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
        return -ENOENT;
    case EAI_AGAIN:
        return -ETIMEDOUT;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return errno ? -errno : -EIO;
    default:
        return -EIO;
    }
}

int pt_resolve_getaddrinfo(const char *host, pt_connect_addr *out, size_t max, void *data)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_protocol = IPPROTO_TCP,
    };
    struct addrinfo *res = NULL;
    int r = getaddrinfo(host, NULL, &hints, &res);
    if (r != 0)
        return gai_errno(r);
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof out->addr)
            continue;
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup =
                out[i].len == ai->ai_addrlen && memcmp(&out[i].addr, ai->ai_addr, out[i].len) == 0;
        if (dup)
            continue;
        memset(&out[n], 0, sizeof out[n]);
        memcpy(&out[n].addr, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    return n ? (int)n : -ENOENT;
}

/* ---- resolver threads ---- */

static void *resolver_main(void *arg)
{
    pt_connector *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->queue && !c->quit) {
            c->idle_threads++;
            pthread_cond_wait(&c->cv, &c->mu);
            c->idle_threads--;
        }
        if (c->quit)
            break;
        job *j = c->queue;
        c->queue = j->next;
        if (!c->queue)
            c->queue_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        j->status = j->fn(j->host, j->addrs, PT_CONNECTOR_MAX_ADDRESSES, j->fn_data);
        if (j->status > PT_CONNECTOR_MAX_ADDRESSES)
            j->status = PT_CONNECTOR_MAX_ADDRESSES;
        pthread_mutex_lock(&c->mu);
        j->next = c->done;
        c->done = j;
        /* Sent under the lock: the loop thread cannot stop and free the watcher meanwhile
         * (freeing joins this thread first anyway). */
        ev_async_send(c->loop, &c->async);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Queues `j`, starting a thread if none is idle and there is room for one. */
static int submit(pt_connector *c, job *j)
{
    /* The watcher is active before any thread can see the job: ev_async_start clears a send
     * made before it (libev wakes a loop only for an active ev_async), so starting it after the
     * job is queued loses the answer of a thread that was quicker than this one, and the
     * connect waits for its timeout. */
    if (c->outstanding == 0)
        ev_async_start(c->loop, &c->async);
    int r = 0;
    pthread_mutex_lock(&c->mu);
    if (c->idle_threads == 0 && c->nthreads < PT_CONNECTOR_RESOLVER_THREADS) {
        /* The thread takes no signal: they stay with the loop's thread. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&c->threads[c->nthreads], NULL, resolver_main, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r == 0)
            c->nthreads++;
        else if (c->nthreads > 0)
            r = 0; /* the threads there will get to it */
    }
    if (r == 0) {
        j->next = NULL;
        if (c->queue_tail)
            c->queue_tail->next = j;
        else
            c->queue = j;
        c->queue_tail = j;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (r == 0)
        c->outstanding++;
    else if (c->outstanding == 0)
        ev_async_stop(c->loop, &c->async);
    return r;
}

static void resolver_stop(pt_connector *c)
{
    pthread_mutex_lock(&c->mu);
    c->quit = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->nthreads; i++)
        pthread_join(c->threads[i], NULL);
    c->nthreads = 0;
    for (job *lists[2] = {c->queue, c->done}, **l = lists; l < lists + 2; l++) {
        for (job *j = *l, *next; j; j = next) {
            next = j->next;
            free(j);
        }
    }
    c->queue = c->queue_tail = c->done = NULL;
    c->outstanding = 0;
    ev_async_stop(c->loop, &c->async);
}

/* ---- the cache ---- */

static const cache_entry *cache_find(pt_connector *c, const char *host)
{
    double now = ev_now(c->loop);
    for (size_t i = 0; i < CACHE_SIZE; i++)
        if (c->cache[i].n && c->cache[i].expires > now && strcmp(c->cache[i].host, host) == 0)
            return &c->cache[i];
    return NULL;
}

static void cache_put(pt_connector *c, const job *j)
{
    if (c->o.resolve_valid <= 0 || j->status <= 0)
        return;
    cache_entry *e = &c->cache[0];
    for (size_t i = 0; i < CACHE_SIZE; i++) {
        if (strcmp(c->cache[i].host, j->host) == 0) {
            e = &c->cache[i];
            break;
        }
        if (c->cache[i].expires < e->expires)
            e = &c->cache[i];
    }
    memcpy(e->host, j->host, sizeof e->host);
    e->expires = ev_now(c->loop) + c->o.resolve_valid;
    e->n = (size_t)j->status;
    memcpy(e->addrs, j->addrs, e->n * sizeof *e->addrs);
    for (size_t i = 0; i < e->n; i++)
        set_port(&e->addrs[i], 0);
}

/* ---- connecting ---- */

static void outbound_release(void *data);

/* Ends a connect: everything it holds is released before the callback runs, so the callback
 * may do anything (connect again, shut its own custodian down). */
static void finish(pt_connect *k, int status, pt_outbound *o)
{
    pt_connector *c = k->c;
    struct ev_loop *loop = c->loop;
    ev_io_stop(loop, &k->io);
    ev_timer_stop(loop, &k->defer);
    pt_timer_dispose(&k->attempt);
    pt_timer_dispose(&k->total);
    if (k->fd >= 0)
        close(k->fd);
    if (k->job)
        k->job->waiter = NULL;
    pt_custodian_unregister(k->entry);
    c->pending--;
    pt_connect_cb cb = k->cb;
    void *data = k->data;
    free(k);
    cb(o, status, data);
}

static void succeed(pt_connect *k)
{
    pt_connector *c = k->c;
    pt_outbound *o = calloc(1, sizeof *o);
    if (!o) {
        finish(k, -ENOMEM, NULL);
        return;
    }
    o->entry = pt_custodian_register(c->custodian, outbound_release, o);
    pt_tcp_transport_init(&o->transport, k->fd);
    ev_io_init(&o->io, NULL, k->fd, 0);
    k->fd = -1;
    o->authority = k->authority;
    o->peer = k->addrs[k->next - 1];
    o->connector = c;
    o->held = true;
    c->open++;
    finish(k, 0, o);
}

/* Delivers a final result now, or on the next loop iteration when inside the call. */
static void deliver(pt_connect *k, int status)
{
    if (k->in_call) {
        k->result = status;
        ev_timer_start(k->c->loop, &k->defer);
        return;
    }
    finish(k, status, NULL);
}

/* Opens a socket for `a` and starts connecting. Returns 0 (in progress: the io watcher waits)
 * or a negative errno. */
static int start_attempt(pt_connect *k, const pt_connect_addr *a)
{
    pt_connector *c = k->c;
    int family = a->addr.sa.sa_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if ((family == AF_INET || family == AF_INET6) && c->o.nodelay)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->local.len && c->local.addr.sa.sa_family == family) {
        /* The port is picked at connect(), so a busy local address does not run out of them. */
        if (family != AF_UNIX)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, &c->local.addr.sa, c->local.len) < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
    }
    if (connect(fd, &a->addr.sa, a->len) < 0 && errno != EINPROGRESS && errno != EINTR) {
        /* A unix socket whose backlog is full answers EAGAIN: a refusal, for our purposes
         * (-EAGAIN means "wait for readiness" everywhere else). */
        int e = errno == EAGAIN ? -ECONNREFUSED : -errno;
        close(fd);
        return e;
    }
    /* Connected at once (a unix socket) or in progress: either way writability says. */
    k->fd = fd;
    ev_io_set(&k->io, fd, EV_WRITE);
    ev_io_start(c->loop, &k->io);
    pt_timer_start(&k->attempt, c->o.attempt_timeout);
    return 0;
}

static void try_next(pt_connect *k)
{
    while (k->next < k->naddrs) {
        int e = start_attempt(k, &k->addrs[k->next++]);
        if (e == 0)
            return;
        k->last_error = e;
        if (!pt_connect_error_is_transient(e)) {
            deliver(k, e);
            return;
        }
    }
    deliver(k, k->last_error ? k->last_error : -EHOSTUNREACH);
}

/* The attempt in progress failed with `err`: the next address, or the end. */
static void attempt_failed(pt_connect *k, int err)
{
    ev_io_stop(k->c->loop, &k->io);
    pt_timer_cancel(&k->attempt);
    close(k->fd);
    k->fd = -1;
    k->last_error = err;
    if (pt_connect_error_is_transient(err))
        try_next(k);
    else
        finish(k, err, NULL);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    pt_connect *k = w->data;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0) {
        ev_io_stop(loop, &k->io);
        pt_timer_cancel(&k->attempt);
        succeed(k);
        return;
    }
    attempt_failed(k, -err);
}

static void on_attempt_timeout(pt_timer *t, void *data)
{
    attempt_failed(data, -ETIMEDOUT);
}

static void on_total_timeout(pt_timer *t, void *data)
{
    finish(data, -ETIMEDOUT, NULL);
}

static void on_defer(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_connect *k = w->data;
    finish(k, k->result, NULL);
}

/* The connector's custodian shuts down under a connect in progress. */
static void connect_release(void *data)
{
    pt_connect *k = data;
    k->entry = NULL;
    finish(k, -ECANCELED, NULL);
}

/* Addresses for `k` are known: start with the first. */
static void addresses_known(pt_connect *k, const pt_connect_addr *addrs, size_t n)
{
    k->naddrs = n;
    memcpy(k->addrs, addrs, n * sizeof *addrs);
    for (size_t i = 0; i < n; i++)
        set_port(&k->addrs[i], k->authority.port);
    try_next(k);
}

static void on_resolved(struct ev_loop *loop, ev_async *w, int revents)
{
    pt_connector *c = w->data;
    pthread_mutex_lock(&c->mu);
    job *list = c->done;
    c->done = NULL;
    pthread_mutex_unlock(&c->mu);
    while (list) {
        job *j = list;
        list = j->next;
        c->outstanding--;
        cache_put(c, j);
        pt_connect *k = j->waiter;
        if (k) {
            k->job = NULL;
            if (j->status > 0)
                addresses_known(k, j->addrs, (size_t)j->status);
            else
                finish(k, j->status < 0 ? j->status : -ENOENT, NULL);
        }
        free(j);
    }
    if (c->outstanding == 0)
        ev_async_stop(loop, &c->async);
}

int pt_connector_connect(pt_connector *c, const pt_authority *a, double timeout, pt_connect_cb cb,
                         void *data, pt_connect **out)
{
    if (out)
        *out = NULL;
    if (!c->custodian)
        return -ECANCELED;
    pt_connect *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    k->entry = pt_custodian_register(c->custodian, connect_release, k);
    if (!k->entry) {
        free(k);
        return -ECANCELED;
    }
    k->c = c;
    k->authority = *a;
    k->cb = cb;
    k->data = data;
    k->fd = -1;
    ev_io_init(&k->io, on_writable, -1, EV_WRITE);
    k->io.data = k;
    ev_timer_init(&k->defer, on_defer, 0, 0);
    k->defer.data = k;
    pt_timer_init(&k->attempt, c->loop, on_attempt_timeout, k);
    pt_timer_init(&k->total, c->loop, on_total_timeout, k);
    pt_timer_start(&k->total, timeout > 0 ? timeout : c->o.connect_timeout);
    c->pending++;
    if (out)
        *out = k;
    k->in_call = true;
    if (!pt_authority_needs_resolver(a)) {
        pt_connect_addr lit = {.len = a->addrlen};
        memcpy(&lit.addr, &a->addr, a->addrlen);
        addresses_known(k, &lit, 1);
    } else {
        const cache_entry *e = cache_find(c, a->host);
        if (e) {
            addresses_known(k, e->addrs, e->n);
        } else {
            job *j = calloc(1, sizeof *j);
            int r = j ? 0 : -ENOMEM;
            if (j) {
                memcpy(j->host, a->host, sizeof j->host);
                j->fn = c->o.resolve ? c->o.resolve : pt_resolve_getaddrinfo;
                j->fn_data = c->o.resolve_data;
                j->waiter = k;
                if ((r = submit(c, j)) < 0)
                    free(j);
                else
                    k->job = j;
            }
            if (r < 0)
                deliver(k, r);
        }
    }
    k->in_call = false;
    return 0;
}

void pt_connect_cancel(pt_connect *k)
{
    if (!k)
        return;
    pt_connector *c = k->c;
    ev_io_stop(c->loop, &k->io);
    ev_timer_stop(c->loop, &k->defer);
    pt_timer_dispose(&k->attempt);
    pt_timer_dispose(&k->total);
    if (k->fd >= 0)
        close(k->fd);
    if (k->job)
        k->job->waiter = NULL;
    pt_custodian_unregister(k->entry);
    c->pending--;
    free(k);
}

/* ---- outbound transports ---- */

/* The connector's custodian shuts down: the socket goes; the memory goes too unless a holder
 * still has it (its pt_outbound_close frees it). */
static void outbound_release(void *data)
{
    pt_outbound *o = data;
    o->entry = NULL;
    if (o->detach)
        o->detach(o);
    o->detach = NULL;
    ev_io_stop(o->connector->loop, &o->io);
    pt_transport_close(&o->transport);
    o->connector->open--;
    if (!o->held)
        free(o);
}

void pt_outbound_close(pt_outbound *o)
{
    if (!o)
        return;
    if (o->detach)
        o->detach(o);
    if (o->entry) {
        /* (Without its entry the connector may be gone, and with it the loop: the watcher was
         * stopped when the entry ran.) */
        ev_io_stop(o->connector->loop, &o->io);
        pt_custodian_unregister(o->entry);
        o->connector->open--;
    }
    pt_transport_close(&o->transport);
    free(o);
}

void pt_outbound_watch(pt_outbound *o, struct ev_loop *loop, int events)
{
    ev_io *w = &o->io;
    if (ev_is_active(w) ? events == (w->events & (EV_READ | EV_WRITE)) : events == 0)
        return;
    ev_io_stop(loop, w);
    if (events) {
        ev_io_modify(w, events);
        ev_io_start(loop, w);
    }
}

/* ---- the connector ---- */

/* Runs last at shutdown (registered first): connects and transports are gone already. */
static void connector_release(void *data)
{
    pt_connector *c = data;
    c->custodian = NULL;
    resolver_stop(c);
}

int pt_connector_new(pt_connector **out, struct ev_loop *loop, const pt_connector_options *opts)
{
    *out = NULL;
    pt_connector_options copy;
    pt_connector_options_init(&copy);
    if (pt_sized_copy(&copy, sizeof copy, opts) < 0)
        return -EINVAL;
    const pt_connector_options *o = &copy;
    if (o->local && (o->local_len == 0 || o->local_len > sizeof(struct sockaddr_storage)))
        return -EINVAL;
    pt_connector *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->o = *o;
    if (o->local) {
        memcpy(&c->local.addr, o->local, o->local_len);
        c->local.len = o->local_len;
    }
    c->o.local = NULL;
    c->custodian = pt_custodian_new(o->custodian);
    if (!c->custodian) {
        free(c);
        return -ECANCELED;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    ev_async_init(&c->async, on_resolved);
    c->async.data = c;
    pt_custodian_register(c->custodian, connector_release, c);
    *out = c;
    return 0;
}

void pt_connector_free(pt_connector *c)
{
    if (!c)
        return;
    pt_custodian_shutdown(c->custodian);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

pt_custodian *pt_connector_custodian(pt_connector *c)
{
    return c->custodian;
}

struct ev_loop *pt_connector_loop(const pt_connector *c)
{
    return c->loop;
}

size_t pt_connector_pending_count(const pt_connector *c)
{
    return c->pending;
}

size_t pt_connector_open_count(const pt_connector *c)
{
    return c->open;
}
