#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
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
#include "tests/support.h"

/* --- pt_path_normalize: a traversal corpus ------------------------------------------------ */

typedef struct norm_case {
    const char *in;
    size_t len;       /* 0: strlen(in); set when the input holds a raw NUL */
    const char *want; /* NULL when an error is expected */
    int err;
} norm_case;

#define OK(in, want)                                                                               \
    {                                                                                              \
        in, 0, want, 0                                                                             \
    }
#define BAD(in)                                                                                    \
    {                                                                                              \
        in, 0, NULL, -EINVAL                                                                       \
    }

static const norm_case corpus[] = {
    /* plain paths */
    OK("/", "/"),
    OK("/index.html", "/index.html"),
    OK("/a/b/c.txt", "/a/b/c.txt"),
    OK("/dir/", "/dir/"),
    OK("/a+b", "/a+b"),
    OK("/a?b", "/a?b"), /* the caller strips the query; a '?' left here is a byte of a name */
    OK("/.hidden", "/.hidden"),
    OK("/..a", "/..a"),
    OK("/a..", "/a.."),
    OK("/...", "/..."), /* three dots is a name, not a dot segment */
    /* slashes and dot segments */
    OK("//", "/"),
    OK("/.", "/"),
    OK("/./", "/"),
    OK("/./././a", "/a"),
    OK("//a//b/", "/a/b/"),
    OK("/a/./b/./", "/a/b/"),
    OK("/a/b/.", "/a/b/"),
    OK("/a/b/..", "/a/"),
    OK("/a/b/../", "/a/"),
    OK("/a/..", "/"),
    OK("/a/b/c/../../d", "/a/d"),
    OK("/a//../b", "/b"),
    OK("/.../..", "/"),
    /* escapes */
    OK("/a%20b", "/a b"),
    OK("/%7e/x", "/~/x"),
    OK("/%7E/x", "/~/x"),
    OK("/%25", "/%"),
    OK("/%3f", "/?"),
    OK("/%C3%BC", "/\xc3\xbc"),
    OK("/\xc3\xbc", "/\xc3\xbc"),
    OK("/a%2fb", "/a/b"), /* an encoded '/' separates, as in nginx */
    OK("/%2F%2Fa", "/a"),
    OK("/a/%2e/b", "/a/b"),
    OK("/a/%2E%2E/b", "/b"),
    /* double encoding decodes once: the result is a name, not a traversal */
    OK("/%252e%252e/", "/%2e%2e/"),
    OK("/%252f", "/%2f"),
    /* backslash is a byte of a name on Linux */
    OK("/%2e%2e%5c", "/..\\"),
    OK("/..\\..\\etc", "/..\\..\\etc"),
    OK("/%5c..%5c..%5cwindows", "/\\..\\..\\windows"),
    /* overlong UTF-8 for '.' is two bytes, not a dot */
    OK("/%c0%ae%c0%ae/x", "/\xc0\xae\xc0\xae/x"),
    OK("/%c0%ae%c0%ae/", "/\xc0\xae\xc0\xae/"),
    /* traversal above the root */
    BAD("/.."),
    BAD("/../"),
    BAD("/../etc/passwd"),
    BAD("/a/../.."),
    BAD("/a/../../b"),
    BAD("/a/b/../../.."),
    BAD("/%2e%2e/"),
    BAD("/%2E%2e%2fetc"),
    BAD("/.%2e/"),
    BAD("/%2e./"),
    BAD("/..%2f..%2fetc/passwd"),
    BAD("/a%2F..%2F..%2Fb"),
    BAD("/./../x"),
    /* malformed requests */
    BAD(""),
    BAD("a/b"),
    BAD("index.html"),
    BAD("%2fetc/passwd"), /* an encoded leading '/' is not a leading '/' */
    BAD("/%G1"),
    BAD("/%1G"),
    BAD("/%4"),
    BAD("/%"),
    BAD("/abc%"),
    BAD("/%%41"),
    /* control bytes, raw or decoded */
    BAD("/foo%00.html"),
    {"/foo\0.html", 10, NULL, -EINVAL},
    BAD("/%00"),
    BAD("/a%0ab"),
    BAD("/a%0d%0aSet-Cookie:x"),
    BAD("/a\tb"),
    BAD("/a\nb"),
    BAD("/a%1fb"),
    BAD("/a%7fb"),
    BAD("/a\x7f"),
};

static void test_normalize_corpus(void **state)
{
    (void)state;
    char out[256];
    size_t n = sizeof corpus / sizeof corpus[0];
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const norm_case *c = &corpus[i];
        size_t len = c->len ? c->len : strlen(c->in);
        memset(out, 'X', sizeof out);
        ssize_t got = pt_path_normalize(c->in, len, out, sizeof out);
        if (c->want == NULL) {
            if (got != c->err)
                fail_msg("case %zu \"%s\": got %zd, want %d", i, c->in, got, c->err);
            continue;
        }
        if (got < 0)
            fail_msg("case %zu \"%s\": got error %zd, want \"%s\"", i, c->in, got, c->want);
        assert_int_equal((size_t)got, strlen(c->want));
        assert_int_equal(out[got], '\0');
        if (strcmp(out, c->want) != 0)
            fail_msg("case %zu \"%s\": got \"%s\", want \"%s\"", i, c->in, out, c->want);
    }
}

static void test_normalize_null_path(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(pt_path_normalize(NULL, 0, out, sizeof out), -EINVAL);
}

/* The input need not be NUL-terminated: only `len` bytes are read. */
static void test_normalize_reads_only_len(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(pt_path_normalize("/abc/def", 4, out, sizeof out), 4);
    assert_string_equal(out, "/abc");
    /* a '%' escape cut by `len` is truncated, whatever follows in memory */
    assert_int_equal(pt_path_normalize("/a%41", 4, out, sizeof out), -EINVAL);
}

static void test_normalize_capacity(void **state)
{
    (void)state;
    char out[16];
    const char *p = "/abc/def";
    /* exactly enough: the path and its NUL */
    assert_int_equal(pt_path_normalize(p, 8, out, 9), 8);
    assert_string_equal(out, "/abc/def");
    assert_int_equal(pt_path_normalize(p, 8, out, 8), -ENAMETOOLONG);
    assert_int_equal(pt_path_normalize(p, 8, out, 1), -ENAMETOOLONG);
    assert_int_equal(pt_path_normalize(p, 8, out, 0), -ENAMETOOLONG);
    assert_int_equal(pt_path_normalize("/", 1, out, 2), 1);
    assert_string_equal(out, "/");
    /* decoding shrinks: "/%41%42" needs room for "/AB" only */
    assert_int_equal(pt_path_normalize("/%41%42", 7, out, 4), 3);
    assert_string_equal(out, "/AB");
    /* dot segments are never written, so they cost no room */
    assert_int_equal(pt_path_normalize("/./././a", 8, out, 3), 2);
    assert_string_equal(out, "/a");
    /* documented: a segment later removed by ".." still has to fit */
    assert_int_equal(pt_path_normalize("/aaaa/../b", 10, out, 4), -ENAMETOOLONG);
    assert_int_equal(pt_path_normalize("/aaaa/../b", 10, out, 11), 2);
    assert_string_equal(out, "/b");
    /* an invalid path is reported as invalid even when it would not fit */
    assert_int_equal(pt_path_normalize("a", 1, out, 0), -EINVAL);
}

/* --- pt_path_encode ------------------------------------------------------------------------ */

static void test_encode(void **state)
{
    (void)state;
    char out[64];
    const char *p = "/Aa0-._~/";
    assert_int_equal(pt_path_encode(p, strlen(p), out, sizeof out), strlen(p));
    assert_string_equal(out, p);

    p = "/a b/\xc3\xbc?#%";
    assert_int_equal(pt_path_encode(p, strlen(p), out, sizeof out), 22);
    assert_string_equal(out, "/a%20b/%C3%BC%3F%23%25");

    p = "/a\r\nb";
    assert_int_equal(pt_path_encode(p, strlen(p), out, sizeof out), 9);
    assert_string_equal(out, "/a%0D%0Ab");

    assert_int_equal(pt_path_encode("", 0, out, 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(pt_path_encode("", 0, out, 0), -ENAMETOOLONG);
    /* "/ " needs 4 bytes plus the NUL */
    assert_int_equal(pt_path_encode("/ ", 2, out, 5), 4);
    assert_int_equal(pt_path_encode("/ ", 2, out, 4), -ENAMETOOLONG);
    assert_int_equal(pt_path_encode("/a", 2, out, 2), -ENAMETOOLONG);
}

/* Every name a file may have survives encode then normalise unchanged (what a redirect to a
 * directory relies on), except the control bytes, which normalise refuses. */
static void test_encode_round_trip(void **state)
{
    (void)state;
    char name[300], enc[1024], dec[300];
    size_t n = 0;
    name[n++] = '/';
    for (int c = 0x20; c <= 0xff; c++) {
        if (c != '/' && c != 0x7f)
            name[n++] = (char)c;
    }
    name[n++] = '/';
    name[n] = '\0';
    ssize_t elen = pt_path_encode(name, n, enc, sizeof enc);
    assert_true(elen > 0);
    for (ssize_t i = 0; i < elen; i++)
        assert_true(enc[i] > 0x20 && enc[i] < 0x7f);
    ssize_t dlen = pt_path_normalize(enc, (size_t)elen, dec, sizeof dec);
    assert_int_equal(dlen, n);
    assert_memory_equal(dec, name, n);

    char ctl[] = "/a\x01";
    elen = pt_path_encode(ctl, 3, enc, sizeof enc);
    assert_int_equal(pt_path_normalize(enc, (size_t)elen, dec, sizeof dec), -EINVAL);
}

/* --- pt_path_open_beneath ------------------------------------------------------------------ */

typedef int (*open_fn)(int rootfd, const char *rel, int flags);

typedef struct tree {
    char base[PATH_MAX]; /* a temporary directory: holds root/ and what lies outside it */
    char root[PATH_MAX];
    int rootfd;
} tree;

static void put_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char p[PATH_MAX];
    temp_put_text(dir, name, text);
    assert_int_equal(chmod(temp_path(p, dir, name), mode), 0);
}

static int tree_setup(void **state)
{
    tree *t = calloc(1, sizeof *t);
    assert_non_null(t);
    nothing_left_begin();
    temp_dir_make(t->base, sizeof t->base, "test-path");
    temp_path(t->root, t->base, "root");

    /* outside the root */
    put_file(t->base, "outside", "secret", 0644);
    temp_put_dir(t->base, "outdir", 0755);
    char outdir[PATH_MAX];
    temp_path(outdir, t->base, "outdir");
    put_file(outdir, "x", "secret", 0644);

    /* the root */
    temp_put_dir(t->base, "root", 0755);
    put_file(t->root, "file.txt", "inside", 0644);
    temp_put_dir(t->root, "sub", 0755);
    char sub[PATH_MAX];
    temp_path(sub, t->root, "sub");
    put_file(sub, "inner.txt", "inner", 0644);
    temp_put_link(t->root, "link_in", "file.txt");
    temp_put_link(t->root, "link_chain", "link_in");
    temp_put_link(t->root, "link_dir_in", "sub");
    temp_put_link(sub, "link_up", "../file.txt"); /* ".." that stays inside */
    temp_put_link(sub, "link_dot", "./inner.txt");
    temp_put_link(t->root, "link_passwd", "/etc/passwd");
    temp_put_link(t->root, "link_out", "../outside");
    temp_put_link(t->root, "dir_out", "../outdir");
    temp_put_link(t->root, "dir_abs", "/etc");
    temp_put_link(sub, "deep_out", "../../outside");
    temp_put_link(sub, "up_and_out", "../../root/../outside");
    char abs_in[PATH_MAX];
    temp_path(abs_in, t->root, "file.txt");
    temp_put_link(t->root, "link_abs_in", abs_in); /* absolute, even pointing inside: refused */
    temp_put_link(t->root, "loop_a", "loop_b");
    temp_put_link(t->root, "loop_b", "loop_a");
    temp_put_link(t->root, "dangling", "nowhere");
    temp_put_link(t->root, "link_self_proc", "/proc/self/root");
    put_file(t->root, "noperm", "hidden", 0000);
    temp_put_dir(t->root, "nosearch", 0700);
    char nosearch[PATH_MAX];
    temp_path(nosearch, t->root, "nosearch");
    put_file(nosearch, "f", "f", 0644);
    assert_int_equal(chmod(nosearch, 0600), 0);

    t->rootfd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(t->rootfd >= 0);
    *state = t;
    return 0;
}

static int tree_teardown(void **state)
{
    tree *t = *state;
    close(t->rootfd);
    /* give search permission back so the walk can descend and remove the contents */
    char nosearch[PATH_MAX];
    assert_int_equal(chmod(temp_path(nosearch, t->root, "nosearch"), 0700), 0);
    /* the tree is removed, all of it */
    temp_dir_remove(t->base);
    free(t);
    /* nothing left: and nothing else either */
    assert_nothing_left(NULL);
    return 0;
}

/* Opens `rel` with `fn` and returns what was read from it, or the negative errno as text. */
static const char *open_read(open_fn fn, int rootfd, const char *rel, int flags, char *buf,
                             size_t cap)
{
    int fd = fn(rootfd, rel, flags);
    if (fd < 0) {
        snprintf(buf, cap, "E%d", -fd);
        return buf;
    }
    int fdflags = fcntl(fd, F_GETFD);
    int flflags = fcntl(fd, F_GETFL);
    assert_true(fdflags & FD_CLOEXEC);
    assert_int_equal(flflags & O_ACCMODE, O_RDONLY);
    ssize_t n = read(fd, buf, cap - 1);
    if (n < 0)
        snprintf(buf, cap, "R%d", errno); /* a directory: EISDIR */
    else
        buf[n] = '\0';
    assert_int_equal(close(fd), 0);
    return buf;
}

typedef struct open_case {
    const char *rel;
    int flags;
    const char *want; /* what the file holds, or "E<errno>", or "R<errno>" for a directory */
} open_case;

static char errtext[16][16];

static const char *errstr(int slot, int err)
{
    snprintf(errtext[slot], sizeof errtext[slot], "E%d", err);
    return errtext[slot];
}

static void run_open_cases(open_fn fn, tree *t)
{
    char risdir[16];
    snprintf(risdir, sizeof risdir, "R%d", EISDIR);
    const open_case cases[] = {
        {"/file.txt", 0, "inside"},
        {"file.txt", 0, "inside"},
        {"//file.txt", 0, "inside"},
        {"/sub/inner.txt", 0, "inner"},
        {"/sub/../file.txt", 0, "inside"}, /* a raw ".." that stays inside */
        {"/link_in", 0, "inside"},
        {"/link_chain", 0, "inside"},
        {"/link_dir_in/inner.txt", 0, "inner"},
        {"/sub/link_up", 0, "inside"},
        {"/sub/link_dot", 0, "inner"},
        {"/file.txt", O_NONBLOCK, "inside"},
        {"/file.txt", O_CLOEXEC, "inside"},
        {"/", 0, risdir},
        {"", 0, risdir},
        {"/sub/", 0, risdir},
        {"/link_dir_in/", 0, risdir},
        {"/sub", O_DIRECTORY, risdir},
        /* leaving the root */
        {"/../outside", 0, errstr(0, EXDEV)},
        {"/sub/../../outside", 0, errstr(1, EXDEV)},
        {"/link_passwd", 0, errstr(2, EXDEV)},
        {"/link_out", 0, errstr(3, EXDEV)},
        {"/dir_out/x", 0, errstr(4, EXDEV)},
        {"/dir_out/", 0, errstr(5, EXDEV)},
        {"/dir_abs/passwd", 0, errstr(6, EXDEV)},
        {"/sub/deep_out", 0, errstr(7, EXDEV)},
        {"/sub/up_and_out", 0, errstr(8, EXDEV)},
        {"/link_abs_in", 0, errstr(9, EXDEV)},
        {"/link_self_proc/etc/passwd", 0, errstr(10, EXDEV)},
        /* plain failures */
        {"/missing", 0, errstr(11, ENOENT)},
        {"/dangling", 0, errstr(12, ENOENT)},
        {"/file.txt/", 0, errstr(13, ENOTDIR)},
        {"/file.txt/x", 0, errstr(14, ENOTDIR)},
        {"/file.txt", O_DIRECTORY, errstr(15, ENOTDIR)},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = open_read(fn, t->rootfd, cases[i].rel, cases[i].flags, buf, sizeof buf);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("\"%s\" flags %#x: got %s, want %s", cases[i].rel, cases[i].flags, got,
                     cases[i].want);
    }

    assert_int_equal(fn(t->rootfd, "/loop_a", 0), -ELOOP);
    assert_int_equal(fn(t->rootfd, "/loop_a/x", 0), -ELOOP);
    /* O_NOFOLLOW: a final symlink is refused, one on the way is still followed */
    assert_int_equal(fn(t->rootfd, "/link_in", O_NOFOLLOW), -ELOOP);
    assert_string_equal(
        open_read(fn, t->rootfd, "/link_dir_in/inner.txt", O_NOFOLLOW, buf, sizeof buf), "inner");
    /* only read-only opens */
    assert_int_equal(fn(t->rootfd, "/file.txt", O_WRONLY), -EINVAL);
    assert_int_equal(fn(t->rootfd, "/file.txt", O_RDWR), -EINVAL);
    assert_int_equal(fn(t->rootfd, "/new", O_CREAT), -EINVAL);
    assert_int_equal(fn(t->rootfd, "/file.txt", O_TRUNC), -EINVAL);
    assert_int_equal(fn(t->rootfd, "/file.txt", O_APPEND), -EINVAL);
    assert_int_equal(fn(t->rootfd, "/file.txt", O_PATH), -EINVAL);
    assert_int_equal(fn(t->rootfd, NULL, 0), -EINVAL);
    struct stat st;
    assert_int_equal(fstatat(t->rootfd, "new", &st, AT_SYMLINK_NOFOLLOW), -1);
    assert_int_equal(errno, ENOENT);
    assert_string_equal(open_read(fn, t->rootfd, "/file.txt", 0, buf, sizeof buf), "inside");

    /* permissions: root bypasses them, so only an unprivileged run can see EACCES */
    int fd = fn(t->rootfd, "/noperm", 0);
    int fd2 = fn(t->rootfd, "/nosearch/f", 0);
    if (geteuid() != 0) {
        assert_int_equal(fd, -EACCES);
        assert_int_equal(fd2, -EACCES);
    } else {
        if (fd >= 0)
            close(fd);
        if (fd2 >= 0)
            close(fd2);
    }
}

static void test_open_beneath(void **state)
{
    tree *t = *state;
    int fds = count_fds();
    run_open_cases(pt_path_open_beneath, t);
    assert_int_equal(count_fds(), fds);
}

static void test_open_beneath_walk(void **state)
{
    tree *t = *state;
    int fds = count_fds();
    run_open_cases(pt_path_open_beneath_walk, t);
    assert_int_equal(count_fds(), fds);
}

/* The way the static handler uses the two together: decode first, then open. */
static void test_normalize_then_open(void **state)
{
    tree *t = *state;
    int fds = count_fds();
    char rel[PATH_MAX], buf[64];
    const char *target = "/sub/%2e%2e/link_dir_in/%69nner.txt";
    assert_true(pt_path_normalize(target, strlen(target), rel, sizeof rel) > 0);
    assert_string_equal(rel, "/link_dir_in/inner.txt");
    assert_string_equal(open_read(pt_path_open_beneath, t->rootfd, rel, 0, buf, sizeof buf),
                        "inner");
    target = "/sub/..%2f..%2foutside";
    assert_int_equal(pt_path_normalize(target, strlen(target), rel, sizeof rel), -EINVAL);
    assert_int_equal(count_fds(), fds);
}

/* A path that cannot fit in PATH_MAX once a symlink is expanded is refused, not truncated. */
static void test_walk_long_path(void **state)
{
    tree *t = *state;
    int fds = count_fds();
    static char rel[PATH_MAX + 8];
    memset(rel, 'a', sizeof rel - 1);
    rel[0] = '/';
    rel[sizeof rel - 1] = '\0';
    assert_int_equal(pt_path_open_beneath_walk(t->rootfd, rel, 0), -ENAMETOOLONG);
    char name[NAME_MAX + 3];
    memset(name, 'b', sizeof name - 1);
    name[0] = '/';
    name[sizeof name - 1] = '\0';
    assert_int_equal(pt_path_open_beneath_walk(t->rootfd, name, 0), -ENAMETOOLONG);
    assert_int_equal(pt_path_open_beneath(t->rootfd, name, 0), -ENAMETOOLONG);
    assert_int_equal(count_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        NOTHING_LEFT_TEST(test_normalize_corpus),
        NOTHING_LEFT_TEST(test_normalize_null_path),
        NOTHING_LEFT_TEST(test_normalize_reads_only_len),
        NOTHING_LEFT_TEST(test_normalize_capacity),
        NOTHING_LEFT_TEST(test_encode),
        NOTHING_LEFT_TEST(test_encode_round_trip),
    };
    /* a tree per test: a failed teardown (something left behind) fails that test */
    const struct CMUnitTest fs[] = {
        cmocka_unit_test_setup_teardown(test_open_beneath, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_open_beneath_walk, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_normalize_then_open, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_walk_long_path, tree_setup, tree_teardown),
    };
    int failed = cmocka_run_group_tests_name("path", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("path_open", fs, NULL, NULL);
    return failed;
}
