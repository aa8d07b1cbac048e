#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/buffer.h"
#include "connmgr/transport.h"
#include "tests/support.h"

/* ---- helpers ---- */

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* Deterministic bytes that differ from position to position and run to run of `seed`. */
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

/* Reads whatever `fd` has now, appending at buf+*got (at most cap). Returns bytes read. */
static size_t drain(int fd, unsigned char *buf, size_t cap, size_t *got)
{
    size_t total = 0;

    for (;;) {
        ssize_t n = read(fd, buf + *got, cap - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            return total;
        }
        if (n == 0)
            return total;
        *got += (size_t)n;
        total += (size_t)n;
        if (*got == cap)
            return total;
    }
}

/* A temp file holding `len` pseudo-random bytes, already unlinked; contents in *data. */
static int make_temp_file(size_t len, uint32_t seed, unsigned char **data)
{
    char path[] = "/tmp/porter-test-buffer-XXXXXX";
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

/* A TCP transport with call counters, and optionally no sendfile. */
typedef struct spy {
    pt_transport t; /* first, so the ops can cast back */
    const pt_transport_ops *tcp;
    pt_transport_ops ops;
    int writev_calls, last_iovcnt, sendfile_calls;
    bool no_sendfile;
} spy;

static ssize_t spy_read(pt_transport *t, void *buf, size_t len)
{
    return ((spy *)t)->tcp->read(t, buf, len);
}

static ssize_t spy_writev(pt_transport *t, const struct iovec *iov, int n)
{
    spy *s = (spy *)t;

    s->writev_calls++;
    s->last_iovcnt = n;
    return s->tcp->writev(t, iov, n);
}

static ssize_t spy_sendfile(pt_transport *t, int fd, off_t *off, size_t len)
{
    spy *s = (spy *)t;

    s->sendfile_calls++;
    if (s->no_sendfile)
        return -ENOTSUP;
    return s->tcp->sendfile(t, fd, off, len);
}

static int spy_shutdown_write(pt_transport *t)
{
    return ((spy *)t)->tcp->shutdown_write(t);
}

static void spy_close(pt_transport *t)
{
    ((spy *)t)->tcp->close(t);
}

static void spy_init(spy *s, int fd, bool no_sendfile)
{
    memset(s, 0, sizeof(*s));
    pt_tcp_transport_init(&s->t, fd);
    s->tcp = s->t.ops;
    s->ops = (pt_transport_ops){spy_read, spy_writev, spy_sendfile, spy_shutdown_write, spy_close};
    s->t.ops = &s->ops;
    s->no_sendfile = no_sendfile;
}

/* Flushes `q` into t, draining the peer between rounds, until the queue is empty. */
static void flush_all(pt_outq *q, pt_transport *t, int peer, unsigned char *buf, size_t cap,
                      size_t *got, size_t total)
{
    for (int rounds = 0;; rounds++) {
        int r = pt_outq_flush(q, t);
        assert_true(r == 0 || r == -EAGAIN);
        assert_int_equal(pt_outq_pending(q) + q->written, total);
        drain(peer, buf, cap, got);
        if (r == 0)
            break;
        assert_true(rounds < 100000);
    }
    drain(peer, buf, cap, got);
}

static int ref_calls;
static void on_ref_free(void *data)
{
    ref_calls++;
    (*(int *)data)++;
}

/* ---- chunk pool ---- */

static void test_chunk_pool_reuses(void **state)
{
    char *a = pt_chunk_get(), *b = pt_chunk_get();

    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    memset(a, 'a', PT_CHUNK_SIZE);
    memset(b, 'b', PT_CHUNK_SIZE);
    assert_int_equal(pt_chunk_outstanding(), 2);
    pt_chunk_put(a);
    pt_chunk_put(NULL);
    assert_int_equal(pt_chunk_outstanding(), 1);
    /* Steady state: the next get is the chunk just returned, not a new allocation. */
    assert_ptr_equal(pt_chunk_get(), a);
    pt_chunk_put(a);
    pt_chunk_put(b);

    /* More than the pool keeps: the surplus goes back to malloc (ASan reports a leak if not). */
    void *many[PT_CHUNK_POOL_MAX + 10];
    for (size_t i = 0; i < PT_CHUNK_POOL_MAX + 10; i++)
        many[i] = pt_chunk_get();
    assert_int_equal(pt_chunk_outstanding(), PT_CHUNK_POOL_MAX + 10);
    for (size_t i = 0; i < PT_CHUNK_POOL_MAX + 10; i++)
        pt_chunk_put(many[i]);
}

/* ---- in-buffer ---- */

static void test_inbuf_read_consume(void **state)
{
    int sv[2];
    pt_transport t;
    pt_inbuf b;

    make_pair(sv);
    pt_tcp_transport_init(&t, sv[0]);
    pt_inbuf_init(&b);
    assert_null(b.data); /* nothing until the first read */

    assert_int_equal(write(sv[1], "hello world", 11), 11);
    assert_int_equal(pt_inbuf_read(&b, &t, 1 << 20), 11);
    assert_int_equal(pt_inbuf_len(&b), 11);
    assert_memory_equal(pt_inbuf_begin(&b), "hello world", 11);
    assert_int_equal(pt_chunk_outstanding(), 1);

    pt_inbuf_consume(&b, 6);
    assert_int_equal(pt_inbuf_len(&b), 5);
    assert_memory_equal(pt_inbuf_begin(&b), "world", 5);

    /* Emptied: the chunk goes back, so an idle connection holds nothing. */
    pt_inbuf_consume(&b, 5);
    assert_null(b.data);
    assert_int_equal(pt_chunk_outstanding(), 0);

    /* Nothing to read: -EAGAIN, want read, and still nothing held. */
    t.want = 0;
    assert_int_equal(pt_inbuf_read(&b, &t, 1 << 20), -EAGAIN);
    assert_int_equal(t.want, PT_WANT_READ);
    assert_null(b.data);
    assert_int_equal(pt_chunk_outstanding(), 0);

    /* More data after being idle: appended after what is still unparsed. */
    assert_int_equal(write(sv[1], "abc", 3), 3);
    assert_int_equal(pt_inbuf_read(&b, &t, 1 << 20), 3);
    assert_int_equal(write(sv[1], "def", 3), 3);
    assert_int_equal(pt_inbuf_read(&b, &t, 1 << 20), 3);
    assert_int_equal(pt_inbuf_len(&b), 6);
    assert_memory_equal(pt_inbuf_begin(&b), "abcdef", 6);
    /* A read that finds nothing keeps the unparsed bytes. */
    assert_int_equal(pt_inbuf_read(&b, &t, 1 << 20), -EAGAIN);
    assert_memory_equal(pt_inbuf_begin(&b), "abcdef", 6);

    pt_inbuf_dispose(&b);
    assert_null(b.data);
    pt_inbuf_dispose(&b); /* twice: no-op */
    pt_transport_close(&t);
    close(sv[1]);
}

static void test_inbuf_eof(void **state)
{
    int sv[2];
    pt_transport t;
    pt_inbuf b;

    make_pair(sv);
    pt_tcp_transport_init(&t, sv[0]);
    pt_inbuf_init(&b);
    assert_int_equal(write(sv[1], "abc", 3), 3);
    assert_int_equal(shutdown(sv[1], SHUT_WR), 0);

    assert_int_equal(pt_inbuf_read(&b, &t, 1024), 3);
    /* End of stream with unparsed bytes: they stay readable. */
    assert_int_equal(pt_inbuf_read(&b, &t, 1024), 0);
    assert_int_equal(pt_inbuf_len(&b), 3);
    assert_memory_equal(pt_inbuf_begin(&b), "abc", 3);
    pt_inbuf_consume(&b, 3);
    assert_int_equal(pt_chunk_outstanding(), 0);
    /* End of stream on an empty buffer leaves nothing held. */
    assert_int_equal(pt_inbuf_read(&b, &t, 1024), 0);
    assert_null(b.data);
    assert_int_equal(pt_chunk_outstanding(), 0);

    pt_inbuf_dispose(&b);
    pt_transport_close(&t);
    close(sv[1]);
}

static void test_inbuf_compaction(void **state)
{
    int sv[2];
    unsigned char src[PT_CHUNK_SIZE + 1000];
    pt_transport t;
    pt_inbuf b;

    fill_random(src, sizeof(src), 7);
    make_pair(sv);
    pt_tcp_transport_init(&t, sv[0]);
    pt_inbuf_init(&b);

    assert_int_equal(write(sv[1], src, PT_CHUNK_SIZE), PT_CHUNK_SIZE);
    assert_int_equal(pt_inbuf_read(&b, &t, 1 << 20), PT_CHUNK_SIZE);
    pt_inbuf_consume(&b, PT_CHUNK_SIZE - 384);

    /* The chunk is full but mostly parsed: the next read moves the 384 bytes to the front
     * and reads into the same chunk instead of growing. */
    assert_int_equal(write(sv[1], src + PT_CHUNK_SIZE, 1000), 1000);
    assert_int_equal(pt_inbuf_read(&b, &t, 1 << 20), 1000);
    assert_false(b.heap);
    assert_int_equal(b.cap, PT_CHUNK_SIZE);
    assert_int_equal(b.start, 0);
    assert_int_equal(pt_inbuf_len(&b), 1384);
    assert_memory_equal(pt_inbuf_begin(&b), src + PT_CHUNK_SIZE - 384, 1384);
    assert_int_equal(pt_chunk_outstanding(), 1);

    pt_inbuf_consume(&b, 1384);
    assert_null(b.data);
    pt_inbuf_dispose(&b);
    pt_transport_close(&t);
    close(sv[1]);
}

static void test_inbuf_growth(void **state)
{
    enum { N = 40000 };
    int sv[2];
    static unsigned char src[N];
    pt_transport t;
    pt_inbuf b;
    ssize_t n;
    size_t total = 0;

    fill_random(src, sizeof(src), 11);
    make_pair(sv);
    pt_tcp_transport_init(&t, sv[0]);
    pt_inbuf_init(&b);
    assert_int_equal(write(sv[1], src, N), N);

    /* One item bigger than a chunk: the buffer doubles into a heap block. */
    while ((n = pt_inbuf_read(&b, &t, 64 * 1024)) > 0)
        total += (size_t)n;
    assert_int_equal(n, -EAGAIN);
    assert_int_equal(total, N);
    assert_true(b.heap);
    assert_int_equal(b.cap, 64 * 1024);
    assert_int_equal(pt_inbuf_len(&b), N);
    assert_memory_equal(pt_inbuf_begin(&b), src, N);
    /* The chunk it grew from went back to the pool. */
    assert_int_equal(pt_chunk_outstanding(), 0);

    pt_inbuf_consume(&b, 100);
    assert_memory_equal(pt_inbuf_begin(&b), src + 100, N - 100);
    pt_inbuf_consume(&b, N - 100);
    assert_null(b.data); /* heap block freed (ASan checks) */
    assert_false(b.heap);

    pt_inbuf_dispose(&b);
    pt_transport_close(&t);
    close(sv[1]);
}

static void test_inbuf_enobufs(void **state)
{
    enum { N = 40000, MAX = 20000 };
    int sv[2];
    static unsigned char src[N];
    pt_transport t;
    pt_inbuf b;
    ssize_t n;
    size_t total = 0;

    fill_random(src, sizeof(src), 13);
    make_pair(sv);
    pt_tcp_transport_init(&t, sv[0]);
    pt_inbuf_init(&b);
    assert_int_equal(write(sv[1], src, N), N);

    /* Growth stops at max, and reading stops there too. */
    while ((n = pt_inbuf_read(&b, &t, MAX)) > 0)
        total += (size_t)n;
    assert_int_equal(n, -ENOBUFS);
    assert_int_equal(total, MAX);
    assert_int_equal(b.cap, MAX);
    assert_memory_equal(pt_inbuf_begin(&b), src, MAX);
    /* -ENOBUFS did not read: the next bytes are still in the socket. */
    assert_int_equal(pt_inbuf_read(&b, &t, MAX), -ENOBUFS);
    pt_inbuf_consume(&b, MAX);
    total = 0;
    while ((n = pt_inbuf_read(&b, &t, MAX)) > 0)
        total += (size_t)n;
    assert_int_equal(n, -ENOBUFS);
    assert_int_equal(total, MAX);
    assert_memory_equal(pt_inbuf_begin(&b), src + MAX, MAX);
    pt_inbuf_consume(&b, MAX);

    /* A max below one chunk bounds the first read. */
    assert_int_equal(write(sv[1], src, 300), 300);
    assert_int_equal(pt_inbuf_read(&b, &t, 100), 100);
    assert_false(b.heap);
    assert_int_equal(pt_inbuf_read(&b, &t, 100), -ENOBUFS);
    pt_inbuf_consume(&b, 60);
    assert_int_equal(pt_inbuf_read(&b, &t, 100), 60);
    assert_memory_equal(pt_inbuf_begin(&b), src + 60, 100);

    pt_inbuf_dispose(&b);
    assert_int_equal(pt_chunk_outstanding(), 0);
    pt_transport_close(&t);
    close(sv[1]);
}

/* ---- out-queue ---- */

static void test_outq_empty_flush(void **state)
{
    int sv[2];
    spy s;
    pt_outq q;

    make_pair(sv);
    spy_init(&s, sv[0], false);
    pt_outq_init(&q);
    assert_true(pt_outq_is_empty(&q));
    assert_int_equal(pt_outq_flush(&q, &s.t), 0);
    assert_int_equal(s.writev_calls, 0);
    /* Zero-length pushes queue nothing. */
    pt_outq_push_copy(&q, "x", 0);
    assert_true(pt_outq_is_empty(&q));
    assert_int_equal(pt_outq_flush(&q, &s.t), 0);
    assert_int_equal(s.writev_calls, 0);

    pt_outq_dispose(&q);
    pt_transport_close(&s.t);
    close(sv[1]);
}

static void test_outq_copy_coalesces(void **state)
{
    int sv[2];
    char expect[8192], line[64];
    unsigned char got[8192];
    size_t elen = 0, glen = 0;
    spy s;
    pt_outq q;

    make_pair(sv);
    spy_init(&s, sv[0], false);
    pt_outq_init(&q);
    for (int i = 0; i < 200; i++) {
        int n = snprintf(line, sizeof(line), "X-Header-%03d: value\r\n", i);
        pt_outq_push_copy(&q, line, (size_t)n);
        memcpy(expect + elen, line, (size_t)n);
        elen += (size_t)n;
        assert_int_equal(pt_outq_pending(&q), elen);
    }
    /* All of them share one chunk. */
    assert_int_equal(pt_chunk_outstanding(), 1);

    assert_int_equal(pt_outq_flush(&q, &s.t), 0);
    assert_int_equal(s.writev_calls, 1);
    assert_int_equal(s.last_iovcnt, 1);
    assert_true(pt_outq_is_empty(&q));
    assert_int_equal(pt_outq_pending(&q), 0);
    assert_int_equal(q.written, elen);
    assert_int_equal(pt_chunk_outstanding(), 0); /* written chunk went back */

    drain(sv[1], got, sizeof(got), &glen);
    assert_int_equal(glen, elen);
    assert_memory_equal(got, expect, elen);

    pt_outq_dispose(&q);
    pt_transport_close(&s.t);
    close(sv[1]);
}

static void test_outq_copy_spans_chunks(void **state)
{
    enum { N = 2 * PT_CHUNK_SIZE + 7232 };
    int sv[2];
    static unsigned char src[N + 10], got[N + 10];
    size_t glen = 0;
    spy s;
    pt_outq q;

    fill_random(src, sizeof(src), 17);
    make_pair(sv);
    spy_init(&s, sv[0], false);
    pt_outq_init(&q);
    pt_outq_push_copy(&q, src, N);
    pt_outq_push_copy(&q, src + N, 10); /* fits in the last chunk */
    assert_int_equal(pt_outq_pending(&q), N + 10);
    assert_int_equal(pt_chunk_outstanding(), 3);

    assert_int_equal(pt_outq_flush(&q, &s.t), 0);
    assert_int_equal(s.writev_calls, 1);
    assert_int_equal(s.last_iovcnt, 3);
    drain(sv[1], got, sizeof(got), &glen);
    assert_int_equal(glen, N + 10);
    assert_memory_equal(got, src, N + 10);
    assert_int_equal(q.written, N + 10);

    pt_outq_dispose(&q);
    pt_transport_close(&s.t);
    close(sv[1]);
}

static void test_outq_ref_cb_once(void **state)
{
    int sv[2];
    static const char body[] = "<html>body</html>";
    const char expect[] = "HTTP/1.1 200 OK\r\n\r\n<html>body</html>--static--";
    unsigned char got[256];
    size_t glen = 0;
    int freed = 0, empty_freed = 0;
    spy s;
    pt_outq q;

    make_pair(sv);
    spy_init(&s, sv[0], false);
    pt_outq_init(&q);
    ref_calls = 0;
    pt_outq_push_copy(&q, "HTTP/1.1 200 OK\r\n\r\n", 19);
    pt_outq_push_ref(&q, body, sizeof(body) - 1, on_ref_free, &freed);
    pt_outq_push_copy(&q, "--", 2);
    pt_outq_push_ref(&q, "static--", 8, NULL, NULL);
    /* Nothing to write: freed at once. */
    pt_outq_push_ref(&q, body, 0, on_ref_free, &empty_freed);
    assert_int_equal(empty_freed, 1);
    assert_int_equal(freed, 0);
    assert_int_equal(pt_outq_pending(&q), sizeof(expect) - 1);

    assert_int_equal(pt_outq_flush(&q, &s.t), 0);
    assert_int_equal(s.writev_calls, 1);
    assert_int_equal(s.last_iovcnt, 4);
    assert_int_equal(freed, 1);
    drain(sv[1], got, sizeof(got), &glen);
    assert_int_equal(glen, sizeof(expect) - 1);
    assert_memory_equal(got, expect, glen);

    pt_outq_dispose(&q);
    assert_int_equal(freed, 1);
    assert_int_equal(ref_calls, 2);
    pt_transport_close(&s.t);
    close(sv[1]);
}

/* Bytes written in place: they share the tail chunk when it has room, take a new one when it
 * has not, and a reservation committed empty (or dropped with the queue) queues nothing. */
static void test_outq_reserve_commit(void **state)
{
    int sv[2];
    static const char body[] = "<body>";
    const char expect[] = "HEAD1\r\nHEAD2\r\n<body>HEAD3";
    unsigned char got[256];
    size_t glen = 0;
    spy s;
    pt_outq q;

    make_pair(sv);
    spy_init(&s, sv[0], false);
    pt_outq_init(&q);

    char *p = pt_outq_reserve(&q, 100);
    assert_int_equal(pt_outq_pending(&q), 0);
    assert_true(pt_outq_is_empty(&q));
    memcpy(p, "HEAD1\r\n", 7);
    pt_outq_commit(&q, 7);
    assert_int_equal(pt_outq_pending(&q), 7);
    assert_int_equal(pt_chunk_outstanding(), 1);

    /* the tail chunk has room: the same chunk, right after the first bytes */
    char *p2 = pt_outq_reserve(&q, 100);
    assert_ptr_equal(p2, p + 7);
    memcpy(p2, "HEAD2\r\n", 7);
    pt_outq_commit(&q, 7);
    assert_int_equal(pt_chunk_outstanding(), 1);

    /* after a reference, or without room in the tail, a chunk of its own */
    pt_outq_push_ref(&q, body, sizeof body - 1, NULL, NULL);
    char *p3 = pt_outq_reserve(&q, PT_CHUNK_SIZE);
    assert_int_equal(pt_chunk_outstanding(), 2);
    pt_outq_commit(&q, 0); /* nothing written: nothing queued, the chunk is kept for later */
    assert_int_equal(pt_outq_pending(&q), 14 + sizeof body - 1);
    char *p4 = pt_outq_reserve(&q, 10);
    assert_ptr_equal(p4, p3);
    assert_int_equal(pt_chunk_outstanding(), 2);
    memcpy(p4, "HEAD3", 5);
    pt_outq_commit(&q, 5);
    assert_int_equal(pt_outq_pending(&q), sizeof expect - 1);

    assert_int_equal(pt_outq_flush(&q, &s.t), 0);
    assert_int_equal(s.last_iovcnt, 3);
    drain(sv[1], got, sizeof(got), &glen);
    assert_int_equal(glen, sizeof(expect) - 1);
    assert_memory_equal(got, expect, glen);
    assert_int_equal(pt_chunk_outstanding(), 0);

    /* a reservation the queue is disposed with goes back */
    pt_outq_reserve(&q, 10);
    assert_int_equal(pt_chunk_outstanding(), 1);
    pt_outq_dispose(&q);
    pt_transport_close(&s.t);
    close(sv[1]);
}

static void file_range_test(bool no_sendfile)
{
    enum { FLEN = 100000, OFF = 777, LEN = 50000 };
    int sv[2];
    unsigned char *data, *expect = malloc(LEN + 6), *got = malloc(LEN + 6);
    size_t glen = 0;
    spy s;
    pt_outq q;
    int fd = make_temp_file(FLEN, 23, &data);

    make_pair(sv);
    spy_init(&s, sv[0], no_sendfile);
    pt_outq_init(&q);
    memcpy(expect, "HDR", 3);
    memcpy(expect + 3, data + OFF, LEN);
    memcpy(expect + 3 + LEN, "END", 3);
    pt_outq_push_copy(&q, "HDR", 3);
    pt_outq_push_file(&q, fd, OFF, LEN, PT_OUTQ_CLOSE_FD);
    pt_outq_push_copy(&q, "END", 3);
    assert_int_equal(pt_outq_pending(&q), LEN + 6);

    flush_all(&q, &s.t, sv[1], got, LEN + 6, &glen, LEN + 6);
    assert_int_equal(glen, LEN + 6);
    assert_memory_equal(got, expect, LEN + 6);
    assert_int_equal(q.written, LEN + 6);
    assert_true(s.sendfile_calls >= 1);
    if (no_sendfile)
        assert_int_equal(s.sendfile_calls, 1); /* asked once, then read + writev */
    assert_true(fd_is_closed(fd));

    pt_outq_dispose(&q);
    pt_transport_close(&s.t);
    close(sv[1]);
    free(data);
    free(expect);
    free(got);
}

static void test_outq_file_sendfile(void **state)
{
    file_range_test(false);
}

static void test_outq_file_fallback(void **state)
{
    file_range_test(true);
}

/* pt_outq_flush_max: never more than asked (memory, a file by sendfile or read + writev), 0
 * with more queued until the queue is empty; the bytes arrive whole and in order. */
static void flush_max_test(bool no_sendfile)
{
    enum { FLEN = 20000, OFF = 100, LEN = 9000, MAX = 700 };
    int sv[2];
    unsigned char *data, expect[LEN + 10], got[LEN + 10];
    size_t glen = 0;
    spy s;
    pt_outq q;
    int fd = make_temp_file(FLEN, 31, &data);

    make_pair(sv);
    spy_init(&s, sv[0], no_sendfile);
    pt_outq_init(&q);
    memcpy(expect, "HEAD", 4);
    memcpy(expect + 4, data + OFF, LEN);
    memcpy(expect + 4 + LEN, "TAIL!!", 6);
    pt_outq_push_copy(&q, "HEAD", 4);
    pt_outq_push_file(&q, fd, OFF, LEN, PT_OUTQ_CLOSE_FD);
    pt_outq_push_copy(&q, "TAIL!!", 6);
    int rounds = 0, r;
    while ((r = pt_outq_flush_max(&q, &s.t, MAX)) == 0 && !pt_outq_is_empty(&q)) {
        /* the socket takes everything: each round ends at the bound, no sooner */
        assert_int_equal(q.written, (size_t)(rounds + 1) * MAX);
        drain(sv[1], got, sizeof got, &glen);
        assert_int_equal(glen, q.written);
        assert_true(++rounds < 100);
    }
    assert_int_equal(r, 0);
    assert_int_equal(rounds, (LEN + 10) / MAX);
    drain(sv[1], got, sizeof got, &glen);
    assert_int_equal(glen, LEN + 10);
    assert_memory_equal(got, expect, LEN + 10);
    assert_true(fd_is_closed(fd));

    pt_outq_dispose(&q);
    pt_transport_close(&s.t);
    close(sv[1]);
    free(data);
}

static void test_outq_flush_max_sendfile(void **state)
{
    flush_max_test(false);
}

static void test_outq_flush_max_fallback(void **state)
{
    flush_max_test(true);
}

static void test_outq_partial_writes(void **state)
{
    enum { N = 300000 };
    int sv[2], sndbuf = 4096, rounds = 0;
    static unsigned char src[N + 4], got[N + 4];
    size_t glen = 0;
    int freed = 0, r;
    pt_transport t;
    pt_outq q;

    fill_random(src, sizeof(src), 29);
    make_pair(sv);
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    pt_tcp_transport_init(&t, sv[0]);
    pt_outq_init(&q);
    pt_outq_push_copy(&q, src, 2);
    pt_outq_push_ref(&q, src + 2, N, on_ref_free, &freed);
    pt_outq_push_copy(&q, src + 2 + N, 2);

    /* The socket takes a part; the rest stays queued, counted exactly. */
    t.want = 0;
    assert_int_equal(pt_outq_flush(&q, &t), -EAGAIN);
    assert_int_equal(t.want, PT_WANT_WRITE);
    assert_true(q.written > 0 && q.written < N + 4);
    assert_int_equal(pt_outq_pending(&q), N + 4 - q.written);
    assert_int_equal(freed, 0);

    for (;;) {
        drain(sv[1], got, sizeof(got), &glen);
        assert_int_equal(glen, q.written);
        r = pt_outq_flush(&q, &t);
        assert_int_equal(pt_outq_pending(&q), N + 4 - q.written);
        if (r == 0)
            break;
        assert_int_equal(r, -EAGAIN);
        assert_true(++rounds < 100000);
    }
    drain(sv[1], got, sizeof(got), &glen);
    assert_true(rounds > 0);
    assert_int_equal(glen, N + 4);
    assert_memory_equal(got, src, N + 4);
    assert_int_equal(freed, 1);
    assert_int_equal(pt_outq_pending(&q), 0);

    pt_outq_dispose(&q);
    assert_int_equal(freed, 1);
    pt_transport_close(&t);
    close(sv[1]);
}

static void test_outq_dispose_pending(void **state)
{
    enum { N = 300000 };
    int sv[2], sndbuf = 4096;
    static unsigned char src[N];
    unsigned char *data1, *data2;
    int freed = 0, kept_freed = 0;
    pt_transport t;
    pt_outq q;
    int owned = make_temp_file(1000, 31, &data1);
    int borrowed = make_temp_file(1000, 37, &data2);

    make_pair(sv);
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    pt_tcp_transport_init(&t, sv[0]);
    pt_outq_init(&q);
    pt_outq_push_copy(&q, "head", 4);
    pt_outq_push_ref(&q, src, N, on_ref_free, &freed);
    pt_outq_push_file(&q, owned, 0, 1000, PT_OUTQ_CLOSE_FD);
    pt_outq_push_ref(&q, src, 10, on_ref_free, &kept_freed);
    pt_outq_push_file(&q, borrowed, 10, 900, 0);
    pt_outq_push_copy(&q, "tail", 4);
    assert_int_equal(pt_outq_flush(&q, &t), -EAGAIN);
    assert_false(pt_outq_is_empty(&q));
    assert_int_equal(freed, 0);

    /* The connection dies with all of that queued: everything is released exactly once. */
    pt_outq_dispose(&q);
    assert_true(pt_outq_is_empty(&q));
    assert_int_equal(pt_outq_pending(&q), 0);
    assert_int_equal(freed, 1);
    assert_int_equal(kept_freed, 1);
    assert_true(fd_is_closed(owned));
    assert_true(fcntl(borrowed, F_GETFD) != -1); /* not the queue's to close */
    assert_int_equal(pt_chunk_outstanding(), 0);
    pt_outq_dispose(&q); /* twice: no-op */
    assert_int_equal(freed, 1);

    close(borrowed);
    free(data1);
    free(data2);
    pt_transport_close(&t);
    close(sv[1]);
}

static void test_outq_epipe(void **state)
{
    int sv[2];
    int freed = 0;
    pt_transport t;
    pt_outq q;

    make_pair(sv);
    pt_tcp_transport_init(&t, sv[0]);
    pt_outq_init(&q);
    close(sv[1]);
    pt_outq_push_copy(&q, "lost", 4);
    pt_outq_push_ref(&q, "also lost", 9, on_ref_free, &freed);
    /* SIGPIPE is at its default here: were it raised, the test program would die. */
    assert_int_equal(pt_outq_flush(&q, &t), -EPIPE);
    assert_int_equal(pt_outq_pending(&q), 13);
    assert_int_equal(q.written, 0);
    pt_outq_dispose(&q);
    assert_int_equal(freed, 1);
    pt_transport_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_chunk_pool_reuses),
        NOTHING_LEFT_TEST(test_inbuf_read_consume),
        NOTHING_LEFT_TEST(test_inbuf_eof),
        NOTHING_LEFT_TEST(test_inbuf_compaction),
        NOTHING_LEFT_TEST(test_inbuf_growth),
        NOTHING_LEFT_TEST(test_inbuf_enobufs),
        NOTHING_LEFT_TEST(test_outq_empty_flush),
        NOTHING_LEFT_TEST(test_outq_copy_coalesces),
        NOTHING_LEFT_TEST(test_outq_copy_spans_chunks),
        NOTHING_LEFT_TEST(test_outq_ref_cb_once),
        NOTHING_LEFT_TEST(test_outq_file_sendfile),
        NOTHING_LEFT_TEST(test_outq_file_fallback),
        NOTHING_LEFT_TEST(test_outq_partial_writes),
        NOTHING_LEFT_TEST(test_outq_flush_max_sendfile),
        NOTHING_LEFT_TEST(test_outq_flush_max_fallback),
        NOTHING_LEFT_TEST(test_outq_dispose_pending),
        NOTHING_LEFT_TEST(test_outq_epipe),
        NOTHING_LEFT_TEST(test_outq_reserve_commit),
    };

    signal(SIGPIPE, SIG_DFL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
