#include "server/filecache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/http.h"

typedef struct entry entry;
struct entry {
    pt_cached_file pub;
    const void *owner;
    uint64_t hash;
    char *key; /* request path */
    size_t keylen;
    char *file_path; /* relative to the root, no leading slash ("." for the root itself) */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    double validated_at;
    size_t cost;                /* bytes charged against the cap */
    entry *lru_prev, *lru_next; /* most recently used first */
    char etag[40];
    char storage[]; /* head, key, file path, body */
};

struct pt_filecache {
    entry **slots; /* open addressing, linear probing; NULL = empty, TOMBSTONE = deleted */
    size_t nslots, used, tombstones;
    size_t bytes, max_bytes, max_file;
    double validity;
    entry *lru_head, *lru_tail;
    pt_filecache_stats stats;
};

#define TOMBSTONE ((entry *)1)

static uint64_t hash_key(const void *owner, const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)owner;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

pt_filecache *pt_filecache_new(size_t max_bytes, size_t max_file, double validity)
{
    pt_filecache *fc = calloc(1, sizeof *fc);
    if (!fc)
        return NULL;
    fc->nslots = 64;
    fc->slots = calloc(fc->nslots, sizeof *fc->slots);
    if (!fc->slots) {
        free(fc);
        return NULL;
    }
    fc->max_bytes = max_bytes;
    fc->max_file = max_file;
    fc->validity = validity;
    return fc;
}

size_t pt_filecache_max_file(const pt_filecache *fc)
{
    return fc->max_file;
}

static size_t find_slot(const pt_filecache *fc, const void *owner, uint64_t h, const char *p,
                        size_t n)
{
    size_t mask = fc->nslots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        entry *e = fc->slots[i];
        if (!e)
            return SIZE_MAX;
        if (e != TOMBSTONE && e->hash == h && e->owner == owner && e->keylen == n &&
            memcmp(e->key, p, n) == 0)
            return i;
    }
}

static void lru_unlink(pt_filecache *fc, entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        fc->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        fc->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(pt_filecache *fc, entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = fc->lru_head;
    if (fc->lru_head)
        fc->lru_head->lru_prev = e;
    fc->lru_head = e;
    if (!fc->lru_tail)
        fc->lru_tail = e;
}

static void remove_at(pt_filecache *fc, size_t slot)
{
    entry *e = fc->slots[slot];
    fc->slots[slot] = TOMBSTONE;
    fc->tombstones++;
    fc->used--;
    fc->bytes -= e->cost;
    lru_unlink(fc, e);
    free(e);
}

static void remove_entry(pt_filecache *fc, entry *e)
{
    size_t slot = find_slot(fc, e->owner, e->hash, e->key, e->keylen);
    if (slot != SIZE_MAX)
        remove_at(fc, slot);
}

static bool same_file(const entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           e->ctime.tv_sec == st->st_ctim.tv_sec && e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

const pt_cached_file *pt_filecache_get(pt_filecache *fc, const void *owner, int root_fd,
                                       const char *path, size_t len, double now)
{
    uint64_t h = hash_key(owner, path, len);
    size_t slot = find_slot(fc, owner, h, path, len);
    if (slot == SIZE_MAX) {
        fc->stats.misses++;
        return NULL;
    }
    entry *e = fc->slots[slot];
    if (now - e->validated_at >= fc->validity || now < e->validated_at) {
        /* The stat follows the path as the client would; a changed identity means the file was
         * replaced, and the caller then opens it again confined to the root. */
        struct stat st;
        if (fstatat(root_fd, e->file_path, &st, 0) < 0 || !same_file(e, &st)) {
            remove_at(fc, slot);
            fc->stats.misses++;
            return NULL;
        }
        e->validated_at = now;
    }
    if (fc->lru_head != e) {
        lru_unlink(fc, e);
        lru_push_front(fc, e);
    }
    fc->stats.hits++;
    return &e->pub;
}

static int grow(pt_filecache *fc)
{
    size_t n = fc->nslots * 2;
    if (fc->used + 1 < fc->nslots / 2)
        n = fc->nslots; /* mostly tombstones: rehash in place */
    entry **slots = calloc(n, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < fc->nslots; i++) {
        entry *e = fc->slots[i];
        if (!e || e == TOMBSTONE)
            continue;
        size_t k = e->hash & (n - 1);
        while (slots[k])
            k = (k + 1) & (n - 1);
        slots[k] = e;
    }
    free(fc->slots);
    fc->slots = slots;
    fc->nslots = n;
    fc->tombstones = 0;
    return 0;
}

size_t pt_etag_format(const struct stat *st, char *buf)
{
    return (size_t)snprintf(buf, 40, "\"%llx-%llx\"", (unsigned long long)st->st_mtime,
                            (unsigned long long)st->st_size);
}

const pt_cached_file *pt_filecache_put(pt_filecache *fc, const void *owner, const char *path,
                                       size_t len, const char *file_path, int fd,
                                       const struct stat *st, const char *content_type, double now)
{
    if ((size_t)st->st_size > fc->max_file || !S_ISREG(st->st_mode))
        return NULL;
    size_t size = (size_t)st->st_size;
    const char *rel = file_path[0] == '/' ? file_path + 1 : file_path;
    if (!rel[0])
        rel = ".";
    size_t rel_len = strlen(rel);

    char etag[40], date[32], head[512];
    pt_etag_format(st, etag);
    pt_http_date_format(st->st_mtime, date);
    int hn = snprintf(head, sizeof head, "Content-Type: %s\r\nLast-Modified: %s\r\nETag: %s\r\n",
                      content_type, date, etag);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return NULL;

    size_t cost = sizeof(entry) + (size_t)hn + len + 1 + rel_len + 1 + size;
    if (cost > fc->max_bytes)
        return NULL;
    entry *e = malloc(cost);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    char *p = e->storage;
    memcpy(p, head, (size_t)hn);
    e->pub.head = p;
    e->pub.head_len = (size_t)hn;
    p += hn;
    memcpy(p, path, len);
    p[len] = '\0';
    e->key = p;
    e->keylen = len;
    p += len + 1;
    memcpy(p, rel, rel_len + 1);
    e->file_path = p;
    p += rel_len + 1;
    /* Read it all; a file that changes size meanwhile is not cached. */
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, p + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(e);
            return NULL;
        }
        got += (size_t)n;
    }
    e->pub.body = p;
    e->pub.size = size;
    e->pub.mtime = st->st_mtime;
    memcpy(e->etag, etag, sizeof etag);
    e->pub.etag = e->etag;
    e->owner = owner;
    e->hash = hash_key(owner, path, len);
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
    e->ctime = st->st_ctim;
    e->validated_at = now;
    e->cost = cost;

    size_t old = find_slot(fc, owner, e->hash, path, len);
    if (old != SIZE_MAX)
        remove_at(fc, old);
    while (fc->bytes + cost > fc->max_bytes && fc->lru_tail)
        remove_entry(fc, fc->lru_tail);
    if ((fc->used + fc->tombstones + 1) * 4 > fc->nslots * 3 && grow(fc) < 0) {
        free(e);
        return NULL;
    }
    size_t k = e->hash & (fc->nslots - 1);
    while (fc->slots[k] && fc->slots[k] != TOMBSTONE)
        k = (k + 1) & (fc->nslots - 1);
    if (fc->slots[k] == TOMBSTONE)
        fc->tombstones--;
    fc->slots[k] = e;
    fc->used++;
    fc->bytes += cost;
    lru_push_front(fc, e);
    return &e->pub;
}

void pt_filecache_get_stats(const pt_filecache *fc, pt_filecache_stats *out)
{
    *out = fc->stats;
    out->bytes = fc->bytes;
    out->entries = fc->used;
}

void pt_filecache_free(pt_filecache *fc)
{
    if (!fc)
        return;
    entry *e = fc->lru_head;
    while (e) {
        entry *next = e->lru_next;
        free(e);
        e = next;
    }
    free(fc->slots);
    free(fc);
}
