#include "server/handlers/filecache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/core/compress.h"
#include "server/core/request.h"

/* KIND_COPY: a compressed copy of a file's body, kept for the variant store. */
enum kind { KIND_MEMORY, KIND_OPEN, KIND_ABSENT, KIND_COPY };

/* The memory entries and the copies share one budget of bytes and one LRU list; the others
 * (fds, misses) are bounded in number: two LRU lists. */
enum { LIST_MEMORY, LIST_META };

/* A copy's key in the table, under the store as its owner: the file's identity (dev, ino,
 * size, mtime_ns), which alone is hashed so that the copies of one file share a probe chain,
 * then the coding and the level. */
enum { COPY_ID_LEN = 32, COPY_KEY_LEN = 40 };

/* A body of up to this size may be kept compressed, even where max_file is smaller (see
 * copy_limit). */
#define COPY_MIN_LIMIT ((size_t)1 << 20)

typedef struct entry entry;
struct entry {
    pt_cached_file pub;
    const void *owner;
    int variant;
    enum kind kind;
    uint64_t hash;
    char *key; /* request path */
    size_t keylen;
    char *file_path; /* relative to the root, no leading slash ("." for the root itself) */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    double validated_at, used_at;
    bool dead;                  /* its fd was taken: dropped at the next lookup */
    bool detached;              /* out of the cache but held: freed at its last release */
    unsigned holds;             /* queued responses sending its body (pt_filecache_hold) */
    size_t cost;                /* bytes charged against the memory cap */
    entry *lru_prev, *lru_next; /* most recently used first */
    pt_head_memo head_memo;
    char storage[]; /* head, key, file path, content type, body */
};

typedef struct lru {
    entry *head, *tail;
    size_t n;
} lru;

struct pt_filecache {
    entry **slots; /* open addressing, linear probing; NULL = empty, TOMBSTONE = deleted */
    size_t nslots, used, tombstones;
    size_t bytes; /* memory entries and copies */
    pt_filecache_options o;
    lru lists[2];
    size_t open_fds, absent;
    unsigned long long hits, misses;
    pt_variant_store store; /* its entries are KIND_COPY, the store their owner */
    size_t copies, copy_bytes;
    unsigned long long copy_hits, copy_misses;
};

#define TOMBSTONE ((entry *)1)

/* Eight bytes a step: a path is hashed on every request. */
static uint64_t hash_key(const void *owner, int variant, const char *p, size_t n)
{
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    uint64_t h =
        (1469598103934665603ull ^ (uint64_t)(uintptr_t)owner ^ ((uint64_t)variant << 56) ^ n) * k;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * k;
        h ^= h >> 32;
    }
    if (n) { /* 1-7 bytes, read as two overlapping halves (or three bytes) */
        uint64_t w;
        if (n >= 4) {
            uint32_t lo, hi;
            memcpy(&lo, p, 4);
            memcpy(&hi, p + n - 4, 4);
            w = (uint64_t)lo | (uint64_t)hi << 32;
        } else {
            w = (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n / 2] << 8 |
                (uint64_t)(unsigned char)p[n - 1] << 16;
        }
        h = (h ^ w) * k;
    }
    return h ^ (h >> 29);
}

static const pt_variant_store store_methods;

pt_filecache *pt_filecache_new(const pt_filecache_options *o)
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
    fc->o = *o;
    if (fc->o.max_bytes == 0)
        fc->o.max_file = 0;
    fc->store = store_methods;
    return fc;
}

size_t pt_filecache_max_file(const pt_filecache *fc)
{
    return fc->o.max_file;
}

bool pt_filecache_keeps_open(const pt_filecache *fc)
{
    return fc->o.max_open > 0;
}

static size_t find_slot(const pt_filecache *fc, const void *owner, int variant, uint64_t h,
                        const char *p, size_t n)
{
    size_t mask = fc->nslots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        entry *e = fc->slots[i];
        if (!e)
            return SIZE_MAX;
        if (e != TOMBSTONE && e->hash == h && e->owner == owner && e->variant == variant &&
            e->keylen == n && memcmp(e->key, p, n) == 0)
            return i;
    }
}

static bool in_memory(const entry *e)
{
    return e->kind == KIND_MEMORY || e->kind == KIND_COPY;
}

static lru *list_of(pt_filecache *fc, const entry *e)
{
    return &fc->lists[in_memory(e) ? LIST_MEMORY : LIST_META];
}

static void lru_unlink(lru *l, entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        l->head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        l->tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
    l->n--;
}

static void lru_push_front(lru *l, entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = l->head;
    if (l->head)
        l->head->lru_prev = e;
    l->head = e;
    if (!l->tail)
        l->tail = e;
    l->n++;
}

static void entry_destroy(entry *e)
{
    free(e->head_memo.buf);
    free(e);
}

static void entry_free(pt_filecache *fc, entry *e)
{
    if (e->kind == KIND_OPEN) {
        if (e->pub.fd >= 0) {
            close(e->pub.fd);
            fc->open_fds--;
        }
    } else if (e->kind == KIND_ABSENT) {
        fc->absent--;
    } else {
        fc->bytes -= e->cost;
        if (e->kind == KIND_COPY) {
            fc->copies--;
            fc->copy_bytes -= e->cost;
        }
        if (e->holds) {
            e->detached = true; /* a response still sends its body */
            return;
        }
    }
    entry_destroy(e);
}

void pt_filecache_hold(const void *cf)
{
    ((entry *)cf)->holds++; /* pub is the first member */
}

void pt_filecache_release(void *cf)
{
    entry *e = cf;
    if (--e->holds == 0 && e->detached)
        entry_destroy(e);
}

static void remove_at(pt_filecache *fc, size_t slot)
{
    entry *e = fc->slots[slot];
    fc->slots[slot] = TOMBSTONE;
    fc->tombstones++;
    fc->used--;
    lru_unlink(list_of(fc, e), e);
    entry_free(fc, e);
}

static void remove_entry(pt_filecache *fc, entry *e)
{
    size_t slot = find_slot(fc, e->owner, e->variant, e->hash, e->key, e->keylen);
    if (slot != SIZE_MAX)
        remove_at(fc, slot);
}

static int64_t ns_of(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void copy_key(const pt_variant_key *vk, char k[COPY_KEY_LEN])
{
    uint64_t id[4] = {(uint64_t)vk->dev, (uint64_t)vk->ino, vk->size, (uint64_t)vk->mtime_ns};
    int32_t how[2] = {vk->encoding, vk->level};
    memcpy(k, id, COPY_ID_LEN);
    memcpy(k + COPY_ID_LEN, how, sizeof how);
}

/* The identity the copies of the file of `e` (a memory or open entry) are keyed by. */
static void file_id(const entry *e, char k[COPY_KEY_LEN])
{
    pt_variant_key vk = {
        .dev = e->dev, .ino = e->ino, .size = (uint64_t)e->size, .mtime_ns = ns_of(e->mtime)};
    copy_key(&vk, k);
}

static bool has_file(const entry *e)
{
    return e->kind == KIND_MEMORY || e->kind == KIND_OPEN;
}

/* Drops the copies of the file whose identity starts `id`: it changed or went away, so no key
 * reaches them any more, and they should not hold memory until the LRU gets to them. They
 * share the probe chain of the identity's hash: walk it to its first empty slot. */
static void drop_copies(pt_filecache *fc, const char id[COPY_KEY_LEN])
{
    if (fc->copies == 0)
        return;
    uint64_t h = hash_key(&fc->store, 0, id, COPY_ID_LEN);
    size_t mask = fc->nslots - 1;
    for (size_t i = h & mask; fc->slots[i]; i = (i + 1) & mask) {
        entry *e = fc->slots[i];
        if (e != TOMBSTONE && e->kind == KIND_COPY && e->hash == h &&
            memcmp(e->key, id, COPY_ID_LEN) == 0)
            remove_at(fc, i); /* a tombstone: the walk goes on */
    }
}

static bool same_file(const entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           e->ctime.tv_sec == st->st_ctim.tv_sec && e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* Whether the entry still says the truth about its file. */
static bool still_valid(const entry *e, int root_fd)
{
    /* The stat follows the path as the client would; a changed identity means the file was
     * replaced, and the caller then opens it again confined to the root. */
    struct stat st;
    if (fstatat(root_fd, e->file_path, &st, 0) < 0)
        return e->kind == KIND_ABSENT && (errno == ENOENT || errno == ENOTDIR);
    return e->kind != KIND_ABSENT && same_file(e, &st);
}

const pt_cached_file *pt_filecache_get(pt_filecache *fc, const void *owner, int variant,
                                       int root_fd, const char *path, size_t len, double now)
{
    uint64_t h = hash_key(owner, variant, path, len);
    size_t slot = find_slot(fc, owner, variant, h, path, len);
    if (slot == SIZE_MAX) {
        fc->misses++;
        return NULL;
    }
    entry *e = fc->slots[slot];
    if (e->dead || now - e->validated_at >= fc->o.validity || now < e->validated_at) {
        if (e->dead || !still_valid(e, root_fd)) {
            /* a taken fd is no change of the file */
            bool changed = !e->dead && has_file(e);
            char id[COPY_KEY_LEN];
            if (changed)
                file_id(e, id);
            remove_at(fc, slot);
            if (changed)
                drop_copies(fc, id);
            fc->misses++;
            return NULL;
        }
        e->validated_at = now;
    }
    e->used_at = now;
    lru *l = list_of(fc, e);
    if (l->head != e) {
        lru_unlink(l, e);
        lru_push_front(l, e);
    }
    fc->hits++;
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

int pt_filecache_take_fd(pt_filecache *fc, const pt_cached_file *cf)
{
    if (cf->transient || cf->absent || cf->fd < 0)
        return -1;
    entry *e = (entry *)cf; /* pub is the first member */
    if (e->kind != KIND_OPEN)
        return -1;
    int fd = e->pub.fd;
    e->pub.fd = -1;
    e->dead = true;
    fc->open_fds--;
    return fd;
}

void pt_filecache_sweep(pt_filecache *fc, double now)
{
    lru *l = &fc->lists[LIST_META];
    while (l->tail && l->tail->kind == KIND_OPEN && now - l->tail->used_at >= fc->o.inactive)
        remove_entry(fc, l->tail);
}

/* Makes room for `e` and links it in. Returns 0 or -ENOMEM. */
static int insert(pt_filecache *fc, entry *e, double now)
{
    size_t old = find_slot(fc, e->owner, e->variant, e->hash, e->key, e->keylen);
    if (old != SIZE_MAX) {
        /* an entry replaced by one of another identity (or a miss): its file changed */
        entry *o = fc->slots[old];
        char id[COPY_KEY_LEN], now_id[COPY_KEY_LEN];
        bool changed = false;
        if (has_file(o)) {
            file_id(o, id);
            if (has_file(e))
                file_id(e, now_id);
            changed = !has_file(e) || memcmp(id, now_id, COPY_ID_LEN) != 0;
        }
        remove_at(fc, old);
        if (changed)
            drop_copies(fc, id);
    }
    if (in_memory(e)) {
        lru *l = &fc->lists[LIST_MEMORY];
        while (fc->bytes + e->cost > fc->o.max_bytes && l->tail)
            remove_entry(fc, l->tail);
    } else {
        lru *l = &fc->lists[LIST_META];
        pt_filecache_sweep(fc, now);
        while (l->n + 1 > fc->o.max_open && l->tail)
            remove_entry(fc, l->tail);
    }
    if ((fc->used + fc->tombstones + 1) * 4 > fc->nslots * 3 && grow(fc) < 0)
        return -ENOMEM;
    size_t k = e->hash & (fc->nslots - 1);
    while (fc->slots[k] && fc->slots[k] != TOMBSTONE)
        k = (k + 1) & (fc->nslots - 1);
    if (fc->slots[k] == TOMBSTONE)
        fc->tombstones--;
    fc->slots[k] = e;
    fc->used++;
    if (in_memory(e))
        fc->bytes += e->cost;
    if (e->kind == KIND_COPY) {
        fc->copies++;
        fc->copy_bytes += e->cost;
    } else if (e->kind == KIND_OPEN)
        fc->open_fds++;
    else if (e->kind == KIND_ABSENT)
        fc->absent++;
    lru_push_front(list_of(fc, e), e);
    return 0;
}

static const char *relative(const char *file_path)
{
    const char *rel = file_path[0] == '/' ? file_path + 1 : file_path;
    return rel[0] ? rel : ".";
}

/* Formats the header lines of a file into `head` (`cap` bytes). Returns their length, or 0 if
 * they do not fit; sets the offsets of the type line and the validators. */
static size_t format_head(char *head, size_t cap, const struct stat *st, const pt_filecache_meta *m,
                          const char *etag, size_t *type_len, size_t *validators_off)
{
    char date[32];
    pt_http_date_format(st->st_mtime, date);
    int t = snprintf(head, cap, "Content-Type: %s\r\n", m->content_type);
    int a = snprintf(head + (t > 0 ? t : 0), t >= 0 && (size_t)t < cap ? cap - (size_t)t : 0,
                     "%s%s%s%s", m->encoding ? "Content-Encoding: " : "",
                     m->encoding ? m->encoding : "", m->encoding ? "\r\n" : "",
                     m->accept_ranges ? "Accept-Ranges: bytes\r\n" : "");
    if (t < 0 || a < 0 || (size_t)t + (size_t)a >= cap)
        return 0;
    size_t v = (size_t)t + (size_t)a;
    int b = snprintf(head + v, cap - v, "Last-Modified: %s\r\n%s%s%s%s", date,
                     m->etag ? "ETag: " : "", m->etag ? etag : "", m->etag ? "\r\n" : "",
                     m->vary ? "Vary: Accept-Encoding\r\n" : "");
    if (b < 0 || v + (size_t)b >= cap)
        return 0;
    *type_len = (size_t)t;
    *validators_off = v;
    return v + (size_t)b;
}

/* Reads `size` bytes of `fd` from offset 0 into `p`. Returns false on a short or failed read
 * (the file changed size meanwhile). */
static bool read_all(int fd, char *p, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, p + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

const pt_cached_file *pt_filecache_put(pt_filecache *fc, const void *owner, int variant,
                                       const char *path, size_t len, const char *file_path,
                                       int *fdp, const struct stat *st,
                                       const pt_filecache_meta *meta, double now)
{
    if (!S_ISREG(st->st_mode) || st->st_size < 0)
        return NULL;
    size_t size = (size_t)st->st_size;
    const char *rel = relative(file_path);
    size_t rel_len = strlen(rel), type_len = strlen(meta->content_type);

    char etag[40], head[1024];
    size_t etag_len = pt_etag_format(st, etag), tl, vo;
    size_t hn = format_head(head, sizeof head, st, meta, etag, &tl, &vo);
    if (hn == 0)
        return NULL;

    size_t fixed = sizeof(entry) + hn + len + 1 + rel_len + 1 + type_len + 1 + etag_len + 1;
    enum kind kind;
    if (size <= fc->o.max_file && fixed + size <= fc->o.max_bytes)
        kind = KIND_MEMORY;
    else if (fc->o.max_open > 0)
        kind = KIND_OPEN;
    else
        return NULL;
    size_t cost = fixed + (kind == KIND_MEMORY ? size : 0);
    entry *e = malloc(cost);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    char *p = e->storage;
    memcpy(p, head, hn);
    e->pub.head = p;
    e->pub.head_len = hn;
    e->pub.head_memo = &e->head_memo;
    e->pub.type_len = tl;
    e->pub.validators_off = vo;
    p += hn;
    memcpy(p, path, len);
    p[len] = '\0';
    e->key = p;
    e->keylen = len;
    p += len + 1;
    memcpy(p, rel, rel_len + 1);
    e->file_path = p;
    p += rel_len + 1;
    memcpy(p, meta->content_type, type_len + 1);
    e->pub.content_type = p;
    p += type_len + 1;
    memcpy(p, etag, etag_len + 1);
    e->pub.etag = p;
    e->pub.etag_len = etag_len;
    p += etag_len + 1;
    e->pub.fd = -1;
    if (kind == KIND_MEMORY) {
        if (!read_all(*fdp, p, size)) {
            free(e);
            return NULL;
        }
        e->pub.body = p;
    }
    e->pub.size = size;
    e->pub.mtime = st->st_mtime;
    e->pub.dev = st->st_dev;
    e->pub.ino = st->st_ino;
    e->pub.mtime_ns = ns_of(st->st_mtim);
    e->pub.encoded = meta->encoding != NULL;
    e->kind = kind;
    e->owner = owner;
    e->variant = variant;
    e->hash = hash_key(owner, variant, path, len);
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
    e->ctime = st->st_ctim;
    e->validated_at = e->used_at = now;
    e->cost = cost;
    if (kind == KIND_OPEN)
        e->pub.fd = *fdp; /* taken below, once nothing can fail */
    if (insert(fc, e, now) < 0) {
        free(e);
        return NULL;
    }
    if (kind == KIND_OPEN)
        *fdp = -1;
    return &e->pub;
}

int pt_filecache_describe(pt_cached_file *out, char *buf, size_t cap, const struct stat *st,
                          const pt_filecache_meta *meta)
{
    char etag[40];
    size_t etag_len = pt_etag_format(st, etag), tl, vo;
    if (cap < etag_len + 1)
        return -ENAMETOOLONG;
    size_t hn = format_head(buf, cap - etag_len - 1, st, meta, etag, &tl, &vo);
    if (hn == 0)
        return -ENAMETOOLONG;
    memcpy(buf + hn, etag, etag_len + 1);
    *out = (pt_cached_file){
        .transient = true,
        .encoded = meta->encoding != NULL,
        .fd = -1,
        .size = (size_t)st->st_size,
        .mtime = st->st_mtime,
        .dev = st->st_dev,
        .ino = st->st_ino,
        .mtime_ns = ns_of(st->st_mtim),
        .head = buf,
        .head_len = hn,
        .type_len = tl,
        .validators_off = vo,
        .etag = buf + hn,
        .etag_len = etag_len,
        .content_type = meta->content_type,
    };
    return 0;
}

const pt_cached_file *pt_filecache_put_absent(pt_filecache *fc, const void *owner, int variant,
                                              const char *path, size_t len, const char *file_path,
                                              double now)
{
    if (fc->o.max_open == 0)
        return NULL;
    const char *rel = relative(file_path);
    size_t rel_len = strlen(rel);
    size_t cost = sizeof(entry) + len + 1 + rel_len + 1;
    entry *e = malloc(cost);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    char *p = e->storage;
    memcpy(p, path, len);
    p[len] = '\0';
    e->key = p;
    e->keylen = len;
    p += len + 1;
    memcpy(p, rel, rel_len + 1);
    e->file_path = p;
    e->pub.absent = true;
    e->pub.fd = -1;
    e->kind = KIND_ABSENT;
    e->owner = owner;
    e->variant = variant;
    e->hash = hash_key(owner, variant, path, len);
    e->validated_at = e->used_at = now;
    e->cost = cost;
    if (insert(fc, e, now) < 0) {
        free(e);
        return NULL;
    }
    return &e->pub;
}

void pt_filecache_get_stats(const pt_filecache *fc, pt_filecache_stats *out)
{
    *out = (pt_filecache_stats){
        .bytes = fc->bytes,
        .entries = fc->used,
        .open_fds = fc->open_fds,
        .absent = fc->absent,
        .hits = fc->hits,
        .misses = fc->misses,
        .copies = fc->copies,
        .copy_bytes = fc->copy_bytes,
        .copy_hits = fc->copy_hits,
        .copy_misses = fc->copy_misses,
    };
}

/* ---- the variant store: compressed copies ---- */

static pt_filecache *cache_of(pt_variant_store *s)
{
    return (pt_filecache *)((char *)s - offsetof(pt_filecache, store));
}

/* The largest body kept compressed: max_file, or 1 MiB when that is smaller (a body the
 * open-file cache serves is worth compressing once too), but at most an eighth of the memory,
 * so that one copy cannot push out most of what is hot. */
static size_t copy_limit(const pt_filecache *fc)
{
    size_t lim = fc->o.max_file > COPY_MIN_LIMIT ? fc->o.max_file : COPY_MIN_LIMIT;
    return lim < fc->o.max_bytes / 8 ? lim : fc->o.max_bytes / 8;
}

static const void *store_get(pt_variant_store *s, const pt_variant_key *key, size_t *len,
                             void **holder)
{
    pt_filecache *fc = cache_of(s);
    char k[COPY_KEY_LEN];
    copy_key(key, k);
    uint64_t h = hash_key(s, 0, k, COPY_ID_LEN);
    size_t slot = find_slot(fc, s, 0, h, k, COPY_KEY_LEN);
    if (slot == SIZE_MAX) {
        fc->copy_misses++;
        return NULL;
    }
    entry *e = fc->slots[slot];
    lru *l = list_of(fc, e);
    if (l->head != e) {
        lru_unlink(l, e);
        lru_push_front(l, e);
    }
    fc->copy_hits++;
    *len = e->pub.size;
    *holder = e;
    return e->pub.body;
}

static bool store_wants(pt_variant_store *s, uint64_t size)
{
    return size <= copy_limit(cache_of(s));
}

static void store_put(pt_variant_store *s, const pt_variant_key *key, const void *buf, size_t len)
{
    pt_filecache *fc = cache_of(s);
    size_t cost = sizeof(entry) + COPY_KEY_LEN + len;
    if (len > copy_limit(fc) || cost > fc->o.max_bytes)
        return;
    entry *e = malloc(cost);
    if (!e)
        return;
    memset(e, 0, sizeof *e);
    copy_key(key, e->storage);
    e->key = e->storage;
    e->keylen = COPY_KEY_LEN;
    memcpy(e->storage + COPY_KEY_LEN, buf, len);
    e->pub.body = e->storage + COPY_KEY_LEN;
    e->pub.size = len;
    e->pub.fd = -1;
    e->kind = KIND_COPY;
    e->owner = s;
    e->hash = hash_key(s, 0, e->key, COPY_ID_LEN);
    e->cost = cost;
    if (insert(fc, e, 0) < 0)
        free(e);
}

static const pt_variant_store store_methods = {
    .get = store_get,
    .hold = pt_filecache_hold,
    .release = pt_filecache_release,
    .wants = store_wants,
    .put = store_put,
};

pt_variant_store *pt_filecache_variants(pt_filecache *fc)
{
    return fc && fc->o.max_bytes > 0 ? &fc->store : NULL;
}

void pt_filecache_free(pt_filecache *fc)
{
    if (!fc)
        return;
    for (int i = 0; i < 2; i++) {
        entry *e = fc->lists[i].head;
        while (e) {
            entry *next = e->lru_next;
            entry_free(fc, e);
            e = next;
        }
    }
    free(fc->slots);
    free(fc);
}
