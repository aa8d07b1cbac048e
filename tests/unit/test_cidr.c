#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "server/core/cidr.h"
#include "tests/support.h"

/* A socket address for the literal `ip` (v4 or v6), with a port that must not matter. */
static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(4321);
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(4321);
    }
    return ss;
}

static bool in(const char *range, const char *ip)
{
    pt_cidr c;
    assert_true(pt_cidr_parse(range, &c) >= 0);
    struct sockaddr_storage ss = addr(ip);
    return pt_cidr_match(&c, (struct sockaddr *)&ss);
}

static void test_ipv4(void **state)
{
    assert_true(in("192.0.2.0/24", "192.0.2.0"));
    assert_true(in("192.0.2.0/24", "192.0.2.255"));
    assert_false(in("192.0.2.0/24", "192.0.3.0"));
    assert_false(in("192.0.2.0/24", "192.0.1.255"));
    /* an address alone is /32 */
    assert_true(in("10.1.2.3", "10.1.2.3"));
    assert_false(in("10.1.2.3", "10.1.2.4"));
    /* prefixes that end inside a byte */
    assert_true(in("172.16.0.0/12", "172.31.255.255"));
    assert_false(in("172.16.0.0/12", "172.32.0.0"));
    assert_false(in("172.16.0.0/12", "172.15.255.255"));
    assert_true(in("10.0.0.128/25", "10.0.0.200"));
    assert_false(in("10.0.0.128/25", "10.0.0.127"));
    assert_true(in("0.0.0.0/0", "203.0.113.9"));
    /* a v4 range says nothing of v6 addresses, and the other way round */
    assert_false(in("0.0.0.0/0", "2001:db8::1"));
    assert_false(in("::/0", "203.0.113.9"));
}

static void test_ipv6(void **state)
{
    assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(in("2001:db8::/32", "2001:db9::1"));
    assert_true(in("2001:db8::1", "2001:db8::1"));
    assert_false(in("2001:db8::1", "2001:db8::2"));
    assert_true(in("2001:db8::/127", "2001:db8::1"));
    assert_false(in("2001:db8::/127", "2001:db8::2"));
    assert_true(in("fe80::/10", "febf::1"));
    assert_false(in("fe80::/10", "fec0::1"));
    assert_true(in("::/0", "::1"));
}

/* A client of an IPv6 socket that takes IPv4 shows as ::ffff:a.b.c.d: it is a.b.c.d. */
static void test_v4_mapped(void **state)
{
    assert_true(in("192.0.2.0/24", "::ffff:192.0.2.7"));
    assert_false(in("192.0.2.0/24", "::ffff:192.0.3.7"));
    assert_true(in("192.0.2.7", "::ffff:192.0.2.7"));
    assert_false(in("::/0", "::ffff:192.0.2.7"));
    /* only the mapped prefix: ::192.0.2.7 (compatible, deprecated) is IPv6 */
    assert_false(in("192.0.2.0/24", "::192.0.2.7"));
}

static void test_unix(void **state)
{
    pt_cidr c;
    assert_int_equal(pt_cidr_parse("unix:", &c), 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct sockaddr none = {.sa_family = AF_UNSPEC};
    assert_true(pt_cidr_match(&c, (struct sockaddr *)&un));
    assert_true(pt_cidr_match(&c, &none));
    assert_true(pt_cidr_match(&c, NULL));
    struct sockaddr_storage ss = addr("127.0.0.1");
    assert_false(pt_cidr_match(&c, (struct sockaddr *)&ss));
    /* an IP range never takes a peer that is not IP */
    assert_int_equal(pt_cidr_parse("0.0.0.0/0", &c), 0);
    assert_false(pt_cidr_match(&c, (struct sockaddr *)&un));
    assert_false(pt_cidr_match(&c, &none));
}

/* Bits beyond the prefix are cleared, and said so (nginx warns of them). */
static void test_stray_bits(void **state)
{
    pt_cidr c;
    assert_int_equal(pt_cidr_parse("192.0.2.77/24", &c), 1);
    static const unsigned char net[4] = {192, 0, 2, 0};
    assert_memory_equal(c.addr, net, 4);
    assert_true(in("192.0.2.77/24", "192.0.2.1"));
    assert_int_equal(pt_cidr_parse("2001:db8::1/64", &c), 1);
    assert_true(in("2001:db8::1/64", "2001:db8::ffff"));
    assert_int_equal(pt_cidr_parse("192.0.2.0/24", &c), 0);
    assert_int_equal(pt_cidr_parse("2001:db8::/32", &c), 0);
}

static void test_invalid(void **state)
{
    static const char *bad[] = {
        "",
        "/24",
        "192.0.2.0/",
        "192.0.2.0/33",
        "2001:db8::/129",
        "192.0.2.0/-1",
        "192.0.2.0/+8",
        "192.0.2.0/8x",
        "192.0.2.0/0008",
        "192.0.2",
        "256.0.0.1",
        "localhost",
        "[::1]",
        "fe80::1%lo",
        "unix",
        "unix:/run/x.sock",
        "192.0.2.0/24/8",
        "all",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pt_cidr c;
        if (pt_cidr_parse(bad[i], &c) != -EINVAL)
            fail_msg("\"%s\" was taken", bad[i]);
    }
}

static void test_match_any(void **state)
{
    pt_cidr list[3];
    assert_int_equal(pt_cidr_parse("10.0.0.0/8", &list[0]), 0);
    assert_int_equal(pt_cidr_parse("2001:db8::/32", &list[1]), 0);
    assert_int_equal(pt_cidr_parse("192.0.2.1", &list[2]), 0);
    struct sockaddr_storage a = addr("192.0.2.1"), b = addr("2001:db8::5"), c = addr("11.0.0.1");
    assert_true(pt_cidr_match_any(list, 3, (struct sockaddr *)&a));
    assert_true(pt_cidr_match_any(list, 3, (struct sockaddr *)&b));
    assert_false(pt_cidr_match_any(list, 3, (struct sockaddr *)&c));
    assert_false(pt_cidr_match_any(list, 0, (struct sockaddr *)&a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_ipv4),       NOTHING_LEFT_TEST(test_ipv6),
        NOTHING_LEFT_TEST(test_v4_mapped),  NOTHING_LEFT_TEST(test_unix),
        NOTHING_LEFT_TEST(test_stray_bits), NOTHING_LEFT_TEST(test_invalid),
        NOTHING_LEFT_TEST(test_match_any),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
