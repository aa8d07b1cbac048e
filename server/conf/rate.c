/*
 * The send-rate module of the conf: nginx's `limit_rate RATE;` (bytes per second, 0: no
 * limit) and `limit_rate_after SIZE;` (bytes sent at full speed first), at the top level, in a
 * server or in a location, each level starting from its parent's (pt_conf_limit_rate; the
 * arithmetic is connmgr/rate.h's, the limit the request's: docs/access.md).
 */
#include <errno.h>

#include "server/conf/directives.h"

/* A size: digits with k, m or g; nothing else (nginx takes no "off" here: 0 is no limit). */
static int set_rate_size(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    size_t v;
    int rc = pt_parse_size(arg1(d), &v);
    if (rc == -ERANGE)
        return pt_conf_bad(cx, d, 1, "invalid value \"%s\" in \"%s\", it is out of range", arg1(d),
                           d->w[0].s);
    if (rc < 0)
        return pt_conf_bad(cx, d, 1,
                           "invalid value \"%s\" in \"%s\", it must be a size in bytes (\"512k\", "
                           "\"1m\")",
                           arg1(d), d->w[0].s);
    *(size_t *)field = v;
    return 0;
}

static const pt_conf_directive directives[] = {
    {"limit_rate", C_ALL | C_LIF, 0, 1, 1, set_rate_size, ALL(limit_rate.rate)},
    {"limit_rate_after", C_ALL, 0, 1, 1, set_rate_size, ALL(limit_rate.after)},
};

const pt_conf_module pt_conf_rate_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
};
