/**
 * @file
 * Buffers of a connection: the in-buffer (bytes read, not yet parsed) and the out-queue
 * (response pieces not yet written: memory and file ranges).
 *
 * Memory: both draw fixed-size chunks (PT_CHUNK_SIZE) from a per-thread free list, and give
 * them back as soon as they are empty, so an idle keep-alive connection holds no buffer. The
 * free list keeps at most PT_CHUNK_POOL_MAX chunks; pt_chunk_pool_trim() frees them all.
 *
 * Ownership: the caller owns the pt_inbuf/pt_outq storage (init/dispose). The out-queue owns
 * what is pushed into it: copies, and references whose free callback it calls once they are
 * written or disposed; a file segment's fd is closed by the queue if pushed with close_fd.
 * Errors: negative errno; allocation failure aborts.
 */
#ifndef PORTER_CONNMGR_BUFFER_H
#define PORTER_CONNMGR_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "porter/export.h"
#include "connmgr/transport.h"

/** Bytes in one buffer chunk. */
#define PT_CHUNK_SIZE (16 * 1024)
/** Chunks the per-thread free list keeps at most. */
#define PT_CHUNK_POOL_MAX 256

/** Chunk free list (per thread). */
PT_API void *pt_chunk_get(void);
PT_API void pt_chunk_put(void *chunk);
PT_API void pt_chunk_pool_trim(void);
PT_API size_t pt_chunk_outstanding(void); /**< chunks handed out and not yet returned, for tests */

/** In-buffer: a contiguous window [data+start, data+end) of bytes read. It grows past one chunk
 * (up to `max`) only when a single unparsed item is larger than a chunk. */
typedef struct pt_inbuf {
    char *data;             /**< a pool chunk, or a heap block once grown */
    size_t start, end, cap; /**< unparsed bytes are [start, end) of cap */
    bool heap;              /**< data is a heap block (grown), not a pool chunk */
} pt_inbuf;

/** Makes `b` an empty in-buffer (it takes memory at its first read). */
PT_API void pt_inbuf_init(pt_inbuf *b);
/** Reads what the transport has into the buffer, growing it to at most `max` bytes of unparsed
 * data. Returns bytes read (>0), 0 at end of stream, -EAGAIN, -ENOBUFS when `max` unparsed
 * bytes are already held, or -errno. */
PT_API ssize_t pt_inbuf_read(pt_inbuf *b, pt_transport *t, size_t max);
/** The first unparsed byte. */
static inline const char *pt_inbuf_begin(const pt_inbuf *b)
{
    return b->data + b->start;
}
/** The number of unparsed bytes. */
static inline size_t pt_inbuf_len(const pt_inbuf *b)
{
    return b->end - b->start;
}
/** Marks `n` bytes as parsed. When nothing is left the memory goes back to the pool. */
PT_API void pt_inbuf_consume(pt_inbuf *b, size_t n);
/** Gives the buffer's memory back. */
PT_API void pt_inbuf_dispose(pt_inbuf *b);

/** Out-queue. */
typedef struct pt_outq_seg pt_outq_seg;
/** Frees what pt_outq_push_ref() queued, once it is written or dropped. */
typedef void (*pt_outq_free_cb)(void *data);

/** An out-queue: the bytes and file ranges a connection has yet to write, in order. */
typedef struct pt_outq {
    pt_outq_seg *head, *tail; /**< the segments, oldest first */
    pt_outq_seg *free_segs;   /**< recycled segment records */
    pt_outq_seg *spare;       /**< a copy segment made by pt_outq_reserve, not yet queued */
    pt_outq_seg *reserved;    /**< where the last pt_outq_reserve's room is */
    size_t pending;           /**< bytes not yet written */
    size_t written;           /**< bytes written since init (for logs) */
} pt_outq;

/** Makes `q` an empty out-queue. */
PT_API void pt_outq_init(pt_outq *q);
/** Copies `n` bytes; consecutive small copies share a chunk so they go out in one iovec. */
PT_API void pt_outq_push_copy(pt_outq *q, const void *p, size_t n);
/** Room for up to `n` bytes (at most PT_CHUNK_SIZE) after what is queued, to be written in
 * place and queued by pt_outq_commit(): bytes formatted anyway are not copied again. Nothing is
 * queued until the commit; any other push in between invalidates the room. */
PT_API char *pt_outq_reserve(pt_outq *q, size_t n);
/** Queues the first `n` bytes written at the room of the last pt_outq_reserve() (0: none). */
PT_API void pt_outq_commit(pt_outq *q, size_t n);
/** Queues `n` bytes at `p` without copying; `free_cb(free_data)` (if any) runs once they have
 * been written or the queue is disposed. */
PT_API void pt_outq_push_ref(pt_outq *q, const void *p, size_t n, pt_outq_free_cb free_cb,
                             void *free_data);
/** Flags of pt_outq_push_file(). */
enum {
    PT_OUTQ_CLOSE_FD = 1,    /**< the queue closes fd once the range is written or dropped */
    PT_OUTQ_NO_SENDFILE = 2, /**< read and write instead of sendfile (conf `sendfile off`) */
};

/** Queues `len` bytes of file `fd` from `offset`; `flags` is a set of PT_OUTQ_* values. */
PT_API void pt_outq_push_file(pt_outq *q, int fd, off_t offset, size_t len, unsigned flags);
/** Writes as much as the transport takes: consecutive memory segments in one writev, file
 * ranges with sendfile (read + writev if the transport answers -ENOTSUP). Returns 0 when the
 * queue is empty, -EAGAIN when bytes remain, or -errno (EPIPE, ECONNRESET, ...). */
PT_API int pt_outq_flush(pt_outq *q, pt_transport *t);
/** The same, writing at most `max` bytes (more than 0; a rate's share: see connmgr/rate.h):
 * returns 0 when it wrote `max` bytes or everything queued (pt_outq_is_empty() tells which),
 * -EAGAIN when the transport took fewer, or -errno. */
PT_API int pt_outq_flush_max(pt_outq *q, pt_transport *t, size_t max);
/** Bytes queued and not yet written. */
static inline size_t pt_outq_pending(const pt_outq *q)
{
    return q->pending;
}
/** Returns true when nothing is queued. */
static inline bool pt_outq_is_empty(const pt_outq *q)
{
    return q->head == NULL;
}
/** Drops everything queued (running free callbacks, closing owned fds) and returns memory. */
PT_API void pt_outq_dispose(pt_outq *q);

#endif
