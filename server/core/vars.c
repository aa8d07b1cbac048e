/*
 * $variables (vars.h): the list, the parser, the values and the expander.
 */
#include "server/core/vars.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "connmgr/proxy_protocol.h"

/* Every variable by name, with the users that expand it. */
#define USERS(r, p, t) ((r) << PT_VARS_RETURN | (p) << PT_VARS_PROXY | (t) << PT_VARS_TRY_FILES)
static const struct {
    const char *name;
    pt_var_id id;
    unsigned users;
} vars[] = {
    {"host", PT_VAR_HOST, USERS(1, 1, 0)},
    {"http_host", PT_VAR_HTTP_HOST, USERS(0, 1, 0)},
    {"remote_addr", PT_VAR_REMOTE_ADDR, USERS(1, 1, 0)},
    {"remote_port", PT_VAR_REMOTE_PORT, USERS(1, 1, 0)},
    {"scheme", PT_VAR_SCHEME, USERS(1, 1, 0)},
    {"request_uri", PT_VAR_REQUEST_URI, USERS(1, 1, 0)},
    {"uri", PT_VAR_URI, USERS(1, 1, 1)},
    {"args", PT_VAR_ARGS, USERS(0, 1, 0)},
    {"query_string", PT_VAR_QUERY_STRING, USERS(0, 1, 0)},
    {"server_port", PT_VAR_SERVER_PORT, USERS(0, 1, 0)},
    {"request_method", PT_VAR_REQUEST_METHOD, USERS(0, 1, 0)},
    {"proxy_host", PT_VAR_PROXY_HOST, USERS(0, 1, 0)},
    {"proxy_add_x_forwarded_for", PT_VAR_PROXY_ADD_X_FORWARDED_FOR, USERS(0, 1, 0)},
    {"realip_remote_addr", PT_VAR_REALIP_REMOTE_ADDR, USERS(1, 1, 0)},
    {"realip_remote_port", PT_VAR_REALIP_REMOTE_PORT, USERS(1, 1, 0)},
    {"proxy_protocol_addr", PT_VAR_PROXY_PROTOCOL_ADDR, USERS(1, 1, 0)},
    {"proxy_protocol_port", PT_VAR_PROXY_PROTOCOL_PORT, USERS(1, 1, 0)},
    {"proxy_protocol_server_addr", PT_VAR_PROXY_PROTOCOL_SERVER_ADDR, USERS(1, 1, 0)},
    {"proxy_protocol_server_port", PT_VAR_PROXY_PROTOCOL_SERVER_PORT, USERS(1, 1, 0)},
};
static const unsigned http_users = USERS(0, 1, 0); /* $http_NAME */

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
    return r;
}

bool pt_var_allowed(pt_var_user user, pt_var_id id)
{
    if (id == PT_VAR_HTTP_)
        return http_users >> user & 1;
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

static pt_str number(unsigned v, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%u", v);
    return (pt_str){buf, n < 0 ? 0 : (size_t)n};
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
    case PT_VAR_HTTP_: {
        /* $http_x_real_ip: the header X-Real-IP */
        size_t n = ref->name.len - 5 < cap - 1 ? ref->name.len - 5 : cap - 1;
        for (size_t i = 0; i < n; i++)
            buf[i] = ref->name.p[5 + i] == '_' ? '-' : ref->name.p[5 + i];
        buf[n] = '\0';
        const pt_header *h = pt_request_header(req, buf);
        return h ? h->value : (pt_str){"", 0};
    }
    default:
        return (pt_str){"", 0};
    }
}

void pt_vars_expand(const pt_request *req, const char *text, pt_var_put put, void *ctx)
{
    static const pt_var_ref literal = {.id = PT_VAR_TEXT};
    char buf[256];
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
