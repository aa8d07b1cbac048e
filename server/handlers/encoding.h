/*
 * Content codings for precompressed files: which of FILE.br, FILE.zst, FILE.gz a client
 * takes, read from its Accept-Encoding (RFC 9110 section 12.5.3).
 *
 * Ownership: nothing is kept; the input is borrowed for the call. Threading: no state.
 */
#ifndef PORTER_SERVER_HANDLERS_ENCODING_H
#define PORTER_SERVER_HANDLERS_ENCODING_H

#include <stddef.h>

#include "server/core/request.h"

typedef enum pt_encoding {
    PT_ENC_IDENTITY, /* the file itself */
    PT_ENC_BR,
    PT_ENC_ZSTD,
    PT_ENC_GZIP,
    PT_ENC_COUNT
} pt_encoding;

/* Writes to `out` the codings (never identity) that `accept_encoding` allows, best first:
 * higher q-value first, ties in porter's order br, zstd, gzip. A coding is allowed when its
 * q-value (or that of "*" when it is not named) is above 0 and not below an explicit
 * "identity" q-value. "x-gzip" is gzip. Returns how many were written (at most 3). */
size_t pt_encoding_choose(pt_str accept_encoding, pt_encoding out[PT_ENC_COUNT - 1]);

/* The Content-Encoding token ("br"), or NULL for identity. */
const char *pt_encoding_name(pt_encoding e);

/* The file-name suffix (".br"), or "" for identity. */
const char *pt_encoding_suffix(pt_encoding e);

#endif
