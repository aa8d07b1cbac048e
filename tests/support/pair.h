/*
 * A connection over the pair transport (Racket's input and output ports): two pipes stand
 * between a connection manager and the test, which plays the client. No socket, no address:
 * what the connection reads is what the test wrote, byte for byte, and what it writes waits in a
 * pipe for the test to read.
 *
 * Include after cmocka and tests/support.h. The manager is the test's; the client's two ends
 * are its own to close (pair_client_close, idempotent), the connection's two ends go with the
 * connection. A pipe whose reader is gone raises SIGPIPE on write, which the pair transport
 * blocks; the test's own writes do the same only with SIGPIPE ignored (pair_connect sets it).
 */
#ifndef PORTER_TESTS_SUPPORT_PAIR_H
#define PORTER_TESTS_SUPPORT_PAIR_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "connmgr/connmgr.h"

/* The client's side of a pair connection. */
typedef struct pair_client {
    int to_conn;   /* write end of the pipe the connection reads; -1: closed */
    int from_conn; /* read end of the pipe the connection writes; -1: closed */
    bool eof;      /* pair_recv saw the connection's write side closed */
} pair_client;

/* Makes the two pipes, both non-blocking, writes `first` (NULL: nothing) into the one the
 * connection reads, and has `m` admit a connection over them: it reads `first` as it is made,
 * with no loop iteration (and no timer) in between. Returns the connection (NULL if it was
 * refused or already finished by its first read, as pt_connmgr_admit_pair says); `p` is the
 * client either way. */
static inline pt_conn *pair_connect_sending(pt_connmgr *m, pair_client *p, const char *first)
{
    int in[2], out[2];
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(pipe2(in, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_NONBLOCK | O_CLOEXEC), 0);
    p->to_conn = in[1];
    p->from_conn = out[0];
    p->eof = false;
    if (first)
        assert_int_equal(write(p->to_conn, first, strlen(first)), (ssize_t)strlen(first));
    return pt_connmgr_admit_pair(m, in[0], out[1]);
}

/* The same with nothing sent first. */
static inline pt_conn *pair_connect(pt_connmgr *m, pair_client *p)
{
    return pair_connect_sending(m, p, NULL);
}

/* Writes `len` bytes of `data` for the connection to read (all of it: a pipe takes 64 KiB). */
static inline void pair_send_n(pair_client *p, const void *data, size_t len)
{
    assert_true(p->to_conn >= 0);
    assert_int_equal(write(p->to_conn, data, len), (ssize_t)len);
}

/* Writes the NUL-terminated `text`. */
static inline void pair_send(pair_client *p, const char *text)
{
    pair_send_n(p, text, strlen(text));
}

/* Ends the client's input to the connection (the connection reads end of stream). */
static inline void pair_shut(pair_client *p)
{
    if (p->to_conn >= 0)
        close(p->to_conn);
    p->to_conn = -1;
}

/* Appends what the connection has written so far (without waiting) to `buf`, which holds `*len`
 * bytes of `cap`, and keeps it NUL-terminated; sets p->eof once the connection's write side is
 * closed and everything before it read. Returns the bytes added. */
static inline size_t pair_recv(pair_client *p, char *buf, size_t *len, size_t cap)
{
    size_t added = 0;
    assert_true(p->from_conn >= 0 && cap > 0);
    while (*len + 1 < cap) {
        ssize_t n = read(p->from_conn, buf + *len, cap - 1 - *len);
        if (n == 0)
            p->eof = true;
        if (n < 0)
            assert_int_equal(errno, EAGAIN);
        if (n <= 0)
            break;
        *len += (size_t)n;
        added += (size_t)n;
    }
    buf[*len] = '\0';
    return added;
}

/* Closes what is left of the client's two ends. */
static inline void pair_client_close(pair_client *p)
{
    pair_shut(p);
    if (p->from_conn >= 0)
        close(p->from_conn);
    p->from_conn = -1;
}

#endif
