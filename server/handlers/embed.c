/*
 * The embedding API over the request core (see embed.h and include/porter.h): request
 * accessors, pt_reply responses, and the handler routes (with the listening addresses an
 * embedder added, which the server keeps here).
 *
 * Routes are kept sorted by how specific they are (exact paths first, then prefixes longest
 * first, registration order among equals), so routing is one scan that stops at the first
 * route whose path and method match. Paths are compared after pt_path_normalize(), the same
 * decoding and normalisation static files get, so "/api/../admin" never reaches "/api/".
 */
#include "server/handlers/embed.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listener/sized.h"
#include "server/core/path.h"
#include "server/site/site.h"

/* Bytes of header lines (content type included) a pt_reply may add: the response head is
 * built in an 8 KiB buffer, whose other lines take well under 2 KiB. */
#define REPLY_HEADERS_MAX (6 * 1024)

/* The most distinct methods a 405's Allow header lists. */
#define ALLOW_MAX 16

typedef struct route {
    char *method; /* NULL: every method */
    char *path;   /* normalised */
    size_t path_len;
    pt_path_match match;
    pt_handler_cb cb;
    void *data;
} route;

struct pt_embed {
    route *routes;
    size_t nroutes, cap;
    pt_conf_listen **listens; /* added by pt_server_listen; sites point at them */
    size_t nlistens;
};

void pt_embed_free(pt_embed *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nroutes; i++) {
        free(e->routes[i].method);
        free(e->routes[i].path);
    }
    free(e->routes);
    while (e->nlistens)
        pt_embed_drop_listen(e);
    free(e->listens);
    free(e);
}

/* ---- strings ---- */

static bool is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr(extra, c));
}

static bool is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* A field value may hold tabs, visible ASCII and obs-text, nothing that ends or splits a line. */
static bool is_field_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static pt_slice slice(pt_str s)
{
    return (pt_slice){s.p ? s.p : "", s.len};
}

bool pt_slice_eq(pt_slice s, const char *str)
{
    size_t n = strlen(str);
    return s.ptr && s.len == n && memcmp(s.ptr, str, n) == 0;
}

bool pt_slice_ieq(pt_slice s, const char *str)
{
    return s.ptr && pt_str_ieq((pt_str){s.ptr, s.len}, str);
}

/* ---- request accessors ---- */

pt_server *pt_request_server(const pt_request *req)
{
    return req->vhost->server;
}

pt_slice pt_request_method(const pt_request *req)
{
    return slice(req->method);
}

pt_slice pt_request_target(const pt_request *req)
{
    return slice(req->target);
}

pt_slice pt_request_path(const pt_request *req)
{
    return slice(req->path);
}

pt_slice pt_request_query(const pt_request *req)
{
    return slice(req->query);
}

pt_slice pt_request_host(const pt_request *req)
{
    return slice(req->host);
}

int pt_request_version(const pt_request *req)
{
    return req->version_major * 10 + req->version_minor;
}

ssize_t pt_request_decoded_path(const pt_request *req, char *out, size_t cap)
{
    return pt_path_normalize(req->path.p, req->path.len, out, cap);
}

pt_slice pt_request_header_value(const pt_request *req, const char *name)
{
    const pt_header *h = pt_request_header(req, name);
    return h ? slice(h->value) : (pt_slice){NULL, 0};
}

size_t pt_request_header_count(const pt_request *req)
{
    return req->nheaders;
}

bool pt_request_header_at(const pt_request *req, size_t i, pt_slice *name, pt_slice *value)
{
    if (i >= req->nheaders)
        return false;
    if (name)
        *name = slice(req->headers[i].name);
    if (value)
        *value = slice(req->headers[i].value);
    return true;
}

int64_t pt_request_content_length(const pt_request *req)
{
    return req->has_length ? (int64_t)req->content_length : -1;
}

bool pt_request_has_body(const pt_request *req)
{
    return req->has_length || req->chunked;
}

/* ---- responses ---- */

void pt_reply_init_sized(pt_reply *r, size_t size, int status)
{
    pt_reply d = {
        .size = sizeof d, .status = status, .file_fd = -1, .file_length = -1, .stream_length = -1};
    pt_sized_init(r, size, &d, sizeof d);
}

/* Formats the reply's header fields as "Name: value\r\n" lines into `buf`. Returns the length,
 * -EINVAL for a bad or reserved field, or -E2BIG when they do not fit. */
static ssize_t format_fields(const pt_reply *r, char *buf, size_t cap)
{
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection"};
    if (r->nheaders && !r->headers)
        return -EINVAL;
    size_t pos = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const pt_field *f = &r->headers[i];
        if (!is_token(f->name) || !f->value || !is_field_value(f->value))
            return -EINVAL;
        pt_str name = {f->name, strlen(f->name)};
        for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++)
            if (pt_str_ieq(name, reserved[k]))
                return -EINVAL; /* the framing is porter's to decide */
        pos = pt_append(buf, pos, cap, f->name, name.len);
        pos = pt_append(buf, pos, cap, ": ", 2);
        pos = pt_append(buf, pos, cap, f->value, strlen(f->value));
        pos = pt_append(buf, pos, cap, "\r\n", 2);
    }
    return pos > cap ? -E2BIG : (ssize_t)pos;
}

/* Checks the body of `r` and fills the body fields of `out`. */
static int reply_body(const pt_reply *r, pt_response *out)
{
    int sources = (r->body_len > 0) + (r->file_fd >= 0) + r->stream;
    if (sources > 1 || (r->body_len && !r->body))
        return -EINVAL;
    if (r->stream) {
        if (r->status == 204 || r->status == 304)
            return -EINVAL; /* no body may follow their head */
        out->stream = true;
        out->stream_length = r->stream_length < 0 ? -1 : r->stream_length;
        return 0;
    }
    if (r->file_fd < 0) {
        out->body = r->body;
        out->body_len = r->body_len;
        return 0;
    }
    struct stat st;
    if (fstat(r->file_fd, &st) < 0 || !S_ISREG(st.st_mode) || r->file_offset < 0 ||
        r->file_offset > st.st_size)
        return -EINVAL;
    int64_t len = r->file_length < 0 ? st.st_size - r->file_offset : r->file_length;
    if (len > st.st_size - r->file_offset)
        return -EINVAL;
    out->file_fd = r->file_fd;
    out->file_off = (off_t)r->file_offset;
    out->body_len = (size_t)len;
    return 0;
}

int pt_respond_with(pt_request *req, const pt_reply *reply)
{
    pt_reply copy;
    pt_reply_init(&copy, 0);
    if (pt_sized_copy(&copy, sizeof copy, reply) < 0) {
        /* The file is taken whatever happens, when the struct the program has says which. */
        if (reply->size >= offsetof(pt_reply, file_fd) + sizeof reply->file_fd &&
            reply->size <= PT_SIZED_MAX && reply->file_fd >= 0)
            close(reply->file_fd);
        return -EINVAL;
    }
    const pt_reply *r = &copy;
    char lines[REPLY_HEADERS_MAX];
    size_t type_len = r->content_type ? strlen(r->content_type) : 0;
    ssize_t n = 0;
    pt_response resp;
    pt_response_init(&resp, r->status);
    int e = 0;
    if (r->status < 200 || r->status > 599 || (r->content_type && !is_field_value(r->content_type)))
        e = -EINVAL;
    else if (type_len > sizeof lines)
        e = -E2BIG;
    else if ((n = format_fields(r, lines, sizeof lines - type_len)) < 0)
        e = (int)n;
    else
        e = reply_body(r, &resp);
    if (e < 0) {
        if (r->file_fd >= 0)
            close(r->file_fd); /* taken, whatever happens */
        return e;
    }
    resp.content_type = r->content_type;
    resp.extra_headers = (pt_str){lines, (size_t)n};
    resp.last_modified = r->last_modified;
    resp.close = r->close;
    return pt_request_respond(req, &resp);
}

int pt_respond(pt_request *req, int status, const char *content_type, const void *body, size_t len)
{
    pt_reply r;
    pt_reply_init(&r, status);
    r.content_type = content_type;
    r.body = body;
    r.body_len = len;
    return pt_respond_with(req, &r);
}

int pt_respond_file(pt_request *req, int status, const char *content_type, int fd, int64_t offset,
                    int64_t length)
{
    pt_reply r;
    pt_reply_init(&r, status);
    r.content_type = content_type;
    r.file_fd = fd;
    r.file_offset = offset;
    r.file_length = length;
    return pt_respond_with(req, &r);
}

int pt_respond_stream(pt_request *req, int status, const char *content_type, int64_t length)
{
    pt_reply r;
    pt_reply_init(&r, status);
    r.content_type = content_type;
    r.stream = true;
    r.stream_length = length;
    return pt_respond_with(req, &r);
}

int pt_respond_error(pt_request *req, int status)
{
    if (status < 200 || status > 599)
        return -EINVAL;
    return pt_request_respond_error(req, status);
}

/* ---- routes ---- */

pt_embed *pt_embed_new(void)
{
    return calloc(1, sizeof(pt_embed));
}

int pt_embed_add_route(pt_embed *e, const char *method, const char *path, pt_path_match match,
                       pt_handler_cb cb, void *data)
{
    char norm[PATH_MAX];
    if (!cb || !path || path[0] != '/' || (method && !is_token(method)) ||
        (match != PT_PATH_EXACT && match != PT_PATH_PREFIX))
        return -EINVAL;
    ssize_t n = pt_path_normalize(path, strlen(path), norm, sizeof norm);
    if (n < 0)
        return -EINVAL;
    if (e->nroutes == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 8;
        route *routes = realloc(e->routes, cap * sizeof *routes);
        if (!routes)
            return -ENOMEM;
        e->routes = routes;
        e->cap = cap;
    }
    route r = {
        .method = method ? strdup(method) : NULL,
        .path = strndup(norm, (size_t)n),
        .path_len = (size_t)n,
        .match = match,
        .cb = cb,
        .data = data,
    };
    if (!r.path || (method && !r.method)) {
        free(r.method);
        free(r.path);
        return -ENOMEM;
    }
    /* After the routes at least as specific: exact ones, then longer or equal prefixes. */
    size_t at = 0;
    while (at < e->nroutes && (e->routes[at].match == PT_PATH_EXACT ||
                               (match == PT_PATH_PREFIX && e->routes[at].path_len >= r.path_len)))
        at++;
    memmove(&e->routes[at + 1], &e->routes[at], (e->nroutes - at) * sizeof *e->routes);
    e->routes[at] = r;
    e->nroutes++;
    return 0;
}

static bool path_matches(const route *r, const char *path, size_t len)
{
    if (r->match == PT_PATH_EXACT)
        return len == r->path_len && memcmp(path, r->path, len) == 0;
    return len >= r->path_len && memcmp(path, r->path, r->path_len) == 0;
}

static bool method_matches(const char *method, pt_str m)
{
    if (!method)
        return true;
    size_t n = strlen(method);
    if (m.len == n && memcmp(m.p, method, n) == 0)
        return true;
    return strcmp(method, "GET") == 0 && m.len == 4 && memcmp(m.p, "HEAD", 4) == 0;
}

/* Answers 405 listing the methods of the routes that match the path. */
static void method_not_allowed(pt_request *req, const pt_embed *e, const char *path, size_t len)
{
    const char *methods[ALLOW_MAX];
    size_t n = 0;
    bool get = false, head = false;
    for (size_t i = 0; i < e->nroutes && n < ALLOW_MAX - 1; i++) {
        const char *m = e->routes[i].method;
        if (!path_matches(&e->routes[i], path, len))
            continue;
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++)
            seen = strcmp(methods[k], m) == 0;
        if (!seen)
            methods[n++] = m;
        get |= strcmp(m, "GET") == 0;
        head |= strcmp(m, "HEAD") == 0;
    }
    if (get && !head)
        methods[n++] = "HEAD";
    char allow[512];
    size_t pos = 0;
    for (size_t k = 0; k < n; k++) {
        int w = snprintf(allow + pos, sizeof allow - pos, "%s%s", k ? ", " : "", methods[k]);
        if (w < 0 || (size_t)w >= sizeof allow - pos)
            break;
        pos += (size_t)w;
    }
    allow[pos] = '\0';
    char page[PT_STATUS_PAGE_MAX];
    pt_response r;
    pt_response_init(&r, 405);
    r.content_type = "text/html";
    r.body = page;
    r.body_len = pt_http_status_page(405, page, sizeof page);
    r.allow = allow;
    pt_request_respond(req, &r);
}

bool pt_embed_route(const pt_embed *e, pt_request *req)
{
    /* A conf's server-level `return` answers first, as it does before any location. */
    if (!e || e->nroutes == 0 || req->vhost->conf->ret.code)
        return false;
    char norm[PATH_MAX];
    ssize_t n = pt_path_normalize(req->path.p, req->path.len, norm, sizeof norm);
    if (n < 0)
        return false; /* the router answers 400 or 414 */
    bool path_seen = false;
    for (size_t i = 0; i < e->nroutes; i++) {
        const route *r = &e->routes[i];
        if (!path_matches(r, norm, (size_t)n))
            continue;
        path_seen = true;
        if (method_matches(r->method, req->method)) {
            r->cb(req, r->data);
            return true;
        }
    }
    if (path_seen)
        method_not_allowed(req, e, norm, (size_t)n);
    return path_seen;
}

/* ---- listening addresses ---- */

int pt_embed_keep_listen(pt_embed *e, pt_conf_listen *ls)
{
    pt_conf_listen **listens = realloc(e->listens, (e->nlistens + 1) * sizeof *listens);
    if (!listens)
        return -ENOMEM;
    e->listens = listens;
    e->listens[e->nlistens++] = ls;
    return 0;
}

void pt_embed_drop_listen(pt_embed *e)
{
    pt_conf_listen *ls = e->listens[--e->nlistens];
    free(ls->host);
    free(ls->port);
    free(ls);
}
