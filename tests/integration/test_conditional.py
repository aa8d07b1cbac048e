"""Validators and conditional requests: ETag and Last-Modified on every file, 304 for
If-None-Match / If-Modified-Since, 412 for If-Match / If-Unmodified-Since, weak and strong
comparison (RFC 9110 section 13), from the memory cache, the open-file cache and with the
caches off, and with curl."""

import email.utils
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402

SMALL = b"<html>small</html>\n"
BIG = os.urandom(200 * 1024)  # over file_cache_max_file: kept open, sent with sendfile
FILES = {"small.html": SMALL, "big.bin": BIG, "dir/index.html": b"index\n"}
MTIME = 1700000000  # Tue, 14 Nov 2023 22:13:20 GMT
AT_MTIME = "Tue, 14 Nov 2023 22:13:20 GMT"
BEFORE = "Tue, 14 Nov 2023 22:13:19 GMT"
AFTER = "Tue, 14 Nov 2023 22:13:21 GMT"
CURL = shutil.which("curl")


def set_mtimes(p):
    for rel in FILES:
        os.utime(os.path.join(p.htdocs, rel), (MTIME, MTIME))


class Conditional(PorterTestCase):
    CONF = ""

    @classmethod
    def setUpClass(cls):
        cls.p = harness.Porter(cls.CONF, FILES, start=False)
        set_mtimes(cls.p)
        cls.p.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def get(self, path, headers=(), method="GET"):
        return self.p.get(path, headers=list(headers), method=method)

    def etag(self, path):
        r = self.get(path)
        self.assertStatus(r, 200)
        return r.header("ETag")

    def test_validators_on_every_file(self):
        for path, body in (("/small.html", SMALL), ("/big.bin", BIG), ("/dir/", b"index\n")):
            r = self.get(path)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, body)
            self.assertEqual(r.header("Last-Modified"), AT_MTIME)
            st = os.stat(os.path.join(self.p.htdocs, "dir/index.html" if path == "/dir/" else path[1:]))
            self.assertEqual(r.header("ETag"), '"%x-%x"' % (MTIME, st.st_size))
            self.assertEqual(r.header("Accept-Ranges"), "bytes")

    def test_if_none_match(self):
        for path in ("/small.html", "/big.bin"):
            tag = self.etag(path)
            r = self.get(path, [("If-None-Match", tag)])
            self.assertStatus(r, 304)
            self.assertEqual(r.body, b"")
            self.assertEqual(r.header("ETag"), tag)
            self.assertEqual(r.header("Last-Modified"), AT_MTIME)
            self.assertIsNone(r.header("Content-Length"))
            self.assertIsNone(r.header("Content-Type"))
            # weak comparison: W/ and lists
            self.assertStatus(self.get(path, [("If-None-Match", "W/" + tag)]), 304)
            self.assertStatus(self.get(path, [("If-None-Match", '"a", %s, "b"' % tag)]), 304)
            self.assertStatus(self.get(path, [("If-None-Match", "*")]), 304)
            r = self.get(path, [("If-None-Match", '"nope"')])
            self.assertStatus(r, 200)
            self.assertGreater(len(r.body), 0)

    def test_head_gets_304_too(self):
        tag = self.etag("/small.html")
        r = self.get("/small.html", [("If-None-Match", tag)], method="HEAD")
        self.assertStatus(r, 304)

    def test_if_modified_since(self):
        for path in ("/small.html", "/big.bin"):
            self.assertStatus(self.get(path, [("If-Modified-Since", AT_MTIME)]), 304)
            self.assertStatus(self.get(path, [("If-Modified-Since", AFTER)]), 304)
            self.assertStatus(self.get(path, [("If-Modified-Since", BEFORE)]), 200)
            # other date forms (RFC 850, asctime)
            self.assertStatus(self.get(path, [("If-Modified-Since", "Tuesday, 14-Nov-23 22:13:20 GMT")]), 304)
            self.assertStatus(self.get(path, [("If-Modified-Since", "Tue Nov 14 22:13:20 2023")]), 304)
            # invalid, or in the future: ignored
            self.assertStatus(self.get(path, [("If-Modified-Since", "yesterday")]), 200)
            self.assertStatus(self.get(path, [("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT")]), 200)

    def test_if_none_match_wins_over_if_modified_since(self):
        tag = self.etag("/small.html")
        r = self.get("/small.html", [("If-None-Match", '"other"'), ("If-Modified-Since", AT_MTIME)])
        self.assertStatus(r, 200)
        r = self.get("/small.html", [("If-None-Match", tag), ("If-Modified-Since", BEFORE)])
        self.assertStatus(r, 304)

    def test_if_match(self):
        for path in ("/small.html", "/big.bin"):
            tag = self.etag(path)
            self.assertStatus(self.get(path, [("If-Match", tag)]), 200)
            self.assertStatus(self.get(path, [("If-Match", "*")]), 200)
            r = self.get(path, [("If-Match", '"other"')])
            self.assertStatus(r, 412)
            self.assertIn(b"412", r.body)
            # strong comparison: a weak tag never matches
            self.assertStatus(self.get(path, [("If-Match", "W/" + tag)]), 412)

    def test_if_unmodified_since(self):
        self.assertStatus(self.get("/small.html", [("If-Unmodified-Since", AT_MTIME)]), 200)
        self.assertStatus(self.get("/small.html", [("If-Unmodified-Since", AFTER)]), 200)
        self.assertStatus(self.get("/small.html", [("If-Unmodified-Since", BEFORE)]), 412)
        self.assertStatus(self.get("/small.html", [("If-Unmodified-Since", "junk")]), 200)
        # If-Match takes precedence
        tag = self.etag("/small.html")
        self.assertStatus(self.get("/small.html", [("If-Match", tag), ("If-Unmodified-Since", BEFORE)]), 200)

    def test_412_before_304(self):
        tag = self.etag("/small.html")
        r = self.get("/small.html", [("If-Match", '"x"'), ("If-None-Match", tag)])
        self.assertStatus(r, 412)

    def test_missing_file_is_404_whatever_the_preconditions(self):
        self.assertStatus(self.get("/nope.html", [("If-None-Match", "*")]), 404)
        self.assertStatus(self.get("/nope.html", [("If-Match", "*")]), 404)

    def test_pipelined_conditionals_on_one_connection(self):
        tag = self.etag("/small.html")
        with self.p.connect() as c:
            c.send(request("GET", "/small.html", headers=[("If-None-Match", tag)]) +
                   request("GET", "/small.html") +
                   request("GET", "/small.html", headers=[("If-Match", '"x"')]) +
                   request("GET", "/small.html", headers=[("If-Modified-Since", AT_MTIME)], close=True))
            rs = c.read_responses(["GET"] * 4)
        self.assertEqual([r.status for r in rs], [304, 200, 412, 304])
        self.assertEqual(rs[1].body, SMALL)

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_curl_time_condition(self):
        # curl -z DATE sends If-Modified-Since; it answers 304 with no body
        p = subprocess.run([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-z", AT_MTIME,
                            self.p.url("/small.html")], stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(p.stdout, b"304")
        p = subprocess.run([CURL, "-sS", "-w", "\n%{http_code}", "-z", BEFORE,
                            self.p.url("/small.html")], stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(p.stdout, SMALL + b"\n200")


class ConditionalCachesOff(Conditional):
    """The same answers when files are opened for every request."""

    CONF = ("file_cache_size off;\nopen_file_cache off;\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n")


class EtagOff(PorterTestCase):
    def test_etag_off(self):
        p = self.start_porter("etag off;", FILES, start=False)
        set_mtimes(p)
        p.start()
        r = p.get("/small.html")
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("ETag"))
        self.assertEqual(r.header("Last-Modified"), AT_MTIME)
        self.assertStatus(p.get("/small.html", headers=[("If-Modified-Since", AT_MTIME)]), 304)
        self.assertStatus(p.get("/small.html", headers=[("If-None-Match", '"%x-%x"' % (MTIME, len(SMALL)))]), 200)
        self.assertStatus(p.get("/small.html", headers=[("If-None-Match", "*")]), 304)


class ChangedFile(PorterTestCase):
    def test_new_etag_after_change(self):
        p = self.start_porter("file_cache_valid 0;\nserver {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n",
                              FILES)
        r = p.get("/small.html")
        tag = r.header("ETag")
        with open(os.path.join(p.htdocs, "small.html"), "wb") as f:
            f.write(b"changed, and longer than before\n")
        r = p.get("/small.html", headers=[("If-None-Match", tag)])
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"changed, and longer than before\n")
        self.assertNotEqual(r.header("ETag"), tag)


if __name__ == "__main__":
    harness.main()
