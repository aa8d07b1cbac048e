/* The HTTP/1 client (server/http1/client.c), through its API and without sockets: the head
 * writer, whose fields may hold no CR, LF or NUL whatever the parser before it let through (so no
 * head porter writes can be read as two messages), and the response parser fed bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "server/http1/client.h"
#include "tests/support.h"

/* ---- the head writer ---- */

static void test_fields_refuse_line_breaks_and_nul(void **state)
{
    const char *bad[] = {"a\rb", "a\nb", "a\r\nX-Injected: 1", "\n", "ab\r"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char buf[64];
        pt_h1_hbuf o;
        pt_h1_hbuf_init(&o, buf, sizeof buf);
        PT_H1_PUT_LIT(&o, "X: ");
        pt_h1_put(&o, bad[i], strlen(bad[i]));
        assert_true(o.forbidden);
        assert_int_equal(o.len, 3); /* nothing of it was written */
    }
    char buf[64];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, sizeof buf);
    pt_h1_put(&o, "a\0b", 3);
    assert_true(o.forbidden);
}

static void test_fields_take_text_tabs_and_obs_text(void **state)
{
    char buf[64];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, sizeof buf);
    PT_H1_PUT_LIT(&o, "X: ");
    pt_h1_put(&o, "a\tb caf\xc3\xa9 ~\x7f", 12);
    PT_H1_PUT_LIT(&o, "\r\n");
    assert_false(o.forbidden);
    assert_false(o.overflow);
    assert_int_equal(o.len, 17);
    assert_memory_equal(buf, "X: a\tb caf\xc3\xa9 ~\x7f\r\n", 17);
}

/* A fresh head in `buf` (`cap` bytes) with the field text `s` put into it. */
static pt_h1_hbuf field_in(char *buf, size_t cap, const char *s)
{
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, cap);
    pt_h1_puts(&o, s);
    return o;
}

/* A fresh head in `buf` (`cap` bytes) with the header line of the spans `name` and `value` of
 * `text` put into it. */
static pt_h1_hbuf line_in(char *buf, size_t cap, const char *text, pt_h1_span name,
                          pt_h1_span value)
{
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, cap);
    pt_h1_put_field(&o, pt_h1_span_str(text, name), pt_h1_span_str(text, value));
    return o;
}

static void test_a_field_value_with_a_line_break_is_refused(void **state)
{
    /* a proxy_set_header value's literal text is put like any field (porter -t refuses such a
     * value; this is the writer's own guard) */
    char buf[128];
    assert_true(field_in(buf, sizeof buf, "v\r\nX-Injected: 1").forbidden);
    pt_h1_hbuf ok = field_in(buf, sizeof buf, "plain value");
    assert_false(ok.forbidden);
    assert_int_equal(ok.len, 11);
}

static void test_upstream_header_lines_with_a_line_break_are_refused(void **state)
{
    /* a response field whose value holds a LF (as a looser parser might let through) is not
     * passed on as a header line */
    static const char head[] = "HTTP/1.1 200 OK\r\nX-A: one\ntwo\r\nContent-Length: 0\r\n\r\n";
    char lines[256];
    pt_h1_span name = {17, 3};
    assert_true(line_in(lines, sizeof lines, head, name, (pt_h1_span){22, 7}).forbidden);
    /* and the same line without the LF is passed */
    pt_h1_hbuf o2 = line_in(lines, sizeof lines, head, name, (pt_h1_span){22, 3});
    assert_false(o2.forbidden);
    assert_int_equal(o2.len, 10);
    assert_memory_equal(lines, "X-A: one\r\n", 10);
}

static void test_a_head_that_does_not_fit_overflows(void **state)
{
    char buf[8];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, sizeof buf);
    pt_h1_puts(&o, "1234567");
    assert_false(o.overflow);
    PT_H1_PUT_LIT(&o, "\r\n");
    assert_true(o.overflow);
    assert_int_equal(o.len, 7);
}

static void test_paths_are_percent_encoded(void **state)
{
    char buf[128];
    pt_h1_hbuf o;
    pt_h1_hbuf_init(&o, buf, sizeof buf);
    pt_h1_put_path(&o, PT_STR_LIT("/a b/\"#%<>?\\^`{|}/caf\xc3\xa9\x7f/~ok-._"));
    static const char want[] = "/a%20b/%22%23%25%3C%3E%3F%5C%5E%60%7B%7C%7D/caf%C3%A9%7F/~ok-._";
    assert_false(o.forbidden);
    assert_int_equal(o.len, sizeof want - 1);
    assert_memory_equal(buf, want, sizeof want - 1);
    /* a NUL or a line break in a path is encoded, not refused */
    pt_h1_hbuf_init(&o, buf, sizeof buf);
    pt_h1_put_path(&o, (pt_str){"a\r\n\0", 4});
    assert_false(o.forbidden);
    assert_int_equal(o.len, 10);
    assert_memory_equal(buf, "a%0D%0A%00", 10);
}

/* ---- connection-specific fields ---- */

static void test_tokens_of_a_list(void **state)
{
    static const char v[] = " keep-alive ,\tUpgrade , x-a";
    assert_true(pt_h1_has_token(v, sizeof v - 1, "upgrade"));
    assert_true(pt_h1_has_token(v, sizeof v - 1, "KEEP-ALIVE"));
    assert_true(pt_h1_has_token(v, sizeof v - 1, "x-a"));
    assert_false(pt_h1_has_token(v, sizeof v - 1, "x"));
    assert_false(pt_h1_has_token(v, sizeof v - 1, "close"));
    assert_false(pt_h1_has_token("", 0, "close"));
}

static void test_hop_by_hop_fields(void **state)
{
    const char *hop[] = {"Connection", "keep-alive",        "Proxy-Connection", "TE",
                         "Trailer",    "transfer-encoding", "Upgrade"};
    for (size_t i = 0; i < sizeof hop / sizeof *hop; i++)
        assert_true(pt_h1_hop_by_hop((pt_str){hop[i], strlen(hop[i])}));
    const char *end_to_end[] = {"Content-Length", "Te-X", "Upgrades", "Host", "Trailers", ""};
    for (size_t i = 0; i < sizeof end_to_end / sizeof *end_to_end; i++)
        assert_false(pt_h1_hop_by_hop((pt_str){end_to_end[i], strlen(end_to_end[i])}));
}

static void test_connection_naming_other_fields(void **state)
{
    assert_false(pt_h1_names_other_fields(PT_STR_LIT("keep-alive, Close,upgrade")));
    assert_false(pt_h1_names_other_fields(PT_STR_LIT(" , ")));
    assert_true(pt_h1_names_other_fields(PT_STR_LIT("close, X-Secret")));
    assert_true(pt_h1_named_by(PT_STR_LIT("close, X-Secret"), PT_STR_LIT("x-secret")));
    assert_false(pt_h1_named_by(PT_STR_LIT("close, X-Secret"), PT_STR_LIT("x-secrets")));
    assert_false(pt_h1_named_by(PT_STR_LIT("close, X-Secret"), PT_STR_LIT("X-Other")));
}

/* ---- the response parser ---- */

/* A parser and what it found: heads seen, the body's bytes. */
typedef struct reader {
    pt_h1_client *cl;
    int heads;
    char body[8192];
    size_t body_len;
} reader;

static reader *reader_new(bool head_req, bool upgrade_req)
{
    reader *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->cl = malloc(pt_h1_client_size());
    assert_non_null(r->cl);
    pt_h1_client_init(r->cl, head_req, upgrade_req);
    return r;
}

static void reader_free(reader *r)
{
    free(r->cl);
    free(r);
}

/* Feeds `buf` (`len` bytes in all, the same start as before) until the parser wants more or
 * the response ended or was refused; heads are counted, body pieces collected. */
static pt_h1_event feed(reader *r, const char *buf, size_t len)
{
    for (int i = 0; i < 10000; i++) {
        pt_str piece = {NULL, 0};
        pt_h1_event ev = pt_h1_client_feed(r->cl, buf, len, &piece);
        if (ev == PT_H1_HEAD) {
            r->heads++;
        } else if (ev == PT_H1_BODY) {
            assert_true(piece.len > 0);
            assert_true(piece.p >= buf && piece.p + piece.len <= buf + len);
            assert_true(r->body_len + piece.len <= sizeof r->body);
            memcpy(r->body + r->body_len, piece.p, piece.len);
            r->body_len += piece.len;
        } else {
            return ev;
        }
    }
    fail_msg("the parser does not stop");
    return PT_H1_INVALID;
}

/* Feeds `text` whole, as one read. */
static pt_h1_event feed_text(reader *r, const char *text)
{
    return feed(r, text, strlen(text));
}

/* A fresh parser for a GET (or a HEAD: `head_req`) that has read `text` as one read, up to
 * `ev`. */
static reader *read_text(const char *text, bool head_req, pt_h1_event ev)
{
    reader *r = reader_new(head_req, false);
    assert_int_equal(feed_text(r, text), ev);
    return r;
}

/* The body read is `want`. */
static void assert_body(const reader *r, const char *want)
{
    assert_int_equal(r->body_len, strlen(want));
    assert_memory_equal(r->body, want, r->body_len);
}

/* Whether field `i` of the head in `buf` is `name: value`. */
static void assert_field(const pt_h1_response *rs, const char *buf, size_t i, const char *name,
                         const char *value)
{
    assert_true(i < rs->nfields);
    pt_str n = pt_h1_span_str(buf, rs->fields[i].name);
    pt_str v = pt_h1_span_str(buf, rs->fields[i].value);
    assert_int_equal(n.len, strlen(name));
    assert_memory_equal(n.p, name, n.len);
    assert_int_equal(v.len, strlen(value));
    assert_memory_equal(v.p, value, v.len);
}

static void test_a_body_framed_by_content_length(void **state)
{
    static const char text[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b c \r\nX-Empty:\r\n\r\nhello";
    reader *r = read_text(text, false, PT_H1_DONE);
    const pt_h1_response *rs = pt_h1_client_response(r->cl);
    assert_int_equal(r->heads, 1);
    assert_int_equal(rs->status, 200);
    assert_true(rs->head_done);
    assert_true(rs->sized);
    assert_int_equal(rs->length, 5);
    assert_false(rs->no_body);
    assert_false(rs->switching);
    assert_true(rs->keep_alive);
    assert_int_equal(rs->nfields, 3);
    assert_field(rs, text, 0, "Content-Length", "5");
    assert_field(rs, text, 1, "X-A", "b c");
    assert_field(rs, text, 2, "X-Empty", "");
    assert_body(r, "hello");
    assert_int_equal(pt_h1_client_parsed(r->cl), sizeof text - 1);
    reader_free(r);
}

static void test_a_response_read_a_byte_at_a_time(void **state)
{
    /* each read brings one more byte: names and values split across reads come out whole */
    static const char text[] = "HTTP/1.1 201 Created\r\nLocation: /x/1\r\nX-Long-Name: some "
                               "value\r\nContent-Length: 11\r\n\r\nhello world";
    reader *r = reader_new(false, false);
    pt_h1_event ev = PT_H1_MORE;
    for (size_t n = 1; n <= sizeof text - 1; n++) {
        ev = feed(r, text, n);
        if (n < sizeof text - 1)
            assert_int_equal(ev, PT_H1_MORE);
    }
    assert_int_equal(ev, PT_H1_DONE);
    const pt_h1_response *rs = pt_h1_client_response(r->cl);
    assert_int_equal(r->heads, 1);
    assert_int_equal(rs->status, 201);
    assert_int_equal(rs->nfields, 3);
    assert_field(rs, text, 0, "Location", "/x/1");
    assert_field(rs, text, 1, "X-Long-Name", "some value");
    assert_field(rs, text, 2, "Content-Length", "11");
    assert_body(r, "hello world");
    reader_free(r);
}

static void test_a_chunked_body(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    reader *r = read_text(text, false, PT_H1_DONE);
    const pt_h1_response *rs = pt_h1_client_response(r->cl);
    assert_false(rs->sized);
    assert_true(rs->keep_alive);
    assert_body(r, "hello world");
    assert_int_equal(pt_h1_client_parsed(r->cl), sizeof text - 1);
    reader_free(r);
}

static void assert_trailers(const reader *r, const char *want)
{
    pt_str t = pt_h1_client_trailers(r->cl);
    assert_int_equal(t.len, strlen(want));
    assert_memory_equal(t.p, want, t.len);
}

static void test_trailers_are_kept_a_byte_at_a_time_and_forbidden_ones_dropped(void **state)
{
    /* the trailer section is copied out (the body's bytes are let go as they are passed on),
     * whole however it is split across reads; framing and routing fields are left out */
    static const char text[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nContent-Length: 5\r\n"
                               "Host: evil\r\nX-Empty:\r\nTransfer-Encoding: gzip\r\n"
                               "Grpc-Status: 0\r\n\r\n";
    reader *r = reader_new(false, false);
    pt_h1_event ev = PT_H1_MORE;
    for (size_t n = 1; n <= sizeof text - 1; n++)
        ev = feed(r, text, n);
    assert_int_equal(ev, PT_H1_DONE);
    assert_body(r, "hello");
    assert_trailers(r, "X-Checksum: abc\r\nX-Empty: \r\nGrpc-Status: 0\r\n");
    /* a fresh response has none */
    pt_h1_client_init(r->cl, false, false);
    assert_int_equal(feed_text(r, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), PT_H1_DONE);
    assert_trailers(r, "");
    reader_free(r);
}

static void test_trailers_that_do_not_fit_are_all_dropped(void **state)
{
    static char text[PT_H1_TRAILERS_MAX + 256];
    int n = snprintf(text, sizeof text,
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: ");
    memset(text + n, 'x', PT_H1_TRAILERS_MAX);
    strcpy(text + n + PT_H1_TRAILERS_MAX, "\r\n\r\n");
    reader *r = read_text(text, false, PT_H1_DONE);
    assert_trailers(r, "");
    reader_free(r);
}

static void test_a_body_that_runs_to_the_end_of_the_connection(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome bytes";
    reader *r = read_text(text, false, PT_H1_MORE);
    assert_false(pt_h1_client_response(r->cl)->sized);
    assert_body(r, "some bytes");
    assert_int_equal(pt_h1_client_eof(r->cl), PT_H1_DONE);
    assert_false(pt_h1_client_response(r->cl)->keep_alive);
    reader_free(r);
}

static void test_a_response_cut_short_by_the_end_of_the_connection(void **state)
{
    const char *cut[] = {
        "",                                                             /* nothing */
        "HTTP/1.1 200 OK\r\nContent-Le",                                /* in the head */
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",           /* in a sized body */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe", /* in a chunk */
    };
    for (size_t i = 0; i < sizeof cut / sizeof *cut; i++) {
        reader *r = read_text(cut[i], false, PT_H1_MORE);
        assert_int_equal(pt_h1_client_eof(r->cl), PT_H1_MORE);
        reader_free(r);
    }
}

static void test_a_head_response_has_no_body(void **state)
{
    /* the Content-Length of a HEAD's answer is what GET would send: nothing follows */
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    reader *r = read_text(text, true, PT_H1_DONE);
    const pt_h1_response *rs = pt_h1_client_response(r->cl);
    assert_int_equal(r->heads, 1);
    assert_true(rs->no_body);
    assert_true(rs->sized);
    assert_int_equal(rs->length, 1234);
    assert_true(rs->keep_alive);
    assert_int_equal(r->body_len, 0);
    assert_int_equal(pt_h1_client_parsed(r->cl), sizeof text - 1);
    reader_free(r);
}

static void test_204_and_304_have_no_body(void **state)
{
    /* Whatever Content-Length or Transfer-Encoding say: a 304 may carry the Content-Length a 200
     * would have (RFC 9110 section 8.6), a 204 should not; neither has a body (RFC 9112 section
     * 6.3), each ends at its head and what follows is the next response. */
    const struct {
        const char *text;
        int status;
    } cases[] = {
        {"HTTP/1.1 204 No Content\r\n\r\n", 204},
        {"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", 304},
        {"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 100\r\n\r\n", 304},
        {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204},
        {"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 204},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        reader *r = read_text(cases[i].text, false, PT_H1_DONE);
        const pt_h1_response *rs = pt_h1_client_response(r->cl);
        assert_int_equal(r->heads, 1);
        assert_int_equal(rs->status, cases[i].status);
        assert_true(rs->no_body);
        assert_true(rs->keep_alive);
        assert_int_equal(pt_h1_client_parsed(r->cl), strlen(cases[i].text));
        reader_free(r);
    }
}

static void test_interim_answers_are_dropped(void **state)
{
    static const char text[] = "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    reader *r = read_text(text, false, PT_H1_DONE);
    const pt_h1_response *rs = pt_h1_client_response(r->cl);
    assert_int_equal(r->heads, 1);
    assert_int_equal(rs->status, 200);
    assert_int_equal(rs->nfields, 1);
    assert_field(rs, text, 0, "Content-Length", "2");
    assert_body(r, "ok");
    reader_free(r);
    /* nor has an interim answer a body, whatever its Content-Length says */
    static const char hinted[] = "HTTP/1.1 103 Early Hints\r\nContent-Length: 4\r\n\r\n"
                                 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    r = read_text(hinted, false, PT_H1_DONE);
    assert_int_equal(pt_h1_client_response(r->cl)->status, 200);
    assert_body(r, "ok");
    reader_free(r);
}

static void test_101_to_a_request_that_asked_to_upgrade(void **state)
{
    static const char head[] =
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    char text[sizeof head + 7];
    memcpy(text, head, sizeof head - 1);
    memcpy(text + sizeof head - 1, "\x81\x05hello", 7); /* the new protocol's first bytes */
    reader *r = reader_new(false, true);
    assert_int_equal(feed(r, text, sizeof text - 1), PT_H1_DONE);
    const pt_h1_response *rs = pt_h1_client_response(r->cl);
    assert_int_equal(r->heads, 1);
    assert_true(rs->switching);
    assert_int_equal(rs->status, 101);
    assert_int_equal(r->body_len, 0);
    /* what follows the head is left to the caller */
    assert_int_equal(pt_h1_client_parsed(r->cl), sizeof head - 1);
    reader_free(r);
}

static void test_what_follows_the_response_is_not_read(void **state)
{
    static const char first[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                               "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnot";
    reader *r = read_text(text, false, PT_H1_DONE);
    assert_int_equal(pt_h1_client_parsed(r->cl), sizeof first - 1);
    assert_int_equal(r->heads, 1);
    assert_int_equal(r->body_len, 2);
    /* and it stays done */
    assert_int_equal(feed_text(r, text), PT_H1_DONE);
    assert_int_equal(pt_h1_client_parsed(r->cl), sizeof first - 1);
    assert_int_equal(r->heads, 1);
    reader_free(r);
}

static void test_keep_alive_as_the_response_says(void **state)
{
    const struct {
        const char *text;
        bool keep_alive;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        reader *r = read_text(cases[i].text, false, PT_H1_DONE);
        assert_int_equal(pt_h1_client_response(r->cl)->keep_alive, cases[i].keep_alive);
        reader_free(r);
    }
}

static void test_the_end_follows_a_last_piece_without_more_bytes(void **state)
{
    /* The caller takes each piece and drops the bytes read, as a proxy does when its client is
     * full: the end of the response comes at the next feed, with nothing new to read. */
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    reader *r = reader_new(false, false);
    pt_str piece;
    assert_int_equal(pt_h1_client_feed(r->cl, text, sizeof text - 1, &piece), PT_H1_HEAD);
    assert_int_equal(pt_h1_client_feed(r->cl, text, sizeof text - 1, &piece), PT_H1_BODY);
    assert_int_equal(piece.len, 5);
    assert_memory_equal(piece.p, "hello", 5);
    size_t n = pt_h1_client_parsed(r->cl);
    assert_int_equal(n, sizeof text - 1);
    pt_h1_client_consumed(r->cl, n);
    assert_int_equal(pt_h1_client_feed(r->cl, NULL, 0, &piece), PT_H1_DONE);
    reader_free(r);
}

static void test_the_body_after_the_head_was_dropped(void **state)
{
    /* after the head the caller may drop what was read; the body goes on in the bytes left */
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    reader *r = read_text(head, false, PT_H1_MORE);
    assert_int_equal(r->heads, 1);
    pt_h1_client_consumed(r->cl, pt_h1_client_parsed(r->cl));
    assert_int_equal(feed_text(r, "3\r\nabc\r\n"), PT_H1_MORE);
    pt_h1_client_consumed(r->cl, pt_h1_client_parsed(r->cl));
    assert_int_equal(feed_text(r, "2\r\nde\r\n0\r\n\r\n"), PT_H1_DONE);
    assert_body(r, "abcde");
    reader_free(r);
}

/* ---- what the parser refuses ---- */

/* Feeds `text` in one read, then again in reads of one byte (each a fresh parser): both are
 * refused with `why` (NULL: whatever llhttp says). */
static void assert_refused(const char *text, bool upgrade_req, const char *why)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        reader *r = reader_new(false, upgrade_req);
        size_t len = strlen(text);
        pt_h1_event ev = PT_H1_MORE;
        for (size_t n = bytewise ? 1 : len; n <= len && ev == PT_H1_MORE; n++)
            ev = feed(r, text, n);
        if (ev != PT_H1_INVALID)
            fail_msg("not refused (%s): %s", bytewise ? "a byte at a time" : "at once", text);
        const char *error = pt_h1_client_error(r->cl);
        assert_non_null(error);
        if (why)
            assert_string_equal(error, why);
        assert_int_equal(r->heads, 0); /* nothing of it was handed on */
        /* and it stays refused */
        assert_int_equal(feed(r, text, len), PT_H1_INVALID);
        reader_free(r);
    }
}

static void test_what_is_refused(void **state)
{
    static const char fold[] = "obsolete line folding in a header field";
    static const char coding[] = "unsupported transfer coding";
    static const char not_asked[] = "101 to a request that did not ask to upgrade";
    const struct {
        const char *text;
        bool upgrade_req;
        const char *why; /* NULL: llhttp's reason */
    } cases[] = {
        /* framing by both Content-Length and Transfer-Encoding, in either order */
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false, NULL},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", false, NULL},
        /* obs-fold, after a space or tabs */
        {"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", false, fold},
        {"HTTP/1.1 200 OK\r\nX-A: a\r\n\t\tb\r\nContent-Length: 0\r\n\r\n", false, fold},
        /* a bad status line */
        {"HTTP/1.1 2000 OK\r\n\r\n", false, NULL},
        {"HTTP/1.1 abc OK\r\n\r\n", false, NULL},
        {"ICY 200 OK\r\n\r\n", false, NULL},
        /* a transfer coding that would reach the next reader undone */
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, coding},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, coding},
        /* HTTP/1.0 has no transfer codings */
        {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false,
         "Transfer-Encoding in an HTTP/1.0 response"},
        /* a 101 the request did not ask for, or one that does not say it upgrades */
        {"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
         false, not_asked},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", true, not_asked},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_refused(cases[i].text, cases[i].upgrade_req, cases[i].why);
}

static void test_upstream_field_names_must_be_tokens(void **state)
{
    assert_refused("HTTP/1.1 200 OK\r\n: b\r\nContent-Length: 0\r\n\r\n", false,
                   "empty header field name");
    assert_refused("HTTP/1.1 200 OK\r\nX-A: 1\r\n:\r\n\r\n", false, "empty header field name");
    /* names llhttp itself refuses (not tchar) stay refused, whoever refuses them */
    static const char *const llhttp_refuses[] = {
        "HTTP/1.1 200 OK\r\nX(A): b\r\n\r\n",   "HTTP/1.1 200 OK\r\nX A: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX\x80Y: b\r\n\r\n", "HTTP/1.1 200 OK\r\nX\"Y: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof llhttp_refuses / sizeof *llhttp_refuses; i++)
        assert_refused(llhttp_refuses[i], false, NULL);
    reader *r = read_text("HTTP/1.1 200 OK\r\nX-A!#$%&'*+.^_`|~9: b\r\n\r\n", true, PT_H1_DONE);
    assert_null(pt_h1_client_error(r->cl));
    reader_free(r);
}

static void test_invalid_field_looks_at_every_byte(void **state)
{
    /* fields as llhttp might report them: the check refuses what a looser parser would let
     * through */
    const struct {
        pt_str name, value;
        const char *why;
    } cases[] = {
        {PT_STR_LIT("X(A)"), PT_STR_LIT("\tv"), "invalid header field name"},
        {PT_STR_LIT(""), PT_STR_LIT("\tv"), "empty header field name"},
        {PT_STR_LIT("Y-Ok"), PT_STR_LIT("v\ra"), "CR, LF or NUL in a header field"},
        {PT_STR_LIT("Y-Ok"), PT_STR_LIT("a\nb"), "CR, LF or NUL in a header field"},
        {PT_STR_LIT("Y-Ok"), {"b\0c", 3}, "CR, LF or NUL in a header field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *why = pt_h1_invalid_field(cases[i].name, cases[i].value);
        assert_non_null(why);
        assert_string_equal(why, cases[i].why);
    }
    /* a token, text and a tab */
    assert_null(pt_h1_invalid_field(PT_STR_LIT("Y-Ok"), PT_STR_LIT("\tv")));
}

static void test_upstream_status_codes_outside_100_599_are_refused(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.1 043 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 000 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 099 X\r\n\r\n",
        "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++)
        assert_refused(heads[i], false, "status code out of 100-599");
    /* the bounds themselves are statuses: 100 is interim (the final answer follows), 599 is
     * answered */
    reader *r = read_text("HTTP/1.1 100 Continue\r\n\r\n", true, PT_H1_MORE);
    assert_null(pt_h1_client_error(r->cl));
    assert_int_equal(r->heads, 0);
    reader_free(r);
    r = read_text("HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n", true, PT_H1_DONE);
    assert_null(pt_h1_client_error(r->cl));
    assert_int_equal(pt_h1_client_response(r->cl)->status, 599);
    reader_free(r);
}

static void test_too_many_header_fields_are_refused(void **state)
{
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= PT_H1_FIELDS_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "X-%d: v\r\n", i);
    snprintf(text + n, sizeof text - n, "\r\n");
    assert_refused(text, false, "too many header fields");
    /* and as many as allowed are read */
    n = (size_t)snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < PT_H1_FIELDS_MAX - 1; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "X-%d: v\r\n", i);
    snprintf(text + n, sizeof text - n, "Content-Length: 0\r\n\r\n");
    reader *r = read_text(text, false, PT_H1_DONE);
    assert_int_equal(pt_h1_client_response(r->cl)->nfields, PT_H1_FIELDS_MAX);
    reader_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_fields_refuse_line_breaks_and_nul),
        NOTHING_LEFT_TEST(test_fields_take_text_tabs_and_obs_text),
        NOTHING_LEFT_TEST(test_a_field_value_with_a_line_break_is_refused),
        NOTHING_LEFT_TEST(test_upstream_header_lines_with_a_line_break_are_refused),
        NOTHING_LEFT_TEST(test_a_head_that_does_not_fit_overflows),
        NOTHING_LEFT_TEST(test_paths_are_percent_encoded),
        NOTHING_LEFT_TEST(test_tokens_of_a_list),
        NOTHING_LEFT_TEST(test_hop_by_hop_fields),
        NOTHING_LEFT_TEST(test_connection_naming_other_fields),
        NOTHING_LEFT_TEST(test_a_body_framed_by_content_length),
        NOTHING_LEFT_TEST(test_a_response_read_a_byte_at_a_time),
        NOTHING_LEFT_TEST(test_a_chunked_body),
        NOTHING_LEFT_TEST(test_trailers_are_kept_a_byte_at_a_time_and_forbidden_ones_dropped),
        NOTHING_LEFT_TEST(test_trailers_that_do_not_fit_are_all_dropped),
        NOTHING_LEFT_TEST(test_a_body_that_runs_to_the_end_of_the_connection),
        NOTHING_LEFT_TEST(test_a_response_cut_short_by_the_end_of_the_connection),
        NOTHING_LEFT_TEST(test_a_head_response_has_no_body),
        NOTHING_LEFT_TEST(test_204_and_304_have_no_body),
        NOTHING_LEFT_TEST(test_interim_answers_are_dropped),
        NOTHING_LEFT_TEST(test_101_to_a_request_that_asked_to_upgrade),
        NOTHING_LEFT_TEST(test_what_follows_the_response_is_not_read),
        NOTHING_LEFT_TEST(test_keep_alive_as_the_response_says),
        NOTHING_LEFT_TEST(test_the_end_follows_a_last_piece_without_more_bytes),
        NOTHING_LEFT_TEST(test_the_body_after_the_head_was_dropped),
        NOTHING_LEFT_TEST(test_what_is_refused),
        NOTHING_LEFT_TEST(test_upstream_field_names_must_be_tokens),
        NOTHING_LEFT_TEST(test_invalid_field_looks_at_every_byte),
        NOTHING_LEFT_TEST(test_upstream_status_codes_outside_100_599_are_refused),
        NOTHING_LEFT_TEST(test_too_many_header_fields_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
