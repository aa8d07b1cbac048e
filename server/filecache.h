/*
 * File cache: small files held in memory with their response header lines prebuilt, so a hot
 * file costs a hash lookup and one writev, and no file-system call. An entry is revalidated
 * with one stat at most once per `validity` seconds; a changed, replaced or removed file drops
 * it. Memory is bounded (LRU eviction).
 *
 * Keys are (owner, request path): the owner is the virtual host, the path is the normalised
 * request path ("/" and "/index.html" are different keys for the same file). An entry also
 * remembers the file's own path, which is what it stats.
 *
 * Ownership: the cache owns its entries. A pointer returned by get/put stays valid until the
 * next call on the cache (the caller copies what it needs into the out-queue at once).
 * Threading: one cache per loop thread (no locks). Errors: NULL returns mean "not cached".
 */
#ifndef PORTER_SERVER_FILECACHE_H
#define PORTER_SERVER_FILECACHE_H

#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

typedef struct pt_filecache pt_filecache;

typedef struct pt_cached_file {
    const char *body;
    size_t size;
    time_t mtime;
    const char *head; /* "Content-Type: ...\r\nLast-Modified: ...\r\nETag: ...\r\n" */
    size_t head_len;
    const char *etag; /* with its quotes */
} pt_cached_file;

/* Creates a cache holding files of at most `max_file` bytes, `max_bytes` in all, trusted for
 * `validity` seconds between stats. Returns NULL when out of memory. */
pt_filecache *pt_filecache_new(size_t max_bytes, size_t max_file, double validity);

/* The maximum file size the cache holds. */
size_t pt_filecache_max_file(const pt_filecache *fc);

/* Looks up `path` for `owner`. Past the validity interval the file at its own path is stat'ed
 * with fstatat(root_fd) and the entry dropped if it changed. Returns NULL on a miss. */
const pt_cached_file *pt_filecache_get(pt_filecache *fc, const void *owner, int root_fd,
                                       const char *path, size_t len, double now);

/* Caches the regular file open as `fd` (stat `st`, at `file_path` beneath the root) under
 * `path`. Reads its content; `fd` stays the caller's. Returns the entry, or NULL if the file is
 * too large or could not be read. */
const pt_cached_file *pt_filecache_put(pt_filecache *fc, const void *owner, const char *path,
                                       size_t len, const char *file_path, int fd,
                                       const struct stat *st, const char *content_type, double now);

/* Bytes held, entries, and lookups that hit or missed (for tests and the status page). */
typedef struct pt_filecache_stats {
    size_t bytes, entries;
    unsigned long long hits, misses;
} pt_filecache_stats;
void pt_filecache_get_stats(const pt_filecache *fc, pt_filecache_stats *out);

/* Formats the ETag of a file as nginx does: "mtime-size" in hex, with quotes. Returns its
 * length; `buf` needs 40 bytes. */
size_t pt_etag_format(const struct stat *st, char *buf);

void pt_filecache_free(pt_filecache *fc);

#endif
