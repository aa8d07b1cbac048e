/*
 * Media types: the Content-Type of a static file, from its extension.
 *
 * A table read once at start-up from the system's mime.types (Debian's media-types package),
 * over a built-in table of the common web types, under the configuration's `types {}` entries
 * (pt_mime_add). The types are returned bare ("text/html"): whether a text type gets
 * "; charset=utf-8" is the caller's decision (a configured charset), not the table's.
 *
 * Ownership: pt_mime_new() returns a table the caller frees with pt_mime_free(). Strings passed
 * in are copied. A string returned by pt_mime_lookup() belongs to the table and stays valid
 * until pt_mime_free() (later pt_mime_add / pt_mime_set_default calls do not invalidate it).
 *
 * Threading: build the table on one thread (new, add, set_default); once built, lookups may run
 * on any number of threads at once, since they only read.
 *
 * Errors: a negative errno: -ENOMEM, or -EINVAL for a malformed type or extension. A missing
 * or unreadable system file is not an error: the built-in table is used and reported.
 */
#ifndef PORTER_SERVER_CORE_MIME_H
#define PORTER_SERVER_CORE_MIME_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pt_mime pt_mime;

/* Creates a table: the built-in web types first, then the entries of `path` (NULL: the system
 * file, /etc/mime.types), so the file overrides the built-in table; within the file a later
 * line overrides an earlier one. The file has one type per line followed by its extensions,
 * separated by blanks ("text/html  html htm"); '#' starts a comment; a line whose first word
 * has no '/' is skipped, and so is an extension holding a '.' ("tar.gz"), which a lookup,
 * using only the text after the last '.', could never find.
 *
 * If the file cannot be opened or read, the table holds the built-in entries only and
 * `*used_fallback` is set to true (false otherwise; `used_fallback` may be NULL). Returns 0
 * and the table in `*out`, or -ENOMEM (then `*out` is NULL). */
int pt_mime_new(pt_mime **out, const char *path, bool *used_fallback);

/* Maps the extension `ext` (case-insensitive, one leading '.' allowed: "html" or ".html") to
 * `type`, replacing what it mapped to before (the configuration's `types {}` overlay). `type`
 * must contain a '/' and no control byte ("text/html; charset=utf-8" is allowed); `ext` must
 * be non-empty with no '.', '/', blank or control byte. Both are copied. Returns 0, -EINVAL,
 * or -ENOMEM. */
int pt_mime_add(pt_mime *m, const char *type, const char *ext);

/* Sets the type returned for a name with no known extension ("application/octet-stream" until
 * set). `type` is copied and checked as in pt_mime_add(). Returns 0, -EINVAL or -ENOMEM. */
int pt_mime_set_default(pt_mime *m, const char *type);

/* Returns the type of the file `name` (`len` bytes, a name or a path; need not be
 * NUL-terminated): the extension is what follows the last '.' of the last '/'-separated
 * segment, compared case-insensitively. A segment's leading dots do not start an extension
 * (".bashrc" has none), nor does a final '.'. Without a known extension, the default type.
 * Never NULL; `m` NULL gives "application/octet-stream". A hash table: the cost grows with
 * the name's length, not with the table's size. */
const char *pt_mime_lookup(const pt_mime *m, const char *name, size_t len);

/* Frees the table and every string it returned. NULL: no-op. */
void pt_mime_free(pt_mime *m);

#endif
