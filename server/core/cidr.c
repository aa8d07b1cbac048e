/*
 * Address ranges (cidr.h).
 */
#include "server/core/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

/* The mask of `bits` leading ones over `n` bytes. */
static void make_mask(uint8_t *mask, unsigned bits, size_t n)
{
    memset(mask, 0, 16);
    for (size_t i = 0; i < n && bits; i++) {
        unsigned b = bits > 8 ? 8 : bits;
        mask[i] = (uint8_t)(0xff00u >> b);
        bits -= b;
    }
}

int pt_cidr_parse(const char *s, pt_cidr *out, const char **why, pt_cidr *masked)
{
    memset(out, 0, sizeof *out);
    if (strcmp(s, "all") == 0) {
        out->kind = PT_CIDR_ALL;
        return 0;
    }
    if (strcmp(s, "unix:") == 0) {
        out->kind = PT_CIDR_UNIX;
        return 0;
    }
    char text[INET6_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof text) {
        *why = "not an IPv4 or IPv6 address";
        return -EINVAL;
    }
    memcpy(text, s, alen);
    text[alen] = '\0';
    size_t n;
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->kind = PT_CIDR_V4;
        n = 4;
    } else if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->kind = PT_CIDR_V6;
        n = 16;
    } else {
        *why = "not an IPv4 or IPv6 address";
        return -EINVAL;
    }
    unsigned bits = (unsigned)n * 8;
    if (slash) {
        const char *p = slash + 1;
        unsigned v = 0;
        if (!*p || strlen(p) > 3) {
            *why = "invalid prefix length";
            return -EINVAL;
        }
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                *why = "invalid prefix length";
                return -EINVAL;
            }
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v > bits) {
            *why = n == 4 ? "invalid prefix length, an IPv4 one is 0..32"
                          : "invalid prefix length, an IPv6 one is 0..128";
            return -EINVAL;
        }
        bits = v;
    }
    out->prefix = (uint8_t)bits;
    make_mask(out->mask, bits, n);
    bool low_bits = false;
    for (size_t i = 0; i < n; i++)
        low_bits |= (out->addr[i] & ~out->mask[i]) != 0;
    if (low_bits) {
        if (masked) {
            *masked = *out;
            for (size_t i = 0; i < n; i++)
                masked->addr[i] &= masked->mask[i];
        }
        *why = "bits are set beyond the prefix length";
        return -ERANGE;
    }
    return 0;
}

void pt_cidr_format(const pt_cidr *c, char *buf, size_t cap)
{
    char a[INET6_ADDRSTRLEN];
    switch ((pt_cidr_kind)c->kind) {
    case PT_CIDR_ALL:
        snprintf(buf, cap, "all");
        return;
    case PT_CIDR_UNIX:
        snprintf(buf, cap, "unix:");
        return;
    case PT_CIDR_V4:
    case PT_CIDR_V6:
        inet_ntop(c->kind == PT_CIDR_V4 ? AF_INET : AF_INET6, c->addr, a, sizeof a);
        snprintf(buf, cap, "%s/%u", a, (unsigned)c->prefix);
        return;
    }
    snprintf(buf, cap, "?");
}

void pt_cidr_client_of(const struct sockaddr *sa, socklen_t len, pt_cidr_client *out)
{
    memset(out, 0, sizeof *out);
    if (!sa || len < (socklen_t)sizeof sa->sa_family)
        return;
    switch (sa->sa_family) {
    case AF_INET:
        if (len >= (socklen_t)sizeof(struct sockaddr_in)) {
            out->family = AF_INET;
            out->v4 = ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr;
        }
        return;
    case AF_INET6:
        if (len >= (socklen_t)sizeof(struct sockaddr_in6)) {
            const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
            out->family = AF_INET6;
            memcpy(out->v6, a->s6_addr, 16);
            if (IN6_IS_ADDR_V4MAPPED(a)) {
                out->mapped = true;
                memcpy(&out->v4, a->s6_addr + 12, 4);
            }
        }
        return;
    case AF_UNIX:
        out->family = AF_UNIX;
        return;
    default:
        return;
    }
}
