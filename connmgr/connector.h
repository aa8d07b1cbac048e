/**
 * @file
 * Connector: opens outbound transports to authorities without blocking the loop (net2's
 * connector, CHICKEN's socket-connect/ai).
 *
 * Connecting resolves the authority into a list of addresses and tries each in order. A
 * transient error (refused, unreachable, network down, reset, no such address family, a timed
 * out attempt) goes on to the next address; a fatal one (invalid argument, permission, out of
 * descriptors or memory, ...) stops at once; when every address failed, the last error is
 * reported. Each attempt is bounded by attempt_timeout and the whole connect by the timeout
 * given to pt_connector_connect(). An optional local address is bound before connecting
 * (for addresses of its family).
 *
 * Resolution. Literal addresses and unix socket paths never touch a resolver: they were parsed
 * when the authority was made. A DNS name is resolved on a resolver thread owned by the
 * connector (started at the first name, at most PT_CONNECTOR_RESOLVER_THREADS of them), which
 * hands the answer back to the loop through an ev_async; answers are cached for resolve_valid
 * seconds. A plain getaddrinfo() on helper threads was chosen over glibc's getaddrinfo_a():
 * getaddrinfo_a notifies by signal or by a thread it creates per request (so an ev_async is
 * needed anyway), cannot abandon a lookup in progress either, and leaves its threads and
 * memory to glibc; a small pool of our own is joined on free (no leak at exit), starts no
 * thread before a name is looked up (so a process that forks workers after building
 * connectors forks no thread), blocks every signal, and makes the answer injectable for tests
 * (resolve). The ev_async is active only while lookups are outstanding, so an idle connector
 * never keeps its loop running.
 *
 * Ownership: the connector owns a custodian (a child of options.custodian, or a root).
 * Everything it opens is registered there: sockets being connected and the transports it
 * hands out (pt_outbound). A transport therefore outlives the request that asked for it, so a
 * request's custodian shutting down never closes a transport another request is using; the
 * holder gives it back to a pool (connmgr/pool.h) or closes it with pt_outbound_close(). When
 * the connector's custodian shuts down, every transport's socket is closed; the memory of one
 * still held stays valid until its holder closes it.
 *
 * Callbacks: the completion callback of pt_connector_connect() always runs from the loop,
 * never from inside the call. Threading: the loop's thread only (the resolver threads touch
 * only their own jobs). Errors: negative errno; a name that does not resolve is -ENOENT, a
 * connect that ran out of time -ETIMEDOUT, a cancelled or shut-down connect -ECANCELED.
 */
#ifndef PORTER_CONNMGR_CONNECTOR_H
#define PORTER_CONNMGR_CONNECTOR_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "porter/export.h"
#include "connmgr/authority.h"
#include "connmgr/custodian.h"
#include "connmgr/transport.h"

/** The most addresses one connect tries. */
#define PT_CONNECTOR_MAX_ADDRESSES 16
/** The most resolver threads a connector starts. */
#define PT_CONNECTOR_RESOLVER_THREADS 2

typedef struct pt_connector pt_connector;
typedef struct pt_connect pt_connect;
typedef struct pt_outbound pt_outbound;

/** One address to connect to. */
typedef struct pt_connect_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } addr;
    socklen_t len; /**< the length of addr */
} pt_connect_addr;

/** A resolver: fills at most `max` addresses of `host` (port 0; the connector sets the port) in
 * the order they should be tried and returns how many, or a negative errno. It runs on a
 * resolver thread and must be thread-safe. */
typedef int (*pt_resolve_fn)(const char *host, pt_connect_addr *out, size_t max, void *data);

/** Options of pt_connector_new(); pt_connector_options_init() fills the defaults. A sized
 * struct ("Versions and ABI" in docs/embedding.md): new options are added at its end. */
typedef struct pt_connector_options {
    size_t size;            /**< the struct's size, set by pt_connector_options_init() */
    double attempt_timeout; /**< each address (10 s); PT_TIMEOUT_NONE: only the overall bound */
    double connect_timeout; /**< a whole connect, when pt_connector_connect() is given 0 (60 s) */
    double resolve_valid;   /**< seconds a resolved name is reused (10 s); 0: not cached */
    const struct sockaddr *local; /**< bound before connecting, copied; NULL: the kernel picks */
    socklen_t local_len;          /**< the length of local */
    bool nodelay;                 /**< TCP_NODELAY on TCP transports (true) */
    pt_custodian *custodian; /**< parent of the connector's custodian, borrowed; NULL: a root */
    pt_resolve_fn resolve;   /**< NULL: getaddrinfo() */
    void *resolve_data;      /**< given to resolve */
} pt_connector_options;

/** An open outbound transport. The holder reads and writes `transport` (and may replace a TCP
 * transport by a TLS one over its fd: pt_tls_connect), then gives it back to its pool or closes
 * it. `io` watches the transport's fd for as long as it is open: the holder may use it, setting
 * its callback, data and events (ev_set_cb, ev_io_modify; never ev_io_set: the fd is fixed), and
 * stops it before giving the transport back. One watcher for the transport's whole life, whoever
 * holds it, spares the epoll_ctl calls a watcher per holder would cost. Fields below `io` belong
 * to the connector and the pool. */
struct pt_outbound {
    pt_transport transport; /**< what the holder reads and writes */
    pt_authority authority; /**< where it goes */
    pt_connect_addr peer;   /**< the address it is connected to */
    unsigned requests;      /**< times a pool handed it out (the pool counts) */
    ev_io io;               /**< on the transport's fd (see above) */

    pt_connector *connector;   /**< the connector that opened it */
    pt_custodian_entry *entry; /**< in the connector's custodian; NULL once closed by it */
    bool held;                 /**< a holder has it (between a callback or take and give back) */
    /** the pool's, while idle in it */
    void *pool;
    pt_outbound *prev, *next;
    double idle_deadline;
    void (*detach)(pt_outbound *o); /**< the connector closes it: forget it */
};

/** The completion of pt_connector_connect(): status 0 with an open transport the callback now
 * holds, or a negative errno (then `o` is NULL). */
typedef void (*pt_connect_cb)(pt_outbound *o, int status, void *data);

/** Fills the first `size` bytes of `o` with the defaults above and stores `size` (call
 * pt_connector_options_init(), which passes the size the program was compiled with). */
PT_API void pt_connector_options_init_sized(pt_connector_options *o, size_t size);

/** Fills `o` with the defaults above. */
static inline void pt_connector_options_init(pt_connector_options *o)
{
    pt_connector_options_init_sized(o, sizeof *o);
}

/** Creates a connector on `loop`. Returns 0 or a negative errno: -ECANCELED if the parent
 * custodian is shut down, -EINVAL for options this version cannot read (see
 * pt_connector_options.size) or a bad local address. */
PT_API int pt_connector_new(pt_connector **out, struct ev_loop *loop,
                            const pt_connector_options *o);

/** Shuts the connector's custodian down (cancelling connects in progress: their callbacks run
 * with -ECANCELED; closing every transport), joins the resolver threads and frees it. A
 * transport still held keeps its memory until pt_outbound_close(). NULL: no-op. */
PT_API void pt_connector_free(pt_connector *c);

/** The connector's custodian (for a pool or anything else that should go with it). */
PT_API pt_custodian *pt_connector_custodian(pt_connector *c);

/** The connector's loop. */
PT_API struct ev_loop *pt_connector_loop(const pt_connector *c);

/** Starts connecting to `a` (copied), within `timeout` seconds (0: the connector's
 * connect_timeout). `cb(o, status, data)` runs once, from the loop. If `out` is not NULL it
 * receives a handle for pt_connect_cancel(), valid until the callback runs. Returns 0, or a
 * negative errno (then the callback never runs): -ECANCELED if the connector is shut down. */
PT_API int pt_connector_connect(pt_connector *c, const pt_authority *a, double timeout,
                                pt_connect_cb cb, void *data, pt_connect **out);

/** Abandons a connect in progress: its socket is closed and its callback never runs. */
PT_API void pt_connect_cancel(pt_connect *k);

/** Closes an outbound transport and frees it (also one the connector's shutdown already
 * closed). NULL: no-op. */
PT_API void pt_outbound_close(pt_outbound *o);

/** Watches the transport's fd for `events` (EV_READ, EV_WRITE; 0: not at all) with `io` and the
 * callback the holder set, on `loop` (the connector's). Nothing is done when the watcher already
 * waits for exactly these events; otherwise it is stopped and started again, which before the
 * loop polls costs libev no epoll_ctl (ev_io_set would: it marks the fd as new). */
PT_API void pt_outbound_watch(pt_outbound *o, struct ev_loop *loop, int events);

/** Whether a connect error goes on to the next address (true) or stops the connect (false). */
PT_API bool pt_connect_error_is_transient(int err);

/** Connects in progress and transports open (for tests and the status page), this thread. */
PT_API size_t pt_connector_pending_count(const pt_connector *c);
PT_API size_t pt_connector_open_count(const pt_connector *c);

/** The default resolver: getaddrinfo() for TCP, AF_UNSPEC, in the order it answers. */
PT_API int pt_resolve_getaddrinfo(const char *host, pt_connect_addr *out, size_t max, void *data);

#endif
