"""A request limit means what its directive says and nothing less: `max_request_headers
unlimited` takes a thousand header fields (bounded only by `max_request_header_length`, or on
HTTP/2 by `http2_max_header_list_size`), on HTTP/1.1 and HTTP/2; and a request body whose
client stops sending it for `request_body_timeout` is answered 408 (nginx's
`client_body_timeout`), not 503, while its handler (the proxy) waits for it, on both protocols.
"""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402
import test_h2_frames as h2f  # noqa: E402

N = 1000  # header fields: four times what any fixed table inside porter held


def many_headers(n):
    return [("X-H%d" % i, "v%d" % i) for i in range(n)]


class ManyHeaders(PorterTestCase):
    """`max_request_headers unlimited`: every field counts, and the last one is seen."""

    def start(self, header_length="64k"):
        # $http_x_h999 is the last field sent: its access line shows porter kept all of them.
        return self.start_porter(
            "log_format seen '$request_uri $http_x_h%d $http_x_h0';\n"
            "server {\n"
            "    listen 127.0.0.1:0 http2;\n"
            "    root htdocs;\n"
            "    max_request_headers unlimited;\n"
            "    max_request_header_length %s;\n"
            "    http2_max_header_list_size 1m;\n"
            "    access_log @TMP@/seen.log seen;\n"
            "    location = /last { return 200 \"ok\"; }\n"
            "}\n" % (N - 1, header_length))

    def assertSeen(self, p, line):
        path = os.path.join(p.tmp, "seen.log")
        harness.wait_until(lambda: os.path.exists(path) and line in open(path).read(), 5,
                           lambda: "%r in the access log: %r" % (
                               line, open(path).read() if os.path.exists(path) else ""))

    def test_a_thousand_fields_over_http11(self):
        p = self.start()
        with p.connect() as c:
            c.send(request("GET", "/last", headers=many_headers(N)))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertSeen(p, "/last v%d v0\n" % (N - 1))
            # The connection goes on: the next request on it is answered too.
            c.send(request("GET", "/last", headers=many_headers(3)))
            self.assertStatus(c.read_response(), 200)

    def test_the_head_size_still_bounds_them(self):
        # 1000 fields of about 12 bytes each: over a 4k head, so refused for its size.
        p = self.start("4k")
        with p.connect() as c:
            c.send(request("GET", "/last", headers=many_headers(N)))
            self.assertStatus(c.read_response(), 431)

    def test_a_thousand_fields_over_http2(self):
        if h2f.h2 is None:
            self.skipTest("needs python3-h2")
        p = self.start()
        r = h2f.h2_request(p.port, "/last?h2",
                           headers=[(n.lower(), v) for n, v in many_headers(N)])
        self.assertEqual((r["status"], r["reset"]), (200, None), r["events"][:5])
        self.assertSeen(p, "/last?h2 v%d v0\n" % (N - 1))

    def test_a_numeric_limit_still_refuses(self):
        p = self.start_porter("max_request_headers 500;\n"
                              "    location = /last { return 200 \"ok\"; }\n")
        with p.connect() as c:
            c.send(request("GET", "/last", headers=many_headers(499)))  # plus Host: 500
            self.assertStatus(c.read_response(), 200)
        with p.connect() as c:
            c.send(request("GET", "/last", headers=many_headers(500)))
            self.assertStatus(c.read_response(), 431)


class SilentBackend:
    """An upstream that accepts and reads whatever comes, and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(s)
            threading.Thread(target=self._read, args=(s,), daemon=True).start()

    def _read(self, s):
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    return
                self.received += len(data)
        except OSError:
            return

    def close(self):
        self.sock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass


class StalledBody(PorterTestCase):
    """request_body_timeout 1s while the proxy reads the body for its upstream: 408."""

    def setUp(self):
        self.backend = SilentBackend()
        self.addCleanup(self.backend.close)
        self.p = self.start_porter(
            "server {\n"
            "    listen 127.0.0.1:0 http2;\n"
            "    root htdocs;\n"
            "    request_body_timeout 1s;\n"
            "    response_timeout 30s;\n"
            "    location /app/ { proxy_pass http://127.0.0.1:%d; }\n"
            "}\n" % self.backend.port)

    def test_http11(self):
        with self.p.connect(timeout=10) as c:
            c.send(request("POST", "/app/upload", headers=[("Content-Length", "1000")]) +
                   b"x" * 100)
            start = time.monotonic()
            r = c.read_response(timeout=8)
            elapsed = time.monotonic() - start
            self.assertStatus(r, 408)
            self.assertTrue(r.has_token("Connection", "close"), r)
            self.assertTimedOut(elapsed, 1.0, early=0.3, what="request_body_timeout")
            self.assertClosed(c)
        # The body's first bytes did go on to the upstream: its handler was reading it.
        harness.wait_until(lambda: self.backend.received > 100, 5, "the body at the upstream")
        # Said as a timeout, not as an invalid request.
        self.assertIn("client timed out (408): request body not received in time", self.p.output)

    def test_http2(self):
        if h2f.h2 is None:
            self.skipTest("needs python3-h2")
        c = h2f.RawH2(self.p.port)
        self.addCleanup(c.close)
        c.send(c.headers_frame(1, h2f.request_headers("/app/upload", "POST") +
                               [("content-length", "1000")], end_stream=False))
        c.send(h2f.frame(h2f.DATA, 0, 1, b"x" * 100))
        start = time.monotonic()
        c.read_until(lambda: c.status(1) is not None, 8)
        elapsed = time.monotonic() - start
        self.assertEqual(c.status(1), 408, c.summary())
        self.assertTimedOut(elapsed, 1.0, early=0.3, what="request_body_timeout")
        # Only the stream ended: the connection serves the next one.
        c.request(3, "/nothing-here")
        c.read_until(lambda: c.ended(3), 5)
        self.assertEqual(c.status(3), 404, c.summary())


if __name__ == "__main__":
    harness.main()
