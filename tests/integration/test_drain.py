"""A reload while a response is in flight costs the client nothing: the response whose head went
out with keep-alive before the reload is finished, the connection stays open, and the next
request on it is answered (with Connection: close) by the retiring generation, then the
connection closes. Proxied answers with Content-Length and chunked (a backend written here
pauses between the head and the body, and the reload happens in the pause), a static file, and
the same over TLS; in a single process and with workers."""

import os
import signal
import ssl
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import request  # noqa: E402
from test_proxy import ProxyTestCase, read_request_head  # noqa: E402
from test_tls import tls_extra  # noqa: E402

BODY = b"0123456789" * 100
BIG = os.urandom(4 * 1024 * 1024)


class PausingBackend:
    """Answers each request on a kept-alive connection. The first answer's head goes out, then
    the backend waits until `release` is set before it sends the body; later answers go out
    at once."""

    def __init__(self, test, chunked):
        self.chunked = chunked
        self.head_sent = threading.Event()
        self.release = threading.Event()
        self.answers = 0
        self.backend = test.raw_backend(self.serve)

    def serve(self, s, _backend):
        while True:
            head = read_request_head(s)
            if not head:
                return
            first = self.answers == 0
            self.answers += 1
            if self.chunked:
                s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            else:
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY))
            if first:
                self.head_sent.set()
                self.release.wait(20)
            if self.chunked:
                s.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY))
            else:
                s.sendall(BODY)


class DrainTest(ProxyTestCase):
    def start(self, workers, backend=None, tls=False, grace="10s"):
        self.port = self.reserve_port()
        listen = "127.0.0.1:%d%s" % (self.port, " ssl" if tls else "")
        certs = ("    ssl_certificate tls/a-ec.crt;\n    ssl_certificate_key tls/a-ec.key;\n"
                 if tls else "")
        upstream = ("upstream app {\n    server %s;\n    keepalive 4;\n}\n" % backend.backend.address
                    if backend else "")
        location = "    location /app { proxy_pass http://app; }\n" if backend else ""
        self.conf_text = ("worker_processes %d;\nshutdown_grace_period %s;\n"
                          "keepalive_timeout 30s;\n%s"
                          "server {\n    listen %s;\n    root htdocs;\n%s%s}\n"
                          % (workers, grace, upstream, listen, certs, location))
        p = self.start_porter(self.conf_text, {"big.bin": BIG, "a.txt": b"one\n"},
                              extra=tls_extra() if tls else None)
        harness.wait_workers(p, workers if workers > 1 else 0)
        return p

    def connect(self, p, tls):
        c = harness.Conn(p.host, p.port, 20, rcvbuf=32 * 1024)
        self.addCleanup(c.close)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            # A close without close_notify is an error here, not an end.
            c.sock = ctx.wrap_socket(c.sock, server_hostname="a.test",
                                     suppress_ragged_eofs=False)
        return c

    def reload(self, p):
        marks = p.output.count("configuration reloaded")
        p.signal(signal.SIGHUP)
        self.assertTrue(harness.wait_for(
            lambda: p.output.count("configuration reloaded") > marks, 10),
            "no reload reported:\n" + p.output[-2000:])

    def next_request_answered(self, c, path, want):
        """The connection of the finished response takes one more request: answered, told to
        close, then closed."""
        c.send(request("GET", path))
        r = c.read_response(timeout=10)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, want)
        self.assertTrue(r.has_token("Connection", "close"), r)
        closed, _, _ = c.wait_closed(5)
        self.assertTrue(closed, "the retired connection stayed open after Connection: close")

    def proxied(self, workers, chunked, tls=False):
        b = PausingBackend(self, chunked)
        p = self.start(workers, b, tls)
        c = self.connect(p, tls)
        c.send(request("GET", "/app/one"))
        self.assertTrue(b.head_sent.wait(10), "the backend got no request")
        head = c.read_head()
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        self.assertNotIn(b"close", head.lower())
        self.reload(p)
        b.release.set()
        # read_head left the first bytes of the body in c.buf: the rest by the framing
        body = c._read_chunked(10) if chunked else c.read_exact(len(BODY), timeout=10)
        self.assertEqual(body, BODY)
        self.next_request_answered(c, "/app/two", BODY)
        self.assertEqual(b.answers, 2)

    def static(self, workers, tls=False):
        p = self.start(workers, tls=tls)
        c = self.connect(p, tls)
        c.send(request("GET", "/big.bin"))
        head = c.read_head()
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        self.assertNotIn(b"close", head.lower())
        self.reload(p)
        self.assertTrue(c.read_exact(len(BIG), timeout=20) == BIG)
        self.next_request_answered(c, "/a.txt", b"one\n")

    def upload(self, workers):
        # A request body still coming in when the reload happens: all of it reaches the
        # backend and the answer tells the client to close.
        got = []

        def serve(s, _backend):
            head = read_request_head(s)
            n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
                    .split(b":")[1])
            body = head[head.index(b"\r\n\r\n") + 4:]
            while len(body) < n:
                d = s.recv(65536)
                if not d:
                    break
                body += d
            got.append(body)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        b = self.raw_backend(serve)
        p = self.start(workers, type("B", (), {"backend": b})())
        c = self.connect(p, False)
        data = os.urandom(200000)
        c.send(request("POST", "/app/up", headers={"Content-Length": str(len(data))}))
        c.send(data[:50000])
        self.assertTrue(harness.wait_for(lambda: b.connections > 0, 10))
        self.reload(p)
        c.send(data[50000:])
        r = c.read_response(timeout=10)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"ok")
        self.assertTrue(r.has_token("Connection", "close"), r)
        self.assertEqual(got, [data])
        closed, _, _ = c.wait_closed(5)
        self.assertTrue(closed)

    def test_upload_single(self):
        self.upload(1)

    def test_upload_workers(self):
        self.upload(2)

    def test_tunnel_kept_until_grace(self):
        # An upgraded connection (a tunnel after 101) goes on through a reload, and is closed
        # when shutdown_grace_period has passed.
        def serve(s, _backend):
            read_request_head(s)
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-echo\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            while True:
                d = s.recv(65536)
                if not d:
                    return
                s.sendall(d)

        b = self.raw_backend(serve)
        p = self.start(2, type("B", (), {"backend": b})(), grace="2s")
        c = self.connect(p, False)
        c.send(request("GET", "/app/ws", headers={"Upgrade": "x-echo", "Connection": "Upgrade"}))
        self.assertTrue(c.read_head().startswith(b"HTTP/1.1 101 "))
        c.send(b"before")
        self.assertEqual(c.read_exact(6), b"before")
        self.reload(p)
        reloaded = time.monotonic()
        c.send(b"after")
        self.assertEqual(c.read_exact(5), b"after")
        closed, _, _ = c.wait_closed(6)
        self.assertTrue(closed, "the tunnel outlived shutdown_grace_period")
        self.assertGreater(time.monotonic() - reloaded, 1.5, "the tunnel closed before the grace")

    def test_proxied_length_single(self):
        self.proxied(1, chunked=False)

    def test_proxied_length_workers(self):
        self.proxied(2, chunked=False)

    def test_proxied_chunked_single(self):
        self.proxied(1, chunked=True)

    def test_proxied_chunked_workers(self):
        self.proxied(2, chunked=True)

    def test_proxied_tls_workers(self):
        self.proxied(2, chunked=False, tls=True)

    def test_static_single(self):
        self.static(1)

    def test_static_workers(self):
        self.static(2)

    def test_static_tls_workers(self):
        self.static(2, tls=True)


if __name__ == "__main__":
    harness.main()
