/*
 * The static handler's choice of answer (handlers/static.c), over a temporary root: the router
 * and the handler are the real ones (pt_route, pt_static_handle), reached through the HTTP/1
 * layer over the pair transport (tests/support/http1.h), and each answer is compared byte for
 * byte. A file (200, HEAD, twice: the second from the file cache), its preconditions (304 by
 * If-None-Match and If-Modified-Since, 412), its ranges (206, several of them as
 * multipart/byteranges, If-Range, 416), a large file, a directory (its index file, 301 to its
 * slash, an autoindex listing, 403 without either), try_files, the precompressed sibling the
 * client prefers, 403, 404 and 405.
 *
 * Every file has the time 1700000000 (Tue, 14 Nov 2023 22:13:20 GMT, 0x6553f100), so its
 * Last-Modified and ETag ("MTIME-SIZE" in hex) are known literals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/handlers/static.h"
#include "tests/support.h"
#include "tests/support/http1.h"

#define T0 1700000000
#define LM "Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
#define HOST "Host: static.test\r\n"
#define GET(path, headers) "GET " path " HTTP/1.1\r\n" HOST headers "\r\n"
#define HEAD_OF(status) "HTTP/1.1 " status "\r\nServer: porter\r\nDate: {date}\r\n"

static char dir[PATH_MAX];
static h1_site site;
static char big[40000]; /* above file_cache_max_file: kept open, sent with sendfile */

static const pt_handler_fn handlers[PT_HANDLER_COUNT] = {[PT_HANDLER_STATIC] = pt_static_handle};

#define CONF                                                                                       \
    "types {\n    text/plain txt;\n    text/html html;\n    application/javascript js;\n}\n"       \
    "server {\n"                                                                                   \
    "    server_name static.test;\n"                                                               \
    "    server_tokens off;\n"                                                                     \
    "    root %s/site;\n"                                                                          \
    "    location /auto/ { autoindex on; }\n"                                                      \
    "    location /pre/ { precompressed on; }\n"                                                   \
    "    location /spa/ { try_files $uri $uri/ /spa/index.html; }\n"                               \
    "    location /strict/ { try_files $uri =404; }\n"                                             \
    "}\n"

/* Writes `rel` under site/ with `text`. */
static void put(const char *rel, const char *text, size_t len)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "site/%s", rel);
    temp_put_file(dir, p, text, len);
}

static void stamp(const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "site/%s", rel);
    temp_set_mtime(dir, p, T0);
}

static int setup(void **state)
{
    nothing_left_begin();
    temp_dir_make(dir, sizeof dir, "static");
    temp_put_dir(dir, "site", 0755);
    temp_put_dir(dir, "site/sub", 0755);
    temp_put_dir(dir, "site/noindex", 0755);
    temp_put_dir(dir, "site/auto", 0755);
    temp_put_dir(dir, "site/auto/d", 0755);
    temp_put_dir(dir, "site/pre", 0755);
    temp_put_dir(dir, "site/spa", 0755);
    temp_put_dir(dir, "site/strict", 0755);
    put("a.txt", "hello\n", 6);
    put("index.html", "<p>home</p>\n", 12);
    put("sub/index.html", "<p>sub</p>\n", 11);
    put("noindex/x.txt", "x", 1);
    put("range.txt", "0123456789", 10);
    put("auto/b.txt", "bb", 2);
    put("auto/.hidden", "h", 1);
    put("pre/app.js", "console.log(1);\n", 16);
    put("pre/app.js.gz", "GZ", 2);
    put("pre/app.js.br", "BR!", 3);
    put("pre/only.js", "only", 4);
    put("spa/index.html", "spa", 3);
    temp_put_dir(dir, "site/spa/docs", 0755);
    put("spa/docs/index.html", "docs", 4);
    put("spa/real.txt", "real", 4);
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('A' + i % 23);
    put("big.bin", big, sizeof big);
    temp_put_link(dir, "site/out", "/etc/passwd");
    const char *stamped[] = {
        "a.txt",       "index.html",     "sub/index.html",      "range.txt",     "auto/b.txt",
        "auto/d",      "auto",           "pre/app.js",          "pre/app.js.gz", "pre/app.js.br",
        "pre/only.js", "spa/index.html", "spa/docs/index.html", "spa/real.txt",  "big.bin"};
    for (size_t i = 0; i < sizeof stamped / sizeof *stamped; i++)
        stamp(stamped[i]);

    char conf[8192];
    snprintf(conf, sizeof conf, CONF, dir);
    h1_open(&site, conf, dir, true, pt_route);
    site.tv.vh.handlers = handlers;
    h1_connect(&site);
    return 0;
}

static int teardown(void **state)
{
    h1_close(&site);
    temp_dir_remove(dir);
    return 0;
}

static void exchange(const char *request, const char *response)
{
    h1_send(&site, request);
    for (int i = 0; i < 20 && !pt_outq_is_empty(&site.c->out); i++)
        h1_pump(&site);
    h1_expect(&site, response);
}

/* The built-in page for `status`, with its head; `lines` go after Content-Length. */
static const char *error_answer(const char *status, int code, const char *reason, const char *lines)
{
    static char buf[1024];
    const char *page = status_page(code, reason);
    snprintf(buf, sizeof buf,
             HEAD_OF("%s") "Content-Type: text/html\r\nContent-Length: %zu\r\n%s\r\n%s", status,
             strlen(page), lines, page);
    return buf;
}

/* ---- a file ---- */

#define A_TXT_LINES                                                                                \
    "Content-Type: text/plain\r\nAccept-Ranges: bytes\r\n" LM "ETag: \"6553f100-6\"\r\n"

static void test_a_file(void **state)
{
    static const char want[] = HEAD_OF("200 OK") "Content-Length: 6\r\n" A_TXT_LINES "\r\nhello\n";
    exchange(GET("/a.txt", ""), want);
    /* again, from the file cache */
    exchange(GET("/a.txt", ""), want);
    /* HEAD: the same head, no body */
    exchange("HEAD /a.txt HTTP/1.1\r\n" HOST "\r\n",
             HEAD_OF("200 OK") "Content-Length: 6\r\n" A_TXT_LINES "\r\n");
    /* a request path naming it another way */
    exchange(GET("/sub/../%61.txt?x=1", ""), want);
}

static void test_preconditions(void **state)
{
    static const char not_modified[] =
        HEAD_OF("304 Not Modified") LM "ETag: \"6553f100-6\"\r\n\r\n";
    static const char full[] = HEAD_OF("200 OK") "Content-Length: 6\r\n" A_TXT_LINES "\r\nhello\n";
    exchange(GET("/a.txt", "If-None-Match: \"6553f100-6\"\r\n"), not_modified);
    exchange(GET("/a.txt", "If-None-Match: \"x\", W/\"6553f100-6\"\r\n"), not_modified);
    exchange(GET("/a.txt", "If-None-Match: \"6553f100-7\"\r\n"), full);
    exchange(GET("/a.txt", "If-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT\r\n"), not_modified);
    exchange(GET("/a.txt", "If-Modified-Since: Tue, 14 Nov 2023 22:13:19 GMT\r\n"), full);
    /* If-None-Match decides when both are there */
    exchange(GET("/a.txt", "If-None-Match: \"other\"\r\n"
                           "If-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT\r\n"),
             full);
    exchange(GET("/a.txt", "If-Match: \"other\"\r\n"),
             error_answer("412 Precondition Failed", 412, "Precondition Failed", ""));
    exchange(GET("/a.txt", "If-Match: \"6553f100-6\"\r\n"), full);
    exchange(GET("/a.txt", "If-Unmodified-Since: Tue, 14 Nov 2023 22:13:19 GMT\r\n"),
             error_answer("412 Precondition Failed", 412, "Precondition Failed", ""));
}

/* ---- ranges ---- */

#define RANGE_LINES                                                                                \
    "Content-Type: text/plain\r\nAccept-Ranges: bytes\r\n" LM "ETag: \"6553f100-a\"\r\n"

/* Replaces the multipart boundary in the output taken so far by "{b}" (it is new each time):
 * twenty digits, as in the Content-Type, everywhere. */
static void mask_boundary(void)
{
    h1_recv(&site);
    const char *at = strstr(site.out, "boundary=");
    assert_non_null(at);
    char b[21];
    memcpy(b, at + 9, 20);
    b[20] = '\0';
    for (int i = 0; i < 20; i++)
        assert_true(b[i] >= '0' && b[i] <= '9');
    char *p;
    while ((p = strstr(site.out, b)) != NULL) {
        memcpy(p, "{b}", 3);
        memmove(p + 3, p + 20, site.out_len - (size_t)(p + 20 - site.out) + 1);
        site.out_len -= 17;
    }
}

static void test_ranges(void **state)
{
    exchange(GET("/range.txt", "Range: bytes=2-4\r\n"),
             HEAD_OF("206 Partial Content") "Content-Length: 3\r\n" RANGE_LINES
                                            "Content-Range: bytes 2-4/10\r\n\r\n234");
    exchange(GET("/range.txt", "Range: bytes=-3\r\n"),
             HEAD_OF("206 Partial Content") "Content-Length: 3\r\n" RANGE_LINES
                                            "Content-Range: bytes 7-9/10\r\n\r\n789");
    exchange(GET("/range.txt", "Range: bytes=8-\r\n"),
             HEAD_OF("206 Partial Content") "Content-Length: 2\r\n" RANGE_LINES
                                            "Content-Range: bytes 8-9/10\r\n\r\n89");
    /* If-Range: the range if the file is the one named, else all of it */
    exchange(GET("/range.txt", "Range: bytes=0-0\r\nIf-Range: \"6553f100-a\"\r\n"),
             HEAD_OF("206 Partial Content") "Content-Length: 1\r\n" RANGE_LINES
                                            "Content-Range: bytes 0-0/10\r\n\r\n0");
    static const char full[] =
        HEAD_OF("200 OK") "Content-Length: 10\r\n" RANGE_LINES "\r\n0123456789";
    exchange(GET("/range.txt", "Range: bytes=0-0\r\nIf-Range: \"6553f100-b\"\r\n"), full);
    /* HEAD ignores Range */
    exchange("HEAD /range.txt HTTP/1.1\r\n" HOST "Range: bytes=0-0\r\n\r\n",
             HEAD_OF("200 OK") "Content-Length: 10\r\n" RANGE_LINES "\r\n");
    /* nothing of it: 416, with the size */
    exchange(GET("/range.txt", "Range: bytes=10-20\r\n"),
             error_answer("416 Range Not Satisfiable", 416, "Range Not Satisfiable",
                          "Content-Range: bytes */10\r\n"));
    /* a Range that is not bytes is ignored */
    exchange(GET("/range.txt", "Range: items=0-1\r\n"), full);

    /* two ranges: multipart/byteranges, each part with its type and range */
    h1_send(&site, GET("/range.txt", "Range: bytes=0-1,4-5\r\n"));
    mask_boundary();
    static const char body[] = "\r\n--{b}\r\nContent-Type: text/plain\r\n"
                               "Content-Range: bytes 0-1/10\r\n\r\n01"
                               "\r\n--{b}\r\nContent-Type: text/plain\r\n"
                               "Content-Range: bytes 4-5/10\r\n\r\n45"
                               "\r\n--{b}--\r\n";
    char want[1024];
    snprintf(want, sizeof want,
             HEAD_OF("206 Partial Content") "Content-Type: multipart/byteranges; boundary={b}\r\n"
                                            "Content-Length: %zu\r\n"
                                            "Accept-Ranges: bytes\r\n" LM
                                            "ETag: \"6553f100-a\"\r\n\r\n%s",
             strlen(body) + 3 * 17, body); /* each boundary 20 digits, not "{b}" */
    h1_expect(&site, want);
}

static void test_a_large_file(void **state)
{
    static char want[sizeof big + 512];
    int n =
        snprintf(want, sizeof want,
                 HEAD_OF("200 OK") "Content-Length: 40000\r\n"
                                   "Content-Type: application/octet-stream\r\n"
                                   "Accept-Ranges: bytes\r\n" LM "ETag: \"6553f100-9c40\"\r\n\r\n");
    memcpy(want + n, big, sizeof big);
    want[n + sizeof big] = '\0';
    site.writes = 0;
    exchange(GET("/big.bin", ""), want);
    assert_true(site.writes >= 2); /* the head, then the file */
    /* a range of it, from its open file */
    snprintf(want, sizeof want,
             HEAD_OF("206 Partial Content") "Content-Length: 5\r\n"
                                            "Content-Type: application/octet-stream\r\n"
                                            "Accept-Ranges: bytes\r\n" LM
                                            "ETag: \"6553f100-9c40\"\r\n"
                                            "Content-Range: bytes 30000-30004/40000\r\n\r\n%.5s",
             big + 30000);
    exchange(GET("/big.bin", "Range: bytes=30000-30004\r\n"), want);
}

/* ---- directories ---- */

static void test_directories(void **state)
{
    static const char home[] =
        HEAD_OF("200 OK") "Content-Length: 12\r\n"
                          "Content-Type: text/html\r\nAccept-Ranges: bytes\r\n" LM
                          "ETag: \"6553f100-c\"\r\n\r\n<p>home</p>\n";
    exchange(GET("/", ""), home);
    exchange(GET("/sub/", ""), HEAD_OF("200 OK") "Content-Length: 11\r\nContent-Type: text/html\r\n"
                                                 "Accept-Ranges: bytes\r\n" LM
                                                 "ETag: \"6553f100-b\"\r\n\r\n<p>sub</p>\n");
    /* without its slash: a redirect to it, the query kept */
    const char *page = status_page(301, "Moved Permanently");
    char want[2048];
    snprintf(want, sizeof want,
             HEAD_OF("301 Moved Permanently") "Content-Type: text/html\r\nContent-Length: %zu\r\n"
                                              "Location: /sub/?x=1\r\n\r\n%s",
             strlen(page), page);
    exchange(GET("/sub?x=1", ""), want);
    /* no index file and no listing: forbidden */
    exchange(GET("/noindex/", ""), error_answer("403 Forbidden", 403, "Forbidden", ""));

    /* a listing: directories first, hidden files left out, in nginx's columns (a name and
     * its padding take 51, then a space, the date, and the size right-aligned in 20) */
    char listing[1024];
    snprintf(listing, sizeof listing,
             "<html>\r\n<head><title>Index of /auto/</title></head>\r\n<body>\r\n"
             "<h1>Index of /auto/</h1><hr><pre><a href=\"../\">../</a>\r\n"
             "<a href=\"d/\">d/</a>%*s14-Nov-2023 22:13%20s\r\n"
             "<a href=\"b.txt\">b.txt</a>%*s14-Nov-2023 22:13%20s\r\n"
             "</pre><hr></body>\r\n</html>\r\n",
             51 - 2 + 1, "", "-", 51 - 5 + 1, "", "2");
    snprintf(want, sizeof want,
             HEAD_OF("200 OK") "Content-Type: text/html; charset=utf-8\r\n"
                               "Content-Length: %zu\r\n\r\n%s",
             strlen(listing), listing);
    exchange(GET("/auto/", ""), want);
}

/* ---- try_files, precompressed siblings ---- */

static void test_try_files(void **state)
{
    static const char spa[] =
        HEAD_OF("200 OK") "Content-Length: 3\r\nContent-Type: text/html\r\n"
                          "Accept-Ranges: bytes\r\n" LM "ETag: \"6553f100-3\"\r\n\r\nspa";
    exchange(GET("/spa/some/route", ""), spa); /* nothing there: the last, by redirect */
    /* $uri: the file */
    exchange(GET("/spa/real.txt", ""),
             HEAD_OF("200 OK") "Content-Length: 4\r\nContent-Type: text/plain\r\n"
                               "Accept-Ranges: bytes\r\n" LM "ETag: \"6553f100-4\"\r\n\r\nreal");
    /* $uri/: the directory (not a redirect to its slash), its index */
    exchange(GET("/spa/docs", ""),
             HEAD_OF("200 OK") "Content-Length: 4\r\nContent-Type: text/html\r\n"
                               "Accept-Ranges: bytes\r\n" LM "ETag: \"6553f100-4\"\r\n\r\ndocs");
    exchange(GET("/strict/nothing", ""), error_answer("404 Not Found", 404, "Not Found", ""));
}

#define JS_LINES(enc, etag)                                                                        \
    "Content-Type: application/javascript\r\n" enc "Accept-Ranges: bytes\r\n" LM "ETag: \"" etag   \
    "\"\r\nVary: Accept-Encoding\r\n"

static void test_precompressed_siblings(void **state)
{
    exchange(GET("/pre/app.js", "Accept-Encoding: gzip\r\n"),
             HEAD_OF("200 OK") "Content-Length: 2\r\n" JS_LINES("Content-Encoding: gzip\r\n",
                                                                "6553f100-2") "\r\nGZ");
    exchange(GET("/pre/app.js", "Accept-Encoding: gzip;q=0.5, br\r\n"),
             HEAD_OF("200 OK") "Content-Length: 3\r\n" JS_LINES("Content-Encoding: br\r\n",
                                                                "6553f100-3") "\r\nBR!");
    /* the client refuses gzip and knows no other: the file itself, still with Vary */
    exchange(
        GET("/pre/app.js", "Accept-Encoding: gzip;q=0, identity\r\n"),
        HEAD_OF("200 OK") "Content-Length: 16\r\n" JS_LINES("", "6553f100-10") "\r\n"
                                                                               "console.log(1);\n");
    exchange(GET("/pre/app.js", ""), HEAD_OF("200 OK") "Content-Length: 16\r\n" JS_LINES(
                                         "", "6553f100-10") "\r\nconsole.log(1);\n");
    /* no sibling: the file */
    exchange(GET("/pre/only.js", "Accept-Encoding: br, gzip\r\n"),
             HEAD_OF("200 OK") "Content-Length: 4\r\n" JS_LINES("", "6553f100-4") "\r\nonly");
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    static const char not_found[] = "404 Not Found";
    exchange(GET("/nothing.txt", ""), error_answer(not_found, 404, "Not Found", ""));
    exchange(GET("/a.txt/", ""), error_answer(not_found, 404, "Not Found", ""));    /* no dir */
    exchange(GET("/out", ""), error_answer("403 Forbidden", 403, "Forbidden", "")); /* leaves */
    exchange(
        "POST /a.txt HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n",
        error_answer("405 Method Not Allowed", 405, "Method Not Allowed", "Allow: GET, HEAD\r\n"));
    /* after all of them, the connection still serves */
    exchange(GET("/a.txt", ""),
             HEAD_OF("200 OK") "Content-Length: 6\r\n" A_TXT_LINES "\r\nhello\n");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_file),
        T(test_preconditions),
        T(test_ranges),
        T(test_a_large_file),
        T(test_directories),
        T(test_try_files),
        T(test_precompressed_siblings),
        T(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
