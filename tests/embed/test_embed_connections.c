/*
 * Embedding porter's connection layer without HTTP, through the installed headers only: a
 * listener (accept-ready), a connection manager running a protocol of the test's own with its
 * safety limits, the half close and a connection's two addresses, custodians and timers; and
 * outbound, the connector, the transport pool and a TLS tunnel over a pooled transport
 * (verification, SNI, ALPN, its completion callback, its timeout, and its end when the holder
 * closes the transport or the connector shuts down).
 */
#include "harness.h"
#include "../support/cert.h"

#include <limits.h>
#include <sys/stat.h>

/* ---- custodians and timers ---- */

typedef struct order {
    char seen[16];
    size_t n;
} order;

static order the_order;

static void note_a(void *data)
{
    the_order.seen[the_order.n++] = 'a';
}

static void note_b(void *data)
{
    the_order.seen[the_order.n++] = 'b';
}

static void note_child(void *data)
{
    the_order.seen[the_order.n++] = 'c';
}

static void test_custodians(void **state)
{
    fixture *f = fixture_new();
    size_t live = pt_custodian_live_count();
    the_order = (order){{0}, 0};
    pt_custodian *root = pt_custodian_new(NULL);
    pt_custodian *child = pt_custodian_new(root);
    assert_ptr_equal(pt_custodian_parent(child), root);
    assert_int_equal(pt_custodian_live_count(), live + 2);
    pt_custodian_register(root, note_a, NULL);
    pt_custodian_register(root, note_b, NULL);
    pt_custodian_register(child, note_child, NULL);
    pt_custodian_entry *gone = pt_custodian_register(root, note_a, NULL);
    pt_custodian_unregister(gone);
    char *s = pt_custodian_strndup(child, "abcdef", 3);
    assert_string_equal(s, "abc");

    /* Children first, then the entries newest first; what was unregistered never runs. */
    pt_custodian_shutdown(root);
    assert_string_equal(the_order.seen, "cba");
    assert_true(pt_custodian_is_shut_down(child));
    assert_null(pt_custodian_register(root, note_a, NULL));
    assert_null(pt_custodian_new(root));
    assert_string_equal(s, "abc"); /* memory stays until the reap */
    assert_int_equal(pt_custodian_unreaped_count(), 2);
    pt_custodian_reap();
    assert_int_equal(pt_custodian_live_count(), live);
    fixture_free(f);
}

typedef struct ticks {
    int fired;
    double at;
} ticks;

static void on_tick(pt_timer *t, void *data)
{
    ticks *k = data;
    k->fired++;
    k->at = ev_now(t->loop);
}

static bool tick_fired(fixture *f)
{
    return ((ticks *)f->data)->fired > 0;
}

static void test_timers(void **state)
{
    fixture *f = fixture_new();
    ticks k = {0};
    f->data = &k;
    pt_timer t;
    pt_timer_init(&t, f->loop, on_tick, &k);
    assert_false(pt_timer_is_armed(&t));
    assert_true(isinf(pt_timer_remaining(&t)));

    /* Moved later (increment) and then earlier (reset): it fires once, at the last deadline. */
    double start = now_of(f);
    pt_timer_start(&t, 0.2);
    pt_timer_increment(&t, 0.3);
    assert_true(pt_timer_remaining(&t) > 0.4);
    pt_timer_reset(&t, 0.1);
    assert_true(pt_timer_is_armed(&t));
    assert_int_equal(pt_timer_armed_count(), 1);
    run_until(f, tick_fired, WATCHDOG_SECONDS);
    assert_int_equal(k.fired, 1);
    assert_true(k.at - start >= 0.09 && k.at - start < 0.4);
    assert_false(pt_timer_is_armed(&t));

    /* Cancelled: it never runs. */
    pt_timer_start(&t, 0.05);
    pt_timer_cancel(&t);
    run_for(f, 0.15);
    assert_int_equal(k.fired, 1);
    /* A non-positive or infinite time means none. */
    pt_timer_start(&t, PT_TIMEOUT_NONE);
    assert_false(pt_timer_is_armed(&t));
    assert_true(pt_timeout_is_none(0) && pt_timeout_is_none(PT_TIMEOUT_NONE));
    pt_timer_dispose(&t);
    assert_int_equal(pt_timer_armed_count(), 0);
    fixture_free(f);
}

/* ---- a listener and a connection manager running a protocol of the test's own ---- */

/* What the server side saw. */
typedef struct side {
    pt_connmgr *m;
    int admitted, released;
    int shutdown_rc, addr_rc;
    struct sockaddr_storage local, peer;
    socklen_t local_len, peer_len;
    char got[256];
    size_t got_len;
    bool eof;
    bool greet; /* say hello and half-close at once */
    double released_at;
} side;

static void on_conn_released(void *data)
{
    side *sd = data;
    sd->released++;
    sd->released_at = ev_now(pt_connmgr_loop(sd->m));
}

/* Greets, then half-closes: the client reads "hello\n" and the end of the stream, and may
 * still send. */
static void on_admit(pt_conn *c, void *data)
{
    side *sd = data;
    sd->admitted++;
    pt_custodian_register(pt_conn_custodian(c), on_conn_released, sd);
    sd->addr_rc =
        pt_transport_addresses(&c->transport, &sd->local, &sd->local_len, &sd->peer, &sd->peer_len);
    if (!sd->greet)
        return;
    pt_outq_push_copy(&c->out, "hello\n", 6);
    sd->shutdown_rc = pt_conn_shutdown_write(c); /* once "hello\n" is out */
    pt_conn_flush(c);
}

/* Keeps what the client sends after the half close; closes at the client's own end. */
static void on_read(pt_conn *c)
{
    side *sd = c->proto_data;
    size_t n = pt_inbuf_len(&c->in);
    if (n > sizeof sd->got - 1 - sd->got_len)
        n = sizeof sd->got - 1 - sd->got_len;
    if (n) /* (an empty buffer may have no memory at all) */
        memcpy(sd->got + sd->got_len, pt_inbuf_begin(&c->in), n);
    sd->got_len += n;
    pt_inbuf_consume(&c->in, pt_inbuf_len(&c->in));
    if (c->eof) {
        sd->eof = true;
        pt_conn_kill(c);
    }
}

static const pt_conn_proto greet_proto = {.on_read = on_read};

static void on_accept(pt_listener *l, int fd, const struct sockaddr *peer, socklen_t len,
                      void *data)
{
    side *sd = data;
    pt_connmgr_admit(sd->m, fd, peer, len);
}

/* A client: its own address, what it read until the end of the stream, and then (unless
 * silent) a line sent after it, and what it read until the server closed. */
typedef struct peer_client {
    fixture *f;
    int port;
    bool silent; /* sends nothing, reads until the server closes */
    struct sockaddr_storage self;
    char first[64], second[64];
    double closed_after;
    int err;
    volatile bool done;
} peer_client;

static ssize_t read_to_end(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = recv(fd, buf + len, cap - 1 - len, 0)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return n < 0 ? -1 : (ssize_t)len;
}

static void *peer_main(void *arg)
{
    peer_client *p = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_SECONDS};
    socklen_t slen = sizeof p->self;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        getsockname(fd, (struct sockaddr *)&p->self, &slen) < 0 ||
        read_to_end(fd, p->first, sizeof p->first) < 0) {
        p->err = errno;
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    p->closed_after = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (p->silent)
        goto out;
    static const char line[] = "after the half close\n";
    if (send(fd, line, sizeof line - 1, MSG_NOSIGNAL) < 0 || shutdown(fd, SHUT_WR) < 0 ||
        read_to_end(fd, p->second, sizeof p->second) < 0)
        p->err = errno;
out:
    if (fd >= 0)
        close(fd);
    p->done = true;
    ev_async_send(p->f->loop, &p->f->wake);
    return NULL;
}

static side *the_side;

static bool conn_over(fixture *f)
{
    peer_client *p = f->data;
    return p->done && the_side->released > 0;
}

static int port_of(const struct sockaddr_storage *ss)
{
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* A listener on 127.0.0.1, an ephemeral port, not started; a manager with `limits`. */
static pt_listener *side_open(fixture *f, side *sd, const pt_limits *limits, int *port)
{
    pt_connmgr_options mo;
    pt_connmgr_options_init(&mo);
    mo.limits = limits;
    mo.proto = &greet_proto;
    mo.proto_data = sd;
    mo.on_admit = on_admit;
    mo.data = sd;
    assert_int_equal(pt_connmgr_new(&sd->m, f->loop, &mo), 0);
    pt_listener_options lo;
    pt_listener_options_init(&lo);
    lo.host = "127.0.0.1";
    lo.port = "0";
    pt_listener *l = NULL;
    assert_int_equal(pt_listener_open(&l, f->loop, &lo, on_accept, NULL, sd), 0);
    *port = pt_listener_port(l);
    return l;
}

static void test_accept_ready_half_close_and_addresses(void **state)
{
    fixture *f = fixture_new();
    side sd = {.greet = true};
    the_side = &sd;
    int port;
    pt_listener *l = side_open(f, &sd, NULL, &port);
    assert_false(pt_listener_accept_ready(l));

    /* A client connects to a listener that does not accept yet: accept-ready says so. */
    peer_client p = {.f = f, .port = port};
    f->data = &p;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, peer_main, &p), 0);
    for (int i = 0; i < 500 && !pt_listener_accept_ready(l); i++)
        usleep(10 * 1000);
    assert_true(pt_listener_accept_ready(l));
    assert_int_equal(sd.admitted, 0);

    pt_listener_start(l);
    run_until(f, conn_over, WATCHDOG_SECONDS);
    pthread_join(t, NULL);
    assert_int_equal(p.err, 0);
    assert_false(pt_listener_accept_ready(l));

    /* The half close: the client read the greeting and the end of the stream, then still sent
     * a line, which the server read, then the server closed at the client's end. */
    assert_int_equal(sd.shutdown_rc, 0);
    assert_string_equal(p.first, "hello\n");
    assert_string_equal(sd.got, "after the half close\n");
    assert_true(sd.eof);
    assert_string_equal(p.second, "");
    assert_int_equal(sd.released, 1);

    /* The connection's two addresses: the listener's, and the client's own. */
    assert_int_equal(sd.addr_rc, 0);
    assert_int_equal(sd.local_len, sizeof(struct sockaddr_in));
    assert_int_equal(port_of(&sd.local), port);
    assert_int_equal(port_of(&sd.peer), port_of(&p.self));
    assert_memory_equal(&((struct sockaddr_in *)&sd.peer)->sin_addr,
                        &((struct sockaddr_in *)&p.self)->sin_addr, sizeof(struct in_addr));
    struct sockaddr_storage bound;
    assert_int_equal(pt_listener_addresses(l, &bound, 1), 1);
    assert_int_equal(port_of(&bound), port);

    pt_listener_close(l);
    pt_connmgr_free(sd.m);
    pt_custodian_reap();
    fixture_free(f);
}

static void test_safety_limits_close_a_silent_client(void **state)
{
    fixture *f = fixture_new();
    side sd = {.greet = false};
    the_side = &sd;
    pt_limits limits;
    pt_limits_init(&limits);
    limits.request_read_timeout = 0.3;
    int port;
    pt_listener *l = side_open(f, &sd, &limits, &port);
    assert_true(pt_connmgr_limits(sd.m)->request_read_timeout == 0.3);
    pt_listener_start(l);

    peer_client p = {.f = f, .port = port, .silent = true};
    f->data = &p;
    pthread_t t;
    double start = now_of(f);
    assert_int_equal(pthread_create(&t, NULL, peer_main, &p), 0);
    run_until(f, conn_over, WATCHDOG_SECONDS);
    pthread_join(t, NULL);
    /* Nothing was said in request_read_timeout: the connection went, with all it owned. */
    assert_int_equal(p.err, 0);
    assert_string_equal(p.first, "");
    assert_true(p.closed_after >= 0.25 && p.closed_after < 5);
    assert_true(sd.released_at - start >= 0.25);
    pt_connmgr_stats st;
    pt_connmgr_get_stats(sd.m, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.live, 0);

    pt_listener_close(l);
    pt_connmgr_free(sd.m);
    pt_custodian_reap();
    fixture_free(f);
}

/* ---- outbound: the connector, the pool and a TLS tunnel ---- */

/* The state of one outbound exchange, driven by callbacks. */
typedef struct out {
    fixture *f;
    pt_pool *pool;
    pt_tls_client *client;
    pt_tls_connect_options opts;
    pt_outbound *o;
    int connect_status, tls_status;
    int tls_calls;
    bool close_at_once; /* close the outbound right after pt_tls_connect() */
    int tls_rc;         /* what pt_tls_connect() returned */
    char alpn[64];
    char reply[4096];
    size_t reply_len;
    bool connected, tunnelled, answered;
} out;

static void on_tunnel(pt_outbound *o, int status, void *data)
{
    out *x = data;
    x->tls_calls++;
    x->tls_status = status;
    x->tunnelled = true;
    if (status == 0 && pt_tls_alpn(&o->transport, x->alpn, sizeof x->alpn) < 0)
        x->alpn[0] = '\0';
}

static void on_connected(pt_outbound *o, int status, void *data)
{
    out *x = data;
    x->connected = true;
    x->connect_status = status;
    x->o = o;
    if (status < 0)
        return;
    x->tls_rc = pt_tls_connect(o, x->client, &x->opts, on_tunnel, x);
    if (x->tls_rc == 0 && x->close_at_once) {
        pt_outbound_close(o); /* the handshake is abandoned: no callback */
        x->o = NULL;
    }
}

static bool tunnel_over(fixture *f)
{
    out *x = f->data;
    return x->tunnelled || (x->connected && (x->connect_status < 0 || x->tls_rc < 0));
}

static bool connected(fixture *f)
{
    return ((out *)f->data)->connected;
}

/* Connects through the pool and tunnels with `x->opts`; runs until the tunnel is up or not. */
static void tunnel(fixture *f, out *x)
{
    x->connected = x->tunnelled = false;
    x->tls_calls = 0;
    x->alpn[0] = '\0';
    f->data = x;
    assert_int_equal(pt_pool_connect(x->pool, 0, on_connected, x, NULL), 0);
    run_until(f, tunnel_over, WATCHDOG_SECONDS);
    assert_int_equal(x->connect_status, 0);
}

static void on_reply_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    out *x = w->data;
    for (;;) {
        ssize_t n = pt_transport_read(&x->o->transport, x->reply + x->reply_len,
                                      sizeof x->reply - 1 - x->reply_len);
        if (n <= 0)
            break;
        x->reply_len += (size_t)n;
        x->reply[x->reply_len] = '\0';
    }
    if (strstr(x->reply, "hello over tls\n")) {
        x->answered = true;
        pt_outbound_watch(x->o, loop, 0);
    }
}

static bool answered(fixture *f)
{
    return ((out *)f->data)->answered;
}

/* One request over the tunnel of `x->o`, its answer read through the outbound's watcher. */
static void exchange(fixture *f, out *x)
{
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct iovec iov = {(void *)req, sizeof req - 1};
    x->reply_len = 0;
    x->reply[0] = '\0';
    x->answered = false;
    f->data = x;
    assert_int_equal(pt_transport_writev(&x->o->transport, &iov, 1), (ssize_t)(sizeof req - 1));
    ev_set_cb(&x->o->io, on_reply_readable);
    x->o->io.data = x;
    pt_outbound_watch(x->o, f->loop, EV_READ);
    run_until(f, answered, WATCHDOG_SECONDS);
    assert_non_null(strstr(x->reply, "HTTP/1.1 200 OK\r\n"));
}

static void on_hello(pt_request *req, void *data)
{
    pt_respond(req, 200, "text/plain", "hello over tls\n", 15);
}

/* Accepts and holds connections without a word: a peer that never answers a ClientHello. */
static void on_accept_hold(pt_listener *l, int fd, const struct sockaddr *peer, socklen_t len,
                           void *data)
{
    int *held = data;
    if (*held >= 0)
        close(*held);
    *held = fd;
}

static void test_tls_tunnel_over_a_pooled_transport(void **state)
{
    char dir[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
    temp_dir_make(dir, sizeof dir, "embed-tunnel");
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x509 = cert_self_signed(pkey, "localhost", "DNS:localhost,IP:127.0.0.1");
    cert_write(x509, pkey, temp_path(cert, dir, "cert.pem"), temp_path(key, dir, "key.pem"));
    X509_free(x509);
    EVP_PKEY_free(pkey);

    fixture *f = fixture_new();
    pt_server_options so;
    pt_server_options_init(&so);
    so.tls_certificate = cert;
    so.tls_certificate_key = key;
    pt_server *s = NULL;
    char err[512] = "";
    if (pt_server_new_with(&s, f->loop, &so, err, sizeof err) < 0)
        fail_msg("pt_server_new_with: %s", err);
    assert_int_equal(pt_server_listen(s, "127.0.0.1", "0", PT_LISTEN_TLS | PT_LISTEN_HTTP2), 0);
    struct sockaddr_storage ss;
    assert_int_equal(pt_server_addresses(s, &ss, 1), 1);
    int port = port_of(&ss);
    assert_int_equal(pt_server_handle(s, "GET", "/hello", PT_PATH_EXACT, on_hello, NULL), 0);
    assert_int_equal(pt_server_start(s), 0);

    pt_connector_options co;
    pt_connector_options_init(&co);
    pt_connector *c = NULL;
    assert_int_equal(pt_connector_new(&c, f->loop, &co), 0);
    pt_authority a;
    assert_int_equal(pt_authority_set(&a, "127.0.0.1", (uint16_t)port), 0);
    pt_pool_options po;
    pt_pool_options_init(&po);
    pt_pool *pool = NULL;
    assert_int_equal(pt_pool_new(&pool, c, &a, &po), 0);

    pt_tls_client *trusting = NULL, *system = NULL, *none = NULL;
    assert_int_equal(pt_tls_client_new(&none, "/nonexistent/ca.pem", err, sizeof err), -ENOENT);
    assert_null(none);
    assert_int_equal(pt_tls_client_new(&trusting, cert, err, sizeof err), 0);
    assert_int_equal(pt_tls_client_new(&system, NULL, err, sizeof err), 0);

    out x = {.f = f, .pool = pool, .client = trusting};

    /* Verified by name, SNI and ALPN: the server takes h2 when it comes first. */
    pt_tls_connect_options_init(&x.opts);
    assert_true(x.opts.verify && x.opts.sni && x.opts.timeout > 0);
    x.opts.server_name = "localhost";
    x.opts.alpn = "h2,http/1.1";
    tunnel(f, &x);
    assert_int_equal(x.tls_status, 0);
    assert_int_equal(x.tls_calls, 1);
    assert_string_equal(x.alpn, "h2");
    assert_true(pt_transport_is_tls(&x.o->transport));
    assert_true(pt_tls_handshake_done(&x.o->transport));
    struct sockaddr_storage local, remote;
    assert_int_equal(pt_transport_addresses(&x.o->transport, &local, NULL, &remote, NULL), 0);
    assert_int_equal(port_of(&remote), port);
    assert_true(port_of(&local) > 0);
    assert_int_equal(pt_tls_connect(x.o, trusting, NULL, on_tunnel, &x), -EINVAL); /* TLS already */
    pt_outbound_close(x.o);

    /* The authority's own host (an IP address) verified, HTTP/1.1 by ALPN, two exchanges on
     * one tunnel: given back to the pool in between, taken again as it is. */
    x.opts.server_name = NULL;
    x.opts.alpn = "http/1.1";
    tunnel(f, &x);
    assert_int_equal(x.tls_status, 0);
    assert_string_equal(x.alpn, "http/1.1");
    exchange(f, &x);
    pt_outbound *first = x.o;
    pt_pool_give_back(pool, x.o);
    assert_int_equal(pt_pool_idle_count(pool), 1);
    x.o = pt_pool_take(pool);
    assert_ptr_equal(x.o, first);
    assert_true(pt_tls_handshake_done(&x.o->transport));
    exchange(f, &x);
    pt_outbound_close(x.o);

    /* A name the certificate does not have: the handshake fails, and says why. */
    x.opts.server_name = "wrong.example";
    x.opts.alpn = NULL;
    tunnel(f, &x);
    assert_int_equal(x.tls_status, -EPROTO);
    assert_non_null(strstr(pt_tls_last_error(), "verify"));
    pt_outbound_close(x.o);

    /* The same certificate against the system's store: refused unless verification is off. */
    x.client = system;
    x.opts.server_name = "localhost";
    tunnel(f, &x);
    assert_int_equal(x.tls_status, -EPROTO);
    pt_outbound_close(x.o);
    x.opts.verify = false;
    tunnel(f, &x);
    assert_int_equal(x.tls_status, 0);
    exchange(f, &x);
    pt_outbound_close(x.o);

    /* Options refused at once, with the outbound unchanged. */
    x.opts.verify = true;
    x.opts.alpn = "h2,,http/1.1";
    tunnel(f, &x);
    assert_int_equal(x.tls_rc, -EINVAL);
    assert_false(x.tunnelled);
    assert_true(pt_transport_is_tcp(&x.o->transport));
    pt_outbound_close(x.o);

    /* Closed by its holder mid-handshake: the callback never comes, nothing is left. */
    x.opts.alpn = NULL;
    x.close_at_once = true;
    x.connected = x.tunnelled = false;
    f->data = &x;
    assert_int_equal(pt_pool_connect(pool, 0, on_connected, &x, NULL), 0);
    run_until(f, connected, WATCHDOG_SECONDS);
    assert_int_equal(x.tls_rc, 0);
    run_for(f, 0.2);
    assert_int_equal(x.tls_calls, 0);
    x.close_at_once = false;

    pt_pool_free(pool);
    pt_connector_free(c);
    pt_tls_client_free(trusting);
    pt_tls_client_free(system);
    pt_tls_client_free(NULL);
    server_stop_free(f, s);
    fixture_free(f);
    temp_dir_remove(dir);
}

static void test_tls_tunnel_timeout_and_shutdown(void **state)
{
    fixture *f = fixture_new();
    int held = -1;
    pt_listener_options lo;
    pt_listener_options_init(&lo);
    lo.host = "127.0.0.1";
    lo.port = "0";
    pt_listener *l = NULL;
    assert_int_equal(pt_listener_open(&l, f->loop, &lo, on_accept_hold, NULL, &held), 0);
    pt_listener_start(l);

    pt_connector_options co;
    pt_connector_options_init(&co);
    pt_connector *c = NULL;
    assert_int_equal(pt_connector_new(&c, f->loop, &co), 0);
    pt_authority a;
    assert_int_equal(pt_authority_set(&a, "127.0.0.1", (uint16_t)pt_listener_port(l)), 0);
    pt_pool_options po;
    pt_pool_options_init(&po);
    pt_pool *pool = NULL;
    assert_int_equal(pt_pool_new(&pool, c, &a, &po), 0);
    pt_tls_client *tls = NULL;
    assert_int_equal(pt_tls_client_new(&tls, NULL, NULL, 0), 0);

    /* A peer that never answers: the handshake's own timeout ends it. */
    out x = {.f = f, .pool = pool, .client = tls};
    pt_tls_connect_options_init(&x.opts);
    x.opts.verify = false;
    x.opts.timeout = 0.3;
    double start = now_of(f);
    tunnel(f, &x);
    assert_int_equal(x.tls_status, -ETIMEDOUT);
    assert_true(now_of(f) - start >= 0.25);
    pt_outbound_close(x.o);

    /* Still in progress when the connector shuts down: -ECANCELED, and nothing is left. */
    x.opts.timeout = PT_TIMEOUT_NONE;
    x.connected = x.tunnelled = false;
    x.tls_calls = 0;
    f->data = &x;
    assert_int_equal(pt_pool_connect(pool, 0, on_connected, &x, NULL), 0);
    run_until(f, connected, WATCHDOG_SECONDS);
    assert_int_equal(x.tls_rc, 0);
    run_for(f, 0.1);
    assert_int_equal(x.tls_calls, 0);
    pt_pool_free(pool);
    pt_connector_free(c);
    assert_int_equal(x.tls_calls, 1);
    assert_int_equal(x.tls_status, -ECANCELED);
    pt_outbound_close(x.o); /* its memory is still the holder's */

    pt_tls_client_free(tls);
    pt_listener_close(l);
    if (held >= 0)
        close(held);
    pt_custodian_reap();
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_custodians),
        cmocka_unit_test(test_timers),
        cmocka_unit_test(test_accept_ready_half_close_and_addresses),
        cmocka_unit_test(test_safety_limits_close_a_silent_client),
        cmocka_unit_test(test_tls_tunnel_over_a_pooled_transport),
        cmocka_unit_test(test_tls_tunnel_timeout_and_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
