/*
 * The HTTP/1 protocol (server/http1/conn.c and head.c, the real ones) over pair connections,
 * reaching a site of the test's own: a connection manager runs pt_http1_proto, every admitted
 * connection is attached with site ops whose `select` gives each request the vhost built from
 * the test's conf text (tests/support/vhost.h) as server.c's does, and whose `route` is the
 * test's. The test writes requests into the pipe, runs the loop, and compares what came out
 * with the exact bytes it expects.
 *
 * What the harness adds to see inside: the writes the connection made (its transport's writev
 * and sendfile calls, counted by wrapping the pair transport's operations), the requests that
 * reached select and route, and the time the test started, to check a Date header by. A
 * template of an expected response says "{date}" where a Date header's value goes: every
 * Date value in the output must be an IMF-fixdate (RFC 9110 section 5.6.7) of a second since
 * the test started, and is then compared as "{date}".
 *
 * Include after cmocka and tests/support.h. One harness at a time per program (the wrapped
 * transport operations find it through a static pointer).
 */
#ifndef PORTER_TESTS_SUPPORT_HTTP1_H
#define PORTER_TESTS_SUPPORT_HTTP1_H

#include <string.h>
#include <time.h>

#include "connmgr/connmgr.h"
#include "server/http1/conn.h"
#include "tests/support/pair.h"
#include "tests/support/vhost.h"

#define H1_OUT_MAX (256 * 1024)

typedef struct h1_site h1_site;

struct h1_site {
    struct ev_loop *loop;
    pt_connmgr *m;
    test_vhost tv;                  /* what select gives every request */
    void (*route)(pt_request *req); /* the test's */
    void *data;                     /* the test's, for its handlers */
    pt_site_ops ops;                /* select (the harness's) and route (the test's, counted) */
    unsigned selects, routes;       /* requests that reached them */
    pt_request *last;               /* the request routed last (valid while it lives) */
    pt_conn *c;                     /* the connection of h1_connect */
    pair_client p;                  /* its client */
    pt_transport_ops counting;      /* the pair transport's operations, writes counted */
    const pt_transport_ops *real;   /* the pair transport's own */
    unsigned writes;                /* writev and sendfile calls that wrote something */
    time_t t0;                      /* when the harness opened (Date checks) */
    char out[H1_OUT_MAX];           /* what the connection wrote and the test has not taken */
    size_t out_len;
};

static h1_site *h1_current;

static inline void h1_select(void *data, pt_request *req)
{
    h1_site *h = data;
    const pt_vhost *vh = &h->tv.vh;
    h->selects++;
    pt_vhost_apply(vh, req);
}

static inline void h1_route(pt_request *req)
{
    h1_current->routes++;
    h1_current->last = req;
    h1_current->route(req);
}

static inline void h1_on_admit(pt_conn *c, void *data)
{
    h1_site *h = data;
    pt_http1_conn_attach(c, &h->ops, h, false);
}

static inline ssize_t h1_counting_writev(pt_transport *t, const struct iovec *iov, int n)
{
    ssize_t r = h1_current->real->writev(t, iov, n);
    h1_current->writes += r > 0;
    return r;
}

static inline ssize_t h1_counting_sendfile(pt_transport *t, int fd, off_t *off, size_t len)
{
    ssize_t r = h1_current->real->sendfile(t, fd, off, len);
    h1_current->writes += r > 0;
    return r;
}

/* Opens the harness `h` on a new loop: the vhost of `conf` (relative paths from `prefix`;
 * `files`: with a MIME table and file cache, see vhost_build), whose limits the connection
 * manager takes as server.c's does, and `route` for every request. The test has called
 * nothing_left_begin(). */
static inline void h1_open(h1_site *h, const char *conf, const char *prefix, bool files,
                           void (*route)(pt_request *req))
{
    memset(h, 0, sizeof *h);
    h1_current = h;
    h->t0 = (time_t)ev_time();
    h->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(h->loop);
    char err[512];
    if (vhost_build(&h->tv, conf, prefix, files, err, sizeof err) < 0)
        fail_msg("%s", err);
    h->route = route;
    h->ops = (pt_site_ops){.select = h1_select, .route = h1_route};
    pt_connmgr_options o;
    pt_connmgr_options_init(&o);
    o.limits = &h->tv.vh.limits;
    o.proto = &pt_http1_proto;
    o.proto_size = pt_http1_conn_size();
    o.on_admit = h1_on_admit;
    o.data = h;
    assert_int_equal(pt_connmgr_new(&h->m, h->loop, &o), 0);
    h->p.to_conn = h->p.from_conn = -1;
}

/* Admits a connection over a new pair (h->c, h->p) that reads `first` (NULL: nothing) as it
 * is made (pair_connect_sending), its writes counted from here on. */
static inline pt_conn *h1_connect_sending(h1_site *h, const char *first)
{
    h->c = pair_connect_sending(h->m, &h->p, first);
    assert_non_null(h->c);
    h->real = h->c->transport.ops;
    h->counting = *h->real;
    h->counting.writev = h1_counting_writev;
    h->counting.sendfile = h1_counting_sendfile;
    h->c->transport.ops = &h->counting;
    h->writes = 0;
    return h->c;
}

/* A connection over a new pair that has read nothing yet. */
static inline pt_conn *h1_connect(h1_site *h)
{
    return h1_connect_sending(h, NULL);
}

/* Takes what the connection wrote into h->out. */
static inline void h1_recv(h1_site *h)
{
    if (h->p.from_conn >= 0)
        pair_recv(&h->p, h->out, &h->out_len, sizeof h->out);
}

/* Runs the loop without waiting, a few iterations, taking the output after each: whatever
 * the bytes already written to the pipe make happen, happens (their readiness is immediate). */
static inline void h1_pump(h1_site *h)
{
    for (int i = 0; i < 8; i++) {
        ev_run(h->loop, EVRUN_NOWAIT);
        h1_recv(h);
    }
}

/* Sends `text` on the connection and pumps. */
static inline void h1_send(h1_site *h, const char *text)
{
    pair_send(&h->p, text);
    h1_pump(h);
}

static inline bool h1_output_or_eof(void *data)
{
    h1_site *h = data;
    h1_recv(h);
    return h->p.eof;
}

/* Runs the loop (waiting) until the connection's write side has closed, taking the output;
 * fails the test if that takes `secs` (a watchdog: timers the test set run in between). */
static inline void h1_run_until_eof(h1_site *h, double secs)
{
    if (!loop_run_until(h->loop, h1_output_or_eof, h, secs))
        fail_msg("the connection did not close within %.1f s", secs);
}

/* Checks every Date value in `s` (an IMF-fixdate of a second between the harness's start and
 * now) and replaces it with "{date}" in `out`. */
static inline void h1_mask_dates(const h1_site *h, const char *s, size_t len, char *out, size_t cap)
{
    static const char tag[] = "\r\nDate: ";
    size_t o = 0;
    time_t now = (time_t)ev_time(); /* the loop's clock: time() may lag it a tick */
    for (size_t i = 0; i < len;) {
        if (len - i >= sizeof tag - 1 + 31 && memcmp(s + i, tag, sizeof tag - 1) == 0) {
            const char *v = s + i + sizeof tag - 1;
            struct tm tm = {0};
            char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            if (!end || end - v != 29 || memcmp(end, "\r\n", 2) != 0)
                fail_msg("not an IMF-fixdate: %.31s", v);
            char again[32];
            strftime(again, sizeof again, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            if (memcmp(again, v, 29) != 0)
                fail_msg("not an IMF-fixdate: %.29s (is %s)", v, again);
            time_t t = timegm(&tm);
            if (t < h->t0 || t > now)
                fail_msg("Date %.29s is not a second of this test", v);
            assert_true(o + sizeof tag - 1 + 6 < cap);
            memcpy(out + o, tag, sizeof tag - 1);
            memcpy(out + o + sizeof tag - 1, "{date}", 6);
            o += sizeof tag - 1 + 6;
            i += sizeof tag - 1 + 29;
            continue;
        }
        assert_true(o + 1 < cap);
        out[o++] = s[i++];
    }
    out[o] = '\0';
}

/* Asserts that the output taken so far is exactly `expected` (a template: "{date}" for Date
 * values), and forgets it. */
#define h1_expect(h, expected) h1_expect_at(h, expected, __FILE__, __LINE__)

static inline void h1_expect_at(h1_site *h, const char *expected, const char *file, int line)
{
    static char masked[H1_OUT_MAX + 64];
    h1_recv(h);
    h1_mask_dates(h, h->out, h->out_len, masked, sizeof masked);
    if (strcmp(masked, expected) != 0)
        fail_msg("%s:%d: the output is\n---\n%s\n---\nnot\n---\n%s\n---", file, line, masked,
                 expected);
    h->out_len = 0;
    h->out[0] = '\0';
}

/* Whether the connection of h1_connect is still live in its manager. */
static inline size_t h1_live(const h1_site *h)
{
    pt_connmgr_stats st;
    pt_connmgr_get_stats(h->m, &st);
    return st.live;
}

/* Closes the client, frees the manager and the vhost, and asserts nothing is left (the loop
 * is destroyed). */
static inline void h1_close(h1_site *h)
{
    pair_client_close(&h->p);
    pt_connmgr_free(h->m);
    vhost_unbuild(&h->tv);
    pt_custodian_reap();
    pt_chunk_pool_trim();
    h1_current = NULL;
    assert_nothing_left(h->loop);
}

#endif
