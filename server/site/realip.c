/*
 * The client's real address (realip.h): nginx's ngx_http_realip_module and its reading of
 * X-Forwarded-For (ngx_http_get_forwarded_addr), written for porter's request.
 */
#include "server/site/realip.h"

#include <arpa/inet.h>
#include <string.h>

#include "connmgr/proxy_protocol.h"
#include "server/site/guard.h"
#include "server/site/location.h"

/* What a walk over a header's value did (nginx's NGX_DECLINED, NGX_DONE, NGX_OK). */
enum { DECLINED, DONE, TAKEN };

/* The address the walk has reached. */
typedef struct hop {
    pt_sockaddr_ip a;
    socklen_t len;
} hop;

/* An address literal in [p, p + n) into `h`, port 0. */
static bool literal(const char *p, size_t n, hop *h)
{
    char text[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof text)
        return false;
    memcpy(text, p, n);
    text[n] = '\0';
    memset(&h->a, 0, sizeof h->a);
    if (inet_pton(AF_INET, text, &h->a.in.sin_addr) == 1) {
        h->a.in.sin_family = AF_INET;
        h->len = sizeof h->a.in;
        return true;
    }
    if (inet_pton(AF_INET6, text, &h->a.in6.sin6_addr) == 1) {
        h->a.in6.sin6_family = AF_INET6;
        h->len = sizeof h->a.in6;
        return true;
    }
    return false;
}

/* "ADDRESS", "IPV4:PORT" or "[IPV6]:PORT" (PORT 1..65535), as nginx's ngx_parse_addr_port. */
static bool address(const char *p, size_t n, hop *h)
{
    if (literal(p, n, h))
        return true;
    const char *colon;
    if (n && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close || close + 1 == p + n || close[1] != ':')
            return false;
        colon = close + 1;
        if (!literal(p + 1, (size_t)(close - p - 1), h))
            return false;
    } else {
        colon = memchr(p, ':', n);
        if (!colon || !literal(p, (size_t)(colon - p), h))
            return false;
    }
    const char *d = colon + 1, *e = p + n;
    unsigned port = 0;
    if (d == e || e - d > 5)
        return false;
    for (; d < e; d++) {
        if (*d < '0' || *d > '9')
            return false;
        port = port * 10 + (unsigned)(*d - '0');
    }
    if (port < 1 || port > 65535)
        return false;
    if (h->a.sa.sa_family == AF_INET)
        h->a.in.sin_port = htons((in_port_t)port);
    else
        h->a.in6.sin6_port = htons((in_port_t)port);
    return true;
}

/* Whether the address `sa` is among the trusted `from` ranges (a mapped IPv6 address counts as
 * its IPv4 one). */
static bool trusted(const pt_conf_realip *ri, const struct sockaddr *sa)
{
    pt_cidr_client a;
    pt_cidr_client_of(
        sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
        &a);
    for (size_t i = 0; i < ri->nfrom; i++)
        if (pt_cidr_match(&ri->from[i], &a, true))
            return true;
    return false;
}

/* One header value walked from its right while the address reached is trusted: `cur` becomes
 * the last entry, and with `recursive` the one before it, and so on. */
static int walk(const pt_conf_realip *ri, hop *cur, const char *v, size_t len)
{
    bool found = false;
    do {
        if (!trusted(ri, &cur->a.sa))
            return found ? DONE : DECLINED;
        size_t end = len;
        while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == ','))
            end--;
        size_t start = end;
        while (start > 0 && v[start - 1] != ' ' && v[start - 1] != ',')
            start--;
        hop next;
        if (start == end || !address(v + start, end - start, &next))
            return found ? DONE : DECLINED;
        *cur = next;
        found = true;
        len = start;
    } while (ri->recursive && len > 0);
    return TAKEN;
}

/* X-Forwarded-For: its lines walked as one list, the last line first. */
static int walk_forwarded(const pt_request *req, const pt_conf_realip *ri, hop *cur)
{
    int rc = DECLINED;
    bool found = false;
    for (size_t i = req->nheaders; i-- > 0;) {
        const pt_header *h = &req->headers[i];
        if (!pt_str_ieq(h->name, "x-forwarded-for"))
            continue;
        rc = walk(ri, cur, h->value.p, h->value.len);
        if (!ri->recursive)
            break;
        if (rc == DECLINED && found)
            return DONE;
        if (rc != TAKEN)
            break;
        found = true;
    }
    return rc;
}

int pt_realip_apply(pt_request *req, const pt_conf_realip *ri)
{
    if (req->real_ip)
        return PT_GUARD_PASS;
    /* The walk starts from the connection's own peer (AF_UNSPEC when it is not IP). */
    hop cur = {.len = 0};
    socklen_t own_len;
    const struct sockaddr *own = pt_request_conn_peer(req, &own_len);
    if (own && own_len <= sizeof cur.a) {
        memcpy(&cur.a, own, own_len);
        cur.len = own_len;
    }
    int rc = DECLINED;
    const pt_header *h;
    switch (ri->source) {
    case PT_REALIP_X_FORWARDED_FOR:
        rc = walk_forwarded(req, ri, &cur);
        break;
    case PT_REALIP_PROXY_PROTOCOL:
        if (req->proxied && trusted(ri, &cur.a.sa)) {
            cur.a = req->proxied->src;
            cur.len = req->proxied->srclen;
            rc = TAKEN;
        }
        break;
    case PT_REALIP_X_REAL_IP:
    case PT_REALIP_HEADER:
        h = pt_request_header(req, ri->source == PT_REALIP_HEADER ? ri->header : "x-real-ip");
        if (h)
            rc = walk(ri, &cur, h->value.p, h->value.len);
        break;
    }
    if (rc == DECLINED)
        return PT_GUARD_PASS;
    pt_sockaddr_ip *copy = pt_request_alloc(req, sizeof *copy);
    if (!copy)
        return 500;
    *copy = cur.a;
    req->conn_peer = own;
    req->conn_peerlen = own_len;
    req->peer = &copy->sa;
    req->peerlen = cur.len;
    req->real_ip = true;
    return PT_GUARD_PASS;
}

int pt_realip_check(pt_request *req)
{
    const pt_conf_realip *ri = req->location->realip;
    return ri ? pt_realip_apply(req, ri) : PT_GUARD_PASS;
}
