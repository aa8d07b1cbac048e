/*
 * The router (site/location.c's pt_route) over a vhost built from conf text, its handler table
 * (pt_vhost.handlers) made of recording fakes and its requests answered through a recording
 * protocol: which location answers (exact, prefix, regex, ^~, after the path is decoded and
 * normalised), `return` (redirects, texts, error codes, at the server level too), internal
 * redirects (error_page to a URI, a named location or an absolute URL; try_files' last
 * argument, a named location or a URI with its query), the redirect limit, and the 400 and 414
 * that path normalisation refuses.
 *
 * The fakes stand for the static, status and proxy handlers: they record what they were given
 * and answer 200 with "KIND PATH" or, for some paths, what the real static handler would do
 * (an error through pt_route_error, try_files' last argument through pt_route_redirect).
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

#include "connmgr/buffer.h"
#include "tests/support.h"
#include "tests/support/vhost.h"

/* ---- what the handlers were given ---- */

typedef struct call {
    pt_handler_kind kind;
    char location[64]; /* its path ("" for the server's own) */
    char norm[64];     /* the normalised path it was given */
    char query[64];
    unsigned redirects;
    bool error_page;
    int error_status;
} call;

static call calls[16];
static size_t ncalls;

static void record(pt_request *req, pt_handler_kind kind)
{
    assert_true(ncalls < sizeof calls / sizeof *calls);
    call *c = &calls[ncalls++];
    c->kind = kind;
    snprintf(c->location, sizeof c->location, "%s", req->location->path);
    snprintf(c->norm, sizeof c->norm, "%.*s", (int)req->norm_path.len, req->norm_path.p);
    snprintf(c->query, sizeof c->query, "%.*s", (int)req->query.len, req->query.p);
    c->redirects = req->redirects;
    c->error_page = req->error_page;
    c->error_status = req->error_status;
}

static bool norm_starts(const pt_request *req, const char *prefix)
{
    size_t n = strlen(prefix);
    return req->norm_path.len >= n && memcmp(req->norm_path.p, prefix, n) == 0;
}

static void answer_kind(pt_request *req, const char *kind)
{
    static char body[PATH_MAX + 16];
    int n = snprintf(body, sizeof body, "%s %.*s", kind, (int)req->norm_path.len, req->norm_path.p);
    assert_true(n > 0 && (size_t)n < sizeof body);
    pt_response r;
    pt_response_init(&r, 200);
    r.content_type = "text/plain";
    r.body = body;
    r.body_len = (size_t)n;
    pt_request_respond(req, &r);
}

static void fake_static(pt_request *req)
{
    record(req, PT_HANDLER_STATIC);
    const pt_conf_files *f = req->location->files;
    if (f->ntry_files) { /* no candidate exists: the last argument */
        const char *last = f->try_files[f->ntry_files - 1];
        assert_int_equal(pt_route_redirect(req, last, strlen(last)), 0);
    } else if (norm_starts(req, "/missing")) {
        pt_route_error(req, 404);
    } else if (norm_starts(req, "/forbidden")) {
        pt_route_error(req, 403);
    } else if (norm_starts(req, "/broken")) {
        pt_route_error(req, 500);
    } else {
        answer_kind(req, "static");
    }
}

static void fake_status(pt_request *req)
{
    record(req, PT_HANDLER_STATUS);
    answer_kind(req, "status");
}

static void fake_proxy(pt_request *req)
{
    record(req, PT_HANDLER_PROXY);
    answer_kind(req, "proxy");
}

static const pt_handler_fn fakes[PT_HANDLER_COUNT] = {
    [PT_HANDLER_STATIC] = fake_static,
    [PT_HANDLER_STATUS] = fake_status,
    [PT_HANDLER_PROXY] = fake_proxy,
};

/* ---- what the protocol was asked to send ---- */

typedef struct answer {
    int responses; /* how many: exactly one, always */
    int status;
    char type[64], location[256], headers[256];
    char body[8192];
    size_t body_len;
} answer;

static answer got;

static int fake_respond(pt_request *req, const pt_response *r)
{
    got.responses++;
    got.status = r->status;
    snprintf(got.type, sizeof got.type, "%s", r->content_type ? r->content_type : "");
    snprintf(got.location, sizeof got.location, "%s", r->location ? r->location : "");
    snprintf(got.headers, sizeof got.headers, "%.*s", (int)r->extra_headers.len,
             r->extra_headers.p);
    assert_true(r->body_len < sizeof got.body);
    memcpy(got.body, r->body ? r->body : "", r->body ? r->body_len : 0);
    got.body_len = r->body ? r->body_len : 0;
    got.body[got.body_len] = '\0';
    return 0;
}

static int fake_local_addr(const pt_request *req, struct sockaddr_storage *out, socklen_t *len)
{
    return -ENOTCONN;
}

static const pt_request_proto fake_proto = {.respond = fake_respond, .local_addr = fake_local_addr};

/* ---- requests ---- */

static test_vhost tv;
static char dir[PATH_MAX];

#define CONF                                                                                       \
    "default_type text/plain;\n"                                                                   \
    "server {\n"                                                                                   \
    "    server_name router.test;\n"                                                               \
    "    root %s;\n"                                                                               \
    "    error_page 404 /errors/404.html;\n"                                                       \
    "    error_page 403 https://example.com/forbidden;\n"                                          \
    "    error_page 500 @oops;\n"                                                                  \
    "    location = /exact { }\n"                                                                  \
    "    location /prefix/ { }\n"                                                                  \
    "    location /prefix/longer/ { }\n"                                                           \
    "    location ^~ /pinned/ { }\n"                                                               \
    "    location ~ \\.php$ { proxy_pass http://127.0.0.1:9; }\n"                                  \
    "    location ~* \\.JPG$ { status; }\n"                                                        \
    "    location /errors/ { }\n"                                                                  \
    "    location = /r301 { return 301 https://$host$request_uri; }\n"                             \
    "    location = /r302 { return 302 /to$uri; }\n"                                               \
    "    location /enc/ { return 302 /to$uri; }\n"                                                 \
    "    location = /text { return 200 \"uri=$uri req=$request_uri\"; }\n"                         \
    "    location = /gone { return 410; }\n"                                                       \
    "    location = /nope { return 404; }\n"                                                       \
    "    location = /page { return 404 \"not here\"; }\n"                                          \
    "    location /spa/ { try_files $uri $uri/ @app; }\n"                                          \
    "    location = /query { try_files $uri /spa/target?a=b; }\n"                                  \
    "    location /loop/ { try_files $uri /loop/again; }\n"                                        \
    "    location @app { proxy_pass http://127.0.0.1:9; }\n"                                       \
    "    location @oops { return 503 \"oops\"; }\n"                                                \
    "}\n"

static int setup(void **state)
{
    nothing_left_begin();
    temp_dir_make(dir, sizeof dir, "router");
    char conf[8192], err[512];
    snprintf(conf, sizeof conf, CONF, dir);
    if (vhost_build(&tv, conf, dir, false, err, sizeof err) < 0)
        fail_msg("%s", err);
    tv.vh.handlers = fakes;
    return 0;
}

static int teardown(void **state)
{
    vhost_unbuild(&tv);
    temp_dir_remove(dir);
    assert_nothing_left(NULL);
    return 0;
}

static const struct sockaddr unspec = {.sa_family = AF_UNSPEC};

/* Routes "METHOD TARGET" (origin-form) with Host `host`, and returns what was answered. */
static const answer *route(const char *method, const char *target, const char *host)
{
    ncalls = 0;
    memset(&got, 0, sizeof got);
    char *chunk = pt_chunk_get();
    pt_request req;
    pt_request_init(&req, &fake_proto, NULL, chunk, 0);
    req.method = (pt_str){method, strlen(method)};
    req.method_id = strcmp(method, "GET") == 0 ? PT_METHOD_GET : PT_METHOD_OTHER;
    req.target = (pt_str){target, strlen(target)};
    const char *q = strchr(target, '?');
    req.path = (pt_str){target, q ? (size_t)(q - target) : strlen(target)};
    req.query = q ? (pt_str){q + 1, strlen(q + 1)} : (pt_str){"", 0};
    req.host = (pt_str){host, strlen(host)};
    req.version_major = req.version_minor = 1;
    req.keep_alive = true;
    req.peer = &unspec;
    req.vhost = &tv.vh;
    req.server_name = tv.vh.server_name;
    req.limits = &tv.vh.limits;
    req.error_level = tv.vh.error_level;
    pt_route(&req);
    pt_request_dispose(&req);
    pt_chunk_put(chunk);
    assert_int_equal(got.responses, 1);
    return &got;
}

/* The answer of a fake: 200, "KIND PATH". */
static void assert_fake(const answer *a, const char *kind, const char *path)
{
    char want[256];
    snprintf(want, sizeof want, "%s %s", kind, path);
    assert_int_equal(a->status, 200);
    assert_string_equal(a->type, "text/plain");
    assert_string_equal(a->body, want);
}

static void assert_page(const answer *a, int status, const char *reason)
{
    assert_int_equal(a->status, status);
    assert_string_equal(a->type, "text/html");
    assert_string_equal(a->body, status_page(status, reason));
}

/* ---- which location ---- */

static void test_the_location_that_answers(void **state)
{
    static const struct {
        const char *target;
        pt_handler_kind kind;
        const char *location, *norm;
    } cases[] = {
        {"/exact", PT_HANDLER_STATIC, "/exact", "/exact"},
        {"/exact/", PT_HANDLER_STATIC, "", "/exact/"}, /* not the exact one: the server's */
        {"/prefix/a", PT_HANDLER_STATIC, "/prefix/", "/prefix/a"},
        {"/prefix/longer/a", PT_HANDLER_STATIC, "/prefix/longer/", "/prefix/longer/a"},
        /* a regex wins over a prefix, unless the prefix is ^~ */
        {"/prefix/a.php", PT_HANDLER_PROXY, "\\.php$", "/prefix/a.php"},
        {"/pinned/a.php", PT_HANDLER_STATIC, "/pinned/", "/pinned/a.php"},
        {"/x/photo.jpg", PT_HANDLER_STATUS, "\\.JPG$", "/x/photo.jpg"}, /* ~*: any case */
        {"/x/photo.jpgx", PT_HANDLER_STATIC, "", "/x/photo.jpgx"},
        /* matched after decoding and normalising, as the handler sees it */
        {"/%65xact", PT_HANDLER_STATIC, "/exact", "/exact"},
        {"/prefix/../exact", PT_HANDLER_STATIC, "/exact", "/exact"},
        {"/x/./..//exact", PT_HANDLER_STATIC, "/exact", "/exact"},
        {"/prefix/a%2ephp", PT_HANDLER_PROXY, "\\.php$", "/prefix/a.php"},
        {"/pinned/%2e%2e/a.php", PT_HANDLER_PROXY, "\\.php$", "/a.php"},
        {"/prefix/a?x=1", PT_HANDLER_STATIC, "/prefix/", "/prefix/a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const answer *a = route("GET", cases[i].target, "router.test");
        assert_int_equal(ncalls, 1);
        if (calls[0].kind != cases[i].kind || strcmp(calls[0].location, cases[i].location) != 0 ||
            strcmp(calls[0].norm, cases[i].norm) != 0)
            fail_msg("%s: handler %d at \"%s\" for \"%s\", want %d at \"%s\" for \"%s\"",
                     cases[i].target, calls[0].kind, calls[0].location, calls[0].norm,
                     cases[i].kind, cases[i].location, cases[i].norm);
        assert_int_equal(calls[0].redirects, 0);
        assert_false(calls[0].error_page);
        const char *kind = cases[i].kind == PT_HANDLER_STATIC  ? "static"
                           : cases[i].kind == PT_HANDLER_PROXY ? "proxy"
                                                               : "status";
        assert_fake(a, kind, cases[i].norm);
    }
}

/* ---- return ---- */

static void test_return(void **state)
{
    /* a redirect: the URL expanded, the code's page as its body */
    const answer *a = route("GET", "/r301?x=1&y", "Router.Test:8080");
    assert_int_equal(ncalls, 0);
    assert_page(a, 301, "Moved Permanently");
    assert_string_equal(a->location, "https://router.test/r301?x=1&y");
    /* $uri is the decoded path, percent-encoded again in a Location */
    a = route("GET", "/r%33%30%32", "router.test");
    assert_string_equal(a->location, "/to/r302");
    assert_int_equal(a->status, 302);
    a = route("GET", "/enc/a%20b%3Fc%25d", "router.test");
    assert_string_equal(a->location, "/to/enc/a%20b%3Fc%25d");

    /* a text: the body, of the default type */
    a = route("GET", "/te%78t?q=a%20b", "router.test");
    assert_int_equal(a->status, 200);
    assert_string_equal(a->type, "text/plain");
    assert_string_equal(a->body, "uri=/text req=/te%78t?q=a%20b"); /* as sent */
    assert_string_equal(a->location, "");

    /* an error code without text: its page, or its error_page */
    a = route("GET", "/gone", "router.test");
    assert_page(a, 410, "Gone");
    a = route("GET", "/nope", "router.test");
    assert_int_equal(ncalls, 1); /* error_page 404 /errors/404.html */
    assert_string_equal(calls[0].norm, "/errors/404.html");
    assert_true(calls[0].error_page);
    assert_int_equal(calls[0].error_status, 404);
    assert_int_equal(a->status, 404); /* the page's 200 keeps the error's status */
    assert_string_equal(a->body, "static /errors/404.html");
    /* with a text, the text */
    a = route("GET", "/page", "router.test");
    assert_int_equal(ncalls, 0);
    assert_int_equal(a->status, 404);
    assert_string_equal(a->body, "not here");
}

static void test_a_server_return_comes_before_locations(void **state)
{
    vhost_unbuild(&tv);
    char err[256];
    assert_int_equal(vhost_build(&tv,
                                 "server {\n    server_name r.test;\n"
                                 "    return 301 https://$host$request_uri;\n"
                                 "    location /spa/ { try_files $uri /exact; }\n"
                                 "    location = /exact { }\n}\n",
                                 dir, false, err, sizeof err),
                     0);
    tv.vh.handlers = fakes;
    const answer *a = route("GET", "/exact?a", "");
    assert_int_equal(ncalls, 0);
    assert_page(a, 301, "Moved Permanently");
    assert_string_equal(a->location, "https://r.test/exact?a"); /* no Host: server_name */
}

/* ---- internal redirects ---- */

static void test_error_page_redirects(void **state)
{
    /* to a URI: that path's location answers, keeping the error's status */
    const answer *a = route("GET", "/missing/a", "router.test");
    assert_int_equal(ncalls, 2);
    assert_string_equal(calls[0].norm, "/missing/a");
    assert_string_equal(calls[1].location, "/errors/");
    assert_string_equal(calls[1].norm, "/errors/404.html");
    assert_int_equal(calls[1].redirects, 1);
    assert_true(calls[1].error_page);
    assert_int_equal(a->status, 404);
    assert_string_equal(a->body, "static /errors/404.html");

    /* an error of the error page itself gets the built-in page, not another redirect */
    vhost_unbuild(&tv);
    char err[256];
    assert_int_equal(vhost_build(&tv, "server {\n    error_page 404 /missing/page.html;\n}\n", dir,
                                 false, err, sizeof err),
                     0);
    tv.vh.handlers = fakes;
    a = route("GET", "/missing/a", "router.test");
    assert_int_equal(ncalls, 2);
    assert_string_equal(calls[1].norm, "/missing/page.html");
    assert_page(a, 404, "Not Found");
}

static void test_error_page_forms(void **state)
{
    /* to an absolute URL: a redirect (302) */
    const answer *a = route("GET", "/forbidden/a", "router.test");
    assert_int_equal(ncalls, 1);
    assert_page(a, 302, "Found");
    assert_string_equal(a->location, "https://example.com/forbidden");

    /* to a named location, which answers the same path */
    a = route("GET", "/broken/a", "router.test");
    assert_int_equal(ncalls, 1); /* @oops is a return: no handler */
    assert_int_equal(a->status, 503);
    assert_string_equal(a->body, "oops");
}

static void test_error_page_response_codes(void **state)
{
    /* `=CODE`: the answer's status; `=`: the status of what answers; a named location */
    vhost_unbuild(&tv);
    char err[256];
    assert_int_equal(vhost_build(&tv,
                                 "server {\n"
                                 "    location /missing/ { error_page 404 =200 /ok.html; }\n"
                                 "    location /missing/kept/ { error_page 404 = /ok.html; }\n"
                                 "    location /missing/named/ { error_page 404 = @app; }\n"
                                 "    location @app { proxy_pass http://127.0.0.1:9; }\n"
                                 "}\n",
                                 dir, false, err, sizeof err),
                     0);
    tv.vh.handlers = fakes;
    const answer *a = route("GET", "/missing/a", "router.test");
    assert_int_equal(ncalls, 2);
    assert_string_equal(calls[1].norm, "/ok.html");
    assert_int_equal(calls[1].error_status, 200);
    assert_int_equal(a->status, 200);
    assert_string_equal(a->body, "static /ok.html");
    /* "=": the status of what answers */
    a = route("GET", "/missing/kept/a", "router.test");
    assert_int_equal(calls[1].error_status, 0);
    assert_int_equal(a->status, 200);
    /* to a named location: it gets the same path */
    a = route("GET", "/missing/named/a", "router.test");
    assert_int_equal(ncalls, 2);
    assert_int_equal(calls[1].kind, PT_HANDLER_PROXY);
    assert_string_equal(calls[1].location, "@app");
    assert_string_equal(calls[1].norm, "/missing/named/a");
    assert_fake(a, "proxy", "/missing/named/a");
}

static void test_try_files_last_argument(void **state)
{
    /* to a named location: it answers the same path */
    const answer *a = route("GET", "/spa/deep/link?x=1", "router.test");
    assert_int_equal(ncalls, 2);
    assert_int_equal(calls[0].kind, PT_HANDLER_STATIC);
    assert_string_equal(calls[0].location, "/spa/");
    assert_int_equal(calls[1].kind, PT_HANDLER_PROXY);
    assert_string_equal(calls[1].location, "@app");
    assert_string_equal(calls[1].norm, "/spa/deep/link");
    assert_string_equal(calls[1].query, "x=1");
    assert_int_equal(calls[1].redirects, 1);
    assert_false(calls[1].error_page);
    assert_fake(a, "proxy", "/spa/deep/link");

    /* to a URI with a query: the query is the new one, the path routed afresh */
    a = route("GET", "/query?old=1", "router.test");
    assert_int_equal(ncalls, 3); /* /query, then /spa/target, whose last is @app */
    assert_string_equal(calls[1].location, "/spa/");
    assert_string_equal(calls[1].norm, "/spa/target");
    assert_string_equal(calls[1].query, "a=b");
    assert_string_equal(calls[2].location, "@app");
    assert_int_equal(calls[2].redirects, 2);
    assert_fake(a, "proxy", "/spa/target");
}

static void test_redirects_are_limited(void **state)
{
    /* /loop/x redirects to /loop/again, which redirects to itself */
    const answer *a = route("GET", "/loop/x", "router.test");
    assert_int_equal(ncalls, PT_ROUTE_MAX_REDIRECTS + 1);
    assert_int_equal(calls[PT_ROUTE_MAX_REDIRECTS].redirects, PT_ROUTE_MAX_REDIRECTS);
    /* a 500, and not through error_page 500 (@oops): the cycle is the error */
    assert_page(a, 500, "Internal Server Error");
}

/* ---- paths normalisation refuses ---- */

static void test_paths_that_cannot_be_routed(void **state)
{
    static const char *bad[] = {
        "/../etc/passwd", "/a/%2e%2e/%2e%2e/b", "/a%00b", "/a%0ab", "/%zz", "/%4", "*",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const answer *a = route("GET", bad[i], "router.test");
        if (a->status != 400)
            fail_msg("%s: %d", bad[i], a->status);
        assert_int_equal(ncalls, 0);
        assert_page(a, 400, "Bad Request");
    }
    /* too long for a path once decoded (with room left for an index name): 414 */
    enum { FITS = PATH_MAX - 256 - 1 }; /* the longest path the router takes */
    static char longer[FITS + 2];
    longer[0] = '/';
    memset(longer + 1, 'a', FITS);
    longer[FITS + 1] = '\0';
    const answer *a = route("GET", longer, "router.test");
    assert_int_equal(ncalls, 0);
    assert_page(a, 414, "URI Too Long");
    /* one byte shorter fits */
    longer[FITS] = '\0';
    a = route("GET", longer, "router.test");
    assert_int_equal(ncalls, 1);
    assert_int_equal(a->status, 200);
    assert_int_equal(a->body_len, strlen("static ") + FITS);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_the_location_that_answers),
        T(test_return),
        T(test_a_server_return_comes_before_locations),
        T(test_error_page_redirects),
        T(test_error_page_forms),
        T(test_error_page_response_codes),
        T(test_try_files_last_argument),
        T(test_redirects_are_limited),
        T(test_paths_that_cannot_be_routed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
