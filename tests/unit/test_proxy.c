/* The reverse proxy's own decisions, without sockets: what of the heads it writes refuses line
 * breaks (the proxy_set_header values it expands, the upstream's header lines it passes on). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/handlers/proxy.c"
#include "tests/support.h"

/* ---- the heads it writes ---- */

static void test_a_set_header_value_with_a_line_break_is_refused(void **state)
{
    /* proxy_set_header's value goes through expand(); its literal text is put like the rest
     * (porter -t refuses such a value; this is the writer's own guard) */
    char buf[128];
    proxy_target t = {0};
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, sizeof buf);
    expand(&o, &t, NULL, "v\r\nX-Injected: 1");
    assert_true(o.forbidden);
    pt_h1_hbuf ok;
    pt_h1_hbuf_init(&ok, buf, sizeof buf);
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
    static pt_h1_response rs; /* (large) */
    rs.nfields = 1;
    rs.fields[0].name = (pt_h1_span){17, 3};
    rs.fields[0].value = (pt_h1_span){22, 7};
    char lines[256], ctype[64];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, lines, sizeof lines);
    passed_headers(&t, &rs, head, &o, ctype, sizeof ctype, false);
    assert_true(o.forbidden);
    /* and the same line without the LF is passed */
    rs.fields[0].value = (pt_h1_span){22, 3};
    pt_h1_hbuf o2;
    pt_h1_hbuf_init(&o2, lines, sizeof lines);
    passed_headers(&t, &rs, head, &o2, ctype, sizeof ctype, false);
    assert_false(o2.forbidden);
    assert_int_equal(o2.len, 10);
    assert_memory_equal(lines, "X-A: one\r\n", 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_a_set_header_value_with_a_line_break_is_refused),
        NOTHING_LEFT_TEST(test_upstream_header_lines_with_a_line_break_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
