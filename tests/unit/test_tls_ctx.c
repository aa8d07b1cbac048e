#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/site/tls_ctx.h"
#include "tests/support.h"
#include "tests/support/cert.h"

/*
 * Server TLS contexts against a real OpenSSL client: the right certificate for each client,
 * old protocols refused, ALPN, and session tickets that resume across two contexts sharing
 * keys (two workers), through one rotation but not three.
 */

static char dir[PATH_MAX];
static char rsa_cert[PATH_MAX], rsa_key[PATH_MAX], ec_cert[PATH_MAX], ec_key[PATH_MAX];

static int group_setup(void **state)
{
    temp_dir_make(dir, sizeof dir, "tlsctx");
    cert_make_files(EVP_RSA_gen(2048), "localhost", temp_path(rsa_cert, dir, "rsa.crt"),
                    temp_path(rsa_key, dir, "rsa.key"));
    cert_make_files(EVP_EC_gen("P-256"), "localhost", temp_path(ec_cert, dir, "ec.crt"),
                    temp_path(ec_key, dir, "ec.key"));
    return 0;
}

static int group_teardown(void **state)
{
    temp_dir_remove(dir);
    return 0;
}

/* A context with both certificates, from `o` (NULL: the defaults). */
static SSL_CTX *server_ctx_with(pt_tls_ctx_options *o, pt_tls_ticket_keys *keys)
{
    const char *certs[] = {rsa_cert, ec_cert}, *keyfiles[] = {rsa_key, ec_key};
    pt_tls_ctx_options defaults;
    if (!o) {
        pt_tls_ctx_options_init(&defaults);
        o = &defaults;
    }
    o->certs = certs;
    o->keys = keyfiles;
    o->ncerts = 2;
    o->ticket_keys = keys;
    o->session_cache = 0; /* resumption below must come from the tickets */
    SSL_CTX *ctx;
    char err[256];
    assert_int_equal(pt_tls_ctx_new(&ctx, o, err, sizeof err), 0);
    return ctx;
}

static SSL_CTX *server_ctx(pt_tls_ticket_keys *keys)
{
    return server_ctx_with(NULL, keys);
}

typedef struct result {
    bool ok, reused;
    int key_type; /* EVP_PKEY_RSA / EVP_PKEY_EC */
    char alpn[16];
    SSL_SESSION *session;
} result;

/* The server end of the next handshake has pt_tls_offer_h2 (its address offers h2). */
static bool next_offers_h2;

/* One handshake over a socketpair, both ends non-blocking, pumped in turn. */
static result handshake(SSL_CTX *sctx, int max_version, const char *sigalgs,
                        const unsigned char *alpn, unsigned alpn_len, SSL_SESSION *resume)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(cctx, max_version);
    if (max_version < TLS1_2_VERSION)
        SSL_CTX_set_security_level(cctx, 0);
    if (sigalgs)
        SSL_CTX_set1_sigalgs_list(cctx, sigalgs);
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    SSL_set_fd(s, sv[0]);
    SSL_set_fd(c, sv[1]);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    if (next_offers_h2)
        pt_tls_offer_h2(s);
    next_offers_h2 = false;
    if (alpn)
        SSL_set_alpn_protos(c, alpn, alpn_len);
    if (resume)
        SSL_set_session(c, resume);
    result res = {0};
    bool sdone = false, cdone = false, failed = false;
    for (int i = 0; i < 200 && !(sdone && cdone) && !failed; i++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            cdone = r == 1;
            failed |= r != 1 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ &&
                      SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE;
        }
        if (!sdone) {
            int r = SSL_do_handshake(s);
            sdone = r == 1;
            failed |= r != 1 && SSL_get_error(s, r) != SSL_ERROR_WANT_READ &&
                      SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE;
        }
    }
    res.ok = sdone && cdone && !failed;
    if (res.ok) {
        char buf[8];
        SSL_read(c, buf, sizeof buf); /* takes in the TLS 1.3 session tickets */
        res.reused = SSL_session_reused(c);
        EVP_PKEY *pk = X509_get0_pubkey(SSL_get0_peer_certificate(c));
        res.key_type = pk ? EVP_PKEY_get_base_id(pk) : 0;
        const unsigned char *sel;
        unsigned len;
        SSL_get0_alpn_selected(c, &sel, &len);
        if (sel)
            memcpy(res.alpn, sel, len < sizeof res.alpn ? len : sizeof res.alpn - 1);
        res.session = SSL_get1_session(c);
        /* A session is resumable only after an orderly close (OpenSSL forgets it otherwise). */
        SSL_shutdown(c);
    }
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(cctx);
    close(sv[0]);
    close(sv[1]);
    ERR_clear_error();
    return res;
}

static void test_each_client_gets_the_certificate_it_supports(void **state)
{
    SSL_CTX *ctx = server_ctx(NULL);
    result ec = handshake(ctx, TLS1_3_VERSION, "ECDSA+SHA256", NULL, 0, NULL);
    assert_true(ec.ok);
    assert_int_equal(ec.key_type, EVP_PKEY_EC);
    result rsa =
        handshake(ctx, TLS1_3_VERSION, "rsa_pss_rsae_sha256:rsa_pkcs1_sha256", NULL, 0, NULL);
    assert_true(rsa.ok);
    assert_int_equal(rsa.key_type, EVP_PKEY_RSA);
    SSL_SESSION_free(ec.session);
    SSL_SESSION_free(rsa.session);
    SSL_CTX_free(ctx);
}

/* A context whose ciphers TLS 1.0 and 1.1 can use (CBC with SHA-1), at OpenSSL's security level
 * 0 (from level 1 up OpenSSL 3 refuses those versions by itself), with the protocol floor
 * `min_version`: nothing but that floor stands between an old client and a handshake. */
static SSL_CTX *legacy_ctx(int min_version)
{
    pt_tls_ctx_options o;
    pt_tls_ctx_options_init(&o);
    o.ciphers = "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:" PT_TLS_DEFAULT_CIPHERS "@SECLEVEL=0";
    if (min_version)
        o.min_version = min_version;
    return server_ctx_with(&o, NULL);
}

static void test_old_protocols_are_refused(void **state)
{
    /* The clients (at security level 0) are refused by the floor of the defaults ... */
    SSL_CTX *ctx = legacy_ctx(0);
    assert_false(handshake(ctx, TLS1_1_VERSION, NULL, NULL, 0, NULL).ok);
    assert_false(handshake(ctx, TLS1_VERSION, NULL, NULL, 0, NULL).ok);
    result r12 = handshake(ctx, TLS1_2_VERSION, NULL, NULL, 0, NULL);
    assert_true(r12.ok);
    SSL_SESSION_free(r12.session);
    SSL_CTX_free(ctx);
    /* ... and by nothing else: the same context with a floor of TLS 1.0 takes them. */
    ctx = legacy_ctx(TLS1_VERSION);
    for (int version = TLS1_VERSION; version <= TLS1_1_VERSION; version++) {
        result old = handshake(ctx, version, NULL, NULL, 0, NULL);
        assert_true(old.ok);
        SSL_SESSION_free(old.session);
    }
    SSL_CTX_free(ctx);

    const char *bad[] = {"TLSv1.2", "TLSv1.1"}, *good[] = {"TLSv1.3", "TLSv1.2"};
    int lo, hi;
    char err[128];
    assert_int_equal(pt_tls_parse_protocols(bad, 2, &lo, &hi, err, sizeof err), -EINVAL);
    assert_string_equal(err, "protocol \"TLSv1.1\" is not safe and not supported");
    assert_int_equal(pt_tls_parse_protocols(good, 2, &lo, &hi, err, sizeof err), 0);
    assert_int_equal(lo, TLS1_2_VERSION);
    assert_int_equal(hi, TLS1_3_VERSION);
}

static void test_alpn_answers_http11(void **state)
{
    SSL_CTX *ctx = server_ctx(NULL);
    static const unsigned char both[] = "\x02h2\x08http/1.1", h2only[] = "\x02h2";
    result r = handshake(ctx, TLS1_3_VERSION, NULL, both, sizeof both - 1, NULL);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "http/1.1");
    SSL_SESSION_free(r.session);
    r = handshake(ctx, TLS1_3_VERSION, NULL, h2only, sizeof h2only - 1, NULL);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "");
    SSL_SESSION_free(r.session);
    SSL_CTX_free(ctx);
}

/* A context with http2 selects h2 before http/1.1 whatever the client's order; a connection
 * whose address offers h2 does so on a context without it; neither changes what a client
 * without h2 gets. */
static void test_alpn_selects_h2_where_http2_is_on(void **state)
{
    static const unsigned char both[] = "\x02h2\x08http/1.1", h2only[] = "\x02h2",
                               h11first[] = "\x08http/1.1\x02h2", h11only[] = "\x08http/1.1",
                               other[] = "\x06spdy/3";
    pt_tls_ctx_options o;
    pt_tls_ctx_options_init(&o);
    assert_false(o.http2);
    o.http2 = true;
    SSL_CTX *h2 = server_ctx_with(&o, NULL), *plain = server_ctx(NULL);
    static const struct {
        bool ctx_h2, conn_h2;
        const unsigned char *offer;
        size_t len;
        const char *want;
    } cases[] = {
        {true, false, both, sizeof both - 1, "h2"},
        {true, false, h11first, sizeof h11first - 1, "h2"}, /* the server's order */
        {true, false, h2only, sizeof h2only - 1, "h2"},
        {true, false, h11only, sizeof h11only - 1, "http/1.1"},
        {true, false, other, sizeof other - 1, ""},
        {false, true, both, sizeof both - 1, "h2"},
        {false, true, h2only, sizeof h2only - 1, "h2"},
        {false, true, h11only, sizeof h11only - 1, "http/1.1"},
        {false, false, h11first, sizeof h11first - 1, "http/1.1"},
        {false, false, h2only, sizeof h2only - 1, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        next_offers_h2 = cases[i].conn_h2;
        result r = handshake(cases[i].ctx_h2 ? h2 : plain, TLS1_3_VERSION, NULL, cases[i].offer,
                             (unsigned)cases[i].len, NULL);
        assert_true(r.ok);
        if (strcmp(r.alpn, cases[i].want) != 0)
            fail_msg("case %zu: ALPN \"%s\", want \"%s\"", i, r.alpn, cases[i].want);
        SSL_SESSION_free(r.session);
    }
    SSL_CTX_free(h2);
    SSL_CTX_free(plain);
}

static void test_tickets_resume_across_workers_and_rotations(void **state)
{
    pt_tls_ticket_keys *keys = pt_tls_ticket_keys_new();
    SSL_CTX *worker1 = server_ctx(keys), *worker2 = server_ctx(keys);
    for (int version = TLS1_2_VERSION; version <= TLS1_3_VERSION; version++) {
        result first = handshake(worker1, version, NULL, NULL, 0, NULL);
        assert_true(first.ok);
        assert_false(first.reused);
        result again = handshake(worker2, version, NULL, NULL, 0, first.session);
        assert_true(again.ok);
        assert_true(again.reused); /* another worker, same keys: resumed */

        pt_tls_ticket_keys_rotate(keys);
        result after_one = handshake(worker2, version, NULL, NULL, 0, first.session);
        assert_true(after_one.reused); /* the previous key still decrypts */

        pt_tls_ticket_keys_rotate(keys);
        pt_tls_ticket_keys_rotate(keys);
        result after_three = handshake(worker1, version, NULL, NULL, 0, first.session);
        assert_true(after_three.ok);
        assert_false(after_three.reused); /* its key is gone: a full handshake */

        SSL_SESSION_free(first.session);
        SSL_SESSION_free(again.session);
        SSL_SESSION_free(after_one.session);
        SSL_SESSION_free(after_three.session);
    }
    SSL_CTX_free(worker1);
    SSL_CTX_free(worker2);
    pt_tls_ticket_keys_free(keys);
}

static void test_bad_files_are_named(void **state)
{
    const char *certs[] = {"/nonexistent/site.crt"}, *keyfiles[] = {rsa_key};
    pt_tls_ctx_options o;
    pt_tls_ctx_options_init(&o);
    o.certs = certs;
    o.keys = keyfiles;
    o.ncerts = 1;
    SSL_CTX *ctx;
    char err[512];
    assert_int_equal(pt_tls_ctx_new(&ctx, &o, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "cannot load certificate \"/nonexistent/site.crt\""));

    const char *mismatch_certs[] = {rsa_cert}, *mismatch_keys[] = {ec_key};
    o.certs = mismatch_certs;
    o.keys = mismatch_keys;
    assert_int_equal(pt_tls_ctx_new(&ctx, &o, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "key"));
    assert_int_equal(ERR_peek_error(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_each_client_gets_the_certificate_it_supports),
        NOTHING_LEFT_TEST(test_old_protocols_are_refused),
        NOTHING_LEFT_TEST(test_alpn_answers_http11),
        NOTHING_LEFT_TEST(test_alpn_selects_h2_where_http2_is_on),
        NOTHING_LEFT_TEST(test_tickets_resume_across_workers_and_rotations),
        NOTHING_LEFT_TEST(test_bad_files_are_named),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
