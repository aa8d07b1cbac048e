/*
 * The request core: a request and its response as handlers see them, whatever protocol carried
 * the request (HTTP/1 today). Handlers include this header and nothing of the protocol.
 *
 * A protocol (server/http1/) makes a pt_request for each request it reads, fills what it parsed,
 * asks the site (through the pt_site_ops that server.c installs) to choose the virtual host and
 * to route the request, and implements what a handler asks of the request through its
 * pt_request_proto: answering, streaming, reading the body, timeouts. The core functions below
 * are those calls, plus what every protocol shares: the request's arena, its custodian, the
 * handler's callbacks, response filters, logging.
 *
 * Lifetime: from the request's first byte until its response is complete and its body read or
 * discarded (or until it is aborted). Its strings point into the protocol's input and stay valid
 * for the request's life (they move once if the handler keeps the request past its first call);
 * they are not NUL-terminated. Memory for the request comes from its arena (pt_request_alloc),
 * released when the request ends; what a handler registers with pt_request_custodian() is
 * released then too, however the request ends.
 *
 * A handler answers exactly once with pt_request_respond() (or asks the router for an internal
 * redirect, server/site/location.h). The public half of this API (reading the body, streaming,
 * timeouts, the arena and the custodian) is declared in include/porter.h, once.
 *
 * Threading: the loop's thread only.
 */
#ifndef PORTER_SERVER_CORE_REQUEST_H
#define PORTER_SERVER_CORE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "connmgr/limits.h"
#include "porter.h"
#include "server/core/log.h"
#include "server/core/str.h"

typedef struct pt_vhost pt_vhost; /* server/site/site.h: what the request core does not read */
typedef struct pt_location pt_location; /* server/site/location.h: likewise */

/* Where the location answering a request takes files from, for $document_root, $realpath_root
 * and $request_filename (server/core/vars.h): its root, or its alias and the part of the path
 * the alias replaces. Borrowed from the location. */
typedef struct pt_file_root {
    pt_str dir;   /* absolute, NUL-terminated, without a trailing '/' (but "/") */
    pt_str alias; /* with alias: the location path it replaces; empty: `dir` is a root */
} pt_file_root;

typedef struct pt_response pt_response;
struct pt_conf_compress;
struct pt_variant_store;
struct pt_variant_key;
struct pt_compressing;
struct pt_outq;
struct pt_clock;
struct pt_conn;
struct pt_access_log;
struct ssl_st;
struct pt_proxy_header; /* connmgr/proxy_protocol.h */
struct pt_stats_sink;   /* server/core/stats.h */

/* Methods porter tells apart (numbered as llhttp numbers them, which server/http1 relies on);
 * others are PT_METHOD_OTHER, with their name in pt_request.method. */
typedef enum pt_method {
    PT_METHOD_DELETE = 0,
    PT_METHOD_GET = 1,
    PT_METHOD_HEAD = 2,
    PT_METHOD_POST = 3,
    PT_METHOD_PUT = 4,
    PT_METHOD_CONNECT = 5,
    PT_METHOD_OPTIONS = 6,
    PT_METHOD_TRACE = 7,
    PT_METHOD_PATCH = 28,
    PT_METHOD_OTHER = 1000,
} pt_method;

/* An upgraded connection's events (pt_request_upgrade), each with the `data` given there. */
typedef struct pt_upgrade_ops {
    /* New bytes are in c->in (consume what is taken: pt_inbuf_consume), or c->eof is set. */
    void (*on_read)(struct pt_conn *c, void *data);
    /* The out-queue was written out after a flush that had to wait. Optional. */
    void (*on_drain)(struct pt_conn *c, void *data);
    /* The connection's timer expired. Optional: the default kills the connection. */
    void (*on_timeout)(struct pt_conn *c, void *data);
    /* The connection is being released (what the request's custodian held already is). Do not
     * write. Optional. */
    void (*on_close)(struct pt_conn *c, void *data);
} pt_upgrade_ops;

/* What a protocol does for its requests: the calls of the functions below of the same names.
 * Every member is set (upgrade may answer -ENOTSUP) but release_when_sent. */
typedef struct pt_request_proto {
    int (*respond)(pt_request *req, const pt_response *r);
    int (*write)(pt_request *req, const void *data, size_t len);
    int (*end)(pt_request *req);
    /* The handler has set its body callback (req->body_cb): deliver the body. */
    void (*read_body)(pt_request *req);
    void (*pause_body)(pt_request *req, bool pause);
    void (*reset_timeout)(pt_request *req, double secs);
    void (*adjust_timeout)(pt_request *req, double secs);
    void (*abandon)(pt_request *req);
    bool (*pending)(const pt_request *req);
    int (*local_addr)(const pt_request *req, struct sockaddr_storage *out, socklen_t *len);
    int (*upgrade)(pt_request *req, int status, const void *head, size_t len,
                   const pt_upgrade_ops *ops, void *data, struct pt_conn **out);
    /* The request is over: shut `c` (its pt_request_sent_custodian) down once its response has
     * left, or with the connection. Optional: without it `c` is shut down at once. */
    void (*release_when_sent)(pt_request *req, pt_custodian *c);
} pt_request_proto;

/* A response filter: a step between the handler and the protocol that sees every response of
 * the requests it is attached to (the location's add_header and expires lines are one). Filters
 * form a chain through `next`, built once with what attaches them, never per request. */
typedef struct pt_response_filter {
    /* Appends header lines ("Name: value\r\n") for `r`, about a file modified at `mtime` (0:
     * none), at time `now`, to `buf` from `pos` (capacity `cap`); returns the new position.
     * Bytes beyond `cap` are not written but counted, so a result above `cap` means the head
     * did not fit. */
    size_t (*head_lines)(const struct pt_response_filter *f, int status, time_t mtime, time_t now,
                         char *buf, size_t pos, size_t cap);
    const struct pt_response_filter *next;
} pt_response_filter;

/* What the protocol layer asks of the site (installed by server.c): the protocol knows neither
 * virtual hosts nor locations. `site` is the value the protocol was given with these ops. */
typedef struct pt_site_ops {
    /* Chooses the virtual host for req->host (empty: the default one) and applies its settings:
     * vhost, limits, logs, server_tokens, sendfile. */
    void (*select)(void *site, pt_request *req);
    /* Hands the request to whoever answers it: an embedder's handler or a location. */
    void (*route)(pt_request *req);
} pt_site_ops;

struct pt_request {
    const pt_request_proto *proto;
    struct ev_loop *loop;

    /* What the protocol read. */
    pt_str method;
    int method_id; /* pt_method */
    pt_str target; /* as sent: origin-form or absolute-form */
    pt_str path;   /* target's path, still percent-encoded */
    pt_str query;  /* after '?', without it; empty if none */
    pt_str host;   /* Host header, or the authority of an absolute-form target */
    int version_major, version_minor;
    pt_header *headers;
    size_t nheaders;
    uint64_t content_length; /* when has_length */
    bool has_length, chunked, expect_continue;
    bool keep_alive;  /* what the client asked for (RFC 9112 section 9.3) */
    bool te_trailers; /* it accepts trailer fields (TE: trailers) */
    bool tls;         /* it came over TLS */
    /* The client's address (sa_family AF_UNSPEC: not IP): the connection's peer, or the
     * address its PROXY protocol header gave, or what realip found (site/realip.h). */
    const struct sockaddr *peer;
    socklen_t peerlen;
    /* The connection's own peer once `peer` is another (a PROXY header's or realip's); NULL
     * while `peer` is it. pt_request_conn_peer() reads the two. */
    const struct sockaddr *conn_peer;
    socklen_t conn_peerlen;
    /* What the connection's PROXY protocol header said, when it gave addresses; else NULL. */
    const struct pt_proxy_header *proxied;
    double start;                 /* ev_now() at the first byte */
    pt_custodian *conn_custodian; /* its connection's: the parent of the request's */

    /* Its memory (pt_request_alloc) and its custodian (pt_request_custodian). */
    char *arena;
    size_t arena_used;
    char *arena_more;  /* further chunks, linked through their first word */
    char *arena_large; /* pt_request_alloc_large()'s own blocks, linked the same way */
    pt_custodian *custodian;

    /* The handler's callbacks (pt_request_read_body, pt_request_on_abort,
     * pt_response_on_writable). */
    pt_body_cb body_cb;
    void *body_data;
    pt_request_cb abort_cb, writable_cb;
    void *abort_data, *writable_data;
    bool write_full; /* the last pt_response_write() filled the queue (pt_response_is_full) */

    /* Set by the site when it chooses the virtual host (pt_site_ops.select). */
    const pt_vhost *vhost;
    pt_str server_name; /* its first plain server_name ($host without a Host); may be empty */
    const pt_limits *limits;
    /* The access logs (server/core/logfmt.h); the location's replace the server's. */
    const struct pt_access_log *access_logs;
    size_t naccess_logs;
    pt_log *error_log; /* NULL: the process's error log */
    pt_log_level error_level;
    bool server_tokens; /* the version in Server */
    bool sendfile;      /* large file bodies go with sendfile(2) */
    /* Its response's send rate (limit_rate, limit_rate_after; connmgr/rate.h): bytes per
     * second (0: none) after the first `after` bytes. The location's, given as its handler
     * starts, unless a handler set the rate itself (pt_request_set_limit_rate: limit_rate_set);
     * the protocol reads them as the response starts. */
    uint64_t limit_rate, limit_rate_after;
    bool limit_rate_set;

    /* Routing (server/site/location.h), set before a handler runs. */
    pt_location *location;             /* what answers; NULL before routing */
    const pt_file_root *file_root;     /* where its files come from; NULL before routing */
    const pt_response_filter *filters; /* the location's chain */
    /* Compression on the fly (server/core/compress.h): the settings that apply, NULL when no
     * coding is on; set with the virtual host, then by the location. */
    const struct pt_conf_compress *compress;
    struct pt_compressing *compressing; /* a compressed body on its way */
    /* What pt_request_respond() hands a response to instead of the protocol, set by the site
     * with the settings above (pt_compress_respond when a coding is on); NULL: the protocol. */
    int (*respond_via)(pt_request *req, const pt_response *r);
    pt_str norm_path;   /* the decoded, normalised path, NUL-terminated; valid in the handler */
    pt_str redirect;    /* an internal redirect the handler asked for (pt_route_redirect) */
    unsigned redirects; /* internal redirects so far */
    bool error_page;    /* answering through an error_page: no error page for its errors */
    pt_str trailers;    /* trailer lines for the end of a streamed body (pt_response_trailers) */
    int error_status;   /* the status that answer keeps (0: what the target answers) */
    /* The checks before the handler (server/site/guard.h): the next to run, what runs the
     * request on when a held one is let go, and whether norm_path was copied to the arena. */
    unsigned guard_step;
    void (*guard_next)(pt_request *req, int verdict);
    bool norm_path_kept;
    /* The "WWW-Authenticate: ...\r\n" line auth_basic refused the request with: its 401
     * answer carries it, through an error_page too (server/site/access.h). */
    pt_str www_authenticate;
    /* What limit_req and limit_conn decided (server/site/limiter.h; 0: not yet): each counts a
     * request once, whatever internal redirects follow. */
    uint8_t limit_req_status, limit_conn_status;
    pt_custodian *sent_custodian; /* pt_request_sent_custodian(); NULL until asked for */

    /* What the access log tells beyond the above ($variables, server/core/vars.h). The protocol
     * fills them; status and body_bytes_sent when the response is complete. */
    int status;
    uint64_t body_bytes_sent;
    uint64_t head_bytes_sent;           /* the response head's bytes (HTTP/1) */
    uint64_t request_length;            /* request line, header and body bytes read */
    unsigned long long connection;      /* its connection's serial number in the process */
    unsigned connection_requests;       /* requests on its connection, this one included */
    bool pipelined;                     /* its bytes came with the previous request's */
    const struct ssl_st *ssl;           /* its connection's TLS session, or NULL */
    pt_str remote_user;                 /* the user auth_basic accepted; empty: none */
    struct pt_upstream_tries *upstream; /* the proxy's attempts (in the arena); NULL: none */
    /* What the last regex that matched captured (a location's, a server_name's): $1, $name.
     * In the arena, with a copy of its subject; NULL: none. */
    struct pt_captures *captures;
    bool real_ip; /* realip replaced `peer` (a copy in the arena): it does not again */
    /* The conf's own variables (`set`, `map`; server/core/vars.h): their list, the server's
     * conf's (given with the virtual host), and this request's values, made on first use. */
    const struct pt_conf_vars *vars;
    struct pt_var_slot *var_slots;
    bool vars_failed; /* a map's regex hit its match limit: the router answers 500 */
    /* What an `if` of the location whose condition held changes in the answer
     * (server/site/location.h); NULL: nothing. */
    const struct pt_overlay *overlay;
    /* Where its worker counts it when its response is complete (server/core/stats.h), set with
     * the virtual host; NULL: nowhere. */
    const struct pt_stats_sink *stats;
};

/* The servers a proxied request was sent to, for $upstream_addr, $upstream_status and
 * $upstream_response_time: the first PT_UPSTREAM_TRIES of them. */
#define PT_UPSTREAM_TRIES 8
typedef struct pt_upstream_tries {
    size_t n; /* attempts begun; more than PT_UPSTREAM_TRIES: only the first are kept */
    struct {
        const char *addr; /* borrowed: it outlives the request */
        int status;       /* 0: none yet */
        double start, end;
    } t[PT_UPSTREAM_TRIES];
} pt_upstream_tries;

/* An attempt to the server `addr` (borrowed) begins at `now`. */
void pt_request_upstream_begin(pt_request *req, const char *addr, double now);

/* The current attempt's server answered `status` (or, for a failed attempt, the status nginx
 * logs for it: 502, 504 after a timeout). The first status given stands. */
void pt_request_upstream_status(pt_request *req, int status);

/* The current attempt ended at `now` (a second call changes nothing). */
void pt_request_upstream_end(pt_request *req, double now);

/* A response head kept for reuse by whoever sends the same response again (the file cache,
 * for a file's 200): the protocol's form of its lines up to the Connection line, made in the
 * second `second` (its Date). The protocol fills it and reuses it within that second. */
typedef struct pt_head_memo {
    char *buf; /* malloc'ed; NULL until made */
    size_t len, cap;
    time_t second;
} pt_head_memo;

/* A response, described; pt_request_respond() hands it to the protocol. */
struct pt_response {
    int status;
    const char *content_type; /* NULL: none */
    /* Body: from memory, or a file range (fd taken: closed after). A memory body is copied,
     * unless it has a holder: then body_hold(body_holder) runs as it is queued without a copy,
     * and body_release(body_holder) once it is written or dropped. */
    const void *body;
    size_t body_len;
    void (*body_hold)(const void *holder);
    void (*body_release)(void *holder);
    void *body_holder;
    int file_fd; /* -1: none */
    off_t file_off;
    bool file_borrowed; /* file_fd is not taken (the open-file cache's): read at once, or dup'ed
                           for sendfile; never closed */
    /* Or a body the caller queues itself into a queue of memory and file ranges, after the
     * head and not for HEAD: exactly body_len bytes; returns 0 or a negative errno (the
     * response is then abandoned). */
    int (*push_body)(struct pt_outq *q, void *data);
    void *push_body_data;
    bool no_body;         /* a head-only response (304): no Content-Length */
    bool omit_server;     /* extra_headers carry their own Server (proxy_pass_header) */
    bool omit_date;       /* and their own Date */
    time_t last_modified; /* 0: none */
    time_t mtime;         /* the file's time for `expires modified` when no last_modified */
    const char *location; /* Location header */
    const char *allow;    /* Allow header */
    pt_str extra_headers; /* preformatted "Name: value\r\n" lines */
    pt_str more_headers;  /* more of them (Content-Range) */
    bool close;           /* close the connection after this response */
    /* A streamed body: pt_request_respond queues the head only, and the handler follows with
     * pt_response_write() and pt_response_end(). With stream_length < 0 (unknown) the protocol
     * frames it (HTTP/1.1: chunked; HTTP/1.0: until the connection closes). */
    bool stream;
    int64_t stream_length;
    /* The same response as the last one given this memo, but for Date and Connection: a 200
     * with everything above derived from what the memo belongs to, and no error_page. */
    pt_head_memo *head_memo;
    /* Where compressed copies of this body may be kept (a file's: the file cache's store),
     * and which body it is; NULL: none. Read during pt_request_respond() only. */
    struct pt_variant_store *variants;
    const struct pt_variant_key *variant_key;
    /* A head-only answer (304) about a representation of this media type: what compression
     * would have done to it decides its ETag and Vary. */
    const char *type_hint;
};

/* A handler: answers `req` (now, or later from its own events) exactly once. */
typedef void (*pt_handler_fn)(pt_request *req);

/* Initialises `r` for `status` with no body. */
void pt_response_init(pt_response *r, int status);

/* Queues the response to `req`. HEAD requests get the head only. Returns 0 or a negative errno
 * (the connection is gone). */
int pt_request_respond(pt_request *req, const pt_response *r);

/* Queues a short HTML error page for `status` (nginx-like). */
int pt_request_respond_error(pt_request *req, int status);

/* The same with preformatted header lines `headers` ("Content-Range: bytes * /10\r\n"). */
int pt_request_respond_error_with(pt_request *req, int status, pt_str headers);

/* Trailer fields ("Name: value\r\n" lines, copied) to send after a streamed body of unknown
 * length, at pt_response_end(); kept only for a client that accepts them (TE: trailers) and
 * where the protocol can carry them (HTTP/2, chunked HTTP/1.1), else dropped. */
void pt_response_trailers(pt_request *req, pt_str lines);

/* A response started and cannot be finished (its source failed halfway): the client's
 * connection (or stream) is dropped, so it cannot take half a response for a whole one. */
void pt_request_abandon(pt_request *req);

/* Whether response bytes are queued and not yet written to the client. */
bool pt_response_pending(const pt_request *req);

/* Takes the connection of `req` out of HTTP (a 101 Switching Protocols answer): queues `head`
 * (`len` bytes, the response head exactly as it must go out, copied) and writes it, logs the
 * request with `status`, ends the request, and from then on hands the connection's reads,
 * drains, timeout and close to `ops`. *out receives the connection: its transport, in-buffer
 * (bytes the client sent after the request head are already there; no on_read announces
 * them), out-queue and timer (now without a deadline) are the caller's to drive through the
 * pt_conn API. What the handler registered with pt_request_custodian() is not released with
 * the request: it now goes with the connection. `req` must not be used after the call.
 * Returns 0, or a negative errno: -ENOTSUP where the protocol has no upgrade, -EINVAL if the
 * request's body has not been read to its end or a response was already started (nothing
 * changed), -EBUSY from inside the protocol's own calls (a body or route callback; nothing
 * changed), or the write's error (the connection has been killed and ops->on_close has run).
 * Call it from the handler's own event callbacks. */
int pt_request_upgrade(pt_request *req, int status, const void *head, size_t len,
                       const pt_upgrade_ops *ops, void *data, struct pt_conn **out);

/* Returns the first header named `name` (case-insensitive), or NULL. */
const pt_header *pt_request_header(const pt_request *req, const char *name);

/* A custodian, made on first call, released once the response of `req` has left porter (written
 * to the client's connection, not waiting in its out-queue) or never can (the connection or the
 * stream went): for what lasts as long as the transfer rather than the handler, such as
 * limit_conn's count of a slow download. A child of the connection's custodian; over HTTP/2 a
 * stream ends when its data has gone, so it goes with the request. NULL if the connection is
 * shut down. */
pt_custodian *pt_request_sent_custodian(pt_request *req);

/* Writes the access log line of `req` and counts it in its server's metrics (done by the
 * protocol when the response is complete). */
void pt_request_access_log(pt_request *req, int status, uint64_t body_bytes);

/* Logs a message about `req` to its server's error log, with the client's address and the
 * request line appended as nginx does. `level` is a pt_log_level. */
void pt_request_log(pt_request *req, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether a response with `status` has a body (not 1xx, 204 or 304). */
static inline bool pt_http_status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

/* Appends the header lines ("Name: value\r\n") of `r` that every protocol sends, at `buf`
 * from `pos` (capacity `cap`), in the second of `clock`: Server, Date, Content-Type, the body's
 * framing (Transfer-Encoding: chunked when `chunked` and there is a body, else Content-Length
 * when its length is known), Last-Modified, Location, Allow, the response's own lines and its
 * filters'. Returns the new position; bytes beyond `cap` are counted, not written. */
size_t pt_response_head_fields(const pt_request *req, const pt_response *r, bool chunked,
                               const struct pt_clock *clock, char *buf, size_t pos, size_t cap);

/* Appends the header lines of the request's response filters (see pt_response_filter). */
size_t pt_response_filter_head(const pt_request *req, const pt_response *r, time_t now, char *buf,
                               size_t pos, size_t cap);

/* Keeps what a regex captured as the request's captures ($1, $name), with a copy of the subject
 * in the arena. A pattern without groups leaves the captures as they were, as in nginx (a nested
 * regex location's `\.json$` keeps its holder's $1); out of memory: none kept. */
void pt_request_keep_captures(pt_request *req, const struct pt_captures *caps);

/* ---- for protocols ---- */

/* Makes `req` an empty request of protocol `proto` on `loop`, whose arena is the rest of the
 * pool chunk `chunk` from `offset` on (the protocol's own state may take its start). */
void pt_request_init(pt_request *req, const pt_request_proto *proto, struct ev_loop *loop,
                     char *chunk, size_t offset);

/* For a request whose `peer` is its connection's: the connection's PROXY protocol header `h`
 * named the client, whose address its source becomes (the peer conn_peer). */
void pt_request_set_proxied(pt_request *req, const struct pt_proxy_header *h);

/* The connection's own peer of `req`, whatever a PROXY header or realip say the client is (the
 * address set_real_ip_from is checked against, $realip_remote_addr), its length in *len. */
static inline const struct sockaddr *pt_request_conn_peer(const pt_request *req, socklen_t *len)
{
    *len = req->conn_peer ? req->conn_peerlen : req->peerlen;
    return req->conn_peer ? req->conn_peer : req->peer;
}

/* Tells the handler of `req`, which has not finished, that the request is over before its
 * answer (client gone, reset, timeout): its body and writable callbacks are dropped and its
 * abort callback runs. The caller then releases the request's custodian, if the request is
 * still there (the callback may have ended it). */
void pt_request_tell_abort(pt_request *req);

/* Like pt_request_alloc(), for a block of any size (a head's list of fields, as long as the
 * limits allow): one too large for the arena is allocated apart and freed with it. NULL: out of
 * memory. */
void *pt_request_alloc_large(pt_request *req, size_t size);

/* The request is over: what its handler registered is released, then the arena's further
 * chunks and large blocks (the first chunk, the protocol's, is the protocol's to return). */
void pt_request_dispose(pt_request *req);

/* ---- status texts and dates ---- */

/* Writes the short HTML page porter answers a status with (nginx's) into `buf`; returns its
 * length. PT_STATUS_PAGE_MAX bytes always suffice. */
#define PT_STATUS_PAGE_MAX 512
size_t pt_http_status_page(int status, char *buf, size_t cap);

/* The reason phrase for `status` ("Not Found"), or "Unknown". */
const char *pt_http_reason(int status);

/* Formats `t` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into `buf` (30 bytes). */
size_t pt_http_date_format(time_t t, char *buf);

/* Parses an IMF-fixdate (also RFC 850 and asctime forms); returns -1 if invalid. */
time_t pt_http_date_parse(const char *s, size_t len);

/* The Date header's value and the access log's time stamp of the second `now`, formatted once
 * a second (per thread). */
typedef struct pt_clock {
    time_t second;
    char date[32]; /* IMF-fixdate */
    size_t date_len;
    char local[32]; /* 21/Nov/2026:06:00:00 +0000 */
} pt_clock;
const pt_clock *pt_clock_at(time_t now);

/* The name part of a Host value: without its port ("example.com:8080", "[::1]:8080") and
 * without a trailing dot ("example.com."). */
pt_str pt_host_name(pt_str host);

#endif
