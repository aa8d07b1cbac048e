"""The reverse proxy streaming: bounded buffers in both directions (a slow client pauses the
upstream, a slow upstream pauses the client's upload), large bodies intact, the proxy's
deadlines governing the wait for the upstream, a client that leaves mid-request, and pipelined
requests, one of them behind a large file. Backends come from test_proxy.py; everything on loopback, bounded in time.
"""

import hashlib
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_proxy import ProxyTestCase, _pattern, read_request_head  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class BackPressureTest(ProxyTestCase):
    def test_slow_client_pauses_the_upstream(self):
        total = 96 << 20
        b = self.backend()
        p = self.proxy([b.address])
        c = harness.Conn(p.host, p.port, rcvbuf=65536)
        self.addCleanup(c.close)
        c.send(harness.request("GET", "/big/%d" % total))
        head = c.read_head()
        self.assertIn(b" 200 ", head)
        rss0 = rss_kib(p.pid)
        # The client reads nothing for a while: the backend is held back, not drained into
        # porter's memory. (The stretch of not reading is the behaviour under test.)
        time.sleep(1.5)  # the stretch of not reading
        sent = b.bytes_sent
        self.assertLess(sent, 32 << 20, "the backend was not held back")
        self.assertLess(rss_kib(p.pid) - rss0, 24 << 10, "porter buffered the response")
        # Then everything arrives intact.
        h = hashlib.sha256()
        got = len(c.buf)
        h.update(bytes(c.buf))
        c.buf = bytearray()
        c.sock.settimeout(20)
        while got < total:
            d = c.sock.recv(1 << 20)
            self.assertTrue(d, "closed after %d bytes" % got)
            h.update(d)
            got += len(d)
        self.assertEqual(got, total)
        self.assertEqual(h.hexdigest(), hashlib.sha256(_pattern(0, total)).hexdigest())

    def test_slow_upstream_pauses_the_client_upload(self):
        total = 48 << 20
        state = {"read": 0}

        def handler(s, srv):
            head = read_request_head(s)
            length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
                         .split(b":")[1])
            body = head.split(b"\r\n\r\n", 1)[1]
            time.sleep(1.5)  # not reading: the proxy must stop reading the client
            h = hashlib.sha256(body)
            n = len(body)
            s.settimeout(20)
            while n < length:
                d = s.recv(1 << 20)
                if not d:
                    break
                h.update(d)
                n += len(d)
            state["read"] = n
            digest = h.hexdigest().encode()
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(digest), digest))

        rb = self.raw_backend(handler)
        p = self.proxy([rb.address], top="max_request_body_length 64m;")
        data = os.urandom(1 << 20) * 48
        c = harness.Conn(p.host, p.port)
        self.addCleanup(c.close)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        progress = {"sent": 0}

        def upload():
            c.sock.sendall(harness.request("POST", "/up", headers={"Content-Length": str(total)}))
            view = memoryview(data)
            c.sock.settimeout(30)
            while progress["sent"] < total:
                n = c.sock.send(view[progress["sent"]:progress["sent"] + 65536])
                progress["sent"] += n

        t = threading.Thread(target=upload, daemon=True)
        t.start()
        time.sleep(1.0)  # a second of a slow upstream: the upload must be held back meanwhile
        self.assertLess(progress["sent"], 24 << 20, "the upload was not held back")
        t.join(30)
        r = c.read_response(timeout=30)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, hashlib.sha256(data).hexdigest().encode())
        self.assertEqual(state["read"], total)

    def test_large_bodies_both_ways(self):
        b = self.backend()
        p = self.proxy([b.address], top="max_request_body_length 32m;")
        data = os.urandom(1 << 20) * 12
        with p.connect(timeout=30) as c:
            c.send(harness.request("PUT", "/echo", headers={"Content-Length": str(len(data))},
                                   body=data))
            r = c.read_response(timeout=30)
        self.assertStatus(r, 200)
        self.assertEqual(len(r.body), len(data))
        self.assertEqual(r.body, data)

    def test_a_last_piece_that_waits_for_the_client_still_ends_the_response(self):
        # The proxied response sits behind a large file in the client's queue, so its one
        # body piece fills the queue past its mark: the proxy waits for the client, and once
        # the client has taken it all the response ends (the connection carries on), rather
        # than waiting for more from the upstream until proxy_read_timeout.
        b = self.backend()
        conf = ("upstream app { server %s; }\n"
                "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                "    location /static/ { }\n"
                "    location / { proxy_pass http://app; proxy_read_timeout 3s; }\n}\n"
                % b.address)
        p = self.start_porter(conf, files={"static/big.bin": b"s" * (1 << 20)})
        with harness.Conn(p.host, p.port, rcvbuf=16384) as c:
            c.send(harness.request("GET", "/static/big.bin") + harness.request("GET", "/behind"))
            time.sleep(0.3)  # (both answers are queued before the client reads)
            rs = c.read_responses(["GET", "GET"], timeout=20)
            self.assertEqual([r.status for r in rs], [200, 200])
            self.assertEqual(rs[1].body, b"ok /behind")
            c.send(harness.request("GET", "/next"))
            r = c.read_response(timeout=2)
        self.assertEqual(r.body, b"ok /next")
        self.assertNotIn("timed out", p.output)


class DeadlinesTest(ProxyTestCase):
    def test_proxy_read_timeout_governs_the_first_byte(self):
        # response_timeout is shorter than the backend's delay; the proxy's own deadline is
        # what bounds the wait.
        b = self.backend(delay=1.0)
        p = self.proxy([b.address], top="response_timeout 400ms;", location="""location / {
            proxy_read_timeout 5s;
            proxy_pass http://app;
        }""")
        r = p.get("/late")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"ok /late")

    def test_gaps_between_pieces(self):
        b = self.backend()
        p = self.proxy([b.address], top="response_timeout 400ms;", location="""location / {
            proxy_read_timeout 3s;
            proxy_pass http://app;
        }""")
        r = p.get("/drip/3/0.7")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"piece 0\npiece 1\npiece 2\n")

    def test_timeout_in_the_middle_of_a_response_closes(self):
        b = self.backend()
        p = self.proxy([b.address], location="""location / {
            proxy_read_timeout 300ms;
            proxy_pass http://app;
        }""")
        with p.connect() as c:
            c.send(harness.request("GET", "/drip/3/0.8"))
            head = c.read_head()
            self.assertIn(b" 200 ", head)
            closed, extra, waited = c.wait_closed(5)
            self.assertTrue(closed)
            self.assertNotIn(b"0\r\n\r\n", extra)  # never a clean end
            # The backend's first piece comes 0.8 s after the head: the timeout ends it first.
            self.assertTimedOut(waited, 0.3, margin=2.7, what="proxy_read_timeout")

    def test_client_leaving_releases_the_upstream(self):
        # A backend that never answers /gone but watches its connection: porter, whose client
        # left, must close it (a connection with an answer still to come cannot be reused).
        def handler(s, srv):
            head = read_request_head(s)
            if b"GET /still " in head:
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nok still")
                head = read_request_head(s)  # porter may keep it; it ends with porter's close
            if not head.startswith(b"GET /gone "):
                return
            srv.received.append(time.monotonic())
            s.settimeout(10)
            try:
                if s.recv(1) == b"":
                    srv.closed.append(time.monotonic())
            except OSError:
                pass

        b = self.raw_backend(handler)
        b.closed = []
        p = self.proxy([b.address])
        for i in range(3):
            c = p.connect()
            c.send(harness.request("GET", "/gone"))
            harness.wait_until(lambda: len(b.received) > i, 5, "the request reached the backend")
            left = time.monotonic()
            harness.reset_close(c.sock)
            harness.wait_until(lambda: len(b.closed) > i, 5,
                               "porter closed the upstream connection of a client that left")
            # At once, not at a timeout: 2 s of margin for ASan on a loaded machine.
            self.assertLess(b.closed[i] - left, 2.0)
        self.assertEqual(b.connections, 3)
        self.assertEqual(p.get("/still").body, b"ok still")
        self.assertEqual(b.connections, 4, "a released connection was used again")
        harness.wait_until(lambda: p.output.count("client went away") == 3, 5,
                           lambda: "three \"client went away\" lines:\n" + p.output)

    def test_pipelined_requests(self):
        b = self.backend()
        p = self.proxy([b.address])
        with p.connect() as c:
            c.send(b"".join(harness.request("GET", "/p%d" % i) for i in range(5)))
            rs = c.read_responses(["GET"] * 5)
        self.assertEqual([r.body for r in rs], [b"ok /p%d" % i for i in range(5)])


if __name__ == "__main__":
    harness.main()
