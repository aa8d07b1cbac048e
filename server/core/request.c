/*
 * The request core (see request.h): what every protocol's requests share, and the handler's
 * calls passed on to the protocol.
 */
#include "server/core/request.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connmgr/buffer.h"
#include "connmgr/custodian.h"
#include "server/core/regex.h"
#include "connmgr/proxy_protocol.h"

void pt_request_init(pt_request *req, const pt_request_proto *proto, struct ev_loop *loop,
                     char *chunk, size_t offset)
{
    memset(req, 0, sizeof *req);
    req->proto = proto;
    req->loop = loop;
    req->arena = chunk;
    req->arena_used = (offset + 15) & ~(size_t)15;
}

void pt_request_set_proxied(pt_request *req, const pt_proxy_header *h)
{
    req->conn_peer = req->peer;
    req->conn_peerlen = req->peerlen;
    req->proxied = h;
    req->peer = &h->src.sa;
    req->peerlen = h->srclen;
}

void pt_request_tell_abort(pt_request *req)
{
    req->body_cb = NULL;
    req->writable_cb = NULL;
    pt_request_cb cb = req->abort_cb;
    req->abort_cb = NULL;
    if (cb)
        cb(req, req->abort_data);
}

void pt_request_dispose(pt_request *req)
{
    /* The handler's resources go first: they may still look at the request. */
    pt_custodian_shutdown(req->custodian);
    req->custodian = NULL;
    if (req->sent_custodian) {
        if (req->proto->release_when_sent)
            req->proto->release_when_sent(req, req->sent_custodian);
        else
            pt_custodian_shutdown(req->sent_custodian);
        req->sent_custodian = NULL;
    }
    for (char *m = req->arena_more, *next; m; m = next) {
        next = *(char **)m;
        pt_chunk_put(m);
    }
    req->arena_more = NULL;
    for (char *m = req->arena_large, *next; m; m = next) {
        next = *(char **)m;
        free(m);
    }
    req->arena_large = NULL;
}

/* The arena: the rest of the request's first chunk, then more chunks as needed (a kept
 * request's head and whatever its handler allocates); all of it goes when the request ends. */
void *pt_request_alloc(pt_request *req, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!req->arena || size > PT_CHUNK_SIZE - 16)
        return NULL;
    if (size > PT_CHUNK_SIZE - req->arena_used) {
        char *chunk = pt_chunk_get();
        *(char **)chunk = req->arena_more;
        req->arena_more = chunk;
        req->arena = chunk;
        req->arena_used = 16;
    }
    void *p = req->arena + req->arena_used;
    req->arena_used += size;
    return p;
}

void *pt_request_alloc_large(pt_request *req, size_t size)
{
    if (size <= PT_CHUNK_SIZE - 16)
        return pt_request_alloc(req, size);
    if (size > SIZE_MAX - 16)
        return NULL;
    char *block = malloc(16 + size); /* 16: the link, and the block's alignment */
    if (!block)
        return NULL;
    *(char **)block = req->arena_large;
    req->arena_large = block;
    return block + 16;
}

pt_custodian *pt_request_custodian(pt_request *req)
{
    if (!req->custodian)
        req->custodian = pt_custodian_new(req->conn_custodian);
    return req->custodian;
}

pt_custodian *pt_request_sent_custodian(pt_request *req)
{
    if (!req->sent_custodian)
        req->sent_custodian = pt_custodian_new(req->conn_custodian);
    return req->sent_custodian;
}

const pt_header *pt_request_header(const pt_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (pt_str_ieq(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

int pt_request_peer(const pt_request *req, struct sockaddr_storage *out, socklen_t *len)
{
    if (!req->peer || (req->peer->sa_family != AF_INET && req->peer->sa_family != AF_INET6))
        return -EAFNOSUPPORT;
    memset(out, 0, sizeof *out);
    memcpy(out, req->peer, req->peerlen);
    if (len)
        *len = req->peerlen;
    return 0;
}

int pt_request_local(const pt_request *req, struct sockaddr_storage *out, socklen_t *len)
{
    return req->proto->local_addr(req, out, len);
}

const char *pt_request_scheme(const pt_request *req)
{
    return req->tls ? "https" : "http";
}

/* ---- what the handler asks, passed to the protocol ---- */

int pt_response_write(pt_request *req, const void *data, size_t len)
{
    /* The protocols say 1 for a piece queued past their bound: the API's predicate tells it. */
    int r = req->proto->write(req, data, len);
    if (r < 0)
        return r;
    req->write_full = r == 1;
    return 0;
}

bool pt_response_is_full(const pt_request *req)
{
    return req->write_full && req->proto->pending(req);
}

void pt_response_trailers(pt_request *req, pt_str lines)
{
    req->trailers = (pt_str){"", 0};
    if (!req->te_trailers || !lines.len)
        return;
    char *copy = pt_request_alloc(req, lines.len);
    if (!copy)
        return;
    memcpy(copy, lines.p, lines.len);
    req->trailers = (pt_str){copy, lines.len};
}

int pt_response_end(pt_request *req)
{
    return req->proto->end(req);
}

void pt_response_on_writable(pt_request *req, pt_request_cb cb, void *data)
{
    req->writable_cb = cb;
    req->writable_data = data;
}

bool pt_response_pending(const pt_request *req)
{
    return req->proto->pending(req);
}

void pt_request_read_body(pt_request *req, pt_body_cb cb, void *data)
{
    req->body_cb = cb;
    req->body_data = data;
    req->proto->read_body(req);
}

void pt_request_pause_body(pt_request *req, bool pause)
{
    req->proto->pause_body(req, pause);
}

void pt_request_on_abort(pt_request *req, pt_request_cb cb, void *data)
{
    req->abort_cb = cb;
    req->abort_data = data;
}

void pt_request_reset_timeout(pt_request *req, double secs)
{
    req->proto->reset_timeout(req, secs);
}

void pt_request_adjust_timeout(pt_request *req, double secs)
{
    req->proto->adjust_timeout(req, secs);
}

void pt_request_set_limit_rate(pt_request *req, uint64_t rate)
{
    req->limit_rate = rate;
    req->limit_rate_set = true;
}

uint64_t pt_request_limit_rate(const pt_request *req)
{
    return req->limit_rate;
}

void pt_request_abandon(pt_request *req)
{
    req->proto->abandon(req);
}

int pt_request_upgrade(pt_request *req, int status, const void *head, size_t len,
                       const pt_upgrade_ops *ops, void *data, struct pt_conn **out)
{
    *out = NULL;
    return req->proto->upgrade(req, status, head, len, ops, data, out);
}

size_t pt_response_filter_head(const pt_request *req, const pt_response *r, time_t now, char *buf,
                               size_t pos, size_t cap)
{
    time_t mtime = r->last_modified ? r->last_modified : r->mtime;
    for (const pt_response_filter *f = req->filters; f; f = f->next)
        pos = f->head_lines(f, r->status, mtime, now, buf, pos, cap);
    return pos;
}

/* ---- the proxy's attempts, for the access log ---- */

void pt_request_upstream_begin(pt_request *req, const char *addr, double now)
{
    if (!req->upstream) {
        req->upstream = pt_request_alloc(req, sizeof *req->upstream);
        if (!req->upstream)
            return;
        req->upstream->n = 0;
    }
    pt_upstream_tries *u = req->upstream;
    if (u->n < PT_UPSTREAM_TRIES) {
        u->t[u->n].addr = addr;
        u->t[u->n].status = 0;
        u->t[u->n].start = now;
        u->t[u->n].end = 0;
    }
    u->n++;
}

void pt_request_upstream_status(pt_request *req, int status)
{
    pt_upstream_tries *u = req->upstream;
    if (u && u->n && u->n <= PT_UPSTREAM_TRIES && !u->t[u->n - 1].status)
        u->t[u->n - 1].status = status;
}

void pt_request_upstream_end(pt_request *req, double now)
{
    pt_upstream_tries *u = req->upstream;
    if (u && u->n && u->n <= PT_UPSTREAM_TRIES && !u->t[u->n - 1].end)
        u->t[u->n - 1].end = now;
}

/* Keeps the groups of a match of `re` in the request, with a copy of the subject (the router's
 * path lives on its stack). Nothing is kept for a pattern without groups. */
void pt_request_keep_captures(pt_request *req, const pt_captures *caps)
{
    if (caps->n <= 1 && pt_regex_groups(caps->re) == 0)
        return; /* nginx's: the captures of the last pattern that had groups stay */
    size_t len = 0;
    for (uint32_t k = 0; k < 2 * caps->n; k++)
        if (caps->ov[k] != UINT32_MAX && caps->ov[k] > len)
            len = caps->ov[k];
    pt_captures *kept = pt_request_alloc(req, sizeof *kept);
    char *subject = pt_request_alloc(req, len + 1);
    if (!kept || !subject) {
        req->captures = NULL;
        return;
    }
    *kept = *caps;
    memcpy(subject, caps->subject, len);
    subject[len] = '\0';
    kept->subject = subject;
    req->captures = kept;
}
