/* The proxy's head writer: whatever goes inside a field may hold no CR, LF or NUL, whatever the
 * parser before it let through, so no head porter writes can be read as two messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/proxy.c"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_refuse_line_breaks_and_nul),
        cmocka_unit_test(test_fields_take_text_tabs_and_obs_text),
        cmocka_unit_test(test_a_set_header_value_with_a_line_break_is_refused),
        cmocka_unit_test(test_upstream_header_lines_with_a_line_break_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
