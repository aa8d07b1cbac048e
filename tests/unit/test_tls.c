#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/buffer.h"
#include "connmgr/tls.h"
#include "tests/support.h"
#include "tests/support/cert.h"

/*
 * The TLS transport against a real OpenSSL client over a socketpair: the handshake happens
 * inside the transport's first reads and writes, data flows both ways, writev is gathered into
 * records, files fall back to read-and-write without kTLS, the end is a close_notify, garbage
 * is a protocol error with its reason, and OpenSSL's error queue is left empty every time.
 */

typedef struct fixture {
    SSL_CTX *server_ctx, *client_ctx;
    pt_transport server;
    SSL *client;
    int client_fd;
} fixture;

/* A throw-away self-signed ECDSA certificate for "localhost". */
static void make_cert(SSL_CTX *ctx)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = cert_self_signed(key, "localhost", NULL);
    cert_use(ctx, x, key);
    X509_free(x);
    EVP_PKEY_free(key);
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    nothing_left_begin();
    f.server_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(f.server_ctx, TLS1_2_VERSION);
    make_cert(f.server_ctx);
    f.client_ctx = SSL_CTX_new(TLS_client_method());
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pt_tls_accept(&f.server, f.server_ctx, sv[0]), 0);
    f.client = SSL_new(f.client_ctx);
    SSL_set_fd(f.client, sv[1]);
    SSL_set_connect_state(f.client);
    f.client_fd = sv[1];
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pt_transport_close(&f->server);
    pt_transport_close(&f->server); /* twice: a no-op */
    SSL_free(f->client);
    close(f->client_fd);
    SSL_CTX_free(f->server_ctx);
    SSL_CTX_free(f->client_ctx);
    assert_int_equal(ERR_peek_error(), 0);
    assert_nothing_left(NULL);
    return 0;
}

/* Runs the client's handshake and the server's first read until both are done. */
static void handshake(fixture *f)
{
    char buf[16];
    bool client_done = false;
    for (int i = 0; i < 100; i++) {
        if (!client_done) {
            int r = SSL_do_handshake(f->client);
            client_done = r == 1;
            if (r != 1)
                assert_true(SSL_get_error(f->client, r) == SSL_ERROR_WANT_READ);
        }
        ssize_t n = pt_transport_read(&f->server, buf, sizeof buf);
        assert_int_equal(n, -EAGAIN); /* no application data yet */
        assert_true(f->server.want == PT_WANT_READ || f->server.want == PT_WANT_WRITE);
        if (client_done && pt_tls_handshake_done(&f->server))
            return;
    }
    fail_msg("handshake did not finish");
}

static void test_handshake_and_data_both_ways(void **state)
{
    fixture *f = *state;
    assert_true(pt_transport_is_tls(&f->server));
    assert_false(pt_tls_handshake_done(&f->server));
    handshake(f);
    assert_int_equal(SSL_version(pt_tls_ssl(&f->server)) >= TLS1_2_VERSION, 1);

    assert_int_equal(SSL_write(f->client, "GET / HTTP/1.1\r\n\r\n", 18), 18);
    char buf[64];
    ssize_t n = pt_transport_read(&f->server, buf, sizeof buf);
    assert_int_equal(n, 18);
    assert_memory_equal(buf, "GET / HTTP/1.1\r\n\r\n", 18);
    assert_int_equal(pt_transport_read(&f->server, buf, sizeof buf), -EAGAIN);

    struct iovec iov[3] = {
        {"HTTP/1.1 200 OK\r\n", 17}, {"Content-Length: 2\r\n\r\n", 21}, {"hi", 2}};
    assert_int_equal(pt_transport_writev(&f->server, iov, 3), 40); /* one record */
    char got[64];
    int r = SSL_read(f->client, got, sizeof got);
    assert_int_equal(r, 40);
    assert_memory_equal(got, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 40);
}

static void test_pending_bytes_are_reported(void **state)
{
    fixture *f = *state;
    handshake(f);
    assert_int_equal(SSL_write(f->client, "0123456789", 10), 10);
    char buf[4];
    assert_int_equal(pt_transport_read(&f->server, buf, sizeof buf), 4);
    /* The rest of the record is decoded and waiting: no readiness event would announce it. */
    assert_int_equal(pt_transport_pending(&f->server), 6);
}

static void test_files_fall_back_without_ktls(void **state)
{
    fixture *f = *state;
    handshake(f);
    char path[] = "/tmp/porter-tls-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "file body", 9), 9);
    off_t off = 0;
    ssize_t r = pt_transport_sendfile(&f->server, fd, &off, 9);
    if (!pt_tls_ktls_available()) {
        /* Without kernel TLS the out-queue must read and write the file itself. */
        assert_int_equal(r, -ENOTSUP);
        pt_outq q;
        pt_outq_init(&q);
        pt_outq_push_file(&q, fd, 0, 9, 0);
        assert_int_equal(pt_outq_flush(&q, &f->server), 0);
        pt_outq_dispose(&q);
    } else {
        assert_true(r == 9 || r == -ENOTSUP);
    }
    char got[16];
    assert_int_equal(SSL_read(f->client, got, sizeof got), 9);
    assert_memory_equal(got, "file body", 9);
    close(fd);
}

static void test_shutdown_sends_close_notify(void **state)
{
    fixture *f = *state;
    handshake(f);
    assert_int_equal(pt_transport_shutdown_write(&f->server), 0);
    char got[8];
    int r = SSL_read(f->client, got, sizeof got);
    assert_int_equal(r, 0);
    assert_int_equal(SSL_get_error(f->client, r), SSL_ERROR_ZERO_RETURN);
}

static void test_client_close_notify_is_end_of_stream(void **state)
{
    fixture *f = *state;
    handshake(f);
    SSL_shutdown(f->client);
    char buf[8];
    assert_int_equal(pt_transport_read(&f->server, buf, sizeof buf), 0);
}

static void test_plain_http_to_tls_is_a_protocol_error(void **state)
{
    fixture *f = *state;
    const char *plain = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(f->client_fd, plain, strlen(plain)), (ssize_t)strlen(plain));
    char buf[16];
    assert_int_equal(pt_transport_read(&f->server, buf, sizeof buf), -EPROTO);
    assert_non_null(strstr(pt_tls_last_error(), "handshake"));
    assert_int_equal(ERR_peek_error(), 0); /* drained: nothing stale for the next connection */
}

static void test_peer_gone_mid_handshake(void **state)
{
    fixture *f = *state;
    int r = SSL_do_handshake(f->client); /* ClientHello sent */
    assert_int_equal(SSL_get_error(f->client, r), SSL_ERROR_WANT_READ);
    shutdown(f->client_fd, SHUT_RDWR);
    char buf[16];
    ssize_t n;
    for (int i = 0; i < 10 && (n = pt_transport_read(&f->server, buf, sizeof buf)) == -EAGAIN; i++)
        ;
    assert_true(n < 0 && n != -EAGAIN);
    assert_int_equal(ERR_peek_error(), 0);
    ERR_clear_error(); /* the client's side of the failure */
}

int main(void)
{
    /* OpenSSL writes to the socket with write(2): a vanished peer would raise SIGPIPE, which
     * porter's server ignores for the whole process (as it must for any socket server). */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_and_data_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_bytes_are_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_fall_back_without_ktls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_sends_close_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_close_notify_is_end_of_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_http_to_tls_is_a_protocol_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peer_gone_mid_handshake, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
