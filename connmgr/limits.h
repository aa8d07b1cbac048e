/**
 * @file
 * Safety limits: the bounds a connection manager enforces on every connection.
 *
 * A plain value type (copy it freely), filled by pt_limits_init() (Racket's
 * `make-safety-limits`, plus keep-alive bounds) or pt_limits_init_unlimited() (Racket's
 * `make-unlimited-safety-limits`), then changed field by field. It is a sized struct (see
 * "Versions and ABI" in docs/embedding.md): a later version may add limits at its end, which a
 * program built before them gets at their defaults. Timeouts are in seconds; PT_TIMEOUT_NONE
 * (infinity) disables one. Counts and sizes use PT_LIMIT_NONE (the type's maximum) for "no
 * limit".
 */
#ifndef PORTER_CONNMGR_LIMITS_H
#define PORTER_CONNMGR_LIMITS_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "porter/export.h"

/** A timeout that never expires. */
#define PT_TIMEOUT_NONE INFINITY
/** A count or size without a bound. */
#define PT_LIMIT_NONE SIZE_MAX

/** The safety limits a connection manager enforces. */
typedef struct pt_limits {
    size_t size;                      /**< the struct's size, set by pt_limits_init() */
    size_t max_waiting;               /**< listen backlog: 511 */
    size_t max_concurrent;            /**< open connections at once: 10000 */
    double request_read_timeout;      /**< whole request head, from its first byte: 60 s */
    size_t max_request_line_length;   /**< method + target + version: 8 KiB */
    size_t max_request_headers;       /**< header fields per request: 100 */
    size_t max_request_header_length; /**< all header fields together: 8 KiB */
    size_t max_request_body_length;   /**< 1 MiB */
    double response_timeout;          /**< handler's time to the first response byte: 60 s */
    double response_send_timeout;     /**< each stall while writing: 60 s */
    double shutdown_grace_period;     /**< in-flight work on stop: 10 s */
    double keepalive_timeout;         /**< idle between requests: 75 s */
    size_t keepalive_requests;        /**< requests per connection: 1000 */
    double request_body_timeout;      /**< each wait for request-body bytes: 60 s */
    double lingering_timeout;         /**< discarding input while closing after an error: 5 s */
    size_t max_concurrent_per_client; /**< open connections from one client address: no limit */
} pt_limits;

/** Fills the first `size` bytes of `l` with the default limits and stores `size` (call
 * pt_limits_init(), which passes the size the program was compiled with). */
PT_API void pt_limits_init_sized(pt_limits *l, size_t size);

/** Fills `l` with the default limits (Racket's values where it has one). */
static inline void pt_limits_init(pt_limits *l)
{
    pt_limits_init_sized(l, sizeof *l);
}

/** Like pt_limits_init_sized(), with limits that bound nothing (call
 * pt_limits_init_unlimited()). */
PT_API void pt_limits_init_unlimited_sized(pt_limits *l, size_t size);

/** Fills `l` with limits that bound nothing: every count maximal, every timeout infinite (but
 * the lingering close's 5 s). */
static inline void pt_limits_init_unlimited(pt_limits *l)
{
    pt_limits_init_unlimited_sized(l, sizeof *l);
}

/** Returns true if the timeout value `t` means "no timeout" (infinite, zero or negative). */
static inline bool pt_timeout_is_none(double t)
{
    return isinf(t) || t <= 0;
}

#endif
