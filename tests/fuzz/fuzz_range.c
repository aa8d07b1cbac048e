/*
 * fuzz_range: Range header values against pt_range_parse (server/range.h).
 *
 * The input is a first line "SIZE MAX" (the representation's length, taken below 2^56, and
 * max_ranges, taken from 1 to 200) and then the header's value; without that line the whole
 * input is the value, for a 10000-byte representation and 16 ranges. Each answer is checked
 * against what range.h promises (every range inside the representation, no more than MAX of
 * them, several never adding up to more than the representation), against a second parser
 * written here another way (the value split at its commas first), and a multipart body's
 * length against its parts formatted here.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "server/conf/conf.h"
#include "server/handlers/range.h"
#include "tests/fuzz/fuzz.h"

/* Sizes stay below 2^56, so 200 ranges of one never add up past 2^64. */
#define SIZE_LIMIT (UINT64_C(1) << 56)

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads all of [s, e) as a decimal number, saturating at UINT64_MAX; false if it holds
 * anything but digits, or nothing. */
static bool number(const char *s, const char *e, uint64_t *out)
{
    if (s == e)
        return false;
    uint64_t v = 0;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return true;
}

/* Parses one element of the list, "FIRST-[LAST]" or "-SUFFIX" with nothing around it, into a
 * range of a `size`-byte representation. Returns -1 if it is malformed, 0 if it is not
 * satisfiable (*empty_suffix set for a suffix of an empty representation), 1 with *r. */
static int element(const char *s, const char *e, uint64_t size, pt_range *r, bool *empty_suffix)
{
    const char *dash = memchr(s, '-', (size_t)(e - s));
    uint64_t first, last;
    if (!dash)
        return -1;
    if (dash == s) {
        if (!number(s + 1, e, &last))
            return -1;
        if (last == 0)
            return 0;
        if (size == 0) {
            *empty_suffix = true;
            return 0;
        }
        *r = (pt_range){last >= size ? 0 : size - last, size - 1};
        return 1;
    }
    if (!number(s, dash, &first))
        return -1;
    if (dash + 1 == e)
        last = UINT64_MAX;
    else if (!number(dash + 1, e, &last) || last < first)
        return -1;
    if (first >= size)
        return 0;
    *r = (pt_range){first, last >= size ? size - 1 : last};
    return 1;
}

/* RFC 9110 section 14 with range.h's policy, from the value split at its commas: the
 * non-empty elements (optional whitespace trimmed) are the ranges asked for. */
static int reference(const char *v, size_t len, uint64_t size, size_t max, pt_range *out)
{
    if (len < 6 || strncasecmp(v, "bytes=", 6) != 0)
        return PT_RANGE_IGNORE;
    const char *p = v + 6, *end = v + len;
    size_t n = 0, specs = 0;
    bool empty_suffix = false;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *s = p, *e = comma ? comma : end;
        while (s < e && ows(*s))
            s++;
        while (e > s && ows(e[-1]))
            e--;
        if (s < e) {
            if (++specs > max)
                return PT_RANGE_IGNORE;
            int r = element(s, e, size, &out[n], &empty_suffix);
            if (r < 0)
                return PT_RANGE_IGNORE;
            n += (size_t)r;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (specs == 0)
        return PT_RANGE_IGNORE;
    if (n == 0)
        return empty_suffix ? PT_RANGE_IGNORE : PT_RANGE_UNSATISFIABLE;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += out[i].last - out[i].first + 1;
    return n > 1 && total > size ? PT_RANGE_IGNORE : (int)n;
}

/* Reads the input's first line, "SIZE MAX", if it has one. */
static void parameters(const char **p, const char *end, uint64_t *size, size_t *max)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *sp = nl ? memchr(*p, ' ', (size_t)(nl - *p)) : NULL;
    uint64_t s, m;
    if (!sp || !number(*p, sp, &s) || !number(sp + 1, nl, &m))
        return;
    *size = s % SIZE_LIMIT;
    *max = 1 + (size_t)(m % PT_CONF_MAX_RANGES);
    *p = nl + 1;
}

/* The multipart/byteranges body of `n` ranges: its length part by part, as range.h
 * describes the framing, against pt_range_multipart_length and the formatters. */
static void check_multipart(const pt_range *r, size_t n, uint64_t size)
{
    static const char type[] = "text/plain";
    char boundary[PT_RANGE_BOUNDARY_LEN + 1], expect[256], got[256];
    pt_range_boundary(boundary);
    FUZZ_CHECK(strlen(boundary) == PT_RANGE_BOUNDARY_LEN &&
                   strspn(boundary, "0123456789") == PT_RANGE_BOUNDARY_LEN,
               "boundary \"%s\"", boundary);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(expect, sizeof expect,
                           "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64
                           "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
                           boundary, type, r[i].first, r[i].last, size);
        size_t need = pt_range_part_head(got, sizeof got, boundary, type, r[i], size);
        FUZZ_CHECK(need == (size_t)len && memcmp(got, expect, need) == 0,
                   "part head of %" PRIu64 "-%" PRIu64, r[i].first, r[i].last);
        total += (uint64_t)len + r[i].last - r[i].first + 1;
    }
    int len = snprintf(expect, sizeof expect, "\r\n--%s--\r\n", boundary);
    size_t need = pt_range_part_tail(got, sizeof got, boundary);
    FUZZ_CHECK(need == (size_t)len && memcmp(got, expect, need) == 0, "part tail");
    total += (uint64_t)len;
    uint64_t computed = pt_range_multipart_length(r, n, boundary, type, size);
    FUZZ_CHECK(computed == total, "multipart length %" PRIu64 ", its parts %" PRIu64, computed,
               total);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    uint64_t length = 10000;
    size_t max = 16;
    parameters(&p, end, &length, &max);
    /* The value in a buffer of its own size, so ASan sees any read past it. */
    size_t vlen = (size_t)(end - p);
    char *value = malloc(vlen ? vlen : 1);
    memcpy(value, p, vlen);
    pt_range *got = calloc(max, sizeof *got), *want = calloc(max, sizeof *want);

    int n = pt_range_parse((pt_str){value, vlen}, length, max, got);
    FUZZ_CHECK(n == PT_RANGE_IGNORE || n == PT_RANGE_UNSATISFIABLE || (n > 0 && (size_t)n <= max),
               "returned %d with max %zu", n, max);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(got[i].first <= got[i].last && got[i].last < length,
                   "range %d is %" PRIu64 "-%" PRIu64 " of %" PRIu64, i, got[i].first, got[i].last,
                   length);
        total += got[i].last - got[i].first + 1;
    }
    FUZZ_CHECK(n <= 1 || total <= length, "%d ranges add up to %" PRIu64 " of %" PRIu64, n, total,
               length);
    int ref = reference(value, vlen, length, max, want);
    FUZZ_CHECK(n == ref, "returned %d, the reference %d", n, ref);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(got[i].first == want[i].first && got[i].last == want[i].last,
                   "range %d is %" PRIu64 "-%" PRIu64 ", the reference's %" PRIu64 "-%" PRIu64, i,
                   got[i].first, got[i].last, want[i].first, want[i].last);
    if (n > 1)
        check_multipart(got, (size_t)n, length);
    free(got);
    free(want);
    free(value);
    return 0;
}
