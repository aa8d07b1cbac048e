/*
 * TLS: a transport that layers OpenSSL over a TCP socket (net2's connector-tunnel idea), so
 * connections, timers, limits, custodians and everything above them work unchanged over it.
 *
 * The server side: pt_tls_accept() wraps an accepted socket; the handshake runs inside the first
 * reads and writes, answering -EAGAIN with pt_transport.want saying which readiness it needs.
 * Files go out with SSL_sendfile when the kernel does TLS for the socket (kTLS), otherwise the
 * transport answers -ENOTSUP and the out-queue reads and writes them through SSL_write in
 * bounded pieces.
 *
 * Writes: one writev encrypts several records (up to 128 KiB) into memory and sends them with
 * one sendmsg. Records the socket does not take are held by the transport and sent first on
 * the next call; their plaintext counts as written only once they are out, so the caller
 * offers it again, as after -EAGAIN (the out-queue does), and its queue is not empty meanwhile.
 *
 * The client side (net2's connector-tunnel): pt_tls_wrap_client() layers TLS over an outbound
 * transport's socket, replacing the TCP transport in place; the handshake likewise runs inside
 * the first reads and writes. Certificate verification (against the context's trust store, the
 * host name or IP address given) and SNI are on unless the caller opts out. The public tunnel
 * (connmgr/tunnel.h, pt_tls_connect()) is built on it and runs the handshake itself.
 *
 * This header is private (it speaks OpenSSL's types); tunnel.h is the public side.
 *
 * Errors: negative errno; a TLS protocol failure is -EPROTO, and the reason is logged once by
 * the caller from pt_tls_last_error(). OpenSSL's per-thread error queue is always left empty.
 *
 * Ownership: the transport owns the SSL object and the socket (close frees both). Contexts
 * (SSL_CTX) are reference-counted by OpenSSL; the transport holds a reference through its SSL.
 * Threading: one loop thread per transport.
 */
#ifndef PORTER_CONNMGR_TLS_H
#define PORTER_CONNMGR_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "connmgr/transport.h"
#include "connmgr/tunnel.h"

/* Makes `t` a server-side TLS transport over the accepted socket `fd` (which it then owns),
 * with `ctx`. Returns 0, or -ENOMEM (fd is then still the caller's). */
int pt_tls_accept(pt_transport *t, SSL_CTX *ctx, int fd);

/* Makes `t` a client-side TLS transport over the connected socket `fd` (which it then owns),
 * with `ctx` (pt_tls_client_ctx_new). `server_name` (may be NULL) is sent as SNI when it is a
 * DNS name, and with `verify` the peer's certificate must chain to the context's trust store
 * and match it (a name, or an IP literal). Returns 0, or -ENOMEM (fd is then still the
 * caller's). */
int pt_tls_wrap_client(pt_transport *t, SSL_CTX *ctx, int fd, const char *server_name, bool verify);

/* Creates a client context: TLS 1.2 and 1.3, the system's trust store, or the PEM
 * certificates of `ca_file` instead when it is not NULL. Returns NULL and writes a reason into
 * `err` on failure. */
SSL_CTX *pt_tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/* The SSL object of a TLS transport, or NULL for another transport. */
SSL *pt_tls_ssl(const pt_transport *t);

/* Bytes of TLS records the transport has made and the socket not yet taken (0 for another
 * transport). While there are any, the out-queue that wrote them is not empty. */
size_t pt_tls_unsent(const pt_transport *t);

/* Whether this kernel and OpenSSL can hand TLS records to the kernel (kTLS) for sendfile. The
 * answer is probed once. */
bool pt_tls_ktls_available(void);

#endif
