/*
 * The access phase: allow/deny and auth_basic, combined by `satisfy` (docs/access.md), the last
 * of the guard's checks (guard.h).
 *
 * allow/deny: the location's rules, compiled at load (pt_conf_access), are tried in order
 * against the request's client address (req->peer, which the real-IP check may have replaced);
 * the first that holds it decides. A short loop over a few bytes per rule; nothing allocated.
 *
 * auth_basic: the Authorization header's user is looked up in the location's user file, read
 * at load, and its password checked against the hash. The fast hashes ({PLAIN}, {SHA},
 * {SSHA}, $apr1$, $1$: microseconds) are checked at once. The slow ones (bcrypt, SHA-crypt,
 * yescrypt: tens of milliseconds by design) go to the server's work pool (core/workpool.h): the
 * request is held meanwhile (PT_GUARD_WAIT) and the loop serves every other connection; a
 * request that ends first leaves its job to finish and its result to be dropped. A password
 * found right is remembered for a minute (pt_access_state), unless its hash is cheaper than
 * that ({PLAIN}, {SHA}, {SSHA}): a browser sends it again with every request, which then costs
 * one HMAC instead of a bcrypt or MD5-crypt's thousand rounds.
 *
 * Refusals: 403 for an address denied, 401 with `WWW-Authenticate: Basic realm="...",
 * charset="UTF-8"` for missing, malformed or wrong credentials (kept through the location's
 * error_page, on the answer that keeps the 401). Logged as nginx logs them.
 *
 * Ownership: a pt_access_state belongs to its server, released with the custodian it is made
 * under (its pool's threads joined). Threading: the loop's thread, but for the pool's jobs.
 */
#ifndef PORTER_SERVER_SITE_ACCESS_H
#define PORTER_SERVER_SITE_ACCESS_H

#include <ev.h>

#include "connmgr/custodian.h"
#include "server/core/request.h"

typedef struct pt_access_state pt_access_state;

/* Makes the state a server's requests share (the work pool, the remembered passwords) on
 * `loop`, released with `owner`. Returns 0 or a negative errno. */
int pt_access_state_new(pt_access_state **out, struct ev_loop *loop, pt_custodian *owner);

/* The guard's check for `req` (its location's access settings, its vhost's state): a verdict of
 * guard.h. */
int pt_access_check(pt_request *req);

/* Jobs of `s` in the work pool, not yet done (for tests). */
size_t pt_access_pending(const pt_access_state *s);

#endif
