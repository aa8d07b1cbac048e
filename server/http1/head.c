/*
 * HTTP/1 responses: the head formatted in one pass into the out-queue, the body after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connmgr/conn.h"
#include "server/http1/conn.h"

/* Files up to this size are read into the out-queue so head and body leave in one writev;
 * larger ones go out with sendfile. */
#define INLINE_FILE_MAX (16 * 1024)

/* The largest response head. */
#define RESPONSE_HEAD_MAX 8192

/* The head of `r` up to its Connection line, at `head` (room: `cap`). Returns its length, which
 * is more than `cap` when it does not fit. */
static size_t format_head(const pt_request *req, const pt_response *r, bool chunked,
                          const pt_clock *clock, char *head, size_t cap)
{
    size_t pos = 0;
    if (r->status == 200) {
        pos = PT_APPEND_LIT(head, pos, cap, "HTTP/1.1 200 OK");
    } else {
        pos = PT_APPEND_LIT(head, pos, cap, "HTTP/1.1 ");
        pos = pt_append_uint(head, pos, cap, (uint64_t)r->status);
        pos = PT_APPEND_LIT(head, pos, cap, " ");
        const char *reason = pt_http_reason(r->status);
        pos = pt_append(head, pos, cap, reason, strlen(reason));
    }
    pos = PT_APPEND_LIT(head, pos, cap, "\r\n");
    return pt_response_head_fields(req, r, chunked, clock, head, pos, cap);
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

int pt_http1_respond(pt_request *req, const pt_response *r)
{
    pt_http1_conn *hc = pt_http1_conn_of(req);
    pt_conn *c = pt_http1_conn_conn(hc);
    if (c->dead) {
        if (r->file_fd >= 0 && !r->file_borrowed)
            close(r->file_fd);
        return -ECONNABORTED;
    }
    pt_response own;
    if (r->file_fd >= 0 && r->file_borrowed && r->body_len > INLINE_FILE_MAX &&
        req->method_id != PT_METHOD_HEAD && !r->no_body && pt_http_status_has_body(r->status)) {
        /* Sent with sendfile after this call, when the cache may have closed its fd: the queue
         * gets its own. (A small body is read at once from the borrowed fd.) */
        own = *r;
        own.file_borrowed = false;
        if ((own.file_fd = fcntl(r->file_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            pt_request_log(req, PT_LOG_CRIT, "dup() failed (%s)", strerror(errno));
            return pt_request_respond_error(req, 503);
        }
        r = &own;
    }
    bool close_conn = r->close || pt_http1_conn_should_close(hc);
    /* A stream of unknown length is chunked in HTTP/1.1; in HTTP/1.0 the close ends it. */
    bool chunked = r->stream && r->stream_length < 0 && req->version_minor >= 1;
    if (r->stream && r->stream_length < 0 && !chunked)
        close_conn = true;
    bool head_only = req->method_id == PT_METHOD_HEAD || !pt_http_status_has_body(r->status);
    uint64_t body_len = r->body_len;

    if (req->limit_rate)
        pt_http1_conn_rate(hc); /* from the head on, as nginx counts */
    const pt_clock *clock = pt_clock_at((time_t)ev_now(c->timer.loop));
    /* Written in place at the end of the out-queue; 8 KiB leaves room for long add_header lines
     * (a Content-Security-Policy). Built by copying: this runs once per response and
     * formatting functions cost more than the rest of the head together. */
    size_t cap = RESPONSE_HEAD_MAX, pos;
    char *head = pt_outq_reserve(&c->out, cap);
    pt_head_memo *memo = r->status == 200 && !req->error_page ? r->head_memo : NULL;
    if (memo && memo->buf && memo->second == clock->second) {
        memcpy(head, memo->buf, memo->len);
        pos = memo->len;
    } else {
        pos = format_head(req, r, chunked, clock, head, cap);
        if (memo && pos <= cap)
            memo_keep(memo, head, pos, clock->second);
    }
    if (close_conn)
        pos = PT_APPEND_LIT(head, pos, cap, "Connection: close\r\n");
    else if (req->version_minor == 0)
        pos = PT_APPEND_LIT(head, pos, cap, "Connection: keep-alive\r\n");
    pos = PT_APPEND_LIT(head, pos, cap, "\r\n");
    if (pos > cap) {
        pt_outq_commit(&c->out, 0);
        if (r->file_fd >= 0 && !r->file_borrowed)
            close(r->file_fd);
        pt_log_error(PT_LOG_ERROR, "response head too large (%zu bytes)", pos);
        pt_conn_kill(c);
        return -E2BIG;
    }
    pt_outq_commit(&c->out, pos);
    req->head_bytes_sent = pos;

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
                pt_outq_push_file(&c->out, r->file_fd, r->file_off, body_len,
                                  PT_OUTQ_CLOSE_FD | (req->sendfile ? 0 : PT_OUTQ_NO_SENDFILE));
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
        pt_http1_conn_stream_started(hc, close_conn, chunked, r->stream_length, r->status);
        return 0;
    }
    pt_http1_conn_responded(hc, close_conn);
    pt_request_access_log(req, r->status, sent);
    pt_http1_conn_kick(hc);
    return 0;
}
