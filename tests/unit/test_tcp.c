#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/buffer.h"
#include "connmgr/transport.h"
#include "tests/support.h"

/* ---- helpers ---- */

/* A connected loopback TCP pair, both ends non-blocking: sv[0] the client, sv[1] the server. */
static void make_tcp_pair(int sv[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(sv[0] >= 0);
    assert_int_equal(connect(sv[0], (struct sockaddr *)&a, sizeof(a)), 0);
    sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    assert_true(sv[1] >= 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
    close(l);
}

static void fill_random(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

/* Waits up to 1 s for `fd` to be readable. */
static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    assert_int_equal(poll(&p, 1, 1000), 1);
}

/* Waits up to 1 s for the reader to have data or the writer to have room, as a loop would.
 * (A TCP sender may answer EAGAIN with everything already read by the peer, until the
 * ACKs free its buffer.) */
static void wait_either(int reader, int writer)
{
    struct pollfd p[2] = {{.fd = reader, .events = POLLIN}, {.fd = writer, .events = POLLOUT}};

    assert_true(poll(p, 2, 1000) > 0);
}

/* Reads what `fd` has now, appending at buf+*got (at most cap). Returns 0 at end of stream,
 * else 1. */
static int drain(int fd, unsigned char *buf, size_t cap, size_t *got)
{
    for (;;) {
        ssize_t n = read(fd, buf + *got, cap - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            return 1;
        }
        if (n == 0)
            return *got == cap ? 1 : 0;
        *got += (size_t)n;
    }
}

/* Reads exactly `len` bytes from `fd`, waiting as needed. */
static void read_exact(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        wait_readable(fd);
        assert_int_equal(drain(fd, buf, len, &got), 1);
    }
}

static int make_temp_file(size_t len, uint32_t seed, unsigned char **data)
{
    char path[] = "/tmp/porter-test-tcp-XXXXXX";
    int fd = mkstemp(path);
    size_t off = 0;

    assert_true(fd >= 0);
    assert_int_equal(unlink(path), 0);
    *data = malloc(len);
    assert_non_null(*data);
    fill_random(*data, len, seed);
    while (off < len) {
        ssize_t n = write(fd, *data + off, len - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    return fd;
}

static void assert_no_sigpipe(void)
{
    sigset_t set;

    assert_int_equal(sigpending(&set), 0);
    assert_false(sigismember(&set, SIGPIPE));
    assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &set), 0);
    assert_false(sigismember(&set, SIGPIPE)); /* the mask is as it was */
}

/* ---- tests ---- */

static void test_tcp_read_writev(void **state)
{
    int sv[2];
    pt_transport c, s;
    struct iovec iov[3] = {{"GET ", 4}, {"/ HTTP/1.1\r\n", 12}, {"\r\n", 2}};
    char buf[64];

    make_tcp_pair(sv);
    pt_tcp_transport_init(&c, sv[0]);
    pt_tcp_transport_init(&s, sv[1]);
    assert_int_equal(c.fd, sv[0]);

    /* Nothing yet: -EAGAIN, and the transport says to wait for readability. */
    assert_int_equal(pt_transport_read(&s, buf, sizeof(buf)), -EAGAIN);
    assert_int_equal(s.want, PT_WANT_READ);

    assert_int_equal(pt_transport_writev(&c, iov, 3), 18);
    wait_readable(sv[1]);
    assert_int_equal(pt_transport_read(&s, buf, sizeof(buf)), 18);
    assert_memory_equal(buf, "GET / HTTP/1.1\r\n\r\n", 18);

    pt_transport_close(&c);
    pt_transport_close(&s);
}

static void test_tcp_shutdown_write(void **state)
{
    int sv[2];
    pt_transport c, s;
    char buf[16];

    make_tcp_pair(sv);
    pt_tcp_transport_init(&c, sv[0]);
    pt_tcp_transport_init(&s, sv[1]);
    struct iovec iov = {"bye", 3};
    assert_int_equal(pt_transport_writev(&s, &iov, 1), 3);

    /* Half close: the peer sees the data, then end of stream... */
    assert_int_equal(pt_transport_shutdown_write(&s), 0);
    wait_readable(sv[0]);
    assert_int_equal(pt_transport_read(&c, buf, sizeof(buf)), 3);
    assert_int_equal(pt_transport_read(&c, buf, sizeof(buf)), 0);
    /* ...and can still send the other way. */
    iov = (struct iovec){"ack", 3};
    assert_int_equal(pt_transport_writev(&c, &iov, 1), 3);
    wait_readable(sv[1]);
    assert_int_equal(pt_transport_read(&s, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "ack", 3);
    /* Writing after our own half close fails with EPIPE, without killing the process. */
    assert_int_equal(pt_transport_writev(&s, &iov, 1), -EPIPE);
    assert_no_sigpipe();

    pt_transport_close(&c);
    pt_transport_close(&s);
}

static void test_tcp_close_idempotent(void **state)
{
    int sv[2];
    pt_transport c, s;
    char buf[4];

    make_tcp_pair(sv);
    pt_tcp_transport_init(&c, sv[0]);
    pt_tcp_transport_init(&s, sv[1]);
    pt_transport_close(&c);
    assert_int_equal(c.fd, -1);
    assert_true(fd_is_closed(sv[0]));
    pt_transport_close(&c); /* twice: no-op */
    assert_int_equal(c.fd, -1);
    pt_transport_close(NULL);
    assert_int_equal(pt_transport_read(&c, buf, sizeof(buf)), -EBADF);

    /* The peer sees end of stream. */
    wait_readable(sv[1]);
    assert_int_equal(pt_transport_read(&s, buf, sizeof(buf)), 0);
    pt_transport_close(&s);
}

static void test_tcp_writev_full(void **state)
{
    int sv[2], small = 4096;
    static char block[64 * 1024];
    struct iovec iov = {block, sizeof(block)};
    pt_transport c, s;
    size_t sent = 0;
    ssize_t n;

    make_tcp_pair(sv);
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    pt_tcp_transport_init(&c, sv[0]);
    pt_tcp_transport_init(&s, sv[1]);
    s.want = 0;
    while ((n = pt_transport_writev(&s, &iov, 1)) > 0) {
        sent += (size_t)n;
        assert_true(sent < 64 * 1024 * 1024);
    }
    assert_int_equal(n, -EAGAIN);
    assert_int_equal(s.want, PT_WANT_WRITE);
    assert_true(sent > 0);

    /* Once a write goes through again, the wish is gone: a stale one would keep the connection
     * polling for writability with nothing left to write (a busy loop). */
    static char sink[64 * 1024];
    struct iovec one = {block, 1};
    for (int i = 0; i < 1000; i++) {
        while (pt_transport_read(&c, sink, sizeof sink) > 0)
            ;
        if ((n = pt_transport_writev(&s, &one, 1)) != -EAGAIN)
            break;
        usleep(1000);
    }
    assert_int_equal(n, 1);
    assert_int_equal(s.want, 0);

    pt_transport_close(&c);
    pt_transport_close(&s);
}

static void test_tcp_sendfile_direct(void **state)
{
    enum { FLEN = 20000, OFF = 123, LEN = 5000 };
    int sv[2];
    unsigned char *data, got[LEN];
    pt_transport c, s;
    off_t off = OFF;
    int fd = make_temp_file(FLEN, 41, &data);

    make_tcp_pair(sv);
    pt_tcp_transport_init(&c, sv[0]);
    pt_tcp_transport_init(&s, sv[1]);
    assert_int_equal(pt_transport_sendfile(&s, fd, &off, LEN), LEN);
    assert_int_equal(off, OFF + LEN); /* the offset advances */
    read_exact(sv[0], got, LEN);
    assert_memory_equal(got, data + OFF, LEN);
    assert_no_sigpipe();

    close(fd);
    free(data);
    pt_transport_close(&c);
    pt_transport_close(&s);
}

/* A file range through the out-queue over real TCP: the exact bytes, in order, once. */
static void test_tcp_outq_file_exact(void **state)
{
    enum { FLEN = 1 << 20, OFF = 4096 + 7, LEN = 700000, TOTAL = LEN + 19 + 6 };
    int sv[2], small = 16384, rounds = 0, r;
    unsigned char *data, *got = malloc(TOTAL), *expect = malloc(TOTAL);
    size_t glen = 0;
    pt_transport c, s;
    pt_outq q;
    int fd = make_temp_file(FLEN, 43, &data);

    make_tcp_pair(sv);
    /* A small buffer forces many partial sends. */
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    pt_tcp_transport_init(&c, sv[0]);
    pt_tcp_transport_init(&s, sv[1]);
    pt_outq_init(&q);
    memcpy(expect, "HTTP/1.1 200 OK\r\n\r\n", 19);
    memcpy(expect + 19, data + OFF, LEN);
    memcpy(expect + 19 + LEN, "\r\nnext", 6);
    pt_outq_push_copy(&q, "HTTP/1.1 200 OK\r\n\r\n", 19);
    pt_outq_push_file(&q, fd, OFF, LEN, PT_OUTQ_CLOSE_FD);
    pt_outq_push_copy(&q, "\r\nnext", 6);

    while ((r = pt_outq_flush(&q, &s)) != 0) {
        assert_int_equal(r, -EAGAIN);
        assert_int_equal(s.want, PT_WANT_WRITE);
        assert_int_equal(pt_outq_pending(&q) + q.written, TOTAL);
        wait_either(sv[0], sv[1]);
        assert_int_equal(drain(sv[0], got, TOTAL, &glen), 1);
        assert_true(++rounds < 100000);
    }
    assert_int_equal(q.written, TOTAL);
    assert_true(fd_is_closed(fd));
    while (glen < TOTAL) {
        wait_readable(sv[0]);
        assert_int_equal(drain(sv[0], got, TOTAL, &glen), 1);
    }
    assert_memory_equal(got, expect, TOTAL);
    /* Nothing more than the queued bytes was sent. */
    assert_int_equal(pt_transport_shutdown_write(&s), 0);
    wait_readable(sv[0]);
    assert_int_equal(read(sv[0], got, 1), 0);

    pt_outq_dispose(&q);
    pt_transport_close(&c);
    pt_transport_close(&s);
    free(data);
    free(got);
    free(expect);
}

/* The peer has gone: writes and sendfile fail with an error, and SIGPIPE (at its default
 * disposition, which would kill the program) is never delivered. */
static void test_tcp_peer_closed(void **state)
{
    int sv[2];
    unsigned char *data;
    pt_transport s;
    struct iovec iov = {"x", 1};
    ssize_t n;
    off_t off = 0;
    int fd = make_temp_file(4096, 47, &data);

    make_tcp_pair(sv);
    pt_tcp_transport_init(&s, sv[1]);
    close(sv[0]);
    /* The first write may still be accepted; the peer's RST then fails the next ones. */
    for (int i = 0; (n = pt_transport_writev(&s, &iov, 1)) > 0; i++) {
        assert_true(i < 1000);
        poll(NULL, 0, 5);
    }
    assert_true(n == -EPIPE || n == -ECONNRESET);
    /* After the reset has been reported the socket answers EPIPE, the SIGPIPE case. */
    assert_int_equal(pt_transport_writev(&s, &iov, 1), -EPIPE);
    assert_int_equal(pt_transport_sendfile(&s, fd, &off, 4096), -EPIPE);
    assert_int_equal(off, 0);
    assert_no_sigpipe();

    /* The same through the out-queue, file first. */
    pt_outq q;
    pt_outq_init(&q);
    pt_outq_push_file(&q, fd, 0, 4096, 0);
    pt_outq_push_copy(&q, "x", 1);
    assert_int_equal(pt_outq_flush(&q, &s), -EPIPE);
    assert_int_equal(pt_outq_pending(&q), 4097);
    pt_outq_dispose(&q);
    assert_no_sigpipe();

    close(fd);
    free(data);
    pt_transport_close(&s);
}

/* With SIGPIPE already blocked by the program, the transport leaves the mask and the pending
 * signal to it. */
static void test_tcp_sendfile_sigpipe_blocked(void **state)
{
    int sv[2];
    unsigned char *data;
    pt_transport s;
    off_t off = 0;
    sigset_t pipe_set, set;
    int fd = make_temp_file(100, 53, &data);

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &pipe_set, NULL), 0);
    make_tcp_pair(sv);
    pt_tcp_transport_init(&s, sv[1]);
    assert_int_equal(pt_transport_shutdown_write(&s), 0);
    assert_int_equal(pt_transport_sendfile(&s, fd, &off, 100), -EPIPE);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &set), 0);
    assert_true(sigismember(&set, SIGPIPE));
    assert_int_equal(sigpending(&set), 0);
    assert_true(sigismember(&set, SIGPIPE));
    /* Take the pending signal before unblocking, as the program would. */
    struct timespec zero = {0};
    assert_int_equal(sigtimedwait(&pipe_set, NULL, &zero), SIGPIPE);
    assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL), 0);
    assert_no_sigpipe();

    close(fd);
    free(data);
    pt_transport_close(&s);
    close(sv[0]);
}

/* A pair transport whose output pipe lost its reader: writes and sendfile fail with EPIPE, and
 * SIGPIPE (at its default disposition) is never delivered, as over TCP. */
static void test_pair_reader_gone(void **state)
{
    int in[2], out[2];
    unsigned char *data;
    pt_transport s;
    struct iovec iov = {"x", 1};
    off_t off = 0;
    int fd = make_temp_file(4096, 59, &data);

    assert_int_equal(pipe2(in, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_NONBLOCK | O_CLOEXEC), 0);
    pt_pair_transport_init(&s, in[0], out[1]);
    close(out[0]);
    assert_int_equal(pt_transport_writev(&s, &iov, 1), -EPIPE);
    assert_int_equal(pt_transport_sendfile(&s, fd, &off, 4096), -EPIPE);
    assert_int_equal(off, 0);
    assert_no_sigpipe();

    close(fd);
    free(data);
    pt_transport_close(&s);
    close(in[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_tcp_read_writev),
        NOTHING_LEFT_TEST(test_tcp_shutdown_write),
        NOTHING_LEFT_TEST(test_tcp_close_idempotent),
        NOTHING_LEFT_TEST(test_tcp_writev_full),
        NOTHING_LEFT_TEST(test_tcp_sendfile_direct),
        NOTHING_LEFT_TEST(test_tcp_outq_file_exact),
        NOTHING_LEFT_TEST(test_tcp_peer_closed),
        NOTHING_LEFT_TEST(test_tcp_sendfile_sigpipe_blocked),
        NOTHING_LEFT_TEST(test_pair_reader_gone),
    };

    signal(SIGPIPE, SIG_DFL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
