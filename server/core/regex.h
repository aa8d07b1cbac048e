/*
 * Regular expressions: PCRE2 (Perl syntax, as nginx's), compiled once when the conf is loaded,
 * with JIT where the platform has it, matched with a bound on the work one match may do.
 *
 * What a match finds is kept as captures: the numbered groups ($1..$9 in the conf's texts) and
 * the named ones ((?<name>...), $name), offsets into a subject the caller keeps alive.
 *
 * A pattern that backtracks without end stops at the match limit (pt_regex_set_limit, the
 * conf's regex_match_limit) and the match reports -E2BIG: the caller answers 500 and logs it,
 * never a hung worker.
 *
 * Ownership: a pt_regex is its creator's (pt_regex_free). Threading: one pt_regex matches on one
 * thread at a time (its match data is its own): the server that owns it runs on one loop.
 */
#ifndef PORTER_SERVER_CORE_REGEX_H
#define PORTER_SERVER_CORE_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/str.h"

typedef struct pt_regex pt_regex;

/* At most this many groups are kept from a match ($0..$9 and named ones up to it). */
#define PT_REGEX_CAPTURES 32

/* The bound on one match's work a pattern starts with (PCRE2's own default match limit): the
 * default of regex_match_limit. */
#define PT_REGEX_MATCH_LIMIT 10000000

/* What a match found: group k is subject[ov[2k], ov[2k+1]) (both ~0 when it did not take
 * part); n groups, the whole match first. */
typedef struct pt_captures {
    const char *subject;
    const pt_regex *re; /* for named groups */
    uint32_t n;
    uint32_t ov[2 * PT_REGEX_CAPTURES];
} pt_captures;

/* Compiles `pattern` (ignoring case with `icase`). NULL on error, with "<reason> at offset N"
 * (N: where in the pattern) in `err`. */
pt_regex *pt_regex_new(const char *pattern, bool icase, char *err, size_t errlen);
void pt_regex_free(pt_regex *re);

/* The pattern as written, and whether it ignores case (to compile a copy). */
const char *pt_regex_pattern(const pt_regex *re);
bool pt_regex_icase(const pt_regex *re);

/* The bound on one match's work (PCRE2's match limit, at least 1); PT_REGEX_MATCH_LIMIT until
 * set. NULL: a no-op. */
void pt_regex_set_limit(pt_regex *re, uint32_t limit);

/* Matches `re` against subject[0, len). 1 when it matches (the groups into `caps` if not NULL),
 * 0 when it does not, -E2BIG at the match limit, -EINVAL on another error. */
int pt_regex_match(const pt_regex *re, const char *subject, size_t len, pt_captures *caps);

/* The number of capturing groups in the pattern. */
unsigned pt_regex_groups(const pt_regex *re);

/* The group number of the named group `name`, or -1. */
int pt_regex_group_named(const pt_regex *re, pt_str name);

/* Calls `each` for every named group of `re`, with its name. */
void pt_regex_each_name(const pt_regex *re, void (*each)(void *ctx, const char *name), void *ctx);

/* Group `k` of `caps` (empty when it did not take part or k is out of range). */
pt_str pt_captures_group(const pt_captures *caps, unsigned k);

/* The named group `name` of `caps`; `found` says whether the pattern has such a group. */
pt_str pt_captures_named(const pt_captures *caps, pt_str name, bool *found);

#endif
