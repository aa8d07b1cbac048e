/*
 * The directive table machinery, the values directives read, and the levels of a pt_conf
 * (directives.h).
 */
#include "server/conf/directives.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server/conf/mem.h"
#include "server/core/logfmt.h"
#include "server/core/htpasswd.h"
#include "server/core/regex.h"
#include "server/core/vars.h"
#include "server/site/tls_ctx.h"

/* ---- errors ---- */

int pt_conf_fail(pt_conf_loader *cx, int rc, const char *file, int line, int col, const char *fmt,
                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc = pt_conf_vreport(cx->parse.err, cx->parse.errlen, rc, file, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

int pt_conf_bad(pt_conf_loader *cx, const pt_conf_node *d, size_t i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = pt_conf_vreport(cx->parse.err, cx->parse.errlen, -EINVAL, d->file, d->w[i].line,
                             d->w[i].col, fmt, ap);
    va_end(ap);
    return rc;
}

int pt_conf_refuse(const pt_conf_value *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = pt_conf_vreport(v->err, v->errlen, -EINVAL, v->file, v->line, v->col, fmt, ap);
    va_end(ap);
    return rc;
}

pt_conf_value pt_conf_word_value(pt_conf_loader *cx, const pt_conf_node *d, size_t i)
{
    return (pt_conf_value){
        .s = d->w[i].s,
        .name = d->w[0].s,
        .file = d->file,
        .line = d->w[i].line,
        .col = d->w[i].col,
        .err = cx->parse.err,
        .errlen = cx->parse.errlen,
    };
}

int pt_conf_named_ref_add(pt_conf_loader *cx, const pt_conf_node *d, size_t i)
{
    if (cx->nrefs == sizeof cx->refs / sizeof *cx->refs)
        return pt_conf_bad(cx, d, i, "too many named location references in one server");
    cx->refs[cx->nrefs++] = (pt_conf_named_ref){d, i};
    return 0;
}

/* ---- values ---- */

/* Reads leading digits at *sp into *out, advancing *sp. */
static int scan_uint(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 0;
}

int pt_conf_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    int rc = scan_uint(&s, out);
    if (rc == 0 && *s)
        return -EINVAL;
    if (rc == 0 && *out > max)
        return -ERANGE;
    return rc;
}

int pt_parse_size(const char *s, size_t *out)
{
    uint64_t v, mult = 1;
    int rc = scan_uint(&s, &v);
    if (rc < 0)
        return rc;
    switch (*s) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = 1024;
        break;
    case 'm':
    case 'M':
        mult = 1024 * 1024;
        break;
    case 'g':
    case 'G':
        mult = 1024 * 1024 * 1024;
        break;
    default:
        return -EINVAL;
    }
    if (*s && s[1])
        return -EINVAL;
    if (v > SIZE_MAX / mult)
        return -ERANGE;
    *out = (size_t)(v * mult);
    return 0;
}

int pt_parse_time(const char *s, double *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"ms", 1}, {"m", 60000}, {"s", 1000}};
    /* the order in which units may follow each other: d h m s ms */
    static const int rank[] = {5, 4, 1, 3, 2};
    uint64_t total = 0;
    int last = 6;
    do {
        uint64_t v;
        int rc = scan_uint(&s, &v), u;
        if (rc < 0)
            return rc;
        for (u = 0; u < 5; u++) {
            if (strncmp(s, units[u].unit, strlen(units[u].unit)) == 0)
                break;
        }
        uint64_t ms = u < 5 ? units[u].ms : 1000; /* no unit: seconds, last in the string */
        int r = u < 5 ? rank[u] : 2;
        if (r >= last || (u == 5 && *s))
            return -EINVAL;
        last = r;
        s += u < 5 ? strlen(units[u].unit) : 0;
        /* bound at 2^53 ms so the double stays exact */
        if (v > (UINT64_C(1) << 53) / ms || total + v * ms > (UINT64_C(1) << 53))
            return -ERANGE;
        total += v * ms;
    } while (*s);
    *out = (double)total / 1000;
    return 0;
}

/* Removes empty and "." components and a trailing '/' in place; ".." stays, because with
 * symlinks it is not lexical. */
static void path_clean(char *p)
{
    char *w = p;
    const char *r = p;
    if (*p == '/')
        w++;
    while (*r) {
        while (*r == '/')
            r++;
        const char *s = r;
        while (*r && *r != '/')
            r++;
        size_t len = (size_t)(r - s);
        if (len == 0 || (len == 1 && *s == '.'))
            continue;
        if (w > p && w[-1] != '/')
            *w++ = '/';
        memmove(w, s, len);
        w += len;
    }
    if (w == p)
        *w++ = '.';
    *w = '\0';
}

char *pt_conf_path_join(const char *base, const char *rel)
{
    char *p;
    if (rel[0] == '/') {
        p = xstrdup(rel);
    } else {
        size_t n = strlen(base), m = strlen(rel);
        p = xrealloc(NULL, n + m + 2);
        memcpy(p, base, n);
        p[n] = '/';
        memcpy(p + n + 1, rel, m + 1);
    }
    path_clean(p);
    return p;
}

bool pt_conf_is_off(const char *s)
{
    return strcmp(s, "off") == 0 || strcmp(s, "unlimited") == 0;
}

bool pt_conf_is_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return false;
    return true;
}

int pt_conf_path(const pt_conf *c, char **field, const pt_conf_value *v)
{
    if (!v->s[0])
        return pt_conf_refuse(v, "invalid path \"\" in \"%s\"", v->name);
    free(*field);
    *field = pt_conf_path_join(c->prefix, v->s);
    return 0;
}

/* ---- setters many directives share ---- */

int pt_conf_set_size(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    size_t *v = field;
    if (pt_conf_is_off(arg1(d)))
        *v = PT_LIMIT_NONE;
    else if (pt_parse_size(arg1(d), v) < 0)
        return pt_conf_bad(cx, d, 1, "invalid size \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    return 0;
}

int pt_conf_set_count(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    size_t *v = field;
    uint64_t n;
    if (pt_conf_is_off(arg1(d)))
        *v = PT_LIMIT_NONE;
    else if (pt_conf_parse_uint(arg1(d), SIZE_MAX, &n) < 0)
        return pt_conf_bad(cx, d, 1, "invalid number \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    else
        *v = (size_t)n;
    return 0;
}

int pt_conf_set_time(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    double *v = field;
    if (pt_conf_is_off(arg1(d))) {
        *v = PT_TIMEOUT_NONE;
        return 0;
    }
    if (pt_parse_time(arg1(d), v) < 0)
        return pt_conf_bad(cx, d, 1, "invalid time \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    /* pt_limits reads 0 as "no timeout"; nginx users write 0 meaning "at once", so make them
     * say which they mean. */
    if (*v == 0)
        return pt_conf_bad(cx, d, 1, "invalid time \"%s\" in \"%s\": write \"off\" for no timeout",
                           arg1(d), d->w[0].s);
    return 0;
}

int pt_conf_set_flag(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    bool *v = field;
    if (strcasecmp(arg1(d), "on") == 0)
        *v = true;
    else if (strcasecmp(arg1(d), "off") == 0)
        *v = false;
    else
        return pt_conf_bad(cx, d, 1,
                           "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"",
                           arg1(d), d->w[0].s);
    return 0;
}

int pt_conf_set_string(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    char **v = field;
    free(*v);
    *v = xstrdup(arg1(d));
    return 0;
}

int pt_conf_set_path(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_value v = pt_conf_word_value(cx, d, 1);
    return pt_conf_path(cx->conf, field, &v);
}

int pt_conf_set_size_or_off(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    size_t *v = field;
    if (strcmp(arg1(d), "off") == 0)
        *v = 0;
    else if (pt_parse_size(arg1(d), v) < 0)
        return pt_conf_bad(cx, d, 1, "invalid size \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    return 0;
}

int pt_conf_set_interval(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    double *v = field;
    if (pt_parse_time(arg1(d), v) < 0)
        return pt_conf_bad(cx, d, 1, "invalid time \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    return 0;
}

int pt_conf_set_positive_time(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    double *v = field;
    if (pt_parse_time(arg1(d), v) < 0 || *v <= 0)
        return pt_conf_bad(cx, d, 1, "invalid time \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    return 0;
}

/* ---- errors: every one is kept, and loading goes on ---- */

int pt_conf_keep(pt_conf_loader *cx, int rc)
{
    if (rc >= 0)
        return rc;
    const char *msg = cx->parse.err ? cx->parse.err : "";
    /* An error passed up through the directives that hold it is kept once. */
    if (cx->nerrors && strcmp(cx->errors[cx->nerrors - 1], msg) == 0)
        return rc;
    if (!cx->first_rc)
        cx->first_rc = rc;
    if (cx->nerrors < PT_CONF_MAX_ERRORS)
        *PUSH(cx->errors, cx->nerrors) = xstrdup(msg);
    return rc;
}

/* ---- the table ---- */

static const pt_conf_directive *lookup(const pt_conf_loader *cx, const char *name)
{
    for (size_t m = 0; m < cx->nmodules; m++) {
        const pt_conf_module *mod = cx->modules[m];
        for (size_t i = 0; i < mod->ndirectives; i++)
            if (strcmp(mod->directives[i].name, name) == 0)
                return &mod->directives[i];
    }
    return NULL;
}

#define NAME_MAX_LEN 63

/* The edit distance of a and b (insertions, deletions, substitutions and transpositions of
 * two neighbours each cost 1), or more than 2 when it is more than 2. */
static size_t distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > NAME_MAX_LEN || m > NAME_MAX_LEN || (n > m ? n - m : m - n) > 2)
        return 3;
    size_t d[NAME_MAX_LEN + 1][NAME_MAX_LEN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* porter's directive nearest to `name`, within an edit distance of 2 (1 for a name of four
 * letters or fewer, so "foo" suggests nothing); NULL if none is. */
static const char *nearest(const pt_conf_loader *cx, const char *name)
{
    const char *best = NULL;
    size_t bestd = strlen(name) > 4 ? 3 : 2;
    for (size_t m = 0; m < cx->nmodules; m++) {
        const pt_conf_module *mod = cx->modules[m];
        for (size_t i = 0; i < mod->ndirectives; i++) {
            size_t dist = distance(name, mod->directives[i].name);
            if (dist < bestd) {
                bestd = dist;
                best = mod->directives[i].name;
            }
        }
    }
    return best;
}

static int unknown(pt_conf_loader *cx, const pt_conf_node *d)
{
    const char *name = d->w[0].s, *near;
    if (pt_conf_nginx_directive(name))
        return pt_conf_bad(cx, d, 0,
                           "\"%s\" directive is not supported by porter; see docs/nginx.md", name);
    if ((near = nearest(cx, name)) != NULL)
        return pt_conf_bad(cx, d, 0, "unknown directive \"%s\", did you mean \"%s\"?", name, near);
    return pt_conf_bad(cx, d, 0, "unknown directive \"%s\"", name);
}

static int apply_one(pt_conf_loader *cx, const pt_conf_node *d, unsigned ctx)
{
    const char *name = d->w[0].s;
    const pt_conf_directive *cmd = lookup(cx, name);
    if (!cmd)
        return unknown(cx, d);
    if (!(cmd->ctx & ctx) && (ctx & C_IF))
        return pt_conf_bad(cx, d, 0,
                           "\"%s\" directive is not allowed inside \"if\": it takes rewrite, "
                           "return, set and break, and in a location add_header, limit_rate and "
                           "proxy_pass",
                           name);
    if (!(cmd->ctx & ctx))
        return pt_conf_bad(cx, d, 0, "\"%s\" directive is not allowed here", name);
    if ((cmd->flags & F_BLOCK) && !d->block)
        return pt_conf_fail(cx, -EINVAL, d->file, d->tline, d->tcol,
                            "directive \"%s\" has no opening \"{\"", name);
    if (!(cmd->flags & F_BLOCK) && d->block)
        return pt_conf_fail(cx, -EINVAL, d->file, d->tline, d->tcol,
                            "directive \"%s\" is not terminated by \";\"", name);
    int nargs = (int)d->nw - 1;
    if (nargs < cmd->min || (cmd->max >= 0 && nargs > cmd->max))
        return pt_conf_bad(cx, d, 0, "invalid number of arguments in \"%s\" directive", name);

    /* an `if` block's directives set the fields of its own location (cx->loc, conf/rewrite.c) */
    int level = ctx == C_SERVER ? 1 : ctx & (C_LOCATION | C_IF) ? 2 : 0;
    char *base = level == 2 ? (char *)cx->loc : level ? (char *)cx->srv : (char *)cx->conf;
    void *field = cmd->off[level] == NONE ? NULL : base + cmd->off[level];
    void *aux = cmd->aux[level] == NONE ? NULL : base + cmd->aux[level];
    /* duplicates are found by field, so an alias and its original collide */
    const void *key = field ? field : (const void *)cmd;
    size_t k = 0;
    while (k < cx->nseen && cx->seen[k] != key)
        k++;
    if (k < cx->nseen && !(cmd->flags & F_MULTI))
        return pt_conf_bad(cx, d, 0, "\"%s\" directive is duplicate", name);
    cx->first = k == cx->nseen;
    if (cx->first)
        *PUSH(cx->seen, cx->nseen) = key;
    return cmd->set(cx, d, field, aux);
}

int pt_conf_apply(pt_conf_loader *cx, const pt_conf_node *list, size_t n, unsigned ctx)
{
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        /* A directive in error is reported and left out; the next ones are still read, so a
         * check (-t) reports every error, not only the first. */
        int rc = pt_conf_keep(cx, apply_one(cx, &list[i], ctx));
        if (rc < 0 && !first)
            first = rc;
    }
    return first;
}

/* ---- the levels: freeing, inheriting, defaults ---- */

static void files_dispose(pt_conf_files *f)
{
    headers_free(f->headers, f->nheaders);
    for (size_t i = 0; i < f->nerror_pages; i++)
        free(f->error_pages[i].uri);
    free(f->error_pages);
    strv_free(f->try_files, f->ntry_files);
    *f = (pt_conf_files){0};
}

/* A level's starting point: a deep copy of its parent's settings, try_files excepted. */
static void files_inherit(pt_conf_files *d, const pt_conf_files *s)
{
    *d = *s;
    d->headers = NULL;
    d->nheaders = 0;
    d->error_pages = NULL;
    d->nerror_pages = 0;
    d->try_files = NULL;
    d->ntry_files = 0;
    headers_copy(&d->headers, &d->nheaders, s->headers, s->nheaders);
    for (size_t i = 0; i < s->nerror_pages; i++) {
        pt_conf_error_page *e = PUSH(d->error_pages, d->nerror_pages);
        *e = s->error_pages[i];
        e->uri = xstrdup(s->error_pages[i].uri);
    }
}

/* A level's TLS settings start as a deep copy of its parent's. */
static void ssl_inherit(pt_conf_ssl *d, const pt_conf_ssl *s)
{
    *d = *s;
    d->certs = d->keys = NULL;
    d->ncerts = d->nkeys = 0;
    for (size_t i = 0; i < s->ncerts; i++)
        *PUSH(d->certs, d->ncerts) = xstrdup(s->certs[i]);
    for (size_t i = 0; i < s->nkeys; i++)
        *PUSH(d->keys, d->nkeys) = xstrdup(s->keys[i]);
    d->ciphers = xstrdup(s->ciphers);
    d->ciphersuites = xstrdup(s->ciphersuites);
}

static void ssl_dispose(pt_conf_ssl *s)
{
    strv_free(s->certs, s->ncerts);
    strv_free(s->keys, s->nkeys);
    free(s->ciphers);
    free(s->ciphersuites);
    *s = (pt_conf_ssl){0};
}

static void proxy_dispose(pt_conf_proxy *p)
{
    free(p->pass);
    headers_free(p->set_headers, p->nset_headers);
    strv_free(p->hide_headers, p->nhide_headers);
    strv_free(p->pass_headers, p->npass_headers);
    headers_free(p->redirects, p->nredirects);
    free(p->ssl_trusted_certificate);
    *p = (pt_conf_proxy){0};
}

/* A level's proxy settings start as a deep copy of its parent's; proxy_pass is not inherited. */
static void proxy_inherit(pt_conf_proxy *d, const pt_conf_proxy *s)
{
    *d = *s;
    d->pass = NULL;
    d->set_headers = NULL;
    d->nset_headers = 0;
    headers_copy(&d->set_headers, &d->nset_headers, s->set_headers, s->nset_headers);
    d->redirects = NULL;
    d->nredirects = 0;
    headers_copy(&d->redirects, &d->nredirects, s->redirects, s->nredirects);
    d->hide_headers = d->pass_headers = NULL;
    d->nhide_headers = d->npass_headers = 0;
    strv_copy(&d->hide_headers, &d->nhide_headers, s->hide_headers, s->nhide_headers);
    strv_copy(&d->pass_headers, &d->npass_headers, s->pass_headers, s->npass_headers);
    d->ssl_trusted_certificate = xstrdup(s->ssl_trusted_certificate);
}

/* ---- compression on the fly (compress.c reads its directives) ---- */

#define MIN_LENGTH 20
#define DEFAULT_TYPE "text/html"

/* ---- gzip_disable's expressions ---- */

static void add_capture_name(void *ctx, const char *name)
{
    pt_conf_loader *cx = ctx;
    for (size_t i = 0; i < cx->ncapture_names; i++)
        if (strcmp(cx->capture_names[i], name) == 0)
            return;
    *PUSH(cx->capture_names, cx->ncapture_names) = xstrdup(name);
}

void pt_conf_capture_names(pt_conf_loader *cx, const pt_regex *re)
{
    pt_regex_each_name(re, add_capture_name, cx);
}

bool pt_conf_var_ok(const pt_conf_loader *cx, int user, const pt_var_ref *v)
{
    if (v->malformed)
        return false;
    if (v->id != PT_VAR_UNKNOWN)
        return pt_var_allowed((pt_var_user)user, v->id);
    for (size_t i = 0; i < cx->ncapture_names; i++)
        if (pt_str_eq(v->name, cx->capture_names[i]))
            return true;
    return pt_var_find(&cx->conf->vars, v->name) >= 0;
}

/* nginx's: matched anywhere in User-Agent, ignoring case. */
int pt_conf_compress_disable_add(pt_conf_compress *c, const char *pattern, char *why, size_t whylen)
{
    pt_regex *re = pt_regex_new(pattern, true, why, whylen);
    if (!re)
        return -EINVAL;
    *PUSH(c->disable, c->ndisable) = re;
    return 0;
}

void pt_conf_compress_disable_clear(pt_conf_compress *c)
{
    for (size_t i = 0; i < c->ndisable; i++)
        pt_regex_free(c->disable[i]);
    free(c->disable);
    c->disable = NULL;
    c->ndisable = 0;
    c->disable_msie6 = false;
}

void pt_conf_compress_types_default(pt_conf_coding *k)
{
    strv_clear(&k->types, &k->ntypes);
    *PUSH(k->types, k->ntypes) = xstrdup(DEFAULT_TYPE);
    k->any_type = false;
}

void pt_conf_compress_init(pt_conf_compress *c)
{
    *c = (pt_conf_compress){
        .vary = true,
        .http_version = 11,
        .order = pt_encoding_default_order,
        .cache = true,
    };
    c->coding[PT_ENC_GZIP].level = PT_CONF_GZIP_LEVEL;
    c->coding[PT_ENC_BR].level = PT_CONF_BROTLI_LEVEL;
    c->coding[PT_ENC_ZSTD].level = PT_CONF_ZSTD_LEVEL;
    for (int e = PT_ENC_BR; e < PT_ENC_COUNT; e++) {
        c->coding[e].min_length = MIN_LENGTH;
        pt_conf_compress_types_default(&c->coding[e]);
    }
}

void pt_conf_compress_inherit(pt_conf_compress *d, const pt_conf_compress *s)
{
    *d = *s;
    for (int e = 0; e < PT_ENC_COUNT; e++) {
        d->coding[e].types = NULL;
        d->coding[e].ntypes = 0;
        strv_copy(&d->coding[e].types, &d->coding[e].ntypes, s->coding[e].types,
                  s->coding[e].ntypes);
    }
    d->disable = NULL;
    d->ndisable = 0;
    for (size_t i = 0; i < s->ndisable; i++) {
        char why[128];
        /* it compiled once already: only memory can fail */
        if (pt_conf_compress_disable_add(d, pt_regex_pattern(s->disable[i]), why, sizeof why) != 0)
            oom();
    }
}

void pt_conf_compress_dispose(pt_conf_compress *c)
{
    for (int e = 0; e < PT_ENC_COUNT; e++)
        strv_free(c->coding[e].types, c->coding[e].ntypes);
    pt_conf_compress_disable_clear(c);
    *c = (pt_conf_compress){0};
}

/* ---- the levels of access.c, limits.c and realip.c ---- */

void pt_conf_access_init(pt_conf_access *a)
{
    *a = (pt_conf_access){.satisfy = PT_SATISFY_ALL};
}

void pt_conf_access_inherit(pt_conf_access *d, const pt_conf_access *s)
{
    *d = *s;
    d->rules = NULL;
    if (s->nrules) {
        d->rules = xrealloc(NULL, s->nrules * sizeof *d->rules);
        memcpy(d->rules, s->rules, s->nrules * sizeof *d->rules);
    }
    d->realm = xstrdup(s->realm);
    d->challenge = xstrdup(s->challenge);
    d->user_file = xstrdup(s->user_file);
    d->users = pt_htpasswd_ref(s->users);
}

void pt_conf_access_dispose(pt_conf_access *a)
{
    free(a->rules);
    free(a->realm);
    free(a->challenge);
    free(a->user_file);
    pt_htpasswd_unref(a->users);
    *a = (pt_conf_access){0};
}

void pt_conf_limit_init(pt_conf_limit *l)
{
    *l = (pt_conf_limit){
        .req_status = 503,
        .req_log_level = PT_LOG_ERROR,
        .conn_status = 503,
        .conn_log_level = PT_LOG_ERROR,
    };
}

void pt_conf_limit_inherit(pt_conf_limit *d, const pt_conf_limit *s)
{
    *d = *s;
    d->req = NULL;
    d->nreq = 0;
    for (size_t i = 0; i < s->nreq; i++) {
        pt_conf_limit_req *r = PUSH(d->req, d->nreq);
        *r = s->req[i];
        r->zone_name = xstrdup(s->req[i].zone_name);
    }
    d->conn = NULL;
    d->nconn = 0;
    for (size_t i = 0; i < s->nconn; i++) {
        pt_conf_limit_conn *c = PUSH(d->conn, d->nconn);
        *c = s->conn[i];
        c->zone_name = xstrdup(s->conn[i].zone_name);
    }
}

void pt_conf_limit_dispose(pt_conf_limit *l)
{
    for (size_t i = 0; i < l->nreq; i++)
        free(l->req[i].zone_name);
    free(l->req);
    for (size_t i = 0; i < l->nconn; i++)
        free(l->conn[i].zone_name);
    free(l->conn);
    *l = (pt_conf_limit){0};
}

void pt_conf_zones_free(pt_conf *c)
{
    for (size_t i = 0; i < c->nzones; i++) {
        free(c->zones[i].name);
        free(c->zones[i].key);
    }
    free(c->zones);
    c->zones = NULL;
    c->nzones = 0;
}

void pt_conf_realip_inherit(pt_conf_realip *d, const pt_conf_realip *s)
{
    *d = *s;
    d->from = NULL;
    d->nfrom = 0;
    for (size_t i = 0; i < s->nfrom; i++)
        *PUSH(d->from, d->nfrom) = s->from[i];
    d->header = xstrdup(s->header);
}

void pt_conf_realip_dispose(pt_conf_realip *r)
{
    free(r->from);
    free(r->header);
    *r = (pt_conf_realip){0};
}

static void cond_dispose(pt_conf_cond *c)
{
    free(c->subject);
    free(c->operand);
    pt_regex_free(c->re);
}

void pt_conf_script_dispose(pt_conf_script *s)
{
    for (size_t i = 0; i < s->n; i++) {
        pt_conf_step *st = &s->steps[i];
        pt_regex_free(st->rewrite.re);
        free(st->rewrite.replacement);
        free(st->ret.text);
        free(st->value);
        if (st->cond) {
            cond_dispose(&st->cond->cond);
            pt_conf_script_dispose(&st->cond->body);
            headers_free(st->cond->headers, st->cond->nheaders);
            free(st->cond->pass); /* its proxy settings are the location's, borrowed */
            free(st->cond);
        }
    }
    free(s->steps);
    *s = (pt_conf_script){0};
}

static void map_entries_free(pt_conf_map_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        pt_regex_free(e[i].re);
        free(e[i].value);
    }
    free(e);
}

void pt_conf_vars_dispose(pt_conf_vars *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->list[i].name);
    free(v->list);
    for (size_t i = 0; i < v->nmaps; i++) {
        pt_conf_map *m = &v->maps[i];
        free(m->source);
        map_entries_free(m->exact, m->nexact);
        map_entries_free(m->leading, m->nleading);
        map_entries_free(m->trailing, m->ntrailing);
        map_entries_free(m->regex, m->nregex);
        free(m->default_value);
    }
    free(v->maps);
    *v = (pt_conf_vars){0};
}

static void location_dispose(pt_conf_location *l)
{
    pt_conf_script_dispose(&l->script);
    free(l->ret.text);
    free(l->path);
    pt_regex_free(l->re);
    free(l->root);
    free(l->alias);
    free(l->alias_of);
    strv_free(l->index, l->nindex);
    files_dispose(&l->static_files);
    proxy_dispose(&l->proxy);
    pt_conf_compress_dispose(&l->compress);
    pt_conf_access_dispose(&l->access);
    pt_conf_limit_dispose(&l->limit);
    access_logs_free(l->access_logs, l->naccess_logs);
    pt_conf_realip_dispose(&l->realip);
}

void pt_conf_location_pop(pt_conf_server *s)
{
    if (s->nlocations)
        location_dispose(&s->locations[--s->nlocations]);
}

static void server_dispose(pt_conf_server *s)
{
    pt_conf_script_dispose(&s->script);
    for (size_t i = 0; i < s->nlistens; i++) {
        free(s->listens[i].host);
        free(s->listens[i].port);
    }
    free(s->listens);
    strv_free(s->names, s->nnames);
    for (size_t i = 0; i < s->nname_regexes; i++)
        pt_regex_free(s->name_regexes[i]);
    free(s->name_regexes);
    free(s->root);
    strv_free(s->index, s->nindex);
    access_logs_free(s->access_logs, s->naccess_logs);
    free(s->error_log);
    free(s->default_type);
    types_free(s->types, s->ntypes);
    files_dispose(&s->static_files);
    ssl_dispose(&s->ssl);
    proxy_dispose(&s->proxy);
    pt_conf_compress_dispose(&s->compress);
    pt_conf_access_dispose(&s->access);
    pt_conf_limit_dispose(&s->limit);
    pt_conf_realip_dispose(&s->realip);
    free(s->ret.text);
    for (size_t i = 0; i < s->nlocations; i++)
        location_dispose(&s->locations[i]);
    free(s->locations);
}

static void upstreams_free(pt_conf *c)
{
    for (size_t i = 0; i < c->nupstreams; i++) {
        pt_conf_upstream *u = &c->upstreams[i];
        free(u->name);
        free(u->hash_key);
        free(u->health.uri);
        for (size_t k = 0; k < u->nservers; k++)
            free(u->servers[k].address);
        free(u->servers);
    }
    free(c->upstreams);
}

void pt_conf_free(pt_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nservers; i++)
        server_dispose(&c->servers[i]);
    free(c->servers);
    free(c->pid_path);
    free(c->user);
    free(c->group);
    free(c->root);
    strv_free(c->index, c->nindex);
    access_logs_free(c->access_logs, c->naccess_logs);
    free(c->error_log);
    free(c->default_type);
    types_free(c->types, c->ntypes);
    files_dispose(&c->static_files);
    ssl_dispose(&c->ssl);
    proxy_dispose(&c->proxy);
    pt_conf_compress_dispose(&c->compress);
    pt_conf_access_dispose(&c->access);
    pt_conf_limit_dispose(&c->limit);
    pt_conf_zones_free(c);
    pt_conf_realip_dispose(&c->realip);
    upstreams_free(c);
    for (size_t i = 0; i < c->nlog_formats; i++)
        free(c->log_formats[i].name);
    free(c->log_formats);
    for (size_t i = 0; i < c->nlogfmts; i++)
        pt_logfmt_free(c->logfmts[i]);
    free(c->logfmts);
    pt_conf_vars_dispose(&c->vars);
    free(c->prefix);
    strv_free(c->files, c->nfiles);
    free(c);
}

pt_conf_server *pt_conf_server_add(pt_conf *c, const char *file, int line, int col)
{
    pt_conf_server *s = PUSH(c->servers, c->nservers);
    *s = (pt_conf_server){
        .limits = c->limits,
        .root = xstrdup(c->root),
        .root_named = c->root_named,
        .root_at = c->root_at,
        .error_log = xstrdup(c->error_log),
        .error_log_level = c->error_log_level,
        .sendfile = c->sendfile,
        .server_tokens = c->server_tokens,
        .http2 = c->http2,
        .h2 = c->h2,
        .default_type = xstrdup(c->default_type),
        .file = file,
        .line = line,
        .col = col,
        .vars = &c->vars,
    };
    strv_copy(&s->index, &s->nindex, c->index, c->nindex);
    access_logs_copy(&s->access_logs, &s->naccess_logs, c->access_logs, c->naccess_logs);
    for (size_t i = 0; i < c->ntypes; i++)
        *PUSH(s->types, s->ntypes) =
            (pt_conf_type){xstrdup(c->types[i].type), xstrdup(c->types[i].ext)};
    files_inherit(&s->static_files, &c->static_files);
    ssl_inherit(&s->ssl, &c->ssl);
    proxy_inherit(&s->proxy, &c->proxy);
    pt_conf_compress_inherit(&s->compress, &c->compress);
    pt_conf_access_inherit(&s->access, &c->access);
    s->limit_rate = c->limit_rate;
    pt_conf_limit_inherit(&s->limit, &c->limit);
    s->rewrite.log = c->rewrite.log;
    pt_conf_realip_inherit(&s->realip, &c->realip);
    s->regex_match_limit = c->regex_match_limit;
    return s;
}

/* What a location takes from the level holding it, `up`: its server, or the location it is
 * nested in (the fields have the same names in both), as nginx merges a location's settings
 * from its parent's. Not taken: the match and path, the handler (proxy_pass, return, status),
 * try_files and the rewrites, as in nginx. */
#define LOCATION_INHERIT(l, up)                                                                    \
    do {                                                                                           \
        (l)->root = xstrdup((up)->root);                                                           \
        (l)->root_named = (up)->root_named;                                                        \
        (l)->root_at = (up)->root_at;                                                              \
        (l)->sendfile = (up)->sendfile;                                                            \
        (l)->regex_match_limit = (up)->regex_match_limit;                                          \
        strv_copy(&(l)->index, &(l)->nindex, (up)->index, (up)->nindex);                           \
        access_logs_copy(&(l)->access_logs, &(l)->naccess_logs, (up)->access_logs,                 \
                         (up)->naccess_logs);                                                      \
        files_inherit(&(l)->static_files, &(up)->static_files);                                    \
        proxy_inherit(&(l)->proxy, &(up)->proxy);                                                  \
        pt_conf_compress_inherit(&(l)->compress, &(up)->compress);                                 \
        pt_conf_access_inherit(&(l)->access, &(up)->access);                                       \
        (l)->limit_rate = (up)->limit_rate;                                                        \
        pt_conf_limit_inherit(&(l)->limit, &(up)->limit);                                          \
        (l)->rewrite.log = (up)->rewrite.log;                                                      \
        pt_conf_realip_inherit(&(l)->realip, &(up)->realip);                                       \
    } while (0)

pt_conf_location *pt_conf_location_add(pt_conf_server *s, const char *file, int line, int col)
{
    pt_conf_location *l = PUSH(s->locations, s->nlocations);
    *l = (pt_conf_location){
        .parent = PT_CONF_NO_PARENT,
        .handler = PT_HANDLER_STATIC,
        .file = file,
        .line = line,
        .col = col,
    };
    LOCATION_INHERIT(l, s);
    return l;
}

pt_conf_location *pt_conf_location_nest(pt_conf_server *s, size_t parent, const char *file,
                                        int line, int col)
{
    pt_conf_location *l = PUSH(s->locations, s->nlocations);
    const pt_conf_location *up = &s->locations[parent]; /* where PUSH left the array */
    *l = (pt_conf_location){
        .parent = parent,
        .handler = PT_HANDLER_STATIC,
        /* an alias goes on replacing the path of the location that names it (nginx's) */
        .alias = xstrdup(up->alias),
        .alias_of = xstrdup(up->alias_of),
        .internal = up->internal,
        .file = file,
        .line = line,
        .col = col,
    };
    LOCATION_INHERIT(l, up);
    return l;
}

static void proxy_defaults(pt_conf_proxy *p)
{
    p->connect_timeout = p->read_timeout = p->send_timeout = PT_CONF_PROXY_TIMEOUT;
    p->ssl_verify = true;
    p->ssl_server_name = true;
    p->next_upstream = PT_NEXT_ERROR | PT_NEXT_TIMEOUT;
    p->next_upstream_timeout = PT_TIMEOUT_NONE;
    *PUSH(p->redirects, p->nredirects) = (pt_conf_header){NULL, NULL, false}; /* default */
}

int pt_conf_new(pt_conf **out, const char *name, const char *prefix, char *err, size_t errlen)
{
    char *cwd = NULL;
    *out = NULL;
    if (!prefix || prefix[0] != '/') {
        if (!(cwd = getcwd(NULL, 0))) {
            int rc = -errno;
            if (err && errlen)
                snprintf(err, errlen, "%s: cannot get the current directory: %s", name,
                         strerror(-rc));
            return rc;
        }
    }
    pt_conf *c = xcalloc(sizeof *c);
    c->prefix = pt_conf_path_join(cwd ? cwd : "/", prefix ? prefix : ".");
    free(cwd);
    c->worker_processes = 1;
    c->user_uid = (uid_t)-1;
    c->user_gid = (gid_t)-1;
    pt_limits_init(&c->limits);
    c->root = pt_conf_path_join(c->prefix, "htdocs");
    *PUSH(c->index, c->nindex) = xstrdup("index.html");
    c->error_log = xstrdup("stderr");
    c->error_log_level = PT_LOG_ERROR;
    c->sendfile = true;
    c->server_tokens = true;
    c->default_type = xstrdup("application/octet-stream");
    pt_h2_settings_default(&c->h2);
    c->static_files.autoindex_exact_size = true;
    c->static_files.max_ranges = 16;
    c->static_files.etag = true;
    c->file_cache_size = 32u << 20;
    c->file_cache_max_file = 32u << 10;
    c->file_cache_valid = 1.0;
    c->open_file_cache_max = 1000;
    c->open_file_cache_inactive = 60.0;
    pt_tls_ctx_options tls;
    pt_tls_ctx_options_init(&tls);
    c->ssl.min_version = tls.min_version;
    c->ssl.max_version = tls.max_version;
    c->ssl.prefer_server_ciphers = tls.prefer_server_ciphers;
    c->ssl.session_cache = tls.session_cache;
    c->ssl.session_timeout = (double)tls.session_timeout;
    c->ssl.session_tickets = tls.tickets;
    c->ssl.handshake_timeout = PT_CONF_SSL_HANDSHAKE_TIMEOUT;
    c->ssl.max_handshakes = PT_CONF_SSL_MAX_HANDSHAKES;
    c->ssl_ticket_rotate = PT_CONF_SSL_TICKET_ROTATE;
    proxy_defaults(&c->proxy);
    pt_conf_compress_init(&c->compress);
    pt_conf_access_init(&c->access);
    pt_conf_limit_init(&c->limit);
    c->regex_match_limit = PT_REGEX_MATCH_LIMIT;
    *out = c;
    return 0;
}
