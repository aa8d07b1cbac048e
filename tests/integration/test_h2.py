"""HTTP/2 with real clients: curl (--http2-prior-knowledge over TCP, ALPN over TLS), nghttp and
h2load (Debian's nghttp2-client), and the h2 package.

Static files answer over HTTP/2 as they do over HTTP/1.1 (the same validators, type and
length; HEAD, ranges, conditionals, precompressed siblings, 404); a 5 MiB file arrives whole
through small flow-control windows; 2000 requests on 200 concurrent streams all answered;
request and response bodies through the proxy unchanged both ways, and trailers as HTTP/1.1
passes them; HTTP/1.1 still spoken on an h2c address, and chosen by ALPN on a TLS one; one
access-log line per stream, "HTTP/2.0"; a reload finishes the stream in flight and says
GOAWAY. Everything on 127.0.0.1, bounded in time.
"""

import gzip
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402
import test_h2_frames as frames  # noqa: E402
import test_proxy  # noqa: E402
import test_tls  # noqa: E402

CURL = harness.tool("curl")
NGHTTP = harness.tool("nghttp")
H2LOAD = harness.tool("h2load")
OPENSSL = harness.tool("openssl")

JS = b"var x = 1; // " + b"a" * 500 + b"\n"
GZ = gzip.compress(JS, mtime=0)
BIG = os.urandom(5 * 1024 * 1024)
FILES = {
    "index.html": b"<html>h2</html>\n",
    "small.txt": b"small file\n",
    "app.js": JS, "app.js.gz": GZ,
    "big.bin": BIG,
    "dir/x.txt": b"x\n",
    "404.html": b"custom not found\n",
}
COMPARED = ("content-length", "content-type", "etag", "last-modified")


def conf(backend, top="", h2c_listen="listen 127.0.0.1:0 http2;", tls=True):
    text = ("error_log stderr info;\n"
            "access_log @TMP@/access.log;\n"
            "max_request_body_length 8m;\n"
            "%s\n"
            "server {\n"
            "    %s\n"
            "    root htdocs;\n"
            "    precompressed on;\n"
            "    error_page 404 /404.html;\n"
            "    location /porter-status { status; }\n"
            "    location /app/ { proxy_pass http://%s/; }\n"
            "}\n" % (top, h2c_listen, backend))
    if tls:
        text += ("server {\n"
                 "    listen 127.0.0.1:0 ssl http2;\n"
                 "    server_name a.test localhost;\n"
                 "    root htdocs;\n"
                 "    precompressed on;\n"
                 "    error_page 404 /404.html;\n"
                 "    ssl_certificate tls/a-ec.crt;\n"
                 "    ssl_certificate_key tls/a-ec.key;\n"
                 "    location /app/ { proxy_pass http://%s/; }\n"
                 "}\n" % backend)
    return text


class CurlResult:
    def __init__(self, code, version, status, headers, body, err):
        self.code, self.version, self.status = code, version, status
        self.headers, self.body, self.err = headers, body, err

    def header(self, name, default=None):
        for n, v in self.headers:
            if n == name.lower():
                return v
        return default

    def __repr__(self):
        return "<curl exit %d HTTP/%s %s %r body=%d bytes%s>" % (
            self.code, self.version, self.status, self.headers, len(self.body),
            (" stderr=%r" % self.err[-1500:]) if self.code else "")


def curl(args, timeout=60):
    """Runs curl; returns a CurlResult (the last response's head, as curl dumped it)."""
    d = tempfile.mkdtemp(prefix="porter-h2-curl-")
    try:
        head, body = os.path.join(d, "head"), os.path.join(d, "body")
        p = subprocess.run([CURL, "-sS", "--max-time", "30", "-D", head, "-o", body,
                            "-w", "%{http_version}"] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           preexec_fn=harness._child_setup)
        text = open(head, "rb").read().decode("latin-1") if os.path.exists(head) else ""
        data = open(body, "rb").read() if os.path.exists(body) else b""
    finally:
        shutil.rmtree(d, ignore_errors=True)
    status, headers = None, []
    for line in text.split("\r\n"):
        m = re.match(r"^HTTP/[\d.]+ (\d{3})", line)
        if m:
            status, headers = int(m.group(1)), []
        elif ":" in line and status is not None:
            n, v = line.split(":", 1)
            headers.append((n.strip().lower(), v.strip()))
    return CurlResult(p.returncode, p.stdout.decode().strip(), status, headers, data,
                      p.stderr.decode("utf-8", "replace"))


def sha(data):
    return hashlib.sha256(data).hexdigest()


class H2Case(PorterTestCase):
    """One porter for the class: an h2c address (self.port) and a TLS one (self.tport) with
    http2, a backend behind /app/."""

    @classmethod
    def setUpClass(cls):
        if not (CURL and OPENSSL):
            raise unittest.SkipTest("needs curl and openssl")
        cls.backend = test_proxy.Backend()
        try:
            cls.p = harness.Porter(conf(cls.backend.address), FILES, extra=test_tls.tls_extra())
            (_, _, cls.port), (scheme, _, cls.tport) = cls.p.listening(2)[:2]
            assert scheme == "https", cls.p.listening(2)
        except BaseException:
            cls.backend.stop()
            if getattr(cls, "p", None):
                cls.p.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()
            cls.backend.stop()

    def h2c(self, path, args=()):
        return curl(["--http2-prior-knowledge"] + list(args)
                    + ["http://127.0.0.1:%d%s" % (self.port, path)])

    def tls(self, path, args=(), http="--http2"):
        return curl([http, "--cacert", os.path.join(self.p.tmp, "tls/all.pem")] + list(args)
                    + test_tls.resolve(self.tport)
                    + ["https://a.test:%d%s" % (self.tport, path)])

    def h1(self, path, headers=None, method="GET"):
        r = self.p.get(path, headers=headers, method=method)
        self.assertEqual(r.version, "1.1")
        return r

    def assertH2(self, r, status):
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.version, "2", "not answered over HTTP/2: %r" % r)
        self.assertEqual(r.status, status, r)


class Static(H2Case):
    def same_as_http11(self, fetch):
        for path in ("/small.txt", "/index.html", "/dir/x.txt", "/app.js", "/big.bin"):
            want = self.h1(path)
            self.assertStatus(want, 200)
            r = fetch(path)
            self.assertH2(r, 200)
            self.assertTrue(r.body == want.body, "%s: %d bytes, not the %d of HTTP/1.1"
                            % (path, len(r.body), len(want.body)))
            for name in COMPARED:
                self.assertIsNotNone(want.header(name), (path, name))
                self.assertEqual(r.header(name), want.header(name), (path, name, r))
            # No connection-specific field in an HTTP/2 response (RFC 9113 8.2.2).
            for name in ("connection", "keep-alive", "transfer-encoding"):
                self.assertIsNone(r.header(name), (path, name, r))

    def test_get_over_h2c_as_over_http11(self):
        self.same_as_http11(self.h2c)

    def test_get_over_tls_as_over_http11(self):
        self.same_as_http11(self.tls)

    def test_head(self):
        want = self.h1("/big.bin", method="HEAD")
        for fetch in (self.h2c, self.tls):
            r = fetch("/big.bin", ["-I"])
            self.assertH2(r, 200)
            # curl -I writes the head where the body would go: nothing may follow it.
            self.assertTrue(r.body.startswith(b"HTTP/2 200"), r.body)
            self.assertTrue(r.body.endswith(b"\r\n\r\n"), r.body)
            self.assertEqual(r.body.count(b"\r\n\r\n"), 1, r.body)
            self.assertEqual(r.header("content-length"), str(len(BIG)))
            self.assertEqual(r.header("etag"), want.header("ETag"))

    def test_ranges(self):
        r = self.h2c("/big.bin", ["-r", "100-199"])
        self.assertH2(r, 206)
        self.assertEqual(r.body, BIG[100:200])
        self.assertEqual(r.header("content-range"), "bytes 100-199/%d" % len(BIG))
        self.assertEqual(r.header("content-length"), "100")
        r = self.tls("/big.bin", ["-r", "-10"])
        self.assertH2(r, 206)
        self.assertEqual(r.body, BIG[-10:])
        r = self.h2c("/small.txt", ["-r", "1000-"])
        self.assertH2(r, 416)
        self.assertEqual(r.header("content-range"), "bytes */%d" % len(FILES["small.txt"]))

    def test_conditionals(self):
        want = self.h1("/index.html")
        etag, lm = want.header("ETag"), want.header("Last-Modified")
        r = self.h2c("/index.html", ["-H", "If-None-Match: %s" % etag])
        self.assertH2(r, 304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("etag"), etag)
        r = self.tls("/index.html", ["-H", "If-Modified-Since: %s" % lm])
        self.assertH2(r, 304)
        self.assertEqual(r.body, b"")
        # A validator that does not match: the whole file.
        r = self.h2c("/index.html", ["-H", 'If-None-Match: "other"'])
        self.assertH2(r, 200)
        self.assertEqual(r.body, FILES["index.html"])

    def test_precompressed_sibling(self):
        r = self.h2c("/app.js", ["-H", "Accept-Encoding: gzip"])
        self.assertH2(r, 200)
        self.assertEqual(r.body, GZ)
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(r.header("vary"), "Accept-Encoding")
        self.assertEqual(r.header("content-length"), str(len(GZ)))
        r = self.h2c("/app.js")
        self.assertH2(r, 200)
        self.assertEqual(r.body, JS)
        self.assertIsNone(r.header("content-encoding"))

    def test_not_found(self):
        want = self.h1("/missing")
        self.assertStatus(want, 404)
        for fetch in (self.h2c, self.tls):
            r = fetch("/missing")
            self.assertH2(r, 404)
            self.assertEqual(r.body, want.body)
            self.assertEqual(r.body, FILES["404.html"])

    @unittest.skipUnless(NGHTTP, "needs nghttp")
    def test_large_file_through_small_windows(self):
        # Stream and connection windows of 16 KiB: the 5 MiB go in some 320 turns of
        # WINDOW_UPDATE.
        for url in ("http://127.0.0.1:%d/big.bin" % self.port,):
            p = subprocess.run([NGHTTP, "-w", "14", "-W", "14", url], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                               preexec_fn=harness._child_setup)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            self.assertEqual(len(p.stdout), len(BIG))
            self.assertEqual(sha(p.stdout), sha(BIG))

    def test_large_file_to_a_slow_reader_over_tls(self):
        # curl holds the rate down by not reading: porter's socket fills and the TLS records
        # it did not take go out later, whole and in order.
        r = self.tls("/big.bin", ["--limit-rate", "4M"])
        self.assertH2(r, 200)
        self.assertEqual(len(r.body), len(BIG))
        self.assertEqual(sha(r.body), sha(BIG))

    @unittest.skipUnless(H2LOAD, "needs h2load")
    def test_many_concurrent_streams(self):
        for url in ("http://127.0.0.1:%d/small.txt" % self.port,
                    "https://127.0.0.1:%d/index.html" % self.tport):
            p = subprocess.run([H2LOAD, "-n", "2000", "-c", "4", "-m", "50", "-t", "1", url],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=120,
                               preexec_fn=harness._child_setup)
            out = p.stdout.decode("utf-8", "replace")
            self.assertEqual(p.returncode, 0, out)
            self.assertIn("Application protocol: h2", out)
            self.assertRegex(out, r"requests: 2000 total, 2000 started, 2000 done, "
                                  r"2000 succeeded, 0 failed, 0 errored")
            self.assertRegex(out, r"status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx")

    def test_request_and_response_bodies_through_the_proxy(self):
        data = os.urandom(1024 * 1024)
        d = tempfile.mkdtemp(prefix="porter-h2-body-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "body")
        with open(path, "wb") as f:
            f.write(data)
        for fetch in (self.h2c, self.tls):
            before = len(self.backend.requests)
            r = fetch("/app/echo", ["--data-binary", "@" + path,
                                    "-H", "Content-Type: application/octet-stream"])
            self.assertH2(r, 200)
            self.assertEqual(r.header("x-body-sha"), sha(data))  # what the backend received
            self.assertEqual(sha(r.body), sha(data))  # and what came back
            up = self.backend.requests[before:]
            self.assertEqual(len(up), 1)
            self.assertEqual(up[0]["method"], "POST")
            self.assertEqual(sha(up[0]["body"]), sha(data))
        # And with the h2 package, the body in frames of its choosing.
        r = frames.h2_request(self.port, "/app/echo", "PUT", body=data)
        self.assertEqual((r["status"], r["reset"]), (200, None), r["events"][-5:])
        self.assertEqual(sha(r["body"]), sha(data))

    def test_large_response_through_the_proxy(self):
        n = 3 * 1024 * 1024 + 7
        for path in ("/app/big/%d" % n, "/app/chunked/%d" % n):
            r = self.h2c(path)
            self.assertH2(r, 200)
            self.assertEqual(sha(r.body), sha(test_proxy._pattern(0, n)), path)

    def test_http11_on_the_h2c_address(self):
        r = self.h1("/small.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["small.txt"])
        # keep-alive as usual
        with self.p.connect() as c:
            for _ in range(3):
                c.send(request("GET", "/index.html"))
                r = c.read_response()
                self.assertEqual((r.version, r.status, r.body), ("1.1", 200, FILES["index.html"]))
        r = curl(["--http1.1", "http://127.0.0.1:%d/small.txt" % self.port])
        self.assertEqual((r.code, r.version, r.status, r.body),
                         (0, "1.1", 200, FILES["small.txt"]), r)

    def test_alpn(self):
        r = self.tls("/small.txt", ["-v"], http="--http1.1")
        self.assertEqual((r.code, r.version, r.status, r.body),
                         (0, "1.1", 200, FILES["small.txt"]), r)
        self.assertIn("ALPN: server accepted http/1.1", r.err)
        r = self.tls("/small.txt", ["-v"])
        self.assertH2(r, 200)
        self.assertIn("ALPN: server accepted h2", r.err)
        # The server's choice: h2 preferred when offered first, last or alone.
        for offer, chosen in ((["h2", "http/1.1"], "h2"), (["http/1.1", "h2"], "h2"),
                              (["h2"], "h2"), (["http/1.1"], "http/1.1")):
            self.assertEqual(self.alpn(offer), chosen, offer)

    def alpn(self, offer):
        ctx = ssl.create_default_context(cafile=os.path.join(self.p.tmp, "tls/all.pem"))
        ctx.set_alpn_protocols(offer)
        with socket.create_connection(("127.0.0.1", self.tport), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                return s.selected_alpn_protocol()

    def test_status_page_counts_http2(self):
        before = frames.find_h2_counters(harness.get_status(self.p).get("total", {}), "stream")
        for _ in range(3):
            self.assertH2(self.h2c("/small.txt"), 200)
        doc = harness.get_status(self.p)
        total = doc.get("total", doc)
        conns = frames.find_h2_counters(total, "connection")
        streams = frames.find_h2_counters(total, "stream")
        self.assertTrue(conns and streams, "no HTTP/2 counters on the status page: %r" % total)
        self.assertGreaterEqual(max(conns.values()), 3, conns)
        key = max(streams, key=lambda k: streams[k])
        self.assertGreaterEqual(streams[key] - before.get(key, 0), 3, (before, streams))


class AccessLog(PorterTestCase):
    @unittest.skipUnless(H2LOAD and CURL, "needs h2load and curl")
    def test_one_line_per_stream(self):
        b = test_proxy.Backend()
        self.addCleanup(b.stop)
        p = self.start_porter(conf(b.address, tls=False), FILES)
        log = os.path.join(p.tmp, "access.log")
        out = subprocess.run([H2LOAD, "-n", "30", "-c", "1", "-m", "10",
                              "http://127.0.0.1:%d/small.txt" % p.port],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=60,
                             preexec_fn=harness._child_setup).stdout.decode()
        self.assertIn("30 succeeded", out)
        self.assertEqual(curl(["--http1.1", p.url("/index.html")]).status, 200)

        def lines():
            if not os.path.exists(log):
                return []
            with open(log) as f:
                return f.read().splitlines()

        # Flushed within a second; a margin for ASan.
        harness.wait_for(lambda: len(lines()) >= 31, 5)
        got = lines()
        h2 = [l for l in got if '"GET /small.txt HTTP/2.0" 200 %d ' % len(FILES["small.txt"]) in l]
        h1 = [l for l in got if '"GET /index.html HTTP/1.1" 200 ' in l]
        self.assertEqual((len(h2), len(h1), len(got)), (30, 1, 31), "\n".join(got))


def trailer_backend(sock, backend):
    """An upstream answering with a chunked body and trailer fields (one that no trailer may
    carry); it records whether the request said it accepts trailers."""
    head = test_proxy.read_request_head(sock)
    backend.te = getattr(backend, "te", []) + [b"\r\nte: trailers" in head.lower()]
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: X-Checksum\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc123\r\n"
                 b"Content-Length: 99\r\nX-Empty:\r\n\r\n")


class Trailers(PorterTestCase):
    """Trailer fields from an upstream reach a client that said TE: trailers (HTTP/1.1 in the
    last chunk, HTTP/2 in a HEADERS frame ending the stream), and no other client."""

    def setUp(self):
        if frames.h2 is None:
            self.skipTest("needs python3-h2")
        self.b = test_proxy.RawBackend(trailer_backend)
        self.addCleanup(self.b.stop)
        self.p = self.start_porter(conf(self.b.address, tls=False), FILES)

    def h1(self, te):
        with self.p.connect() as c:
            c.send(request("GET", "/app/t", headers=[("TE", "trailers")] if te else [],
                           close=True))
            raw = c.read_until_close()
        self.assertTrue(raw.startswith(b"HTTP/1.1 200"), raw)
        return raw.split(b"\r\n\r\n", 1)[1]

    def test_http11(self):
        body = self.h1(te=True)
        self.assertTrue(body.endswith(b"0\r\nX-Checksum: abc123\r\nX-Empty: \r\n\r\n"), body)
        self.assertNotIn(b"Content-Length: 99", body)
        body = self.h1(te=False)
        self.assertTrue(body.endswith(b"world\r\n0\r\n\r\n"), body)
        self.assertEqual(self.b.te, [True, False])

    def test_http2(self):
        r = frames.h2_request(self.p.port, "/app/t", headers=[("te", "trailers")])
        self.assertEqual((r["status"], r["body"], r["reset"]), (200, b"hello world", None),
                         r["events"])
        self.assertEqual(dict(r["trailers"]), {"x-checksum": "abc123", "x-empty": ""},
                         r["trailers"])
        r = frames.h2_request(self.p.port, "/app/t")
        self.assertEqual((r["status"], r["body"], r["reset"]), (200, b"hello world", None),
                         r["events"])
        self.assertFalse(r["trailers"], r["trailers"])
        self.assertEqual(self.b.te, [True, False])


class Enabling(PorterTestCase):
    def setUp(self):
        if not CURL:
            self.skipTest("needs curl")
        self.b = test_proxy.Backend()
        self.addCleanup(self.b.stop)

    def test_http2_on_in_the_server(self):
        p = self.start_porter(conf(self.b.address, top="", tls=False,
                                   h2c_listen="listen 127.0.0.1:0;\n    http2 on;"), FILES)
        r = curl(["--http2-prior-knowledge", p.url("/small.txt")])
        self.assertEqual((r.code, r.version, r.status, r.body),
                         (0, "2", 200, FILES["small.txt"]), r)
        self.assertEqual(p.get("/small.txt").version, "1.1")

    def test_not_offered_without_http2(self):
        p = self.start_porter(conf(self.b.address, top="", tls=False,
                                   h2c_listen="listen 127.0.0.1:0;"), FILES)
        r = curl(["--http2-prior-knowledge", p.url("/small.txt")])
        self.assertFalse(r.code == 0 and r.version == "2", r)
        self.assertStatus(p.get("/small.txt"), 200)


class Idle(PorterTestCase):
    def test_an_idle_h2c_connection_serves_its_next_request(self):
        # Idle keep-alive TCP connections are parked (their memory given back) after half a
        # second; an HTTP/2 one must not be: its session is its state.
        if frames.h2 is None:
            self.skipTest("needs python3-h2")
        p = self.start_porter(conf("127.0.0.1:1", tls=False), FILES)
        c = frames.RawH2(p.port)
        self.addCleanup(c.close)
        c.request(1)
        self.assertTrue(c.read_until(lambda: c.ended(1), 10), c.summary())
        time.sleep(1.5)
        c.request(3)
        self.assertTrue(c.read_until(lambda: c.ended(3), 10), c.summary())
        self.assertEqual((c.status(3), c.body(3)), (200, FILES["small.txt"]), c.summary())
        self.assertIsNone(c.goaway(), c.summary())


class Reload(PorterTestCase):
    def test_stream_in_flight_completes_and_client_gets_goaway(self):
        if frames.h2 is None:
            self.skipTest("needs python3-h2")
        port = self.reserve_port()
        text = ("error_log stderr info;\nshutdown_grace_period 10s;\n"
                "server {\n    listen 127.0.0.1:%d http2;\n    root htdocs;\n}\n" % port)
        p = self.start_porter(text, FILES)
        c = frames.RawH2(port)
        self.addCleanup(c.close)
        c.request(1, "/big.bin")
        # The first 64 KiB (the initial windows) arrive; the server waits for WINDOW_UPDATE.
        self.assertTrue(c.read_until(lambda: len(c.body(1)) >= 65535, 10), c.summary())
        marks = p.output.count("configuration reloaded")
        p.signal(signal.SIGHUP)
        self.assertTrue(harness.wait_for(
            lambda: p.output.count("configuration reloaded") > marks, 10), p.output[-2000:])
        # A fresh connection is served by the new generation.
        r = frames.h2_request(port)
        self.assertEqual(r["status"], 200, r["events"])
        acked = 0
        deadline = time.monotonic() + 30
        while not c.ended(1) and time.monotonic() < deadline:
            got = sum(len(f.payload) for f in c.of(1, frames.DATA))
            if got > acked:
                n = got - acked
                inc = struct.pack(">I", n)
                c.send(frames.frame(frames.WINDOW_UPDATE, 0, 0, inc)
                       + frames.frame(frames.WINDOW_UPDATE, 0, 1, inc))
                acked = got
            if not c.poll(1.0):
                break
        self.assertIsNone(c.reset_code(1), c.summary())
        body = c.body(1)
        self.assertEqual(len(body), len(BIG), "the stream was cut: %s" % c.summary())
        self.assertTrue(body == BIG)
        g = c.goaway()
        self.assertIsNotNone(g, "no GOAWAY after the reload: %s" % c.summary())
        self.assertEqual(frames.error_name(g.error_code), "NO_ERROR", c.summary())
        self.assertGreaterEqual(g.last_stream_id, 1, c.summary())
        # The retired connection goes once its stream is done.
        self.assertTrue(c.wait_closed(5), "the connection stayed open: %s" % c.summary())

    def test_idle_connection_gets_goaway_at_once(self):
        # An idle HTTP/2 connection hears of the reload at once (GOAWAY naming the last stream
        # it had), not at its next request or when its keep-alive runs out, and then closes.
        if frames.h2 is None:
            self.skipTest("needs python3-h2")
        port = self.reserve_port()
        text = ("error_log stderr info;\nshutdown_grace_period 30s;\nkeepalive_timeout 60s;\n"
                "server {\n    listen 127.0.0.1:%d http2;\n    root htdocs;\n}\n" % port)
        p = self.start_porter(text, FILES)
        c = frames.RawH2(port)
        self.addCleanup(c.close)
        c.request(1)
        self.assertTrue(c.read_until(lambda: c.ended(1), 10), c.summary())
        self.assertIsNone(c.goaway(), c.summary())
        p.signal(signal.SIGHUP)
        self.assertTrue(c.read_until(lambda: c.goaway() is not None, 5),
                        "no GOAWAY on reload: %s" % c.summary())
        g = c.goaway()
        self.assertEqual((frames.error_name(g.error_code), g.last_stream_id), ("NO_ERROR", 1),
                         c.summary())
        self.assertTrue(c.wait_closed(5), "the connection stayed open: %s" % c.summary())


if __name__ == "__main__":
    harness.main()
