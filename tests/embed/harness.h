/*
 * What the embedding tests share: a libev loop run until a condition holds (bounded by a
 * watchdog), HTTP clients on threads of their own with blocking sockets (porter runs on the
 * test's thread, as an embedder's would), response parsing, and the end-of-test checks (no live
 * custodian or buffer, no leaked fd, no active watcher).
 *
 * The tests use porter.h only: what they exercise is the public API.
 */
#ifndef PORTER_TESTS_EMBED_HARNESS_H
#define PORTER_TESTS_EMBED_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "porter.h"
#include "../support.h"

#ifndef PORTER_SOURCE_DIR
#error "PORTER_SOURCE_DIR (the source tree) is defined by tests/CMakeLists.txt"
#endif

#define WATCHDOG_SECONDS 10.0
#define CLIENT_TIMEOUT_SECONDS 10
#define MAX_CLIENTS 8
#define CLIENT_BUF (512 * 1024)

typedef struct fixture fixture;
typedef bool (*pred_fn)(fixture *f);

/* One HTTP client on its own thread: connects, sends `parts` with `gap_ms` between them, then
 * reads until EOF, until `stop_after` bytes, or until the response holds `stop_at`. */
typedef struct client {
    fixture *f;
    int port;
    const char *parts[8];
    size_t nparts;
    int gap_ms;
    size_t stop_after;
    const char *stop_at;
    int leave_after_ms; /* > 0: close this long after sending, without reading */
    char *buf;          /* CLIENT_BUF bytes */
    size_t len;
    int err; /* errno of a failure, 0 if none */
    bool eof;
    volatile bool done;
    pthread_t thread;
    bool started;
} client;

struct fixture {
    struct ev_loop *loop;
    ev_timer watchdog;
    bool watchdog_fired;
    ev_prepare until; /* before each poll: stops the loop once the condition holds */
    ev_async wake;    /* a client finished */
    pred_fn pred;
    void *data;
    client clients[MAX_CLIENTS];
    bool stopped; /* a server's stopped callback ran */
    double stopped_at;
};

static inline double now_of(fixture *f)
{
    ev_now_update(f->loop);
    return ev_now(f->loop);
}

static inline void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    fixture *f = w->data;
    f->watchdog_fired = true;
    ev_break(loop, EVBREAK_ALL);
}

static inline void on_until(struct ev_loop *loop, ev_prepare *w, int revents)
{
    fixture *f = w->data;
    if (f->pred && f->pred(f))
        ev_break(loop, EVBREAK_ALL);
}

static inline void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    /* Only to wake the loop: the prepare watcher looks at the condition. */
}

/* Runs the loop until `pred` holds (checked before every poll, so after the callbacks of the
 * previous iteration); fails the test when the watchdog (`seconds`) fires first. */
static inline void run_until(fixture *f, pred_fn pred, double seconds)
{
    f->pred = pred;
    f->watchdog_fired = false;
    if (pred(f))
        return;
    ev_timer_set(&f->watchdog, seconds, 0.);
    ev_timer_start(f->loop, &f->watchdog);
    ev_unref(f->loop);
    ev_prepare_start(f->loop, &f->until);
    ev_unref(f->loop);
    ev_run(f->loop, 0);
    ev_ref(f->loop);
    ev_prepare_stop(f->loop, &f->until);
    ev_ref(f->loop);
    ev_timer_stop(f->loop, &f->watchdog);
    f->pred = NULL;
    if (f->watchdog_fired)
        fail_msg("the loop ran %.1f s without the condition becoming true", seconds);
}

static inline bool always_false(fixture *f)
{
    return false;
}

/* Runs the loop for `seconds`, whatever happens. */
static inline void run_for(fixture *f, double seconds)
{
    f->pred = always_false;
    ev_timer_set(&f->watchdog, seconds, 0.);
    ev_timer_start(f->loop, &f->watchdog);
    ev_unref(f->loop);
    ev_prepare_start(f->loop, &f->until);
    ev_unref(f->loop);
    ev_run(f->loop, 0);
    ev_ref(f->loop);
    ev_prepare_stop(f->loop, &f->until);
    ev_ref(f->loop);
    ev_timer_stop(f->loop, &f->watchdog);
    f->pred = NULL;
}

static inline fixture *fixture_new(void)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    signal(SIGPIPE, SIG_IGN);
    nothing_left_begin();
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    ev_timer_init(&f->watchdog, on_watchdog, WATCHDOG_SECONDS, 0.);
    f->watchdog.data = f;
    ev_prepare_init(&f->until, on_until);
    f->until.data = f;
    ev_async_init(&f->wake, on_wake);
    /* Always on, so no wake-up is lost, and unreferenced, so it keeps no loop running. */
    ev_async_start(f->loop, &f->wake);
    ev_unref(f->loop);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        f->clients[i].f = f;
        f->clients[i].buf = malloc(CLIENT_BUF + 1);
        assert_non_null(f->clients[i].buf);
    }
    return f;
}

/* The end of every test: nothing porter made is left (custodians, buffers, fds, watchers). */
static inline void fixture_free(fixture *f)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (f->clients[i].started)
            pthread_join(f->clients[i].thread, NULL);
        free(f->clients[i].buf);
    }
    ev_ref(f->loop);
    ev_async_stop(f->loop, &f->wake);
    struct ev_loop *loop = f->loop;
    free(f);
    assert_nothing_left(loop);
}

/* ---- servers ---- */

static inline void on_stopped(pt_server *s, void *data)
{
    fixture *f = data;
    f->stopped = true;
    f->stopped_at = now_of(f);
}

static inline bool is_stopped(fixture *f)
{
    return f->stopped;
}

/* A server from options listening on 127.0.0.1, an ephemeral port; returns the port. */
static inline pt_server *server_new(fixture *f, const pt_server_options *o, int *port)
{
    pt_server *s = NULL;
    char err[512] = "";
    int r = pt_server_new_with(&s, f->loop, o, err, sizeof err);
    if (r < 0)
        fail_msg("pt_server_new_with: %s (%s)", pt_strerror(r), err);
    assert_int_equal(pt_server_listen(s, "127.0.0.1", "0", 0), 0);
    struct sockaddr_storage ss;
    assert_int_equal(pt_server_addresses(s, &ss, 1), 1);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return s;
}

/* Stops `s` gracefully, runs the loop until it has stopped, and frees it. */
static inline void server_stop_free(fixture *f, pt_server *s)
{
    f->stopped = false;
    pt_server_stop(s, on_stopped, f);
    run_until(f, is_stopped, WATCHDOG_SECONDS);
    pt_server_free(s);
}

/* ---- clients ---- */

static inline void *client_main(void *arg)
{
    client *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_SECONDS};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        c->err = errno;
        goto out;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (size_t i = 0; i < c->nparts; i++) {
        if (i && c->gap_ms)
            usleep((useconds_t)c->gap_ms * 1000);
        size_t n = strlen(c->parts[i]), off = 0;
        while (off < n) {
            ssize_t w = send(fd, c->parts[i] + off, n - off, MSG_NOSIGNAL);
            if (w < 0) {
                c->err = errno;
                goto out;
            }
            off += (size_t)w;
        }
    }
    if (c->leave_after_ms > 0) {
        usleep((useconds_t)c->leave_after_ms * 1000);
        goto out;
    }
    for (;;) {
        if (c->stop_after && c->len >= c->stop_after)
            break;
        if (c->stop_at && memmem(c->buf, c->len, c->stop_at, strlen(c->stop_at)))
            break;
        if (c->len == CLIENT_BUF)
            break;
        ssize_t r = recv(fd, c->buf + c->len, CLIENT_BUF - c->len, 0);
        if (r < 0) {
            if (errno != ECONNRESET)
                c->err = errno;
            break;
        }
        if (r == 0) {
            c->eof = true;
            break;
        }
        c->len += (size_t)r;
    }
out:
    c->buf[c->len] = '\0';
    if (fd >= 0)
        close(fd);
    c->done = true;
    ev_async_send(c->f->loop, &c->f->wake);
    return NULL;
}

/* Starts client `i` sending the NULL-terminated list of request parts. */
static inline client *client_start(fixture *f, int i, int port, int gap_ms, ...)
{
    client *c = &f->clients[i];
    assert_false(c->started);
    c->port = port;
    c->gap_ms = gap_ms;
    c->nparts = 0;
    c->len = 0;
    va_list ap;
    va_start(ap, gap_ms);
    for (const char *p; (p = va_arg(ap, const char *)) != NULL && c->nparts < 8;)
        c->parts[c->nparts++] = p;
    va_end(ap);
    c->started = true;
    assert_int_equal(pthread_create(&c->thread, NULL, client_main, c), 0);
    return c;
}

static inline bool client0_done(fixture *f)
{
    return f->clients[0].done;
}

static inline bool all_clients_done(fixture *f)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (f->clients[i].started && !f->clients[i].done)
            return false;
    return true;
}

/* Sends `request` on a new connection and runs the loop until the answer is complete
 * (connection closed by the server: requests say "Connection: close"). */
static inline client *fetch(fixture *f, int port, const char *request)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (f->clients[i].started)
            continue;
        client *c = client_start(f, i, port, 0, request, NULL);
        run_until(f, all_clients_done, WATCHDOG_SECONDS);
        pthread_join(c->thread, NULL);
        c->started = false;
        c->done = false;
        return c;
    }
    fail_msg("no free client");
    return NULL;
}

/* ---- responses ---- */

static inline int status_of(const client *c)
{
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    return status;
}

/* The value of header `name` in the response (copied into `out`), or NULL. */
static inline const char *header_of(const client *c, const char *name, char *out, size_t cap)
{
    const char *end = strstr(c->buf, "\r\n\r\n");
    size_t n = strlen(name);
    for (const char *l = strstr(c->buf, "\r\n"); l && end && l < end; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            const char *v = h + n + 1;
            while (*v == ' ')
                v++;
            size_t len = (size_t)(strstr(v, "\r\n") - v);
            if (len >= cap)
                len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

static inline const char *body_of(const client *c)
{
    const char *end = strstr(c->buf, "\r\n\r\n");
    return end ? end + 4 : "";
}

/* Decodes a chunked body in place into `out`; returns its length, or -1 if malformed or
 * without its last chunk. */
static inline long dechunk(const char *body, char *out, size_t cap)
{
    size_t len = 0;
    for (;;) {
        char *next;
        unsigned long size = strtoul(body, &next, 16);
        if (next == body || strncmp(next, "\r\n", 2) != 0)
            return -1;
        body = next + 2;
        if (size == 0)
            return strncmp(body, "\r\n", 2) == 0 ? (long)len : -1;
        if (len + size > cap || strlen(body) < size + 2 || strncmp(body + size, "\r\n", 2))
            return -1;
        memcpy(out + len, body, size);
        len += size;
        body += size + 2;
    }
}

#endif
