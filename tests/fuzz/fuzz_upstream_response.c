/*
 * fuzz_upstream_response: bytes as an upstream's answer to porter's reverse proxy
 * (harness.h).
 *
 * The input's first line names the request the client makes through the proxy (GET, HEAD,
 * POST with a sized body, CHUNKED: a POST with a chunked body, UPGRADE: a WebSocket handshake,
 * HTTP10: an HTTP/1.0 GET; anything else is GET); the rest is what the upstream answers it, in
 * two writes (its halves), and answers whole to every later request. A second request follows
 * the first on the same connection (through the other virtual host), to meet a pooled upstream
 * connection or the end of the first. Checked: no crash, nothing left once client and upstream
 * are gone, every request porter forwarded well-formed, and every answer the client got
 * well-formed and framed, though the last may end early when the upstream's did.
 */
#include <string.h>

#include "tests/fuzz/check.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/harness.h"

typedef struct request {
    const char *name; /* the input's first line */
    const char *text;
    fuzz_method method;
    bool then_more; /* the second request follows (not after an upgrade, nor in HTTP/1.0) */
} request;

#define SECOND "GET /app/second HTTP/1.1\r\nHost: other.test\r\n\r\n"

static const request requests[] = {
    {"GET", "GET /proxy/a?b=c HTTP/1.1\r\nHost: fuzz.test\r\n\r\n", FUZZ_METHOD_OTHER, true},
    {"HEAD", "HEAD /proxy/a HTTP/1.1\r\nHost: fuzz.test\r\n\r\n", FUZZ_METHOD_HEAD, true},
    {"POST",
     "POST /proxy/form HTTP/1.1\r\nHost: fuzz.test\r\nContent-Length: 11\r\n\r\nhello world",
     FUZZ_METHOD_OTHER, true},
    {"CHUNKED",
     "POST /raw/up HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
     FUZZ_METHOD_OTHER, true},
    {"UPGRADE",
     "GET /proxy/ws HTTP/1.1\r\nHost: fuzz.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
     FUZZ_METHOD_OTHER, false},
    {"HTTP10", "GET /proxy/old HTTP/1.0\r\n\r\n", FUZZ_METHOD_OTHER, false},
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_harness_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - data) : 0;
    const request *rq = &requests[0];
    for (size_t i = 0; nl && i < sizeof requests / sizeof *requests; i++)
        if (strlen(requests[i].name) == line && memcmp(requests[i].name, data, line) == 0)
            rq = &requests[i];
    const uint8_t *answer = nl ? nl + 1 : data;
    size_t answer_len = size - (size_t)(answer - data);

    char client[512];
    size_t first = strlen(rq->text);
    memcpy(client, rq->text, first);
    size_t client_len = first;
    if (rq->then_more) {
        memcpy(client + first, SECOND, sizeof SECOND - 1);
        client_len += sizeof SECOND - 1;
    }
    fuzz_exchange x = {.client = (const uint8_t *)client,
                       .client_len = client_len,
                       .client_split = first,
                       .upstream = answer,
                       .upstream_len = answer_len,
                       .upstream_split = answer_len / 2};
    size_t len;
    bool complete;
    const char *out = fuzz_harness_run(&x, &len, &complete);
    if (!complete)
        return 0;
    fuzz_method methods[2] = {rq->method, FUZZ_METHOD_OTHER};
    size_t answers = fuzz_check_responses(out, len, methods, rq->then_more ? 2 : 1, true);
    FUZZ_CHECK(answers <= (rq->then_more ? 2u : 1u), "%zu answers to %d requests", answers,
               rq->then_more ? 2 : 1);
    return 0;
}
