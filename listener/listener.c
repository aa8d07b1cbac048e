#include "listener/listener.h"

#include "listener/sized.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Fresh ephemeral ports tried when the port the first socket got is taken in another family.
 */
#define PORT_ATTEMPTS 8

typedef struct lsock {
    ev_io io;
    pt_listener *owner;
    int fd;
    struct sockaddr_storage addr; /* as bound (getsockname) */
    socklen_t addrlen;
} lsock;

struct pt_listener {
    struct ev_loop *loop;
    pt_accept_cb accept_cb;
    pt_listener_error_cb error_cb;
    void *data;
    int accept_batch;
    double backoff;
    pt_listener_pressure_cb pressure_cb;
    int fd_reserve; /* as in the options */
    int fd_ceiling; /* accept only while the next descriptor is below this (0: no reserve) */
    ev_timer backoff_timer;
    unsigned busy;    /* our callbacks on the stack: the free waits for them */
    bool started;     /* pt_listener_start() was called */
    bool paused;      /* by the caller */
    bool backing_off; /* after EMFILE and co; independent of paused */
    bool in_error;    /* the error callback already heard about this episode */
    bool closed;
    size_t n;
    lsock socks[]; /* n bound sockets */
};

typedef struct candidate {
    struct sockaddr_storage ss;
    socklen_t len;
} candidate;

void pt_listener_options_init_sized(pt_listener_options *o, size_t size)
{
    pt_listener_options d = {
        .size = sizeof d,
        .host = NULL,
        .port = NULL,
        .backlog = 511,
        .reuseaddr = true,
        .reuseport = false,
        .accept_batch = 64,
        .emfile_backoff = 0.1,
    };
    pt_sized_init(o, size, &d, sizeof d);
}

/* The caller's options read into `copy` (see sized.h): `copy`, or NULL if they cannot be. */
static const pt_listener_options *read_options(const pt_listener_options *o,
                                               pt_listener_options *copy)
{
    pt_listener_options_init(copy);
    return o && pt_sized_copy(copy, sizeof *copy, o) == 0 ? copy : NULL;
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return -1;
}

static void sockaddr_set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static bool sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family || sockaddr_port(a) != sockaddr_port(b))
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
               x->sin6_scope_id == y->sin6_scope_id;
    }
    return false;
}

/* Resolves the service separately from the host so that a bad service is -EINVAL and not
 * mistaken for a host that does not resolve (getaddrinfo reports both as EAI_NONAME). */
static int parse_port(const char *port, int *out)
{
    if (port == NULL || *port == '\0')
        return -EINVAL;
    if (strspn(port, "0123456789") == strlen(port)) {
        if (strlen(port) > 5)
            return -EINVAL;
        long v = strtol(port, NULL, 10);
        if (v > 65535)
            return -EINVAL;
        *out = (int)v;
        return 0;
    }
    struct servent se, *res = NULL;
    char buf[1024];
    if (getservbyname_r(port, "tcp", &se, buf, sizeof buf, &res) != 0 || res == NULL)
        return -EINVAL;
    *out = ntohs((uint16_t)se.s_port);
    return 0;
}

static int gai_errno(int rc, int saved_errno)
{
    switch (rc) {
    case EAI_SYSTEM:
        return saved_errno ? -saved_errno : -EIO;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_SERVICE:
    case EAI_BADFLAGS:
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
        return -EINVAL;
    default: /* EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY, EAI_FAIL */
        return -EADDRNOTAVAIL;
    }
}

/* Fills a fresh array with the distinct addresses `host` names, all with port `port`. */
static int resolve(const char *host, int port, candidate **out, size_t *count)
{
    char name[NI_MAXHOST];
    const char *node = host;

    if (host == NULL || *host == '\0' || strcmp(host, "*") == 0) {
        node = NULL;
    } else if (host[0] == '[') {
        size_t len = strlen(host);
        if (len < 3 || host[len - 1] != ']' || len - 2 >= sizeof name)
            return -EADDRNOTAVAIL;
        memcpy(name, host + 1, len - 2);
        name[len - 2] = '\0';
        node = name;
    }

    char service[8];
    snprintf(service, sizeof service, "%d", port);
    /* No AI_ADDRCONFIG: glibc ignores loopback when deciding whether a family is
     * "configured", so a loopback-only host would lose ::1 and [::]. The kernel decides
     * instead: an address it cannot use fails in socket() or bind() and is skipped. */
    struct addrinfo hints = {
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_protocol = IPPROTO_TCP,
    };
    struct addrinfo *res = NULL;
    errno = 0;
    int rc = getaddrinfo(node, service, &hints, &res);
    if (rc != 0)
        return gai_errno(rc, errno);

    size_t cap = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        cap++;
    candidate *v = calloc(cap ? cap : 1, sizeof *v);
    if (v == NULL) {
        freeaddrinfo(res);
        return -ENOMEM;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof v[n].ss)
            continue;
        memcpy(&v[n].ss, ai->ai_addr, ai->ai_addrlen);
        v[n].len = ai->ai_addrlen;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = sockaddr_equal(&v[j].ss, &v[n].ss);
        if (!dup)
            n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        free(v);
        return -EADDRNOTAVAIL;
    }
    *out = v;
    *count = n;
    return 0;
}

/* socket + options + bind + listen for one address; returns 0 or -errno (fd closed). */
static int open_socket(const candidate *c, const pt_listener_options *o, lsock *s)
{
    int one = 1;
    int rc;
    int fd = socket(c->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return -errno;
    if (o->reuseaddr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail;
    if (o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        goto fail;
    if (o->defer_accept > 0 &&
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &o->defer_accept, sizeof o->defer_accept) < 0)
        goto fail;
    if (o->notsent_lowat > 0 && setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &o->notsent_lowat,
                                           sizeof o->notsent_lowat) < 0)
        goto fail;
    /* v6-only so that [::]:P and 0.0.0.0:P are separate sockets, whatever bindv6only says.
     * A v4-mapped address cannot be bound by a v6-only socket, so it keeps the default. */
    if (c->ss.ss_family == AF_INET6 &&
        !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)&c->ss)->sin6_addr) &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        goto fail;
    if (bind(fd, (const struct sockaddr *)&c->ss, c->len) < 0)
        goto fail;
    if (listen(fd, o->backlog) < 0)
        goto fail;
    s->addrlen = sizeof s->addr;
    if (getsockname(fd, (struct sockaddr *)&s->addr, &s->addrlen) < 0)
        goto fail;
    s->fd = fd;
    return 0;
fail:
    rc = -errno;
    close(fd);
    return rc;
}

static void close_sockets(pt_listener *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->socks[i].fd >= 0)
            close(l->socks[i].fd);
        l->socks[i].fd = -1;
    }
    l->n = 0;
}

static void close_fds(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* One pass over the candidates with `port` (0: the kernel picks it for the first socket and
 * the others follow). When a later socket finds that picked port taken, the pass fails but
 * hands the first socket to the caller in *held: kept open through the next pass, it stops
 * the kernel from picking the same port again. */
static int bind_pass(pt_listener *l, const candidate *cand, size_t ncand,
                     const pt_listener_options *o, int port, int *held)
{
    int skipped = 0;
    bool ephemeral = port == 0;

    *held = -1;
    for (size_t i = 0; i < ncand; i++) {
        candidate c = cand[i];
        sockaddr_set_port(&c.ss, port);
        lsock *s = &l->socks[l->n];
        int rc = open_socket(&c, o, s);
        if (rc == 0) {
            l->n++;
            if (port == 0)
                port = sockaddr_port(&s->addr);
            continue;
        }
        /* A name with several addresses: one this kernel cannot use here is not fatal. */
        if (ncand > 1 && (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL)) {
            if (skipped == 0)
                skipped = rc;
            continue;
        }
        if (ephemeral && port != 0 && rc == -EADDRINUSE) {
            *held = l->socks[0].fd;
            l->socks[0].fd = -1;
        }
        close_sockets(l);
        return rc;
    }
    if (l->n == 0)
        return skipped ? skipped : -EADDRNOTAVAIL;
    return 0;
}

static void update_watchers(pt_listener *l)
{
    bool want = l->started && !l->paused && !l->backing_off && !l->closed;
    for (size_t i = 0; i < l->n; i++) {
        ev_io *w = &l->socks[i].io;
        if (want && !ev_is_active(w))
            ev_io_start(l->loop, w);
        else if (!want && ev_is_active(w))
            ev_io_stop(l->loop, w);
    }
}

/* Errors accept(2) may return for one connection (aborted before accept, or network errors
 * Linux passes on from the new socket): skip it and take the next. */
static bool accept_error_is_transient(int err)
{
    switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM: /* a firewall rule refused this connection */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

/* The pending connection cannot be taken now (out of fds or memory). Leave it in the backlog
 * and stop watching: a level-triggered watcher would fire again at once and spin. */
static bool out_of_fds(int err)
{
    return err == EMFILE || err == ENFILE;
}

static void accept_failed(pt_listener *l, int err)
{
    if (out_of_fds(err) && l->pressure_cb)
        l->pressure_cb(l, l->data);
    l->backing_off = true;
    update_watchers(l);
    ev_timer_stop(l->loop, &l->backoff_timer);
    ev_timer_set(&l->backoff_timer, l->backoff, 0.);
    ev_timer_start(l->loop, &l->backoff_timer);
    if (!l->in_error) {
        l->in_error = true;
        if (l->error_cb != NULL)
            l->error_cb(l, err, l->data);
    }
}

static bool connection_waiting(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* The descriptor number below which connections may be accepted (0: no reserve). */
static int fd_ceiling(int reserve)
{
    struct rlimit rl;
    if (reserve == 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > INT_MAX)
        return 0;
    int limit = (int)rl.rlim_cur;
    if (reserve < 0)
        reserve = 8 + limit / 64;
    return limit > reserve ? limit - reserve : 1;
}

static void on_backoff_end(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_listener *l = w->data;
    /* The limit may have been raised meanwhile; and the lowest free descriptor (what accept
     * would get) must be below the reserve before accepting again. */
    l->fd_ceiling = fd_ceiling(l->fd_reserve);
    if (l->fd_ceiling && l->n) {
        int probe = fcntl(l->socks[0].fd, F_DUPFD_CLOEXEC, 0);
        if (probe >= 0)
            close(probe);
        if (probe < 0 || probe + 1 >= l->fd_ceiling) {
            if (l->pressure_cb)
                l->pressure_cb(l, l->data);
            ev_timer_set(&l->backoff_timer, l->backoff, 0.);
            ev_timer_start(l->loop, &l->backoff_timer);
            return;
        }
    }
    l->backing_off = false;
    update_watchers(l);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    lsock *s = w->data;
    pt_listener *l = s->owner;

    l->busy++;
    /* The watcher goes inactive when a callback pauses or closes the listener, or when the
     * listener backs off: stop at once in all three cases. */
    for (int i = 0; i < l->accept_batch && ev_is_active(w); i++) {
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof peer;
        int fd = accept4(s->fd, (struct sockaddr *)&peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            bool reserve_next = l->fd_ceiling && fd + 1 >= l->fd_ceiling;
            l->accept_cb(l, fd, (const struct sockaddr *)&peer, peerlen, l->data);
            if (reserve_next && !l->closed) {
                /* The next descriptor would come out of the reserve: wait for one to free. */
                accept_failed(l, EMFILE);
                break;
            }
            continue;
        }
        int err = errno;
        if (accept_error_is_transient(err))
            continue;
        /* Linux takes the fd before looking at the queue, so after the last connection of a
         * batch a full fd table says EMFILE where it means EAGAIN: nothing is lost then, and
         * the watcher will not fire until a connection arrives. */
        if (err == EAGAIN || err == EWOULDBLOCK || !connection_waiting(s->fd)) {
            l->in_error = false;
            break;
        }
        accept_failed(l, err);
        break;
    }
    if (--l->busy == 0 && l->closed)
        free(l);
}

/* What pt_listener_open() and pt_listener_adopt() share: the options checked, the addresses
 * resolved, the listener allocated for them. */
static int prepare(pt_listener **out, struct ev_loop *loop, const pt_listener_options *o,
                   pt_accept_cb cb, pt_listener_error_cb err_cb, void *data, candidate **cand,
                   size_t *ncand, int *port)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (loop == NULL || o == NULL || cb == NULL || o->backlog < 0 || o->defer_accept < 0 ||
        o->notsent_lowat < 0 || o->accept_batch < 1 || !(o->emfile_backoff > 0) ||
        !isfinite(o->emfile_backoff))
        return -EINVAL;
    int rc = parse_port(o->port, port);
    if (rc < 0)
        return rc;
    rc = resolve(o->host, *port, cand, ncand);
    if (rc < 0)
        return rc;
    pt_listener *l = calloc(1, sizeof *l + *ncand * sizeof l->socks[0]);
    if (l == NULL) {
        free(*cand);
        return -ENOMEM;
    }
    l->loop = loop;
    l->accept_cb = cb;
    l->error_cb = err_cb;
    l->data = data;
    l->accept_batch = o->accept_batch;
    l->backoff = o->emfile_backoff;
    l->fd_reserve = o->fd_reserve;
    l->fd_ceiling = fd_ceiling(o->fd_reserve);
    *out = l;
    return 0;
}

/* The watchers of a listener whose sockets are all open. */
static void finish(pt_listener *l)
{
    for (size_t i = 0; i < l->n; i++) {
        lsock *s = &l->socks[i];
        s->owner = l;
        ev_io_init(&s->io, on_readable, s->fd, EV_READ);
        s->io.data = s;
    }
    ev_timer_init(&l->backoff_timer, on_backoff_end, l->backoff, 0.);
    l->backoff_timer.data = l;
}

int pt_listener_open(pt_listener **out, struct ev_loop *loop, const pt_listener_options *o,
                     pt_accept_cb cb, pt_listener_error_cb err_cb, void *data)
{
    candidate *cand = NULL;
    size_t ncand = 0;
    pt_listener *l = NULL;
    int held[PORT_ATTEMPTS];
    int nheld = 0;
    int port = 0;
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    pt_listener_options copy;
    o = read_options(o, &copy);
    int rc = prepare(&l, loop, o, cb, err_cb, data, &cand, &ncand, &port);
    if (rc < 0)
        return rc;
    for (int attempt = 1;; attempt++) {
        int hold;
        rc = bind_pass(l, cand, ncand, o, port, &hold);
        if (hold >= 0)
            held[nheld++] = hold;
        if (rc == 0)
            break;
        if (hold < 0 || attempt == PORT_ATTEMPTS)
            goto fail;
    }
    close_fds(held, nheld);
    finish(l);
    free(cand);
    *out = l;
    return 0;
fail:
    close_fds(held, nheld);
    free(l);
    free(cand);
    return rc;
}

/* The entry of `fds` holding a listening TCP socket bound to `c`'s address (and to its port,
 * unless that is 0), or -1. */
static int find_bound(const candidate *c, const int *fds, size_t nfds)
{
    for (size_t i = 0; i < nfds; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int listening = 0, type = 0;
        socklen_t ilen = sizeof listening, tlen = sizeof type;
        if (fds[i] < 0 || getsockname(fds[i], (struct sockaddr *)&ss, &len) < 0 ||
            getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) < 0 || !listening ||
            getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM)
            continue;
        if (sockaddr_port(&c->ss) == 0)
            sockaddr_set_port(&ss, 0);
        if (sockaddr_equal(&ss, &c->ss))
            return (int)i;
    }
    return -1;
}

/* Gives a socket taken from another process what pt_listener_open() would have made it with
 * (SO_REUSEPORT and the address cannot change once bound). */
static int adopt_socket(int fd, const pt_listener_options *o, lsock *s)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || listen(fd, o->backlog) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &o->defer_accept, sizeof o->defer_accept) <
            0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &o->notsent_lowat, sizeof o->notsent_lowat) <
            0)
        return -errno;
    s->addrlen = sizeof s->addr;
    if (getsockname(fd, (struct sockaddr *)&s->addr, &s->addrlen) < 0)
        return -errno;
    s->fd = fd;
    return 0;
}

int pt_listener_adopt(pt_listener **out, struct ev_loop *loop, const pt_listener_options *o,
                      int *fds, size_t nfds, pt_accept_cb cb, pt_listener_error_cb err_cb,
                      void *data)
{
    candidate *cand = NULL;
    size_t ncand = 0;
    pt_listener *l = NULL;
    int port = 0;
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    pt_listener_options copy;
    o = read_options(o, &copy);
    int rc = prepare(&l, loop, o, cb, err_cb, data, &cand, &ncand, &port);
    if (rc < 0)
        return rc;
    /* taken[i]: the entry of `fds` socket i came from, or -1 for one opened here */
    int *taken = calloc(ncand, sizeof *taken);
    if (!taken) {
        rc = -ENOMEM;
        goto fail;
    }
    /* The sockets already bound first: with port 0, the first one's port is the others'. */
    size_t ntaken = 0;
    for (size_t i = 0; i < ncand; i++)
        taken[i] = -1;
    for (size_t i = 0; i < ncand; i++) {
        sockaddr_set_port(&cand[i].ss, port);
        int k = find_bound(&cand[i], fds, nfds);
        if (k < 0)
            continue;
        lsock *s = &l->socks[l->n];
        if ((rc = adopt_socket(fds[k], o, s)) < 0)
            goto fail;
        taken[l->n++] = k;
        fds[k] = -1;
        ntaken++;
        if (port == 0)
            port = sockaddr_port(&s->addr);
    }
    if (ntaken == 0) {
        rc = -ENOENT;
        goto fail;
    }
    /* Addresses the process before did not have (a changed conf) are opened here. */
    for (size_t i = 0; i < ncand; i++) {
        candidate c = cand[i];
        sockaddr_set_port(&c.ss, port);
        bool have = false;
        for (size_t j = 0; j < l->n && !have; j++)
            have = sockaddr_equal(&l->socks[j].addr, &c.ss);
        if (have)
            continue;
        lsock *s = &l->socks[l->n];
        rc = open_socket(&c, o, s);
        if (rc == 0) {
            l->n++;
            continue;
        }
        /* as pt_listener_open(): an address this kernel cannot use is skipped */
        if (ncand > 1 && (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL))
            continue;
        goto fail;
    }
    finish(l);
    free(taken);
    free(cand);
    *out = l;
    return 0;
fail:
    /* What was taken goes back where it came from; what was opened here is closed. */
    for (size_t i = 0; l && i < l->n; i++) {
        if (taken && taken[i] >= 0)
            fds[taken[i]] = l->socks[i].fd;
        else
            close(l->socks[i].fd);
    }
    free(taken);
    free(l);
    free(cand);
    return rc;
}

size_t pt_listener_addresses(const pt_listener *l, struct sockaddr_storage *out, size_t max)
{
    for (size_t i = 0; i < l->n && i < max; i++)
        out[i] = l->socks[i].addr;
    return l->n;
}

int pt_listener_port(const pt_listener *l)
{
    return l->n > 0 ? sockaddr_port(&l->socks[0].addr) : -1;
}

size_t pt_listener_fds(const pt_listener *l, int *out, size_t max)
{
    for (size_t i = 0; i < l->n && i < max; i++)
        out[i] = l->socks[i].fd;
    return l->n;
}

/* Sets a TCP option to `value` on every socket of `l`. */
static int set_tcp_option(pt_listener *l, int option, int value)
{
    if (value < 0)
        return -EINVAL;
    for (size_t i = 0; i < l->n; i++)
        if (setsockopt(l->socks[i].fd, IPPROTO_TCP, option, &value, sizeof value) < 0)
            return -errno;
    return 0;
}

int pt_listener_set_defer_accept(pt_listener *l, int seconds)
{
    return set_tcp_option(l, TCP_DEFER_ACCEPT, seconds);
}

int pt_listener_set_notsent_lowat(pt_listener *l, int bytes)
{
    return set_tcp_option(l, TCP_NOTSENT_LOWAT, bytes); /* 0: back to the kernel's default */
}

void pt_listener_set_pressure_cb(pt_listener *l, pt_listener_pressure_cb cb)
{
    l->pressure_cb = cb;
}

void pt_listener_set_callbacks(pt_listener *l, pt_accept_cb cb, pt_listener_error_cb err_cb,
                               void *data)
{
    l->accept_cb = cb;
    l->error_cb = err_cb;
    l->data = data;
}

void pt_listener_start(pt_listener *l)
{
    l->started = true;
    update_watchers(l);
}

void pt_listener_pause(pt_listener *l)
{
    l->paused = true;
    update_watchers(l);
}

void pt_listener_resume(pt_listener *l)
{
    l->paused = false;
    update_watchers(l);
}

bool pt_listener_is_paused(const pt_listener *l)
{
    return l->paused;
}

bool pt_listener_accept_ready(const pt_listener *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (connection_waiting(l->socks[i].fd))
            return true;
    return false;
}

void pt_listener_close(pt_listener *l)
{
    if (l == NULL || l->closed)
        return;
    l->closed = true;
    update_watchers(l);
    ev_timer_stop(l->loop, &l->backoff_timer);
    close_sockets(l);
    if (l->busy == 0)
        free(l);
}

int pt_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    int n;

    if (sa == NULL)
        return -EINVAL;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        n = snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        char scope[IF_NAMESIZE + 2] = "";
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        if (in6->sin6_scope_id != 0) {
            char ifname[IF_NAMESIZE];
            if (if_indextoname(in6->sin6_scope_id, ifname) != NULL)
                snprintf(scope, sizeof scope, "%%%s", ifname);
            else
                snprintf(scope, sizeof scope, "%%%u", in6->sin6_scope_id);
        }
        n = snprintf(buf, len, "[%s%s]:%u", host, scope, ntohs(in6->sin6_port));
    } else {
        return -EAFNOSUPPORT;
    }
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return 0;
}
