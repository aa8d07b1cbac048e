/*
 * The PROXY protocol header parser (proxy_protocol.h).
 *
 * Every decision rests on the bytes present and the bounds, never on what may follow: a prefix
 * of a valid header is "need more", and a refused input stays refused however much is added,
 * so a header that arrives in pieces reads the same as one that arrives whole.
 */
#include "connmgr/proxy_protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

static const unsigned char v2_signature[12] = {'\r', '\n', '\r', '\n', 0,   '\r',
                                               '\n', 'Q',  'U',  'I',  'T', '\n'};

#define V2_FIXED 16 /* signature, version and command, family and transport, length */

/* v2's families and transports (the high and low halves of byte 13). */
enum { AF_V2_UNSPEC, AF_V2_INET, AF_V2_INET6, AF_V2_UNIX };
enum { TR_V2_UNSPEC, TR_V2_STREAM, TR_V2_DGRAM };

static int refuse(pt_proxy_header *out, const char *why)
{
    out->why = why;
    return -EBADMSG;
}

/* ---- version 1 ---- */

/* The decimal port in [p, e): 1 to 5 digits, at most 65535. */
static bool v1_port(const char *p, const char *e, in_port_t *port)
{
    if (e <= p || e - p > 5)
        return false;
    unsigned v = 0;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 65535)
        return false;
    *port = htons((in_port_t)v);
    return true;
}

/* The address literal of `family` in [p, e) into `a`. */
static bool v1_addr(int family, const char *p, const char *e, pt_sockaddr_ip *a, socklen_t *len)
{
    char text[INET6_ADDRSTRLEN];
    size_t n = (size_t)(e - p);
    if (e <= p || n >= sizeof text)
        return false;
    memcpy(text, p, n);
    text[n] = '\0';
    memset(a, 0, sizeof *a);
    if (family == AF_INET) {
        a->in.sin_family = AF_INET;
        *len = sizeof a->in;
        return inet_pton(AF_INET, text, &a->in.sin_addr) == 1;
    }
    a->in6.sin6_family = AF_INET6;
    *len = sizeof a->in6;
    return inet_pton(AF_INET6, text, &a->in6.sin6_addr) == 1;
}

/* The next field of a line at *p, up to a single space or the end `e` (`last`: the line's last
 * field, which must reach `e`). */
static bool v1_field(const char **p, const char *e, bool last, const char **fs, const char **fe)
{
    const char *sp = memchr(*p, ' ', (size_t)(e - *p));
    *fs = *p;
    if (last) {
        *fe = e;
        return sp == NULL;
    }
    if (!sp)
        return false;
    *fe = sp;
    *p = sp + 1;
    return true;
}

/* The line [p, e), "PROXY " and CRLF excluded. */
static int v1_line(const char *p, const char *e, pt_proxy_header *out)
{
    size_t n = (size_t)(e - p);
    if (n >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (n == 7 || p[7] == ' ')) {
        out->local = true; /* the rest of the line says nothing we may use */
        return 0;
    }
    int family;
    if (n >= 5 && memcmp(p, "TCP4 ", 5) == 0)
        family = AF_INET;
    else if (n >= 5 && memcmp(p, "TCP6 ", 5) == 0)
        family = AF_INET6;
    else
        return refuse(out, "unknown protocol, not TCP4, TCP6 or UNKNOWN");
    p += 5;
    const char *f[4][2];
    for (int i = 0; i < 4; i++)
        if (!v1_field(&p, e, i == 3, &f[i][0], &f[i][1]))
            return refuse(out, "fields not four, each after a single space");
    if (!v1_addr(family, f[0][0], f[0][1], &out->src, &out->srclen) ||
        !v1_addr(family, f[1][0], f[1][1], &out->dst, &out->dstlen))
        return refuse(out, family == AF_INET ? "bad TCP4 address" : "bad TCP6 address");
    in_port_t sport, dport;
    if (!v1_port(f[2][0], f[2][1], &sport) || !v1_port(f[3][0], f[3][1], &dport))
        return refuse(out, "bad port");
    if (family == AF_INET) {
        out->src.in.sin_port = sport;
        out->dst.in.sin_port = dport;
    } else {
        out->src.in6.sin6_port = sport;
        out->dst.in6.sin6_port = dport;
    }
    return 0;
}

static int v1(const char *p, size_t len, pt_proxy_header *out)
{
    out->version = 1;
    size_t n = len < PT_PROXY_V1_MAX ? len : PT_PROXY_V1_MAX;
    /* The line's only CR is the last but one byte, and its only LF the last: anything else is
     * refused as soon as it is seen. */
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && i + 1 < n && p[i + 1] != '\n')
            return refuse(out, "CR without LF");
        if (p[i] == '\n') {
            if (i == 0 || p[i - 1] != '\r')
                return refuse(out, "LF without CR");
            int r = v1_line(p + 6, p + i - 1, out);
            return r < 0 ? r : (int)(i + 1);
        }
    }
    return len >= PT_PROXY_V1_MAX ? refuse(out, "no CRLF within 107 bytes") : 0;
}

/* ---- version 2 ---- */

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* The TLVs in [p, e): each a type, a 16-bit length and that many bytes, tiling the rest of the
 * header exactly. */
static bool v2_tlvs(const unsigned char *p, const unsigned char *e)
{
    while (p < e) {
        if (e - p < 3 || be16(p + 1) > (size_t)(e - p - 3))
            return false;
        p += 3 + be16(p + 1);
    }
    return true;
}

static int v2(const unsigned char *p, size_t len, pt_proxy_header *out)
{
    out->version = 2;
    if (len < V2_FIXED)
        return 0;
    unsigned version = p[12] >> 4, command = p[12] & 15;
    unsigned family = p[13] >> 4, transport = p[13] & 15;
    size_t total = V2_FIXED + be16(p + 14);
    if (version != 2)
        return refuse(out, "v2 signature with another version");
    if (command > 1)
        return refuse(out, "unknown v2 command");
    if (family > AF_V2_UNIX || transport > TR_V2_DGRAM)
        return refuse(out, "unknown v2 address family or transport");
    if (total > PT_PROXY_HEADER_MAX)
        return refuse(out, "v2 header longer than 4096 bytes");
    if (len < total)
        return 0;
    if (command == 0) { /* LOCAL: the proxy's own connection (a health check) */
        out->local = true;
        return (int)total;
    }
    static const size_t addr_len[] = {0, 12, 36, 216};
    const unsigned char *a = p + V2_FIXED, *end = p + total;
    if (total - V2_FIXED < addr_len[family])
        return refuse(out, "v2 length shorter than its addresses");
    if (!v2_tlvs(a + addr_len[family], end))
        return refuse(out, "v2 TLVs do not fit the header");
    if (transport != TR_V2_STREAM || (family != AF_V2_INET && family != AF_V2_INET6)) {
        out->local = true;
        return (int)total;
    }
    if (family == AF_V2_INET) {
        out->src.in.sin_family = out->dst.in.sin_family = AF_INET;
        memcpy(&out->src.in.sin_addr, a, 4);
        memcpy(&out->dst.in.sin_addr, a + 4, 4);
        memcpy(&out->src.in.sin_port, a + 8, 2);
        memcpy(&out->dst.in.sin_port, a + 10, 2);
        out->srclen = out->dstlen = sizeof out->src.in;
    } else {
        out->src.in6.sin6_family = out->dst.in6.sin6_family = AF_INET6;
        memcpy(&out->src.in6.sin6_addr, a, 16);
        memcpy(&out->dst.in6.sin6_addr, a + 16, 16);
        memcpy(&out->src.in6.sin6_port, a + 32, 2);
        memcpy(&out->dst.in6.sin6_port, a + 34, 2);
        out->srclen = out->dstlen = sizeof out->src.in6;
    }
    return (int)total;
}

int pt_proxy_header_parse(const void *buf, size_t len, pt_proxy_header *out)
{
    const unsigned char *p = buf;
    memset(out, 0, sizeof *out);
    if (len == 0)
        return 0;
    size_t n = len < sizeof v2_signature ? len : sizeof v2_signature;
    if (p[0] == '\r') {
        if (memcmp(p, v2_signature, n) != 0)
            return refuse(out, "bad v2 signature");
        return v2(p, len, out);
    }
    n = len < 6 ? len : 6;
    if (memcmp(p, "PROXY ", n) != 0)
        return refuse(out, "not a PROXY protocol header");
    if (len < 6)
        return 0;
    return v1((const char *)p, len, out);
}
