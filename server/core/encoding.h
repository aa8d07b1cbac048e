/*
 * Content codings: which of them a client takes, read from its Accept-Encoding (RFC 9110
 * section 12.5.3), for precompressed siblings (FILE.br, FILE.zst, FILE.gz) and for
 * compression on the fly.
 *
 * Ownership: nothing is kept; the input is borrowed for the call. Threading: no state.
 */
#ifndef PORTER_SERVER_CORE_ENCODING_H
#define PORTER_SERVER_CORE_ENCODING_H

#include <stddef.h>

#include "server/core/str.h"

typedef enum pt_encoding {
    PT_ENC_IDENTITY, /* the file itself */
    PT_ENC_BR,
    PT_ENC_ZSTD,
    PT_ENC_GZIP,
    PT_ENC_COUNT
} pt_encoding;

/* The server's order among codings of equal q-value: each of br, zstd and gzip once. */
typedef struct pt_encoding_order {
    pt_encoding e[PT_ENC_COUNT - 1];
} pt_encoding_order;

/* porter's order: zstd, br, gzip (the fastest to decode and the smallest first). */
extern const pt_encoding_order pt_encoding_default_order;

/* Writes to `out` the codings (never identity) that `accept_encoding` allows, best first:
 * higher q-value first, ties in `order` (NULL: porter's). A coding is allowed when its
 * q-value (or that of "*" when it is not named) is above 0 and not below an explicit
 * "identity" q-value. "x-gzip" is gzip. A member whose q-value is malformed is ignored.
 * Returns how many were written (at most 3). */
size_t pt_encoding_choose(pt_str accept_encoding, const pt_encoding_order *order,
                          pt_encoding out[PT_ENC_COUNT - 1]);

/* The coding named `name` (`len` bytes, case-insensitive: "br", "zstd", "gzip"), or
 * PT_ENC_IDENTITY for any other. */
pt_encoding pt_encoding_from_name(const char *name, size_t len);

/* The Content-Encoding token ("br"), or NULL for identity. */
const char *pt_encoding_name(pt_encoding e);

/* The file-name suffix (".br"), or "" for identity. */
const char *pt_encoding_suffix(pt_encoding e);

#endif
