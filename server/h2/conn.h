/*
 * HTTP/2 (h2/conn.c) on libnghttp2: one connection, many streams, each stream a pt_request
 * that the same handlers answer as they answer HTTP/1 requests (docs/http2.md).
 */
#ifndef PORTER_SERVER_H2_CONN_H
#define PORTER_SERVER_H2_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connmgr/conn.h"
#include "server/core/conf.h"
#include "server/core/request.h"

/* What the HTTP/2 connections of a site have done (the status page adds them up). */
typedef struct pt_h2_counters {
    uint64_t connections; /* HTTP/2 connections so far */
    uint64_t live;        /* now */
    uint64_t streams;     /* streams (requests) so far */
    uint64_t resets;      /* RST_STREAM frames received */
    uint64_t floods;      /* connections closed for a flood (GOAWAY ENHANCE_YOUR_CALM) */
    uint64_t errors;      /* connections closed for a protocol error */
} pt_h2_counters;

/* The HTTP/2 connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"). */
#define PT_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PT_H2_PREFACE_LEN 24

/* Whether `len` bytes start a connection preface: 1 they do (all 24 bytes are there), 0 they
 * may (fewer bytes, all matching), -1 they do not. */
int pt_h2_preface_match(const char *p, size_t len);

/* Bytes a connection's HTTP/2 state takes from its custodian (its first arena has room for
 * them on an address that may speak HTTP/2). */
size_t pt_h2_conn_size(void);

/* Makes `c` an HTTP/2 connection: its requests reach the site through `ops` with `site`; `tls`
 * says the connection is encrypted; `settings` (borrowed, outlives the connection) are what it
 * announces and enforces; `counters` (borrowed, likewise; may be NULL) are counted in. Bytes
 * already in c->in (the client's preface) are read at once. Returns 0 or a negative errno (the
 * connection has been killed). */
int pt_h2_conn_attach(pt_conn *c, const pt_site_ops *ops, void *site, bool tls,
                      const pt_h2_settings *settings, pt_h2_counters *counters);

#endif
