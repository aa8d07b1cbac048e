/*
 * Static files: the handler of static locations.
 *
 * Ownership and threading as for handlers: the loop's thread; everything a response needs is
 * queued before the call returns.
 */
#ifndef PORTER_SERVER_HANDLERS_STATIC_H
#define PORTER_SERVER_HANDLERS_STATIC_H

#include <stddef.h>

#include "server/core/request.h"

/* Answers `req` from the files of its location: the file its path names (conditional and
 * range requests, precompressed siblings, the open-file cache), an index file, a listing, a
 * redirect to the directory's slash, or an error page. */
void pt_static_handle(pt_request *req);

#endif
