#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "connmgr/authority.h"
#include "tests/support.h"

static void parse_ok(const char *text, uint16_t dflt, pt_authority_kind kind, const char *host,
                     uint16_t port, const char *formatted)
{
    pt_authority a;
    char buf[PT_AUTHORITY_STRLEN];
    assert_int_equal(pt_authority_parse(&a, text, strlen(text), dflt), 0);
    assert_int_equal(a.kind, kind);
    assert_string_equal(a.host, host);
    assert_int_equal(a.port, port);
    assert_true(pt_authority_format(&a, buf, sizeof buf) > 0);
    assert_string_equal(buf, formatted);
}

static void parse_fails(const char *text, uint16_t dflt, int err)
{
    pt_authority a;
    assert_int_equal(pt_authority_parse(&a, text, strlen(text), dflt), err);
}

static void test_ipv4(void **state)
{
    parse_ok("127.0.0.1:8080", 80, PT_AUTHORITY_INET4, "127.0.0.1", 8080, "127.0.0.1:8080");
    parse_ok("10.1.2.3", 80, PT_AUTHORITY_INET4, "10.1.2.3", 80, "10.1.2.3:80");
    pt_authority a;
    assert_int_equal(pt_authority_parse(&a, "127.0.0.1:9", 11, 0), 0);
    /* The address is ready to connect to: no resolver involved. */
    assert_false(pt_authority_needs_resolver(&a));
    assert_int_equal(a.addr.in.sin_family, AF_INET);
    assert_int_equal(ntohs(a.addr.in.sin_port), 9);
    assert_int_equal(a.addr.in.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(a.addrlen, sizeof(struct sockaddr_in));
}

static void test_ipv6(void **state)
{
    parse_ok("[::1]:8080", 80, PT_AUTHORITY_INET6, "::1", 8080, "[::1]:8080");
    parse_ok("[::1]", 443, PT_AUTHORITY_INET6, "::1", 443, "[::1]:443");
    /* A bare literal cannot carry a port: all of it is the address. */
    parse_ok("::1", 80, PT_AUTHORITY_INET6, "::1", 80, "[::1]:80");
    /* Written differently, the same address. */
    parse_ok("[0:0::0001]:1", 80, PT_AUTHORITY_INET6, "::1", 1, "[::1]:1");
    pt_authority a;
    assert_int_equal(pt_authority_parse(&a, "[::1]:7", 7, 0), 0);
    assert_int_equal(a.addr.in6.sin6_family, AF_INET6);
    assert_int_equal(ntohs(a.addr.in6.sin6_port), 7);
    assert_memory_equal(&a.addr.in6.sin6_addr, &in6addr_loopback, sizeof in6addr_loopback);
    assert_false(pt_authority_needs_resolver(&a));
}

static void test_names(void **state)
{
    parse_ok("localhost:3000", 80, PT_AUTHORITY_NAME, "localhost", 3000, "localhost:3000");
    parse_ok("Backend.Example.COM", 443, PT_AUTHORITY_NAME, "backend.example.com", 443,
             "backend.example.com:443");
    parse_ok("app_1:80", 0, PT_AUTHORITY_NAME, "app_1", 80, "app_1:80");
    pt_authority a;
    assert_int_equal(pt_authority_parse(&a, "localhost", 9, 80), 0);
    assert_true(pt_authority_needs_resolver(&a));
    assert_int_equal(a.addrlen, 0);
}

static void test_unix(void **state)
{
    parse_ok("unix:/run/app.sock", 80, PT_AUTHORITY_UNIX, "/run/app.sock", 0, "unix:/run/app.sock");
    pt_authority a;
    assert_int_equal(pt_authority_parse(&a, "unix:/tmp/s", 11, 80), 0);
    assert_int_equal(a.addr.un.sun_family, AF_UNIX);
    assert_string_equal(a.addr.un.sun_path, "/tmp/s");
    assert_false(pt_authority_needs_resolver(&a));
    char longpath[200] = "unix:/";
    memset(longpath + 6, 'a', 150);
    longpath[156] = '\0';
    parse_fails(longpath, 80, -ENAMETOOLONG);
    parse_fails("unix:", 80, -EINVAL);
}

static void test_invalid(void **state)
{
    parse_fails("", 80, -EINVAL);
    parse_fails(":80", 80, -EINVAL);
    parse_fails("host:", 80, -EINVAL);
    parse_fails("host:0", 80, -EINVAL);
    parse_fails("host:65536", 80, -EINVAL);
    parse_fails("host:8x", 80, -EINVAL);
    parse_fails("host", 0, -EINVAL); /* no port and no default */
    parse_fails("[::1", 80, -EINVAL);
    parse_fails("[::1]x", 80, -EINVAL);
    parse_fails("[127.0.0.1]:80", 80, -EINVAL);
    parse_fails("[::g]:80", 80, -EINVAL);
    parse_fails("300.1.1.1:80", 80, -EINVAL);
    parse_fails("10.1:80", 80, -EINVAL);
    parse_fails("bad host:80", 80, -EINVAL);
    parse_fails("a/b:80", 80, -EINVAL);
    parse_fails(".example.com", 80, -EINVAL);
    parse_fails("a..b", 80, -EINVAL);
    char name[300];
    memset(name, 'a', 260);
    name[260] = '\0';
    parse_fails(name, 80, -ENAMETOOLONG);
}

static void test_set_and_equal(void **state)
{
    pt_authority a, b, c;
    assert_int_equal(pt_authority_set(&a, "::1", 80), 0);
    assert_int_equal(pt_authority_set(&b, "[::1]", 80), 0);
    assert_true(pt_authority_equal(&a, &b));
    assert_int_equal(pt_authority_set(&c, "::1", 81), 0);
    assert_false(pt_authority_equal(&a, &c));
    assert_int_equal(pt_authority_set(&c, "LOCALHOST", 80), 0);
    assert_int_equal(c.kind, PT_AUTHORITY_NAME);
    assert_string_equal(c.host, "localhost");
    assert_int_equal(pt_authority_set(&c, "/run/x.sock", 0), 0);
    assert_int_equal(c.kind, PT_AUTHORITY_UNIX);
    assert_int_equal(pt_authority_set(&c, "127.0.0.1", 0), -EINVAL);

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(5)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(pt_authority_from_sockaddr(&c, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(pt_authority_set(&b, "127.0.0.1", 5), 0);
    assert_true(pt_authority_equal(&b, &c));
    assert_int_equal(pt_authority_from_sockaddr(&c, (struct sockaddr *)&sin, 4), -EINVAL);

    char small[6];
    assert_int_equal(pt_authority_format(&b, small, sizeof small), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_ipv4),    NOTHING_LEFT_TEST(test_ipv6),
        NOTHING_LEFT_TEST(test_names),   NOTHING_LEFT_TEST(test_unix),
        NOTHING_LEFT_TEST(test_invalid), NOTHING_LEFT_TEST(test_set_and_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
