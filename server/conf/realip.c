/*
 * The realip module of the conf: the client's real address when a trusted proxy says who it is
 * (pt_conf_realip, docs/access.md), nginx's set_real_ip_from, real_ip_header and
 * real_ip_recursive, at the top level, in servers and in locations. Each level starts from a
 * copy of its parent's; a level that names set_real_ip_from replaces the inherited list, as
 * nginx's merge does.
 *
 * nginx resolves a host name given to set_real_ip_from when it reads its conf and trusts the
 * addresses it had then; porter refuses names (an address that changes later would be trusted
 * in silence, or not), so a conf says the addresses it means.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/conf/directives.h"
#include "server/conf/mem.h"

static pt_conf_realip *realip_holding(pt_cidr **from)
{
    return (pt_conf_realip *)(void *)((char *)from - offsetof(pt_conf_realip, from));
}

/* `set_real_ip_from ADDRESS|CIDR|unix:;` */
static int set_from(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_realip *r = realip_holding(field);
    pt_cidr c, masked;
    const char *why = NULL;
    int rc = pt_cidr_parse(arg1(d), &c, &why, &masked);
    if (rc == -ERANGE) /* bits beyond the prefix: nginx clears them (and warns) */
        c = masked, rc = 0;
    if (rc < 0 || c.kind == PT_CIDR_ALL)
        return pt_conf_bad(cx, d, 1,
                           "invalid address \"%s\" in \"set_real_ip_from\", it must be an IPv4 or "
                           "IPv6 address, with a prefix length or not, or \"unix:\" (a host name "
                           "is not resolved: write its addresses)",
                           arg1(d));
    if (cx->first) {
        free(r->from);
        r->from = NULL;
        r->nfrom = 0;
    }
    *PUSH(r->from, r->nfrom) = c;
    return 0;
}

static pt_conf_realip *realip_of_source(pt_realip_source *source)
{
    return (pt_conf_realip *)(void *)((char *)source - offsetof(pt_conf_realip, source));
}

/* `real_ip_header X-Real-IP | X-Forwarded-For | proxy_protocol | NAME;` (the three words
 * exactly as nginx spells them; another spelling is a header of that name). */
static int set_header(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_realip *r = realip_of_source(field);
    const char *v = arg1(d);
    free(r->header);
    r->header = NULL;
    if (strcmp(v, "X-Real-IP") == 0) {
        r->source = PT_REALIP_X_REAL_IP;
    } else if (strcmp(v, "X-Forwarded-For") == 0) {
        r->source = PT_REALIP_X_FORWARDED_FOR;
    } else if (strcmp(v, "proxy_protocol") == 0) {
        r->source = PT_REALIP_PROXY_PROTOCOL;
    } else {
        if (!pt_conf_is_token(v))
            return pt_conf_bad(cx, d, 1, "invalid header name \"%s\" in \"real_ip_header\"", v);
        r->source = PT_REALIP_HEADER;
        r->header = xstrdup(v);
        for (char *p = r->header; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    return 0;
}

static const pt_conf_directive directives[] = {
    {"set_real_ip_from", C_ALL, F_MULTI, 1, 1, set_from, ALL(realip.from)},
    {"real_ip_header", C_ALL, 0, 1, 1, set_header, ALL(realip.source)},
    {"real_ip_recursive", C_ALL, 0, 1, 1, pt_conf_set_flag, ALL(realip.recursive)},
};

const pt_conf_module pt_conf_realip_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
};
