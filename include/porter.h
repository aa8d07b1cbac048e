/*
 * porter: an HTTP/1.1 server and connection layer on libev.
 *
 * A pt_server runs on a caller's libev loop: it owns its listeners, connection managers,
 * virtual hosts and logs, and everything a connection allocates (custodians). It makes no
 * threads. Functions return 0 or a negative errno; pt_strerror() names it.
 *
 * Lifecycle: pt_server_new() (from a conf file; listening sockets are opened, not yet
 * watched) → pt_server_start() → ... → pt_server_stop() (graceful; the callback runs when the
 * last connection is gone) → pt_server_free(). Threading: the loop's thread only.
 */
#ifndef PORTER_H
#define PORTER_H

#include <ev.h>
#include <stddef.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_server pt_server;
typedef void (*pt_server_stopped_cb)(pt_server *s, void *data);

/* Loads the conf file at `conf_path` (relative paths in it are taken from `prefix`, NULL: the
 * current directory), opens its roots, logs and listening sockets. On error returns a negative
 * errno and writes a message ("file:line:col: reason" for conf errors) into `err`. */
int pt_server_new(pt_server **out, struct ev_loop *loop, const char *conf_path, const char *prefix,
                  char *err, size_t errlen);

/* Options of pt_server_new_with(). */
typedef struct pt_server_options {
    const char *conf_path; /* the conf file ("conf/porter.conf") */
    const char *prefix;    /* where relative paths in it start (NULL: the current directory) */
    /* Listening sockets per address, shared by worker processes with SO_REUSEPORT (0 or 1:
     * one socket). Keep it fixed for the life of a process tree: a reload then takes every
     * socket over, whatever the worker count. */
    int worker_slots;
    /* Worker processes that will run this server (0: as many as worker_slots). Worker `slot`
     * accepts on sockets slot, slot + workers, ... */
    int workers;
    /* Reload: listening sockets of `previous` for addresses the new conf also has (same
     * address, port and worker count) are taken over instead of opened anew, so no client
     * connecting meanwhile is refused. `previous` must then be retired and freed. */
    pt_server *previous;
} pt_server_options;

/* Fills `o` with the defaults above. */
void pt_server_options_init(pt_server_options *o);

/* Like pt_server_new() with options. */
int pt_server_new_with(pt_server **out, struct ev_loop *loop, const pt_server_options *o, char *err,
                       size_t errlen);

/* In worker `slot` (0 <= slot < workers) of a process tree: starts accepting on that worker's
 * sockets. Call it after fork() and ev_loop_fork(). */
int pt_server_start_worker(pt_server *s, int slot);

/* A stop that hands over to a successor (reload): stops accepting, lets each connection finish
 * its work and close after its next response, never closing one a client may be sending on;
 * what remains after the shutdown grace period is closed. `cb` runs when none is left. */
void pt_server_retire(pt_server *s, pt_server_stopped_cb cb, void *data);

/* Checks a conf file as pt_server_new() would, without listening: syntax, values, that every
 * root is a directory and every log can be opened. Returns 0 or a negative errno with the
 * message in `err`. */
int pt_server_test(const char *conf_path, const char *prefix, char *err, size_t errlen);

/* Starts accepting connections. */
int pt_server_start(pt_server *s);

/* Graceful stop: stops accepting, closes idle connections, lets in-flight responses finish
 * within the shutdown grace period, then kills the rest; `cb` runs when none is left. A second
 * call kills every connection at once. */
void pt_server_stop(pt_server *s, pt_server_stopped_cb cb, void *data);

/* Frees everything the server owns (connections are killed). NULL: no-op. Not from inside a
 * porter callback (the stopped callback included): defer it to a watcher of your own. */
void pt_server_free(pt_server *s);

/* Writes the bound addresses of every listening socket (useful with port 0). Returns how many
 * there are (possibly more than `max`). */
size_t pt_server_addresses(const pt_server *s, struct sockaddr_storage *out, size_t max);

/* Reopens log files (after rotation). */
int pt_server_reopen_logs(pt_server *s);

/* Reads the conf file and returns the number of worker processes it asks for (auto: the CPU
 * count), or a negative errno with the message in `err`. */
int pt_server_conf_workers(const char *conf_path, const char *prefix, char *err, size_t errlen);

/* Number of worker processes the conf asks for (auto resolved to the CPU count). */
int pt_server_worker_processes(const pt_server *s);

/* Path of the pid file the conf asks for, or NULL. */
const char *pt_server_pid_path(const pt_server *s);

/* What this thread still holds: custodians not shut down, shut down but not yet reaped, and
 * buffer chunks handed out. All zero once every server on the thread has been freed; tests
 * and the porter executable check this at exit. */
typedef struct pt_resource_counts {
    size_t custodians, unreaped, chunks;
} pt_resource_counts;
void pt_resource_counts_get(pt_resource_counts *out);

/* A message for a negative errno returned by porter. */
const char *pt_strerror(int err);

/* Version string, "0.1.0". */
const char *pt_version(void);

#ifdef __cplusplus
}
#endif

#endif
