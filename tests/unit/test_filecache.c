/* The file cache: small files in memory, larger ones kept open, misses remembered;
 * revalidation, the caps, and that every fd it took is closed. Its variant store: compressed
 * copies under the file's identity, in the same budget, dropped with a changed file. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/handlers/filecache.h"
#include "server/core/compress.h"
#include "server/core/encoding.h"
#include "server/core/request.h"
#include "tests/support.h"

static char dir[PATH_MAX];
static int root_fd = -1;

static int setup(void **state)
{
    nothing_left_begin();
    temp_dir_make(dir, sizeof dir, "fc");
    root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return root_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    close(root_fd);
    root_fd = -1;
    temp_dir_remove(dir);
    assert_nothing_left(NULL);
    return 0;
}

static void put_file(const char *rel, const char *data, size_t len)
{
    temp_put_file(dir, rel, data, len);
}

/* Opens rel and stats it. */
static int open_file(const char *rel, struct stat *st)
{
    int fd = openat(root_fd, rel, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, st), 0);
    return fd;
}

static const pt_filecache_meta META = {.content_type = "text/plain", .etag = true};

static pt_filecache *cache(size_t max_bytes, size_t max_file, double validity, size_t max_open)
{
    pt_filecache_options o = {max_bytes, max_file, validity, max_open, 60};
    pt_filecache *fc = pt_filecache_new(&o);
    assert_non_null(fc);
    return fc;
}

#define OWNER ((const void *)0x1)
#define K(s) (s), strlen(s)

/* Sets the modification time of `rel` to `t` (seconds since the epoch). */
static void set_mtime(const char *rel, time_t t)
{
    temp_set_mtime(dir, rel, t);
}

static void test_memory_entry(void **state)
{
    put_file("a.txt", "hello", 5);
    set_mtime("a.txt", 1700000000); /* 0x6553f100 */
    pt_filecache *fc = cache(1 << 20, 1024, 1, 10);
    struct stat st;
    int fd = open_file("a.txt", &st);
    pt_filecache_meta m = {.content_type = "text/plain",
                           .encoding = "gzip",
                           .etag = true,
                           .vary = true,
                           .accept_ranges = true};
    const pt_cached_file *cf =
        pt_filecache_put(fc, OWNER, 3, K("/a.txt"), "/a.txt", &fd, &st, &m, 0);
    assert_non_null(cf);
    assert_true(fd >= 0); /* a memory entry leaves the fd with the caller */
    close(fd);
    assert_false(cf->absent);
    assert_true(cf->encoded); /* a Content-Encoding line */
    assert_int_equal(cf->fd, -1);
    assert_int_equal(cf->size, 5);
    assert_memory_equal(cf->body, "hello", 5);
    assert_int_equal(cf->mtime, 1700000000);
    /* nginx's ETag, "MTIME-SIZE" in hex (docs/static.md), and the mtime as an HTTP date */
    const char *etag = "\"6553f100-5\"";
    assert_int_equal(cf->etag_len, strlen(etag));
    assert_memory_equal(cf->etag, etag, cf->etag_len);
    assert_string_equal(cf->content_type, "text/plain");
    const char *want =
        "Content-Type: text/plain\r\nContent-Encoding: gzip\r\nAccept-Ranges: bytes\r\n"
        "Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\nETag: \"6553f100-5\"\r\n"
        "Vary: Accept-Encoding\r\n";
    assert_int_equal(cf->head_len, strlen(want));
    assert_memory_equal(cf->head, want, cf->head_len);
    assert_int_equal(cf->type_len, strlen("Content-Type: text/plain\r\n"));
    assert_memory_equal(cf->head + cf->validators_off, "Last-Modified: ", 15);

    /* the same key hits; another variant or owner does not */
    assert_ptr_equal(pt_filecache_get(fc, OWNER, 3, root_fd, K("/a.txt"), 0.5), cf);
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/a.txt"), 0.5));
    assert_null(pt_filecache_get(fc, (const void *)0x2, 3, root_fd, K("/a.txt"), 0.5));
    pt_filecache_stats s;
    pt_filecache_get_stats(fc, &s);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.open_fds, 0);
    assert_true(s.bytes > 5);
    pt_filecache_free(fc);
    pt_filecache_free(NULL);
}

/* A changed file drops its entry at the first lookup after the validity interval. */
static void test_revalidation(void **state)
{
    put_file("b.txt", "one", 3);
    pt_filecache *fc = cache(1 << 20, 1024, 1.0, 10);
    struct stat st;
    int fd = open_file("b.txt", &st);
    assert_non_null(pt_filecache_put(fc, OWNER, 0, K("/b.txt"), "b.txt", &fd, &st, &META, 100));
    close(fd);
    put_file("b.txt", "three", 5);
    /* within the interval the entry is trusted without a stat */
    const pt_cached_file *cf = pt_filecache_get(fc, OWNER, 0, root_fd, K("/b.txt"), 100.5);
    assert_non_null(cf);
    assert_memory_equal(cf->body, "one", 3);
    /* past it, the stat sees the change */
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/b.txt"), 101.0));
    /* a clock that went back revalidates too */
    fd = open_file("b.txt", &st);
    assert_non_null(pt_filecache_put(fc, OWNER, 0, K("/b.txt"), "b.txt", &fd, &st, &META, 200));
    close(fd);
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/b.txt"), 200.1));
    assert_int_equal(unlinkat(root_fd, "b.txt", 0), 0);
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/b.txt"), 150));
    pt_filecache_free(fc);
}

/* A body queued without a copy holds its entry: dropped from the cache (the file changed) or
 * with the cache freed, the entry lives until its last release. ASan sees a read after the
 * free; LeakSanitizer an entry never freed. */
static void test_held_body_outlives_its_entry(void **state)
{
    put_file("h.txt", "held", 4);
    pt_filecache *fc = cache(1 << 20, 1024, 0, 10);
    struct stat st;
    int fd = open_file("h.txt", &st);
    const pt_cached_file *cf =
        pt_filecache_put(fc, OWNER, 0, K("/h.txt"), "h.txt", &fd, &st, &META, 0);
    assert_non_null(cf);
    close(fd);
    pt_filecache_hold(cf); /* two responses queued */
    pt_filecache_hold(cf);
    put_file("h.txt", "changed", 7);
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/h.txt"), 1)); /* dropped */
    pt_filecache_stats s;
    pt_filecache_get_stats(fc, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0); /* no longer charged to the cache */
    assert_memory_equal(cf->body, "held", 4);
    pt_filecache_release((void *)cf);
    assert_memory_equal(cf->body, "held", 4); /* the second response still sends it */
    pt_filecache_release((void *)cf);

    /* A cache freed while a body is held (a reload while a response is queued). */
    fd = open_file("h.txt", &st);
    cf = pt_filecache_put(fc, OWNER, 0, K("/h.txt"), "h.txt", &fd, &st, &META, 2);
    assert_non_null(cf);
    close(fd);
    pt_filecache_hold(cf);
    pt_filecache_free(fc);
    assert_memory_equal(cf->body, "changed", 7);
    pt_filecache_release((void *)cf);
}

/* Validity 0: every lookup stats; a file replaced by rename (same size) is seen at once. */
static void test_validity_zero_and_rename(void **state)
{
    put_file("c.txt", "aaaa", 4);
    pt_filecache *fc = cache(1 << 20, 1024, 0, 10);
    struct stat st;
    int fd = open_file("c.txt", &st);
    assert_non_null(pt_filecache_put(fc, OWNER, 0, K("/"), "c.txt", &fd, &st, &META, 5));
    close(fd);
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/"), 5));
    put_file("c.new", "bbbb", 4);
    assert_int_equal(renameat(root_fd, "c.new", root_fd, "c.txt"), 0);
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/"), 5));
    pt_filecache_free(fc);
}

/* A file over max_file is kept open: the cache takes the fd and closes it when dropped. */
static void test_open_entries(void **state)
{
    char big[4096];
    memset(big, 'x', sizeof big);
    put_file("big1", big, sizeof big);
    put_file("big2", big, sizeof big);
    put_file("big3", big, sizeof big);
    int fds = count_fds();
    pt_filecache *fc = cache(1 << 20, 1024, 1, 2);
    struct stat st;
    const char *names[] = {"big1", "big2", "big3"};
    const char *keys[] = {"/big1", "/big2", "/big3"};
    for (int i = 0; i < 3; i++) {
        int fd = open_file(names[i], &st);
        const pt_cached_file *cf =
            pt_filecache_put(fc, OWNER, 0, K(keys[i]), names[i], &fd, &st, &META, i);
        assert_non_null(cf);
        assert_int_equal(fd, -1); /* taken */
        assert_true(cf->fd >= 0);
        assert_null(cf->body);
        assert_int_equal(cf->size, sizeof big);
        char b[4];
        assert_int_equal(pread(cf->fd, b, 4, 100), 4);
        assert_memory_equal(b, "xxxx", 4);
    }
    /* max_open 2: the least recently used one went, with its fd */
    assert_int_equal(count_fds(), fds + 2);
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/big1"), 3));
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/big2"), 3));
    pt_filecache_stats s;
    pt_filecache_get_stats(fc, &s);
    assert_int_equal(s.open_fds, 2);
    /* a replaced file drops its fd */
    put_file("big3", "short", 5);
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/big3"), 10));
    assert_int_equal(count_fds(), fds + 1);
    pt_filecache_free(fc);
    assert_int_equal(count_fds(), fds);
}

/* Open entries unused for `inactive` are closed when something new comes in. */
static void test_inactive(void **state)
{
    char big[2048];
    memset(big, 'y', sizeof big);
    put_file("i1", big, sizeof big);
    put_file("i2", big, sizeof big);
    int fds = count_fds();
    pt_filecache *fc = cache(1 << 20, 1024, 1000, 10);
    struct stat st;
    int fd = open_file("i1", &st);
    assert_non_null(pt_filecache_put(fc, OWNER, 0, K("/i1"), "i1", &fd, &st, &META, 0));
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/i1"), 30)); /* used at 30 */
    fd = open_file("i2", &st);
    assert_non_null(pt_filecache_put(fc, OWNER, 0, K("/i2"), "i2", &fd, &st, &META, 89));
    assert_int_equal(count_fds(), fds + 2);
    pt_filecache_sweep(fc, 95); /* i1 unused for 65 s */
    assert_int_equal(count_fds(), fds + 1);
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/i1"), 95));
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/i2"), 95));
    pt_filecache_free(fc);
    assert_int_equal(count_fds(), fds);
}

/* A miss is remembered until the file appears. */
static void test_absent(void **state)
{
    pt_filecache *fc = cache(1 << 20, 1024, 1, 10);
    const pt_cached_file *cf = pt_filecache_put_absent(fc, OWNER, 2, K("/x"), "x.gz", 0);
    assert_non_null(cf);
    assert_true(cf->absent);
    cf = pt_filecache_get(fc, OWNER, 2, root_fd, K("/x"), 0.5);
    assert_non_null(cf);
    assert_true(cf->absent);
    /* still missing at revalidation: kept */
    assert_non_null(pt_filecache_get(fc, OWNER, 2, root_fd, K("/x"), 1.5));
    pt_filecache_stats s;
    pt_filecache_get_stats(fc, &s);
    assert_int_equal(s.absent, 1);
    /* a missing directory on the way is a miss too */
    assert_non_null(pt_filecache_put_absent(fc, OWNER, 0, K("/d/y"), "x.gz/y", 0));
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/d/y"), 5));
    put_file("x.gz", "z", 1);
    assert_null(pt_filecache_get(fc, OWNER, 2, root_fd, K("/x"), 3));
    /* "x.gz/y": x.gz is a file now, still ENOTDIR, still absent */
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/d/y"), 10));
    pt_filecache_free(fc);

    /* without open-file entries nothing is remembered */
    fc = cache(1 << 20, 1024, 1, 0);
    assert_null(pt_filecache_put_absent(fc, OWNER, 0, K("/x"), "nope", 0));
    assert_false(pt_filecache_keeps_open(fc));
    pt_filecache_free(fc);
}

/* The memory cap evicts the least recently used; a file bigger than the cap is not held. */
static void test_memory_cap(void **state)
{
    char data[1000];
    memset(data, 'm', sizeof data);
    put_file("m1", data, sizeof data);
    put_file("m2", data, sizeof data);
    put_file("m3", data, sizeof data);
    /* room for two entries of ~1.3 KiB each */
    pt_filecache *fc = cache(3000, 2000, 100, 0);
    struct stat st;
    const char *names[] = {"m1", "m2", "m3"};
    const char *keys[] = {"/m1", "/m2", "/m3"};
    for (int i = 0; i < 3; i++) {
        int fd = open_file(names[i], &st);
        assert_non_null(pt_filecache_put(fc, OWNER, 0, K(keys[i]), names[i], &fd, &st, &META, 0));
        close(fd);
        if (i == 1) /* m1 used more recently than m2 */
            assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/m1"), 0));
    }
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/m1"), 0));
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/m2"), 0));
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/m3"), 0));
    pt_filecache_stats s;
    pt_filecache_get_stats(fc, &s);
    assert_true(s.bytes <= 3000);
    assert_int_equal(s.entries, 2);
    pt_filecache_free(fc);

    /* max_file: larger files are not held in memory, and with no open entries not at all */
    fc = cache(1 << 20, 999, 100, 0);
    int fd = open_file("m1", &st);
    assert_null(pt_filecache_put(fc, OWNER, 0, K("/m1"), "m1", &fd, &st, &META, 0));
    assert_true(fd >= 0); /* untouched */
    close(fd);
    pt_filecache_free(fc);

    /* file_cache_size off: files go to the open-file entries */
    fc = cache(0, 32768, 100, 5);
    assert_int_equal(pt_filecache_max_file(fc), 0);
    fd = open_file("m1", &st);
    const pt_cached_file *cf = pt_filecache_put(fc, OWNER, 0, K("/m1"), "m1", &fd, &st, &META, 0);
    assert_non_null(cf);
    assert_int_equal(fd, -1);
    assert_null(cf->body);
    pt_filecache_free(fc);
}

/* Many entries: the table grows, and every one is still found. */
static void test_many(void **state)
{
    put_file("s", "s", 1);
    pt_filecache *fc = cache(1 << 24, 1024, 100, 0);
    struct stat st;
    int fd = open_file("s", &st);
    char key[32];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "/k%d", i);
        assert_non_null(pt_filecache_put(fc, OWNER, i % 4, K(key), "s", &fd, &st, &META, 0));
    }
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "/k%d", i);
        assert_non_null(pt_filecache_get(fc, OWNER, i % 4, root_fd, K(key), 0));
        assert_null(pt_filecache_get(fc, OWNER, (i + 1) % 4, root_fd, K(key), 0));
    }
    /* replacing an entry keeps one */
    assert_non_null(pt_filecache_put(fc, OWNER, 0, K("/k0"), "s", &fd, &st, &META, 0));
    pt_filecache_stats s;
    pt_filecache_get_stats(fc, &s);
    assert_int_equal(s.entries, 500);
    close(fd);
    pt_filecache_free(fc);
}

static void test_describe(void **state)
{
    put_file("d.html", "<p>", 3);
    set_mtime("d.html", 1700000000);
    struct stat st;
    int fd = open_file("d.html", &st);
    close(fd);
    pt_cached_file cf;
    char buf[512];
    pt_filecache_meta m = {.content_type = "text/html", .etag = false};
    assert_int_equal(pt_filecache_describe(&cf, buf, sizeof buf, &st, &m), 0);
    assert_false(cf.encoded);
    assert_int_equal(cf.fd, -1);
    assert_null(cf.body);
    assert_int_equal(cf.size, 3);
    /* etag off: the line goes, the tag stays */
    const char *head =
        "Content-Type: text/html\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n";
    assert_int_equal(cf.head_len, strlen(head));
    assert_memory_equal(cf.head, head, cf.head_len);
    assert_int_equal(cf.etag_len, strlen("\"6553f100-3\""));
    assert_memory_equal(cf.etag, "\"6553f100-3\"", cf.etag_len);
    assert_int_equal(pt_filecache_describe(&cf, buf, 40, &st, &m), -ENAMETOOLONG);
}

/* ---- the variant store ---- */

/* Caches `rel` in memory under the key "/" + rel at `now`. */
static const pt_cached_file *cache_file(pt_filecache *fc, const char *rel, double now)
{
    char key[PATH_MAX];
    snprintf(key, sizeof key, "/%s", rel);
    struct stat st;
    int fd = open_file(rel, &st);
    const pt_cached_file *cf = pt_filecache_put(fc, OWNER, 0, K(key), rel, &fd, &st, &META, now);
    close(fd);
    assert_non_null(cf);
    return cf;
}

/* The key of a copy of the file of `cf` in `enc` at `level`, as the static handler builds it. */
static pt_variant_key key_of(const pt_cached_file *cf, pt_encoding enc, int level)
{
    return (pt_variant_key){.dev = cf->dev,
                            .ino = cf->ino,
                            .size = cf->size,
                            .mtime_ns = cf->mtime_ns,
                            .encoding = (int)enc,
                            .level = level};
}

static pt_filecache_stats stats(const pt_filecache *fc)
{
    pt_filecache_stats s;
    pt_filecache_get_stats(fc, &s);
    return s;
}

/* An entry carries its file's identity; a copy is found by the whole key and no other. */
static void test_variant_put_get(void **state)
{
    put_file("v.txt", "a body to compress", 18);
    char p[PATH_MAX];
    struct timespec ts[2] = {{.tv_sec = 1700000000, .tv_nsec = 123456789},
                             {.tv_sec = 1700000000, .tv_nsec = 123456789}};
    assert_int_equal(utimensat(AT_FDCWD, temp_path(p, dir, "v.txt"), ts, 0), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);

    pt_filecache *fc = cache(1 << 20, 1024, 1, 10);
    pt_variant_store *vs = pt_filecache_variants(fc);
    assert_non_null(vs);
    const pt_cached_file *cf = cache_file(fc, "v.txt", 0);
    assert_true(cf->dev == st.st_dev);
    assert_true(cf->ino == st.st_ino);
    assert_true(cf->mtime_ns == 1700000000123456789LL);
    /* an uncached file is described with the same identity */
    pt_cached_file tmp;
    char buf[512];
    assert_int_equal(pt_filecache_describe(&tmp, buf, sizeof buf, &st, &META), 0);
    assert_true(tmp.dev == st.st_dev && tmp.ino == st.st_ino);
    assert_true(tmp.mtime_ns == 1700000000123456789LL);
    assert_false(cf->encoded);
    pt_filecache_meta gz = META;
    gz.encoding = "gzip";
    assert_int_equal(pt_filecache_describe(&tmp, buf, sizeof buf, &st, &gz), 0);
    assert_true(tmp.encoded);

    pt_variant_key k = key_of(cf, PT_ENC_GZIP, 6);
    size_t len = 0;
    void *holder = NULL;
    assert_null(vs->get(vs, &k, &len, &holder));
    size_t before = stats(fc).bytes;
    vs->put(vs, &k, "GZ6", 3);
    const char *got = vs->get(vs, &k, &len, &holder);
    assert_non_null(got);
    assert_non_null(holder);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "GZ6", 3);
    pt_filecache_stats s = stats(fc);
    assert_int_equal(s.copies, 1);
    assert_true(s.copy_bytes >= 3);
    assert_int_equal(s.bytes, before + s.copy_bytes); /* charged to the cache */
    assert_int_equal(s.copy_hits, 1);
    assert_int_equal(s.copy_misses, 1);

    /* any other field of the key misses */
    pt_variant_key other[] = {k, k, k, k, k, k};
    other[0].level = 5;
    other[1].encoding = PT_ENC_BR;
    other[2].ino++;
    other[3].dev++;
    other[4].size++;
    other[5].mtime_ns++;
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        assert_null(vs->get(vs, &other[i], &len, &holder));

    /* another level is another copy; putting a key again replaces its copy */
    vs->put(vs, &other[0], "GZ5!", 4);
    vs->put(vs, &k, "gz6'", 4);
    assert_int_equal(stats(fc).copies, 2);
    got = vs->get(vs, &k, &len, &holder);
    assert_non_null(got);
    assert_int_equal(len, 4);
    assert_memory_equal(got, "gz6'", 4);
    got = vs->get(vs, &other[0], &len, &holder);
    assert_non_null(got);
    assert_memory_equal(got, "GZ5!", 4);
    /* the identity entry is still there beside its copies */
    assert_ptr_equal(pt_filecache_get(fc, OWNER, 0, root_fd, K("/v.txt"), 0.5), cf);
    pt_filecache_free(fc);

    /* no memory part, no store */
    fc = cache(0, 1024, 1, 10);
    assert_null(pt_filecache_variants(fc));
    pt_filecache_free(fc);
    assert_null(pt_filecache_variants(NULL));
}

/* A copy held by a queued response outlives its eviction, and is freed at its last release
 * (ASan sees a read after the free, LeakSanitizer a copy never freed). */
static void test_variant_held_copy_outlives_eviction(void **state)
{
    put_file("e.txt", "e", 1);
    pt_filecache *fc = cache(64 * 1024, 1024, 100, 0);
    pt_variant_store *vs = pt_filecache_variants(fc);
    const pt_cached_file *cf = cache_file(fc, "e.txt", 0);
    char body[4000];
    memset(body, 'A', sizeof body);
    pt_variant_key first = key_of(cf, PT_ENC_BR, 0); /* cf goes with the copies below */
    vs->put(vs, &first, body, sizeof body);
    size_t len;
    void *holder;
    const char *held = vs->get(vs, &first, &len, &holder);
    assert_non_null(held);
    void *held_by = holder;
    vs->hold(held_by); /* two responses queued */
    vs->hold(held_by);
    size_t held_bytes = stats(fc).copy_bytes;

    /* 64 KiB holds about fifteen of these: thirty more push the first out */
    memset(body, 'B', sizeof body);
    for (int level = 1; level <= 30; level++) {
        pt_variant_key k = first;
        k.level = level;
        vs->put(vs, &k, body, sizeof body);
    }
    assert_null(vs->get(vs, &first, &len, &holder));
    pt_filecache_stats s = stats(fc);
    assert_true(s.copies > 0 && s.copies < 30);
    /* the evicted copy is no longer charged: what is, is the copies still kept */
    assert_int_equal(s.copy_bytes, s.copies * held_bytes);
    assert_true(s.bytes <= 64 * 1024);
    assert_int_equal(len, sizeof body);
    for (size_t i = 0; i < sizeof body; i++)
        assert_int_equal(held[i], 'A');
    vs->release(held_by);
    assert_int_equal(held[0], 'A'); /* the second response still sends it */
    vs->release(held_by);
    pt_filecache_free(fc);
}

/* Files in memory and copies share max_bytes: whatever the mix, the cache is never charged
 * more, and what it still holds is all charged. */
static void test_variant_bound_mixed(void **state)
{
    enum { MAX = 20000, FILE_LEN = 1000, N = 40 };
    char data[3000];
    memset(data, 'f', sizeof data);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "f%d", i);
        put_file(name, data, FILE_LEN);
    }
    pt_filecache *fc = cache(MAX, 2000, 100, 0);
    pt_variant_store *vs = pt_filecache_variants(fc);
    pt_variant_key keys[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "f%d", i);
        const pt_cached_file *cf = cache_file(fc, name, 0);
        assert_true(stats(fc).bytes <= MAX);
        keys[i] = key_of(cf, PT_ENC_ZSTD, i % 5);
        lens[i] = (size_t)(500 + 50 * i); /* 500..2450: a copy may be up to MAX / 8 here */
        vs->put(vs, &keys[i], data, lens[i]);
        assert_true(stats(fc).bytes <= MAX);
    }
    size_t files = 0, copies = 0, copy_len = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "/f%d", i);
        if (pt_filecache_get(fc, OWNER, 0, root_fd, K(name), 0))
            files++;
        size_t len;
        void *holder;
        if (vs->get(vs, &keys[i], &len, &holder)) {
            assert_int_equal(len, lens[i]);
            copies++;
            copy_len += len;
        }
    }
    pt_filecache_stats s = stats(fc);
    assert_true(files > 0 && files < N);
    assert_true(copies > 0 && copies < N);
    assert_int_equal(s.entries, files + copies);
    assert_int_equal(s.copies, copies);
    assert_true(s.copy_bytes >= copy_len);
    assert_true(s.bytes >= s.copy_bytes + files * FILE_LEN);
    assert_true(s.bytes <= MAX);
    pt_filecache_free(fc);
}

/* One LRU of bytes: copies push out the least recently used files, and files copies. */
static void test_variant_shared_lru(void **state)
{
    enum { MAX = 20000, FILE_LEN = 1000 };
    char data[2000];
    memset(data, 's', sizeof data);
    char name[32];
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "s%d", i);
        put_file(name, data, FILE_LEN);
    }
    pt_filecache *fc = cache(MAX, 2000, 100, 0);
    pt_variant_store *vs = pt_filecache_variants(fc);
    const pt_cached_file *last = NULL;
    for (int i = 0; i < 10; i++) { /* about two thirds of MAX */
        snprintf(name, sizeof name, "s%d", i);
        last = cache_file(fc, name, 0);
    }
    assert_int_equal(stats(fc).entries, 10);
    pt_variant_key k[4];
    for (int level = 0; level < 4; level++)
        k[level] = key_of(last, PT_ENC_BR, level + 1);
    for (int level = 0; level < 4; level++) { /* more than a third of MAX */
        vs->put(vs, &k[level], data, sizeof data);
    }
    size_t len;
    void *holder;
    for (int level = 0; level < 4; level++)
        assert_non_null(vs->get(vs, &k[level], &len, &holder));
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/s0"), 0)); /* the oldest file */
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/s9"), 0));

    /* twenty new files: the copies are the least recently used now */
    for (int i = 10; i < 30; i++) {
        snprintf(name, sizeof name, "s%d", i);
        cache_file(fc, name, 0);
    }
    for (int level = 0; level < 4; level++)
        assert_null(vs->get(vs, &k[level], &len, &holder));
    assert_int_equal(stats(fc).copies, 0);
    assert_int_equal(stats(fc).copy_bytes, 0);
    pt_filecache_free(fc);
}

/* A file that changed drops the copies of what it was, at the lookup that notices; other
 * files' copies stay. A copy held then is freed at its last release. */
static void test_variant_dropped_with_changed_file(void **state)
{
    put_file("w.txt", "one", 3);
    put_file("o.txt", "other", 5);
    pt_filecache *fc = cache(1 << 20, 1024, 1.0, 10);
    pt_variant_store *vs = pt_filecache_variants(fc);
    const pt_cached_file *cf = cache_file(fc, "w.txt", 100);
    pt_variant_key gz = key_of(cf, PT_ENC_GZIP, 1), br = key_of(cf, PT_ENC_BR, 4);
    const pt_cached_file *ocf = cache_file(fc, "o.txt", 100);
    pt_variant_key other = key_of(ocf, PT_ENC_GZIP, 1);
    vs->put(vs, &gz, "w-gzip", 6);
    vs->put(vs, &br, "w-br", 4);
    vs->put(vs, &other, "o-gzip", 6);
    size_t len;
    void *holder;
    const char *held = vs->get(vs, &br, &len, &holder);
    assert_non_null(held);
    void *held_by = holder;
    vs->hold(held_by); /* a response is sending it */
    pt_filecache_stats before = stats(fc);
    assert_int_equal(before.copies, 3);

    put_file("w.txt", "three", 5);
    /* within the interval nothing is stat'ed: the copies stay */
    assert_non_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/w.txt"), 100.5));
    assert_int_equal(stats(fc).copies, 3);
    /* past it the stat sees the change: the entry and its copies go */
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/w.txt"), 101.0));
    pt_filecache_stats after = stats(fc);
    assert_int_equal(after.copies, 1);
    assert_true(after.copy_bytes < before.copy_bytes);
    assert_null(vs->get(vs, &gz, &len, &holder));
    assert_null(vs->get(vs, &br, &len, &holder));
    assert_non_null(vs->get(vs, &other, &len, &holder));
    assert_memory_equal(held, "w-br", 4);
    vs->release(held_by);

    /* a file gone: its copies go with its entry too */
    ocf = pt_filecache_get(fc, OWNER, 0, root_fd, K("/o.txt"), 101.0);
    assert_non_null(ocf);
    assert_int_equal(unlinkat(root_fd, "o.txt", 0), 0);
    assert_null(pt_filecache_get(fc, OWNER, 0, root_fd, K("/o.txt"), 102.5));
    assert_int_equal(stats(fc).copies, 0);
    assert_int_equal(stats(fc).copy_bytes, 0);
    pt_filecache_free(fc);
}

/* An entry put again over one of another identity (the file changed, seen on the way in)
 * drops the old identity's copies; put again over the same file, it keeps them. */
static void test_variant_dropped_when_replaced(void **state)
{
    put_file("r.txt", "first", 5);
    pt_filecache *fc = cache(1 << 20, 1024, 100, 10);
    pt_variant_store *vs = pt_filecache_variants(fc);
    const pt_cached_file *cf = cache_file(fc, "r.txt", 0);
    pt_variant_key k = key_of(cf, PT_ENC_ZSTD, 3);
    vs->put(vs, &k, "r-zstd", 6);
    cache_file(fc, "r.txt", 1); /* the same file again */
    assert_int_equal(stats(fc).copies, 1);
    put_file("r.txt", "second!", 7);
    cache_file(fc, "r.txt", 2);
    assert_int_equal(stats(fc).copies, 0);
    size_t len;
    void *holder;
    assert_null(vs->get(vs, &k, &len, &holder));
    pt_filecache_free(fc);
}

/* Which bodies may be kept compressed: up to max(max_file, 1 MiB), never above max_bytes / 8;
 * a copy longer than that is not kept either. */
static void test_variant_wants(void **state)
{
    /* the defaults (32m, 32k): 1 MiB */
    pt_filecache *fc = cache(32 << 20, 32 << 10, 1, 10);
    pt_variant_store *vs = pt_filecache_variants(fc);
    assert_true(vs->wants(vs, 0));
    assert_true(vs->wants(vs, 1 << 20));
    assert_false(vs->wants(vs, (1 << 20) + 1));
    pt_filecache_free(fc);

    /* a max_file above 1 MiB raises it */
    fc = cache(64 << 20, 2 << 20, 1, 10);
    vs = pt_filecache_variants(fc);
    assert_true(vs->wants(vs, 2 << 20));
    assert_false(vs->wants(vs, (2 << 20) + 1));
    pt_filecache_free(fc);

    /* max_bytes / 8 bounds it: 1m -> 128k */
    fc = cache(1 << 20, 32 << 10, 1, 10);
    vs = pt_filecache_variants(fc);
    assert_true(vs->wants(vs, 128 << 10));
    assert_false(vs->wants(vs, (128 << 10) + 1));
    assert_false(vs->wants(vs, UINT64_MAX));
    size_t big = (128 << 10) + 1;
    char *buf = calloc(1, big);
    assert_non_null(buf);
    pt_variant_key k = {.dev = 1, .ino = 2, .size = 300000, .mtime_ns = 4, .encoding = PT_ENC_GZIP};
    vs->put(vs, &k, buf, big); /* too long */
    assert_int_equal(stats(fc).copies, 0);
    vs->put(vs, &k, buf, big - 1);
    assert_int_equal(stats(fc).copies, 1);
    free(buf);
    pt_filecache_free(fc);
}

/* A cache freed while a copy is held (a reload while a response is queued): the copy lives
 * until its release. */
static void test_variant_cache_freed_while_held(void **state)
{
    pt_filecache *fc = cache(1 << 20, 1024, 1, 10);
    pt_variant_store *vs = pt_filecache_variants(fc);
    pt_variant_key k = {.dev = 7, .ino = 8, .size = 100, .mtime_ns = 9, .encoding = PT_ENC_BR};
    vs->put(vs, &k, "kept", 4);
    size_t len;
    void *holder;
    const char *held = vs->get(vs, &k, &len, &holder);
    assert_non_null(held);
    vs->hold(holder);
    /* the store goes with its cache: a response keeps the function, as pt_response does */
    void (*release)(void *) = vs->release;
    pt_filecache_free(fc);
    assert_memory_equal(held, "kept", 4);
    release(holder);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_memory_entry),
        T(test_revalidation),
        T(test_held_body_outlives_its_entry),
        T(test_validity_zero_and_rename),
        T(test_open_entries),
        T(test_inactive),
        T(test_absent),
        T(test_memory_cap),
        T(test_many),
        T(test_describe),
        T(test_variant_put_get),
        T(test_variant_held_copy_outlives_eviction),
        T(test_variant_bound_mixed),
        T(test_variant_shared_lru),
        T(test_variant_dropped_with_changed_file),
        T(test_variant_dropped_when_replaced),
        T(test_variant_wants),
        T(test_variant_cache_freed_while_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
