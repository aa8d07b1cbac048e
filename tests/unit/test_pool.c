/*
 * The transport pool on real loopback sockets: reuse, fresh-only, a dead idle transport is
 * discarded (closed by the peer, or unexpected bytes), idle timeout, max requests, the idle
 * cap, idle transports dropped by their address, and shutdown. Every test ends with no live
 * custodian, no armed timer, no active watcher and no leaked fd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/connector.h"
#include "connmgr/limits.h"
#include "connmgr/pool.h"
#include "connmgr/timer.h"
#include "tests/support.h"

#define MAX_SERVER 8

typedef struct fixture {
    struct ev_loop *loop;
    pt_connector *c;
    pt_pool *p;
    pt_pool_options po;
    pt_authority authority;
    int listener;
    int server[MAX_SERVER]; /* the far ends, in accept order */
    int nserver;
    int calls, status;
    pt_outbound *got;
} fixture;

static void on_connected(pt_outbound *o, int status, void *data)
{
    fixture *f = data;
    f->calls++;
    f->status = status;
    f->got = o;
}

static void run_for(fixture *f, double secs)
{
    ev_now_update(f->loop);
    double end = ev_now(f->loop) + secs;
    while (ev_now(f->loop) < end) {
        ev_run(f->loop, EVRUN_ONCE | EVRUN_NOWAIT);
        poll(NULL, 0, 2);
        ev_now_update(f->loop);
    }
}

static void accept_pending(fixture *f)
{
    int s;
    while (f->nserver < MAX_SERVER && (s = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        f->server[f->nserver++] = s;
}

/* A fresh transport from the pool, and its far end accepted. */
static pt_outbound *fresh(fixture *f)
{
    f->calls = 0;
    assert_int_equal(pt_pool_connect(f->p, 0, on_connected, f, NULL), 0);
    ev_now_update(f->loop);
    double end = ev_now(f->loop) + 5;
    while (f->calls == 0 && ev_now(f->loop) < end) {
        ev_run(f->loop, EVRUN_ONCE | EVRUN_NOWAIT);
        poll(NULL, 0, 1);
        ev_now_update(f->loop);
    }
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->status, 0);
    int before = f->nserver;
    for (int i = 0; i < 100 && f->nserver == before; i++) {
        accept_pending(f);
        if (f->nserver == before)
            poll(NULL, 0, 2);
    }
    assert_int_equal(f->nserver, before + 1);
    return f->got;
}

/* Whether the far end `i` sees its connection closed (a reset too: a transport closed with
 * unread input in it resets). */
static bool server_sees_close(fixture *f, int i)
{
    struct pollfd p = {.fd = f->server[i], .events = POLLIN};
    char b;
    if (poll(&p, 1, 1000) != 1)
        return false;
    ssize_t n = recv(f->server[i], &b, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void make_pool(fixture *f)
{
    assert_int_equal(pt_pool_new(&f->p, f->c, &f->authority, &f->po), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    nothing_left_begin();
    f->loop = ev_loop_new(EVFLAG_AUTO);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    f->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(f->listener, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->listener, 16), 0);
    assert_int_equal(getsockname(f->listener, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(pt_authority_set(&f->authority, "127.0.0.1", ntohs(a.sin_port)), 0);
    pt_connector_options co;
    pt_connector_options_init(&co);
    assert_int_equal(pt_connector_new(&f->c, f->loop, &co), 0);
    pt_pool_options_init(&f->po);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pt_pool_free(f->p);
    assert_int_equal(pt_connector_open_count(f->c), 0);
    pt_connector_free(f->c);
    pt_custodian_reap();
    for (int i = 0; i < f->nserver; i++)
        close(f->server[i]);
    close(f->listener);
    struct ev_loop *loop = f->loop;
    free(f);
    assert_int_equal(pt_timer_armed_count(), 0);
    assert_nothing_left(loop);
    return 0;
}

/* ---- tests ---- */

static void test_reuse(void **state)
{
    fixture *f = *state;
    make_pool(f);
    assert_null(pt_pool_take(f->p)); /* nothing idle yet */
    pt_outbound *o = fresh(f);
    pt_pool_give_back(f->p, o);
    assert_int_equal(pt_pool_idle_count(f->p), 1);
    /* An idle transport does not keep the loop running. */
    assert_false(ev_run(f->loop, EVRUN_NOWAIT));
    assert_ptr_equal(pt_pool_take(f->p), o);
    assert_int_equal(pt_pool_idle_count(f->p), 0);
    assert_int_equal(o->requests, 1);
    /* The same connection carries the next exchange. */
    struct iovec iov = {.iov_base = "x", .iov_len = 1};
    assert_int_equal(pt_transport_writev(&o->transport, &iov, 1), 1);
    char b;
    assert_int_equal(read(f->server[0], &b, 1), 1);
    pt_pool_give_back(f->p, o);
    assert_int_equal(o->requests, 2);
    run_for(f, 0.05);
    assert_int_equal(pt_pool_idle_count(f->p), 1);
    assert_int_equal(f->nserver, 1);
}

/* Asking for a fresh transport opens a new one even with one idle; the most recently given
 * back is taken first. */
static void test_fresh_and_lifo(void **state)
{
    fixture *f = *state;
    make_pool(f);
    pt_outbound *a = fresh(f);
    pt_pool_give_back(f->p, a);
    pt_outbound *b = fresh(f);
    assert_ptr_not_equal(a, b);
    assert_int_equal(b->requests, 0);
    assert_int_equal(f->nserver, 2);
    pt_pool_give_back(f->p, b);
    assert_ptr_equal(pt_pool_take(f->p), b);
    assert_ptr_equal(pt_pool_take(f->p), a);
    pt_outbound_close(a);
    pt_outbound_close(b);
    assert_true(server_sees_close(f, 0));
    assert_true(server_sees_close(f, 1));
}

/* The peer closes an idle transport: it is discarded, never handed out. */
static void test_dead_transport_discarded(void **state)
{
    fixture *f = *state;
    make_pool(f);
    pt_outbound *a = fresh(f);
    pt_outbound *b = fresh(f);
    pt_pool_give_back(f->p, a);
    pt_pool_give_back(f->p, b);
    assert_int_equal(pt_pool_idle_count(f->p), 2);
    close(f->server[1]); /* b's peer goes away */
    f->server[1] = -1;
    for (int i = 0; i < 200 && pt_pool_idle_count(f->p) == 2; i++)
        run_for(f, 0.005);
    assert_int_equal(pt_pool_idle_count(f->p), 1);
    assert_int_equal(pt_connector_open_count(f->c), 1);
    assert_ptr_equal(pt_pool_take(f->p), a);
    assert_null(pt_pool_take(f->p));

    /* Bytes nobody asked for make an idle transport dead too. */
    pt_pool_give_back(f->p, a);
    assert_int_equal(write(f->server[0], "junk", 4), 4);
    for (int i = 0; i < 200 && pt_pool_idle_count(f->p) == 1; i++)
        run_for(f, 0.005);
    assert_int_equal(pt_pool_idle_count(f->p), 0);
    assert_null(pt_pool_take(f->p));
    assert_true(server_sees_close(f, 0));
}

static void test_idle_timeout(void **state)
{
    fixture *f = *state;
    f->po.idle_timeout = 0.3;
    make_pool(f);
    pt_outbound *a = fresh(f);
    pt_pool_give_back(f->p, a);
    run_for(f, 0.15);
    pt_outbound *b = fresh(f);
    pt_pool_give_back(f->p, b);
    run_for(f, 0.2); /* a's deadline passed, b's not yet (0.1 s ahead) */
    assert_int_equal(pt_pool_idle_count(f->p), 1);
    assert_true(server_sees_close(f, 0));
    run_for(f, 0.2);
    assert_int_equal(pt_pool_idle_count(f->p), 0);
    assert_true(server_sees_close(f, 1));
    /* nothing keeps the loop running */
    assert_false(ev_run(f->loop, EVRUN_NOWAIT));
}

static void test_max_requests(void **state)
{
    fixture *f = *state;
    f->po.max_requests = 2;
    make_pool(f);
    pt_outbound *a = fresh(f);
    pt_pool_give_back(f->p, a); /* one exchange */
    assert_ptr_equal(pt_pool_take(f->p), a);
    pt_pool_give_back(f->p, a); /* two: closed */
    assert_int_equal(pt_pool_idle_count(f->p), 0);
    assert_int_equal(pt_connector_open_count(f->c), 0);
    assert_true(server_sees_close(f, 0));
}

/* At the cap, the longest idle one makes room. */
static void test_idle_cap(void **state)
{
    fixture *f = *state;
    f->po.max_idle = 2;
    make_pool(f);
    pt_outbound *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = fresh(f);
    for (int i = 0; i < 3; i++)
        pt_pool_give_back(f->p, t[i]);
    assert_int_equal(pt_pool_idle_count(f->p), 2);
    assert_true(server_sees_close(f, 0));
    assert_ptr_equal(pt_pool_take(f->p), t[2]);
    assert_ptr_equal(pt_pool_take(f->p), t[1]);
    pt_outbound_close(t[1]);
    pt_outbound_close(t[2]);

    /* A pool that keeps none closes what it is given back. */
    pt_pool_free(f->p);
    f->po.max_idle = 0;
    make_pool(f);
    pt_outbound *o = fresh(f);
    pt_pool_give_back(f->p, o);
    assert_int_equal(pt_pool_idle_count(f->p), 0);
    assert_true(server_sees_close(f, 3));
}

/* Keeps the transport `data` only (the three of the test go to one address: the test tells
 * them apart by the peer record each holds). */
static bool keep_second(const pt_connect_addr *peer, void *data)
{
    const pt_outbound *second = data;
    return peer == &second->peer;
}

/* Idle transports to addresses a name no longer has are closed; the others stay, and stay
 * in their order. */
static void test_drop_idle(void **state)
{
    fixture *f = *state;
    make_pool(f);
    pt_outbound *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = fresh(f);
    for (int i = 0; i < 3; i++)
        pt_pool_give_back(f->p, t[i]);
    assert_int_equal(pt_pool_drop_idle(f->p, keep_second, t[1]), 2);
    assert_int_equal(pt_pool_idle_count(f->p), 1);
    assert_true(server_sees_close(f, 0));
    assert_true(server_sees_close(f, 2));
    assert_ptr_equal(pt_pool_take(f->p), t[1]);
    assert_null(pt_pool_take(f->p));
    pt_pool_give_back(f->p, t[1]);
    assert_int_equal(pt_pool_drop_idle(f->p, keep_second, t[1]), 0);
    assert_int_equal(pt_pool_idle_count(f->p), 1);
}

/* Freeing the pool closes its idle transports; the connector going first does too, and a
 * transport held across it is closed with its memory kept for the holder. */
static void test_shutdown(void **state)
{
    fixture *f = *state;
    make_pool(f);
    pt_outbound *idle = fresh(f);
    pt_outbound *held = fresh(f);
    pt_pool_give_back(f->p, idle);
    pt_pool_free(f->p);
    f->p = NULL;
    assert_true(server_sees_close(f, 0));
    assert_int_equal(pt_connector_open_count(f->c), 1);

    make_pool(f);
    pt_outbound *idle2 = fresh(f);
    pt_pool_give_back(f->p, idle2);
    pt_connector_free(f->c);
    assert_true(server_sees_close(f, 1));
    assert_true(server_sees_close(f, 2));
    assert_int_equal(held->transport.fd, -1);
    pt_outbound_close(held);
    assert_int_equal(pt_pool_idle_count(f->p), 0);
    pt_pool_free(f->p);
    f->p = NULL;
    pt_connector_options co;
    pt_connector_options_init(&co);
    assert_int_equal(pt_connector_new(&f->c, f->loop, &co), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_and_lifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_transport_discarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
