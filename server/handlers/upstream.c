/*
 * Upstreams at run time: the registry, server choice and passive health (see upstream.h).
 */
#include "server/handlers/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connmgr/limits.h"
#include "connmgr/tls.h"
#include "server/core/log.h"

struct pt_upstreams {
    struct ev_loop *loop;
    const pt_conf *conf;
    pt_custodian *custodian;
    pt_upstream **list;
    size_t n;
};

/* ---- proxy_pass URLs ---- */

int pt_proxy_url_parse(const char *url, pt_proxy_url *out, const char **why)
{
    memset(out, 0, sizeof *out);
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        rest = url + 8;
        out->tls = true;
    } else {
        *why = "the URL must start with \"http://\" or \"https://\"";
        return -EINVAL;
    }
    const char *end;
    if (strncmp(rest, "unix:", 5) == 0) {
        /* nginx's form: the path ends at the next ':' */
        end = strchr(rest + 5, ':');
        if (!end || end == rest + 5) {
            *why = "a unix socket path must end with \":\" (\"http://unix:/run/app.sock:\")";
            return -EINVAL;
        }
        if ((size_t)(end - rest) >= sizeof out->name) {
            *why = "the unix socket path is too long";
            return -EINVAL;
        }
        memcpy(out->name, rest, (size_t)(end - rest));
        end++;
    } else {
        end = rest + strcspn(rest, "/?#");
        if (end == rest) {
            *why = "no host in the URL";
            return -EINVAL;
        }
        if ((size_t)(end - rest) >= sizeof out->name) {
            *why = "the host is too long";
            return -EINVAL;
        }
        memcpy(out->name, rest, (size_t)(end - rest));
    }
    if (*end == '?' || *end == '#') {
        *why = "a query or fragment is not allowed in the URL";
        return -EINVAL;
    }
    out->uri = *end ? end : NULL;
    return 0;
}

/* ---- server choice and health ---- */

static bool peer_down(const pt_upstream *up, const pt_upstream_peer *p, double now)
{
    return up->npeers > 1 && p->down_until > now;
}

pt_upstream_peer *pt_upstream_pick(pt_upstream *up, uint64_t tried, double now)
{
    pt_upstream_peer *best = NULL, *soonest = NULL;
    int total = 0;
    for (size_t i = 0; i < up->npeers; i++) {
        pt_upstream_peer *p = &up->peers[i];
        if (tried & (UINT64_C(1) << i))
            continue;
        if (peer_down(up, p, now)) {
            if (!soonest || p->down_until < soonest->down_until)
                soonest = p;
            continue;
        }
        /* Smooth weighted round-robin: each turn every candidate gains its weight, the one
         * ahead is chosen and pays the total back. */
        p->current_weight += p->weight;
        total += p->weight;
        if (!best || p->current_weight > best->current_weight)
            best = p;
    }
    if (best) {
        best->current_weight -= total;
        return best;
    }
    /* Every untried server is down: rather than fail without trying, try the one that comes
     * back first. */
    return soonest;
}

void pt_upstream_peer_failed(pt_upstream *up, pt_upstream_peer *p, double now)
{
    if (p->max_fails == 0 || up->npeers < 2)
        return;
    if (now - p->fail_checked > p->fail_timeout)
        p->fails = 0;
    p->fail_checked = now;
    if (++p->fails >= (unsigned)p->max_fails && p->down_until <= now) {
        p->down_until = now + p->fail_timeout;
        pt_log_error(PT_LOG_WARN, "upstream server %s of \"%s\" temporarily disabled for %gs",
                     p->name, up->name, p->fail_timeout);
    }
}

void pt_upstream_peer_ok(pt_upstream_peer *p)
{
    p->fails = 0;
}

/* ---- the registry ---- */

/* The parent shut down first: what lives under the custodian is released already. */
static void upstreams_release(void *data)
{
    pt_upstreams *u = data;
    u->custodian = NULL;
}

int pt_upstreams_new(pt_upstreams **out, struct ev_loop *loop, pt_custodian *parent,
                     const pt_conf *conf)
{
    *out = NULL;
    pt_upstreams *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->loop = loop;
    u->conf = conf;
    u->custodian = pt_custodian_new(parent);
    if (!u->custodian) {
        free(u);
        return -ECANCELED;
    }
    pt_custodian_register(u->custodian, upstreams_release, u);
    *out = u;
    return 0;
}

static void upstream_free(pt_upstream *up)
{
    for (size_t i = 0; i < up->npeers; i++) {
        pt_pool_free(up->peers[i].pool);
        SSL_SESSION_free(up->peers[i].session);
    }
    pt_connector_free(up->connector);
    SSL_CTX_free(up->ssl_ctx);
    free(up->peers);
    free(up->own_name);
    free(up->key);
    free(up);
}

void pt_upstreams_free(pt_upstreams *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++)
        upstream_free(u->list[i]);
    pt_custodian_shutdown(u->custodian);
    free(u->list);
    free(u);
}

static const pt_conf_upstream *find_block(const pt_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->nupstreams; i++)
        if (strcmp(conf->upstreams[i].name, name) == 0)
            return &conf->upstreams[i];
    return NULL;
}

/* Fills peer `p` from its address; `dflt_port` for one written without a port. */
static int peer_init(pt_upstream *up, pt_upstream_peer *p, const char *address, uint16_t dflt_port,
                     const pt_pool_options *po)
{
    int r = pt_authority_parse(&p->authority, address, strlen(address), dflt_port);
    if (r < 0)
        return r;
    pt_authority_format(&p->authority, p->name, sizeof p->name);
    /* The name a certificate is checked against: the host as written; for a unix socket the
     * upstream's own name. */
    p->tls_name = p->authority.kind == PT_AUTHORITY_UNIX ? up->name : p->authority.host;
    p->weight = 1;
    p->max_fails = 1;
    p->fail_timeout = PT_CONF_UPSTREAM_FAIL_TIMEOUT;
    return pt_pool_new(&p->pool, up->connector, &p->authority, po);
}

static pt_upstream *upstream_new(pt_upstreams *u, const char *key, const pt_proxy_url *url,
                                 const pt_conf_proxy *px, const pt_conf_location *lc, char *err,
                                 size_t errlen)
{
    const pt_conf_upstream *block = find_block(u->conf, url->name);
    pt_upstream *up = calloc(1, sizeof *up);
    if (!up)
        goto oom;
    up->key = strdup(key);
    up->tls = url->tls;
    up->verify = px->ssl_verify;
    up->server_name = px->ssl_server_name;
    size_t n = block ? block->nservers : 1;
    up->peers = calloc(n, sizeof *up->peers);
    if (!up->key || !up->peers)
        goto oom;
    /* An address in proxy_pass names itself. */
    up->own_name = block ? NULL : strdup(url->name);
    if (!block && !up->own_name)
        goto oom;
    up->name = block ? block->name : up->own_name;
    pt_connector_options co;
    pt_connector_options_init(&co);
    co.custodian = u->custodian;
    int r = pt_connector_new(&up->connector, u->loop, &co);
    if (r < 0)
        goto oom;
    if (up->tls) {
        char why[256];
        up->ssl_ctx = pt_tls_client_ctx_new(px->ssl_trusted_certificate, why, sizeof why);
        if (!up->ssl_ctx) {
            snprintf(err, errlen, "%s:%d:%d: proxy_ssl_trusted_certificate: %s", lc->file, lc->line,
                     lc->col, why);
            upstream_free(up);
            return NULL;
        }
    }
    pt_pool_options po;
    pt_pool_options_init(&po);
    po.max_idle = block ? block->keepalive : PT_CONF_UPSTREAM_KEEPALIVE;
    po.idle_timeout = block ? block->keepalive_timeout : PT_CONF_UPSTREAM_KEEPALIVE_TIMEOUT;
    po.max_requests = block ? block->keepalive_requests : PT_CONF_UPSTREAM_KEEPALIVE_REQUESTS;
    up->npeers = n;
    uint16_t dflt_port = url->tls && !block ? 443 : 80;
    for (size_t i = 0; i < n; i++) {
        pt_upstream_peer *p = &up->peers[i];
        const char *addr = block ? block->servers[i].address : url->name;
        if ((r = peer_init(up, p, addr, dflt_port, &po)) < 0) {
            const char *file = block ? block->servers[i].file : px->pass_file;
            int line = block ? block->servers[i].line : px->pass_line;
            int col = block ? block->servers[i].col : px->pass_col;
            snprintf(err, errlen, "%s:%d:%d: invalid upstream address \"%s\"", file, line, col,
                     addr);
            upstream_free(up);
            return NULL;
        }
        if (block) {
            p->weight = block->servers[i].weight;
            p->max_fails = block->servers[i].max_fails;
            p->fail_timeout = block->servers[i].fail_timeout;
        }
    }
    return up;
oom:
    snprintf(err, errlen, "%s:%d:%d: out of memory", lc->file, lc->line, lc->col);
    if (up)
        upstream_free(up);
    return NULL;
}

pt_upstream *pt_upstreams_get(pt_upstreams *u, const pt_conf_proxy *px, const pt_conf_location *lc,
                              char *err, size_t errlen)
{
    pt_proxy_url url;
    const char *why = "";
    if (pt_proxy_url_parse(px->pass, &url, &why) < 0) {
        snprintf(err, errlen, "%s:%d:%d: invalid URL \"%s\" in \"proxy_pass\": %s", px->pass_file,
                 px->pass_line, px->pass_col, px->pass, why);
        return NULL;
    }
    char key[1024];
    snprintf(key, sizeof key, "%s|%d|%d|%d|%s", url.name, url.tls, url.tls && px->ssl_verify,
             url.tls && px->ssl_server_name,
             url.tls && px->ssl_trusted_certificate ? px->ssl_trusted_certificate : "");
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->list[i]->key, key) == 0)
            return u->list[i];
    pt_upstream **list = realloc(u->list, (u->n + 1) * sizeof *list);
    if (!list) {
        snprintf(err, errlen, "%s:%d:%d: out of memory", lc->file, lc->line, lc->col);
        return NULL;
    }
    u->list = list;
    pt_upstream *up = upstream_new(u, key, &url, px, lc, err, errlen);
    if (!up)
        return NULL;
    u->list[u->n++] = up;
    return up;
}

/* ---- porter -t ---- */

static int check_trusted(const pt_conf_proxy *px, const char *file, int line, int col, char *err,
                         size_t errlen)
{
    if (!px->pass || !px->ssl_trusted_certificate)
        return 0;
    char why[256];
    SSL_CTX *ctx = pt_tls_client_ctx_new(px->ssl_trusted_certificate, why, sizeof why);
    if (!ctx) {
        snprintf(err, errlen, "%s:%d:%d: proxy_ssl_trusted_certificate: %s", file, line, col, why);
        return -EINVAL;
    }
    SSL_CTX_free(ctx);
    return 0;
}

int pt_upstreams_check(const pt_conf *conf, char *err, size_t errlen)
{
    for (size_t s = 0; s < conf->nservers; s++) {
        const pt_conf_server *cs = &conf->servers[s];
        for (size_t i = 0; i < cs->nlocations; i++) {
            const pt_conf_location *lc = &cs->locations[i];
            if (lc->handler != PT_HANDLER_PROXY)
                continue;
            int r = check_trusted(&lc->proxy, lc->file, lc->line, lc->col, err, errlen);
            if (r < 0)
                return r;
        }
    }
    return 0;
}
