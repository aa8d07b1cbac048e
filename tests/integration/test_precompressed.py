"""Precompressed siblings: FILE.br, FILE.zst, FILE.gz chosen by Accept-Encoding and its
q-values, with Vary: Accept-Encoding, the Content-Type of the original and the sibling's own
validators; with ranges and conditionals; off by default; curl --compressed."""

import gzip
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402

JS = b"var x = 1; // " + b"a" * 500 + b"\n"
BR = b"BR-bytes-of-app.js"       # porter does not look inside: any bytes do
ZST = b"ZSTD-bytes-of-app.js!"
GZ = gzip.compress(JS, mtime=0)
BIG = os.urandom(100 * 1024)
FILES = {
    "app.js": JS, "app.js.br": BR, "app.js.zst": ZST, "app.js.gz": GZ,
    "only-gz.css": b"body{}\n", "only-gz.css.gz": gzip.compress(b"body{}\n", mtime=0),
    "plain.txt": b"no siblings\n",
    "dir/index.html": b"<p>index</p>\n", "dir/index.html.gz": gzip.compress(b"<p>index</p>\n", mtime=0),
    "big.bin": BIG, "big.bin.br": BIG[::-1],
}
CURL = shutil.which("curl")


def system_type(ext):
    """The type /etc/mime.types gives the extension `ext` (None without the file or it)."""
    try:
        with open("/etc/mime.types") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                if ext in fields[1:]:
                    return fields[0]
    except OSError:
        pass
    return None


class Precompressed(PorterTestCase):
    CONF = "precompressed on;"

    @classmethod
    def setUpClass(cls):
        cls.p = harness.Porter(cls.CONF, FILES)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def get(self, path, ae=None, headers=(), method="GET"):
        hs = list(headers)
        if ae is not None:
            hs.append(("Accept-Encoding", ae))
        return self.p.get(path, headers=hs, method=method)

    def check(self, r, body, encoding, ctype):
        self.assertStatus(r, 200)
        self.assertEqual(r.body, body)
        self.assertEqual(r.header("Content-Encoding"), encoding)
        self.assertEqual(r.header("Content-Type").split(";")[0], ctype)
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(r.header("Content-Length"), str(len(body)))

    def test_choice_by_accept_encoding(self):
        # The type comes from the system's table (read here, not from porter's answer), or
        # porter's built-in one without it.
        ctype = system_type("js") or "text/javascript"
        self.assertEqual(self.get("/app.js").header("Content-Type").split(";")[0], ctype)
        for ae, body, enc in (
            (None, JS, None),
            ("", JS, None),
            ("identity", JS, None),
            ("deflate", JS, None),
            ("gzip", GZ, "gzip"),
            ("x-gzip", GZ, "gzip"),
            ("zstd", ZST, "zstd"),
            ("br", BR, "br"),
            ("gzip, deflate, br, zstd", ZST, "zstd"),    # equal q: zstd, br, gzip
            ("gzip, zstd", ZST, "zstd"),
            ("br;q=0.5, gzip;q=0.8", GZ, "gzip"),
            ("br;q=0.5, gzip;q=0.8, zstd;q=0.9", ZST, "zstd"),
            ("br;q=0, gzip", GZ, "gzip"),
            ("*", ZST, "zstd"),
            ("*;q=0.1, gzip;q=0.5", GZ, "gzip"),
            ("br;q=0.2, identity;q=0.5", JS, None),
            ("br;q=0, zstd;q=0, gzip;q=0", JS, None),
        ):
            self.check(self.get("/app.js", ae), body, enc, ctype)

    def test_missing_siblings_fall_through(self):
        self.check(self.get("/only-gz.css", "br, zstd, gzip"), FILES["only-gz.css.gz"], "gzip", "text/css")
        self.check(self.get("/only-gz.css", "br, zstd"), b"body{}\n", None, "text/css")
        self.check(self.get("/plain.txt", "br, gzip"), b"no siblings\n", None, "text/plain")
        # asked again: the misses are remembered, the answers the same
        for _ in range(3):
            self.check(self.get("/plain.txt", "br, gzip"), b"no siblings\n", None, "text/plain")
            self.check(self.get("/only-gz.css", "br, gzip"), FILES["only-gz.css.gz"], "gzip", "text/css")

    def test_directory_index_sibling(self):
        self.check(self.get("/dir/", "gzip"), FILES["dir/index.html.gz"], "gzip", "text/html")
        self.check(self.get("/dir/", None), b"<p>index</p>\n", None, "text/html")

    def test_sibling_has_its_own_validators(self):
        a = self.get("/app.js", "br")
        b = self.get("/app.js", None)
        self.assertNotEqual(a.header("ETag"), b.header("ETag"))
        self.assertStatus(self.get("/app.js", "br", [("If-None-Match", a.header("ETag"))]), 304)
        # the identity's tag does not validate the br representation
        self.assertStatus(self.get("/app.js", "br", [("If-None-Match", b.header("ETag"))]), 200)
        r = self.get("/app.js", "br", [("If-None-Match", a.header("ETag"))])
        self.assertEqual(r.header("Vary"), "Accept-Encoding")

    def test_ranges_apply_to_the_sibling(self):
        r = self.get("/app.js", "br", [("Range", "bytes=0-1")])
        self.assertStatus(r, 206)
        self.assertEqual(r.body, BR[:2])
        self.assertEqual(r.header("Content-Encoding"), "br")
        self.assertEqual(r.header("Content-Range"), "bytes 0-1/%d" % len(BR))
        r = self.get("/big.bin", "br", [("Range", "bytes=-3")])
        self.assertEqual(r.body, BIG[::-1][-3:])
        r = self.get("/big.bin", "br")
        self.assertEqual(r.body, BIG[::-1])

    def test_head(self):
        r = self.get("/app.js", "gzip", method="HEAD")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Length"), str(len(GZ)))
        self.assertEqual(r.header("Content-Encoding"), "gzip")

    def test_sibling_requested_by_name_is_a_plain_file(self):
        r = self.get("/app.js.gz", "gzip")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, GZ)
        self.assertIsNone(r.header("Content-Encoding"))

    def test_new_sibling_is_seen(self):
        p = self.start_porter("precompressed on;\nopen_file_cache_valid 0;\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n", FILES)
        self.assertIsNone(p.get("/plain.txt", headers=[("Accept-Encoding", "gzip")]).header("Content-Encoding"))
        with open(os.path.join(p.htdocs, "plain.txt.gz"), "wb") as f:
            f.write(b"GZ!")
        r = p.get("/plain.txt", headers=[("Accept-Encoding", "gzip")])
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.body, b"GZ!")
        os.unlink(os.path.join(p.htdocs, "plain.txt.gz"))
        r = p.get("/plain.txt", headers=[("Accept-Encoding", "gzip")])
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, b"no siblings\n")

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_curl_compressed(self):
        # curl --compressed asks for gzip (and others it supports) and decodes the answer
        p = subprocess.run([CURL, "-sS", "--compressed", "-H", "Accept-Encoding: gzip",
                            self.p.url("/app.js")], stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(p.stdout, JS)


class PrecompressedCachesOff(Precompressed):
    CONF = ("file_cache_size off;\nopen_file_cache off;\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n    precompressed on;\n}\n")


class PrecompressedOff(PorterTestCase):
    def test_off_by_default(self):
        p = self.start_porter("", FILES)
        r = p.get("/app.js", headers=[("Accept-Encoding", "gzip, br")])
        self.assertStatus(r, 200)
        self.assertEqual(r.body, JS)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIsNone(r.header("Vary"))

    def test_per_location(self):
        p = self.start_porter("location /dir/ { precompressed on; }", FILES)
        self.assertIsNone(p.get("/app.js", headers=[("Accept-Encoding", "gzip")]).header("Content-Encoding"))
        self.assertEqual(p.get("/dir/", headers=[("Accept-Encoding", "gzip")]).header("Content-Encoding"), "gzip")


if __name__ == "__main__":
    harness.main()
