/*
 * The access module of the conf (pt_conf_access, docs/access.md): `allow` and `deny` (a
 * client's address, compiled here into ranges), `satisfy`, `auth_basic` and
 * `auth_basic_user_file` (read here, so a malformed line fails the load with its place). Each
 * stands at the top level, in a server or in a location.
 *
 * What nginx would read as something else is refused: variables in the realm or the file's
 * name (porter expands none there), an address with bits set beyond its prefix length (nginx
 * masks them with a warning: porter says which range to write), and a realm without a user
 * file (nginx then asks nothing of anyone).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/core/htpasswd.h"

static pt_conf_access *access_holding(void *field, size_t offset)
{
    return (pt_conf_access *)(void *)((char *)field - offset);
}

/* ---- setters ---- */

/* `allow RANGE;` and `deny RANGE;`: the rules of a level, in order; a level with any replaces
 * the inherited ones. */
static int set_rule(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_access *a = access_holding(field, offsetof(pt_conf_access, rules));
    pt_access_rule r = {.deny = strcmp(d->w[0].s, "deny") == 0};
    const char *why = NULL;
    pt_cidr masked;
    int rc = pt_cidr_parse(arg1(d), &r.range, &why, &masked);
    if (rc < 0) {
        if (rc == -ERANGE) {
            char meant[PT_CIDR_STRLEN];
            pt_cidr_format(&masked, meant, sizeof meant);
            return pt_conf_bad(cx, d, 1,
                               "invalid address \"%s\" in \"%s\": %s, write \"%s\" for the range",
                               arg1(d), d->w[0].s, why, meant);
        }
        return pt_conf_bad(cx, d, 1,
                           "invalid address \"%s\" in \"%s\": %s (an address, ADDRESS/PREFIX, "
                           "\"unix:\" or \"all\")",
                           arg1(d), d->w[0].s, why);
    }
    if (cx->first) {
        free(a->rules);
        a->rules = NULL;
        a->nrules = 0;
        a->rules_v4 = false;
    }
    *PUSH(a->rules, a->nrules) = r;
    a->rules_v4 |= r.range.kind == PT_CIDR_V4 || r.range.kind == PT_CIDR_ALL;
    return 0;
}

/* `satisfy all | any;` */
static int set_satisfy(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_satisfy *v = field;
    if (strcmp(arg1(d), "all") == 0)
        *v = PT_SATISFY_ALL;
    else if (strcmp(arg1(d), "any") == 0)
        *v = PT_SATISFY_ANY;
    else
        return pt_conf_bad(cx, d, 1,
                           "invalid value \"%s\" in \"satisfy\", it must be \"all\" or \"any\"",
                           arg1(d));
    return 0;
}

/* `auth_basic REALM | off;` */
static int set_realm(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_access *a = access_holding(field, offsetof(pt_conf_access, realm));
    const char *realm = arg1(d);
    free(a->realm);
    free(a->challenge);
    a->realm = a->challenge = NULL;
    a->realm_file = d->file;
    a->realm_line = d->w[1].line;
    a->realm_col = d->w[1].col;
    if (strcmp(realm, "off") == 0)
        return 0;
    for (const char *p = realm; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return pt_conf_bad(cx, d, 1, "invalid realm in \"auth_basic\": a control character");
        if (*p == '$')
            return pt_conf_bad(cx, d, 1,
                               "variables are not supported in \"auth_basic\": the realm is "
                               "sent as written");
    }
    /* the realm as a quoted-string (RFC 9110 section 5.6.4): '"' and '\' escaped */
    static const char head[] = "WWW-Authenticate: Basic realm=\"";
    static const char tail[] = "\", charset=\"UTF-8\"\r\n";
    size_t n = strlen(realm);
    char *line = xrealloc(NULL, sizeof head + 2 * n + sizeof tail);
    char *p = line;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    for (const char *r = realm; *r; r++) {
        if (*r == '"' || *r == '\\')
            *p++ = '\\';
        *p++ = *r;
    }
    memcpy(p, tail, sizeof tail);
    a->realm = xstrdup(realm);
    a->challenge = line;
    return 0;
}

/* `auth_basic_user_file FILE;`: read now, under the prefix as every file of the conf. */
static int set_user_file(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_access *a = access_holding(field, offsetof(pt_conf_access, user_file));
    if (strchr(arg1(d), '$'))
        return pt_conf_bad(cx, d, 1,
                           "variables are not supported in \"auth_basic_user_file\": the file is "
                           "read once, when the configuration is loaded");
    pt_conf_value v = pt_conf_word_value(cx, d, 1);
    int rc = pt_conf_path(cx->conf, &a->user_file, &v);
    if (rc < 0)
        return rc;
    char why[512];
    pt_htpasswd *users;
    rc = pt_htpasswd_load(&users, a->user_file, why, sizeof why);
    if (rc == -ENOMEM)
        oom();
    if (rc < 0)
        return pt_conf_bad(cx, d, 1, "in \"auth_basic_user_file\": %s", why);
    pt_htpasswd_unref(a->users);
    a->users = users;
    return 0;
}

/* ---- checks ---- */

/* A realm with no user file would let everyone in (nginx asks nothing then). */
static int check(pt_conf_loader *cx, const pt_conf_access *a)
{
    if (a->realm && !a->users)
        return pt_conf_fail(cx, -EINVAL, a->realm_file, a->realm_line, a->realm_col,
                            "\"auth_basic\" has no \"auth_basic_user_file\" here: write one, or "
                            "\"auth_basic off\" where none is meant");
    return 0;
}

static int location_done(pt_conf_loader *cx, pt_conf_location *l)
{
    return check(cx, &l->access);
}

static int server_done(pt_conf_loader *cx, pt_conf_server *s)
{
    return check(cx, &s->access);
}

#define ACCESS(f) ALL(access.f)

static const pt_conf_directive directives[] = {
    {"allow", C_ALL, F_MULTI, 1, 1, set_rule, ACCESS(rules)},
    {"deny", C_ALL, F_MULTI, 1, 1, set_rule, ACCESS(rules)},
    {"satisfy", C_ALL, 0, 1, 1, set_satisfy, ACCESS(satisfy)},
    {"auth_basic", C_ALL, 0, 1, 1, set_realm, ACCESS(realm)},
    {"auth_basic_user_file", C_ALL, 0, 1, 1, set_user_file, ACCESS(user_file)},
};

const pt_conf_module pt_conf_access_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
    .location_done = location_done,
    .server_done = server_done,
};
