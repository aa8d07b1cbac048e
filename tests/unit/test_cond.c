/*
 * if's conditions (server/core/cond.c), read from conf text by the conf loader: a variable
 * (false when empty or "0"), `=` and `!=` against a text with variables, `~` `~*` `!~` `!~*`
 * (a match's groups become the request's captures), and the tests of a file `-f` `-d` `-e`
 * `-x` and their `!` on a path with variables; a regex at its match limit cannot be told.
 * And the words of a condition as nginx reads them: "(" and ")" alone or stuck to a word, a
 * quoted empty text before ")".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "connmgr/buffer.h"
#include "server/conf/conf.h"
#include "server/core/cond.h"
#include "server/core/regex.h"
#include "server/core/vars.h"
#include "tests/support.h"

#define CONF                                                                                       \
    "server {\n"                                                                                   \
    "    if ($arg_v) { }\n"                                          /* 0 */                       \
    "    if ( $arg_v = \"\") { }\n"                                  /* 1 */                       \
    "    if ($arg_v != \"a-$arg_w\") { }\n"                          /* 2 */                       \
    "    if ($http_user_agent ~ MSIE) { }\n"                         /* 3 */                       \
    "    if ($http_user_agent ~* ^curl/(?<ver>\\d+)\\.(\\d+)) { }\n" /* 4 */                       \
    "    if ($arg_v !~ ^[0-9]+$) { }\n"                              /* 5 */                       \
    "    if ($arg_v !~* ^ABC$) { }\n"                                /* 6 */                       \
    "    if (-f %s/$arg_p) { }\n"                                    /* 7 */                       \
    "    if (!-f %s/$arg_p) { }\n"                                   /* 8 */                       \
    "    if (-d %s/$arg_p) { }\n"                                    /* 9 */                       \
    "    if (!-d %s/$arg_p) { }\n"                                   /* 10 */                      \
    "    if (-e %s/$arg_p) { }\n"                                    /* 11 */                      \
    "    if (!-e %s/$arg_p) { }\n"                                   /* 12 */                      \
    "    if (-x %s/$arg_p) { }\n"                                    /* 13 */                      \
    "    if (!-x %s/$arg_p) { }\n"                                   /* 14 */                      \
    "    if ($arg_v ~ ^(a|aa)+$) { }\n"                              /* 15 */                      \
    "}\n"

static pt_conf *conf;
static char dir[PATH_MAX];
static char *chunk;
static pt_request req;
static pt_header hdr[1];
static const pt_request_proto proto;
static const struct sockaddr unspec = {.sa_family = AF_UNSPEC};

static int setup(void **state)
{
    nothing_left_begin();
    temp_dir_make(dir, sizeof dir, "cond");
    temp_put_text(dir, "file.txt", "x");
    temp_put_text(dir, "tool.sh", "#!/bin/sh\n");
    assert_int_equal(chmod(temp_path((char[PATH_MAX]){0}, dir, "tool.sh"), 0755), 0);
    temp_put_dir(dir, "sub", 0755);
    temp_put_link(dir, "link", "file.txt");
    temp_put_link(dir, "dangling", "nothing");
    char text[8 * PATH_MAX + 2048], err[512];
    int n = snprintf(text, sizeof text, CONF, dir, dir, dir, dir, dir, dir, dir, dir);
    assert_true(n > 0 && (size_t)n < sizeof text);
    if (pt_conf_parse_string(&conf, text, "t.conf", "/", err, sizeof err) != 0)
        fail_msg("%s", err);
    return 0;
}

static int teardown(void **state)
{
    pt_conf_free(conf);
    temp_dir_remove(dir);
    assert_nothing_left(NULL);
    return 0;
}

/* Condition `k` of the server's script. */
static const pt_conf_cond *cond(size_t k)
{
    const pt_conf_script *sc = &conf->servers[0].script;
    assert_true(k < sc->n && sc->steps[k].kind == PT_STEP_IF);
    return &sc->steps[k].cond->cond;
}

/* Tells condition `k` for a request with the query `query` and User-Agent `ua` (NULL: none). */
static int holds(size_t k, const char *query, const char *ua)
{
    chunk = pt_chunk_get();
    pt_request_init(&req, &proto, NULL, chunk, 0);
    req.vars = &conf->vars;
    req.peer = &unspec;
    req.query = (pt_str){query, strlen(query)};
    if (ua) {
        hdr[0] = (pt_header){PT_STR_LIT("User-Agent"), {ua, strlen(ua)}};
        req.headers = hdr;
        req.nheaders = 1;
    }
    int r = pt_cond_eval(&req, cond(k));
    return r;
}

static void end(void)
{
    pt_request_dispose(&req);
    pt_chunk_put(chunk);
}

/* holds() and end() in one, for a condition without captures to look at. */
static int tell(size_t k, const char *query, const char *ua)
{
    int r = holds(k, query, ua);
    end();
    return r;
}

static void test_a_variable(void **state)
{
    assert_int_equal(tell(0, "v=x", NULL), 1);
    assert_int_equal(tell(0, "v=00", NULL), 1);
    assert_int_equal(tell(0, "v=0", NULL), 0);
    assert_int_equal(tell(0, "v=", NULL), 0);
    assert_int_equal(tell(0, "", NULL), 0);
    assert_int_equal(cond(0)->op, PT_COND_VAR);
}

static void test_comparisons(void **state)
{
    assert_int_equal(cond(1)->op, PT_COND_EQUAL); /* "(" alone, and ")" after a quoted "" */
    assert_int_equal(tell(1, "", NULL), 1);
    assert_int_equal(tell(1, "v=a", NULL), 0);
    assert_int_equal(tell(2, "v=a-b&w=b", NULL), 0); /* the text's variables are expanded */
    assert_int_equal(tell(2, "v=a-b&w=c", NULL), 1);
    assert_int_equal(tell(2, "v=A-b&w=b", NULL), 1); /* case counts */
}

static void test_regexes(void **state)
{
    assert_int_equal(tell(3, "", "Mozilla/4.0 (compatible; MSIE 6.0)"), 1);
    assert_int_equal(tell(3, "", "msie"), 0); /* `~` is case-sensitive */
    assert_int_equal(tell(3, "", NULL), 0);
    assert_int_equal(holds(4, "", "CURL/8.5"), 1); /* `~*` is not */
    /* the groups are the request's captures from now on */
    assert_non_null(req.captures);
    bool found;
    pt_str ver = pt_captures_named(req.captures, PT_STR_LIT("ver"), &found);
    assert_true(found);
    assert_int_equal(ver.len, 1);
    assert_memory_equal(ver.p, "8", 1);
    pt_str minor = pt_captures_group(req.captures, 2);
    assert_int_equal(minor.len, 1);
    assert_memory_equal(minor.p, "5", 1);
    end();
    assert_int_equal(holds(4, "", "wget"), 0);
    assert_null(req.captures); /* no match: nothing kept */
    end();
    assert_int_equal(tell(5, "v=12", NULL), 0);
    assert_int_equal(tell(5, "v=1a", NULL), 1);
    assert_int_equal(tell(6, "v=abc", NULL), 0);
    assert_int_equal(tell(6, "v=abd", NULL), 1);
}

static void test_files(void **state)
{
    static const struct {
        const char *path;
        int f, d, e, x; /* -f -d -e -x */
    } cases[] = {
        {"p=file.txt", 1, 0, 1, 0},
        {"p=tool.sh", 1, 0, 1, 1},
        {"p=sub", 0, 1, 1, 1},  /* nginx's -x: the owner's execute bit, a directory's too */
        {"p=link", 1, 0, 1, 0}, /* links are followed */
        {"p=dangling", 0, 0, 0, 0},
        {"p=nothing", 0, 0, 0, 0},
        {"p=file.txt/below", 0, 0, 0, 0}, /* not a directory: no file */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *q = cases[i].path;
        int want[] = {cases[i].f, cases[i].d, cases[i].e, cases[i].x};
        for (size_t t = 0; t < 4; t++) {
            int got = tell(7 + 2 * t, q, NULL), negated = tell(8 + 2 * t, q, NULL);
            if (got != want[t] || negated != !want[t])
                fail_msg("%s, test %zu: %d and %d, want %d", q, t, got, negated, want[t]);
        }
    }
}

static void test_a_regex_at_its_limit(void **state)
{
    pt_regex_set_limit(cond(15)->re, 1000);
    char q[100] = "v=";
    memset(q + 2, 'a', 80);
    q[82] = 'b';
    q[83] = '\0';
    assert_int_equal(tell(15, q, NULL), -1); /* cannot be told: the router answers 500 */
    assert_int_equal(tell(15, "v=aaaa", NULL), 1);
    pt_regex_set_limit(cond(15)->re, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_variable), T(test_comparisons),          T(test_regexes),
        T(test_files),      T(test_a_regex_at_its_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
