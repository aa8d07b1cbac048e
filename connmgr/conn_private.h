/*
 * Between a connection and its manager: not part of any public API.
 *
 * The manager makes connections (pt_conn__open) and drives their reads; a connection tells its
 * manager about itself only through the pt_conn_owner it was made with. So the calls run one
 * way: connmgr.c uses conn.c, never the reverse.
 */
#ifndef PORTER_CONNMGR_CONN_PRIVATE_H
#define PORTER_CONNMGR_CONN_PRIVATE_H

#include "connmgr/connmgr.h"

/* What a connection reports to whoever made it. */
struct pt_conn_owner {
    /* Its state changed from `from` to c->state (pt_conn_set_state). */
    void (*state_changed)(pt_connmgr *m, pt_conn *c, pt_conn_state from);
    /* It is being released (killed, closed, or parked). */
    void (*released)(pt_connmgr *m, pt_conn *c);
};

/* What a new connection is made with (all borrowed: they outlive it). */
typedef struct pt_conn_setup {
    const struct pt_conn_owner *owner;
    const pt_limits *limits;
    pt_connmgr_stats *stats;
    const pt_conn_proto *proto;
    void *proto_data;
    size_t proto_size; /* bytes its protocol takes from its custodian at once */
    /* Layers a transport (TLS) over each accepted socket; NULL: plain TCP. */
    int (*wrap_transport)(pt_transport *t, void *data);
    void *wrap_data;
} pt_conn_setup;

/* Makes a connection of manager `m` for `fd` under the custodian `parent` (conn.c). Returns NULL
 * and closes fd on failure. */
pt_conn *pt_conn__open(pt_connmgr *m, const pt_conn_setup *s, pt_custodian *parent,
                       struct ev_loop *loop, int fd, int wfd, const struct sockaddr *peer,
                       socklen_t peerlen);

/* Reads what the socket has and hands it to the protocol, as on a readiness event (conn.c). */
void pt_conn__readable(pt_conn *c);

#endif
