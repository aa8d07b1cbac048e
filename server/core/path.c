#include "server/core/path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

/* Flags a caller may add to O_RDONLY | O_CLOEXEC: none of them writes, creates or truncates. */
#define OPEN_FLAGS_ALLOWED                                                                         \
    (O_NONBLOCK | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_NOCTTY | O_CLOEXEC)

/* Linux's MAXSYMLINKS: the kernel gives up after as many links in one lookup. */
#define MAX_SYMLINKS 40

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* The normaliser's state. A segment's leading dots are held back (`dots`) until a byte shows it
 * is not "." or "..", so a dot segment is never written and cannot overflow `out` by itself. */
typedef struct norm {
    char *out;
    size_t cap, len;
    size_t seg; /* where the current segment starts in out; out[seg - 1] == '/' */
    int dots;   /* leading dots of the current segment not yet written (0..2) */
    bool plain; /* the current segment is a name: its bytes, dots included, are in out */
} norm;

static int norm_put(norm *n, char c)
{
    if (n->len + 1 >= n->cap) /* keep room for the NUL */
        return -ENAMETOOLONG;
    n->out[n->len++] = c;
    return 0;
}

static int norm_byte(norm *n, char c)
{
    if (!n->plain && c == '.' && n->dots < 2) {
        n->dots++;
        return 0;
    }
    for (; !n->plain && n->dots > 0; n->dots--) {
        if (norm_put(n, '.') < 0)
            return -ENAMETOOLONG;
    }
    n->plain = true;
    return norm_put(n, c);
}

/* Ends the current segment at a '/' (or at the end of a path whose last segment is "." or
 * ".."): a name gets its '/', an empty or "." segment vanishes, ".." removes the one before. */
static int norm_end_segment(norm *n)
{
    if (n->plain) {
        if (norm_put(n, '/') < 0)
            return -ENAMETOOLONG;
        n->seg = n->len;
        n->plain = false;
        return 0;
    }
    if (n->dots == 2) {
        if (n->seg == 1) /* nothing left to remove: above the root */
            return -EINVAL;
        n->len = n->seg - 1;
        while (n->out[n->len - 1] != '/')
            n->len--;
        n->seg = n->len;
    }
    n->dots = 0;
    return 0;
}

ssize_t pt_path_normalize(const char *path, size_t len, char *out, size_t outcap)
{
    if (path == NULL || len == 0 || path[0] != '/')
        return -EINVAL;
    if (outcap < 2)
        return -ENAMETOOLONG;
    /* The common case, a path that is already normal: no escape, no control byte, no empty,
     * "." or ".." segment. One pass to check, one copy. */
    static const unsigned char special[256] = {
        [0 ... 0x1f] = 1, ['%'] = 1, ['.'] = 1, ['/'] = 1, [0x7f] = 1,
    };
    size_t k = 1;
    for (; k < len; k++) {
        unsigned char c = (unsigned char)path[k];
        if (special[c] && ((c != '/' && c != '.') || path[k - 1] == '/'))
            break;
    }
    if (k == len) {
        if (len >= outcap)
            return -ENAMETOOLONG;
        memcpy(out, path, len);
        out[len] = '\0';
        return (ssize_t)len;
    }
    norm n = {.out = out, .cap = outcap, .len = 1, .seg = 1};
    out[0] = '/';
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '%') {
            if (len - i < 3)
                return -EINVAL;
            int hi = hex_value((unsigned char)path[i + 1]);
            int lo = hex_value((unsigned char)path[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (is_control(c))
            return -EINVAL;
        int rc = c == '/' ? norm_end_segment(&n) : norm_byte(&n, (char)c);
        if (rc < 0)
            return rc;
    }
    /* A name at the end stays without '/'; a final "." or ".." names a directory. */
    if (!n.plain) {
        int rc = norm_end_segment(&n);
        if (rc < 0)
            return rc;
    }
    out[n.len] = '\0';
    return (ssize_t)n.len;
}

ssize_t pt_path_encode(const char *path, size_t len, char *out, size_t outcap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
        size_t need = keep ? 1 : 3;
        if (o + need >= outcap)
            return -ENAMETOOLONG;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    if (o >= outcap)
        return -ENAMETOOLONG;
    out[o] = '\0';
    return (ssize_t)o;
}

/* Opens the directory `done` ("a/b", names already checked to be real directories) again from
 * the root, refusing symlinks on the way, so ".." never uses the kernel's idea of a parent. */
static int reopen_dir(int rootfd, const char *done, size_t len)
{
    char name[NAME_MAX + 1];
    int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && done[j] != '/')
            j++;
        memcpy(name, done + i, j - i);
        name[j - i] = '\0';
        int next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        close(fd);
        if (next < 0)
            return -err;
        fd = next;
        i = j + 1;
    }
    return fd;
}

int pt_path_open_beneath_walk(int rootfd, const char *rel, int flags)
{
    char todo[PATH_MAX]; /* what is left to resolve: [r, end), so a link target is prepended */
    char done[PATH_MAX]; /* directories resolved beneath the root, "a/b", no symlinks */
    char name[NAME_MAX + 1];
    char link[PATH_MAX];
    size_t dlen = 0;
    int links = 0;
    int ret;

    if (rel == NULL || (flags & ~OPEN_FLAGS_ALLOWED))
        return -EINVAL;
    size_t rlen = strlen(rel);
    if (rlen >= sizeof todo)
        return -ENAMETOOLONG;
    char *end = todo + sizeof todo;
    char *r = end - rlen;
    memcpy(r, rel, rlen);

    int dir = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    for (;;) {
        while (r < end && *r == '/')
            r++;
        if (r == end) { /* the path names the directory reached so far */
            ret = openat(dir, ".", O_RDONLY | O_CLOEXEC | flags);
            if (ret < 0)
                ret = -errno;
            goto out;
        }
        const char *s = r;
        while (r < end && *r != '/')
            r++;
        size_t n = (size_t)(r - s);
        if (n > NAME_MAX) {
            ret = -ENAMETOOLONG;
            goto out;
        }
        memcpy(name, s, n);
        name[n] = '\0';
        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) {
            if (dlen == 0) {
                ret = -EXDEV;
                goto out;
            }
            while (dlen > 0 && done[dlen - 1] != '/')
                dlen--;
            if (dlen > 0)
                dlen--;
            int up = reopen_dir(rootfd, done, dlen);
            if (up < 0) {
                ret = up;
                goto out;
            }
            close(dir);
            dir = up;
            continue;
        }

        ssize_t llen;
        if (r == end) {
            /* The last name: open it for real, but never through a symlink. */
            int fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | flags);
            if (fd >= 0) {
                ret = fd;
                goto out;
            }
            if (errno != ELOOP || (flags & O_NOFOLLOW)) {
                ret = -errno;
                goto out;
            }
            llen = readlinkat(dir, name, link, sizeof link);
        } else {
            /* A directory on the way (or a name with a trailing '/'). O_PATH opens a symlink
             * itself, so it is read from the same inode that was looked up. */
            int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                ret = -errno;
                goto out;
            }
            struct stat st;
            if (fstat(fd, &st) < 0) {
                ret = -errno;
                close(fd);
                goto out;
            }
            if (S_ISDIR(st.st_mode)) {
                if (dlen + 1 + n >= sizeof done) {
                    close(fd);
                    ret = -ENAMETOOLONG;
                    goto out;
                }
                if (dlen > 0)
                    done[dlen++] = '/';
                memcpy(done + dlen, name, n);
                dlen += n;
                close(dir);
                dir = fd;
                continue;
            }
            if (!S_ISLNK(st.st_mode)) {
                close(fd);
                ret = -ENOTDIR;
                goto out;
            }
            llen = readlinkat(fd, "", link, sizeof link);
            int err = errno;
            close(fd);
            errno = err;
        }
        if (llen < 0) {
            ret = -errno;
            goto out;
        }
        if (++links > MAX_SYMLINKS) {
            ret = -ELOOP;
            goto out;
        }
        if (llen == 0) {
            ret = -ENOENT;
            goto out;
        }
        if (link[0] == '/') { /* an absolute link leaves the root by definition */
            ret = -EXDEV;
            goto out;
        }
        if ((size_t)llen >= sizeof link || r - todo < llen) {
            ret = -ENAMETOOLONG;
            goto out;
        }
        r -= llen;
        memcpy(r, link, (size_t)llen);
    }
out:
    close(dir);
    return ret;
}

int pt_path_open_beneath(int rootfd, const char *rel, int flags)
{
    if (rel == NULL || (flags & ~OPEN_FLAGS_ALLOWED))
        return -EINVAL;
#ifdef SYS_openat2
    static atomic_bool no_openat2;
    if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
        const char *p = rel;
        while (*p == '/')
            p++;
        if (*p == '\0')
            p = ".";
        struct open_how how = {
            .flags = (unsigned long long)(O_RDONLY | O_CLOEXEC | flags),
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        for (int tries = 0;; tries++) {
            long fd = syscall(SYS_openat2, rootfd, p, &how, sizeof how);
            if (fd >= 0)
                return (int)fd;
            /* EAGAIN: a concurrent rename made the kernel unsure a ".." stayed beneath the
             * root; openat2(2) says to retry. */
            if ((errno == EAGAIN || errno == EINTR) && tries < 8)
                continue;
            if (errno != ENOSYS)
                return -errno;
            atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
            break;
        }
    }
#endif
    return pt_path_open_beneath_walk(rootfd, rel, flags);
}
