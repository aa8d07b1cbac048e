/*
 * The HTTP/1 protocol (http1/conn.c): llhttp glue between a connection and the request core,
 * and the head writer (http1/head.c) it shares its per-connection state with.
 */
#ifndef PORTER_SERVER_HTTP1_CONN_H
#define PORTER_SERVER_HTTP1_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "connmgr/conn.h"
#include "server/core/request.h"

typedef struct pt_http1_conn pt_http1_conn;

/* The connection protocol the connection managers run. */
extern const pt_conn_proto pt_http1_proto;

/* Gives a freshly admitted connection its HTTP state (in the connection's custodian): its
 * requests reach the site through `ops` with `site`; `tls` says the connection is encrypted. */
void pt_http1_conn_attach(pt_conn *c, const pt_site_ops *ops, void *site, bool tls);

/* Bytes pt_http1_conn_attach takes from the connection's custodian. */
size_t pt_http1_conn_size(void);

/* For head.c: the state of a request's connection, and the decisions around its response. */
pt_http1_conn *pt_http1_conn_of(const pt_request *req);
pt_conn *pt_http1_conn_conn(pt_http1_conn *hc);
bool pt_http1_conn_should_close(pt_http1_conn *hc);
void pt_http1_conn_responded(pt_http1_conn *hc, bool close);
/* The response about to be queued goes at the request's limit_rate: the connection holds it
 * to that rate, and the next request waits until it is out (the rate is the request's). */
void pt_http1_conn_rate(pt_http1_conn *hc);
void pt_http1_conn_stream_started(pt_http1_conn *hc, bool close, bool chunked, int64_t length,
                                  int status);
/* Carries on with the connection after a handler answered from outside the dispatcher. */
void pt_http1_conn_kick(pt_http1_conn *hc);

/* Writes the head of `r` (and its body, unless it streams) to the request's connection
 * (head.c): the protocol's respond. */
int pt_http1_respond(pt_request *req, const pt_response *r);

#endif
