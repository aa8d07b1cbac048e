/*
 * The map module of the conf (docs/rewrite.md), and the conf's own variables: every `set` and
 * `map` of the tree declares its variable before any directive is read (pt_conf_vars_declare),
 * so a variable is known everywhere, wherever it is set, as nginx's are.
 *
 * `map SOURCE $VAR { ... }` at the top level: `KEY VALUE;` entries (a key starting with "~" a
 * regex, "~*" ignoring case; "\" escapes a key that is a parameter's name), `default VALUE;`,
 * `hostnames;` (before the entries: wildcard keys, a trailing dot of the value dropped),
 * `volatile;`, and `include FILE;` (read by the parser in its place). The lookup is
 * server/core/map.c's, the value for a request server/core/vars.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/map.h"
#include "server/core/regex.h"
#include "server/core/vars.h"

/* ---- the declarations ---- */

/* Declares the variable word `i` of `d` names, when it is a name of the conf's own ("$NAME",
 * not porter's: the directive reports that one when it is read). */
static void declare(pt_conf_loader *cx, const pt_conf_node *d, size_t i)
{
    const char *w = d->w[i].s;
    pt_var_ref v = pt_var_parse(w);
    if (w[0] != '$' || v.malformed || v.len != strlen(w) || v.id != PT_VAR_UNKNOWN)
        return;
    pt_conf_vars *vars = &cx->conf->vars;
    if (pt_var_find(vars, v.name) >= 0)
        return;
    *PUSH(vars->list, vars->n) = (pt_conf_var){
        .name = xstrndup(v.name.p, v.name.len),
        .map = -1,
        .file = d->file,
        .line = d->w[i].line,
        .col = d->w[i].col,
    };
}

static void declare_in(pt_conf_loader *cx, const pt_conf_node *list, size_t n)
{
    static const char *const blocks[] = {"http", "server", "location", "if"};
    for (size_t k = 0; k < n; k++) {
        const pt_conf_node *d = &list[k];
        const char *name = d->w[0].s;
        if (strcmp(name, "set") == 0 && !d->block && d->nw == 3)
            declare(cx, d, 1);
        else if (strcmp(name, "map") == 0 && d->block && d->nw == 3)
            declare(cx, d, 2);
        for (size_t b = 0; d->block && b < sizeof blocks / sizeof *blocks; b++)
            if (strcmp(name, blocks[b]) == 0)
                declare_in(cx, d->kids, d->nkids);
    }
}

void pt_conf_vars_declare(pt_conf_loader *cx, const pt_conf_node *root)
{
    declare_in(cx, root->kids, root->nkids);
}

/* ---- map ---- */

/* The variables a text of the map names: a script's, and in a regex entry's value the regex's
 * own groups ($1, $name). */
static int check_text(pt_conf_loader *cx, const pt_conf_node *d, size_t i, const pt_regex *re)
{
    const char *text = d->w[i].s;
    for (const char *p = strchr(text, '$'); p; p = strchr(p + 1, '$')) {
        pt_var_ref v = pt_var_parse(p);
        if (v.malformed)
            return pt_conf_bad(cx, d, i, "invalid variable name in \"map\"");
        if (!pt_conf_var_ok(cx, PT_VARS_SCRIPT, &v) &&
            !(re && v.id == PT_VAR_UNKNOWN && pt_regex_group_named(re, v.name) > 0))
            return pt_conf_bad(cx, d, i, "unknown variable \"$%.*s\" in \"map\"", (int)v.name.len,
                               v.name.p);
    }
    return 0;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)pt_ascii_lower((unsigned char)*s);
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const pt_conf_map_entry *)a)->key, ((const pt_conf_map_entry *)b)->key);
}

/* Longest first (two wildcards as long never match one name both). */
static int by_length(const void *a, const void *b)
{
    const pt_conf_map_entry *x = a, *y = b;
    size_t lx = strlen(x->key), ly = strlen(y->key);
    return lx != ly ? (lx > ly ? -1 : 1) : strcmp(x->key, y->key);
}

/* A hostnames key: "*.example.com" or ".example.com" (leading), "mail.*" (trailing), else
 * exact; 0 when it is not a valid name or wildcard. */
static int wildcard_kind(const char *key)
{
    size_t n = strlen(key);
    const char *star = strchr(key, '*');
    if (key[0] == '*' && key[1] == '.' && n > 2 && !strchr(key + 1, '*'))
        return 'l';
    if (key[0] == '.' && n > 1 && !star)
        return 'l';
    if (n > 2 && key[n - 1] == '*' && key[n - 2] == '.' && star == key + n - 1)
        return 't';
    return star ? 0 : 'e';
}

/* One `KEY VALUE;` entry of map `m`. */
static int map_entry(pt_conf_loader *cx, const pt_conf_node *e, pt_conf_map *m)
{
    const char *key = e->w[0].s, *value = e->w[1].s;
    if (strcmp(key, "default") == 0) {
        if (m->default_value)
            return pt_conf_bad(cx, e, 0, "duplicate default map parameter");
        int rc = check_text(cx, e, 1, NULL);
        if (rc == 0)
            m->default_value = xstrdup(value);
        return rc;
    }
    if (key[0] == '~') {
        bool icase = key[1] == '*';
        char why[200];
        pt_regex *re = pt_regex_new(key + 1 + icase, icase, why, sizeof why);
        if (!re)
            return pt_conf_bad(cx, e, 0, "invalid regular expression \"%s\" in \"map\": %s",
                               key + 1 + icase, why);
        int rc = check_text(cx, e, 1, re);
        if (rc < 0) {
            pt_regex_free(re);
            return rc;
        }
        *PUSH(m->regex, m->nregex) = (pt_conf_map_entry){xstrdup(key), re, xstrdup(value)};
        return 0;
    }
    if (key[0] == '\\') /* "\default", "\~x": the name as it is */
        key++;
    int rc = check_text(cx, e, 1, NULL);
    if (rc < 0)
        return rc;
    char *k = xstrdup(key);
    lower(k);
    int kind = m->hostnames ? wildcard_kind(k) : 'e';
    if (!kind) {
        free(k);
        return pt_conf_bad(cx, e, 0, "invalid hostname or wildcard \"%s\" in \"map\"", key);
    }
    pt_conf_map_entry **list = kind == 'l' ? &m->leading : kind == 't' ? &m->trailing : &m->exact;
    size_t *n = kind == 'l' ? &m->nleading : kind == 't' ? &m->ntrailing : &m->nexact;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i].key, k) == 0) {
            free(k);
            return pt_conf_bad(cx, e, 0, "conflicting parameter \"%s\" in \"map\"", key);
        }
    *PUSH(*list, *n) = (pt_conf_map_entry){k, NULL, xstrdup(value)};
    return 0;
}

static int map_entries(pt_conf_loader *cx, const pt_conf_node *d, pt_conf_map *m)
{
    int first = 0;
    for (size_t i = 0; i < d->nkids; i++) {
        const pt_conf_node *e = &d->kids[i];
        const char *key = e->w[0].s;
        int rc = 0;
        bool any = m->nexact || m->nleading || m->ntrailing || m->nregex || m->default_value;
        if (e->block)
            rc = pt_conf_fail(cx, -EINVAL, e->file, e->tline, e->tcol,
                              "unexpected \"{\" in \"map\"");
        else if (e->nw == 1 && strcmp(key, "hostnames") == 0 && any)
            rc = pt_conf_bad(cx, e, 0, "\"hostnames\" stands before the entries of \"map\"");
        else if (e->nw == 1 && strcmp(key, "hostnames") == 0)
            m->hostnames = true;
        else if (e->nw == 1 && strcmp(key, "volatile") == 0)
            m->volatile_ = true;
        else if (e->nw != 2)
            rc = pt_conf_bad(cx, e, 0, "invalid number of the map parameters");
        else
            rc = map_entry(cx, e, m);
        rc = pt_conf_keep(cx, rc);
        first = first ? first : rc;
    }
    return first;
}

static int set_map(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    long id = pt_conf_own_var(cx, d, 2);
    if (id < 0)
        return (int)id;
    pt_conf_vars *vars = &cx->conf->vars;
    if (vars->list[id].map >= 0) {
        const pt_conf_map *o = &vars->maps[vars->list[id].map];
        return pt_conf_bad(cx, d, 2, "the variable \"%s\" has a map already (%s:%d)", d->w[2].s,
                           o->file, o->line);
    }
    int rc = check_text(cx, d, 1, NULL);
    if (rc < 0)
        return rc;
    pt_conf_map m = {
        .source = xstrdup(d->w[1].s),
        .var = (size_t)id,
        .file = d->file,
        .line = d->w[0].line,
        .col = d->w[0].col,
    };
    rc = map_entries(cx, d, &m);
    if (m.nexact > 1)
        qsort(m.exact, m.nexact, sizeof *m.exact, by_key);
    if (m.nleading > 1)
        qsort(m.leading, m.nleading, sizeof *m.leading, by_length);
    if (m.ntrailing > 1)
        qsort(m.trailing, m.ntrailing, sizeof *m.trailing, by_length);
    /* kept even after an error, for pt_conf_free() to release */
    vars->list[id].map = (long)vars->nmaps;
    *PUSH(vars->maps, vars->nmaps) = m;
    return rc;
}

static const pt_conf_directive directives[] = {
    {"map", C_TOP, F_BLOCK | F_MULTI, 2, 2, set_map, NOWHERE},
};

const pt_conf_module pt_conf_map_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
};
