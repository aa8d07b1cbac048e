/*
 * Configuration: porter's configuration file, in nginx's syntax, read into plain structs.
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
 * as is. `location [=|^~] PATH { ... }` blocks go in a server (not nested); regex and named
 * locations are rejected.
 *
 * Inheritance: every server starts from the values given at the top level (limits, root,
 * index, logs, sendfile, server_tokens, default_type, types, static-file and ssl_* settings),
 * wherever they appear at the top level, before or after the server block, then applies its own
 * directives; every location likewise starts from its server's root, index, sendfile and
 * static-file settings. A `types` block in a server replaces the inherited types; several
 * `types` blocks at one level add up.
 *
 * Defaults: listen *:8080 for a server without `listen`; root `htdocs` under the prefix; index
 * index.html; access log off; error log "stderr" at level error; worker_processes 1; no pid
 * file; sendfile on; server_tokens on; default_type application/octet-stream; no types (the
 * MIME module supplies the system table); limits pt_limits_default(). A listen's backlog
 * defaults to its server's max_waiting. Static files: autoindex off (html, exact sizes, GMT),
 * expires off, no add_header, error_page or try_files, precompressed off, max_ranges 16, etag
 * on. File cache: file_cache_size 32m, file_cache_max_file 32k, file_cache_valid 1s,
 * open_file_cache max=1000 inactive=60s. TLS: no certificate, TLS 1.2 and 1.3, server/tls_ctx.h's
 * cipher defaults with the server's preference, a builtin session cache of 20480 sessions per
 * process, session_timeout 1h, tickets on with keys rotated every 1h, handshakes bounded by 10s
 * and 1000 in progress per address.
 *
 * Paths: root, log paths, pid and certificate files are stored absolute: joined to the prefix given
 * to the loader (NULL: the current directory) and cleaned lexically ("//" and "/./" collapse, a
 * trailing "/" goes); symlinks and ".." are left alone. A log path of "stderr" stays the
 * literal string "stderr".
 *
 * Ownership: a pt_conf owns every string and array reachable from it; pt_conf_free() releases
 * all of it. `file` members point into pt_conf.files and live as long as the pt_conf.
 * Threading: none; a pt_conf is immutable once loaded and may be read from any thread.
 * Errors: the loaders return 0 or a negative errno (-EINVAL for a syntax or semantic error,
 * -ELOOP for an include cycle or nesting too deep, the open/read errno for an unreadable file)
 * and write one line "FILE:LINE:COL: reason" (1-based; the column counts bytes) into the
 * caller's buffer. The position is the offending token's; for a missing ';' or '}' it is where
 * the file ended or the '}' that came instead, for an unterminated string its opening quote.
 * On error *out is NULL and nothing is leaked. Allocation failure aborts.
 */
#ifndef PORTER_SERVER_CONFIG_H
#define PORTER_SERVER_CONFIG_H

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

#endif
