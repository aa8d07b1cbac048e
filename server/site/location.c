/*
 * Locations: set up from the conf, matched per request, and the router that runs their
 * handlers (see location.h).
 */
#include "server/site/location.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/core/compress.h"
#include "server/core/cond.h"
#include "server/core/path.h"
#include "server/core/regex.h"
#include "server/core/vars.h"
#include "server/site/guard.h"
#include "server/site/limiter.h"
#include "server/site/site.h"

static void return_handle(pt_request *req);

/* Runs the handler the server installed in the virtual host for the location of `req` (a
 * location whose `return` a `break` skipped serves files; an `if` with proxy_pass that held
 * proxies). */
static void run_handler(pt_request *req)
{
    pt_handler_kind kind = req->location->handler;
    if (req->overlay && req->overlay->conf->pass)
        kind = PT_HANDLER_PROXY;
    req->vhost->handlers[kind == PT_HANDLER_RETURN ? PT_HANDLER_STATIC : kind](req);
}

/* ---- set-up ---- */

/* Builds the add_header lines `hs` (`nh` of them: "Name: value\r\n" each; with
 * `always_only` only those marked always) into a new string. nginx adds nothing for an empty
 * value. */
static char *lines_build(const pt_conf_header *hs, size_t nh, size_t *outlen, bool always_only)
{
    size_t n = 0;
    for (size_t i = 0; i < nh; i++)
        if ((!always_only || hs[i].always) && hs[i].value[0])
            n += strlen(hs[i].name) + strlen(hs[i].value) + 4;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t pos = 0;
    for (size_t i = 0; i < nh; i++) {
        const pt_conf_header *h = &hs[i];
        if ((always_only && !h->always) || !h->value[0])
            continue;
        pos += (size_t)sprintf(out + pos, "%s: %s\r\n", h->name, h->value);
    }
    *outlen = pos;
    return out;
}

static size_t filter_head_lines(const pt_response_filter *f, int status, time_t mtime, time_t now,
                                char *buf, size_t pos, size_t cap);
static size_t overlay_head_lines(const pt_response_filter *f, int status, time_t mtime, time_t now,
                                 char *buf, size_t pos, size_t cap);

/* The overlays of the `if` blocks of `loc` that change the answer (their ids the conf's). */
static int overlays_init(pt_location *loc)
{
    const pt_conf_script *sc = &loc->conf->script;
    size_t n = 0;
    for (size_t i = 0; i < sc->n; i++)
        if (sc->steps[i].cond && sc->steps[i].cond->overlay >= 0)
            n++;
    if (!n)
        return 0;
    loc->overlays = calloc(n, sizeof *loc->overlays);
    if (!loc->overlays)
        return -ENOMEM;
    loc->noverlays = n;
    for (size_t i = 0; i < sc->n; i++) {
        const pt_conf_if *f = sc->steps[i].cond;
        if (!f || f->overlay < 0)
            continue;
        pt_overlay *ov = &loc->overlays[f->overlay];
        *ov = (pt_overlay){.conf = f, .loc = loc};
        if (!f->nheaders)
            continue;
        ov->lines_ok = lines_build(f->headers, f->nheaders, &ov->lines_ok_len, false);
        ov->lines_always = lines_build(f->headers, f->nheaders, &ov->lines_always_len, true);
        if (!ov->lines_ok || !ov->lines_always)
            return -ENOMEM;
        ov->filter = (pt_response_filter){.head_lines = overlay_head_lines};
    }
    return 0;
}

/* Fills `loc` from `lc` (NULL: the server's own settings). */
static int location_init(pt_vhost *vh, pt_location *loc, const pt_conf_location *lc, char *err,
                         size_t errlen)
{
    const pt_conf_server *cs = vh->conf;
    loc->vhost = vh;
    loc->conf = lc;
    loc->dir_fd = vh->root_fd;
    loc->own_fd = false;
    if (lc) {
        loc->path = lc->path;
        loc->match = lc->match;
        loc->no_regex = lc->no_regex;
        loc->handler = lc->handler;
        loc->alias = lc->alias != NULL;
        loc->dir = lc->alias ? lc->alias : lc->root;
        loc->index = lc->index;
        loc->nindex = lc->nindex;
        loc->sendfile = lc->sendfile;
        loc->files = &lc->static_files;
        loc->compress = pt_conf_compress_active(&lc->compress);
        loc->access = pt_conf_access_active(&lc->access) ? &lc->access : NULL;
        loc->realip = pt_conf_realip_active(&lc->realip);
    } else {
        loc->path = "";
        loc->match = PT_MATCH_PREFIX;
        loc->handler = PT_HANDLER_STATIC;
        loc->dir = cs->root;
        loc->index = cs->index;
        loc->nindex = cs->nindex;
        loc->sendfile = cs->sendfile;
        loc->files = &cs->static_files;
        loc->compress = pt_conf_compress_active(&cs->compress);
        loc->access = pt_conf_access_active(&cs->access) ? &cs->access : NULL;
        loc->realip = pt_conf_realip_active(&cs->realip);
    }
    loc->path_len = strlen(loc->path);
    loc->re = lc ? lc->re : NULL;
    loc->root.dir = (pt_str){loc->dir, strlen(loc->dir)};
    if (loc->alias)
        loc->root.alias = (pt_str){lc->alias_of, strlen(lc->alias_of)};
    loc->expires_second = -1;
    loc->lines_ok =
        lines_build(loc->files->headers, loc->files->nheaders, &loc->lines_ok_len, false);
    loc->lines_always =
        lines_build(loc->files->headers, loc->files->nheaders, &loc->lines_always_len, true);
    if (!loc->lines_ok || !loc->lines_always || (lc && overlays_init(loc) < 0))
        return -ENOMEM;
    loc->filter = (pt_response_filter){.head_lines = filter_head_lines};
    int r = pt_location_limits_new(&loc->limits, lc ? &lc->limit : &cs->limit, vh->zones);
    if (r < 0) {
        snprintf(err, errlen, "%s:%d:%d: the limits of the location: %s", lc ? lc->file : cs->file,
                 lc ? lc->line : cs->line, lc ? lc->col : cs->col,
                 r == -EINVAL ? "no zones" : strerror(-r));
        return r;
    }

    /* The server's own directory is shared, unless it is a missing default and this location
     * names it: then the open below reports it. */
    if (loc->handler != PT_HANDLER_STATIC || (!loc->alias && strcmp(loc->dir, cs->root) == 0 &&
                                              (vh->root_fd >= 0 || !lc || !lc->root_named)))
        return 0;
    loc->dir_fd = open(loc->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (loc->dir_fd < 0) {
        int e = -errno;
        /* at the root or alias directive; a location that names none: the location itself */
        pt_conf_place at =
            lc->root_at.file ? lc->root_at : (pt_conf_place){lc->file, lc->line, lc->col};
        snprintf(err, errlen, "%s:%d:%d: %s \"%s\": %s", at.file, at.line, at.col,
                 loc->alias ? "alias" : "root", loc->dir, strerror(-e));
        return e;
    }
    loc->own_fd = true;
    return 0;
}

static int by_length_desc(const void *a, const void *b)
{
    const pt_conf_location *x = *(const pt_conf_location *const *)a;
    const pt_conf_location *y = *(const pt_conf_location *const *)b;
    size_t lx = strlen(x->path), ly = strlen(y->path);
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y; /* stable: file order */
}

/* One level of the table: where the locations a location holds start, and how many of each. */
typedef struct level {
    size_t first, nexact, nprefix, nregex;
} level;

/* Appends to `order` (from `k`) the locations of `cs` held by the location `parent` (an index
 * in cs->locations, or PT_CONF_NO_PARENT), in the order they are searched: exact ones, prefixes
 * longest first, regexes as written. Returns the new end. */
static size_t put_level(const pt_conf_server *cs, size_t parent, const pt_conf_location **order,
                        size_t k, level *lv)
{
    static const pt_conf_match kinds[] = {PT_MATCH_EXACT, PT_MATCH_PREFIX, PT_MATCH_REGEX};
    size_t *counts[] = {&lv->nexact, &lv->nprefix, &lv->nregex};
    lv->first = k;
    for (size_t m = 0; m < 3; m++) {
        size_t from = k;
        for (size_t i = 0; i < cs->nlocations; i++)
            if (cs->locations[i].parent == parent && cs->locations[i].match == kinds[m])
                order[k++] = &cs->locations[i];
        *counts[m] = k - from;
        if (kinds[m] == PT_MATCH_PREFIX)
            qsort(order + from, k - from, sizeof *order, by_length_desc);
    }
    return k;
}

int pt_locations_setup(pt_vhost *vh, char *err, size_t errlen)
{
    const pt_conf_server *cs = vh->conf;
    size_t n = cs->nlocations + 1;
    const pt_conf_location **order = calloc(n, sizeof *order);
    level *levels = calloc(n, sizeof *levels);
    vh->locations = calloc(n, sizeof *vh->locations);
    if (!order || !levels || !vh->locations) {
        free(order);
        free(levels);
        return -ENOMEM;
    }
    vh->nlocations = n;
    for (size_t i = 0; i < n; i++)
        vh->locations[i].dir_fd = -1;
    /* The server's level first, then each location's in the order of the table: every level
     * is a run of its own. Named ones follow, and the server's own (holding its level) last. */
    size_t k = put_level(cs, PT_CONF_NO_PARENT, order, 0, &levels[n - 1]);
    for (size_t t = 0; t < k; t++)
        k = put_level(cs, (size_t)(order[t] - cs->locations), order, k, &levels[t]);
    vh->nnamed = 0;
    for (size_t i = 0; i < cs->nlocations; i++)
        if (cs->locations[i].match == PT_MATCH_NAMED) {
            order[k++] = &cs->locations[i];
            vh->nnamed++;
        }
    order[k] = NULL; /* the server's own */
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        pt_location *loc = &vh->locations[i];
        r = location_init(vh, loc, order[i], err, errlen);
        loc->nested = vh->locations + levels[i].first;
        loc->nested_exact = levels[i].nexact;
        loc->nested_prefix = levels[i].nprefix;
        loc->nested_regex = levels[i].nregex;
    }
    free(order);
    free(levels);
    if (r == -ENOMEM)
        snprintf(err, errlen, "%s:%d: out of memory", cs->file, cs->line);
    return r;
}

void pt_locations_dispose(pt_vhost *vh)
{
    for (size_t i = 0; i < vh->nlocations; i++) {
        pt_location *loc = &vh->locations[i];
        if (loc->own_fd)
            close(loc->dir_fd);
        free(loc->lines_ok);
        free(loc->lines_always);
        for (size_t k = 0; k < loc->noverlays; k++) {
            free(loc->overlays[k].lines_ok);
            free(loc->overlays[k].lines_always);
        }
        free(loc->overlays);
        pt_location_limits_free(loc->limits);
    }
    free(vh->locations);
    vh->locations = NULL;
    vh->nlocations = vh->nnamed = 0;
}

/* ---- matching ---- */

pt_location *pt_location_base(const pt_vhost *vh)
{
    return &vh->locations[vh->nlocations - 1];
}

/* Whether the prefix location `l` takes `path`. */
static bool prefix_takes(const pt_location *l, const char *path, size_t len)
{
    size_t n = l->path_len, a = l->root.alias.len;
    if (len < n || memcmp(l->path, path, n) != 0)
        return false;
    /* an alias replaces whole segments only */
    return !l->alias || len <= a || path[a] == '/' || l->root.alias.p[a - 1] == '/';
}

/* What a search of one level ended with (nginx's NGX_DECLINED, NGX_AGAIN, NGX_OK, NGX_ERROR). */
enum { FOUND_NONE, FOUND_PREFIX, FOUND, FOUND_LIMIT };

/* nginx's ngx_http_core_find_location over the locations `up` holds: an exact one equal to the
 * path ends the search; else the longest prefix is remembered in *found and the locations it
 * holds are searched the same way; then, unless that prefix is `^~`, this level's regexes in the
 * order written, one that matches ending the search (once the locations it holds are searched);
 * else what was remembered stays, the deepest prefix. A nested `^~` thus stops the regexes of
 * its own level only. */
static int find_in(const pt_location *up, const char *path, size_t len, pt_request *req,
                   pt_location **found)
{
    pt_location *l = up->nested;
    size_t nstatic = up->nested_exact + up->nested_prefix;
    for (size_t i = 0; i < up->nested_exact; i++)
        if (l[i].path_len == len && memcmp(l[i].path, path, len) == 0) {
            *found = &l[i];
            return FOUND;
        }
    int rc = FOUND_NONE;
    for (size_t i = up->nested_exact; i < nstatic; i++) {
        if (!prefix_takes(&l[i], path, len))
            continue;
        *found = &l[i];
        rc = find_in(&l[i], path, len, req, found);
        if (rc == FOUND || rc == FOUND_LIMIT)
            return rc;
        if (l[i].no_regex)
            return FOUND_PREFIX;
        rc = FOUND_PREFIX;
        break;
    }
    for (size_t i = nstatic; i < nstatic + up->nested_regex; i++) {
        pt_captures caps;
        int m = pt_regex_match(l[i].re, path, len, &caps);
        if (m == 1) {
            pt_request_keep_captures(req, &caps);
            *found = &l[i];
            return find_in(&l[i], path, len, req, found) == FOUND_LIMIT ? FOUND_LIMIT : FOUND;
        }
        if (m < 0) {
            pt_request_log(req, PT_LOG_ERROR, "location \"%s\": the regex match limit was hit",
                           pt_regex_pattern(l[i].re));
            return FOUND_LIMIT;
        }
    }
    return rc;
}

pt_location *pt_location_find(const pt_vhost *vh, const char *path, size_t len, pt_request *req)
{
    pt_location *found = pt_location_base(vh);
    return find_in(found, path, len, req, &found) == FOUND_LIMIT ? NULL : found;
}

pt_location *pt_location_named(const pt_vhost *vh, const char *name, size_t len)
{
    for (size_t i = vh->nlocations - 1 - vh->nnamed; i + 1 < vh->nlocations; i++)
        if (vh->locations[i].path_len == len && memcmp(vh->locations[i].path, name, len) == 0)
            return &vh->locations[i];
    return NULL;
}

/* ---- routing ---- */

int pt_route_redirect(pt_request *req, const char *uri, size_t len)
{
    char *copy = pt_request_alloc(req, len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, uri, len);
    copy[len] = '\0';
    req->redirect = (pt_str){copy, len};
    return 0;
}

/* ---- return ---- */

/* The longest expansion of a `return` text: it goes into the response head as a Location. */
#define RETURN_MAX 4096

/* Bytes that may not stand as they are in a URL: in a Location header they are sent
 * percent-encoded, so no header can be split or a path read differently. `path` also encodes
 * what would end a path or start an escape (the decoded $uri). */
static bool needs_escape(unsigned char c, bool path)
{
    if (c <= 0x20 || c >= 0x7f)
        return true;
    return path && strchr("\"#%<>?\\^`{|}", c) != NULL;
}

/* Where a `return` text is expanded. */
typedef struct return_text {
    char *buf;
    size_t pos, cap; /* pos above cap: it did not fit */
    bool url;        /* a Location: the values percent-encoded */
} return_text;

static void put_piece(void *ctx, const pt_var_ref *ref, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    return_text *t = ctx;
    if (ref->id == PT_VAR_TEXT || !t->url) {
        t->pos = pt_append(t->buf, t->pos, t->cap, p, n);
        return;
    }
    bool path = ref->id == PT_VAR_URI;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (needs_escape(c, path)) {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            t->pos = pt_append(t->buf, t->pos, t->cap, e, 3);
        } else {
            t->pos = pt_append(t->buf, t->pos, t->cap, (const char *)&c, 1);
        }
    }
}

/* Expands the variables of `text` into `buf`; returns the length (above `cap`: it did not fit). */
static size_t expand(const pt_request *req, const char *text, char *buf, size_t cap, bool url)
{
    return_text t = {buf, 0, cap, url};
    pt_vars_expand(req, text, put_piece, &t);
    return t.pos;
}

static bool status_is_redirect(int code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/* Answers `req` as `return CODE [TEXT]` says: a redirect to the expanded URL, the expanded text
 * as the body, or the code's own page (through error_page for errors). */
/* Answers a redirect to `url` (a 3xx `code`: `return`'s, a rewrite's), with the code's page. */
static void respond_redirect(pt_request *req, int code, const char *url)
{
    char page[512];
    pt_response r;
    pt_response_init(&r, code);
    r.location = url;
    r.content_type = "text/html";
    r.body = page;
    r.body_len = pt_http_status_page(code, page, sizeof page);
    pt_request_respond(req, &r);
}

static void respond_return(pt_request *req, const pt_conf_return *ret)
{
    int code = ret->code;
    if (code == 444) {
        /* nginx's: the connection is closed with no answer (HTTP/2: the stream is reset) */
        pt_request_access_log(req, 444, 0);
        pt_request_abandon(req);
        return;
    }
    bool redirect = status_is_redirect(code);
    if (!ret->text && code >= 400) {
        pt_route_error(req, code);
        return;
    }
    char text[RETURN_MAX + 1], page[512];
    size_t len = ret->text ? expand(req, ret->text, text, RETURN_MAX, redirect) : 0;
    if (len > RETURN_MAX) {
        pt_request_log(req, PT_LOG_ERROR, "the text of \"return\" is longer than %d bytes",
                       RETURN_MAX);
        pt_route_error(req, 500);
        return;
    }
    text[len] = '\0';
    if (redirect && ret->text) {
        respond_redirect(req, code, text);
        return;
    }
    pt_response r;
    pt_response_init(&r, code);
    if (!ret->text) {
        if (code >= 300) {
            r.content_type = "text/html";
            r.body = page;
            r.body_len = pt_http_status_page(code, page, sizeof page);
        }
    } else {
        r.content_type = req->vhost->conf->default_type;
        r.body = text;
        r.body_len = len;
    }
    pt_request_respond(req, &r);
}

static void return_handle(pt_request *req)
{
    respond_return(req, &req->location->conf->ret);
}

/* ---- rewrite ---- */

/* What the router does after a level's script. */
typedef enum rewritten {
    RW_ON,       /* the script ran to its end: the location goes on */
    RW_BREAK,    /* `break`: the location's handler answers req->norm_path, not its return */
    RW_ROUTE,    /* a new URI finds its location: req->redirect holds it */
    RW_ANSWERED, /* a redirect was answered, or an error */
} rewritten;

static bool is_absolute_url(const char *s, size_t n)
{
    return (n > 7 && strncmp(s, "http://", 7) == 0) || (n > 8 && strncmp(s, "https://", 8) == 0);
}

/* The new query of a rewrite to `uri` (which may hold '?'): its own arguments, then the
 * request's unless `uri` ends in '?' (nginx's rule). Written after `uri` in `buf`. */
static size_t with_args(const pt_request *req, char *buf, size_t len, size_t cap)
{
    if (len && buf[len - 1] == '?')
        return len - 1; /* a trailing '?': the request's arguments are not added */
    const char *q = memchr(buf, '?', len);
    if (!req->query.len)
        return len;
    len = pt_append(buf, len, cap, q ? "&" : "?", 1);
    return pt_append(buf, len, cap, req->query.p, req->query.len);
}

/* Makes the path part of `uri` (before any '?') the request's $uri, normalised into the
 * arena, and the rest its query. */
static int set_uri(pt_request *req, const char *uri, size_t len)
{
    const char *q = memchr(uri, '?', len);
    size_t plen = q ? (size_t)(q - uri) : len;
    char *norm = pt_request_alloc(req, plen + 257); /* room for an index file name */
    if (q) {
        size_t qlen = len - plen - 1;
        char *query = pt_request_alloc(req, qlen + 1);
        if (!query)
            return -ENOMEM;
        memcpy(query, q + 1, qlen);
        query[qlen] = '\0';
        req->query = (pt_str){query, qlen};
    }
    if (!norm)
        return -ENOMEM;
    ssize_t n = pt_path_normalize(uri, plen, norm, plen + 1);
    if (n < 0)
        return (int)n;
    req->norm_path = (pt_str){norm, (size_t)n};
    req->norm_path_kept = true; /* the guard need not copy it */
    return 0;
}

/* A level's script as it runs: the last new URI a rewrite without a flag made, as written
 * (it finds its location once the script ends), and rewrite_log. */
typedef struct script_run {
    char last[RETURN_MAX + 1];
    size_t last_len;
    bool log;
} script_run;

/* `rewrite`, tried on req->norm_path: RW_ON when it does not match, or when it made a new URI
 * and the script goes on. */
static rewritten rewrite_step(pt_request *req, const pt_conf_rewrite *r, script_run *run)
{
    pt_captures caps;
    int m = pt_regex_match(r->re, req->norm_path.p, req->norm_path.len, &caps);
    if (m < 0) {
        pt_request_log(req, PT_LOG_ERROR, "rewrite \"%s\": the regex match limit was hit",
                       pt_regex_pattern(r->re));
        pt_route_error(req, 500);
        return RW_ANSWERED;
    }
    if (m == 0)
        return RW_ON;
    pt_request_keep_captures(req, &caps);
    char buf[RETURN_MAX + 1];
    size_t len = expand(req, r->replacement, buf, RETURN_MAX, true);
    if (len < RETURN_MAX)
        len = with_args(req, buf, len, RETURN_MAX);
    if (len >= RETURN_MAX) {
        pt_request_log(req, PT_LOG_ERROR, "the result of \"rewrite\" is longer than %d bytes",
                       RETURN_MAX);
        pt_route_error(req, 500);
        return RW_ANSWERED;
    }
    buf[len] = '\0';
    if (run->log)
        pt_request_log(req, PT_LOG_NOTICE, "rewritten data: \"%s\", args: \"%.*s\"", buf,
                       (int)req->query.len, req->query.p);
    if (r->flag == PT_REWRITE_REDIRECT || r->flag == PT_REWRITE_PERMANENT ||
        is_absolute_url(buf, len)) {
        respond_redirect(req, r->flag == PT_REWRITE_PERMANENT ? 301 : 302, buf);
        return RW_ANSWERED;
    }
    if (r->flag == PT_REWRITE_LAST) {
        if (pt_route_redirect(req, buf, len) < 0) {
            pt_route_error(req, 500);
            return RW_ANSWERED;
        }
        return RW_ROUTE;
    }
    int e = set_uri(req, buf, len);
    if (e < 0) {
        pt_route_error(req, e == -ENOMEM ? 500 : 400);
        return RW_ANSWERED;
    }
    if (r->flag == PT_REWRITE_BREAK)
        return RW_BREAK;
    memcpy(run->last, buf, len + 1);
    run->last_len = len;
    return RW_ON;
}

/* `ov` is what answers `req` now: its lines (or the location's, for a block that names none)
 * and, read where they apply, its rate and its upstream. The last block that held decides,
 * as nginx's if's own configuration does. */
static void apply_overlay(pt_request *req, const pt_overlay *ov)
{
    req->overlay = ov;
    req->filters = ov->lines_ok ? &ov->filter : &req->location->filter;
}

static rewritten run_steps(pt_request *req, const pt_conf_script *sc, script_run *run);

/* `if`: when its condition holds, its overlay applies and its steps run. */
static rewritten if_step(pt_request *req, const pt_conf_if *f, script_run *run)
{
    int holds = pt_cond_eval(req, &f->cond);
    if (holds < 0) {
        pt_route_error(req, 500);
        return RW_ANSWERED;
    }
    if (!holds)
        return RW_ON;
    if (f->overlay >= 0)
        apply_overlay(req, &req->location->overlays[f->overlay]);
    return run_steps(req, &f->body, run);
}

/* Runs the steps of `sc` in order until one ends the script. */
static rewritten run_steps(pt_request *req, const pt_conf_script *sc, script_run *run)
{
    for (size_t i = 0; i < sc->n; i++) {
        const pt_conf_step *st = &sc->steps[i];
        rewritten rw = RW_ON;
        switch (st->kind) {
        case PT_STEP_REWRITE:
            rw = rewrite_step(req, &st->rewrite, run);
            break;
        case PT_STEP_RETURN:
            respond_return(req, &st->ret);
            rw = RW_ANSWERED;
            break;
        case PT_STEP_SET:
            if (pt_var_set(req, st->var, st->value) < 0) {
                pt_request_log(req, PT_LOG_ERROR, "\"set\": the value does not fit");
                pt_route_error(req, 500);
                rw = RW_ANSWERED;
            }
            break;
        case PT_STEP_BREAK:
            rw = RW_BREAK;
            break;
        case PT_STEP_IF:
            rw = if_step(req, st->cond, run);
            break;
        }
        if (rw == RW_ON && req->vars_failed) { /* a map could not be told (logged) */
            pt_route_error(req, 500);
            return RW_ANSWERED;
        }
        if (rw != RW_ON)
            return rw;
    }
    return RW_ON;
}

/* Runs a level's script (its rewrite, return, set, break and if, in the order written, as
 * nginx's rewrite module does) on req->norm_path. */
static rewritten run_script(pt_request *req, const pt_conf_script *sc, bool log)
{
    script_run run = {.log = log};
    rewritten rw = run_steps(req, sc, &run);
    if (rw != RW_ON || !run.last_len)
        return rw;
    /* The URI changed: it finds its location anew. */
    if (pt_route_redirect(req, run.last, run.last_len) < 0) {
        pt_route_error(req, 500);
        return RW_ANSWERED;
    }
    return RW_ROUTE;
}

/* `loc` answers `req`: its response filters and its sendfile setting apply. */
static void set_location(pt_request *req, pt_location *loc)
{
    req->location = loc;
    req->file_root = &loc->root;
    req->overlay = NULL; /* an `if` of the last location held: not this one's */
    req->filters = &loc->filter;
    req->access_logs = loc->access_logs;
    req->naccess_logs = loc->naccess_logs;
    req->sendfile = loc->sendfile;
    req->compress = loc->compress;
    req->respond_via = loc->compress ? pt_compress_respond : NULL;
}

/* What the guard decided for the location of `req`: its handler runs, or it is refused. */
static void settle(pt_request *req, int verdict)
{
    if (verdict == PT_GUARD_PASS)
        run_handler(req);
    else if (verdict > 0)
        pt_route_error(req, verdict);
    /* PT_GUARD_ANSWERED: answered; PT_GUARD_WAIT: guard_resumed() follows */
}

static void follow_redirects(pt_request *req, char *norm, size_t cap);

/* A request the guard held is let go: it goes on as it would have at once. */
static void guard_resumed(pt_request *req, int verdict)
{
    char norm[PATH_MAX];
    settle(req, verdict);
    follow_redirects(req, norm, sizeof norm);
}

/* The location of `req` answers: its `return`, else its handler once the guard lets it. */
static void enter(pt_request *req)
{
    const pt_conf_location *lc = req->location->conf;
    if (lc && lc->internal && !req->redirects) {
        pt_route_error(req, 404);
        return;
    }
    rewritten rw = lc && lc->script.n ? run_script(req, &lc->script, lc->rewrite.log) : RW_ON;
    if (rw == RW_ANSWERED || rw == RW_ROUTE)
        return; /* answered, or a new URI to route (req->redirect) */
    if (req->location->handler == PT_HANDLER_RETURN && rw != RW_BREAK)
        return_handle(req);
    else
        settle(req, pt_guard_run(req, guard_resumed));
}

/* One pass of the router for the request path `path`: normalised into `norm`, then the
 * location it falls in answers (or the server's `return`, or an error). */
static void route_path(pt_request *req, pt_str path, char *norm, size_t cap)
{
    /* room is left for an index file name after a directory's path */
    ssize_t len = path.len == 1 && path.p[0] == '*'
                      ? -EINVAL
                      : pt_path_normalize(path.p, path.len, norm, cap - 256);
    if (len < 0) {
        set_location(req, pt_location_base(req->vhost));
        req->norm_path = (pt_str){"", 0};
        pt_route_error(req, len == -ENAMETOOLONG ? 414 : 400);
        return;
    }
    const pt_conf_server *srv = req->vhost->conf;
    req->norm_path = (pt_str){norm, (size_t)len};
    if (!req->redirects && srv->script.n) {
        /* The server's script before any location is chosen (nginx's server rewrite phase,
         * which internal redirects do not repeat). */
        set_location(req, pt_location_base(req->vhost));
        rewritten rw = run_script(req, &srv->script, srv->rewrite.log);
        if (rw == RW_ANSWERED || rw == RW_ROUTE)
            return; /* answered, or a new URI to route (req->redirect) */
    }
    pt_location *loc = pt_location_find(req->vhost, req->norm_path.p, req->norm_path.len, req);
    if (!loc) {
        set_location(req, pt_location_base(req->vhost));
        pt_route_error(req, 500);
        return;
    }
    set_location(req, loc);
    enter(req);
}

/* Follows the internal redirects the last pass asked for (req->redirect), each one a new
 * pass: a path, or a named location (`@NAME`, the last of try_files, an error_page) that
 * answers the same path. */
static void follow_redirects(pt_request *req, char *norm, size_t cap)
{
    while (req->redirect.p) {
        pt_str to = req->redirect;
        req->redirect = (pt_str){NULL, 0};
        if (++req->redirects > PT_ROUTE_MAX_REDIRECTS) {
            pt_request_log(req, PT_LOG_ERROR,
                           "rewrite or internal redirection cycle while "
                           "internally redirecting to \"%.*s\"",
                           (int)to.len, to.p);
            req->error_page = true; /* no error page for this one */
            req->error_status = 0;
            pt_request_respond_error(req, 500);
            return;
        }
        if (to.p[0] == '@') {
            pt_location *named = pt_location_named(req->vhost, to.p, to.len);
            if (!named) {
                /* the conf names only locations that exist: this is not reached */
                pt_request_log(req, PT_LOG_ERROR, "no location \"%.*s\"", (int)to.len, to.p);
                pt_request_respond_error(req, 500);
                return;
            }
            set_location(req, named);
            enter(req);
            continue;
        }
        const char *q = memchr(to.p, '?', to.len);
        if (q) {
            req->query = (pt_str){q + 1, to.len - (size_t)(q + 1 - to.p)};
            to.len = (size_t)(q - to.p);
        }
        route_path(req, to, norm, cap);
    }
}

void pt_route(pt_request *req)
{
    char norm[PATH_MAX];
    route_path(req, req->path, norm, sizeof norm);
    follow_redirects(req, norm, sizeof norm);
}

static void redirect_to_url(pt_request *req, const pt_conf_error_page *ep, const char *url)
{
    int status = ep->response >= 300 && ep->response < 400 ? ep->response : 302;
    char body[PT_STATUS_PAGE_MAX];
    pt_response r;
    pt_response_init(&r, status);
    r.content_type = "text/html";
    r.location = url;
    r.body = body;
    r.body_len = pt_http_status_page(status, body, sizeof body);
    pt_request_respond(req, &r);
}

void pt_route_error(pt_request *req, int status)
{
    if (!req->location)
        set_location(req, pt_location_base(req->vhost));
    const pt_conf_files *f = req->location->files;
    for (size_t i = 0; !req->error_page && i < f->nerror_pages; i++) {
        const pt_conf_error_page *ep = &f->error_pages[i];
        if (ep->status != status)
            continue;
        /* its variables and captures expanded now, percent-encoded as return's URL */
        char buf[RETURN_MAX + 1];
        const char *uri = ep->uri;
        size_t len = strlen(uri);
        if (uri[0] != '@' && strchr(uri, '$')) {
            len = expand(req, ep->uri, buf, RETURN_MAX, true);
            if (len > RETURN_MAX) {
                pt_request_log(req, PT_LOG_ERROR,
                               "the URI of \"error_page\" is longer than %d bytes", RETURN_MAX);
                break;
            }
            buf[len] = '\0';
            uri = buf;
        }
        if (uri[0] != '/' && uri[0] != '@') {
            redirect_to_url(req, ep, uri);
            return;
        }
        req->error_page = true;
        req->error_status = ep->response == 0 ? status : ep->response > 0 ? ep->response : 0;
        if (pt_route_redirect(req, uri, len) == 0)
            return;
        break;
    }
    pt_request_respond_error(req, status);
}

/* ---- header lines ---- */

/* The statuses nginx gives add_header (without `always`) and expires. */
static bool status_cacheable(int status)
{
    switch (status) {
    case 200:
    case 201:
    case 204:
    case 206:
    case 301:
    case 302:
    case 303:
    case 304:
    case 307:
    case 308:
        return true;
    default:
        return false;
    }
}

static size_t format_expires(char *buf, size_t cap, time_t expires, long long max_age)
{
    char date[32];
    pt_http_date_format(expires, date);
    int n = max_age < 0 ? snprintf(buf, cap, "Expires: %s\r\nCache-Control: no-cache\r\n", date)
                        : snprintf(buf, cap, "Expires: %s\r\nCache-Control: max-age=%lld\r\n", date,
                                   max_age);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* The lines `ok` (for 2xx and 3xx) or `always` (the others), then the expires lines of `loc`. */
static size_t head_lines(pt_location *loc, pt_str ok_lines, pt_str always, int status, time_t mtime,
                         time_t now, char *buf, size_t pos, size_t cap)
{
    bool ok = status_cacheable(status);
    if (ok)
        pos = pt_append(buf, pos, cap, ok_lines.p, ok_lines.len);
    else
        pos = pt_append(buf, pos, cap, always.p, always.len);
    const pt_conf_files *f = loc->files;
    if (!ok)
        return pos;
    switch (f->expires_kind) {
    case PT_EXPIRES_OFF:
        break;
    case PT_EXPIRES_EPOCH:
        pos = PT_APPEND_LIT(
            buf, pos, cap, "Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\nCache-Control: no-cache\r\n");
        break;
    case PT_EXPIRES_MAX:
        pos = PT_APPEND_LIT(buf, pos, cap,
                            "Expires: Thu, 31 Dec 2037 23:55:55 GMT\r\n"
                            "Cache-Control: max-age=315360000\r\n");
        break;
    case PT_EXPIRES_ACCESS:
        if (loc->expires_second != now) {
            loc->expires_len = format_expires(loc->expires_lines, sizeof loc->expires_lines,
                                              now + (time_t)f->expires,
                                              f->expires < 0 ? -1 : (long long)f->expires);
            loc->expires_second = now;
        }
        pos = pt_append(buf, pos, cap, loc->expires_lines, loc->expires_len);
        break;
    case PT_EXPIRES_MODIFIED:
        if (mtime > 0) {
            char lines[128];
            time_t at = mtime + (time_t)f->expires;
            size_t n = format_expires(lines, sizeof lines, at,
                                      f->expires < 0 || at < now ? -1 : (long long)(at - now));
            pos = pt_append(buf, pos, cap, lines, n);
        }
        break;
    }
    return pos;
}

size_t pt_location_headers(pt_location *loc, int status, time_t mtime, time_t now, char *buf,
                           size_t pos, size_t cap)
{
    return head_lines(loc, (pt_str){loc->lines_ok, loc->lines_ok_len},
                      (pt_str){loc->lines_always, loc->lines_always_len}, status, mtime, now, buf,
                      pos, cap);
}

static size_t overlay_head_lines(const pt_response_filter *f, int status, time_t mtime, time_t now,
                                 char *buf, size_t pos, size_t cap)
{
    const pt_overlay *ov = (const pt_overlay *)((const char *)f - offsetof(pt_overlay, filter));
    return head_lines(ov->loc, (pt_str){ov->lines_ok, ov->lines_ok_len},
                      (pt_str){ov->lines_always, ov->lines_always_len}, status, mtime, now, buf,
                      pos, cap);
}

static size_t filter_head_lines(const pt_response_filter *f, int status, time_t mtime, time_t now,
                                char *buf, size_t pos, size_t cap)
{
    /* The filter is a member of its location, whose expires line it may refresh. */
    pt_location *loc = (pt_location *)((char *)f - offsetof(pt_location, filter));
    return pt_location_headers(loc, status, mtime, now, buf, pos, cap);
}
