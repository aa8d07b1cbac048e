/*
 * floor: the cheapest HTTP/1.1 responder this machine can run, to show how far the loopback
 * path itself goes. One thread, one level-triggered epoll, non-blocking sockets. It does not
 * parse requests: every "\r\n\r\n" it reads is one request, answered with the same 1 KiB
 * response, so pipelined requests work. A server doing real work should not beat it by more
 * than the noise of the machine.
 *
 *   floor KEEPALIVE_PORT CLOSE_PORT
 *
 * Both ports are on 127.0.0.1. On KEEPALIVE_PORT connections stay open; on CLOSE_PORT the
 * connection is closed once every request read so far has been answered (a client that opens
 * a new connection per request, such as ab without -k, reads until the close).
 * SIGTERM or SIGINT stops it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BODY_SIZE 1024
#define MAX_FDS 65536
#define MAX_IOV 64

/* Per connection state lives in a table indexed by fd, so a connection allocates nothing. */
struct conn {
    unsigned pending;   /* responses owed */
    unsigned off;       /* bytes of the first owed response already written */
    unsigned char tail; /* how many bytes of "\r\n\r\n" the previous read ended with */
    unsigned char close_when_done;
    unsigned char answered; /* at least one whole response went out */
    unsigned char want_out; /* EPOLLOUT is registered */
};

static struct conn *conns;
/* The one response, and its variant with "Connection: close" for the closing port. */
struct reply {
    char data[256 + BODY_SIZE];
    size_t len;
};
static struct reply replies[2];
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int listen_on(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Woken once a connection has its request, as the servers are (TCP_DEFER_ACCEPT). */
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Counts the request terminators in buf, carrying a partial one across reads. */
static unsigned count_requests(struct conn *c, const char *buf, size_t n)
{
    static const char term[4] = {'\r', '\n', '\r', '\n'};
    unsigned count = 0;
    unsigned matched = c->tail;

    for (size_t i = 0; i < n; i++) {
        if (buf[i] == term[matched]) {
            if (++matched == 4) {
                count++;
                matched = 0;
            }
        } else {
            matched = buf[i] == '\r' ? 1 : 0;
        }
    }
    c->tail = (unsigned char)matched;
    return count;
}

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    memset(&conns[fd], 0, sizeof(conns[fd]));
    close(fd);
}

static void set_want_out(int ep, int fd, int want)
{
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.fd = fd};

    if (conns[fd].want_out == want)
        return;
    conns[fd].want_out = (unsigned char)want;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Writes owed responses until done or the socket is full. Returns -1 if fd was closed. */
static int flush(int ep, int fd)
{
    struct conn *c = &conns[fd];
    const struct reply *r = &replies[c->close_when_done];

    while (c->pending > 0) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        ssize_t w;

        iov[n].iov_base = (char *)r->data + c->off;
        iov[n++].iov_len = r->len - c->off;
        while (n < MAX_IOV && (unsigned)n < c->pending) {
            iov[n].iov_base = (char *)r->data;
            iov[n++].iov_len = r->len;
        }
        w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                set_want_out(ep, fd, 1);
                return 0;
            }
            drop(ep, fd);
            return -1;
        }
        /* Account for the bytes written: whole responses first, then a partial one. */
        size_t done = (size_t)w + c->off;
        unsigned whole = (unsigned)(done / r->len);
        c->pending -= whole;
        c->off = (unsigned)(done % r->len);
        if (whole > 0)
            c->answered = 1;
    }
    set_want_out(ep, fd, 0);
    if (c->close_when_done && c->answered) {
        drop(ep, fd);
        return -1;
    }
    return 0;
}

static void on_readable(int ep, int fd)
{
    char buf[16384];

    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));

        if (r > 0) {
            conns[fd].pending += count_requests(&conns[fd], buf, (size_t)r);
            if ((size_t)r < sizeof(buf))
                break;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        drop(ep, fd); /* EOF or error */
        return;
    }
    flush(ep, fd);
}

static void on_acceptable(int ep, int lfd, int close_when_done)
{
    for (;;) {
        int one = 1;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN};

        if (fd < 0)
            return; /* EAGAIN, or out of fds: the client waits in the backlog */
        if (fd >= MAX_FDS) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conns[fd].close_when_done = (unsigned char)close_when_done;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

int main(int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_signal};
    struct epoll_event ev = {.events = EPOLLIN};
    struct rlimit rl;
    int keep_fd, close_fd, ep;
    int n;

    if (argc != 3) {
        fprintf(stderr, "usage: floor KEEPALIVE_PORT CLOSE_PORT\n");
        return 2;
    }
    for (int i = 0; i < 2; i++) {
        n = snprintf(
            replies[i].data, sizeof(replies[i].data),
            "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: %d\r\n%s\r\n",
            BODY_SIZE, i ? "Connection: close\r\n" : "");
        memset(replies[i].data + n, 'x', BODY_SIZE);
        replies[i].len = (size_t)n + BODY_SIZE;
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    conns = calloc(MAX_FDS, sizeof(*conns));
    keep_fd = listen_on(atoi(argv[1]));
    close_fd = listen_on(atoi(argv[2]));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || keep_fd < 0 || close_fd < 0 || ep < 0) {
        perror("floor");
        return 1;
    }
    ev.data.fd = keep_fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, keep_fd, &ev);
    ev.data.fd = close_fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, close_fd, &ev);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    while (!stopping) {
        struct epoll_event events[256];
        int ready = epoll_wait(ep, events, 256, -1);

        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;

            if (fd == keep_fd || fd == close_fd)
                on_acceptable(ep, fd, fd == close_fd);
            else if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(ep, fd);
            else if (events[i].events & EPOLLOUT)
                flush(ep, fd);
        }
    }
    return 0;
}
