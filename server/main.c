/*
 * porter: the command line. Built on the public API in porter.h only.
 *
 *   porter [-c FILE] [-p PREFIX]   run
 *   porter -t [-c FILE]            test the configuration and exit 0 (valid) or 1
 *
 * With worker_processes N > 1 a master process opens the listening sockets, forks N workers
 * that each run their own loop on them, replaces a worker that dies, and passes SIGTERM/SIGINT
 * on. SIGTERM/SIGINT stop gracefully; a second one stops at once.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "porter.h"

#define DEFAULT_CONF "conf/porter.conf"
#define MAX_WORKERS 256

static struct {
    struct ev_loop *loop;
    pt_server *server;
    ev_signal sigterm, sigint;
    int stops;
    /* master only */
    bool master;
    pid_t workers[MAX_WORKERS];
    int nworkers;
    ev_child children[MAX_WORKERS];
} g;

static void usage(FILE *out)
{
    fprintf(out, "usage: porter [-c FILE] [-p PREFIX] [-t] [-h] [-V]\n"
                 "  -c FILE    configuration file (default: " DEFAULT_CONF ")\n"
                 "  -p PREFIX  directory that relative paths in the configuration start from\n"
                 "             (default: the current directory)\n"
                 "  -t         test the configuration and exit\n"
                 "  -h         show this help\n"
                 "  -V         show the version\n");
}

static void on_stopped(pt_server *s, void *data)
{
    ev_signal_stop(g.loop, &g.sigterm);
    ev_signal_stop(g.loop, &g.sigint);
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    g.stops++;
    if (g.master) {
        for (int i = 0; i < g.nworkers; i++)
            if (g.workers[i] > 0)
                kill(g.workers[i], SIGTERM);
        return;
    }
    pt_server_stop(g.server, on_stopped, NULL);
}

static void start_signals(void)
{
    ev_signal_init(&g.sigterm, on_stop_signal, SIGTERM);
    ev_signal_init(&g.sigint, on_stop_signal, SIGINT);
    ev_signal_start(g.loop, &g.sigterm);
    ev_signal_start(g.loop, &g.sigint);
}

static int run_worker(void)
{
    g.master = false;
    start_signals();
    int r = pt_server_start(g.server);
    if (r < 0) {
        fprintf(stderr, "porter: cannot start: %s\n", pt_strerror(r));
        return 1;
    }
    ev_run(g.loop, 0);
    return 0;
}

static pid_t spawn_worker(int slot);
static int check_leaks(int code);

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    int slot = (int)(w - g.children);
    ev_child_stop(loop, w);
    g.workers[slot] = 0;
    if (g.stops == 0) {
        fprintf(stderr, "porter: worker %d exited (status %d); starting a new one\n", w->rpid,
                w->rstatus);
        spawn_worker(slot);
        return;
    }
    for (int i = 0; i < g.nworkers; i++)
        if (g.workers[i] > 0)
            return;
    ev_signal_stop(loop, &g.sigterm);
    ev_signal_stop(loop, &g.sigint);
}

static pid_t spawn_worker(int slot)
{
    pid_t pid = fork();
    if (pid == 0) {
        ev_loop_fork(g.loop);
        for (int i = 0; i < g.nworkers; i++)
            if (ev_is_active(&g.children[i]))
                ev_child_stop(g.loop, &g.children[i]);
        ev_signal_stop(g.loop, &g.sigterm);
        ev_signal_stop(g.loop, &g.sigint);
        int code = run_worker();
        pt_server_free(g.server);
        ev_loop_destroy(g.loop);
        _exit(check_leaks(code));
    }
    if (pid < 0) {
        fprintf(stderr, "porter: fork: %s\n", strerror(errno));
        return -1;
    }
    g.workers[slot] = pid;
    ev_child_init(&g.children[slot], on_child, pid, 0);
    ev_child_start(g.loop, &g.children[slot]);
    return pid;
}

static int run_master(int n)
{
    g.master = true;
    g.nworkers = n;
    start_signals();
    for (int i = 0; i < n; i++)
        if (spawn_worker(i) < 0)
            return 1;
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

    g.loop = ev_default_loop(EVFLAG_AUTO);
    if (!g.loop) {
        fprintf(stderr, "porter: cannot initialise the event loop\n");
        return 1;
    }
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
    int r = pt_server_new(&g.server, g.loop, conf, prefix, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "porter: %s\n", err[0] ? err : pt_strerror(r));
        return 1;
    }
    const char *pid_path = pt_server_pid_path(g.server);
    if (pid_path && write_pid(pid_path) < 0) {
        pt_server_free(g.server);
        return 1;
    }
    int workers = pt_server_worker_processes(g.server);
    if (workers > MAX_WORKERS)
        workers = MAX_WORKERS;
    int code = workers > 1 ? run_master(workers) : run_worker();
    pt_server_free(g.server);
    if (pid_path)
        unlink(pid_path);
    ev_loop_destroy(g.loop);
    return check_leaks(code);
}
