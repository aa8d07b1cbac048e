/*
 * Sites and their virtual hosts (site.h): which vhost a Host names, and whether a site's
 * listeners accept.
 */
#include <strings.h>

#include "server/core/compress.h"
#include "server/site/site.h"

static bool host_matches(const char *name, pt_str host)
{
    size_t n = strlen(name);
    if (name[0] == '*' && name[1] == '.') /* "*.example.com" */
        return host.len > n - 1 && strncasecmp(host.p + host.len - (n - 1), name + 1, n - 1) == 0;
    if (name[0] == '.') /* ".example.com": the domain and its subdomains */
        return (host.len == n - 1 && strncasecmp(host.p, name + 1, n - 1) == 0) ||
               (host.len > n && strncasecmp(host.p + host.len - n, name, n) == 0);
    return host.len == n && strncasecmp(host.p, name, n) == 0;
}

const pt_vhost *pt_site_select(const pt_site *site, pt_str host)
{
    if (site->nvhosts == 1 || host.len == 0)
        return site->default_vhost;
    pt_str h = pt_host_name(host);
    for (size_t i = 0; i < site->nvhosts; i++) {
        const pt_conf_server *cs = site->vhosts[i]->conf;
        for (size_t k = 0; k < cs->nnames; k++)
            if (cs->names[k][0] != '*' && cs->names[k][0] != '.' && host_matches(cs->names[k], h))
                return site->vhosts[i];
    }
    for (size_t i = 0; i < site->nvhosts; i++) {
        const pt_conf_server *cs = site->vhosts[i]->conf;
        for (size_t k = 0; k < cs->nnames; k++)
            if ((cs->names[k][0] == '*' || cs->names[k][0] == '.') && host_matches(cs->names[k], h))
                return site->vhosts[i];
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
}
