/*
 * What every C test program needs besides cmocka (included before this file): the end-of-test
 * check that nothing is left, the count of open descriptors, temporary trees (made, filled and
 * removed), and running a libev loop for a while or until something holds.
 *
 * The fixtures some tests share live beside this file: tests/support/cert.h (throw-away
 * certificates), tests/support/pair.h (a connection over the pair transport, the test as its
 * client), tests/support/vhost.h (a virtual host built from conf text) and tests/support/http1.h
 * (the HTTP/1 protocol over pair connections, with site ops of the test's own).
 *
 * Every test ends like libuv's MAKE_VALGRIND_HAPPY: nothing_left_begin() when it starts,
 * before it makes anything (its loop included), and assert_nothing_left(loop) when it ends,
 * after it has freed what it made. That check fails the test if anything of these is left:
 *
 *   - a live custodian, or one shut down and not yet reaped (porter's own exit check counts
 *     the same, pt_resource_counts_get(): everything porter allocates belongs to one);
 *   - a buffer chunk handed out and not returned;
 *   - a watcher on the test's loop: pending, or active and referenced (an unreferenced one, such
 *     as a manager's reaper, is not seen here; it belongs to a custodian, which is);
 *   - a descriptor that was not open when the test started.
 *
 * The counts are the thread's own (porter keeps them per thread), the descriptors the process's.
 */
#ifndef PORTER_TESTS_SUPPORT_H
#define PORTER_TESTS_SUPPORT_H

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"

/* The descriptors this process has open (the one that reads /proc/self/fd aside), or -1 if it
 * cannot tell. Compare two counts: a test that ends with the count it started with has closed
 * what it opened. */
static inline int open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* open_fd_count(), failing the test if it cannot tell. */
static inline int count_fds(void)
{
    int n = open_fd_count();
    assert_true(n >= 0);
    return n;
}

/* ---- nothing left ---- */

/* What there was when a test started. */
typedef struct nothing_left_mark {
    pt_resource_counts counts; /* this thread's */
    int fds;                   /* the process's; -1: not counted */
} nothing_left_mark;

/* Takes the mark: the thread's counts, and the descriptors if `fds`. */
static inline void nothing_left_mark_take(nothing_left_mark *m, bool fds)
{
    pt_resource_counts_get(&m->counts);
    m->fds = fds ? open_fd_count() : -1;
}

/* Compares what is left now with `m`: porter's resources of this thread, the watchers of `loop`
 * (which is then destroyed; NULL: no loop), and, if `m` counted them, the descriptors (after the
 * loop's own are closed). Returns true if nothing is left, else false with a description in
 * `what`. Calls no cmocka function, so a thread of a test may use it. */
static inline bool nothing_left_since(const nothing_left_mark *m, struct ev_loop *loop, char *what,
                                      size_t cap)
{
    pt_resource_counts now;
    pt_resource_counts_get(&now);
    unsigned pending = 0;
    int active = 0;
    if (loop) {
        /* An event queued and never delivered; then one iteration that does not wait, whose
         * value is the number of active referenced watchers. */
        pending = ev_pending_count(loop);
        active = ev_run(loop, EVRUN_NOWAIT);
        ev_loop_destroy(loop);
    }
    int fds = m->fds >= 0 ? open_fd_count() : -1;
    size_t len = 0;
    what[0] = '\0';
#define LEFT(cond, ...)                                                                            \
    do {                                                                                           \
        if ((cond) && len < cap)                                                                   \
            len += (size_t)snprintf(what + len, cap - len, __VA_ARGS__);                           \
    } while (0)
    LEFT(now.custodians != m->counts.custodians, "%zu live custodians (%zu at the start); ",
         now.custodians, m->counts.custodians);
    LEFT(now.unreaped != m->counts.unreaped, "%zu custodians not reaped (%zu at the start); ",
         now.unreaped, m->counts.unreaped);
    LEFT(now.chunks != m->counts.chunks, "%zu buffer chunks out (%zu at the start); ", now.chunks,
         m->counts.chunks);
    LEFT(pending != 0, "%u pending watchers; ", pending);
    LEFT(active != 0, "%d active watchers; ", active);
    LEFT(fds != m->fds, "%d descriptors open (%d at the start); ", fds, m->fds);
#undef LEFT
    return what[0] == '\0';
}

/* The mark of the test now running (a program runs its tests one at a time). */
static struct {
    nothing_left_mark mark;
    bool begun;
} nothing_left_test;

/* The start of every test: before it makes anything, its loop included. */
static inline void nothing_left_begin(void)
{
    nothing_left_mark_take(&nothing_left_test.mark, true);
    assert_true(nothing_left_test.mark.fds >= 0);
    nothing_left_test.begun = true;
}

/* The end of every test, after it has freed what it made: fails the test if anything is left
 * (see the top of this file). `loop` (NULL: none) is destroyed here, its watchers checked
 * first. */
static inline void assert_nothing_left(struct ev_loop *loop)
{
    if (!nothing_left_test.begun)
        fail_msg("assert_nothing_left() without nothing_left_begin()");
    nothing_left_test.begun = false;
    char what[512];
    if (!nothing_left_since(&nothing_left_test.mark, loop, what, sizeof what))
        fail_msg("left at the end of the test: %s", what);
}

/* The fixture of a test that needs no other: cmocka_unit_test_setup_teardown(test,
 * nothing_left_setup, nothing_left_teardown), or NOTHING_LEFT_TEST(test) for short. */
static inline int nothing_left_setup(void **state)
{
    (void)state;
    nothing_left_begin();
    return 0;
}

static inline int nothing_left_teardown(void **state)
{
    (void)state;
    assert_nothing_left(NULL);
    return 0;
}

#define NOTHING_LEFT_TEST(f)                                                                       \
    cmocka_unit_test_setup_teardown(f, nothing_left_setup, nothing_left_teardown)

/* ---- descriptors, files, loops ---- */

/* Whether `fd` is closed (for a descriptor the code under test was to close). */
static inline bool fd_is_closed(int fd)
{
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

static inline int support_remove_entry(const char *path, const struct stat *st, int type,
                                       struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return remove(path);
}

/* Removes the directory tree at `dir` (links are removed, not followed). Returns 0 or -1. */
static inline int remove_tree(const char *dir)
{
    return nftw(dir, support_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- HTTP ---- */

/* The page porter answers an error status with (nginx's), for `status` and its `reason`
 * phrase, written here by hand. The string is static: one at a time. */
static inline const char *status_page(int status, const char *reason)
{
    static char page[512];
    snprintf(page, sizeof page,
             "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
             "<center><h1>%d %s</h1></center>\r\n<hr><center>porter</center>\r\n"
             "</body>\r\n</html>\r\n",
             status, reason, status, reason);
    return page;
}

/* ---- temporary trees ---- */

/* Makes a new directory "$TMPDIR/porter-<tag>-XXXXXX" (TMPDIR unset: /tmp), its path written
 * to `dir` (`cap` bytes); fails the test if it cannot. Returns `dir`. */
static inline char *temp_dir_make(char *dir, size_t cap, const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, cap, "%s/porter-%s-XXXXXX", tmp && tmp[0] ? tmp : "/tmp", tag);
    assert_true(n > 0 && (size_t)n < cap);
    if (!mkdtemp(dir))
        fail_msg("mkdtemp(%s): %s", dir, strerror(errno));
    return dir;
}

/* Removes the tree `dir` made by temp_dir_make(), failing the test if any of it is left. */
static inline void temp_dir_remove(const char *dir)
{
    assert_int_equal(remove_tree(dir), 0);
    struct stat st;
    assert_true(lstat(dir, &st) < 0 && errno == ENOENT);
}

/* `dir`/`rel` into `out` (PATH_MAX bytes); fails the test if it does not fit. Returns `out`. */
static inline char *temp_path(char *out, const char *dir, const char *rel)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, rel);
    assert_true(n > 0 && n < PATH_MAX);
    return out;
}

/* Writes `len` bytes of `data` to the file `dir`/`rel` (made, or truncated), mode 0644. */
static inline void temp_put_file(const char *dir, const char *rel, const void *data, size_t len)
{
    char p[PATH_MAX];
    int fd = open(temp_path(p, dir, rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail_msg("open(%s): %s", p, strerror(errno));
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* The same with the NUL-terminated `text`. */
static inline void temp_put_text(const char *dir, const char *rel, const char *text)
{
    temp_put_file(dir, rel, text, strlen(text));
}

/* Makes the directory `dir`/`rel` with `mode`. */
static inline void temp_put_dir(const char *dir, const char *rel, mode_t mode)
{
    char p[PATH_MAX];
    if (mkdir(temp_path(p, dir, rel), mode) < 0)
        fail_msg("mkdir(%s): %s", p, strerror(errno));
}

/* Makes `dir`/`rel` a symbolic link to `target`. */
static inline void temp_put_link(const char *dir, const char *rel, const char *target)
{
    char p[PATH_MAX];
    if (symlink(target, temp_path(p, dir, rel)) < 0)
        fail_msg("symlink(%s): %s", p, strerror(errno));
}

/* Sets the modification (and access) time of `dir`/`rel` to `t`, seconds since the epoch. */
static inline void temp_set_mtime(const char *dir, const char *rel, time_t t)
{
    char p[PATH_MAX];
    struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
    assert_int_equal(utimensat(AT_FDCWD, temp_path(p, dir, rel), ts, 0), 0);
}

/* ---- loops ---- */

static inline void support_on_break(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    if (w->data)
        *(bool *)w->data = true;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs `loop` for `secs` seconds, whatever it has to do. */
static inline void loop_run_for(struct ev_loop *loop, double secs)
{
    ev_timer t;
    ev_timer_init(&t, support_on_break, secs, 0);
    t.data = NULL;
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

/* Runs `loop` one iteration at a time until `done(data)` holds (checked before the first and
 * after every iteration), for at most `secs` seconds: a watchdog, never a measure of how long
 * anything takes. Returns whether it holds. */
static inline bool loop_run_until(struct ev_loop *loop, bool (*done)(void *data), void *data,
                                  double secs)
{
    bool fired = false;
    ev_timer t;
    ev_timer_init(&t, support_on_break, secs, 0);
    t.data = &fired;
    ev_timer_start(loop, &t);
    while (!done(data) && !fired)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &t);
    return done(data);
}

#endif
