/*
 * The work pool (workpool.h): a queue under a mutex, threads that take from it, and a list of
 * finished jobs the loop collects on an ev_async.
 */
#include "server/core/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

enum { QUEUED = 1, RUNNING, FINISHED };

struct pt_workpool {
    struct ev_loop *loop;
    pt_custodian_entry *entry; /* its release, on the owner's custodian */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pt_work *queue, *queue_tail; /* guarded by mu, like done, state, idle and quit */
    pt_work *done;
    pthread_t threads[PT_WORKPOOL_THREADS];
    int nthreads, idle;
    bool quit;
    ev_async async;
    size_t outstanding; /* the loop's: submitted and not yet handed to `done` */
};

static void *worker_main(void *arg)
{
    pt_workpool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->queue && !p->quit) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (p->quit)
            break;
        pt_work *w = p->queue;
        p->queue = w->next;
        if (!p->queue)
            p->queue_tail = NULL;
        w->state = RUNNING;
        pthread_mutex_unlock(&p->mu);
        w->run(w);
        w->status = 0;
        pthread_mutex_lock(&p->mu);
        w->state = FINISHED;
        w->next = p->done;
        p->done = w;
        /* under the lock: the release, which stops the watcher, joins this thread first */
        ev_async_send(p->loop, &p->async);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* One job fewer in flight: the watcher stops with the last, so an idle pool keeps no loop
 * running. */
static void settled(pt_workpool *p)
{
    if (--p->outstanding == 0)
        ev_async_stop(p->loop, &p->async);
}

static void on_done(struct ev_loop *loop, ev_async *a, int revents)
{
    pt_workpool *p = a->data;
    pthread_mutex_lock(&p->mu);
    pt_work *list = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);
    /* oldest first: the list was pushed at its head */
    pt_work *rev = NULL;
    while (list) {
        pt_work *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        pt_work *w = rev;
        rev = w->next;
        w->next = NULL;
        w->state = 0;
        settled(p);
        w->done(w);
    }
}

int pt_workpool_submit(pt_workpool *p, pt_work *w)
{
    if (p->quit)
        return -ECANCELED;
    /* active before a thread can finish the job: a send to a stopped watcher is lost */
    if (p->outstanding == 0)
        ev_async_start(p->loop, &p->async);
    int r = 0;
    pthread_mutex_lock(&p->mu);
    if (p->idle == 0 && p->nthreads < PT_WORKPOOL_THREADS) {
        /* the thread takes no signal: they stay with the loop's thread */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r == 0)
            p->nthreads++;
        else if (p->nthreads > 0)
            r = 0; /* the threads there will get to it */
    }
    if (r == 0) {
        w->next = NULL;
        w->state = QUEUED;
        w->status = 0;
        if (p->queue_tail)
            p->queue_tail->next = w;
        else
            p->queue = w;
        p->queue_tail = w;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (r == 0)
        p->outstanding++;
    else if (p->outstanding == 0)
        ev_async_stop(p->loop, &p->async);
    return r;
}

bool pt_workpool_cancel(pt_workpool *p, pt_work *w)
{
    bool taken = false;
    pthread_mutex_lock(&p->mu);
    if (w->state == QUEUED) {
        pt_work **at = &p->queue, *prev = NULL;
        while (*at != w) {
            prev = *at;
            at = &(*at)->next;
        }
        *at = w->next;
        if (p->queue_tail == w)
            p->queue_tail = prev;
        w->next = NULL;
        w->state = 0;
        taken = true;
    }
    pthread_mutex_unlock(&p->mu);
    if (taken)
        settled(p);
    return taken;
}

size_t pt_workpool_pending(const pt_workpool *p)
{
    return p->outstanding;
}

int pt_workpool_threads(const pt_workpool *p)
{
    return p->nthreads;
}

static void release(void *data)
{
    pt_workpool *p = data;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
    /* the threads are gone: what they finished, then what they never started */
    on_done(p->loop, &p->async, 0);
    while (p->queue) {
        pt_work *w = p->queue;
        p->queue = w->next;
        w->next = NULL;
        w->state = 0;
        w->status = -ECANCELED;
        settled(p);
        w->done(w);
    }
    p->queue_tail = NULL;
    ev_async_stop(p->loop, &p->async);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int pt_workpool_new(pt_workpool **out, struct ev_loop *loop, pt_custodian *owner)
{
    *out = NULL;
    pt_workpool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->entry = pt_custodian_register(owner, release, p);
    if (!p->entry) {
        free(p);
        return -ECANCELED;
    }
    p->loop = loop;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    ev_async_init(&p->async, on_done);
    p->async.data = p;
    *out = p;
    return 0;
}
