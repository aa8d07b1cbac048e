/* The sites server.c builds from a conf (it is included to reach them): what each address
 * takes from its listens and from its default server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "server/server.c"
#include "tests/support.h"

/* A port that was free a moment ago: several server blocks must name the same one. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* The site of `host`:`port` in `s`. */
static const pt_site *site_of(const pt_server *s, const char *host, int port)
{
    char p[8];
    snprintf(p, sizeof p, "%d", port);
    for (size_t i = 0; i < s->nsites; i++) {
        const pt_conf_listen *l = s->sites[i]->listen;
        if (strcmp(l->host, host) == 0 && strcmp(l->port, p) == 0)
            return s->sites[i];
    }
    fail_msg("no site %s:%d", host, port);
    return NULL;
}

/* An address offers HTTP/2 when any of its listens says http2 (whichever server's), or when its
 * default server says `http2 on`; its settings are its default server's. */
static void test_sites_take_http2_from_listens_and_the_default_server(void **state)
{
    char dir[PATH_MAX], conf[PATH_MAX], text[2048];
    temp_dir_make(dir, sizeof dir, "server-sites");
    int port = free_port();
    snprintf(text, sizeof text,
             "error_log stderr crit;\n"
             "root .;\n"
             "http2_max_settings 9;\n"
             /* .1: B (http2 on) is the default; A (first, http2 off) is not */
             "server { listen 127.0.0.1:%d; listen 127.0.0.2:%d; "
             "http2_max_concurrent_streams 7; }\n"
             "server { listen 127.0.0.1:%d default_server; http2 on; http2_max_frame_size 32k; }\n"
             /* .2: A is the default (first); C's listen says http2, C's settings do not apply */
             "server { listen 127.0.0.2:%d http2; listen 127.0.0.3:%d; "
             "http2_max_concurrent_streams 5; }\n"
             /* .3: C is the default, with http2 off and no http2 listen; D's `http2 on` is not
              * the default server's */
             "server { listen 127.0.0.3:%d; http2 on; }\n",
             port, port, port, port, port, port);
    temp_put_text(dir, "porter.conf", text);
    temp_path(conf, dir, "porter.conf");
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    pt_server *s = NULL;
    char err[512];
    if (pt_server_new(&s, loop, conf, dir, err, sizeof err) < 0)
        fail_msg("pt_server_new: %s", err);
    assert_int_equal(s->nsites, 3);

    const pt_site *one = site_of(s, "127.0.0.1", port);
    assert_true(one->http2);
    assert_false(one->http2_listen);
    assert_int_equal(one->h2.max_frame_size, 32 * 1024);
    assert_int_equal(one->h2.max_concurrent_streams, 128);
    assert_int_equal(one->h2.max_settings, 9);

    const pt_site *two = site_of(s, "127.0.0.2", port);
    assert_true(two->http2);
    assert_true(two->http2_listen);
    assert_int_equal(two->h2.max_concurrent_streams, 7);
    assert_int_equal(two->h2.max_frame_size, 16384);

    const pt_site *three = site_of(s, "127.0.0.3", port);
    assert_false(three->http2);
    assert_false(three->http2_listen);
    assert_int_equal(three->h2.max_concurrent_streams, 5);

    pt_server_free(s);
    ev_loop_destroy(loop);
    temp_dir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_sites_take_http2_from_listens_and_the_default_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
