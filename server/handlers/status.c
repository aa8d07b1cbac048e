/*
 * The status page (`location /porter-status { status; }`): connections by state, custodians,
 * timers, accepted/handled/rejected, requests (and those refused as invalid) and bytes, the file
 * cache, HTTP/2 and TLS, per worker and in total; the requests of each server (by status class
 * and method, their durations, bytes); the upstream servers the proxy counted attempts against
 * (and what the upstream side reports of them); and the shared zones of limit_req and limit_conn
 * with what they counted, delayed and refused (the zones' own counters, which every worker
 * shares). The same numbers as the metrics (handlers/metrics.c). JSON when the client asks for
 * it (Accept: application/json, or ?format=json), a small HTML page otherwise, whose script
 * fetches the JSON every 2 seconds and writes the numbers into their cells (each names its
 * field: data-k); when workers, servers, upstreams or zones come or go it loads the page again.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connmgr/conn.h"
#include "server/handlers/status.h"
#include "server/handlers/upstream.h"
#include "server/site/limiter.h"
#include "server/site/site.h"
#include "server/core/stats.h"

/* The page's size: its fixed part, then at most this much per worker, per zone, per server and
 * per upstream server (a worker's JSON object with every counter at 20 digits is about 1100
 * bytes, its HTML rows with their data-k names about twice that; a server's rows with a long
 * name escaped, about 6 kB). */
#define STATUS_FIXED 8192
#define STATUS_PER_WORKER 4096
#define STATUS_PER_ZONE 2048
#define STATUS_PER_SERIES 8192

typedef struct out {
    char *buf;
    size_t len, cap;
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

static void put_str(out *o, const char *s)
{
    put(o, "%s", s);
}

/* `s` as a JSON string's contents. */
static void put_json(out *o, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(o, "\\%c", c);
        else if (c < 0x20)
            put(o, "\\u%04x", c);
        else
            put(o, "%c", c);
    }
}

/* `s` as HTML text (a server_name regex may hold < and &). */
static void put_html(out *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            put_str(o, "&lt;");
            break;
        case '>':
            put_str(o, "&gt;");
            break;
        case '&':
            put_str(o, "&amp;");
            break;
        case '"':
            put_str(o, "&quot;");
            break;
        default:
            put(o, "%c", *s);
        }
    }
}

static bool wants_json(const pt_request *req)
{
    if (req->query.len >= 11 && memmem(req->query.p, req->query.len, "format=json", 11))
        return true;
    const pt_header *h = pt_request_header(req, "accept");
    return h && memmem(h->value.p, h->value.len, "application/json", 16);
}

/* ---- a worker's counters: one table says where each is in the JSON and in the HTML ---- */

#define W(field) offsetof(pt_worker_stats, field)

typedef struct column {
    const char *head; /* the HTML column */
    const char *key;  /* its field in a worker's JSON object ("connections.active") */
    size_t off;       /* its counter in pt_worker_stats */
} column;

/* The HTML tables of the workers, each a row per worker and one of totals; the Connections
 * table starts with pid and uptime. */
static const struct {
    const char *title;
    column cols[12];
} worker_tables[] = {
    {"Connections",
     {{"active", "connections.active", W(live)},
      {"reading", "connections.reading", W(reading)},
      {"writing", "connections.writing", W(writing)},
      {"idle", "connections.idle", W(idle)},
      {"parked", "connections.parked", W(parked)},
      {"lingering", "connections.lingering", W(lingering)},
      {"draining", "connections.draining", W(draining)},
      {"accepted", "accepted", W(accepted)},
      {"handled", "handled", W(handled)},
      {"rejected", "rejected", W(rejected)}}},
    {"Requests",
     {{"requests", "requests", W(requests)},
      {"invalid", "invalid_requests", W(invalid)},
      {"bytes in", "bytes_in", W(bytes_in)},
      {"bytes out", "bytes_out", W(bytes_out)},
      {"custodians", "custodians", W(custodians)},
      {"timers", "timers", W(timers)}}},
    {"File cache",
     {{"hits", "file_cache.hits", W(cache_hits)},
      {"misses", "file_cache.misses", W(cache_misses)},
      {"bytes", "file_cache.bytes", W(cache_bytes)}}},
    {"HTTP/2",
     {{"connections", "http2.connections", W(h2_connections)},
      {"active", "http2.active", W(h2_live)},
      {"streams", "http2.streams", W(h2_streams)},
      {"resets received", "http2.resets_received", W(h2_resets)},
      {"floods refused", "http2.floods", W(h2_floods)},
      {"protocol errors", "http2.protocol_errors", W(h2_errors)}}},
    {"TLS",
     {{"handshakes", "tls.handshakes", W(tls_handshakes)},
      {"resumed", "tls.resumed", W(tls_resumed)},
      {"failed", "tls.failed", W(tls_failed)}}},
};

#define NTABLES (sizeof worker_tables / sizeof *worker_tables)

static uint64_t counter(const pt_worker_stats *w, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)w + off, sizeof v);
    return v;
}

/* A worker's (or the totals') counters as JSON members: "a":1,"b":{"c":2,...},... from the
 * tables, each group ("connections.") an object of its own. */
static void json_counters(out *o, const pt_worker_stats *w)
{
    const char *group = NULL; /* the open object's name, with its dot */
    size_t glen = 0;
    bool first = true;
    for (size_t t = 0; t < NTABLES; t++) {
        for (const column *c = worker_tables[t].cols; c->head; c++) {
            const char *dot = strchr(c->key, '.');
            size_t len = dot ? (size_t)(dot - c->key) + 1 : 0;
            if (group && (len != glen || strncmp(group, c->key, glen) != 0)) {
                put_str(o, "}");
                group = NULL;
            }
            if (dot && !group) {
                put(o, "%s\"%.*s\":{", first ? "" : ",", (int)(len - 1), c->key);
                group = c->key;
                glen = len;
                first = true;
            }
            put(o, "%s\"%s\":%" PRIu64, first ? "" : ",", c->key + len, counter(w, c->off));
            first = false;
        }
    }
    if (group)
        put_str(o, "}");
}

/* "3d 04h 05m 06s", "5m 06s", "6s" (the page's script writes the same). */
static void uptime_text(char *buf, size_t cap, double secs)
{
    uint64_t t = secs > 0 ? (uint64_t)(secs + 0.5) : 0;
    uint64_t d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, s = t % 60;
    if (d)
        snprintf(buf, cap, "%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", d, h, m, s);
    else if (h)
        snprintf(buf, cap, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", h, m, s);
    else if (m)
        snprintf(buf, cap, "%" PRIu64 "m %02" PRIu64 "s", m, s);
    else
        snprintf(buf, cap, "%" PRIu64 "s", s);
}

/* A cell whose number the page's script keeps current: the field `fmt`... names in the JSON. */
static void cell(out *o, uint64_t v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cell(out *o, uint64_t v, const char *fmt, ...)
{
    char key[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    put(o, "<td data-k=\"%s\">%" PRIu64 "</td>", key, v);
}

/* A worker's row of table `t`: `at` its place in the JSON ("workers.0", or "total", which has
 * no pid nor uptime). */
static void html_row(out *o, size_t t, const char *name, const char *at, const pt_worker_stats *w,
                     double uptime)
{
    put(o, "<tr><th>%s</th>", name);
    if (t == 0) {
        if (w->pid) {
            char up[48];
            uptime_text(up, sizeof up, uptime);
            put(o,
                "<td data-k=\"%s.pid\">%d</td><td data-k=\"%s.uptime\" data-f=\"uptime\">%s</td>",
                at, (int)w->pid, at, up);
        } else {
            put_str(o, "<td></td><td></td>");
        }
    }
    for (const column *c = worker_tables[t].cols; c->head; c++)
        cell(o, counter(w, c->off), "%s.%s", at, c->key);
    put_str(o, "</tr>\n");
}

/* ---- servers and upstream servers: the board's series, summed ---- */

static const char *const classes[PT_STATS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const states[] = {"unknown", "up", "draining", "down"};

static void json_histogram(out *o, const pt_stats_histogram *h)
{
    uint64_t n = 0;
    put(o, "{\"count\":%" PRIu64 ",\"sum\":%" PRIu64 ".%06" PRIu64 ",\"buckets\":[",
        pt_stats_histogram_count(h), h->sum_us / 1000000, h->sum_us % 1000000);
    for (size_t i = 0; i < PT_STATS_BUCKETS; i++) {
        n += h->buckets[i];
        put(o, "%s%" PRIu64, i ? "," : "", n);
    }
    put_str(o, "]}");
}

static void json_server(out *o, const char *name, const pt_stats_server *s)
{
    put_str(o, "{\"name\":\"");
    put_json(o, name);
    put(o, "\",\"requests\":%" PRIu64 ",\"statuses\":{", pt_stats_server_requests(s));
    for (size_t c = 0; c < PT_STATS_CLASSES; c++) {
        uint64_t n = 0;
        for (size_t m = 0; m < PT_STATS_METHODS; m++)
            n += s->requests[m][c];
        put(o, "%s\"%s\":%" PRIu64, c ? "," : "", classes[c], n);
    }
    put_str(o, "},\"methods\":{");
    for (size_t m = 0; m < PT_STATS_METHODS; m++) {
        uint64_t n = 0;
        for (size_t c = 0; c < PT_STATS_CLASSES; c++)
            n += s->requests[m][c];
        put(o, "%s\"%s\":%" PRIu64, m ? "," : "", pt_stats_methods[m], n);
    }
    put(o, "},\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"duration\":", s->bytes_in,
        s->bytes_out);
    json_histogram(o, &s->duration);
    put_str(o, "}");
}

static void json_upstream(out *o, const char *up, const char *server, unsigned reports,
                          const pt_stats_upstream *u)
{
    put_str(o, "{\"upstream\":\"");
    put_json(o, up);
    put_str(o, "\",\"server\":\"");
    put_json(o, server);
    put_str(o, "\"");
    if (reports & PT_STATS_REPORTS_STATE)
        put(o, ",\"state\":\"%s\"", states[u->state < 4 ? u->state : 0]);
    if (reports & PT_STATS_REPORTS_ACTIVE)
        put(o, ",\"active\":%" PRIu64, u->active);
    put_str(o, ",\"responses\":{");
    for (size_t c = 0; c < PT_STATS_CLASSES; c++)
        put(o, "%s\"%s\":%" PRIu64, c ? "," : "", classes[c], u->responses[c]);
    put_str(o, "}");
    if (reports & PT_STATS_REPORTS_FAILURES)
        put(o, ",\"failures\":%" PRIu64, u->failures);
    if (reports & PT_STATS_REPORTS_HEALTH)
        put(o, ",\"health_checks\":{\"passed\":%" PRIu64 ",\"failed\":%" PRIu64 "}",
            u->health_passed, u->health_failed);
    put_str(o, ",\"response_time\":");
    json_histogram(o, &u->response_time);
    put_str(o, "}");
}

/* "1ms", "2.5ms", "1s", "60s": a bucket's bound in a column head. */
static void bound_head(out *o, double b)
{
    if (b < 1)
        put(o, "<th>&le;%gms</th>", b * 1000);
    else
        put(o, "<th>&le;%gs</th>", b);
}

static void html_histogram_cells(out *o, const char *at, const pt_stats_histogram *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i < PT_STATS_BUCKETS - 1; i++) {
        n += h->buckets[i];
        cell(o, n, "%s.buckets.%zu", at, i);
    }
    cell(o, pt_stats_histogram_count(h), "%s.count", at); /* +Inf's */
    put(o, "<td data-k=\"%s.sum\" data-f=\"sum\">%" PRIu64 ".%06" PRIu64 "</td>", at,
        h->sum_us / 1000000, h->sum_us % 1000000);
}

static void html_histogram_head(out *o, const char *title, const char *first)
{
    put(o, "<h2>%s</h2>\n<table class=\"h\">\n<tr>%s", title, first);
    for (size_t i = 0; i < PT_STATS_BUCKETS - 1; i++)
        bound_head(o, pt_stats_bounds[i]);
    put_str(o, "<th>all</th><th>sum (s)</th></tr>\n");
}

static void html_servers(out *o, const pt_stats_board *b, const pt_stats_server *sv, size_t n)
{
    put_str(o, "<h2>Servers</h2>\n<table>\n<tr><th>server</th><th>requests</th>");
    for (size_t c = 0; c < PT_STATS_CLASSES; c++)
        put(o, "<th>%s</th>", classes[c]);
    put_str(o, "<th>bytes in</th><th>bytes out</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        put_str(o, "<tr><th>");
        put_html(o, pt_stats_board_server_name(b, i));
        put_str(o, "</th>");
        cell(o, pt_stats_server_requests(&sv[i]), "servers.%zu.requests", i);
        for (size_t c = 0; c < PT_STATS_CLASSES; c++) {
            uint64_t k = 0;
            for (size_t m = 0; m < PT_STATS_METHODS; m++)
                k += sv[i].requests[m][c];
            cell(o, k, "servers.%zu.statuses.%s", i, classes[c]);
        }
        cell(o, sv[i].bytes_in, "servers.%zu.bytes_in", i);
        cell(o, sv[i].bytes_out, "servers.%zu.bytes_out", i);
        put_str(o, "</tr>\n");
    }
    put_str(o, "</table>\n<h2>Methods</h2>\n<table>\n<tr><th>server</th>");
    for (size_t m = 0; m < PT_STATS_METHODS; m++)
        put(o, "<th>%s</th>", pt_stats_methods[m]);
    put_str(o, "</tr>\n");
    for (size_t i = 0; i < n; i++) {
        put_str(o, "<tr><th>");
        put_html(o, pt_stats_board_server_name(b, i));
        put_str(o, "</th>");
        for (size_t m = 0; m < PT_STATS_METHODS; m++) {
            uint64_t k = 0;
            for (size_t c = 0; c < PT_STATS_CLASSES; c++)
                k += sv[i].requests[m][c];
            cell(o, k, "servers.%zu.methods.%s", i, pt_stats_methods[m]);
        }
        put_str(o, "</tr>\n");
    }
    put_str(o, "</table>\n");
    html_histogram_head(o, "Request durations", "<th>server</th>");
    for (size_t i = 0; i < n; i++) {
        char at[48];
        snprintf(at, sizeof at, "servers.%zu.duration", i);
        put_str(o, "<tr><th>");
        put_html(o, pt_stats_board_server_name(b, i));
        put_str(o, "</th>");
        html_histogram_cells(o, at, &sv[i].duration);
        put_str(o, "</tr>\n");
    }
    put_str(o, "</table>\n");
}

/* The first cells of an upstream server's rows: its upstream and its address. */
static void upstream_names(out *o, const pt_stats_board *b, size_t i)
{
    const char *up, *server;
    unsigned reports;
    pt_stats_board_upstream_names(b, i, &up, &server, &reports);
    put_str(o, "<tr><th>");
    put_html(o, up);
    put_str(o, "</th><td>");
    put_html(o, server);
    put_str(o, "</td>");
}

static void html_upstreams(out *o, const pt_stats_board *b, const pt_stats_upstream *u, size_t n)
{
    if (!n)
        return;
    put_str(o, "<h2>Upstreams</h2>\n<table>\n<tr><th>upstream</th><th>server</th><th>state</th>"
               "<th>active</th>");
    for (size_t c = 0; c < PT_STATS_CLASSES; c++)
        put(o, "<th>%s</th>", classes[c]);
    put_str(o, "<th>failures</th><th>checks passed</th><th>checks failed</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        const char *up, *server;
        unsigned reports;
        pt_stats_board_upstream_names(b, i, &up, &server, &reports);
        upstream_names(o, b, i);
        /* What the upstream side does not report stays empty, here as in the JSON. */
        if (reports & PT_STATS_REPORTS_STATE)
            put(o, "<td data-k=\"upstreams.%zu.state\">%s</td>", i,
                states[u[i].state < 4 ? u[i].state : 0]);
        else
            put(o, "<td data-k=\"upstreams.%zu.state\"></td>", i);
        if (reports & PT_STATS_REPORTS_ACTIVE)
            cell(o, u[i].active, "upstreams.%zu.active", i);
        else
            put(o, "<td data-k=\"upstreams.%zu.active\"></td>", i);
        for (size_t c = 0; c < PT_STATS_CLASSES; c++)
            cell(o, u[i].responses[c], "upstreams.%zu.responses.%s", i, classes[c]);
        if (reports & PT_STATS_REPORTS_FAILURES)
            cell(o, u[i].failures, "upstreams.%zu.failures", i);
        else
            put(o, "<td data-k=\"upstreams.%zu.failures\"></td>", i);
        if (reports & PT_STATS_REPORTS_HEALTH) {
            cell(o, u[i].health_passed, "upstreams.%zu.health_checks.passed", i);
            cell(o, u[i].health_failed, "upstreams.%zu.health_checks.failed", i);
        } else {
            put(o,
                "<td data-k=\"upstreams.%zu.health_checks.passed\"></td>"
                "<td data-k=\"upstreams.%zu.health_checks.failed\"></td>",
                i, i);
        }
        put_str(o, "</tr>\n");
    }
    put_str(o, "</table>\n");
    html_histogram_head(o, "Upstream response times", "<th>upstream</th><th>server</th>");
    for (size_t i = 0; i < n; i++) {
        char at[48];
        snprintf(at, sizeof at, "upstreams.%zu.response_time", i);
        upstream_names(o, b, i);
        html_histogram_cells(o, at, &u[i].response_time);
        put_str(o, "</tr>\n");
    }
    put_str(o, "</table>\n");
}

/* ---- zones ---- */

static void zone_rows(out *o, const pt_limit_zones *zs, bool json, int part);

/* The server's zones: their entries and counters. */
static void zones(out *o, const pt_limit_zones *zs, bool json)
{
    if (!zs) {
        if (json)
            put(o, ",\"zones\":[]");
        return;
    }
    if (json)
        put(o, ",\"zones\":[");
    /* In HTML two tables, of the zones and of what they counted, so that each fits. */
    for (int part = 0; part < (json ? 1 : 2); part++) {
        if (!json)
            put(o, part == 0 ? "<h2>Zones</h2>\n<table>\n<tr><th>zone</th><th>kind</th>"
                               "<th>entries</th><th>capacity</th><th>size</th><th>full</th>"
                               "<th>evicted</th></tr>\n"
                             : "<h2>Zone counters</h2>\n<table>\n<tr><th>zone</th>"
                               "<th>requests</th><th>active</th><th>delayed</th><th>rejected</th>"
                               "<th>delayed (dry run)</th><th>rejected (dry run)</th></tr>\n");
        zone_rows(o, zs, json, part);
        put(o, json ? "]" : "</table>\n");
    }
}

static void zone_rows(out *o, const pt_limit_zones *zs, bool json, int part)
{
    for (size_t i = 0; i < zs->n; i++) {
        const pt_limit_zone *lz = &zs->z[i];
        pt_zone_counters c;
        size_t used;
        pt_zone_stats(lz->zone, &c, &used);
        const char *kind = lz->conf->conn ? "limit_conn" : "limit_req";
        if (json) {
            put(o,
                "%s{\"name\":\"%s\",\"kind\":\"%s\",\"size\":%zu,\"entries\":%zu,"
                "\"capacity\":%zu,\"requests\":%" PRIu64 ",\"active\":%" PRIu64
                ",\"delayed\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"delayed_dry_run\":%" PRIu64
                ",\"rejected_dry_run\":%" PRIu64 ",\"full\":%" PRIu64 ",\"evicted\":%" PRIu64 "}",
                i ? "," : "", lz->conf->name, kind, pt_zone_size(lz->zone), used,
                pt_zone_capacity(lz->zone), c.requests, c.active, c.delayed, c.rejected,
                c.delayed_dry_run, c.rejected_dry_run, c.full, c.evicted);
        } else if (part == 0) {
            put(o, "<tr><th>%s</th><td>%s</td>", lz->conf->name, kind);
            cell(o, used, "zones.%zu.entries", i);
            cell(o, pt_zone_capacity(lz->zone), "zones.%zu.capacity", i);
            cell(o, pt_zone_size(lz->zone), "zones.%zu.size", i);
            cell(o, c.full, "zones.%zu.full", i);
            cell(o, c.evicted, "zones.%zu.evicted", i);
            put_str(o, "</tr>\n");
        } else {
            put(o, "<tr><th>%s</th>", lz->conf->name);
            cell(o, c.requests, "zones.%zu.requests", i);
            cell(o, c.active, "zones.%zu.active", i);
            cell(o, c.delayed, "zones.%zu.delayed", i);
            cell(o, c.rejected, "zones.%zu.rejected", i);
            cell(o, c.delayed_dry_run, "zones.%zu.delayed_dry_run", i);
            cell(o, c.rejected_dry_run, "zones.%zu.rejected_dry_run", i);
            put_str(o, "</tr>\n");
        }
    }
}

/* ---- the HTML page's frame ---- */

/* Every 2 s: the JSON, its numbers into the cells that name them; a page of another shape
 * (workers, servers, upstreams or zones added or gone) is loaded again. No framework. */
#define REFRESH_SCRIPT                                                                             \
    "<script>\n"                                                                                   \
    "(function () {\n"                                                                             \
    "  var cells = document.querySelectorAll('[data-k]');\n"                                       \
    "  var shape = document.body.getAttribute('data-shape');\n"                                    \
    "  function field(d, k) {\n"                                                                   \
    "    return k.split('.').reduce(function (v, p) { return v == null ? v : v[p]; }, d);\n"       \
    "  }\n"                                                                                        \
    "  function two(n) { return (n < 10 ? '0' : '') + n; }\n"                                      \
    "  function uptime(t) {\n"                                                                     \
    "    t = Math.round(t);\n"                                                                     \
    "    var d = Math.floor(t / 86400), h = Math.floor(t / 3600) % 24,\n"                          \
    "        m = Math.floor(t / 60) % 60, s = t % 60;\n"                                           \
    "    if (d) return d + 'd ' + two(h) + 'h ' + two(m) + 'm ' + two(s) + 's';\n"                 \
    "    if (h) return h + 'h ' + two(m) + 'm ' + two(s) + 's';\n"                                 \
    "    if (m) return m + 'm ' + two(s) + 's';\n"                                                 \
    "    return s + 's';\n"                                                                        \
    "  }\n"                                                                                        \
    "  function text(v, f) {\n"                                                                    \
    "    if (v == null) return '';\n"                                                              \
    "    if (f === 'uptime') return uptime(v);\n"                                                  \
    "    if (f === 'sum') return v.toFixed(6);\n"                                                  \
    "    return String(v);\n"                                                                      \
    "  }\n"                                                                                        \
    "  function refresh() {\n"                                                                     \
    "    fetch('?format=json', {cache: 'no-store'}).then(function (r) {\n"                         \
    "      return r.json();\n"                                                                     \
    "    }).then(function (d) {\n"                                                                 \
    "      var now = [d.workers.length, d.servers.length, d.upstreams.length,\n"                   \
    "                 d.zones.length].join(' ');\n"                                                \
    "      if (now !== shape) { location.reload(); return; }\n"                                    \
    "      cells.forEach(function (c) {\n"                                                         \
    "        var t = text(field(d, c.getAttribute('data-k')), c.getAttribute('data-f'));\n"        \
    "        if (c.textContent !== t) c.textContent = t;\n"                                        \
    "      });\n"                                                                                  \
    "    }).catch(function () {});\n"                                                              \
    "  }\n"                                                                                        \
    "  setInterval(refresh, 2000);\n"                                                              \
    "})();\n"                                                                                      \
    "</script>\n"

/* The HTML page's head and its opening paragraph. */
static void html_begin(out *o, int self, int workers, size_t servers, size_t upstreams,
                       size_t nzones)
{
    put(o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>porter status</title><style>"
        "body{font:15px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2330}"
        "h2{font-size:1.1rem;margin:1.4rem 0 .4rem}"
        "table{border-collapse:collapse}"
        "td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right;"
        "font-variant-numeric:tabular-nums}"
        "table.h td,table.h th{padding:.25rem .3rem;font-size:13px}"
        "th:first-child{text-align:left}tr:first-child th{text-align:right}"
        "tr:first-child th:first-child{text-align:left}"
        "</style></head><body data-shape=\"%d %zu %zu %zu\">\n<h1>porter %s</h1>\n"
        "<p>This page comes from worker %d, pid %d, and follows the JSON every 2 seconds. "
        "Numbers of workers are at most a second old; those of servers, upstreams and zones "
        "are current. The same as JSON: <a href=\"?format=json\">?format=json</a>.</p>\n",
        workers, servers, upstreams, nzones, PORTER_VERSION, self, (int)getpid());
}

/* ---- the page ---- */

typedef struct page {
    pt_stats_board *board;
    int nslots, self;
    const pt_limit_zones *zs;
    double now;
    pt_worker_stats *ws; /* a copy of the slots: every table shows the same numbers */
    pt_worker_stats total;
    int workers;
    pt_stats_server *sv;
    size_t nservers;
    pt_stats_upstream *up;
    size_t nups;
    const struct pt_upstreams *pools; /* the upstream blocks' servers: state, checks */
} page;

static void json_page(out *o, const page *p)
{
    put(o, "{\"version\":\"%s\",\"pid\":%d,\"workers\":[", PORTER_VERSION, (int)getpid());
    bool first = true;
    for (int i = 0; i < p->nslots; i++) {
        const pt_worker_stats *w = &p->ws[i];
        if (!w->pid)
            continue;
        put(o, "%s{\"slot\":%d,\"pid\":%d,\"uptime\":%.0f,\"self\":%s,", first ? "" : ",", i,
            (int)w->pid, p->now - w->started, i == p->self ? "true" : "false");
        json_counters(o, w);
        put(o, "}");
        first = false;
    }
    put(o, "],\"total\":{");
    json_counters(o, &p->total);
    put_str(o, "},\"buckets\":[");
    for (size_t i = 0; i < PT_STATS_BUCKETS - 1; i++)
        put(o, "%s%g", i ? "," : "", pt_stats_bounds[i]);
    put_str(o, "],\"servers\":[");
    for (size_t i = 0; i < p->nservers; i++) {
        if (i)
            put_str(o, ",");
        json_server(o, pt_stats_board_server_name(p->board, i), &p->sv[i]);
    }
    put_str(o, "],\"upstreams\":[");
    for (size_t i = 0; i < p->nups; i++) {
        const char *up, *server;
        unsigned reports;
        pt_stats_board_upstream_names(p->board, i, &up, &server, &reports);
        if (i)
            put_str(o, ",");
        json_upstream(o, up, server, reports, &p->up[i]);
    }
    put_str(o, "]");
    zones(o, p->zs, true);
    if (p->pools) {
        put_str(o, ",\"upstream_state\":");
        o->len = pt_upstreams_json(p->pools, o->buf, o->len, o->cap);
    }
    put(o, "}\n");
}

static void html_page(out *o, const page *p)
{
    html_begin(o, p->self, p->workers, p->nservers, p->nups, p->zs ? p->zs->n : 0);
    for (size_t t = 0; t < NTABLES; t++) {
        put(o, "<h2>%s</h2>\n<table>\n<tr><th>worker</th>", worker_tables[t].title);
        if (t == 0)
            put_str(o, "<th>pid</th><th>uptime</th>");
        for (const column *c = worker_tables[t].cols; c->head; c++)
            put(o, "<th>%s</th>", c->head);
        put_str(o, "</tr>\n");
        int k = 0; /* the worker's place in the JSON's list */
        for (int i = 0; i < p->nslots; i++) {
            if (!p->ws[i].pid)
                continue;
            char name[32], at[32];
            snprintf(name, sizeof name, i == p->self ? "%d (this page)" : "%d", i);
            snprintf(at, sizeof at, "workers.%d", k++);
            html_row(o, t, name, at, &p->ws[i], p->now - p->ws[i].started);
        }
        html_row(o, t, "total", "total", &p->total, 0);
        put(o, "</table>\n");
    }
    html_servers(o, p->board, p->sv, p->nservers);
    html_upstreams(o, p->board, p->up, p->nups);
    zones(o, p->zs, false);
    put_str(o, REFRESH_SCRIPT "</body></html>\n");
}

void pt_status_handle(pt_request *req)
{
    if (req->method_id != PT_METHOD_GET && req->method_id != PT_METHOD_HEAD) {
        pt_request_respond_error(req, 405);
        return;
    }
    page p = {.zs = req->vhost->zones, .now = ev_now(req->loop), .pools = req->vhost->upstreams};
    p.board = req->vhost->stats_board(req->vhost->server, &p.nslots, &p.self);
    p.nservers = pt_stats_board_nservers(p.board);
    p.nups = pt_stats_board_nupstreams(p.board);
    /* Room for every worker's rows, every zone's and every series', in either form. */
    size_t cap = STATUS_FIXED + (size_t)p.nslots * STATUS_PER_WORKER +
                 (p.zs ? p.zs->n : 0) * STATUS_PER_ZONE +
                 (p.nservers + p.nups) * STATUS_PER_SERIES + (p.pools ? STATUS_FIXED * 4 : 0);
    char *buf = pt_request_alloc_large(req, cap);
    p.ws = pt_request_alloc_large(req, (size_t)p.nslots * sizeof *p.ws);
    p.sv = pt_request_alloc_large(req, (p.nservers ? p.nservers : 1) * sizeof *p.sv);
    p.up = pt_request_alloc_large(req, (p.nups ? p.nups : 1) * sizeof *p.up);
    if (!buf || !p.ws || !p.sv || !p.up) {
        pt_request_respond_error(req, 500);
        return;
    }
    for (int i = 0; i < p.nslots; i++) {
        p.ws[i] = *pt_stats_board_slot(p.board, i);
        if (p.ws[i].pid) {
            pt_worker_stats_add(&p.total, &p.ws[i]);
            p.workers++;
        }
    }
    p.total.draining += pt_stats_board_previous_live(p.board);
    for (size_t i = 0; i < p.nservers; i++)
        pt_stats_board_sum_server(p.board, i, &p.sv[i]);
    for (size_t i = 0; i < p.nups; i++)
        pt_stats_board_sum_upstream(p.board, i, &p.up[i]);
    out o = {buf, 0, cap};
    bool json = wants_json(req);
    if (json)
        json_page(&o, &p);
    else
        html_page(&o, &p);
    if (o.len >= o.cap) {
        pt_request_respond_error(req, 500);
        return;
    }
    pt_response r;
    pt_response_init(&r, 200);
    r.content_type = json ? "application/json" : "text/html; charset=utf-8";
    r.body = buf;
    r.body_len = o.len;
    r.extra_headers = PT_STR_LIT("Cache-Control: no-store\r\n");
    pt_request_respond(req, &r);
}
