/* Locations: set-up from a conf, exact and prefix matching, alias boundaries, and the header
 * lines of add_header and expires. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connmgr/buffer.h"
#include "server/core/regex.h"
#include "server/site/location.h"
#include "server/site/site.h"
#include "tests/support.h"
#include "tests/support/vhost.h"

static char dir[PATH_MAX];

static int setup(void **state)
{
    nothing_left_begin();
    temp_dir_make(dir, sizeof dir, "loc");
    temp_put_dir(dir, "site", 0755);
    temp_put_dir(dir, "pics", 0755);
    return 0;
}

static int teardown(void **state)
{
    temp_dir_remove(dir);
    assert_nothing_left(NULL);
    return 0;
}

typedef test_vhost built;

/* Loads `text` (with every %s replaced by the temporary directory) and sets up its first
 * server's locations. Returns 0 or the setup's error, with its message in `err`. */
static int build(built *b, const char *text, char *err, size_t errlen)
{
    char conf[4096];
    snprintf(conf, sizeof conf, text, dir, dir, dir, dir);
    int r = vhost_build(b, conf, dir, false, err, errlen);
    assert_true(b->vh.root_fd >= 0);
    return r;
}

static void unbuild(built *b)
{
    pt_locations_dispose(&b->vh); /* twice (again in vhost_unbuild): a no-op */
    vhost_unbuild(b);
}

/* The location of `vh` for `path`, as the router finds it for a request. */
static pt_location *locate(const pt_vhost *vh, const char *path, size_t len)
{
    char *chunk = pt_chunk_get();
    pt_request req;
    pt_request_init(&req, NULL, NULL, chunk, 0);
    pt_location *l = pt_location_find(vh, path, len, &req);
    pt_request_dispose(&req);
    pt_chunk_put(chunk);
    return l;
}

static const char *find(const built *b, const char *path)
{
    const pt_location *l = locate(&b->vh, path, strlen(path));
    return l->conf ? l->conf->path : "(server)";
}

static void test_matching(void **state)
{
    built b;
    char err[256];
    int fds = count_fds();
    assert_int_equal(build(&b,
                           "server {\n"
                           "  root site;\n"
                           "  location /a/ { }\n"
                           "  location = /exact { }\n"
                           "  location /a/b/ { }\n"
                           "  location ^~ /img { alias pics; }\n"
                           "  location /pics/ { alias %s/pics/; }\n"
                           "  location /porter-status { status; }\n"
                           "  location = / { }\n"
                           "  location /a { }\n"
                           "}\n",
                           err, sizeof err),
                     0);
    /* two alias directories opened; the rest share the server's root fd */
    assert_int_equal(count_fds(), fds + 3);
    assert_int_equal(b.vh.nlocations, 9);
    assert_int_equal(pt_location_base(&b.vh)->nested_exact, 2);
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/", "/"},
        {"/x", "(server)"},
        {"/exact", "/exact"},
        {"/exact/", "(server)"},
        {"/exactly", "(server)"},
        {"/a", "/a"},
        {"/ab", "/a"}, /* a prefix without alias matches inside a segment, as nginx */
        {"/a/", "/a/"},
        {"/a/x", "/a/"},
        {"/a/b", "/a/"},
        {"/a/b/", "/a/b/"},
        {"/a/b/c/d", "/a/b/"},
        {"/img", "/img"},
        {"/img/", "/img"},
        {"/img/x.png", "/img"},
        {"/imgx", "(server)"},      /* an alias replaces whole segments only */
        {"/img../etc", "(server)"}, /* no off-by-slash traversal */
        {"/pics/a", "/pics/"},
        {"/pics", "(server)"},
        {"/porter-status", "/porter-status"},
        {"/porter-status/x", "/porter-status"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = find(&b, cases[i].path);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("\"%s\": %s, want %s", cases[i].path, got, cases[i].want);
    }
    const pt_location *img = locate(&b.vh, "/img/x", 6);
    assert_true(img->alias);
    assert_true(img->own_fd);
    assert_int_equal(img->path_len, 4);
    assert_int_equal(img->handler, PT_HANDLER_STATIC);
    const pt_location *st = locate(&b.vh, "/porter-status", 14);
    assert_int_equal(st->handler, PT_HANDLER_STATUS);
    const pt_location *base = pt_location_base(&b.vh);
    assert_null(base->conf);
    assert_int_equal(base->dir_fd, b.vh.root_fd);
    assert_false(base->own_fd);
    assert_ptr_equal(locate(&b.vh, "/zzz", 4), base);
    unbuild(&b);
    assert_int_equal(count_fds(), fds);
}

/* nginx's order with regular expressions: an exact match; else the longest prefix, unless a
 * regex (in the order written) matches and that prefix is not ^~. */
static void test_regex_locations(void **state)
{
    built b;
    char err[256];
    assert_int_equal(build(&b,
                           "server {\n"
                           "  root site;\n"
                           "  location / { }\n"
                           "  location ^~ /static/ { }\n"
                           "  location ~ \\.(css|js)$ { }\n"
                           "  location ~* \\.PNG$ { }\n"
                           "  location = /exact.css { }\n"
                           "  location /images/ { }\n"
                           "  location ~ ^/images/.*\\.css$ { }\n"
                           "  location ~ \"^/quoted/[a-z]{2,3}$\" { }\n"
                           "}\n",
                           err, sizeof err),
                     0);
    assert_int_equal(pt_location_base(&b.vh)->nested_regex, 4);
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/a.css", "\\.(css|js)$"}, /* a regex wins over the prefix "/" */
        {"/a.js", "\\.(css|js)$"},
        {"/a.cssx", "/"},
        {"/static/a.css", "/static/"}, /* ^~: no regex after it */
        {"/exact.css", "/exact.css"},
        {"/x/y.png", "\\.PNG$"}, /* ~* ignores case */
        {"/x/y.PNG", "\\.PNG$"},
        {"/images/a.css", "\\.(css|js)$"}, /* the first regex written that matches */
        {"/images/a.gif", "/images/"},
        {"/quoted/abc", "^/quoted/[a-z]{2,3}$"}, /* braces: quoted, as in nginx */
        {"/quoted/abcd", "/"},
        {"/other", "/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = find(&b, cases[i].path);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("\"%s\": %s, want %s", cases[i].path, got, cases[i].want);
    }
    /* the path is matched by its length, not up to a NUL */
    assert_string_equal(locate(&b.vh, "/a.css.txt", 6)->conf->path, "\\.(css|js)$");
    unbuild(&b);
}

/* The `return` text of the location answering `path` ("(server)": the server's own): each
 * location of the tables below answers with a name of its own. */
static const char *answer(const built *b, const char *path)
{
    const pt_location *l = locate(&b->vh, path, strlen(path));
    return l->conf ? l->conf->ret.text : "(server)";
}

typedef struct order_case {
    const char *path, *want;
} order_case;

static void check_order(const built *b, const order_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = answer(b, cases[i].path);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("\"%s\": %s, want %s", cases[i].path, got, cases[i].want);
    }
}

/* The example of nginx's documentation of `location`, with its requests and the configuration
 * each one gets (A to E), and a few more read from the same rules. */
static void test_nginx_documented_order(void **state)
{
    built b;
    char err[256];
    assert_int_equal(build(&b,
                           "server {\n"
                           "  root site;\n"
                           "  location = / { return 200 A; }\n"
                           "  location / { return 200 B; }\n"
                           "  location /documents/ { return 200 C; }\n"
                           "  location ^~ /images/ { return 200 D; }\n"
                           "  location ~* \\.(gif|jpg|jpeg)$ { return 200 E; }\n"
                           "}\n",
                           err, sizeof err),
                     0);
    static const order_case cases[] = {
        /* nginx's documentation */
        {"/", "A"},
        {"/index.html", "B"},
        {"/documents/document.html", "C"},
        {"/images/1.gif", "D"},
        {"/documents/1.jpg", "E"},
        /* the same rules */
        {"/documents/1.JPG", "E"}, /* ~* ignores case */
        {"/documents/1.Jpeg", "E"},
        {"/x.gif", "E"},           /* a regex wins over the prefix "/" */
        {"/documents/x.txt", "C"}, /* no regex matches: the longest prefix remembered */
        {"/documents/", "C"},
        {"/images/", "D"},
        {"/images/x.txt", "D"},
        {"/imagesx.gif", "E"}, /* "/images/" is no prefix of it */
        {"/index.gif/", "B"},
    };
    check_order(&b, cases, sizeof cases / sizeof *cases);
    unbuild(&b);
}

/* Nested locations, in nginx's order (ngx_http_core_find_location): the longest prefix, then
 * what it holds searched the same way, its regexes before the outer level's; a `^~` stops the
 * regexes of its own level only; an exact one ends the search. */
static void test_nested_order(void **state)
{
    built b;
    char err[256];
    assert_int_equal(build(&b,
                           "server {\n"
                           "  root site;\n"
                           "  location / { return 200 root; }\n"
                           "  location /a/ {\n"
                           "    return 200 a;\n"
                           "    location /a/b/ { return 200 ab; }\n"
                           "    location ~ \\.php$ { return 200 a-php; }\n"
                           "    location ^~ /a/s/ { return 200 as; }\n"
                           "    location = /a/e { return 200 ae; }\n"
                           "    location /a/b/c/ { return 200 abc; }\n"
                           "  }\n"
                           "  location ~ \\.(php|txt)$ { return 200 outer; }\n"
                           "  location ^~ /n/ {\n"
                           "    return 200 n;\n"
                           "    location ~ \\.txt$ { return 200 n-txt; }\n"
                           "  }\n"
                           "  location ~ ^/r/ {\n"
                           "    return 200 r;\n"
                           "    location ~ \\.html$ { return 200 r-html; }\n"
                           "  }\n"
                           "  location ~ ^/u/(\\d+) {\n"
                           "    return 200 u;\n"
                           "    location ~ \\.json$ { return 200 u-json; }\n"
                           "    location ~ ^/u/\\d+/(\\w+)$ { return 200 u-word; }\n"
                           "  }\n"
                           "  location /p/ {\n"
                           "    return 200 p;\n"
                           "    location /p/q/ {\n"
                           "      return 200 pq;\n"
                           "      location ~ \\.css$ { return 200 pq-css; }\n"
                           "    }\n"
                           "    location ~* \\.CSS$ { return 200 p-css; }\n"
                           "  }\n"
                           "}\n",
                           err, sizeof err),
                     0);
    static const order_case cases[] = {
        {"/zzz", "root"},
        {"/a/x", "a"},
        {"/a/b/x", "ab"},
        {"/a/b/c/x", "abc"},     /* the longest of the nested prefixes */
        {"/a/x.php", "a-php"},   /* a nested regex before the outer level's */
        {"/a/b/x.php", "a-php"}, /* /a/b/ holds none: /a/'s regexes next */
        {"/a/x.txt", "outer"},   /* no nested regex matches: the outer level's */
        {"/a/s/x.html", "as"},
        {"/a/s/x.php", "outer"}, /* a nested ^~ stops the regexes of /a/ only */
        {"/a/e", "ae"},
        {"/a/e/", "a"},
        {"/n/x.txt", "n-txt"}, /* the regexes inside a ^~ location are tried */
        {"/n/x.php", "n"},     /* but not the outer level's */
        {"/r/x.html", "r-html"},
        {"/r/x.gif", "r"},
        {"/p/q/x.css", "pq-css"}, /* the deepest level's regex first */
        {"/p/q/x.CSS", "p-css"},  /* then /p/'s (~*) */
        {"/p/x.css", "p-css"},
        {"/p/q/x", "pq"},
        {"/x.php", "outer"},
    };
    check_order(&b, cases, sizeof cases / sizeof *cases);
    /* $1: the nested regex's groups when it has some, else still the holder's (nginx's) */
    static const struct {
        const char *path, *want, *one;
    } caps[] = {
        {"/u/7/x.json", "u-json", "7"},
        {"/u/7/abc", "u-word", "abc"},
        {"/u/7/a.b", "u", "7"},
    };
    for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
        char *chunk = pt_chunk_get();
        pt_request req;
        pt_request_init(&req, NULL, NULL, chunk, 0);
        const pt_location *l = pt_location_find(&b.vh, caps[i].path, strlen(caps[i].path), &req);
        assert_string_equal(l->conf->ret.text, caps[i].want);
        pt_str one = pt_captures_group(req.captures, 1);
        if (one.len != strlen(caps[i].one) || memcmp(one.p, caps[i].one, one.len) != 0)
            fail_msg("\"%s\": $1 is \"%.*s\", want \"%s\"", caps[i].path, (int)one.len, one.p,
                     caps[i].one);
        pt_request_dispose(&req);
        pt_chunk_put(chunk);
    }
    unbuild(&b);
}

/* A nested location starts from the location holding it: root or alias (replacing the
 * holder's path), index, static-file settings, internal; not the handler or try_files. */
static void test_nested_inherits(void **state)
{
    built b;
    char err[256];
    assert_int_equal(build(&b,
                           "server {\n"
                           "  root site;\n"
                           "  location /img/ {\n"
                           "    alias %s/pics/;\n"
                           "    index pic.html;\n"
                           "    expires 1h;\n"
                           "    internal;\n"
                           "    try_files $uri =404;\n"
                           "    location /img/sub/ { add_header X-Sub s; }\n"
                           "    location /img/other/ { root %s/site; }\n"
                           "  }\n"
                           "  location /r/ {\n"
                           "    return 200 r;\n"
                           "    location /r/in/ { }\n"
                           "  }\n"
                           "}\n",
                           err, sizeof err),
                     0);
    const pt_location *sub = locate(&b.vh, "/img/sub/x", 10);
    assert_string_equal(sub->conf->path, "/img/sub/");
    assert_true(sub->alias);
    assert_memory_equal(sub->root.alias.p, "/img/", sub->root.alias.len);
    assert_int_equal(sub->root.alias.len, 5);
    assert_true(sub->own_fd);
    assert_int_equal(sub->nindex, 1);
    assert_string_equal(sub->index[0], "pic.html");
    assert_int_equal(sub->files->expires_kind, PT_EXPIRES_ACCESS);
    assert_int_equal(sub->files->nheaders, 1);
    assert_true(sub->conf->internal);
    assert_int_equal(sub->files->ntry_files, 0); /* try_files is not inherited */
    const pt_location *other = locate(&b.vh, "/img/other/x", 12);
    assert_false(other->alias); /* its root replaces the alias */
    assert_int_equal(other->root.alias.len, 0);
    const pt_location *in = locate(&b.vh, "/r/in/x", 7);
    assert_string_equal(in->conf->path, "/r/in/");
    assert_int_equal(in->handler, PT_HANDLER_STATIC); /* nor the handler (its return) */
    unbuild(&b);
}

static void test_no_locations(void **state)
{
    built b;
    char err[256];
    assert_int_equal(build(&b, "server { root site; }", err, sizeof err), 0);
    assert_int_equal(b.vh.nlocations, 1);
    assert_ptr_equal(locate(&b.vh, "/anything", 9), pt_location_base(&b.vh));
    unbuild(&b);
}

static void test_setup_errors(void **state)
{
    built b;
    char err[512], want[PATH_MAX + 128];
    int fds = count_fds();
    assert_int_equal(build(&b,
                           "server {\n  root site;\n  location /x/ {\n    alias nope/;\n  }\n}\n",
                           err, sizeof err),
                     -ENOENT);
    /* at the directive that names the directory, not at the location */
    snprintf(want, sizeof want, "t.conf:4:5: alias \"%s/nope\": No such file or directory", dir);
    assert_string_equal(err, want);
    unbuild(&b);
    assert_int_equal(build(&b,
                           "server {\n  root site;\n  location /y/ {\n    root missing;\n  }\n}\n",
                           err, sizeof err),
                     -ENOENT);
    snprintf(want, sizeof want, "t.conf:4:5: root \"%s/missing\": No such file or directory", dir);
    assert_string_equal(err, want);
    unbuild(&b);
    assert_int_equal(count_fds(), fds);
}

static const char *headers(pt_location *loc, int status, time_t mtime, time_t now)
{
    static char buf[1024];
    size_t n = pt_location_headers(loc, status, mtime, now, buf, 0, sizeof buf - 1);
    assert_true(n < sizeof buf);
    buf[n] = '\0';
    return buf;
}

static void test_header_lines(void **state)
{
    built b;
    char err[256];
    assert_int_equal(build(&b,
                           "add_header X-Top t;\n"
                           "server {\n"
                           "  root site;\n"
                           "  add_header X-A 1;\n"
                           "  add_header X-B \"2 2\" always;\n"
                           "  add_header X-Empty '';\n"
                           "  expires 1h;\n"
                           "  location /epoch { expires epoch; }\n"
                           "  location /max { expires max; add_header X-M m; }\n"
                           "  location /neg { expires -60; }\n"
                           "  location /mod { expires modified 1d; }\n"
                           "  location /off { expires off; }\n"
                           "}\n",
                           err, sizeof err),
                     0);
    pt_location *base = pt_location_base(&b.vh);
    time_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    assert_string_equal(headers(base, 200, 0, now),
                        "X-A: 1\r\nX-B: 2 2\r\nExpires: Tue, 14 Nov 2023 23:13:20 GMT\r\n"
                        "Cache-Control: max-age=3600\r\n");
    /* the same second reuses the line; the next reformats it */
    assert_string_equal(headers(base, 304, 0, now + 1),
                        "X-A: 1\r\nX-B: 2 2\r\nExpires: Tue, 14 Nov 2023 23:13:21 GMT\r\n"
                        "Cache-Control: max-age=3600\r\n");
    /* other statuses: only `always`, no expires */
    assert_string_equal(headers(base, 404, 0, now), "X-B: 2 2\r\n");
    assert_string_equal(headers(base, 500, 0, now), "X-B: 2 2\r\n");
    for (int s = 200; s < 600; s++) {
        bool ok = s == 200 || s == 201 || s == 204 || s == 206 || s == 301 || s == 302 ||
                  s == 303 || s == 304 || s == 307 || s == 308;
        assert_int_equal(strstr(headers(base, s, 0, now), "X-A") != NULL, ok);
    }
    pt_location *l = locate(&b.vh, "/epoch", 6);
    assert_string_equal(headers(l, 200, 0, now),
                        "X-A: 1\r\nX-B: 2 2\r\nExpires: Thu, 01 Jan 1970 00:00:01 GMT\r\n"
                        "Cache-Control: no-cache\r\n");
    l = locate(&b.vh, "/max", 4);
    assert_string_equal(headers(l, 206, 0, now),
                        "X-M: m\r\nExpires: Thu, 31 Dec 2037 23:55:55 GMT\r\n"
                        "Cache-Control: max-age=315360000\r\n");
    assert_string_equal(headers(l, 404, 0, now), "");
    l = locate(&b.vh, "/neg", 4);
    assert_string_equal(headers(l, 200, 0, now), "X-A: 1\r\nX-B: 2 2\r\n"
                                                 "Expires: Tue, 14 Nov 2023 22:12:20 GMT\r\n"
                                                 "Cache-Control: no-cache\r\n");
    l = locate(&b.vh, "/mod", 4);
    assert_string_equal(headers(l, 200, now - 3600, now),
                        "X-A: 1\r\nX-B: 2 2\r\nExpires: Wed, 15 Nov 2023 21:13:20 GMT\r\n"
                        "Cache-Control: max-age=82800\r\n");
    assert_string_equal(headers(l, 200, now - 2 * 86400, now),
                        "X-A: 1\r\nX-B: 2 2\r\nExpires: Mon, 13 Nov 2023 22:13:20 GMT\r\n"
                        "Cache-Control: no-cache\r\n");
    assert_string_equal(headers(l, 200, 0, now), "X-A: 1\r\nX-B: 2 2\r\n"); /* no file time */
    l = locate(&b.vh, "/off", 4);
    assert_string_equal(headers(l, 200, 0, now), "X-A: 1\r\nX-B: 2 2\r\n");

    /* a buffer too small: nothing past it written, the length needed returned */
    char small[8];
    memset(small, '#', sizeof small);
    size_t n = pt_location_headers(base, 200, 0, now, small, 2, 4);
    assert_true(n > 4);
    assert_memory_equal(small, "########", 8);
    unbuild(&b);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_matching),     T(test_regex_locations), T(test_nginx_documented_order),
        T(test_nested_order), T(test_nested_inherits), T(test_no_locations),
        T(test_setup_errors), T(test_header_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
