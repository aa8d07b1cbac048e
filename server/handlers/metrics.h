/*
 * The metrics (`location = /metrics { metrics; }`): the stats board (server/core/stats.h) and
 * the shared zones, summed over the workers, in Prometheus' text format (version 0.0.4) or, when
 * the client's Accept asks for it, OpenMetrics 1.0. docs/metrics.md lists every metric.
 *
 * Also the two things the server asks of this module while it builds the board: the label of
 * each server's series, and the upstream servers the proxy's attempts are counted against.
 *
 * Threading: the loop's thread.
 */
#ifndef PORTER_SERVER_HANDLERS_METRICS_H
#define PORTER_SERVER_HANDLERS_METRICS_H

#include <stddef.h>

#include "server/core/conf.h"
#include "server/core/request.h"
#include "server/core/stats.h"
#include "server/handlers/upstream.h"

/* Room for a server's label. */
#define PT_METRICS_LABEL_MAX 256

/* Answers `req` (GET or HEAD; else 405) with the metrics of its virtual host's server. */
void pt_metrics_handle(pt_request *req);

/* The label of the server `cs` in the metrics and on the status page: its first server_name as
 * written, or, for a server without one, its first listen ("*:8080", "127.0.0.1:80",
 * "[::1]:8080"). Written into `buf` (`cap` bytes, cut if longer), which is returned. */
const char *pt_metrics_server_label(const pt_conf_server *cs, char *buf, size_t cap);

/* Registers on `b` every server of every upstream the proxy locations of `conf` use (from
 * `u`, which made them while the virtual hosts were set up), keyed by the name the proxy's
 * attempts give ($upstream_addr): responses and response times are then counted from those.
 * The upstream side registers itself (pt_stats_board_add_upstream) to report the rest.
 * Returns 0 or -ENOMEM. */
int pt_metrics_add_upstreams(pt_stats_board *b, pt_upstreams *u, const pt_conf *conf);

#endif
