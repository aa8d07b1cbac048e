/*
 * map's lookup (docs/rewrite.md): which entry of a `map` block a value selects, in nginx's
 * order: an exact key (ignoring case), the longest leading wildcard ("*.example.com",
 * ".example.com"), the longest trailing wildcard ("mail.*"), the first regex that matches in
 * the order written. The wildcards are only a `hostnames` map's. What the request does with
 * the entry (its value, kept for the request) is server/core/vars.c's.
 *
 * The map is the conf's (server/core/conf.h; server/conf/map.c builds it: exact keys sorted,
 * wildcards longest first). Threading: a map's regexes match on one thread at a time.
 */
#ifndef PORTER_SERVER_CORE_MAP_H
#define PORTER_SERVER_CORE_MAP_H

#include "server/core/conf.h"
#include "server/core/regex.h"
#include "server/core/str.h"

/* The entry of `m` that `value` selects, or NULL (the default answers). For a regex entry the
 * match's groups go to `caps` (their subject `value`). A regex that hits its match limit stops
 * the lookup: NULL, and *limit_hit set (the caller answers 500). */
const pt_conf_map_entry *pt_map_find(const pt_conf_map *m, pt_str value, pt_captures *caps,
                                     bool *limit_hit);

/* Compares `value` (ignoring case) with the lower-case `key`: <0, 0, >0 as strcmp, the order
 * the exact keys are sorted in. */
int pt_map_key_cmp(pt_str value, const char *key);

/* Whether the lower-case hostname wildcard `key` ("*.example.com", ".example.com", "mail.*")
 * matches `value`, ignoring case. */
bool pt_map_wildcard_matches(const char *key, pt_str value);

#endif
