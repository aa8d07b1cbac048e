/**
 * @file
 * Authority: where an outbound connection goes (net2's authority): a host and a port, where the
 * host is an IPv4 literal, an IPv6 literal or a DNS name, or else a unix socket path.
 *
 * A plain value type: no heap memory, copy it freely. Literal addresses are parsed once, when
 * the authority is made, so connecting to one never touches a resolver; a DNS name is resolved
 * by the connector (connmgr/connector.h) each time it is needed.
 *
 * Text forms (pt_authority_parse): "127.0.0.1:8080", "[::1]:8080", "::1" (a bare IPv6 literal
 * takes the default port), "localhost:3000", "example.com" (default port), "unix:/run/app.sock".
 * Names are kept in lower case. Errors: -EINVAL for a malformed text, -ENAMETOOLONG for a name
 * or path that does not fit. Threading: none (pure functions).
 */
#ifndef PORTER_CONNMGR_AUTHORITY_H
#define PORTER_CONNMGR_AUTHORITY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "porter/export.h"

/** The longest DNS name (RFC 1035) or unix socket path, NUL excluded. */
#define PT_AUTHORITY_HOST_MAX 253
/** Longest text pt_authority_format() writes, NUL included ("unix:" + path, or "[v6]:port"). */
#define PT_AUTHORITY_STRLEN (PT_AUTHORITY_HOST_MAX + 16)

/** What the host of an authority is. */
typedef enum pt_authority_kind {
    PT_AUTHORITY_INET4, /**< an IPv4 literal */
    PT_AUTHORITY_INET6, /**< an IPv6 literal */
    PT_AUTHORITY_NAME,  /**< a DNS name, resolved when connecting */
    PT_AUTHORITY_UNIX,  /**< a unix socket path */
} pt_authority_kind;

/** Where an outbound connection goes: a plain value, copied freely. */
typedef struct pt_authority {
    pt_authority_kind kind;               /**< what `host` holds */
    uint16_t port;                        /**< 0 for a unix socket */
    char host[PT_AUTHORITY_HOST_MAX + 1]; /**< the literal, the name, or the path */
    union {                               /**< literals and paths: the address to connect to */
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
    } addr;
    socklen_t addrlen; /**< 0 for a name */
} pt_authority;

/** Parses `len` bytes of `s` (see the text forms above) into `a`; a text without a port takes
 * `default_port`. Returns 0 or -EINVAL / -ENAMETOOLONG. */
PT_API int pt_authority_parse(pt_authority *a, const char *s, size_t len, uint16_t default_port);

/** Makes `a` from a host (literal, name, or a path starting with '/') and a port (ignored for a
 * path). Returns 0 or -EINVAL / -ENAMETOOLONG. */
PT_API int pt_authority_set(pt_authority *a, const char *host, uint16_t port);

/** Makes `a` from a socket address (AF_INET, AF_INET6 or AF_UNIX). Returns 0 or -EINVAL. */
PT_API int pt_authority_from_sockaddr(pt_authority *a, const struct sockaddr *sa, socklen_t len);

/** Writes the text form ("127.0.0.1:80", "[::1]:80", "name:80", "unix:/path") into `buf`.
 * Returns its length, or -ENOSPC if `len` is too small (PT_AUTHORITY_STRLEN always fits). */
PT_API int pt_authority_format(const pt_authority *a, char *buf, size_t len);

/** Returns true if `a` and `b` name the same place (same kind, host and port). */
PT_API bool pt_authority_equal(const pt_authority *a, const pt_authority *b);

/** Returns true if connecting to `a` needs a resolver (it is a DNS name). */
static inline bool pt_authority_needs_resolver(const pt_authority *a)
{
    return a->kind == PT_AUTHORITY_NAME;
}

#endif
