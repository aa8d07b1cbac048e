/* Accept-Encoding: which precompressed sibling a client gets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "server/core/encoding.h"
#include "tests/support.h"

/* The codings chosen, as "br,gzip". */
static const char *choose_in(const char *ae, const pt_encoding_order *order)
{
    static char buf[64];
    pt_encoding e[PT_ENC_COUNT - 1];
    size_t n = pt_encoding_choose((pt_str){ae, strlen(ae)}, order, e);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(buf, i ? "," : "");
        strcat(buf, pt_encoding_name(e[i]));
    }
    return buf;
}

static const char *choose(const char *ae)
{
    return choose_in(ae, NULL);
}

static void test_choose(void **state)
{
    static const struct {
        const char *ae, *want;
    } cases[] = {
        {"", ""},
        {"gzip", "gzip"},
        {"gzip, deflate, br, zstd", "zstd,br,gzip"}, /* ties: porter's order */
        {"GZIP", "gzip"},
        {"x-gzip", "gzip"},
        {"deflate", ""},
        {"gzip;q=1.0, br;q=0.5", "gzip,br"},
        {"br;q=0.5, zstd;q=0.8, gzip;q=0.1", "zstd,br,gzip"},
        {"br;q=0, gzip", "gzip"},
        {"br; q=0.000", ""},
        {"br ; q=1", "br"},
        {"br;Q=0.9, gzip;q=0.95", "gzip,br"},
        {"*", "zstd,br,gzip"},
        {"*;q=0.5, gzip", "gzip,zstd,br"},
        {"*;q=0, gzip", "gzip"},
        {"gzip;q=0, *", "zstd,br"},
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

/* A server's own order decides ties, and only ties. */
static void test_order(void **state)
{
    const pt_encoding_order gzip_first = {{PT_ENC_GZIP, PT_ENC_BR, PT_ENC_ZSTD}};
    assert_string_equal(choose_in("zstd, br, gzip", &gzip_first), "gzip,br,zstd");
    assert_string_equal(choose_in("*", &gzip_first), "gzip,br,zstd");
    assert_string_equal(choose_in("zstd;q=0.9, gzip;q=0.5, br", &gzip_first), "br,zstd,gzip");
}

static void test_from_name(void **state)
{
    assert_int_equal(pt_encoding_from_name("GZIP", 4), PT_ENC_GZIP);
    assert_int_equal(pt_encoding_from_name("br", 2), PT_ENC_BR);
    assert_int_equal(pt_encoding_from_name("zstd", 4), PT_ENC_ZSTD);
    assert_int_equal(pt_encoding_from_name("zst", 3), PT_ENC_IDENTITY);
    assert_int_equal(pt_encoding_from_name("deflate", 7), PT_ENC_IDENTITY);
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
        NOTHING_LEFT_TEST(test_order),
        NOTHING_LEFT_TEST(test_from_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
