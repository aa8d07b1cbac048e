/*
 * Address ranges (cidr.h).
 */
#include "server/core/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

int pt_cidr_parse(const char *s, pt_cidr *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(s, "unix:") == 0) {
        out->family = AF_UNIX;
        return 0;
    }
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    char text[INET6_ADDRSTRLEN];
    if (alen == 0 || alen >= sizeof text)
        return -EINVAL;
    memcpy(text, s, alen);
    text[alen] = '\0';
    size_t bytes;
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = AF_INET;
        bytes = 4;
    } else if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = AF_INET6;
        bytes = 16;
    } else {
        return -EINVAL;
    }
    unsigned bits = (unsigned)bytes * 8;
    if (slash) {
        const char *p = slash + 1;
        size_t n = strspn(p, "0123456789");
        if (n == 0 || n > 3 || p[n] != '\0')
            return -EINVAL;
        unsigned v = 0;
        for (size_t i = 0; i < n; i++)
            v = v * 10 + (unsigned)(p[i] - '0');
        if (v > bits)
            return -EINVAL;
        bits = v;
    }
    int stray = 0;
    for (size_t i = 0; i < bytes; i++) {
        unsigned keep = bits >= 8 ? 8 : bits;
        bits -= keep;
        out->mask[i] = (unsigned char)(0xff00u >> keep);
        if (out->addr[i] & ~out->mask[i])
            stray = 1;
        out->addr[i] &= out->mask[i];
    }
    return stray;
}

static bool in_range(const unsigned char *a, const pt_cidr *c, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        if ((a[i] & c->mask[i]) != c->addr[i])
            return false;
    return true;
}

bool pt_cidr_match(const pt_cidr *c, const struct sockaddr *sa)
{
    int family = sa ? sa->sa_family : AF_UNSPEC;
    const unsigned char *a = NULL;
    if (family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        a = a6->s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            a += 12;
        }
    } else {
        return c->family == AF_UNIX;
    }
    if (c->family != family)
        return false;
    return in_range(a, c, family == AF_INET ? 4 : 16);
}

bool pt_cidr_match_any(const pt_cidr *list, size_t n, const struct sockaddr *sa)
{
    for (size_t i = 0; i < n; i++)
        if (pt_cidr_match(&list[i], sa))
            return true;
    return false;
}
