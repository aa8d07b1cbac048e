/*
 * Directory listings (`autoindex on;`) for the static handler, in nginx's two formats.
 *
 * Threading: the loop's thread; the listing is queued before the call returns.
 */
#ifndef PORTER_SERVER_HANDLERS_AUTOINDEX_H
#define PORTER_SERVER_HANDLERS_AUTOINDEX_H

#include <stddef.h>

#include "server/core/request.h"

/* Answers `req` with a listing of the directory open as `dirfd` (taken: closed here), whose
 * request path is `path` (`len` bytes, ending in '/'): HTML or JSON as the location's
 * autoindex_format says. Entries whose names start with '.' are left out, directories come
 * first, then names in byte order. */
void pt_autoindex_respond(pt_request *req, int dirfd, const char *path, size_t len);

#endif
