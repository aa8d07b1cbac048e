/*
 * The access phase (access.h): allow/deny, auth_basic and satisfy.
 */
#include "server/site/access.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "server/core/cidr.h"
#include "server/core/htpasswd.h"
#include "server/core/workpool.h"
#include "server/site/guard.h"
#include "server/site/location.h"
#include "server/site/site.h"

/* Passwords found right are remembered this long, in this many places (a new one takes the
 * place of whatever its key falls on). */
#define REMEMBER_SECONDS 60.0
#define REMEMBER_SLOTS 64

/* A remembered check: the HMAC of (user, password, stored hash) under the state's key. The
 * stored hash is in it, so a user file changed by a reload matches nothing remembered. */
typedef struct remembered {
    unsigned char mac[32];
    double until;
} remembered;

struct pt_access_state {
    struct ev_loop *loop;
    pt_workpool *pool;
    unsigned char key[32]; /* random, this server's */
    remembered slots[REMEMBER_SLOTS];
};

/* ---- the state ---- */

static void state_release(void *data)
{
    pt_access_state *s = data;
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

int pt_access_state_new(pt_access_state **out, struct ev_loop *loop, pt_custodian *owner)
{
    *out = NULL;
    pt_access_state *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    /* registered before the pool: released after it, whose last jobs may still remember */
    if (!pt_custodian_register(owner, state_release, s)) {
        free(s);
        return -ECANCELED;
    }
    s->loop = loop;
    if (RAND_bytes(s->key, sizeof s->key) != 1)
        return -EIO; /* the custodian frees it */
    int rc = pt_workpool_new(&s->pool, loop, owner);
    if (rc < 0)
        return rc;
    *out = s;
    return 0;
}

size_t pt_access_pending(const pt_access_state *s)
{
    return pt_workpool_pending(s->pool);
}

/* The key under which a check of `pass` for `u` is remembered, in `mac`; false when there is
 * none (a name or hash too long for the buffer, HMAC failing): then nothing is looked up or
 * remembered. */
static bool remember_key(const pt_access_state *s, const pt_htpasswd_user *u, pt_str pass,
                         unsigned char mac[32])
{
    /* user NUL password NUL hash: no two triples give the same bytes (a name has no NUL, and
     * a password with one is never right) */
    char buf[3 * PT_CREDENTIALS_MAX];
    if (u->name_len + pass.len + u->hash_len + 2 > sizeof buf)
        return false;
    size_t n = 0;
    memcpy(buf, u->name, u->name_len);
    n += u->name_len;
    buf[n++] = '\0';
    memcpy(buf + n, pass.p, pass.len);
    n += pass.len;
    buf[n++] = '\0';
    memcpy(buf + n, u->hash, u->hash_len);
    n += u->hash_len;
    unsigned len = 0;
    bool ok = HMAC(EVP_sha256(), s->key, sizeof s->key, (const unsigned char *)buf, n, mac, &len) &&
              len == 32;
    OPENSSL_cleanse(buf, n);
    return ok;
}

static bool remembered_right(pt_access_state *s, const unsigned char mac[32])
{
    const remembered *r = &s->slots[mac[0] % REMEMBER_SLOTS];
    return r->until > ev_now(s->loop) && CRYPTO_memcmp(r->mac, mac, 32) == 0;
}

static void remember(pt_access_state *s, const unsigned char mac[32])
{
    remembered *r = &s->slots[mac[0] % REMEMBER_SLOTS];
    memcpy(r->mac, mac, 32);
    r->until = ev_now(s->loop) + REMEMBER_SECONDS;
}

/* Whether a check with a hash of `s` costs more than remembering it (an HMAC): MD5-crypt's
 * thousand rounds and the slow hashes do; {PLAIN}, {SHA} and {SSHA} are a digest or two. */
static bool worth_remembering(pt_pw_scheme s)
{
    return s != PT_PW_PLAIN && s != PT_PW_SHA && s != PT_PW_SSHA;
}

/* ---- allow / deny ---- */

enum { NO_RULE, ALLOWED, DENIED };

/* The first rule of `a` that holds the client's address: allowed or denied, or NO_RULE. */
static int by_address(const pt_conf_access *a, const pt_request *req)
{
    if (!a->nrules)
        return NO_RULE;
    pt_cidr_client c;
    pt_cidr_client_of(req->peer, req->peerlen, &c);
    /* nginx takes a mapped address as IPv4 when the list holds IPv4 rules */
    bool as_v4 = c.mapped && a->rules_v4;
    for (size_t i = 0; i < a->nrules; i++)
        if (pt_cidr_match(&a->rules[i].range, &c, as_v4))
            return a->rules[i].deny ? DENIED : ALLOWED;
    return NO_RULE;
}

/* ---- auth_basic ---- */

/* A job of the work pool: a slow hash to check, for a request held meanwhile. */
typedef struct check_job {
    pt_work work;
    pt_access_state *state;
    pt_request *req;           /* NULL once the request ended */
    pt_custodian_entry *entry; /* on the request's custodian */
    const pt_conf_access *access;
    const pt_htpasswd_user *user;
    int result; /* pt_htpasswd_verify's */
    bool keyed; /* mac holds the key to remember it under */
    unsigned char mac[32];
    size_t len;
    char pass[]; /* wiped once checked */
} check_job;

/* Writes the user name `s` for a log line: printable ASCII as it is, other bytes and the
 * quote as \xHH, cut at a length a log line can hold. */
static void loggable(pt_str s, char *out, size_t cap)
{
    size_t k = 0, i = 0;
    /* each byte takes 4 characters at most; room is kept for "..." and the NUL */
    for (; i < s.len && k + 4 <= cap - 4; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            k += (size_t)snprintf(out + k, 5, "\\x%02X", c);
        else
            out[k++] = (char)c;
    }
    if (i < s.len) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

/* The 401 that asks for credentials again. */
static int challenge(pt_request *req, const pt_conf_access *a)
{
    req->www_authenticate = (pt_str){a->challenge, strlen(a->challenge)};
    return 401;
}

/* What the check of the password of `u` (`result`: pt_htpasswd_verify's) answers. */
static int judged(pt_request *req, const pt_conf_access *a, const pt_htpasswd_user *u, int result)
{
    if (result == 1)
        return PT_GUARD_PASS;
    char name[160];
    loggable((pt_str){u->name, u->name_len}, name, sizeof name);
    if (result < 0) {
        pt_request_log(req, PT_LOG_ERROR, "user \"%s\": the password cannot be checked: %s", name,
                       strerror(-result));
        return 500;
    }
    pt_request_log(req, PT_LOG_ERROR, "user \"%s\": password mismatch", name);
    return challenge(req, a);
}

static void job_run(pt_work *w)
{
    check_job *j = (check_job *)w;
    j->result = pt_htpasswd_verify(j->user, j->pass, j->len);
    OPENSSL_cleanse(j->pass, j->len);
}

static void job_free(check_job *j)
{
    OPENSSL_cleanse(j, sizeof *j + j->len);
    free(j);
}

static void job_done(pt_work *w)
{
    check_job *j = (check_job *)w;
    int result = w->status < 0 ? w->status : j->result;
    if (result == 1 && j->keyed)
        remember(j->state, j->mac);
    pt_request *req = j->req;
    if (!req) {
        job_free(j); /* the request ended meanwhile: the result goes nowhere */
        return;
    }
    pt_custodian_unregister(j->entry);
    int verdict = judged(req, j->access, j->user, result);
    job_free(j);
    pt_guard_resume(req, verdict);
}

/* The request ended while its password was being checked: a job not started yet is taken
 * back, one running finishes and is dropped. */
static void job_detach(void *data)
{
    check_job *j = data;
    j->req = NULL;
    j->entry = NULL;
    if (pt_workpool_cancel(j->state->pool, &j->work))
        job_free(j);
}

/* Hands the check of `pass` for `u` to the work pool and holds the request. */
static int check_later(pt_request *req, const pt_conf_access *a, const pt_htpasswd_user *u,
                       pt_str pass, bool keyed, const unsigned char mac[32])
{
    pt_access_state *s = req->vhost->access_state;
    check_job *j = malloc(sizeof *j + pass.len + 1);
    if (!j)
        return 500;
    *j = (check_job){
        .work = {.run = job_run, .done = job_done},
        .state = s,
        .req = req,
        .access = a,
        .user = u,
        .keyed = keyed,
        .len = pass.len,
    };
    memcpy(j->mac, mac, 32);
    memcpy(j->pass, pass.p, pass.len);
    j->pass[pass.len] = '\0';
    pt_custodian *owner = pt_request_custodian(req);
    j->entry = owner ? pt_custodian_register(owner, job_detach, j) : NULL;
    int rc = j->entry ? pt_workpool_submit(s->pool, &j->work) : -ENOMEM;
    if (rc < 0) {
        pt_custodian_unregister(j->entry);
        job_free(j);
        pt_request_log(req, PT_LOG_ERROR, "the password cannot be checked: %s", strerror(-rc));
        return 500;
    }
    return PT_GUARD_WAIT;
}

/* auth_basic for `req`: PT_GUARD_PASS, 401, 500 or PT_GUARD_WAIT (a slow hash). */
static int by_password(pt_request *req, const pt_conf_access *a)
{
    const pt_header *h = pt_request_header(req, "authorization");
    char buf[PT_CREDENTIALS_MAX];
    pt_str user, pass;
    if (!h || pt_htpasswd_credentials(h->value, buf, sizeof buf, &user, &pass) < 0) {
        pt_request_log(req, PT_LOG_INFO, "no user/password was provided for basic authentication");
        return challenge(req, a);
    }
    /* $remote_user: the name sent, whatever the password (nginx's) */
    char *name_copy = pt_request_alloc(req, user.len + 1);
    if (name_copy) {
        memcpy(name_copy, user.p, user.len);
        name_copy[user.len] = '\0';
        req->remote_user = (pt_str){name_copy, user.len};
    }
    int verdict;
    const pt_htpasswd_user *u = pt_htpasswd_find(a->users, user.p, user.len);
    if (!u) {
        char name[160];
        loggable(user, name, sizeof name);
        pt_request_log(req, PT_LOG_ERROR, "user \"%s\" was not found in \"%s\"", name,
                       a->user_file);
        verdict = challenge(req, a);
    } else if (!worth_remembering(u->scheme)) {
        verdict = judged(req, a, u, pt_htpasswd_verify(u, pass.p, pass.len));
    } else {
        pt_access_state *st = req->vhost->access_state;
        unsigned char mac[32];
        bool keyed = remember_key(st, u, pass, mac);
        if (keyed && remembered_right(st, mac)) {
            verdict = PT_GUARD_PASS;
        } else if (pt_pw_scheme_slow(u->scheme)) {
            verdict = check_later(req, a, u, pass, keyed, mac);
        } else {
            int result = pt_htpasswd_verify(u, pass.p, pass.len);
            if (result == 1 && keyed)
                remember(st, mac);
            verdict = judged(req, a, u, result);
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return verdict;
}

/* ---- the check ---- */

int pt_access_check(pt_request *req)
{
    const pt_conf_access *a = req->location->access;
    if (!a)
        return PT_GUARD_PASS;
    int addr = by_address(a, req);
    bool auth = a->realm && a->users;
    if (a->satisfy == PT_SATISFY_ANY) {
        /* either will do: an allowed address needs no password; a denied one may still give
         * the right one, and is asked for it (nginx answers 401 then, not 403) */
        if (addr == ALLOWED || (!auth && addr == NO_RULE))
            return PT_GUARD_PASS;
        return auth ? by_password(req, a) : 403;
    }
    if (addr == DENIED) {
        pt_request_log(req, PT_LOG_ERROR, "access forbidden by rule");
        return 403;
    }
    return auth ? by_password(req, a) : PT_GUARD_PASS;
}
