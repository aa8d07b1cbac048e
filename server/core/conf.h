/*
 * The configuration as data: what the conf file (server/conf/) or the embedding API produces and
 * every layer reads. Plain structs, no behaviour.
 *
 * Inheritance: every server starts from the values given at the top level (limits, root,
 * index, logs, sendfile, server_tokens, default_type, types, static-file, proxy_*, ssl_* and
 * compression settings), then applies its own; every location likewise starts from its server's
 * (a nested location from the location holding it). A level that names a list directive
 * (add_header, error_page, proxy_set_header, access_log, ...) replaces the inherited list. The
 * defaults are listed in server/conf/conf.h with the loader.
 *
 * Ownership: a pt_conf owns every string and array reachable from it (pt_conf_free()). `file`
 * members point into pt_conf.files and live as long as the pt_conf. Threading: none; a pt_conf is
 * immutable once loaded and may be read from any thread.
 */
#ifndef PORTER_SERVER_CORE_CONF_H
#define PORTER_SERVER_CORE_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "connmgr/limits.h"
#include "server/core/cidr.h"
#include "server/core/encoding.h"
#include "server/core/log.h"

/* The most bytes of add_header lines (names, values, ": " and CRLF) one level may add to a
 * response head. */
#define PT_CONF_HEADERS_MAX 4096

/* The most ranges `max_ranges` may allow in one request. */
#define PT_CONF_MAX_RANGES 200

/* The port of a server without a `listen` directive. */
#define PT_CONF_DEFAULT_PORT "8080"

/* The default of `listen ... notsent_lowat=`: 16 KiB unsent per connection at most. */
#define PT_CONF_NOTSENT_LOWAT (16 * 1024)

/* Where a directive was written, for messages about what it named (a root that does not exist).
 * `file` NULL: nowhere (a default, or a value from the embedding API). */
typedef struct pt_conf_place {
    const char *file;
    int line, col;
} pt_conf_place;

/* One `listen` directive:
 * `listen [HOST:]PORT [default_server] [ssl] [http2] [proxy_protocol] [reuseport] [deferred]
 *  [backlog=N] [notsent_lowat=SIZE|off];`.
 * With `ssl` the address speaks TLS for every server on it (as in nginx), so each of those
 * servers needs a certificate; `proxy_protocol` likewise holds for the whole address. */
typedef struct pt_conf_listen {
    char *host; /* NULL: all addresses ("8080", "*:8080"); IPv6 without brackets ("::1") */
    char *port; /* decimal 0..65535; "0" asks for an ephemeral port */
    int backlog;
    bool default_server, reuseport, ssl;
    bool http2;          /* `http2`: HTTP/2 on this address (ALPN h2 with ssl, else h2c) */
    bool proxy_protocol; /* `proxy_protocol`: each connection starts with a PROXY header */
    bool deferred;       /* TCP_DEFER_ACCEPT: a connection is accepted once it has data */
    int notsent_lowat;   /* TCP_NOTSENT_LOWAT of its connections, bytes; 0: the kernel's */
    bool options;        /* reuseport, deferred, backlog= or notsent_lowat= given: the socket's
                            options for the address (one listen per address may give them) */
    const char *file;    /* where it was written; the server block's place for the default */
    int line, col;
} pt_conf_listen;

/* HTTP/2's settings and attack limits for the connections of an address (the http2_*
 * directives of its default server; docs/http2.md). */
typedef struct pt_h2_settings {
    uint32_t max_concurrent_streams;  /* http2_max_concurrent_streams (128) */
    uint32_t max_header_list_size;    /* http2_max_header_list_size: decompressed (32k) */
    uint32_t max_frame_size;          /* http2_max_frame_size: advertised, 16k..16m-1 (16k) */
    uint32_t stream_window;           /* http2_stream_window: each stream's receive window (256k) */
    uint32_t connection_window;       /* http2_connection_window (1m) */
    uint32_t reset_burst, reset_rate; /* http2_reset_rate_limit BURST RATE: RST_STREAM from the
                                         client, per second (1000, 33; CVE-2023-44487) */
    uint32_t max_continuations;       /* http2_max_continuations per header block (8) */
    uint32_t max_settings;            /* http2_max_settings: entries in one SETTINGS frame (32) */
    uint32_t control_burst, control_rate; /* http2_control_frame_limit BURST RATE: SETTINGS,
                                             PING, PRIORITY and empty DATA frames (1000, 100) */
} pt_h2_settings;

/* Fills `s` with the defaults above. */
static inline void pt_h2_settings_default(pt_h2_settings *s)
{
    *s = (pt_h2_settings){
        .max_concurrent_streams = 128,
        .max_header_list_size = 32 * 1024,
        .max_frame_size = 16 * 1024,
        .stream_window = 256 * 1024,
        .connection_window = 1024 * 1024,
        .reset_burst = 1000,
        .reset_rate = 33,
        .max_continuations = 8,
        .max_settings = 32,
        .control_burst = 1000,
        .control_rate = 100,
    };
}

struct pt_logfmt;

/* One `log_format NAME [escape=default|json|none] STRING ...;` (top level): the strings
 * concatenated and compiled (server/core/logfmt.h). */
typedef struct pt_conf_log_format {
    char *name;
    const struct pt_logfmt *fmt; /* in pt_conf.logfmts */
    const char *file;
    int line, col;
} pt_conf_log_format;

/* One `access_log PATH [FORMAT [buffer=SIZE] [flush=TIME] [if=CONDITION]];`. A level that names
 * access_log replaces the inherited list (as nginx's); `access_log off` leaves it empty. */
typedef struct pt_conf_access_log {
    char *path;                   /* absolute, "stderr", or "syslog:..." as written */
    const struct pt_logfmt *fmt;  /* the format (pt_conf.logfmts, or the static combined) */
    const struct pt_logfmt *cond; /* if=: compiled, in pt_conf.logfmts; NULL: none */
    size_t buffer;                /* buffer=SIZE; 0: the default (32k, written every second) */
    double flush;                 /* flush=TIME (seconds); 0: none */
    const char *file;
    int line, col;
} pt_conf_access_log;

/* One extension of a `types { TYPE EXT ...; }` entry; the extension is lower case. */
typedef struct pt_conf_type {
    char *type;
    char *ext;
} pt_conf_type;

/* One `add_header NAME VALUE [always];`. Without `always` the line goes only on responses with
 * status 200, 201, 204, 206, 301, 302, 303, 304, 307 or 308, as in nginx. */
typedef struct pt_conf_header {
    char *name, *value;
    bool always;
} pt_conf_header;

/* One status of an `error_page CODE ... [=[RESPONSE]] URI;`. */
typedef struct pt_conf_error_page {
    int status;   /* 300..599 */
    int response; /* 0: keep `status`; -1 ("="): the status of what the URI answers; else it */
    char *uri;    /* "/path[?query]" or "@NAME" (an internal redirect), or an absolute URL */
} pt_conf_error_page;

/* `expires`: Expires and Cache-Control on responses with the statuses add_header uses. */
typedef enum pt_conf_expires {
    PT_EXPIRES_OFF,      /* no header */
    PT_EXPIRES_EPOCH,    /* Expires in 1970, Cache-Control: no-cache */
    PT_EXPIRES_MAX,      /* Expires in 2037, Cache-Control: max-age=315360000 */
    PT_EXPIRES_ACCESS,   /* `expires [-]TIME`: from the time of the request */
    PT_EXPIRES_MODIFIED, /* `expires modified [-]TIME`: from the file's modification time */
} pt_conf_expires;

typedef enum pt_conf_autoindex_format {
    PT_AUTOINDEX_HTML,
    PT_AUTOINDEX_JSON,
} pt_conf_autoindex_format;

/* Static-file settings. Every level starts from its parent's (top level -> server ->
 * location); a level that names add_header or error_page at all replaces the inherited list,
 * as in nginx. try_files is not inherited (nginx's rule): it applies where it is written. */
typedef struct pt_conf_files {
    bool autoindex;                            /* off */
    pt_conf_autoindex_format autoindex_format; /* html */
    bool autoindex_exact_size;                 /* on: bytes; off: K, M, G */
    bool autoindex_localtime;                  /* off: GMT */
    pt_conf_expires expires_kind;              /* off */
    double expires;                            /* seconds, may be negative */
    pt_conf_header *headers;
    size_t nheaders;
    pt_conf_error_page *error_pages;
    size_t nerror_pages;
    char **try_files; /* the last is "=CODE" or a URI; `$uri` stands for the request path */
    size_t ntry_files;
    bool precompressed; /* off: serve FILE.br, FILE.zst, FILE.gz by Accept-Encoding */
    size_t max_ranges;  /* ranges in one request before the Range header is ignored; 0: none */
    bool etag;          /* on */
} pt_conf_files;

/* The coding's default levels (`gzip_comp_level` is nginx's; brotli's and zstd's are chosen
 * for speed close to gzip's at a better ratio). */
#define PT_CONF_GZIP_LEVEL 1
#define PT_CONF_BROTLI_LEVEL 4
#define PT_CONF_ZSTD_LEVEL 3

/* One coding's settings for compression on the fly: `gzip`, `brotli` or `zstd` and their
 * `_comp_level`, `_types` and `_min_length`. */
typedef struct pt_conf_coding {
    bool on;           /* off */
    int level;         /* gzip 1..9 (1), brotli 0..11 (4), zstd 1..19 (3) */
    char **types;      /* media types, lower case, without parameters; text/html is always one */
    size_t ntypes;     /* (types holds "text/html" alone by default) */
    bool any_type;     /* `*_types *` */
    size_t min_length; /* bytes; a body of known length below it goes as it is (20) */
} pt_conf_coding;

/* gzip_proxied: which answers to a request that came through a proxy (it has Via) may be
 * compressed; 0 (`off`): none. */
enum {
    PT_PROXIED_EXPIRED = 1,  /* Expires in the past... */
    PT_PROXIED_NO_CACHE = 2, /* Cache-Control: no-cache */
    PT_PROXIED_NO_STORE = 4, /* Cache-Control: no-store */
    PT_PROXIED_PRIVATE = 8,  /* Cache-Control: private */
    PT_PROXIED_NO_LAST_MODIFIED = 16,
    PT_PROXIED_NO_ETAG = 32,
    PT_PROXIED_AUTH = 64, /* the request has Authorization */
    PT_PROXIED_ANY = 128,
};

/* Compression on the fly (docs/compression.md): the gzip_*, brotli_* and zstd_* directives
 * and compress_*. Every level starts from its parent's (top level -> server -> location). */
typedef struct pt_conf_compress {
    pt_conf_coding coding[PT_ENC_COUNT]; /* by pt_encoding; [PT_ENC_IDENTITY] unused */
    unsigned proxied;                    /* gzip_proxied: PT_PROXIED_* (0: off) */
    bool vary;                           /* gzip_vary (on) */
    /* gzip_disable: User-Agent patterns (case-insensitive). server/conf/compress.c makes each
     * with its source beside it (to compile a level's own copy) and pt_conf_free() frees them:
     * nothing else may put one here. */
    struct pt_regex **disable;
    size_t ndisable;
    bool disable_msie6;      /* gzip_disable msie6 */
    int http_version;        /* gzip_http_version: 10 or 11 (11) */
    pt_encoding_order order; /* compress_order: ties among equal q-values */
    bool cache;              /* compress_cache: hot files' compressed copies (on) */
} pt_conf_compress;

/* `cc` when a coding is on in it, else NULL (nothing to compress). */
static inline const pt_conf_compress *pt_conf_compress_active(const pt_conf_compress *cc)
{
    for (int e = PT_ENC_BR; e < PT_ENC_COUNT; e++)
        if (cc->coding[e].on)
            return cc;
    return NULL;
}

/* `satisfy`: how allow/deny and auth_basic combine. */
typedef enum pt_conf_satisfy {
    PT_SATISFY_ALL, /* the client's address allowed (or no rule for it) and its password right */
    PT_SATISFY_ANY, /* either */
} pt_conf_satisfy;

/* One `allow RANGE;` or `deny RANGE;`, compiled. */
typedef struct pt_access_rule {
    pt_cidr range;
    bool deny;
} pt_access_rule;

struct pt_htpasswd; /* server/core/htpasswd.h */

/* Access control (docs/access.md): allow, deny, satisfy, auth_basic, auth_basic_user_file.
 * Every level starts from its parent's; a level that names allow or deny replaces the inherited
 * rules (nginx's rule), auth_basic and auth_basic_user_file are inherited each on its own. The
 * user file is read when the conf is loaded; the levels that name the same one share its table
 * by reference. */
typedef struct pt_conf_access {
    pt_access_rule *rules; /* in the order written: the first a client's address matches decides */
    size_t nrules;
    bool rules_v4;           /* a rule holds IPv4 addresses ("all" too): a client's IPv4-mapped
                                IPv6 address is matched as IPv4 */
    pt_conf_satisfy satisfy; /* all */
    char *realm;             /* auth_basic; NULL: off */
    char *challenge;         /* its "WWW-Authenticate: Basic realm=..." line, with CRLF */
    const char *realm_file;  /* where auth_basic was written (a realm without a user file is
                                refused there) */
    int realm_line, realm_col;
    char *user_file;           /* auth_basic_user_file, absolute; NULL: none */
    struct pt_htpasswd *users; /* its users, read at load */
} pt_conf_access;

/* Whether `a` has anything to check: a rule, or a realm (with its users). */
static inline bool pt_conf_access_active(const pt_conf_access *a)
{
    return a->nrules > 0 || (a->realm && a->users);
}
/* limit_rate and limit_rate_after (nginx's, connmgr/rate.h): each response goes at most
 * `rate` bytes per second once its first `after` bytes are out. Every level starts from its
 * parent's (top level -> server -> location). */
typedef struct pt_conf_limit_rate {
    size_t rate;  /* bytes per second; 0: no limit (the default) */
    size_t after; /* bytes sent at full speed first (0) */
} pt_conf_limit_rate;
/* A shared zone: `limit_req_zone KEY zone=NAME:SIZE rate=RATE;` or `limit_conn_zone KEY
 * zone=NAME:SIZE;` at the top level (docs/access.md). Its state is shared by every worker and
 * kept across reloads that leave its name, kind, key and size alone. */
typedef struct pt_conf_zone {
    char *name;
    bool conn;     /* limit_conn_zone; else limit_req_zone */
    char *key;     /* text and $variables (pt_var_allowed: PT_VARS_ZONE_KEY) */
    size_t size;   /* bytes, PT_ZONE_MIN_SIZE at least */
    uint64_t rate; /* limit_req: milli-requests per second (nginx's integer arithmetic: 1r/m is
                      16) */
    const char *file;
    int line, col;
} pt_conf_zone;

/* One `limit_req zone=NAME [burst=N] [nodelay | delay=N];`. */
typedef struct pt_conf_limit_req {
    char *zone_name;
    size_t zone;    /* its index in pt_conf.zones (found once the conf is read) */
    uint64_t burst; /* milli-requests above the rate that are held rather than refused (0) */
    uint64_t delay; /* milli-requests above the rate answered at once (0; nodelay: all) */
    const char *file;
    int line, col;
} pt_conf_limit_req;

/* One `limit_conn NAME N;`. */
typedef struct pt_conf_limit_conn {
    char *zone_name;
    size_t zone; /* its index in pt_conf.zones */
    uint32_t conn;
    const char *file;
    int line, col;
} pt_conf_limit_conn;

/* The limits of a level (top level, server, location): limit_req and limit_conn lines (a level
 * that has any replaces those it inherited, as nginx) and their status, log level and dry run.
 * Every level starts from its parent's. */
typedef struct pt_conf_limit {
    pt_conf_limit_req *req;
    size_t nreq;
    int req_status;             /* limit_req_status (503) */
    pt_log_level req_log_level; /* limit_req_log_level (error); delays one level lower */
    bool req_dry_run;           /* limit_req_dry_run (off) */
    pt_conf_limit_conn *conn;
    size_t nconn;
    int conn_status;             /* limit_conn_status (503) */
    pt_log_level conn_log_level; /* limit_conn_log_level (error) */
    bool conn_dry_run;           /* limit_conn_dry_run (off) */
} pt_conf_limit;

/* What answers the requests of a location. Adding a handler is one value here, one row in
 * the table of server/server.c and the directive that selects it. */
typedef enum pt_handler_kind {
    PT_HANDLER_STATIC,  /* files from root or alias (the default) */
    PT_HANDLER_STATUS,  /* `status;`: the status page */
    PT_HANDLER_RETURN,  /* `return CODE [URL|TEXT];` */
    PT_HANDLER_PROXY,   /* `proxy_pass URL;` (server/handlers/proxy.c) */
    PT_HANDLER_METRICS, /* `metrics;`: Prometheus' text format (server/handlers/metrics.c) */
    PT_HANDLER_COUNT
} pt_handler_kind;

/* `return CODE [URL|TEXT];` or `return URL;` (a 302). The text may hold $host, $request_uri,
 * $scheme and $uri (also as ${name}), expanded per request. For 301, 302, 303, 307 and 308 the
 * text is the Location; for other codes it is the body. In a server block it answers every
 * request of the server before any location is chosen, as nginx's server-level return. */
/* `rewrite REGEX REPLACEMENT [last|break|redirect|permanent]` (docs/rewrite.md). */
typedef enum pt_rewrite_flag {
    PT_REWRITE_NONE,      /* the next rewrite runs on the new URI; then a new location */
    PT_REWRITE_LAST,      /* no more rewrites: the new URI finds its location */
    PT_REWRITE_BREAK,     /* no more rewrites: this location answers the new URI */
    PT_REWRITE_REDIRECT,  /* a 302 to the replacement */
    PT_REWRITE_PERMANENT, /* a 301 */
} pt_rewrite_flag;

typedef struct pt_conf_rewrite {
    struct pt_regex *re;
    char *replacement;
    pt_rewrite_flag flag;
} pt_conf_rewrite;

/* rewrite_log (inherited); a level's rewrites are steps of its script (pt_conf_script). */
typedef struct pt_conf_rewrites {
    bool log; /* rewrite_log: each rewrite that matches is logged at notice */
} pt_conf_rewrites;

typedef struct pt_conf_return {
    int code;   /* 0: none */
    char *text; /* NULL: none (the code's own page) */
} pt_conf_return;

/* TLS settings (`ssl_*`), at the top level and in servers; a server starts from the top
 * level's. ssl_certificate and ssl_certificate_key repeat (one pair per key type: RSA and
 * ECDSA) and pair up in order; a level that names either replaces the inherited list.
 * Only the certificates of the server chosen by SNI matter per server: the protocols, ciphers,
 * cache and handshake bounds of an address are those of its default server (nginx's rule). */
typedef struct pt_conf_ssl {
    char **certs; /* absolute paths */
    size_t ncerts;
    char **keys; /* paired with certs by position */
    size_t nkeys;
    const char *cert_file; /* where the certificates were named (for messages) */
    int cert_line, cert_col;
    int min_version, max_version; /* ssl_protocols: TLS1_2_VERSION .. TLS1_3_VERSION */
    char *ciphers;                /* ssl_ciphers (TLS 1.2); NULL: the safe default */
    char *ciphersuites;           /* ssl_ciphersuites (TLS 1.3); NULL: the safe default */
    bool prefer_server_ciphers;   /* on */
    size_t session_cache;         /* sessions kept per process (ssl_session_cache); 0: none */
    double session_timeout;       /* seconds (1h) */
    bool session_tickets;         /* on */
    double handshake_timeout;     /* seconds (10s); PT_TIMEOUT_NONE: none */
    size_t max_handshakes;        /* handshakes in progress per address before accepting pauses */
} pt_conf_ssl;

#define PT_CONF_SSL_HANDSHAKE_TIMEOUT 10.0
#define PT_CONF_SSL_MAX_HANDSHAKES 1000
#define PT_CONF_SSL_TICKET_ROTATE 3600.0
/* How many sessions a byte of nginx's `shared:NAME:SIZE` stands for (it keeps about 4000 in a
 * megabyte). */
#define PT_CONF_SSL_SESSION_BYTES 256

/* One `server ADDRESS [weight=N] [max_fails=N] [fail_timeout=TIME] [max_conns=N]
 * [slow_start=TIME] [backup] [down] [resolve];` of an upstream block. ADDRESS is HOST[:PORT]
 * (port 80 by default) with HOST an IPv4 or [IPv6] literal or a DNS name (resolved when
 * connecting), or unix:PATH. */
typedef struct pt_conf_upstream_server {
    char *address;       /* as written */
    int weight;          /* 1 */
    int max_fails;       /* failures within fail_timeout that mark it down (1); 0: never */
    double fail_timeout; /* the window, and how long it stays down (10 s) */
    size_t max_conns;    /* connections at once, all workers together; 0: no bound */
    double slow_start;   /* its weight grows from nothing to `weight` in this long after it
                            comes back; 0: at once */
    bool backup;         /* only when no other server can take the request */
    bool down;           /* never chosen */
    bool resolve;        /* a name looked up again every resolver_interval */
    const char *file;
    int line, col;
} pt_conf_upstream_server;

/* How an upstream chooses a server (`least_conn`, `ip_hash`, `hash`, `random`; round-robin
 * without one). */
typedef enum pt_balance {
    PT_BALANCE_ROUND_ROBIN,
    PT_BALANCE_LEAST_CONN,
    PT_BALANCE_IP_HASH,
    PT_BALANCE_HASH,
    PT_BALANCE_RANDOM,
} pt_balance;

/* `health_check [interval=TIME] [timeout=TIME] [fails=N] [passes=N] [uri=PATH] [port=N];` of an
 * upstream block: each server asked `GET uri` every interval; a 2xx or 3xx answer within the
 * timeout passes. */
typedef struct pt_conf_health_check {
    bool on;
    double interval; /* 5 s */
    double timeout;  /* 5 s, but never more than the interval */
    unsigned fails;  /* failed checks in a row that mark a server down (1) */
    unsigned passes; /* passed checks in a row that bring it back (1) */
    char *uri;       /* "/" */
    uint16_t port;   /* 0: the server's own */
    const char *file;
    int line, col;
} pt_conf_health_check;

#define PT_CONF_HEALTH_INTERVAL 5.0
#define PT_CONF_HEALTH_TIMEOUT 5.0

/* `upstream NAME { server ...; keepalive N; keepalive_timeout TIME; keepalive_requests N;
 * least_conn | ip_hash | hash KEY [consistent] | random [two [least_conn]]; queue N
 * [timeout=TIME]; health_check ...; resolver_interval TIME; zone NAME [SIZE]; }` at the top
 * level.
 * The keep-alive bounds are per server of the block and per worker. */
typedef struct pt_conf_upstream {
    char *name;
    pt_conf_upstream_server *servers; /* at least one, at most 64 */
    size_t nservers;
    size_t keepalive;          /* idle connections kept to each server (32); 0: none */
    double keepalive_timeout;  /* an idle connection is closed after (4 s) */
    size_t keepalive_requests; /* requests per connection (1000) */
    pt_balance balance;        /* round-robin */
    char *hash_key;            /* hash: text and $variables (pt_var_allowed: PT_VARS_ZONE_KEY) */
    bool hash_consistent;      /* hash ... consistent: a ring (ketama) */
    bool random_two;           /* random two: the less loaded of two */
    size_t queue;              /* requests that wait for a server under max_conns (0: none) */
    double queue_timeout;      /* how long one waits (60 s) */
    pt_conf_health_check health;
    double resolver_interval; /* how often `resolve` names are looked up again (30 s) */
    const char *file;
    int line, col;
} pt_conf_upstream;

#define PT_CONF_UPSTREAM_KEEPALIVE 32
#define PT_CONF_UPSTREAM_KEEPALIVE_TIMEOUT 4.0
#define PT_CONF_UPSTREAM_KEEPALIVE_REQUESTS 1000
#define PT_CONF_UPSTREAM_FAIL_TIMEOUT 10.0
#define PT_CONF_UPSTREAM_QUEUE_TIMEOUT 60.0
#define PT_CONF_UPSTREAM_RESOLVER_INTERVAL 30.0
#define PT_CONF_PROXY_TIMEOUT 60.0

/* proxy_next_upstream: when a request goes to the next server (if it can be sent again). The
 * HTTP_ flags: the server answered that status; all but 403 and 404 count as its failure. */
enum {
    PT_NEXT_ERROR = 1,   /* connecting, sending or reading failed */
    PT_NEXT_TIMEOUT = 2, /* ... timed out */
    PT_NEXT_HTTP_502 = 4,
    PT_NEXT_HTTP_503 = 8,
    PT_NEXT_HTTP_504 = 16,
    PT_NEXT_HTTP_500 = 32,
    PT_NEXT_HTTP_429 = 64,
    PT_NEXT_HTTP_403 = 128,
    PT_NEXT_HTTP_404 = 256,
    PT_NEXT_INVALID_HEADER = 512,  /* the answer was not valid HTTP */
    PT_NEXT_NON_IDEMPOTENT = 1024, /* a POST, PATCH, ... may go again too (without a body read) */
};

/* Proxy settings (`proxy_*`): top level, server and location, each level starting from its
 * parent's. proxy_set_header, proxy_hide_header, proxy_pass_header and proxy_redirect repeat;
 * a level that names one replaces the inherited list (as add_header). proxy_pass is a
 * location's own. */
typedef struct pt_conf_proxy {
    char *pass;                  /* proxy_pass URL as written; NULL: none */
    pt_conf_header *set_headers; /* proxy_set_header NAME VALUE (`always` unused); an empty
                                    value removes the header */
    size_t nset_headers;
    char **hide_headers; /* proxy_hide_header NAME: response fields not passed (lower case) */
    size_t nhide_headers;
    char **pass_headers; /* proxy_pass_header NAME: Date or Server passed after all (lower case) */
    size_t npass_headers;
    /* proxy_redirect: prefixes of the server's Location replaced (the first that matches), as
     * name (the prefix) -> value (its replacement); a NULL name is `default`: the proxy_pass
     * URL -> the location's prefix. [default] unless a level says otherwise; `off`: none. */
    pt_conf_header *redirects;
    size_t nredirects;
    unsigned next_upstream;        /* proxy_next_upstream: PT_NEXT_* (error timeout) */
    size_t next_upstream_tries;    /* proxy_next_upstream_tries: attempts in all (0: no bound) */
    double next_upstream_timeout;  /* proxy_next_upstream_timeout: no next attempt after this
                                      long since the first began (PT_TIMEOUT_NONE) */
    double connect_timeout;        /* proxy_connect_timeout, per server tried (60 s) */
    double read_timeout;           /* proxy_read_timeout, between two reads (60 s) */
    double send_timeout;           /* proxy_send_timeout, between two writes (60 s) */
    bool ssl_verify;               /* proxy_ssl_verify (on) */
    bool ssl_server_name;          /* proxy_ssl_server_name: SNI (on) */
    char *ssl_trusted_certificate; /* absolute path; NULL: the system's trust store */
    const char *pass_file;         /* where proxy_pass was written */
    int pass_line, pass_col;
} pt_conf_proxy;

/* real_ip_header: where a trusted peer says who the client is. */
typedef enum pt_realip_source {
    PT_REALIP_X_REAL_IP,       /* `X-Real-IP` (the default) */
    PT_REALIP_X_FORWARDED_FOR, /* `X-Forwarded-For`, every line of it */
    PT_REALIP_HEADER,          /* another header, named in `header` */
    PT_REALIP_PROXY_PROTOCOL,  /* `proxy_protocol`: the connection's PROXY header */
} pt_realip_source;

/* The real client address (nginx's realip module; docs/access.md): set_real_ip_from,
 * real_ip_header and real_ip_recursive, at the top level, in servers and in locations, each
 * level starting from its parent's; a level that names set_real_ip_from replaces the inherited
 * list. Without a set_real_ip_from nothing is replaced. */
typedef struct pt_conf_realip {
    pt_cidr *from; /* set_real_ip_from: the peers trusted to say who the client is */
    size_t nfrom;
    pt_realip_source source; /* real_ip_header (X-Real-IP) */
    char *header;            /* PT_REALIP_HEADER: the header's name, lower case */
    bool recursive;          /* real_ip_recursive (off) */
} pt_conf_realip;

/* `r` when its set_real_ip_from lists a peer, else NULL (nothing to do). */
static inline const pt_conf_realip *pt_conf_realip_active(const pt_conf_realip *r)
{
    return r->nfrom ? r : NULL;
}

/* ---- the rewrite module's script, and the conf's own variables (docs/rewrite.md) ---- */

/* One `if (CONDITION)`: a variable alone (false when empty or "0"), a comparison, a regex, or
 * a test of a file. */
typedef enum pt_cond_op {
    PT_COND_VAR,    /* `$var` */
    PT_COND_EQUAL,  /* `$var = TEXT` (`!=` negated) */
    PT_COND_REGEX,  /* `$var ~ RE`, `~*` (`!~`, `!~*` negated): captures become $1.. */
    PT_COND_FILE,   /* `-f PATH`: a regular file */
    PT_COND_DIR,    /* `-d PATH`: a directory */
    PT_COND_EXISTS, /* `-e PATH`: a file or a directory (links followed) */
    PT_COND_EXEC,   /* `-x PATH`: its owner's execute bit (a directory's too, as nginx) */
} pt_cond_op;

typedef struct pt_conf_cond {
    pt_cond_op op;
    bool negate;         /* `!=`, `!~`, `!-f`, ... */
    char *subject;       /* the `$var` (its reference as written), or the PATH (text) */
    char *operand;       /* PT_COND_EQUAL: the text compared, may hold variables */
    struct pt_regex *re; /* PT_COND_REGEX */
} pt_conf_cond;

/* What a level's script does at one step, in the order the directives are written. */
typedef enum pt_step_kind {
    PT_STEP_REWRITE, /* `rewrite` */
    PT_STEP_RETURN,  /* `return`: answers, the script ends */
    PT_STEP_SET,     /* `set $var VALUE` */
    PT_STEP_BREAK,   /* `break`: the script ends, the location answers */
    PT_STEP_IF,      /* `if (...) { ... }` */
} pt_step_kind;

struct pt_conf_if;

typedef struct pt_conf_step {
    pt_step_kind kind;
    pt_conf_rewrite rewrite; /* PT_STEP_REWRITE */
    pt_conf_return ret;      /* PT_STEP_RETURN */
    size_t var;              /* PT_STEP_SET: the variable (pt_conf.vars) */
    char *value;             /* PT_STEP_SET: text, may hold variables */
    struct pt_conf_if *cond; /* PT_STEP_IF (owned) */
} pt_conf_step;

/* The rewrite module's directives of a server or a location (rewrite, return, set, break, if),
 * run as one script in the order written, as nginx's ngx_http_rewrite_module runs them: a
 * server's before a location is chosen, a location's before its handler. Not inherited. */
typedef struct pt_conf_script {
    pt_conf_step *steps;
    size_t n;
} pt_conf_script;

/* `if (CONDITION) { ... }` in a server or a location: its own steps, and in a location what it
 * changes about the answer while its condition holds (its overlay: add_header, limit_rate,
 * proxy_pass to an upstream block), each the location's where the block names none. */
typedef struct pt_conf_if {
    pt_conf_cond cond;
    pt_conf_script body;
    pt_conf_header *headers; /* add_header in the block (replaces the location's); or none */
    size_t nheaders;
    bool rate_named;     /* limit_rate in the block: `rate` replaces the location's */
    size_t rate;         /* bytes per second; 0: none */
    char *pass;          /* proxy_pass in the block (an upstream block, no URI); NULL: none */
    pt_conf_proxy proxy; /* with `pass`: the location's proxy settings, borrowed (made once
                            the location is read), with `pass`; only `pass` is the if's */
    int overlay;         /* its overlay among its location's (pt_location.overlays); -1: none */
    const char *file;
    int line, col;
} pt_conf_if;

/* One entry of a `map` block: `KEY VALUE;`. */
typedef struct pt_conf_map_entry {
    char *key;           /* exact or (hostnames) wildcard, lower case; for a regex, as written */
    struct pt_regex *re; /* `~RE`, `~*RE`; NULL: not a regex */
    char *value;         /* text, may hold variables (a regex's captures too) */
} pt_conf_map_entry;

/* `map SOURCE $VAR { ... }` (top level): $VAR is the value of the first entry that SOURCE's
 * expansion matches, in nginx's order: an exact key (ignoring case), the longest leading
 * wildcard, the longest trailing wildcard (both with `hostnames`), the first regex in the
 * order written, else `default` (empty without one). Computed the first time a request reads
 * $VAR and kept for the request (`volatile`: computed at every read). */
typedef struct pt_conf_map {
    char *source;             /* text, may hold variables */
    size_t var;               /* the variable it makes (pt_conf.vars) */
    pt_conf_map_entry *exact; /* sorted by key (strcmp's order) */
    size_t nexact;
    pt_conf_map_entry *leading; /* "*.example.com", ".example.com": longest first */
    size_t nleading;
    pt_conf_map_entry *trailing; /* "mail.*": longest first */
    size_t ntrailing;
    pt_conf_map_entry *regex; /* in the order written */
    size_t nregex;
    char *default_value; /* NULL: empty */
    bool hostnames;      /* a trailing dot of the source's value is dropped */
    bool volatile_;      /* not kept for the request */
    const char *file;
    int line, col;
} pt_conf_map;

/* A variable of the conf's own, declared by `set` or `map` anywhere in the conf and known
 * everywhere (as nginx's variables are); read before any `set` gave it a value, it is empty. */
typedef struct pt_conf_var {
    char *name; /* without '$' */
    long map;   /* its map in pt_conf_vars.maps; -1: none (set's only) */
    const char *file;
    int line, col; /* where it was first declared */
} pt_conf_var;

/* The conf's own variables and their maps. A variable's index in `list` is its id; a request
 * keeps its values in slots by that id (server/core/vars.h). */
typedef struct pt_conf_vars {
    pt_conf_var *list;
    size_t n;
    pt_conf_map *maps;
    size_t nmaps;
} pt_conf_vars;

typedef enum pt_conf_match {
    PT_MATCH_PREFIX, /* `location /p` and `location ^~ /p` */
    PT_MATCH_EXACT,  /* `location = /p` */
    PT_MATCH_REGEX,  /* `location ~ RE` and `location ~* RE` (PCRE2, with captures) */
    PT_MATCH_NAMED,  /* `location @NAME`: reached only from try_files and error_page */
} pt_conf_match;

/* The `parent` of a location in a server block itself, not nested in another location. */
#define PT_CONF_NO_PARENT SIZE_MAX

/* One `location [=|^~|~|~*] PATH { ... }` or `location @NAME { ... }` block. A location may hold
 * locations (nginx's nested locations), which start from its values as it starts from its
 * server's; a server's locations are one array in which a location comes before those it holds. */
typedef struct pt_conf_location {
    size_t parent; /* the index in its server's locations of the location holding it, or
                      PT_CONF_NO_PARENT */
    char *path;    /* as written, starting with '/' (a regex: the pattern); compared with the
                      decoded, normalised path */
    pt_conf_match match;
    bool icase;          /* `~*`: the regex ignores case */
    struct pt_regex *re; /* PT_MATCH_REGEX: the pattern compiled */
    bool no_regex;       /* `^~`: when this prefix is the longest match, no regex is tried */
    pt_handler_kind handler;
    char *root;            /* absolute; inherited from the server */
    bool root_named;       /* a root directive here or above named it (else the default) */
    char *alias;           /* absolute, or NULL: files are root + path; else alias + what follows
                              alias_of in the path */
    char *alias_of;        /* with alias: the path of the location that names it (this one, or one
                              holding it): the part of the request path the alias replaces */
    pt_conf_place root_at; /* the root (inherited: where it was written) or alias directive */
    char **index;
    size_t nindex;
    bool sendfile;
    pt_conf_files static_files;
    pt_conf_return ret; /* with handler PT_HANDLER_RETURN */
    const char *file;   /* where the block starts */
    int line, col;
    pt_conf_proxy proxy; /* with handler PT_HANDLER_PROXY */
    pt_conf_compress compress;
    pt_conf_access access;
    pt_conf_limit_rate limit_rate;
    pt_conf_limit limit;
    pt_conf_access_log *access_logs; /* the server's unless the location names its own */
    size_t naccess_logs;
    pt_conf_rewrites rewrite;
    pt_conf_script script; /* rewrite, return, set, break, if: before the handler */
    bool internal;         /* `internal`: reached only by an internal redirect (else 404) */
    pt_conf_realip realip;
    uint32_t regex_match_limit; /* regex_match_limit: its pattern's, rewrites', gzip_disable's */
} pt_conf_location;

typedef struct pt_conf_server {
    pt_conf_listen *listens; /* at least one */
    size_t nlistens;
    char **names; /* server_name, lower case except regexes ("~..."); may be empty */
    size_t nnames;
    struct pt_regex **name_regexes; /* the regexes of names, compiled, in their order */
    size_t nname_regexes;
    char *root;            /* absolute */
    bool root_named;       /* a root directive here or at the top named it */
    pt_conf_place root_at; /* that directive */
    char **index;
    size_t nindex;
    pt_limits limits;
    pt_conf_access_log *access_logs; /* none: off */
    size_t naccess_logs;
    char *error_log; /* absolute path, "stderr" or "syslog:..." */
    pt_log_level error_log_level;
    bool sendfile, server_tokens;
    bool http2;        /* `http2 on`: HTTP/2 for this server (with its listen's `http2`) */
    pt_h2_settings h2; /* used from an address's default server */
    char *default_type;
    pt_conf_type *types; /* later entries for an extension replace earlier ones */
    size_t ntypes;
    pt_conf_files static_files;
    pt_conf_ssl ssl;
    pt_conf_return ret;          /* server-level return; code 0: none */
    pt_conf_location *locations; /* in file order */
    size_t nlocations;
    const char *file; /* where the server block starts */
    int line, col;
    pt_conf_proxy proxy;
    pt_conf_compress compress;
    pt_conf_access access;
    pt_conf_limit_rate limit_rate;
    pt_conf_limit limit;
    pt_conf_rewrites rewrite;
    pt_conf_script script; /* rewrite, return, set, break, if: before a location is chosen,
                              on the first pass */
    pt_conf_realip realip;
    uint32_t
        regex_match_limit; /* regex_match_limit: its server_name's, rewrites', gzip_disable's */
    const pt_conf_vars *vars; /* the conf's own variables (pt_conf.vars) */
} pt_conf_server;

typedef struct pt_conf {
    pt_conf_server *servers; /* at least one, in file order */
    size_t nservers;
    int worker_processes; /* 0 = "auto": one per CPU */
    char *pid_path;       /* absolute, or NULL for no pid file */
    /* `user USER [GROUP]`: who worker processes run as when started by root (GROUP: USER's
     * name as a group, as in nginx). NULL: not given. The ids are resolved when the conf is read
     * by root (-1 otherwise), so an unknown name is an error with its place. */
    char *user, *group;
    uid_t user_uid;
    gid_t user_gid;

    /* Top-level values: what every server starts from. The error log here is also the
     * process's own log (start-up, workers) outside any server. */
    pt_limits limits;
    char *root;
    bool root_named; /* a root directive named it (else `htdocs` under the prefix) */
    pt_conf_place root_at;
    char **index;
    size_t nindex;
    pt_conf_access_log *access_logs;
    size_t naccess_logs;
    char *error_log;
    pt_log_level error_log_level;
    bool sendfile, server_tokens;
    bool http2;        /* `http2 on` (off) */
    pt_h2_settings h2; /* pt_h2_settings_default() */
    char *default_type;
    pt_conf_type *types;
    size_t ntypes;
    pt_conf_files static_files;
    pt_conf_ssl ssl;
    /* How often the master makes a new session-ticket key (ssl_session_ticket_rotate, 1h): one
     * key set serves every server and worker and survives reloads. */
    double ssl_ticket_rotate;

    /* The file cache (one per process, top level only): small files in memory with their
     * header lines, larger ones as open fds, missing ones remembered; each entry trusted for
     * file_cache_valid between stats. */
    size_t file_cache_size;          /* bytes of small files held in memory; 0: off (32m) */
    size_t file_cache_max_file;      /* largest file held in memory (32k) */
    double file_cache_valid;         /* seconds between stats of an entry; 0: every time (1s) */
    size_t open_file_cache_max;      /* open fds and missing files remembered; 0: off (1000) */
    double open_file_cache_inactive; /* an unused fd entry is closed after this (60s) */

    char *prefix; /* absolute; relative paths were joined to it */
    char **files; /* every file read (the main one first), as named in messages */
    size_t nfiles;
    pt_conf_proxy proxy;
    pt_conf_compress compress;
    pt_conf_rewrites rewrite; /* rewrite_log only */
    pt_conf_realip realip;
    pt_conf_upstream *upstreams; /* in file order */
    size_t nupstreams;
    pt_conf_access access;
    pt_conf_limit_rate limit_rate;
    pt_conf_limit limit;
    pt_conf_zone *zones; /* limit_req_zone and limit_conn_zone, in file order */
    size_t nzones;
    pt_conf_log_format *log_formats; /* log_format, in file order (combined is not here) */
    size_t nlog_formats;
    struct pt_logfmt **logfmts; /* every format and if= condition compiled, owned */
    size_t nlogfmts;
    /* regex_match_limit (PT_REGEX_MATCH_LIMIT): the bound on one match's work (PCRE2's match
     * limit) of every regex of a level, its own or inherited. */
    uint32_t regex_match_limit;
    pt_conf_vars vars; /* set's and map's variables */
} pt_conf;

#endif
