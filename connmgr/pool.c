/*
 * The transport pool (see pool.h). Idle transports form a list, oldest first; one timer waits
 * for the oldest one's deadline.
 *
 * Idle transports are a cache, not work in progress: their watchers and the pool's timer are
 * unreferenced (ev_unref), so they never keep the loop running; a server that stops ends its
 * loop without waiting for idle_timeout. libev's rule for such watchers: ev_ref before
 * stopping one.
 */
#include "connmgr/pool.h"

#include <errno.h>
#include <stdlib.h>

#include "connmgr/limits.h"
#include "listener/sized.h"

struct pt_pool {
    pt_connector *connector;
    pt_authority authority;
    pt_pool_options o;
    struct ev_loop *loop;
    pt_custodian *custodian; /* NULL once shut down */
    pt_outbound *oldest, *newest;
    size_t idle;
    ev_timer timer; /* a repeating timer, its period set each time: never stopped by libev */
};

void pt_pool_options_init_sized(pt_pool_options *o, size_t size)
{
    pt_pool_options d = {
        .size = sizeof d, .max_idle = 32, .idle_timeout = 4.0, .max_requests = 1000};
    pt_sized_init(o, size, &d, sizeof d);
}

static void timer_stop(pt_pool *p)
{
    if (ev_is_active(&p->timer)) {
        ev_ref(p->loop);
        ev_timer_stop(p->loop, &p->timer);
    }
}

/* The timer fires `after` seconds from now. */
static void timer_set(pt_pool *p, double after)
{
    bool was_active = ev_is_active(&p->timer);
    p->timer.repeat = after > 0.001 ? after : 0.001;
    ev_timer_again(p->loop, &p->timer);
    if (!was_active)
        ev_unref(p->loop);
}

/* Makes sure the timer fires by the oldest idle transport's deadline. Every transport gets the
 * same timeout, so a running timer (set for an earlier oldest) fires early enough; when it
 * finds nothing expired it re-arms for the real oldest. Taking a transport never touches it. */
static void arm(pt_pool *p)
{
    if (!p->oldest || pt_timeout_is_none(p->o.idle_timeout) || ev_is_active(&p->timer))
        return;
    timer_set(p, p->oldest->idle_deadline - ev_now(p->loop));
}

/* Forgets an idle transport (taken, closed, or closed under us by the connector). */
static void unlink_idle(pt_outbound *o)
{
    pt_pool *p = o->pool;
    ev_ref(p->loop);
    ev_io_stop(p->loop, &o->io);
    if (o->prev)
        o->prev->next = o->next;
    else
        p->oldest = o->next;
    if (o->next)
        o->next->prev = o->prev;
    else
        p->newest = o->prev;
    o->prev = o->next = NULL;
    o->detach = NULL;
    p->idle--;
}

static void drop(pt_outbound *o)
{
    unlink_idle(o);
    pt_outbound_close(o);
}

/* Input on an idle transport: the peer closed it, reset it, or sent what nobody asked for.
 * (A TLS transport may also receive records that carry no data, such as session tickets:
 * the read then waits again.) */
static void on_idle_input(struct ev_loop *loop, ev_io *w, int revents)
{
    pt_outbound *o = w->data;
    if (!(revents & EV_READ))
        return;
    char b;
    ssize_t n = pt_transport_read(&o->transport, &b, 1);
    if (n == -EAGAIN && !(o->transport.want & PT_WANT_WRITE))
        return;
    drop(o);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_pool *p = w->data;
    double now = ev_now(p->loop);
    while (p->oldest && p->oldest->idle_deadline <= now + 0.001)
        drop(p->oldest);
    if (p->oldest)
        timer_set(p, p->oldest->idle_deadline - now);
    else
        timer_stop(p);
}

static void pool_release(void *data)
{
    pt_pool *p = data;
    p->custodian = NULL;
    while (p->oldest)
        drop(p->oldest);
    timer_stop(p);
}

int pt_pool_new(pt_pool **out, pt_connector *c, const pt_authority *a, const pt_pool_options *o)
{
    *out = NULL;
    pt_pool_options opts;
    pt_pool_options_init(&opts);
    if (pt_sized_copy(&opts, sizeof opts, o) < 0)
        return -EINVAL;
    pt_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->connector = c;
    p->authority = *a;
    p->o = opts;
    p->custodian = pt_custodian_new(opts.custodian ? opts.custodian : pt_connector_custodian(c));
    if (!p->custodian) {
        free(p);
        return -ECANCELED;
    }
    p->loop = pt_connector_loop(c);
    ev_init(&p->timer, on_timer);
    p->timer.data = p;
    pt_custodian_register(p->custodian, pool_release, p);
    *out = p;
    return 0;
}

void pt_pool_free(pt_pool *p)
{
    if (!p)
        return;
    pt_custodian_shutdown(p->custodian);
    free(p);
}

pt_outbound *pt_pool_take(pt_pool *p)
{
    pt_outbound *o = p->newest;
    if (!o)
        return NULL;
    unlink_idle(o);
    o->held = true;
    return o;
}

int pt_pool_connect(pt_pool *p, double timeout, pt_connect_cb cb, void *data, pt_connect **out)
{
    if (!p->custodian) {
        if (out)
            *out = NULL;
        return -ECANCELED;
    }
    return pt_connector_connect(p->connector, &p->authority, timeout, cb, data, out);
}

void pt_pool_give_back(pt_pool *p, pt_outbound *o)
{
    o->requests++;
    if (!p->custodian || !o->entry || p->o.max_idle == 0 || o->requests >= p->o.max_requests ||
        !pt_authority_equal(&o->authority, &p->authority) || o->transport.fd < 0) {
        pt_outbound_close(o);
        return;
    }
    if (p->idle >= p->o.max_idle)
        drop(p->oldest);
    o->held = false;
    o->pool = p;
    o->detach = unlink_idle;
    o->idle_deadline = ev_now(p->loop) + p->o.idle_timeout;
    o->prev = p->newest;
    o->next = NULL;
    if (p->newest)
        p->newest->next = o;
    else
        p->oldest = o;
    p->newest = o;
    p->idle++;
    /* The same watcher, stopped and started again with the same events, costs libev no
     * epoll_ctl. */
    ev_io_stop(p->loop, &o->io);
    ev_set_cb(&o->io, on_idle_input);
    ev_io_modify(&o->io, EV_READ);
    o->io.data = o;
    ev_io_start(p->loop, &o->io);
    ev_unref(p->loop);
    arm(p);
}

size_t pt_pool_drop_idle(pt_pool *p, bool (*keep)(const pt_connect_addr *peer, void *data),
                         void *data)
{
    size_t n = 0;
    for (pt_outbound *o = p->oldest, *next; o; o = next) {
        next = o->next;
        if (!keep(&o->peer, data)) {
            drop(o);
            n++;
        }
    }
    return n;
}

const pt_authority *pt_pool_authority(const pt_pool *p)
{
    return &p->authority;
}

size_t pt_pool_idle_count(const pt_pool *p)
{
    return p->idle;
}
