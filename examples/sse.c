/*
 * sse: server-sent events, a response written over time from a timer of the handler's own.
 *
 *   porter-sse [HOST [PORT]]          (default 127.0.0.1 8080; port 0 picks one)
 *
 *   GET /             a page that shows the events (EventSource)
 *   GET /events       text/event-stream: "data: tick N" every INTERVAL seconds, forever, or
 *                     COUNT times with /events?count=COUNT
 *
 * Each stream's timer and state belong to its request's custodian: when the client goes away
 * porter calls the abort callback and then releases them, so nothing is left behind. When the
 * socket's queue is full the stream waits for the writable callback (back-pressure). SIGINT or
 * SIGTERM stops gracefully: streams are cut at the shutdown grace period (2 s here).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <porter.h>

#define INTERVAL 0.2

static pt_server *server;
static ev_signal sigint_watcher, sigterm_watcher;

static const char page[] =
    "<!doctype html>\n<meta charset=utf-8>\n<title>porter events</title>\n<pre id=log></pre>\n"
    "<script>\nconst log = document.getElementById('log');\n"
    "new EventSource('/events').onmessage = e => { log.textContent += e.data + '\\n'; };\n"
    "</script>\n";

typedef struct stream {
    pt_request *req;
    struct ev_loop *loop;
    ev_timer tick;
    unsigned sent, count; /* count 0: forever */
} stream;

/* Registered with the request's custodian: runs when the request ends, whichever way. */
static void stream_release(void *data)
{
    stream *st = (stream *)data;
    ev_timer_stop(st->loop, &st->tick);
}

static void on_writable(pt_request *req, void *data)
{
    stream *st = (stream *)data;
    (void)req;
    ev_timer_start(st->loop, &st->tick); /* the queue went out: resume the ticks */
}

static void on_abort(pt_request *req, void *data)
{
    stream *st = (stream *)data;
    (void)req;
    fprintf(stderr, "porter-sse: client went away after %u events\n", st->sent);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    stream *st = (stream *)w->data;
    (void)revents;
    char event[64];
    int n = snprintf(event, sizeof event, "data: tick %u\n\n", ++st->sent);
    int r = pt_response_write(st->req, event, (size_t)n);
    if (r < 0)
        return; /* the connection is gone: the abort callback and the release follow */
    if (st->count && st->sent >= st->count) {
        pt_response_end(st->req); /* the request is over: its custodian stops the timer */
        return;
    }
    if (pt_response_is_full(st->req))
        ev_timer_stop(loop, w); /* the client reads slowly: wait for on_writable */
}

static void on_events(pt_request *req, void *data)
{
    pt_custodian *c = pt_request_custodian(req);
    stream *st = (stream *)pt_custodian_alloc(c, sizeof *st);
    st->req = req;
    st->loop = (struct ev_loop *)data;
    pt_slice q = pt_request_query(req);
    if (q.len > 6 && memcmp(q.ptr, "count=", 6) == 0)
        st->count = (unsigned)strtoul(q.ptr + 6, NULL, 10); /* stops at the end of digits */
    /* Registered before the timer starts, so no way out of this request leaves it running. */
    pt_custodian_register(c, stream_release, st);
    ev_timer_init(&st->tick, on_tick, INTERVAL, INTERVAL);
    st->tick.data = st;
    pt_request_on_abort(req, on_abort, st);
    pt_response_on_writable(req, on_writable, st);

    pt_field headers[] = {{"Cache-Control", "no-cache"}};
    pt_reply r;
    pt_reply_init(&r, 200);
    r.content_type = "text/event-stream";
    r.headers = headers;
    r.nheaders = 1;
    r.stream = true; /* length unknown: chunked */
    if (pt_respond_with(req, &r) == 0)
        ev_timer_start(st->loop, &st->tick);
}

static void on_page(pt_request *req, void *data)
{
    (void)data;
    pt_respond(req, 200, "text/html; charset=utf-8", page, sizeof page - 1);
}

static void on_stopped(pt_server *s, void *data)
{
    (void)s;
    (void)data;
    ev_signal_stop(ev_default_loop(0), &sigint_watcher);
    ev_signal_stop(ev_default_loop(0), &sigterm_watcher);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    pt_server_stop(server, on_stopped, NULL);
}

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    const char *port = argc > 2 ? argv[2] : "8080";
    struct ev_loop *loop = ev_default_loop(0);
    signal(SIGPIPE, SIG_IGN);

    pt_server_options o;
    pt_server_options_init(&o);
    pt_limits limits;
    pt_limits_init(&limits);
    limits.shutdown_grace_period = 2;
    o.limits = &limits;
    char err[512];
    int r = pt_server_new_with(&server, loop, &o, err, sizeof err);
    if (r == 0)
        r = pt_server_listen(server, host, port, 0);
    if (r == 0)
        r = pt_server_handle(server, "GET", "/events", PT_PATH_EXACT, on_events, loop);
    if (r == 0)
        r = pt_server_handle(server, "GET", "/", PT_PATH_EXACT, on_page, NULL);
    if (r == 0)
        r = pt_server_start(server);
    if (r < 0) {
        fprintf(stderr, "porter-sse: %s\n", err[0] ? err : pt_strerror(r));
        pt_server_free(server);
        return 1;
    }
    struct sockaddr_storage addr;
    char text[PT_SOCKADDR_STRLEN];
    if (pt_server_addresses(server, &addr, 1) == 1 &&
        pt_sockaddr_format((struct sockaddr *)&addr, text, sizeof text) == 0)
        printf("listening on http://%s\n", text);
    fflush(stdout);

    ev_signal_init(&sigint_watcher, on_signal, SIGINT);
    ev_signal_init(&sigterm_watcher, on_signal, SIGTERM);
    ev_signal_start(loop, &sigint_watcher);
    ev_signal_start(loop, &sigterm_watcher);
    ev_run(loop, 0);

    pt_server_free(server);
    pt_resource_counts rc;
    pt_resource_counts_get(&rc);
    if (rc.custodians || rc.unreaped || rc.chunks) {
        fprintf(stderr, "porter-sse: leak: %zu custodians, %zu unreaped, %zu chunks\n",
                rc.custodians, rc.unreaped, rc.chunks);
        return 3;
    }
    return 0;
}
