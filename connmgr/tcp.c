#include "connmgr/transport.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* `want` describes the last -EAGAIN only: a call that did something clears it (a stale
 * PT_WANT_WRITE would keep the connection polling for writability with nothing to write). */
static ssize_t tcp_done(pt_transport *t, ssize_t n)
{
    t->want = 0;
    return n;
}

/* Maps the errno of a failed call; EAGAIN also says which readiness to wait for. */
static ssize_t tcp_error(pt_transport *t, int err, int want)
{
    if (err == EAGAIN || err == EWOULDBLOCK) {
        t->want = want;
        return -EAGAIN;
    }
    return -err;
}

static ssize_t tcp_read(pt_transport *t, void *buf, size_t len)
{
    ssize_t n;

    do
        n = read(t->fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? tcp_done(t, n) : tcp_error(t, errno, PT_WANT_READ);
}

static ssize_t tcp_writev(pt_transport *t, const struct iovec *iov, int iovcnt)
{
    /* writev(2) would raise SIGPIPE when the peer has gone; sendmsg can say not to. */
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n;

    do
        n = sendmsg(t->fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? tcp_done(t, n) : tcp_error(t, errno, PT_WANT_WRITE);
}

/* Whether SIGPIPE is ignored by the process, asked once: a server decides that at start. */
static bool sigpipe_ignored(void)
{
    static int ignored = -1;
    if (ignored < 0) {
        struct sigaction sa;
        ignored = sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
    }
    return ignored;
}

/* SIGPIPE held off around one call that may raise it when the reader has gone (sendfile(2),
 * which has no MSG_NOSIGNAL; a write to a pipe): it would kill an embedding program that never
 * ignored it. Unless the process ignores SIGPIPE (a server does; porter's does), it is blocked
 * for this thread around the call and the one the call queued is swallowed. */
typedef struct pipe_guard {
    sigset_t set, old;
    bool masked;
} pipe_guard;

static void guard_begin(pipe_guard *g)
{
    g->masked = false;
    if (sigpipe_ignored())
        return;
    sigemptyset(&g->set);
    sigaddset(&g->set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &g->set, &g->old);
    g->masked = !sigismember(&g->old, SIGPIPE);
}

/* `err`: the call's errno (0 if it succeeded). */
static void guard_end(pipe_guard *g, int err)
{
    static const struct timespec no_wait;
    if (!g->masked)
        return;
    if (err == EPIPE)
        while (sigtimedwait(&g->set, NULL, &no_wait) < 0 && errno == EINTR)
            ;
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* sendfile(2) from `fd` to `out`, the transport's writing descriptor. */
static ssize_t send_file(pt_transport *t, int out, int fd, off_t *offset, size_t len)
{
    pipe_guard g;
    ssize_t n;
    int err = 0;

    guard_begin(&g);
    do
        n = sendfile(out, fd, offset, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        err = errno;
    guard_end(&g, err);
    if (n >= 0)
        return tcp_done(t, n);
    /* The file's filesystem or driver cannot feed sendfile: let the caller read and write. */
    if (err == EINVAL || err == ENOSYS)
        return -ENOTSUP;
    return tcp_error(t, err, PT_WANT_WRITE);
}

static ssize_t tcp_sendfile(pt_transport *t, int fd, off_t *offset, size_t len)
{
    return send_file(t, t->fd, fd, offset, len);
}

static int tcp_shutdown_write(pt_transport *t)
{
    return shutdown(t->fd, SHUT_WR) == 0 ? 0 : -errno;
}

static void tcp_close(pt_transport *t)
{
    if (t->fd < 0)
        return;
    /* Not retried on EINTR: Linux has released the fd whatever close(2) returns. */
    close(t->fd);
    t->fd = -1;
}

static const pt_transport_ops tcp_ops = {
    .read = tcp_read,
    .writev = tcp_writev,
    .sendfile = tcp_sendfile,
    .shutdown_write = tcp_shutdown_write,
    .close = tcp_close,
};

void pt_tcp_transport_init(pt_transport *t, int fd)
{
    t->ops = &tcp_ops;
    t->fd = fd;
    t->want = 0;
    t->impl = NULL;
    t->wfd = -1;
}

bool pt_transport_is_tcp(const pt_transport *t)
{
    return t->ops == &tcp_ops;
}

/* ---- a pair of descriptors: reads from fd, writes to wfd ---- */

static ssize_t pair_writev(pt_transport *t, const struct iovec *iov, int iovcnt)
{
    /* writev(2) to a pipe whose reader has gone raises SIGPIPE, as sendfile does. */
    pipe_guard g;
    ssize_t n;
    int err = 0;

    if (t->wfd < 0)
        return -EPIPE;
    guard_begin(&g);
    do
        n = writev(t->wfd, iov, iovcnt);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        err = errno;
    guard_end(&g, err);
    return n >= 0 ? tcp_done(t, n) : tcp_error(t, err, PT_WANT_WRITE);
}

static ssize_t pair_sendfile(pt_transport *t, int fd, off_t *offset, size_t len)
{
    if (t->wfd < 0)
        return -EPIPE;
    return send_file(t, t->wfd, fd, offset, len);
}

static int pair_shutdown_write(pt_transport *t)
{
    if (t->wfd >= 0) {
        close(t->wfd);
        t->wfd = -1;
    }
    return 0;
}

static void pair_close(pt_transport *t)
{
    pair_shutdown_write(t);
    tcp_close(t);
}

static const pt_transport_ops pair_ops = {
    .read = tcp_read,
    .writev = pair_writev,
    .sendfile = pair_sendfile,
    .shutdown_write = pair_shutdown_write,
    .close = pair_close,
};

void pt_pair_transport_init(pt_transport *t, int rfd, int wfd)
{
    t->ops = &pair_ops;
    t->fd = rfd;
    t->wfd = wfd;
    t->want = 0;
    t->impl = NULL;
}

int pt_transport_addresses(const pt_transport *t, struct sockaddr_storage *local,
                           socklen_t *local_len, struct sockaddr_storage *peer, socklen_t *peer_len)
{
    if (t->fd < 0)
        return -EBADF;
    if (local || local_len) {
        struct sockaddr_storage ss;
        socklen_t n = sizeof ss;
        memset(&ss, 0, sizeof ss);
        if (getsockname(t->fd, (struct sockaddr *)&ss, &n) < 0)
            return -errno;
        if (local)
            *local = ss;
        if (local_len)
            *local_len = n;
    }
    if (peer || peer_len) {
        struct sockaddr_storage ss;
        socklen_t n = sizeof ss;
        memset(&ss, 0, sizeof ss);
        if (getpeername(t->fd, (struct sockaddr *)&ss, &n) < 0)
            return -errno;
        if (peer)
            *peer = ss;
        if (peer_len)
            *peer_len = n;
    }
    return 0;
}
