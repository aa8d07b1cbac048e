/**
 * @file
 * porter: an HTTP/1.1 server and connection layer on libev, as a library (libporter).
 *
 * This header, with the headers it includes, is the whole public API; docs/embedding.md is the
 * guide. A pt_server runs on a libev loop the caller owns: it owns its listeners, connection
 * managers, virtual hosts and logs, and everything a connection allocates (custodians). It
 * serves static files from a root, and requests that match a handler registered with
 * pt_server_handle() go to that handler. It makes no threads of its own (a connector resolving
 * DNS names is the one exception, and only when asked to resolve one). Creating a server sets
 * SIGPIPE to be ignored if the program left it at its default (a vanished client must not kill
 * the process); a program with its own SIGPIPE handling keeps it.
 *
 * Lifecycle: pt_server_new_with() (from options or a conf file; listening sockets are opened,
 * not yet watched) → pt_server_listen() and pt_server_handle() as needed → pt_server_start()
 * → ... → pt_server_stop() (graceful; the callback runs when the last connection is gone; a
 * second call kills) → pt_server_free(). Several servers may share one loop.
 *
 * Conventions. Functions that can fail return 0 (or a count) or a negative errno, which
 * pt_strerror() names; a function answering a question returns bool. Callbacks take a `void
 * *data` given at registration. Option structs have an `_init()` that fills safe defaults and
 * the struct's size, so they can grow without breaking a program built against an older header
 * (docs/embedding.md, "Versions and ABI"; porter/version.h has the version macros, and the
 * library exports exactly what these headers declare, PT_API). Strings passed in are copied unless
 * a comment says "borrowed"; strings handed out (pt_slice) are borrowed from porter and not
 * NUL-terminated. Threading: a server and everything it hands out belong to the thread running
 * its loop; porter functions are called from that thread only.
 *
 * The seed primitives porter is built from are public too: custodians, timers, safety limits,
 * buffers and transports, connections and the connection manager, listeners, authorities, the
 * connector, the transport pool and TLS tunnels (the headers included below).
 */
#ifndef PORTER_H
#define PORTER_H

/* The system headers of every public header, first: in C++ they must not end up inside the
 * extern "C" block below. */
#include <ev.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>

#include "porter/export.h"
#include "porter/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "connmgr/authority.h"
#include "connmgr/buffer.h"
#include "connmgr/conn.h"
#include "connmgr/connector.h"
#include "connmgr/connmgr.h"
#include "connmgr/custodian.h"
#include "connmgr/limits.h"
#include "connmgr/pool.h"
#include "connmgr/timer.h"
#include "connmgr/transport.h"
#include "connmgr/tunnel.h"
#include "listener/listener.h"

/* ==== servers ==== */

/** A server: listeners, connection managers, virtual hosts, logs and handlers on one loop. */
typedef struct pt_server pt_server;

/** Called once when a stopped or retired server has no connection left. Do not free the server
 * from inside it (defer pt_server_free() to a watcher of your own). */
typedef void (*pt_server_stopped_cb)(pt_server *s, void *data);

/** Options of pt_server_new_with(). Fill them with pt_server_options_init() first. A sized
 * struct ("Versions and ABI" in docs/embedding.md): new options are added at its end. */
typedef struct pt_server_options {
    /** The struct's size as the program was compiled, set by pt_server_options_init(). */
    size_t size;
    /** The conf file (nginx syntax, see the README). NULL (the default): the server is made
     * from the fields below `previous` instead, with no listening address until
     * pt_server_listen(). Borrowed during the call. */
    const char *conf_path;
    /** Where relative paths (in the conf, or `root` and the logs below) start; NULL: the
     * current directory. */
    const char *prefix;
    /** Listening sockets per address, shared by worker processes with SO_REUSEPORT (0 or 1:
     * one socket). Keep it fixed for the life of a process tree: a reload then takes every
     * socket over, whatever the worker count. */
    int worker_slots;
    /** Worker processes that will run this server (0: as many as worker_slots). Worker `slot`
     * accepts on sockets slot, slot + workers, ... */
    int workers;
    /** Reload: listening sockets of `previous` for addresses the new server also has (same
     * address, port and worker count) are taken over instead of opened anew, so no client
     * connecting meanwhile is refused. `previous` must then be retired and freed. */
    pt_server *previous;
    /** A binary upgrade: listening sockets inherited from the process before (borrowed during
     * the call). An address one of them is bound to takes it instead of binding anew (see
     * pt_listener_adopt()), so no client connecting meanwhile is refused; a socket taken has
     * its entry set to -1, and closing the others is the caller's business. */
    int *inherited;
    size_t ninherited; /**< entries in inherited */

    /* Without a conf file: */

    /** Safety limits of every connection (copied; filled by pt_limits_init() first). NULL (the
     * default): pt_limits_init()'s. */
    const pt_limits *limits;
    /** Directory of static files (index.html for directories); NULL (the default): none, so
     * what no handler takes is answered 404. */
    const char *root;
    /** Access log file (combined format), "stderr", or NULL (the default): none. */
    const char *access_log;
    /** Error log file, or NULL (the default): standard error. It becomes the process's error
     * log while the server lives. */
    const char *error_log;
    /** PEM certificate chain and private key files for pt_server_listen(..., PT_LISTEN_TLS);
     * NULL (the default): no TLS. */
    const char *tls_certificate;
    const char *tls_certificate_key; /**< see tls_certificate */
} pt_server_options;

/** Fills the first `size` bytes of `o` with the defaults and stores `size` (call
 * pt_server_options_init(), which passes the size the program was compiled with). */
PT_API void pt_server_options_init_sized(pt_server_options *o, size_t size);

/** Fills `o` with the defaults: no conf file, the default limits, no root, no logs but errors
 * on standard error, no TLS, one socket per address. */
static inline void pt_server_options_init(pt_server_options *o)
{
    pt_server_options_init_sized(o, sizeof *o);
}

/** Makes a server on `loop` (borrowed; it must outlive the server) from `o`: from its conf file
 * (roots, logs and listening sockets are opened now), or from its other fields.
 * @param out receives the server (NULL on error)
 * @param err receives a message on error ("file:line:col: reason" for a conf error); may be
 *            NULL
 * @return 0 or a negative errno (-EINVAL, among others, for options or limits this version
 *         cannot read: see pt_server_options.size). */
PT_API int pt_server_new_with(pt_server **out, struct ev_loop *loop, const pt_server_options *o,
                              char *err, size_t errlen);

/** Like pt_server_new_with() with the conf file `conf_path` and the `prefix` relative paths in
 * it start from (NULL: the current directory). */
PT_API int pt_server_new(pt_server **out, struct ev_loop *loop, const char *conf_path,
                         const char *prefix, char *err, size_t errlen);

/** Flags of pt_server_listen(). */
enum {
    PT_LISTEN_TLS = 1,       /**< speak TLS (needs the options' certificate, or a conf's) */
    PT_LISTEN_REUSEPORT = 2, /**< set SO_REUSEPORT (other processes may bind the port) */
    PT_LISTEN_HTTP2 = 4,     /**< offer HTTP/2: ALPN h2 with TLS, prior knowledge (h2c) without */
    /** each connection starts with a PROXY protocol header (v1 or v2, before TLS), whose
     * source address is the client's (pt_request_peer) */
    PT_LISTEN_PROXY_PROTOCOL = 8,
};

/** Adds a listening address, served like the server's first server block (a server made from
 * options has exactly one). The sockets are opened now (one per address family the host
 * resolves to; pt_server_addresses() tells the port chosen for "0"); a started server accepts
 * on them at once. The backlog is the limits' max_waiting.
 * @param host NULL, "" or "*" for every address, else a literal ("127.0.0.1", "::1",
 *             "[::1]") or a name (resolved now, synchronously)
 * @param port a number or service name; "0" for an ephemeral port
 * @param flags PT_LISTEN_* values, or 0; with PT_LISTEN_HTTP2 the address offers HTTP/2 as a
 *              conf's `listen ... http2` does, with the first server block's http2_* settings
 *              (a server made from options: the defaults of docs/http2.md)
 * @return 0; -EINVAL (bad host, port or flags; TLS without a certificate), -EBUSY (the server
 *         is stopping), or the error of socket/bind/listen (-EADDRINUSE, -EACCES...). */
PT_API int pt_server_listen(pt_server *s, const char *host, const char *port, unsigned flags);

/** Starts accepting connections (in a single process). @return 0 or -EALREADY. */
PT_API int pt_server_start(pt_server *s);

/** In worker `slot` (0 <= slot < workers) of a process tree: starts accepting on that worker's
 * sockets. Call it after fork() and ev_loop_fork(). @return 0, -EALREADY or -EINVAL. */
PT_API int pt_server_start_worker(pt_server *s, int slot);

/** Graceful stop: stops accepting, closes idle connections, lets in-flight requests finish
 * within the limits' shutdown_grace_period, then kills the rest (their handlers get their
 * abort callbacks). `cb` (may be NULL) runs once when no connection is left, possibly before
 * this call returns. A second call kills every connection at once. */
PT_API void pt_server_stop(pt_server *s, pt_server_stopped_cb cb, void *data);

/** A stop that hands over to a successor (reload): stops accepting, lets each connection
 * finish its work and close after its next response, never closing one a client may be sending
 * on; what remains after the shutdown grace period is closed. `cb` runs when none is left. */
PT_API void pt_server_retire(pt_server *s, pt_server_stopped_cb cb, void *data);

/** Frees everything the server owns: connections are killed (their handlers get their abort
 * callbacks), sockets closed, handlers forgotten. NULL: no-op. Not from inside a porter
 * callback (the stopped callback included): defer it to a watcher of your own. */
PT_API void pt_server_free(pt_server *s);

/** Writes the bound addresses of every listening socket (useful with port 0) to `out`, at
 * most `max`. @return how many there are (possibly more than `max`). */
PT_API size_t pt_server_addresses(const pt_server *s, struct sockaddr_storage *out, size_t max);

/** Reopens log files (after rotation), writing what their buffers hold first.
 * @return 0 or -EIO if one could not be reopened. */
PT_API int pt_server_reopen_logs(pt_server *s);

/** Levels of pt_server_log(): the error_log directive's (nginx's alert and emerg are crit). */
enum {
    PT_SERVER_LOG_DEBUG,  /**< debug */
    PT_SERVER_LOG_INFO,   /**< info */
    PT_SERVER_LOG_NOTICE, /**< notice */
    PT_SERVER_LOG_WARN,   /**< warn */
    PT_SERVER_LOG_ERROR,  /**< error */
    PT_SERVER_LOG_CRIT,   /**< crit */
};

/** Logs a message of the program itself (a start, a reload, a worker's exit) at `level`
 * (PT_SERVER_LOG_*), printf-style, as the server's error log writes lines: to the error log of
 * `s` (the process's while `s` lives; before any server, standard error) if `level` is at or
 * above its level, and to standard error too when that is a terminal and the log is not. */
PT_API void pt_server_log(pt_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Checks a conf file as pt_server_new() would, without listening: syntax, values, that every
 * root is a directory and every log can be opened.
 * @return 0 or a negative errno with the (first) message in `err`. */
PT_API int pt_server_test(const char *conf_path, const char *prefix, char *err, size_t errlen);

/** Called by pt_server_check() with each error it finds, "FILE:LINE:COL: reason" (valid during
 * the call). */
typedef void (*pt_server_report_cb)(const char *msg, void *data);

/** Checks a conf file as pt_server_test() does, but goes on past an error to find the next:
 * `report(msg, data)` hears of every one, in the order found. A directive in error is left out
 * and the rest read (a syntax error ends the reading: what follows cannot be read); roots, logs
 * and certificates are then checked as start-up opens them (certificates and upstreams only
 * when the conf itself read without error). `report` may be NULL.
 * @return 0 if the conf is valid, else the first error's negative errno. */
PT_API int pt_server_check(const char *conf_path, const char *prefix, pt_server_report_cb report,
                           void *data);

/** Called by pt_server_conf_files() with each file's path (valid during the call). */
typedef void (*pt_server_file_cb)(const char *path, void *data);

/** Calls `cb(path, data)` with every file a valid conf is read from: the main file first, then
 * each included file once, in the order read (porter -T prints them).
 * @return 0, or a negative errno with the message in `err` when the conf is not valid. */
PT_API int pt_server_conf_files(const char *conf_path, const char *prefix, pt_server_file_cb cb,
                                void *data, char *err, size_t errlen);

/** Writes the path of the pid file the conf names (absolute; "" for none) to `out`. An error
 * elsewhere in the conf does not stop it (porter -s must reach the running process whatever the
 * file now says), one that keeps the conf from being read does.
 * @return 0, or a negative errno with the message in `err`. */
PT_API int pt_server_conf_pid(const char *conf_path, const char *prefix, char *out, size_t outlen,
                              char *err, size_t errlen);

/** Reads the conf file and returns the number of worker processes it asks for (auto: the CPU
 * count), or a negative errno with the message in `err`. */
PT_API int pt_server_conf_workers(const char *conf_path, const char *prefix, char *err,
                                  size_t errlen);

/** The number of worker processes the server's conf asks for (auto resolved to the CPU count;
 * 1 for a server made from options). */
PT_API int pt_server_worker_processes(const pt_server *s);

/** The connections worker process `pid` in `slot` last reported (it reports once a second):
 * `open` of them, `busy` of those reading or writing a request. -ESRCH when that process has not
 * reported in that slot (a worker of an earlier generation, or one that died before its first
 * report); -EINVAL for a slot out of range. For the master's word when a worker dies. */
PT_API int pt_server_worker_connections(const pt_server *s, int slot, pid_t pid, uint64_t *open,
                                        uint64_t *busy);

/** The path of the pid file the conf asks for, or NULL (borrowed from the server). */
PT_API const char *pt_server_pid_path(const pt_server *s);

/** The conf's `user USER [GROUP]`: stores the names (borrowed from the server) and their ids,
 * resolved when the conf was read by root ((uid_t)-1 and (gid_t)-1 otherwise).
 * @return true if the conf has the directive, false if not (nothing stored). */
PT_API bool pt_server_user(const pt_server *s, const char **user, const char **group, uid_t *uid,
                           gid_t *gid);

/** Makes `uid` the owner of every log file the server has open (not standard error), so that
 * worker processes running as that user can reopen them after a rotation: the master calls it
 * after pt_server_reopen_logs(), as nginx's does. @return 0 or the first chown(2) error. */
PT_API int pt_server_chown_logs(pt_server *s, uid_t uid);

/** Writes the descriptors of every listening socket of the server to `out`, at most `max` (a
 * binary upgrade passes them to the new executable, see pt_server_options.inherited).
 * @return how many there are (possibly more than `max`). */
PT_API size_t pt_server_listen_fds(const pt_server *s, int *out, size_t max);

/** TLS session tickets: how often, in seconds, their keys should be renewed
 * (ssl_session_ticket_rotate; 0 when the server has no TLS).
 *
 * Every server block that speaks TLS encrypts its session tickets with one set of keys, in
 * memory shared by the process that creates the server and every process it forks afterwards
 * (the workers), so a ticket from one worker resumes on any other. A server made with
 * `previous` (a reload) keeps the previous server's keys, so tickets survive reloads. The keys
 * must be renewed regularly by one process only (the master, or the single process). Tickets
 * made with the two keys before the current one still resume (and are renewed), so a ticket
 * lives between two and three rotation periods. */
PT_API double pt_server_ticket_rotation(const pt_server *s);

/** Makes a new current session-ticket key (see pt_server_ticket_rotation()). */
PT_API void pt_server_rotate_ticket_keys(pt_server *s);

/* ==== requests and handlers ==== */

/** A request as a handler sees it: valid from the handler's call until its response is
 * complete (pt_respond*() returned, or pt_response_end()) or its abort callback has run. */
typedef struct pt_request pt_request;

/** Bytes borrowed from porter, not NUL-terminated: `len` of them at `ptr` (`ptr` is never NULL
 * for a value that exists, possibly with `len` 0; NULL means "absent"). A slice from a request
 * is valid until the callback in which it was obtained returns: ask again in later callbacks,
 * since the request's strings move once when its handler keeps it past its first call. */
typedef struct pt_slice {
    const char *ptr; /**< the first byte, or NULL when absent */
    size_t len;      /**< bytes at ptr */
} pt_slice;

/** Returns true if `s` holds exactly the bytes of the C string `str`. */
PT_API bool pt_slice_eq(pt_slice s, const char *str);

/** Returns true if `s` equals `str` ignoring ASCII case (header names, tokens). */
PT_API bool pt_slice_ieq(pt_slice s, const char *str);

/** A handler: called once per request routed to it, on the loop's thread. It answers now or
 * later (from another watcher) with exactly one pt_respond*() call, or with
 * pt_respond_stream() followed by pt_response_write()s and pt_response_end(). Until it has
 * answered, the request's response_timeout runs (extend it with pt_request_reset_timeout()). */
typedef void (*pt_handler_cb)(pt_request *req, void *data);

/** How a handler's path is compared with the request's decoded, normalised path. */
typedef enum pt_path_match {
    PT_PATH_EXACT,  /**< the path equals the handler's */
    PT_PATH_PREFIX, /**< the path starts with the handler's ("/api/" takes "/api/x") */
} pt_path_match;

/** Registers `cb(req, data)` for requests with method `method` and a path matching `path`.
 *
 * Handlers are tried before static files and conf locations (only a conf's server-level
 * `return` comes first), most specific first: exact paths (in registration order), then
 * prefixes, longest first; the first whose path and method match answers. They serve every
 * server block of a server made from a conf. A "GET" handler also takes HEAD (porter leaves the
 * body out). When handlers match the path but none the method, the client gets 405 with an Allow
 * header. Requests that match no handler's path go on to the server's static files or locations.
 * @param method "GET", "POST", ... (case-sensitive), or NULL for every method; copied
 * @param path starting with '/', compared with the decoded and normalised request path (so
 *             "/a/../api/x" and "/api//x" are "/api/x"); copied
 * @param data borrowed; given to `cb`
 * @return 0, -EINVAL (bad method or path, NULL cb) or -ENOMEM. Handlers stay until the server
 *         is freed. */
PT_API int pt_server_handle(pt_server *s, const char *method, const char *path, pt_path_match match,
                            pt_handler_cb cb, void *data);

/** The server that routed `req`. */
PT_API pt_server *pt_request_server(const pt_request *req);

/** The method ("GET"). */
PT_API pt_slice pt_request_method(const pt_request *req);

/** The request target as sent ("/search?q=a%20b", or an absolute-form "http://h/p"). */
PT_API pt_slice pt_request_target(const pt_request *req);

/** The target's path, still percent-encoded ("/search"). */
PT_API pt_slice pt_request_path(const pt_request *req);

/** The target's query after '?', without it; empty (not absent) when there is none. */
PT_API pt_slice pt_request_query(const pt_request *req);

/** The Host header (or the authority of an absolute-form target); empty if none. */
PT_API pt_slice pt_request_host(const pt_request *req);

/** The HTTP version: 10 or 11. */
PT_API int pt_request_version(const pt_request *req);

/** Writes the path decoded and normalised (as handlers are matched: percent-escapes decoded,
 * "." and ".." resolved, "//" collapsed) into `out`, NUL-terminated.
 * @return its length, -EINVAL for a path that is invalid (a ".." above the root, a control
 *         character, a bad escape) or -ENAMETOOLONG when `cap` bytes are too few. */
PT_API ssize_t pt_request_decoded_path(const pt_request *req, char *out, size_t cap);

/** The value of the first header field named `name` (ASCII case-insensitive), without
 * surrounding whitespace; ptr NULL if there is none. */
PT_API pt_slice pt_request_header_value(const pt_request *req, const char *name);

/** The number of header fields, for pt_request_header_at(). */
PT_API size_t pt_request_header_count(const pt_request *req);

/** Stores the name and value of header field `i` (in the order received) in `name` and
 * `value` (either may be NULL). @return false if `i` is out of range. */
PT_API bool pt_request_header_at(const pt_request *req, size_t i, pt_slice *name, pt_slice *value);

/** The Content-Length of the request body, or -1 if the body is chunked or there is none. */
PT_API int64_t pt_request_content_length(const pt_request *req);

/** Returns true if the request has a body (Content-Length, even 0, or chunked). */
PT_API bool pt_request_has_body(const pt_request *req);

/** Copies the client's address (tcp-addresses) to `out`; `len` (may be NULL) receives its
 * length. @return 0, or -EAFNOSUPPORT if the peer is not an IP address. */
PT_API int pt_request_peer(const pt_request *req, struct sockaddr_storage *out, socklen_t *len);

/** Copies the local address the client connected to (getsockname) to `out`; `len` (may be
 * NULL) receives its length. @return 0 or a negative errno. */
PT_API int pt_request_local(const pt_request *req, struct sockaddr_storage *out, socklen_t *len);

/** "https" if the request came over TLS, else "http". */
PT_API const char *pt_request_scheme(const pt_request *req);

/** Returns `size` bytes (16-byte aligned, not zeroed) of per-request memory, released when the
 * request ends, or NULL if `size` exceeds PT_REQUEST_ALLOC_MAX (take bigger blocks from
 * pt_custodian_alloc(pt_request_custodian(req), size)). */
PT_API void *pt_request_alloc(pt_request *req, size_t size);

/** The largest block pt_request_alloc() hands out. */
#define PT_REQUEST_ALLOC_MAX (16 * 1024 - 16)

/** The request's custodian, a child of its connection's, made on first call: what a handler
 * registers there (timers, watchers, upstream transports, memory) is released when the request
 * ends, whichever way (answered, client gone, timed out, server stopped or freed). */
PT_API struct pt_custodian *pt_request_custodian(pt_request *req);

/** A callback about a request (its client went away, or the response may be written to). */
typedef void (*pt_request_cb)(pt_request *req, void *data);

/** Calls `cb(req, data)` if the request ends before the handler finished its answer: the
 * client went away, the handler ran out of response_timeout, or the server was stopped or
 * freed. It runs before the request's custodian is shut down; after it, `req` must not be
 * used. A later call replaces the callback. */
PT_API void pt_request_on_abort(pt_request *req, pt_request_cb cb, void *data);

/** The delivery of a request body: `status` 0 with `len` bytes at `data` (valid during the
 * call), PT_BODY_END at its end (len 0), or a negative errno when it cannot be read to its end:
 * -EMSGSIZE (over the limits' max_request_body_length: the client gets 413 unless the handler
 * already answered), -EPROTO (bad framing: 400), -ECONNRESET (client gone; the abort callback
 * follows). */
typedef void (*pt_body_cb)(pt_request *req, const void *data, size_t len, int status, void *ud);

/** The `status` of pt_body_cb at the end of the body. */
#define PT_BODY_END 1

/** Starts reading the request body: `cb(req, data, len, status, ud)` gets its pieces as they
 * arrive, within max_request_body_length, between reads within request_body_timeout. A client
 * that sent "Expect: 100-continue" is invited now. Until a handler calls this (or answers),
 * the body stays unread in the socket; a body nobody reads is discarded after the answer. A
 * request without a body gets PT_BODY_END at once. */
PT_API void pt_request_read_body(pt_request *req, pt_body_cb cb, void *ud);

/** Stops (true) or restarts (false) the body's delivery: the socket is not read meanwhile, so
 * the client is slowed down (back-pressure). */
PT_API void pt_request_pause_body(pt_request *req, bool pause);

/** Racket's reset-connection-timeout!: the connection's deadline becomes now + `secs`
 * (PT_TIMEOUT_NONE: none). While a handler has not answered, the deadline is the
 * response_timeout; while it streams, the response_timeout between pieces. */
PT_API void pt_request_reset_timeout(pt_request *req, double secs);

/** Racket's adjust-connection-timeout!: the connection's deadline moves `secs` later. */
PT_API void pt_request_adjust_timeout(pt_request *req, double secs);

/** Sends the response to `req` at most `rate` bytes per second (0: no limit), as nginx's
 * $limit_rate: it replaces the conf's limit_rate for this request (limit_rate_after still
 * applies). The limit is the request's own, on HTTP/1.1 (its connection waits for the next
 * request until the response is out) as on HTTP/2 (each stream apart). Set it before
 * answering: a response keeps the rate it started with. */
PT_API void pt_request_set_limit_rate(pt_request *req, uint64_t rate);

/** The rate the response to `req` is (or will be) sent at, bytes per second; 0: no limit. */
PT_API uint64_t pt_request_limit_rate(const pt_request *req);

/* ==== responses ==== */

/** One response header field. */
typedef struct pt_field {
    const char *name;  /**< a token ("X-Request-Id") */
    const char *value; /**< no CR, LF or other control character but tab */
} pt_field;

/** A response, described. Fill it with pt_reply_init() and give it to pt_respond_with(). The
 * body comes from memory, from a file, or (stream) from pt_response_write() calls. porter
 * writes Server, Date, Content-Length or Transfer-Encoding, and Connection itself. A sized
 * struct ("Versions and ABI" in docs/embedding.md): new fields are added at its end. */
typedef struct pt_reply {
    size_t size;              /**< the struct's size, set by pt_reply_init() */
    int status;               /**< 200-599 */
    const char *content_type; /**< Content-Type; NULL: none */
    const pt_field *headers;  /**< more header fields (copied); not Content-Length,
                                   Transfer-Encoding or Connection */
    size_t nheaders;          /**< entries in headers */
    const void *body;         /**< a body from memory (copied), body_len bytes */
    size_t body_len;          /**< see body */
    int file_fd;              /**< or a body from this file (taken: porter closes it); -1: none */
    int64_t file_offset;      /**< where the file body starts */
    int64_t file_length;      /**< its length; -1: to the end of the file */
    time_t last_modified;     /**< a Last-Modified header; 0: none */
    bool stream;              /**< or a body written later with pt_response_write() */
    int64_t stream_length;    /**< its length if known (Content-Length), else -1: chunked
                                   (HTTP/1.1), or ended by closing the connection (HTTP/1.0) */
    bool close;               /**< close the connection after this response */
} pt_reply;

/** Fills the first `size` bytes of `r` as pt_reply_init() says and stores `size` (call
 * pt_reply_init(), which passes the size the program was compiled with). */
PT_API void pt_reply_init_sized(pt_reply *r, size_t size, int status);

/** Fills `r` for `status` with no header, no body and no file. */
static inline void pt_reply_init(pt_reply *r, int status)
{
    pt_reply_init_sized(r, sizeof *r, status);
}

/** Answers `req` as `r` describes (HEAD requests get the head only). Unless `r->stream`, the
 * request is then over for the handler: `req` must not be used after this call.
 * @return 0; -EINVAL (a bad status, header, body or file, or a reply this version cannot read
 *         (see pt_reply.size): nothing was sent, a file given was closed, and the request is
 *         still the handler's to answer), -E2BIG (the header fields
 *         exceed 6 KiB; the same), or -ECONNABORTED (the connection is gone). */
PT_API int pt_respond_with(pt_request *req, const pt_reply *r);

/** Answers `req` with `status` and `len` bytes of `body` (copied) of type `content_type` (may
 * be NULL). Then `req` must not be used. @return as pt_respond_with(). */
PT_API int pt_respond(pt_request *req, int status, const char *content_type, const void *body,
                      size_t len);

/** Answers `req` with `length` bytes (-1: to the end) of file `fd` (taken: porter closes it,
 * also on error) from `offset`, sent with sendfile(2) when large. Then `req` must not be used.
 * @return as pt_respond_with(). */
PT_API int pt_respond_file(pt_request *req, int status, const char *content_type, int fd,
                           int64_t offset, int64_t length);

/** Answers `req` with porter's own short HTML page for `status` (the page nginx would show).
 * Then `req` must not be used. @return as pt_respond_with(). */
PT_API int pt_respond_error(pt_request *req, int status);

/** Starts a streamed answer: the head now, the body in pt_response_write() calls over time,
 * then pt_response_end(). `length` is the body's length if known, else -1 (chunked).
 * @return as pt_respond_with(). */
PT_API int pt_respond_stream(pt_request *req, int status, const char *content_type, int64_t length);

/** Queues `len` bytes of a streamed body (copied) and writes what the socket takes now. Then
 * pt_response_is_full() says whether to wait for the writable callback before writing more.
 * @return 0 (queued); -EMSGSIZE (more than the stream's length), -EINVAL (no stream in
 *         progress), or another negative errno when the connection is gone (the abort callback
 *         has run or will run, and the request is over): nothing was queued. */
PT_API int pt_response_write(pt_request *req, const void *data, size_t len);

/** Returns true when the last pt_response_write() left the stream's queue over its bound (64
 * KiB; with HTTP/2, the stream's) and the queue has not been written out since: wait for the
 * writable callback (pt_response_on_writable()) before writing more. Writing anyway queues
 * the bytes too, and the queue grows (back-pressure is the handler's to keep). */
PT_API bool pt_response_is_full(const pt_request *req);

/** Ends a streamed body (a stream of known length must have been written in full, or the
 * connection is closed). The request is then over for the handler: `req` must not be used
 * after this call. @return 0 or a negative errno. */
PT_API int pt_response_end(pt_request *req);

/** Calls `cb(req, data)` whenever the queue of a streamed response has been written out (after
 * pt_response_is_full() said true, this is when to write more). */
PT_API void pt_response_on_writable(pt_request *req, pt_request_cb cb, void *data);

/* ==== the process ==== */

/** What this thread still holds: custodians not shut down, shut down but not yet reaped, and
 * buffer chunks handed out. All zero once every server (and connector) on the thread has been
 * freed; tests and the porter executable check this at exit. */
typedef struct pt_resource_counts {
    size_t custodians; /**< live custodians */
    size_t unreaped;   /**< shut down, memory not yet reaped */
    size_t chunks;     /**< buffer chunks handed out */
} pt_resource_counts;

/** Fills `out` with this thread's counts. */
PT_API void pt_resource_counts_get(pt_resource_counts *out);

/** A message for a negative errno returned by porter (borrowed, static). */
PT_API const char *pt_strerror(int err);

/** The version of the library the program runs with, "MAJOR.MINOR.PATCH" (static). Compare it
 * with PORTER_VERSION_STRING, the version of the headers it was compiled with. */
PT_API const char *pt_version(void);

/** The version of the library the program runs with as one number, MAJOR * 10000 + MINOR * 100
 * + PATCH, as PORTER_VERSION_NUMBER is for the headers. */
PT_API int pt_version_number(void);

#ifdef __cplusplus
}
#endif

#endif
