/*
 * The guard (guard.h): the checks in their order, run until one does not pass.
 */
#include "server/site/guard.h"

#include <string.h>

#include "server/site/access.h"
#include "server/site/limiter.h"
#include "server/site/realip.h"

/* In nginx's order of phases; NULL ends the list. */
static const pt_guard_check checks[] = {
    pt_realip_check,    /* set_real_ip_from of the location (site/realip.h) */
    pt_limit_req_check, /* preaccess: limit_req, then limit_conn */
    pt_limit_conn_check,
    pt_access_check, /* access: allow/deny, auth_basic, satisfy */
    NULL,
};

/* Runs the checks from req->guard_step on. */
static int advance(pt_request *req)
{
    while (checks[req->guard_step]) {
        int verdict = checks[req->guard_step++](req);
        if (verdict == PT_GUARD_PASS)
            continue;
        if (verdict == PT_GUARD_WAIT && !req->norm_path_kept) {
            /* the router's copy of the path lives on its stack, gone when it returns */
            char *copy = pt_request_alloc(req, req->norm_path.len + 1);
            if (copy) {
                memcpy(copy, req->norm_path.p, req->norm_path.len);
                copy[req->norm_path.len] = '\0';
            }
            req->norm_path.p = copy; /* NULL: out of memory, a 500 when resumed */
            req->norm_path_kept = true;
        }
        return verdict;
    }
    return PT_GUARD_PASS;
}

int pt_guard_run(pt_request *req, pt_guard_next next)
{
    req->guard_step = 0;
    req->guard_next = next;
    req->norm_path_kept = false;
    return advance(req);
}

void pt_guard_resume(pt_request *req, int verdict)
{
    if (verdict == PT_GUARD_PASS && !req->norm_path.p)
        verdict = 500;
    if (verdict == PT_GUARD_PASS)
        verdict = advance(req);
    if (verdict != PT_GUARD_WAIT)
        req->guard_next(req, verdict);
}
