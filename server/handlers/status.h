/*
 * The status page (`location /porter-status { status; }`): the server's connection and request
 * counters per worker and in total, as JSON or HTML (status.c says which when).
 *
 * Threading: the loop's thread.
 */
#ifndef PORTER_SERVER_HANDLERS_STATUS_H
#define PORTER_SERVER_HANDLERS_STATUS_H

#include "server/core/request.h"

/* Answers `req` (GET or HEAD; else 405) with the status page of its virtual host's server. */
void pt_status_handle(pt_request *req);

#endif
