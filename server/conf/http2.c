/*
 * The HTTP/2 module of the conf: `http2 on|off` and the http2_* settings and attack limits
 * (pt_h2_settings, docs/http2.md), at the top level and in servers, each server starting from
 * the top level's. An address's connections take the settings of its default server, as with
 * the other limits of a connection before its first request names a server. Each value is
 * checked against the range HTTP/2 (RFC 9113) or porter allows, so `porter -t` reports a value
 * out of range with its place. The `http2` parameter of `listen` is core.c's.
 */
#include <stdint.h>
#include <string.h>

#include "server/conf/directives.h"

/* The range of each number; `size` ones take k, m, g. */
static const struct range {
    const char *name;
    uint64_t min, max;
    bool size;
} ranges[] = {
    {"http2_max_concurrent_streams", 1, INT32_MAX, false},
    {"http2_max_header_list_size", 1024, UINT32_MAX, true},
    /* SETTINGS_MAX_FRAME_SIZE: 2^14 .. 2^24-1 (RFC 9113, 6.5.2) */
    {"http2_max_frame_size", 16384, 16777215, true},
    /* a window is at least the initial 65535 and at most 2^31-1 (RFC 9113, 6.9.1) */
    {"http2_stream_window", 65535, INT32_MAX, true},
    {"http2_connection_window", 65535, INT32_MAX, true},
    /* 0: a header block in one HEADERS frame */
    {"http2_max_continuations", 0, INT32_MAX, false},
    {"http2_max_settings", 1, INT32_MAX, false},
    /* BURST RATE pairs, each of the two */
    {"http2_reset_rate_limit", 1, INT32_MAX, false},
    {"http2_control_frame_limit", 1, INT32_MAX, false},
};

static const struct range *range_of(const char *name)
{
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
        if (strcmp(ranges[i].name, name) == 0)
            return &ranges[i];
    return NULL;
}

/* Word `i` of `d` as a number within the directive's range, into *out. */
static int number(pt_conf_loader *cx, const pt_conf_node *d, size_t i, uint32_t *out)
{
    const struct range *r = range_of(d->w[0].s);
    const char *s = d->w[i].s;
    uint64_t v = 0;
    bool ok;
    if (r->size) {
        size_t n;
        ok = pt_parse_size(s, &n) == 0;
        v = n;
    } else {
        ok = pt_conf_parse_uint(s, UINT64_MAX, &v) == 0;
    }
    if (!ok)
        return pt_conf_bad(cx, d, i, "invalid %s \"%s\" in \"%s\"", r->size ? "size" : "number", s,
                           d->w[0].s);
    if (v < r->min || v > r->max)
        return pt_conf_bad(cx, d, i, "invalid value \"%s\" in \"%s\", it must be %llu..%llu", s,
                           d->w[0].s, (unsigned long long)r->min, (unsigned long long)r->max);
    *out = (uint32_t)v;
    return 0;
}

/* `http2_NAME N;` or `http2_NAME SIZE;` */
static int set_h2_number(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    return number(cx, d, 1, field);
}

/* `http2_NAME BURST RATE;`: `field` the burst, `aux` the rate per second. */
static int set_h2_rate(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    uint32_t burst, rate;
    int rc = number(cx, d, 1, &burst);
    if (rc == 0 && (rc = number(cx, d, 2, &rate)) == 0) {
        *(uint32_t *)field = burst;
        *(uint32_t *)aux = rate;
    }
    return rc;
}

#define H2(f) BOTH(h2.f)

static const pt_conf_directive directives[] = {
    {"http2", C_ANY, 0, 1, 1, pt_conf_set_flag, BOTH(http2)},
    {"http2_max_concurrent_streams", C_ANY, 0, 1, 1, set_h2_number, H2(max_concurrent_streams)},
    {"http2_max_header_list_size", C_ANY, 0, 1, 1, set_h2_number, H2(max_header_list_size)},
    {"http2_max_frame_size", C_ANY, 0, 1, 1, set_h2_number, H2(max_frame_size)},
    {"http2_stream_window", C_ANY, 0, 1, 1, set_h2_number, H2(stream_window)},
    {"http2_connection_window", C_ANY, 0, 1, 1, set_h2_number, H2(connection_window)},
    {"http2_reset_rate_limit", C_ANY, 0, 2, 2, set_h2_rate, H2(reset_burst), H2(reset_rate)},
    {"http2_max_continuations", C_ANY, 0, 1, 1, set_h2_number, H2(max_continuations)},
    {"http2_max_settings", C_ANY, 0, 1, 1, set_h2_number, H2(max_settings)},
    {"http2_control_frame_limit", C_ANY, 0, 2, 2, set_h2_rate, H2(control_burst), H2(control_rate)},
};

const pt_conf_module pt_conf_http2_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
};
