/* Choosing an upstream's server (server/handlers/balance.c), without sockets: upstreams made by
 * hand, their shared state in plain memory. Smooth weighted round-robin's order and shares,
 * least_conn, ip_hash, hash and its consistent ring (a server added or removed moves about 1/N
 * of the keys, and only its own), random, backup servers only when no primary may take a
 * request, `down` never, max_conns, slow_start's ramp. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "server/handlers/balance.c"
#include "tests/support.h"

/* An upstream of `n` servers made by hand: what pt_upstreams_get would set up, less sockets. */
typedef struct fixture {
    pt_upstream up;
    pt_upstream_peer peers[PT_UPSTREAM_MAX_SERVERS];
    pt_peer_state st[PT_UPSTREAM_MAX_SERVERS];
    uint32_t conns[PT_UPSTREAM_MAX_SERVERS], mine[PT_UPSTREAM_MAX_SERVERS];
    char addresses[PT_UPSTREAM_MAX_SERVERS][32];
} fixture;

static fixture *make(size_t n, const int *weights, pt_balance balance)
{
    fixture *f = test_calloc(1, sizeof *f);
    f->up.peers = f->peers;
    f->up.npeers = n;
    f->up.balance = balance;
    f->up.name = "test";
    for (size_t i = 0; i < n; i++) {
        pt_upstream_peer *p = &f->peers[i];
        snprintf(f->addresses[i], sizeof f->addresses[i], "10.0.0.%zu:80", i + 1);
        p->address = f->addresses[i];
        snprintf(p->name, sizeof p->name, "%s", p->address);
        p->weight = weights ? weights[i] : 1;
        p->max_fails = 1;
        p->fail_timeout = 10;
        p->st = &f->st[i];
        p->conns = &f->conns[i];
        p->mine = &f->mine[i];
    }
    return f;
}

static void drop(fixture *f)
{
    free(f->up.ring);
    test_free(f);
}

/* One request's first choice; its connection ends at once. Returns the index, or -1. */
static int pick_once(fixture *f, pt_upstream_sel *sel, double now)
{
    pt_upstream_sel own = {0};
    pt_upstream_peer *p;
    if (pt_upstream_pick(&f->up, sel ? sel : &own, now, &p) < 0)
        return -1;
    pt_upstream_peer_done(&f->up, p);
    return (int)(p - f->peers);
}

/* ---- round-robin ---- */

static void test_round_robin_is_smooth(void **state)
{
    /* nginx's example: weights 5, 1, 1 give a a b a c a a, not a a a a a b c */
    fixture *f = make(3, (int[]){5, 1, 1}, PT_BALANCE_ROUND_ROBIN);
    for (int round = 0; round < 3; round++) {
        char seq[8] = {0};
        for (int i = 0; i < 7; i++)
            seq[i] = (char)('a' + pick_once(f, NULL, 100));
        assert_string_equal(seq, "aabacaa");
    }
    drop(f);
}

static void test_round_robin_shares_follow_weights(void **state)
{
    int w[] = {3, 2, 1, 4};
    fixture *f = make(4, w, PT_BALANCE_ROUND_ROBIN);
    int count[4] = {0};
    for (int i = 0; i < 1000; i++)
        count[pick_once(f, NULL, 100)]++;
    /* 1000 picks are 100 whole rounds of 10: each exactly its weight per round */
    for (int i = 0; i < 4; i++)
        assert_int_equal(count[i], w[i] * 100);
    /* and no server waits longer than a round for its turn */
    fixture *g = make(2, (int[]){9, 1}, PT_BALANCE_ROUND_ROBIN);
    int last_b = -1;
    for (int i = 0; i < 100; i++)
        if (pick_once(g, NULL, 100) == 1) {
            if (last_b >= 0)
                assert_int_equal(i - last_b, 10);
            last_b = i;
        }
    drop(g);
    drop(f);
}

static void test_a_request_never_gets_a_server_twice(void **state)
{
    fixture *f = make(3, NULL, PT_BALANCE_ROUND_ROBIN);
    pt_upstream_sel sel = {0};
    pt_upstream_peer *p;
    uint64_t seen = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pt_upstream_pick(&f->up, &sel, 100, &p), 0);
        assert_false(seen >> (p - f->peers) & 1);
        seen |= UINT64_C(1) << (p - f->peers);
        pt_upstream_peer_done(&f->up, p);
    }
    assert_int_equal(pt_upstream_pick(&f->up, &sel, 100, &p), -ENOENT);
    drop(f);
}

static void test_down_servers_are_never_chosen(void **state)
{
    for (pt_balance b = PT_BALANCE_ROUND_ROBIN; b <= PT_BALANCE_RANDOM; b++) {
        fixture *f = make(3, NULL, b);
        f->peers[1].down = true;
        for (int i = 0; i < 300; i++) {
            pt_upstream_sel sel = {0};
            sel.keyed = true;
            sel.hash = (uint32_t)i * 2654435761u;
            sel.addr[0] = (uint8_t)i;
            sel.addrlen = 3;
            sel.hash = b == PT_BALANCE_IP_HASH ? 89 : sel.hash;
            assert_int_not_equal(pick_once(f, &sel, 100), 1);
        }
        drop(f);
    }
}

static void test_backups_only_when_no_primary_may(void **state)
{
    for (pt_balance b = PT_BALANCE_ROUND_ROBIN; b <= PT_BALANCE_LEAST_CONN; b++) {
        fixture *f = make(4, NULL, b);
        f->peers[2].backup = f->peers[3].backup = true;
        int count[4] = {0};
        for (int i = 0; i < 100; i++)
            count[pick_once(f, NULL, 100)]++;
        assert_int_equal(count[2] + count[3], 0);
        assert_int_equal(count[0] + count[1], 100);
        /* one primary failed: the other takes everything */
        f->st[0].down_until = 110;
        memset(count, 0, sizeof count);
        for (int i = 0; i < 100; i++)
            count[pick_once(f, NULL, 100)]++;
        assert_int_equal(count[1], 100);
        /* both failed (one by its checks): the backups share the requests */
        f->st[1].unhealthy = 1;
        memset(count, 0, sizeof count);
        for (int i = 0; i < 100; i++)
            count[pick_once(f, NULL, 100)]++;
        assert_int_equal(count[0] + count[1], 0);
        assert_int_equal(count[2], 50);
        assert_int_equal(count[3], 50);
        /* the failed primary's time is up: back to the primaries */
        assert_int_equal(pick_once(f, NULL, 111), 0);
        /* a request the backups cannot take either (tried both) is not sent back to primaries
         * that are down by their checks */
        pt_upstream_sel sel = {.tried = UINT64_C(0xc)};
        f->st[0].down_until = 200;
        pt_upstream_peer *p;
        assert_int_equal(pt_upstream_pick(&f->up, &sel, 150, &p), 0);
        assert_ptr_equal(p, &f->peers[0]); /* failed passively: it comes back first */
        pt_upstream_peer_done(&f->up, p);
        f->peers[0].down = true;
        sel.tried = UINT64_C(0xc);
        assert_int_equal(pt_upstream_pick(&f->up, &sel, 150, &p), -ENOENT);
        drop(f);
    }
}

static void test_unavailable_servers(void **state)
{
    /* what a request can no longer be sent to: down, or failed by its checks (a server out
     * for its requests' failures may still be tried, when it comes back first) */
    fixture *f = make(4, NULL, PT_BALANCE_ROUND_ROBIN);
    assert_int_equal(pt_upstream_unavailable(&f->up), 0);
    f->peers[1].down = true;
    f->st[3].unhealthy = 1;
    f->st[0].down_until = 200;
    assert_int_equal(pt_upstream_unavailable(&f->up), UINT64_C(0xa));
    drop(f);
}

static void test_when_every_server_failed_the_first_back_is_tried(void **state)
{
    fixture *f = make(3, NULL, PT_BALANCE_ROUND_ROBIN);
    f->st[0].down_until = 130;
    f->st[1].down_until = 120;
    f->st[2].down_until = 125;
    assert_int_equal(pick_once(f, NULL, 100), 1);
    /* an upstream of one server is never out */
    fixture *one = make(1, NULL, PT_BALANCE_ROUND_ROBIN);
    one->st[0].down_until = 200;
    one->st[0].unhealthy = 0;
    assert_int_equal(pick_once(one, NULL, 100), 0);
    drop(one);
    drop(f);
}

static void test_passive_failures_mark_a_server_out(void **state)
{
    fixture *f = make(2, NULL, PT_BALANCE_ROUND_ROBIN);
    f->peers[0].max_fails = 2;
    f->peers[0].fail_timeout = 10;
    pt_upstream_peer_failed(&f->up, &f->peers[0], 100);
    assert_true(f->st[0].down_until <= 100); /* one failure of two */
    pt_upstream_peer_ok(&f->peers[0]);       /* a success clears the count */
    pt_upstream_peer_failed(&f->up, &f->peers[0], 101);
    assert_true(f->st[0].down_until <= 101);
    pt_upstream_peer_failed(&f->up, &f->peers[0], 102);
    assert_true(f->st[0].down_until == 112);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick_once(f, NULL, 105), 1);
    /* failures further apart than fail_timeout do not add up */
    fixture *g = make(2, NULL, PT_BALANCE_ROUND_ROBIN);
    g->peers[0].max_fails = 2;
    pt_upstream_peer_failed(&g->up, &g->peers[0], 100);
    pt_upstream_peer_failed(&g->up, &g->peers[0], 111);
    assert_true(g->st[0].down_until <= 111);
    drop(g);
    drop(f);
}

/* ---- max_conns ---- */

static void test_max_conns_bounds_a_server(void **state)
{
    fixture *f = make(2, NULL, PT_BALANCE_ROUND_ROBIN);
    f->peers[0].max_conns = 2;
    f->peers[1].max_conns = 1;
    pt_upstream_peer *held[3];
    for (int i = 0; i < 3; i++) {
        pt_upstream_sel sel = {0};
        assert_int_equal(pt_upstream_pick(&f->up, &sel, 100, &held[i]), 0);
    }
    assert_int_equal(f->conns[0], 2);
    assert_int_equal(f->conns[1], 1);
    assert_int_equal(f->mine[0] + f->mine[1], 3);
    pt_upstream_sel sel = {0};
    pt_upstream_peer *p;
    assert_int_equal(pt_upstream_pick(&f->up, &sel, 100, &p), -EBUSY);
    /* another process's connection counts the same */
    pt_upstream_peer_done(&f->up, held[0]);
    assert_int_equal(pt_upstream_pick(&f->up, &sel, 100, &p), 0);
    assert_ptr_equal(p, held[0]);
    pt_upstream_peer_done(&f->up, p);
    pt_upstream_peer_done(&f->up, held[1]);
    pt_upstream_peer_done(&f->up, held[2]);
    assert_int_equal(f->conns[0] + f->conns[1], 0);
    assert_int_equal(f->mine[0] + f->mine[1], 0);
    /* full primaries send requests to a backup */
    fixture *b = make(2, NULL, PT_BALANCE_ROUND_ROBIN);
    b->peers[0].max_conns = 1;
    b->peers[1].backup = true;
    b->conns[0] = 1;
    assert_int_equal(pick_once(b, NULL, 100), 1);
    drop(b);
    drop(f);
}

/* ---- least_conn ---- */

static void test_least_conn_takes_the_least_loaded_per_weight(void **state)
{
    fixture *f = make(3, (int[]){1, 1, 1}, PT_BALANCE_LEAST_CONN);
    f->conns[0] = 5;
    f->conns[1] = 2;
    f->conns[2] = 3;
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick_once(f, NULL, 100), 1);
    /* weight: 6 connections on a server of weight 3 are fewer per unit than 3 on one of 1 */
    fixture *w = make(2, (int[]){3, 1}, PT_BALANCE_LEAST_CONN);
    w->conns[0] = 6;
    w->conns[1] = 3;
    assert_int_equal(pick_once(w, NULL, 100), 0);
    /* held connections spread requests evenly */
    fixture *h = make(3, NULL, PT_BALANCE_LEAST_CONN);
    for (int i = 0; i < 30; i++) {
        pt_upstream_sel sel = {0};
        pt_upstream_peer *p;
        assert_int_equal(pt_upstream_pick(&h->up, &sel, 100, &p), 0);
    }
    assert_int_equal(h->conns[0], 10);
    assert_int_equal(h->conns[1], 10);
    assert_int_equal(h->conns[2], 10);
    drop(h);
    drop(w);
    drop(f);
}

static void test_least_conn_equals_share_by_weight(void **state)
{
    /* nobody holds a connection: every pick ties, and the ties go round-robin by weight */
    fixture *f = make(2, (int[]){3, 1}, PT_BALANCE_LEAST_CONN);
    int count[2] = {0};
    for (int i = 0; i < 400; i++)
        count[pick_once(f, NULL, 100)]++;
    assert_int_equal(count[0], 300);
    assert_int_equal(count[1], 100);
    drop(f);
}

/* ---- ip_hash ---- */

static pt_upstream_sel ip_sel(uint8_t a, uint8_t b, uint8_t c)
{
    return (pt_upstream_sel){.hash = 89, .addr = {a, b, c}, .addrlen = 3};
}

static void test_ip_hash_keeps_a_network_on_one_server(void **state)
{
    fixture *f = make(4, NULL, PT_BALANCE_IP_HASH);
    int count[4] = {0};
    for (int net = 0; net < 2000; net++) {
        pt_upstream_sel s1 = ip_sel(10, (uint8_t)(net >> 8), (uint8_t)net);
        pt_upstream_sel s2 = ip_sel(10, (uint8_t)(net >> 8), (uint8_t)net);
        int first = pick_once(f, &s1, 100);
        assert_int_equal(pick_once(f, &s2, 100), first);
        count[first]++;
    }
    /* the networks spread over the servers */
    for (int i = 0; i < 4; i++)
        assert_in_range(count[i], 350, 650);
    /* a server out: its clients go elsewhere, the others stay */
    for (int net = 0; net < 256; net++) {
        pt_upstream_sel s = ip_sel(192, 168, (uint8_t)net);
        int before = pick_once(f, &s, 100);
        f->st[2].unhealthy = 1;
        pt_upstream_sel t = ip_sel(192, 168, (uint8_t)net);
        int after = pick_once(f, &t, 100);
        f->st[2].unhealthy = 0;
        assert_int_not_equal(after, 2);
        if (before != 2)
            assert_int_equal(after, before);
    }
    drop(f);
}

/* ---- hash ---- */

static pt_upstream_sel key_sel(const pt_upstream *up, int key)
{
    char text[32];
    int n = snprintf(text, sizeof text, "/object/%d", key);
    pt_upstream_sel sel = {.keyed = true, .hash = pt_upstream_key_hash(text, (size_t)n)};
    if (up->nring)
        sel.point = pt_upstream_ring_find(up, sel.hash);
    return sel;
}

/* Where `nkeys` keys go, as the servers' addresses' last byte (0 for none). */
static void map_keys(fixture *f, int nkeys, int *out)
{
    for (int k = 0; k < nkeys; k++) {
        pt_upstream_sel sel = key_sel(&f->up, k);
        int i = pick_once(f, &sel, 100);
        out[k] = i < 0 ? 0 : atoi(strrchr(f->peers[i].address, '.') + 1);
    }
}

#define NKEYS 20000

static void test_consistent_hash_moves_only_a_removed_servers_keys(void **state)
{
    static int before[NKEYS], after[NKEYS];
    fixture *f = make(10, NULL, PT_BALANCE_HASH);
    assert_int_equal(pt_upstream_ring_build(&f->up), 0);
    assert_int_equal(f->up.nring, 10 * PT_UPSTREAM_RING_POINTS); /* (no two points collide) */
    map_keys(f, NKEYS, before);
    int share[11] = {0};
    for (int k = 0; k < NKEYS; k++)
        share[before[k]]++;
    for (int i = 1; i <= 10; i++)
        assert_in_range(share[i], NKEYS / 10 * 6 / 10, NKEYS / 10 * 14 / 10);

    /* The same servers without 10.0.0.4 (written in another order: the ring is the same). */
    fixture *g = make(9, NULL, PT_BALANCE_HASH);
    int order[] = {9, 1, 2, 10, 5, 6, 7, 8, 3};
    for (int i = 0; i < 9; i++)
        snprintf(g->addresses[i], sizeof g->addresses[i], "10.0.0.%d:80", order[i]);
    assert_int_equal(pt_upstream_ring_build(&g->up), 0);
    map_keys(g, NKEYS, after);
    int moved = 0;
    for (int k = 0; k < NKEYS; k++) {
        if (before[k] == after[k])
            continue;
        moved++;
        assert_int_equal(before[k], 4); /* only the removed server's keys move */
    }
    /* about 1/10 of the keys: the removed server's share */
    assert_int_equal(moved, share[4]);
    assert_in_range(moved, NKEYS * 6 / 100, NKEYS * 14 / 100);

    /* A server out (failed, not removed) moves the same keys, to the same places. */
    f->st[3].unhealthy = 1;
    static int out[NKEYS];
    map_keys(f, NKEYS, out);
    assert_memory_equal(out, after, sizeof out);
    f->st[3].unhealthy = 0;
    drop(g);
    drop(f);
}

static void test_consistent_hash_sends_a_new_servers_keys_only_to_it(void **state)
{
    static int before[NKEYS], after[NKEYS];
    fixture *f = make(10, NULL, PT_BALANCE_HASH);
    assert_int_equal(pt_upstream_ring_build(&f->up), 0);
    map_keys(f, NKEYS, before);
    fixture *g = make(11, NULL, PT_BALANCE_HASH);
    assert_int_equal(pt_upstream_ring_build(&g->up), 0);
    map_keys(g, NKEYS, after);
    int moved = 0;
    for (int k = 0; k < NKEYS; k++) {
        if (before[k] == after[k])
            continue;
        moved++;
        assert_int_equal(after[k], 11);
    }
    assert_in_range(moved, NKEYS * 5 / 100, NKEYS * 13 / 100); /* about 1/11 */
    drop(g);
    drop(f);
}

static void test_plain_hash_moves_most_keys(void **state)
{
    /* Without `consistent` a key's server is its hash modulo the weights: one server fewer
     * moves most keys (what `consistent` is for). */
    static int before[NKEYS], after[NKEYS];
    fixture *f = make(10, NULL, PT_BALANCE_HASH);
    map_keys(f, NKEYS, before);
    fixture *g = make(9, NULL, PT_BALANCE_HASH);
    map_keys(g, NKEYS, after);
    int moved = 0;
    for (int k = 0; k < NKEYS; k++)
        moved += before[k] != after[k];
    assert_true(moved > NKEYS / 2);
    drop(g);
    drop(f);
}

static void test_hash_shares_follow_weights(void **state)
{
    for (int consistent = 0; consistent < 2; consistent++) {
        fixture *f = make(3, (int[]){1, 2, 5}, PT_BALANCE_HASH);
        if (consistent)
            assert_int_equal(pt_upstream_ring_build(&f->up), 0);
        static int where[NKEYS];
        map_keys(f, NKEYS, where);
        int share[4] = {0};
        for (int k = 0; k < NKEYS; k++)
            share[where[k]]++;
        assert_in_range(share[1], NKEYS / 8 * 7 / 10, NKEYS / 8 * 13 / 10);
        assert_in_range(share[2], NKEYS * 2 / 8 * 8 / 10, NKEYS * 2 / 8 * 12 / 10);
        assert_in_range(share[3], NKEYS * 5 / 8 * 9 / 10, NKEYS * 5 / 8 * 11 / 10);
        /* the same key, the same server */
        for (int k = 0; k < 100; k++) {
            pt_upstream_sel a = key_sel(&f->up, k);
            assert_int_equal(pick_once(f, &a, 100), where[k] - 1);
        }
        drop(f);
    }
}

static void test_the_ring_is_nginx_s(void **state)
{
    /* nginx's ring for "127.0.0.1:8080": the first point is crc32("127.0.0.1" \0 "8080" and
     * four zero bytes), the next crc32 of the same with the point before (little-endian) in
     * place of the zeros; computed here from zlib's crc32 over the whole bytes. */
    unsigned char bytes[] = "127.0.0.1\0"
                            "8080\0\0\0\0";
    uint32_t p0 = (uint32_t)crc32(0, bytes, 18);
    memcpy(bytes + 14,
           (unsigned char[]){(unsigned char)p0, (unsigned char)(p0 >> 8), (unsigned char)(p0 >> 16),
                             (unsigned char)(p0 >> 24)},
           4);
    uint32_t p1 = (uint32_t)crc32(0, bytes, 18);
    fixture *f = make(1, NULL, PT_BALANCE_HASH);
    snprintf(f->addresses[0], sizeof f->addresses[0], "127.0.0.1:8080");
    assert_int_equal(pt_upstream_ring_build(&f->up), 0);
    bool has0 = false, has1 = false;
    for (size_t i = 0; i < f->up.nring; i++) {
        has0 |= f->up.ring[i].hash == p0;
        has1 |= f->up.ring[i].hash == p1;
        if (i)
            assert_true(f->up.ring[i - 1].hash < f->up.ring[i].hash);
    }
    assert_true(has0 && has1);
    drop(f);
}

/* ---- random ---- */

static void test_random_shares_follow_weights(void **state)
{
    rng_state = 42;
    fixture *f = make(3, (int[]){1, 3, 6}, PT_BALANCE_RANDOM);
    int count[3] = {0};
    for (int i = 0; i < 10000; i++)
        count[pick_once(f, NULL, 100)]++;
    assert_in_range(count[0], 800, 1200);
    assert_in_range(count[1], 2700, 3300);
    assert_in_range(count[2], 5600, 6400);
    drop(f);
}

static void test_random_two_prefers_the_less_loaded(void **state)
{
    rng_state = 7;
    fixture *f = make(2, NULL, PT_BALANCE_RANDOM);
    f->up.random_two = true;
    f->conns[0] = 10;
    f->conns[1] = 1;
    for (int i = 0; i < 100; i++)
        assert_int_equal(pick_once(f, NULL, 100), 1);
    /* held connections even out over three servers */
    fixture *g = make(3, NULL, PT_BALANCE_RANDOM);
    g->up.random_two = true;
    for (int i = 0; i < 300; i++) {
        pt_upstream_sel sel = {0};
        pt_upstream_peer *p;
        assert_int_equal(pt_upstream_pick(&g->up, &sel, 100, &p), 0);
    }
    for (int i = 0; i < 3; i++)
        assert_in_range(g->conns[i], 90, 110);
    drop(g);
    drop(f);
}

/* ---- slow_start ---- */

static void test_slow_start_ramps_a_returning_server_up(void **state)
{
    fixture *f = make(2, NULL, PT_BALANCE_ROUND_ROBIN);
    f->peers[0].slow_start = 10;
    /* never down: its whole weight */
    assert_int_equal(pt_upstream_peer_weight(&f->peers[0], 100), 1000);
    /* back (its checks passed) at 100: a tenth of its weight a second */
    f->st[0].back_at = 100;
    assert_int_equal(pt_upstream_peer_weight(&f->peers[0], 101), 100);
    assert_int_equal(pt_upstream_peer_weight(&f->peers[0], 105), 500);
    assert_int_equal(pt_upstream_peer_weight(&f->peers[0], 110), 1000);
    /* and it gets that share of the requests */
    int count[2] = {0};
    for (int i = 0; i < 1100; i++)
        count[pick_once(f, NULL, 101)]++;
    assert_int_equal(count[0], 100);
    /* out passively until 200: ramps from then */
    f->st[0].down_until = 200;
    assert_int_equal(pt_upstream_peer_weight(&f->peers[0], 202), 200);
    /* a server without slow_start is whole at once */
    f->st[1].back_at = 100;
    assert_int_equal(pt_upstream_peer_weight(&f->peers[1], 101), 1000);
    drop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_round_robin_is_smooth),
        NOTHING_LEFT_TEST(test_round_robin_shares_follow_weights),
        NOTHING_LEFT_TEST(test_a_request_never_gets_a_server_twice),
        NOTHING_LEFT_TEST(test_down_servers_are_never_chosen),
        NOTHING_LEFT_TEST(test_backups_only_when_no_primary_may),
        NOTHING_LEFT_TEST(test_unavailable_servers),
        NOTHING_LEFT_TEST(test_when_every_server_failed_the_first_back_is_tried),
        NOTHING_LEFT_TEST(test_passive_failures_mark_a_server_out),
        NOTHING_LEFT_TEST(test_max_conns_bounds_a_server),
        NOTHING_LEFT_TEST(test_least_conn_takes_the_least_loaded_per_weight),
        NOTHING_LEFT_TEST(test_least_conn_equals_share_by_weight),
        NOTHING_LEFT_TEST(test_ip_hash_keeps_a_network_on_one_server),
        NOTHING_LEFT_TEST(test_consistent_hash_moves_only_a_removed_servers_keys),
        NOTHING_LEFT_TEST(test_consistent_hash_sends_a_new_servers_keys_only_to_it),
        NOTHING_LEFT_TEST(test_plain_hash_moves_most_keys),
        NOTHING_LEFT_TEST(test_hash_shares_follow_weights),
        NOTHING_LEFT_TEST(test_the_ring_is_nginx_s),
        NOTHING_LEFT_TEST(test_random_shares_follow_weights),
        NOTHING_LEFT_TEST(test_random_two_prefers_the_less_loaded),
        NOTHING_LEFT_TEST(test_slow_start_ramps_a_returning_server_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
