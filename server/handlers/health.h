/*
 * Active health checks of an upstream block (`health_check`): every interval each server of
 * the block (but those marked `down`) is asked `GET uri` on a fresh connection (TLS for an
 * https upstream, verified as the proxy verifies), with `Connection: close`. An answer whose
 * status is 2xx or 3xx within the timeout passes; anything else (no connection, a timeout, an
 * error status, an answer that is not HTTP) fails. `fails` checks failed in a row mark the
 * server unhealthy, `passes` passed in a row bring it back (and start its slow_start).
 *
 * One process checks (worker 0, or the only process) and writes the verdict into the block's
 * shared state (upstream.h's pt_peer_state, under its lock), which every worker reads when it
 * chooses a server: a server that fails is skipped everywhere from the check that failed it.
 *
 * Ownership: a pt_health belongs to the upstream whose connector and TLS context it uses;
 * what a check holds (a connect, a transport, its timer) is released when the check ends, on
 * pt_health_stop() and on pt_health_free(). Threading: the loop's thread. Errors: a check's are
 * its verdict (and a log line when the verdict changes).
 */
#ifndef PORTER_SERVER_HANDLERS_HEALTH_H
#define PORTER_SERVER_HANDLERS_HEALTH_H

#include <stdbool.h>

#include "server/core/conf.h"
#include "server/handlers/upstream.h"

typedef struct pt_health pt_health;

/* Makes the checks of `up`'s servers as `conf` says (both borrowed: they outlive it). Nothing
 * runs before pt_health_start(). Returns 0 or -ENOMEM. */
int pt_health_new(pt_health **out, pt_upstream *up, const pt_conf_health_check *conf);

/* Starts checking: a round at once, then one every interval. */
void pt_health_start(pt_health *h);

/* Stops checking: checks in progress are abandoned (no verdict). Twice is a no-op. */
void pt_health_stop(pt_health *h);

/* Stops and frees. NULL: no-op. */
void pt_health_free(pt_health *h);

/* A check of server `i` ended at `now`: `passed`, with the answer's `status` (0: none). Counts
 * it and changes the server's verdict when `fails` or `passes` in a row say so. */
void pt_health_record(pt_upstream *up, const pt_conf_health_check *conf, size_t i, bool passed,
                      int status, double now);

#endif
