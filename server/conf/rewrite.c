/*
 * The rewrite module of the conf (docs/rewrite.md): a server's or a location's script, the
 * directives nginx's ngx_http_rewrite_module runs in the order written (`rewrite REGEX
 * REPLACEMENT [FLAG]`, `return` (read by core.c, a step here), `set $var VALUE`, `break`,
 * `if (CONDITION) { ... }`); `rewrite_log`; `internal`.
 *
 * An `if` block's directives are read as those of a location of its own (cx->loc for the time):
 * the rewrite module's join the block's script, and in a location add_header, limit_rate and
 * proxy_pass (to an upstream block) what it changes while its condition holds: its overlay.
 * Anything else there is an error, not nginx's "if is evil".
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/regex.h"
#include "server/core/vars.h"

pt_conf_script *pt_conf_script_here(pt_conf_loader *cx)
{
    if (cx->in_if)
        return &cx->in_if->body;
    return cx->loc ? &cx->loc->script : &cx->srv->script;
}

static pt_conf_step *step_add(pt_conf_loader *cx, pt_step_kind kind)
{
    pt_conf_script *s = pt_conf_script_here(cx);
    pt_conf_step *st = PUSH(s->steps, s->n);
    *st = (pt_conf_step){.kind = kind};
    return st;
}

void pt_conf_script_return(pt_conf_loader *cx, int code, const char *text)
{
    step_add(cx, PT_STEP_RETURN)->ret = (pt_conf_return){code, xstrdup(text)};
}

/* Word `i` of `d`: each variable it names is one a script may read (`user` PT_VARS_SCRIPT, or
 * `what`'s own users). */
static int check_vars(pt_conf_loader *cx, const pt_conf_node *d, size_t i, const char *text,
                      int user, const char *what)
{
    for (const char *p = strchr(text, '$'); p; p = strchr(p + 1, '$')) {
        pt_var_ref v = pt_var_parse(p);
        if (v.malformed)
            return pt_conf_bad(cx, d, i, "invalid variable name in \"%s\"", what);
        if (!pt_conf_var_ok(cx, user, &v))
            return pt_conf_bad(cx, d, i, "unknown variable \"$%.*s\" in \"%s\"", (int)v.name.len,
                               v.name.p, what);
    }
    return 0;
}

/* ---- rewrite ---- */

static const struct {
    const char *name;
    pt_rewrite_flag flag;
} flags[] = {
    {"last", PT_REWRITE_LAST},
    {"break", PT_REWRITE_BREAK},
    {"redirect", PT_REWRITE_REDIRECT},
    {"permanent", PT_REWRITE_PERMANENT},
};

static int set_rewrite(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_rewrite_flag flag = PT_REWRITE_NONE;
    if (d->nw == 4) {
        size_t i = 0;
        while (i < sizeof flags / sizeof *flags && strcmp(flags[i].name, d->w[3].s) != 0)
            i++;
        if (i == sizeof flags / sizeof *flags)
            return pt_conf_bad(cx, d, 3, "invalid parameter \"%s\"", d->w[3].s);
        flag = flags[i].flag;
    }
    const char *replacement = d->w[2].s;
    for (const char *p = replacement; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return pt_conf_bad(cx, d, 2, "invalid character in the replacement of \"rewrite\"");
    char why[200];
    pt_regex *re = pt_regex_new(d->w[1].s, false, why, sizeof why);
    if (!re)
        return pt_conf_bad(cx, d, 1, "invalid regular expression \"%s\" in \"rewrite\": %s",
                           d->w[1].s, why);
    /* The pattern's own names are known in its replacement. */
    pt_conf_capture_names(cx, re);
    for (const char *p = strchr(replacement, '$'); p; p = strchr(p + 1, '$')) {
        pt_var_ref v = pt_var_parse(p);
        if (!pt_conf_var_ok(cx, PT_VARS_PROXY, &v)) {
            pt_regex_free(re);
            return pt_conf_bad(cx, d, 2, "unknown variable \"$%.*s\" in \"rewrite\"",
                               (int)v.name.len, v.name.p);
        }
    }
    step_add(cx, PT_STEP_REWRITE)->rewrite = (pt_conf_rewrite){re, xstrdup(replacement), flag};
    return 0;
}

static int set_internal(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    *(bool *)field = true;
    return 0;
}

/* ---- set, break ---- */

long pt_conf_own_var(pt_conf_loader *cx, const pt_conf_node *d, size_t i)
{
    const char *w = d->w[i].s;
    pt_var_ref v = pt_var_parse(w);
    if (w[0] != '$' || v.malformed || v.len != strlen(w))
        return pt_conf_bad(cx, d, i, "invalid variable name \"%s\"", w);
    if (v.id != PT_VAR_UNKNOWN)
        return pt_conf_bad(cx, d, i, "the variable \"%s\" is porter's own: \"%s\" cannot change it",
                           w, d->w[0].s);
    long id = pt_var_find(&cx->conf->vars, v.name);
    /* pt_conf_vars_declare() saw every set and map: this is not reached */
    return id >= 0 ? id : pt_conf_bad(cx, d, i, "variable \"%s\" was not declared", w);
}

static int set_set(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    long id = pt_conf_own_var(cx, d, 1);
    if (id < 0)
        return (int)id;
    int rc = check_vars(cx, d, 2, d->w[2].s, PT_VARS_SCRIPT, "set");
    if (rc < 0)
        return rc;
    pt_conf_step *st = step_add(cx, PT_STEP_SET);
    st->var = (size_t)id;
    st->value = xstrdup(d->w[2].s);
    return 0;
}

static int set_break(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    step_add(cx, PT_STEP_BREAK);
    return 0;
}

/* ---- if ---- */

/* The words of a condition without its parentheses, as nginx reads them: "(" may stand alone
 * or start the first word, ")" alone or end the last. */
typedef struct cond_words {
    char *w[3];
    size_t at[3]; /* the word of the directive each comes from */
    size_t n;
} cond_words;

static int cond_words_read(pt_conf_loader *cx, const pt_conf_node *d, cond_words *cw)
{
    size_t first = 1, last = d->nw - 1;
    const char *a = d->w[first].s, *z = d->w[last].s;
    size_t zlen = strlen(z);
    if (a[0] != '(')
        return pt_conf_bad(cx, d, first, "invalid condition \"%s\": it starts with \"(\"", a);
    if (zlen == 0 || z[zlen - 1] != ')')
        return pt_conf_bad(cx, d, last, "invalid condition \"%s\": it ends with \")\"", z);
    size_t skip_a = 1, cut_z = 1;
    if (!a[1])
        first++, skip_a = 0;
    if (zlen == 1 && last >= first)
        last--, cut_z = 0;
    if (last < first || last - first >= 3)
        return pt_conf_bad(cx, d, first <= last ? first : 1, "invalid condition");
    cw->n = 0;
    for (size_t i = first; i <= last; i++) {
        const char *s = d->w[i].s + (i == 1 ? skip_a : 0);
        size_t len = strlen(s) - (i == d->nw - 1 ? cut_z : 0);
        cw->at[cw->n] = i;
        cw->w[cw->n++] = xstrndup(s, len);
    }
    return 0;
}

static void cond_words_free(cond_words *cw)
{
    for (size_t i = 0; i < cw->n; i++)
        free(cw->w[i]);
}

/* A text of a condition (a compared value, a path): variables a script may read. */
static int cond_text(pt_conf_loader *cx, const pt_conf_node *d, const cond_words *cw, size_t k)
{
    return check_vars(cx, d, cw->at[k], cw->w[k], PT_VARS_SCRIPT, "if");
}

/* `$var`, `$var = TEXT`, `$var != TEXT`, `$var ~ RE` (`~*`, `!~`, `!~*`). */
static int cond_var(pt_conf_loader *cx, const pt_conf_node *d, const cond_words *cw,
                    pt_conf_cond *c)
{
    pt_var_ref v = pt_var_parse(cw->w[0]);
    if (v.malformed || v.len != strlen(cw->w[0]))
        return pt_conf_bad(cx, d, cw->at[0], "invalid variable name \"%s\" in \"if\"", cw->w[0]);
    if (cw->n == 2)
        return pt_conf_bad(cx, d, cw->at[1], "invalid condition \"%s\"", cw->w[1]);
    int rc = cond_text(cx, d, cw, 0);
    if (rc < 0)
        return rc;
    c->subject = xstrdup(cw->w[0]);
    if (cw->n == 1) {
        c->op = PT_COND_VAR;
        return 0;
    }
    const char *op = cw->w[1];
    c->negate = op[0] == '!';
    if (strcmp(op, "=") == 0 || strcmp(op, "!=") == 0) {
        c->op = PT_COND_EQUAL;
        if ((rc = cond_text(cx, d, cw, 2)) == 0)
            c->operand = xstrdup(cw->w[2]);
        return rc;
    }
    if (strcmp(op, "~") != 0 && strcmp(op, "~*") != 0 && strcmp(op, "!~") != 0 &&
        strcmp(op, "!~*") != 0)
        return pt_conf_bad(cx, d, cw->at[1], "unexpected \"%s\" in condition", op);
    char why[200];
    c->op = PT_COND_REGEX;
    c->re = pt_regex_new(cw->w[2], op[strlen(op) - 1] == '*', why, sizeof why);
    if (!c->re)
        return pt_conf_bad(cx, d, cw->at[2], "invalid regular expression \"%s\" in \"if\": %s",
                           cw->w[2], why);
    pt_conf_capture_names(cx, c->re); /* its names are variables after it, as nginx's */
    return 0;
}

/* `-f PATH`, `-d`, `-e`, `-x`, and `!-f` ... */
static int cond_file(pt_conf_loader *cx, const pt_conf_node *d, const cond_words *cw,
                     pt_conf_cond *c)
{
    static const char letters[] = "fdex";
    static const pt_cond_op ops[] = {PT_COND_FILE, PT_COND_DIR, PT_COND_EXISTS, PT_COND_EXEC};
    const char *w0 = cw->w[0], *letter = strchr(letters, w0[strlen(w0) - 1]);
    if (cw->n != 2 || !letter)
        return pt_conf_bad(cx, d, cw->at[0], "invalid condition \"%s\"", w0);
    const char *path = cw->w[1];
    /* nginx would take it from its working directory: say which one is meant */
    if (path[0] != '/' && path[0] != '$')
        return pt_conf_bad(cx, d, cw->at[1],
                           "the path \"%s\" in \"if\" is relative, write it absolute", path);
    int rc = cond_text(cx, d, cw, 1);
    if (rc < 0)
        return rc;
    c->op = ops[letter - letters];
    c->negate = w0[0] == '!';
    c->subject = xstrdup(path);
    return 0;
}

/* Reads the condition of `if` block `d` into `c`, as nginx's ngx_http_rewrite_if_condition. */
static int cond_read(pt_conf_loader *cx, const pt_conf_node *d, pt_conf_cond *c)
{
    cond_words cw = {0};
    int rc = cond_words_read(cx, d, &cw);
    if (rc < 0)
        return rc;
    const char *w0 = cw.w[0];
    size_t len = strlen(w0);
    if (len > 1 && w0[0] == '$')
        rc = cond_var(cx, d, &cw, c);
    else if ((len == 2 && w0[0] == '-') || (len == 3 && w0[0] == '!' && w0[1] == '-'))
        rc = cond_file(cx, d, &cw, c);
    else
        rc = pt_conf_bad(cx, d, cw.at[0], "invalid condition \"%s\"", w0);
    cond_words_free(&cw);
    return rc;
}

/* Reads the directives of `if` block `d` into `f`, as those of a location of its own: the
 * script's join f->body, add_header, limit_rate and proxy_pass stay in that location, whose
 * values f takes over. */
static int read_block(pt_conf_loader *cx, const pt_conf_node *d, pt_conf_if *f)
{
    bool in_location = cx->loc != NULL;
    pt_conf_location own = {
        .handler = PT_HANDLER_STATIC,
        .match = in_location ? cx->loc->match : PT_MATCH_PREFIX,
        .limit_rate.rate = SIZE_MAX, /* not named */
    };
    pt_conf_location *loc = cx->loc;
    const void **seen = cx->seen;
    size_t nseen = cx->nseen;
    cx->loc = &own;
    cx->in_if = f;
    cx->seen = NULL;
    cx->nseen = 0;
    int rc = pt_conf_apply(cx, d->kids, d->nkids, in_location ? C_LIF : C_SIF);
    free(cx->seen);
    cx->seen = seen;
    cx->nseen = nseen;
    cx->in_if = NULL;
    cx->loc = loc;
    f->headers = own.static_files.headers;
    f->nheaders = own.static_files.nheaders;
    f->rate_named = own.limit_rate.rate != SIZE_MAX;
    f->rate = f->rate_named ? own.limit_rate.rate : 0;
    f->pass = own.proxy.pass;
    f->proxy.pass_file = own.proxy.pass_file;
    f->proxy.pass_line = own.proxy.pass_line;
    f->proxy.pass_col = own.proxy.pass_col;
    free(own.ret.text);
    return rc;
}

static void if_free(pt_conf_if *f)
{
    pt_conf_script s = {0};
    *PUSH(s.steps, s.n) = (pt_conf_step){.kind = PT_STEP_IF, .cond = f};
    pt_conf_script_dispose(&s);
}

static int set_if(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_if *f = xcalloc(sizeof *f);
    f->overlay = -1;
    f->file = d->file;
    f->line = d->w[0].line;
    f->col = d->w[0].col;
    int rc = cond_read(cx, d, &f->cond);
    if (rc == 0)
        rc = read_block(cx, d, f);
    if (rc < 0) {
        if_free(f);
        return rc;
    }
    step_add(cx, PT_STEP_IF)->cond = f;
    return 0;
}

/* A location is read: each of its `if` blocks that changes the answer gets its overlay, and
 * one with proxy_pass the location's proxy settings for its upstream. */
static int location_done(pt_conf_loader *cx, pt_conf_location *l)
{
    int k = 0;
    for (size_t i = 0; i < l->script.n; i++) {
        pt_conf_if *f = l->script.steps[i].cond;
        if (!f || (!f->nheaders && !f->rate_named && !f->pass))
            continue;
        f->overlay = k++;
        if (f->pass) {
            pt_conf_proxy at = f->proxy;
            f->proxy = l->proxy;
            f->proxy.pass = f->pass;
            f->proxy.pass_file = at.pass_file;
            f->proxy.pass_line = at.pass_line;
            f->proxy.pass_col = at.pass_col;
        }
    }
    return 0;
}

/* The conf is read: a variable of its own may not also be a regex's named group, which porter
 * reads from the last match (nginx makes the two one variable). */
static int conf_done(pt_conf_loader *cx)
{
    const pt_conf_vars *v = &cx->conf->vars;
    int rc = 0;
    for (size_t i = 0; i < v->n; i++)
        for (size_t k = 0; k < cx->ncapture_names; k++)
            if (strcmp(v->list[i].name, cx->capture_names[k]) == 0 && rc == 0)
                rc = pt_conf_fail(cx, -EINVAL, v->list[i].file, v->list[i].line, v->list[i].col,
                                  "the variable \"$%s\" is also a named group of a regular "
                                  "expression: rename one",
                                  v->list[i].name);
    return rc;
}

#define SCRIPT (C_SERVER | C_LOCATION | C_IF)

static const pt_conf_directive directives[] = {
    {"rewrite", SCRIPT, F_MULTI, 2, 3, set_rewrite, NOWHERE},
    {"set", SCRIPT, F_MULTI, 2, 2, set_set, NOWHERE},
    {"break", SCRIPT, F_MULTI, 0, 0, set_break, NOWHERE},
    {"if", C_SERVER | C_LOCATION, F_BLOCK | F_MULTI, 1, -1, set_if, NOWHERE},
    {"rewrite_log", C_ALL, 0, 1, 1, pt_conf_set_flag, ALL(rewrite.log)},
    {"internal", C_LOCATION, 0, 0, 0, set_internal, LOC(internal)},
};

const pt_conf_module pt_conf_rewrite_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
    .location_done = location_done,
    .conf_done = conf_done,
};
