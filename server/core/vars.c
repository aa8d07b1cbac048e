/*
 * $variables (vars.h): the list, the parser, the values and the expander.
 */
#include "server/core/vars.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/ssl.h>

#include "server/core/conf.h"
#include "server/core/map.h"
#include "server/core/regex.h"

#include "connmgr/proxy_protocol.h"

/* Every variable by name, with the users that expand it. */
#define USERS(r, p, t) ((r) << PT_VARS_RETURN | (p) << PT_VARS_PROXY | (t) << PT_VARS_TRY_FILES)
/* A zone's key may name what tells requests apart, not what only the proxy knows. */
#define KEY (1u << PT_VARS_ZONE_KEY)
static const struct {
    const char *name;
    pt_var_id id;
    unsigned users;
} vars[] = {
    {"host", PT_VAR_HOST, USERS(1, 1, 0) | KEY},
    {"http_host", PT_VAR_HTTP_HOST, USERS(0, 1, 0) | KEY},
    {"remote_addr", PT_VAR_REMOTE_ADDR, USERS(1, 1, 0) | KEY},
    {"remote_port", PT_VAR_REMOTE_PORT, USERS(1, 1, 0) | KEY},
    {"scheme", PT_VAR_SCHEME, USERS(1, 1, 0) | KEY},
    {"request_uri", PT_VAR_REQUEST_URI, USERS(1, 1, 0) | KEY},
    {"uri", PT_VAR_URI, USERS(1, 1, 1) | KEY},
    {"args", PT_VAR_ARGS, USERS(0, 1, 0) | KEY},
    {"query_string", PT_VAR_QUERY_STRING, USERS(0, 1, 0) | KEY},
    {"server_port", PT_VAR_SERVER_PORT, USERS(0, 1, 0) | KEY},
    {"request_method", PT_VAR_REQUEST_METHOD, USERS(0, 1, 0) | KEY},
    {"is_args", PT_VAR_IS_ARGS, USERS(1, 1, 0) | KEY},
    {"limit_rate", PT_VAR_LIMIT_RATE, USERS(0, 1, 0)},
    {"proxy_host", PT_VAR_PROXY_HOST, USERS(0, 1, 0)},
    {"proxy_add_x_forwarded_for", PT_VAR_PROXY_ADD_X_FORWARDED_FOR, USERS(0, 1, 0)},
    {"realip_remote_addr", PT_VAR_REALIP_REMOTE_ADDR, USERS(1, 1, 0)},
    {"realip_remote_port", PT_VAR_REALIP_REMOTE_PORT, USERS(1, 1, 0)},
    {"proxy_protocol_addr", PT_VAR_PROXY_PROTOCOL_ADDR, USERS(1, 1, 0)},
    {"proxy_protocol_port", PT_VAR_PROXY_PROTOCOL_PORT, USERS(1, 1, 0)},
    {"proxy_protocol_server_addr", PT_VAR_PROXY_PROTOCOL_SERVER_ADDR, USERS(1, 1, 0)},
    {"proxy_protocol_server_port", PT_VAR_PROXY_PROTOCOL_SERVER_PORT, USERS(1, 1, 0)},
    {"binary_remote_addr", PT_VAR_BINARY_REMOTE_ADDR, KEY},
    {"server_name", PT_VAR_SERVER_NAME, KEY},
    {"document_root", PT_VAR_DOCUMENT_ROOT, USERS(1, 1, 1)},
    {"realpath_root", PT_VAR_REALPATH_ROOT, USERS(1, 1, 1)},
    {"request_filename", PT_VAR_REQUEST_FILENAME, USERS(1, 1, 1)},
    /* a log line's own (PT_VARS_LOG names every variable) */
    {"status", PT_VAR_STATUS, USERS(0, 0, 0)},
    {"request", PT_VAR_REQUEST, USERS(0, 0, 0)},
    {"server_protocol", PT_VAR_SERVER_PROTOCOL, USERS(0, 0, 0)},
    {"remote_user", PT_VAR_REMOTE_USER, USERS(0, 0, 0)},
    {"time_local", PT_VAR_TIME_LOCAL, USERS(0, 0, 0)},
    {"time_iso8601", PT_VAR_TIME_ISO8601, USERS(0, 0, 0)},
    {"msec", PT_VAR_MSEC, USERS(0, 0, 0)},
    {"request_time", PT_VAR_REQUEST_TIME, USERS(0, 0, 0)},
    {"bytes_sent", PT_VAR_BYTES_SENT, USERS(0, 0, 0)},
    {"body_bytes_sent", PT_VAR_BODY_BYTES_SENT, USERS(0, 0, 0)},
    {"request_length", PT_VAR_REQUEST_LENGTH, USERS(0, 0, 0)},
    {"connection", PT_VAR_CONNECTION, USERS(0, 0, 0)},
    {"connection_requests", PT_VAR_CONNECTION_REQUESTS, USERS(0, 0, 0)},
    {"pipe", PT_VAR_PIPE, USERS(0, 0, 0)},
    {"http2", PT_VAR_HTTP2, USERS(0, 0, 0)},
    {"ssl_protocol", PT_VAR_SSL_PROTOCOL, USERS(0, 0, 0)},
    {"ssl_cipher", PT_VAR_SSL_CIPHER, USERS(0, 0, 0)},
    {"upstream_addr", PT_VAR_UPSTREAM_ADDR, USERS(0, 0, 0)},
    {"upstream_status", PT_VAR_UPSTREAM_STATUS, USERS(0, 0, 0)},
    {"upstream_response_time", PT_VAR_UPSTREAM_RESPONSE_TIME, USERS(0, 0, 0)},
};
static const unsigned http_users = USERS(0, 1, 0) | KEY;       /* $http_NAME */
static const unsigned arg_cookie_users = USERS(1, 1, 0) | KEY; /* $arg_NAME, $cookie_NAME */

static bool name_char(unsigned char c)
{
    return isalnum(c) || c == '_';
}

pt_var_ref pt_var_parse(const char *p)
{
    pt_var_ref r = {.id = PT_VAR_UNKNOWN};
    bool braced = p[1] == '{';
    const char *name = p + 1 + braced;
    size_t n = 0;
    while (name_char((unsigned char)name[n]))
        n++;
    r.name = (pt_str){name, n};
    r.malformed = n == 0 || (braced && name[n] != '}');
    r.len = 1 + braced + n + (braced && name[n] == '}');
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (pt_str_eq(r.name, vars[i].name))
            r.id = vars[i].id;
    if (r.id == PT_VAR_UNKNOWN && n > 5 && strncmp(name, "http_", 5) == 0)
        r.id = PT_VAR_HTTP_;
    if (r.id == PT_VAR_UNKNOWN && n > 4 && strncmp(name, "arg_", 4) == 0)
        r.id = PT_VAR_ARG_;
    if (r.id == PT_VAR_UNKNOWN && n > 7 && strncmp(name, "cookie_", 7) == 0)
        r.id = PT_VAR_COOKIE_;
    if (r.id == PT_VAR_UNKNOWN && !braced && name[0] >= '0' && name[0] <= '9') {
        /* "$1x" is $1 then "x", as in nginx */
        r.name.len = 1;
        r.len = 2;
        r.malformed = false;
        r.id = PT_VAR_CAPTURE;
    } else if (r.id == PT_VAR_UNKNOWN && braced && n == 1 && name[0] >= '0' && name[0] <= '9') {
        r.id = PT_VAR_CAPTURE;
    }
    return r;
}

bool pt_var_allowed(pt_var_user user, pt_var_id id)
{
    if (id == PT_VAR_USER)
        return true;
    /* A log line may tell anything about its request (the proxy's own are empty there). */
    if (user == PT_VARS_LOG)
        return id != PT_VAR_TEXT && id != PT_VAR_UNKNOWN;
    /* A script's texts too, but the proxy's own: they are known only to the proxy's texts. */
    if (user == PT_VARS_SCRIPT)
        return id != PT_VAR_TEXT && id != PT_VAR_UNKNOWN && id != PT_VAR_PROXY_HOST &&
               id != PT_VAR_PROXY_ADD_X_FORWARDED_FOR;
    if (id == PT_VAR_HTTP_)
        return http_users >> user & 1;
    if (id == PT_VAR_ARG_ || id == PT_VAR_COOKIE_)
        return arg_cookie_users >> user & 1;
    if (id == PT_VAR_CAPTURE)
        return true; /* every text that names variables may name captures */
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (vars[i].id == id)
            return vars[i].users >> user & 1;
    return false;
}

size_t pt_var_remote_addr(const pt_request *req, char *buf, size_t cap)
{
    return pt_var_addr(req->peer, buf, cap);
}

size_t pt_var_addr(const struct sockaddr *sa, char *buf, size_t cap)
{
    if (sa && sa->sa_family == AF_INET && cap >= INET_ADDRSTRLEN) {
        /* By hand: inet_ntop goes through sprintf, and the proxy asks twice per request. */
        const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        char *q = buf;
        for (int i = 0; i < 4; i++) {
            unsigned v = b[i];
            if (v >= 100)
                *q++ = (char)('0' + v / 100);
            if (v >= 10)
                *q++ = (char)('0' + v / 10 % 10);
            *q++ = (char)('0' + v % 10);
            *q++ = i < 3 ? '.' : '\0';
        }
        return (size_t)(q - buf - 1);
    }
    if (sa && sa->sa_family == AF_INET6 &&
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)cap))
        return strlen(buf);
    return (size_t)snprintf(buf, cap, "unix");
}

static unsigned port_of(const struct sockaddr *sa)
{
    if (sa && sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa && sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

/* The address bytes of `sa`, as nginx's $binary_remote_addr; an IPv4 client seen on an IPv6
 * socket (::ffff:a.b.c.d) is the IPv4 one, so it has one key whichever socket it came by. */
static pt_str binary_addr(const struct sockaddr *sa)
{
    if (sa && sa->sa_family == AF_INET)
        return (pt_str){(const char *)&((const struct sockaddr_in *)sa)->sin_addr, 4};
    if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            return (pt_str){(const char *)a->s6_addr + 12, 4};
        return (pt_str){(const char *)a->s6_addr, 16};
    }
    return (pt_str){"", 0};
}

static pt_str number(unsigned v, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%u", v);
    return (pt_str){buf, n < 0 ? 0 : (size_t)n};
}

/* Seconds with milliseconds ("12.345"), never negative. */
static pt_str seconds(double t, char *buf, size_t cap)
{
    uint64_t ms = t > 0 ? (uint64_t)(t * 1000 + 0.5) : 0;
    int n = snprintf(buf, cap, "%" PRIu64 ".%03u", ms / 1000, (unsigned)(ms % 1000));
    return (pt_str){buf, n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1};
}

/* The ISO 8601 local time of the second `now`, formatted once a second (per thread). */
static pt_str iso8601(time_t now)
{
    static _Thread_local struct {
        time_t second;
        size_t len;
        char s[32];
    } c = {-1, 0, ""};
    if (now != c.second) {
        struct tm tm;
        localtime_r(&now, &tm);
        char z[8];
        strftime(z, sizeof z, "%z", &tm); /* +0600, which ISO 8601 writes +06:00 */
        c.len = strftime(c.s, sizeof c.s, "%Y-%m-%dT%H:%M:%S", &tm);
        c.len += (size_t)snprintf(c.s + c.len, sizeof c.s - c.len, "%.3s:%.2s", z, z + 3);
        c.second = now;
    }
    return (pt_str){c.s, c.len};
}

/* The proxy's attempts, one field each, ", " between (`what`: 0 addr, 1 status, 2 time). */
static pt_str upstream_list(const pt_request *req, int what, char *buf, size_t cap)
{
    const pt_upstream_tries *u = req->upstream;
    size_t pos = 0, n = u ? (u->n < PT_UPSTREAM_TRIES ? u->n : PT_UPSTREAM_TRIES) : 0;
    for (size_t i = 0; i < n; i++) {
        char one[64];
        pt_str v;
        if (what == 0)
            v = (pt_str){u->t[i].addr, strlen(u->t[i].addr)};
        else if (what == 1)
            v = u->t[i].status ? number((unsigned)u->t[i].status, one, sizeof one)
                               : (pt_str){"-", 1};
        else
            v = seconds((u->t[i].end ? u->t[i].end : ev_now(req->loop)) - u->t[i].start, one,
                        sizeof one);
        if (i)
            pos = PT_APPEND_LIT(buf, pos, cap, ", ");
        pos = pt_append(buf, pos, cap, v.p, v.len);
    }
    return (pt_str){buf, pos < cap ? pos : cap};
}

/* The first argument `name` of `query` ("a=1&b=2"), names compared ignoring case as nginx's;
 * an argument without '=' has an empty value. */
static pt_str arg_value(pt_str query, pt_str name)
{
    const char *p = query.p, *end = query.p + query.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *key_end = eq ? eq : stop;
        if ((size_t)(key_end - p) == name.len && strncasecmp(p, name.p, name.len) == 0)
            return eq ? (pt_str){eq + 1, (size_t)(stop - eq - 1)} : (pt_str){"", 0};
        p = stop + 1;
    }
    return (pt_str){"", 0};
}

/* The cookie `name` of the request's Cookie lines ("a=1; b=2"), as nginx finds it. */
static pt_str cookie_value(const pt_request *req, pt_str name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const pt_header *h = &req->headers[i];
        if (!pt_str_ieq(h->name, "cookie"))
            continue;
        const char *p = h->value.p, *end = h->value.p + h->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';' || *p == '\t'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *stop = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            if (eq && (size_t)(eq - p) == name.len && strncasecmp(p, name.p, name.len) == 0) {
                const char *v = eq + 1, *ve = stop;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                return (pt_str){v, (size_t)(ve - v)};
            }
            p = stop;
        }
    }
    return (pt_str){"", 0};
}

/* $realpath_root: the directory of `fr` with its symbolic links resolved (realpath(3) on each
 * call, as nginx's); empty when it cannot be resolved. */
static pt_str realpath_root(const pt_file_root *fr, char *buf, size_t cap)
{
    char real[PATH_MAX];
    if (!fr || !realpath(fr->dir.p, real))
        return (pt_str){"", 0};
    size_t n = strlen(real);
    return (pt_str){buf, pt_append(buf, 0, cap, real, n) < cap ? n : cap};
}

/* $request_filename: root + $uri, or for an alias its directory + what follows the path it
 * replaces (empty when $uri, rewritten, is not under that path), one '/' between. */
static pt_str request_filename(const pt_request *req, char *buf, size_t cap)
{
    const pt_file_root *fr = req->file_root;
    if (!fr)
        return (pt_str){"", 0};
    pt_str rest = req->norm_path, dir = fr->dir;
    if (fr->alias.len) {
        if (rest.len < fr->alias.len || memcmp(rest.p, fr->alias.p, fr->alias.len) != 0)
            return (pt_str){"", 0};
        rest.p += fr->alias.len;
        rest.len -= fr->alias.len;
    }
    if (dir.len && dir.p[dir.len - 1] == '/')
        dir.len--; /* "/" */
    size_t pos = pt_append(buf, 0, cap, dir.p, dir.len);
    /* "/i/" aliased to /d: "/i/a" is /d/a and "/i/" itself /d/ */
    bool slash = rest.len ? rest.p[0] != '/'
                          : !dir.len || (fr->alias.len && fr->alias.p[fr->alias.len - 1] == '/');
    if (slash)
        pos = PT_APPEND_LIT(buf, pos, cap, "/");
    pos = pt_append(buf, pos, cap, rest.p, rest.len);
    return (pt_str){buf, pos < cap ? pos : cap};
}

/* A port variable: empty for none (0), as nginx's. */
static pt_str port_value(const struct sockaddr *sa, char *buf, size_t cap)
{
    unsigned port = port_of(sa);
    return port ? number(port, buf, cap) : (pt_str){"", 0};
}

/* The PROXY header's source (or with `server`, its destination); NULL: none. */
static const struct sockaddr *proxied(const pt_request *req, bool server)
{
    if (!req->proxied)
        return NULL;
    return server ? &req->proxied->dst.sa : &req->proxied->src.sa;
}

/* ---- the conf's own variables ---- */

/* A request's value of one of the conf's own variables. */
typedef enum slot_state {
    SLOT_NONE,  /* not set, or its map not computed yet */
    SLOT_VALUE, /* `p` and `len` hold it */
    SLOT_BUSY,  /* its map is being computed: a read from inside it reads empty */
} slot_state;

struct pt_var_slot {
    const char *p; /* in the arena, or the conf's text */
    size_t len;
    slot_state state;
};

long pt_var_find(const pt_conf_vars *own, pt_str name)
{
    for (size_t i = 0; own && i < own->n; i++)
        if (pt_str_eq(name, own->list[i].name))
            return (long)i;
    return -1;
}

void pt_var_resolve(const pt_conf_vars *own, pt_var_ref *ref)
{
    long id = ref->id == PT_VAR_UNKNOWN ? pt_var_find(own, ref->name) : -1;
    if (id >= 0) {
        ref->id = PT_VAR_USER;
        ref->index = (size_t)id;
    }
}

/* The slots of `req`, made (all empty) on first use; NULL when the conf has no variables of
 * its own, or out of memory. */
static struct pt_var_slot *slots(pt_request *req)
{
    if (!req->var_slots && req->vars && req->vars->n) {
        size_t size = req->vars->n * sizeof *req->var_slots;
        req->var_slots = pt_request_alloc(req, size);
        if (req->var_slots)
            memset(req->var_slots, 0, size);
    }
    return req->var_slots;
}

/* An expansion into a buffer of `cap` bytes; `pos` counts on past it. */
typedef struct sized {
    char *buf;
    size_t pos, cap;
} sized;

static void put_sized(void *ctx, const pt_var_ref *ref, const char *p, size_t n)
{
    sized *t = ctx;
    if (t->pos < t->cap && n)
        memcpy(t->buf + t->pos, p, n <= t->cap - t->pos ? n : t->cap - t->pos);
    t->pos += n;
}

pt_str pt_vars_expand_arena(pt_request *req, const char *text)
{
    char small[512];
    sized t = {small, 0, sizeof small};
    pt_vars_expand(req, text, put_sized, &t);
    char *out = pt_request_alloc(req, t.pos + 1);
    if (!out)
        return (pt_str){NULL, 0};
    if (t.pos <= sizeof small) {
        memcpy(out, small, t.pos);
    } else {
        /* longer than the stack's room: expanded again, into the arena (a map read the first
         * time is kept, so both passes read the same values) */
        size_t want = t.pos;
        t = (sized){out, 0, want};
        pt_vars_expand(req, text, put_sized, &t);
        t.pos = t.pos < want ? t.pos : want;
    }
    out[t.pos] = '\0';
    return (pt_str){out, t.pos};
}

/* The text of `text` for `req`, expanded in its arena unless it names no variable. */
static pt_str value_of(pt_request *req, const char *text, bool *failed)
{
    if (!strchr(text, '$'))
        return (pt_str){text, strlen(text)};
    pt_str v = pt_vars_expand_arena(req, text);
    *failed = v.p == NULL;
    return v.p ? v : (pt_str){"", 0};
}

int pt_var_set(pt_request *req, size_t id, const char *text)
{
    struct pt_var_slot *s = slots(req);
    bool failed = false;
    pt_str v = value_of(req, text, &failed);
    if (!s || id >= req->vars->n || failed)
        return -ENOMEM;
    s[id] = (struct pt_var_slot){v.p, v.len, SLOT_VALUE};
    return 0;
}

/* The value `m` gives `req`: its source expanded and looked up, the entry's value expanded
 * (with a regex entry's captures as $1, $name). */
static pt_str map_value(pt_request *req, const pt_conf_map *m)
{
    bool failed = false;
    pt_str src = value_of(req, m->source, &failed);
    if (m->hostnames && src.len && src.p[src.len - 1] == '.')
        src.len--;
    pt_captures caps;
    bool limit_hit;
    const pt_conf_map_entry *e = pt_map_find(m, src, &caps, &limit_hit);
    if (limit_hit) {
        /* to the server's error log (pt_request_log is response.c's, above this file) */
        pt_log_error_to(req->error_log, req->error_level, PT_LOG_ERROR,
                        "map \"%s\" at %s:%d: the regex match limit was hit, request: \"%.*s\"",
                        m->source, m->file, m->line, (int)req->target.len, req->target.p);
        req->vars_failed = true;
        return (pt_str){"", 0};
    }
    const char *text = e ? e->value : m->default_value;
    if (!text)
        return (pt_str){"", 0};
    if (!e || !e->re)
        return value_of(req, text, &failed);
    /* the entry's own captures, for its value only (the request's stay the request's) */
    struct pt_captures *saved = req->captures;
    req->captures = &caps;
    pt_str v = value_of(req, text, &failed);
    req->captures = saved;
    return v;
}

/* The value of the conf's own variable `id` for `req`: set's, or its map's, computed now if
 * not yet (the request is changed behind its const: only its values' cache). */
static pt_str user_value(const pt_request *creq, size_t id)
{
    pt_request *req = (pt_request *)creq;
    struct pt_var_slot *s = slots(req);
    if (!s || id >= req->vars->n)
        return (pt_str){"", 0};
    s += id;
    long map = req->vars->list[id].map;
    if (s->state == SLOT_VALUE)
        return (pt_str){s->p, s->len};
    if (s->state == SLOT_BUSY || map < 0)
        return (pt_str){"", 0};
    const pt_conf_map *m = &req->vars->maps[map];
    s->state = SLOT_BUSY;
    pt_str v = map_value(req, m);
    *s = m->volatile_ ? (struct pt_var_slot){NULL, 0, SLOT_NONE}
                      : (struct pt_var_slot){v.p, v.len, SLOT_VALUE};
    return v;
}

pt_str pt_var_value(const pt_request *req, const pt_var_ref *ref, char *buf, size_t cap)
{
    socklen_t own_len;
    switch (ref->id) {
    case PT_VAR_HOST: {
        pt_str h = pt_host_name(req->host);
        if (!h.len)
            h = req->server_name;
        if (h.len > cap)
            h.len = cap;
        for (size_t i = 0; i < h.len; i++)
            buf[i] = (char)pt_ascii_lower((unsigned char)h.p[i]);
        return (pt_str){buf, h.len};
    }
    case PT_VAR_HTTP_HOST:
        return req->host;
    case PT_VAR_REMOTE_ADDR:
        return (pt_str){buf, pt_var_remote_addr(req, buf, cap)};
    case PT_VAR_REMOTE_PORT:
        return port_value(req->peer, buf, cap);
    case PT_VAR_REALIP_REMOTE_ADDR:
        return (pt_str){buf, pt_var_addr(pt_request_conn_peer(req, &own_len), buf, cap)};
    case PT_VAR_REALIP_REMOTE_PORT:
        return port_value(pt_request_conn_peer(req, &own_len), buf, cap);
    case PT_VAR_PROXY_PROTOCOL_ADDR:
    case PT_VAR_PROXY_PROTOCOL_SERVER_ADDR: {
        const struct sockaddr *sa = proxied(req, ref->id == PT_VAR_PROXY_PROTOCOL_SERVER_ADDR);
        return sa ? (pt_str){buf, pt_var_addr(sa, buf, cap)} : (pt_str){"", 0};
    }
    case PT_VAR_PROXY_PROTOCOL_PORT:
    case PT_VAR_PROXY_PROTOCOL_SERVER_PORT:
        return port_value(proxied(req, ref->id == PT_VAR_PROXY_PROTOCOL_SERVER_PORT), buf, cap);
    case PT_VAR_SCHEME: {
        const char *s = pt_request_scheme(req);
        return (pt_str){s, strlen(s)};
    }
    case PT_VAR_REQUEST_URI: {
        /* an absolute-form target loses its scheme and authority */
        const char *end = req->target.p + req->target.len;
        if (req->path.p >= req->target.p && req->path.p <= end)
            return (pt_str){req->path.p, (size_t)(end - req->path.p)};
        return req->target;
    }
    case PT_VAR_URI:
        return req->norm_path;
    case PT_VAR_ARGS:
    case PT_VAR_QUERY_STRING:
        return req->query;
    case PT_VAR_SERVER_PORT: {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        unsigned port = 0;
        if (pt_request_local(req, &ss, &len) == 0)
            port = port_of((const struct sockaddr *)&ss);
        return number(port, buf, cap);
    }
    case PT_VAR_REQUEST_METHOD:
        return req->method;
    case PT_VAR_LIMIT_RATE: {
        int n = snprintf(buf, cap, "%llu", (unsigned long long)req->limit_rate);
        return (pt_str){buf, n < 0 ? 0 : (size_t)n};
    }
    case PT_VAR_BINARY_REMOTE_ADDR:
        return binary_addr(req->peer);
    case PT_VAR_SERVER_NAME:
        return req->server_name;
    case PT_VAR_ARG_:
        return arg_value(req->query, (pt_str){ref->name.p + 4, ref->name.len - 4});
    case PT_VAR_COOKIE_:
        return cookie_value(req, (pt_str){ref->name.p + 7, ref->name.len - 7});
    case PT_VAR_IS_ARGS:
        return req->query.len ? PT_STR_LIT("?") : (pt_str){"", 0};
    case PT_VAR_HTTP_: {
        /* $http_x_real_ip: the header X-Real-IP */
        size_t n = ref->name.len - 5 < cap - 1 ? ref->name.len - 5 : cap - 1;
        for (size_t i = 0; i < n; i++)
            buf[i] = ref->name.p[5 + i] == '_' ? '-' : ref->name.p[5 + i];
        buf[n] = '\0';
        const pt_header *h = pt_request_header(req, buf);
        return h ? h->value : (pt_str){"", 0};
    }
    case PT_VAR_STATUS:
        return (pt_str){buf, pt_append_uint(buf, 0, cap, (unsigned)req->status)};
    case PT_VAR_REQUEST: {
        size_t pos = pt_append(buf, 0, cap, req->method.p, req->method.len);
        pos = PT_APPEND_LIT(buf, pos, cap, " ");
        pos = pt_append(buf, pos, cap, req->target.p, req->target.len);
        char v[16];
        int n = snprintf(v, sizeof v, " HTTP/%d.%d", req->version_major, req->version_minor);
        pos = pt_append(buf, pos, cap, v, (size_t)n);
        return (pt_str){buf, pos < cap ? pos : cap};
    }
    case PT_VAR_SERVER_PROTOCOL: {
        int n = snprintf(buf, cap, "HTTP/%d.%d", req->version_major, req->version_minor);
        return (pt_str){buf, (size_t)n};
    }
    case PT_VAR_REMOTE_USER:
        return req->remote_user;
    case PT_VAR_TIME_LOCAL: {
        const pt_clock *c = pt_clock_at((time_t)ev_now(req->loop));
        return (pt_str){c->local, strlen(c->local)};
    }
    case PT_VAR_TIME_ISO8601:
        return iso8601((time_t)ev_now(req->loop));
    case PT_VAR_MSEC:
        return seconds(ev_now(req->loop), buf, cap);
    case PT_VAR_REQUEST_TIME:
        return seconds(ev_now(req->loop) - req->start, buf, cap);
    case PT_VAR_BYTES_SENT:
        return (pt_str){buf,
                        pt_append_uint(buf, 0, cap, req->head_bytes_sent + req->body_bytes_sent)};
    case PT_VAR_BODY_BYTES_SENT:
        return (pt_str){buf, pt_append_uint(buf, 0, cap, req->body_bytes_sent)};
    case PT_VAR_REQUEST_LENGTH:
        return (pt_str){buf, pt_append_uint(buf, 0, cap, req->request_length)};
    case PT_VAR_CONNECTION:
        return (pt_str){buf, pt_append_uint(buf, 0, cap, req->connection)};
    case PT_VAR_CONNECTION_REQUESTS:
        return number(req->connection_requests, buf, cap);
    case PT_VAR_PIPE:
        return req->pipelined ? PT_STR_LIT("p") : PT_STR_LIT(".");
    case PT_VAR_HTTP2:
        if (req->version_major != 2)
            return (pt_str){"", 0};
        return req->tls ? PT_STR_LIT("h2") : PT_STR_LIT("h2c");
    case PT_VAR_SSL_PROTOCOL: {
        const char *v = req->ssl ? SSL_get_version(req->ssl) : "";
        return (pt_str){v, strlen(v)};
    }
    case PT_VAR_SSL_CIPHER: {
        const char *v = req->ssl ? SSL_get_cipher_name(req->ssl) : NULL;
        return v ? (pt_str){v, strlen(v)} : (pt_str){"", 0};
    }
    case PT_VAR_UPSTREAM_ADDR:
        return upstream_list(req, 0, buf, cap);
    case PT_VAR_UPSTREAM_STATUS:
        return upstream_list(req, 1, buf, cap);
    case PT_VAR_UPSTREAM_RESPONSE_TIME:
        return upstream_list(req, 2, buf, cap);
    case PT_VAR_DOCUMENT_ROOT:
        return req->file_root ? req->file_root->dir : (pt_str){"", 0};
    case PT_VAR_REALPATH_ROOT:
        return realpath_root(req->file_root, buf, cap);
    case PT_VAR_REQUEST_FILENAME:
        return request_filename(req, buf, cap);
    case PT_VAR_CAPTURE:
        return pt_captures_group(req->captures, (unsigned)(ref->name.p[0] - '0'));
    case PT_VAR_USER:
        return user_value(req, ref->index);
    case PT_VAR_UNKNOWN: {
        long id = req->vars ? pt_var_find(req->vars, ref->name) : -1;
        if (id >= 0)
            return user_value(req, (size_t)id);
        bool found;
        return pt_captures_named(req->captures, ref->name, &found);
    }
    default:
        return (pt_str){"", 0};
    }
}

void pt_vars_expand(const pt_request *req, const char *text, pt_var_put put, void *ctx)
{
    static const pt_var_ref literal = {.id = PT_VAR_TEXT};
    char buf[PATH_MAX]; /* a file's name ($request_filename) fits whole */
    for (const char *p = text; *p;) {
        if (*p != '$') {
            const char *d = strchr(p, '$');
            size_t n = d ? (size_t)(d - p) : strlen(p);
            put(ctx, &literal, p, n);
            p += n;
            continue;
        }
        pt_var_ref ref = pt_var_parse(p);
        pt_str v = pt_var_value(req, &ref, buf, sizeof buf);
        put(ctx, &ref, v.p, v.len);
        p += ref.len;
    }
}
