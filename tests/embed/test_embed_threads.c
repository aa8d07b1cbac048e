/*
 * Several loops on several threads (docs/embedding.md, "Threading"): each thread runs a libev
 * loop of its own with a server and handlers of its own. They serve at the same time, each
 * answers its own requests on its own thread, a request one of them holds does not hold up the
 * others, stopping one leaves the others serving (their open connections too), and each
 * thread ends with nothing of porter's left on it (custodians, buffers, watchers), the process
 * with no descriptor left.
 *
 * Only the test's main thread calls cmocka: the server threads and the client threads record
 * what they saw, and the main thread checks it once they are joined.
 */
#include "harness.h"

#include <stdatomic.h>

#define SERVERS 3
#define ROUNDS 20 /* requests each client thread makes to each server */
#define WAIT_SECONDS 10.0

/* What the main thread asks of a server thread, through its ev_async. */
enum { CMD_RELEASE = 1, CMD_STOP = 2 };

/* One server thread: its loop, its server, and what it saw. */
typedef struct server_thread {
    int index;
    pthread_t thread, self; /* self: as the thread itself sees it */
    struct ev_loop *loop;
    pt_server *server;
    ev_async wake;
    pthread_mutex_t lock; /* held by the main thread while it wakes the loop up */
    atomic_int commands;  /* CMD_* bits not yet done */
    atomic_int port;      /* > 0 once listening; < 0: could not start */
    atomic_int holding;   /* a /hold request is waiting for CMD_RELEASE */
    atomic_bool done;     /* the thread has freed its server and checked what is left */
    char error[512];      /* why it could not start */
    /* the thread's own, read by the main thread after the join */
    pt_request *held;
    int calls;
    bool stopped;
    int wrong_thread; /* handler calls on another thread than the server's */
    bool clean;
    char left[512];
} server_thread;

static void count_call(server_thread *t)
{
    t->calls++;
    if (!pthread_equal(pthread_self(), t->self))
        t->wrong_thread++;
}

/* GET /who: "server N". */
static void on_who(pt_request *req, void *data)
{
    server_thread *t = data;
    count_call(t);
    char body[32];
    int n = snprintf(body, sizeof body, "server %d\n", t->index);
    pt_respond(req, 200, "text/plain", body, (size_t)n);
}

static void on_held_abort(pt_request *req, void *data)
{
    server_thread *t = data;
    t->held = NULL;
    atomic_store(&t->holding, 0);
}

/* GET /hold: answered "held by server N" when the main thread says CMD_RELEASE. */
static void on_hold(pt_request *req, void *data)
{
    server_thread *t = data;
    count_call(t);
    t->held = req;
    pt_request_on_abort(req, on_held_abort, t);
    atomic_store(&t->holding, 1);
}

static void on_server_stopped(pt_server *s, void *data)
{
    server_thread *t = data;
    t->stopped = true;
    /* The last watcher of the thread's own: once it is stopped the loop ends. */
    ev_async_stop(t->loop, &t->wake);
}

static void on_command(struct ev_loop *loop, ev_async *w, int revents)
{
    server_thread *t = w->data;
    int cmd = atomic_exchange(&t->commands, 0);
    if ((cmd & CMD_RELEASE) && t->held) {
        char body[32];
        int n = snprintf(body, sizeof body, "held by server %d\n", t->index);
        pt_respond(t->held, 200, "text/plain", body, (size_t)n);
        t->held = NULL;
        atomic_store(&t->holding, 0);
    }
    if (cmd & CMD_STOP)
        pt_server_stop(t->server, on_server_stopped, t);
}

static int start_server(server_thread *t)
{
    pt_server_options o;
    pt_server_options_init(&o);
    int r = pt_server_new_with(&t->server, t->loop, &o, t->error, sizeof t->error);
    if (r < 0)
        return r;
    struct sockaddr_storage ss;
    if ((r = pt_server_listen(t->server, "127.0.0.1", "0", 0)) < 0 ||
        (r = pt_server_handle(t->server, "GET", "/who", PT_PATH_EXACT, on_who, t)) < 0 ||
        (r = pt_server_handle(t->server, "GET", "/hold", PT_PATH_EXACT, on_hold, t)) < 0 ||
        (r = pt_server_start(t->server)) < 0)
        return r;
    if (pt_server_addresses(t->server, &ss, 1) != 1)
        return -EINVAL;
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void *server_main(void *arg)
{
    server_thread *t = arg;
    t->self = pthread_self();
    nothing_left_mark start; /* this thread's counts; descriptors are the main thread's to count */
    nothing_left_mark_take(&start, false);
    t->loop = ev_loop_new(EVFLAG_AUTO);
    ev_async_init(&t->wake, on_command);
    t->wake.data = t;
    ev_async_start(t->loop, &t->wake);
    int port = t->loop ? start_server(t) : -ENOMEM;
    if (port < 0 && !t->error[0])
        snprintf(t->error, sizeof t->error, "%s", pt_strerror(port));
    atomic_store(&t->port, port);
    if (port > 0)
        ev_run(t->loop, 0); /* until the server has stopped */
    /* The main thread may still be inside ev_async_send() on this loop. */
    pthread_mutex_lock(&t->lock);
    pthread_mutex_unlock(&t->lock);
    pt_server_free(t->server);
    t->server = NULL;
    ev_async_stop(t->loop, &t->wake);
    t->clean = nothing_left_since(&start, t->loop, t->left, sizeof t->left);
    t->loop = NULL;
    atomic_store(&t->done, true);
    return NULL;
}

/* Waits (at most WAIT_SECONDS) for `v` to be set by another thread. */
static bool wait_nonzero(atomic_int *v)
{
    for (double waited = 0; waited < WAIT_SECONDS; waited += 0.005) {
        if (atomic_load(v))
            return true;
        usleep(5000);
    }
    return false;
}

static void start_servers(server_thread *ts, int n)
{
    memset(ts, 0, sizeof *ts * (size_t)n);
    for (int i = 0; i < n; i++) {
        ts[i].index = i;
        pthread_mutex_init(&ts[i].lock, NULL);
        assert_int_equal(pthread_create(&ts[i].thread, NULL, server_main, &ts[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        assert_true(wait_nonzero(&ts[i].port));
        if (atomic_load(&ts[i].port) < 0)
            fail_msg("server %d did not start: %s", i, ts[i].error);
    }
}

static void command(server_thread *t, int cmd)
{
    pthread_mutex_lock(&t->lock);
    atomic_fetch_or(&t->commands, cmd);
    ev_async_send(t->loop, &t->wake);
    pthread_mutex_unlock(&t->lock);
}

/* Stops server `t` through its own loop, waits for its thread, and checks what it left. */
static void stop_server(server_thread *t)
{
    command(t, CMD_STOP);
    assert_int_equal(pthread_join(t->thread, NULL), 0);
    pthread_mutex_destroy(&t->lock);
    assert_true(atomic_load(&t->done));
    assert_true(t->stopped);
    assert_int_equal(t->wrong_thread, 0);
    if (!t->clean)
        fail_msg("server %d's thread ended with this left: %s", t->index, t->left);
}

/* ---- clients (blocking sockets) ---- */

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_SECONDS};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends a GET of `path` on `fd` and reads one response; copies its body into `body`. Returns
 * the status, or -1. */
static int exchange(int fd, const char *path, bool close_after, char *body, size_t cap)
{
    char req[256], buf[4096];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path,
                     close_after ? "Connection: close\r\n" : "");
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    size_t len = 0;
    char *end = NULL;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
    }
    buf[len] = '\0';
    int status = 0;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1 || !cl || cl > end)
        return -1;
    size_t want = strtoul(cl + 17, NULL, 10), head = (size_t)(end - buf) + 4;
    while (len < head + want) {
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
    }
    if (want >= cap)
        return -1;
    memcpy(body, buf + head, want);
    body[want] = '\0';
    return status;
}

/* A GET of `path` on a connection of its own. */
static int get(int port, const char *path, char *body, size_t cap)
{
    int fd = connect_to(port);
    if (fd < 0)
        return -1;
    int status = exchange(fd, path, true, body, cap);
    close(fd);
    return status;
}

/* A client thread: ROUNDS times, one /who to each server in turn. */
typedef struct client_thread {
    pthread_t thread;
    const server_thread *servers;
    int nservers;
    int answered, wrong; /* right answers; failures or another server's answer */
    char first_wrong[128];
} client_thread;

static void *who_client_main(void *arg)
{
    client_thread *c = arg;
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < c->nservers; i++) {
            char body[64], want[32];
            snprintf(want, sizeof want, "server %d\n", i);
            int status = get(atomic_load(&c->servers[i].port), "/who", body, sizeof body);
            if (status == 200 && strcmp(body, want) == 0) {
                c->answered++;
                continue;
            }
            if (!c->wrong++)
                snprintf(c->first_wrong, sizeof c->first_wrong, "server %d: status %d, \"%s\"", i,
                         status, status > 0 ? body : "");
        }
    return NULL;
}

/* A client waiting for the answer to /hold. */
typedef struct hold_client {
    pthread_t thread;
    int port, status;
    char body[64];
    atomic_bool done;
} hold_client;

static void *hold_main(void *arg)
{
    hold_client *h = arg;
    h->status = get(h->port, "/hold", h->body, sizeof h->body);
    atomic_store(&h->done, true);
    return NULL;
}

static bool refused(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool no = connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0 && errno == ECONNREFUSED;
    close(fd);
    return no;
}

/* ---- tests ---- */

static void test_loops_on_threads_serve_at_once_each_its_own(void **state)
{
    nothing_left_begin();
    server_thread ts[SERVERS];
    start_servers(ts, SERVERS);

    /* Server 0 holds a request; meanwhile every server, 0 included, answers the others. */
    hold_client hold = {.port = atomic_load(&ts[0].port)};
    assert_int_equal(pthread_create(&hold.thread, NULL, hold_main, &hold), 0);
    assert_true(wait_nonzero(&ts[0].holding));

    client_thread cs[SERVERS];
    memset(cs, 0, sizeof cs);
    for (int i = 0; i < SERVERS; i++) {
        cs[i].servers = ts;
        cs[i].nservers = SERVERS;
        assert_int_equal(pthread_create(&cs[i].thread, NULL, who_client_main, &cs[i]), 0);
    }
    for (int i = 0; i < SERVERS; i++) {
        assert_int_equal(pthread_join(cs[i].thread, NULL), 0);
        if (cs[i].wrong)
            fail_msg("client %d: %d wrong answers, the first from %s", i, cs[i].wrong,
                     cs[i].first_wrong);
        assert_int_equal(cs[i].answered, ROUNDS * SERVERS);
    }
    assert_false(atomic_load(&hold.done));
    assert_int_equal(atomic_load(&ts[0].holding), 1);

    command(&ts[0], CMD_RELEASE);
    assert_int_equal(pthread_join(hold.thread, NULL), 0);
    assert_int_equal(hold.status, 200);
    assert_string_equal(hold.body, "held by server 0\n");

    for (int i = 0; i < SERVERS; i++) {
        stop_server(&ts[i]);
        /* Every request of every client thread, and the held one, on this server's thread. */
        assert_int_equal(ts[i].calls, SERVERS * ROUNDS + (i == 0));
    }
    assert_nothing_left(NULL);
}

static void test_stopping_one_leaves_the_others_serving(void **state)
{
    nothing_left_begin();
    server_thread ts[2];
    start_servers(ts, 2);
    int port0 = atomic_load(&ts[0].port), port1 = atomic_load(&ts[1].port);
    char body[64];

    assert_int_equal(get(port0, "/who", body, sizeof body), 200);
    assert_string_equal(body, "server 0\n");
    /* A keep-alive connection to server 1, open across server 0's stop. */
    int kept = connect_to(port1);
    assert_true(kept >= 0);
    assert_int_equal(exchange(kept, "/who", false, body, sizeof body), 200);
    assert_string_equal(body, "server 1\n");

    stop_server(&ts[0]);
    assert_true(refused(port0));

    assert_int_equal(exchange(kept, "/who", false, body, sizeof body), 200);
    assert_string_equal(body, "server 1\n");
    close(kept);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(get(port1, "/who", body, sizeof body), 200);
        assert_string_equal(body, "server 1\n");
    }
    /* And server 1 still holds and answers a request of its own. */
    hold_client hold = {.port = port1};
    assert_int_equal(pthread_create(&hold.thread, NULL, hold_main, &hold), 0);
    assert_true(wait_nonzero(&ts[1].holding));
    command(&ts[1], CMD_RELEASE);
    assert_int_equal(pthread_join(hold.thread, NULL), 0);
    assert_int_equal(hold.status, 200);
    assert_string_equal(hold.body, "held by server 1\n");

    stop_server(&ts[1]);
    assert_int_equal(ts[0].calls, 1);
    assert_int_equal(ts[1].calls, 2 + 5 + 1);
    assert_true(refused(port1));
    assert_nothing_left(NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loops_on_threads_serve_at_once_each_its_own),
        cmocka_unit_test(test_stopping_one_leaves_the_others_serving),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
