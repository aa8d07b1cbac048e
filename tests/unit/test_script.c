/*
 * The script of a level (site/location.c) over a vhost built from conf text, its handlers
 * recording fakes and its answers recorded by a fake protocol: rewrite, return, set, break
 * and if run in the order written (a server's before a location is chosen, a location's before
 * its handler); an if's overlay (its add_header lines replace the location's, its proxy_pass
 * makes the proxy answer) holds until another location answers; the tenth new URI of a
 * request is a 500 (rewrite's loop); a map that cannot be told is a 500.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "connmgr/buffer.h"
#include "server/core/regex.h"
#include "server/core/vars.h"
#include "tests/support.h"
#include "tests/support/vhost.h"

/* ---- what the handlers were given, and what was answered ---- */

static int ncalls;
static pt_handler_kind last_kind;
static char last_location[64];

static void answer(pt_request *req, pt_handler_kind kind)
{
    static char body[512];
    ncalls++;
    last_kind = kind;
    snprintf(last_location, sizeof last_location, "%s", req->location->path);
    int n = snprintf(body, sizeof body, "%s %.*s", kind == PT_HANDLER_PROXY ? "proxy" : "static",
                     (int)req->norm_path.len, req->norm_path.p);
    pt_response r;
    pt_response_init(&r, 200);
    r.body = body;
    r.body_len = (size_t)n;
    pt_request_respond(req, &r);
}

static void fake_static(pt_request *req)
{
    answer(req, PT_HANDLER_STATIC);
}

static void fake_proxy(pt_request *req)
{
    answer(req, PT_HANDLER_PROXY);
}

static const pt_handler_fn fakes[PT_HANDLER_COUNT] = {
    [PT_HANDLER_STATIC] = fake_static,
    [PT_HANDLER_STATUS] = fake_static,
    [PT_HANDLER_PROXY] = fake_proxy,
};

static struct {
    int responses, status;
    char body[1024], location[256];
    char lines[1024]; /* what the response filters add: add_header's lines */
} got;

static int fake_respond(pt_request *req, const pt_response *r)
{
    got.responses++;
    got.status = r->status;
    snprintf(got.body, sizeof got.body, "%.*s", (int)r->body_len,
             r->body ? (const char *)r->body : "");
    snprintf(got.location, sizeof got.location, "%s", r->location ? r->location : "");
    size_t n = pt_response_filter_head(req, r, 0, got.lines, 0, sizeof got.lines - 1);
    got.lines[n < sizeof got.lines ? n : sizeof got.lines - 1] = '\0';
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
    "upstream app { server 127.0.0.1:9; }\n"                                                       \
    "map $arg_m $m { ~^(a|aa)+$ yes; default no; }\n"                                              \
    "server {\n"                                                                                   \
    "    server_name script.test;\n"                                                               \
    "    root %s;\n"                                                                               \
    "    set $s server;\n"                                                                         \
    "    if ($arg_early) { return 200 \"early $s\"; }\n"                                           \
    "    rewrite ^/srv/(.*)$ /$1;\n"                                                               \
    "    location /ret { return 200 \"first\"; rewrite ^ /x last; }\n"                             \
    "    location /rw { rewrite ^ /x last; return 200 \"second\"; }\n"                             \
    "    location /set { set $v one; if ($v = one) { set $v \"$v+two\"; } return 200 \"$v\"; }\n"  \
    "    location /brk { set $v one; break; return 200 \"not reached\"; }\n"                       \
    "    location /rwbrk { rewrite ^ /moved; break; return 200 \"not reached\"; }\n"               \
    "    location /loop { rewrite ^ /loop last; }\n"                                               \
    "    location /ping { rewrite ^ /pong; }\n"                                                    \
    "    location /pong { rewrite ^ /ping; }\n"                                                    \
    "    location /ov {\n"                                                                         \
    "        add_header X-Loc loc;\n"                                                              \
    "        if ($arg_h) { add_header X-If if always; }\n"                                         \
    "        if ($arg_p) { proxy_pass http://app; }\n"                                             \
    "        if ($arg_deny) { add_header X-Denied yes always; return 403 \"denied\"; }\n"          \
    "        if ($arg_away) { proxy_pass http://app; rewrite ^ /x last; }\n"                       \
    "        if ($arg_stop) { break; }\n"                                                          \
    "        return 200 \"end\";\n"                                                                \
    "    }\n"                                                                                      \
    "    location /map { if ($m = yes) { return 200 \"matched\"; } return 200 \"no match\"; }\n"   \
    "}\n"

static int setup(void **state)
{
    nothing_left_begin();
    temp_dir_make(dir, sizeof dir, "script");
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

/* Routes GET `target` and returns the body answered. */
static const char *route(const char *target)
{
    ncalls = 0;
    memset(&got, 0, sizeof got);
    char *chunk = pt_chunk_get();
    pt_request req;
    pt_request_init(&req, &fake_proto, NULL, chunk, 0);
    req.method = PT_STR_LIT("GET");
    req.method_id = PT_METHOD_GET;
    req.target = (pt_str){target, strlen(target)};
    const char *q = strchr(target, '?');
    req.path = (pt_str){target, q ? (size_t)(q - target) : strlen(target)};
    req.query = q ? (pt_str){q + 1, strlen(q + 1)} : (pt_str){"", 0};
    req.host = PT_STR_LIT("script.test");
    req.version_major = req.version_minor = 1;
    req.peer = &unspec;
    pt_vhost_apply(&tv.vh, &req);
    pt_route(&req);
    pt_request_dispose(&req);
    pt_chunk_put(chunk);
    assert_int_equal(got.responses, 1);
    return got.body;
}

static void test_the_order_written(void **state)
{
    /* the server's script first: its if's return before its rewrite */
    assert_string_equal(route("/srv/ret?early=1"), "early server");
    assert_string_equal(route("/srv/ret"), "first"); /* its rewrite, then /ret's script */
    assert_int_equal(ncalls, 0);
    assert_string_equal(route("/ret"), "first");           /* return ends the script */
    assert_string_equal(route("/rw"), "static /x");        /* rewrite ... last ends it too */
    assert_string_equal(route("/set"), "one+two");         /* set, then if, then return */
    assert_string_equal(route("/brk"), "static /brk");     /* break: the location's handler */
    assert_string_equal(route("/rwbrk"), "static /moved"); /* with the URI rewritten */
    assert_string_equal(last_location, "/rwbrk");
}

static void test_the_loop_is_a_500(void **state)
{
    route("/loop");
    assert_int_equal(got.status, 500);
    assert_int_equal(ncalls, 0);
    /* rewrites without a flag: each new URI a new pass, counted the same */
    route("/ping");
    assert_int_equal(got.status, 500);
    assert_int_equal(ncalls, 0);
}

static void test_an_overlay(void **state)
{
    assert_string_equal(route("/ov"), "end");
    assert_string_equal(got.lines, "X-Loc: loc\r\n");
    /* the block's lines replace the location's */
    route("/ov?h=1");
    assert_string_equal(got.lines, "X-If: if\r\n");
    /* a later block that held decides: its own lines, or the location's */
    route("/ov?h=1&deny=1");
    assert_int_equal(got.status, 403);
    assert_string_equal(got.body, "denied");
    assert_string_equal(got.lines, "X-Denied: yes\r\n");
    route("/ov?h=1&p=1");
    assert_string_equal(got.lines, "X-Loc: loc\r\n");
    /* proxy_pass: the proxy answers once the script ends with break */
    assert_string_equal(route("/ov?p=1&stop=1"), "proxy /ov");
    assert_string_equal(route("/ov?stop=1"), "static /ov");
    /* another location answers: the overlay is gone */
    assert_string_equal(route("/ov?h=1&away=1"), "static /x");
    assert_string_equal(got.lines, "");
}

static void test_a_map_that_cannot_be_told(void **state)
{
    long id = pt_var_find(&tv.conf->vars, PT_STR_LIT("m"));
    assert_true(id >= 0);
    pt_conf_map *m = &tv.conf->vars.maps[tv.conf->vars.list[id].map];
    pt_regex_set_limit(m->regex[0].re, 1000);
    char target[128] = "/map?m=";
    memset(target + 7, 'a', 80);
    target[87] = 'b';
    target[88] = '\0';
    route(target);
    assert_int_equal(got.status, 500);
    assert_string_equal(route("/map?m=aa"), "matched");
    assert_string_equal(route("/map?m=b"), "no match");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_the_order_written),
        T(test_the_loop_is_a_500),
        T(test_an_overlay),
        T(test_a_map_that_cannot_be_told),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
