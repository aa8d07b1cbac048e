/*
 * The connector on real loopback sockets: each address in order, transient errors go on,
 * fatal ones stop, per-attempt and overall timeouts, names through the resolver (injected, and
 * getaddrinfo for "localhost"; an answer that comes before the loop thread has finished handing
 * the lookup over), unix sockets, cancel, shutdown with work in flight. Every test ends with no
 * live custodian, no armed timer, no active watcher and no leaked fd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "connmgr/connector.h"
#include "connmgr/limits.h"
#include "connmgr/timer.h"
#include "connmgr/tls.h"
#include "tests/support.h"
#include "tests/support/cert.h"

/* ---- helpers ---- */

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

/* A non-blocking listening socket on `ip`:`port` (0: any port). Returns the fd; *port_out
 * receives the port. */
static int listen_on(const char *ip, uint16_t port, int backlog, uint16_t *port_out)
{
    struct sockaddr_in a = v4(ip, port);
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    assert_int_equal(listen(fd, backlog), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (port_out)
        *port_out = ntohs(a.sin_port);
    return fd;
}

/* Accepts one pending connection if there is one: its fd, or -1. */
static int accept_one(int l, struct sockaddr_in *peer)
{
    socklen_t len = sizeof *peer;
    return accept4(l, (struct sockaddr *)peer, &len, SOCK_CLOEXEC);
}

/* A listener whose accept queue is full, so that a new connect to it hangs (its SYN is
 * dropped): listen(fd, 0), then connections that are never accepted until one does not
 * complete. The hanging fillers are kept to close at the end. */
typedef struct blackhole {
    int listener;
    int fillers[16];
    int nfillers;
} blackhole;

static void blackhole_open(blackhole *b, const char *ip, uint16_t port)
{
    uint16_t got;
    b->listener = listen_on(ip, port, 0, &got);
    assert_true(b->listener >= 0);
    b->nfillers = 0;
    struct sockaddr_in a = v4(ip, got);
    for (int i = 0; i < 16; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        int r = connect(fd, (struct sockaddr *)&a, sizeof a);
        assert_true(r == 0 || errno == EINPROGRESS);
        b->fillers[b->nfillers++] = fd;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 100) == 0)
            return; /* this one hangs: the queue is full */
    }
    fail_msg("could not fill the accept queue");
}

static void blackhole_close(blackhole *b)
{
    for (int i = 0; i < b->nfillers; i++)
        close(b->fillers[i]);
    close(b->listener);
}

/* An injected resolver: hands out the addresses of a table, counting calls. */
typedef struct fake_dns {
    pt_connect_addr addrs[4];
    int n;
    int error;
    atomic_int calls;
} fake_dns;

static int fake_resolve(const char *host, pt_connect_addr *out, size_t max, void *data)
{
    fake_dns *d = data;
    atomic_fetch_add(&d->calls, 1);
    if (d->error)
        return d->error;
    for (int i = 0; i < d->n && (size_t)i < max; i++)
        out[i] = d->addrs[i];
    return d->n;
}

static void fake_add_v4(fake_dns *d, const char *ip)
{
    struct sockaddr_in a = v4(ip, 0);
    memset(&d->addrs[d->n], 0, sizeof d->addrs[d->n]);
    memcpy(&d->addrs[d->n].addr, &a, sizeof a);
    d->addrs[d->n].len = sizeof a;
    d->n++;
}

/* The loop thread held up at the worst moment, as a loaded machine does: while armed,
 * ev_async_start (this program's, standing in for libev's) waits until the watcher it is given
 * has been sent, or `async_start_wait` seconds pass, before starting it for real. A resolver
 * thread that gets a job before its watcher is started then answers first. */
static atomic_bool async_start_slow;
static const double async_start_wait = 0.3;

void ev_async_start(struct ev_loop *loop, ev_async *w)
{
    static void (*real)(struct ev_loop *, ev_async *);
    if (!real) {
        *(void **)&real = dlsym(RTLD_NEXT, "ev_async_start");
        assert_non_null(real);
    }
    if (atomic_load(&async_start_slow)) {
        double end = ev_time() + async_start_wait;
        while (!ev_async_pending(w) && ev_time() < end)
            poll(NULL, 0, 1);
    }
    real(loop, w);
}

typedef struct fixture {
    struct ev_loop *loop;
    pt_connector *c;
    pt_connector_options o;
    fake_dns dns;
    /* the last completion */
    int calls;
    int status;
    pt_outbound *o_out;
    double done_at;
} fixture;

static void on_connected(pt_outbound *o, int status, void *data)
{
    fixture *f = data;
    f->calls++;
    f->status = status;
    f->o_out = o;
    f->done_at = ev_now(f->loop);
    if (status == 0)
        assert_non_null(o);
    else
        assert_null(o);
}

static void new_connector(fixture *f)
{
    assert_int_equal(pt_connector_new(&f->c, f->loop, &f->o), 0);
}

/* Runs the loop until a completion arrives or `secs` pass. */
static void run_until_done(fixture *f, double secs)
{
    ev_now_update(f->loop);
    double end = ev_now(f->loop) + secs;
    while (f->calls == 0 && ev_now(f->loop) < end) {
        ev_run(f->loop, EVRUN_ONCE | EVRUN_NOWAIT);
        if (f->calls == 0) {
            struct pollfd none;
            poll(&none, 0, 2);
        }
        ev_now_update(f->loop);
    }
}

static void connect_name(fixture *f, const char *host, uint16_t port, double timeout)
{
    pt_authority a;
    assert_int_equal(pt_authority_set(&a, host, port), 0);
    f->calls = 0;
    assert_int_equal(pt_connector_connect(f->c, &a, timeout, on_connected, f, NULL), 0);
    /* Never from inside the call. */
    assert_int_equal(f->calls, 0);
    run_until_done(f, 5);
    assert_int_equal(f->calls, 1);
}

static uint16_t peer_port(const pt_outbound *o)
{
    return ntohs(o->peer.addr.in.sin_port);
}

static char *peer_ip(const pt_outbound *o, char *buf)
{
    inet_ntop(AF_INET, &o->peer.addr.in.sin_addr, buf, INET_ADDRSTRLEN);
    return buf;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    nothing_left_begin();
    f->loop = ev_loop_new(EVFLAG_AUTO);
    pt_connector_options_init(&f->o);
    f->o.resolve = fake_resolve;
    f->o.resolve_data = &f->dns;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    atomic_store(&async_start_slow, false);
    pt_connector_free(f->c);
    pt_custodian_reap();
    struct ev_loop *loop = f->loop;
    free(f);
    assert_int_equal(pt_timer_armed_count(), 0);
    assert_nothing_left(loop);
    return 0;
}

/* ---- tests ---- */

static void test_error_classes(void **state)
{
    int transient[] = {ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ENETDOWN, ETIMEDOUT, ECONNRESET};
    int fatal[] = {EINVAL, EACCES, EPERM, EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRINUSE};
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        assert_true(pt_connect_error_is_transient(-transient[i]));
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++)
        assert_false(pt_connect_error_is_transient(-fatal[i]));
}

static void test_literal_connects(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    new_connector(f);
    connect_name(f, "127.0.0.1", port, 0);
    assert_int_equal(f->status, 0);
    pt_outbound *o = f->o_out;
    assert_int_equal(peer_port(o), port);
    assert_int_equal(pt_connector_open_count(f->c), 1);
    assert_int_equal(pt_connector_pending_count(f->c), 0);
    /* A literal never reaches the resolver. */
    assert_int_equal(atomic_load(&f->dns.calls), 0);
    /* The transport works: bytes reach the listener's side. */
    struct sockaddr_in peer;
    int s = accept_one(l, &peer);
    assert_true(s >= 0);
    struct iovec iov = {.iov_base = "ping", .iov_len = 4};
    assert_int_equal(pt_transport_writev(&o->transport, &iov, 1), 4);
    char buf[8];
    assert_int_equal(read(s, buf, sizeof buf), 4);
    pt_outbound_close(o);
    assert_int_equal(pt_connector_open_count(f->c), 0);
    close(s);
    close(l);
}

/* The first address refuses, the second accepts: the connect succeeds on the second. */
static void test_refused_then_next(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    /* Nothing listens on 127.0.0.2 at that port: refused. */
    fake_add_v4(&f->dns, "127.0.0.2");
    fake_add_v4(&f->dns, "127.0.0.1");
    new_connector(f);
    connect_name(f, "backend", port, 0);
    assert_int_equal(f->status, 0);
    char ip[INET_ADDRSTRLEN];
    assert_string_equal(peer_ip(f->o_out, ip), "127.0.0.1");
    pt_outbound_close(f->o_out);
    close(l);
}

/* Addresses are tried in the resolver's order: with both listening, the first wins. */
static void test_each_address_in_order(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l1 = listen_on("127.0.0.1", 0, 8, &port);
    int l2 = listen_on("127.0.0.2", port, 8, NULL);
    if (l2 < 0) {
        close(l1);
        skip();
    }
    fake_add_v4(&f->dns, "127.0.0.2");
    fake_add_v4(&f->dns, "127.0.0.1");
    new_connector(f);
    connect_name(f, "backend", port, 0);
    assert_int_equal(f->status, 0);
    char ip[INET_ADDRSTRLEN];
    assert_string_equal(peer_ip(f->o_out, ip), "127.0.0.2");
    struct sockaddr_in peer;
    int s = accept_one(l1, &peer);
    assert_int_equal(s, -1); /* nobody went to the second address */
    pt_outbound_close(f->o_out);

    /* ::1 then 127.0.0.1 (when this host has IPv6): ::1 refuses, 127.0.0.1 answers. */
    int v6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have_v6 = v6 >= 0 && bind(v6, (struct sockaddr *)&lo6, sizeof lo6) == 0;
    if (v6 >= 0)
        close(v6);
    if (have_v6) {
        f->dns.n = 0;
        memset(&f->dns.addrs[0], 0, sizeof f->dns.addrs[0]);
        memcpy(&f->dns.addrs[0].addr, &lo6, sizeof lo6);
        f->dns.addrs[0].len = sizeof lo6;
        f->dns.n = 1;
        fake_add_v4(&f->dns, "127.0.0.1");
        connect_name(f, "dual", port, 0);
        assert_int_equal(f->status, 0);
        assert_int_equal(f->o_out->peer.addr.sa.sa_family, AF_INET);
        pt_outbound_close(f->o_out);
    }
    close(l1);
    close(l2);
}

/* Every address refuses: the last error is reported. */
static void test_all_refused(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    close(l); /* now nothing listens there */
    fake_add_v4(&f->dns, "127.0.0.2");
    fake_add_v4(&f->dns, "127.0.0.1");
    new_connector(f);
    connect_name(f, "backend", port, 0);
    assert_int_equal(f->status, -ECONNREFUSED);
    assert_int_equal(pt_connector_open_count(f->c), 0);
    assert_int_equal(pt_connector_pending_count(f->c), 0);
}

/* A fatal error (here an invalid address: EINVAL) stops at once; the next address, which
 * would have worked, is never tried. */
static void test_fatal_error_stops(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    fake_add_v4(&f->dns, "127.0.0.1");
    f->dns.addrs[0].len = 4; /* too short for a sockaddr_in: connect() says EINVAL */
    fake_add_v4(&f->dns, "127.0.0.1");
    new_connector(f);
    connect_name(f, "backend", port, 0);
    assert_int_equal(f->status, -EINVAL);
    struct sockaddr_in peer;
    assert_int_equal(accept_one(l, &peer), -1);
    assert_int_equal(errno, EAGAIN);

    /* A local address that cannot be bound (in use, without SO_REUSEADDR) is fatal too. */
    pt_connector_free(f->c);
    f->c = NULL;
    uint16_t busy;
    int b = listen_on("127.0.0.1", 0, 8, &busy);
    struct sockaddr_in local = v4("127.0.0.1", busy);
    f->o.local = (struct sockaddr *)&local;
    f->o.local_len = sizeof local;
    new_connector(f);
    connect_name(f, "127.0.0.1", port, 0);
    assert_int_equal(f->status, -EADDRINUSE);
    assert_int_equal(accept_one(l, &peer), -1);
    close(b);
    close(l);
}

/* An attempt that hangs runs out of attempt_timeout and the next address is tried. */
static void test_attempt_timeout_goes_on(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    blackhole bh;
    blackhole_open(&bh, "127.0.0.2", port);
    fake_add_v4(&f->dns, "127.0.0.2");
    fake_add_v4(&f->dns, "127.0.0.1");
    f->o.attempt_timeout = 0.2;
    new_connector(f);
    ev_now_update(f->loop);
    double start = ev_now(f->loop);
    connect_name(f, "backend", port, 0);
    assert_int_equal(f->status, 0);
    char ip[INET_ADDRSTRLEN];
    assert_string_equal(peer_ip(f->o_out, ip), "127.0.0.1");
    assert_true(f->done_at - start >= 0.19);
    pt_outbound_close(f->o_out);

    /* Only the hanging address (another name: "backend" is cached): its timeout is the last
     * error. */
    f->dns.n = 1;
    connect_name(f, "hanging", port, 0);
    assert_int_equal(f->status, -ETIMEDOUT);
    blackhole_close(&bh);
    close(l);
}

/* The overall timeout bounds the whole connect, whatever is left to try. */
static void test_overall_timeout(void **state)
{
    fixture *f = *state;
    blackhole bh;
    blackhole_open(&bh, "127.0.0.1", 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(bh.listener, (struct sockaddr *)&a, &len);
    f->o.attempt_timeout = 5;
    new_connector(f);
    ev_now_update(f->loop);
    double start = ev_now(f->loop);
    connect_name(f, "127.0.0.1", ntohs(a.sin_port), 0.15);
    assert_int_equal(f->status, -ETIMEDOUT);
    assert_true(f->done_at - start >= 0.14 && f->done_at - start < 2);
    blackhole_close(&bh);
}

/* A name goes through the resolver once; the answer is reused while valid. A failed lookup
 * is the connect's error. */
static void test_resolver_and_cache(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    fake_add_v4(&f->dns, "127.0.0.1");
    new_connector(f);
    connect_name(f, "app.internal", port, 0);
    assert_int_equal(f->status, 0);
    pt_outbound_close(f->o_out);
    connect_name(f, "app.internal", port, 0);
    assert_int_equal(f->status, 0);
    pt_outbound_close(f->o_out);
    assert_int_equal(atomic_load(&f->dns.calls), 1);

    f->dns.error = -ENOENT;
    connect_name(f, "other.internal", port, 0);
    assert_int_equal(f->status, -ENOENT);
    assert_int_equal(atomic_load(&f->dns.calls), 2);
    close(l);
}

/* A resolver thread may answer before the loop thread is done handing it the lookup (the loop
 * thread preempted on a busy machine): the answer still reaches the connect, on a new thread
 * and on an idle one. */
static void test_resolver_answers_first(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    fake_add_v4(&f->dns, "127.0.0.1");
    new_connector(f);
    const char *names[] = {"first.internal", "second.internal"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        atomic_store(&async_start_slow, true);
        connect_name(f, names[i], port, 0);
        atomic_store(&async_start_slow, false);
        assert_int_equal(f->status, 0);
        char ip[INET_ADDRSTRLEN];
        assert_string_equal(peer_ip(f->o_out, ip), "127.0.0.1");
        pt_outbound_close(f->o_out);
    }
    assert_int_equal(atomic_load(&f->dns.calls), 2);
    close(l);
}

/* The real resolver: "localhost" from /etc/hosts, on a resolver thread. */
static void test_getaddrinfo_localhost(void **state)
{
    fixture *f = *state;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo("localhost", NULL, &hints, &res) != 0)
        skip(); /* no IPv4 "localhost" here */
    freeaddrinfo(res);
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    f->o.resolve = NULL;
    new_connector(f);
    connect_name(f, "localhost", port, 0);
    /* ::1 may come first and refuse: 127.0.0.1 is then tried. */
    assert_int_equal(f->status, 0);
    char ip[INET_ADDRSTRLEN];
    assert_string_equal(peer_ip(f->o_out, ip), "127.0.0.1");
    pt_outbound_close(f->o_out);
    close(l);
}

static void test_unix_socket(void **state)
{
    fixture *f = *state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/porter-test-connector-%d.sock", (int)getpid());
    unlink(path);
    new_connector(f);
    /* Not there: ENOENT, the last (and only) error. */
    connect_name(f, path, 0, 0);
    assert_int_equal(f->status, -ENOENT);

    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    strcpy(un.sun_path, path);
    assert_int_equal(bind(l, (struct sockaddr *)&un, sizeof un), 0);
    assert_int_equal(listen(l, 8), 0);
    connect_name(f, path, 0, 0);
    assert_int_equal(f->status, 0);
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(s >= 0);
    close(s);
    pt_outbound_close(f->o_out);
    close(l);
    unlink(path);
}

static void test_cancel(void **state)
{
    fixture *f = *state;
    blackhole bh;
    blackhole_open(&bh, "127.0.0.1", 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(bh.listener, (struct sockaddr *)&a, &len);
    new_connector(f);
    pt_authority au;
    assert_int_equal(pt_authority_set(&au, "127.0.0.1", ntohs(a.sin_port)), 0);
    pt_connect *k;
    f->calls = 0;
    assert_int_equal(pt_connector_connect(f->c, &au, 0, on_connected, f, &k), 0);
    assert_non_null(k);
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(pt_connector_pending_count(f->c), 1);
    pt_connect_cancel(k);
    assert_int_equal(pt_connector_pending_count(f->c), 0);
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(f->calls, 0);

    /* Cancelled while the name is being resolved: the late answer is dropped. */
    fake_add_v4(&f->dns, "127.0.0.1");
    assert_int_equal(pt_authority_set(&au, "slow.name", ntohs(a.sin_port)), 0);
    assert_int_equal(pt_connector_connect(f->c, &au, 0, on_connected, f, &k), 0);
    pt_connect_cancel(k);
    for (int i = 0; i < 50 && atomic_load(&f->dns.calls) == 0; i++)
        poll(NULL, 0, 5);
    run_until_done(f, 0.1);
    assert_int_equal(f->calls, 0);
    blackhole_close(&bh);
}

/* The connector goes away with a connect in flight and a transport held: the connect is told
 * (-ECANCELED), the transport's socket is closed, and its memory waits for its holder. */
static void test_free_with_work_in_flight(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    blackhole bh;
    blackhole_open(&bh, "127.0.0.2", port);
    new_connector(f);
    connect_name(f, "127.0.0.1", port, 0);
    assert_int_equal(f->status, 0);
    pt_outbound *held = f->o_out;
    pt_authority au;
    assert_int_equal(pt_authority_set(&au, "127.0.0.2", port), 0);
    f->calls = 0;
    assert_int_equal(pt_connector_connect(f->c, &au, 0, on_connected, f, NULL), 0);
    ev_run(f->loop, EVRUN_NOWAIT);
    pt_connector_free(f->c);
    f->c = NULL;
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->status, -ECANCELED);
    assert_int_equal(held->transport.fd, -1);
    pt_outbound_close(held);
    blackhole_close(&bh);
    close(l);
}

/* An optional local address is bound before connecting. */
static void test_local_address(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int l = listen_on("0.0.0.0", 0, 8, &port);
    struct sockaddr_in local = v4("127.0.0.5", 0);
    f->o.local = (struct sockaddr *)&local;
    f->o.local_len = sizeof local;
    new_connector(f);
    connect_name(f, "127.0.0.1", port, 0);
    assert_int_equal(f->status, 0);
    struct sockaddr_in peer;
    int s = -1;
    for (int i = 0; i < 100 && s < 0; i++) {
        s = accept_one(l, &peer);
        if (s < 0)
            poll(NULL, 0, 2);
    }
    assert_true(s >= 0);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    assert_string_equal(ip, "127.0.0.5");
    close(s);
    pt_outbound_close(f->o_out);
    close(l);
}

/* ---- a TLS tunnel over a connector's transport ---- */

/* A throw-away self-signed certificate for "localhost", used by `ctx` and written as PEM to
 * `path` for the client to trust. */
static void make_cert(SSL_CTX *ctx, const char *path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = cert_self_signed(key, "localhost", "DNS:localhost,IP:127.0.0.1");
    cert_use(ctx, x, key);
    cert_write(x, key, path, NULL);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* Sends "hello" from the client transport to the server one, both non-blocking on this
 * thread. Returns the client's first error (0: the server got "hello"). */
static int tunnel_exchange(pt_transport *client, pt_transport *server)
{
    struct iovec iov = {.iov_base = "hello", .iov_len = 5};
    bool sent = false;
    char buf[16];
    for (int i = 0; i < 500; i++) {
        if (!sent) {
            ssize_t n = pt_transport_writev(client, &iov, 1);
            if (n == 5)
                sent = true;
            else if (n != -EAGAIN)
                return (int)n;
        }
        ssize_t r = pt_transport_read(server, buf, sizeof buf);
        if (r == 5 && memcmp(buf, "hello", 5) == 0)
            return 0;
        if (r != -EAGAIN)
            return r < 0 ? (int)r : -EIO;
        if (sent) /* the client reads to finish its side (TLS 1.3 tickets) */
            pt_transport_read(client, buf, sizeof buf);
        poll(NULL, 0, 1);
    }
    return -ETIMEDOUT;
}

typedef struct tls_case {
    const char *name;
    bool verify;
    bool trust; /* the client trusts the test certificate */
    int expect; /* 0, or the client's error */
} tls_case;

static void test_tls_tunnel(void **state)
{
    fixture *f = *state;
    char pem[64];
    snprintf(pem, sizeof pem, "/tmp/porter-test-connector-%d.pem", (int)getpid());
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    make_cert(sctx, pem);
    char err[256];
    SSL_CTX *trusting = pt_tls_client_ctx_new(pem, err, sizeof err);
    assert_non_null(trusting);
    SSL_CTX *system = pt_tls_client_ctx_new(NULL, err, sizeof err);
    assert_non_null(system);
    assert_null(pt_tls_client_ctx_new("/nonexistent/ca.pem", err, sizeof err));
    assert_true(err[0] != '\0');
    uint16_t port;
    int l = listen_on("127.0.0.1", 0, 8, &port);
    new_connector(f);
    const tls_case cases[] = {
        {"localhost", true, true, 0},         /* verified by name, SNI sent */
        {"127.0.0.1", true, true, 0},         /* verified by address */
        {"example.org", true, true, -EPROTO}, /* the wrong name */
        {"localhost", true, false, -EPROTO},  /* not trusted */
        {"localhost", false, false, 0},       /* verification off */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const tls_case *tc = &cases[i];
        connect_name(f, "127.0.0.1", port, 0);
        assert_int_equal(f->status, 0);
        pt_outbound *o = f->o_out;
        struct sockaddr_in peer;
        int s = -1;
        for (int k = 0; k < 100 && s < 0; k++)
            if ((s = accept_one(l, &peer)) < 0)
                poll(NULL, 0, 2);
        assert_true(s >= 0);
        fcntl(s, F_SETFL, O_NONBLOCK);
        pt_transport server;
        assert_int_equal(pt_tls_accept(&server, sctx, s), 0);
        /* The tunnel replaces the TCP transport in place, over the same socket. */
        int fd = o->transport.fd;
        assert_int_equal(pt_tls_wrap_client(&o->transport, tc->trust ? trusting : system, fd,
                                            tc->name, tc->verify),
                         0);
        assert_true(pt_transport_is_tls(&o->transport));
        int r = tunnel_exchange(&o->transport, &server);
        assert_int_equal(r, tc->expect);
        if (r == 0) {
            const char *sni = SSL_get_servername(pt_tls_ssl(&server), TLSEXT_NAMETYPE_host_name);
            if (strcmp(tc->name, "localhost") == 0)
                assert_string_equal(sni, "localhost");
            else
                assert_null(sni); /* never an address */
        } else {
            assert_non_null(strstr(pt_tls_last_error(), "certificate verify failed"));
        }
        pt_transport_close(&server);
        pt_outbound_close(o);
        assert_int_equal(ERR_peek_error(), 0);
    }
    close(l);
    SSL_CTX_free(sctx);
    SSL_CTX_free(trusting);
    SSL_CTX_free(system);
    unlink(pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_error_classes),
        cmocka_unit_test_setup_teardown(test_literal_connects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_address_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_error_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempt_timeout_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overall_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolver_and_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolver_answers_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_getaddrinfo_localhost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_work_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_tunnel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
