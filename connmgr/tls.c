/*
 * The TLS transport (tls.h says what it offers).
 *
 * Writes. Were OpenSSL to write to the socket itself, every TLS record (16 KiB at most) would
 * cost a write(2) with its trip through TCP: eight for a 100 KiB answer. So from the first
 * write of several records after the handshake (OpenSSL buffers each flight of the handshake
 * itself), the SSL writes its records into memory: a BIO of this file's ("hold") appends them
 * to buffer chunks (buffer.h), and tls_writev encrypts up to HOLD_BUDGET bytes of records from
 * the caller's iovec, then sends them with one sendmsg. Until then a write is one record and
 * OpenSSL writes it to the socket itself, as it does under kTLS.
 *
 * The records the socket does not take stay held and go first on the next call. A record's
 * plaintext counts as written only once the whole record is out, so the caller's out-queue
 * keeps it meanwhile and offers it again (as SSL_write requires after -EAGAIN), and the
 * transport skips what it has encrypted already. A connection with held records therefore
 * has a non-empty out-queue: it is not drained, idle or closed before they are out, and nothing
 * above the transport has to ask. The held chunks belong to the transport (its SSL owns the
 * BIO) and go back to the pool as soon as they are sent: a connection with nothing to send
 * holds none. At close, a close_notify still held gets one try; anything else held is dropped
 * with the connection.
 *
 * What OpenSSL writes by itself after the handshake (alerts, a KeyUpdate, the close_notify)
 * goes into the same BIO after what is held, so the wire has it in the order OpenSSL wrote it;
 * the next write, read or shutdown_write sends it.
 *
 * kTLS: a connection whose keys the kernel took keeps the socket's BIO (OpenSSL then hands the
 * kernel plaintext): one SSL_write per record, and SSL_sendfile for files. The hold BIO, once
 * in place, stays (208 bytes); its chunks do not.
 *
 * The tunnel (tunnel.h): the handshake of a client transport driven on the loop by the
 * outbound's own io watcher, with a timer; its state hangs off the SSL (an ex_data slot), so
 * closing the transport mid-handshake abandons it, and off the connector's custodian, so the
 * connector's shutdown ends it.
 */
#include "connmgr/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/buffer.h"
#include "connmgr/limits.h"
#include "connmgr/timer.h"
#include "listener/sized.h"

/* SSL_write takes one buffer: small iovecs are gathered into a record-sized one. */
#define WRITE_GATHER (16 * 1024)
/* A piece at least this long goes into its own record(s) uncopied rather than be split to
 * fill one (after one split, every following record would be a copy). */
#define GATHER_MAX_PIECE (WRITE_GATHER / 4)
/* Records one tls_writev encrypts before it writes them: ciphertext bytes, and records. */
#define HOLD_BUDGET (128 * 1024)
#define HOLD_RECORDS 32
/* The budget, one record past it, and what OpenSSL adds by itself (alerts, KeyUpdate). Past
 * this the BIO refuses (OpenSSL then waits to write, as on a full socket). */
#define HOLD_CHUNKS (HOLD_BUDGET / PT_CHUNK_SIZE + 3)

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

/* ---- held ciphertext ---- */

/* Records written into memory and not yet sent: the data of a hold BIO, made at its first byte
 * and freed with its last chunk once everything is sent. */
typedef struct held {
    char *chunk[HOLD_CHUNKS]; /* pool chunks, oldest first */
    int nchunks;
    size_t off;     /* chunk[0] + off: the first byte not sent */
    size_t fill;    /* bytes in the last chunk */
    size_t in, out; /* bytes appended and sent */
    /* The records of tls_writev whose plaintext the caller has not been told is written:
     * rec[first..nrec), each ending at byte `end` of what was appended. */
    struct {
        size_t end, plain;
    } rec[HOLD_RECORDS];
    int first, nrec;
} held;

static int hold_type;
static BIO_METHOD *hold_method;

static void held_free(held *h)
{
    for (int i = 0; i < h->nchunks; i++)
        pt_chunk_put(h->chunk[i]);
    free(h);
}

/* OpenSSL's record (or alert) goes after what is held. */
static int hold_write(BIO *b, const char *p, size_t n, size_t *written)
{
    held *h = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *written = 0;
    if (n == 0)
        return 1;
    if (!h) {
        h = malloc(sizeof *h); /* not zeroed: most of it is the record table */
        if (!h)
            return 0; /* a failed write: the connection ends */
        h->nchunks = h->first = h->nrec = 0;
        h->off = h->fill = h->in = h->out = 0;
        BIO_set_data(b, h);
    }
    size_t done = 0;
    while (done < n) {
        if (h->nchunks == 0 || h->fill == PT_CHUNK_SIZE) {
            if (h->nchunks == HOLD_CHUNKS)
                break;
            h->chunk[h->nchunks++] = pt_chunk_get();
            h->fill = 0;
        }
        size_t k = PT_CHUNK_SIZE - h->fill;
        if (k > n - done)
            k = n - done;
        memcpy(h->chunk[h->nchunks - 1] + h->fill, p + done, k);
        h->fill += k;
        done += k;
    }
    if (done == 0) {
        BIO_set_retry_write(b); /* full: as a socket would be */
        return 0;
    }
    h->in += done;
    *written = done;
    return 1;
}

static long hold_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    held *h = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* the transport sends what is held after each call into OpenSSL */
    case BIO_CTRL_WPENDING:
        return h ? (long)(h->in - h->out) : 0;
    default:
        return 0; /* kTLS among others: not on this BIO */
    }
}

static int hold_destroy(BIO *b)
{
    held *h = BIO_get_data(b);
    if (h)
        held_free(h);
    BIO_set_data(b, NULL);
    return 1;
}

static void make_hold_method(void)
{
    int type = BIO_get_new_index();
    BIO_METHOD *m = type > 0 ? BIO_meth_new(type | BIO_TYPE_SOURCE_SINK, "porter hold") : NULL;
    if (!m || !BIO_meth_set_write_ex(m, hold_write) || !BIO_meth_set_ctrl(m, hold_ctrl) ||
        !BIO_meth_set_destroy(m, hold_destroy)) {
        BIO_meth_free(m);
        ERR_clear_error();
        return; /* the transport writes to the socket's BIO, a record at a time */
    }
    hold_type = type | BIO_TYPE_SOURCE_SINK;
    hold_method = m;
}

/* The hold BIO of `ssl` if it has one (under the buffer OpenSSL pushes on top while it writes
 * a post-handshake message). */
static BIO *hold_of(SSL *ssl)
{
    BIO *w = hold_method ? SSL_get_wbio(ssl) : NULL;
    while (w && BIO_method_type(w) != hold_type)
        w = BIO_next(w);
    return w;
}

/* The hold BIO of `ssl`, put in place of the socket's (a record of OpenSSL's still waiting
 * to be written then goes into it first). NULL under kTLS, or without memory. */
static BIO *hold_install(SSL *ssl)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_hold_method);
    BIO *w = hold_of(ssl);
    if (w || !hold_method || BIO_get_ktls_send(SSL_get_wbio(ssl)))
        return w;
    w = BIO_new(hold_method);
    if (!w) {
        ERR_clear_error();
        return NULL;
    }
    BIO_set_init(w, 1);
    SSL_set0_wbio(ssl, w); /* the socket's BIO stays the SSL's for reading */
    return w;
}

/* Sends what `b` holds with one sendmsg and adds to *acked the plaintext of the records now
 * wholly out. Returns 0 once nothing is held, -EAGAIN while something is, or -errno. */
static int hold_send(pt_transport *t, BIO *b, size_t *acked)
{
    held *h = BIO_get_data(b);
    if (!h)
        return 0;
    struct iovec iov[HOLD_CHUNKS];
    for (int i = 0; i < h->nchunks; i++) {
        size_t from = i == 0 ? h->off : 0, to = i == h->nchunks - 1 ? h->fill : PT_CHUNK_SIZE;
        iov[i] = (struct iovec){h->chunk[i] + from, to - from};
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)h->nchunks};
    ssize_t n;
    do
        n = sendmsg(t->fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    h->out += (size_t)n;
    for (; h->first < h->nrec && h->rec[h->first].end <= h->out; h->first++)
        *acked += h->rec[h->first].plain;
    if (h->out == h->in) {
        held_free(h);
        BIO_set_data(b, NULL);
        return 0;
    }
    for (size_t k = (size_t)n;;) {
        size_t left = (h->nchunks == 1 ? h->fill : PT_CHUNK_SIZE) - h->off;
        if (k < left) {
            h->off += k;
            break;
        }
        k -= left;
        pt_chunk_put(h->chunk[0]);
        memmove(h->chunk, h->chunk + 1, (size_t)(h->nchunks - 1) * sizeof h->chunk[0]);
        h->nchunks--;
        h->off = 0;
    }
    return -EAGAIN;
}

/* After a read: what OpenSSL wrote meanwhile (an alert, a KeyUpdate answer) goes now, unless
 * records of tls_writev's are held too, which their writer sends. `ret`: the read's result. */
static void hold_send_control(pt_transport *t, ssize_t ret)
{
    BIO *b = hold_of(t->impl);
    held *h = b ? BIO_get_data(b) : NULL;
    if (!h || h->first < h->nrec)
        return;
    size_t acked = 0;
    if (hold_send(t, b, &acked) == -EAGAIN && ret == -EAGAIN)
        t->want |= PT_WANT_WRITE;
}

/* ---- reads and writes ---- */

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
    ssize_t ret;
    if (r == 1) {
        t->want = 0;
        ret = (ssize_t)got;
    } else {
        ret = ssl_result(t, r, "read");
    }
    hold_send_control(t, ret);
    return ret;
}

/* Where tls_writev is in the caller's iovec. */
typedef struct cursor {
    const struct iovec *iov;
    int n, i;
    size_t off;
} cursor;

/* Moves `c` past `k` bytes, and past empty pieces. */
static void cursor_skip(cursor *c, size_t k)
{
    for (; c->i < c->n; c->i++, c->off = 0) {
        size_t left = c->iov[c->i].iov_len - c->off;
        if (k < left) {
            c->off += k;
            return;
        }
        k -= left;
    }
}

/* Whether what is left at `c` makes one record. */
static bool rest_fits(const cursor *c)
{
    size_t total = 0;
    for (int i = c->i; i < c->n && total <= WRITE_GATHER; i++)
        total += c->iov[i].iov_len - (i == c->i ? c->off : 0);
    return total <= WRITE_GATHER;
}

/* The plaintext of the next record at `c` (not at its end): what is left if it makes one
 * record, gathered into `gather`; else a large piece as it is, uncopied, or small pieces
 * gathered with what follows them, up to a record, without splitting a large piece that does
 * not fit. Returns its length and points *data at it. */
static size_t next_record(const cursor *c, char *gather, const void **data)
{
    const char *p = (const char *)c->iov[c->i].iov_base + c->off;
    size_t len = c->iov[c->i].iov_len - c->off;
    if (c->i + 1 == c->n || (len >= GATHER_MAX_PIECE && !rest_fits(c))) {
        *data = p;
        return len < WRITE_GATHER ? len : WRITE_GATHER;
    }
    memcpy(gather, p, len);
    size_t got = len;
    for (int i = c->i + 1; i < c->n && got < WRITE_GATHER; i++) {
        size_t n = c->iov[i].iov_len;
        if (n > WRITE_GATHER - got) {
            if (n >= GATHER_MAX_PIECE)
                break;
            n = WRITE_GATHER - got;
        }
        memcpy(gather + got, c->iov[i].iov_base, n);
        got += n;
    }
    *data = gather;
    return got;
}

/* One record straight to the socket's BIO (kTLS, or no hold BIO). After a WANT_WRITE the
 * out-queue offers the same bytes again, which is what SSL_write requires (the buffer may
 * move: the mode allows it). */
static ssize_t write_record(pt_transport *t, const struct iovec *iov, int iovcnt)
{
    cursor c = {iov, iovcnt, 0, 0};
    cursor_skip(&c, 0);
    if (c.i == c.n)
        return 0;
    char gather[WRITE_GATHER];
    const void *data;
    size_t len = next_record(&c, gather, &data), wrote = 0;
    ERR_clear_error();
    int r = SSL_write_ex(t->impl, data, len, &wrote);
    if (r == 1) {
        t->want = 0;
        return (ssize_t)wrote;
    }
    ssize_t e = ssl_result(t, r, "write");
    return e == 0 ? -EPIPE : e;
}

static ssize_t tls_writev(pt_transport *t, const struct iovec *iov, int iovcnt)
{
    SSL *ssl = t->impl;
    if (!SSL_is_init_finished(ssl)) {
        ssize_t r = handshake(t);
        if (r <= 0)
            return r == 0 ? -ECONNRESET : r;
    }
    /* One record needs no holding: it goes to the socket's BIO until a write of several
     * records puts the hold BIO in place (a connection that only ever answers small writes,
     * or stays idle, never pays for it). */
    BIO *b = hold_of(ssl);
    if (!b && (rest_fits(&(cursor){iov, iovcnt, 0, 0}) || !(b = hold_install(ssl))))
        return write_record(t, iov, iovcnt);
    /* What is held goes first; the iovec starts with its plaintext, offered again. */
    size_t acked = 0;
    int r = hold_send(t, b, &acked);
    if (r == 0) {
        /* Then records from what follows, into memory, and one send for them all. */
        cursor c = {iov, iovcnt, 0, 0};
        cursor_skip(&c, acked);
        char gather[WRITE_GATHER];
        ssize_t e = 0;
        bool failed = false;
        for (held *h = NULL; c.i < c.n;) {
            if (h && (h->in - h->out >= HOLD_BUDGET || h->nrec == HOLD_RECORDS))
                break;
            const void *data;
            size_t len = next_record(&c, gather, &data), wrote = 0;
            ERR_clear_error();
            int w = SSL_write_ex(ssl, data, len, &wrote);
            if (w != 1) {
                e = ssl_result(t, w, "write");
                failed = true;
                break;
            }
            h = BIO_get_data(b);
            h->rec[h->nrec].end = h->in;
            h->rec[h->nrec++].plain = wrote;
            cursor_skip(&c, wrote);
        }
        r = hold_send(t, b, &acked);
        /* Nothing encrypted, nothing counted: the first SSL_write failed (its `want` set). */
        if (r == 0 && acked == 0)
            return !failed ? 0 : e == 0 ? -EPIPE : e;
    }
    if (r < 0 && r != -EAGAIN)
        return r;
    if (acked > 0) {
        t->want = 0;
        return (ssize_t)acked;
    }
    t->want = PT_WANT_WRITE;
    return -EAGAIN;
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
    /* close_notify after what is held, then FIN (best effort: what a full socket buffer does
     * not take is lost, and the peer sees an end without close_notify). */
    if (SSL_is_init_finished(ssl)) {
        ERR_clear_error();
        SSL_shutdown(ssl);
        ERR_clear_error();
    }
    BIO *b = hold_of(ssl);
    size_t acked = 0;
    if (b)
        hold_send(t, b, &acked);
    return shutdown(t->fd, SHUT_WR) < 0 ? -errno : 0;
}

static void tunnel_abandon(SSL *ssl);

static void tls_close(pt_transport *t)
{
    if (t->impl) {
        tunnel_abandon(t->impl);
        /* A close_notify queued since shutdown_write (or without it) gets one try; other held
         * records are dropped with the connection. */
        BIO *b = hold_of(t->impl);
        size_t acked = 0;
        if (b && t->fd >= 0 && (SSL_get_shutdown(t->impl) & SSL_SENT_SHUTDOWN))
            hold_send(t, b, &acked);
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

int pt_tls_wrap_client(pt_transport *t, SSL_CTX *ctx, int fd, const char *server_name, bool verify)
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

size_t pt_tls_unsent(const pt_transport *t)
{
    BIO *b = t->ops == &tls_ops && t->impl ? hold_of(t->impl) : NULL;
    held *h = b ? BIO_get_data(b) : NULL;
    return h ? h->in - h->out : 0;
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

/* ---- the tunnel (tunnel.h) ---- */

struct pt_tls_client {
    SSL_CTX *ctx;
};

int pt_tls_client_new(pt_tls_client **out, const char *ca_file, char *err, size_t errlen)
{
    *out = NULL;
    if (ca_file && access(ca_file, R_OK) < 0) {
        int e = errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", ca_file, strerror(e));
        return -e;
    }
    pt_tls_client *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    c->ctx = pt_tls_client_ctx_new(ca_file, err, errlen);
    if (!c->ctx) {
        free(c);
        return -EINVAL;
    }
    *out = c;
    return 0;
}

void pt_tls_client_free(pt_tls_client *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    free(c);
}

void pt_tls_connect_options_init_sized(pt_tls_connect_options *o, size_t size)
{
    pt_tls_connect_options d = {.size = sizeof d, .verify = true, .sni = true, .timeout = 10};
    pt_sized_init(o, size, &d, sizeof d);
}

int pt_tls_alpn(const pt_transport *t, char *out, size_t cap)
{
    SSL *ssl = pt_tls_ssl(t);
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (ssl)
        SSL_get0_alpn_selected(ssl, &p, &n);
    if (!p || n == 0)
        return -ENOENT;
    if (cap <= n)
        return -ENOSPC;
    memcpy(out, p, n);
    out[n] = '\0';
    return (int)n;
}

/* A handshake in progress. */
typedef struct tunnel {
    pt_outbound *o;
    struct ev_loop *loop;
    pt_timer timer;
    pt_custodian_entry *entry; /* in the connector's custodian */
    pt_tls_connect_cb cb;
    void *data;
    void (*io_cb)(struct ev_loop *loop, ev_io *w, int revents); /* the holder's, given back */
    void *io_data;
} tunnel;

/* The SSL's ex_data slot holding its tunnel while the handshake runs. */
static int tunnel_slot = -1;
static pthread_once_t tunnel_slot_once = PTHREAD_ONCE_INIT;

static void make_tunnel_slot(void)
{
    tunnel_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The wire form of a comma-separated ALPN list into `out` (its length), or -EINVAL. */
static int alpn_wire(const char *list, unsigned char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len > 255 || n + 1 + len > cap)
            return -EINVAL;
        out[n++] = (unsigned char)len;
        memcpy(out + n, p, len);
        n += len;
        if (!end)
            return (int)n;
        p = end + 1;
    }
}

/* Stops what the handshake watched and forgets the tunnel (the callback is the caller's to
 * run). */
static void tunnel_forget(tunnel *t, bool watched)
{
    pt_outbound *o = t->o;
    if (watched)
        pt_outbound_watch(o, t->loop, 0);
    ev_set_cb(&o->io, t->io_cb);
    o->io.data = t->io_data;
    pt_timer_dispose(&t->timer);
    pt_custodian_unregister(t->entry);
    SSL *ssl = pt_tls_ssl(&o->transport);
    if (ssl)
        SSL_set_ex_data(ssl, tunnel_slot, NULL);
    free(t);
}

static void tunnel_end(tunnel *t, int status)
{
    pt_outbound *o = t->o;
    pt_tls_connect_cb cb = t->cb;
    void *data = t->data;
    tunnel_forget(t, true);
    cb(o, status, data);
}

static void tunnel_step(tunnel *t)
{
    pt_transport *tr = &t->o->transport;
    ssize_t r = handshake(tr);
    if (r == 1) {
        tunnel_end(t, 0);
        return;
    }
    if (r == -EAGAIN) {
        pt_outbound_watch(t->o, t->loop, tr->want & PT_WANT_WRITE ? EV_WRITE : EV_READ);
        return;
    }
    tunnel_end(t, r == 0 ? -ECONNRESET : (int)r);
}

static void on_tunnel_io(struct ev_loop *loop, ev_io *w, int revents)
{
    tunnel_step(w->data);
}

static void on_tunnel_timeout(pt_timer *timer, void *data)
{
    snprintf(last_error, sizeof last_error, "handshake: timed out");
    tunnel_end(data, -ETIMEDOUT);
}

/* The connector shuts down: the handshake ends with it. */
static void tunnel_release(void *data)
{
    tunnel *t = data;
    t->entry = NULL;
    tunnel_end(t, -ECANCELED);
}

/* The transport closes mid-handshake (its holder closed the outbound): no callback. The
 * outbound's watcher was stopped by whoever closes it. */
static void tunnel_abandon(SSL *ssl)
{
    tunnel *t = tunnel_slot >= 0 ? SSL_get_ex_data(ssl, tunnel_slot) : NULL;
    if (t)
        tunnel_forget(t, false);
}

int pt_tls_connect(pt_outbound *o, pt_tls_client *client, const pt_tls_connect_options *opts,
                   pt_tls_connect_cb cb, void *data)
{
    pt_tls_connect_options op;
    pt_tls_connect_options_init(&op);
    if (!o || !client || !cb || (opts && pt_sized_copy(&op, sizeof op, opts) < 0) ||
        !pt_transport_is_tcp(&o->transport) || o->transport.fd < 0 || o->transport.wfd >= 0)
        return -EINVAL;
    if (!o->entry)
        return -ECANCELED; /* its connector is shut down */
    const char *name = op.server_name;
    if (!name && o->authority.kind != PT_AUTHORITY_UNIX)
        name = o->authority.host;
    if (op.verify && (!name || !name[0]))
        return -EINVAL;
    unsigned char alpn[512];
    int alpn_len = 0;
    if (op.alpn && (alpn_len = alpn_wire(op.alpn, alpn, sizeof alpn)) < 0)
        return alpn_len;
    pthread_once(&tunnel_slot_once, make_tunnel_slot);
    if (tunnel_slot < 0)
        return -ENOMEM;

    tunnel *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->entry = pt_custodian_register(pt_connector_custodian(o->connector), tunnel_release, t);
    if (!t->entry) {
        free(t);
        return -ECANCELED;
    }
    pt_transport tls = o->transport;
    int r = pt_tls_wrap_client(&tls, client->ctx, o->transport.fd, op.sni ? name : NULL, false);
    SSL *ssl = r == 0 ? tls.impl : NULL;
    if (r == 0 && op.verify) {
        /* The name verified, whether or not it was sent. */
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        if (!(is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                                  : SSL_set1_host(ssl, name)))
            r = -ENOMEM;
    }
    if (r == 0 && alpn_len > 0 && SSL_set_alpn_protos(ssl, alpn, (unsigned)alpn_len) != 0)
        r = -ENOMEM;
    if (r == 0 && !SSL_set_ex_data(ssl, tunnel_slot, t))
        r = -ENOMEM;
    if (r < 0) {
        SSL_free(ssl); /* the socket stays the TCP transport's */
        ERR_clear_error();
        pt_custodian_unregister(t->entry);
        free(t);
        return r;
    }
    o->transport = tls;
    t->o = o;
    t->loop = pt_connector_loop(o->connector);
    t->cb = cb;
    t->data = data;
    t->io_cb = o->io.cb;
    t->io_data = o->io.data;
    ev_set_cb(&o->io, on_tunnel_io);
    o->io.data = t;
    pt_timer_init(&t->timer, t->loop, on_tunnel_timeout, t);
    if (!pt_timeout_is_none(op.timeout))
        pt_timer_start(&t->timer, op.timeout);
    /* The first step from the loop: the socket is connected, so writable at once. */
    pt_outbound_watch(o, t->loop, EV_WRITE);
    return 0;
}
