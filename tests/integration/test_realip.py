"""Real client addresses: the PROXY protocol on `listen ... proxy_protocol` and nginx's realip
directives (set_real_ip_from, real_ip_header, real_ip_recursive).

PROXY: v1 and v2 headers made here, over cleartext and TLS (the header in cleartext, then the
handshake), over HTTP/1.1 and HTTP/2; the header in one packet with the request, or in pieces;
the address it names is the client's ($remote_addr, the access log) on every request of the
connection, while v2 LOCAL and v1 UNKNOWN keep the connection's own. A malformed header is
closed at once and a missing one at request_read_timeout, each with a line in the error log.

realip: X-Forwarded-For from its right, recursive or not, over several lines; X-Real-IP with
ports; an untrusted peer changes nothing; `real_ip_header proxy_protocol`; the server's settings
before the location's (nginx's two phases), a location's own; what the proxy's
X-Forwarded-For and the access log see. A client is made to come from 127.0.0.2 by binding its
socket there (all of 127.0.0.0/8 answers on Linux's loopback).
"""

import os
import re
import socket
import ssl
import struct
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402
import test_h2_frames as frames  # noqa: E402
import test_proxy  # noqa: E402
import test_tls  # noqa: E402

VARS = ("$remote_addr|$remote_port|$realip_remote_addr|$realip_remote_port|$proxy_protocol_addr|"
        "$proxy_protocol_port|$proxy_protocol_server_addr|$proxy_protocol_server_port")
RETURN_VARS = 'return 200 "%s\\n";' % VARS
FILES = {"files/x.txt": b"a file\n"}

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst, sport, dport, family="TCP4"):
    return ("PROXY %s %s %s %d %d\r\n" % (family, src, dst, sport, dport)).encode()


def v2(src=None, dst=None, sport=0, dport=0, tlvs=b"", command=1, family=None):
    """A v2 header: PROXY (command 1) over a stream of the addresses' family, or LOCAL (0)."""
    if src is None:
        body = tlvs
        fam = 0
    else:
        af = socket.AF_INET6 if ":" in src else socket.AF_INET
        body = (socket.inet_pton(af, src) + socket.inet_pton(af, dst)
                + struct.pack(">HH", sport, dport) + tlvs)
        fam = 0x21 if af == socket.AF_INET6 else 0x11
    if family is not None:
        fam = family
    return SIG + bytes([0x20 | command, fam]) + struct.pack(">H", len(body)) + body


def fields(body):
    """The answer of RETURN_VARS as a dict."""
    names = ["addr", "port", "realip_addr", "realip_port", "pp_addr", "pp_port", "pp_server_addr",
             "pp_server_port"]
    values = body.decode().rstrip("\n").split("|")
    assert len(values) == len(names), body
    return dict(zip(names, values))


def raw(port, source="127.0.0.1", timeout=harness.IO_TIMEOUT):
    """A harness.Conn to 127.0.0.1:port from the address `source`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    c = harness.Conn.__new__(harness.Conn)
    c.sock, c.timeout, c.buf, c.eof = s, timeout, bytearray(), False
    return c


def ask(port, head=b"", path="/", headers=None, source="127.0.0.1", host="localhost"):
    """One request after `head` (a PROXY header) in the same packet; returns the Response."""
    with raw(port, source) as c:
        c.send(head + request("GET", path, headers=headers, host=host, close=True))
        return c.read_response()


def tls_wrap(sock, alpn=None):
    ctx = ssl.create_default_context(cadata=test_tls.certificates()["all.pem"].decode())
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(sock, server_hostname=test_tls.NAME_A)


PROXY_CONF = """
error_log stderr info;
access_log @TMP@/access.log;
server {
    listen 127.0.0.1:0 http2 proxy_protocol;
    request_read_timeout 10s;
    root htdocs;
    location / { %(vars)s }
    location /files/ { }
}
server {
    listen 127.0.0.1:0 ssl http2 proxy_protocol;
    server_name a.test;
    request_read_timeout 10s;
    ssl_certificate tls/a-ec.crt;
    ssl_certificate_key tls/a-ec.key;
    location / { %(vars)s }
}
server {
    listen 127.0.0.1:0 proxy_protocol;
    request_read_timeout 1s;
    location / { %(vars)s }
}
""" % {"vars": RETURN_VARS}


class ProxyProtocol(PorterTestCase):
    """One porter: a cleartext PROXY address (HTTP/1.1 and h2c; request_read_timeout 10 s), a TLS
    one (HTTP/1.1 and h2) and one whose request_read_timeout is 1 s."""

    @classmethod
    def setUpClass(cls):
        cls.p = harness.Porter(PROXY_CONF, FILES, extra=test_tls.tls_extra())
        try:
            (_, _, cls.port), (scheme, _, cls.tport), (_, _, cls.short) = cls.p.listening(3)[:3]
            assert scheme == "https", cls.p.listening(3)
        except BaseException:
            cls.p.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def log_line(self, pattern, since=0, timeout=5.0):
        """Waits for an error log line matching `pattern` after offset `since`."""
        rx = re.compile(pattern)
        return harness.wait_until(lambda: rx.search(self.p.output[since:]), timeout,
                                  lambda: "no line %r in:\n%s" % (pattern, self.p.output[since:]))

    def access_lines(self):
        path = os.path.join(self.p.tmp, "access.log")
        with open(path) as f:
            return f.read().splitlines()

    # ---- the addresses ----

    def test_v1_tcp4(self):
        r = ask(self.port, v1("192.0.2.1", "198.51.100.2", 56324, 443))
        self.assertStatus(r, 200)
        f = fields(r.body)
        self.assertEqual((f["addr"], f["port"]), ("192.0.2.1", "56324"))
        self.assertEqual((f["pp_addr"], f["pp_port"]), ("192.0.2.1", "56324"))
        self.assertEqual((f["pp_server_addr"], f["pp_server_port"]), ("198.51.100.2", "443"))
        self.assertEqual(f["realip_addr"], "127.0.0.1")  # the connection's own peer

    def test_v1_tcp6(self):
        r = ask(self.port, v1("2001:db8::1", "2001:db8::2", 1, 65535, "TCP6"))
        f = fields(r.body)
        self.assertEqual((f["addr"], f["port"]), ("2001:db8::1", "1"))
        self.assertEqual((f["pp_server_addr"], f["pp_server_port"]), ("2001:db8::2", "65535"))

    def test_v2_inet_with_tlvs(self):
        tlvs = b"\x01\x00\x02h2" + b"\x04\x00\x03pad"  # ALPN and NOOP: skipped
        r = ask(self.port, v2("203.0.113.9", "10.0.0.1", 4444, 80, tlvs))
        f = fields(r.body)
        self.assertEqual((f["addr"], f["port"]), ("203.0.113.9", "4444"))
        self.assertEqual((f["pp_server_addr"], f["pp_server_port"]), ("10.0.0.1", "80"))

    def test_v2_inet6(self):
        r = ask(self.port, v2("2001:db8::7", "2001:db8::8", 5, 6))
        f = fields(r.body)
        self.assertEqual((f["addr"], f["port"], f["pp_server_addr"]),
                         ("2001:db8::7", "5", "2001:db8::8"))

    def test_local_and_unknown_keep_the_connection_address(self):
        for head in (v2(command=0), v2("203.0.113.9", "10.0.0.1", 1, 2, command=0),
                     v2(family=0x00), b"PROXY UNKNOWN\r\n",
                     b"PROXY UNKNOWN 203.0.113.9 10.0.0.1 1 2\r\n"):
            with raw(self.port) as c:
                c.send(head + request("GET", "/", close=True))
                r = c.read_response()
                own = c.sock.getsockname()
            f = fields(r.body)
            self.assertEqual((f["addr"], f["port"]), (own[0], str(own[1])), head)
            self.assertEqual((f["pp_addr"], f["pp_port"], f["pp_server_addr"]), ("", "", ""), head)

    def test_every_request_of_the_connection(self):
        with raw(self.port) as c:
            c.send(v1("192.0.2.44", "198.51.100.2", 1000, 80) + request("GET", "/"))
            first = c.read_response()
            c.send(request("GET", "/files/x.txt?again", close=True))
            second = c.read_response()
        self.assertEqual(fields(first.body)["addr"], "192.0.2.44")
        self.assertStatus(second, 200)
        line = harness.wait_until(
            lambda: [l for l in self.access_lines() if "/files/x.txt?again" in l], 5,
            "no access line")
        self.assertTrue(line[-1].startswith("192.0.2.44 - - ["), line)

    def test_header_in_pieces(self):
        for head, client in ((v1("192.0.2.5", "198.51.100.2", 7, 8), "192.0.2.5"),
                             (v2("192.0.2.6", "10.0.0.1", 7, 8), "192.0.2.6")):
            with raw(self.port) as c:
                # the signature and the line cut anywhere: byte by byte for the first 16
                for i in range(16):
                    c.send(head[i:i + 1])
                    time.sleep(0.02)  # each byte its own segment
                c.send(head[16:-1])
                time.sleep(0.05)
                c.send(head[-1:] + request("GET", "/", close=True))
                r = c.read_response()
            self.assertEqual(fields(r.body)["addr"], client)

    def test_request_in_pieces_after_the_header(self):
        with raw(self.port) as c:
            c.send(v1("192.0.2.7", "198.51.100.2", 7, 8) + b"GET / HT")
            time.sleep(0.05)
            c.send(b"TP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            r = c.read_response()
        self.assertEqual(fields(r.body)["addr"], "192.0.2.7")

    # ---- HTTP/2 and TLS ----

    def test_h2c(self):
        if frames.h2 is None:
            raise unittest.SkipTest("needs Python's h2 package")
        s = socket.create_connection(("127.0.0.1", self.port), harness.IO_TIMEOUT)
        try:
            s.sendall(v2("192.0.2.8", "10.0.0.1", 11, 80))
            out = frames.h2_request(self.port, "/", sock=s)
        finally:
            s.close()
        self.assertEqual(out["status"], 200)
        self.assertEqual(fields(out["body"])["addr"], "192.0.2.8")

    def tls_request(self, head, pieces=False):
        s = socket.create_connection(("127.0.0.1", self.tport), harness.IO_TIMEOUT)
        try:
            if pieces:
                for i in range(0, len(head), 5):
                    s.sendall(head[i:i + 5])
                    time.sleep(0.02)  # each piece its own segment
            else:
                s.sendall(head)
            s = tls_wrap(s)
            c = harness.Conn.__new__(harness.Conn)
            c.sock, c.timeout, c.buf, c.eof = s, harness.IO_TIMEOUT, bytearray(), False
            c.send(request("GET", "/", host=test_tls.NAME_A, close=True))
            return c.read_response()
        finally:
            s.close()

    def test_tls(self):
        r = self.tls_request(v1("192.0.2.9", "198.51.100.2", 1234, 443))
        f = fields(r.body)
        self.assertEqual((f["addr"], f["port"], f["pp_server_port"]), ("192.0.2.9", "1234", "443"))
        r = self.tls_request(v2("2001:db8::9", "2001:db8::a", 1, 443), pieces=True)
        self.assertEqual(fields(r.body)["addr"], "2001:db8::9")

    def test_tls_h2(self):
        if frames.h2 is None:
            raise unittest.SkipTest("needs Python's h2 package")
        s = socket.create_connection(("127.0.0.1", self.tport), harness.IO_TIMEOUT)
        try:
            s.sendall(v1("192.0.2.10", "198.51.100.2", 99, 443))
            s = tls_wrap(s, ["h2"])
            self.assertEqual(s.selected_alpn_protocol(), "h2")
            out = frames.h2_request(self.tport, "/", sock=s, scheme="https",
                                    authority=test_tls.NAME_A)
        finally:
            s.close()
        self.assertEqual(out["status"], 200)
        self.assertEqual(fields(out["body"])["addr"], "192.0.2.10")

    # ---- what is refused ----

    def assertRefused(self, port, data, why):
        since = len(self.p.output)
        with raw(port) as c:
            own = c.sock.getsockname()
            c.send(data)
            start = time.monotonic()
            closed, extra, _ = c.wait_closed(5.0)
            elapsed = time.monotonic() - start
        self.assertTrue(closed, "%r: not closed" % data[:40])
        self.assertEqual(extra, b"", "%r: porter answered" % data[:40])
        self.assertLess(elapsed, 5.0)  # at once: request_read_timeout is 10 s here
        self.log_line(r"\[error\] \d+: broken PROXY protocol header \(%s[^)]*\): .*client: "
                      r"127\.0\.0\.1:%d" % (why, own[1]), since)

    def test_malformed_closes(self):
        self.assertRefused(self.port, request("GET", "/"), "not a PROXY protocol header")
        self.assertRefused(self.port, v1("192.0.2.1", "198.51.100.2", 65536, 1), "bad port")
        self.assertRefused(self.port, b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", "LF without CR")
        self.assertRefused(self.port, b"PROXY UNKNOWN" + b"x" * 120, "no CRLF")
        self.assertRefused(self.port, v1("2001:db8::1", "198.51.100.2", 1, 2), "bad TCP4 address")
        self.assertRefused(self.port, SIG[:7] + b"X" + SIG[8:] + b"\x21\x11\x00\x0c",
                           "bad v2 signature")
        self.assertRefused(self.port, SIG + b"\x21\x11\x10\x00", "v2 header longer than 4096")
        self.assertRefused(self.port, SIG + b"\x21\x11\x00\x08" + bytes(8),
                           "v2 length shorter than its addresses")
        # a TLS client that does not send the header first
        s = socket.create_connection(("127.0.0.1", self.tport), harness.IO_TIMEOUT)
        since = len(self.p.output)
        try:
            with self.assertRaises((ssl.SSLError, OSError)):
                tls_wrap(s)
        finally:
            s.close()
        self.log_line(r"broken PROXY protocol header \(not a PROXY protocol header\): "
                      r"\"\\x16\\x03", since)

    def test_missing_header_times_out(self):
        since = len(self.p.output)
        for data in (b"", v1("192.0.2.1", "198.51.100.2", 1, 2)[:20]):
            with raw(self.short) as c:
                c.send(data)
                start = time.monotonic()
                closed, extra, _ = c.wait_closed(5.0)
                elapsed = time.monotonic() - start
            self.assertTrue(closed and extra == b"", (data, extra))
            self.assertTimedOut(elapsed, 1.0, what="request_read_timeout")
        self.log_line(r"\[info\] \d+: no PROXY protocol header within 1s "
                      r"\(request_read_timeout\), client: 127\.0\.0\.1:\d+", since)

    def test_closed_before_the_header(self):
        since = len(self.p.output)
        with raw(self.port) as c:
            c.send(b"PROXY TCP4 ")
            c.sock.shutdown(socket.SHUT_WR)
            self.assertTrue(c.wait_closed(5.0)[0])
        self.log_line(r"the client closed the connection before its PROXY protocol header", since)


REALIP_CONF = """
error_log stderr info;
access_log @TMP@/access.log;
server {
    listen 127.0.0.1:0;
    set_real_ip_from 127.0.0.2;
    set_real_ip_from 10.0.0.0/8;
    set_real_ip_from 2001:db8::/32;
    real_ip_header X-Forwarded-For;
    location / { %(vars)s }
}
server {
    listen 127.0.0.1:0;
    set_real_ip_from 127.0.0.2;
    set_real_ip_from 10.0.0.0/8;
    set_real_ip_from 2001:db8::/32;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    location / { %(vars)s }
}
server {
    listen 127.0.0.1:0;
    set_real_ip_from 127.0.0.2;
    root htdocs;
    location / { %(vars)s }
    location /files/ { }
}
server {
    listen 127.0.0.1:0;
    root htdocs;
    location / { %(vars)s }
    location /fwd/ {
        set_real_ip_from 127.0.0.2;
        set_real_ip_from 10.0.0.0/8;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        %(proxy)s
    }
    location /files/ { set_real_ip_from 127.0.0.2; real_ip_header My-Client; }
}
server {
    listen 127.0.0.1:0;
    set_real_ip_from 127.0.0.2;
    real_ip_header X-Real-IP;
    location / { %(vars)s }
    location /fwd/ { real_ip_header X-Forwarded-For; %(proxy)s }
}
server {
    listen 127.0.0.1:0 proxy_protocol;
    set_real_ip_from 127.0.0.1;
    real_ip_header proxy_protocol;
    location / { %(vars)s }
    location /loc/ { set_real_ip_from 127.0.0.0/8; real_ip_header X-Real-IP; %(proxy)s }
}
server {
    listen 127.0.0.1:0 proxy_protocol;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    location / { %(vars)s }
}
"""

PROXY_SETS = ("proxy_pass http://%s/; proxy_set_header X-Client $remote_addr; "
              "proxy_set_header X-Peer $realip_remote_addr; "
              "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")


class RealIP(PorterTestCase):
    """One porter, one server per setting: XFF (D), XFF recursive (E), X-Real-IP (F), a
    location's own (G), a server's and a location's (H), PROXY with real_ip_header
    proxy_protocol (I) and with X-Forwarded-For (J); a backend behind the proxy locations."""

    @classmethod
    def setUpClass(cls):
        cls.backend = test_proxy.Backend()
        try:
            text = REALIP_CONF % {"vars": RETURN_VARS,
                                  "proxy": PROXY_SETS % cls.backend.address}
            cls.p = harness.Porter(text, FILES)
        except BaseException:
            cls.backend.stop()
            raise
        try:
            ports = [port for _, _, port in cls.p.listening(7)[:7]]
            cls.xff, cls.recursive, cls.xri, cls.loc, cls.both, cls.pp, cls.ppxff = ports
        except BaseException:
            cls.p.cleanup()
            cls.backend.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()
            cls.backend.stop()

    def addr(self, port, headers=None, source="127.0.0.2", head=b"", path="/"):
        r = ask(port, head, path, headers, source)
        self.assertStatus(r, 200)
        return fields(r.body)

    def backend_saw(self, port, path, headers, source="127.0.0.2", head=b""):
        """The headers the backend received for one request through a proxy location."""
        before = len(self.backend.requests)
        r = ask(port, head, path, headers, source)
        self.assertStatus(r, 200)
        harness.wait_until(lambda: len(self.backend.requests) > before, 5, "no backend request")
        return {k.lower(): v for k, v in self.backend.requests[-1]["headers"]}

    def access_line(self, path):
        def find():
            with open(os.path.join(self.p.tmp, "access.log")) as f:
                return [l for l in f.read().splitlines() if path in l]
        return harness.wait_until(find, 5, "no access line for %s" % path)[-1]

    def test_forwarded_for_from_the_right(self):
        xff = {"X-Forwarded-For": "203.0.113.1, 10.0.0.5"}
        f = self.addr(self.xff, xff)
        self.assertEqual(f["addr"], "10.0.0.5")  # not recursive: the last one
        self.assertEqual(f["port"], "")  # none given
        self.assertEqual(f["realip_addr"], "127.0.0.2")
        f = self.addr(self.recursive, xff)
        self.assertEqual(f["addr"], "203.0.113.1")  # 10.0.0.5 is trusted: one more step left
        f = self.addr(self.recursive, {"X-Forwarded-For": "198.51.100.1, 203.0.113.1, 10.0.0.5"})
        self.assertEqual(f["addr"], "203.0.113.1")  # the first untrusted from the right
        f = self.addr(self.recursive, {"X-Forwarded-For": "10.0.0.1,10.0.0.2 , 10.0.0.3"})
        self.assertEqual(f["addr"], "10.0.0.1")  # all trusted: the leftmost
        f = self.addr(self.recursive, {"X-Forwarded-For": "203.0.113.1, 2001:db8::5"})
        self.assertEqual(f["addr"], "203.0.113.1")
        f = self.addr(self.xff, {"X-Forwarded-For": "203.0.113.1, 2001:db8::5"})
        self.assertEqual(f["addr"], "2001:db8::5")

    def test_forwarded_for_lines(self):
        # several lines are one list, the last line last
        hs = [("X-Forwarded-For", "203.0.113.1"), ("X-Forwarded-For", "10.0.0.5")]
        self.assertEqual(self.addr(self.recursive, hs)["addr"], "203.0.113.1")
        self.assertEqual(self.addr(self.xff, hs)["addr"], "10.0.0.5")

    def test_not_an_address_stops_the_walk(self):
        f = self.addr(self.recursive, {"X-Forwarded-For": "203.0.113.1, unknown, 10.0.0.5"})
        self.assertEqual(f["addr"], "10.0.0.5")  # the last address taken
        f = self.addr(self.xff, {"X-Forwarded-For": "203.0.113.1, unknown"})
        self.assertEqual(f["addr"], "127.0.0.2")  # nothing taken

    def test_untrusted_peer_changes_nothing(self):
        for port in (self.xff, self.recursive):
            f = self.addr(port, {"X-Forwarded-For": "203.0.113.1"}, source="127.0.0.1")
            self.assertEqual((f["addr"], f["realip_addr"]), ("127.0.0.1", "127.0.0.1"))
        f = self.addr(self.xri, {"X-Real-IP": "203.0.113.1"}, source="127.0.0.3")
        self.assertEqual(f["addr"], "127.0.0.3")

    def test_real_ip_header_x_real_ip(self):
        f = self.addr(self.xri, {"X-Real-IP": "203.0.113.7"})
        self.assertEqual((f["addr"], f["port"]), ("203.0.113.7", ""))
        f = self.addr(self.xri, {"X-Real-IP": "203.0.113.7:8080"})
        self.assertEqual((f["addr"], f["port"]), ("203.0.113.7", "8080"))
        f = self.addr(self.xri, {"X-Real-IP": "[2001:db8::7]:8443"})
        self.assertEqual((f["addr"], f["port"]), ("2001:db8::7", "8443"))
        f = self.addr(self.xri, {"X-Real-IP": "not-an-address"})
        self.assertEqual(f["addr"], "127.0.0.2")
        # X-Real-IP is the default: X-Forwarded-For is not read
        self.assertEqual(self.addr(self.xri, {"X-Forwarded-For": "203.0.113.7"})["addr"],
                         "127.0.0.2")
        # the access log sees the client
        ask(self.xri, b"", "/files/x.txt?xri", {"X-Real-IP": "203.0.113.77"}, "127.0.0.2")
        self.assertTrue(self.access_line("/files/x.txt?xri").startswith("203.0.113.77 - - ["))

    def test_location_settings(self):
        # the server trusts no one: only /fwd/ and /files/ do
        f = self.addr(self.loc, {"X-Forwarded-For": "203.0.113.2"})
        self.assertEqual(f["addr"], "127.0.0.2")
        seen = self.backend_saw(self.loc, "/fwd/a", {"X-Forwarded-For": "198.51.100.1, 10.0.0.9"})
        self.assertEqual(seen["x-client"], "198.51.100.1")
        self.assertEqual(seen["x-peer"], "127.0.0.2")
        # $proxy_add_x_forwarded_for: the header as it came, then $remote_addr (nginx's)
        self.assertEqual(seen["x-forwarded-for"], "198.51.100.1, 10.0.0.9, 198.51.100.1")
        ask(self.loc, b"", "/files/x.txt?g", {"My-Client": "203.0.113.88"}, "127.0.0.2")
        self.assertTrue(self.access_line("/files/x.txt?g").startswith("203.0.113.88 - - ["))

    def test_server_settings_come_first(self):
        # the server reads X-Real-IP before the location is known; /fwd/'s X-Forwarded-For only
        # gets a request the server left alone (nginx's post-read, then preaccess)
        seen = self.backend_saw(self.both, "/fwd/b", {"X-Forwarded-For": "203.0.113.3"})
        self.assertEqual(seen["x-client"], "203.0.113.3")
        seen = self.backend_saw(self.both, "/fwd/c", {"X-Forwarded-For": "203.0.113.3",
                                                      "X-Real-IP": "203.0.113.4"})
        self.assertEqual(seen["x-client"], "203.0.113.4")
        f = self.addr(self.both, {"X-Forwarded-For": "203.0.113.3"})
        self.assertEqual(f["addr"], "127.0.0.2")

    def test_real_ip_header_proxy_protocol(self):
        head = v1("192.0.2.20", "198.51.100.2", 2020, 80)
        # from the trusted 127.0.0.1: the PROXY address
        f = self.addr(self.pp, head=head, source="127.0.0.1")
        self.assertEqual((f["addr"], f["port"], f["realip_addr"]), ("192.0.2.20", "2020",
                                                                     "127.0.0.1"))
        # the server's setting took the address: /loc/'s X-Real-IP does not apply
        seen = self.backend_saw(self.pp, "/loc/x", {"X-Real-IP": "203.0.113.5"}, "127.0.0.1",
                                head)
        self.assertEqual(seen["x-client"], "192.0.2.20")
        # from 127.0.0.2, which the server does not trust: the location's own settings apply
        seen = self.backend_saw(self.pp, "/loc/x", {"X-Real-IP": "203.0.113.5"}, "127.0.0.2",
                                head)
        self.assertEqual((seen["x-client"], seen["x-peer"]), ("203.0.113.5", "127.0.0.2"))

    def test_forwarded_for_behind_proxy_protocol(self):
        head = v1("192.0.2.21", "198.51.100.2", 2121, 80)
        xff = {"X-Forwarded-For": "203.0.113.21"}
        # trusted is the connection's own peer, not the PROXY address
        f = self.addr(self.ppxff, xff, source="127.0.0.1", head=head)
        self.assertEqual((f["addr"], f["realip_addr"], f["pp_addr"]),
                         ("203.0.113.21", "127.0.0.1", "192.0.2.21"))
        f = self.addr(self.ppxff, xff, source="127.0.0.2", head=head)
        self.assertEqual((f["addr"], f["realip_addr"]), ("192.0.2.21", "127.0.0.2"))


class Conf(PorterTestCase):
    """What `porter -t` says of the directives."""

    def check(self, text):
        p = harness.Porter(text, start=False)
        try:
            return harness.run_porter(["-t", "-p", p.tmp, "-c", p.conf_path])
        finally:
            p.cleanup()

    def test_accepted(self):
        code, out, err = self.check(
            "set_real_ip_from 192.0.2.0/24;\nset_real_ip_from 2001:db8::/32;\n"
            "set_real_ip_from unix:;\nreal_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n"
            "server { listen 127.0.0.1:0 proxy_protocol; location / { real_ip_header "
            "proxy_protocol; } }\n")
        self.assertEqual(code, 0, out + err)

    def test_refused(self):
        cases = [
            ("server { listen 127.0.0.1:0; set_real_ip_from example.com; }",
             r":\d+:\d+: invalid address \"example.com\" in \"set_real_ip_from\""),
            ("server { listen 127.0.0.1:0; set_real_ip_from 192.0.2.0/33; }",
             r"invalid address \"192.0.2.0/33\""),
            ("server { listen 127.0.0.1:0; real_ip_header X-Real-IP; real_ip_header X-Real-IP; }",
             r"\"real_ip_header\" directive is duplicate"),
            ("server { listen 127.0.0.1:0; real_ip_header \"bad name\"; }",
             r"invalid header name \"bad name\""),
            ("server { listen 127.0.0.1:0; real_ip_recursive maybe; }",
             r"invalid value \"maybe\" in \"real_ip_recursive\""),
            ("server { listen 127.0.0.1:0 proxy_protocols; }",
             r"invalid parameter \"proxy_protocols\""),
        ]
        for text, want in cases:
            code, out, err = self.check(text)
            self.assertEqual(code, 1, text)
            self.assertRegex(out + err, want, text)


if __name__ == "__main__":
    harness.main()
