/*
 * The configuration file, in two layers as in nginx: a generic parse of the text into a tree of
 * directives (words with their file, line and column; blocks hold children; includes are
 * spliced in), then a directive table whose handlers fill pt_conf and pt_conf_server. A new
 * directive is one table row and, unless an existing handler fits, one handler.
 */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server/core/vars.h"
#include "server/handlers/proxy.h"
#include "server/site/tls_ctx.h"
#include "server/handlers/upstream.h"

/* ---- memory: a configuration is read once at start-up, so running out of memory aborts ---- */

__attribute__((noreturn)) static void oom(int line)
{
    fprintf(stderr, "porter: out of memory (%s:%d)\n", __FILE__, line);
    abort();
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom(__LINE__);
    return p;
}

static void *xcalloc(size_t size)
{
    return memset(xrealloc(NULL, size), 0, size);
}

static char *xstrndup(const char *s, size_t len)
{
    char *d = xrealloc(NULL, len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static char *xstrdup(const char *s)
{
    return s ? xstrndup(s, strlen(s)) : NULL;
}

/* Arrays grow by doubling when their length reaches a power of two, so they need no capacity
 * field: PUSH(a, n) appends one element (uninitialised) and yields its address. */
static void *grow(void *a, size_t n, size_t size)
{
    if (n & (n - 1))
        return a;
    return xrealloc(a, (n ? 2 * n : 1) * size);
}

#define PUSH(a, n) ((a) = grow((a), (n), sizeof *(a)), &(a)[(n)++])

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Empties a list a level is about to replace. */
static void strv_clear(char ***v, size_t *n)
{
    strv_free(*v, *n);
    *v = NULL;
    *n = 0;
}

static void strv_copy(char ***dst, size_t *ndst, char *const *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *PUSH(*dst, *ndst) = xstrdup(src[i]);
}

static void headers_free(pt_conf_header *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

/* Appends deep copies of `n` header entries (a NULL name or value stays NULL). */
static void headers_copy(pt_conf_header **dst, size_t *ndst, const pt_conf_header *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *PUSH(*dst, *ndst) =
            (pt_conf_header){xstrdup(src[i].name), xstrdup(src[i].value), src[i].always};
}

/* A level that names a list directive (add_header, proxy_set_header, ...) first drops the list
 * it inherited. */
static void headers_clear(pt_conf_header **v, size_t *n)
{
    headers_free(*v, *n);
    *v = NULL;
    *n = 0;
}

static void types_free(pt_conf_type *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].type);
        free(t[i].ext);
    }
    free(t);
}

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

static void proxy_dispose(pt_conf_proxy *p);

static void location_dispose(pt_conf_location *l)
{
    free(l->ret.text);
    free(l->path);
    if (l->re) {
        regfree(l->re);
        free(l->re);
    }
    free(l->root);
    free(l->alias);
    strv_free(l->index, l->nindex);
    files_dispose(&l->static_files);
    proxy_dispose(&l->proxy);
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* ---- the directive tree ---- */

typedef struct word {
    char *s;
    int line, col;
} word;

typedef struct node {
    word *w; /* w[0] is the directive's name, then its arguments */
    size_t nw;
    const char *file;
    int tline, tcol; /* the ';' or '{' that ended the directive */
    bool block;
    struct node *kids;
    size_t nkids;
} node;

static void node_dispose(node *n)
{
    for (size_t i = 0; i < n->nw; i++)
        free(n->w[i].s);
    free(n->w);
    for (size_t i = 0; i < n->nkids; i++)
        node_dispose(&n->kids[i]);
    free(n->kids);
}

/* ---- loading state and error reporting ---- */

typedef struct named_ref {
    const node *d; /* the directive */
    size_t i;      /* the word naming the location */
} named_ref;

typedef struct loader {
    pt_conf *conf;
    char *err;
    size_t errlen;
    struct {
        dev_t dev;
        ino_t ino;
    } open[PT_CONF_INCLUDE_DEPTH + 1]; /* files being read, for include cycles */
    int nopen;
    int depth;             /* texts being parsed, the main one included */
    int eof_line, eof_col; /* the end of the main text */

    /* semantic pass */
    pt_conf_server *srv;   /* the server being filled; NULL at the top level */
    pt_conf_location *loc; /* the location being filled */
    const void *seen[128]; /* fields set at this level, to reject duplicates */
    size_t nseen;
    bool first;           /* the running directive is the first of its field here */
    const node **servers; /* server blocks, applied after the whole top level */
    size_t nservers;
    const node **locs; /* the location blocks of cx->srv, applied after its directives */
    size_t nlocs;
    /* `@NAME` in try_files and error_page, checked against each server's named locations:
     * the top level's (the first ntoprefs) for every server, then the server's own. */
    named_ref refs[64];
    size_t nrefs, ntoprefs;
} loader;

static int vfail(loader *cx, int rc, const char *file, int line, int col, const char *fmt,
                 va_list ap)
{
    if (cx->err && cx->errlen) {
        int n = snprintf(cx->err, cx->errlen, "%s:%d:%d: ", file, line, col);
        if (n >= 0 && (size_t)n < cx->errlen)
            vsnprintf(cx->err + n, cx->errlen - (size_t)n, fmt, ap);
    }
    return rc;
}

__attribute__((format(printf, 6, 7))) static int fail(loader *cx, int rc, const char *file,
                                                      int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc = vfail(cx, rc, file, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* Reports an invalid directive at its word `i` (0: the name) and returns -EINVAL. */
__attribute__((format(printf, 4, 5))) static int bad(loader *cx, const node *d, size_t i,
                                                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(cx, -EINVAL, d->file, d->w[i].line, d->w[i].col, fmt, ap);
    va_end(ap);
    return rc;
}

static const char *add_file(loader *cx, const char *name)
{
    pt_conf *c = cx->conf;
    return *PUSH(c->files, c->nfiles) = xstrdup(name);
}

/* ---- lexer ---- */

typedef struct lexer {
    const char *file;
    const char *p, *end;
    int line, col;
} lexer;

enum { T_EOF, T_WORD, T_SEMI, T_OPEN, T_CLOSE };

typedef struct sbuf {
    char *s;
    size_t n;
} sbuf;

static void sb_putc(sbuf *b, char c)
{
    *PUSH(b->s, b->n) = c;
}

static void adv(lexer *lx)
{
    if (*lx->p == '\n') {
        lx->line++;
        lx->col = 1;
    } else {
        lx->col++;
    }
    lx->p++;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Consumes a backslash and the character after it, appending what the pair means. Unknown
 * escapes stay as written, as in nginx, so a regex's "\." survives. */
static void unescape(lexer *lx, sbuf *b)
{
    char c = lx->p[1];
    char to = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
    if (c != '"' && c != '\'' && c != '\\' && to == c)
        sb_putc(b, '\\');
    sb_putc(b, to);
    adv(lx);
    adv(lx);
}

/* Reads the next token into *w (a word's text is heap-allocated) and its kind into *kind. */
static int lex(loader *cx, lexer *lx, word *w, int *kind)
{
    for (;;) {
        while (lx->p < lx->end && is_space(*lx->p))
            adv(lx);
        if (lx->p == lx->end || *lx->p != '#')
            break;
        while (lx->p < lx->end && *lx->p != '\n')
            adv(lx);
    }
    *w = (word){.line = lx->line, .col = lx->col};
    if (lx->p == lx->end) {
        *kind = T_EOF;
        return 0;
    }
    char c = *lx->p;
    if (c == ';' || c == '{' || c == '}') {
        *kind = c == ';' ? T_SEMI : c == '{' ? T_OPEN : T_CLOSE;
        adv(lx);
        return 0;
    }
    if (c == '\0')
        return fail(cx, -EINVAL, lx->file, lx->line, lx->col, "unexpected NUL byte");

    sbuf b = {0};
    if (c == '"' || c == '\'') {
        adv(lx);
        for (;;) {
            if (lx->p == lx->end) {
                free(b.s);
                return fail(cx, -EINVAL, lx->file, w->line, w->col, "unterminated string");
            }
            if (*lx->p == c) {
                adv(lx);
                break;
            }
            if (*lx->p == '\0') {
                free(b.s);
                return fail(cx, -EINVAL, lx->file, lx->line, lx->col, "unexpected NUL byte");
            }
            if (*lx->p == '\\' && lx->p + 1 < lx->end) {
                unescape(lx, &b);
            } else {
                sb_putc(&b, *lx->p);
                adv(lx);
            }
        }
        /* nginx wants a separator after a quoted string: "a"b is more likely a typo than a
         * concatenation. */
        if (lx->p < lx->end && !is_space(*lx->p) && !strchr(";{}", *lx->p)) {
            free(b.s);
            return fail(cx, -EINVAL, lx->file, lx->line, lx->col, "unexpected \"%c\"", *lx->p);
        }
    } else {
        while (lx->p < lx->end && !is_space(*lx->p) && *lx->p != '\0' && !strchr(";{}", *lx->p)) {
            if (*lx->p == '$' && lx->p + 1 < lx->end && lx->p[1] == '{') {
                /* nginx's ${name}: its braces belong to the word, not to a block */
                while (lx->p < lx->end && *lx->p != '}' && *lx->p != ';' && !is_space(*lx->p)) {
                    sb_putc(&b, *lx->p);
                    adv(lx);
                }
                if (lx->p < lx->end && *lx->p == '}') {
                    sb_putc(&b, '}');
                    adv(lx);
                }
                continue;
            }
            if (*lx->p == '\\' && lx->p + 1 < lx->end) {
                unescape(lx, &b);
            } else {
                sb_putc(&b, *lx->p);
                adv(lx);
            }
        }
    }
    sb_putc(&b, '\0');
    w->s = b.s;
    *kind = T_WORD;
    return 0;
}

/* ---- parser: text to tree ---- */

static int parse_file(loader *cx, const char *path, node *into, const node *inc);

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* Returns `rel` relative to the directory of the file `file`; with `escape`, the directory's
 * glob characters are escaped so that only `rel` acts as a pattern. */
static char *beside(const char *file, const char *rel, bool escape)
{
    const char *slash = strrchr(file, '/');
    if (rel[0] == '/' || !slash)
        return xstrdup(rel);
    sbuf b = {0};
    for (const char *p = file; p <= slash; p++) {
        if (escape && strchr("*?[\\", *p))
            sb_putc(&b, '\\');
        sb_putc(&b, *p);
    }
    for (const char *p = rel; *p; p++)
        sb_putc(&b, *p);
    sb_putc(&b, '\0');
    return b.s;
}

/* `include PATH;`: parses the file(s) and appends their directives to `into`, so the tree the
 * semantic layer sees has no includes left. */
static int include(loader *cx, const node *d, node *into)
{
    if (d->block)
        return fail(cx, -EINVAL, d->file, d->tline, d->tcol,
                    "directive \"include\" is not terminated by \";\"");
    if (d->nw != 2)
        return bad(cx, d, 0, "invalid number of arguments in \"include\" directive");
    const char *arg = d->w[1].s;
    if (!arg[0])
        return bad(cx, d, 1, "invalid path \"\" in \"include\"");
    if (!has_glob(arg)) {
        char *path = beside(d->file, arg, false);
        int rc = parse_file(cx, path, into, d);
        free(path);
        return rc;
    }
    char *pattern = beside(d->file, arg, true);
    glob_t g;
    int rc = 0, grc = glob(pattern, 0, NULL, &g);
    if (grc == GLOB_NOSPACE)
        oom(__LINE__);
    /* nginx: a pattern that matches nothing is fine (an empty conf.d/) */
    if (grc != 0 && grc != GLOB_NOMATCH)
        rc = bad(cx, d, 1, "cannot read \"%s\": %s", pattern, strerror(errno));
    for (size_t i = 0; grc == 0 && rc == 0 && i < g.gl_pathc; i++)
        rc = parse_file(cx, g.gl_pathv[i], into, d);
    if (grc == 0)
        globfree(&g);
    free(pattern);
    return rc;
}

/* Parses directives up to the end of the text, or with `nested` up to the '}' closing the
 * block, appending them to `into`. What was appended before an error stays there for the
 * caller to dispose. */
static int parse_block(loader *cx, lexer *lx, node *into, bool nested)
{
    static const char *const unexpected[] = {[T_SEMI] = ";", [T_OPEN] = "{"};
    node cur = {0};
    int rc, kind = T_EOF;
    for (;;) {
        word w;
        if ((rc = lex(cx, lx, &w, &kind)) < 0)
            goto fail;
        switch (kind) {
        case T_WORD:
            *PUSH(cur.w, cur.nw) = w;
            continue;
        case T_EOF:
            if (cur.nw)
                rc = fail(cx, -EINVAL, lx->file, w.line, w.col,
                          "unexpected end of file, expecting \";\" or \"}\"");
            else if (nested)
                rc = fail(cx, -EINVAL, lx->file, w.line, w.col,
                          "unexpected end of file, expecting \"}\"");
            goto fail;
        case T_CLOSE:
            if (cur.nw || !nested) {
                rc = fail(cx, -EINVAL, lx->file, w.line, w.col, "unexpected \"}\"");
                goto fail;
            }
            return 0;
        }
        if (!cur.nw) {
            rc = fail(cx, -EINVAL, lx->file, w.line, w.col, "unexpected \"%s\"", unexpected[kind]);
            goto fail;
        }
        cur.file = lx->file;
        cur.tline = w.line;
        cur.tcol = w.col;
        cur.block = kind == T_OPEN;
        if (strcmp(cur.w[0].s, "include") == 0) {
            rc = include(cx, &cur, into);
            node_dispose(&cur);
            cur = (node){0};
            if (rc < 0)
                return rc;
            continue;
        }
        node *n = PUSH(into->kids, into->nkids);
        *n = cur;
        cur = (node){0};
        /* the recursion appends to n->kids only, so `n` stays valid */
        if (n->block && (rc = parse_block(cx, lx, n, true)) < 0)
            return rc;
    }
fail:
    node_dispose(&cur);
    return rc;
}

static int parse_text(loader *cx, const char *file, const char *text, size_t len, node *into)
{
    lexer lx = {.file = file, .p = text, .end = text + len, .line = 1, .col = 1};
    cx->depth++;
    int rc = parse_block(cx, &lx, into, false);
    cx->depth--;
    if (rc == 0 && cx->depth == 0) {
        cx->eof_line = lx.line;
        cx->eof_col = lx.col;
    }
    return rc;
}

/* Reads and parses the file at `path` into `into`; `inc` is the include directive naming it,
 * where errors opening it are reported, or NULL for the main file. */
static int parse_file(loader *cx, const char *path, node *into, const node *inc)
{
    char *text = NULL;
    size_t len = 0;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        goto unreadable;
    for (int i = 0; i < cx->nopen; i++) {
        if (cx->open[i].dev == st.st_dev && cx->open[i].ino == st.st_ino) {
            bad(cx, inc, 1, "include cycle: \"%s\" is already being read", path);
            rc = -ELOOP;
            goto done;
        }
    }
    if (inc && cx->depth > PT_CONF_INCLUDE_DEPTH) {
        bad(cx, inc, 1, "includes nested too deeply (more than %d)", PT_CONF_INCLUDE_DEPTH);
        rc = -ELOOP;
        goto done;
    }
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
    text = xrealloc(NULL, cap);
    for (;;) {
        if (len == cap)
            text = xrealloc(text, cap *= 2);
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto unreadable;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    fd = -1;
    const char *name = add_file(cx, path);
    cx->open[cx->nopen].dev = st.st_dev;
    cx->open[cx->nopen++].ino = st.st_ino;
    rc = parse_text(cx, name, text, len, into);
    cx->nopen--;
    goto done;

unreadable:
    rc = -errno;
    if (inc)
        bad(cx, inc, 1, "cannot open \"%s\": %s", path, strerror(-rc));
    else if (cx->err && cx->errlen)
        snprintf(cx->err, cx->errlen, "%s: cannot open: %s", path, strerror(-rc));
done:
    if (fd >= 0)
        close(fd);
    free(text);
    return rc;
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

/* Parses a whole string of digits no greater than `max`. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
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

/* Returns `rel` made absolute against the directory `base`, cleaned. */
static char *path_join(const char *base, const char *rel)
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

/* ---- directive handlers ---- */

/* A handler gets the directive, the field its table row names at this level (NULL for none)
 * and the row's companion field (a count, a level), which only the handlers that use one read. */
typedef int (*set_fn)(loader *cx, const node *d, void *field, void *aux);

static const char *arg1(const node *d)
{
    return d->w[1].s;
}

static bool is_off(const char *s)
{
    return strcmp(s, "off") == 0 || strcmp(s, "unlimited") == 0;
}

static int set_size(loader *cx, const node *d, void *field, void *aux)
{
    size_t *v = field;
    if (is_off(arg1(d)))
        *v = PT_LIMIT_NONE;
    else if (pt_parse_size(arg1(d), v) < 0)
        return bad(cx, d, 1, "invalid size \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    return 0;
}

static int set_count(loader *cx, const node *d, void *field, void *aux)
{
    size_t *v = field;
    uint64_t n;
    if (is_off(arg1(d)))
        *v = PT_LIMIT_NONE;
    else if (parse_uint(arg1(d), SIZE_MAX, &n) < 0)
        return bad(cx, d, 1, "invalid number \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    else
        *v = (size_t)n;
    return 0;
}

static int set_time(loader *cx, const node *d, void *field, void *aux)
{
    double *v = field;
    if (is_off(arg1(d))) {
        *v = PT_TIMEOUT_NONE;
        return 0;
    }
    if (pt_parse_time(arg1(d), v) < 0)
        return bad(cx, d, 1, "invalid time \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    /* pt_limits reads 0 as "no timeout"; nginx users write 0 meaning "at once", so make them
     * say which they mean. */
    if (*v == 0)
        return bad(cx, d, 1, "invalid time \"%s\" in \"%s\": write \"off\" for no timeout", arg1(d),
                   d->w[0].s);
    return 0;
}

static int set_flag(loader *cx, const node *d, void *field, void *aux)
{
    bool *v = field;
    if (strcasecmp(arg1(d), "on") == 0)
        *v = true;
    else if (strcasecmp(arg1(d), "off") == 0)
        *v = false;
    else
        return bad(cx, d, 1,
                   "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"",
                   arg1(d), d->w[0].s);
    return 0;
}

static int set_string(loader *cx, const node *d, void *field, void *aux)
{
    char **v = field;
    free(*v);
    *v = xstrdup(arg1(d));
    return 0;
}

static int set_path(loader *cx, const node *d, void *field, void *aux)
{
    char **v = field;
    if (!arg1(d)[0])
        return bad(cx, d, 1, "invalid path \"\" in \"%s\"", d->w[0].s);
    free(*v);
    *v = path_join(cx->conf->prefix, arg1(d));
    return 0;
}

/* A log path: "stderr" stays literal, anything else is a path under the prefix. */
static char *log_path(loader *cx, const char *s)
{
    return strcmp(s, "stderr") == 0 ? xstrdup(s) : path_join(cx->conf->prefix, s);
}

static int set_access_log(loader *cx, const node *d, void *field, void *aux)
{
    char **v = field;
    if (!arg1(d)[0])
        return bad(cx, d, 1, "invalid path \"\" in \"%s\"", d->w[0].s);
    if (d->nw > 2 && strcmp(arg1(d), "off") == 0)
        return bad(cx, d, 2, "invalid parameter \"%s\" in \"%s\"", d->w[2].s, d->w[0].s);
    if (d->nw > 2 && strcmp(d->w[2].s, "combined") != 0)
        return bad(cx, d, 2, "unknown log format \"%s\"", d->w[2].s);
    free(*v);
    *v = strcmp(arg1(d), "off") == 0 ? NULL : log_path(cx, arg1(d));
    return 0;
}

static int set_error_log(loader *cx, const node *d, void *field, void *aux)
{
    static const struct {
        const char *name;
        pt_log_level level;
    } levels[] = {{"debug", PT_LOG_DEBUG}, {"info", PT_LOG_INFO},   {"notice", PT_LOG_NOTICE},
                  {"warn", PT_LOG_WARN},   {"error", PT_LOG_ERROR}, {"crit", PT_LOG_CRIT},
                  {"alert", PT_LOG_CRIT},  {"emerg", PT_LOG_CRIT}};
    char **v = field;
    pt_log_level *level = aux;
    size_t i = 0;
    if (!arg1(d)[0])
        return bad(cx, d, 1, "invalid path \"\" in \"%s\"", d->w[0].s);
    /* nginx would write to a file named "off"; nobody means that */
    if (strcmp(arg1(d), "off") == 0)
        return bad(cx, d, 1, "\"error_log off\" is not supported, use \"error_log stderr crit\"");
    if (d->nw > 2) {
        while (i < sizeof levels / sizeof *levels && strcmp(d->w[2].s, levels[i].name) != 0)
            i++;
        if (i == sizeof levels / sizeof *levels)
            return bad(cx, d, 2, "invalid log level \"%s\"", d->w[2].s);
        *level = levels[i].level;
    }
    free(*v);
    *v = log_path(cx, arg1(d));
    return 0;
}

static int set_workers(loader *cx, const node *d, void *field, void *aux)
{
    int *v = field;
    uint64_t n;
    if (strcmp(arg1(d), "auto") == 0)
        *v = 0;
    else if (parse_uint(arg1(d), 1024, &n) < 0 || n == 0)
        return bad(cx, d, 1, "invalid value \"%s\" in \"%s\", it must be 1..1024 or \"auto\"",
                   arg1(d), d->w[0].s);
    else
        *v = (int)n;
    return 0;
}

static int set_index(loader *cx, const node *d, void *field, void *aux)
{
    char ***v = field;
    size_t *n = aux;
    for (size_t i = 1; i < d->nw; i++) {
        if (!d->w[i].s[0])
            return bad(cx, d, i, "invalid file name \"\" in \"%s\"", d->w[0].s);
    }
    /* replaces what the server inherited */
    strv_clear(v, n);
    for (size_t i = 1; i < d->nw; i++)
        *PUSH(*v, *n) = xstrdup(d->w[i].s);
    return 0;
}

static int set_names(loader *cx, const node *d, void *field, void *aux)
{
    char ***v = field;
    size_t *n = aux;
    for (size_t i = 1; i < d->nw; i++) {
        char *name = *PUSH(*v, *n) = xstrdup(d->w[i].s);
        /* Host matching is case-insensitive; lower case once here so it is a memcmp later.
         * A regex keeps its case (it may contain classes like \D). */
        if (name[0] != '~')
            lower(name);
    }
    return 0;
}

static int set_types(loader *cx, const node *d, void *field, void *aux)
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
        const node *t = &d->kids[k];
        if (t->block)
            return fail(cx, -EINVAL, t->file, t->tline, t->tcol,
                        "directive \"%s\" is not terminated by \";\"", t->w[0].s);
        if (t->nw < 2)
            return bad(cx, t, 0, "no extensions for type \"%s\"", t->w[0].s);
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

/* Splits "[HOST:]PORT" into l->host and l->port (canonical decimal). */
static int listen_addr(loader *cx, const node *d, pt_conf_listen *l)
{
    const char *a = arg1(d), *port;
    const char *host = NULL;
    size_t hostlen = 0;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (!close || close == a + 1 || (close[1] && close[1] != ':'))
            return bad(cx, d, 1, "invalid address \"%s\" in \"listen\"", a);
        if (!close[1])
            return bad(cx, d, 1, "no port in \"%s\" of the \"listen\" directive", a);
        host = a + 1;
        hostlen = (size_t)(close - host);
        port = close + 2;
    } else if ((port = strrchr(a, ':')) != NULL) {
        host = a;
        hostlen = (size_t)(port - a);
        port++;
        if (hostlen == 0 || memchr(host, ':', hostlen))
            return bad(cx, d, 1, "invalid address \"%s\" in \"listen\"%s", a,
                       hostlen ? ", write an IPv6 address in brackets" : "");
        if (hostlen == 1 && host[0] == '*')
            host = NULL;
    } else if (strspn(a, "0123456789+-")) {
        port = a;
    } else {
        return bad(cx, d, 1, "no port in \"%s\" of the \"listen\" directive", a);
    }
    uint64_t n;
    if (parse_uint(port, 65535, &n) < 0)
        return bad(cx, d, 1, "invalid port in \"%s\" of the \"listen\" directive", a);
    char buf[8];
    snprintf(buf, sizeof buf, "%u", (unsigned)n);
    l->port = xstrdup(buf);
    l->host = host ? xstrndup(host, hostlen) : NULL;
    return 0;
}

static int set_listen(loader *cx, const node *d, void *field, void *aux)
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
        } else if (strcmp(opt, "reuseport") == 0)
            l.reuseport = true;
        else if (strcmp(opt, "deferred") == 0)
            l.deferred = true;
        else if (strncmp(opt, "backlog=", 8) == 0 && parse_uint(opt + 8, INT_MAX, &backlog) == 0)
            l.backlog = (int)backlog;
        else if (strncmp(opt, "backlog=", 8) == 0)
            rc = bad(cx, d, i, "invalid backlog \"%s\" in \"listen\"", opt + 8);
        else if (strcmp(opt, "notsent_lowat=off") == 0)
            l.notsent_lowat = 0;
        else if (strncmp(opt, "notsent_lowat=", 14) == 0 && pt_parse_size(opt + 14, &lowat) == 0 &&
                 lowat > 0 && lowat <= INT_MAX)
            l.notsent_lowat = (int)lowat;
        else if (strncmp(opt, "notsent_lowat=", 14) == 0)
            rc = bad(cx, d, i, "invalid notsent_lowat \"%s\" in \"listen\"", opt + 14);
        else
            rc = bad(cx, d, i, "invalid parameter \"%s\" in \"listen\"", opt);
        l.options |= socket_option;
    }
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        char buf[300];
        if (same_addr(&(*v)[i], &l))
            rc = bad(cx, d, 1, "duplicate listen \"%s\"", addr_str(&l, buf, sizeof buf));
    }
    if (rc < 0) {
        free(l.host);
        free(l.port);
        return rc;
    }
    *PUSH(*v, *n) = l;
    return 0;
}

static int apply(loader *cx, const node *list, size_t n, unsigned ctx);

static int set_http(loader *cx, const node *d, void *field, void *aux);
static int set_events(loader *cx, const node *d, void *field, void *aux);

static int set_server(loader *cx, const node *d, void *field, void *aux)
{
    /* applied after the whole top level, so that top-level values written after the block
     * still reach it */
    *PUSH(cx->servers, cx->nservers) = d;
    return 0;
}

static int set_location(loader *cx, const node *d, void *field, void *aux)
{
    /* applied after the server's own directives, which it inherits wherever they are written */
    *PUSH(cx->locs, cx->nlocs) = d;
    return 0;
}

static bool seen_here(const loader *cx, const void *field)
{
    for (size_t k = 0; k < cx->nseen; k++)
        if (cx->seen[k] == field)
            return true;
    return false;
}

/* root and alias exclude each other in a location, as in nginx. */
static int set_root(loader *cx, const node *d, void *field, void *aux)
{
    if (cx->loc && seen_here(cx, &cx->loc->alias))
        return bad(cx, d, 0,
                   "\"root\" directive is duplicate, \"alias\" directive was specified "
                   "earlier");
    *(bool *)aux = true;
    return set_path(cx, d, field, NULL);
}

static int set_alias(loader *cx, const node *d, void *field, void *aux)
{
    if (cx->loc->match == PT_MATCH_REGEX || cx->loc->match == PT_MATCH_NAMED)
        return bad(cx, d, 0, "\"alias\" in a %s location is not supported",
                   cx->loc->match == PT_MATCH_NAMED ? "named" : "regular expression");
    if (seen_here(cx, &cx->loc->root))
        return bad(cx, d, 0,
                   "\"alias\" directive is duplicate, \"root\" directive was specified "
                   "earlier");
    return set_path(cx, d, field, aux);
}

static int set_status(loader *cx, const node *d, void *field, void *aux)
{
    if (cx->loc->handler == PT_HANDLER_RETURN)
        return bad(cx, d, 0, "\"status\" and \"return\" in one location");
    *(pt_handler_kind *)field = PT_HANDLER_STATUS;
    return 0;
}

/* try_files names files with $uri (the decoded, normalised request path); add_header and
 * error_page expand nothing. */
static int check_vars(loader *cx, const node *d, size_t i, bool uri_ok)
{
    for (const char *p = strchr(d->w[i].s, '$'); p; p = strchr(p + 1, '$')) {
        pt_var_ref v = pt_var_parse(p);
        if (!uri_ok || v.malformed || !pt_var_allowed(PT_VARS_TRY_FILES, v.id))
            return bad(cx, d, i, "unknown variable \"$%.*s\" in \"%s\"%s", (int)v.name.len,
                       v.name.p, d->w[0].s,
                       uri_ok ? ", only $uri is supported" : ", variables are not supported");
    }
    return 0;
}

/* A reference to a named location (`@NAME` in try_files or error_page), checked once the server
 * block is read: it must name a location of the same server. */
static int named_reference(loader *cx, const node *d, size_t i)
{
    if (cx->nrefs == sizeof cx->refs / sizeof *cx->refs)
        return bad(cx, d, i, "too many named location references in one server");
    cx->refs[cx->nrefs++] = (named_ref){d, i};
    return 0;
}

static int set_try_files(loader *cx, const node *d, void *field, void *aux)
{
    char ***v = field;
    size_t *n = aux;
    for (size_t i = 1; i < d->nw; i++) {
        const char *a = d->w[i].s;
        bool last = i == d->nw - 1;
        int rc = check_vars(cx, d, i, true);
        if (rc < 0)
            return rc;
        if (a[0] == '@' && (!last || !a[1]))
            return bad(cx, d, i, "invalid named location \"%s\" in \"try_files\"%s", a,
                       last ? "" : ", only the last argument may name one");
        if (last && a[0] == '@') {
            rc = named_reference(cx, d, i);
            if (rc < 0)
                return rc;
        } else if (last && a[0] == '=') {
            uint64_t code;
            if (parse_uint(a + 1, 599, &code) < 0 || code < 100)
                return bad(cx, d, i, "invalid code \"%s\" in \"try_files\"", a);
        } else if (a[0] != '/' && strncmp(a, "$uri", 4) != 0) {
            return bad(cx, d, i,
                       "invalid URI \"%s\" in \"try_files\", it must start with \"/\" or "
                       "\"$uri\"",
                       a);
        } else if (!last && strchr(a, '?')) {
            return bad(cx, d, i,
                       "a query in \"%s\" of \"try_files\" is only allowed in the last "
                       "argument",
                       a);
        }
    }
    for (size_t i = 1; i < d->nw; i++)
        *PUSH(*v, *n) = xstrdup(d->w[i].s);
    return 0;
}

static int set_autoindex_format(loader *cx, const node *d, void *field, void *aux)
{
    pt_conf_autoindex_format *v = field;
    if (strcmp(arg1(d), "html") == 0)
        *v = PT_AUTOINDEX_HTML;
    else if (strcmp(arg1(d), "json") == 0)
        *v = PT_AUTOINDEX_JSON;
    else
        return bad(cx, d, 1, "invalid value \"%s\" in \"%s\", it must be \"html\" or \"json\"",
                   arg1(d), d->w[0].s);
    return 0;
}

/* `expires off | epoch | max | [modified] [-]TIME;` */
static int set_expires(loader *cx, const node *d, void *field, void *aux)
{
    pt_conf_expires *kind = field;
    double *secs = aux;
    size_t i = 1;
    if (d->nw == 2 && strcmp(arg1(d), "off") == 0) {
        *kind = PT_EXPIRES_OFF;
        return 0;
    }
    if (d->nw == 2 && strcmp(arg1(d), "epoch") == 0) {
        *kind = PT_EXPIRES_EPOCH;
        return 0;
    }
    if (d->nw == 2 && strcmp(arg1(d), "max") == 0) {
        *kind = PT_EXPIRES_MAX;
        return 0;
    }
    pt_conf_expires k = PT_EXPIRES_ACCESS;
    if (d->nw == 3) {
        if (strcmp(arg1(d), "modified") != 0 && strcmp(arg1(d), "access") != 0)
            return bad(cx, d, 1, "invalid value \"%s\" in \"expires\"", arg1(d));
        if (strcmp(arg1(d), "modified") == 0)
            k = PT_EXPIRES_MODIFIED;
        i = 2;
    }
    const char *t = d->w[i].s;
    bool neg = t[0] == '-';
    double v;
    if (t[0] == '@')
        return bad(cx, d, i, "\"expires @TIME\" is not supported");
    if (pt_parse_time(t + neg, &v) < 0)
        return bad(cx, d, i, "invalid value \"%s\" in \"expires\"", t);
    *kind = k;
    *secs = neg ? -v : v;
    return 0;
}

static bool is_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return false;
    return true;
}

static int set_add_header(loader *cx, const node *d, void *field, void *aux)
{
    pt_conf_header **v = field;
    size_t *n = aux;
    if (!is_token(d->w[1].s))
        return bad(cx, d, 1, "invalid header name \"%s\" in \"add_header\"", d->w[1].s);
    for (const char *p = d->w[2].s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return bad(cx, d, 2, "invalid character in the value of \"add_header\"");
    int rc = check_vars(cx, d, 2, false);
    if (rc < 0)
        return rc;
    if (d->nw == 4 && strcmp(d->w[3].s, "always") != 0)
        return bad(cx, d, 3, "invalid parameter \"%s\" in \"add_header\"", d->w[3].s);
    size_t total = strlen(d->w[1].s) + strlen(d->w[2].s) + 4;
    for (size_t i = 0; !cx->first && i < *n; i++)
        total += strlen((*v)[i].name) + strlen((*v)[i].value) + 4;
    if (total > PT_CONF_HEADERS_MAX)
        return bad(cx, d, 0, "the \"add_header\" lines of this level exceed %d bytes",
                   PT_CONF_HEADERS_MAX);
    if (cx->first) /* a level with add_header of its own does not inherit its parent's */
        headers_clear(v, n);
    *PUSH(*v, *n) = (pt_conf_header){xstrdup(d->w[1].s), xstrdup(d->w[2].s), d->nw == 4};
    return 0;
}

/* `error_page CODE ... [=[RESPONSE]] URI;` */
static int set_error_page(loader *cx, const node *d, void *field, void *aux)
{
    pt_conf_error_page **v = field;
    size_t *n = aux;
    size_t last = d->nw - 1, ncodes = last - 1;
    const char *uri = d->w[last].s;
    int response = 0;
    if (d->w[last - 1].s[0] == '=') {
        const char *r = d->w[last - 1].s + 1;
        uint64_t code;
        ncodes--;
        if (!*r)
            response = -1;
        else if (parse_uint(r, 599, &code) < 0 || code < 200)
            return bad(cx, d, last - 1, "invalid value \"%s\" in \"error_page\"", r - 1);
        else
            response = (int)code;
    }
    if (ncodes == 0)
        return bad(cx, d, 0, "invalid number of arguments in \"error_page\" directive");
    if (uri[0] == '@') {
        if (!uri[1])
            return bad(cx, d, last, "invalid named location \"%s\"", uri);
        int rc = named_reference(cx, d, last);
        if (rc < 0)
            return rc;
    }
    if (uri[0] != '/' && uri[0] != '@' && strncmp(uri, "http://", 7) != 0 &&
        strncmp(uri, "https://", 8) != 0)
        return bad(cx, d, last, "invalid URI \"%s\" in \"error_page\"", uri);
    for (const char *p = uri; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return bad(cx, d, last, "invalid URI \"%s\" in \"error_page\"", uri);
    int rc = check_vars(cx, d, last, false);
    if (rc < 0)
        return rc;
    for (size_t i = 1; i <= ncodes; i++) {
        uint64_t code;
        if (parse_uint(d->w[i].s, 599, &code) < 0 || code < 300 || code == 499)
            return bad(cx, d, i, "value \"%s\" must be between 300 and 599", d->w[i].s);
    }
    if (cx->first) {
        /* as for add_header: a level's own list replaces the inherited one */
        for (size_t i = 0; i < *n; i++)
            free((*v)[i].uri);
        free(*v);
        *v = NULL;
        *n = 0;
    }
    for (size_t i = 1; i <= ncodes; i++)
        *PUSH(*v, *n) = (pt_conf_error_page){atoi(d->w[i].s), response, xstrdup(uri)};
    return 0;
}

static int set_max_ranges(loader *cx, const node *d, void *field, void *aux)
{
    size_t *v = field;
    uint64_t n;
    if (parse_uint(arg1(d), PT_CONF_MAX_RANGES, &n) < 0)
        return bad(cx, d, 1, "invalid value \"%s\" in \"max_ranges\", it must be 0..%d", arg1(d),
                   PT_CONF_MAX_RANGES);
    *v = (size_t)n;
    return 0;
}

/* A size where "off" means 0 (nothing). */
static int set_size_or_off(loader *cx, const node *d, void *field, void *aux)
{
    size_t *v = field;
    if (strcmp(arg1(d), "off") == 0)
        *v = 0;
    else if (pt_parse_size(arg1(d), v) < 0)
        return bad(cx, d, 1, "invalid size \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    return 0;
}

/* A time where 0 means "every time" rather than "no limit". */
static int set_interval(loader *cx, const node *d, void *field, void *aux)
{
    double *v = field;
    if (pt_parse_time(arg1(d), v) < 0)
        return bad(cx, d, 1, "invalid time \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    return 0;
}

/* `open_file_cache off | max=N [inactive=TIME];` */
static int set_open_file_cache(loader *cx, const node *d, void *field, void *aux)
{
    size_t *max = field;
    double *inactive = aux;
    if (strcmp(arg1(d), "off") == 0) {
        if (d->nw > 2)
            return bad(cx, d, 2, "invalid parameter \"%s\" in \"open_file_cache\"", d->w[2].s);
        *max = 0;
        return 0;
    }
    bool have_max = false;
    for (size_t i = 1; i < d->nw; i++) {
        const char *a = d->w[i].s;
        uint64_t n;
        double t;
        if (strncmp(a, "max=", 4) == 0 && parse_uint(a + 4, SIZE_MAX, &n) == 0 && n > 0) {
            *max = (size_t)n;
            have_max = true;
        } else if (strncmp(a, "inactive=", 9) == 0 && pt_parse_time(a + 9, &t) == 0 && t > 0) {
            *inactive = t;
        } else {
            return bad(cx, d, i, "invalid parameter \"%s\" in \"open_file_cache\"", a);
        }
    }
    if (!have_max)
        return bad(cx, d, 1, "\"open_file_cache\" needs \"max=N\" or \"off\"");
    return 0;
}

/* ---- TLS ---- */

/* `ssl_certificate FILE;` and `ssl_certificate_key FILE;`: repeatable; the first at a level
 * replaces what the level inherited, as with add_header. */
static int set_ssl_file(loader *cx, const node *d, void *field, void *aux)
{
    char ***v = field;
    size_t *n = aux;
    if (!arg1(d)[0])
        return bad(cx, d, 1, "invalid path \"\" in \"%s\"", d->w[0].s);
    if (strncmp(arg1(d), "data:", 5) == 0 || strncmp(arg1(d), "engine:", 7) == 0 ||
        strchr(arg1(d), '$'))
        return bad(cx, d, 1, "\"%s\" takes a file name", d->w[0].s);
    if (cx->first) {
        strv_clear(v, n);
        if (strcmp(d->w[0].s, "ssl_certificate") == 0) {
            pt_conf_ssl *ssl = (pt_conf_ssl *)((char *)field - offsetof(pt_conf_ssl, certs));
            ssl->cert_file = d->file;
            ssl->cert_line = d->w[0].line;
            ssl->cert_col = d->w[0].col;
        }
    }
    *PUSH(*v, *n) = path_join(cx->conf->prefix, arg1(d));
    return 0;
}

/* `ssl_protocols TLSv1.2 TLSv1.3;`: older protocols are refused by name. */
static int set_ssl_protocols(loader *cx, const node *d, void *field, void *aux)
{
    char why[160];
    int lo, hi;
    for (size_t i = 1; i < d->nw; i++) {
        const char *w = d->w[i].s;
        if (pt_tls_parse_protocols(&w, 1, &lo, &hi, why, sizeof why) < 0)
            return bad(cx, d, i, "%s in \"ssl_protocols\"", why);
    }
    const char *words[8];
    size_t n = 0;
    for (size_t i = 1; i < d->nw && n < 8; i++)
        words[n++] = d->w[i].s;
    pt_tls_parse_protocols(words, n, &lo, &hi, why, sizeof why);
    *(int *)field = lo;
    *(int *)aux = hi;
    return 0;
}

/* ssl_ciphers and ssl_ciphersuites are checked by OpenSSL itself, so a typo is reported here
 * with its position instead of when the server starts. */
static int set_ssl_cipher_list(loader *cx, const node *d, void *field, void *aux)
{
    bool suites = strcmp(d->w[0].s, "ssl_ciphersuites") == 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        oom(__LINE__);
    int ok =
        suites ? SSL_CTX_set_ciphersuites(ctx, arg1(d)) : SSL_CTX_set_cipher_list(ctx, arg1(d));
    SSL_CTX_free(ctx);
    ERR_clear_error();
    if (ok != 1)
        return bad(cx, d, 1, "invalid value \"%s\" in \"%s\": no cipher %s", arg1(d), d->w[0].s,
                   suites ? "suite recognised" : "matches");
    return set_string(cx, d, field, aux);
}

/* `ssl_session_cache off | none | builtin[:N] | shared:NAME:SIZE ...;` porter keeps the cache in
 * each process (session tickets resume across workers); shared:NAME:SIZE counts as SIZE / 256
 * sessions, nginx's rule of thumb. With several forms the largest wins. */
static int set_ssl_session_cache(loader *cx, const node *d, void *field, void *aux)
{
    size_t *v = field, most = 0;
    for (size_t i = 1; i < d->nw; i++) {
        const char *a = d->w[i].s;
        uint64_t n;
        size_t bytes;
        const char *colon;
        if (strcmp(a, "off") == 0 || strcmp(a, "none") == 0) {
            if (d->nw > 2)
                return bad(cx, d, i, "\"%s\" must be alone in \"ssl_session_cache\"", a);
            n = 0;
        } else if (strcmp(a, "builtin") == 0) {
            n = 20480;
        } else if (strncmp(a, "builtin:", 8) == 0) {
            if (parse_uint(a + 8, SIZE_MAX, &n) < 0)
                return bad(cx, d, i, "invalid session cache size \"%s\"", a);
        } else if (strncmp(a, "shared:", 7) == 0 && (colon = strrchr(a, ':')) > a + 7 &&
                   pt_parse_size(colon + 1, &bytes) == 0) {
            n = bytes / PT_CONF_SSL_SESSION_BYTES;
            if (n == 0)
                return bad(cx, d, i, "session cache \"%s\" is too small", a);
        } else {
            return bad(cx, d, i, "invalid session cache \"%s\"", a);
        }
        if (n > most)
            most = (size_t)n;
    }
    *v = most;
    return 0;
}

/* A time that must be positive: "off" and 0 make no sense for it. */
static int set_positive_time(loader *cx, const node *d, void *field, void *aux)
{
    double *v = field;
    if (pt_parse_time(arg1(d), v) < 0 || *v <= 0)
        return bad(cx, d, 1, "invalid time \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    return 0;
}

/* A count where 0 would stop the address for good. */
static int set_max_handshakes(loader *cx, const node *d, void *field, void *aux)
{
    int rc = set_count(cx, d, field, aux);
    if (rc == 0 && *(size_t *)field == 0)
        return bad(cx, d, 1, "invalid value \"0\" in \"%s\"", d->w[0].s);
    return rc;
}

/* ---- return ---- */

static bool is_redirect(uint64_t code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/* `return CODE [URL|TEXT];` or `return URL;` */
static int set_return(loader *cx, const node *d, void *field, void *aux)
{
    pt_conf_return *r = field;
    const char *text = d->nw == 3 ? d->w[2].s : NULL;
    size_t ti = 2;
    uint64_t code;
    if (parse_uint(arg1(d), 999, &code) == 0) {
        if (code < 200 || code > 599)
            return bad(cx, d, 1, "invalid return code \"%s\", it must be 200..599", arg1(d));
    } else if (d->nw == 2 &&
               (strncmp(arg1(d), "http://", 7) == 0 || strncmp(arg1(d), "https://", 8) == 0 ||
                strncmp(arg1(d), "$scheme", 7) == 0 || strncmp(arg1(d), "${scheme}", 9) == 0)) {
        code = 302;
        text = arg1(d);
        ti = 1;
    } else {
        return bad(cx, d, 1, "invalid return code \"%s\"", arg1(d));
    }
    if (cx->loc && cx->loc->handler == PT_HANDLER_STATUS)
        return bad(cx, d, 0, "\"status\" and \"return\" in one location");
    for (const char *p = text ? strchr(text, '$') : NULL; p; p = strchr(p + 1, '$')) {
        pt_var_ref v = pt_var_parse(p);
        if (p[1] == '{' && v.malformed)
            return bad(cx, d, ti, "invalid variable name in \"return\"");
        if (!pt_var_allowed(PT_VARS_RETURN, v.id))
            return bad(cx, d, ti,
                       "unknown variable \"$%.*s\" in \"return\", only $host, $request_uri, "
                       "$scheme and $uri are supported",
                       (int)v.name.len, v.name.p);
    }
    if (text && is_redirect(code))
        for (const char *p = text; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                return bad(cx, d, ti, "invalid URL \"%s\" in \"return\"", text);
    free(r->text);
    r->code = (int)code;
    r->text = xstrdup(text);
    if (cx->loc)
        cx->loc->handler = PT_HANDLER_RETURN;
    return 0;
}

/* ---- the reverse proxy ---- */

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

static void proxy_defaults(pt_conf_proxy *p)
{
    p->connect_timeout = p->read_timeout = p->send_timeout = PT_CONF_PROXY_TIMEOUT;
    p->ssl_verify = true;
    p->ssl_server_name = true;
    p->next_upstream = PT_NEXT_ERROR | PT_NEXT_TIMEOUT;
    p->next_upstream_timeout = PT_TIMEOUT_NONE;
    *PUSH(p->redirects, p->nredirects) = (pt_conf_header){NULL, NULL, false}; /* default */
}

static void upstreams_free(pt_conf *c)
{
    for (size_t i = 0; i < c->nupstreams; i++) {
        pt_conf_upstream *u = &c->upstreams[i];
        free(u->name);
        for (size_t k = 0; k < u->nservers; k++)
            free(u->servers[k].address);
        free(u->servers);
    }
    free(c->upstreams);
}

static const pt_conf_upstream *upstream_named(const pt_conf *c, const char *name)
{
    for (size_t i = 0; i < c->nupstreams; i++)
        if (strcmp(c->upstreams[i].name, name) == 0)
            return &c->upstreams[i];
    return NULL;
}

/* `server ADDRESS [weight=N] [max_fails=N] [fail_timeout=TIME];` in an upstream block. */
static int upstream_server(loader *cx, const node *k, pt_conf_upstream *u)
{
    if (k->nw < 2)
        return bad(cx, k, 0, "invalid number of arguments in \"server\" directive");
    const char *addr = k->w[1].s;
    pt_authority a;
    if (pt_authority_parse(&a, addr, strlen(addr), 80) < 0)
        return bad(cx, k, 1, "invalid address \"%s\" in \"server\" of upstream \"%s\"", addr,
                   u->name);
    if (u->nservers >= PT_UPSTREAM_MAX_SERVERS)
        return bad(cx, k, 0, "more than %d servers in upstream \"%s\"", PT_UPSTREAM_MAX_SERVERS,
                   u->name);
    pt_conf_upstream_server sv = {
        .weight = 1,
        .max_fails = 1,
        .fail_timeout = PT_CONF_UPSTREAM_FAIL_TIMEOUT,
        .file = k->file,
        .line = k->w[0].line,
        .col = k->w[0].col,
    };
    for (size_t i = 2; i < k->nw; i++) {
        const char *w = k->w[i].s;
        uint64_t n;
        if (strncmp(w, "weight=", 7) == 0 && parse_uint(w + 7, 1000, &n) == 0 && n > 0)
            sv.weight = (int)n;
        else if (strncmp(w, "max_fails=", 10) == 0 && parse_uint(w + 10, 1000, &n) == 0)
            sv.max_fails = (int)n;
        else if (strncmp(w, "fail_timeout=", 13) == 0 &&
                 pt_parse_time(w + 13, &sv.fail_timeout) == 0 && sv.fail_timeout > 0)
            ;
        else
            return bad(cx, k, i, "invalid parameter \"%s\" in \"server\"", w);
    }
    sv.address = xstrdup(addr);
    *PUSH(u->servers, u->nservers) = sv;
    return 0;
}

/* `upstream NAME { server ...; keepalive N; keepalive_timeout TIME; keepalive_requests N; }`.
 * Its directives are its own (`server` and the keepalive ones mean something else here), so
 * the block is read here rather than through the table. */
static int set_upstream(loader *cx, const node *d, void *field, void *aux)
{
    pt_conf *c = cx->conf;
    const char *name = arg1(d);
    if (!name[0] || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "._-") != strlen(name))
        return bad(cx, d, 1, "invalid upstream name \"%s\"", name);
    if (upstream_named(c, name))
        return bad(cx, d, 1, "duplicate upstream \"%s\"", name);
    pt_conf_upstream *u = PUSH(c->upstreams, c->nupstreams);
    *u = (pt_conf_upstream){
        .name = xstrdup(name),
        .keepalive = PT_CONF_UPSTREAM_KEEPALIVE,
        .keepalive_timeout = PT_CONF_UPSTREAM_KEEPALIVE_TIMEOUT,
        .keepalive_requests = PT_CONF_UPSTREAM_KEEPALIVE_REQUESTS,
        .file = d->file,
        .line = d->w[0].line,
        .col = d->w[0].col,
    };
    unsigned seen = 0;
    for (size_t i = 0; i < d->nkids; i++) {
        const node *k = &d->kids[i];
        const char *kn = k->w[0].s;
        if (k->block)
            return fail(cx, -EINVAL, k->file, k->tline, k->tcol,
                        "directive \"%s\" is not terminated by \";\"", kn);
        int rc = 0;
        unsigned bit = 0;
        uint64_t n;
        if (strcmp(kn, "server") == 0) {
            rc = upstream_server(cx, k, u);
        } else if (strcmp(kn, "keepalive") == 0) {
            bit = 1;
            if (k->nw != 2 || parse_uint(k->w[1].s, SIZE_MAX, &n) < 0)
                return bad(cx, k, k->nw > 1, "invalid value in \"keepalive\"");
            u->keepalive = (size_t)n;
        } else if (strcmp(kn, "keepalive_requests") == 0) {
            bit = 4;
            if (k->nw != 2 || parse_uint(k->w[1].s, SIZE_MAX, &n) < 0 || n == 0)
                return bad(cx, k, k->nw > 1, "invalid value in \"keepalive_requests\"");
            u->keepalive_requests = (size_t)n;
        } else if (strcmp(kn, "keepalive_timeout") == 0) {
            bit = 2;
            if (k->nw != 2 || pt_parse_time(k->w[1].s, &u->keepalive_timeout) < 0 ||
                u->keepalive_timeout <= 0)
                return bad(cx, k, k->nw > 1, "invalid time in \"keepalive_timeout\"");
        } else {
            return bad(cx, k, 0, "unknown directive \"%s\" in \"upstream\"", kn);
        }
        if (rc < 0)
            return rc;
        if (seen & bit)
            return bad(cx, k, 0, "\"%s\" directive is duplicate", kn);
        seen |= bit;
    }
    if (!u->nservers)
        return bad(cx, d, 1, "no servers in upstream \"%s\"", name);
    return 0;
}

/* `proxy_pass http[s]://UPSTREAM|HOST[:PORT]|unix:PATH:[/URI];` */
static int set_proxy_pass(loader *cx, const node *d, void *field, void *aux)
{
    pt_conf_location *l = cx->loc;
    pt_proxy_url url;
    const char *why = "";
    if (pt_proxy_url_parse(arg1(d), &url, &why) < 0)
        return bad(cx, d, 1, "invalid URL \"%s\" in \"proxy_pass\": %s", arg1(d), why);
    if (l->handler != PT_HANDLER_STATIC)
        return bad(cx, d, 0, "\"proxy_pass\" and \"%s\" in one location",
                   l->handler == PT_HANDLER_STATUS ? "status" : "return");
    if ((l->match == PT_MATCH_REGEX || l->match == PT_MATCH_NAMED) && url.uri)
        return bad(cx, d, 1, "\"proxy_pass\" cannot have a URI in a %s location",
                   l->match == PT_MATCH_NAMED ? "named" : "regular expression");
    if (!upstream_named(cx->conf, url.name)) {
        pt_authority a;
        if (pt_authority_parse(&a, url.name, strlen(url.name), url.tls ? 443 : 80) < 0)
            return bad(cx, d, 1, "invalid host \"%s\" in \"proxy_pass\"", url.name);
        /* A bare word that is no upstream's name is most likely a misspelt one. */
        if (a.kind == PT_AUTHORITY_NAME && !strpbrk(url.name, ".:") &&
            strcmp(url.name, "localhost") != 0)
            return bad(cx, d, 1,
                       "no upstream \"%s\" (a host name needs a port or a dot: \"%s:80\")",
                       url.name, url.name);
    }
    for (const char *p = url.uri; p && *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return bad(cx, d, 1, "invalid URI in \"proxy_pass\"");
    l->proxy.pass = xstrdup(arg1(d));
    l->proxy.pass_file = d->file;
    l->proxy.pass_line = d->w[1].line;
    l->proxy.pass_col = d->w[1].col;
    l->handler = PT_HANDLER_PROXY;
    return 0;
}

/* proxy_hide_header / proxy_pass_header NAME: a list of field names, kept in lower case. A
 * level that names one does not inherit its parent's list. */
static int set_proxy_names(loader *cx, const node *d, void *field, void *aux)
{
    char ***v = field;
    size_t *n = aux;
    if (!is_token(d->w[1].s))
        return bad(cx, d, 1, "invalid header name \"%s\" in \"%s\"", d->w[1].s, d->w[0].s);
    if (cx->first)
        strv_clear(v, n);
    for (size_t i = 0; i < *n; i++)
        if (strcasecmp((*v)[i], d->w[1].s) == 0)
            return 0;
    char *name = xstrdup(d->w[1].s);
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    *PUSH(*v, *n) = name;
    return 0;
}

/* proxy_next_upstream error | timeout | invalid_header | http_500 | http_502 | http_503 |
 * http_504 | http_403 | http_404 | http_429 | non_idempotent ... | off */
static int set_next_upstream(loader *cx, const node *d, void *field, void *aux)
{
    static const struct {
        const char *word;
        unsigned flag;
    } words[] = {{"error", PT_NEXT_ERROR},
                 {"timeout", PT_NEXT_TIMEOUT},
                 {"invalid_header", PT_NEXT_INVALID_HEADER},
                 {"http_500", PT_NEXT_HTTP_500},
                 {"http_502", PT_NEXT_HTTP_502},
                 {"http_503", PT_NEXT_HTTP_503},
                 {"http_504", PT_NEXT_HTTP_504},
                 {"http_403", PT_NEXT_HTTP_403},
                 {"http_404", PT_NEXT_HTTP_404},
                 {"http_429", PT_NEXT_HTTP_429},
                 {"non_idempotent", PT_NEXT_NON_IDEMPOTENT},
                 {"off", 0}};
    unsigned *v = field, set = 0;
    for (size_t i = 1; i < d->nw; i++) {
        size_t k = 0;
        while (k < sizeof words / sizeof *words && strcmp(words[k].word, d->w[i].s) != 0)
            k++;
        if (k == sizeof words / sizeof *words)
            return bad(cx, d, i, "invalid value \"%s\" in \"proxy_next_upstream\"", d->w[i].s);
        if (!words[k].flag && d->nw > 2)
            return bad(cx, d, i, "\"off\" cannot go with other values in \"proxy_next_upstream\"");
        set |= words[k].flag;
    }
    *v = set;
    return 0;
}

/* proxy_redirect default | off | PREFIX REPLACEMENT (plain strings: no regex, no variables). */
static int set_proxy_redirect(loader *cx, const node *d, void *field, void *aux)
{
    pt_conf_header **v = field;
    size_t *n = aux;
    const char *a = d->w[1].s;
    bool keyword = strcmp(a, "default") == 0 || strcmp(a, "off") == 0;
    if (d->nw == 2 && !keyword)
        return bad(cx, d, 1,
                   "invalid parameter \"%s\" in \"proxy_redirect\": write \"default\", "
                   "\"off\" or a prefix and its replacement",
                   a);
    if (d->nw == 3 && !a[0])
        return bad(cx, d, 1, "empty prefix in \"proxy_redirect\"");
    if (cx->first || (d->nw == 2 && strcmp(a, "off") == 0))
        headers_clear(v, n);
    if (d->nw == 2 && strcmp(a, "default") == 0)
        *PUSH(*v, *n) = (pt_conf_header){NULL, NULL, false};
    else if (d->nw == 3)
        *PUSH(*v, *n) = (pt_conf_header){xstrdup(a), xstrdup(d->w[2].s), false};
    return 0;
}

/* `proxy_set_header NAME VALUE;` */
static int set_proxy_set_header(loader *cx, const node *d, void *field, void *aux)
{
    pt_conf_header **v = field;
    size_t *n = aux;
    if (!is_token(d->w[1].s))
        return bad(cx, d, 1, "invalid header name \"%s\" in \"proxy_set_header\"", d->w[1].s);
    const char *value = d->w[2].s;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return bad(cx, d, 2, "invalid character in the value of \"proxy_set_header\"");
    for (const char *p = strchr(value, '$'); p; p = strchr(p + 1, '$')) {
        pt_var_ref var = pt_var_parse(p);
        if (var.malformed || !pt_var_allowed(PT_VARS_PROXY, var.id))
            return bad(cx, d, 2, "unknown variable \"$%.*s\" in \"proxy_set_header\"",
                       (int)(var.name.len ? var.name.len : 1), var.name.len ? var.name.p : p + 1);
    }
    if (cx->first) /* a level with proxy_set_header of its own does not inherit its parent's */
        headers_clear(v, n);
    for (size_t i = 0; i < *n; i++)
        if (strcasecmp((*v)[i].name, d->w[1].s) == 0)
            return bad(cx, d, 1, "header \"%s\" is set twice", d->w[1].s);
    *PUSH(*v, *n) = (pt_conf_header){xstrdup(d->w[1].s), xstrdup(value), false};
    return 0;
}

/* ---- the directive table ---- */

enum { C_MAIN = 1, C_HTTP = 2, C_SERVER = 4, C_EVENTS = 8, C_LOCATION = 16 };
#define C_TOP (C_MAIN | C_HTTP)
#define C_ANY (C_TOP | C_SERVER)
#define C_ALL (C_ANY | C_LOCATION)

enum { F_BLOCK = 1, F_MULTI = 2 /* may repeat at one level */ };

#define NONE SIZE_MAX
/* clang-format off */
#define BOTH(f) {offsetof(pt_conf, f), offsetof(pt_conf_server, f), NONE}
#define ALL(f) {offsetof(pt_conf, f), offsetof(pt_conf_server, f), offsetof(pt_conf_location, f)}
#define TOP(f) {offsetof(pt_conf, f), NONE, NONE}
#define SRV(f) {NONE, offsetof(pt_conf_server, f), NONE}
#define LOC(f) {NONE, NONE, offsetof(pt_conf_location, f)}
#define SRVLOC(f) {NONE, offsetof(pt_conf_server, f), offsetof(pt_conf_location, f)}
#define NOWHERE {NONE, NONE, NONE}
/* clang-format on */
#define LIMIT(f) BOTH(limits.f)
#define FILES(f) ALL(static_files.f)

typedef struct directive {
    const char *name;
    unsigned ctx, flags;
    int min, max; /* number of arguments; max -1: any */
    set_fn set;
    size_t off[3]; /* the field: [0] in pt_conf (top level, http, events), [1] in pt_conf_server,
                      [2] in pt_conf_location */
    size_t aux[3]; /* the companion field, for the handlers that use one */
} directive;

static const directive directives[] = {
    {"http", C_MAIN, F_BLOCK, 0, 0, set_http, NOWHERE},
    /* nginx's events block only matters for its connection bound; nginx bounds connections
     * per worker, porter per server process: close enough to take the number as is. */
    {"events", C_MAIN, F_BLOCK, 0, 0, set_events, NOWHERE},
    {"worker_connections", C_EVENTS, 0, 1, 1, set_count, LIMIT(max_concurrent)},
    {"server", C_TOP, F_BLOCK | F_MULTI, 0, 0, set_server, NOWHERE},
    {"location", C_SERVER, F_BLOCK | F_MULTI, 1, 2, set_location, NOWHERE},
    {"worker_processes", C_MAIN, 0, 1, 1, set_workers, TOP(worker_processes)},
    {"pid", C_MAIN, 0, 1, 1, set_path, TOP(pid_path)},
    {"listen", C_SERVER, F_MULTI, 1, 7, set_listen, SRV(listens), SRV(nlistens)},
    {"server_name", C_SERVER, F_MULTI, 1, -1, set_names, SRV(names), SRV(nnames)},
    {"root", C_ALL, 0, 1, 1, set_root, ALL(root), ALL(root_named)},
    {"alias", C_LOCATION, 0, 1, 1, set_alias, LOC(alias)},
    {"index", C_ALL, 0, 1, -1, set_index, ALL(index), ALL(nindex)},
    {"access_log", C_ANY, 0, 1, 2, set_access_log, BOTH(access_log)},
    {"error_log", C_ANY, 0, 1, 2, set_error_log, BOTH(error_log), BOTH(error_log_level)},
    {"sendfile", C_ALL, 0, 1, 1, set_flag, ALL(sendfile)},
    {"server_tokens", C_ANY, 0, 1, 1, set_flag, BOTH(server_tokens)},
    {"default_type", C_ANY, 0, 1, 1, set_string, BOTH(default_type)},
    {"types", C_ANY, F_BLOCK | F_MULTI, 0, 0, set_types, BOTH(types), BOTH(ntypes)},

    /* static files and what locations answer with */
    {"status", C_LOCATION, 0, 0, 0, set_status, LOC(handler)},
    {"try_files", C_SERVER | C_LOCATION, 0, 2, -1, set_try_files, SRVLOC(static_files.try_files),
     SRVLOC(static_files.ntry_files)},
    {"autoindex", C_ALL, 0, 1, 1, set_flag, FILES(autoindex)},
    {"autoindex_format", C_ALL, 0, 1, 1, set_autoindex_format, FILES(autoindex_format)},
    {"autoindex_exact_size", C_ALL, 0, 1, 1, set_flag, FILES(autoindex_exact_size)},
    {"autoindex_localtime", C_ALL, 0, 1, 1, set_flag, FILES(autoindex_localtime)},
    {"expires", C_ALL, 0, 1, 2, set_expires, FILES(expires_kind), FILES(expires)},
    {"add_header", C_ALL, F_MULTI, 2, 3, set_add_header, FILES(headers), FILES(nheaders)},
    {"error_page", C_ALL, F_MULTI, 2, -1, set_error_page, FILES(error_pages), FILES(nerror_pages)},
    {"precompressed", C_ALL, 0, 1, 1, set_flag, FILES(precompressed)},
    {"max_ranges", C_ALL, 0, 1, 1, set_max_ranges, FILES(max_ranges)},
    {"etag", C_ALL, 0, 1, 1, set_flag, FILES(etag)},

    /* TLS */
    {"ssl_certificate", C_ANY, F_MULTI, 1, 1, set_ssl_file, BOTH(ssl.certs), BOTH(ssl.ncerts)},
    {"ssl_certificate_key", C_ANY, F_MULTI, 1, 1, set_ssl_file, BOTH(ssl.keys), BOTH(ssl.nkeys)},
    {"ssl_protocols", C_ANY, 0, 1, -1, set_ssl_protocols, BOTH(ssl.min_version),
     BOTH(ssl.max_version)},
    {"ssl_ciphers", C_ANY, 0, 1, 1, set_ssl_cipher_list, BOTH(ssl.ciphers)},
    {"ssl_ciphersuites", C_ANY, 0, 1, 1, set_ssl_cipher_list, BOTH(ssl.ciphersuites)},
    {"ssl_prefer_server_ciphers", C_ANY, 0, 1, 1, set_flag, BOTH(ssl.prefer_server_ciphers)},
    {"ssl_session_cache", C_ANY, 0, 1, 2, set_ssl_session_cache, BOTH(ssl.session_cache)},
    {"ssl_session_timeout", C_ANY, 0, 1, 1, set_positive_time, BOTH(ssl.session_timeout)},
    {"ssl_session_tickets", C_ANY, 0, 1, 1, set_flag, BOTH(ssl.session_tickets)},
    {"ssl_session_ticket_rotate", C_TOP, 0, 1, 1, set_positive_time, TOP(ssl_ticket_rotate)},
    {"ssl_handshake_timeout", C_ANY, 0, 1, 1, set_time, BOTH(ssl.handshake_timeout)},
    {"ssl_max_handshakes", C_ANY, 0, 1, 1, set_max_handshakes, BOTH(ssl.max_handshakes)},
    {"return", C_SERVER | C_LOCATION, 0, 1, 2, set_return, SRVLOC(ret)},

    /* the file cache, one per process */
    {"file_cache_size", C_TOP, 0, 1, 1, set_size_or_off, TOP(file_cache_size)},
    {"file_cache_max_file", C_TOP, 0, 1, 1, set_size_or_off, TOP(file_cache_max_file)},
    {"file_cache_valid", C_TOP, 0, 1, 1, set_interval, TOP(file_cache_valid)},
    {"open_file_cache", C_TOP, 0, 1, 2, set_open_file_cache, TOP(open_file_cache_max),
     TOP(open_file_cache_inactive)},
    /* nginx's name; it shares the field */
    {"open_file_cache_valid", C_TOP, 0, 1, 1, set_interval, TOP(file_cache_valid)},

    /* safety limits, by their pt_limits names */
    {"max_waiting", C_ANY, 0, 1, 1, set_count, LIMIT(max_waiting)},
    {"max_concurrent", C_ANY, 0, 1, 1, set_count, LIMIT(max_concurrent)},
    {"request_read_timeout", C_ANY, 0, 1, 1, set_time, LIMIT(request_read_timeout)},
    {"max_request_line_length", C_ANY, 0, 1, 1, set_size, LIMIT(max_request_line_length)},
    {"max_request_headers", C_ANY, 0, 1, 1, set_count, LIMIT(max_request_headers)},
    {"max_request_header_length", C_ANY, 0, 1, 1, set_size, LIMIT(max_request_header_length)},
    {"max_request_body_length", C_ANY, 0, 1, 1, set_size, LIMIT(max_request_body_length)},
    {"response_timeout", C_ANY, 0, 1, 1, set_time, LIMIT(response_timeout)},
    {"response_send_timeout", C_ANY, 0, 1, 1, set_time, LIMIT(response_send_timeout)},
    {"shutdown_grace_period", C_ANY, 0, 1, 1, set_time, LIMIT(shutdown_grace_period)},
    {"keepalive_timeout", C_ANY, 0, 1, 1, set_time, LIMIT(keepalive_timeout)},
    {"keepalive_requests", C_ANY, 0, 1, 1, set_count, LIMIT(keepalive_requests)},
    {"request_body_timeout", C_ANY, 0, 1, 1, set_time, LIMIT(request_body_timeout)},
    {"lingering_timeout", C_ANY, 0, 1, 1, set_time, LIMIT(lingering_timeout)},
    {"max_concurrent_per_client", C_ANY, 0, 1, 1, set_count, LIMIT(max_concurrent_per_client)},
    /* nginx's names for some of them; they share the field, so giving both is a duplicate */
    {"client_max_body_size", C_ANY, 0, 1, 1, set_size, LIMIT(max_request_body_length)},
    {"client_header_timeout", C_ANY, 0, 1, 1, set_time, LIMIT(request_read_timeout)},
    {"send_timeout", C_ANY, 0, 1, 1, set_time, LIMIT(response_send_timeout)},
    {"client_body_timeout", C_ANY, 0, 1, 1, set_time, LIMIT(request_body_timeout)},

    /* the reverse proxy */
    {"upstream", C_TOP, F_BLOCK | F_MULTI, 1, 1, set_upstream, NOWHERE},
    {"proxy_pass", C_LOCATION, 0, 1, 1, set_proxy_pass, NOWHERE},
    {"proxy_set_header", C_ALL, F_MULTI, 2, 2, set_proxy_set_header, ALL(proxy.set_headers),
     ALL(proxy.nset_headers)},
    {"proxy_next_upstream", C_ALL, 0, 1, 11, set_next_upstream, ALL(proxy.next_upstream)},
    {"proxy_next_upstream_tries", C_ALL, 0, 1, 1, set_count, ALL(proxy.next_upstream_tries)},
    {"proxy_next_upstream_timeout", C_ALL, 0, 1, 1, set_time, ALL(proxy.next_upstream_timeout)},
    {"proxy_redirect", C_ALL, F_MULTI, 1, 2, set_proxy_redirect, ALL(proxy.redirects),
     ALL(proxy.nredirects)},
    {"proxy_hide_header", C_ALL, F_MULTI, 1, 1, set_proxy_names, ALL(proxy.hide_headers),
     ALL(proxy.nhide_headers)},
    {"proxy_pass_header", C_ALL, F_MULTI, 1, 1, set_proxy_names, ALL(proxy.pass_headers),
     ALL(proxy.npass_headers)},
    {"proxy_connect_timeout", C_ALL, 0, 1, 1, set_time, ALL(proxy.connect_timeout)},
    {"proxy_read_timeout", C_ALL, 0, 1, 1, set_time, ALL(proxy.read_timeout)},
    {"proxy_send_timeout", C_ALL, 0, 1, 1, set_time, ALL(proxy.send_timeout)},
    {"proxy_ssl_verify", C_ALL, 0, 1, 1, set_flag, ALL(proxy.ssl_verify)},
    {"proxy_ssl_server_name", C_ALL, 0, 1, 1, set_flag, ALL(proxy.ssl_server_name)},
    {"proxy_ssl_trusted_certificate", C_ALL, 0, 1, 1, set_path, ALL(proxy.ssl_trusted_certificate)},
};

#define NDIRECTIVES (sizeof directives / sizeof *directives)
_Static_assert(NDIRECTIVES <= sizeof((loader *)0)->seen / sizeof(void *), "cx.seen is too small");

static int set_http(loader *cx, const node *d, void *field, void *aux)
{
    return apply(cx, d->kids, d->nkids, C_HTTP);
}

static int set_events(loader *cx, const node *d, void *field, void *aux)
{
    return apply(cx, d->kids, d->nkids, C_EVENTS);
}

/* Applies the directives `list` in context `ctx` to the top level or to cx->srv. */
static int apply(loader *cx, const node *list, size_t n, unsigned ctx)
{
    for (size_t i = 0; i < n; i++) {
        const node *d = &list[i];
        const char *name = d->w[0].s;
        const directive *cmd = directives;
        while (cmd < directives + NDIRECTIVES && strcmp(cmd->name, name) != 0)
            cmd++;
        if (cmd == directives + NDIRECTIVES)
            return bad(cx, d, 0, "unknown directive \"%s\"", name);
        if (!(cmd->ctx & ctx))
            return bad(cx, d, 0, "\"%s\" directive is not allowed here", name);
        if ((cmd->flags & F_BLOCK) && !d->block)
            return fail(cx, -EINVAL, d->file, d->tline, d->tcol,
                        "directive \"%s\" has no opening \"{\"", name);
        if (!(cmd->flags & F_BLOCK) && d->block)
            return fail(cx, -EINVAL, d->file, d->tline, d->tcol,
                        "directive \"%s\" is not terminated by \";\"", name);
        int nargs = (int)d->nw - 1;
        if (nargs < cmd->min || (cmd->max >= 0 && nargs > cmd->max))
            return bad(cx, d, 0, "invalid number of arguments in \"%s\" directive", name);

        int level = ctx == C_SERVER ? 1 : ctx == C_LOCATION ? 2 : 0;
        char *base = level == 2 ? (char *)cx->loc : level ? (char *)cx->srv : (char *)cx->conf;
        void *field = cmd->off[level] == NONE ? NULL : base + cmd->off[level];
        void *aux = cmd->aux[level] == NONE ? NULL : base + cmd->aux[level];
        /* duplicates are found by field, so an alias and its original collide */
        const void *key = field ? field : (const void *)cmd;
        size_t k = 0;
        while (k < cx->nseen && cx->seen[k] != key)
            k++;
        if (k < cx->nseen && !(cmd->flags & F_MULTI))
            return bad(cx, d, 0, "\"%s\" directive is duplicate", name);
        cx->first = k == cx->nseen;
        if (cx->first)
            cx->seen[cx->nseen++] = key;
        int rc = cmd->set(cx, d, field, aux);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- building ---- */

static void server_dispose(pt_conf_server *s)
{
    for (size_t i = 0; i < s->nlistens; i++) {
        free(s->listens[i].host);
        free(s->listens[i].port);
    }
    free(s->listens);
    strv_free(s->names, s->nnames);
    free(s->root);
    strv_free(s->index, s->nindex);
    free(s->access_log);
    free(s->error_log);
    free(s->default_type);
    types_free(s->types, s->ntypes);
    files_dispose(&s->static_files);
    ssl_dispose(&s->ssl);
    proxy_dispose(&s->proxy);
    free(s->ret.text);
    for (size_t i = 0; i < s->nlocations; i++)
        location_dispose(&s->locations[i]);
    free(s->locations);
}

void pt_conf_free(pt_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nservers; i++)
        server_dispose(&c->servers[i]);
    free(c->servers);
    free(c->pid_path);
    free(c->root);
    strv_free(c->index, c->nindex);
    free(c->access_log);
    free(c->error_log);
    free(c->default_type);
    types_free(c->types, c->ntypes);
    files_dispose(&c->static_files);
    ssl_dispose(&c->ssl);
    proxy_dispose(&c->proxy);
    upstreams_free(c);
    free(c->prefix);
    strv_free(c->files, c->nfiles);
    free(c);
}

/* Reads the match and path of a location block into `l`. */
static int location_path(loader *cx, const node *d, pt_conf_location *l)
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
        /* POSIX extended syntax (regcomp), compiled here once: -t reports an error with its
         * place, and the router matches with what the conf holds. */
        l->icase = mod[1] == '*';
        if (!path[0])
            return bad(cx, d, at, "empty regular expression in \"location\"");
        regex_t *re = xcalloc(sizeof *re);
        int e = regcomp(re, path, REG_EXTENDED | REG_NOSUB | (l->icase ? REG_ICASE : 0));
        if (e != 0) {
            char why[128];
            regerror(e, re, why, sizeof why);
            free(re);
            return bad(cx, d, at, "invalid regular expression \"%s\": %s", path, why);
        }
        l->re = re;
        l->match = PT_MATCH_REGEX;
        l->path = xstrdup(path);
        return 0;
    }
    if (path[0] == '@') {
        if (mod[0] || !path[1])
            return bad(cx, d, mod[0] ? 1 : at, "invalid named location \"%s\"", path);
        l->match = PT_MATCH_NAMED;
        l->path = xstrdup(path);
        return 0;
    }
    if (mod[0] && strcmp(mod, "=") != 0 && strcmp(mod, "^~") != 0)
        return bad(cx, d, 1, "invalid location modifier \"%s\"", mod);
    if (path[0] != '/')
        return bad(cx, d, at, "invalid location path \"%s\", it must start with \"/\"", path);
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return bad(cx, d, at, "invalid location path");
    l->match = strcmp(mod, "=") == 0 ? PT_MATCH_EXACT : PT_MATCH_PREFIX;
    l->no_regex = strcmp(mod, "^~") == 0;
    l->path = xstrdup(path);
    return 0;
}

/* Fills the location of block `d` in server `s`, starting from the server's values. */
static int build_location(loader *cx, pt_conf_server *s, const node *d)
{
    pt_conf_location *l = PUSH(s->locations, s->nlocations);
    *l = (pt_conf_location){
        .handler = PT_HANDLER_STATIC,
        .root = xstrdup(s->root),
        .root_named = s->root_named,
        .sendfile = s->sendfile,
        .file = d->file,
        .line = d->w[0].line,
        .col = d->w[0].col,
    };
    strv_copy(&l->index, &l->nindex, s->index, s->nindex);
    files_inherit(&l->static_files, &s->static_files);
    proxy_inherit(&l->proxy, &s->proxy);
    int rc = location_path(cx, d, l);
    for (size_t i = 0; rc == 0 && i + 1 < s->nlocations; i++) {
        const pt_conf_location *o = &s->locations[i];
        if (o->match == l->match && o->icase == l->icase && strcmp(o->path, l->path) == 0)
            rc = bad(cx, d, d->nw - 1, "duplicate location \"%s\"", l->path);
    }
    if (rc < 0)
        return rc;
    cx->loc = l;
    cx->nseen = 0;
    rc = apply(cx, d->kids, d->nkids, C_LOCATION);
    cx->loc = NULL;
    if (rc == 0 && l->proxy.pass && l->handler != PT_HANDLER_PROXY)
        rc =
            fail(cx, -EINVAL, l->file, l->line, l->col, "\"proxy_pass\" and \"%s\" in one location",
                 l->handler == PT_HANDLER_STATUS ? "status" : "return");
    return rc;
}

/* Certificates and keys pair up; a server listening with `ssl` has at least one pair. */
static int check_certificates(loader *cx, const pt_conf_server *s)
{
    const pt_conf_ssl *ssl = &s->ssl;
    if (ssl->ncerts > ssl->nkeys)
        return fail(cx, -EINVAL, ssl->cert_file, ssl->cert_line, ssl->cert_col,
                    "no \"ssl_certificate_key\" is defined for certificate \"%s\"",
                    ssl->certs[ssl->nkeys]);
    if (ssl->nkeys > ssl->ncerts)
        return fail(cx, -EINVAL, s->file, s->line, s->col,
                    "\"ssl_certificate_key\" \"%s\" has no \"ssl_certificate\"",
                    ssl->keys[ssl->ncerts]);
    for (size_t i = 0; i < s->nlistens && !ssl->ncerts; i++) {
        const pt_conf_listen *l = &s->listens[i];
        if (l->ssl)
            return fail(cx, -EINVAL, l->file, l->line, l->col,
                        "no \"ssl_certificate\" is defined for the \"listen ... ssl\" "
                        "directive");
    }
    return 0;
}

/* `ssl` on one listen makes the whole address speak TLS (nginx's rule): every other server on
 * it needs certificates too. Port 0 listens are each an address of their own. */
static int check_tls_addresses(loader *cx)
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
                        return fail(cx, -EINVAL, l->file, l->line, l->col,
                                    "no \"ssl_certificate\" is defined for this server, and "
                                    "\"%s\" speaks TLS (\"ssl\" in %s:%d)",
                                    addr_str(l, buf, sizeof buf), m->file, m->line);
                }
            }
        }
    }
    return 0;
}

/* Fills and checks the server of block `d`, starting from the top-level values. */
static int build_server(loader *cx, const node *d)
{
    const pt_conf *c = cx->conf;
    pt_conf_server *s = PUSH(cx->conf->servers, cx->conf->nservers);
    *s = (pt_conf_server){
        .limits = c->limits,
        .root = xstrdup(c->root),
        .root_named = c->root_named,
        .access_log = xstrdup(c->access_log),
        .error_log = xstrdup(c->error_log),
        .error_log_level = c->error_log_level,
        .sendfile = c->sendfile,
        .server_tokens = c->server_tokens,
        .default_type = xstrdup(c->default_type),
        .file = d->file,
        .line = d->w[0].line,
        .col = d->w[0].col,
    };
    strv_copy(&s->index, &s->nindex, c->index, c->nindex);
    for (size_t i = 0; i < c->ntypes; i++)
        *PUSH(s->types, s->ntypes) =
            (pt_conf_type){xstrdup(c->types[i].type), xstrdup(c->types[i].ext)};
    files_inherit(&s->static_files, &c->static_files);
    ssl_inherit(&s->ssl, &c->ssl);
    proxy_inherit(&s->proxy, &c->proxy);

    cx->srv = s;
    cx->nseen = 0;
    cx->nlocs = 0;
    cx->nrefs = cx->ntoprefs;
    int rc = apply(cx, d->kids, d->nkids, C_SERVER);
    for (size_t i = 0; rc == 0 && i < cx->nlocs; i++)
        rc = build_location(cx, s, cx->locs[i]);
    cx->srv = NULL;
    for (size_t i = 0; rc == 0 && i < cx->nrefs; i++) {
        const named_ref *r = &cx->refs[i];
        size_t k = 0;
        while (k < s->nlocations && (s->locations[k].match != PT_MATCH_NAMED ||
                                     strcmp(s->locations[k].path, r->d->w[r->i].s) != 0))
            k++;
        if (k == s->nlocations)
            rc = bad(cx, r->d, r->i, "no location \"%s\" in the server at %s:%d", r->d->w[r->i].s,
                     s->file, s->line);
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
    return check_certificates(cx, s);
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
static int check_once_per_address(loader *cx, bool (*has)(const pt_conf_listen *), const char *what)
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
                        return fail(cx, -EINVAL, l->file, l->line, l->col, "%s for \"%s\"", what,
                                    addr_str(l, buf, sizeof buf));
                }
            }
        }
    }
    return 0;
}

static int conf_new(loader *cx, const char *prefix, const char *name)
{
    pt_conf *c = cx->conf = xcalloc(sizeof *c);
    char *cwd = NULL;
    if (!prefix || prefix[0] != '/') {
        if (!(cwd = getcwd(NULL, 0))) {
            int rc = -errno;
            if (cx->err && cx->errlen)
                snprintf(cx->err, cx->errlen, "%s: cannot get the current directory: %s", name,
                         strerror(-rc));
            return rc;
        }
    }
    c->prefix = path_join(cwd ? cwd : "/", prefix ? prefix : ".");
    free(cwd);
    c->worker_processes = 1;
    c->limits = pt_limits_default();
    c->root = path_join(c->prefix, "htdocs");
    *PUSH(c->index, c->nindex) = xstrdup("index.html");
    c->error_log = xstrdup("stderr");
    c->error_log_level = PT_LOG_ERROR;
    c->sendfile = true;
    c->server_tokens = true;
    c->default_type = xstrdup("application/octet-stream");
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
    return 0;
}

static int load(pt_conf **out, const char *path, const char *text, const char *prefix, char *err,
                size_t errlen)
{
    loader cx = {.err = err, .errlen = errlen};
    node root = {0};
    int rc;
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    if ((rc = conf_new(&cx, prefix, path)) < 0)
        goto done;
    if (text)
        rc = parse_text(&cx, add_file(&cx, path), text, strlen(text), &root);
    else
        rc = parse_file(&cx, path, &root, NULL);
    if (rc < 0)
        goto done;
    rc = apply(&cx, root.kids, root.nkids, C_MAIN);
    cx.ntoprefs = cx.nrefs;
    if (rc < 0)
        goto done;
    if (!cx.nservers) {
        rc = fail(&cx, -EINVAL, cx.conf->files[0], cx.eof_line, cx.eof_col, "no \"server\" block");
        goto done;
    }
    for (size_t i = 0; i < cx.nservers; i++) {
        if ((rc = build_server(&cx, cx.servers[i])) < 0)
            goto done;
    }
    if ((rc = check_once_per_address(&cx, is_default, "a duplicate default server")) == 0 &&
        (rc = check_once_per_address(&cx, gives_options, "duplicate listen options")) == 0)
        rc = check_tls_addresses(&cx);
done:
    node_dispose(&root);
    free(cx.servers);
    free(cx.locs);
    if (rc < 0) {
        pt_conf_free(cx.conf);
        return rc;
    }
    *out = cx.conf;
    return 0;
}

int pt_conf_load(pt_conf **out, const char *path, const char *prefix, char *err, size_t errlen)
{
    return load(out, path, NULL, prefix, err, errlen);
}

int pt_conf_parse_string(pt_conf **out, const char *text, const char *name, const char *prefix,
                         char *err, size_t errlen)
{
    return load(out, name ? name : "<string>", text, prefix, err, errlen);
}
