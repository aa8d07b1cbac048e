/*
 * HTTP/1 responses as server/http1/head.c writes them, over the pair transport: the status
 * line and its reason, Server (server_tokens) and Date, Content-Length, chunked or
 * close-delimited framing, HEAD and 304 without a body, the other header lines in their
 * order, the response filters' lines (core's pt_response_filter: the test's own and a
 * location's add_header and expires), the reuse of a head memo, and a head too large to send.
 * Each response is compared with the exact bytes expected; a Date value is checked to be an
 * IMF-fixdate of a second of the test (tests/support/http1.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support.h"
#include "tests/support/http1.h"

#define HOST "Host: head.test\r\n"

/* ---- the site ---- */

static h1_site site;
static void (*answer_fn)(pt_request *req); /* what the next request gets */
static int respond_status;                 /* what pt_request_respond() returned */
static const pt_response_filter *chain;    /* the filters the route attaches */

static void route(pt_request *req)
{
    req->filters = chain;
    answer_fn(req);
}

static void open_site(const char *conf)
{
    nothing_left_begin();
    h1_open(&site, conf, "/nonexistent", false, route);
    chain = NULL;
    h1_connect(&site);
}

#define CONF_TOKENS_OFF "server {\n    server_name head.test;\n    server_tokens off;\n}\n"

/* Sends `request` and expects `response` (with "{date}" for the Date value). */
static void exchange(void (*fn)(pt_request *), const char *request, const char *response)
{
    answer_fn = fn;
    h1_send(&site, request);
    h1_expect(&site, response);
}

/* ---- status line, Server, Date ---- */

static int the_status;

static void answer_status(pt_request *req)
{
    pt_response r;
    pt_response_init(&r, the_status);
    r.body = "x";
    r.body_len = 1;
    respond_status = pt_request_respond(req, &r);
}

static void test_status_line_and_reason(void **state)
{
    static const struct {
        int status;
        const char *want;
    } cases[] = {
        {200, "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 1\r\n\r\nx"},
        {201, "HTTP/1.1 201 Created\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 1\r\n"
              "\r\nx"},
        {206, "HTTP/1.1 206 Partial Content\r\nServer: porter\r\nDate: {date}\r\n"
              "Content-Length: 1\r\n\r\nx"},
        /* no body for 204, whatever the response says */
        {204, "HTTP/1.1 204 No Content\r\nServer: porter\r\nDate: {date}\r\n\r\n"},
        {404, "HTTP/1.1 404 Not Found\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 1\r\n"
              "\r\nx"},
        {418, "HTTP/1.1 418 Unknown\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 1\r\n"
              "\r\nx"},
        {505, "HTTP/1.1 505 HTTP Version Not Supported\r\nServer: porter\r\nDate: {date}\r\n"
              "Content-Length: 1\r\n\r\nx"},
        {599, "HTTP/1.1 599 Unknown\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 1\r\n"
              "\r\nx"},
    };
    open_site(CONF_TOKENS_OFF);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        the_status = cases[i].status;
        exchange(answer_status, "GET / HTTP/1.1\r\n" HOST "\r\n", cases[i].want);
        assert_int_equal(respond_status, 0);
    }
    h1_close(&site);
}

static bool omit_server, omit_date;

static void answer_omitting(pt_request *req)
{
    pt_response r;
    pt_response_init(&r, 200);
    r.omit_server = omit_server;
    r.omit_date = omit_date;
    r.extra_headers = PT_STR_LIT("Server: upstream\r\n");
    respond_status = pt_request_respond(req, &r);
}

static void test_server_tokens_and_omitted_lines(void **state)
{
    open_site("server {\n    server_name head.test;\n    server_tokens on;\n}\n");
    omit_server = omit_date = false;
    exchange(answer_omitting, "GET / HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nServer: porter/" PORTER_VERSION "\r\nDate: {date}\r\n"
             "Content-Length: 0\r\nServer: upstream\r\n\r\n");
    /* a proxied answer carries its own Server, or Date */
    omit_server = true;
    exchange(answer_omitting, "GET / HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Length: 0\r\nServer: upstream\r\n\r\n");
    omit_date = true;
    exchange(answer_omitting, "GET / HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nServer: upstream\r\n\r\n");
    h1_close(&site);

    open_site(CONF_TOKENS_OFF);
    omit_server = omit_date = false;
    exchange(answer_omitting, "GET / HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 0\r\n"
             "Server: upstream\r\n\r\n");
    h1_close(&site);
}

/* ---- header lines ---- */

static void answer_every_line(pt_request *req)
{
    pt_response r;
    pt_response_init(&r, 301);
    r.content_type = "text/html";
    r.body = "moved";
    r.body_len = 5;
    r.last_modified = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    r.location = "/elsewhere/";
    r.allow = "GET, HEAD";
    r.extra_headers = PT_STR_LIT("X-Extra: 1\r\nX-Extra-2: 2\r\n");
    r.more_headers = PT_STR_LIT("X-More: 3\r\n");
    r.close = true;
    respond_status = pt_request_respond(req, &r);
}

static void test_header_lines_in_order(void **state)
{
    open_site(CONF_TOKENS_OFF);
    exchange(answer_every_line, "GET / HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 301 Moved Permanently\r\nServer: porter\r\nDate: {date}\r\n"
             "Content-Type: text/html\r\nContent-Length: 5\r\n"
             "Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\nLocation: /elsewhere/\r\n"
             "Allow: GET, HEAD\r\nX-Extra: 1\r\nX-Extra-2: 2\r\nX-More: 3\r\n"
             "Connection: close\r\n\r\nmoved");
    assert_true(site.p.eof); /* r.close: closed after it */
    h1_close(&site);
}

/* ---- bodies and framing ---- */

static char dir[PATH_MAX];
static char big[20000]; /* above the 16 KiB read inline: sent with sendfile */

/* The temporary directory with `big` in it. */
static void make_dir(void)
{
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    temp_dir_make(dir, sizeof dir, "head");
    temp_put_file(dir, "big", big, sizeof big);
}

static int file_fd(void)
{
    char p[PATH_MAX];
    int fd = open(temp_path(p, dir, "big"), O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static int holds, releases;

static void on_hold(const void *holder)
{
    assert_ptr_equal(holder, big);
    holds++;
}

static void on_release(void *holder)
{
    assert_ptr_equal(holder, big);
    releases++;
}

static int push_body(struct pt_outq *q, void *data)
{
    pt_outq_push_copy(q, "pushed", 6);
    pt_outq_push_copy(q, data, 4);
    return 0;
}

static const char *body_kind;

static void answer_body(pt_request *req)
{
    pt_response r;
    pt_response_init(&r, 200);
    if (strcmp(body_kind, "memory") == 0) {
        r.body = "0123456789";
        r.body_len = 10;
    } else if (strcmp(body_kind, "held") == 0) {
        r.body = big + 5;
        r.body_len = 3;
        r.body_hold = on_hold;
        r.body_release = on_release;
        r.body_holder = big;
    } else if (strcmp(body_kind, "small file") == 0) {
        r.file_fd = file_fd();
        r.file_off = 100;
        r.body_len = 10;
    } else if (strcmp(body_kind, "large file") == 0) {
        r.file_fd = file_fd();
        r.file_off = 1000;
        r.body_len = sizeof big - 1000;
    } else if (strcmp(body_kind, "push") == 0) {
        r.push_body = push_body;
        r.push_body_data = "data";
        r.body_len = 10;
    }
    respond_status = pt_request_respond(req, &r);
}

static int64_t stream_length;

/* A stream: "abc" now, "de" and the end from the test. */
static pt_request *streaming;

static void answer_stream(pt_request *req)
{
    pt_response r;
    pt_response_init(&r, 200);
    r.stream = true;
    r.stream_length = stream_length;
    respond_status = pt_request_respond(req, &r);
    assert_int_equal(pt_response_write(req, "abc", 3), 0);
    streaming = req;
}

static void test_bodies_and_their_framing(void **state)
{
    make_dir();
    open_site(CONF_TOKENS_OFF);
    const char *head = "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\n";
    char want[sizeof big + 512];

    body_kind = "memory";
    snprintf(want, sizeof want, "%sContent-Length: 10\r\n\r\n0123456789", head);
    exchange(answer_body, "GET / HTTP/1.1\r\n" HOST "\r\n", want);
    assert_int_equal(site.writes, 1);

    /* held, not copied: released once written */
    body_kind = "held";
    snprintf(want, sizeof want, "%sContent-Length: 3\r\n\r\nfgh", head);
    site.writes = 0;
    exchange(answer_body, "GET / HTTP/1.1\r\n" HOST "\r\n", want);
    assert_int_equal(holds, 1);
    assert_int_equal(releases, 1);

    body_kind = "small file"; /* read at once, one write with its head */
    snprintf(want, sizeof want, "%sContent-Length: 10\r\n\r\n%.10s", head, big + 100);
    site.writes = 0;
    exchange(answer_body, "GET / HTTP/1.1\r\n" HOST "\r\n", want);
    assert_int_equal(site.writes, 1);

    body_kind = "large file"; /* the head written, then the file sent */
    int n = snprintf(want, sizeof want, "%sContent-Length: %zu\r\n\r\n", head, sizeof big - 1000);
    memcpy(want + n, big + 1000, sizeof big - 1000);
    want[n + sizeof big - 1000] = '\0';
    site.writes = 0;
    answer_fn = answer_body;
    h1_send(&site, "GET / HTTP/1.1\r\n" HOST "\r\n");
    for (int k = 0; k < 20 && !pt_outq_is_empty(&site.c->out); k++)
        h1_pump(&site);
    h1_expect(&site, want);
    assert_true(site.writes >= 2);

    body_kind = "push";
    snprintf(want, sizeof want, "%sContent-Length: 10\r\n\r\npusheddata", head);
    exchange(answer_body, "GET / HTTP/1.1\r\n" HOST "\r\n", want);

    /* A stream of unknown length: chunked in HTTP/1.1, its end the last chunk. */
    stream_length = -1;
    snprintf(want, sizeof want, "%sTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", head);
    exchange(answer_stream, "GET / HTTP/1.1\r\n" HOST "\r\n", want);
    assert_int_equal(pt_response_write(streaming, "de", 2), 0);
    assert_int_equal(pt_response_end(streaming), 0);
    h1_pump(&site);
    h1_expect(&site, "2\r\nde\r\n0\r\n\r\n");

    /* Of known length: Content-Length, and no more than it said. */
    stream_length = 5;
    snprintf(want, sizeof want, "%sContent-Length: 5\r\n\r\nabc", head);
    exchange(answer_stream, "GET / HTTP/1.1\r\n" HOST "\r\n", want);
    assert_int_equal(pt_response_write(streaming, "def", 3), -EMSGSIZE);
    assert_int_equal(pt_response_write(streaming, "de", 2), 0);
    assert_int_equal(pt_response_end(streaming), 0);
    h1_pump(&site);
    h1_expect(&site, "de");
    assert_false(site.p.eof);

    /* Of unknown length to HTTP/1.0: no chunks there, the close ends it. */
    stream_length = -1;
    snprintf(want, sizeof want, "%sConnection: close\r\n\r\nabc", head);
    exchange(answer_stream, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", want);
    assert_int_equal(pt_response_write(streaming, "de", 2), 0);
    assert_int_equal(pt_response_end(streaming), 0);
    h1_pump(&site);
    h1_expect(&site, "de");
    assert_true(site.p.eof);
    h1_close(&site);
    temp_dir_remove(dir);
}

/* ---- no body ---- */

static void test_head_and_304_have_no_body(void **state)
{
    make_dir();
    open_site(CONF_TOKENS_OFF);
    const char *head = "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\n";
    char want[512];

    /* HEAD: the length of the body it would get, and nothing of it */
    body_kind = "memory";
    snprintf(want, sizeof want, "%sContent-Length: 10\r\n\r\n", head);
    exchange(answer_body, "HEAD / HTTP/1.1\r\n" HOST "\r\n", want);
    body_kind = "large file"; /* its fd closed unread: nothing_left counts it */
    snprintf(want, sizeof want, "%sContent-Length: %zu\r\n\r\n", head, sizeof big - 1000);
    exchange(answer_body, "HEAD / HTTP/1.1\r\n" HOST "\r\n", want);
    body_kind = "push";
    snprintf(want, sizeof want, "%sContent-Length: 10\r\n\r\n", head);
    exchange(answer_body, "HEAD / HTTP/1.1\r\n" HOST "\r\n", want);
    stream_length = -1;
    snprintf(want, sizeof want, "%sTransfer-Encoding: chunked\r\n\r\n", head);
    exchange(answer_stream, "HEAD / HTTP/1.1\r\n" HOST "\r\n", want);
    assert_int_equal(pt_response_end(streaming), 0);
    h1_pump(&site);
    h1_expect(&site, "");

    /* 304: no length, no body */
    the_status = 304;
    exchange(answer_status, "GET / HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 304 Not Modified\r\nServer: porter\r\nDate: {date}\r\n\r\n");
    h1_close(&site);
    temp_dir_remove(dir);
}

static void answer_no_body(pt_request *req)
{
    pt_response r;
    pt_response_init(&r, 200);
    r.no_body = true;
    r.file_fd = file_fd(); /* taken, and closed unsent */
    r.body_len = 10;
    r.extra_headers = PT_STR_LIT("ETag: \"x\"\r\n");
    respond_status = pt_request_respond(req, &r);
}

static void test_a_head_only_response_sends_no_length(void **state)
{
    make_dir();
    open_site(CONF_TOKENS_OFF);
    exchange(answer_no_body, "GET / HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\nETag: \"x\"\r\n\r\n");
    h1_close(&site);
    temp_dir_remove(dir);
}

/* ---- response filters ---- */

/* The test's filter: a line that says what it was given. */
static size_t say_lines(const pt_response_filter *f, int status, time_t mtime, time_t now,
                        char *buf, size_t pos, size_t cap)
{
    char line[128];
    int n = snprintf(line, sizeof line, "X-Filter: %d %lld %s\r\n", status, (long long)mtime,
                     now >= site.t0 && now <= (time_t)ev_time() ? "now" : "not now");
    if (pos + (size_t)n <= cap)
        memcpy(buf + pos, line, (size_t)n);
    return pos + (size_t)n;
}

static size_t second_lines(const pt_response_filter *f, int status, time_t mtime, time_t now,
                           char *buf, size_t pos, size_t cap)
{
    static const char line[] = "X-Second: 2\r\n";
    if (pos + sizeof line - 1 <= cap)
        memcpy(buf + pos, line, sizeof line - 1);
    return pos + sizeof line - 1;
}

static time_t the_mtime, the_last_modified;
static const char *location_path;

static void answer_filtered(pt_request *req)
{
    if (location_path)
        req->filters =
            &pt_location_find(&site.tv.vh, location_path, strlen(location_path), req)->filter;
    pt_response r;
    pt_response_init(&r, the_status);
    r.mtime = the_mtime;
    r.last_modified = the_last_modified;
    respond_status = pt_request_respond(req, &r);
}

static void test_filters_add_their_lines(void **state)
{
    open_site("server {\n    server_name head.test;\n    server_tokens off;\n"
              "    add_header X-A 1;\n    add_header X-B 2 always;\n"
              "    location /max { expires max; }\n"
              "    location /mod { expires modified 1h; }\n}\n");
    /* the test's own chain of two: status, the file's time (Last-Modified first), now */
    pt_response_filter second = {.head_lines = second_lines};
    pt_response_filter first = {.head_lines = say_lines, .next = &second};
    chain = &first;
    location_path = NULL;
    the_status = 200;
    the_mtime = 1000;
    the_last_modified = 0;
    exchange(answer_filtered, "GET / HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 0\r\n"
             "X-Filter: 200 1000 now\r\nX-Second: 2\r\n\r\n");
    the_last_modified = 2000;
    the_status = 404;
    exchange(answer_filtered, "GET / HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 404 Not Found\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 0\r\n"
             "Last-Modified: Thu, 01 Jan 1970 00:33:20 GMT\r\n"
             "X-Filter: 404 2000 now\r\nX-Second: 2\r\n\r\n");

    /* a location's: add_header and expires (by the file's time, Last-Modified first) */
    location_path = "/max";
    the_status = 200;
    the_mtime = 0;
    the_last_modified = 0;
    exchange(answer_filtered, "GET /max HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 0\r\n"
             "X-A: 1\r\nX-B: 2\r\nExpires: Thu, 31 Dec 2037 23:55:55 GMT\r\n"
             "Cache-Control: max-age=315360000\r\n\r\n");
    the_status = 500;
    exchange(answer_filtered, "GET /max HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 500 Internal Server Error\r\nServer: porter\r\nDate: {date}\r\n"
             "Content-Length: 0\r\nX-B: 2\r\n\r\n");
    location_path = "/mod";
    the_status = 200;
    the_mtime = 1700000000;
    exchange(answer_filtered, "GET /mod HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 0\r\n"
             "X-A: 1\r\nX-B: 2\r\nExpires: Tue, 14 Nov 2023 23:13:20 GMT\r\n"
             "Cache-Control: no-cache\r\n\r\n");
    the_last_modified = 1600000000; /* Sun, 13 Sep 2020 12:26:40 GMT */
    exchange(answer_filtered, "GET /mod HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\nContent-Length: 0\r\n"
             "Last-Modified: Sun, 13 Sep 2020 12:26:40 GMT\r\n"
             "X-A: 1\r\nX-B: 2\r\nExpires: Sun, 13 Sep 2020 13:26:40 GMT\r\n"
             "Cache-Control: no-cache\r\n\r\n");
    location_path = NULL;
    h1_close(&site);
}

/* ---- the head memo ---- */

static pt_head_memo memo;

/* A 200 with the memo; its Content-Type says which request made it. */
static void answer_memo(pt_request *req)
{
    char type[32];
    snprintf(type, sizeof type, "text/%.*s", (int)req->path.len - 1, req->path.p + 1);
    pt_response r;
    pt_response_init(&r, the_status);
    r.content_type = type;
    r.body = "m";
    r.body_len = 1;
    r.head_memo = &memo;
    req->error_page = req->path.p[1] == 'e';
    respond_status = pt_request_respond(req, &r);
}

/* The memo holds a head that ends with `tail`. */
static void assert_memo_ends(const char *tail)
{
    size_t n = strlen(tail);
    assert_true(memo.len >= n);
    assert_memory_equal(memo.buf + memo.len - n, tail, n);
}

static void test_a_head_memo_is_reused_within_its_second(void **state)
{
    open_site(CONF_TOKENS_OFF);
    memset(&memo, 0, sizeof memo);
    the_status = 200;
    /* Two requests in one read share the loop's second: the second reuses the first's head,
     * up to its Connection line. */
    answer_fn = answer_memo;
    h1_send(&site, "GET /one HTTP/1.1\r\n" HOST "\r\n"
                   "GET /two HTTP/1.1\r\n" HOST "Connection: close\r\n\r\n");
    static const char one[] = "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\n"
                              "Content-Type: text/one\r\nContent-Length: 1\r\n";
    char want[1024];
    snprintf(want, sizeof want, "%s\r\nm%sConnection: close\r\n\r\nm", one, one);
    h1_expect(&site, want);
    assert_non_null(memo.buf);
    assert_int_equal(memo.len, strlen(one) - strlen("{date}") + 29);
    assert_memo_ends("Content-Type: text/one\r\nContent-Length: 1\r\n");
    assert_true(memo.second >= site.t0 && memo.second <= (time_t)ev_time());
    h1_close(&site);

    /* Made in another second: made again. */
    open_site(CONF_TOKENS_OFF);
    memo.second -= 1;
    exchange(answer_memo, "GET /three HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\n"
             "Content-Type: text/three\r\nContent-Length: 1\r\n\r\nm");
    assert_memo_ends("Content-Type: text/three\r\nContent-Length: 1\r\n");
    /* Not for an error page, nor for another status: the memo is neither used nor changed. */
    exchange(answer_memo, "GET /error HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\n"
             "Content-Type: text/error\r\nContent-Length: 1\r\n\r\nm");
    the_status = 203;
    exchange(answer_memo, "GET /four HTTP/1.1\r\n" HOST "\r\n",
             "HTTP/1.1 203 Unknown\r\nServer: porter\r\nDate: {date}\r\n"
             "Content-Type: text/four\r\nContent-Length: 1\r\n\r\nm");
    assert_memo_ends("Content-Type: text/three\r\nContent-Length: 1\r\n");
    free(memo.buf);
    memset(&memo, 0, sizeof memo);
    h1_close(&site);
}

/* ---- a head too large ---- */

static void answer_too_large(pt_request *req)
{
    static char lines[9000];
    for (size_t i = 0; i + 2 <= sizeof lines; i += 100) {
        memset(lines + i, 'a', 98);
        memcpy(lines + i, "X: ", 3);
        memcpy(lines + i + 98, "\r\n", 2);
    }
    pt_response r;
    pt_response_init(&r, 200);
    r.extra_headers = (pt_str){lines, sizeof lines};
    r.file_fd = file_fd(); /* taken: closed with the refusal */
    r.body_len = 10;
    respond_status = pt_request_respond(req, &r);
}

static void test_a_head_too_large_drops_the_connection(void **state)
{
    make_dir();
    open_site(CONF_TOKENS_OFF);
    exchange(answer_too_large, "GET / HTTP/1.1\r\n" HOST "\r\n", "");
    assert_int_equal(respond_status, -E2BIG);
    assert_true(site.p.eof);
    assert_int_equal(h1_live(&site), 0);
    h1_close(&site);
    temp_dir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line_and_reason),
        cmocka_unit_test(test_server_tokens_and_omitted_lines),
        cmocka_unit_test(test_header_lines_in_order),
        cmocka_unit_test(test_bodies_and_their_framing),
        cmocka_unit_test(test_head_and_304_have_no_body),
        cmocka_unit_test(test_a_head_only_response_sends_no_length),
        cmocka_unit_test(test_filters_add_their_lines),
        cmocka_unit_test(test_a_head_memo_is_reused_within_its_second),
        cmocka_unit_test(test_a_head_too_large_drops_the_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
