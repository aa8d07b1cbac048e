/*
 * if's conditions (docs/rewrite.md): nginx's `$var`, `=` and `!=`, `~` `~*` `!~` `!~*`, and the
 * tests of a file `-f` `-d` `-e` `-x` (and `!-f` ...), told for one request.
 *
 * The texts are expanded through the one expander (vars.h) into the request's arena. A file is
 * tested with stat(2), following links, as nginx's open_file_cache does: a path that cannot be
 * reached (missing, not a directory, too long) is no file; any other failure is logged and no
 * file either.
 *
 * Threading: the request's loop.
 */
#ifndef PORTER_SERVER_CORE_COND_H
#define PORTER_SERVER_CORE_COND_H

#include "server/core/conf.h"
#include "server/core/request.h"

/* 1 when `c` holds for `req`, 0 when it does not, -1 when it cannot be told (a regex at its
 * match limit, logged; a map's regex at its limit on the way; the arena full): the caller
 * answers 500. A regex that matches leaves its groups as the request's captures ($1, $name),
 * as nginx's. */
int pt_cond_eval(pt_request *req, const pt_conf_cond *c);

#endif
