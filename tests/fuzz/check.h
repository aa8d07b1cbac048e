/*
 * What a client of porter can rely on, checked on the bytes porter wrote back on one
 * connection: a sequence of well-formed HTTP/1.1 responses (RFC 9110, RFC 9112), in the order of
 * the requests, each framed so that the client finds where it ends.
 *
 * A response is a status line "HTTP/1.1 NNN reason", header fields whose names are tokens and
 * whose values hold no control character but tab, then an empty line; its body has the length
 * its Content-Length says, or is chunked (Transfer-Encoding: chunked, never with a
 * Content-Length), or runs to the end of the connection. 1xx, 204 and 304 answers and answers
 * to HEAD have no body; 1xx and 204 answers have no Content-Length or Transfer-Encoding. After an
 * answer that says "Connection: close" nothing follows. 100 Continue comes before the answer it
 * announces; after 101 the connection speaks another protocol and is not read further.
 */
#ifndef PORTER_TESTS_FUZZ_CHECK_H
#define PORTER_TESTS_FUZZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the checker knows of the request an answer is for: a response to HEAD has no body. */
typedef enum fuzz_method {
    FUZZ_METHOD_UNKNOWN, /* a request the client's side could not parse: either */
    FUZZ_METHOD_HEAD,
    FUZZ_METHOD_OTHER,
} fuzz_method;

/* The most requests whose methods are recorded. */
#define FUZZ_MAX_REQUESTS 1024

/* Parses `len` bytes a client sent, as porter's parser does (llhttp, strictly), and records the
 * method of each request whose head is complete in `out` (up to `max`; the others are
 * FUZZ_METHOD_UNKNOWN). A request that asks to upgrade is taken as refused (the bytes after it
 * are parsed as the next request), as porter must when no handler switches protocols. Returns
 * how many requests began. */
size_t fuzz_request_methods(const uint8_t *data, size_t len, fuzz_method *out, size_t max);

/* Checks `len` bytes of answers to requests with the methods `methods` (`n` of them; answers
 * past those are for requests porter alone could tell, of either kind). `truncated_ok`: the
 * last answer may end early, as porter ends one whose upstream failed halfway: by closing the
 * connection. Aborts with the reason and the bytes when a check fails. Returns the number of
 * final (not 1xx) answers. */
size_t fuzz_check_responses(const char *out, size_t len, const fuzz_method *methods, size_t n,
                            bool truncated_ok);

#endif
