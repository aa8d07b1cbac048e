/*
 * limit_req and limit_conn (server/site/limiter.c) over real zones, with requests of a fake
 * protocol: nginx's leaky bucket against sequences computed by hand from its formula
 * (excess - rate * ms / 1000 + 1000, in milli-requests), the burst and the delays it asks for,
 * several zones (a refused request counts in none), dry runs, a request counted once, idle
 * entries expired before the oldest is evicted and a refusal when nothing can be, limit_conn's
 * counts given back exactly once, and zones taken over by the server a reload makes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "connmgr/buffer.h"
#include "server/conf/conf.h"
#include "server/site/limiter.c"
#include "tests/support.h"

/* ---- the bucket by hand ---- */

static void test_excess_by_hand(void **state)
{
    (void)state;
    /* 2r/s is 2000 milli-requests a second: 2 leak each millisecond */
    assert_int_equal(pt_limit_req_excess(0, 0, 100, 2000), 800);        /* 0 - 200 + 1000 */
    assert_int_equal(pt_limit_req_excess(800, 100, 200, 2000), 1600);   /* 800 - 200 + 1000 */
    assert_int_equal(pt_limit_req_excess(1600, 200, 300, 2000), 2400);  /* 1600 - 200 + 1000 */
    assert_int_equal(pt_limit_req_excess(2400, 300, 1300, 2000), 1400); /* 2400 - 2000 + 1000 */
    assert_int_equal(pt_limit_req_excess(1400, 1300, 5000, 2000), 0);   /* 1400 - 7400 + 1000 */
    /* at once: a whole request more */
    assert_int_equal(pt_limit_req_excess(1400, 5000, 5000, 2000), 2400);
    /* 1r/m is 1000 / 60 = 16 (nginx's integer division): 30 s leak 480 */
    assert_int_equal(pt_limit_req_excess(0, 0, 30000, 16), 520);
    assert_int_equal(pt_limit_req_excess(520, 30000, 30001, 16), 1520); /* 16 * 1 / 1000 = 0 */
    /* a clock that went back: no time; more than a minute back: 1 ms */
    assert_int_equal(pt_limit_req_excess(1000, 5000, 4000, 2000), 2000);
    assert_int_equal(pt_limit_req_excess(1000, 100000, 0, 2000), 1998);
    /* a pause of years at the highest rate drains it, without overflowing */
    assert_int_equal(pt_limit_req_excess(5000, 0, INT64_MAX / 2, UINT64_C(1000000000000)), 0);
    assert_int_equal(pt_limit_req_excess(5000, 0, INT64_MAX / 2, 16), 0);
    /* where rate * ms is 2^64 exactly, a product that wrapped would leak nothing */
    assert_int_equal(pt_limit_req_excess(5000, 0, INT64_C(1) << 30, UINT64_C(1) << 34), 0);
}

/* ---- zones and locations from conf text ---- */

static pt_conf *conf;
static pt_limit_zones *zones;
static pt_location loc;
static struct ev_loop *loop;
static pt_custodian *conn; /* the connection's custodian of the fake requests */

static void build(const char *text)
{
    char err[512];
    if (pt_conf_parse_string(&conf, text, "t.conf", "/", err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(pt_limit_zones_new(&zones, conf, NULL, err, sizeof err), 0);
    memset(&loc, 0, sizeof loc);
    assert_int_equal(pt_location_limits_new(&loc.limits, &conf->servers[0].limit, zones), 0);
}

static void unbuild(void)
{
    pt_location_limits_free(loc.limits);
    loc.limits = NULL;
    pt_limit_zones_free(zones);
    zones = NULL;
    pt_conf_free(conf);
    conf = NULL;
}

static int setup(void **state)
{
    nothing_left_begin();
    loop = ev_loop_new(EVFLAG_AUTO);
    conn = pt_custodian_new(NULL);
    return 0;
}

static int teardown(void **state)
{
    unbuild();
    pt_custodian_shutdown(conn);
    pt_custodian_reap();
    assert_nothing_left(loop); /* destroys it */
    loop = NULL;
    return 0;
}

static pt_zone *zone_named(const char *name)
{
    for (size_t i = 0; i < zones->n; i++)
        if (strcmp(zones->z[i].conf->name, name) == 0)
            return zones->z[i].zone;
    fail_msg("no zone %s", name);
    return NULL;
}

static pt_zone_entry *entry_of(const char *zone, const char *key)
{
    pt_zone *z = zone_named(zone);
    pt_zone_key k;
    pt_zone_key_make(z, key, strlen(key), &k);
    pt_zone_lock(z);
    pt_zone_entry *e = pt_zone_find(z, &k);
    pt_zone_unlock(z);
    return e;
}

/* ---- fake requests: the key in X-Key, answered by a protocol that only records ---- */

static int noop_respond(pt_request *req, const pt_response *r)
{
    return 0;
}

static void noop_timeout(pt_request *req, double secs)
{
}

static const pt_request_proto proto = {.respond = noop_respond, .reset_timeout = noop_timeout};

typedef struct fake {
    pt_request req;
    pt_header key;
    char *chunk;
} fake;

static fake *fake_new(const char *key)
{
    fake *f = calloc(1, sizeof *f);
    f->chunk = pt_chunk_get();
    pt_request_init(&f->req, &proto, loop, f->chunk, 0);
    f->req.conn_custodian = conn;
    f->req.location = &loc;
    f->req.norm_path = PT_STR_LIT("/x");
    f->key = (pt_header){PT_STR_LIT("X-Key"), {key, strlen(key)}};
    f->req.headers = &f->key;
    f->req.nheaders = key[0] ? 1 : 0;
    return f;
}

static void fake_free(fake *f)
{
    pt_request_dispose(&f->req);
    pt_chunk_put(f->chunk);
    free(f);
}

/* One request through limit_req: its verdict. */
static int req_once(const char *key)
{
    fake *f = fake_new(key);
    int v = pt_limit_req_check(&f->req);
    assert_int_not_equal(v, PT_GUARD_WAIT); /* the callers ask for nodelay */
    fake_free(f);
    return v;
}

#define ZONE_REQ(name, rate) "limit_req_zone $http_x_key zone=" name ":64k rate=" rate ";\n"
#define SERVER(lines) "server {\n    listen 127.0.0.1:0;\n" lines "}\n"

/* ---- the bucket through lookup and account ---- */

/* rate 2r/s, burst 3, at the times of test_excess_by_hand. */
static void test_burst_by_hand(void **state)
{
    (void)state;
    build(ZONE_REQ("z", "2r/s") SERVER("    limit_req zone=z burst=3;\n"));
    pt_req_limit *limit = &loc.limits->req[0];
    pt_zone *z = limit->zone->zone;
    pt_zone_key key;
    pt_zone_key_make(z, "k", 1, &key);
    static const struct {
        int64_t now;
        int rc;
        uint64_t excess;
    } steps[] = {
        {0, OK, 0},        {100, OK, 800},    {200, OK, 1600},
        {300, OK, 2400},   {400, BUSY, 3200}, /* above the burst of 3000: refused, nothing kept */
        {500, OK, 3000},                      /* 2400 - 400 + 1000: the burst exactly */
        {500, BUSY, 4000},
    };
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        uint64_t excess = 12345;
        pt_zone_lock(z);
        int rc = lookup(limit, &key, steps[i].now, true, &excess);
        pt_zone_unlock(z);
        assert_int_equal(rc, steps[i].rc);
        assert_int_equal(excess, steps[i].excess);
    }
    pt_zone_entry *e = entry_of("z", "k");
    assert_int_equal(e->excess, 3000);
    assert_int_equal(e->last, 500);
    assert_int_equal(e->count, 0);
}

/* The delay a limit asks for: what is above `delay` leaks at the rate. */
static void test_delays_by_hand(void **state)
{
    (void)state;
    build(ZONE_REQ("z", "2r/s") SERVER("    limit_req zone=z burst=5;\n"
                                       "    limit_req zone=z2 burst=5 delay=1;\n"
                                       "    limit_req zone=z3 burst=5 nodelay;\n")
              ZONE_REQ("z2", "2r/s") ZONE_REQ("z3", "2r/s"));
    pt_req_limit *l = &loc.limits->req[0];
    uint64_t excess = 800;
    assert_int_equal(account(l, 0, &excess, &l, 0), 400); /* 800 / 2 r/s */
    l = &loc.limits->req[1];
    excess = 1600;
    assert_int_equal(account(l, 0, &excess, &l, 0), 300); /* (1600 - 1000) / 2 r/s */
    excess = 1000;
    assert_int_equal(account(l, 0, &excess, &l, 0), 0);
    l = &loc.limits->req[2];
    excess = 5000;
    assert_int_equal(account(l, 0, &excess, &l, 0), 0);
}

/* Two zones: a request the second refuses leaves the first as it was. */
static void test_a_refusal_counts_in_no_zone(void **state)
{
    (void)state;
    build("limit_req_zone $http_x_key zone=wide:64k rate=1r/m;\n"
          "limit_req_zone $http_x_other zone=narrow:64k rate=1r/m;\n" SERVER(
              "    limit_req zone=wide burst=5 nodelay;\n"
              "    limit_req zone=narrow nodelay;\n"));
    /* X-Other is empty: narrow does not count; wide does */
    assert_int_equal(req_once("k"), PT_GUARD_PASS);
    assert_int_equal(entry_of("wide", "k")->excess, 0);
    assert_int_equal(req_once("k"), PT_GUARD_PASS);
    assert_int_equal(entry_of("wide", "k")->excess, 1000);
    /* now narrow refuses: wide keeps 1000, and its entry is no longer held */
    fake *f = fake_new("k");
    pt_header both[2] = {f->key, {PT_STR_LIT("X-Other"), PT_STR_LIT("o")}};
    f->req.headers = both;
    f->req.nheaders = 2;
    assert_int_equal(pt_limit_req_check(&f->req), PT_GUARD_PASS); /* narrow's first */
    assert_int_equal(entry_of("wide", "k")->excess, 2000);
    fake_free(f);
    for (int i = 0; i < 3; i++) {
        f = fake_new("k");
        f->req.headers = both;
        f->req.nheaders = 2;
        assert_int_equal(pt_limit_req_check(&f->req), 503);
        assert_int_equal(f->req.limit_req_status, PT_LIMIT_REJECTED);
        fake_free(f);
    }
    assert_int_equal(entry_of("wide", "k")->excess, 2000);
    assert_int_equal(entry_of("wide", "k")->count, 0);
    pt_zone_counters *c = pt_zone_counters_of(zone_named("narrow"));
    assert_int_equal(c->rejected, 3);
    assert_int_equal(pt_zone_counters_of(zone_named("wide"))->rejected, 0);
}

static void test_status_dry_run_and_once(void **state)
{
    (void)state;
    build(ZONE_REQ("z", "1r/m") SERVER("    limit_req zone=z nodelay;\n"
                                       "    limit_req_status 429;\n"));
    assert_int_equal(req_once("a"), PT_GUARD_PASS);
    assert_int_equal(req_once("a"), 429);
    assert_int_equal(req_once("b"), PT_GUARD_PASS);
    /* an empty key is not counted */
    for (int i = 0; i < 3; i++)
        assert_int_equal(req_once(""), PT_GUARD_PASS);
    pt_zone_counters *c = pt_zone_counters_of(zone_named("z"));
    assert_int_equal(c->requests, 3);
    /* a request that was counted is not counted again (an internal redirect) */
    fake *f = fake_new("a");
    f->req.limit_req_status = PT_LIMIT_PASSED;
    assert_int_equal(pt_limit_req_check(&f->req), PT_GUARD_PASS);
    fake_free(f);
    assert_int_equal(c->requests, 3);
    unbuild();

    build(ZONE_REQ("z", "1r/m") SERVER("    limit_req zone=z;\n    limit_req_dry_run on;\n"));
    for (int i = 0; i < 3; i++) {
        f = fake_new("a");
        assert_int_equal(pt_limit_req_check(&f->req), PT_GUARD_PASS);
        assert_int_equal(f->req.limit_req_status, i ? PT_LIMIT_REJECTED_DRY_RUN : PT_LIMIT_PASSED);
        fake_free(f);
    }
    c = pt_zone_counters_of(zone_named("z"));
    assert_int_equal(c->rejected_dry_run, 2);
    assert_int_equal(c->rejected, 0);
}

static int resumed_with = -100;

static void on_resumed(pt_request *req, int verdict)
{
    resumed_with = verdict;
    ev_break(req->loop, EVBREAK_ALL);
}

/* A delayed request is held by a timer and let go when its excess has leaked; one whose
 * request ends first is never let go. */
static void test_delay_holds_the_request(void **state)
{
    (void)state;
    build(ZONE_REQ("z", "10r/s") SERVER("    limit_req zone=z burst=5;\n"));
    fake *a = fake_new("k"), *b = fake_new("k"), *c = fake_new("k");
    /* the loop's clock, read once per iteration, is where the timer counts from: now */
    ev_now_update(loop);
    double start = ev_now(loop);
    assert_int_equal(pt_guard_run(&a->req, on_resumed), PT_GUARD_PASS);
    /* 1000 above the rate at 10 r/s: 100 ms */
    assert_int_equal(pt_guard_run(&b->req, on_resumed), PT_GUARD_WAIT);
    assert_int_equal(b->req.limit_req_status, PT_LIMIT_DELAYED);
    assert_int_equal(pt_zone_counters_of(zone_named("z"))->delayed, 1);
    /* this one (200 ms) goes away before its time */
    assert_int_equal(pt_guard_run(&c->req, on_resumed), PT_GUARD_WAIT);
    fake_free(c);
    ev_run(loop, 0);
    double took = ev_time() - start;
    assert_int_equal(resumed_with, PT_GUARD_PASS);
    assert_true(took >= 0.09 && took < 2.0);
    resumed_with = -100;
    fake_free(a);
    fake_free(b);
    ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(resumed_with, -100);
}

/* ---- a full zone ---- */

/* limit_req: entries idle a minute and drained go first; else the oldest is evicted; an
 * oldest that is being counted cannot be, and the request is refused. */
static void test_full_zone(void **state)
{
    (void)state;
    build("limit_req_zone $http_x_key zone=z:32k rate=1r/s;\n" SERVER(
        "    limit_req zone=z burst=1000 nodelay;\n"));
    pt_req_limit *limit = &loc.limits->req[0];
    pt_limit_zone *lz = limit->zone;
    size_t cap = pt_zone_capacity(lz->zone);
    char k[32];
    uint64_t excess;
    pt_zone_key key;
    for (size_t i = 0; i < cap; i++) {
        snprintf(k, sizeof k, "k%zu", i);
        pt_zone_key_make(lz->zone, k, strlen(k), &key);
        pt_zone_lock(lz->zone);
        assert_int_equal(lookup(limit, &key, (int64_t)i, true, &excess), OK);
        pt_zone_unlock(lz->zone);
    }
    assert_int_equal(pt_zone_used(lz->zone), cap);
    /* a second later: nothing idle a minute: the oldest (k0) is evicted */
    pt_zone_key_make(lz->zone, "new", 3, &key);
    pt_zone_lock(lz->zone);
    assert_int_equal(lookup(limit, &key, 1000, true, &excess), OK);
    pt_zone_unlock(lz->zone);
    assert_null(entry_of("z", "k0"));
    assert_non_null(entry_of("z", "k1"));
    assert_int_equal(pt_zone_counters_of(lz->zone)->evicted, 1);
    /* two minutes later: two idle, drained entries go before any is evicted */
    pt_zone_key_make(lz->zone, "later", 5, &key);
    pt_zone_lock(lz->zone);
    assert_int_equal(lookup(limit, &key, 121000, true, &excess), OK);
    pt_zone_unlock(lz->zone);
    assert_int_equal(pt_zone_used(lz->zone), cap - 1);
    assert_int_equal(pt_zone_counters_of(lz->zone)->evicted, 1);
    /* full again, and the oldest is held by a check in progress: nothing can go */
    for (size_t i = 0; pt_zone_used(lz->zone) < cap; i++) {
        snprintf(k, sizeof k, "m%zu", i);
        pt_zone_key_make(lz->zone, k, strlen(k), &key);
        pt_zone_lock(lz->zone);
        assert_int_equal(lookup(limit, &key, 121000, true, &excess), OK);
        pt_zone_unlock(lz->zone);
    }
    pt_zone_lock(lz->zone);
    pt_zone_oldest(lz->zone)->count = 1;
    pt_zone_unlock(lz->zone);
    assert_int_equal(req_once("one too many"), 503);
    assert_int_equal(pt_zone_counters_of(lz->zone)->full, 1);
}

/* ---- limit_conn ---- */

static void test_conn_counts(void **state)
{
    (void)state;
    build("limit_conn_zone $http_x_key zone=c:32k;\n" SERVER("    limit_conn c 2;\n"));
    pt_zone *z = zone_named("c");
    fake *a = fake_new("k"), *b = fake_new("k"), *c = fake_new("k"), *other = fake_new("o");
    assert_int_equal(pt_limit_conn_check(&a->req), PT_GUARD_PASS);
    assert_int_equal(pt_limit_conn_check(&b->req), PT_GUARD_PASS);
    assert_int_equal(pt_limit_conn_check(&c->req), 503);
    assert_int_equal(c->req.limit_conn_status, PT_LIMIT_REJECTED);
    assert_int_equal(pt_limit_conn_check(&other->req), PT_GUARD_PASS);
    assert_int_equal(entry_of("c", "k")->count, 2);
    assert_int_equal(pt_zone_counters_of(z)->active, 3);
    /* a refused request took nothing: its end gives nothing back */
    fake_free(c);
    assert_int_equal(entry_of("c", "k")->count, 2);
    /* a counted one gives its count back when it ends, once */
    fake_free(a);
    assert_int_equal(entry_of("c", "k")->count, 1);
    c = fake_new("k");
    assert_int_equal(pt_limit_conn_check(&c->req), PT_GUARD_PASS);
    /* counted once: the check again (an internal redirect) takes no second count */
    assert_int_equal(pt_limit_conn_check(&c->req), PT_GUARD_PASS);
    assert_int_equal(entry_of("c", "k")->count, 2);
    fake_free(b);
    fake_free(c);
    fake_free(other);
    /* the last count of a key removes its entry */
    assert_null(entry_of("c", "k"));
    assert_int_equal(pt_zone_used(z), 0);
    assert_int_equal(pt_zone_counters_of(z)->active, 0);
    assert_int_equal(pt_zone_counters_of(z)->rejected, 1);
}

/* limit_conn frees only at zero: a zone full of counted keys refuses a new one. */
static void test_conn_full_zone(void **state)
{
    (void)state;
    build("limit_conn_zone $http_x_key zone=c:32k;\n" SERVER("    limit_conn c 1;\n"
                                                             "    limit_conn_status 429;\n"));
    size_t cap = pt_zone_capacity(zone_named("c"));
    fake **held = calloc(cap, sizeof *held);
    char(*keys)[24] = calloc(cap, sizeof *keys);
    for (size_t i = 0; i < cap; i++) {
        snprintf(keys[i], sizeof keys[i], "k%zu", i);
        held[i] = fake_new(keys[i]);
        assert_int_equal(pt_limit_conn_check(&held[i]->req), PT_GUARD_PASS);
    }
    fake *f = fake_new("one more");
    assert_int_equal(pt_limit_conn_check(&f->req), 429);
    fake_free(f);
    assert_int_equal(pt_zone_counters_of(zone_named("c"))->full, 1);
    fake_free(held[0]);
    f = fake_new("one more");
    assert_int_equal(pt_limit_conn_check(&f->req), PT_GUARD_PASS);
    fake_free(f);
    for (size_t i = 1; i < cap; i++)
        fake_free(held[i]);
    free(held);
    free(keys);
    assert_int_equal(pt_zone_used(zone_named("c")), 0);
}

/* ---- reloads ---- */

static void test_reload_takes_zones_over(void **state)
{
    (void)state;
    build(ZONE_REQ("same", "1r/s") ZONE_REQ("resized", "1r/s") ZONE_REQ("rekeyed", "1r/s")
              ZONE_REQ("retimed", "1r/s") SERVER(""));
    pt_conf *next;
    char err[512];
    assert_int_equal(
        pt_conf_parse_string(
            &next,
            ZONE_REQ("same", "1r/s") "limit_req_zone $http_x_key zone=resized:"
                                     "128k rate=1r/s;\n"
                                     "limit_req_zone $http_x_user "
                                     "zone=rekeyed:64k rate=1r/s;\n" ZONE_REQ("retimed", "5r/s")
                                         ZONE_REQ("new", "1r/s") SERVER(""),
            "t.conf", "/", err, sizeof err),
        0);
    pt_limit_zones *after;
    assert_int_equal(pt_limit_zones_new(&after, next, zones, err, sizeof err), 0);
    assert_int_equal(after->n, 5);
    assert_ptr_equal(after->z[0].zone, zones->z[0].zone); /* same */
    assert_ptr_not_equal(after->z[1].zone, zones->z[1].zone);
    assert_int_equal(pt_zone_size(after->z[1].zone), 128 * 1024);
    assert_ptr_not_equal(after->z[2].zone, zones->z[2].zone);
    assert_ptr_equal(after->z[3].zone, zones->z[3].zone); /* a new rate keeps the state */
    /* the zone taken over outlives the server that made it */
    pt_zone *z = after->z[0].zone;
    pt_zone_key key;
    pt_zone_key_make(z, "k", 1, &key);
    pt_zone_lock(z);
    assert_non_null(pt_zone_insert(z, &key));
    pt_zone_unlock(z);
    unbuild();
    pt_zone_lock(z);
    assert_non_null(pt_zone_find(z, &key));
    pt_zone_unlock(z);
    pt_limit_zones_free(after);
    pt_conf_free(next);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_excess_by_hand),
        T(test_burst_by_hand),
        T(test_delays_by_hand),
        T(test_a_refusal_counts_in_no_zone),
        T(test_status_dry_run_and_once),
        T(test_delay_holds_the_request),
        T(test_full_zone),
        T(test_conn_counts),
        T(test_conn_full_zone),
        T(test_reload_takes_zones_over),
    };
    return cmocka_run_group_tests_name("limiter", tests, NULL, NULL);
}
