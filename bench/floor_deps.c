/*
 * floor-deps: the floor (floor.c) on porter's two request-path libraries, to show what they
 * cost on their own. libev runs the loop (its epoll backend, one io watcher per connection) and
 * llhttp parses every request; the answer is the floor's fixed 1 KiB response. No routing, no
 * file, no timer, no per-request memory. Between the floor and porter it splits porter's cost
 * into the libraries' share (this minus the floor) and porter's own (porter minus this).
 *
 *   floor-deps PORT
 *   floor-deps -V      prints the libraries' versions
 *
 * 127.0.0.1:PORT. A request that is not keep-alive (HTTP/1.0 without "Connection: keep-alive",
 * or "Connection: close") gets the response with "Connection: close", and the connection is
 * closed once every request read so far has been answered. A request llhttp rejects closes the
 * connection. SIGTERM or SIGINT stops it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BODY_SIZE 1024
#define MAX_IOV 64

struct conn {
    ev_io io; /* first: the watcher is the connection */
    llhttp_t parser;
    unsigned pending; /* responses owed */
    unsigned off;     /* bytes of the first owed response already written */
    unsigned char close_when_done;
};

struct reply {
    char data[256 + BODY_SIZE];
    size_t len;
};
static struct reply replies[2]; /* [1] says "Connection: close" */
static llhttp_settings_t settings;

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    c->pending++;
    if (!llhttp_should_keep_alive(p))
        c->close_when_done = 1;
    return 0;
}

static void drop(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c);
}

static void set_events(struct ev_loop *loop, struct conn *c, int events)
{
    if (c->io.events == events)
        return;
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->io.fd, events);
    ev_io_start(loop, &c->io);
}

/* Writes owed responses until done or the socket is full. Returns -1 if c was dropped. */
static int flush(struct ev_loop *loop, struct conn *c)
{
    const struct reply *r = &replies[c->close_when_done];

    while (c->pending > 0) {
        struct iovec iov[MAX_IOV];
        int n = 0;

        iov[n].iov_base = (char *)r->data + c->off;
        iov[n++].iov_len = r->len - c->off;
        while (n < MAX_IOV && (unsigned)n < c->pending) {
            iov[n].iov_base = (char *)r->data;
            iov[n++].iov_len = r->len;
        }
        ssize_t w = writev(c->io.fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                set_events(loop, c, EV_READ | EV_WRITE);
                return 0;
            }
            drop(loop, c);
            return -1;
        }
        size_t done = (size_t)w + c->off;
        c->pending -= (unsigned)(done / r->len);
        c->off = (unsigned)(done % r->len);
    }
    if (c->close_when_done) {
        drop(loop, c);
        return -1;
    }
    set_events(loop, c, EV_READ);
    return 0;
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = (struct conn *)w;
    char buf[16384];

    if (revents & EV_READ) {
        ssize_t r = read(w->fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(loop, c);
            return;
        }
        if (r > 0 && llhttp_execute(&c->parser, buf, (size_t)r) != HPE_OK) {
            drop(loop, c);
            return;
        }
    }
    flush(loop, c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int one = 1;
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of fds: the client waits in the backlog */
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        llhttp_init(&c->parser, HTTP_REQUEST, &settings);
        c->parser.data = c;
        ev_io_init(&c->io, on_conn, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct rlimit rl;
    int one = 1;

    if (argc == 2 && strcmp(argv[1], "-V") == 0) {
        printf("libev %d.%d, llhttp %d.%d.%d\n", ev_version_major(), ev_version_minor(),
               LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: floor-deps PORT | -V\n");
        return 2;
    }
    for (int i = 0; i < 2; i++) {
        int n = snprintf(
            replies[i].data, sizeof replies[i].data,
            "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: %d\r\n%s\r\n",
            BODY_SIZE, i ? "Connection: close\r\n" : "");
        memset(replies[i].data + n, 'x', BODY_SIZE);
        replies[i].len = (size_t)n + BODY_SIZE;
    }
    llhttp_settings_init(&settings);
    settings.on_message_complete = on_message_complete;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sa.sin_port = htons((uint16_t)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* Woken once a connection has its request, as the servers are (TCP_DEFER_ACCEPT). */
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
        perror("floor-deps");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    ev_io listener;
    ev_signal term, intr;
    ev_io_init(&listener, on_accept, fd, EV_READ);
    ev_io_start(loop, &listener);
    ev_signal_init(&term, on_signal, SIGTERM);
    ev_signal_start(loop, &term);
    ev_signal_init(&intr, on_signal, SIGINT);
    ev_signal_start(loop, &intr);
    ev_run(loop, 0);
    return 0;
}
