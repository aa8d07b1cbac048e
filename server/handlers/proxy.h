/*
 * The reverse proxy: the `proxy_pass` location handler.
 *
 * A request to a proxy location goes to a server of its upstream (handlers/upstream.h): over an
 * idle pooled transport, or a fresh one for requests that are not idempotent or carry a body
 * (so no request of that kind ever meets a transport the server is closing). The request
 * head is rewritten (hop-by-hop headers removed, X-Forwarded-For/-Proto/-Host and Forwarded
 * added, proxy_set_header applied, Host set to the upstream's name) and the bodies stream in
 * both directions, sized or chunked, through bounded buffers: a client that reads slowly
 * pauses reading from the upstream, an upstream that reads slowly pauses reading from the
 * client. The upstream's answer is read by the HTTP/1 client (server/http1/client.h), strictly.
 *
 * Retries: an attempt that fails before any byte of the response went to the client is
 * retried on another server when the request is idempotent and none of its body has been
 * read yet, or when no byte of it went upstream at all; a pooled transport the server had
 * closed meanwhile is retried on a fresh transport to the same server (not counted as a
 * failure). When every server failed the client gets 502, or 504 when the last failure was a
 * timeout. A failure after the response started closes the client connection (its framing
 * cannot be finished).
 *
 * Timeouts: proxy_connect_timeout per server tried, proxy_send_timeout between two writes
 * to the upstream, proxy_read_timeout between two reads from it (also the idle bound of an
 * upgraded connection). While the proxy waits on the upstream, the client connection's own
 * deadline is lifted; while it waits on the client, the client's deadlines apply.
 *
 * Upgrade: a request with `Connection: upgrade` (WebSocket) is passed with its Upgrade header
 * over a fresh transport; a 101 answer hands the client connection and the upstream's transport
 * to the tunnel (server/handlers/tunnel.h), which relays bytes both ways.
 *
 * Ownership: everything a proxied request holds (watchers, timer, buffers, a transport while
 * it is used) is registered with the request's custodian, so a client that goes away releases
 * it; transports belong to the upstream's connector and go back to its pool. Per-location
 * state lives with the vhost (pt_proxy_vhost_setup / pt_proxy_vhost_dispose). Threading: the
 * loop's thread only.
 */
#ifndef PORTER_SERVER_HANDLERS_PROXY_H
#define PORTER_SERVER_HANDLERS_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "server/core/request.h"
#include "server/handlers/upstream.h"

/* The location handler of `proxy_pass`. */
void pt_proxy_handle(pt_request *req);

/* Prepares the proxy locations of `vh` (their upstreams come from `u`). On error writes
 * "file:line:col: reason" into `err` and returns a negative errno; pt_proxy_vhost_dispose()
 * then releases what was made. */
int pt_proxy_vhost_setup(pt_vhost *vh, pt_upstreams *u, char *err, size_t errlen);

/* Releases what pt_proxy_vhost_setup() made. Twice is a no-op. */
void pt_proxy_vhost_dispose(pt_vhost *vh);

/* Checks what only start-up would find (proxy_ssl_trusted_certificate files), for
 * `porter -t`. */
int pt_proxy_check(const pt_conf *conf, char *err, size_t errlen);

#endif
