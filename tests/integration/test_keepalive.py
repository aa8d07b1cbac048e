"""Persistent connections: reuse, HTTP/1.0 and HTTP/1.1 defaults, Connection: close,
keepalive_requests."""

import sys
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

FILES = {
    "index.html": b"<html>index</html>\n",
    "a.txt": b"alpha\n",
    "b.txt": b"bravo bravo\n",
}


class KeepAlive(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter("", FILES)

    def test_several_requests_on_one_connection(self):
        with self.p.connect() as c:
            for path, body in [("/a.txt", b"alpha\n"), ("/b.txt", b"bravo bravo\n"),
                               ("/", FILES["index.html"]), ("/a.txt", b"alpha\n")]:
                c.send(request("GET", path))
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertEqual(r.body, body)
                self.assertNotEqual((r.header("Connection") or "").lower(), "close")
            self.assertOpen(c)

    def test_http10_closes_by_default(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt", version="1.0"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")
            self.assertNotEqual((r.header("Connection") or "").lower(), "keep-alive")
            self.assertClosed(c)

    def test_http10_keep_alive_on_request(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt", version="1.0", headers=[("Connection", "keep-alive")]))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.header("Connection", "").lower(), "keep-alive")
            self.assertEqual(r.body, b"alpha\n")
            self.assertOpen(c)
            c.send(request("GET", "/b.txt", version="1.0", headers=[("Connection", "keep-alive")]))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"bravo bravo\n")
            self.assertEqual(r.header("Connection", "").lower(), "keep-alive")
            # Without keep-alive this time, the connection ends after the answer.
            c.send(request("GET", "/a.txt", version="1.0"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertClosed(c)

    def test_http11_connection_close(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
            c.send(request("GET", "/b.txt", headers=[("Connection", "close")]))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"bravo bravo\n")
            self.assertTrue(r.has_token("Connection", "close"), r)
            self.assertClosed(c)

    def test_head_keeps_connection(self):
        with self.p.connect() as c:
            c.send(request("HEAD", "/b.txt"))
            r = c.read_response("HEAD")
            self.assertStatus(r, 200)
            self.assertEqual(r.header("Content-Length"), "12")
            c.send(request("GET", "/a.txt"))
            r = c.read_response()
            self.assertEqual(r.body, b"alpha\n")

    def test_404_keeps_connection(self):
        with self.p.connect() as c:
            c.send(request("GET", "/missing"))
            self.assertStatus(c.read_response(), 404)
            c.send(request("GET", "/a.txt"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")


class KeepaliveRequests(PorterTestCase):
    def test_closes_after_the_third(self):
        p = self.start_porter("keepalive_requests 3;", FILES)
        with p.connect() as c:
            for i in range(2):
                c.send(request("GET", "/a.txt"))
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertFalse(r.has_token("Connection", "close"), "request %d: %r" % (i + 1, r))
            c.send(request("GET", "/b.txt"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"bravo bravo\n")
            self.assertTrue(r.has_token("Connection", "close"), r)
            self.assertClosed(c)

    def test_pipelined_beyond_the_limit_are_not_answered(self):
        p = self.start_porter("keepalive_requests 3;", FILES)
        with p.connect() as c:
            c.send(b"".join(request("GET", "/a.txt") for _ in range(5)))
            rs = c.read_responses(["GET"] * 3)
            self.assertEqual([r.status for r in rs], [200, 200, 200])
            self.assertTrue(rs[2].has_token("Connection", "close"))
            # The fourth and fifth are dropped with the connection.
            self.assertClosed(c)


if __name__ == "__main__":
    harness.main()
