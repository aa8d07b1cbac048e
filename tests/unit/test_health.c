/* Active health checks (server/handlers/health.c): the verdict a run of checks gives (fails in a
 * row mark a server down, passes in a row bring it back and start its slow_start), what a status
 * line says, and a checker against servers on loopback that answer well, badly, or not at all. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/handlers/health.c"
#include "tests/support.h"

typedef struct fixture {
    pt_upstream up;
    pt_upstream_peer peers[4];
    pt_peer_state st[4];
    uint32_t conns[4], mine[4];
} fixture;

static void make(fixture *f, size_t n)
{
    memset(f, 0, sizeof *f);
    f->up.peers = f->peers;
    f->up.npeers = n;
    f->up.name = "app";
    for (size_t i = 0; i < n; i++) {
        snprintf(f->peers[i].name, sizeof f->peers[i].name, "10.0.0.%zu:80", i + 1);
        f->peers[i].weight = 1;
        f->peers[i].st = &f->st[i];
        f->peers[i].conns = &f->conns[i];
        f->peers[i].mine = &f->mine[i];
    }
}

static void test_fails_in_a_row_mark_down_and_passes_bring_back(void **state)
{
    fixture f;
    make(&f, 2);
    pt_conf_health_check c = {.on = true, .interval = 1, .timeout = 1, .fails = 2, .passes = 3};
    pt_health_record(&f.up, &c, 0, false, 0, 10);
    assert_int_equal(f.st[0].unhealthy, 0); /* one of two */
    pt_health_record(&f.up, &c, 0, true, 200, 11);
    pt_health_record(&f.up, &c, 0, false, 503, 12);
    assert_int_equal(f.st[0].unhealthy, 0); /* not in a row */
    pt_health_record(&f.up, &c, 0, false, 0, 13);
    assert_int_equal(f.st[0].unhealthy, 1);
    assert_int_equal(f.st[1].unhealthy, 0); /* the other server's own */
    assert_int_equal(f.st[0].checks, 4);
    assert_int_equal(f.st[0].checks_failed, 3);
    assert_int_equal(f.st[0].last_check_status, 0);
    /* while it is down its requests' failures are no matter; coming back clears them */
    f.st[0].fails = 1;
    f.st[0].down_until = 30;
    pt_health_record(&f.up, &c, 0, true, 204, 14);
    pt_health_record(&f.up, &c, 0, true, 204, 15);
    assert_int_equal(f.st[0].unhealthy, 1); /* two of three */
    pt_health_record(&f.up, &c, 0, false, 500, 16);
    pt_health_record(&f.up, &c, 0, true, 204, 17);
    pt_health_record(&f.up, &c, 0, true, 204, 18);
    assert_int_equal(f.st[0].unhealthy, 1); /* the failure started the count again */
    pt_health_record(&f.up, &c, 0, true, 301, 19);
    assert_int_equal(f.st[0].unhealthy, 0);
    assert_true(f.st[0].back_at == 19); /* slow_start ramps from here */
    assert_true(f.st[0].down_until == 0);
    assert_int_equal(f.st[0].fails, 0);
    assert_int_equal(f.st[0].last_check_status, 301);
    /* and the balancer takes it again, ramping */
    f.peers[0].slow_start = 10;
    assert_int_equal(pt_upstream_peer_weight(&f.peers[0], 24), 500);
}

static void test_status_lines(void **state)
{
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\n", 17), 200);
    assert_int_equal(status_of("HTTP/1.0 503 Busy\r\n", 19), 503);
    assert_int_equal(status_of("HTTP/1.1 204\r\n", 14), 204);
    assert_int_equal(status_of("HTTP/1.1 200 OK\r", 16), -1); /* not whole yet */
    assert_int_equal(status_of("HTTP/1.1 2", 10), -1);
    assert_int_equal(status_of("SSH-2.0-OpenSSH\r\n", 17), 0);
    assert_int_equal(status_of("HTTP/2.0 200 OK\r\n", 17), 0);
    assert_int_equal(status_of("HTTP/1.1 20x OK\r\n", 17), 0);
    assert_int_equal(status_of("HTTP/1.1 099 X\r\n", 16), 0);
    assert_int_equal(status_of("HTTP/1.1 2000 OK\r\n", 18), 0);
    char junk[STATUS_LINE_MAX];
    memset(junk, 'x', sizeof junk);
    assert_int_equal(status_of(junk, sizeof junk), 0); /* no line end in a full buffer */
}

/* ---- a checker against real sockets ---- */

/* A listening socket on loopback whose connections the test answers by hand. */
static int listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

typedef struct server server;

/* One connection a server accepted: the check's request is read, then answered (or not). */
typedef struct peer_conn {
    server *s;
    int fd;
    ev_io io;
    char buf[1024];
    size_t len;
} peer_conn;

struct server {
    int fd;
    const char *answer; /* NULL: read the request and say nothing */
    int accepted;
    peer_conn conns[16];
    ev_io io;
    struct ev_loop *loop;
};

static void conn_close(peer_conn *pc)
{
    ev_io_stop(pc->s->loop, &pc->io);
    close(pc->fd);
    pc->fd = -1;
}

static void on_request(struct ev_loop *loop, ev_io *w, int revents)
{
    peer_conn *pc = w->data;
    ssize_t n = read(pc->fd, pc->buf + pc->len, sizeof pc->buf - pc->len);
    if (n <= 0) {
        conn_close(pc);
        return;
    }
    pc->len += (size_t)n;
    if (!memmem(pc->buf, pc->len, "\r\n\r\n", 4))
        return;
    assert_non_null(memmem(pc->buf, pc->len, "GET /ping HTTP/1.1\r\n", 20));
    assert_non_null(memmem(pc->buf, pc->len, "Connection: close\r\n", 19));
    if (pc->s->answer) {
        assert_true(write(pc->fd, pc->s->answer, strlen(pc->s->answer)) > 0);
        conn_close(pc);
    } else {
        ev_io_stop(loop, &pc->io); /* held open, silent */
    }
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    server *s = w->data;
    int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0)
        return;
    if (s->accepted >= 16) {
        close(c);
        return;
    }
    peer_conn *pc = &s->conns[s->accepted++];
    pc->s = s;
    pc->fd = c;
    pc->len = 0;
    ev_io_init(&pc->io, on_request, c, EV_READ);
    pc->io.data = pc;
    ev_io_start(loop, &pc->io);
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void test_a_checker_against_live_servers(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    pt_custodian *root = pt_custodian_new(NULL);
    pt_connector_options co;
    pt_connector_options_init(&co);
    co.custodian = root;
    fixture f;
    make(&f, 3);
    f.up.loop = loop;
    assert_int_equal(pt_connector_new(&f.up.connector, loop, &co), 0);
    server s[3] = {{.answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
                   {.answer = "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"},
                   {.answer = NULL}};
    for (int i = 0; i < 3; i++) {
        uint16_t port;
        s[i].fd = listener(&port);
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
        assert_int_equal(pt_authority_parse(&f.peers[i].authority, addr, strlen(addr), 80), 0);
        ev_io_init(&s[i].io, on_accept, s[i].fd, EV_READ);
        s[i].io.data = &s[i];
        s[i].loop = loop;
        ev_io_start(loop, &s[i].io);
    }
    pt_conf_health_check c = {
        .on = true, .interval = 0.2, .timeout = 0.15, .fails = 1, .passes = 1, .uri = "/ping"};
    pt_health *h;
    assert_int_equal(pt_health_new(&h, &f.up, &c), 0);
    pt_health_start(h);
    ev_timer stop;
    ev_timer_init(&stop, on_stop, 0.5, 0);
    ev_timer_start(loop, &stop);
    ev_run(loop, 0);
    /* rounds at 0, 0.2, 0.4 */
    assert_in_range(f.st[0].checks, 2, 3);
    assert_int_equal(f.st[0].checks_failed, 0);
    assert_int_equal(f.st[0].unhealthy, 0);
    assert_int_equal(f.st[0].last_check_status, 200);
    assert_int_equal(f.st[1].unhealthy, 1); /* an error status */
    assert_int_equal(f.st[1].last_check_status, 503);
    assert_int_equal(f.st[2].unhealthy, 1); /* no answer within the timeout */
    assert_int_equal(f.st[2].last_check_status, 0);
    assert_true(f.st[2].checks_failed >= 2);
    pt_health_free(h);
    ev_io_stop(loop, &s[0].io);
    /* a server that goes away: refused, down at the next check */
    ev_io_stop(loop, &s[1].io);
    ev_io_stop(loop, &s[2].io);
    close(s[0].fd);
    assert_int_equal(pt_health_new(&h, &f.up, &c), 0);
    pt_health_start(h);
    ev_timer_set(&stop, 0.1, 0);
    ev_timer_start(loop, &stop);
    ev_run(loop, 0);
    assert_int_equal(f.st[0].unhealthy, 1);
    pt_health_free(h);
    for (int i = 0; i < 3; i++) {
        if (i)
            close(s[i].fd);
        for (int k = 0; k < s[i].accepted; k++)
            if (s[i].conns[k].fd >= 0)
                conn_close(&s[i].conns[k]);
    }
    pt_connector_free(f.up.connector);
    pt_custodian_shutdown(root);
    pt_custodian_reap();
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_fails_in_a_row_mark_down_and_passes_bring_back),
        NOTHING_LEFT_TEST(test_status_lines),
        NOTHING_LEFT_TEST(test_a_checker_against_live_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
