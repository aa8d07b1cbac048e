"""Static files: index, directory redirects, media types, errors, HEAD, large files byte for
byte, the in-memory/sendfile boundary, and the standard headers."""

import sys
import email.utils
import hashlib
import os
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

BIG = os.urandom(5 * 1024 * 1024)
K10 = os.urandom(10 * 1024)
K16 = os.urandom(16 * 1024)
K16P1 = os.urandom(16 * 1024 + 1)

FILES = {
    "index.html": b"<html>root index</html>\n",
    "dir/index.html": b"<html>dir index</html>\n",
    "dir/page.html": b"<html>page</html>\n",
    "noindex/file.txt": b"just a file\n",
    "style.css": b"body{}\n",
    "app.js": b"var x;\n",
    "image.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 16,
    "data.json": b'{"a": 1}\n',
    "logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
    "blob.unknownext": b"\x00\x01\x02",
    "README": b"no extension\n",
    "UPPER.CSS": b"p{}\n",
    "empty.txt": b"",
    "big.bin": BIG,
    "k10.bin": K10,
    "k16.bin": K16,
    "k16p1.bin": K16P1,
    "with space.txt": b"spaced\n",
    "secret.txt": b"locked\n",
}


class Static(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = harness.Porter("", FILES)
        os.chmod(os.path.join(cls.p.htdocs, "secret.txt"), 0)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def get(self, path, **kw):
        return self.p.get(path, **kw)

    def test_root_serves_index(self):
        r = self.get("/")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["index.html"])
        self.assertEqual(r.header("Content-Type").split(";")[0], "text/html")
        self.assertEqual(r.header("Content-Length"), str(len(FILES["index.html"])))

    def test_index_by_name(self):
        r = self.get("/index.html")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["index.html"])

    def test_directory_redirect(self):
        r = self.get("/dir")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "/dir/")

    def test_directory_redirect_keeps_query(self):
        r = self.get("/dir?x=1&y=2")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "/dir/?x=1&y=2")

    def test_directory_index(self):
        r = self.get("/dir/")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["dir/index.html"])
        self.assertEqual(r.header("Content-Type").split(";")[0], "text/html")

    def test_query_ignored_for_file(self):
        r = self.get("/dir/page.html?v=3")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["dir/page.html"])

    def test_directory_without_index(self):
        self.assertStatus(self.get("/noindex/"), 403)
        r = self.get("/noindex")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "/noindex/")
        r = self.get("/noindex/file.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"just a file\n")

    def content_type(self, path):
        r = self.get(path)
        self.assertStatus(r, 200)
        return r.header("Content-Type").split(";")[0].strip()

    def test_content_types(self):
        self.assertEqual(self.content_type("/style.css"), "text/css")
        self.assertIn(self.content_type("/app.js"), ("text/javascript", "application/javascript"))
        self.assertEqual(self.content_type("/image.png"), "image/png")
        self.assertEqual(self.content_type("/data.json"), "application/json")
        self.assertEqual(self.content_type("/logo.svg"), "image/svg+xml")
        self.assertEqual(self.content_type("/blob.unknownext"), "application/octet-stream")
        self.assertEqual(self.content_type("/README"), "application/octet-stream")
        self.assertEqual(self.content_type("/UPPER.CSS"), "text/css")

    def test_not_found(self):
        r = self.get("/nope.html")
        self.assertStatus(r, 404)
        self.assertIn(b"404", r.body)
        self.assertEqual(r.header("Content-Type").split(";")[0], "text/html")
        self.assertStatus(self.get("/dir/nope/deeper.html"), 404)

    def test_file_with_trailing_slash(self):
        self.assertStatus(self.get("/dir/page.html/"), 404)

    def test_percent_encoded_name(self):
        r = self.get("/with%20space.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"spaced\n")
        r = self.get("/%64ir/page.html")  # %64 = 'd'
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["dir/page.html"])

    def test_dot_segments_inside_root(self):
        r = self.get("/dir/../dir/./page.html")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["dir/page.html"])
        r = self.get("//dir//page.html")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["dir/page.html"])

    def test_unreadable_file(self):
        if os.geteuid() == 0:
            self.skipTest("root reads any file (see UnreadableAsNobody)")
        self.assertStatus(self.get("/secret.txt"), 403)


    def test_empty_file(self):
        r = self.get("/empty.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Length"), "0")
        self.assertEqual(r.body, b"")

    def test_head(self):
        for path, body in [("/", FILES["index.html"]), ("/k10.bin", K10), ("/big.bin", BIG)]:
            with self.p.connect() as c:
                c.send(request("HEAD", path))
                r = c.read_response("HEAD")
                self.assertStatus(r, 200)
                self.assertEqual(r.header("Content-Length"), str(len(body)))
                self.assertTrue(r.header("Last-Modified"))
                # No body: the next response starts right after the head.
                c.send(request("GET", "/dir/page.html"))
                r2 = c.read_response()
                self.assertStatus(r2, 200)
                self.assertEqual(r2.body, FILES["dir/page.html"])

    def test_head_404(self):
        with self.p.connect() as c:
            c.send(request("HEAD", "/missing") + request("GET", "/empty.txt"))
            r1, r2 = c.read_responses(["HEAD", "GET"])
            self.assertStatus(r1, 404)
            self.assertStatus(r2, 200)
            self.assertEqual(r2.body, b"")

    def test_large_file_exact(self):
        with self.p.connect(timeout=30) as c:
            c.send(request("GET", "/big.bin"))
            r = c.read_response(timeout=30)
            self.assertStatus(r, 200)
            self.assertEqual(r.header("Content-Length"), str(len(BIG)))
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), hashlib.sha256(BIG).hexdigest())
            # The connection is still in step after a sendfile body.
            c.send(request("GET", "/dir/page.html"))
            self.assertEqual(c.read_response().body, FILES["dir/page.html"])

    def test_boundary_sizes(self):
        for name, data in [("k10.bin", K10), ("k16.bin", K16), ("k16p1.bin", K16P1)]:
            r = self.get("/" + name)
            self.assertStatus(r, 200)
            self.assertEqual(r.header("Content-Length"), str(len(data)), name)
            self.assertTrue(r.body == data, "%s differs" % name)

    def test_boundary_sizes_pipelined(self):
        names = ["k16p1.bin", "k10.bin", "k16.bin", "k16p1.bin", "index.html", "big.bin", "k10.bin"]
        with self.p.connect(timeout=30) as c:
            c.send(b"".join(request("GET", "/" + n) for n in names))
            for n, r in zip(names, c.read_responses(["GET"] * len(names), timeout=30)):
                self.assertStatus(r, 200)
                self.assertTrue(r.body == FILES[n], "%s differs" % n)

    def test_standard_headers(self):
        before = time.time()
        r = self.get("/dir/page.html")
        after = time.time()
        self.assertStatus(r, 200)
        self.assertTrue(r.header("Server", "").startswith("porter"), r)
        date = email.utils.parsedate_to_datetime(r.header("Date"))
        self.assertTrue(int(before) <= date.timestamp() <= after,
                        "Date %s is not the second of the request" % r.header("Date"))
        self.assertTrue(r.header("Date").endswith(" GMT"))
        lm = r.header("Last-Modified")
        self.assertIsNotNone(lm)
        mtime = os.stat(os.path.join(self.p.htdocs, "dir/page.html")).st_mtime
        self.assertEqual(email.utils.parsedate_to_datetime(lm).timestamp(), int(mtime))
        self.assertEqual(len(r.header_all("Content-Length")), 1)
        self.assertEqual(len(r.header_all("Date")), 1)

    def test_error_headers(self):
        r = self.get("/nope")
        self.assertTrue(r.header("Server", "").startswith("porter"))
        self.assertTrue(r.header("Date"))
        self.assertEqual(r.header("Content-Length"), str(len(r.body)))

    def test_absolute_form_target(self):
        r = self.get("http://localhost/index.html")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["index.html"])
        r = self.get("http://localhost:8080/dir/page.html?q=1")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["dir/page.html"])
        r = self.get("http://localhost")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["index.html"])

    def test_http10(self):
        with self.p.connect() as c:
            c.send(b"GET /dir/page.html HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, FILES["dir/page.html"])
            self.assertClosed(c)

    def test_file_changed_on_disk(self):
        path = os.path.join(self.p.htdocs, "changing.txt")
        with open(path, "wb") as f:
            f.write(b"first version\n")
        self.assertEqual(self.get("/changing.txt").body, b"first version\n")
        with open(path, "wb") as f:
            f.write(b"second, longer version\n")
        def body():
            r = self.get("/changing.txt")
            # Old or new, every answer is whole: its length is its body's.
            self.assertEqual(r.header("Content-Length"), str(len(r.body)))
            return r.body

        # Seen within file_cache_valid (1 s); 5 s of bound for a loaded machine.
        harness.wait_until(lambda: body() == b"second, longer version\n", 5, "the new version")
        os.unlink(path)
        harness.wait_until(lambda: self.get("/changing.txt").status == 404, 5, "a 404")


class UnreadableAsNobody(PorterTestCase):
    """As root, the 403 for an unreadable file is checked with porter running as nobody."""

    def test_unreadable_file(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to switch to nobody")
        p = self.start_porter("", {"ok.txt": b"fine\n", "locked.txt": b"locked\n"}, run_as=65534)
        os.chmod(os.path.join(p.htdocs, "locked.txt"), 0)
        r = p.get("/locked.txt")
        self.assertStatus(r, 403)
        self.assertNotIn(b"locked", r.body.replace(b"Forbidden", b""))
        r = p.get("/ok.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"fine\n")


if __name__ == "__main__":
    harness.main()
