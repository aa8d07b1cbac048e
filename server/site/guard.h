/*
 * The guard: the checks a request passes between finding its location and that location's
 * handler (nginx's post-read, preaccess and access phases), in this order:
 *
 *   the real client address (set_real_ip_from, real_ip_header)
 *   limit_req, then limit_conn
 *   allow/deny and auth_basic, combined by `satisfy`
 *
 * Each check reads the settings of req->location and answers with a verdict: PT_GUARD_PASS
 * (the next check runs), a status to refuse with (answered as any error of the location is,
 * through its error_page), PT_GUARD_ANSWERED (the check answered itself), or PT_GUARD_WAIT: it
 * holds the request (a delay of limit_req, a password being verified) and calls
 * pt_guard_resume() exactly once when it knows, unless the request ends first (then the check's
 * own cleanup, registered on the request's custodian, stops it).
 *
 * The guard runs again for the location an internal redirect leads to (try_files, error_page),
 * as nginx's access phase does; a check that must count a request once (limit_req,
 * limit_conn) remembers that it has. A location's `return` answers before the guard, as nginx's
 * rewrite phase does.
 *
 * Threading: the loop's thread. Nothing is allocated unless a check holds the request (then
 * the normalised path is copied into the request's arena, since the router's copy was on its
 * stack).
 */
#ifndef PORTER_SERVER_SITE_GUARD_H
#define PORTER_SERVER_SITE_GUARD_H

#include "server/core/request.h"

enum {
    PT_GUARD_PASS = 0,
    PT_GUARD_WAIT = -1,     /* held: pt_guard_resume() follows */
    PT_GUARD_ANSWERED = -2, /* the check answered the request itself */
};

/* A check: PT_GUARD_PASS, PT_GUARD_WAIT, PT_GUARD_ANSWERED, or a status (400..599). */
typedef int (*pt_guard_check)(pt_request *req);

/* What runs the request on once a held request is let go: its verdict is that of the checks
 * (PT_GUARD_PASS when all passed). */
typedef void (*pt_guard_next)(pt_request *req, int verdict);

/* Runs the checks from the first. Returns the verdict when every check decided at once (never
 * PT_GUARD_WAIT then); PT_GUARD_WAIT when one holds the request: `next` gets the verdict
 * later. */
int pt_guard_run(pt_request *req, pt_guard_next next);

/* A check that answered PT_GUARD_WAIT decided `verdict` (PT_GUARD_PASS: the checks after it
 * run). */
void pt_guard_resume(pt_request *req, int verdict);

#endif
