/*
 * The limits module of the conf: shared zones and the limits that count in them, nginx's
 * ngx_http_limit_req_module and ngx_http_limit_conn_module (docs/access.md).
 *
 *     limit_req_zone KEY zone=NAME:SIZE rate=Nr/s|Nr/m;           top level
 *     limit_conn_zone KEY zone=NAME:SIZE;                         top level
 *     limit_req zone=NAME [burst=N] [nodelay | delay=N];          any level, repeated
 *     limit_req_status CODE; limit_req_log_level LEVEL; limit_req_dry_run on|off;
 *     limit_conn NAME N;                                          any level, repeated
 *     limit_conn_status CODE; limit_conn_log_level LEVEL; limit_conn_dry_run on|off;
 *
 * A level with limit_req (or limit_conn) lines of its own replaces those it inherited; the
 * other settings inherit one by one. Zones are found by name once the whole conf is read, so a
 * zone may be declared after a limit that names it, as in nginx; one name is one zone, whatever
 * directive declared it. nginx Plus's `sync` (zones shared by a cluster) is refused.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/vars.h"
#include "server/core/zone.h"

/* The largest burst=, delay= (requests) and rate (requests a second). */
#define MAX_REQUESTS 1000000000u

/* The limits that hold `field`, a row's field. */
static pt_conf_limit *limit_holding_req(pt_conf_limit_req **req)
{
    return (pt_conf_limit *)(void *)((char *)req - offsetof(pt_conf_limit, req));
}

static pt_conf_limit *limit_holding_conn(pt_conf_limit_conn **conn)
{
    return (pt_conf_limit *)(void *)((char *)conn - offsetof(pt_conf_limit, conn));
}

/* ---- zones ---- */

static const char *zone_directive(bool conn)
{
    return conn ? "limit_conn_zone" : "limit_req_zone";
}

/* The key of a zone: text, and variables a key may name. */
static int check_key(pt_conf_loader *cx, const pt_conf_node *d)
{
    const char *key = d->w[1].s;
    for (const char *p = strchr(key, '$'); p; p = strchr(p + 1, '$')) {
        pt_var_ref v = pt_var_parse(p);
        if (v.malformed)
            return pt_conf_bad(cx, d, 1, "invalid variable name in \"%s\"", d->w[0].s);
        if (!pt_conf_var_ok(cx, PT_VARS_ZONE_KEY, &v))
            return pt_conf_bad(cx, d, 1, "unknown variable \"$%.*s\" in \"%s\"", (int)v.name.len,
                               v.name.p, d->w[0].s);
    }
    return 0;
}

/* `zone=NAME:SIZE` (word `i`) into *z, checked against the zones declared before. */
static int parse_zone(pt_conf_loader *cx, const pt_conf_node *d, size_t i, pt_conf_zone *z)
{
    const char *w = d->w[i].s + 5, *colon = strchr(w, ':');
    if (!colon || colon == w)
        return pt_conf_bad(cx, d, i, "invalid zone size \"%s\"", d->w[i].s);
    int rc = pt_parse_size(colon + 1, &z->size);
    if (rc < 0 || z->size > PT_ZONE_MAX_SIZE)
        return pt_conf_bad(cx, d, i, "invalid zone size \"%s\"", d->w[i].s);
    if (z->size < PT_ZONE_MIN_SIZE)
        return pt_conf_bad(cx, d, i, "zone \"%s\" is too small, it must be %uk at least", d->w[i].s,
                           PT_ZONE_MIN_SIZE / 1024);
    size_t n = (size_t)(colon - w);
    /* the status page and the logs show it as it is */
    for (size_t k = 0; k < n; k++)
        if (!isalnum((unsigned char)w[k]) && !strchr("_-.", w[k]))
            return pt_conf_bad(cx, d, i,
                               "invalid zone name \"%.*s\", it may hold letters, digits, \"_\", "
                               "\"-\" and \".\"",
                               (int)n, w);
    for (size_t k = 0; k < cx->conf->nzones; k++) {
        const pt_conf_zone *o = &cx->conf->zones[k];
        if (strlen(o->name) != n || memcmp(o->name, w, n) != 0)
            continue;
        if (o->size != z->size)
            return pt_conf_bad(cx, d, i,
                               "the size %zu of zone \"%s\" conflicts with the size %zu declared "
                               "at %s:%d",
                               z->size, o->name, o->size, o->file, o->line);
        if (o->conn != z->conn)
            return pt_conf_bad(cx, d, i, "zone \"%s\" is already declared by \"%s\" at %s:%d",
                               o->name, zone_directive(o->conn), o->file, o->line);
        return pt_conf_bad(cx, d, i, "%s \"%s\" is already bound to key \"%s\" at %s:%d",
                           zone_directive(z->conn), o->name, o->key, o->file, o->line);
    }
    z->name = xstrndup(w, n);
    z->file = d->file;
    z->line = d->w[i].line;
    z->col = d->w[i].col;
    return 0;
}

/* `rate=N r/s` or `N r/m` (a bare N: per second), as nginx reads it: milli-requests a second. */
static int parse_rate(pt_conf_loader *cx, const pt_conf_node *d, size_t i, uint64_t *rate)
{
    const char *w = d->w[i].s + 5;
    size_t n = strlen(w);
    uint64_t scale = 1;
    if (n > 3 && strcmp(w + n - 3, "r/s") == 0) {
        n -= 3;
    } else if (n > 3 && strcmp(w + n - 3, "r/m") == 0) {
        n -= 3;
        scale = 60;
    }
    char digits[24];
    uint64_t v;
    if (n == 0 || n >= sizeof digits)
        return pt_conf_bad(cx, d, i, "invalid rate \"%s\"", d->w[i].s);
    memcpy(digits, w, n);
    digits[n] = '\0';
    if (pt_conf_parse_uint(digits, MAX_REQUESTS, &v) < 0 || v == 0)
        return pt_conf_bad(cx, d, i, "invalid rate \"%s\"", d->w[i].s);
    *rate = v * 1000 / scale;
    return 0;
}

/* `limit_req_zone KEY zone=NAME:SIZE rate=RATE;` and `limit_conn_zone KEY zone=NAME:SIZE;` */
static int set_zone(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    bool conn = strcmp(d->w[0].s, "limit_conn_zone") == 0;
    pt_conf_zone z = {.conn = conn};
    bool named = false;
    int rc = check_key(cx, d);
    if (rc < 0)
        return rc;
    for (size_t i = 2; i < d->nw; i++) {
        const char *w = d->w[i].s;
        if (strncmp(w, "zone=", 5) == 0) {
            free(z.name);
            z.name = NULL;
            if ((rc = parse_zone(cx, d, i, &z)) < 0)
                return rc;
            named = true;
        } else if (!conn && strncmp(w, "rate=", 5) == 0) {
            if ((rc = parse_rate(cx, d, i, &z.rate)) < 0)
                goto fail;
        } else if (!conn && (strcmp(w, "sync") == 0)) {
            rc = pt_conf_bad(cx, d, i,
                             "\"sync\" is not supported: a zone is shared by the workers of one "
                             "porter, not with other servers");
            goto fail;
        } else {
            rc = pt_conf_bad(cx, d, i, "invalid parameter \"%s\"", w);
            goto fail;
        }
    }
    if (!named || (!conn && !z.rate)) {
        free(z.name);
        return pt_conf_bad(cx, d, 0, "\"%s\" must have \"%s\" parameter", d->w[0].s,
                           named ? "rate" : "zone");
    }
    z.key = xstrdup(d->w[1].s);
    *PUSH(cx->conf->zones, cx->conf->nzones) = z;
    return 0;
fail:
    free(z.name);
    return rc;
}

/* ---- limits ---- */

/* A positive count of requests in `w` after its `skip`-byte prefix, in milli-requests. */
static int parse_requests(pt_conf_loader *cx, const pt_conf_node *d, size_t i, size_t skip,
                          const char *what, uint64_t *out)
{
    uint64_t v;
    if (pt_conf_parse_uint(d->w[i].s + skip, MAX_REQUESTS, &v) < 0 || v == 0)
        return pt_conf_bad(cx, d, i, "invalid %s value \"%s\"", what, d->w[i].s);
    *out = v * 1000;
    return 0;
}

/* `limit_req zone=NAME [burst=N] [nodelay | delay=N];`: the lines of one level add up. */
static int set_limit_req(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_limit *l = limit_holding_req(field);
    pt_conf_limit_req r = {0};
    size_t zi = 0;
    int rc;
    for (size_t i = 1; i < d->nw; i++) {
        const char *w = d->w[i].s;
        if (strncmp(w, "zone=", 5) == 0) {
            if (!w[5])
                return pt_conf_bad(cx, d, i, "invalid zone name \"%s\"", w);
            zi = i;
        } else if (strncmp(w, "burst=", 6) == 0) {
            if ((rc = parse_requests(cx, d, i, 6, "burst", &r.burst)) < 0)
                return rc;
        } else if (strncmp(w, "delay=", 6) == 0) {
            if ((rc = parse_requests(cx, d, i, 6, "delay", &r.delay)) < 0)
                return rc;
        } else if (strcmp(w, "nodelay") == 0) {
            r.delay = UINT64_MAX;
        } else {
            return pt_conf_bad(cx, d, i, "invalid parameter \"%s\"", w);
        }
    }
    if (!zi)
        return pt_conf_bad(cx, d, 0, "\"limit_req\" must have \"zone\" parameter");
    if (cx->first) {
        for (size_t i = 0; i < l->nreq; i++)
            free(l->req[i].zone_name);
        free(l->req);
        l->req = NULL;
        l->nreq = 0;
    }
    for (size_t i = 0; i < l->nreq; i++)
        if (strcmp(l->req[i].zone_name, d->w[zi].s + 5) == 0)
            return pt_conf_bad(cx, d, zi, "zone \"%s\" is named twice in \"limit_req\"",
                               d->w[zi].s + 5);
    r.zone_name = xstrdup(d->w[zi].s + 5);
    r.file = d->file;
    r.line = d->w[zi].line;
    r.col = d->w[zi].col;
    *PUSH(l->req, l->nreq) = r;
    return 0;
}

/* `limit_conn NAME N;`: the lines of one level add up. */
static int set_limit_conn(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_limit *l = limit_holding_conn(field);
    uint64_t n;
    int rc = pt_conf_parse_uint(d->w[2].s, UINT64_MAX, &n);
    if (rc < 0 || n == 0)
        return pt_conf_bad(cx, d, 2, "invalid number of connections \"%s\"", d->w[2].s);
    if (n > 65535)
        return pt_conf_bad(cx, d, 2, "connection limit must be less than 65536");
    if (cx->first) {
        for (size_t i = 0; i < l->nconn; i++)
            free(l->conn[i].zone_name);
        free(l->conn);
        l->conn = NULL;
        l->nconn = 0;
    }
    for (size_t i = 0; i < l->nconn; i++)
        if (strcmp(l->conn[i].zone_name, d->w[1].s) == 0)
            return pt_conf_bad(cx, d, 1, "zone \"%s\" is named twice in \"limit_conn\"", d->w[1].s);
    *PUSH(l->conn, l->nconn) = (pt_conf_limit_conn){
        .zone_name = xstrdup(d->w[1].s),
        .conn = (uint32_t)n,
        .file = d->file,
        .line = d->w[1].line,
        .col = d->w[1].col,
    };
    return 0;
}

/* `limit_req_status CODE;`, `limit_conn_status CODE;` */
static int set_status(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    uint64_t v;
    if (pt_conf_parse_uint(arg1(d), 599, &v) < 0 || v < 400)
        return pt_conf_bad(cx, d, 1, "invalid value \"%s\" in \"%s\", it must be 400..599", arg1(d),
                           d->w[0].s);
    *(int *)field = (int)v;
    return 0;
}

/* `limit_req_log_level`, `limit_conn_log_level`: info, notice, warn or error. */
static int set_log_level(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    static const pt_log_level levels[] = {PT_LOG_INFO, PT_LOG_NOTICE, PT_LOG_WARN, PT_LOG_ERROR};
    for (size_t i = 0; i < sizeof levels / sizeof *levels; i++) {
        if (strcmp(arg1(d), pt_log_level_name(levels[i])) == 0) {
            *(pt_log_level *)field = levels[i];
            return 0;
        }
    }
    return pt_conf_bad(cx, d, 1,
                       "invalid value \"%s\" in \"%s\", it must be \"info\", \"notice\", \"warn\" "
                       "or \"error\"",
                       arg1(d), d->w[0].s);
}

/* ---- once the conf is read: the zones the limits name ---- */

static int find_zone(pt_conf_loader *cx, const char *name, bool conn, const char *file, int line,
                     int col, size_t *out)
{
    for (size_t i = 0; i < cx->conf->nzones; i++) {
        const pt_conf_zone *z = &cx->conf->zones[i];
        if (strcmp(z->name, name) != 0)
            continue;
        if (z->conn != conn)
            return pt_conf_fail(cx, -EINVAL, file, line, col,
                                "zone \"%s\" is declared by \"%s\", \"%s\" needs a \"%s\"", name,
                                zone_directive(z->conn), conn ? "limit_conn" : "limit_req",
                                zone_directive(conn));
        *out = i;
        return 0;
    }
    return pt_conf_fail(cx, -EINVAL, file, line, col, "unknown %s \"%s\"", zone_directive(conn),
                        name);
}

static int resolve(pt_conf_loader *cx, pt_conf_limit *l)
{
    int rc;
    for (size_t i = 0; i < l->nreq; i++) {
        pt_conf_limit_req *r = &l->req[i];
        if ((rc = find_zone(cx, r->zone_name, false, r->file, r->line, r->col, &r->zone)) < 0)
            return rc;
    }
    for (size_t i = 0; i < l->nconn; i++) {
        pt_conf_limit_conn *c = &l->conn[i];
        if ((rc = find_zone(cx, c->zone_name, true, c->file, c->line, c->col, &c->zone)) < 0)
            return rc;
    }
    return 0;
}

static int resolve_all(pt_conf_loader *cx)
{
    pt_conf *c = cx->conf;
    int rc = resolve(cx, &c->limit);
    for (size_t i = 0; rc == 0 && i < c->nservers; i++) {
        pt_conf_server *s = &c->servers[i];
        rc = resolve(cx, &s->limit);
        for (size_t k = 0; rc == 0 && k < s->nlocations; k++)
            rc = resolve(cx, &s->locations[k].limit);
    }
    return rc;
}

#define LIMIT(f) ALL(limit.f)

static const pt_conf_directive directives[] = {
    {"limit_req_zone", C_TOP, F_MULTI, 2, 4, set_zone, NOWHERE},
    {"limit_conn_zone", C_TOP, F_MULTI, 2, 2, set_zone, NOWHERE},
    {"limit_req", C_ALL, F_MULTI, 1, 3, set_limit_req, LIMIT(req)},
    {"limit_req_status", C_ALL, 0, 1, 1, set_status, LIMIT(req_status)},
    {"limit_req_log_level", C_ALL, 0, 1, 1, set_log_level, LIMIT(req_log_level)},
    {"limit_req_dry_run", C_ALL, 0, 1, 1, pt_conf_set_flag, LIMIT(req_dry_run)},
    {"limit_conn", C_ALL, F_MULTI, 2, 2, set_limit_conn, LIMIT(conn)},
    {"limit_conn_status", C_ALL, 0, 1, 1, set_status, LIMIT(conn_status)},
    {"limit_conn_log_level", C_ALL, 0, 1, 1, set_log_level, LIMIT(conn_log_level)},
    {"limit_conn_dry_run", C_ALL, 0, 1, 1, pt_conf_set_flag, LIMIT(conn_dry_run)},
};

const pt_conf_module pt_conf_limits_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
    .conf_done = resolve_all,
};
