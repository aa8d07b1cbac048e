/*
 * The status page (`location /porter-status { status; }`): connections by state, custodians,
 * timers, accepted/handled/rejected, requests (and those refused as invalid) and bytes, per worker
 * and in total; and the shared zones of limit_req and limit_conn with what they counted, delayed
 * and refused (the zones' own counters, which every worker shares); in JSON, the upstreams'
 * servers (state, connections, failures, checks: shared too). JSON when the client asks for
 * it (Accept: application/json, or ?format=json), a small HTML page otherwise.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connmgr/conn.h"
#include "server/handlers/status.h"
#include "server/handlers/upstream.h"
#include "server/site/limiter.h"
#include "server/site/site.h"
#include "server/core/stats.h"

#define STATUS_MAX 65536

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

static void html_row(out *o, const char *name, const pt_worker_stats *w)
{
    put(o,
        "<tr><th>%s</th><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
        "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
        "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
        "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>\n",
        name, w->live, w->reading, w->writing, w->idle, w->lingering, w->accepted, w->handled,
        w->rejected, w->requests, w->invalid, w->bytes_in, w->bytes_out, w->custodians, w->timers);
}

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
    else
        put(o, "<h2>Zones</h2>\n<table>\n<tr><th>zone</th><th>kind</th><th>entries</th>"
               "<th>capacity</th><th>requests</th><th>active</th><th>delayed</th>"
               "<th>rejected</th><th>delayed (dry run)</th><th>rejected (dry run)</th>"
               "<th>full</th><th>evicted</th></tr>\n");
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
        else
            put(o,
                "<tr><th>%s</th><td>%s</td><td>%zu</td><td>%zu</td><td>%" PRIu64 "</td><td>%" PRIu64
                "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
                "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>\n",
                lz->conf->name, kind, used, pt_zone_capacity(lz->zone), c.requests, c.active,
                c.delayed, c.rejected, c.delayed_dry_run, c.rejected_dry_run, c.full, c.evicted);
    }
    put(o, json ? "]" : "</table>\n");
}

void pt_status_handle(pt_request *req)
{
    if (req->method_id != PT_METHOD_GET && req->method_id != PT_METHOD_HEAD) {
        pt_request_respond_error(req, 405);
        return;
    }
    int nslots, self;
    pt_stats_board *board = req->vhost->stats_board(req->vhost->server, &nslots, &self);
    char buf[STATUS_MAX];
    out o = {buf, 0, sizeof buf};
    bool json = wants_json(req);
    double now = ev_now(req->loop);
    pt_worker_stats total = {0};

    if (json)
        put(&o, "{\"version\":\"%s\",\"pid\":%d,\"workers\":[", PORTER_VERSION, (int)getpid());
    else
        put(&o,
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>porter status</title>"
            "<style>body{font:15px system-ui,sans-serif;margin:2rem}table{border-collapse:"
            "collapse}td,th{padding:.3rem .7rem;border-bottom:1px solid #ddd;text-align:"
            "right}</style></head><body>\n<h1>porter %s</h1>\n<table>\n<tr><th>worker</th>"
            "<th>active</th><th>reading</th><th>writing</th><th>idle</th><th>lingering</th>"
            "<th>accepted</th><th>handled</th><th>rejected</th><th>requests</th><th>invalid</th>"
            "<th>bytes in</th><th>bytes out</th><th>custodians</th><th>timers</th></tr>\n",
            PORTER_VERSION);
    bool first = true;
    for (int i = 0; i < nslots; i++) {
        pt_worker_stats w = *pt_stats_board_slot(board, i);
        if (!w.pid)
            continue;
        add(&total, &w);
        if (json) {
            put(&o, "%s{\"slot\":%d,\"pid\":%d,\"uptime\":%.0f,\"self\":%s,", first ? "" : ",", i,
                (int)w.pid, now - w.started, i == self ? "true" : "false");
            json_counters(&o, &w);
            put(&o, "}");
        } else {
            char name[32];
            snprintf(name, sizeof name, "%d (pid %d)", i, (int)w.pid);
            html_row(&o, name, &w);
        }
        first = false;
    }
    if (json) {
        put(&o, "],\"total\":{");
        json_counters(&o, &total);
        put(&o, "}");
        zones(&o, req->vhost->zones, true);
        if (req->vhost->upstreams) {
            put(&o, ",\"upstreams\":");
            o.len = pt_upstreams_json(req->vhost->upstreams, o.buf, o.len, o.cap);
        }
        put(&o, "}\n");
    } else {
        html_row(&o, "total", &total);
        put(&o,
            "</table>\n<h2>HTTP/2</h2>\n<table>\n<tr><th>connections</th><th>active</th>"
            "<th>streams</th><th>resets received</th><th>floods refused</th><th>protocol "
            "errors</th></tr>\n<tr><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
            "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>\n</table>\n",
            total.h2_connections, total.h2_live, total.h2_streams, total.h2_resets, total.h2_floods,
            total.h2_errors);
        zones(&o, req->vhost->zones, false);
        put(&o, "<p>Numbers of other workers are at most a second old; those of zones are "
                "current.</p>\n</body></html>\n");
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
