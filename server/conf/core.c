/*
 * The core module of the conf: the top level, `http` and `events`, the process (worker_processes,
 * pid, user), servers and their
 * locations (each starting from its parent's values), listen, server_name, root and alias,
 * index, error_log, types, the safety limits, and what a location answers with when not with files
 * or a proxy (`return`, `status`). Once the top level is read it builds the servers, then
 * checks what spans them: one default server and one set of socket options per address, and
 * certificates for every server on an address that speaks TLS.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/core/regex.h"
#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/vars.h"

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static bool same_addr(const pt_conf_listen *a, const pt_conf_listen *b)
{
    bool hosts = a->host && b->host ? strcmp(a->host, b->host) == 0 : a->host == b->host;
    return hosts && strcmp(a->port, b->port) == 0;
}

static const char *addr_str(const pt_conf_listen *l, char *buf, size_t len)
{
    const char *h = l->host ? l->host : "*";
    bool v6 = strchr(h, ':') != NULL;
    snprintf(buf, len, "%s%s%s:%s", v6 ? "[" : "", h, v6 ? "]" : "", l->port);
    return buf;
}

/* A log path: "stderr" and "syslog:..." stay literal, anything else is a path under the
 * prefix. */
static char *log_path(const pt_conf *c, const char *s)
{
    return strcmp(s, "stderr") == 0 || strncmp(s, PT_SYSLOG_PREFIX, strlen(PT_SYSLOG_PREFIX)) == 0
               ? xstrdup(s)
               : pt_conf_path_join(c->prefix, s);
}

/* ---- the top level, servers and locations ---- */

static int set_http(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    return pt_conf_apply(cx, d->kids, d->nkids, C_HTTP);
}

static int set_events(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    return pt_conf_apply(cx, d->kids, d->nkids, C_EVENTS);
}

static int set_server(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    /* applied after the whole top level, so that top-level values written after the block
     * still reach it */
    *PUSH(cx->servers, cx->nservers) = d;
    return 0;
}

static int set_location(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    /* applied after the directives of the server or location holding it, which it inherits
     * wherever they are written (build_location) */
    *PUSH(cx->locs, cx->nlocs) = d;
    return 0;
}

static int set_workers(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    int *v = field;
    uint64_t n;
    if (strcmp(arg1(d), "auto") == 0)
        *v = 0;
    else if (pt_conf_parse_uint(arg1(d), 1024, &n) < 0 || n == 0)
        return pt_conf_bad(cx, d, 1,
                           "invalid value \"%s\" in \"%s\", it must be 1..1024 or \"auto\"",
                           arg1(d), d->w[0].s);
    else
        *v = (int)n;
    return 0;
}

/* `user USER [GROUP];`: the names are resolved now when porter runs as root (as nginx does), so
 * one that does not exist is an error at its place; otherwise they are kept, for the warning
 * that they are ignored. Without GROUP the user's name is taken as the group's, as in nginx. */
static int set_user(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf *c = cx->conf;
    const char *group = d->nw == 3 ? d->w[2].s : arg1(d);
    free(c->user);
    free(c->group);
    c->user = xstrdup(arg1(d));
    c->group = xstrdup(group);
    if (geteuid() != 0)
        return 0;
    char buf[16384];
    struct passwd pw, *pwp = NULL;
    if (getpwnam_r(arg1(d), &pw, buf, sizeof buf, &pwp) != 0 || !pwp)
        return pt_conf_bad(cx, d, 1, "unknown user \"%s\" in \"user\"", arg1(d));
    c->user_uid = pw.pw_uid;
    struct group gr, *grp = NULL;
    if (getgrnam_r(group, &gr, buf, sizeof buf, &grp) != 0 || !grp) {
        if (d->nw == 3)
            return pt_conf_bad(cx, d, 2, "unknown group \"%s\" in \"user\"", group);
        return pt_conf_bad(cx, d, 1,
                           "unknown group \"%s\" in \"user\": without a group the user's name "
                           "is taken as one (as in nginx), so name it: \"user %s GROUP;\"",
                           group, arg1(d));
    }
    c->user_gid = gr.gr_gid;
    return 0;
}

/* ---- listen ---- */

/* Splits "[HOST:]PORT" into l->host and l->port (canonical decimal). */
static int listen_addr(pt_conf_loader *cx, const pt_conf_node *d, pt_conf_listen *l)
{
    const char *a = arg1(d), *port;
    const char *host = NULL;
    size_t hostlen = 0;
    if (strncmp(a, "unix:", 5) == 0)
        return pt_conf_bad(
            cx, d, 1,
            "\"listen %s\": porter listens on TCP addresses only, not on UNIX-domain "
            "sockets",
            a);
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (!close || close == a + 1 || (close[1] && close[1] != ':'))
            return pt_conf_bad(cx, d, 1, "invalid address \"%s\" in \"listen\"", a);
        if (!close[1])
            return pt_conf_bad(cx, d, 1, "no port in \"%s\" of the \"listen\" directive", a);
        host = a + 1;
        hostlen = (size_t)(close - host);
        port = close + 2;
    } else if ((port = strrchr(a, ':')) != NULL) {
        host = a;
        hostlen = (size_t)(port - a);
        port++;
        if (hostlen == 0 || memchr(host, ':', hostlen))
            return pt_conf_bad(cx, d, 1, "invalid address \"%s\" in \"listen\"%s", a,
                               hostlen ? ", write an IPv6 address in brackets" : "");
        if (hostlen == 1 && host[0] == '*')
            host = NULL;
    } else if (strspn(a, "0123456789+-")) {
        port = a;
    } else {
        return pt_conf_bad(cx, d, 1, "no port in \"%s\" of the \"listen\" directive", a);
    }
    uint64_t n;
    if (pt_conf_parse_uint(port, 65535, &n) < 0)
        return pt_conf_bad(cx, d, 1, "invalid port in \"%s\" of the \"listen\" directive", a);
    char buf[8];
    snprintf(buf, sizeof buf, "%u", (unsigned)n);
    l->port = xstrdup(buf);
    l->host = host ? xstrndup(host, hostlen) : NULL;
    return 0;
}

static int set_listen(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_listen **v = field;
    size_t *n = aux;
    /* backlog -1: the server's max_waiting, known once the whole block is read */
    pt_conf_listen l = {.backlog = -1,
                        .notsent_lowat = PT_CONF_NOTSENT_LOWAT,
                        .file = d->file,
                        .line = d->w[1].line,
                        .col = d->w[1].col};
    int rc = listen_addr(cx, d, &l);
    for (size_t i = 2; rc == 0 && i < d->nw; i++) {
        const char *opt = d->w[i].s;
        uint64_t backlog;
        size_t lowat;
        bool socket_option = true; /* one the listening socket is made with */
        if (strcmp(opt, "default_server") == 0 || strcmp(opt, "default") == 0) {
            l.default_server = true;
            socket_option = false;
        } else if (strcmp(opt, "ssl") == 0) {
            l.ssl = true;
            socket_option = false;
        } else if (strcmp(opt, "http2") == 0) {
            /* the address's: one listen of it saying http2 is enough (nginx ORs it too) */
            l.http2 = true;
            socket_option = false;
        } else if (strcmp(opt, "proxy_protocol") == 0) {
            /* the address's too, like ssl: every connection to it starts with a header */
            l.proxy_protocol = true;
            socket_option = false;
        } else if (strcmp(opt, "reuseport") == 0)
            l.reuseport = true;
        else if (strcmp(opt, "deferred") == 0)
            l.deferred = true;
        else if (strncmp(opt, "backlog=", 8) == 0 &&
                 pt_conf_parse_uint(opt + 8, INT_MAX, &backlog) == 0)
            l.backlog = (int)backlog;
        else if (strncmp(opt, "backlog=", 8) == 0)
            rc = pt_conf_bad(cx, d, i, "invalid backlog \"%s\" in \"listen\"", opt + 8);
        else if (strcmp(opt, "notsent_lowat=off") == 0)
            l.notsent_lowat = 0;
        else if (strncmp(opt, "notsent_lowat=", 14) == 0 && pt_parse_size(opt + 14, &lowat) == 0 &&
                 lowat > 0 && lowat <= INT_MAX)
            l.notsent_lowat = (int)lowat;
        else if (strncmp(opt, "notsent_lowat=", 14) == 0)
            rc = pt_conf_bad(cx, d, i, "invalid notsent_lowat \"%s\" in \"listen\"", opt + 14);
        else
            rc = pt_conf_bad(cx, d, i, "invalid parameter \"%s\" in \"listen\"", opt);
        l.options |= socket_option;
    }
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        char buf[300];
        if (same_addr(&(*v)[i], &l))
            rc = pt_conf_bad(cx, d, 1, "duplicate listen \"%s\"", addr_str(&l, buf, sizeof buf));
    }
    if (rc < 0) {
        free(l.host);
        free(l.port);
        return rc;
    }
    *PUSH(*v, *n) = l;
    return 0;
}

/* ---- what a server or a location sets ---- */

/* server_name: exact names, "*.example.com", ".example.com" (the name and its subdomains),
 * "mail.*", and "~REGEX" (PCRE2, ignoring case, as nginx; its captures are variables). A "*"
 * anywhere else is refused: nginx takes only these forms. */
static int set_names(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    char ***v = field;
    size_t *n = aux;
    pt_conf_server *s = cx->srv;
    for (size_t i = 1; i < d->nw; i++) {
        const char *w = d->w[i].s;
        if (w[0] == '~') {
            char why[200];
            pt_regex *re = pt_regex_new(w + 1, true, why, sizeof why);
            if (!re)
                return pt_conf_bad(cx, d, i,
                                   "invalid regular expression \"%s\" in "
                                   "\"server_name\": %s",
                                   w + 1, why);
            *PUSH(s->name_regexes, s->nname_regexes) = re;
            pt_conf_capture_names(cx, re);
        } else {
            const char *star = strchr(w, '*');
            size_t len = strlen(w);
            bool leading = star == w && w[1] == '.' && len > 2 && !strchr(w + 1, '*');
            bool trailing =
                star == w + len - 1 && len > 2 && w[len - 2] == '.' && strchr(w, '*') == star;
            if (star && !leading && !trailing)
                return pt_conf_bad(cx, d, i, "invalid server name or wildcard \"%s\"", w);
            if (w[0] == '.' && len < 2)
                return pt_conf_bad(cx, d, i, "invalid server name \"%s\"", w);
        }
        char *name = *PUSH(*v, *n) = xstrdup(w);
        /* Host matching is case-insensitive; lower case once here so it is a memcmp later.
         * A regex keeps its case (it may contain classes like \D). */
        if (name[0] != '~')
            lower(name);
    }
    return 0;
}

static bool seen_here(const pt_conf_loader *cx, const void *field)
{
    for (size_t k = 0; k < cx->nseen; k++)
        if (cx->seen[k] == field)
            return true;
    return false;
}

/* The place of the directory files come from, at the level being read. */
static pt_conf_place *place_here(pt_conf_loader *cx)
{
    return cx->loc ? &cx->loc->root_at : cx->srv ? &cx->srv->root_at : &cx->conf->root_at;
}

/* root and alias exclude each other in a location, as in nginx; a root replaces the alias a
 * nested location inherited. */
static int set_root(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    if (cx->loc && seen_here(cx, &cx->loc->alias))
        return pt_conf_bad(cx, d, 0,
                           "\"root\" directive is duplicate, \"alias\" directive was specified "
                           "earlier");
    pt_conf_value v = pt_conf_word_value(cx, d, 1);
    int rc = pt_conf_set_root(cx->conf, field, aux, &v);
    if (rc == 0)
        *place_here(cx) = (pt_conf_place){d->file, d->w[0].line, d->w[0].col};
    if (rc == 0 && cx->loc) {
        free(cx->loc->alias);
        free(cx->loc->alias_of);
        cx->loc->alias = cx->loc->alias_of = NULL;
    }
    return rc;
}

int pt_conf_set_root(const pt_conf *c, char **root, bool *named, const pt_conf_value *v)
{
    *named = true;
    return pt_conf_path(c, root, v);
}

static int set_alias(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    if (cx->loc->match == PT_MATCH_REGEX || cx->loc->match == PT_MATCH_NAMED)
        return pt_conf_bad(cx, d, 0, "\"alias\" in a %s location is not supported",
                           cx->loc->match == PT_MATCH_NAMED ? "named" : "regular expression");
    if (seen_here(cx, &cx->loc->root))
        return pt_conf_bad(cx, d, 0,
                           "\"alias\" directive is duplicate, \"root\" directive was specified "
                           "earlier");
    int rc = pt_conf_set_path(cx, d, field, aux);
    if (rc == 0) {
        cx->loc->root_at = (pt_conf_place){d->file, d->w[0].line, d->w[0].col};
        free(cx->loc->alias_of);
        cx->loc->alias_of = xstrdup(cx->loc->path);
    }
    return rc;
}

static int set_index(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    char ***v = field;
    size_t *n = aux;
    for (size_t i = 1; i < d->nw; i++) {
        if (!d->w[i].s[0])
            return pt_conf_bad(cx, d, i, "invalid file name \"\" in \"%s\"", d->w[0].s);
    }
    /* replaces what the server inherited */
    strv_clear(v, n);
    for (size_t i = 1; i < d->nw; i++)
        *PUSH(*v, *n) = xstrdup(d->w[i].s);
    return 0;
}

int pt_conf_set_error_log(const pt_conf *c, char **log, const pt_conf_value *v)
{
    if (!v->s[0])
        return pt_conf_refuse(v, "invalid path \"\" in \"%s\"", v->name);
    /* nginx would write to a file named "off"; nobody means that */
    if (strcmp(v->s, "off") == 0)
        return pt_conf_refuse(v,
                              "\"error_log off\" is not supported, use \"error_log stderr crit\"");
    int rc = pt_conf_check_log_path(v);
    if (rc < 0)
        return rc;
    free(*log);
    *log = log_path(c, v->s);
    return 0;
}

/* `error_log PATH|stderr [LEVEL];` */
static int set_error_log(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    static const struct {
        const char *name;
        pt_log_level level;
    } levels[] = {{"debug", PT_LOG_DEBUG}, {"info", PT_LOG_INFO},   {"notice", PT_LOG_NOTICE},
                  {"warn", PT_LOG_WARN},   {"error", PT_LOG_ERROR}, {"crit", PT_LOG_CRIT},
                  {"alert", PT_LOG_CRIT},  {"emerg", PT_LOG_CRIT}};
    pt_log_level *level = aux;
    size_t i = 0;
    pt_conf_value v = pt_conf_word_value(cx, d, 1);
    int rc = pt_conf_set_error_log(cx->conf, field, &v);
    if (rc < 0 || d->nw == 2)
        return rc;
    while (i < sizeof levels / sizeof *levels && strcmp(d->w[2].s, levels[i].name) != 0)
        i++;
    if (i == sizeof levels / sizeof *levels)
        return pt_conf_bad(cx, d, 2, "invalid log level \"%s\"", d->w[2].s);
    *level = levels[i].level;
    return 0;
}

static int set_types(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_type **v = field;
    size_t *n = aux;
    if (cx->first) {
        /* the first types block at a level replaces the inherited table, as in nginx */
        types_free(*v, *n);
        *v = NULL;
        *n = 0;
    }
    for (size_t k = 0; k < d->nkids; k++) {
        const pt_conf_node *t = &d->kids[k];
        if (t->block)
            return pt_conf_fail(cx, -EINVAL, t->file, t->tline, t->tcol,
                                "directive \"%s\" is not terminated by \";\"", t->w[0].s);
        if (t->nw < 2)
            return pt_conf_bad(cx, t, 0, "no extensions for type \"%s\"", t->w[0].s);
        for (size_t i = 1; i < t->nw; i++) {
            char *ext = xstrdup(t->w[i].s);
            lower(ext);
            size_t j = 0;
            while (j < *n && strcmp((*v)[j].ext, ext) != 0)
                j++;
            if (j < *n) { /* a later type for an extension wins, as in nginx */
                free(ext);
                free((*v)[j].type);
                (*v)[j].type = xstrdup(t->w[0].s);
            } else {
                *PUSH(*v, *n) = (pt_conf_type){xstrdup(t->w[0].s), ext};
            }
        }
    }
    return 0;
}

/* ---- what a location answers with, when not with files or a proxy ---- */

const char *pt_conf_handler_directive(pt_handler_kind kind)
{
    switch (kind) {
    case PT_HANDLER_STATUS:
        return "status";
    case PT_HANDLER_RETURN:
        return "return";
    case PT_HANDLER_PROXY:
        return "proxy_pass";
    case PT_HANDLER_METRICS:
        return "metrics";
    default:
        return "root";
    }
}

/* `status;` and `metrics;`: the location answers with that page, and nothing else. */
static int set_page(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_handler_kind kind = d->w[0].s[0] == 's' ? PT_HANDLER_STATUS : PT_HANDLER_METRICS;
    pt_handler_kind *h = &cx->loc->handler;
    if (*h != PT_HANDLER_STATIC && *h != kind)
        return pt_conf_bad(cx, d, 0, "\"%s\" and \"%s\" in one location",
                           pt_conf_handler_directive(kind), pt_conf_handler_directive(*h));
    *h = kind;
    return 0;
}

static bool is_redirect(uint64_t code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/* `return CODE [URL|TEXT];` or `return URL;` */
static int set_return(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_return *r = field;
    const char *text = d->nw == 3 ? d->w[2].s : NULL;
    size_t ti = 2;
    uint64_t code;
    if (pt_conf_parse_uint(arg1(d), 999, &code) == 0) {
        if (code < 200 || code > 599)
            return pt_conf_bad(cx, d, 1, "invalid return code \"%s\", it must be 200..599",
                               arg1(d));
    } else if (d->nw == 2 &&
               (strncmp(arg1(d), "http://", 7) == 0 || strncmp(arg1(d), "https://", 8) == 0 ||
                strncmp(arg1(d), "$scheme", 7) == 0 || strncmp(arg1(d), "${scheme}", 9) == 0)) {
        code = 302;
        text = arg1(d);
        ti = 1;
    } else {
        return pt_conf_bad(cx, d, 1, "invalid return code \"%s\"", arg1(d));
    }
    if (cx->loc &&
        (cx->loc->handler == PT_HANDLER_STATUS || cx->loc->handler == PT_HANDLER_METRICS))
        return pt_conf_bad(cx, d, 0, "\"%s\" and \"return\" in one location",
                           pt_conf_handler_directive(cx->loc->handler));
    for (const char *p = text ? strchr(text, '$') : NULL; p; p = strchr(p + 1, '$')) {
        pt_var_ref v = pt_var_parse(p);
        if (p[1] == '{' && v.malformed)
            return pt_conf_bad(cx, d, ti, "invalid variable name in \"return\"");
        if (!pt_conf_var_ok(cx, PT_VARS_RETURN, &v))
            return pt_conf_bad(cx, d, ti, "unknown variable \"$%.*s\" in \"return\"",
                               (int)v.name.len, v.name.p);
    }
    if (text && is_redirect(code))
        for (const char *p = text; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                return pt_conf_bad(cx, d, ti, "invalid URL \"%s\" in \"return\"", text);
    pt_conf_set_return(r, cx->loc ? &cx->loc->handler : NULL, (int)code, text);
    pt_conf_script_return(cx, (int)code, text); /* a step of the level's script (rewrite.c) */
    return 0;
}

void pt_conf_set_return(pt_conf_return *r, pt_handler_kind *handler, int code, const char *text)
{
    free(r->text);
    r->code = code;
    r->text = xstrdup(text);
    if (handler)
        *handler = PT_HANDLER_RETURN;
}

/* `regex_match_limit N;`: the bound on one match's work of the level's regexes (PCRE2's match
 * limit): a location's or a rewrite's match that reaches it answers 500, a server_name's goes
 * on to the next name. */
static int set_match_limit(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    uint64_t n;
    if (pt_conf_parse_uint(arg1(d), UINT32_MAX, &n) < 0 || n == 0)
        return pt_conf_bad(cx, d, 1,
                           "invalid value \"%s\" in \"regex_match_limit\", it must be "
                           "1..%" PRIu32,
                           arg1(d), UINT32_MAX);
    *(uint32_t *)field = (uint32_t)n;
    return 0;
}

/* ---- building the servers and their locations ---- */

/* Reads the match and path of a location block into `l`. */
static int location_path(pt_conf_loader *cx, const pt_conf_node *d, pt_conf_location *l)
{
    const char *mod = d->nw == 3 ? d->w[1].s : "", *path = d->w[d->nw - 1].s;
    size_t at = d->nw - 1;
    if (d->nw == 2) { /* "=/x" and "^~/x" need no space, as in nginx */
        if (path[0] == '=' && path[1])
            mod = "=", path++;
        else if (strncmp(path, "^~", 2) == 0 && path[2])
            mod = "^~", path += 2;
    }
    if (d->nw == 2 && path[0] == '~') /* "~RE" and "~*RE", as nginx reads them */
        mod = path[1] == '*' ? "~*" : "~", path += strlen(mod);
    if (strcmp(mod, "~") == 0 || strcmp(mod, "~*") == 0) {
        /* PCRE2 (nginx's syntax), compiled here once: -t reports an error with its place in
         * the pattern, and the router matches with what the conf holds. */
        l->icase = mod[1] == '*';
        if (!path[0])
            return pt_conf_bad(cx, d, at, "empty regular expression in \"location\"");
        char why[200];
        pt_regex *re = pt_regex_new(path, l->icase, why, sizeof why);
        if (!re)
            return pt_conf_bad(cx, d, at, "invalid regular expression \"%s\": %s", path, why);
        l->re = re;
        pt_conf_capture_names(cx, re);
        pt_conf_location_path(l, PT_MATCH_REGEX, path);
        return 0;
    }
    if (path[0] == '@') {
        if (mod[0] || !path[1])
            return pt_conf_bad(cx, d, mod[0] ? 1 : at, "invalid named location \"%s\"", path);
        pt_conf_location_path(l, PT_MATCH_NAMED, path);
        return 0;
    }
    if (mod[0] && strcmp(mod, "=") != 0 && strcmp(mod, "^~") != 0)
        return pt_conf_bad(cx, d, 1, "invalid location modifier \"%s\"", mod);
    if (path[0] != '/')
        return pt_conf_bad(cx, d, at, "invalid location path \"%s\", it must start with \"/\"",
                           path);
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return pt_conf_bad(cx, d, at, "invalid location path");
    pt_conf_location_path(l, strcmp(mod, "=") == 0 ? PT_MATCH_EXACT : PT_MATCH_PREFIX, path);
    l->no_regex = strcmp(mod, "^~") == 0;
    return 0;
}

void pt_conf_location_path(pt_conf_location *l, pt_conf_match match, const char *path)
{
    l->match = match;
    free(l->path);
    l->path = xstrdup(path);
}

/* Where a location may stand, as nginx says: not in an exact or a named location, a named one
 * only in a server, and a prefix or exact one under the path of the location holding it (for a
 * regex holding it, its pattern as written, as nginx compares them). */
static int check_nesting(pt_conf_loader *cx, const pt_conf_node *d, const pt_conf_location *up,
                         const pt_conf_location *l)
{
    size_t at = d->nw - 1;
    if (up->match == PT_MATCH_EXACT || up->match == PT_MATCH_NAMED)
        return pt_conf_bad(cx, d, at, "location \"%s\" cannot be inside the %s location \"%s\"",
                           l->path, up->match == PT_MATCH_EXACT ? "exact" : "named", up->path);
    if (l->match == PT_MATCH_NAMED)
        return pt_conf_bad(cx, d, at, "named location \"%s\" can be on the server level only",
                           l->path);
    if (l->match != PT_MATCH_REGEX && strncmp(l->path, up->path, strlen(up->path)) != 0)
        return pt_conf_bad(cx, d, at, "location \"%s\" is outside location \"%s\"", l->path,
                           up->path);
    return 0;
}

/* The same bound on the regexes of a script: its rewrites' and its if conditions', the steps of
 * its if blocks included. */
static void script_limits(const pt_conf_script *sc, uint32_t limit)
{
    for (size_t i = 0; i < sc->n; i++) {
        const pt_conf_step *st = &sc->steps[i];
        if (st->kind == PT_STEP_REWRITE)
            pt_regex_set_limit(st->rewrite.re, limit);
        if (st->kind == PT_STEP_IF) {
            pt_regex_set_limit(st->cond->cond.re, limit);
            script_limits(&st->cond->body, limit);
        }
    }
}

/* The bound on one match's work of every regex `l` holds (regex_match_limit): its pattern, its
 * script's, its gzip_disable expressions. */
static void location_limits(pt_conf_location *l)
{
    pt_regex_set_limit(l->re, l->regex_match_limit);
    script_limits(&l->script, l->regex_match_limit);
    for (size_t i = 0; i < l->compress.ndisable; i++)
        pt_regex_set_limit(l->compress.disable[i], l->regex_match_limit);
}

/* The same for a server's own: its server_name regexes, script and gzip_disable. */
static void server_limits(pt_conf_server *s)
{
    for (size_t i = 0; i < s->nname_regexes; i++)
        pt_regex_set_limit(s->name_regexes[i], s->regex_match_limit);
    script_limits(&s->script, s->regex_match_limit);
    for (size_t i = 0; i < s->compress.ndisable; i++)
        pt_regex_set_limit(s->compress.disable[i], s->regex_match_limit);
}

/* Fills the location of block `d` in server `s`, starting from the values of the location at
 * `parent` (PT_CONF_NO_PARENT: the server's); then the locations it holds, from its values. */
static int build_location(pt_conf_loader *cx, pt_conf_server *s, size_t parent,
                          const pt_conf_node *d)
{
    int line = d->w[0].line, col = d->w[0].col;
    pt_conf_location *l = parent == PT_CONF_NO_PARENT
                              ? pt_conf_location_add(s, d->file, line, col)
                              : pt_conf_location_nest(s, parent, d->file, line, col);
    size_t self = s->nlocations - 1;
    int rc = location_path(cx, d, l);
    if (rc == 0 && parent != PT_CONF_NO_PARENT)
        rc = check_nesting(cx, d, &s->locations[parent], l);
    /* the same match and path twice at one level; nginx's duplicate */
    for (size_t i = 0; rc == 0 && i < self; i++) {
        const pt_conf_location *o = &s->locations[i];
        if (o->parent == parent && o->match == l->match && o->icase == l->icase &&
            strcmp(o->path, l->path) == 0)
            rc = pt_conf_bad(cx, d, d->nw - 1, "duplicate location \"%s\"", l->path);
    }
    if (rc < 0) {
        pt_conf_location_pop(s); /* its directives are not read: it has no valid path */
        return rc;
    }
    /* the location blocks it holds are gathered after its server's (in cx->locs), built once
     * its own directives are read, and dropped from the list again */
    size_t first = cx->nlocs;
    cx->loc = l;
    cx->nseen = 0;
    rc = pt_conf_apply(cx, d->kids, d->nkids, C_LOCATION);
    cx->loc = NULL;
    for (size_t m = 0; rc == 0 && m < cx->nmodules; m++)
        if (cx->modules[m]->location_done)
            rc = cx->modules[m]->location_done(cx, l);
    location_limits(l);
    size_t end = cx->nlocs;
    for (size_t i = first; i < end; i++) {
        int r = pt_conf_keep(cx, build_location(cx, s, self, cx->locs[i]));
        rc = rc ? rc : r;
    }
    cx->nlocs = first;
    return rc;
}

/* Fills and checks the server of block `d`, starting from the top-level values. */
static int build_server(pt_conf_loader *cx, const pt_conf_node *d)
{
    pt_conf_server *s = pt_conf_server_add(cx->conf, d->file, d->w[0].line, d->w[0].col);
    cx->srv = s;
    cx->nseen = 0;
    cx->nlocs = 0;
    cx->nrefs = cx->ntoprefs;
    int rc = pt_conf_apply(cx, d->kids, d->nkids, C_SERVER);
    server_limits(s);
    /* The maps' regexes are the top level's (maps stand there only). */
    const pt_conf_vars *v = &cx->conf->vars;
    for (size_t i = 0; i < v->nmaps; i++)
        for (size_t j = 0; j < v->maps[i].nregex; j++)
            pt_regex_set_limit(v->maps[i].regex[j].re, cx->conf->regex_match_limit);
    /* Every location is read even after an error, so a check reports theirs too. */
    size_t nlocs = cx->nlocs;
    for (size_t i = 0; i < nlocs; i++) {
        int r = pt_conf_keep(cx, build_location(cx, s, PT_CONF_NO_PARENT, cx->locs[i]));
        rc = rc ? rc : r;
    }
    cx->srv = NULL;
    for (size_t i = 0; rc == 0 && i < cx->nrefs; i++) {
        const pt_conf_named_ref *r = &cx->refs[i];
        size_t k = 0;
        while (k < s->nlocations && (s->locations[k].match != PT_MATCH_NAMED ||
                                     strcmp(s->locations[k].path, r->d->w[r->i].s) != 0))
            k++;
        if (k == s->nlocations)
            rc = pt_conf_bad(cx, r->d, r->i, "no location \"%s\" in the server at %s:%d",
                             r->d->w[r->i].s, s->file, s->line);
    }
    if (rc < 0)
        return rc;
    if (!s->nlistens) {
        *PUSH(s->listens, s->nlistens) = (pt_conf_listen){
            .port = xstrdup(PT_CONF_DEFAULT_PORT),
            .backlog = -1,
            .notsent_lowat = PT_CONF_NOTSENT_LOWAT,
            .file = s->file,
            .line = s->line,
            .col = s->col,
        };
    }
    for (size_t i = 0; i < s->nlistens; i++) {
        if (s->listens[i].backlog < 0)
            s->listens[i].backlog =
                s->limits.max_waiting > INT_MAX ? INT_MAX : (int)s->limits.max_waiting;
    }
    for (size_t m = 0; rc == 0 && m < cx->nmodules; m++)
        if (cx->modules[m]->server_done)
            rc = cx->modules[m]->server_done(cx, s);
    return rc;
}

/* `ssl` on one listen makes the whole address speak TLS (nginx's rule): every other server on
 * it needs certificates too. Port 0 listens are each an address of their own. */
static int check_tls_addresses(pt_conf_loader *cx)
{
    const pt_conf *c = cx->conf;
    for (size_t s = 0; s < c->nservers; s++) {
        const pt_conf_server *srv = &c->servers[s];
        for (size_t i = 0; i < srv->nlistens && !srv->ssl.ncerts; i++) {
            const pt_conf_listen *l = &srv->listens[i];
            if (strcmp(l->port, "0") == 0)
                continue;
            for (size_t t = 0; t < c->nservers; t++) {
                for (size_t j = 0; j < c->servers[t].nlistens; j++) {
                    const pt_conf_listen *m = &c->servers[t].listens[j];
                    char buf[300];
                    if (m->ssl && same_addr(l, m))
                        return pt_conf_fail(
                            cx, -EINVAL, l->file, l->line, l->col,
                            "no \"ssl_certificate\" is defined for this server, and "
                            "\"%s\" speaks TLS (\"ssl\" in %s:%d)",
                            addr_str(l, buf, sizeof buf), m->file, m->line);
                }
            }
        }
    }
    return 0;
}

/* One default server per address, as in nginx. */
static bool is_default(const pt_conf_listen *l)
{
    return l->default_server;
}

/* The socket options of an address (reuseport, deferred, backlog=, notsent_lowat=) are given
 * by one of its listens, as in nginx; two that both give some would contradict each other.
 * Port 0 listens are each an address of their own. */
static bool gives_options(const pt_conf_listen *l)
{
    return l->options && strcmp(l->port, "0") != 0;
}

/* What `has` marks may stand on one listen per address, across servers: a second is an error
 * (`what` for \"ADDRESS\"), reported at the later one. */
static int check_once_per_address(pt_conf_loader *cx, bool (*has)(const pt_conf_listen *),
                                  const char *what)
{
    const pt_conf *c = cx->conf;
    for (size_t s = 0; s < c->nservers; s++) {
        for (size_t i = 0; i < c->servers[s].nlistens; i++) {
            const pt_conf_listen *l = &c->servers[s].listens[i];
            for (size_t t = 0; has(l) && t < s; t++) {
                for (size_t j = 0; j < c->servers[t].nlistens; j++) {
                    const pt_conf_listen *m = &c->servers[t].listens[j];
                    char buf[300];
                    if (has(m) && same_addr(l, m))
                        return pt_conf_fail(cx, -EINVAL, l->file, l->line, l->col, "%s for \"%s\"",
                                            what, addr_str(l, buf, sizeof buf));
                }
            }
        }
    }
    return 0;
}

/* The top level is read: the servers, each starting from its values wherever they were
 * written, then what spans servers. */
static int build_servers(pt_conf_loader *cx)
{
    int rc;
    if (!cx->nservers)
        return pt_conf_fail(cx, -EINVAL, cx->parse.files[0], cx->parse.eof_line, cx->parse.eof_col,
                            "no \"server\" block");
    int first = 0;
    for (size_t i = 0; i < cx->nservers; i++) {
        rc = pt_conf_keep(cx, build_server(cx, cx->servers[i]));
        first = first ? first : rc;
    }
    if (first < 0)
        return first;
    if ((rc = check_once_per_address(cx, is_default, "a duplicate default server")) == 0 &&
        (rc = check_once_per_address(cx, gives_options, "duplicate listen options")) == 0)
        rc = check_tls_addresses(cx);
    return rc;
}

#define LIMIT(f) BOTH(limits.f)

static const pt_conf_directive directives[] = {
    {"http", C_MAIN, F_BLOCK, 0, 0, set_http, NOWHERE},
    /* nginx's events block only matters for its connection bound; nginx bounds connections
     * per worker, porter per server process: close enough to take the number as is. */
    {"events", C_MAIN, F_BLOCK, 0, 0, set_events, NOWHERE},
    {"worker_connections", C_EVENTS, 0, 1, 1, pt_conf_set_count, LIMIT(max_concurrent)},
    {"server", C_TOP, F_BLOCK | F_MULTI, 0, 0, set_server, NOWHERE},
    {"location", C_SERVER | C_LOCATION, F_BLOCK | F_MULTI, 1, 2, set_location, NOWHERE},
    {"worker_processes", C_MAIN, 0, 1, 1, set_workers, TOP(worker_processes)},
    {"pid", C_MAIN, 0, 1, 1, pt_conf_set_path, TOP(pid_path)},
    {"user", C_MAIN, 0, 1, 2, set_user, TOP(user)},
    {"listen", C_SERVER, F_MULTI, 1, 9, set_listen, SRV(listens), SRV(nlistens)},
    {"server_name", C_SERVER, F_MULTI, 1, -1, set_names, SRV(names), SRV(nnames)},
    {"root", C_ALL, 0, 1, 1, set_root, ALL(root), ALL(root_named)},
    {"alias", C_LOCATION, 0, 1, 1, set_alias, LOC(alias)},
    {"index", C_ALL, 0, 1, -1, set_index, ALL(index), ALL(nindex)},
    {"error_log", C_ANY, 0, 1, 2, set_error_log, BOTH(error_log), BOTH(error_log_level)},
    {"sendfile", C_ALL, 0, 1, 1, pt_conf_set_flag, ALL(sendfile)},
    {"server_tokens", C_ANY, 0, 1, 1, pt_conf_set_flag, BOTH(server_tokens)},
    {"default_type", C_ANY, 0, 1, 1, pt_conf_set_string, BOTH(default_type)},
    {"types", C_ANY, F_BLOCK | F_MULTI, 0, 0, set_types, BOTH(types), BOTH(ntypes)},

    /* what a location answers with, when not with files or a proxy */
    /* not by their field (the handler they share): two of them say which two */
    {"status", C_LOCATION, 0, 0, 0, set_page, NOWHERE},
    {"metrics", C_LOCATION, 0, 0, 0, set_page, NOWHERE},
    {"return", C_SERVER | C_LOCATION | C_IF, 0, 1, 2, set_return, SRVLOC(ret)},
    {"regex_match_limit", C_ALL, 0, 1, 1, set_match_limit, ALL(regex_match_limit)},

    /* safety limits, by their pt_limits names */
    {"max_waiting", C_ANY, 0, 1, 1, pt_conf_set_count, LIMIT(max_waiting)},
    {"max_concurrent", C_ANY, 0, 1, 1, pt_conf_set_count, LIMIT(max_concurrent)},
    {"request_read_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(request_read_timeout)},
    {"max_request_line_length", C_ANY, 0, 1, 1, pt_conf_set_size, LIMIT(max_request_line_length)},
    {"max_request_headers", C_ANY, 0, 1, 1, pt_conf_set_count, LIMIT(max_request_headers)},
    {"max_request_header_length", C_ANY, 0, 1, 1, pt_conf_set_size,
     LIMIT(max_request_header_length)},
    {"max_request_body_length", C_ANY, 0, 1, 1, pt_conf_set_size, LIMIT(max_request_body_length)},
    {"response_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(response_timeout)},
    {"response_send_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(response_send_timeout)},
    {"shutdown_grace_period", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(shutdown_grace_period)},
    {"keepalive_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(keepalive_timeout)},
    {"keepalive_requests", C_ANY, 0, 1, 1, pt_conf_set_count, LIMIT(keepalive_requests)},
    {"request_body_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(request_body_timeout)},
    {"lingering_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(lingering_timeout)},
    {"max_concurrent_per_client", C_ANY, 0, 1, 1, pt_conf_set_count,
     LIMIT(max_concurrent_per_client)},
    /* nginx's names for some of them; they share the field, so giving both is a duplicate */
    {"client_max_body_size", C_ANY, 0, 1, 1, pt_conf_set_size, LIMIT(max_request_body_length)},
    {"client_header_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(request_read_timeout)},
    {"send_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(response_send_timeout)},
    {"client_body_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, LIMIT(request_body_timeout)},
};

const pt_conf_module pt_conf_core_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
    .conf_done = build_servers,
};
