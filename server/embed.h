/*
 * The embedding API's seam with the rest of server/ (the public side is include/porter.h).
 *
 * embed.c implements what porter.h promises on top of the internal request (server/core/request.h):
 * request accessors, responses described by a pt_reply, handlers registered by method and path
 * (pt_server_handle), listening addresses added after creation (pt_server_listen), and servers
 * made from options instead of a conf file.
 *
 * Each server has at most one pt_embed, made on demand and freed with the server: its handler
 * routes and the `listen` records it added (sites point at them for the server's life).
 * Routes are tried before the conf's locations: the dispatcher asks pt_embed_route() first and
 * falls back to pt_route() when no route claims the request.
 *
 * Threading: the server's loop thread only. Errors: negative errno.
 */
#ifndef PORTER_SERVER_EMBED_H
#define PORTER_SERVER_EMBED_H

#include <stdbool.h>
#include <stddef.h>

#include "porter.h"
#include "server/config.h"
#include "server/core/request.h"

typedef struct pt_embed pt_embed;

/* ---- in server.c ---- */

/* The server's embedding state (NULL until embed.c makes it); embed.c owns what it points to. */
pt_embed **pt_server_embed(pt_server *s);

/* Adds the listening address `ls` (borrowed; it must outlive the server) served by the server's
 * first virtual host: opens its sockets and its connection manager, and starts accepting if the
 * server is started. Returns 0 or a negative errno with a message in `err`. */
int pt_server_add_listen(pt_server *s, const pt_conf_listen *ls, char *err, size_t errlen);

/* ---- in embed.c ---- */

/* Builds the configuration of a server made from options (o->conf_path NULL): one server block
 * with o's root, logs, certificates and limits, and no listening address. Returns 0 or a
 * negative errno with a message in `err`. */
int pt_embed_conf(pt_conf **out, const pt_server_options *o, char *err, size_t errlen);

/* Runs the handler registered for `req` (method and normalised path), or answers 405 when
 * routes match the path but none the method. Returns false if no route matches the path: the
 * conf's locations answer. */
bool pt_embed_route(pt_request *req);

/* Frees the routes and listen records. NULL: no-op. Call it after the sites are gone. */
void pt_embed_free(pt_embed *e);

#endif
