#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "connmgr/rate.h"

/*
 * The send-rate arithmetic (connmgr/rate.h): nginx's limit_rate, worked by hand. With rate R,
 * a response that began in second T0 and has sent `sent` bytes may at time t carry at most
 * R * (floor(t) - T0 + 1) - (sent - after) bytes; not positive, it waits that many bytes' time
 * plus a millisecond; after a write of n bytes past `after`, it waits n / R (whole
 * milliseconds). porter's own: a write past `after` carries at most R / 16 bytes (at least
 * 1 KiB), and a write up to 1/4 s late waits from when it was due.
 */

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-9)
        fail_msg("got %.9f, expected %.9f", got, want);
}

static void test_no_rate_allows_everything(void **state)
{
    pt_rate r;
    double wait = -1;
    pt_rate_init(&r, 0, 0, 100.0);
    assert_true(pt_rate_quota(&r, 0, 100.0, &wait) == UINT64_MAX);
    assert_true(pt_rate_quota(&r, UINT64_MAX - 1, 1e9, &wait) == UINT64_MAX);
    pt_rate_wrote(&r, 0, 1u << 30, 100.0);
    assert_true(pt_rate_quota(&r, 1u << 30, 100.0, &wait) == UINT64_MAX);
    assert_near(wait, -1); /* untouched */
}

static void test_a_write_carries_a_sixteenth_of_a_second(void **state)
{
    pt_rate r;
    double wait;
    /* 160000 B/s: the first second allows 160000, a write 10000 */
    pt_rate_init(&r, 160000, 0, 100.25);
    assert_int_equal(pt_rate_quota(&r, 0, 100.25, &wait), 10000);
    /* 1000 B/s: a sixteenth is 62 bytes, a write still carries 1 KiB... */
    pt_rate_init(&r, 1000, 0, 100.25);
    /* ... within the second's 1000 */
    assert_int_equal(pt_rate_quota(&r, 0, 100.25, &wait), 1000);
    assert_int_equal(pt_rate_quota(&r, 100, 100.25, &wait), 900);
    pt_rate_init(&r, 2000, 0, 100.25);
    assert_int_equal(pt_rate_quota(&r, 0, 100.25, &wait), 1024);
}

static void test_after_goes_at_once(void **state)
{
    pt_rate r;
    double wait;
    pt_rate_init(&r, 160000, 50000, 100.0);
    /* the first 50000 bytes and one write's share */
    assert_int_equal(pt_rate_quota(&r, 0, 100.0, &wait), 60000);
    assert_int_equal(pt_rate_quota(&r, 45000, 100.0, &wait), 15000);
    assert_int_equal(pt_rate_quota(&r, 50000, 100.0, &wait), 10000);
    /* bytes below `after` cost no time... */
    pt_rate_wrote(&r, 0, 50000, 100.0);
    assert_int_equal(pt_rate_quota(&r, 50000, 100.0, &wait), 10000);
    /* ...those above it do: 10000 bytes at 160000 B/s are 62 ms (nginx's whole ms) */
    pt_rate_wrote(&r, 45000, 60000, 100.0);
    assert_int_equal(pt_rate_quota(&r, 60000, 100.01, &wait), 0);
    assert_near(wait, 0.052);
    assert_int_equal(pt_rate_quota(&r, 60000, 100.062, &wait), 10000);
}

static void test_a_write_waits_its_bytes_time(void **state)
{
    pt_rate r;
    double wait;
    pt_rate_init(&r, 1000, 0, 10.0);
    pt_rate_wrote(&r, 0, 500, 10.0);
    assert_int_equal(pt_rate_quota(&r, 500, 10.2, &wait), 0);
    assert_near(wait, 0.3);
    assert_int_equal(pt_rate_quota(&r, 500, 10.5, &wait), 500);
    /* a pause under a millisecond is none */
    pt_rate_init(&r, 1000000, 0, 10.0);
    pt_rate_wrote(&r, 0, 999, 10.0);
    assert_int_equal(pt_rate_quota(&r, 999, 10.0, &wait), 62500);
    /* nothing written, nothing to wait for */
    pt_rate_wrote(&r, 999, 999, 10.0);
    assert_int_equal(pt_rate_quota(&r, 999, 10.0, &wait), 62500);
}

static void test_a_late_write_does_not_slow_the_rate(void **state)
{
    pt_rate r;
    double wait;
    pt_rate_init(&r, 1000, 0, 10.0);
    pt_rate_wrote(&r, 0, 100, 10.0);
    assert_near(r.resume, 10.1);
    /* due at 10.1, gone at 10.13: the next pause runs from 10.1 */
    assert_int_equal(pt_rate_quota(&r, 100, 10.13, &wait), 900);
    pt_rate_wrote(&r, 100, 200, 10.13);
    assert_near(r.resume, 10.2);
    /* due at 10.2, gone at 10.5 (the socket was full): afresh from 10.5 */
    pt_rate_wrote(&r, 200, 300, 10.5);
    assert_near(r.resume, 10.6);
}

static void test_over_the_allowance_waits(void **state)
{
    pt_rate r;
    double wait;
    /* begun in second 100: by the end of it at most 1000 bytes */
    pt_rate_init(&r, 1000, 0, 100.7);
    assert_int_equal(pt_rate_quota(&r, 1000, 100.9, &wait), 0);
    assert_near(wait, 0.001); /* nginx's: -limit * 1000 / rate + 1 ms */
    assert_int_equal(pt_rate_quota(&r, 1500, 100.9, &wait), 0);
    assert_near(wait, 0.501);
    /* the next second allows 2000 in all, the one after 3000 */
    assert_int_equal(pt_rate_quota(&r, 1500, 101.0, &wait), 500);
    assert_int_equal(pt_rate_quota(&r, 1500, 102.3, &wait), 1024);
    assert_int_equal(pt_rate_quota(&r, 2900, 102.3, &wait), 100);
    /* `after` raises the allowance by as much */
    pt_rate_init(&r, 1000, 4000, 100.7);
    assert_int_equal(pt_rate_quota(&r, 4900, 100.9, &wait), 100);
    assert_int_equal(pt_rate_quota(&r, 5000, 100.9, &wait), 0);
}

static void test_a_clock_stepped_back_counts_as_the_first_second(void **state)
{
    pt_rate r;
    double wait;
    pt_rate_init(&r, 1000, 0, 100.0);
    assert_int_equal(pt_rate_quota(&r, 0, 98.0, &wait), 1000);
    assert_int_equal(pt_rate_quota(&r, 1000, 98.0, &wait), 0);
}

static void test_huge_values_do_not_wrap(void **state)
{
    pt_rate r;
    double wait;
    /* a rate near 2^64 for a long time: the allowance saturates instead of wrapping */
    pt_rate_init(&r, UINT64_MAX, 0, 0.0);
    assert_true(pt_rate_quota(&r, 0, 1e9, &wait) == UINT64_MAX / 16);
    pt_rate_init(&r, UINT64_MAX, UINT64_MAX, 0.0);
    assert_true(pt_rate_quota(&r, 0, 1e9, &wait) == UINT64_MAX);
    /* far over a small rate: a long wait, still exact */
    pt_rate_init(&r, 1, 0, 0.0);
    assert_int_equal(pt_rate_quota(&r, UINT64_MAX, 0.0, &wait), 0);
    assert_true(wait > 1e16);
    pt_rate_wrote(&r, 0, UINT64_MAX, 0.0);
    assert_true(r.resume > 1e16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_rate_allows_everything),
        cmocka_unit_test(test_a_write_carries_a_sixteenth_of_a_second),
        cmocka_unit_test(test_after_goes_at_once),
        cmocka_unit_test(test_a_write_waits_its_bytes_time),
        cmocka_unit_test(test_a_late_write_does_not_slow_the_rate),
        cmocka_unit_test(test_over_the_allowance_waits),
        cmocka_unit_test(test_a_clock_stepped_back_counts_as_the_first_second),
        cmocka_unit_test(test_huge_values_do_not_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
