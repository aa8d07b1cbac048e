/*
 * A shared zone: a fixed-size table of keyed entries in memory shared by every process of a
 * server (limit_req_zone, limit_conn_zone), so all workers count against the same numbers.
 *
 * One anonymous MAP_SHARED region per zone, mapped by the process that forks the workers (the
 * master, or the single process), so each worker inherits it at the same address. Inside it: a
 * header with a process-shared robust mutex, a hash table of buckets, and the entries: 64 bytes
 * each, in a least-recently-used list. What the zone holds is fixed by its size; nothing is
 * allocated after it is made. When every entry is taken, pt_zone_insert() fails: the caller
 * decides what may be evicted (limit_req's idle entries, never limit_conn's counted ones).
 *
 * A key is stored as it is when it fits an entry (PT_ZONE_KEY_INLINE bytes), else as the first
 * bytes of its SHA-256: long keys (an API key, a long header) still have a key of their own.
 * Buckets are chosen by SipHash with a secret made with the zone, so clients cannot choose keys
 * that pile into one bucket.
 *
 * Locking: every call below but pt_zone_key_make() and the counters' atomics is made with the lock
 * held (pt_zone_lock). If a process dies holding it, the next to lock it is told (a robust
 * mutex, EOWNERDEAD); the zone then rebuilds its table and lists from the entries, so what the
 * dead process was changing can leave neither a broken list nor a lock nobody can take.
 *
 * Ownership: pt_zone_open() maps a zone with one reference; pt_zone_ref() adds one (a server
 * that took the zone over from the one it replaced, a reload) and pt_zone_close() drops one,
 * unmapping with the last. References are the process's own: a forked worker holds its copy's.
 * Threading: one thread per process; processes are what the lock orders.
 */
#ifndef PORTER_SERVER_CORE_ZONE_H
#define PORTER_SERVER_CORE_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The smallest zone (nginx's: eight pages). */
#define PT_ZONE_MIN_SIZE (32 * 1024)
/* The largest: entries are numbered with 32 bits. */
#define PT_ZONE_MAX_SIZE ((size_t)64 << 30)

/* Key bytes an entry holds; a longer key is held as its digest. */
#define PT_ZONE_KEY_INLINE 26

/* A key as the zone stores and finds it (made by pt_zone_key_make, outside the lock). */
typedef struct pt_zone_key {
    uint32_t hash;
    uint8_t len;
    bool digest;
    uint8_t bytes[PT_ZONE_KEY_INLINE];
} pt_zone_key;

/* One entry. The key part is the zone's; `last`, `excess` and `count` are the user's (zeroed
 * when the entry is made): limit_req's bucket, limit_conn's count of requests. */
typedef struct pt_zone_entry {
    uint32_t hash;
    uint32_t chain;        /* the next entry of its bucket, number + 1; 0: none */
    uint32_t newer, older; /* neighbours in the recently-used list, number + 1 */
    int64_t last;          /* limit_req: when the bucket was last updated, ms */
    int64_t excess;        /* limit_req: milli-requests above the rate */
    uint32_t count;        /* limit_req: lookups in progress; limit_conn: requests in flight */
    uint8_t flags;         /* ENTRY_* (zone.c) */
    uint8_t len;
    uint8_t key[PT_ZONE_KEY_INLINE];
} pt_zone_entry;

/* What the limits count in a zone (shared: every worker's page shows the totals). The
 * outcomes are added with atomics; `requests` under the lock. */
typedef struct pt_zone_counters {
    uint64_t requests;         /* requests counted in the zone */
    uint64_t delayed;          /* limit_req: held to the rate */
    uint64_t rejected;         /* refused with the limit's status */
    uint64_t delayed_dry_run;  /* would have been delayed (limit_req_dry_run) */
    uint64_t rejected_dry_run; /* would have been refused (*_dry_run) */
    uint64_t full;             /* refused for want of a free entry */
    uint64_t evicted;          /* entries limit_req reclaimed before they were idle */
    uint64_t active;           /* limit_conn: requests counted now */
} pt_zone_counters;

typedef struct pt_zone pt_zone;

/* Maps a zone of `size` bytes (PT_ZONE_MIN_SIZE..PT_ZONE_MAX_SIZE), empty, with its lock and its
 * hash secret. Returns 0, -EINVAL for a size out of range, or mmap's error. */
int pt_zone_open(pt_zone **out, size_t size);

/* Adds a reference; returns `z`. */
pt_zone *pt_zone_ref(pt_zone *z);

/* Drops a reference; the last unmaps. NULL: no-op. */
void pt_zone_close(pt_zone *z);

/* The size asked for, and how many entries it holds. */
size_t pt_zone_size(const pt_zone *z);
size_t pt_zone_capacity(const pt_zone *z);

/* Makes the stored form of the key `data` (`len` bytes, at least one) for `z`. */
void pt_zone_key_make(const pt_zone *z, const void *data, size_t len, pt_zone_key *out);

/* Takes the zone's lock (repairing the zone if its last holder died holding it); releases it. */
void pt_zone_lock(pt_zone *z);
void pt_zone_unlock(pt_zone *z);

/* The entry of `key`, made the most recently used; NULL if there is none. */
pt_zone_entry *pt_zone_find(pt_zone *z, const pt_zone_key *key);

/* Makes an entry for `key` (which has none), the most recently used, its user part zeroed.
 * NULL when every entry is taken. */
pt_zone_entry *pt_zone_insert(pt_zone *z, const pt_zone_key *key);

/* Removes `e`; its place is free for another key. */
void pt_zone_remove(pt_zone *z, pt_zone_entry *e);

/* The least recently used entry, or NULL if the zone is empty. */
pt_zone_entry *pt_zone_oldest(pt_zone *z);

/* Entries in use. */
size_t pt_zone_used(const pt_zone *z);

/* A copy of the counters and the entries in use, taken under the lock. */
void pt_zone_stats(pt_zone *z, pt_zone_counters *counters, size_t *used);

/* The zone's counters (in the shared region). */
pt_zone_counters *pt_zone_counters_of(pt_zone *z);

/* Adds one to a counter from outside the lock. */
static inline void pt_zone_count(uint64_t *counter)
{
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

#endif
