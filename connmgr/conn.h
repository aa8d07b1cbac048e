/**
 * @file
 * Connection: Racket's {timer, in, out, custodian, close?} over a transport.
 *
 * A connection is made by its connection manager from an accepted fd (pt_connmgr_admit) and
 * runs a protocol (pt_conn_proto: the HTTP dispatcher, or an embedder's). It owns, through its
 * custodian (a child of the manager's): the transport and its fd, the io watcher, the timer, the
 * in-buffer and the out-queue, its own memory, and whatever a handler registers with
 * pt_conn_custodian(). pt_conn_kill() shuts that custodian down, so a killed connection leaks
 * nothing; its memory stays readable until the end of the loop iteration, so a callback may
 * kill the connection it runs on and return.
 *
 * Flow: readable → the connection reads into `in` and calls proto->on_read; the protocol queues
 * bytes on `out` and calls pt_conn_flush(); when the queue empties, proto->on_drain runs. The
 * timer calls proto->on_timeout (default: kill).
 *
 * A send rate (pt_conn_set_send_rate) holds the bytes queued after it to that rate: when they
 * are ahead of it the connection stops writing (no write watcher) and its timer wakes it when
 * the rate allows more. Meanwhile the timer is the rate's, so no send timeout runs while porter
 * itself holds the bytes back; writing on arms it again.
 *
 * Threading: the loop's thread only. Errors: negative errno.
 */
#ifndef PORTER_CONNMGR_CONN_H
#define PORTER_CONNMGR_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "porter/export.h"
#include "connmgr/buffer.h"
#include "connmgr/custodian.h"
#include "connmgr/limits.h"
#include "connmgr/rate.h"
#include "connmgr/timer.h"
#include "connmgr/transport.h"

typedef struct pt_conn pt_conn;
typedef struct pt_connmgr pt_connmgr;
/** What a PROXY protocol header said (connmgr/proxy_protocol.h, not a public header). */
struct pt_proxy_header;

/** What a connection is doing, for the status page and for eviction. */
typedef enum pt_conn_state {
    PT_CONN_READING,   /**< waiting for or reading a request */
    PT_CONN_WRITING,   /**< a response is being produced or sent */
    PT_CONN_IDLE,      /**< keep-alive, between requests */
    PT_CONN_LINGERING, /**< closing: discarding input so the client sees our response */
} pt_conn_state;

/** A connection manager's counters (pt_connmgr_get_stats). */
typedef struct pt_connmgr_stats {
    size_t live, idle, reading, writing, lingering; /**< connections now, by state */
    size_t parked; /**< of the idle ones, those parked (their socket kept, their memory not) */
    unsigned long long accepted, rejected, closed; /**< connections so far */
    unsigned long long requests; /**< counted by the protocol (pt_conn_count_request) */
    unsigned long long invalid;  /**< requests refused as malformed (pt_conn_count_invalid) */
    unsigned long long bytes_in, bytes_out; /**< bytes read and written */
} pt_connmgr_stats;

/** A protocol run over connections (the HTTP dispatcher is one): its manager calls these. */
typedef struct pt_conn_proto {
    /** New bytes are in c->in, or c->eof is set. */
    void (*on_read)(pt_conn *c);
    /** The out-queue is empty after a flush that had to wait. Optional. */
    void (*on_drain)(pt_conn *c);
    /** The connection's timer expired. Optional: the default kills the connection. */
    void (*on_timeout)(pt_conn *c);
    /** The connection is being released (killed or closed). Release protocol state here; do
     * not write. Resources registered on the connection's custodian after it was made have
     * already been released (LIFO). Optional. */
    void (*on_close)(pt_conn *c);
    /** Its manager has started draining (pt_connmgr_drain, pt_connmgr_retire): a protocol that
     * can tell its peer to send nothing new (HTTP/2's GOAWAY) does so now, and closes once what
     * is in flight is done. Runs once per connection, before the manager closes idle ones.
     * Optional: without it, the protocol sees pt_connmgr_is_draining at its next event. */
    void (*on_retire)(pt_conn *c);
} pt_conn_proto;

/** The manager's side of a connection (internal to connmgr/). */
struct pt_conn_owner;

/** A connection. Its protocol reads these fields and changes them through the functions below. */
struct pt_conn {
    pt_connmgr *mgr;                   /**< the manager that admitted it */
    const struct pt_conn_owner *owner; /**< what it reports to its manager through */
    pt_custodian *custodian;           /**< owns everything of the connection */
    pt_transport transport;            /**< the byte stream (TCP, or TLS over it) */
    pt_inbuf in;                       /**< bytes read, not yet parsed */
    pt_outq out;                       /**< what is still to be written */
    pt_timer timer;                    /**< the connection's single deadline */
    ev_io io;                          /**< the socket's readiness */
    ev_io *wio;                 /**< a pair's write side (pt_connmgr_admit_pair); else NULL */
    const pt_conn_proto *proto; /**< the protocol it runs */
    void *proto_data;           /**< the protocol's state */
    const pt_limits *limits;    /**< its manager's safety limits */
    pt_connmgr_stats *stats;    /**< the manager's counters */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;               /**< an IP peer (others are not recorded: sa_family AF_UNSPEC) */
    socklen_t peerlen;    /**< the length of peer */
    pt_conn_state state;  /**< what it is doing (pt_conn_set_state) */
    bool eof;             /**< the peer half-closed: no more input */
    bool close_after;     /**< close once the out-queue is written */
    bool linger;          /**< input may still arrive: discard it while closing */
    bool dead;            /**< killed; memory valid until the loop iteration ends */
    bool read_paused;     /**< the protocol does not want input now */
    bool parked;          /**< released into the parking lot, its socket kept open */
    bool linked;          /**< in the manager's live set (not yet, while being made) */
    bool nodelay;         /**< TCP_NODELAY is set */
    bool held;            /**< writing waits for the send rate: the timer wakes it */
    bool shutdown_after;  /**< pt_conn_shutdown_write(): half-close once the queue is written */
    bool write_shut;      /**< the write side is shut (the half close is done) */
    unsigned requests;    /**< requests counted on it */
    int sndq;             /**< unsent bytes in the kernel when the send timeout was last set */
    ev_tstamp idle_since; /**< when it last became idle (ev_now clock) */
    size_t in_max;        /**< most unparsed input held (the protocol sets it) */
    pt_rate rate;         /**< the send rate of what is queued from rate_from on (rate 0: none) */
    uint64_t rate_from;   /**< where it starts: a count of the out-queue's bytes, written or not */
    pt_conn *prev, *next; /**< the manager's live list */
    pt_conn *idle_prev, *idle_next; /**< the manager's idle list, oldest first */
    unsigned long long serial;      /**< its number in the process (a parked one gets another) */
    /** What the connection's PROXY protocol header said, when it named the client (its
     * addresses: connmgr/proxy_protocol.h), in the connection's custodian; else NULL. `peer`
     * stays the connection's own. */
    const struct pt_proxy_header *proxied;
};

/** The custodian owning everything of this connection; handlers register their resources here
 * so they are released with the connection. */
static inline pt_custodian *pt_conn_custodian(pt_conn *c)
{
    return c->custodian;
}

/** Hands the connection to another protocol (`data` becomes proto_data): from now on its reads,
 * drains, timeouts and close go to `proto`. */
static inline void pt_conn_set_proto(pt_conn *c, const pt_conn_proto *proto, void *data)
{
    c->proto = proto;
    c->proto_data = data;
}

/** Sets the most unparsed input the connection holds before it stops reading (-ENOBUFS from
 * the in-buffer pauses it until the protocol consumes). */
static inline void pt_conn_set_input_max(pt_conn *c, size_t max)
{
    c->in_max = max;
}

/** Asks for a lingering close: when the connection closes, input that may still arrive is
 * read and discarded for a while, so the peer reads the last response instead of a reset. */
static inline void pt_conn_set_linger(pt_conn *c)
{
    c->linger = true;
}

/** Counts a request on this connection and its manager. */
static inline void pt_conn_count_request(pt_conn *c)
{
    c->requests++;
    c->stats->requests++;
}

/** Counts a request the protocol refused as malformed (answered with an error, then closed). */
static inline void pt_conn_count_invalid(pt_conn *c)
{
    c->stats->invalid++;
}

/** Writes what the out-queue holds. If the transport cannot take it all, waits for writability
 * (bounded by the response_send_timeout per stall) and calls proto->on_drain when empty. When the
 * queue empties with close_after set, the connection closes gracefully. Returns 0, -EAGAIN
 * (waiting), or a negative errno after which the connection has been killed. */
PT_API int pt_conn_flush(pt_conn *c);

/** Holds the bytes queued from now on (a response about to be queued) to `rate` bytes per
 * second after their first `after` bytes, for a request that began at `start` (ev_now's
 * clock): nginx's limit_rate, connmgr/rate.h. What is queued already goes as fast as before.
 * A rate of 0 ends the hold (for what is still queued too). While writing waits for the rate,
 * the timer is the rate's: pt_conn_reset_timeout() and pt_conn_adjust_timeout() leave it, and
 * the send timeout starts again when writing does. */
PT_API void pt_conn_set_send_rate(pt_conn *c, uint64_t rate, uint64_t after, double start);

/** The half close (racket/tcp's close-output-port on a TCP port; the write side only): once
 * everything queued is written, the peer reads the end of the stream (over TLS, a close_notify
 * first); reading goes on, so the peer may still send and the protocol still gets on_read and,
 * at the peer's own end, c->eof. Nothing may be queued after it (writing it fails and kills the
 * connection). Idempotent. Returns 0 (done now, or to be done when the queue is written) or a
 * negative errno, after which the connection has been killed (-ECONNABORTED: it was already). */
PT_API int pt_conn_shutdown_write(pt_conn *c);

/** Closes once everything queued is written: half-close, then a short lingering read so the
 * client receives the response instead of a reset, then kill. */
PT_API void pt_conn_close(pt_conn *c);

/** Releases everything now (custodian shutdown). Idempotent. */
PT_API void pt_conn_kill(pt_conn *c);

/** Racket's reset-connection-timeout!: the connection's deadline becomes now + `secs`
 * (PT_TIMEOUT_NONE: no deadline). */
PT_API void pt_conn_reset_timeout(pt_conn *c, double secs);

/** Racket's adjust-connection-timeout!: the deadline moves `secs` later. */
PT_API void pt_conn_adjust_timeout(pt_conn *c, double secs);

/** Stops or restarts reading (back-pressure, or while a response is being produced). */
PT_API void pt_conn_pause_read(pt_conn *c);
PT_API void pt_conn_resume_read(pt_conn *c);

/** Sets TCP_NODELAY once (IP sockets): for a connection that stays open for more requests, so
 * the last small segment of a response never waits for the client's delayed ACK (Nagle). A
 * connection that answers once and closes never needs the system call. */
PT_API void pt_conn_set_nodelay(pt_conn *c);

/** Marks the connection idle (keep-alive, between requests) or busy again. Idle connections are
 * the first evicted when the manager is full, oldest first. */
PT_API void pt_conn_set_state(pt_conn *c, pt_conn_state state);

#endif
