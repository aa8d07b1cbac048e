"""Virtual hosts: several server blocks on one address chosen by Host (exact names, "*.x",
".x", the default server), each with its own root; and separate addresses."""

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402

CONF = """
server {
    listen 127.0.0.1:@PORT@;
    server_name first.test;
    root a;
}
server {
    listen 127.0.0.1:@PORT@;
    server_name exact.test www.exact.test;
    root b;
}
server {
    listen 127.0.0.1:@PORT@ default_server;
    server_name default.test;
    root c;
}
server {
    listen 127.0.0.1:@PORT@;
    server_name *.wild.test;
    root d;
}
server {
    listen 127.0.0.1:@PORT@;
    server_name .dot.test;
    root e;
}
server {
    listen 127.0.0.1:@PORT@;
    server_name sub.wild.test;
    root f;
}
"""

EXTRA = {"%s/who.txt" % d: ("%s\n" % d).encode() for d in "abcdef"}


class VirtualHosts(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        # The servers share one address, so the conf names its port (port 0 would give each
        # `listen` a socket of its own): held until porter listens on it.
        port, held = harness.reserve_port()
        try:
            cls.p = harness.Porter(CONF.replace("@PORT@", str(port)), extra=EXTRA)
        finally:
            for s in held:
                s.close()
        if cls.p.port != port:
            raise AssertionError("porter listens on %d, not %d" % (cls.p.port, port))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def who(self, host, version="1.1", target="/who.txt"):
        headers = [] if host is None else [("Host", host)]
        with self.p.connect() as c:
            c.send(request("GET", target, headers=headers, version=version, host=None, close=True))
            r = c.read_response()
        self.assertStatus(r, 200)
        return r.body.decode().strip()

    def test_exact_names(self):
        self.assertEqual(self.who("first.test"), "a")
        self.assertEqual(self.who("exact.test"), "b")
        self.assertEqual(self.who("www.exact.test"), "b")
        self.assertEqual(self.who("default.test"), "c")

    def test_host_is_case_insensitive_and_may_carry_a_port_or_a_dot(self):
        self.assertEqual(self.who("EXACT.Test"), "b")
        self.assertEqual(self.who("exact.test:8080"), "b")
        self.assertEqual(self.who("exact.test."), "b")

    def test_unknown_host_gets_the_default_server(self):
        self.assertEqual(self.who("unknown.test"), "c")
        self.assertEqual(self.who("127.0.0.1"), "c")
        self.assertEqual(self.who("127.0.0.1:%d" % self.p.port), "c")
        self.assertEqual(self.who("[::1]:80"), "c")

    def test_http10_without_host_gets_the_default_server(self):
        self.assertEqual(self.who(None, version="1.0"), "c")

    def test_wildcard_prefix(self):
        self.assertEqual(self.who("x.wild.test"), "d")
        self.assertEqual(self.who("a.b.wild.test"), "d")
        # "*.wild.test" does not match the bare domain
        self.assertEqual(self.who("wild.test"), "c")

    def test_exact_beats_wildcard(self):
        self.assertEqual(self.who("sub.wild.test"), "f")

    def test_dot_form_matches_domain_and_subdomains(self):
        self.assertEqual(self.who("dot.test"), "e")
        self.assertEqual(self.who("www.dot.test"), "e")
        self.assertEqual(self.who("notdot.test"), "c")

    def test_absolute_form_target_names_the_host(self):
        # RFC 9112 section 3.2.2: the authority of an absolute-form target wins over Host.
        with self.p.connect() as c:
            c.send(request("GET", "http://exact.test/who.txt", headers=[("Host", "first.test")],
                           host=None, close=True))
            r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"b\n")

    def test_each_host_keeps_its_own_cache_entries(self):
        # The same path in two roots, served alternately on one connection.
        with self.p.connect() as c:
            for _ in range(3):
                for host, want in (("first.test", b"a\n"), ("exact.test", b"b\n")):
                    c.send(request("GET", "/who.txt", headers=[("Host", host)], host=None))
                    r = c.read_response()
                    self.assertEqual(r.body, want)


class FirstServerIsDefault(PorterTestCase):
    """Without default_server the first server listing the address answers unknown hosts."""

    def test_first_listed(self):
        port = self.reserve_port()
        conf = ("server { listen 127.0.0.1:%d; server_name one.test; root a; }\n"
                "server { listen 127.0.0.1:%d; server_name two.test; root b; }\n" % (port, port))
        p = self.start_porter(conf, extra=EXTRA)
        self.assertEqual(p.ports(1), [port])
        r = p.get("/who.txt", headers=[("Host", "nobody.test")])
        self.assertEqual(r.body, b"a\n")
        r = p.get("/who.txt", headers=[("Host", "two.test")])
        self.assertEqual(r.body, b"b\n")


class SeparateAddresses(PorterTestCase):
    """Servers on different ports do not see each other's names."""

    def test_ports(self):
        conf = ("server { listen 127.0.0.1:0; server_name one.test; root a; }\n"
                "server { listen 127.0.0.1:0; server_name two.test; root b; }\n")
        p = self.start_porter(conf, extra=EXTRA)
        p1, p2 = p.ports(2)
        self.assertNotEqual(p1, p2)
        # "two.test" on the first port: only server one listens there
        r = p.get("/who.txt", headers=[("Host", "two.test")])
        self.assertEqual(r.body, b"a\n")
        with harness.Conn("127.0.0.1", p2) as c:
            c.send(request("GET", "/who.txt", headers=[("Host", "one.test")], host=None, close=True))
            self.assertEqual(c.read_response().body, b"b\n")


if __name__ == "__main__":
    harness.main()
