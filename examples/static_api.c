/*
 * static-api: a site and its API on one server, the usual shape of a small web application.
 *
 *   porter-static-api ROOT [HOST [PORT]]   (default 127.0.0.1 8080; port 0 picks one)
 *
 * Files come from ROOT (index.html for directories, ETag, ranges, 304s, precompression: all of
 * porter's static serving), and one route answers from code:
 *
 *   GET /api/time     {"time":1700000000,"scheme":"http"}
 *
 * Requests are logged to standard output in the combined format. SIGINT or SIGTERM stops
 * gracefully (a second one at once); the exit status is 0, or 3 if porter was left holding
 * anything.
 */
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include <porter.h>

static pt_server *server;
static ev_signal sigint_watcher, sigterm_watcher;

static void on_time(pt_request *req, void *data)
{
    (void)data;
    char body[128];
    int n = snprintf(body, sizeof body, "{\"time\":%lld,\"scheme\":\"%s\"}\n",
                     (long long)time(NULL), pt_request_scheme(req));
    pt_field headers[] = {{"Cache-Control", "no-store"}};
    pt_reply r;
    pt_reply_init(&r, 200);
    r.content_type = "application/json";
    r.headers = headers;
    r.nheaders = 1;
    r.body = body;
    r.body_len = (size_t)n;
    pt_respond_with(req, &r);
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
    if (argc < 2) {
        fprintf(stderr, "usage: porter-static-api ROOT [HOST [PORT]]\n");
        return 2;
    }
    const char *host = argc > 2 ? argv[2] : "127.0.0.1";
    const char *port = argc > 3 ? argv[3] : "8080";
    struct ev_loop *loop = ev_default_loop(0);
    signal(SIGPIPE, SIG_IGN);

    pt_server_options o;
    pt_server_options_init(&o);
    o.root = argv[1];
    o.access_log = "/dev/stdout";
    pt_limits limits;
    pt_limits_init(&limits);
    limits.keepalive_timeout = 30;
    o.limits = &limits;
    char err[512];
    int r = pt_server_new_with(&server, loop, &o, err, sizeof err);
    if (r == 0)
        r = pt_server_listen(server, host, port, 0);
    if (r == 0)
        r = pt_server_handle(server, "GET", "/api/time", PT_PATH_EXACT, on_time, NULL);
    if (r == 0)
        r = pt_server_start(server);
    if (r < 0) {
        fprintf(stderr, "porter-static-api: %s\n", err[0] ? err : pt_strerror(r));
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
        fprintf(stderr, "porter-static-api: leak: %zu custodians, %zu unreaped, %zu chunks\n",
                rc.custodians, rc.unreaped, rc.chunks);
        return 3;
    }
    return 0;
}
