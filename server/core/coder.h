/*
 * A streaming compressor for one body in gzip (zlib), brotli (libbrotlienc) or zstd (libzstd):
 * bytes in, compressed bytes out to a sink, with flushes that make everything fed so far
 * decodable (compression on the fly, server/core/compress.h).
 *
 * Memory is bounded per coder and known: each library allocates through the coder, which counts
 * (pt_coder_footprint), and its window is sized to the body when its length is known, as nginx
 * sizes gzip's: a 2 KiB body does not take a 256 KiB deflate state. Windows are capped (gzip
 * 32 KiB, brotli 64 KiB, zstd 512 KiB) so that a stream of unknown length costs a bounded amount;
 * docs/compression.md quotes the figures.
 *
 * Ownership: a coder is malloc'ed and owns its library state and its output buffer;
 * pt_coder_free() releases them. Threading: a coder belongs to one thread at a time; the
 * functions keep no other state.
 */
#ifndef PORTER_SERVER_CORE_CODER_H
#define PORTER_SERVER_CORE_CODER_H

#include <stddef.h>
#include <stdint.h>

#include "server/core/encoding.h"

typedef struct pt_coder pt_coder;

/* Where compressed bytes go, in pieces of at most PT_CODER_OUT bytes: returns 0, or a negative
 * errno that stops the coder and is returned by pt_coder_feed(). */
typedef int (*pt_coder_sink)(void *data, const void *p, size_t n);

/* A coder's output buffer: the largest piece handed to a sink. */
#define PT_CODER_OUT (16 * 1024)

enum {
    PT_CODER_RUN,    /* the library keeps what it likes for better compression */
    PT_CODER_FLUSH,  /* everything fed so far becomes decodable output */
    PT_CODER_FINISH, /* the end of the body: the stream is complete, the coder done */
};

/* The levels a coding takes: gzip 1..9, brotli 0..11, zstd 1..19. */
int pt_coder_level_min(pt_encoding e);
int pt_coder_level_max(pt_encoding e);

/* A coder for coding `e` (not identity) at `level`. `size_hint`: the body's whole length when
 * known (0: unknown), which bounds the window; a body longer than its hint is still compressed
 * correctly, only less well. Returns NULL with errno EINVAL (bad coding or level) or ENOMEM. */
pt_coder *pt_coder_new(pt_encoding e, int level, uint64_t size_hint);

/* Compresses `len` bytes at `in` (may be 0) with `mode`, handing output to `sink`. Returns 0,
 * the sink's negative errno, -EPROTO for a library failure, or -EINVAL after FINISH; after a
 * failure the coder takes nothing more. */
int pt_coder_feed(pt_coder *c, const void *in, size_t len, int mode, pt_coder_sink sink,
                  void *data);

/* The most bytes the coder has held: its library's allocations at their peak and its own. */
size_t pt_coder_footprint(const pt_coder *c);

/* Releases `c`; NULL: no-op. */
void pt_coder_free(pt_coder *c);

/* Compresses the whole of `len` bytes at `in` into a malloc'ed buffer (*out, *outlen; free()
 * it). Returns 0 or a negative errno. */
int pt_coder_all(pt_encoding e, int level, const void *in, size_t len, void **out, size_t *outlen);

#endif
