/*
 * fuzz_proxy_protocol: bytes a client sends first on a `listen ... proxy_protocol` address,
 * against pt_proxy_header_parse (connmgr/proxy_protocol.h).
 *
 * Every parse reads a heap copy of exactly the bytes it is given, so a look past them (at bytes
 * that have not arrived) is an ASan report. Checked on top: the answer is a length within the
 * input and the bound, "need more" only below the bound, or a refusal with its reason; a header
 * reads the same from its exact bytes as with what follows it; its prefixes ask for more (so a
 * header sent in pieces reads as one sent whole); a header without addresses carries none; and
 * the addresses taken, written again as a v1 line and as a v2 header, read back the same.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>

#include "connmgr/proxy_protocol.h"
#include "tests/fuzz/fuzz.h"

static int parse(const void *data, size_t n, pt_proxy_header *h)
{
    char *copy = malloc(n ? n : 1);
    memcpy(copy, data, n);
    int r = pt_proxy_header_parse(copy, n, h);
    free(copy);
    return r;
}

static bool same_addr(const pt_sockaddr_ip *a, socklen_t alen, const pt_sockaddr_ip *b,
                      socklen_t blen)
{
    if (alen != blen || a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->in.sin_port == b->in.sin_port && memcmp(&a->in.sin_addr, &b->in.sin_addr, 4) == 0;
    return a->in6.sin6_port == b->in6.sin6_port &&
           memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
}

static bool same(const pt_proxy_header *a, const pt_proxy_header *b)
{
    if (a->local != b->local)
        return false;
    return a->local || (same_addr(&a->src, a->srclen, &b->src, b->srclen) &&
                        same_addr(&a->dst, a->dstlen, &b->dst, b->dstlen));
}

static unsigned port(const pt_sockaddr_ip *a)
{
    return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

/* The addresses of `h` as a v1 line and as a v2 header, each read back. */
static void round_trip(const pt_proxy_header *h)
{
    bool v4 = h->src.sa.sa_family == AF_INET;
    FUZZ_CHECK(h->dst.sa.sa_family == h->src.sa.sa_family, "source and destination families");
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], line[PT_PROXY_V1_MAX + 64];
    const void *sa = v4 ? (const void *)&h->src.in.sin_addr : (const void *)&h->src.in6.sin6_addr;
    const void *da = v4 ? (const void *)&h->dst.in.sin_addr : (const void *)&h->dst.in6.sin6_addr;
    FUZZ_CHECK(inet_ntop(v4 ? AF_INET : AF_INET6, sa, s, sizeof s) &&
                   inet_ntop(v4 ? AF_INET : AF_INET6, da, d, sizeof d),
               "addresses to text");
    int n = snprintf(line, sizeof line, "PROXY TCP%c %s %s %u %u\r\n", v4 ? '4' : '6', s, d,
                     port(&h->src), port(&h->dst));
    /* any address taken fits a v1 line: inet_ntop writes at most 39 bytes of IPv6 */
    FUZZ_CHECK(n <= PT_PROXY_V1_MAX, "a %d-byte v1 line", n);
    pt_proxy_header back;
    int r = parse(line, (size_t)n, &back);
    FUZZ_CHECK(r == n && back.version == 1 && same(h, &back), "v1 \"%.*s\" read back as %d", n - 2,
               line, r);

    unsigned char bin[16 + 36];
    static const unsigned char sig[12] = {'\r', '\n', '\r', '\n', 0,   '\r',
                                          '\n', 'Q',  'U',  'I',  'T', '\n'};
    size_t alen = v4 ? 12 : 36, ip = v4 ? 4 : 16;
    memcpy(bin, sig, 12);
    bin[12] = 0x21;
    bin[13] = v4 ? 0x11 : 0x21;
    bin[14] = 0;
    bin[15] = (unsigned char)alen;
    memcpy(bin + 16, sa, ip);
    memcpy(bin + 16 + ip, da, ip);
    unsigned sp = port(&h->src), dp = port(&h->dst);
    bin[16 + 2 * ip] = (unsigned char)(sp >> 8);
    bin[17 + 2 * ip] = (unsigned char)sp;
    bin[18 + 2 * ip] = (unsigned char)(dp >> 8);
    bin[19 + 2 * ip] = (unsigned char)dp;
    r = parse(bin, 16 + alen, &back);
    FUZZ_CHECK(r == (int)(16 + alen) && back.version == 2 && same(h, &back), "v2 read back as %d",
               r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_proxy_header h, again;
    int r = parse(data, size, &h);
    FUZZ_CHECK(r == -EBADMSG || r >= 0, "returned %d", r);
    if (r < 0) {
        FUZZ_CHECK(h.why != NULL, "a refusal without its reason");
        return 0;
    }
    if (r == 0) {
        FUZZ_CHECK(size < PT_PROXY_HEADER_MAX, "asks for more after %zu bytes", size);
        return 0;
    }
    FUZZ_CHECK((size_t)r <= size && r <= PT_PROXY_HEADER_MAX, "a %d-byte header in %zu", r, size);
    FUZZ_CHECK(h.version == 1 || h.version == 2, "version %d", h.version);
    FUZZ_CHECK(h.version != 1 || r <= PT_PROXY_V1_MAX, "a %d-byte v1 line", r);
    /* the same from its own bytes alone */
    FUZZ_CHECK(parse(data, (size_t)r, &again) == r && same(&h, &again), "not the same alone");
    /* a header cut short asks for more: at its end, in its middle, at its start */
    size_t cuts[] = {(size_t)r - 1, (size_t)r / 2, size % (size_t)r, 1, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        int c = parse(data, cuts[i], &again);
        FUZZ_CHECK(c == 0, "cut at %zu of %d: %d (%s)", cuts[i], r, c, again.why ? again.why : "");
    }
    if (h.local) {
        FUZZ_CHECK(h.srclen == 0 && h.dstlen == 0, "addresses on a header without any");
        return 0;
    }
    FUZZ_CHECK((h.srclen == sizeof h.src.in && h.src.sa.sa_family == AF_INET) ||
                   (h.srclen == sizeof h.src.in6 && h.src.sa.sa_family == AF_INET6),
               "source family %d, length %u", h.src.sa.sa_family, (unsigned)h.srclen);
    round_trip(&h);
    return 0;
}
