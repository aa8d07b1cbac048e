/**
 * @file
 * Transport: a byte stream under a connection (TCP now; TLS wraps another transport later).
 *
 * A transport is a small vtable over a non-blocking fd. It owns the fd once opened and closes
 * it in close(); close twice is a no-op. Errors come back as a negative errno; -EAGAIN means
 * "wait for readiness" (pt_transport.want says which direction, for transports such as TLS
 * whose write may need a read).
 *
 * Threading: the loop's thread only.
 */
#ifndef PORTER_CONNMGR_TRANSPORT_H
#define PORTER_CONNMGR_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "porter/export.h"

typedef struct pt_transport pt_transport;

/** The operations of one kind of transport. */
typedef struct pt_transport_ops {
    /** Reads up to `len` bytes: >0 bytes read, 0 end of stream, -EAGAIN, or -errno. */
    ssize_t (*read)(pt_transport *t, void *buf, size_t len);
    /** Writes from `iov`: bytes written (possibly fewer), -EAGAIN, or -errno. The next call
     * starts with the bytes not yet counted as written (TLS may hold them encrypted already). */
    ssize_t (*writev)(pt_transport *t, const struct iovec *iov, int iovcnt);
    /** Sends `len` bytes of `fd` from `*offset`, advancing it: bytes sent, -EAGAIN, -errno, or
     * -ENOTSUP if this transport cannot (the caller then reads and writes). */
    ssize_t (*sendfile)(pt_transport *t, int fd, off_t *offset, size_t len);
    /** Half close: no more writes (tcp-abandon-port). 0 or -errno. */
    int (*shutdown_write)(pt_transport *t);
    /** Releases everything, the fd included. Idempotent. */
    void (*close)(pt_transport *t);
    /** Bytes already decoded and waiting inside the transport (TLS records read ahead), which
     * no readiness event will announce. Optional: NULL means none ever. */
    size_t (*pending)(const pt_transport *t);
} pt_transport_ops;

/** What a transport waits for after -EAGAIN (pt_transport.want). */
enum { PT_WANT_READ = 1, PT_WANT_WRITE = 2 };

/** A transport: a byte stream over a non-blocking fd. */
struct pt_transport {
    const pt_transport_ops *ops; /**< its kind */
    int fd;                      /**< -1 once closed */
    int want;                    /**< after -EAGAIN: PT_WANT_READ and/or PT_WANT_WRITE */
    void *impl;                  /**< the transport's own state (TLS: the SSL object) */
    int wfd; /**< a pair's write side (pt_pair_transport_init); -1: writes go to fd */
};

/** Reads up to `len` bytes (see pt_transport_ops.read). */
static inline ssize_t pt_transport_read(pt_transport *t, void *buf, size_t len)
{
    return t->ops->read(t, buf, len);
}
/** Writes from `iov` (see pt_transport_ops.writev). */
static inline ssize_t pt_transport_writev(pt_transport *t, const struct iovec *iov, int n)
{
    return t->ops->writev(t, iov, n);
}
/** Sends a file range (see pt_transport_ops.sendfile). */
static inline ssize_t pt_transport_sendfile(pt_transport *t, int fd, off_t *off, size_t len)
{
    return t->ops->sendfile(t, fd, off, len);
}
/** Half-closes: no more writes (see pt_transport_ops.shutdown_write). */
static inline int pt_transport_shutdown_write(pt_transport *t)
{
    return t->ops->shutdown_write(t);
}
/** Bytes decoded and waiting inside the transport (0 for one that keeps none). */
static inline size_t pt_transport_pending(const pt_transport *t)
{
    return t->ops->pending ? t->ops->pending(t) : 0;
}
/** Closes the transport and its fd. NULL, or closing twice: a no-op. */
static inline void pt_transport_close(pt_transport *t)
{
    if (t && t->ops)
        t->ops->close(t);
}

/** Makes `t` a TCP transport over the connected, non-blocking socket `fd`, which it now owns. */
PT_API void pt_tcp_transport_init(pt_transport *t, int fd);

/**
 * Makes `t` a transport over a pair of non-blocking descriptors (Racket's port pair): reads
 * come from `rfd`, writes go to `wfd` (pipes, inetd-style stdin/stdout). It owns both;
 * shutdown_write closes `wfd`.
 */
PT_API void pt_pair_transport_init(pt_transport *t, int rfd, int wfd);

/** racket/tcp's tcp-addresses: copies the local address of the transport's socket (getsockname)
 * to `local` and the peer's (getpeername) to `peer`, with their lengths to `local_len` and
 * `peer_len`; any of the four may be NULL. For a connection accepted by a listener, or an
 * outbound transport, TCP or TLS alike (`&c->transport`, `&o->transport`).
 * @return 0, or a negative errno: -ENOTCONN once the peer is gone, -ENOTSOCK for a pair of
 *         pipes, -EBADF for a closed transport. */
PT_API int pt_transport_addresses(const pt_transport *t, struct sockaddr_storage *local,
                                  socklen_t *local_len, struct sockaddr_storage *peer,
                                  socklen_t *peer_len);

/** Returns true if `t` is a plain TCP transport (no state beyond its socket). */
PT_API bool pt_transport_is_tcp(const pt_transport *t);

#endif
