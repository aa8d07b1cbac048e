/* Accept-Encoding: which precompressed sibling a client gets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "server/handlers/encoding.h"
#include "tests/support.h"

/* The codings chosen, as "br,gzip". */
static const char *choose(const char *ae)
{
    static char buf[64];
    pt_encoding e[PT_ENC_COUNT - 1];
    size_t n = pt_encoding_choose((pt_str){ae, strlen(ae)}, e);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(buf, i ? "," : "");
        strcat(buf, pt_encoding_name(e[i]));
    }
    return buf;
}

static void test_choose(void **state)
{
    static const struct {
        const char *ae, *want;
    } cases[] = {
        {"", ""},
        {"gzip", "gzip"},
        {"gzip, deflate, br, zstd", "br,zstd,gzip"}, /* ties: porter's order */
        {"GZIP", "gzip"},
        {"x-gzip", "gzip"},
        {"deflate", ""},
        {"gzip;q=1.0, br;q=0.5", "gzip,br"},
        {"br;q=0.5, zstd;q=0.8, gzip;q=0.1", "zstd,br,gzip"},
        {"br;q=0, gzip", "gzip"},
        {"br; q=0.000", ""},
        {"br ; q=1", "br"},
        {"br;Q=0.9, gzip;q=0.95", "gzip,br"},
        {"*", "br,zstd,gzip"},
        {"*;q=0.5, gzip", "gzip,br,zstd"},
        {"*;q=0, gzip", "gzip"},
        {"gzip;q=0, *", "br,zstd"},
        {"br, identity;q=0.5", "br"},
        {"br;q=0.3, identity;q=0.5", ""}, /* identity preferred */
        {"br;q=2", ""},                   /* malformed q: ignored */
        {"br;q=1.5", ""},
        {"br;q=0.1234", ""},
        {"br;level=5;q=0.4, gzip;q=0.3", "br,gzip"},
        {" , ,gzip,, ", "gzip"},
        {"gzip;q=0.2, gzip;q=0.9, br;q=0.5", "gzip,br"}, /* the highest for a name */
        {"brotli, gz, zst", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = choose(cases[i].ae);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("\"%s\": \"%s\", want \"%s\"", cases[i].ae, got, cases[i].want);
    }
}

static void test_names(void **state)
{
    assert_null(pt_encoding_name(PT_ENC_IDENTITY));
    assert_string_equal(pt_encoding_suffix(PT_ENC_IDENTITY), "");
    assert_string_equal(pt_encoding_suffix(PT_ENC_BR), ".br");
    assert_string_equal(pt_encoding_suffix(PT_ENC_ZSTD), ".zst");
    assert_string_equal(pt_encoding_name(PT_ENC_ZSTD), "zstd");
    assert_string_equal(pt_encoding_suffix(PT_ENC_GZIP), ".gz");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_choose),
        NOTHING_LEFT_TEST(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
