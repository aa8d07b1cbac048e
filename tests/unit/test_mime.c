#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/core/mime.h"
#include "tests/support.h"

#define OCTET "application/octet-stream"

/* A mime.types in Debian's format, with the cases its parser must get right. */
static const char fixture[] = "# This is a comment. text/plain txt\n"
                              "#text/html fake\n"
                              "\n"
                              "text/html\t\t\t\t\thtml htm shtml\n"
                              "text/css\t\t\t\t\tcss\n"
                              "text/javascript\t\t\t\t\tes js mjs\n"
                              "application/gzip\t\t\t\tgz\n"
                              "application/x-tar\t\t\t\ttar\n"
                              "image/x-icon\t\t\tico\n"
                              "application/tm+json\t\ttm.jsonld tm.json jsontm\n"
                              "text/xml\n"
                              "text/plain  txt  # text comment\n"
                              "noslash   foo\n"
                              "application/x-first  later\n"
                              "application/x-second later\r\n"
                              "   application/x-indented   ind";

typedef struct fx {
    char dir[PATH_MAX];
    char file[PATH_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    nothing_left_begin();
    temp_dir_make(f->dir, sizeof f->dir, "test-mime");
    temp_put_file(f->dir, "mime.types", fixture, sizeof fixture - 1);
    temp_path(f->file, f->dir, "mime.types");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    temp_dir_remove(f->dir);
    free(f);
    assert_nothing_left(NULL); /* the file the table was read from is closed */
    return 0;
}

static const char *look(const pt_mime *m, const char *name)
{
    return pt_mime_lookup(m, name, strlen(name));
}

static void test_file_lookups(void **state)
{
    fx *f = *state;
    pt_mime *m = NULL;
    bool fallback = true;
    assert_int_equal(pt_mime_new(&m, f->file, &fallback), 0);
    assert_non_null(m);
    assert_false(fallback);

    assert_string_equal(look(m, "index.html"), "text/html");
    assert_string_equal(look(m, "/docs/index.htm"), "text/html");
    assert_string_equal(look(m, "INDEX.HTML"), "text/html");
    assert_string_equal(look(m, "/a/b/style.css"), "text/css");
    assert_string_equal(look(m, "app.JS"), "text/javascript");
    assert_string_equal(look(m, "mod.Mjs"), "text/javascript");
    assert_string_equal(look(m, "x.tar.gz"), "application/gzip");
    assert_string_equal(look(m, "x.tar"), "application/x-tar");
    assert_string_equal(look(m, "notes.txt"), "text/plain");
    /* the file overrides the built-in type, and the built-in types it lacks stay */
    assert_string_equal(look(m, "favicon.ico"), "image/x-icon");
    assert_string_equal(look(m, "photo.webp"), "image/webp");
    assert_string_equal(look(m, "font.woff2"), "font/woff2");
    /* a later line wins */
    assert_string_equal(look(m, "x.later"), "application/x-second");
    assert_string_equal(look(m, "x.ind"), "application/x-indented");
    assert_string_equal(look(m, "x.jsontm"), "application/tm+json");
    /* "tm.json" is not an extension a lookup can see: json keeps its own type */
    assert_string_equal(look(m, "x.json"), "application/json");
    /* comments, a type with no '/', and trailing comment words add nothing */
    assert_string_equal(look(m, "x.fake"), OCTET);
    assert_string_equal(look(m, "x.foo"), OCTET);
    assert_string_equal(look(m, "x.noslash"), OCTET);
    assert_string_equal(look(m, "x.comment"), OCTET);
    assert_string_equal(look(m, "x.#"), OCTET);
    /* no extension */
    assert_string_equal(look(m, "README"), OCTET);
    assert_string_equal(look(m, ""), OCTET);
    assert_string_equal(look(m, ".bashrc"), OCTET);
    assert_string_equal(look(m, "..bashrc"), OCTET);
    assert_string_equal(look(m, "/home/.css"), OCTET);
    assert_string_equal(look(m, "a.b/c"), OCTET);
    assert_string_equal(look(m, "/dir.html/"), OCTET);
    assert_string_equal(look(m, "file."), OCTET);
    assert_string_equal(look(m, "..."), OCTET);
    assert_string_equal(look(m, "x.unknownext"), OCTET);
    /* a dotfile with an extension of its own */
    assert_string_equal(look(m, ".config.css"), "text/css");
    /* only `len` bytes count */
    assert_string_equal(pt_mime_lookup(m, "a.cssX", 5), "text/css");
    assert_string_equal(pt_mime_lookup(m, "a.css", 4), OCTET);
    pt_mime_free(m);
}

/* The system table (Debian's media-types), or the built-in one when it is absent: the common
 * types come out the same either way. */
static void test_system_file(void **state)
{
    (void)state;
    pt_mime *m = NULL;
    bool fallback = true;
    assert_int_equal(pt_mime_new(&m, NULL, &fallback), 0);
    assert_int_equal(fallback, access("/etc/mime.types", R_OK) != 0);
    assert_string_equal(look(m, "index.html"), "text/html");
    assert_string_equal(look(m, "site.css"), "text/css");
    assert_string_equal(look(m, "x.tar.gz"), "application/gzip");
    assert_string_equal(look(m, "i.png"), "image/png");
    assert_string_equal(look(m, "README"), OCTET);
    assert_string_equal(look(m, ".bashrc"), OCTET);
    const char *js = look(m, "app.js");
    assert_string_not_equal(js, OCTET);
    assert_string_equal(look(m, "APP.JS"), js);
    assert_string_equal(look(m, "a.b/c"), OCTET);
    pt_mime_free(m);
}

static void test_fallback(void **state)
{
    fx *f = *state;
    char missing[PATH_MAX];
    temp_path(missing, f->dir, "no-such-file");
    pt_mime *m = NULL;
    bool fallback = false;
    assert_int_equal(pt_mime_new(&m, missing, &fallback), 0);
    assert_true(fallback);
    static const char *const want[][2] = {
        {"html", "text/html"},        {"htm", "text/html"},
        {"css", "text/css"},          {"js", "text/javascript"},
        {"mjs", "text/javascript"},   {"json", "application/json"},
        {"txt", "text/plain"},        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},     {"png", "image/png"},
        {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},         {"webp", "image/webp"},
        {"avif", "image/avif"},       {"ico", "image/vnd.microsoft.icon"},
        {"woff", "font/woff"},        {"woff2", "font/woff2"},
        {"ttf", "font/ttf"},          {"otf", "font/otf"},
        {"pdf", "application/pdf"},   {"wasm", "application/wasm"},
        {"mp4", "video/mp4"},         {"webm", "video/webm"},
        {"mp3", "audio/mpeg"},        {"ogg", "audio/ogg"},
        {"zip", "application/zip"},   {"gz", "application/gzip"},
        {"tar", "application/x-tar"}, {"csv", "text/csv"},
        {"md", "text/markdown"},      {"map", "application/json"},
    };
    char name[32];
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(name, sizeof name, "f.%s", want[i][0]);
        if (strcmp(look(m, name), want[i][1]) != 0)
            fail_msg("%s: got %s, want %s", name, look(m, name), want[i][1]);
    }
    assert_string_equal(look(m, "README"), OCTET);
    pt_mime_free(m);

    /* a directory opens but cannot be read: the fallback too; the flag is optional */
    m = NULL;
    fallback = false;
    assert_int_equal(pt_mime_new(&m, f->dir, &fallback), 0);
    assert_true(fallback);
    assert_string_equal(look(m, "a.css"), "text/css");
    pt_mime_free(m);
    m = NULL;
    assert_int_equal(pt_mime_new(&m, missing, NULL), 0);
    assert_string_equal(look(m, "a.woff2"), "font/woff2");
    pt_mime_free(m);
}

static void test_add_overlay(void **state)
{
    fx *f = *state;
    pt_mime *m = NULL;
    assert_int_equal(pt_mime_new(&m, f->file, NULL), 0);
    const char *before = look(m, "a.html");
    assert_string_equal(before, "text/html");

    assert_int_equal(pt_mime_add(m, "text/html; charset=utf-8", "html"), 0);
    assert_string_equal(look(m, "a.html"), "text/html; charset=utf-8");
    assert_string_equal(look(m, "a.HTML"), "text/html; charset=utf-8");
    assert_string_equal(look(m, "a.htm"), "text/html"); /* only that extension */
    assert_string_equal(before, "text/html");           /* a returned type stays valid */

    assert_int_equal(pt_mime_add(m, "text/x-custom", ".MyExt"), 0);
    assert_string_equal(look(m, "a.myext"), "text/x-custom");
    assert_string_equal(look(m, "a.MYEXT"), "text/x-custom");
    assert_int_equal(pt_mime_add(m, "text/x-other", "myext"), 0);
    assert_string_equal(look(m, "a.MyExt"), "text/x-other");

    /* malformed entries change nothing */
    assert_int_equal(pt_mime_add(m, "text/plain", ""), -EINVAL);
    assert_int_equal(pt_mime_add(m, "text/plain", "."), -EINVAL);
    assert_int_equal(pt_mime_add(m, "text/plain", "tar.gz"), -EINVAL);
    assert_int_equal(pt_mime_add(m, "text/plain", "a/b"), -EINVAL);
    assert_int_equal(pt_mime_add(m, "text/plain", "a b"), -EINVAL);
    assert_int_equal(pt_mime_add(m, "text/plain", NULL), -EINVAL);
    assert_int_equal(pt_mime_add(m, "html", "css"), -EINVAL);
    assert_int_equal(pt_mime_add(m, "", "css"), -EINVAL);
    assert_int_equal(pt_mime_add(m, "/css", "css"), -EINVAL);
    assert_int_equal(pt_mime_add(m, "text/css\r\nX-Evil: 1", "css"), -EINVAL);
    assert_int_equal(pt_mime_add(m, NULL, "css"), -EINVAL);
    assert_int_equal(pt_mime_add(NULL, "text/css", "css"), -EINVAL);
    assert_string_equal(look(m, "a.css"), "text/css");

    /* many entries: the table grows and keeps every one */
    char ext[16], type[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(ext, sizeof ext, "e%d", i);
        snprintf(type, sizeof type, "x/t%d", i);
        assert_int_equal(pt_mime_add(m, type, ext), 0);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(ext, sizeof ext, "f.E%d", i);
        snprintf(type, sizeof type, "x/t%d", i);
        assert_string_equal(look(m, ext), type);
    }
    assert_string_equal(look(m, "a.html"), "text/html; charset=utf-8");
    assert_string_equal(look(m, "a.e5000"), OCTET);
    pt_mime_free(m);
}

static void test_set_default(void **state)
{
    fx *f = *state;
    pt_mime *m = NULL;
    assert_int_equal(pt_mime_new(&m, f->file, NULL), 0);
    assert_string_equal(look(m, "README"), OCTET);
    assert_int_equal(pt_mime_set_default(m, "text/plain"), 0);
    assert_string_equal(look(m, "README"), "text/plain");
    assert_string_equal(look(m, ".bashrc"), "text/plain");
    assert_string_equal(look(m, "x.unknownext"), "text/plain");
    assert_string_equal(look(m, "a.css"), "text/css");
    assert_int_equal(pt_mime_set_default(m, "plain"), -EINVAL);
    assert_int_equal(pt_mime_set_default(m, "text/plain\n"), -EINVAL);
    assert_int_equal(pt_mime_set_default(m, NULL), -EINVAL);
    assert_int_equal(pt_mime_set_default(NULL, "text/plain"), -EINVAL);
    assert_string_equal(look(m, "README"), "text/plain");
    pt_mime_free(m);
}

static void test_null(void **state)
{
    (void)state;
    pt_mime_free(NULL);
    assert_string_equal(pt_mime_lookup(NULL, "a.html", 6), OCTET);
}

int main(void)
{
    /* a fixture per test: its teardown fails the test if anything was left */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_overlay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null, setup, teardown),
    };
    return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
