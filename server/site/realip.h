/*
 * The client's real address (nginx's realip module; docs/access.md): when the peer of a
 * request's connection is one the conf trusts (set_real_ip_from), the address it names in a
 * header (real_ip_header: X-Real-IP, X-Forwarded-For, another) or in the connection's PROXY
 * protocol header becomes the request's client address, req->peer: what $remote_addr, the
 * access log, allow/deny, the limits' keys and the proxy's X-Forwarded-For see. The peer's own
 * address stays in req->conn_peer ($realip_remote_addr).
 *
 * As nginx does, it runs twice with the settings of two levels and changes a request at most
 * once: before the request is routed, with its server's settings (nginx's post-read phase:
 * `return`, error pages and an embedder's handlers see the address), then as the guard's first
 * check with the settings of the location that answers (its preaccess phase), for a request
 * the first left alone. The trust is always checked against the connection's own peer.
 *
 * X-Forwarded-For is read from its right: the last address is taken; with real_ip_recursive
 * on, while the address taken is trusted too, the one before it (across the header's lines,
 * the last line first). An entry that is not an address ("unknown", a name) stops the walk
 * with the last address taken. An address may carry a port (192.0.2.1:8080, [2001:db8::1]:8080).
 *
 * Memory: the address found is copied into the request's arena. Threading: the loop's thread.
 */
#ifndef PORTER_SERVER_SITE_REALIP_H
#define PORTER_SERVER_SITE_REALIP_H

#include "server/core/conf.h"
#include "server/core/request.h"
#include "server/site/guard.h"

/* Applies the settings `ri` (set_real_ip_from non-empty) to `req`, unless realip has set its
 * address already. Returns PT_GUARD_PASS (0), or 500 when the arena has no room for the
 * address. */
int pt_realip_apply(pt_request *req, const pt_conf_realip *ri);

/* The guard's check (site/guard.h): the settings of req->location. */
int pt_realip_check(pt_request *req);

#endif
