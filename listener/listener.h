/**
 * @file
 * Listener: listening TCP sockets that accept as a libev event (racket/tcp's tcp-listen,
 * tcp-accept, tcp-accept-ready?, tcp-close, tcp-addresses).
 *
 * One listener is one socket per resolved address: host NULL/""/"*" means 0.0.0.0 and [::];
 * IPv6 sockets are v6-only, so `[::]:P` and `0.0.0.0:P` may belong to different listeners.
 * With port "0" every socket of a listener shares the same ephemeral port.
 *
 * Ownership: the listener owns its sockets, its io watchers and its backoff timer; the option
 * strings are only read during pt_listener_open(). Each accepted fd is handed to the accept
 * callback, which owns it from then on (close it or keep it). pt_listener_close() may be
 * called from inside the listener's own callbacks: the sockets close at once and the memory
 * goes when the callback returns.
 *
 * Accepting: open() does not start accepting; start() does. pause()/resume() are the
 * caller's admission control (connections wait in the kernel's backlog). Independently,
 * when accept runs out of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listener stops
 * accepting for `emfile_backoff` seconds and then tries again, so a full fd table neither
 * spins the loop nor stops existing connections; the error callback hears about it once per
 * episode (an episode ends once the backlog has been emptied).
 *
 * Threading: a listener belongs to its loop's thread. pt_listener_open() resolves names
 * synchronously (it is meant for start-up; pass numeric hosts to avoid DNS).
 *
 * Errors: functions return 0 or a negative errno. Resolution failures are mapped to errno
 * values, see pt_listener_open().
 */
#ifndef PORTER_LISTENER_LISTENER_H
#define PORTER_LISTENER_LISTENER_H

#include <ev.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "porter/export.h"

typedef struct pt_listener pt_listener;

/** Called once per accepted connection. `fd` is non-blocking and close-on-exec; the callee
 * owns it. `peer` is only valid during the call. The callee may pause or close `l`; the
 * current batch of accepts then stops at once. */
typedef void (*pt_accept_cb)(pt_listener *l, int fd, const struct sockaddr *peer, socklen_t peerlen,
                             void *data);

/** Called when accept fails for a reason other than a transient one (EAGAIN, EINTR,
 * ECONNABORTED, EPROTO and the network errors accept(2) passes on): typically EMFILE,
 * ENFILE, ENOBUFS, ENOMEM. `err` is the positive errno. Called once per episode (from the
 * first failure until the backlog has been emptied), so the caller can log it; the listener
 * has already scheduled its retry. The callee may pause, resume or close `l`. */
typedef void (*pt_listener_error_cb)(pt_listener *l, int err, void *data);

/** Options of pt_listener_open(); pt_listener_options_init() fills the defaults. A sized
 * struct ("Versions and ABI" in docs/embedding.md): new options are added at its end. */
typedef struct pt_listener_options {
    size_t size; /**< the struct's size, set by pt_listener_options_init() */
    /** NULL, "" or "*": every address (0.0.0.0 and [::]); else a name or a literal
     * ("127.0.0.1", "::1", "[::1]", "localhost"). */
    const char *host;
    const char *port; /**< number or service name: "8080", "http"; "0" = ephemeral */
    int backlog;      /**< listen(2) backlog: 511 (>= 0) */
    bool reuseaddr;   /**< SO_REUSEADDR: true */
    bool reuseport;   /**< SO_REUSEPORT (workers sharing a port): false */
    /** TCP_DEFER_ACCEPT, in seconds: a connection is accepted once its first data has arrived
     * (or, silent, after about this long), so accepting and reading cost one wake-up. For
     * protocols where the client speaks first (HTTP, TLS). 0: off (the default). */
    int defer_accept;
    /** TCP_NOTSENT_LOWAT, in bytes, inherited by accepted connections: a connection's socket
     * holds at most about this much data not yet sent, and reports room for more only below it.
     * A large response then waits in the server rather than in the kernel (memory per
     * connection), and is sent as the client takes it. 0: the kernel's default (unbounded). */
    int notsent_lowat;
    int accept_batch;      /**< accepts per readiness event, for fairness: 64 (>= 1) */
    double emfile_backoff; /**< seconds without accepting after EMFILE and co: 0.1 (> 0) */
    /** File descriptors kept free for the connections already accepted (their files, their
     * upstreams): accepting stops, as after EMFILE, while the next descriptor would fall into
     * this reserve below RLIMIT_NOFILE, and resumes when it would not. 0: none (the default);
     * -1: 8 plus 1/64 of the limit. */
    int fd_reserve;
} pt_listener_options;

/** Longest string pt_sockaddr_format() writes, NUL included: "[" v6 "%" ifname "]:" port. */
#define PT_SOCKADDR_STRLEN (INET6_ADDRSTRLEN + IF_NAMESIZE + 10)

/** Fills the first `size` bytes of `o` with the defaults above and stores `size` (call
 * pt_listener_options_init(), which passes the size the program was compiled with). */
PT_API void pt_listener_options_init_sized(pt_listener_options *o, size_t size);

/** Fills `o` with the defaults above; host NULL, port NULL (the caller must set the port). */
static inline void pt_listener_options_init(pt_listener_options *o)
{
    pt_listener_options_init_sized(o, sizeof *o);
}

/** Opens, binds and listens on one socket per address `o->host` resolves to (duplicates
 * removed), without starting to accept. `cb` (required) and `err_cb` (optional) are called
 * with `data`. On success stores the listener in `*out` and returns 0; on failure closes
 * everything it opened, leaves `*out` NULL and returns:
 *   -EINVAL        missing/invalid option, unknown service name or port out of range,
 *                  options this version cannot read (see pt_listener_options.size);
 *   -EADDRNOTAVAIL the host name does not resolve (or resolves to no usable address);
 *   -EAGAIN        temporary resolver failure (try again later);
 *   -EADDRINUSE, -EACCES, ... from socket/setsockopt/bind/listen.
 * When a name resolves to several addresses, an address this kernel cannot use
 * (EAFNOSUPPORT: no IPv6; EADDRNOTAVAIL: not assigned here, such as ::1 with IPv6 disabled)
 * is skipped as long as another one binds; pt_listener_addresses() tells what was bound.
 * Any other error on any address fails the whole open. */
PT_API int pt_listener_open(pt_listener **out, struct ev_loop *loop, const pt_listener_options *o,
                            pt_accept_cb cb, pt_listener_error_cb err_cb, void *data);

/** Like pt_listener_open(), with sockets another process bound (a binary upgrade: porter's new
 * executable inherits its predecessor's listening sockets, so no connection is refused meanwhile).
 * For each address `o->host` resolves to, a listening TCP socket of `fds` bound to it and to
 * `o->port` (for port "0": to any port, which the other addresses then follow) is taken: the
 * listener owns it and its entry in `fds` becomes -1. The options a socket is made with are
 * applied to it (backlog, defer_accept, notsent_lowat; close-on-exec, non-blocking), except
 * reuseaddr and reuseport, which a bound socket keeps. An address that none of `fds` is bound to
 * is opened as pt_listener_open() opens it. On failure every socket taken goes back to its entry.
 * @return 0; -ENOENT when no socket of `fds` is bound to any of the addresses (nothing is taken,
 *         nothing opened); or an error of pt_listener_open(). */
PT_API int pt_listener_adopt(pt_listener **out, struct ev_loop *loop, const pt_listener_options *o,
                             int *fds, size_t nfds, pt_accept_cb cb, pt_listener_error_cb err_cb,
                             void *data);

/** Copies the bound address of each socket (getsockname, so port 0 shows the real port) to
 * `out`, at most `max` of them, and returns the number of sockets (which may exceed `max`).
 */
PT_API size_t pt_listener_addresses(const pt_listener *l, struct sockaddr_storage *out, size_t max);

/** Returns the bound port (host byte order), the same for every socket of `l`. */
PT_API int pt_listener_port(const pt_listener *l);

/** Copies the listening fds (still owned by `l`) to `out`, at most `max`, and returns the
 * number of sockets. */
PT_API size_t pt_listener_fds(const pt_listener *l, int *out, size_t max);

/** Starts accepting (starts the io watchers), unless paused. Idempotent. */
PT_API void pt_listener_start(pt_listener *l);

/** Called every time accepting backs off for want of file descriptors (EMFILE, ENFILE, or the
 * reserve), at most once per backoff period: the owner may free some (close idle connections)
 * so that the next attempt succeeds. */
typedef void (*pt_listener_pressure_cb)(pt_listener *l, void *data);
PT_API void pt_listener_set_pressure_cb(pt_listener *l, pt_listener_pressure_cb cb);

/** Hands the listener to new callbacks (a server taking over another's sockets on reload). */
PT_API void pt_listener_set_callbacks(pt_listener *l, pt_accept_cb cb, pt_listener_error_cb err_cb,
                                      void *data);

/** Sets TCP_DEFER_ACCEPT (see pt_listener_options.defer_accept; 0: off) on every socket of an
 * open listener: a server taking its sockets over on reload applies its own setting. Returns 0
 * or a negative errno. */
PT_API int pt_listener_set_defer_accept(pt_listener *l, int seconds);

/** Sets TCP_NOTSENT_LOWAT (see pt_listener_options.notsent_lowat; 0: the kernel's default) on
 * every socket of an open listener, for the connections it accepts from now on. Returns 0 or a
 * negative errno. */
PT_API int pt_listener_set_notsent_lowat(pt_listener *l, int bytes);

/** Stops accepting until pt_listener_resume(); new connections wait in the backlog (and are
 * refused by the kernel once it is full). Idempotent. */
PT_API void pt_listener_pause(pt_listener *l);

/** Undoes pt_listener_pause(). Accepting restarts if the listener was started and is not in
 * an EMFILE backoff (then it restarts when the backoff ends). Idempotent. */
PT_API void pt_listener_resume(pt_listener *l);

/** Returns true while paused by pt_listener_pause(). */
PT_API bool pt_listener_is_paused(const pt_listener *l);

/** Returns true if a connection is waiting to be accepted on any socket (tcp-accept-ready?);
 * does not block. */
PT_API bool pt_listener_accept_ready(const pt_listener *l);

/** Stops the watchers and the backoff timer, closes the sockets and frees `l`. Safe inside
 * the listener's callbacks (the memory goes when the callback returns). NULL: no-op. */
PT_API void pt_listener_close(pt_listener *l);

/** Writes `sa` as "127.0.0.1:8080" or "[::1]:8080" ("[fe80::1%eth0]:80" with a scope) to
 * `buf`. Returns 0, -ENOSPC if `len` is too small (PT_SOCKADDR_STRLEN always suffices) or
 * -EAFNOSUPPORT for a family other than AF_INET/AF_INET6. */
PT_API int pt_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
