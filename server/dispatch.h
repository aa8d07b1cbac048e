/*
 * The HTTP dispatcher's interface to the rest of server/ (see dispatch.c).
 */
#ifndef PORTER_SERVER_DISPATCH_H
#define PORTER_SERVER_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "connmgr/conn.h"
#include "server/http.h"

typedef struct pt_site pt_site;

/* Gives a freshly admitted connection its HTTP state (in the connection's custodian). */
void pt_http_conn_attach(pt_conn *c, pt_site *site);

/* Bytes pt_http_conn_attach takes from the connection's custodian. */
size_t pt_http_conn_size(void);

/* For response.c: the connection of a request, and the decisions around its response. */
pt_conn *pt_http_conn_conn(pt_http_conn *hc);
pt_site *pt_http_conn_site(pt_http_conn *hc);
bool pt_http_conn_should_close(pt_http_conn *hc);
void pt_http_conn_responded(pt_http_conn *hc, bool close);
void pt_http_conn_stream_started(pt_http_conn *hc, bool close, bool chunked, int64_t length,
                                 int status);
/* Carries on with the connection after a handler answered from outside the dispatcher. */
void pt_http_conn_kick(pt_http_conn *hc);

#endif
