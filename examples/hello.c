/*
 * hello: a JSON API on porter, the smallest embedding.
 *
 *   porter-hello [HOST [PORT]]        (default 127.0.0.1 8080; port 0 picks one)
 *
 *   GET /hello        {"hello":"world","client":"127.0.0.1:52144"}
 *   POST /echo        the request body back, as application/json (at most 1 MiB)
 *
 * Everything else gets 404. SIGINT or SIGTERM stops gracefully (a second one at once); the
 * exit status is 0, or 3 if porter was left holding anything.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <porter.h>

static pt_server *server;
static ev_signal sigint_watcher, sigterm_watcher;

/* GET /hello: answered at once, from memory. */
static void on_hello(pt_request *req, void *data)
{
    (void)data;
    struct sockaddr_storage peer;
    char client[PT_SOCKADDR_STRLEN] = "unknown", body[256];
    if (pt_request_peer(req, &peer, NULL) == 0)
        pt_sockaddr_format((struct sockaddr *)&peer, client, sizeof client);
    int n = snprintf(body, sizeof body, "{\"hello\":\"world\",\"client\":\"%s\"}\n", client);
    pt_respond(req, 200, "application/json", body, (size_t)n);
}

/* POST /echo: the body arrives in pieces, collected in memory that goes with the request. */
typedef struct echo {
    char *buf;
    size_t len, cap;
} echo;

static void on_echo_body(pt_request *req, const void *data, size_t len, int status, void *ud)
{
    echo *e = (echo *)ud;
    if (status == PT_BODY_END) {
        pt_respond(req, 200, "application/json", e->buf, e->len);
        return;
    }
    if (status < 0)
        return; /* porter answers (413, 400) or the client is gone */
    if (e->len + len > e->cap) {
        size_t cap = e->cap ? e->cap : 4096;
        while (cap < e->len + len)
            cap *= 2;
        char *buf = (char *)pt_custodian_alloc(pt_request_custodian(req), cap);
        if (e->len)
            memcpy(buf, e->buf, e->len);
        e->buf = buf;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, data, len);
    e->len += len;
}

static void on_echo(pt_request *req, void *data)
{
    (void)data;
    echo *e = (echo *)pt_request_alloc(req, sizeof *e);
    memset(e, 0, sizeof *e);
    pt_request_read_body(req, on_echo_body, e);
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
    pt_server_stop(server, on_stopped, NULL); /* a second signal kills what is left */
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
    limits.max_request_body_length = 1 << 20;
    o.limits = &limits;
    char err[512];
    int r = pt_server_new_with(&server, loop, &o, err, sizeof err);
    if (r == 0)
        r = pt_server_listen(server, host, port, 0);
    if (r == 0)
        r = pt_server_handle(server, "GET", "/hello", PT_PATH_EXACT, on_hello, NULL);
    if (r == 0)
        r = pt_server_handle(server, "POST", "/echo", PT_PATH_EXACT, on_echo, NULL);
    if (r == 0)
        r = pt_server_start(server);
    if (r < 0) {
        fprintf(stderr, "porter-hello: %s\n", err[0] ? err : pt_strerror(r));
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
        fprintf(stderr, "porter-hello: leak: %zu custodians, %zu unreaped, %zu chunks\n",
                rc.custodians, rc.unreaped, rc.chunks);
        return 3;
    }
    return 0;
}
