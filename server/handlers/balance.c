/*
 * Choosing a server of an upstream (upstream.h): nginx's balancing methods, each after its
 * ngx_http_upstream_*_module, over the servers a request may use now.
 *
 * Round-robin is nginx's smooth weighted round-robin: each turn every candidate gains its
 * weight, the one ahead is chosen and pays the total back, so weights 5, 1, 1 give a a b a c a
 * a rather than a a a a a b c. least_conn takes the fewest connections per unit of weight
 * (round-robin between equals). ip_hash and hash draw a server by weight from the hash of the
 * client's network or of the key, and draw again (at most PT_UPSTREAM_MAX_DRAWS times) while
 * the one drawn may not take the request; then round-robin. `hash ... consistent` places
 * PT_UPSTREAM_RING_POINTS points per unit of weight of each server on a ring of CRC-32 values
 * (ketama's, with nginx's hashes: a ring the same as nginx's for the same servers), and a key
 * goes to the first point at or after its own hash, or the next server on the ring when that
 * one may not take it: a server added or removed moves only the keys of its own points. random
 * draws by weight; `two` draws two and takes the one with fewer connections per weight.
 *
 * Weights here are in thousandths, so slow_start can ramp a server up in fine steps; for
 * servers that are not ramping, scaling every weight alike changes no choice.
 *
 * Shared state is read with relaxed atomics: a choice made on a count one connection old is
 * as good as any, and the request path takes no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zlib.h>

#include "server/handlers/upstream.h"

/* What keeps a server from taking a request now, as a bit of `why`. */
enum { MAY = 0, SKIPPED = 1, OUT = 2, FULL = 4 };

static uint32_t load32(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static double load_time(const double *p)
{
    double v;
    __atomic_load(p, &v, __ATOMIC_RELAXED);
    return v;
}

uint32_t pt_upstream_peer_conns(const pt_upstream_peer *p)
{
    return load32(p->conns);
}

uint32_t pt_upstream_key_hash(const void *key, size_t len)
{
    return (uint32_t)crc32(0L, key, (uInt)len);
}

/* Whether `p` may take a request of `sel` now: MAY, or why not. An upstream of one server is
 * never out (there is no other to go to). */
static int state_of(const pt_upstream *up, const pt_upstream_sel *sel, size_t i, double now)
{
    const pt_upstream_peer *p = &up->peers[i];
    if ((sel->tried >> i) & 1 || p->down || load32(&p->st->unhealthy))
        return SKIPPED;
    if (up->npeers > 1 && p->max_fails && load_time(&p->st->down_until) > now)
        return OUT;
    if (p->max_conns && load32(p->conns) >= p->max_conns)
        return FULL;
    return MAY;
}

uint64_t pt_upstream_unavailable(const pt_upstream *up)
{
    uint64_t m = 0;
    for (size_t i = 0; i < up->npeers; i++)
        if (up->peers[i].down || load32(&up->peers[i].st->unhealthy))
            m |= UINT64_C(1) << i;
    return m;
}

int pt_upstream_peer_weight(const pt_upstream_peer *p, double now)
{
    int w = p->weight * 1000;
    if (p->slow_start <= 0)
        return w;
    double back = load_time(&p->st->back_at), until = load_time(&p->st->down_until);
    if (until > back)
        back = until;
    if (back <= 0 || now < back || now >= back + p->slow_start)
        return w;
    int r = (int)(w * ((now - back) / p->slow_start));
    return r < 1 ? 1 : r;
}

/* Counts a connection to peer `i` and marks it tried. False when max_conns was reached
 * meanwhile (by another process). */
static bool take(pt_upstream *up, pt_upstream_sel *sel, size_t i)
{
    pt_upstream_peer *p = &up->peers[i];
    uint32_t n = __atomic_add_fetch(p->conns, 1, __ATOMIC_RELAXED);
    if (p->max_conns && n > p->max_conns) {
        __atomic_sub_fetch(p->conns, 1, __ATOMIC_RELAXED);
        return false;
    }
    __atomic_store_n(p->mine, *p->mine + 1, __ATOMIC_RELAXED);
    sel->tried |= UINT64_C(1) << i;
    return true;
}

int pt_upstream_take(pt_upstream *up, pt_upstream_sel *sel, pt_upstream_peer *p)
{
    return take(up, sel, (size_t)(p - up->peers)) ? 0 : -EBUSY;
}

/* ---- the random draws ---- */

/* xorshift64*: this process's own sequence (seeded once per process, after the fork). */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    if (!rng_state &&
        (getrandom(&rng_state, sizeof rng_state, 0) != sizeof rng_state || !rng_state))
        rng_state = UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)(uintptr_t)&rng_state;
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

/* ---- round-robin and least_conn (over the primary servers, or the backups) ---- */

static int round_robin(pt_upstream *up, const pt_upstream_sel *sel, double now, bool backup,
                       unsigned *why)
{
    int best = -1, total = 0;
    for (size_t i = 0; i < up->npeers; i++) {
        pt_upstream_peer *p = &up->peers[i];
        if (p->backup != backup)
            continue;
        int s = state_of(up, sel, i, now);
        if (s != MAY) {
            *why |= (unsigned)s;
            continue;
        }
        int w = pt_upstream_peer_weight(p, now);
        p->current_weight += w;
        total += w;
        if (best < 0 || p->current_weight > up->peers[best].current_weight)
            best = (int)i;
    }
    if (best >= 0)
        up->peers[best].current_weight -= total;
    return best;
}

static int least_conn(pt_upstream *up, const pt_upstream_sel *sel, double now, bool backup,
                      unsigned *why)
{
    int best = -1;
    uint64_t bc = 0, bw = 1;
    bool many = false;
    for (size_t i = 0; i < up->npeers; i++) {
        pt_upstream_peer *p = &up->peers[i];
        if (p->backup != backup)
            continue;
        int s = state_of(up, sel, i, now);
        if (s != MAY) {
            *why |= (unsigned)s;
            continue;
        }
        uint64_t c = load32(p->conns), w = (uint64_t)pt_upstream_peer_weight(p, now);
        if (best < 0 || c * bw < bc * w) {
            best = (int)i;
            bc = c;
            bw = w;
            many = false;
        } else if (c * bw == bc * w) {
            many = true;
        }
    }
    if (best < 0 || !many)
        return best;
    /* Several as loaded as the least: round-robin between them. */
    int pick = -1, total = 0;
    for (size_t i = (size_t)best; i < up->npeers; i++) {
        pt_upstream_peer *p = &up->peers[i];
        if (p->backup != backup || state_of(up, sel, i, now) != MAY)
            continue;
        uint64_t c = load32(p->conns), w = (uint64_t)pt_upstream_peer_weight(p, now);
        if (c * bw != bc * w)
            continue;
        p->current_weight += (int)w;
        total += (int)w;
        if (pick < 0 || p->current_weight > up->peers[pick].current_weight)
            pick = (int)i;
    }
    if (pick < 0)
        return best;
    up->peers[pick].current_weight -= total;
    return pick;
}

typedef int (*tier_fn)(pt_upstream *up, const pt_upstream_sel *sel, double now, bool backup,
                       unsigned *why);

/* The primary servers first, then the backups. */
static int tiers(pt_upstream *up, const pt_upstream_sel *sel, double now, tier_fn fn, unsigned *why)
{
    int i = fn(up, sel, now, false, why);
    return i >= 0 ? i : fn(up, sel, now, true, why);
}

/* ---- the hashing methods and random ---- */

/* The server whose share of the total weight holds `w` (a value below it). */
static size_t by_weight(const pt_upstream *up, uint64_t w)
{
    size_t i = 0;
    while (i + 1 < up->npeers && w >= (uint64_t)up->peers[i].weight) {
        w -= (uint64_t)up->peers[i].weight;
        i++;
    }
    return i;
}

static uint64_t total_weight(const pt_upstream *up)
{
    uint64_t t = 0;
    for (size_t i = 0; i < up->npeers; i++)
        t += (uint64_t)up->peers[i].weight;
    return t;
}

/* ip_hash: the client's network (its address's first three bytes, or all of an IPv6 one),
 * hashed as nginx does, each draw going on from the last. -1: draws used up. */
static int ip_hash(pt_upstream *up, pt_upstream_sel *sel, double now, unsigned *why)
{
    uint64_t total = total_weight(up);
    uint32_t hash = sel->hash;
    while (sel->draws++ < PT_UPSTREAM_MAX_DRAWS) {
        for (size_t k = 0; k < sel->addrlen; k++)
            hash = (hash * 113 + sel->addr[k]) % 6271;
        size_t i = by_weight(up, hash % total);
        int s = state_of(up, sel, i, now);
        if (s == MAY) {
            sel->hash = hash;
            return (int)i;
        }
        *why |= (unsigned)s;
    }
    return -1;
}

/* hash KEY: the key's hash, then a rehash per draw. -1: draws used up. */
static int key_hash(pt_upstream *up, pt_upstream_sel *sel, double now, unsigned *why)
{
    uint64_t total = total_weight(up);
    while (sel->draws++ < PT_UPSTREAM_MAX_DRAWS) {
        uint32_t h = sel->hash;
        if (sel->rehash) {
            unsigned char n[4] = {(unsigned char)sel->rehash, (unsigned char)(sel->rehash >> 8),
                                  (unsigned char)(sel->rehash >> 16),
                                  (unsigned char)(sel->rehash >> 24)};
            h = (uint32_t)crc32(h, n, sizeof n);
        }
        sel->rehash++;
        size_t i = by_weight(up, h % total);
        int s = state_of(up, sel, i, now);
        if (s == MAY)
            return (int)i;
        *why |= (unsigned)s;
    }
    return -1;
}

/* hash KEY consistent: the ring from the key's point on, each server once. -1: none may. */
static int ring_walk(pt_upstream *up, pt_upstream_sel *sel, double now, unsigned *why)
{
    uint64_t seen = 0, all = up->npeers >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << up->npeers) - 1;
    for (size_t k = 0; k < up->nring && seen != all; k++, sel->point++) {
        uint32_t i = up->ring[sel->point % up->nring].peer;
        if ((seen >> i) & 1)
            continue;
        seen |= UINT64_C(1) << i;
        int s = state_of(up, sel, i, now);
        if (s == MAY)
            return (int)i;
        *why |= (unsigned)s;
    }
    return -1;
}

static int random_draw(pt_upstream *up, pt_upstream_sel *sel, double now, unsigned *why)
{
    uint64_t total = total_weight(up);
    int first = -1;
    while (sel->draws++ < PT_UPSTREAM_MAX_DRAWS) {
        size_t i = by_weight(up, rng_next() % total);
        if ((int)i == first)
            continue;
        int s = state_of(up, sel, i, now);
        if (s != MAY) {
            *why |= (unsigned)s;
            continue;
        }
        if (!up->random_two)
            return (int)i;
        if (first < 0) {
            first = (int)i;
            continue;
        }
        /* the fewer connections per unit of weight */
        const pt_upstream_peer *a = &up->peers[first], *b = &up->peers[i];
        uint64_t ca = load32(a->conns), cb = load32(b->conns);
        return cb * (uint64_t)a->weight < ca * (uint64_t)b->weight ? (int)i : first;
    }
    return first;
}

/* ---- the choice ---- */

/* None may take the request: wait when some are only full; else try the one out of those
 * that failed that comes back first. */
static int nothing_may(pt_upstream *up, pt_upstream_sel *sel, double now, unsigned why,
                       pt_upstream_peer **out)
{
    if (why & FULL)
        return -EBUSY;
    int soonest = -1;
    double until = 0;
    for (size_t i = 0; (why & OUT) && i < up->npeers; i++) {
        if (state_of(up, sel, i, now) != OUT)
            continue;
        double u = load_time(&up->peers[i].st->down_until);
        if (soonest < 0 || u < until) {
            soonest = (int)i;
            until = u;
        }
    }
    if (soonest < 0)
        return -ENOENT;
    if (!take(up, sel, (size_t)soonest))
        return -EBUSY;
    *out = &up->peers[soonest];
    return 0;
}

int pt_upstream_pick(pt_upstream *up, pt_upstream_sel *sel, double now, pt_upstream_peer **out)
{
    *out = NULL;
    unsigned why = 0;
    int i = -1;
    switch (up->balance) {
    case PT_BALANCE_LEAST_CONN:
        i = tiers(up, sel, now, least_conn, &why);
        break;
    case PT_BALANCE_IP_HASH:
        if (sel->addrlen && up->npeers > 1)
            i = ip_hash(up, sel, now, &why);
        break;
    case PT_BALANCE_HASH:
        if (sel->keyed && up->nring)
            i = ring_walk(up, sel, now, &why);
        else if (sel->keyed && up->npeers > 1)
            i = key_hash(up, sel, now, &why);
        break;
    case PT_BALANCE_RANDOM:
        if (up->npeers > 1)
            i = random_draw(up, sel, now, &why);
        break;
    default:
        break;
    }
    /* Round-robin: the method itself, and where a hashing one has no key or drew in vain
     * (a ring walked round has seen every server: round-robin would find none either). */
    if (i < 0 && !(up->balance == PT_BALANCE_HASH && sel->keyed && up->nring))
        i = tiers(up, sel, now, round_robin, &why);
    if (i < 0)
        return nothing_may(up, sel, now, why, out);
    if (!take(up, sel, (size_t)i))
        return -EBUSY;
    *out = &up->peers[i];
    return 0;
}

/* ---- the ring ---- */

static int point_cmp(const void *a, const void *b)
{
    const pt_ring_point *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* A server's place on the ring: crc32(HOST \0 PORT), then a point per crc32 of that and the
 * point before (nginx's, compatible with Cache::Memcached::Fast). */
static uint32_t ring_base(const char *address)
{
    const char *host = address, *port = "";
    size_t host_len = strlen(address), port_len = 0;
    if (strncmp(address, "unix:", 5) == 0) {
        host += 5;
        host_len -= 5;
    } else {
        const char *colon = strrchr(address, ':');
        if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
            host_len = (size_t)(colon - address);
            port = colon + 1;
            port_len = strlen(port);
        }
    }
    uLong h = crc32(0L, (const Bytef *)host, (uInt)host_len);
    h = crc32(h, (const Bytef *)"", 1);
    return (uint32_t)crc32(h, (const Bytef *)port, (uInt)port_len);
}

int pt_upstream_ring_build(pt_upstream *up)
{
    size_t n = 0;
    for (size_t i = 0; i < up->npeers; i++)
        n += (size_t)up->peers[i].weight * PT_UPSTREAM_RING_POINTS;
    pt_ring_point *r = calloc(n ? n : 1, sizeof *r);
    if (!r)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < up->npeers; i++) {
        uint32_t base = ring_base(up->peers[i].address), prev = 0;
        size_t points = (size_t)up->peers[i].weight * PT_UPSTREAM_RING_POINTS;
        for (size_t j = 0; j < points; j++) {
            unsigned char b[4] = {(unsigned char)prev, (unsigned char)(prev >> 8),
                                  (unsigned char)(prev >> 16), (unsigned char)(prev >> 24)};
            uint32_t h = (uint32_t)crc32(base, b, sizeof b);
            r[k++] = (pt_ring_point){h, (uint32_t)i};
            prev = h;
        }
    }
    qsort(r, k, sizeof *r, point_cmp);
    /* Two servers on one point: the first keeps it. */
    size_t m = 0;
    for (size_t j = 0; j < k; j++)
        if (m == 0 || r[m - 1].hash != r[j].hash)
            r[m++] = r[j];
    free(up->ring);
    up->ring = r;
    up->nring = m;
    return 0;
}

/* The first point at or after `hash` (the ring's end wraps to its start). */
uint32_t pt_upstream_ring_find(const pt_upstream *up, uint32_t hash)
{
    size_t lo = 0, hi = up->nring;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (up->ring[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)(lo % (up->nring ? up->nring : 1));
}
