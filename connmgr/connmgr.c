#include "connmgr/connmgr.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "connmgr/conn_private.h"

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
    bool full, draining, freeing;
};

void pt_connmgr_options_init(pt_connmgr_options *o)
{
    *o = (pt_connmgr_options){.limits = pt_limits_default()};
}

const pt_limits *pt_connmgr_limits(const pt_connmgr *m)
{
    return &m->limits;
}

struct ev_loop *pt_connmgr_loop(const pt_connmgr *m)
{
    return m->loop;
}

const pt_conn_proto *pt_connmgr__proto(const pt_connmgr *m)
{
    return m->opts.proto;
}

void *pt_connmgr__proto_data(const pt_connmgr *m)
{
    return m->opts.proto_data;
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
}

static void on_custodian_gone(void *data)
{
    pt_connmgr *m = data;
    m->custodian = NULL;
}

int pt_connmgr_new(pt_connmgr **out, struct ev_loop *loop, const pt_connmgr_options *o)
{
    if (!o->proto || !o->proto->on_read)
        return -EINVAL;
    pt_connmgr *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->loop = loop;
    m->opts = *o;
    m->limits = o->limits;
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
    ev_prepare_init(&m->reaper, on_prepare);
    ev_prepare_start(loop, &m->reaper);
    ev_unref(loop); /* the reaper alone must not keep the loop running */
    *out = m;
    return 0;
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
    bool full = m->stats.live >= m->limits.max_concurrent && !m->idle_head;
    if (full == m->full || m->freeing)
        return;
    m->full = full;
    if (full && m->opts.on_full)
        m->opts.on_full(m->opts.data);
    else if (!full && m->opts.on_room && !m->draining)
        m->opts.on_room(m->opts.data);
}

void pt_connmgr__state_changed(pt_connmgr *m, pt_conn *c, pt_conn_state from)
{
    m->by_state[from]--;
    m->by_state[c->state]++;
    if (from == PT_CONN_IDLE)
        idle_unlink(m, c);
    if (c->state == PT_CONN_IDLE) {
        idle_append(m, c);
        /* A drain closes connections as soon as they have nothing in flight. */
        if (m->draining)
            pt_conn_close(c);
    }
    update_full(m);
}

void pt_connmgr__released(pt_connmgr *m, pt_conn *c)
{
    if (c->state == PT_CONN_IDLE)
        idle_unlink(m, c);
    m->by_state[c->state]--;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    m->stats.live--;
    m->stats.closed++;
    if (m->freeing)
        return;
    update_full(m);
    if (m->draining && m->stats.live == 0) {
        pt_timer_cancel(&m->drain_timer);
        if (m->opts.on_drained)
            m->opts.on_drained(m->opts.data);
    }
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
    if (m->stats.live >= m->limits.max_concurrent && m->idle_head)
        pt_conn_kill(m->idle_head);
    if (m->stats.live >= m->limits.max_concurrent || !m->custodian) {
        close(fd);
        m->stats.rejected++;
        update_full(m);
        return NULL;
    }
    pt_conn *c = pt_conn__open(m, m->custodian, m->loop, fd, peer, peerlen);
    if (!c) {
        m->stats.rejected++;
        return NULL;
    }
    c->next = m->live;
    if (m->live)
        m->live->prev = c;
    m->live = c;
    m->by_state[c->state]++;
    m->stats.live++;
    m->stats.accepted++;
    if (m->opts.on_admit)
        m->opts.on_admit(c, m->opts.data);
    update_full(m);
    return c;
}

/* The last kill may run on_drained, which may free the manager: touch nothing after it. */
static void kill_all(pt_connmgr *m)
{
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

void pt_connmgr_drain(pt_connmgr *m, double grace)
{
    if (m->draining) {
        kill_all(m);
        return;
    }
    m->draining = true;
    if (m->stats.live == 0) {
        if (m->opts.on_drained)
            m->opts.on_drained(m->opts.data);
        return;
    }
    pt_timer_init(&m->drain_timer, m->loop, on_drain_timeout, m);
    if (!pt_timeout_is_none(grace))
        pt_timer_start(&m->drain_timer, grace);
    /* Idle connections and ones that have not started a request close now; the others close
     * after the response in flight (the protocol sees pt_connmgr_is_draining). */
    pt_conn *next;
    for (pt_conn *c = m->live; c; c = next) {
        next = c->next;
        if (c->state == PT_CONN_IDLE ||
            (c->state == PT_CONN_READING && pt_inbuf_len(&c->in) == 0 && c->requests == 0))
            pt_conn_close(c);
    }
}

void pt_connmgr_free(pt_connmgr *m)
{
    if (!m)
        return;
    m->freeing = true;
    pt_custodian_shutdown(m->custodian); /* NULL if a parent already did */
    if (m->draining)
        pt_timer_dispose(&m->drain_timer);
    ev_ref(m->loop);
    ev_prepare_stop(m->loop, &m->reaper);
    free(m);
}

void pt_connmgr_get_stats(const pt_connmgr *m, pt_connmgr_stats *out)
{
    *out = m->stats;
    out->idle = m->by_state[PT_CONN_IDLE];
    out->reading = m->by_state[PT_CONN_READING];
    out->writing = m->by_state[PT_CONN_WRITING];
    out->lingering = m->by_state[PT_CONN_LINGERING];
}
