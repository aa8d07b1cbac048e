/*
 * A server made from options instead of a conf file (options.h): the conf is built from the
 * option structs directly, through the functions the conf's directives call.
 */
#include "server/options.h"

#include <errno.h>
#include <stdio.h>

#include "listener/sized.h"

/* What a conf made from options names as its file, in messages. */
#define OPTIONS "pt_server_options"

/* Checks one option's text: a control character in a path is taken for a mistake. */
static int check_text(const char *name, const char *s, char *err, size_t errlen)
{
    for (; s && *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            snprintf(err, errlen, OPTIONS ": \"%s\" holds a control character", name);
            return -EINVAL;
        }
    }
    return 0;
}

/* The option `name` with value `s`, for a setter: its refusals name the option. */
static pt_conf_value option(const char *name, const char *s, char *err, size_t errlen)
{
    return (pt_conf_value){.s = s, .name = name, .file = OPTIONS, .err = err, .errlen = errlen};
}

/* Fills the conf `c` (its top-level defaults) from `o`: one server, as a conf file's
 * `server { }` block would make it, with no listening address. */
static int build(pt_conf *c, const pt_server_options *o, char *err, size_t errlen)
{
    /* The top level, which the server starts from: the limits, and the process's error log at
     * level error. */
    if (o->limits && pt_sized_copy(&c->limits, sizeof c->limits, o->limits) < 0) {
        snprintf(err, errlen,
                 OPTIONS ": limits of a size this version cannot read "
                         "(filled by pt_limits_init()?)");
        return -EINVAL;
    }
    pt_conf_value v = option("error_log", o->error_log ? o->error_log : "stderr", err, errlen);
    int r = pt_conf_set_error_log(c, &c->error_log, &v);
    if (r < 0)
        return r;
    c->error_log_level = PT_LOG_ERROR;

    pt_conf_server *s = pt_conf_server_add(c, OPTIONS, 1, 1);
    /* Without a root, "/" and one location answering 404: no files, so what no embedder's
     * route takes is answered 404. */
    v = option("root", o->root ? o->root : "/", err, errlen);
    if ((r = pt_conf_set_root(c, &s->root, &s->root_named, &v)) < 0)
        return r;
    /* before the location, which starts from the server's logs */
    if (o->access_log) {
        v = option("access_log", o->access_log, err, errlen);
        if ((r = pt_conf_add_access_log(c, &s->access_logs, &s->naccess_logs, &v)) < 0)
            return r;
    }
    if (!o->root) {
        pt_conf_location *l = pt_conf_location_add(s, OPTIONS, 1, 1);
        pt_conf_location_path(l, PT_MATCH_PREFIX, "/");
        pt_conf_set_return(&l->ret, &l->handler, 404, NULL);
    }
    if (o->tls_certificate) {
        v = option("tls_certificate", o->tls_certificate, err, errlen);
        if ((r = pt_conf_add_ssl_file(c, &s->ssl.certs, &s->ssl.ncerts, true, &v)) < 0)
            return r;
        v = option("tls_certificate_key", o->tls_certificate_key, err, errlen);
        if ((r = pt_conf_add_ssl_file(c, &s->ssl.keys, &s->ssl.nkeys, true, &v)) < 0)
            return r;
    }
    return 0;
}

int pt_options_conf(pt_conf **out, const pt_server_options *o, char *err, size_t errlen)
{
    *out = NULL;
    if (!o->tls_certificate != !o->tls_certificate_key) {
        snprintf(err, errlen, "a TLS certificate needs its key, and a key its certificate");
        return -EINVAL;
    }
    int r;
    if ((r = check_text("root", o->root, err, errlen)) < 0 ||
        (r = check_text("access_log", o->access_log, err, errlen)) < 0 ||
        (r = check_text("error_log", o->error_log, err, errlen)) < 0 ||
        (r = check_text("tls_certificate", o->tls_certificate, err, errlen)) < 0 ||
        (r = check_text("tls_certificate_key", o->tls_certificate_key, err, errlen)) < 0)
        return r;
    pt_conf *c;
    if ((r = pt_conf_new(&c, OPTIONS, o->prefix, err, errlen)) < 0)
        return r;
    if ((r = build(c, o, err, errlen)) < 0) {
        pt_conf_free(c);
        return r;
    }
    *out = c;
    return 0;
}
