/*
 * What the dispatcher and handlers know of the server: virtual hosts and the listening groups
 * that pick among them. Internal to server/.
 *
 * A pt_site is one listening address (possibly several sockets, one per address family) with
 * its connection manager and the virtual hosts that listen there; its first `default_server`
 * (else its first vhost) answers requests whose Host matches no server_name, and its limits
 * govern the connection until the request head names a vhost. Owned by the pt_server.
 */
#ifndef PORTER_SERVER_SITE_H
#define PORTER_SERVER_SITE_H

#include <ev.h>

#include "connmgr/connmgr.h"
#include "listener/listener.h"
#include "server/config.h"
#include "server/filecache.h"
#include "server/http.h"
#include "server/log.h"
#include "server/mime.h"

typedef struct pt_server pt_server;

struct pt_vhost {
    const pt_conf_server *conf;
    int root_fd; /* the document root, O_PATH|O_DIRECTORY */
    pt_limits limits;
    pt_log *access_log; /* NULL: off */
    pt_log *error_log;  /* NULL: the process's error log */
    pt_log_level error_level;
    const pt_mime *mime;
    pt_mime *own_mime;   /* when the server block has its own types or default_type */
    pt_filecache *cache; /* the server's, shared by its vhosts */
    /* The location blocks, exact ones first, then prefixes longest first; the last is the
     * server's own (server/location.h). */
    pt_location *locations;
    size_t nlocations, nexact;
};

typedef struct pt_site {
    pt_server *server;
    struct ev_loop *loop;
    pt_vhost **vhosts;
    size_t nvhosts;
    pt_vhost *default_vhost;
    const pt_conf_listen *listen; /* the directive that made this site */
    bool has_explicit_default;
    pt_listener **listeners; /* one per worker slot (SO_REUSEPORT), or one */
    size_t nlisteners;
    pt_connmgr *mgr;
} pt_site;

/* Picks the virtual host for `host` (a Host header value, port allowed) on `site`. */
const pt_vhost *pt_site_select(const pt_site *site, pt_str host);

/* The HTTP protocol the connection managers run (dispatch.c). */
extern const pt_conn_proto pt_http_proto;

/* Handlers (static.c, status.c). */
void pt_static_handle(pt_request *req);
void pt_status_handle(pt_request *req);

/* The shared stats board of the request's server, with the worker slots and this worker's. */
struct pt_stats_board *pt_server_stats_board(pt_server *s, int *nslots, int *slot);

#endif
