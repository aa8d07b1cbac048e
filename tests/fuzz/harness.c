/*
 * The harness of the HTTP fuzz targets (harness.h).
 *
 * It includes server.c, as a unit test includes the file it tests: a connection over a pair
 * of pipes is admitted to a site's connection manager, which the public API does not expose.
 * The server is otherwise made and used as the porter executable makes it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/server.c"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/harness.h"

/* Upstream connections served at once; the proxy opens one per request in flight. */
#define MAX_UPSTREAM 16
/* Bytes of porter's answers kept for the checker; more are read and counted only. */
#define OUT_MAX (32u << 20)
/* Seconds one step may keep porter busy (it never waits for a timer) before the input is called
 * a hang. */
#define SETTLE_MAX 10.0

/* The upstream's answer when the exchange gives none. */
#define FIXED_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n"
#define FIXED_BODY "upstream\n"

typedef struct upconn {
    int fd; /* -1: free */
    ev_io io;
    llhttp_t parser;
    bool tunnel;    /* the request asked to upgrade: what follows is not HTTP */
    bool head;      /* the request being parsed is HEAD */
    bool owes_rest; /* its first answer went out without the upstream's last bytes */
    char *pending;  /* answers not yet written */
    size_t pending_len, pending_cap;
    char seen[8192]; /* the first bytes it received, for the message of a failed check */
    size_t seen_len;
} upconn;

static struct harness {
    struct ev_loop *loop;
    pt_server *server;
    pt_site *site;
    char dir[64];
    /* the upstream */
    int listen_fd;
    ev_io accept_io;
    upconn up[MAX_UPSTREAM];
    llhttp_settings_t up_settings;
    size_t up_requests;
    bool split_sent; /* the exchange's first answer went out in two writes */
    const fuzz_exchange *x;
    /* the client */
    int to_porter, from_porter; /* our ends of the pipes */
    ev_io client_w, client_r;
    const uint8_t *send;
    size_t send_len;
    char *out;
    size_t out_len, out_cap;
    bool out_full, out_eof;
    /* steps */
    ev_idle idle;
    ev_timer deadline;
    bool quiet;
    bool show; /* PORTER_FUZZ_SHOW is set: each exchange's answers go to stderr */
    /* what the server holds between exchanges */
    pt_resource_counts base;
    size_t base_timers;
} h;

/* The descriptors open (the one reading /proc/self/fd aside); `show`: listed on stderr. */
static int count_fds(bool show)
{
    DIR *d = opendir("/proc/self/fd");
    FUZZ_CHECK(d, "/proc/self/fd: %s", strerror(errno));
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = show ? readlink(path, target, sizeof target - 1) : -1;
        if (len >= 0)
            fprintf(stderr, "fd %s: %.*s\n", e->d_name, (int)len, target);
    }
    closedir(d);
    return n - 1;
}

/* ---- the upstream ---- */

static void up_close(upconn *u)
{
    if (u->fd < 0)
        return;
    ev_io_stop(h.loop, &u->io);
    close(u->fd);
    u->fd = -1;
    free(u->pending);
    u->pending = NULL;
    u->pending_len = u->pending_cap = 0;
}

static void up_flush(upconn *u)
{
    while (u->pending_len) {
        ssize_t n = write(u->fd, u->pending, u->pending_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) { /* the proxy closed it */
            up_close(u);
            return;
        }
        memmove(u->pending, u->pending + n, u->pending_len - (size_t)n);
        u->pending_len -= (size_t)n;
    }
    ev_io_stop(h.loop, &u->io);
    ev_io_set(&u->io, u->fd, EV_READ | (u->pending_len ? EV_WRITE : 0));
    ev_io_start(h.loop, &u->io);
}

static void up_queue(upconn *u, const void *p, size_t len)
{
    if (len == 0)
        return;
    if (u->pending_len + len > u->pending_cap) {
        u->pending_cap = (u->pending_len + len) * 2;
        u->pending = realloc(u->pending, u->pending_cap);
        FUZZ_CHECK(u->pending, "out of memory");
    }
    memcpy(u->pending + u->pending_len, p, len);
    u->pending_len += len;
}

static int up_on_headers_complete(llhttp_t *p)
{
    upconn *u = p->data;
    u->head = p->method == HTTP_HEAD;
    return 0;
}

/* A whole request came: it is answered. */
static int up_on_message_complete(llhttp_t *p)
{
    upconn *u = p->data;
    const fuzz_exchange *x = h.x;
    h.up_requests++;
    if (!x->upstream) {
        up_queue(u, FIXED_HEAD, sizeof FIXED_HEAD - 1);
        if (!u->head)
            up_queue(u, FIXED_BODY, sizeof FIXED_BODY - 1);
    } else if (!h.split_sent) {
        h.split_sent = u->owes_rest = true;
        up_queue(u, x->upstream, x->upstream_split);
    } else {
        up_queue(u, x->upstream, x->upstream_len);
    }
    return 0;
}

static void up_read(upconn *u)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(u->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            up_close(u);
            return;
        }
        if (u->tunnel)
            continue;
        size_t keep =
            sizeof u->seen - u->seen_len < (size_t)n ? sizeof u->seen - u->seen_len : (size_t)n;
        memcpy(u->seen + u->seen_len, buf, keep);
        u->seen_len += keep;
        llhttp_errno_t err = llhttp_execute(&u->parser, buf, (size_t)n);
        if (err == HPE_PAUSED_UPGRADE) {
            u->tunnel = true;
        } else {
            FUZZ_CHECK(err == HPE_OK,
                       "porter sent its upstream a malformed request: %s (%s) in:\n%.*s",
                       llhttp_errno_name(err), llhttp_get_error_reason(&u->parser),
                       (int)u->seen_len, u->seen);
        }
    }
    up_flush(u);
}

static void on_upstream(struct ev_loop *loop, ev_io *w, int revents)
{
    upconn *u = w->data;
    if (revents & EV_READ)
        up_read(u);
    if (u->fd >= 0 && (revents & EV_WRITE))
        up_flush(u);
}

static void on_upstream_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    int fd;
    while ((fd = accept4(h.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        upconn *u = NULL;
        for (size_t i = 0; i < MAX_UPSTREAM && !u; i++)
            if (h.up[i].fd < 0)
                u = &h.up[i];
        if (!u) { /* more requests in flight than an exchange should make: refused */
            close(fd);
            continue;
        }
        memset(u, 0, sizeof *u);
        u->fd = fd;
        llhttp_init(&u->parser, HTTP_REQUEST, &h.up_settings);
        u->parser.data = u;
        ev_io_init(&u->io, on_upstream, fd, EV_READ);
        u->io.data = u;
        ev_io_start(loop, &u->io);
    }
}

/* ---- the client ---- */

static void on_client_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    while (h.send_len) {
        ssize_t n = write(h.to_porter, h.send, h.send_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) { /* porter closed its end: the rest is never read */
            h.send_len = 0;
            break;
        }
        h.send += n;
        h.send_len -= (size_t)n;
    }
    ev_io_stop(loop, w);
}

static void on_client_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    for (;;) {
        if (h.out_len == h.out_cap && h.out_cap < OUT_MAX) {
            h.out_cap = h.out_cap ? 2 * h.out_cap : 65536;
            h.out = realloc(h.out, h.out_cap);
            FUZZ_CHECK(h.out, "out of memory");
        }
        char scratch[65536];
        bool keep = h.out_len < h.out_cap;
        char *at = keep ? h.out + h.out_len : scratch;
        size_t room = keep ? h.out_cap - h.out_len : sizeof scratch;
        ssize_t n = read(h.from_porter, at, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        FUZZ_CHECK(n >= 0, "reading porter's answers: %s", strerror(errno));
        if (n == 0) {
            h.out_eof = true;
            ev_io_stop(loop, w);
            return;
        }
        if (keep)
            h.out_len += (size_t)n;
        else
            h.out_full = true;
    }
}

static void client_send(const uint8_t *p, size_t len)
{
    h.send = p;
    h.send_len = len;
    if (len)
        ev_io_start(h.loop, &h.client_w);
}

/* ---- steps ---- */

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    h.quiet = true;
    ev_idle_stop(loop, w);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    FUZZ_CHECK(false, "porter was still busy after %.0f s", SETTLE_MAX);
}

/* Runs the loop until an iteration finds nothing to do: porter has done all it can with what
 * it was given, and waits for the client, the upstream or a timer. (The idle watcher has the
 * lowest priority: it runs only in an iteration with no other event.) */
static void settle(void)
{
    h.quiet = false;
    ev_idle_start(h.loop, &h.idle);
    ev_timer_set(&h.deadline, SETTLE_MAX, 0.);
    ev_timer_start(h.loop, &h.deadline);
    while (!h.quiet)
        ev_run(h.loop, EVRUN_ONCE);
    ev_timer_stop(h.loop, &h.deadline);
}

static size_t live_connections(void)
{
    pt_connmgr_stats st;
    pt_connmgr_get_stats(h.site->mgr, &st);
    return st.live;
}

const char *fuzz_harness_run(const fuzz_exchange *x, size_t *len, bool *complete)
{
    /* Descriptors are counted from here: the sanitizers' symbolizer opens pipes of its own
     * between two inputs. */
    int fds_before = count_fds(false);
    h.x = x;
    h.up_requests = 0;
    h.split_sent = false;
    h.out_len = 0;
    h.out_full = h.out_eof = false;
    int to[2], from[2];
    FUZZ_CHECK(pipe2(to, O_NONBLOCK | O_CLOEXEC) == 0 && pipe2(from, O_NONBLOCK | O_CLOEXEC) == 0,
               "pipe2: %s", strerror(errno));
    h.to_porter = to[1];
    h.from_porter = from[0];
    ev_io_set(&h.client_w, to[1], EV_WRITE);
    ev_io_set(&h.client_r, from[0], EV_READ);
    ev_io_start(h.loop, &h.client_r);
    FUZZ_CHECK(pt_connmgr_admit_pair(h.site->mgr, to[0], from[1]), "admission refused");

    client_send(x->client, x->client_split);
    settle();
    client_send(x->client + x->client_split, x->client_len - x->client_split);
    settle();
    for (size_t i = 0; x->upstream && i < MAX_UPSTREAM; i++) {
        upconn *u = &h.up[i];
        if (u->fd >= 0 && u->owes_rest) {
            u->owes_rest = false;
            up_queue(u, x->upstream + x->upstream_split, x->upstream_len - x->upstream_split);
            up_flush(u);
        }
    }
    settle();
    for (size_t i = 0; i < MAX_UPSTREAM; i++)
        up_close(&h.up[i]);
    settle();
    ev_io_stop(h.loop, &h.client_w);
    close(to[1]);
    settle();

    /* The client and the upstream are gone: so must the connection be, and all it held. */
    FUZZ_CHECK(live_connections() == 0, "the connection outlived its client and its upstream");
    FUZZ_CHECK(h.out_eof, "porter's end of the connection is still open");
    ev_io_stop(h.loop, &h.client_r);
    close(from[0]);
    pt_custodian_reap();
    pt_resource_counts now;
    pt_resource_counts_get(&now);
    FUZZ_CHECK(now.custodians == h.base.custodians && now.unreaped == 0 &&
                   now.chunks == h.base.chunks,
               "custodians %zu (%zu before), unreaped %zu, chunks %zu (%zu before)", now.custodians,
               h.base.custodians, now.unreaped, now.chunks, h.base.chunks);
    FUZZ_CHECK(pt_timer_armed_count() == h.base_timers, "%zu timers armed, %zu before",
               pt_timer_armed_count(), h.base_timers);
    int fds = count_fds(false);
    if (fds != fds_before)
        count_fds(true);
    FUZZ_CHECK(fds == fds_before, "%d descriptors open, %d before", fds, fds_before);
    if (h.show) {
        fprintf(stderr, "---- %zu bytes to the client, %zu requests to the upstream ----\n",
                h.out_len, h.up_requests);
        fwrite(h.out, 1, h.out_len, stderr);
        fputs("\n----\n", stderr);
    }
    *len = h.out_len;
    *complete = !h.out_full;
    return h.out;
}

size_t fuzz_harness_upstream_requests(void)
{
    return h.up_requests;
}

/* ---- embedded handlers ---- */

/* A handler's state, in its request's custodian; a timer moves it on. */
typedef struct deferred {
    pt_request *req;
    struct ev_loop *loop;
    ev_timer timer;
    char *body;
    size_t body_len;
} deferred;

static void deferred_release(void *data)
{
    deferred *d = data;
    ev_timer_stop(d->loop, &d->timer);
}

static deferred *deferred_new(pt_request *req, void (*cb)(struct ev_loop *, ev_timer *, int))
{
    pt_custodian *cust = pt_request_custodian(req);
    deferred *d = pt_custodian_alloc(cust, sizeof *d);
    d->req = req;
    d->loop = h.loop;
    ev_timer_init(&d->timer, cb, 0., 0.);
    d->timer.data = d;
    FUZZ_CHECK(pt_custodian_register(cust, deferred_release, d), "request custodian shut down");
    return d;
}

/* /later: answers on the next loop iteration, without reading the body (porter discards it). */
static void later_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    deferred *d = w->data;
    pt_respond(d->req, 200, "text/plain", "later\n", 6);
}

static void on_later(pt_request *req, void *data)
{
    deferred *d = deferred_new(req, later_fire);
    ev_timer_start(d->loop, &d->timer);
}

/* /stream: "hello" now, "world" on the next iteration; chunked, or of known length with a
 * query. */
static void stream_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    deferred *d = w->data;
    if (pt_response_write(d->req, "world", 5) >= 0)
        pt_response_end(d->req);
}

static void on_stream(pt_request *req, void *data)
{
    deferred *d = deferred_new(req, stream_fire);
    int64_t length = pt_request_query(req).len ? 10 : -1;
    if (pt_respond_stream(req, 200, "text/plain", length) < 0 ||
        pt_response_write(req, "hello", 5) < 0)
        return;
    ev_timer_start(d->loop, &d->timer);
}

/* POST /echo: the body read piece by piece, each followed by a pause until the next
 * iteration (back-pressure), then sent back whole. */
static void echo_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    deferred *d = w->data;
    pt_request_pause_body(d->req, false);
}

static void echo_body(pt_request *req, const void *data, size_t len, int status, void *ud)
{
    deferred *d = ud;
    if (status == PT_BODY_END) {
        pt_respond(req, 200, "application/octet-stream", d->body, d->body_len);
    } else if (status == 0) {
        d->body = realloc(d->body, d->body_len + len + 1);
        FUZZ_CHECK(d->body, "out of memory");
        memcpy(d->body + d->body_len, data, len);
        d->body_len += len;
        pt_request_pause_body(req, true);
        ev_timer_start(d->loop, &d->timer);
    }
}

static void echo_release(void *data)
{
    free(*(char **)data);
}

static void on_echo(pt_request *req, void *data)
{
    deferred *d = deferred_new(req, echo_resume);
    FUZZ_CHECK(pt_custodian_register(pt_request_custodian(req), echo_release, &d->body),
               "request custodian shut down");
    pt_request_read_body(req, echo_body, d);
}

/* ---- set-up ---- */

static void write_file(const char *rel, const char *content, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", h.dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0 && write(fd, content, len) == (ssize_t)len, "%s: %s", path, strerror(errno));
    close(fd);
}

static void make_dir(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", h.dir, rel);
    FUZZ_CHECK(mkdir(path, 0755) == 0, "%s: %s", path, strerror(errno));
}

static void make_link(const char *target, const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", h.dir, rel);
    FUZZ_CHECK(symlink(target, path) == 0, "%s: %s", path, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

static void remove_dir(void)
{
    nftw(h.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The documents: small files (cached in memory), one larger than file_cache_max_file (sent
 * with sendfile), a listing, precompressed variants, links inside and outside the root. */
static void make_tree(void)
{
    static char big[20000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    make_dir("root");
    write_file("root/index.html", "<html>index</html>\n", 19);
    write_file("root/404.html", "<html>not here</html>\n", 22);
    write_file("root/small.txt", big, 100);
    write_file("root/big.bin", big, sizeof big);
    write_file("root/a b.txt", "space\n", 6);
    make_dir("root/files");
    write_file("root/files/one.txt", "one\n", 4);
    write_file("root/files/two.html", "<p>two</p>\n", 11);
    make_dir("root/files/sub");
    make_dir("root/gz");
    write_file("root/gz/app.js", "var app = 1;\n", 13);
    write_file("root/gz/app.js.gz", "not really gzip\n", 16);
    write_file("root/gz/app.js.br", "not really brotli\n", 18);
    make_dir("root/spa");
    write_file("root/spa/index.html", "<html>spa</html>\n", 17);
    make_link("files", "root/inside");
    make_link("/etc", "root/outside");
    make_dir("other");
    write_file("other/index.html", "<html>other</html>\n", 19);
}

/* A port no one listens on now, for the two virtual hosts to share (port 0 would give each
 * its own). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    FUZZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                   getsockname(fd, (struct sockaddr *)&a, &alen) == 0,
               "picking a port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

static void write_conf(int port, bool http2)
{
    char conf[4096];
    int n = snprintf(conf, sizeof conf,
                     "error_log /dev/null info;\n"
                     "max_request_body_length 64k;\n"
                     "max_request_line_length 2k;\n"
                     "max_request_header_length 4k;\n"
                     "max_request_headers 50;\n"
                     "request_read_timeout 5s;\n"
                     "request_body_timeout 5s;\n"
                     "response_timeout 5s;\n"
                     "keepalive_timeout 5s;\n"
                     "keepalive_requests 100;\n"
                     "lingering_timeout 1s;\n"
                     "file_cache_max_file 4k;\n"
                     "open_file_cache off;\n"
                     "upstream app {\n"
                     "    server unix:%s/up.sock;\n"
                     "    keepalive 4;\n"
                     "}\n"
                     "server {\n"
                     "    listen 127.0.0.1:%d%s;\n"
                     "    server_name fuzz.test *.fuzz.test;\n"
                     "    root root;\n"
                     "    access_log /dev/null;\n"
                     "    add_header X-Fuzz yes;\n"
                     "    error_page 404 /404.html;\n"
                     "    location /proxy/ {\n"
                     "        proxy_pass http://app/;\n"
                     "        proxy_set_header X-Client-Host $host;\n"
                     "    }\n"
                     "    location /raw/ { proxy_pass http://unix:%s/up.sock:; }\n"
                     "    location /files/ { autoindex on; }\n"
                     "    location /gz/ { precompressed on; expires 1h; }\n"
                     "    location /spa/ { try_files $uri $uri/ /spa/index.html; }\n"
                     "    location /try/ { try_files $uri @fallback; }\n"
                     "    location @fallback { return 200 \"fallback\\n\"; }\n"
                     "    location = /old { return 301 /new; }\n"
                     "    location ~* \\.(php|cgi)$ { return 403; }\n"
                     "    location = /porter-status { status; }\n"
                     "}\n"
                     "server {\n"
                     "    listen 127.0.0.1:%d;\n"
                     "    server_name other.test;\n"
                     "    root other;\n"
                     "    max_ranges 2;\n"
                     "    etag off;\n"
                     "    server_tokens off;\n"
                     "    location /app/ { proxy_pass http://app; }\n"
                     "}\n",
                     h.dir, port, http2 ? " http2" : "", h.dir, port);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof conf, "conf too long");
    write_file("porter.conf", conf, (size_t)n);
}

static void open_upstream(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/up.sock", h.dir);
    h.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(h.listen_fd >= 0 && bind(h.listen_fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                   listen(h.listen_fd, 64) == 0,
               "upstream socket %s: %s", a.sun_path, strerror(errno));
    ev_io_init(&h.accept_io, on_upstream_accept, h.listen_fd, EV_READ);
    ev_io_start(h.loop, &h.accept_io);
    for (size_t i = 0; i < MAX_UPSTREAM; i++)
        h.up[i].fd = -1;
    llhttp_settings_init(&h.up_settings);
    h.up_settings.on_headers_complete = up_on_headers_complete;
    h.up_settings.on_message_complete = up_on_message_complete;
}

void fuzz_harness_init(void)
{
    fuzz_harness_init_with(false);
}

void fuzz_harness_init_with(bool http2)
{
    fuzz_temp_dir(h.dir, sizeof h.dir, "http");
    atexit(remove_dir);
    make_tree();
    h.loop = ev_loop_new(EVFLAG_AUTO);
    open_upstream();

    char path[128], err[512];
    snprintf(path, sizeof path, "%s/porter.conf", h.dir);
    int r = -EADDRINUSE;
    for (int tries = 0; r == -EADDRINUSE && tries < 10; tries++) {
        write_conf(free_port(), http2);
        r = pt_server_new(&h.server, h.loop, path, h.dir, err, sizeof err);
    }
    FUZZ_CHECK(r == 0, "the server: %s", err);
    FUZZ_CHECK(pt_server_handle(h.server, NULL, "/later", PT_PATH_EXACT, on_later, NULL) == 0 &&
                   pt_server_handle(h.server, "GET", "/stream", PT_PATH_EXACT, on_stream, NULL) ==
                       0 &&
                   pt_server_handle(h.server, "POST", "/echo", PT_PATH_EXACT, on_echo, NULL) == 0,
               "handlers");
    FUZZ_CHECK(h.server->nsites == 1, "%zu sites, one expected", h.server->nsites);
    h.site = h.server->sites[0];

    ev_idle_init(&h.idle, on_idle);
    ev_set_priority(&h.idle, EV_MINPRI);
    ev_init(&h.deadline, on_deadline);
    ev_init(&h.client_w, on_client_writable);
    ev_init(&h.client_r, on_client_readable);
    pt_resource_counts_get(&h.base);
    h.base_timers = pt_timer_armed_count();
    h.show = getenv("PORTER_FUZZ_SHOW") != NULL;
}
