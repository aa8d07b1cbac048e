/*
 * fuzz_request: bytes from a client to porter's HTTP/1 dispatcher (harness.h): pipelined
 * requests, bodies sized and chunked, to static files, proxy locations and embedded handlers.
 *
 * The input is what the client sends, in two writes (its halves). Checked: no crash (ASan,
 * UBSan), nothing left of the connection once its client and upstream are gone (the harness),
 * every request porter forwarded well-formed, every answer well-formed and framed as its
 * request wants (check.h), and no more answers than requests.
 */
#include "tests/fuzz/check.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/harness.h"

static fuzz_method methods[FUZZ_MAX_REQUESTS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_harness_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_exchange x = {.client = data, .client_len = size, .client_split = size / 2};
    size_t len;
    bool complete;
    const char *out = fuzz_harness_run(&x, &len, &complete);
    if (!complete)
        return 0;
    size_t n = fuzz_request_methods(data, size, methods, FUZZ_MAX_REQUESTS);
    size_t known = n < FUZZ_MAX_REQUESTS ? n : FUZZ_MAX_REQUESTS;
    size_t answers = fuzz_check_responses(out, len, methods, known, false);
    /* One answer per request, and one for bytes that never made a request porter could read. */
    FUZZ_CHECK(answers <= n + 1, "%zu answers to %zu requests", answers, n);
    return 0;
}
