/*
 * TLS contexts of a server: one SSL_CTX per server block that listens with `ssl`, built from
 * the conf's ssl_* directives, with safe defaults a TLS scanner grades well:
 *
 *   - TLS 1.2 and 1.3 only; AEAD ciphers with forward secrecy (ECDHE), the server's order;
 *   - no renegotiation, no compression;
 *   - several certificates per context (an RSA and an ECDSA one: each client gets the best it
 *     supports);
 *   - ALPN answers h2 (where HTTP/2 is on: the context's `http2`, or the connection's address
 *     through pt_tls_offer_h2) before http/1.1, in the server's order;
 *   - resumption by a session cache (per process) and by session tickets whose keys live in
 *     memory shared by all workers and are rotated on a schedule by one owner (the master),
 *     so a ticket from one worker resumes on any other, and old keys still decrypt (and renew)
 *     for two rotation periods.
 *
 * Ownership: pt_tls_ctx_new returns an SSL_CTX reference the caller frees with SSL_CTX_free.
 * Ticket keys: pt_tls_ticket_keys_new maps them (before forking workers), the owner frees them.
 * Errors: negative errno with a message naming the file or the setting.
 */
#ifndef PORTER_SERVER_SITE_TLS_CTX_H
#define PORTER_SERVER_SITE_TLS_CTX_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct pt_tls_ticket_keys pt_tls_ticket_keys;

/* The defaults of the options below. */
#define PT_TLS_DEFAULT_CIPHERS                                                                     \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define PT_TLS_DEFAULT_CIPHERSUITES                                                                \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

typedef struct pt_tls_ctx_options {
    const char *const *certs; /* PEM certificate (chain) files */
    const char *const *keys;  /* their private keys, in the same order */
    size_t ncerts;
    int min_version, max_version; /* TLS1_2_VERSION, TLS1_3_VERSION */
    const char *ciphers;          /* TLS 1.2 and below (OpenSSL cipher list) */
    const char *ciphersuites;     /* TLS 1.3 */
    bool prefer_server_ciphers;
    size_t session_cache; /* sessions kept per process; 0: no cache */
    long session_timeout; /* seconds */
    bool tickets;
    pt_tls_ticket_keys *ticket_keys; /* NULL with tickets on: OpenSSL's own per-process keys */
    bool http2; /* ALPN selects h2 when the client offers it (its server says `http2 on`) */
} pt_tls_ctx_options;

void pt_tls_ctx_options_init(pt_tls_ctx_options *o);

/* Builds a server context. Returns 0 or a negative errno with the reason in `err`. */
int pt_tls_ctx_new(SSL_CTX **out, const pt_tls_ctx_options *o, char *err, size_t errlen);

/* Makes ALPN on `ssl` (a server connection) select h2 when the client offers it, whatever its
 * context says: the connection's address offers HTTP/2 (`listen ... ssl http2`), so it does for
 * every server SNI may switch to (nginx's rule). Call it before the handshake. */
void pt_tls_offer_h2(SSL *ssl);

/* Parses an nginx ssl_protocols list ("TLSv1.2 TLSv1.3") into a version range. TLSv1 and
 * TLSv1.1 are refused: -EINVAL with the offending word in `err`. */
int pt_tls_parse_protocols(const char *const *words, size_t n, int *min, int *max, char *err,
                           size_t errlen);

/* Ticket keys in memory shared with future child processes. NULL if out of memory. */
pt_tls_ticket_keys *pt_tls_ticket_keys_new(void);
/* Makes a fresh current key; the previous ones keep decrypting (and renewing) for a while. */
void pt_tls_ticket_keys_rotate(pt_tls_ticket_keys *k);
void pt_tls_ticket_keys_free(pt_tls_ticket_keys *k);

#endif
