/*
 * The coders (see coder.h): zlib's deflate with a gzip wrapper, brotli's streaming encoder and
 * zstd's streaming compressor behind one feed loop, each allocating through the coder.
 */
#include "server/core/coder.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/encode.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCCtx_advanced: allocations through the coder */
#include <zstd.h>
#include <zstd_errors.h>

#include "server/core/str.h"

/* The largest windows a coder takes: 32 KiB for gzip (its most), 64 KiB for brotli (whose
 * hash tables cost megabytes beside a larger window: 3 MiB at quality 4 with 512 KiB, 23 MiB at
 * 11), 512 KiB for zstd; their own defaults (4 MiB, 2 MiB) would make a stream cost more. */
#define BROTLI_LGWIN_MAX 16
#define ZSTD_WINDOWLOG_CAP 19
#define ZSTD_TABLELOG_CAP 17

struct pt_coder {
    pt_encoding e;
    bool done, failed;
    size_t bytes, peak; /* what the library holds through alloc_fn, now and at most */
    union {
        z_stream z;
        BrotliEncoderState *br;
        ZSTD_CCtx *zstd;
    } u;
    unsigned char out[PT_CODER_OUT];
};

/* ---- allocations, counted ---- */

/* Each allocation carries its size ahead of it (16 bytes, keeping the alignment malloc gives). */
#define HEADER 16

static void *alloc_fn(void *opaque, size_t size)
{
    pt_coder *c = opaque;
    unsigned char *p = malloc(size + HEADER);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    c->bytes += size;
    if (c->bytes > c->peak)
        c->peak = c->bytes;
    return p + HEADER;
}

static void free_fn(void *opaque, void *ptr)
{
    if (!ptr)
        return;
    pt_coder *c = opaque;
    unsigned char *p = (unsigned char *)ptr - HEADER;
    size_t size;
    memcpy(&size, p, sizeof size);
    c->bytes -= size;
    free(p);
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    if (size && items > SIZE_MAX / size)
        return Z_NULL;
    return alloc_fn(opaque, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf ptr)
{
    free_fn(opaque, ptr);
}

/* ---- levels and windows ---- */

int pt_coder_level_min(pt_encoding e)
{
    return e == PT_ENC_BR ? 0 : 1;
}

int pt_coder_level_max(pt_encoding e)
{
    switch (e) {
    case PT_ENC_GZIP:
        return 9;
    case PT_ENC_BR:
        return 11;
    case PT_ENC_ZSTD:
        return 19;
    default:
        return -1;
    }
}

/* The smallest power of two, from 2^lo to 2^hi, that holds `hint` bytes (2^hi when unknown). */
static int log2_for(uint64_t hint, int lo, int hi)
{
    if (!hint)
        return hi;
    int b = lo;
    while (b < hi && ((uint64_t)1 << b) < hint)
        b++;
    return b;
}

static int gzip_init(pt_coder *c, int level, uint64_t hint)
{
    /* nginx's sizing: the window and the hash shrink together while the body fits in half */
    int wbits = MAX_WBITS, memlevel = MAX_MEM_LEVEL - 1;
    if (hint) {
        while (hint < ((uint64_t)1 << (wbits - 1)) && wbits > 9) {
            wbits--;
            if (memlevel > 1)
                memlevel--;
        }
    }
    c->u.z.zalloc = z_alloc;
    c->u.z.zfree = z_free;
    c->u.z.opaque = c;
    /* windowBits + 16: a gzip header and trailer around the deflate stream */
    int rc = deflateInit2(&c->u.z, level, Z_DEFLATED, wbits + 16, memlevel, Z_DEFAULT_STRATEGY);
    return rc == Z_OK ? 0 : rc == Z_MEM_ERROR ? -ENOMEM : -EPROTO;
}

static int brotli_init(pt_coder *c, int level, uint64_t hint)
{
    c->u.br = BrotliEncoderCreateInstance(alloc_fn, free_fn, c);
    if (!c->u.br)
        return -ENOMEM;
    /* a window of 2^lgwin holds 2^lgwin - 16 bytes; an unknown length (0) takes the largest */
    uint64_t need = !hint ? 0 : hint > UINT64_MAX - 16 ? UINT64_MAX : hint + 16;
    int lgwin = log2_for(need, BROTLI_MIN_WINDOW_BITS, BROTLI_LGWIN_MAX);
    if (!BrotliEncoderSetParameter(c->u.br, BROTLI_PARAM_QUALITY, (uint32_t)level) ||
        !BrotliEncoderSetParameter(c->u.br, BROTLI_PARAM_LGWIN, (uint32_t)lgwin) ||
        (hint && !BrotliEncoderSetParameter(c->u.br, BROTLI_PARAM_SIZE_HINT,
                                            hint > (1u << 30) ? 1u << 30 : (uint32_t)hint)))
        return -EPROTO;
    return 0;
}

/* zstd's parameters for `level` and a body of `hint` bytes (0: unknown), with the window and
 * the tables capped. */
static ZSTD_compressionParameters zstd_params(int level, uint64_t hint)
{
    ZSTD_compressionParameters p =
        ZSTD_getCParams(level, hint ? hint : ZSTD_CONTENTSIZE_UNKNOWN, 0);
    int wlog = log2_for(hint, ZSTD_WINDOWLOG_MIN, ZSTD_WINDOWLOG_CAP);
    if ((int)p.windowLog > wlog)
        p.windowLog = (unsigned)wlog;
    if (p.hashLog > ZSTD_TABLELOG_CAP)
        p.hashLog = ZSTD_TABLELOG_CAP;
    if (p.chainLog > ZSTD_TABLELOG_CAP)
        p.chainLog = ZSTD_TABLELOG_CAP;
    return ZSTD_adjustCParams(p, hint ? hint : ZSTD_CONTENTSIZE_UNKNOWN, 0);
}

static int zstd_init(pt_coder *c, int level, uint64_t hint)
{
    ZSTD_customMem mem = {alloc_fn, free_fn, c};
    c->u.zstd = ZSTD_createCCtx_advanced(mem);
    if (!c->u.zstd)
        return -ENOMEM;
    ZSTD_compressionParameters p = zstd_params(level, hint);
    ZSTD_CCtx *z = c->u.zstd;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, (int)p.windowLog)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_hashLog, (int)p.hashLog)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_chainLog, (int)p.chainLog)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_searchLog, (int)p.searchLog)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 0)))
        return -EPROTO;
    return 0;
}

pt_coder *pt_coder_new(pt_encoding e, int level, uint64_t size_hint)
{
    int max = pt_coder_level_max(e);
    if (max < 0 || level < pt_coder_level_min(e) || level > max) {
        errno = EINVAL;
        return NULL;
    }
    pt_coder *c = calloc(1, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->e = e;
    int rc = e == PT_ENC_GZIP ? gzip_init(c, level, size_hint)
             : e == PT_ENC_BR ? brotli_init(c, level, size_hint)
                              : zstd_init(c, level, size_hint);
    if (rc < 0) {
        if (e == PT_ENC_GZIP && rc == -EPROTO)
            c->e = PT_ENC_IDENTITY; /* nothing to end */
        pt_coder_free(c);
        errno = rc == -ENOMEM ? ENOMEM : EINVAL;
        return NULL;
    }
    return c;
}

void pt_coder_free(pt_coder *c)
{
    if (!c)
        return;
    switch (c->e) {
    case PT_ENC_GZIP:
        deflateEnd(&c->u.z);
        break;
    case PT_ENC_BR:
        BrotliEncoderDestroyInstance(c->u.br);
        break;
    case PT_ENC_ZSTD:
        ZSTD_freeCCtx(c->u.zstd);
        break;
    default:
        break;
    }
    free(c);
}

size_t pt_coder_footprint(const pt_coder *c)
{
    return sizeof *c + c->peak;
}

/* ---- feeding ---- */

static int gzip_feed(pt_coder *c, const void *in, size_t len, int mode, pt_coder_sink sink,
                     void *data)
{
    z_stream *z = &c->u.z;
    int flush = mode == PT_CODER_FINISH  ? Z_FINISH
                : mode == PT_CODER_FLUSH ? Z_SYNC_FLUSH
                                         : Z_NO_FLUSH;
    const unsigned char *p = in;
    size_t left = len;
    do {
        /* avail_in is an unsigned int: a larger input goes in parts, flushed at the last */
        uInt part = left > UINT_MAX ? UINT_MAX : (uInt)left;
        int f = part == left ? flush : Z_NO_FLUSH;
        z->next_in = (Bytef *)(uintptr_t)p;
        z->avail_in = part;
        do {
            z->next_out = c->out;
            z->avail_out = sizeof c->out;
            if (deflate(z, f) == Z_STREAM_ERROR)
                return -EPROTO;
            size_t n = sizeof c->out - z->avail_out;
            if (n) {
                int s = sink(data, c->out, n);
                if (s < 0)
                    return s;
            }
        } while (z->avail_out == 0); /* a full buffer: there may be more */
        p += part;
        left -= part;
    } while (left);
    return 0;
}

static int brotli_feed(pt_coder *c, const void *in, size_t len, int mode, pt_coder_sink sink,
                       void *data)
{
    BrotliEncoderOperation op = mode == PT_CODER_FINISH  ? BROTLI_OPERATION_FINISH
                                : mode == PT_CODER_FLUSH ? BROTLI_OPERATION_FLUSH
                                                         : BROTLI_OPERATION_PROCESS;
    const uint8_t *next_in = in;
    size_t avail_in = len;
    for (;;) {
        uint8_t *next_out = c->out;
        size_t avail_out = sizeof c->out;
        if (!BrotliEncoderCompressStream(c->u.br, op, &avail_in, &next_in, &avail_out, &next_out,
                                         NULL))
            return -EPROTO;
        size_t n = sizeof c->out - avail_out;
        if (n) {
            int s = sink(data, c->out, n);
            if (s < 0)
                return s;
        }
        if (avail_in || BrotliEncoderHasMoreOutput(c->u.br))
            continue;
        if (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(c->u.br))
            continue;
        return 0;
    }
}

static int zstd_feed(pt_coder *c, const void *in, size_t len, int mode, pt_coder_sink sink,
                     void *data)
{
    ZSTD_EndDirective op = mode == PT_CODER_FINISH  ? ZSTD_e_end
                           : mode == PT_CODER_FLUSH ? ZSTD_e_flush
                                                    : ZSTD_e_continue;
    ZSTD_inBuffer ib = {in, len, 0};
    for (;;) {
        ZSTD_outBuffer ob = {c->out, sizeof c->out, 0};
        size_t rem = ZSTD_compressStream2(c->u.zstd, &ob, &ib, op);
        if (ZSTD_isError(rem))
            return ZSTD_getErrorCode(rem) == ZSTD_error_memory_allocation ? -ENOMEM : -EPROTO;
        if (ob.pos) {
            int s = sink(data, c->out, ob.pos);
            if (s < 0)
                return s;
        }
        /* continue: done when the input is taken; flush and end: when nothing remains */
        if (op == ZSTD_e_continue ? ib.pos == ib.size : rem == 0)
            return 0;
    }
}

int pt_coder_feed(pt_coder *c, const void *in, size_t len, int mode, pt_coder_sink sink, void *data)
{
    if (c->done || c->failed)
        return c->failed ? -EPROTO : -EINVAL;
    if (!in)
        in = "";
    int rc = c->e == PT_ENC_GZIP ? gzip_feed(c, in, len, mode, sink, data)
             : c->e == PT_ENC_BR ? brotli_feed(c, in, len, mode, sink, data)
                                 : zstd_feed(c, in, len, mode, sink, data);
    if (rc < 0)
        c->failed = true;
    else if (mode == PT_CODER_FINISH)
        c->done = true;
    return rc;
}

/* ---- whole bodies ---- */

static int bytes_sink(void *data, const void *p, size_t n)
{
    return pt_bytes_append(data, p, n);
}

int pt_coder_all(pt_encoding e, int level, const void *in, size_t len, void **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    pt_coder *c = pt_coder_new(e, level, len ? len : 1);
    if (!c)
        return -errno;
    /* room for the likely result at once: compressible text shrinks well below half */
    pt_bytes g = {.cap = len / 2 + 64};
    g.p = malloc(g.cap);
    int rc = g.p ? pt_coder_feed(c, in, len, PT_CODER_FINISH, bytes_sink, &g) : -ENOMEM;
    pt_coder_free(c);
    if (rc < 0) {
        free(g.p);
        return rc;
    }
    *out = g.p;
    *outlen = g.len;
    return 0;
}
