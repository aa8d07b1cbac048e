/*
 * porter: the command line. Built on the public API in porter.h only (and, for -V, the version
 * calls of the libraries it links).
 *
 *   porter [-c FILE] [-p PREFIX] [-e FILE]   run
 *   porter -t|-T [-q] [-c FILE]              test the configuration (-T: and print it)
 *   porter -s reload|reopen|quit|stop|upgrade   signal the running porter (its pid file)
 *   porter -v|--version, -V, -h|--help       the version; it with how porter was built; usage
 *
 * One process (worker_processes 1) or a master and N workers. The master opens the listening
 * sockets (one per worker and address, SO_REUSEPORT) and the logs, reads certificates, forks the
 * workers (which then run as the conf's `user` when porter was started by root), replaces one
 * that dies, and turns signals into work:
 *
 *   SIGTERM, SIGINT  graceful stop (idle connections close now, in-flight work finishes within
 *                    shutdown_grace_period); a second one stops at once
 *   SIGQUIT          graceful stop that closes no connection a client may be sending on
 *   SIGHUP           reload: the new conf is checked first (a bad one is reported and the old
 *                    one keeps running); new workers take the listening sockets over and the old
 *                    ones retire as SIGQUIT says, so no request is lost
 *   SIGUSR1          reopen log files (after logrotate moved them)
 *   SIGUSR2          binary upgrade: the executable is started again with the listening
 *                    sockets; once its workers accept, this process retires as SIGQUIT says
 *
 * A single process reloads in place: the new server takes the sockets over on the same loop.
 *
 * Readiness: each worker tells the master through a pipe once it accepts; when every worker of
 * a generation has, the master tells systemd (sd_notify, READY=1) or, after a binary upgrade,
 * the master before it (through a pipe it inherited), which then retires.
 *
 * TLS session-ticket keys are shared by the whole process tree and renewed every
 * ssl_session_ticket_rotate by one process: the master, or the single process.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <brotli/encode.h>
#include <llhttp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <zlib.h>
#include <zstd.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "porter.h"

#ifndef PORTER_CONFIGURE
#define PORTER_CONFIGURE "(not recorded)"
#endif

#define DEFAULT_CONF "conf/porter.conf"
#define MAX_WORKERS 256
#define MAX_PROCS (4 * MAX_WORKERS) /* workers of the current and of retiring generations */
#define MAX_RETIRING 64
#define MAX_LISTEN_FDS 4096

/* A worker that cannot start (it cannot switch user) exits with this; it is not started again. */
#define WORKER_FATAL 2

/* What a new executable finds in its environment after a binary upgrade: the listening sockets
 * it inherits ("3;4;5"), as nginx's NGINX variable, and "FD:SLOTS": the pipe that tells the
 * process before it that it is ready, and the sockets per address of the process tree. */
#define ENV_LISTEN "PORTER_LISTEN_FDS"
#define ENV_UPGRADE "PORTER_UPGRADE"

typedef struct worker {
    pid_t pid; /* 0: free entry */
    int slot;
    unsigned gen;
    bool retiring; /* told to finish what it has and exit (a reload's SIGQUIT) */
    ev_child watcher;
} worker;

/* What a worker writes to the ready pipe once it accepts. */
typedef struct ready_msg {
    uint32_t gen, slot;
} ready_msg;

static struct {
    struct ev_loop *loop;
    const char *conf, *prefix;
    char **argv;                 /* as given, for a binary upgrade */
    char exe[PATH_MAX];          /* this executable's path, read at start; "" if unknown */
    char pid_file[PATH_MAX + 8]; /* the pid file this process owns ("" none): removed at exit */
    char pid_path[PATH_MAX];     /* the conf's pid file ("" none) */
    pt_server *server;
    int nworkers; /* 1: a single process */
    int nsockets; /* listening sockets per address, fixed at start (see pt_server_options) */
    bool master, stopping, retiring;
    bool worker; /* a forked worker: it never renews the ticket keys */
    int stops;
    int exit_code;
    unsigned gen;
    worker procs[MAX_PROCS];
    ev_signal sig_term, sig_int, sig_quit, sig_hup, sig_usr1, sig_usr2;
    /* single process: servers replaced by a reload, freed once they have retired */
    pt_server *retired[MAX_RETIRING];
    int nretired;
    ev_timer reaper;
    ev_timer rotate; /* session-ticket keys (not in workers) */
    /* readiness: workers write a ready_msg here once they accept */
    int ready_r, ready_w;
    ev_io ready_io;
    bool slot_ready[MAX_WORKERS];
    bool gen_ready;
    char ready_buf[sizeof(ready_msg)];
    size_t ready_len;
    /* who workers run as (a master started by root) */
    bool drop;
    uid_t uid;
    gid_t gid;
    char user[256];
    /* a binary upgrade in progress, seen from the process before: the new one and its pipe */
    pid_t upgrade_pid;
    int upgrade_r;
    ev_io upgrade_io;
    ev_child upgrade_child;
    /* seen from the new one: the pipe to tell the process before that this one is ready */
    int upgrade_w;
} g = {.ready_r = -1, .ready_w = -1, .upgrade_r = -1, .upgrade_w = -1};

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: porter [-c FILE] [-p PREFIX] [-e FILE] [-s SIGNAL] [-t | -T] [-q]\n"
        "       porter -h | --help | -v | --version | -V\n"
        "  -c FILE    configuration file (default: " DEFAULT_CONF "), relative to the prefix\n"
        "  -p PREFIX  directory that relative paths (-c, -e and those in the configuration)\n"
        "             start from (default: the current directory)\n"
        "  -e FILE    where messages go until the configuration's error_log takes over\n"
        "             (\"stderr\", the default: standard error)\n"
        "  -s SIGNAL  signal the running porter through the configuration's pid file:\n"
        "             reload, reopen (the logs), quit (gently), stop, upgrade (the binary)\n"
        "  -t         test the configuration: report every error, exit 0 if it is valid\n"
        "  -T         test it, then print it with every file it includes\n"
        "  -q         with -t or -T, print errors only\n"
        "  -h, --help     show this help\n"
        "  -v, --version  show the version\n"
        "  -V             show the version, the compiler, the libraries and the configure\n"
        "                 options\n"
        "signals: TERM/INT stop, QUIT stop gently, HUP reload, USR1 reopen logs, USR2 upgrade\n");
}

/* `porter -V`: the version, then what it was built by and with (as nginx's -V): the compiler,
 * each library's version (and the one running, where the library is shared and says), and the
 * options CMake was configured with. */
static void with_running(char *buf, size_t cap, const char *built, const char *running)
{
    if (strcmp(built, running) == 0)
        snprintf(buf, cap, "%s", built);
    else
        snprintf(buf, cap, "%s (running with %s)", built, running);
}

static void build_info(void)
{
    printf("porter %s\n", pt_version());
#if defined(__clang__)
    printf("built by clang %s\n", __clang_version__);
#elif defined(__GNUC__)
    printf("built by gcc %s\n", __VERSION__);
#endif
    char ssl[160], ev[64], h2[64], z[64], zstd[64], pcre[128], b[64];
    with_running(ssl, sizeof ssl, OPENSSL_VERSION_TEXT, OpenSSL_version(OPENSSL_VERSION));
    char ev_built[16], ev_run[16];
    snprintf(ev_built, sizeof ev_built, "%d.%d", EV_VERSION_MAJOR, EV_VERSION_MINOR);
    snprintf(ev_run, sizeof ev_run, "%d.%d", ev_version_major(), ev_version_minor());
    with_running(ev, sizeof ev, ev_built, ev_run);
    with_running(h2, sizeof h2, NGHTTP2_VERSION, nghttp2_version(0)->version_str);
    with_running(z, sizeof z, ZLIB_VERSION, zlibVersion());
    with_running(zstd, sizeof zstd, ZSTD_VERSION_STRING, ZSTD_versionString());
    char pcre_built[16], pcre_run[64] = "";
    snprintf(pcre_built, sizeof pcre_built, "%d.%02d", PCRE2_MAJOR, PCRE2_MINOR);
    pcre2_config(PCRE2_CONFIG_VERSION, pcre_run);
    pcre_run[strcspn(pcre_run, " ")] = '\0'; /* "10.42 2022-12-11": the number */
    with_running(pcre, sizeof pcre, pcre_built, pcre_run);
    uint32_t bv = BrotliEncoderVersion(); /* only the library's own, at run time */
    snprintf(b, sizeof b, "%u.%u.%u", bv >> 24, (bv >> 12) & 0xfff, bv & 0xfff);
    printf("built with %s\n", ssl);
    printf("libraries: libev %s, llhttp %d.%d.%d, nghttp2 %s, zlib %s, brotli %s, zstd %s, "
           "pcre2 %s\n",
           ev, LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH, h2, z, b, zstd,
           pcre);
    printf("configure arguments: %s\n", PORTER_CONFIGURE);
}

/* The process's own messages go to the error log (and to a terminal's stderr): failures at
 * level error, log_notice's at notice. */
static void log_at(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void log_at(int level, const char *fmt, va_list ap)
{
    char msg[1200];
    vsnprintf(msg, sizeof msg, fmt, ap);
    pt_server_log(g.server, level, "%s", msg);
}

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_at(PT_SERVER_LOG_ERROR, fmt, ap);
    va_end(ap);
}

static void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_notice(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_at(PT_SERVER_LOG_NOTICE, fmt, ap);
    va_end(ap);
}

/* ---- systemd: sd_notify(3)'s protocol, a datagram to $NOTIFY_SOCKET ---- */

static void notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void notify(const char *fmt, ...)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = path ? strlen(path) : 0;
    if (g.worker || len < 2 || len >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
        return;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@') /* an abstract socket */
        sa.sun_path[0] = '\0';
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        log_line("cannot notify systemd through \"%s\": %s", path, strerror(errno));
    close(fd);
}

/* ---- watchers of the process ---- */

static void stop_upgrade_watchers(void)
{
    if (ev_is_active(&g.upgrade_io))
        ev_io_stop(g.loop, &g.upgrade_io);
    if (ev_is_active(&g.upgrade_child))
        ev_child_stop(g.loop, &g.upgrade_child);
    if (g.upgrade_r >= 0)
        close(g.upgrade_r);
    g.upgrade_r = -1;
}

/* Stops what keeps a process's loop running besides its servers: the signals, the ready pipe
 * and a binary upgrade's watchers (a new executable still starting runs on without them). */
static void stop_signals(void)
{
    ev_signal *all[] = {&g.sig_term, &g.sig_int, &g.sig_quit, &g.sig_hup, &g.sig_usr1, &g.sig_usr2};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        ev_signal_stop(g.loop, all[i]);
    if (ev_is_active(&g.ready_io))
        ev_io_stop(g.loop, &g.ready_io);
    stop_upgrade_watchers();
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

/* ---- readiness ---- */

/* Every worker of the current generation accepts (or the single process does). */
static void generation_ready(void)
{
    if (g.upgrade_w >= 0) {
        /* A binary upgrade: the process before hears of it, and tells systemd who serves. */
        if (write(g.upgrade_w, "R", 1) != 1)
            log_line("binary upgrade: cannot tell the process before: %s", strerror(errno));
        close(g.upgrade_w);
        g.upgrade_w = -1;
        log_line("binary upgrade: this process serves now");
        return;
    }
    notify("READY=1\nMAINPID=%d", (int)getpid());
}

static void on_ready_pipe(struct ev_loop *loop, ev_io *w, int revents)
{
    for (;;) {
        ssize_t n = read(g.ready_r, g.ready_buf + g.ready_len, sizeof g.ready_buf - g.ready_len);
        if (n <= 0)
            return;
        g.ready_len += (size_t)n;
        if (g.ready_len < sizeof g.ready_buf)
            continue;
        g.ready_len = 0;
        ready_msg m;
        memcpy(&m, g.ready_buf, sizeof m);
        if (m.gen != g.gen || m.slot >= MAX_WORKERS || g.gen_ready)
            continue;
        g.slot_ready[m.slot] = true;
        int ready = 0;
        for (int i = 0; i < g.nworkers; i++)
            ready += g.slot_ready[i];
        if (ready == g.nworkers) {
            g.gen_ready = true;
            generation_ready();
        }
    }
}

/* A new generation of workers is about to start. */
static void expect_generation(void)
{
    memset(g.slot_ready, 0, sizeof g.slot_ready);
    g.gen_ready = false;
}

/* ---- who workers run as ---- */

/* Decides, in a master started by root, the user its workers switch to: the conf's `user`, or
 * `nobody` (and its group) when the conf names none, as nginx does; `user root;` keeps root. */
static int choose_user(bool master)
{
    const char *user = NULL, *group = NULL;
    uid_t uid;
    gid_t gid;
    bool named = pt_server_user(g.server, &user, &group, &uid, &gid);
    g.drop = false;
    if (geteuid() != 0) {
        if (named)
            log_line("the \"user\" directive makes sense only if porter is started by root "
                     "(it runs as uid %d): ignored",
                     (int)geteuid());
        return 0;
    }
    if (!master) {
        /* No master: nothing would be left with root's rights to reload or reopen logs. */
        if (!named || uid != 0)
            log_line("one process (worker_processes 1) does not switch user: it serves as root; "
                     "\"user\" applies to the workers of worker_processes 2 or more");
        return 0;
    }
    if (!named) {
        struct passwd *pw = getpwnam("nobody");
        if (!pw) {
            log_line("no \"user\" directive, and no user \"nobody\" to run the workers as: name "
                     "one (\"user root;\" keeps root)");
            return -1;
        }
        user = "nobody";
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    g.drop = true;
    g.uid = uid;
    g.gid = gid;
    snprintf(g.user, sizeof g.user, "%s", user);
    return 0;
}

/* In a worker: becomes g.user, group g.gid with the user's supplementary groups, each step
 * checked, and then checks that root cannot be taken back. */
static int drop_privileges(void)
{
    if (setgid(g.gid) < 0) {
        log_line("worker cannot run as user \"%s\": setgid(%d): %s", g.user, (int)g.gid,
                 strerror(errno));
        return -1;
    }
    if (initgroups(g.user, g.gid) < 0) {
        log_line("worker cannot run as user \"%s\": setgroups (initgroups \"%s\", %d): %s", g.user,
                 g.user, (int)g.gid, strerror(errno));
        return -1;
    }
    if (setuid(g.uid) < 0) {
        log_line("worker cannot run as user \"%s\": setuid(%d): %s", g.user, (int)g.uid,
                 strerror(errno));
        return -1;
    }
    if (g.uid != 0 && (setuid(0) == 0 || geteuid() == 0 || getuid() != g.uid)) {
        log_line("worker cannot run as user \"%s\": it could become root again", g.user);
        return -1;
    }
    return 0;
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

static void start_upgrade(void);

static void reload_single(void)
{
    notify("RELOADING=1");
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
        notify("READY=1");
        return;
    }
    if (pt_server_worker_processes(next) > 1)
        log_line("worker_processes changed: porter runs as one process until restarted");
    if ((r = pt_server_start(next)) < 0) {
        log_line("reload failed: %s", pt_strerror(r));
        pt_server_free(next);
        notify("READY=1");
        return;
    }
    pt_server *old = g.server;
    g.server = next;
    arm_rotation();
    pt_server_retire(old, on_retired, NULL);
    log_notice("configuration reloaded");
    notify("READY=1");
}

static void serve_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    switch (w->signum) {
    case SIGTERM:
    case SIGINT:
        g.stops++;
        notify("STOPPING=1");
        pt_server_stop(g.server, on_stopped, NULL);
        break;
    case SIGQUIT:
        g.stops++;
        notify("STOPPING=1");
        pt_server_retire(g.server, on_stopped, NULL);
        break;
    case SIGUSR1:
        if (pt_server_reopen_logs(g.server) < 0)
            log_line("cannot reopen some log files");
        break;
    case SIGUSR2:
        if (!g.worker && !g.stops)
            start_upgrade();
        break;
    case SIGHUP:
        if (!g.stops)
            reload_single();
        break;
    }
}

typedef void (*signal_cb)(struct ev_loop *loop, ev_signal *w, int revents);

static void start_signals(signal_cb cb)
{
    ev_signal *all[] = {&g.sig_term, &g.sig_int, &g.sig_quit, &g.sig_hup, &g.sig_usr1, &g.sig_usr2};
    int nums[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2};
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
    if (g.worker) {
        ready_msg m = {.gen = g.gen, .slot = (uint32_t)slot};
        if (write(g.ready_w, &m, sizeof m) != sizeof m)
            log_line("cannot tell the master this worker is ready: %s", strerror(errno));
        close(g.ready_w);
        g.ready_w = -1;
    } else {
        generation_ready();
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

static int live_current(void)
{
    int n = 0;
    for (int i = 0; i < MAX_PROCS; i++)
        n += g.procs[i].pid != 0 && g.procs[i].gen == g.gen;
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

/* The master stops: its workers with `sig`, then itself once they are gone. */
static void stop_master(int sig)
{
    g.stopping = true;
    signal_workers(sig);
    if (live_workers() == 0)
        stop_signals();
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    worker *wk = (worker *)((char *)w - offsetof(worker, watcher));
    ev_child_stop(loop, w);
    int status = w->rstatus;
    pid_t pid = wk->pid;
    wk->pid = 0;
    if (wk->gen == g.gen && !g.stopping) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_FATAL) {
            log_line("worker %d could not start (see above); it is not started again", (int)pid);
            if (!g.gen_ready && live_current() == 0 && g.gen == 0) {
                log_line("no worker could start: porter stops");
                g.exit_code = 1;
                stop_master(SIGTERM);
            }
            return;
        }
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
        close(g.ready_r);
        if (g.upgrade_w >= 0)
            close(g.upgrade_w);
        g.ready_r = g.upgrade_w = -1;
        if (g.drop && drop_privileges() < 0) {
            pt_server_free(g.server);
            ev_loop_destroy(g.loop);
            _exit(WORKER_FATAL);
        }
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
    notify("RELOADING=1");
    int n = pt_server_conf_workers(g.conf, g.prefix, err, sizeof err);
    if (n < 0) {
        log_line("reload failed, the running configuration stays: %s", err);
        notify("READY=1");
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
        notify("READY=1");
        return;
    }
    /* Freed before forking so the new workers inherit nothing of it; the old workers keep
     * their own copies of the sockets it still had. */
    pt_server_free(g.server);
    g.server = next;
    arm_rotation();
    g.nworkers = n;
    if (choose_user(true) < 0)
        log_line("the new workers run as \"%s\" still", g.user);
    g.gen++;
    expect_generation();
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
        notify("STOPPING=1");
        stop_master(w->signum == SIGQUIT ? SIGQUIT : SIGTERM);
        break;
    case SIGHUP:
        if (!g.stopping)
            reload_master();
        break;
    case SIGUSR1:
        if (pt_server_reopen_logs(g.server) < 0)
            log_line("cannot reopen some log files");
        /* The workers reopen them as their user: the files must be theirs (nginx does so). */
        if (g.drop && pt_server_chown_logs(g.server, g.uid) < 0)
            log_line("cannot give the log files to user \"%s\": %s", g.user, strerror(errno));
        signal_workers(SIGUSR1);
        break;
    case SIGUSR2:
        if (!g.stopping)
            start_upgrade();
        break;
    }
}

static int run_master(void)
{
    g.master = true;
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_line("pipe: %s", strerror(errno));
        return 1;
    }
    g.ready_r = p[0];
    g.ready_w = p[1];
    ev_io_init(&g.ready_io, on_ready_pipe, g.ready_r, EV_READ);
    ev_io_start(g.loop, &g.ready_io);
    start_signals(master_signal);
    expect_generation();
    for (int i = 0; i < g.nworkers; i++)
        if (spawn(i) < 0) {
            g.exit_code = 1;
            stop_master(SIGTERM);
            break;
        }
    ev_run(g.loop, 0);
    close(g.ready_r);
    close(g.ready_w);
    return g.exit_code;
}

/* ---- binary upgrade, seen from the process before ---- */

/* The pid file back to its name: the upgrade failed, this process still serves. */
static void restore_pid_file(void)
{
    if (!g.pid_path[0] || strcmp(g.pid_file, g.pid_path) == 0)
        return;
    if (rename(g.pid_file, g.pid_path) < 0)
        log_line("binary upgrade: cannot rename \"%s\" back to \"%s\": %s", g.pid_file, g.pid_path,
                 strerror(errno));
    else
        snprintf(g.pid_file, sizeof g.pid_file, "%s", g.pid_path);
}

static void on_upgrade_ready(struct ev_loop *loop, ev_io *w, int revents)
{
    char c;
    ssize_t n = read(g.upgrade_r, &c, 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    ev_io_stop(loop, w);
    if (n != 1)
        return; /* the new process closed the pipe without being ready: its exit says why */
    pid_t pid = g.upgrade_pid;
    stop_upgrade_watchers(); /* it runs on once this process has gone */
    g.upgrade_pid = 0;
    log_line("binary upgrade: process %d serves now; this one retires", (int)pid);
    notify("MAINPID=%d", (int)pid);
    if (g.master) {
        stop_master(SIGQUIT);
    } else {
        g.stops++;
        pt_server_retire(g.server, on_stopped, NULL);
    }
}

static void on_upgrade_exit(struct ev_loop *loop, ev_child *w, int revents)
{
    int status = w->rstatus;
    pid_t pid = g.upgrade_pid;
    stop_upgrade_watchers();
    g.upgrade_pid = 0;
    restore_pid_file();
    if (WIFSIGNALED(status))
        log_line("binary upgrade failed: process %d was killed by signal %d; this one (%d) "
                 "serves on",
                 (int)pid, WTERMSIG(status), (int)getpid());
    else
        log_line("binary upgrade failed: process %d exited with status %d before it served (its "
                 "messages are above); this one (%d) serves on",
                 (int)pid, WEXITSTATUS(status), (int)getpid());
}

/* The environment of the new executable: this one's, with where its sockets and its pipe are. */
static char **upgrade_env(const int *fds, size_t nfds, int pipe_w)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 3, sizeof *env);
    char *listen = malloc(nfds * 12 + sizeof ENV_LISTEN + 2);
    char *up = malloc(sizeof ENV_UPGRADE + 32);
    if (!env || !listen || !up) {
        free(env);
        free(listen);
        free(up);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], ENV_LISTEN "=", sizeof ENV_LISTEN) != 0 &&
            strncmp(environ[i], ENV_UPGRADE "=", sizeof ENV_UPGRADE) != 0)
            env[k++] = environ[i];
    int len = sprintf(listen, "%s=", ENV_LISTEN);
    for (size_t i = 0; i < nfds; i++)
        len += sprintf(listen + len, "%s%d", i ? ";" : "", fds[i]);
    sprintf(up, "%s=%d:%d", ENV_UPGRADE, pipe_w, g.nsockets);
    env[k++] = listen;
    env[k++] = up;
    env[k] = NULL;
    return env;
}

static void free_upgrade_env(char **env)
{
    if (!env)
        return;
    size_t n = 0;
    while (env[n])
        n++;
    free(env[n - 1]);
    free(env[n - 2]);
    free(env);
}

/* SIGUSR2: starts this executable again (the file now at its path: a new version, after a
 * package upgrade) with the listening sockets, and retires once it serves. */
static void start_upgrade(void)
{
    if (g.upgrade_pid) {
        log_line("binary upgrade: already in progress (process %d)", (int)g.upgrade_pid);
        return;
    }
    if (!g.exe[0]) {
        log_line("binary upgrade: the path of porter's executable is unknown");
        return;
    }
    int fds[MAX_LISTEN_FDS];
    size_t nfds = pt_server_listen_fds(g.server, fds, MAX_LISTEN_FDS);
    if (nfds > MAX_LISTEN_FDS) {
        log_line("binary upgrade: too many listening sockets (%zu)", nfds);
        return;
    }
    if (g.pid_path[0]) {
        char old[PATH_MAX + 8];
        snprintf(old, sizeof old, "%s.oldbin", g.pid_path);
        if (rename(g.pid_path, old) < 0) {
            log_line("binary upgrade: cannot rename the pid file \"%s\" to \"%s\": %s", g.pid_path,
                     old, strerror(errno));
            return;
        }
        snprintf(g.pid_file, sizeof g.pid_file, "%s", old);
    }
    int p[2];
    char **env = NULL;
    if (pipe2(p, O_CLOEXEC) < 0 || !(env = upgrade_env(fds, nfds, p[1]))) {
        log_line("binary upgrade: %s", strerror(errno));
        restore_pid_file();
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* The new executable starts with no signal blocked, the sockets and the pipe open and
         * every other descriptor closed. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        for (size_t i = 0; i < nfds; i++)
            fcntl(fds[i], F_SETFD, 0);
        fcntl(p[1], F_SETFD, 0);
        execve(g.exe, g.argv, env);
        fprintf(stderr, "porter[%d]: binary upgrade: cannot run \"%s\": %s\n", (int)getpid(), g.exe,
                strerror(errno));
        _exit(127);
    }
    int e = errno;
    free_upgrade_env(env);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        log_line("binary upgrade: fork: %s", strerror(e));
        restore_pid_file();
        return;
    }
    g.upgrade_pid = pid;
    g.upgrade_r = p[0];
    fcntl(g.upgrade_r, F_SETFL, O_NONBLOCK);
    ev_io_init(&g.upgrade_io, on_upgrade_ready, g.upgrade_r, EV_READ);
    ev_io_start(g.loop, &g.upgrade_io);
    ev_child_init(&g.upgrade_child, on_upgrade_exit, pid, 0);
    ev_child_start(g.loop, &g.upgrade_child);
    log_line("binary upgrade: started \"%s\" as process %d", g.exe, (int)pid);
}

/* ---- binary upgrade, seen from the new executable ---- */

/* Reads what the process before left in the environment: the sockets into fds (*nfds of them),
 * the pipe into g.upgrade_w, the sockets per address into *slots. Returns false without an
 * upgrade. The variables are removed, so that workers and later executables do not see them. */
static bool inherited(int *fds, size_t *nfds, int *slots)
{
    const char *listen = getenv(ENV_LISTEN), *up = getenv(ENV_UPGRADE);
    *nfds = 0;
    if (listen) {
        for (const char *p = listen; *p && *nfds < MAX_LISTEN_FDS;) {
            char *end;
            long fd = strtol(p, &end, 10);
            if (end == p || fd < 3 || fd > INT_MAX)
                break;
            fds[(*nfds)++] = (int)fd;
            p = *end == ';' ? end + 1 : end;
        }
    }
    int w = -1, n = 0;
    if (up && sscanf(up, "%d:%d", &w, &n) == 2 && w >= 3 && n > 0) {
        g.upgrade_w = w;
        fcntl(w, F_SETFD, FD_CLOEXEC);
        *slots = n;
    }
    unsetenv(ENV_LISTEN);
    unsetenv(ENV_UPGRADE);
    return listen || up;
}

/* ---- start-up ---- */

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

/* `path` under `prefix` unless it is absolute (or there is no prefix). */
static const char *under_prefix(const char *prefix, const char *path, char *buf, size_t len)
{
    if (!prefix || path[0] == '/')
        return path;
    snprintf(buf, len, "%s/%s", prefix, path);
    return buf;
}

/* -s: the signal, by name, to the process whose pid the conf's pid file holds. */
static int send_signal(const char *name)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"reload", SIGHUP},
                {"reopen", SIGUSR1},
                {"quit", SIGQUIT},
                {"stop", SIGTERM},
                {"upgrade", SIGUSR2}};
    size_t i = 0;
    while (i < sizeof sigs / sizeof *sigs && strcmp(sigs[i].name, name) != 0)
        i++;
    if (i == sizeof sigs / sizeof *sigs) {
        fprintf(stderr, "porter: invalid signal \"%s\": reload, reopen, quit, stop or upgrade\n",
                name);
        return 2;
    }
    char path[PATH_MAX], err[1024];
    int r = pt_server_conf_pid(g.conf, g.prefix, path, sizeof path, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "porter: %s\n", err[0] ? err : pt_strerror(r));
        return 1;
    }
    if (!path[0]) {
        fprintf(stderr,
                "porter: -s %s: the configuration \"%s\" names no pid file (\"pid PATH;\"), so "
                "the running porter cannot be found\n",
                name, g.conf);
        return 1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "porter: -s %s: cannot open the pid file \"%s\": %s%s\n", name, path,
                strerror(errno), errno == ENOENT ? " (is porter running?)" : "");
        return 1;
    }
    char line[64] = "";
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *end;
    long pid = got ? strtol(line, &end, 10) : 0;
    if (!got || pid <= 0 || pid > INT_MAX || (*end && *end != '\n')) {
        fprintf(stderr, "porter: -s %s: invalid pid \"%.*s\" in \"%s\"\n", name,
                (int)strcspn(line, "\n"), line, path);
        return 1;
    }
    if (kill((pid_t)pid, sigs[i].sig) < 0) {
        if (errno == ESRCH)
            fprintf(stderr,
                    "porter: -s %s: no process %ld (from the pid file \"%s\"): porter is not "
                    "running and the pid file is stale\n",
                    name, pid, path);
        else
            fprintf(stderr, "porter: -s %s: kill(%ld): %s\n", name, pid, strerror(errno));
        return 1;
    }
    return 0;
}

static void report_error(const char *msg, void *data)
{
    fprintf(stderr, "porter: %s\n", msg);
}

static void print_file(const char *path, void *data)
{
    FILE *f = fopen(path, "r");
    printf("# configuration file %s:\n", path);
    if (f) {
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        fclose(f);
    }
    printf("\n");
}

/* -t and -T. */
static int test_conf(bool dump, bool quiet)
{
    if (pt_server_check(g.conf, g.prefix, report_error, NULL) < 0) {
        fprintf(stderr, "porter: configuration file %s test failed\n", g.conf);
        return 1;
    }
    if (!quiet)
        fprintf(stderr,
                "porter: configuration file %s syntax is ok\n"
                "porter: configuration file %s test is successful\n",
                g.conf, g.conf);
    if (dump) {
        char err[1024];
        int r = pt_server_conf_files(g.conf, g.prefix, print_file, NULL, err, sizeof err);
        fflush(stdout);
        if (r < 0) {
            fprintf(stderr, "porter: %s\n", err);
            return 1;
        }
    }
    return 0;
}

/* -e: standard error becomes FILE, until the conf's error_log takes over. */
static int early_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
        fprintf(stderr, "porter: cannot open the error log \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf = DEFAULT_CONF, *prefix = NULL, *elog = NULL, *sig = NULL;
    bool test = false, dump = false, quiet = false;
    int opt;
    static const struct option longs[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    while ((opt = getopt_long(argc, argv, "c:p:e:s:tTqhvV", longs, NULL)) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'e':
            elog = optarg;
            break;
        case 's':
            sig = optarg;
            break;
        case 'T':
            dump = true;
            /* fall through */
        case 't':
            test = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'v':
            printf("porter %s\n", pt_version());
            return 0;
        case 'V':
            build_info();
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
    char conf_buf[PATH_MAX], elog_buf[PATH_MAX];
    g.conf = under_prefix(prefix, conf, conf_buf, sizeof conf_buf);
    g.prefix = prefix;
    g.argv = argv;
    if (elog && strcmp(elog, "stderr") != 0 &&
        early_log(under_prefix(prefix, elog, elog_buf, sizeof elog_buf)) < 0)
        return 1;
    if (sig)
        return send_signal(sig);
    if (test)
        return test_conf(dump, quiet);

    ssize_t n = readlink("/proc/self/exe", g.exe, sizeof g.exe - 1);
    g.exe[n > 0 ? n : 0] = '\0';
    int fds[MAX_LISTEN_FDS];
    size_t nfds = 0;
    int slots = 0;
    bool upgrade = inherited(fds, &nfds, &slots);

    char err[1024];
    g.loop = ev_default_loop(EVFLAG_AUTO);
    if (!g.loop) {
        fprintf(stderr, "porter: cannot initialise the event loop\n");
        return 1;
    }
    /* The worker count decides how many sockets each address gets, so read it first. */
    g.nworkers = pt_server_conf_workers(g.conf, prefix, err, sizeof err);
    int r = g.nworkers;
    if (r >= 0) {
        if (g.nworkers > MAX_WORKERS)
            g.nworkers = MAX_WORKERS;
        pt_server_options o;
        pt_server_options_init(&o);
        o.conf_path = g.conf;
        o.prefix = prefix;
        /* After a binary upgrade the process tree keeps its sockets per address. */
        g.nsockets = slots > 0 ? slots : g.nworkers;
        o.worker_slots = g.nsockets;
        o.workers = g.nworkers;
        o.inherited = fds;
        o.ninherited = nfds;
        r = pt_server_new_with(&g.server, g.loop, &o, err, sizeof err);
    }
    for (size_t i = 0; i < nfds; i++)
        if (fds[i] >= 0) /* sockets the conf no longer listens on */
            close(fds[i]);
    if (r < 0) {
        fprintf(stderr, "porter: %s\n", err[0] ? err : pt_strerror(r));
        if (upgrade)
            fprintf(stderr,
                    "porter[%d]: binary upgrade: this process cannot start; the one "
                    "before serves on\n",
                    (int)getpid());
        return 1;
    }
    if (choose_user(g.nworkers > 1) < 0) {
        pt_server_free(g.server);
        return 1;
    }
    const char *pid_path = pt_server_pid_path(g.server);
    if (pid_path) {
        snprintf(g.pid_path, sizeof g.pid_path, "%s", pid_path);
        if (write_pid(g.pid_path) < 0) {
            pt_server_free(g.server);
            return 1;
        }
        snprintf(g.pid_file, sizeof g.pid_file, "%s", g.pid_path);
    }
    ev_timer_init(&g.rotate, on_rotate, 0., 0.);
    arm_rotation();
    int code = g.nworkers > 1 ? run_master() : serve(0);
    stop_rotation();
    stop_signals();
    pt_server_free(g.server);
    /* The pid file this process owns: its own, or after a binary upgrade the .oldbin one. */
    if (g.pid_file[0])
        unlink(g.pid_file);
    ev_loop_destroy(g.loop);
    return check_leaks(code);
}
