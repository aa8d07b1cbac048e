/*
 * The stats board (server/core/stats.c): series added before it opens and fixed after, slots of
 * their own cache lines, a request counted in its method, status class, duration bucket and
 * bytes (and its proxy attempts in their upstream server's series), sums over the slots of
 * forked writers, the worst state a worker reports, and the draining connections of the board a
 * reload replaced.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/core/stats.c"

static void test_series_are_fixed_once_open(void **state)
{
    (void)state;
    pt_stats_board *b = pt_stats_board_new(3);
    assert_non_null(b);
    assert_int_equal(pt_stats_board_add_server(b, "a.test"), 0);
    assert_int_equal(pt_stats_board_add_server(b, "b.test"), 1);
    assert_int_equal(pt_stats_board_add_server(b, "a.test"), 0); /* one label, one series */
    static const char key1[] = "127.0.0.1:81", key2[] = "127.0.0.1:82";
    assert_int_equal(pt_stats_board_add_upstream(b, "app", "s1", key1, 0), 0);
    assert_int_equal(pt_stats_board_add_upstream(b, "app", "s2", key2, 0), 1);
    assert_int_equal(pt_stats_board_add_upstream(b, "other", "s1", NULL, 0), 2);
    /* The upstream side registering the same server: its reports add up, the key stays. */
    assert_int_equal(pt_stats_board_add_upstream(b, "app", "s1", NULL, PT_STATS_REPORTS_STATE), 0);
    assert_int_equal(pt_stats_board_open(b), 0);
    assert_int_equal(pt_stats_board_add_server(b, "c.test"), -EBUSY);
    assert_int_equal(pt_stats_board_add_upstream(b, "x", "y", NULL, 0), -EBUSY);

    assert_int_equal(pt_stats_board_nservers(b), 2);
    assert_string_equal(pt_stats_board_server_name(b, 1), "b.test");
    assert_int_equal(pt_stats_board_nupstreams(b), 3);
    const char *up, *server;
    unsigned reports;
    pt_stats_board_upstream_names(b, 0, &up, &server, &reports);
    assert_string_equal(up, "app");
    assert_string_equal(server, "s1");
    assert_int_equal(reports, PT_STATS_REPORTS_STATE);
    assert_int_equal(pt_stats_board_find_upstream(b, key1), 0);
    assert_int_equal(pt_stats_board_find_upstream(b, key2), 1);
    char copy[] = "127.0.0.1:81"; /* the same text elsewhere: another key */
    assert_int_equal(pt_stats_board_find_upstream(b, copy), -1);
    assert_int_equal(pt_stats_board_find_upstream(b, NULL), -1);

    /* Each slot on cache lines of its own, its series inside it. */
    char *s0 = (char *)pt_stats_board_slot(b, 0), *s1 = (char *)pt_stats_board_slot(b, 1);
    assert_int_equal((uintptr_t)s0 % 64, 0);
    assert_int_equal((uintptr_t)s1 % 64, 0);
    assert_true((char *)pt_stats_board_server(b, 0, 0) >= s0 + sizeof(pt_worker_stats));
    assert_true((char *)(pt_stats_board_server(b, 0, 1) + 1) <=
                (char *)pt_stats_board_upstream(b, 0, 0));
    assert_true((char *)(pt_stats_board_upstream(b, 0, 2) + 1) <= s1);
    assert_true((char *)pt_stats_board_server(b, 1, 0) >= s1 + sizeof(pt_worker_stats));
    pt_stats_board_unref(b);
}

static void test_observe_puts_a_value_in_the_first_bucket_that_holds_it(void **state)
{
    (void)state;
    pt_stats_histogram h = {0};
    pt_stats_observe(&h, 0.001); /* le is "at most": the 1 ms bucket */
    pt_stats_observe(&h, 0.0010001);
    pt_stats_observe(&h, 0.003);
    pt_stats_observe(&h, 60);
    pt_stats_observe(&h, 61); /* +Inf */
    pt_stats_observe(&h, -1); /* a clock that stepped back: 0 */
    pt_stats_observe(&h, NAN);
    assert_int_equal(h.buckets[0], 3);
    assert_int_equal(h.buckets[1], 1);
    assert_int_equal(h.buckets[2], 1);
    assert_int_equal(h.buckets[PT_STATS_BUCKETS - 2], 1);
    assert_int_equal(h.buckets[PT_STATS_BUCKETS - 1], 1);
    assert_int_equal(pt_stats_histogram_count(&h), 7);
    assert_int_equal(h.sum_us, 1000 + 1000 + 3000 + 60000000 + 61000000);
    for (size_t i = 1; i < PT_STATS_BUCKETS - 1; i++)
        assert_true(pt_stats_bounds[i] > pt_stats_bounds[i - 1]);
}

/* A request as a protocol leaves it when its response is complete. */
static void request_of(pt_request *req, struct ev_loop *loop, int method_id, const char *method,
                       int status)
{
    memset(req, 0, sizeof *req);
    req->loop = loop;
    req->method_id = method_id;
    req->method = (pt_str){method, strlen(method)};
    req->status = status;
    req->start = ev_now(loop);
}

static void test_a_request_is_counted_in_its_series(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    pt_stats_board *b = pt_stats_board_new(2);
    static const char live[] = "10.0.0.1:80", other[] = "10.0.0.2:80";
    assert_int_equal(pt_stats_board_add_server(b, "a.test"), 0);
    assert_int_equal(pt_stats_board_add_upstream(b, "app", live, live, 0), 0);
    assert_int_equal(pt_stats_board_open(b), 0);
    pt_stats_sink sink;
    pt_stats_board_sink(b, 1, 0, &sink);
    pt_stats_server *s = pt_stats_board_server(b, 1, 0);
    assert_ptr_equal(sink.server, s);

    pt_request req;
    request_of(&req, loop, PT_METHOD_GET, "GET", 200);
    pt_stats_count_request(&req); /* no sink: not counted */
    req.stats = &sink;
    req.start -= 0.003;
    req.request_length = 100;
    req.head_bytes_sent = 150;
    req.body_bytes_sent = 1000;
    pt_stats_count_request(&req);
    assert_int_equal(s->requests[0][1], 1);
    assert_int_equal(s->duration.buckets[2], 1); /* 2.5 ms < 3 ms <= 5 ms */
    assert_in_range(s->duration.sum_us, 2999, 3001);
    assert_int_equal(s->bytes_in, 100);
    assert_int_equal(s->bytes_out, 1150);

    /* Refused before its method was read: "-", whose number is 0 (DELETE's). */
    request_of(&req, loop, 0, "-", 400);
    req.stats = &sink;
    pt_stats_count_request(&req);
    assert_int_equal(s->requests[PT_STATS_METHODS - 1][3], 1);
    assert_int_equal(s->requests[4][3], 0);
    request_of(&req, loop, PT_METHOD_DELETE, "DELETE", 101);
    req.stats = &sink;
    pt_stats_count_request(&req);
    assert_int_equal(s->requests[4][0], 1);
    request_of(&req, loop, PT_METHOD_OTHER, "PROPFIND", 599);
    req.stats = &sink;
    pt_stats_count_request(&req);
    assert_int_equal(s->requests[PT_STATS_METHODS - 1][4], 1);
    request_of(&req, loop, PT_METHOD_PATCH, "PATCH", 304);
    req.stats = &sink;
    pt_stats_count_request(&req);
    assert_int_equal(s->requests[5][2], 1);
    assert_string_equal(pt_stats_methods[5], "PATCH");

    /* Proxied: three attempts, to the registered server (502, then one without an answer)
     * and to one nobody registered. */
    request_of(&req, loop, PT_METHOD_POST, "POST", 200);
    req.stats = &sink;
    pt_upstream_tries tries = {.n = 3};
    tries.t[0].addr = live;
    tries.t[0].status = 502;
    tries.t[0].start = req.start - 0.19;
    tries.t[0].end = req.start - 0.1; /* 90 ms */
    tries.t[1].addr = other;
    tries.t[1].status = 200;
    tries.t[1].start = req.start;
    tries.t[2].addr = live;
    tries.t[2].start = req.start - 20; /* not ended: until now */
    req.upstream = &tries;
    pt_stats_count_request(&req);
    pt_stats_upstream *u = pt_stats_board_upstream(b, 1, 0);
    assert_int_equal(u->responses[4], 1);
    assert_int_equal(u->responses[1], 0);
    assert_int_equal(pt_stats_histogram_count(&u->response_time), 2);
    assert_int_equal(u->response_time.buckets[6], 1);                    /* 90 ms: 100 ms */
    assert_int_equal(u->response_time.buckets[PT_STATS_BUCKETS - 3], 1); /* 20 s: 30 s */
    assert_int_equal(s->requests[2][1], 1);

    /* Nothing went to the other slot. */
    pt_stats_server sum;
    pt_stats_board_sum_server(b, 0, &sum);
    assert_memory_equal(&sum, s, sizeof sum);
    assert_int_equal(pt_stats_server_requests(&sum), 6);
    pt_stats_board_unref(b);
    ev_loop_destroy(loop);
}

/* Workers forked after the board opened write their slots; any process reads their sum. */
static void test_sums_over_the_slots_of_forked_workers(void **state)
{
    (void)state;
    pt_stats_board *b = pt_stats_board_new(3);
    assert_int_equal(pt_stats_board_add_server(b, "a.test"), 0);
    assert_int_equal(pt_stats_board_add_upstream(b, "app", "s", NULL, PT_STATS_REPORTS_STATE), 0);
    assert_int_equal(pt_stats_board_open(b), 0);
    for (int slot = 1; slot < 3; slot++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            pt_stats_server *s = pt_stats_board_server(b, slot, 0);
            for (int i = 0; i < 1000 * slot; i++)
                pt_stats_add(&s->requests[0][1], 1);
            pt_stats_add(&s->bytes_out, 7);
            pt_stats_observe(&s->duration, 0.02 * slot);
            pt_stats_upstream *u = pt_stats_board_upstream(b, slot, 0);
            pt_stats_upstream_set_state(u,
                                        slot == 1 ? PT_STATS_UPSTREAM_DOWN : PT_STATS_UPSTREAM_UP);
            pt_stats_upstream_set_active(u, 3);
            pt_stats_upstream_health(u, slot == 2);
            _exit(0);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    pt_stats_upstream_set_state(pt_stats_board_upstream(b, 0, 0), PT_STATS_UPSTREAM_DRAINING);
    pt_stats_server s;
    pt_stats_board_sum_server(b, 0, &s);
    assert_int_equal(s.requests[0][1], 3000);
    assert_int_equal(s.bytes_out, 14);
    assert_int_equal(s.duration.buckets[4], 1); /* 20 ms */
    assert_int_equal(s.duration.buckets[5], 1); /* 40 ms */
    pt_stats_upstream u;
    pt_stats_board_sum_upstream(b, 0, &u);
    assert_int_equal(u.state, PT_STATS_UPSTREAM_DOWN); /* the worst any worker sees */
    assert_int_equal(u.active, 6);
    assert_int_equal(u.health_passed, 1);
    assert_int_equal(u.health_failed, 1);
    pt_stats_board_unref(b);
}

/* The workers' totals, and the connections of the board a reload replaced whose workers live. */
static void test_totals_and_the_previous_boards_draining(void **state)
{
    (void)state;
    pt_stats_board *old = pt_stats_board_new(2), *b = pt_stats_board_new(2);
    assert_int_equal(pt_stats_board_open(old), 0);
    assert_int_equal(pt_stats_board_open(b), 0);
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    *pt_stats_board_slot(old, 0) = (pt_worker_stats){.pid = getpid(), .live = 5};
    *pt_stats_board_slot(old, 1) = (pt_worker_stats){.pid = dead, .live = 7};
    *pt_stats_board_slot(b, 1) = (pt_worker_stats){
        .pid = getpid(), .live = 4, .idle = 3, .parked = 2, .draining = 1, .tls_resumed = 9};
    pt_stats_board_set_previous(b, old);
    pt_stats_board_unref(old); /* b holds it */
    pt_worker_stats t;
    assert_int_equal(pt_stats_board_total(b, &t), 1);
    assert_int_equal(t.live, 4);
    assert_int_equal(t.parked, 2);
    assert_int_equal(t.tls_resumed, 9);
    assert_int_equal(t.draining, 1 + 5); /* the dead worker's 7 are gone */
    assert_int_equal(pt_stats_board_previous_live(b), 5);

    /* A third generation lets the first go: one generation back only. */
    pt_stats_board *next = pt_stats_board_new(1);
    assert_int_equal(pt_stats_board_open(next), 0);
    pt_stats_board_set_previous(next, b);
    assert_null(b->previous);
    pt_stats_board_unref(b);
    assert_int_equal(pt_stats_board_previous_live(next), 4);
    pt_stats_board_unref(next);
    pt_stats_board_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_are_fixed_once_open),
        cmocka_unit_test(test_observe_puts_a_value_in_the_first_bucket_that_holds_it),
        cmocka_unit_test(test_a_request_is_counted_in_its_series),
        cmocka_unit_test(test_sums_over_the_slots_of_forked_workers),
        cmocka_unit_test(test_totals_and_the_previous_boards_draining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
