/*
 * Between a connection and its manager: not part of any public API.
 */
#ifndef PORTER_CONNMGR_CONN_PRIVATE_H
#define PORTER_CONNMGR_CONN_PRIVATE_H

#include "connmgr/connmgr.h"

/* Makes a connection for `fd` under the manager's custodian `parent` (conn.c). Returns NULL and
 * closes fd on failure. */
pt_conn *pt_conn__open(pt_connmgr *m, pt_custodian *parent, struct ev_loop *loop, int fd, int wfd,
                       const struct sockaddr *peer, socklen_t peerlen);

/* Reads what the socket has and hands it to the protocol, as on a readiness event (conn.c). */
void pt_conn__readable(pt_conn *c);

/* Manager bookkeeping called by the connection (connmgr.c). */
void pt_connmgr__state_changed(pt_connmgr *m, pt_conn *c, pt_conn_state from);
void pt_connmgr__released(pt_connmgr *m, pt_conn *c);
const pt_conn_proto *pt_connmgr__proto(const pt_connmgr *m);
pt_connmgr_stats *pt_connmgr__stats(pt_connmgr *m);
size_t pt_connmgr__proto_size(const pt_connmgr *m);
int pt_connmgr__wrap_transport(pt_connmgr *m, pt_transport *t);
void *pt_connmgr__proto_data(const pt_connmgr *m);

#endif
