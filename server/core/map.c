/*
 * map's lookup (map.h).
 */
#include "server/core/map.h"

#include <string.h>
#include <strings.h>

int pt_map_key_cmp(pt_str value, const char *key)
{
    size_t klen = strlen(key), n = value.len < klen ? value.len : klen;
    for (size_t i = 0; i < n; i++) {
        int a = pt_ascii_lower((unsigned char)value.p[i]), b = (unsigned char)key[i];
        if (a != b)
            return a - b;
    }
    return value.len < klen ? -1 : value.len > klen;
}

bool pt_map_wildcard_matches(const char *key, pt_str value)
{
    size_t n = strlen(key);
    if (key[0] == '*') /* "*.example.com": a subdomain, not the domain itself */
        return value.len > n - 1 && strncasecmp(value.p + value.len - (n - 1), key + 1, n - 1) == 0;
    if (key[0] == '.') /* ".example.com": the domain and its subdomains */
        return (value.len == n - 1 && strncasecmp(value.p, key + 1, n - 1) == 0) ||
               (value.len > n && strncasecmp(value.p + value.len - n, key, n) == 0);
    /* "mail.*": the name's first labels */
    return value.len > n - 1 && strncasecmp(value.p, key, n - 1) == 0;
}

const pt_conf_map_entry *pt_map_find(const pt_conf_map *m, pt_str value, pt_captures *caps,
                                     bool *limit_hit)
{
    *limit_hit = false;
    size_t lo = 0, hi = m->nexact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = pt_map_key_cmp(value, m->exact[mid].key);
        if (c == 0)
            return &m->exact[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    for (size_t i = 0; i < m->nleading; i++)
        if (pt_map_wildcard_matches(m->leading[i].key, value))
            return &m->leading[i];
    for (size_t i = 0; i < m->ntrailing; i++)
        if (pt_map_wildcard_matches(m->trailing[i].key, value))
            return &m->trailing[i];
    /* nginx tries no regex on an empty value */
    for (size_t i = 0; value.len && i < m->nregex; i++) {
        int r = pt_regex_match(m->regex[i].re, value.p, value.len, caps);
        if (r == 1)
            return &m->regex[i];
        if (r < 0) {
            *limit_hit = true;
            return NULL;
        }
    }
    return NULL;
}
