/*
 * Compression on the fly (see compress.h): the decision, the rewritten head, and the body
 * compressed from memory, from a file, or as the handler streams it.
 */
#include "server/core/compress.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "connmgr/custodian.h"
#include "server/core/coder.h"
#include "server/core/conf.h"
#include "server/core/encoding.h"
#include "server/core/regex.h"

/* A file body is read and compressed this much at a time; one at most this long is
 * compressed whole, before its head, so that its answer has a Content-Length. */
#define PIECE (64 * 1024)
/* Pieces of one file compressed in one turn of the loop, before other connections' turn. */
#define PIECES_PER_TURN 8

/* ---- the response's header lines ---- */

/* One "Name: value\r\n" line of a block of them. */
typedef struct field {
    pt_str name, value;
    pt_str line; /* the whole line, CRLF included */
} field;

/* The next line of `*rest` into `f`; false at the end. */
static bool next_field(pt_str *rest, field *f)
{
    if (!rest->len)
        return false;
    const char *p = rest->p, *end = p + rest->len;
    const char *eol = memchr(p, '\n', rest->len);
    const char *next = eol ? eol + 1 : end;
    const char *vend = eol ? eol : end;
    if (vend > p && vend[-1] == '\r')
        vend--;
    const char *colon = memchr(p, ':', (size_t)(vend - p));
    if (!colon)
        colon = vend;
    const char *v = colon < vend ? colon + 1 : vend;
    while (v < vend && pt_ows(*v))
        v++;
    while (vend > v && pt_ows(vend[-1]))
        vend--;
    f->name = (pt_str){p, (size_t)(colon - p)};
    f->value = (pt_str){v, (size_t)(vend - v)};
    f->line = (pt_str){p, (size_t)(next - p)};
    rest->p = next;
    rest->len = (size_t)(end - next);
    return true;
}

/* Whether the comma-separated list `list` has the member `tok` (case-insensitive; a member's
 * parameters, after '=' or ';', are not compared). */
static bool list_has(pt_str list, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = list.p, *end = p + list.len;
    while (p < end) {
        while (p < end && (pt_ows(*p) || *p == ','))
            p++;
        const char *m = p;
        while (p < end && *p != ',' && *p != '=' && *p != ';' && !pt_ows(*p))
            p++;
        if ((size_t)(p - m) == tl && strncasecmp(m, tok, tl) == 0)
            return true;
        while (p < end && *p != ',')
            p++;
    }
    return false;
}

/* What the response's head says that compression depends on. */
typedef struct facts {
    pt_str type; /* its media type, without parameters */
    bool encoded;
    bool no_transform, no_cache, no_store, private_;
    bool etag, last_modified, expires, expired;
    bool vary_ae; /* Vary already names Accept-Encoding (or is "*") */
} facts;

static void facts_of_lines(pt_str lines, time_t now, facts *f)
{
    field h;
    while (next_field(&lines, &h)) {
        if (pt_str_ieq(h.name, "content-type")) {
            size_t n = 0;
            while (n < h.value.len && h.value.p[n] != ';' && !pt_ows(h.value.p[n]))
                n++;
            f->type = (pt_str){h.value.p, n};
        } else if (pt_str_ieq(h.name, "content-encoding")) {
            if (h.value.len && !pt_str_ieq(h.value, "identity"))
                f->encoded = true;
        } else if (pt_str_ieq(h.name, "cache-control")) {
            f->no_transform |= list_has(h.value, "no-transform");
            f->no_cache |= list_has(h.value, "no-cache");
            f->no_store |= list_has(h.value, "no-store");
            f->private_ |= list_has(h.value, "private");
        } else if (pt_str_ieq(h.name, "etag")) {
            f->etag = true;
        } else if (pt_str_ieq(h.name, "last-modified")) {
            f->last_modified = true;
        } else if (pt_str_ieq(h.name, "expires")) {
            f->expires = true;
            time_t t = pt_http_date_parse(h.value.p, h.value.len);
            f->expired |= t < 0 || t <= now; /* an invalid date means already expired */
        } else if (pt_str_ieq(h.name, "vary")) {
            f->vary_ae |= list_has(h.value, "accept-encoding") || list_has(h.value, "*");
        }
    }
}

static void facts_of(const pt_request *req, const pt_response *r, facts *f)
{
    memset(f, 0, sizeof *f);
    time_t now = (time_t)req->start;
    facts_of_lines(r->extra_headers, now, f);
    facts_of_lines(r->more_headers, now, f);
    const char *type = r->content_type ? r->content_type : r->type_hint;
    if (type) {
        size_t n = 0;
        while (type[n] && type[n] != ';' && !pt_ows(type[n]))
            n++;
        f->type = (pt_str){type, n};
    }
    f->last_modified |= r->last_modified > 0;
}

/* ---- the decision ---- */

static bool type_listed(const pt_conf_coding *c, pt_str type)
{
    if (c->any_type)
        return true;
    if (!type.len)
        return false;
    if (pt_str_ieq(type, "text/html"))
        return true;
    for (size_t i = 0; i < c->ntypes; i++)
        if (pt_str_ieq(type, c->types[i]))
            return true;
    return false;
}

/* The body's length when known, else -1. */
static int64_t known_length(const pt_response *r)
{
    if (r->stream)
        return r->stream_length;
    if (r->no_body)
        return -1;
    return (int64_t)r->body_len;
}

/* The codings that could compress this response, going by the response alone (PT_ENC_* bits):
 * what Vary is about. */
static unsigned codings_for(const pt_conf_compress *cc, const pt_response *r, const facts *f)
{
    bool head_only = r->no_body || r->status == 304;
    if (head_only ? !r->type_hint : !(r->status == 200 || r->status == 403 || r->status == 404))
        return 0;
    if (f->encoded || f->no_transform || (r->push_body && !head_only))
        return 0;
    int64_t len = head_only ? -1 : known_length(r);
    unsigned ok = 0;
    for (int e = PT_ENC_BR; e < PT_ENC_COUNT; e++) {
        const pt_conf_coding *c = &cc->coding[e];
        if (c->on && type_listed(c, f->type) && (len < 0 || (uint64_t)len >= c->min_length))
            ok |= 1u << e;
    }
    return ok;
}

/* nginx's `gzip_disable msie6`: MSIE 4 to 6, except 6 with SV1 (which decompresses). */
static bool is_msie6(pt_str ua)
{
    for (size_t i = 0; i + 7 < ua.len; i++) {
        if (memcmp(ua.p + i, "MSIE ", 5) == 0 && ua.p[i + 5] >= '4' && ua.p[i + 5] <= '6' &&
            ua.p[i + 6] == '.') {
            for (size_t j = i; ua.p[i + 5] == '6' && j + 3 <= ua.len; j++)
                if (memcmp(ua.p + j, "SV1", 3) == 0)
                    return false;
            return true;
        }
    }
    return false;
}

static bool disabled_for(const pt_request *req, const pt_conf_compress *cc)
{
    if (!cc->ndisable && !cc->disable_msie6)
        return false;
    const pt_header *ua = pt_request_header(req, "user-agent");
    if (!ua)
        return false;
    if (cc->disable_msie6 && is_msie6(ua->value))
        return true;
    if (!cc->ndisable)
        return false;
    for (size_t i = 0; i < cc->ndisable; i++) {
        int m = pt_regex_match(cc->disable[i], ua->value.p, ua->value.len, NULL);
        if (m < 0)
            pt_log_error(PT_LOG_ERROR, "gzip_disable \"%s\": the regex match limit was hit",
                         pt_regex_pattern(cc->disable[i]));
        if (m == 1)
            return true;
    }
    return false;
}

/* gzip_proxied: whether an answer to a request that came through a proxy may be compressed. */
static bool proxied_allows(const pt_request *req, const pt_conf_compress *cc, const facts *f)
{
    if (!pt_request_header(req, "via"))
        return true;
    unsigned p = cc->proxied;
    if (p & PT_PROXIED_ANY)
        return true;
    return ((p & PT_PROXIED_EXPIRED) && f->expires && f->expired) ||
           ((p & PT_PROXIED_NO_CACHE) && f->no_cache) ||
           ((p & PT_PROXIED_NO_STORE) && f->no_store) ||
           ((p & PT_PROXIED_PRIVATE) && f->private_) ||
           ((p & PT_PROXIED_NO_LAST_MODIFIED) && !f->last_modified) ||
           ((p & PT_PROXIED_NO_ETAG) && !f->etag) ||
           ((p & PT_PROXIED_AUTH) && pt_request_header(req, "authorization"));
}

/* The coding this request's answer goes in, among `ok` (PT_ENC_IDENTITY: none). */
static pt_encoding choose(const pt_request *req, const pt_conf_compress *cc, unsigned ok,
                          const facts *f)
{
    if (req->version_major * 10 + req->version_minor < cc->http_version)
        return PT_ENC_IDENTITY;
    if (pt_request_header(req, "range"))
        return PT_ENC_IDENTITY; /* a range is of the identity: 206s and 200s alike */
    const pt_header *ae = pt_request_header(req, "accept-encoding");
    if (!ae)
        return PT_ENC_IDENTITY;
    pt_encoding want[PT_ENC_COUNT - 1];
    size_t n = pt_encoding_choose(ae->value, &cc->order, want);
    pt_encoding e = PT_ENC_IDENTITY;
    for (size_t i = 0; i < n && e == PT_ENC_IDENTITY; i++)
        if (ok & (1u << want[i]))
            e = want[i];
    if (e == PT_ENC_IDENTITY || disabled_for(req, cc) || !proxied_allows(req, cc, f))
        return PT_ENC_IDENTITY;
    return e;
}

/* ---- the head ---- */

/* `lines` rewritten for an answer in coding `e`: Accept-Encoding in Vary when `vary`; when `e`
 * is not identity a weak ETag, and unless `head_only` (a 304) no Content-Length or
 * Accept-Ranges and a Content-Encoding line. NULL .p: no memory. */
static pt_str rewrite_lines(pt_request *req, pt_str lines, pt_encoding e, bool vary, bool head_only)
{
    static const char ae_line[] = "Vary: Accept-Encoding\r\n";
    /* A line grows by at most its own length (an ETag line of 7 bytes or more by 4), the one
     * Vary merged into by 19; then the Content-Encoding line (24 at most) or ae_line. */
    size_t cap = 2 * lines.len + 64 + sizeof ae_line;
    char *out = pt_request_alloc(req, cap);
    if (!out)
        return (pt_str){NULL, 0};
    size_t pos = 0;
    bool vary_done = !vary;
    field h;
    while (next_field(&lines, &h)) {
        if (e != PT_ENC_IDENTITY && !head_only &&
            (pt_str_ieq(h.name, "content-length") || pt_str_ieq(h.name, "accept-ranges")))
            continue;
        if (e != PT_ENC_IDENTITY && pt_str_ieq(h.name, "etag") && h.value.len &&
            h.value.p[0] == '"') {
            pos = pt_append(out, pos, cap, "ETag: W/", 8);
            pos = pt_append(out, pos, cap, h.value.p, h.value.len);
            pos = pt_append(out, pos, cap, "\r\n", 2);
            continue;
        }
        if (!vary_done && pt_str_ieq(h.name, "vary")) {
            vary_done = true;
            if (!list_has(h.value, "accept-encoding") && !list_has(h.value, "*")) {
                pos = pt_append(out, pos, cap, "Vary: ", 6);
                pos = pt_append(out, pos, cap, h.value.p, h.value.len);
                pos = pt_append(out, pos, cap, ", Accept-Encoding\r\n", 19);
                continue;
            }
        }
        pos = pt_append(out, pos, cap, h.line.p, h.line.len);
    }
    if (e != PT_ENC_IDENTITY && !head_only) {
        const char *name = pt_encoding_name(e);
        pos = pt_append(out, pos, cap, "Content-Encoding: ", 18);
        pos = pt_append(out, pos, cap, name, strlen(name));
        pos = pt_append(out, pos, cap, "\r\n", 2);
    }
    if (!vary_done)
        pos = pt_append(out, pos, cap, ae_line, sizeof ae_line - 1);
    return (pt_str){out, pos};
}

/* ---- a body on its way: this layer's pt_request_proto ---- */

typedef struct pt_compressing {
    pt_request *req;
    const pt_request_proto *inner; /* the protocol's own */
    pt_coder *coder;               /* NULL: nothing to compress (HEAD) */
    pt_custodian_entry *entry;     /* what releases this with the request */
    bool full;                     /* the protocol asked to wait for the writable callback */
    /* The request can end inside a feed or the protocol's respond (a write finds the client
     * gone): its release then waits for that to return. */
    bool feeding, released;
    /* a file being read */
    int fd;
    off_t off;
    uint64_t left;
    char *piece;
    ev_timer turn;
    /* a copy of what is sent, for the variant store */
    pt_variant_store *store;
    pt_variant_key key;
    pt_bytes copy;
} pt_compressing;

/* A feed returned this: the request ended inside it and everything is released. */
#define GONE (-ECANCELED)

static void free_all(pt_compressing *z)
{
    pt_coder_free(z->coder);
    if (z->fd >= 0)
        close(z->fd);
    free(z->piece);
    free(z->copy.p);
    free(z);
}

static void release(void *data)
{
    pt_compressing *z = data;
    if (z->req->compressing == z) { /* the protocol's own again, for whatever comes after */
        z->req->proto = z->inner;
        z->req->compressing = NULL;
    }
    ev_timer_stop(z->req->loop, &z->turn);
    z->released = true;
    if (!z->feeding)
        free_all(z);
}

/* Compressed bytes to the protocol (and to the copy). */
static int sink(void *data, const void *p, size_t n)
{
    pt_compressing *z = data;
    if (z->released)
        return GONE;
    if (z->store && pt_bytes_append(&z->copy, p, n) < 0)
        z->store = NULL; /* no copy kept, the answer goes on */
    int rc = z->inner->write(z->req, p, n);
    if (rc < 0)
        return rc;
    if (rc > 0)
        z->full = true;
    return 0;
}

/* Compresses through the coder into the sink; GONE when the request ended meanwhile (then
 * `z` and the request are not to be touched). */
static int feed(pt_compressing *z, const void *p, size_t n, int mode)
{
    z->feeding = true;
    int rc = pt_coder_feed(z->coder, p, n, mode, sink, z);
    z->feeding = false;
    if (z->released) {
        free_all(z);
        return GONE;
    }
    return rc;
}

/* The layer steps out: the protocol's own calls again. Releases `z`. */
static const pt_request_proto *step_out(pt_compressing *z)
{
    pt_request *req = z->req;
    const pt_request_proto *inner = z->inner;
    pt_custodian_release(z->entry);
    req->proto = inner;
    req->compressing = NULL;
    return inner;
}

/* The body failed halfway: the client must not take what it got for the whole. */
static int fail(pt_compressing *z, int rc, const char *what)
{
    if (rc == GONE)
        return -ECONNABORTED;
    pt_request *req = z->req;
    if (rc != -ECONNABORTED && rc != -EPIPE)
        pt_request_log(req, PT_LOG_ERROR, "%s failed while compressing (%s)", what, strerror(-rc));
    req->writable_cb = NULL;
    step_out(z)->abandon(req);
    return rc;
}

/* The end of the body: the coder's last bytes, then the protocol's end. */
static int finish(pt_compressing *z)
{
    pt_request *req = z->req;
    if (z->coder) {
        int rc = feed(z, NULL, 0, PT_CODER_FINISH);
        if (rc < 0)
            return fail(z, rc, "the answer");
        if (z->store)
            z->store->put(z->store, &z->key, z->copy.p, z->copy.len);
    }
    return step_out(z)->end(req);
}

static int c_respond(pt_request *req, const pt_response *r)
{
    return -EINVAL; /* answered already */
}

static int c_write(pt_request *req, const void *data, size_t len)
{
    pt_compressing *z = req->compressing;
    if (!z->coder || !len)
        return z->inner->write(req, data, len);
    z->full = false;
    /* flushed at each write: a stream of events arrives event by event */
    int rc = feed(z, data, len, PT_CODER_FLUSH);
    if (rc < 0)
        return fail(z, rc, "the answer");
    return z->full ? 1 : 0;
}

static int c_end(pt_request *req)
{
    return finish(req->compressing);
}

static void c_read_body(pt_request *req)
{
    req->compressing->inner->read_body(req);
}

static void c_pause_body(pt_request *req, bool pause)
{
    req->compressing->inner->pause_body(req, pause);
}

static void c_reset_timeout(pt_request *req, double secs)
{
    req->compressing->inner->reset_timeout(req, secs);
}

static void c_adjust_timeout(pt_request *req, double secs)
{
    req->compressing->inner->adjust_timeout(req, secs);
}

static void c_abandon(pt_request *req)
{
    step_out(req->compressing)->abandon(req);
}

static bool c_pending(const pt_request *req)
{
    return req->compressing->inner->pending(req);
}

static int c_local_addr(const pt_request *req, struct sockaddr_storage *out, socklen_t *len)
{
    return req->compressing->inner->local_addr(req, out, len);
}

static int c_upgrade(pt_request *req, int status, const void *head, size_t len,
                     const pt_upgrade_ops *ops, void *data, struct pt_conn **out)
{
    return -EINVAL; /* a response was started */
}

static const pt_request_proto compressing_proto = {
    .respond = c_respond,
    .write = c_write,
    .end = c_end,
    .read_body = c_read_body,
    .pause_body = c_pause_body,
    .reset_timeout = c_reset_timeout,
    .adjust_timeout = c_adjust_timeout,
    .abandon = c_abandon,
    .pending = c_pending,
    .local_addr = c_local_addr,
    .upgrade = c_upgrade,
};

/* ---- a file read as the client takes it ---- */

static void pump(pt_compressing *z);

static void on_writable(pt_request *req, void *data)
{
    pump(data);
}

static void on_turn(struct ev_loop *loop, ev_timer *w, int revents)
{
    pump(w->data);
}

static void pump(pt_compressing *z)
{
    ev_timer_stop(z->req->loop, &z->turn);
    for (int i = 0; i < PIECES_PER_TURN; i++) {
        size_t want = z->left < PIECE ? (size_t)z->left : PIECE;
        ssize_t got = want ? pread(z->fd, z->piece, want, z->off) : 0;
        if (want && got <= 0) { /* the file shrank, or failed */
            fail(z, got < 0 ? -errno : -ENODATA, "reading the file");
            return;
        }
        z->off += got;
        z->left -= (uint64_t)got;
        z->full = false;
        if (!z->left) {
            int rc = feed(z, z->piece, (size_t)got, PT_CODER_RUN);
            if (rc < 0)
                fail(z, rc, "the file");
            else
                finish(z);
            return;
        }
        int rc = feed(z, z->piece, (size_t)got, PT_CODER_RUN);
        if (rc < 0) {
            fail(z, rc, "the file");
            return;
        }
        if (z->full) {
            pt_response_on_writable(z->req, on_writable, z);
            return;
        }
    }
    ev_timer_set(&z->turn, 0., 0.);
    ev_timer_start(z->req->loop, &z->turn);
}

/* ---- answering ---- */

/* Reads the whole of a file body. */
static int read_whole(const pt_response *r, char *buf)
{
    size_t got = 0;
    while (got < r->body_len) {
        ssize_t n = pread(r->file_fd, buf + got, r->body_len - got, r->file_off + (off_t)got);
        if (n <= 0)
            return n < 0 ? -errno : -ENODATA;
        got += (size_t)n;
    }
    return 0;
}

/* Answers with `r`, whose body is `body` (`len` bytes, from memory) compressed whole. */
static int respond_whole(pt_request *req, pt_response *own, const pt_response *r, pt_encoding e,
                         int level, const void *body, size_t len)
{
    void *out = NULL;
    size_t outlen = 0;
    int rc = pt_coder_all(e, level, body, len, &out, &outlen);
    if (rc < 0) {
        /* nothing has gone yet: the identity goes instead */
        pt_request_log(req, PT_LOG_ERROR, "compressing the answer failed (%s)", strerror(-rc));
        pt_response id = *r;
        id.body = body;
        id.body_len = len;
        id.body_hold = NULL;
        id.body_release = NULL;
        id.file_fd = -1;
        return req->proto->respond(req, &id);
    }
    if (r->variants && r->variant_key) {
        pt_variant_key key = *r->variant_key;
        key.encoding = (int)e;
        key.level = level;
        r->variants->put(r->variants, &key, out, outlen);
    }
    own->body = out;
    own->body_len = outlen;
    own->body_hold = NULL;
    own->body_release = NULL;
    own->file_fd = -1;
    rc = req->proto->respond(req, own); /* copies what it does not send at once */
    free(out);
    return rc;
}

/* Answers with `own` (the head of a compressed answer) whose body is streamed through the
 * layer: the handler's own stream, or the file of `r`. */
static int respond_streamed(pt_request *req, pt_response *own, const pt_response *r, pt_encoding e,
                            int level, bool head_only)
{
    bool file = !r->stream && r->file_fd >= 0;
    bool owns_fd = file && !r->file_borrowed;
    pt_compressing *z = calloc(1, sizeof *z);
    pt_custodian *cust = pt_request_custodian(req);
    pt_custodian_entry *entry = z && cust ? pt_custodian_register(cust, release, z) : NULL;
    if (!entry) {
        free(z);
        if (owns_fd)
            close(r->file_fd);
        return -ENOMEM;
    }
    *z = (pt_compressing){.req = req, .inner = req->proto, .entry = entry, .fd = -1};
    ev_timer_init(&z->turn, on_turn, 0., 0.);
    z->turn.data = z;
    if (!head_only) {
        int64_t len = known_length(r);
        z->coder = pt_coder_new(e, level, len > 0 ? (uint64_t)len : 0);
        if (!z->coder) {
            pt_custodian_release(entry);
            if (owns_fd)
                close(r->file_fd);
            return -ENOMEM;
        }
    }
    if (file && !head_only) {
        z->fd = owns_fd ? r->file_fd : fcntl(r->file_fd, F_DUPFD_CLOEXEC, 0);
        owns_fd = false;
        z->piece = malloc(PIECE);
        if (z->fd < 0 || !z->piece) {
            pt_custodian_release(entry);
            return -ENOMEM;
        }
        z->off = r->file_off;
        z->left = r->body_len;
        if (r->variants && r->variant_key && r->variants->wants(r->variants, r->body_len)) {
            z->store = r->variants;
            z->key = *r->variant_key;
            z->key.encoding = (int)e;
            z->key.level = level;
        }
    }
    if (owns_fd)
        close(r->file_fd);
    own->stream = true;
    own->stream_length = -1;
    own->body = NULL;
    own->body_len = 0;
    own->file_fd = -1;
    own->push_body = NULL;
    /* the protocol may find the client gone and end the request inside */
    z->feeding = true;
    int rc = req->proto->respond(req, own);
    z->feeding = false;
    if (z->released) {
        free_all(z);
        return rc < 0 ? rc : -ECONNABORTED;
    }
    if (rc < 0) {
        pt_custodian_release(entry);
        return rc;
    }
    req->compressing = z;
    req->proto = &compressing_proto;
    if (r->stream)
        return 0; /* the handler writes */
    if (head_only)
        return finish(z);
    pump(z);
    return 0;
}

int pt_compress_respond(pt_request *req, const pt_response *r)
{
    const pt_conf_compress *cc = req->compress;
    facts f;
    facts_of(req, r, &f);
    unsigned ok = codings_for(cc, r, &f);
    if (ok) {
        /* the location's add_header lines count too (Cache-Control: no-transform, Vary) */
        char lines[1024];
        size_t n = pt_response_filter_head(req, r, (time_t)req->start, lines, 0, sizeof lines);
        facts_of_lines((pt_str){lines, n < sizeof lines ? n : 0}, (time_t)req->start, &f);
        if (f.no_transform)
            ok = 0;
    }
    if (!ok)
        return req->proto->respond(req, r);
    pt_encoding e = choose(req, cc, ok, &f);
    bool head_only = req->method_id == PT_METHOD_HEAD;
    if (e == PT_ENC_IDENTITY && (!cc->vary || f.vary_ae))
        return req->proto->respond(req, r);

    bool not_modified = r->no_body || r->status == 304;
    pt_response own = *r;
    own.extra_headers =
        rewrite_lines(req, r->extra_headers, e, cc->vary && !f.vary_ae, not_modified);
    if (!own.extra_headers.p) {
        if (r->file_fd >= 0 && !r->file_borrowed)
            close(r->file_fd);
        return -ENOMEM;
    }
    if (e == PT_ENC_IDENTITY || not_modified)
        return req->proto->respond(req, &own); /* the same head every time: the memo holds */
    own.head_memo = NULL;
    own.variants = NULL;
    own.variant_key = NULL;
    int level = cc->coding[e].level;

    /* a copy kept from an earlier answer */
    if (r->variants && r->variant_key) {
        pt_variant_key key = *r->variant_key;
        key.encoding = (int)e;
        key.level = level;
        size_t len;
        void *holder;
        const void *body = r->variants->get(r->variants, &key, &len, &holder);
        if (body) {
            if (r->file_fd >= 0 && !r->file_borrowed)
                close(r->file_fd);
            own.body = body;
            own.body_len = len;
            own.body_hold = r->variants->hold;
            own.body_release = r->variants->release;
            own.body_holder = holder;
            own.file_fd = -1;
            return req->proto->respond(req, &own);
        }
    }
    if (head_only && !r->stream) {
        /* the head a GET gets, but for the length it cannot know without compressing */
        if (r->file_fd >= 0 && !r->file_borrowed)
            close(r->file_fd);
        own.no_body = true;
        own.body = NULL;
        own.body_len = 0;
        own.body_hold = NULL;
        own.body_release = NULL;
        own.file_fd = -1;
        own.push_body = NULL;
        return req->proto->respond(req, &own);
    }
    if (r->stream)
        return respond_streamed(req, &own, r, e, level, head_only);
    if (r->file_fd < 0)
        return respond_whole(req, &own, r, e, level, r->body, r->body_len);
    if (r->body_len > PIECE)
        return respond_streamed(req, &own, r, e, level, false);
    char *buf = malloc(r->body_len ? r->body_len : 1);
    int rc = buf ? read_whole(r, buf) : -ENOMEM;
    if (r->file_fd >= 0 && !r->file_borrowed)
        close(r->file_fd);
    if (rc < 0) {
        free(buf);
        pt_request_log(req, PT_LOG_ERROR, "reading the file failed (%s)", strerror(-rc));
        return rc == -ENOMEM ? rc : pt_request_respond_error(req, 500);
    }
    own.file_borrowed = true; /* closed above */
    rc = respond_whole(req, &own, r, e, level, buf, r->body_len);
    free(buf);
    return rc;
}
