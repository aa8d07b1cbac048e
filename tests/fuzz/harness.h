/*
 * The harness of the HTTP fuzz targets: one porter server for the whole run and one client
 * connection per input, all in this process on one libev loop, with no network.
 *
 * The server is made from a conf written to a temporary directory (removed at exit): two
 * virtual hosts on one address, static files (cached small ones, sendfile'd larger ones, a
 * listing, precompressed files, try_files, error_page, redirects, a regex location, the status
 * page), proxy locations whose upstream is a unix socket the harness itself serves on the same
 * loop, and embedded handlers that answer later, read the body and stream their answer. The
 * client connection runs over a pair of pipes (pt_connmgr_admit_pair), the HTTP dispatcher
 * exactly as a socket gets it.
 *
 * An exchange feeds the client's bytes in two writes, lets porter do all it can after each
 * (the loop runs until an iteration finds nothing to do: every step is deterministic, no
 * timer is waited for), then the upstream's last bytes, then closes the upstream connections,
 * then the client's input, and expects the connection to be gone. It then checks that porter
 * released everything the exchange made: custodians, buffer chunks, timers and descriptors
 * back to their counts before it. On the upstream side every request porter forwards is parsed
 * (llhttp, strictly) and must be well-formed.
 */
#ifndef PORTER_TESTS_FUZZ_HARNESS_H
#define PORTER_TESTS_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One exchange. */
typedef struct fuzz_exchange {
    const uint8_t *client; /* what the client sends: [0, client_split), then the rest */
    size_t client_len, client_split;
    /* What the upstream answers each request the proxy forwards (the first one in two writes:
     * [0, upstream_split), then the rest once porter has done what it can with the first).
     * NULL: a fixed well-formed answer, without its body to HEAD. */
    const uint8_t *upstream;
    size_t upstream_len, upstream_split;
} fuzz_exchange;

/* Builds the server and its upstream. Aborts if it cannot. */
void fuzz_harness_init(void);

/* The same, with `http2`: the address offers HTTP/2 by prior knowledge (`listen ... http2`),
 * so a client that starts with the connection preface speaks HTTP/2 (server.c's dispatch). */
void fuzz_harness_init_with(bool http2);

/* Runs `x` and checks that everything it made was released. Returns the bytes porter wrote to
 * the client (valid until the next call) and their number in *len; *complete is false when
 * there were too many to keep. */
const char *fuzz_harness_run(const fuzz_exchange *x, size_t *len, bool *complete);

/* Requests the upstream received (and answered) in the last exchange. */
size_t fuzz_harness_upstream_requests(void);

#endif
