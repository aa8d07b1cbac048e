/*
 * The HTTP/1 layer (server/http1/conn.c) over the pair transport, no socket: the test writes
 * requests into a pipe, handlers of its own answer them (at once, later, streamed, reading the
 * body), and what comes out of the other pipe is compared byte for byte. Pipelining (answers
 * in order, one write for a batch), keep-alive decisions, the connection timer's phases (the
 * deadline each phase sets, and what happens when it passes), malformed requests and limits,
 * and a client that leaves while its answer is being written.
 *
 * Every test ends with nothing left (tests/support.h): no custodian, buffer, watcher or fd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support.h"
#include "tests/support/http1.h"

/* Every limit of its own size, so a deadline tells which phase set it; a test's server may
 * override one (`extra`). */
#define CONF(extra)                                                                                \
    "request_read_timeout 100s;\n"                                                                 \
    "response_timeout 200s;\n"                                                                     \
    "keepalive_timeout 300s;\n"                                                                    \
    "request_body_timeout 400s;\n"                                                                 \
    "response_send_timeout 500s;\n"                                                                \
    "lingering_timeout 600s;\n"                                                                    \
    "max_request_line_length 100;\n"                                                               \
    "max_request_headers 4;\n"                                                                     \
    "max_request_header_length 200;\n"                                                             \
    "max_request_body_length 16;\n"                                                                \
    "server {\n    server_name h1.test;\n    server_tokens off;\n" extra "}\n"

/* ---- the test's handlers ---- */

typedef struct app {
    pt_request *held;     /* a request answered later, or streaming */
    int aborts, released; /* its abort callback, and what it registered with its custodian */
    double remaining;     /* the connection's deadline, as the handler saw it first */
    char body[64];        /* what /body read */
    size_t body_len;
    int body_status;  /* the body callback's last status */
    int write_status; /* the last pt_response_write() of a stream */
} app;

static app the_app;
static h1_site *the_site;

static void on_abort(pt_request *req, void *data)
{
    app *a = data;
    a->aborts++;
    a->held = NULL;
}

static void on_release(void *data)
{
    ((app *)data)->released++;
}

/* Keeps `req` to answer later: told if it ends first, with a resource released when it ends. */
static void hold(app *a, pt_request *req)
{
    a->held = req;
    pt_request_on_abort(req, on_abort, a);
    pt_custodian_register(pt_request_custodian(req), on_release, a);
}

static void answer(pt_request *req, int status, const char *body, size_t len)
{
    pt_response r;
    pt_response_init(&r, status);
    r.content_type = "text/plain";
    r.body = body;
    r.body_len = len;
    assert_int_equal(pt_request_respond(req, &r), 0);
}

static void on_body(pt_request *req, const void *data, size_t len, int status, void *ud)
{
    app *a = ud;
    a->body_status = status;
    if (status == 0) {
        assert_true(a->body_len + len <= sizeof a->body);
        memcpy(a->body + a->body_len, data, len);
        a->body_len += len;
    } else if (status == PT_BODY_END) {
        answer(req, 200, a->body, a->body_len);
    }
}

static bool path_is(const pt_request *req, const char *p)
{
    return req->path.len == strlen(p) && memcmp(req->path.p, p, req->path.len) == 0;
}

/* /later: answered by the test; /stream: a chunked stream, its first piece now; /body: the
 * body read and echoed; /error/NNN: the built-in page for NNN; anything else: its path. */
static void route(pt_request *req)
{
    app *a = &the_app;
    if (!a->remaining)
        a->remaining = pt_timer_remaining(&the_site->c->timer);
    if (path_is(req, "/later")) {
        hold(a, req);
    } else if (path_is(req, "/stream")) {
        hold(a, req);
        pt_response r;
        pt_response_init(&r, 200);
        r.content_type = "text/plain";
        r.stream = true;
        r.stream_length = -1;
        assert_int_equal(pt_request_respond(req, &r), 0);
        assert_int_equal(pt_response_write(req, "part1", 5), 0);
    } else if (path_is(req, "/body")) {
        hold(a, req);
        pt_request_read_body(req, on_body, a);
    } else if (req->path.len == 10 && memcmp(req->path.p, "/error/", 7) == 0) {
        pt_request_respond_error(req, atoi(req->path.p + 7));
    } else {
        answer(req, 200, req->path.p, req->path.len);
    }
}

/* ---- expected bytes ---- */

/* The response to a request for `path` (the default handler), with `connection` ("" or a
 * "Connection: ...\r\n" line). */
static const char *ok(const char *path, const char *connection)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 512,
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\nContent-Type: text/plain\r\n"
             "Content-Length: %zu\r\n%s\r\n%s",
             strlen(path), connection, path);
    return b;
}

/* porter's built-in page for `status` (nginx's), with the head that carries it. */
static const char *error_page(int status, const char *reason, const char *connection)
{
    static char buf[2][1024];
    static int k;
    const char *page = status_page(status, reason);
    char *b = buf[k++ % 2];
    snprintf(b, 1024,
             "HTTP/1.1 %d %s\r\nServer: porter\r\nDate: {date}\r\nContent-Type: text/html\r\n"
             "Content-Length: %zu\r\n%s\r\n%s",
             status, reason, strlen(page), connection, page);
    return b;
}

#define CLOSE "Connection: close\r\n"
#define KEEP "Connection: keep-alive\r\n"

/* ---- fixture ---- */

static h1_site site;

static void open_site(const char *conf)
{
    memset(&the_app, 0, sizeof the_app);
    nothing_left_begin();
    h1_open(&site, conf, "/nonexistent", false, route);
    the_site = &site;
}

static void close_site(void)
{
    h1_close(&site);
    the_site = NULL;
}

/* The loop's time now, for a deadline set from here on. */
static double mark(void)
{
    ev_now_update(site.loop);
    return ev_now(site.loop);
}

/* The connection's deadline is `secs` after a moment between `from` and the loop's now. */
static void assert_deadline(double from, double secs)
{
    assert_true(pt_timer_is_armed(&site.c->timer));
    double set_at = site.c->timer.deadline - secs;
    if (set_at < from - 1e-6 || set_at > ev_now(site.loop) + 1e-6)
        fail_msg("the deadline is %.6f s away, not %.0f s (set %.6f s after the mark)",
                 site.c->timer.deadline - ev_now(site.loop), secs, set_at - from);
}

/* The connection is closed for writing (the client read end of stream); once the client's
 * input ends too, it is gone. */
static void assert_closed(void)
{
    h1_recv(&site);
    assert_true(site.p.eof);
    pair_shut(&site.p);
    h1_pump(&site);
    assert_int_equal(h1_live(&site), 0);
}

/* ---- pipelining ---- */

static void test_pipelined_requests_are_answered_in_order_in_one_write(void **state)
{
    open_site(CONF(""));
    h1_connect(&site);
    /* Three requests in one read, the second with a body nobody reads. */
    h1_send(&site, "GET /a HTTP/1.1\r\nHost: h1.test\r\n\r\n"
                   "POST /b HTTP/1.1\r\nHost: h1.test\r\nContent-Length: 5\r\n\r\n12345"
                   "GET /c HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    assert_int_equal(site.routes, 3);
    assert_int_equal(site.writes, 1);
    char want[2048];
    snprintf(want, sizeof want, "%s%s%s", ok("/a", ""), ok("/b", ""), ok("/c", ""));
    h1_expect(&site, want);
    assert_false(site.p.eof);
    assert_int_equal(site.c->requests, 3);

    /* A request split across reads is answered once it is whole. */
    h1_send(&site, "GET /d HTTP/1.1\r\nHo");
    assert_int_equal(site.routes, 3);
    h1_expect(&site, "");
    h1_send(&site, "st: h1.test\r\n\r\n");
    assert_int_equal(site.routes, 4);
    h1_expect(&site, ok("/d", ""));
    close_site();
}

static void test_a_later_answer_holds_the_next_request_back(void **state)
{
    open_site(CONF(""));
    h1_connect(&site);
    h1_send(&site, "GET /later HTTP/1.1\r\nHost: h1.test\r\n\r\n"
                   "GET /after HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    /* The handler keeps the first: the second waits for its answer, nothing is written. */
    assert_non_null(the_app.held);
    assert_int_equal(site.routes, 1);
    assert_int_equal(site.writes, 0);
    h1_expect(&site, "");
    assert_int_equal(site.c->state, PT_CONN_WRITING);

    /* Answered from outside the loop's callbacks: the second runs, both leave in one write. */
    site.writes = 0;
    answer(the_app.held, 200, "late", 4);
    assert_int_equal(site.routes, 2);
    assert_int_equal(site.writes, 1);
    assert_int_equal(the_app.released, 1); /* the first request's custodian went with it */
    assert_int_equal(the_app.aborts, 0);
    char want[1024];
    snprintf(want, sizeof want,
             "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\nContent-Type: text/plain\r\n"
             "Content-Length: 4\r\n\r\nlate%s",
             ok("/after", ""));
    h1_expect(&site, want);
    assert_int_equal(site.c->state, PT_CONN_IDLE);
    close_site();
}

/* ---- keep-alive ---- */

typedef struct keep_case {
    const char *request, *path, *connection;
    bool closes;
} keep_case;

static void test_keep_alive_decisions(void **state)
{
    static const keep_case cases[] = {
        /* HTTP/1.1 stays open unless asked to close */
        {"GET /a HTTP/1.1\r\nHost: h1.test\r\n\r\n", "/a", "", false},
        {"GET /a HTTP/1.1\r\nHost: h1.test\r\nConnection: keep-alive\r\n\r\n", "/a", "", false},
        {"GET /a HTTP/1.1\r\nHost: h1.test\r\nConnection: close\r\n\r\n", "/a", CLOSE, true},
        {"GET /a HTTP/1.1\r\nHost: h1.test\r\nConnection: Close\r\n\r\n", "/a", CLOSE, true},
        /* HTTP/1.0 closes unless asked to stay, and then says so */
        {"GET /a HTTP/1.0\r\n\r\n", "/a", CLOSE, true},
        {"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "/a", KEEP, false},
        {"GET /a HTTP/1.0\r\nHost: h1.test\r\nConnection: close\r\n\r\n", "/a", CLOSE, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const keep_case *k = &cases[i];
        open_site(CONF(""));
        h1_connect(&site);
        h1_send(&site, k->request);
        h1_expect(&site, ok(k->path, k->connection));
        if (k->closes) {
            assert_closed();
        } else {
            assert_false(site.p.eof);
            assert_int_equal(site.c->state, PT_CONN_IDLE);
        }
        close_site();
    }
}

static void test_keepalive_requests_bounds_a_connection(void **state)
{
    open_site(CONF("    keepalive_requests 3;\n"));
    h1_connect(&site);
    h1_send(&site, "GET /1 HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_expect(&site, ok("/1", ""));
    h1_send(&site, "GET /2 HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_expect(&site, ok("/2", ""));
    /* The third is the last: it says so, and a fourth sent with it is not read. */
    h1_send(&site, "GET /3 HTTP/1.1\r\nHost: h1.test\r\n\r\n"
                   "GET /4 HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_expect(&site, ok("/3", CLOSE));
    assert_int_equal(site.routes, 3);
    assert_closed();
    close_site();
}

static void test_errors_close_and_others_keep_the_connection(void **state)
{
    /* A handler's 404 keeps the connection; its 400 closes it, as porter's own would. */
    open_site(CONF(""));
    h1_connect(&site);
    h1_send(&site, "GET /error/404 HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_expect(&site, error_page(404, "Not Found", ""));
    assert_false(site.p.eof);
    h1_send(&site, "GET /error/400 HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_expect(&site, error_page(400, "Bad Request", CLOSE));
    assert_closed();
    close_site();
}

static void test_a_draining_manager_ends_keep_alive(void **state)
{
    open_site(CONF(""));
    h1_connect(&site);
    h1_send(&site, "GET /later HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    pt_connmgr_retire(site.m, PT_TIMEOUT_NONE);
    answer(the_app.held, 200, "/x", 2);
    h1_expect(&site, ok("/x", CLOSE));
    assert_closed();
    close_site();
}

/* ---- timer phases ---- */

static void test_each_phase_sets_its_deadline(void **state)
{
    open_site(CONF(""));
    /* A new connection waits for its first request. */
    double t = mark();
    h1_connect(&site);
    assert_deadline(t, 100);
    assert_int_equal(site.c->state, PT_CONN_READING);

    /* A head in pieces: request_read_timeout from its first byte, not moved by the rest. */
    usleep(2000);
    t = mark();
    h1_send(&site, "GET /later HTTP/1.1\r\n");
    assert_deadline(t, 100);
    double head_deadline = site.c->timer.deadline;
    usleep(2000);
    h1_send(&site, "Host: h1.test\r\n");
    usleep(2000);
    h1_send(&site, "X-Slow: 1\r\n");
    assert_true(site.c->timer.deadline == head_deadline);

    /* The handler: response_timeout, from before it runs (it may move it). */
    usleep(2000);
    t = mark();
    h1_send(&site, "\r\n");
    assert_true(fabs(the_app.remaining - 200) < 1e-6);
    assert_deadline(t, 200);
    assert_int_equal(site.c->state, PT_CONN_WRITING);
    t = mark();
    pt_request_reset_timeout(the_app.held, 50);
    assert_deadline(t, 50);
    double before = site.c->timer.deadline;
    pt_request_adjust_timeout(the_app.held, 25);
    assert_true(fabs(site.c->timer.deadline - (before + 25)) < 1e-6);

    /* Answered: idle between requests, keepalive_timeout. */
    t = mark();
    answer(the_app.held, 200, "/x", 2);
    h1_expect(&site, ok("/x", ""));
    assert_deadline(t, 300);
    assert_int_equal(site.c->state, PT_CONN_IDLE);

    /* A body read by its handler: request_body_timeout, restarted by every piece. */
    the_app.remaining = 0;
    t = mark();
    h1_send(&site, "POST /body HTTP/1.1\r\nHost: h1.test\r\nContent-Length: 10\r\n\r\n01234");
    assert_true(fabs(the_app.remaining - 200) < 1e-6); /* the handler's, before it read */
    assert_deadline(t, 400);
    usleep(2000);
    t = mark();
    h1_send(&site, "567");
    assert_deadline(t, 400);
    h1_send(&site, "89");
    char want[512];
    snprintf(want, sizeof want, "%s", ok("0123456789", ""));
    h1_expect(&site, want);
    assert_int_equal(the_app.body_status, PT_BODY_END);

    /* A response the client does not take: response_send_timeout per stall. */
    static char big[200 * 1024];
    memset(big, 'b', sizeof big);
    pair_send(&site.p, "GET /later HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    ev_run(site.loop, EVRUN_NOWAIT);
    t = mark();
    answer(the_app.held, 200, big, sizeof big);
    assert_true(pt_outq_pending(&site.c->out) > 0); /* the pipe holds 64 KiB */
    assert_deadline(t, 500);
    assert_int_equal(site.c->state, PT_CONN_WRITING);
    /* Room made by the client restarts it. */
    usleep(2000);
    t = mark();
    h1_recv(&site);
    ev_run(site.loop, EVRUN_NOWAIT);
    assert_deadline(t, 500);
    /* Taken whole, the connection is idle again. */
    for (int i = 0; i < 100 && !pt_outq_is_empty(&site.c->out); i++)
        h1_pump(&site);
    static const char head[] = "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\n"
                               "Content-Type: text/plain\r\nContent-Length: 204800\r\n\r\n";
    char *whole = malloc(sizeof head + sizeof big);
    assert_non_null(whole);
    memcpy(whole, head, sizeof head - 1);
    memcpy(whole + sizeof head - 1, big, sizeof big);
    whole[sizeof head - 1 + sizeof big] = '\0';
    h1_expect(&site, whole);
    free(whole);
    assert_int_equal(site.c->state, PT_CONN_IDLE);
    close_site();
}

static void test_a_new_connection_without_a_request_is_closed_in_time(void **state)
{
    open_site(CONF("    request_read_timeout 20ms;\n"));
    h1_connect(&site);
    h1_run_until_eof(&site, 10);
    h1_expect(&site, ""); /* nothing was asked: nothing is said */
    assert_int_equal(h1_live(&site), 0);
    close_site();
}

static void test_a_head_not_received_in_time_is_408(void **state)
{
    open_site(CONF("    request_read_timeout 20ms;\n"));
    /* The head's first bytes come with the connection: its time runs from them. */
    h1_connect_sending(&site, "GET /a HTTP/1.1\r\nHost: h1");
    assert_int_equal(site.c->state, PT_CONN_READING);
    h1_run_until_eof(&site, 10);
    h1_expect(&site, error_page(408, "Request Timeout", CLOSE));
    assert_int_equal(site.routes, 0);
    assert_closed();
    close_site();
}

static void test_a_handler_without_an_answer_in_time_is_503(void **state)
{
    open_site(CONF("    response_timeout 20ms;\n"));
    h1_connect(&site);
    h1_send(&site, "GET /later HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_run_until_eof(&site, 10);
    h1_expect(&site, error_page(503, "Service Unavailable", CLOSE));
    /* The handler heard it, and what it registered was released. */
    assert_int_equal(the_app.aborts, 1);
    assert_int_equal(the_app.released, 1);
    assert_null(the_app.held);
    assert_closed();
    close_site();
}

static void test_an_idle_connection_is_closed_at_keepalive_timeout(void **state)
{
    open_site(CONF("    keepalive_timeout 20ms;\n"));
    h1_connect(&site);
    h1_send(&site, "GET /a HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_run_until_eof(&site, 10);
    h1_expect(&site, ok("/a", "")); /* the answer, and nothing after it */
    assert_int_equal(h1_live(&site), 0);
    close_site();
}

static void test_a_stalled_body_ends_the_request(void **state)
{
    /* Discarded after the answer: the connection closes, nothing more is said. */
    open_site(CONF("    request_body_timeout 20ms;\n"));
    h1_connect(&site);
    h1_send(&site, "POST /a HTTP/1.1\r\nHost: h1.test\r\nContent-Length: 10\r\n\r\n0123");
    h1_run_until_eof(&site, 10);
    h1_expect(&site, ok("/a", ""));
    assert_int_equal(h1_live(&site), 0);
    close_site();

    /* Read by its handler, which waits for the rest: it is told, and the client gets a 408
     * (nginx's client_body_timeout). */
    open_site(CONF("    request_body_timeout 20ms;\n"));
    h1_connect(&site);
    h1_send(&site, "POST /body HTTP/1.1\r\nHost: h1.test\r\nContent-Length: 10\r\n\r\n0123");
    assert_int_equal(the_app.body_len, 4);
    h1_run_until_eof(&site, 10);
    h1_expect(&site, error_page(408, "Request Timeout", CLOSE));
    assert_int_equal(the_app.aborts, 1);
    assert_int_equal(the_app.released, 1);
    assert_closed();
    close_site();
}

/* ---- malformed requests and limits ---- */

typedef struct error_case {
    const char *request;
    int status;
    const char *reason;
} error_case;

static void test_refused_requests_are_answered_and_closed(void **state)
{
    char long_target[128], many_headers[256], long_header[512];
    snprintf(long_target, sizeof long_target, "GET /%0*d HTTP/1.1\r\nHost: h1.test\r\n\r\n", 90, 0);
    snprintf(many_headers, sizeof many_headers,
             "GET / HTTP/1.1\r\nHost: h1.test\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
    snprintf(long_header, sizeof long_header, "GET / HTTP/1.1\r\nHost: h1.test\r\nX: %0*d\r\n\r\n",
             250, 0);
    const error_case cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 400, "Bad Request"}, /* no Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Bad Request"},
        {"GET / HTTP/1.1\r\nHost: h1.test\r\nX: a\r\n b\r\n\r\n", 400, "Bad Request"}, /* fold */
        {"GET /a#b HTTP/1.1\r\nHost: h1.test\r\n\r\n", 400, "Bad Request"},
        {"\x01\x02 / HTTP/1.1\r\n\r\n", 400, "Bad Request"},
        {"POST / HTTP/1.1\r\nHost: h1.test\r\nContent-Length: 17\r\n\r\n", 413,
         "Content Too Large"},
        {long_target, 414, "URI Too Long"},
        {many_headers, 431, "Request Header Fields Too Large"},
        {long_header, 431, "Request Header Fields Too Large"},
        {"FOO / HTTP/1.1\r\nHost: h1.test\r\n\r\n", 501, "Not Implemented"},
        {"POST / HTTP/1.1\r\nHost: h1.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
         "Not Implemented"},
        {"GET / HTTP/1.2\r\nHost: h1.test\r\n\r\n", 505, "HTTP Version Not Supported"},
        {"GET / HTTP/2.0\r\nHost: h1.test\r\n\r\n", 505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const error_case *e = &cases[i];
        open_site(CONF(""));
        h1_connect(&site);
        h1_send(&site, e->request);
        h1_expect(&site, error_page(e->status, e->reason, CLOSE));
        assert_int_equal(site.routes, 0); /* no handler saw it */
        pt_connmgr_stats st;
        pt_connmgr_get_stats(site.m, &st);
        assert_int_equal(st.invalid, 1);
        /* What the client sends after it is read and dropped until it stops. */
        assert_int_equal(site.c->state, PT_CONN_LINGERING);
        pair_send(&site.p, "GET / HTTP/1.1\r\nHost: h1.test\r\n\r\n");
        h1_pump(&site);
        h1_expect(&site, "");
        assert_closed();
        close_site();
    }
}

static void test_a_bad_request_after_good_ones_keeps_their_answers(void **state)
{
    open_site(CONF(""));
    h1_connect(&site);
    h1_send(&site, "GET /a HTTP/1.1\r\nHost: h1.test\r\n\r\n"
                   "GET /b HTTP/1.1\r\nHost: h1.test\r\n\r\n"
                   "GET /c HTTP/1.1\r\n\r\n");
    char want[2048];
    snprintf(want, sizeof want, "%s%s%s", ok("/a", ""), ok("/b", ""),
             error_page(400, "Bad Request", CLOSE));
    h1_expect(&site, want);
    assert_int_equal(site.writes, 1);
    assert_int_equal(site.routes, 2);
    assert_closed();
    close_site();
}

/* ---- the client leaves ---- */

static const char stream_head[] = "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: {date}\r\n"
                                  "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "5\r\npart1\r\n";

static void test_a_client_leaving_mid_response_aborts_the_handler(void **state)
{
    open_site(CONF(""));
    h1_connect(&site);
    h1_send(&site, "GET /stream HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_expect(&site, stream_head);
    assert_int_equal(the_app.aborts, 0);
    /* The client goes: its input ends while the answer is unfinished. */
    pair_client_close(&site.p);
    h1_pump(&site);
    assert_int_equal(the_app.aborts, 1);
    assert_int_equal(the_app.released, 1);
    assert_int_equal(h1_live(&site), 0);
    close_site();

    /* The client stops reading: the next piece cannot be written, and the handler hears it. */
    open_site(CONF(""));
    h1_connect(&site);
    h1_send(&site, "GET /stream HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_expect(&site, stream_head);
    close(site.p.from_conn);
    site.p.from_conn = -1;
    assert_true(pt_response_write(the_app.held, "part2", 5) < 0);
    assert_int_equal(the_app.aborts, 1);
    assert_int_equal(the_app.released, 1);
    h1_pump(&site);
    assert_int_equal(h1_live(&site), 0);
    close_site();
}

static void test_a_stream_ends_with_its_last_chunk(void **state)
{
    open_site(CONF(""));
    h1_connect(&site);
    h1_send(&site, "GET /stream HTTP/1.1\r\nHost: h1.test\r\n\r\n"
                   "GET /next HTTP/1.1\r\nHost: h1.test\r\n\r\n");
    h1_expect(&site, stream_head);
    assert_int_equal(site.routes, 1);
    pt_request *req = the_app.held;
    assert_int_equal(pt_response_write(req, "22", 2), 0);
    h1_pump(&site);
    h1_expect(&site, "2\r\n22\r\n");
    assert_int_equal(pt_response_end(req), 0);
    h1_pump(&site);
    char want[1024];
    snprintf(want, sizeof want, "0\r\n\r\n%s", ok("/next", ""));
    h1_expect(&site, want);
    assert_int_equal(the_app.aborts, 0);
    assert_int_equal(the_app.released, 1);
    close_site();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_requests_are_answered_in_order_in_one_write),
        cmocka_unit_test(test_a_later_answer_holds_the_next_request_back),
        cmocka_unit_test(test_keep_alive_decisions),
        cmocka_unit_test(test_keepalive_requests_bounds_a_connection),
        cmocka_unit_test(test_errors_close_and_others_keep_the_connection),
        cmocka_unit_test(test_a_draining_manager_ends_keep_alive),
        cmocka_unit_test(test_each_phase_sets_its_deadline),
        cmocka_unit_test(test_a_new_connection_without_a_request_is_closed_in_time),
        cmocka_unit_test(test_a_head_not_received_in_time_is_408),
        cmocka_unit_test(test_a_handler_without_an_answer_in_time_is_503),
        cmocka_unit_test(test_an_idle_connection_is_closed_at_keepalive_timeout),
        cmocka_unit_test(test_a_stalled_body_ends_the_request),
        cmocka_unit_test(test_refused_requests_are_answered_and_closed),
        cmocka_unit_test(test_a_bad_request_after_good_ones_keeps_their_answers),
        cmocka_unit_test(test_a_client_leaving_mid_response_aborts_the_handler),
        cmocka_unit_test(test_a_stream_ends_with_its_last_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
