/**
 * @file
 * Transport pool: idle outbound transports to one authority, kept for reuse (net2's transport
 * pool; nginx's upstream keepalive).
 *
 * A holder takes any idle transport (pt_pool_take) or asks for a fresh, never used one
 * (pt_pool_connect, through the pool's connector), uses it for one exchange, then gives it back
 * (pt_pool_give_back) or closes it (pt_outbound_close) when it cannot be reused. The pool keeps
 * at most max_idle transports, closing the longest idle to make room; each is closed after
 * idle_timeout (set it shorter than the peer's own keep-alive timeout, so the pool, not the
 * peer, closes first) or once it has served max_requests exchanges. The most recently given
 * back is taken first, so the others age out when load drops.
 *
 * An idle transport is watched for input: a peer that closes it (or sends bytes nobody asked
 * for) makes it dead, and a dead transport is closed and forgotten at once, never handed out.
 * A peer may still close one just as it is taken (the close is in flight): a holder that sees
 * its first exchange fail on a reused transport retries on a fresh one where that is safe.
 * Idle transports are a cache: they never keep the loop running (their watchers and the
 * pool's timer are unreferenced), so a program whose work is done ends its loop at once.
 *
 * Ownership: the pool owns a custodian (a child of options.custodian, else of the connector's)
 * whose shutdown closes every idle transport; the transports themselves belong to the
 * connector's custodian (connector.h). pt_pool_free() must be called to free the pool's
 * memory. Threading: the loop's thread only. Errors: negative errno.
 */
#ifndef PORTER_CONNMGR_POOL_H
#define PORTER_CONNMGR_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "porter/export.h"
#include "connmgr/authority.h"
#include "connmgr/connector.h"
#include "connmgr/timer.h"

typedef struct pt_pool pt_pool;

/** Options of pt_pool_new(); pt_pool_options_init() fills the defaults. A sized struct
 * ("Versions and ABI" in docs/embedding.md): new options are added at its end. */
typedef struct pt_pool_options {
    size_t size;             /**< the struct's size, set by pt_pool_options_init() */
    size_t max_idle;         /**< idle transports kept (32); 0: none is kept */
    double idle_timeout;     /**< seconds an idle transport is kept (4 s); PT_TIMEOUT_NONE: ever */
    size_t max_requests;     /**< exchanges per transport (1000); PT_LIMIT_NONE: no bound */
    pt_custodian *custodian; /**< parent of the pool's custodian; NULL: the connector's */
} pt_pool_options;

/** Fills the first `size` bytes of `o` with the defaults above and stores `size` (call
 * pt_pool_options_init(), which passes the size the program was compiled with). */
PT_API void pt_pool_options_init_sized(pt_pool_options *o, size_t size);

/** Fills `o` with the defaults above. */
static inline void pt_pool_options_init(pt_pool_options *o)
{
    pt_pool_options_init_sized(o, sizeof *o);
}

/** Creates a pool of transports to `a` (copied) opened by `c` (borrowed; it must outlive the
 * pool). Returns 0 or a negative errno: -EINVAL for options this version cannot read (see
 * pt_pool_options.size). */
PT_API int pt_pool_new(pt_pool **out, pt_connector *c, const pt_authority *a,
                       const pt_pool_options *o);

/** Closes every idle transport and frees the pool. Transports held elsewhere are unaffected
 * (giving one back later closes it). NULL: no-op. */
PT_API void pt_pool_free(pt_pool *p);

/** Returns the most recently given back idle transport, now held by the caller, or NULL if
 * none is idle. */
PT_API pt_outbound *pt_pool_take(pt_pool *p);

/** Opens a fresh transport to the pool's authority (pt_connector_connect with `timeout`). */
PT_API int pt_pool_connect(pt_pool *p, double timeout, pt_connect_cb cb, void *data,
                           pt_connect **out);

/** Gives back a transport of this pool after an exchange that left it reusable: it is kept
 * idle, or closed if it served max_requests exchanges, if the pool keeps none, or if the pool
 * is shut down. Counts the exchange. */
PT_API void pt_pool_give_back(pt_pool *p, pt_outbound *o);

/** Closes the idle transports whose peer address `keep` refuses (`keep(&o->peer, data)` returns
 * false): a name that no longer resolves to that address. Returns how many were closed. */
PT_API size_t pt_pool_drop_idle(pt_pool *p, bool (*keep)(const pt_connect_addr *peer, void *data),
                                void *data);

/** The pool's authority. */
PT_API const pt_authority *pt_pool_authority(const pt_pool *p);

/** Idle transports now (for tests and the status page). */
PT_API size_t pt_pool_idle_count(const pt_pool *p);

#endif
