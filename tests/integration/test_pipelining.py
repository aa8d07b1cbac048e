"""Pipelined requests: answered in order with exact bodies, and request bodies that the static
handler does not read are discarded so the next request still parses."""

import os
import re
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

FILES = {
    "index.html": b"<html>index</html>\n",
    "a.txt": b"alpha\n",
    "b.css": b"body { color: red }\n",
    "c.js": b"console.log(1);\n",
    "big.bin": os.urandom(40 * 1024),  # goes out with sendfile, between in-memory ones
}


class Pipelining(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter("", FILES)

    def test_twenty_in_one_send(self):
        plan = []
        names = [("/a.txt", "a.txt"), ("/b.css", "b.css"), ("/missing.txt", None), ("/c.js", "c.js"),
                 ("/", "index.html"), ("/big.bin", "big.bin")]
        for i in range(20):
            path, name = names[i % len(names)]
            method = "HEAD" if i % 7 == 3 else "GET"
            plan.append((method, path, name))
        raw = b"".join(request(m, path, headers=[("X-Seq", str(i))]) for i, (m, path, _) in enumerate(plan))
        with self.p.connect() as c:
            c.send(raw)
            rs = c.read_responses([m for m, _, _ in plan])
            for i, ((method, path, name), r) in enumerate(zip(plan, rs)):
                what = "request %d (%s %s)" % (i, method, path)
                if name is None:
                    self.assertEqual(r.status, 404, what)
                    continue
                self.assertEqual(r.status, 200, what)
                self.assertEqual(int(r.header("Content-Length")), len(FILES[name]), what)
                self.assertEqual(r.body, b"" if method == "HEAD" else FILES[name], what)
            # Nothing more than the 20 answers, and the connection stays usable.
            self.assertOpen(c)
            c.send(request("GET", "/a.txt", close=True))
            r = c.read_response()
            self.assertEqual(r.body, b"alpha\n")
            self.assertClosed(c)

    def test_post_body_is_discarded(self):
        # The body looks like a request: if it were parsed as one, a third answer would come.
        smuggled = request("GET", "/index.html")
        raw = (request("POST", "/a.txt", headers=[("Content-Length", str(len(smuggled)))]) + smuggled
               + request("GET", "/b.css") + request("GET", "/c.js", close=True))
        with self.p.connect() as c:
            c.send(raw)
            r1, r2, r3 = c.read_responses(["POST", "GET", "GET"])
            self.assertStatus(r1, 405)
            self.assertEqual(r1.header("Allow"), "GET, HEAD")
            self.assertStatus(r2, 200)
            self.assertEqual(r2.body, FILES["b.css"])
            self.assertStatus(r3, 200)
            self.assertEqual(r3.body, FILES["c.js"])
            self.assertClosed(c)

    def test_post_body_in_pieces_is_discarded(self):
        smuggled = request("GET", "/index.html")
        with self.p.connect() as c:
            c.send(request("POST", "/a.txt", headers=[("Content-Length", str(len(smuggled)))]))
            r1 = c.read_response("POST")
            self.assertStatus(r1, 405)
            # The body arrives after the answer, then the next request.
            c.send(smuggled[:10])
            c.send(smuggled[10:] + request("GET", "/a.txt"))
            r2 = c.read_response()
            self.assertStatus(r2, 200)
            self.assertEqual(r2.body, b"alpha\n")
            self.assertOpen(c)

    def test_chunked_body_is_discarded(self):
        smuggled = request("GET", "/index.html")
        chunked = b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\n\r\n" % (
            10, smuggled[:10], len(smuggled) - 10, smuggled[10:])
        raw = (request("POST", "/a.txt", headers=[("Transfer-Encoding", "chunked")]) + chunked
               + request("GET", "/b.css") + request("GET", "/c.js", close=True))
        with self.p.connect() as c:
            c.send(raw)
            r1, r2, r3 = c.read_responses(["POST", "GET", "GET"])
            self.assertStatus(r1, 405)
            self.assertStatus(r2, 200)
            self.assertEqual(r2.body, FILES["b.css"])
            self.assertStatus(r3, 200)
            self.assertEqual(r3.body, FILES["c.js"])
            self.assertClosed(c)

    def test_chunked_body_with_trailer_is_discarded(self):
        raw = (request("PUT", "/a.txt", headers=[("Transfer-Encoding", "chunked")])
               + b"5\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n" + request("GET", "/a.txt", close=True))
        with self.p.connect() as c:
            c.send(raw)
            r1, r2 = c.read_responses(["PUT", "GET"])
            self.assertStatus(r1, 405)
            self.assertStatus(r2, 200)
            self.assertEqual(r2.body, b"alpha\n")
            self.assertClosed(c)

    def test_get_with_body_then_next(self):
        raw = (request("GET", "/a.txt", headers=[("Content-Length", "5")]) + b"xxxxx"
               + request("GET", "/b.css", close=True))
        with self.p.connect() as c:
            c.send(raw)
            r1, r2 = c.read_responses(["GET", "GET"])
            self.assertStatus(r1, 200)
            self.assertEqual(r1.body, b"alpha\n")
            self.assertStatus(r2, 200)
            self.assertEqual(r2.body, FILES["b.css"])
            self.assertClosed(c)

    def test_request_split_byte_by_byte(self):
        raw = request("GET", "/a.txt", headers=[("User-Agent", "slow")])
        with self.p.connect() as c:
            for i in range(len(raw)):
                c.send(raw[i:i + 1])
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")


class OneWrite(PorterTestCase):
    """The responses to pipelined requests leave in one write (README, "HTTP behaviour"):
    counted on porter's own socket of the connection with strace attached to porter."""

    WRITES = "write|writev|pwritev2?|send|sendto|sendmsg|sendmmsg|sendfile(64)?"

    @unittest.skipUnless(harness.tool("strace"), "needs strace")
    def test_pipelined_responses_leave_in_one_write(self):
        p = self.start_porter("", FILES)
        with p.connect() as c:
            where = harness.wait_for(lambda: harness.server_side([p.pid], p.port, c), 5)
            self.assertIsNotNone(where, "porter's socket of the connection was not found")
            fd = where[1]
            # Twelve answers from memory: files (first asked: read into the cache), a HEAD, a
            # 404 and an error page, and the same files again (cache hits).
            plan = [("GET", "/a.txt"), ("GET", "/b.css"), ("HEAD", "/c.js"), ("GET", "/missing"),
                    ("GET", "/index.html"), ("GET", "/c.js")] * 2
            tracer = harness.Strace(p.pid, self.WRITES)
            try:
                c.send(b"".join(request(m, path) for m, path in plan))
                rs = c.read_responses([m for m, _ in plan])
            finally:
                lines = tracer.stop()
            self.assertEqual([r.status for r in rs], [200, 200, 200, 404, 200, 200] * 2)
            self.assertEqual(rs[1].body, FILES["b.css"])
            calls = [l for l in lines if re.match(r"^(\d+ +)?(%s)\(%d," % (self.WRITES, fd), l)]
            self.assertEqual(len(calls), 1, "writes of the twelve answers:\n" + "\n".join(lines))


if __name__ == "__main__":
    harness.main()
