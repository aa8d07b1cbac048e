/*
 * Access-log formats: `log_format NAME [escape=default|json|none] STRING ...;` compiled once at
 * conf load into a list of pieces (literal runs and $variables), and the line of a request
 * written from them.
 *
 * The variables are the request core's (server/core/vars.h, user PT_VARS_LOG). A value is
 * escaped as the format says: `default` as nginx does (", \ and bytes below 32 or above 126
 * become \xHH; an empty value is "-"), `json` so that the line is valid JSON whatever the
 * client sent (", \ and control bytes escaped, bytes that are not UTF-8 become \ufffd), `none`
 * not at all.
 *
 * Writing a line allocates nothing: it goes into the caller's buffer (a map of the conf's own
 * that the line reads first is computed in the request's arena). A line longer than the
 * buffer keeps every literal piece and cuts values short, at an escape's boundary, so it stays
 * well formed (valid JSON stays valid JSON).
 *
 * Ownership: pt_logfmt_compile() makes a format, pt_logfmt_free() frees it (NULL: no-op); the
 * combined format is static. A format is immutable once made: any thread may read it.
 */
#ifndef PORTER_SERVER_CORE_LOGFMT_H
#define PORTER_SERVER_CORE_LOGFMT_H

#include <stddef.h>

#include "server/core/request.h"

struct pt_conf_vars; /* server/core/conf.h */

typedef enum pt_log_escape {
    PT_LOG_ESCAPE_DEFAULT,
    PT_LOG_ESCAPE_JSON,
    PT_LOG_ESCAPE_NONE,
} pt_log_escape;

/* The longest access-log line, newline included (longer ones are cut as said above). */
#define PT_LOG_LINE_MAX 16384

/* nginx's combined format, the default of access_log. */
#define PT_LOG_COMBINED                                                                            \
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent "             \
    "\"$http_referer\" \"$http_user_agent\""

typedef struct pt_logfmt pt_logfmt;

/* One access log of a location (or server): where lines go, in which format, and the if=
 * condition (NULL: every request; else a request whose condition is empty or "0" is not
 * logged). Borrowed from the server and its conf, which outlive the requests. */
typedef struct pt_access_log {
    pt_log *log;
    const pt_logfmt *fmt;
    const pt_logfmt *cond;
} pt_access_log;

/* Escapes `len` bytes of `src` as `e` says into `dst` (`cap` bytes), whole escapes only: stops
 * before the first that does not fit. Returns the bytes written; *taken receives the bytes of
 * `src` consumed. */
size_t pt_logfmt_escape(pt_log_escape e, char *dst, size_t cap, const char *src, size_t len,
                        size_t *taken);

/* Compiles `text` (the format's strings concatenated; copied) escaped as `e` says. Returns 0,
 * or -EINVAL with the reason in `why` (an unknown or malformed variable name) and, in *at, the
 * offset in `text` of the reference at fault; -ENOMEM. */
int pt_logfmt_compile(pt_logfmt **out, const char *text, pt_log_escape e, char *why, size_t whylen,
                      size_t *at);

/* The same, where the text may also name the variables of `vars` (the conf's own: set, map). */
int pt_logfmt_compile_with(pt_logfmt **out, const char *text, pt_log_escape e,
                           const struct pt_conf_vars *vars, char *why, size_t whylen, size_t *at);

void pt_logfmt_free(pt_logfmt *f);

/* The combined format (static: never freed). */
const pt_logfmt *pt_logfmt_combined(void);

/* Writes the line of `req` as `f` says into `buf` (`cap` bytes), without a newline; returns
 * its length (at most `cap`). The request's status and body bytes are those of the response
 * being logged (pt_request_access_log sets them). */
size_t pt_logfmt_line(const pt_logfmt *f, const pt_request *req, char *buf, size_t cap);

#endif
