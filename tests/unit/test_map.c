/*
 * map (server/core/map.c, server/core/vars.c, server/conf/map.c): the order in which an entry
 * is chosen (an exact key ignoring case, the longest leading wildcard, the longest trailing
 * one, the first regex in the order written, the default), a regex entry's captures in its
 * value (and not in the request's), and the value computed the first time a request reads it
 * and kept: a second read does not look again, a `volatile` map does; a map that reads itself
 * reads empty there; `set` gives a value of its own. Maps come from conf text, read by the conf
 * loader, as porter reads them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "connmgr/buffer.h"
#include "server/conf/conf.h"
#include "server/core/map.h"
#include "server/core/regex.h"
#include "server/core/vars.h"
#include "tests/support.h"

#define CONF                                                                                       \
    "map $http_host $site {\n"                                                                     \
    "    hostnames;\n"                                                                             \
    "    default other;\n"                                                                         \
    "    ~^www\\d*\\.example\\.com$ regex;\n"                                                      \
    "    mail.* mail;\n"                                                                           \
    "    mail.example.* mail-longer;\n"                                                            \
    "    *.example.com sub;\n"                                                                     \
    "    *.a.example.com sub-longer;\n"                                                            \
    "    .example.net net;\n"                                                                      \
    "    Example.COM exact;\n"                                                                     \
    "    www.example.com www;\n"                                                                   \
    "}\n"                                                                                          \
    "map $http_x_key $key {\n"                                                                     \
    "    default \"none\";\n"                                                                      \
    "    ~^user-(?<id>\\d+)-(\\w+)$ \"id=$id word=$2 whole=$0\";\n"                                \
    "    ~^v-(.*)$ \"first $1\";\n"                                                                \
    "    ~^v-(.*)$ \"second $1\";\n"                                                               \
    "    ~^(a|aa)+$ \"a's\";\n"                                                                    \
    "    *.x literal-star;\n"                                                                      \
    "}\n"                                                                                          \
    "map $http_x_n $counted { ~^(\\d+)$ \"n=$1\"; }\n"                                             \
    "map $http_x_n $fresh { volatile; ~^(\\d+)$ \"n=$1\"; }\n"                                     \
    "map $http_x_n $outer { default \"<$counted>\"; }\n"                                           \
    "map $loop_b $loop_a { default \"a$loop_b\"; }\n"                                              \
    "map $loop_a $loop_b { default \"b$loop_a\"; }\n"                                              \
    "server {\n"                                                                                   \
    "    set $counted \"by set\";\n"                                                               \
    "    set $plain \"$http_x_n!\";\n"                                                             \
    "}\n"

static pt_conf *conf;
static char *chunk;
static pt_request req;
static pt_header hdr[3];

static const pt_request_proto proto;
static const struct sockaddr unspec = {.sa_family = AF_UNSPEC};

static int setup(void **state)
{
    nothing_left_begin();
    char err[512];
    if (pt_conf_parse_string(&conf, CONF, "t.conf", "/", err, sizeof err) != 0)
        fail_msg("%s", err);
    return 0;
}

static int teardown(void **state)
{
    pt_conf_free(conf);
    assert_nothing_left(NULL);
    return 0;
}

/* A new request with the headers Host, X-Key and X-N (NULL: none). */
static void begin(const char *host, const char *key, const char *n)
{
    chunk = pt_chunk_get();
    pt_request_init(&req, &proto, NULL, chunk, 0);
    req.vars = &conf->vars;
    req.peer = &unspec;
    const char *names[] = {"Host", "X-Key", "X-N"}, *values[] = {host, key, n};
    for (size_t i = 0; i < 3; i++)
        if (values[i])
            hdr[req.nheaders++] =
                (pt_header){{names[i], strlen(names[i])}, {values[i], strlen(values[i])}};
    req.headers = hdr;
    req.host = host ? (pt_str){host, strlen(host)} : (pt_str){"", 0}; /* $http_host reads it */
}

static void end(void)
{
    pt_request_dispose(&req);
    pt_chunk_put(chunk);
}

/* The value of `$name` for the request. */
static const char *value(const char *name)
{
    static char out[256];
    char ref[64], buf[256];
    snprintf(ref, sizeof ref, "$%s", name);
    pt_var_ref r = pt_var_parse(ref);
    pt_str v = pt_var_value(&req, &r, buf, sizeof buf);
    snprintf(out, sizeof out, "%.*s", (int)v.len, v.p);
    return out;
}

/* The map that makes `$name`. */
static pt_conf_map *map_of(const char *name)
{
    long id = pt_var_find(&conf->vars, (pt_str){name, strlen(name)});
    assert_true(id >= 0 && conf->vars.list[id].map >= 0);
    return &conf->vars.maps[conf->vars.list[id].map];
}

static void test_hostnames_in_nginx_order(void **state)
{
    static const struct {
        const char *host, *want;
    } cases[] = {
        {"example.com", "exact"},            /* an exact key, whatever the case of either */
        {"EXAMPLE.com", "exact"},            /* ... */
        {"example.com.", "exact"},           /* a trailing dot of the value is dropped */
        {"www.example.com", "www"},          /* exact beats the regex and the wildcards */
        {"b.example.com", "sub"},            /* a leading wildcard */
        {"b.a.example.com", "sub-longer"},   /* the longest one */
        {"a.example.com", "sub"},            /* "*.a.example.com" wants a subdomain */
        {"example.net", "net"},              /* ".example.net": the domain */
        {"x.y.example.net", "net"},          /* and its subdomains */
        {"xexample.net", "other"},           /* not a subdomain */
        {"mail.example.org", "mail-longer"}, /* the longest trailing wildcard */
        {"mail.other", "mail"},              /* ... */
        {"mail.example.com", "sub"},         /* a leading wildcard beats a trailing one */
        {"mail", "other"},                   /* "mail.*" wants more */
        {"www2.example.com", "sub"},         /* a wildcard beats a regex */
        {"www2.example.org", "other"},
        {"", "other"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        begin(cases[i].host, NULL, NULL);
        const char *got = value("site");
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("Host \"%s\": \"%s\", want \"%s\"", cases[i].host, got, cases[i].want);
        end();
    }
}

static void test_the_lookup_alone(void **state)
{
    const pt_conf_map *m = map_of("site");
    pt_captures caps;
    bool limit;
    /* exact keys are sorted: each is found by the binary search */
    for (size_t i = 0; i < m->nexact; i++) {
        pt_str k = {m->exact[i].key, strlen(m->exact[i].key)};
        assert_ptr_equal(pt_map_find(m, k, &caps, &limit), &m->exact[i]);
        assert_false(limit);
    }
    assert_null(pt_map_find(m, PT_STR_LIT("nothing.test"), &caps, &limit));
    const pt_conf_map_entry *e = pt_map_find(m, PT_STR_LIT("www7.example.com."), &caps, &limit);
    assert_null(e); /* the lookup drops no dot: the request's value does */
    e = pt_map_find(m, PT_STR_LIT("www7.example.com"), &caps, &limit);
    assert_non_null(e);
    assert_string_equal(e->value, "sub");
    assert_int_equal(pt_map_key_cmp(PT_STR_LIT("ABC"), "abc"), 0);
    assert_true(pt_map_key_cmp(PT_STR_LIT("ab"), "abc") < 0);
    assert_true(pt_map_key_cmp(PT_STR_LIT("abd"), "abc") > 0);
}

static void test_regexes_and_their_captures(void **state)
{
    static const struct {
        const char *key, *want;
    } cases[] = {
        {"user-42-abc", "id=42 word=abc whole=user-42-abc"},
        {"v-x", "first x"}, /* the first regex that matches, in the order written */
        {"V-x", "none"},    /* `~` is case-sensitive */
        {"a.x", "none"},    /* without hostnames "*.x" is a word, no wildcard */
        {"*.X", "literal-star"},
        {"", "none"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        begin(NULL, cases[i].key, NULL);
        pt_captures before = {.n = 0};
        req.captures = &before;
        const char *got = value("key");
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("X-Key \"%s\": \"%s\", want \"%s\"", cases[i].key, got, cases[i].want);
        assert_ptr_equal(req.captures, &before); /* the request's captures are its own */
        end();
    }
}

static void test_computed_once_per_request(void **state)
{
    begin(NULL, NULL, "1");
    assert_string_equal(value("outer"), "<n=1>");
    /* the source changes: the kept values do not (the regexes do not run again) */
    hdr[0].value = PT_STR_LIT("2");
    assert_string_equal(value("outer"), "<n=1>");
    assert_string_equal(value("counted"), "n=1");
    assert_string_equal(value("fresh"), "n=2"); /* volatile: computed at each read */
    hdr[0].value = PT_STR_LIT("3");
    assert_string_equal(value("fresh"), "n=3");
    end();
    begin(NULL, NULL, "4"); /* the next request computes its own */
    assert_string_equal(value("counted"), "n=4");
    end();
}

static void test_a_map_that_reads_itself(void **state)
{
    begin(NULL, NULL, NULL);
    /* $loop_a reads $loop_b, which reads $loop_a while it is computed: empty there */
    assert_string_equal(value("loop_a"), "ab");
    assert_string_equal(value("loop_b"), "b"); /* computed from within $loop_a, and kept */
    end();
    begin(NULL, NULL, NULL);
    assert_string_equal(value("loop_b"), "ba");
    end();
}

static void test_set_and_an_unset_variable(void **state)
{
    begin(NULL, NULL, "5");
    assert_string_equal(value("plain"), ""); /* before any set: empty */
    long plain = pt_var_find(&conf->vars, PT_STR_LIT("plain"));
    long counted = pt_var_find(&conf->vars, PT_STR_LIT("counted"));
    assert_int_equal(pt_var_set(&req, (size_t)plain, "$http_x_n!"), 0);
    assert_string_equal(value("plain"), "5!");
    /* `set` on a map's variable: its value, the map not consulted */
    assert_int_equal(pt_var_set(&req, (size_t)counted, "by set"), 0);
    assert_string_equal(value("counted"), "by set");
    end();
}

static void test_a_regex_at_its_limit(void **state)
{
    pt_conf_map *m = map_of("key");
    pt_regex *re = NULL;
    for (size_t i = 0; i < m->nregex; i++)
        if (strstr(pt_regex_pattern(m->regex[i].re), "(a|aa)"))
            re = m->regex[i].re;
    assert_non_null(re);
    pt_regex_set_limit(re, 1000);
    char long_a[80];
    memset(long_a, 'a', sizeof long_a - 2);
    long_a[sizeof long_a - 2] = 'b';
    long_a[sizeof long_a - 1] = '\0';
    begin(NULL, long_a, NULL);
    assert_string_equal(value("key"), ""); /* not the default: it could not be told */
    assert_true(req.vars_failed);          /* the router answers 500 */
    end();
    begin(NULL, "aaaa", NULL);
    assert_string_equal(value("key"), "a's");
    assert_false(req.vars_failed);
    end();
    pt_regex_set_limit(re, 0);
}

static void test_no_variables_no_slots(void **state)
{
    begin(NULL, NULL, NULL);
    req.vars = NULL; /* a conf without variables of its own */
    assert_string_equal(value("counted"), "");
    assert_null(req.var_slots);
    req.vars = &conf->vars;
    size_t used = req.arena_used;
    assert_string_equal(value("http_x_n"), ""); /* porter's own: no slots made */
    assert_null(req.var_slots);
    assert_int_equal(req.arena_used, used);
    end();
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_hostnames_in_nginx_order),   T(test_the_lookup_alone),
        T(test_regexes_and_their_captures), T(test_computed_once_per_request),
        T(test_a_map_that_reads_itself),    T(test_set_and_an_unset_variable),
        T(test_a_regex_at_its_limit),       T(test_no_variables_no_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
