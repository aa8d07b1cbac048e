/*
 * Authority syntax (see uri.h).
 */
#include "server/core/uri.h"

#include <string.h>

#include "server/core/request.h" /* pt_host_name */

/* reg-name's characters: unreserved and sub-delims (RFC 3986); '%' starts an escape. */
static const unsigned char reg_name[256] = {
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['-'] = 1, ['.'] = 1,  ['_'] = 1,
    ['~'] = 1,         ['!'] = 1,         ['$'] = 1,         ['&'] = 1, ['\''] = 1, ['('] = 1,
    [')'] = 1,         ['*'] = 1,         ['+'] = 1,         [','] = 1, [';'] = 1,  ['='] = 1,
};

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool pt_uri_authority_valid(const char *s, size_t len)
{
    size_t i = 0;
    if (len && s[0] == '[') {
        /* IP-literal: IPv6 (or IPvFuture's hex and dots); at least one ':' */
        bool colon = false;
        for (i = 1; i < len && s[i] != ']'; i++) {
            if (s[i] == ':')
                colon = true;
            else if (!is_hex(s[i]) && s[i] != '.')
                return false;
        }
        if (i >= len || !colon)
            return false;
        i++;
    } else {
        for (; i < len && s[i] != ':'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '%') {
                if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                    return false;
                i += 2;
            } else if (!reg_name[c] || (c == '.' && i > 0 && s[i - 1] == '.')) {
                return false;
            }
        }
        if (i == 0)
            return false;
    }
    if (i == len)
        return true;
    if (s[i] != ':')
        return false;
    for (i++; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

pt_str pt_host_name(pt_str host)
{
    const char *colon = host.len ? memrchr(host.p, ':', host.len) : NULL;
    if (colon && (host.p[0] != '[' || colon > (const char *)memchr(host.p, ']', host.len)))
        host.len = (size_t)(colon - host.p);
    if (host.len && host.p[host.len - 1] == '.')
        host.len--;
    return host;
}
