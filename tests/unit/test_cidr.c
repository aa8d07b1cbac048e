/* Address ranges: what parses and what is refused, and which clients each range holds (IPv4,
 * IPv6, IPv4-mapped IPv6, Unix-domain, "all", a client of no known family). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "server/core/cidr.h"
#include "tests/support.h"

/* Parses `s` and formats it back ("error" or "range" for a refusal). */
static const char *round_trip(const char *s)
{
    static char buf[PT_CIDR_STRLEN];
    pt_cidr c;
    const char *why = NULL;
    int rc = pt_cidr_parse(s, &c, &why, NULL);
    if (rc == -EINVAL) {
        assert_non_null(why);
        return "error";
    }
    if (rc == -ERANGE)
        return "range";
    assert_int_equal(rc, 0);
    pt_cidr_format(&c, buf, sizeof buf);
    return buf;
}

static void test_parse(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"127.0.0.1", "127.0.0.1/32"},
        {"10.0.0.0/8", "10.0.0.0/8"},
        {"0.0.0.0/0", "0.0.0.0/0"},
        {"192.168.1.128/25", "192.168.1.128/25"},
        {"10.1.2.3/32", "10.1.2.3/32"},
        {"::1", "::1/128"},
        {"::", "::/128"},
        {"::/0", "::/0"},
        {"2001:db8::/32", "2001:db8::/32"},
        {"2001:DB8::/32", "2001:db8::/32"},
        {"::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"},
        {"fe80::/10", "fe80::/10"},
        {"all", "all"},
        {"unix:", "unix:"},
        /* refused */
        {"", "error"},
        {"localhost", "error"},
        {"ALL", "error"},
        {"unix:/run/x.sock", "error"},
        {"10.0.0", "error"},
        {"10.0.0.256", "error"},
        {"10.0.0.1.2", "error"},
        {"010.0.0.1", "error"}, /* inet_pton refuses what inet_aton would read as octal */
        {" 10.0.0.1", "error"},
        {"10.0.0.1 ", "error"},
        {"[::1]", "error"},
        {"fe80::1%lo", "error"},
        {"10.0.0.0/", "error"},
        {"10.0.0.0/33", "error"},
        {"10.0.0.0/-1", "error"},
        {"10.0.0.0/+8", "error"},
        {"10.0.0.0/8/8", "error"},
        {"10.0.0.0/ 8", "error"},
        {"10.0.0.0/0008", "error"},
        {"::/129", "error"},
        {"::1/1x", "error"},
        {"/8", "error"},
        /* an address with bits past its prefix: which range was meant? */
        {"10.0.0.1/8", "range"},
        {"192.168.1.1/24", "range"},
        {"2001:db8::1/64", "range"},
        {"::1/0", "range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = round_trip(cases[i].in);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[i].in, got, cases[i].want);
    }
}

static void test_masked_suggestion(void **state)
{
    pt_cidr c, masked;
    const char *why = NULL;
    char buf[PT_CIDR_STRLEN];
    assert_int_equal(pt_cidr_parse("10.1.2.3/8", &c, &why, &masked), -ERANGE);
    pt_cidr_format(&masked, buf, sizeof buf);
    assert_string_equal(buf, "10.0.0.0/8");
    assert_int_equal(pt_cidr_parse("2001:db8:1:2::5/48", &c, &why, &masked), -ERANGE);
    pt_cidr_format(&masked, buf, sizeof buf);
    assert_string_equal(buf, "2001:db8:1::/48");
    assert_int_equal(pt_cidr_parse("172.16.0.1/12", &c, &why, &masked), -ERANGE);
    pt_cidr_format(&masked, buf, sizeof buf);
    assert_string_equal(buf, "172.16.0.0/12");
}

/* A client at the IPv4 address `a`, the IPv6 address `a`, or "unix". */
static pt_cidr_client client(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (strcmp(a, "unix") == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, "/run/porter.sock");
        len = sizeof *un;
    } else if (strchr(a, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, a, &in6->sin6_addr), 1);
        len = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, a, &in->sin_addr), 1);
        len = sizeof *in;
    }
    pt_cidr_client c;
    pt_cidr_client_of((struct sockaddr *)&ss, len, &c);
    return c;
}

static bool holds(const char *range, const char *addr, bool as_v4)
{
    pt_cidr c;
    const char *why;
    assert_int_equal(pt_cidr_parse(range, &c, &why, NULL), 0);
    pt_cidr_client a = client(addr);
    return pt_cidr_match(&c, &a, as_v4);
}

static void test_match_v4(void **state)
{
    assert_true(holds("127.0.0.1", "127.0.0.1", false));
    assert_false(holds("127.0.0.1", "127.0.0.2", false));
    assert_true(holds("10.0.0.0/8", "10.255.255.255", false));
    assert_true(holds("10.0.0.0/8", "10.0.0.0", false));
    assert_false(holds("10.0.0.0/8", "11.0.0.0", false));
    assert_false(holds("10.0.0.0/8", "9.255.255.255", false));
    assert_true(holds("192.168.1.128/25", "192.168.1.200", false));
    assert_false(holds("192.168.1.128/25", "192.168.1.127", false));
    assert_true(holds("172.16.0.0/12", "172.31.255.1", false));
    assert_false(holds("172.16.0.0/12", "172.32.0.1", false));
    assert_true(holds("0.0.0.0/0", "203.0.113.9", false));
    /* an IPv4 range holds no IPv6 client, and no Unix-domain one */
    assert_false(holds("0.0.0.0/0", "::1", false));
    assert_false(holds("0.0.0.0/0", "unix", false));
}

static void test_match_v6(void **state)
{
    assert_true(holds("::1", "::1", false));
    assert_false(holds("::1", "::2", false));
    assert_true(holds("2001:db8::/32", "2001:db8:ffff::1", false));
    assert_false(holds("2001:db8::/32", "2001:db9::1", false));
    assert_true(holds("2001:db8:0:8000::/49", "2001:db8:0:8001::1", false));
    assert_false(holds("2001:db8:0:8000::/49", "2001:db8:0:7fff::1", false));
    /* the second half of the address counts too */
    assert_true(holds("2001:db8::ab00/120", "2001:db8::abff", false));
    assert_false(holds("2001:db8::ab00/120", "2001:db8::ac00", false));
    assert_true(holds("::/0", "fe80::1", false));
    assert_false(holds("::/0", "127.0.0.1", false));
    assert_false(holds("::/0", "unix", false));
}

static void test_match_mapped(void **state)
{
    pt_cidr_client a = client("::ffff:192.0.2.7");
    assert_int_equal(a.family, AF_INET6);
    assert_true(a.mapped);
    assert_false(client("::192.0.2.7").mapped); /* IPv4-compatible, not mapped */
    assert_false(client("::ffff:0:c000:207").mapped);
    /* taken as IPv4: the IPv4 ranges hold it, the IPv6 ones do not */
    assert_true(holds("192.0.2.0/24", "::ffff:192.0.2.7", true));
    assert_false(holds("192.0.2.0/24", "::ffff:192.0.3.7", true));
    assert_false(holds("::ffff:0:0/96", "::ffff:192.0.2.7", true));
    /* taken as IPv6: the other way round */
    assert_false(holds("192.0.2.0/24", "::ffff:192.0.2.7", false));
    assert_true(holds("::ffff:0:0/96", "::ffff:192.0.2.7", false));
    /* as_v4 changes nothing for a client that is not mapped */
    assert_true(holds("2001:db8::/32", "2001:db8::1", true));
    assert_false(holds("0.0.0.0/0", "2001:db8::1", true));
}

static void test_match_unix_all_and_none(void **state)
{
    assert_true(holds("unix:", "unix", false));
    assert_false(holds("unix:", "127.0.0.1", false));
    assert_false(holds("unix:", "::1", false));
    assert_true(holds("all", "unix", false));
    assert_true(holds("all", "127.0.0.1", false));
    assert_true(holds("all", "::1", false));
    assert_true(holds("all", "::ffff:1.2.3.4", true));

    /* no address, a short one, another family: no range, "all" included */
    pt_cidr all, any4;
    const char *why;
    assert_int_equal(pt_cidr_parse("all", &all, &why, NULL), 0);
    assert_int_equal(pt_cidr_parse("0.0.0.0/0", &any4, &why, NULL), 0);
    pt_cidr_client none;
    pt_cidr_client_of(NULL, 0, &none);
    assert_int_equal(none.family, 0);
    assert_false(pt_cidr_match(&all, &none, false));
    struct sockaddr_in in = {.sin_family = AF_INET};
    pt_cidr_client_of((struct sockaddr *)&in, 4, &none); /* shorter than a sockaddr_in */
    assert_false(pt_cidr_match(&any4, &none, false));
    struct sockaddr sa = {.sa_family = AF_UNSPEC};
    pt_cidr_client_of(&sa, sizeof sa, &none);
    assert_false(pt_cidr_match(&all, &none, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_parse),        NOTHING_LEFT_TEST(test_masked_suggestion),
        NOTHING_LEFT_TEST(test_match_v4),     NOTHING_LEFT_TEST(test_match_v6),
        NOTHING_LEFT_TEST(test_match_mapped), NOTHING_LEFT_TEST(test_match_unix_all_and_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
