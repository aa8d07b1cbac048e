/*
 * The rewrite module of the conf (docs/rewrite.md): `rewrite REGEX REPLACEMENT [FLAG]` in a
 * server (run before its location is chosen) or a location (run before its handler), in the
 * order written; `rewrite_log`; `internal`.
 */
#include <stdlib.h>
#include <string.h>

#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/regex.h"
#include "server/core/vars.h"

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
    pt_conf_rewrites *rw = field;
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
    *PUSH(rw->list, rw->n) = (pt_conf_rewrite){re, xstrdup(replacement), flag};
    return 0;
}

static int set_internal(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    *(bool *)field = true;
    return 0;
}

static const pt_conf_directive directives[] = {
    {"rewrite", C_SERVER | C_LOCATION, F_MULTI, 2, 3, set_rewrite, SRVLOC(rewrite)},
    {"rewrite_log", C_ALL, 0, 1, 1, pt_conf_set_flag, ALL(rewrite.log)},
    {"internal", C_LOCATION, 0, 0, 0, set_internal, LOC(internal)},
};

const pt_conf_module pt_conf_rewrite_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
};
