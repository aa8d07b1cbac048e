#include "connmgr/connmgr.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connmgr/conn_private.h"
#include "connmgr/park.h"
#include "listener/sized.h"

/* A connection idle this long is parked (park.h); the sweep looks this often. Under load no
 * connection stays idle that long, so parking costs the request path nothing. */
#define PARK_AFTER 0.5
#define PARK_SWEEP 0.25
/* Parking this many at once returns the freed memory to the system. */
#define PARK_TRIM 256

/* Open connections per client address, for max_concurrent_per_client: open addressing with
 * linear probing and backward-shift deletion. Only used when that limit is set. */
typedef struct client_count {
    uint8_t addr[16]; /* IPv4 as v4-mapped IPv6 */
    uint32_t count;   /* 0: empty slot */
} client_count;

typedef struct client_table {
    client_count *slots;
    size_t nslots, used;
} client_table;

struct pt_connmgr {
    struct ev_loop *loop;
    pt_limits limits;
    pt_connmgr_options opts;
    pt_custodian *custodian;
    pt_conn *live;                  /* every live connection */
    pt_conn *idle_head, *idle_tail; /* idle keep-alive connections, oldest first */
    size_t by_state[4];
    pt_connmgr_stats stats;
    ev_prepare reaper;
    pt_timer drain_timer;
    client_table clients;
    pt_parking *parking;
    ev_timer park_sweep;   /* runs while unparked idle connections exist */
    ev_timer drained_soon; /* on_drained after the last parked socket closed */
    bool full, draining, gentle, freeing, trim;
};

void pt_connmgr_options_init_sized(pt_connmgr_options *o, size_t size)
{
    pt_connmgr_options d = {.size = sizeof d};
    pt_sized_init(o, size, &d, sizeof d);
}

const pt_limits *pt_connmgr_limits(const pt_connmgr *m)
{
    return &m->limits;
}

struct ev_loop *pt_connmgr_loop(const pt_connmgr *m)
{
    return m->loop;
}

bool pt_connmgr_is_draining(const pt_connmgr *m)
{
    return m->draining;
}

/* Memory of released connections goes back once every callback of this iteration returned. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    if (pt_custodian_unreaped_count())
        pt_custodian_reap();
    pt_connmgr *m = w->data;
    if (m->trim) {
        /* Many connections just went into the parking lot: give their memory back to the
         * system instead of keeping it resident for the next peak. */
        m->trim = false;
        pt_chunk_pool_trim();
        malloc_trim(0);
    }
}

static void on_unpark(int fd, const struct sockaddr *peer, socklen_t peerlen, unsigned requests,
                      void *data);
static void on_parked_closed(const struct sockaddr *peer, void *data);
static void on_park_sweep(struct ev_loop *loop, ev_timer *w, int revents);
static void on_drained_soon(struct ev_loop *loop, ev_timer *w, int revents);

static void on_custodian_gone(void *data)
{
    pt_connmgr *m = data;
    m->custodian = NULL;
    pt_parking_close_all(m->parking); /* parked sockets are the manager's too */
}

int pt_connmgr_new(pt_connmgr **out, struct ev_loop *loop, const pt_connmgr_options *o)
{
    *out = NULL;
    pt_connmgr_options opts;
    pt_limits limits;
    pt_connmgr_options_init(&opts);
    pt_limits_init(&limits);
    if (pt_sized_copy(&opts, sizeof opts, o) < 0 ||
        (opts.limits && pt_sized_copy(&limits, sizeof limits, opts.limits) < 0))
        return -EINVAL;
    if (!opts.proto || !opts.proto->on_read)
        return -EINVAL;
    pt_connmgr *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->loop = loop;
    m->opts = opts;
    m->limits = limits;
    m->opts.limits = &m->limits;
    m->custodian = pt_custodian_new(o->custodian);
    if (!m->custodian) {
        free(m);
        return -ESHUTDOWN;
    }
    /* A parent shutting down takes the manager's custodian (and every connection) with it; the
     * manager must then stop using it before it is reaped. */
    if (!pt_custodian_register(m->custodian, on_custodian_gone, m)) {
        pt_custodian_shutdown(m->custodian);
        free(m);
        return -ESHUTDOWN;
    }
    int r = pt_parking_new(&m->parking, loop, on_unpark, on_parked_closed, m);
    if (r < 0) {
        pt_custodian_shutdown(m->custodian);
        free(m);
        return r;
    }
    ev_timer_init(&m->park_sweep, on_park_sweep, 0, PARK_SWEEP);
    m->park_sweep.data = m;
    ev_timer_init(&m->drained_soon, on_drained_soon, 0, 0);
    m->drained_soon.data = m;
    ev_prepare_init(&m->reaper, on_prepare);
    m->reaper.data = m;
    ev_prepare_start(loop, &m->reaper);
    ev_unref(loop); /* the reaper alone must not keep the loop running */
    *out = m;
    return 0;
}

/* The client address of a peer, or false for one without (a unix socket). */
static bool client_key(const struct sockaddr *ss, uint8_t key[16])
{
    if (ss->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
        return true;
    }
    if (ss->sa_family == AF_INET) {
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        return true;
    }
    return false;
}

static size_t client_hash(const uint8_t key[16], size_t mask)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 32)) & mask;
}

static client_count *client_find(client_table *t, const uint8_t key[16], bool insert)
{
    if (insert && (t->used + 1) * 2 > t->nslots) {
        size_t n = t->nslots ? t->nslots * 2 : 64;
        client_count *slots = calloc(n, sizeof *slots);
        if (!slots)
            return NULL;
        for (size_t i = 0; i < t->nslots; i++) {
            if (!t->slots[i].count)
                continue;
            size_t k = client_hash(t->slots[i].addr, n - 1);
            while (slots[k].count)
                k = (k + 1) & (n - 1);
            slots[k] = t->slots[i];
        }
        free(t->slots);
        t->slots = slots;
        t->nslots = n;
    }
    if (!t->nslots)
        return NULL;
    size_t mask = t->nslots - 1;
    for (size_t k = client_hash(key, mask);; k = (k + 1) & mask) {
        client_count *e = &t->slots[k];
        if (!e->count) {
            if (!insert)
                return NULL;
            memcpy(e->addr, key, 16);
            t->used++;
            return e;
        }
        if (memcmp(e->addr, key, 16) == 0)
            return e;
    }
}

/* Removes an emptied slot, shifting later members of its probe run back into the hole. */
static void client_remove(client_table *t, client_count *e)
{
    size_t mask = t->nslots - 1, hole = (size_t)(e - t->slots);
    t->slots[hole].count = 0;
    t->used--;
    for (size_t k = (hole + 1) & mask; t->slots[k].count; k = (k + 1) & mask) {
        size_t home = client_hash(t->slots[k].addr, mask);
        /* Move k into the hole unless its home lies cyclically in (hole, k]. */
        if (((k - home) & mask) >= ((k - hole) & mask)) {
            t->slots[hole] = t->slots[k];
            t->slots[k].count = 0;
            hole = k;
        }
    }
}

static bool per_client_limited(const pt_connmgr *m)
{
    return m->limits.max_concurrent_per_client != PT_LIMIT_NONE;
}

static void client_release(pt_connmgr *m, const pt_conn *c)
{
    uint8_t key[16];
    if (!per_client_limited(m) || !client_key(&c->peer.sa, key))
        return;
    client_count *e = client_find(&m->clients, key, false);
    if (e && --e->count == 0)
        client_remove(&m->clients, e);
}

static void idle_unlink(pt_connmgr *m, pt_conn *c)
{
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        m->idle_head = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        m->idle_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
}

static void idle_append(pt_connmgr *m, pt_conn *c)
{
    c->idle_prev = m->idle_tail;
    c->idle_next = NULL;
    if (m->idle_tail)
        m->idle_tail->idle_next = c;
    else
        m->idle_head = c;
    m->idle_tail = c;
}

/* Admission is full when no connection can be admitted, not even by evicting an idle one.
 * Called wherever that can change: admission, release, a connection going idle or busy. */
static void update_full(pt_connmgr *m)
{
    bool full =
        m->stats.live >= m->limits.max_concurrent && !m->idle_head && !pt_parking_count(m->parking);
    if (full == m->full || m->freeing)
        return;
    m->full = full;
    if (full && m->opts.on_full)
        m->opts.on_full(m->opts.data);
    else if (!full && m->opts.on_room && !m->draining)
        m->opts.on_room(m->opts.data);
}

static void conn_state_changed(pt_connmgr *m, pt_conn *c, pt_conn_state from)
{
    m->by_state[from]--;
    m->by_state[c->state]++;
    if (from == PT_CONN_IDLE)
        idle_unlink(m, c);
    if (c->state == PT_CONN_IDLE) {
        idle_append(m, c);
        if (!ev_is_active(&m->park_sweep))
            ev_timer_again(m->loop, &m->park_sweep);
        /* A drain closes connections as soon as they have nothing in flight. */
        if (m->draining && !m->gentle)
            pt_conn_close(c);
    }
    /* Only an empty idle list can make admission full, and only at the limit. */
    if (m->full || m->stats.live >= m->limits.max_concurrent)
        update_full(m);
}

static void conn_released(pt_connmgr *m, pt_conn *c)
{
    if (!c->linked) /* failed while being made: never counted */
        return;
    if (c->state == PT_CONN_IDLE)
        idle_unlink(m, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        m->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    /* A parked connection is still open, and still idle: only its form changed. */
    if (c->parked)
        return;
    m->by_state[c->state]--;
    m->stats.live--;
    m->stats.closed++;
    client_release(m, c);
    if (m->freeing)
        return;
    update_full(m);
    if (m->draining && m->stats.live == 0) {
        pt_timer_cancel(&m->drain_timer);
        if (m->opts.on_drained)
            m->opts.on_drained(m->opts.data);
    }
}

static void on_drained_soon(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_connmgr *m = w->data;
    if (m->opts.on_drained)
        m->opts.on_drained(m->opts.data);
}

/* A parked socket was closed: the connection is gone. on_drained is deferred, since the lot is
 * still looping over its records. */
static void on_parked_closed(const struct sockaddr *peer, void *data)
{
    pt_connmgr *m = data;
    m->by_state[PT_CONN_IDLE]--;
    m->stats.live--;
    m->stats.closed++;
    uint8_t key[16];
    if (per_client_limited(m) && client_key(peer, key)) {
        client_count *e = client_find(&m->clients, key, false);
        if (e && --e->count == 0)
            client_remove(&m->clients, e);
    }
    if (m->freeing)
        return;
    update_full(m);
    if (m->draining && m->stats.live == 0) {
        pt_timer_cancel(&m->drain_timer);
        ev_timer_start(m->loop, &m->drained_soon);
    }
}

static const struct pt_conn_owner owner = {
    .state_changed = conn_state_changed,
    .released = conn_released,
};

/* Links a connection made for `fd` into the live set (admission already decided). */
static pt_conn *adopt(pt_connmgr *m, int fd, int wfd, const struct sockaddr *peer,
                      socklen_t peerlen)
{
    pt_conn_setup s = {
        .owner = &owner,
        .limits = &m->limits,
        .stats = &m->stats,
        .proto = m->opts.proto,
        .proto_data = m->opts.proto_data,
        .proto_size = m->opts.proto_size,
        .wrap_transport = m->opts.wrap_transport,
        .wrap_data = m->opts.data,
    };
    pt_conn *c = pt_conn__open(m, &s, m->custodian, m->loop, fd, wfd, peer, peerlen);
    if (!c)
        return NULL;
    c->next = m->live;
    if (m->live)
        m->live->prev = c;
    m->live = c;
    c->linked = true;
    m->by_state[c->state]++;
    m->stats.live++;
    if (m->opts.on_admit)
        m->opts.on_admit(c, m->opts.data);
    return c;
}

/* Reads what has arrived on a connection just made, unless on_admit paused its reading (a
 * stage that reads the socket itself first: the PROXY protocol header). */
static void first_read(pt_conn *c)
{
    if (!c->read_paused)
        pt_conn__readable(c);
}

/* A parked client sent something (or closed): the connection takes its full form again and
 * reads at once. */
static void on_unpark(int fd, const struct sockaddr *peer, socklen_t peerlen, unsigned requests,
                      void *data)
{
    pt_connmgr *m = data;
    m->by_state[PT_CONN_IDLE]--;
    m->stats.live--;
    pt_conn *c = m->custodian ? adopt(m, fd, -1, peer, peerlen) : NULL;
    if (!c) {
        if (!m->custodian)
            close(fd);
        m->stats.live++; /* on_parked_closed takes it back off */
        m->by_state[PT_CONN_IDLE]++;
        on_parked_closed(peer, m);
        return;
    }
    c->requests = requests;
    first_read(c);
}

static bool parkable(const pt_conn *c)
{
    return c->state == PT_CONN_IDLE && !c->dead && !c->eof && !c->close_after && !c->read_paused &&
           pt_inbuf_len(&c->in) == 0 && pt_outq_is_empty(&c->out) &&
           pt_transport_is_tcp(&c->transport) && pt_custodian_is_bare(c->custodian);
}

static void on_park_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_connmgr *m = w->data;
    double now = ev_now(loop), keepalive = m->limits.keepalive_timeout;
    pt_conn *c = m->idle_head, *next;
    size_t parked = 0;
    for (; c && now - c->idle_since >= PARK_AFTER; c = next) {
        next = c->idle_next;
        if (!parkable(c))
            continue;
        double deadline = pt_timeout_is_none(keepalive) ? INFINITY : c->idle_since + keepalive;
        if (!pt_parking_park(m->parking, c, deadline))
            break;
        /* The lot owns the socket now: releasing the connection must not close it. */
        c->transport.fd = -1;
        c->parked = true;
        pt_conn_kill(c);
        parked++;
    }
    if (parked >= PARK_TRIM)
        m->trim = true;
    if (!m->idle_head)
        ev_timer_stop(loop, w);
}

/* Closes a connection that is not admitted, first telling the client why if there is a canned
 * answer for it (best effort: the socket is fresh, so its buffer has room). */
static void refuse(pt_connmgr *m, int fd)
{
    if (m->opts.refusal && m->opts.refusal_len) {
        ssize_t n = send(fd, m->opts.refusal, m->opts.refusal_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
        shutdown(fd, SHUT_WR);
    }
    close(fd);
    m->stats.rejected++;
}

pt_conn *pt_connmgr_admit(pt_connmgr *m, int fd, const struct sockaddr *peer, socklen_t peerlen)
{

    if (m->draining) {
        close(fd);
        m->stats.rejected++;
        return NULL;
    }
    /* Under pressure the oldest idle keep-alive connection makes room: it has nothing in flight
     * and its client can reconnect, while the new one is waiting now. */
    if (m->stats.live >= m->limits.max_concurrent && !pt_parking_evict_oldest(m->parking) &&
        m->idle_head)
        pt_conn_kill(m->idle_head);
    if (m->stats.live >= m->limits.max_concurrent || !m->custodian) {
        close(fd);
        m->stats.rejected++;
        update_full(m);
        return NULL;
    }
    /* Looked up last: evicting an idle connection above may move entries of the table. */
    client_count *cc = NULL;
    uint8_t key[16];
    if (per_client_limited(m) && peer) {
        if (client_key(peer, key)) {
            cc = client_find(&m->clients, key, true);
            if (cc && cc->count >= m->limits.max_concurrent_per_client) {
                if (cc->count == 0) /* a limit of 0: the entry was made just now */
                    client_remove(&m->clients, cc);
                refuse(m, fd);
                return NULL;
            }
        }
    }
    if (cc)
        cc->count++; /* before adopt: on_admit may already close the connection */
    pt_conn *c = adopt(m, fd, -1, peer, peerlen);
    if (!c) {
        m->stats.rejected++;
        if (cc && --cc->count == 0)
            client_remove(&m->clients, cc);
        return NULL;
    }
    m->stats.accepted++;
    update_full(m);
    /* Clients speak first, and by the time a connection is accepted its request has usually
     * arrived: reading now saves a trip through the poller, and a connection answered and
     * closed at once never enters it. */
    first_read(c);
    return c->dead ? NULL : c;
}

size_t pt_connmgr_evict_idle(pt_connmgr *m, size_t max)
{
    size_t n = 0;
    while (n < max && pt_parking_evict_oldest(m->parking))
        n++;
    while (n < max && m->idle_head) {
        pt_conn_kill(m->idle_head);
        n++;
    }
    return n;
}

pt_conn *pt_connmgr_admit_pair(pt_connmgr *m, int rfd, int wfd)
{
    if (m->draining || !m->custodian || m->stats.live >= m->limits.max_concurrent) {
        close(rfd);
        if (wfd != rfd)
            close(wfd);
        m->stats.rejected++;
        return NULL;
    }
    pt_conn *c = adopt(m, rfd, wfd, NULL, 0);
    if (!c) {
        m->stats.rejected++;
        return NULL;
    }
    m->stats.accepted++;
    update_full(m);
    first_read(c);
    return c->dead ? NULL : c;
}

/* The last kill may run on_drained, which may free the manager: touch nothing after it. */
static void kill_all(pt_connmgr *m)
{
    pt_parking_close_all(m->parking);
    while (m->live) {
        bool last = m->live->next == NULL;
        pt_conn_kill(m->live);
        if (last)
            return;
    }
}

static void on_drain_timeout(pt_timer *t, void *data)
{
    kill_all(data);
}

static void drain(pt_connmgr *m, double grace, bool gentle)
{
    if (m->draining) {
        kill_all(m);
        return;
    }
    m->draining = true;
    m->gentle = gentle;
    if (m->stats.live == 0) {
        if (m->opts.on_drained)
            m->opts.on_drained(m->opts.data);
        return;
    }
    pt_timer_init(&m->drain_timer, m->loop, on_drain_timeout, m);
    if (!pt_timeout_is_none(grace))
        pt_timer_start(&m->drain_timer, grace);
    /* Protocols that can say "no more" to their peer say it now (a killed connection stays
     * readable, and unlinked, until the loop iteration ends). */
    for (pt_conn *c = m->live, *next; c; c = next) {
        next = c->next;
        if (c->proto->on_retire && !c->dead)
            c->proto->on_retire(c);
    }
    /* Idle connections and ones that have not started a request close now; the others close
     * after the response in flight (the protocol sees pt_connmgr_is_draining). A gentle drain
     * leaves idle ones open: their client may be sending a request right now. */
    if (gentle)
        return;
    pt_parking_close_all(m->parking);
    pt_conn *next;
    for (pt_conn *c = m->live; c; c = next) {
        next = c->next;
        if (c->state == PT_CONN_IDLE ||
            (c->state == PT_CONN_READING && pt_inbuf_len(&c->in) == 0 && c->requests == 0))
            pt_conn_close(c);
    }
}

void pt_connmgr_drain(pt_connmgr *m, double grace)
{
    drain(m, grace, false);
}

void pt_connmgr_retire(pt_connmgr *m, double grace)
{
    drain(m, grace, true);
}

void pt_connmgr_free(pt_connmgr *m)
{
    if (!m)
        return;
    m->freeing = true;
    pt_custodian_shutdown(m->custodian); /* NULL if a parent already did */
    if (m->draining)
        pt_timer_dispose(&m->drain_timer);
    pt_parking_free(m->parking);
    ev_timer_stop(m->loop, &m->park_sweep);
    ev_timer_stop(m->loop, &m->drained_soon);
    ev_ref(m->loop);
    ev_prepare_stop(m->loop, &m->reaper);
    free(m->clients.slots);
    free(m);
}

void pt_connmgr_get_stats(const pt_connmgr *m, pt_connmgr_stats *out)
{
    *out = m->stats;
    out->idle = m->by_state[PT_CONN_IDLE];
    out->reading = m->by_state[PT_CONN_READING];
    out->writing = m->by_state[PT_CONN_WRITING];
    out->lingering = m->by_state[PT_CONN_LINGERING];
    out->parked = pt_parking_count(m->parking);
}
