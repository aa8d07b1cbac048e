/*
 * The byte relay of upgraded connections (see tunnel.h).
 */
#include "server/handlers/tunnel.h"

#include <errno.h>

#include "connmgr/conn.h"

/* Bytes queued towards the upstream above which the client is not read, and below which it is
 * read again. */
#define UP_HIGH (64 * 1024)
#define UP_LOW (16 * 1024)
/* Bytes queued towards the client above which the upstream is not read. */
#define DOWN_HIGH (64 * 1024)
/* Reads from the upstream per readiness event, so one busy upstream does not starve others. */
#define READS_PER_EVENT 8

typedef struct tunnel {
    struct ev_loop *loop;
    pt_conn *c;     /* the client's connection */
    pt_outbound *o; /* the upstream's transport; its watcher is ours */
    pt_outq uq;     /* towards the upstream */
    double idle;
    bool closed; /* released */
    bool client_eof, upstream_eof, client_shut, upstream_shut;
    bool up_paused; /* the upstream is not read until the client has taken what is queued */
} tunnel;

/* The connection's custodian shuts down: the upstream goes with it. */
static void tunnel_release(void *data)
{
    tunnel *t = data;
    t->closed = true;
    ev_io_stop(t->loop, &t->o->io);
    pt_outbound_close(t->o);
    t->o = NULL;
    pt_outq_dispose(&t->uq);
}

static void kill_client(tunnel *t)
{
    if (t->c && !t->c->dead)
        pt_conn_kill(t->c);
}

/* Both directions have ended: the client socket closes (the upstream with the custodian). */
static void check_done(tunnel *t)
{
    if (t->closed)
        return;
    if (t->upstream_eof && pt_outq_is_empty(&t->c->out) && !t->client_shut) {
        t->client_shut = true;
        pt_transport_shutdown_write(&t->c->transport);
    }
    if (t->client_eof && pt_outq_is_empty(&t->uq) && !t->upstream_shut) {
        t->upstream_shut = true;
        pt_transport_shutdown_write(&t->o->transport);
    }
    if (t->client_shut && t->upstream_shut)
        kill_client(t);
}

static void update_io(tunnel *t)
{
    if (t->closed)
        return;
    int ev = 0;
    if (!t->upstream_eof && !t->up_paused)
        ev |= EV_READ;
    if (!pt_outq_is_empty(&t->uq))
        ev |= (t->o->transport.want & PT_WANT_READ) ? EV_READ : EV_WRITE;
    if (t->o->transport.want & PT_WANT_WRITE)
        ev |= EV_WRITE;
    pt_outbound_watch(t->o, t->loop, ev);
    pt_conn_reset_timeout(t->c, t->idle);
}

/* Client to upstream. Returns false if the connection is gone. */
static bool flush_up(tunnel *t)
{
    int r = pt_outq_flush(&t->uq, &t->o->transport);
    if (r < 0 && r != -EAGAIN) {
        kill_client(t);
        return false;
    }
    if (t->c->read_paused && !t->client_eof && pt_outq_pending(&t->uq) < UP_LOW)
        pt_conn_resume_read(t->c);
    return true;
}

/* Upstream to client. Returns false if the connection is gone. */
static bool read_up(tunnel *t)
{
    char buf[16 * 1024];
    int i = 0;
    for (; i < READS_PER_EVENT && !t->upstream_eof && !t->up_paused; i++) {
        ssize_t n = pt_transport_read(&t->o->transport, buf, sizeof buf);
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            kill_client(t);
            return false;
        }
        if (n == 0) {
            t->upstream_eof = true;
            break;
        }
        pt_outq_push_copy(&t->c->out, buf, (size_t)n);
        if (pt_outq_pending(&t->c->out) > DOWN_HIGH) {
            int r = pt_conn_flush(t->c);
            if (r < 0 && r != -EAGAIN)
                return false;
            /* Still full: the client is slow. Its connection calls on_drain once it has
             * taken everything. */
            t->up_paused = pt_outq_pending(&t->c->out) > DOWN_HIGH;
        }
    }
    int r = pt_conn_flush(t->c);
    if (r < 0 && r != -EAGAIN)
        return false;
    /* More may be waiting (or decoded inside TLS): come back in the next iteration. */
    if (i == READS_PER_EVENT && !t->up_paused)
        ev_feed_event(t->loop, &t->o->io, EV_READ);
    return true;
}

static void on_upstream_io(struct ev_loop *loop, ev_io *w, int revents)
{
    tunnel *t = w->data;
    int want = t->o->transport.want;
    if (((revents & EV_WRITE) || ((revents & EV_READ) && (want & PT_WANT_READ))) &&
        !pt_outq_is_empty(&t->uq) && !flush_up(t))
        return;
    if (((revents & EV_READ) || ((revents & EV_WRITE) && (want & PT_WANT_WRITE))) && !read_up(t))
        return;
    check_done(t);
    update_io(t);
}

static void on_read(pt_conn *c, void *data)
{
    tunnel *t = data;
    size_t n = pt_inbuf_len(&c->in);
    if (n) {
        pt_outq_push_copy(&t->uq, pt_inbuf_begin(&c->in), n);
        pt_inbuf_consume(&c->in, n);
    }
    if (c->eof)
        t->client_eof = true;
    if (!flush_up(t))
        return;
    if (pt_outq_pending(&t->uq) > UP_HIGH)
        pt_conn_pause_read(c);
    check_done(t);
    update_io(t);
}

static void on_drain(pt_conn *c, void *data)
{
    tunnel *t = data;
    if (t->up_paused) {
        t->up_paused = false;
        if (!read_up(t))
            return;
    }
    check_done(t);
    update_io(t);
}

static void on_timeout(pt_conn *c, void *data)
{
    pt_conn_kill(c); /* idle for `idle` both ways */
}

static const pt_upgrade_ops tunnel_ops = {
    .on_read = on_read,
    .on_drain = on_drain,
    .on_timeout = on_timeout,
};

int pt_tunnel_start(pt_request *req, const void *head, size_t len, pt_outbound **o, pt_outq *queued,
                    const char *early, size_t early_len, double idle)
{
    pt_custodian *cust = pt_request_custodian(req);
    tunnel *t = pt_custodian_alloc(cust, sizeof *t);
    *t = (tunnel){.loop = pt_connector_loop((*o)->connector), .idle = idle};
    pt_conn *c = NULL;
    int r = pt_request_upgrade(req, 101, head, len, &tunnel_ops, t, &c);
    if (r < 0)
        return r;
    /* The request's custodian is the connection's now: the transport goes with it. */
    t->c = c;
    t->o = *o;
    *o = NULL;
    t->uq = *queued;
    pt_outq_init(queued);
    ev_set_cb(&t->o->io, on_upstream_io);
    t->o->io.data = t;
    if (!pt_custodian_register(cust, tunnel_release, t)) {
        tunnel_release(t); /* (the connection is gone already) */
        return 0;
    }
    if (early_len) {
        pt_outq_push_copy(&c->out, early, early_len);
        if ((r = pt_conn_flush(c)) < 0 && r != -EAGAIN)
            return 0; /* killed: everything is released */
    }
    /* And what the client sent after its request head. */
    if (pt_inbuf_len(&c->in) || c->eof)
        on_read(c, t);
    else
        update_io(t);
    return 0;
}
