/*
 * The byte relay of an upgraded connection (a 101 Switching Protocols: WebSocket and the like).
 *
 * Once an upstream has answered 101, the client connection leaves HTTP (pt_request_upgrade)
 * and bytes go both ways between it and the upstream's transport, as they come, until both
 * directions have ended: each end's half-close is passed on to the other (tcp-abandon-port),
 * and the client connection closes when both have. Back-pressure both ways: more than 64 KiB
 * queued towards the upstream pauses reading the client (resumed below 16 KiB); more than
 * 64 KiB queued towards the client pauses reading the upstream (resumed once the client has
 * taken it all). `idle` seconds without an event on either side close the connection; an error
 * on either side closes it at once.
 *
 * Ownership: the tunnel's state lives in the request's custodian, which goes with the client
 * connection after the upgrade; the tunnel takes the upstream's transport and closes it when the
 * connection goes. Threading: the loop's thread only.
 */
#ifndef PORTER_SERVER_HANDLERS_TUNNEL_H
#define PORTER_SERVER_HANDLERS_TUNNEL_H

#include <stddef.h>

#include "connmgr/buffer.h"
#include "connmgr/connector.h"
#include "server/core/request.h"

/* Answers `req` with `head` (`len` bytes: the 101 response head exactly as it must go out,
 * copied) and relays bytes between its connection and *o from then on. The caller has stopped
 * watching *o. `queued` holds what is still to be written to the upstream: the tunnel takes it
 * (`queued` is left empty). `early` (`early_len` bytes, copied) is what the upstream sent after
 * its head: it goes to the client first. `idle` bounds the quiet on both sides, in seconds.
 *
 * Returns 0: the tunnel holds the transport (*o is NULL; it may be closed already, if the
 * client went away meanwhile) and `req` must not be used again. Or the negative errno of
 * pt_request_upgrade(): -EINVAL, -EBUSY or -ENOTSUP leave everything as it was (the caller
 * answers the request); another error means the client connection was killed, its custodian
 * released (with it, what the caller registered there). */
int pt_tunnel_start(pt_request *req, const void *head, size_t len, pt_outbound **o, pt_outq *queued,
                    const char *early, size_t early_len, double idle);

#endif
