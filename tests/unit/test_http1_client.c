/* The HTTP/1 client (server/http1/client.c), through its API and without sockets: the head
 * writer, whose fields may hold no CR, LF or NUL whatever the parser before it let through (so no
 * head porter writes can be read as two messages). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "server/http1/client.h"
#include "tests/support.h"

/* ---- the head writer ---- */

static void test_fields_refuse_line_breaks_and_nul(void **state)
{
    const char *bad[] = {"a\rb", "a\nb", "a\r\nX-Injected: 1", "\n", "ab\r"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char buf[64];
        pt_h1_hbuf o;
        pt_h1_hbuf_init(&o, buf, sizeof buf);
        PT_H1_PUT_LIT(&o, "X: ");
        pt_h1_put(&o, bad[i], strlen(bad[i]));
        assert_true(o.forbidden);
        assert_int_equal(o.len, 3); /* nothing of it was written */
    }
    char buf[64];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, sizeof buf);
    pt_h1_put(&o, "a\0b", 3);
    assert_true(o.forbidden);
}

static void test_fields_take_text_tabs_and_obs_text(void **state)
{
    char buf[64];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, sizeof buf);
    PT_H1_PUT_LIT(&o, "X: ");
    pt_h1_put(&o, "a\tb caf\xc3\xa9 ~\x7f", 12);
    PT_H1_PUT_LIT(&o, "\r\n");
    assert_false(o.forbidden);
    assert_false(o.overflow);
    assert_int_equal(o.len, 17);
    assert_memory_equal(buf, "X: a\tb caf\xc3\xa9 ~\x7f\r\n", 17);
}

/* A fresh head in `buf` (`cap` bytes) with the field text `s` put into it. */
static pt_h1_hbuf field_in(char *buf, size_t cap, const char *s)
{
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, cap);
    pt_h1_puts(&o, s);
    return o;
}

/* A fresh head in `buf` (`cap` bytes) with the header line of the spans `name` and `value` of
 * `text` put into it. */
static pt_h1_hbuf line_in(char *buf, size_t cap, const char *text, pt_h1_span name,
                          pt_h1_span value)
{
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, cap);
    pt_h1_put_field(&o, pt_h1_span_str(text, name), pt_h1_span_str(text, value));
    return o;
}

static void test_a_field_value_with_a_line_break_is_refused(void **state)
{
    /* a proxy_set_header value's literal text is put like any field (porter -t refuses such a
     * value; this is the writer's own guard) */
    char buf[128];
    assert_true(field_in(buf, sizeof buf, "v\r\nX-Injected: 1").forbidden);
    pt_h1_hbuf ok = field_in(buf, sizeof buf, "plain value");
    assert_false(ok.forbidden);
    assert_int_equal(ok.len, 11);
}

static void test_upstream_header_lines_with_a_line_break_are_refused(void **state)
{
    /* a response field whose value holds a LF (as a looser parser might let through) is not
     * passed on as a header line */
    static const char head[] = "HTTP/1.1 200 OK\r\nX-A: one\ntwo\r\nContent-Length: 0\r\n\r\n";
    char lines[256];
    pt_h1_span name = {17, 3};
    assert_true(line_in(lines, sizeof lines, head, name, (pt_h1_span){22, 7}).forbidden);
    /* and the same line without the LF is passed */
    pt_h1_hbuf o2 = line_in(lines, sizeof lines, head, name, (pt_h1_span){22, 3});
    assert_false(o2.forbidden);
    assert_int_equal(o2.len, 10);
    assert_memory_equal(lines, "X-A: one\r\n", 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_fields_refuse_line_breaks_and_nul),
        NOTHING_LEFT_TEST(test_fields_take_text_tabs_and_obs_text),
        NOTHING_LEFT_TEST(test_a_field_value_with_a_line_break_is_refused),
        NOTHING_LEFT_TEST(test_upstream_header_lines_with_a_line_break_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
