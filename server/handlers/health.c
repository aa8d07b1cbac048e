/*
 * Active health checks (health.h). A check is one exchange on a fresh connection: the request
 * written, then the answer read until its status line is whole; nothing else of it is looked at.
 * Each server has one check at most in progress, bounded by the timeout (which is never longer
 * than the interval, so a round finishes before the next begins).
 */
#include "server/handlers/health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connmgr/tls.h"
#include "server/core/log.h"

/* The answer's bytes read: enough for any status line worth reading. */
#define STATUS_LINE_MAX 256

typedef struct probe {
    pt_health *h;
    size_t i;               /* the server */
    pt_authority authority; /* where the check goes (the server, or its port= one) */
    pt_connect *connecting; /* while connecting */
    pt_outbound *o;         /* while it talks */
    ev_timer deadline;      /* the check's timeout */
    char req[1024];
    size_t req_len, req_sent;
    char resp[STATUS_LINE_MAX];
    size_t resp_len;
    bool running;
} probe;

struct pt_health {
    pt_upstream *up;
    const pt_conf_health_check *conf;
    struct ev_loop *loop;
    ev_timer tick; /* each interval: a round */
    probe *probes;
    size_t n;
};

/* ---- the verdict ---- */

void pt_health_record(pt_upstream *up, const pt_conf_health_check *conf, size_t i, bool passed,
                      int status, double now)
{
    pt_upstream_peer *p = &up->peers[i];
    pt_peer_state *st = p->st;
    int changed = 0; /* 1: down, 2: back */
    pt_upstream_lock(up);
    __atomic_store_n(&st->checks, st->checks + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&st->last_check_status, status, __ATOMIC_RELAXED);
    if (passed) {
        st->check_fails = 0;
        st->check_passes++;
        if (st->unhealthy && st->check_passes >= conf->passes) {
            /* Back: its checks vouch for it, so what real requests said of it is forgotten;
             * slow_start ramps it up from now. */
            st->fails = 0;
            double zero = 0;
            __atomic_store(&st->down_until, &zero, __ATOMIC_RELAXED);
            __atomic_store(&st->back_at, &now, __ATOMIC_RELAXED);
            __atomic_store_n(&st->unhealthy, 0, __ATOMIC_RELEASE);
            changed = 2;
        }
    } else {
        __atomic_store_n(&st->checks_failed, st->checks_failed + 1, __ATOMIC_RELAXED);
        st->check_passes = 0;
        st->check_fails++;
        if (!st->unhealthy && st->check_fails >= conf->fails) {
            __atomic_store_n(&st->unhealthy, 1, __ATOMIC_RELEASE);
            changed = 1;
        }
    }
    pt_upstream_unlock(up);
    char why[32] = "no answer";
    if (status)
        snprintf(why, sizeof why, "answered %d", status);
    if (changed == 1)
        pt_log_error(PT_LOG_WARN,
                     "upstream server %s of \"%s\" failed %u health check%s in a row (the last: "
                     "%s): marked down",
                     p->name, up->name, conf->fails, conf->fails == 1 ? "" : "s", why);
    else if (changed == 2)
        pt_log_error(PT_LOG_NOTICE,
                     "upstream server %s of \"%s\" passed %u health check%s in a row: back up",
                     p->name, up->name, conf->passes, conf->passes == 1 ? "" : "s");
}

/* ---- one check ---- */

/* Ends the check of `pr` with its verdict; `record` false: abandoned (stopping), none. */
static void finish(probe *pr, bool record, bool passed, int status)
{
    pt_health *h = pr->h;
    if (pr->connecting) {
        pt_connect_cancel(pr->connecting);
        pr->connecting = NULL;
    }
    if (pr->o) {
        ev_io_stop(h->loop, &pr->o->io);
        pt_outbound_close(pr->o);
        pr->o = NULL;
    }
    ev_timer_stop(h->loop, &pr->deadline);
    pr->running = false;
    if (record)
        pt_health_record(h->up, h->conf, pr->i, passed, status, ev_now(h->loop));
}

/* The status of a whole status line in `s` (`n` bytes): 100..999, 0 for one that is not
 * HTTP's, -1 while it is not whole yet. */
static int status_of(const char *s, size_t n)
{
    const char *eol = memchr(s, '\n', n);
    if (!eol)
        return n >= STATUS_LINE_MAX ? 0 : -1;
    if (eol - s < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return 0;
    int status = 0;
    for (int k = 9; k < 12; k++) {
        if (s[k] < '0' || s[k] > '9')
            return 0;
        status = status * 10 + (s[k] - '0');
    }
    if (status < 100 || (s[12] != ' ' && s[12] != '\r' && s[12] != '\n'))
        return 0;
    return status;
}

static void watch(probe *pr)
{
    pt_transport *t = &pr->o->transport;
    int ev = EV_READ;
    if (pr->req_sent < pr->req_len || (t->want & PT_WANT_WRITE))
        ev |= EV_WRITE;
    pt_outbound_watch(pr->o, pr->h->loop, ev);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    probe *pr = w->data;
    pt_transport *t = &pr->o->transport;
    while (pr->req_sent < pr->req_len) {
        struct iovec iov = {pr->req + pr->req_sent, pr->req_len - pr->req_sent};
        ssize_t n = pt_transport_writev(t, &iov, 1);
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            finish(pr, true, false, 0);
            return;
        }
        pr->req_sent += (size_t)n;
    }
    for (;;) {
        ssize_t n = pt_transport_read(t, pr->resp + pr->resp_len, sizeof pr->resp - pr->resp_len);
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            finish(pr, true, false, 0); /* closed (or failed) before a whole status line */
            return;
        }
        pr->resp_len += (size_t)n;
        int status = status_of(pr->resp, pr->resp_len);
        if (status >= 0) {
            finish(pr, true, status >= 200 && status < 400, status);
            return;
        }
    }
    watch(pr);
}

static void on_connected(pt_outbound *o, int status, void *data)
{
    probe *pr = data;
    pt_upstream *up = pr->h->up;
    pr->connecting = NULL;
    if (status < 0) {
        finish(pr, true, false, 0);
        return;
    }
    pr->o = o;
    if (up->tls) {
        const pt_upstream_peer *p = &up->peers[pr->i];
        if (pt_tls_wrap_client(&o->transport, up->ssl_ctx, o->transport.fd, p->tls_name,
                               up->verify) < 0) {
            finish(pr, true, false, 0);
            return;
        }
        if (!up->server_name)
            SSL_set_tlsext_host_name(pt_tls_ssl(&o->transport), NULL);
    }
    ev_set_cb(&o->io, on_io);
    o->io.data = pr;
    watch(pr);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    finish(w->data, true, false, 0);
}

static void check(probe *pr)
{
    pt_health *h = pr->h;
    pr->running = true;
    pr->req_sent = pr->resp_len = 0;
    ev_timer_set(&pr->deadline, h->conf->timeout, 0);
    ev_timer_start(h->loop, &pr->deadline);
    int r = pt_connector_connect(h->up->connector, &pr->authority, h->conf->timeout, on_connected,
                                 pr, &pr->connecting);
    if (r < 0) {
        pr->connecting = NULL;
        finish(pr, true, false, 0);
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_health *h = w->data;
    for (size_t i = 0; i < h->n; i++)
        if (!h->probes[i].running && !h->up->peers[i].down)
            check(&h->probes[i]);
}

/* ---- the checker ---- */

int pt_health_new(pt_health **out, pt_upstream *up, const pt_conf_health_check *conf)
{
    *out = NULL;
    pt_health *h = calloc(1, sizeof *h);
    if (!h || !(h->probes = calloc(up->npeers, sizeof *h->probes))) {
        free(h);
        return -ENOMEM;
    }
    h->up = up;
    h->conf = conf;
    h->loop = up->loop;
    h->n = up->npeers;
    ev_init(&h->tick, on_tick);
    h->tick.data = h;
    for (size_t i = 0; i < h->n; i++) {
        probe *pr = &h->probes[i];
        pr->h = h;
        pr->i = i;
        pr->authority = up->peers[i].authority;
        if (conf->port && pr->authority.kind != PT_AUTHORITY_UNIX) {
            pr->authority.port = conf->port;
            if (pr->authority.kind == PT_AUTHORITY_INET4)
                pr->authority.addr.in.sin_port = htons(conf->port);
            else if (pr->authority.kind == PT_AUTHORITY_INET6)
                pr->authority.addr.in6.sin6_port = htons(conf->port);
        }
        ev_init(&pr->deadline, on_deadline);
        pr->deadline.data = pr;
        int n = snprintf(pr->req, sizeof pr->req,
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: porter health check\r\n"
                         "Connection: close\r\n\r\n",
                         conf->uri, up->name);
        pr->req_len = n > 0 && (size_t)n < sizeof pr->req ? (size_t)n : 0;
    }
    *out = h;
    return 0;
}

void pt_health_start(pt_health *h)
{
    if (!h || ev_is_active(&h->tick))
        return;
    ev_timer_set(&h->tick, 0, h->conf->interval);
    ev_timer_start(h->loop, &h->tick);
    /* The checks alone never keep the loop running: a server that stops ends its loop. */
    ev_unref(h->loop);
}

void pt_health_stop(pt_health *h)
{
    if (!h)
        return;
    if (ev_is_active(&h->tick)) {
        ev_ref(h->loop);
        ev_timer_stop(h->loop, &h->tick);
    }
    for (size_t i = 0; i < h->n; i++)
        if (h->probes[i].running)
            finish(&h->probes[i], false, false, 0);
}

void pt_health_free(pt_health *h)
{
    if (!h)
        return;
    pt_health_stop(h);
    free(h->probes);
    free(h);
}
