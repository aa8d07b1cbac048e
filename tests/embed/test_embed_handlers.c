/*
 * Embedding porter: handlers registered through the public API (porter.h), on a real libev
 * loop, answered over real sockets. Handlers answering at once and later, responses streamed
 * over time and request bodies read as they arrive, routing by method and path, the request's
 * accessors, reply validation, file bodies, conf-file servers with handlers, TLS, and several
 * servers on one loop. Every test ends with nothing left (custodians, buffers, fds, watchers).
 */
#include "harness.h"
#include "../support/cert.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

static void copy_slice(char *dst, size_t cap, pt_slice s)
{
    size_t n = s.ptr ? (s.len < cap ? s.len : cap - 1) : 0;
    memcpy(dst, s.ptr ? s.ptr : "", n);
    dst[n] = '\0';
}

static bool client_ok(const client *c)
{
    return c->err == 0 && c->len > 0;
}

/* ---- a handler that answers at once, and what it saw ---- */

typedef struct seen {
    int calls;
    char method[16], target[128], path[128], query[64], host[64], decoded[128];
    char header[64], first_name[32], first_value[64];
    bool absent_is_null;
    int version;
    size_t nheaders;
    bool header_past_end;
    int peer_rc, local_rc, peer_port, local_port;
    char scheme[8];
    pt_server *server;
    int64_t content_length;
    bool has_body;
    int reply_rc;
} seen;

static void on_inspect(pt_request *req, void *data)
{
    seen *x = data;
    x->calls++;
    copy_slice(x->method, sizeof x->method, pt_request_method(req));
    copy_slice(x->target, sizeof x->target, pt_request_target(req));
    copy_slice(x->path, sizeof x->path, pt_request_path(req));
    copy_slice(x->query, sizeof x->query, pt_request_query(req));
    copy_slice(x->host, sizeof x->host, pt_request_host(req));
    copy_slice(x->header, sizeof x->header, pt_request_header_value(req, "x-TEST"));
    x->absent_is_null = pt_request_header_value(req, "x-absent").ptr == NULL;
    if (pt_request_decoded_path(req, x->decoded, sizeof x->decoded) < 0)
        x->decoded[0] = '\0';
    x->version = pt_request_version(req);
    x->nheaders = pt_request_header_count(req);
    pt_slice name, value;
    if (pt_request_header_at(req, 0, &name, &value)) {
        copy_slice(x->first_name, sizeof x->first_name, name);
        copy_slice(x->first_value, sizeof x->first_value, value);
    }
    x->header_past_end = pt_request_header_at(req, x->nheaders, &name, NULL);
    struct sockaddr_storage peer, local;
    socklen_t plen = 0, llen = 0;
    x->peer_rc = pt_request_peer(req, &peer, &plen);
    x->local_rc = pt_request_local(req, &local, &llen);
    if (x->peer_rc == 0 && plen == sizeof(struct sockaddr_in))
        x->peer_port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
    if (x->local_rc == 0 && llen == sizeof(struct sockaddr_in))
        x->local_port = ntohs(((struct sockaddr_in *)&local)->sin_port);
    snprintf(x->scheme, sizeof x->scheme, "%s", pt_request_scheme(req));
    x->server = pt_request_server(req);
    x->content_length = pt_request_content_length(req);
    x->has_body = pt_request_has_body(req);

    pt_field headers[] = {{"X-Reply", "yes"}, {"Location", "/api/created/1"}};
    pt_reply r;
    pt_reply_init(&r, 201);
    r.content_type = "text/plain";
    r.headers = headers;
    r.nheaders = 2;
    r.body = "created\n";
    r.body_len = 8;
    x->reply_rc = pt_respond_with(req, &r);
}

static void test_answer_at_once_with_accessors(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    int port;
    pt_server *s = server_new(f, &o, &port);
    seen x = {0};
    assert_int_equal(pt_server_handle(s, "GET", "/api/", PT_PATH_PREFIX, on_inspect, &x), 0);
    assert_int_equal(pt_server_start(s), 0);

    client *c = fetch(f, port,
                      "GET /api/a%20b/../c?x=1&y=2 HTTP/1.1\r\nHost: example.test\r\n"
                      "X-Test:  hello there  \r\nConnection: close\r\n\r\n");
    assert_true(client_ok(c));
    assert_int_equal(status_of(c), 201);
    char v[128];
    assert_string_equal(header_of(c, "X-Reply", v, sizeof v), "yes");
    assert_string_equal(header_of(c, "Location", v, sizeof v), "/api/created/1");
    assert_string_equal(header_of(c, "Content-Type", v, sizeof v), "text/plain");
    assert_string_equal(header_of(c, "Content-Length", v, sizeof v), "8");
    assert_string_equal(body_of(c), "created\n");

    assert_int_equal(x.calls, 1);
    assert_int_equal(x.reply_rc, 0);
    assert_string_equal(x.method, "GET");
    assert_string_equal(x.target, "/api/a%20b/../c?x=1&y=2");
    assert_string_equal(x.path, "/api/a%20b/../c");
    assert_string_equal(x.query, "x=1&y=2");
    assert_string_equal(x.host, "example.test");
    assert_string_equal(x.decoded, "/api/c");
    assert_string_equal(x.header, "hello there");
    assert_true(x.absent_is_null);
    assert_int_equal(x.version, 11);
    assert_int_equal(x.nheaders, 3);
    assert_string_equal(x.first_name, "Host");
    assert_string_equal(x.first_value, "example.test");
    assert_false(x.header_past_end);
    assert_int_equal(x.peer_rc, 0);
    assert_int_not_equal(x.peer_port, 0);
    assert_int_equal(x.local_rc, 0);
    assert_int_equal(x.local_port, port);
    assert_string_equal(x.scheme, "http");
    assert_ptr_equal(x.server, s);
    assert_int_equal(x.content_length, -1);
    assert_false(x.has_body);

    /* HTTP/1.0 without a Host; a query-less target has an empty query. */
    c = fetch(f, port, "GET /api/x HTTP/1.0\r\n\r\n");
    assert_int_equal(status_of(c), 201);
    assert_int_equal(x.version, 10);
    assert_string_equal(x.query, "");
    assert_string_equal(x.host, "");
    server_stop_free(f, s);
    fixture_free(f);
}

/* ---- handlers that answer later ---- */

typedef struct later {
    struct ev_loop *loop;
    pt_request *req;
    ev_timer timer;
    double delay, reset_to, adjust_by;
    int calls, aborts, released, answered;
} later;

static void later_release(void *data)
{
    later *l = data;
    l->released++;
    ev_timer_stop(l->loop, &l->timer);
}

static void later_abort(pt_request *req, void *data)
{
    later *l = data;
    l->aborts++;
}

static void later_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    later *l = w->data;
    l->answered++;
    pt_respond(l->req, 200, "text/plain", "later\n", 6);
}

static void on_later(pt_request *req, void *data)
{
    later *l = data;
    l->calls++;
    l->req = req;
    /* Registered before the timer starts: however the request ends, the timer stops. */
    assert_non_null(pt_custodian_register(pt_request_custodian(req), later_release, l));
    ev_timer_init(&l->timer, later_fire, l->delay, 0.);
    l->timer.data = l;
    ev_timer_start(l->loop, &l->timer);
    pt_request_on_abort(req, later_abort, l);
    if (l->reset_to > 0)
        pt_request_reset_timeout(req, l->reset_to);
    if (l->adjust_by > 0)
        pt_request_adjust_timeout(req, l->adjust_by);
}

static void test_answer_later_from_a_timer(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    pt_limits limits;
    pt_limits_init(&limits);
    limits.response_timeout = 0.3;
    o.limits = &limits;
    int port;
    pt_server *s = server_new(f, &o, &port);
    later l = {.loop = f->loop, .delay = 0.1};
    assert_int_equal(pt_server_handle(s, NULL, "/later", PT_PATH_EXACT, on_later, &l), 0);
    assert_int_equal(pt_server_start(s), 0);

    /* Within the response timeout. */
    double t0 = now_of(f);
    client *c = fetch(f, port, "GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(c), 200);
    assert_string_equal(body_of(c), "later\n");
    assert_true(now_of(f) - t0 >= 0.09);
    assert_int_equal(l.answered, 1);
    assert_int_equal(l.released, 1); /* the request's custodian went with the request */
    assert_int_equal(l.aborts, 0);

    /* Beyond it: 503, the handler is told, and its resources are released. */
    l = (later){.loop = f->loop, .delay = 5};
    c = fetch(f, port, "GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(c), 503);
    assert_int_equal(l.aborts, 1);
    assert_int_equal(l.released, 1);
    assert_int_equal(l.answered, 0);

    /* A handler that knows it needs longer resets the connection's timeout. */
    l = (later){.loop = f->loop, .delay = 0.6, .reset_to = 3};
    c = fetch(f, port, "POST /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(c), 200);
    assert_int_equal(l.aborts, 0);
    assert_int_equal(l.released, 1);

    /* adjust moves the deadline later by the amount given. */
    l = (later){.loop = f->loop, .delay = 0.5, .adjust_by = 0.6};
    c = fetch(f, port, "GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(c), 200);
    assert_int_equal(l.aborts, 0);
    server_stop_free(f, s);
    fixture_free(f);
}

/* ---- responses streamed over time ---- */

typedef struct streamer {
    struct ev_loop *loop;
    pt_request *req;
    ev_timer timer;
    const char *pieces[4];
    int next;
    int64_t length; /* -1: chunked */
    int write_rc[4], end_rc, overflow_rc, start_rc, writable;
    const char *fallback; /* written when a piece is refused as too long */
} streamer;

static void streamer_release(void *data)
{
    streamer *st = data;
    ev_timer_stop(st->loop, &st->timer);
}

static void streamer_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    streamer *st = w->data;
    const char *p = st->pieces[st->next];
    if (p) {
        int r = pt_response_write(st->req, p, strlen(p));
        st->write_rc[st->next++] = r;
        if (r == -EMSGSIZE && st->fallback) {
            st->overflow_rc = r;
            pt_response_write(st->req, st->fallback, strlen(st->fallback));
        }
        return;
    }
    st->end_rc = pt_response_end(st->req);
}

static void streamer_writable(pt_request *req, void *data)
{
    streamer *st = data;
    st->writable++;
}

static void on_stream(pt_request *req, void *data)
{
    streamer *st = data;
    st->req = req;
    st->next = 0;
    pt_custodian_register(pt_request_custodian(req), streamer_release, st);
    ev_timer_init(&st->timer, streamer_tick, 0.03, 0.03);
    st->timer.data = st;
    pt_response_on_writable(req, streamer_writable, st);
    st->start_rc = pt_respond_stream(req, 200, "text/plain", st->length);
    if (st->start_rc == 0)
        ev_timer_start(st->loop, &st->timer);
}

static void test_stream_response(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    int port;
    pt_server *s = server_new(f, &o, &port);
    streamer st = {.loop = f->loop, .pieces = {"one ", "two ", "three"}, .length = -1};
    assert_int_equal(pt_server_handle(s, "GET", "/stream", PT_PATH_EXACT, on_stream, &st), 0);
    assert_int_equal(pt_server_start(s), 0);

    /* Unknown length: chunked, one chunk per write. */
    client *c = fetch(f, port, "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(c), 200);
    char v[64], body[256];
    assert_string_equal(header_of(c, "Transfer-Encoding", v, sizeof v), "chunked");
    assert_null(header_of(c, "Content-Length", v, sizeof v));
    assert_true(strstr(body_of(c), "4\r\none \r\n") != NULL);
    long n = dechunk(body_of(c), body, sizeof body);
    assert_int_equal(n, 13);
    body[n] = '\0';
    assert_string_equal(body, "one two three");
    assert_int_equal(st.start_rc, 0);
    assert_int_equal(st.write_rc[0], 0);
    assert_int_equal(st.end_rc, 0);
    assert_true(st.writable >= 0);

    /* Known length: Content-Length, and a write past it is refused. */
    st.length = 13;
    st.pieces[2] = "three and more";
    st.fallback = "three";
    c = fetch(f, port, "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(c), 200);
    assert_string_equal(header_of(c, "Content-Length", v, sizeof v), "13");
    assert_string_equal(body_of(c), "one two three");
    assert_int_equal(st.overflow_rc, -EMSGSIZE);
    assert_int_equal(st.end_rc, 0);

    /* HTTP/1.0 and unknown length: the body ends with the connection. */
    st.length = -1;
    st.pieces[2] = "three";
    st.fallback = NULL;
    c = fetch(f, port, "GET /stream HTTP/1.0\r\n\r\n");
    assert_int_equal(status_of(c), 200);
    assert_null(header_of(c, "Transfer-Encoding", v, sizeof v));
    assert_string_equal(body_of(c), "one two three");
    assert_true(c->eof);

    /* HEAD: the head only, from the same handler. */
    c = fetch(f, port, "HEAD /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(c), 200);
    assert_string_equal(body_of(c), "");
    server_stop_free(f, s);
    fixture_free(f);
}

/* A handler that writes 16 KiB pieces to a client that does not read yet, until
 * pt_response_is_full() says to wait (at most FLOOD_MAX bytes), then waits for the writable
 * callback and ends the stream there. */
#define FLOOD_PIECE (16 * 1024)
#define FLOOD_MAX (64 << 20)

typedef struct flood {
    size_t written;   /* bytes queued before the queue was full */
    bool full;        /* pt_response_is_full() said so */
    int write_errors; /* pt_response_write() < 0 */
    int writable;     /* writable callbacks */
    bool full_when_writable;
    int end_rc;
} flood;

static void flood_writable(pt_request *req, void *data)
{
    flood *fl = data;
    fl->writable++;
    fl->full_when_writable = pt_response_is_full(req);
    fl->end_rc = pt_response_end(req);
}

static void on_flood(pt_request *req, void *data)
{
    flood *fl = data;
    static char piece[FLOOD_PIECE];
    memset(piece, 'x', sizeof piece);
    pt_response_on_writable(req, flood_writable, fl);
    assert_int_equal(pt_respond_stream(req, 200, "application/octet-stream", -1), 0);
    while (fl->written < FLOOD_MAX) {
        if (pt_response_write(req, piece, sizeof piece) < 0) {
            fl->write_errors++;
            return;
        }
        fl->written += sizeof piece;
        if ((fl->full = pt_response_is_full(req)))
            return;
    }
    pt_response_end(req); /* never full: the test fails on fl->full */
}

/* A client that sends a request, waits, then reads to the end and counts what came. */
typedef struct slow_reader {
    int port;
    size_t got;
    bool eof;
    int err;
    volatile bool done;
    fixture *f;
} slow_reader;

static void *slow_reader_main(void *arg)
{
    slow_reader *r = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_SECONDS};
    static const char request[] = "GET /flood HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        send(fd, request, sizeof request - 1, MSG_NOSIGNAL) < 0) {
        r->err = errno;
    } else {
        usleep(300 * 1000); /* the server's writes meet a full socket */
        char buf[65536];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
            r->got += (size_t)n;
        r->eof = n == 0;
        if (n < 0)
            r->err = errno;
    }
    if (fd >= 0)
        close(fd);
    r->done = true;
    ev_async_send(r->f->loop, &r->f->wake);
    return NULL;
}

static slow_reader *the_reader;

static bool reader_done(fixture *f)
{
    return the_reader->done;
}

static void test_stream_back_pressure(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    int port;
    pt_server *s = server_new(f, &o, &port);
    flood fl = {0};
    assert_int_equal(pt_server_handle(s, "GET", "/flood", PT_PATH_EXACT, on_flood, &fl), 0);
    assert_int_equal(pt_server_start(s), 0);

    slow_reader r = {.port = port, .f = f};
    the_reader = &r;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_reader_main, &r), 0);
    run_until(f, reader_done, WATCHDOG_SECONDS);
    pthread_join(t, NULL);

    /* The queue filled once the socket did, long before FLOOD_MAX; then it was written out,
     * the writable callback came, and the predicate said so. */
    assert_true(fl.full);
    assert_true(fl.written < FLOOD_MAX);
    assert_int_equal(fl.write_errors, 0);
    assert_int_equal(fl.writable, 1);
    assert_false(fl.full_when_writable);
    assert_int_equal(fl.end_rc, 0);
    /* Everything queued reached the client (with the head and the chunks' framing). */
    assert_int_equal(r.err, 0);
    assert_true(r.eof);
    assert_true(r.got > fl.written);
    server_stop_free(f, s);
    fixture_free(f);
}

/* ---- request bodies read as they arrive ---- */

typedef struct reader {
    struct ev_loop *loop;
    pt_request *req;
    ev_timer resume;
    char data[4096];
    size_t len;
    int pieces, ends, errors, last_error;
    bool pause_first, paused_once;
    double paused_at, resumed_at;
} reader;

static void reader_release(void *data)
{
    reader *rd = data;
    ev_timer_stop(rd->loop, &rd->resume);
}

static void reader_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    reader *rd = w->data;
    rd->resumed_at = ev_now(loop);
    pt_request_pause_body(rd->req, false);
}

static void reader_body(pt_request *req, const void *data, size_t len, int status, void *ud)
{
    reader *rd = ud;
    if (status < 0) {
        rd->errors++;
        rd->last_error = status;
        return;
    }
    if (status == PT_BODY_END) {
        rd->ends++;
        char reply[64];
        int n = snprintf(reply, sizeof reply, "%zu bytes in %d pieces", rd->len, rd->pieces);
        pt_respond(req, 200, "text/plain", reply, (size_t)n);
        return;
    }
    rd->pieces++;
    memcpy(rd->data + rd->len, data, len);
    rd->len += len;
    if (rd->pause_first && !rd->paused_once) {
        /* Back-pressure: no more delivery until the timer says so. */
        rd->paused_once = true;
        rd->paused_at = ev_now(rd->loop);
        pt_request_pause_body(req, true);
        ev_timer_start(rd->loop, &rd->resume);
    }
}

static void on_upload(pt_request *req, void *data)
{
    reader *rd = data;
    rd->req = req;
    pt_custodian_register(pt_request_custodian(req), reader_release, rd);
    ev_timer_init(&rd->resume, reader_resume, 0.2, 0.);
    rd->resume.data = rd;
    pt_request_read_body(req, reader_body, rd);
}

static void test_stream_request_body(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    pt_limits limits;
    pt_limits_init(&limits);
    limits.max_request_body_length = 64;
    o.limits = &limits;
    int port;
    pt_server *s = server_new(f, &o, &port);
    reader rd = {.loop = f->loop};
    assert_int_equal(pt_server_handle(s, "POST", "/upload", PT_PATH_EXACT, on_upload, &rd), 0);
    assert_int_equal(pt_server_handle(s, "GET", "/upload", PT_PATH_EXACT, on_upload, &rd), 0);
    assert_int_equal(pt_server_start(s), 0);

    /* No body, or an empty one: the end comes at once. */
    client *c = fetch(f, port, "GET /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_string_equal(body_of(c), "0 bytes in 0 pieces");
    rd = (reader){.loop = f->loop};
    c = fetch(f, port,
              "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              "Content-Length: 0\r\n\r\n");
    assert_string_equal(body_of(c), "0 bytes in 0 pieces");
    assert_int_equal(rd.ends, 1);
    rd = (reader){.loop = f->loop};

    /* A chunked body sent in pieces over time is delivered piece by piece. */
    c = client_start(f, 0, port, 80,
                     "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                     "6\r\n world\r\n", "0\r\n\r\n", NULL);
    run_until(f, client0_done, WATCHDOG_SECONDS);
    assert_int_equal(status_of(c), 200);
    assert_string_equal(body_of(c), "11 bytes in 2 pieces");
    rd.data[rd.len] = '\0';
    assert_string_equal(rd.data, "hello world");
    assert_int_equal(rd.ends, 1);
    assert_int_equal(rd.errors, 0);
    pthread_join(c->thread, NULL);
    c->started = c->done = false;

    /* Paused after the first piece: nothing is delivered until resumed. */
    rd = (reader){.loop = f->loop, .pause_first = true};
    c = client_start(f, 0, port, 50,
                     "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Length: 10\r\n\r\n12345",
                     "67890", NULL);
    run_until(f, client0_done, WATCHDOG_SECONDS);
    assert_int_equal(status_of(c), 200);
    assert_string_equal(body_of(c), "10 bytes in 2 pieces");
    assert_true(rd.resumed_at - rd.paused_at >= 0.19);
    pthread_join(c->thread, NULL);
    c->started = c->done = false;

    /* "Expect: 100-continue": the client is invited when the handler asks for the body. */
    rd = (reader){.loop = f->loop};
    c = client_start(f, 0, port, 100,
                     "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Expect: 100-continue\r\nContent-Length: 4\r\n\r\n",
                     "abcd", NULL);
    run_until(f, client0_done, WATCHDOG_SECONDS);
    assert_int_equal(status_of(c), 100);
    assert_true(strstr(c->buf, "\r\n\r\nHTTP/1.1 200 OK\r\n") != NULL);
    assert_true(strstr(c->buf, "4 bytes in 1 pieces") != NULL);
    pthread_join(c->thread, NULL);
    c->started = c->done = false;

    /* Over max_request_body_length: the reader hears -EMSGSIZE and the client gets 413, from
     * Content-Length at once or while a chunked body arrives. */
    rd = (reader){.loop = f->loop};
    c = fetch(f, port,
              "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              "Content-Length: 100\r\n\r\n");
    assert_int_equal(status_of(c), 413);
    rd = (reader){.loop = f->loop};
    char big[200];
    snprintf(big, sizeof big,
             "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "28\r\n%040d\r\n28\r\n%040d\r\n0\r\n\r\n",
             1, 2);
    c = fetch(f, port, big);
    assert_int_equal(status_of(c), 413);
    assert_int_equal(rd.errors, 1);
    assert_int_equal(rd.last_error, -EMSGSIZE);
    assert_int_equal(rd.ends, 0);
    server_stop_free(f, s);
    fixture_free(f);
}

/* ---- routing ---- */

static void on_named(pt_request *req, void *data)
{
    pt_respond(req, 200, "text/plain", data, strlen(data));
}

static void test_routing(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    int port;
    pt_server *s = server_new(f, &o, &port);
    assert_int_equal(pt_server_handle(s, "GET", "/api/", PT_PATH_PREFIX, on_named, "get-api"), 0);
    assert_int_equal(pt_server_handle(s, NULL, "/api/special", PT_PATH_EXACT, on_named, "exact"),
                     0);
    assert_int_equal(
        pt_server_handle(s, "POST", "/api/items", PT_PATH_PREFIX, on_named, "post-items"), 0);
    assert_int_equal(
        pt_server_handle(s, "GET", "/api/items/", PT_PATH_PREFIX, on_named, "get-items"), 0);
    assert_int_equal(pt_server_handle(s, "GET", "/api//x/./", PT_PATH_EXACT, on_named, "norm"), 0);

    /* Registration checks. */
    assert_int_equal(pt_server_handle(s, "GET", "relative", PT_PATH_EXACT, on_named, ""), -EINVAL);
    assert_int_equal(pt_server_handle(s, "G T", "/x", PT_PATH_EXACT, on_named, ""), -EINVAL);
    assert_int_equal(pt_server_handle(s, "", "/x", PT_PATH_EXACT, on_named, ""), -EINVAL);
    assert_int_equal(pt_server_handle(s, "GET", "/x", PT_PATH_EXACT, NULL, ""), -EINVAL);
    assert_int_equal(pt_server_handle(s, "GET", "/x", (pt_path_match)7, on_named, ""), -EINVAL);
    assert_int_equal(pt_server_handle(s, "GET", "/../x", PT_PATH_EXACT, on_named, ""), -EINVAL);
    assert_int_equal(pt_server_start(s), 0);

    static const struct {
        const char *request, *body;
        int status;
    } cases[] = {
        {"GET /api/special", "exact", 200},
        {"DELETE /api/special", "exact", 200},
        {"GET /api/x", "get-api", 200},
        {"GET /api//y/../x", "get-api", 200},
        {"GET /api/items/3", "get-items", 200},
        {"POST /api/items/3", "post-items", 200},
        {"POST /api/itemsx", "post-items", 200},
        {"GET /api/x/", "norm", 200},
        {"GET /api/%78/", "norm", 200}, /* %78 is "x": matched after decoding */
        {"GET /api/../secret", NULL, 404},
        {"GET /API/x", NULL, 404},
        {"GET /other", NULL, 404},
        {"GET /api", NULL, 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char req[256];
        snprintf(req, sizeof req, "%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 cases[i].request);
        client *c = fetch(f, port, req);
        if (status_of(c) != cases[i].status)
            fail_msg("%s: status %d, not %d", cases[i].request, status_of(c), cases[i].status);
        if (cases[i].body && strcmp(body_of(c), cases[i].body) != 0)
            fail_msg("%s: answered by \"%s\", not \"%s\"", cases[i].request, body_of(c),
                     cases[i].body);
    }

    /* A GET handler takes HEAD (head only). */
    client *c = fetch(f, port, "HEAD /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char v[64];
    assert_int_equal(status_of(c), 200);
    assert_string_equal(header_of(c, "Content-Length", v, sizeof v), "7");
    assert_string_equal(body_of(c), "");

    /* Handlers match the path but none the method: 405 with what they take. */
    c = fetch(f, port, "PUT /api/items/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(c), 405);
    assert_string_equal(header_of(c, "Allow", v, sizeof v), "GET, POST, HEAD");
    server_stop_free(f, s);
    fixture_free(f);
}

/* ---- reply checks, memory and file bodies ---- */

typedef struct checks {
    int bad_value, reserved, bad_name, bad_status, two_bodies, stream_and_body, bad_file, big;
    int error_page;
    char *mem;
    int released;
} checks;

static void checks_release(void *data)
{
    checks *k = data;
    k->released++;
}

static void on_checks(pt_request *req, void *data)
{
    checks *k = data;
    pt_reply r;
    pt_field bad_value[] = {{"X-Split", "a\r\nInjected: yes"}};
    pt_field reserved[] = {{"content-length", "3"}};
    pt_field bad_name[] = {{"X Space", "v"}};
    pt_reply_init(&r, 200);
    r.headers = bad_value;
    r.nheaders = 1;
    k->bad_value = pt_respond_with(req, &r);
    r.headers = reserved;
    k->reserved = pt_respond_with(req, &r);
    r.headers = bad_name;
    k->bad_name = pt_respond_with(req, &r);
    pt_reply_init(&r, 99);
    k->bad_status = pt_respond_with(req, &r);
    pt_reply_init(&r, 200);
    r.body = "x";
    r.body_len = 1;
    r.file_fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* taken even when refused */
    k->two_bodies = pt_respond_with(req, &r);
    pt_reply_init(&r, 200);
    r.body = "x";
    r.body_len = 1;
    r.stream = true;
    k->stream_and_body = pt_respond_with(req, &r);
    k->bad_file = pt_respond_file(req, 200, NULL, open("/dev/null", O_RDONLY | O_CLOEXEC), 0, -1);
    static char long_value[7000];
    memset(long_value, 'v', sizeof long_value - 1);
    pt_field big[] = {{"X-Big", long_value}};
    pt_reply_init(&r, 200);
    r.headers = big;
    r.nheaders = 1;
    k->big = pt_respond_with(req, &r);

    /* Memory for the request: from its arena, and from its custodian for big blocks. */
    k->mem = pt_request_alloc(req, 1000);
    assert_non_null(k->mem);
    assert_null(pt_request_alloc(req, PT_REQUEST_ALLOC_MAX + 1));
    assert_non_null(pt_request_alloc(req, PT_REQUEST_ALLOC_MAX));
    memset(k->mem, 'm', 1000);
    void *block = pt_custodian_alloc(pt_request_custodian(req), 100000);
    memset(block, 0, 100000);
    pt_custodian_register(pt_request_custodian(req), checks_release, k);
    k->error_page = pt_respond_error(req, 418);
}

static char pattern_at(size_t i)
{
    return (char)('a' + i % 23);
}

typedef struct file_case {
    int fd;
    int64_t offset, length;
    int rc;
} file_case;

static void on_file(pt_request *req, void *data)
{
    file_case *fc = data;
    fc->rc = pt_respond_file(req, 200, "application/octet-stream", fc->fd, fc->offset, fc->length);
    if (fc->rc < 0)
        pt_respond_error(req, 500);
}

static void test_reply_checks_memory_and_files(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    int port;
    pt_server *s = server_new(f, &o, &port);
    checks k = {0};
    file_case fc = {0};
    assert_int_equal(pt_server_handle(s, "GET", "/checks", PT_PATH_EXACT, on_checks, &k), 0);
    assert_int_equal(pt_server_handle(s, "GET", "/file", PT_PATH_EXACT, on_file, &fc), 0);
    assert_int_equal(pt_server_start(s), 0);

    client *c = fetch(f, port, "GET /checks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(k.bad_value, -EINVAL);
    assert_int_equal(k.reserved, -EINVAL);
    assert_int_equal(k.bad_name, -EINVAL);
    assert_int_equal(k.bad_status, -EINVAL);
    assert_int_equal(k.two_bodies, -EINVAL);
    assert_int_equal(k.stream_and_body, -EINVAL);
    assert_int_equal(k.bad_file, -EINVAL); /* not a regular file */
    assert_int_equal(k.big, -E2BIG);
    assert_int_equal(k.error_page, 0);
    assert_int_equal(k.released, 1);
    /* After all the refusals the request was still the handler's to answer. */
    assert_int_equal(status_of(c), 418);
    assert_null(strstr(c->buf, "Injected"));

    /* File bodies: inline (small) and with sendfile (large), ranges and "to the end". */
    char path[] = "/tmp/porter-embed-XXXXXX";
    int tmp = mkstemp(path);
    assert_true(tmp >= 0);
    unlink(path);
    static char content[100000];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = pattern_at(i);
    assert_int_equal(write(tmp, content, sizeof content), (ssize_t)sizeof content);
    static const struct {
        int64_t offset, length, expect;
    } ranges[] = {{10, 100, 100}, {1000, 50000, 50000}, {99000, -1, 1000}, {0, -1, 100000}};
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        fc = (file_case){.fd = dup(tmp), .offset = ranges[i].offset, .length = ranges[i].length};
        c = fetch(f, port, "GET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_int_equal(fc.rc, 0);
        assert_int_equal(status_of(c), 200);
        const char *b = body_of(c);
        size_t got = c->len - (size_t)(b - c->buf);
        assert_int_equal(got, (size_t)ranges[i].expect);
        assert_memory_equal(b, content + ranges[i].offset, got);
    }
    /* A range past the end is refused (and the fd taken). */
    fc = (file_case){.fd = dup(tmp), .offset = 99990, .length = 100};
    c = fetch(f, port, "GET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(fc.rc, -EINVAL);
    assert_int_equal(status_of(c), 500);
    close(tmp);
    server_stop_free(f, s);
    fixture_free(f);
}

/* ---- servers: from a conf file, several on one loop, listening addresses ---- */

static char *write_conf(char *dir, const char *text)
{
    static char path[PATH_MAX];
    temp_put_text(dir, "porter.conf", text);
    return temp_path(path, dir, "porter.conf");
}

static void test_conf_server_with_handlers_and_listen(void **state)
{
    fixture *f = fixture_new();
    char dir[PATH_MAX];
    temp_dir_make(dir, sizeof dir, "embed-conf");
    char text[1024];
    snprintf(text, sizeof text,
             "error_log stderr crit;\nserver {\n    listen 127.0.0.1:0;\n"
             "    root %s/htdocs;\n    location = /gone { return 410; }\n}\n",
             PORTER_SOURCE_DIR);
    pt_server *s = NULL;
    char err[512] = "";
    int r = pt_server_new(&s, f->loop, write_conf(dir, text), NULL, err, sizeof err);
    if (r < 0)
        fail_msg("pt_server_new: %s", err);
    assert_int_equal(pt_server_handle(s, "GET", "/api/", PT_PATH_PREFIX, on_named, "api"), 0);
    /* One more address for the conf's server; the same one twice is refused. */
    assert_int_equal(pt_server_listen(s, "127.0.0.1", "0", 0), 0);
    struct sockaddr_storage ss[4];
    assert_int_equal(pt_server_addresses(s, ss, 4), 2);
    assert_int_equal(pt_server_start(s), 0);

    for (int k = 0; k < 2; k++) {
        int port = ntohs(((struct sockaddr_in *)&ss[k])->sin_port);
        client *c = fetch(f, port, "GET /api/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_int_equal(status_of(c), 200);
        assert_string_equal(body_of(c), "api");
        /* What no handler takes goes to the conf's locations and files. */
        c = fetch(f, port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_int_equal(status_of(c), 200);
        assert_non_null(strstr(body_of(c), "<html"));
        c = fetch(f, port, "GET /gone HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_int_equal(status_of(c), 410);
    }
    server_stop_free(f, s);

    /* A server-level return (an http-to-https redirect) still comes before the handlers. */
    snprintf(text, sizeof text,
             "error_log stderr crit;\nserver {\n    listen 127.0.0.1:0;\n    root %s/htdocs;\n"
             "    return 301 https://$host$request_uri;\n}\n",
             PORTER_SOURCE_DIR);
    r = pt_server_new(&s, f->loop, write_conf(dir, text), NULL, err, sizeof err);
    if (r < 0)
        fail_msg("pt_server_new: %s", err);
    assert_int_equal(pt_server_handle(s, "GET", "/api/", PT_PATH_PREFIX, on_named, "api"), 0);
    assert_int_equal(pt_server_addresses(s, ss, 4), 1);
    assert_int_equal(pt_server_start(s), 0);
    client *c = fetch(f, ntohs(((struct sockaddr_in *)&ss[0])->sin_port),
                      "GET /api/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char v[128];
    assert_int_equal(status_of(c), 301);
    assert_string_equal(header_of(c, "Location", v, sizeof v), "https://x/api/v1");
    server_stop_free(f, s);
    temp_dir_remove(dir);
    fixture_free(f);
}

/* Inflates the gzip stream `in` (`n` bytes) into `out`; its length, or -1 if it is not a whole
 * gzip stream. */
static long gunzip(const char *in, size_t n, char *out, size_t cap)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return -1;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    long got = (long)(cap - z.avail_out);
    inflateEnd(&z);
    return rc == Z_STREAM_END ? got : -1;
}

/* Decodes the chunked body of `n` bytes at `p` (binary: sizes, not strlen) into `out`; its
 * length, or -1 if malformed or without its last chunk. */
static long dechunk_bytes(const char *p, size_t n, char *out, size_t cap)
{
    const char *end = p + n;
    size_t len = 0;
    for (;;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            return -1;
        unsigned long size = strtoul(p, NULL, 16);
        p = eol + 2;
        if (size == 0)
            return (long)len;
        if (len + size > cap || (size_t)(end - p) < size + 2)
            return -1;
        memcpy(out + len, p, size);
        len += size;
        p += size + 2;
    }
}

/* An embedder's answers are compressed as a file's are, when the conf's server has a coding on:
 * one from memory with its length, a stream chunked, each piece flushed. */
static void test_compressed_answers(void **state)
{
    fixture *f = fixture_new();
    char dir[PATH_MAX];
    temp_dir_make(dir, sizeof dir, "embed-gzip");
    char text[1024];
    snprintf(text, sizeof text,
             "error_log stderr crit;\ngzip on; gzip_types text/plain; gzip_min_length 10;\n"
             "server {\n    listen 127.0.0.1:0;\n    root %s/htdocs;\n}\n",
             PORTER_SOURCE_DIR);
    pt_server *s = NULL;
    char err[512] = "";
    int r = pt_server_new(&s, f->loop, write_conf(dir, text), NULL, err, sizeof err);
    if (r < 0)
        fail_msg("pt_server_new: %s", err);
    static const char page[] = "an answer from memory, an answer from memory, an answer";
    assert_int_equal(pt_server_handle(s, "GET", "/mem", PT_PATH_EXACT, on_named, (void *)page), 0);
    streamer st = {
        .loop = f->loop, .pieces = {"one one one ", "two two two ", "three"}, .length = -1};
    assert_int_equal(pt_server_handle(s, "GET", "/stream", PT_PATH_EXACT, on_stream, &st), 0);
    struct sockaddr_storage ss;
    assert_int_equal(pt_server_addresses(s, &ss, 1), 1);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    assert_int_equal(pt_server_start(s), 0);

    char v[64], body[4096], plain[4096];
    client *c = fetch(f, port,
                      "GET /mem HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
                      "Connection: close\r\n\r\n");
    assert_int_equal(status_of(c), 200);
    assert_string_equal(header_of(c, "Content-Encoding", v, sizeof v), "gzip");
    assert_string_equal(header_of(c, "Vary", v, sizeof v), "Accept-Encoding");
    const char *b = strstr(c->buf, "\r\n\r\n") + 4;
    size_t blen = c->len - (size_t)(b - c->buf);
    assert_int_equal(atol(header_of(c, "Content-Length", v, sizeof v)), (long)blen);
    long n = gunzip(b, blen, plain, sizeof plain);
    assert_int_equal(n, (long)strlen(page));
    assert_memory_equal(plain, page, (size_t)n);

    /* Without Accept-Encoding: as it was, with Vary. */
    c = fetch(f, port, "GET /mem HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_null(header_of(c, "Content-Encoding", v, sizeof v));
    assert_string_equal(body_of(c), page);

    c = fetch(f, port,
              "GET /stream HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
              "Connection: close\r\n\r\n");
    assert_int_equal(status_of(c), 200);
    assert_string_equal(header_of(c, "Content-Encoding", v, sizeof v), "gzip");
    assert_string_equal(header_of(c, "Transfer-Encoding", v, sizeof v), "chunked");
    b = strstr(c->buf, "\r\n\r\n") + 4;
    long bn = dechunk_bytes(b, c->len - (size_t)(b - c->buf), body, sizeof body);
    assert_true(bn > 0);
    n = gunzip(body, (size_t)bn, plain, sizeof plain);
    assert_int_equal(n, 29);
    assert_memory_equal(plain, "one one one two two two three", 29);
    assert_int_equal(st.end_rc, 0);
    server_stop_free(f, s);
    temp_dir_remove(dir);
    fixture_free(f);
}

static void test_options_root_and_errors(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    o.root = PORTER_SOURCE_DIR "/htdocs";
    int port;
    pt_server *s = server_new(f, &o, &port);
    assert_int_equal(pt_server_handle(s, "GET", "/api/", PT_PATH_PREFIX, on_named, "api"), 0);
    assert_int_equal(pt_server_start(s), 0);
    client *c = fetch(f, port, "GET /style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char v[64];
    assert_int_equal(status_of(c), 200);
    assert_string_equal(header_of(c, "Content-Type", v, sizeof v), "text/css");
    assert_non_null(header_of(c, "ETag", v, sizeof v));
    c = fetch(f, port, "GET /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_string_equal(body_of(c), "api");
    c = fetch(f, port, "GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(c), 404);

    /* Listening: bad arguments, an address in use, the same address twice, TLS without a
     * certificate. */
    pt_server *t = NULL;
    pt_server_options p;
    pt_server_options_init(&p);
    assert_int_equal(pt_server_new_with(&t, f->loop, &p, NULL, 0), 0);
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    assert_int_equal(pt_server_listen(t, "127.0.0.1", port_text, 0), -EADDRINUSE);
    assert_int_equal(pt_server_listen(t, "127.0.0.1", NULL, 0), -EINVAL);
    assert_int_equal(pt_server_listen(t, "127.0.0.1", "99999", 0), -EINVAL);
    assert_int_equal(pt_server_listen(t, "127.0.0.1", "0", 0x100), -EINVAL);
    assert_int_equal(pt_server_listen(t, "127.0.0.1", "0", PT_LISTEN_PROXY_PROTOCOL << 1), -EINVAL);
    assert_int_equal(pt_server_listen(t, "127.0.0.1", "0", PT_LISTEN_TLS), -EINVAL);
    assert_int_equal(pt_server_addresses(t, NULL, 0), 0); /* nothing failed is left behind */
    /* A port free a moment ago, asked for twice. */
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof sin;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(probe, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&sin, &slen), 0);
    close(probe);
    snprintf(port_text, sizeof port_text, "%d", ntohs(sin.sin_port));
    assert_int_equal(pt_server_listen(t, "[127.0.0.1]", port_text, 0), 0);
    assert_int_equal(pt_server_listen(t, "127.0.0.1", port_text, 0), -EEXIST);
    assert_int_equal(pt_server_addresses(t, NULL, 0), 1);
    f->stopped = false;
    pt_server_stop(t, on_stopped, f);
    run_until(f, is_stopped, WATCHDOG_SECONDS);
    assert_int_equal(pt_server_listen(t, "127.0.0.1", "0", 0), -EBUSY);
    pt_server_free(t);
    pt_server_free(NULL);

    /* A missing root is an error at creation, with its path in the message. */
    char err[512] = "";
    o.root = "/nonexistent/porter-root";
    assert_int_equal(pt_server_new_with(&t, f->loop, &o, err, sizeof err), -ENOENT);
    assert_null(t);
    assert_non_null(strstr(err, "/nonexistent/porter-root"));
    o.root = NULL;
    o.tls_certificate = "/x.pem"; /* without its key */
    assert_int_equal(pt_server_new_with(&t, f->loop, &o, err, sizeof err), -EINVAL);
    server_stop_free(f, s);
    fixture_free(f);
}

static void test_several_servers_on_one_loop(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    int ports[3];
    pt_server *s[3];
    static const char *names[] = {"first", "second", "third"};
    for (int i = 0; i < 3; i++) {
        s[i] = server_new(f, &o, &ports[i]);
        assert_int_equal(
            pt_server_handle(s[i], "GET", "/", PT_PATH_PREFIX, on_named, (void *)names[i]), 0);
        assert_int_equal(pt_server_start(s[i]), 0);
    }
    /* All at once, then each again after another is gone. */
    for (int i = 0; i < 3; i++)
        client_start(f, i, ports[i], 0, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     NULL);
    run_until(f, all_clients_done, WATCHDOG_SECONDS);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(status_of(&f->clients[i]), 200);
        assert_string_equal(body_of(&f->clients[i]), names[i]);
        pthread_join(f->clients[i].thread, NULL);
        f->clients[i].started = f->clients[i].done = false;
    }
    server_stop_free(f, s[1]);
    client *c = fetch(f, ports[2], "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_string_equal(body_of(c), "third");
    c = fetch(f, ports[0], "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_string_equal(body_of(c), "first");
    server_stop_free(f, s[0]);
    server_stop_free(f, s[2]);
    fixture_free(f);
}

/* PT_LISTEN_PROXY_PROTOCOL: the header's source is the client pt_request_peer gives, on
 * every request of the connection; a connection without a header is closed unanswered. */
static void test_proxy_protocol_listener(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    pt_server *s = NULL;
    assert_int_equal(pt_server_new_with(&s, f->loop, &o, NULL, 0), 0);
    assert_int_equal(pt_server_listen(s, "127.0.0.1", "0", PT_LISTEN_PROXY_PROTOCOL), 0);
    struct sockaddr_storage ss;
    assert_int_equal(pt_server_addresses(s, &ss, 1), 1);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    seen x = {0};
    assert_int_equal(pt_server_handle(s, "GET", "/", PT_PATH_PREFIX, on_inspect, &x), 0);
    assert_int_equal(pt_server_start(s), 0);

    client *c = fetch(f, port,
                      "PROXY TCP4 192.0.2.33 198.51.100.2 40123 443\r\n"
                      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(client_ok(c));
    assert_int_equal(status_of(c), 201);
    assert_int_equal(x.calls, 2);
    assert_int_equal(x.peer_rc, 0);
    assert_int_equal(x.peer_port, 40123);
    assert_string_equal(x.path, "/b");

    c = fetch(f, port, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(c->len, 0); /* closed without an answer */
    assert_int_equal(x.calls, 2);
    server_stop_free(f, s);
    fixture_free(f);
}

/* ---- TLS from options ---- */

static void *tls_client_main(void *arg)
{
    client *c = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_SECONDS};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!ctx || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        c->err = errno ? errno : EPROTO;
        goto out;
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_connect(ssl) != 1 || SSL_write(ssl, c->parts[0], (int)strlen(c->parts[0])) <= 0) {
        c->err = EPROTO;
        goto out;
    }
    for (int r; c->len < CLIENT_BUF &&
                (r = SSL_read(ssl, c->buf + c->len, (int)(CLIENT_BUF - c->len))) > 0;)
        c->len += (size_t)r;
out:
    c->buf[c->len] = '\0';
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    if (fd >= 0)
        close(fd);
    c->done = true;
    ev_async_send(c->f->loop, &c->f->wake);
    return NULL;
}

static void test_tls_listener_from_options(void **state)
{
    char dir[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
    temp_dir_make(dir, sizeof dir, "embed-tls");
    cert_make_files(EVP_EC_gen("P-256"), "localhost", temp_path(cert, dir, "cert.pem"),
                    temp_path(key, dir, "key.pem"));
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    o.tls_certificate = cert;
    o.tls_certificate_key = key;
    pt_server *s = NULL;
    char err[512] = "";
    if (pt_server_new_with(&s, f->loop, &o, err, sizeof err) < 0)
        fail_msg("pt_server_new_with: %s", err);
    assert_int_equal(pt_server_listen(s, "127.0.0.1", "0", PT_LISTEN_TLS), 0);
    struct sockaddr_storage ss;
    assert_int_equal(pt_server_addresses(s, &ss, 1), 1);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    seen x = {0};
    assert_int_equal(pt_server_handle(s, "GET", "/", PT_PATH_PREFIX, on_inspect, &x), 0);
    assert_int_equal(pt_server_start(s), 0);

    client *c = &f->clients[0];
    c->port = port;
    c->parts[0] = "GET /secure HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    c->nparts = 1;
    c->started = true;
    assert_int_equal(pthread_create(&c->thread, NULL, tls_client_main, c), 0);
    run_until(f, client0_done, WATCHDOG_SECONDS);
    assert_int_equal(c->err, 0);
    assert_int_equal(status_of(c), 201);
    assert_string_equal(x.scheme, "https");
    assert_string_equal(x.path, "/secure");
    assert_int_equal(x.local_port, port);
    server_stop_free(f, s);
    fixture_free(f);
    temp_dir_remove(dir);
}

/* A TLS handshake offering h2 and http/1.1; the protocol the server chose goes into c->buf
 * ("" for none), then the client closes without a request. */
static void *alpn_client_main(void *arg)
{
    client *c = arg;
    static const unsigned char offer[] = "\x02h2\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_SECONDS};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!ctx || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        c->err = errno ? errno : EPROTO;
        goto out;
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set_alpn_protos(ssl, offer, sizeof offer - 1);
    if (SSL_connect(ssl) != 1) {
        c->err = EPROTO;
        goto out;
    }
    const unsigned char *sel;
    unsigned len;
    SSL_get0_alpn_selected(ssl, &sel, &len);
    if (sel) {
        memcpy(c->buf, sel, len);
        c->len = len;
    }
    SSL_shutdown(ssl);
out:
    c->buf[c->len] = '\0';
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    if (fd >= 0)
        close(fd);
    c->done = true;
    ev_async_send(c->f->loop, &c->f->wake);
    return NULL;
}

/* PT_LISTEN_HTTP2 on a TLS address: ALPN selects h2 there; the server's other TLS address,
 * without the flag, still answers http/1.1 (a server from options has HTTP/2 off). */
static void test_tls_listener_with_http2_selects_h2(void **state)
{
    char dir[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
    temp_dir_make(dir, sizeof dir, "embed-h2");
    cert_make_files(EVP_EC_gen("P-256"), "localhost", temp_path(cert, dir, "cert.pem"),
                    temp_path(key, dir, "key.pem"));
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    o.tls_certificate = cert;
    o.tls_certificate_key = key;
    pt_server *s = NULL;
    char err[512] = "";
    if (pt_server_new_with(&s, f->loop, &o, err, sizeof err) < 0)
        fail_msg("pt_server_new_with: %s", err);
    assert_int_equal(pt_server_listen(s, "127.0.0.1", "0", PT_LISTEN_TLS | PT_LISTEN_HTTP2), 0);
    assert_int_equal(pt_server_listen(s, "127.0.0.1", "0", PT_LISTEN_TLS), 0);
    struct sockaddr_storage ss[2];
    assert_int_equal(pt_server_addresses(s, ss, 2), 2);
    assert_int_equal(pt_server_start(s), 0);
    static const char *const want[] = {"h2", "http/1.1"};
    for (int i = 0; i < 2; i++) {
        client *c = &f->clients[0];
        c->port = ntohs(((struct sockaddr_in *)&ss[i])->sin_port);
        c->len = 0;
        c->err = 0;
        c->done = false;
        c->started = true;
        assert_int_equal(pthread_create(&c->thread, NULL, alpn_client_main, c), 0);
        run_until(f, client0_done, WATCHDOG_SECONDS);
        pthread_join(c->thread, NULL);
        c->started = false;
        assert_int_equal(c->err, 0);
        assert_string_equal(c->buf, want[i]);
    }
    server_stop_free(f, s);
    fixture_free(f);
    temp_dir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_at_once_with_accessors),
        cmocka_unit_test(test_answer_later_from_a_timer),
        cmocka_unit_test(test_stream_response),
        cmocka_unit_test(test_stream_back_pressure),
        cmocka_unit_test(test_stream_request_body),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_reply_checks_memory_and_files),
        cmocka_unit_test(test_conf_server_with_handlers_and_listen),
        cmocka_unit_test(test_compressed_answers),
        cmocka_unit_test(test_options_root_and_errors),
        cmocka_unit_test(test_several_servers_on_one_loop),
        cmocka_unit_test(test_proxy_protocol_listener),
        cmocka_unit_test(test_tls_listener_from_options),
        cmocka_unit_test(test_tls_listener_with_http2_selects_h2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
