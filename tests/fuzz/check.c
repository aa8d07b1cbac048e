/*
 * The answers' checker (check.h): a small HTTP/1.1 response parser of its own, stricter than a
 * client needs to be, so that it owes nothing to the parser porter uses.
 */
#include "tests/fuzz/check.h"

#include <ctype.h>
#include <inttypes.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Steps the checker takes before it gives up on an input (answers it cannot place are tried
 * both with and without a body). */
#define CHECK_BUDGET 100000

/* ---- the requests' methods ---- */

typedef struct method_list {
    fuzz_method *out;
    size_t max, n;
} method_list;

static int on_message_begin(llhttp_t *p)
{
    method_list *l = p->data;
    if (l->n < l->max)
        l->out[l->n] = FUZZ_METHOD_UNKNOWN;
    l->n++;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    method_list *l = p->data;
    if (l->n - 1 < l->max)
        l->out[l->n - 1] = p->method == HTTP_HEAD ? FUZZ_METHOD_HEAD : FUZZ_METHOD_OTHER;
    return 0;
}

size_t fuzz_request_methods(const uint8_t *data, size_t len, fuzz_method *out, size_t max)
{
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_headers_complete = on_headers_complete;
    llhttp_t parser;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    method_list l = {.out = out, .max = max};
    parser.data = &l;
    const char *p = (const char *)data, *end = p + len;
    /* A request that asks to upgrade is answered as any other when no upgrade is agreed to
     * (RFC 9110 section 7.8): what follows it is the next request. */
    while (llhttp_execute(&parser, p, (size_t)(end - p)) == HPE_PAUSED_UPGRADE) {
        p = llhttp_get_error_pos(&parser);
        llhttp_resume_after_upgrade(&parser);
    }
    return l.n;
}

/* ---- the answers ---- */

typedef struct checker {
    const char *b;
    size_t len;
    const fuzz_method *methods;
    size_t nmethods;
    bool truncated_ok;
    size_t steps;
    const char *why; /* the failure found furthest into the bytes */
    size_t why_at;
} checker;

typedef struct head {
    int status;
    bool has_length, chunked, close;
    uint64_t length;
    size_t end; /* where the body starts */
} head;

static bool fail(checker *c, size_t at, const char *why)
{
    if (!c->why || at >= c->why_at) {
        c->why = why;
        c->why_at = at;
    }
    return false;
}

static bool tchar(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A byte of a field value or reason phrase: VCHAR, SP, HTAB or obs-text. */
static bool text(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static bool is_crlf(const checker *c, size_t at)
{
    return at + 1 < c->len && c->b[at] == '\r' && c->b[at + 1] == '\n';
}

/* Whether the comma-separated list `v` (`n` bytes) holds the token `tok`. */
static bool list_has(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t e = j;
        while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - i == tl && strncasecmp(v + i, tok, tl) == 0)
            return true;
        i = j;
    }
    return false;
}

static bool parse_head(checker *c, size_t pos, head *h)
{
    const char *b = c->b;
    *h = (head){0};
    if (c->len - pos < 13 || memcmp(b + pos, "HTTP/1.1 ", 9) != 0)
        return fail(c, pos, "no \"HTTP/1.1 \" status line where an answer starts");
    for (int i = 0; i < 3; i++) {
        char d = b[pos + 9 + (size_t)i];
        if (d < '0' || d > '9')
            return fail(c, pos, "status code is not three digits");
        h->status = h->status * 10 + (d - '0');
    }
    if (h->status < 100 || h->status > 599)
        return fail(c, pos, "status code out of 100-599");
    size_t at = pos + 12;
    if (b[at] != ' ')
        return fail(c, at, "no space after the status code");
    for (at++; at < c->len && b[at] != '\r'; at++)
        if (!text((unsigned char)b[at]))
            return fail(c, at, "control byte in the reason phrase");
    if (!is_crlf(c, at))
        return fail(c, at, "status line not ended by CRLF");
    at += 2;
    bool seen_length = false, seen_te = false;
    while (!is_crlf(c, at)) {
        size_t name = at;
        while (at < c->len && tchar((unsigned char)b[at]))
            at++;
        if (at == name || at >= c->len || b[at] != ':')
            return fail(c, at, "header field name is not a token followed by ':'");
        size_t name_len = at - name;
        size_t value = ++at;
        while (at < c->len && b[at] != '\r') {
            if (!text((unsigned char)b[at]))
                return fail(c, at, "control byte in a header field value");
            at++;
        }
        if (!is_crlf(c, at))
            return fail(c, at, "header field not ended by CRLF");
        /* the value without its surrounding whitespace */
        size_t vs = value, ve = at;
        while (vs < ve && (b[vs] == ' ' || b[vs] == '\t'))
            vs++;
        while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t'))
            ve--;
        at += 2;
        if (name_len == 14 && strncasecmp(b + name, "content-length", 14) == 0) {
            if (seen_length)
                return fail(c, name, "two Content-Length fields");
            seen_length = h->has_length = true;
            if (vs == ve || ve - vs > 19)
                return fail(c, vs, "Content-Length is not a number");
            for (size_t i = vs; i < ve; i++) {
                if (b[i] < '0' || b[i] > '9')
                    return fail(c, i, "Content-Length is not a number");
                h->length = h->length * 10 + (uint64_t)(b[i] - '0');
            }
        } else if (name_len == 17 && strncasecmp(b + name, "transfer-encoding", 17) == 0) {
            if (seen_te)
                return fail(c, name, "two Transfer-Encoding fields");
            seen_te = h->chunked = true;
            if (ve - vs != 7 || strncasecmp(b + vs, "chunked", 7) != 0)
                return fail(c, vs, "a transfer coding other than chunked");
        } else if (name_len == 10 && strncasecmp(b + name, "connection", 10) == 0) {
            h->close |= list_has(b + vs, ve - vs, "close");
        }
    }
    if (h->has_length && h->chunked)
        return fail(c, pos, "both Content-Length and Transfer-Encoding");
    if ((h->status < 200 || h->status == 204) && (h->has_length || h->chunked))
        return fail(c, pos, "Content-Length or Transfer-Encoding in a 1xx or 204 answer");
    h->end = at + 2;
    return true;
}

/* Finds the end of a chunked body starting at `pos`; false if it is malformed. At the end of
 * the bytes, *end is c->len and `*whole` false. */
static bool chunked_body(checker *c, size_t pos, size_t *end, bool *whole)
{
    const char *b = c->b;
    *whole = false;
    for (;;) {
        uint64_t size = 0;
        size_t digits = 0;
        while (pos < c->len && isxdigit((unsigned char)b[pos])) {
            if (++digits > 15)
                return fail(c, pos, "chunk size too long");
            int v = isdigit((unsigned char)b[pos]) ? b[pos] - '0' : (tolower(b[pos]) - 'a' + 10);
            size = size * 16 + (uint64_t)v;
            pos++;
        }
        if (pos == c->len)
            break;
        if (digits == 0)
            return fail(c, pos, "chunk size is not hexadecimal");
        if (b[pos] == ';') /* chunk extensions */
            while (pos < c->len && b[pos] != '\r' && text((unsigned char)b[pos]))
                pos++;
        if (pos + 1 >= c->len)
            break;
        if (!is_crlf(c, pos))
            return fail(c, pos, "chunk size line not ended by CRLF");
        pos += 2;
        if (size == 0) {
            /* trailer fields, then the empty line */
            while (pos < c->len && !is_crlf(c, pos)) {
                size_t name = pos;
                while (pos < c->len && tchar((unsigned char)b[pos]))
                    pos++;
                if (pos == c->len)
                    break;
                if (pos == name || b[pos] != ':')
                    return fail(c, pos, "trailer field name is not a token followed by ':'");
                while (pos < c->len && b[pos] != '\r' && text((unsigned char)b[pos]))
                    pos++;
                if (pos + 1 >= c->len)
                    break;
                if (!is_crlf(c, pos))
                    return fail(c, pos, "trailer field not ended by CRLF");
                pos += 2;
            }
            if (pos >= c->len)
                break;
            *end = pos + 2;
            *whole = true;
            return true;
        }
        if (c->len - pos < size + 2) {
            if (c->len - pos > size && b[pos + size] != '\r')
                return fail(c, pos + size, "chunk data not followed by CRLF");
            break;
        }
        pos += size;
        if (!is_crlf(c, pos))
            return fail(c, pos, "chunk data not followed by CRLF");
        pos += 2;
    }
    *end = c->len;
    return true;
}

static bool answers(checker *c, size_t pos, size_t k, size_t *finals);

/* The answer whose head is `h`, with a body (`with_body`) or without, then what follows. */
static bool answer_then_rest(checker *c, const head *h, bool with_body, size_t k, size_t *finals)
{
    size_t end = h->end;
    bool whole = true;
    if (with_body) {
        if (h->chunked) {
            if (!chunked_body(c, h->end, &end, &whole))
                return false;
        } else if (h->has_length) {
            whole = c->len - h->end >= h->length;
            end = whole ? h->end + (size_t)h->length : c->len;
        } else {
            end = c->len; /* delimited by the close */
        }
    }
    if (!whole && !c->truncated_ok)
        return fail(c, c->len, "the connection ended inside an answer's body");
    if (h->close && end != c->len)
        return fail(c, end, "bytes after an answer that said Connection: close");
    return answers(c, end, k + 1, finals);
}

static bool answers(checker *c, size_t pos, size_t k, size_t *finals)
{
    if (pos == c->len) {
        *finals = k;
        return true;
    }
    if (++c->steps > CHECK_BUDGET) {
        *finals = k;
        return true;
    }
    head h;
    if (!parse_head(c, pos, &h))
        return false;
    if (h.status < 200) {
        if (h.status == 101) { /* another protocol from here on */
            *finals = k + 1;
            return true;
        }
        if (h.close && h.end != c->len)
            return fail(c, h.end, "bytes after an answer that said Connection: close");
        return answers(c, h.end, k, finals); /* an interim answer: the final one follows */
    }
    fuzz_method m = k < c->nmethods ? c->methods[k] : FUZZ_METHOD_UNKNOWN;
    /* An error found while the head was read may be answered before porter knew the method. */
    if (m == FUZZ_METHOD_HEAD && h.status >= 400)
        m = FUZZ_METHOD_UNKNOWN;
    if (h.status == 204 || h.status == 304)
        m = FUZZ_METHOD_HEAD; /* no body either way */
    if (m != FUZZ_METHOD_HEAD && answer_then_rest(c, &h, true, k, finals))
        return true;
    return m != FUZZ_METHOD_OTHER && answer_then_rest(c, &h, false, k, finals);
}

/* Prints `len` bytes of `b` from `from`, escaped, at most `max` of them. */
static void dump(const char *b, size_t len, size_t from, size_t max)
{
    for (size_t i = from; i < len && i < from + max; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == '\n')
            fputs("\\n\n", stderr);
        else if (ch == '\r')
            fputs("\\r", stderr);
        else if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            fprintf(stderr, "\\x%02x", ch);
        else
            fputc(ch, stderr);
    }
    fputc('\n', stderr);
}

size_t fuzz_check_responses(const char *out, size_t len, const fuzz_method *methods, size_t n,
                            bool truncated_ok)
{
    checker c = {
        .b = out, .len = len, .methods = methods, .nmethods = n, .truncated_ok = truncated_ok};
    size_t finals = 0;
    if (answers(&c, 0, 0, &finals))
        return finals;
    fprintf(stderr, "malformed answer at byte %zu of %zu: %s\n", c.why_at, len, c.why);
    size_t from = c.why_at > 2048 ? c.why_at - 2048 : 0;
    fprintf(stderr, "---- the answers from byte %zu ----\n", from);
    dump(out, len, from, 4096);
    abort();
}
