#include "server/handlers/conditional.h"

#include <string.h>

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

bool pt_cond_etag_match(pt_str list, pt_str etag, bool weak)
{
    const char *p = list.p, *end = list.p + list.len;
    while (p < end && ows(*p))
        p++;
    while (end > p && ows(end[-1]))
        end--;
    if (end - p == 1 && *p == '*')
        return true;
    bool etag_weak = etag.len >= 2 && etag.p[0] == 'W' && etag.p[1] == '/';
    pt_str bare = etag_weak ? (pt_str){etag.p + 2, etag.len - 2} : etag;
    if (bare.len == 0 || (etag_weak && !weak))
        return false;
    while (p < end) {
        while (p < end && (ows(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        bool w = false;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            w = true;
            p += 2;
        }
        if (p == end || *p != '"')
            return false; /* malformed: nothing after it can be trusted */
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!q)
            return false;
        size_t n = (size_t)(q + 1 - p);
        if ((weak || !w) && n == bare.len && memcmp(p, bare.p, n) == 0)
            return true;
        p = q + 1;
    }
    return false;
}

static bool has(pt_str s)
{
    return s.p != NULL;
}

/* Parses an HTTP-date field; -1 if it is not one. */
static time_t date_of(pt_str s)
{
    return pt_http_date_parse(s.p, s.len);
}

int pt_cond_evaluate(const pt_cond_request *c, bool get_or_head, pt_str etag, time_t mtime,
                     time_t now)
{
    /* RFC 9110 section 13.2.2: 1. If-Match, else 2. If-Unmodified-Since */
    if (has(c->if_match)) {
        if (!pt_cond_etag_match(c->if_match, etag, false))
            return PT_COND_FAILED;
    } else if (has(c->if_unmodified_since)) {
        time_t t = date_of(c->if_unmodified_since);
        if (t != -1 && mtime > t)
            return PT_COND_FAILED;
    }
    /* 3. If-None-Match, else 4. If-Modified-Since (GET and HEAD only) */
    if (has(c->if_none_match)) {
        if (pt_cond_etag_match(c->if_none_match, etag, true))
            return get_or_head ? PT_COND_NOT_MODIFIED : PT_COND_FAILED;
    } else if (get_or_head && has(c->if_modified_since)) {
        time_t t = date_of(c->if_modified_since);
        if (t != -1 && t <= now && mtime <= t)
            return PT_COND_NOT_MODIFIED;
    }
    return PT_COND_PROCEED;
}

bool pt_cond_if_range(pt_str value, pt_str etag, time_t mtime)
{
    const char *p = value.p, *end = value.p + value.len;
    while (p < end && ows(*p))
        p++;
    if (p < end && (*p == '"' || (end - p >= 2 && p[0] == 'W' && p[1] == '/'))) {
        /* one entity tag, compared strongly */
        if (*p != '"' || etag.len == 0)
            return false;
        return (size_t)(end - p) == etag.len && memcmp(p, etag.p, etag.len) == 0;
    }
    time_t t = pt_http_date_parse(p, (size_t)(end - p));
    return t != -1 && t == mtime;
}
