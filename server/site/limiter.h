/*
 * limit_req and limit_conn: the guard's checks (guard.h) that count requests in shared zones
 * (server/core/zone.h), nginx's ngx_http_limit_req_module and ngx_http_limit_conn_module
 * (docs/access.md).
 *
 * A server's zones (pt_limit_zones) are made with it, in the process that forks the workers,
 * from its conf's limit_req_zone and limit_conn_zone; a zone whose name, kind, key and size
 * are those of a zone of the server it replaces (a reload) is that zone, state and all. Each
 * location holds its limits (pt_location_limits) with the zones they count in.
 *
 * limit_req is nginx's leaky bucket, in its integer arithmetic: a key's `excess` is in
 * milli-requests, and a request `ms` milliseconds after the key's last one makes it
 * excess - rate * ms / 1000 + 1000 (never below 0). Above `burst` the request is refused with
 * limit_req_status; above `delay` (0 unless delay= or nodelay) it is held until the excess would
 * have leaked down to `delay` ((excess - delay) / rate seconds), by a timer of the request's
 * custodian. Several limit_req lines are checked in order: a refusal by one leaves the others
 * as they were (nothing is counted), else every zone counts the request and the longest delay
 * applies.
 *
 * limit_conn counts the requests in flight per key (an HTTP/2 stream is one) and refuses the
 * one beyond N with limit_conn_status; a request counts until its response has left
 * (pt_request_sent_custodian), however it ends, exactly once.
 *
 * Each counts a request once: internal redirects (error_page, try_files) into another location
 * are not counted again (pt_request.limit_req_status, limit_conn_status). A key that expands to
 * nothing is not counted. With *_dry_run on, what would be refused or delayed is logged and
 * counted in the zone's counters, and the request goes on.
 *
 * Ownership: pt_limit_zones belongs to its server, pt_location_limits to its location; they
 * borrow the conf. Threading: the loop's thread; processes share the zones through their locks.
 */
#ifndef PORTER_SERVER_SITE_LIMITER_H
#define PORTER_SERVER_SITE_LIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/conf.h"
#include "server/core/request.h"
#include "server/core/vars.h"
#include "server/core/zone.h"

/* pt_request.limit_req_status and limit_conn_status: nginx's $limit_req_status values. */
enum {
    PT_LIMIT_PASSED = 1,
    PT_LIMIT_DELAYED,
    PT_LIMIT_REJECTED,
    PT_LIMIT_DELAYED_DRY_RUN,
    PT_LIMIT_REJECTED_DRY_RUN,
};

/* One piece of a zone's key: literal text, or a variable. */
typedef struct pt_key_piece {
    pt_var_ref ref; /* PT_VAR_TEXT: `text` */
    const char *text;
    size_t len;
} pt_key_piece;

/* One zone of a server. */
typedef struct pt_limit_zone {
    const pt_conf_zone *conf;
    pt_zone *zone;
    pt_key_piece *pieces;
    size_t npieces;
} pt_limit_zone;

typedef struct pt_limit_zones {
    pt_limit_zone *z; /* as pt_conf.zones */
    size_t n;
} pt_limit_zones;

/* Makes the zones of `conf`, taking over those of `previous` (NULL: none) that stay the same.
 * Returns 0 (with *out NULL when the conf has none) or a negative errno with a message in
 * `err`. */
int pt_limit_zones_new(pt_limit_zones **out, const pt_conf *conf, const pt_limit_zones *previous,
                       char *err, size_t errlen);

/* Releases the server's references to its zones. NULL: no-op. */
void pt_limit_zones_free(pt_limit_zones *zs);

/* One limit_req line of a location. */
typedef struct pt_req_limit {
    pt_limit_zone *zone;
    uint64_t burst, delay; /* milli-requests */
    pt_zone_entry *node;   /* during a check: the entry counted and not yet accounted */
} pt_req_limit;

/* One limit_conn line of a location. */
typedef struct pt_conn_limit {
    pt_limit_zone *zone;
    uint32_t conn;
} pt_conn_limit;

/* The limits of a location. */
typedef struct pt_location_limits {
    pt_req_limit *req;
    size_t nreq;
    int req_status;
    pt_log_level req_level, delay_level; /* a delay is logged one level lower, as nginx */
    bool req_dry_run;
    pt_conn_limit *conn;
    size_t nconn;
    int conn_status;
    pt_log_level conn_level;
    bool conn_dry_run;
} pt_location_limits;

/* The limits of a location from its conf `l` over the server's `zones`; *out NULL when it has
 * none. Returns 0, -ENOMEM, or -EINVAL when it names zones and there are none (a vhost built
 * without its server). */
int pt_location_limits_new(pt_location_limits **out, const pt_conf_limit *l, pt_limit_zones *zones);
void pt_location_limits_free(pt_location_limits *l);

/* The guard's checks (guard.c's table). */
int pt_limit_req_check(pt_request *req);
int pt_limit_conn_check(pt_request *req);

/* The leaky bucket: the excess of a key that had `excess` at `last` (ms) after one more request
 * at `now`, at `rate` milli-requests a second. A clock that went back counts as no time (more
 * than a minute back: one millisecond), as nginx. */
int64_t pt_limit_req_excess(int64_t excess, int64_t last, int64_t now, uint64_t rate);

#endif
