#include "connmgr/conn.h"

#include <errno.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "connmgr/conn_private.h"

/* Bytes written to the socket that the client has not acknowledged yet (-1: unknown). */
static int unsent(const pt_conn *c)
{
    int q;
    return ioctl(c->transport.fd, SIOCOUTQ, &q) == 0 ? q : -1;
}

/* Watches `w` for `events` (none: stopped). The fd never changes: ev_io_modify keeps libev
 * from re-adding it to epoll (which ev_io_set would, at the cost of a failed epoll_ctl). */
static void watch(struct ev_loop *loop, ev_io *w, int events)
{
    if (events == (w->events & (EV_READ | EV_WRITE)) && ev_is_active(w))
        return;
    ev_io_stop(loop, w);
    if (events) {
        ev_io_modify(w, events);
        ev_io_start(loop, w);
    }
}

static void update_io(pt_conn *c)
{
    int events = 0;
    if (c->state == PT_CONN_LINGERING || (!c->read_paused && !c->eof))
        events |= EV_READ;
    /* Bytes held back by the send rate wait for the timer, not for writability. */
    if ((!pt_outq_is_empty(&c->out) && !c->held) || (c->transport.want & PT_WANT_WRITE))
        events |= EV_WRITE;
    struct ev_loop *loop = c->timer.loop;
    if (!c->wio) {
        watch(loop, &c->io, events);
        return;
    }
    /* A pair: reads on one descriptor, writes on the other (gone after shutdown_write). */
    watch(loop, &c->io, events & EV_READ);
    watch(loop, c->wio, c->transport.wfd >= 0 ? events & EV_WRITE : 0);
}

static void linger_read(pt_conn *c)
{
    char scratch[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = pt_transport_read(&c->transport, scratch, sizeof scratch);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            pt_conn_kill(c);
            return;
        }
    }
}

static void finish_close(pt_conn *c)
{
    /* Nothing unread and nothing that may still come: a plain close sends FIN, no reset. */
    if (c->eof || (!c->linger && pt_inbuf_len(&c->in) == 0) ||
        pt_transport_shutdown_write(&c->transport) < 0) {
        pt_conn_kill(c);
        return;
    }
    pt_inbuf_dispose(&c->in);
    pt_conn_set_state(c, PT_CONN_LINGERING);
    if (c->dead)
        return;
    /* Discard input for a while so the client reads our response instead of a reset. */
    pt_conn_reset_timeout(c, c->limits->lingering_timeout);
    update_io(c);
    linger_read(c);
}

/* Writes what the send rate allows now (and what was queued before the rated bytes). Returns
 * as pt_outq_flush, or 1 when the rest must wait for the rate: then the timer is set for it. */
static int flush_rated(pt_conn *c)
{
    pt_outq *q = &c->out;
    double now = ev_now(c->timer.loop);
    if (c->held) {
        /* Asked to write before the timer came: whatever comes of it, the rate's deadline is
         * not the one to keep. */
        c->held = false;
        pt_timer_reset(&c->timer, c->limits->response_send_timeout);
    }
    for (;;) {
        uint64_t written = q->written;
        uint64_t ahead = c->rate_from > written ? c->rate_from - written : 0;
        uint64_t sent = written > c->rate_from ? written - c->rate_from : 0;
        double wait = 0;
        uint64_t quota = pt_rate_quota(&c->rate, sent, now, &wait);
        if (ahead == 0 && quota == 0) {
            c->held = true;
            /* The connection's one timer: what the protocol had set gives way until then. */
            pt_timer_reset(&c->timer, wait);
            return 1;
        }
        uint64_t max = quota > SIZE_MAX - ahead ? SIZE_MAX : ahead + quota;
        int r = pt_outq_flush_max(q, &c->transport, (size_t)max);
        written = q->written;
        pt_rate_wrote(&c->rate, sent, written > c->rate_from ? written - c->rate_from : 0, now);
        if (r < 0 || pt_outq_is_empty(q))
            return r;
    }
}

/* The half close, now that nothing is queued. */
static int shut_write(pt_conn *c)
{
    if (c->write_shut)
        return 0;
    c->write_shut = true;
    int r = pt_transport_shutdown_write(&c->transport);
    if (r < 0) {
        pt_conn_kill(c);
        return r;
    }
    update_io(c);
    return 0;
}

int pt_conn_flush(pt_conn *c)
{
    if (c->dead)
        return -ECONNABORTED;
    size_t before = pt_outq_pending(&c->out);
    int r = c->rate.rate ? flush_rated(c) : pt_outq_flush(&c->out, &c->transport);
    c->stats->bytes_out += before - pt_outq_pending(&c->out);
    if (r == 1) {
        update_io(c);
        return -EAGAIN;
    }
    if (r == -EAGAIN) {
        bool was_waiting = ev_is_active(&c->io) && (c->io.events & EV_WRITE);
        /* response_send_timeout bounds each stall, so progress restarts it. */
        if (!was_waiting || pt_outq_pending(&c->out) != before) {
            pt_conn_reset_timeout(c, c->limits->response_send_timeout);
            c->sndq = unsent(c);
        }
        update_io(c);
        return -EAGAIN;
    }
    if (r < 0) {
        pt_conn_kill(c);
        return r;
    }
    if (c->close_after) {
        finish_close(c);
        return 0;
    }
    if (c->shutdown_after && !c->write_shut)
        return shut_write(c);
    update_io(c);
    return 0;
}

int pt_conn_shutdown_write(pt_conn *c)
{
    if (c->dead)
        return -ECONNABORTED;
    c->shutdown_after = true;
    return pt_outq_is_empty(&c->out) ? shut_write(c) : 0;
}

void pt_conn_close(pt_conn *c)
{
    if (c->dead || c->state == PT_CONN_LINGERING)
        return;
    c->close_after = true;
    if (pt_outq_is_empty(&c->out))
        finish_close(c);
}

void pt_conn_kill(pt_conn *c)
{
    if (c && !c->dead)
        pt_custodian_shutdown(c->custodian);
}

void pt_conn_set_send_rate(pt_conn *c, uint64_t rate, uint64_t after, double start)
{
    pt_rate_init(&c->rate, rate, after, start);
    c->rate_from = c->out.written + pt_outq_pending(&c->out);
    if (!rate && c->held && !c->dead) {
        /* What waited goes now, within the send timeout as any write. */
        c->held = false;
        pt_timer_reset(&c->timer, c->limits->response_send_timeout);
        update_io(c);
    }
}

void pt_conn_reset_timeout(pt_conn *c, double secs)
{
    if (c->dead || c->held)
        return;
    if (pt_timeout_is_none(secs))
        pt_timer_cancel(&c->timer);
    else
        pt_timer_reset(&c->timer, secs);
}

void pt_conn_adjust_timeout(pt_conn *c, double secs)
{
    if (!c->dead && !c->held && !pt_timeout_is_none(secs))
        pt_timer_increment(&c->timer, secs);
}

void pt_conn_pause_read(pt_conn *c)
{
    if (!c->read_paused) {
        c->read_paused = true;
        if (!c->dead)
            update_io(c);
    }
}

void pt_conn_resume_read(pt_conn *c)
{
    if (c->read_paused) {
        c->read_paused = false;
        if (!c->dead)
            update_io(c);
    }
}

void pt_conn_set_nodelay(pt_conn *c)
{
    if (c->nodelay || c->dead ||
        (c->peer.sa.sa_family != AF_INET && c->peer.sa.sa_family != AF_INET6))
        return;
    int one = 1;
    setsockopt(c->transport.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->nodelay = true;
}

void pt_conn_set_state(pt_conn *c, pt_conn_state state)
{
    if (c->state == state || c->dead)
        return;
    pt_conn_state from = c->state;
    c->state = state;
    if (state == PT_CONN_IDLE)
        c->idle_since = ev_now(c->timer.loop);
    c->owner->state_changed(c->mgr, c, from);
}

void pt_conn__readable(pt_conn *c)
{
    if (c->state == PT_CONN_LINGERING) {
        linger_read(c);
        return;
    }
    ssize_t n = pt_inbuf_read(&c->in, &c->transport, c->in_max);
    if (n == -EAGAIN)
        return;
    if (n > 0)
        c->stats->bytes_in += (unsigned long long)n;
    if (n == -ENOBUFS) {
        /* The protocol must consume or answer; until then reading would spin. */
        pt_conn_pause_read(c);
    } else if (n == 0) {
        c->eof = true;
        update_io(c);
    } else if (n < 0) {
        pt_conn_kill(c);
        return;
    }
    c->proto->on_read(c);
    /* Bytes a transport decoded ahead (TLS) raise no readiness event: come back for them. */
    if (!c->dead && !c->read_paused && !c->eof && pt_transport_pending(&c->transport))
        ev_feed_event(c->timer.loop, &c->io, EV_READ);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    pt_conn *c = w->data;
    if (revents & EV_READ) {
        pt_conn__readable(c);
        if (c->dead)
            return;
    }
    /* A write waits for writability, or (TLS) for readability when the transport said so. */
    bool write_ready =
        (revents & EV_WRITE) || ((revents & EV_READ) && (c->transport.want & PT_WANT_READ));
    if (write_ready && !pt_outq_is_empty(&c->out) && !c->held) {
        if (pt_conn_flush(c) == 0 && !c->dead && !c->close_after && c->proto->on_drain)
            c->proto->on_drain(c);
    } else if ((revents & EV_WRITE) && (c->transport.want & PT_WANT_WRITE)) {
        /* A handshake (or a TLS read) waiting to write: retry the read that asked. */
        pt_conn__readable(c);
    } else if (revents & EV_WRITE) {
        update_io(c);
    }
}

static void on_timer(pt_timer *t, void *data)
{
    pt_conn *c = data;
    if (c->held) {
        /* The send rate allows more: write on, within the send timeout as any write. */
        c->held = false;
        pt_timer_reset(&c->timer, c->limits->response_send_timeout);
        if (pt_conn_flush(c) == 0 && !c->dead && !c->close_after && c->proto->on_drain)
            c->proto->on_drain(c);
        return;
    }
    /* A stalled write is one the client stopped reading. The kernel's send buffer can hold
     * seconds of a slow but steady reader's data and reports room only once a good part of it
     * drained, so a shrinking kernel queue is progress too. */
    if (c->state != PT_CONN_LINGERING && !pt_outq_is_empty(&c->out) && ev_is_active(&c->io) &&
        (c->io.events & EV_WRITE)) {
        int q = unsent(c);
        if (q >= 0 && q < c->sndq) {
            c->sndq = q;
            pt_conn_reset_timeout(c, c->limits->response_send_timeout);
            return;
        }
    }
    if (c->state == PT_CONN_LINGERING || !c->proto->on_timeout)
        pt_conn_kill(c);
    else
        c->proto->on_timeout(c);
}

/* The connection's own release entry: everything it acquired, in one place. */
static void release_conn(void *data)
{
    pt_conn *c = data;
    c->dead = true;
    if (c->proto && c->proto->on_close)
        c->proto->on_close(c);
    struct ev_loop *loop = c->timer.loop;
    ev_io_stop(loop, &c->io);
    if (c->wio)
        ev_io_stop(loop, c->wio);
    pt_timer_dispose(&c->timer);
    pt_outq_dispose(&c->out);
    pt_inbuf_dispose(&c->in);
    pt_transport_close(&c->transport);
    c->owner->released(c->mgr, c);
}

pt_conn *pt_conn__open(pt_connmgr *m, const pt_conn_setup *s, pt_custodian *parent,
                       struct ev_loop *loop, int fd, int wfd, const struct sockaddr *peer,
                       socklen_t peerlen)
{
    /* The connection and its protocol's state share one allocation with the custodian. */
    size_t arena = ((sizeof(pt_conn) + 15) & ~(size_t)15) + ((s->proto_size + 15) & ~(size_t)15);
    pt_custodian *cust = pt_custodian_new_sized(parent, arena);
    if (!cust) {
        close(fd);
        return NULL;
    }
    static _Atomic unsigned long long serials; /* loops on several threads count together */
    pt_conn *c = pt_custodian_alloc(cust, sizeof *c);
    c->serial = atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed) + 1;
    c->mgr = m;
    c->custodian = cust;
    c->owner = s->owner;
    c->limits = s->limits;
    c->stats = s->stats;
    c->proto = s->proto;
    c->proto_data = s->proto_data;
    c->state = PT_CONN_READING;
    c->in_max = PT_CHUNK_SIZE;
    /* Register before the pieces exist: from here on a shutdown releases whatever there is. */
    pt_custodian_register(cust, release_conn, c);
    if (wfd >= 0)
        pt_pair_transport_init(&c->transport, fd, wfd);
    else
        pt_tcp_transport_init(&c->transport, fd);
    if (wfd < 0 && s->wrap_transport && s->wrap_transport(&c->transport, s->wrap_data) < 0) {
        pt_conn_kill(c); /* the transport owns the fd: released with the connection */
        return NULL;
    }
    pt_inbuf_init(&c->in);
    pt_outq_init(&c->out);
    pt_timer_init(&c->timer, loop, on_timer, c);
    ev_io_init(&c->io, on_io, c->transport.fd, 0);
    c->io.data = c;
    if (wfd >= 0) {
        c->wio = pt_custodian_alloc(cust, sizeof *c->wio);
        ev_io_init(c->wio, on_io, wfd, 0);
        c->wio->data = c;
    }
    if (peer && peerlen <= sizeof c->peer &&
        (peer->sa_family == AF_INET || peer->sa_family == AF_INET6)) {
        memcpy(&c->peer, peer, peerlen);
        c->peerlen = peerlen;
    }
    pt_conn_reset_timeout(c, c->limits->request_read_timeout);
    update_io(c);
    return c;
}
