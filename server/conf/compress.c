/*
 * The compression module of the conf: compression on the fly (pt_conf_compress,
 * docs/compression.md). `gzip`, `brotli`, `zstd` and their `_comp_level`, `_types` and
 * `_min_length`; nginx's gzip_proxied, gzip_vary, gzip_disable and gzip_http_version, which
 * apply to every coding; compress_order and compress_cache. Each may stand at the top level, in a
 * server or in a location, and each level starts from its parent's (deep copies: the type lists
 * and gzip_disable's expressions are each level's own).
 *
 * The nginx directives porter cannot honour as nginx means them (gzip_static, gzip_buffers,
 * gzip_window, ...) are refused with what to write instead, so a conf brought from nginx never
 * means something else here in silence.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/regex.h"
#include "server/conf/directives.h"
#include "server/conf/mem.h"

/* The codings by the prefix of their directives, with their levels' range and default. */
static const struct coding {
    const char *name;
    pt_encoding e;
    int min, max, level;
} codings[] = {
    {"gzip", PT_ENC_GZIP, 1, 9, PT_CONF_GZIP_LEVEL},
    {"brotli", PT_ENC_BR, 0, 11, PT_CONF_BROTLI_LEVEL},
    {"zstd", PT_ENC_ZSTD, 1, 19, PT_CONF_ZSTD_LEVEL},
};

#define NCODINGS (sizeof codings / sizeof *codings)

/* The coding a directive such as "brotli_comp_level" is about. */
static const struct coding *coding_of(const char *directive)
{
    for (size_t i = 0; i < NCODINGS; i++) {
        size_t n = strlen(codings[i].name);
        if (strncmp(directive, codings[i].name, n) == 0 && directive[n] == '_')
            return &codings[i];
    }
    return NULL;
}

/* The settings that hold `field`, a row's field: a coding's `types`, or `disable`. */
static pt_conf_coding *coding_holding(char ***types)
{
    return (pt_conf_coding *)(void *)((char *)types - offsetof(pt_conf_coding, types));
}

static pt_conf_compress *compress_holding(pt_regex ***disable)
{
    return (pt_conf_compress *)(void *)((char *)disable - offsetof(pt_conf_compress, disable));
}

/* ---- setters ---- */

/* `gzip_comp_level N;`, `brotli_comp_level N;`, `zstd_comp_level N;` */
static int set_level(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    const struct coding *k = coding_of(d->w[0].s);
    uint64_t n;
    if (pt_conf_parse_uint(arg1(d), (uint64_t)k->max, &n) < 0 || n < (uint64_t)k->min)
        return pt_conf_bad(cx, d, 1, "invalid value \"%s\" in \"%s\", it must be %d..%d", arg1(d),
                           d->w[0].s, k->min, k->max);
    *(int *)field = (int)n;
    return 0;
}

/* `gzip_min_length SIZE;` and its siblings: a size, never "off". */
static int set_min_length(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    if (pt_parse_size(arg1(d), field) < 0)
        return pt_conf_bad(cx, d, 1, "invalid size \"%s\" in \"%s\"", arg1(d), d->w[0].s);
    return 0;
}

/* Word `i` of `d` as a media type: TOKEN/TOKEN, no parameters, no wildcard. */
static int check_type(pt_conf_loader *cx, const pt_conf_node *d, size_t i)
{
    const char *t = d->w[i].s;
    if (strchr(t, ';'))
        return pt_conf_bad(cx, d, i,
                           "parameters are not allowed in \"%s\" of \"%s\", write the media type "
                           "alone",
                           t, d->w[0].s);
    const char *slash = strchr(t, '/');
    char *top = xstrndup(t, slash ? (size_t)(slash - t) : strlen(t));
    bool ok = slash && pt_conf_is_token(top) && pt_conf_is_token(slash + 1);
    free(top);
    if (!ok)
        return pt_conf_bad(cx, d, i, "invalid media type \"%s\" in \"%s\", it must be TYPE/SUBTYPE",
                           t, d->w[0].s);
    if (strchr(t, '*'))
        return pt_conf_bad(cx, d, i,
                           "invalid media type \"%s\" in \"%s\", only \"*\" alone stands for "
                           "any type",
                           t, d->w[0].s);
    return 0;
}

/* `gzip_types TYPE ...;` and its siblings: the level's list replaces the inherited one;
 * text/html is always in it (nginx's rule); `*` alone: any type. */
static int set_types(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_coding *k = coding_holding(field);
    for (size_t i = 1; i < d->nw; i++) {
        int rc;
        if (strcmp(d->w[i].s, "*") == 0) {
            if (d->nw > 2)
                return pt_conf_bad(cx, d, i, "\"*\" cannot go with other types in \"%s\"",
                                   d->w[0].s);
        } else if ((rc = check_type(cx, d, i)) < 0) {
            return rc;
        }
    }
    pt_conf_compress_types_default(k);
    if (strcmp(arg1(d), "*") == 0) {
        k->any_type = true;
        return 0;
    }
    for (size_t i = 1; i < d->nw; i++) {
        char *t = xstrdup(d->w[i].s);
        for (char *p = t; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        size_t j = 0;
        while (j < k->ntypes && strcmp(k->types[j], t) != 0)
            j++;
        if (j < k->ntypes)
            free(t);
        else
            *PUSH(k->types, k->ntypes) = t;
    }
    return 0;
}

/* `gzip_proxied off | expired | no-cache | no-store | private | no_last_modified | no_etag |
 * auth | any ...;` */
static int set_proxied(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    static const struct {
        const char *word;
        unsigned flag;
    } words[] = {
        {"off", 0},
        {"expired", PT_PROXIED_EXPIRED},
        {"no-cache", PT_PROXIED_NO_CACHE},
        {"no-store", PT_PROXIED_NO_STORE},
        {"private", PT_PROXIED_PRIVATE},
        {"no_last_modified", PT_PROXIED_NO_LAST_MODIFIED},
        {"no_etag", PT_PROXIED_NO_ETAG},
        {"auth", PT_PROXIED_AUTH},
        {"any", PT_PROXIED_ANY},
    };
    unsigned set = 0;
    for (size_t i = 1; i < d->nw; i++) {
        size_t k = 0;
        while (k < sizeof words / sizeof *words && strcmp(words[k].word, d->w[i].s) != 0)
            k++;
        if (k == sizeof words / sizeof *words)
            return pt_conf_bad(cx, d, i, "invalid value \"%s\" in \"gzip_proxied\"", d->w[i].s);
        if (!words[k].flag && d->nw > 2)
            return pt_conf_bad(cx, d, i, "\"off\" cannot go with other values in \"gzip_proxied\"");
        set |= words[k].flag;
    }
    *(unsigned *)field = set;
    return 0;
}

/* `gzip_disable REGEX | msie6 ...;`: User-Agent patterns; the lines of one level add up, and a
 * level with any replaces the inherited ones. */
static int set_disable(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_compress *c = compress_holding(field);
    if (cx->first)
        pt_conf_compress_disable_clear(c);
    for (size_t i = 1; i < d->nw; i++) {
        const char *p = d->w[i].s;
        char why[128];
        if (strcmp(p, "msie6") == 0) {
            c->disable_msie6 = true;
            continue;
        }
        /* nginx's degradation module, which porter does not have; as a pattern it would
         * match a User-Agent holding the word */
        if (strcmp(p, "degradation") == 0)
            return pt_conf_bad(cx, d, i,
                               "\"gzip_disable degradation\" is not supported (nginx's "
                               "degradation module)");
        if (!p[0])
            return pt_conf_bad(cx, d, i, "empty regular expression in \"gzip_disable\"");
        if (pt_conf_compress_disable_add(c, p, why, sizeof why) != 0)
            return pt_conf_bad(cx, d, i,
                               "invalid regular expression \"%s\" in \"gzip_disable\": %s", p, why);
    }
    return 0;
}

/* `gzip_http_version 1.0 | 1.1;` */
static int set_http_version(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    int *v = field;
    if (strcmp(arg1(d), "1.0") == 0)
        *v = 10;
    else if (strcmp(arg1(d), "1.1") == 0)
        *v = 11;
    else
        return pt_conf_bad(cx, d, 1,
                           "invalid value \"%s\" in \"gzip_http_version\", it must be \"1.0\" or "
                           "\"1.1\"",
                           arg1(d));
    return 0;
}

/* `compress_order CODING ...;`: each of zstd, br and gzip once. */
static int set_order(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_encoding_order o = {{PT_ENC_IDENTITY}};
    size_t n = 0;
    for (size_t i = 1; i < d->nw; i++) {
        const char *w = d->w[i].s;
        pt_encoding e = pt_encoding_from_name(w, strlen(w));
        if (e == PT_ENC_IDENTITY)
            return pt_conf_bad(cx, d, i,
                               "unknown coding \"%s\" in \"compress_order\", it must be \"zstd\", "
                               "\"br\" or \"gzip\"",
                               w);
        for (size_t k = 0; k < n; k++)
            if (o.e[k] == e)
                return pt_conf_bad(cx, d, i, "coding \"%s\" is named twice in \"compress_order\"",
                                   w);
        o.e[n++] = e;
    }
    for (int e = PT_ENC_BR; e < PT_ENC_COUNT; e++) {
        size_t k = 0;
        while (k < n && o.e[k] != (pt_encoding)e)
            k++;
        if (k == n)
            return pt_conf_bad(cx, d, 0,
                               "\"compress_order\" must name each of \"zstd\", \"br\" and "
                               "\"gzip\" once, \"%s\" is missing",
                               pt_encoding_name((pt_encoding)e));
    }
    *(pt_encoding_order *)field = o;
    return 0;
}

/* nginx's directives porter cannot honour as written, and what to write instead. */
#define PRECOMPRESSED                                                                              \
    "use \"precompressed on\": it serves FILE.br, FILE.zst or FILE.gz by the client's "            \
    "Accept-Encoding"
#define BUFFERS "porter sizes its compression buffers itself: remove the directive"
#define WINDOW(level)                                                                              \
    "porter chooses the window itself: set how hard it compresses with \"" level "\""

static const struct refusal {
    const char *name;
    const char *instead;
} refusals[] = {
    {"gzip_static", PRECOMPRESSED},
    {"brotli_static", PRECOMPRESSED},
    {"zstd_static", PRECOMPRESSED},
    {"gzip_buffers", BUFFERS},
    {"brotli_buffers", BUFFERS},
    {"zstd_buffers", BUFFERS},
    {"gzip_window", WINDOW("gzip_comp_level")},
    {"gzip_hash", "porter chooses the memory it compresses with itself: set how hard it "
                  "compresses with \"gzip_comp_level\""},
    {"brotli_window", WINDOW("brotli_comp_level")},
};

static int set_refused(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    size_t i = 0;
    while (strcmp(refusals[i].name, d->w[0].s) != 0)
        i++;
    return pt_conf_bad(cx, d, 0, "\"%s\" is not supported, %s", d->w[0].s, refusals[i].instead);
}

#define CODING(e, f) ALL(compress.coding[e].f)
#define COMPRESS(f) ALL(compress.f)

static const pt_conf_directive directives[] = {
    {"gzip", C_ALL, 0, 1, 1, pt_conf_set_flag, CODING(PT_ENC_GZIP, on)},
    {"brotli", C_ALL, 0, 1, 1, pt_conf_set_flag, CODING(PT_ENC_BR, on)},
    {"zstd", C_ALL, 0, 1, 1, pt_conf_set_flag, CODING(PT_ENC_ZSTD, on)},
    {"gzip_comp_level", C_ALL, 0, 1, 1, set_level, CODING(PT_ENC_GZIP, level)},
    {"brotli_comp_level", C_ALL, 0, 1, 1, set_level, CODING(PT_ENC_BR, level)},
    {"zstd_comp_level", C_ALL, 0, 1, 1, set_level, CODING(PT_ENC_ZSTD, level)},
    {"gzip_types", C_ALL, 0, 1, -1, set_types, CODING(PT_ENC_GZIP, types)},
    {"brotli_types", C_ALL, 0, 1, -1, set_types, CODING(PT_ENC_BR, types)},
    {"zstd_types", C_ALL, 0, 1, -1, set_types, CODING(PT_ENC_ZSTD, types)},
    {"gzip_min_length", C_ALL, 0, 1, 1, set_min_length, CODING(PT_ENC_GZIP, min_length)},
    {"brotli_min_length", C_ALL, 0, 1, 1, set_min_length, CODING(PT_ENC_BR, min_length)},
    {"zstd_min_length", C_ALL, 0, 1, 1, set_min_length, CODING(PT_ENC_ZSTD, min_length)},
    {"gzip_proxied", C_ALL, 0, 1, -1, set_proxied, COMPRESS(proxied)},
    {"gzip_vary", C_ALL, 0, 1, 1, pt_conf_set_flag, COMPRESS(vary)},
    {"gzip_disable", C_ALL, F_MULTI, 1, -1, set_disable, COMPRESS(disable)},
    {"gzip_http_version", C_ALL, 0, 1, 1, set_http_version, COMPRESS(http_version)},
    {"compress_order", C_ALL, 0, 1, -1, set_order, COMPRESS(order)},
    {"compress_cache", C_ALL, 0, 1, 1, pt_conf_set_flag, COMPRESS(cache)},

    /* refused, with what to write instead */
    {"gzip_static", C_ALL, 0, 0, -1, set_refused, NOWHERE},
    {"brotli_static", C_ALL, 0, 0, -1, set_refused, NOWHERE},
    {"zstd_static", C_ALL, 0, 0, -1, set_refused, NOWHERE},
    {"gzip_buffers", C_ALL, 0, 0, -1, set_refused, NOWHERE},
    {"brotli_buffers", C_ALL, 0, 0, -1, set_refused, NOWHERE},
    {"zstd_buffers", C_ALL, 0, 0, -1, set_refused, NOWHERE},
    {"gzip_window", C_ALL, 0, 0, -1, set_refused, NOWHERE},
    {"gzip_hash", C_ALL, 0, 0, -1, set_refused, NOWHERE},
    {"brotli_window", C_ALL, 0, 0, -1, set_refused, NOWHERE},
};

const pt_conf_module pt_conf_compress_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
};
