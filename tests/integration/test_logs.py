"""Logs: the access log in combined format (one line per request, exact byte counts), its
flushing, `access_log off`, and the error log written to a file."""

import datetime
import sys
import os
import re
import time
import zoneinfo

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

FILES = {"index.html": b"<html>index page</html>\n", "a.txt": b"alpha\n", "big.bin": b"B" * 100000}

LINE = re.compile(
    r'^(?P<addr>127\.0\.0\.1) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<ua>[^"]*)"$')


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace").splitlines()


def local_stamps(tz, start, end):
    """The access log's time field for every second from `start` to `end` (epoch seconds) in
    the zone `tz`, as Python formats it: the oracle porter's stamps are checked against."""
    zone = zoneinfo.ZoneInfo(tz)
    return [datetime.datetime.fromtimestamp(t, zone).strftime("%d/%b/%Y:%H:%M:%S %z")
            for t in range(int(start), int(end) + 1)]


def wait_lines(path, n, timeout):
    """Waits until `path` holds at least n lines (or `timeout` passes); returns the lines and
    the time it took."""
    start = time.monotonic()
    got = []

    def enough():
        got[:] = read_lines(path)
        return len(got) >= n

    harness.wait_for(enough, timeout)
    return got, time.monotonic() - start


class AccessLog(PorterTestCase):
    """One porter for the class; each test looks only at the lines it caused."""

    @classmethod
    def setUpClass(cls):
        cls.p = harness.Porter("access_log @TMP@/access.log;", FILES)
        cls.log = os.path.join(cls.p.tmp, "access.log")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def setUp(self):
        # Earlier tests' lines are flushed within a second; wait until the count settles.
        n, _ = wait_lines(self.log, 10 ** 9, 0)
        self.skip_lines = len(n)

    def lines(self, n, timeout=4.0):
        lines, took = wait_lines(self.log, self.skip_lines + n, timeout)
        return lines[self.skip_lines:], took

    def parse(self, line):
        m = LINE.match(line)
        self.assertIsNotNone(m, "not a combined log line: %r" % line)
        return m

    def test_combined_line(self):
        before = time.time()
        r = self.p.get("/index.html", headers=[("Referer", "ref"), ("User-Agent", "ua")])
        after = time.time()
        self.assertStatus(r, 200)
        lines, took = self.lines(1)
        self.assertEqual(len(lines), 1, lines)
        # Flushed once a second: within 1 s, and 2 s of margin for ASan on a loaded machine.
        self.assertLess(took, 3.0, "the access log was not flushed within ~1 s")
        m = self.parse(lines[0])
        self.assertEqual(m.group("request"), "GET /index.html HTTP/1.1")
        self.assertEqual(m.group("status"), "200")
        self.assertEqual(int(m.group("bytes")), len(FILES["index.html"]))
        self.assertEqual(m.group("referer"), "ref")
        self.assertEqual(m.group("ua"), "ua")
        # The second of the request, in porter's zone (the harness gives it TZ=UTC unless the
        # environment names one).
        self.assertIn(m.group("time"), local_stamps(self.p.env["TZ"], before, after))

    def test_local_time_with_a_zone_offset(self):
        # Zones whose offsets are not whole hours, either side of UTC: "+0530", "-0330"
        # (or "-0230" in summer).
        for tz in ("Asia/Kolkata", "America/St_Johns"):
            p = self.start_porter("access_log @TMP@/access.log;", FILES, env={"TZ": tz})
            before = time.time()
            self.assertStatus(p.get("/a.txt"), 200)
            after = time.time()
            lines, _ = wait_lines(os.path.join(p.tmp, "access.log"), 1, 4.0)
            self.assertEqual(len(lines), 1, lines)
            stamp = self.parse(lines[0]).group("time")
            self.assertIn(stamp, local_stamps(tz, before, after), tz)
            self.assertNotIn(stamp, local_stamps("UTC", before, after), tz)

    def test_one_line_per_request_in_order(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt") + request("HEAD", "/index.html") + request("GET", "/missing")
                   + request("GET", "/big.bin") + request("POST", "/a.txt", headers=[("Content-Length", "0")])
                   + request("GET", "/a.txt?x=1", version="1.0"))
            rs = c.read_responses(["GET", "HEAD", "GET", "GET", "POST", "GET"])
        lines, _ = self.lines(6)
        self.assertEqual(len(lines), 6, lines)
        got = [self.parse(l) for l in lines]
        self.assertEqual([m.group("request") for m in got],
                         ["GET /a.txt HTTP/1.1", "HEAD /index.html HTTP/1.1", "GET /missing HTTP/1.1",
                          "GET /big.bin HTTP/1.1", "POST /a.txt HTTP/1.1", "GET /a.txt?x=1 HTTP/1.0"])
        self.assertEqual([m.group("status") for m in got], ["200", "200", "404", "200", "405", "200"])
        self.assertEqual([int(m.group("bytes")) for m in got], [len(r.body) for r in rs])
        self.assertEqual(int(got[1].group("bytes")), 0, "HEAD logs 0 bytes")
        self.assertEqual(int(got[3].group("bytes")), 100000)
        self.assertEqual(got[0].group("referer"), "-")
        self.assertEqual(got[0].group("ua"), "-")

    def test_quotes_escaped(self):
        self.p.get("/a.txt", headers=[("User-Agent", 'evil" "agent'), ("Referer", "back\\slash")])
        lines, _ = self.lines(1)
        self.assertEqual(len(lines), 1)
        m = self.parse(lines[0])
        self.assertNotIn('"', m.group("ua"))
        self.assertIn("evil", m.group("ua"))

    def test_bad_request_logged(self):
        with self.p.connect() as c:
            c.send(b"GET /a.txt HTTP/1.1\r\nHost : x\r\n\r\n")
            self.assertStatus(c.read_response(), 400)
        lines, _ = self.lines(1)
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(self.parse(lines[0]).group("status"), "400")


class AccessLogStop(PorterTestCase):
    def test_flushed_at_stop(self):
        p = self.start_porter("access_log @TMP@/access.log;", FILES)
        self.assertStatus(p.get("/a.txt"), 200)
        p.stop()
        lines = read_lines(os.path.join(p.tmp, "access.log"))
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], LINE)


class AccessLogOff(PorterTestCase):
    def test_off_writes_nothing(self):
        # On at the top level, off in the server.
        conf = ("access_log @TMP@/top.log;\n"
                "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n    access_log off;\n}\n")
        p = self.start_porter(conf, FILES)
        for _ in range(3):
            self.assertStatus(p.get("/a.txt"), 200)
        self.assertStatus(p.get("/missing"), 404)
        p.stop()  # which writes what is buffered
        self.assertEqual(read_lines(os.path.join(p.tmp, "top.log")), [])

    def test_inherited_from_top_level(self):
        conf = "access_log @TMP@/top.log;\nserver {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n"
        p = self.start_porter(conf, FILES)
        self.assertStatus(p.get("/a.txt"), 200)
        p.stop()
        lines = read_lines(os.path.join(p.tmp, "top.log"))
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], LINE)


class ErrorLog(PorterTestCase):
    def test_error_log_file(self):
        p = self.start_porter("error_log @TMP@/error.log info;\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n",
                              FILES, log_file="@TMP@/error.log")
        self.assertStatus(p.get("/a.txt"), 200)
        with open(os.path.join(p.tmp, "error.log")) as f:
            text = f.read()
        self.assertRegex(text, r"listening on http://127\.0\.0\.1:%d" % p.port)
        self.assertNotIn("listening on", p.output, "the error log went to stderr too")
        p.stop()

    def test_server_error_log(self):
        # A server block's own error log gets the messages about its requests; the process's
        # log keeps the rest.
        p = self.start_porter("error_log stderr notice;\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    error_log @TMP@/site-error.log info;\n}\n", FILES)
        self.assertStatus(p.get("/missing.txt"), 404)
        with p.connect() as c:
            c.send(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        p.stop()
        with open(os.path.join(p.tmp, "site-error.log")) as f:
            text = f.read()
        self.assertRegex(text, r'\[info\] \d+: open\(\) ".*/htdocs/missing\.txt" failed '
                               r'\(No such file or directory\), client: 127\.0\.0\.1:\d+, '
                               r'request: "GET /missing\.txt HTTP/1\.1"')
        self.assertRegex(text, r"\[info\] \d+: client sent an invalid request \(400\)")
        self.assertNotIn("missing.txt", p.output, "a request message reached the process log")
        self.assertIn("listening on", p.output)

    def test_level_filters(self):
        # At "error", the notice-level "listening on" line is not written: the port is read
        # from the process's listening socket.
        p = self.start_porter("error_log @TMP@/error.log error;\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n",
                              FILES, listen_log=False)
        self.assertStatus(p.get("/a.txt"), 200)
        p.stop()
        with open(os.path.join(p.tmp, "error.log")) as f:
            self.assertNotIn("listening on", f.read())

if __name__ == "__main__":
    harness.main()
