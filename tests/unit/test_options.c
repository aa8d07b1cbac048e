/* A server made from pt_server_options: the conf it gets is the one a conf file's server block
 * with the same values gets, default for default, and a wrong option is named. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/conf/conf.h"
#include "server/options.h"
#include "tests/support.h"

#define PREFIX "/p"

static pt_conf *parse(const char *text)
{
    pt_conf *c = NULL;
    char err[512];
    if (pt_conf_parse_string(&c, text, "t.conf", PREFIX, err, sizeof err) != 0)
        fail_msg("%s\nin:\n%s", err, text);
    return c;
}

static pt_conf *from_options(const pt_server_options *o)
{
    pt_conf *c = NULL;
    char err[512] = "";
    if (pt_options_conf(&c, o, err, sizeof err) != 0)
        fail_msg("pt_options_conf: %s", err);
    return c;
}

/* Each comparison names the field that differs: `a` is from options, `b` from the conf text. */
#define SAME_NUM(a, b, f)                                                                          \
    do {                                                                                           \
        if ((double)(a)->f != (double)(b)->f)                                                      \
            fail_msg("%s: %g from options, %g from a server block", #f, (double)(a)->f,            \
                     (double)(b)->f);                                                              \
    } while (0)

#define SAME_STR(a, b, f) same_str(#f, (a)->f, (b)->f)

static void same_str(const char *what, const char *a, const char *b)
{
    if (a == b || (a && b && strcmp(a, b) == 0))
        return;
    fail_msg("%s: \"%s\" from options, \"%s\" from a server block", what, a ? a : "(none)",
             b ? b : "(none)");
}

static void same_count(const char *what, size_t na, size_t nb)
{
    if (na != nb)
        fail_msg("%s: %zu from options, %zu from a server block", what, na, nb);
}

static void same_strv(const char *what, char *const *a, size_t na, char *const *b, size_t nb)
{
    same_count(what, na, nb);
    for (size_t i = 0; i < na; i++)
        same_str(what, a[i], b[i]);
}

static void same_headers(const char *what, const pt_conf_header *a, size_t na,
                         const pt_conf_header *b, size_t nb)
{
    same_count(what, na, nb);
    for (size_t i = 0; i < na; i++) {
        same_str(what, a[i].name, b[i].name);
        same_str(what, a[i].value, b[i].value);
        SAME_NUM(&a[i], &b[i], always);
    }
}

static void same_limits(const pt_limits *a, const pt_limits *b)
{
    SAME_NUM(a, b, max_waiting);
    SAME_NUM(a, b, max_concurrent);
    SAME_NUM(a, b, request_read_timeout);
    SAME_NUM(a, b, max_request_line_length);
    SAME_NUM(a, b, max_request_headers);
    SAME_NUM(a, b, max_request_header_length);
    SAME_NUM(a, b, max_request_body_length);
    SAME_NUM(a, b, response_timeout);
    SAME_NUM(a, b, response_send_timeout);
    SAME_NUM(a, b, shutdown_grace_period);
    SAME_NUM(a, b, keepalive_timeout);
    SAME_NUM(a, b, keepalive_requests);
    SAME_NUM(a, b, request_body_timeout);
    SAME_NUM(a, b, lingering_timeout);
    SAME_NUM(a, b, max_concurrent_per_client);
}

static void same_types(const pt_conf_type *a, size_t na, const pt_conf_type *b, size_t nb)
{
    same_count("types", na, nb);
    for (size_t i = 0; i < na; i++) {
        SAME_STR(&a[i], &b[i], type);
        SAME_STR(&a[i], &b[i], ext);
    }
}

static void same_files(const pt_conf_files *a, const pt_conf_files *b)
{
    SAME_NUM(a, b, autoindex);
    SAME_NUM(a, b, autoindex_format);
    SAME_NUM(a, b, autoindex_exact_size);
    SAME_NUM(a, b, autoindex_localtime);
    SAME_NUM(a, b, expires_kind);
    SAME_NUM(a, b, expires);
    same_headers("add_header", a->headers, a->nheaders, b->headers, b->nheaders);
    SAME_NUM(a, b, nerror_pages);
    same_strv("try_files", a->try_files, a->ntry_files, b->try_files, b->ntry_files);
    SAME_NUM(a, b, precompressed);
    SAME_NUM(a, b, max_ranges);
    SAME_NUM(a, b, etag);
}

static void same_ssl(const pt_conf_ssl *a, const pt_conf_ssl *b)
{
    same_strv("ssl_certificate", a->certs, a->ncerts, b->certs, b->ncerts);
    same_strv("ssl_certificate_key", a->keys, a->nkeys, b->keys, b->nkeys);
    SAME_NUM(a, b, min_version);
    SAME_NUM(a, b, max_version);
    SAME_STR(a, b, ciphers);
    SAME_STR(a, b, ciphersuites);
    SAME_NUM(a, b, prefer_server_ciphers);
    SAME_NUM(a, b, session_cache);
    SAME_NUM(a, b, session_timeout);
    SAME_NUM(a, b, session_tickets);
    SAME_NUM(a, b, handshake_timeout);
    SAME_NUM(a, b, max_handshakes);
}

static void same_proxy(const pt_conf_proxy *a, const pt_conf_proxy *b)
{
    SAME_STR(a, b, pass);
    same_headers("proxy_set_header", a->set_headers, a->nset_headers, b->set_headers,
                 b->nset_headers);
    same_strv("proxy_hide_header", a->hide_headers, a->nhide_headers, b->hide_headers,
              b->nhide_headers);
    same_strv("proxy_pass_header", a->pass_headers, a->npass_headers, b->pass_headers,
              b->npass_headers);
    same_headers("proxy_redirect", a->redirects, a->nredirects, b->redirects, b->nredirects);
    SAME_NUM(a, b, next_upstream);
    SAME_NUM(a, b, next_upstream_tries);
    SAME_NUM(a, b, next_upstream_timeout);
    SAME_NUM(a, b, connect_timeout);
    SAME_NUM(a, b, read_timeout);
    SAME_NUM(a, b, send_timeout);
    SAME_NUM(a, b, ssl_verify);
    SAME_NUM(a, b, ssl_server_name);
    SAME_STR(a, b, ssl_trusted_certificate);
}

static void same_access_logs(const pt_conf_access_log *a, size_t na, const pt_conf_access_log *b,
                             size_t nb)
{
    same_count("access_log", na, nb);
    for (size_t i = 0; i < na; i++) {
        SAME_STR(&a[i], &b[i], path);
        if (a[i].fmt != b[i].fmt || a[i].cond != b[i].cond)
            fail_msg("access_log %zu: another format or condition", i);
        SAME_NUM(&a[i], &b[i], buffer);
        SAME_NUM(&a[i], &b[i], flush);
    }
}

static void same_h2(const pt_h2_settings *a, const pt_h2_settings *b)
{
    SAME_NUM(a, b, max_concurrent_streams);
    SAME_NUM(a, b, max_header_list_size);
    SAME_NUM(a, b, max_frame_size);
    SAME_NUM(a, b, stream_window);
    SAME_NUM(a, b, connection_window);
    SAME_NUM(a, b, reset_burst);
    SAME_NUM(a, b, reset_rate);
    SAME_NUM(a, b, max_continuations);
    SAME_NUM(a, b, max_settings);
    SAME_NUM(a, b, control_burst);
    SAME_NUM(a, b, control_rate);
}

/* What every level holds: the top level, a server, a location. */
#define SAME_LEVEL(a, b)                                                                           \
    do {                                                                                           \
        SAME_STR(a, b, root);                                                                      \
        SAME_NUM(a, b, root_named);                                                                \
        same_strv("index", (a)->index, (a)->nindex, (b)->index, (b)->nindex);                      \
        SAME_NUM(a, b, sendfile);                                                                  \
        same_files(&(a)->static_files, &(b)->static_files);                                        \
        same_proxy(&(a)->proxy, &(b)->proxy);                                                      \
        same_access_logs((a)->access_logs, (a)->naccess_logs, (b)->access_logs,                    \
                         (b)->naccess_logs);                                                       \
    } while (0)

/* What the top level and a server hold. */
#define SAME_TOP_OR_SERVER(a, b)                                                                   \
    do {                                                                                           \
        SAME_LEVEL(a, b);                                                                          \
        same_limits(&(a)->limits, &(b)->limits);                                                   \
        SAME_STR(a, b, error_log);                                                                 \
        SAME_NUM(a, b, error_log_level);                                                           \
        SAME_NUM(a, b, server_tokens);                                                             \
        SAME_STR(a, b, default_type);                                                              \
        same_types((a)->types, (a)->ntypes, (b)->types, (b)->ntypes);                              \
        same_ssl(&(a)->ssl, &(b)->ssl);                                                            \
        SAME_NUM(a, b, http2);                                                                     \
        same_h2(&(a)->h2, &(b)->h2);                                                               \
    } while (0)

/* `a` (from options) and `b` (from conf text) hold the same, but for where they were written
 * and the listening addresses (a server from options has none until pt_server_listen()). */
static void same_conf(const pt_conf *a, const pt_conf *b)
{
    SAME_TOP_OR_SERVER(a, b);
    SAME_NUM(a, b, worker_processes);
    SAME_STR(a, b, pid_path);
    SAME_NUM(a, b, ssl_ticket_rotate);
    SAME_NUM(a, b, file_cache_size);
    SAME_NUM(a, b, file_cache_max_file);
    SAME_NUM(a, b, file_cache_valid);
    SAME_NUM(a, b, open_file_cache_max);
    SAME_NUM(a, b, open_file_cache_inactive);
    SAME_STR(a, b, prefix);
    SAME_NUM(a, b, nupstreams);
    SAME_NUM(a, b, nservers);
    for (size_t i = 0; i < a->nservers; i++) {
        const pt_conf_server *s = &a->servers[i], *t = &b->servers[i];
        SAME_TOP_OR_SERVER(s, t);
        SAME_NUM(s, t, nnames);
        SAME_NUM(s, t, ret.code);
        SAME_STR(s, t, ret.text);
        SAME_NUM(s, t, nlocations);
        for (size_t k = 0; k < s->nlocations; k++) {
            const pt_conf_location *l = &s->locations[k], *m = &t->locations[k];
            SAME_LEVEL(l, m);
            SAME_STR(l, m, path);
            SAME_NUM(l, m, match);
            SAME_NUM(l, m, no_regex);
            SAME_NUM(l, m, handler);
            SAME_STR(l, m, alias);
            SAME_NUM(l, m, ret.code);
            SAME_STR(l, m, ret.text);
        }
    }
}

/* Options left at their defaults give what this server block gives: no files (root "/" and a
 * location answering 404 to what no route of the embedder takes), every other value the
 * default a conf file's server block starts from. */
static void test_defaults_are_those_of_a_server_block(void **state)
{
    pt_server_options o;
    pt_server_options_init(&o);
    o.prefix = PREFIX;
    pt_conf *a = from_options(&o);
    pt_conf *b = parse("server { root /; location / { return 404; } }");
    same_conf(a, b);
    assert_int_equal(a->servers[0].nlistens, 0);
    /* HTTP/2 off (an address turns it on: PT_LISTEN_HTTP2), with the default settings */
    assert_false(a->servers[0].http2);
    assert_int_equal(a->servers[0].h2.max_concurrent_streams, 128);
    assert_int_equal(a->servers[0].h2.max_frame_size, 16384);
    pt_conf_free(a);
    pt_conf_free(b);
}

/* Each option lands where its directive would put it, relative paths under the prefix. */
static void test_each_option_as_its_directive(void **state)
{
    pt_server_options o;
    pt_server_options_init(&o);
    o.prefix = PREFIX;
    o.root = "site/";
    o.access_log = "logs/access.log";
    o.error_log = "/var/log/porter.log";
    o.tls_certificate = "tls/cert.pem";
    o.tls_certificate_key = "tls/key.pem";
    pt_conf *a = from_options(&o);
    pt_conf *b = parse("error_log /var/log/porter.log error;\n"
                       "server {\n"
                       "    root site/;\n"
                       "    access_log logs/access.log;\n"
                       "    ssl_certificate tls/cert.pem;\n"
                       "    ssl_certificate_key tls/key.pem;\n"
                       "}\n");
    same_conf(a, b);
    assert_string_equal(a->servers[0].root, "/p/site");
    assert_int_equal(a->servers[0].naccess_logs, 1);
    assert_string_equal(a->servers[0].access_logs[0].path, "/p/logs/access.log");
    assert_string_equal(a->servers[0].ssl.keys[0], "/p/tls/key.pem");
    pt_conf_free(a);
    pt_conf_free(b);

    /* "stderr" is a log, not a file of that name; the limits are the top level's and the
     * server's, as top-level limit directives would be. */
    pt_server_options_init(&o);
    o.prefix = PREFIX;
    o.access_log = "stderr";
    pt_limits limits;
    pt_limits_init(&limits);
    limits.keepalive_requests = 7;
    limits.response_timeout = 2.5;
    o.limits = &limits;
    a = from_options(&o);
    b = parse("keepalive_requests 7;\nresponse_timeout 2500ms;\n"
              "server { root /; access_log stderr; location / { return 404; } }");
    same_conf(a, b);
    assert_string_equal(a->servers[0].access_logs[0].path, "stderr");
    assert_int_equal(a->servers[0].limits.keepalive_requests, 7);
    pt_conf_free(a);
    pt_conf_free(b);
}

static void fails_with(const pt_server_options *o, const char *msg)
{
    pt_conf *c = (pt_conf *)&c;
    char err[512] = "";
    int rc = pt_options_conf(&c, o, err, sizeof err);
    if (rc != -EINVAL || strcmp(err, msg) != 0)
        fail_msg("rc %d, \"%s\"\nwant \"%s\"", rc, err, msg);
    assert_null(c);
}

/* A wrong option is named in the message. */
static void test_wrong_options_are_named(void **state)
{
    pt_server_options o;
    pt_server_options_init(&o);
    o.root = "";
    fails_with(&o, "pt_server_options: invalid path \"\" in \"root\"");
    o.root = "a\nb";
    fails_with(&o, "pt_server_options: \"root\" holds a control character");
    o.root = NULL;
    o.access_log = "";
    fails_with(&o, "pt_server_options: invalid path \"\" in \"access_log\"");
    o.access_log = NULL;
    o.error_log = "off";
    fails_with(
        &o, "pt_server_options: \"error_log off\" is not supported, use \"error_log stderr crit\"");
    o.error_log = "log\t";
    fails_with(&o, "pt_server_options: \"error_log\" holds a control character");
    o.error_log = NULL;
    o.tls_certificate = "cert.pem";
    fails_with(&o, "a TLS certificate needs its key, and a key its certificate");
    o.tls_certificate_key = "data:xyz";
    fails_with(&o, "pt_server_options: \"tls_certificate_key\" takes a file name");
    o.tls_certificate = "";
    o.tls_certificate_key = "key.pem";
    fails_with(&o, "pt_server_options: invalid path \"\" in \"tls_certificate\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_defaults_are_those_of_a_server_block),
        NOTHING_LEFT_TEST(test_each_option_as_its_directive),
        NOTHING_LEFT_TEST(test_wrong_options_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
