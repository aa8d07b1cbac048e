/*
 * The stats board: one slot of counters per worker, in memory shared by the master and its
 * workers (made before they fork), so the status page and the metrics of any worker show all of
 * them. Each worker writes only its own slot; readers add the slots up.
 *
 * A slot holds three parts:
 *   - pt_worker_stats: what the worker copies from its connection managers, HTTP/2 and TLS
 *     counters and file cache once a second, and when it answers a status or metrics request;
 *     a reader may see it mid-update, which costs at most one second of staleness in one number;
 *   - a pt_stats_server per server series (the servers of the conf, those sharing a label
 *     together): requests by method and status class, their durations, bytes in and out, added
 *     as each request ends (pt_stats_count_request) with a few plain increments;
 *   - a pt_stats_upstream per upstream server registered (pt_stats_board_add_upstream).
 * The counters of the last two are written by one process only (the slot's worker) with relaxed
 * atomic loads and stores, which cost what plain ones do: no lock, no read-modify-write, no
 * allocation. Readers load them the same way, and see each number whole.
 *
 * Lifetime: pt_stats_board_new() makes the board; the series are added while the server is
 * made (before the workers fork), then pt_stats_board_open() maps the slots, after which the
 * layout is fixed. The board is counted (pt_stats_board_ref, pt_stats_board_unref): a board
 * made by a reload holds the one it replaces (pt_stats_board_set_previous), whose workers may
 * still be finishing their connections, so that their connections show as draining.
 *
 * Threading: a board is built on one thread; once open, each worker's loop writes its slot and
 * any process reads every slot. Errors: negative errno.
 */
#ifndef PORTER_SERVER_CORE_STATS_H
#define PORTER_SERVER_CORE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pt_request pt_request;

typedef struct pt_worker_stats {
    pid_t pid; /* 0: the slot has not reported */
    int slot;
    double started, updated; /* ev_now() clock */
    /* connections now: all, by state, those of the idle ones that are parked, and those of
     * connection managers that are draining (the worker is stopping) */
    uint64_t live, reading, writing, idle, parked, lingering, draining;
    uint64_t accepted, handled, rejected, requests, invalid, bytes_in, bytes_out;
    uint64_t custodians, timers;
    uint64_t cache_hits, cache_misses, cache_bytes;
    /* HTTP/2: connections so far and now, streams, RST_STREAM received, connections ended for
     * a flood and for a protocol error */
    uint64_t h2_connections, h2_live, h2_streams, h2_resets, h2_floods, h2_errors;
    /* TLS: handshakes completed, those that resumed a session (cache or ticket), and those
     * that failed (an alert, a timeout, a client gone mid-handshake) */
    uint64_t tls_handshakes, tls_resumed, tls_failed;
} pt_worker_stats;

/* The request-duration and upstream response-time histograms: PT_STATS_BUCKETS buckets, the
 * last one +Inf, with these upper bounds in seconds (docs/metrics.md lists them). */
#define PT_STATS_BUCKETS 16
extern const double pt_stats_bounds[PT_STATS_BUCKETS - 1];

/* Methods apart, and the rest as "other": GET HEAD POST PUT DELETE PATCH OPTIONS CONNECT TRACE
 * other. */
#define PT_STATS_METHODS 10
extern const char *const pt_stats_methods[PT_STATS_METHODS];

/* Status classes: 1xx .. 5xx. */
#define PT_STATS_CLASSES 5

/* A histogram as stored: each bucket counts the values above the previous bound up to its own
 * (readers make them cumulative); the sum in microseconds. Its count is the buckets' sum. */
typedef struct pt_stats_histogram {
    uint64_t buckets[PT_STATS_BUCKETS];
    uint64_t sum_us;
} pt_stats_histogram;

/* One server series in one worker's slot: the requests answered, as the access log sees them. */
typedef struct pt_stats_server {
    uint64_t requests[PT_STATS_METHODS][PT_STATS_CLASSES];
    pt_stats_histogram duration; /* first byte of the request to its response complete */
    uint64_t bytes_in;           /* $request_length: request line, header and body */
    uint64_t bytes_out;          /* $bytes_sent: response head (HTTP/1) and body */
} pt_stats_server;

/* An upstream server's state, as the upstream side reports it. A reader combines the workers'
 * views into the worst one (down over draining over up); unknown says nothing. */
typedef enum pt_stats_upstream_state {
    PT_STATS_UPSTREAM_UNKNOWN = 0,
    PT_STATS_UPSTREAM_UP,
    PT_STATS_UPSTREAM_DRAINING,
    PT_STATS_UPSTREAM_DOWN,
} pt_stats_upstream_state;

/* What the code that registers an upstream server fills in itself (a mask of these): the
 * metrics and the status page show a field only when it is reported, so a number nobody
 * counts never reads as zero. `responses` and `response_time` are always counted: from the
 * proxy's attempts ($upstream_status, $upstream_response_time) when a request ends. */
enum {
    PT_STATS_REPORTS_STATE = 1,    /* `state`: pt_stats_upstream_set_state */
    PT_STATS_REPORTS_ACTIVE = 2,   /* `active`: pt_stats_upstream_set_active */
    PT_STATS_REPORTS_FAILURES = 4, /* `failures`: pt_stats_upstream_failed */
    PT_STATS_REPORTS_HEALTH = 8,   /* `health_passed`, `health_failed`: pt_stats_upstream_health */
};

/* One upstream server in one worker's slot. */
typedef struct pt_stats_upstream {
    uint64_t state;                        /* pt_stats_upstream_state, this worker's view */
    uint64_t active;                       /* connections to it in use by this worker now */
    uint64_t responses[PT_STATS_CLASSES];  /* attempts by the class of their $upstream_status */
    pt_stats_histogram response_time;      /* each attempt's $upstream_response_time */
    uint64_t failures;                     /* attempts that failed (connect, timeout, answer) */
    uint64_t health_passed, health_failed; /* active health checks */
} pt_stats_upstream;

typedef struct pt_stats_board pt_stats_board;

/* Where one worker counts the requests of one server: its series in the worker's slot, and the
 * board (for the upstream servers of the proxy's attempts). Process-local: filled when the
 * worker starts (pt_stats_board_sink), read by pt_stats_count_request through the request. */
typedef struct pt_stats_sink {
    pt_stats_server *server;
    pt_stats_board *board;
    int slot;
} pt_stats_sink;

/* ---- the single-writer counters: a load and a store, no read-modify-write ---- */

static inline void pt_stats_add(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void pt_stats_set(uint64_t *gauge, uint64_t v)
{
    __atomic_store_n(gauge, v, __ATOMIC_RELAXED);
}

static inline uint64_t pt_stats_get(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* ---- building the board (before the workers fork) ---- */

/* Makes a board of `nslots` worker slots, not yet mapped, with one reference. NULL if out of
 * memory. */
pt_stats_board *pt_stats_board_new(int nslots);

/* Adds the server series `name` (copied) and returns its index; a name added before gives the
 * same index. -EBUSY once the board is open, -ENOMEM. */
int pt_stats_board_add_server(pt_stats_board *b, const char *name);

/*
 * The interface of the upstream side. Registers the server `server` of the upstream `upstream`
 * (both copied: the labels the metrics show), and returns its index for
 * pt_stats_board_upstream(); the pair added before gives the same index, and `reports` (a mask
 * of PT_STATS_REPORTS_*) adds to what it had. `key` (borrowed, may be NULL) is what the proxy's
 * attempts name the server by: the `addr` of pt_request_upstream_begin(), a string whose
 * address stays the same while the server runs; pt_stats_count_request() counts each attempt
 * of a request in the series of its key. -EBUSY once the board is open, -ENOMEM.
 */
int pt_stats_board_add_upstream(pt_stats_board *b, const char *upstream, const char *server,
                                const void *key, unsigned reports);

/* Maps the slots, zeroed and shared with the processes forked after. Returns 0 or -ENOMEM. */
int pt_stats_board_open(pt_stats_board *b);

/* Makes `b` hold `previous` (a reference is taken; the one it held goes): the board of the
 * server a reload replaced, whose workers may still be draining. What `previous` held goes. */
void pt_stats_board_set_previous(pt_stats_board *b, pt_stats_board *previous);

/* Adds a reference; returns `b`. */
pt_stats_board *pt_stats_board_ref(pt_stats_board *b);

/* Drops a reference; the last one unmaps the slots and frees the board. NULL: no-op. */
void pt_stats_board_unref(pt_stats_board *b);

/* ---- a worker's slot (the board open) ---- */

int pt_stats_board_nslots(const pt_stats_board *b);
pt_worker_stats *pt_stats_board_slot(pt_stats_board *b, int slot);
pt_stats_server *pt_stats_board_server(pt_stats_board *b, int slot, int index);
pt_stats_upstream *pt_stats_board_upstream(pt_stats_board *b, int slot, int index);

/* Fills `sink` for the series `index` of the worker `slot`. */
void pt_stats_board_sink(pt_stats_board *b, int slot, int index, pt_stats_sink *sink);

/* The upstream series whose key is `key`, or -1. */
int pt_stats_board_find_upstream(const pt_stats_board *b, const void *key);

/* ---- counting (the worker's loop) ---- */

/* Counts `req`, whose response is complete (its status and bytes set), in the series of
 * req->stats (nothing when NULL): its method and status class, its duration until now, its
 * bytes; and each attempt of the proxy's whose server is registered. A few increments. */
void pt_stats_count_request(const pt_request *req);

/* Adds `seconds` to `h`. */
void pt_stats_observe(pt_stats_histogram *h, double seconds);

/* The upstream side's writes into its worker's series `u` (the field's PT_STATS_REPORTS_*). */
static inline void pt_stats_upstream_set_state(pt_stats_upstream *u, pt_stats_upstream_state s)
{
    pt_stats_set(&u->state, (uint64_t)s);
}

static inline void pt_stats_upstream_set_active(pt_stats_upstream *u, uint64_t connections)
{
    pt_stats_set(&u->active, connections);
}

static inline void pt_stats_upstream_failed(pt_stats_upstream *u)
{
    pt_stats_add(&u->failures, 1);
}

static inline void pt_stats_upstream_health(pt_stats_upstream *u, bool passed)
{
    pt_stats_add(passed ? &u->health_passed : &u->health_failed, 1);
}

/* ---- reading (any process; the board open) ---- */

size_t pt_stats_board_nservers(const pt_stats_board *b);
const char *pt_stats_board_server_name(const pt_stats_board *b, size_t index);
size_t pt_stats_board_nupstreams(const pt_stats_board *b);
/* The labels of the upstream series `index`, and what its registration reports. */
void pt_stats_board_upstream_names(const pt_stats_board *b, size_t index, const char **upstream,
                                   const char **server, unsigned *reports);

/* The series `index` summed over every slot (a worker that died and was replaced kept its
 * slot: its counts stay in). */
void pt_stats_board_sum_server(const pt_stats_board *b, size_t index, pt_stats_server *out);

/* The same for an upstream server; `state` the worst any worker reports, `active` the sum. */
void pt_stats_board_sum_upstream(const pt_stats_board *b, size_t index, pt_stats_upstream *out);

/* Connections still open in the workers of the previous board (a reload's predecessors that
 * are alive): they are draining. */
uint64_t pt_stats_board_previous_live(const pt_stats_board *b);

/* Adds the counters and gauges of `w` to `total` (pid, slot and times stay). */
void pt_worker_stats_add(pt_worker_stats *total, const pt_worker_stats *w);

/* The workers' counters summed into `total` (those of the slots that reported), with the
 * previous board's live connections added to its draining ones; returns how many reported. */
int pt_stats_board_total(const pt_stats_board *b, pt_worker_stats *total);

/* A histogram's count (its buckets' sum), of a copy. */
uint64_t pt_stats_histogram_count(const pt_stats_histogram *h);

/* The requests of a server series (a copy), all methods and classes. */
uint64_t pt_stats_server_requests(const pt_stats_server *s);

#endif
