/*
 * A few threads for work the loop must not wait for: a password hash that takes tens of
 * milliseconds (bcrypt) would stall every other connection of the worker for as long.
 *
 * A job is the caller's struct with a pt_work in it: pt_workpool_submit() queues it, a pool
 * thread runs its `run` (no loop, no custodian, nothing of porter's per-thread state: pure
 * computation on what the job holds), and its `done` runs on the loop's thread once the loop
 * sees the result (an ev_async). `done` always runs exactly once for a job submitted, unless
 * pt_workpool_cancel() took the job back before it started; the job's memory is its owner's,
 * free to release from `done`.
 *
 * The threads start when the first job is submitted, not before: a process forks its workers
 * before any of them serves a request, so no thread is lost to a fork. They stop, and are
 * joined, when the pool is released, through the custodian it was made under (the server's):
 * a job still queued then is dropped and its `done` runs with status -ECANCELED; one running
 * is waited for.
 *
 * Threading: submit, cancel and release on the loop's thread; `run` on a pool thread.
 */
#ifndef PORTER_SERVER_CORE_WORKPOOL_H
#define PORTER_SERVER_CORE_WORKPOOL_H

#include <ev.h>

#include "connmgr/custodian.h"

/* The threads a pool starts at most. */
#define PT_WORKPOOL_THREADS 2

typedef struct pt_workpool pt_workpool;
typedef struct pt_work pt_work;

struct pt_work {
    void (*run)(pt_work *w);  /* on a pool thread */
    void (*done)(pt_work *w); /* on the loop's thread; w->status says how it went */
    int status;               /* 0 once it ran; -ECANCELED: dropped at release */
    /* the pool's */
    pt_work *next;
    int state;
};

/* Makes a pool on `loop`, released with `owner` (threads joined, queued jobs dropped). Returns
 * 0 or a negative errno. */
int pt_workpool_new(pt_workpool **out, struct ev_loop *loop, pt_custodian *owner);

/* Queues `w` (its run and done set). Returns 0, or a negative errno (no thread could start,
 * the pool is released): `done` will not run then. */
int pt_workpool_submit(pt_workpool *p, pt_work *w);

/* Takes `w` back if no thread has started it: returns true, and its `done` will not run. False
 * when it is running or ran: its `done` follows. */
bool pt_workpool_cancel(pt_workpool *p, pt_work *w);

/* Jobs submitted and not yet done, and threads started (for tests and the status page). */
size_t pt_workpool_pending(const pt_workpool *p);
int pt_workpool_threads(const pt_workpool *p);

#endif
