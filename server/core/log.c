#include "server/core/log.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_BUFFER 32768

struct pt_log {
    int fd;
    bool is_stderr;
    char *path;
    size_t used;
    char buf[LOG_BUFFER];
};

static pt_log *error_log;
static pt_log_level error_level = PT_LOG_NOTICE;

static int open_path(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int pt_log_open(pt_log **out, const char *path)
{
    pt_log *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->path = strdup(path);
    if (!l->path) {
        free(l);
        return -ENOMEM;
    }
    if (strcmp(path, "stderr") == 0) {
        l->fd = STDERR_FILENO;
        l->is_stderr = true;
    } else {
        l->fd = open_path(path);
        if (l->fd < 0) {
            int err = l->fd;
            free(l->path);
            free(l);
            return err;
        }
    }
    *out = l;
    return 0;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* a log that cannot be written must not stop the server */
        p += n;
        len -= (size_t)n;
    }
}

void pt_log_flush(pt_log *l)
{
    if (l && l->used) {
        write_all(l->fd, l->buf, l->used);
        l->used = 0;
    }
}

void pt_log_append(pt_log *l, const char *line, size_t len)
{
    if (l->used + len > sizeof l->buf)
        pt_log_flush(l);
    if (len > sizeof l->buf) {
        write_all(l->fd, line, len);
        return;
    }
    memcpy(l->buf + l->used, line, len);
    l->used += len;
}

int pt_log_reopen(pt_log *l)
{
    pt_log_flush(l);
    if (l->is_stderr)
        return 0;
    int fd = open_path(l->path);
    if (fd < 0)
        return fd;
    close(l->fd);
    l->fd = fd;
    return 0;
}

void pt_log_close(pt_log *l)
{
    if (!l)
        return;
    pt_log_flush(l);
    if (!l->is_stderr)
        close(l->fd);
    if (error_log == l)
        error_log = NULL;
    free(l->path);
    free(l);
}

const char *pt_log_path(const pt_log *l)
{
    return l->path;
}

void pt_error_log_set(pt_log *l, pt_log_level level)
{
    error_log = l;
    error_level = level;
}

int pt_log_enabled(pt_log_level level)
{
    return level >= error_level;
}

static void vlog(pt_log *l, pt_log_level level, const char *fmt, va_list ap)
{
    static const char *names[] = {"debug", "info", "notice", "warn", "error", "crit"};
    char line[2048];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    int n = (int)strftime(line, sizeof line, "%Y/%m/%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, " [%s] %d: ", names[level], (int)getpid());
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    n = m < 0 ? n : (n + m > (int)sizeof line - 2 ? (int)sizeof line - 2 : n + m);
    line[n++] = '\n';
    write_all(l ? l->fd : STDERR_FILENO, line, (size_t)n);
}

void pt_log_error(pt_log_level level, const char *fmt, ...)
{
    if (level < error_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(error_log, level, fmt, ap);
    va_end(ap);
}

void pt_log_error_to(pt_log *l, pt_log_level threshold, pt_log_level level, const char *fmt, ...)
{
    if (!l) {
        threshold = error_level;
        l = error_log;
    }
    if (level < threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(l, level, fmt, ap);
    va_end(ap);
}

const char *pt_log_level_name(pt_log_level level)
{
    static const char *const names[] = {"debug", "info", "notice", "warn", "error", "crit"};
    return (unsigned)level <= PT_LOG_CRIT ? names[level] : "?";
}
