/*
 * Embedding porter: the life of servers and of the requests their handlers hold. Stopping with
 * requests in flight (the grace period honoured, then the rest killed; a second stop kills at
 * once), freeing with requests in flight, clients that leave while a handler is still
 * answering (it is told, and everything it registered with its request is released), and a
 * thousand servers made and freed on one loop without growth in memory or descriptors.
 */
#include "harness.h"

#include <fcntl.h>
#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifdef UNDER_ASAN
/* From the sanitizer runtime (declared here: GCC installs no sanitizer headers). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* What the handlers below did, over every request. */
typedef struct counters {
    struct ev_loop *loop;
    int calls, aborts, released, answered, writes, fds_closed;
} counters;

/* One held request: its timer, a descriptor and some memory, all registered with the request's
 * custodian. */
typedef struct pending {
    counters *k;
    pt_request *req;
    ev_timer timer;
    int fd;
    bool streaming;
    unsigned ticks;
} pending;

static void pending_release(void *data)
{
    pending *p = data;
    p->k->released++;
    ev_timer_stop(p->k->loop, &p->timer);
    if (p->fd >= 0 && close(p->fd) == 0)
        p->k->fds_closed++;
    p->fd = -1;
}

static void pending_abort(pt_request *req, void *data)
{
    pending *p = data;
    p->k->aborts++;
}

static void pending_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    pending *p = w->data;
    if (!p->streaming) {
        p->k->answered++;
        pt_respond(p->req, 200, "text/plain", "finished\n", 9);
        return;
    }
    char piece[32];
    int n = snprintf(piece, sizeof piece, "tick %u\n", ++p->ticks);
    if (pt_response_write(p->req, piece, (size_t)n) >= 0)
        p->k->writes++;
}

/* "/hold?ms=N": answers after N ms (never without ms). "/stream": writes a piece every 20 ms
 * until the client goes. Either way with a timer, an fd and memory owned by the request. */
static void on_hold(pt_request *req, void *data)
{
    counters *k = data;
    k->calls++;
    pt_custodian *c = pt_request_custodian(req);
    pending *p = pt_custodian_alloc(c, sizeof *p);
    p->k = k;
    p->req = req;
    p->fd = -1;
    pt_custodian_register(c, pending_release, p);
    p->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    (void)pt_custodian_alloc(c, 64 * 1024);
    pt_request_on_abort(req, pending_abort, p);
    pt_slice path = pt_request_path(req), q = pt_request_query(req);
    p->streaming = pt_slice_eq(path, "/stream");
    double delay = 3600;
    if (q.len > 3 && memcmp(q.ptr, "ms=", 3) == 0)
        delay = strtod(q.ptr + 3, NULL) / 1000;
    ev_timer_init(&p->timer, pending_fire, p->streaming ? 0.02 : delay, p->streaming ? 0.02 : 0);
    p->timer.data = p;
    if (p->streaming && pt_respond_stream(req, 200, "text/plain", -1) < 0)
        return;
    ev_timer_start(k->loop, &p->timer);
}

static pt_server *hold_server(fixture *f, counters *k, double grace, int *port)
{
    pt_server_options o;
    pt_server_options_init(&o);
    pt_limits limits;
    pt_limits_init(&limits);
    limits.shutdown_grace_period = grace;
    o.limits = &limits;
    pt_server *s = server_new(f, &o, port);
    assert_int_equal(pt_server_handle(s, NULL, "/", PT_PATH_PREFIX, on_hold, k), 0);
    assert_int_equal(pt_server_start(s), 0);
    return s;
}

static counters *wait_k;
static int wait_calls;

static bool handlers_called(fixture *f)
{
    return wait_k->calls >= wait_calls;
}

static void wait_for_calls(fixture *f, counters *k, int n)
{
    wait_k = k;
    wait_calls = n;
    run_until(f, handlers_called, WATCHDOG_SECONDS);
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

static void test_stop_honours_the_grace_period_then_kills(void **state)
{
    fixture *f = fixture_new();
    counters k = {.loop = f->loop};
    int port;
    pt_server *s = hold_server(f, &k, 0.5, &port);
    client *quick =
        client_start(f, 0, port, 0, "GET /hold?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    client *stuck = client_start(f, 1, port, 0, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    wait_for_calls(f, &k, 2);

    double t0 = now_of(f);
    f->stopped = false;
    pt_server_stop(s, on_stopped, f);
    assert_true(refused(port)); /* no new connection once stopping */
    run_until(f, is_stopped, WATCHDOG_SECONDS);
    run_until(f, all_clients_done, WATCHDOG_SECONDS);

    /* The request that finished within the grace period got its whole answer (and then its
     * connection closed, though it asked for keep-alive); the other was killed at its end. */
    assert_int_equal(status_of(quick), 200);
    assert_string_equal(body_of(quick), "finished\n");
    char v[32];
    assert_string_equal(header_of(quick, "Connection", v, sizeof v), "close");
    assert_true(quick->eof);
    assert_int_equal(stuck->len, 0);
    assert_int_equal(k.answered, 1);
    assert_int_equal(k.aborts, 1);
    assert_int_equal(k.released, 2);
    assert_int_equal(k.fds_closed, 2);
    double took = f->stopped_at - t0;
    if (took < 0.45 || took > 2.0)
        fail_msg("stopped after %.3f s with a grace period of 0.5 s", took);
    pt_server_free(s);
    fixture_free(f);
}

static void test_second_stop_kills_at_once(void **state)
{
    fixture *f = fixture_new();
    counters k = {.loop = f->loop};
    int port;
    pt_server *s = hold_server(f, &k, 30, &port);
    client_start(f, 0, port, 0, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    client_start(f, 1, port, 0, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    wait_for_calls(f, &k, 2);

    double t0 = now_of(f);
    f->stopped = false;
    pt_server_stop(s, on_stopped, f);
    run_for(f, 0.1);
    assert_false(f->stopped); /* within a 30 s grace period, both still run */
    assert_int_equal(k.aborts, 0);
    pt_server_stop(s, on_stopped, f);
    run_until(f, is_stopped, WATCHDOG_SECONDS);
    assert_true(f->stopped_at - t0 < 1.5);
    assert_int_equal(k.aborts, 2);
    assert_int_equal(k.released, 2);
    run_until(f, all_clients_done, WATCHDOG_SECONDS);
    pt_server_free(s);
    fixture_free(f);
}

static void test_free_with_requests_in_flight(void **state)
{
    fixture *f = fixture_new();
    counters k = {.loop = f->loop};
    int port;
    pt_server *s = hold_server(f, &k, 10, &port);
    client_start(f, 0, port, 0, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    client_start(f, 1, port, 0, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    wait_for_calls(f, &k, 2);
    pt_server_free(s); /* without a stop: every handler is told, everything released */
    assert_int_equal(k.aborts, 2);
    assert_int_equal(k.released, 2);
    assert_int_equal(k.fds_closed, 2);
    run_until(f, all_clients_done, WATCHDOG_SECONDS);
    fixture_free(f);
}

static bool released_one(fixture *f)
{
    return wait_k->released >= 1;
}

/* The client closes while its handler still answers: streaming, waiting, or reading a body. */
static void test_client_leaves_mid_answer(void **state)
{
    static const struct {
        const char *what, *request, *stop_at;
    } cases[] = {
        {"streaming", "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", "tick 3\n"},
        {"waiting", "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", NULL},
        {"body unread", "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fixture *f = fixture_new();
        counters k = {.loop = f->loop};
        int port;
        pt_server *s = hold_server(f, &k, 10, &port);
        pt_resource_counts before;
        pt_resource_counts_get(&before);
        int fds_before = count_fds();

        client *c = &f->clients[0];
        c->stop_at = cases[i].stop_at;
        c->leave_after_ms = cases[i].stop_at ? 0 : 100; /* no answer comes: it gives up */
        client_start(f, 0, port, 0, cases[i].request, NULL);
        wait_for_calls(f, &k, 1);
        wait_k = &k;
        run_until(f, released_one, WATCHDOG_SECONDS);
        run_until(f, all_clients_done, WATCHDOG_SECONDS);
        pthread_join(c->thread, NULL);
        c->started = false;
        run_for(f, 0.05); /* the end of the iteration reaps what was released */

        if (k.aborts != 1 || k.released != 1 || k.fds_closed != 1)
            fail_msg("%s: %d aborts, %d released, %d fds closed", cases[i].what, k.aborts,
                     k.released, k.fds_closed);
        if (cases[i].stop_at)
            assert_true(k.writes >= 3);
        /* The connection and the request are gone: back to what the idle server holds. */
        pt_resource_counts after;
        pt_resource_counts_get(&after);
        assert_int_equal(after.custodians, before.custodians);
        assert_int_equal(after.chunks, before.chunks);
        assert_int_equal(count_fds(), fds_before);
        server_stop_free(f, s);
        fixture_free(f);
    }
}

/* ---- a thousand servers on one loop ---- */

#ifdef UNDER_ASAN
/* Freed memory waits in ASan's quarantine before reuse; a small one keeps RSS meaningful. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=2";
}
#endif

/* Bytes of heap in use (allocated and not freed). */
static size_t heap_in_use(void)
{
#ifdef UNDER_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
#endif
}

static size_t rss_bytes(void)
{
    long size = 0, resident = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    assert_non_null(fp);
    assert_int_equal(fscanf(fp, "%ld %ld", &size, &resident), 2);
    fclose(fp);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void on_ok(pt_request *req, void *data)
{
    pt_respond(req, 200, "text/plain", "ok", 2);
}

/* One server's whole life: made from options, an address, a handler, started, maybe a
 * request, stopped, freed. */
static void one_server(fixture *f, bool with_request)
{
    pt_server_options o;
    pt_server_options_init(&o);
    int port;
    pt_server *s = server_new(f, &o, &port);
    assert_int_equal(pt_server_handle(s, "GET", "/", PT_PATH_EXACT, on_ok, NULL), 0);
    assert_int_equal(pt_server_start(s), 0);
    if (with_request) {
        client *c = fetch(f, port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_string_equal(body_of(c), "ok");
    }
    server_stop_free(f, s);
}

#define SERVERS 1000

static void test_a_thousand_servers_on_one_loop(void **state)
{
    fixture *f = fixture_new();
    /* Warm-up: first-use allocations (pools, libc and resolver caches) are not growth. */
    for (int i = 0; i < 50; i++)
        one_server(f, i % 10 == 0);
#ifndef UNDER_ASAN
    malloc_trim(0);
#endif
    size_t heap0 = heap_in_use(), rss0 = rss_bytes();
    int fds0 = count_fds();
    double t0 = now_of(f);
    for (int i = 0; i < SERVERS; i++)
        one_server(f, i % 100 == 0);
#ifndef UNDER_ASAN
    malloc_trim(0);
#endif
    size_t heap1 = heap_in_use(), rss1 = rss_bytes();
    int fds1 = count_fds();
    print_message("%d servers in %.1f s: heap %zu -> %zu bytes, RSS %zu -> %zu KiB, %d -> %d fds\n",
                  SERVERS, now_of(f) - t0, heap0, heap1, rss0 / 1024, rss1 / 1024, fds0, fds1);
    assert_int_equal(fds1, fds0);
    /* A leak of even 128 bytes per server would show here; a little slack for allocator state
     * that settles over time. */
    assert_true(heap1 <= heap0 + 128 * SERVERS);
    assert_true(rss1 <= rss0 + 8 * 1024 * 1024);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_honours_the_grace_period_then_kills),
        cmocka_unit_test(test_second_stop_kills_at_once),
        cmocka_unit_test(test_free_with_requests_in_flight),
        cmocka_unit_test(test_client_leaves_mid_answer),
        cmocka_unit_test(test_a_thousand_servers_on_one_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
