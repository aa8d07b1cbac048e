#include "connmgr/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* SSL_write takes one buffer: iovecs are gathered into a record-sized one. */
#define WRITE_GATHER (16 * 1024)

static _Thread_local char last_error[256];

const char *pt_tls_last_error(void)
{
    return last_error;
}

/* Keeps the first reason of a failure and empties OpenSSL's error queue, so nothing stale is
 * reported against the next connection. */
static void take_errors(const char *what)
{
    unsigned long e = ERR_get_error();
    if (e) {
        char reason[200];
        ERR_error_string_n(e, reason, sizeof reason);
        snprintf(last_error, sizeof last_error, "%s: %s", what, reason);
    } else {
        snprintf(last_error, sizeof last_error, "%s", what);
    }
    ERR_clear_error();
}

/* Turns an SSL result into porter's convention and sets `want`. */
static ssize_t ssl_result(pt_transport *t, int ret, const char *what)
{
    SSL *ssl = t->impl;
    int err = SSL_get_error(ssl, ret);
    int saved = errno;
    switch (err) {
    case SSL_ERROR_WANT_READ:
        t->want = PT_WANT_READ;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->want = PT_WANT_WRITE;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify: an orderly end of stream */
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (saved == EAGAIN || saved == EINTR) {
            t->want = PT_WANT_READ;
            return -EAGAIN;
        }
        return saved ? -saved : -ECONNRESET; /* EOF without close_notify */
    default:
        take_errors(what);
        return -EPROTO;
    }
}

static ssize_t handshake(pt_transport *t)
{
    SSL *ssl = t->impl;
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        t->want = 0;
        return 1;
    }
    ssize_t e = ssl_result(t, r, "handshake");
    long v = SSL_get_verify_result(ssl);
    if (e == -EPROTO && !SSL_is_server(ssl) && v != X509_V_OK)
        snprintf(last_error, sizeof last_error, "handshake: certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    return e;
}

static ssize_t tls_read(pt_transport *t, void *buf, size_t len)
{
    SSL *ssl = t->impl;
    if (!SSL_is_init_finished(ssl)) {
        ssize_t r = handshake(t);
        if (r <= 0)
            return r == 0 ? -ECONNRESET : r;
    }
    size_t got = 0;
    ERR_clear_error();
    int r = SSL_read_ex(ssl, buf, len, &got);
    if (r == 1) {
        t->want = 0;
        return (ssize_t)got;
    }
    return ssl_result(t, r, "read");
}

static ssize_t tls_writev(pt_transport *t, const struct iovec *iov, int iovcnt)
{
    SSL *ssl = t->impl;
    if (!SSL_is_init_finished(ssl)) {
        ssize_t r = handshake(t);
        if (r <= 0)
            return r == 0 ? -ECONNRESET : r;
    }
    /* One buffer of up to a record. After a WANT_WRITE the out-queue offers the same bytes
     * again, which is what SSL_write requires (the buffer may move: the mode allows it). */
    const void *data = iov[0].iov_base;
    size_t len = iov[0].iov_len;
    char gather[WRITE_GATHER];
    if (iovcnt > 1 && len < WRITE_GATHER) {
        len = 0;
        for (int i = 0; i < iovcnt && len < WRITE_GATHER; i++) {
            size_t n = iov[i].iov_len;
            if (n > WRITE_GATHER - len)
                n = WRITE_GATHER - len;
            memcpy(gather + len, iov[i].iov_base, n);
            len += n;
        }
        data = gather;
    }
    size_t wrote = 0;
    ERR_clear_error();
    int r = SSL_write_ex(ssl, data, len, &wrote);
    if (r == 1) {
        t->want = 0;
        return (ssize_t)wrote;
    }
    ssize_t e = ssl_result(t, r, "write");
    return e == 0 ? -EPIPE : e;
}

static ssize_t tls_sendfile(pt_transport *t, int fd, off_t *offset, size_t len)
{
    SSL *ssl = t->impl;
    if (!SSL_is_init_finished(ssl) || !BIO_get_ktls_send(SSL_get_wbio(ssl)))
        return -ENOTSUP;
    ERR_clear_error();
    ossl_ssize_t n = SSL_sendfile(ssl, fd, *offset, len, 0);
    if (n > 0) {
        *offset += n;
        t->want = 0;
        return n;
    }
    ssize_t e = ssl_result(t, (int)n, "sendfile");
    return e == 0 ? -EPIPE : e;
}

static int tls_shutdown_write(pt_transport *t)
{
    SSL *ssl = t->impl;
    /* close_notify first (best effort: a full socket buffer just loses it), then FIN. */
    if (SSL_is_init_finished(ssl)) {
        ERR_clear_error();
        SSL_shutdown(ssl);
        ERR_clear_error();
    }
    return shutdown(t->fd, SHUT_WR) < 0 ? -errno : 0;
}

static void tls_close(pt_transport *t)
{
    if (t->impl) {
        SSL_free(t->impl);
        t->impl = NULL;
    }
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    ERR_clear_error();
}

static size_t tls_pending(const pt_transport *t)
{
    if (!t->impl)
        return 0;
    /* Decrypted bytes; else records read ahead and not yet decrypted count as one (no readiness
     * event comes for them either). */
    int n = SSL_pending(t->impl);
    return n > 0 ? (size_t)n : SSL_has_pending(t->impl) ? 1 : 0;
}

static const pt_transport_ops tls_ops = {
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = tls_sendfile,
    .shutdown_write = tls_shutdown_write,
    .close = tls_close,
    .pending = tls_pending,
};

int pt_tls_accept(pt_transport *t, SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        take_errors("SSL_new");
        return -ENOMEM;
    }
    SSL_set_accept_state(ssl);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    /* One read() takes what has come (several records), not a record's header, then its body. */
    SSL_set_read_ahead(ssl, 1);
    t->ops = &tls_ops;
    t->fd = fd;
    t->want = 0;
    t->impl = ssl;
    t->wfd = -1;
    return 0;
}

/* An IPv4 or IPv6 literal: verified as an address, and never sent as SNI (RFC 6066). */
static bool is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int pt_tls_connect(pt_transport *t, SSL_CTX *ctx, int fd, const char *server_name, bool verify)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd))
        goto fail;
    SSL_set_connect_state(ssl);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    if (server_name && server_name[0]) {
        bool ip = is_ip_literal(server_name);
        if (!ip && !SSL_set_tlsext_host_name(ssl, server_name))
            goto fail;
        if (verify && !(ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name)
                           : SSL_set1_host(ssl, server_name)))
            goto fail;
    }
    SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    t->ops = &tls_ops;
    t->fd = fd;
    t->want = 0;
    t->impl = ssl;
    t->wfd = -1;
    return 0;
fail:
    SSL_free(ssl);
    take_errors("SSL_new");
    return -ENOMEM;
}

SSL_CTX *pt_tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                : SSL_CTX_set_default_verify_paths(ctx) != 1)
        goto fail;
    ERR_clear_error();
    return ctx;
fail:
    take_errors(ca_file ? ca_file : "the system's trust store");
    if (err && errlen)
        snprintf(err, errlen, "%s", last_error);
    SSL_CTX_free(ctx);
    return NULL;
}

bool pt_tls_handshake_done(const pt_transport *t)
{
    return t->ops == &tls_ops && t->impl && SSL_is_init_finished(t->impl);
}

SSL *pt_tls_ssl(const pt_transport *t)
{
    return t->ops == &tls_ops ? t->impl : NULL;
}

bool pt_transport_is_tls(const pt_transport *t)
{
    return t->ops == &tls_ops;
}

bool pt_tls_ktls_available(void)
{
    static int probed = -1;
    if (probed >= 0)
        return probed;
    probed = 0;
#ifdef TCP_ULP
    /* The kernel side: can a TCP socket take the "tls" upper-layer protocol? */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, a = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof sa;
    if (l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(l, 1) == 0 &&
        getsockname(l, (struct sockaddr *)&sa, &n) == 0 &&
        (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
        connect(c, (struct sockaddr *)&sa, sizeof sa) == 0 && (a = accept(l, NULL, NULL)) >= 0)
        probed = setsockopt(a, SOL_TCP, TCP_ULP, "tls", sizeof "tls") == 0;
    if (a >= 0)
        close(a);
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
#endif
    return probed;
}
