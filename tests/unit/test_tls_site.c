#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
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

#include "porter.h"
#include "tests/support.h"
#include "tests/support/cert.h"

/*
 * TLS sites through the public API, on one loop with an OpenSSL client: the handshake bound,
 * SNI choosing the certificate, and the session-ticket keys: the rotation interval the conf
 * asks for, tickets that survive a reload (a server made with `previous`) and stop resuming
 * after three rotations; a keep-alive connection holds no buffer once a large answer is out.
 * Every test ends with nothing left (tests/support.h).
 */

static char dir[PATH_MAX];

/* big.bin: more than the sockets between server and client hold. */
#define BIG_LEN (8 * 1024 * 1024)
static unsigned char big_byte(size_t i)
{
    return (unsigned char)(i * 7 + (i >> 9) + (i >> 17));
}
static char conf_path[PATH_MAX];

/* A certificate and key for `name`, as dir/NAME.crt and dir/NAME.key. */
static void write_pair(const char *name)
{
    char crt[PATH_MAX], key[PATH_MAX], rel[64];
    snprintf(rel, sizeof rel, "%s.crt", name);
    temp_path(crt, dir, rel);
    snprintf(rel, sizeof rel, "%s.key", name);
    temp_path(key, dir, rel);
    cert_make_files(EVP_EC_gen("P-256"), name, crt, key);
}

static void write_conf(const char *extra)
{
    FILE *f = fopen(conf_path, "w");
    fprintf(f,
            "error_log stderr crit;\n%s\n"
            "server {\n    listen 127.0.0.1:0 ssl;\n    server_name a.test;\n    root .;\n"
            "    ssl_certificate a.test.crt;\n    ssl_certificate_key a.test.key;\n}\n",
            extra);
    fclose(f);
}

static int group_setup(void **state)
{
    temp_dir_make(dir, sizeof dir, "tlssite");
    temp_path(conf_path, dir, "porter.conf");
    write_pair("a.test");
    write_pair("b.test");
    temp_put_text(dir, "index.html", "hello\n");
    char *big = malloc(BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        big[i] = (char)big_byte(i);
    temp_put_file(dir, "big.bin", big, BIG_LEN);
    free(big);
    return 0;
}

static int group_teardown(void **state)
{
    temp_dir_remove(dir);
    return 0;
}

typedef struct fixture {
    struct ev_loop *loop;
    pt_server *server;
    SSL_CTX *client_ctx;
    int port;
} fixture;

static pt_server *new_server(fixture *f, pt_server *previous)
{
    pt_server_options o;
    pt_server_options_init(&o);
    o.conf_path = conf_path;
    o.prefix = dir;
    o.previous = previous;
    pt_server *s = NULL;
    char err[512];
    int r = pt_server_new_with(&s, f->loop, &o, err, sizeof err);
    if (r < 0)
        fail_msg("pt_server_new_with: %s", err);
    assert_int_equal(pt_server_start(s), 0);
    struct sockaddr_storage ss;
    assert_int_equal(pt_server_addresses(s, &ss, 1), 1);
    f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return s;
}

static void start(fixture *f, const char *extra)
{
    memset(f, 0, sizeof *f);
    write_conf(extra);
    nothing_left_begin();
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->server = new_server(f, NULL);
    f->client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(f->client_ctx, TLS1_3_VERSION);
}

static void finish(fixture *f)
{
    pt_server_free(f->server);
    SSL_CTX_free(f->client_ctx);
    ERR_clear_error();
    assert_nothing_left(f->loop);
}

static void pump(fixture *f)
{
    ev_run(f->loop, EVRUN_NOWAIT);
    usleep(200);
}

static int tcp_connect(fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)f->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    assert_true(r == 0 || errno == EINPROGRESS);
    return fd;
}

/* A client connection with SNI `name` (NULL: none) and a session to resume (may be NULL);
 * runs the loop until the handshake ends. */
static SSL *tls_connect(fixture *f, const char *name, SSL_SESSION *session)
{
    SSL *ssl = SSL_new(f->client_ctx);
    SSL_set_fd(ssl, tcp_connect(f));
    SSL_set_connect_state(ssl);
    if (name)
        SSL_set_tlsext_host_name(ssl, name);
    if (session)
        SSL_set_session(ssl, session);
    for (int i = 0; i < 5000; i++) {
        int r = SSL_do_handshake(ssl);
        if (r == 1)
            return ssl;
        int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            char why[256] = "";
            ERR_error_string_n(ERR_get_error(), why, sizeof why);
            fail_msg("client handshake failed (%d): %s", e, why);
        }
        pump(f);
    }
    fail_msg("the handshake did not finish");
    return NULL;
}

static void close_client(SSL *ssl)
{
    int fd = SSL_get_fd(ssl);
    /* A session freed without a shutdown counts as a bad one, which OpenSSL will not resume. */
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl);
    close(fd);
}

/* Sends a request and reads the whole answer (TLS 1.3 tickets arrive with it). */
static void get(fixture *f, SSL *ssl)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
    assert_int_equal(SSL_write(ssl, req, sizeof req - 1), (int)sizeof req - 1);
    char buf[4096];
    size_t got = 0;
    for (int i = 0; i < 5000; i++) {
        int r = SSL_read(ssl, buf + got, (int)(sizeof buf - 1 - got));
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
            break;
        assert_int_equal(e, SSL_ERROR_WANT_READ);
        pump(f);
    }
    buf[got] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(buf, "\r\n\r\nhello\n"));
    ERR_clear_error();
}

static SSL_SESSION *new_session(fixture *f)
{
    SSL *ssl = tls_connect(f, "a.test", NULL);
    assert_false(SSL_session_reused(ssl));
    get(f, ssl);
    SSL_SESSION *s = SSL_get1_session(ssl);
    assert_non_null(s);
    assert_true(SSL_SESSION_is_resumable(s));
    close_client(ssl);
    return s;
}

static bool resumes(fixture *f, SSL_SESSION *session)
{
    SSL *ssl = tls_connect(f, "a.test", session);
    bool reused = SSL_session_reused(ssl);
    get(f, ssl);
    close_client(ssl);
    return reused;
}

static void test_rotation_interval_comes_from_the_conf(void **state)
{
    fixture f;
    start(&f, "");
    assert_true(pt_server_ticket_rotation(f.server) == 3600);
    finish(&f);
    start(&f, "ssl_session_ticket_rotate 90s;");
    assert_true(pt_server_ticket_rotation(f.server) == 90);
    finish(&f);
}

/* A port that was free a moment ago: two server blocks must name the same one. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_sni_chooses_the_certificate(void **state)
{
    fixture f;
    memset(&f, 0, sizeof f);
    int port = free_port();
    FILE *w = fopen(conf_path, "w");
    fprintf(w,
            "error_log stderr crit;\n"
            "server {\n    listen 127.0.0.1:%d ssl;\n    server_name a.test;\n    root .;\n"
            "    ssl_certificate a.test.crt;\n    ssl_certificate_key a.test.key;\n}\n"
            "server {\n    listen 127.0.0.1:%d;\n    server_name b.test;\n    root .;\n"
            "    ssl_certificate b.test.crt;\n    ssl_certificate_key b.test.key;\n}\n",
            port, port);
    fclose(w);
    nothing_left_begin();
    f.loop = ev_loop_new(EVFLAG_AUTO);
    f.server = new_server(&f, NULL);
    f.client_ctx = SSL_CTX_new(TLS_client_method());
    /* No SNI, or a name no server has: the address's default server. */
    const char *names[][2] = {
        {"b.test", "b.test"}, {"a.test", "a.test"}, {NULL, "a.test"}, {"other.test", "a.test"}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        SSL *ssl = tls_connect(&f, names[i][0], NULL);
        X509 *peer = SSL_get1_peer_certificate(ssl);
        char cn[64] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
        assert_string_equal(cn, names[i][1]);
        X509_free(peer);
        get(&f, ssl);
        close_client(ssl);
    }
    finish(&f);
}

static void on_retired(pt_server *s, void *data)
{
    *(bool *)data = true;
}

static void test_tickets_survive_a_reload_and_expire_after_three_rotations(void **state)
{
    fixture f;
    start(&f, "");
    SSL_SESSION *session = new_session(&f);
    assert_true(resumes(&f, session));

    /* A reload: the new server takes the socket and the keys over. */
    pt_server *next = new_server(&f, f.server);
    bool retired = false;
    pt_server_retire(f.server, on_retired, &retired);
    for (int i = 0; i < 5000 && !retired; i++)
        pump(&f);
    assert_true(retired);
    pt_server_free(f.server);
    f.server = next;
    assert_true(resumes(&f, session));

    /* Two rotations: the ticket's key is an old one, which still decrypts. */
    pt_server_rotate_ticket_keys(f.server);
    pt_server_rotate_ticket_keys(f.server);
    assert_true(resumes(&f, session));
    /* A third: the key is gone, the client gets a full handshake. */
    pt_server_rotate_ticket_keys(f.server);
    assert_false(resumes(&f, session));
    SSL_SESSION_free(session);
    finish(&f);
}

static void test_a_stalled_handshake_is_closed_and_counted_out(void **state)
{
    fixture f;
    start(&f, "ssl_handshake_timeout 200ms;\nssl_max_handshakes 1;");
    int fd = tcp_connect(&f);
    /* The stalled client holds the only handshake slot: the next one waits in the backlog
     * until the first is closed at the handshake timeout. */
    char c;
    ssize_t n = -1;
    double started = ev_time();
    for (int i = 0; i < 5000; i++) {
        pump(&f);
        n = recv(fd, &c, 1, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN))
            break;
    }
    assert_true(n <= 0 && !(n < 0 && errno == EAGAIN));
    double waited = ev_time() - started;
    assert_true(waited >= 0.15 && waited < 2);
    close(fd);
    SSL *ssl = tls_connect(&f, "a.test", NULL);
    get(&f, ssl);
    close_client(ssl);
    finish(&f);
}

/* A keep-alive connection whose answer did not fit in the socket at once (records held by the
 * TLS transport, read slowly by the client) holds no buffer chunk once it is idle again. */
static void test_idle_connection_holds_no_buffer_after_a_large_answer(void **state)
{
    fixture f;
    start(&f, "");
    SSL *ssl = tls_connect(&f, "a.test", NULL);
    static const char req[] = "GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n";
    assert_int_equal(SSL_write(ssl, req, sizeof req - 1), (int)sizeof req - 1);
    /* The client does not read: the server fills the socket and waits, holding its bytes. */
    for (int i = 0; i < 200; i++)
        pump(&f);
    pt_resource_counts rc;
    pt_resource_counts_get(&rc);
    assert_true(rc.chunks > 0);
    char head[1024], buf[16384];
    size_t hlen = 0, got = 0;
    bool in_body = false;
    for (int i = 0; i < 200000 && got < BIG_LEN; i++) {
        int r = SSL_read(ssl, buf, sizeof buf);
        if (r <= 0) {
            assert_int_equal(SSL_get_error(ssl, r), SSL_ERROR_WANT_READ);
            pump(&f);
            continue;
        }
        int at = 0;
        while (!in_body && at < r) {
            assert_true(hlen < sizeof head - 1);
            head[hlen++] = buf[at++];
            head[hlen] = '\0';
            in_body = hlen >= 4 && memcmp(head + hlen - 4, "\r\n\r\n", 4) == 0;
        }
        for (; at < r; at++, got++)
            if ((unsigned char)buf[at] != big_byte(got))
                fail_msg("byte %zu of the body differs", got);
    }
    assert_non_null(strstr(head, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(head, "Content-Length: 8388608\r\n"));
    assert_int_equal(got, BIG_LEN);
    for (int i = 0; i < 20; i++)
        pump(&f);
    /* Still open, and idle: nothing held for it. */
    int r = SSL_read(ssl, buf, sizeof buf);
    assert_true(r <= 0);
    assert_int_equal(SSL_get_error(ssl, r), SSL_ERROR_WANT_READ);
    pt_resource_counts_get(&rc);
    assert_int_equal(rc.chunks, 0);
    close_client(ssl);
    finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_interval_comes_from_the_conf),
        cmocka_unit_test(test_sni_chooses_the_certificate),
        cmocka_unit_test(test_tickets_survive_a_reload_and_expire_after_three_rotations),
        cmocka_unit_test(test_a_stalled_handshake_is_closed_and_counted_out),
        cmocka_unit_test(test_idle_connection_holds_no_buffer_after_a_large_answer),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
