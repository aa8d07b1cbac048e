#include "server/core/stats.h"

#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "server/core/request.h"

const double pt_stats_bounds[PT_STATS_BUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

const char *const pt_stats_methods[PT_STATS_METHODS] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
};

#define OTHER_METHOD (PT_STATS_METHODS - 1)

/* Slots start on their own cache lines: two workers never write one line. */
#define LINE 64

typedef struct upstream_series {
    char *upstream, *server;
    const void *key;
    unsigned reports;
} upstream_series;

struct pt_stats_board {
    unsigned refs;
    int nslots;
    char **servers; /* the server series' names */
    size_t nservers;
    upstream_series *upstreams;
    size_t nupstreams;
    /* key -> upstream series + 1 (0: empty), open addressing; size a power of two */
    const void **map_keys;
    int *map_index;
    size_t map_size;
    /* the slots, once open */
    char *shm;
    size_t shm_size, slot_size, servers_at, upstreams_at;
    pt_stats_board *previous;
};

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

pt_stats_board *pt_stats_board_new(int nslots)
{
    if (nslots < 1)
        return NULL;
    pt_stats_board *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->refs = 1;
    b->nslots = nslots;
    return b;
}

int pt_stats_board_add_server(pt_stats_board *b, const char *name)
{
    if (b->shm)
        return -EBUSY;
    for (size_t i = 0; i < b->nservers; i++)
        if (strcmp(b->servers[i], name) == 0)
            return (int)i;
    char **v = realloc(b->servers, (b->nservers + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    b->servers = v;
    if (!(v[b->nservers] = strdup(name)))
        return -ENOMEM;
    return (int)b->nservers++;
}

int pt_stats_board_add_upstream(pt_stats_board *b, const char *upstream, const char *server,
                                const void *key, unsigned reports)
{
    if (b->shm)
        return -EBUSY;
    for (size_t i = 0; i < b->nupstreams; i++) {
        upstream_series *u = &b->upstreams[i];
        if (strcmp(u->upstream, upstream) == 0 && strcmp(u->server, server) == 0) {
            u->reports |= reports;
            if (!u->key)
                u->key = key;
            return (int)i;
        }
    }
    upstream_series *v = realloc(b->upstreams, (b->nupstreams + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    b->upstreams = v;
    upstream_series *u = &v[b->nupstreams];
    *u = (upstream_series){strdup(upstream), strdup(server), key, reports};
    if (!u->upstream || !u->server) {
        free(u->upstream);
        free(u->server);
        return -ENOMEM;
    }
    return (int)b->nupstreams++;
}

static size_t key_hash(const void *key, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)key * UINT64_C(0x9e3779b97f4a7c15);
    return (size_t)(h >> 32) & mask;
}

static int build_map(pt_stats_board *b)
{
    size_t size = 8;
    while (size < b->nupstreams * 2)
        size *= 2;
    b->map_keys = calloc(size, sizeof *b->map_keys);
    b->map_index = calloc(size, sizeof *b->map_index);
    if (!b->map_keys || !b->map_index)
        return -ENOMEM;
    b->map_size = size;
    for (size_t i = 0; i < b->nupstreams; i++) {
        const void *key = b->upstreams[i].key;
        if (!key)
            continue;
        size_t h = key_hash(key, size - 1);
        while (b->map_index[h] && b->map_keys[h] != key)
            h = (h + 1) & (size - 1);
        b->map_keys[h] = key;
        b->map_index[h] = (int)i + 1;
    }
    return 0;
}

int pt_stats_board_open(pt_stats_board *b)
{
    if (b->shm)
        return 0;
    b->servers_at = round_up(sizeof(pt_worker_stats), LINE);
    b->upstreams_at = b->servers_at + b->nservers * sizeof(pt_stats_server);
    b->slot_size = round_up(b->upstreams_at + b->nupstreams * sizeof(pt_stats_upstream), LINE);
    b->shm_size = (size_t)b->nslots * b->slot_size;
    if (build_map(b) < 0)
        return -ENOMEM;
    void *p = mmap(NULL, b->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    b->shm = p;
    return 0;
}

void pt_stats_board_set_previous(pt_stats_board *b, pt_stats_board *previous)
{
    pt_stats_board *old = b->previous;
    b->previous = previous ? pt_stats_board_ref(previous) : NULL;
    /* Only one generation back: what the previous one held goes. */
    if (previous && previous->previous) {
        pt_stats_board_unref(previous->previous);
        previous->previous = NULL;
    }
    pt_stats_board_unref(old);
}

pt_stats_board *pt_stats_board_ref(pt_stats_board *b)
{
    b->refs++;
    return b;
}

void pt_stats_board_unref(pt_stats_board *b)
{
    if (!b || --b->refs > 0)
        return;
    pt_stats_board_unref(b->previous);
    if (b->shm)
        munmap(b->shm, b->shm_size);
    for (size_t i = 0; i < b->nservers; i++)
        free(b->servers[i]);
    free(b->servers);
    for (size_t i = 0; i < b->nupstreams; i++) {
        free(b->upstreams[i].upstream);
        free(b->upstreams[i].server);
    }
    free(b->upstreams);
    free(b->map_keys);
    free(b->map_index);
    free(b);
}

/* ---- slots ---- */

int pt_stats_board_nslots(const pt_stats_board *b)
{
    return b->nslots;
}

static char *slot_at(const pt_stats_board *b, int slot)
{
    return b->shm + (size_t)slot * b->slot_size;
}

pt_worker_stats *pt_stats_board_slot(pt_stats_board *b, int slot)
{
    return (pt_worker_stats *)slot_at(b, slot);
}

pt_stats_server *pt_stats_board_server(pt_stats_board *b, int slot, int index)
{
    return (pt_stats_server *)(slot_at(b, slot) + b->servers_at) + index;
}

pt_stats_upstream *pt_stats_board_upstream(pt_stats_board *b, int slot, int index)
{
    return (pt_stats_upstream *)(slot_at(b, slot) + b->upstreams_at) + index;
}

void pt_stats_board_sink(pt_stats_board *b, int slot, int index, pt_stats_sink *sink)
{
    sink->server = pt_stats_board_server(b, slot, index);
    sink->board = b;
    sink->slot = slot;
}

int pt_stats_board_find_upstream(const pt_stats_board *b, const void *key)
{
    if (!key || !b->map_size)
        return -1;
    size_t mask = b->map_size - 1;
    for (size_t h = key_hash(key, mask); b->map_index[h]; h = (h + 1) & mask)
        if (b->map_keys[h] == key)
            return b->map_index[h] - 1;
    return -1;
}

/* ---- counting ---- */

void pt_stats_observe(pt_stats_histogram *h, double seconds)
{
    if (!(seconds > 0)) /* NaN too */
        seconds = 0;
    size_t i = 0;
    while (i < PT_STATS_BUCKETS - 1 && seconds > pt_stats_bounds[i])
        i++;
    pt_stats_add(&h->buckets[i], 1);
    /* through int64_t: one instruction, where a double to uint64_t conversion takes a branch */
    pt_stats_add(&h->sum_us, (uint64_t)(int64_t)(seconds * 1e6 + 0.5));
}

/* The method's series: by its number, if its name is the one of that number (a request refused
 * before its method was read has none: "-"). */
static unsigned method_index(const pt_request *req)
{
    unsigned i, len;
    switch (req->method_id) {
    case PT_METHOD_GET:
        i = 0, len = 3;
        break;
    case PT_METHOD_HEAD:
        i = 1, len = 4;
        break;
    case PT_METHOD_POST:
        i = 2, len = 4;
        break;
    case PT_METHOD_PUT:
        i = 3, len = 3;
        break;
    case PT_METHOD_DELETE:
        i = 4, len = 6;
        break;
    case PT_METHOD_PATCH:
        i = 5, len = 5;
        break;
    case PT_METHOD_OPTIONS:
        i = 6, len = 7;
        break;
    case PT_METHOD_CONNECT:
        i = 7, len = 7;
        break;
    case PT_METHOD_TRACE:
        i = 8, len = 5;
        break;
    default:
        return OTHER_METHOD;
    }
    return req->method.len == len ? i : OTHER_METHOD;
}

static unsigned status_class(int status)
{
    if (status < 200)
        return 0;
    if (status >= 500)
        return 4;
    return (unsigned)(status / 100 - 1);
}

/* The proxy's attempts, each in its server's series (one not registered is not counted). */
static void count_attempts(const pt_stats_sink *sink, const pt_request *req)
{
    const pt_upstream_tries *u = req->upstream;
    size_t n = u->n < PT_UPSTREAM_TRIES ? u->n : PT_UPSTREAM_TRIES;
    for (size_t i = 0; i < n; i++) {
        int index = pt_stats_board_find_upstream(sink->board, u->t[i].addr);
        if (index < 0)
            continue;
        pt_stats_upstream *s = pt_stats_board_upstream(sink->board, sink->slot, index);
        if (u->t[i].status)
            pt_stats_add(&s->responses[status_class(u->t[i].status)], 1);
        double end = u->t[i].end ? u->t[i].end : ev_now(req->loop);
        pt_stats_observe(&s->response_time, end - u->t[i].start);
    }
}

void pt_stats_count_request(const pt_request *req)
{
    const pt_stats_sink *sink = req->stats;
    if (!sink)
        return;
    pt_stats_server *s = sink->server;
    pt_stats_add(&s->requests[method_index(req)][status_class(req->status)], 1);
    pt_stats_observe(&s->duration, ev_now(req->loop) - req->start);
    pt_stats_add(&s->bytes_in, req->request_length);
    pt_stats_add(&s->bytes_out, req->head_bytes_sent + req->body_bytes_sent);
    if (req->upstream)
        count_attempts(sink, req);
}

/* ---- reading ---- */

size_t pt_stats_board_nservers(const pt_stats_board *b)
{
    return b->nservers;
}

const char *pt_stats_board_server_name(const pt_stats_board *b, size_t index)
{
    return b->servers[index];
}

size_t pt_stats_board_nupstreams(const pt_stats_board *b)
{
    return b->nupstreams;
}

void pt_stats_board_upstream_names(const pt_stats_board *b, size_t index, const char **upstream,
                                   const char **server, unsigned *reports)
{
    *upstream = b->upstreams[index].upstream;
    *server = b->upstreams[index].server;
    *reports = b->upstreams[index].reports;
}

static void add_histogram(pt_stats_histogram *to, const pt_stats_histogram *h)
{
    for (size_t i = 0; i < PT_STATS_BUCKETS; i++)
        to->buckets[i] += pt_stats_get(&h->buckets[i]);
    to->sum_us += pt_stats_get(&h->sum_us);
}

void pt_stats_board_sum_server(const pt_stats_board *b, size_t index, pt_stats_server *out)
{
    memset(out, 0, sizeof *out);
    for (int slot = 0; slot < b->nslots; slot++) {
        const pt_stats_server *s =
            (const pt_stats_server *)(slot_at(b, slot) + b->servers_at) + index;
        for (size_t m = 0; m < PT_STATS_METHODS; m++)
            for (size_t c = 0; c < PT_STATS_CLASSES; c++)
                out->requests[m][c] += pt_stats_get(&s->requests[m][c]);
        add_histogram(&out->duration, &s->duration);
        out->bytes_in += pt_stats_get(&s->bytes_in);
        out->bytes_out += pt_stats_get(&s->bytes_out);
    }
}

void pt_stats_board_sum_upstream(const pt_stats_board *b, size_t index, pt_stats_upstream *out)
{
    memset(out, 0, sizeof *out);
    for (int slot = 0; slot < b->nslots; slot++) {
        const pt_stats_upstream *u =
            (const pt_stats_upstream *)(slot_at(b, slot) + b->upstreams_at) + index;
        uint64_t state = pt_stats_get(&u->state);
        if (state > out->state)
            out->state = state;
        out->active += pt_stats_get(&u->active);
        for (size_t c = 0; c < PT_STATS_CLASSES; c++)
            out->responses[c] += pt_stats_get(&u->responses[c]);
        add_histogram(&out->response_time, &u->response_time);
        out->failures += pt_stats_get(&u->failures);
        out->health_passed += pt_stats_get(&u->health_passed);
        out->health_failed += pt_stats_get(&u->health_failed);
    }
}

/* Whether process `pid` is there (a worker that runs as another user answers EPERM). */
static bool alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

uint64_t pt_stats_board_previous_live(const pt_stats_board *b)
{
    const pt_stats_board *p = b->previous;
    uint64_t n = 0;
    if (!p || !p->shm)
        return 0;
    for (int slot = 0; slot < p->nslots; slot++) {
        const pt_worker_stats *w = (const pt_worker_stats *)slot_at(p, slot);
        if (alive(w->pid))
            n += w->live;
    }
    return n;
}

void pt_worker_stats_add(pt_worker_stats *t, const pt_worker_stats *w)
{
    t->live += w->live;
    t->reading += w->reading;
    t->writing += w->writing;
    t->idle += w->idle;
    t->parked += w->parked;
    t->lingering += w->lingering;
    t->draining += w->draining;
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
    t->tls_handshakes += w->tls_handshakes;
    t->tls_resumed += w->tls_resumed;
    t->tls_failed += w->tls_failed;
}

int pt_stats_board_total(const pt_stats_board *b, pt_worker_stats *total)
{
    int n = 0;
    memset(total, 0, sizeof *total);
    for (int slot = 0; slot < b->nslots; slot++) {
        pt_worker_stats w = *(const pt_worker_stats *)slot_at(b, slot);
        if (!w.pid)
            continue;
        pt_worker_stats_add(total, &w);
        n++;
    }
    total->draining += pt_stats_board_previous_live(b);
    return n;
}

uint64_t pt_stats_histogram_count(const pt_stats_histogram *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i < PT_STATS_BUCKETS; i++)
        n += h->buckets[i];
    return n;
}

uint64_t pt_stats_server_requests(const pt_stats_server *s)
{
    uint64_t n = 0;
    for (size_t m = 0; m < PT_STATS_METHODS; m++)
        for (size_t c = 0; c < PT_STATS_CLASSES; c++)
            n += s->requests[m][c];
    return n;
}
