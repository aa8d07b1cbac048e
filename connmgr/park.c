#include "connmgr/park.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

typedef struct parked parked;
struct parked {
    parked *prev, *next; /* oldest first */
    double deadline;
    int fd;
    unsigned requests;
    socklen_t peerlen;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;
};

/* Records come in slabs so a parked connection costs its record and nothing else. */
#define SLAB_RECORDS 64

typedef struct slab {
    struct slab *next;
    parked records[SLAB_RECORDS];
} slab;

struct pt_parking {
    struct ev_loop *loop;
    int epfd;
    ev_io io;        /* the epoll set is readable: some parked client spoke */
    ev_timer expiry; /* the oldest record's deadline */
    parked *head, *tail;
    parked *free_records;
    slab *slabs;
    size_t count;
    pt_unpark_cb unpark;
    pt_parked_closed_cb closed;
    void *data;
};

static void unlink_record(pt_parking *p, parked *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        p->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        p->tail = r->prev;
    r->next = p->free_records;
    p->free_records = r;
    p->count--;
}

/* The watchers run only while something is parked, so an empty lot keeps no loop alive. */
static void update_watchers(pt_parking *p)
{
    if (p->count && !ev_is_active(&p->io))
        ev_io_start(p->loop, &p->io);
    else if (!p->count && ev_is_active(&p->io))
        ev_io_stop(p->loop, &p->io);
    ev_timer_stop(p->loop, &p->expiry);
    if (p->head && isfinite(p->head->deadline)) {
        double after = p->head->deadline - ev_now(p->loop);
        ev_timer_set(&p->expiry, after > 0 ? after : 0, 0);
        ev_timer_start(p->loop, &p->expiry);
    }
}

static void close_record(pt_parking *p, parked *r)
{
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, r->fd, NULL);
    close(r->fd);
    if (p->closed)
        p->closed(&r->peer.sa, p->data);
    unlink_record(p, r);
}

static void on_expiry(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_parking *p = w->data;
    double now = ev_now(loop);
    while (p->head && p->head->deadline <= now)
        close_record(p, p->head);
    update_watchers(p);
}

static void on_ready(struct ev_loop *loop, ev_io *w, int revents)
{
    pt_parking *p = w->data;
    struct epoll_event evs[64];
    int n = epoll_wait(p->epfd, evs, 64, 0);
    for (int i = 0; i < n; i++) {
        parked *r = evs[i].data.ptr;
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, r->fd, NULL);
        parked copy = *r;
        unlink_record(p, r);
        p->unpark(copy.fd, copy.peerlen ? &copy.peer.sa : NULL, copy.peerlen, copy.requests,
                  p->data);
    }
    update_watchers(p);
}

int pt_parking_new(pt_parking **out, struct ev_loop *loop, pt_unpark_cb unpark,
                   pt_parked_closed_cb closed, void *data)
{
    pt_parking *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->epfd = -1; /* made with the first parked socket */
    p->loop = loop;
    p->unpark = unpark;
    p->closed = closed;
    p->data = data;
    ev_init(&p->io, on_ready);
    p->io.data = p;
    ev_timer_init(&p->expiry, on_expiry, 0, 0);
    p->expiry.data = p;
    *out = p;
    return 0;
}

static parked *new_record(pt_parking *p)
{
    if (!p->free_records) {
        slab *s = malloc(sizeof *s);
        if (!s)
            return NULL;
        s->next = p->slabs;
        p->slabs = s;
        for (int i = SLAB_RECORDS - 1; i >= 0; i--) {
            s->records[i].next = p->free_records;
            p->free_records = &s->records[i];
        }
    }
    parked *r = p->free_records;
    p->free_records = r->next;
    return r;
}

bool pt_parking_park(pt_parking *p, pt_conn *c, double deadline)
{
    if (p->epfd < 0) {
        p->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (p->epfd < 0)
            return false;
        ev_io_set(&p->io, p->epfd, EV_READ);
    }
    parked *r = new_record(p);
    if (!r)
        return false;
    r->fd = c->transport.fd;
    r->deadline = deadline;
    r->requests = c->requests;
    r->peerlen = c->peerlen;
    memcpy(&r->peer, &c->peer, sizeof r->peer);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = r};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, r->fd, &ev) < 0) {
        r->next = p->free_records;
        p->free_records = r;
        return false;
    }
    /* Deadlines of one manager grow with parking time: appending keeps the list sorted. */
    r->next = NULL;
    r->prev = p->tail;
    if (p->tail)
        p->tail->next = r;
    else
        p->head = r;
    p->tail = r;
    p->count++;
    update_watchers(p);
    return true;
}

bool pt_parking_evict_oldest(pt_parking *p)
{
    if (!p->head)
        return false;
    close_record(p, p->head);
    update_watchers(p);
    return true;
}

void pt_parking_close_all(pt_parking *p)
{
    while (p->head)
        close_record(p, p->head);
    update_watchers(p);
}

size_t pt_parking_count(const pt_parking *p)
{
    return p->count;
}

void pt_parking_free(pt_parking *p)
{
    if (!p)
        return;
    pt_parking_close_all(p);
    ev_io_stop(p->loop, &p->io);
    ev_timer_stop(p->loop, &p->expiry);
    if (p->epfd >= 0)
        close(p->epfd);
    while (p->slabs) {
        slab *s = p->slabs;
        p->slabs = s->next;
        free(s);
    }
    free(p);
}
