/*
 * The coders (server/core/coder.c): gzip, brotli and zstd behind one streaming feed. What they
 * write is decoded by the libraries' own streaming decoders (zlib's inflate with gzip
 * detection, BrotliDecoderDecompressStream, ZSTD_decompressStream), never by porter: round
 * trips of every coding at its lowest, default, a middle and its highest level, of nothing, one
 * byte, HTML-like text and random bytes; input fed in odd-sized pieces with RUN, FLUSH and FINISH
 * mixed, the output after each FLUSH decoded at once and compared with the input so far; the
 * end of the stream where FINISH puts it; a failing sink; feeding after the end; bad codings and
 * levels; pt_coder_all; size hints right, too large and too small; the window a stream of unknown
 * length keeps; and the memory each coder holds (printed as a table), bounded as coder.h says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_estimateCStreamSize_usingCParams */
#include <zstd.h>

#include "server/core/coder.h"
#include "tests/support.h"

static const pt_encoding codings[] = {PT_ENC_GZIP, PT_ENC_BR, PT_ENC_ZSTD};
#define NCODINGS (sizeof codings / sizeof *codings)

/* The defaults of docs/compression.md. */
static int default_level(pt_encoding e)
{
    return e == PT_ENC_GZIP ? 1 : e == PT_ENC_BR ? 4 : 3;
}

static const char *name_of(pt_encoding e)
{
    return e == PT_ENC_GZIP ? "gzip" : e == PT_ENC_BR ? "br" : "zstd";
}

/* ---- inputs ---- */

/* `len` bytes of a page: tags, attributes and words, repetitive as HTML is. */
static unsigned char *html_like(size_t len)
{
    static const char *words[] = {"porter",  "serves",  "static", "files",   "and",  "streams",
                                  "answers", "through", "its",    "request", "core", "the"};
    unsigned char *p = malloc(len + 1);
    assert_non_null(p);
    size_t n = 0;
    uint32_t seed = 12345;
    while (n < len) {
        char piece[256];
        seed = seed * 1103515245u + 12345u;
        int k = snprintf(piece, sizeof piece,
                         "<div class=\"item-%u\"><a href=\"/doc/%u.html\">%s %s</a> %s</div>\n",
                         (seed >> 16) % 50, (seed >> 8) % 1000, words[(seed >> 4) % 12],
                         words[(seed >> 12) % 12], words[(seed >> 20) % 12]);
        size_t take = (size_t)k < len - n ? (size_t)k : len - n;
        memcpy(p + n, piece, take);
        n += take;
    }
    return p;
}

/* `len` bytes that do not compress (xorshift). */
static unsigned char *random_bytes(size_t len, uint64_t seed)
{
    unsigned char *p = malloc(len + 1);
    assert_non_null(p);
    uint64_t x = seed | 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
    return p;
}

/* ---- the decoders: the libraries' own, streaming ---- */

typedef struct decoder {
    pt_encoding e;
    z_stream z;
    BrotliDecoderState *br;
    ZSTD_DStream *zs;
    unsigned char *out; /* what was decoded so far */
    size_t len, cap;
    bool ended; /* the decoder reported the end of the stream */
} decoder;

static void dec_init(decoder *d, pt_encoding e)
{
    memset(d, 0, sizeof *d);
    d->e = e;
    if (e == PT_ENC_GZIP) {
        assert_int_equal(inflateInit2(&d->z, 15 + 32), Z_OK); /* gzip or zlib, detected */
    } else if (e == PT_ENC_BR) {
        d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        assert_non_null(d->br);
    } else {
        d->zs = ZSTD_createDStream();
        assert_non_null(d->zs);
        assert_false(ZSTD_isError(ZSTD_initDStream(d->zs)));
    }
}

static void dec_free(decoder *d)
{
    if (d->e == PT_ENC_GZIP)
        inflateEnd(&d->z);
    BrotliDecoderDestroyInstance(d->br);
    ZSTD_freeDStream(d->zs);
    free(d->out);
    memset(d, 0, sizeof *d);
}

/* Room for at least `n` more decoded bytes; returns where they go. */
static unsigned char *dec_room(decoder *d, size_t n)
{
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 65536;
        while (cap < d->len + n)
            cap *= 2;
        d->out = realloc(d->out, cap);
        assert_non_null(d->out);
        d->cap = cap;
    }
    return d->out + d->len;
}

/* Decodes `n` bytes of a stream, all of which must be taken; none may follow its end. */
static void dec_feed(decoder *d, const void *p, size_t n)
{
    enum { ROOM = 65536 };
    if (n && d->ended)
        fail_msg("%s: %zu bytes after the end of the stream", name_of(d->e), n);
    if (d->e == PT_ENC_GZIP) {
        d->z.next_in = (Bytef *)(uintptr_t)p;
        d->z.avail_in = (uInt)n;
        for (;;) {
            d->z.next_out = dec_room(d, ROOM);
            d->z.avail_out = ROOM;
            int rc = inflate(&d->z, Z_NO_FLUSH);
            d->len += ROOM - d->z.avail_out;
            if (rc == Z_STREAM_END) {
                d->ended = true;
                if (d->z.avail_in)
                    fail_msg("gzip: %u bytes after the end of the stream", d->z.avail_in);
                return;
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR)
                fail_msg("inflate: %d (%s)", rc, d->z.msg ? d->z.msg : "");
            if (!d->z.avail_in && d->z.avail_out)
                return;
        }
    } else if (d->e == PT_ENC_BR) {
        const uint8_t *in = p;
        size_t avail_in = n;
        for (;;) {
            uint8_t *out = dec_room(d, ROOM);
            size_t avail_out = ROOM;
            BrotliDecoderResult rc =
                BrotliDecoderDecompressStream(d->br, &avail_in, &in, &avail_out, &out, NULL);
            d->len += ROOM - avail_out;
            if (rc == BROTLI_DECODER_RESULT_ERROR)
                fail_msg("brotli: %s", BrotliDecoderErrorString(BrotliDecoderGetErrorCode(d->br)));
            if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
                d->ended = true;
                if (avail_in)
                    fail_msg("br: %zu bytes after the end of the stream", avail_in);
                return;
            }
            /* it asks for input while decoded bytes still wait in its ring buffer when the
             * output was full: those first */
            if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT &&
                !BrotliDecoderHasMoreOutput(d->br)) {
                assert_int_equal(avail_in, 0);
                return;
            }
        }
    } else {
        ZSTD_inBuffer ib = {p, n, 0};
        for (;;) {
            ZSTD_outBuffer ob = {dec_room(d, ROOM), ROOM, 0};
            size_t rc = ZSTD_decompressStream(d->zs, &ob, &ib);
            if (ZSTD_isError(rc))
                fail_msg("zstd: %s", ZSTD_getErrorName(rc));
            d->len += ob.pos;
            if (rc == 0) { /* a frame decoded and flushed whole */
                d->ended = true;
                if (ib.pos < ib.size)
                    fail_msg("zstd: %zu bytes after the end of the frame", ib.size - ib.pos);
                return;
            }
            if (ib.pos == ib.size && ob.pos < ob.size)
                return;
        }
    }
}

/* Asserts the decoded bytes are `len` bytes of `want`. */
static void assert_decoded(const decoder *d, const unsigned char *want, size_t len,
                           const char *what)
{
    if (d->len != len)
        fail_msg("%s: %zu bytes decoded, not %zu", what, d->len, len);
    if (len && memcmp(d->out, want, len) != 0) {
        size_t i = 0;
        while (d->out[i] == want[i])
            i++;
        fail_msg("%s: decoded byte %zu differs", what, i);
    }
}

/* ---- sinks ---- */

/* What a coder wrote: kept, and optionally decoded as it comes. */
typedef struct collected {
    unsigned char *p;
    size_t len, cap;
    size_t calls, largest; /* sink calls, and the largest piece */
    decoder *dec;          /* non-NULL: each piece decoded as it arrives */
    int fail_at;           /* > 0: that call (1-based) fails with fail_rc */
    int fail_rc;
} collected;

static int collect(void *data, const void *p, size_t n)
{
    collected *c = data;
    c->calls++;
    if (c->fail_at && (int)c->calls >= c->fail_at)
        return c->fail_rc;
    assert_true(n > 0);
    assert_true(n <= PT_CODER_OUT);
    if (n > c->largest)
        c->largest = n;
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap < c->len + n)
            cap *= 2;
        c->p = realloc(c->p, cap);
        assert_non_null(c->p);
        c->cap = cap;
    }
    memcpy(c->p + c->len, p, n);
    c->len += n;
    if (c->dec)
        dec_feed(c->dec, p, n);
    return 0;
}

/* ---- round trips ---- */

/* Compresses `in` (`len` bytes) with one FINISH, then decodes it: the same bytes, the stream
 * ended. Returns the compressed length. */
static size_t round_trip(pt_encoding e, int level, uint64_t hint, const unsigned char *in,
                         size_t len)
{
    char what[96];
    snprintf(what, sizeof what, "%s level %d, %zu bytes, hint %llu", name_of(e), level, len,
             (unsigned long long)hint);
    pt_coder *c = pt_coder_new(e, level, hint);
    if (!c)
        fail_msg("%s: no coder (%s)", what, strerror(errno));
    collected out = {0};
    assert_int_equal(pt_coder_feed(c, in, len, PT_CODER_FINISH, collect, &out), 0);
    pt_coder_free(c);
    assert_true(out.len > 0); /* even nothing has a header and an end */
    decoder d;
    dec_init(&d, e);
    dec_feed(&d, out.p, out.len);
    if (!d.ended)
        fail_msg("%s: the stream did not end", what);
    assert_decoded(&d, in, len, what);
    dec_free(&d);
    free(out.p);
    return out.len;
}

static void test_round_trips(void **state)
{
    enum { HTML = 100 * 1024, RANDOM = 1024 * 1024 };
    unsigned char *html = html_like(HTML);
    unsigned char *rnd = random_bytes(RANDOM, 42);
    const unsigned char one = 'x';
    for (size_t i = 0; i < NCODINGS; i++) {
        pt_encoding e = codings[i];
        int lo = pt_coder_level_min(e), hi = pt_coder_level_max(e);
        int levels[] = {lo, default_level(e), (lo + hi) / 2, hi};
        for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
            int level = levels[l];
            round_trip(e, level, 0, NULL, 0);
            round_trip(e, level, 0, (const unsigned char *)"", 0);
            round_trip(e, level, 1, &one, 1);
            round_trip(e, level, 0, &one, 1);
            size_t z = round_trip(e, level, HTML, html, HTML);
            if (z * 4 > HTML) /* a page compresses: less than a quarter at any level */
                fail_msg("%s level %d: 100 KiB of HTML took %zu bytes", name_of(e), level, z);
            round_trip(e, level, 0, html, HTML);
            z = round_trip(e, level, RANDOM, rnd, RANDOM);
            /* random bytes do not compress, and the coding adds little to them */
            assert_true(z > RANDOM - RANDOM / 100 && z < RANDOM + RANDOM / 100);
        }
    }
    free(html);
    free(rnd);
}

/* Odd-sized pieces with RUN, FLUSH and FINISH mixed: after every FLUSH what came out so far
 * decodes to everything fed so far, through a decoder fed as the output arrives. */
static void pieces_round_trip(pt_encoding e, int level, uint64_t hint, const unsigned char *in,
                              size_t len)
{
    static const size_t sizes[] = {1, 7, 1000, 4093, 0, 65537, 13, 16384, 3, 100000, 511};
    static const int modes[] = {PT_CODER_RUN,   PT_CODER_FLUSH, PT_CODER_RUN, PT_CODER_RUN,
                                PT_CODER_FLUSH, PT_CODER_FLUSH, PT_CODER_RUN};
    char what[96];
    snprintf(what, sizeof what, "%s level %d in pieces, hint %llu", name_of(e), level,
             (unsigned long long)hint);
    pt_coder *c = pt_coder_new(e, level, hint);
    assert_non_null(c);
    decoder d;
    dec_init(&d, e);
    collected out = {.dec = &d};
    size_t fed = 0, flushes = 0;
    for (size_t k = 0; fed < len; k++) {
        size_t n = sizes[k % (sizeof sizes / sizeof *sizes)];
        if (n > len - fed)
            n = len - fed;
        int mode = modes[k % (sizeof modes / sizeof *modes)];
        assert_int_equal(pt_coder_feed(c, in + fed, n, mode, collect, &out), 0);
        fed += n;
        if (mode == PT_CODER_FLUSH) {
            flushes++;
            char at[128];
            snprintf(at, sizeof at, "%s, flushed at %zu", what, fed);
            assert_decoded(&d, in, fed, at);
            assert_false(d.ended); /* a flush is not the end */
        }
    }
    assert_true(flushes > 0);
    assert_int_equal(pt_coder_feed(c, NULL, 0, PT_CODER_FINISH, collect, &out), 0);
    if (!d.ended)
        fail_msg("%s: the stream did not end at FINISH", what);
    assert_decoded(&d, in, len, what);
    pt_coder_free(c);
    dec_free(&d);
    free(out.p);
}

static void test_pieces_and_flushes(void **state)
{
    enum { HALF = 300 * 1024 };
    /* text, then bytes that do not compress (output larger than the coder's buffer at once) */
    unsigned char *in = html_like(2 * HALF);
    unsigned char *rnd = random_bytes(HALF, 7);
    memcpy(in + HALF, rnd, HALF);
    free(rnd);
    for (size_t i = 0; i < NCODINGS; i++) {
        pt_encoding e = codings[i];
        pieces_round_trip(e, pt_coder_level_min(e), 0, in, 2 * HALF);
        pieces_round_trip(e, default_level(e), 0, in, 2 * HALF);
        pieces_round_trip(e, pt_coder_level_max(e), 0, in, 2 * HALF);
        pieces_round_trip(e, default_level(e), 2 * HALF, in, 2 * HALF);
        /* a hint far shorter than the body: still whole, only less compressed */
        pieces_round_trip(e, default_level(e), 100, in, 2 * HALF);
        pieces_round_trip(e, pt_coder_level_max(e), 2048, in, 2 * HALF);
    }
    free(in);
}

static void test_hints_that_are_wrong(void **state)
{
    unsigned char *html = html_like(200 * 1024);
    for (size_t i = 0; i < NCODINGS; i++) {
        pt_encoding e = codings[i];
        int lv[] = {pt_coder_level_min(e), default_level(e), pt_coder_level_max(e)};
        for (size_t l = 0; l < 3; l++) {
            /* larger than the body */
            round_trip(e, lv[l], 1u << 30, html, 100);
            round_trip(e, lv[l], 1024 * 1024, NULL, 0);
            round_trip(e, lv[l], UINT64_MAX, html, 5000);
            /* smaller than the body */
            round_trip(e, lv[l], 1, html, 200 * 1024);
            round_trip(e, lv[l], 2048, html, 200 * 1024);
        }
    }
    free(html);
}

/* A stream of unknown length keeps the window coder.h promises (gzip 32 KiB, brotli 64 KiB, zstd
 * 512 KiB): a block of random bytes repeated within it costs about one block, not two. */
static void test_an_unknown_length_keeps_its_window(void **state)
{
    for (size_t i = 0; i < NCODINGS; i++) {
        pt_encoding e = codings[i];
        size_t block = e == PT_ENC_GZIP ? 16 * 1024 : e == PT_ENC_BR ? 32 * 1024 : 256 * 1024;
        unsigned char *in = random_bytes(2 * block, 99);
        memcpy(in + block, in, block);
        pt_coder *c = pt_coder_new(e, default_level(e), 0);
        assert_non_null(c);
        decoder d;
        dec_init(&d, e);
        collected out = {.dec = &d};
        for (size_t off = 0; off < 2 * block; off += 4096)
            assert_int_equal(pt_coder_feed(c, in + off, 4096, PT_CODER_RUN, collect, &out), 0);
        assert_int_equal(pt_coder_feed(c, NULL, 0, PT_CODER_FINISH, collect, &out), 0);
        assert_true(d.ended);
        assert_decoded(&d, in, 2 * block, name_of(e));
        if (out.len > block + block / 4)
            fail_msg("%s: a %zu-byte block repeated took %zu bytes: the window does not reach "
                     "back %zu bytes",
                     name_of(e), block, out.len, block);
        pt_coder_free(c);
        dec_free(&d);
        free(out.p);
        free(in);
    }
}

/* ---- the end, failures, arguments ---- */

static void test_nothing_after_finish(void **state)
{
    for (size_t i = 0; i < NCODINGS; i++) {
        pt_encoding e = codings[i];
        pt_coder *c = pt_coder_new(e, default_level(e), 0);
        assert_non_null(c);
        collected out = {0};
        assert_int_equal(pt_coder_feed(c, "hello", 5, PT_CODER_FINISH, collect, &out), 0);
        size_t calls = out.calls, len = out.len;
        assert_int_equal(pt_coder_feed(c, "more", 4, PT_CODER_RUN, collect, &out), -EINVAL);
        assert_int_equal(pt_coder_feed(c, "more", 4, PT_CODER_FLUSH, collect, &out), -EINVAL);
        assert_int_equal(pt_coder_feed(c, NULL, 0, PT_CODER_FINISH, collect, &out), -EINVAL);
        assert_int_equal(out.calls, calls); /* and nothing more was written */
        assert_int_equal(out.len, len);
        decoder d;
        dec_init(&d, e);
        dec_feed(&d, out.p, out.len);
        assert_true(d.ended);
        assert_decoded(&d, (const unsigned char *)"hello", 5, name_of(e));
        dec_free(&d);
        pt_coder_free(c);
        free(out.p);
    }
}

static void test_a_sink_error_stops_the_coder(void **state)
{
    unsigned char *html = html_like(64 * 1024);
    unsigned char *rnd = random_bytes(64 * 1024, 5);
    static const int rcs[] = {-EPIPE, -ECONNABORTED, -ENOMEM};
    for (size_t i = 0; i < NCODINGS; i++) {
        pt_encoding e = codings[i];
        for (int at = 1; at <= 3; at++) {
            int want = rcs[at - 1];
            pt_coder *c = pt_coder_new(e, default_level(e), 0);
            assert_non_null(c);
            collected out = {.fail_at = at, .fail_rc = want};
            /* 64 KiB that does not compress flushed: several pieces for the sink */
            int rc = 0;
            rc = pt_coder_feed(c, html, 1000, PT_CODER_RUN, collect, &out);
            if (rc == 0)
                rc = pt_coder_feed(c, rnd, 64 * 1024, PT_CODER_FLUSH, collect, &out);
            if (rc != want)
                fail_msg("%s: the sink failing at call %d gave %d, not %d", name_of(e), at, rc,
                         want);
            assert_int_equal(out.calls, (size_t)at); /* nothing after the failing call */
            /* then it takes nothing more, the end included */
            assert_true(pt_coder_feed(c, html, 10, PT_CODER_RUN, collect, &out) < 0);
            assert_true(pt_coder_feed(c, html, 10, PT_CODER_FLUSH, collect, &out) < 0);
            assert_true(pt_coder_feed(c, NULL, 0, PT_CODER_FINISH, collect, &out) < 0);
            assert_int_equal(out.calls, (size_t)at);
            pt_coder_free(c);
            free(out.p);
        }
    }
    free(html);
    free(rnd);
}

static void test_bad_codings_and_levels(void **state)
{
    assert_int_equal(pt_coder_level_min(PT_ENC_GZIP), 1);
    assert_int_equal(pt_coder_level_max(PT_ENC_GZIP), 9);
    assert_int_equal(pt_coder_level_min(PT_ENC_BR), 0);
    assert_int_equal(pt_coder_level_max(PT_ENC_BR), 11);
    assert_int_equal(pt_coder_level_min(PT_ENC_ZSTD), 1);
    assert_int_equal(pt_coder_level_max(PT_ENC_ZSTD), 19);
    static const struct {
        int e, level;
    } bad[] = {
        {PT_ENC_GZIP, 0},      {PT_ENC_GZIP, 10}, {PT_ENC_GZIP, -1},        {PT_ENC_BR, -1},
        {PT_ENC_BR, 12},       {PT_ENC_ZSTD, 0},  {PT_ENC_ZSTD, 20},        {PT_ENC_ZSTD, -5},
        {PT_ENC_IDENTITY, 1},  {PT_ENC_COUNT, 1}, {PT_ENC_COUNT + 10, 3},   {-1, 1},
        {PT_ENC_GZIP, 100000}, {PT_ENC_BR, 1000}, {PT_ENC_ZSTD, INT32_MAX}, {PT_ENC_IDENTITY, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        pt_coder *c = pt_coder_new((pt_encoding)bad[i].e, bad[i].level, 0);
        if (c)
            fail_msg("coding %d level %d: a coder", bad[i].e, bad[i].level);
        assert_int_equal(errno, EINVAL);
        void *out = (void *)1;
        size_t outlen = 1;
        assert_int_equal(pt_coder_all((pt_encoding)bad[i].e, bad[i].level, "abc", 3, &out, &outlen),
                         -EINVAL);
        assert_null(out);
        assert_int_equal(outlen, 0);
    }
    pt_coder_free(NULL);
}

static void test_coder_all(void **state)
{
    unsigned char *html = html_like(100 * 1024);
    unsigned char *rnd = random_bytes(300 * 1024, 3);
    const struct {
        const unsigned char *p;
        size_t len;
    } inputs[] = {
        {NULL, 0}, {(const unsigned char *)"x", 1}, {html, 100 * 1024}, {rnd, 300 * 1024}};
    for (size_t i = 0; i < NCODINGS; i++) {
        pt_encoding e = codings[i];
        int lv[] = {pt_coder_level_min(e), default_level(e), pt_coder_level_max(e)};
        for (size_t l = 0; l < 3; l++) {
            for (size_t k = 0; k < sizeof inputs / sizeof *inputs; k++) {
                void *out = NULL;
                size_t outlen = 0;
                assert_int_equal(pt_coder_all(e, lv[l], inputs[k].p, inputs[k].len, &out, &outlen),
                                 0);
                assert_non_null(out);
                decoder d;
                dec_init(&d, e);
                dec_feed(&d, out, outlen);
                assert_true(d.ended);
                assert_decoded(&d, inputs[k].p, inputs[k].len, name_of(e));
                if (k == 2)
                    assert_true(outlen < inputs[k].len / 4);
                dec_free(&d);
                free(out);
            }
        }
    }
    free(html);
    free(rnd);
}

/* ---- memory ---- */

/* The footprint of a coder of `e` at `level` with `hint` after it compressed `len` bytes of
 * `in` (in 16 KiB pieces, flushed every 64 KiB, then finished): what the libraries hold at
 * their peak (most allocate as the data comes, not at the start). */
static size_t footprint_after(pt_encoding e, int level, uint64_t hint, const unsigned char *in,
                              size_t len)
{
    pt_coder *c = pt_coder_new(e, level, hint);
    assert_non_null(c);
    size_t before = pt_coder_footprint(c);
    assert_true(before >= PT_CODER_OUT); /* its output buffer counts */
    decoder d;
    dec_init(&d, e);
    collected out = {.dec = &d};
    for (size_t off = 0; off < len; off += 16384) {
        size_t n = len - off < 16384 ? len - off : 16384;
        int mode = (off / 16384) % 4 == 3 ? PT_CODER_FLUSH : PT_CODER_RUN;
        assert_int_equal(pt_coder_feed(c, in + off, n, mode, collect, &out), 0);
    }
    assert_int_equal(pt_coder_feed(c, NULL, 0, PT_CODER_FINISH, collect, &out), 0);
    assert_true(d.ended);
    assert_decoded(&d, in, len, name_of(e));
    size_t fp = pt_coder_footprint(c);
    assert_true(fp >= before);
    pt_coder_free(c);
    dec_free(&d);
    free(out.p);
    return fp;
}

/* Allocations counted for a brotli encoder of the test's own. */
typedef struct counted {
    size_t now, peak;
} counted;

static void *count_alloc(void *opaque, size_t n)
{
    counted *c = opaque;
    unsigned char *p = malloc(n + 16);
    assert_non_null(p);
    memcpy(p, &n, sizeof n);
    c->now += n;
    if (c->now > c->peak)
        c->peak = c->now;
    return p + 16;
}

static void count_free(void *opaque, void *q)
{
    if (!q)
        return;
    counted *c = opaque;
    unsigned char *p = (unsigned char *)q - 16;
    size_t n;
    memcpy(&n, p, sizeof n);
    c->now -= n;
    free(p);
}

/* What libbrotlienc itself holds at its peak at `quality` with window `lgwin`, fed `len` bytes
 * as footprint_after() feeds them. */
static size_t brotli_peak(int quality, int lgwin, const unsigned char *in, size_t len)
{
    counted c = {0};
    BrotliEncoderState *s = BrotliEncoderCreateInstance(count_alloc, count_free, &c);
    assert_non_null(s);
    assert_true(BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, (uint32_t)quality));
    assert_true(BrotliEncoderSetParameter(s, BROTLI_PARAM_LGWIN, (uint32_t)lgwin));
    static uint8_t out[PT_CODER_OUT]; /* the coder's size: at levels 0 and 1 it decides a buffer */
    for (size_t off = 0, n = 1; n; off += n) {
        n = off >= len ? 0 : len - off < 16384 ? len - off : 16384;
        BrotliEncoderOperation op = !n                       ? BROTLI_OPERATION_FINISH
                                    : (off / 16384) % 4 == 3 ? BROTLI_OPERATION_FLUSH
                                                             : BROTLI_OPERATION_PROCESS;
        const uint8_t *next_in = in + off;
        size_t avail_in = n;
        do {
            uint8_t *next_out = out;
            size_t avail_out = sizeof out;
            assert_true(BrotliEncoderCompressStream(s, op, &avail_in, &next_in, &avail_out,
                                                    &next_out, NULL));
        } while (avail_in || BrotliEncoderHasMoreOutput(s) ||
                 (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(s)));
    }
    BrotliEncoderDestroyInstance(s);
    assert_int_equal(c.now, 0);
    return c.peak;
}

static void test_footprints(void **state)
{
    enum { LEN = 1024 * 1024 };
    /* text and random bytes: every match finder and every buffer gets used */
    unsigned char *in = html_like(LEN);
    unsigned char *rnd = random_bytes(LEN / 2, 11);
    memcpy(in + LEN / 4, rnd, LEN / 2);
    free(rnd);

    /* A 2 KiB body whose length is known takes a small window, as nginx sizes gzip's. */
    size_t gz_small = footprint_after(PT_ENC_GZIP, 1, 2048, in, 2048);
    size_t gz_unknown = footprint_after(PT_ENC_GZIP, 1, 0, in, 2048);
    printf("gzip 1: a 2 KiB body, its length known: %zu bytes; unknown: %zu bytes\n", gz_small,
           gz_unknown);
    if (gz_small * 4 > gz_unknown)
        fail_msg("a 2 KiB gzip coder holds %zu bytes, an unknown-length one %zu", gz_small,
                 gz_unknown);
    for (size_t i = 1; i < NCODINGS; i++) {
        pt_encoding e = codings[i];
        size_t small = footprint_after(e, default_level(e), 2048, in, 2048);
        size_t unknown = footprint_after(e, default_level(e), 0, in, LEN);
        printf("%s %d: a 2 KiB body, its length known: %zu bytes; unknown: %zu bytes\n", name_of(e),
               default_level(e), small, unknown);
        if (small * 2 > unknown)
            fail_msg("a 2 KiB %s coder holds %zu bytes, an unknown-length one %zu", name_of(e),
                     small, unknown);
    }

    /* Streams of unknown length: their windows capped (gzip 32 KiB, brotli 64 KiB, zstd 512 KiB),
     * and so their memory. The bounds are the libraries' own figures for those windows: gzip,
     * zlib's for its largest window at the memory level the coder takes ((1 << (15 + 2)) +
     * (1 << (8 + 9)), zconf.h); zstd, its estimate for a stream of the level's parameters for a
     * 512 KiB body; brotli, which has no estimate, what its encoder holds for the same stream
     * with a 64 KiB window (lgwin 16), measured here. Each plus the coder's own buffer and a
     * little for the structures around. Beside them, for comparison, what the libraries take
     * with their own default windows (brotli 4 MiB, zstd by level). */
    static const struct {
        pt_encoding e;
        int level;
    } rows[] = {
        {PT_ENC_GZIP, 1}, {PT_ENC_GZIP, 6}, {PT_ENC_GZIP, 9}, {PT_ENC_BR, 0},
        {PT_ENC_BR, 4},   {PT_ENC_BR, 6},   {PT_ENC_BR, 9},   {PT_ENC_BR, 11},
        {PT_ENC_ZSTD, 1}, {PT_ENC_ZSTD, 3}, {PT_ENC_ZSTD, 9}, {PT_ENC_ZSTD, 19},
    };
    enum { NROWS = sizeof rows / sizeof *rows };
    size_t fp[NROWS], known[NROWS], bound[NROWS], lib_default[NROWS];
    for (size_t i = 0; i < NROWS; i++) {
        pt_encoding e = rows[i].e;
        int level = rows[i].level;
        fp[i] = footprint_after(e, level, 0, in, LEN);
        known[i] = footprint_after(e, level, 100 * 1024, in, 100 * 1024);
        size_t own = PT_CODER_OUT + 8 * 1024;
        if (e == PT_ENC_GZIP) {
            bound[i] = (1u << (15 + 2)) + (1u << (8 + 9)) + own;
            lib_default[i] = bound[i] - own;
        } else if (e == PT_ENC_ZSTD) {
            bound[i] =
                ZSTD_estimateCStreamSize_usingCParams(ZSTD_getCParams(level, 512 * 1024, 0)) + own;
            lib_default[i] = ZSTD_estimateCStreamSize(level);
        } else {
            bound[i] = brotli_peak(level, 16, in, LEN) + own;
            lib_default[i] = brotli_peak(level, BROTLI_DEFAULT_WINDOW, in, LEN);
        }
    }
    printf("\n| coding | level | length unknown | 100 KiB body, length known | bound | the "
           "library's default window |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < NROWS; i++)
        printf("| %s | %d | %.0f KiB | %.0f KiB | %.0f KiB | %.0f KiB |\n", name_of(rows[i].e),
               rows[i].level, fp[i] / 1024.0, known[i] / 1024.0, bound[i] / 1024.0,
               lib_default[i] / 1024.0);
    fflush(stdout);
    for (size_t i = 0; i < NROWS; i++) {
        if (fp[i] > bound[i])
            fail_msg("%s %d holds %zu bytes, above %zu", name_of(rows[i].e), rows[i].level, fp[i],
                     bound[i]);
        assert_true(known[i] <= fp[i]); /* a known length never costs more */
    }
    fflush(stdout);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_round_trips),
        NOTHING_LEFT_TEST(test_pieces_and_flushes),
        NOTHING_LEFT_TEST(test_hints_that_are_wrong),
        NOTHING_LEFT_TEST(test_an_unknown_length_keeps_its_window),
        NOTHING_LEFT_TEST(test_nothing_after_finish),
        NOTHING_LEFT_TEST(test_a_sink_error_stops_the_coder),
        NOTHING_LEFT_TEST(test_bad_codings_and_levels),
        NOTHING_LEFT_TEST(test_coder_all),
        NOTHING_LEFT_TEST(test_footprints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
