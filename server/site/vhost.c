/*
 * Sites and their virtual hosts (site.h): which vhost a Host names, and whether a site's
 * listeners accept.
 */
#include <strings.h>

#include "server/core/compress.h"
#include "server/core/regex.h"
#include "server/site/site.h"

/* How well `name` (a server_name, not a regex) matches `host`: 0 not at all; else a rank where
 * an exact match beats every leading wildcard ("*.example.com", ".example.com"), the longer
 * the better, and those beat every trailing one ("mail.*"), the longer the better. */
static size_t name_rank(const char *name, pt_str host)
{
    enum { EXACT = (size_t)1 << 40, LEADING = (size_t)1 << 20 };
    size_t n = strlen(name);
    if (name[0] == '*' && name[1] == '.') /* "*.example.com": subdomains only */
        return host.len > n - 1 && strncasecmp(host.p + host.len - (n - 1), name + 1, n - 1) == 0
                   ? LEADING + n
                   : 0;
    if (name[0] == '.') /* ".example.com": the domain and its subdomains */
        return (host.len == n - 1 && strncasecmp(host.p, name + 1, n - 1) == 0) ||
                       (host.len > n && strncasecmp(host.p + host.len - n, name, n) == 0)
                   ? LEADING + n
                   : 0;
    if (n > 2 && name[n - 1] == '*' && name[n - 2] == '.') /* "mail.*" */
        return host.len > n - 1 && strncasecmp(host.p, name, n - 1) == 0 ? n : 0;
    return host.len == n && strncasecmp(host.p, name, n) == 0 ? EXACT : 0;
}

/* nginx's order: the exact name; the longest leading wildcard; the longest trailing one; the
 * first regex in the conf's order (its captures kept in `req`, when there is one). */
const pt_vhost *pt_site_select(const pt_site *site, pt_str host, pt_request *req)
{
    if (site->nvhosts == 1 || host.len == 0)
        return site->default_vhost;
    pt_str h = pt_host_name(host);
    const pt_vhost *best = NULL;
    size_t best_rank = 0;
    for (size_t i = 0; i < site->nvhosts; i++) {
        const pt_conf_server *cs = site->vhosts[i]->conf;
        for (size_t k = 0; k < cs->nnames; k++) {
            if (cs->names[k][0] == '~')
                continue;
            size_t rank = name_rank(cs->names[k], h);
            if (rank > best_rank) {
                best_rank = rank;
                best = site->vhosts[i];
            }
        }
    }
    if (best)
        return best;
    for (size_t i = 0; i < site->nvhosts; i++) {
        const pt_conf_server *cs = site->vhosts[i]->conf;
        for (size_t k = 0; k < cs->nname_regexes; k++) {
            pt_captures caps;
            int m = pt_regex_match(cs->name_regexes[k], h.p, h.len, &caps);
            if (m == 1) {
                if (req)
                    pt_request_keep_captures(req, &caps);
                return site->vhosts[i];
            }
            if (m < 0)
                pt_log_error(PT_LOG_ERROR, "server_name \"~%s\": the regex match limit was hit",
                             pt_regex_pattern(cs->name_regexes[k]));
        }
    }
    return site->default_vhost;
}

void pt_site_update_accepting(pt_site *site)
{
    bool pause = site->mgr_full || site->handshakes_full;
    for (size_t k = 0; k < site->nlisteners; k++) {
        if (!site->listeners || !site->listeners[k])
            continue;
        if (pause)
            pt_listener_pause(site->listeners[k]);
        else
            pt_listener_resume(site->listeners[k]);
    }
}

void pt_vhost_apply(const pt_vhost *vh, pt_request *req)
{
    req->vhost = vh;
    req->server_name = vh->server_name;
    req->limits = &vh->limits;
    req->access_logs = vh->access_logs;
    req->naccess_logs = vh->naccess_logs;
    req->error_log = vh->error_log;
    req->error_level = vh->error_level;
    req->server_tokens = vh->conf->server_tokens;
    req->sendfile = vh->conf->sendfile;
    req->compress = vh->compress;
    req->respond_via = req->compress ? pt_compress_respond : NULL;
    req->vars = vh->conf->vars;
    req->stats = vh->stats.server ? &vh->stats : NULL;
}
