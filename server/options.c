/*
 * A server made from options instead of a conf file (options.h).
 */
#include "server/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes `s` as a quoted conf string. Returns false for what a conf string cannot hold. */
static bool put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == '"' || c == '\\')
            fputc('\\', f);
        fputc(c, f);
    }
    fputc('"', f);
    return true;
}

static bool put_directive(FILE *f, const char *name, const char *value, const char *after)
{
    fprintf(f, "%s ", name);
    if (!put_quoted(f, value))
        return false;
    fprintf(f, "%s;\n", after);
    return true;
}

int pt_options_conf(pt_conf **out, const pt_server_options *o, char *err, size_t errlen)
{
    *out = NULL;
    if (!o->tls_certificate != !o->tls_certificate_key) {
        snprintf(err, errlen, "a TLS certificate needs its key, and a key its certificate");
        return -EINVAL;
    }
    /* The conf language already knows every default and check: the options are written in it
     * and read back, so a server from options and one from a file behave the same. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return -ENOMEM;
    bool ok = put_directive(f, "error_log", o->error_log ? o->error_log : "stderr", " error");
    fprintf(f, "server {\n");
    ok = ok && put_directive(f, "root", o->root ? o->root : "/", "");
    if (!o->root)
        fprintf(f, "location / { return 404; }\n"); /* no files: what no handler takes */
    if (o->access_log)
        ok = ok && put_directive(f, "access_log", o->access_log, "");
    if (o->tls_certificate) {
        ok = ok && put_directive(f, "ssl_certificate", o->tls_certificate, "");
        ok = ok && put_directive(f, "ssl_certificate_key", o->tls_certificate_key, "");
    }
    fprintf(f, "}\n");
    if (fclose(f) != 0) {
        free(text);
        return -ENOMEM;
    }
    if (!ok) {
        free(text);
        snprintf(err, errlen, "a path in the server options holds a control character");
        return -EINVAL;
    }
    int r = pt_conf_parse_string(out, text, "pt_server_options", o->prefix, err, errlen);
    free(text);
    if (r < 0)
        return r;
    pt_conf *conf = *out;
    conf->limits = o->limits;
    for (size_t i = 0; i < conf->nservers; i++) {
        pt_conf_server *cs = &conf->servers[i];
        cs->limits = o->limits;
        /* No address until pt_server_listen(): drop the one the loader gives every server. */
        for (size_t k = 0; k < cs->nlistens; k++) {
            free(cs->listens[k].host);
            free(cs->listens[k].port);
        }
        cs->nlistens = 0;
    }
    return 0;
}
