"""Range requests: Accept-Ranges, single ranges (206 with Content-Range), open and suffix
ranges, several ranges as multipart/byteranges checked byte for byte, the cap on ranges, 416
with "bytes */LEN", If-Range with an ETag or a date; from memory, from an open file and with
the caches off; curl -r."""

import os
import re
import shutil
import subprocess
import tempfile
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402

SMALL = bytes(range(256)) * 8          # 2 KiB: held in memory
BIG = os.urandom(3 * 1024 * 1024 + 5)  # kept open, sendfile
FILES = {"small.bin": SMALL, "big.bin": BIG, "empty.txt": b"", "page.html": b"<p>hello</p>\n"}
CURL = shutil.which("curl")
MTIME = 1700000000
AT_MTIME = "Tue, 14 Nov 2023 22:13:20 GMT"


def multipart(body, content_type, data, ranges, part_type):
    """Checks `body` byte for byte against the multipart/byteranges framing of `ranges` of
    `data`; returns the boundary."""
    m = re.match(r"^multipart/byteranges; boundary=(\S+)$", content_type)
    assert m, content_type
    b = m.group(1).encode()
    want = b""
    for first, last in ranges:
        want += (b"\r\n--" + b + b"\r\nContent-Type: " + part_type.encode() +
                 b"\r\nContent-Range: bytes %d-%d/%d\r\n\r\n" % (first, last, len(data)) +
                 data[first:last + 1])
    want += b"\r\n--" + b + b"--\r\n"
    assert body == want, "multipart body differs:\n%r\n%r" % (body[:300], want[:300])
    return b


class Ranges(PorterTestCase):
    CONF = "max_ranges 4;"

    @classmethod
    def setUpClass(cls):
        cls.p = harness.Porter(cls.CONF, FILES, start=False)
        for rel in FILES:
            os.utime(os.path.join(cls.p.htdocs, rel), (MTIME, MTIME))
        cls.p.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def get(self, path, rng=None, headers=(), method="GET"):
        hs = list(headers)
        if rng is not None:
            hs.append(("Range", rng))
        return self.p.get(path, headers=hs, method=method)

    def check_single(self, path, data, rng, first, last):
        r = self.get(path, rng)
        self.assertStatus(r, 206)
        self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (first, last, len(data)))
        self.assertEqual(r.header("Content-Length"), str(last - first + 1))
        self.assertEqual(r.body, data[first:last + 1])
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        self.assertIsNotNone(r.header("ETag"))
        self.assertIsNotNone(r.header("Last-Modified"))

    def test_accept_ranges_on_files(self):
        r = self.get("/page.html")
        self.assertEqual(r.header("Accept-Ranges"), "bytes")
        self.assertEqual(self.get("/big.bin", method="HEAD").header("Accept-Ranges"), "bytes")

    def test_single_ranges(self):
        for path, data in (("/small.bin", SMALL), ("/big.bin", BIG)):
            n = len(data)
            self.check_single(path, data, "bytes=0-0", 0, 0)
            self.check_single(path, data, "bytes=0-99", 0, 99)
            self.check_single(path, data, "bytes=100-1999", 100, 1999)
            self.check_single(path, data, "bytes=1000-", 1000, n - 1)      # open
            self.check_single(path, data, "bytes=-100", n - 100, n - 1)    # suffix
            self.check_single(path, data, "bytes=-%d" % (n + 10), 0, n - 1)
            self.check_single(path, data, "bytes=%d-%d" % (n - 5, n + 100), n - 5, n - 1)
            self.check_single(path, data, "bytes=%d-" % (n - 1), n - 1, n - 1)

    def test_large_range_of_a_large_file(self):
        self.check_single("/big.bin", BIG, "bytes=17-", 17, len(BIG) - 1)
        self.check_single("/big.bin", BIG, "bytes=1000000-2999999", 1000000, 2999999)

    def test_unsatisfiable(self):
        for path, data in (("/small.bin", SMALL), ("/big.bin", BIG)):
            for rng in ("bytes=%d-" % len(data), "bytes=%d-%d" % (len(data) + 5, len(data) + 10),
                        "bytes=-0", "bytes=%d-,%d-" % (len(data), len(data) + 1)):
                r = self.get(path, rng)
                self.assertStatus(r, 416)
                self.assertEqual(r.header("Content-Range"), "bytes */%d" % len(data))
        r = self.get("/empty.txt", "bytes=0-")
        self.assertStatus(r, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */0")

    def test_ignored_ranges_give_200(self):
        for rng in ("bytes=5-2", "bytes=abc", "items=0-5", "bytes", "bytes=1-2-3",
                    "bytes=0-0,1-1,2-2,3-3,4-4",   # over max_ranges 4
                    "bytes=0-1500,1000-2047"):     # overlapping beyond the file's length
            r = self.get("/small.bin", rng)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, SMALL)
        r = self.get("/empty.txt", "bytes=-5")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"")

    def test_head_ignores_range(self):
        r = self.get("/small.bin", "bytes=0-9", method="HEAD")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Length"), str(len(SMALL)))
        self.assertIsNone(r.header("Content-Range"))

    def test_multipart(self):
        for path, data in (("/small.bin", SMALL), ("/big.bin", BIG)):
            n = len(data)
            ranges = [(0, 9), (100, 199), (n - 50, n - 1)]
            r = self.get(path, "bytes=0-9,100-199,-50")
            self.assertStatus(r, 206)
            self.assertIsNone(r.header("Content-Range"))
            self.assertEqual(int(r.header("Content-Length")), len(r.body))
            self.assertEqual(len(r.header_all("Content-Type")), 1)
            multipart(r.body, r.header("Content-Type"), data, ranges, "application/octet-stream")
            self.assertIsNotNone(r.header("ETag"))

    def test_multipart_large_parts_from_an_open_file(self):
        n = len(BIG)
        ranges = [(0, 99999), (1000000, 1999999), (2500000, n - 1), (5, 5)]
        r = self.get("/big.bin", "bytes=0-99999, 1000000-1999999,2500000-,5-5")
        self.assertStatus(r, 206)
        multipart(r.body, r.header("Content-Type"), BIG, ranges, "application/octet-stream")

    def test_multipart_keeps_the_order_asked_and_drops_unsatisfiable(self):
        r = self.get("/page.html", "bytes=5-7,0-2,1000-2000")
        self.assertStatus(r, 206)
        data = FILES["page.html"]
        multipart(r.body, r.header("Content-Type"), data, [(5, 7), (0, 2)], "text/html")
        # one satisfiable range left: a plain 206
        r = self.get("/page.html", "bytes=1000-2000,0-2")
        self.assertStatus(r, 206)
        self.assertEqual(r.header("Content-Range"), "bytes 0-2/%d" % len(data))
        self.assertEqual(r.body, data[:3])

    def test_boundaries_differ_between_responses(self):
        a = self.get("/small.bin", "bytes=0-1,3-4").header("Content-Type")
        b = self.get("/small.bin", "bytes=0-1,3-4").header("Content-Type")
        self.assertNotEqual(a, b)

    def test_if_range(self):
        for path, data in (("/small.bin", SMALL), ("/big.bin", BIG)):
            tag = self.get(path, method="HEAD").header("ETag")
            r = self.get(path, "bytes=0-9", [("If-Range", tag)])
            self.assertStatus(r, 206)
            self.assertEqual(r.body, data[:10])
            r = self.get(path, "bytes=0-9", [("If-Range", '"stale"')])
            self.assertStatus(r, 200)
            self.assertEqual(r.body, data)
            # a weak tag never matches
            self.assertStatus(self.get(path, "bytes=0-9", [("If-Range", "W/" + tag)]), 200)
            self.assertStatus(self.get(path, "bytes=0-9", [("If-Range", AT_MTIME)]), 206)
            self.assertStatus(self.get(path, "bytes=0-9", [("If-Range", "Tue, 14 Nov 2023 22:13:21 GMT")]), 200)
            # If-Range without Range changes nothing
            self.assertStatus(self.get(path, None, [("If-Range", '"stale"')]), 200)

    def test_preconditions_before_ranges(self):
        tag = self.get("/small.bin", method="HEAD").header("ETag")
        self.assertStatus(self.get("/small.bin", "bytes=0-9", [("If-None-Match", tag)]), 304)
        self.assertStatus(self.get("/small.bin", "bytes=0-9", [("If-Match", '"x"')]), 412)
        self.assertStatus(self.get("/small.bin", "bytes=0-9", [("If-Match", tag)]), 206)

    def test_pipelined_ranges(self):
        with self.p.connect() as c:
            c.send(request("GET", "/small.bin", headers=[("Range", "bytes=0-3")]) +
                   request("GET", "/big.bin", headers=[("Range", "bytes=-4")]) +
                   request("GET", "/small.bin", headers=[("Range", "bytes=0-0,2-2")]) +
                   request("GET", "/small.bin", headers=[("Range", "bytes=9999-")], close=True))
            rs = c.read_responses(["GET"] * 4)
        self.assertEqual([r.status for r in rs], [206, 206, 206, 416])
        self.assertEqual(rs[0].body, SMALL[:4])
        self.assertEqual(rs[1].body, BIG[-4:])
        multipart(rs[2].body, rs[2].header("Content-Type"), SMALL, [(0, 0), (2, 2)],
                  "application/octet-stream")

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_curl(self):
        p = subprocess.run([CURL, "-sS", "-r", "100-199", self.p.url("/big.bin")],
                           stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(p.stdout, BIG[100:200])
        # resume a download: curl -C
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "big.bin")
            with open(out, "wb") as f:
                f.write(BIG[:123456])
            p = subprocess.run([CURL, "-sS", "-C", "-", "-o", out, self.p.url("/big.bin")],
                               stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out, "rb") as f:
                self.assertTrue(f.read() == BIG, "the resumed download differs")


class RangesCachesOff(Ranges):
    CONF = ("file_cache_size off;\nopen_file_cache off;\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n    max_ranges 4;\n}\n")


class RangesSendfileOff(Ranges):
    CONF = "max_ranges 4;\nsendfile off;"


class RangesOff(PorterTestCase):
    def test_max_ranges_0(self):
        p = self.start_porter("max_ranges 0;", FILES)
        r = p.get("/small.bin", headers=[("Range", "bytes=0-9")])
        self.assertStatus(r, 200)
        self.assertEqual(r.body, SMALL)
        self.assertIsNone(r.header("Accept-Ranges"))

    def test_max_ranges_1(self):
        p = self.start_porter("max_ranges 1;", FILES)
        self.assertStatus(p.get("/small.bin", headers=[("Range", "bytes=0-9")]), 206)
        r = p.get("/small.bin", headers=[("Range", "bytes=0-9,20-29")])
        self.assertStatus(r, 200)
        self.assertEqual(r.body, SMALL)


if __name__ == "__main__":
    harness.main()
