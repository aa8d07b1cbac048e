/*
 * Basic authentication's data: a user file as Apache's htpasswd writes it (auth_basic_user_file),
 * the password hashes it may hold, and the credentials a request carries.
 *
 * A user file is read once, when the conf is loaded (at start and on reload), never per
 * request: "user:hash" lines, with anything after a second ':' ignored (Apache's comment field),
 * empty lines and lines starting with '#' skipped. A line without a ':', without a user name or
 * without a hash, or a hash porter cannot check, is an error "FILE:LINE: reason". The hashes:
 *
 *   $2y$, $2b$, $2a$   bcrypt (htpasswd -B)                 libcrypt, slow by design
 *   $6$, $5$           SHA-512-crypt, SHA-256-crypt (-5, -2)  libcrypt
 *   $apr1$             Apache's MD5 (htpasswd's default)     here, on OpenSSL's MD5
 *   $1$                MD5-crypt (openssl passwd -1)         here: the same algorithm
 *   {SHA}              base64 of SHA-1 (htpasswd -s)         here, OpenSSL
 *   {SSHA}             base64 of SHA-1(password salt) salt  here, OpenSSL
 *   {PLAIN}            the password itself                   here
 *   $y$, $gy$, $7$...  what else libcrypt holds current (yescrypt, scrypt), slow
 *
 * Traditional DES crypt (htpasswd -d: 8 characters of the password count, and it falls to brute
 * force in hours) and libcrypt's other legacy methods are refused with the line's place, as is
 * a password stored as plain text without {PLAIN}.
 *
 * Verifying compares in constant time (CRYPTO_memcmp). The slow hashes (pt_pw_scheme_slow)
 * take tens of milliseconds each and must not run on the loop's thread.
 *
 * Ownership: a pt_htpasswd is counted (a conf's levels share one file's table) and owns its
 * text, which it wipes when freed. Threading: a table is read-only once made; verifying may run
 * on any thread.
 */
#ifndef PORTER_SERVER_CORE_HTPASSWD_H
#define PORTER_SERVER_CORE_HTPASSWD_H

#include <stdbool.h>
#include <stddef.h>

#include "server/core/str.h"

typedef enum pt_pw_scheme {
    PT_PW_PLAIN,  /* {PLAIN} */
    PT_PW_SHA,    /* {SHA} */
    PT_PW_SSHA,   /* {SSHA} */
    PT_PW_APR1,   /* $apr1$ */
    PT_PW_MD5,    /* $1$ */
    PT_PW_SHA256, /* $5$ */
    PT_PW_SHA512, /* $6$ */
    PT_PW_BCRYPT, /* $2a$, $2b$, $2y$ */
    PT_PW_CRYPT,  /* another method libcrypt holds current */
} pt_pw_scheme;

/* Whether checking a password against a hash of `s` takes long enough (milliseconds and more)
 * to be done off the loop's thread: bcrypt, SHA-crypt (whose rounds the hash chooses) and the
 * other libcrypt methods. */
static inline bool pt_pw_scheme_slow(pt_pw_scheme s)
{
    return s >= PT_PW_SHA256;
}

/* One user of a file: its name and hash (NUL-terminated, in the table's text). */
typedef struct pt_htpasswd_user {
    const char *name;
    size_t name_len;
    const char *hash;
    size_t hash_len;
    pt_pw_scheme scheme;
    unsigned line; /* where it is in the file */
    /* What verifying reads, decoded at load: {SHA} and {SSHA}'s bytes (digest, then salt). */
    const unsigned char *raw;
    size_t raw_len;
} pt_htpasswd_user;

typedef struct pt_htpasswd {
    unsigned refs;
    char *path; /* the file's name, as messages give it */
    char *text; /* the file's bytes, ':' and line ends turned into NULs */
    size_t text_len;
    unsigned char *raw;      /* decoded hashes, each user's `raw` pointing in */
    pt_htpasswd_user *users; /* sorted by name; of a name written twice, the first line */
    size_t nusers;
} pt_htpasswd;

/* Reads the user file `path` into a new table (*out, one reference). Returns 0, or a negative
 * errno with "PATH: reason" (the file cannot be read) or "PATH:LINE: reason" (a line is
 * malformed) in `err`. */
int pt_htpasswd_load(pt_htpasswd **out, const char *path, char *err, size_t errlen);

/* The same for `len` bytes of `text` (copied), named `name` in messages. */
int pt_htpasswd_parse(pt_htpasswd **out, const char *name, const char *text, size_t len, char *err,
                      size_t errlen);

/* Another reference to `h` / drops one (the last frees the table, wiping its text). NULL: no-op.
 * Not thread-safe: only the conf's loading and freeing count. */
pt_htpasswd *pt_htpasswd_ref(pt_htpasswd *h);
void pt_htpasswd_unref(pt_htpasswd *h);

/* The user `name` (`len` bytes) of `h`, or NULL. */
const pt_htpasswd_user *pt_htpasswd_find(const pt_htpasswd *h, const char *name, size_t len);

/* Checks the password `pw` (`len` bytes) against the hash of `u`: 1 when it matches, 0 when it
 * does not (a password holding a NUL byte never does: libcrypt would read only what precedes
 * it), or -ENOMEM / -EINVAL when it cannot be checked (libcrypt refused the hash). */
int pt_htpasswd_verify(const pt_htpasswd_user *u, const char *pw, size_t len);

/* The longest user:password pair pt_htpasswd_credentials() decodes. */
#define PT_CREDENTIALS_MAX 1024

/* Reads the value of an Authorization header, "Basic BASE64(user:password)" (the scheme's name
 * in any case, spaces after it), into `buf` (`cap` bytes, PT_CREDENTIALS_MAX suffice) and points
 * *user and *pass into it. Returns 0, or -EINVAL when the value is not Basic credentials: another
 * scheme, invalid base64, no ':', an empty user name, longer than `cap` (as nginx: no user and
 * password were given). */
int pt_htpasswd_credentials(pt_str value, char *buf, size_t cap, pt_str *user, pt_str *pass);

/* Decodes standard base64 (RFC 4648 section 4, padding optional) of `len` bytes at `s` into
 * `out` (`cap` bytes; len * 3 / 4 suffice). Returns the number of bytes, or -EINVAL (a byte out
 * of the alphabet, a misplaced '=', a length no encoding has) or -ENOSPC. */
long pt_base64_decode(const char *s, size_t len, unsigned char *out, size_t cap);

/* Computes the MD5-crypt of `pw` with `magic` ("$1$" or "$apr1$") and `salt` (up to its first
 * '$', at most 8 characters) into `out` (`cap` bytes; 64 suffice): magic, salt, '$', 22
 * characters. Returns its length, or a negative errno. */
int pt_md5_crypt(const char *pw, size_t len, const char *magic, const char *salt, char *out,
                 size_t cap);

#endif
