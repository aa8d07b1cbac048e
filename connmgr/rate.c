#include "connmgr/rate.h"

#include <math.h>

/* The sums below may pass 64 bits (a rate near SIZE_MAX times the seconds): they are done in
 * 128, as nginx does them in off_t without the overflow. */
typedef __int128 wide;

/* A deadline computed from ev_now() and read against it again may fall short by a rounding:
 * that close counts as reached. */
#define RESUME_SLACK 1e-6

/* The pause after a write runs from when the write was due, if that was at most this long
 * before it went (a wake-up the loop made late; a socket that took a moment), else from the
 * write itself. */
#define CATCH_UP 0.25

void pt_rate_init(pt_rate *r, uint64_t rate, uint64_t after, double start)
{
    *r = (pt_rate){.rate = rate, .after = after, .start = (int64_t)floor(start)};
}

uint64_t pt_rate_quota(const pt_rate *r, uint64_t sent, double now, double *wait)
{
    if (!r->rate)
        return UINT64_MAX;
    if (now + RESUME_SLACK < r->resume) {
        *wait = r->resume - now;
        return 0;
    }
    int64_t secs = (int64_t)floor(now) - r->start;
    if (secs < 0)
        secs = 0; /* the clock stepped back */
    wide limit = (wide)r->rate * (secs + 1) - ((wide)sent - (wide)r->after);
    if (limit <= 0) {
        *wait = (double)(-limit * 1000 / r->rate + 1) / 1000;
        return 0;
    }
    uint64_t slice = r->rate / 16 > PT_RATE_SLICE_MIN ? r->rate / 16 : PT_RATE_SLICE_MIN;
    wide cap = (wide)(sent < r->after ? r->after - sent : 0) + slice;
    if (limit > cap)
        limit = cap;
    return limit > (wide)UINT64_MAX ? UINT64_MAX : (uint64_t)limit;
}

void pt_rate_wrote(pt_rate *r, uint64_t before, uint64_t sent, double now)
{
    uint64_t b = before > r->after ? before - r->after : 0;
    uint64_t s = sent > r->after ? sent - r->after : 0;
    if (!r->rate || s <= b)
        return;
    /* nginx's whole milliseconds: a pause under one is none */
    wide ms = (wide)(s - b) * 1000 / r->rate;
    if (ms <= 0)
        return;
    double from = r->resume >= now - CATCH_UP && r->resume < now ? r->resume : now;
    r->resume = from + (double)ms / 1000;
}
