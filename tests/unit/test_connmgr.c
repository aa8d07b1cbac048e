#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connmgr/connmgr.h"
#include "tests/support.h"

/*
 * Connections and their manager on a real libev loop. The server end of each connection is one
 * end of a socketpair (or an accepted loopback TCP socket) given to pt_connmgr_admit(); the test
 * holds the other end as a "peer". Every loop run is bounded by an unreferenced watchdog, and
 * every test ends (teardown) with no live custodian, no outstanding buffer chunk, no leaked fd
 * and no active watcher.
 */

#define WATCHDOG_SECONDS 2.0
#define EPS 1e-3
#define MAX_PEERS 8
#define RESPONSE "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
#define BULK_SIZE (4u * 1024 * 1024)

typedef struct fixture fixture;
typedef bool (*pred_fn)(fixture *f);

/* The test's end of a connection. */
typedef struct peer {
    struct ev_loop *loop;
    int fd; /* -1: closed */
    ev_io io;
    ev_timer slow; /* a slow reader: `slow_chunk` bytes per tick */
    size_t slow_chunk;
    char data[256]; /* the first bytes received */
    size_t total;
    bool verify; /* check every byte against pattern() */
    size_t mismatches;
    bool eof;
    int err;
} peer;

struct fixture {
    struct ev_loop *loop;
    pt_connmgr *m;
    pt_connmgr_options o;
    pt_limits limits; /* o.limits */
    size_t custodians_at_start;
    int fds_at_start;
    ev_timer watchdog;
    bool watchdog_fired;
    ev_check until;
    pred_fn pred;
    peer peers[MAX_PEERS];
    int npeers;
    peer *wait_peer;
    size_t wait_bytes;
    int wait_reads;
    ev_timer helper, helper2;
    pt_conn *target;

    /* What the callbacks saw. */
    int reads, closes, drains, timeouts, fulls, rooms, drained, admits, released, retires;
    ev_tstamp closed_at, timeout_at, flushed_at, helper_at;
    int flush_result;
    bool dead_after_flush;
    int closes_at_helper;

    /* Knobs of the test protocols. */
    bool idle_after_echo;
    bool linger;
    bool with_resources;
    int last_resource_fd;

    /* The connection killed in on_read, read again at the end of the iteration. */
    ev_check end_of_iteration;
    pt_conn *killed;
    bool killed_seen_dead;
    size_t unreaped_at_end_of_iteration;
};

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i % 251);
}

/* ---- the loop ---- */

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    fixture *f = w->data;

    f->watchdog_fired = true;
    ev_break(loop, EVBREAK_ALL);
}

static void on_until(struct ev_loop *loop, ev_check *w, int revents)
{
    fixture *f = w->data;

    if (f->pred && f->pred(f))
        ev_break(loop, EVBREAK_ALL);
}

static ev_tstamp loop_now(fixture *f)
{
    ev_now_update(f->loop);
    return ev_now(f->loop);
}

/* Runs the loop until `pred` holds (checked after every iteration's callbacks), or, with NULL,
 * until no referenced watcher is left. Returns false if the watchdog had to stop it. */
static bool run_until(fixture *f, pred_fn pred)
{
    if (pred && pred(f))
        return true;
    f->pred = pred;
    f->watchdog_fired = false;
    ev_now_update(f->loop);
    ev_timer_set(&f->watchdog, WATCHDOG_SECONDS, 0.);
    ev_timer_start(f->loop, &f->watchdog);
    ev_unref(f->loop);
    ev_check_start(f->loop, &f->until);
    ev_unref(f->loop);
    ev_run(f->loop, 0);
    ev_ref(f->loop);
    ev_check_stop(f->loop, &f->until);
    ev_ref(f->loop);
    ev_timer_stop(f->loop, &f->watchdog);
    f->pred = NULL;
    return !f->watchdog_fired && (!pred || pred(f));
}

static pt_connmgr_stats get_stats(fixture *f)
{
    pt_connmgr_stats s;

    pt_connmgr_get_stats(f->m, &s);
    return s;
}

static bool no_live(fixture *f)
{
    return get_stats(f).live == 0;
}

static bool one_lingering(fixture *f)
{
    return get_stats(f).lingering == 1;
}

static bool enough_reads(fixture *f)
{
    return f->reads >= f->wait_reads;
}

static bool peer_done(fixture *f)
{
    return f->wait_peer->eof || f->wait_peer->err;
}

static bool peer_has_bytes(fixture *f)
{
    return f->wait_peer->total >= f->wait_bytes || peer_done(f);
}

/* ---- peers ---- */

static void peer_stop(peer *p)
{
    ev_io_stop(p->loop, &p->io);
    ev_timer_stop(p->loop, &p->slow);
}

/* Reads up to `max` bytes of what is there now. */
static void peer_read(peer *p, size_t max)
{
    char buf[64 * 1024];

    while (max > 0 && !p->eof && !p->err) {
        ssize_t n = read(p->fd, buf, max < sizeof buf ? max : sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                p->err = errno;
            break;
        }
        if (n == 0) {
            p->eof = true;
            break;
        }
        for (size_t i = 0; i < (size_t)n; i++) {
            size_t at = p->total + i;
            if (at < sizeof p->data)
                p->data[at] = buf[i];
            if (p->verify && (unsigned char)buf[i] != pattern(at))
                p->mismatches++;
        }
        p->total += (size_t)n;
        max -= (size_t)n;
    }
    if (p->eof || p->err)
        peer_stop(p);
}

static void on_peer_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    peer_read(w->data, SIZE_MAX);
}

static void on_peer_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    peer *p = w->data;

    peer_read(p, p->slow_chunk);
}

static peer *peer_new(fixture *f, int fd)
{
    peer *p;

    assert_true(f->npeers < MAX_PEERS);
    p = &f->peers[f->npeers++];
    *p = (peer){.loop = f->loop, .fd = fd};
    ev_io_init(&p->io, on_peer_readable, fd, EV_READ);
    p->io.data = p;
    ev_timer_init(&p->slow, on_peer_tick, 0., 0.);
    p->slow.data = p;
    return p;
}

static void peer_watch(peer *p)
{
    ev_io_start(p->loop, &p->io);
}

static void peer_read_slowly(peer *p, double interval, size_t chunk)
{
    p->slow_chunk = chunk;
    ev_timer_set(&p->slow, interval, interval);
    ev_timer_start(p->loop, &p->slow);
}

static void peer_send(peer *p, const char *s)
{
    assert_int_equal(write(p->fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void peer_close(peer *p)
{
    if (p->fd < 0)
        return;
    peer_stop(p);
    close(p->fd);
    p->fd = -1;
}

/* Runs the loop until the peer has `n` bytes (or end of stream). */
static bool wait_bytes(fixture *f, peer *p, size_t n)
{
    f->wait_peer = p;
    f->wait_bytes = n;
    peer_watch(p);
    bool ok = run_until(f, peer_has_bytes);
    ev_io_stop(f->loop, &p->io);
    return ok;
}

/* Runs the loop until the peer reads end of stream or an error. */
static bool wait_done(fixture *f, peer *p)
{
    f->wait_peer = p;
    peer_watch(p);
    bool ok = run_until(f, peer_done);
    ev_io_stop(f->loop, &p->io);
    return ok;
}

/* ---- admission ---- */

/* Admits one end of a socketpair; the peer gets the other. `server_fd` (optional) receives the
 * admitted end's number. */
static pt_conn *admit_pair(fixture *f, peer **pp, int *server_fd)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    *pp = peer_new(f, sv[1]);
    if (server_fd)
        *server_fd = sv[0];
    return pt_connmgr_admit(f->m, sv[0], NULL, 0);
}

/* Admits an accepted loopback TCP connection; the peer is the connecting socket. */
static pt_conn *admit_tcp(fixture *f, peer **pp)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int sfd;

    assert_true(l >= 0 && cfd >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&a, sizeof a), 0);
    sfd = accept4(l, (struct sockaddr *)&from, &fromlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(sfd >= 0);
    close(l);
    *pp = peer_new(f, cfd);
    return pt_connmgr_admit(f->m, sfd, (struct sockaddr *)&from, fromlen);
}

/* ---- resources a protocol registers on its connection's custodian ---- */

typedef struct resource {
    fixture *f;
    int fd;
} resource;

static void release_resource(void *data)
{
    resource *r = data;

    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->f->released++;
}

/* An fd registered before it is opened (the custodian's rule), and a child custodian (say, a
 * request's) with an entry of its own. */
static void add_resources(pt_conn *c, fixture *f)
{
    pt_custodian *cust = pt_conn_custodian(c);
    resource *r = pt_custodian_alloc(cust, sizeof *r);
    pt_custodian_entry *e = pt_custodian_register(cust, release_resource, NULL);
    pt_custodian *child = pt_custodian_new(cust);
    resource *r2;

    assert_non_null(e);
    r->f = f;
    r->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(r->fd >= 0);
    pt_custodian_entry_set(e, r);
    f->last_resource_fd = r->fd;

    assert_non_null(child);
    r2 = pt_custodian_alloc(child, sizeof *r2);
    r2->f = f;
    r2->fd = -1;
    assert_non_null(pt_custodian_register(child, release_resource, r2));
}

/* ---- test protocols ---- */

static fixture *fx(pt_conn *c)
{
    return c->proto_data;
}

static void rec_close(pt_conn *c)
{
    fixture *f = fx(c);

    /* Already released from the protocol's point of view: nothing may be written now. */
    assert_true(c->dead);
    f->closes++;
    f->closed_at = ev_now(f->loop);
}

static void rec_drain(pt_conn *c)
{
    fx(c)->drains++;
}

static void rec_timeout_and_kill(pt_conn *c)
{
    fixture *f = fx(c);

    assert_false(c->dead);
    f->timeouts++;
    f->timeout_at = ev_now(f->loop);
    pt_conn_kill(c);
}

/* Echo: what came in goes back out; end of stream closes. */
static void echo_read(pt_conn *c)
{
    fixture *f = fx(c);
    size_t n = pt_inbuf_len(&c->in);

    f->reads++;
    if (n > 0) {
        pt_outq_push_copy(&c->out, pt_inbuf_begin(&c->in), n);
        pt_inbuf_consume(&c->in, n);
        c->requests++;
        f->flush_result = pt_conn_flush(c);
        if (f->idle_after_echo)
            pt_conn_set_state(c, PT_CONN_IDLE);
    }
    if (c->eof)
        pt_conn_close(c);
}

/* Answers the first request, then closes (lingering if the fixture says so). */
static void respond_close_read(pt_conn *c)
{
    fixture *f = fx(c);

    if (f->reads++ > 0)
        return;
    pt_outq_push_copy(&c->out, RESPONSE, strlen(RESPONSE));
    pt_inbuf_consume(&c->in, pt_inbuf_len(&c->in));
    c->linger = f->linger;
    pt_conn_close(c);
    /* Still queued: the close waits for the response. */
    assert_false(c->dead);
    f->flush_result = pt_conn_flush(c);
    f->dead_after_flush = c->dead;
}

/* Kills its own connection from on_read while both buffers hold a chunk. */
static void kill_read(pt_conn *c)
{
    fixture *f = fx(c);
    int fd = c->transport.fd;
    int closes = f->closes;
    size_t chunks;

    f->reads++;
    assert_true(pt_inbuf_len(&c->in) > 0);
    pt_outq_push_copy(&c->out, "never sent", 10);
    chunks = pt_chunk_outstanding();
    pt_conn_kill(c);

    /* Released at once: on_close ran, the fd and both chunks are gone... */
    assert_int_equal(f->closes, closes + 1);
    assert_true(fd_is_closed(fd));
    assert_int_equal(pt_chunk_outstanding(), chunks - 2);
    /* ...and the memory is still there for this callback and its callers. */
    assert_true(c->dead);
    assert_true(pt_custodian_is_shut_down(pt_conn_custodian(c)));
    assert_true(pt_custodian_unreaped_count() > 0);
    pt_conn_kill(c);
    assert_int_equal(f->closes, closes + 1);
    assert_int_equal(pt_conn_flush(c), -ECONNABORTED);
    f->killed = c;
}

/* Holds what it reads and queues output it never flushes. */
static void hold_read(pt_conn *c)
{
    fixture *f = fx(c);

    f->reads++;
    if (pt_outq_is_empty(&c->out)) {
        c->requests++;
        pt_outq_push_copy(&c->out, "held", 4);
    }
}

/* Queues 4 MiB and flushes; closes once the queue has drained. */
static void bulk_read(pt_conn *c)
{
    fixture *f = fx(c);
    unsigned char *buf;

    pt_inbuf_consume(&c->in, pt_inbuf_len(&c->in));
    if (f->reads++ > 0 || c->eof)
        return;
    buf = malloc(BULK_SIZE);
    assert_non_null(buf);
    for (size_t i = 0; i < BULK_SIZE; i++)
        buf[i] = pattern(i);
    pt_outq_push_copy(&c->out, buf, BULK_SIZE);
    free(buf);
    pt_conn_set_state(c, PT_CONN_WRITING);
    f->flushed_at = ev_now(f->loop);
    f->flush_result = pt_conn_flush(c);
}

static void bulk_drain(pt_conn *c)
{
    fixture *f = fx(c);

    f->drains++;
    assert_true(pt_outq_is_empty(&c->out));
    pt_conn_close(c);
}

static const pt_conn_proto echo_proto = {
    .on_read = echo_read, .on_drain = rec_drain, .on_close = rec_close};
static const pt_conn_proto echo_timeout_proto = {
    .on_read = echo_read, .on_timeout = rec_timeout_and_kill, .on_close = rec_close};
static const pt_conn_proto respond_close_proto = {.on_read = respond_close_read,
                                                  .on_close = rec_close};
static const pt_conn_proto kill_proto = {.on_read = kill_read, .on_close = rec_close};
static const pt_conn_proto hold_proto = {.on_read = hold_read, .on_close = rec_close};
static const pt_conn_proto bulk_proto = {
    .on_read = bulk_read, .on_drain = bulk_drain, .on_close = rec_close};

/* Told of a drain: says "bye" to its peer (as HTTP/2 sends GOAWAY). */
static void retire_say_bye(pt_conn *c)
{
    fx(c)->retires++;
    pt_outq_push_copy(&c->out, "bye", 3);
    pt_conn_flush(c);
}

static const pt_conn_proto retire_proto = {.on_read = echo_read,
                                           .on_drain = rec_drain,
                                           .on_close = rec_close,
                                           .on_retire = retire_say_bye};

/* ---- manager callbacks ---- */

static void on_full(void *data)
{
    ((fixture *)data)->fulls++;
}

static void on_room(void *data)
{
    ((fixture *)data)->rooms++;
}

static void on_drained(void *data)
{
    ((fixture *)data)->drained++;
}

static void on_admit(pt_conn *c, void *data)
{
    fixture *f = data;

    f->admits++;
    assert_ptr_equal(c->proto_data, f);
    assert_ptr_equal(c->mgr, f->m);
    if (f->with_resources)
        add_resources(c, f);
}

static void start_mgr(fixture *f, const pt_conn_proto *proto)
{
    f->o.proto = proto;
    assert_int_equal(pt_connmgr_new(&f->m, f->loop, &f->o), 0);
    assert_ptr_equal(pt_connmgr_loop(f->m), f->loop);
}

/* ---- fixture ---- */

static void on_end_of_iteration(struct ev_loop *loop, ev_check *w, int revents)
{
    fixture *f = w->data;

    if (f->killed) {
        /* Every callback of this iteration has returned; the reaper has not run yet. */
        f->killed_seen_dead = f->killed->dead;
        f->unreaped_at_end_of_iteration = pt_custodian_unreaped_count();
        f->killed = NULL;
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    if (!f)
        return -1;
    nothing_left_begin();
    f->loop = ev_loop_new(EVFLAG_AUTO);
    if (!f->loop) {
        free(f);
        return -1;
    }
    ev_timer_init(&f->watchdog, on_watchdog, WATCHDOG_SECONDS, 0.);
    f->watchdog.data = f;
    /* Lowest priority: the predicate sees the state after the iteration's other callbacks. */
    ev_check_init(&f->until, on_until);
    ev_set_priority(&f->until, EV_MINPRI);
    f->until.data = f;
    ev_check_init(&f->end_of_iteration, on_end_of_iteration);
    ev_set_priority(&f->end_of_iteration, EV_MINPRI);
    f->end_of_iteration.data = f;
    ev_timer_init(&f->helper, NULL, 0., 0.);
    ev_timer_init(&f->helper2, NULL, 0., 0.);

    pt_connmgr_options_init(&f->o);
    pt_limits_init(&f->limits);
    f->o.limits = &f->limits;
    f->o.proto_data = f;
    f->o.data = f;
    f->o.on_full = on_full;
    f->o.on_room = on_room;
    f->o.on_drained = on_drained;
    f->o.on_admit = on_admit;
    f->last_resource_fd = -1;

    f->custodians_at_start = pt_custodian_live_count();
    f->fds_at_start = count_fds();
    *state = f;
    return 0;
}

/* Nothing left: no live custodian, nothing unreaped, no chunk, no fd, no watcher. */
static int teardown(void **state)
{
    fixture *f = *state;

    for (int i = 0; i < f->npeers; i++)
        peer_close(&f->peers[i]);
    ev_timer_stop(f->loop, &f->helper);
    ev_timer_stop(f->loop, &f->helper2);
    pt_connmgr_free(f->m);
    f->m = NULL;
    /* The manager's reaper is gone with it: the loop's owner reaps the last iteration's. */
    pt_custodian_reap();
    pt_chunk_pool_trim();
    struct ev_loop *loop = f->loop;
    free(f);
    assert_nothing_left(loop);
    return 0;
}

/* ---- tests ---- */

static void test_new_needs_a_protocol(void **state)
{
    fixture *f = *state;
    static const pt_conn_proto no_read = {.on_close = rec_close};

    f->o.proto = NULL;
    assert_int_equal(pt_connmgr_new(&f->m, f->loop, &f->o), -EINVAL);
    f->o.proto = &no_read;
    assert_int_equal(pt_connmgr_new(&f->m, f->loop, &f->o), -EINVAL);
    f->m = NULL;
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start);
}

static void test_admit_echo(void **state)
{
    fixture *f = *state;
    pt_connmgr_stats s;
    peer *p;
    pt_conn *c;

    start_mgr(f, &echo_proto);
    assert_int_equal(pt_connmgr_limits(f->m)->max_concurrent, f->limits.max_concurrent);
    c = admit_pair(f, &p, NULL);
    assert_non_null(c);
    assert_int_equal(f->admits, 1);
    assert_int_equal(c->state, PT_CONN_READING);
    assert_ptr_equal(c->proto, &echo_proto);
    /* The connection's custodian is a child of the manager's, itself a new root. */
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 2);
    s = get_stats(f);
    assert_int_equal(s.live, 1);
    assert_int_equal(s.accepted, 1);
    assert_int_equal(s.reading, 1);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(s.closed, 0);

    peer_send(p, "hello");
    assert_true(wait_bytes(f, p, 5));
    assert_int_equal(p->total, 5);
    assert_memory_equal(p->data, "hello", 5);
    assert_int_equal(f->flush_result, 0);
    /* A write that did not have to wait does not call on_drain. */
    assert_int_equal(f->drains, 0);

    peer_send(p, "again!");
    assert_true(wait_bytes(f, p, 11));
    assert_memory_equal(p->data, "helloagain!", 11);
    assert_int_equal(f->reads, 2);
    assert_int_equal(c->requests, 2);
    assert_int_equal(get_stats(f).live, 1);

    /* The peer's end of stream: the protocol closes, the peer sees ours. */
    assert_int_equal(shutdown(p->fd, SHUT_WR), 0);
    assert_true(wait_done(f, p));
    assert_true(p->eof);
    assert_int_equal(p->err, 0);
    assert_int_equal(f->closes, 1);
    s = get_stats(f);
    assert_int_equal(s.live, 0);
    assert_int_equal(s.reading, 0);
    assert_int_equal(s.accepted, 1);
    assert_int_equal(s.closed, 1);
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 1);
}

static void test_kill_in_on_read(void **state)
{
    fixture *f = *state;
    peer *p;

    start_mgr(f, &kill_proto);
    assert_non_null(admit_pair(f, &p, NULL));
    peer_send(p, "request");
    ev_check_start(f->loop, &f->end_of_iteration);
    ev_unref(f->loop);
    /* The only referenced watcher is the connection's: its kill ends the run. */
    assert_true(run_until(f, NULL));
    ev_ref(f->loop);
    ev_check_stop(f->loop, &f->end_of_iteration);

    assert_int_equal(f->reads, 1);
    assert_int_equal(f->closes, 1);
    assert_null(f->killed);
    assert_true(f->killed_seen_dead);
    assert_true(f->unreaped_at_end_of_iteration > 0);
    assert_int_equal(get_stats(f).live, 0);
    assert_int_equal(get_stats(f).closed, 1);
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 1);

    /* The next iteration's prepare watcher reaps it. */
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(pt_custodian_unreaped_count(), 0);

    peer_read(p, SIZE_MAX);
    assert_true(p->eof);
    assert_int_equal(p->err, 0);
    assert_int_equal(p->total, 0);
}

static void test_kill_releases_custodian_resources(void **state)
{
    fixture *f = *state;
    peer *p;
    pt_conn *c;
    int fd;

    f->with_resources = true;
    start_mgr(f, &hold_proto);
    c = admit_pair(f, &p, NULL);
    assert_non_null(c);
    fd = f->last_resource_fd;
    assert_false(fd_is_closed(fd));
    /* Connection, its child, under the manager's. */
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 3);

    peer_send(p, "data");
    f->wait_reads = 1;
    assert_true(run_until(f, enough_reads));
    assert_int_equal(f->reads, 1);
    assert_int_equal(pt_inbuf_len(&c->in), 4);
    assert_false(pt_outq_is_empty(&c->out));
    assert_int_equal(pt_chunk_outstanding(), 2);

    pt_conn_kill(c);
    assert_int_equal(f->released, 2);
    assert_int_equal(f->closes, 1);
    assert_true(fd_is_closed(fd));
    assert_int_equal(pt_chunk_outstanding(), 0);
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 1);
    peer_read(p, SIZE_MAX);
    assert_true(p->eof);
}

static void test_kill_1000(void **state)
{
    fixture *f = *state;
    enum { BATCH = 100, BATCHES = 10 };
    int peers[BATCH];

    f->with_resources = true;
    start_mgr(f, &kill_proto);
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < BATCH; i++) {
            int sv[2];
            assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
                             0);
            assert_non_null(pt_connmgr_admit(f->m, sv[0], NULL, 0));
            peers[i] = sv[1];
            assert_int_equal(write(sv[1], "x", 1), 1);
        }
        assert_int_equal(get_stats(f).live, BATCH);
        assert_true(run_until(f, no_live));
        for (int i = 0; i < BATCH; i++) {
            char ch;
            assert_int_equal(read(peers[i], &ch, 1), 0);
            close(peers[i]);
        }
    }
    assert_int_equal(f->closes, BATCH * BATCHES);
    assert_int_equal(f->released, 2 * BATCH * BATCHES);
    assert_int_equal(get_stats(f).accepted, BATCH * BATCHES);
    assert_int_equal(get_stats(f).closed, BATCH * BATCHES);
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 1);
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(pt_custodian_unreaped_count(), 0);
    pt_chunk_pool_trim();
    assert_int_equal(pt_chunk_outstanding(), 0);
    assert_int_equal(count_fds(), f->fds_at_start);
}

static void test_read_timeout_kills_by_default(void **state)
{
    fixture *f = *state;
    ev_tstamp t0;
    peer *p;

    f->limits.request_read_timeout = 0.05;
    start_mgr(f, &echo_proto);
    t0 = loop_now(f);
    assert_non_null(admit_pair(f, &p, NULL));
    assert_true(run_until(f, no_live));
    assert_int_equal(f->closes, 1);
    assert_true(f->closed_at >= t0 + 0.05 - EPS);
    assert_true(f->closed_at < t0 + 1.0);
    peer_read(p, SIZE_MAX);
    assert_true(p->eof);
}

static void test_read_timeout_calls_on_timeout(void **state)
{
    fixture *f = *state;
    ev_tstamp t0;
    peer *p;

    f->limits.request_read_timeout = 0.05;
    start_mgr(f, &echo_timeout_proto);
    t0 = loop_now(f);
    assert_non_null(admit_pair(f, &p, NULL));
    assert_true(run_until(f, no_live));
    assert_int_equal(f->timeouts, 1);
    assert_int_equal(f->closes, 1);
    assert_true(f->timeout_at >= t0 + 0.05 - EPS);
    assert_true(f->timeout_at < t0 + 1.0);
}

static void on_helper_reset(struct ev_loop *loop, ev_timer *w, int revents)
{
    fixture *f = w->data;

    f->helper_at = ev_now(loop);
    f->closes_at_helper = f->closes;
    pt_conn_reset_timeout(f->target, 0.1);
}

static void test_reset_timeout_postpones(void **state)
{
    fixture *f = *state;
    peer *p;

    f->limits.request_read_timeout = 0.05;
    start_mgr(f, &echo_proto);
    loop_now(f);
    f->target = admit_pair(f, &p, NULL);
    assert_non_null(f->target);
    ev_init(&f->helper, on_helper_reset);
    ev_timer_set(&f->helper, 0.03, 0.);
    f->helper.data = f;
    ev_timer_start(f->loop, &f->helper);
    assert_true(run_until(f, no_live));
    assert_int_equal(f->closes_at_helper, 0);
    assert_int_equal(f->closes, 1);
    assert_true(f->closed_at >= f->helper_at + 0.1 - EPS);
}

static void on_helper_cancel(struct ev_loop *loop, ev_timer *w, int revents)
{
    fixture *f = w->data;

    pt_conn_reset_timeout(f->target, PT_TIMEOUT_NONE);
}

static void on_helper_kill(struct ev_loop *loop, ev_timer *w, int revents)
{
    fixture *f = w->data;

    f->closes_at_helper = f->closes;
    f->helper_at = ev_now(loop);
    pt_conn_kill(f->target);
}

static void test_reset_timeout_none_cancels(void **state)
{
    fixture *f = *state;
    peer *p;

    f->limits.request_read_timeout = 0.05;
    start_mgr(f, &echo_proto);
    loop_now(f);
    f->target = admit_pair(f, &p, NULL);
    ev_init(&f->helper, on_helper_cancel);
    ev_timer_set(&f->helper, 0.02, 0.);
    f->helper.data = f;
    ev_timer_start(f->loop, &f->helper);
    ev_init(&f->helper2, on_helper_kill);
    ev_timer_set(&f->helper2, 0.2, 0.);
    f->helper2.data = f;
    ev_timer_start(f->loop, &f->helper2);
    assert_true(run_until(f, no_live));
    /* Still alive long after the old deadline: killed by the test, not the timer. */
    assert_int_equal(f->closes_at_helper, 0);
    assert_int_equal(f->closes, 1);
    assert_false(ev_is_active(&f->helper2));
}

static void test_adjust_timeout_extends(void **state)
{
    fixture *f = *state;
    ev_tstamp t0;
    pt_conn *c;
    peer *p;

    f->limits.request_read_timeout = 0.05;
    start_mgr(f, &echo_proto);
    t0 = loop_now(f);
    c = admit_pair(f, &p, NULL);
    pt_conn_adjust_timeout(c, 0.1);
    /* No deadline stays no deadline. */
    pt_conn_adjust_timeout(c, PT_TIMEOUT_NONE);
    assert_true(run_until(f, no_live));
    assert_int_equal(f->closes, 1);
    assert_true(f->closed_at >= t0 + 0.15 - EPS);
    assert_true(f->closed_at < t0 + 1.0);
}

static void test_close_lingers_over_unread_input(void **state)
{
    fixture *f = *state;
    char big[40 * 1024];
    struct timeval tv = {.tv_sec = 1};
    int one = 0;
    socklen_t len = sizeof one;
    pt_conn *c;
    peer *p;

    f->linger = true;
    start_mgr(f, &respond_close_proto);
    c = admit_tcp(f, &p);
    assert_non_null(c);
    assert_int_equal(c->peerlen, sizeof(struct sockaddr_in));
    assert_int_equal(((struct sockaddr *)&c->peer)->sa_family, AF_INET);
    /* TCP_NODELAY waits until the connection is known to stay open (a keep-alive connection):
     * one answered and closed at once never pays the system call. */
    assert_int_equal(getsockopt(c->transport.fd, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
    assert_false(one);
    pt_conn_set_nodelay(c);
    assert_int_equal(getsockopt(c->transport.fd, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
    assert_true(one);

    /* More than one read takes (16 KiB): the rest is still unread when the server closes, and a
     * plain close(2) would answer it with a reset that destroys the response. */
    memset(big, 'x', sizeof big);
    assert_int_equal(setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(send(p->fd, big, sizeof big, 0), (ssize_t)sizeof big);
    assert_int_equal(fcntl(p->fd, F_SETFL, O_NONBLOCK), 0);

    assert_true(run_until(f, one_lingering));
    assert_int_equal(f->flush_result, 0);
    assert_false(f->dead_after_flush);
    assert_int_equal(c->state, PT_CONN_LINGERING);
    assert_int_equal(f->closes, 0);

    /* The whole response, then end of stream (the half close), not ECONNRESET. */
    assert_true(wait_done(f, p));
    assert_int_equal(p->err, 0);
    assert_true(p->eof);
    assert_int_equal(p->total, strlen(RESPONSE));
    assert_memory_equal(p->data, RESPONSE, strlen(RESPONSE));

    /* The client closes in turn: the lingering read sees it and the connection goes. */
    assert_int_equal(shutdown(p->fd, SHUT_WR), 0);
    assert_true(run_until(f, no_live));
    assert_int_equal(f->closes, 1);
    assert_int_equal(get_stats(f).lingering, 0);
}

static void test_close_without_input_is_immediate(void **state)
{
    fixture *f = *state;
    peer *p;

    start_mgr(f, &respond_close_proto);
    assert_non_null(admit_pair(f, &p, NULL));
    peer_send(p, "GET");
    assert_true(run_until(f, no_live));
    assert_int_equal(f->flush_result, 0);
    /* Nothing unread and no linger asked: gone within the flush that finished the response. */
    assert_true(f->dead_after_flush);
    assert_int_equal(f->closes, 1);
    peer_read(p, SIZE_MAX);
    assert_int_equal(p->err, 0);
    assert_true(p->eof);
    assert_int_equal(p->total, strlen(RESPONSE));
    assert_memory_equal(p->data, RESPONSE, strlen(RESPONSE));
}

static void test_flush_backpressure_calls_on_drain(void **state)
{
    fixture *f = *state;
    ev_tstamp t0;
    peer *p;

    /* Shorter than the whole transfer (at least 64 ticks of 5 ms): only a stall, not the
     * transfer, is bounded. */
    f->limits.response_send_timeout = 0.2;
    start_mgr(f, &bulk_proto);
    assert_non_null(admit_pair(f, &p, NULL));
    p->verify = true;
    peer_send(p, "go");
    t0 = loop_now(f);
    peer_read_slowly(p, 0.005, 64 * 1024);
    f->wait_peer = p;
    assert_true(run_until(f, peer_done));

    assert_int_equal(f->flush_result, -EAGAIN);
    assert_int_equal(p->err, 0);
    assert_true(p->eof);
    assert_int_equal(p->total, BULK_SIZE);
    assert_int_equal(p->mismatches, 0);
    assert_int_equal(f->drains, 1);
    assert_int_equal(f->closes, 1);
    assert_true(ev_now(f->loop) - t0 > 0.2);
}

static void test_send_timeout_kills_stalled_peer(void **state)
{
    fixture *f = *state;
    peer *p;

    f->limits.response_send_timeout = 0.1;
    start_mgr(f, &bulk_proto);
    assert_non_null(admit_pair(f, &p, NULL));
    peer_send(p, "go");
    assert_true(run_until(f, no_live));
    assert_int_equal(f->flush_result, -EAGAIN);
    assert_int_equal(f->drains, 0);
    assert_int_equal(f->closes, 1);
    assert_true(f->closed_at >= f->flushed_at + 0.1 - EPS);
    assert_true(f->closed_at < f->flushed_at + 1.0);
    /* What was queued went back with the connection. */
    assert_int_equal(pt_chunk_outstanding(), 0);
}

static void test_admission_full_then_room(void **state)
{
    fixture *f = *state;
    pt_conn *a, *b, *d;
    peer *pa, *pb, *pc, *pd;
    int fd;

    f->limits.max_concurrent = 2;
    start_mgr(f, &echo_proto);
    a = admit_pair(f, &pa, NULL);
    b = admit_pair(f, &pb, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(admit_pair(f, &pc, &fd));
    /* Refused: its fd closed, the client sees end of stream; admission paused once. */
    assert_true(fd_is_closed(fd));
    peer_read(pc, SIZE_MAX);
    assert_true(pc->eof);
    assert_int_equal(f->fulls, 1);
    assert_int_equal(f->rooms, 0);
    assert_int_equal(get_stats(f).live, 2);
    assert_int_equal(get_stats(f).rejected, 1);
    assert_int_equal(get_stats(f).accepted, 2);
    assert_int_equal(f->admits, 2);

    pt_conn_kill(a);
    assert_int_equal(f->rooms, 1);
    assert_int_equal(f->closes, 1);
    d = admit_pair(f, &pd, NULL);
    assert_non_null(d);
    assert_int_equal(f->fulls, 2);
    assert_int_equal(get_stats(f).live, 2);
    /* b was never touched. */
    peer_read(pb, SIZE_MAX);
    assert_false(pb->eof);
}

static void test_admission_evicts_oldest_idle(void **state)
{
    fixture *f = *state;
    pt_conn *a, *b, *c;
    peer *pa, *pb, *pc;
    pt_connmgr_stats s;

    f->limits.max_concurrent = 2;
    start_mgr(f, &echo_proto);
    a = admit_pair(f, &pa, NULL);
    pt_conn_set_state(a, PT_CONN_IDLE);
    b = admit_pair(f, &pb, NULL);
    pt_conn_set_state(b, PT_CONN_IDLE);
    /* a serves another request and is idle again: b has now been idle longest. */
    pt_conn_set_state(a, PT_CONN_READING);
    pt_conn_set_state(a, PT_CONN_IDLE);
    assert_int_equal(get_stats(f).idle, 2);
    assert_int_equal(f->fulls, 0);

    c = admit_pair(f, &pc, NULL);
    assert_non_null(c);
    assert_int_equal(f->closes, 1);
    peer_read(pb, SIZE_MAX);
    assert_true(pb->eof);
    peer_read(pa, SIZE_MAX);
    assert_false(pa->eof);
    assert_int_equal(pa->err, 0);
    s = get_stats(f);
    assert_int_equal(s.live, 2);
    assert_int_equal(s.idle, 1);
    assert_int_equal(s.reading, 1);
    assert_int_equal(s.accepted, 3);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(s.closed, 1);
    assert_int_equal(f->fulls, 0);

    /* a still works. */
    pt_conn_set_state(a, PT_CONN_READING);
    peer_send(pa, "ping");
    assert_true(wait_bytes(f, pa, 4));
    assert_memory_equal(pa->data, "ping", 4);
}

/* The last idle connection turns busy while the manager is at its limit: the next admission is
 * refused, so admission must be paused (on_full), or the listener keeps accepting clients only
 * to close them instead of leaving them in the backlog. */
static void test_full_when_last_idle_turns_busy(void **state)
{
    fixture *f = *state;
    pt_conn *a;
    peer *pa, *pb, *pc;
    int fd;

    f->limits.max_concurrent = 2;
    start_mgr(f, &echo_proto);
    a = admit_pair(f, &pa, NULL);
    pt_conn_set_state(a, PT_CONN_IDLE);
    assert_non_null(admit_pair(f, &pb, NULL));
    /* Room by eviction: not full. */
    assert_int_equal(f->fulls, 0);
    pt_conn_set_state(a, PT_CONN_READING);
    assert_null(admit_pair(f, &pc, &fd));
    assert_true(fd_is_closed(fd));
    assert_int_equal(f->fulls, 1);
    pt_conn_kill(a);
    assert_int_equal(f->rooms, 1);
}

/* At the limit with admission paused, a connection going idle makes room (the next admission
 * evicts it), so admission resumes; otherwise new clients wait in the backlog for as long as
 * the idle keep-alive connections do (keepalive_timeout). */
static void test_room_when_a_connection_goes_idle(void **state)
{
    fixture *f = *state;
    pt_conn *a;
    peer *pa, *pb, *pc;

    f->limits.max_concurrent = 2;
    start_mgr(f, &echo_proto);
    a = admit_pair(f, &pa, NULL);
    assert_non_null(admit_pair(f, &pb, NULL));
    assert_int_equal(f->fulls, 1);
    pt_conn_set_state(a, PT_CONN_IDLE);
    assert_int_equal(f->rooms, 1);
    assert_non_null(admit_pair(f, &pc, NULL));
    assert_int_equal(f->closes, 1);
}

static void test_drain_tells_every_protocol_before_closing_idle_ones(void **state)
{
    fixture *f = *state;
    peer *pi, *pb;

    f->idle_after_echo = true;
    start_mgr(f, &retire_proto);
    pt_conn *idle = admit_pair(f, &pi, NULL);
    pt_conn_set_state(idle, PT_CONN_IDLE);
    pt_conn *busy = admit_pair(f, &pb, NULL);
    busy->requests = 1;
    pt_conn_set_state(busy, PT_CONN_WRITING);
    pt_connmgr_drain(f->m, 0.2);
    assert_int_equal(f->retires, 2);
    /* The idle one heard it, then was closed; the busy one heard it and goes on. */
    peer_read(pi, SIZE_MAX);
    assert_true(pi->eof);
    assert_int_equal(pi->total, 3);
    assert_memory_equal(pi->data, "bye", 3);
    peer_read(pb, SIZE_MAX);
    assert_false(pb->eof);
    assert_int_equal(pb->total, 3);
    assert_memory_equal(pb->data, "bye", 3);
    /* A second drain kills what is left, without telling again. */
    pt_connmgr_drain(f->m, 0.2);
    assert_int_equal(f->retires, 2);
    assert_int_equal(get_stats(f).live, 0);
}

static void test_retire_tells_idle_ones_and_leaves_them_open(void **state)
{
    fixture *f = *state;
    peer *pi;

    start_mgr(f, &retire_proto);
    pt_conn *idle = admit_pair(f, &pi, NULL);
    pt_conn_set_state(idle, PT_CONN_IDLE);
    pt_connmgr_retire(f->m, 0.2);
    assert_int_equal(f->retires, 1);
    peer_read(pi, SIZE_MAX);
    assert_false(pi->eof);
    assert_int_equal(pi->total, 3);
    assert_int_equal(get_stats(f).live, 1);
    pt_connmgr_drain(f->m, 0.2); /* kills */
    assert_int_equal(get_stats(f).live, 0);
}

static void test_drain_closes_idle_and_fresh_lets_busy_finish(void **state)
{
    fixture *f = *state;
    pt_conn *idle, *busy;
    peer *pi, *pn, *pb, *pr;
    ev_tstamp t0;
    int fd;

    f->idle_after_echo = true;
    start_mgr(f, &echo_proto);
    idle = admit_pair(f, &pi, NULL);
    pt_conn_set_state(idle, PT_CONN_IDLE);
    assert_non_null(admit_pair(f, &pn, NULL));
    busy = admit_pair(f, &pb, NULL);
    busy->requests = 1;
    pt_conn_set_state(busy, PT_CONN_WRITING);

    t0 = loop_now(f);
    assert_false(pt_connmgr_is_draining(f->m));
    pt_connmgr_drain(f->m, 0.2);
    assert_true(pt_connmgr_is_draining(f->m));
    assert_int_equal(f->closes, 2);
    assert_int_equal(f->drained, 0);
    assert_int_equal(get_stats(f).live, 1);
    assert_int_equal(get_stats(f).writing, 1);
    peer_read(pi, SIZE_MAX);
    assert_true(pi->eof);
    peer_read(pn, SIZE_MAX);
    assert_true(pn->eof);
    peer_read(pb, SIZE_MAX);
    assert_false(pb->eof);

    /* No admission while draining. */
    assert_null(admit_pair(f, &pr, &fd));
    assert_true(fd_is_closed(fd));
    assert_int_equal(get_stats(f).rejected, 1);

    /* The busy one answers and goes idle: the manager closes it then. */
    peer_send(pb, "last");
    assert_true(wait_done(f, pb));
    assert_int_equal(pb->err, 0);
    assert_int_equal(pb->total, 4);
    assert_memory_equal(pb->data, "last", 4);
    assert_int_equal(f->closes, 3);
    assert_int_equal(f->drained, 1);
    assert_true(f->closed_at < t0 + 0.2);
    assert_int_equal(get_stats(f).live, 0);

    /* Nothing left: a second drain does nothing more. */
    pt_connmgr_drain(f->m, 0.2);
    assert_int_equal(f->drained, 1);
}

static void test_drain_kills_busy_after_grace(void **state)
{
    fixture *f = *state;
    pt_conn *busy;
    ev_tstamp t0;
    peer *pb;

    start_mgr(f, &echo_proto);
    busy = admit_pair(f, &pb, NULL);
    busy->requests = 1;
    pt_conn_set_state(busy, PT_CONN_WRITING);
    t0 = loop_now(f);
    pt_connmgr_drain(f->m, 0.2);
    assert_int_equal(f->closes, 0);
    assert_true(run_until(f, no_live));
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->drained, 1);
    assert_true(f->closed_at >= t0 + 0.2 - EPS);
    assert_true(f->closed_at < t0 + 1.0);
    peer_read(pb, SIZE_MAX);
    assert_true(pb->eof);
}

static void test_second_drain_kills_at_once(void **state)
{
    fixture *f = *state;
    pt_conn *busy;
    peer *pb;

    start_mgr(f, &echo_proto);
    busy = admit_pair(f, &pb, NULL);
    busy->requests = 1;
    pt_conn_set_state(busy, PT_CONN_WRITING);
    pt_connmgr_drain(f->m, PT_TIMEOUT_NONE);
    assert_int_equal(f->closes, 0);
    assert_int_equal(f->drained, 0);
    pt_connmgr_drain(f->m, PT_TIMEOUT_NONE);
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->drained, 1);
    assert_int_equal(get_stats(f).live, 0);
}

static void test_drain_without_connections(void **state)
{
    fixture *f = *state;
    peer *p;

    start_mgr(f, &echo_proto);
    pt_connmgr_drain(f->m, 0.2);
    assert_int_equal(f->drained, 1);
    assert_null(admit_pair(f, &p, NULL));
    assert_int_equal(f->admits, 0);
    pt_connmgr_drain(f->m, 0.2);
    assert_int_equal(f->drained, 1);
}

static void test_free_with_live_connections(void **state)
{
    fixture *f = *state;
    peer *p[3];
    int fd;

    f->with_resources = true;
    start_mgr(f, &hold_proto);
    for (int i = 0; i < 3; i++) {
        assert_non_null(admit_pair(f, &p[i], NULL));
        peer_send(p[i], "unanswered");
    }
    fd = f->last_resource_fd;
    f->wait_reads = 3;
    assert_true(run_until(f, enough_reads));
    assert_int_equal(f->reads, 3);
    assert_int_equal(pt_chunk_outstanding(), 6);
    /* Busy (a request under way): the drain leaves them, and a drain in progress goes too. */
    pt_connmgr_drain(f->m, PT_TIMEOUT_NONE);
    assert_int_equal(f->closes, 0);

    pt_connmgr_free(f->m);
    f->m = NULL;
    assert_int_equal(f->closes, 3);
    assert_int_equal(f->released, 6);
    assert_true(fd_is_closed(fd));
    assert_int_equal(pt_chunk_outstanding(), 0);
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start);
    /* Freeing is not draining. */
    assert_int_equal(f->drained, 0);
    for (int i = 0; i < 3; i++) {
        peer_read(p[i], SIZE_MAX);
        assert_true(p[i]->eof);
        assert_int_equal(p[i]->err, 0);
    }
}

static void test_parent_custodian_shutdown_releases_connections(void **state)
{
    fixture *f = *state;
    pt_custodian *parent = pt_custodian_new(NULL);
    peer *p[2];

    f->o.custodian = parent;
    start_mgr(f, &echo_proto);
    assert_non_null(admit_pair(f, &p[0], NULL));
    assert_non_null(admit_pair(f, &p[1], NULL));
    pt_custodian_shutdown(parent);
    assert_int_equal(f->closes, 2);
    assert_int_equal(get_stats(f).live, 0);
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start);
    peer_read(p[0], SIZE_MAX);
    assert_true(p[0]->eof);
    pt_connmgr_free(f->m);
    f->m = NULL;
}

/* ---- retiring (a reload's drain): no connection a client may be sending on is closed ---- */

static void test_retire_leaves_idle_and_fresh_connections_open(void **state)
{
    fixture *f = *state;
    pt_conn *idle, *busy;
    peer *pi, *pn, *pb, *pr;
    ev_tstamp t0;
    int fd;

    start_mgr(f, &echo_proto);
    idle = admit_pair(f, &pi, NULL);
    pt_conn_set_state(idle, PT_CONN_IDLE);
    assert_non_null(admit_pair(f, &pn, NULL));
    busy = admit_pair(f, &pb, NULL);
    busy->requests = 1;
    pt_conn_set_state(busy, PT_CONN_WRITING);

    t0 = loop_now(f);
    pt_connmgr_retire(f->m, 0.2);
    assert_true(pt_connmgr_is_draining(f->m));
    /* Unlike a drain, nothing closes now: an idle or fresh connection's client may be sending. */
    assert_int_equal(f->closes, 0);
    assert_int_equal(f->drained, 0);
    assert_int_equal(get_stats(f).live, 3);
    peer_read(pi, SIZE_MAX);
    assert_false(pi->eof);
    peer_read(pn, SIZE_MAX);
    assert_false(pn->eof);

    /* No admission while retiring. */
    assert_null(admit_pair(f, &pr, &fd));
    assert_true(fd_is_closed(fd));
    assert_int_equal(get_stats(f).rejected, 1);

    /* An idle connection still answers a request that crosses the retirement. */
    peer_send(pi, "late");
    assert_true(wait_bytes(f, pi, 4));
    assert_memory_equal(pi->data, "late", 4);
    assert_false(pi->eof);

    /* Turning idle does not close it either (the protocol closes after its next response). */
    pt_conn_set_state(busy, PT_CONN_IDLE);
    assert_int_equal(f->closes, 0);

    /* The grace period ends it all. */
    assert_true(run_until(f, no_live));
    assert_int_equal(f->closes, 3);
    assert_int_equal(f->drained, 1);
    assert_true(f->closed_at >= t0 + 0.2 - EPS);
    assert_true(f->closed_at < t0 + 1.0);
    peer_read(pb, SIZE_MAX);
    assert_true(pb->eof);
}

static void test_retire_drained_when_the_last_connection_closes(void **state)
{
    fixture *f = *state;
    peer *p[2];

    start_mgr(f, &echo_proto);
    assert_non_null(admit_pair(f, &p[0], NULL));
    assert_non_null(admit_pair(f, &p[1], NULL));
    pt_connmgr_retire(f->m, PT_TIMEOUT_NONE);
    assert_int_equal(f->drained, 0);

    /* Each client ends its connection: the echo protocol closes, the last close drains. */
    assert_int_equal(shutdown(p[0]->fd, SHUT_WR), 0);
    assert_true(wait_done(f, p[0]));
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->drained, 0);
    assert_int_equal(shutdown(p[1]->fd, SHUT_WR), 0);
    assert_true(wait_done(f, p[1]));
    assert_int_equal(f->closes, 2);
    assert_int_equal(f->drained, 1);
    assert_int_equal(get_stats(f).live, 0);
    /* Without a grace period no drain timer is left behind (teardown checks the watchers). */
}

static void test_drain_after_retire_kills_at_once(void **state)
{
    fixture *f = *state;
    pt_conn *c;
    peer *p, *q;

    start_mgr(f, &echo_proto);
    c = admit_pair(f, &p, NULL);
    pt_conn_set_state(c, PT_CONN_IDLE);
    assert_non_null(admit_pair(f, &q, NULL));
    pt_connmgr_retire(f->m, PT_TIMEOUT_NONE);
    assert_int_equal(f->closes, 0);
    pt_connmgr_drain(f->m, PT_TIMEOUT_NONE);
    assert_int_equal(f->closes, 2);
    assert_int_equal(f->drained, 1);
    assert_int_equal(get_stats(f).live, 0);
    peer_read(p, SIZE_MAX);
    assert_true(p->eof);
}

static void test_retire_without_connections(void **state)
{
    fixture *f = *state;
    peer *p;

    start_mgr(f, &echo_proto);
    pt_connmgr_retire(f->m, 0.2);
    assert_int_equal(f->drained, 1);
    assert_true(pt_connmgr_is_draining(f->m));
    assert_null(admit_pair(f, &p, NULL));
    assert_int_equal(f->admits, 0);
}

/* ---- max_concurrent_per_client ---- */

#define REFUSAL "HTTP/1.1 503 Service Unavailable\r\n\r\n"

/* Admits one end of a socketpair as if it came from `addr` (an IPv4 or IPv6 literal); the other
 * end goes to *peer_fd, which the caller closes. Returns NULL when refused. */
static pt_conn *admit_from(fixture *f, const char *addr, int *peer_fd)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000)};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};
    const struct sockaddr *sa;
    socklen_t len;
    int sv[2];

    if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
        sa = (const struct sockaddr *)&sin;
        len = sizeof sin;
    } else {
        assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
        sa = (const struct sockaddr *)&sin6;
        len = sizeof sin6;
    }
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    *peer_fd = sv[1];
    return pt_connmgr_admit(f->m, sv[0], sa, len);
}

/* Reads what a refused peer got: the refusal, then end of stream. */
static void assert_refused(int fd, const char *refusal)
{
    char buf[256];
    size_t got = 0;
    ssize_t n;

    while ((n = read(fd, buf + got, sizeof buf - got)) > 0)
        got += (size_t)n;
    assert_int_equal(n, 0); /* end of stream, not EAGAIN: the server end is closed */
    assert_int_equal(got, strlen(refusal));
    assert_memory_equal(buf, refusal, got);
}

static void test_per_client_limit_refuses_with_the_refusal(void **state)
{
    fixture *f = *state;
    pt_conn *a1, *a2, *b;
    int fa1, fa2, fa3, fb, fa4;
    char ch;

    f->limits.max_concurrent_per_client = 2;
    f->o.refusal = REFUSAL;
    f->o.refusal_len = strlen(REFUSAL);
    start_mgr(f, &echo_proto);
    a1 = admit_from(f, "10.0.0.1", &fa1);
    a2 = admit_from(f, "10.0.0.1", &fa2);
    assert_non_null(a1);
    assert_non_null(a2);
    assert_null(admit_from(f, "10.0.0.1", &fa3));
    assert_refused(fa3, REFUSAL);
    assert_int_equal(get_stats(f).rejected, 1);
    assert_int_equal(get_stats(f).accepted, 2);
    assert_int_equal(f->admits, 2);
    /* A per-client refusal is not a full manager: the listeners keep accepting. */
    assert_int_equal(f->fulls, 0);

    /* Another client is counted apart. */
    b = admit_from(f, "10.0.0.2", &fb);
    assert_non_null(b);

    /* A connection gone gives its slot back. */
    pt_conn_kill(a1);
    assert_non_null(admit_from(f, "10.0.0.1", &fa4));
    assert_int_equal(get_stats(f).live, 3);
    /* The admitted ones were not written to. */
    assert_int_equal(read(fa2, &ch, 1), -1);
    assert_int_equal(errno, EAGAIN);
    close(fa1);
    close(fa2);
    close(fa3);
    close(fb);
    close(fa4);
}

static void test_per_client_limit_without_refusal_just_closes(void **state)
{
    fixture *f = *state;
    int fa, fb;
    char ch;

    f->limits.max_concurrent_per_client = 1;
    start_mgr(f, &echo_proto);
    assert_non_null(admit_from(f, "192.0.2.7", &fa));
    assert_null(admit_from(f, "192.0.2.7", &fb));
    assert_int_equal(read(fb, &ch, 1), 0);
    assert_int_equal(get_stats(f).rejected, 1);
    close(fa);
    close(fb);
}

static void test_per_client_limit_zero_refuses_every_address_but_not_unix_peers(void **state)
{
    fixture *f = *state;
    int fds[3];
    peer *p;

    f->limits.max_concurrent_per_client = 0;
    f->o.refusal = REFUSAL;
    f->o.refusal_len = strlen(REFUSAL);
    start_mgr(f, &echo_proto);
    assert_null(admit_from(f, "10.1.1.1", &fds[0]));
    /* Refused twice the same way: no entry was left behind by the first refusal. */
    assert_null(admit_from(f, "10.1.1.1", &fds[1]));
    assert_null(admit_from(f, "2001:db8::1", &fds[2]));
    for (int i = 0; i < 3; i++) {
        assert_refused(fds[i], REFUSAL);
        close(fds[i]);
    }
    assert_int_equal(get_stats(f).rejected, 3);
    /* A peer without an address (a unix socket) is not anybody's: never limited. */
    assert_non_null(admit_pair(f, &p, NULL));
    assert_int_equal(get_stats(f).live, 1);
}

static void test_per_client_ipv4_and_mapped_ipv6_are_one_client(void **state)
{
    fixture *f = *state;
    int fa, fb, fc;

    f->limits.max_concurrent_per_client = 1;
    start_mgr(f, &echo_proto);
    assert_non_null(admit_from(f, "198.51.100.9", &fa));
    assert_null(admit_from(f, "::ffff:198.51.100.9", &fb));
    assert_non_null(admit_from(f, "::ffff:198.51.100.10", &fc));
    close(fa);
    close(fb);
    close(fc);
}

/* Hundreds of addresses in the table (it grows, probes collide, removals shift entries back):
 * every count stays exact. */
static void test_per_client_counts_stay_exact_with_many_clients(void **state)
{
    fixture *f = *state;
    enum { N = 300 };
    pt_conn *conns[N];
    int fds[N], fd;
    char addr[32];

    f->limits.max_concurrent_per_client = 1;
    start_mgr(f, &echo_proto);
    for (int i = 0; i < N; i++) {
        snprintf(addr, sizeof addr, "10.%d.%d.%d", i % 7, i / 7, (i * 37) % 251);
        conns[i] = admit_from(f, addr, &fds[i]);
        assert_non_null(conns[i]);
    }
    /* Every address is at its limit. */
    for (int i = 0; i < N; i += 13) {
        snprintf(addr, sizeof addr, "10.%d.%d.%d", i % 7, i / 7, (i * 37) % 251);
        assert_null(admit_from(f, addr, &fd));
        close(fd);
    }
    /* Every other one goes. */
    for (int i = 0; i < N; i += 2) {
        pt_conn_kill(conns[i]);
        close(fds[i]);
        fds[i] = -1;
    }
    for (int i = 0; i < N; i++) {
        snprintf(addr, sizeof addr, "10.%d.%d.%d", i % 7, i / 7, (i * 37) % 251);
        pt_conn *c = admit_from(f, addr, &fd);
        if (i % 2 == 0) {
            assert_non_null(c); /* its slot was given back */
            fds[i] = fd;
        } else {
            assert_null(c); /* still held */
            close(fd);
        }
    }
    assert_int_equal(get_stats(f).live, N);
    assert_int_equal(get_stats(f).accepted, N + N / 2);
    for (int i = 0; i < N; i++)
        close(fds[i]);
}

/* An idle connection evicted to make room gives its client's slot back too. */
static void test_eviction_releases_the_clients_slot(void **state)
{
    fixture *f = *state;
    pt_conn *a, *b, *c;
    int fa, fb, fc, fa2;
    char ch;

    f->limits.max_concurrent = 2;
    f->limits.max_concurrent_per_client = 1;
    start_mgr(f, &echo_proto);
    a = admit_from(f, "10.9.9.1", &fa);
    pt_conn_set_state(a, PT_CONN_IDLE);
    b = admit_from(f, "10.9.9.2", &fb);
    pt_conn_set_state(b, PT_CONN_IDLE);
    c = admit_from(f, "10.9.9.3", &fc);
    assert_non_null(c);
    /* a was the oldest idle one. */
    assert_int_equal(f->closes, 1);
    assert_int_equal(read(fa, &ch, 1), 0);
    pt_conn_kill(c);
    assert_non_null(admit_from(f, "10.9.9.1", &fa2));
    assert_int_equal(get_stats(f).rejected, 0);
    close(fa);
    close(fb);
    close(fc);
    close(fa2);
}

/* ---- scenarios that corrupt memory run in a child, so a failure is reported, not a crash ---- */

#define CHILD_CHECK(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            _exit(2);                                                                              \
        }                                                                                          \
    } while (0)

static void child_read(pt_conn *c)
{
    pt_inbuf_consume(&c->in, pt_inbuf_len(&c->in));
}

static const pt_conn_proto child_proto = {.on_read = child_read};

/* The child's end: nothing left since `m` (the scenario's loop is destroyed here). */
static void child_nothing_left(const nothing_left_mark *m, struct ev_loop *loop)
{
    char what[512];
    if (!nothing_left_since(m, loop, what, sizeof what)) {
        fprintf(stderr, "left at the end of the scenario: %s\n", what);
        _exit(2);
    }
}

static void run_in_child(int (*scenario)(void))
{
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(5);
        _exit(scenario());
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("the scenario was killed by signal %d (see the report above)", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("the scenario failed with status %d (see the report above)", WEXITSTATUS(status));
}

/* The parent custodian (the server's) is shut down, then one loop iteration runs before the
 * manager is freed: the manager must not touch its custodian's memory, which that iteration's
 * reaper has freed. */
static int parent_shutdown_then_free(void)
{
    nothing_left_mark start;
    nothing_left_mark_take(&start, true);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    pt_custodian *parent = pt_custodian_new(NULL);
    pt_connmgr_options o;
    pt_connmgr *m;
    int sv[2];

    CHILD_CHECK(loop && parent);
    pt_connmgr_options_init(&o);
    o.proto = &child_proto;
    o.custodian = parent;
    CHILD_CHECK(pt_connmgr_new(&m, loop, &o) == 0);
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    CHILD_CHECK(pt_connmgr_admit(m, sv[0], NULL, 0) != NULL);
    pt_custodian_shutdown(parent);
    ev_run(loop, EVRUN_NOWAIT);
    CHILD_CHECK(pt_custodian_unreaped_count() == 0);
    pt_connmgr_free(m);
    close(sv[1]);
    child_nothing_left(&start, loop);
    return 0;
}

static void test_free_after_parent_custodian_reaped(void **state)
{
    run_in_child(parent_shutdown_then_free);
}

static void free_manager(void *data)
{
    pt_connmgr **m = data;

    pt_connmgr_free(*m);
    *m = NULL;
}

/* on_drained frees the manager ("no live connection left": the natural moment). That works when
 * the last connection finishes by itself; it must also work when the grace period kills it. */
static int free_in_on_drained_after_grace(void)
{
    nothing_left_mark start;
    nothing_left_mark_take(&start, true);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    pt_connmgr_options o;
    pt_connmgr *m;
    pt_conn *c;
    int sv[2];

    CHILD_CHECK(loop);
    pt_connmgr_options_init(&o);
    o.proto = &child_proto;
    o.on_drained = free_manager;
    o.data = &m;
    CHILD_CHECK(pt_connmgr_new(&m, loop, &o) == 0);
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    c = pt_connmgr_admit(m, sv[0], NULL, 0);
    CHILD_CHECK(c != NULL);
    pt_conn_set_state(c, PT_CONN_WRITING);
    pt_connmgr_drain(m, 0.02);
    ev_run(loop, 0);
    CHILD_CHECK(m == NULL);
    pt_custodian_reap();
    close(sv[1]);
    child_nothing_left(&start, loop);
    return 0;
}

static void test_free_in_on_drained_after_grace(void **state)
{
    run_in_child(free_in_on_drained_after_grace);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_needs_a_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_in_on_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_releases_custodian_resources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_1000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_timeout_kills_by_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_timeout_calls_on_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_timeout_postpones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_timeout_none_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adjust_timeout_extends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_lingers_over_unread_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_without_input_is_immediate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_backpressure_calls_on_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_timeout_kills_stalled_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admission_full_then_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admission_evicts_oldest_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_when_last_idle_turns_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_room_when_a_connection_goes_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_closes_idle_and_fresh_lets_busy_finish, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drain_kills_busy_after_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_tells_every_protocol_before_closing_idle_ones,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_retire_tells_idle_ones_and_leaves_them_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_drain_kills_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_without_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_live_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parent_custodian_shutdown_releases_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retire_leaves_idle_and_fresh_connections_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retire_drained_when_the_last_connection_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drain_after_retire_kills_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retire_without_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_client_limit_refuses_with_the_refusal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_per_client_limit_without_refusal_just_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_per_client_limit_zero_refuses_every_address_but_not_unix_peers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_client_ipv4_and_mapped_ipv6_are_one_client, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_per_client_counts_stay_exact_with_many_clients, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_eviction_releases_the_clients_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_after_parent_custodian_reaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_on_drained_after_grace, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
