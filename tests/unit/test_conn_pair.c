#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "connmgr/connmgr.h"
#include "tests/support.h"
#include "tests/support/pair.h"

/*
 * A connection over a pair of descriptors (Racket's input and output ports): two pipes stand
 * in for stdin and stdout. The protocol echoes what it reads; at end of input it closes.
 */

typedef struct fixture {
    struct ev_loop *loop;
    pt_connmgr *m;
    pair_client p; /* the test's ends of the two pipes */
    int closes;
} fixture;

static fixture *current;

static void echo_read(pt_conn *c)
{
    if (c->eof) {
        pt_conn_close(c);
        return;
    }
    size_t n = pt_inbuf_len(&c->in);
    pt_outq_push_copy(&c->out, pt_inbuf_begin(&c->in), n);
    pt_inbuf_consume(&c->in, n);
    pt_conn_flush(c);
}

static void echo_close(pt_conn *c)
{
    current->closes++;
}

static const pt_conn_proto echo = {.on_read = echo_read, .on_close = echo_close};

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    current = &f;
    nothing_left_begin();
    f.loop = ev_loop_new(EVFLAG_AUTO);
    pt_connmgr_options o;
    pt_connmgr_options_init(&o);
    o.proto = &echo;
    assert_int_equal(pt_connmgr_new(&f.m, f.loop, &o), 0);
    f.p.to_conn = f.p.from_conn = -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pair_client_close(&f->p);
    pt_connmgr_free(f->m);
    pt_custodian_reap();
    pt_chunk_pool_trim();
    assert_nothing_left(f->loop);
    return 0;
}

static pt_conn *admit(fixture *f)
{
    return pair_connect(f->m, &f->p);
}

static void test_echo_through_the_pair(void **state)
{
    fixture *f = *state;
    pt_conn *c = admit(f);
    assert_non_null(c);
    assert_non_null(c->wio);
    assert_int_equal(write(f->p.to_conn, "hello", 5), 5);
    loop_run_for(f->loop, 0.05);
    char buf[16];
    assert_int_equal(read(f->p.from_conn, buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    pt_connmgr_stats st;
    pt_connmgr_get_stats(f->m, &st);
    assert_int_equal(st.live, 1);
    assert_int_equal(st.bytes_in, 5);
    assert_int_equal(st.bytes_out, 5);
}

static void test_end_of_input_closes_both_sides(void **state)
{
    fixture *f = *state;
    assert_non_null(admit(f));
    assert_int_equal(write(f->p.to_conn, "bye", 3), 3);
    pair_shut(&f->p);
    loop_run_for(f->loop, 0.05);
    char buf[16];
    assert_int_equal(read(f->p.from_conn, buf, sizeof buf), 3);
    assert_int_equal(read(f->p.from_conn, buf, sizeof buf), 0); /* the write side is closed */
    assert_int_equal(f->closes, 1);
    pt_connmgr_stats st;
    pt_connmgr_get_stats(f->m, &st);
    assert_int_equal(st.live, 0);
}

static void test_a_full_output_pipe_waits_for_the_reader(void **state)
{
    fixture *f = *state;
    pt_conn *c = admit(f);
    assert_non_null(c);
    /* More than the pipes hold (64 KiB each): with nobody reading the output, the echo backs
     * up in the out-queue, waiting on the write descriptor's readiness. */
    static char data[256 * 1024], got[256 * 1024];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i % 251);
    size_t sent = 0, recvd = 0;
    for (int i = 0; i < 50; i++) {
        ssize_t n = write(f->p.to_conn, data + sent, sizeof data - sent);
        if (n > 0)
            sent += (size_t)n;
        loop_run_for(f->loop, 0.002);
    }
    assert_true(pt_outq_pending(&c->out) > 0);
    assert_true(ev_is_active(c->wio) && (c->wio->events & EV_WRITE));
    for (int i = 0; i < 2000 && recvd < sizeof data; i++) {
        if (sent < sizeof data) {
            ssize_t n = write(f->p.to_conn, data + sent, sizeof data - sent);
            if (n > 0)
                sent += (size_t)n;
        }
        ssize_t n = read(f->p.from_conn, got + recvd, sizeof got - recvd);
        if (n > 0)
            recvd += (size_t)n;
        loop_run_for(f->loop, 0.002);
    }
    assert_int_equal(recvd, sizeof data);
    assert_memory_equal(got, data, sizeof data);
}

static void test_kill_closes_both_descriptors(void **state)
{
    fixture *f = *state;
    pt_conn *c = admit(f);
    assert_non_null(c);
    pt_conn_kill(c);
    loop_run_for(f->loop, 0.01);
    char buf[4];
    assert_int_equal(read(f->p.from_conn, buf, sizeof buf), 0); /* EOF: write end closed */
    assert_int_equal(write(f->p.to_conn, "x", 1), -1);          /* EPIPE: read end closed */
    assert_int_equal(errno, EPIPE);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_through_the_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_of_input_closes_both_sides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_output_pipe_waits_for_the_reader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kill_closes_both_descriptors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
