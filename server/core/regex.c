/*
 * Regular expressions on PCRE2 (regex.h).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "server/core/regex.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pt_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    unsigned groups;
    bool icase;
    char pattern[]; /* as written */
};

pt_regex *pt_regex_new(const char *pattern, bool icase, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE at;
    size_t plen = strlen(pattern);
    pt_regex *re = calloc(1, sizeof *re + plen + 1);
    if (!re) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, icase ? PCRE2_CASELESS : 0,
                             &code, &at, NULL);
    if (!re->code) {
        PCRE2_UCHAR why[160];
        pcre2_get_error_message(code, why, sizeof why);
        snprintf(err, errlen, "%s at offset %zu", (const char *)why, (size_t)at);
        free(re);
        return NULL;
    }
    /* JIT where the platform has it; the interpreter otherwise (same results, slower). */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    memcpy(re->pattern, pattern, plen + 1);
    re->icase = icase;
    uint32_t groups = 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &groups);
    re->groups = groups;
    re->md = pcre2_match_data_create(PT_REGEX_CAPTURES, NULL);
    re->mctx = pcre2_match_context_create(NULL);
    if (!re->md || !re->mctx) {
        snprintf(err, errlen, "out of memory");
        pt_regex_free(re);
        return NULL;
    }
    pcre2_set_match_limit(re->mctx, PT_REGEX_MATCH_LIMIT);
    return re;
}

void pt_regex_free(pt_regex *re)
{
    if (!re)
        return;
    pcre2_match_context_free(re->mctx);
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    free(re);
}

const char *pt_regex_pattern(const pt_regex *re)
{
    return re->pattern;
}

bool pt_regex_icase(const pt_regex *re)
{
    return re->icase;
}

void pt_regex_set_limit(pt_regex *re, uint32_t limit)
{
    if (re && limit)
        pcre2_set_match_limit(re->mctx, limit);
}

int pt_regex_match(const pt_regex *re, const char *subject, size_t len, pt_captures *caps)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, 0, 0, re->md, re->mctx);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
        return -E2BIG;
    if (rc < 0)
        return -EINVAL;
    if (caps) {
        /* rc 0: more groups than the match data holds; it kept the first PT_REGEX_CAPTURES */
        uint32_t n = rc == 0 ? PT_REGEX_CAPTURES : (uint32_t)rc;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
        caps->subject = subject;
        caps->re = re;
        caps->n = n;
        for (uint32_t k = 0; k < 2 * n; k++)
            caps->ov[k] = ov[k] == PCRE2_UNSET ? UINT32_MAX : (uint32_t)ov[k];
    }
    return 1;
}

unsigned pt_regex_groups(const pt_regex *re)
{
    return re->groups;
}

int pt_regex_group_named(const pt_regex *re, pt_str name)
{
    char buf[128];
    if (name.len >= sizeof buf)
        return -1;
    memcpy(buf, name.p, name.len);
    buf[name.len] = '\0';
    int k = pcre2_substring_number_from_name(re->code, (PCRE2_SPTR)buf);
    return k > 0 ? k : -1;
}

void pt_regex_each_name(const pt_regex *re, void (*each)(void *ctx, const char *name), void *ctx)
{
    uint32_t count = 0, size = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &size);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &table);
    /* each entry: the group number in two bytes, then the name, NUL-terminated */
    for (uint32_t i = 0; i < count; i++)
        each(ctx, (const char *)table + (size_t)i * size + 2);
}

pt_str pt_captures_group(const pt_captures *caps, unsigned k)
{
    if (!caps || k >= caps->n || caps->ov[2 * k] == UINT32_MAX)
        return (pt_str){"", 0};
    return (pt_str){caps->subject + caps->ov[2 * k], caps->ov[2 * k + 1] - caps->ov[2 * k]};
}

pt_str pt_captures_named(const pt_captures *caps, pt_str name, bool *found)
{
    int k = caps && caps->re ? pt_regex_group_named(caps->re, name) : -1;
    *found = k > 0;
    return k > 0 ? pt_captures_group(caps, (unsigned)k) : (pt_str){"", 0};
}
