/*
 * obs-fold detection for llhttp's header callbacks, shared by the request parser (dispatch.c)
 * and the upstream response parser (proxy.c).
 *
 * llhttp accepts a header line that starts with a space or tab as the continuation of the one
 * before (obs-fold) and reports it as one more piece of the value, with nothing to tell it from
 * a value that merely arrived in two reads. RFC 9112 section 5.2 says a server must reject it
 * (or replace it by a space); porter rejects it, because a proxy that passes the line break on
 * lets the next server read a second message. A folded piece is known by what precedes it:
 * back over spaces and tabs, a line feed. The bytes before the data given to the current
 * llhttp_execute() may be gone (a body's are consumed), so the caller keeps the last byte that
 * is not a space or tab of what it fed so far (pt_h1_tail) and passes it in.
 */
#ifndef PORTER_SERVER_HTTP1_FOLD_H
#define PORTER_SERVER_HTTP1_FOLD_H

#include <stdbool.h>
#include <stddef.h>

/* Whether the value piece at `at`, `len` bytes (within the data starting at `begin` given to
 * this llhttp_execute call), follows a line break: obs-fold. `tail` is pt_h1_tail() of what was
 * fed before `begin`. An empty piece is not one: llhttp reports an empty value at the start of
 * the next line, and a fold that adds nothing adds no line break either. */
static inline bool pt_h1_folded(const char *begin, const char *at, size_t len, char tail)
{
    if (len == 0)
        return false;
    while (at > begin && (at[-1] == ' ' || at[-1] == '\t'))
        at--;
    return (at > begin ? at[-1] : tail) == '\n';
}

/* The last byte of [begin, end) that is not a space or tab; `tail` if there is none. */
static inline char pt_h1_tail(const char *begin, const char *end, char tail)
{
    while (end > begin && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end > begin ? end[-1] : tail;
}

#endif
