/*
 * Address ranges: "192.168.1.0/24", "2001:db8::/32", a single address, "unix:" or "all",
 * parsed once into a compact binary form and matched against a client's address with a few
 * integer comparisons (allow/deny; the same ranges serve anything that trusts clients by
 * address).
 *
 * A client's IPv4 address mapped into IPv6 (::ffff:a.b.c.d, from a dual-stack socket or a
 * header) can be matched as the IPv4 address it is: the caller says when (allow/deny do it
 * when their list holds IPv4 ranges, as nginx does).
 *
 * Threading: no state. Errors: negative errno.
 */
#ifndef PORTER_SERVER_CORE_CIDR_H
#define PORTER_SERVER_CORE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* What a range covers: IPv4 or IPv6 addresses, every Unix-domain client, or every client. */
typedef enum pt_cidr_kind {
    PT_CIDR_V4,
    PT_CIDR_V6,
    PT_CIDR_UNIX, /* "unix:": every client on a Unix-domain socket */
    PT_CIDR_ALL,  /* "all": every client of those three families */
} pt_cidr_kind;

/* One range: `addr` with the bits below its prefix cleared, and its mask. IPv4 ranges use the
 * first 4 bytes of each, in network order. */
typedef struct pt_cidr {
    uint8_t kind;   /* pt_cidr_kind */
    uint8_t prefix; /* its length in bits (V4, V6) */
    uint8_t addr[16], mask[16];
} pt_cidr;

/* Parses `s`: an IPv4 or IPv6 address with an optional "/PREFIX" (0..32, 0..128), "unix:" or
 * "all". Returns 0; -EINVAL, with the reason (a static string) in *why, for what is not an
 * address or a bad prefix length; -ERANGE for an address with bits set beyond its prefix
 * ("10.0.0.1/8"), with *masked (when not NULL) the range such a writer likely meant
 * ("10.0.0.0/8"). */
int pt_cidr_parse(const char *s, pt_cidr *out, const char **why, pt_cidr *masked);

/* Formats `c` as pt_cidr_parse() reads it ("10.0.0.0/8", "::1/128", "unix:", "all") into
 * `buf`; PT_CIDR_STRLEN bytes suffice. */
#define PT_CIDR_STRLEN 64
void pt_cidr_format(const pt_cidr *c, char *buf, size_t cap);

/* A client's address as ranges are matched against it, read from its sockaddr once. */
typedef struct pt_cidr_client {
    int family;  /* AF_INET, AF_INET6, AF_UNIX; 0: none of those (no range holds it) */
    bool mapped; /* AF_INET6 holding ::ffff:a.b.c.d: `v4` is a.b.c.d */
    uint32_t v4; /* network order */
    uint8_t v6[16];
} pt_cidr_client;

/* Reads `sa` (`len` bytes; NULL, short or of another family: family 0). */
void pt_cidr_client_of(const struct sockaddr *sa, socklen_t len, pt_cidr_client *out);

/* Whether range `c` holds client `a`. With `as_v4` a mapped IPv6 client is taken as its IPv4
 * address (IPv4 ranges and "all" may hold it, IPv6 ranges do not); without, as the IPv6
 * address it is. */
static inline bool pt_cidr_match(const pt_cidr *c, const pt_cidr_client *a, bool as_v4)
{
    switch ((pt_cidr_kind)c->kind) {
    case PT_CIDR_ALL:
        return a->family != 0;
    case PT_CIDR_UNIX:
        return a->family == AF_UNIX;
    case PT_CIDR_V4: {
        if (a->family != AF_INET && !(as_v4 && a->mapped))
            return false;
        uint32_t net, mask;
        memcpy(&net, c->addr, 4);
        memcpy(&mask, c->mask, 4);
        return (a->v4 & mask) == net;
    }
    case PT_CIDR_V6: {
        if (a->family != AF_INET6 || (as_v4 && a->mapped))
            return false;
        uint64_t x[2], net[2], mask[2];
        memcpy(x, a->v6, 16);
        memcpy(net, c->addr, 16);
        memcpy(mask, c->mask, 16);
        return (x[0] & mask[0]) == net[0] && (x[1] & mask[1]) == net[1];
    }
    }
    return false;
}

#endif
