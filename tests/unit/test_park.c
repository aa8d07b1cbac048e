#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/connmgr.h"
#include "tests/support.h"

/*
 * The parking lot (connmgr/park.c) seen through the connection manager: a connection idle for
 * half a second gives up everything but its socket, wakes up when its client speaks, closes at
 * its keep-alive deadline, and goes first when the manager needs room. The protocol answers
 * "ok<N>" to each byte it reads, N being the connection's request count, and then goes idle.
 */

typedef struct fixture {
    struct ev_loop *loop;
    pt_connmgr *m;
    pt_connmgr_options o;
    pt_limits limits; /* o.limits */
    size_t custodians_at_start;
    int drained;
    bool hold_resource; /* the protocol registers something of its own on the connection */
    int resource_released;
} fixture;

static fixture *current;

static void on_resource_release(void *data)
{
    current->resource_released++;
}

static void answer_on_read(pt_conn *c)
{
    if (c->eof) {
        pt_conn_close(c);
        return;
    }
    size_t n = pt_inbuf_len(&c->in);
    pt_inbuf_consume(&c->in, n);
    for (size_t i = 0; i < n; i++) {
        pt_conn_count_request(c);
        char reply[32];
        int len = snprintf(reply, sizeof reply, "ok%u", c->requests);
        pt_outq_push_copy(&c->out, reply, (size_t)len);
    }
    if (current->hold_resource && c->requests == 1)
        pt_custodian_register(pt_conn_custodian(c), on_resource_release, NULL);
    bool draining = pt_connmgr_is_draining(c->mgr);
    if (draining)
        c->close_after = true;
    if (pt_conn_flush(c) == 0 && !c->dead && !draining) {
        pt_conn_set_state(c, PT_CONN_IDLE);
        pt_conn_reset_timeout(c, c->limits->keepalive_timeout);
    }
}

static const pt_conn_proto answer_proto = {.on_read = answer_on_read};

static void on_drained(void *data)
{
    ((fixture *)data)->drained++;
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    current = &f;
    nothing_left_begin();
    f.loop = ev_loop_new(EVFLAG_AUTO);
    f.custodians_at_start = pt_custodian_live_count();
    pt_connmgr_options_init(&f.o);
    pt_limits_init(&f.limits);
    f.o.limits = &f.limits;
    f.o.proto = &answer_proto;
    f.limits.keepalive_timeout = 5;
    f.o.on_drained = on_drained;
    f.o.data = &f;
    *state = &f;
    return 0;
}

static void start(fixture *f)
{
    assert_int_equal(pt_connmgr_new(&f->m, f->loop, &f->o), 0);
}

static int teardown(void **state)
{
    fixture *f = *state;
    pt_connmgr_free(f->m);
    pt_custodian_reap();
    pt_chunk_pool_trim();
    assert_nothing_left(f->loop);
    return 0;
}

/* Admits one end of a socketpair; returns the other (the client). */
static int connect_one(fixture *f)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    assert_non_null(pt_connmgr_admit(f->m, sv[0], NULL, 0));
    return sv[1];
}

static void say(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Reads what the server sent: the text, "" if nothing, "EOF" at end of stream. */
static const char *heard(int fd)
{
    static char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n == 0)
        return "EOF";
    if (n < 0) {
        assert_int_equal(errno, EAGAIN);
        return "";
    }
    buf[n] = '\0';
    return buf;
}

static pt_connmgr_stats stats(fixture *f)
{
    pt_connmgr_stats s;
    pt_connmgr_get_stats(f->m, &s);
    return s;
}

static void test_idle_connection_parks_and_wakes(void **state)
{
    fixture *f = *state;
    start(f);
    int client = connect_one(f);
    say(client, "a");
    loop_run_for(f->loop, 0.1);
    assert_string_equal(heard(client), "ok1");
    /* Busy or briefly idle: a connection of its own. */
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 2);

    loop_run_for(f->loop, 1.0);
    /* Parked: still open and idle, but its custodian (and everything it held) is gone. */
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 1);
    assert_int_equal(stats(f).live, 1);
    assert_int_equal(stats(f).idle, 1);
    assert_int_equal(stats(f).closed, 0);
    assert_string_equal(heard(client), "");

    say(client, "b");
    loop_run_for(f->loop, 0.1);
    /* Woken with its request count: keepalive_requests keeps counting across parking. */
    assert_string_equal(heard(client), "ok2");
    assert_int_equal(stats(f).accepted, 1);
    assert_int_equal(stats(f).requests, 2);
    close(client);
    loop_run_for(f->loop, 0.1);
    assert_int_equal(stats(f).live, 0);
}

static void test_parked_connection_closes_at_its_deadline(void **state)
{
    fixture *f = *state;
    f->limits.keepalive_timeout = 1.0;
    start(f);
    int client = connect_one(f);
    say(client, "a");
    loop_run_for(f->loop, 0.8);
    assert_string_equal(heard(client), "ok1");
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 1); /* parked */
    assert_int_equal(stats(f).live, 1);
    loop_run_for(f->loop, 0.5);
    assert_string_equal(heard(client), "EOF");
    assert_int_equal(stats(f).live, 0);
    assert_int_equal(stats(f).closed, 1);
    close(client);
}

static void test_drain_closes_parked_connections(void **state)
{
    fixture *f = *state;
    start(f);
    int client = connect_one(f);
    say(client, "a");
    loop_run_for(f->loop, 1.0);
    assert_string_equal(heard(client), "ok1");
    assert_int_equal(stats(f).idle, 1);
    pt_connmgr_drain(f->m, 5);
    loop_run_for(f->loop, 0.1);
    assert_string_equal(heard(client), "EOF");
    assert_int_equal(f->drained, 1);
    assert_int_equal(stats(f).live, 0);
    close(client);
}

static void test_retire_serves_a_parked_client_then_closes(void **state)
{
    fixture *f = *state;
    start(f);
    int client = connect_one(f);
    say(client, "a");
    loop_run_for(f->loop, 1.0);
    assert_string_equal(heard(client), "ok1");
    pt_connmgr_retire(f->m, 5);
    loop_run_for(f->loop, 0.1);
    /* A gentle drain leaves the parked connection alone: its client may be talking. */
    assert_string_equal(heard(client), "");
    assert_int_equal(f->drained, 0);
    say(client, "b");
    loop_run_for(f->loop, 0.2);
    assert_string_equal(heard(client), "ok2");
    assert_string_equal(heard(client), "EOF");
    assert_int_equal(f->drained, 1);
    close(client);
}

static void test_parked_connection_evicted_first(void **state)
{
    fixture *f = *state;
    f->limits.max_concurrent = 2;
    start(f);
    int idle = connect_one(f);
    say(idle, "a");
    loop_run_for(f->loop, 1.0);
    assert_string_equal(heard(idle), "ok1");
    int busy = connect_one(f); /* has sent nothing: reading, not idle */
    int third = connect_one(f);
    loop_run_for(f->loop, 0.05);
    assert_string_equal(heard(idle), "EOF");
    assert_string_equal(heard(busy), "");
    say(third, "c");
    loop_run_for(f->loop, 0.1);
    assert_string_equal(heard(third), "ok1");
    assert_int_equal(stats(f).live, 2);
    close(idle);
    close(busy);
    close(third);
    loop_run_for(f->loop, 0.1);
}

static void test_connection_holding_resources_is_not_parked(void **state)
{
    fixture *f = *state;
    f->hold_resource = true;
    start(f);
    int client = connect_one(f);
    say(client, "a");
    loop_run_for(f->loop, 1.0);
    assert_string_equal(heard(client), "ok1");
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 2);
    assert_int_equal(f->resource_released, 0);
    close(client);
    loop_run_for(f->loop, 0.1);
    assert_int_equal(f->resource_released, 1);
}

static void test_free_closes_parked_sockets(void **state)
{
    fixture *f = *state;
    start(f);
    int clients[3];
    for (int i = 0; i < 3; i++) {
        clients[i] = connect_one(f);
        say(clients[i], "a");
    }
    loop_run_for(f->loop, 1.0);
    assert_int_equal(pt_custodian_live_count(), f->custodians_at_start + 1);
    pt_connmgr_free(f->m);
    f->m = NULL;
    for (int i = 0; i < 3; i++) {
        assert_string_equal(heard(clients[i]), "ok1");
        assert_string_equal(heard(clients[i]), "EOF");
        close(clients[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_connection_parks_and_wakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parked_connection_closes_at_its_deadline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drain_closes_parked_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retire_serves_a_parked_client_then_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parked_connection_evicted_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_holding_resources_is_not_parked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_closes_parked_sockets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
