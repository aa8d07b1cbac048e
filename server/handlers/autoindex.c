/*
 * Directory listings (`autoindex on;`), in nginx's two formats: an HTML page with names,
 * dates and sizes in columns, or a JSON array. Names are HTML- or JSON-escaped and their
 * links percent-encoded, so a file called `"><script>` is shown, not run.
 *
 * A listing is built in one heap buffer, copied into the out-queue and freed: it is not on
 * the path of a cached file, and its size depends on the directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/site/location.h"
#include "server/core/path.h"
#include "server/site/site.h"
#include "server/handlers/autoindex.h"

typedef struct entry {
    char *name;
    bool dir;
    off_t size;
    time_t mtime;
} entry;

typedef struct out {
    char *p;
    size_t len, cap;
    bool failed;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->failed = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(out *o, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void put_html(out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            puts_(o, "&amp;");
            break;
        case '<':
            puts_(o, "&lt;");
            break;
        case '>':
            puts_(o, "&gt;");
            break;
        case '"':
            puts_(o, "&quot;");
            break;
        case '\'':
            puts_(o, "&#39;");
            break;
        default:
            put(o, &s[i], 1);
        }
    }
}

static void put_json(out *o, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(o, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            putf(o, "\\u%04x", c);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
}

static void put_href(out *o, const char *name, bool dir)
{
    char enc[NAME_MAX * 3 + 2];
    ssize_t n = pt_path_encode(name, strlen(name), enc, sizeof enc);
    if (n > 0)
        put(o, enc, (size_t)n);
    if (dir)
        put(o, "/", 1);
}

static int by_kind_then_name(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->dir != y->dir)
        return x->dir ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The number of characters a UTF-8 name shows as (continuation bytes take no column). */
static size_t columns(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* nginx's short sizes: bytes below 1 KiB, then K, M, G rounded to the nearest. */
static void put_size(out *o, off_t size, bool exact)
{
    if (exact || size < 1024) {
        putf(o, "%20lld", (long long)size);
        return;
    }
    static const char scale[] = "KMGT";
    long long unit = 1024, s = (long long)size;
    int k = 0;
    while (k < 3 && s >= unit * 1024) {
        unit *= 1024;
        k++;
    }
    long long v = s / unit + (s % unit >= unit / 2);
    putf(o, "%19lld%c", v, scale[k]);
}

static void html(out *o, const entry *v, size_t n, const char *path, size_t len,
                 const pt_conf_files *f)
{
    puts_(o, "<html>\r\n<head><title>Index of ");
    put_html(o, path, len);
    puts_(o, "</title></head>\r\n<body>\r\n<h1>Index of ");
    put_html(o, path, len);
    puts_(o, "</h1><hr><pre>");
    if (len > 1)
        puts_(o, "<a href=\"../\">../</a>\r\n");
    for (size_t i = 0; i < n; i++) {
        puts_(o, "<a href=\"");
        put_href(o, v[i].name, v[i].dir);
        puts_(o, "\">");
        put_html(o, v[i].name, strlen(v[i].name));
        if (v[i].dir)
            put(o, "/", 1);
        puts_(o, "</a>");
        size_t w = columns(v[i].name) + v[i].dir;
        for (; w < 51; w++)
            put(o, " ", 1);
        put(o, " ", 1);
        struct tm tm;
        if (f->autoindex_localtime)
            localtime_r(&v[i].mtime, &tm);
        else
            gmtime_r(&v[i].mtime, &tm);
        char date[32];
        strftime(date, sizeof date, "%d-%b-%Y %H:%M", &tm);
        puts_(o, date);
        if (v[i].dir)
            puts_(o, "                   -");
        else
            put_size(o, v[i].size, f->autoindex_exact_size);
        puts_(o, "\r\n");
    }
    puts_(o, "</pre><hr></body>\r\n</html>\r\n");
}

static void json(out *o, const entry *v, size_t n)
{
    puts_(o, "[\n");
    for (size_t i = 0; i < n; i++) {
        char date[32];
        pt_http_date_format(v[i].mtime, date);
        puts_(o, "{ \"name\":\"");
        put_json(o, v[i].name);
        putf(o, "\", \"type\":\"%s\", \"mtime\":\"%s\"", v[i].dir ? "directory" : "file", date);
        if (!v[i].dir)
            putf(o, ", \"size\":%lld", (long long)v[i].size);
        puts_(o, i + 1 < n ? " },\n" : " }\n");
    }
    puts_(o, "]\n");
}

void pt_autoindex_respond(pt_request *req, int dirfd, const char *path, size_t len)
{
    const pt_conf_files *f = req->location->files;
    entry *v = NULL;
    size_t n = 0, cap = 0;
    out o = {0};
    bool failed = false;
    DIR *d = fdopendir(dirfd);
    if (!d) {
        pt_request_log(req, PT_LOG_ERROR, "fdopendir() failed (%s)", strerror(errno));
        close(dirfd);
        pt_route_error(req, 500);
        return;
    }
    struct dirent *de;
    while (!failed && (de = readdir(d))) {
        if (de->d_name[0] == '.') /* ".", "..", and hidden files, as nginx */
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, 0) < 0)
            continue; /* a dangling symlink, or gone meanwhile */
        if (n == cap) {
            size_t c = cap ? cap * 2 : 64;
            entry *nv = realloc(v, c * sizeof *v);
            if (!nv) {
                failed = true;
                break;
            }
            v = nv;
            cap = c;
        }
        v[n].name = strdup(de->d_name);
        if (!v[n].name) {
            failed = true;
            break;
        }
        v[n].dir = S_ISDIR(st.st_mode);
        v[n].size = st.st_size;
        v[n].mtime = st.st_mtime;
        n++;
    }
    closedir(d);
    if (!failed) {
        if (n)
            qsort(v, n, sizeof *v, by_kind_then_name);
        if (f->autoindex_format == PT_AUTOINDEX_JSON)
            json(&o, v, n);
        else
            html(&o, v, n, path, len, f);
        failed = o.failed;
    }
    if (failed) {
        pt_request_log(req, PT_LOG_CRIT, "out of memory listing a directory");
        pt_route_error(req, 500);
    } else {
        pt_response r;
        pt_response_init(&r, 200);
        r.content_type = f->autoindex_format == PT_AUTOINDEX_JSON
                             ? "application/json; charset=utf-8"
                             : "text/html; charset=utf-8";
        r.body = o.p;
        r.body_len = o.len;
        pt_request_respond(req, &r);
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    free(o.p);
}
