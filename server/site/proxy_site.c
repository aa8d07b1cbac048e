/*
 * PROXY protocol sites: a listening address whose `listen` says proxy_protocol (see site.h).
 *
 * Each connection starts with a PROXY protocol header (connmgr/proxy_protocol.h) from the proxy
 * or load balancer in front, in cleartext even on a TLS address. Until it is read, the
 * connection's own reading is paused and this stage reads the socket itself: it peeks at what
 * has arrived, hands it to the parser, and takes from the socket exactly the header's bytes (or,
 * while the header is incomplete, the part of it that came), so what follows stays in the
 * socket for the TLS handshake or the HTTP request. Then the connection goes on as on any site
 * (the `start` server.c gives): its protocol, its handshake's bounds, its reading.
 *
 * The header must arrive within request_read_timeout of the connection's start (nginx bounds it
 * by client_header_timeout the same way); a TLS handshake's own bound starts after it. A
 * malformed header (error level), a connection closed before its header and one that times out
 * waiting (info level) are closed with a line in the address's default server's error log that
 * names the peer.
 *
 * What the header said lives in a small record in the connection's custodian (c->proxied
 * points into it when it named the client); the header's bytes, while they arrive, in a pool
 * chunk given back once it is read. Its release entry keeps the connection from being parked:
 * the parking lot keeps only the socket, and the connection it would make again would wait for
 * a header that never comes and would have lost the addresses.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "connmgr/proxy_protocol.h"
#include "server/site/site.h"

/* What the stage adds to a connection. */
typedef struct proxy_conn {
    pt_site *site;
    pt_conn *conn;
    pt_site_start_fn start; /* sets the connection going once its header is read */
    ev_io io;               /* the socket's readiness while the header is read */
    char *buf; /* the header so far (PT_PROXY_HEADER_MAX fit): a pool chunk until it is read */
    size_t have;
    pt_proxy_header header;
} proxy_conn;

_Static_assert(PT_PROXY_HEADER_MAX <= PT_CHUNK_SIZE, "a header fits a pool chunk");

static void conn_log(proxy_conn *pc, pt_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_log(proxy_conn *pc, pt_log_level level, const char *fmt, ...)
{
    const pt_vhost *vh = pc->site->default_vhost;
    if (!vh->error_log && !pt_log_enabled(level))
        return;
    char msg[512], addr[PT_SOCKADDR_STRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (pt_sockaddr_format(&pc->conn->peer.sa, addr, sizeof addr) < 0)
        strcpy(addr, "-");
    pt_log_error_to(vh->error_log, vh->error_level, level, "%s, client: %s", msg, addr);
}

/* The start of a refused header as the log shows it: printable ASCII as it is, the rest as
 * \xHH, up to a line's end. */
static void excerpt(const char *p, size_t n, char *out, size_t cap)
{
    size_t pos = 0;
    for (size_t i = 0; i < n && i < 48 && pos + 5 < cap; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\r' || ch == '\n')
            break;
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            out[pos++] = (char)ch;
        else
            pos += (size_t)snprintf(out + pos, cap - pos, "\\x%02X", ch);
    }
    out[pos] = '\0';
}

static void release_proxy_conn(void *data)
{
    proxy_conn *pc = data;
    ev_io_stop(pc->site->loop, &pc->io);
    pt_chunk_put(pc->buf);
    pc->buf = NULL;
}

/* The header is read: the connection goes on with what it said. */
static void header_read(proxy_conn *pc)
{
    pt_conn *c = pc->conn;
    ev_io_stop(pc->site->loop, &pc->io);
    pt_chunk_put(pc->buf);
    pc->buf = NULL;
    if (!pc->header.local)
        c->proxied = &pc->header;
    pc->start(pc->site, c);
    pt_conn_resume_read(c);
}

/* Reads what has arrived of the header; returns once it is read, when the rest must come, or
 * when the connection has been killed. */
static void read_header(proxy_conn *pc)
{
    pt_conn *c = pc->conn;
    int fd = c->transport.fd;
    for (;;) {
        char *at = pc->buf + pc->have;
        ssize_t n = recv(fd, at, PT_PROXY_HEADER_MAX - pc->have, MSG_PEEK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            if (n == 0)
                conn_log(pc, PT_LOG_INFO,
                         "the client closed the connection before its PROXY protocol header");
            else
                conn_log(pc, PT_LOG_INFO, "reading the PROXY protocol header failed: %s",
                         strerror(errno));
            pt_conn_kill(c);
            return;
        }
        size_t len = pc->have + (size_t)n;
        int r = pt_proxy_header_parse(pc->buf, len, &pc->header);
        if (r < 0) {
            char text[256];
            excerpt(pc->buf, len, text, sizeof text);
            conn_log(pc, PT_LOG_ERROR, "broken PROXY protocol header (%s): \"%s\"", pc->header.why,
                     text);
            pt_conn_kill(c);
            return;
        }
        /* Only the header's bytes leave the socket: what follows is the connection's. What
         * was peeked is there, so the read takes all of it. */
        size_t take = r > 0 ? (size_t)r - pc->have : (size_t)n;
        ssize_t got;
        do
            got = recv(fd, at, take, 0);
        while (got < 0 && errno == EINTR);
        if (got != (ssize_t)take) {
            conn_log(pc, PT_LOG_INFO, "reading the PROXY protocol header failed: %s",
                     got < 0 ? strerror(errno) : "short read");
            pt_conn_kill(c);
            return;
        }
        pc->have += take;
        c->stats->bytes_in += take;
        if (r > 0) {
            header_read(pc);
            return;
        }
    }
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    read_header(w->data);
}

/* Reading is paused until the header is read: nothing else comes here. */
static void on_read(pt_conn *c)
{
}

static void on_timeout(pt_conn *c)
{
    proxy_conn *pc = c->proto_data;
    conn_log(pc, PT_LOG_INFO, "no PROXY protocol header within %gs (request_read_timeout)",
             c->limits->request_read_timeout);
    pt_conn_kill(c);
}

static const pt_conn_proto header_proto = {.on_read = on_read, .on_timeout = on_timeout};

void pt_proxy_site_setup(pt_site *site, pt_connmgr_options *mo)
{
    mo->proto_size += (sizeof(proxy_conn) + 15) & ~(size_t)15;
}

void pt_proxy_site_admit(pt_site *site, pt_conn *c, pt_site_start_fn start)
{
    if (c->dead)
        return;
    proxy_conn *pc = pt_custodian_alloc(pt_conn_custodian(c), sizeof *pc);
    memset(pc, 0, sizeof *pc);
    pc->site = site;
    pc->conn = c;
    pc->start = start;
    ev_io_init(&pc->io, on_readable, c->transport.fd, EV_READ);
    pc->io.data = pc;
    if (!pt_custodian_register(pt_conn_custodian(c), release_proxy_conn, pc))
        return;
    pc->buf = pt_chunk_get();
    pt_conn_set_proto(c, &header_proto, pc);
    pt_conn_pause_read(c);
    ev_io_start(site->loop, &pc->io);
    /* The header has usually come with the connection (always, with `deferred`). */
    read_header(pc);
}
