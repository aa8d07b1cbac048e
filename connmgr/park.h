/*
 * The parking lot: idle keep-alive connections in compact form. Internal to connmgr/.
 *
 * A connection idle for a moment (and holding nothing but itself) is parked: its socket, peer
 * address, request count and keep-alive deadline move into a small record, its socket into a
 * second epoll set watched by one libev watcher, and the connection itself (custodian, watchers,
 * timer, protocol state) is released. When the client sends again the connection is made anew
 * around the same socket; when the deadline passes the socket is closed. Under load nothing
 * stays idle long enough to be parked, so the request path never pays for it.
 *
 * Ownership: the lot owns the parked sockets and records; its manager's custodian releases it.
 * Threading: the manager's loop only.
 */
#ifndef PORTER_CONNMGR_PARK_H
#define PORTER_CONNMGR_PARK_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "connmgr/conn.h"

typedef struct pt_parking pt_parking;

/* Called for a parked connection whose client sent something (or closed): make a connection
 * for `fd` again. */
typedef void (*pt_unpark_cb)(int fd, const struct sockaddr *peer, socklen_t peerlen,
                             unsigned requests, void *data);
/* Called when a parked socket was closed (deadline, eviction, shutdown). */
typedef void (*pt_parked_closed_cb)(const struct sockaddr *peer, void *data);

int pt_parking_new(pt_parking **out, struct ev_loop *loop, pt_unpark_cb unpark,
                   pt_parked_closed_cb closed, void *data);

/* Takes `c`'s socket into the lot with its keep-alive deadline `deadline` (ev_now clock;
 * infinite: none). On success the caller releases `c` without closing the socket. Returns
 * false if it could not (the connection stays as it is). */
bool pt_parking_park(pt_parking *p, pt_conn *c, double deadline);

/* Closes the socket parked longest. Returns false if none is parked. */
bool pt_parking_evict_oldest(pt_parking *p);

/* Closes every parked socket. */
void pt_parking_close_all(pt_parking *p);

size_t pt_parking_count(const pt_parking *p);

/* Closes everything and frees the lot. NULL: no-op. */
void pt_parking_free(pt_parking *p);

#endif
