#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "connmgr/timer.h"
#include "tests/support.h"

/*
 * Each test runs a real loop with deadlines of tens of milliseconds. A watchdog, unreferenced so
 * that it never keeps ev_run() alive by itself, breaks the loop if a timer never stops.
 */
#define WATCHDOG_SECONDS 1.0
#define MAX_FIRES 8

typedef struct fixture {
    struct ev_loop *loop;
    ev_timer watchdog;
    bool watchdog_fired;
} fixture;

typedef struct probe {
    pt_timer timer;
    int fired;
    ev_tstamp fired_at[MAX_FIRES];
    int rearm_left;
    double rearm_after;
    bool cancel_in_cb;
} probe;

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    fixture *f = w->data;

    f->watchdog_fired = true;
    ev_break(loop, EVBREAK_ALL);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    nothing_left_begin();
    f->loop = ev_loop_new(EVFLAG_AUTO);
    if (f->loop == NULL) {
        free(f);
        return -1;
    }
    ev_timer_init(&f->watchdog, on_watchdog, WATCHDOG_SECONDS, 0.);
    f->watchdog.data = f;
    *state = f;
    return 0;
}

/* Every test ends with nothing left: no pending event, no active watcher. */
static int teardown(void **state)
{
    fixture *f = *state;
    struct ev_loop *loop = f->loop;

    free(f);
    assert_int_equal(pt_timer_armed_count(), 0);
    assert_nothing_left(loop);
    return 0;
}

/* Runs the loop until no referenced watcher is left (or the watchdog gives up). */
static void run_loop(fixture *f)
{
    ev_now_update(f->loop);
    ev_timer_set(&f->watchdog, WATCHDOG_SECONDS, 0.);
    ev_timer_start(f->loop, &f->watchdog);
    ev_unref(f->loop);
    ev_run(f->loop, 0);
    ev_ref(f->loop);
    ev_timer_stop(f->loop, &f->watchdog);
    assert_false(f->watchdog_fired);
}

static void on_fire(pt_timer *t, void *data)
{
    probe *p = data;

    assert_false(pt_timer_is_armed(t));
    assert_true(p->fired < MAX_FIRES);
    p->fired_at[p->fired++] = ev_now(t->loop);
    if (p->rearm_left > 0) {
        p->rearm_left--;
        pt_timer_start(t, p->rearm_after);
    }
    if (p->cancel_in_cb)
        pt_timer_cancel(t);
}

static void probe_init(probe *p, fixture *f)
{
    *p = (probe){0};
    pt_timer_init(&p->timer, f->loop, on_fire, p);
}

/* Now on the loop's clock, as the timer sees it. */
static ev_tstamp loop_now(fixture *f)
{
    ev_now_update(f->loop);
    return ev_now(f->loop);
}

static void test_fires_once(void **state)
{
    fixture *f = *state;
    probe p;
    ev_tstamp t0;

    probe_init(&p, f);
    assert_false(pt_timer_is_armed(&p.timer));
    assert_true(isinf(pt_timer_remaining(&p.timer)));

    t0 = loop_now(f);
    pt_timer_start(&p.timer, 0.02);
    assert_true(pt_timer_is_armed(&p.timer));
    assert_true(ev_is_active(&p.timer.watcher));
    run_loop(f);

    assert_int_equal(p.fired, 1);
    assert_true(p.fired_at[0] >= t0 + 0.02);
    assert_false(pt_timer_is_armed(&p.timer));
    assert_true(isinf(pt_timer_remaining(&p.timer)));
    assert_false(ev_is_active(&p.timer.watcher));
    pt_timer_dispose(&p.timer);
}

static void test_reset_later_postpones_without_rearming(void **state)
{
    fixture *f = *state;
    probe p;
    ev_tstamp t0, at;

    probe_init(&p, f);
    t0 = loop_now(f);
    pt_timer_start(&p.timer, 0.02);
    at = p.timer.watcher.at;
    pt_timer_reset(&p.timer, 0.06);
    /* libev was not touched: the watcher still wakes at the old time. */
    assert_true(ev_is_active(&p.timer.watcher));
    assert_true(p.timer.watcher.at == at);
    assert_true(pt_timer_remaining(&p.timer) > 0.05);
    run_loop(f);

    /* The early wake-up re-armed instead of calling back. */
    assert_int_equal(p.fired, 1);
    assert_true(p.fired_at[0] >= t0 + 0.06);
    pt_timer_dispose(&p.timer);
}

/* A reset from another event while the loop runs, as a connection does on every read. */
static probe *reset_target;
static ev_tstamp reset_at;

static void on_reset_helper(struct ev_loop *loop, ev_timer *w, int revents)
{
    reset_at = ev_now(loop);
    pt_timer_reset(&reset_target->timer, 0.04);
}

static void test_reset_while_running(void **state)
{
    fixture *f = *state;
    probe p;
    ev_timer helper;

    probe_init(&p, f);
    reset_target = &p;
    ev_timer_init(&helper, on_reset_helper, 0.01, 0.);
    loop_now(f);
    pt_timer_start(&p.timer, 0.02);
    ev_timer_start(f->loop, &helper);
    run_loop(f);

    assert_int_equal(p.fired, 1);
    assert_true(p.fired_at[0] >= reset_at + 0.04);
    assert_false(ev_is_active(&helper));
    pt_timer_dispose(&p.timer);
}

static void test_increment_extends(void **state)
{
    fixture *f = *state;
    probe p;
    ev_tstamp t0, at;
    double left;

    probe_init(&p, f);
    t0 = loop_now(f);
    pt_timer_start(&p.timer, 0.02);
    at = p.timer.watcher.at;
    pt_timer_increment(&p.timer, 0.03);
    assert_true(p.timer.watcher.at == at);
    left = pt_timer_remaining(&p.timer);
    assert_true(left > 0.049 && left <= 0.05);
    run_loop(f);

    assert_int_equal(p.fired, 1);
    assert_true(p.fired_at[0] >= t0 + 0.05);

    /* Not armed: the increment counts from now. */
    t0 = loop_now(f);
    pt_timer_increment(&p.timer, 0.02);
    assert_true(pt_timer_is_armed(&p.timer));
    run_loop(f);
    assert_int_equal(p.fired, 2);
    assert_true(p.fired_at[1] >= t0 + 0.02);
    pt_timer_dispose(&p.timer);
}

static void test_moving_earlier_rearms(void **state)
{
    fixture *f = *state;
    probe p;
    ev_tstamp t0, at;

    probe_init(&p, f);
    t0 = loop_now(f);
    pt_timer_start(&p.timer, 0.5);
    at = p.timer.watcher.at;
    pt_timer_reset(&p.timer, 0.02);
    assert_true(p.timer.watcher.at < at);
    run_loop(f);
    assert_int_equal(p.fired, 1);
    assert_true(p.fired_at[0] >= t0 + 0.02);
    assert_true(p.fired_at[0] < t0 + 0.4);

    t0 = loop_now(f);
    pt_timer_start(&p.timer, 0.5);
    pt_timer_increment(&p.timer, -0.47);
    assert_true(pt_timer_remaining(&p.timer) <= 0.03);
    run_loop(f);
    assert_int_equal(p.fired, 2);
    assert_true(p.fired_at[1] >= t0 + 0.03);
    assert_true(p.fired_at[1] < t0 + 0.4);
    pt_timer_dispose(&p.timer);
}

static probe *cancel_target;

static void on_cancel_helper(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_timer_cancel(&cancel_target->timer);
}

static void test_cancel_prevents(void **state)
{
    fixture *f = *state;
    probe p;
    ev_timer helper;

    probe_init(&p, f);
    pt_timer_start(&p.timer, 0.02);
    pt_timer_cancel(&p.timer);
    pt_timer_cancel(&p.timer);
    assert_false(pt_timer_is_armed(&p.timer));
    assert_false(ev_is_active(&p.timer.watcher));

    /* Cancelled after a later move, while the watcher still waits for the old time. */
    pt_timer_start(&p.timer, 0.02);
    pt_timer_reset(&p.timer, 0.05);
    pt_timer_cancel(&p.timer);
    run_loop(f);
    assert_int_equal(p.fired, 0);

    /* Cancelled from another event while the loop runs. */
    cancel_target = &p;
    ev_timer_init(&helper, on_cancel_helper, 0.01, 0.);
    pt_timer_start(&p.timer, 0.03);
    ev_timer_start(f->loop, &helper);
    run_loop(f);
    assert_int_equal(p.fired, 0);
    assert_false(pt_timer_is_armed(&p.timer));
    pt_timer_dispose(&p.timer);
}

static void test_no_timeout_values_cancel(void **state)
{
    fixture *f = *state;
    probe p;
    const double none[] = {0., -1., INFINITY, -INFINITY, NAN};

    probe_init(&p, f);
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        pt_timer_start(&p.timer, 0.02);
        pt_timer_start(&p.timer, none[i]);
        assert_false(pt_timer_is_armed(&p.timer));
        assert_false(ev_is_active(&p.timer.watcher));

        pt_timer_start(&p.timer, 0.02);
        pt_timer_reset(&p.timer, none[i]);
        assert_false(pt_timer_is_armed(&p.timer));

        /* Unarmed, a no-timeout increment leaves it unarmed. */
        pt_timer_increment(&p.timer, none[i]);
        assert_false(pt_timer_is_armed(&p.timer));
    }
    pt_timer_start(&p.timer, 0.02);
    pt_timer_increment(&p.timer, INFINITY);
    assert_false(pt_timer_is_armed(&p.timer));
    assert_true(isinf(pt_timer_remaining(&p.timer)));
    run_loop(f);
    assert_int_equal(p.fired, 0);
    pt_timer_dispose(&p.timer);
}

static void test_rearm_in_callback(void **state)
{
    fixture *f = *state;
    probe p;
    ev_tstamp t0;

    probe_init(&p, f);
    p.rearm_left = 2;
    p.rearm_after = 0.01;
    t0 = loop_now(f);
    pt_timer_start(&p.timer, 0.01);
    run_loop(f);

    assert_int_equal(p.fired, 3);
    assert_true(p.fired_at[0] >= t0 + 0.01);
    assert_true(p.fired_at[1] >= p.fired_at[0] + 0.01);
    assert_true(p.fired_at[2] >= p.fired_at[1] + 0.01);
    assert_false(pt_timer_is_armed(&p.timer));

    /* Re-armed and then cancelled inside the callback: no further call. */
    p.rearm_left = 1;
    p.cancel_in_cb = true;
    pt_timer_start(&p.timer, 0.01);
    run_loop(f);
    assert_int_equal(p.fired, 4);
    assert_false(pt_timer_is_armed(&p.timer));
    pt_timer_dispose(&p.timer);
}

/* The callback frees the object that embeds the timer (a connection killing itself). */
typedef struct owner {
    int payload;
    pt_timer timer;
} owner;

static int owner_fired;

static void on_fire_free_owner(pt_timer *t, void *data)
{
    owner *o = data;

    owner_fired++;
    pt_timer_dispose(&o->timer);
    free(o);
}

static void test_callback_frees_timer(void **state)
{
    fixture *f = *state;
    owner *o = calloc(1, sizeof(*o));

    assert_non_null(o);
    owner_fired = 0;
    pt_timer_init(&o->timer, f->loop, on_fire_free_owner, o);
    pt_timer_start(&o->timer, 0.01);
    run_loop(f);
    assert_int_equal(owner_fired, 1);
}

/*
 * Two timers expire in the same iteration; the first callback moves the other one later while
 * its expiry is already queued. The other must not run until its new deadline.
 */
typedef struct pair {
    pt_timer a, b;
    int calls;
    ev_tstamp first_at, second_at;
} pair;

static void on_pair(pt_timer *t, void *data)
{
    pair *p = data;

    if (p->calls++ == 0) {
        pt_timer *other = t == &p->a ? &p->b : &p->a;

        p->first_at = ev_now(t->loop);
        pt_timer_reset(other, 0.03);
        /* Restarting a watcher whose expiry is queued would leave it active and pending at
         * once, and its queued callback would then re-set an active watcher (libev forbids). */
        assert_false(ev_is_active(&other->watcher) && ev_is_pending(&other->watcher));
    } else {
        p->second_at = ev_now(t->loop);
    }
}

static void test_move_queued_expiry_later(void **state)
{
    fixture *f = *state;
    pair p = {0};

    pt_timer_init(&p.a, f->loop, on_pair, &p);
    pt_timer_init(&p.b, f->loop, on_pair, &p);
    loop_now(f);
    pt_timer_start(&p.a, 0.02);
    pt_timer_start(&p.b, 0.02);
    run_loop(f);

    assert_int_equal(p.calls, 2);
    assert_true(p.second_at >= p.first_at + 0.03);
    pt_timer_dispose(&p.a);
    pt_timer_dispose(&p.b);
}

static void test_remaining(void **state)
{
    fixture *f = *state;
    probe p;
    double left;

    probe_init(&p, f);
    loop_now(f);
    pt_timer_start(&p.timer, 1.0);
    left = pt_timer_remaining(&p.timer);
    assert_true(left > 0.99 && left <= 1.0);
    pt_timer_increment(&p.timer, 0.5);
    left = pt_timer_remaining(&p.timer);
    assert_true(left > 1.49 && left <= 1.5);
    pt_timer_reset(&p.timer, 0.25);
    left = pt_timer_remaining(&p.timer);
    assert_true(left > 0.24 && left <= 0.25);
    /* Remaining follows the loop's clock. */
    ev_sleep(0.02);
    loop_now(f);
    assert_true(pt_timer_remaining(&p.timer) <= 0.23);
    pt_timer_cancel(&p.timer);
    assert_true(isinf(pt_timer_remaining(&p.timer)));
    assert_true(pt_timer_remaining(&p.timer) > 0);
    pt_timer_dispose(&p.timer);
    assert_int_equal(p.fired, 0);
}

static void test_dispose(void **state)
{
    fixture *f = *state;
    probe p;

    probe_init(&p, f);
    pt_timer_start(&p.timer, 0.02);
    pt_timer_dispose(&p.timer);
    assert_false(pt_timer_is_armed(&p.timer));
    assert_false(ev_is_active(&p.timer.watcher));
    assert_null(p.timer.loop);
    pt_timer_dispose(&p.timer);
    pt_timer_cancel(&p.timer);
    run_loop(f);
    assert_int_equal(p.fired, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fires_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_later_postpones_without_rearming, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reset_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_increment_extends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moving_earlier_rearms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_prevents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_timeout_values_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rearm_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_frees_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_queued_expiry_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remaining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispose, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
