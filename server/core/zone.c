/*
 * Shared zones (zone.h): the region, its lock, the hash table and the recently-used list.
 *
 * The region: the header (the lock, the hash secret, the lists' ends, the counters), then the
 * buckets (a power of two of them, between half as many as the entries and as many), then the
 * entries. Entries are numbered from 0 and linked by number + 1 (0 ends a list), never by
 * pointer, so the links mean the same in every process. Entries are handed out from the free
 * list, else from those never used yet (`fresh` onwards, whose pages the kernel has not even
 * given yet).
 *
 * An entry's ENTRY_USED flag is the truth the rest is built from: set once its key is written,
 * cleared before it is unlinked. After a holder of the lock died, rebuild() makes the buckets,
 * the recently-used list and the free list again from the flags alone.
 */
#include "server/core/zone.h"

#include <errno.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "server/core/log.h"

#define ENTRY_USED 1
#define ENTRY_DIGEST 2

_Static_assert(sizeof(pt_zone_entry) == 64, "an entry is one cache line");

typedef struct shared {
    pthread_mutex_t lock;
    uint64_t k0, k1; /* SipHash's key */
    uint32_t nbuckets, nentries;
    uint32_t used;
    uint32_t fresh;          /* entries from here on were never handed out */
    uint32_t free;           /* freed entries, through `chain`; number + 1 */
    uint32_t newest, oldest; /* the recently-used list's ends; number + 1 */
    pt_zone_counters counters;
} shared;

/* Where the buckets start: the header rounded up to a cache line. */
#define HEADER_SIZE ((sizeof(shared) + 63) & ~(size_t)63)

struct pt_zone {
    int refs;
    size_t size;
    shared *sh;
    uint32_t *buckets;
    pt_zone_entry *entries;
};

/* ---- the hash ---- */

/* SipHash-2-4 (Aumasson and Bernstein): a keyed hash whose collisions cannot be found without
 * the key. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t siphash(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len)
{
    uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k0, v1 = UINT64_C(0x646f72616e646f6d) ^ k1;
    uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k0, v3 = UINT64_C(0x7465646279746573) ^ k1;
    uint64_t b = (uint64_t)len << 56;
    const uint8_t *end = in + (len & ~(size_t)7);
    for (; in != end; in += 8) {
        uint64_t m = 0;
        for (int i = 0; i < 8; i++)
            m |= (uint64_t)in[i] << (8 * i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- making and dropping ---- */

int pt_zone_open(pt_zone **out, size_t size)
{
    *out = NULL;
    if (size < PT_ZONE_MIN_SIZE || size > PT_ZONE_MAX_SIZE)
        return -EINVAL;
    pt_zone *z = calloc(1, sizeof *z);
    if (!z)
        return -ENOMEM;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        int e = -errno;
        free(z);
        return e;
    }
    shared *sh = p;
    /* about 68 bytes an entry: 64 of its own, 4 of a bucket */
    size_t room = size - HEADER_SIZE, n = room / (sizeof(pt_zone_entry) + sizeof(uint32_t));
    size_t nb = 1;
    while (nb * 2 <= n)
        nb *= 2;
    size_t buckets_size = (nb * sizeof(uint32_t) + 63) & ~(size_t)63;
    sh->nbuckets = (uint32_t)nb;
    sh->nentries = (uint32_t)((room - buckets_size) / sizeof(pt_zone_entry));
    if (getrandom(&sh->k0, sizeof sh->k0, 0) != sizeof sh->k0 ||
        getrandom(&sh->k1, sizeof sh->k1, 0) != sizeof sh->k1) {
        /* no entropy yet (early boot): the clock and the address still differ per run */
        sh->k0 ^= (uint64_t)(uintptr_t)p * UINT64_C(0x9e3779b97f4a7c15);
        sh->k1 ^= (uint64_t)time(NULL);
    }
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (r == 0)
        r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0)
        r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (r == 0)
        r = pthread_mutex_init(&sh->lock, &a);
    pthread_mutexattr_destroy(&a);
    if (r != 0) {
        munmap(p, size);
        free(z);
        return -r;
    }
    z->refs = 1;
    z->size = size;
    z->sh = sh;
    z->buckets = (uint32_t *)(void *)((char *)p + HEADER_SIZE);
    z->entries = (pt_zone_entry *)(void *)((char *)p + HEADER_SIZE + buckets_size);
    *out = z;
    return 0;
}

pt_zone *pt_zone_ref(pt_zone *z)
{
    z->refs++;
    return z;
}

void pt_zone_close(pt_zone *z)
{
    if (!z || --z->refs > 0)
        return;
    /* The mutex is not destroyed: other processes may still use their mapping of it. */
    munmap(z->sh, z->size);
    free(z);
}

size_t pt_zone_size(const pt_zone *z)
{
    return z->size;
}

size_t pt_zone_capacity(const pt_zone *z)
{
    return z->sh->nentries;
}

size_t pt_zone_used(const pt_zone *z)
{
    return z->sh->used;
}

pt_zone_counters *pt_zone_counters_of(pt_zone *z)
{
    return &z->sh->counters;
}

void pt_zone_stats(pt_zone *z, pt_zone_counters *counters, size_t *used)
{
    pt_zone_lock(z);
    *counters = z->sh->counters;
    *used = z->sh->used;
    pt_zone_unlock(z);
}

void pt_zone_key_make(const pt_zone *z, const void *data, size_t len, pt_zone_key *out)
{
    out->hash = (uint32_t)siphash(z->sh->k0, z->sh->k1, data, len);
    if (len <= PT_ZONE_KEY_INLINE) {
        out->len = (uint8_t)len;
        out->digest = false;
        memcpy(out->bytes, data, len);
        return;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    out->len = PT_ZONE_KEY_INLINE;
    out->digest = true;
    memcpy(out->bytes, md, PT_ZONE_KEY_INLINE);
}

/* ---- the lists ---- */

static pt_zone_entry *at(pt_zone *z, uint32_t ref)
{
    return ref ? &z->entries[ref - 1] : NULL;
}

static uint32_t ref_of(pt_zone *z, const pt_zone_entry *e)
{
    return (uint32_t)(e - z->entries) + 1;
}

/* Takes `e` out of the recently-used list. */
static void lru_unlink(pt_zone *z, pt_zone_entry *e)
{
    shared *sh = z->sh;
    if (e->newer)
        at(z, e->newer)->older = e->older;
    else
        sh->newest = e->older;
    if (e->older)
        at(z, e->older)->newer = e->newer;
    else
        sh->oldest = e->newer;
    e->newer = e->older = 0;
}

/* Puts `e` (not in the list) at its newest end. */
static void lru_push(pt_zone *z, pt_zone_entry *e)
{
    shared *sh = z->sh;
    uint32_t ref = ref_of(z, e);
    e->newer = 0;
    e->older = sh->newest;
    if (sh->newest)
        at(z, sh->newest)->newer = ref;
    else
        sh->oldest = ref;
    sh->newest = ref;
}

/* Puts `e` (not in the list) at its oldest end. */
static void lru_append(pt_zone *z, pt_zone_entry *e)
{
    shared *sh = z->sh;
    uint32_t ref = ref_of(z, e);
    e->older = 0;
    e->newer = sh->oldest;
    if (sh->oldest)
        at(z, sh->oldest)->older = ref;
    else
        sh->newest = ref;
    sh->oldest = ref;
}

static uint32_t *bucket_of(pt_zone *z, uint32_t hash)
{
    return &z->buckets[hash & (z->sh->nbuckets - 1)];
}

/* After the lock's holder died: the buckets, the list and the free list again, from the
 * entries that say they are used. The list's order is lost (the entries' numbers stand for
 * it); the counts the dead process held are not known, and stay. */
static void rebuild(pt_zone *z)
{
    shared *sh = z->sh;
    memset(z->buckets, 0, sh->nbuckets * sizeof *z->buckets);
    sh->newest = sh->oldest = sh->free = 0;
    sh->used = 0;
    for (uint32_t i = sh->fresh; i-- > 0;) {
        pt_zone_entry *e = &z->entries[i];
        if (!(e->flags & ENTRY_USED)) {
            e->chain = sh->free;
            sh->free = i + 1;
            continue;
        }
        uint32_t *b = bucket_of(z, e->hash);
        e->chain = *b;
        *b = i + 1;
        lru_append(z, e);
        sh->used++;
    }
}

void pt_zone_lock(pt_zone *z)
{
    int r = pthread_mutex_lock(&z->sh->lock);
    if (r == EOWNERDEAD) {
        pt_log_error(PT_LOG_ERROR, "a process died holding a zone's lock: the zone is rebuilt");
        rebuild(z);
        pthread_mutex_consistent(&z->sh->lock);
        return;
    }
    if (r != 0) {
        /* Not recoverable (ENOTRECOVERABLE is never left by porter): nothing may go on. */
        fprintf(stderr, "porter: cannot lock a zone: %s (%s:%d)\n", strerror(r), __FILE__,
                __LINE__);
        abort();
    }
}

void pt_zone_unlock(pt_zone *z)
{
    pthread_mutex_unlock(&z->sh->lock);
}

static bool same_key(const pt_zone_entry *e, const pt_zone_key *k)
{
    return e->hash == k->hash && e->len == k->len &&
           ((e->flags & ENTRY_DIGEST) != 0) == k->digest && memcmp(e->key, k->bytes, k->len) == 0;
}

pt_zone_entry *pt_zone_find(pt_zone *z, const pt_zone_key *key)
{
    for (pt_zone_entry *e = at(z, *bucket_of(z, key->hash)); e; e = at(z, e->chain)) {
        if (!same_key(e, key))
            continue;
        if (z->sh->newest != ref_of(z, e)) {
            lru_unlink(z, e);
            lru_push(z, e);
        }
        return e;
    }
    return NULL;
}

pt_zone_entry *pt_zone_insert(pt_zone *z, const pt_zone_key *key)
{
    shared *sh = z->sh;
    pt_zone_entry *e;
    if (sh->free) {
        e = at(z, sh->free);
        sh->free = e->chain;
    } else if (sh->fresh < sh->nentries) {
        e = &z->entries[sh->fresh++];
    } else {
        return NULL;
    }
    memset(e, 0, sizeof *e);
    e->hash = key->hash;
    e->len = key->len;
    memcpy(e->key, key->bytes, key->len);
    e->flags = ENTRY_USED | (key->digest ? ENTRY_DIGEST : 0);
    uint32_t *b = bucket_of(z, key->hash);
    e->chain = *b;
    *b = ref_of(z, e);
    lru_push(z, e);
    sh->used++;
    return e;
}

void pt_zone_remove(pt_zone *z, pt_zone_entry *e)
{
    shared *sh = z->sh;
    e->flags = 0;
    uint32_t ref = ref_of(z, e);
    for (uint32_t *p = bucket_of(z, e->hash); *p; p = &at(z, *p)->chain) {
        if (*p == ref) {
            *p = e->chain;
            break;
        }
    }
    lru_unlink(z, e);
    e->chain = sh->free;
    sh->free = ref;
    sh->used--;
}

pt_zone_entry *pt_zone_oldest(pt_zone *z)
{
    return at(z, z->sh->oldest);
}
