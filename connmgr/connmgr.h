/**
 * @file
 * Connection manager: admission, the live set, idle eviction and graceful drain (Racket's
 * connection manager with safety limits).
 *
 * The manager owns a custodian (a child of the one given, or a root) under which every
 * connection gets its own child custodian; shutting the manager's custodian down releases every
 * connection. It owns an ev_prepare watcher that reaps released memory at the end of each loop
 * iteration (see custodian.h).
 *
 * Admission: at max_concurrent live connections the manager first evicts the oldest idle
 * keep-alive connection; if none is idle it calls on_full (the server pauses its listeners:
 * clients wait in the backlog) and on_room once a connection goes.
 *
 * Threading: one manager per loop, the loop's thread only.
 */
#ifndef PORTER_CONNMGR_CONNMGR_H
#define PORTER_CONNMGR_CONNMGR_H

#include <ev.h>
#include <stddef.h>

#include "porter/export.h"
#include "connmgr/conn.h"

/** Options of pt_connmgr_new(); pt_connmgr_options_init() fills the defaults. A sized struct
 * ("Versions and ABI" in docs/embedding.md): new options are added at its end. */
typedef struct pt_connmgr_options {
    size_t size;                /**< the struct's size, set by pt_connmgr_options_init() */
    const pt_limits *limits;    /**< copied; NULL (the default): pt_limits_init()'s */
    const pt_conn_proto *proto; /**< borrowed; must outlive the manager */
    void *proto_data;           /**< given to each connection's proto_data at admission */
    /** Bytes the protocol takes from each connection's custodian when it is made (its
     * per-connection state): allocated together with the connection. */
    size_t proto_size;
    pt_custodian *custodian;     /**< parent custodian, borrowed; NULL: the manager makes a root */
    void (*on_full)(void *data); /**< admission paused */
    void (*on_room)(void *data); /**< admission may resume */
    /** A connection was made (set proto_data here). It is read at once after this, unless
     * on_admit paused its reading (pt_conn_pause_read: what reads the socket first itself). */
    void (*on_admit)(pt_conn *c, void *data);
    void (*on_drained)(void *data); /**< pt_connmgr_drain finished: no live connection left */
    /** Layers a transport over each accepted connection's TCP transport (TLS): called with the
     * TCP transport of the new connection, which it may replace in place. Returns 0 or a
     * negative errno (the connection is then closed). Optional. */
    int (*wrap_transport)(pt_transport *t, void *data);
    /** Sent (best effort) to a client refused for max_concurrent_per_client before its socket
     * is closed; borrowed. NULL: just close. */
    const char *refusal;
    size_t refusal_len; /**< bytes of refusal */
    void *data;         /**< given to the callbacks above */
} pt_connmgr_options;

/** Fills the first `size` bytes of `o` with the defaults and stores `size` (call
 * pt_connmgr_options_init(), which passes the size the program was compiled with). */
PT_API void pt_connmgr_options_init_sized(pt_connmgr_options *o, size_t size);

/** Fills `o` with the defaults: the default limits, no callbacks. */
static inline void pt_connmgr_options_init(pt_connmgr_options *o)
{
    pt_connmgr_options_init_sized(o, sizeof *o);
}

/** Creates a manager on `loop`. Returns 0 or a negative errno: -EINVAL for options (or limits)
 * this version cannot read (see pt_connmgr_options.size) or without a protocol. */
PT_API int pt_connmgr_new(pt_connmgr **out, struct ev_loop *loop, const pt_connmgr_options *o);

/** Takes ownership of the connected, non-blocking socket `fd` and makes a connection for it, in
 * state READING with the request_read_timeout, and reads what has already arrived. Returns the
 * connection, or NULL when it was refused (closed at once: over capacity while draining, or out
 * of resources) or already finished (answered and closed by that first read). */
PT_API pt_conn *pt_connmgr_admit(pt_connmgr *m, int fd, const struct sockaddr *peer,
                                 socklen_t peerlen);

/**
 * Makes a connection over a pair of non-blocking descriptors, reading from `rfd` and writing to
 * `wfd` (Racket's input and output ports: pipes, or inetd-style stdin/stdout), which it takes.
 * Admission, limits, timer and custodian are those of any connection; it is never parked and
 * has no peer address. Returns the connection, or NULL when refused (both closed) or already
 * finished by its first read.
 */
PT_API pt_conn *pt_connmgr_admit_pair(pt_connmgr *m, int rfd, int wfd);

/** Graceful stop: no admission; idle connections close now; busy ones close after their current
 * response; after `grace` seconds (PT_TIMEOUT_NONE: wait) the rest are killed. on_drained runs
 * when none is left. A second call kills everything at once. */
PT_API void pt_connmgr_drain(pt_connmgr *m, double grace);

/** A drain for handing over to a successor (reload) that loses no request: like
 * pt_connmgr_drain, but idle keep-alive connections are not closed at once, since their client
 * may be sending a request that crosses the close. Each connection closes after its next
 * response (which says Connection: close), by its own keep-alive timeout, or when `grace`
 * runs out. */
PT_API void pt_connmgr_retire(pt_connmgr *m, double grace);

/** Closes up to `max` idle keep-alive connections, parked ones and then the longest idle
 * first (the process needs their file descriptors). Returns how many were closed. */
PT_API size_t pt_connmgr_evict_idle(pt_connmgr *m, size_t max);

/** Returns true once pt_connmgr_drain or pt_connmgr_retire has been called. */
PT_API bool pt_connmgr_is_draining(const pt_connmgr *m);

/** Kills every connection and frees the manager (its custodian is shut down). NULL: no-op. */
PT_API void pt_connmgr_free(pt_connmgr *m);

/** Copies the manager's counters to `out`. */
PT_API void pt_connmgr_get_stats(const pt_connmgr *m, pt_connmgr_stats *out);
/** The manager's safety limits (borrowed). */
PT_API const pt_limits *pt_connmgr_limits(const pt_connmgr *m);
/** The manager's loop. */
PT_API struct ev_loop *pt_connmgr_loop(const pt_connmgr *m);

#endif
