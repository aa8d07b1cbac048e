#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "connmgr/limits.h"
#include "tests/support.h"

/* The count/size fields and the timeout fields of pt_limits, listed once for the checks below. */
#define SIZE_FIELDS(X)                                                                             \
    X(max_waiting)                                                                                 \
    X(max_concurrent)                                                                              \
    X(max_request_line_length)                                                                     \
    X(max_request_headers)                                                                         \
    X(max_request_header_length)                                                                   \
    X(max_request_body_length)                                                                     \
    X(keepalive_requests)

#define TIMEOUT_FIELDS(X)                                                                          \
    X(request_read_timeout)                                                                        \
    X(response_timeout)                                                                            \
    X(response_send_timeout)                                                                       \
    X(shutdown_grace_period)                                                                       \
    X(keepalive_timeout)

static void test_defaults_are_rackets(void **state)
{
    pt_limits l;
    pt_limits_init(&l);

    /* Racket's make-safety-limits. */
    assert_int_equal(l.max_waiting, 511);
    assert_int_equal(l.max_concurrent, 10000);
    assert_true(l.request_read_timeout == 60);
    assert_int_equal(l.max_request_line_length, 8 * 1024);
    assert_int_equal(l.max_request_headers, 100);
    assert_int_equal(l.max_request_header_length, 8 * 1024);
    assert_int_equal(l.max_request_body_length, 1024 * 1024);
    assert_true(l.response_timeout == 60);
    assert_true(l.response_send_timeout == 60);
    /* porter's own bounds. */
    assert_true(l.shutdown_grace_period == 10);
    assert_true(l.keepalive_timeout == 75);
    assert_int_equal(l.keepalive_requests, 1000);
}

static void test_defaults_bound_everything(void **state)
{
    pt_limits l;
    pt_limits_init(&l);

#define CHECK_SIZE(f) assert_true(l.f > 0 && l.f != PT_LIMIT_NONE);
#define CHECK_TIMEOUT(f) assert_false(pt_timeout_is_none(l.f));
    SIZE_FIELDS(CHECK_SIZE)
    TIMEOUT_FIELDS(CHECK_TIMEOUT)
#undef CHECK_SIZE
#undef CHECK_TIMEOUT
}

static void test_unlimited_bounds_nothing(void **state)
{
    pt_limits u, d;
    pt_limits_init_unlimited(&u);
    pt_limits_init(&d);

#define CHECK_TIMEOUT(f) assert_true(pt_timeout_is_none(u.f));
    TIMEOUT_FIELDS(CHECK_TIMEOUT)
#undef CHECK_TIMEOUT
    assert_int_equal(u.max_concurrent, PT_LIMIT_NONE);
    assert_int_equal(u.max_request_line_length, PT_LIMIT_NONE);
    assert_int_equal(u.max_request_headers, PT_LIMIT_NONE);
    assert_int_equal(u.max_request_header_length, PT_LIMIT_NONE);
    assert_int_equal(u.max_request_body_length, PT_LIMIT_NONE);
    assert_int_equal(u.keepalive_requests, PT_LIMIT_NONE);
    /* The listen backlog is a real number handed to listen(2) (Racket keeps 511 here too), so
     * it cannot be "none"; it must just not be tighter than the default. */
    assert_true(u.max_waiting >= d.max_waiting);
    assert_true(u.max_waiting <= INT32_MAX);

    /* Nothing the defaults allow is refused by the unlimited set. */
#define CHECK_SIZE(f) assert_true(u.f >= d.f);
    SIZE_FIELDS(CHECK_SIZE)
#undef CHECK_SIZE
}

static void test_timeout_is_none(void **state)
{
    assert_true(pt_timeout_is_none(PT_TIMEOUT_NONE));
    assert_true(pt_timeout_is_none(0));
    assert_true(pt_timeout_is_none(-1));
    assert_true(pt_timeout_is_none(-INFINITY));
    assert_false(pt_timeout_is_none(0.001));
    assert_false(pt_timeout_is_none(60));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_defaults_are_rackets),
        NOTHING_LEFT_TEST(test_defaults_bound_everything),
        NOTHING_LEFT_TEST(test_unlimited_bounds_nothing),
        NOTHING_LEFT_TEST(test_timeout_is_none),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
