/*
 * fuzz_htpasswd: user files against pt_htpasswd_parse, and Authorization values against
 * pt_htpasswd_credentials (server/core/htpasswd.h).
 *
 * The input is a user file. Parsed, it is checked against a second reading written here another
 * way (lines split first, then the fields): a file is refused exactly when a line holds a NUL
 * byte, or one that is not empty, blank or a comment has no ':', no name or no hash, or a hash of
 * no known shape, and the error names that line; an accepted file holds each name of those lines
 * once, found by lookup with the hash of its first line. The fast hashes are checked against
 * passwords ({PLAIN}'s own and another); the slow ones are never computed (their cost is the
 * input's). The input's first line is also read as an Authorization value, whose user and password
 * must be what a base64 decoder written here makes of it, split at the first ':'.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "server/core/htpasswd.h"
#include "tests/fuzz/fuzz.h"

#define NAME "users"

/* A line as the second reading splits it: the bytes before the first ':' and up to the next
 * ':' or the end (the line end and a CR before it cut off). */
typedef struct line {
    const char *s;
    size_t len;
    bool nul;  /* holds a NUL byte: refused, whatever else it is */
    bool skip; /* empty, blank or a comment */
    const char *name, *hash;
    size_t name_len, hash_len;
} line;

static size_t split(const char *text, size_t len, line *out, size_t max)
{
    size_t n = 0;
    for (const char *p = text, *end = text + len; p < end && n < max;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        line *l = &out[n++];
        memset(l, 0, sizeof *l);
        l->s = p;
        l->len = (size_t)(e - p);
        if (l->len && p[l->len - 1] == '\r')
            l->len--;
        p = nl ? nl + 1 : end;
        size_t blank = 0;
        while (blank < l->len && (l->s[blank] == ' ' || l->s[blank] == '\t'))
            blank++;
        l->nul = memchr(l->s, '\0', l->len) != NULL;
        l->skip = !l->nul && (blank == l->len || l->s[0] == '#');
        const char *colon = memchr(l->s, ':', l->len);
        if (colon) {
            l->name = l->s;
            l->name_len = (size_t)(colon - l->s);
            l->hash = colon + 1;
            const char *more = memchr(l->hash, ':', (size_t)(l->s + l->len - l->hash));
            l->hash_len = (size_t)((more ? more : l->s + l->len) - l->hash);
        }
    }
    return n;
}

static bool holds(const char *s, size_t n, char c)
{
    return memchr(s, c, n) != NULL;
}

/* Base64 the plain way: 4 characters at a time, '=' only at the end. */
static long reference_b64(const char *s, size_t len, unsigned char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t pad = 0;
    while (pad < 2 && len > 0 && s[len - 1] == '=') {
        len--;
        pad++;
    }
    if (pad && (len + pad) % 4)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned v[4] = {0, 0, 0, 0};
        size_t m = len - i < 4 ? len - i : 4;
        if (m == 1)
            return -1;
        for (size_t j = 0; j < m; j++) {
            const char *at = s[i + j] ? strchr(abc, s[i + j]) : NULL;
            if (!at)
                return -1;
            v[j] = (unsigned)(at - abc);
        }
        unsigned w = v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3];
        out[k++] = (unsigned char)(w >> 16);
        if (m > 2)
            out[k++] = (unsigned char)(w >> 8);
        if (m > 3)
            out[k++] = (unsigned char)w;
    }
    return (long)k;
}

static void check_credentials(const char *v, size_t len)
{
    const char *nl = memchr(v, '\n', len);
    if (nl)
        len = (size_t)(nl - v);
    char buf[PT_CREDENTIALS_MAX];
    pt_str user, pass;
    int rc = pt_htpasswd_credentials((pt_str){v, len}, buf, sizeof buf, &user, &pass);
    /* the reference: "Basic" in any case, spaces, base64 up to trailing blanks */
    bool ok = false;
    unsigned char ref[2048];
    long n = -1;
    if (len >= 6 && strncasecmp(v, "Basic ", 6) == 0) {
        size_t s = 6, e = len;
        while (s < e && v[s] == ' ')
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s)
            n = reference_b64(v + s, e - s, ref);
        const unsigned char *colon = n > 0 ? memchr(ref, ':', (size_t)n) : NULL;
        ok = n > 0 && (size_t)n <= sizeof buf && colon && colon != ref;
    }
    FUZZ_CHECK(ok == (rc == 0), "credentials: rc %d, the reference %s (decoded %ld)", rc,
               ok ? "accepts" : "refuses", n);
    if (rc != 0)
        return;
    FUZZ_CHECK(user.len > 0 && !holds(user.p, user.len, ':'), "user name of %zu bytes", user.len);
    FUZZ_CHECK(user.len + 1 + pass.len == (size_t)n && memcmp(user.p, ref, user.len) == 0 &&
                   memcmp(pass.p, ref + user.len + 1, pass.len) == 0,
               "credentials differ from the reference's");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    const char *text = (const char *)data;
    check_credentials(text, size);

    static line lines[64 * 1024];
    size_t nlines = split(text, size, lines, sizeof lines / sizeof *lines);
    pt_htpasswd *h = NULL;
    char err[1024] = "";
    int rc = pt_htpasswd_parse(&h, NAME, text, size, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL, "returned %d", rc);

    /* the first line the reference refuses for its fields (the hash's shape is porter's) */
    size_t first_bad = 0;
    for (size_t i = 0; i < nlines && !first_bad; i++) {
        const line *l = &lines[i];
        if (l->skip)
            continue;
        if (l->nul || !l->name || !l->name_len || !l->hash_len)
            first_bad = i + 1;
    }
    if (rc < 0) {
        FUZZ_CHECK(!h, "a table with an error");
        unsigned at = 0;
        FUZZ_CHECK(sscanf(err, NAME ":%u: ", &at) == 1 && at >= 1 && at <= nlines,
                   "error \"%s\" names no line of %zu", err, nlines);
        FUZZ_CHECK(!lines[at - 1].skip, "error \"%s\" on a line that holds no user", err);
        FUZZ_CHECK(!first_bad || at <= first_bad, "error \"%s\", but line %zu is the first bad",
                   err, first_bad);
        if (at < first_bad || !first_bad)
            FUZZ_CHECK(strstr(err, ": user \""), "error \"%s\" about a well-formed line", err);
        return 0;
    }
    FUZZ_CHECK(!first_bad, "line %zu is malformed, yet the file was accepted", first_bad);

    size_t users = 0;
    for (size_t i = 0; i < nlines; i++) {
        const line *l = &lines[i];
        if (l->skip)
            continue;
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            first = lines[j].skip || lines[j].name_len != l->name_len ||
                    memcmp(lines[j].name, l->name, l->name_len) != 0;
        const pt_htpasswd_user *u = pt_htpasswd_find(h, l->name, l->name_len);
        FUZZ_CHECK(u, "user of line %zu not found", i + 1);
        if (!first)
            continue;
        users++;
        FUZZ_CHECK(u->line == i + 1, "user of line %zu says line %u", i + 1, u->line);
        FUZZ_CHECK(u->hash_len == l->hash_len && memcmp(u->hash, l->hash, l->hash_len) == 0 &&
                       u->hash[u->hash_len] == '\0',
                   "hash of line %zu differs", i + 1);
        if (pt_pw_scheme_slow(u->scheme))
            continue; /* bcrypt at a cost of 31 would take days */
        int ok = pt_htpasswd_verify(u, "password", 8);
        FUZZ_CHECK(ok == 0 || ok == 1, "verify returned %d", ok);
        if (u->scheme == PT_PW_PLAIN) {
            FUZZ_CHECK(pt_htpasswd_verify(u, u->hash + 7, u->hash_len - 7) == 1,
                       "{PLAIN} does not match its own password");
            FUZZ_CHECK(ok == (u->hash_len == 15 && memcmp(u->hash + 7, "password", 8) == 0),
                       "{PLAIN} matched another password");
        }
    }
    FUZZ_CHECK(users == h->nusers, "%zu users, the reference %zu", h->nusers, users);
    for (size_t i = 1; i < h->nusers; i++) {
        const pt_htpasswd_user *a = &h->users[i - 1], *b = &h->users[i];
        size_t m = a->name_len < b->name_len ? a->name_len : b->name_len;
        int c = memcmp(a->name, b->name, m);
        FUZZ_CHECK(c < 0 || (c == 0 && a->name_len < b->name_len), "users out of order at %zu", i);
    }
    pt_htpasswd_unref(h);
    return 0;
}
