/**
 * @file
 * TLS tunnels: TLS layered over an outbound transport that is already connected (net2's
 * connector-tunnel), with the peer's certificate verified, SNI and ALPN; and what a program may
 * ask of any TLS transport, accepted ones included.
 *
 * pt_tls_connect() replaces the TCP transport of a pt_outbound in place by a TLS one over the
 * same socket and runs the handshake on the loop, watching the socket with the outbound's `io`
 * (its callback and data are the holder's again before the completion callback runs), bounded
 * by a timeout. The completion callback says how it went; the holder then reads and writes
 * o->transport as before, in plaintext. A pool keeps and hands out such a transport as it is:
 * the tunnel stays up for the next exchange.
 *
 * Verification (on unless the options turn it off): the peer's certificate chain must end at a
 * certificate the client context trusts (the system's store, or the PEM file given to
 * pt_tls_client_new()) and name the server: a DNS name (with RFC 6125's wildcards) or an IP
 * address. SNI carries the name, never an IP address (RFC 6066).
 *
 * Ownership: a client context (pt_tls_client) is the caller's, from pt_tls_client_new() to
 * pt_tls_client_free(); a transport made with it holds what it needs, so the context may be
 * freed while its transports live. A handshake in progress belongs to its outbound: closing
 * the outbound (pt_outbound_close()) abandons it and the callback never runs; the connector's
 * shutdown ends it with -ECANCELED.
 *
 * Errors: negative errno; a handshake that fails is -EPROTO, and pt_tls_last_error() gives the
 * reason (a certificate that does not verify, an alert from the peer). Threading: the loop's
 * thread only.
 */
#ifndef PORTER_CONNMGR_TUNNEL_H
#define PORTER_CONNMGR_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "connmgr/connector.h"
#include "connmgr/transport.h"
#include "porter/export.h"

/** A client context: the trust store and settings the tunnels made with it share. */
typedef struct pt_tls_client pt_tls_client;

/** Makes a client context for TLS 1.2 and 1.3 that trusts the system's certificate store, or
 * the PEM certificates of `ca_file` instead when it is not NULL (read now).
 * @param err receives a message on error (may be NULL)
 * @return 0, -ENOENT or -EACCES (the file cannot be read), -EINVAL (it holds no certificate),
 *         or -ENOMEM. */
PT_API int pt_tls_client_new(pt_tls_client **out, const char *ca_file, char *err, size_t errlen);

/** Frees a client context (its transports keep what they need). NULL: no-op. */
PT_API void pt_tls_client_free(pt_tls_client *c);

/** Options of pt_tls_connect(); pt_tls_connect_options_init() fills the defaults. A sized
 * struct ("Versions and ABI" in docs/embedding.md): new options are added at its end. */
typedef struct pt_tls_connect_options {
    size_t size; /**< the struct's size, set by pt_tls_connect_options_init() */
    /** The server's name: sent as SNI when it is a DNS name, and what its certificate must
     * name (a DNS name or an IP address). NULL (the default): the outbound's authority's host
     * (none for a unix socket). Read during the call. */
    const char *server_name;
    bool verify; /**< verify the peer's certificate chain and name (true) */
    bool sni;    /**< send the name as SNI (true); off, the name is still verified */
    /** The protocols to offer by ALPN, most wanted first, separated by commas ("h2,http/1.1"),
     * each 1 to 255 bytes; NULL (the default): no ALPN. Read during the call. */
    const char *alpn;
    /** Seconds the handshake may take (10); PT_TIMEOUT_NONE: no bound. */
    double timeout;
} pt_tls_connect_options;

/** Fills the first `size` bytes of `o` with the defaults above and stores `size` (call
 * pt_tls_connect_options_init(), which passes the size the program was compiled with). */
PT_API void pt_tls_connect_options_init_sized(pt_tls_connect_options *o, size_t size);

/** Fills `o` with the defaults above. */
static inline void pt_tls_connect_options_init(pt_tls_connect_options *o)
{
    pt_tls_connect_options_init_sized(o, sizeof *o);
}

/** The completion of pt_tls_connect(): status 0 with the tunnel up, or a negative errno
 * (-EPROTO: the handshake failed, pt_tls_last_error() says why; -ETIMEDOUT; -ECONNRESET: the
 * peer closed; -ECANCELED: the connector shut down). Either way the holder still holds `o`,
 * to use, give back to its pool (after 0 only) or close. */
typedef void (*pt_tls_connect_cb)(pt_outbound *o, int status, void *data);

/** Layers TLS over the outbound transport `o` holds (a TCP one, never used for anything else
 * yet), with `client`'s trust store (borrowed for the call) and `opts` (NULL: the defaults),
 * and starts the handshake: `cb(o, status, data)` runs once, from the loop (never inside this
 * call). Until it runs, the holder leaves `o` alone but may close it (the callback then never
 * runs).
 * @return 0, or a negative errno (the callback never runs, and `o` is unchanged): -EINVAL (a
 *         transport that is not TCP, bad options or ALPN list, verification without a name to
 *         verify, options this version cannot read), -ECANCELED (the connector is shut down),
 *         -ENOMEM. */
PT_API int pt_tls_connect(pt_outbound *o, pt_tls_client *client, const pt_tls_connect_options *opts,
                          pt_tls_connect_cb cb, void *data);

/** Writes the protocol ALPN agreed on for the TLS transport `t` ("h2") to `out`, NUL-terminated.
 * @return its length; -ENOENT when none was (no ALPN, the handshake not done, not TLS);
 *         -ENOSPC when `cap` is too small (256 always suffices). */
PT_API int pt_tls_alpn(const pt_transport *t, char *out, size_t cap);

/** Returns true if `t` is a TLS transport. */
PT_API bool pt_transport_is_tls(const pt_transport *t);

/** Returns true once the handshake of the TLS transport `t` has completed. */
PT_API bool pt_tls_handshake_done(const pt_transport *t);

/** The reason of the last TLS failure on this thread ("" if none), for one log line. */
PT_API const char *pt_tls_last_error(void);

#endif
