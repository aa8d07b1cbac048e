#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "connmgr/proxy_protocol.h"
#include "tests/support.h"

/* What follows a header on the wire: never part of it. */
#define REQUEST "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

static const unsigned char SIG[12] = {'\r', '\n', '\r', '\n', 0,   '\r',
                                      '\n', 'Q',  'U',  'I',  'T', '\n'};

/* A v2 header in `out`: the signature, then `ver_cmd`, `fam_tr`, the 16-bit length of `body`
 * and `body`. Returns its length. */
static size_t v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam_tr,
                 const unsigned char *body, size_t n)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam_tr;
    out[14] = (unsigned char)(n >> 8);
    out[15] = (unsigned char)n;
    memcpy(out + 16, body, n);
    return 16 + n;
}

/* Every proper prefix of the `n` bytes at `p` asks for more. Each is parsed from a copy of
 * its own size, so a look at the bytes that have not come yet is a heap overflow for ASan. */
static void prefixes_need_more(const void *p, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        pt_proxy_header h;
        char *copy = malloc(k ? k : 1);
        memcpy(copy, p, k);
        int r = pt_proxy_header_parse(copy, k, &h);
        free(copy);
        if (r != 0)
            fail_msg("a prefix of %zu of %zu bytes did not ask for more (%s)", k, n,
                     h.why ? h.why : "taken");
    }
}

/* The header `text` followed by a request reads as `text`'s length. */
static void v1_ok(const char *text, pt_proxy_header *h)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", text, REQUEST);
    assert_int_equal(pt_proxy_header_parse(buf, strlen(buf), h), (int)strlen(text));
    assert_int_equal(h->version, 1);
    prefixes_need_more(text, strlen(text));
}

static void refused(const void *p, size_t n, const char *why_part)
{
    pt_proxy_header h;
    assert_int_equal(pt_proxy_header_parse(p, n, &h), -EBADMSG);
    assert_non_null(h.why);
    if (!strstr(h.why, why_part))
        fail_msg("refused for \"%s\", expected \"%s\"", h.why, why_part);
}

static void v1_refused(const char *text, const char *why_part)
{
    refused(text, strlen(text), why_part);
}

static void assert_v4(const pt_sockaddr_ip *a, socklen_t len, const unsigned char ip[4],
                      unsigned port)
{
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(a->in.sin_family, AF_INET);
    assert_memory_equal(&a->in.sin_addr, ip, 4);
    assert_int_equal(ntohs(a->in.sin_port), port);
}

static void assert_v6(const pt_sockaddr_ip *a, socklen_t len, const unsigned char ip[16],
                      unsigned port)
{
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(a->in6.sin6_family, AF_INET6);
    assert_memory_equal(&a->in6.sin6_addr, ip, 16);
    assert_int_equal(ntohs(a->in6.sin6_port), port);
}

static const unsigned char SRC4[4] = {192, 0, 2, 1}, DST4[4] = {198, 51, 100, 2};
static const unsigned char SRC6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const unsigned char DST6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,    0,
                                       0,    0,    0,    0,    0, 0, 0xab, 0xcd};

static void test_v1_tcp4(void **state)
{
    pt_proxy_header h;
    v1_ok("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", &h);
    assert_false(h.local);
    assert_v4(&h.src, h.srclen, SRC4, 56324);
    assert_v4(&h.dst, h.dstlen, DST4, 443);
    /* the whole port range */
    v1_ok("PROXY TCP4 192.0.2.1 198.51.100.2 0 65535\r\n", &h);
    assert_v4(&h.src, h.srclen, SRC4, 0);
    assert_v4(&h.dst, h.dstlen, DST4, 65535);
}

static void test_v1_tcp6(void **state)
{
    pt_proxy_header h;
    v1_ok("PROXY TCP6 2001:db8::1 2001:db8::abcd 1 2\r\n", &h);
    assert_false(h.local);
    assert_v6(&h.src, h.srclen, SRC6, 1);
    assert_v6(&h.dst, h.dstlen, DST6, 2);
    /* the longest addresses still fit the 107 bytes */
    v1_ok("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
          "ffff 65535 65535\r\n",
          &h);
    static const unsigned char ones[16] = {255, 255, 255, 255, 255, 255, 255, 255,
                                           255, 255, 255, 255, 255, 255, 255, 255};
    assert_v6(&h.src, h.srclen, ones, 65535);
}

static void test_v1_unknown(void **state)
{
    pt_proxy_header h;
    v1_ok("PROXY UNKNOWN\r\n", &h);
    assert_true(h.local);
    /* what follows UNKNOWN is ignored, whatever it is */
    v1_ok("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", &h);
    assert_true(h.local);
    /* 107 bytes, CRLF included, is the bound */
    char line[PT_PROXY_V1_MAX + 2];
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + PT_PROXY_V1_MAX - 2, "\r\n", 3);
    v1_ok(line, &h);
    assert_true(h.local);
}

static void test_v1_malformed(void **state)
{
    v1_refused("GET / HTTP/1.1\r\n\r\n", "not a PROXY");
    v1_refused("proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n", "not a PROXY");
    v1_refused("PROXYTCP4", "not a PROXY");
    v1_refused("PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n", "unknown protocol");
    v1_refused("PROXY UNKNOWNX\r\n", "unknown protocol");
    v1_refused("PROXY \r\n", "unknown protocol");
    /* the address must be its family's */
    v1_refused("PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n", "address");
    v1_refused("PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n", "address");
    v1_refused("PROXY TCP4 256.0.2.1 198.51.100.2 1 2\r\n", "address");
    v1_refused("PROXY TCP4 example.com 198.51.100.2 1 2\r\n", "address");
    /* ports: decimal, 0..65535 */
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n", "bad port");
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1 -2\r\n", "bad port");
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 8a 2\r\n", "bad port");
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1 000002\r\n", "bad port");
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1 \r\n", "bad port");
    /* fields: four, single spaces */
    v1_refused("PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n", "fields");
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", "fields");
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n", "fields");
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n", "fields");
    /* the line ends with CRLF, and a bare LF or CR is refused at once */
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", "LF without CR");
    v1_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX", "CR without LF");
    v1_refused("PROXY UNKNOWN\r\r\n", "CR without LF");
    /* no CRLF within 107 bytes */
    char line[PT_PROXY_V1_MAX + 3];
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + PT_PROXY_V1_MAX - 1, "\r\n", 3); /* a 108-byte line */
    v1_refused(line, "107");
    pt_proxy_header h;
    assert_int_equal(pt_proxy_header_parse(line, PT_PROXY_V1_MAX - 1, &h), 0);
    assert_int_equal(pt_proxy_header_parse(line, PT_PROXY_V1_MAX, &h), -EBADMSG);
}

static void test_v2_proxy_inet(void **state)
{
    unsigned char body[12 + 7], buf[64 + sizeof REQUEST];
    memcpy(body, SRC4, 4);
    memcpy(body + 4, DST4, 4);
    memcpy(body + 8, "\xdc\x04\x01\xbb", 4); /* 56324, 443 */
    memcpy(body + 12, "\x04\x00\x04nop", 7); /* a NOOP TLV: skipped */
    size_t n = v2(buf, 0x21, 0x11, body, sizeof body);
    memcpy(buf + n, REQUEST, sizeof REQUEST - 1);
    pt_proxy_header h;
    assert_int_equal(pt_proxy_header_parse(buf, n + sizeof REQUEST - 1, &h), (int)n);
    assert_int_equal(h.version, 2);
    assert_false(h.local);
    assert_v4(&h.src, h.srclen, SRC4, 56324);
    assert_v4(&h.dst, h.dstlen, DST4, 443);
    prefixes_need_more(buf, n);
}

static void test_v2_proxy_inet6(void **state)
{
    unsigned char body[36 + 3 + 5 + 3], buf[128];
    memcpy(body, SRC6, 16);
    memcpy(body + 16, DST6, 16);
    memcpy(body + 32, "\x00\x50\x1f\x90", 4);           /* 80, 8080 */
    memcpy(body + 36, "\x01\x00\x02h2\x05\x00\x00", 8); /* ALPN "h2", an empty UNIQUE_ID */
    memcpy(body + 44, "\x20\x00\x00", 3);               /* an empty SSL TLV */
    size_t n = v2(buf, 0x21, 0x21, body, sizeof body);
    pt_proxy_header h;
    assert_int_equal(pt_proxy_header_parse(buf, n, &h), (int)n);
    assert_false(h.local);
    assert_v6(&h.src, h.srclen, SRC6, 80);
    assert_v6(&h.dst, h.dstlen, DST6, 8080);
    prefixes_need_more(buf, n);
}

static void test_v2_local_and_unspec(void **state)
{
    unsigned char body[216], buf[256];
    pt_proxy_header h;
    memset(body, 0x5a, sizeof body);
    /* LOCAL: the addresses and the family, whatever they are, are ignored */
    size_t n = v2(buf, 0x20, 0x11, body, 12);
    assert_int_equal(pt_proxy_header_parse(buf, n, &h), (int)n);
    assert_true(h.local);
    n = v2(buf, 0x20, 0x00, body, 0);
    assert_int_equal(pt_proxy_header_parse(buf, n, &h), 16);
    assert_true(h.local);
    prefixes_need_more(buf, n);
    /* PROXY over AF_UNSPEC, AF_UNIX or a datagram transport: no address a TCP server uses */
    n = v2(buf, 0x21, 0x00, body, 0);
    assert_int_equal(pt_proxy_header_parse(buf, n, &h), (int)n);
    assert_true(h.local);
    n = v2(buf, 0x21, 0x31, body, 216);
    assert_int_equal(pt_proxy_header_parse(buf, n, &h), (int)n);
    assert_true(h.local);
    n = v2(buf, 0x21, 0x12, body, 12);
    assert_int_equal(pt_proxy_header_parse(buf, n, &h), (int)n);
    assert_true(h.local);
}

static void test_v2_malformed(void **state)
{
    unsigned char body[64] = {0}, buf[PT_PROXY_HEADER_MAX + 64];
    /* a signature that starts like v2's and then differs */
    size_t n = v2(buf, 0x21, 0x11, body, 12);
    buf[7] = 'X';
    refused(buf, n, "signature");
    refused("\r\n\r\n\0\r\nQUIX", 12, "signature");
    refused("\r\nGET", 5, "signature");
    /* version, command, family, transport */
    n = v2(buf, 0x11, 0x11, body, 12);
    refused(buf, n, "version");
    n = v2(buf, 0x31, 0x11, body, 12);
    refused(buf, n, "version");
    n = v2(buf, 0x22, 0x11, body, 12);
    refused(buf, n, "command");
    n = v2(buf, 0x21, 0x41, body, 12);
    refused(buf, n, "family");
    n = v2(buf, 0x21, 0x13, body, 12);
    refused(buf, n, "family or transport");
    /* addresses longer than the length says */
    n = v2(buf, 0x21, 0x11, body, 8);
    refused(buf, n, "shorter than its addresses");
    n = v2(buf, 0x21, 0x21, body, 35);
    refused(buf, n, "shorter than its addresses");
    /* TLVs that do not tile the rest: one past the end, a stray byte or two */
    memcpy(body + 12, "\x04\x00\x05xx", 5);
    n = v2(buf, 0x21, 0x11, body, 17);
    refused(buf, n, "TLV");
    n = v2(buf, 0x21, 0x11, body, 13);
    refused(buf, n, "TLV");
    n = v2(buf, 0x21, 0x11, body, 14);
    refused(buf, n, "TLV");
    /* too long: refused from its first 16 bytes, before the rest comes */
    memset(buf, 0, sizeof buf);
    v2(buf, 0x21, 0x11, body, 0);
    unsigned len = PT_PROXY_HEADER_MAX - 16 + 1;
    buf[14] = (unsigned char)(len >> 8);
    buf[15] = (unsigned char)len;
    refused(buf, 16, "longer than 4096");
    /* the longest taken: 4096 bytes, one TLV filling it */
    len = PT_PROXY_HEADER_MAX - 16;
    buf[14] = (unsigned char)(len >> 8);
    buf[15] = (unsigned char)len;
    memcpy(buf + 16, SRC4, 4);
    buf[28] = 4;
    buf[29] = (unsigned char)((len - 15) >> 8);
    buf[30] = (unsigned char)(len - 15);
    pt_proxy_header h;
    assert_int_equal(pt_proxy_header_parse(buf, PT_PROXY_HEADER_MAX - 1, &h), 0);
    assert_int_equal(pt_proxy_header_parse(buf, PT_PROXY_HEADER_MAX, &h), PT_PROXY_HEADER_MAX);
    assert_v4(&h.src, h.srclen, SRC4, 0);
}

/* A header cut anywhere asks for more; what comes after it is never read. */
static void test_truncated_and_trailing(void **state)
{
    unsigned char body[12], buf[64];
    memcpy(body, SRC4, 4);
    memcpy(body + 4, DST4, 4);
    memcpy(body + 8, "\x00\x01\x00\x02", 4);
    size_t n = v2(buf, 0x21, 0x11, body, sizeof body);
    pt_proxy_header h;
    assert_int_equal(pt_proxy_header_parse(buf, n - 1, &h), 0);
    assert_int_equal(pt_proxy_header_parse(buf, 15, &h), 0);
    assert_int_equal(pt_proxy_header_parse(buf, 0, &h), 0);
    /* garbage after a complete header does not matter */
    memset(buf + n, 0xff, sizeof buf - n);
    assert_int_equal(pt_proxy_header_parse(buf, sizeof buf, &h), (int)n);
    const char *t = "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n\r\n\r\nPROXY";
    assert_int_equal(pt_proxy_header_parse(t, strlen(t), &h), 39);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_v1_tcp4),
        NOTHING_LEFT_TEST(test_v1_tcp6),
        NOTHING_LEFT_TEST(test_v1_unknown),
        NOTHING_LEFT_TEST(test_v1_malformed),
        NOTHING_LEFT_TEST(test_v2_proxy_inet),
        NOTHING_LEFT_TEST(test_v2_proxy_inet6),
        NOTHING_LEFT_TEST(test_v2_local_and_unspec),
        NOTHING_LEFT_TEST(test_v2_malformed),
        NOTHING_LEFT_TEST(test_truncated_and_trailing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
