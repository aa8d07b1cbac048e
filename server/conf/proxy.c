/*
 * The proxy module of the conf: the proxy_* directives (server/handlers/proxy.c and upstream.c
 * read them; `upstream` blocks are conf/upstream.c's). A proxy_pass
 * URL is taken apart as the proxy will take it (pt_proxy_url_parse), so what it could not
 * use is a conf error with its place.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connmgr/authority.h"
#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/vars.h"
#include "server/handlers/upstream.h"

static const pt_conf_upstream *upstream_named(const pt_conf *c, const char *name)
{
    for (size_t i = 0; i < c->nupstreams; i++)
        if (strcmp(c->upstreams[i].name, name) == 0)
            return &c->upstreams[i];
    return NULL;
}

/* `proxy_pass http[s]://UPSTREAM|HOST[:PORT]|unix:PATH:[/URI];` */
static int set_proxy_pass(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_location *l = cx->loc;
    pt_proxy_url url;
    const char *why = "";
    if (pt_proxy_url_parse(arg1(d), &url, &why) < 0)
        return pt_conf_bad(cx, d, 1, "invalid URL \"%s\" in \"proxy_pass\": %s", arg1(d), why);
    if (l->handler != PT_HANDLER_STATIC)
        return pt_conf_bad(cx, d, 0, "\"proxy_pass\" and \"%s\" in one location",
                           pt_conf_handler_directive(l->handler));
    /* inside `if`: an upstream block, as the request's URI (conf/rewrite.c) */
    if (cx->in_if && (url.uri || !upstream_named(cx->conf, url.name)))
        return pt_conf_bad(cx, d, 1,
                           "\"proxy_pass\" inside \"if\" names an upstream block, without a URI");
    if ((l->match == PT_MATCH_REGEX || l->match == PT_MATCH_NAMED) && url.uri)
        return pt_conf_bad(cx, d, 1, "\"proxy_pass\" cannot have a URI in a %s location",
                           l->match == PT_MATCH_NAMED ? "named" : "regular expression");
    if (!upstream_named(cx->conf, url.name)) {
        pt_authority a;
        if (pt_authority_parse(&a, url.name, strlen(url.name), url.tls ? 443 : 80) < 0)
            return pt_conf_bad(cx, d, 1, "invalid host \"%s\" in \"proxy_pass\"", url.name);
        /* A bare word that is no upstream's name is most likely a misspelt one. */
        if (a.kind == PT_AUTHORITY_NAME && !strpbrk(url.name, ".:") &&
            strcmp(url.name, "localhost") != 0)
            return pt_conf_bad(cx, d, 1,
                               "no upstream \"%s\" (a host name needs a port or a dot: \"%s:80\")",
                               url.name, url.name);
    }
    for (const char *p = url.uri; p && *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return pt_conf_bad(cx, d, 1, "invalid URI in \"proxy_pass\"");
    l->proxy.pass = xstrdup(arg1(d));
    l->proxy.pass_file = d->file;
    l->proxy.pass_line = d->w[1].line;
    l->proxy.pass_col = d->w[1].col;
    l->handler = PT_HANDLER_PROXY;
    return 0;
}

/* proxy_hide_header / proxy_pass_header NAME: a list of field names, kept in lower case. A
 * level that names one does not inherit its parent's list. */
static int set_proxy_names(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    char ***v = field;
    size_t *n = aux;
    if (!pt_conf_is_token(d->w[1].s))
        return pt_conf_bad(cx, d, 1, "invalid header name \"%s\" in \"%s\"", d->w[1].s, d->w[0].s);
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
static int set_next_upstream(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
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
            return pt_conf_bad(cx, d, i, "invalid value \"%s\" in \"proxy_next_upstream\"",
                               d->w[i].s);
        if (!words[k].flag && d->nw > 2)
            return pt_conf_bad(cx, d, i,
                               "\"off\" cannot go with other values in \"proxy_next_upstream\"");
        set |= words[k].flag;
    }
    *v = set;
    return 0;
}

/* proxy_redirect default | off | PREFIX REPLACEMENT (plain strings: no regex, no variables). */
static int set_proxy_redirect(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_header **v = field;
    size_t *n = aux;
    const char *a = d->w[1].s;
    bool keyword = strcmp(a, "default") == 0 || strcmp(a, "off") == 0;
    if (d->nw == 2 && !keyword)
        return pt_conf_bad(cx, d, 1,
                           "invalid parameter \"%s\" in \"proxy_redirect\": write \"default\", "
                           "\"off\" or a prefix and its replacement",
                           a);
    if (d->nw == 3 && !a[0])
        return pt_conf_bad(cx, d, 1, "empty prefix in \"proxy_redirect\"");
    if (cx->first || (d->nw == 2 && strcmp(a, "off") == 0))
        headers_clear(v, n);
    if (d->nw == 2 && strcmp(a, "default") == 0)
        *PUSH(*v, *n) = (pt_conf_header){NULL, NULL, false};
    else if (d->nw == 3)
        *PUSH(*v, *n) = (pt_conf_header){xstrdup(a), xstrdup(d->w[2].s), false};
    return 0;
}

/* `proxy_set_header NAME VALUE;` */
static int set_proxy_set_header(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_header **v = field;
    size_t *n = aux;
    if (!pt_conf_is_token(d->w[1].s))
        return pt_conf_bad(cx, d, 1, "invalid header name \"%s\" in \"proxy_set_header\"",
                           d->w[1].s);
    const char *value = d->w[2].s;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return pt_conf_bad(cx, d, 2, "invalid character in the value of \"proxy_set_header\"");
    for (const char *p = strchr(value, '$'); p; p = strchr(p + 1, '$')) {
        pt_var_ref var = pt_var_parse(p);
        if (!pt_conf_var_ok(cx, PT_VARS_PROXY, &var))
            return pt_conf_bad(cx, d, 2, "unknown variable \"$%.*s\" in \"proxy_set_header\"",
                               (int)(var.name.len ? var.name.len : 1),
                               var.name.len ? var.name.p : p + 1);
    }
    if (cx->first) /* a level with proxy_set_header of its own does not inherit its parent's */
        headers_clear(v, n);
    for (size_t i = 0; i < *n; i++)
        if (strcasecmp((*v)[i].name, d->w[1].s) == 0)
            return pt_conf_bad(cx, d, 1, "header \"%s\" is set twice", d->w[1].s);
    *PUSH(*v, *n) = (pt_conf_header){xstrdup(d->w[1].s), xstrdup(value), false};
    return 0;
}

/* A proxy_pass read before a `return` or `status` of the same location. */
static int check_location(pt_conf_loader *cx, pt_conf_location *l)
{
    if (l->proxy.pass && l->handler != PT_HANDLER_PROXY)
        return pt_conf_fail(cx, -EINVAL, l->file, l->line, l->col,
                            "\"proxy_pass\" and \"%s\" in one location",
                            pt_conf_handler_directive(l->handler));
    return 0;
}

static const pt_conf_directive directives[] = {
    {"proxy_pass", C_LOCATION | C_LIF, 0, 1, 1, set_proxy_pass, NOWHERE},
    {"proxy_set_header", C_ALL, F_MULTI, 2, 2, set_proxy_set_header, ALL(proxy.set_headers),
     ALL(proxy.nset_headers)},
    {"proxy_next_upstream", C_ALL, 0, 1, 11, set_next_upstream, ALL(proxy.next_upstream)},
    {"proxy_next_upstream_tries", C_ALL, 0, 1, 1, pt_conf_set_count,
     ALL(proxy.next_upstream_tries)},
    {"proxy_next_upstream_timeout", C_ALL, 0, 1, 1, pt_conf_set_time,
     ALL(proxy.next_upstream_timeout)},
    {"proxy_redirect", C_ALL, F_MULTI, 1, 2, set_proxy_redirect, ALL(proxy.redirects),
     ALL(proxy.nredirects)},
    {"proxy_hide_header", C_ALL, F_MULTI, 1, 1, set_proxy_names, ALL(proxy.hide_headers),
     ALL(proxy.nhide_headers)},
    {"proxy_pass_header", C_ALL, F_MULTI, 1, 1, set_proxy_names, ALL(proxy.pass_headers),
     ALL(proxy.npass_headers)},
    {"proxy_connect_timeout", C_ALL, 0, 1, 1, pt_conf_set_time, ALL(proxy.connect_timeout)},
    {"proxy_read_timeout", C_ALL, 0, 1, 1, pt_conf_set_time, ALL(proxy.read_timeout)},
    {"proxy_send_timeout", C_ALL, 0, 1, 1, pt_conf_set_time, ALL(proxy.send_timeout)},
    {"proxy_ssl_verify", C_ALL, 0, 1, 1, pt_conf_set_flag, ALL(proxy.ssl_verify)},
    {"proxy_ssl_server_name", C_ALL, 0, 1, 1, pt_conf_set_flag, ALL(proxy.ssl_server_name)},
    {"proxy_ssl_trusted_certificate", C_ALL, 0, 1, 1, pt_conf_set_path,
     ALL(proxy.ssl_trusted_certificate)},
};

const pt_conf_module pt_conf_proxy_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
    .location_done = check_location,
};
