/* Preconditions (RFC 9110 section 13): the order of evaluation, weak and strong comparison,
 * dates, If-Range. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <string.h>

#include "server/handlers/conditional.h"
#include "tests/support.h"

static pt_str S(const char *s)
{
    return s ? (pt_str){s, strlen(s)} : (pt_str){NULL, 0};
}

#define ETAG "\"5f-1a\""
#define MTIME ((time_t)1700000000) /* Tue, 14 Nov 2023 22:13:20 GMT */
#define NOW ((time_t)1800000000)
#define AT_MTIME "Tue, 14 Nov 2023 22:13:20 GMT"
#define BEFORE "Tue, 14 Nov 2023 22:13:19 GMT"
#define AFTER "Tue, 14 Nov 2023 22:13:21 GMT"
#define FUTURE "Fri, 01 Jan 2100 00:00:00 GMT"

static void test_etag_match(void **state)
{
    static const struct {
        const char *list, *etag;
        bool weak, want;
    } cases[] = {
        {"*", ETAG, false, true},
        {" * ", ETAG, true, true},
        {"*", "", false, true},
        {ETAG, ETAG, false, true},
        {ETAG, ETAG, true, true},
        {"\"x\", " ETAG, ETAG, false, true},
        {"\"x\"," ETAG ",\"y\"", ETAG, true, true},
        {"W/" ETAG, ETAG, true, true},   /* weak comparison ignores W/ */
        {"W/" ETAG, ETAG, false, false}, /* strong comparison: a weak tag never matches */
        {ETAG, "W/" ETAG, true, true},
        {ETAG, "W/" ETAG, false, false},
        {"\"5f-1b\"", ETAG, true, false},
        {"\"5f-1a", ETAG, true, false}, /* unterminated */
        {"5f-1a", ETAG, true, false},   /* unquoted */
        {"\"\"", "", true, false},      /* no ETag: only * matches */
        {"", ETAG, true, false},
        {"\"a,b\", " ETAG, ETAG, true, true}, /* a comma inside a tag */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (pt_cond_etag_match(S(cases[i].list), S(cases[i].etag), cases[i].weak) != cases[i].want)
            fail_msg("'%s' vs '%s' (%s): want %d", cases[i].list, cases[i].etag,
                     cases[i].weak ? "weak" : "strong", cases[i].want);
}

static void test_evaluate(void **state)
{
    static const struct {
        const char *im, *inm, *ims, *ius;
        bool get;
        int want;
    } cases[] = {
        {NULL, NULL, NULL, NULL, true, PT_COND_PROCEED},
        /* If-None-Match */
        {NULL, ETAG, NULL, NULL, true, PT_COND_NOT_MODIFIED},
        {NULL, "W/" ETAG, NULL, NULL, true, PT_COND_NOT_MODIFIED},
        {NULL, "*", NULL, NULL, true, PT_COND_NOT_MODIFIED},
        {NULL, "\"other\"", NULL, NULL, true, PT_COND_PROCEED},
        {NULL, ETAG, NULL, NULL, false, PT_COND_FAILED}, /* not GET/HEAD: 412 */
        /* If-Modified-Since: not modified since the date (equal or later) */
        {NULL, NULL, AT_MTIME, NULL, true, PT_COND_NOT_MODIFIED},
        {NULL, NULL, AFTER, NULL, true, PT_COND_NOT_MODIFIED},
        {NULL, NULL, BEFORE, NULL, true, PT_COND_PROCEED},
        {NULL, NULL, "yesterday", NULL, true, PT_COND_PROCEED}, /* invalid: ignored */
        {NULL, NULL, FUTURE, NULL, true, PT_COND_PROCEED},      /* in the future: ignored */
        {NULL, NULL, AT_MTIME, NULL, false, PT_COND_PROCEED},   /* GET and HEAD only */
        {NULL, NULL, "Tuesday, 14-Nov-23 22:13:20 GMT", NULL, true, PT_COND_NOT_MODIFIED},
        {NULL, NULL, "Tue Nov 14 22:13:20 2023", NULL, true, PT_COND_NOT_MODIFIED},
        /* If-None-Match wins over If-Modified-Since */
        {NULL, "\"other\"", AT_MTIME, NULL, true, PT_COND_PROCEED},
        {NULL, ETAG, BEFORE, NULL, true, PT_COND_NOT_MODIFIED},
        /* If-Match: strong */
        {ETAG, NULL, NULL, NULL, true, PT_COND_PROCEED},
        {"*", NULL, NULL, NULL, true, PT_COND_PROCEED},
        {"\"other\"", NULL, NULL, NULL, true, PT_COND_FAILED},
        {"W/" ETAG, NULL, NULL, NULL, true, PT_COND_FAILED},
        /* If-Unmodified-Since */
        {NULL, NULL, NULL, AT_MTIME, true, PT_COND_PROCEED},
        {NULL, NULL, NULL, AFTER, true, PT_COND_PROCEED},
        {NULL, NULL, NULL, BEFORE, true, PT_COND_FAILED},
        {NULL, NULL, NULL, "garbage", true, PT_COND_PROCEED},
        /* If-Match wins over If-Unmodified-Since */
        {ETAG, NULL, NULL, BEFORE, true, PT_COND_PROCEED},
        /* 412 before 304 */
        {"\"other\"", ETAG, NULL, NULL, true, PT_COND_FAILED},
        {NULL, ETAG, NULL, BEFORE, true, PT_COND_FAILED},
        {ETAG, ETAG, NULL, NULL, true, PT_COND_NOT_MODIFIED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pt_cond_request c = {S(cases[i].im), S(cases[i].inm), S(cases[i].ims), S(cases[i].ius)};
        int got = pt_cond_evaluate(&c, cases[i].get, S(ETAG), MTIME, NOW);
        if (got != cases[i].want)
            fail_msg("case %zu: %d, want %d", i, got, cases[i].want);
    }
    /* without an ETag (etag off) a tag never matches, "*" still does */
    pt_cond_request c = {.if_none_match = S(ETAG)};
    assert_int_equal(pt_cond_evaluate(&c, true, S(""), MTIME, NOW), PT_COND_PROCEED);
    c = (pt_cond_request){.if_match = S(ETAG)};
    assert_int_equal(pt_cond_evaluate(&c, true, S(""), MTIME, NOW), PT_COND_FAILED);
    c = (pt_cond_request){.if_match = S("*")};
    assert_int_equal(pt_cond_evaluate(&c, true, S(""), MTIME, NOW), PT_COND_PROCEED);
}

static void test_if_range(void **state)
{
    assert_true(pt_cond_if_range(S(ETAG), S(ETAG), MTIME));
    assert_true(pt_cond_if_range(S(" " ETAG), S(ETAG), MTIME));
    assert_false(pt_cond_if_range(S("\"other\""), S(ETAG), MTIME));
    assert_false(pt_cond_if_range(S("W/" ETAG), S(ETAG), MTIME)); /* weak: never */
    assert_false(pt_cond_if_range(S(ETAG), S(""), MTIME));
    assert_true(pt_cond_if_range(S(AT_MTIME), S(ETAG), MTIME)); /* the date, exactly */
    assert_false(pt_cond_if_range(S(AFTER), S(ETAG), MTIME));
    assert_false(pt_cond_if_range(S(BEFORE), S(ETAG), MTIME));
    assert_false(pt_cond_if_range(S("not a date"), S(ETAG), MTIME));
    assert_false(pt_cond_if_range(S(""), S(ETAG), MTIME));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_etag_match),
        NOTHING_LEFT_TEST(test_evaluate),
        NOTHING_LEFT_TEST(test_if_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
