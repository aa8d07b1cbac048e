/*
 * HTTP/2 on libnghttp2 (see conn.h).
 */
#include <errno.h>
#include <string.h>

#include "server/h2/conn.h"

int pt_h2_preface_match(const char *p, size_t len)
{
    size_t n = len < PT_H2_PREFACE_LEN ? len : PT_H2_PREFACE_LEN;
    if (memcmp(p, PT_H2_PREFACE, n) != 0)
        return -1;
    return n == PT_H2_PREFACE_LEN ? 1 : 0;
}

int pt_h2_conn_attach(pt_conn *c, const pt_site_ops *ops, void *site, bool tls,
                      const pt_h2_settings *settings, pt_h2_counters *counters)
{
    pt_conn_kill(c);
    return -ENOTSUP;
}
