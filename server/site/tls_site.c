/*
 * TLS sites: a listening address that speaks TLS (see site.h).
 *
 * Each accepted connection gets a TLS transport over its socket before the HTTP dispatcher
 * sees it (the connection manager's wrap_transport), so timers, limits, custodians, keep-alive,
 * pipelining and static files work over TLS unchanged. What TLS adds lives here, in a small
 * record per connection (tls_conn, in the connection's custodian):
 *
 *   - SNI: the servername callback switches the connection to the SSL_CTX (certificates) of
 *     the vhost the client names; the request's Host still picks the vhost of each request;
 *   - ALPN: h2 when the vhost SNI chose says `http2 on` (its SSL_CTX's choice) or the address
 *     says `listen ... http2` (the connection's), else http/1.1, as nginx decides;
 *   - the handshake phase: the connection's timer runs ssl_handshake_timeout until OpenSSL
 *     reports the handshake done, then request_read_timeout as on a new TCP connection;
 *   - ssl_max_handshakes: handshakes in progress are counted per site; at the bound the site
 *     stops accepting (clients wait in the backlog) until one finishes or fails;
 *   - one log line per failed connection (info level, with the client's address and OpenSSL's
 *     reason), and a renegotiation attempt closes the connection at once.
 *
 * OpenSSL's callbacks run inside SSL_read and SSL_write, so nothing here frees the connection
 * from one: a close is deferred to a zero timer.
 */
#include <errno.h>
#include <math.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connmgr/tls.h"
#include "server/http1/conn.h"
#include "server/site/site.h"
#include "server/site/tls_ctx.h"

struct pt_tls_keyring {
    pt_tls_ticket_keys *keys;
    unsigned refs;
};

/* What TLS adds to a connection. */
typedef struct tls_conn {
    pt_site *site;
    pt_conn *conn;
    const pt_vhost *vhost; /* the one SNI chose (the site's default until then): its log */
    ev_timer close_soon;   /* a renegotiation attempt: close once OpenSSL has returned */
    double started;
    unsigned long error; /* OpenSSL's reason for a failure (its error queue's last entry) */
    int alert;           /* the fatal alert sent or received */
    bool handshaking;    /* counted in site->handshakes */
    bool done;           /* the handshake completed */
    bool alert_sent, alert_received;
    bool logged;
} tls_conn;

/* ---- ticket keys ---- */

pt_tls_keyring *pt_tls_keyring_new(void)
{
    pt_tls_keyring *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->keys = pt_tls_ticket_keys_new();
    if (!k->keys) {
        free(k);
        return NULL;
    }
    k->refs = 1;
    return k;
}

pt_tls_keyring *pt_tls_keyring_ref(pt_tls_keyring *k)
{
    if (k)
        k->refs++;
    return k;
}

void pt_tls_keyring_unref(pt_tls_keyring *k)
{
    if (!k || --k->refs)
        return;
    pt_tls_ticket_keys_free(k->keys);
    free(k);
}

void pt_tls_keyring_rotate(pt_tls_keyring *k)
{
    if (k)
        pt_tls_ticket_keys_rotate(k->keys);
}

/* ---- logging ---- */

static void conn_log(tls_conn *tc, pt_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_log(tls_conn *tc, pt_log_level level, const char *fmt, ...)
{
    const pt_vhost *vh = tc->vhost;
    if (tc->logged || (!vh->error_log && !pt_log_enabled(level)))
        return;
    tc->logged = true;
    char msg[512], addr[PT_SOCKADDR_STRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (pt_sockaddr_format(&tc->conn->peer.sa, addr, sizeof addr) < 0)
        strcpy(addr, "-");
    pt_log_error_to(vh->error_log, vh->error_level, level, "%s, client: %s", msg, addr);
}

/* An end of stream without close_notify, which OpenSSL reports as an error. */
static bool unexpected_eof(unsigned long e)
{
    return e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
           ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* Why a connection ended before its handshake did, in one line. */
static void log_failed_handshake(tls_conn *tc)
{
    pt_site *site = tc->site;
    if (site->closing || pt_connmgr_is_draining(site->mgr))
        return; /* closed by a stop, not by the client */
    if (unexpected_eof(tc->error)) {
        conn_log(tc, PT_LOG_INFO, "the client closed the connection in the TLS handshake");
    } else if (tc->error || tc->alert_sent) {
        char reason[256] = "protocol error";
        if (tc->error)
            ERR_error_string_n(tc->error, reason, sizeof reason);
        if (tc->alert_sent)
            conn_log(tc, PT_LOG_INFO, "TLS handshake failed: %s (alert \"%s\" sent)", reason,
                     SSL_alert_desc_string_long(tc->alert));
        else
            conn_log(tc, PT_LOG_INFO, "TLS handshake failed: %s", reason);
    } else if (tc->alert_received) {
        conn_log(tc, PT_LOG_INFO, "TLS handshake failed: the client sent alert \"%s\"",
                 SSL_alert_desc_string_long(tc->alert));
    } else if (!pt_timeout_is_none(site->handshake_timeout) &&
               ev_now(site->loop) - tc->started >= site->handshake_timeout - 0.001) {
        conn_log(tc, PT_LOG_INFO, "TLS handshake timed out after %gs", site->handshake_timeout);
    } else {
        conn_log(tc, PT_LOG_INFO, "the client closed the connection in the TLS handshake");
    }
}

/* ---- handshakes in progress ---- */

static void handshake_ended(tls_conn *tc)
{
    if (!tc->handshaking)
        return;
    tc->handshaking = false;
    pt_site *site = tc->site;
    site->handshakes--;
    /* Resume with some room, so a site at its bound does not flap on every handshake. */
    if (site->handshakes_full &&
        site->handshakes < site->max_handshakes - site->max_handshakes / 8) {
        site->handshakes_full = false;
        pt_site_update_accepting(site);
    }
}

/* ---- OpenSSL callbacks ---- */

static void on_close_soon(struct ev_loop *loop, ev_timer *w, int revents)
{
    tls_conn *tc = w->data;
    pt_conn_kill(tc->conn);
}

static void on_info(const SSL *ssl, int where, int ret)
{
    tls_conn *tc = SSL_get_app_data(ssl);
    if (!tc)
        return;
    if (where & SSL_CB_HANDSHAKE_DONE) {
        if (tc->done)
            return; /* TLS 1.3 reports it again after each ticket */
        tc->done = true;
        tc->site->tls_handshakes++;
        if (SSL_session_reused(ssl))
            tc->site->tls_resumed++;
        handshake_ended(tc);
        pt_conn_reset_timeout(tc->conn, tc->conn->limits->request_read_timeout);
        return;
    }
    bool reneg =
        ((where & SSL_CB_HANDSHAKE_START) && tc->done && SSL_version(ssl) < TLS1_3_VERSION) ||
        ((where & SSL_CB_WRITE_ALERT) && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION);
    if (reneg) {
        /* OpenSSL refuses it already (SSL_OP_NO_RENEGOTIATION); a client that tries is not
         * one to keep talking to. */
        conn_log(tc, PT_LOG_INFO, "the client attempted a TLS renegotiation; closing");
        if (!ev_is_active(&tc->close_soon))
            ev_timer_start(tc->site->loop, &tc->close_soon);
        return;
    }
    /* A failure leaves its reason on OpenSSL's error queue when the handshake function
     * returns (the queue is emptied before each call, and emptied again after it). */
    if ((where & SSL_CB_EXIT) && ret <= 0 && !tc->error)
        tc->error = ERR_peek_last_error();
    if ((where & SSL_CB_ALERT) && (ret >> 8) == SSL3_AL_FATAL && !tc->alert_sent &&
        !tc->alert_received) {
        tc->alert = ret & 0xff;
        if (where & SSL_CB_WRITE) {
            tc->alert_sent = true;
            /* OpenSSL queues its reason before it sends the alert. */
            if (!tc->error)
                tc->error = ERR_peek_last_error();
        } else {
            tc->alert_received = true;
        }
    }
}

/* SNI: the connection takes the certificates of the vhost the client names. Protocols,
 * ciphers and session settings stay those of the address's default server (as in nginx). */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    tls_conn *tc = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!tc || !name)
        return SSL_TLSEXT_ERR_OK;
    const pt_vhost *vh = pt_site_select(tc->site, (pt_str){name, strlen(name)}, NULL);
    if (vh->ssl_ctx && vh->ssl_ctx != SSL_get_SSL_CTX(ssl)) {
        if (!SSL_set_SSL_CTX(ssl, vh->ssl_ctx)) {
            *alert = SSL_AD_INTERNAL_ERROR;
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    }
    tc->vhost = vh;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- vhosts ---- */

int pt_tls_vhost_setup(pt_vhost *vh, pt_tls_keyring *ring, char *err, size_t errlen)
{
    const pt_conf_server *cs = vh->conf;
    const pt_conf_ssl *ssl = &cs->ssl;
    pt_tls_ctx_options o;
    pt_tls_ctx_options_init(&o);
    o.certs = (const char *const *)ssl->certs;
    o.keys = (const char *const *)ssl->keys;
    o.ncerts = ssl->ncerts;
    o.min_version = ssl->min_version;
    o.max_version = ssl->max_version;
    if (ssl->ciphers)
        o.ciphers = ssl->ciphers;
    if (ssl->ciphersuites)
        o.ciphersuites = ssl->ciphersuites;
    o.prefer_server_ciphers = ssl->prefer_server_ciphers;
    o.session_cache = ssl->session_cache;
    o.session_timeout = (long)ssl->session_timeout;
    /* Every context gets the ticket keys: OpenSSL encrypts and decrypts tickets with the
     * callback of the context a connection started on, and it reads the keys from the one SNI
     * switched to. Whether tickets are issued is the starting context's option. */
    o.tickets = ring != NULL;
    o.ticket_keys = ring ? ring->keys : NULL;
    /* ALPN h2 for the connections SNI brings here; an address's `listen ... ssl http2` offers
     * it on that address whatever the server says (wrap_transport) */
    o.http2 = cs->http2;
    char why[600];
    int r = pt_tls_ctx_new(&vh->ssl_ctx, &o, why, sizeof why);
    if (r < 0) {
        snprintf(err, errlen, "%s:%d:%d: %s", ssl->cert_file ? ssl->cert_file : cs->file,
                 ssl->cert_file ? ssl->cert_line : cs->line,
                 ssl->cert_file ? ssl->cert_col : cs->col, why);
        return r;
    }
    if (!ssl->session_tickets)
        SSL_CTX_set_options(vh->ssl_ctx, SSL_OP_NO_TICKET);
    /* Tickets live no longer than sessions, with or without a session cache. */
    SSL_CTX_set_timeout(vh->ssl_ctx, (long)ssl->session_timeout);
    /* Most clients close without a close_notify; HTTP's own framing tells a complete message
     * from a cut one, so an end of stream is just that (nginx does the same), and a client
     * that half-closes after its request is answered as over TCP. */
    SSL_CTX_set_options(vh->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_tlsext_servername_callback(vh->ssl_ctx, on_servername);
    return 0;
}

void pt_tls_vhost_dispose(pt_vhost *vh)
{
    SSL_CTX_free(vh->ssl_ctx);
    vh->ssl_ctx = NULL;
}

/* ---- connections ---- */

static int wrap_transport(pt_transport *t, void *data)
{
    pt_site *site = data;
    int r = pt_tls_accept(t, site->default_vhost->ssl_ctx, t->fd);
    if (r < 0) {
        pt_log_error(PT_LOG_ERROR, "cannot start TLS on a connection: %s", pt_tls_last_error());
        return r;
    }
    SSL_set_info_callback(pt_tls_ssl(t), on_info);
    if (site->http2_listen)
        pt_tls_offer_h2(pt_tls_ssl(t));
    return 0;
}

/* Runs before the connection's own release (custodians release LIFO): the SSL object is
 * still there. */
static void release_tls_conn(void *data)
{
    tls_conn *tc = data;
    ev_timer_stop(tc->site->loop, &tc->close_soon);
    pt_conn *c = tc->conn;
    SSL *ssl = pt_tls_ssl(&c->transport);
    if (ssl)
        SSL_set_app_data(ssl, NULL);
    /* A connection that ends cleanly says so with a close_notify (nginx's rule: not after an
     * error, nor with a response cut short, which must not look complete). */
    bool clean = !tc->alert_sent && !tc->alert_received && pt_outq_is_empty(&c->out) &&
                 (c->close_after || c->state == PT_CONN_IDLE || c->state == PT_CONN_READING);
    if (ssl && clean && SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        SSL_shutdown(ssl);
        ERR_clear_error();
    }
    if (tc->handshaking) {
        tc->site->tls_failed++;
        log_failed_handshake(tc);
        handshake_ended(tc);
    } else if ((tc->alert_sent || tc->alert_received) && !unexpected_eof(tc->error)) {
        conn_log(tc, PT_LOG_INFO, "TLS connection failed: alert \"%s\" %s",
                 SSL_alert_desc_string_long(tc->alert), tc->alert_sent ? "sent" : "received");
    }
}

size_t pt_tls_conn_size(void)
{
    return (sizeof(tls_conn) + 15) & ~(size_t)15;
}

void pt_tls_site_admit(pt_site *site, pt_conn *c)
{
    SSL *ssl = pt_tls_ssl(&c->transport);
    if (!ssl || c->dead)
        return;
    tls_conn *tc = pt_custodian_alloc(pt_conn_custodian(c), sizeof *tc);
    tc->site = site;
    tc->conn = c;
    tc->vhost = site->default_vhost;
    tc->started = ev_now(site->loop);
    ev_timer_init(&tc->close_soon, on_close_soon, 0., 0.);
    tc->close_soon.data = tc;
    if (!pt_custodian_register(pt_conn_custodian(c), release_tls_conn, tc))
        return;
    SSL_set_app_data(ssl, tc);
    /* After the handshake, OpenSSL writes its session tickets and then the response in two
     * writes: with Nagle, the response would wait for the client's delayed ACK of the ticket. */
    pt_conn_set_nodelay(c);
    tc->handshaking = true;
    site->handshakes++;
    if (site->handshakes >= site->max_handshakes && !site->handshakes_full) {
        site->handshakes_full = true;
        pt_log_error(PT_LOG_WARN,
                     "ssl_max_handshakes (%zu) handshakes in progress; accepting "
                     "paused",
                     site->max_handshakes);
        pt_site_update_accepting(site);
    }
    pt_conn_reset_timeout(c, site->handshake_timeout);
}

void pt_tls_site_setup(pt_site *site, pt_connmgr_options *mo)
{
    const pt_conf_ssl *ssl = &site->default_vhost->conf->ssl;
    site->handshake_timeout = ssl->handshake_timeout;
    site->max_handshakes = ssl->max_handshakes;
    mo->wrap_transport = wrap_transport;
    mo->proto_size += pt_tls_conn_size();
}
