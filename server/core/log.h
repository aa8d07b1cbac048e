/*
 * Logs: the error log (levels, one line per event) and access logs (combined format).
 *
 * A pt_log is an append-only file, or stderr. Access-log lines are buffered and written when
 * the buffer fills, at most a second later (pt_log_tick), and at close; error-log lines are
 * written at once. Each process has one error log (pt_error_log_set); before one is set, errors
 * go to stderr at level notice.
 *
 * Ownership: pt_log_open/pt_log_close; closing twice or NULL is a no-op. Threading: one loop
 * thread per log. Errors: negative errno.
 */
#ifndef PORTER_SERVER_CORE_LOG_H
#define PORTER_SERVER_CORE_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum pt_log_level {
    PT_LOG_DEBUG,
    PT_LOG_INFO,
    PT_LOG_NOTICE,
    PT_LOG_WARN,
    PT_LOG_ERROR,
    PT_LOG_CRIT /* nginx's alert and emerg map here */
} pt_log_level;

/* Returns the name of a level as written in a conf file ("warn"). */
const char *pt_log_level_name(pt_log_level level);

typedef struct pt_log pt_log;

/* Opens `path` for appending ("stderr": standard error). */
int pt_log_open(pt_log **out, const char *path);
/* Appends `len` bytes (buffered). */
void pt_log_append(pt_log *l, const char *line, size_t len);
/* Writes what is buffered. */
void pt_log_flush(pt_log *l);
/* Reopens the file at its path (log rotation). */
int pt_log_reopen(pt_log *l);
void pt_log_close(pt_log *l);
const char *pt_log_path(const pt_log *l);

/* The process's error log and its level (borrowed; NULL: stderr). */
void pt_error_log_set(pt_log *l, pt_log_level level);
/* Writes "YYYY/MM/DD HH:MM:SS [level] pid: message" if `level` is at or above the threshold. */
void pt_log_error(pt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes to the log `l` (a server's own error log) if `level` is at or above `threshold`; with
 * `l` NULL, to the process's error log at its threshold. */
void pt_log_error_to(pt_log *l, pt_log_level threshold, pt_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Returns true if messages at `level` would be written. */
int pt_log_enabled(pt_log_level level);

#endif
