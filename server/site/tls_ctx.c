#include "server/site/tls_ctx.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* Ticket keys: the current one encrypts, it and the older ones decrypt. A writer bumps `seq` to
 * odd, writes, bumps to even; readers retry while it is odd or changed (a sequence lock), so
 * workers never lock and never read a half-written key. */
#define TICKET_KEYS 3

typedef struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
} ticket_key;

struct pt_tls_ticket_keys {
    _Atomic unsigned seq;
    unsigned current; /* index of the encrypting key */
    ticket_key keys[TICKET_KEYS];
};

static int ticket_keys_index = -1; /* SSL_CTX ex_data slot holding the keys */

void pt_tls_ctx_options_init(pt_tls_ctx_options *o)
{
    *o = (pt_tls_ctx_options){
        .min_version = TLS1_2_VERSION,
        .max_version = TLS1_3_VERSION,
        .ciphers = PT_TLS_DEFAULT_CIPHERS,
        .ciphersuites = PT_TLS_DEFAULT_CIPHERSUITES,
        .prefer_server_ciphers = true,
        .session_cache = 20480,
        .session_timeout = 3600,
        .tickets = true,
    };
}

static void openssl_reason(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[200] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    snprintf(err, errlen, "%s: %s", what, reason);
    ERR_clear_error();
}

static void fresh_key(ticket_key *k)
{
    if (RAND_bytes(k->name, sizeof k->name) != 1 || RAND_bytes(k->aes, sizeof k->aes) != 1 ||
        RAND_bytes(k->hmac, sizeof k->hmac) != 1)
        abort(); /* no randomness: nothing safe can be done */
}

pt_tls_ticket_keys *pt_tls_ticket_keys_new(void)
{
    pt_tls_ticket_keys *k =
        mmap(NULL, sizeof *k, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (k == MAP_FAILED)
        return NULL;
    for (int i = 0; i < TICKET_KEYS; i++)
        fresh_key(&k->keys[i]);
    k->current = 0;
    return k;
}

void pt_tls_ticket_keys_rotate(pt_tls_ticket_keys *k)
{
    unsigned next = (k->current + 1) % TICKET_KEYS;
    atomic_fetch_add_explicit(&k->seq, 1, memory_order_acq_rel);
    fresh_key(&k->keys[next]);
    k->current = next;
    atomic_fetch_add_explicit(&k->seq, 1, memory_order_acq_rel);
}

void pt_tls_ticket_keys_free(pt_tls_ticket_keys *k)
{
    if (k)
        munmap(k, sizeof *k);
}

/* A consistent copy of the keys (see the sequence lock above). */
static void read_keys(const pt_tls_ticket_keys *k, ticket_key out[TICKET_KEYS], unsigned *current)
{
    for (;;) {
        unsigned s = atomic_load_explicit(&k->seq, memory_order_acquire);
        if (s & 1)
            continue;
        memcpy(out, k->keys, sizeof k->keys);
        *current = k->current;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&k->seq, memory_order_acquire) == s)
            return;
    }
}

static int set_hmac_key(EVP_MAC_CTX *hctx, unsigned char *key, size_t len)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, len),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* The ticket cipher, fetched once: OpenSSL 3 looks an implicitly fetched cipher up by name
 * (locks, string compares) on every use, twice per handshake here. */
static const EVP_CIPHER *ticket_cipher(void)
{
    static EVP_CIPHER *aes;
    if (!aes)
        aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    return aes;
}

/* OpenSSL's ticket callback: encrypt with the current key; decrypt with whichever key named
 * the ticket (2: "renew it", when that key is no longer the current one). */
static int on_ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                         EVP_MAC_CTX *hctx, int enc)
{
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    const pt_tls_ticket_keys *shared = SSL_CTX_get_ex_data(ctx, ticket_keys_index);
    ticket_key keys[TICKET_KEYS];
    unsigned current;
    read_keys(shared, keys, &current);
    int r = -1;
    const EVP_CIPHER *aes = ticket_cipher();
    if (!aes) {
        OPENSSL_cleanse(keys, sizeof keys);
        return -1;
    }
    if (enc) {
        ticket_key *k = &keys[current];
        memcpy(name, k->name, 16);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) == 1 &&
            EVP_EncryptInit_ex(cctx, aes, NULL, k->aes, iv) == 1 &&
            set_hmac_key(hctx, k->hmac, sizeof k->hmac) == 1)
            r = 1;
    } else {
        r = 0; /* unknown key: a full handshake, a fresh ticket */
        for (unsigned i = 0; i < TICKET_KEYS; i++) {
            ticket_key *k = &keys[i];
            if (memcmp(name, k->name, 16) != 0)
                continue;
            /* 2 asks for a fresh ticket: after a key rotation, and after every TLS 1.3
             * resumption, whose tickets clients use once (RFC 8446, C.4). Without one, a
             * client's next connection would be a full handshake. */
            bool renew = i != current || SSL_version(ssl) >= TLS1_3_VERSION;
            r = (EVP_DecryptInit_ex(cctx, aes, NULL, k->aes, iv) == 1 &&
                 set_hmac_key(hctx, k->hmac, sizeof k->hmac) == 1)
                    ? (renew ? 2 : 1)
                    : -1;
            break;
        }
    }
    OPENSSL_cleanse(keys, sizeof keys);
    return r;
}

/* ALPN: the protocols a context offers, in wire format and in the server's order of
 * preference; a connection's callback gets one as its argument. */
static const unsigned char alpn_h2[] = "\x02h2\x08http/1.1";
#define ALPN_HTTP11 (alpn_h2 + 3)

static int offer_h2_index = -1; /* SSL ex_data slot: set when the address offers h2 */

void pt_tls_offer_h2(SSL *ssl)
{
    if (offer_h2_index < 0)
        offer_h2_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    SSL_set_ex_data(ssl, offer_h2_index, (void *)alpn_h2);
}

/* The server's first protocol that the client offers: h2 where HTTP/2 is on (the context of
 * the server SNI chose, or the connection's address), else http/1.1. A client offering only
 * protocols not on that list gets no ALPN answer. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    const unsigned char *ours = arg;
    if (offer_h2_index >= 0 && SSL_get_ex_data(ssl, offer_h2_index))
        ours = alpn_h2;
    unsigned char *selected;
    if (SSL_select_next_proto(&selected, outlen, ours, (unsigned)strlen((const char *)ours), in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

int pt_tls_parse_protocols(const char *const *words, size_t n, int *min, int *max, char *err,
                           size_t errlen)
{
    static const struct {
        const char *name;
        int version;
    } known[] = {{"TLSv1.2", TLS1_2_VERSION}, {"TLSv1.3", TLS1_3_VERSION}};
    int lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++)
            if (strcmp(words[i], known[k].name) == 0)
                v = known[k].version;
        if (!v) {
            bool old = strcmp(words[i], "TLSv1") == 0 || strcmp(words[i], "TLSv1.1") == 0 ||
                       strncmp(words[i], "SSLv", 4) == 0;
            snprintf(err, errlen,
                     old ? "protocol \"%s\" is not safe and not supported"
                         : "unknown protocol \"%s\"",
                     words[i]);
            return -EINVAL;
        }
        lo = lo && lo < v ? lo : v;
        hi = hi > v ? hi : v;
    }
    *min = lo;
    *max = hi;
    return 0;
}

int pt_tls_ctx_new(SSL_CTX **out, const pt_tls_ctx_options *o, char *err, size_t errlen)
{
    *out = NULL;
    if (o->ncerts == 0) {
        snprintf(err, errlen, "no ssl_certificate");
        return -EINVAL;
    }
    if (ticket_keys_index < 0)
        ticket_keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (offer_h2_index < 0) /* before any connection of the context may need it */
        offer_h2_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        openssl_reason(err, errlen, "SSL_CTX_new");
        return -ENOMEM;
    }
    int r = -EINVAL;
    SSL_CTX_set_min_proto_version(ctx, o->min_version);
    SSL_CTX_set_max_proto_version(ctx, o->max_version);
    uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
    if (o->prefer_server_ciphers)
        opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (!o->tickets)
        opts |= SSL_OP_NO_TICKET;
#ifdef SSL_OP_ENABLE_KTLS
    opts |= SSL_OP_ENABLE_KTLS; /* used only where the kernel offers it */
#endif
    SSL_CTX_set_options(ctx, opts);
    if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
        openssl_reason(err, errlen, "ssl_ciphers");
        goto fail;
    }
    if (o->ciphersuites && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) {
        openssl_reason(err, errlen, "ssl_ciphersuites");
        goto fail;
    }
    for (size_t i = 0; i < o->ncerts; i++) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->certs[i]) != 1) {
            char what[512];
            snprintf(what, sizeof what, "cannot load certificate \"%s\"", o->certs[i]);
            openssl_reason(err, errlen, what);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o->keys[i], SSL_FILETYPE_PEM) != 1) {
            char what[512];
            snprintf(what, sizeof what, "cannot load certificate key \"%s\"", o->keys[i]);
            openssl_reason(err, errlen, what);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            char what[512];
            snprintf(what, sizeof what, "key \"%s\" does not match certificate \"%s\"", o->keys[i],
                     o->certs[i]);
            openssl_reason(err, errlen, what);
            goto fail;
        }
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, (void *)(o->http2 ? alpn_h2 : ALPN_HTTP11));
    static const unsigned char sid_ctx[] = "porter";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (o->session_cache) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        /* OpenSSL counts the session it adds before it makes room (SSL_CTX_add_session), so a
         * cache of N keeps N - 1: one more keeps the N that the directive names. */
        SSL_CTX_sess_set_cache_size(ctx, (long)o->session_cache + 1);
        SSL_CTX_set_timeout(ctx, o->session_timeout);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    /* One TLS 1.3 ticket per handshake is enough to resume (OpenSSL sends two by default,
     * each one encrypted here). */
    SSL_CTX_set_num_tickets(ctx, o->tickets ? 1 : 0);
    if (o->tickets && o->ticket_keys) {
        SSL_CTX_set_ex_data(ctx, ticket_keys_index, o->ticket_keys);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    *out = ctx;
    ERR_clear_error();
    return 0;
fail:
    SSL_CTX_free(ctx);
    return r;
}
