/*
 * The conf's syntax: a lexer, then a parser of blocks that splices includes in (parse.h).
 */
#include "server/conf/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/conf/mem.h"

void pt_conf_node_dispose(pt_conf_node *n)
{
    for (size_t i = 0; i < n->nw; i++)
        free(n->w[i].s);
    free(n->w);
    for (size_t i = 0; i < n->nkids; i++)
        pt_conf_node_dispose(&n->kids[i]);
    free(n->kids);
}

/* ---- error reporting ---- */

int pt_conf_vreport(char *err, size_t errlen, int rc, const char *file, int line, int col,
                    const char *fmt, va_list ap)
{
    if (err && errlen) {
        int n = line ? snprintf(err, errlen, "%s:%d:%d: ", file, line, col)
                     : snprintf(err, errlen, "%s: ", file);
        if (n >= 0 && (size_t)n < errlen)
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    }
    return rc;
}

__attribute__((format(printf, 6, 7))) static int fail(pt_conf_parser *ps, int rc, const char *file,
                                                      int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc = pt_conf_vreport(ps->err, ps->errlen, rc, file, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* Reports an invalid directive at its pt_conf_word `i` (0: the name) and returns -EINVAL. */
__attribute__((format(printf, 4, 5))) static int bad(pt_conf_parser *ps, const pt_conf_node *d,
                                                     size_t i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc =
        pt_conf_vreport(ps->err, ps->errlen, -EINVAL, d->file, d->w[i].line, d->w[i].col, fmt, ap);
    va_end(ap);
    return rc;
}

static const char *add_file(pt_conf_parser *ps, const char *name)
{
    return *PUSH(ps->files, ps->nfiles) = xstrdup(name);
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
static int lex(pt_conf_parser *ps, lexer *lx, pt_conf_word *w, int *kind)
{
    for (;;) {
        while (lx->p < lx->end && is_space(*lx->p))
            adv(lx);
        if (lx->p == lx->end || *lx->p != '#')
            break;
        while (lx->p < lx->end && *lx->p != '\n')
            adv(lx);
    }
    *w = (pt_conf_word){.line = lx->line, .col = lx->col};
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
        return fail(ps, -EINVAL, lx->file, lx->line, lx->col, "unexpected NUL byte");

    sbuf b = {0};
    if (c == '"' || c == '\'') {
        adv(lx);
        for (;;) {
            if (lx->p == lx->end) {
                free(b.s);
                return fail(ps, -EINVAL, lx->file, w->line, w->col, "unterminated string");
            }
            if (*lx->p == c) {
                adv(lx);
                break;
            }
            if (*lx->p == '\0') {
                free(b.s);
                return fail(ps, -EINVAL, lx->file, lx->line, lx->col, "unexpected NUL byte");
            }
            if (*lx->p == '\\' && lx->p + 1 < lx->end) {
                unescape(lx, &b);
            } else {
                sb_putc(&b, *lx->p);
                adv(lx);
            }
        }
        /* nginx wants a separator after a quoted string: "a"b is more likely a typo than a
         * concatenation. A ")" may follow (nginx's `if ($a = "")`): it is a word of its own. */
        if (lx->p < lx->end && !is_space(*lx->p) && !strchr(";{})", *lx->p)) {
            free(b.s);
            return fail(ps, -EINVAL, lx->file, lx->line, lx->col, "unexpected \"%c\"", *lx->p);
        }
    } else {
        while (lx->p < lx->end && !is_space(*lx->p) && *lx->p != '\0' && !strchr(";{}", *lx->p)) {
            if (*lx->p == '$' && lx->p + 1 < lx->end && lx->p[1] == '{') {
                /* nginx's ${name}: its braces belong to the pt_conf_word, not to a block */
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

static int parse_file(pt_conf_parser *ps, const char *path, pt_conf_node *into,
                      const pt_conf_node *inc);

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
static int include(pt_conf_parser *ps, const pt_conf_node *d, pt_conf_node *into)
{
    if (d->block)
        return fail(ps, -EINVAL, d->file, d->tline, d->tcol,
                    "directive \"include\" is not terminated by \";\"");
    if (d->nw != 2)
        return bad(ps, d, 0, "invalid number of arguments in \"include\" directive");
    const char *arg = d->w[1].s;
    if (!arg[0])
        return bad(ps, d, 1, "invalid path \"\" in \"include\"");
    if (!has_glob(arg)) {
        char *path = beside(d->file, arg, false);
        int rc = parse_file(ps, path, into, d);
        free(path);
        return rc;
    }
    char *pattern = beside(d->file, arg, true);
    glob_t g;
    int rc = 0, grc = glob(pattern, 0, NULL, &g);
    if (grc == GLOB_NOSPACE)
        oom();
    /* nginx: a pattern that matches nothing is fine (an empty conf.d/) */
    if (grc != 0 && grc != GLOB_NOMATCH)
        rc = bad(ps, d, 1, "cannot read \"%s\": %s", pattern, strerror(errno));
    for (size_t i = 0; grc == 0 && rc == 0 && i < g.gl_pathc; i++)
        rc = parse_file(ps, g.gl_pathv[i], into, d);
    if (grc == 0)
        globfree(&g);
    free(pattern);
    return rc;
}

/* Parses directives up to the end of the text, or with `nested` up to the '}' closing the
 * block, appending them to `into`. What was appended before an error stays there for the
 * caller to dispose. */
static int parse_block(pt_conf_parser *ps, lexer *lx, pt_conf_node *into, bool nested)
{
    static const char *const unexpected[] = {[T_SEMI] = ";", [T_OPEN] = "{"};
    pt_conf_node cur = {0};
    int rc, kind = T_EOF;
    for (;;) {
        pt_conf_word w;
        if ((rc = lex(ps, lx, &w, &kind)) < 0)
            goto fail;
        switch (kind) {
        case T_WORD:
            *PUSH(cur.w, cur.nw) = w;
            continue;
        case T_EOF:
            if (cur.nw)
                rc = fail(ps, -EINVAL, lx->file, w.line, w.col,
                          "unexpected end of file, expecting \";\" or \"}\"");
            else if (nested)
                rc = fail(ps, -EINVAL, lx->file, w.line, w.col,
                          "unexpected end of file, expecting \"}\"");
            goto fail;
        case T_CLOSE:
            if (cur.nw || !nested) {
                rc = fail(ps, -EINVAL, lx->file, w.line, w.col, "unexpected \"}\"");
                goto fail;
            }
            return 0;
        }
        if (!cur.nw) {
            rc = fail(ps, -EINVAL, lx->file, w.line, w.col, "unexpected \"%s\"", unexpected[kind]);
            goto fail;
        }
        cur.file = lx->file;
        cur.tline = w.line;
        cur.tcol = w.col;
        cur.block = kind == T_OPEN;
        if (strcmp(cur.w[0].s, "include") == 0) {
            rc = include(ps, &cur, into);
            pt_conf_node_dispose(&cur);
            cur = (pt_conf_node){0};
            if (rc < 0)
                return rc;
            continue;
        }
        pt_conf_node *n = PUSH(into->kids, into->nkids);
        *n = cur;
        cur = (pt_conf_node){0};
        /* the recursion appends to n->kids only, so `n` stays valid */
        if (n->block && (rc = parse_block(ps, lx, n, true)) < 0)
            return rc;
    }
fail:
    pt_conf_node_dispose(&cur);
    return rc;
}

static int parse_text(pt_conf_parser *ps, const char *file, const char *text, size_t len,
                      pt_conf_node *into)
{
    lexer lx = {.file = file, .p = text, .end = text + len, .line = 1, .col = 1};
    ps->depth++;
    int rc = parse_block(ps, &lx, into, false);
    ps->depth--;
    if (rc == 0 && ps->depth == 0) {
        ps->eof_line = lx.line;
        ps->eof_col = lx.col;
    }
    return rc;
}

/* Reads and parses the file at `path` into `into`; `inc` is the include directive naming it,
 * where errors opening it are reported, or NULL for the main file. */
static int parse_file(pt_conf_parser *ps, const char *path, pt_conf_node *into,
                      const pt_conf_node *inc)
{
    char *text = NULL;
    size_t len = 0;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        goto unreadable;
    for (int i = 0; i < ps->nopen; i++) {
        if (ps->open[i].dev == st.st_dev && ps->open[i].ino == st.st_ino) {
            bad(ps, inc, 1, "include cycle: \"%s\" is already being read", path);
            rc = -ELOOP;
            goto done;
        }
    }
    if (inc && ps->depth > PT_CONF_INCLUDE_DEPTH) {
        bad(ps, inc, 1, "includes nested too deeply (more than %d)", PT_CONF_INCLUDE_DEPTH);
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
    const char *name = add_file(ps, path);
    ps->open[ps->nopen].dev = st.st_dev;
    ps->open[ps->nopen++].ino = st.st_ino;
    rc = parse_text(ps, name, text, len, into);
    ps->nopen--;
    goto done;

unreadable:
    rc = -errno;
    if (inc)
        bad(ps, inc, 1, "cannot open \"%s\": %s", path, strerror(-rc));
    else if (ps->err && ps->errlen)
        snprintf(ps->err, ps->errlen, "%s: cannot open: %s", path, strerror(-rc));
done:
    if (fd >= 0)
        close(fd);
    free(text);
    return rc;
}

int pt_conf_parse_file(pt_conf_parser *ps, const char *path, pt_conf_node *into)
{
    return parse_file(ps, path, into, NULL);
}

int pt_conf_parse_text(pt_conf_parser *ps, const char *name, const char *text, size_t len,
                       pt_conf_node *into)
{
    return parse_text(ps, add_file(ps, name), text, len, into);
}
