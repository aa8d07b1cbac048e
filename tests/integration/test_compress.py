"""Compression on the fly: gzip, brotli and zstd chosen by Accept-Encoding (q-values, porter's
order for ties, `*`, q=0), on static files (whole and streamed), the status pages, proxied
answers (sized, chunked, already encoded, no-transform, server-sent events arriving event by
event) and over HTTP/2; the rules for what is not compressed (types, minimum length, ranges,
HEAD, 304, HTTP/1.0, gzip_disable, gzip_proxied); Vary, weak ETags, Accept-Ranges; copies of
hot files kept in the file cache; a body that fails halfway is not sent as whole. Every body is
decompressed with Python's own zlib, brotli and zstandard modules and compared with the
original."""

import gzip
import os
import socket
import subprocess
import sys
import threading
import time
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import brotli
    import zstandard
except ImportError:  # Debian's python3-brotli, python3-zstandard under another interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    import brotli
    import zstandard
import harness  # noqa: E402
from test_proxy import ProxyTestCase, read_request_head  # noqa: E402


def html(n, seed=0):
    """`n` bytes of HTML-like text that compresses well but not trivially."""
    out = bytearray(b"<!doctype html>\n<html><body>\n")
    i = seed
    while len(out) < n:
        out += b'<p class="row-%d">Item %d of the list, with some words %x.</p>\n' % (i % 17, i, i * 7919)
        i += 1
    return bytes(out[:n])


def decode(coding, data):
    if coding is None:
        return data
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return brotli.decompress(data)
    if coding == "zstd":
        # a frame may not say its size (streamed): decode as a stream
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise AssertionError("unknown coding %r" % coding)


PAGE = html(20000)
BIG = html(300 * 1024, seed=5)
SMALL = b"<p>tiny</p>\n"
CSS = b"body { color: black; }\n" * 200
PNG = os.urandom(5000)
FILES = {
    "index.html": PAGE, "big.html": BIG, "small.html": SMALL, "app.css": CSS, "pic.png": PNG,
    "nocache/big.html": BIG, "plain/index.html": PAGE,
}

CONF = """
gzip on; brotli on; zstd on;
gzip_types text/css; brotli_types text/css; zstd_types text/css;
gzip_min_length 100; brotli_min_length 100; zstd_min_length 100;
gzip_disable msie6 "Bot/[0-9]";
location /nocache/ { compress_cache off; }
location /plain/ { gzip off; brotli off; zstd off; }
location /levels/ { alias htdocs/; gzip_comp_level 9; }
location /nt/ { alias htdocs/; add_header Cache-Control no-transform; }
location /gz/ { alias htdocs/; brotli off; zstd off; }
location /v10/ { alias htdocs/; gzip_http_version 1.0; }
location /via/ { alias htdocs/; gzip_proxied any; }
location /order/ { alias htdocs/; compress_order gzip br zstd; }
"""


class Static(harness.PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = harness.Porter(CONF, FILES)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def get(self, path, ae=None, headers=(), method="GET", version="1.1"):
        hs = list(headers)
        if ae is not None:
            hs.append(("Accept-Encoding", ae))
        return self.p.get(path, headers=hs, method=method, version=version)

    def assertCoded(self, r, coding, body):
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Encoding"), coding)
        self.assertEqual(decode(coding, r.body), body)
        self.assertTrue(r.has_token("Vary", "Accept-Encoding"), r)
        if coding:
            self.assertLess(len(r.body), len(body) // 2)
            self.assertIsNone(r.header("Accept-Ranges"))

    def test_each_coding(self):
        for coding in ("gzip", "br", "zstd"):
            r = self.get("/index.html", coding)
            self.assertCoded(r, coding, PAGE)
            # a body compressed whole has its length
            self.assertEqual(r.header("Content-Length"), str(len(r.body)))

    def test_negotiation(self):
        for ae, want in (
            ("gzip, deflate, br, zstd", "zstd"),  # ties: zstd, br, gzip
            ("gzip, br", "br"),
            ("GZIP", "gzip"),
            ("x-gzip", "gzip"),
            ("gzip;q=0.5, br;q=0.4", "gzip"),
            ("*", "zstd"),
            ("br;q=0, zstd;q=0, *", "gzip"),
            ("gzip;q=0", None),
            ("identity", None),
            ("deflate", None),
            ("gzip;q=2", None),  # a malformed q-value: that member is ignored
            ("", None),
        ):
            r = self.get("/index.html", ae)
            self.assertEqual(r.header("Content-Encoding"), want, ae)
            self.assertEqual(decode(want, r.body), PAGE, ae)
            self.assertTrue(r.has_token("Vary", "Accept-Encoding"), ae)
        r = self.get("/index.html")
        self.assertCoded(r, None, PAGE)
        self.assertEqual(r.header("Accept-Ranges"), "bytes")

    def test_compress_order(self):
        self.assertEqual(self.get("/order/index.html", "br, zstd, gzip").header("Content-Encoding"), "gzip")
        self.assertEqual(self.get("/order/index.html", "br, zstd").header("Content-Encoding"), "br")
        self.assertEqual(self.get("/order/index.html", "zstd, br;q=0.5").header("Content-Encoding"), "zstd")

    def test_what_is_not_compressed(self):
        # a type not listed: no Vary either, it could not have been compressed
        r = self.get("/pic.png", "gzip")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, PNG)
        self.assertIsNone(r.header("Vary"))
        # a listed type, compressed
        self.assertCoded(self.get("/app.css", "br"), "br", CSS)
        # below the minimum length
        r = self.get("/small.html", "gzip")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, SMALL)
        self.assertIsNone(r.header("Vary"))
        # a location with every coding off
        r = self.get("/plain/index.html", "gzip")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIsNone(r.header("Vary"))
        # Cache-Control: no-transform from add_header
        r = self.get("/nt/index.html", "gzip")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, PAGE)

    def test_the_request_decides_too(self):
        # HTTP/1.0 by default (gzip_http_version 1.1), unless the location says 1.0
        r = self.get("/index.html", "gzip", version="1.0")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertTrue(r.has_token("Vary", "Accept-Encoding"))
        r = self.get("/v10/index.html", "gzip", version="1.0")
        self.assertCoded(r, "gzip", PAGE)
        # gzip_disable: msie6 and a pattern
        for ua, coded in (("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)", False),
                          ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)", True),
                          ("Mozilla/5.0 (compatible; Bot/2.1)", False),
                          ("mozilla/5.0 (compatible; bot/3)", False),  # case-insensitive
                          ("curl/8.0", True)):
            r = self.get("/index.html", "gzip", headers=[("User-Agent", ua)])
            self.assertEqual(r.header("Content-Encoding"), "gzip" if coded else None, ua)
        # a request through a proxy (Via): not by default, gzip_proxied any allows it
        r = self.get("/index.html", "gzip", headers=[("Via", "1.1 cache")])
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertCoded(self.get("/via/index.html", "gzip", headers=[("Via", "1.1 cache")]), "gzip", PAGE)

    def test_ranges_stay_identity(self):
        r = self.get("/index.html", "gzip", headers=[("Range", "bytes=0-99")])
        self.assertStatus(r, 206)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, PAGE[:100])

    def test_etag_weak_and_conditionals(self):
        plain = self.get("/index.html")
        strong = plain.header("ETag")
        self.assertTrue(strong.startswith('"'), strong)
        r = self.get("/index.html", "gzip")
        self.assertEqual(r.header("ETag"), "W/" + strong)
        self.assertEqual(r.header("Last-Modified"), plain.header("Last-Modified"))
        # If-None-Match with the weak tag: 304, whose ETag and Vary are the compressed answer's
        r = self.get("/index.html", "gzip", headers=[("If-None-Match", "W/" + strong)])
        self.assertStatus(r, 304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("ETag"), "W/" + strong)
        self.assertTrue(r.has_token("Vary", "Accept-Encoding"))
        self.assertIsNone(r.header("Content-Encoding"))
        # and with the strong one from an identity answer, without Accept-Encoding
        r = self.get("/index.html", headers=[("If-None-Match", strong)])
        self.assertStatus(r, 304)
        self.assertEqual(r.header("ETag"), strong)

    def test_head(self):
        r = self.get("/index.html", "gzip", method="HEAD")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertTrue(r.has_token("Vary", "Accept-Encoding"))
        self.assertIsNone(r.header("Accept-Ranges"))
        self.assertTrue(r.header("ETag").startswith("W/"))
        # with a copy kept (the GET before it left one), the copy's length ...
        got = self.get("/index.html", "gzip")
        r = self.get("/index.html", "gzip", method="HEAD")
        self.assertEqual(r.header("Content-Length"), str(len(got.body)))
        # ... without one, no length it cannot know, and no framing for a body that does not come
        r = self.get("/nocache/big.html", "gzip", method="HEAD")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertIsNone(r.header("Content-Length"))
        self.assertIsNone(r.header("Transfer-Encoding"))
        # and the connection goes on
        with self.p.connect() as c:
            c.send(harness.request("HEAD", "/big.html", headers=[("Accept-Encoding", "br")]) +
                   harness.request("GET", "/small.html"))
            h = c.read_response(method="HEAD")
            self.assertEqual(h.header("Content-Encoding"), "br")
            self.assertEqual(c.read_response().body, SMALL)

    def test_large_file_streamed_and_cached(self):
        # without the cache: read and compressed piece by piece, chunked, every time
        for coding in ("gzip", "br", "zstd"):
            for _ in range(2):
                r = self.get("/nocache/big.html", coding)
                self.assertCoded(r, coding, BIG)
                self.assertIsNone(r.header("Content-Length"))
                self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        # with it: the first answer streams, the next ones are the kept copy, with a length
        first = self.get("/big.html", "gzip")
        self.assertCoded(first, "gzip", BIG)
        again = self.get("/big.html", "gzip")
        self.assertCoded(again, "gzip", BIG)
        self.assertEqual(again.header("Content-Length"), str(len(again.body)))
        self.assertEqual(again.body, first.body)
        # a copy is per level: another location's level 9 is not the level 1 copy
        nine = self.get("/levels/big.html", "gzip")
        self.assertCoded(nine, "gzip", BIG)
        self.assertLess(len(nine.body), len(first.body))

    def test_a_changed_file_is_compressed_again(self):
        path = os.path.join(self.p.htdocs, "changing.html")
        with open(path, "wb") as f:
            f.write(html(80 * 1024, seed=1))
        self.assertCoded(self.get("/changing.html", "br"), "br", html(80 * 1024, seed=1))
        self.assertCoded(self.get("/changing.html", "br"), "br", html(80 * 1024, seed=1))
        time.sleep(1.1)  # the cache trusts an entry for file_cache_valid (1 s) between stats
        with open(path, "wb") as f:
            f.write(html(90 * 1024, seed=2))
        deadline = time.time() + 5
        while True:
            r = self.get("/changing.html", "br")
            if decode("br", r.body) == html(90 * 1024, seed=2) or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertCoded(r, "br", html(90 * 1024, seed=2))

    def test_error_pages_are_compressed(self):
        r = self.get("/missing.html", "gzip")
        self.assertStatus(r, 404)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertIn(b"404 Not Found", decode("gzip", r.body))

    def test_pipelined_compressed_answers(self):
        reqs = b"".join(harness.request("GET", p, headers=[("Accept-Encoding", ae)])
                        for p, ae in (("/big.html", "zstd"), ("/index.html", "gzip"),
                                      ("/nocache/big.html", "br"), ("/pic.png", "gzip")))
        with self.p.connect() as c:
            c.send(reqs)
            rs = c.read_responses(["GET"] * 4)
        self.assertEqual(decode("zstd", rs[0].body), BIG)
        self.assertEqual(decode("gzip", rs[1].body), PAGE)
        self.assertEqual(decode("br", rs[2].body), BIG)
        self.assertEqual(rs[3].body, PNG)


class Failure(harness.PorterTestCase):
    def test_file_shrinking_midway_is_not_sent_as_whole(self):
        big = html(6 << 20, seed=9)
        p = self.start_porter("gzip on; compress_cache off;", {"huge.html": big})
        c = harness.Conn(p.host, p.port, rcvbuf=16384)
        self.addCleanup(c.close)
        c.send(harness.request("GET", "/huge.html", headers=[("Accept-Encoding", "gzip")]))
        head = c.read_head()
        self.assertIn(b"Transfer-Encoding: chunked", head)
        time.sleep(0.5)  # porter waits for the client to read: the file is halfway
        with open(os.path.join(p.htdocs, "huge.html"), "r+b") as f:
            f.truncate(1 << 20)
        data = c.read_until_close(timeout=10)
        # the connection closed without the last chunk: no client takes it for the whole
        self.assertFalse(data.endswith(b"0\r\n\r\n"))
        deadline = time.time() + 5
        while "reading the file failed while compressing" not in p.log_text():
            self.assertLess(time.time(), deadline, "no error logged:\n" + p.log_text())
            time.sleep(0.05)  # the log is read from porter's output by another thread


    def test_clients_leaving_midway(self):
        big = html(2 << 20, seed=3)
        p = self.start_porter("gzip on; brotli on; zstd on; compress_cache off;", {"big.html": big})
        for coding in ("gzip", "br", "zstd"):
            for wait in (0, 0.05):
                for _ in range(3):
                    c = harness.Conn(p.host, p.port, rcvbuf=16384)
                    c.send(harness.request("GET", "/big.html", headers=[("Accept-Encoding", coding)]))
                    if wait:
                        c.read_head()
                        time.sleep(wait)  # porter waits for the client to read: the body is halfway
                    c.close()
        time.sleep(0.3)  # porter notices the resets
        self.assertTrue(p.alive(), p.log_text())
        r = p.get("/big.html", headers=[("Accept-Encoding", "gzip")])
        self.assertEqual(decode("gzip", r.body), big)


def sse_backend(sock, backend):
    """Answers with server-sent events, one every 0.4 s, as a chunked stream."""
    read_request_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    for i in range(3):
        ev = b"data: event number %d %s\n\n" % (i, b"x" * 200)
        sock.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
        time.sleep(0.4)
    sock.sendall(b"0\r\n\r\n")


def fixed_backend(body, ctype="text/html", extra=b"", chunked=False):
    def handler(sock, backend):
        while True:
            head = read_request_head(sock)
            if not head:
                return
            backend.received.append(head)
            if chunked:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%sTransfer-Encoding: chunked\r\n\r\n"
                             % (ctype.encode(), extra))
                for i in range(0, len(body), 7000):
                    part = body[i:i + 7000]
                    sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                sock.sendall(b"0\r\n\r\n")
            else:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%sContent-Length: %d\r\n"
                             b"ETag: \"up-1\"\r\nAccept-Ranges: bytes\r\nVary: Origin\r\n\r\n%s"
                             % (ctype.encode(), extra, len(body), body))
    return handler


class Proxied(ProxyTestCase):
    TOP = "gzip on; brotli on; zstd on; gzip_types text/event-stream application/json;" \
          " zstd_types text/event-stream application/json;"

    def start(self, handler):
        b = self.raw_backend(handler)
        return self.proxy([b.address], top=self.TOP)

    def test_sized_and_chunked_answers(self):
        for chunked in (False, True):
            p = self.start(fixed_backend(PAGE, chunked=chunked))
            for coding in ("gzip", "br", "zstd"):
                r = p.get("/x", headers=[("Accept-Encoding", coding)])
                self.assertStatus(r, 200)
                self.assertEqual(r.header("Content-Encoding"), coding)
                self.assertEqual(decode(coding, r.body), PAGE)
                self.assertIsNone(r.header("Content-Length"))
                if not chunked:
                    self.assertEqual(r.header("ETag"), 'W/"up-1"')
                    self.assertIsNone(r.header("Accept-Ranges"))
                    self.assertEqual(r.header_all("Vary"), ["Origin, Accept-Encoding"])
            r = p.get("/x")
            self.assertEqual(r.body, PAGE)
            self.assertIsNone(r.header("Content-Encoding"))

    def test_not_recompressed_nor_transformed(self):
        gz = gzip.compress(PAGE)
        p = self.start(fixed_backend(gz, extra=b"Content-Encoding: gzip\r\n"))
        r = p.get("/x", headers=[("Accept-Encoding", "br, gzip")])
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.body, gz)
        p = self.start(fixed_backend(PAGE, extra=b"Cache-Control: public, no-transform\r\n"))
        r = p.get("/x", headers=[("Accept-Encoding", "br, gzip")])
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, PAGE)

    def test_events_arrive_one_by_one(self):
        p = self.start(sse_backend)
        c = harness.Conn(p.host, p.port)
        self.addCleanup(c.close)
        c.send(harness.request("GET", "/events", headers=[("Accept-Encoding", "gzip")]))
        head = c.read_head()
        self.assertIn(b"Content-Encoding: gzip", head)
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        raw = bytes(c.buf)  # what came with the head
        c.buf = bytearray()
        got = b""
        start = time.time()
        # each event decodes before the backend has sent the next (they are 0.4 s apart)
        for i in range(3):
            while True:
                payload, raw = self.dechunk(raw)
                got += d.decompress(payload)
                if b"event number %d" % i in got:
                    break
                left = start + 0.35 + 0.4 * i - time.time()
                self.assertGreater(left, 0, "event %d was held back" % i)
                c.sock.settimeout(left)
                try:
                    data = c.sock.recv(65536)
                except socket.timeout:
                    self.fail("event %d was held back" % i)
                self.assertTrue(data)
                raw += data
            self.assertNotIn(b"event number %d" % (i + 1), got)
        c.sock.settimeout(5)
        while b"0\r\n\r\n" not in raw:
            data = c.sock.recv(65536)
            self.assertTrue(data)
            raw += data
        payload, raw = self.dechunk(raw)
        got += d.decompress(payload) + d.flush()
        self.assertTrue(d.eof, "the gzip stream was not finished")
        self.assertEqual(got.count(b"data: event number"), 3)

    @staticmethod
    def dechunk(raw):
        """The payload of the whole chunks at the start of `raw`, and what follows them."""
        out = b""
        while b"\r\n" in raw:
            size, rest = raw.split(b"\r\n", 1)
            n = int(size.split(b";")[0], 16)
            if n == 0 or len(rest) < n + 2:
                break
            out += rest[:n]
            raw = rest[n + 2:]
        return out, raw


class Http2(harness.PorterTestCase):
    def test_over_h2c(self):
        p = self.start_porter("gzip on; brotli on; zstd on;\nserver { listen 127.0.0.1:0 http2; root htdocs; }",
                              FILES)
        for coding in ("gzip", "br", "zstd"):
            for path, body in (("/index.html", PAGE), ("/nocache/big.html", BIG)):
                out = subprocess.run(
                    ["curl", "-s", "--http2-prior-knowledge", "-D", "-", "-o", "/dev/stdout",
                     "-H", "Accept-Encoding: " + coding, p.url(path)],
                    capture_output=True, timeout=30).stdout
                head, body_bytes = out.split(b"\r\n\r\n", 1)
                self.assertIn(b"HTTP/2 200", head)
                self.assertIn(("content-encoding: %s" % coding).encode(), head.lower())
                self.assertEqual(decode(coding, body_bytes), body)


if __name__ == "__main__":
    harness.main()
