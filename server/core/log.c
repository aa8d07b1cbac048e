/*
 * Logs (log.h): files and stderr with their buffers, syslog servers, the error log's lines.
 */
#include "server/core/log.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The longest error-log line, and the longest syslog message (its header, then a line). */
#define ERROR_LINE_MAX 2048
#define SYSLOG_MAX (16384 + 512)

typedef enum log_kind { LOG_FILE, LOG_STDERR, LOG_SYSLOG } log_kind;

struct pt_log {
    log_kind kind;
    int fd; /* a file's, stderr, or the syslog socket (-1: not connected) */
    char *path;
    char *buf; /* made at the first line */
    size_t used, cap;
    bool own_buffer;      /* pt_log_set_buffer: not flushed by the tick */
    double flush;         /* seconds after the first buffered line; 0: none */
    struct ev_loop *loop; /* where the flush timer runs */
    ev_timer timer;
    pt_syslog_target syslog;
    char host[256]; /* for syslog: this machine's name */
};

static pt_log *error_log;
static pt_log_level error_level = PT_LOG_NOTICE;

/* ---- syslog ---- */

static const char *const facilities[] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "intern", "lpr",    "news",
    "uucp",   "clock",  "authpriv", "ftp",    "ntp",    "audit",  "alert",  "cron",
    "local0", "local1", "local2",   "local3", "local4", "local5", "local6", "local7"};
/* nginx's words: "error" and "warn", not syslog's "err" and "warning". */
static const char *const severities[] = {"emerg", "alert",  "crit", "error",
                                         "warn",  "notice", "info", "debug"};

static int word_index(const char *const *words, size_t n, const char *w, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(words[i]) == len && memcmp(words[i], w, len) == 0)
            return (int)i;
    return -1;
}

/* `server=` ADDR[:PORT], [IPV6][:PORT] or unix:PATH into t->addr. */
static int syslog_server(const char *v, size_t len, bool resolve, pt_syslog_target *t, char *why,
                         size_t whylen)
{
    char host[256], port[8] = "514";
    if (len > 5 && strncmp(v, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
        if (len - 5 >= sizeof un->sun_path || v[5] != '/') {
            snprintf(why, whylen, "invalid syslog server \"%.*s\"", (int)len, v);
            return -EINVAL;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, v + 5, len - 5);
        un->sun_path[len - 5] = '\0';
        t->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len - 5 + 1);
        return 0;
    }
    const char *h = v, *p = NULL;
    size_t hlen = len;
    if (v[0] == '[') {
        const char *close = memchr(v, ']', len);
        if (!close || (close + 1 < v + len && close[1] != ':'))
            goto invalid;
        h = v + 1;
        hlen = (size_t)(close - h);
        p = close + 1 < v + len ? close + 2 : NULL;
    } else {
        const char *colon = memchr(v, ':', len);
        if (colon && memchr(colon + 1, ':', (size_t)(v + len - colon - 1)))
            goto invalid; /* an IPv6 address wants its brackets */
        if (colon) {
            hlen = (size_t)(colon - v);
            p = colon + 1;
        }
    }
    if (!hlen || hlen >= sizeof host)
        goto invalid;
    if (p) {
        size_t plen = (size_t)(v + len - p);
        unsigned long n = 0;
        for (size_t i = 0; i < plen; i++)
            n = (p[i] >= '0' && p[i] <= '9' && n < 65536) ? n * 10 + (unsigned)(p[i] - '0') : 65536;
        if (!plen || n == 0 || n > 65535)
            goto invalid;
        snprintf(port, sizeof port, "%lu", n);
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    for (size_t i = 0; i < hlen; i++)
        if (!((host[i] | 0x20) >= 'a' && (host[i] | 0x20) <= 'z') &&
            !(host[i] >= '0' && host[i] <= '9') && !strchr(".-_:%", host[i]))
            goto invalid;
    /* An address is taken at once; a name is looked up only when asked (the log's opening,
     * not a conf check). */
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICSERV | (resolve ? 0 : AI_NUMERICHOST)},
                    *res;
    int e = getaddrinfo(host, port, &hints, &res);
    if (e == EAI_NONAME && !resolve)
        return 0;
    if (e != 0) {
        snprintf(why, whylen, "host not found in syslog server \"%.*s\": %s", (int)len, v,
                 gai_strerror(e));
        return -EINVAL;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
invalid:
    snprintf(why, whylen, "invalid syslog server \"%.*s\"", (int)len, v);
    return -EINVAL;
}

int pt_syslog_parse(const char *spec, bool resolve, pt_syslog_target *t, char *why, size_t whylen)
{
    memset(t, 0, sizeof *t);
    t->facility = t->severity = -1;
    bool server = false;
    for (const char *p = spec;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int rc = 0;
        if (len >= 7 && strncmp(p, "server=", 7) == 0) {
            if (server) {
                snprintf(why, whylen, "duplicate syslog \"server\"");
                return -EINVAL;
            }
            server = true;
            rc = syslog_server(p + 7, len - 7, resolve, t, why, whylen);
        } else if (len >= 9 && strncmp(p, "facility=", 9) == 0) {
            int f = word_index(facilities, 24, p + 9, len - 9);
            if (t->facility >= 0 || f < 0) {
                snprintf(why, whylen, "%s syslog facility \"%.*s\"",
                         t->facility >= 0 ? "duplicate" : "unknown", (int)(len - 9), p + 9);
                return -EINVAL;
            }
            t->facility = f;
        } else if (len >= 9 && strncmp(p, "severity=", 9) == 0) {
            int s = word_index(severities, 8, p + 9, len - 9);
            if (t->severity >= 0 || s < 0) {
                snprintf(why, whylen, "%s syslog severity \"%.*s\"",
                         t->severity >= 0 ? "duplicate" : "unknown", (int)(len - 9), p + 9);
                return -EINVAL;
            }
            t->severity = s;
        } else if (len >= 4 && strncmp(p, "tag=", 4) == 0) {
            /* RFC 3164: alphanumeric, at most 32 characters */
            size_t n = len - 4;
            bool ok = n > 0 && n <= 32 && !t->tag[0];
            for (size_t i = 0; ok && i < n; i++)
                ok = (p[4 + i] >= '0' && p[4 + i] <= '9') || p[4 + i] == '_' ||
                     ((p[4 + i] | 0x20) >= 'a' && (p[4 + i] | 0x20) <= 'z');
            if (!ok) {
                snprintf(why, whylen,
                         "invalid syslog tag \"%.*s\": 1 to 32 letters, digits and underscores",
                         (int)n, p + 4);
                return -EINVAL;
            }
            memcpy(t->tag, p + 4, n);
            t->tag[n] = '\0';
        } else if (len == 10 && strncmp(p, "nohostname", 10) == 0) {
            t->nohostname = true;
        } else {
            snprintf(why, whylen, "unknown syslog parameter \"%.*s\"", (int)len, p);
            return -EINVAL;
        }
        if (rc < 0)
            return rc;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!server) {
        snprintf(why, whylen, "no syslog server specified");
        return -EINVAL;
    }
    if (t->facility < 0)
        t->facility = 23; /* local7 */
    if (!t->tag[0])
        strcpy(t->tag, "porter");
    return 0;
}

/* RFC 3164's time stamp ("Dec  7 09:05:01"), local time, formatted once a second. */
static const char *syslog_time(void)
{
    static _Thread_local struct {
        time_t second;
        char s[20];
    } c = {-1, ""};
    time_t now = time(NULL);
    if (now != c.second) {
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(c.s, sizeof c.s, "%b %e %H:%M:%S", &tm);
        c.second = now;
    }
    return c.s;
}

static void syslog_connect(pt_log *l)
{
    int fd = socket(l->syslog.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (connect(fd, (const struct sockaddr *)&l->syslog.addr, l->syslog.addrlen) < 0) {
        close(fd);
        return; /* the next message tries again (a unix socket not there yet) */
    }
    l->fd = fd;
}

/* One message `msg` (`len` bytes, no newline) at `severity`. A server that is not there loses
 * it: a log must not stop the server. */
static void syslog_send(pt_log *l, int severity, const char *msg, size_t len)
{
    char d[SYSLOG_MAX];
    int pri = l->syslog.facility * 8 + severity;
    int n =
        l->syslog.nohostname
            ? snprintf(d, sizeof d, "<%d>%s %s: ", pri, syslog_time(), l->syslog.tag)
            : snprintf(d, sizeof d, "<%d>%s %s %s: ", pri, syslog_time(), l->host, l->syslog.tag);
    if (len > sizeof d - (size_t)n)
        len = sizeof d - (size_t)n;
    memcpy(d + n, msg, len);
    if (l->fd < 0)
        syslog_connect(l);
    if (l->fd < 0)
        return;
    if (send(l->fd, d, (size_t)n + len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
        errno != EWOULDBLOCK && errno != ENOBUFS &&
        (errno != ECONNREFUSED || l->syslog.addr.ss_family == AF_UNIX)) {
        /* The socket is no good (the server's unix socket went away, or was made anew):
         * connect again for the next message. Over UDP a refusal is the ICMP answer to an
         * earlier datagram, and the socket stays. */
        close(l->fd);
        l->fd = -1;
    }
}

/* The syslog severity of an error-log level. */
static int severity_of(pt_log_level level)
{
    static const int sev[] = {7, 6, 5, 4, 3, 2};
    return (unsigned)level <= PT_LOG_CRIT ? sev[level] : 3;
}

/* ---- opening and closing ---- */

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
    l->fd = -1;
    l->cap = PT_LOG_BUFFER;
    l->path = strdup(path);
    int err = -ENOMEM;
    if (!l->path)
        goto fail;
    if (strcmp(path, "stderr") == 0) {
        l->kind = LOG_STDERR;
        l->fd = STDERR_FILENO;
    } else if (strncmp(path, PT_SYSLOG_PREFIX, strlen(PT_SYSLOG_PREFIX)) == 0) {
        char why[256];
        l->kind = LOG_SYSLOG;
        if ((err = pt_syslog_parse(path + strlen(PT_SYSLOG_PREFIX), true, &l->syslog, why,
                                   sizeof why)) < 0)
            goto fail;
        if (gethostname(l->host, sizeof l->host - 1) < 0 || !l->host[0])
            strcpy(l->host, "localhost");
    } else {
        l->kind = LOG_FILE;
        if ((err = l->fd = open_path(path)) < 0)
            goto fail;
    }
    *out = l;
    return 0;
fail:
    free(l->path);
    free(l);
    return err;
}

static void timer_stop(pt_log *l)
{
    if (ev_is_active(&l->timer)) {
        ev_ref(l->loop); /* it was unreferenced when started */
        ev_timer_stop(l->loop, &l->timer);
    }
}

static void on_flush_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_log *l = w->data;
    ev_ref(loop); /* the one-shot timer stopped itself: take back its unreference */
    pt_log_flush(l);
}

int pt_log_set_buffer(pt_log *l, size_t size, double flush, struct ev_loop *loop)
{
    if (size > l->cap || !l->buf) {
        char *b = realloc(l->buf, size);
        if (!b)
            return -ENOMEM;
        l->buf = b;
    }
    if (l->used > size)
        pt_log_flush(l);
    l->cap = size;
    l->own_buffer = true;
    l->flush = flush;
    l->loop = loop;
    ev_timer_init(&l->timer, on_flush_timer, flush, 0.);
    l->timer.data = l;
    return 0;
}

bool pt_log_buffered(const pt_log *l, size_t *size, double *flush)
{
    *size = l->cap;
    *flush = l->flush;
    return l->own_buffer;
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
    if (!l)
        return;
    if (l->loop)
        timer_stop(l);
    if (l->used) {
        write_all(l->fd, l->buf, l->used);
        l->used = 0;
    }
}

void pt_log_tick(pt_log *l)
{
    if (!l->own_buffer)
        pt_log_flush(l);
}

void pt_log_append(pt_log *l, const char *line, size_t len)
{
    if (l->kind == LOG_SYSLOG) {
        syslog_send(l, l->syslog.severity >= 0 ? l->syslog.severity : 6, line,
                    len && line[len - 1] == '\n' ? len - 1 : len);
        return;
    }
    if (!l->buf && !(l->buf = malloc(l->cap))) {
        write_all(l->fd, line, len);
        return;
    }
    if (l->used + len > l->cap)
        pt_log_flush(l);
    if (len > l->cap) {
        write_all(l->fd, line, len);
        return;
    }
    if (!l->used && l->flush > 0) {
        /* the first line of a buffer: written `flush` seconds from now at the latest */
        ev_timer_set(&l->timer, l->flush, 0.);
        ev_timer_start(l->loop, &l->timer);
        ev_unref(l->loop); /* a buffered line alone must not keep the loop running */
    }
    memcpy(l->buf + l->used, line, len);
    l->used += len;
}

int pt_log_reopen(pt_log *l)
{
    pt_log_flush(l);
    if (l->kind == LOG_STDERR)
        return 0;
    if (l->kind == LOG_SYSLOG) {
        if (l->fd >= 0)
            close(l->fd);
        l->fd = -1;
        return 0;
    }
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
    if (l->kind != LOG_STDERR && l->fd >= 0)
        close(l->fd);
    if (error_log == l)
        error_log = NULL;
    free(l->buf);
    free(l->path);
    free(l);
}

const char *pt_log_path(const pt_log *l)
{
    return l->path;
}

bool pt_log_is_stderr(const pt_log *l)
{
    return l->kind == LOG_STDERR;
}

/* ---- the error log ---- */

void pt_error_log_set(pt_log *l, pt_log_level level)
{
    error_log = l;
    error_level = level;
}

int pt_log_enabled(pt_log_level level)
{
    return level >= error_level;
}

/* Formats the error-log line of a message into `line` (ERROR_LINE_MAX bytes), newline
 * included; returns its length. */
static size_t format_line(pt_log_level level, const char *fmt, va_list ap, char *line)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    int n = (int)strftime(line, ERROR_LINE_MAX, "%Y/%m/%d %H:%M:%S", &tm);
    n += snprintf(line + n, ERROR_LINE_MAX - (size_t)n, " [%s] %d: ", pt_log_level_name(level),
                  (int)getpid());
    int m = vsnprintf(line + n, ERROR_LINE_MAX - (size_t)n - 1, fmt, ap);
    n = m < 0 ? n : (n + m > ERROR_LINE_MAX - 2 ? ERROR_LINE_MAX - 2 : n + m);
    line[n++] = '\n';
    return (size_t)n;
}

static void write_line(pt_log *l, pt_log_level level, const char *line, size_t n)
{
    if (l && l->kind == LOG_SYSLOG)
        syslog_send(l, severity_of(level), line, n - 1);
    else
        write_all(l ? l->fd : STDERR_FILENO, line, n);
}

static void vlog(pt_log *l, pt_log_level level, const char *fmt, va_list ap)
{
    char line[ERROR_LINE_MAX];
    size_t n = format_line(level, fmt, ap, line);
    write_line(l, level, line, n);
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

void pt_log_process(pt_log_level level, const char *fmt, va_list ap)
{
    if (level < error_level)
        return;
    char line[ERROR_LINE_MAX];
    size_t n = format_line(level, fmt, ap, line);
    write_line(error_log, level, line, n);
    if (error_log && error_log->kind != LOG_STDERR && isatty(STDERR_FILENO))
        write_all(STDERR_FILENO, line, n);
}

const char *pt_log_level_name(pt_log_level level)
{
    static const char *const names[] = {"debug", "info", "notice", "warn", "error", "crit"};
    return (unsigned)level <= PT_LOG_CRIT ? names[level] : "?";
}
