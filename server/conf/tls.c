/*
 * The TLS module of the conf: the ssl_* directives (server/site/tls_ctx.c makes the contexts
 * from them). Values OpenSSL itself would refuse at start-up (protocols, cipher lists) are
 * checked here, so `porter -t` reports them with their place; once a server is read, its
 * certificates and keys must pair up, and a server listening with `ssl` must have some.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server/conf/directives.h"
#include "server/conf/mem.h"
#include "server/site/tls_ctx.h"

/* `ssl_certificate FILE;` and `ssl_certificate_key FILE;`: repeatable; the first at a level
 * replaces what the level inherited, as with add_header. */
static int set_ssl_file(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    pt_conf_value v = pt_conf_word_value(cx, d, 1);
    int rc = pt_conf_add_ssl_file(cx->conf, field, aux, cx->first, &v);
    if (rc == 0 && cx->first && strcmp(d->w[0].s, "ssl_certificate") == 0) {
        /* where the certificates were named, for what is found wrong with them later */
        pt_conf_ssl *ssl = (pt_conf_ssl *)((char *)field - offsetof(pt_conf_ssl, certs));
        ssl->cert_file = d->file;
        ssl->cert_line = d->w[0].line;
        ssl->cert_col = d->w[0].col;
    }
    return rc;
}

int pt_conf_add_ssl_file(const pt_conf *c, char ***files, size_t *n, bool replace,
                         const pt_conf_value *v)
{
    if (!v->s[0])
        return pt_conf_refuse(v, "invalid path \"\" in \"%s\"", v->name);
    if (strncmp(v->s, "data:", 5) == 0 || strncmp(v->s, "engine:", 7) == 0 || strchr(v->s, '$'))
        return pt_conf_refuse(v, "\"%s\" takes a file name", v->name);
    if (replace)
        strv_clear(files, n);
    *PUSH(*files, *n) = pt_conf_path_join(c->prefix, v->s);
    return 0;
}

/* `ssl_protocols TLSv1.2 TLSv1.3;`: older protocols are refused by name. */
static int set_ssl_protocols(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    char why[160];
    int lo, hi;
    for (size_t i = 1; i < d->nw; i++) {
        const char *w = d->w[i].s;
        if (pt_tls_parse_protocols(&w, 1, &lo, &hi, why, sizeof why) < 0)
            return pt_conf_bad(cx, d, i, "%s in \"ssl_protocols\"", why);
    }
    const char *words[8];
    size_t n = 0;
    for (size_t i = 1; i < d->nw && n < 8; i++)
        words[n++] = d->w[i].s;
    pt_tls_parse_protocols(words, n, &lo, &hi, why, sizeof why);
    *(int *)field = lo;
    *(int *)aux = hi;
    return 0;
}

/* ssl_ciphers and ssl_ciphersuites are checked by OpenSSL itself, so a typo is reported here
 * with its position instead of when the server starts. */
static int set_ssl_cipher_list(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    bool suites = strcmp(d->w[0].s, "ssl_ciphersuites") == 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        oom();
    int ok =
        suites ? SSL_CTX_set_ciphersuites(ctx, arg1(d)) : SSL_CTX_set_cipher_list(ctx, arg1(d));
    SSL_CTX_free(ctx);
    ERR_clear_error();
    if (ok != 1)
        return pt_conf_bad(cx, d, 1, "invalid value \"%s\" in \"%s\": no cipher %s", arg1(d),
                           d->w[0].s, suites ? "suite recognised" : "matches");
    return pt_conf_set_string(cx, d, field, aux);
}

/* `ssl_session_cache off | none | builtin[:N] | shared:NAME:SIZE ...;` porter keeps the cache in
 * each process (session tickets resume across workers); shared:NAME:SIZE counts as SIZE / 256
 * sessions, nginx's rule of thumb. With several forms the largest wins. */
static int set_ssl_session_cache(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    size_t *v = field, most = 0;
    for (size_t i = 1; i < d->nw; i++) {
        const char *a = d->w[i].s;
        uint64_t n;
        size_t bytes;
        const char *colon;
        if (strcmp(a, "off") == 0 || strcmp(a, "none") == 0) {
            if (d->nw > 2)
                return pt_conf_bad(cx, d, i, "\"%s\" must be alone in \"ssl_session_cache\"", a);
            n = 0;
        } else if (strcmp(a, "builtin") == 0) {
            n = 20480;
        } else if (strncmp(a, "builtin:", 8) == 0) {
            if (pt_conf_parse_uint(a + 8, SIZE_MAX, &n) < 0)
                return pt_conf_bad(cx, d, i, "invalid session cache size \"%s\"", a);
        } else if (strncmp(a, "shared:", 7) == 0 && (colon = strrchr(a, ':')) > a + 7 &&
                   pt_parse_size(colon + 1, &bytes) == 0) {
            n = bytes / PT_CONF_SSL_SESSION_BYTES;
            if (n == 0)
                return pt_conf_bad(cx, d, i, "session cache \"%s\" is too small", a);
        } else {
            return pt_conf_bad(cx, d, i, "invalid session cache \"%s\"", a);
        }
        if (n > most)
            most = (size_t)n;
    }
    *v = most;
    return 0;
}

/* A count where 0 would stop the address for good. */
static int set_max_handshakes(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux)
{
    int rc = pt_conf_set_count(cx, d, field, aux);
    if (rc == 0 && *(size_t *)field == 0)
        return pt_conf_bad(cx, d, 1, "invalid value \"0\" in \"%s\"", d->w[0].s);
    return rc;
}

/* Certificates and keys pair up; a server listening with `ssl` has at least one pair. */
static int check_certificates(pt_conf_loader *cx, pt_conf_server *s)
{
    const pt_conf_ssl *ssl = &s->ssl;
    if (ssl->ncerts > ssl->nkeys)
        return pt_conf_fail(cx, -EINVAL, ssl->cert_file, ssl->cert_line, ssl->cert_col,
                            "no \"ssl_certificate_key\" is defined for certificate \"%s\"",
                            ssl->certs[ssl->nkeys]);
    if (ssl->nkeys > ssl->ncerts)
        return pt_conf_fail(cx, -EINVAL, s->file, s->line, s->col,
                            "\"ssl_certificate_key\" \"%s\" has no \"ssl_certificate\"",
                            ssl->keys[ssl->ncerts]);
    for (size_t i = 0; i < s->nlistens && !ssl->ncerts; i++) {
        const pt_conf_listen *l = &s->listens[i];
        if (l->ssl)
            return pt_conf_fail(cx, -EINVAL, l->file, l->line, l->col,
                                "no \"ssl_certificate\" is defined for the \"listen ... ssl\" "
                                "directive");
    }
    return 0;
}

static const pt_conf_directive directives[] = {
    {"ssl_certificate", C_ANY, F_MULTI, 1, 1, set_ssl_file, BOTH(ssl.certs), BOTH(ssl.ncerts)},
    {"ssl_certificate_key", C_ANY, F_MULTI, 1, 1, set_ssl_file, BOTH(ssl.keys), BOTH(ssl.nkeys)},
    {"ssl_protocols", C_ANY, 0, 1, -1, set_ssl_protocols, BOTH(ssl.min_version),
     BOTH(ssl.max_version)},
    {"ssl_ciphers", C_ANY, 0, 1, 1, set_ssl_cipher_list, BOTH(ssl.ciphers)},
    {"ssl_ciphersuites", C_ANY, 0, 1, 1, set_ssl_cipher_list, BOTH(ssl.ciphersuites)},
    {"ssl_prefer_server_ciphers", C_ANY, 0, 1, 1, pt_conf_set_flag,
     BOTH(ssl.prefer_server_ciphers)},
    {"ssl_session_cache", C_ANY, 0, 1, 2, set_ssl_session_cache, BOTH(ssl.session_cache)},
    {"ssl_session_timeout", C_ANY, 0, 1, 1, pt_conf_set_positive_time, BOTH(ssl.session_timeout)},
    {"ssl_session_tickets", C_ANY, 0, 1, 1, pt_conf_set_flag, BOTH(ssl.session_tickets)},
    {"ssl_session_ticket_rotate", C_TOP, 0, 1, 1, pt_conf_set_positive_time,
     TOP(ssl_ticket_rotate)},
    {"ssl_handshake_timeout", C_ANY, 0, 1, 1, pt_conf_set_time, BOTH(ssl.handshake_timeout)},
    {"ssl_max_handshakes", C_ANY, 0, 1, 1, set_max_handshakes, BOTH(ssl.max_handshakes)},
};

const pt_conf_module pt_conf_tls_module = {
    .directives = directives,
    .ndirectives = sizeof directives / sizeof *directives,
    .server_done = check_certificates,
};
