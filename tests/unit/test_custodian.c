#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "connmgr/custodian.h"
#include "tests/support.h"

/* Release callbacks append their tag here, so tests can check order and count. */
#define LOG_MAX 64
static int log_buf[LOG_MAX];
static size_t log_len;

static void log_reset(void)
{
    log_len = 0;
}

static void on_release(void *data)
{
    assert_true(log_len < LOG_MAX);
    log_buf[log_len++] = (int)(intptr_t)data;
}

#define TAG(n) ((void *)(intptr_t)(n))

static void assert_log(const int *want, size_t n)
{
    assert_int_equal(log_len, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(log_buf[i], want[i]);
}

/* All custodians shut down, then all of them reaped. */
static void assert_all_reaped(void)
{
    assert_int_equal(pt_custodian_live_count(), 0);
    pt_custodian_reap();
    assert_int_equal(pt_custodian_unreaped_count(), 0);
}

static int setup(void **state)
{
    log_reset();
    nothing_left_begin();
    return 0;
}

static int teardown(void **state)
{
    assert_nothing_left(NULL);
    return 0;
}

static void test_lifo_order(void **state)
{
    pt_custodian *c = pt_custodian_new(NULL);

    assert_non_null(c);
    assert_int_equal(pt_custodian_live_count(), 1);
    for (int i = 1; i <= 5; i++)
        assert_non_null(pt_custodian_register(c, on_release, TAG(i)));
    assert_false(pt_custodian_is_shut_down(c));
    assert_int_equal(log_len, 0);

    pt_custodian_shutdown(c);
    assert_true(pt_custodian_is_shut_down(c));
    assert_log((int[]){5, 4, 3, 2, 1}, 5);
    assert_int_equal(pt_custodian_live_count(), 0);
    assert_int_equal(pt_custodian_unreaped_count(), 1);
    assert_all_reaped();
}

static void test_nesting_order(void **state)
{
    pt_custodian *root = pt_custodian_new(NULL);
    pt_custodian *a, *b, *a1;

    pt_custodian_register(root, on_release, TAG(1));
    a = pt_custodian_new(root);
    pt_custodian_register(a, on_release, TAG(10));
    pt_custodian_register(a, on_release, TAG(11));
    a1 = pt_custodian_new(a);
    pt_custodian_register(a1, on_release, TAG(100));
    b = pt_custodian_new(root);
    pt_custodian_register(b, on_release, TAG(20));
    /* Registered after the children: still runs after them. */
    pt_custodian_register(root, on_release, TAG(2));

    assert_ptr_equal(pt_custodian_parent(a), root);
    assert_ptr_equal(pt_custodian_parent(a1), a);
    assert_null(pt_custodian_parent(root));
    assert_int_equal(pt_custodian_live_count(), 4);

    pt_custodian_shutdown(root);
    /* Newest child first (b, then a with its own child first), then root's entries LIFO. */
    assert_log((int[]){20, 100, 11, 10, 2, 1}, 6);
    assert_true(pt_custodian_is_shut_down(a));
    assert_true(pt_custodian_is_shut_down(a1));
    assert_true(pt_custodian_is_shut_down(b));
    assert_int_equal(pt_custodian_unreaped_count(), 4);
    assert_all_reaped();
}

static void test_child_shut_down_alone(void **state)
{
    pt_custodian *root = pt_custodian_new(NULL);
    pt_custodian *a = pt_custodian_new(root);
    pt_custodian *b = pt_custodian_new(root);

    pt_custodian_register(root, on_release, TAG(1));
    pt_custodian_register(a, on_release, TAG(10));
    pt_custodian_register(b, on_release, TAG(20));

    pt_custodian_shutdown(a);
    assert_log((int[]){10}, 1);
    assert_false(pt_custodian_is_shut_down(root));
    assert_int_equal(pt_custodian_live_count(), 2);

    /* The dead child is reaped while its parent lives on; the parent must not touch it. */
    pt_custodian_reap();
    assert_int_equal(pt_custodian_unreaped_count(), 0);

    pt_custodian_shutdown(root);
    assert_log((int[]){10, 20, 1}, 3);
    assert_all_reaped();
}

static void test_idempotent_shutdown(void **state)
{
    pt_custodian *root = pt_custodian_new(NULL);
    pt_custodian *child = pt_custodian_new(root);

    pt_custodian_register(root, on_release, TAG(1));
    pt_custodian_register(child, on_release, TAG(2));
    pt_custodian_shutdown(child);
    pt_custodian_shutdown(child);
    pt_custodian_shutdown(root);
    pt_custodian_shutdown(root);
    pt_custodian_shutdown(child);
    pt_custodian_shutdown(NULL);
    assert_log((int[]){2, 1}, 2);
    assert_int_equal(pt_custodian_unreaped_count(), 2);
    assert_all_reaped();
    /* Reaping again with nothing to reap is harmless. */
    pt_custodian_reap();
    assert_all_reaped();
}

static void test_unregister_and_release(void **state)
{
    pt_custodian *c = pt_custodian_new(NULL);
    pt_custodian_entry *e1 = pt_custodian_register(c, on_release, TAG(1));
    pt_custodian_entry *e2 = pt_custodian_register(c, on_release, TAG(2));
    pt_custodian_entry *e3 = pt_custodian_register(c, on_release, TAG(3));
    pt_custodian_entry *e4 = pt_custodian_register(c, on_release, NULL);

    pt_custodian_unregister(e2);
    assert_int_equal(log_len, 0);

    pt_custodian_release(e3);
    assert_log((int[]){3}, 1);

    /* Register first, then fill in what was acquired. */
    pt_custodian_entry_set(e4, TAG(4));

    pt_custodian_unregister(NULL);
    pt_custodian_release(NULL);
    pt_custodian_entry_set(NULL, TAG(9));

    pt_custodian_shutdown(c);
    assert_log((int[]){3, 4, 1}, 3);
    (void)e1;
    assert_all_reaped();
}

static void test_unregistered_slot_is_reused(void **state)
{
    pt_custodian *c = pt_custodian_new(NULL);
    pt_custodian_entry *keep = pt_custodian_register(c, on_release, TAG(1));
    pt_custodian_entry *e = pt_custodian_register(c, on_release, TAG(2));
    pt_custodian_entry *again;

    /* A long-lived custodian with churn must not grow: the freed slot comes back. */
    pt_custodian_unregister(e);
    again = pt_custodian_register(c, on_release, TAG(3));
    assert_ptr_equal(again, e);
    pt_custodian_release(again);
    assert_ptr_equal(pt_custodian_register(c, on_release, TAG(4)), e);

    pt_custodian_shutdown(c);
    assert_log((int[]){3, 4, 1}, 3);
    (void)keep;
    assert_all_reaped();
}

static void test_register_after_shutdown(void **state)
{
    pt_custodian *root = pt_custodian_new(NULL);
    pt_custodian *child = pt_custodian_new(root);

    pt_custodian_shutdown(child);
    assert_null(pt_custodian_register(child, on_release, TAG(1)));
    assert_null(pt_custodian_new(child));
    assert_non_null(pt_custodian_register(root, on_release, TAG(2)));

    pt_custodian_shutdown(root);
    assert_null(pt_custodian_register(root, on_release, TAG(3)));
    assert_null(pt_custodian_new(root));
    assert_null(pt_custodian_register(NULL, on_release, TAG(4)));
    assert_log((int[]){2}, 1);
    assert_all_reaped();
}

static void test_alloc_valid_until_reap(void **state)
{
    pt_custodian *c = pt_custodian_new(NULL);
    unsigned char *small[100];
    unsigned char *big;
    char *s;

    for (size_t i = 0; i < 100; i++) {
        small[i] = pt_custodian_alloc(c, i + 1);
        assert_non_null(small[i]);
        assert_int_equal((uintptr_t)small[i] % 16, 0);
        for (size_t j = 0; j <= i; j++)
            assert_int_equal(small[i][j], 0);
        memset(small[i], (int)i, i + 1);
    }
    big = pt_custodian_alloc(c, 100000);
    assert_int_equal((uintptr_t)big % 16, 0);
    assert_int_equal(big[0], 0);
    assert_int_equal(big[99999], 0);
    memset(big, 0xab, 100000);
    assert_non_null(pt_custodian_alloc(c, 0));
    s = pt_custodian_strndup(c, "hello, world", 5);
    assert_string_equal(s, "hello");

    pt_custodian_shutdown(c);
    /* Shut down but not reaped: everything is still readable (ASan would object otherwise). */
    for (size_t i = 0; i < 100; i++)
        for (size_t j = 0; j <= i; j++)
            assert_int_equal(small[i][j], (unsigned char)i);
    assert_int_equal(big[99999], 0xab);
    assert_string_equal(s, "hello");
    assert_true(pt_custodian_is_shut_down(c));
    assert_all_reaped();
}

/* A callback shutting down its own custodian: the remaining entries still run, once. */
static pt_custodian *self_target;

static void on_release_shutdown_self(void *data)
{
    on_release(data);
    pt_custodian_shutdown(self_target);
    assert_null(pt_custodian_register(self_target, on_release, TAG(99)));
}

static void test_shutdown_from_own_callback(void **state)
{
    pt_custodian *c = pt_custodian_new(NULL);

    self_target = c;
    pt_custodian_register(c, on_release, TAG(1));
    pt_custodian_register(c, on_release_shutdown_self, TAG(2));
    pt_custodian_register(c, on_release, TAG(3));

    pt_custodian_shutdown(c);
    assert_log((int[]){3, 2, 1}, 3);
    assert_int_equal(pt_custodian_unreaped_count(), 1);
    assert_all_reaped();
}

/* The same, started by release() rather than shutdown(). */
static void test_shutdown_from_released_callback(void **state)
{
    pt_custodian *c = pt_custodian_new(NULL);
    pt_custodian_entry *e;

    self_target = c;
    pt_custodian_register(c, on_release, TAG(1));
    e = pt_custodian_register(c, on_release_shutdown_self, TAG(2));
    pt_custodian_register(c, on_release, TAG(3));

    pt_custodian_release(e);
    assert_log((int[]){2, 3, 1}, 3);
    assert_true(pt_custodian_is_shut_down(c));
    assert_all_reaped();
}

/* A child's callback shuts down its parent: every entry of both runs exactly once. */
static pt_custodian *parent_target;

static void on_release_shutdown_parent(void *data)
{
    on_release(data);
    pt_custodian_shutdown(parent_target);
}

static void test_shutdown_parent_from_child_callback(void **state)
{
    pt_custodian *root = pt_custodian_new(NULL);
    pt_custodian *a = pt_custodian_new(root);
    pt_custodian *b = pt_custodian_new(root);

    parent_target = root;
    pt_custodian_register(root, on_release, TAG(1));
    pt_custodian_register(a, on_release, TAG(10));
    pt_custodian_register(b, on_release, TAG(20));
    pt_custodian_register(b, on_release_shutdown_parent, TAG(21));
    pt_custodian_register(b, on_release, TAG(22));

    /* Started on the child alone: its callback takes the whole tree down. */
    pt_custodian_shutdown(b);
    assert_log((int[]){22, 21, 10, 1, 20}, 5);
    assert_true(pt_custodian_is_shut_down(root));
    assert_true(pt_custodian_is_shut_down(a));
    assert_int_equal(pt_custodian_unreaped_count(), 3);
    assert_all_reaped();
}

static void test_shutdown_parent_from_child_during_parent_shutdown(void **state)
{
    pt_custodian *root = pt_custodian_new(NULL);
    pt_custodian *a = pt_custodian_new(root);

    parent_target = root;
    pt_custodian_register(root, on_release, TAG(1));
    pt_custodian_register(a, on_release_shutdown_parent, TAG(10));

    pt_custodian_shutdown(root);
    assert_log((int[]){10, 1}, 2);
    assert_all_reaped();
}

/* A resource's close path unregisters its own entry, also when the custodian is what closes it.
 */
static pt_custodian_entry *own_entry;

static void on_release_unregister_self(void *data)
{
    on_release(data);
    pt_custodian_unregister(own_entry);
    pt_custodian_release(own_entry);
}

static void test_callback_unregisters_own_entry(void **state)
{
    pt_custodian *c = pt_custodian_new(NULL);
    pt_custodian_entry *fresh;

    pt_custodian_register(c, on_release, TAG(1));
    own_entry = pt_custodian_register(c, on_release_unregister_self, TAG(2));
    pt_custodian_release(own_entry);
    assert_log((int[]){2}, 1);
    /* The slot went back to the free list exactly once. */
    fresh = pt_custodian_register(c, on_release, TAG(3));
    assert_ptr_equal(fresh, own_entry);
    assert_non_null(pt_custodian_register(c, on_release, TAG(4)));
    assert_ptr_not_equal(pt_custodian_register(c, on_release, TAG(5)), own_entry);

    own_entry = pt_custodian_register(c, on_release_unregister_self, TAG(6));
    pt_custodian_shutdown(c);
    assert_log((int[]){2, 6, 5, 4, 3, 1}, 6);
    assert_all_reaped();
}

/* A callback may register on another, live custodian (and creates children there). */
static pt_custodian *other_target;

static void on_release_register_elsewhere(void *data)
{
    on_release(data);
    assert_non_null(pt_custodian_register(other_target, on_release, TAG(50)));
    assert_non_null(pt_custodian_new(other_target));
}

static void test_callback_registers_elsewhere(void **state)
{
    pt_custodian *c = pt_custodian_new(NULL);
    pt_custodian *other = pt_custodian_new(NULL);

    other_target = other;
    pt_custodian_register(c, on_release_register_elsewhere, TAG(1));
    pt_custodian_shutdown(c);
    assert_log((int[]){1}, 1);
    assert_int_equal(pt_custodian_live_count(), 2);
    pt_custodian_shutdown(other);
    assert_log((int[]){1, 50}, 2);
    assert_all_reaped();
}

static size_t counted;
static size_t ticks;

static void on_count(void *data)
{
    size_t want = (size_t)(uintptr_t)data;

    /* LIFO: the entries come back in exactly the reverse order of registration. */
    assert_int_equal(want, counted);
    counted--;
}

static void on_tick(void *data)
{
    ticks++;
}

static void test_ten_thousand_entries(void **state)
{
    enum { N = 10000 };
    static pt_custodian_entry *entries[N + 1];
    pt_custodian *c = pt_custodian_new(NULL);
    pt_custodian *child = pt_custodian_new(c);

    for (size_t i = 1; i <= N; i++) {
        entries[i] = pt_custodian_register(c, on_count, TAG(i));
        assert_non_null(entries[i]);
        assert_non_null(pt_custodian_register(child, on_tick, NULL));
    }
    for (size_t i = 2; i <= N; i++)
        assert_ptr_not_equal(entries[i], entries[i - 1]);

    ticks = 0;
    pt_custodian_shutdown(child);
    assert_int_equal(ticks, N);

    /* Drop the odd ones; renumber the even ones 1..N/2 through their handles, which must all
     * still be valid after the thousands of registrations that followed them. */
    for (size_t i = 1; i <= N; i += 2)
        pt_custodian_unregister(entries[i]);
    for (size_t i = 2; i <= N; i += 2)
        pt_custodian_entry_set(entries[i], TAG(i / 2));
    counted = N / 2;
    pt_custodian_shutdown(c);
    assert_int_equal(counted, 0);
    assert_int_equal(ticks, N);
    assert_all_reaped();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifo_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nesting_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_shut_down_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister_and_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregistered_slot_is_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_after_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_valid_until_reap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_from_own_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_from_released_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_parent_from_child_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_parent_from_child_during_parent_shutdown,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_unregisters_own_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_registers_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ten_thousand_entries, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
