/*
 * Responses: the head formatted in one pass into the out-queue, the body after it, the access
 * log line. Date and the log's time stamp are formatted once a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connmgr/conn.h"
#include "server/dispatch.h"
#include "server/location.h"
#include "server/site.h"

/* Files up to this size are read into the out-queue so head and body leave in one writev;
 * larger ones go out with sendfile. */
#define INLINE_FILE_MAX (16 * 1024)

/* The largest response head. */
#define RESPONSE_HEAD_MAX 8192

pt_str pt_host_name(pt_str host)
{
    const char *colon = host.len ? memrchr(host.p, ':', host.len) : NULL;
    if (colon && (host.p[0] != '[' || colon > (const char *)memchr(host.p, ']', host.len)))
        host.len = (size_t)(colon - host.p);
    if (host.len && host.p[host.len - 1] == '.')
        host.len--;
    return host;
}

const pt_header *pt_request_header(const pt_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (pt_str_ieq(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

const char *pt_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

size_t pt_http_date_format(time_t t, char *buf)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    return (size_t)snprintf(buf, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday],
                            tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                            tm.tm_sec);
}

time_t pt_http_date_parse(const char *s, size_t len)
{
    char buf[64], mon[4] = {0};
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct tm tm = {0};
    int day, year, h, m, sec, n = 0;
    /* IMF-fixdate, RFC 850, asctime (RFC 9110 section 5.6.7) */
    if (sscanf(buf, "%*3s, %2d %3s %4d %2d:%2d:%2d GMT%n", &day, mon, &year, &h, &m, &sec, &n) ==
            6 &&
        n == (int)len) {
    } else if (sscanf(buf, "%*[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", &day, mon, &year, &h, &m,
                      &sec, &n) == 6 &&
               n == (int)len) {
        year += year < 70 ? 2000 : 1900;
    } else if (sscanf(buf, "%*3s %3s %2d %2d:%2d:%2d %4d%n", mon, &day, &h, &m, &sec, &year, &n) ==
                   6 &&
               n == (int)len) {
    } else {
        return -1;
    }
    int mi = -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(mon, months[i]) == 0)
            mi = i;
    if (mi < 0 || day < 1 || day > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = mi;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    return timegm(&tm);
}

/* The Date header value and the access log's time, reformatted when the second changes. */
static _Thread_local struct {
    time_t second;
    char date[32];
    size_t date_len;
    char local[32]; /* 21/Nov/2026:06:00:00 +0000 */
} clock_cache = {-1, "", 0, ""};

static void clock_update(time_t now)
{
    if (now == clock_cache.second)
        return;
    clock_cache.second = now;
    clock_cache.date_len = pt_http_date_format(now, clock_cache.date);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(clock_cache.local, sizeof clock_cache.local, "%d/%b/%Y:%H:%M:%S %z", &tm);
}

void pt_response_init(pt_response *r, int status)
{
    memset(r, 0, sizeof *r);
    r->status = status;
    r->file_fd = -1;
}

static size_t append(char *buf, size_t pos, size_t cap, const char *s, size_t n)
{
    if (pos + n <= cap)
        memcpy(buf + pos, s, n);
    return pos + n;
}

#define APPEND_LIT(buf, pos, cap, lit) append(buf, pos, cap, lit, sizeof(lit) - 1)

static size_t append_uint(char *buf, size_t pos, size_t cap, uint64_t v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    char digits[20];
    size_t n = 0;
    while (v >= 10) { /* two digits a step */
        const char *d = pairs + 2 * (v % 100);
        digits[sizeof digits - ++n] = d[1];
        if (v < 100) {
            digits[sizeof digits - ++n] = d[0];
            return append(buf, pos, cap, digits + sizeof digits - n, n);
        }
        digits[sizeof digits - ++n] = d[0];
        v /= 100;
    }
    digits[sizeof digits - ++n] = (char)('0' + v);
    return append(buf, pos, cap, digits + sizeof digits - n, n);
}

/* Escapes a request string for the access log as nginx does: quotes, backslashes and control
 * characters become \xHH. */
static size_t append_escaped(char *buf, size_t pos, size_t cap, pt_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            char esc[5];
            snprintf(esc, sizeof esc, "\\x%02X", ch);
            pos = append(buf, pos, cap, esc, 4);
        } else {
            pos = append(buf, pos, cap, (const char *)&ch, 1);
        }
    }
    return pos;
}

/* Out of line, so that a request with no access log does not pay for this one's frame. */
__attribute__((noinline)) static void access_log_write(pt_log *log, pt_request *req, int status,
                                                       uint64_t body_bytes)
{
    pt_conn *c = pt_http_conn_conn(req->hc);
    char line[4096], addr[64];
    if (pt_sockaddr_format(&c->peer.sa, addr, sizeof addr) < 0)
        strcpy(addr, "-");
    char *colon = strrchr(addr, ':'); /* the log wants the address without the port */
    if (colon)
        *colon = '\0';
    const char *a = addr[0] == '[' ? addr + 1 : addr;
    size_t alen = strlen(a);
    if (alen && a[alen - 1] == ']')
        alen--;
    size_t cap = sizeof line - 2, pos = 0;
    pos = append(line, pos, cap, a, alen);
    pos = APPEND_LIT(line, pos, cap, " - - [");
    pos = append(line, pos, cap, clock_cache.local, strlen(clock_cache.local));
    pos = APPEND_LIT(line, pos, cap, "] \"");
    pos = append_escaped(line, pos, cap, req->method);
    pos = APPEND_LIT(line, pos, cap, " ");
    pos = append_escaped(line, pos, cap, req->target);
    char tail[64];
    int n = snprintf(tail, sizeof tail, " HTTP/%d.%d\" %d %" PRIu64 " \"", req->version_major,
                     req->version_minor, status, body_bytes);
    pos = append(line, pos, cap, tail, (size_t)n);
    const pt_header *h = pt_request_header(req, "referer");
    pos = h && h->value.len ? append_escaped(line, pos, cap, h->value)
                            : APPEND_LIT(line, pos, cap, "-");
    pos = APPEND_LIT(line, pos, cap, "\" \"");
    h = pt_request_header(req, "user-agent");
    pos = h && h->value.len ? append_escaped(line, pos, cap, h->value)
                            : APPEND_LIT(line, pos, cap, "-");
    pos = APPEND_LIT(line, pos, cap, "\"\n");
    if (pos > sizeof line) { /* truncated: keep it one well-formed line */
        pos = sizeof line;
        line[pos - 2] = '"';
        line[pos - 1] = '\n';
    }
    pt_log_append(log, line, pos);
}

void pt_request_access_log(pt_request *req, int status, uint64_t body_bytes)
{
    pt_log *log = req->vhost ? req->vhost->access_log : NULL;
    if (log)
        access_log_write(log, req, status, body_bytes);
}

void pt_request_log(pt_request *req, int level, const char *fmt, ...)
{
    const pt_vhost *vh = req->vhost;
    pt_log *log = vh ? vh->error_log : NULL;
    pt_log_level threshold = vh ? vh->error_level : PT_LOG_NOTICE;
    if (!log && !pt_log_enabled((pt_log_level)level))
        return;
    if (log && level < (int)threshold)
        return;
    char msg[1024], addr[PT_SOCKADDR_STRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pt_conn *c = pt_http_conn_conn(req->hc);
    if (pt_sockaddr_format(&c->peer.sa, addr, sizeof addr) < 0)
        strcpy(addr, "-");
    pt_log_error_to(log, threshold, (pt_log_level)level,
                    "%s, client: %s, request: \"%.*s %.*s HTTP/%d.%d\"", msg, addr,
                    (int)req->method.len, req->method.p, (int)req->target.len, req->target.p,
                    req->version_major, req->version_minor);
}

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

/* The head of `r` up to its Connection line, at `head` (room: `cap`). Returns its length, which
 * is more than `cap` when it does not fit. */
static size_t format_head(const pt_request *req, const pt_response *r, bool chunked, char *head,
                          size_t cap)
{
    size_t pos = 0;
    if (r->status == 200) {
        pos = APPEND_LIT(head, pos, cap, "HTTP/1.1 200 OK");
    } else {
        pos = APPEND_LIT(head, pos, cap, "HTTP/1.1 ");
        pos = append_uint(head, pos, cap, (uint64_t)r->status);
        pos = APPEND_LIT(head, pos, cap, " ");
        const char *reason = pt_http_reason(r->status);
        pos = append(head, pos, cap, reason, strlen(reason));
    }
    pos = APPEND_LIT(head, pos, cap, "\r\n");
    if (!r->omit_server)
        pos = req->vhost && req->vhost->conf->server_tokens
                  ? APPEND_LIT(head, pos, cap, "Server: porter/" PORTER_VERSION "\r\n")
                  : APPEND_LIT(head, pos, cap, "Server: porter\r\n");
    if (!r->omit_date) {
        pos = APPEND_LIT(head, pos, cap, "Date: ");
        pos = append(head, pos, cap, clock_cache.date, clock_cache.date_len);
        pos = APPEND_LIT(head, pos, cap, "\r\n");
    }
    if (r->content_type) {
        pos = APPEND_LIT(head, pos, cap, "Content-Type: ");
        pos = append(head, pos, cap, r->content_type, strlen(r->content_type));
        pos = APPEND_LIT(head, pos, cap, "\r\n");
    }
    if (chunked && status_has_body(r->status)) {
        pos = APPEND_LIT(head, pos, cap, "Transfer-Encoding: chunked\r\n");
    } else if (!r->no_body && status_has_body(r->status) && (!r->stream || r->stream_length >= 0)) {
        pos = APPEND_LIT(head, pos, cap, "Content-Length: ");
        pos = append_uint(head, pos, cap, r->stream ? (uint64_t)r->stream_length : r->body_len);
        pos = APPEND_LIT(head, pos, cap, "\r\n");
    }
    if (r->last_modified > 0) {
        char date[32];
        pos = APPEND_LIT(head, pos, cap, "Last-Modified: ");
        pos = append(head, pos, cap, date, pt_http_date_format(r->last_modified, date));
        pos = APPEND_LIT(head, pos, cap, "\r\n");
    }
    if (r->location) {
        pos = APPEND_LIT(head, pos, cap, "Location: ");
        pos = append(head, pos, cap, r->location, strlen(r->location));
        pos = APPEND_LIT(head, pos, cap, "\r\n");
    }
    if (r->allow) {
        pos = APPEND_LIT(head, pos, cap, "Allow: ");
        pos = append(head, pos, cap, r->allow, strlen(r->allow));
        pos = APPEND_LIT(head, pos, cap, "\r\n");
    }
    if (r->extra_headers.len)
        pos = append(head, pos, cap, r->extra_headers.p, r->extra_headers.len);
    if (r->more_headers.len)
        pos = append(head, pos, cap, r->more_headers.p, r->more_headers.len);
    if (req->location)
        pos = pt_location_headers(req->location, r->status,
                                  r->last_modified ? r->last_modified : r->mtime,
                                  clock_cache.second, head, pos, cap);
    return pos;
}

/* Keeps a copy of a head for pt_response.head_memo (none when out of memory). */
static void memo_keep(pt_head_memo *m, const char *head, size_t len, time_t second)
{
    if (len > m->cap) {
        char *buf = realloc(m->buf, len);
        if (!buf)
            return;
        m->buf = buf;
        m->cap = len;
    }
    memcpy(m->buf, head, len);
    m->len = len;
    m->second = second;
}

int pt_request_respond(pt_request *req, const pt_response *r)
{
    pt_http_conn *hc = req->hc;
    pt_conn *c = pt_http_conn_conn(hc);
    if (c->dead) {
        if (r->file_fd >= 0 && !r->file_borrowed)
            close(r->file_fd);
        return -ECONNABORTED;
    }
    pt_response own;
    if (req->error_page && req->error_status && r->status == 200) {
        /* an error_page answer keeps the status of the error */
        own = *r;
        own.status = req->error_status;
        r = &own;
    }
    if (r->file_fd >= 0 && r->file_borrowed && r->body_len > INLINE_FILE_MAX &&
        req->method_id != 2 /* HTTP_HEAD */ && !r->no_body && status_has_body(r->status)) {
        /* Sent with sendfile after this call, when the cache may have closed its fd: the queue
         * gets its own. (A small body is read at once from the borrowed fd.) */
        if (r != &own)
            own = *r;
        own.file_borrowed = false;
        if ((own.file_fd = fcntl(r->file_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            pt_request_log(req, PT_LOG_CRIT, "dup() failed (%s)", strerror(errno));
            return pt_request_respond_error(req, 503);
        }
        r = &own;
    }
    bool close_conn = r->close || pt_http_conn_should_close(hc);
    /* A stream of unknown length is chunked in HTTP/1.1; in HTTP/1.0 the close ends it. */
    bool chunked = r->stream && r->stream_length < 0 && req->version_minor >= 1;
    if (r->stream && r->stream_length < 0 && !chunked)
        close_conn = true;
    bool head_only = req->method_id == 2 /* HTTP_HEAD */ || !status_has_body(r->status);
    uint64_t body_len = r->body_len;

    clock_update((time_t)ev_now(c->timer.loop));
    /* Written in place at the end of the out-queue; 8 KiB leaves room for long add_header lines
     * (a Content-Security-Policy). Built by copying: this runs once per response and
     * formatting functions cost more than the rest of the head together. */
    size_t cap = RESPONSE_HEAD_MAX, pos;
    char *head = pt_outq_reserve(&c->out, cap);
    pt_head_memo *memo = r->status == 200 && !req->error_page ? r->head_memo : NULL;
    if (memo && memo->buf && memo->second == clock_cache.second) {
        memcpy(head, memo->buf, memo->len);
        pos = memo->len;
    } else {
        pos = format_head(req, r, chunked, head, cap);
        if (memo && pos <= cap)
            memo_keep(memo, head, pos, clock_cache.second);
    }
    if (close_conn)
        pos = APPEND_LIT(head, pos, cap, "Connection: close\r\n");
    else if (req->version_minor == 0)
        pos = APPEND_LIT(head, pos, cap, "Connection: keep-alive\r\n");
    pos = APPEND_LIT(head, pos, cap, "\r\n");
    if (pos > cap) {
        pt_outq_commit(&c->out, 0);
        if (r->file_fd >= 0 && !r->file_borrowed)
            close(r->file_fd);
        pt_log_error(PT_LOG_ERROR, "response head too large (%zu bytes)", pos);
        pt_conn_kill(c);
        return -E2BIG;
    }
    pt_outq_commit(&c->out, pos);

    uint64_t sent = 0;
    if (!head_only && !r->no_body && !r->stream) {
        if (r->push_body) {
            int e = r->push_body(&c->out, r->push_body_data);
            if (e < 0) {
                pt_conn_kill(c); /* the head is out: the framing is lost */
                return e;
            }
        } else if (r->file_fd >= 0) {
            if (body_len <= INLINE_FILE_MAX) {
                char buf[INLINE_FILE_MAX];
                ssize_t got = pread(r->file_fd, buf, body_len, r->file_off);
                if (!r->file_borrowed)
                    close(r->file_fd);
                if (got != (ssize_t)body_len) {
                    /* The file changed under us; the head is out, so the framing is lost. */
                    pt_conn_kill(c);
                    return -EIO;
                }
                pt_outq_push_copy(&c->out, buf, body_len);
            } else {
                bool use_sendfile = req->location ? req->location->sendfile
                                                  : !req->vhost || req->vhost->conf->sendfile;
                pt_outq_push_file(&c->out, r->file_fd, r->file_off, body_len,
                                  PT_OUTQ_CLOSE_FD | (use_sendfile ? 0 : PT_OUTQ_NO_SENDFILE));
            }
        } else if (body_len) {
            if (r->body_hold) {
                r->body_hold(r->body_holder);
                pt_outq_push_ref(&c->out, r->body, body_len, r->body_release, r->body_holder);
            } else {
                pt_outq_push_copy(&c->out, r->body, body_len);
            }
        }
        sent = body_len;
    } else if (r->file_fd >= 0 && !r->file_borrowed) {
        close(r->file_fd);
    }
    if (r->stream) {
        pt_http_conn_stream_started(hc, close_conn, chunked, r->stream_length, r->status);
        return 0;
    }
    pt_http_conn_responded(hc, close_conn);
    pt_request_access_log(req, r->status, sent);
    pt_http_conn_kick(hc);
    return 0;
}

int pt_request_respond_error(pt_request *req, int status)
{
    return pt_request_respond_error_with(req, status, (pt_str){"", 0});
}

size_t pt_http_status_page(int status, char *buf, size_t cap)
{
    const char *reason = pt_http_reason(status);
    int n = snprintf(buf, cap,
                     "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
                     "<center><h1>%d %s</h1></center>\r\n<hr><center>porter</center>\r\n"
                     "</body>\r\n</html>\r\n",
                     status, reason, status, reason);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

int pt_request_respond_error_with(pt_request *req, int status, pt_str headers)
{
    char body[PT_STATUS_PAGE_MAX];
    pt_response r;
    pt_response_init(&r, status);
    r.content_type = "text/html";
    r.body = body;
    r.body_len = pt_http_status_page(status, body, sizeof body);
    r.close = status == 400 || status == 408 || status == 413 || status == 414 || status == 431 ||
              status == 501 || status == 505;
    if (status == 405)
        r.allow = "GET, HEAD";
    r.extra_headers = headers;
    return pt_request_respond(req, &r);
}
