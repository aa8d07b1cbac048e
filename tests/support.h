/*
 * What every C test program needs besides cmocka (included before this file): the count of
 * open descriptors, to end a test by asserting nothing is left, a temporary tree's removal, and
 * running a libev loop for a while.
 */
#ifndef PORTER_TESTS_SUPPORT_H
#define PORTER_TESTS_SUPPORT_H

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>

/* The descriptors this process has open (the one that reads /proc/self/fd aside). Compare two
 * counts: a test that ends with the count it started with has closed what it opened. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

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

static inline void support_on_break(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs `loop` for `secs` seconds, whatever it has to do. */
static inline void loop_run_for(struct ev_loop *loop, double secs)
{
    ev_timer t;
    ev_timer_init(&t, support_on_break, secs, 0);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

#endif
