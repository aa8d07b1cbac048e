/*
 * The PROXY protocol's header (HAProxy's proxy-protocol.txt, versions 1 and 2): what a proxy or
 * load balancer in front of a server sends first on each connection it opens, to say which
 * client the connection is for.
 *
 *   v1, a text line of at most 107 bytes:  "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
 *                                           "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"
 *                                           "PROXY UNKNOWN ...\r\n"
 *   v2, binary: the 12-byte signature "\r\n\r\n\0\r\nQUIT\n", version and command (LOCAL or
 *   PROXY), address family and transport, a 16-bit length, then the addresses and TLVs.
 *
 * The parser is a pure function over bytes (no I/O, no allocation), so the reader can hand it
 * whatever has arrived and ask again with more, and so it can be fuzzed. It reads the header
 * only: the bytes after it are the connection's own (a TLS handshake, an HTTP request) and its
 * caller must leave them unread.
 *
 * What it takes: v1 TCP4 and TCP6 lines whose addresses are literals of their family and whose
 * ports are 0..65535, separated by single spaces, ended by CRLF; v1 UNKNOWN (the rest of the
 * line ignored, as the specification says); v2 LOCAL (the addresses ignored); v2 PROXY over
 * AF_INET and AF_INET6 streams with their TLVs, which are checked to tile the rest of the
 * header and otherwise skipped; v2 PROXY with AF_UNSPEC, AF_UNIX or a datagram transport,
 * which carries no address a TCP server can use. A v2 header longer than PT_PROXY_HEADER_MAX
 * bytes is refused, as is anything else.
 *
 * Threading: none (no state).
 */
#ifndef PORTER_CONNMGR_PROXY_PROTOCOL_H
#define PORTER_CONNMGR_PROXY_PROTOCOL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* The longest v1 header, CRLF included (the specification's bound). */
#define PT_PROXY_V1_MAX 107
/* The longest header taken (a v2 header's 16 bytes and its length): nginx's bound. */
#define PT_PROXY_HEADER_MAX 4096

/* An IPv4 or IPv6 address with its port. */
typedef union pt_sockaddr_ip {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} pt_sockaddr_ip;

/* What a header said. */
typedef struct pt_proxy_header {
    int version; /* 1 or 2 */
    /* No client address: v1 UNKNOWN, v2 LOCAL, or v2 PROXY without an IP stream's addresses.
     * The connection keeps its own address. */
    bool local;
    pt_sockaddr_ip src, dst; /* unless local: the client's address and the one it reached */
    socklen_t srclen, dstlen;
    const char *why; /* a refused header: why, in a few words (a static string) */
} pt_proxy_header;

/* Reads a PROXY protocol header from the `len` bytes at `buf`. Returns the header's length
 * (bytes to consume, more than 0) with `out` filled; 0 when the bytes are a prefix of a header
 * that may still be valid (read more and ask again with all of them; never once `len` reaches
 * PT_PROXY_HEADER_MAX); or -EBADMSG when they cannot begin a valid header (out->why says why). */
int pt_proxy_header_parse(const void *buf, size_t len, pt_proxy_header *out);

#endif
