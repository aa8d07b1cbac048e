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

struct pt_conf_vars; /* server/core/conf.h */

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
    PT_VAR_ARG_,           /* $arg_NAME: the argument NAME of the query (its first), as sent */
    PT_VAR_COOKIE_,        /* $cookie_NAME: the cookie NAME of the Cookie header lines */
    PT_VAR_IS_ARGS,        /* "?" when the request has a query, else empty */
    PT_VAR_CAPTURE,        /* $0..$9: a group of the last regex that matched (req->captures) */
    PT_VAR_LIMIT_RATE,     /* the response's send rate, bytes per second (0: none) */
    PT_VAR_PROXY_HOST,     /* the proxy's: the upstream's host[:port] */
    PT_VAR_PROXY_ADD_X_FORWARDED_FOR, /* the proxy's: X-Forwarded-For and the client */
    PT_VAR_BINARY_REMOTE_ADDR,        /* the client's address in bytes: 4 (IPv4, also mapped in
                                         IPv6) or 16; empty for a client without one */
    PT_VAR_SERVER_NAME,               /* the server's first plain server_name */
    /* What a request's log line tells (access logs: PT_VARS_LOG), once its response is done. */
    PT_VAR_STATUS,                     /* the response's status */
    PT_VAR_REQUEST,                    /* the request line: "GET /a?b HTTP/1.1" */
    PT_VAR_SERVER_PROTOCOL,            /* "HTTP/1.1", "HTTP/2.0" */
    PT_VAR_REMOTE_USER,                /* the user auth_basic accepted; empty: none */
    PT_VAR_TIME_LOCAL,                 /* 28/Sep/1970:12:00:00 +0600, local time */
    PT_VAR_TIME_ISO8601,               /* 1970-09-28T12:00:00+06:00, local time */
    PT_VAR_MSEC,                       /* seconds since the epoch, with milliseconds */
    PT_VAR_REQUEST_TIME,               /* seconds from the first byte to the log line, ms */
    PT_VAR_BYTES_SENT,                 /* response bytes: head and body */
    PT_VAR_BODY_BYTES_SENT,            /* response body bytes */
    PT_VAR_REQUEST_LENGTH,             /* request line, header and body bytes */
    PT_VAR_CONNECTION,                 /* the connection's serial number */
    PT_VAR_CONNECTION_REQUESTS,        /* requests on the connection so far, this one included */
    PT_VAR_PIPE,                       /* "p" for a pipelined request, else "." */
    PT_VAR_HTTP2,                      /* "h2" (over TLS), "h2c", or empty */
    PT_VAR_SSL_PROTOCOL,               /* "TLSv1.3", or empty */
    PT_VAR_SSL_CIPHER,                 /* "TLS_AES_256_GCM_SHA384", or empty */
    PT_VAR_UPSTREAM_ADDR,              /* each proxied attempt's server, ", " between */
    PT_VAR_UPSTREAM_STATUS,            /* each attempt's status (502 or 504 without an answer) */
    PT_VAR_UPSTREAM_RESPONSE_TIME,     /* each attempt's seconds, ms */
    PT_VAR_REALIP_REMOTE_ADDR,         /* the connection's own peer, whatever realip says */
    PT_VAR_REALIP_REMOTE_PORT,         /* and its port */
    PT_VAR_PROXY_PROTOCOL_ADDR,        /* the client the PROXY header named; empty: none */
    PT_VAR_PROXY_PROTOCOL_PORT,        /* its port */
    PT_VAR_PROXY_PROTOCOL_SERVER_ADDR, /* the address it reached, from the header */
    PT_VAR_PROXY_PROTOCOL_SERVER_PORT, /* and its port */
    PT_VAR_DOCUMENT_ROOT,              /* the location's root or alias directory (req->file_root) */
    PT_VAR_REALPATH_ROOT,    /* the same with every symbolic link resolved; empty if it is gone */
    PT_VAR_REQUEST_FILENAME, /* the file of $uri: root + $uri, or alias + what follows the
                                path the alias replaces */
    PT_VAR_USER,    /* the conf's own (`set`, `map`): pt_var_ref.index is its id */
    PT_VAR_UNKNOWN, /* no variable of porter's: the conf's own by its name, or a named group of
                       the last regex that matched, when the conf let it through */
} pt_var_id;

/* Who expands a text: each allows its own set of variables. */
typedef enum pt_var_user {
    PT_VARS_RETURN,    /* `return` */
    PT_VARS_PROXY,     /* proxy_set_header */
    PT_VARS_TRY_FILES, /* try_files (and what names a file the same way) */
    PT_VARS_ZONE_KEY,  /* the key of limit_req_zone and limit_conn_zone */
    PT_VARS_LOG,       /* log_format and access_log's if=: every variable */
    PT_VARS_SCRIPT,    /* set's values, map's sources and values, if's conditions: every
                          variable but the proxy's own */
} pt_var_user;

/* A variable reference as written. */
typedef struct pt_var_ref {
    pt_var_id id;
    pt_str name;    /* without '$' and braces */
    size_t len;     /* bytes of the reference, '$' and braces included */
    bool malformed; /* an empty name, or "${name" without its '}' */
    size_t index;   /* PT_VAR_USER: the variable's id (pt_var_resolve) */
} pt_var_ref;

/* Reads the reference at `p` (which points at '$'). */
pt_var_ref pt_var_parse(const char *p);

/* Whether `user` expands variable `id` (the conf's own: every user). */
bool pt_var_allowed(pt_var_user user, pt_var_id id);

/* ---- the conf's own variables: `set` and `map` (server/core/conf.h's pt_conf_vars) ----
 *
 * A request reads them through req->vars (its server's conf's, given with its virtual host);
 * their values are slots in its arena, made the first time one is read or set: a conf without
 * such variables costs a request nothing. A map is computed the first time the request reads
 * its variable and kept (not a `volatile` one); a map that reads itself, through others or
 * not, reads empty there. A map's regex that hits its match limit is logged, reads empty and
 * sets req->vars_failed, on which the router answers 500. */

/* The id of the conf's own variable `name` in `vars` (may be NULL), or -1. */
long pt_var_find(const struct pt_conf_vars *vars, pt_str name);

/* Makes `ref` a PT_VAR_USER reference with its id when `vars` has its name (an unknown one);
 * any other stays as it is. */
void pt_var_resolve(const struct pt_conf_vars *vars, pt_var_ref *ref);

/* `set`: the conf's own variable `id` takes `text` expanded for `req` (copied into its arena).
 * Returns 0 or -ENOMEM. */
int pt_var_set(pt_request *req, size_t id, const char *text);

/* Expands `text` for `req` into its arena, NUL-terminated, as it is (no percent-encoding).
 * {NULL, 0} when it does not fit. */
pt_str pt_vars_expand_arena(pt_request *req, const char *text);

/* Receives one piece of an expanded text: literal bytes (PT_VAR_TEXT), or the value of the
 * variable `ref` (for a variable the expander cannot know, the caller's own, empty). */
typedef void (*pt_var_put)(void *ctx, const pt_var_ref *ref, const char *p, size_t n);

/* Expands `text` for `req` through `put`. */
void pt_vars_expand(const pt_request *req, const char *text, pt_var_put put, void *ctx);

/* The value of a request variable (never of PT_VAR_TEXT or the caller's own: those are empty),
 * formatted into `buf` (`cap` bytes, 64 at least) where it must be made; a value longer than
 * `cap` made there ($request, the upstream lists, a file's name: give PATH_MAX for those) is
 * cut short. */
pt_str pt_var_value(const pt_request *req, const pt_var_ref *ref, char *buf, size_t cap);

/* The client's address without its port ("192.0.2.1", "2001:db8::1", "unix") into `buf`
 * (INET6_ADDRSTRLEN bytes at least); returns its length. */
size_t pt_var_remote_addr(const pt_request *req, char *buf, size_t cap);

/* The same for any address `sa` (NULL or not IP: "unix"). */
size_t pt_var_addr(const struct sockaddr *sa, char *buf, size_t cap);

#endif
