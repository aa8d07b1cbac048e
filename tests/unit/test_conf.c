/* Configuration: value forms, every error with its position, inheritance, includes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/conf/conf.h"
#include "server/core/regex.h"
#include "tests/support.h"

#ifndef PORTER_SOURCE_DIR
#error "PORTER_SOURCE_DIR (the source tree) is defined by tests/CMakeLists.txt"
#endif

#define NAME "t.conf"
#define PREFIX "/p"

static pt_conf *parse(const char *text)
{
    pt_conf *c = NULL;
    char err[512];
    int rc = pt_conf_parse_string(&c, text, NAME, PREFIX, err, sizeof err);
    if (rc != 0)
        fail_msg("rc %d: %s\nin:\n%s", rc, err, text);
    return c;
}

/* ---- values ---- */

static void test_parse_size(void **state)
{
    static const struct {
        const char *s;
        int rc;
        size_t v;
    } cases[] = {
        {"0", 0, 0},
        {"1024", 0, 1024},
        {"8k", 0, 8192},
        {"8K", 0, 8192},
        {"1m", 0, 1 << 20},
        {"1M", 0, 1 << 20},
        {"1g", 0, (size_t)1 << 30},
        {"3G", 0, (size_t)3 << 30},
        {"007", 0, 7},
        {"18446744073709551615", 0, SIZE_MAX},
        {"18446744073709551616", -ERANGE, 0},
        {"17179869184g", -ERANGE, 0},
        {"", -EINVAL, 0},
        {"k", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"+1", -EINVAL, 0},
        {" 1", -EINVAL, 0},
        {"1 ", -EINVAL, 0},
        {"12q", -EINVAL, 0},
        {"1kb", -EINVAL, 0},
        {"1.5m", -EINVAL, 0},
        {"1t", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t v = 12345;
        int rc = pt_parse_size(cases[i].s, &v);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d", cases[i].s, rc, cases[i].rc);
        if (rc == 0 && v != cases[i].v)
            fail_msg("\"%s\": %zu, want %zu", cases[i].s, v, cases[i].v);
    }
}

static void test_parse_time(void **state)
{
    static const struct {
        const char *s;
        int rc;
        double v;
    } cases[] = {
        {"60", 0, 60},
        {"0", 0, 0},
        {"60s", 0, 60},
        {"500ms", 0, 0.5},
        {"1ms", 0, 0.001},
        {"2m", 0, 120},
        {"1h", 0, 3600},
        {"1d", 0, 86400},
        {"1m30s", 0, 90},
        {"1m30", 0, 90},
        {"1h30m", 0, 5400},
        {"1d2h3m4s5ms", 0, 93784.005},
        {"1s500ms", 0, 1.5},
        {"", -EINVAL, 0},
        {"s", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"1.5s", -EINVAL, 0},
        {"10x", -EINVAL, 0},
        {"30s1m", -EINVAL, 0}, /* units must decrease */
        {"1m1m", -EINVAL, 0},
        {"30 s", -EINVAL, 0},
        {"1s ", -EINVAL, 0},
        {"5ms1s", -EINVAL, 0},
        {"99999999999999999999", -ERANGE, 0},
        {"9999999999999d", -ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double v = -1;
        int rc = pt_parse_time(cases[i].s, &v);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d", cases[i].s, rc, cases[i].rc);
        if (rc == 0 && fabs(v - cases[i].v) > 1e-9)
            fail_msg("\"%s\": %g, want %g", cases[i].s, v, cases[i].v);
    }
}

static void test_defaults(void **state)
{
    pt_conf *c = parse("server {}");
    pt_limits def;
    pt_limits_init(&def);
    assert_int_equal(c->nservers, 1);
    assert_int_equal(c->worker_processes, 1);
    assert_null(c->pid_path);
    assert_string_equal(c->prefix, PREFIX);
    assert_int_equal(c->nfiles, 1);
    assert_string_equal(c->files[0], NAME);
    assert_int_equal(c->regex_match_limit, 10000000); /* PCRE2's own default */

    const pt_conf_server *s = &c->servers[0];
    assert_int_equal(s->regex_match_limit, 10000000);
    assert_int_equal(s->nlistens, 1);
    assert_null(s->listens[0].host);
    assert_string_equal(s->listens[0].port, PT_CONF_DEFAULT_PORT);
    assert_int_equal(s->listens[0].backlog, def.max_waiting);
    assert_false(s->listens[0].default_server);
    assert_false(s->listens[0].reuseport);
    assert_false(s->listens[0].deferred);
    assert_int_equal(s->listens[0].notsent_lowat, PT_CONF_NOTSENT_LOWAT);
    assert_false(s->listens[0].http2);
    assert_string_equal(s->listens[0].file, NAME);
    assert_int_equal(s->listens[0].line, 1);
    assert_int_equal(s->listens[0].col, 1);
    assert_int_equal(s->nnames, 0);
    assert_string_equal(s->root, "/p/htdocs");
    assert_int_equal(s->nindex, 1);
    assert_string_equal(s->index[0], "index.html");
    assert_memory_equal(&s->limits, &def, sizeof def);
    assert_int_equal(s->naccess_logs, 0);
    assert_string_equal(s->error_log, "stderr");
    assert_int_equal(s->error_log_level, PT_LOG_ERROR);
    assert_true(s->sendfile);
    assert_true(s->server_tokens);
    assert_false(s->http2);
    /* docs/http2.md's defaults */
    assert_int_equal(s->h2.max_concurrent_streams, 128);
    assert_int_equal(s->h2.max_header_list_size, 32 * 1024);
    assert_int_equal(s->h2.max_frame_size, 16384);
    assert_int_equal(s->h2.stream_window, 256 * 1024);
    assert_int_equal(s->h2.connection_window, 1024 * 1024);
    assert_int_equal(s->h2.reset_burst, 1000);
    assert_int_equal(s->h2.reset_rate, 33);
    assert_int_equal(s->h2.max_continuations, 8);
    assert_int_equal(s->h2.max_settings, 32);
    assert_int_equal(s->h2.control_burst, 1000);
    assert_int_equal(s->h2.control_rate, 100);
    assert_string_equal(s->default_type, "application/octet-stream");
    assert_int_equal(s->ntypes, 0);
    assert_int_equal(s->nlocations, 0);
    const pt_conf_files *f = &s->static_files;
    assert_false(f->autoindex);
    assert_int_equal(f->autoindex_format, PT_AUTOINDEX_HTML);
    assert_true(f->autoindex_exact_size);
    assert_false(f->autoindex_localtime);
    assert_int_equal(f->expires_kind, PT_EXPIRES_OFF);
    assert_int_equal(f->nheaders, 0);
    assert_int_equal(f->nerror_pages, 0);
    assert_int_equal(f->ntry_files, 0);
    assert_false(f->precompressed);
    assert_int_equal(f->max_ranges, 16);
    assert_true(f->etag);
    assert_int_equal(c->file_cache_size, 32 << 20);
    assert_int_equal(c->file_cache_max_file, 32 << 10);
    assert_true(c->file_cache_valid == 1);
    assert_int_equal(c->open_file_cache_max, 1000);
    assert_true(c->open_file_cache_inactive == 60);
    assert_string_equal(s->file, NAME);
    assert_int_equal(s->line, 1);
    pt_conf_free(c);
    pt_conf_free(NULL);
}

static void test_all_directives(void **state)
{
    pt_conf *c = parse("# every directive once\n"
                       "worker_processes 4;\n"
                       "pid logs/porter.pid;\n"
                       "error_log logs/error.log notice;   # trailing comment\n"
                       "access_log stderr;\n"
                       "server {\n"
                       "    listen 127.0.0.1:8080 default_server reuseport deferred backlog=64 "
                       "notsent_lowat=64k;\n"
                       "    listen [::]:8080 notsent_lowat=off;\n"
                       "    server_name Example.COM \"www.example.com\";\n"
                       "    server_name ~^(?<Sub>\\D+)\\.example$ a#b;\n"
                       "    root \"html dir/\";\n"
                       "    index index.htm 'default page.html';\n"
                       "    access_log /var/log/porter/access.log combined;\n"
                       "    error_log stderr debug;\n"
                       "    sendfile off;\n"
                       "    server_tokens OFF;\n"
                       "    default_type \"a\\\"b\\\\c\\td\\ne\";\n"
                       "    types {\n"
                       "        text/html html HTM;\n"
                       "        'text/plain' txt;\n"
                       "    }\n"
                       "}\n");
    assert_int_equal(c->worker_processes, 4);
    assert_string_equal(c->pid_path, "/p/logs/porter.pid");
    assert_string_equal(c->error_log, "/p/logs/error.log");
    assert_int_equal(c->error_log_level, PT_LOG_NOTICE);
    assert_string_equal(pt_log_level_name(c->error_log_level), "notice");
    assert_int_equal(c->naccess_logs, 1);
    assert_string_equal(c->access_logs[0].path, "stderr");

    const pt_conf_server *s = &c->servers[0];
    assert_int_equal(s->nlistens, 2);
    assert_string_equal(s->listens[0].host, "127.0.0.1");
    assert_string_equal(s->listens[0].port, "8080");
    assert_int_equal(s->listens[0].backlog, 64);
    assert_true(s->listens[0].default_server);
    assert_true(s->listens[0].reuseport);
    assert_true(s->listens[0].deferred);
    assert_false(s->listens[1].deferred);
    assert_int_equal(s->listens[0].notsent_lowat, 64 * 1024);
    assert_int_equal(s->listens[1].notsent_lowat, 0);
    assert_int_equal(s->listens[0].line, 7);
    assert_int_equal(s->listens[0].col, 12);
    assert_string_equal(s->listens[1].host, "::");
    assert_int_equal(s->listens[1].backlog, 511);
    assert_int_equal(s->nnames, 4);
    assert_string_equal(s->names[0], "example.com");
    assert_string_equal(s->names[1], "www.example.com");
    assert_string_equal(s->names[2], "~^(?<Sub>\\D+)\\.example$");
    assert_string_equal(s->names[3], "a#b");
    assert_string_equal(s->root, "/p/html dir");
    assert_int_equal(s->nindex, 2);
    assert_string_equal(s->index[0], "index.htm");
    assert_string_equal(s->index[1], "default page.html");
    assert_int_equal(s->naccess_logs, 1);
    assert_string_equal(s->access_logs[0].path, "/var/log/porter/access.log");
    assert_string_equal(s->error_log, "stderr");
    assert_int_equal(s->error_log_level, PT_LOG_DEBUG);
    assert_false(s->sendfile);
    assert_false(s->server_tokens);
    assert_string_equal(s->default_type, "a\"b\\c\td\ne");
    assert_int_equal(s->ntypes, 3);
    assert_string_equal(s->types[0].type, "text/html");
    assert_string_equal(s->types[0].ext, "html");
    assert_string_equal(s->types[1].ext, "htm");
    assert_string_equal(s->types[2].type, "text/plain");
    assert_string_equal(s->types[2].ext, "txt");
    assert_int_equal(s->line, 6);
    pt_conf_free(c);
}

static void test_listen_forms(void **state)
{
    static const struct {
        const char *args;
        const char *host, *port;
        int backlog;
        bool default_server, reuseport;
    } cases[] = {
        {"8080", NULL, "8080", 511, false, false},
        {"0", NULL, "0", 511, false, false},
        {"65535", NULL, "65535", 511, false, false},
        {"080", NULL, "80", 511, false, false},
        {"*:8080", NULL, "8080", 511, false, false},
        {"127.0.0.1:8080", "127.0.0.1", "8080", 511, false, false},
        {"[::]:8080", "::", "8080", 511, false, false},
        {"[::1]:0", "::1", "0", 511, false, false},
        {"localhost:8080", "localhost", "8080", 511, false, false},
        {"80 default_server", NULL, "80", 511, true, false},
        {"80 default", NULL, "80", 511, true, false},
        {"80 reuseport backlog=0", NULL, "80", 0, false, true},
        {"80 backlog=2147483647 reuseport default_server", NULL, "80", INT_MAX, true, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[200];
        snprintf(text, sizeof text, "server { listen %s; }", cases[i].args);
        pt_conf *c = parse(text);
        const pt_conf_listen *l = &c->servers[0].listens[0];
        assert_int_equal(c->servers[0].nlistens, 1);
        if (cases[i].host)
            assert_string_equal(l->host, cases[i].host);
        else
            assert_null(l->host);
        assert_string_equal(l->port, cases[i].port);
        assert_int_equal(l->backlog, cases[i].backlog);
        assert_int_equal(l->default_server, cases[i].default_server);
        assert_int_equal(l->reuseport, cases[i].reuseport);
        assert_int_equal(l->line, 1);
        assert_int_equal(l->col, 17);
        pt_conf_free(c);
    }
}

/* The backlog follows the server's max_waiting wherever it is written. */
static void test_listen_backlog_follows_max_waiting(void **state)
{
    pt_conf *c = parse("max_waiting 100;\n"
                       "server { listen 1; }\n"
                       "server { listen 2; max_waiting 7; }\n"
                       "server { listen 3; max_waiting unlimited; }\n");
    assert_int_equal(c->servers[0].listens[0].backlog, 100);
    assert_int_equal(c->servers[1].listens[0].backlog, 7);
    assert_int_equal(c->servers[2].listens[0].backlog, INT_MAX);
    pt_conf_free(c);
}

enum { SIZE, TIME };

/* Every limit by its own name (and nginx's aliases): set at the top level it reaches every
 * server; set in a server it changes that server only. */
static void test_limits_by_name(void **state)
{
    static const struct {
        const char *name;
        size_t off;
        int kind;
        const char *top, *srv;
        double top_v, srv_v;
    } cases[] = {
#define L(f) offsetof(pt_limits, f)
        {"max_waiting", L(max_waiting), SIZE, "128", "4096", 128, 4096},
        {"max_concurrent", L(max_concurrent), SIZE, "10", "off", 10, (double)PT_LIMIT_NONE},
        {"request_read_timeout", L(request_read_timeout), TIME, "30s", "500ms", 30, 0.5},
        {"max_request_line_length", L(max_request_line_length), SIZE, "4k", "16K", 4096, 16384},
        {"max_request_headers", L(max_request_headers), SIZE, "50", "0", 50, 0},
        {"max_request_header_length", L(max_request_header_length), SIZE, "16k", "1m", 16384,
         1 << 20},
        {"max_request_body_length", L(max_request_body_length), SIZE, "1g", "unlimited", 1 << 30,
         (double)PT_LIMIT_NONE},
        {"response_timeout", L(response_timeout), TIME, "2m", "off", 120, INFINITY},
        {"response_send_timeout", L(response_send_timeout), TIME, "1h", "1m30s", 3600, 90},
        {"shutdown_grace_period", L(shutdown_grace_period), TIME, "1d", "5", 86400, 5},
        {"keepalive_timeout", L(keepalive_timeout), TIME, "65", "unlimited", 65, INFINITY},
        {"keepalive_requests", L(keepalive_requests), SIZE, "100", "1", 100, 1},
        {"client_max_body_size", L(max_request_body_length), SIZE, "16m", "0", 16 << 20, 0},
        {"client_header_timeout", L(request_read_timeout), TIME, "10s", "20s", 10, 20},
        {"send_timeout", L(response_send_timeout), TIME, "5s", "off", 5, INFINITY},
        {"worker_connections", L(max_concurrent), SIZE, NULL, NULL, 0, 0},
#undef L
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (!cases[i].top)
            continue; /* events only, see test_http_and_events */
        char text[300];
        snprintf(text, sizeof text, "server { listen 1; }\nserver { listen 2; %s %s; }\n%s %s;\n",
                 cases[i].name, cases[i].srv, cases[i].name, cases[i].top);
        pt_conf *c = parse(text);
        const pt_limits *lim[] = {&c->limits, &c->servers[0].limits, &c->servers[1].limits};
        for (int k = 0; k < 3; k++) {
            const char *p = (const char *)lim[k] + cases[i].off;
            double want = k == 2 ? cases[i].srv_v : cases[i].top_v;
            double got = cases[i].kind == SIZE ? (double)*(const size_t *)p : *(const double *)p;
            if (got != want)
                fail_msg("%s, level %d: %g, want %g", cases[i].name, k, got, want);
        }
        /* the fields not named keep their defaults */
        pt_limits def, got = c->servers[0].limits;
        pt_limits_init(&def);
        memcpy((char *)&got + cases[i].off, (char *)&def + cases[i].off,
               cases[i].kind == SIZE ? sizeof(size_t) : sizeof(double));
        assert_memory_equal(&got, &def, sizeof def);
        pt_conf_free(c);
    }
}

static void test_unlimited(void **state)
{
    pt_conf *c = parse("max_waiting off; max_concurrent unlimited; request_read_timeout off;\n"
                       "max_request_line_length off; max_request_headers off;\n"
                       "max_request_header_length off; max_request_body_length off;\n"
                       "response_timeout off; response_send_timeout off;\n"
                       "shutdown_grace_period off; keepalive_timeout off;\n"
                       "keepalive_requests off; server {}");
    const pt_limits *l = &c->servers[0].limits;
    assert_true(l->max_waiting == PT_LIMIT_NONE);
    assert_true(l->max_concurrent == PT_LIMIT_NONE);
    assert_true(l->max_request_line_length == PT_LIMIT_NONE);
    assert_true(l->max_request_headers == PT_LIMIT_NONE);
    assert_true(l->max_request_header_length == PT_LIMIT_NONE);
    assert_true(l->max_request_body_length == PT_LIMIT_NONE);
    assert_true(l->keepalive_requests == PT_LIMIT_NONE);
    assert_true(isinf(l->request_read_timeout) && pt_timeout_is_none(l->request_read_timeout));
    assert_true(isinf(l->response_timeout));
    assert_true(isinf(l->response_send_timeout));
    assert_true(isinf(l->shutdown_grace_period));
    assert_true(isinf(l->keepalive_timeout));
    pt_conf_free(c);
}

static void test_inheritance(void **state)
{
    /* top-level values after the server blocks still reach them, as in nginx */
    pt_conf *c = parse("server { listen 1; }\n"
                       "server {\n"
                       "    listen 2;\n"
                       "    root /srv/b;\n"
                       "    index b.html;\n"
                       "    access_log off;\n"
                       "    error_log b.log debug;\n"
                       "    sendfile off;\n"
                       "    server_tokens on;\n"
                       "    default_type text/x-b;\n"
                       "    types { text/x-b b; }\n"
                       "    keepalive_timeout 5s;\n"
                       "}\n"
                       "root /srv/top;\n"
                       "index top.html top.htm;\n"
                       "access_log logs/access.log;\n"
                       "error_log logs/error.log warn;\n"
                       "sendfile on;\n"
                       "server_tokens off;\n"
                       "default_type text/plain;\n"
                       "types { text/html html; }\n"
                       "types { text/css css; text/plain HTML; }\n"
                       "keepalive_timeout 30s;\n");
    const pt_conf_server *a = &c->servers[0], *b = &c->servers[1];
    assert_string_equal(a->root, "/srv/top");
    assert_int_equal(a->nindex, 2);
    assert_string_equal(a->index[1], "top.htm");
    assert_int_equal(a->naccess_logs, 1);
    assert_string_equal(a->access_logs[0].path, "/p/logs/access.log");
    assert_string_equal(a->error_log, "/p/logs/error.log");
    assert_int_equal(a->error_log_level, PT_LOG_WARN);
    assert_true(a->sendfile);
    assert_false(a->server_tokens);
    assert_string_equal(a->default_type, "text/plain");
    /* two types blocks at one level add up; a later type for an extension wins */
    assert_int_equal(a->ntypes, 2);
    assert_string_equal(a->types[0].ext, "html");
    assert_string_equal(a->types[0].type, "text/plain");
    assert_string_equal(a->types[1].ext, "css");
    assert_true(a->limits.keepalive_timeout == 30);

    assert_string_equal(b->root, "/srv/b");
    assert_int_equal(b->nindex, 1);
    assert_string_equal(b->index[0], "b.html");
    assert_int_equal(b->naccess_logs, 0);
    assert_string_equal(b->error_log, "/p/b.log");
    assert_int_equal(b->error_log_level, PT_LOG_DEBUG);
    assert_false(b->sendfile);
    assert_true(b->server_tokens);
    assert_string_equal(b->default_type, "text/x-b");
    /* a types block in a server replaces the inherited table */
    assert_int_equal(b->ntypes, 1);
    assert_string_equal(b->types[0].ext, "b");
    assert_true(b->limits.keepalive_timeout == 5);

    /* the top level keeps its own values */
    assert_string_equal(c->root, "/srv/top");
    assert_true(c->limits.keepalive_timeout == 30);
    assert_int_equal(c->ntypes, 2);
    pt_conf_free(c);
}

static void test_http_and_events(void **state)
{
    pt_conf *c = parse("worker_processes auto;\n"
                       "events {\n"
                       "    worker_connections 2048;\n"
                       "}\n"
                       "http {\n"
                       "    client_max_body_size 2m;\n"
                       "    server { listen 80; }\n"
                       "    server { listen 81; client_max_body_size 1k; }\n"
                       "}\n");
    assert_int_equal(c->worker_processes, 0);
    assert_int_equal(c->limits.max_concurrent, 2048);
    assert_int_equal(c->nservers, 2);
    assert_int_equal(c->servers[0].limits.max_concurrent, 2048);
    assert_int_equal(c->servers[0].limits.max_request_body_length, 2 << 20);
    assert_int_equal(c->servers[1].limits.max_request_body_length, 1024);
    assert_string_equal(c->servers[1].listens[0].port, "81");
    pt_conf_free(c);

    /* servers both inside and outside the wrapper */
    c = parse("server { listen 1; }\nhttp { server { listen 2; } }\nserver { listen 3; }\n");
    assert_int_equal(c->nservers, 3);
    assert_string_equal(c->servers[1].listens[0].port, "2");
    pt_conf_free(c);
}

static void test_paths(void **state)
{
    pt_conf *c = parse("root /x//y/./z/;\n"
                       "pid ../run/porter.pid;\n"
                       "error_log ./logs//e.log;\n"
                       "server { root /; }\n"
                       "server { root .; }\n");
    assert_string_equal(c->root, "/x/y/z");
    assert_string_equal(c->pid_path, "/p/../run/porter.pid");
    assert_string_equal(c->error_log, "/p/logs/e.log");
    assert_string_equal(c->servers[0].root, "/");
    assert_string_equal(c->servers[1].root, "/p");
    pt_conf_free(c);

    /* prefix NULL: the current directory; a relative prefix is under it */
    char *cwd = getcwd(NULL, 0), want[PATH_MAX + 64];
    char err[256];
    assert_non_null(cwd);
    assert_int_equal(pt_conf_parse_string(&c, "server { root html; }", NAME, NULL, err, sizeof err),
                     0);
    snprintf(want, sizeof want, "%s/html", strcmp(cwd, "/") ? cwd : "");
    assert_string_equal(c->servers[0].root, want);
    pt_conf_free(c);
    assert_int_equal(
        pt_conf_parse_string(&c, "server { root html; }", NAME, "a/./b/", err, sizeof err), 0);
    snprintf(want, sizeof want, "%s/a/b/html", strcmp(cwd, "/") ? cwd : "");
    assert_string_equal(c->servers[0].root, want);
    pt_conf_free(c);
    free(cwd);
}

/* ---- errors: each message and its file:line:col ---- */

static void test_errors(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        /* syntax */
        {"server {\n    listen 8080;\n    foo bar;\n}\n", "t.conf:3:5: unknown directive \"foo\""},
        {"server {\n}\nroot /x", "t.conf:3:8: unexpected end of file, expecting \";\" or \"}\""},
        {"server {\n    listen 80;\n", "t.conf:3:1: unexpected end of file, expecting \"}\""},
        {"server {\n}\n}\n", "t.conf:3:1: unexpected \"}\""},
        {"server { listen 80 }", "t.conf:1:20: unexpected \"}\""},
        {"server {\n    root \"/x;\n}\n", "t.conf:2:10: unterminated string"},
        {"server {\n    root '/x;\n}\n", "t.conf:2:10: unterminated string"},
        {"server { root \"/a\"b; }", "t.conf:1:19: unexpected \"b\""},
        {";\nserver {}", "t.conf:1:1: unexpected \";\""},
        {"server {}\n  { }", "t.conf:2:3: unexpected \"{\""},
        {"server {\n  root /x { }\n}\n",
         "t.conf:2:11: directive \"root\" is not terminated by \";\""},
        {"server;", "t.conf:1:7: directive \"server\" has no opening \"{\""},
        {"server foo { }", "t.conf:1:1: invalid number of arguments in \"server\" directive"},
        {"include;", "t.conf:1:1: invalid number of arguments in \"include\" directive"},
        {"include a b;", "t.conf:1:1: invalid number of arguments in \"include\" directive"},
        {"include a { }", "t.conf:1:11: directive \"include\" is not terminated by \";\""},
        /* context, count, duplicates */
        {"listen 80;\nserver {}\n", "t.conf:1:1: \"listen\" directive is not allowed here"},
        {"server { worker_processes 2; }",
         "t.conf:1:10: \"worker_processes\" directive is not allowed here"},
        {"http { worker_processes 2; }",
         "t.conf:1:8: \"worker_processes\" directive is not allowed here"},
        {"http {\n  http {\n  }\n}\n", "t.conf:2:3: \"http\" directive is not allowed here"},
        {"server {\n  server { }\n}\n", "t.conf:2:3: \"server\" directive is not allowed here"},
        {"events { use epoll; }\nserver {}\n",
         "t.conf:1:10: \"use\" directive is not supported by porter; see docs/nginx.md"},
        {"server { worker_connections 5; }",
         "t.conf:1:10: \"worker_connections\" directive is not allowed here"},
        {"server {\n  root;\n}\n", "t.conf:2:3: invalid number of arguments in \"root\" directive"},
        {"server { listen 1 2 3 4 5 6 7 8 9 10; }",
         "t.conf:1:10: invalid number of arguments in \"listen\" directive"},
        {"keepalive_timeout 65 60;\nserver {}",
         "t.conf:1:1: invalid number of arguments in \"keepalive_timeout\" directive"},
        {"server {\n  root /a;\n  root /b;\n}\n", "t.conf:3:3: \"root\" directive is duplicate"},
        {"client_max_body_size 1m;\nmax_request_body_length 2m;\nserver {}\n",
         "t.conf:2:1: \"max_request_body_length\" directive is duplicate"},
        {"max_concurrent 10;\nevents { worker_connections 5; }\nserver {}",
         "t.conf:2:10: \"worker_connections\" directive is duplicate"},
        {"error_log a;\nhttp { error_log b; }\nserver {}",
         "t.conf:2:8: \"error_log\" directive is duplicate"},
        {"http { }\nhttp { }\nserver {}", "t.conf:2:1: \"http\" directive is duplicate"},
        /* locations */
        {"server {\n  location ~ \"(\" { }\n}\n",
         "t.conf:2:14: invalid regular expression \"(\": missing closing parenthesis at offset 1"},
        {"server {\n  location ~* \"\" { }\n}\n",
         "t.conf:2:15: empty regular expression in \"location\""},
        {"server { location ~ x { alias /tmp/; } }",
         "t.conf:1:25: \"alias\" in a regular expression location is not supported"},
        {"server { location ~ x { proxy_pass http://a.b/x; } }",
         "t.conf:1:36: \"proxy_pass\" cannot have a URI in a regular expression location"},
        {"server {\n  location = @fallback { }\n}\n",
         "t.conf:2:12: invalid named location \"@fallback\""},
        {"server { location @x { alias /tmp/; } }",
         "t.conf:1:24: \"alias\" in a named location is not supported"},
        {"server {\n  location x { }\n}\n",
         "t.conf:2:12: invalid location path \"x\", it must start with \"/\""},
        {"server {\n  location ^ /x { }\n}\n", "t.conf:2:12: invalid location modifier \"^\""},
        {"server {\n  location /a { }\n  location ^~ /a { }\n}\n",
         "t.conf:3:15: duplicate location \"/a\""},
        {"server {\n  location = /a { }\n  location =/a { }\n}\n",
         "t.conf:3:12: duplicate location \"/a\""},
        /* nested locations: where nginx allows them */
        {"server {\n  location = /a {\n    location /a/b { }\n  }\n}\n",
         "t.conf:3:14: location \"/a/b\" cannot be inside the exact location \"/a\""},
        {"server {\n  location @a {\n    location /b { }\n  }\n}\n",
         "t.conf:3:14: location \"/b\" cannot be inside the named location \"@a\""},
        {"server {\n  location /a {\n    location @b { }\n  }\n}\n",
         "t.conf:3:14: named location \"@b\" can be on the server level only"},
        {"server {\n  location /a/ {\n    location /b { }\n  }\n}\n",
         "t.conf:3:14: location \"/b\" is outside location \"/a/\""},
        {"server {\n  location /a/ {\n    location = /ab { }\n  }\n}\n",
         "t.conf:3:16: location \"/ab\" is outside location \"/a/\""},
        {"server {\n  location ~ ^/r/ {\n    location /r/x { }\n  }\n}\n",
         "t.conf:3:14: location \"/r/x\" is outside location \"^/r/\""},
        {"server {\n  location /a/ {\n    location /a/b { }\n    location /a/b { }\n  }\n}\n",
         "t.conf:4:14: duplicate location \"/a/b\""},
        {"server {\n  location /a/ {\n    location /a/b/ {\n      location /a/c { }\n    }\n  "
         "}\n}\n",
         "t.conf:4:16: location \"/a/c\" is outside location \"/a/b/\""},
        {"server {\n  location /a/ {\n    location /a/b { alias; }\n  }\n}\n",
         "t.conf:3:21: invalid number of arguments in \"alias\" directive"},
        {"server { regex_match_limit 0; }",
         "t.conf:1:28: invalid value \"0\" in \"regex_match_limit\", it must be 1..4294967295"},
        {"server { location /a { regex_match_limit 1k; } }",
         "t.conf:1:42: invalid value \"1k\" in \"regex_match_limit\", it must be 1..4294967295"},
        {"regex_match_limit 4294967296;\nserver { }",
         "t.conf:1:19: invalid value \"4294967296\" in \"regex_match_limit\", it must be "
         "1..4294967295"},
        {"location / { }\nserver {}\n", "t.conf:1:1: \"location\" directive is not allowed here"},
        {"server {\n  location / ;\n}\n",
         "t.conf:2:14: directive \"location\" has no opening \"{\""},
        {"server { location { } }",
         "t.conf:1:10: invalid number of arguments in \"location\" directive"},
        {"server { location /a { root /x; alias /y; } }",
         "t.conf:1:33: \"alias\" directive is duplicate, \"root\" directive was specified earlier"},
        {"server { location /a { alias /y; root /x; } }",
         "t.conf:1:34: \"root\" directive is duplicate, \"alias\" directive was specified earlier"},
        {"server { alias /y; }", "t.conf:1:10: \"alias\" directive is not allowed here"},
        {"server { status; }", "t.conf:1:10: \"status\" directive is not allowed here"},
        {"server { location /s { status on; } }",
         "t.conf:1:24: invalid number of arguments in \"status\" directive"},
        /* static-file directives */
        {"server { try_files $uri; }",
         "t.conf:1:10: invalid number of arguments in \"try_files\" directive"},
        {"try_files $uri =404;\nserver {}",
         "t.conf:1:1: \"try_files\" directive is not allowed here"},
        {"server { try_files $uri $args; }",
         "t.conf:1:25: unknown variable \"$args\" in \"try_files\", only $uri, $document_root, "
         "$realpath_root, $request_filename and captures are supported"},
        {"server { try_files $uri =4o4; }", "t.conf:1:25: invalid code \"=4o4\" in \"try_files\""},
        {"server { try_files $uri =99; }", "t.conf:1:25: invalid code \"=99\" in \"try_files\""},
        {"server { try_files x.html /i.html; }",
         "t.conf:1:20: invalid URI \"x.html\" in \"try_files\", it must start with \"/\" or "
         "\"$uri\""},
        {"server { try_files $uri @spa; }",
         "t.conf:1:25: no location \"@spa\" in the server at t.conf:1"},
        {"server { try_files @spa $uri; location @spa { } }",
         "t.conf:1:20: invalid named location \"@spa\" in \"try_files\", only the last argument "
         "may name one"},
        {"error_page 404 @app;\nserver { location @app { } }\nserver { }",
         "t.conf:1:16: no location \"@app\" in the server at t.conf:3"},
        {"server { try_files /a?x=1 /b; }", "t.conf:1:20: a query in \"/a?x=1\" of \"try_files\" "
                                            "is only allowed in the last argument"},
        {"autoindex maybe;\nserver {}", "t.conf:1:11: invalid value \"maybe\" in \"autoindex\" "
                                        "directive, it must be \"on\" or \"off\""},
        {"autoindex_format xml;\nserver {}",
         "t.conf:1:18: invalid value \"xml\" in \"autoindex_format\", it must be \"html\" or "
         "\"json\""},
        {"server { expires soon; }", "t.conf:1:18: invalid value \"soon\" in \"expires\""},
        {"server { expires -x; }", "t.conf:1:18: invalid value \"-x\" in \"expires\""},
        {"server { expires later 1h; }", "t.conf:1:18: invalid value \"later\" in \"expires\""},
        {"server { expires @15h; }", "t.conf:1:18: \"expires @TIME\" is not supported"},
        {"server { expires 1h 2h 3h; }",
         "t.conf:1:10: invalid number of arguments in \"expires\" directive"},
        {"server { add_header X-A; }",
         "t.conf:1:10: invalid number of arguments in \"add_header\" directive"},
        {"server { add_header \"X A\" v; }",
         "t.conf:1:21: invalid header name \"X A\" in \"add_header\""},
        {"server { add_header X-A \"a\\r\\nB: c\"; }",
         "t.conf:1:25: invalid character in the value of \"add_header\""},
        {"server { add_header X-A $request_id; }",
         "t.conf:1:25: unknown variable \"$request_id\" in \"add_header\", variables are not "
         "supported"},
        {"server { add_header X-A b sometimes; }",
         "t.conf:1:27: invalid parameter \"sometimes\" in \"add_header\""},
        {"server { error_page 404; }",
         "t.conf:1:10: invalid number of arguments in \"error_page\" directive"},
        {"server { error_page =200 /x; }",
         "t.conf:1:10: invalid number of arguments in \"error_page\" directive"},
        {"server { error_page 200 /x; }", "t.conf:1:21: value \"200\" must be between 300 and 599"},
        {"server { error_page 404 600 /x; }",
         "t.conf:1:25: value \"600\" must be between 300 and 599"},
        {"server { error_page 404 =abc /x; }",
         "t.conf:1:25: invalid value \"=abc\" in \"error_page\""},
        {"server { error_page 404 x.html; }",
         "t.conf:1:25: invalid URI \"x.html\" in \"error_page\""},
        {"server { error_page 404 @x; }",
         "t.conf:1:25: no location \"@x\" in the server at t.conf:1"},
        {"server { error_page 404 @; }", "t.conf:1:25: invalid named location \"@\""},
        {"server { error_page 404 /$nope; }",
         "t.conf:1:25: unknown variable \"$nope\" in \"error_page\""},
        {"server { error_page 404 /$http_x; }",
         "t.conf:1:25: unknown variable \"$http_x\" in \"error_page\""},
        {"server { error_page 404 @x$1; location @x$1 { } }",
         "t.conf:1:25: invalid named location \"@x$1\""},
        {"server { error_page 404 $host/x; }",
         "t.conf:1:25: invalid URI \"$host/x\" in \"error_page\""},
        {"server { max_ranges 201; }",
         "t.conf:1:21: invalid value \"201\" in \"max_ranges\", it must be 0..200"},
        {"server { max_ranges -1; }",
         "t.conf:1:21: invalid value \"-1\" in \"max_ranges\", it must be 0..200"},
        {"server { precompressed yes; }", "t.conf:1:24: invalid value \"yes\" in \"precompressed\" "
                                          "directive, it must be \"on\" or \"off\""},
        {"server { etag 1; }",
         "t.conf:1:15: invalid value \"1\" in \"etag\" directive, it must be \"on\" or \"off\""},
        {"server { location /a { alias \"\"; } }", "t.conf:1:30: invalid path \"\" in \"alias\""},
        {"autoindex_exact_size 1;\nserver {}", "t.conf:1:22: invalid value \"1\" in "
                                               "\"autoindex_exact_size\" directive, it must be "
                                               "\"on\" or \"off\""},
        {"server { location /a { autoindex_localtime gmt; } }",
         "t.conf:1:44: invalid value \"gmt\" in \"autoindex_localtime\" directive, it must be "
         "\"on\" or \"off\""},
        {"open_file_cache_valid forever;\nserver {}",
         "t.conf:1:23: invalid time \"forever\" in \"open_file_cache_valid\""},
        {"server { location /a { autoindex on; autoindex off; } }",
         "t.conf:1:38: \"autoindex\" directive is duplicate"},
        /* the file cache */
        {"server { file_cache_size 1m; }",
         "t.conf:1:10: \"file_cache_size\" directive is not allowed here"},
        {"file_cache_size lots;\nserver {}",
         "t.conf:1:17: invalid size \"lots\" in \"file_cache_size\""},
        {"file_cache_max_file -1;\nserver {}",
         "t.conf:1:21: invalid size \"-1\" in \"file_cache_max_file\""},
        {"file_cache_valid 1x;\nserver {}",
         "t.conf:1:18: invalid time \"1x\" in \"file_cache_valid\""},
        {"file_cache_valid 1s;\nopen_file_cache_valid 2s;\nserver {}",
         "t.conf:2:1: \"open_file_cache_valid\" directive is duplicate"},
        {"open_file_cache max=0;\nserver {}",
         "t.conf:1:17: invalid parameter \"max=0\" in \"open_file_cache\""},
        {"open_file_cache inactive=20s;\nserver {}",
         "t.conf:1:17: \"open_file_cache\" needs \"max=N\" or \"off\""},
        {"open_file_cache max=10 inactive=soon;\nserver {}",
         "t.conf:1:24: invalid parameter \"inactive=soon\" in \"open_file_cache\""},
        {"open_file_cache off max=10;\nserver {}",
         "t.conf:1:21: invalid parameter \"max=10\" in \"open_file_cache\""},
        {"root /x;\n", "t.conf:2:1: no \"server\" block"},
        {"", "t.conf:1:1: no \"server\" block"},
        /* values */
        {"max_request_body_length 12q;\nserver {}\n",
         "t.conf:1:25: invalid size \"12q\" in \"max_request_body_length\""},
        {"max_request_line_length 99999999999999999999;\nserver{}",
         "t.conf:1:25: invalid size \"99999999999999999999\" in \"max_request_line_length\""},
        {"client_max_body_size -1;\nserver{}",
         "t.conf:1:22: invalid size \"-1\" in \"client_max_body_size\""},
        {"max_waiting -1;\nserver {}", "t.conf:1:13: invalid number \"-1\" in \"max_waiting\""},
        {"server { keepalive_requests 1k; }",
         "t.conf:1:29: invalid number \"1k\" in \"keepalive_requests\""},
        {"server {\n\tsend_timeout 5x;\n}", "t.conf:2:15: invalid time \"5x\" in \"send_timeout\""},
        {"keepalive_timeout 0;\nserver {}",
         "t.conf:1:19: invalid time \"0\" in \"keepalive_timeout\": write \"off\" for no timeout"},
        {"sendfile yes;\nserver {}", "t.conf:1:10: invalid value \"yes\" in \"sendfile\" "
                                     "directive, it must be \"on\" or \"off\""},
        {"worker_processes 0;\nserver {}", "t.conf:1:18: invalid value \"0\" in "
                                           "\"worker_processes\", it must be 1..1024 or \"auto\""},
        {"worker_processes many;\nserver {}",
         "t.conf:1:18: invalid value \"many\" in \"worker_processes\", it must be 1..1024 or "
         "\"auto\""},
        {"error_log stderr loud;\nserver {}", "t.conf:1:18: invalid log level \"loud\""},
        {"error_log off;\nserver {}",
         "t.conf:1:11: \"error_log off\" is not supported, use \"error_log stderr crit\""},
        {"access_log /x main;\nserver {}", "t.conf:1:15: unknown log format \"main\""},
        {"access_log off combined;\nserver {}",
         "t.conf:1:16: invalid parameter \"combined\" in \"access_log\""},
        {"server { root \"\"; }", "t.conf:1:15: invalid path \"\" in \"root\""},
        {"server { index a ''; }", "t.conf:1:18: invalid file name \"\" in \"index\""},
        {"types {\n  text/html;\n}\nserver {}", "t.conf:2:3: no extensions for type \"text/html\""},
        {"types {\n  text/html { }\n}\nserver {}",
         "t.conf:2:13: directive \"text/html\" is not terminated by \";\""},
        /* listen */
        {"server { listen localhost; }",
         "t.conf:1:17: no port in \"localhost\" of the \"listen\" directive"},
        {"server { listen [::1]; }",
         "t.conf:1:17: no port in \"[::1]\" of the \"listen\" directive"},
        {"server { listen 70000; }",
         "t.conf:1:17: invalid port in \"70000\" of the \"listen\" directive"},
        {"server { listen 1.2.3.4:; }",
         "t.conf:1:17: invalid port in \"1.2.3.4:\" of the \"listen\" directive"},
        {"server { listen 80x; }",
         "t.conf:1:17: invalid port in \"80x\" of the \"listen\" directive"},
        {"server { listen -1; }",
         "t.conf:1:17: invalid port in \"-1\" of the \"listen\" directive"},
        {"server { listen ::1:80; }", "t.conf:1:17: invalid address \"::1:80\" in \"listen\", "
                                      "write an IPv6 address in brackets"},
        {"server { listen :80; }", "t.conf:1:17: invalid address \":80\" in \"listen\""},
        {"server { listen []:80; }", "t.conf:1:17: invalid address \"[]:80\" in \"listen\""},
        {"server { listen [::1]80; }", "t.conf:1:17: invalid address \"[::1]80\" in \"listen\""},
        {"server { listen 80 http3; }", "t.conf:1:20: invalid parameter \"http3\" in \"listen\""},
        {"server { listen 80 backlog=x; }", "t.conf:1:20: invalid backlog \"x\" in \"listen\""},
        {"server { listen 80 backlog=-1; }", "t.conf:1:20: invalid backlog \"-1\" in \"listen\""},
        {"server { listen 80 notsent_lowat=0; }",
         "t.conf:1:20: invalid notsent_lowat \"0\" in \"listen\""},
        {"server { listen 80 notsent_lowat=4g; }",
         "t.conf:1:20: invalid notsent_lowat \"4g\" in \"listen\""},
        {"server { listen 80 notsent_lowat=; }",
         "t.conf:1:20: invalid notsent_lowat \"\" in \"listen\""},
        {"server { listen 8080 deferred; } server { listen 8080 notsent_lowat=1m; }",
         "t.conf:1:50: duplicate listen options for \"*:8080\""},
        {"server {\n  listen 80;\n  listen *:80;\n}", "t.conf:3:10: duplicate listen \"*:80\""},
        {"server { listen 80 default_server; }\nserver { listen *:80 default; }\n",
         "t.conf:2:17: a duplicate default server for \"*:80\""},
        {"server { listen 8080; } server { listen 8080 deferred; } server { listen 8080 backlog=5; "
         "}",
         "t.conf:1:74: duplicate listen options for \"*:8080\""},
        {"server { listen [::1]:80 default_server; }\n"
         "server { listen [::1]:80; }\n"
         "server { listen [::1]:80 default_server; }\n",
         "t.conf:3:17: a duplicate default server for \"[::1]:80\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pt_conf *c = (pt_conf *)&c;
        char err[512];
        int rc = pt_conf_parse_string(&c, cases[i].text, NAME, PREFIX, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d, \"%s\"\nwant \"%s\"\nin:\n%s", i, rc, err, cases[i].msg,
                     cases[i].text);
        assert_null(c);
    }
}

/* The error goes to the caller's buffer however small it is, or nowhere. */
static void test_error_buffer(void **state)
{
    pt_conf *c;
    char err[8];
    memset(err, 'x', sizeof err);
    assert_int_equal(pt_conf_parse_string(&c, "bogus;", NAME, PREFIX, err, sizeof err), -EINVAL);
    assert_string_equal(err, "t.conf:");
    assert_int_equal(pt_conf_parse_string(&c, "bogus;", NAME, PREFIX, NULL, 0), -EINVAL);
    assert_null(c);
    /* success leaves an empty message */
    char big[64] = "stale";
    assert_int_equal(pt_conf_parse_string(&c, "server {}", NAME, PREFIX, big, sizeof big), 0);
    assert_string_equal(big, "");
    pt_conf_free(c);
}

/* ---- TLS and return ---- */

static void test_ssl_defaults(void **state)
{
    pt_conf *c = parse("server {}");
    const pt_conf_ssl *top = &c->ssl, *s = &c->servers[0].ssl;
    const pt_conf_ssl *both[] = {top, s};
    for (int i = 0; i < 2; i++) {
        const pt_conf_ssl *x = both[i];
        assert_int_equal(x->ncerts, 0);
        assert_int_equal(x->nkeys, 0);
        assert_int_equal(x->min_version, 0x0303); /* TLS 1.2 */
        assert_int_equal(x->max_version, 0x0304); /* TLS 1.3 */
        assert_null(x->ciphers);
        assert_null(x->ciphersuites);
        assert_true(x->prefer_server_ciphers);
        assert_int_equal(x->session_cache, 20480);
        assert_true(x->session_timeout == 3600);
        assert_true(x->session_tickets);
        assert_true(x->handshake_timeout == PT_CONF_SSL_HANDSHAKE_TIMEOUT);
        assert_int_equal(x->max_handshakes, PT_CONF_SSL_MAX_HANDSHAKES);
    }
    assert_true(c->ssl_ticket_rotate == 3600);
    assert_false(c->servers[0].listens[0].ssl);
    assert_int_equal(c->servers[0].ret.code, 0);
    pt_conf_free(c);
}

static void test_ssl_directives(void **state)
{
    pt_conf *c = parse("ssl_certificate tls/top.crt;\n"
                       "ssl_certificate_key tls/top.key;\n"
                       "ssl_protocols TLSv1.3;\n"
                       "ssl_session_ticket_rotate 30m;\n"
                       "ssl_handshake_timeout 5s;\n"
                       "server {\n"
                       "    listen 443 ssl default_server;\n"
                       "}\n"
                       "server {\n"
                       "    listen 127.0.0.1:8443 ssl reuseport;\n"
                       "    ssl_certificate /etc/rsa.crt;\n"
                       "    ssl_certificate_key /etc/rsa.key;\n"
                       "    ssl_certificate  ecdsa.crt;\n"
                       "    ssl_certificate_key ecdsa.key;\n"
                       "    ssl_protocols TLSv1.2 TLSv1.3;\n"
                       "    ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384;\n"
                       "    ssl_ciphersuites TLS_AES_256_GCM_SHA384;\n"
                       "    ssl_prefer_server_ciphers off;\n"
                       "    ssl_session_cache shared:SSL:1m;\n"
                       "    ssl_session_timeout 10m;\n"
                       "    ssl_session_tickets off;\n"
                       "    ssl_handshake_timeout off;\n"
                       "    ssl_max_handshakes 50;\n"
                       "}\n");
    assert_true(c->ssl_ticket_rotate == 1800);
    /* the first server inherits the top level's pair and protocols */
    const pt_conf_server *a = &c->servers[0];
    assert_true(a->listens[0].ssl);
    assert_true(a->listens[0].default_server);
    assert_int_equal(a->ssl.ncerts, 1);
    assert_string_equal(a->ssl.certs[0], "/p/tls/top.crt");
    assert_string_equal(a->ssl.keys[0], "/p/tls/top.key");
    assert_string_equal(a->ssl.cert_file, NAME);
    assert_int_equal(a->ssl.cert_line, 1);
    assert_int_equal(a->ssl.min_version, 0x0304);
    assert_int_equal(a->ssl.max_version, 0x0304);
    assert_true(a->ssl.handshake_timeout == 5);
    /* the second replaces them with its own two pairs, in order */
    const pt_conf_server *b = &c->servers[1];
    assert_true(b->listens[0].ssl);
    assert_true(b->listens[0].reuseport);
    assert_int_equal(b->ssl.ncerts, 2);
    assert_int_equal(b->ssl.nkeys, 2);
    assert_string_equal(b->ssl.certs[0], "/etc/rsa.crt");
    assert_string_equal(b->ssl.keys[0], "/etc/rsa.key");
    assert_string_equal(b->ssl.certs[1], "/p/ecdsa.crt");
    assert_string_equal(b->ssl.keys[1], "/p/ecdsa.key");
    assert_int_equal(b->ssl.cert_line, 11);
    assert_int_equal(b->ssl.cert_col, 5);
    assert_int_equal(b->ssl.min_version, 0x0303);
    assert_int_equal(b->ssl.max_version, 0x0304);
    assert_string_equal(b->ssl.ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
    assert_string_equal(b->ssl.ciphersuites, "TLS_AES_256_GCM_SHA384");
    assert_false(b->ssl.prefer_server_ciphers);
    assert_int_equal(b->ssl.session_cache, (1 << 20) / PT_CONF_SSL_SESSION_BYTES);
    assert_true(b->ssl.session_timeout == 600);
    assert_false(b->ssl.session_tickets);
    assert_true(isinf(b->ssl.handshake_timeout));
    assert_int_equal(b->ssl.max_handshakes, 50);
    pt_conf_free(c);
}

static void test_ssl_session_cache_forms(void **state)
{
    static const struct {
        const char *arg;
        size_t sessions;
    } cases[] = {
        {"off", 0},
        {"none", 0},
        {"builtin", 20480},
        {"builtin:100", 100},
        {"shared:SSL:1m", 4096},
        {"shared:a:b:512k", 2048},
        {"builtin:10 shared:SSL:10m", 40960},
        {"shared:SSL:1k builtin:9", 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[128];
        snprintf(text, sizeof text, "ssl_session_cache %s;\nserver {}", cases[i].arg);
        pt_conf *c = parse(text);
        if (c->servers[0].ssl.session_cache != cases[i].sessions)
            fail_msg("%s: %zu sessions, want %zu", cases[i].arg, c->servers[0].ssl.session_cache,
                     cases[i].sessions);
        pt_conf_free(c);
    }
}

static void test_return(void **state)
{
    pt_conf *c =
        parse("server {\n"
              "    listen 80;\n"
              "    return 301 https://$host$request_uri;\n"
              "}\n"
              "server {\n"
              "    listen 81;\n"
              "    location /gone { return 410; }\n"
              "    location = /hello { return 200 \"hi from ${scheme}://$host$uri\\n\"; }\n"
              "    location /old { return https://example.com/new; }\n"
              "    location /new { return 301 /b${request_uri}; }\n"
              "    location /files { }\n"
              "}\n");
    const pt_conf_server *a = &c->servers[0], *b = &c->servers[1];
    assert_int_equal(a->ret.code, 301);
    assert_string_equal(a->ret.text, "https://$host$request_uri");
    assert_int_equal(b->ret.code, 0);
    assert_int_equal(b->nlocations, 5);
    assert_int_equal(b->locations[0].handler, PT_HANDLER_RETURN);
    assert_int_equal(b->locations[0].ret.code, 410);
    assert_null(b->locations[0].ret.text);
    assert_int_equal(b->locations[1].handler, PT_HANDLER_RETURN);
    assert_int_equal(b->locations[1].ret.code, 200);
    assert_string_equal(b->locations[1].ret.text, "hi from ${scheme}://$host$uri\n");
    assert_int_equal(b->locations[2].ret.code, 302); /* a bare URL redirects with 302 */
    assert_string_equal(b->locations[2].ret.text, "https://example.com/new");
    /* ${name} outside quotes: the braces are the variable's, not a block's */
    assert_int_equal(b->locations[3].ret.code, 301);
    assert_string_equal(b->locations[3].ret.text, "/b${request_uri}");
    assert_int_equal(b->locations[4].handler, PT_HANDLER_STATIC);
    assert_int_equal(b->locations[4].ret.code, 0);
    pt_conf_free(c);
}

static void test_ssl_and_return_errors(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"server { listen 80 ssl; }",
         "t.conf:1:17: no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive"},
        {"server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate b.crt;\n"
         "  ssl_certificate_key a.key;\n}\n",
         "t.conf:3:3: no \"ssl_certificate_key\" is defined for certificate \"/p/b.crt\""},
        {"server {\n  ssl_certificate_key a.key;\n}\n",
         "t.conf:1:1: \"ssl_certificate_key\" \"/p/a.key\" has no \"ssl_certificate\""},
        {"server {\n  listen 443 ssl;\n  ssl_certificate a.crt;\n  ssl_certificate_key a.key;\n}\n"
         "server {\n  listen *:443;\n  server_name b;\n}\n",
         "t.conf:7:10: no \"ssl_certificate\" is defined for this server, and \"*:443\" speaks "
         "TLS (\"ssl\" in t.conf:2)"},
        {"server { ssl_certificate \"\"; }",
         "t.conf:1:26: invalid path \"\" in \"ssl_certificate\""},
        {"server { ssl_certificate data:abc; }",
         "t.conf:1:26: \"ssl_certificate\" takes a file name"},
        {"ssl_protocols TLSv1.2 TLSv1.1;\nserver {}",
         "t.conf:1:23: protocol \"TLSv1.1\" is not safe and not supported in \"ssl_protocols\""},
        {"server { ssl_protocols SSLv3; }",
         "t.conf:1:24: protocol \"SSLv3\" is not safe and not supported in \"ssl_protocols\""},
        {"server { ssl_protocols TLSv9; }",
         "t.conf:1:24: unknown protocol \"TLSv9\" in \"ssl_protocols\""},
        {"server { ssl_ciphers NOTHING-REAL; }",
         "t.conf:1:22: invalid value \"NOTHING-REAL\" in \"ssl_ciphers\": no cipher matches"},
        {"server { ssl_ciphersuites TLS_FAKE; }",
         "t.conf:1:27: invalid value \"TLS_FAKE\" in \"ssl_ciphersuites\": no cipher suite "
         "recognised"},
        {"server { ssl_session_cache off builtin; }",
         "t.conf:1:28: \"off\" must be alone in \"ssl_session_cache\""},
        {"server { ssl_session_cache shared:SSL; }",
         "t.conf:1:28: invalid session cache \"shared:SSL\""},
        {"server { ssl_session_cache builtin:x; }",
         "t.conf:1:28: invalid session cache size \"builtin:x\""},
        {"server { ssl_session_timeout 0; }",
         "t.conf:1:30: invalid time \"0\" in \"ssl_session_timeout\""},
        {"server { ssl_session_ticket_rotate 1h; }",
         "t.conf:1:10: \"ssl_session_ticket_rotate\" directive is not allowed here"},
        {"ssl_session_ticket_rotate off;\nserver {}",
         "t.conf:1:27: invalid time \"off\" in \"ssl_session_ticket_rotate\""},
        {"server { ssl_max_handshakes 0; }",
         "t.conf:1:29: invalid value \"0\" in \"ssl_max_handshakes\""},
        {"server { ssl_session_tickets maybe; }",
         "t.conf:1:30: invalid value \"maybe\" in \"ssl_session_tickets\" directive, it must be "
         "\"on\" or \"off\""},
        {"return 404;\nserver {}", "t.conf:1:1: \"return\" directive is not allowed here"},
        {"server { return 99; }", "t.conf:1:17: invalid return code \"99\", it must be 200..599"},
        {"server { return /relative; }", "t.conf:1:17: invalid return code \"/relative\""},
        {"server { return 301 https://$foo/; }",
         "t.conf:1:21: unknown variable \"$foo\" in \"return\""},
        {"server { return 200 \"${host\"; }", "t.conf:1:21: invalid variable name in \"return\""},
        {"server { return 200 ${host; }", "t.conf:1:21: invalid variable name in \"return\""},
        {"server { return 302 \"/a b\"; }", "t.conf:1:21: invalid URL \"/a b\" in \"return\""},
        {"server { location / { status; return 200; } }",
         "t.conf:1:31: \"status\" and \"return\" in one location"},
        {"server { location / { return 200; status; } }",
         "t.conf:1:35: \"status\" and \"return\" in one location"},
        {"server { location / { metrics on; } }",
         "t.conf:1:23: invalid number of arguments in \"metrics\" directive"},
        {"server { metrics; }", "t.conf:1:10: \"metrics\" directive is not allowed here"},
        {"metrics;\nserver {}", "t.conf:1:1: \"metrics\" directive is not allowed here"},
        {"server { location / { metrics; status; } }",
         "t.conf:1:32: \"status\" and \"metrics\" in one location"},
        {"server { location / { status; metrics; } }",
         "t.conf:1:31: \"metrics\" and \"status\" in one location"},
        {"server { location / { metrics; return 200; } }",
         "t.conf:1:32: \"metrics\" and \"return\" in one location"},
        {"server { location / { return 200; metrics; } }",
         "t.conf:1:35: \"metrics\" and \"return\" in one location"},
        {"server { return 200 a b; }",
         "t.conf:1:10: invalid number of arguments in \"return\" directive"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pt_conf *c = (pt_conf *)&c;
        char err[512];
        int rc = pt_conf_parse_string(&c, cases[i].text, NAME, PREFIX, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d, \"%s\"\nwant \"%s\"\nin:\n%s", i, rc, err, cases[i].msg,
                     cases[i].text);
        assert_null(c);
    }
}

/* ---- files and includes, in a temporary directory ---- */

static char dir[PATH_MAX];

static int dir_setup(void **state)
{
    nothing_left_begin();
    snprintf(dir, sizeof dir, "%s/porter-conf-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int dir_teardown(void **state)
{
    int r = remove_tree(dir);
    assert_nothing_left(NULL);
    return r;
}

/* Writes `text` (of `len` bytes, or a string) to dir/rel, making directories on the way. */
static void put_n(const char *rel, const char *text, size_t len)
{
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void put(const char *rel, const char *text)
{
    put_n(rel, text, strlen(text));
}

/* Loads dir/rel and returns the rc; the message goes to err. */
static int load(pt_conf **c, const char *rel, char *err, size_t errlen)
{
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return pt_conf_load(c, path, PREFIX, err, errlen);
}

/* Asserts that loading dir/rel fails with `rc` and the message `fmt`, where each %s is dir. */
static void load_fails(const char *rel, int rc, const char *fmt)
{
    pt_conf *c = (pt_conf *)&c;
    char err[1024], want[1024];
    int fds = count_fds();
    snprintf(want, sizeof want, fmt, dir, dir, dir);
    assert_int_equal(load(&c, rel, err, sizeof err), rc);
    assert_string_equal(err, want);
    assert_null(c);
    assert_int_equal(count_fds(), fds);
}

static void test_missing_file(void **state)
{
    load_fails("nope.conf", -ENOENT, "%s/nope.conf: cannot open: No such file or directory");
    put("sub/x", "");
    load_fails("sub", -EISDIR, "%s/sub: cannot open: Is a directory");
}

static void test_include_missing(void **state)
{
    put("main.conf", "server {}\ninclude   missing.conf;\n");
    load_fails("main.conf", -ENOENT,
               "%s/main.conf:2:11: cannot open \"%s/missing.conf\": No such file or directory");
}

/* Includes are relative to the including file's directory, nest, and take globs. */
static void test_include_relative_and_glob(void **state)
{
    put("main.conf", "include sub/limits.conf;\n"
                     "http {\n"
                     "    include conf.d/*.conf;\n"
                     "    include empty.d/*.conf;   # matching nothing is fine\n"
                     "}\n");
    put("sub/limits.conf", "include more.conf;\n");
    put("sub/more.conf", "keepalive_requests 7;\n");
    put("conf.d/b.conf", "server { listen 2; }\n");
    put("conf.d/a.conf", "server { listen 1; }\n");
    put("conf.d/c.txt", "this is not a conf file\n");
    pt_conf *c;
    char err[512] = "";
    int fds = count_fds();
    assert_int_equal(load(&c, "main.conf", err, sizeof err), 0);
    assert_int_equal(c->limits.keepalive_requests, 7);
    assert_int_equal(c->nservers, 2);
    assert_string_equal(c->servers[0].listens[0].port, "1");
    assert_string_equal(c->servers[1].listens[0].port, "2");
    assert_int_equal(c->servers[1].limits.keepalive_requests, 7);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/conf.d/b.conf", dir);
    assert_string_equal(c->servers[1].file, want);
    assert_int_equal(c->nfiles, 5);
    snprintf(want, sizeof want, "%s/sub/more.conf", dir);
    assert_string_equal(c->files[2], want);
    pt_conf_free(c);
    assert_int_equal(count_fds(), fds);
}

/* A string's includes are relative to the directory of its name. */
static void test_include_from_string(void **state)
{
    put("servers.conf", "server { listen 9; }\n");
    char name[PATH_MAX + 64], err[512];
    snprintf(name, sizeof name, "%s/virtual.conf", dir);
    pt_conf *c;
    assert_int_equal(
        pt_conf_parse_string(&c, "include servers.conf;", name, PREFIX, err, sizeof err), 0);
    assert_string_equal(c->servers[0].listens[0].port, "9");
    pt_conf_free(c);
}

static void test_error_in_included_file(void **state)
{
    put("main.conf", "server {\n    include inc/body.conf;\n}\n");
    put("inc/body.conf", "listen 80;\n\n  bogus 1;\n");
    load_fails("main.conf", -EINVAL, "%s/inc/body.conf:3:3: unknown directive \"bogus\"");

    /* each file must be balanced by itself */
    put("inc/body.conf", "listen 80;\n}\n");
    load_fails("main.conf", -EINVAL, "%s/inc/body.conf:2:1: unexpected \"}\"");
    put("inc/body.conf", "listen 80");
    load_fails("main.conf", -EINVAL,
               "%s/inc/body.conf:1:10: unexpected end of file, expecting \";\" or \"}\"");
    put("inc/body.conf", "listen 80;\nserver_name \"x\n");
    load_fails("main.conf", -EINVAL, "%s/inc/body.conf:2:13: unterminated string");
    /* context is checked where the directive lands */
    put("main.conf", "include inc/body.conf;\nserver {}\n");
    put("inc/body.conf", "\n    listen 80;\n");
    load_fails("main.conf", -EINVAL,
               "%s/inc/body.conf:2:5: \"listen\" directive is not allowed here");
    put_n("inc/body.conf", "root /x;\nroot\0;", 14);
    load_fails("main.conf", -EINVAL, "%s/inc/body.conf:2:5: unexpected NUL byte");
}

/* A check (-t) goes on past errors: each is reported, in order, with its place. */
typedef struct reports {
    char msg[8][PATH_MAX + 256];
    int n;
} reports;

static void on_report(const char *msg, void *data)
{
    reports *r = data;
    if (r->n < 8)
        snprintf(r->msg[r->n], sizeof r->msg[0], "%s", msg);
    r->n++;
}

static void test_check_reports_every_error(void **state)
{
    put("main.conf", "worker_processes many;\n"
                     "server {\n"
                     "    listen 80;\n"
                     "    keepalive_timout 5s;\n"
                     "    location / {\n"
                     "        expires soon;\n"
                     "    }\n"
                     "    location nope { }\n"
                     "    location /b/ { proxy_buffering off; }\n"
                     "}\n"
                     "include inc.conf;\n");
    put("inc.conf", "server {\n    listen 81 bogus;\n    root /x;\n}\n");
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/main.conf", dir);
    reports r = {0};
    pt_conf *c = NULL;
    assert_int_equal(pt_conf_check(&c, path, PREFIX, on_report, &r), -EINVAL);
    assert_int_equal(r.n, 6);
    char want[6][PATH_MAX + 256];
    snprintf(want[0], sizeof want[0],
             "%s/main.conf:1:18: invalid value \"many\" in \"worker_processes\", it must be "
             "1..1024 or \"auto\"",
             dir);
    snprintf(want[1], sizeof want[1],
             "%s/main.conf:4:5: unknown directive \"keepalive_timout\", did you mean "
             "\"keepalive_timeout\"?",
             dir);
    snprintf(want[2], sizeof want[2], "%s/main.conf:6:17: invalid value \"soon\" in \"expires\"",
             dir);
    snprintf(want[3], sizeof want[3],
             "%s/main.conf:8:14: invalid location path \"nope\", it must start with \"/\"", dir);
    snprintf(want[4], sizeof want[4],
             "%s/main.conf:9:20: \"proxy_buffering\" directive is not supported by porter; see "
             "docs/nginx.md",
             dir);
    snprintf(want[5], sizeof want[5], "%s/inc.conf:2:15: invalid parameter \"bogus\" in \"listen\"",
             dir);
    for (int i = 0; i < 6; i++)
        assert_string_equal(r.msg[i], want[i]);
    /* what was read is there to check files in: the second server's root */
    assert_non_null(c);
    assert_int_equal(c->nservers, 2);
    assert_string_equal(c->servers[1].root, "/x");
    assert_int_equal(c->servers[0].nlocations, 2); /* the one with a bad path is left out */
    pt_conf_free(c);

    /* a load says the first */
    char err[512];
    assert_int_equal(load(&c, "main.conf", err, sizeof err), -EINVAL);
    assert_string_equal(err, want[0]);
    assert_null(c);

    /* a syntax error ends the reading: it is the only one, and nothing is kept */
    put("inc.conf", "server {\n    listen 81 bogus;\n");
    r.n = 0;
    c = (pt_conf *)&c;
    assert_int_equal(pt_conf_check(&c, path, PREFIX, on_report, &r), -EINVAL);
    assert_int_equal(r.n, 1);
    assert_null(c);

    /* a valid conf reports nothing */
    put("main.conf", "server { listen 80; }\n");
    r.n = 0;
    assert_int_equal(pt_conf_check(&c, path, PREFIX, on_report, &r), 0);
    assert_int_equal(r.n, 0);
    pt_conf_free(c);
}

/* An unknown name near one of porter's is answered with it; one of nginx's that porter lacks
 * says so; a listen on a UNIX-domain socket says porter has none. */
static void test_unknown_directive_messages(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"server { sever_name a; }",
         "t.conf:1:10: unknown directive \"sever_name\", did you mean \"server_name\"?"},
        {"server { server_nmae a; }",
         "t.conf:1:10: unknown directive \"server_nmae\", did you mean \"server_name\"?"},
        {"sendfil on;\nserver {}", "t.conf:1:1: unknown directive \"sendfil\", did you mean "
                                   "\"sendfile\"?"},
        {"server { roo /x; }", "t.conf:1:10: unknown directive \"roo\", did you mean \"root\"?"},
        {"server { fo /x; }", "t.conf:1:10: unknown directive \"fo\""},
        {"server { completely_unknown 1; }",
         "t.conf:1:10: unknown directive \"completely_unknown\""},
        {"worker_rlimit_nofile 1024;\nserver {}",
         "t.conf:1:1: \"worker_rlimit_nofile\" directive is not supported by porter; see "
         "docs/nginx.md"},
        {"server { location / { uninitialized_variable_warn off; } }",
         "t.conf:1:23: \"uninitialized_variable_warn\" directive is not supported by porter; see "
         "docs/nginx.md"},
        {"server { listen unix:/run/porter.sock; }",
         "t.conf:1:17: \"listen unix:/run/porter.sock\": porter listens on TCP addresses only, "
         "not on UNIX-domain sockets"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pt_conf *c = (pt_conf *)&c;
        char err[512];
        int rc = pt_conf_parse_string(&c, cases[i].text, NAME, PREFIX, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d, \"%s\"\nwant \"%s\"", i, rc, err, cases[i].msg);
        assert_null(c);
    }
}

/* Where each level's root was written, for messages about a directory that is missing. */
static void test_root_places(void **state)
{
    pt_conf *c = parse("root /top;\n"
                       "server {\n"
                       "    location /a/ { }\n"
                       "}\n"
                       "server {\n"
                       "    root /s;\n"
                       "    location /b/ {\n"
                       "      alias /b/;\n"
                       "    }\n"
                       "    location /c/ { root /c; }\n"
                       "}\n");
    assert_int_equal(c->root_at.line, 1);
    assert_int_equal(c->servers[0].root_at.line, 1); /* inherited from the top level */
    assert_int_equal(c->servers[0].locations[0].root_at.line, 1);
    assert_int_equal(c->servers[1].root_at.line, 6);
    assert_int_equal(c->servers[1].root_at.col, 5);
    assert_int_equal(c->servers[1].locations[0].root_at.line, 8);
    assert_int_equal(c->servers[1].locations[0].root_at.col, 7);
    assert_int_equal(c->servers[1].locations[1].root_at.line, 10);
    assert_int_equal(c->servers[1].locations[1].root_at.col, 20);
    assert_string_equal(c->servers[1].locations[1].root_at.file, NAME);
    pt_conf_free(c);
    c = parse("server { }");
    assert_null(c->servers[0].root_at.file); /* the default root was written nowhere */
    pt_conf_free(c);
}

/* `user USER [GROUP]`: main context only; resolved when read by root. */
static void test_user(void **state)
{
    pt_conf *c = parse("server {}");
    assert_null(c->user);
    assert_int_equal(c->user_uid, (uid_t)-1);
    pt_conf_free(c);
    c = parse("user root;\nserver {}");
    assert_string_equal(c->user, "root");
    assert_string_equal(c->group, "root");
    if (geteuid() == 0) {
        assert_int_equal(c->user_uid, 0);
        assert_int_equal(c->user_gid, 0);
    } else {
        assert_int_equal(c->user_uid, (uid_t)-1);
    }
    pt_conf_free(c);
    c = parse("user root daemon;\nserver {}");
    assert_string_equal(c->group, "daemon");
    pt_conf_free(c);

    char err[512];
    assert_int_equal(
        pt_conf_parse_string(&c, "server { user root; }", NAME, PREFIX, err, sizeof err), -EINVAL);
    assert_string_equal(err, "t.conf:1:10: \"user\" directive is not allowed here");
    if (geteuid() != 0)
        return;
    assert_int_equal(
        pt_conf_parse_string(&c, "user no-such-user-x;\nserver {}", NAME, PREFIX, err, sizeof err),
        -EINVAL);
    assert_string_equal(err, "t.conf:1:6: unknown user \"no-such-user-x\" in \"user\"");
    assert_int_equal(pt_conf_parse_string(&c, "user root no-such-group-x;\nserver {}", NAME, PREFIX,
                                          err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "t.conf:1:11: unknown group \"no-such-group-x\" in \"user\"");
}

static void test_include_cycle(void **state)
{
    put("a.conf", "server {}\ninclude b.conf;\n");
    put("b.conf", "\ninclude a.conf;\n");
    load_fails("a.conf", -ELOOP,
               "%s/b.conf:2:9: include cycle: \"%s/a.conf\" is already being read");
    put("g/self.conf", "server {}\ninclude *.conf;\n");
    load_fails("g/self.conf", -ELOOP,
               "%s/g/self.conf:2:9: include cycle: \"%s/g/self.conf\" is already being read");
    put("self.conf", "server {}\ninclude self.conf;\n");
    load_fails("self.conf", -ELOOP,
               "%s/self.conf:2:9: include cycle: \"%s/self.conf\" is already being read");
}

/* A chain of includes may be PT_CONF_INCLUDE_DEPTH deep below the main file, no deeper. */
static void test_include_depth(void **state)
{
    char name[32], text[64];
    for (int i = 0; i <= PT_CONF_INCLUDE_DEPTH + 1; i++) {
        snprintf(name, sizeof name, "f%d.conf", i);
        snprintf(text, sizeof text, "include f%d.conf;\n", i + 1);
        put(name, text);
    }
    snprintf(name, sizeof name, "f%d.conf", PT_CONF_INCLUDE_DEPTH);
    put(name, "server {}\n");
    pt_conf *c;
    char err[512];
    assert_int_equal(load(&c, "f0.conf", err, sizeof err), 0);
    assert_int_equal(c->nfiles, PT_CONF_INCLUDE_DEPTH + 1);
    pt_conf_free(c);

    snprintf(text, sizeof text, "include f%d.conf;\n", PT_CONF_INCLUDE_DEPTH + 1);
    put(name, text);
    snprintf(name, sizeof name, "f%d.conf", PT_CONF_INCLUDE_DEPTH + 1);
    put(name, "server {}\n");
    load_fails("f0.conf", -ELOOP, "%s/f16.conf:1:9: includes nested too deeply (more than 16)");
}

/* The fixture an nginx user would write: http wrapper, events, mime.types, sites/ glob. */
static void test_nginx_style_fixture(void **state)
{
    pt_conf *c;
    char err[512];
    int fds = count_fds();
    int rc = pt_conf_load(&c, PORTER_SOURCE_DIR "/tests/unit/conf/porter.conf", "/srv/porter", err,
                          sizeof err);
    if (rc != 0)
        fail_msg("rc %d: %s", rc, err);
    assert_int_equal(c->worker_processes, 0);
    assert_string_equal(c->pid_path, "/srv/porter/run/porter.pid");
    assert_string_equal(c->error_log, "/srv/porter/logs/error.log");
    assert_int_equal(c->error_log_level, PT_LOG_WARN);
    assert_int_equal(c->limits.max_concurrent, 4096);
    assert_int_equal(c->nfiles, 4);
    assert_int_equal(c->nservers, 2);

    const pt_conf_server *a = &c->servers[0], *b = &c->servers[1];
    assert_string_equal(a->listens[0].host, "127.0.0.1");
    assert_string_equal(a->listens[0].port, "8081");
    assert_true(a->listens[0].default_server);
    assert_string_equal(a->names[0], "a.example.org");
    assert_string_equal(a->root, "/srv/porter/sites/a");
    assert_int_equal(a->naccess_logs, 1);
    assert_string_equal(a->access_logs[0].path, "/srv/porter/logs/access.log");
    assert_int_equal(a->error_log_level, PT_LOG_WARN);
    assert_false(a->server_tokens);
    assert_int_equal(a->limits.max_request_body_length, 16 << 20);
    assert_true(a->limits.keepalive_timeout == 65);
    assert_int_equal(a->ntypes, 5);
    assert_string_equal(a->types[4].ext, "png");
    assert_true(strstr(a->file, "/tests/unit/conf/sites/a.conf") != NULL);

    assert_string_equal(b->listens[0].host, "::1");
    assert_string_equal(b->root, "/srv/porter/htdocs");
    assert_true(isinf(b->limits.keepalive_timeout));
    assert_int_equal(b->ntypes, 1);
    assert_string_equal(b->types[0].type, "text/plain");
    pt_conf_free(c);
    assert_int_equal(count_fds(), fds);
}

/* Locations: match and path, what each inherits from its server wherever the server's
 * directives are written, and what it sets itself. */
static void test_locations(void **state)
{
    pt_conf *c =
        parse("add_header X-Top 1;\n"
              "error_page 404 /404.html;\n"
              "server {\n"
              "    location /static/ {\n"
              "        expires 30d;\n"
              "        add_header Cache-Control public always;\n"
              "    }\n"
              "    location = / { index home.html; }\n"
              "    location ^~ /img { alias pictures/; sendfile off; }\n"
              "    location =/porter-status { status; }\n"
              "    location /spa/ { try_files $uri $uri/ /spa/index.html; autoindex on; }\n"
              "    location = /metrics { metrics; }\n"
              "    root site;\n"
              "    index a.html b.html;\n"
              "    try_files $uri =404;\n"
              "    precompressed on;\n"
              "}\n");
    const pt_conf_server *s = &c->servers[0];
    assert_int_equal(s->nlocations, 6);
    const pt_conf_location *st = &s->locations[0], *ex = &s->locations[1], *img = &s->locations[2],
                           *stat = &s->locations[3], *spa = &s->locations[4],
                           *metrics = &s->locations[5];
    assert_string_equal(st->path, "/static/");
    assert_int_equal(st->match, PT_MATCH_PREFIX);
    assert_int_equal(st->handler, PT_HANDLER_STATIC);
    assert_string_equal(st->root, "/p/site"); /* written after the block */
    assert_null(st->alias);
    assert_int_equal(st->nindex, 2);
    assert_string_equal(st->index[1], "b.html");
    assert_true(st->sendfile);
    assert_int_equal(st->line, 4);
    assert_int_equal(st->col, 5);
    assert_int_equal(st->static_files.expires_kind, PT_EXPIRES_ACCESS);
    assert_true(st->static_files.expires == 30 * 86400);
    /* its own add_header replaces the inherited ones; error_page is inherited */
    assert_int_equal(st->static_files.nheaders, 1);
    assert_string_equal(st->static_files.headers[0].name, "Cache-Control");
    assert_string_equal(st->static_files.headers[0].value, "public");
    assert_true(st->static_files.headers[0].always);
    assert_int_equal(st->static_files.nerror_pages, 1);
    assert_string_equal(st->static_files.error_pages[0].uri, "/404.html");
    assert_true(st->static_files.precompressed);
    /* try_files is not inherited */
    assert_int_equal(st->static_files.ntry_files, 0);

    assert_string_equal(ex->path, "/");
    assert_int_equal(ex->match, PT_MATCH_EXACT);
    assert_int_equal(ex->nindex, 1);
    assert_string_equal(ex->index[0], "home.html");
    assert_int_equal(ex->static_files.nheaders, 1);
    assert_string_equal(ex->static_files.headers[0].name, "X-Top");
    assert_false(ex->static_files.headers[0].always);

    assert_string_equal(img->path, "/img");
    assert_int_equal(img->match, PT_MATCH_PREFIX);
    assert_string_equal(img->alias, "/p/pictures");
    assert_false(img->sendfile);

    assert_string_equal(stat->path, "/porter-status");
    assert_int_equal(stat->match, PT_MATCH_EXACT);
    assert_int_equal(stat->handler, PT_HANDLER_STATUS);
    assert_string_equal(metrics->path, "/metrics");
    assert_int_equal(metrics->handler, PT_HANDLER_METRICS);

    assert_int_equal(spa->static_files.ntry_files, 3);
    assert_string_equal(spa->static_files.try_files[0], "$uri");
    assert_string_equal(spa->static_files.try_files[2], "/spa/index.html");
    assert_true(spa->static_files.autoindex);

    /* the server keeps its own */
    assert_int_equal(s->static_files.ntry_files, 2);
    assert_string_equal(s->static_files.try_files[1], "=404");
    assert_false(s->static_files.autoindex);
    assert_int_equal(s->static_files.nheaders, 1);
    pt_conf_free(c);
}

/* A nested location starts from the location holding it (written before or after its block),
 * as nginx merges a location from its parent: root or alias, index, add_header, internal,
 * regex_match_limit; not its handler or try_files. The locations of a server are one array, each
 * location followed by those it holds. */
static void test_nested_locations(void **state)
{
    pt_conf *c = parse("regex_match_limit 5000;\n"
                       "server {\n"
                       "    location /a/ {\n"
                       "        location /a/b/ {\n"
                       "            location ~ \\.txt$ { add_header X-T t; }\n"
                       "        }\n"
                       "        location /a/c/ { root other; }\n"
                       "        alias pictures/;\n"
                       "        index i.html;\n"
                       "        add_header X-A a;\n"
                       "        internal;\n"
                       "        regex_match_limit 700;\n"
                       "        try_files $uri =404;\n"
                       "        return 403;\n"
                       "    }\n"
                       "    location /z/ { }\n"
                       "}\n");
    const pt_conf_server *s = &c->servers[0];
    assert_int_equal(c->regex_match_limit, 5000);
    assert_int_equal(s->regex_match_limit, 5000);
    assert_int_equal(s->nlocations, 5);
    /* each location is followed by those it holds */
    const pt_conf_location *a = &s->locations[0], *b = &s->locations[1], *t = &s->locations[2],
                           *cc = &s->locations[3], *z = &s->locations[4];
    assert_string_equal(a->path, "/a/");
    assert_int_equal(a->parent, PT_CONF_NO_PARENT);
    assert_string_equal(b->path, "/a/b/");
    assert_int_equal(b->parent, 0);
    assert_string_equal(t->path, "\\.txt$");
    assert_int_equal(t->parent, 1);
    assert_int_equal(t->match, PT_MATCH_REGEX);
    assert_string_equal(cc->path, "/a/c/");
    assert_int_equal(cc->parent, 0);
    assert_string_equal(z->path, "/z/");
    assert_int_equal(z->parent, PT_CONF_NO_PARENT);
    assert_null(z->alias);
    assert_int_equal(z->regex_match_limit, 5000);
    /* from /a/, whose directives follow the blocks */
    assert_string_equal(b->alias, "/p/pictures");
    assert_string_equal(b->alias_of, "/a/");
    assert_string_equal(t->alias, "/p/pictures");
    assert_string_equal(t->alias_of, "/a/");
    assert_int_equal(b->nindex, 1);
    assert_string_equal(b->index[0], "i.html");
    assert_int_equal(b->static_files.nheaders, 1);
    assert_string_equal(b->static_files.headers[0].name, "X-A");
    assert_string_equal(t->static_files.headers[0].name, "X-T"); /* its own replaces them */
    assert_true(b->internal);
    assert_true(t->internal);
    assert_int_equal(a->regex_match_limit, 700);
    assert_int_equal(b->regex_match_limit, 700);
    assert_int_equal(t->regex_match_limit, 700);
    /* not inherited */
    assert_int_equal(a->handler, PT_HANDLER_RETURN);
    assert_int_equal(b->handler, PT_HANDLER_STATIC);
    assert_int_equal(a->static_files.ntry_files, 2);
    assert_int_equal(b->static_files.ntry_files, 0);
    /* a root replaces the alias inherited */
    assert_null(cc->alias);
    assert_null(cc->alias_of);
    assert_string_equal(cc->root, "/p/other");
    pt_conf_free(c);
}

static void test_static_directives(void **state)
{
    pt_conf *c = parse("autoindex on;\n"
                       "autoindex_format json;\n"
                       "autoindex_exact_size off;\n"
                       "autoindex_localtime on;\n"
                       "expires epoch;\n"
                       "add_header X-A \"a b\";\n"
                       "add_header X-B '' always;\n"
                       "error_page 500 502 503 504 /50x.html;\n"
                       "error_page 404 =200 /empty.gif;\n"
                       "error_page 403 = /forbidden;\n"
                       "error_page 410 =301 https://example.com/gone?x=1;\n"
                       "precompressed on;\n"
                       "max_ranges 1;\n"
                       "etag off;\n"
                       "file_cache_size 1m;\n"
                       "file_cache_max_file 64k;\n"
                       "open_file_cache_valid 0;\n"
                       "open_file_cache max=10 inactive=20s;\n"
                       "server { expires max; }\n"
                       "server { expires -1h; max_ranges 0; }\n"
                       "server { expires modified 1d; error_page 404 /nf.html; }\n"
                       "server { expires access 0; add_header X-C c; }\n"
                       "server { expires off; }\n");
    const pt_conf_files *t = &c->static_files;
    assert_true(t->autoindex);
    assert_int_equal(t->autoindex_format, PT_AUTOINDEX_JSON);
    assert_false(t->autoindex_exact_size);
    assert_true(t->autoindex_localtime);
    assert_int_equal(t->expires_kind, PT_EXPIRES_EPOCH);
    assert_int_equal(t->nheaders, 2);
    assert_string_equal(t->headers[0].value, "a b");
    assert_false(t->headers[0].always);
    assert_string_equal(t->headers[1].value, "");
    assert_true(t->headers[1].always);
    assert_int_equal(t->nerror_pages, 7);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(t->error_pages[i].status, 500 + (i ? i + 1 : 0));
        assert_int_equal(t->error_pages[i].response, 0);
        assert_string_equal(t->error_pages[i].uri, "/50x.html");
    }
    assert_int_equal(t->error_pages[4].status, 404);
    assert_int_equal(t->error_pages[4].response, 200);
    assert_int_equal(t->error_pages[5].status, 403);
    assert_int_equal(t->error_pages[5].response, -1);
    assert_int_equal(t->error_pages[6].response, 301);
    assert_string_equal(t->error_pages[6].uri, "https://example.com/gone?x=1");
    assert_true(t->precompressed);
    assert_int_equal(t->max_ranges, 1);
    assert_false(t->etag);
    assert_int_equal(c->file_cache_size, 1 << 20);
    assert_int_equal(c->file_cache_max_file, 64 << 10);
    assert_true(c->file_cache_valid == 0);
    assert_int_equal(c->open_file_cache_max, 10);
    assert_true(c->open_file_cache_inactive == 20);

    const pt_conf_server *s = c->servers;
    assert_int_equal(s[0].static_files.expires_kind, PT_EXPIRES_MAX);
    assert_true(s[0].static_files.autoindex); /* inherited */
    assert_int_equal(s[0].static_files.nerror_pages, 7);
    assert_int_equal(s[1].static_files.expires_kind, PT_EXPIRES_ACCESS);
    assert_true(s[1].static_files.expires == -3600);
    assert_int_equal(s[1].static_files.max_ranges, 0);
    assert_int_equal(s[2].static_files.expires_kind, PT_EXPIRES_MODIFIED);
    assert_true(s[2].static_files.expires == 86400);
    assert_int_equal(s[2].static_files.nerror_pages, 1);
    assert_int_equal(s[3].static_files.expires_kind, PT_EXPIRES_ACCESS);
    assert_true(s[3].static_files.expires == 0);
    assert_int_equal(s[3].static_files.nheaders, 1);
    assert_int_equal(s[4].static_files.expires_kind, PT_EXPIRES_OFF);
    pt_conf_free(c);

    /* add_header lines are bounded per level, so a response head always fits */
    char big[9000], err[256];
    snprintf(big, sizeof big,
             "add_header X-Big \"%4000d\";\nadd_header X-More \"%70d\";\n"
             "server { add_header X-Own \"%4000d\"; }",
             1, 2, 3);
    assert_int_equal(pt_conf_parse_string(&c, big, NAME, PREFIX, err, sizeof err), 0);
    pt_conf_free(c);
    snprintf(big, sizeof big,
             "add_header X-Big \"%4000d\";\nadd_header X-More \"%90d\";\n"
             "server {}",
             1, 2);
    assert_int_equal(pt_conf_parse_string(&c, big, NAME, PREFIX, err, sizeof err), -EINVAL);
    assert_string_equal(err,
                        "t.conf:2:1: the \"add_header\" lines of this level exceed 4096 bytes");

    c = parse("open_file_cache off;\nfile_cache_size off;\nserver {}");
    assert_int_equal(c->open_file_cache_max, 0);
    assert_int_equal(c->file_cache_size, 0);
    pt_conf_free(c);
}

/* ---- the reverse proxy ---- */

static void test_proxy_defaults_and_directives(void **state)
{
    pt_conf *c =
        parse("proxy_read_timeout 30s;\n"
              "proxy_set_header X-Top top; proxy_hide_header X-Powered-By;\n"
              "upstream app {\n"
              "  server 127.0.0.1:8081 weight=3 max_fails=2 fail_timeout=5s;\n"
              "  server [::1]:8082;\n"
              "  server backend.internal;\n"
              "  server unix:/run/app.sock;\n"
              "  keepalive 8; keepalive_timeout 2s; keepalive_requests 50;\n"
              "}\n"
              "upstream other { server 10.0.0.1:1; }\n"
              "server {\n"
              "  proxy_connect_timeout 2s;\n"
              "  location /api/ {\n"
              "    proxy_pass http://app/v1/;\n"
              "    proxy_set_header Host $host;\n"
              "    proxy_set_header X-Real-IP \"$remote_addr\";\n"
              "    proxy_send_timeout off;\n"
              "    proxy_ssl_verify off; proxy_ssl_server_name off;\n"
              "    proxy_ssl_trusted_certificate ca.pem;\n"
              "    proxy_hide_header X-A; proxy_hide_header x-a; proxy_pass_header Server;\n"
              "    proxy_redirect off; proxy_redirect http://a/ /b/;\n"
              "    proxy_next_upstream error http_500 http_404 http_429 invalid_header\n"
              "                        non_idempotent;\n"
              "    proxy_next_upstream_tries 3; proxy_next_upstream_timeout 5s;\n"
              "  }\n"
              "  location /direct { proxy_pass https://127.0.0.1:8443; }\n"
              "  location /static { }\n"
              "}\n");
    assert_int_equal(c->nupstreams, 2);
    const pt_conf_upstream *u = &c->upstreams[0];
    assert_string_equal(u->name, "app");
    assert_int_equal(u->nservers, 4);
    assert_string_equal(u->servers[0].address, "127.0.0.1:8081");
    assert_int_equal(u->servers[0].weight, 3);
    assert_int_equal(u->servers[0].max_fails, 2);
    assert_true(u->servers[0].fail_timeout == 5.0);
    assert_int_equal(u->servers[1].weight, 1);
    assert_int_equal(u->servers[1].max_fails, 1);
    assert_true(u->servers[1].fail_timeout == PT_CONF_UPSTREAM_FAIL_TIMEOUT);
    assert_int_equal(u->servers[0].line, 4);
    assert_int_equal(u->servers[0].col, 3);
    assert_int_equal(u->keepalive, 8);
    assert_true(u->keepalive_timeout == 2.0);
    assert_int_equal(u->keepalive_requests, 50);
    assert_int_equal(c->upstreams[1].keepalive, PT_CONF_UPSTREAM_KEEPALIVE);
    assert_true(c->upstreams[1].keepalive_timeout == PT_CONF_UPSTREAM_KEEPALIVE_TIMEOUT);

    const pt_conf_server *s = &c->servers[0];
    const pt_conf_location *api = &s->locations[0], *direct = &s->locations[1];
    const pt_conf_location *st = &s->locations[2];
    assert_int_equal(api->handler, PT_HANDLER_PROXY);
    assert_string_equal(api->proxy.pass, "http://app/v1/");
    assert_int_equal(api->proxy.pass_line, 14);
    assert_int_equal(api->proxy.pass_col, 16);
    /* proxy_set_header at the location replaces the inherited list */
    assert_int_equal(api->proxy.nset_headers, 2);
    assert_string_equal(api->proxy.set_headers[0].name, "Host");
    assert_string_equal(api->proxy.set_headers[1].value, "$remote_addr");
    assert_true(api->proxy.read_timeout == 30.0);   /* from the top level */
    assert_true(api->proxy.connect_timeout == 2.0); /* from the server */
    assert_true(isinf(api->proxy.send_timeout));    /* off */
    assert_false(api->proxy.ssl_verify);
    assert_false(api->proxy.ssl_server_name);
    assert_string_equal(api->proxy.ssl_trusted_certificate, "/p/ca.pem");
    assert_int_equal(direct->handler, PT_HANDLER_PROXY);
    assert_true(direct->proxy.ssl_verify); /* on by default */
    assert_true(direct->proxy.ssl_server_name);
    assert_null(direct->proxy.ssl_trusted_certificate);
    assert_true(direct->proxy.send_timeout == PT_CONF_PROXY_TIMEOUT);
    assert_int_equal(direct->proxy.nset_headers, 1); /* inherited from the top level */
    assert_string_equal(direct->proxy.set_headers[0].name, "X-Top");
    /* proxy_hide_header: inherited, replaced by a level's own list, lower case, once each */
    assert_int_equal(direct->proxy.nhide_headers, 1);
    assert_string_equal(direct->proxy.hide_headers[0], "x-powered-by");
    assert_int_equal(direct->proxy.npass_headers, 0);
    assert_int_equal(api->proxy.nhide_headers, 1);
    assert_string_equal(api->proxy.hide_headers[0], "x-a");
    assert_int_equal(api->proxy.npass_headers, 1);
    assert_string_equal(api->proxy.pass_headers[0], "server");
    assert_int_equal(direct->proxy.next_upstream, PT_NEXT_ERROR | PT_NEXT_TIMEOUT);
    assert_int_equal(direct->proxy.next_upstream_tries, 0); /* no bound */
    assert_true(isinf(direct->proxy.next_upstream_timeout));
    assert_int_equal(api->proxy.next_upstream, PT_NEXT_ERROR | PT_NEXT_HTTP_500 | PT_NEXT_HTTP_404 |
                                                   PT_NEXT_HTTP_429 | PT_NEXT_INVALID_HEADER |
                                                   PT_NEXT_NON_IDEMPOTENT);
    assert_int_equal(api->proxy.next_upstream_tries, 3);
    assert_true(api->proxy.next_upstream_timeout == 5.0);
    /* proxy_redirect: `default` unless a level says otherwise */
    assert_int_equal(direct->proxy.nredirects, 1);
    assert_null(direct->proxy.redirects[0].name);
    assert_int_equal(api->proxy.nredirects, 1);
    assert_string_equal(api->proxy.redirects[0].name, "http://a/");
    assert_string_equal(api->proxy.redirects[0].value, "/b/");
    assert_int_equal(st->handler, PT_HANDLER_STATIC);
    assert_null(st->proxy.pass);
    pt_conf_free(c);

    /* balancing methods and the servers' flags */
    c = parse(
        "upstream rr { server 127.0.0.1:1 max_conns=10 slow_start=30s; server a.b:2 backup "
        "down resolve; queue 20 timeout=5s; zone rr 64k; }\n"
        "upstream lc { least_conn; server 127.0.0.1:1; }\n"
        "upstream ih { ip_hash; server 127.0.0.1:1; }\n"
        "upstream hc { hash $uri$arg_id consistent; server 127.0.0.1:1; }\n"
        "upstream hp { hash \"$http_x_user\"; server 127.0.0.1:1; }\n"
        "upstream r2 { random two least_conn; server 127.0.0.1:1; }\n"
        "upstream r1 { random; server 127.0.0.1:1;\n"
        "  health_check interval=2s fails=3 passes=2 uri=/ping?x=1 port=8080; }\n"
        "upstream hd { server 127.0.0.1:1; health_check interval=1s; resolver_interval 7s; }\n"
        "server { }\n");
    assert_int_equal(c->nupstreams, 8);
    const pt_conf_upstream *rr = &c->upstreams[0];
    assert_int_equal(rr->balance, PT_BALANCE_ROUND_ROBIN);
    assert_int_equal(rr->servers[0].max_conns, 10);
    assert_true(rr->servers[0].slow_start == 30.0);
    assert_false(rr->servers[0].backup || rr->servers[0].down || rr->servers[0].resolve);
    assert_true(rr->servers[1].backup && rr->servers[1].down && rr->servers[1].resolve);
    assert_true(rr->resolver_interval == PT_CONF_UPSTREAM_RESOLVER_INTERVAL);
    assert_int_equal(rr->servers[1].max_conns, 0);
    assert_int_equal(rr->queue, 20);
    assert_false(rr->health.on);
    assert_true(rr->queue_timeout == 5.0);
    assert_int_equal(c->upstreams[1].balance, PT_BALANCE_LEAST_CONN);
    assert_int_equal(c->upstreams[1].queue, 0);
    assert_true(c->upstreams[1].queue_timeout == PT_CONF_UPSTREAM_QUEUE_TIMEOUT);
    assert_int_equal(c->upstreams[2].balance, PT_BALANCE_IP_HASH);
    assert_int_equal(c->upstreams[3].balance, PT_BALANCE_HASH);
    assert_string_equal(c->upstreams[3].hash_key, "$uri$arg_id");
    assert_true(c->upstreams[3].hash_consistent);
    assert_string_equal(c->upstreams[4].hash_key, "$http_x_user");
    assert_false(c->upstreams[4].hash_consistent);
    assert_int_equal(c->upstreams[5].balance, PT_BALANCE_RANDOM);
    assert_true(c->upstreams[5].random_two);
    const pt_conf_upstream *r1 = &c->upstreams[6];
    assert_false(r1->random_two);
    assert_true(r1->health.on);
    assert_true(r1->health.interval == 2.0);
    assert_true(r1->health.timeout == 2.0); /* no longer than the interval */
    assert_int_equal(r1->health.fails, 3);
    assert_int_equal(r1->health.passes, 2);
    assert_string_equal(r1->health.uri, "/ping?x=1");
    assert_int_equal(r1->health.port, 8080);
    const pt_conf_upstream *hd = &c->upstreams[7];
    assert_true(hd->health.interval == 1.0);
    assert_true(hd->health.timeout == 1.0);
    assert_int_equal(hd->health.fails, 1);
    assert_int_equal(hd->health.passes, 1);
    assert_string_equal(hd->health.uri, "/");
    assert_int_equal(hd->health.port, 0);
    assert_true(hd->resolver_interval == 7.0);
    pt_conf_free(c);
    c = parse("upstream d { server 127.0.0.1:1; health_check; }\nserver { }\n");
    assert_true(c->upstreams[0].health.interval == PT_CONF_HEALTH_INTERVAL);
    assert_true(c->upstreams[0].health.timeout == PT_CONF_HEALTH_TIMEOUT);
    pt_conf_free(c);

    /* upstream blocks inside http { }, after the servers that use them */
    c = parse("http {\n  server { location / { proxy_pass http://late; } }\n"
              "  upstream late { server 127.0.0.1:1; }\n}\n");
    assert_int_equal(c->servers[0].locations[0].handler, PT_HANDLER_PROXY);
    pt_conf_free(c);
}

static void test_proxy_errors(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"upstream a { }\nserver {}", "t.conf:1:10: no servers in upstream \"a\""},
        {"upstream a { server 1.2.3; }\nserver {}",
         "t.conf:1:21: invalid address \"1.2.3\" in \"server\" of upstream \"a\""},
        {"upstream a { server 127.0.0.1:1 weight=0; }\nserver {}",
         "t.conf:1:33: invalid parameter \"weight=0\" in \"server\""},
        {"upstream a { server 127.0.0.1:1 backup; }\nserver {}",
         "t.conf:1:10: upstream \"a\" has only backup servers"},
        {"upstream a { server 127.0.0.1:1 backup backup; server 127.0.0.1:2; }\nserver {}",
         "t.conf:1:40: invalid parameter \"backup\" in \"server\""},
        {"upstream a { server 127.0.0.1:1 max_conns=x; }\nserver {}",
         "t.conf:1:33: invalid parameter \"max_conns=x\" in \"server\""},
        {"upstream a { server 127.0.0.1:1 slow_start=off; }\nserver {}",
         "t.conf:1:33: invalid parameter \"slow_start=off\" in \"server\""},
        {"upstream a { server 127.0.0.1:1 resolve; }\nserver {}",
         "t.conf:1:33: \"resolve\": \"127.0.0.1:1\" is not a name to look up"},
        {"upstream a { server a.b:1; resolver_interval 0; }\nserver {}",
         "t.conf:1:46: invalid time in \"resolver_interval\""},
        {"upstream a { server 127.0.0.1:1; hash $nope; }\nserver {}",
         "t.conf:1:39: unknown variable \"$nope\" in \"hash\""},
        {"upstream a { server 127.0.0.1:1; hash $uri always; }\nserver {}",
         "t.conf:1:44: invalid parameter \"always\" in \"hash\""},
        {"upstream a { server 127.0.0.1:1; least_conn; ip_hash; }\nserver {}",
         "t.conf:1:46: \"ip_hash\": upstream \"a\" has a balancing method already (least_conn)"},
        {"upstream a { server 127.0.0.1:1; least_conn x; }\nserver {}",
         "t.conf:1:45: \"least_conn\" takes no arguments"},
        {"upstream a { server 127.0.0.1:1; random two most_conn; }\nserver {}",
         "t.conf:1:45: invalid parameter \"most_conn\" in \"random\""},
        {"upstream a { server 127.0.0.1:1; server 127.0.0.1:2 backup; hash $uri; }\nserver {}",
         "t.conf:1:34: \"backup\" cannot be used with \"hash\" in upstream \"a\""},
        {"upstream a { server 127.0.0.1:1 slow_start=10s; ip_hash; }\nserver {}",
         "t.conf:1:14: \"slow_start\" cannot be used with \"ip_hash\" in upstream \"a\""},
        {"upstream a { server 127.0.0.1:1; queue 0; }\nserver {}",
         "t.conf:1:40: invalid value \"0\" in \"queue\""},
        {"upstream a { server 127.0.0.1:1; queue 5 timeout=never; }\nserver {}",
         "t.conf:1:42: invalid parameter \"timeout=never\" in \"queue\""},
        {"upstream a { server 127.0.0.1:1; health_check match=ok; }\nserver {}",
         "t.conf:1:47: \"match\" is not supported: a server passes a check with a 2xx or 3xx "
         "answer"},
        {"upstream a { server 127.0.0.1:1; health_check uri=health; }\nserver {}",
         "t.conf:1:47: invalid parameter \"uri=health\" in \"health_check\""},
        {"upstream a { server 127.0.0.1:1; health_check interval=1s timeout=2s; }\nserver {}",
         "t.conf:1:34: the timeout of \"health_check\" is longer than its interval"},
        {"upstream a { server 127.0.0.1:1; health_check; health_check; }\nserver {}",
         "t.conf:1:48: \"health_check\" directive is duplicate"},
        {"least_conn;\nserver {}", "t.conf:1:1: \"least_conn\" directive is not allowed here"},
        {"server { location / { hash $uri; } }",
         "t.conf:1:23: \"hash\" directive is not allowed here"},
        {"upstream a { server 127.0.0.1:1; keepalive 1; keepalive 2; }\nserver {}",
         "t.conf:1:47: \"keepalive\" directive is duplicate"},
        {"upstream a { server 127.0.0.1:1; keepalive_timeout 0; }\nserver {}",
         "t.conf:1:52: invalid time in \"keepalive_timeout\""},
        {"upstream a { server 127.0.0.1:1; }\nupstream a { server 127.0.0.1:2; }\nserver {}",
         "t.conf:2:10: duplicate upstream \"a\""},
        {"upstream a/b { server 127.0.0.1:1; }\nserver {}",
         "t.conf:1:10: invalid upstream name \"a/b\""},
        {"server { upstream a { server 127.0.0.1:1; } }",
         "t.conf:1:10: \"upstream\" directive is not allowed here"},
        {"server { proxy_pass http://127.0.0.1:1; }",
         "t.conf:1:10: \"proxy_pass\" directive is not allowed here"},
        {"server { location / { proxy_pass ftp://x; } }",
         "t.conf:1:34: invalid URL \"ftp://x\" in \"proxy_pass\": the URL must start with "
         "\"http://\" or \"https://\""},
        {"server { location / { proxy_pass http://; } }",
         "t.conf:1:34: invalid URL \"http://\" in \"proxy_pass\": no host in the URL"},
        {"server { location / { proxy_pass http://app; } }",
         "t.conf:1:34: no upstream \"app\" (a host name needs a port or a dot: \"app:80\")"},
        {"server { location / { proxy_pass http://127.0.0.1:99999; } }",
         "t.conf:1:34: invalid host \"127.0.0.1:99999\" in \"proxy_pass\""},
        {"server { location / { proxy_pass http://x.y?a; } }",
         "t.conf:1:34: invalid URL \"http://x.y?a\" in \"proxy_pass\": a query or fragment is "
         "not allowed in the URL"},
        {"server { location / { status; proxy_pass http://x.y; } }",
         "t.conf:1:31: \"proxy_pass\" and \"status\" in one location"},
        {"server { location / { metrics; proxy_pass http://x.y; } }",
         "t.conf:1:32: \"proxy_pass\" and \"metrics\" in one location"},
        {"server { location / { proxy_pass http://x.y; metrics; } }",
         "t.conf:1:46: \"metrics\" and \"proxy_pass\" in one location"},
        {"server { location / { proxy_pass http://x.y; return 200; } }",
         "t.conf:1:10: \"proxy_pass\" and \"return\" in one location"},
        {"server { location / { proxy_pass http://x.y; proxy_pass http://x.z; } }",
         "t.conf:1:46: \"proxy_pass\" directive is duplicate"},
        {"server { proxy_set_header X $nope; }",
         "t.conf:1:29: unknown variable \"$nope\" in \"proxy_set_header\""},
        {"server { proxy_next_upstream error http_418; }",
         "t.conf:1:36: invalid value \"http_418\" in \"proxy_next_upstream\""},
        {"server { proxy_next_upstream_tries many; }",
         "t.conf:1:36: invalid number \"many\" in \"proxy_next_upstream_tries\""},
        {"server { proxy_next_upstream_timeout 0; }",
         "t.conf:1:38: invalid time \"0\" in \"proxy_next_upstream_timeout\": write \"off\" for "
         "no timeout"},
        {"server { proxy_next_upstream off error; }",
         "t.conf:1:30: \"off\" cannot go with other values in \"proxy_next_upstream\""},
        {"server { proxy_redirect on; }",
         "t.conf:1:25: invalid parameter \"on\" in \"proxy_redirect\": write \"default\", \"off\" "
         "or a prefix and its replacement"},
        {"server { proxy_hide_header \"X Y\"; }",
         "t.conf:1:28: invalid header name \"X Y\" in \"proxy_hide_header\""},
        {"server { proxy_set_header \"X Y\" v; }",
         "t.conf:1:27: invalid header name \"X Y\" in \"proxy_set_header\""},
        {"server { proxy_set_header X \"a\\nb\"; }",
         "t.conf:1:29: invalid character in the value of \"proxy_set_header\""},
        {"server { proxy_set_header X a; proxy_set_header x b; }",
         "t.conf:1:49: header \"x\" is set twice"},
        {"server { proxy_read_timeout 0; }",
         "t.conf:1:29: invalid time \"0\" in \"proxy_read_timeout\": write \"off\" for no "
         "timeout"},
        {"server { proxy_ssl_verify maybe; }",
         "t.conf:1:27: invalid value \"maybe\" in \"proxy_ssl_verify\" directive, it must be "
         "\"on\" or \"off\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pt_conf *c = (pt_conf *)&c;
        char err[512];
        int rc = pt_conf_parse_string(&c, cases[i].text, NAME, PREFIX, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d, \"%s\"\nwant \"%s\"\nin:\n%s", i, rc, err, cases[i].msg,
                     cases[i].text);
        assert_null(c);
    }
}

/* ---- HTTP/2 ---- */

/* `http2` on a listen, with or without ssl, among the other parameters; an address offers
 * HTTP/2 when any of its listens says so, so listens of one address may differ. */
static void test_listen_http2(void **state)
{
    pt_conf *c = parse("ssl_certificate c.pem; ssl_certificate_key k.pem;\n"
                       "server {\n"
                       "    listen 8443 ssl http2 default_server reuseport backlog=9 deferred "
                       "notsent_lowat=8k;\n"
                       "    listen 8080 http2;\n"
                       "    listen 8081;\n"
                       "}\n"
                       "server { listen 8080; listen 8443 ssl; }\n");
    const pt_conf_server *a = &c->servers[0], *b = &c->servers[1];
    assert_true(a->listens[0].http2);
    assert_true(a->listens[0].ssl);
    assert_true(a->listens[0].default_server);
    assert_true(a->listens[0].reuseport);
    assert_true(a->listens[0].deferred);
    assert_int_equal(a->listens[0].backlog, 9);
    assert_true(a->listens[1].http2);
    assert_false(a->listens[1].ssl);
    /* http2 is not a socket option: another listen of the address may give those */
    assert_false(a->listens[1].options);
    assert_false(a->listens[2].http2);
    assert_false(b->listens[0].http2);
    assert_false(b->listens[1].http2);
    /* `listen ... http2` does not turn on `http2` for the server */
    assert_false(a->http2);
    pt_conf_free(c);
}

/* Every http2 directive at the top level reaches each server; a server's own replaces it for
 * that server only; `http2 on` is inherited like the others. */
static void test_http2_directives(void **state)
{
    pt_conf *c = parse("http {\n"
                       "    http2 on;\n"
                       "    http2_max_concurrent_streams 100;\n"
                       "    http2_max_header_list_size 64k;\n"
                       "    http2_max_frame_size 1m;\n"
                       "    http2_stream_window 1m;\n"
                       "    http2_connection_window 16m;\n"
                       "    http2_reset_rate_limit 200 10;\n"
                       "    http2_max_continuations 4;\n"
                       "    http2_max_settings 16;\n"
                       "    http2_control_frame_limit 500 50;\n"
                       "    server { listen 1; }\n"
                       "    server {\n"
                       "        listen 2;\n"
                       "        http2 off;\n"
                       "        http2_max_concurrent_streams 2147483647;\n"
                       "        http2_max_header_list_size 1024;\n"
                       "        http2_max_frame_size 16777215;\n"
                       "        http2_stream_window 65535;\n"
                       "        http2_connection_window 2147483647;\n"
                       "        http2_reset_rate_limit 1 1;\n"
                       "        http2_max_continuations 0;\n"
                       "        http2_max_settings 1;\n"
                       "        http2_control_frame_limit 2147483647 2147483647;\n"
                       "    }\n"
                       "}\n");
    const pt_conf_server *a = &c->servers[0], *b = &c->servers[1];
    assert_true(a->http2);
    assert_int_equal(a->h2.max_concurrent_streams, 100);
    assert_int_equal(a->h2.max_header_list_size, 64 * 1024);
    assert_int_equal(a->h2.max_frame_size, 1 << 20);
    assert_int_equal(a->h2.stream_window, 1 << 20);
    assert_int_equal(a->h2.connection_window, 16 << 20);
    assert_int_equal(a->h2.reset_burst, 200);
    assert_int_equal(a->h2.reset_rate, 10);
    assert_int_equal(a->h2.max_continuations, 4);
    assert_int_equal(a->h2.max_settings, 16);
    assert_int_equal(a->h2.control_burst, 500);
    assert_int_equal(a->h2.control_rate, 50);

    assert_false(b->http2);
    assert_int_equal(b->h2.max_concurrent_streams, 2147483647);
    assert_int_equal(b->h2.max_header_list_size, 1024);
    assert_int_equal(b->h2.max_frame_size, 16777215);
    assert_int_equal(b->h2.stream_window, 65535);
    assert_int_equal(b->h2.connection_window, 2147483647);
    assert_int_equal(b->h2.reset_burst, 1);
    assert_int_equal(b->h2.reset_rate, 1);
    assert_int_equal(b->h2.max_continuations, 0);
    assert_int_equal(b->h2.max_settings, 1);
    assert_int_equal(b->h2.control_burst, 2147483647);
    assert_int_equal(b->h2.control_rate, 2147483647);

    /* the top level keeps its own */
    assert_true(c->http2);
    assert_int_equal(c->h2.max_concurrent_streams, 100);
    pt_conf_free(c);

    /* a server setting one value keeps the others from the top level, wherever written */
    c = parse("server { listen 1; http2_max_frame_size 32k; }\n"
              "http2_max_settings 10;\n");
    assert_int_equal(c->servers[0].h2.max_frame_size, 32 * 1024);
    assert_int_equal(c->servers[0].h2.max_settings, 10);
    assert_int_equal(c->servers[0].h2.max_concurrent_streams, 128);
    assert_false(c->servers[0].http2);
    pt_conf_free(c);
}

/* Out of range or malformed: refused with the value's place. */
static void test_http2_errors(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"server {\n  http2 yes;\n}",
         "t.conf:2:9: invalid value \"yes\" in \"http2\" directive, it must be \"on\" or \"off\""},
        {"server { http2 on; http2 off; }", "t.conf:1:20: \"http2\" directive is duplicate"},
        {"server { location / { http2 on; } }",
         "t.conf:1:23: \"http2\" directive is not allowed here"},
        {"server { location / { http2_max_frame_size 32k; } }",
         "t.conf:1:23: \"http2_max_frame_size\" directive is not allowed here"},
        {"http2_max_concurrent_streams 0;\nserver {}",
         "t.conf:1:30: invalid value \"0\" in \"http2_max_concurrent_streams\", it must be "
         "1..2147483647"},
        {"http2_max_concurrent_streams 2147483648;\nserver {}",
         "t.conf:1:30: invalid value \"2147483648\" in \"http2_max_concurrent_streams\", it "
         "must be 1..2147483647"},
        {"http2_max_concurrent_streams 10k;\nserver {}",
         "t.conf:1:30: invalid number \"10k\" in \"http2_max_concurrent_streams\""},
        {"server {\n  http2_max_header_list_size 1023;\n}",
         "t.conf:2:30: invalid value \"1023\" in \"http2_max_header_list_size\", it must be "
         "1024..4294967295"},
        {"server { http2_max_header_list_size 4g; }",
         "t.conf:1:37: invalid value \"4g\" in \"http2_max_header_list_size\", it must be "
         "1024..4294967295"},
        {"server { http2_max_header_list_size 1x; }",
         "t.conf:1:37: invalid size \"1x\" in \"http2_max_header_list_size\""},
        {"server { http2_max_frame_size 16383; }",
         "t.conf:1:31: invalid value \"16383\" in \"http2_max_frame_size\", it must be "
         "16384..16777215"},
        {"server { http2_max_frame_size 16m; }",
         "t.conf:1:31: invalid value \"16m\" in \"http2_max_frame_size\", it must be "
         "16384..16777215"},
        {"server { http2_stream_window 65534; }",
         "t.conf:1:30: invalid value \"65534\" in \"http2_stream_window\", it must be "
         "65535..2147483647"},
        {"server { http2_connection_window 2g; }",
         "t.conf:1:34: invalid value \"2g\" in \"http2_connection_window\", it must be "
         "65535..2147483647"},
        {"server { http2_connection_window off; }",
         "t.conf:1:34: invalid size \"off\" in \"http2_connection_window\""},
        {"server { http2_reset_rate_limit 100; }",
         "t.conf:1:10: invalid number of arguments in \"http2_reset_rate_limit\" directive"},
        {"server { http2_reset_rate_limit 0 10; }",
         "t.conf:1:33: invalid value \"0\" in \"http2_reset_rate_limit\", it must be "
         "1..2147483647"},
        {"server { http2_reset_rate_limit 100 0; }",
         "t.conf:1:37: invalid value \"0\" in \"http2_reset_rate_limit\", it must be "
         "1..2147483647"},
        {"server { http2_control_frame_limit 100 -5; }",
         "t.conf:1:40: invalid number \"-5\" in \"http2_control_frame_limit\""},
        {"server { http2_control_frame_limit 1 2 3; }",
         "t.conf:1:10: invalid number of arguments in \"http2_control_frame_limit\" directive"},
        {"server { http2_max_continuations -1; }",
         "t.conf:1:34: invalid number \"-1\" in \"http2_max_continuations\""},
        {"server { http2_max_continuations 2147483648; }",
         "t.conf:1:34: invalid value \"2147483648\" in \"http2_max_continuations\", it must be "
         "0..2147483647"},
        {"server { http2_max_settings 0; }",
         "t.conf:1:29: invalid value \"0\" in \"http2_max_settings\", it must be 1..2147483647"},
        {"server { listen 80 http2 http2x; }",
         "t.conf:1:26: invalid parameter \"http2x\" in \"listen\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pt_conf *c = (pt_conf *)&c;
        char err[512];
        int rc = pt_conf_parse_string(&c, cases[i].text, NAME, PREFIX, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d, \"%s\"\nwant \"%s\"\nin:\n%s", i, rc, err, cases[i].msg,
                     cases[i].text);
        assert_null(c);
    }
}

/* ---- compression on the fly ---- */

/* The coding's types are exactly the strings given, in order (the list ends with NULL). */
static void assert_types(const pt_conf_coding *k, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, k);
    for (const char *t; (t = va_arg(ap, const char *)) != NULL; n++) {
        if (n >= k->ntypes)
            fail_msg("type %zu \"%s\" missing: %zu types", n, t, k->ntypes);
        if (strcmp(k->types[n], t) != 0)
            fail_msg("type %zu is \"%s\", want \"%s\"", n, k->types[n], t);
    }
    va_end(ap);
    if (n != k->ntypes)
        fail_msg("%zu types, want %zu", k->ntypes, n);
}

static void assert_order(const pt_conf_compress *z, pt_encoding a, pt_encoding b, pt_encoding c)
{
    assert_int_equal(z->order.e[0], a);
    assert_int_equal(z->order.e[1], b);
    assert_int_equal(z->order.e[2], c);
}

/* Whether gzip_disable's expression `i` of `z` matches the User-Agent `ua`. */
static bool disables(const pt_conf_compress *z, size_t i, const char *ua)
{
    assert_true(i < z->ndisable);
    return pt_regex_match(z->disable[i], ua, strlen(ua), NULL) == 1;
}

static void assert_compress_defaults(const pt_conf_compress *z)
{
    static const struct {
        pt_encoding e;
        int level;
    } want[] = {{PT_ENC_GZIP, 1}, {PT_ENC_BR, 4}, {PT_ENC_ZSTD, 3}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const pt_conf_coding *k = &z->coding[want[i].e];
        assert_false(k->on);
        assert_int_equal(k->level, want[i].level);
        assert_types(k, "text/html", NULL);
        assert_false(k->any_type);
        assert_int_equal(k->min_length, 20);
    }
    assert_int_equal(z->proxied, 0);
    assert_true(z->vary);
    assert_int_equal(z->ndisable, 0);
    assert_false(z->disable_msie6);
    assert_int_equal(z->http_version, 11);
    assert_order(z, PT_ENC_ZSTD, PT_ENC_BR, PT_ENC_GZIP);
    assert_true(z->cache);
}

static void test_compress_defaults(void **state)
{
    pt_conf *c = parse("server { location / { } }");
    assert_compress_defaults(&c->compress);
    assert_compress_defaults(&c->servers[0].compress);
    assert_compress_defaults(&c->servers[0].locations[0].compress);
    pt_conf_free(c);
}

/* Every directive at each level: the top level, a server and a location each hold what they
 * were given, and none of the three what another level wrote. */
static void test_compress_directives(void **state)
{
    pt_conf *c = parse("gzip on;\n"
                       "brotli on;\n"
                       "zstd on;\n"
                       "gzip_comp_level 9;\n"
                       "brotli_comp_level 0;\n"
                       "zstd_comp_level 19;\n"
                       "gzip_types text/css Application/JavaScript;\n"
                       "brotli_types *;\n"
                       "zstd_types image/svg+xml text/html;\n"
                       "gzip_min_length 1k;\n"
                       "brotli_min_length 0;\n"
                       "zstd_min_length 1m;\n"
                       "gzip_proxied expired no-cache no-store private no_last_modified no_etag "
                       "auth;\n"
                       "gzip_vary off;\n"
                       "gzip_disable msie6 \"Wget/1\\.[0-9]\";\n"
                       "gzip_http_version 1.0;\n"
                       "compress_order gzip br zstd;\n"
                       "compress_cache off;\n"
                       "server {\n"
                       "    gzip off;\n"
                       "    brotli off;\n"
                       "    zstd off;\n"
                       "    gzip_comp_level 1;\n"
                       "    brotli_comp_level 11;\n"
                       "    zstd_comp_level 1;\n"
                       "    gzip_types application/json;\n"
                       "    brotli_types text/plain;\n"
                       "    zstd_types *;\n"
                       "    gzip_min_length 256;\n"
                       "    brotli_min_length 2k;\n"
                       "    zstd_min_length 0;\n"
                       "    gzip_proxied any;\n"
                       "    gzip_vary on;\n"
                       "    gzip_disable curl/;\n"
                       "    gzip_http_version 1.1;\n"
                       "    compress_order br zstd gzip;\n"
                       "    compress_cache on;\n"
                       "    location / {\n"
                       "        gzip on;\n"
                       "        brotli on;\n"
                       "        zstd on;\n"
                       "        gzip_comp_level 5;\n"
                       "        brotli_comp_level 7;\n"
                       "        zstd_comp_level 10;\n"
                       "        gzip_types TEXT/XML;\n"
                       "        brotli_types application/wasm text/css;\n"
                       "        zstd_types text/javascript;\n"
                       "        gzip_min_length 3;\n"
                       "        brotli_min_length 4k;\n"
                       "        zstd_min_length 1g;\n"
                       "        gzip_proxied no_etag auth any;\n"
                       "        gzip_vary off;\n"
                       "        gzip_disable msie6;\n"
                       "        gzip_http_version 1.0;\n"
                       "        compress_order zstd gzip br;\n"
                       "        compress_cache off;\n"
                       "    }\n"
                       "}\n");
    const pt_conf_compress *t = &c->compress;
    const pt_conf_compress *s = &c->servers[0].compress;
    const pt_conf_compress *l = &c->servers[0].locations[0].compress;

    const pt_conf_coding *gz = &t->coding[PT_ENC_GZIP], *br = &t->coding[PT_ENC_BR],
                         *zs = &t->coding[PT_ENC_ZSTD];
    assert_true(gz->on && br->on && zs->on);
    assert_int_equal(gz->level, 9);
    assert_int_equal(br->level, 0);
    assert_int_equal(zs->level, 19);
    assert_types(gz, "text/html", "text/css", "application/javascript", NULL);
    assert_false(gz->any_type);
    assert_true(br->any_type);
    assert_types(br, "text/html", NULL);
    assert_types(zs, "text/html", "image/svg+xml", NULL);
    assert_false(zs->any_type);
    assert_int_equal(gz->min_length, 1024);
    assert_int_equal(br->min_length, 0);
    assert_int_equal(zs->min_length, 1 << 20);
    assert_int_equal(t->proxied, PT_PROXIED_EXPIRED | PT_PROXIED_NO_CACHE | PT_PROXIED_NO_STORE |
                                     PT_PROXIED_PRIVATE | PT_PROXIED_NO_LAST_MODIFIED |
                                     PT_PROXIED_NO_ETAG | PT_PROXIED_AUTH);
    assert_false(t->vary);
    assert_true(t->disable_msie6);
    assert_int_equal(t->ndisable, 1);
    assert_true(disables(t, 0, "wget/1.21.3")); /* case-insensitive */
    assert_false(disables(t, 0, "Wget/2.0"));
    assert_int_equal(t->http_version, 10);
    assert_order(t, PT_ENC_GZIP, PT_ENC_BR, PT_ENC_ZSTD);
    assert_false(t->cache);

    gz = &s->coding[PT_ENC_GZIP], br = &s->coding[PT_ENC_BR], zs = &s->coding[PT_ENC_ZSTD];
    assert_false(gz->on || br->on || zs->on);
    assert_int_equal(gz->level, 1);
    assert_int_equal(br->level, 11);
    assert_int_equal(zs->level, 1);
    assert_types(gz, "text/html", "application/json", NULL);
    assert_types(br, "text/html", "text/plain", NULL);
    assert_false(br->any_type); /* the server's own list, not the top level's `*` */
    assert_true(zs->any_type);
    assert_int_equal(gz->min_length, 256);
    assert_int_equal(br->min_length, 2048);
    assert_int_equal(zs->min_length, 0);
    assert_int_equal(s->proxied, PT_PROXIED_ANY);
    assert_true(s->vary);
    assert_false(s->disable_msie6);
    assert_int_equal(s->ndisable, 1);
    assert_true(disables(s, 0, "CURL/8.5.0"));
    assert_false(disables(s, 0, "Wget/1.21"));
    assert_int_equal(s->http_version, 11);
    assert_order(s, PT_ENC_BR, PT_ENC_ZSTD, PT_ENC_GZIP);
    assert_true(s->cache);

    gz = &l->coding[PT_ENC_GZIP], br = &l->coding[PT_ENC_BR], zs = &l->coding[PT_ENC_ZSTD];
    assert_true(gz->on && br->on && zs->on);
    assert_int_equal(gz->level, 5);
    assert_int_equal(br->level, 7);
    assert_int_equal(zs->level, 10);
    assert_types(gz, "text/html", "text/xml", NULL);
    assert_types(br, "text/html", "application/wasm", "text/css", NULL);
    assert_types(zs, "text/html", "text/javascript", NULL);
    assert_false(zs->any_type);
    assert_int_equal(gz->min_length, 3);
    assert_int_equal(br->min_length, 4096);
    assert_int_equal(zs->min_length, (size_t)1 << 30);
    assert_int_equal(l->proxied, PT_PROXIED_NO_ETAG | PT_PROXIED_AUTH | PT_PROXIED_ANY);
    assert_false(l->vary);
    assert_true(l->disable_msie6);
    assert_int_equal(l->ndisable, 0); /* the location's own gzip_disable replaced the server's */
    assert_int_equal(l->http_version, 10);
    assert_order(l, PT_ENC_ZSTD, PT_ENC_GZIP, PT_ENC_BR);
    assert_false(l->cache);
    pt_conf_free(c);

    /* `gzip_proxied off` clears what the level inherited */
    c = parse("gzip_proxied any;\nserver { gzip_proxied off; }");
    assert_int_equal(c->compress.proxied, PT_PROXIED_ANY);
    assert_int_equal(c->servers[0].compress.proxied, 0);
    pt_conf_free(c);
}

/* A level starts from its parent's settings and replaces only what it names; a list it names
 * (gzip_types, gzip_disable) replaces the inherited list instead of adding to it. */
static void test_compress_inheritance(void **state)
{
    pt_conf *c = parse("gzip_types text/css;\n"
                       "brotli_comp_level 6;\n"
                       "server {\n"
                       "    gzip on;\n"
                       "    gzip_types text/plain application/json;\n"
                       "    gzip_disable bot msie6;\n"
                       "    gzip_disable spider;\n"
                       "    location /a/ { }\n"
                       "    location /b/ { gzip_types text/xml; gzip_comp_level 6; }\n"
                       "    location /c/ { gzip off; gzip_disable crawler; }\n"
                       "    location /d/ { gzip_types text/html; brotli on; }\n"
                       "}\n"
                       "server { location / { } }\n"
                       "gzip_min_length 100;\n");
    const pt_conf_server *s = &c->servers[0];
    const pt_conf_compress *z = &s->compress;
    assert_true(z->coding[PT_ENC_GZIP].on);
    assert_types(&z->coding[PT_ENC_GZIP], "text/html", "text/plain", "application/json", NULL);
    assert_int_equal(z->coding[PT_ENC_BR].level, 6);
    /* the top level's, though written after the server block */
    assert_int_equal(z->coding[PT_ENC_GZIP].min_length, 100);
    assert_int_equal(z->ndisable, 2); /* two lines of one level add up */
    assert_true(z->disable_msie6);
    assert_true(disables(z, 0, "GoogleBot/2.1"));
    assert_true(disables(z, 1, "a Spider"));

    /* /a/ names nothing: the server's values, its list of types and its expressions */
    const pt_conf_compress *a = &s->locations[0].compress;
    assert_true(a->coding[PT_ENC_GZIP].on);
    assert_types(&a->coding[PT_ENC_GZIP], "text/html", "text/plain", "application/json", NULL);
    assert_ptr_not_equal(a->coding[PT_ENC_GZIP].types, z->coding[PT_ENC_GZIP].types);
    assert_int_equal(a->coding[PT_ENC_GZIP].level, 1);
    assert_int_equal(a->coding[PT_ENC_BR].level, 6);
    assert_int_equal(a->coding[PT_ENC_GZIP].min_length, 100);
    assert_int_equal(a->ndisable, 2);
    assert_true(a->disable_msie6);
    assert_ptr_not_equal(a->disable[0], z->disable[0]); /* its own copy, compiled anew */
    assert_true(disables(a, 0, "GoogleBot/2.1"));
    assert_true(disables(a, 1, "a Spider"));
    assert_false(disables(a, 0, "Mozilla/5.0"));

    /* /b/: its own gzip_types replaces the server's list, it does not add to it */
    const pt_conf_compress *b = &s->locations[1].compress;
    assert_true(b->coding[PT_ENC_GZIP].on);
    assert_types(&b->coding[PT_ENC_GZIP], "text/html", "text/xml", NULL);
    assert_int_equal(b->coding[PT_ENC_GZIP].level, 6);
    assert_int_equal(b->ndisable, 2);

    /* /c/: gzip off here only; its gzip_disable replaces the server's, msie6 included */
    const pt_conf_compress *cc = &s->locations[2].compress;
    assert_false(cc->coding[PT_ENC_GZIP].on);
    assert_types(&cc->coding[PT_ENC_GZIP], "text/html", "text/plain", "application/json", NULL);
    assert_int_equal(cc->ndisable, 1);
    assert_false(cc->disable_msie6);
    assert_true(disables(cc, 0, "Crawler"));
    assert_false(disables(cc, 0, "GoogleBot/2.1"));

    /* /d/: text/html named again is still one entry; brotli on leaves gzip as it was */
    const pt_conf_compress *d = &s->locations[3].compress;
    assert_types(&d->coding[PT_ENC_GZIP], "text/html", NULL);
    assert_true(d->coding[PT_ENC_BR].on);
    assert_true(d->coding[PT_ENC_GZIP].on);
    assert_false(s->locations[0].compress.coding[PT_ENC_BR].on);

    /* the second server starts from the top level, not from the first server */
    const pt_conf_compress *t = &c->servers[1].compress;
    assert_false(t->coding[PT_ENC_GZIP].on);
    assert_types(&t->coding[PT_ENC_GZIP], "text/html", "text/css", NULL);
    assert_int_equal(t->ndisable, 0);
    assert_false(t->disable_msie6);
    assert_types(&c->servers[1].locations[0].compress.coding[PT_ENC_GZIP], "text/html", "text/css",
                 NULL);
    pt_conf_free(c);
}

/* limit_req_zone and limit_conn_zone as nginx reads them; the limits of a level replace those
 * they inherit, line lists as a whole, settings one by one. */
static void test_limits_inheritance(void **state)
{
    pt_conf *c = parse("limit_req zone=one burst=5;\n"
                       "limit_req_status 429;\n"
                       "server {\n"
                       "    limit_conn addr 10;\n"
                       "    limit_req_log_level warn;\n"
                       "    location /a/ { }\n"
                       "    location /b/ { limit_req zone=two nodelay; limit_req zone=one "
                       "delay=3 burst=9; }\n"
                       "    location /c/ { limit_conn addr 1; limit_conn_dry_run on; "
                       "limit_conn_status 444; }\n"
                       "}\n"
                       "server { location / { limit_req_dry_run on; } }\n"
                       "limit_req_zone $binary_remote_addr zone=one:10m rate=30r/m;\n"
                       "limit_req_zone \"$server_name $http_x_key\" zone=two:1m rate=7r/s;\n"
                       "limit_conn_zone $binary_remote_addr zone=addr:64k;\n");
    assert_int_equal(c->nzones, 3);
    assert_string_equal(c->zones[0].name, "one");
    assert_false(c->zones[0].conn);
    assert_string_equal(c->zones[0].key, "$binary_remote_addr");
    assert_int_equal(c->zones[0].size, 10 << 20);
    assert_int_equal(c->zones[0].rate, 500); /* 30 * 1000 / 60 */
    assert_int_equal(c->zones[1].rate, 7000);
    assert_string_equal(c->zones[1].key, "$server_name $http_x_key");
    assert_true(c->zones[2].conn);
    assert_int_equal(c->zones[2].size, 64 << 10);

    const pt_conf_server *s = &c->servers[0];
    /* the server: the top level's limit_req and status, its own limit_conn and log level */
    assert_int_equal(s->limit.nreq, 1);
    assert_int_equal(s->limit.req[0].zone, 0);
    assert_int_equal(s->limit.req[0].burst, 5000);
    assert_int_equal(s->limit.req[0].delay, 0);
    assert_int_equal(s->limit.req_status, 429);
    assert_int_equal(s->limit.req_log_level, PT_LOG_WARN);
    assert_int_equal(s->limit.nconn, 1);
    assert_int_equal(s->limit.conn[0].zone, 2);
    assert_int_equal(s->limit.conn[0].conn, 10);
    assert_int_equal(s->limit.conn_status, 503);
    /* /a/ names nothing: the server's */
    const pt_conf_limit *a = &s->locations[0].limit;
    assert_int_equal(a->nreq, 1);
    assert_int_equal(a->nconn, 1);
    assert_int_equal(a->req_log_level, PT_LOG_WARN);
    /* /b/: its two lines replace the inherited one, in order */
    const pt_conf_limit *b = &s->locations[1].limit;
    assert_int_equal(b->nreq, 2);
    assert_int_equal(b->req[0].zone, 1);
    assert_true(b->req[0].delay == UINT64_MAX); /* nodelay */
    assert_int_equal(b->req[1].zone, 0);
    assert_int_equal(b->req[1].delay, 3000);
    assert_int_equal(b->req[1].burst, 9000);
    assert_int_equal(b->nconn, 1);
    /* /c/: its own limit_conn and its settings */
    const pt_conf_limit *cc = &s->locations[2].limit;
    assert_int_equal(cc->nconn, 1);
    assert_int_equal(cc->conn[0].conn, 1);
    assert_true(cc->conn_dry_run);
    assert_int_equal(cc->conn_status, 444);
    assert_int_equal(cc->nreq, 1);
    assert_false(s->limit.conn_dry_run);
    /* the second server starts from the top level */
    const pt_conf_server *t = &c->servers[1];
    assert_int_equal(t->limit.nreq, 1);
    assert_int_equal(t->limit.nconn, 0);
    assert_int_equal(t->limit.req_log_level, PT_LOG_ERROR);
    assert_true(t->locations[0].limit.req_dry_run);
    assert_false(t->limit.req_dry_run);
    pt_conf_free(c);
}

/* Each refusal with its place and reason; a refused nginx directive says what to write. */
static void test_compress_errors(void **state)
{
#define PRECOMPRESSED                                                                              \
    "is not supported, use \"precompressed on\": it serves FILE.br, FILE.zst or FILE.gz by the "   \
    "client's Accept-Encoding"
#define BUFFERS                                                                                    \
    "is not supported, porter sizes its compression buffers itself: remove the directive"
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        /* levels */
        {"server { gzip_comp_level 0; }",
         "t.conf:1:26: invalid value \"0\" in \"gzip_comp_level\", it must be 1..9"},
        {"server { gzip_comp_level 10; }",
         "t.conf:1:26: invalid value \"10\" in \"gzip_comp_level\", it must be 1..9"},
        {"server { gzip_comp_level high; }",
         "t.conf:1:26: invalid value \"high\" in \"gzip_comp_level\", it must be 1..9"},
        {"server { location / { gzip_comp_level 10; } }",
         "t.conf:1:39: invalid value \"10\" in \"gzip_comp_level\", it must be 1..9"},
        {"server { brotli_comp_level 12; }",
         "t.conf:1:28: invalid value \"12\" in \"brotli_comp_level\", it must be 0..11"},
        {"brotli_comp_level -1;\nserver {}",
         "t.conf:1:19: invalid value \"-1\" in \"brotli_comp_level\", it must be 0..11"},
        {"server { zstd_comp_level 0; }",
         "t.conf:1:26: invalid value \"0\" in \"zstd_comp_level\", it must be 1..19"},
        {"server { zstd_comp_level 20; }",
         "t.conf:1:26: invalid value \"20\" in \"zstd_comp_level\", it must be 1..19"},
        /* types */
        {"server { gzip_types text; }",
         "t.conf:1:21: invalid media type \"text\" in \"gzip_types\", it must be TYPE/SUBTYPE"},
        {"server { gzip_types text/css \"text/html; charset=utf-8\"; }",
         "t.conf:1:30: parameters are not allowed in \"text/html; charset=utf-8\" of "
         "\"gzip_types\", write the media type alone"},
        {"server {\n    location / {\n        zstd_types 'text/plain;q=1';\n    }\n}",
         "t.conf:3:20: parameters are not allowed in \"text/plain;q=1\" of \"zstd_types\", write "
         "the media type alone"},
        {"server { brotli_types text/; }",
         "t.conf:1:23: invalid media type \"text/\" in \"brotli_types\", it must be TYPE/SUBTYPE"},
        {"server { brotli_types /html; }",
         "t.conf:1:23: invalid media type \"/html\" in \"brotli_types\", it must be TYPE/SUBTYPE"},
        {"server { zstd_types text/h@ml; }",
         "t.conf:1:21: invalid media type \"text/h@ml\" in \"zstd_types\", it must be "
         "TYPE/SUBTYPE"},
        {"server { gzip_types a/b/c; }",
         "t.conf:1:21: invalid media type \"a/b/c\" in \"gzip_types\", it must be TYPE/SUBTYPE"},
        {"server { gzip_types text/*; }",
         "t.conf:1:21: invalid media type \"text/*\" in \"gzip_types\", only \"*\" alone stands "
         "for any type"},
        {"server { gzip_types text/css *; }",
         "t.conf:1:30: \"*\" cannot go with other types in \"gzip_types\""},
        {"server { gzip_types; }",
         "t.conf:1:10: invalid number of arguments in \"gzip_types\" directive"},
        {"server { gzip_types text/css; gzip_types text/xml; }",
         "t.conf:1:31: \"gzip_types\" directive is duplicate"},
        /* sizes, flags, versions */
        {"server { gzip_min_length off; }",
         "t.conf:1:26: invalid size \"off\" in \"gzip_min_length\""},
        {"server { brotli_min_length 1x; }",
         "t.conf:1:28: invalid size \"1x\" in \"brotli_min_length\""},
        {"server { zstd_min_length -1; }",
         "t.conf:1:26: invalid size \"-1\" in \"zstd_min_length\""},
        {"server { zstd yes; }",
         "t.conf:1:15: invalid value \"yes\" in \"zstd\" directive, it must be \"on\" or \"off\""},
        {"server { gzip on; gzip off; }", "t.conf:1:19: \"gzip\" directive is duplicate"},
        {"events { gzip on; }\nserver {}", "t.conf:1:10: \"gzip\" directive is not allowed here"},
        {"server { gzip_http_version 2.0; }",
         "t.conf:1:28: invalid value \"2.0\" in \"gzip_http_version\", it must be \"1.0\" or "
         "\"1.1\""},
        /* gzip_proxied */
        {"server { gzip_proxied any off; }",
         "t.conf:1:27: \"off\" cannot go with other values in \"gzip_proxied\""},
        {"server { gzip_proxied off expired; }",
         "t.conf:1:23: \"off\" cannot go with other values in \"gzip_proxied\""},
        {"server { gzip_proxied sometimes; }",
         "t.conf:1:23: invalid value \"sometimes\" in \"gzip_proxied\""},
        /* gzip_disable */
        {"server { gzip_disable \"(\"; }",
         "t.conf:1:23: invalid regular expression \"(\" in \"gzip_disable\": missing closing "
         "parenthesis at offset 1"},
        {"server {\n  location / {\n    gzip_disable msie6 \"MSIE [5-6\";\n  }\n}",
         "t.conf:3:24: invalid regular expression \"MSIE [5-6\" in \"gzip_disable\": missing "
         "terminating "
         "] for character class at offset 9"},
        {"server { gzip_disable \"\"; }",
         "t.conf:1:23: empty regular expression in \"gzip_disable\""},
        {"server { gzip_disable msie6 degradation; }",
         "t.conf:1:29: \"gzip_disable degradation\" is not supported (nginx's degradation "
         "module)"},
        /* compress_order */
        {"server { compress_order zstd br br; }",
         "t.conf:1:33: coding \"br\" is named twice in \"compress_order\""},
        {"server { compress_order zstd br gzip gzip; }",
         "t.conf:1:38: coding \"gzip\" is named twice in \"compress_order\""},
        {"server { compress_order zstd br; }",
         "t.conf:1:10: \"compress_order\" must name each of \"zstd\", \"br\" and \"gzip\" once, "
         "\"gzip\" is missing"},
        {"server { compress_order gzip; }",
         "t.conf:1:10: \"compress_order\" must name each of \"zstd\", \"br\" and \"gzip\" once, "
         "\"br\" is missing"},
        {"server { compress_order zstd br deflate; }",
         "t.conf:1:33: unknown coding \"deflate\" in \"compress_order\", it must be \"zstd\", "
         "\"br\" or \"gzip\""},
        {"compress_order brotli zstd gzip;\nserver {}",
         "t.conf:1:16: unknown coding \"brotli\" in \"compress_order\", it must be \"zstd\", "
         "\"br\" or \"gzip\""},
        /* nginx's directives porter does not honour */
        {"server {\n    location / {\n        gzip_static on;\n    }\n}",
         "t.conf:3:9: \"gzip_static\" " PRECOMPRESSED},
        {"brotli_static always;\nserver {}", "t.conf:1:1: \"brotli_static\" " PRECOMPRESSED},
        {"server { zstd_static on; }", "t.conf:1:10: \"zstd_static\" " PRECOMPRESSED},
        {"gzip_buffers 16 8k;\nserver {}", "t.conf:1:1: \"gzip_buffers\" " BUFFERS},
        {"server { brotli_buffers 16 8k; }", "t.conf:1:10: \"brotli_buffers\" " BUFFERS},
        {"server { zstd_buffers 16 8k; }", "t.conf:1:10: \"zstd_buffers\" " BUFFERS},
        {"server { gzip_window 32k; }",
         "t.conf:1:10: \"gzip_window\" is not supported, porter chooses the window itself: set "
         "how hard it compresses with \"gzip_comp_level\""},
        {"server { gzip_hash 16k; }",
         "t.conf:1:10: \"gzip_hash\" is not supported, porter chooses the memory it compresses "
         "with itself: set how hard it compresses with \"gzip_comp_level\""},
        {"server { location / { brotli_window 512k; } }",
         "t.conf:1:23: \"brotli_window\" is not supported, porter chooses the window itself: set "
         "how hard it compresses with \"brotli_comp_level\""},
    };
#undef PRECOMPRESSED
#undef BUFFERS
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pt_conf *c = (pt_conf *)&c;
        char err[512];
        int rc = pt_conf_parse_string(&c, cases[i].text, NAME, PREFIX, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d, \"%s\"\nwant \"%s\"\nin:\n%s", i, rc, err, cases[i].msg,
                     cases[i].text);
        assert_null(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_parse_size),
        NOTHING_LEFT_TEST(test_parse_time),
        NOTHING_LEFT_TEST(test_defaults),
        NOTHING_LEFT_TEST(test_all_directives),
        NOTHING_LEFT_TEST(test_listen_forms),
        NOTHING_LEFT_TEST(test_listen_backlog_follows_max_waiting),
        NOTHING_LEFT_TEST(test_limits_by_name),
        NOTHING_LEFT_TEST(test_unlimited),
        NOTHING_LEFT_TEST(test_inheritance),
        NOTHING_LEFT_TEST(test_http_and_events),
        NOTHING_LEFT_TEST(test_paths),
        NOTHING_LEFT_TEST(test_locations),
        NOTHING_LEFT_TEST(test_nested_locations),
        NOTHING_LEFT_TEST(test_static_directives),
        NOTHING_LEFT_TEST(test_errors),
        NOTHING_LEFT_TEST(test_error_buffer),
        NOTHING_LEFT_TEST(test_ssl_defaults),
        NOTHING_LEFT_TEST(test_ssl_directives),
        NOTHING_LEFT_TEST(test_ssl_session_cache_forms),
        NOTHING_LEFT_TEST(test_return),
        NOTHING_LEFT_TEST(test_ssl_and_return_errors),
        cmocka_unit_test_setup_teardown(test_missing_file, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_include_missing, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_include_relative_and_glob, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_include_from_string, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_error_in_included_file, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_include_cycle, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_check_reports_every_error, dir_setup, dir_teardown),
        NOTHING_LEFT_TEST(test_unknown_directive_messages),
        NOTHING_LEFT_TEST(test_root_places),
        NOTHING_LEFT_TEST(test_user),
        cmocka_unit_test_setup_teardown(test_include_depth, dir_setup, dir_teardown),
        NOTHING_LEFT_TEST(test_nginx_style_fixture),
        NOTHING_LEFT_TEST(test_proxy_defaults_and_directives),
        NOTHING_LEFT_TEST(test_proxy_errors),
        NOTHING_LEFT_TEST(test_listen_http2),
        NOTHING_LEFT_TEST(test_http2_directives),
        NOTHING_LEFT_TEST(test_http2_errors),
        NOTHING_LEFT_TEST(test_compress_defaults),
        NOTHING_LEFT_TEST(test_compress_directives),
        NOTHING_LEFT_TEST(test_compress_inheritance),
        NOTHING_LEFT_TEST(test_compress_errors),
        NOTHING_LEFT_TEST(test_limits_inheritance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
