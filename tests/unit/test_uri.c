/* The authority syntax of Host and of absolute-form and authority-form targets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "server/uri.h"

static bool valid(const char *s)
{
    return pt_uri_authority_valid(s, strlen(s));
}

static void test_names_addresses_and_ports(void **state)
{
    const char *good[] = {
        "localhost",
        "localhost:8080",
        "127.0.0.1",
        "127.0.0.1:80",
        "example.com.",
        "a-b_c~d",
        "xn--bcher-kva.example",
        "%41%62",
        "a!$&'()*+,;=b",
        "[::1]",
        "[::1]:443",
        "[2001:db8::1]:8080",
        "[::ffff:192.0.2.1]",
        "LOCALHOST",
        "a:",
        "8080",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(valid(good[i]));
}

static void test_refused(void **state)
{
    const char *bad[] = {
        "",
        ":80",
        "a b",
        "a/b",
        "a\\b",
        "user@host",
        "host:80x",
        "host:-1",
        "a?b",
        "a#b",
        "a..b",
        "..",
        "%4",
        "%zz",
        "%",
        "[::1",
        "[::1]x",
        "[::1]:8x",
        "[zz::1]",
        "[1.2.3.4]",
        "[]",
        "a\"b",
        "a<b>",
        "a{b}",
        "a|b",
        "a^b",
        "a`b",
        "a\x7f",
        "a\xc3\xa9"
        "b",
        "a\tb",
        "host::80",
        "[::1]::80",
        "a:80:80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (valid(bad[i]))
            fail_msg("\"%s\" was taken for a valid authority", bad[i]);
    }
}

static void test_length_is_honoured(void **state)
{
    /* the bytes after `len` are not read: a NUL or a space beyond it changes nothing */
    assert_true(pt_uri_authority_valid("host bad", 4));
    assert_false(pt_uri_authority_valid("host\0x", 6));
    assert_true(pt_uri_authority_valid("[::1]:80/path", 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_addresses_and_ports),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_length_is_honoured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
