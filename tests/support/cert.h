/*
 * Throw-away certificates for tests that speak TLS: a self-signed certificate made in memory,
 * handed to an SSL_CTX, written as PEM files for a conf or a client to load, or both.
 *
 * Include after cmocka (and tests/support.h). The keys are the caller's: EVP_EC_gen("P-256")
 * for most tests, EVP_RSA_gen(2048) where the key type matters.
 */
#ifndef PORTER_TESTS_SUPPORT_CERT_H
#define PORTER_TESTS_SUPPORT_CERT_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>

/* A certificate for the common name `cn`, signed by `key` (borrowed), valid from a minute ago
 * for an hour; `san` (NULL: none) is its subjectAltName in OpenSSL's form
 * ("DNS:localhost,IP:127.0.0.1"). The caller frees it with X509_free(). */
static inline X509 *cert_self_signed(EVP_PKEY *key, const char *cn, const char *san)
{
    assert_non_null(key);
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (san) {
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

/* Gives `ctx` the certificate `x` and its key `key` (both borrowed). */
static inline void cert_use(SSL_CTX *ctx, X509 *x, EVP_PKEY *key)
{
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
}

/* Writes `x` as PEM to `cert_path`, and `key` unencrypted to `key_path` (either NULL: not
 * written). */
static inline void cert_write(X509 *x, EVP_PKEY *key, const char *cert_path, const char *key_path)
{
    if (cert_path) {
        FILE *f = fopen(cert_path, "w");
        assert_non_null(f);
        assert_int_equal(PEM_write_X509(f, x), 1);
        assert_int_equal(fclose(f), 0);
    }
    if (key_path) {
        FILE *f = fopen(key_path, "w");
        assert_non_null(f);
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
        assert_int_equal(fclose(f), 0);
    }
}

/* A self-signed certificate for `cn` over `key` (taken: freed here) written to `cert_path`
 * and `key_path`. */
static inline void cert_make_files(EVP_PKEY *key, const char *cn, const char *cert_path,
                                   const char *key_path)
{
    X509 *x = cert_self_signed(key, cn, NULL);
    cert_write(x, key, cert_path, key_path);
    X509_free(x);
    EVP_PKEY_free(key);
}

#endif
