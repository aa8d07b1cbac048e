/*
 * porter: the command line. Built on the public API in porter.h only.
 *
 *   porter [-c FILE] [-p PREFIX]   run
 *   porter -t [-c FILE]            test the configuration and exit 0 (valid) or 1
 *
 * One process (worker_processes 1) or a master and N workers. The master opens the listening
 * sockets (one per worker and address, SO_REUSEPORT), forks the workers, replaces one that
 * dies, and turns signals into work:
 *
 *   SIGTERM, SIGINT  graceful stop (idle connections close now, in-flight work finishes within
 *                    shutdown_grace_period); a second one stops at once
 *   SIGQUIT          graceful stop that closes no connection a client may be sending on
 *   SIGHUP           reload: the new conf is checked first (a bad one is reported and the old
 *                    one keeps running); new workers take the listening sockets over and the old
 *                    ones retire as SIGQUIT says, so no request is lost
 *   SIGUSR1          reopen log files (after logrotate moved them)
 *
 * A single process reloads in place: the new server takes the sockets over on the same loop.
 *
 * TLS session-ticket keys are shared by the whole process tree and renewed every
 * ssl_session_ticket_rotate by one process: the master, or the single process.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "porter.h"

#define DEFAULT_CONF "conf/porter.conf"
#define MAX_WORKERS 256
#define MAX_PROCS (4 * MAX_WORKERS) /* workers of the current and of retiring generations */
#define MAX_RETIRING 64

typedef struct worker {
    pid_t pid; /* 0: free entry */
    int slot;
    unsigned gen;
    bool retiring; /* told to finish what it has and exit (a reload's SIGQUIT) */
    ev_child watcher;
} worker;

static struct {
    struct ev_loop *loop;
    const char *conf, *prefix;
    pt_server *server;
    int nworkers; /* 1: a single process */
    int nsockets; /* listening sockets per address, fixed at start (see pt_server_options) */
    bool master, stopping, retiring;
    bool worker; /* a forked worker: it never renews the ticket keys */
    int stops;
    unsigned gen;
    worker procs[MAX_PROCS];
    ev_signal sig_term, sig_int, sig_quit, sig_hup, sig_usr1;
    /* single process: servers replaced by a reload, freed once they have retired */
    pt_server *retired[MAX_RETIRING];
    int nretired;
    ev_timer reaper;
    ev_timer rotate; /* session-ticket keys (not in workers) */
} g;

static void usage(FILE *out)
{
    fprintf(out, "usage: porter [-c FILE] [-p PREFIX] [-t] [-h] [-V]\n"
                 "  -c FILE    configuration file (default: " DEFAULT_CONF ")\n"
                 "  -p PREFIX  directory that relative paths in the configuration start from\n"
                 "             (default: the current directory)\n"
                 "  -t         test the configuration and exit\n"
                 "  -h         show this help\n"
                 "  -V         show the version\n"
                 "signals: TERM/INT stop, QUIT stop gently, HUP reload, USR1 reopen logs\n");
}

/* The process's own messages go to the error log (and to a terminal's stderr): failures at
 * level error, log_notice's at notice. */
static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pt_server_log(g.server, PT_SERVER_LOG_ERROR, "%s", msg);
}

static void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_notice(const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pt_server_log(g.server, PT_SERVER_LOG_NOTICE, "%s", msg);
}

static void stop_signals(void)
{
    ev_signal *all[] = {&g.sig_term, &g.sig_int, &g.sig_quit, &g.sig_hup, &g.sig_usr1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        ev_signal_stop(g.loop, all[i]);
}

/* ---- session-ticket keys ---- */

static void on_rotate(struct ev_loop *loop, ev_timer *w, int revents)
{
    pt_server_rotate_ticket_keys(g.server);
}

static void stop_rotation(void)
{
    if (ev_is_active(&g.rotate)) {
        ev_ref(g.loop); /* it was unreferenced when started */
        ev_timer_stop(g.loop, &g.rotate);
    }
}

/* (Re)arms the rotation for the current server; an unchanged period keeps its schedule, so
 * reloads do not postpone it. */
static void arm_rotation(void)
{
    double every = g.worker ? 0 : pt_server_ticket_rotation(g.server);
    if (ev_is_active(&g.rotate) && g.rotate.repeat == every)
        return;
    stop_rotation();
    if (every <= 0)
        return;
    ev_timer_set(&g.rotate, every, every);
    ev_timer_start(g.loop, &g.rotate);
    ev_unref(g.loop); /* the rotation alone must not keep the loop running */
}

/* ---- a serving process (the only one, or a worker) ---- */

static void free_retired(struct ev_loop *loop, ev_timer *w, int revents)
{
    for (int i = 0; i < g.nretired; i++)
        pt_server_free(g.retired[i]);
    g.nretired = 0;
}

static void on_retired(pt_server *s, void *data)
{
    /* Not from inside porter's callback: free it when the stack has unwound. */
    if (g.nretired < MAX_RETIRING)
        g.retired[g.nretired++] = s;
    ev_timer_start(g.loop, &g.reaper);
}

static void on_stopped(pt_server *s, void *data)
{
    stop_signals();
}

static void serve_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    switch (w->signum) {
    case SIGTERM:
    case SIGINT:
        g.stops++;
        pt_server_stop(g.server, on_stopped, NULL);
        break;
    case SIGQUIT:
        g.stops++;
        pt_server_retire(g.server, on_stopped, NULL);
        break;
    case SIGUSR1:
        if (pt_server_reopen_logs(g.server) < 0)
            log_line("cannot reopen some log files");
        break;
    case SIGHUP: {
        if (g.stops)
            break;
        pt_server_options o;
        pt_server_options_init(&o);
        o.conf_path = g.conf;
        o.prefix = g.prefix;
        o.worker_slots = 1;
        o.previous = g.server;
        char err[1024];
        pt_server *next;
        int r = pt_server_new_with(&next, g.loop, &o, err, sizeof err);
        if (r < 0) {
            log_line("reload failed, the running configuration stays: %s",
                     err[0] ? err : pt_strerror(r));
            break;
        }
        if (pt_server_worker_processes(next) > 1)
            log_line("worker_processes changed: porter runs as one process until restarted");
        if ((r = pt_server_start(next)) < 0) {
            log_line("reload failed: %s", pt_strerror(r));
            pt_server_free(next);
            break;
        }
        pt_server *old = g.server;
        g.server = next;
        arm_rotation();
        pt_server_retire(old, on_retired, NULL);
        log_notice("configuration reloaded");
        break;
    }
    }
}

typedef void (*signal_cb)(struct ev_loop *loop, ev_signal *w, int revents);

static void start_signals(signal_cb cb)
{
    ev_signal *all[] = {&g.sig_term, &g.sig_int, &g.sig_quit, &g.sig_hup, &g.sig_usr1};
    int nums[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        ev_signal_init(all[i], cb, nums[i]);
        ev_signal_start(g.loop, all[i]);
    }
}

static int serve(int slot)
{
    g.master = false;
    ev_timer_init(&g.reaper, free_retired, 0., 0.);
    start_signals(serve_signal);
    int r = pt_server_start_worker(g.server, slot);
    if (r < 0) {
        log_line("cannot start: %s", pt_strerror(r));
        return 1;
    }
    ev_run(g.loop, 0);
    free_retired(g.loop, &g.reaper, 0);
    return 0;
}

/* ---- the master ---- */

static int check_leaks(int code);
static int spawn(int slot);

static int live_workers(void)
{
    int n = 0;
    for (int i = 0; i < MAX_PROCS; i++)
        n += g.procs[i].pid != 0;
    return n;
}

/* Sends `sig` to every worker; a graceful stop (SIGQUIT) spares those already draining, whom a
 * second SIGQUIT would stop at once. */
static void signal_workers(int sig)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (g.procs[i].pid && !(sig == SIGQUIT && g.procs[i].retiring))
            kill(g.procs[i].pid, sig);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    worker *wk = (worker *)((char *)w - offsetof(worker, watcher));
    ev_child_stop(loop, w);
    int status = w->rstatus;
    pid_t pid = wk->pid;
    wk->pid = 0;
    if (wk->gen == g.gen && !g.stopping) {
        char lost[96] = "";
        uint64_t open, busy;
        if (pt_server_worker_connections(g.server, wk->slot, pid, &open, &busy) == 0)
            snprintf(lost, sizeof lost, " with %" PRIu64 " connections (%" PRIu64 " in a request)",
                     open, busy);
        if (WIFSIGNALED(status))
            log_line("worker %d killed by signal %d%s; starting another", (int)pid,
                     WTERMSIG(status), lost);
        else
            log_line("worker %d exited with status %d%s; starting another", (int)pid,
                     WEXITSTATUS(status), lost);
        spawn(wk->slot);
        return;
    }
    if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0)
        log_line("worker %d ended abnormally (status %d)", (int)pid, status);
    if (g.stopping && live_workers() == 0)
        stop_signals();
}

static int spawn(int slot)
{
    worker *wk = NULL;
    for (int i = 0; i < MAX_PROCS && !wk; i++)
        if (!g.procs[i].pid && !ev_is_active(&g.procs[i].watcher))
            wk = &g.procs[i];
    if (!wk) {
        log_line("too many worker processes");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_line("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        ev_loop_fork(g.loop);
        g.worker = true;
        stop_rotation(); /* the master renews the keys the workers share */
        for (int i = 0; i < MAX_PROCS; i++)
            if (ev_is_active(&g.procs[i].watcher))
                ev_child_stop(g.loop, &g.procs[i].watcher);
        stop_signals();
        int code = serve(slot);
        pt_server_free(g.server);
        ev_loop_destroy(g.loop);
        _exit(check_leaks(code));
    }
    wk->pid = pid;
    wk->slot = slot;
    wk->gen = g.gen;
    wk->retiring = false;
    ev_child_init(&wk->watcher, on_child, pid, 0);
    ev_child_start(g.loop, &wk->watcher);
    return 0;
}

static void reload_master(void)
{
    char err[1024];
    int n = pt_server_conf_workers(g.conf, g.prefix, err, sizeof err);
    if (n < 0) {
        log_line("reload failed, the running configuration stays: %s", err);
        return;
    }
    if (n > MAX_WORKERS)
        n = MAX_WORKERS;
    pt_server_options o;
    pt_server_options_init(&o);
    o.conf_path = g.conf;
    o.prefix = g.prefix;
    o.worker_slots = g.nsockets;
    o.workers = n;
    o.previous = g.server; /* same socket count: every socket is taken over */
    pt_server *next;
    int r = pt_server_new_with(&next, g.loop, &o, err, sizeof err);
    if (r < 0) {
        log_line("reload failed, the running configuration stays: %s",
                 err[0] ? err : pt_strerror(r));
        return;
    }
    /* Freed before forking so the new workers inherit nothing of it; the old workers keep
     * their own copies of the sockets it still had. */
    pt_server_free(g.server);
    g.server = next;
    arm_rotation();
    g.nworkers = n;
    g.gen++;
    for (int i = 0; i < n; i++)
        spawn(i);
    /* The new workers accept on the same sockets; the old ones finish what they have. Those
     * an earlier reload retired are not told again: a second SIGQUIT ends the grace. */
    for (int i = 0; i < MAX_PROCS; i++)
        if (g.procs[i].pid && g.procs[i].gen != g.gen && !g.procs[i].retiring) {
            g.procs[i].retiring = true;
            kill(g.procs[i].pid, SIGQUIT);
        }
    log_notice("configuration reloaded: %d workers", n);
}

static void master_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    switch (w->signum) {
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
        g.stopping = true;
        signal_workers(w->signum == SIGQUIT ? SIGQUIT : SIGTERM);
        if (live_workers() == 0)
            stop_signals();
        break;
    case SIGHUP:
        if (!g.stopping)
            reload_master();
        break;
    case SIGUSR1:
        pt_server_reopen_logs(g.server);
        signal_workers(SIGUSR1);
        break;
    }
}

static int run_master(void)
{
    g.master = true;
    start_signals(master_signal);
    for (int i = 0; i < g.nworkers; i++)
        if (spawn(i) < 0) {
            g.stopping = true;
            signal_workers(SIGTERM);
            break;
        }
    ev_run(g.loop, 0);
    return 0;
}

/* Everything a server owned must be gone once it is freed; say so loudly if not. */
static int check_leaks(int code)
{
    pt_resource_counts rc;
    pt_resource_counts_get(&rc);
    if (rc.custodians || rc.unreaped || rc.chunks) {
        fprintf(stderr, "porter: leak: %zu live custodians, %zu unreaped, %zu buffer chunks\n",
                rc.custodians, rc.unreaped, rc.chunks);
        return code ? code : 3;
    }
    return code;
}

static int write_pid(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "porter: cannot write pid file \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf = DEFAULT_CONF, *prefix = NULL;
    bool test = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:p:thV")) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("porter %s\n", pt_version());
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "porter: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    g.conf = conf;
    g.prefix = prefix;

    char err[1024];
    if (test) {
        int r = pt_server_test(conf, prefix, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "porter: %s\nporter: configuration file %s test failed\n", err, conf);
            return 1;
        }
        fprintf(stderr,
                "porter: configuration file %s syntax is ok\n"
                "porter: configuration file %s test is successful\n",
                conf, conf);
        return 0;
    }
    g.loop = ev_default_loop(EVFLAG_AUTO);
    if (!g.loop) {
        fprintf(stderr, "porter: cannot initialise the event loop\n");
        return 1;
    }
    /* The worker count decides how many sockets each address gets, so read it first. */
    g.nworkers = pt_server_conf_workers(conf, prefix, err, sizeof err);
    int r = g.nworkers;
    if (r >= 0) {
        if (g.nworkers > MAX_WORKERS)
            g.nworkers = MAX_WORKERS;
        pt_server_options o;
        pt_server_options_init(&o);
        o.conf_path = conf;
        o.prefix = prefix;
        g.nsockets = g.nworkers;
        o.worker_slots = g.nsockets;
        o.workers = g.nworkers;
        r = pt_server_new_with(&g.server, g.loop, &o, err, sizeof err);
    }
    if (r < 0) {
        fprintf(stderr, "porter: %s\n", err[0] ? err : pt_strerror(r));
        return 1;
    }
    const char *pid_path = pt_server_pid_path(g.server);
    char *pid_copy = pid_path ? strdup(pid_path) : NULL;
    if (pid_copy && write_pid(pid_copy) < 0) {
        pt_server_free(g.server);
        free(pid_copy);
        return 1;
    }
    ev_timer_init(&g.rotate, on_rotate, 0., 0.);
    arm_rotation();
    int code = g.nworkers > 1 ? run_master() : serve(0);
    stop_rotation();
    pt_server_free(g.server);
    if (pid_copy)
        unlink(pid_copy);
    free(pid_copy);
    ev_loop_destroy(g.loop);
    return check_leaks(code);
}
