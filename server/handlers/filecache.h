/*
 * File cache: what a hot file costs is a hash lookup and one writev, and no file-system call.
 *
 * Three kinds of entries, each under a key (owner, variant, request path):
 *   - small files held in memory with their response header lines prebuilt (the memory cache,
 *     bounded in bytes, LRU);
 *   - larger files kept open: the fd and its stat, so serving one costs no open/fstat/close
 *     (the open-file cache, bounded in entries, LRU, idle entries closed after `inactive`);
 *   - misses: a path that did not exist, so a try_files chain or a precompressed sibling that
 *     is not there costs no failed open (counted with the open files).
 * Every entry is revalidated with one fstatat() of its file at most once per `validity`
 * seconds (0: every lookup); a file that changed, was replaced, appeared or went away drops
 * its entry, and the caller opens it again confined to the root.
 *
 * Beside them, compressed copies of file bodies: the cache's variant store
 * (pt_filecache_variants, the pt_variant_store of server/core/compress.h), so that a hot file
 * is compressed once, not per request. A copy is keyed by the whole pt_variant_key: the file's
 * identity (device, inode, size, mtime in nanoseconds, from the stat its entry was made from:
 * pt_cached_file's dev, ino, size, mtime_ns) and the coding and level. Copies are entries of
 * the same table, charged against the same max_bytes as the memory entries and kept in the
 * same LRU list: one budget of bytes, the least recently used of either kind goes first, and
 * the bytes charged never exceed max_bytes. A body may be kept compressed when it is at most
 * max(max_file, 1 MiB) and at most max_bytes / 8 bytes (before and after compression), so one
 * copy cannot push out most of the cache. When an entry is dropped because its file changed
 * (revalidation saw another identity, or none) or replaced by one of another identity, the
 * copies of the old identity go with it: no key reaches them any more. A copy is not checked
 * against its file: its key says which file it is of, and whoever builds the key has just
 * validated the file. Copies are held and released as memory bodies are (pt_filecache_hold).
 *
 * The owner is whatever gives a request path its meaning (a location: its root, its settings
 * baked into the header lines); the variant tells apart representations of one path (the
 * precompressed siblings); the request path is the normalised one ("/" and "/index.html" are
 * different keys for the same file). An entry also remembers its file's own path beneath the
 * root, which is what it stats.
 *
 * Ownership: the cache owns its entries, its copies and the fds of open-file entries. A pointer
 * returned by get/put (the store's get too) stays valid until the next call on the cache or its
 * store (or, for a body, until released: see pt_filecache_hold); an entry's fd may be closed by any
 * later call, so a response that outlives the call must read the file at once or dup() the fd
 * (server/http1/head.c does, see pt_response.file_borrowed). Threading: one cache per loop thread
 * (no locks). Errors: NULL returns mean "not cached".
 */
#ifndef PORTER_SERVER_HANDLERS_FILECACHE_H
#define PORTER_SERVER_HANDLERS_FILECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

typedef struct pt_filecache pt_filecache;
struct pt_variant_store;

typedef struct pt_filecache_options {
    size_t max_bytes; /* memory for small files, entries included; 0: nothing in memory */
    size_t max_file;  /* the largest file held in memory */
    double validity;  /* seconds an entry is trusted between stats; 0: stat every lookup */
    size_t max_open;  /* open-file entries and remembered misses; 0: none */
    double inactive;  /* an open-file entry unused this long is closed at the next insertion */
} pt_filecache_options;

/* What the header lines of an entry say besides Last-Modified. */
typedef struct pt_filecache_meta {
    const char *content_type; /* required */
    const char *encoding;     /* Content-Encoding, or NULL */
    bool etag;                /* an ETag line */
    bool vary;                /* "Vary: Accept-Encoding" */
    bool accept_ranges;       /* "Accept-Ranges: bytes" */
} pt_filecache_meta;

typedef struct pt_cached_file {
    bool absent;      /* a remembered miss: nothing below is set */
    bool transient;   /* made by pt_filecache_describe(), not held by the cache */
    bool encoded;     /* its lines carry a Content-Encoding (a precompressed sibling) */
    const char *body; /* the content when held in memory, else NULL */
    int fd;           /* else the open file (the cache's: borrow it), or -1 */
    size_t size;
    time_t mtime;
    /* The file's identity, from the stat the entry was made from: with size, a copy's key. */
    dev_t dev;
    ino_t ino;
    int64_t mtime_ns;
    /* The header lines of a 200, in this order: Content-Type, [Content-Encoding],
     * [Accept-Ranges], then the validators Last-Modified, [ETag], [Vary]. A 304 repeats
     * head + validators_off; a multipart 206 replaces the first type_len bytes. */
    const char *head;
    size_t head_len, type_len, validators_off;
    const char *etag; /* with its quotes, even when the lines do not carry it */
    size_t etag_len;
    const char *content_type;
    struct pt_head_memo *head_memo; /* the head of its 200, for reuse (NULL when transient) */
} pt_cached_file;

/* A body held in memory goes out without a copy: a response queues a reference to it and
 * holds its entry until the bytes are written. pt_filecache_hold(cf) takes a hold on the entry
 * of `cf` (returned by get/put, with a body); pt_filecache_release(cf) drops it. Their
 * signatures are those of pt_response.body_hold and pt_outq_free_cb; they are the variant
 * store's hold and release too (a copy's holder). An entry that leaves the cache while held,
 * or whose cache is freed, is freed at its last release. */
void pt_filecache_hold(const void *cf);
void pt_filecache_release(void *cf);

/* Creates a cache. Returns NULL when out of memory. */
pt_filecache *pt_filecache_new(const pt_filecache_options *o);

/* The largest file the cache holds in memory (0 when the memory part is off). */
size_t pt_filecache_max_file(const pt_filecache *fc);

/* The cache's store of compressed copies (see above), or NULL when the memory part of the
 * cache is off (max_bytes 0) or `fc` is NULL. It lives as long as the cache. */
struct pt_variant_store *pt_filecache_variants(pt_filecache *fc);

/* Whether the cache keeps open files and misses. */
bool pt_filecache_keeps_open(const pt_filecache *fc);

/* Looks up (`owner`, `variant`, `path`). Past the validity interval the entry's file is
 * stat'ed with fstatat(root_fd) and the entry dropped if it changed. Returns NULL on a miss. */
const pt_cached_file *pt_filecache_get(pt_filecache *fc, const void *owner, int variant,
                                       int root_fd, const char *path, size_t len, double now);

/* Caches the regular file open as *fdp (stat `st`, at `file_path` beneath the root; a leading
 * '/' is ignored) under (`owner`, `variant`, `path`): in memory when it is small enough (*fdp
 * stays the caller's), else as an open file (the cache takes the fd and sets *fdp to -1).
 * `meta` is copied. Returns the entry, or NULL if the file is not cached (*fdp untouched). */
const pt_cached_file *pt_filecache_put(pt_filecache *fc, const void *owner, int variant,
                                       const char *path, size_t len, const char *file_path,
                                       int *fdp, const struct stat *st,
                                       const pt_filecache_meta *meta, double now);

/* Remembers that `file_path` does not exist, under (`owner`, `variant`, `path`). Returns the
 * entry (absent), or NULL when misses are not kept. */
const pt_cached_file *pt_filecache_put_absent(pt_filecache *fc, const void *owner, int variant,
                                              const char *path, size_t len, const char *file_path,
                                              double now);

/* Takes the fd of the open-file entry `cf` out of the cache, for a response that needs an fd
 * of its own when none is left to dup() it. The entry stays readable until the next call on
 * the cache, which drops it. Returns the fd (the caller's now), or -1 if `cf` holds none. */
int pt_filecache_take_fd(pt_filecache *fc, const pt_cached_file *cf);

/* Describes a file that is not cached (the cache is off or full) as an entry would: writes
 * its header lines and ETag into `buf` (`cap` bytes) and fills `out` with fd -1 and no body.
 * Returns 0, or -ENAMETOOLONG if they do not fit. */
int pt_filecache_describe(pt_cached_file *out, char *buf, size_t cap, const struct stat *st,
                          const pt_filecache_meta *meta);

/* Closes the open files not used within `inactive` of `now`. */
void pt_filecache_sweep(pt_filecache *fc, double now);

/* Bytes held in memory (copies included), entries of every kind (copies included), open fds,
 * remembered misses, and lookups that hit or missed; the compressed copies, their bytes and
 * the store's lookups (for tests and the status page). Bytes are what the cache is charged:
 * an entry or copy that left it while held is no longer counted. */
typedef struct pt_filecache_stats {
    size_t bytes, entries, open_fds, absent;
    unsigned long long hits, misses;
    size_t copies, copy_bytes;
    unsigned long long copy_hits, copy_misses;
} pt_filecache_stats;
void pt_filecache_get_stats(const pt_filecache *fc, pt_filecache_stats *out);

/* Formats the ETag of a file as nginx does: "mtime-size" in hex, with quotes. Returns its
 * length; `buf` needs 40 bytes. */
size_t pt_etag_format(const struct stat *st, char *buf);

/* Frees the cache, closing its fds. NULL: no-op. */
void pt_filecache_free(pt_filecache *fc);

#endif
