/*
 * The static module of the conf: what static files are answered with (try_files,
 * error_page, add_header, expires, autoindex, precompressed siblings, ranges, ETag) and the
 * file cache, one per process (server/handlers/static.c and filecache.c read them).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/vars.h"

/* try_files names files with $uri (the decoded, normalised request path), the variables that
 * name files and captures; error_page's URI takes what `return`'s does; add_header expands
 * nothing (`user` -1). */
static int check_vars(pt_conf_loader *cx, const pt_conf_node *d, size_t i, int user)
{
    for (const char *p = strchr(d->w[i].s, '$'); p; p = strchr(p + 1, '$')) {
        pt_var_ref v = pt_var_parse(p);
        if (user < 0 || !pt_conf_var_ok(cx, user, &v))
            return pt_conf_bad(cx, d, i, "unknown variable \"$%.*s\" in \"%s\"%s", (int)v.name.len,
                               v.name.p, d->w[0].s,
                               user < 0 ? ", variables are not supported"
                               : user == PT_VARS_TRY_FILES
                                   ? ", only $uri, $document_root, $realpath_root, "
                                     "$request_filename and captures are supported"
                                   : "");
    }
    return 0;
}

static int set_try_files(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    char ***v = field;
    size_t *n = aux;
    for (size_t i = 1; i < d->nw; i++) {
        const char *a = d->w[i].s;
        bool last = i == d->nw - 1;
        int rc = check_vars(cx, d, i, PT_VARS_TRY_FILES);
        if (rc < 0)
            return rc;
        if (a[0] == '@' && (!last || !a[1]))
            return pt_conf_bad(cx, d, i, "invalid named location \"%s\" in \"try_files\"%s", a,
                               last ? "" : ", only the last argument may name one");
        if (last && a[0] == '@') {
            rc = pt_conf_named_ref_add(cx, d, i);
            if (rc < 0)
                return rc;
        } else if (last && a[0] == '=') {
            uint64_t code;
            if (pt_conf_parse_uint(a + 1, 599, &code) < 0 || code < 100)
                return pt_conf_bad(cx, d, i, "invalid code \"%s\" in \"try_files\"", a);
        } else if (a[0] != '/' && strncmp(a, "$uri", 4) != 0) {
            return pt_conf_bad(cx, d, i,
                               "invalid URI \"%s\" in \"try_files\", it must start with \"/\" or "
                               "\"$uri\"",
                               a);
        } else if (!last && strchr(a, '?')) {
            return pt_conf_bad(cx, d, i,
                               "a query in \"%s\" of \"try_files\" is only allowed in the last "
                               "argument",
                               a);
        }
    }
    for (size_t i = 1; i < d->nw; i++)
        *PUSH(*v, *n) = xstrdup(d->w[i].s);
    return 0;
}

static int set_autoindex_format(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_autoindex_format *v = field;
    if (strcmp(arg1(d), "html") == 0)
        *v = PT_AUTOINDEX_HTML;
    else if (strcmp(arg1(d), "json") == 0)
        *v = PT_AUTOINDEX_JSON;
    else
        return pt_conf_bad(cx, d, 1,
                           "invalid value \"%s\" in \"%s\", it must be \"html\" or \"json\"",
                           arg1(d), d->w[0].s);
    return 0;
}

/* `expires off | epoch | max | [modified] [-]TIME;` */
static int set_expires(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_expires *kind = field;
    double *secs = aux;
    size_t i = 1;
    if (d->nw == 2 && strcmp(arg1(d), "off") == 0) {
        *kind = PT_EXPIRES_OFF;
        return 0;
    }
    if (d->nw == 2 && strcmp(arg1(d), "epoch") == 0) {
        *kind = PT_EXPIRES_EPOCH;
        return 0;
    }
    if (d->nw == 2 && strcmp(arg1(d), "max") == 0) {
        *kind = PT_EXPIRES_MAX;
        return 0;
    }
    pt_conf_expires k = PT_EXPIRES_ACCESS;
    if (d->nw == 3) {
        if (strcmp(arg1(d), "modified") != 0 && strcmp(arg1(d), "access") != 0)
            return pt_conf_bad(cx, d, 1, "invalid value \"%s\" in \"expires\"", arg1(d));
        if (strcmp(arg1(d), "modified") == 0)
            k = PT_EXPIRES_MODIFIED;
        i = 2;
    }
    const char *t = d->w[i].s;
    bool neg = t[0] == '-';
    double v;
    if (t[0] == '@')
        return pt_conf_bad(cx, d, i, "\"expires @TIME\" is not supported");
    if (pt_parse_time(t + neg, &v) < 0)
        return pt_conf_bad(cx, d, i, "invalid value \"%s\" in \"expires\"", t);
    *kind = k;
    *secs = neg ? -v : v;
    return 0;
}

static int set_add_header(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_header **v = field;
    size_t *n = aux;
    if (!pt_conf_is_token(d->w[1].s))
        return pt_conf_bad(cx, d, 1, "invalid header name \"%s\" in \"add_header\"", d->w[1].s);
    for (const char *p = d->w[2].s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return pt_conf_bad(cx, d, 2, "invalid character in the value of \"add_header\"");
    int rc = check_vars(cx, d, 2, -1);
    if (rc < 0)
        return rc;
    if (d->nw == 4 && strcmp(d->w[3].s, "always") != 0)
        return pt_conf_bad(cx, d, 3, "invalid parameter \"%s\" in \"add_header\"", d->w[3].s);
    size_t total = strlen(d->w[1].s) + strlen(d->w[2].s) + 4;
    for (size_t i = 0; !cx->first && i < *n; i++)
        total += strlen((*v)[i].name) + strlen((*v)[i].value) + 4;
    if (total > PT_CONF_HEADERS_MAX)
        return pt_conf_bad(cx, d, 0, "the \"add_header\" lines of this level exceed %d bytes",
                           PT_CONF_HEADERS_MAX);
    if (cx->first) /* a level with add_header of its own does not inherit its parent's */
        headers_clear(v, n);
    *PUSH(*v, *n) = (pt_conf_header){xstrdup(d->w[1].s), xstrdup(d->w[2].s), d->nw == 4};
    return 0;
}

/* `error_page CODE ... [=[RESPONSE]] URI;` */
static int set_error_page(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_error_page **v = field;
    size_t *n = aux;
    size_t last = d->nw - 1, ncodes = last - 1;
    const char *uri = d->w[last].s;
    int response = 0;
    if (d->w[last - 1].s[0] == '=') {
        const char *r = d->w[last - 1].s + 1;
        uint64_t code;
        ncodes--;
        if (!*r)
            response = -1;
        else if (pt_conf_parse_uint(r, 599, &code) < 0 || code < 200)
            return pt_conf_bad(cx, d, last - 1, "invalid value \"%s\" in \"error_page\"", r - 1);
        else
            response = (int)code;
    }
    if (ncodes == 0)
        return pt_conf_bad(cx, d, 0, "invalid number of arguments in \"error_page\" directive");
    if (uri[0] == '@') {
        /* a name the server's named locations are checked against: no variables */
        if (!uri[1] || strchr(uri, '$'))
            return pt_conf_bad(cx, d, last, "invalid named location \"%s\"", uri);
        int rc = pt_conf_named_ref_add(cx, d, last);
        if (rc < 0)
            return rc;
    }
    if (uri[0] != '/' && uri[0] != '@' && strncmp(uri, "http://", 7) != 0 &&
        strncmp(uri, "https://", 8) != 0 && strncmp(uri, "$scheme://", 10) != 0 &&
        strncmp(uri, "${scheme}://", 12) != 0)
        return pt_conf_bad(cx, d, last, "invalid URI \"%s\" in \"error_page\"", uri);
    for (const char *p = uri; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return pt_conf_bad(cx, d, last, "invalid URI \"%s\" in \"error_page\"", uri);
    /* expanded as the error is answered, as return's text (captures of the location's regex) */
    int rc = check_vars(cx, d, last, PT_VARS_RETURN);
    if (rc < 0)
        return rc;
    for (size_t i = 1; i <= ncodes; i++) {
        uint64_t code;
        if (pt_conf_parse_uint(d->w[i].s, 599, &code) < 0 || code < 300 || code == 499)
            return pt_conf_bad(cx, d, i, "value \"%s\" must be between 300 and 599", d->w[i].s);
    }
    if (cx->first) {
        /* as for add_header: a level's own list replaces the inherited one */
        for (size_t i = 0; i < *n; i++)
            free((*v)[i].uri);
        free(*v);
        *v = NULL;
        *n = 0;
    }
    for (size_t i = 1; i <= ncodes; i++)
        *PUSH(*v, *n) = (pt_conf_error_page){atoi(d->w[i].s), response, xstrdup(uri)};
    return 0;
}

static int set_max_ranges(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    size_t *v = field;
    uint64_t n;
    if (pt_conf_parse_uint(arg1(d), PT_CONF_MAX_RANGES, &n) < 0)
        return pt_conf_bad(cx, d, 1, "invalid value \"%s\" in \"max_ranges\", it must be 0..%d",
                           arg1(d), PT_CONF_MAX_RANGES);
    *v = (size_t)n;
    return 0;
}

/* `open_file_cache off | max=N [inactive=TIME];` */
static int set_open_file_cache(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    size_t *max = field;
    double *inactive = aux;
    if (strcmp(arg1(d), "off") == 0) {
        if (d->nw > 2)
            return pt_conf_bad(cx, d, 2, "invalid parameter \"%s\" in \"open_file_cache\"",
                               d->w[2].s);
        *max = 0;
        return 0;
    }
    bool have_max = false;
    for (size_t i = 1; i < d->nw; i++) {
        const char *a = d->w[i].s;
        uint64_t n;
        double t;
        if (strncmp(a, "max=", 4) == 0 && pt_conf_parse_uint(a + 4, SIZE_MAX, &n) == 0 && n > 0) {
            *max = (size_t)n;
            have_max = true;
        } else if (strncmp(a, "inactive=", 9) == 0 && pt_parse_time(a + 9, &t) == 0 && t > 0) {
            *inactive = t;
        } else {
            return pt_conf_bad(cx, d, i, "invalid parameter \"%s\" in \"open_file_cache\"", a);
        }
    }
    if (!have_max)
        return pt_conf_bad(cx, d, 1, "\"open_file_cache\" needs \"max=N\" or \"off\"");
    return 0;
}

#define FILES(f) ALL(static_files.f)

static const pt_conf_directive directives[] = {
    {"try_files", C_SERVER | C_LOCATION, 0, 2, -1, set_try_files, SRVLOC(static_files.try_files),
     SRVLOC(static_files.ntry_files)},
    {"autoindex", C_ALL, 0, 1, 1, pt_conf_set_flag, FILES(autoindex)},
    {"autoindex_format", C_ALL, 0, 1, 1, set_autoindex_format, FILES(autoindex_format)},
    {"autoindex_exact_size", C_ALL, 0, 1, 1, pt_conf_set_flag, FILES(autoindex_exact_size)},
    {"autoindex_localtime", C_ALL, 0, 1, 1, pt_conf_set_flag, FILES(autoindex_localtime)},
    {"expires", C_ALL, 0, 1, 2, set_expires, FILES(expires_kind), FILES(expires)},
    {"add_header", C_ALL | C_LIF, F_MULTI, 2, 3, set_add_header, FILES(headers), FILES(nheaders)},
    {"error_page", C_ALL, F_MULTI, 2, -1, set_error_page, FILES(error_pages), FILES(nerror_pages)},
    {"precompressed", C_ALL, 0, 1, 1, pt_conf_set_flag, FILES(precompressed)},
    {"max_ranges", C_ALL, 0, 1, 1, set_max_ranges, FILES(max_ranges)},
    {"etag", C_ALL, 0, 1, 1, pt_conf_set_flag, FILES(etag)},

    /* the file cache, one per process */
    {"file_cache_size", C_TOP, 0, 1, 1, pt_conf_set_size_or_off, TOP(file_cache_size)},
    {"file_cache_max_file", C_TOP, 0, 1, 1, pt_conf_set_size_or_off, TOP(file_cache_max_file)},
    {"file_cache_valid", C_TOP, 0, 1, 1, pt_conf_set_interval, TOP(file_cache_valid)},
    {"open_file_cache", C_TOP, 0, 1, 2, set_open_file_cache, TOP(open_file_cache_max),
     TOP(open_file_cache_inactive)},
    /* nginx's name; it shares the field */
    {"open_file_cache_valid", C_TOP, 0, 1, 1, pt_conf_set_interval, TOP(file_cache_valid)},
};

const pt_conf_module pt_conf_static_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
};
