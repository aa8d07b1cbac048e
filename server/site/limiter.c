/*
 * limit_req and limit_conn (limiter.h): the zones of a server, the limits of a location, and
 * the two checks. The bucket follows nginx's ngx_http_limit_req_module step by step (lookup,
 * account, expire); the names of its functions are kept where they do the same.
 */
#include "server/site/limiter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connmgr/custodian.h"
#include "connmgr/timer.h"
#include "server/site/guard.h"
#include "server/site/location.h"

/* ---- zones ---- */

/* The pieces of `key`: literal runs and variables (checked by the conf). */
static int compile_key(pt_limit_zone *lz, const char *key)
{
    size_t n = 0;
    for (const char *p = key; *p;) {
        const char *d = p[0] == '$' ? p : strchr(p, '$');
        size_t len = d == p ? pt_var_parse(p).len : d ? (size_t)(d - p) : strlen(p);
        n++;
        p += len;
    }
    lz->pieces = calloc(n ? n : 1, sizeof *lz->pieces);
    if (!lz->pieces)
        return -ENOMEM;
    for (const char *p = key; *p; lz->npieces++) {
        pt_key_piece *k = &lz->pieces[lz->npieces];
        if (*p == '$') {
            k->ref = pt_var_parse(p);
            p += k->ref.len;
            continue;
        }
        const char *d = strchr(p, '$');
        k->ref.id = PT_VAR_TEXT;
        k->text = p;
        k->len = d ? (size_t)(d - p) : strlen(p);
        p += k->len;
    }
    return 0;
}

static bool same_zone(const pt_conf_zone *a, const pt_conf_zone *b)
{
    return a->conn == b->conn && a->size == b->size && strcmp(a->key, b->key) == 0;
}

int pt_limit_zones_new(pt_limit_zones **out, const pt_conf *conf, const pt_limit_zones *previous,
                       char *err, size_t errlen)
{
    *out = NULL;
    if (!conf->nzones)
        return 0;
    pt_limit_zones *zs = calloc(1, sizeof *zs);
    if (zs)
        zs->z = calloc(conf->nzones, sizeof *zs->z);
    if (!zs || !zs->z) {
        free(zs);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = 0;
    for (; zs->n < conf->nzones; zs->n++) {
        const pt_conf_zone *cz = &conf->zones[zs->n];
        pt_limit_zone *lz = &zs->z[zs->n];
        lz->conf = cz;
        if ((r = compile_key(lz, cz->key)) < 0) {
            snprintf(err, errlen, "out of memory");
            break;
        }
        for (size_t i = 0; previous && i < previous->n; i++) {
            const pt_limit_zone *old = &previous->z[i];
            if (strcmp(old->conf->name, cz->name) != 0)
                continue;
            if (same_zone(old->conf, cz))
                lz->zone = pt_zone_ref(old->zone);
            else
                pt_log_error(PT_LOG_NOTICE, "%s:%d: zone \"%s\" changed its %s: it starts empty",
                             cz->file, cz->line, cz->name,
                             old->conf->conn != cz->conn   ? "kind"
                             : old->conf->size != cz->size ? "size"
                                                           : "key");
            break;
        }
        if (!lz->zone && (r = pt_zone_open(&lz->zone, cz->size)) < 0) {
            snprintf(err, errlen, "%s:%d:%d: cannot make zone \"%s\": %s", cz->file, cz->line,
                     cz->col, cz->name, strerror(-r));
            zs->n++; /* its pieces are freed with the rest */
            break;
        }
    }
    if (r < 0) {
        pt_limit_zones_free(zs);
        return r;
    }
    *out = zs;
    return 0;
}

void pt_limit_zones_free(pt_limit_zones *zs)
{
    if (!zs)
        return;
    for (size_t i = 0; i < zs->n; i++) {
        pt_zone_close(zs->z[i].zone);
        free(zs->z[i].pieces);
    }
    free(zs->z);
    free(zs);
}

/* ---- a location's limits ---- */

int pt_location_limits_new(pt_location_limits **out, const pt_conf_limit *l, pt_limit_zones *zones)
{
    *out = NULL;
    if (!l->nreq && !l->nconn)
        return 0;
    if (!zones)
        return -EINVAL;
    pt_location_limits *ll = calloc(1, sizeof *ll);
    if (!ll)
        return -ENOMEM;
    ll->req = calloc(l->nreq ? l->nreq : 1, sizeof *ll->req);
    ll->conn = calloc(l->nconn ? l->nconn : 1, sizeof *ll->conn);
    if (!ll->req || !ll->conn) {
        pt_location_limits_free(ll);
        return -ENOMEM;
    }
    for (size_t i = 0; i < l->nreq; i++)
        ll->req[i] = (pt_req_limit){&zones->z[l->req[i].zone], l->req[i].burst, l->req[i].delay};
    ll->nreq = l->nreq;
    ll->req_status = l->req_status;
    ll->req_level = l->req_log_level;
    ll->delay_level = l->req_log_level == PT_LOG_INFO ? PT_LOG_INFO : l->req_log_level - 1;
    ll->req_dry_run = l->req_dry_run;
    for (size_t i = 0; i < l->nconn; i++)
        ll->conn[i] = (pt_conn_limit){&zones->z[l->conn[i].zone], l->conn[i].conn};
    ll->nconn = l->nconn;
    ll->conn_status = l->conn_status;
    ll->conn_level = l->conn_log_level;
    ll->conn_dry_run = l->conn_dry_run;
    *out = ll;
    return 0;
}

void pt_location_limits_free(pt_location_limits *l)
{
    if (!l)
        return;
    free(l->req);
    free(l->conn);
    free(l);
}

/* ---- keys ---- */

/* The longest key taken (the request's arena's largest block); a longer one is not counted and
 * is logged, as nginx does past 65535 bytes. */
#define KEY_MAX PT_REQUEST_ALLOC_MAX

/* The key of `req` in `lz`: 0 with *out made, 1 for an empty key (not counted). */
static int make_key(pt_request *req, const pt_limit_zone *lz, pt_zone_key *out)
{
    char tmp[256];
    if (lz->npieces == 1) {
        const pt_key_piece *k = &lz->pieces[0];
        pt_str v = k->ref.id == PT_VAR_TEXT ? (pt_str){k->text, k->len}
                                            : pt_var_value(req, &k->ref, tmp, sizeof tmp);
        if (!v.len)
            return 1;
        pt_zone_key_make(lz->zone, v.p, v.len, out);
        return 0;
    }
    char small[512], *buf = small;
    size_t len = 0, cap = sizeof small;
    for (size_t i = 0; i < lz->npieces; i++) {
        const pt_key_piece *k = &lz->pieces[i];
        pt_str v = k->ref.id == PT_VAR_TEXT ? (pt_str){k->text, k->len}
                                            : pt_var_value(req, &k->ref, tmp, sizeof tmp);
        if (len + v.len > cap) {
            size_t want = len + v.len > 2 * cap ? len + v.len : 2 * cap;
            char *more = want <= KEY_MAX ? pt_request_alloc(req, want) : NULL;
            if (!more) {
                pt_request_log(req, PT_LOG_ERROR,
                               "the value of the \"%s\" key is longer than %d bytes: not counted",
                               lz->conf->key, KEY_MAX);
                return 1;
            }
            memcpy(more, buf, len);
            buf = more;
            cap = want;
        }
        memcpy(buf + len, v.p, v.len);
        len += v.len;
    }
    if (!len)
        return 1;
    pt_zone_key_make(lz->zone, buf, len, out);
    return 0;
}

/* ---- limit_req ---- */

/* nginx's results of a lookup. */
enum { DECLINED, OK, AGAIN, BUSY, ERROR };

/* Milliseconds from `last` to `now`; a clock that went back counts as none (more than a minute
 * back: one). */
static int64_t elapsed(int64_t now, int64_t last)
{
    int64_t ms = now - last;
    if (ms < -60000)
        return 1;
    return ms < 0 ? 0 : ms;
}

/* excess - rate * ms / 1000 + 1000, at least 0; a long pause drains it whole without overflow. */
static int64_t leak(int64_t excess, int64_t ms, uint64_t rate)
{
    if ((uint64_t)ms / 1000 > ((uint64_t)excess + 1000) / rate + 1)
        return 0;
    int64_t e = excess - (int64_t)(rate * (uint64_t)ms / 1000) + 1000;
    return e < 0 ? 0 : e;
}

int64_t pt_limit_req_excess(int64_t excess, int64_t last, int64_t now, uint64_t rate)
{
    return leak(excess, elapsed(now, last), rate);
}

/* Frees entries at the old end of the zone's list: with `n` 0 the oldest whatever its state
 * (it is evicted), then (or with `n` 1) up to two that have been idle a minute with nothing
 * left in their bucket. An entry being counted stops it: entries are moved up when they are
 * looked up, so those behind it are newer. */
static void expire(pt_limit_zone *lz, int64_t now, int n)
{
    while (n < 3) {
        pt_zone_entry *e = pt_zone_oldest(lz->zone);
        if (!e || e->count)
            return;
        if (n++ != 0) {
            int64_t ms = now - e->last;
            ms = ms < 0 ? -ms : ms;
            if (ms < 60000)
                return;
            if ((uint64_t)ms / 1000 <= (uint64_t)e->excess / lz->conf->rate &&
                e->excess - (int64_t)(lz->conf->rate * (uint64_t)ms / 1000) > 0)
                return;
        } else {
            pt_zone_counters_of(lz->zone)->evicted++;
        }
        pt_zone_remove(lz->zone, e);
    }
}

/* nginx's lookup, with the zone locked: OK (counted: the last limit), AGAIN (the entry is held
 * for the account step), BUSY (above the burst: *ep says how far), ERROR (no room). */
static int lookup(pt_req_limit *limit, const pt_zone_key *key, int64_t now, bool account,
                  uint64_t *ep)
{
    pt_limit_zone *lz = limit->zone;
    pt_zone_counters_of(lz->zone)->requests++;
    pt_zone_entry *e = pt_zone_find(lz->zone, key);
    if (e) {
        int64_t ms = elapsed(now, e->last), excess = leak(e->excess, ms, lz->conf->rate);
        *ep = (uint64_t)excess;
        if ((uint64_t)excess > limit->burst)
            return BUSY;
        if (account) {
            e->excess = excess;
            if (ms)
                e->last = now;
            return OK;
        }
        e->count++;
        limit->node = e;
        return AGAIN;
    }
    *ep = 0;
    expire(lz, now, 1);
    if (!(e = pt_zone_insert(lz->zone, key))) {
        expire(lz, now, 0);
        if (!(e = pt_zone_insert(lz->zone, key))) {
            pt_zone_counters_of(lz->zone)->full++;
            return ERROR;
        }
    }
    if (account) {
        e->last = now;
        return OK;
    }
    e->count = 1;
    limit->node = e;
    return AGAIN;
}

/* nginx's account: the zones before the last that held their entries count the request now;
 * returns the longest delay (ms) any asks for, with its excess and limit. */
static uint64_t account(pt_req_limit *limits, size_t n, uint64_t *ep, pt_req_limit **limit,
                        int64_t now)
{
    uint64_t excess = *ep, max_delay = 0;
    if (excess > (*limit)->delay)
        max_delay = (excess - (*limit)->delay) * 1000 / (*limit)->zone->conf->rate;
    while (n--) {
        pt_req_limit *l = &limits[n];
        pt_zone_entry *e = l->node;
        if (!e)
            continue;
        pt_zone *z = l->zone->zone;
        pt_zone_lock(z);
        int64_t ms = elapsed(now, e->last), x = leak(e->excess, ms, l->zone->conf->rate);
        if (ms)
            e->last = now;
        e->excess = x;
        e->count--;
        pt_zone_unlock(z);
        l->node = NULL;
        if ((uint64_t)x <= l->delay)
            continue;
        uint64_t delay = ((uint64_t)x - l->delay) * 1000 / l->zone->conf->rate;
        if (delay > max_delay) {
            max_delay = delay;
            *ep = (uint64_t)x;
            *limit = l;
        }
    }
    return max_delay;
}

/* A refused request counts in none of the zones: the entries held are let go as they were. */
static void unlock_nodes(pt_req_limit *limits, size_t n)
{
    while (n--) {
        pt_zone_entry *e = limits[n].node;
        if (!e)
            continue;
        pt_zone *z = limits[n].zone->zone;
        pt_zone_lock(z);
        e->count--;
        pt_zone_unlock(z);
        limits[n].node = NULL;
    }
}

/* A request held to the rate: a timer of its custodian lets it go. */
typedef struct delay_hold {
    pt_timer timer;
    pt_request *req;
    pt_custodian_entry *entry;
} delay_hold;

static void on_delay_over(pt_timer *t, void *data)
{
    delay_hold *h = data;
    pt_custodian_unregister(h->entry);
    pt_timer_dispose(&h->timer);
    pt_guard_resume(h->req, PT_GUARD_PASS);
}

/* The request ended first (its client went away): the timer goes, nothing resumes. */
static void delay_release(void *data)
{
    delay_hold *h = data;
    pt_timer_dispose(&h->timer);
}

static int hold(pt_request *req, uint64_t ms)
{
    pt_custodian *c = pt_request_custodian(req);
    delay_hold *h = c ? pt_custodian_alloc(c, sizeof *h) : NULL;
    if (!h || !(h->entry = pt_custodian_register(c, delay_release, h)))
        return 500;
    h->req = req;
    pt_timer_init(&h->timer, req->loop, on_delay_over, h);
    pt_timer_start(&h->timer, (double)ms / 1000);
    /* The handler's time to answer starts when the delay ends. */
    if (req->limits)
        pt_request_reset_timeout(req, (double)ms / 1000 + req->limits->response_timeout);
    return PT_GUARD_WAIT;
}

static int64_t now_ms(const pt_request *req)
{
    return (int64_t)(ev_now(req->loop) * 1000);
}

int pt_limit_req_check(pt_request *req)
{
    pt_location_limits *ll = req->location->limits;
    if (!ll || !ll->nreq || req->limit_req_status)
        return PT_GUARD_PASS;
    int64_t now = now_ms(req);
    uint64_t excess = 0;
    int rc = DECLINED;
    size_t n;
    pt_req_limit *limit = NULL;
    for (n = 0; n < ll->nreq; n++) {
        limit = &ll->req[n];
        pt_zone_key key;
        if (make_key(req, limit->zone, &key))
            continue;
        pt_zone_lock(limit->zone->zone);
        rc = lookup(limit, &key, now, n == ll->nreq - 1, &excess);
        pt_zone_unlock(limit->zone->zone);
        if (rc != AGAIN)
            break;
    }
    if (rc == DECLINED)
        return PT_GUARD_PASS;
    const char *dry = ll->req_dry_run ? ", dry run" : "";
    pt_zone_counters *counters = pt_zone_counters_of(limit->zone->zone);
    if (rc == BUSY || rc == ERROR) {
        if (rc == BUSY) {
            pt_request_log(req, ll->req_level,
                           "limiting requests%s, excess: %llu.%03llu by zone \"%s\"", dry,
                           (unsigned long long)(excess / 1000), (unsigned long long)(excess % 1000),
                           limit->zone->conf->name);
            pt_zone_count(ll->req_dry_run ? &counters->rejected_dry_run : &counters->rejected);
        } else {
            pt_request_log(req, PT_LOG_ERROR, "limit_req zone \"%s\" is full%s",
                           limit->zone->conf->name, dry);
        }
        unlock_nodes(ll->req, n);
        if (ll->req_dry_run) {
            req->limit_req_status = PT_LIMIT_REJECTED_DRY_RUN;
            return PT_GUARD_PASS;
        }
        req->limit_req_status = PT_LIMIT_REJECTED;
        return ll->req_status;
    }
    if (rc == AGAIN)
        excess = 0;
    uint64_t delay = account(ll->req, n, &excess, &limit, now);
    if (!delay) {
        req->limit_req_status = PT_LIMIT_PASSED;
        return PT_GUARD_PASS;
    }
    pt_request_log(req, ll->delay_level, "delaying request%s, excess: %llu.%03llu, by zone \"%s\"",
                   dry, (unsigned long long)(excess / 1000), (unsigned long long)(excess % 1000),
                   limit->zone->conf->name);
    counters = pt_zone_counters_of(limit->zone->zone);
    pt_zone_count(ll->req_dry_run ? &counters->delayed_dry_run : &counters->delayed);
    if (ll->req_dry_run) {
        req->limit_req_status = PT_LIMIT_DELAYED_DRY_RUN;
        return PT_GUARD_PASS;
    }
    req->limit_req_status = PT_LIMIT_DELAYED;
    return hold(req, delay);
}

/* ---- limit_conn ---- */

/* One request counted in a limit_conn zone, registered on its sent custodian. */
typedef struct conn_hold {
    pt_limit_zone *zone;
    pt_zone_entry *entry;
    pt_custodian_entry *release;
    struct conn_hold *next; /* those of the same check */
} conn_hold;

static void conn_release(void *data)
{
    conn_hold *h = data;
    pt_zone *z = h->zone->zone;
    pt_zone_lock(z);
    if (h->entry->count) {
        pt_zone_counters_of(z)->active--;
        if (--h->entry->count == 0)
            pt_zone_remove(z, h->entry);
    }
    pt_zone_unlock(z);
}

/* A refusal: the counts this check took are given back (nginx's cleanup_all). */
static int conn_refuse(pt_request *req, const pt_location_limits *ll, conn_hold *held)
{
    for (conn_hold *h = held, *next; h; h = next) {
        next = h->next;
        pt_custodian_release(h->release);
    }
    if (ll->conn_dry_run) {
        req->limit_conn_status = PT_LIMIT_REJECTED_DRY_RUN;
        return PT_GUARD_PASS;
    }
    req->limit_conn_status = PT_LIMIT_REJECTED;
    return ll->conn_status;
}

int pt_limit_conn_check(pt_request *req)
{
    pt_location_limits *ll = req->location->limits;
    if (!ll || !ll->nconn || req->limit_conn_status)
        return PT_GUARD_PASS;
    conn_hold *held = NULL;
    for (size_t i = 0; i < ll->nconn; i++) {
        pt_conn_limit *limit = &ll->conn[i];
        pt_limit_zone *lz = limit->zone;
        pt_zone_key key;
        if (make_key(req, lz, &key))
            continue;
        req->limit_conn_status = PT_LIMIT_PASSED;
        /* Registered before the count is taken, so nothing can take it without giving it back. */
        pt_custodian *c = pt_request_sent_custodian(req);
        conn_hold *h = c ? pt_custodian_alloc(c, sizeof *h) : NULL;
        if (!h || !(h->release = pt_custodian_register(c, conn_release, h))) {
            conn_refuse(req, ll, held);
            return 500;
        }
        pt_zone_counters *counters = pt_zone_counters_of(lz->zone);
        pt_zone_lock(lz->zone);
        counters->requests++;
        pt_zone_entry *e = pt_zone_find(lz->zone, &key);
        if (!e && (e = pt_zone_insert(lz->zone, &key)))
            e->count = 0;
        bool full = !e, over = e && e->count >= limit->conn;
        if (full) {
            counters->full++;
        } else if (!over) {
            e->count++;
            counters->active++;
        }
        pt_zone_unlock(lz->zone);
        if (full || over) {
            pt_custodian_unregister(h->release);
            const char *dry = ll->conn_dry_run ? ", dry run," : "";
            if (full) {
                pt_request_log(req, PT_LOG_ERROR, "limit_conn zone \"%s\" is full%s",
                               lz->conf->name, dry);
            } else {
                pt_request_log(req, ll->conn_level, "limiting connections%s by zone \"%s\"", dry,
                               lz->conf->name);
                pt_zone_count(ll->conn_dry_run ? &counters->rejected_dry_run : &counters->rejected);
            }
            return conn_refuse(req, ll, held);
        }
        h->zone = lz;
        h->entry = e;
        h->next = held;
        held = h;
    }
    return PT_GUARD_PASS;
}
