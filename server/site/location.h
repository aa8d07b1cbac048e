/*
 * Locations and routing: which part of a virtual host answers a request, and with what.
 *
 * A virtual host holds its `location` blocks and one more location for itself (the server's
 * own settings), which answers what no block matches. Matching is nginx's
 * (ngx_http_core_find_location), level by level from the server's: an exact location
 * (`location = /p`) equal to the path wins; else the longest prefix location is remembered and
 * the locations nested in it are searched the same way; then, unless that prefix is `^~`, the
 * level's regexes in the order written (the first that matches wins, once the locations nested
 * in it are searched); else the deepest prefix remembered answers. The path compared is the
 * decoded, normalised one. A prefix location with `alias` matches only at a segment boundary
 * ("/img" matches "/img" and "/img/x", not "/imgx" or "/img../x"), so nginx's off-by-slash
 * traversal cannot happen.
 *
 * Routing (pt_route) normalises the path, finds the location and calls its handler from a
 * table indexed by pt_handler_kind. A handler answers, or asks for an internal redirect
 * (pt_route_redirect: try_files' last URI, error_page), which the router follows in a loop,
 * at most PT_ROUTE_MAX_REDIRECTS times. Nothing is allocated per request: the path is
 * normalised on the stack, the lookup scans runs of a table sorted at start-up, and the header
 * lines of add_header are built once.
 *
 * Before a location is chosen the server's script runs, and before its handler the location's
 * (rewrite, return, set, break and if in the order written, docs/rewrite.md); an `if` that
 * holds may change what answers (pt_overlay). A conf without set, map or if allocates nothing
 * for them.
 *
 * Ownership: a vhost owns its locations (pt_locations_setup / pt_locations_dispose); they
 * borrow strings from the pt_conf, which outlives them. A location's root fd is its own, or
 * the vhost's when the location has the server's root. Threading: the loop's thread only (the
 * Expires line is cached per location). Errors: negative errno, with a message for setup.
 */
#ifndef PORTER_SERVER_SITE_LOCATION_H
#define PORTER_SERVER_SITE_LOCATION_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "server/core/conf.h"
#include "server/core/request.h"

#define PT_ROUTE_MAX_REDIRECTS 10

/* What an `if` block of a location changes in the answer while its condition holds (its
 * add_header lines, its send rate, its upstream; docs/rewrite.md): the request's overlay from
 * the step that found the condition true until another location answers it. Each is the
 * location's where the block names none. */
typedef struct pt_overlay {
    const pt_conf_if *conf;
    struct pt_location *loc; /* whose block it is */
    char *lines_ok;          /* the block's add_header lines, as the location's; NULL: none */
    size_t lines_ok_len;
    char *lines_always;
    size_t lines_always_len;
    pt_response_filter filter; /* its lines, then the location's expires (with lines_ok) */
    void *proxy; /* with proxy_pass: its target (server/handlers/proxy.c); NULL: none */
} pt_overlay;

struct pt_location {
    const pt_vhost *vhost;
    const pt_conf_location *conf; /* NULL for the server's own */
    const char *path;             /* "" for the server's own: it matches everything */
    size_t path_len;
    pt_conf_match match;
    bool no_regex;             /* `^~` */
    const struct pt_regex *re; /* PT_MATCH_REGEX: the conf's compiled pattern */
    pt_handler_kind handler;
    const char *dir; /* where files come from: root or alias (for messages) */
    int dir_fd;      /* O_PATH | O_DIRECTORY */
    bool own_fd;
    bool alias;        /* files are dir + the path after root.alias */
    pt_file_root root; /* dir, and with alias the path it replaces ($document_root, ...) */
    /* The locations nested in it (the server's own: the server's), a run of the vhost's table:
     * exact ones, then prefixes longest first, then regexes in the order written. */
    struct pt_location *nested;
    size_t nested_exact, nested_prefix, nested_regex;
    char *const *index;
    size_t nindex;
    bool sendfile;
    const pt_conf_files *files;
    const pt_conf_compress *compress; /* NULL: no coding on */
    const pt_conf_access *access;     /* allow/deny, auth_basic; NULL: nothing to check */
    const pt_conf_realip *realip;     /* NULL: no set_real_ip_from (site/realip.h) */
    char *lines_ok; /* add_header lines for 2xx/3xx answers (`always` ones included) */
    size_t lines_ok_len;
    char *lines_always; /* the `always` ones, for every other status */
    size_t lines_always_len;
    time_t expires_second; /* when expires_lines was formatted (`expires TIME` only) */
    char expires_lines[128];
    size_t expires_len;
    /* Its add_header and expires lines as a response filter (pt_location_headers); a request
     * answered here has it as its chain. */
    pt_response_filter filter;
    struct pt_location_limits *limits; /* limit_req and limit_conn (site/limiter.h); NULL: none */
    /* Its access logs (the server opens them; malloc'ed, freed by the server). */
    struct pt_access_log *access_logs;
    size_t naccess_logs;
    pt_overlay *overlays; /* of its `if` blocks that change the answer (pt_conf_if.overlay) */
    size_t noverlays;
};

/* Builds the locations of `vh` (its conf, root fd and cache set) from vh->conf. On error
 * writes "FILE:LINE: reason" to `err` and returns a negative errno; pt_locations_dispose()
 * then releases what was built. */
int pt_locations_setup(pt_vhost *vh, char *err, size_t errlen);

/* Releases the locations of `vh` (closing their fds). Twice is a no-op. */
void pt_locations_dispose(pt_vhost *vh);

/* The location of `vh` answering the normalised `path` for `req`; a regex location that matches
 * leaves its groups in req->captures. NULL when a regex hit its match limit (logged): a 500. */
pt_location *pt_location_find(const pt_vhost *vh, const char *path, size_t len, pt_request *req);

/* The named location `@NAME` of `vh` (`name` with its '@'), or NULL. */
pt_location *pt_location_named(const pt_vhost *vh, const char *name, size_t len);

/* The location of `vh` for what no location block matches. */
pt_location *pt_location_base(const pt_vhost *vh);

/* Answers `req`: normalises its path, picks the location and runs its handler, following
 * internal redirects. The dispatcher's entry point. */
void pt_route(pt_request *req);

/* Answers `req` with the error `status`, through the location's error_page if it has one for
 * it (an internal redirect, or a redirect for an absolute URL), else the built-in page. */
void pt_route_error(pt_request *req, int status);

/* Asks the router to answer `req` from `uri` ("/path[?query]", percent-encoded, `len` bytes,
 * copied) once the handler returns. Returns 0, or -ENOMEM if the request's arena is full
 * (the caller then answers). */
int pt_route_redirect(pt_request *req, const char *uri, size_t len);

/* Appends to `buf` (from `pos`, capacity `cap`) the add_header and expires lines of `loc` for
 * a response with `status` about a file modified at `mtime` (0: none), at time `now`. Returns
 * the new position; as with the response's other lines, bytes beyond `cap` are not written but
 * counted, so a result above `cap` means the head did not fit. */
size_t pt_location_headers(pt_location *loc, int status, time_t mtime, time_t now, char *buf,
                           size_t pos, size_t cap);

#endif
