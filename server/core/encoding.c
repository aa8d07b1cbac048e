#include "server/core/encoding.h"

#include <string.h>
#include <strings.h>

const char *pt_encoding_name(pt_encoding e)
{
    static const char *const names[PT_ENC_COUNT] = {NULL, "br", "zstd", "gzip"};
    return (unsigned)e < PT_ENC_COUNT ? names[e] : NULL;
}

const char *pt_encoding_suffix(pt_encoding e)
{
    static const char *const suffixes[PT_ENC_COUNT] = {"", ".br", ".zst", ".gz"};
    return (unsigned)e < PT_ENC_COUNT ? suffixes[e] : "";
}

/* Parses a qvalue ("0", "0.5", "1", "1.000") into thousandths; -1 if malformed. */
static int parse_q(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1'))
        return -1;
    int q = (p[0] - '0') * 1000;
    if (n == 1)
        return q;
    if (p[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9' || (q == 1000 && p[i] != '0'))
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q;
}

/* The q-value of one list member's parameters (";q=0.5"), 1000 when it has none, -1 when
 * malformed. */
static int member_q(const char *p, const char *end)
{
    int q = 1000;
    while (p < end) {
        while (p < end && (pt_ows(*p) || *p == ';'))
            p++;
        const char *name = p;
        while (p < end && *p != '=' && *p != ';' && !pt_ows(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        while (p < end && pt_ows(*p))
            p++;
        if (p == end || *p != '=') {
            if (nlen)
                continue; /* a parameter without a value: ignore it */
            break;
        }
        p++;
        while (p < end && pt_ows(*p))
            p++;
        const char *val = p;
        while (p < end && *p != ';' && !pt_ows(*p))
            p++;
        if (nlen == 1 && (name[0] == 'q' || name[0] == 'Q'))
            q = parse_q(val, (size_t)(p - val));
    }
    return q;
}

const pt_encoding_order pt_encoding_default_order = {{PT_ENC_ZSTD, PT_ENC_BR, PT_ENC_GZIP}};

pt_encoding pt_encoding_from_name(const char *name, size_t len)
{
    for (int e = PT_ENC_BR; e < PT_ENC_COUNT; e++) {
        const char *n = pt_encoding_name((pt_encoding)e);
        if (strlen(n) == len && strncasecmp(n, name, len) == 0)
            return (pt_encoding)e;
    }
    return PT_ENC_IDENTITY;
}

size_t pt_encoding_choose(pt_str ae, const pt_encoding_order *order,
                          pt_encoding out[PT_ENC_COUNT - 1])
{
    if (!order)
        order = &pt_encoding_default_order;
    /* -1: not named */
    int q[PT_ENC_COUNT] = {-1, -1, -1, -1}, star = -1;
    const char *p = ae.p, *end = ae.p + ae.len;
    while (p < end) {
        const char *m = p;
        while (p < end && *p != ',')
            p++;
        const char *mend = p;
        if (p < end)
            p++;
        while (m < mend && pt_ows(*m))
            m++;
        const char *tok = m;
        while (m < mend && *m != ';' && !pt_ows(*m))
            m++;
        size_t tlen = (size_t)(m - tok);
        if (tlen == 0)
            continue;
        int v = member_q(m, mend);
        if (v < 0)
            continue;
        int *slot = NULL;
        if (tlen == 2 && strncasecmp(tok, "br", 2) == 0)
            slot = &q[PT_ENC_BR];
        else if (tlen == 4 && strncasecmp(tok, "zstd", 4) == 0)
            slot = &q[PT_ENC_ZSTD];
        else if ((tlen == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
                 (tlen == 6 && strncasecmp(tok, "x-gzip", 6) == 0))
            slot = &q[PT_ENC_GZIP];
        else if (tlen == 8 && strncasecmp(tok, "identity", 8) == 0)
            slot = &q[PT_ENC_IDENTITY];
        else if (tlen == 1 && tok[0] == '*')
            slot = &star;
        if (slot && v > *slot)
            *slot = v;
    }
    size_t n = 0;
    for (size_t i = 0; i < PT_ENC_COUNT - 1; i++) {
        pt_encoding e = order->e[i];
        int v = q[e] >= 0 ? q[e] : star;
        if (v <= 0 || (q[PT_ENC_IDENTITY] >= 0 && v < q[PT_ENC_IDENTITY]))
            continue;
        /* insertion by q, keeping the order among equals */
        size_t k = n;
        while (k > 0) {
            int w = q[out[k - 1]] >= 0 ? q[out[k - 1]] : star;
            if (w >= v)
                break;
            out[k] = out[k - 1];
            k--;
        }
        out[k] = e;
        n++;
    }
    return n;
}
