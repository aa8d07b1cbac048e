/*
 * Conditional requests (RFC 9110 section 13): If-Match, If-Unmodified-Since, If-None-Match,
 * If-Modified-Since, evaluated in the RFC's order against a file's ETag and modification time,
 * and If-Range for a Range request.
 *
 * Comparison: If-Match and If-Range use the strong comparison (a weak tag never matches),
 * If-None-Match the weak one (W/"x" matches "x"). Dates that do not parse are ignored, as
 * are If-Modified-Since dates in the future.
 *
 * Ownership: nothing is kept; inputs are borrowed for the call. Threading: no state.
 */
#ifndef PORTER_SERVER_HANDLERS_CONDITIONAL_H
#define PORTER_SERVER_HANDLERS_CONDITIONAL_H

#include <stdbool.h>
#include <time.h>

#include "server/core/request.h"

/* The precondition fields of a request; a field that is absent has p == NULL. */
typedef struct pt_cond_request {
    pt_str if_match, if_none_match, if_modified_since, if_unmodified_since;
} pt_cond_request;

enum {
    PT_COND_PROCEED = 0,        /* answer as if there were no precondition */
    PT_COND_NOT_MODIFIED = 304, /* GET or HEAD: the client's copy is current */
    PT_COND_FAILED = 412,       /* a precondition is false */
};

/* Evaluates the preconditions of `c` for a file with `etag` (with quotes; empty when the
 * server sends none) modified at `mtime`, at time `now`. `get_or_head`: the method is GET or
 * HEAD (a false If-None-Match is then a 304, else a 412). Returns a PT_COND_* value. */
int pt_cond_evaluate(const pt_cond_request *c, bool get_or_head, pt_str etag, time_t mtime,
                     time_t now);

/* Whether the If-Range `value` (an entity tag or a date) still names the file with `etag` and
 * `mtime`: the tag compared strongly, the date equal to the modification time. */
bool pt_cond_if_range(pt_str value, pt_str etag, time_t mtime);

/* Whether `list` ("*" or a comma-separated list of entity tags) holds `etag`. `weak`: the weak
 * comparison. An empty `etag` matches only "*". */
bool pt_cond_etag_match(pt_str list, pt_str etag, bool weak);

#endif
