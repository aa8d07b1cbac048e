/*
 * Loading a conf: the text into a tree (parse.c), then the tree through the modules' tables
 * (directives.c), module by module in the order listed here.
 */
#include <stdio.h>
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
    &pt_conf_upstream_module,
    &pt_conf_http2_module,
    &pt_conf_compress_module,
    &pt_conf_access_module,
    &pt_conf_rate_module,
    &pt_conf_limits_module,
    &pt_conf_log_module,
    &pt_conf_rewrite_module,
    &pt_conf_map_module,
    &pt_conf_realip_module,
};
/* clang-format on */

/* Loads `path` (or `text` under that name). Every error is kept; the first goes to `err`, and
 * each to `report` when one is given. With `keep`, *out receives the conf even after errors
 * (when the text could be read). */
static int load(pt_conf **out, const char *path, const char *text, const char *prefix, char *err,
                size_t errlen, pt_conf_report_fn report, void *data, bool keep)
{
    char msg[1024] = "";
    pt_conf_loader cx = {
        .parse = {.err = msg, .errlen = sizeof msg},
        .modules = modules,
        .nmodules = sizeof modules / sizeof *modules,
    };
    pt_conf_node root = {0};
    int rc;
    bool parsed = false;
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    if ((rc = pt_conf_new(&cx.conf, path, prefix, msg, sizeof msg)) < 0) {
        pt_conf_keep(&cx, rc);
        goto report;
    }
    if (text)
        rc = pt_conf_parse_text(&cx.parse, path, text, strlen(text), &root);
    else
        rc = pt_conf_parse_file(&cx.parse, path, &root);
    if (rc < 0) {
        pt_conf_keep(&cx, rc);
        goto done;
    }
    parsed = true;
    pt_conf_vars_declare(&cx, &root);
    pt_conf_apply(&cx, root.kids, root.nkids, C_MAIN);
    cx.ntoprefs = cx.nrefs;
    for (size_t i = 0; i < cx.nmodules; i++) {
        /* What spans the conf is checked once the levels below read without error. */
        if (modules[i]->conf_done && (cx.first_rc == 0 || modules[i] == &pt_conf_core_module))
            pt_conf_keep(&cx, modules[i]->conf_done(&cx));
    }
done:
    pt_conf_node_dispose(&root);
    free(cx.servers);
    free(cx.locs);
    free(cx.seen);
    for (size_t i = 0; i < cx.ncapture_names; i++)
        free(cx.capture_names[i]);
    free(cx.capture_names);
    /* the names of the files read: the conf's, where every `file` member points */
    cx.conf->files = cx.parse.files;
    cx.conf->nfiles = cx.parse.nfiles;
report:
    rc = cx.first_rc;
    if (rc < 0 && err && errlen)
        snprintf(err, errlen, "%s", cx.errors[0]);
    for (size_t i = 0; i < cx.nerrors; i++) {
        if (report)
            report(cx.errors[i], data);
        free(cx.errors[i]);
    }
    free(cx.errors);
    if (rc < 0 && !(keep && parsed)) {
        pt_conf_free(cx.conf);
        return rc;
    }
    *out = cx.conf;
    return rc;
}

int pt_conf_load(pt_conf **out, const char *path, const char *prefix, char *err, size_t errlen)
{
    return load(out, path, NULL, prefix, err, errlen, NULL, NULL, false);
}

int pt_conf_parse_string(pt_conf **out, const char *text, const char *name, const char *prefix,
                         char *err, size_t errlen)
{
    return load(out, name ? name : "<string>", text, prefix, err, errlen, NULL, NULL, false);
}

int pt_conf_check(pt_conf **out, const char *path, const char *prefix, pt_conf_report_fn report,
                  void *data)
{
    return load(out, path, NULL, prefix, NULL, 0, report, data, true);
}
