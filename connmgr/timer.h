/**
 * @file
 * Timer: one deadline on a libev loop, cheap to move (Racket's timer manager: start, reset,
 * increment, cancel).
 *
 * Moving the deadline later never touches libev: the watcher fires at the old deadline, sees
 * the new one and re-arms for the remainder (ev.pod, "Be smart about timeouts"). Moving it
 * earlier re-arms at once. A callback runs once per expiry and may start, reset or cancel its
 * own timer, or free the object that embeds it.
 *
 * Ownership: the caller owns the pt_timer storage (pt_timer_init/pt_timer_dispose). While
 * started it holds one active ev_timer on its loop. Threading: the loop's thread only.
 */
#ifndef PORTER_CONNMGR_TIMER_H
#define PORTER_CONNMGR_TIMER_H

#include <ev.h>
#include <stdbool.h>

#include "porter/export.h"

typedef struct pt_timer pt_timer;
/** Called once each time the timer's deadline passes. */
typedef void (*pt_timer_cb)(pt_timer *t, void *data);

/** A timer; its storage is the caller's (pt_timer_init, pt_timer_dispose). */
struct pt_timer {
    ev_timer watcher;     /**< the libev timer behind it */
    struct ev_loop *loop; /**< its loop */
    ev_tstamp deadline;   /**< absolute, on ev_now()'s clock; meaningful while armed */
    ev_tstamp wake;       /**< when the watcher fires, on the same clock; while it is active */
    pt_timer_cb cb;       /**< called at the deadline */
    void *data;           /**< given to cb */
    bool armed;           /**< a deadline is set */
};

/** Prepares `t` on `loop`; it is not started. */
PT_API void pt_timer_init(pt_timer *t, struct ev_loop *loop, pt_timer_cb cb, void *data);

/** Sets the deadline to now + `after` seconds (starting the timer if needed). A non-finite or
 * non-positive `after` cancels (no timeout). Same as pt_timer_reset. */
PT_API void pt_timer_start(pt_timer *t, double after);

/** Racket's reset-timer: the deadline becomes now + `after`. */
PT_API void pt_timer_reset(pt_timer *t, double after);

/** Racket's increment-timer: the deadline moves `by` seconds later (from the current deadline;
 * from now if the timer is not armed). */
PT_API void pt_timer_increment(pt_timer *t, double by);

/** Stops the timer; the callback will not run. Idempotent. */
PT_API void pt_timer_cancel(pt_timer *t);

/** Returns true if a deadline is set. */
PT_API bool pt_timer_is_armed(const pt_timer *t);

/** Seconds until the deadline (negative if past), or INFINITY if not armed. */
PT_API double pt_timer_remaining(const pt_timer *t);

/** Timers of this thread with a deadline set (for tests and the status page). */
PT_API size_t pt_timer_armed_count(void);

/** Cancels and forgets the loop. Idempotent. */
PT_API void pt_timer_dispose(pt_timer *t);

#endif
