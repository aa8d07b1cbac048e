/*
 * The embedding API's handlers (the public side is include/porter.h): embed.c implements what
 * porter.h promises on top of the request core (server/core/request.h): request accessors,
 * responses described by a pt_reply, and the routes of handlers registered by method and path.
 *
 * Each server has at most one pt_embed, made when the embedder first registers something and
 * freed with the server: its handler routes and the `listen` records it added (sites point at
 * them for the server's life). Routes are tried before the conf's locations: the server's
 * route asks pt_embed_route() first and falls back to pt_route() when no route claims the
 * request.
 *
 * Threading: the server's loop thread only. Errors: negative errno.
 */
#ifndef PORTER_SERVER_HANDLERS_EMBED_H
#define PORTER_SERVER_HANDLERS_EMBED_H

#include <stdbool.h>
#include <stddef.h>

#include "porter.h"
#include "server/core/conf.h"
#include "server/core/request.h"

typedef struct pt_embed pt_embed;

/* An empty set of routes, or NULL if out of memory. */
pt_embed *pt_embed_new(void);

/* Registers `cb` for `method` (NULL: every method) and `path` (`match`: exact or prefix), as
 * pt_server_handle() promises. Returns 0, -EINVAL or -ENOMEM. */
int pt_embed_add_route(pt_embed *e, const char *method, const char *path, pt_path_match match,
                       pt_handler_cb cb, void *data);

/* Keeps the listen record `ls` (taken) for the server's life. Returns 0 or -ENOMEM (`ls` is
 * then still the caller's). */
int pt_embed_keep_listen(pt_embed *e, pt_conf_listen *ls);

/* Frees the listen record kept last (its address could not be opened after all). */
void pt_embed_drop_listen(pt_embed *e);

/* Runs the handler registered in `e` (NULL: none) for `req` (method and normalised path), or
 * answers 405 when routes match the path but none the method. Returns false if no route
 * matches the path: the conf's locations answer. */
bool pt_embed_route(const pt_embed *e, pt_request *req);

/* Frees the routes and listen records. NULL: no-op. Call it after the sites are gone. */
void pt_embed_free(pt_embed *e);

#endif
