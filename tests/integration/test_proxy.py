"""The reverse proxy against real backends started by the tests: a small HTTP/1.1 keep-alive
server (Python's http.server) that counts its connections and records what it received, and a
raw TCP server for answers no well-behaved server would give.

Covers: headers added and removed both ways, keep-alive reuse of upstream connections, sized
and chunked bodies both ways, round-robin, failover and passive failure marking, 502 and 504,
a backend that closes idle connections early or after every response (no error reaches the
client for idempotent requests), non-idempotent requests on fresh connections, smuggling
attempts rejected before they reach the backend, unix sockets, IPv6, proxy_pass with a URI,
proxy_set_header, HEAD/204/304, Expect: 100-continue. Everything on loopback, bounded in time.

The other test_proxy_*.py files import the backends from here.
"""

import hashlib
import http.server
import json
import os
import re
import socket
import socketserver
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


# ---- backends ----


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "backend"

    def setup(self):
        srv = self.server.backend
        with srv.lock:
            srv.connections += 1
        if srv.idle_timeout:
            self.timeout = srv.idle_timeout  # http.server closes an idle connection after it
        super().setup()

    def log_message(self, *args):
        pass

    def log_error(self, *args):
        pass

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding")
        if te and "chunked" in te.lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("the body ended early")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        srv = self.server.backend
        if srv.slow_body:
            out = bytearray()
            while len(out) < n:
                out += self.rfile.read(min(65536, n - len(out)))
                time.sleep(srv.slow_body)  # the backend's pace: a slow reader
            return bytes(out)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body=b"", headers=(), ctype="text/plain"):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for n, v in headers:
            self.send_header(n, v)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def _handle(self):
        srv = self.server.backend
        body = self._read_body()
        with srv.lock:
            srv.requests.append({
                "method": self.command,
                "path": self.path,
                "headers": [(n, v) for n, v in self.headers.items()],
                "body": body,
                "port": self.server.server_address[1],
            })
        if srv.delay:
            time.sleep(srv.delay)  # the backend's pace: a slow answer
        parts = self.path.split("?")[0].strip("/").split("/")
        what = parts[0]
        arg = parts[1] if len(parts) > 1 else ""
        if what == "echo":
            self._send(200, body, [("X-Method", self.command),
                                   ("X-Body-Sha", hashlib.sha256(body).hexdigest())])
        elif what == "sha":
            self._send(200, hashlib.sha256(body).hexdigest().encode())
        elif what == "headers":
            self._send(200, json.dumps({"path": self.path, "method": self.command,
                                        "headers": [(n, v) for n, v in self.headers.items()]
                                        }).encode(), ctype="application/json")
        elif what == "big":
            n = int(arg)
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            if self.command != "HEAD":
                self._write_pattern(n)
        elif what == "chunked":
            n = int(arg)
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sent = 0
            while sent < n:
                k = min(1000 + sent % 777, n - sent)
                self.wfile.write(b"%x\r\n" % k + _pattern(sent, k) + b"\r\n")
                sent += k
            self.wfile.write(b"0\r\n\r\n")
        elif what == "drip":
            # Pieces with pauses between them: "drip/PIECES/SECONDS"
            n, pause = int(arg), float(parts[2])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for i in range(n):
                time.sleep(pause)  # the backend's pace: a drip
                piece = b"piece %d\n" % i
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif what == "slow":
            time.sleep(float(arg))  # the backend's pace: a slow answer
            self._send(200, b"slow")
        elif what == "status":
            code = int(arg)
            self._send(code, b"" if code in (204, 304) else b"status %d" % code,
                       [("ETag", '"x"')] if code == 304 else [])
        elif what == "redirect":
            # An absolute redirect built from the Host the proxy sent, as applications do.
            self._send(302, b"", [("Location", "http://%s/%s" % (self.headers["Host"], arg))])
        elif what == "hop":
            self._send(200, b"hop", [("Connection", "X-Secret"), ("X-Secret", "1"),
                                     ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "x"),
                                     ("X-Visible", "yes"), ("Set-Cookie", "a=1"),
                                     ("Set-Cookie", "b=2")])
        elif what == "port":
            self._send(200, str(self.server.server_address[1]).encode())
        else:
            self._send(200, b"ok " + self.path.encode())
        if srv.close_after_each:
            self.close_connection = True  # without saying so: the proxy's pool finds out

    def _write_pattern(self, n):
        srv = self.server.backend
        sent = 0
        while sent < n:
            k = min(65536, n - sent)
            self.wfile.write(_pattern(sent, k))
            sent += k
            with srv.lock:
                srv.bytes_sent += k

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle


def _pattern(offset, n):
    """n bytes of a repeating pattern starting at `offset` (so pieces can be checked)."""
    base = bytes(range(256)) * 257
    out = bytearray()
    while len(out) < n:
        start = (offset + len(out)) % 256
        k = min(n - len(out), 65536)
        out += base[start:start + k]
    return bytes(out)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client (the proxy) that went away is what some tests are about


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass

    def get_request(self):
        sock, _ = super().get_request()
        return sock, ("unix", 0)


class Backend:
    """An HTTP/1.1 keep-alive server on loopback (or a unix socket) in threads.

    `connections` counts accepted connections, `requests` records each request (method, path,
    headers, body). `delay` sleeps that long before every answer; `idle_timeout` closes connections idle that long; `close_after_each`
    closes every connection after its response without saying so; `slow_body` sleeps that
    long after each 64 KiB of a request body it reads; `ssl_context` makes it speak TLS; `port`
    binds that port (0: any), so a backend can come back where it was."""

    def __init__(self, host="127.0.0.1", unix_path=None, idle_timeout=None,
                 close_after_each=False, slow_body=0, delay=0, ssl_context=None, port=0):
        self.lock = threading.Lock()
        self.delay = delay
        self.connections = 0
        self.requests = []
        self.bytes_sent = 0
        self.idle_timeout = idle_timeout
        self.close_after_each = close_after_each
        self.slow_body = slow_body
        if unix_path:
            self.httpd = _UnixServer(unix_path, _Handler)
            self.httpd.server_address = (unix_path, 0)
        elif ":" in host:
            self.httpd = _V6Server((host, port), _Handler)
        else:
            self.httpd = _Server((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.backend = self
        if ssl_context:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "[%s]:%d" % (self.host, self.port) if ":" in self.host else "%s:%d" % (self.host, self.port)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class RawBackend:
    """A TCP server that answers each connection with `handler(sock)` in a thread."""

    def __init__(self, handler, host="127.0.0.1"):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = "%s:%d" % (host, self.port)
        self.connections = 0
        self.received = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            s.settimeout(5)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        try:
            self.handler(s, self)
        except OSError:
            pass
        finally:
            s.close()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def read_request_head(s):
    """Reads one request head from socket `s` (bytes, or b"" at EOF)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return buf
        buf += d
    return buf


class ProxyTestCase(harness.PorterTestCase):
    def backend(self, **kw):
        b = Backend(**kw)
        self.addCleanup(b.stop)
        return b

    def raw_backend(self, handler):
        b = RawBackend(handler)
        self.addCleanup(b.stop)
        return b

    def proxy(self, upstream_servers, location="location / { proxy_pass http://app; }",
              upstream_extra="", top="", server_extra=""):
        servers = "".join("    server %s;\n" % s for s in upstream_servers)
        conf = ("%s\nupstream app {\n%s%s\n}\nserver {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                "%s\n    %s\n}\n" % (top, servers, upstream_extra, server_extra, location))
        return self.start_porter(conf)


def body_of(r):
    return r.body


# ---- tests ----


class HeadersTest(ProxyTestCase):
    def test_request_headers_added_and_removed(self):
        b = self.backend()
        p = self.proxy([b.address])
        with p.connect() as c:
            c.send(harness.request("GET", "/headers?x=1", headers=[
                ("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"), ("Keep-Alive", "300"),
                ("TE", "trailers"), ("Proxy-Connection", "keep-alive"), ("X-Custom", "kept"),
                ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"),
                ("Forwarded", "for=203.0.113.9"),
            ], host="example.test:8080"))
            r = c.read_response()
        self.assertStatus(r, 200)
        got = json.loads(r.body)
        h = {n.lower(): v for n, v in got["headers"]}
        self.assertEqual(got["path"], "/headers?x=1")
        self.assertEqual(h["host"], "app")  # the upstream's name, as nginx's $proxy_host
        self.assertEqual(h["x-custom"], "kept")
        for gone in ("x-hop", "keep-alive", "proxy-connection", "connection"):
            self.assertNotIn(gone, h)
        # TE is the connection's own; porter says its own "trailers" since it passes trailer
        # fields on to this client (who said it takes them)
        self.assertEqual(h["te"], "trailers")
        # appended to what the client said; the proto and host are the proxy's own view
        self.assertEqual(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1")
        self.assertEqual(h["x-forwarded-proto"], "http")
        self.assertEqual(h["x-forwarded-host"], "example.test:8080")
        self.assertEqual(h["forwarded"],
                         'for=203.0.113.9, for=127.0.0.1;host="example.test:8080";proto=http')

    def test_response_headers(self):
        b = self.backend()
        p = self.proxy([b.address])
        r = p.get("/hop")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"hop")
        for gone in ("X-Secret", "Keep-Alive", "Proxy-Connection"):
            self.assertIsNone(r.header(gone), gone)
        self.assertEqual(r.header("X-Visible"), "yes")
        self.assertEqual(r.header_all("Set-Cookie"), ["a=1", "b=2"])
        self.assertTrue(r.header("Server").startswith("porter"))
        self.assertEqual(len(r.header_all("Date")), 1)
        self.assertEqual(r.header("Content-Type"), "text/plain")

    def test_proxy_hide_and_pass_header(self):
        b = self.backend()
        p = self.proxy([b.address], server_extra="proxy_hide_header X-Visible;",
                       location="location / { proxy_pass http://app; } "
                                "location /own/ { proxy_pass http://app/; "
                                "proxy_hide_header set-cookie; proxy_pass_header Server; }")
        r = p.get("/hop")
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("X-Visible"))  # the server's list
        self.assertEqual(r.header_all("Set-Cookie"), ["a=1", "b=2"])
        self.assertTrue(r.header("Server").startswith("porter"))
        # A location's own list replaces the server's; Server passed is the only one.
        r = p.get("/own/hop")
        self.assertEqual(r.header("X-Visible"), "yes")
        self.assertEqual(r.header_all("Set-Cookie"), [])
        self.assertEqual(len(r.header_all("Server")), 1)
        self.assertTrue(r.header("Server").startswith("backend"), r.header("Server"))
        self.assertEqual(len(r.header_all("Date")), 1)

    def test_named_location_after_static_files(self):
        # The usual front end: files when they exist, else the application, which sees the
        # request as the client sent it.
        b = self.backend()
        p = self.start_porter(
            "location / { try_files $uri $uri/ @app; }\n"
            "location /old/ { error_page 404 = @app; }\n"
            "location @app { proxy_pass http://%s; add_header X-From app; }\n" % b.address,
            {"here.txt": b"static\n"})
        r = p.get("/here.txt")
        self.assertEqual((r.body, r.header("X-From")), (b"static\n", None))
        r = p.get("/headers?x=1")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-From"), "app")
        self.assertEqual(json.loads(r.body)["path"], "/headers?x=1")
        # error_page 404 = @app: the application's answer with its own status, not the 404
        r = p.get("/old/page")
        self.assertEqual((r.status, r.body), (200, b"ok /old/page"))

    def test_proxy_redirect(self):
        b = self.backend()
        p = self.proxy([b.address], location=(
            "location / { proxy_pass http://app; } "
            "location /one/ { proxy_pass http://app/; } "
            "location /off/ { proxy_pass http://app/; proxy_redirect off; } "
            "location /ex/ { proxy_pass http://app/; "
            "proxy_redirect http://app/ https://example.com/a/; proxy_redirect default; }"))
        # default: the proxy_pass URL becomes the location's prefix
        self.assertEqual(p.get("/redirect/x?q=1").header("Location"), "/x")
        self.assertEqual(p.get("/one/redirect/x").header("Location"), "/one/x")
        self.assertEqual(p.get("/off/redirect/x").header("Location"), "http://app/x")
        # explicit prefixes, the first that matches
        r = p.get("/ex/redirect/x")
        self.assertStatus(r, 302)
        self.assertEqual(r.header("Location"), "https://example.com/a/x")
        self.assertEqual(len(r.header_all("Location")), 1)

    def test_proxy_set_header(self):
        b = self.backend()
        p = self.proxy([b.address], location="""location / {
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Request "$request_method $request_uri";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Custom "";
            proxy_pass http://app;
        }""")
        r = p.get("/headers", headers=[("X-Custom", "dropped"), ("X-Forwarded-For", "10.0.0.1")])
        h = {n.lower(): v for n, v in json.loads(r.body)["headers"]}
        self.assertEqual(h["host"], "localhost")
        self.assertEqual(h["x-real-ip"], "127.0.0.1")
        self.assertEqual(h["x-request"], "GET /headers")
        self.assertEqual(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1")
        self.assertNotIn("x-custom", h)  # an empty value removes the header

    def test_proxy_pass_with_uri(self):
        b = self.backend()
        p = self.proxy([b.address], location="location /api/ { proxy_pass http://app/v1/; }")
        r = p.get("/api/items/7?full=1")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"ok /v1/items/7?full=1")
        # Without a URI the request's URI goes as sent.
        p2 = self.proxy([b.address], location="location /api/ { proxy_pass http://app; }")
        self.assertEqual(p2.get("/api/a%20b?q").body, b"ok /api/a%20b?q")

    def test_direct_address_and_ipv6(self):
        b = self.backend()
        p = self.start_porter("location / { proxy_pass http://%s; }" % b.address)
        r = p.get("/headers")
        self.assertStatus(r, 200)
        self.assertEqual(json.loads(r.body)["headers"][0], ["Host", b.address])
        if harness.has_ipv6_loopback():
            b6 = self.backend(host="::1")
            p6 = self.start_porter("location / { proxy_pass http://%s; }" % b6.address)
            self.assertEqual(p6.get("/x").body, b"ok /x")

    def test_proxy_only_server_needs_no_root_directory(self):
        # No root directive and no htdocs: a server that only proxies starts (as nginx does),
        # and a path its locations leave to files answers 404. A root that is named and
        # missing stays an error (test_location.c).
        b = self.backend()
        conf = ("server {\n    listen 127.0.0.1:0;\n"
                "    location /app/ { proxy_pass http://%s; }\n}\n" % b.address)
        p = self.start_porter(conf, start=False)
        os.rmdir(p.htdocs)
        code, out, err = harness.run_porter(["-t", "-p", p.tmp, "-c", p.conf_path])
        self.assertEqual(code, 0, out + err)  # porter -t agrees
        p.start()
        self.assertStatus(p.get("/app/x"), 200)
        self.assertStatus(p.get("/other"), 404)
        self.assertIn("does not exist: files answer 404", p.output)
        def without_root(text):
            """A porter for `text` whose htdocs is gone, and what `porter -t` said of it."""
            q = harness.Porter(text, start=False)
            self.addCleanup(q.cleanup)
            os.rmdir(q.htdocs)
            code, out, err = harness.run_porter(["-t", "-p", q.tmp, "-c", q.conf_path])
            self.assertNotEqual(code, 0)
            return q, out + err

        # A root the conf names must exist, even the default's path (porter -t and start); the
        # error is at the root directive.
        named, said = without_root(conf.replace("listen 127.0.0.1:0;",
                                                "listen 127.0.0.1:0; root htdocs;"))
        self.assertIn("porter.conf:3:25: root \"%s\": No such file or directory" % named.htdocs,
                      said)
        # A location that names it, with the server's root left to the default.
        loc, said = without_root(conf.replace("location /app/",
                                              "location /f/ { root htdocs; } location /app/"))
        self.assertIn("porter.conf:4:20: root \"%s\": No such file or directory" % loc.htdocs,
                      said)
        code, out, err = harness.run_porter(["-p", loc.tmp, "-c", loc.conf_path])
        self.assertNotEqual(code, 0)  # and it does not start
        self.assertIn("porter.conf:4:20: root \"%s\"" % loc.htdocs, out + err)

    def test_unix_socket_upstream(self):
        path = os.path.join(harness.tempfile.mkdtemp(prefix="porter-unix-"), "app.sock")
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        b = self.backend(unix_path=path)
        p = self.proxy(["unix:" + path])
        for _ in range(3):
            self.assertEqual(p.get("/u").body, b"ok /u")
        r = p.get("/headers")
        self.assertEqual(json.loads(r.body)["headers"][0], ["Host", "app"])
        # the client's Connection: close is its own: the upstream connection stays
        self.assertEqual(b.connections, 1)


class BodiesTest(ProxyTestCase):
    def test_sized_and_chunked_both_ways(self):
        b = self.backend()
        p = self.proxy([b.address], top="max_request_body_length 8m;")
        data = os.urandom(300000)
        with p.connect() as c:
            c.send(harness.request("POST", "/echo", headers={"Content-Length": str(len(data))},
                                   body=data))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, data)
            self.assertEqual(r.header("Content-Length"), str(len(data)))
            # a chunked request body goes up chunked
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 7000]), data[i:i + 7000])
                              for i in range(0, len(data), 7000)) + b"0\r\n\r\n"
            c.send(harness.request("PUT", "/echo", headers={"Transfer-Encoding": "chunked"},
                                   body=chunks))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, data)
            self.assertEqual(r.header("X-Method"), "PUT")
            # a chunked response stays chunked for an HTTP/1.1 client
            c.send(harness.request("GET", "/chunked/250000"))
            r = c.read_response()
            self.assertEqual(r.header("Transfer-Encoding"), "chunked")
            self.assertEqual(r.body, _pattern(0, 250000))
        up = [x for x in b.requests if x["method"] == "PUT"][0]
        self.assertIn(("Transfer-Encoding", "chunked"), up["headers"])
        self.assertEqual(up["body"], data)
        # HTTP/1.0: the end of the connection ends an unsized body
        with p.connect() as c:
            c.send(harness.request("GET", "/chunked/5000", version="1.0"))
            r = c.read_response()
            self.assertEqual(r.body, _pattern(0, 5000))

    def test_head_204_304(self):
        b = self.backend()
        p = self.proxy([b.address])
        with p.connect() as c:
            c.send(harness.request("HEAD", "/big/12345"))
            r = c.read_response("HEAD")
            self.assertStatus(r, 200)
            self.assertEqual(r.header("Content-Length"), "12345")
            c.send(harness.request("GET", "/status/204"))
            r = c.read_response()
            self.assertStatus(r, 204)
            self.assertIsNone(r.header("Content-Length"))
            self.assertIsNone(r.header("Transfer-Encoding"))
            c.send(harness.request("GET", "/status/304"))
            r = c.read_response()
            self.assertStatus(r, 304)
            self.assertEqual(r.header("ETag"), '"x"')
            c.send(harness.request("GET", "/status/404"))
            r = c.read_response()
            self.assertStatus(r, 404)
            self.assertEqual(r.body, b"status 404")
            # the same connection still works: every answer was framed right
            c.send(harness.request("GET", "/x"))
            self.assertEqual(c.read_response().body, b"ok /x")
        self.assertEqual(b.connections, 1)

    def test_expect_continue(self):
        b = self.backend()
        p = self.proxy([b.address])
        with p.connect() as c:
            c.send(harness.request("POST", "/echo", headers={"Content-Length": "5",
                                                             "Expect": "100-continue"}))
            interim = c.read_response()
            self.assertStatus(interim, 100)
            c.send(b"hello")
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"hello")
        self.assertNotIn("expect", [n.lower() for n, _ in b.requests[0]["headers"]])


class KeepAliveTest(ProxyTestCase):
    def test_upstream_connections_are_reused(self):
        b = self.backend()
        p = self.proxy([b.address], upstream_extra="keepalive 4;")
        for _ in range(5):
            with p.connect() as c:
                for i in range(4):
                    c.send(harness.request("GET", "/n%d" % i))
                    self.assertEqual(c.read_response().body, b"ok /n%d" % i)
        self.assertEqual(b.connections, 1)

    def test_stopping_does_not_wait_for_idle_upstream_connections(self):
        b = self.backend()
        p = self.proxy([b.address], upstream_extra="keepalive_timeout 60s;")
        self.assertEqual(p.get("/x").body, b"ok /x")
        start = time.monotonic()
        p.stop()
        # At once, not at the upstream's 60 s keepalive_timeout: 3 s is the margin for ASan.
        self.assertLess(time.monotonic() - start, 3)

    def test_non_idempotent_requests_use_fresh_connections(self):
        b = self.backend()
        p = self.proxy([b.address])
        with p.connect() as c:
            for i in range(3):
                c.send(harness.request("POST", "/echo", headers={"Content-Length": "1"}, body="x"))
                self.assertEqual(c.read_response().body, b"x")
        # each POST opened its own; a GET then reuses one of them
        self.assertEqual(b.connections, 3)
        self.assertEqual(p.get("/g").body, b"ok /g")
        self.assertEqual(b.connections, 3)

    def test_backend_closes_idle_connections_early(self):
        # The backend's own keep-alive timeout is shorter than the pool's: the pool notices
        # the close (or a request meets it and is retried): the client never sees an error.
        b = self.backend(idle_timeout=0.2)
        p = self.proxy([b.address], upstream_extra="keepalive_timeout 30s;")
        with p.connect() as c:
            for i in range(6):
                c.send(harness.request("GET", "/i%d" % i))
                r = c.read_response()
                self.assertStatus(r, 200)
                time.sleep(0.3)  # idle longer than the backend keeps a connection: the scenario
        self.assertGreaterEqual(b.connections, 5)
        self.assertNotIn("[error]", p.output)

    def test_backend_closes_after_every_response_without_saying(self):
        # The race: the request goes out on a pooled connection the backend is closing. An
        # idempotent request is sent again on a fresh connection.
        b = self.backend(close_after_each=True)
        p = self.proxy([b.address])
        with p.connect() as c:
            for i in range(40):
                c.send(harness.request("GET", "/r%d" % i))
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertEqual(r.body, b"ok /r%d" % i)
        self.assertNotIn("[error]", p.output)
        self.assertEqual(len(b.requests), 40)  # nothing was sent twice to a live connection


class FailoverTest(ProxyTestCase):
    def test_round_robin_with_weights(self):
        b1, b2 = self.backend(), self.backend()
        p = self.proxy(["%s weight=2" % b1.address, b2.address])
        seen = [int(p.get("/port").body) for _ in range(9)]
        self.assertEqual(seen.count(b1.port), 6)
        self.assertEqual(seen.count(b2.port), 3)

    def test_dead_server_is_skipped_and_marked(self):
        b = self.backend()
        dead = self.closed_port()
        p = self.proxy(["127.0.0.1:%d max_fails=1 fail_timeout=30s" % dead, b.address])
        for i in range(8):
            r = p.get("/f%d" % i)
            self.assertStatus(r, 200)
        # marked down after its first refusal: not tried again within fail_timeout
        self.assertEqual(p.output.count("refused the connection"), 1)
        self.assertTrue(harness.wait_for(lambda: "temporarily disabled" in p.output, 5), p.output)

    def test_502_when_every_server_fails(self):
        p = self.proxy(["127.0.0.1:%d" % self.closed_port(), "127.0.0.1:%d" % self.closed_port()])
        r = p.get("/x")
        self.assertStatus(r, 502)
        with p.connect() as c:
            c.send(harness.request("POST", "/x", headers={"Content-Length": "2"}, body="ab"))
            self.assertStatus(c.read_response(), 502)
            # the connection is still usable
            c.send(harness.request("GET", "/y"))
            self.assertStatus(c.read_response(), 502)

    def test_504_on_upstream_timeout(self):
        b = self.backend()
        p = self.proxy([b.address], location="""location / {
            proxy_read_timeout 400ms;
            proxy_pass http://app;
        }""")
        start = time.monotonic()
        r = p.get("/slow/3")
        self.assertStatus(r, 504)
        self.assertTimedOut(time.monotonic() - start, 0.4, margin=2.1,
                            what="proxy_read_timeout")
        self.assertEqual(p.get("/fast").body, b"ok /fast")

    def test_timeout_retried_on_the_next_server_for_get_only(self):
        slow, fast = self.backend(delay=1), self.backend()
        loc = """location / {
            proxy_read_timeout 300ms;
            proxy_pass http://app;
        }"""
        p = self.proxy([slow.address, fast.address], location=loc)
        # the first pick is the slow one: the GET goes on to the next after the timeout
        r = p.get("/g")
        self.assertStatus(r, 200)
        self.assertEqual(len(slow.requests) + len(fast.requests), 2)
        # a POST is not repeated once sent: two slow servers, one attempt, 504
        slow2 = self.backend(delay=1)
        p2 = self.proxy([slow.address, slow2.address], location=loc)
        with p2.connect() as c:
            c.send(harness.request("POST", "/p", headers={"Content-Length": "1"}, body="x"))
            r = c.read_response()
        self.assertStatus(r, 504)
        # A second attempt would have come before the 504, which ends the request.
        posts = [x for x in slow.requests + slow2.requests if x["method"] == "POST"]
        self.assertEqual(len(posts), 1)

    def busy_backend(self):
        """A server that answers every request 503."""
        def handler(s, srv):
            if read_request_head(s):
                s.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
        return self.raw_backend(handler)

    def test_next_upstream_on_503(self):
        busy, good = self.busy_backend(), self.backend()
        # By default a 503 is an answer like any other: round-robin passes it on, and the
        # busy server is not left out for it (smooth weighted round-robin, equal weights: the
        # first server listed, then the other, in turn).
        p = self.proxy([busy.address, good.address])
        self.assertEqual([p.get("/x").status for _ in range(6)], [503, 200] * 3)
        # With http_503 a GET goes to the next server; the busy one is left out for a while.
        p = self.proxy([busy.address, good.address], top="proxy_next_upstream error timeout http_503;")
        for _ in range(4):
            r = p.get("/x")
            self.assertEqual((r.status, r.body), (200, b"ok /x"))
        self.assertTrue(harness.wait_for(lambda: "answered 503, trying the next server" in p.output,
                                         5), p.output)
        # A POST is not sent twice: the busy server's answer is the client's.
        p = self.proxy([busy.address, good.address],
                       top="proxy_next_upstream error timeout http_503;\n"
                           "upstream one { server %s; }" % busy.address,
                       server_extra="location /post/ { proxy_pass http://one; }")
        self.assertEqual(p.get("/post/x", method="POST").status, 503)
        # When every server answered 503, the last answer is passed on.
        r = p.get("/post/x")
        self.assertEqual((r.status, r.body), (503, b"busy"))

    def status_backend(self, status, body_too=False):
        """A server that answers every request with `status`, after reading its head (and its
        body too, if `body_too`); `received` lists the request heads."""
        def handler(s, srv):
            head = read_request_head(s)
            if not head:
                return
            if body_too:
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                want = len(head.split(b"\r\n\r\n", 1)[1])
                while m and want < int(m.group(1)):
                    want += len(s.recv(65536))
            srv.received.append(head)
            s.sendall(b"HTTP/1.1 %d Nope\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
                      % status)
        return self.raw_backend(handler)

    def test_next_upstream_on_404_and_500(self):
        # http_404: the next server is asked, and a 404 is not the server's failure: with
        # max_fails=1 it would otherwise be left out at once.
        missing, good = self.status_backend(404), self.backend()
        p = self.proxy(["%s max_fails=1 fail_timeout=30s" % missing.address, good.address],
                       top="proxy_next_upstream error timeout http_404;")
        for i in range(6):
            r = p.get("/n%d" % i)
            self.assertEqual((r.status, r.body), (200, b"ok /n%d" % i))
        self.assertGreaterEqual(len(missing.received), 2)
        self.assertNotIn("temporarily disabled", p.output)
        # http_500: a 500 is the server's failure, which max_fails=1 leaves out.
        broken, good = self.status_backend(500), self.backend()
        p = self.proxy(["%s max_fails=1 fail_timeout=30s" % broken.address, good.address],
                       top="proxy_next_upstream error timeout http_500;")
        for i in range(6):
            self.assertEqual(p.get("/f%d" % i).status, 200)
        self.assertEqual(len(broken.received), 1)
        self.assertTrue(harness.wait_for(lambda: "temporarily disabled" in p.output, 5), p.output)

    def test_next_upstream_tries_and_timeout(self):
        busy = [self.status_backend(503) for _ in range(3)]
        addresses = [b.address for b in busy]
        # Every server is asked, and the last answer is passed on.
        p = self.proxy(addresses, top="proxy_next_upstream http_503;")
        self.assertStatus(p.get("/x"), 503)
        self.assertEqual(sum(len(b.received) for b in busy), 3)
        # proxy_next_upstream_tries 2: two servers in all.
        p = self.proxy(addresses, top="proxy_next_upstream http_503; proxy_next_upstream_tries 2;")
        self.assertStatus(p.get("/x"), 503)
        self.assertEqual(sum(len(b.received) for b in busy), 5)
        # proxy_next_upstream_timeout: no next server once it has passed since the first try.
        slow, fast = self.backend(delay=1), self.backend()
        p = self.proxy([slow.address, fast.address], location="""location / {
            proxy_read_timeout 300ms;
            proxy_next_upstream_timeout 200ms;
            proxy_pass http://app;
        }""")
        self.assertStatus(p.get("/g"), 504)
        self.assertEqual(len(fast.requests), 0)

    def test_next_upstream_non_idempotent(self):
        busy, good = self.status_backend(503, body_too=True), self.backend()
        p = self.proxy([busy.address, good.address],
                       top="proxy_next_upstream error timeout http_503 non_idempotent;\n"
                           "upstream one { server %s max_fails=0; server %s; }"
                           % (busy.address, good.address),
                       server_extra="location /post/ { proxy_pass http://one; }")
        # A POST without a body may go to the next server: the first pick is the busy one.
        r = p.get("/post/a", method="POST")
        self.assertEqual((r.status, r.body), (200, b"ok /post/a"))
        self.assertEqual(len(busy.received), 1)
        # One whose body porter has passed on is never sent twice: the server that got it
        # answers. (Round-robin picks the busy server again within two requests: max_fails=0
        # keeps it in.)
        for _ in range(2):
            with p.connect() as c:
                c.send(harness.request("POST", "/post/b", headers={"Content-Length": "2"},
                                       body="ab"))
                r = c.read_response()
            if len(busy.received) == 2:
                break
        self.assertEqual((r.status, r.body), (503, b"nope"))
        self.assertEqual(len(busy.received), 2)
        self.assertTrue(busy.received[1].startswith(b"POST /post/b "))

    def test_next_upstream_invalid_header(self):
        def garbage(s, srv):
            if read_request_head(s):
                srv.received.append(1)
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nxyz")
        bad, good = self.raw_backend(garbage), self.backend()
        p = self.proxy([bad.address, good.address],
                       top="proxy_next_upstream error timeout invalid_header;")
        for i in range(4):
            r = p.get("/i%d" % i)
            self.assertEqual((r.status, r.body), (200, b"ok /i%d" % i))
        self.assertEqual(len(bad.received), 1)  # then left out (max_fails=1)

    def test_next_upstream_off(self):
        rb = self.raw_backend(lambda s, srv: None)  # closes without answering
        good = self.backend()
        p = self.proxy([rb.address, good.address], top="proxy_next_upstream off;")
        # The first request goes to the first server listed and gets no second server: 502.
        # That failure marks it (max_fails=1, fail_timeout=10s), so the rest go to the other.
        statuses = [p.get("/x").status for _ in range(4)]
        self.assertEqual(statuses, [502, 200, 200, 200])
        self.assertEqual(rb.connections, 1)

    def test_connect_timeout(self):
        # a server whose accept queue is full never completes the handshake
        l = socket.socket()
        l.bind(("127.0.0.1", 0))
        l.listen(0)
        self.addCleanup(l.close)
        fillers = []
        self.addCleanup(lambda: [f.close() for f in fillers])
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(l.getsockname())
            fillers.append(f)
        p = self.proxy(["127.0.0.1:%d" % l.getsockname()[1]], location="""location / {
            proxy_connect_timeout 300ms;
            proxy_pass http://app;
        }""")
        start = time.monotonic()
        r = p.get("/x")
        self.assertStatus(r, 504)
        self.assertTimedOut(time.monotonic() - start, 0.3, margin=2.7,
                            what="proxy_connect_timeout")


class InvalidTest(ProxyTestCase):
    def test_smuggling_attempts_never_reach_the_backend(self):
        b = self.backend()
        p = self.proxy([b.address])
        attempts = [
            # Content-Length with Transfer-Encoding
            b"POST /s1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            # two different lengths
            b"POST /s2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd",
            # a transfer coding after chunked
            b"POST /s3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            # whitespace before the colon
            b"POST /s4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
            # a bare LF
            b"GET /s5 HTTP/1.1\nHost: x\n\n",
        ]
        for raw in attempts:
            with p.connect() as c:
                c.send(raw)
                r = c.read_response()
                # Each is a framing another reader could take otherwise: 400, and the
                # connection ends (docs/strictness.md).
                self.assertEqual(r.status, 400, raw)
                self.assertTrue(r.has_token("Connection", "close"), raw)
                self.assertClosed(c)
        self.assertEqual(b.requests, [])
        # what the backend gets is framed by the proxy: a chunked body whose chunk hides a
        # request arrives as one body
        hidden = b"GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n"
        raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"%x\r\n%s\r\n0\r\n\r\n" % (len(hidden), hidden))
        with p.connect() as c:
            c.send(raw)
            r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.body, hidden)
        self.assertEqual([x["path"] for x in b.requests], ["/echo"])

    def test_invalid_upstream_responses_are_502(self):
        answers = {
            b"/cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"/garbage": b"SPDY/9 ok\r\n\r\n",
            b"/two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            b"/gzip-te": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx",
            b"/nothing": b"",
        }

        def handler(s, srv):
            head = read_request_head(s)
            path = head.split(b" ")[1] if head else b""
            s.sendall(answers.get(path, b""))

        rb = self.raw_backend(handler)
        p = self.proxy([rb.address])
        for path in answers:
            r = p.get(path.decode())
            self.assertStatus(r, 502)

    def test_unusual_but_valid_responses(self):
        answers = {
            # an HTTP/1.0 answer that runs to the end of the connection
            b"/eof": b"HTTP/1.0 200 OK\r\nContent-Type: text/x\r\n\r\nto the end",
            # interim answers are not passed on
            b"/interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n"
                         b"\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            # a status porter has no reason phrase for
            b"/teapot": b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 3\r\n\r\ntea",
            # a 304 with the length a 200 would have (RFC 9110 section 8.6): it has no body
            b"/304": b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 100\r\n\r\n",
        }

        def handler(s, srv):
            head = read_request_head(s)
            path = head.split(b" ")[1] if head else b""
            s.sendall(answers.get(path, b""))

        rb = self.raw_backend(handler)
        p = self.proxy([rb.address])
        with p.connect() as c:
            c.send(harness.request("GET", "/eof"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"to the end")
            self.assertEqual(r.header("Content-Type"), "text/x")
            c.send(harness.request("GET", "/interim"))
            r = c.read_response()
            self.assertStatus(r, 201)
            self.assertEqual(r.body, b"ok")
            c.send(harness.request("GET", "/teapot"))
            r = c.read_response()
            self.assertStatus(r, 418)
            self.assertEqual(r.body, b"tea")
            c.send(harness.request("GET", "/304"))
            r = c.read_response(timeout=3)
            self.assertStatus(r, 304)
            self.assertEqual(r.header("ETag"), '"x"')

    def test_too_large_response_head_is_502(self):
        def handler(s, srv):
            read_request_head(s)
            s.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: %s\r\n" % (b"x" * 1000) * 20 +
                      b"Content-Length: 0\r\n\r\n")

        rb = self.raw_backend(handler)
        p = self.proxy([rb.address])
        self.assertStatus(p.get("/big-head"), 502)
        self.assertTrue(harness.wait_for(lambda: "too large" in p.output, 5), p.output)

    def test_truncated_response_closes_the_client_connection(self):
        def handler(s, srv):
            read_request_head(s)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")

        rb = self.raw_backend(handler)
        p = self.proxy([rb.address])
        with p.connect() as c:
            c.send(harness.request("GET", "/t"))
            head = c.read_head()
            self.assertIn(b"200", head)
            closed, extra, _ = c.wait_closed(5)
            self.assertTrue(closed)
            self.assertEqual(extra, b"only part")


class ConfTest(ProxyTestCase):
    def check(self, text, message):
        p = harness.Porter(text, start=False)
        try:
            code, out, err = harness.run_porter(["-t", "-p", p.tmp, "-c", p.conf_path])
        finally:
            p.cleanup()
        self.assertEqual(code, 1, err)
        self.assertRegex(err, r"porter\.conf:\d+:\d+: .*" + message)

    def test_errors(self):
        self.check("location / { proxy_pass http://nosuchupstream; }", "no upstream")
        self.check("location / { proxy_pass ftp://x; }", "invalid URL")
        self.check("upstream a { }\nserver { listen 127.0.0.1:0; }", "no servers")
        self.check("upstream a { server 1.2.3; }\nserver { listen 127.0.0.1:0; }", "invalid address")
        self.check("upstream a { server 127.0.0.1:1 weight=0; }\nserver { listen 127.0.0.1:0; }",
                   "invalid parameter")
        self.check("location / { proxy_set_header X $nope; proxy_pass http://127.0.0.1:1; }",
                   "unknown variable")
        self.check("location / { status; proxy_pass http://127.0.0.1:1; }", "in one location")


if __name__ == "__main__":
    harness.main()
