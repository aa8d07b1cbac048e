/* The proxy's head writer: whatever goes inside a field may hold no CR, LF or NUL, whatever the
 * parser before it let through, so no head porter writes can be read as two messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/handlers/proxy.c"
#include "tests/support.h"

static void test_fields_refuse_line_breaks_and_nul(void **state)
{
    const char *bad[] = {"a\rb", "a\nb", "a\r\nX-Injected: 1", "\n", "ab\r"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char buf[64];
        hbuf o = {buf, 0, sizeof buf, false, false};
        PUT_LIT(&o, "X: ");
        put(&o, bad[i], strlen(bad[i]));
        assert_true(o.forbidden);
        assert_int_equal(o.len, 3); /* nothing of it was written */
    }
    char buf[64];
    hbuf o = {buf, 0, sizeof buf, false, false};
    put(&o, "a\0b", 3);
    assert_true(o.forbidden);
}

static void test_fields_take_text_tabs_and_obs_text(void **state)
{
    char buf[64];
    hbuf o = {buf, 0, sizeof buf, false, false};
    PUT_LIT(&o, "X: ");
    put(&o, "a\tb caf\xc3\xa9 ~\x7f", 12);
    PUT_LIT(&o, "\r\n");
    assert_false(o.forbidden);
    assert_false(o.overflow);
    assert_int_equal(o.len, 17);
    assert_memory_equal(buf, "X: a\tb caf\xc3\xa9 ~\x7f\r\n", 17);
}

static void test_a_set_header_value_with_a_line_break_is_refused(void **state)
{
    /* proxy_set_header's value goes through expand(); its literal text is put() like the rest
     * (porter -t refuses such a value; this is the writer's own guard) */
    char buf[128];
    proxy_target t = {0};
    hbuf o = {buf, 0, sizeof buf, false, false};
    expand(&o, &t, NULL, "v\r\nX-Injected: 1");
    assert_true(o.forbidden);
    hbuf ok = {buf, 0, sizeof buf, false, false};
    expand(&ok, &t, NULL, "plain value");
    assert_false(ok.forbidden);
    assert_int_equal(ok.len, 11);
}

static void test_upstream_header_lines_with_a_line_break_are_refused(void **state)
{
    /* a response field whose value holds a LF (as a looser parser might let through) is not
     * passed on to the client */
    static const char head[] = "HTTP/1.1 200 OK\r\nX-A: one\ntwo\r\nContent-Length: 0\r\n\r\n";
    pt_conf_proxy cf = {0};
    proxy_target t = {.conf = &cf};
    proxy_req p = {.t = &t};
    p.ub = (pt_inbuf){.data = (char *)head, .end = sizeof head - 1, .cap = sizeof head};
    p.nhdrs = 1;
    p.hdrs[0].name = (span){17, 3};
    p.hdrs[0].value = (span){22, 7};
    char lines[256], ctype[64];
    hbuf o = {lines, 0, sizeof lines, false, false};
    passed_headers(&p, &o, ctype, sizeof ctype, false);
    assert_true(o.forbidden);
    /* and the same line without the LF is passed */
    p.hdrs[0].value = (span){22, 3};
    hbuf o2 = {lines, 0, sizeof lines, false, false};
    passed_headers(&p, &o2, ctype, sizeof ctype, false);
    assert_false(o2.forbidden);
    assert_int_equal(o2.len, 10);
    assert_memory_equal(lines, "X-A: one\r\n", 10);
}

/* Parses `head` as an upstream's answer to HEAD, as parse() feeds llhttp: a head porter takes
 * ends the message (HPE_PAUSED), one it refuses stops the parser in on_headers_complete
 * (HPE_CB_HEADERS_COMPLETE) and `p` keeps why. */
static llhttp_errno_t parse_head(proxy_req *p, const char *head)
{
    init_settings();
    *p = (proxy_req){0};
    p->ub = (pt_inbuf){.data = (char *)head, .end = strlen(head), .cap = strlen(head) + 1};
    p->head_req = true;
    llhttp_init(&p->parser, HTTP_RESPONSE, &settings);
    p->parser.data = p;
    p->fed_from = head;
    return llhttp_execute(&p->parser, head, strlen(head));
}

static void test_upstream_field_names_must_be_tokens(void **state)
{
    static const struct {
        const char *head, *why;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\n: b\r\nContent-Length: 0\r\n\r\n", "empty header field name"},
        {"HTTP/1.1 200 OK\r\nX-A: 1\r\n:\r\n\r\n", "empty header field name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        proxy_req p;
        assert_int_equal(parse_head(&p, cases[i].head), HPE_CB_HEADERS_COMPLETE);
        assert_true(p.bad_framing);
        assert_non_null(p.refused);
        assert_string_equal(p.refused, cases[i].why);
    }
    /* names llhttp itself refuses (not tchar) stay refused, whoever refuses them */
    static const char *const llhttp_refuses[] = {
        "HTTP/1.1 200 OK\r\nX(A): b\r\n\r\n",   "HTTP/1.1 200 OK\r\nX A: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX\x80Y: b\r\n\r\n", "HTTP/1.1 200 OK\r\nX\"Y: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof llhttp_refuses / sizeof *llhttp_refuses; i++) {
        proxy_req p;
        llhttp_errno_t e = parse_head(&p, llhttp_refuses[i]);
        assert_int_not_equal(e, HPE_OK);
        assert_int_not_equal(e, HPE_PAUSED);
    }
    proxy_req p;
    assert_int_equal(parse_head(&p, "HTTP/1.1 200 OK\r\nX-A!#$%&'*+.^_`|~9: b\r\n\r\n"),
                     HPE_PAUSED);
    assert_null(p.refused);
}

static void test_invalid_field_looks_at_every_byte(void **state)
{
    /* the spans as llhttp might report them: the check refuses what a looser parser would let
     * through */
    static const char head[] = "X(A)Y-Ok\tv\ra\nb\0c";
    proxy_req p = {0};
    p.ub = (pt_inbuf){.data = (char *)head, .end = sizeof head - 1, .cap = sizeof head};
    p.nhdrs = 1;
    static const struct {
        span name, value;
        const char *why;
    } cases[] = {
        {{0, 4}, {8, 2}, "invalid header field name"},        /* "X(A)" */
        {{5, 0}, {8, 2}, "empty header field name"},          /* "" */
        {{4, 4}, {9, 3}, "CR, LF or NUL in a header field"},  /* "v\ra" */
        {{4, 4}, {11, 3}, "CR, LF or NUL in a header field"}, /* "a\nb" */
        {{4, 4}, {13, 3}, "CR, LF or NUL in a header field"}, /* "b\0c" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        p.hdrs[0] = (hspan){cases[i].name, cases[i].value};
        const char *why = invalid_field(&p);
        assert_non_null(why);
        assert_string_equal(why, cases[i].why);
    }
    p.hdrs[0] = (hspan){{4, 4}, {8, 2}}; /* "Y-Ok: \tv": a token, text and a tab */
    assert_null(invalid_field(&p));
}

static void test_upstream_status_codes_outside_100_599_are_refused(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.1 043 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 000 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 099 X\r\n\r\n",
        "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        proxy_req p;
        assert_int_equal(parse_head(&p, heads[i]), HPE_CB_HEADERS_COMPLETE);
        assert_true(p.bad_framing);
        assert_non_null(p.refused);
        assert_string_equal(p.refused, "status code out of 100-599");
    }
    /* the bounds themselves are statuses: 100 is interim (the final answer follows), 599 is
     * answered */
    proxy_req p;
    assert_int_equal(parse_head(&p, "HTTP/1.1 100 Continue\r\n\r\n"), HPE_OK);
    assert_null(p.refused);
    assert_int_equal(parse_head(&p, "HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n"), HPE_PAUSED);
    assert_null(p.refused);
    assert_false(p.bad_framing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_fields_refuse_line_breaks_and_nul),
        NOTHING_LEFT_TEST(test_fields_take_text_tabs_and_obs_text),
        NOTHING_LEFT_TEST(test_a_set_header_value_with_a_line_break_is_refused),
        NOTHING_LEFT_TEST(test_upstream_header_lines_with_a_line_break_are_refused),
        NOTHING_LEFT_TEST(test_upstream_field_names_must_be_tokens),
        NOTHING_LEFT_TEST(test_invalid_field_looks_at_every_byte),
        NOTHING_LEFT_TEST(test_upstream_status_codes_outside_100_599_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
