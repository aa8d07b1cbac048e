/*
 * fuzz_h2: frames from a client to porter's HTTP/2 connection (server/h2/conn.c) through the
 * dispatch of an address that offers HTTP/2 by prior knowledge, on the site of fuzz_request
 * (harness.h): static files, proxy locations, embedded handlers that answer later, stream and
 * read the body.
 *
 * The input is what the client sends after the connection preface, which the target prepends;
 * the whole goes in two writes (the preface with the input's first half, then the rest).
 * Checked: no crash (ASan, UBSan), nothing left of the connection once its client and upstream
 * are gone (the harness), every request porter forwarded well-formed (the harness), and what
 * porter wrote back is HTTP/2 a client can read: whole frames (the last may be cut short by the
 * connection's end) of the types a server sends, on the streams they belong to, the server's
 * SETTINGS first, every header block decodable by an HPACK decoder that follows the connection
 * from its start and beginning with a valid :status, no DATA before a stream's HEADERS and
 * nothing after its END_STREAM.
 */
#include <nghttp2/nghttp2.h>

#include "server/h2/conn.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/harness.h"

/* The input with the preface before it. */
static uint8_t *buf;
static size_t buf_cap;

/* What the checker knows of a stream porter wrote on. */
#define TRACKED 256
typedef struct seen_stream {
    int32_t id;
    bool headers, ended;
} seen_stream;

static seen_stream streams[TRACKED];
static size_t nstreams;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_harness_init_with(true);
    return 0;
}

static uint32_t be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t be31(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) & 0x7fffffffu;
}

static seen_stream *stream_seen(int32_t id)
{
    for (size_t i = 0; i < nstreams; i++)
        if (streams[i].id == id)
            return &streams[i];
    if (nstreams == TRACKED)
        return NULL; /* more streams than an input makes: not followed */
    streams[nstreams] = (seen_stream){.id = id};
    return &streams[nstreams++];
}

/* Decodes one header block: it must decode, and a response's starts with a :status of three
 * digits; field names are lower case (RFC 9113 section 8.2.1). */
static void check_block(nghttp2_hd_inflater *inf, const uint8_t *p, size_t len, int32_t id)
{
    bool first = true;
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t n = nghttp2_hd_inflate_hd2(inf, &nv, &flags, p, len, 1);
        FUZZ_CHECK(n >= 0, "stream %d: an HPACK block that does not decode: %s", id,
                   nghttp2_strerror((int)n));
        p += n;
        len -= (size_t)n;
        if (flags & NGHTTP2_HD_INFLATE_EMIT) {
            if (first)
                FUZZ_CHECK(nv.namelen == 7 && memcmp(nv.name, ":status", 7) == 0 &&
                               nv.valuelen == 3 && nv.value[0] >= '1' && nv.value[0] <= '5' &&
                               nv.value[1] >= '0' && nv.value[1] <= '9' && nv.value[2] >= '0' &&
                               nv.value[2] <= '9',
                           "stream %d: a header block that does not start with :status (%.*s)", id,
                           (int)nv.namelen, nv.name);
            else
                FUZZ_CHECK(nv.namelen && nv.name[0] != ':',
                           "stream %d: a pseudo-header after :status", id);
            for (size_t i = 0; i < nv.namelen; i++)
                FUZZ_CHECK(!(nv.name[i] >= 'A' && nv.name[i] <= 'Z'),
                           "stream %d: an upper-case field name %.*s", id, (int)nv.namelen,
                           nv.name);
            first = false;
        }
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(inf);
            break;
        }
        if (len == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT))
            break;
    }
    FUZZ_CHECK(!first, "stream %d: an empty header block", id);
}

/* Checks what porter wrote (see the top of this file). */
static void check_frames(const uint8_t *p, size_t len)
{
    nghttp2_hd_inflater *inf;
    FUZZ_CHECK(nghttp2_hd_inflate_new(&inf) == 0, "out of memory");
    nstreams = 0;
    /* A header block in CONTINUATION frames, gathered. */
    static uint8_t *block;
    static size_t block_cap;
    size_t block_len = 0;
    int32_t block_id = 0;
    bool in_block = false, end_after_block = false;
    size_t at = 0, frames = 0;
    while (len - at >= 9) {
        uint32_t flen = be24(p + at);
        uint8_t type = p[at + 3], flags = p[at + 4];
        int32_t id = (int32_t)be31(p + at + 5);
        if (len - at - 9 < flen)
            break; /* cut short: the connection ended */
        const uint8_t *pl = p + at + 9;
        at += 9 + flen;
        frames++;
        if (frames == 1)
            FUZZ_CHECK(type == NGHTTP2_SETTINGS && !(flags & NGHTTP2_FLAG_ACK) && id == 0,
                       "porter's first frame is not its SETTINGS (type %u)", type);
        FUZZ_CHECK(!in_block || (type == NGHTTP2_CONTINUATION && id == block_id),
                   "a header block of stream %d interrupted by a frame of type %u", block_id, type);
        switch (type) {
        case NGHTTP2_DATA:
        case NGHTTP2_HEADERS:
        case NGHTTP2_RST_STREAM:
            FUZZ_CHECK(id > 0 && id % 2 == 1, "a frame of type %u on stream %d", type, id);
            break;
        case NGHTTP2_SETTINGS:
        case NGHTTP2_PING:
        case NGHTTP2_GOAWAY:
            FUZZ_CHECK(id == 0, "a frame of type %u on stream %d", type, id);
            break;
        case NGHTTP2_WINDOW_UPDATE:
        case NGHTTP2_CONTINUATION:
            break;
        default:
            FUZZ_CHECK(false, "porter sent a frame of type %u", type);
        }
        seen_stream *st = id ? stream_seen(id) : NULL;
        if (type == NGHTTP2_DATA && st) {
            FUZZ_CHECK(st->headers, "DATA on stream %d before its HEADERS", id);
            FUZZ_CHECK(!st->ended, "DATA on stream %d after its END_STREAM", id);
            st->ended = flags & NGHTTP2_FLAG_END_STREAM;
        }
        if (type == NGHTTP2_HEADERS) {
            FUZZ_CHECK(!st || !st->ended, "HEADERS on stream %d after its END_STREAM", id);
            size_t off = 0, pad = 0;
            if (flags & NGHTTP2_FLAG_PADDED) {
                FUZZ_CHECK(flen >= 1, "a padded HEADERS frame without its pad length");
                pad = pl[0];
                off = 1;
            }
            if (flags & NGHTTP2_FLAG_PRIORITY)
                off += 5;
            FUZZ_CHECK(off + pad <= flen, "a HEADERS frame shorter than its padding");
            block_len = 0;
            block_id = id;
            end_after_block = flags & NGHTTP2_FLAG_END_STREAM;
            pl += off;
            flen -= (uint32_t)(off + pad);
            in_block = true;
        }
        if (type == NGHTTP2_CONTINUATION)
            FUZZ_CHECK(in_block, "a CONTINUATION frame without a header block");
        if (in_block) {
            if (block_len + flen > block_cap) {
                block_cap = 2 * (block_len + flen);
                block = realloc(block, block_cap);
                FUZZ_CHECK(block, "out of memory");
            }
            memcpy(block + block_len, pl, flen);
            block_len += flen;
            if (flags & NGHTTP2_FLAG_END_HEADERS) {
                in_block = false;
                check_block(inf, block, block_len, block_id);
                seen_stream *bs = stream_seen(block_id);
                if (bs) {
                    bs->headers = true;
                    bs->ended = end_after_block;
                }
            }
        }
    }
    nghttp2_hd_inflate_del(inf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (PT_H2_PREFACE_LEN + size > buf_cap) {
        buf_cap = PT_H2_PREFACE_LEN + size;
        buf = realloc(buf, buf_cap);
        FUZZ_CHECK(buf, "out of memory");
    }
    memcpy(buf, PT_H2_PREFACE, PT_H2_PREFACE_LEN);
    if (size)
        memcpy(buf + PT_H2_PREFACE_LEN, data, size);
    fuzz_exchange x = {.client = buf,
                       .client_len = PT_H2_PREFACE_LEN + size,
                       .client_split = PT_H2_PREFACE_LEN + size / 2};
    size_t len;
    bool complete;
    const char *out = fuzz_harness_run(&x, &len, &complete);
    if (complete)
        check_frames((const uint8_t *)out, len);
    return 0;
}
