/*
 * Loading a conf: the text into a tree (parse.c), then the tree through the modules' tables
 * (directives.c), module by module in the order listed here.
 */
#include <stdlib.h>
#include <string.h>

#include "server/conf/conf.h"
#include "server/conf/directives.h"

/* The modules whose directives a conf may hold; their checks run in this order. */
/* clang-format off */
static const pt_conf_module *const modules[] = {
    &pt_conf_core_module,
    &pt_conf_static_module,
    &pt_conf_tls_module,
    &pt_conf_proxy_module,
    &pt_conf_http2_module,
    &pt_conf_compress_module,
    &pt_conf_realip_module,
};
/* clang-format on */

static int load(pt_conf **out, const char *path, const char *text, const char *prefix, char *err,
                size_t errlen)
{
    pt_conf_loader cx = {
        .parse = {.err = err, .errlen = errlen},
        .modules = modules,
        .nmodules = sizeof modules / sizeof *modules,
    };
    pt_conf_node root = {0};
    int rc;
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    if ((rc = pt_conf_new(&cx.conf, path, prefix, err, errlen)) < 0)
        return rc;
    if (text)
        rc = pt_conf_parse_text(&cx.parse, path, text, strlen(text), &root);
    else
        rc = pt_conf_parse_file(&cx.parse, path, &root);
    if (rc < 0)
        goto done;
    rc = pt_conf_apply(&cx, root.kids, root.nkids, C_MAIN);
    cx.ntoprefs = cx.nrefs;
    for (size_t i = 0; rc == 0 && i < cx.nmodules; i++)
        if (modules[i]->conf_done)
            rc = modules[i]->conf_done(&cx);
done:
    pt_conf_node_dispose(&root);
    free(cx.servers);
    free(cx.locs);
    free(cx.seen);
    /* the names of the files read: the conf's, where every `file` member points */
    cx.conf->files = cx.parse.files;
    cx.conf->nfiles = cx.parse.nfiles;
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
