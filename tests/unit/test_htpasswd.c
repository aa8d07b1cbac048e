/* User files and password hashes: every format checked against hashes made here, at run time,
 * by the tools users make them with (Apache's htpasswd, openssl passwd), never by porter; the
 * file's syntax and its refusals with their places; base64; the Authorization header. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/htpasswd.h"
#include "tests/support.h"

/* ---- the tools ---- */

static bool have(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Skips the test, saying why, when `tool` is not installed (scripts/install-deps.sh installs
 * it: apache2-utils for htpasswd, openssl). */
#define NEED(tool)                                                                                 \
    do {                                                                                           \
        if (!have(tool)) {                                                                         \
            print_message("SKIPPED: \"%s\" is not installed (scripts/install-deps.sh installs "    \
                          "it)\n",                                                                 \
                          tool);                                                                   \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* The first line `cmd` prints (a shell command), without its line end; fails the test if it
 * prints none. Static: one at a time. */
static const char *first_line(const char *cmd)
{
    static char line[1024];
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    bool got = fgets(line, sizeof line, f) != NULL;
    pclose(f);
    if (!got)
        fail_msg("no output from: %s", cmd);
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

/* A one-user table from `line` ("user:hash"), which must parse. */
static pt_htpasswd *table_of(const char *line)
{
    pt_htpasswd *h = NULL;
    char err[512] = "";
    int rc = pt_htpasswd_parse(&h, "users", line, strlen(line), err, sizeof err);
    if (rc != 0)
        fail_msg("\"%s\" was refused: %s", line, err);
    assert_int_equal(h->nusers, 1);
    return h;
}

static int verify(const pt_htpasswd_user *u, const char *pw)
{
    return pt_htpasswd_verify(u, pw, strlen(pw));
}

/* The passwords every format is tried with: spaces, UTF-8, shell-safe between single quotes. */
static const char *const passwords[] = {"secret", "pa ss w\xc3\xb6rd", "x", "0123456789abcdefghij"};

/* Checks the user of `line` for `pw`: the right password and no other. */
static void check_right_and_wrong(const char *line, pt_pw_scheme scheme, const char *pw)
{
    pt_htpasswd *h = table_of(line);
    const pt_htpasswd_user *u = &h->users[0];
    assert_int_equal(u->scheme, scheme);
    if (verify(u, pw) != 1)
        fail_msg("\"%s\" did not match %s", pw, line);
    char other[128];
    snprintf(other, sizeof other, "%sx", pw);
    assert_int_equal(verify(u, other), 0);                          /* one more byte */
    assert_int_equal(pt_htpasswd_verify(u, pw, strlen(pw) - 1), 0); /* one less */
    snprintf(other, sizeof other, "%s", pw);
    other[0] ^= 0x20; /* another case */
    assert_int_equal(verify(u, other), 0);
    assert_int_equal(verify(u, ""), 0);
    /* a NUL byte, then what libcrypt would have stopped at */
    memcpy(other, pw, strlen(pw));
    other[strlen(pw)] = '\0';
    other[strlen(pw) + 1] = 'x';
    assert_int_equal(pt_htpasswd_verify(u, other, strlen(pw) + 2), 0);
    pt_htpasswd_unref(h);
}

/* Each password hashed by `cmd_fmt` (a printf format taking the password), checked. */
static void check_tool(const char *cmd_fmt, bool user_line, pt_pw_scheme scheme)
{
    for (size_t i = 0; i < sizeof passwords / sizeof *passwords; i++) {
        char cmd[512], line[1100];
        snprintf(cmd, sizeof cmd, cmd_fmt, passwords[i]);
        const char *out = first_line(cmd);
        if (user_line)
            snprintf(line, sizeof line, "%s", out);
        else
            snprintf(line, sizeof line, "user:%s", out);
        check_right_and_wrong(line, scheme, passwords[i]);
    }
}

/* ---- htpasswd's formats ---- */

static void test_htpasswd_bcrypt(void **state)
{
    NEED("htpasswd");
    /* the lowest cost: the format is what is tested, not the cost */
    check_tool("htpasswd -nbB -C 4 user '%s' 2>/dev/null", true, PT_PW_BCRYPT);
    assert_true(pt_pw_scheme_slow(PT_PW_BCRYPT));
}

static void test_htpasswd_apr1(void **state)
{
    NEED("htpasswd");
    check_tool("htpasswd -nbm user '%s' 2>/dev/null", true, PT_PW_APR1);
    assert_false(pt_pw_scheme_slow(PT_PW_APR1));
}

static void test_htpasswd_sha1(void **state)
{
    NEED("htpasswd");
    check_tool("htpasswd -nbs user '%s' 2>/dev/null", true, PT_PW_SHA);
    assert_false(pt_pw_scheme_slow(PT_PW_SHA));
}

static void test_htpasswd_sha_crypt(void **state)
{
    NEED("htpasswd");
    /* -2 and -5 came with Apache 2.4.59: an older htpasswd prints its usage instead */
    if (system("htpasswd -nb2 user x >/dev/null 2>&1") != 0) {
        print_message("SKIPPED: this htpasswd has no -2/-5 (SHA-crypt)\n");
        skip();
    }
    check_tool("htpasswd -nb2 user '%s' 2>/dev/null", true, PT_PW_SHA256);
    check_tool("htpasswd -nb5 user '%s' 2>/dev/null", true, PT_PW_SHA512);
    check_tool("htpasswd -nb5 -r 1000 user '%s' 2>/dev/null", true, PT_PW_SHA512);
    assert_true(pt_pw_scheme_slow(PT_PW_SHA256));
}

/* htpasswd -d (DES, 8 characters) and -p (plain text, no {PLAIN}) make lines porter refuses,
 * saying where. */
static void test_htpasswd_refused(void **state)
{
    NEED("htpasswd");
    static const struct {
        const char *cmd, *why;
    } cases[] = {
        {"htpasswd -nbd user secret 2>/dev/null", "traditional DES crypt is refused"},
        {"htpasswd -nbp user secret 2>/dev/null", "unknown password hash"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[600];
        snprintf(text, sizeof text, "# made by htpasswd\n%s\n", first_line(cases[i].cmd));
        pt_htpasswd *h = (pt_htpasswd *)1;
        char err[512] = "";
        assert_int_equal(
            pt_htpasswd_parse(&h, "/etc/porter/users", text, strlen(text), err, sizeof err),
            -EINVAL);
        assert_null(h);
        if (strncmp(err, "/etc/porter/users:2: user \"user\": ", 34) != 0 ||
            !strstr(err, cases[i].why))
            fail_msg("%s: %s", cases[i].cmd, err);
    }
}

/* ---- openssl passwd's formats ---- */

static void test_openssl_passwd(void **state)
{
    NEED("openssl");
    check_tool("openssl passwd -1 '%s'", false, PT_PW_MD5);
    check_tool("openssl passwd -apr1 '%s'", false, PT_PW_APR1);
    check_tool("openssl passwd -5 '%s'", false, PT_PW_SHA256);
    check_tool("openssl passwd -6 '%s'", false, PT_PW_SHA512);
    check_tool("openssl passwd -1 -salt '' '%s'", false, PT_PW_MD5);       /* an empty salt */
    check_tool("openssl passwd -1 -salt abcdefgh '%s'", false, PT_PW_MD5); /* the longest */
}

/* {SSHA}: base64 of SHA-1(password salt) and the salt, as LDAP writes it; made here with
 * openssl's SHA-1 and base64. {PLAIN}: written by hand. */
static void test_ssha_and_plain(void **state)
{
    NEED("openssl");
    for (size_t i = 0; i < sizeof passwords / sizeof *passwords; i++) {
        char cmd[512], line[600];
        snprintf(cmd, sizeof cmd,
                 "(printf '%%s' '%sNaCl4u' | openssl dgst -sha1 -binary; printf NaCl4u) | "
                 "openssl base64 -A",
                 passwords[i]);
        snprintf(line, sizeof line, "user:{SSHA}%s", first_line(cmd));
        check_right_and_wrong(line, PT_PW_SSHA, passwords[i]);
        snprintf(line, sizeof line, "user:{PLAIN}%s", passwords[i]);
        check_right_and_wrong(line, PT_PW_PLAIN, passwords[i]);
    }
    /* an empty password is a password too */
    pt_htpasswd *h = table_of("user:{PLAIN}");
    assert_int_equal(verify(&h->users[0], ""), 1);
    assert_int_equal(verify(&h->users[0], " "), 0);
    pt_htpasswd_unref(h);
}

/* What libcrypt holds current beyond the named formats (yescrypt, Debian's default for
 * /etc/shadow), made with libcrypt's own tool where it is installed. */
static void test_other_crypt(void **state)
{
    NEED("mkpasswd");
    char line[600];
    snprintf(line, sizeof line, "user:%s", first_line("mkpasswd -m yescrypt secret"));
    check_right_and_wrong(line, PT_PW_CRYPT, "secret");
}

/* ---- the file ---- */

static void test_file_syntax(void **state)
{
    static const char text[] =
        "# users of the site\n"
        "\n"
        "   \n"
        "alice:{PLAIN}one\r\n"           /* CRLF */
        "bob:{PLAIN}two:Bob Smith, x1\n" /* htpasswd's comment field */
        "  # indented:{PLAIN}x\n"        /* not a comment: a user named "  # indented" */
        "alice:{PLAIN}second\n"          /* the first line of a name counts */
        "carol:{PLAIN}three";            /* no line end */
    pt_htpasswd *h = NULL;
    char err[256];
    assert_int_equal(pt_htpasswd_parse(&h, "f", text, sizeof text - 1, err, sizeof err), 0);
    assert_int_equal(h->nusers, 4);
    const pt_htpasswd_user *u = pt_htpasswd_find(h, "alice", 5);
    assert_non_null(u);
    assert_int_equal(u->line, 4);
    assert_int_equal(verify(u, "one"), 1);
    assert_int_equal(verify(u, "second"), 0);
    u = pt_htpasswd_find(h, "bob", 3);
    assert_non_null(u);
    assert_int_equal(verify(u, "two"), 1);
    assert_int_equal(verify(u, "two:Bob Smith, x1"), 0);
    u = pt_htpasswd_find(h, "carol", 5);
    assert_non_null(u);
    assert_int_equal(u->line, 8);
    assert_int_equal(verify(u, "three"), 1);
    assert_non_null(pt_htpasswd_find(h, "  # indented", 12));
    assert_null(pt_htpasswd_find(h, "ALICE", 5));
    assert_null(pt_htpasswd_find(h, "alic", 4));
    assert_null(pt_htpasswd_find(h, "alicee", 6));
    assert_null(pt_htpasswd_find(h, "", 0));
    /* a name is bytes, compared whole: "alice\0" is not alice */
    assert_null(pt_htpasswd_find(h, "alice\0", 6));
    /* shared by levels of a conf: freed with the last reference */
    assert_ptr_equal(pt_htpasswd_ref(h), h);
    pt_htpasswd_unref(h);
    assert_non_null(pt_htpasswd_find(h, "bob", 3));
    pt_htpasswd_unref(h);
    pt_htpasswd_unref(NULL);
}

static void test_many_users(void **state)
{
    /* in no order: looked up by name whatever the file's order */
    char *text = malloc(64 * 1000);
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(text + n, "user%d:{PLAIN}pw%d\n", (i * 7919) % 1000, i);
    pt_htpasswd *h = NULL;
    char err[256];
    assert_int_equal(pt_htpasswd_parse(&h, "f", text, n, err, sizeof err), 0);
    assert_int_equal(h->nusers, 1000);
    for (int i = 0; i < 1000; i++) {
        char name[32], pw[32];
        snprintf(name, sizeof name, "user%d", (i * 7919) % 1000);
        snprintf(pw, sizeof pw, "pw%d", i);
        const pt_htpasswd_user *u = pt_htpasswd_find(h, name, strlen(name));
        assert_non_null(u);
        assert_int_equal(verify(u, pw), 1);
    }
    assert_null(pt_htpasswd_find(h, "user1000", 8));
    pt_htpasswd_unref(h);
    free(text);
}

static void test_malformed_lines(void **state)
{
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"alice\n", "f:1: no ':' after the user name"},
        {"# x\nalice {PLAIN}x\n", "f:2: no ':' after the user name"},
        {"\n\n:{PLAIN}x\n", "f:3: no user name before ':'"},
        {"alice:\n", "f:1: no password hash after \"alice:\""},
        {"alice::comment\n", "f:1: no password hash after \"alice:\""},
        {"ok:{PLAIN}x\nalice:secret\n", "f:2: user \"alice\": unknown password hash"},
        {"alice:ab01FAX.bQRSU\n", "f:1: user \"alice\": traditional DES crypt is refused"},
        {"alice:_J9..abcdEFGHIJKLMNO\n", "f:1: user \"alice\": traditional DES crypt"},
        {"alice:$2y$05$abc\n", "f:1: user \"alice\": malformed bcrypt hash"},
        {"alice:$2y$03$94PtJoEsS4zOg2IFk7uzNeg3/oCeG44GdS2UmuCWIamDUtrASbwKe\n",
         "f:1: user \"alice\": malformed bcrypt hash"}, /* cost below 4 */
        {"alice:$2x$05$94PtJoEsS4zOg2IFk7uzNeg3/oCeG44GdS2UmuCWIamDUtrASbwKe\n",
         "f:1: user \"alice\": a legacy hash method"},
        {"alice:$apr1$toolongsalt$giaN/ulMw9QhNtEu3mjRr.\n", "malformed $apr1$ hash"},
        {"alice:$apr1$7FzjQKF0$giaN/ulMw9QhNtEu3mjRr\n", "malformed $apr1$ hash"},
        {"alice:$1$abc$Kb85XxsXB.VXinPhbS443\n", "malformed $1$ (MD5-crypt) hash"},
        {"alice:$5$abc$short\n", "malformed $5$ (SHA-256-crypt) hash"},
        {"alice:$6$rounds=$abc$x\n", "malformed $6$ (SHA-512-crypt) hash"},
        {"alice:$9$whatever$x\n", "unknown or malformed password hash"},
        {"alice:{SHA}cRQ3iPZN/cUFUyAxdC91S5hc.vA=\n", "malformed {SHA} hash (invalid base64)"},
        {"alice:{SHA}cRQ3iPZN/cUFUyAxdC91S5hc\n", "malformed {SHA} hash (not a SHA-1 digest)"},
        {"alice:{SSHA}c2FsdA==\n", "malformed {SSHA} hash (shorter than a SHA-1 digest)"},
        {"alice:{SSHA}!!!!\n", "malformed {SSHA} hash (invalid base64)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pt_htpasswd *h = (pt_htpasswd *)1;
        char err[512] = "";
        int rc = pt_htpasswd_parse(&h, "f", cases[i].text, strlen(cases[i].text), err, sizeof err);
        if (rc != -EINVAL || !strstr(err, cases[i].err))
            fail_msg("case %zu: rc %d, \"%s\"; want \"%s\"", i, rc, err, cases[i].err);
        assert_null(h);
    }
    /* a NUL byte inside a line */
    pt_htpasswd *h = NULL;
    char err[256];
    assert_int_equal(pt_htpasswd_parse(&h, "f", "a:{PLAIN}x\nb:{PL\0AIN}x\n", 22, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "f:2: a NUL byte in the line");
}

static void test_load(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX], err[PATH_MAX + 128];
    temp_dir_make(dir, sizeof dir, "htpasswd");
    temp_put_text(dir, "users", "alice:{PLAIN}one\n");
    pt_htpasswd *h = NULL;
    assert_int_equal(pt_htpasswd_load(&h, temp_path(path, dir, "users"), err, sizeof err), 0);
    assert_non_null(pt_htpasswd_find(h, "alice", 5));
    assert_string_equal(h->path, path);
    pt_htpasswd_unref(h);

    temp_put_text(dir, "empty", "");
    assert_int_equal(pt_htpasswd_load(&h, temp_path(path, dir, "empty"), err, sizeof err), 0);
    assert_int_equal(h->nusers, 0);
    pt_htpasswd_unref(h);

    temp_put_text(dir, "bad", "alice:{PLAIN}one\nbob\n");
    assert_int_equal(pt_htpasswd_load(&h, temp_path(path, dir, "bad"), err, sizeof err), -EINVAL);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:2: no ':' after the user name", path);
    assert_string_equal(err, want);

    assert_int_equal(pt_htpasswd_load(&h, temp_path(path, dir, "missing"), err, sizeof err),
                     -ENOENT);
    assert_null(h);
    snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
    assert_string_equal(err, want);

    assert_int_equal(pt_htpasswd_load(&h, dir, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not a regular file"));
    temp_dir_remove(dir);
}

/* ---- base64 and the Authorization header ---- */

static void test_base64(void **state)
{
    static const struct {
        const char *in, *out; /* out NULL: refused */
    } cases[] = {
        /* RFC 4648 section 10 */
        {"", ""},
        {"Zg==", "f"},
        {"Zm8=", "fo"},
        {"Zm9v", "foo"},
        {"Zm9vYg==", "foob"},
        {"Zm9vYmE=", "fooba"},
        {"Zm9vYmFy", "foobar"},
        /* padding may be left out */
        {"Zg", "f"},
        {"Zm8", "fo"},
        {"Zm9vYmE", "fooba"},
        {"+/+/", "\xfb\xff\xbf"},
        /* refused */
        {"Z", NULL},
        {"Zg=", NULL},
        {"Zg===", NULL},
        {"Zm9v=", NULL},
        {"Zm9vY", NULL},
        {"Zm9 v", NULL},
        {"Zm=9v", NULL},
        {"Zm9v\n", NULL},
        {"-_8=", NULL}, /* the URL alphabet is another */
        {"====", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unsigned char out[16];
        long n = pt_base64_decode(cases[i].in, strlen(cases[i].in), out, sizeof out);
        if (!cases[i].out) {
            if (n != -EINVAL)
                fail_msg("\"%s\" decoded (%ld)", cases[i].in, n);
            continue;
        }
        if (n != (long)strlen(cases[i].out) || memcmp(out, cases[i].out, (size_t)n) != 0)
            fail_msg("\"%s\": got %ld bytes", cases[i].in, n);
    }
    unsigned char small[2];
    assert_int_equal(pt_base64_decode("Zm9v", 4, small, sizeof small), -ENOSPC);
}

static int credentials(const char *value, char *user, char *pass)
{
    char buf[PT_CREDENTIALS_MAX];
    pt_str u, p;
    int rc = pt_htpasswd_credentials((pt_str){value, strlen(value)}, buf, sizeof buf, &u, &p);
    if (rc == 0) {
        snprintf(user, 64, "%.*s", (int)u.len, u.p);
        snprintf(pass, 64, "%.*s", (int)p.len, p.p);
    }
    return rc;
}

static void test_credentials(void **state)
{
    char u[64], p[64];
    assert_int_equal(credentials("Basic dXNlcjpwYXNz", u, p), 0); /* user:pass */
    assert_string_equal(u, "user");
    assert_string_equal(p, "pass");
    assert_int_equal(credentials("basic   dXNlcjpwYXNz", u, p), 0); /* any case, spaces */
    assert_string_equal(u, "user");
    assert_int_equal(credentials("BASIC dXNlcjpwYTpzcw==", u, p), 0); /* user:pa:ss */
    assert_string_equal(u, "user");
    assert_string_equal(p, "pa:ss");
    assert_int_equal(credentials("Basic dXNlcjo=", u, p), 0); /* user: (an empty password) */
    assert_string_equal(p, "");
    assert_int_equal(credentials("Basic dXNlcjpw", u, p), 0); /* user:p, no padding needed */
    assert_string_equal(p, "p");

    assert_int_equal(credentials("Bearer dXNlcjpwYXNz", u, p), -EINVAL);
    assert_int_equal(credentials("Basic", u, p), -EINVAL);
    assert_int_equal(credentials("Basic ", u, p), -EINVAL);
    assert_int_equal(credentials("Basic    ", u, p), -EINVAL);
    assert_int_equal(credentials("Basicx dXNlcjpwYXNz", u, p), -EINVAL);
    assert_int_equal(credentials("Basic\tdXNlcjpwYXNz", u, p), -EINVAL);
    assert_int_equal(credentials("Basic dXNlcjpwYXNz!", u, p), -EINVAL);
    assert_int_equal(credentials("Basic dXNlcg==", u, p), -EINVAL); /* user: no ':' */
    assert_int_equal(credentials("Basic OnBhc3M=", u, p), -EINVAL); /* :pass: no user */
    assert_int_equal(credentials("Basic dXNlcjpwYXNz x", u, p), -EINVAL);

    /* longer than the buffer: refused, not cut */
    char big[2000] = "Basic ";
    size_t n = strlen(big);
    memset(big + n, 'Q', 1400);
    big[n + 1400] = '\0';
    assert_int_equal(credentials(big, u, p), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_htpasswd_bcrypt),  NOTHING_LEFT_TEST(test_htpasswd_apr1),
        NOTHING_LEFT_TEST(test_htpasswd_sha1),    NOTHING_LEFT_TEST(test_htpasswd_sha_crypt),
        NOTHING_LEFT_TEST(test_htpasswd_refused), NOTHING_LEFT_TEST(test_openssl_passwd),
        NOTHING_LEFT_TEST(test_ssha_and_plain),   NOTHING_LEFT_TEST(test_other_crypt),
        NOTHING_LEFT_TEST(test_file_syntax),      NOTHING_LEFT_TEST(test_many_users),
        NOTHING_LEFT_TEST(test_malformed_lines),  NOTHING_LEFT_TEST(test_load),
        NOTHING_LEFT_TEST(test_base64),           NOTHING_LEFT_TEST(test_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
