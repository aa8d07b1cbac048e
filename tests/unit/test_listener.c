#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "listener/listener.h"
#include "tests/support.h"

#define MAX_ACCEPTS 16

/* Per-test state: the loop. */
typedef struct fixture {
    struct ev_loop *loop;
    ev_timer guard;
    bool expired;
} fixture;

/* What one listener's callbacks saw, and what they should do. */
typedef struct sink {
    pt_listener *l;
    int fds[MAX_ACCEPTS];
    struct sockaddr_storage peers[MAX_ACCEPTS];
    socklen_t peerlens[MAX_ACCEPTS];
    int accepted;
    int errors;
    int last_err;
    bool close_on_accept;
    bool pause_on_accept;
    bool close_on_error;
} sink;

static struct rlimit saved_nofile;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    nothing_left_begin();
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    struct ev_loop *loop = f->loop;
    setrlimit(RLIMIT_NOFILE, &saved_nofile);
    free(f);
    assert_nothing_left(loop);
    return 0;
}

static void sink_close_fds(sink *s)
{
    for (int i = 0; i < s->accepted; i++)
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    s->accepted = 0;
}

static void on_accept(pt_listener *l, int fd, const struct sockaddr *peer, socklen_t peerlen,
                      void *data)
{
    sink *s = data;
    assert_ptr_equal(l, s->l);
    assert_true(s->accepted < MAX_ACCEPTS);
    assert_true(peerlen <= sizeof s->peers[0]);
    s->fds[s->accepted] = fd;
    memcpy(&s->peers[s->accepted], peer, peerlen);
    s->peerlens[s->accepted] = peerlen;
    s->accepted++;
    if (s->pause_on_accept)
        pt_listener_pause(l);
    if (s->close_on_accept) {
        pt_listener_close(l);
        pt_listener_close(l); /* closing twice inside the callback is a no-op */
        s->l = NULL;
    }
}

static void on_error(pt_listener *l, int err, void *data)
{
    sink *s = data;
    assert_ptr_equal(l, s->l);
    s->errors++;
    s->last_err = err;
    if (s->close_on_error) {
        pt_listener_close(l);
        s->l = NULL;
    }
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
    fixture *f = w->data;
    f->expired = true;
    ev_break(loop, EVBREAK_ONE);
}

static void guard_start(fixture *f, double secs)
{
    f->expired = false;
    ev_timer_init(&f->guard, on_guard, secs, 0.);
    f->guard.data = f;
    ev_timer_start(f->loop, &f->guard);
}

/* Runs the loop until *counter >= want, for at most `secs`. */
static void run_until(fixture *f, const int *counter, int want, double secs)
{
    guard_start(f, secs);
    while (*counter < want && !f->expired)
        ev_run(f->loop, EVRUN_ONCE);
    ev_timer_stop(f->loop, &f->guard);
    assert_true(*counter >= want);
}

/* Runs the loop for `secs`. */
static void run_for(fixture *f, double secs)
{
    guard_start(f, secs);
    while (!f->expired)
        ev_run(f->loop, EVRUN_ONCE);
}

static int client_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    return fd;
}

static int client_connect(int fd, const char *addr, int port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (strchr(addr, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
        len = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
        len = sizeof *in;
    }
    return connect(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : -errno;
}

/* A connected client socket (the kernel completes the handshake into the backlog). */
static int client_open(const char *addr, int port)
{
    int fd = client_socket(strchr(addr, ':') != NULL ? AF_INET6 : AF_INET);
    assert_int_equal(client_connect(fd, addr, port), 0);
    return fd;
}

/* The kernel has IPv6 sockets (it may still have no usable IPv6 address). */
static bool have_ipv6_sockets(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&in6, sizeof in6) == 0;
    close(fd);
    return ok;
}

static bool nonlocal_bind_allowed(void)
{
    FILE *fp = fopen("/proc/sys/net/ipv4/ip_nonlocal_bind", "re");
    int v = 0;
    if (fp != NULL) {
        if (fscanf(fp, "%d", &v) != 1)
            v = 0;
        fclose(fp);
    }
    return v != 0;
}

static pt_listener_options options(const char *host, const char *port)
{
    pt_listener_options o;
    pt_listener_options_init(&o);
    o.host = host;
    o.port = port;
    return o;
}

static pt_listener *open_ok(fixture *f, sink *s, const pt_listener_options *o)
{
    pt_listener *l = NULL;
    int rc = pt_listener_open(&l, f->loop, o, on_accept, on_error, s);
    if (rc != 0)
        fprintf(stderr, "open %s:%s: %s\n", o->host ? o->host : "(all)", o->port, strerror(-rc));
    assert_int_equal(rc, 0);
    assert_non_null(l);
    s->l = l;
    return l;
}

static void assert_fd_flags(int fd)
{
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void assert_same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    char x[PT_SOCKADDR_STRLEN], y[PT_SOCKADDR_STRLEN];
    assert_int_equal(pt_sockaddr_format((const struct sockaddr *)a, x, sizeof x), 0);
    assert_int_equal(pt_sockaddr_format(b, y, sizeof y), 0);
    assert_string_equal(x, y);
}

static void test_options(void **state)
{
    fixture *f = *state;
    sink s = {0};
    pt_listener_options o;
    pt_listener *l = (pt_listener *)&s;

    pt_listener_options_init(&o);
    assert_null(o.host);
    assert_null(o.port);
    assert_int_equal(o.backlog, 511);
    assert_true(o.reuseaddr);
    assert_false(o.reuseport);
    assert_int_equal(o.accept_batch, 64);
    assert_true(o.emfile_backoff > 0.09 && o.emfile_backoff < 0.11);

    /* The port is required. */
    assert_int_equal(pt_listener_open(&l, f->loop, &o, on_accept, NULL, &s), -EINVAL);
    assert_null(l);

    o = options("127.0.0.1", "0");
    assert_int_equal(pt_listener_open(&l, f->loop, &o, NULL, NULL, &s), -EINVAL);
    o.accept_batch = 0;
    assert_int_equal(pt_listener_open(&l, f->loop, &o, on_accept, NULL, &s), -EINVAL);
    o = options("127.0.0.1", "0");
    o.emfile_backoff = 0;
    assert_int_equal(pt_listener_open(&l, f->loop, &o, on_accept, NULL, &s), -EINVAL);
    o = options("127.0.0.1", "65536");
    assert_int_equal(pt_listener_open(&l, f->loop, &o, on_accept, NULL, &s), -EINVAL);
    o = options("127.0.0.1", "no-such-service-porter");
    assert_int_equal(pt_listener_open(&l, f->loop, &o, on_accept, NULL, &s), -EINVAL);
    o = options("[::1", "0");
    assert_int_equal(pt_listener_open(&l, f->loop, &o, on_accept, NULL, &s), -EADDRNOTAVAIL);
    /* An address that is not on this host cannot be bound (unless the host allows it). */
    if (!nonlocal_bind_allowed()) {
        o = options("192.0.2.1", "0");
        assert_int_equal(pt_listener_open(&l, f->loop, &o, on_accept, NULL, &s), -EADDRNOTAVAIL);
        assert_null(l);
    }

    pt_listener_close(NULL);
}

static void test_ipv4_ephemeral_accept(void **state)
{
    fixture *f = *state;
    sink s = {0};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *l = open_ok(f, &s, &o);

    struct sockaddr_storage addrs[4];
    assert_int_equal(pt_listener_addresses(l, addrs, 4), 1);
    assert_int_equal(addrs[0].ss_family, AF_INET);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&addrs[0];
    assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
    int port = ntohs(in->sin_port);
    assert_true(port > 0);
    assert_int_equal(pt_listener_port(l), port);

    int lfd = -1;
    assert_int_equal(pt_listener_fds(l, &lfd, 1), 1);
    assert_fd_flags(lfd);
    assert_int_equal(pt_listener_fds(l, NULL, 0), 1);

    /* Not started: nothing accepted, the connection waits. */
    assert_false(pt_listener_accept_ready(l));
    int c = client_open("127.0.0.1", port);
    run_for(f, 0.05);
    assert_int_equal(s.accepted, 0);
    assert_true(pt_listener_accept_ready(l));

    pt_listener_start(l);
    pt_listener_start(l);
    run_until(f, &s.accepted, 1, 2.0);
    assert_false(pt_listener_accept_ready(l));
    assert_fd_flags(s.fds[0]);

    /* The peer is the client's own address. */
    struct sockaddr_storage local;
    socklen_t locallen = sizeof local;
    assert_int_equal(getsockname(c, (struct sockaddr *)&local, &locallen), 0);
    assert_int_equal(s.peerlens[0], locallen);
    assert_same_sockaddr(&s.peers[0], (struct sockaddr *)&local);

    /* The accepted fd really is the other end. */
    assert_int_equal(write(c, "x", 1), 1);
    char b = 0;
    fcntl(s.fds[0], F_SETFL, fcntl(s.fds[0], F_GETFL) & ~O_NONBLOCK);
    assert_int_equal(read(s.fds[0], &b, 1), 1);
    assert_int_equal(b, 'x');

    close(c);
    sink_close_fds(&s);
    pt_listener_close(l);
}

static void test_ipv6_loopback(void **state)
{
    fixture *f = *state;
    if (!have_ipv6_loopback()) {
        print_message("no IPv6 loopback in this kernel: skipped\n");
        skip();
    }
    sink s = {0};
    pt_listener_options o = options("[::1]", "0");
    pt_listener *l = open_ok(f, &s, &o);

    struct sockaddr_storage a;
    assert_int_equal(pt_listener_addresses(l, &a, 1), 1);
    assert_int_equal(a.ss_family, AF_INET6);
    char text[PT_SOCKADDR_STRLEN], want[PT_SOCKADDR_STRLEN];
    assert_int_equal(pt_sockaddr_format((struct sockaddr *)&a, text, sizeof text), 0);
    snprintf(want, sizeof want, "[::1]:%d", pt_listener_port(l));
    assert_string_equal(text, want);

    pt_listener_start(l);
    int c = client_open("::1", pt_listener_port(l));
    run_until(f, &s.accepted, 1, 2.0);
    assert_int_equal(s.peers[0].ss_family, AF_INET6);
    struct sockaddr_storage local;
    socklen_t locallen = sizeof local;
    assert_int_equal(getsockname(c, (struct sockaddr *)&local, &locallen), 0);
    assert_same_sockaddr(&s.peers[0], (struct sockaddr *)&local);

    close(c);
    sink_close_fds(&s);
    pt_listener_close(l);
}

static void test_wildcard_both_families(void **state)
{
    fixture *f = *state;
    /* [::] binds wherever the kernel has IPv6; connecting to it needs ::1 as well. */
    bool v6 = have_ipv6_sockets();
    bool v6_connect = have_ipv6_loopback();
    sink s = {0};
    pt_listener_options o = options(NULL, "0");
    pt_listener *l = open_ok(f, &s, &o);

    struct sockaddr_storage a[4];
    size_t n = pt_listener_addresses(l, a, 4);
    assert_int_equal(n, v6 ? 2 : 1);
    int port = pt_listener_port(l);
    assert_true(port > 0);
    bool seen4 = false, seen6 = false;
    for (size_t i = 0; i < n; i++) {
        if (a[i].ss_family == AF_INET) {
            seen4 = true;
            assert_int_equal(((struct sockaddr_in *)&a[i])->sin_addr.s_addr, htonl(INADDR_ANY));
            assert_int_equal(ntohs(((struct sockaddr_in *)&a[i])->sin_port), port);
        } else {
            assert_int_equal(a[i].ss_family, AF_INET6);
            seen6 = true;
            assert_true(IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&a[i])->sin6_addr));
            assert_int_equal(ntohs(((struct sockaddr_in6 *)&a[i])->sin6_port), port);
        }
    }
    assert_true(seen4);
    assert_int_equal(seen6, v6);

    pt_listener_start(l);
    int c4 = client_open("127.0.0.1", port);
    int c6 = v6_connect ? client_open("::1", port) : -1;
    run_until(f, &s.accepted, v6_connect ? 2 : 1, 2.0);
    bool peer4 = false, peer6 = false;
    for (int i = 0; i < s.accepted; i++) {
        peer4 |= s.peers[i].ss_family == AF_INET;
        peer6 |= s.peers[i].ss_family == AF_INET6;
    }
    assert_true(peer4);
    assert_int_equal(peer6, v6_connect);

    close(c4);
    if (c6 >= 0)
        close(c6);
    sink_close_fds(&s);
    pt_listener_close(l);
}

static void test_v4_and_v6_wildcards_coexist(void **state)
{
    fixture *f = *state;
    if (!have_ipv6_loopback()) {
        print_message("no IPv6 loopback in this kernel: skipped\n");
        skip();
    }
    sink s4 = {0}, s6 = {0};
    pt_listener_options o = options("0.0.0.0", "0");
    pt_listener *l4 = open_ok(f, &s4, &o);
    char port[8];
    snprintf(port, sizeof port, "%d", pt_listener_port(l4));
    o = options("[::]", port);
    pt_listener *l6 = open_ok(f, &s6, &o);
    assert_int_equal(pt_listener_port(l6), pt_listener_port(l4));
    assert_int_equal(pt_listener_addresses(l6, NULL, 0), 1);

    pt_listener_start(l4);
    pt_listener_start(l6);
    int c4 = client_open("127.0.0.1", atoi(port));
    int c6 = client_open("::1", atoi(port));
    run_until(f, &s4.accepted, 1, 2.0);
    run_until(f, &s6.accepted, 1, 2.0);
    assert_int_equal(s4.peers[0].ss_family, AF_INET);
    assert_int_equal(s6.peers[0].ss_family, AF_INET6);

    close(c4);
    close(c6);
    sink_close_fds(&s4);
    sink_close_fds(&s6);
    pt_listener_close(l4);
    pt_listener_close(l6);
}

static void test_localhost_name(void **state)
{
    fixture *f = *state;
    sink s = {0};
    pt_listener_options o = options("localhost", "0");
    pt_listener *l = open_ok(f, &s, &o);

    struct sockaddr_storage a[8];
    size_t n = pt_listener_addresses(l, a, 8);
    assert_true(n >= 1 && n <= 8);
    bool has_v4 = false;
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage x = a[i];
        if (x.ss_family == AF_INET)
            has_v4 |= ntohl(((struct sockaddr_in *)&x)->sin_addr.s_addr) == INADDR_LOOPBACK;
        /* Every socket shares the first one's ephemeral port. */
        char text[PT_SOCKADDR_STRLEN];
        assert_int_equal(pt_sockaddr_format((struct sockaddr *)&x, text, sizeof text), 0);
        char want[16];
        snprintf(want, sizeof want, ":%d", pt_listener_port(l));
        assert_string_equal(text + strlen(text) - strlen(want), want);
    }
    assert_true(has_v4);

    pt_listener_start(l);
    int c = client_open("127.0.0.1", pt_listener_port(l));
    run_until(f, &s.accepted, 1, 2.0);

    close(c);
    sink_close_fds(&s);
    pt_listener_close(l);
}

static void test_addrinuse_and_reuseport(void **state)
{
    fixture *f = *state;
    sink s = {0}, s2 = {0};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *l = open_ok(f, &s, &o);
    char port[8];
    snprintf(port, sizeof port, "%d", pt_listener_port(l));
    int fds = count_fds();

    pt_listener *l2 = (pt_listener *)&s2;
    o = options("127.0.0.1", port);
    assert_int_equal(pt_listener_open(&l2, f->loop, &o, on_accept, NULL, &s2), -EADDRINUSE);
    assert_null(l2);
    /* All addresses: whichever family is bound first is closed again when 0.0.0.0 fails. */
    o = options(NULL, port);
    assert_int_equal(pt_listener_open(&l2, f->loop, &o, on_accept, NULL, &s2), -EADDRINUSE);
    assert_null(l2);
    assert_int_equal(count_fds(), fds);
    pt_listener_close(l);

    /* SO_REUSEPORT on both: two listeners share the port (one per worker). */
    o = options("127.0.0.1", "0");
    o.reuseport = true;
    l = open_ok(f, &s, &o);
    snprintf(port, sizeof port, "%d", pt_listener_port(l));
    o.port = port;
    l2 = open_ok(f, &s2, &o);
    assert_int_equal(pt_listener_port(l2), pt_listener_port(l));
    /* ... but not with a third that did not ask for it. */
    pt_listener *l3 = NULL;
    o.reuseport = false;
    assert_int_equal(pt_listener_open(&l3, f->loop, &o, on_accept, NULL, &s2), -EADDRINUSE);

    pt_listener_start(l);
    pt_listener_start(l2);
    int c = client_open("127.0.0.1", atoi(port));
    guard_start(f, 2.0);
    while (s.accepted + s2.accepted < 1 && !f->expired)
        ev_run(f->loop, EVRUN_ONCE);
    ev_timer_stop(f->loop, &f->guard);
    assert_int_equal(s.accepted + s2.accepted, 1);

    close(c);
    sink_close_fds(&s);
    sink_close_fds(&s2);
    pt_listener_close(l);
    pt_listener_close(l2);
}

/* TCP_NOTSENT_LOWAT: set on the listening socket, so accepted connections have it from their
 * first byte, without a system call each; a reload's change reaches the connections after it. */
static void test_notsent_lowat(void **state)
{
    fixture *f = *state;
    sink s = {0};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *l = NULL;
    o.notsent_lowat = -1;
    assert_int_equal(pt_listener_open(&l, f->loop, &o, on_accept, NULL, &s), -EINVAL);
    o.notsent_lowat = 16384;
    l = open_ok(f, &s, &o);
    pt_listener_start(l);
    int v = 0;
    socklen_t vlen = sizeof v;

    int c = client_open("127.0.0.1", pt_listener_port(l));
    run_until(f, &s.accepted, 1, 2.0);
    assert_int_equal(getsockopt(s.fds[0], IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &vlen), 0);
    assert_int_equal(v, 16384);

    assert_int_equal(pt_listener_set_notsent_lowat(l, -1), -EINVAL);
    assert_int_equal(pt_listener_set_notsent_lowat(l, 0), 0); /* the kernel's default */
    int c2 = client_open("127.0.0.1", pt_listener_port(l));
    run_until(f, &s.accepted, 2, 2.0);
    assert_int_equal(getsockopt(s.fds[1], IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &vlen), 0);
    assert_int_equal(v, 0);
    /* the connection accepted before keeps what it had */
    assert_int_equal(getsockopt(s.fds[0], IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &vlen), 0);
    assert_int_equal(v, 16384);

    close(c);
    close(c2);
    sink_close_fds(&s);
    pt_listener_close(l);
}

/* TCP_DEFER_ACCEPT: a client that has connected but sent nothing is not accepted (no wake-up
 * for it); its first bytes bring it in, with them already readable. */
static void test_defer_accept(void **state)
{
    fixture *f = *state;
    sink s = {0};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *l = NULL;
    o.defer_accept = -1;
    assert_int_equal(pt_listener_open(&l, f->loop, &o, on_accept, NULL, &s), -EINVAL);
    o.defer_accept = 1;
    l = open_ok(f, &s, &o);
    int lfd = -1, v = 0;
    socklen_t vlen = sizeof v;
    assert_int_equal(pt_listener_fds(l, &lfd, 1), 1);
    assert_int_equal(getsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &vlen), 0);
    assert_true(v > 0);
    /* Changed on an open listener (a reload that takes the sockets over). */
    assert_int_equal(pt_listener_set_defer_accept(l, -1), -EINVAL);
    assert_int_equal(pt_listener_set_defer_accept(l, 0), 0);
    assert_int_equal(getsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &vlen), 0);
    assert_int_equal(v, 0);
    assert_int_equal(pt_listener_set_defer_accept(l, 1), 0);
    assert_int_equal(getsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &vlen), 0);
    assert_true(v > 0);
    pt_listener_start(l);

    int c = client_open("127.0.0.1", pt_listener_port(l));
    run_for(f, 0.3);
    assert_int_equal(s.accepted, 0);
    assert_int_equal(write(c, "GET", 3), 3);
    run_until(f, &s.accepted, 1, 2.0);
    char b[4] = "";
    assert_int_equal(read(s.fds[0], b, sizeof b), 3); /* no wait for the data */
    assert_memory_equal(b, "GET", 3);

    close(c);
    sink_close_fds(&s);
    pt_listener_close(l);
}

/* A binary upgrade: sockets bound by another process are taken by address, not bound again, so
 * a client connecting meanwhile is accepted by one or the other, never refused. */
static void test_adopt(void **state)
{
    fixture *f = *state;
    sink s1 = {0}, s2 = {0};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *old = open_ok(f, &s1, &o);
    int port = pt_listener_port(old);
    int lfd = -1;
    assert_int_equal(pt_listener_fds(old, &lfd, 1), 1);
    /* what the new executable inherits: the same socket, another descriptor; and a socket
     * bound elsewhere, which is not taken */
    int other = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(other, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(other, 1), 0);
    int fds[2] = {other, dup(lfd)};
    int inherited = fds[1];

    /* another address: nothing taken, nothing opened */
    pt_listener *l = (pt_listener *)&s2;
    pt_listener_options x = options("127.0.0.2", "0");
    assert_int_equal(pt_listener_adopt(&l, f->loop, &x, fds, 2, on_accept, NULL, &s2), -ENOENT);
    assert_null(l);
    assert_int_equal(fds[1], inherited);

    /* by its port, and with port 0 (any port of the address): the socket itself */
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    o = options("127.0.0.1", p);
    o.backlog = 7;
    o.defer_accept = 1;
    l = NULL;
    assert_int_equal(pt_listener_adopt(&l, f->loop, &o, fds, 2, on_accept, NULL, &s2), 0);
    s2.l = l;
    assert_int_equal(fds[0], other); /* another address: left where it was */
    assert_int_equal(fds[1], -1);
    int got = -1;
    assert_int_equal(pt_listener_fds(l, &got, 1), 1);
    assert_int_equal(got, inherited);
    assert_int_equal(pt_listener_port(l), port);
    assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
    int v = 0;
    socklen_t vlen = sizeof v;
    assert_int_equal(getsockopt(got, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &vlen), 0);
    assert_true(v > 0); /* the options of the new conf apply */

    /* the old listener closes: a client connecting now is accepted by the new one */
    pt_listener_close(old);
    pt_listener_start(l);
    int c = client_open("127.0.0.1", port);
    assert_int_equal(write(c, "x", 1), 1);
    run_until(f, &s2.accepted, 1, 2.0);
    close(c);
    sink_close_fds(&s2);
    pt_listener_close(l);

    /* port 0 takes the address's socket whatever its port */
    int again = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(again, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(again, 1), 0);
    int fds2[1] = {again};
    o = options("127.0.0.1", "0");
    l = NULL;
    assert_int_equal(pt_listener_adopt(&l, f->loop, &o, fds2, 1, on_accept, NULL, &s2), 0);
    assert_int_equal(fds2[0], -1);
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    assert_int_equal(getsockname(again, (struct sockaddr *)&bound, &blen), 0);
    assert_int_equal(pt_listener_port(l), ntohs(bound.sin_port));
    pt_listener_close(l);
    close(other);
}

static void test_pause_keeps_backlog(void **state)
{
    fixture *f = *state;
    sink s = {0};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *l = open_ok(f, &s, &o);

    /* Paused before start: start does not accept. */
    pt_listener_pause(l);
    pt_listener_start(l);
    assert_true(pt_listener_is_paused(l));
    int c1 = client_open("127.0.0.1", pt_listener_port(l));
    run_for(f, 0.05);
    assert_int_equal(s.accepted, 0);
    assert_true(pt_listener_accept_ready(l));
    /* Paused, the listener holds no active watcher. */
    assert_int_equal(ev_run(f->loop, EVRUN_NOWAIT), 0);

    pt_listener_resume(l);
    assert_false(pt_listener_is_paused(l));
    run_until(f, &s.accepted, 1, 2.0);
    assert_false(pt_listener_accept_ready(l));

    /* Paused after start. */
    pt_listener_pause(l);
    pt_listener_pause(l);
    int c2 = client_open("127.0.0.1", pt_listener_port(l));
    run_for(f, 0.05);
    assert_int_equal(s.accepted, 1);
    assert_true(pt_listener_accept_ready(l));
    pt_listener_resume(l);
    pt_listener_resume(l);
    run_until(f, &s.accepted, 2, 2.0);

    close(c1);
    close(c2);
    sink_close_fds(&s);
    pt_listener_close(l);
}

static void test_pause_inside_callback(void **state)
{
    fixture *f = *state;
    sink s = {.pause_on_accept = true};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *l = open_ok(f, &s, &o);
    pt_listener_start(l);

    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = client_open("127.0.0.1", pt_listener_port(l));
    run_until(f, &s.accepted, 1, 2.0);
    run_for(f, 0.05);
    /* The batch stopped at the pause. */
    assert_int_equal(s.accepted, 1);
    assert_true(pt_listener_is_paused(l));
    assert_true(pt_listener_accept_ready(l));

    s.pause_on_accept = false;
    pt_listener_resume(l);
    run_until(f, &s.accepted, 3, 2.0);

    for (int i = 0; i < 3; i++)
        close(c[i]);
    sink_close_fds(&s);
    pt_listener_close(l);
}

static void test_close_inside_callback(void **state)
{
    fixture *f = *state;
    sink s = {.close_on_accept = true};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *l = open_ok(f, &s, &o);
    pt_listener_start(l);

    int port = pt_listener_port(l);
    int c1 = client_open("127.0.0.1", port);
    int c2 = client_open("127.0.0.1", port);
    run_until(f, &s.accepted, 1, 2.0);
    /* Closed: the batch stopped (and the test's end finds nothing of it on the loop). */
    assert_null(s.l);
    assert_int_equal(s.accepted, 1);
    /* The listening socket is gone: new connections are refused. */
    int c3 = client_socket(AF_INET);
    assert_int_equal(client_connect(c3, "127.0.0.1", port), -ECONNREFUSED);

    close(c1);
    close(c2);
    close(c3);
    sink_close_fds(&s);
}

static void test_accept_batch(void **state)
{
    fixture *f = *state;
    sink s = {0}, s1 = {0};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *l = open_ok(f, &s, &o);
    o.accept_batch = 1;
    pt_listener *l1 = open_ok(f, &s1, &o);

    int c[6];
    for (int i = 0; i < 3; i++) {
        c[i] = client_open("127.0.0.1", pt_listener_port(l));
        c[i + 3] = client_open("127.0.0.1", pt_listener_port(l1));
    }
    run_for(f, 0.02); /* let the handshakes land in the backlogs */
    pt_listener_start(l);
    pt_listener_start(l1);
    /* One readiness event: the default batch drains the backlog, a batch of 1 takes one. */
    ev_run(f->loop, EVRUN_ONCE);
    assert_int_equal(s.accepted, 3);
    assert_int_equal(s1.accepted, 1);
    run_until(f, &s1.accepted, 3, 2.0);

    for (int i = 0; i < 6; i++)
        close(c[i]);
    sink_close_fds(&s);
    sink_close_fds(&s1);
    pt_listener_close(l);
    pt_listener_close(l1);
}

/* Lowers the soft RLIMIT_NOFILE so that exactly `k` more fds can be opened. */
static void leave_fds(int k)
{
    enum { MAXFD = 4096 };
    static bool used[MAXFD];
    memset(used, 0, sizeof used);
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        assert_true(fd < MAXFD);
        if (fd != dirfd(d))
            used[fd] = true;
    }
    closedir(d);
    int limit = 0;
    for (int free_seen = 0;; limit++) {
        assert_true(limit < MAXFD);
        if (!used[limit]) {
            if (free_seen == k)
                break;
            free_seen++;
        }
    }
    struct rlimit r = saved_nofile;
    r.rlim_cur = (rlim_t)limit;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &r), 0);
}

static void test_emfile_backoff(void **state)
{
    fixture *f = *state;
    sink s = {0};
    pt_listener_options o = options("127.0.0.1", "0");
    o.emfile_backoff = 0.1;
    pt_listener *l = open_ok(f, &s, &o);
    pt_listener_start(l);
    int port = pt_listener_port(l);

    /* Client sockets exist before the limit drops; connect() takes no new fd. */
    int c[4];
    for (int i = 0; i < 4; i++)
        c[i] = client_socket(AF_INET);
    leave_fds(2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(client_connect(c[i], "127.0.0.1", port), 0);

    /* Two accepted, the third hits EMFILE and waits in the backlog. */
    run_until(f, &s.errors, 1, 2.0);
    assert_int_equal(s.accepted, 2);
    assert_int_equal(s.last_err, EMFILE);
    assert_true(pt_listener_accept_ready(l));

    /* A pause/resume by the caller during the backoff must not restart accepting early. */
    pt_listener_pause(l);
    pt_listener_resume(l);

    /* No busy loop while the fd table stays full: a few retries, one report. */
    unsigned before = ev_iteration(f->loop);
    run_for(f, 0.3);
    unsigned iterations = ev_iteration(f->loop) - before;
    assert_true(iterations < 40);
    assert_int_equal(s.errors, 1);
    assert_int_equal(s.accepted, 2);

    /* One fd freed: the waiting connection is accepted after the backoff. */
    close(s.fds[0]);
    s.fds[0] = -1;
    run_until(f, &s.accepted, 3, 2.0);
    assert_int_equal(s.errors, 1);

    /* Full again: a new episode is reported again. */
    assert_int_equal(client_connect(c[3], "127.0.0.1", port), 0);
    run_until(f, &s.errors, 2, 2.0);
    assert_int_equal(s.accepted, 3);

    /* Limit back: the last one gets in. */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
    run_until(f, &s.accepted, 4, 2.0);
    assert_int_equal(s.errors, 2);

    for (int i = 0; i < 4; i++)
        close(c[i]);
    sink_close_fds(&s);
    pt_listener_close(l);
}

static void test_close_inside_error_callback(void **state)
{
    fixture *f = *state;
    sink s = {.close_on_error = true};
    pt_listener_options o = options("127.0.0.1", "0");
    pt_listener *l = open_ok(f, &s, &o);
    pt_listener_start(l);
    int c = client_socket(AF_INET);
    leave_fds(0);
    assert_int_equal(client_connect(c, "127.0.0.1", pt_listener_port(l)), 0);
    run_until(f, &s.errors, 1, 2.0);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
    assert_null(s.l);
    assert_int_equal(s.accepted, 0);
    /* Closed from the error callback: no backoff timer (the test's end finds no watcher). */
    close(c);
}

static void test_sockaddr_format(void **state)
{
    char buf[PT_SOCKADDR_STRLEN];
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    assert_int_equal(pt_sockaddr_format((struct sockaddr *)&in, buf, sizeof buf), 0);
    assert_string_equal(buf, "127.0.0.1:8080");
    /* Too small by one: the NUL does not fit. */
    assert_int_equal(pt_sockaddr_format((struct sockaddr *)&in, buf, 14), -ENOSPC);
    assert_int_equal(pt_sockaddr_format((struct sockaddr *)&in, buf, 15), 0);

    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    assert_int_equal(pt_sockaddr_format((struct sockaddr *)&in6, buf, sizeof buf), 0);
    assert_string_equal(buf, "[::1]:443");
    inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
    in6.sin6_scope_id = 4000000000u; /* no such interface: the index itself */
    assert_int_equal(pt_sockaddr_format((struct sockaddr *)&in6, buf, sizeof buf), 0);
    assert_string_equal(buf, "[fe80::1%4000000000]:443");
    /* The longest form fits PT_SOCKADDR_STRLEN. */
    inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &in6.sin6_addr);
    in6.sin6_port = htons(65535);
    assert_int_equal(pt_sockaddr_format((struct sockaddr *)&in6, buf, sizeof buf), 0);

    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(pt_sockaddr_format(&un, buf, sizeof buf), -EAFNOSUPPORT);
}

static int group_setup(void **state)
{
    if (getrlimit(RLIMIT_NOFILE, &saved_nofile) != 0)
        return -1;
    /* Let libc load its resolver modules once, so that per-test fd counts are stable. */
    struct addrinfo *res = NULL;
    if (getaddrinfo("localhost", "80", NULL, &res) == 0)
        freeaddrinfo(res);
    getservbyname("http", "tcp");
    endservent();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv4_ephemeral_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wildcard_both_families, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v4_and_v6_wildcards_coexist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_localhost_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addrinuse_and_reuseport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notsent_lowat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_keeps_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emfile_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_error_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sockaddr_format, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
