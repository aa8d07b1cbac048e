/*
 * Range requests (RFC 9110 section 14): parsing a Range header against a representation's
 * length, and the multipart/byteranges framing of several ranges.
 *
 * Policy: a header that is not "bytes=..." or does not parse is ignored (the full
 * representation is sent, as the RFC says for an invalid ranges-specifier); so is one with
 * more than `max` ranges, or whose satisfiable ranges add up to more than the representation
 * (overlapping ranges used to multiply the work). Unsatisfiable ranges among satisfiable ones
 * are dropped; when none is satisfiable the answer is 416.
 *
 * Ownership: nothing is kept; inputs are borrowed, outputs go to the caller's memory.
 * Threading: pt_range_boundary() keeps a per-thread counter; the rest has no state.
 */
#ifndef PORTER_SERVER_HANDLERS_RANGE_H
#define PORTER_SERVER_HANDLERS_RANGE_H

#include <stddef.h>
#include <stdint.h>

#include "server/core/request.h"

/* One satisfiable range, both ends included and within the representation. */
typedef struct pt_range {
    uint64_t first, last;
} pt_range;

enum {
    PT_RANGE_IGNORE = 0,         /* send the whole representation (200) */
    PT_RANGE_UNSATISFIABLE = -1, /* 416 with "Content-Range: bytes * / LEN" */
};

/* Parses the Range `value` for a representation of `size` bytes, allowing at most `max`
 * ranges (1 <= max). Stores the satisfiable ranges, in the order asked, in `out` (room for
 * `max`). Returns their number (> 0), PT_RANGE_IGNORE or PT_RANGE_UNSATISFIABLE. */
int pt_range_parse(pt_str value, uint64_t size, size_t max, pt_range *out);

/* Writes a fresh multipart boundary (PT_RANGE_BOUNDARY_LEN characters and a NUL) to `buf`. */
#define PT_RANGE_BOUNDARY_LEN 20
void pt_range_boundary(char buf[PT_RANGE_BOUNDARY_LEN + 1]);

/* Formats the lines that open part `r` of a multipart/byteranges body:
 * "\r\n--BOUNDARY\r\nContent-Type: TYPE\r\nContent-Range: bytes F-L/SIZE\r\n\r\n".
 * Returns the length it needs; writes it only if it fits `cap`. */
size_t pt_range_part_head(char *buf, size_t cap, const char *boundary, const char *type, pt_range r,
                          uint64_t size);

/* Formats the closing "\r\n--BOUNDARY--\r\n"; the same contract. */
size_t pt_range_part_tail(char *buf, size_t cap, const char *boundary);

/* The length of a multipart/byteranges body of `n` ranges. */
uint64_t pt_range_multipart_length(const pt_range *r, size_t n, const char *boundary,
                                   const char *type, uint64_t size);

#endif
