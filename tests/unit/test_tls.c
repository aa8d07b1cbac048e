#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
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
 * Records one writev makes go out together; those the socket does not take are held and go
 * first, whole and in order, also before a close_notify or a KeyUpdate (and a record OpenSSL
 * still had to write goes before them); a peer gone meanwhile leaves nothing behind, and a
 * transport with nothing to send holds no buffer.
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

/* ---- records held by the transport ---- */

/* The byte at `i` of a test body: no run of it repeats at a record's distance, so a lost,
 * doubled or reordered record shows. */
static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + (i >> 9) + (i >> 17));
}

static char *pattern_body(size_t len)
{
    char *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)pattern(i);
    return p;
}

/* Queues `body` as an out-queue would hold a response: small copies between large pieces
 * (a head, frame headers), references to the rest. */
static void queue_body(pt_outq *q, const char *body, size_t len)
{
    size_t at = 0;
    for (int k = 0; at < len; k++) {
        size_t n = k % 3 == 0 ? 9 : k % 3 == 1 ? 20000 : 700;
        if (n > len - at)
            n = len - at;
        if (n < 1024)
            pt_outq_push_copy(q, body + at, n);
        else
            pt_outq_push_ref(q, body + at, n, NULL, NULL);
        at += n;
    }
}

static void set_sndbuf(int fd, int bytes)
{
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
}

/* Reads what the client can without waiting, checking it against the pattern from `*got`;
 * at most `max` bytes. Returns SSL_get_error's answer for the read that stopped. */
static int client_read(fixture *f, size_t *got, size_t max)
{
    char buf[4096];
    for (size_t n = 0; n < max;) {
        size_t want = max - n < sizeof buf ? max - n : sizeof buf;
        int r = SSL_read(f->client, buf, (int)want);
        if (r <= 0)
            return SSL_get_error(f->client, r);
        for (int i = 0; i < r; i++)
            if ((unsigned char)buf[i] != pattern(*got + (size_t)i))
                fail_msg("byte %zu of the body differs", *got + (size_t)i);
        *got += (size_t)r;
        n += (size_t)r;
    }
    return SSL_ERROR_NONE;
}

static void test_one_writev_sends_several_records(void **state)
{
    fixture *f = *state;
    handshake(f);
    char *body = pattern_body(4 * 16384);
    struct iovec iov[4];
    for (int i = 0; i < 4; i++)
        iov[i] = (struct iovec){body + i * 16384, 16384};
    /* Four records from one call (SSL_write alone would make one). */
    assert_int_equal(pt_transport_writev(&f->server, iov, 4), 4 * 16384);
    /* All out: nothing held, and no buffer kept for the next response. */
    assert_int_equal(pt_tls_unsent(&f->server), 0);
    assert_int_equal(pt_chunk_outstanding(), 0);
    size_t got = 0;
    assert_int_equal(client_read(f, &got, 4 * 16384), SSL_ERROR_NONE);
    assert_int_equal(got, 4 * 16384);
    free(body);
}

static void test_slow_reader_gets_every_byte_in_order(void **state)
{
    fixture *f = *state;
    handshake(f);
    set_sndbuf(f->server.fd, 16384);
    enum { LEN = 3 * 1024 * 1024 + 5 };
    char *body = pattern_body(LEN);
    pt_outq q;
    pt_outq_init(&q);
    queue_body(&q, body, LEN);
    size_t got = 0;
    int held = 0;
    for (int i = 0; i < 100000; i++) {
        int r = pt_outq_flush(&q, &f->server);
        if (r == 0)
            break;
        assert_int_equal(r, -EAGAIN);
        assert_int_equal(f->server.want, PT_WANT_WRITE);
        /* Records the socket did not take are held, and their bytes still queued. */
        if (pt_tls_unsent(&f->server) > 0) {
            held++;
            assert_false(pt_outq_is_empty(&q));
        }
        assert_true(got <= q.written); /* nothing arrives before it counts as written */
        int e = client_read(f, &got, 5000);
        assert_true(e == SSL_ERROR_NONE || e == SSL_ERROR_WANT_READ);
    }
    assert_true(pt_outq_is_empty(&q));
    assert_int_equal(q.written, LEN);
    assert_true(held > 10); /* the partial writes this test is about did happen */
    assert_int_equal(pt_tls_unsent(&f->server), 0);
    assert_int_equal(client_read(f, &got, LEN - got), SSL_ERROR_NONE);
    assert_int_equal(got, LEN);
    assert_int_equal(client_read(f, &got, 1), SSL_ERROR_WANT_READ); /* nothing more */
    pt_outq_dispose(&q);
    /* Idle: the transport holds no chunk. */
    assert_int_equal(pt_chunk_outstanding(), 0);
    free(body);
}

/* Writes until the socket is full and records are held. */
static void fill(fixture *f, pt_outq *q, const char *body, size_t len)
{
    queue_body(q, body, len);
    int r = pt_outq_flush(q, &f->server);
    assert_int_equal(r, -EAGAIN);
    assert_true(pt_tls_unsent(&f->server) > 0);
}

static void test_peer_gone_while_records_are_held(void **state)
{
    fixture *f = *state;
    handshake(f);
    enum { LEN = 4 * 1024 * 1024 };
    char *body = pattern_body(LEN);
    pt_outq q;
    pt_outq_init(&q);
    fill(f, &q, body, LEN);
    assert_true(pt_chunk_outstanding() > 0);
    shutdown(f->client_fd, SHUT_RDWR);
    int r = pt_outq_flush(&q, &f->server);
    assert_true(r == -EPIPE || r == -ECONNRESET);
    pt_outq_dispose(&q);
    /* The held records go with the transport (teardown checks no chunk is left, ASan that
     * nothing leaked). */
    pt_transport_close(&f->server);
    assert_int_equal(pt_chunk_outstanding(), 0);
    free(body);
}

static void test_close_notify_follows_held_records(void **state)
{
    fixture *f = *state;
    handshake(f);
    /* Room for everything held once the client has read what the socket has. */
    set_sndbuf(f->server.fd, 1024 * 1024);
    enum { LEN = 8 * 1024 * 1024 };
    char *body = pattern_body(LEN);
    pt_outq q;
    pt_outq_init(&q);
    fill(f, &q, body, LEN);
    size_t got = 0;
    assert_int_equal(client_read(f, &got, LEN), SSL_ERROR_WANT_READ);
    /* Every record wholly sent was read, and nothing else could be. */
    assert_int_equal(got, q.written);
    /* Shut without flushing the queue: the held records go, then the close_notify. */
    assert_int_equal(pt_transport_shutdown_write(&f->server), 0);
    int e = client_read(f, &got, LEN);
    assert_int_equal(e, SSL_ERROR_ZERO_RETURN);
    assert_true(got > q.written);
    pt_outq_dispose(&q);
    free(body);
}

static void test_key_update_goes_after_held_records(void **state)
{
    fixture *f = *state;
    handshake(f);
    if (SSL_version(f->client) < TLS1_3_VERSION)
        skip();
    enum { LEN = 4 * 1024 * 1024 };
    char *body = pattern_body(LEN);
    pt_outq q;
    pt_outq_init(&q);
    fill(f, &q, body, LEN);
    /* The client asks for a key update: the server's own KeyUpdate, and the records after it
     * with the new key, must follow the records made with the old key that are still held. */
    assert_int_equal(SSL_key_update(f->client, SSL_KEY_UPDATE_REQUESTED), 1);
    assert_int_equal(SSL_write(f->client, "ping", 4), 4);
    char buf[8];
    assert_int_equal(pt_transport_read(&f->server, buf, sizeof buf), 4);
    size_t got = 0;
    for (int i = 0; i < 100000 && !pt_outq_is_empty(&q); i++) {
        int r = pt_outq_flush(&q, &f->server);
        assert_true(r == 0 || r == -EAGAIN);
        int e = client_read(f, &got, 65536);
        assert_true(e == SSL_ERROR_NONE || e == SSL_ERROR_WANT_READ);
    }
    assert_true(pt_outq_is_empty(&q));
    assert_int_equal(client_read(f, &got, LEN - got), SSL_ERROR_NONE);
    assert_int_equal(got, LEN);
    /* Both sides use the new keys from here on. */
    assert_int_equal(SSL_write(f->client, "pong", 4), 4);
    assert_int_equal(pt_transport_read(&f->server, buf, sizeof buf), 4);
    struct iovec iov = {"done", 4};
    assert_int_equal(pt_transport_writev(&f->server, &iov, 1), 4);
    assert_int_equal(SSL_read(f->client, buf, sizeof buf), 4);
    assert_memory_equal(buf, "done", 4);
    pt_outq_dispose(&q);
    free(body);
}

static void test_a_record_waiting_in_openssl_goes_first_into_the_hold(void **state)
{
    fixture *f = *state;
    handshake(f);
    set_sndbuf(f->server.fd, 16384);
    enum { LEN = 1024 * 1024 };
    char *body = pattern_body(LEN);
    /* Writes of one record each go to the socket through OpenSSL, until one has to wait. */
    size_t at = 0;
    ssize_t n;
    while ((n = pt_transport_writev(&f->server, &(struct iovec){body + at, 10000}, 1)) > 0)
        at += (size_t)n;
    assert_int_equal(n, -EAGAIN);
    assert_int_equal(pt_tls_unsent(&f->server), 0); /* nothing held: OpenSSL keeps it */
    /* The same bytes again, with more: a write of many records, held from here on. */
    size_t got = 0;
    for (int i = 0; i < 100000 && at < LEN; i++) {
        n = pt_transport_writev(&f->server, &(struct iovec){body + at, LEN - at}, 1);
        if (n > 0)
            at += (size_t)n;
        else
            assert_int_equal(n, -EAGAIN);
        int e = client_read(f, &got, 20000);
        assert_true(e == SSL_ERROR_NONE || e == SSL_ERROR_WANT_READ);
    }
    assert_int_equal(at, LEN);
    assert_int_equal(client_read(f, &got, LEN - got), SSL_ERROR_NONE);
    assert_int_equal(got, LEN);
    free(body);
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
        cmocka_unit_test_setup_teardown(test_one_writev_sends_several_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_reader_gets_every_byte_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_gone_while_records_are_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_notify_follows_held_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_update_goes_after_held_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_record_waiting_in_openssl_goes_first_into_the_hold,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
