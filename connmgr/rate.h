/**
 * @file
 * Send rate: how fast one response may go (nginx's limit_rate and limit_rate_after), as
 * arithmetic apart from any connection, so that the out-queue of an HTTP/1 connection and the
 * DATA frames of an HTTP/2 stream are held to the same numbers.
 *
 * nginx's rule (ngx_http_write_filter_module.c), with `sent` the bytes of the response gone so
 * far and S the whole seconds of the clock since the second the request began:
 *
 *   - a write may carry at most   rate * (S + 1) - (sent - after)   bytes; when that is not
 *     positive, writing waits  -limit * 1000 / rate + 1  milliseconds;
 *   - after a write that took the bytes past `after` from b to s, writing waits
 *     (s - b) * 1000 / rate  milliseconds (the bytes below `after` cost no time).
 *
 * So the first `after` bytes go at once and the rest at `rate`. porter adds two things of its
 * own. As nginx's sendfile_max_chunk does, a write carries at most a sixteenth of a second of
 * the rate (and at least PT_RATE_SLICE_MIN bytes) past `after`, so the rate holds from the
 * first write on, however much the socket would take at once. And the wait after a write runs
 * from when the write was due, when it went late by at most a quarter of a second (the loop
 * woke up late, the socket took a moment): a response written in many slices keeps its rate
 * on a busy machine instead of losing each wake-up's lateness (nginx's allowance would let it
 * catch up more).
 *
 * Threading: none (plain values). Errors: none.
 */
#ifndef PORTER_CONNMGR_RATE_H
#define PORTER_CONNMGR_RATE_H

#include <stdint.h>

#include "porter/export.h"

/** The least a write past `after` may carry, whatever the rate. */
#define PT_RATE_SLICE_MIN 1024

/** A response's send rate and where it stands. */
typedef struct pt_rate {
    uint64_t rate;  /**< bytes per second; 0: no limit */
    uint64_t after; /**< bytes that go at full speed first */
    int64_t start;  /**< the second (of ev_now's clock) the request began: nginx's start_sec */
    double resume;  /**< no write before this (ev_now's clock): the wait after the last write */
} pt_rate;

/** Sets `r` to `rate` bytes per second after `after` bytes, for a request that began at
 * `start` (ev_now's clock). */
PT_API void pt_rate_init(pt_rate *r, uint64_t rate, uint64_t after, double start);

/** The bytes a write may carry at `now`, `sent` bytes of the response having gone: more than
 * 0, or 0 with *wait set to the seconds until a write may go (positive). A rate of 0 allows
 * everything (UINT64_MAX). */
PT_API uint64_t pt_rate_quota(const pt_rate *r, uint64_t sent, double now, double *wait);

/** Records a write that took the response from `before` to `sent` bytes at `now`: the next
 * one waits as long as those bytes take at the rate. */
PT_API void pt_rate_wrote(pt_rate *r, uint64_t before, uint64_t sent, double now);

#endif
