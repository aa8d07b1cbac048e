/*
 * The metrics: what the stats board and the zones hold, as Prometheus scrapes it.
 *
 * Every family is written with its HELP and TYPE; a family whose every sample would be absent
 * (no upstream, no zone) is left out. Requests by method and status class list the pairs that
 * happened; histograms list every bucket, cumulative, +Inf last, with _sum and _count. The
 * OpenMetrics form names a counter's family without its _total, gives porter_build the info
 * type and ends with "# EOF"; bucket bounds are written in the form both parse back alike
 * ("1.0", "0.005").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/handlers/metrics.h"
#include "server/site/limiter.h"
#include "server/site/site.h"

#define TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* A first guess at the size: the fixed families, then per series (a server's histogram and
 * its busiest method/status pairs with long labels). Too small costs one more pass. */
#define METRICS_FIXED 16384
#define METRICS_PER_SERVER 8192
#define METRICS_PER_UPSTREAM 6144
#define METRICS_PER_ZONE 2048

typedef struct out {
    char *buf;
    size_t len, cap; /* len goes on counting past cap: the size a second pass needs */
    bool om;         /* OpenMetrics */
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + (o->len < o->cap ? o->len : o->cap),
                      o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static void putc_(out *o, char c)
{
    if (o->len < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

/* A label value, escaped as both formats say: backslash, double quote, newline. */
static void put_escaped(out *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            putc_(o, '\\');
            putc_(o, *s);
        } else if (*s == '\n') {
            putc_(o, '\\');
            putc_(o, 'n');
        } else {
            putc_(o, *s);
        }
    }
}

typedef struct label {
    const char *name, *value;
} label;

typedef enum kind { COUNTER, GAUGE, HISTOGRAM, INFO } kind;

/* The HELP and TYPE lines of a family; `name` is its samples' name (a counter's with _total,
 * an info's with _info), which OpenMetrics names the family without. */
static void family(out *o, const char *name, kind k, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "info"};
    size_t n = strlen(name);
    if (o->om) {
        if (k == COUNTER)
            n -= sizeof "_total" - 1;
        else if (k == INFO)
            n -= sizeof "_info" - 1;
        put(o, "# TYPE %.*s %s\n# HELP %.*s %s\n", (int)n, name, types[k], (int)n, name, help);
    } else {
        put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, k == INFO ? "gauge" : types[k]);
    }
}

static void labels(out *o, const label *ls, size_t n)
{
    if (!n)
        return;
    putc_(o, '{');
    for (size_t i = 0; i < n; i++) {
        put(o, "%s%s=\"", i ? "," : "", ls[i].name);
        put_escaped(o, ls[i].value);
        putc_(o, '"');
    }
    putc_(o, '}');
}

static void sample(out *o, const char *name, const char *suffix, const label *ls, size_t n,
                   uint64_t v)
{
    put(o, "%s%s", name, suffix);
    labels(o, ls, n);
    put(o, " %" PRIu64 "\n", v);
}

/* A family of one unlabelled sample. */
static void scalar(out *o, const char *name, kind k, const char *help, uint64_t v)
{
    family(o, name, k, help);
    sample(o, name, "", NULL, 0, v);
}

/* A bucket bound as Python's repr and Go's FormatFloat write it: "0.005", "1.0", "60.0". */
static void bound_text(double b, char *buf, size_t cap)
{
    snprintf(buf, cap, "%g", b);
    if (!strpbrk(buf, ".e"))
        strncat(buf, ".0", cap - strlen(buf) - 1);
}

/* The samples of one histogram (its family written before), with labels `ls` and le. */
static void histogram(out *o, const char *name, const label *ls, size_t n,
                      const pt_stats_histogram *h)
{
    label with[4];
    memcpy(with, ls, n * sizeof *ls);
    char le[32];
    with[n] = (label){"le", le};
    uint64_t count = 0;
    for (size_t i = 0; i < PT_STATS_BUCKETS; i++) {
        count += h->buckets[i];
        if (i < PT_STATS_BUCKETS - 1)
            bound_text(pt_stats_bounds[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        sample(o, name, "_bucket", with, n + 1, count);
    }
    put(o, "%s_sum", name);
    labels(o, ls, n);
    put(o, " %" PRIu64 ".%06" PRIu64 "\n", h->sum_us / 1000000, h->sum_us % 1000000);
    sample(o, name, "_count", ls, n, count);
}

static const char *const classes[PT_STATS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

/* ---- the families ---- */

static void servers(out *o, const pt_stats_board *b, pt_stats_server *s)
{
    size_t n = pt_stats_board_nservers(b);
    for (size_t i = 0; i < n; i++)
        pt_stats_board_sum_server(b, i, &s[i]);

    family(o, "porter_http_requests_total", COUNTER,
           "Requests answered, by server, method and status class.");
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < PT_STATS_METHODS; m++)
            for (size_t c = 0; c < PT_STATS_CLASSES; c++)
                if (s[i].requests[m][c]) {
                    label ls[] = {{"server", pt_stats_board_server_name(b, i)},
                                  {"method", pt_stats_methods[m]},
                                  {"status", classes[c]}};
                    sample(o, "porter_http_requests_total", "", ls, 3, s[i].requests[m][c]);
                }
    family(o, "porter_http_request_duration_seconds", HISTOGRAM,
           "Time from a request's first byte to its response complete, by server.");
    for (size_t i = 0; i < n; i++) {
        label ls[] = {{"server", pt_stats_board_server_name(b, i)}};
        histogram(o, "porter_http_request_duration_seconds", ls, 1, &s[i].duration);
    }
    family(o, "porter_http_received_bytes_total", COUNTER,
           "Bytes of the requests answered (request line, header and body), by server.");
    for (size_t i = 0; i < n; i++) {
        label ls[] = {{"server", pt_stats_board_server_name(b, i)}};
        sample(o, "porter_http_received_bytes_total", "", ls, 1, s[i].bytes_in);
    }
    family(o, "porter_http_sent_bytes_total", COUNTER,
           "Bytes of the responses (HTTP/1 head and body; HTTP/2 body), by server.");
    for (size_t i = 0; i < n; i++) {
        label ls[] = {{"server", pt_stats_board_server_name(b, i)}};
        sample(o, "porter_http_sent_bytes_total", "", ls, 1, s[i].bytes_out);
    }
}

static void connections(out *o, const pt_worker_stats *t, int workers)
{
    scalar(o, "porter_workers", GAUGE, "Worker processes reporting.", (uint64_t)workers);
    family(o, "porter_connections", GAUGE, "Client connections open, by state.");
    const struct {
        const char *state;
        uint64_t v;
    } states[] = {{"reading", t->reading},
                  {"writing", t->writing},
                  {"idle", t->idle},
                  {"lingering", t->lingering}};
    for (size_t i = 0; i < sizeof states / sizeof *states; i++) {
        label ls[] = {{"state", states[i].state}};
        sample(o, "porter_connections", "", ls, 1, states[i].v);
    }
    scalar(o, "porter_connections_parked", GAUGE,
           "Idle keep-alive connections parked: their socket kept, their memory given back.",
           t->parked);
    scalar(o, "porter_connections_draining", GAUGE,
           "Connections closing after their current response: those of workers a reload "
           "replaced, and all while porter stops.",
           t->draining);
    scalar(o, "porter_connections_accepted_total", COUNTER, "Client connections accepted.",
           t->accepted);
    scalar(o, "porter_connections_closed_total", COUNTER, "Client connections closed.", t->handled);
    scalar(o, "porter_connections_rejected_total", COUNTER,
           "Client connections closed at once on admission (max_concurrent, "
           "max_concurrent_per_client, draining).",
           t->rejected);
    scalar(o, "porter_invalid_requests_total", COUNTER,
           "Requests refused as malformed or over a limit (400, 408, 413, 414, 431, 501, 505).",
           t->invalid);
    scalar(o, "porter_connection_received_bytes_total", COUNTER,
           "Bytes read from client connections.", t->bytes_in);
    scalar(o, "porter_connection_sent_bytes_total", COUNTER, "Bytes written to client connections.",
           t->bytes_out);
    scalar(o, "porter_custodians", GAUGE, "Custodians live (connections, requests, servers).",
           t->custodians);
    scalar(o, "porter_timers", GAUGE, "Timers armed.", t->timers);
    scalar(o, "porter_file_cache_hits_total", COUNTER, "File cache lookups that hit.",
           t->cache_hits);
    scalar(o, "porter_file_cache_misses_total", COUNTER, "File cache lookups that missed.",
           t->cache_misses);
    scalar(o, "porter_file_cache_bytes", GAUGE, "Bytes the file cache holds.", t->cache_bytes);
    scalar(o, "porter_tls_handshakes_total", COUNTER, "TLS handshakes completed.",
           t->tls_handshakes);
    scalar(o, "porter_tls_resumptions_total", COUNTER,
           "TLS handshakes that resumed a session (session cache or ticket).", t->tls_resumed);
    scalar(o, "porter_tls_handshake_failures_total", COUNTER,
           "TLS connections that ended before their handshake completed.", t->tls_failed);
    scalar(o, "porter_http2_connections_total", COUNTER, "HTTP/2 connections.", t->h2_connections);
    scalar(o, "porter_http2_active_connections", GAUGE, "HTTP/2 connections open.", t->h2_live);
    scalar(o, "porter_http2_streams_total", COUNTER, "HTTP/2 streams (requests).", t->h2_streams);
    scalar(o, "porter_http2_resets_received_total", COUNTER, "RST_STREAM frames received.",
           t->h2_resets);
    scalar(o, "porter_http2_floods_total", COUNTER,
           "HTTP/2 connections closed for a flood (GOAWAY ENHANCE_YOUR_CALM).", t->h2_floods);
    scalar(o, "porter_http2_protocol_errors_total", COUNTER,
           "HTTP/2 connections closed for a protocol error.", t->h2_errors);
}

static void zones(out *o, const pt_limit_zones *zs)
{
    if (!zs || !zs->n)
        return;
    pt_zone_counters c[zs->n];
    size_t used[zs->n];
    for (size_t i = 0; i < zs->n; i++)
        pt_zone_stats(zs->z[i].zone, &c[i], &used[i]);
#define ZONE_LABELS(i)                                                                             \
    {"zone", zs->z[i].conf->name}, {"kind", zs->z[i].conf->conn ? "limit_conn" : "limit_req"}
    family(o, "porter_limit_requests_total", COUNTER, "Requests a limit counted, by zone.");
    for (size_t i = 0; i < zs->n; i++) {
        label ls[] = {ZONE_LABELS(i)};
        sample(o, "porter_limit_requests_total", "", ls, 2, c[i].requests);
    }
    family(o, "porter_limit_delayed_total", COUNTER,
           "Requests limit_req held to its rate (dry_run: would have held).");
    for (size_t i = 0; i < zs->n; i++) {
        if (zs->z[i].conf->conn)
            continue;
        label ls[] = {ZONE_LABELS(i), {"dry_run", "false"}};
        sample(o, "porter_limit_delayed_total", "", ls, 3, c[i].delayed);
        ls[2].value = "true";
        sample(o, "porter_limit_delayed_total", "", ls, 3, c[i].delayed_dry_run);
    }
    family(o, "porter_limit_rejected_total", COUNTER,
           "Requests a limit refused (dry_run: would have refused).");
    for (size_t i = 0; i < zs->n; i++) {
        label ls[] = {ZONE_LABELS(i), {"dry_run", "false"}};
        sample(o, "porter_limit_rejected_total", "", ls, 3, c[i].rejected);
        ls[2].value = "true";
        sample(o, "porter_limit_rejected_total", "", ls, 3, c[i].rejected_dry_run);
    }
    family(o, "porter_limit_active", GAUGE, "Requests limit_conn counts now, by zone.");
    for (size_t i = 0; i < zs->n; i++) {
        label ls[] = {ZONE_LABELS(i)};
        sample(o, "porter_limit_active", "", ls, 2, c[i].active);
    }
    family(o, "porter_limit_zone_entries", GAUGE, "Keys a zone holds.");
    for (size_t i = 0; i < zs->n; i++) {
        label ls[] = {ZONE_LABELS(i)};
        sample(o, "porter_limit_zone_entries", "", ls, 2, used[i]);
    }
    family(o, "porter_limit_zone_capacity", GAUGE, "Keys a zone has room for.");
    for (size_t i = 0; i < zs->n; i++) {
        label ls[] = {ZONE_LABELS(i)};
        sample(o, "porter_limit_zone_capacity", "", ls, 2, pt_zone_capacity(zs->z[i].zone));
    }
    family(o, "porter_limit_zone_full_total", COUNTER,
           "Requests refused for want of a free entry in the zone.");
    for (size_t i = 0; i < zs->n; i++) {
        label ls[] = {ZONE_LABELS(i)};
        sample(o, "porter_limit_zone_full_total", "", ls, 2, c[i].full);
    }
    family(o, "porter_limit_zone_evicted_total", COUNTER,
           "Entries limit_req reclaimed before they were idle.");
    for (size_t i = 0; i < zs->n; i++) {
        label ls[] = {ZONE_LABELS(i)};
        sample(o, "porter_limit_zone_evicted_total", "", ls, 2, c[i].evicted);
    }
#undef ZONE_LABELS
}

static const char *const states[] = {"up", "draining", "down"};

static void upstreams(out *o, const pt_stats_board *b, pt_stats_upstream *u)
{
    size_t n = pt_stats_board_nupstreams(b);
    if (!n)
        return;
    unsigned all = 0;
    for (size_t i = 0; i < n; i++) {
        pt_stats_board_sum_upstream(b, i, &u[i]);
        const char *a, *s;
        unsigned reports;
        pt_stats_board_upstream_names(b, i, &a, &s, &reports);
        all |= reports;
    }
#define UP_LABELS(i) {"upstream", up}, {"server", sv}
#define EACH(i)                                                                                    \
    const char *up, *sv;                                                                           \
    unsigned reports;                                                                              \
    pt_stats_board_upstream_names(b, i, &up, &sv, &reports)
    family(o, "porter_upstream_responses_total", COUNTER,
           "Attempts sent to an upstream server, by the class of their $upstream_status.");
    for (size_t i = 0; i < n; i++) {
        EACH(i);
        for (size_t c = 0; c < PT_STATS_CLASSES; c++)
            if (u[i].responses[c]) {
                label ls[] = {UP_LABELS(i), {"status", classes[c]}};
                sample(o, "porter_upstream_responses_total", "", ls, 3, u[i].responses[c]);
            }
    }
    family(o, "porter_upstream_response_duration_seconds", HISTOGRAM,
           "Time each attempt spent with an upstream server ($upstream_response_time).");
    for (size_t i = 0; i < n; i++) {
        EACH(i);
        label ls[] = {UP_LABELS(i)};
        histogram(o, "porter_upstream_response_duration_seconds", ls, 2, &u[i].response_time);
    }
    if (all & PT_STATS_REPORTS_STATE) {
        family(o, "porter_upstream_server_state", GAUGE,
               "1 for an upstream server's state (the worst any worker reports).");
        for (size_t i = 0; i < n; i++) {
            EACH(i);
            if (!(reports & PT_STATS_REPORTS_STATE) || !u[i].state)
                continue;
            for (size_t k = 0; k < 3; k++) {
                label ls[] = {UP_LABELS(i), {"state", states[k]}};
                sample(o, "porter_upstream_server_state", "", ls, 3, u[i].state == k + 1);
            }
        }
    }
    if (all & PT_STATS_REPORTS_ACTIVE) {
        family(o, "porter_upstream_active_connections", GAUGE,
               "Connections to an upstream server in use now.");
        for (size_t i = 0; i < n; i++) {
            EACH(i);
            label ls[] = {UP_LABELS(i)};
            if (reports & PT_STATS_REPORTS_ACTIVE)
                sample(o, "porter_upstream_active_connections", "", ls, 2, u[i].active);
        }
    }
    if (all & PT_STATS_REPORTS_FAILURES) {
        family(o, "porter_upstream_failures_total", COUNTER,
               "Attempts that failed: connect error, timeout, invalid answer.");
        for (size_t i = 0; i < n; i++) {
            EACH(i);
            label ls[] = {UP_LABELS(i)};
            if (reports & PT_STATS_REPORTS_FAILURES)
                sample(o, "porter_upstream_failures_total", "", ls, 2, u[i].failures);
        }
    }
    if (all & PT_STATS_REPORTS_HEALTH) {
        family(o, "porter_upstream_health_checks_total", COUNTER,
               "Active health checks of an upstream server, by result.");
        for (size_t i = 0; i < n; i++) {
            EACH(i);
            if (!(reports & PT_STATS_REPORTS_HEALTH))
                continue;
            label ls[] = {UP_LABELS(i), {"result", "passed"}};
            sample(o, "porter_upstream_health_checks_total", "", ls, 3, u[i].health_passed);
            ls[2].value = "failed";
            sample(o, "porter_upstream_health_checks_total", "", ls, 3, u[i].health_failed);
        }
    }
#undef EACH
#undef UP_LABELS
}

/* ---- content negotiation ---- */

/* The q of an Accept element's parameters ("; q=0.5"; none: 1). */
static double q_of(const char *p, const char *end)
{
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            return 1;
        p = semi + 1;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            char num[16];
            size_t n = 0;
            for (p += 2; p < end && n < sizeof num - 1 && *p != ';' && *p != ' '; p++)
                num[n++] = *p;
            num[n] = '\0';
            return strtod(num, NULL);
        }
    }
    return 1;
}

/* Whether the client prefers OpenMetrics: its Accept names application/openmetrics-text with a
 * q above 0 and not below that of text/plain (or of a range covering it), as Prometheus asks. */
static bool wants_openmetrics(const pt_request *req)
{
    const pt_header *h = pt_request_header(req, "accept");
    if (!h)
        return false;
    double om = 0, plain = 0;
    const char *v = h->value.p;
    size_t len = h->value.len, at = 0;
    while (at < len) {
        /* one element: [at, stop), its media type [at, type_end) */
        size_t stop = at;
        while (stop < len && v[stop] != ',')
            stop++;
        while (at < stop && (v[at] == ' ' || v[at] == '\t'))
            at++;
        size_t type_end = at;
        while (type_end < stop && v[type_end] != ';')
            type_end++;
        double q = q_of(v + type_end, v + stop);
        while (type_end > at && (v[type_end - 1] == ' ' || v[type_end - 1] == '\t'))
            type_end--;
        const char *type = v + at;
        size_t tl = type_end - at;
        if (tl == 28 && strncasecmp(type, "application/openmetrics-text", tl) == 0)
            om = q > om ? q : om;
        else if ((tl == 10 && strncasecmp(type, "text/plain", tl) == 0) ||
                 (tl == 6 && strncasecmp(type, "text/*", tl) == 0) ||
                 (tl == 3 && strncmp(type, "*/*", tl) == 0))
            plain = q > plain ? q : plain;
        at = stop + 1;
    }
    return om > 0 && om >= plain;
}

/* ---- the handler ---- */

static void render(out *o, pt_stats_board *b, const pt_limit_zones *zs, pt_stats_server *sv,
                   pt_stats_upstream *up)
{
    family(o, "porter_build_info", INFO, "The version of porter answering.");
    label version[] = {{"version", PORTER_VERSION}};
    sample(o, "porter_build_info", "", version, 1, 1);
    pt_worker_stats total;
    int workers = pt_stats_board_total(b, &total);
    connections(o, &total, workers);
    servers(o, b, sv);
    upstreams(o, b, up);
    zones(o, zs);
    if (o->om)
        put(o, "# EOF\n");
}

void pt_metrics_handle(pt_request *req)
{
    if (req->method_id != PT_METHOD_GET && req->method_id != PT_METHOD_HEAD) {
        pt_request_respond_error(req, 405);
        return;
    }
    int nslots, self;
    pt_stats_board *b = req->vhost->stats_board(req->vhost->server, &nslots, &self);
    const pt_limit_zones *zs = req->vhost->zones;
    size_t nservers = pt_stats_board_nservers(b), nups = pt_stats_board_nupstreams(b);
    pt_stats_server *sv = pt_request_alloc_large(req, (nservers ? nservers : 1) * sizeof *sv);
    pt_stats_upstream *up = pt_request_alloc_large(req, (nups ? nups : 1) * sizeof *up);
    out o = {.om = wants_openmetrics(req)};
    o.cap = METRICS_FIXED + nservers * METRICS_PER_SERVER + nups * METRICS_PER_UPSTREAM +
            (zs ? zs->n : 0) * METRICS_PER_ZONE;
    /* The counters move between passes: a second one that finds it short has room to spare. */
    for (int pass = 0; pass < 3 && sv && up; pass++) {
        if (!(o.buf = pt_request_alloc_large(req, o.cap)))
            break;
        o.len = 0;
        render(&o, b, zs, sv, up);
        if (o.len < o.cap) {
            pt_response r;
            pt_response_init(&r, 200);
            r.content_type = o.om ? OPENMETRICS_TYPE : TEXT_TYPE;
            r.body = o.buf;
            r.body_len = o.len;
            r.extra_headers = PT_STR_LIT("Cache-Control: no-store\r\nVary: Accept\r\n");
            pt_request_respond(req, &r);
            return;
        }
        o.cap = o.len + o.len / 4 + 4096;
    }
    pt_request_respond_error(req, 500);
}

/* ---- what the server asks while it builds the board ---- */

const char *pt_metrics_server_label(const pt_conf_server *cs, char *buf, size_t cap)
{
    if (cs->nnames) {
        snprintf(buf, cap, "%s", cs->names[0]);
    } else if (cs->nlistens) {
        const pt_conf_listen *l = &cs->listens[0];
        const char *host = l->host ? l->host : "*";
        snprintf(buf, cap, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, l->port);
    } else {
        snprintf(buf, cap, "%s", "");
    }
    return buf;
}

int pt_metrics_add_upstreams(pt_stats_board *b, pt_upstreams *u, const pt_conf *conf)
{
    char err[256];
    for (size_t i = 0; i < conf->nservers; i++) {
        const pt_conf_server *cs = &conf->servers[i];
        for (size_t j = 0; j < cs->nlocations; j++) {
            const pt_conf_location *lc = &cs->locations[j];
            if (lc->handler != PT_HANDLER_PROXY)
                continue;
            pt_upstream *up = pt_upstreams_get(u, &lc->proxy, lc, err, sizeof err);
            for (size_t k = 0; up && k < up->npeers; k++) {
                const pt_upstream_peer *p = &up->peers[k];
                int r = pt_stats_board_add_upstream(b, up->name, p->name, p->name, 0);
                if (r < 0)
                    return r;
            }
        }
    }
    return 0;
}
