/*
 * Compression on the fly (docs/compression.md): a step between the handler and the protocol
 * that answers a request with its response's body compressed in the coding the client prefers
 * (gzip, brotli or zstd, server/core/coder.h), whatever answered it (static files, the proxy,
 * the embedder's handlers) and whatever protocol carries it.
 *
 * pt_request_respond() hands every response of a request whose location (or server, for the
 * embedder's routes) has a coding on to pt_compress_respond(): the site sets it as the
 * request's respond_via with the settings (req->compress). It decides from the response
 * (status, type, length, Content-Encoding, Cache-Control: no-transform) whether the answer
 * could be compressed: if so it carries `Vary: Accept-Encoding`, and from the request
 * (Accept-Encoding, Range, HEAD, the HTTP version, User-Agent, Via) whether this one is.
 * A compressed answer loses Content-Length unless its compressed length is known, its ETag
 * becomes weak and its Accept-Ranges goes. Its body:
 *   - from memory: compressed at once, sent with its length;
 *   - a file: read and compressed piece by piece as the client takes it (the protocol's
 *     writable callback), so one large download holds one coder and one read buffer;
 *   - streamed by the handler: each pt_response_write() compressed and flushed, so a proxied
 *     stream of events arrives event by event; the back-pressure is the protocol's.
 * A body that may be sent again (a file the file cache knows) is looked up in, and then
 * given to, its variant store (pt_variant_store), so a hot file is compressed once.
 *
 * While a compressed body is on its way the request's protocol is this layer's
 * (req->proto), which passes everything but the body on to the protocol's own.
 *
 * Ownership: what a compressed answer needs (coder, file, buffers) is the request's: its
 * custodian releases it however the request ends. Threading: the loop's thread.
 */
#ifndef PORTER_SERVER_CORE_COMPRESS_H
#define PORTER_SERVER_CORE_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/core/request.h"

/* Which body a compressed copy is of: the file (device, inode, size, modification time in
 * nanoseconds), the coding and the level. */
typedef struct pt_variant_key {
    dev_t dev;
    ino_t ino;
    uint64_t size;
    int64_t mtime_ns;
    int encoding; /* pt_encoding */
    int level;
} pt_variant_key;

/* Where compressed copies of bodies are kept between requests (the file cache has one). */
typedef struct pt_variant_store pt_variant_store;
struct pt_variant_store {
    /* The copy kept for `key`, or NULL: its bytes, *len, and *holder, which hold() keeps
     * until release(). Without a hold the bytes are valid until the next call on the store. */
    const void *(*get)(pt_variant_store *s, const pt_variant_key *key, size_t *len, void **holder);
    void (*hold)(const void *holder);
    void (*release)(void *holder);
    /* Whether a copy of a body of `size` bytes (uncompressed) would be kept. */
    bool (*wants)(pt_variant_store *s, uint64_t size);
    /* Keeps a copy of `len` bytes at `buf` (copied) for `key`, if it has room. */
    void (*put)(pt_variant_store *s, const pt_variant_key *key, const void *buf, size_t len);
};

/* Answers `req` with `r` (see pt_request_respond), compressed when it may and should be.
 * req->compress is set. Returns 0 or a negative errno. */
int pt_compress_respond(pt_request *req, const pt_response *r);

#endif
