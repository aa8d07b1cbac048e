/* Access control: the directives as the conf reads them (rules replaced per level, auth_basic
 * and its file inherited each on its own, every refusal with its place), and the access check
 * on requests built here: allow/deny, auth_basic and the satisfy matrix, a slow hash checked
 * off the loop, remembered, and dropped when its request ends first. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "server/conf/conf.h"
#include "server/core/htpasswd.h"
#include "server/core/workpool.h"
#include "server/site/access.h"
#include "server/site/guard.h"
#include "tests/support.h"
#include "tests/support/vhost.h"

/* bcrypt (cost 5) of "pa:ss w\xc3\xb6rd", as Apache's htpasswd -B made it. */
#define BCRYPT "$2y$05$94PtJoEsS4zOg2IFk7uzNeg3/oCeG44GdS2UmuCWIamDUtrASbwKe"
#define BCRYPT_PW "pa:ss w\xc3\xb6rd"

static char dir[PATH_MAX];

static int make_dir(void **state)
{
    nothing_left_begin();
    temp_dir_make(dir, sizeof dir, "access");
    temp_put_text(dir, "users", "# test users\nalice:{PLAIN}wonder\nbob:" BCRYPT "\n");
    temp_put_text(dir, "others", "carol:{PLAIN}c\n");
    temp_put_text(dir, "bad", "alice:{PLAIN}x\n\nbob:hunter2\n");
    temp_put_dir(dir, "htdocs", 0755);
    return 0;
}

static int remove_dir(void **state)
{
    temp_dir_remove(dir);
    assert_nothing_left(NULL);
    return 0;
}

/* The conf `text` under the test's directory (the prefix), or the error it gives. */
static int load(const char *text, pt_conf **out, char *err, size_t errlen)
{
    return pt_conf_parse_string(out, text, "t.conf", dir, err, errlen);
}

static pt_conf *load_ok(const char *text)
{
    pt_conf *c = NULL;
    char err[1024];
    if (load(text, &c, err, sizeof err) != 0)
        fail_msg("%s", err);
    return c;
}

static const char *load_error(const char *text)
{
    static char err[1024];
    pt_conf *c = NULL;
    if (load(text, &c, err, sizeof err) == 0) {
        pt_conf_free(c);
        fail_msg("accepted:\n%s", text);
    }
    return err;
}

/* The rules of `a` as "allow 10.0.0.0/8, deny all". */
static const char *rules(const pt_conf_access *a)
{
    static char buf[512];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < a->nrules; i++) {
        char r[PT_CIDR_STRLEN];
        pt_cidr_format(&a->rules[i].range, r, sizeof r);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s %s", i ? ", " : "",
                              a->rules[i].deny ? "deny" : "allow", r);
    }
    return buf;
}

/* ---- the directives ---- */

static void test_rules_per_level(void **state)
{
    pt_conf *c = load_ok("allow 10.0.0.0/8;\n"
                         "deny all;\n"
                         "server {\n"
                         "    location /a/ { }\n"
                         "    location /b/ { deny 10.1.0.0/16; allow ::1; allow unix:; }\n"
                         "    location /d/ { allow ::1; deny unix:; }\n"
                         "}\n"
                         "server {\n"
                         "    allow 192.168.0.1;\n"
                         "    location /c/ { }\n"
                         "}\n");
    assert_string_equal(rules(&c->access), "allow 10.0.0.0/8, deny all");
    const pt_conf_server *s = &c->servers[0];
    assert_string_equal(rules(&s->access), "allow 10.0.0.0/8, deny all");
    assert_string_equal(rules(&s->locations[0].access), "allow 10.0.0.0/8, deny all");
    /* a level with rules of its own replaces the inherited ones, whichever comes first */
    assert_string_equal(rules(&s->locations[1].access),
                        "deny 10.1.0.0/16, allow ::1/128, allow unix:");
    assert_true(s->locations[1].access.rules_v4);
    assert_true(s->locations[0].access.rules_v4); /* "all" holds IPv4 addresses too */
    assert_string_equal(rules(&s->locations[2].access), "allow ::1/128, deny unix:");
    assert_false(s->locations[2].access.rules_v4);
    s = &c->servers[1];
    assert_string_equal(rules(&s->access), "allow 192.168.0.1/32");
    assert_string_equal(rules(&s->locations[0].access), "allow 192.168.0.1/32");
    assert_true(pt_conf_access_active(&s->access));
    pt_conf_free(c);
}

static void test_satisfy_and_auth_inherited(void **state)
{
    pt_conf *c = load_ok("auth_basic_user_file users;\n"
                         "server {\n"
                         "    satisfy any;\n"
                         "    auth_basic \"Staff \\\"only\\\" \\\\ here\";\n"
                         "    location /open/ { auth_basic off; }\n"
                         "    location /other/ { auth_basic_user_file others; satisfy all; }\n"
                         "}\n"
                         "server { }\n");
    const pt_conf_server *s = &c->servers[0];
    assert_int_equal(c->access.satisfy, PT_SATISFY_ALL);
    assert_null(c->access.realm);
    assert_false(pt_conf_access_active(&c->access)); /* a file alone asks nothing */
    assert_int_equal(s->access.satisfy, PT_SATISFY_ANY);
    assert_string_equal(s->access.realm, "Staff \"only\" \\ here");
    assert_string_equal(s->access.challenge, "WWW-Authenticate: Basic realm=\"Staff \\\"only\\\" "
                                             "\\\\ here\", charset=\"UTF-8\"\r\n");
    assert_non_null(pt_htpasswd_find(s->access.users, "alice", 5));
    assert_true(pt_conf_access_active(&s->access));
    /* off in a location, and the file kept for a deeper level to use */
    assert_null(s->locations[0].access.realm);
    assert_false(pt_conf_access_active(&s->locations[0].access));
    assert_int_equal(s->locations[0].access.satisfy, PT_SATISFY_ANY);
    /* the realm inherited, the file replaced */
    assert_string_equal(s->locations[1].access.realm, s->access.realm);
    assert_non_null(pt_htpasswd_find(s->locations[1].access.users, "carol", 5));
    assert_null(pt_htpasswd_find(s->locations[1].access.users, "alice", 5));
    assert_int_equal(s->locations[1].access.satisfy, PT_SATISFY_ALL);
    /* the same file's table is shared, not read again per level */
    assert_ptr_equal(s->access.users, c->access.users);
    assert_false(pt_conf_access_active(&c->servers[1].access));
    pt_conf_free(c);
}

static void test_refusals(void **state)
{
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"server { allow 10.0.0.300; }",
         "t.conf:1:16: invalid address \"10.0.0.300\" in \"allow\": not an IPv4 or IPv6 address"},
        {"server {\n  deny 10.0.0.0/33; }",
         "t.conf:2:8: invalid address \"10.0.0.0/33\" in \"deny\": invalid prefix length"},
        {"server { location / { deny 10.0.0.1/8; } }",
         "t.conf:1:28: invalid address \"10.0.0.1/8\" in \"deny\": bits are set beyond the prefix "
         "length, write \"10.0.0.0/8\" for the range"},
        {"server { allow; }", "t.conf:1:10: invalid number of arguments in \"allow\" directive"},
        {"server { allow 1.2.3.4 5.6.7.8; }", "invalid number of arguments in \"allow\""},
        {"server { satisfy some; }",
         "t.conf:1:18: invalid value \"some\" in \"satisfy\", it must be \"all\" or \"any\""},
        {"server { satisfy any; satisfy all; }", "\"satisfy\" directive is duplicate"},
        {"server { auth_basic \"$host\"; auth_basic_user_file users; }",
         "t.conf:1:21: variables are not supported in \"auth_basic\""},
        {"server { auth_basic \"a\nb\"; auth_basic_user_file users; }",
         "invalid realm in \"auth_basic\": a control character"},
        {"server { auth_basic_user_file $file; }",
         "variables are not supported in \"auth_basic_user_file\""},
        {"server {\n  location / {\n    auth_basic \"x\";\n  }\n}",
         "t.conf:3:16: \"auth_basic\" has no \"auth_basic_user_file\" here"},
        {"auth_basic x;\nserver { auth_basic_user_file users; }\nserver { }",
         "t.conf:1:12: \"auth_basic\" has no \"auth_basic_user_file\" here"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *err = load_error(cases[i].text);
        if (!strstr(err, cases[i].err))
            fail_msg("case %zu: \"%s\", want \"%s\"", i, err, cases[i].err);
    }
    /* the user file's own errors: the directive's place, then the file's line */
    char want[PATH_MAX + 256];
    snprintf(want, sizeof want,
             "t.conf:1:31: in \"auth_basic_user_file\": %s/bad:3: user \"bob\": unknown "
             "password hash",
             dir);
    const char *err = load_error("server { auth_basic_user_file bad; auth_basic x; }");
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("\"%s\", want \"%s\"", err, want);
    snprintf(want, sizeof want, "t.conf:1:31: in \"auth_basic_user_file\": %s/missing: %s", dir,
             strerror(ENOENT));
    assert_string_equal(load_error("server { auth_basic_user_file missing; }"), want);
}

/* ---- the check ---- */

static struct ev_loop *loop;
static pt_custodian *owner;
static pt_access_state *access_state;
static test_vhost tv;
static int verdict;
static bool resumed;

static void on_verdict(pt_request *req, int v)
{
    verdict = v;
    resumed = true;
}

static bool was_resumed(void *data)
{
    return resumed;
}

static void vhost_up(const char *server_text)
{
    char text[2048], err[512];
    snprintf(text, sizeof text, "server {\n    root htdocs;\n%s\n}\n", server_text);
    assert_int_equal(vhost_build(&tv, text, dir, false, err, sizeof err), 0);
    loop = ev_loop_new(EVFLAG_AUTO);
    owner = pt_custodian_new(NULL);
    assert_int_equal(pt_access_state_new(&access_state, loop, owner), 0);
    tv.vh.access_state = access_state;
}

static void vhost_down(void)
{
    pt_custodian_shutdown(owner); /* the pool's threads joined */
    pt_custodian_reap();
    vhost_unbuild(&tv);
    pt_conf_free(tv.conf);
    ev_loop_destroy(loop);
}

/* A request for `path` from `addr` (IPv4 or IPv6), with `authorization` (NULL: none). */
typedef struct test_req {
    pt_request req;
    struct sockaddr_storage peer;
    pt_header header;
    char arena[PT_CHUNK_SIZE] __attribute__((aligned(16)));
} test_req;

static pt_request *request(test_req *t, const char *path, const char *addr,
                           const char *authorization)
{
    pt_request *req = &t->req;
    pt_request_init(req, NULL, loop, t->arena, 0);
    memset(&t->peer, 0, sizeof t->peer);
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->peer;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
        req->peerlen = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&t->peer;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
        req->peerlen = sizeof *in;
    }
    req->peer = (struct sockaddr *)&t->peer;
    if (authorization) {
        t->header =
            (pt_header){PT_STR_LIT("Authorization"), {authorization, strlen(authorization)}};
        req->headers = &t->header;
        req->nheaders = 1;
    }
    req->method = PT_STR_LIT("GET");
    req->target = (pt_str){path, strlen(path)};
    req->vhost = &tv.vh;
    req->location = pt_location_find(&tv.vh, path, strlen(path), req);
    req->norm_path = (pt_str){path, strlen(path)};
    return req;
}

static void request_end(pt_request *req)
{
    pt_request_dispose(req);
}

/* The guard's verdict for `path` from `addr` with `authorization`: PT_GUARD_PASS, 401 or 403
 * (a held request is waited for). */
static int decide(const char *path, const char *addr, const char *authorization)
{
    test_req *t = malloc(sizeof *t);
    pt_request *req = request(t, path, addr, authorization);
    resumed = false;
    int v = pt_guard_run(req, on_verdict);
    if (v == PT_GUARD_WAIT) {
        assert_true(loop_run_until(loop, was_resumed, NULL, 10.0));
        v = verdict;
    }
    if (v == 401)
        assert_non_null(strstr(req->www_authenticate.p, "WWW-Authenticate: Basic realm="));
    else
        assert_int_equal(req->www_authenticate.len, 0);
    request_end(req);
    free(t);
    return v;
}

/* "Basic " and the base64 of `user_pass`. */
static const char *basic(const char *user_pass)
{
    static char buf[512];
    unsigned char in[256];
    size_t n = strlen(user_pass);
    memcpy(in, user_pass, n);
    strcpy(buf, "Basic ");
    EVP_EncodeBlock((unsigned char *)buf + 6, in, (int)n);
    return buf;
}

static void test_allow_deny(void **state)
{
    vhost_up("    location /lan/ { allow 10.0.0.0/8; allow 2001:db8::/32; deny all; }\n"
             "    location /not/ { deny 10.1.2.3; allow 10.0.0.0/8; }\n"
             "    location /open/ { }\n"
             "    location /mapped/ { allow 192.0.2.0/24; deny all; }\n"
             "    location /mapped6/ { allow ::ffff:0:0/96; deny ::/0; }\n"
             "    location /mapped-all/ { allow ::ffff:0:0/96; deny all; }\n");
    assert_int_equal(decide("/lan/x", "10.9.8.7", NULL), PT_GUARD_PASS);
    assert_int_equal(decide("/lan/x", "2001:db8::5", NULL), PT_GUARD_PASS);
    assert_int_equal(decide("/lan/x", "11.0.0.1", NULL), 403);
    assert_int_equal(decide("/lan/x", "::1", NULL), 403);
    /* the first rule that holds the address decides */
    assert_int_equal(decide("/not/x", "10.1.2.3", NULL), 403);
    assert_int_equal(decide("/not/x", "10.1.2.4", NULL), PT_GUARD_PASS);
    assert_int_equal(decide("/not/x", "192.168.1.1", NULL), PT_GUARD_PASS); /* no rule: on */
    assert_int_equal(decide("/open/x", "192.168.1.1", NULL), PT_GUARD_PASS);
    /* an IPv4-mapped client is taken as IPv4 where rules are IPv4, as IPv6 where none are */
    assert_int_equal(decide("/mapped/x", "::ffff:192.0.2.9", NULL), PT_GUARD_PASS);
    assert_int_equal(decide("/mapped/x", "::ffff:192.0.3.9", NULL), 403);
    assert_int_equal(decide("/mapped6/x", "::ffff:192.0.3.9", NULL), PT_GUARD_PASS);
    assert_int_equal(decide("/mapped6/x", "::1", NULL), 403);
    /* "all" is an IPv4 rule too (nginx's): the mapped client meets it as IPv4 */
    assert_int_equal(decide("/mapped-all/x", "::ffff:192.0.3.9", NULL), 403);
    vhost_down();
}

static void test_satisfy_matrix(void **state)
{
    vhost_up("    auth_basic_user_file users;\n"
             "    location /all/ { allow 10.0.0.0/8; deny all; auth_basic r; }\n"
             "    location /any/ { satisfy any; allow 10.0.0.0/8; deny all; auth_basic r; }\n"
             "    location /any-open/ { satisfy any; allow 10.0.0.0/8; auth_basic r; }\n"
             "    location /any-noauth/ { satisfy any; allow 10.0.0.0/8; deny all; }\n"
             "    location /auth/ { auth_basic r; }\n");
    static const struct {
        const char *path, *addr, *auth;
        int want;
    } cases[] = {
        /* all: both the address and the password */
        {"/all/", "10.0.0.1", "alice:wonder", PT_GUARD_PASS},
        {"/all/", "10.0.0.1", "alice:wrong", 401},
        {"/all/", "10.0.0.1", NULL, 401},
        {"/all/", "11.0.0.1", "alice:wonder", 403},
        {"/all/", "11.0.0.1", NULL, 403},
        /* any: either; a denied address without the password is asked for it (401) */
        {"/any/", "10.0.0.1", NULL, PT_GUARD_PASS},
        {"/any/", "10.0.0.1", "alice:wrong", PT_GUARD_PASS},
        {"/any/", "11.0.0.1", "alice:wonder", PT_GUARD_PASS},
        {"/any/", "11.0.0.1", "alice:wrong", 401},
        {"/any/", "11.0.0.1", NULL, 401},
        /* any, and no rule holds the address: the password decides */
        {"/any-open/", "11.0.0.1", NULL, 401},
        {"/any-open/", "11.0.0.1", "alice:wonder", PT_GUARD_PASS},
        /* any without auth_basic: the rules alone */
        {"/any-noauth/", "11.0.0.1", NULL, 403},
        {"/any-noauth/", "10.0.0.1", NULL, PT_GUARD_PASS},
        /* the password alone */
        {"/auth/", "11.0.0.1", "alice:wonder", PT_GUARD_PASS},
        {"/auth/", "11.0.0.1", "nobody:wonder", 401},
        {"/auth/", "11.0.0.1", "alice:", 401},
        {"/auth/", "11.0.0.1", ":wonder", 401},
        {"/auth/", "11.0.0.1", "alicewonder", 401},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[64];
        snprintf(path, sizeof path, "%sx", cases[i].path);
        int got = decide(path, cases[i].addr, cases[i].auth ? basic(cases[i].auth) : NULL);
        if (got != cases[i].want)
            fail_msg("%s from %s with %s: %d, want %d", path, cases[i].addr,
                     cases[i].auth ? cases[i].auth : "nothing", got, cases[i].want);
    }
    /* not Basic credentials at all */
    assert_int_equal(decide("/auth/x", "11.0.0.1", "Bearer abc"), 401);
    assert_int_equal(decide("/auth/x", "11.0.0.1", "Basic !!!"), 401);
    vhost_down();
}

static bool pool_idle(void *data)
{
    return pt_access_pending(data) == 0;
}

static void test_slow_hash_held_and_remembered(void **state)
{
    vhost_up("    auth_basic r;\n    auth_basic_user_file users;\n");
    /* a wrong password: held, then refused; nothing remembered */
    test_req *t = malloc(sizeof *t);
    pt_request *req = request(t, "/x", "10.0.0.1", basic("bob:wrong"));
    resumed = false;
    assert_int_equal(pt_guard_run(req, on_verdict), PT_GUARD_WAIT);
    assert_int_equal(pt_access_pending(access_state), 1);
    assert_true(loop_run_until(loop, was_resumed, NULL, 10.0));
    assert_int_equal(verdict, 401);
    request_end(req);
    /* the right one: held, let go */
    req = request(t, "/x", "10.0.0.1", basic("bob:" BCRYPT_PW));
    resumed = false;
    assert_int_equal(pt_guard_run(req, on_verdict), PT_GUARD_WAIT);
    assert_true(loop_run_until(loop, was_resumed, NULL, 10.0));
    assert_int_equal(verdict, PT_GUARD_PASS);
    request_end(req);
    /* and remembered: the next request with it passes at once */
    req = request(t, "/x", "10.0.0.2", basic("bob:" BCRYPT_PW));
    assert_int_equal(pt_guard_run(req, on_verdict), PT_GUARD_PASS);
    request_end(req);
    /* but only that password; and a request that ends before its answer leaves its job to
     * finish, or be taken back if it has not started, and nothing comes back to it */
    test_req *more[PT_WORKPOOL_THREADS + 2];
    resumed = false;
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) {
        more[i] = malloc(sizeof *more[i]);
        req = request(more[i], "/x", "10.0.0.2", basic("bob:" BCRYPT_PW "x"));
        assert_int_equal(pt_guard_run(req, on_verdict), PT_GUARD_WAIT);
    }
    assert_int_equal(pt_access_pending(access_state), sizeof more / sizeof *more);
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) {
        request_end(&more[i]->req);
        free(more[i]);
    }
    assert_true(loop_run_until(loop, pool_idle, access_state, 10.0));
    assert_false(resumed);
    free(t);
    vhost_down();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_per_level),
        cmocka_unit_test(test_satisfy_and_auth_inherited),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_allow_deny),
        cmocka_unit_test(test_satisfy_matrix),
        cmocka_unit_test(test_slow_hash_held_and_remembered),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
