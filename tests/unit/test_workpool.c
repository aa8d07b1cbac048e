/* The work pool: jobs run off the loop's thread and come back on it, threads start with the
 * first job, a job taken back before it starts never comes back, and a release waits for
 * what runs and drops what waits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdbool.h>
#include <string.h>

#include "server/core/workpool.h"
#include "tests/support.h"

/* A job that waits, on its pool thread, until the test opens its gate. */
typedef struct job {
    pt_work work;
    pthread_t ran_on, done_on;
    int runs, dones, status;
    bool gated;
} job;

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int started; /* gated jobs that began to run */

static void job_run(pt_work *w)
{
    job *j = (job *)w;
    j->ran_on = pthread_self();
    pthread_mutex_lock(&gate_mu);
    started++;
    pthread_cond_broadcast(&gate_cv);
    while (j->gated && !gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    j->runs++;
}

static void job_done(pt_work *w)
{
    job *j = (job *)w;
    j->done_on = pthread_self();
    j->dones++;
    j->status = w->status;
}

static void job_init(job *j, bool gated)
{
    memset(j, 0, sizeof *j);
    j->work.run = job_run;
    j->work.done = job_done;
    j->gated = gated;
}

static void gate_reset(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = false;
    started = 0;
    pthread_mutex_unlock(&gate_mu);
}

static void gate_release(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* Waits (5 s at most) until `n` gated jobs are running. */
static void wait_started(int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&gate_mu);
    while (started < n && pthread_cond_timedwait(&gate_cv, &gate_mu, &until) == 0)
        ;
    int got = started;
    pthread_mutex_unlock(&gate_mu);
    assert_int_equal(got, n);
}

/* The state letter of thread `tid` of this process ('R' running, 'S' sleeping, ...). */
static char thread_state(pid_t tid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    char st = '?';
    if (fgets(line, sizeof line, f)) {
        const char *paren = strrchr(line, ')'); /* the name may hold spaces */
        if (paren && paren[1] == ' ')
            st = paren[2];
    }
    fclose(f);
    return st;
}

/* Opens the gate once the thread *arg sleeps (5 s at most): the test's thread does nothing
 * that sleeps between starting this one and joining the pool's threads. */
static void *open_when_waiting(void *arg)
{
    pid_t tid = *(pid_t *)arg;
    for (int i = 0; i < 5000 && thread_state(tid) != 'S'; i++)
        usleep(1000);
    gate_release();
    return NULL;
}

static bool all_done(void *data)
{
    pt_workpool *p = data;
    return pt_workpool_pending(p) == 0;
}

static void test_jobs_come_back_on_the_loop(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    pt_custodian *c = pt_custodian_new(NULL);
    pt_workpool *p;
    assert_int_equal(pt_workpool_new(&p, loop, c), 0);
    assert_int_equal(pt_workpool_threads(p), 0); /* none before the first job */
    gate_reset();
    job jobs[5];
    for (int i = 0; i < 5; i++) {
        job_init(&jobs[i], false);
        assert_int_equal(pt_workpool_submit(p, &jobs[i].work), 0);
    }
    assert_true(pt_workpool_threads(p) >= 1 && pt_workpool_threads(p) <= PT_WORKPOOL_THREADS);
    assert_int_equal(pt_workpool_pending(p), 5);
    assert_true(loop_run_until(loop, all_done, p, 5.0));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(jobs[i].runs, 1);
        assert_int_equal(jobs[i].dones, 1);
        assert_int_equal(jobs[i].status, 0);
        assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
        assert_true(pthread_equal(jobs[i].done_on, pthread_self()));
    }
    /* idle, it keeps no watcher on the loop */
    assert_int_equal(ev_run(loop, EVRUN_NOWAIT), 0);
    pt_custodian_shutdown(c);
    pt_custodian_reap();
    ev_loop_destroy(loop);
}

static void test_cancel(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    pt_custodian *c = pt_custodian_new(NULL);
    pt_workpool *p;
    assert_int_equal(pt_workpool_new(&p, loop, c), 0);
    gate_reset();
    /* every thread busy with a gated job, then three that wait in the queue */
    job busy[PT_WORKPOOL_THREADS], queued[3];
    for (int i = 0; i < PT_WORKPOOL_THREADS; i++) {
        job_init(&busy[i], true);
        assert_int_equal(pt_workpool_submit(p, &busy[i].work), 0);
    }
    wait_started(PT_WORKPOOL_THREADS);
    for (int i = 0; i < 3; i++) {
        job_init(&queued[i], false);
        assert_int_equal(pt_workpool_submit(p, &queued[i].work), 0);
    }
    /* one not started: taken back; one running: it goes on */
    assert_true(pt_workpool_cancel(p, &queued[1].work));
    assert_false(pt_workpool_cancel(p, &busy[0].work));
    assert_int_equal(pt_workpool_pending(p), PT_WORKPOOL_THREADS + 2);
    gate_release();
    assert_true(loop_run_until(loop, all_done, p, 5.0));
    assert_int_equal(queued[1].runs + queued[1].dones, 0);
    assert_int_equal(queued[0].dones + queued[2].dones, 2);
    assert_int_equal(busy[0].dones, 1);
    /* done, it cannot be taken back either */
    assert_false(pt_workpool_cancel(p, &queued[0].work));
    pt_custodian_shutdown(c);
    pt_custodian_reap();
    ev_loop_destroy(loop);
}

static void test_release_waits_and_drops(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    pt_custodian *c = pt_custodian_new(NULL);
    pt_workpool *p;
    assert_int_equal(pt_workpool_new(&p, loop, c), 0);
    gate_reset();
    job busy[PT_WORKPOOL_THREADS], queued[2];
    for (int i = 0; i < PT_WORKPOOL_THREADS; i++) {
        job_init(&busy[i], true);
        assert_int_equal(pt_workpool_submit(p, &busy[i].work), 0);
    }
    wait_started(PT_WORKPOOL_THREADS);
    for (int i = 0; i < 2; i++) {
        job_init(&queued[i], false);
        assert_int_equal(pt_workpool_submit(p, &queued[i].work), 0);
    }
    /* the release joins the threads: the gate opens from another thread once this one waits
     * in that join, after it told the threads to stop */
    pid_t self = (pid_t)syscall(SYS_gettid);
    pthread_t opener;
    assert_int_equal(pthread_create(&opener, NULL, open_when_waiting, &self), 0);
    pt_custodian_shutdown(c);
    pthread_join(opener, NULL);
    for (int i = 0; i < PT_WORKPOOL_THREADS; i++) {
        assert_int_equal(busy[i].runs, 1);
        assert_int_equal(busy[i].dones, 1);
        assert_int_equal(busy[i].status, 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(queued[i].runs, 0);
        assert_int_equal(queued[i].dones, 1);
        assert_int_equal(queued[i].status, -ECANCELED);
    }
    pt_custodian_reap();
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_jobs_come_back_on_the_loop),
        NOTHING_LEFT_TEST(test_cancel),
        NOTHING_LEFT_TEST(test_release_waits_and_drops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
