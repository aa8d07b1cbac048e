/*
 * HTTP/2 (server/h2/conn.c) over the pair transport: a connection manager whose connections are
 * attached to HTTP/2 as they are admitted, a site of the test's own (a vhost from conf text,
 * routed to the handlers below), and the test as the client, speaking HTTP/2 through
 * libnghttp2's client session on the same loop. Answers from memory, HEAD, a file larger than
 * the windows, a streamed answer that waits for its writable callback, a request body read with
 * pauses while the client is held by its window, an answer before the body, resets from the
 * client, a connection killed with streams open, concurrent streams, and response_timeout.
 * The last test does the same over a real socket through the public embedding API.
 *
 * Every test ends with nothing left (tests/support.h): no custodian, buffer, watcher or fd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support.h"
#include "tests/support/pair.h"
#include "tests/support/vhost.h"

#include "server/h2/conn.h"
#include "server/http1/conn.h"

#define CONF(extra)                                                                                \
    "response_timeout 60s;\n"                                                                      \
    "max_request_body_length 4m;\n"                                                                \
    "server {\n    server_name h2.test;\n    server_tokens off;\n" extra "}\n"

/* The bytes of a request body, and of the larger answers: a pattern no off-by-one keeps. */
static uint8_t pattern(uint64_t i)
{
    return (uint8_t)((i * 7 + i / 251 + 3) & 0xff);
}

/* ---- the client: nghttp2's client session on the test's loop ---- */

#define MAX_STREAMS 16

typedef struct cstream {
    int32_t id;
    int status;
    char content_type[64];
    long content_length; /* -1: none */
    char *body;
    size_t body_len, body_cap;
    bool end_stream; /* a frame with END_STREAM came */
    bool closed;
    uint32_t close_code;
    bool rst;          /* an RST_STREAM came */
    uint32_t rst_code; /* its code */
    /* a request body: upload_len bytes of pattern() */
    uint64_t upload_len, upload_given, upload_sent;
    size_t data_frames; /* DATA frames received */
    size_t max_frame;   /* the largest of them */
} cstream;

typedef struct client {
    struct ev_loop *loop;
    nghttp2_session *s;
    int rfd, wfd;
    ev_io rio, wio;
    char *out; /* frames not yet written */
    size_t out_len, out_cap;
    cstream st[MAX_STREAMS];
    size_t nst;
    bool eof;       /* the server closed its side */
    int recv_error; /* nghttp2_session_mem_recv() failed: the server broke the protocol */
    size_t window_updates;
} client;

static void client_flush(client *cl);

static ssize_t c_on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    client *cl = ud;
    if (cl->out_len + len > cl->out_cap) {
        cl->out_cap = (cl->out_len + len) * 2;
        cl->out = realloc(cl->out, cl->out_cap);
        assert_non_null(cl->out);
    }
    memcpy(cl->out + cl->out_len, data, len);
    cl->out_len += len;
    return (ssize_t)len;
}

static cstream *find(client *cl, int32_t id)
{
    for (size_t i = 0; i < cl->nst; i++)
        if (cl->st[i].id == id)
            return &cl->st[i];
    return NULL;
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *ud)
{
    cstream *cs = find(ud, f->hd.stream_id);
    if (!cs)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        cs->status = atoi((const char *)value);
    else if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
        snprintf(cs->content_type, sizeof cs->content_type, "%.*s", (int)valuelen, value);
    else if (namelen == 14 && memcmp(name, "content-length", 14) == 0)
        cs->content_length = atol((const char *)value);
    return 0;
}

static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                     void *ud)
{
    cstream *cs = find(ud, id);
    if (!cs)
        return 0;
    if (cs->body_len + len > cs->body_cap) {
        cs->body_cap = (cs->body_len + len) * 2;
        cs->body = realloc(cs->body, cs->body_cap + 1);
        assert_non_null(cs->body);
    }
    memcpy(cs->body + cs->body_len, data, len);
    cs->body_len += len;
    cs->body[cs->body_len] = '\0';
    return 0;
}

static int c_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    cstream *cs = find(ud, f->hd.stream_id);
    if (!cs)
        return 0;
    if (f->hd.type == NGHTTP2_DATA) {
        cs->data_frames++;
        if (f->hd.length > cs->max_frame)
            cs->max_frame = f->hd.length;
    }
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        cs->end_stream = true;
    if (f->hd.type == NGHTTP2_RST_STREAM) {
        cs->rst = true;
        cs->rst_code = f->rst_stream.error_code;
    }
    return 0;
}

static int c_on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    client *cl = ud;
    if (f->hd.type == NGHTTP2_WINDOW_UPDATE)
        cl->window_updates++;
    cstream *cs = find(cl, f->hd.stream_id);
    if (cs && f->hd.type == NGHTTP2_DATA)
        cs->upload_sent += f->hd.length;
    return 0;
}

static int c_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    cstream *cs = find(ud, id);
    if (cs) {
        cs->closed = true;
        cs->close_code = code;
    }
    return 0;
}

static void client_read(client *cl)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(cl->rfd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            cl->eof = true;
            ev_io_stop(cl->loop, &cl->rio);
            break;
        }
        ssize_t r = nghttp2_session_mem_recv(cl->s, (const uint8_t *)buf, (size_t)n);
        if (r < 0 && !cl->recv_error)
            cl->recv_error = (int)r;
    }
    client_flush(cl);
}

static void on_client_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    client_read(w->data);
}

static void on_client_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    client_flush(w->data);
}

/* Writes what the session has to send, as much as the server takes now; the rest waits for
 * the write watcher. */
static void client_flush(client *cl)
{
    if (cl->wfd < 0)
        return;
    assert_int_equal(nghttp2_session_send(cl->s), 0);
    size_t off = 0;
    while (off < cl->out_len) {
        ssize_t n = write(cl->wfd, cl->out + off, cl->out_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) { /* the server is gone: what it did not take is dropped */
            off = cl->out_len;
            break;
        }
        off += (size_t)n;
    }
    memmove(cl->out, cl->out + off, cl->out_len - off);
    cl->out_len -= off;
    if (cl->out_len && !ev_is_active(&cl->wio))
        ev_io_start(cl->loop, &cl->wio);
    else if (!cl->out_len && ev_is_active(&cl->wio))
        ev_io_stop(cl->loop, &cl->wio);
}

/* A client session on `rfd` (what the server writes) and `wfd` (what it reads), both
 * non-blocking and borrowed, that announces `stream_window` (0: nghttp2's default). Sends the
 * preface and its SETTINGS. */
static void client_open(client *cl, struct ev_loop *loop, int rfd, int wfd, uint32_t stream_window)
{
    memset(cl, 0, sizeof *cl);
    cl->loop = loop;
    cl->rfd = rfd;
    cl->wfd = wfd;
    nghttp2_session_callbacks *cbs;
    assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_send_callback(cbs, c_on_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, c_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c_on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, c_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_on_close);
    assert_int_equal(nghttp2_session_client_new(&cl->s, cbs, cl), 0);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[1] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window}};
    assert_int_equal(nghttp2_submit_settings(cl->s, NGHTTP2_FLAG_NONE, iv, stream_window ? 1 : 0),
                     0);
    ev_io_init(&cl->rio, on_client_readable, rfd, EV_READ);
    cl->rio.data = cl;
    ev_io_start(loop, &cl->rio);
    ev_io_init(&cl->wio, on_client_writable, wfd, EV_WRITE);
    cl->wio.data = cl;
    client_flush(cl);
}

static void client_close(client *cl)
{
    if (!cl->s)
        return;
    ev_io_stop(cl->loop, &cl->rio);
    ev_io_stop(cl->loop, &cl->wio);
    nghttp2_session_del(cl->s);
    cl->s = NULL;
    for (size_t i = 0; i < cl->nst; i++)
        free(cl->st[i].body);
    free(cl->out);
    memset(cl, 0, sizeof *cl);
}

static ssize_t upload_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    cstream *cs = src->ptr;
    uint64_t left = cs->upload_len - cs->upload_given;
    size_t n = left < len ? (size_t)left : len;
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern(cs->upload_given + i);
    cs->upload_given += n;
    if (cs->upload_given == cs->upload_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Sends a request for `path` with `method` and, if `upload` is not 0, a body of that many bytes
 * of pattern(). Returns its stream. */
static cstream *client_request(client *cl, const char *method, const char *path, uint64_t upload)
{
    assert_true(cl->nst < MAX_STREAMS);
    cstream *cs = &cl->st[cl->nst];
    memset(cs, 0, sizeof *cs);
    cs->content_length = -1;
    cs->upload_len = upload;
    char clen[24];
    snprintf(clen, sizeof clen, "%" PRIu64, upload);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nv[] = {NV(":method", method), NV(":scheme", "http"), NV(":authority", "h2.test"),
                       NV(":path", path), NV("content-length", clen)};
#undef NV
    nghttp2_data_provider dp = {.source.ptr = cs, .read_callback = upload_read};
    int32_t id = nghttp2_submit_request(cl->s, NULL, nv, upload ? 5 : 4, upload ? &dp : NULL, cs);
    assert_true(id > 0);
    cs->id = id;
    cl->nst++;
    client_flush(cl);
    return cs;
}

/* ---- the site: the test's handlers ---- */

typedef struct app {
    int aborts, released; /* abort callbacks, and what handlers registered with custodians */
    pt_request *held[16]; /* requests answered later, in the order they came */
    size_t nheld;
    char file_path[PATH_MAX]; /* /file's */
    uint64_t file_len;
    /* /stream */
    uint64_t stream_len, stream_written;
    int stream_waits; /* pt_response_is_full() said so after a write */
    /* /upload: what the handler took, and whether it pauses */
    uint64_t body_got;
    uint32_t fnv;
    bool pause_each;
    bool paused;
    int body_pieces;
} app;

static app the_app;

static void on_abort(pt_request *req, void *data)
{
    app *a = data;
    a->aborts++;
    for (size_t i = 0; i < a->nheld; i++)
        if (a->held[i] == req)
            a->held[i] = NULL;
}

static void on_release(void *data)
{
    ((app *)data)->released++;
}

/* Keeps `req`: told if it ends first, with a resource released when it ends. */
static void hold(app *a, pt_request *req)
{
    assert_true(a->nheld < 16);
    a->held[a->nheld++] = req;
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

static bool path_is(const pt_request *req, const char *p)
{
    return req->path.len == strlen(p) && memcmp(req->path.p, p, req->path.len) == 0;
}

/* /stream: 16 KiB pieces of pattern() until the queue is full, then more when writable. */
static void stream_more(pt_request *req, void *data)
{
    app *a = data;
    uint8_t piece[16384];
    while (a->stream_written < a->stream_len) {
        size_t n = sizeof piece;
        if (a->stream_len - a->stream_written < n)
            n = (size_t)(a->stream_len - a->stream_written);
        for (size_t i = 0; i < n; i++)
            piece[i] = pattern(a->stream_written + i);
        int r = pt_response_write(req, piece, n);
        assert_int_equal(r, 0);
        a->stream_written += n;
        if (pt_response_is_full(req)) {
            a->stream_waits++;
            return; /* on_writable calls again */
        }
    }
    assert_int_equal(pt_response_end(req), 0);
}

static uint32_t fnv_add(uint32_t h, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* /upload: the body's length and FNV-1a hash; with pause_each, a pause after each piece that
 * the test lifts. */
static void on_body(pt_request *req, const void *data, size_t len, int status, void *ud)
{
    app *a = ud;
    if (status == 0) {
        a->body_got += len;
        a->fnv = fnv_add(a->fnv, data, len);
        a->body_pieces++;
        if (a->pause_each) {
            pt_request_pause_body(req, true);
            a->paused = true;
        }
    } else if (status == PT_BODY_END) {
        char text[64];
        int n = snprintf(text, sizeof text, "%" PRIu64 " %08x", a->body_got, a->fnv);
        answer(req, 200, text, (size_t)n);
    }
}

/* /late-reader's body callback: answers from the first piece. */
static void answer_first_piece(pt_request *req, const void *data, size_t len, int status, void *ud)
{
    app *a = ud;
    if (status == 0 && a->body_pieces++ == 0)
        answer(req, 200, "took it", 7);
    else if (status == PT_BODY_END)
        assert_false(pt_response_pending(req)); /* the request is still there to ask */
}

static void route(pt_request *req)
{
    app *a = &the_app;
    if (path_is(req, "/later") || path_is(req, "/never")) {
        hold(a, req);
    } else if (path_is(req, "/file")) {
        int fd = open(a->file_path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        pt_response r;
        pt_response_init(&r, 200);
        r.content_type = "application/octet-stream";
        r.file_fd = fd;
        r.file_off = 0;
        r.body_len = a->file_len;
        assert_int_equal(pt_request_respond(req, &r), 0);
    } else if (path_is(req, "/stream")) {
        hold(a, req);
        pt_response r;
        pt_response_init(&r, 200);
        r.content_type = "application/octet-stream";
        r.stream = true;
        r.stream_length = -1;
        assert_int_equal(pt_request_respond(req, &r), 0);
        pt_response_on_writable(req, stream_more, a);
        stream_more(req, a);
    } else if (path_is(req, "/upload")) {
        hold(a, req);
        a->fnv = 2166136261u;
        pt_request_read_body(req, on_body, a);
    } else if (path_is(req, "/late-reader")) {
        hold(a, req); /* the test reads its body later */
    } else if (path_is(req, "/early")) {
        answer(req, 200, "early", 5); /* the body is never read */
    } else {
        answer(req, 200, req->path.p, req->path.len);
    }
}

/* ---- fixture ---- */

typedef struct h2_site {
    struct ev_loop *loop;
    pt_connmgr *m;
    test_vhost tv;
    pt_site_ops ops;
    pt_h2_settings settings;
    pt_h2_counters counters;
    pt_conn *c;
    pair_client p;
    client cl;
} h2_site;

static h2_site site;

static void h2_select(void *data, pt_request *req)
{
    h2_site *h = data;
    const pt_vhost *vh = &h->tv.vh;
    pt_vhost_apply(vh, req);
}

static void h2_on_admit(pt_conn *c, void *data)
{
    h2_site *h = data;
    pt_h2_conn_attach(c, &h->ops, h, false, &h->settings, &h->counters);
}

/* Opens the site of `conf` and a client connection that announces `client_window` as its
 * streams' window (0: the default); the server's stream window is `server_window` (0: its
 * default). */
static void open_site(const char *conf, uint32_t server_window, uint32_t client_window)
{
    memset(&the_app, 0, sizeof the_app);
    memset(&site, 0, sizeof site);
    nothing_left_begin();
    site.loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(site.loop);
    char err[512];
    if (vhost_build(&site.tv, conf, "/nonexistent", false, err, sizeof err) < 0)
        fail_msg("%s", err);
    pt_h2_settings_default(&site.settings);
    if (server_window)
        site.settings.stream_window = server_window;
    site.ops = (pt_site_ops){.select = h2_select, .route = route};
    pt_connmgr_options o;
    pt_connmgr_options_init(&o);
    o.limits = &site.tv.vh.limits;
    o.proto = &pt_http1_proto;
    o.proto_size = pt_http1_conn_size();
    o.on_admit = h2_on_admit;
    o.data = &site;
    assert_int_equal(pt_connmgr_new(&site.m, site.loop, &o), 0);
    site.c = pair_connect(site.m, &site.p);
    assert_non_null(site.c);
    client_open(&site.cl, site.loop, site.p.from_conn, site.p.to_conn, client_window);
}

static size_t live(void)
{
    pt_connmgr_stats st;
    pt_connmgr_get_stats(site.m, &st);
    return st.live;
}

static bool no_connection(void *data)
{
    return live() == 0;
}

static void close_site(void)
{
    client_close(&site.cl);
    pair_client_close(&site.p);
    /* The connection reads end of stream and goes. */
    if (!loop_run_until(site.loop, no_connection, NULL, 3))
        fail_msg("the connection outlived its client");
    assert_int_equal(site.counters.live, 0);
    pt_connmgr_free(site.m);
    vhost_unbuild(&site.tv);
    pt_custodian_reap();
    pt_chunk_pool_trim();
    assert_nothing_left(site.loop);
}

static bool stream_closed(void *data)
{
    return ((cstream *)data)->closed;
}

/* Runs the loop until `cs` is closed (a watchdog of 3 s). */
static void wait_closed(cstream *cs)
{
    if (!loop_run_until(site.loop, stream_closed, cs, 3))
        fail_msg("stream %d did not close", cs->id);
    assert_int_equal(site.cl.recv_error, 0);
}

/* The client has nothing more to send and has taken all the server wrote. */
static void settle(void)
{
    for (int i = 0; i < 8; i++)
        ev_run(site.loop, EVRUN_NOWAIT);
}

static void assert_pattern(const cstream *cs, uint64_t len)
{
    assert_int_equal(cs->body_len, len);
    for (uint64_t i = 0; i < len; i++)
        if ((uint8_t)cs->body[i] != pattern(i))
            fail_msg("byte %" PRIu64 " of the body is %u, not %u", i, (uint8_t)cs->body[i],
                     pattern(i));
}

/* ---- tests ---- */

static void test_a_get_is_answered_from_memory(void **state)
{
    open_site(CONF(""), 0, 0);
    cstream *cs = client_request(&site.cl, "GET", "/hello", 0);
    wait_closed(cs);
    assert_int_equal(cs->status, 200);
    assert_string_equal(cs->content_type, "text/plain");
    assert_int_equal(cs->content_length, 6);
    assert_string_equal(cs->body, "/hello");
    assert_true(cs->end_stream);
    assert_int_equal(cs->close_code, NGHTTP2_NO_ERROR);
    assert_int_equal(site.counters.streams, 1);
    /* The connection stays for more. */
    assert_int_equal(live(), 1);
    cstream *again = client_request(&site.cl, "GET", "/again", 0);
    wait_closed(again);
    assert_string_equal(again->body, "/again");
    close_site();
}

static void test_head_gets_the_head_only(void **state)
{
    open_site(CONF(""), 0, 0);
    cstream *cs = client_request(&site.cl, "HEAD", "/hello", 0);
    wait_closed(cs);
    assert_int_equal(cs->status, 200);
    assert_int_equal(cs->content_length, 6); /* the length a GET gets */
    assert_int_equal(cs->body_len, 0);
    assert_int_equal(cs->data_frames, 0);
    assert_true(cs->end_stream);
    close_site();
}

static void test_a_file_larger_than_the_windows_follows_them(void **state)
{
    char dir[PATH_MAX];
    /* The file outgrows the client's stream and connection windows and the server's queue. */
    uint64_t len = 600 * 1024 + 123;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (uint64_t i = 0; i < len; i++)
        data[i] = pattern(i);
    open_site(CONF(""), 0, 16384);
    temp_dir_make(dir, sizeof dir, "h2");
    temp_put_file(dir, "big.bin", data, len);
    free(data);
    temp_path(the_app.file_path, dir, "big.bin");
    the_app.file_len = len;
    cstream *cs = client_request(&site.cl, "GET", "/file", 0);
    wait_closed(cs);
    assert_int_equal(cs->status, 200);
    assert_int_equal(cs->content_length, (long)len);
    assert_pattern(cs, len);
    assert_int_equal(cs->close_code, NGHTTP2_NO_ERROR);
    /* Held by the client's window: no frame above it, and the window reopened as it read. */
    assert_true(cs->max_frame <= 16384);
    assert_true(site.cl.window_updates > 10);
    close_site();
    temp_dir_remove(dir);
}

static void test_a_streaming_handler_waits_for_its_writable_callback(void **state)
{
    open_site(CONF(""), 0, 16384);
    the_app.stream_len = 400 * 1024 + 7;
    cstream *cs = client_request(&site.cl, "GET", "/stream", 0);
    wait_closed(cs);
    assert_int_equal(cs->status, 200);
    assert_int_equal(cs->content_length, -1); /* the length was not known */
    assert_pattern(cs, the_app.stream_len);
    assert_true(the_app.stream_waits > 0);
    assert_int_equal(the_app.aborts, 0);
    assert_int_equal(the_app.released, 1);
    close_site();
}

static bool paused_or_closed(void *data)
{
    return the_app.paused || ((cstream *)data)->closed;
}

static void test_a_paused_body_holds_the_client_at_its_window(void **state)
{
    const uint32_t window = 65535;
    const uint64_t len = 1024 * 1024 + 17;
    open_site(CONF(""), window, 0);
    the_app.pause_each = true;
    cstream *cs = client_request(&site.cl, "POST", "/upload", len);
    for (int rounds = 0;; rounds++) {
        assert_true(rounds < 1000);
        if (!loop_run_until(site.loop, paused_or_closed, cs, 3))
            fail_msg("the handler got no more of the body");
        if (cs->closed)
            break;
        /* Paused: whatever the client does now, the server takes no more than the window
         * beyond what the handler has been given, and the client is held at its window. */
        settle();
        loop_run_for(site.loop, 0.002);
        assert_true(cs->upload_sent <= the_app.body_got + window);
        if (cs->upload_sent < len)
            assert_int_equal(nghttp2_session_get_stream_remote_window_size(site.cl.s, cs->id), 0);
        the_app.paused = false;
        pt_request_pause_body(the_app.held[0], false);
    }
    assert_int_equal(site.cl.recv_error, 0);
    assert_true(the_app.body_pieces > 4);
    assert_int_equal(cs->status, 200);
    char want[64];
    uint32_t h = 2166136261u;
    for (uint64_t i = 0; i < len; i++) {
        uint8_t b = pattern(i);
        h = fnv_add(h, &b, 1);
    }
    snprintf(want, sizeof want, "%" PRIu64 " %08x", len, h);
    assert_string_equal(cs->body, want);
    assert_int_equal(the_app.aborts, 0);
    assert_int_equal(the_app.released, 1);
    close_site();
}

static void test_an_answer_before_the_body_resets_it_with_no_error(void **state)
{
    open_site(CONF(""), 65535, 0);
    cstream *cs = client_request(&site.cl, "POST", "/early", 512 * 1024);
    wait_closed(cs);
    assert_int_equal(cs->status, 200);
    assert_string_equal(cs->body, "early");
    assert_true(cs->end_stream);
    assert_true(cs->rst);
    assert_int_equal(cs->rst_code, NGHTTP2_NO_ERROR);
    assert_true(cs->upload_sent < 512 * 1024);
    /* The connection goes on. */
    cstream *next = client_request(&site.cl, "GET", "/next", 0);
    wait_closed(next);
    assert_string_equal(next->body, "/next");
    close_site();
}

static void test_a_reader_that_answers_from_its_first_piece(void **state)
{
    /* The whole body, and its end, wait in the stream when the handler starts reading from an
     * event of its own; it answers from the first piece, which ends the stream then and there:
     * nothing more may be delivered to it (the stream is gone). */
    open_site(CONF(""), 65535, 0);
    cstream *cs = client_request(&site.cl, "POST", "/late-reader", 10);
    loop_run_for(site.loop, 0.05);
    assert_int_equal(the_app.nheld, 1);
    pt_request_read_body(the_app.held[0], answer_first_piece, &the_app);
    wait_closed(cs);
    assert_int_equal(cs->status, 200);
    assert_string_equal(cs->body, "took it");
    assert_int_equal(the_app.body_pieces, 1);
    assert_int_equal(the_app.aborts, 0);
    close_site();
}

static void test_a_reset_from_the_client_aborts_the_handler(void **state)
{
    open_site(CONF(""), 0, 16384);
    the_app.stream_len = 1024 * 1024; /* more than the window: it is still answering */
    cstream *cs = client_request(&site.cl, "GET", "/stream", 0);
    settle();
    assert_int_equal(cs->status, 200);
    assert_false(cs->closed);
    assert_int_equal(the_app.aborts, 0);
    assert_int_equal(
        nghttp2_submit_rst_stream(site.cl.s, NGHTTP2_FLAG_NONE, cs->id, NGHTTP2_CANCEL), 0);
    client_flush(&site.cl);
    settle();
    assert_true(cs->closed);
    assert_int_equal(the_app.aborts, 1);
    assert_int_equal(the_app.released, 1);
    assert_null(the_app.held[0]);
    assert_int_equal(site.counters.resets, 1);
    /* Another stream still works. */
    cstream *next = client_request(&site.cl, "GET", "/next", 0);
    wait_closed(next);
    assert_string_equal(next->body, "/next");
    close_site();
}

static void test_a_killed_connection_aborts_its_streams(void **state)
{
    open_site(CONF(""), 0, 0);
    cstream *cs[3];
    for (int i = 0; i < 3; i++)
        cs[i] = client_request(&site.cl, "GET", "/later", 0);
    cstream *up = client_request(&site.cl, "POST", "/upload", 200 * 1024);
    settle();
    assert_int_equal(the_app.nheld, 4);
    assert_int_equal(the_app.aborts, 0);
    pt_conn_kill(site.c);
    settle();
    assert_int_equal(the_app.aborts, 4);
    assert_int_equal(the_app.released, 4);
    assert_int_equal(live(), 0);
    assert_true(site.cl.eof);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cs[i]->status, 0);
    assert_int_equal(up->status, 0);
    close_site();

    /* The same when the client goes. */
    open_site(CONF(""), 0, 0);
    client_request(&site.cl, "GET", "/later", 0);
    client_request(&site.cl, "GET", "/stream", 0);
    the_app.stream_len = 1024 * 1024;
    settle();
    assert_int_equal(the_app.nheld, 2);
    client_close(&site.cl);
    pair_client_close(&site.p);
    settle();
    assert_int_equal(the_app.aborts, 2);
    assert_int_equal(the_app.released, 2);
    assert_int_equal(live(), 0);
    close_site();
}

static void test_ten_streams_at_once(void **state)
{
    open_site(CONF(""), 0, 0);
    cstream *cs[10];
    char path[10][16];
    /* Even ones answered at once, odd ones later in the reverse order. */
    for (int i = 0; i < 10; i++) {
        snprintf(path[i], sizeof path[i], i % 2 ? "/later" : "/now/%d", i);
        cs[i] = client_request(&site.cl, "GET", path[i], 0);
    }
    settle();
    assert_int_equal(the_app.nheld, 5);
    for (int i = 0; i < 10; i += 2) {
        assert_true(cs[i]->closed);
        assert_string_equal(cs[i]->body, path[i]);
    }
    for (int k = 4; k >= 0; k--) {
        char body[16];
        int n = snprintf(body, sizeof body, "later %d", k);
        answer(the_app.held[k], 200, body, (size_t)n);
        the_app.held[k] = NULL;
        settle();
        assert_true(cs[2 * k + 1]->closed);
        assert_string_equal(cs[2 * k + 1]->body, body);
        for (int j = 0; j < k; j++)
            assert_false(cs[2 * j + 1]->closed);
    }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(cs[i]->status, 200);
        assert_int_equal(cs[i]->close_code, NGHTTP2_NO_ERROR);
    }
    assert_int_equal(the_app.aborts, 0);
    assert_int_equal(the_app.released, 5);
    assert_int_equal(site.counters.streams, 10);
    close_site();
}

static void test_a_handler_without_an_answer_in_time_gets_503(void **state)
{
    open_site("response_timeout 200ms;\n"
              "server {\n    server_name h2.test;\n    server_tokens off;\n}\n",
              0, 0);
    cstream *never = client_request(&site.cl, "GET", "/never", 0);
    cstream *now = client_request(&site.cl, "GET", "/now", 0);
    settle();
    assert_true(now->closed);
    assert_string_equal(now->body, "/now");
    assert_false(never->closed);
    wait_closed(never);
    assert_int_equal(never->status, 503);
    /* HTTP/1 answers the same timeout with porter's status page (test_http1.c). */
    assert_string_equal(never->content_type, "text/html");
    assert_non_null(never->body);
    assert_string_equal(never->body, status_page(503, "Service Unavailable"));
    assert_true(never->end_stream);
    assert_int_equal(never->close_code, NGHTTP2_NO_ERROR);
    assert_int_equal(the_app.aborts, 1);
    assert_int_equal(the_app.released, 1);
    /* The connection serves on. */
    cstream *after = client_request(&site.cl, "GET", "/after", 0);
    wait_closed(after);
    assert_int_equal(after->status, 200);
    assert_string_equal(after->body, "/after");
    close_site();
}

static void test_a_path_with_8bit_bytes_is_refused_as_over_http1(void **state)
{
    open_site(CONF(""), 0, 0);
    cstream *cs = client_request(&site.cl, "GET", "/raw/\xffin", 0);
    wait_closed(cs);
    /* HTTP/1 (llhttp, strict) answers 400 to this target; the handler must not see it. */
    assert_int_equal(cs->status, 400);
    close_site();
}

/* ---- the public API, over a socket ---- */

typedef struct embed_app {
    uint64_t got;
    EVP_MD_CTX *sha;
    int aborts;
} embed_app;

static void embed_on_body(pt_request *req, const void *data, size_t len, int status, void *ud)
{
    embed_app *a = ud;
    if (status == 0) {
        a->got += len;
        EVP_DigestUpdate(a->sha, data, len);
    } else if (status == PT_BODY_END) {
        unsigned char md[32];
        char text[2 * 32 + 32];
        EVP_DigestFinal_ex(a->sha, md, NULL);
        int n = snprintf(text, sizeof text, "%" PRIu64 " ", a->got);
        for (int i = 0; i < 32; i++)
            n += snprintf(text + n, sizeof text - (size_t)n, "%02x", md[i]);
        pt_respond(req, 200, "text/plain", text, (size_t)n);
    }
}

static void embed_on_abort(pt_request *req, void *data)
{
    ((embed_app *)data)->aborts++;
}

static void embed_upload(pt_request *req, void *data)
{
    embed_app *a = data;
    a->got = 0;
    EVP_DigestInit_ex(a->sha, EVP_sha256(), NULL);
    pt_request_on_abort(req, embed_on_abort, a);
    pt_request_read_body(req, embed_on_body, a);
}

static void test_an_embedded_handler_reads_a_posted_body(void **state)
{
    nothing_left_begin();
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    pt_server_options o;
    pt_server_options_init(&o);
    pt_server *s;
    char err[256];
    assert_int_equal(pt_server_new_with(&s, loop, &o, err, sizeof err), 0);
    embed_app a = {.sha = EVP_MD_CTX_new()};
    assert_non_null(a.sha);
    assert_int_equal(pt_server_handle(s, "POST", "/upload", PT_PATH_EXACT, embed_upload, &a), 0);
    assert_int_equal(pt_server_listen(s, "127.0.0.1", "0", PT_LISTEN_HTTP2), 0);
    assert_int_equal(pt_server_start(s), 0);
    struct sockaddr_storage addr;
    assert_int_equal(pt_server_addresses(s, &addr, 1), 1);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(struct sockaddr_in)), 0);
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    client cl;
    client_open(&cl, loop, fd, fd, 0);
    const uint64_t len = 1024 * 1024;
    cstream *cs = client_request(&cl, "POST", "/upload", len);
    if (!loop_run_until(loop, stream_closed, cs, 4))
        fail_msg("no answer");
    assert_int_equal(cl.recv_error, 0);
    assert_int_equal(cs->status, 200);

    /* What the client sent, hashed here. */
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    assert_non_null(sha);
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    for (uint64_t i = 0; i < len; i++) {
        uint8_t b = pattern(i);
        EVP_DigestUpdate(sha, &b, 1);
    }
    unsigned char md[32];
    EVP_DigestFinal_ex(sha, md, NULL);
    EVP_MD_CTX_free(sha);
    char want[2 * 32 + 32];
    int n = snprintf(want, sizeof want, "%" PRIu64 " ", len);
    for (int i = 0; i < 32; i++)
        n += snprintf(want + n, sizeof want - (size_t)n, "%02x", md[i]);
    assert_string_equal(cs->body, want);
    assert_int_equal(a.aborts, 0);

    client_close(&cl);
    close(fd);
    pt_server_free(s);
    EVP_MD_CTX_free(a.sha);
    pt_custodian_reap();
    pt_chunk_pool_trim();
    assert_nothing_left(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_get_is_answered_from_memory),
        cmocka_unit_test(test_head_gets_the_head_only),
        cmocka_unit_test(test_a_file_larger_than_the_windows_follows_them),
        cmocka_unit_test(test_a_streaming_handler_waits_for_its_writable_callback),
        cmocka_unit_test(test_a_paused_body_holds_the_client_at_its_window),
        cmocka_unit_test(test_an_answer_before_the_body_resets_it_with_no_error),
        cmocka_unit_test(test_a_reset_from_the_client_aborts_the_handler),
        cmocka_unit_test(test_a_killed_connection_aborts_its_streams),
        cmocka_unit_test(test_ten_streams_at_once),
        cmocka_unit_test(test_a_reader_that_answers_from_its_first_piece),
        cmocka_unit_test(test_a_handler_without_an_answer_in_time_gets_503),
        cmocka_unit_test(test_an_embedded_handler_reads_a_posted_body),
        cmocka_unit_test(test_a_path_with_8bit_bytes_is_refused_as_over_http1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
