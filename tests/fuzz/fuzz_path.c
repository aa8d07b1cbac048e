/*
 * fuzz_path: request paths through decoding, normalising and opening beneath a root
 * (server/path.h).
 *
 * The input is the path part of a request target. pt_path_normalize is checked against a
 * second normaliser written here another way (decode everything, then walk the segments), in
 * an output buffer of the size path.h says is enough and in one too small (which must get
 * -ENAMETOOLONG or the same answer, and no write past its end). Every path, the normalised
 * one and the input as it is, is opened beneath a root that holds files, directories and
 * links (inside the root, to its parent, to an absolute path, in a loop) with both
 * pt_path_open_beneath and the walk that stands in for openat2: whatever either opens must lie
 * inside the root, and both must open the same file or both fail. pt_path_encode's answer must
 * hold only unreserved bytes, '/' and %XX, and decode back to its input.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/core/path.h"
#include "tests/fuzz/fuzz.h"

static char dir[64], root[96];
static int root_fd = -1;

static void make(const char *rel, bool is_dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    int r = is_dir ? mkdir(path, 0755) : open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    FUZZ_CHECK(r >= 0, "%s: %s", path, strerror(errno));
    if (!is_dir)
        close(r);
}

static void make_link(const char *target, const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FUZZ_CHECK(symlink(target, path) == 0, "%s: %s", path, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

static void remove_dir(void)
{
    if (root_fd >= 0)
        close(root_fd);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_temp_dir(dir, sizeof dir, "path");
    atexit(remove_dir);
    make("root", true);
    make("root/a.txt", false);
    make("root/d", true);
    make("root/d/b.txt", false);
    make("root/d/e", true);
    make("root/d/e/c.txt", false);
    make("root/%41", false);
    make("root/x y", false);
    make("outside", true);
    make("outside/secret.txt", false);
    make_link("d", "root/in");
    make_link("d/e/c.txt", "root/file-link");
    make_link("../d/b.txt", "root/d/e/up-link");
    make_link("..", "root/parent");
    make_link("../outside", "root/out");
    make_link("../outside/secret.txt", "root/secret");
    make_link("/etc", "root/abs");
    make_link("/etc/hostname", "root/abs-file");
    make_link("loop", "root/loop");
    make_link("/proc/self/root", "root/magic");
    snprintf(root, sizeof root, "%s/root", dir);
    root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(root_fd >= 0, "%s: %s", root, strerror(errno));
    return 0;
}

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* path.h's normalisation, another way: decode the whole path first, then keep a stack of
 * segments. Returns the length written to `out` (room for len + 1) or -EINVAL. */
static ssize_t reference(const char *in, size_t len, char *out)
{
    if (len == 0 || in[0] != '/')
        return -EINVAL;
    char *dec = malloc(len);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < len ? hex((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(dec);
                return -EINVAL;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (control(c)) {
            free(dec);
            return -EINVAL;
        }
        dec[n++] = (char)c;
    }
    /* segments as (start, length) in dec */
    size_t *seg = malloc(sizeof *seg * (n + 1) * 2), nseg = 0;
    bool dir_end = dec[n - 1] == '/';
    for (size_t i = 0; i < n;) {
        while (i < n && dec[i] == '/')
            i++;
        size_t j = i;
        while (j < n && dec[j] != '/')
            j++;
        size_t sl = j - i;
        bool last = j >= n;
        if (sl == 1 && dec[i] == '.') {
            dir_end |= last;
        } else if (sl == 2 && dec[i] == '.' && dec[i + 1] == '.') {
            if (nseg == 0) {
                free(seg);
                free(dec);
                return -EINVAL;
            }
            nseg--;
            dir_end |= last;
        } else if (sl) {
            seg[2 * nseg] = i;
            seg[2 * nseg + 1] = sl;
            nseg++;
        }
        i = j;
    }
    size_t o = 0;
    for (size_t k = 0; k < nseg; k++) {
        out[o++] = '/';
        memcpy(out + o, dec + seg[2 * k], seg[2 * k + 1]);
        o += seg[2 * k + 1];
    }
    if (o == 0 || dir_end)
        out[o++] = '/';
    out[o] = '\0';
    free(seg);
    free(dec);
    return (ssize_t)o;
}

/* Opens `rel` both ways and checks where the two land. */
static void open_both(const char *rel, int flags)
{
    int a = pt_path_open_beneath(root_fd, rel, flags);
    int b = pt_path_open_beneath_walk(root_fd, rel, flags);
    FUZZ_CHECK((a >= 0) == (b >= 0),
               "\"%s\" (flags %#x): pt_path_open_beneath gave %d (%s), the walk %d (%s)", rel,
               flags, a, a < 0 ? strerror(-a) : "opened", b, b < 0 ? strerror(-b) : "opened");
    if (a < 0)
        return;
    struct stat sa, sb;
    FUZZ_CHECK(fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
                   sa.st_ino == sb.st_ino,
               "\"%s\": the two ways opened different files", rel);
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", a);
    ssize_t n = readlink(link, real, sizeof real - 1);
    FUZZ_CHECK(n > 0, "readlink %s: %s", link, strerror(errno));
    real[n] = '\0';
    size_t rl = strlen(root);
    FUZZ_CHECK(strncmp(real, root, rl) == 0 && (real[rl] == '\0' || real[rl] == '/'),
               "\"%s\" opened %s, outside the root %s", rel, real, root);
    close(a);
    close(b);
}

static void check_encode(const char *in, size_t len)
{
    size_t cap = 3 * len + 1;
    char *out = malloc(cap);
    ssize_t n = pt_path_encode(in, len, out, cap);
    FUZZ_CHECK(n >= 0 && (size_t)n < cap && out[n] == '\0', "encode returned %zd", n);
    size_t d = 0;
    for (ssize_t i = 0; i < n; i++, d++) {
        unsigned char c = (unsigned char)out[i];
        if (c == '%') {
            FUZZ_CHECK(i + 2 < n && hex((unsigned char)out[i + 1]) >= 0 &&
                           hex((unsigned char)out[i + 2]) >= 0 &&
                           !(out[i + 1] >= 'a' && out[i + 1] <= 'f') &&
                           !(out[i + 2] >= 'a' && out[i + 2] <= 'f'),
                       "encode: a bad escape at %zd of \"%s\"", i, out);
            c = (unsigned char)(hex((unsigned char)out[i + 1]) * 16 +
                                hex((unsigned char)out[i + 2]));
            FUZZ_CHECK(
                !strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/", c) ||
                    c == 0,
                "encode: '%c' escaped in \"%s\"", c, out);
            i += 2;
        } else {
            FUZZ_CHECK(c && strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-._~/",
                                   c),
                       "encode: byte %#x left as it is", c);
        }
        FUZZ_CHECK(d < len && (unsigned char)in[d] == c, "encode: \"%s\" does not decode back",
                   out);
    }
    FUZZ_CHECK(d == len, "encode: %zu bytes decode from \"%s\", %zu given", d, out, len);
    /* Too little room: -ENAMETOOLONG, and nothing written past it. */
    if (n > 0) {
        char *small = malloc((size_t)n);
        FUZZ_CHECK(pt_path_encode(in, len, small, (size_t)n) == -ENAMETOOLONG,
                   "encode into %zd bytes", n);
        free(small);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The input in a buffer of its own size, so ASan sees any read past it. */
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    char *out = malloc(size + 1), *want = malloc(size + 1);

    ssize_t n = pt_path_normalize(in, size, out, size + 1);
    ssize_t ref = reference(in, size, want);
    FUZZ_CHECK(n == ref && (n < 0 || memcmp(out, want, (size_t)n + 1) == 0),
               "normalised to %zd \"%s\", the reference %zd \"%s\"", n, n >= 0 ? out : "", ref,
               ref >= 0 ? want : "");
    if (size > 1) {
        size_t cap = size / 2;
        char *small = malloc(cap);
        ssize_t m = pt_path_normalize(in, size, small, cap);
        FUZZ_CHECK(m == -ENAMETOOLONG || m == -EINVAL ||
                       (m == n && (size_t)m < cap && memcmp(small, out, (size_t)m + 1) == 0),
                   "into %zu bytes: %zd, with room %zd", cap, m, n);
        FUZZ_CHECK(m != -EINVAL || n == -EINVAL, "into %zu bytes: invalid, with room %zd", cap, n);
        free(small);
    }

    if (n >= 0) {
        open_both(out, O_NONBLOCK);
        open_both(out, O_NONBLOCK | O_NOFOLLOW);
    }
    /* The input as it is (to its first NUL): the open functions take any relative path. */
    char *raw = strndup(in, size);
    if (strlen(raw) < PATH_MAX)
        open_both(raw, O_NONBLOCK);
    free(raw);
    check_encode(in, size);
    free(want);
    free(out);
    free(in);
    return 0;
}
