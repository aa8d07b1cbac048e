/*
 * The conf: porter's configuration file, in nginx's syntax, read into the plain structs of
 * server/core/conf.h; or the same structs built from values by the embedding API
 * (server/options.c), through the functions the directives call.
 *
 *     worker_processes auto;
 *     max_request_body_length 8m;           # a default for every server
 *     server {
 *         listen 127.0.0.1:8080 default_server;
 *         server_name example.com www.example.com;
 *         root htdocs;
 *         keepalive_timeout 30s;             # this server only
 *     }
 *
 * Syntax: directives `name arg ...;`, blocks `name arg ... { ... }`, `#` comments to the end of
 * the line, arguments quoted with "..." or '...' (escapes \" \' \\ \n \t \r). `include PATH;`
 * may appear anywhere: PATH may be a glob (no match is not an error, as in nginx) and is
 * relative to the directory of the file that contains the include; includes nest at most
 * PT_CONF_INCLUDE_DEPTH deep and a cycle is an error. The top level holds directives and
 * `server` blocks; an `http { ... }` wrapper around them is accepted transparently and
 * `events { worker_connections N; }` sets max_concurrent, so an nginx user's file mostly reads
 * as is. `location [=|^~|~|~*] PATH { ... }` blocks go in a server or in another location
 * (nginx's nested locations, with its checks); `location @NAME { ... }` in a server only.
 *
 * The folder: parse.c reads the syntax into a tree of directives (file:line:col on every word);
 * directives.c applies the tree through the tables the modules register, each module the
 * directives of what it configures: core.c (http, server, location, listen, names, root,
 * index, logs, types, limits, return, status), static.c (try_files, error_page, add_header,
 * expires, autoindex, the file cache), tls.c (ssl_*), proxy.c (proxy_*, upstream), http2.c
 * (http2, http2_*), log.c (log_format, access_log), realip.c (set_real_ip_from, real_ip_header,
 * real_ip_recursive); load.c lists the modules and loads.
 *
 * Inheritance: every server starts from the values given at the top level (limits, root,
 * index, logs, sendfile, server_tokens, default_type, types, static-file, ssl_* and http2
 * settings), wherever they appear at the top level, before or after the server block, then
 * applies its own directives; every location likewise starts from its server's root, index,
 * sendfile and static-file settings (a nested location from the location holding it, alias
 * included). A `types` block in a server replaces the inherited types;
 * several `types` blocks at one level add up.
 *
 * Defaults: listen *:8080 for a server without `listen`; root `htdocs` under the prefix; index
 * index.html; access log off; error log "stderr" at level error; worker_processes 1; no pid
 * file; sendfile on; server_tokens on; default_type application/octet-stream; no types (the
 * MIME module supplies the system table); limits pt_limits_init()'s. A listen's backlog
 * defaults to its server's max_waiting. Static files: autoindex off (html, exact sizes, GMT),
 * expires off, no add_header, error_page or try_files, precompressed off, max_ranges 16, etag
 * on. File cache: file_cache_size 32m, file_cache_max_file 32k, file_cache_valid 1s,
 * open_file_cache max=1000 inactive=60s. TLS: no certificate, TLS 1.2 and 1.3,
 * server/site/tls_ctx.h's cipher defaults with the server's preference, a builtin session cache of
 * 20480 sessions per process, session_timeout 1h, tickets on with keys rotated every 1h, handshakes
 * bounded by 10s and 1000 in progress per address. HTTP/2: off (`listen ... http2` or `http2 on`
 * turn it on), with pt_h2_settings_default().
 *
 * Paths: root, log paths, pid and certificate files are stored absolute: joined to the prefix given
 * to the loader or to pt_conf_new() (NULL: the current directory) and cleaned lexically ("//" and
 * "/./" collapse, a trailing "/" goes); symlinks and ".." are left alone. A log path of "stderr"
 * or "syslog:..." stays as written.
 *
 * Ownership: a pt_conf owns every string and array reachable from it; pt_conf_free() releases
 * all of it. `file` members point into pt_conf.files (in a conf built from values, at what its
 * builder gave) and live as long as the pt_conf.
 * Threading: none; a pt_conf is immutable once loaded and may be read from any thread.
 * Errors: the loaders return 0 or a negative errno (-EINVAL for a syntax or semantic error,
 * -ELOOP for an include cycle or nesting too deep, the open/read errno for an unreadable file)
 * and write one line "FILE:LINE:COL: reason" (1-based; the column counts bytes) into the
 * caller's buffer. The position is the offending token's; for a missing ';' or '}' it is where
 * the file ended or the '}' that came instead, for an unterminated string its opening quote.
 * On error *out is NULL and nothing is leaked. Allocation failure aborts. The setters below
 * write "PLACE: reason", PLACE being the value's file:line:col or, for a value from no file,
 * what it came from.
 */
#ifndef PORTER_SERVER_CONF_CONF_H
#define PORTER_SERVER_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "server/core/conf.h"

/* How deep includes may nest below the main file. */
#define PT_CONF_INCLUDE_DEPTH 16

/* Loads and validates the file at `path` (relative to the current directory), resolving
 * relative paths in it against `prefix` (NULL: the current directory). On success stores a
 * new pt_conf in *out and returns 0. On error stores NULL, returns a negative errno and writes
 * "FILE:LINE:COL: reason" (for an unreadable main file "FILE: cannot open: reason") into
 * `err` (`errlen` bytes, always NUL-terminated; `err` may be NULL). */
int pt_conf_load(pt_conf **out, const char *path, const char *prefix, char *err, size_t errlen);

/* Like pt_conf_load() for a configuration held in memory: `text` is borrowed, `name` is the
 * file name used in messages and the base of relative includes (its directory). */
int pt_conf_parse_string(pt_conf **out, const char *text, const char *name, const char *prefix,
                         char *err, size_t errlen);

/* Called with each error of a check, "FILE:LINE:COL: reason" (valid during the call). */
typedef void (*pt_conf_report_fn)(const char *msg, void *data);

/* A check (-t): loads `path` as pt_conf_load() does, but a directive in error is reported and
 * left out and the reading goes on, so that report(msg, data) hears of every error in the order
 * met (a syntax error ends the reading, since what follows it cannot be read; what spans several
 * servers is checked once they read without error). *out receives what was read even after
 * errors (NULL only when the text could not be read): enough to check the files it names, never
 * to serve from. Returns 0, or the first error's negative errno. */
int pt_conf_check(pt_conf **out, const char *path, const char *prefix, pt_conf_report_fn report,
                  void *data);

/* Frees `c` and everything it owns. NULL: no-op. */
void pt_conf_free(pt_conf *c);

/* Parses a size: digits with an optional suffix k/K (KiB), m/M (MiB) or g/G (GiB). No sign,
 * no spaces, no trailing characters. Returns 0, -EINVAL for a malformed string or -ERANGE if
 * it does not fit a size_t. ("off" and "unlimited" are the directives' business.) */
int pt_parse_size(const char *s, size_t *out);

/* Parses a time into seconds: a number with a unit ms, s, m, h or d, or several in
 * decreasing order ("1m30s", "1h30m"); a number without a unit is seconds ("60", "1m30").
 * Returns 0, -EINVAL for a malformed string or -ERANGE for an absurdly large value. */
int pt_parse_time(const char *s, double *out);

/* ---- a conf built from values (server/options.c), through what the directives call ---- */

/* The setters below return 0, or -EINVAL with the refusal of `v` written through `v`. */

/* A value given to a setter, with where it came from for messages. */
typedef struct pt_conf_value {
    const char *s;    /* the value (borrowed) */
    const char *name; /* the directive or option it is given to, named in messages */
    const char *file; /* the file it was written in, or what it came from */
    int line, col;    /* its place in `file`; line 0: none ("FILE: reason") */
    char *err;        /* where a refusal is written (`errlen` bytes); may be NULL */
    size_t errlen;
} pt_conf_value;

/* A conf holding the top level's defaults and nothing else (no server): what a file without
 * directives starts from. `prefix` as for pt_conf_load(). Returns 0 or a negative errno (the
 * current directory unknown) with "NAME: reason" in `err`, `name` saying what the conf is made
 * from. */
int pt_conf_new(pt_conf **out, const char *name, const char *prefix, char *err, size_t errlen);

/* Appends a server starting from the top level's values, as a `server { }` block does (no
 * listen: a block without one gets its default when it is complete). `file`, `line` and `col`
 * say where it was written (borrowed: a string that outlives the conf). */
pt_conf_server *pt_conf_server_add(pt_conf *c, const char *file, int line, int col);

/* Appends a location to `s` starting from the server's values, as a `location` block does; its
 * match and path are set apart (pt_conf_location_path). */
pt_conf_location *pt_conf_location_add(pt_conf_server *s, const char *file, int line, int col);

/* Appends a location nested in the location `parent` (its index in s->locations), starting from
 * that location's values as a `location` block inside it does. Pointers into s->locations taken
 * before the call no longer hold. */
pt_conf_location *pt_conf_location_nest(pt_conf_server *s, size_t parent, const char *file,
                                        int line, int col);

/* The match of `l` and its path (copied); for PT_MATCH_REGEX l->re is the caller's to compile. */
void pt_conf_location_path(pt_conf_location *l, pt_conf_match match, const char *path);

/* `root PATH`: *root becomes the path under c's prefix, and *named true. */
int pt_conf_set_root(const pt_conf *c, char **root, bool *named, const pt_conf_value *v);

/* `access_log PATH|stderr|syslog:...|off` in the combined format: appends it to the list `logs`
 * (`n` long) with the path under c's prefix ("stderr" and "syslog:..." as they are), or
 * empties the list for "off". */
int pt_conf_add_access_log(const pt_conf *c, pt_conf_access_log **logs, size_t *n,
                           const pt_conf_value *v);

/* `error_log PATH|stderr|syslog:...` (the level apart): *log becomes the path, "stderr", or the
 * syslog server as written. */
int pt_conf_set_error_log(const pt_conf *c, char **log, const pt_conf_value *v);

/* A "syslog:..." log path is checked (its parameters, its server's address); others pass. */
int pt_conf_check_log_path(const pt_conf_value *v);

/* `ssl_certificate FILE` or `ssl_certificate_key FILE`: appends the file under c's prefix to
 * the list `files` (`n` long); with `replace` (the first at a level) the list inherited goes
 * first. */
int pt_conf_add_ssl_file(const pt_conf *c, char ***files, size_t *n, bool replace,
                         const pt_conf_value *v);

/* `return CODE [TEXT]` (checked by the directive): in a location (`handler` its handler) it
 * becomes PT_HANDLER_RETURN; in a server `handler` is NULL. `text` is copied (NULL: none). */
void pt_conf_set_return(pt_conf_return *r, pt_handler_kind *handler, int code, const char *text);

#endif
