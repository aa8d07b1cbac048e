/* Range headers: forms, satisfiability, the caps, and the multipart framing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "server/handlers/range.h"
#include "tests/support.h"

static pt_str S(const char *s)
{
    return (pt_str){s, strlen(s)};
}

/* "first-last,..." of the parsed ranges, or the return code as text. */
static const char *parse(const char *value, uint64_t size, size_t max)
{
    static char buf[512];
    pt_range r[16];
    int n = pt_range_parse(S(value), size, max, r);
    if (n == PT_RANGE_IGNORE)
        return "ignore";
    if (n == PT_RANGE_UNSATISFIABLE)
        return "416";
    size_t pos = 0;
    for (int i = 0; i < n; i++)
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s%llu-%llu", i ? "," : "",
                                (unsigned long long)r[i].first, (unsigned long long)r[i].last);
    return buf;
}

static void test_single_forms(void **state)
{
    static const struct {
        const char *value;
        uint64_t size;
        const char *want;
    } cases[] = {
        {"bytes=0-0", 100, "0-0"},
        {"bytes=0-99", 100, "0-99"},
        {"bytes=10-19", 100, "10-19"},
        {"bytes=50-", 100, "50-99"},   /* open */
        {"bytes=0-1000", 100, "0-99"}, /* clamped */
        {"bytes=99-", 100, "99-99"},
        {"bytes=-10", 100, "90-99"}, /* suffix */
        {"bytes=-100", 100, "0-99"},
        {"bytes=-1000", 100, "0-99"}, /* longer than the file: all of it */
        {"BYTES=1-2", 100, "1-2"},    /* the unit is case-insensitive */
        {"bytes= 1-2", 100, "1-2"},   /* OWS in the list */
        {"bytes=1-2 ", 100, "1-2"},
        {"bytes=0-18446744073709551615", 100, "0-99"},
        {"bytes=0-99999999999999999999999", 100, "0-99"}, /* saturates */
        /* unsatisfiable */
        {"bytes=100-", 100, "416"},
        {"bytes=100-200", 100, "416"},
        {"bytes=-0", 100, "416"},
        {"bytes=0-0", 0, "416"},
        {"bytes=99999999999999999999999-", 100, "416"},
        /* an empty file: a suffix range is served whole */
        {"bytes=-5", 0, "ignore"},
        /* not a valid ranges-specifier, or another unit: ignored */
        {"bytes=", 100, "ignore"},
        {"bytes=,", 100, "ignore"},
        {"bytes=5-2", 100, "ignore"},
        {"bytes=a-b", 100, "ignore"},
        {"bytes=1-2-3", 100, "ignore"},
        {"bytes=-", 100, "ignore"},
        {"bytes=--5", 100, "ignore"},
        {"bytes=+1-2", 100, "ignore"},
        {"bytes=1 -2", 100, "ignore"},
        {"bytes 1-2", 100, "ignore"},
        {"bytes=0x10-20", 100, "ignore"},
        {"items=1-2", 100, "ignore"},
        {"", 100, "ignore"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = parse(cases[i].value, cases[i].size, 16);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("\"%s\" of %llu: %s, want %s", cases[i].value,
                     (unsigned long long)cases[i].size, got, cases[i].want);
    }
}

static void test_multiple(void **state)
{
    static const struct {
        const char *value;
        size_t max;
        const char *want;
    } cases[] = {
        {"bytes=0-9,20-29", 16, "0-9,20-29"},
        {"bytes=20-29, 0-9", 16, "20-29,0-9"}, /* the order asked */
        {"bytes=0-9,,20-29,", 16, "0-9,20-29"},
        {"bytes=0-9,200-300,-5", 16, "0-9,95-99"}, /* unsatisfiable ones dropped */
        {"bytes=200-300,0-0", 16, "0-0"},
        {"bytes=200-300,300-", 16, "416"},
        {"bytes=0-9,x", 16, "ignore"},
        /* the cap counts every range asked */
        {"bytes=0-0,1-1,2-2", 3, "0-0,1-1,2-2"},
        {"bytes=0-0,1-1,2-2,3-3", 3, "ignore"},
        {"bytes=0-0,200-,201-,202-", 3, "ignore"},
        {"bytes=0-0,1-1", 1, "ignore"},
        /* overlapping ranges that ask for more than the file: the whole file instead */
        {"bytes=0-99,0-99", 16, "ignore"},
        {"bytes=0-60,40-99", 16, "ignore"},
        {"bytes=0-49,40-89", 16, "0-49,40-89"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = parse(cases[i].value, 100, cases[i].max);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("\"%s\" max %zu: %s, want %s", cases[i].value, cases[i].max, got,
                     cases[i].want);
    }
}

static void test_multipart_framing(void **state)
{
    const char *b = "00000000000000000042";
    pt_range r[2] = {{0, 9}, {90, 99}};
    char buf[256];
    size_t n = pt_range_part_head(buf, sizeof buf, b, "text/plain", r[0], 100);
    assert_string_equal(buf, "\r\n--00000000000000000042\r\nContent-Type: text/plain\r\n"
                             "Content-Range: bytes 0-9/100\r\n\r\n");
    assert_int_equal(n, strlen(buf));
    size_t n2 = pt_range_part_head(buf, sizeof buf, b, "text/plain", r[1], 100);
    size_t t = pt_range_part_tail(buf, sizeof buf, b);
    assert_string_equal(buf, "\r\n--00000000000000000042--\r\n");
    assert_int_equal(t, strlen(buf));
    assert_int_equal(pt_range_multipart_length(r, 2, b, "text/plain", 100), n + 10 + n2 + 10 + t);
    /* too small a buffer: the length it needs, nothing written past it */
    char small[8] = "xxxxxxx";
    assert_int_equal(pt_range_part_head(small, 1, b, "text/plain", r[0], 100), n);
    assert_int_equal(small[0], '\0');
}

static void test_boundaries_differ(void **state)
{
    char a[PT_RANGE_BOUNDARY_LEN + 1], b[PT_RANGE_BOUNDARY_LEN + 1];
    pt_range_boundary(a);
    pt_range_boundary(b);
    assert_int_equal(strlen(a), PT_RANGE_BOUNDARY_LEN);
    assert_int_equal(strspn(a, "0123456789"), PT_RANGE_BOUNDARY_LEN);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_single_forms),
        NOTHING_LEFT_TEST(test_multiple),
        NOTHING_LEFT_TEST(test_multipart_framing),
        NOTHING_LEFT_TEST(test_boundaries_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
