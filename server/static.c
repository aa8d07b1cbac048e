/*
 * Static files from a virtual host's root.
 *
 * The request path is percent-decoded and normalised before any file-system call, then opened
 * beneath the root's directory fd so neither ".." nor a symlink can lead out of it
 * (server/path.c). Directories get a 301 to the slash, then their index file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <llhttp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/filecache.h"
#include "server/path.h"
#include "server/site.h"

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
static void fail_open(pt_request *req, const char *path, int err)
{
    int status = status_for_errno(err);
    pt_request_log(req, status == 404 ? PT_LOG_INFO : PT_LOG_ERROR, "open() \"%s%s\" failed (%s)",
                   req->vhost->conf->root, path, strerror(-err));
    pt_request_respond_error(req, status);
}

static void serve_cached(pt_request *req, const pt_cached_file *cf)
{
    pt_response r;
    pt_response_init(&r, 200);
    r.body = cf->body;
    r.body_len = cf->size;
    r.extra_headers = (pt_str){cf->head, cf->head_len};
    pt_request_respond(req, &r);
}

/* Serves the open regular file `fd` found at `name` for the request path `key`: from the cache
 * when it is small enough to be kept there, else from the file. Takes `fd`. */
static void serve_file(pt_request *req, int fd, const struct stat *st, const char *name,
                       const char *key, size_t keylen)
{
    const pt_vhost *vh = req->vhost;
    const char *type = pt_mime_lookup(vh->mime, name, strlen(name));
    const pt_cached_file *cf =
        pt_filecache_put(vh->cache, vh, key, keylen, name, fd, st, type, req->start);
    if (cf) {
        close(fd);
        serve_cached(req, cf);
        return;
    }
    char etag[64] = "ETag: ";
    size_t n = 6 + pt_etag_format(st, etag + 6);
    memcpy(etag + n, "\r\n", 2);
    pt_response r;
    pt_response_init(&r, 200);
    r.content_type = type;
    r.file_fd = fd;
    r.file_off = 0;
    r.body_len = (size_t)st->st_size;
    r.last_modified = st->st_mtime;
    r.extra_headers = (pt_str){etag, n + 2};
    pt_request_respond(req, &r);
}

/* Opens `path` beneath the root and checks what it is. Returns the fd or a negative errno. */
static int open_checked(const pt_vhost *vh, const char *path, struct stat *st)
{
    int fd = pt_path_open_beneath(vh->root_fd, path, 0);
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
        pt_request_respond_error(req, 414);
        return;
    }
    loc[n++] = '/';
    if (req->query.len) {
        loc[n++] = '?';
        memcpy(loc + n, req->query.p, req->query.len);
        n += (ssize_t)req->query.len;
    }
    loc[n] = '\0';
    char body[] = "<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n"
                  "<center><h1>301 Moved Permanently</h1></center>\r\n<hr><center>porter</center>"
                  "\r\n</body>\r\n</html>\r\n";
    pt_response r;
    pt_response_init(&r, 301);
    r.location = loc;
    r.content_type = "text/html";
    r.body = body;
    r.body_len = sizeof body - 1;
    pt_request_respond(req, &r);
}

void pt_static_handle(pt_request *req)
{
    const pt_vhost *vh = req->vhost;
    if (req->method_id != HTTP_GET && req->method_id != HTTP_HEAD) {
        pt_request_respond_error(req, 405);
        return;
    }
    char norm[PATH_MAX];
    ssize_t len = pt_path_normalize(req->path.p, req->path.len, norm, sizeof norm - 256);
    if (len < 0) {
        pt_request_respond_error(req, len == -ENAMETOOLONG ? 414 : 400);
        return;
    }
    const pt_cached_file *cf =
        pt_filecache_get(vh->cache, vh, vh->root_fd, norm, (size_t)len, req->start);
    if (cf) {
        serve_cached(req, cf);
        return;
    }
    struct stat st;
    int fd = open_checked(vh, norm, &st);
    if (fd < 0) {
        fail_open(req, norm, fd);
        return;
    }
    if (S_ISREG(st.st_mode)) {
        if (norm[len - 1] == '/') { /* "/file.html/": not a directory */
            close(fd);
            pt_request_respond_error(req, 404);
            return;
        }
        serve_file(req, fd, &st, norm, norm, (size_t)len);
        return;
    }
    close(fd);
    if (!S_ISDIR(st.st_mode)) {
        pt_request_respond_error(req, 403);
        return;
    }
    if (norm[len - 1] != '/') {
        redirect_to_slash(req, norm, (size_t)len);
        return;
    }
    const pt_conf_server *cs = vh->conf;
    for (size_t i = 0; i < cs->nindex; i++) {
        size_t ilen = strlen(cs->index[i]);
        if ((size_t)len + ilen >= sizeof norm)
            continue;
        memcpy(norm + len, cs->index[i], ilen + 1);
        fd = open_checked(vh, norm, &st);
        if (fd == -ENOENT)
            continue;
        if (fd < 0) {
            fail_open(req, norm, fd);
            return;
        }
        if (S_ISREG(st.st_mode)) {
            serve_file(req, fd, &st, norm, norm, (size_t)len);
            return;
        }
        close(fd);
    }
    /* A directory without an index is not listed (autoindex is off). */
    norm[len] = '\0';
    pt_request_log(req, PT_LOG_ERROR, "directory index of \"%s%s\" is forbidden", vh->conf->root,
                   norm);
    pt_request_respond_error(req, 403);
}
