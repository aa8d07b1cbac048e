/*
 * Access-log formats (logfmt.h): escaping, compiling a format into pieces, writing a line.
 */
#include "server/core/logfmt.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/vars.h"

/* One piece of a format: a literal run (ref.id PT_VAR_TEXT, its bytes in ref.name) or a
 * variable. */
typedef struct piece {
    pt_var_ref ref;
    const char *header; /* $http_NAME: the header's name ('-' for '_'), NUL-terminated */
    size_t reserve;     /* bytes kept for the pieces after it when a line is too long: their
                           literal runs, and room for the values bounded() knows */
} piece;

struct pt_logfmt {
    pt_log_escape escape;
    size_t npieces;
    piece *pieces;
    char *text; /* the format's bytes, then the header names; the pieces point here */
};

/* ---- escaping ---- */

static const char hex[] = "0123456789abcdef";
static const char HEX[] = "0123456789ABCDEF";

/* The length of the well-formed UTF-8 sequence of two to four bytes at `s` (`n` bytes there),
 * or 0 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t k;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (n < k || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return k;
}

/* Whether byte `c` goes out as it is. */
static inline bool plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

size_t pt_logfmt_escape(pt_log_escape e, char *dst, size_t cap, const char *src, size_t len,
                        size_t *taken)
{
    size_t i = 0, o = 0;
    if (e == PT_LOG_ESCAPE_NONE) {
        i = len < cap ? len : cap;
        memcpy(dst, src, i);
        *taken = i;
        return i;
    }
    while (i < len) {
        size_t run = i;
        while (run < len && plain((unsigned char)src[run]))
            run++;
        if (run > i) {
            size_t n = run - i < cap - o ? run - i : cap - o;
            memcpy(dst + o, src + i, n);
            o += n;
            i += n;
            if (i < run)
                break;
            if (i == len)
                break;
        }
        const unsigned char c = (unsigned char)src[i];
        char esc[8];
        const char *out = esc;
        size_t n, adv = 1;
        if (e == PT_LOG_ESCAPE_DEFAULT) {
            esc[0] = '\\', esc[1] = 'x', esc[2] = HEX[c >> 4], esc[3] = HEX[c & 15];
            n = 4;
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            n = 2;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
            n = 2;
        } else if (c < 0x80) { /* the other control bytes, and DEL */
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            n = 6;
        } else if ((adv = utf8_len((const unsigned char *)src + i, len - i)) != 0) {
            out = src + i; /* a character: as it is */
            n = adv;
        } else { /* not UTF-8: the replacement character */
            out = "\\ufffd";
            n = 6;
            adv = 1;
        }
        if (n > cap - o)
            break;
        memcpy(dst + o, out, n);
        o += n;
        i += adv;
    }
    *taken = i;
    return o;
}

/* ---- compiling ---- */

/* The longest value of a variable whose values are short and known (numbers, times, flags),
 * kept free for it when a line is cut (JSON writes numbers without quotes: "s":$status); 0 for
 * the others (the client's strings), which take what is left. */
static size_t bounded(pt_var_id id)
{
    switch (id) {
    case PT_VAR_STATUS:
    case PT_VAR_HTTP2:
    case PT_VAR_PIPE:
        return 3;
    case PT_VAR_REMOTE_PORT:
    case PT_VAR_SERVER_PORT:
        return 5;
    case PT_VAR_SCHEME:
    case PT_VAR_SERVER_PROTOCOL:
    case PT_VAR_SSL_PROTOCOL:
        return 8;
    case PT_VAR_CONNECTION_REQUESTS:
        return 10;
    case PT_VAR_BYTES_SENT:
    case PT_VAR_BODY_BYTES_SENT:
    case PT_VAR_REQUEST_LENGTH:
    case PT_VAR_CONNECTION:
        return 20;
    case PT_VAR_MSEC:
    case PT_VAR_REQUEST_TIME:
        return 24;
    case PT_VAR_TIME_LOCAL:
    case PT_VAR_TIME_ISO8601:
        return 26;
    case PT_VAR_REMOTE_ADDR:
        return 46; /* INET6_ADDRSTRLEN */
    default:
        return 0;
    }
}

void pt_logfmt_free(pt_logfmt *f)
{
    if (!f)
        return;
    free(f->pieces);
    free(f->text);
    free(f);
}

int pt_logfmt_compile(pt_logfmt **out, const char *text, pt_log_escape e, char *why, size_t whylen,
                      size_t *at)
{
    return pt_logfmt_compile_with(out, text, e, NULL, why, whylen, at);
}

int pt_logfmt_compile_with(pt_logfmt **out, const char *text, pt_log_escape e,
                           const struct pt_conf_vars *vars, char *why, size_t whylen, size_t *at)
{
    *out = NULL;
    size_t len = strlen(text), npieces = 0, names = 0;
    /* First the references are checked and counted, then the pieces made. */
    for (const char *p = text; *p;) {
        if (*p != '$') {
            const char *d = strchr(p, '$');
            p = d ? d : p + strlen(p);
            npieces++;
            continue;
        }
        pt_var_ref r = pt_var_parse(p);
        pt_var_resolve(vars, &r);
        if (r.malformed) {
            *at = (size_t)(p - text);
            snprintf(why, whylen, "invalid variable name \"%.*s\"", (int)r.len, p);
            return -EINVAL;
        }
        if (!pt_var_allowed(PT_VARS_LOG, r.id)) {
            *at = (size_t)(p - text);
            snprintf(why, whylen, "unknown variable \"$%.*s\"", (int)r.name.len, r.name.p);
            return -EINVAL;
        }
        if (r.id == PT_VAR_HTTP_)
            names += r.name.len - 5 + 1;
        npieces++;
        p += r.len;
    }
    pt_logfmt *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->escape = e;
    f->pieces = calloc(npieces ? npieces : 1, sizeof *f->pieces);
    f->text = malloc(len + 1 + names);
    if (!f->pieces || !f->text) {
        pt_logfmt_free(f);
        return -ENOMEM;
    }
    memcpy(f->text, text, len + 1);
    char *name = f->text + len + 1;
    for (const char *p = f->text; *p;) {
        piece *pc = &f->pieces[f->npieces++];
        if (*p != '$') {
            const char *d = strchr(p, '$');
            size_t n = d ? (size_t)(d - p) : strlen(p);
            pc->ref = (pt_var_ref){.id = PT_VAR_TEXT, .name = {p, n}, .len = n};
            p += n;
            continue;
        }
        pc->ref = pt_var_parse(p);
        pt_var_resolve(vars, &pc->ref);
        if (pc->ref.id == PT_VAR_HTTP_) {
            /* $http_user_agent reads User-Agent */
            size_t n = pc->ref.name.len - 5;
            for (size_t i = 0; i < n; i++)
                name[i] = pc->ref.name.p[5 + i] == '_' ? '-' : pc->ref.name.p[5 + i];
            name[n] = '\0';
            pc->header = name;
            name += n + 1;
        }
        p += pc->ref.len;
    }
    size_t reserve = 0;
    for (size_t i = f->npieces; i-- > 0;) {
        f->pieces[i].reserve = reserve;
        reserve += f->pieces[i].ref.id == PT_VAR_TEXT ? f->pieces[i].ref.name.len
                                                      : bounded(f->pieces[i].ref.id);
    }
    *out = f;
    return 0;
}

static pt_logfmt *combined;

static void make_combined(void)
{
    char why[128];
    size_t at;
    if (pt_logfmt_compile(&combined, PT_LOG_COMBINED, PT_LOG_ESCAPE_DEFAULT, why, sizeof why, &at) <
        0) {
        fprintf(stderr, "porter: cannot make the combined log format: %s\n", why);
        abort();
    }
}

const pt_logfmt *pt_logfmt_combined(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_combined);
    return combined;
}

/* ---- a line ---- */

/* Appends the value `v` escaped to `buf` from *pos up to `end`. */
static void put(const pt_logfmt *f, char *buf, size_t *pos, size_t end, pt_str v)
{
    size_t taken;
    if (*pos < end)
        *pos += pt_logfmt_escape(f->escape, buf + *pos, end - *pos, v.p, v.len, &taken);
}

size_t pt_logfmt_line(const pt_logfmt *f, const pt_request *req, char *buf, size_t cap)
{
    size_t pos = 0;
    char scratch[PATH_MAX]; /* a file's name ($request_filename) fits whole */
    for (size_t i = 0; i < f->npieces; i++) {
        const piece *pc = &f->pieces[i];
        if (pc->ref.id == PT_VAR_TEXT) {
            size_t n = pc->ref.name.len < cap - pos ? pc->ref.name.len : cap - pos;
            memcpy(buf + pos, pc->ref.name.p, n);
            pos += n;
            continue;
        }
        /* What the value may take: the line, less the literal pieces still to come. */
        size_t end = pc->reserve < cap - pos ? cap - pc->reserve : pos, start = pos;
        if (pc->ref.id == PT_VAR_REQUEST) {
            /* In its three parts, so that a long target is not copied first. */
            char version[] = " HTTP/1.1";
            version[6] = (char)('0' + req->version_major % 10);
            version[8] = (char)('0' + req->version_minor % 10);
            put(f, buf, &pos, end, req->method);
            put(f, buf, &pos, end, PT_STR_LIT(" "));
            put(f, buf, &pos, end, req->target);
            put(f, buf, &pos, end, (pt_str){version, sizeof version - 1});
        } else if (pc->ref.id == PT_VAR_HTTP_) {
            const pt_header *h = pt_request_header(req, pc->header);
            if (h)
                put(f, buf, &pos, end, h->value);
        } else {
            put(f, buf, &pos, end, pt_var_value(req, &pc->ref, scratch, sizeof scratch));
        }
        if (pos == start && f->escape == PT_LOG_ESCAPE_DEFAULT && pos < end)
            buf[pos++] = '-'; /* an empty value, as nginx writes one that is not there */
    }
    return pos;
}
