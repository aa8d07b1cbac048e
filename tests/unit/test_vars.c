/* $variables: what each one is, who may name it, and the one expander. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connmgr/proxy_protocol.h"
#include "server/core/vars.h"
#include "tests/support.h"

static int local_port(const pt_request *req, struct sockaddr_storage *out, socklen_t *len)
{
    (void)req;
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    memset(out, 0, sizeof *out);
    in->sin_family = AF_INET;
    in->sin_port = htons(8443);
    *len = sizeof *in;
    return 0;
}

static const pt_request_proto proto = {.local_addr = local_port};

static struct sockaddr_in peer;
static pt_header headers[2];

/* GET http://Example.COM.:8080/a%20b?x=1 HTTP/1.1 from 192.0.2.7:51234, over TLS. */
static pt_request request(void)
{
    static const char target[] = "http://Example.COM.:8080/a%20b?x=1";
    pt_request r;
    memset(&r, 0, sizeof r);
    r.proto = &proto;
    r.method = PT_STR_LIT("GET");
    r.target = (pt_str){target, sizeof target - 1};
    r.path = (pt_str){strstr(target, "/a"), 7};
    r.query = PT_STR_LIT("x=1");
    r.host = PT_STR_LIT("Example.COM.:8080");
    r.norm_path = PT_STR_LIT("/a b");
    r.server_name = PT_STR_LIT("default.test");
    r.tls = true;
    peer.sin_family = AF_INET;
    peer.sin_port = htons(51234);
    inet_pton(AF_INET, "192.0.2.7", &peer.sin_addr);
    r.peer = (const struct sockaddr *)&peer;
    r.peerlen = sizeof peer;
    headers[0] = (pt_header){PT_STR_LIT("X-Real-IP"), PT_STR_LIT("10.0.0.1")};
    headers[1] = (pt_header){PT_STR_LIT("User-Agent"), PT_STR_LIT("t/1")};
    r.headers = headers;
    r.nheaders = 2;
    return r;
}

typedef struct out {
    char buf[512];
    size_t len;
    int vars; /* pieces that were variables */
} out;

static void collect(void *ctx, const pt_var_ref *ref, const char *p, size_t n)
{
    out *o = ctx;
    if (ref->id != PT_VAR_TEXT)
        o->vars++;
    assert_true(o->len + n < sizeof o->buf);
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static const char *expanded(const pt_request *req, const char *text)
{
    static out o;
    memset(&o, 0, sizeof o);
    pt_vars_expand(req, text, collect, &o);
    return o.buf;
}

static void test_values(void **state)
{
    (void)state;
    pt_request r = request();
    assert_string_equal(expanded(&r, "$host"), "example.com");
    assert_string_equal(expanded(&r, "$http_host"), "Example.COM.:8080");
    assert_string_equal(expanded(&r, "$remote_addr:$remote_port"), "192.0.2.7:51234");
    assert_string_equal(expanded(&r, "$scheme"), "https");
    assert_string_equal(expanded(&r, "$request_uri"), "/a%20b?x=1");
    assert_string_equal(expanded(&r, "$uri"), "/a b");
    assert_string_equal(expanded(&r, "$args|$query_string"), "x=1|x=1");
    assert_string_equal(expanded(&r, "$server_port"), "8443");
    assert_string_equal(expanded(&r, "$request_method"), "GET");
    assert_string_equal(expanded(&r, "$http_x_real_ip"), "10.0.0.1");
    assert_string_equal(expanded(&r, "[$http_x_none]"), "[]");
}

/* A value of `ref` as bytes, for the binary ones. */
static pt_str value_of(const pt_request *req, const char *name)
{
    static char buf[256];
    pt_var_ref ref = pt_var_parse(name);
    return pt_var_value(req, &ref, buf, sizeof buf);
}

static void test_keys_of_zones(void **state)
{
    (void)state;
    pt_request r = request();
    assert_string_equal(expanded(&r, "$server_name"), "default.test");
    pt_str v = value_of(&r, "$binary_remote_addr");
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.p, "\xc0\x00\x02\x07", 4);
    struct sockaddr_in6 six = {.sin6_family = AF_INET6};
    r.peer = (const struct sockaddr *)&six;
    r.peerlen = sizeof six;
    inet_pton(AF_INET6, "2001:db8::7", &six.sin6_addr);
    v = value_of(&r, "$binary_remote_addr");
    assert_int_equal(v.len, 16);
    assert_memory_equal(v.p, six.sin6_addr.s6_addr, 16);
    /* an IPv4 client seen on an IPv6 socket is its IPv4 address */
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &six.sin6_addr);
    v = value_of(&r, "$binary_remote_addr");
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.p, "\xc0\x00\x02\x07", 4);
    struct sockaddr un = {.sa_family = AF_UNIX};
    r.peer = &un;
    assert_int_equal(value_of(&r, "$binary_remote_addr").len, 0);
}

/* A request whose connection's PROXY header named 203.0.113.5:4000 (reaching
 * [2001:db8::443]:443), over a connection from 10.0.0.2:39000, and whose realip set the client
 * to 198.51.100.9 without a port. */
static void test_client_addresses(void **state)
{
    (void)state;
    pt_request r = request();
    /* what the connection alone says: no PROXY header */
    struct sockaddr_in conn = {.sin_family = AF_INET, .sin_port = htons(39000)};
    inet_pton(AF_INET, "10.0.0.2", &conn.sin_addr);
    r.conn_peer = (const struct sockaddr *)&conn;
    r.conn_peerlen = sizeof conn;
    assert_string_equal(expanded(&r, "$realip_remote_addr:$realip_remote_port"), "10.0.0.2:39000");
    assert_string_equal(expanded(&r, "[$proxy_protocol_addr][$proxy_protocol_port]"
                                     "[$proxy_protocol_server_addr][$proxy_protocol_server_port]"),
                        "[][][][]");

    pt_proxy_header h;
    memset(&h, 0, sizeof h);
    h.src.in.sin_family = AF_INET;
    h.src.in.sin_port = htons(4000);
    inet_pton(AF_INET, "203.0.113.5", &h.src.in.sin_addr);
    h.dst.in6.sin6_family = AF_INET6;
    h.dst.in6.sin6_port = htons(443);
    inet_pton(AF_INET6, "2001:db8::443", &h.dst.in6.sin6_addr);
    r.proxied = &h;
    struct sockaddr_in real = {.sin_family = AF_INET};
    inet_pton(AF_INET, "198.51.100.9", &real.sin_addr);
    r.peer = (const struct sockaddr *)&real;
    assert_string_equal(expanded(&r, "$proxy_protocol_addr:$proxy_protocol_port"),
                        "203.0.113.5:4000");
    assert_string_equal(expanded(&r, "$proxy_protocol_server_addr $proxy_protocol_server_port"),
                        "2001:db8::443 443");
    assert_string_equal(expanded(&r, "$realip_remote_addr:$realip_remote_port"), "10.0.0.2:39000");
    /* no port is an empty $remote_port, as nginx's */
    assert_string_equal(expanded(&r, "$remote_addr[$remote_port]"), "198.51.100.9[]");
}

/* $arg_NAME, $is_args and $cookie_NAME, found as nginx finds them. */
static void test_arguments_and_cookies(void **state)
{
    (void)state;
    pt_request r = request();
    r.query = PT_STR_LIT("a=1&Page=2&flag&a=3&empty=&x=a%20b");
    assert_string_equal(expanded(&r, "[$arg_a][$arg_page][$arg_flag][$arg_empty][$arg_x]"),
                        "[1][2][][][a%20b]"); /* the first, names ignoring case, as sent */
    assert_string_equal(expanded(&r, "[$arg_missing][$arg_ag]$is_args"), "[][]?");
    r.query = PT_STR_LIT("");
    assert_string_equal(expanded(&r, "[$is_args][$arg_a]"), "[][]");
    pt_header h[3] = {
        {PT_STR_LIT("Cookie"), PT_STR_LIT("sid=abc; theme=dark ;lang=en")},
        {PT_STR_LIT("X-Other"), PT_STR_LIT("sid=no")},
        {PT_STR_LIT("cookie"), PT_STR_LIT("late=1")},
    };
    r.headers = h;
    r.nheaders = 3;
    assert_string_equal(expanded(&r, "[$cookie_sid][$cookie_theme][$cookie_lang][$cookie_late]"),
                        "[abc][dark][en][1]");
    assert_string_equal(expanded(&r, "[$cookie_si][$cookie_x_other]"), "[][]");
    assert_true(pt_var_allowed(PT_VARS_RETURN, pt_var_parse("$arg_a").id));
    assert_true(pt_var_allowed(PT_VARS_ZONE_KEY, pt_var_parse("$cookie_sid").id));
    assert_false(pt_var_allowed(PT_VARS_TRY_FILES, pt_var_parse("$arg_a").id));
}

static void test_host_falls_back_to_the_server_name(void **state)
{
    (void)state;
    pt_request r = request();
    r.host = (pt_str){"", 0};
    r.tls = false;
    assert_string_equal(expanded(&r, "$scheme://$host/"), "http://default.test/");
}

static void test_syntax(void **state)
{
    (void)state;
    pt_request r = request();
    /* Braces end a name where letters go on; text around is kept as it is. */
    assert_string_equal(expanded(&r, "${uri}x"), "/a bx");
    assert_string_equal(expanded(&r, "$urix"), "");
    assert_string_equal(expanded(&r, "a$ b"), "a b");
    assert_string_equal(expanded(&r, "100$"), "100");
    assert_string_equal(expanded(&r, "no variables"), "no variables");
    /* The caller's own variables reach it, empty, as variables. */
    static out o;
    memset(&o, 0, sizeof o);
    pt_vars_expand(&r, "<$proxy_host>", collect, &o);
    assert_string_equal(o.buf, "<>");
    assert_int_equal(o.vars, 1);

    pt_var_ref v = pt_var_parse("${host}.x");
    assert_int_equal(v.id, PT_VAR_HOST);
    assert_int_equal(v.len, 7);
    assert_false(v.malformed);
    v = pt_var_parse("${host.x");
    assert_int_equal(v.id, PT_VAR_HOST);
    assert_true(v.malformed);
    v = pt_var_parse("$");
    assert_int_equal(v.len, 1);
    assert_true(v.malformed);
    assert_int_equal(pt_var_parse("$http_").id, PT_VAR_UNKNOWN);
    assert_int_equal(pt_var_parse("$http_a").id, PT_VAR_HTTP_);
}

/* $document_root, $request_filename and $realpath_root: from the location's root, or its alias
 * and the path the alias replaces (nginx's ngx_http_map_uri_to_path). */
static void test_file_variables(void **state)
{
    (void)state;
    pt_request r = request();
    /* before a location is chosen: empty */
    assert_string_equal(expanded(&r, "[$document_root][$realpath_root][$request_filename]"),
                        "[][][]");
    pt_file_root root = {PT_STR_LIT("/srv/www"), {NULL, 0}};
    r.file_root = &root;
    assert_string_equal(expanded(&r, "$document_root|$request_filename"), "/srv/www|/srv/www/a b");
    pt_file_root slash = {PT_STR_LIT("/"), {NULL, 0}};
    r.file_root = &slash;
    assert_string_equal(expanded(&r, "$document_root|$request_filename"), "/|/a b");

    /* `location /i/ { alias /data/img; }` (a path in the conf loses its trailing '/') */
    pt_file_root alias = {PT_STR_LIT("/data/img"), PT_STR_LIT("/i/")};
    r.file_root = &alias;
    static const struct {
        const char *uri, *file;
    } cases[] = {
        {"/i/top.gif", "/data/img/top.gif"},
        {"/i/sub/a%20b", "/data/img/sub/a%20b"},
        {"/i/", "/data/img/"},
        {"/other", ""}, /* a rewritten $uri the alias does not cover: no file */
        {"/i", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        r.norm_path = (pt_str){cases[i].uri, strlen(cases[i].uri)};
        assert_string_equal(expanded(&r, "$request_filename"), cases[i].file);
        assert_string_equal(expanded(&r, "$document_root"), "/data/img");
    }
    /* `location /i { alias /data/img; }` */
    pt_file_root bare = {PT_STR_LIT("/data/img"), PT_STR_LIT("/i")};
    r.file_root = &bare;
    r.norm_path = PT_STR_LIT("/i/top.gif");
    assert_string_equal(expanded(&r, "$request_filename"), "/data/img/top.gif");
    r.norm_path = PT_STR_LIT("/i");
    assert_string_equal(expanded(&r, "$request_filename"), "/data/img");

    /* $realpath_root: every symbolic link resolved, through the directory itself too */
    char dir[PATH_MAX], real[PATH_MAX], want[PATH_MAX + 16], linked[PATH_MAX + 16];
    temp_dir_make(dir, sizeof dir, "vars");
    temp_put_dir(dir, "real", 0755);
    temp_put_dir(dir, "real/site", 0755);
    temp_put_link(dir, "link", "real");
    assert_non_null(realpath(dir, real));
    snprintf(want, sizeof want, "%s/real/site", real);
    snprintf(linked, sizeof linked, "%s/link/site", dir);
    pt_file_root through = {{linked, strlen(linked)}, {NULL, 0}};
    r.file_root = &through;
    assert_string_equal(expanded(&r, "$realpath_root"), want);
    assert_string_equal(expanded(&r, "$document_root"), linked);
    snprintf(linked, sizeof linked, "%s/gone", dir);
    through.dir = (pt_str){linked, strlen(linked)};
    assert_string_equal(expanded(&r, "[$realpath_root]"), "[]");
    temp_dir_remove(dir);

    /* they name files: return, rewrite, proxy_set_header, try_files and logs take them */
    static const pt_var_id ids[] = {PT_VAR_DOCUMENT_ROOT, PT_VAR_REALPATH_ROOT,
                                    PT_VAR_REQUEST_FILENAME};
    static const char *const names[] = {"$document_root", "$realpath_root", "$request_filename"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(pt_var_parse(names[i]).id, ids[i]);
        assert_true(pt_var_allowed(PT_VARS_RETURN, ids[i]));
        assert_true(pt_var_allowed(PT_VARS_PROXY, ids[i]));
        assert_true(pt_var_allowed(PT_VARS_TRY_FILES, ids[i]));
        assert_true(pt_var_allowed(PT_VARS_LOG, ids[i]));
        assert_false(pt_var_allowed(PT_VARS_ZONE_KEY, ids[i]));
    }
}

static void test_who_may_name_what(void **state)
{
    (void)state;
    assert_true(pt_var_allowed(PT_VARS_RETURN, PT_VAR_HOST));
    assert_true(pt_var_allowed(PT_VARS_RETURN, PT_VAR_URI));
    /* the client's addresses, as nginx's return expands any variable */
    assert_true(pt_var_allowed(PT_VARS_RETURN, PT_VAR_REMOTE_ADDR));
    assert_true(pt_var_allowed(PT_VARS_RETURN, PT_VAR_REALIP_REMOTE_ADDR));
    assert_true(pt_var_allowed(PT_VARS_RETURN, PT_VAR_PROXY_PROTOCOL_ADDR));
    assert_true(pt_var_allowed(PT_VARS_PROXY, PT_VAR_PROXY_PROTOCOL_SERVER_PORT));
    assert_false(pt_var_allowed(PT_VARS_TRY_FILES, PT_VAR_REMOTE_ADDR));
    assert_false(pt_var_allowed(PT_VARS_RETURN, PT_VAR_ARGS));
    assert_false(pt_var_allowed(PT_VARS_RETURN, PT_VAR_HTTP_));
    assert_true(pt_var_allowed(PT_VARS_PROXY, PT_VAR_PROXY_ADD_X_FORWARDED_FOR));
    assert_true(pt_var_allowed(PT_VARS_PROXY, PT_VAR_HTTP_));
    assert_true(pt_var_allowed(PT_VARS_TRY_FILES, PT_VAR_URI));
    assert_false(pt_var_allowed(PT_VARS_TRY_FILES, PT_VAR_ARGS));
    assert_false(pt_var_allowed(PT_VARS_PROXY, PT_VAR_UNKNOWN));
    assert_true(pt_var_allowed(PT_VARS_ZONE_KEY, PT_VAR_BINARY_REMOTE_ADDR));
    assert_true(pt_var_allowed(PT_VARS_ZONE_KEY, PT_VAR_REMOTE_ADDR));
    assert_true(pt_var_allowed(PT_VARS_ZONE_KEY, PT_VAR_SERVER_NAME));
    assert_true(pt_var_allowed(PT_VARS_ZONE_KEY, PT_VAR_HTTP_));
    assert_false(pt_var_allowed(PT_VARS_ZONE_KEY, PT_VAR_PROXY_HOST));
    /* bytes, not text: only a key may hold them */
    assert_false(pt_var_allowed(PT_VARS_PROXY, PT_VAR_BINARY_REMOTE_ADDR));
    assert_false(pt_var_allowed(PT_VARS_RETURN, PT_VAR_BINARY_REMOTE_ADDR));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_values),
        NOTHING_LEFT_TEST(test_keys_of_zones),
        NOTHING_LEFT_TEST(test_client_addresses),
        NOTHING_LEFT_TEST(test_arguments_and_cookies),
        NOTHING_LEFT_TEST(test_host_falls_back_to_the_server_name),
        NOTHING_LEFT_TEST(test_syntax),
        NOTHING_LEFT_TEST(test_file_variables),
        NOTHING_LEFT_TEST(test_who_may_name_what),
    };
    return cmocka_run_group_tests_name("vars", tests, NULL, NULL);
}
