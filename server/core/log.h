/*
 * Logs: the error log (levels, one line per event) and access logs (lines a format makes).
 *
 * A pt_log is an append-only file, stderr, or a syslog server (`syslog:server=ADDR[:PORT]
 * [,facility=F][,tag=T][,severity=S][,nohostname]`, RFC 3164 datagrams over UDP or a unix
 * datagram socket, each line one message as nginx sends it:
 * `<PRI>Mmm dd hh:mm:ss HOST TAG: MESSAGE`).
 *
 * Access-log lines (pt_log_append) to a file are buffered: by default 32 KiB written when full
 * and at most a second later (the owner calls pt_log_tick once a second); with
 * pt_log_set_buffer, a buffer of the size given, written when full, `flush` seconds after the
 * first line it took (one timer per log), and never by the tick. Whatever is buffered is written
 * at pt_log_flush, pt_log_reopen and pt_log_close. Lines to syslog go at once, one datagram
 * each. Error-log lines are written at once, and through syslog with the severity of their
 * level.
 *
 * Each process has one error log (pt_error_log_set); before one is set, errors go to stderr at
 * level notice. Every error-log line reads "YYYY/MM/DD HH:MM:SS [level] pid: message".
 *
 * Ownership: pt_log_open/pt_log_close; closing twice or NULL is a no-op. Threading: one loop
 * thread per log. Errors: negative errno.
 */
#ifndef PORTER_SERVER_CORE_LOG_H
#define PORTER_SERVER_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct ev_loop;

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

/* The default access-log buffer, and the prefix that names a syslog server. */
#define PT_LOG_BUFFER (32 * 1024)
#define PT_SYSLOG_PREFIX "syslog:"

/* A syslog server and how messages to it read (`syslog:...`). */
typedef struct pt_syslog_target {
    struct sockaddr_storage addr; /* AF_INET, AF_INET6 (port 514 by default) or AF_UNIX */
    socklen_t addrlen;
    int facility; /* 0..23 (local7: 23) */
    int severity; /* 0..7 (info: 6); an error log's lines take their level's */
    char tag[33]; /* "porter"; letters, digits and '_' */
    bool nohostname;
} pt_syslog_target;

/* Reads `spec` (what follows "syslog:") into `t`. A server named by a host name is resolved
 * with `resolve` (pt_log_open does), else only its syntax is checked and t->addr is not set.
 * Returns 0, or -EINVAL with the reason in `why`. */
int pt_syslog_parse(const char *spec, bool resolve, pt_syslog_target *t, char *why, size_t whylen);

typedef struct pt_log pt_log;

/* Opens `path` for appending ("stderr": standard error; "syslog:...": a syslog server, whose
 * socket is connected at the first message and again after a failure). */
int pt_log_open(pt_log **out, const char *path);
/* Access-log buffering other than the default (see above): `size` bytes (at least one line's
 * worth is kept by the caller), `flush` seconds (0: none) on `loop`. Returns 0 or -ENOMEM. */
int pt_log_set_buffer(pt_log *l, size_t size, double flush, struct ev_loop *loop);
/* Whether pt_log_set_buffer was called, and with what. */
bool pt_log_buffered(const pt_log *l, size_t *size, double *flush);
/* Appends a line of `len` bytes ending in '\n' (buffered, or a datagram to syslog). */
void pt_log_append(pt_log *l, const char *line, size_t len);
/* Writes what is buffered. */
void pt_log_flush(pt_log *l);
/* The once-a-second flush of a log with the default buffering. */
void pt_log_tick(pt_log *l);
/* Reopens the file at its path (log rotation); a syslog socket is connected anew. */
int pt_log_reopen(pt_log *l);
void pt_log_close(pt_log *l);
const char *pt_log_path(const pt_log *l);
/* Whether the log is standard error. */
bool pt_log_is_stderr(const pt_log *l);

/* The process's error log and its level (borrowed; NULL: stderr). */
void pt_error_log_set(pt_log *l, pt_log_level level);
/* Writes "YYYY/MM/DD HH:MM:SS [level] pid: message" if `level` is at or above the threshold. */
void pt_log_error(pt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes to the log `l` (a server's own error log) if `level` is at or above `threshold`; with
 * `l` NULL, to the process's error log at its threshold. */
void pt_log_error_to(pt_log *l, pt_log_level threshold, pt_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A message of the process itself (start, reload, workers): to the process's error log as
 * pt_log_error writes it, and to stderr as well when that is a terminal the log is not. */
void pt_log_process(pt_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Returns true if messages at `level` would be written. */
int pt_log_enabled(pt_log_level level);

#endif
