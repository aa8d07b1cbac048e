/*
 * Compression on the fly (server/core/compress.c) through the real HTTP/1 protocol over the
 * pair transport (tests/support/http1.h): handlers of the test's own answer with
 * pt_request_respond() (server/core/response.c) on requests whose req->compress is a
 * pt_conf_compress the test fills by hand, and what the client receives is parsed and decoded
 * with the libraries' own decoders (zlib's inflate, BrotliDecoderDecompressStream,
 * ZSTD_decompressStream).
 *
 * A memory body compressed whole, with its length; a handler's stream chunked and decodable
 * write by write; a large file read as the client takes it, a client that stops reading and
 * one that leaves halfway; HEAD; the statuses and answers left alone; Vary, ETag,
 * Content-Length and Accept-Ranges rewritten; Cache-Control: no-transform; gzip_proxied,
 * gzip_disable msie6 and gzip_http_version; and the same memory body over HTTP/2.
 *
 * Every test ends with nothing left (tests/support.h): no custodian, buffer, watcher or fd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <brotli/decode.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "tests/support.h"
#include "tests/support/http1.h"

#include "server/core/compress.h"
#include "server/core/conf.h"
#include "server/h2/conn.h"

#define CONF(extra)                                                                                \
    "response_timeout 60s;\n"                                                                      \
    "response_send_timeout 60s;\n"                                                                 \
    "server {\n    server_name c.test;\n    server_tokens off;\n" extra "}\n"

/* ---- bodies ---- */

/* `len` bytes of a page (compresses well), then with `random_from` < len, bytes that do not
 * compress from there on. malloc'ed. */
static unsigned char *make_body(size_t len, size_t random_from)
{
    static const char *words[] = {"porter", "serves", "files", "and", "streams", "the"};
    unsigned char *p = malloc(len + 1);
    assert_non_null(p);
    uint32_t seed = 1;
    for (size_t n = 0; n < len;) {
        char piece[128];
        seed = seed * 1103515245u + 12345u;
        int k = snprintf(piece, sizeof piece, "<p class=\"c%u\">%s %s</p>\n", (seed >> 16) % 40,
                         words[(seed >> 8) % 6], words[(seed >> 20) % 6]);
        size_t take = (size_t)k < len - n ? (size_t)k : len - n;
        memcpy(p + n, piece, take);
        n += take;
    }
    uint64_t x = 88172645463325252ull;
    for (size_t i = random_from; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
    return p;
}

/* ---- decoding: the libraries' own streaming decoders ---- */

typedef struct decoder {
    pt_encoding e;
    z_stream z;
    BrotliDecoderState *br;
    ZSTD_DStream *zs;
    unsigned char *out;
    size_t len, cap;
    bool ended;
} decoder;

static void dec_init(decoder *d, pt_encoding e)
{
    memset(d, 0, sizeof *d);
    d->e = e;
    if (e == PT_ENC_GZIP) {
        assert_int_equal(inflateInit2(&d->z, 15 + 32), Z_OK);
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

/* Decodes `n` bytes, all of which must be taken, none after the end. */
static void dec_feed(decoder *d, const void *p, size_t n)
{
    enum { ROOM = 65536 };
    if (n && d->ended)
        fail_msg("%zu bytes after the end of the stream", n);
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
                assert_int_equal(d->z.avail_in, 0);
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
                assert_int_equal(avail_in, 0);
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
            if (rc == 0) {
                d->ended = true;
                assert_int_equal(ib.pos, ib.size);
                return;
            }
            if (ib.pos == ib.size && ob.pos < ob.size)
                return;
        }
    }
}

static void assert_bytes(const unsigned char *got, size_t got_len, const unsigned char *want,
                         size_t len, const char *what)
{
    if (got_len != len)
        fail_msg("%s: %zu bytes, not %zu", what, got_len, len);
    if (len && memcmp(got, want, len) != 0)
        fail_msg("%s: the bytes differ", what);
}

/* Decodes a whole body of coding `e`: it must end, and be `want`. */
static void assert_decodes_to(pt_encoding e, const void *body, size_t len,
                              const unsigned char *want, size_t want_len)
{
    decoder d;
    dec_init(&d, e);
    dec_feed(&d, body, len);
    if (!d.ended)
        fail_msg("the %s stream did not end", pt_encoding_name(e));
    assert_bytes(d.out, d.len, want, want_len, pt_encoding_name(e));
    dec_free(&d);
}

/* ---- HTTP/1 answers, as the client reads them ---- */

typedef struct reply {
    int status;
    char head[8192];  /* the header lines, each ending in CRLF */
    const char *body; /* what follows the head */
    size_t body_len;
    size_t whole; /* the head's length and body_len */
} reply;

/* Parses the answer at the start of `buf`; false if its head is not all there. */
static bool parse_reply(const char *buf, size_t len, reply *r)
{
    memset(r, 0, sizeof *r);
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return false;
    assert_true(len > 12 && memcmp(buf, "HTTP/1.", 7) == 0);
    r->status = atoi(buf + 9);
    const char *lines = memchr(buf, '\n', len) + 1;
    size_t n = (size_t)(end + 2 - lines);
    assert_true(n < sizeof r->head);
    memcpy(r->head, lines, n);
    r->head[n] = '\0';
    r->body = end + 4;
    r->body_len = len - (size_t)(end + 4 - buf);
    return true;
}

/* How many header lines named `name` the answer has; the first one's value into `value`. */
static int header_n(const reply *r, const char *name, char *value, size_t cap)
{
    int n = 0;
    size_t nl = strlen(name);
    for (const char *p = r->head; *p;) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            if (!n++ && value) {
                const char *v = p + nl + 1;
                while (*v == ' ')
                    v++;
                snprintf(value, cap, "%.*s", (int)(eol - v), v);
            }
        }
        p = eol + 2;
    }
    return n;
}

/* The value of the only `name` line, or NULL when there is none (two fail the test). */
static const char *header(const reply *r, const char *name)
{
    static char v[4][512];
    static int k;
    char *b = v[k++ % 4];
    int n = header_n(r, name, b, 512);
    if (n > 1)
        fail_msg("%d %s lines in\n%s", n, name, r->head);
    return n ? b : NULL;
}

/* The data of the complete chunks of a chunked body into `out` (*out_len bytes, malloc'ed);
 * returns whether its last chunk came, and sets *used to the bytes it took. */
static bool dechunk(const char *p, size_t len, unsigned char **out, size_t *out_len, size_t *used)
{
    size_t pos = 0;
    *out = NULL;
    *out_len = 0;
    *used = 0;
    for (;;) {
        const char *eol = memmem(p + pos, len - pos, "\r\n", 2);
        if (!eol)
            return false;
        char *after;
        unsigned long n = strtoul(p + pos, &after, 16);
        assert_true(after == eol); /* no extensions from porter */
        size_t data = (size_t)(eol + 2 - p);
        if (n == 0) {
            if (len - data < 2)
                return false;
            assert_memory_equal(p + data, "\r\n", 2); /* no trailer */
            *used = data + 2;
            return true;
        }
        if (len - data < n + 2)
            return false;
        assert_memory_equal(p + data + n, "\r\n", 2);
        *out = realloc(*out, *out_len + n);
        assert_non_null(*out);
        memcpy(*out + *out_len, p + data, n);
        *out_len += n;
        pos = data + n + 2;
        *used = pos;
    }
}

/* ---- the settings, filled by hand ---- */

static char *listed_types[] = {"text/plain", "application/json"};
static pt_conf_compress cc;

/* gzip on alone, the defaults of docs/compression.md otherwise. */
static void settings_default(void)
{
    memset(&cc, 0, sizeof cc);
    static const int levels[PT_ENC_COUNT] = {0, 4, 3, 1};
    for (int e = PT_ENC_BR; e < PT_ENC_COUNT; e++) {
        cc.coding[e].level = levels[e];
        cc.coding[e].types = listed_types;
        cc.coding[e].ntypes = 2;
        cc.coding[e].min_length = 20;
    }
    cc.coding[PT_ENC_GZIP].on = true;
    cc.vary = true;
    cc.http_version = 11;
    cc.order = pt_encoding_default_order;
    cc.cache = true;
}

/* ---- the test's handlers ---- */

typedef struct app {
    bool compress_off;         /* leave req->compress as the vhost has it (NULL: no coding) */
    int status;                /* the answer of /mem and /file (200 unless set) */
    const char *type;          /* their Content-Type (text/html unless set; "-": none) */
    const char *extra;         /* their extra header lines */
    const char *more;          /* and more_headers */
    const char *type_hint;     /* /mem's, for a head-only answer */
    bool no_body;              /* /mem is head-only */
    time_t last_modified;      /* /mem's */
    const unsigned char *body; /* /mem's body */
    size_t body_len;
    char file_path[PATH_MAX]; /* /file's */
    size_t file_len;
    pt_request *held; /* /stream's, and /file's while it goes */
    int aborts, released;
} app;

static app the_app;

static void on_abort(pt_request *req, void *data)
{
    app *a = data;
    a->aborts++;
    a->held = NULL;
}

static void on_release(void *data)
{
    ((app *)data)->released++;
}

static void hold(app *a, pt_request *req)
{
    a->held = req;
    pt_request_on_abort(req, on_abort, a);
    pt_custodian_register(pt_request_custodian(req), on_release, a);
}

static bool path_is(const pt_request *req, const char *p)
{
    return req->path.len == strlen(p) && memcmp(req->path.p, p, req->path.len) == 0;
}

static void init_answer(app *a, pt_response *r)
{
    pt_response_init(r, a->status ? a->status : 200);
    r->content_type = !a->type ? "text/html" : strcmp(a->type, "-") ? a->type : NULL;
    if (a->extra)
        r->extra_headers = (pt_str){a->extra, strlen(a->extra)};
    if (a->more)
        r->more_headers = (pt_str){a->more, strlen(a->more)};
    r->last_modified = a->last_modified;
}

/* /mem: the_app's body from memory; /file: its file; /stream: a stream the test writes. */
static void route(pt_request *req)
{
    app *a = &the_app;
    if (!a->compress_off) {
        req->compress = &cc; /* as the site sets them for a location with a coding on */
        req->respond_via = pt_compress_respond;
    }
    pt_response r;
    init_answer(a, &r);
    if (path_is(req, "/mem")) {
        r.body = a->body;
        r.body_len = a->body_len;
        r.no_body = a->no_body;
        r.type_hint = a->type_hint;
        assert_int_equal(pt_request_respond(req, &r), 0);
    } else if (path_is(req, "/file")) {
        hold(a, req);
        r.file_fd = open(a->file_path, O_RDONLY | O_CLOEXEC);
        assert_true(r.file_fd >= 0);
        r.body_len = a->file_len;
        assert_int_equal(pt_request_respond(req, &r), 0);
    } else if (path_is(req, "/stream")) {
        hold(a, req);
        r.stream = true;
        r.stream_length = -1;
        assert_int_equal(pt_request_respond(req, &r), 0);
    } else {
        fail_msg("no handler for %.*s", (int)req->path.len, req->path.p);
    }
}

/* ---- fixture ---- */

static h1_site site;
static char tmp[PATH_MAX];

static void open_site(void)
{
    memset(&the_app, 0, sizeof the_app);
    settings_default();
    nothing_left_begin();
    h1_open(&site, CONF(""), "/nonexistent", false, route);
    h1_connect(&site);
}

static void close_site(void)
{
    h1_close(&site);
}

/* Whether `buf` holds a whole answer to a GET (its head, and its body by Content-Length or
 * chunks), or the connection closed after it. */
static bool is_whole(const char *buf, size_t len, bool eof)
{
    reply r;
    if (!parse_reply(buf, len, &r))
        return false;
    char v[64];
    if (header_n(&r, "content-length", v, sizeof v))
        return r.body_len >= strtoull(v, NULL, 10);
    if (header_n(&r, "transfer-encoding", NULL, 0)) {
        unsigned char *data_;
        size_t n, used;
        bool done = dechunk(r.body, r.body_len, &data_, &n, &used);
        free(data_);
        return done;
    }
    return eof;
}

/* Runs the loop, reading, until the output holds a whole answer; fails after 5 s. */
static bool whole_answer(void *data)
{
    h1_site *h = data;
    h1_recv(h);
    return is_whole(h->out, h->out_len, h->p.eof);
}

/* A large answer is taken here rather than in the harness's buffer. */
#define RX_CAP (8 * 1024 * 1024)
static char *rx;
static size_t rx_len;

static size_t rx_take(void)
{
    if (!rx) {
        rx = malloc(RX_CAP);
        assert_non_null(rx);
    }
    return site.p.from_conn >= 0 ? pair_recv(&site.p, rx, &rx_len, RX_CAP) : 0;
}

static bool rx_whole(void *data)
{
    rx_take();
    return is_whole(rx, rx_len, site.p.eof);
}

/* Sends `request` and returns the whole answer (in site.out until the next request). */
static reply *ask(const char *request)
{
    static reply r;
    site.out_len = 0;
    site.out[0] = '\0';
    h1_send(&site, request);
    if (!loop_run_until(site.loop, whole_answer, &site, 5))
        fail_msg("no whole answer to\n%s\ngot\n%s", request, site.out);
    assert_true(parse_reply(site.out, site.out_len, &r));
    return &r;
}

#define GET(path, more) "GET " path " HTTP/1.1\r\nHost: c.test\r\n" more "\r\n"
#define GZIP_OK "Accept-Encoding: gzip\r\n"

/* The body of `r` as it came, dechunked when chunked (malloc'ed). */
static unsigned char *body_of(const reply *r, size_t *len)
{
    if (header(r, "transfer-encoding")) {
        assert_string_equal(header(r, "transfer-encoding"), "chunked");
        unsigned char *p;
        size_t used;
        assert_true(dechunk(r->body, r->body_len, &p, len, &used));
        assert_int_equal(used, r->body_len);
        return p;
    }
    const char *cl = header(r, "content-length");
    assert_non_null(cl);
    *len = strtoull(cl, NULL, 10);
    assert_int_equal(r->body_len, *len);
    unsigned char *p = malloc(*len + 1);
    assert_non_null(p);
    memcpy(p, r->body, *len);
    return p;
}

static void free_rx(void)
{
    free(rx);
}

/* ---- a body from memory ---- */

static void test_a_memory_body_is_compressed_whole(void **state)
{
    enum { LEN = 50 * 1024 };
    unsigned char *body = make_body(LEN, LEN);
    static const struct {
        pt_encoding e;
        const char *accept;
    } cases[] = {
        {PT_ENC_GZIP, GET("/mem", "Accept-Encoding: gzip\r\n")},
        {PT_ENC_BR, GET("/mem", "Accept-Encoding: br\r\n")},
        {PT_ENC_ZSTD, GET("/mem", "Accept-Encoding: zstd\r\n")},
        {PT_ENC_ZSTD, GET("/mem", "Accept-Encoding: gzip, deflate, br, zstd\r\n")},
        {PT_ENC_GZIP, GET("/mem", "Accept-Encoding: gzip;q=1, br;q=0.5, zstd;q=0.1\r\n")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        open_site();
        for (int e = PT_ENC_BR; e < PT_ENC_COUNT; e++)
            cc.coding[e].on = true;
        the_app.body = body;
        the_app.body_len = LEN;
        reply *r = ask(cases[i].accept);
        assert_int_equal(r->status, 200);
        assert_string_equal(header(r, "content-encoding"), pt_encoding_name(cases[i].e));
        assert_string_equal(header(r, "content-type"), "text/html");
        assert_string_equal(header(r, "vary"), "Accept-Encoding");
        assert_null(header(r, "transfer-encoding")); /* compressed whole: its length is known */
        size_t n;
        unsigned char *got = body_of(r, &n);
        assert_true(n < LEN / 4);
        assert_decodes_to(cases[i].e, got, n, body, LEN);
        free(got);
        /* the connection goes on */
        assert_false(site.p.eof);
        assert_int_equal(site.c->state, PT_CONN_IDLE);
        close_site();
    }
    free(body);
}

/* ---- a handler's stream ---- */

static void test_a_stream_is_decodable_write_by_write(void **state)
{
    enum { LEN = 400 * 1024 };
    unsigned char *body = make_body(LEN, 200 * 1024);
    /* the last, whatever is left */
    static const size_t writes[] = {5, 1, 300, 4096, 20000, 70000, 13, 150000, 60000, 0};
    const pt_encoding codings[] = {PT_ENC_GZIP, PT_ENC_BR, PT_ENC_ZSTD};
    for (size_t c = 0; c < 3; c++) {
        pt_encoding e = codings[c];
        open_site();
        cc.coding[PT_ENC_GZIP].on = false;
        cc.coding[e].on = true;
        the_app.type = "text/plain";
        char req[256];
        snprintf(req, sizeof req, GET("/stream", "Accept-Encoding: %s\r\n"), pt_encoding_name(e));
        h1_send(&site, req);
        pt_request *held = the_app.held;
        assert_non_null(held);
        reply r;
        assert_true(parse_reply(site.out, site.out_len, &r)); /* the head goes at once */
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "content-encoding"), pt_encoding_name(e));
        assert_string_equal(header(&r, "transfer-encoding"), "chunked");
        assert_null(header(&r, "content-length"));
        size_t written = 0;
        for (size_t w = 0; w < sizeof writes / sizeof *writes; w++) {
            size_t len = writes[w] ? writes[w] : LEN - written;
            int rc = pt_response_write(held, body + written, len);
            assert_int_equal(rc, 0);
            written += len;
            /* what came so far decodes to everything written so far */
            for (int i = 0; i < 50; i++) {
                h1_pump(&site);
                if (!pt_response_pending(held))
                    break;
            }
            assert_false(pt_response_pending(held));
            assert_true(parse_reply(site.out, site.out_len, &r));
            unsigned char *data;
            size_t n, used;
            assert_false(dechunk(r.body, r.body_len, &data, &n, &used));
            assert_int_equal(used, r.body_len); /* nothing half-sent */
            decoder d;
            dec_init(&d, e);
            dec_feed(&d, data, n);
            char what[64];
            snprintf(what, sizeof what, "%s after write %zu", pt_encoding_name(e), w);
            assert_bytes(d.out, d.len, body, written, what);
            assert_false(d.ended);
            dec_free(&d);
            free(data);
        }
        assert_int_equal(written, LEN);
        assert_int_equal(pt_response_end(held), 0);
        h1_pump(&site);
        assert_true(parse_reply(site.out, site.out_len, &r));
        size_t n;
        unsigned char *data = body_of(&r, &n);
        assert_decodes_to(e, data, n, body, LEN);
        free(data);
        assert_int_equal(the_app.aborts, 0);
        assert_int_equal(the_app.released, 1);
        assert_int_equal(site.c->state, PT_CONN_IDLE);
        close_site();
    }
    free(body);
}

/* ---- a file ---- */

enum { FILE_LEN = 1536 * 1024 };

static unsigned char *put_file(void)
{
    unsigned char *body = make_body(FILE_LEN, FILE_LEN / 3); /* most of it does not compress */
    temp_dir_make(tmp, sizeof tmp, "compress");
    temp_put_file(tmp, "f.html", body, FILE_LEN);
    temp_path(the_app.file_path, tmp, "f.html");
    the_app.file_len = FILE_LEN;
    return body;
}

static void test_a_large_file_waits_for_the_client(void **state)
{
    open_site();
    unsigned char *body = put_file();
    /* The client asks, and reads nothing. */
    pair_send(&site.p, GET("/file", GZIP_OK));
    for (int i = 0; i < 20; i++)
        ev_run(site.loop, EVRUN_NOWAIT);
    assert_non_null(the_app.held);
    size_t pending = pt_outq_pending(&site.c->out);
    /* Held back: a piece or two over the protocol's mark, not the whole file. */
    if (pending > 256 * 1024)
        fail_msg("%zu bytes queued for a client that reads nothing", pending);
    for (int i = 0; i < 20; i++)
        ev_run(site.loop, EVRUN_NOWAIT);
    assert_int_equal(pt_outq_pending(&site.c->out), pending); /* and nothing more is made */
    /* It reads: the rest follows, whole. */
    rx_len = 0;
    if (!loop_run_until(site.loop, rx_whole, NULL, 10))
        fail_msg("the file did not come whole: %zu bytes", rx_len);
    reply r;
    assert_true(parse_reply(rx, rx_len, &r));
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "content-encoding"), "gzip");
    size_t n;
    unsigned char *data = body_of(&r, &n);
    assert_decodes_to(PT_ENC_GZIP, data, n, body, FILE_LEN);
    free(data);
    assert_int_equal(the_app.aborts, 0);
    assert_int_equal(the_app.released, 1);
    free(body);
    close_site();
    temp_dir_remove(tmp);
}

/* Runs the loop without waiting until the client has `len` bytes or more. */
static void read_at_least(size_t len)
{
    rx_len = 0;
    for (int i = 0; i < 1000 && rx_len < len; i++) {
        ev_run(site.loop, EVRUN_NOWAIT);
        rx_take();
    }
    assert_true(rx_len >= len);
}

static void test_a_client_leaving_halfway_leaves_nothing(void **state)
{
    /* 0: it goes while the layer waits for it to read; 1: it stops reading, the next write
     * fails; 2 and 3: a file that compresses well, read in turns of the loop (it stops
     * reading, or goes, between two turns) */
    for (int how = 0; how < 4; how++) {
        open_site();
        unsigned char *body = put_file();
        if (how >= 2) {
            memset(body, 'a', FILE_LEN);
            temp_put_file(tmp, "f.html", body, FILE_LEN);
        }
        pair_send(&site.p, GET("/file", GZIP_OK));
        read_at_least(how >= 2 ? 100 : 100 * 1024);
        assert_non_null(the_app.held);
        if (how == 0 || how == 3) {
            pair_client_close(&site.p); /* both ways: the connection reads end of stream */
        } else {
            close(site.p.from_conn); /* it stops reading: the next write fails */
            site.p.from_conn = -1;
        }
        for (int i = 0; i < 20; i++)
            ev_run(site.loop, EVRUN_NOWAIT);
        assert_int_equal(h1_live(&site), 0);
        assert_int_equal(the_app.aborts, 1);
        assert_int_equal(the_app.released, 1);
        /* no callback after: nothing more is written or read from the file */
        unsigned after = site.writes;
        for (int i = 0; i < 20; i++)
            ev_run(site.loop, EVRUN_NOWAIT);
        assert_int_equal(site.writes, after);
        free(body);
        close_site(); /* nothing left: the file's descriptor, the coder's request, the timers */
        temp_dir_remove(tmp);
    }
}

static void test_a_stream_whose_client_left(void **state)
{
    for (int how = 0; how < 2; how++) {
        open_site();
        h1_send(&site, GET("/stream", GZIP_OK));
        pt_request *held = the_app.held;
        assert_non_null(held);
        assert_int_equal(pt_response_write(held, "event one\n", 10), 0);
        h1_pump(&site);
        if (how == 0) {
            /* it stops reading: the handler's next write fails, the handler is told */
            close(site.p.from_conn);
            site.p.from_conn = -1;
            assert_true(pt_response_write(held, "event two\n", 10) < 0);
        } else {
            pair_client_close(&site.p);
            h1_pump(&site);
        }
        assert_int_equal(the_app.aborts, 1);
        assert_int_equal(the_app.released, 1);
        assert_null(the_app.held);
        h1_pump(&site);
        assert_int_equal(h1_live(&site), 0);
        close_site();
    }
}

/* ---- HEAD ---- */

static void test_head_gets_the_compressed_head_alone(void **state)
{
    enum { LEN = 10000 };
    unsigned char *body = make_body(LEN, LEN);
    open_site();
    the_app.body = body;
    the_app.body_len = LEN;
    the_app.extra = "ETag: \"v1\"\r\n";
    /* a HEAD, then a GET after it on the same connection */
    h1_send(&site, "HEAD /mem HTTP/1.1\r\nHost: c.test\r\n" GZIP_OK "\r\n");
    reply r;
    assert_true(parse_reply(site.out, site.out_len, &r));
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "content-encoding"), "gzip");
    assert_string_equal(header(&r, "vary"), "Accept-Encoding");
    assert_string_equal(header(&r, "etag"), "W/\"v1\"");
    assert_null(header(&r, "content-length")); /* not the identity's */
    assert_int_equal(r.body_len, 0);           /* and no body */
    assert_int_equal(site.c->state, PT_CONN_IDLE);
    reply *g = ask(GET("/mem", GZIP_OK));
    assert_string_equal(header(g, "content-encoding"), "gzip");
    size_t n;
    unsigned char *data = body_of(g, &n);
    assert_decodes_to(PT_ENC_GZIP, data, n, body, LEN);
    free(data);
    close_site();
    free(body);
}

/* ---- what is left alone ---- */

/* The answer to `request` with req->compress as set, and with it NULL: the same bytes. */
static void assert_untouched(const char *request)
{
    site.out_len = 0;
    h1_send(&site, request);
    assert_true(site.out_len > 0);
    static char with[H1_OUT_MAX], without[H1_OUT_MAX];
    h1_mask_dates(&site, site.out, site.out_len, with, sizeof with);
    site.out_len = 0;
    the_app.compress_off = true;
    h1_send(&site, request);
    the_app.compress_off = false;
    h1_mask_dates(&site, site.out, site.out_len, without, sizeof without);
    if (strcmp(with, without) != 0)
        fail_msg("with compression\n---\n%s\n---\nwithout\n---\n%s\n---", with, without);
    site.out_len = 0;
}

static void test_statuses_left_alone(void **state)
{
    enum { LEN = 5000 };
    unsigned char *body = make_body(LEN, LEN);
    open_site();
    the_app.body = body;
    the_app.body_len = LEN;
    the_app.extra = "ETag: \"v1\"\r\n";
    the_app.status = 206;
    the_app.more = "Content-Range: bytes 0-4999/20000\r\n";
    assert_untouched(GET("/mem", GZIP_OK));
    the_app.more = NULL;
    the_app.status = 204;
    the_app.body_len = 0;
    assert_untouched(GET("/mem", GZIP_OK));
    the_app.status = 304;
    the_app.no_body = true;
    assert_untouched(GET("/mem", GZIP_OK));
    the_app.status = 301;
    the_app.body_len = LEN;
    the_app.no_body = false;
    assert_untouched(GET("/mem", GZIP_OK));
    the_app.status = 500;
    assert_untouched(GET("/mem", GZIP_OK));
    /* 403 and 404 are compressed (error pages are pages) */
    the_app.status = 404;
    reply *r = ask(GET("/mem", GZIP_OK));
    assert_string_equal(header(r, "content-encoding"), "gzip");
    close_site();
    free(body);
}

static void test_a_304_about_a_compressible_type(void **state)
{
    open_site();
    the_app.status = 304;
    the_app.no_body = true;
    the_app.type = "-";
    the_app.type_hint = "text/html";
    the_app.extra = "ETag: \"v1\"\r\n";
    h1_send(&site, GET("/mem", GZIP_OK));
    reply r;
    assert_true(parse_reply(site.out, site.out_len, &r));
    assert_int_equal(r.status, 304);
    /* the head a 200 would have had: a weak ETag and Vary, no Content-Encoding */
    assert_string_equal(header(&r, "etag"), "W/\"v1\"");
    assert_string_equal(header(&r, "vary"), "Accept-Encoding");
    assert_null(header(&r, "content-encoding"));
    assert_null(header(&r, "content-length"));
    assert_int_equal(r.body_len, 0);
    close_site();
}

static void test_answers_left_alone(void **state)
{
    enum { LEN = 5000 };
    unsigned char *body = make_body(LEN, LEN);
    open_site();
    the_app.body = body;
    the_app.body_len = LEN;
    /* a type no coding lists */
    the_app.type = "image/png";
    assert_untouched(GET("/mem", GZIP_OK));
    /* already encoded */
    the_app.type = NULL;
    the_app.extra = "Content-Encoding: br\r\n";
    assert_untouched(GET("/mem", GZIP_OK));
    /* Cache-Control: no-transform, wherever it is in the list */
    the_app.extra = "Cache-Control: no-transform\r\n";
    assert_untouched(GET("/mem", GZIP_OK));
    the_app.extra = "Cache-Control: public, No-Transform, max-age=60\r\n";
    assert_untouched(GET("/mem", GZIP_OK));
    /* shorter than min_length */
    the_app.extra = NULL;
    the_app.body_len = 19;
    assert_untouched(GET("/mem", GZIP_OK));
    close_site();
    free(body);
}

/* ---- the head ---- */

static void test_the_head_of_a_compressed_answer(void **state)
{
    enum { LEN = 5000 };
    unsigned char *body = make_body(LEN, LEN);
    open_site();
    the_app.body = body;
    the_app.body_len = LEN;
    the_app.extra = "ETag: \"abc\"\r\nContent-Length: 5000\r\nAccept-Ranges: bytes\r\n"
                    "X-Kept: 1\r\nVary: Origin\r\n";
    reply *r = ask(GET("/mem", GZIP_OK));
    assert_string_equal(header(r, "content-encoding"), "gzip");
    assert_string_equal(header(r, "etag"), "W/\"abc\"");
    assert_string_equal(header(r, "vary"), "Origin, Accept-Encoding");
    assert_null(header(r, "accept-ranges"));
    assert_string_equal(header(r, "x-kept"), "1");
    size_t n;
    unsigned char *data = body_of(r, &n); /* one Content-Length: the compressed body's */
    assert_true(n < LEN);
    assert_decodes_to(PT_ENC_GZIP, data, n, body, LEN);
    free(data);

    /* A weak ETag stays as it is. */
    the_app.extra = "ETag: W/\"abc\"\r\n";
    r = ask(GET("/mem", GZIP_OK));
    assert_string_equal(header(r, "etag"), "W/\"abc\"");

    /* Identity (no Accept-Encoding): Vary merged, the rest untouched. */
    the_app.extra = "ETag: \"abc\"\r\nAccept-Ranges: bytes\r\nVary: Origin\r\n";
    r = ask(GET("/mem", ""));
    assert_null(header(r, "content-encoding"));
    assert_string_equal(header(r, "vary"), "Origin, Accept-Encoding");
    assert_string_equal(header(r, "etag"), "\"abc\"");
    assert_string_equal(header(r, "accept-ranges"), "bytes");
    assert_string_equal(header(r, "content-length"), "5000");
    assert_int_equal(r->body_len, LEN);
    assert_memory_equal(r->body, body, LEN);

    /* Vary naming it already, or "*": left as it is. */
    the_app.extra = "Vary: accept-encoding, Origin\r\n";
    r = ask(GET("/mem", ""));
    assert_string_equal(header(r, "vary"), "accept-encoding, Origin");
    r = ask(GET("/mem", GZIP_OK));
    assert_string_equal(header(r, "vary"), "accept-encoding, Origin");
    the_app.extra = "Vary: *\r\n";
    r = ask(GET("/mem", GZIP_OK));
    assert_string_equal(header(r, "vary"), "*");

    /* gzip_vary off: no Vary of its own, compressed or not. */
    cc.vary = false;
    the_app.extra = NULL;
    r = ask(GET("/mem", ""));
    assert_null(header(r, "vary"));
    r = ask(GET("/mem", GZIP_OK));
    assert_null(header(r, "vary"));
    assert_string_equal(header(r, "content-encoding"), "gzip");
    cc.vary = true;

    /* A type no coding lists: no Vary either. */
    the_app.type = "image/png";
    r = ask(GET("/mem", ""));
    assert_null(header(r, "vary"));
    close_site();
    free(body);
}

/* Many short header lines, each made longer: the head is rewritten whole. */
static void test_many_lines_rewritten(void **state)
{
    enum { LEN = 5000 };
    unsigned char *body = make_body(LEN, LEN);
    open_site();
    the_app.body = body;
    the_app.body_len = LEN;
    static char extra[2048];
    size_t pos = 0;
    for (int i = 0; i < 60; i++)
        pos += (size_t)snprintf(extra + pos, sizeof extra - pos, "ETag: \"%d\"\r\n", i % 10);
    snprintf(extra + pos, sizeof extra - pos, "X-Last: end\r\n");
    the_app.extra = extra;
    reply *r = ask(GET("/mem", GZIP_OK));
    assert_int_equal(header_n(r, "etag", NULL, 0), 60);
    for (const char *p = strstr(r->head, "ETag:"); p; p = strstr(p + 1, "ETag:"))
        assert_memory_equal(p, "ETag: W/\"", 9);
    assert_string_equal(header(r, "x-last"), "end");
    assert_string_equal(header(r, "content-encoding"), "gzip");
    assert_string_equal(header(r, "vary"), "Accept-Encoding");
    size_t n;
    unsigned char *data = body_of(r, &n);
    assert_decodes_to(PT_ENC_GZIP, data, n, body, LEN);
    free(data);
    close_site();
    free(body);
}

/* ---- what the request decides ---- */

static bool compressed(const char *request)
{
    reply *r = ask(request);
    assert_int_equal(r->status, 200);
    assert_string_equal(header(r, "vary"), "Accept-Encoding"); /* either way */
    const char *ce = header(r, "content-encoding");
    if (ce)
        assert_string_equal(ce, "gzip");
    return ce != NULL;
}

#define VIA "Via: 1.1 cache.example\r\n" GZIP_OK

static void test_gzip_proxied(void **state)
{
    enum { LEN = 5000 };
    unsigned char *body = make_body(LEN, LEN);
    open_site();
    the_app.body = body;
    the_app.body_len = LEN;
    /* off: never through a proxy; without Via, always */
    assert_false(compressed(GET("/mem", VIA)));
    assert_true(compressed(GET("/mem", GZIP_OK)));

    static const struct {
        unsigned bit;
        const char *extra;    /* an answer for which the word holds */
        time_t last_modified; /* with it */
        const char *request;
        const char *other_extra; /* one for which it does not */
        time_t other_last_modified;
        const char *other_request;
    } cases[] = {
        {PT_PROXIED_EXPIRED, "Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\n", 0, GET("/mem", VIA),
         "Expires: Fri, 01 Jan 2100 00:00:00 GMT\r\n", 0, GET("/mem", VIA)},
        {PT_PROXIED_EXPIRED, "Expires: 0\r\n", 0, GET("/mem", VIA), NULL, 0, GET("/mem", VIA)},
        {PT_PROXIED_NO_CACHE, "Cache-Control: no-cache\r\n", 0, GET("/mem", VIA),
         "Cache-Control: max-age=60\r\n", 0, GET("/mem", VIA)},
        {PT_PROXIED_NO_STORE, "Cache-Control: public, no-store\r\n", 0, GET("/mem", VIA),
         "Cache-Control: no-cache\r\n", 0, GET("/mem", VIA)},
        {PT_PROXIED_PRIVATE, "Cache-Control: private\r\n", 0, GET("/mem", VIA),
         "Cache-Control: public\r\n", 0, GET("/mem", VIA)},
        {PT_PROXIED_NO_LAST_MODIFIED, NULL, 0, GET("/mem", VIA), NULL, 1000000000,
         GET("/mem", VIA)},
        {PT_PROXIED_NO_LAST_MODIFIED, NULL, 0, GET("/mem", VIA),
         "Last-Modified: Sun, 09 Sep 2001 01:46:40 GMT\r\n", 0, GET("/mem", VIA)},
        {PT_PROXIED_NO_ETAG, NULL, 0, GET("/mem", VIA), "ETag: \"x\"\r\n", 0, GET("/mem", VIA)},
        {PT_PROXIED_AUTH, NULL, 0, GET("/mem", VIA "Authorization: Basic dTpw\r\n"), NULL, 0,
         GET("/mem", VIA)},
        {PT_PROXIED_ANY, "ETag: \"x\"\r\n", 1000000000, GET("/mem", VIA), NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        /* each word alone */
        cc.proxied = cases[i].bit;
        the_app.extra = cases[i].extra;
        the_app.last_modified = cases[i].last_modified;
        if (!compressed(cases[i].request))
            fail_msg("case %zu: not compressed", i);
        if (cases[i].other_request) {
            the_app.extra = cases[i].other_extra;
            the_app.last_modified = cases[i].other_last_modified;
            if (compressed(cases[i].other_request))
                fail_msg("case %zu: compressed where the word does not hold", i);
        }
        /* the other words do not make it hold */
        cc.proxied = ~cases[i].bit & 0xffu & ~(unsigned)PT_PROXIED_ANY;
        if (cases[i].bit != PT_PROXIED_ANY) {
            the_app.extra = cases[i].extra;
            the_app.last_modified = cases[i].last_modified;
            /* an answer for which only this word holds: Last-Modified and ETag given unless the
             * word is about them */
            static char extra[256];
            snprintf(extra, sizeof extra, "%s%s", cases[i].extra ? cases[i].extra : "",
                     cases[i].bit == PT_PROXIED_NO_ETAG ? "" : "ETag: \"e\"\r\n");
            the_app.extra = extra;
            if (cases[i].bit != PT_PROXIED_NO_LAST_MODIFIED)
                the_app.last_modified = 1000000000;
            if (compressed(cases[i].request))
                fail_msg("case %zu: compressed by the other words", i);
        }
        the_app.extra = NULL;
        the_app.last_modified = 0;
    }
    close_site();
    free(body);
}

static void test_gzip_disable_msie6(void **state)
{
    enum { LEN = 5000 };
    unsigned char *body = make_body(LEN, LEN);
    open_site();
    the_app.body = body;
    the_app.body_len = LEN;
#define UA(s) GET("/mem", GZIP_OK "User-Agent: " s "\r\n")
    static const char msie6[] = UA("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)");
    static const char msie6_sv1[] = UA("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)");
    static const char msie55[] = UA("Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)");
    static const char msie55_sv1[] = UA("Mozilla/4.0 (compatible; MSIE 5.5; Windows 98; SV1)");
    static const char msie4[] = UA("Mozilla/4.0 (compatible; MSIE 4.01; Windows 95)");
    static const char msie7[] = UA("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)");
    static const char firefox[] = UA("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0");
#undef UA
    /* off: every client */
    assert_true(compressed(msie6));
    cc.disable_msie6 = true;
    assert_false(compressed(msie6));
    assert_true(compressed(msie6_sv1)); /* 6 with SV1 decompresses */
    assert_false(compressed(msie55));
    assert_false(compressed(msie55_sv1)); /* SV1 is 6's exception only, as nginx has it */
    assert_false(compressed(msie4));
    assert_true(compressed(msie7));
    assert_true(compressed(firefox));
    assert_true(compressed(GET("/mem", GZIP_OK)));
    close_site();
    free(body);
}

static void test_gzip_http_version(void **state)
{
    enum { LEN = 5000 };
    unsigned char *body = make_body(LEN, LEN);
    static const char v10[] = "GET /mem HTTP/1.0\r\nConnection: keep-alive\r\n" GZIP_OK "\r\n";
    open_site();
    the_app.body = body;
    the_app.body_len = LEN;
    assert_false(compressed(v10)); /* 1.1 by default */
    assert_true(compressed(GET("/mem", GZIP_OK)));
    cc.http_version = 10;
    assert_true(compressed(v10));
    reply *r = ask(v10);
    size_t n;
    unsigned char *data = body_of(r, &n);
    assert_decodes_to(PT_ENC_GZIP, data, n, body, LEN);
    free(data);
    close_site();
    free(body);
}

static void test_ranges_and_unwanted_codings_stay_identity(void **state)
{
    enum { LEN = 5000 };
    unsigned char *body = make_body(LEN, LEN);
    open_site();
    the_app.body = body;
    the_app.body_len = LEN;
    assert_false(compressed(GET("/mem", GZIP_OK "Range: bytes=0-99\r\n")));
    assert_false(compressed(GET("/mem", "Accept-Encoding: br, zstd\r\n"))); /* gzip alone on */
    assert_false(compressed(GET("/mem", "Accept-Encoding: gzip;q=0\r\n")));
    assert_false(compressed(GET("/mem", "")));
    assert_true(compressed(GET("/mem", "Accept-Encoding: *\r\n")));
    close_site();
    free(body);
}

/* ---- HTTP/2 ---- */

/* A client on nghttp2's session, on the test's loop, over the pair's two pipes. */
typedef struct h2_client {
    nghttp2_session *s;
    int rfd, wfd;
    int status;
    char content_encoding[32], vary[64];
    long content_length;
    unsigned char *body;
    size_t body_len;
    bool closed;
} h2_client;

static ssize_t h2c_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    h2_client *c = ud;
    ssize_t n = write(c->wfd, data, len);
    if (n < 0 && errno == EAGAIN)
        return NGHTTP2_ERR_WOULDBLOCK;
    return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

static int h2c_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                      void *ud)
{
    h2_client *c = ud;
    char v[128];
    snprintf(v, sizeof v, "%.*s", (int)valuelen, value);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        c->status = atoi(v);
    else if (namelen == 16 && memcmp(name, "content-encoding", 16) == 0)
        snprintf(c->content_encoding, sizeof c->content_encoding, "%.31s", v);
    else if (namelen == 4 && memcmp(name, "vary", 4) == 0)
        snprintf(c->vary, sizeof c->vary, "%.63s", v);
    else if (namelen == 14 && memcmp(name, "content-length", 14) == 0)
        c->content_length = atol(v);
    return 0;
}

static int h2c_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                    void *ud)
{
    h2_client *c = ud;
    c->body = realloc(c->body, c->body_len + len + 1);
    assert_non_null(c->body);
    memcpy(c->body + c->body_len, data, len);
    c->body_len += len;
    return 0;
}

static int h2c_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    ((h2_client *)ud)->closed = true;
    return 0;
}

static bool h2c_done(void *data)
{
    h2_client *c = data;
    char buf[65536];
    ssize_t n;
    while ((n = read(c->rfd, buf, sizeof buf)) > 0)
        assert_true(nghttp2_session_mem_recv(c->s, (const uint8_t *)buf, (size_t)n) == n);
    assert_int_equal(nghttp2_session_send(c->s), 0);
    return c->closed;
}

static void h2_select(void *data, pt_request *req)
{
    pt_vhost_apply(&((h1_site *)data)->tv.vh, req);
}

static void h2_on_admit(pt_conn *c, void *data)
{
    static pt_h2_settings settings;
    static pt_h2_counters counters;
    h1_site *h = data;
    pt_h2_settings_default(&settings);
    memset(&counters, 0, sizeof counters);
    pt_h2_conn_attach(c, &h->ops, h, false, &settings, &counters);
}

static bool no_connection(void *data)
{
    return h1_live(data) == 0;
}

static void test_a_memory_body_over_http2(void **state)
{
    enum { LEN = 50 * 1024 };
    unsigned char *body = make_body(LEN, LEN);
    const pt_encoding codings[] = {PT_ENC_GZIP, PT_ENC_BR, PT_ENC_ZSTD};
    for (size_t k = 0; k < 3; k++) {
        memset(&the_app, 0, sizeof the_app);
        settings_default();
        cc.coding[PT_ENC_BR].on = cc.coding[PT_ENC_ZSTD].on = true;
        the_app.body = body;
        the_app.body_len = LEN;
        nothing_left_begin();
        /* the HTTP/1 harness's site and manager, its connections attached to HTTP/2 */
        h1_open(&site, CONF(""), "/nonexistent", false, route);
        pt_connmgr_free(site.m);
        site.ops = (pt_site_ops){.select = h2_select, .route = route};
        pt_connmgr_options o;
        pt_connmgr_options_init(&o);
        o.limits = &site.tv.vh.limits;
        o.proto = &pt_http1_proto;
        o.proto_size = pt_http1_conn_size();
        o.on_admit = h2_on_admit;
        o.data = &site;
        assert_int_equal(pt_connmgr_new(&site.m, site.loop, &o), 0);
        site.c = pair_connect(site.m, &site.p);
        assert_non_null(site.c);

        h2_client cl = {.rfd = site.p.from_conn, .wfd = site.p.to_conn, .content_length = -1};
        nghttp2_session_callbacks *cbs;
        assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
        nghttp2_session_callbacks_set_send_callback(cbs, h2c_send);
        nghttp2_session_callbacks_set_on_header_callback(cbs, h2c_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2c_data);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2c_close);
        assert_int_equal(nghttp2_session_client_new(&cl.s, cbs, &cl), 0);
        nghttp2_session_callbacks_del(cbs);
        assert_int_equal(nghttp2_submit_settings(cl.s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
        const char *ae = pt_encoding_name(codings[k]);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
        nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "c.test"),
                           NV(":path", "/mem"), NV("accept-encoding", ae)};
#undef NV
        assert_true(nghttp2_submit_request(cl.s, NULL, nv, 5, NULL, NULL) > 0);
        assert_int_equal(nghttp2_session_send(cl.s), 0);
        if (!loop_run_until(site.loop, h2c_done, &cl, 5))
            fail_msg("no answer over HTTP/2");
        assert_int_equal(cl.status, 200);
        assert_string_equal(cl.content_encoding, ae);
        assert_string_equal(cl.vary, "Accept-Encoding");
        assert_int_equal(cl.content_length, (long)cl.body_len); /* compressed whole */
        assert_decodes_to(codings[k], cl.body, cl.body_len, body, LEN);
        nghttp2_session_del(cl.s);
        free(cl.body);
        pair_client_close(&site.p);
        if (!loop_run_until(site.loop, no_connection, &site, 3))
            fail_msg("the connection outlived its client");
        close_site();
    }
    free(body);
}

int main(void)
{
    atexit(free_rx);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_memory_body_is_compressed_whole),
        cmocka_unit_test(test_a_stream_is_decodable_write_by_write),
        cmocka_unit_test(test_a_large_file_waits_for_the_client),
        cmocka_unit_test(test_a_client_leaving_halfway_leaves_nothing),
        cmocka_unit_test(test_a_stream_whose_client_left),
        cmocka_unit_test(test_head_gets_the_compressed_head_alone),
        cmocka_unit_test(test_statuses_left_alone),
        cmocka_unit_test(test_a_304_about_a_compressible_type),
        cmocka_unit_test(test_answers_left_alone),
        cmocka_unit_test(test_the_head_of_a_compressed_answer),
        cmocka_unit_test(test_many_lines_rewritten),
        cmocka_unit_test(test_gzip_proxied),
        cmocka_unit_test(test_gzip_disable_msie6),
        cmocka_unit_test(test_gzip_http_version),
        cmocka_unit_test(test_ranges_and_unwanted_codings_stay_identity),
        cmocka_unit_test(test_a_memory_body_over_http2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
