/* Access-log formats: the three escapings byte by byte, compiling (and its refusals), and
 * lines cut short that stay well formed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "server/core/logfmt.h"
#include "tests/support.h"

/* Escapes `in` (`n` bytes) with room `cap`; returns the text and, in *taken, what was read. */
static const char *esc(pt_log_escape e, const char *in, size_t n, size_t cap, size_t *taken)
{
    static char out[256];
    size_t t, len = pt_logfmt_escape(e, out, cap, in, n, &t);
    out[len] = '\0';
    if (taken)
        *taken = t;
    return out;
}

#define ESC(e, lit) esc(e, lit, sizeof(lit) - 1, 255, NULL)

static void test_default_escaping(void **state)
{
    (void)state;
    /* nginx's: ", \, bytes below 32 and above 126 as \xHH (upper case); the rest as it is */
    assert_string_equal(ESC(PT_LOG_ESCAPE_DEFAULT, "plain text/~!"), "plain text/~!");
    assert_string_equal(ESC(PT_LOG_ESCAPE_DEFAULT, "a\"b\\c"), "a\\x22b\\x5Cc");
    assert_string_equal(ESC(PT_LOG_ESCAPE_DEFAULT, "\t\n\x01\x1f\x7f"),
                        "\\x09\\x0A\\x01\\x1F\\x7F");
    assert_string_equal(ESC(PT_LOG_ESCAPE_DEFAULT, "\xc3\xa9\xff"), "\\xC3\\xA9\\xFF");
    assert_string_equal(esc(PT_LOG_ESCAPE_DEFAULT, "a\0b", 3, 255, NULL), "a\\x00b");
}

static void test_json_escaping(void **state)
{
    (void)state;
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "plain 'text'/~!"), "plain 'text'/~!");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "a\"b\\c"), "a\\\"b\\\\c");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\x01\x1f\x7f"), "\\u0001\\u001f\\u007f");
    assert_string_equal(esc(PT_LOG_ESCAPE_JSON, "\0", 1, 255, NULL), "\\u0000");
    /* UTF-8 stays as it is: 2, 3 and 4 bytes, the edges of each range */
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xc2\x80\xdf\xbf"), "\xc2\x80\xdf\xbf");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xe0\xa0\x80\xef\xbf\xbf\xe2\x82\xac"),
                        "\xe0\xa0\x80\xef\xbf\xbf\xe2\x82\xac");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
                        "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
    /* what is not UTF-8 becomes U+FFFD, a byte at a time: a stray continuation byte, a lead
     * byte without its continuation, overlong forms, a surrogate, above U+10FFFF, 0xff */
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\x80"), "\\ufffd");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xc3("), "\\ufffd(");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xc3"), "\\ufffd");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xc0\xaf"), "\\ufffd\\ufffd");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xe0\x80\xaf"), "\\ufffd\\ufffd\\ufffd");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xf4\x90\x80\x80"),
                        "\\ufffd\\ufffd\\ufffd\\ufffd");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "\xe2\x82"), "\\ufffd\\ufffd");
    assert_string_equal(ESC(PT_LOG_ESCAPE_JSON, "x\xff\xfey"), "x\\ufffd\\ufffdy");
}

static void test_none(void **state)
{
    (void)state;
    assert_string_equal(ESC(PT_LOG_ESCAPE_NONE, "a\"b\\c\t\xff"), "a\"b\\c\t\xff");
}

static void test_whole_escapes_only(void **state)
{
    (void)state;
    size_t taken;
    /* room for "ab" and not for all of \x22: it stops before the escape */
    assert_string_equal(esc(PT_LOG_ESCAPE_DEFAULT, "ab\"c", 4, 5, &taken), "ab");
    assert_int_equal(taken, 2);
    assert_string_equal(esc(PT_LOG_ESCAPE_DEFAULT, "ab\"c", 4, 6, &taken), "ab\\x22");
    assert_int_equal(taken, 3);
    /* a character of three bytes goes whole or not at all */
    assert_string_equal(esc(PT_LOG_ESCAPE_JSON, "a\xe2\x82\xac", 4, 3, &taken), "a");
    assert_int_equal(taken, 1);
    assert_string_equal(esc(PT_LOG_ESCAPE_JSON, "a\\", 2, 2, &taken), "a");
    assert_int_equal(taken, 1);
    assert_string_equal(esc(PT_LOG_ESCAPE_JSON, "a\x01", 2, 6, &taken), "a");
    assert_string_equal(esc(PT_LOG_ESCAPE_NONE, "abcdef", 6, 4, &taken), "abcd");
    assert_int_equal(taken, 4);
}

static void test_compile_refusals(void **state)
{
    (void)state;
    pt_logfmt *f = NULL;
    char why[128];
    size_t at = 99;
    assert_int_equal(
        pt_logfmt_compile(&f, "$status $nosuch", PT_LOG_ESCAPE_DEFAULT, why, sizeof why, &at),
        -EINVAL);
    assert_null(f);
    assert_string_equal(why, "unknown variable \"$nosuch\"");
    assert_int_equal(at, 8);
    assert_int_equal(pt_logfmt_compile(&f, "x ${status", PT_LOG_ESCAPE_JSON, why, sizeof why, &at),
                     -EINVAL);
    assert_string_equal(why, "invalid variable name \"${status\"");
    assert_int_equal(at, 2);
    assert_int_equal(pt_logfmt_compile(&f, "100$", PT_LOG_ESCAPE_JSON, why, sizeof why, &at),
                     -EINVAL);
    assert_int_equal(at, 3);
    /* every variable the other users know, the log's own, and $http_NAME */
    assert_int_equal(pt_logfmt_compile(&f, "$host $uri $status $msec ${request}x $http_a_b",
                                       PT_LOG_ESCAPE_DEFAULT, why, sizeof why, &at),
                     0);
    pt_logfmt_free(f);
    pt_logfmt_free(NULL);
}

static pt_header headers[2];

static pt_request request(void)
{
    pt_request r;
    memset(&r, 0, sizeof r);
    r.method = PT_STR_LIT("GET");
    r.target = PT_STR_LIT("/a\"b");
    r.version_major = 1;
    r.version_minor = 1;
    r.status = 404;
    r.body_bytes_sent = 1234;
    headers[0] = (pt_header){PT_STR_LIT("User-Agent"), PT_STR_LIT("ua \"1\"")};
    headers[1] = (pt_header){PT_STR_LIT("X-Long-Name"), PT_STR_LIT("")};
    r.headers = headers;
    r.nheaders = 2;
    return r;
}

static size_t line(const char *text, pt_log_escape e, const pt_request *r, char *buf, size_t cap)
{
    pt_logfmt *f;
    char why[128];
    size_t at;
    assert_int_equal(pt_logfmt_compile(&f, text, e, why, sizeof why, &at), 0);
    size_t n = pt_logfmt_line(f, r, buf, cap);
    buf[n] = '\0';
    pt_logfmt_free(f);
    return n;
}

static void test_lines(void **state)
{
    (void)state;
    pt_request r = request();
    char buf[512];
    line("[$request] $status $body_bytes_sent \"$http_user_agent\" <$http_x_long_name> "
         "<$http_missing> <$remote_user>",
         PT_LOG_ESCAPE_DEFAULT, &r, buf, sizeof buf - 1);
    /* empty and absent values are "-" */
    assert_string_equal(buf, "[GET /a\\x22b HTTP/1.1] 404 1234 \"ua \\x221\\x22\" <-> <-> <->");
    line("{\"r\":\"$request\",\"s\":$status,\"ua\":\"$http_user_agent\",\"m\":\"$http_missing\"}",
         PT_LOG_ESCAPE_JSON, &r, buf, sizeof buf - 1);
    assert_string_equal(
        buf, "{\"r\":\"GET /a\\\"b HTTP/1.1\",\"s\":404,\"ua\":\"ua \\\"1\\\"\",\"m\":\"\"}");
}

static void test_cut_lines_keep_their_shape(void **state)
{
    (void)state;
    pt_request r = request();
    char big[600];
    memset(big, '"', sizeof big);
    headers[0].value = (pt_str){big, sizeof big};
    char buf[256];
    /* The agent's value takes what the literal text and the status leave: whole escapes, and
     * the line ends as its format does. */
    size_t n =
        line("{\"ua\":\"$http_user_agent\",\"s\":$status}", PT_LOG_ESCAPE_JSON, &r, buf, 100);
    /* 7 bytes before the value, 10 kept after it ("," "s": 404 }): 41 escaped quotes fit */
    char want[128] = "{\"ua\":\"";
    for (int i = 0; i < 41; i++)
        strcat(want, "\\\"");
    strcat(want, "\",\"s\":404}");
    assert_int_equal(n, 99);
    assert_string_equal(buf, want);
    /* a line shorter than its literal text keeps what fits of it */
    n = line("0123456789$status", PT_LOG_ESCAPE_DEFAULT, &r, buf, 4);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "0123", 4);
}

static void test_combined(void **state)
{
    (void)state;
    pt_request r = request();
    char buf[512];
    static const struct sockaddr_in6 six = {.sin6_family = AF_INET6,
                                            .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    r.peer = (const struct sockaddr *)&six;
    r.peerlen = sizeof six;
    struct ev_loop *loop = ev_loop_new(0);
    r.loop = loop;
    size_t n = pt_logfmt_line(pt_logfmt_combined(), &r, buf, sizeof buf - 1);
    buf[n] = '\0';
    /* the time between the brackets changes; the rest is nginx's text */
    const char *close = strchr(buf, ']');
    assert_non_null(close);
    assert_memory_equal(buf, "::1 - - [", 9);
    assert_string_equal(close, "] \"GET /a\\x22b HTTP/1.1\" 404 1234 \"-\" \"ua \\x221\\x22\"");
    assert_ptr_equal(pt_logfmt_combined(), pt_logfmt_combined());
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_escaping),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_whole_escapes_only),
        cmocka_unit_test(test_compile_refusals),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_cut_lines_keep_their_shape),
        cmocka_unit_test(test_combined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
