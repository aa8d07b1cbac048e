/*
 * The upstream module of the conf: `upstream NAME { ... }` blocks. Their directives are their
 * own (`server`, `keepalive`, `zone` mean something else elsewhere), so a block is read here
 * rather than through the table; the table's rows for the names only a block takes (C_UPSTREAM)
 * make one written elsewhere "not allowed here" rather than unknown. server/handlers/upstream.c
 * reads what this fills in.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connmgr/authority.h"
#include "connmgr/limits.h"
#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/vars.h"
#include "server/handlers/upstream.h"

static const char *balance_name(pt_balance b)
{
    switch (b) {
    case PT_BALANCE_LEAST_CONN:
        return "least_conn";
    case PT_BALANCE_IP_HASH:
        return "ip_hash";
    case PT_BALANCE_HASH:
        return "hash";
    case PT_BALANCE_RANDOM:
        return "random";
    default:
        return "round-robin";
    }
}

/* Whether word `w` is `name=` followed by a value; the value in *v. */
static bool param(const char *w, const char *name, const char **v)
{
    size_t n = strlen(name);
    if (strncmp(w, name, n) != 0 || w[n] != '=')
        return false;
    *v = w + n + 1;
    return true;
}

/* `server ADDRESS [weight=N] [max_fails=N] [fail_timeout=TIME] [max_conns=N] [slow_start=TIME]
 * [backup] [down] [resolve];` */
static int upstream_server(pt_conf_loader *cx, const pt_conf_node *k, pt_conf_upstream *u)
{
    if (k->nw < 2)
        return pt_conf_bad(cx, k, 0, "invalid number of arguments in \"server\" directive");
    const char *addr = k->w[1].s;
    pt_authority a;
    if (pt_authority_parse(&a, addr, strlen(addr), 80) < 0)
        return pt_conf_bad(cx, k, 1, "invalid address \"%s\" in \"server\" of upstream \"%s\"",
                           addr, u->name);
    if (u->nservers >= PT_UPSTREAM_MAX_SERVERS)
        return pt_conf_bad(cx, k, 0, "more than %d servers in upstream \"%s\"",
                           PT_UPSTREAM_MAX_SERVERS, u->name);
    pt_conf_upstream_server sv = {
        .weight = 1,
        .max_fails = 1,
        .fail_timeout = PT_CONF_UPSTREAM_FAIL_TIMEOUT,
        .file = k->file,
        .line = k->w[0].line,
        .col = k->w[0].col,
    };
    for (size_t i = 2; i < k->nw; i++) {
        const char *w = k->w[i].s, *v;
        uint64_t n;
        bool ok;
        if (param(w, "weight", &v))
            ok = pt_conf_parse_uint(v, 1000, &n) == 0 && n > 0 && (sv.weight = (int)n);
        else if (param(w, "max_fails", &v))
            ok = pt_conf_parse_uint(v, 1000, &n) == 0 && ((sv.max_fails = (int)n), true);
        else if (param(w, "fail_timeout", &v))
            ok = pt_parse_time(v, &sv.fail_timeout) == 0 && sv.fail_timeout > 0 &&
                 !pt_timeout_is_none(sv.fail_timeout);
        else if (param(w, "max_conns", &v))
            ok = pt_conf_parse_uint(v, UINT32_MAX, &n) == 0 && ((sv.max_conns = (size_t)n), true);
        else if (param(w, "slow_start", &v))
            ok = pt_parse_time(v, &sv.slow_start) == 0 && !pt_timeout_is_none(sv.slow_start);
        else if (strcmp(w, "backup") == 0)
            ok = !sv.backup && (sv.backup = true);
        else if (strcmp(w, "down") == 0)
            ok = !sv.down && (sv.down = true);
        else if (strcmp(w, "resolve") == 0) {
            if (a.kind != PT_AUTHORITY_NAME)
                return pt_conf_bad(cx, k, i, "\"resolve\": \"%s\" is not a name to look up", addr);
            ok = !sv.resolve && (sv.resolve = true);
        } else
            ok = false;
        if (!ok)
            return pt_conf_bad(cx, k, i, "invalid parameter \"%s\" in \"server\"", w);
    }
    sv.address = xstrdup(addr);
    *PUSH(u->servers, u->nservers) = sv;
    return 0;
}

/* The balancing method: `least_conn;`, `ip_hash;`, `hash KEY [consistent];`,
 * `random [two [least_conn]];`. */
static int upstream_balance(pt_conf_loader *cx, const pt_conf_node *k, pt_conf_upstream *u,
                            pt_balance b)
{
    const char *kn = k->w[0].s;
    if (u->balance != PT_BALANCE_ROUND_ROBIN)
        return pt_conf_bad(cx, k, 0, "\"%s\": upstream \"%s\" has a balancing method already (%s)",
                           kn, u->name, balance_name(u->balance));
    size_t args = k->nw - 1;
    switch (b) {
    case PT_BALANCE_LEAST_CONN:
    case PT_BALANCE_IP_HASH:
        if (args)
            return pt_conf_bad(cx, k, 1, "\"%s\" takes no arguments", kn);
        break;
    case PT_BALANCE_HASH: {
        if (args < 1 || args > 2)
            return pt_conf_bad(cx, k, 0, "invalid number of arguments in \"hash\" directive");
        if (args == 2 && strcmp(k->w[2].s, "consistent") != 0)
            return pt_conf_bad(cx, k, 2, "invalid parameter \"%s\" in \"hash\"", k->w[2].s);
        const char *key = k->w[1].s;
        if (!key[0])
            return pt_conf_bad(cx, k, 1, "empty key in \"hash\"");
        for (const char *p = strchr(key, '$'); p; p = strchr(p + 1, '$')) {
            pt_var_ref v = pt_var_parse(p);
            if (v.malformed)
                return pt_conf_bad(cx, k, 1, "invalid variable name in \"hash\"");
            if (!pt_conf_var_ok(cx, PT_VARS_ZONE_KEY, &v))
                return pt_conf_bad(cx, k, 1, "unknown variable \"$%.*s\" in \"hash\"",
                                   (int)v.name.len, v.name.p);
        }
        u->hash_key = xstrdup(key);
        u->hash_consistent = args == 2;
        break;
    }
    case PT_BALANCE_RANDOM:
        if (args > 2)
            return pt_conf_bad(cx, k, 0, "invalid number of arguments in \"random\" directive");
        if (args >= 1 && strcmp(k->w[1].s, "two") != 0)
            return pt_conf_bad(cx, k, 1, "invalid parameter \"%s\" in \"random\"", k->w[1].s);
        if (args == 2 && strcmp(k->w[2].s, "least_conn") != 0)
            return pt_conf_bad(cx, k, 2, "invalid parameter \"%s\" in \"random\"", k->w[2].s);
        u->random_two = args >= 1;
        break;
    default:
        break;
    }
    u->balance = b;
    return 0;
}

/* `queue N [timeout=TIME];` */
static int upstream_queue(pt_conf_loader *cx, const pt_conf_node *k, pt_conf_upstream *u)
{
    uint64_t n;
    if (k->nw < 2 || k->nw > 3)
        return pt_conf_bad(cx, k, 0, "invalid number of arguments in \"queue\" directive");
    if (pt_conf_parse_uint(k->w[1].s, 1000000, &n) < 0 || n == 0)
        return pt_conf_bad(cx, k, 1, "invalid value \"%s\" in \"queue\"", k->w[1].s);
    u->queue = (size_t)n;
    const char *v;
    if (k->nw == 3 && (!param(k->w[2].s, "timeout", &v) ||
                       pt_parse_time(v, &u->queue_timeout) < 0 || u->queue_timeout <= 0))
        return pt_conf_bad(cx, k, 2, "invalid parameter \"%s\" in \"queue\"", k->w[2].s);
    return 0;
}

/* `health_check [interval=TIME] [timeout=TIME] [fails=N] [passes=N] [uri=PATH] [port=N];` */
static int upstream_health(pt_conf_loader *cx, const pt_conf_node *k, pt_conf_upstream *u)
{
    pt_conf_health_check *h = &u->health;
    bool timeout_set = false;
    for (size_t i = 1; i < k->nw; i++) {
        const char *w = k->w[i].s, *v;
        uint64_t n;
        bool ok;
        if (param(w, "interval", &v))
            ok = pt_parse_time(v, &h->interval) == 0 && h->interval > 0 &&
                 !pt_timeout_is_none(h->interval);
        else if (param(w, "timeout", &v))
            ok = (timeout_set = pt_parse_time(v, &h->timeout) == 0 && h->timeout > 0 &&
                                !pt_timeout_is_none(h->timeout));
        else if (param(w, "fails", &v))
            ok = pt_conf_parse_uint(v, 1000, &n) == 0 && n > 0 && (h->fails = (unsigned)n);
        else if (param(w, "passes", &v))
            ok = pt_conf_parse_uint(v, 1000, &n) == 0 && n > 0 && (h->passes = (unsigned)n);
        else if (param(w, "port", &v))
            ok = pt_conf_parse_uint(v, 65535, &n) == 0 && n > 0 && (h->port = (uint16_t)n);
        else if (param(w, "uri", &v)) {
            ok = v[0] == '/';
            for (const char *p = v; ok && *p; p++)
                ok = (unsigned char)*p > 0x20 && *p != 0x7f;
            if (ok) {
                free(h->uri);
                h->uri = xstrdup(v);
            }
        } else if (param(w, "match", &v))
            return pt_conf_bad(cx, k, i,
                               "\"match\" is not supported: a server passes a check with a 2xx "
                               "or 3xx answer");
        else
            ok = false;
        if (!ok)
            return pt_conf_bad(cx, k, i, "invalid parameter \"%s\" in \"health_check\"", w);
    }
    /* A check ends before the next one is due. */
    if (!timeout_set && h->timeout > h->interval)
        h->timeout = h->interval;
    if (h->timeout > h->interval)
        return pt_conf_bad(cx, k, 0, "the timeout of \"health_check\" is longer than its interval");
    h->on = true;
    h->file = k->file;
    h->line = k->w[0].line;
    h->col = k->w[0].col;
    return 0;
}

/* `zone NAME [SIZE];`: nginx's shared memory for the state of an upstream's servers. porter
 * shares that state always; the directive is taken so nginx's confs load. */
static int upstream_zone(pt_conf_loader *cx, const pt_conf_node *k)
{
    size_t size;
    if (k->nw < 2 || k->nw > 3)
        return pt_conf_bad(cx, k, 0, "invalid number of arguments in \"zone\" directive");
    if (k->nw == 3 && pt_parse_size(k->w[2].s, &size) < 0)
        return pt_conf_bad(cx, k, 2, "invalid zone size \"%s\"", k->w[2].s);
    return 0;
}

/* What the block says as a whole: a primary server, and servers' parameters its method takes. */
static int upstream_done(pt_conf_loader *cx, const pt_conf_node *d, pt_conf_upstream *u)
{
    if (!u->nservers)
        return pt_conf_bad(cx, d, 1, "no servers in upstream \"%s\"", u->name);
    bool primary = false;
    bool hashed = u->balance == PT_BALANCE_IP_HASH || u->balance == PT_BALANCE_HASH ||
                  u->balance == PT_BALANCE_RANDOM;
    for (size_t i = 0; i < u->nservers; i++) {
        const pt_conf_upstream_server *sv = &u->servers[i];
        primary |= !sv->backup;
        /* A server's share of the keys is fixed by its weight: neither a backup nor a weight
         * that changes has a place in it (nginx's rule, for random too). */
        if (hashed && (sv->backup || sv->slow_start > 0))
            return pt_conf_fail(cx, -EINVAL, sv->file, sv->line, sv->col,
                                "\"%s\" cannot be used with \"%s\" in upstream \"%s\"",
                                sv->backup ? "backup" : "slow_start", balance_name(u->balance),
                                u->name);
    }
    if (!primary)
        return pt_conf_bad(cx, d, 1, "upstream \"%s\" has only backup servers", u->name);
    return 0;
}

static const pt_conf_upstream *upstream_named(const pt_conf *c, const char *name)
{
    for (size_t i = 0; i < c->nupstreams; i++)
        if (strcmp(c->upstreams[i].name, name) == 0)
            return &c->upstreams[i];
    return NULL;
}

/* Directives a block holds once at most: the bits of `seen`. */
enum {
    SEEN_KEEPALIVE = 1,
    SEEN_KEEPALIVE_TIMEOUT = 2,
    SEEN_KEEPALIVE_REQUESTS = 4,
    SEEN_QUEUE = 8,
    SEEN_ZONE = 16,
    SEEN_HEALTH = 32,
    SEEN_RESOLVER = 64,
};

static int upstream_directive(pt_conf_loader *cx, const pt_conf_node *k, pt_conf_upstream *u,
                              unsigned *seen)
{
    const char *kn = k->w[0].s;
    if (k->block)
        return pt_conf_fail(cx, -EINVAL, k->file, k->tline, k->tcol,
                            "directive \"%s\" is not terminated by \";\"", kn);
    unsigned bit = 0;
    uint64_t n;
    int rc = 0;
    if (strcmp(kn, "server") == 0) {
        rc = upstream_server(cx, k, u);
    } else if (strcmp(kn, "keepalive") == 0) {
        bit = SEEN_KEEPALIVE;
        if (k->nw != 2 || pt_conf_parse_uint(k->w[1].s, SIZE_MAX, &n) < 0)
            return pt_conf_bad(cx, k, k->nw > 1, "invalid value in \"keepalive\"");
        u->keepalive = (size_t)n;
    } else if (strcmp(kn, "keepalive_requests") == 0) {
        bit = SEEN_KEEPALIVE_REQUESTS;
        if (k->nw != 2 || pt_conf_parse_uint(k->w[1].s, SIZE_MAX, &n) < 0 || n == 0)
            return pt_conf_bad(cx, k, k->nw > 1, "invalid value in \"keepalive_requests\"");
        u->keepalive_requests = (size_t)n;
    } else if (strcmp(kn, "keepalive_timeout") == 0) {
        bit = SEEN_KEEPALIVE_TIMEOUT;
        if (k->nw != 2 || pt_parse_time(k->w[1].s, &u->keepalive_timeout) < 0 ||
            u->keepalive_timeout <= 0)
            return pt_conf_bad(cx, k, k->nw > 1, "invalid time in \"keepalive_timeout\"");
    } else if (strcmp(kn, "least_conn") == 0) {
        rc = upstream_balance(cx, k, u, PT_BALANCE_LEAST_CONN);
    } else if (strcmp(kn, "ip_hash") == 0) {
        rc = upstream_balance(cx, k, u, PT_BALANCE_IP_HASH);
    } else if (strcmp(kn, "hash") == 0) {
        rc = upstream_balance(cx, k, u, PT_BALANCE_HASH);
    } else if (strcmp(kn, "random") == 0) {
        rc = upstream_balance(cx, k, u, PT_BALANCE_RANDOM);
    } else if (strcmp(kn, "queue") == 0) {
        bit = SEEN_QUEUE;
        rc = upstream_queue(cx, k, u);
    } else if (strcmp(kn, "health_check") == 0) {
        bit = SEEN_HEALTH;
        rc = upstream_health(cx, k, u);
    } else if (strcmp(kn, "resolver_interval") == 0) {
        bit = SEEN_RESOLVER;
        if (k->nw != 2 || pt_parse_time(k->w[1].s, &u->resolver_interval) < 0 ||
            u->resolver_interval <= 0 || pt_timeout_is_none(u->resolver_interval))
            return pt_conf_bad(cx, k, k->nw > 1, "invalid time in \"resolver_interval\"");
    } else if (strcmp(kn, "zone") == 0) {
        bit = SEEN_ZONE;
        rc = upstream_zone(cx, k);
    } else {
        return pt_conf_bad(cx, k, 0, "unknown directive \"%s\" in \"upstream\"", kn);
    }
    if (rc < 0)
        return rc;
    if (*seen & bit)
        return pt_conf_bad(cx, k, 0, "\"%s\" directive is duplicate", kn);
    *seen |= bit;
    return 0;
}

/* `upstream NAME { ... }` at the top level. */
static int set_upstream(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf *c = cx->conf;
    const char *name = arg1(d);
    if (!name[0] || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "._-") != strlen(name))
        return pt_conf_bad(cx, d, 1, "invalid upstream name \"%s\"", name);
    if (upstream_named(c, name))
        return pt_conf_bad(cx, d, 1, "duplicate upstream \"%s\"", name);
    pt_conf_upstream *u = PUSH(c->upstreams, c->nupstreams);
    *u = (pt_conf_upstream){
        .name = xstrdup(name),
        .keepalive = PT_CONF_UPSTREAM_KEEPALIVE,
        .keepalive_timeout = PT_CONF_UPSTREAM_KEEPALIVE_TIMEOUT,
        .keepalive_requests = PT_CONF_UPSTREAM_KEEPALIVE_REQUESTS,
        .queue_timeout = PT_CONF_UPSTREAM_QUEUE_TIMEOUT,
        .health =
            {
                .interval = PT_CONF_HEALTH_INTERVAL,
                .timeout = PT_CONF_HEALTH_TIMEOUT,
                .fails = 1,
                .passes = 1,
            },
        .resolver_interval = PT_CONF_UPSTREAM_RESOLVER_INTERVAL,
        .file = d->file,
        .line = d->w[0].line,
        .col = d->w[0].col,
    };
    unsigned seen = 0;
    for (size_t i = 0; i < d->nkids; i++) {
        int rc = upstream_directive(cx, &d->kids[i], u, &seen);
        if (rc < 0)
            return rc;
    }
    if (!u->health.uri)
        u->health.uri = xstrdup("/");
    return upstream_done(cx, d, u);
}

/* The names an upstream block takes that no other place does: known, so that one written
 * elsewhere is "not allowed here" (the block reads them itself, above). */
static int set_nowhere(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    return pt_conf_bad(cx, d, 0, "\"%s\" directive is not allowed here", d->w[0].s);
}

static const pt_conf_directive directives[] = {
    {"upstream", C_TOP, F_BLOCK | F_MULTI, 1, 1, set_upstream, NOWHERE},
    {"least_conn", C_UPSTREAM, 0, 0, -1, set_nowhere, NOWHERE},
    {"ip_hash", C_UPSTREAM, 0, 0, -1, set_nowhere, NOWHERE},
    {"hash", C_UPSTREAM, 0, 0, -1, set_nowhere, NOWHERE},
    {"random", C_UPSTREAM, 0, 0, -1, set_nowhere, NOWHERE},
    {"queue", C_UPSTREAM, 0, 0, -1, set_nowhere, NOWHERE},
    {"health_check", C_UPSTREAM, 0, 0, -1, set_nowhere, NOWHERE},
    {"resolver_interval", C_UPSTREAM, 0, 0, -1, set_nowhere, NOWHERE},
    {"zone", C_UPSTREAM, 0, 0, -1, set_nowhere, NOWHERE},
};

const pt_conf_module pt_conf_upstream_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
};
