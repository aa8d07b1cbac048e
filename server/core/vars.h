/*
 * $variables: the one expander of the conf's texts that name request variables (`return`'s
 * URL or body, proxy_set_header values, try_files candidates), and the one list of what each
 * variable is.
 *
 * A reference is `$name` or `${name}`, the name letters, digits and '_'. The expander hands
 * the text to a caller's `put` in pieces: the literal runs, then each variable with its id and
 * its value. The caller decides how a piece goes out (percent-encoded in a URL, refused if it
 * holds CR or LF in a header) and gives the values that are its own (the proxy's
 * $proxy_host): the request's are computed here.
 *
 * Which variables a directive may name is part of the list (pt_var_allowed), so the conf
 * checker and the expander never disagree.
 *
 * Threading: no state.
 */
#ifndef PORTER_SERVER_CORE_VARS_H
#define PORTER_SERVER_CORE_VARS_H

#include <stdbool.h>
#include <stddef.h>

#include "server/core/request.h"

typedef enum pt_var_id {
    PT_VAR_TEXT,           /* not a variable: literal text */
    PT_VAR_HOST,           /* Host without port and trailing dot, lower case; else server_name */
    PT_VAR_HTTP_HOST,      /* the Host header as sent */
    PT_VAR_REMOTE_ADDR,    /* the client's address, without port */
    PT_VAR_REMOTE_PORT,    /* the client's port */
    PT_VAR_SCHEME,         /* http or https */
    PT_VAR_REQUEST_URI,    /* the target as sent, from its path on */
    PT_VAR_URI,            /* the decoded, normalised path */
    PT_VAR_ARGS,           /* the query, without '?' */
    PT_VAR_QUERY_STRING,   /* the same */
    PT_VAR_SERVER_PORT,    /* the port the request came in on */
    PT_VAR_REQUEST_METHOD, /* the method as sent */
    PT_VAR_HTTP_,          /* $http_NAME: the request header NAME ('_' for '-') */
    PT_VAR_PROXY_HOST,     /* the proxy's: the upstream's host[:port] */
    PT_VAR_PROXY_ADD_X_FORWARDED_FOR,  /* the proxy's: X-Forwarded-For and the client */
    PT_VAR_REALIP_REMOTE_ADDR,         /* the connection's own peer, whatever realip says */
    PT_VAR_REALIP_REMOTE_PORT,         /* and its port */
    PT_VAR_PROXY_PROTOCOL_ADDR,        /* the client the PROXY header named; empty: none */
    PT_VAR_PROXY_PROTOCOL_PORT,        /* its port */
    PT_VAR_PROXY_PROTOCOL_SERVER_ADDR, /* the address it reached, from the header */
    PT_VAR_PROXY_PROTOCOL_SERVER_PORT, /* and its port */
    PT_VAR_UNKNOWN,
} pt_var_id;

/* Who expands a text: each allows its own set of variables. */
typedef enum pt_var_user {
    PT_VARS_RETURN,    /* `return` */
    PT_VARS_PROXY,     /* proxy_set_header */
    PT_VARS_TRY_FILES, /* try_files (and what names a file the same way) */
} pt_var_user;

/* A variable reference as written. */
typedef struct pt_var_ref {
    pt_var_id id;
    pt_str name;    /* without '$' and braces */
    size_t len;     /* bytes of the reference, '$' and braces included */
    bool malformed; /* an empty name, or "${name" without its '}' */
} pt_var_ref;

/* Reads the reference at `p` (which points at '$'). */
pt_var_ref pt_var_parse(const char *p);

/* Whether `user` expands variable `id`. */
bool pt_var_allowed(pt_var_user user, pt_var_id id);

/* Receives one piece of an expanded text: literal bytes (PT_VAR_TEXT), or the value of the
 * variable `ref` (for a variable the expander cannot know, the caller's own, empty). */
typedef void (*pt_var_put)(void *ctx, const pt_var_ref *ref, const char *p, size_t n);

/* Expands `text` for `req` through `put`. */
void pt_vars_expand(const pt_request *req, const char *text, pt_var_put put, void *ctx);

/* The value of a request variable (never of PT_VAR_TEXT or the caller's own: those are empty),
 * formatted into `buf` (`cap` bytes, 64 at least) where it must be made. */
pt_str pt_var_value(const pt_request *req, const pt_var_ref *ref, char *buf, size_t cap);

/* The client's address without its port ("192.0.2.1", "2001:db8::1", "unix") into `buf`
 * (INET6_ADDRSTRLEN bytes at least); returns its length. */
size_t pt_var_remote_addr(const pt_request *req, char *buf, size_t cap);

/* The same for any address `sa` (NULL or not IP: "unix"). */
size_t pt_var_addr(const struct sockaddr *sa, char *buf, size_t cap);

#endif
