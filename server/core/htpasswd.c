/*
 * User files and password hashes (htpasswd.h).
 */
#include "server/core/htpasswd.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* A user file larger than this is refused: it is a mistake (a wrong path), not a user list. */
#define FILE_MAX (64u << 20)

/* The alphabet of crypt's hashes and salts (and of bcrypt's, in another order). */
static const char crypt64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static bool is_crypt64(char c)
{
    return c && strchr(crypt64, c) != NULL;
}

/* Whether the `n` bytes at `s` are all of crypt's alphabet. */
static bool all_crypt64(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_crypt64(s[i]))
            return false;
    return true;
}

/* ---- base64 ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long pt_base64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    size_t pad = 0;
    while (pad < 2 && len > 0 && s[len - 1] == '=') {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad && (len + pad) % 4 != 0))
        return -EINVAL;
    size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (n > cap)
        return -ENOSPC;
    uint32_t acc = 0;
    size_t k = 0, bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)k;
}

/* ---- MD5-crypt ---- */

/* Appends `n` characters of crypt's base64 of `v`, low bits first. */
static char *to64(char *p, uint32_t v, int n)
{
    while (n-- > 0) {
        *p++ = crypt64[v & 0x3f];
        v >>= 6;
    }
    return p;
}

/* One MD5 of the pieces given as (pointer, length) pairs, ended by NULL. */
static int md5_of(EVP_MD_CTX *ctx, const EVP_MD *md, unsigned char out[16], ...)
{
    va_list ap;
    va_start(ap, out);
    int ok = EVP_DigestInit_ex(ctx, md, NULL);
    for (const void *p; ok && (p = va_arg(ap, const void *)) != NULL;) {
        size_t n = va_arg(ap, size_t);
        ok = EVP_DigestUpdate(ctx, p, n);
    }
    va_end(ap);
    return ok && EVP_DigestFinal_ex(ctx, out, NULL) ? 0 : -EINVAL;
}

/* Poul-Henning Kamp's MD5-crypt; Apache's apr1 is the same with its own magic string. */
int pt_md5_crypt(const char *pw, size_t len, const char *magic, const char *salt, char *out,
                 size_t cap)
{
    size_t mlen = strlen(magic), slen = 0;
    while (slen < 8 && salt[slen] && salt[slen] != '$')
        slen++;
    if (cap < mlen + slen + 1 + 22 + 1)
        return -ENOSPC;
    /* fetched once for the thousand digests below: EVP_md5() would look it up at each */
    EVP_MD *md = EVP_MD_fetch(NULL, "MD5", NULL);
    EVP_MD_CTX *ctx = md ? EVP_MD_CTX_new() : NULL;
    if (!ctx) {
        EVP_MD_free(md);
        return -ENOMEM;
    }
    unsigned char alt[16], fin[16];
    int rc = md5_of(ctx, md, alt, pw, len, salt, slen, pw, len, NULL);
    if (rc == 0 && !EVP_DigestInit_ex(ctx, md, NULL))
        rc = -EINVAL;
    if (rc == 0) {
        int ok = EVP_DigestUpdate(ctx, pw, len) && EVP_DigestUpdate(ctx, magic, mlen) &&
                 EVP_DigestUpdate(ctx, salt, slen);
        for (size_t n = len; ok && n > 0; n -= n > 16 ? 16 : n)
            ok = EVP_DigestUpdate(ctx, alt, n > 16 ? 16 : n);
        /* one byte per bit of the length: a zero byte for a one bit, else the password's
         * first byte */
        static const unsigned char zero = 0;
        for (size_t i = len; ok && i; i >>= 1)
            ok = EVP_DigestUpdate(ctx, i & 1 ? (const void *)&zero : (const void *)pw, 1);
        if (!ok || !EVP_DigestFinal_ex(ctx, fin, NULL))
            rc = -EINVAL;
    }
    /* a thousand rounds, to slow guessing down (in 1994's terms) */
    for (int i = 0; rc == 0 && i < 1000; i++) {
        const void *first = i & 1 ? (const void *)pw : (const void *)fin;
        size_t first_len = i & 1 ? len : 16;
        const void *last = i & 1 ? (const void *)fin : (const void *)pw;
        size_t last_len = i & 1 ? 16 : len;
        unsigned char next[16];
        if (i % 3 && i % 7)
            rc = md5_of(ctx, md, next, first, first_len, salt, slen, pw, len, last, last_len, NULL);
        else if (i % 3)
            rc = md5_of(ctx, md, next, first, first_len, salt, slen, last, last_len, NULL);
        else if (i % 7)
            rc = md5_of(ctx, md, next, first, first_len, pw, len, last, last_len, NULL);
        else
            rc = md5_of(ctx, md, next, first, first_len, last, last_len, NULL);
        memcpy(fin, next, 16);
    }
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
    OPENSSL_cleanse(alt, sizeof alt);
    if (rc < 0) {
        OPENSSL_cleanse(fin, sizeof fin);
        return rc;
    }
    char *p = out;
    memcpy(p, magic, mlen);
    p += mlen;
    memcpy(p, salt, slen);
    p += slen;
    *p++ = '$';
    p = to64(p, (uint32_t)fin[0] << 16 | (uint32_t)fin[6] << 8 | fin[12], 4);
    p = to64(p, (uint32_t)fin[1] << 16 | (uint32_t)fin[7] << 8 | fin[13], 4);
    p = to64(p, (uint32_t)fin[2] << 16 | (uint32_t)fin[8] << 8 | fin[14], 4);
    p = to64(p, (uint32_t)fin[3] << 16 | (uint32_t)fin[9] << 8 | fin[15], 4);
    p = to64(p, (uint32_t)fin[4] << 16 | (uint32_t)fin[10] << 8 | fin[5], 4);
    p = to64(p, fin[11], 2);
    *p = '\0';
    OPENSSL_cleanse(fin, sizeof fin);
    return (int)(p - out);
}

/* ---- recognising a hash ---- */

/* "$MAGICsalt$hash" with a salt of at most 8 characters and a 22-character hash. */
static bool md5_shape(const char *h, size_t mlen)
{
    const char *salt = h + mlen, *d = strchr(salt, '$');
    return d && d - salt <= 8 && all_crypt64(salt, (size_t)(d - salt)) && strlen(d + 1) == 22 &&
           all_crypt64(d + 1, 22);
}

/* "$5$[rounds=N$]salt$hash" (SHA-crypt) with a salt of at most 16 characters and a hash of
 * `hlen` characters. */
static bool sha_crypt_shape(const char *h, size_t hlen)
{
    const char *p = h + 3;
    if (strncmp(p, "rounds=", 7) == 0) {
        p += 7;
        const char *digits = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == digits || p - digits > 9 || *p != '$')
            return false;
        p++;
    }
    const char *d = strchr(p, '$');
    return d && d - p <= 16 && all_crypt64(p, (size_t)(d - p)) && strlen(d + 1) == hlen &&
           all_crypt64(d + 1, hlen);
}

/* "$2b$NN$" and 53 characters: a cost of 04..31, a 22-character salt, a 31-character hash. */
static bool bcrypt_shape(const char *h)
{
    return strlen(h) == 60 && h[3] == '$' && h[4] >= '0' && h[4] <= '3' && h[5] >= '0' &&
           h[5] <= '9' && (h[4] - '0') * 10 + (h[5] - '0') >= 4 &&
           (h[4] - '0') * 10 + (h[5] - '0') <= 31 && h[6] == '$' && all_crypt64(h + 7, 53);
}

/* Another of libcrypt's methods: "$id$...$hash", which libcrypt counts current. */
static bool crypt_shape(const char *h)
{
    const char *last = strrchr(h, '$');
    return last && last > h + 1 && strchr(h + 1, '$') != last && last[1] &&
           all_crypt64(last + 1, strlen(last + 1)) && crypt_checksalt(h) == CRYPT_SALT_OK;
}

/* What the hash `h` is; NULL with *scheme set, or the reason it is refused. */
static const char *recognise(const char *h, pt_pw_scheme *scheme)
{
    size_t n = strlen(h);
    if (strncmp(h, "{PLAIN}", 7) == 0) {
        *scheme = PT_PW_PLAIN;
        return NULL;
    }
    if (strncmp(h, "{SHA}", 5) == 0) {
        *scheme = PT_PW_SHA;
        return NULL; /* its base64 is checked as it is decoded */
    }
    if (strncmp(h, "{SSHA}", 6) == 0) {
        *scheme = PT_PW_SSHA;
        return NULL;
    }
    if (strncmp(h, "$apr1$", 6) == 0) {
        *scheme = PT_PW_APR1;
        return md5_shape(h, 6) ? NULL : "malformed $apr1$ hash";
    }
    if (strncmp(h, "$1$", 3) == 0) {
        *scheme = PT_PW_MD5;
        return md5_shape(h, 3) ? NULL : "malformed $1$ (MD5-crypt) hash";
    }
    if (strncmp(h, "$5$", 3) == 0) {
        *scheme = PT_PW_SHA256;
        return sha_crypt_shape(h, 43) ? NULL : "malformed $5$ (SHA-256-crypt) hash";
    }
    if (strncmp(h, "$6$", 3) == 0) {
        *scheme = PT_PW_SHA512;
        return sha_crypt_shape(h, 86) ? NULL : "malformed $6$ (SHA-512-crypt) hash";
    }
    if (strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0) {
        *scheme = PT_PW_BCRYPT;
        return bcrypt_shape(h) ? NULL : "malformed bcrypt hash";
    }
    if (h[0] == '$') {
        *scheme = PT_PW_CRYPT;
        if (crypt_shape(h))
            return NULL;
        return crypt_checksalt(h) == CRYPT_SALT_METHOD_LEGACY
                   ? "a legacy hash method (use bcrypt: htpasswd -B)"
                   : "unknown or malformed password hash";
    }
    if ((n == 13 && all_crypt64(h, 13)) || (n == 20 && h[0] == '_' && all_crypt64(h + 1, 19)))
        return "traditional DES crypt is refused: only 8 characters of a password count and "
               "it falls to brute force (make the line anew with htpasswd -B)";
    return "unknown password hash (a password in plain text is written {PLAIN}password)";
}

/* ---- the table ---- */

static int by_name(const void *a, const void *b)
{
    const pt_htpasswd_user *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

static void table_free(pt_htpasswd *h)
{
    if (!h)
        return;
    if (h->text)
        OPENSSL_cleanse(h->text, h->text_len);
    free(h->text);
    free(h->raw);
    free(h->users);
    free(h->path);
    free(h);
}

__attribute__((format(printf, 5, 6))) static int fail(char *err, size_t errlen, const char *name,
                                                      unsigned line, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (err && errlen)
        snprintf(err, errlen, "%s:%u: %s", name, line, why);
    return -EINVAL;
}

/* Decodes the base64 of {SHA} or {SSHA} for `u` into h->raw at *used. */
static const char *decode_sha(pt_htpasswd *h, pt_htpasswd_user *u, size_t *used)
{
    size_t skip = u->scheme == PT_PW_SHA ? 5 : 6;
    long n = pt_base64_decode(u->hash + skip, u->hash_len - skip, h->raw + *used,
                              h->text_len + 1 - *used);
    if (n < 0)
        return u->scheme == PT_PW_SHA ? "malformed {SHA} hash (invalid base64)"
                                      : "malformed {SSHA} hash (invalid base64)";
    if (u->scheme == PT_PW_SHA && n != 20)
        return "malformed {SHA} hash (not a SHA-1 digest)";
    if (u->scheme == PT_PW_SSHA && n < 20)
        return "malformed {SSHA} hash (shorter than a SHA-1 digest)";
    u->raw = h->raw + *used;
    u->raw_len = (size_t)n;
    *used += (size_t)n;
    return NULL;
}

/* Reads line `line` of the file (`s`, NUL-terminated) into *u; returns 0, 1 for a line that
 * holds no user (empty, blank, a comment), or the error. */
static int read_line(pt_htpasswd *h, char *s, size_t len, unsigned line, pt_htpasswd_user *u,
                     size_t *used, char *err, size_t errlen)
{
    const char *name = h->path;
    if (memchr(s, '\0', len))
        return fail(err, errlen, name, line, "a NUL byte in the line");
    if (strspn(s, " \t") == len || s[0] == '#')
        return 1;
    char *colon = strchr(s, ':');
    if (!colon)
        return fail(err, errlen, name, line, "no ':' after the user name");
    if (colon == s)
        return fail(err, errlen, name, line, "no user name before ':'");
    char *hash = colon + 1, *more = strchr(hash, ':');
    if (more)
        *more = '\0'; /* what follows is a comment (htpasswd's third field) */
    *colon = '\0';
    if (!*hash)
        return fail(err, errlen, name, line, "no password hash after \"%s:\"", s);
    *u = (pt_htpasswd_user){
        .name = s,
        .name_len = (size_t)(colon - s),
        .hash = hash,
        .hash_len = strlen(hash),
        .line = line,
    };
    const char *why = recognise(hash, &u->scheme);
    if (!why && (u->scheme == PT_PW_SHA || u->scheme == PT_PW_SSHA))
        why = decode_sha(h, u, used);
    if (why)
        return fail(err, errlen, name, line, "user \"%s\": %s", s, why);
    return 0;
}

int pt_htpasswd_parse(pt_htpasswd **out, const char *name, const char *text, size_t len, char *err,
                      size_t errlen)
{
    *out = NULL;
    pt_htpasswd *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->refs = 1;
    h->path = strdup(name);
    h->text = malloc(len + 1);
    h->raw = malloc(len + 1); /* a decoded hash is shorter than its text */
    if (!h->path || !h->text || !h->raw) {
        table_free(h);
        return -ENOMEM;
    }
    memcpy(h->text, text, len);
    h->text[len] = '\0';
    h->text_len = len;
    size_t cap = 0, used = 0;
    unsigned line = 0;
    int rc = 0;
    for (char *p = h->text, *end = h->text + len; p < end && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end, *s = p;
        p = nl ? nl + 1 : end;
        line++;
        if (e > s && e[-1] == '\r')
            e--;
        *e = '\0';
        pt_htpasswd_user u;
        rc = read_line(h, s, (size_t)(e - s), line, &u, &used, err, errlen);
        if (rc != 0) {
            rc = rc > 0 ? 0 : rc;
            continue;
        }
        if (h->nusers == cap) {
            cap = cap ? 2 * cap : 16;
            pt_htpasswd_user *grown = realloc(h->users, cap * sizeof *grown);
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            h->users = grown;
        }
        h->users[h->nusers++] = u;
    }
    if (rc < 0) {
        table_free(h);
        return rc;
    }
    if (h->nusers)
        qsort(h->users, h->nusers, sizeof *h->users, by_name);
    /* a name written twice: the first line counts, as in nginx, which reads the file in order */
    size_t k = 0;
    for (size_t i = 0; i < h->nusers; i++)
        if (k == 0 || h->users[k - 1].name_len != h->users[i].name_len ||
            memcmp(h->users[k - 1].name, h->users[i].name, h->users[i].name_len) != 0)
            h->users[k++] = h->users[i];
    h->nusers = k;
    *out = h;
    return 0;
}

int pt_htpasswd_load(pt_htpasswd **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
    } else if ((uint64_t)st.st_size > FILE_MAX) {
        rc = -EFBIG;
    } else {
        size_t cap = (size_t)st.st_size + 1;
        buf = malloc(cap);
        if (!buf)
            rc = -ENOMEM;
        /* read to the end, whatever the size said (a file being written grows) */
        while (rc == 0) {
            if (len == cap) {
                rc = -EFBIG;
                break;
            }
            ssize_t n = read(fd, buf + len, cap - len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                rc = -errno;
            else if (n == 0)
                break;
            else
                len += (size_t)n;
        }
    }
    close(fd);
    if (rc < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path,
                     rc == -EINVAL  ? "not a regular file"
                     : rc == -EFBIG ? "the file changed size as it was read, or is too large"
                                    : strerror(-rc));
        if (buf)
            OPENSSL_cleanse(buf, len);
        free(buf);
        return rc;
    }
    rc = pt_htpasswd_parse(out, path, buf ? buf : "", len, err, errlen);
    if (buf)
        OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

pt_htpasswd *pt_htpasswd_ref(pt_htpasswd *h)
{
    if (h)
        h->refs++;
    return h;
}

void pt_htpasswd_unref(pt_htpasswd *h)
{
    if (h && --h->refs == 0)
        table_free(h);
}

const pt_htpasswd_user *pt_htpasswd_find(const pt_htpasswd *h, const char *name, size_t len)
{
    size_t lo = 0, hi = h->nusers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const pt_htpasswd_user *u = &h->users[mid];
        size_t n = u->name_len < len ? u->name_len : len;
        int c = memcmp(u->name, name, n);
        if (c == 0 && u->name_len != len)
            c = u->name_len < len ? -1 : 1;
        if (c == 0)
            return u;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- verifying ---- */

/* Whether the strings `a` and `b` (`n` bytes of `b`) are equal, in time that depends on
 * their lengths only. */
static bool same(const char *a, const char *b, size_t n)
{
    return strlen(a) == n && CRYPTO_memcmp(a, b, n) == 0;
}

static int verify_sha(const pt_htpasswd_user *u, const char *pw, size_t len)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, pw, len) &&
             (u->scheme == PT_PW_SHA || EVP_DigestUpdate(ctx, u->raw + 20, u->raw_len - 20)) &&
             EVP_DigestFinal_ex(ctx, d, &dlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || dlen != 20)
        return -EINVAL;
    int rc = CRYPTO_memcmp(d, u->raw, 20) == 0;
    OPENSSL_cleanse(d, sizeof d);
    return rc;
}

/* {PLAIN}: the two are compared as digests, so that the time says nothing of their lengths. */
static int verify_plain(const pt_htpasswd_user *u, const char *pw, size_t len)
{
    unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
    unsigned alen = 0, blen = 0;
    if (!EVP_Digest(pw, len, a, &alen, EVP_sha256(), NULL) ||
        !EVP_Digest(u->hash + 7, u->hash_len - 7, b, &blen, EVP_sha256(), NULL))
        return -EINVAL;
    int rc = CRYPTO_memcmp(a, b, alen) == 0;
    OPENSSL_cleanse(a, sizeof a);
    return rc;
}

static int verify_md5(const pt_htpasswd_user *u, const char *pw, size_t len)
{
    char out[64];
    bool apr1 = u->scheme == PT_PW_APR1;
    int n =
        pt_md5_crypt(pw, len, apr1 ? "$apr1$" : "$1$", u->hash + (apr1 ? 6 : 3), out, sizeof out);
    if (n < 0)
        return n;
    int rc = same(u->hash, out, (size_t)n);
    OPENSSL_cleanse(out, sizeof out);
    return rc;
}

static int verify_crypt(const pt_htpasswd_user *u, const char *pw, size_t len)
{
    if (len >= CRYPT_MAX_PASSPHRASE_SIZE)
        return 0; /* libcrypt takes no longer one: nothing stored can match it */
    /* crypt_r's state is 32 KiB and more: not for a thread's stack */
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return -ENOMEM;
    char phrase[CRYPT_MAX_PASSPHRASE_SIZE];
    memcpy(phrase, pw, len);
    phrase[len] = '\0';
    const char *got = crypt_r(phrase, u->hash, cd);
    /* libcrypt answers a hash it cannot use with NULL or a string starting with '*' */
    int rc = !got || got[0] == '*' ? -EINVAL : same(got, u->hash, u->hash_len);
    OPENSSL_cleanse(phrase, sizeof phrase);
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return rc;
}

int pt_htpasswd_verify(const pt_htpasswd_user *u, const char *pw, size_t len)
{
    if (memchr(pw, '\0', len))
        return 0;
    switch (u->scheme) {
    case PT_PW_PLAIN:
        return verify_plain(u, pw, len);
    case PT_PW_SHA:
    case PT_PW_SSHA:
        return verify_sha(u, pw, len);
    case PT_PW_APR1:
    case PT_PW_MD5:
        return verify_md5(u, pw, len);
    case PT_PW_SHA256:
    case PT_PW_SHA512:
    case PT_PW_BCRYPT:
    case PT_PW_CRYPT:
        return verify_crypt(u, pw, len);
    }
    return -EINVAL;
}

/* ---- credentials ---- */

int pt_htpasswd_credentials(pt_str value, char *buf, size_t cap, pt_str *user, pt_str *pass)
{
    const char *p = value.p, *end = value.p + value.len;
    if (value.len < 6 || strncasecmp(p, "Basic ", 6) != 0)
        return -EINVAL;
    p += 6;
    while (p < end && *p == ' ')
        p++;
    while (end > p && pt_ows(end[-1]))
        end--;
    if (p == end)
        return -EINVAL;
    long n = pt_base64_decode(p, (size_t)(end - p), (unsigned char *)buf, cap);
    if (n < 0)
        return -EINVAL;
    const char *colon = memchr(buf, ':', (size_t)n);
    if (!colon || colon == buf)
        return -EINVAL;
    *user = (pt_str){buf, (size_t)(colon - buf)};
    *pass = (pt_str){colon + 1, (size_t)(buf + n - colon - 1)};
    return 0;
}
