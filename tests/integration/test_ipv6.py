"""IPv6: `listen [::1]:0;` serves over the IPv6 loopback (skipped without one)."""

import sys
import os
import socket
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

FILES = {"index.html": b"<html>v6</html>\n", "a.txt": b"alpha\n"}


@unittest.skipUnless(harness.has_ipv6_loopback(), "no IPv6 loopback on this host")
class IPv6(PorterTestCase):
    def test_listen_on_ipv6_loopback(self):
        p = self.start_porter("server {\n    listen [::1]:0;\n    root htdocs;\n}\n", FILES)
        self.assertEqual(p.host, "::1")
        with p.connect() as c:
            c.send(request("GET", "/a.txt", host="[::1]:%d" % p.port))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")
            c.send(request("GET", "/", host="[::1]", close=True))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, FILES["index.html"])
            self.assertClosed(c)
        # IPv6 sockets are v6-only: nothing answers on 127.0.0.1 at that port.
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", p.port), 2).close()

    def test_ipv6_access_log_address(self):
        p = self.start_porter("server {\n    listen [::1]:0;\n    root htdocs;\n"
                              "    access_log @TMP@/access.log;\n}\n", FILES)
        with p.connect() as c:
            c.send(request("GET", "/a.txt", close=True))
            self.assertStatus(c.read_response(), 200)
        p.stop()  # which writes what is buffered
        with open(os.path.join(p.tmp, "access.log")) as f:
            text = f.read()
        self.assertRegex(text, r'^::1 - - \[[^\]]+\] "GET /a.txt HTTP/1.1" 200 6 "-" "-"\n$')

    def test_both_families(self):
        # One port named for both families: held on both until porter listens on it.
        port = self.reserve_port(("::1", "127.0.0.1"))
        conf = ("server {\n    listen [::1]:%d;\n    listen 127.0.0.1:%d;\n    root htdocs;\n}\n" % (port, port))
        p = self.start_porter(conf, FILES)
        self.assertEqual(sorted(p.listening(2)), [("http", "127.0.0.1", port), ("http", "::1", port)])
        for host in ("::1", "127.0.0.1"):
            with harness.Conn(host, port) as c:
                c.send(request("GET", "/a.txt", close=True))
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertEqual(r.body, b"alpha\n")


if __name__ == "__main__":
    harness.main()
