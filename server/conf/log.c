/*
 * The log module of the conf: `log_format` and `access_log` (error_log is core.c's). Formats
 * are compiled as they are read (server/core/logfmt.h), so an unknown variable is reported
 * where it is written; an access log names a format defined before it at the top level, or
 * `combined`. Once the conf is read, two access logs writing one file must not ask for
 * different buffering (nginx's rule: the buffer is the file's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/logfmt.h"

int pt_conf_check_log_path(const pt_conf_value *v)
{
    const size_t n = strlen(PT_SYSLOG_PREFIX);
    if (strncmp(v->s, PT_SYSLOG_PREFIX, n) != 0)
        return 0;
    pt_syslog_target t;
    char why[300];
    if (pt_syslog_parse(v->s + n, false, &t, why, sizeof why) < 0)
        return pt_conf_refuse(v, "%s in \"%s\"", why, v->name);
    return 0;
}

/* A log path as the conf keeps it: "stderr" and "syslog:..." as written, else under the
 * prefix. */
static char *access_log_path(const pt_conf *c, const char *s)
{
    return strcmp(s, "stderr") == 0 || strncmp(s, PT_SYSLOG_PREFIX, strlen(PT_SYSLOG_PREFIX)) == 0
               ? xstrdup(s)
               : pt_conf_path_join(c->prefix, s);
}

int pt_conf_add_access_log(const pt_conf *c, pt_conf_access_log **logs, size_t *n,
                           const pt_conf_value *v)
{
    if (!v->s[0])
        return pt_conf_refuse(v, "invalid path \"\" in \"%s\"", v->name);
    if (strcmp(v->s, "off") == 0) {
        access_logs_clear(logs, n);
        return 0;
    }
    int rc = pt_conf_check_log_path(v);
    if (rc < 0)
        return rc;
    *PUSH(*logs, *n) = (pt_conf_access_log){
        .path = access_log_path(c, v->s),
        .fmt = pt_logfmt_combined(),
        .file = v->file,
        .line = v->line,
        .col = v->col,
    };
    return 0;
}

/* Keeps a compiled format in the conf, which frees it. */
static const pt_logfmt *keep(pt_conf *c, pt_logfmt *f)
{
    *PUSH(c->logfmts, c->nlogfmts) = f;
    return f;
}

/* `log_format NAME [escape=default|json|none] STRING ...;` */
static int set_log_format(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_log_format **v = field;
    size_t *n = aux;
    const char *name = arg1(d);
    bool dup = strcmp(name, "combined") == 0;
    for (size_t i = 0; i < *n && !dup; i++)
        dup = strcmp((*v)[i].name, name) == 0;
    if (dup)
        return pt_conf_bad(cx, d, 1, "duplicate \"log_format\" name \"%s\"", name);
    pt_log_escape e = PT_LOG_ESCAPE_DEFAULT;
    size_t first = 2;
    if (strncmp(d->w[2].s, "escape=", 7) == 0) {
        const char *how = d->w[2].s + 7;
        if (strcmp(how, "json") == 0)
            e = PT_LOG_ESCAPE_JSON;
        else if (strcmp(how, "none") == 0)
            e = PT_LOG_ESCAPE_NONE;
        else if (strcmp(how, "default") != 0)
            return pt_conf_bad(cx, d, 2, "unknown log format escaping \"%s\"", how);
        first = 3;
    }
    if (first >= d->nw)
        return pt_conf_bad(cx, d, 0, "invalid number of arguments in \"log_format\" directive");
    /* The strings are one text; where each starts tells which holds a fault. */
    size_t len = 0;
    for (size_t i = first; i < d->nw; i++)
        len += strlen(d->w[i].s);
    char *text = xrealloc(NULL, len + 1);
    size_t *starts = xrealloc(NULL, d->nw * sizeof *starts), pos = 0;
    for (size_t i = first; i < d->nw; i++) {
        starts[i] = pos;
        size_t k = strlen(d->w[i].s);
        memcpy(text + pos, d->w[i].s, k);
        pos += k;
    }
    text[pos] = '\0';
    pt_logfmt *f;
    char why[200];
    size_t at = 0;
    int rc = pt_logfmt_compile_with(&f, text, e, &cx->conf->vars, why, sizeof why, &at);
    if (rc == -ENOMEM)
        oom();
    if (rc < 0) {
        size_t w = d->nw - 1;
        while (w > first && starts[w] > at)
            w--;
        rc = pt_conf_bad(cx, d, w, "%s in \"log_format\"", why);
    } else {
        *PUSH(*v, *n) = (pt_conf_log_format){
            .name = xstrdup(name),
            .fmt = keep(cx->conf, f),
            .file = d->file,
            .line = d->w[1].line,
            .col = d->w[1].col,
        };
    }
    free(starts);
    free(text);
    return rc;
}

static const pt_logfmt *find_format(const pt_conf *c, const char *name)
{
    if (strcasecmp(name, "combined") == 0)
        return pt_logfmt_combined();
    for (size_t i = 0; i < c->nlog_formats; i++)
        if (strcasecmp(c->log_formats[i].name, name) == 0)
            return c->log_formats[i].fmt;
    return NULL;
}

/* `access_log PATH [FORMAT [buffer=SIZE] [flush=TIME] [if=CONDITION]];` or `access_log off;`,
 * PATH a file, stderr or syslog:... */
static int set_access_log(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_access_log **v = field;
    size_t *n = aux;
    bool off = strcmp(arg1(d), "off") == 0;
    if (off && d->nw > 2)
        return pt_conf_bad(cx, d, 2, "invalid parameter \"%s\" in \"%s\"", d->w[2].s, d->w[0].s);
    /* nginx lets "off" silence the other access logs of its level; say so instead */
    if (!cx->first && (off || *n == 0))
        return pt_conf_bad(cx, d, 0, "\"access_log off\" and other access logs at one level");
    if (cx->first)
        access_logs_clear(v, n);
    pt_conf_value val = pt_conf_word_value(cx, d, 1);
    int rc = pt_conf_add_access_log(cx->conf, v, n, &val);
    if (rc < 0 || off)
        return rc;
    pt_conf_access_log *a = &(*v)[*n - 1];
    bool syslog = strncmp(a->path, PT_SYSLOG_PREFIX, strlen(PT_SYSLOG_PREFIX)) == 0;
    if (d->nw > 2 && !(a->fmt = find_format(cx->conf, d->w[2].s)))
        return pt_conf_bad(cx, d, 2, "unknown log format \"%s\"", d->w[2].s);
    for (size_t i = 3; i < d->nw; i++) {
        const char *p = d->w[i].s;
        if (strncmp(p, "buffer=", 7) == 0) {
            if (pt_parse_size(p + 7, &a->buffer) < 0 || a->buffer == 0)
                return pt_conf_bad(cx, d, i, "invalid buffer size \"%s\"", p + 7);
        } else if (strncmp(p, "flush=", 6) == 0) {
            if (pt_parse_time(p + 6, &a->flush) < 0 || a->flush <= 0)
                return pt_conf_bad(cx, d, i, "invalid flush time \"%s\"", p + 6);
        } else if (strncmp(p, "if=", 3) == 0 && p[3]) {
            pt_logfmt *f;
            char why[200];
            size_t at;
            rc = pt_logfmt_compile_with(&f, p + 3, PT_LOG_ESCAPE_NONE, &cx->conf->vars, why,
                                        sizeof why, &at);
            if (rc == -ENOMEM)
                oom();
            if (rc < 0)
                return pt_conf_bad(cx, d, i, "%s in \"if=\" of \"access_log\"", why);
            a->cond = keep(cx->conf, f);
        } else {
            return pt_conf_bad(cx, d, i, "invalid parameter \"%s\" in \"access_log\"", p);
        }
    }
    if (a->flush > 0 && !a->buffer)
        return pt_conf_bad(cx, d, 1, "no buffer is defined for access_log \"%s\"", arg1(d));
    if (a->buffer && syslog)
        return pt_conf_bad(cx, d, 1, "logs to syslog cannot be buffered");
    return 0;
}

/* ---- once the conf is read ---- */

typedef struct seen_log {
    const pt_conf_access_log *a;
} seen_log;

/* Checks `a` against the buffered logs seen so far (`seen`), and adds it. */
static int one_buffer(pt_conf_loader *cx, const pt_conf_access_log *a, seen_log **seen, size_t *n)
{
    if (!a->buffer)
        return 0;
    for (size_t i = 0; i < *n; i++) {
        const pt_conf_access_log *b = (*seen)[i].a;
        if (strcmp(a->path, b->path) == 0 && (a->buffer != b->buffer || a->flush != b->flush))
            return pt_conf_fail(cx, -EINVAL, a->file, a->line, a->col,
                                "access_log \"%s\" already defined with conflicting parameters "
                                "(%s:%d)",
                                a->path, b->file, b->line);
    }
    PUSH(*seen, *n)->a = a;
    return 0;
}

static int check_buffers(pt_conf_loader *cx)
{
    const pt_conf *c = cx->conf;
    seen_log *seen = NULL;
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c->naccess_logs; i++)
        rc = one_buffer(cx, &c->access_logs[i], &seen, &n);
    for (size_t s = 0; rc == 0 && s < c->nservers; s++) {
        const pt_conf_server *srv = &c->servers[s];
        for (size_t i = 0; rc == 0 && i < srv->naccess_logs; i++)
            rc = one_buffer(cx, &srv->access_logs[i], &seen, &n);
        for (size_t l = 0; rc == 0 && l < srv->nlocations; l++)
            for (size_t i = 0; rc == 0 && i < srv->locations[l].naccess_logs; i++)
                rc = one_buffer(cx, &srv->locations[l].access_logs[i], &seen, &n);
    }
    free(seen);
    return rc;
}

static const pt_conf_directive directives[] = {
    {"log_format", C_TOP, F_MULTI, 2, -1, set_log_format, TOP(log_formats), TOP(nlog_formats)},
    {"access_log", C_ALL, F_MULTI, 1, 6, set_access_log, ALL(access_logs), ALL(naccess_logs)},
};

const pt_conf_module pt_conf_log_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
    .conf_done = check_buffers,
};
