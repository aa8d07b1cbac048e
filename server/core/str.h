/*
 * Byte strings that borrow their bytes (a pointer and a length, not NUL-terminated), bytes that
 * grow, and the ASCII comparisons HTTP names and tokens need (no locale).
 *
 * Ownership: a pt_str owns nothing; whoever made it says how long its bytes live. A pt_bytes
 * owns its buffer.
 * Threading: no state.
 */
#ifndef PORTER_SERVER_CORE_STR_H
#define PORTER_SERVER_CORE_STR_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct pt_str {
    const char *p;
    size_t len;
} pt_str;

#define PT_STR_LIT(s) ((pt_str){(s), sizeof(s) - 1})

/* A header field: name and value, the value without surrounding blanks. */
typedef struct pt_header {
    pt_str name, value;
} pt_header;

/* Bytes that grow as they are appended to: `len` of `cap` at `p` (malloc'ed; free(p)). */
typedef struct pt_bytes {
    char *p;
    size_t len, cap;
} pt_bytes;

/* Appends `n` bytes of `d` to `b`, doubling its room as needed (16 KiB at first). Returns 0,
 * or -ENOMEM with `b` as it was. */
static inline int pt_bytes_append(pt_bytes *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

/* Optional white space (RFC 9110 section 5.6.3): a space or a tab. */
static inline bool pt_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether `s` holds exactly the C string `lit`. */
static inline bool pt_str_eq(pt_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* Appends `n` bytes of `s` to `buf` at `pos` when they fit within `cap`, and returns pos + n
 * either way: a result above `cap` says the text did not fit, and how long it would be. */
static inline size_t pt_append(char *buf, size_t pos, size_t cap, const char *s, size_t n)
{
    if (pos + n <= cap)
        memcpy(buf + pos, s, n);
    return pos + n;
}

#define PT_APPEND_LIT(buf, pos, cap, lit) pt_append(buf, pos, cap, lit, sizeof(lit) - 1)

/* Appends the decimal digits of `v` (two a step: this runs for every response head). */
static inline size_t pt_append_uint(char *buf, size_t pos, size_t cap, uint64_t v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    char digits[20];
    size_t n = 0;
    while (v >= 10) {
        const char *d = pairs + 2 * (v % 100);
        digits[sizeof digits - ++n] = d[1];
        if (v < 100) {
            digits[sizeof digits - ++n] = d[0];
            return pt_append(buf, pos, cap, digits + sizeof digits - n, n);
        }
        digits[sizeof digits - ++n] = d[0];
        v /= 100;
    }
    digits[sizeof digits - ++n] = (char)('0' + v);
    return pt_append(buf, pos, cap, digits + sizeof digits - n, n);
}

/* c in lower case, if it is an ASCII letter. */
static inline unsigned char pt_ascii_lower(unsigned char c)
{
    return (unsigned)(c - 'A') < 26u ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive comparison of a pt_str with a C string, in ASCII (as HTTP's names and tokens
 * are: no locale). Inline, so that a literal's length and letters are known where it is used. */
static inline bool pt_str_ieq(pt_str s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (pt_ascii_lower((unsigned char)s.p[i]) != pt_ascii_lower((unsigned char)lit[i]))
            return false;
    return true;
}

#endif
