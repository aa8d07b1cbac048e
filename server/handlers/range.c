#include "server/handlers/range.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads digits at *p (at least one), saturating at UINT64_MAX. */
static bool digits(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        s++;
    }
    if (s == *p)
        return false;
    *p = s;
    *out = v;
    return true;
}

int pt_range_parse(pt_str value, uint64_t size, size_t max, pt_range *out)
{
    const char *p = value.p, *end = value.p + value.len;
    if (value.len < 6 || strncasecmp(p, "bytes=", 6) != 0)
        return PT_RANGE_IGNORE;
    p += 6;
    size_t n = 0, specs = 0;
    uint64_t total = 0;
    bool empty_suffix = false; /* a satisfiable suffix range of an empty representation */
    while (p < end) {
        while (p < end && (ows(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        uint64_t first = 0, last = 0;
        bool suffix = *p == '-';
        if (suffix) {
            p++;
            if (!digits(&p, end, &last))
                return PT_RANGE_IGNORE;
        } else {
            if (!digits(&p, end, &first) || p == end || *p != '-')
                return PT_RANGE_IGNORE;
            p++;
            if (!digits(&p, end, &last))
                last = UINT64_MAX;
            else if (last < first)
                return PT_RANGE_IGNORE;
        }
        while (p < end && ows(*p))
            p++;
        if (p < end && *p != ',')
            return PT_RANGE_IGNORE;
        if (++specs > max)
            return PT_RANGE_IGNORE;
        if (suffix) {
            /* last holds the suffix length */
            if (last == 0)
                continue;
            if (size == 0) {
                empty_suffix = true;
                continue;
            }
            first = last >= size ? 0 : size - last;
            last = size - 1;
        } else {
            if (first >= size)
                continue;
            if (last >= size)
                last = size - 1;
        }
        out[n++] = (pt_range){first, last};
        total += last - first + 1;
    }
    if (specs == 0)
        return PT_RANGE_IGNORE;
    if (n == 0) {
        /* An empty representation has nothing to cut: a suffix range is served whole. */
        if (empty_suffix)
            return PT_RANGE_IGNORE;
        return PT_RANGE_UNSATISFIABLE;
    }
    if (n > 1 && total > size)
        return PT_RANGE_IGNORE;
    return (int)n;
}

void pt_range_boundary(char buf[PT_RANGE_BOUNDARY_LEN + 1])
{
    /* Not a secret, only unlikely to occur in a file: a per-thread splitmix64 sequence. */
    static _Thread_local uint64_t state;
    if (!state)
        state = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&state;
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    snprintf(buf, PT_RANGE_BOUNDARY_LEN + 1, "%020" PRIu64, z);
}

size_t pt_range_part_head(char *buf, size_t cap, const char *boundary, const char *type, pt_range r,
                          uint64_t size)
{
    int n = snprintf(buf, cap,
                     "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64
                     "/%" PRIu64 "\r\n\r\n",
                     boundary, type, r.first, r.last, size);
    return n < 0 ? 0 : (size_t)n;
}

size_t pt_range_part_tail(char *buf, size_t cap, const char *boundary)
{
    int n = snprintf(buf, cap, "\r\n--%s--\r\n", boundary);
    return n < 0 ? 0 : (size_t)n;
}

uint64_t pt_range_multipart_length(const pt_range *r, size_t n, const char *boundary,
                                   const char *type, uint64_t size)
{
    uint64_t total = pt_range_part_tail(NULL, 0, boundary);
    for (size_t i = 0; i < n; i++)
        total +=
            pt_range_part_head(NULL, 0, boundary, type, r[i], size) + r[i].last - r[i].first + 1;
    return total;
}
