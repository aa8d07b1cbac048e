/**
 * @file
 * Safety limits: the bounds a connection manager enforces on every connection.
 *
 * A plain value type (copy it freely). The defaults are Racket's `make-safety-limits`, plus
 * keep-alive bounds. Timeouts are in seconds; PT_TIMEOUT_NONE (infinity) disables one.
 * Counts and sizes use PT_LIMIT_NONE (the type's maximum) for "no limit".
 */
#ifndef PORTER_CONNMGR_LIMITS_H
#define PORTER_CONNMGR_LIMITS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "porter/export.h"

/** A timeout that never expires. */
#define PT_TIMEOUT_NONE INFINITY
/** A count or size without a bound. */
#define PT_LIMIT_NONE SIZE_MAX

/** The safety limits a connection manager enforces. */
typedef struct pt_limits {
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

/** Returns the default limits (Racket's values where it has one). */
PT_API pt_limits pt_limits_default(void);

/** Returns limits that bound nothing: every count maximal, every timeout infinite. */
PT_API pt_limits pt_limits_unlimited(void);

/** Returns 1 if the timeout value `t` means "no timeout". */
static inline int pt_timeout_is_none(double t)
{
    return isinf(t) || t <= 0;
}

#endif
