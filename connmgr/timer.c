#include "connmgr/timer.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>

/*
 * The ev_timer is armed for some moment at or before `deadline`. Moving the deadline later only
 * writes `deadline`; when the watcher fires early it re-arms for the remainder (ev.pod, "Be
 * smart about timeouts", method 3). libev is touched only to move the wake-up earlier, and
 * the wake-up time is kept here, so that moving a deadline later asks libev nothing.
 */

/* Armed timers of this thread, for the status page and tests. */
static _Thread_local size_t armed_count;

size_t pt_timer_armed_count(void)
{
    return armed_count;
}

static void on_expire(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_timer *t = (pt_timer *)((char *)w - offsetof(pt_timer, watcher));
    ev_tstamp now = ev_now(loop);

    (void)revents;
    if (!t->armed)
        return;
    if (t->deadline > now) {
        t->wake = t->deadline;
        ev_timer_set(w, t->deadline - now, 0.);
        ev_timer_start(loop, w);
        return;
    }
    t->armed = false;
    armed_count--;
    /* The callback may free the memory holding `t`: nothing touches it afterwards. */
    t->cb(t, t->data);
}

void pt_timer_init(pt_timer *t, struct ev_loop *loop, pt_timer_cb cb, void *data)
{
    ev_timer_init(&t->watcher, on_expire, 0., 0.);
    t->loop = loop;
    t->deadline = t->wake = 0.;
    t->cb = cb;
    t->data = data;
    t->armed = false;
}

static void set_deadline(pt_timer *t, ev_tstamp now, ev_tstamp deadline)
{
    t->deadline = deadline;
    if (!t->armed)
        armed_count++;
    t->armed = true;
    if (ev_is_active(&t->watcher)) {
        /* The watcher wakes up no later than the new deadline: it will re-check then. */
        if (deadline >= t->wake)
            return;
        ev_timer_stop(t->loop, &t->watcher);
    } else if (ev_is_pending(&t->watcher)) {
        /* Expired and queued for this iteration: on_expire reads the new deadline. */
        return;
    }
    t->wake = deadline > now ? deadline : now;
    ev_timer_set(&t->watcher, t->wake - now, 0.);
    ev_timer_start(t->loop, &t->watcher);
}

void pt_timer_start(pt_timer *t, double after)
{
    assert(t->loop != NULL);
    if (!isfinite(after) || after <= 0) {
        pt_timer_cancel(t);
        return;
    }
    ev_tstamp now = ev_now(t->loop);
    set_deadline(t, now, now + after);
}

void pt_timer_reset(pt_timer *t, double after)
{
    pt_timer_start(t, after);
}

void pt_timer_increment(pt_timer *t, double by)
{
    assert(t->loop != NULL);
    if (!t->armed) {
        pt_timer_start(t, by);
        return;
    }
    /* A deadline moved by an infinite (or NaN) amount is no deadline: same as start. */
    if (!isfinite(by)) {
        pt_timer_cancel(t);
        return;
    }
    set_deadline(t, ev_now(t->loop), t->deadline + by);
}

void pt_timer_cancel(pt_timer *t)
{
    if (t->armed)
        armed_count--;
    t->armed = false;
    /* Also drops a pending expiry, so the callback cannot run later in this iteration. */
    if (t->loop != NULL)
        ev_timer_stop(t->loop, &t->watcher);
}

bool pt_timer_is_armed(const pt_timer *t)
{
    return t->armed;
}

double pt_timer_remaining(const pt_timer *t)
{
    if (!t->armed)
        return INFINITY;
    return t->deadline - ev_now(t->loop);
}

void pt_timer_dispose(pt_timer *t)
{
    pt_timer_cancel(t);
    t->loop = NULL;
}
