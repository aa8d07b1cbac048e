/*
 * What every protocol's responses share: the status texts and the built-in error pages, the
 * dates, the access log line and the error log's line about a request.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "listener/listener.h"
#include "server/core/logfmt.h"
#include "server/core/request.h"
#include "server/core/stats.h"

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

size_t pt_response_head_fields(const pt_request *req, const pt_response *r, bool chunked,
                               const pt_clock *clock, char *buf, size_t pos, size_t cap)
{
    if (!r->omit_server)
        pos = req->server_tokens
                  ? PT_APPEND_LIT(buf, pos, cap, "Server: porter/" PORTER_VERSION "\r\n")
                  : PT_APPEND_LIT(buf, pos, cap, "Server: porter\r\n");
    if (!r->omit_date) {
        pos = PT_APPEND_LIT(buf, pos, cap, "Date: ");
        pos = pt_append(buf, pos, cap, clock->date, clock->date_len);
        pos = PT_APPEND_LIT(buf, pos, cap, "\r\n");
    }
    if (r->content_type) {
        pos = PT_APPEND_LIT(buf, pos, cap, "Content-Type: ");
        pos = pt_append(buf, pos, cap, r->content_type, strlen(r->content_type));
        pos = PT_APPEND_LIT(buf, pos, cap, "\r\n");
    }
    if (chunked && pt_http_status_has_body(r->status)) {
        pos = PT_APPEND_LIT(buf, pos, cap, "Transfer-Encoding: chunked\r\n");
    } else if (!r->no_body && pt_http_status_has_body(r->status) &&
               (!r->stream || r->stream_length >= 0)) {
        pos = PT_APPEND_LIT(buf, pos, cap, "Content-Length: ");
        pos = pt_append_uint(buf, pos, cap, r->stream ? (uint64_t)r->stream_length : r->body_len);
        pos = PT_APPEND_LIT(buf, pos, cap, "\r\n");
    }
    if (r->last_modified > 0) {
        char date[32];
        pos = PT_APPEND_LIT(buf, pos, cap, "Last-Modified: ");
        pos = pt_append(buf, pos, cap, date, pt_http_date_format(r->last_modified, date));
        pos = PT_APPEND_LIT(buf, pos, cap, "\r\n");
    }
    if (r->location) {
        pos = PT_APPEND_LIT(buf, pos, cap, "Location: ");
        pos = pt_append(buf, pos, cap, r->location, strlen(r->location));
        pos = PT_APPEND_LIT(buf, pos, cap, "\r\n");
    }
    if (r->allow) {
        pos = PT_APPEND_LIT(buf, pos, cap, "Allow: ");
        pos = pt_append(buf, pos, cap, r->allow, strlen(r->allow));
        pos = PT_APPEND_LIT(buf, pos, cap, "\r\n");
    }
    if (r->extra_headers.len)
        pos = pt_append(buf, pos, cap, r->extra_headers.p, r->extra_headers.len);
    if (r->more_headers.len)
        pos = pt_append(buf, pos, cap, r->more_headers.p, r->more_headers.len);
    if (r->status == 401 && req->www_authenticate.len)
        pos = pt_append(buf, pos, cap, req->www_authenticate.p, req->www_authenticate.len);
    return pt_response_filter_head(req, r, clock->second, buf, pos, cap);
}

void pt_response_init(pt_response *r, int status)
{
    memset(r, 0, sizeof *r);
    r->status = status;
    r->file_fd = -1;
}

int pt_request_respond(pt_request *req, const pt_response *r)
{
    pt_response own;
    if (req->error_page && req->error_status && r->status == 200) {
        /* an error_page answer keeps the status of the error */
        own = *r;
        own.status = req->error_status;
        r = &own;
    }
    return req->respond_via ? req->respond_via(req, r) : req->proto->respond(req, r);
}

/* Out of line, so that a request with no access log does not pay for this one's frame. */
__attribute__((noinline)) static void access_log_write(pt_request *req)
{
    char line[PT_LOG_LINE_MAX];
    const pt_logfmt *made = NULL; /* the format `line` holds (logs often share one) */
    size_t len = 0;
    for (size_t i = 0; i < req->naccess_logs; i++) {
        const pt_access_log *a = &req->access_logs[i];
        if (a->cond) {
            char v[64];
            size_t n = pt_logfmt_line(a->cond, req, v, sizeof v);
            if (n == 0 || (n == 1 && v[0] == '0'))
                continue;
        }
        if (a->fmt != made) {
            len = pt_logfmt_line(a->fmt, req, line, sizeof line - 1);
            line[len++] = '\n';
            made = a->fmt;
        }
        pt_log_append(a->log, line, len);
    }
}

void pt_request_access_log(pt_request *req, int status, uint64_t body_bytes)
{
    req->status = status;
    req->body_bytes_sent = body_bytes;
    pt_stats_count_request(req);
    if (req->naccess_logs)
        access_log_write(req);
}

void pt_request_log(pt_request *req, int level, const char *fmt, ...)
{
    pt_log *log = req->error_log;
    pt_log_level threshold = req->vhost ? req->error_level : PT_LOG_NOTICE;
    if (!log && !pt_log_enabled((pt_log_level)level))
        return;
    if (log && level < (int)threshold)
        return;
    char msg[1024], addr[PT_SOCKADDR_STRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (pt_sockaddr_format(req->peer, addr, sizeof addr) < 0)
        strcpy(addr, "-");
    pt_log_error_to(log, threshold, (pt_log_level)level,
                    "%s, client: %s, request: \"%.*s %.*s HTTP/%d.%d\"", msg, addr,
                    (int)req->method.len, req->method.p, (int)req->target.len, req->target.p,
                    req->version_major, req->version_minor);
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
