#include "connmgr/buffer.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Memory segments gathered into one writev. Past a few dozen the syscall is no cheaper per
 * byte, and the array lives on the stack. */
#define OUTQ_IOV 64
_Static_assert(OUTQ_IOV <= IOV_MAX, "OUTQ_IOV exceeds IOV_MAX");

static void out_of_memory(const char *file, int line)
{
    fprintf(stderr, "%s:%d: out of memory\n", file, line);
    abort();
}

#define CHECK_ALLOC(p)                                                                             \
    do {                                                                                           \
        if (!(p))                                                                                  \
            out_of_memory(__FILE__, __LINE__);                                                     \
    } while (0)

/* ---- chunk pool ---- */

/* A free chunk stores the link to the next one in its own first bytes. */
typedef struct chunk_link {
    struct chunk_link *next;
} chunk_link;

static _Thread_local chunk_link *pool_head;
static _Thread_local size_t pool_len;
static _Thread_local size_t outstanding;

void *pt_chunk_get(void)
{
    chunk_link *c = pool_head;

    if (c) {
        pool_head = c->next;
        pool_len--;
    } else {
        c = malloc(PT_CHUNK_SIZE);
        CHECK_ALLOC(c);
    }
    outstanding++;
    return c;
}

void pt_chunk_put(void *chunk)
{
    chunk_link *c = chunk;

    if (!c)
        return;
    outstanding--;
    /* Past the cap the chunk goes back to malloc, so a burst does not pin memory forever. */
    if (pool_len >= PT_CHUNK_POOL_MAX) {
        free(c);
        return;
    }
    c->next = pool_head;
    pool_head = c;
    pool_len++;
}

void pt_chunk_pool_trim(void)
{
    while (pool_head) {
        chunk_link *c = pool_head;
        pool_head = c->next;
        free(c);
    }
    pool_len = 0;
}

size_t pt_chunk_outstanding(void)
{
    return outstanding;
}

/* ---- in-buffer ---- */

void pt_inbuf_init(pt_inbuf *b)
{
    *b = (pt_inbuf){0};
}

static void inbuf_release(pt_inbuf *b)
{
    if (b->heap)
        free(b->data);
    else
        pt_chunk_put(b->data);
    *b = (pt_inbuf){0};
}

/* Called when unparsed data fills the whole buffer (so start == 0) and cap < max. */
static void inbuf_grow(pt_inbuf *b, size_t max)
{
    size_t cap = b->cap > SIZE_MAX / 2 ? SIZE_MAX : b->cap * 2;
    char *p;

    if (cap > max)
        cap = max;
    if (b->heap) {
        p = realloc(b->data, cap);
        CHECK_ALLOC(p);
    } else {
        p = malloc(cap);
        CHECK_ALLOC(p);
        memcpy(p, b->data, b->end);
        pt_chunk_put(b->data);
    }
    b->data = p;
    b->cap = cap;
    b->heap = true;
}

ssize_t pt_inbuf_read(pt_inbuf *b, pt_transport *t, size_t max)
{
    size_t len = b->end - b->start;
    size_t room;
    ssize_t n;

    if (len >= max)
        return -ENOBUFS;
    if (!b->data) {
        b->data = pt_chunk_get();
        b->cap = PT_CHUNK_SIZE;
        b->start = b->end = 0;
        b->heap = false;
    }
    /* The unparsed tail is usually a fraction of a request, so moving it is cheaper than a
     * read that can only fill a sliver. */
    if (b->start > 0 && b->cap - b->end < b->cap / 4) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
    }
    if (b->end == b->cap)
        inbuf_grow(b, max);
    room = b->cap - b->end;
    if (room > max - len)
        room = max - len;
    n = pt_transport_read(t, b->data + b->end, room);
    if (n > 0)
        b->end += (size_t)n;
    else if (len == 0)
        inbuf_release(b); /* idle or finished: hold nothing while waiting */
    return n;
}

void pt_inbuf_consume(pt_inbuf *b, size_t n)
{
    assert(n <= b->end - b->start);
    b->start += n;
    if (b->start >= b->end)
        inbuf_release(b);
}

void pt_inbuf_dispose(pt_inbuf *b)
{
    inbuf_release(b);
}

/* ---- out-queue ---- */

enum { SEG_COPY, SEG_REF, SEG_FILE };

struct pt_outq_seg {
    pt_outq_seg *next;
    int kind;
    union {
        struct {
            char *chunk;
            size_t off, end; /* unwritten bytes are chunk[off, end) */
        } copy;
        struct {
            const char *p;
            size_t len;
            pt_outq_free_cb cb;
            void *data;
        } ref;
        struct {
            int fd;
            bool close_fd;
            bool no_sendfile; /* the transport answered -ENOTSUP once; do not ask again */
            off_t offset;
            size_t len;
        } file;
    };
};

void pt_outq_init(pt_outq *q)
{
    *q = (pt_outq){0};
}

static pt_outq_seg *seg_new(pt_outq *q, int kind)
{
    pt_outq_seg *s = q->free_segs;

    if (s) {
        q->free_segs = s->next;
    } else {
        s = malloc(sizeof(*s));
        CHECK_ALLOC(s);
    }
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    return s;
}

static void seg_append(pt_outq *q, pt_outq_seg *s)
{
    s->next = NULL;
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
}

static pt_outq_seg *seg_shift(pt_outq *q)
{
    pt_outq_seg *s = q->head;

    q->head = s->next;
    if (!q->head)
        q->tail = NULL;
    return s;
}

/* Releases what an unlinked segment holds and recycles its record. The record is recycled
 * before the callback runs, so a callback may push onto (or dispose) this queue. */
static void seg_drop(pt_outq *q, pt_outq_seg *s)
{
    pt_outq_seg c = *s;

    s->next = q->free_segs;
    q->free_segs = s;
    switch (c.kind) {
    case SEG_COPY:
        pt_chunk_put(c.copy.chunk);
        break;
    case SEG_REF:
        if (c.ref.cb)
            c.ref.cb(c.ref.data);
        break;
    case SEG_FILE:
        if (c.file.close_fd)
            close(c.file.fd);
        break;
    }
}

void pt_outq_push_copy(pt_outq *q, const void *p, size_t n)
{
    const char *src = p;
    pt_outq_seg *s = q->tail;

    if (n == 0)
        return;
    q->pending += n;
    if (s && s->kind == SEG_COPY && s->copy.end < PT_CHUNK_SIZE) {
        size_t k = PT_CHUNK_SIZE - s->copy.end;
        if (k > n)
            k = n;
        memcpy(s->copy.chunk + s->copy.end, src, k);
        s->copy.end += k;
        src += k;
        n -= k;
    }
    while (n > 0) {
        size_t k = n < PT_CHUNK_SIZE ? n : PT_CHUNK_SIZE;
        s = seg_new(q, SEG_COPY);
        s->copy.chunk = pt_chunk_get();
        memcpy(s->copy.chunk, src, k);
        s->copy.end = k;
        seg_append(q, s);
        src += k;
        n -= k;
    }
}

char *pt_outq_reserve(pt_outq *q, size_t n)
{
    assert(n <= PT_CHUNK_SIZE);
    pt_outq_seg *s = q->tail;
    if (s && s->kind == SEG_COPY && PT_CHUNK_SIZE - s->copy.end >= n) {
        q->reserved = s;
        return s->copy.chunk + s->copy.end;
    }
    if (!q->spare) {
        q->spare = seg_new(q, SEG_COPY);
        q->spare->copy.chunk = pt_chunk_get();
    }
    q->reserved = q->spare;
    return q->spare->copy.chunk;
}

void pt_outq_commit(pt_outq *q, size_t n)
{
    pt_outq_seg *s = q->reserved;
    q->reserved = NULL;
    if (n == 0 || !s)
        return;
    if (s == q->spare) {
        q->spare = NULL;
        seg_append(q, s);
    }
    s->copy.end += n;
    q->pending += n;
}

void pt_outq_push_ref(pt_outq *q, const void *p, size_t n, pt_outq_free_cb free_cb, void *free_data)
{
    pt_outq_seg *s;

    if (n == 0) {
        /* Nothing to write: "written" already. */
        if (free_cb)
            free_cb(free_data);
        return;
    }
    s = seg_new(q, SEG_REF);
    s->ref.p = p;
    s->ref.len = n;
    s->ref.cb = free_cb;
    s->ref.data = free_data;
    seg_append(q, s);
    q->pending += n;
}

void pt_outq_push_file(pt_outq *q, int fd, off_t offset, size_t len, unsigned flags)
{
    pt_outq_seg *s;
    bool close_fd = flags & PT_OUTQ_CLOSE_FD;

    if (len == 0) {
        if (close_fd)
            close(fd);
        return;
    }
    s = seg_new(q, SEG_FILE);
    s->file.fd = fd;
    s->file.close_fd = close_fd;
    s->file.no_sendfile = flags & PT_OUTQ_NO_SENDFILE;
    s->file.offset = offset;
    s->file.len = len;
    seg_append(q, s);
    q->pending += len;
}

static const char *mem_ptr(const pt_outq_seg *s)
{
    return s->kind == SEG_COPY ? s->copy.chunk + s->copy.off : s->ref.p;
}

static size_t mem_len(const pt_outq_seg *s)
{
    return s->kind == SEG_COPY ? s->copy.end - s->copy.off : s->ref.len;
}

/* Accounts for `n` bytes written from the memory segments at the head. */
static void mem_advance(pt_outq *q, size_t n)
{
    q->pending -= n;
    q->written += n;
    while (n > 0 && q->head) {
        pt_outq_seg *s = q->head;
        size_t len = mem_len(s);

        if (n < len) {
            if (s->kind == SEG_COPY)
                s->copy.off += n;
            else {
                s->ref.p += n;
                s->ref.len -= n;
            }
            return;
        }
        n -= len;
        seg_drop(q, seg_shift(q));
    }
}

/* Writes the memory segments at the head, at most `max` bytes of them (more than 0). */
static int flush_memory(pt_outq *q, pt_transport *t, size_t max)
{
    struct iovec iov[OUTQ_IOV];
    int n = 0;
    ssize_t r;

    for (pt_outq_seg *s = q->head; s && s->kind != SEG_FILE && n < OUTQ_IOV && max; s = s->next) {
        size_t len = mem_len(s);
        if (len > max)
            len = max;
        iov[n].iov_base = (void *)mem_ptr(s);
        iov[n].iov_len = len;
        max -= len;
        n++;
    }
    r = pt_transport_writev(t, iov, n);
    if (r < 0)
        return (int)r;
    if (r == 0)
        return -EIO; /* a transport that takes nothing without -EAGAIN would spin us */
    mem_advance(q, (size_t)r);
    return 0;
}

/* Fallback for transports without sendfile: reads one chunk of the file into a copy segment
 * put before the file segment, which the next writev sends with what follows. */
static int file_read_ahead(pt_outq *q, pt_outq_seg *s)
{
    size_t k = s->file.len < PT_CHUNK_SIZE ? s->file.len : PT_CHUNK_SIZE;
    char *chunk = pt_chunk_get();
    pt_outq_seg *c;
    ssize_t r;

    do
        r = pread(s->file.fd, chunk, k, s->file.offset);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        int err = r < 0 ? -errno : -EIO; /* 0: the file is shorter than what was queued */
        pt_chunk_put(chunk);
        return err;
    }
    c = seg_new(q, SEG_COPY);
    c->copy.chunk = chunk;
    c->copy.end = (size_t)r;
    c->next = s;
    q->head = c;
    /* The bytes move from the file segment to the copy one: pending does not change. */
    s->file.offset += r;
    s->file.len -= (size_t)r;
    if (s->file.len == 0) {
        c->next = s->next;
        if (q->tail == s)
            q->tail = c;
        seg_drop(q, s);
    }
    return 0;
}

/* Sends the file range at the head, at most `max` bytes of it (more than 0). */
static int flush_file(pt_outq *q, pt_transport *t, size_t max)
{
    pt_outq_seg *s = q->head;
    off_t off = s->file.offset;
    ssize_t r;

    if (s->file.no_sendfile)
        return file_read_ahead(q, s);
    r = pt_transport_sendfile(t, s->file.fd, &off, s->file.len < max ? s->file.len : max);
    if (r == -ENOTSUP) {
        s->file.no_sendfile = true;
        return file_read_ahead(q, s);
    }
    if (r < 0)
        return (int)r;
    if (r == 0)
        return -EIO; /* the file is shorter than what was queued */
    q->pending -= (size_t)r;
    q->written += (size_t)r;
    s->file.offset += r;
    s->file.len -= (size_t)r;
    if (s->file.len == 0)
        seg_drop(q, seg_shift(q));
    return 0;
}

int pt_outq_flush_max(pt_outq *q, pt_transport *t, size_t max)
{
    size_t from = q->written;
    while (q->head) {
        /* A transport may take more than it was offered (TLS records held from a larger
         * offer before), never less than it says. */
        size_t done = q->written - from;
        if (done >= max)
            return 0;
        int r = q->head->kind == SEG_FILE ? flush_file(q, t, max - done)
                                          : flush_memory(q, t, max - done);
        if (r < 0)
            return r;
    }
    return 0;
}

int pt_outq_flush(pt_outq *q, pt_transport *t)
{
    return pt_outq_flush_max(q, t, SIZE_MAX);
}

void pt_outq_dispose(pt_outq *q)
{
    /* `written` survives so a close-time log line can still read it. */
    while (q->head)
        seg_drop(q, seg_shift(q));
    if (q->spare) {
        seg_drop(q, q->spare);
        q->spare = NULL;
    }
    q->reserved = NULL;
    while (q->free_segs) {
        pt_outq_seg *s = q->free_segs;
        q->free_segs = s->next;
        free(s);
    }
    q->tail = NULL;
    q->pending = 0;
}
