/*
 * Address ranges as the conf writes them (nginx's set_real_ip_from, allow and deny): an IPv4 or
 * IPv6 address alone, an address with a prefix length ("192.0.2.0/24", "2001:db8::/32"), or
 * "unix:" for the connections that do not come over IP; and whether a client's address falls
 * in one.
 *
 * An IPv4-mapped IPv6 address (::ffff:192.0.2.1, a client of an IPv6 socket that accepts IPv4)
 * is the IPv4 address it carries: it matches IPv4 ranges, not IPv6 ones, as in nginx.
 *
 * Plain values, no allocation. Threading: none.
 */
#ifndef PORTER_SERVER_CORE_CIDR_H
#define PORTER_SERVER_CORE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct pt_cidr {
    int family;             /* AF_INET, AF_INET6, or AF_UNIX for "unix:" (any peer not IP) */
    unsigned char addr[16]; /* network order, its bits beyond the prefix cleared (AF_INET: 4) */
    unsigned char mask[16];
} pt_cidr;

/* Parses `s`: "ADDRESS", "ADDRESS/LENGTH" (0..32 for IPv4, 0..128 for IPv6) or "unix:". The
 * address's bits beyond the prefix are cleared (nginx warns of them and clears them too).
 * Returns 0; 1 when bits beyond the prefix were set (the caller may warn); -EINVAL for anything
 * else (a name, brackets, a zone, a bad length). */
int pt_cidr_parse(const char *s, pt_cidr *out);

/* Whether the address `sa` is in `c` (its port ignored). An address of another family than
 * AF_INET and AF_INET6 (a unix socket's, or none: AF_UNSPEC) matches "unix:" only. */
bool pt_cidr_match(const pt_cidr *c, const struct sockaddr *sa);

/* Whether `sa` is in any of the `n` ranges of `list`. */
bool pt_cidr_match_any(const pt_cidr *list, size_t n, const struct sockaddr *sa);

#endif
