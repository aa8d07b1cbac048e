#include "connmgr/authority.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int parse_port(const char *s, size_t len, uint16_t *out)
{
    unsigned v = 0;
    if (len == 0 || len > 5)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -EINVAL;
    *out = (uint16_t)v;
    return 0;
}

static int set_unix(pt_authority *a, const char *path, size_t len)
{
    if (len == 0 || memchr(path, '\0', len))
        return -EINVAL;
    if (len >= sizeof a->addr.un.sun_path)
        return -ENAMETOOLONG;
    memset(a, 0, sizeof *a);
    a->kind = PT_AUTHORITY_UNIX;
    memcpy(a->host, path, len);
    a->addr.un.sun_family = AF_UNIX;
    memcpy(a->addr.un.sun_path, path, len);
    a->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    return 0;
}

static int set_inet6(pt_authority *a, const char *host, size_t len, uint16_t port)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr in6;
    if (len == 0 || len >= sizeof buf)
        return -EINVAL;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET6, buf, &in6) != 1)
        return -EINVAL;
    memset(a, 0, sizeof *a);
    a->kind = PT_AUTHORITY_INET6;
    a->port = port;
    /* The canonical form, so that equal addresses compare equal. */
    inet_ntop(AF_INET6, &in6, a->host, sizeof a->host);
    a->addr.in6.sin6_family = AF_INET6;
    a->addr.in6.sin6_port = htons(port);
    a->addr.in6.sin6_addr = in6;
    a->addrlen = sizeof a->addr.in6;
    return 0;
}

static bool name_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* An IPv4 literal or a DNS name. */
static int set_host(pt_authority *a, const char *host, size_t len, uint16_t port)
{
    char buf[PT_AUTHORITY_HOST_MAX + 1];
    struct in_addr in4;
    if (len == 0)
        return -EINVAL;
    if (len > PT_AUTHORITY_HOST_MAX)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < len; i++) {
        if (!name_char((unsigned char)host[i]))
            return -EINVAL;
        buf[i] = (char)tolower((unsigned char)host[i]);
    }
    buf[len] = '\0';
    if (buf[0] == '.' || buf[0] == '-' || strstr(buf, ".."))
        return -EINVAL;
    memset(a, 0, sizeof *a);
    a->port = port;
    memcpy(a->host, buf, len + 1);
    if (inet_pton(AF_INET, buf, &in4) == 1) {
        a->kind = PT_AUTHORITY_INET4;
        a->addr.in.sin_family = AF_INET;
        a->addr.in.sin_port = htons(port);
        a->addr.in.sin_addr = in4;
        a->addrlen = sizeof a->addr.in;
        return 0;
    }
    /* All digits and dots but not a dotted quad ("10.1", "300.1.1.1"): a typo, not a name. */
    if (strspn(buf, "0123456789.") == len)
        return -EINVAL;
    a->kind = PT_AUTHORITY_NAME;
    return 0;
}

int pt_authority_parse(pt_authority *a, const char *s, size_t len, uint16_t default_port)
{
    uint16_t port = default_port;
    if (len >= 5 && strncmp(s, "unix:", 5) == 0)
        return set_unix(a, s + 5, len - 5);
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return -EINVAL;
        size_t hlen = (size_t)(close - s) - 1;
        size_t rest = len - (size_t)(close - s) - 1;
        if (rest) {
            if (close[1] != ':' || parse_port(close + 2, rest - 1, &port) < 0)
                return -EINVAL;
        }
        if (port == 0)
            return -EINVAL;
        return set_inet6(a, s + 1, hlen, port);
    }
    const char *colon = memchr(s, ':', len);
    if (colon && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1)) {
        /* Two colons or more: a bare IPv6 literal, which cannot carry a port. */
        if (port == 0)
            return -EINVAL;
        return set_inet6(a, s, len, port);
    }
    size_t hlen = len;
    if (colon) {
        hlen = (size_t)(colon - s);
        if (parse_port(colon + 1, len - hlen - 1, &port) < 0)
            return -EINVAL;
    }
    if (port == 0)
        return -EINVAL;
    return set_host(a, s, hlen, port);
}

int pt_authority_set(pt_authority *a, const char *host, uint16_t port)
{
    size_t len = strlen(host);
    if (host[0] == '/')
        return set_unix(a, host, len);
    if (port == 0)
        return -EINVAL;
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
        return set_inet6(a, host + 1, len - 2, port);
    if (memchr(host, ':', len))
        return set_inet6(a, host, len, port);
    return set_host(a, host, len, port);
}

int pt_authority_from_sockaddr(pt_authority *a, const struct sockaddr *sa, socklen_t len)
{
    char buf[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return set_host(a, buf, strlen(buf), ntohs(in->sin_port));
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        return set_inet6(a, buf, strlen(buf), ntohs(in6->sin6_port));
    }
    if (sa->sa_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path)) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        size_t max = len - offsetof(struct sockaddr_un, sun_path);
        return set_unix(a, un->sun_path, strnlen(un->sun_path, max));
    }
    return -EINVAL;
}

int pt_authority_format(const pt_authority *a, char *buf, size_t len)
{
    int n;
    switch (a->kind) {
    case PT_AUTHORITY_UNIX:
        n = snprintf(buf, len, "unix:%s", a->host);
        break;
    case PT_AUTHORITY_INET6:
        n = snprintf(buf, len, "[%s]:%u", a->host, (unsigned)a->port);
        break;
    default:
        n = snprintf(buf, len, "%s:%u", a->host, (unsigned)a->port);
        break;
    }
    return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

bool pt_authority_equal(const pt_authority *a, const pt_authority *b)
{
    return a->kind == b->kind && a->port == b->port && strcmp(a->host, b->host) == 0;
}
