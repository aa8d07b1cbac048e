/*
 * The status page (`location /porter-status { status; }`): connections by state, custodians,
 * timers, accepted/handled/rejected, requests (and those refused as invalid) and bytes, per worker
 * and in total; and the shared zones of limit_req and limit_conn with what they counted, delayed
 * and refused (the zones' own counters, which every worker shares). JSON when the client asks for
 * it (Accept: application/json, or ?format=json), a small HTML page otherwise.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connmgr/conn.h"
#include "server/handlers/status.h"
#include "server/site/limiter.h"
#include "server/site/site.h"
#include "server/core/stats.h"

/* The page's size: its fixed part, then at most this much per worker and per zone (a worker's
 * JSON object with every counter at 20 digits is about 900 bytes; its HTML rows less). */
#define STATUS_FIXED 4096
#define STATUS_PER_WORKER 2048
#define STATUS_PER_ZONE 1024

typedef struct out {
    char *buf;
    size_t len, cap;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static bool wants_json(const pt_request *req)
{
    if (req->query.len >= 11 && memmem(req->query.p, req->query.len, "format=json", 11))
        return true;
    const pt_header *h = pt_request_header(req, "accept");
    return h && memmem(h->value.p, h->value.len, "application/json", 16);
}

static void add(pt_worker_stats *t, const pt_worker_stats *w)
{
    t->live += w->live;
    t->reading += w->reading;
    t->writing += w->writing;
    t->idle += w->idle;
    t->lingering += w->lingering;
    t->accepted += w->accepted;
    t->handled += w->handled;
    t->rejected += w->rejected;
    t->requests += w->requests;
    t->invalid += w->invalid;
    t->bytes_in += w->bytes_in;
    t->bytes_out += w->bytes_out;
    t->custodians += w->custodians;
    t->timers += w->timers;
    t->cache_hits += w->cache_hits;
    t->cache_misses += w->cache_misses;
    t->cache_bytes += w->cache_bytes;
    t->h2_connections += w->h2_connections;
    t->h2_live += w->h2_live;
    t->h2_streams += w->h2_streams;
    t->h2_resets += w->h2_resets;
    t->h2_floods += w->h2_floods;
    t->h2_errors += w->h2_errors;
}

static void json_counters(out *o, const pt_worker_stats *w)
{
    put(o,
        "\"connections\":{\"active\":%" PRIu64 ",\"reading\":%" PRIu64 ",\"writing\":%" PRIu64
        ",\"idle\":%" PRIu64 ",\"lingering\":%" PRIu64 "},\"accepted\":%" PRIu64
        ",\"handled\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"requests\":%" PRIu64
        ",\"invalid_requests\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
        ",\"custodians\":%" PRIu64 ",\"timers\":%" PRIu64 ",\"file_cache\":{\"hits\":%" PRIu64
        ",\"misses\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
        w->live, w->reading, w->writing, w->idle, w->lingering, w->accepted, w->handled,
        w->rejected, w->requests, w->invalid, w->bytes_in, w->bytes_out, w->custodians, w->timers,
        w->cache_hits, w->cache_misses, w->cache_bytes);
    put(o,
        ",\"http2\":{\"connections\":%" PRIu64 ",\"active\":%" PRIu64 ",\"streams\":%" PRIu64
        ",\"resets_received\":%" PRIu64 ",\"floods\":%" PRIu64 ",\"protocol_errors\":%" PRIu64 "}",
        w->h2_connections, w->h2_live, w->h2_streams, w->h2_resets, w->h2_floods, w->h2_errors);
}

/* ---- the HTML page: what the JSON says, in tables narrow enough for a 1280 px window ---- */

/* The HTML tables of the workers, each a row per worker and one of totals. */
enum { T_CONNECTIONS, T_REQUESTS, T_FILE_CACHE, T_HTTP2, T_COUNT };

static const char *const table_heads[T_COUNT] = {
    "<h2>Connections</h2>\n<table>\n<tr><th>worker</th><th>pid</th><th>uptime</th>"
    "<th>active</th><th>reading</th><th>writing</th><th>idle</th><th>lingering</th>"
    "<th>accepted</th><th>handled</th><th>rejected</th></tr>\n",
    "<h2>Requests</h2>\n<table>\n<tr><th>worker</th><th>requests</th><th>invalid</th>"
    "<th>bytes in</th><th>bytes out</th><th>custodians</th><th>timers</th></tr>\n",
    "<h2>File cache</h2>\n<table>\n<tr><th>worker</th><th>hits</th><th>misses</th>"
    "<th>bytes</th></tr>\n",
    "<h2>HTTP/2</h2>\n<table>\n<tr><th>worker</th><th>connections</th><th>active</th>"
    "<th>streams</th><th>resets received</th><th>floods refused</th><th>protocol errors</th>"
    "</tr>\n",
};

/* "3d 04h 05m 06s", "5m 06s", "6s". */
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

/* One worker's row of table `t` (w->pid 0: the totals' row, which has no pid nor uptime). */
static void html_row(out *o, int t, const char *name, const pt_worker_stats *w, double uptime)
{
    put(o, "<tr><th>%s</th>", name);
    switch (t) {
    case T_CONNECTIONS: {
        char up[48] = "";
        if (w->pid)
            uptime_text(up, sizeof up, uptime);
        char pid[24] = "";
        if (w->pid)
            snprintf(pid, sizeof pid, "%d", (int)w->pid);
        put(o,
            "<td>%s</td><td>%s</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
            "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
            "</td><td>%" PRIu64 "</td>",
            pid, up, w->live, w->reading, w->writing, w->idle, w->lingering, w->accepted,
            w->handled, w->rejected);
        break;
    }
    case T_REQUESTS:
        put(o,
            "<td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
            "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td>",
            w->requests, w->invalid, w->bytes_in, w->bytes_out, w->custodians, w->timers);
        break;
    case T_FILE_CACHE:
        put(o, "<td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td>", w->cache_hits,
            w->cache_misses, w->cache_bytes);
        break;
    default:
        put(o,
            "<td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
            "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td>",
            w->h2_connections, w->h2_live, w->h2_streams, w->h2_resets, w->h2_floods, w->h2_errors);
    }
    put(o, "</tr>\n");
}

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
        if (json)
            put(o,
                "%s{\"name\":\"%s\",\"kind\":\"%s\",\"size\":%zu,\"entries\":%zu,"
                "\"capacity\":%zu,\"requests\":%" PRIu64 ",\"active\":%" PRIu64
                ",\"delayed\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"delayed_dry_run\":%" PRIu64
                ",\"rejected_dry_run\":%" PRIu64 ",\"full\":%" PRIu64 ",\"evicted\":%" PRIu64 "}",
                i ? "," : "", lz->conf->name, kind, pt_zone_size(lz->zone), used,
                pt_zone_capacity(lz->zone), c.requests, c.active, c.delayed, c.rejected,
                c.delayed_dry_run, c.rejected_dry_run, c.full, c.evicted);
        else if (part == 0)
            put(o,
                "<tr><th>%s</th><td>%s</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%" PRIu64
                "</td><td>%" PRIu64 "</td></tr>\n",
                lz->conf->name, kind, used, pt_zone_capacity(lz->zone), pt_zone_size(lz->zone),
                c.full, c.evicted);
        else
            put(o,
                "<tr><th>%s</th><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
                "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>\n",
                lz->conf->name, c.requests, c.active, c.delayed, c.rejected, c.delayed_dry_run,
                c.rejected_dry_run);
    }
}

/* The HTML page's head and its opening paragraph. */
static void html_begin(out *o, int self)
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
        "th:first-child{text-align:left}tr:first-child th{text-align:right}"
        "tr:first-child th:first-child{text-align:left}"
        "</style></head><body>\n<h1>porter %s</h1>\n"
        "<p>This page comes from worker %d, pid %d. Numbers of other workers are at most a "
        "second old; those of zones are current. The same as JSON: "
        "<a href=\"?format=json\">?format=json</a>.</p>\n",
        PORTER_VERSION, self, (int)getpid());
}

void pt_status_handle(pt_request *req)
{
    if (req->method_id != PT_METHOD_GET && req->method_id != PT_METHOD_HEAD) {
        pt_request_respond_error(req, 405);
        return;
    }
    int nslots, self;
    pt_stats_board *board = req->vhost->stats_board(req->vhost->server, &nslots, &self);
    const pt_limit_zones *zs = req->vhost->zones;
    /* Room for every worker's rows and every zone's, in either form. */
    size_t cap =
        STATUS_FIXED + (size_t)nslots * STATUS_PER_WORKER + (zs ? zs->n : 0) * STATUS_PER_ZONE;
    char *buf = pt_request_alloc_large(req, cap);
    if (!buf) {
        pt_request_respond_error(req, 500);
        return;
    }
    out o = {buf, 0, cap};
    bool json = wants_json(req);
    double now = ev_now(req->loop);
    pt_worker_stats total = {0};

    if (json) {
        put(&o, "{\"version\":\"%s\",\"pid\":%d,\"workers\":[", PORTER_VERSION, (int)getpid());
        bool first = true;
        for (int i = 0; i < nslots; i++) {
            pt_worker_stats w = *pt_stats_board_slot(board, i);
            if (!w.pid)
                continue;
            add(&total, &w);
            put(&o, "%s{\"slot\":%d,\"pid\":%d,\"uptime\":%.0f,\"self\":%s,", first ? "" : ",", i,
                (int)w.pid, now - w.started, i == self ? "true" : "false");
            json_counters(&o, &w);
            put(&o, "}");
            first = false;
        }
        put(&o, "],\"total\":{");
        json_counters(&o, &total);
        put(&o, "}");
        zones(&o, zs, true);
        put(&o, "}\n");
    } else {
        html_begin(&o, self);
        /* A copy of the board: every table shows the same numbers, which the totals add. */
        pt_worker_stats *ws = pt_request_alloc_large(req, (size_t)nslots * sizeof *ws);
        if (!ws) {
            pt_request_respond_error(req, 500);
            return;
        }
        for (int i = 0; i < nslots; i++) {
            ws[i] = *pt_stats_board_slot(board, i);
            if (ws[i].pid)
                add(&total, &ws[i]);
        }
        for (int t = 0; t < T_COUNT; t++) {
            put(&o, "%s", table_heads[t]);
            for (int i = 0; i < nslots; i++) {
                if (!ws[i].pid)
                    continue;
                char name[32];
                snprintf(name, sizeof name, i == self ? "%d (this page)" : "%d", i);
                html_row(&o, t, name, &ws[i], now - ws[i].started);
            }
            html_row(&o, t, "total", &total, 0);
            put(&o, "</table>\n");
        }
        zones(&o, zs, false);
        put(&o, "</body></html>\n");
    }
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
