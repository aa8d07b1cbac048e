/* The reverse proxy's own decisions, without sockets: what proxy_next_upstream retries and when,
 * and what of the heads it writes refuses line breaks (the proxy_set_header values it expands,
 * the upstream's header lines it passes on). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/handlers/proxy.c"
#include "tests/support.h"

/* ---- the heads it writes ---- */

static void test_a_set_header_value_with_a_line_break_is_refused(void **state)
{
    /* proxy_set_header's value goes through expand(); its literal text is put like the rest
     * (porter -t refuses such a value; this is the writer's own guard) */
    char buf[128];
    proxy_target t = {0};
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, sizeof buf);
    expand(&o, &t, NULL, "v\r\nX-Injected: 1");
    assert_true(o.forbidden);
    pt_h1_hbuf ok;
    pt_h1_hbuf_init(&ok, buf, sizeof buf);
    expand(&ok, &t, NULL, "plain value");
    assert_false(ok.forbidden);
    assert_int_equal(ok.len, 11);
}

static void test_upstream_header_lines_with_a_line_break_are_refused(void **state)
{
    /* a response field whose value holds a LF (as a looser parser might let through) is not
     * passed on to the client */
    static const char head[] = "HTTP/1.1 200 OK\r\nX-A: one\ntwo\r\nContent-Length: 0\r\n\r\n";
    pt_conf_proxy cf = {0};
    proxy_target t = {.conf = &cf};
    static pt_h1_response rs; /* (large) */
    rs.nfields = 1;
    rs.fields[0].name = (pt_h1_span){17, 3};
    rs.fields[0].value = (pt_h1_span){22, 7};
    char lines[256], ctype[64];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, lines, sizeof lines);
    passed_headers(&t, &rs, head, &o, ctype, sizeof ctype, false, NULL);
    assert_true(o.forbidden);
    /* and the same line without the LF is passed */
    rs.fields[0].value = (pt_h1_span){22, 3};
    pt_h1_hbuf o2;
    pt_h1_hbuf_init(&o2, lines, sizeof lines);
    passed_headers(&t, &rs, head, &o2, ctype, sizeof ctype, false, NULL);
    assert_false(o2.forbidden);
    assert_int_equal(o2.len, 10);
    assert_memory_equal(lines, "X-A: one\r\n", 10);
}

/* ---- proxy_next_upstream ---- */

/* A location's conf with proxy_next_upstream `flags`, no bound on tries, 10 s to retry in. */
static pt_conf_proxy conf_with(unsigned flags)
{
    return (pt_conf_proxy){.next_upstream = flags, .next_upstream_timeout = 10};
}

/* A GET whose first attempt began at 100 and whose request went upstream. */
static retry_facts get_sent(void)
{
    return (retry_facts){.attempts = 1, .first_attempt = 100, .idempotent = true, .sent_any = true};
}

static void test_a_failure_goes_on_when_its_flag_is_named(void **state)
{
    retry_facts f = get_sent();
    pt_conf_proxy error = conf_with(PT_NEXT_ERROR), timeout = conf_with(PT_NEXT_TIMEOUT);
    pt_conf_proxy both = conf_with(PT_NEXT_ERROR | PT_NEXT_TIMEOUT), off = conf_with(0);
    assert_int_equal(after_failure(&error, &f, -ECONNREFUSED, false, false, true, 101),
                     NEXT_SERVER);
    assert_int_equal(after_failure(&error, &f, -ECONNRESET, false, false, true, 101), NEXT_SERVER);
    assert_int_equal(after_failure(&error, &f, -ETIMEDOUT, false, false, true, 101), ANSWER_ERROR);
    assert_int_equal(after_failure(&timeout, &f, -ETIMEDOUT, false, false, true, 101), NEXT_SERVER);
    assert_int_equal(after_failure(&timeout, &f, -ECONNREFUSED, false, false, true, 101),
                     ANSWER_ERROR);
    assert_int_equal(after_failure(&both, &f, -ETIMEDOUT, false, false, true, 101), NEXT_SERVER);
    assert_int_equal(after_failure(&off, &f, -ECONNREFUSED, false, false, true, 101), ANSWER_ERROR);
    assert_int_equal(after_failure(&off, &f, -ETIMEDOUT, false, false, true, 101), ANSWER_ERROR);
}

static void test_nothing_is_retried_once_the_response_has_started(void **state)
{
    retry_facts f = get_sent();
    pt_conf_proxy all = conf_with(PT_NEXT_ERROR | PT_NEXT_TIMEOUT | PT_NEXT_NON_IDEMPOTENT);
    assert_int_equal(after_failure(&all, &f, -ECONNRESET, false, true, true, 101), ABANDON);
    assert_int_equal(after_failure(&all, &f, -ETIMEDOUT, false, true, true, 101), ABANDON);
    assert_int_equal(after_failure(&all, &f, 0, true, true, true, 101), ABANDON);
}

static void test_nothing_is_retried_for_a_client_gone(void **state)
{
    retry_facts f = get_sent();
    pt_conf_proxy all = conf_with(PT_NEXT_ERROR | PT_NEXT_TIMEOUT);
    assert_int_equal(after_failure(&all, &f, -ECONNRESET, false, false, false, 101), ANSWER_ERROR);
    assert_int_equal(after_failure(&all, &f, 0, true, false, false, 101), ANSWER_ERROR);
}

static void test_a_stale_pooled_connection_is_retried_whatever_the_flags(void **state)
{
    /* the server closed an idle connection as it was reused: the same server again */
    retry_facts f = get_sent();
    f.attempts = 5;
    pt_conf_proxy off = conf_with(0);
    off.next_upstream_tries = 1;
    assert_int_equal(after_failure(&off, &f, -ECONNRESET, true, false, true, 500), SAME_SERVER);
    /* what tells a stale connection: reused, nothing of the answer, reset or closed */
    assert_true(stale_failure(true, false, -ECONNRESET));
    assert_true(stale_failure(true, false, -EPIPE));
    assert_true(stale_failure(true, false, -ECONNABORTED));
    assert_true(stale_failure(true, false, 0));
    assert_false(stale_failure(false, false, -ECONNRESET)); /* a fresh connection */
    assert_false(stale_failure(true, true, -ECONNRESET));   /* part of the answer came */
    assert_false(stale_failure(true, false, -ETIMEDOUT));
    assert_false(stale_failure(true, false, -ECONNREFUSED));
}

static void test_post_lock_and_patch_are_not_idempotent(void **state)
{
    /* what proxy_next_upstream repeats only with `non_idempotent` */
    assert_false(method_idempotent(PT_METHOD_POST));
    assert_false(method_idempotent(PT_METHOD_PATCH));
    assert_false(method_idempotent(PT_METHOD_OTHER)); /* LOCK, MKCOL, anything porter does not
                                                         tell apart */
    assert_false(method_idempotent(PT_METHOD_CONNECT));
    assert_true(method_idempotent(PT_METHOD_GET));
    assert_true(method_idempotent(PT_METHOD_HEAD));
    assert_true(method_idempotent(PT_METHOD_PUT));
    assert_true(method_idempotent(PT_METHOD_DELETE));
    assert_true(method_idempotent(PT_METHOD_OPTIONS));
}

static void test_non_idempotent_requests_go_again_only_with_non_idempotent(void **state)
{
    retry_facts post = {.attempts = 1, .first_attempt = 100, .idempotent = false};
    pt_conf_proxy error = conf_with(PT_NEXT_ERROR);
    pt_conf_proxy non_idempotent = conf_with(PT_NEXT_ERROR | PT_NEXT_NON_IDEMPOTENT);
    /* nothing of it went upstream (the connect failed): it may go anywhere */
    assert_true(may_go_again(&error, &post, PT_NEXT_ERROR, 101));
    post.sent_any = true;
    assert_false(may_go_again(&error, &post, PT_NEXT_ERROR, 101));
    assert_true(may_go_again(&non_idempotent, &post, PT_NEXT_ERROR, 101));
    assert_int_equal(after_failure(&error, &post, -ECONNRESET, false, false, true, 101),
                     ANSWER_ERROR);
    assert_int_equal(after_failure(&non_idempotent, &post, -ECONNRESET, false, false, true, 101),
                     NEXT_SERVER);
    /* and a status answer the same */
    pt_conf_proxy on_503 = conf_with(PT_NEXT_HTTP_503);
    pt_conf_proxy on_503_ni = conf_with(PT_NEXT_HTTP_503 | PT_NEXT_NON_IDEMPOTENT);
    assert_false(next_for_answer(&on_503, &post, next_flag(503), true, 101));
    assert_true(next_for_answer(&on_503_ni, &post, next_flag(503), true, 101));
}

static void test_a_request_whose_body_was_read_is_not_sent_twice(void **state)
{
    retry_facts put = get_sent();
    put.body_consumed = true;
    pt_conf_proxy all = conf_with(PT_NEXT_ERROR | PT_NEXT_TIMEOUT | PT_NEXT_NON_IDEMPOTENT);
    assert_false(may_go_again(&all, &put, PT_NEXT_ERROR, 101));
    assert_int_equal(after_failure(&all, &put, -ECONNRESET, false, false, true, 101), ANSWER_ERROR);
    /* unless none of it went upstream */
    put.sent_any = false;
    assert_true(may_go_again(&all, &put, PT_NEXT_ERROR, 101));
}

static void test_tries_and_time_bound_the_next_attempts(void **state)
{
    retry_facts f = get_sent();
    pt_conf_proxy c = conf_with(PT_NEXT_ERROR);
    c.next_upstream_tries = 3;
    f.attempts = 2;
    assert_true(may_go_again(&c, &f, PT_NEXT_ERROR, 101));
    f.attempts = 3;
    assert_false(may_go_again(&c, &f, PT_NEXT_ERROR, 101));
    assert_int_equal(after_failure(&c, &f, -ECONNREFUSED, false, false, true, 101), ANSWER_ERROR);
    c.next_upstream_tries = 0; /* no bound */
    f.attempts = 1000;
    assert_true(may_go_again(&c, &f, PT_NEXT_ERROR, 101));
    /* proxy_next_upstream_timeout 10s from the first attempt, at 100 */
    assert_true(may_go_again(&c, &f, PT_NEXT_ERROR, 109.9));
    assert_false(may_go_again(&c, &f, PT_NEXT_ERROR, 110));
    assert_int_equal(after_failure(&c, &f, -ECONNREFUSED, false, false, true, 111), ANSWER_ERROR);
    c.next_upstream_timeout = PT_TIMEOUT_NONE;
    assert_true(may_go_again(&c, &f, PT_NEXT_ERROR, 1e9));
}

static void test_answers_that_send_the_request_on(void **state)
{
    const struct {
        int status;
        unsigned flag;
    } map[] = {
        {500, PT_NEXT_HTTP_500},
        {502, PT_NEXT_HTTP_502},
        {503, PT_NEXT_HTTP_503},
        {504, PT_NEXT_HTTP_504},
        {429, PT_NEXT_HTTP_429},
        {403, PT_NEXT_HTTP_403},
        {404, PT_NEXT_HTTP_404},
        {200, 0},
        {301, 0},
        {501, 0},
        {400, 0},
        {401, 0},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        assert_int_equal(next_flag(map[i].status), map[i].flag);
    retry_facts f = get_sent();
    pt_conf_proxy c = conf_with(PT_NEXT_HTTP_503 | PT_NEXT_INVALID_HEADER);
    assert_true(next_for_answer(&c, &f, next_flag(503), true, 101));
    assert_false(next_for_answer(&c, &f, next_flag(503), false, 101)); /* the last server's */
    assert_false(next_for_answer(&c, &f, next_flag(500), true, 101));  /* not named */
    assert_false(next_for_answer(&c, &f, next_flag(200), true, 101));
    assert_true(next_for_answer(&c, &f, PT_NEXT_INVALID_HEADER, true, 101));
    assert_false(next_for_answer(&c, &f, PT_NEXT_INVALID_HEADER, false, 101));
    f.attempts = 2;
    c.next_upstream_tries = 2;
    assert_false(next_for_answer(&c, &f, next_flag(503), true, 101));
}

static void test_servers_left(void **state)
{
    assert_true(server_left(0, 1));
    assert_false(server_left(1, 1));
    assert_true(server_left(UINT64_C(0x3), 3));
    assert_false(server_left(UINT64_C(0x7), 3));
    assert_true(server_left(UINT64_C(0x5), 3));
    assert_false(server_left(UINT64_C(0xf), 3)); /* (bits beyond the group's are no servers) */
    assert_true(server_left(~UINT64_C(0) >> 1, 64));
    assert_false(server_left(~UINT64_C(0), 64));
    assert_false(server_left(~UINT64_C(0), 100)); /* (only 64 are told apart) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_a_set_header_value_with_a_line_break_is_refused),
        NOTHING_LEFT_TEST(test_upstream_header_lines_with_a_line_break_are_refused),
        NOTHING_LEFT_TEST(test_a_failure_goes_on_when_its_flag_is_named),
        NOTHING_LEFT_TEST(test_nothing_is_retried_once_the_response_has_started),
        NOTHING_LEFT_TEST(test_nothing_is_retried_for_a_client_gone),
        NOTHING_LEFT_TEST(test_a_stale_pooled_connection_is_retried_whatever_the_flags),
        NOTHING_LEFT_TEST(test_post_lock_and_patch_are_not_idempotent),
        NOTHING_LEFT_TEST(test_non_idempotent_requests_go_again_only_with_non_idempotent),
        NOTHING_LEFT_TEST(test_a_request_whose_body_was_read_is_not_sent_twice),
        NOTHING_LEFT_TEST(test_tries_and_time_bound_the_next_attempts),
        NOTHING_LEFT_TEST(test_answers_that_send_the_request_on),
        NOTHING_LEFT_TEST(test_servers_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
