/*
 * Static files from a location's root or alias.
 *
 * The router has already decoded and normalised the path and picked the location. A request
 * is answered, in the usual case, from the file cache: one hash lookup per content coding
 * tried, then one copy of head and body into the out-queue. On a miss the file is opened
 * beneath the location's directory fd, so neither ".." nor a symlink can lead out of it
 * (server/path.c), and put in the cache: in memory when small, else kept open. Directories
 * get a 301 to the slash, then their index file, an autoindex listing, or a 403.
 *
 * On the way out: preconditions (304, 412), ranges (206, multipart/byteranges, 416), the
 * precompressed sibling the client prefers (FILE.br, FILE.zst, FILE.gz), try_files' fallback
 * chain and error_page's internal redirects.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/handlers/conditional.h"
#include "server/core/compress.h"
#include "server/core/encoding.h"
#include "server/handlers/filecache.h"
#include "server/site/location.h"
#include "server/core/path.h"
#include "server/core/vars.h"
#include "server/handlers/range.h"
#include "server/site/site.h"
#include "server/handlers/autoindex.h"
#include "server/handlers/static.h"

/* Parts of a file up to this size are read into the out-queue; larger ones go out with
 * sendfile (the same threshold as http1/head.c's). */
#define INLINE_MAX (16 * 1024)

/* The request fields a file response depends on, found in one pass over the headers. */
typedef struct req_info {
    pt_cond_request cond;
    pt_str range, if_range, accept_encoding;
} req_info;

static void scan_headers(const pt_request *req, req_info *ri)
{
    memset(ri, 0, sizeof *ri);
    for (size_t i = 0; i < req->nheaders; i++) {
        const pt_header *h = &req->headers[i];
        pt_str *slot = NULL;
        switch (h->name.len) {
        case 5:
            if (pt_str_ieq(h->name, "range"))
                slot = &ri->range;
            break;
        case 8:
            if (pt_str_ieq(h->name, "if-match"))
                slot = &ri->cond.if_match;
            else if (pt_str_ieq(h->name, "if-range"))
                slot = &ri->if_range;
            break;
        case 13:
            if (pt_str_ieq(h->name, "if-none-match"))
                slot = &ri->cond.if_none_match;
            break;
        case 15:
            if (pt_str_ieq(h->name, "accept-encoding"))
                slot = &ri->accept_encoding;
            break;
        case 17:
            if (pt_str_ieq(h->name, "if-modified-since"))
                slot = &ri->cond.if_modified_since;
            break;
        case 19:
            if (pt_str_ieq(h->name, "if-unmodified-since"))
                slot = &ri->cond.if_unmodified_since;
            break;
        }
        if (slot && !slot->p)
            *slot = h->value;
    }
}

/* ---- errors ---- */

static int status_for_errno(int err)
{
    switch (err) {
    case -ENOENT:
    case -ENOTDIR:
    case -ENAMETOOLONG:
        return 404;
    case -EACCES:
    case -EPERM:
    case -EXDEV: /* leads out of the root */
    case -ELOOP:
        return 403;
    default:
        return 500;
    }
}

/* Answers a failed open, logging it as nginx does: a missing file at info, the rest as errors. */
static void fail_open(pt_request *req, const char *file, int err)
{
    int status = status_for_errno(err);
    const pt_location *loc = req->location;
    pt_request_log(req, status == 404 ? PT_LOG_INFO : PT_LOG_ERROR, "open() \"%s%s%s\" failed (%s)",
                   loc->dir, file[0] == '/' ? "" : "/", file, strerror(-err));
    pt_route_error(req, status);
}

/* ---- sending a file ---- */

/* An fd of the response's own for the file of `cf` (an open-file entry): a dup, or when the
 * fd table is full the cache's own fd, taken from it. -1 if neither. */
static int own_fd(pt_request *req, const pt_cached_file *cf)
{
    int fd = fcntl(cf->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE))
        fd = pt_filecache_take_fd(req->vhost->cache, cf);
    return fd;
}

/* Points the body of `r` (body_len set) at `cf` from `off`: its memory, or its fd. A body sent
 * with sendfile gets an fd of its own, since the cache may close its fd before the queue is
 * written; a small one is read at once from the borrowed fd. */
static void set_body(pt_request *req, pt_response *r, const pt_cached_file *cf, uint64_t off)
{
    if (cf->body) {
        /* Sent from the cache's memory, which the queue holds until it is written. */
        r->body = cf->body + off;
        r->body_hold = pt_filecache_hold;
        r->body_release = pt_filecache_release;
        r->body_holder = (void *)cf;
        return;
    }
    r->file_fd = cf->fd;
    r->file_off = (off_t)off;
    r->file_borrowed = true;
    if (r->body_len <= INLINE_MAX || req->method_id == PT_METHOD_HEAD || cf->transient)
        return;
    int fd = own_fd(req, cf);
    if (fd >= 0) { /* else the protocol tries once more and answers 503 */
        r->file_fd = fd;
        r->file_borrowed = false;
    }
}

/* Reads `len` bytes of `fd` at `off` into `buf`. */
static int read_exact(int fd, char *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO; /* the file shrank */
        got += (size_t)n;
    }
    return 0;
}

typedef struct multipart {
    pt_request *req;
    const pt_cached_file *cf;
    const pt_range *ranges;
    size_t n;
    const char *boundary;
    bool sendfile;
} multipart;

/* Queues a multipart/byteranges body. Large parts of a file share one dup of the cache's fd,
 * which the queue closes with the last of them. */
static int push_multipart(struct pt_outq *q, void *data)
{
    const multipart *m = data;
    const pt_cached_file *cf = m->cf;
    char head[1200];
    int fd = -1, src = cf->fd, rc = 0;
    size_t last_big = SIZE_MAX;
    for (size_t i = 0; i < m->n; i++)
        if (!cf->body && m->ranges[i].last - m->ranges[i].first + 1 > INLINE_MAX)
            last_big = i;
    if (last_big != SIZE_MAX) {
        if ((fd = own_fd(m->req, cf)) < 0)
            return -EMFILE;
        /* the cache's may have been taken; the queue closes this one with the last large part
         * once it is written, after the small parts here were read */
        src = fd;
    }
    for (size_t i = 0; i < m->n && rc == 0; i++) {
        pt_range r = m->ranges[i];
        size_t len = (size_t)(r.last - r.first + 1);
        size_t hl =
            pt_range_part_head(head, sizeof head, m->boundary, cf->content_type, r, cf->size);
        if (hl >= sizeof head) {
            rc = -E2BIG;
            break;
        }
        pt_outq_push_copy(q, head, hl);
        if (cf->body) {
            pt_outq_push_copy(q, cf->body + r.first, len);
        } else if (len <= INLINE_MAX) {
            char buf[INLINE_MAX];
            if ((rc = read_exact(src, buf, len, (off_t)r.first)) == 0)
                pt_outq_push_copy(q, buf, len);
        } else {
            pt_outq_push_file(q, fd, (off_t)r.first, len,
                              (i == last_big ? PT_OUTQ_CLOSE_FD : 0) |
                                  (m->sendfile ? 0 : PT_OUTQ_NO_SENDFILE));
            if (i == last_big)
                fd = -1;
        }
    }
    if (fd >= 0)
        close(fd); /* an error before the last part: the connection dies with its queue */
    if (rc == 0)
        pt_outq_push_copy(q, head, pt_range_part_tail(head, sizeof head, m->boundary));
    return rc;
}

static void send_multipart(pt_request *req, const pt_cached_file *cf, const pt_range *ranges,
                           size_t n)
{
    char boundary[PT_RANGE_BOUNDARY_LEN + 1];
    pt_range_boundary(boundary);
    char type[64];
    snprintf(type, sizeof type, "multipart/byteranges; boundary=%s", boundary);
    multipart m = {req, cf, ranges, n, boundary, req->location->sendfile};
    pt_response r;
    pt_response_init(&r, 206);
    r.content_type = type;
    /* the parts carry the file's type; the head keeps the rest of its lines */
    r.extra_headers = (pt_str){cf->head + cf->type_len, cf->head_len - cf->type_len};
    r.mtime = cf->mtime;
    r.body_len = pt_range_multipart_length(ranges, n, boundary, cf->content_type, cf->size);
    r.push_body = push_multipart;
    r.push_body_data = &m;
    pt_request_respond(req, &r);
}

/* Answers with the file `cf` (a cache entry or a description of an uncached file), after its
 * preconditions and ranges. */
static void send_file(pt_request *req, const req_info *ri, const pt_cached_file *cf)
{
    const pt_conf_files *f = req->location->files;
    pt_response r;
    pt_response_init(&r, 200);
    r.extra_headers = (pt_str){cf->head, cf->head_len};
    r.mtime = cf->mtime;
    r.body_len = cf->size;
    if (req->error_page) { /* an error page: neither 304 nor ranges, as in nginx */
        set_body(req, &r, cf, 0);
        pt_request_respond(req, &r);
        return;
    }
    pt_str etag = f->etag ? (pt_str){cf->etag, cf->etag_len} : (pt_str){"", 0};
    switch (pt_cond_evaluate(&ri->cond, true, etag, cf->mtime, (time_t)req->start)) {
    case PT_COND_FAILED:
        pt_route_error(req, 412);
        return;
    case PT_COND_NOT_MODIFIED:
        pt_response_init(&r, 304);
        r.no_body = true;
        r.extra_headers =
            (pt_str){cf->head + cf->validators_off, cf->head_len - cf->validators_off};
        r.mtime = cf->mtime;
        /* what compression on the fly would have done to the 200 decides its ETag and Vary;
         * it leaves a precompressed sibling's alone, and so its 304's */
        if (!cf->encoded)
            r.type_hint = cf->content_type;
        pt_request_respond(req, &r);
        return;
    }
    if (ri->range.p && req->method_id == PT_METHOD_GET && f->max_ranges > 0 &&
        (!ri->if_range.p || pt_cond_if_range(ri->if_range, etag, cf->mtime))) {
        pt_range ranges[PT_CONF_MAX_RANGES];
        char line[96];
        int n = pt_range_parse(ri->range, cf->size, f->max_ranges, ranges);
        if (n == PT_RANGE_UNSATISFIABLE) {
            int k = snprintf(line, sizeof line, "Content-Range: bytes */%zu\r\n", cf->size);
            pt_request_respond_error_with(req, 416, (pt_str){line, (size_t)k});
            return;
        }
        if (n > 1) {
            send_multipart(req, cf, ranges, (size_t)n);
            return;
        }
        if (n == 1) {
            int k =
                snprintf(line, sizeof line, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%zu\r\n",
                         ranges[0].first, ranges[0].last, cf->size);
            r.status = 206;
            r.more_headers = (pt_str){line, (size_t)k};
            r.body_len = (size_t)(ranges[0].last - ranges[0].first + 1);
            set_body(req, &r, cf, ranges[0].first);
            pt_request_respond(req, &r);
            return;
        }
    }
    set_body(req, &r, cf, 0);
    /* the memo holds the location's header lines: not for an answer with an `if`'s */
    r.head_memo = req->filters == &req->location->filter ? cf->head_memo : NULL;
    /* where compression on the fly keeps this file's compressed copies: beside it in the
     * cache, under its identity (the coding and level are the compression layer's) */
    pt_variant_key key = {
        .dev = cf->dev, .ino = cf->ino, .size = cf->size, .mtime_ns = cf->mtime_ns};
    if (!cf->encoded && req->compress && req->compress->cache &&
        (r.variants = pt_filecache_variants(req->vhost->cache)))
        r.variant_key = &key;
    pt_request_respond(req, &r);
}

/* Answers with the regular file open as `fd` (taken) at `file`, the representation `enc` of
 * the request path `path`: through the cache when it takes the file. */
static void serve_fd(pt_request *req, const req_info *ri, const char *path, size_t len,
                     pt_encoding enc, const char *file, int fd, const struct stat *st,
                     const char *type)
{
    const pt_location *loc = req->location;
    const pt_conf_files *f = loc->files;
    pt_filecache_meta meta = {
        .content_type = type,
        .encoding = pt_encoding_name(enc),
        .etag = f->etag,
        .vary = f->precompressed,
        .accept_ranges = f->max_ranges > 0,
    };
    const pt_cached_file *cf = pt_filecache_put(req->vhost->cache, loc, (int)enc, path, len, file,
                                                &fd, st, &meta, req->start);
    if (cf) {
        if (fd >= 0)
            close(fd);
        send_file(req, ri, cf);
        return;
    }
    pt_cached_file tmp;
    char head[1200];
    if (pt_filecache_describe(&tmp, head, sizeof head, st, &meta) < 0) {
        close(fd);
        pt_route_error(req, 500);
        return;
    }
    tmp.fd = fd;
    send_file(req, ri, &tmp);
    close(fd);
}

/* ---- finding the file ---- */

/* Opens `file` beneath the location's directory and stats it. Returns the fd or a negative
 * errno. */
static int open_checked(const pt_location *loc, const char *file, struct stat *st)
{
    if (loc->dir_fd < 0)
        return -ENOENT; /* a default root that does not exist (server.c) */
    int fd = pt_path_open_beneath(loc->dir_fd, file, 0);
    if (fd < 0)
        return fd;
    if (fstat(fd, st) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static void redirect_to_slash(pt_request *req, const char *norm, size_t len)
{
    char loc[PATH_MAX + 16];
    ssize_t n = pt_path_encode(norm, len, loc, sizeof loc - 2);
    if (n < 0 || (size_t)n + 2 + req->query.len > sizeof loc) {
        pt_route_error(req, 414);
        return;
    }
    loc[n++] = '/';
    if (req->query.len) {
        loc[n++] = '?';
        memcpy(loc + n, req->query.p, req->query.len);
        n += (ssize_t)req->query.len;
    }
    loc[n] = '\0';
    char body[PT_STATUS_PAGE_MAX];
    pt_response r;
    pt_response_init(&r, 301);
    r.location = loc;
    r.content_type = "text/html";
    r.body = body;
    r.body_len = pt_http_status_page(301, body, sizeof body);
    pt_request_respond(req, &r);
}

enum outcome { SERVED, NOT_FOUND };

/* A path that names nothing: for try_files the next candidate, else a 404. */
static enum outcome not_found(pt_request *req, const char *file, bool trying)
{
    if (trying)
        return NOT_FOUND;
    fail_open(req, file, -ENOENT);
    return SERVED;
}

/* Serves the normalised `path`. `trying`: a try_files candidate, which must name a file (or a
 * directory when it ends in '/'); NOT_FOUND is then returned instead of an answer. */
static enum outcome serve(pt_request *req, const req_info *ri, const char *path, size_t len,
                          bool trying)
{
    const pt_location *loc = req->location;
    const pt_vhost *vh = req->vhost;
    pt_filecache *fc = vh->cache;
    double now = req->start;
    /* a try_files candidate outside the path an alias replaces has no file */
    pt_str aliased = loc->root.alias;
    if (loc->alias && (len < aliased.len || memcmp(path, aliased.p, aliased.len) != 0))
        return not_found(req, path, trying);
    const char *rel = loc->alias ? path + aliased.len : path;
    pt_encoding encs[PT_ENC_COUNT - 1];
    /* compress_order breaks ties among the siblings too; with no coding on for compression
     * on the fly there are no settings (req->compress NULL): porter's order */
    const pt_encoding_order *order = req->compress ? &req->compress->order : NULL;
    size_t nenc = loc->files->precompressed && ri->accept_encoding.p
                      ? pt_encoding_choose(ri->accept_encoding, order, encs)
                      : 0;

    /* The hot path: each coding the client prefers is known to the cache, present or not. */
    for (size_t i = 0; i <= nenc; i++) {
        pt_encoding e = i < nenc ? encs[i] : PT_ENC_IDENTITY;
        const pt_cached_file *cf = pt_filecache_get(fc, loc, (int)e, loc->dir_fd, path, len, now);
        if (!cf)
            break;
        if (!cf->absent) {
            send_file(req, ri, cf);
            return SERVED;
        }
        if (e == PT_ENC_IDENTITY)
            return not_found(req, rel, trying);
    }

    /* the router leaves room after a path for an index name or a suffix */
    char file[PATH_MAX];
    size_t flen = strlen(rel);
    memcpy(file, rel, flen + 1);
    struct stat st;
    int fd = open_checked(loc, file, &st);
    if (fd < 0) {
        if (fd == -ENOENT || fd == -ENOTDIR) {
            pt_filecache_put_absent(fc, loc, PT_ENC_IDENTITY, path, len, file, now);
            return not_found(req, file, trying);
        }
        if (trying && fd == -ENAMETOOLONG)
            return NOT_FOUND;
        fail_open(req, file, fd);
        return SERVED;
    }
    bool slash = path[len - 1] == '/';
    if (S_ISDIR(st.st_mode)) {
        if (!slash) {
            close(fd);
            if (trying)
                return NOT_FOUND;
            redirect_to_slash(req, path, len);
            return SERVED;
        }
        int ifd = -1;
        struct stat ist;
        for (size_t i = 0; i < loc->nindex && ifd < 0; i++) {
            size_t ilen = strlen(loc->index[i]);
            if (flen + ilen >= sizeof file)
                continue;
            memcpy(file + flen, loc->index[i], ilen + 1);
            ifd = open_checked(loc, file, &ist);
            if (ifd >= 0 && !S_ISREG(ist.st_mode)) {
                close(ifd);
                ifd = -1;
            } else if (ifd < 0 && ifd != -ENOENT) {
                close(fd);
                fail_open(req, file, ifd);
                return SERVED;
            }
        }
        if (ifd < 0) {
            file[flen] = '\0';
            if (loc->files->autoindex) {
                pt_autoindex_respond(req, fd, path, len);
                return SERVED;
            }
            close(fd);
            pt_request_log(req, PT_LOG_ERROR, "directory index of \"%s%s%s\" is forbidden",
                           loc->dir, file[0] == '/' ? "" : "/", file);
            pt_route_error(req, 403);
            return SERVED;
        }
        close(fd);
        fd = ifd;
        st = ist;
    } else if (!S_ISREG(st.st_mode) || slash) {
        /* a device or a fifo is refused; "/file.html/" names no directory */
        close(fd);
        if (trying)
            return NOT_FOUND;
        pt_route_error(req, slash ? 404 : 403);
        return SERVED;
    }

    size_t fnlen = strlen(file);
    const char *type = pt_mime_lookup(vh->mime, file, fnlen);
    for (size_t i = 0; i < nenc; i++) {
        pt_encoding e = encs[i];
        const pt_cached_file *cf = pt_filecache_get(fc, loc, (int)e, loc->dir_fd, path, len, now);
        if (cf && !cf->absent) {
            close(fd);
            send_file(req, ri, cf);
            return SERVED;
        }
        const char *suffix = pt_encoding_suffix(e);
        size_t sl = strlen(suffix);
        if (cf || fnlen + sl >= sizeof file)
            continue;
        memcpy(file + fnlen, suffix, sl + 1);
        struct stat vst;
        int vfd = open_checked(loc, file, &vst);
        if (vfd >= 0 && S_ISREG(vst.st_mode)) {
            close(fd);
            serve_fd(req, ri, path, len, e, file, vfd, &vst, type);
            return SERVED;
        }
        if (vfd >= 0)
            close(vfd);
        else if (vfd == -ENOENT)
            pt_filecache_put_absent(fc, loc, (int)e, path, len, file, now);
        file[fnlen] = '\0';
    }
    serve_fd(req, ri, path, len, PT_ENC_IDENTITY, file, fd, &st, type);
    return SERVED;
}

/* Where a try_files candidate is expanded. */
typedef struct candidate {
    char *out;
    size_t n, cap;
    bool encode, overflow;
} candidate;

static void put_piece(void *ctx, const pt_var_ref *ref, const char *p, size_t n)
{
    candidate *c = ctx;
    if (c->overflow)
        return;
    if (ref->id == PT_VAR_URI && c->encode) {
        ssize_t k = pt_path_encode(p, n, c->out + c->n, c->cap - c->n);
        if (k < 0)
            c->overflow = true;
        else
            c->n += (size_t)k;
    } else if (c->n + n >= c->cap) {
        c->overflow = true;
    } else {
        memcpy(c->out + c->n, p, n);
        c->n += n;
    }
}

/* Expands `tmpl` (its $uri the request's path, percent-encoded with `encode`) into `out`.
 * Returns the length, or -1 if it does not fit. */
static ssize_t expand(const pt_request *req, const char *tmpl, bool encode, char *out, size_t cap)
{
    candidate c = {out, 0, cap, encode, false};
    pt_vars_expand(req, tmpl, put_piece, &c);
    if (c.overflow)
        return -1;
    out[c.n] = '\0';
    return (ssize_t)c.n;
}

/* `try_files file ... uri|=code`: the first candidate that names a file or a directory
 * answers, else the last argument: an internal redirect, or an error. */
static void try_files(pt_request *req, const req_info *ri)
{
    const pt_conf_files *f = req->location->files;
    char cand[PATH_MAX];
    for (size_t i = 0; i + 1 < f->ntry_files; i++) {
        ssize_t n = expand(req, f->try_files[i], false, cand, sizeof cand - 256);
        if (n <= 0 || cand[0] != '/')
            continue;
        if (serve(req, ri, cand, (size_t)n, true) == SERVED)
            return;
    }
    const char *last = f->try_files[f->ntry_files - 1];
    if (last[0] == '=') {
        pt_route_error(req, atoi(last + 1));
        return;
    }
    ssize_t n = expand(req, last, true, cand, sizeof cand);
    if (n < 0 || pt_route_redirect(req, cand, (size_t)n) < 0)
        pt_route_error(req, 500);
}

void pt_static_handle(pt_request *req)
{
    /* an error page answers any method, as nginx's turn into GET */
    if (req->method_id != PT_METHOD_GET && req->method_id != PT_METHOD_HEAD && !req->error_page) {
        pt_route_error(req, 405);
        return;
    }
    req_info ri;
    scan_headers(req, &ri);
    if (req->location->files->ntry_files)
        try_files(req, &ri);
    else
        serve(req, &ri, req->norm_path.p, req->norm_path.len, false);
}
