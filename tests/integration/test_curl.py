"""curl as a real client: connection reuse, HEAD with -I, HTTP/1.0, a large download."""

import sys
import hashlib
import os
import shutil
import subprocess
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase

CURL = shutil.which("curl")
BIG = os.urandom(3 * 1024 * 1024 + 17)
FILES = {"index.html": b"<html>curl index</html>\n", "a.txt": b"alpha\n", "b.txt": b"bravo\n",
         "big.bin": BIG, "dir/index.html": b"dir index\n"}


def curl(*args, timeout=30):
    p = subprocess.run([CURL, "-sS", "--max-time", "20"] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


@unittest.skipUnless(CURL, "curl is not installed")
class Curl(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = harness.Porter("", FILES)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def test_keepalive_reuse(self):
        code, out, err = curl("-v", self.p.url("/a.txt"), self.p.url("/b.txt"))
        self.assertEqual(code, 0, err)
        self.assertEqual(out, b"alpha\nbravo\n")
        self.assertRegex(err, r"Re-using existing connection", "curl did not reuse the connection:\n" + err)
        self.assertEqual(err.count("Connected to"), 1, err)

    def test_head(self):
        code, out, err = curl("-I", self.p.url("/index.html"))
        self.assertEqual(code, 0, err)
        text = out.decode("latin-1")
        self.assertRegex(text, r"^HTTP/1.1 200 OK\r\n")
        self.assertIn("Content-Length: %d\r\n" % len(FILES["index.html"]), text)
        self.assertRegex(text, r"Content-Type: text/html")
        self.assertTrue(text.endswith("\r\n\r\n"), "a HEAD answer has no body")

    def test_http10(self):
        code, out, err = curl("-v", "--http1.0", self.p.url("/a.txt"))
        self.assertEqual(code, 0, err)
        self.assertEqual(out, b"alpha\n")
        self.assertIn("GET /a.txt HTTP/1.0", err)
        self.assertRegex(err, r"< HTTP/1.1 200")

    def test_large_download(self):
        code, out, err = curl(self.p.url("/big.bin"))
        self.assertEqual(code, 0, err)
        self.assertEqual(hashlib.sha256(out).hexdigest(), hashlib.sha256(BIG).hexdigest())

    def test_redirect_followed(self):
        code, out, err = curl("-L", self.p.url("/dir"))
        self.assertEqual(code, 0, err)
        self.assertEqual(out, b"dir index\n")

    def test_status_codes(self):
        code, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", self.p.url("/missing"))
        self.assertEqual(out, b"404")
        code, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "x=1",
                              self.p.url("/a.txt"))
        self.assertEqual(out, b"405")

    def test_many_urls_one_connection(self):
        urls = [self.p.url("/a.txt"), self.p.url("/big.bin"), self.p.url("/b.txt"), self.p.url("/")] * 3
        code, out, err = curl("-v", *urls)
        self.assertEqual(code, 0, err)
        expected = (b"alpha\n" + BIG + b"bravo\n" + FILES["index.html"]) * 3
        self.assertTrue(out == expected, "bodies differ")
        self.assertEqual(err.count("Connected to"), 1, err[-2000:])


if __name__ == "__main__":
    harness.main()
