"""Access logs in formats, and where logs go: `log_format` (every variable, with values checked
against what the client sent and received), nginx's combined format, escape=json kept valid
JSON whatever the client sends, escape=default and none, access_log in locations and several in
one scope, buffer= and flush=, if=, syslog over UDP (IPv4 and IPv6) and a unix datagram socket
for access and error logs, error_log stderr, the master's own messages in the error log, and the
conf errors `porter -t` reports with their place."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402
from test_proxy import Backend  # noqa: E402
import test_tls  # noqa: E402

FILES = {"a.txt": b"alpha\n", "loc/b.txt": b"bravo bravo\n", "big.bin": b"B" * 50000}

# nginx's combined format as nginx-tests reads it, field by field.
COMBINED = re.compile(
    r'^(?P<addr>\S+) - (?P<user>\S+) \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<ua>[^"]*)"$')

# Every variable a log line may name, as one JSON object of strings.
VARS = ["remote_addr", "remote_port", "remote_user", "time_local", "time_iso8601", "msec",
        "request_time", "status", "request", "request_method", "request_uri", "uri", "args",
        "query_string", "host", "http_host", "scheme", "server_port", "server_protocol",
        "body_bytes_sent", "bytes_sent", "request_length", "connection", "connection_requests",
        "pipe", "http2", "ssl_protocol", "ssl_cipher", "upstream_addr", "upstream_status",
        "upstream_response_time", "http_x_test"]
ALL_FORMAT = ("log_format all escape=json '{' %s '}';\n"
              % " ".join("'\"%s\":\"$%s\"%s'" % (v, v, "," if i + 1 < len(VARS) else "")
                         for i, v in enumerate(VARS)))


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace").splitlines()


def read_bytes_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def wait_lines(path, n, timeout=5.0):
    got = []

    def enough():
        got[:] = read_lines(path)
        return len(got) >= n

    harness.wait_for(enough, timeout)
    return got


def bytes_of(r):
    """The bytes a response took on the wire: its head (read without the blank line) and body."""
    return len(r.raw_head) + 4 + len(r.body)


class Variables(PorterTestCase):
    """Each variable of a JSON line, parsed, against what the test sent and received."""

    def entries(self, p, n, name="all.log"):
        lines = wait_lines(os.path.join(p.tmp, name), n)
        self.assertEqual(len(lines), n, lines)
        return [json.loads(l) for l in lines]

    def test_every_variable_over_http1(self):
        p = self.start_porter(ALL_FORMAT + "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    access_log @TMP@/all.log all;\n}\n", FILES)
        req1 = request("GET", "/a.txt?x=1&y=%20", headers=[("X-Test", "first")])
        req2 = request("GET", "/missing", headers=[("X-Test", "second")])
        before = time.time()
        with p.connect() as c:
            local_port = c.sock.getsockname()[1]
            c.send(req1)
            r1 = c.read_response()
            c.send(req2)
            r2 = c.read_response()
        after = time.time()
        with p.connect() as c:
            c.send(request("GET", "/a.txt"))
            c.read_response()
        e1, e2, e3 = self.entries(p, 3)
        self.assertEqual(set(e1), set(VARS))
        self.assertEqual(e1["remote_addr"], "127.0.0.1")
        self.assertEqual(e1["remote_port"], str(local_port))
        self.assertEqual(e1["remote_user"], "")  # no auth_basic
        self.assertRegex(e1["time_local"], r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$")
        self.assertRegex(e1["time_iso8601"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(int(float(e1["msec"]))))
        self.assertEqual(e1["time_iso8601"], stamp, "time_iso8601 and msec disagree")
        self.assertRegex(e1["msec"], r"^\d+\.\d{3}$")
        self.assertGreaterEqual(float(e1["msec"]), before - 1)
        self.assertLessEqual(float(e1["msec"]), after + 1)
        self.assertRegex(e1["request_time"], r"^\d+\.\d{3}$")
        self.assertLess(float(e1["request_time"]), after - before + 1)
        self.assertEqual(e1["status"], "200")
        self.assertEqual(e2["status"], "404")
        self.assertEqual(e1["request"], "GET /a.txt?x=1&y=%20 HTTP/1.1")
        self.assertEqual(e1["request_method"], "GET")
        self.assertEqual(e1["request_uri"], "/a.txt?x=1&y=%20")
        self.assertEqual(e1["uri"], "/a.txt")
        self.assertEqual(e1["args"], "x=1&y=%20")
        self.assertEqual(e1["query_string"], "x=1&y=%20")
        self.assertEqual(e1["host"], "localhost")
        self.assertEqual(e1["http_host"], "localhost")
        self.assertEqual(e1["scheme"], "http")
        self.assertEqual(e1["server_port"], str(p.port))
        self.assertEqual(e1["server_protocol"], "HTTP/1.1")
        self.assertEqual(e1["body_bytes_sent"], str(len(FILES["a.txt"])))
        self.assertEqual(e1["bytes_sent"], str(bytes_of(r1)))
        self.assertEqual(e2["body_bytes_sent"], str(len(r2.body)))
        self.assertEqual(e2["bytes_sent"], str(bytes_of(r2)))
        self.assertEqual(e1["request_length"], str(len(req1)))
        self.assertEqual(e2["request_length"], str(len(req2)))
        # one connection for the first two, another for the third
        self.assertRegex(e1["connection"], r"^\d+$")
        self.assertEqual(e1["connection"], e2["connection"])
        self.assertNotEqual(e1["connection"], e3["connection"])
        self.assertEqual([e1["connection_requests"], e2["connection_requests"],
                          e3["connection_requests"]], ["1", "2", "1"])
        self.assertEqual(e1["pipe"], ".")
        self.assertEqual(e1["http2"], "")
        self.assertEqual(e1["ssl_protocol"], "")
        self.assertEqual(e1["ssl_cipher"], "")
        self.assertEqual(e1["upstream_addr"], "")
        self.assertEqual(e1["upstream_status"], "")
        self.assertEqual(e1["upstream_response_time"], "")
        self.assertEqual([e1["http_x_test"], e2["http_x_test"], e3["http_x_test"]],
                         ["first", "second", ""])

    def test_pipelined_requests(self):
        p = self.start_porter(ALL_FORMAT + "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    access_log @TMP@/all.log all;\n}\n", FILES)
        with p.connect() as c:
            c.send(request("GET", "/a.txt"))
            c.read_response()
            # three at once: the second and third came with the bytes of the one before
            c.send(request("GET", "/a.txt") * 3)
            c.read_responses(["GET"] * 3)
        got = self.entries(p, 4)
        self.assertEqual([e["pipe"] for e in got], [".", ".", "p", "p"])
        self.assertEqual([e["connection_requests"] for e in got], ["1", "2", "3", "4"])

    def test_upstream_variables(self):
        backend = Backend()
        self.addCleanup(backend.stop)
        dead = self.closed_port()
        p = self.start_porter(
            ALL_FORMAT + "upstream app { server 127.0.0.1:%d; server %s; }\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    access_log @TMP@/all.log all;\n"
            "    location /up/ { proxy_pass http://%s; }\n"
            "    location /two/ { proxy_pass http://app; }\n}\n"
            % (dead, backend.address, backend.address), FILES)
        self.assertStatus(p.get("/up/x"), 200)
        # the first server refuses: the request goes on to the second, and both are logged
        self.assertStatus(p.get("/two/x"), 200)
        one, two = self.entries(p, 2)
        self.assertEqual(one["upstream_addr"], backend.address)
        self.assertEqual(one["upstream_status"], "200")
        self.assertRegex(one["upstream_response_time"], r"^\d+\.\d{3}$")
        self.assertLessEqual(float(one["upstream_response_time"]), float(one["request_time"]))
        self.assertEqual(two["upstream_addr"], "127.0.0.1:%d, %s" % (dead, backend.address))
        self.assertEqual(two["upstream_status"], "502, 200")
        self.assertRegex(two["upstream_response_time"], r"^\d+\.\d{3}, \d+\.\d{3}$")

    def test_tls_variables(self):
        import ssl
        p = self.start_porter(
            ALL_FORMAT + "server {\n    listen 127.0.0.1:0 ssl;\n    root htdocs;\n"
            "    ssl_certificate tls/a-rsa.crt;\n    ssl_certificate_key tls/a-rsa.key;\n"
            "    access_log @TMP@/all.log all;\n}\n", FILES, extra=test_tls.tls_extra())
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                s.sendall(request("GET", "/a.txt", close=True))
                while s.recv(65536):
                    pass
                version, cipher = s.version(), s.cipher()[0]
        (e,) = self.entries(p, 1)
        self.assertEqual(e["ssl_protocol"], version)
        self.assertEqual(e["ssl_cipher"], cipher)
        self.assertEqual(e["scheme"], "https")
        self.assertEqual(e["http2"], "")

    def test_http2_variables(self):
        nghttp = harness.tool("nghttp")
        if not nghttp:
            self.skipTest("nghttp (nghttp2-client) is not installed")
        p = self.start_porter(ALL_FORMAT + "server {\n    listen 127.0.0.1:0 http2;\n"
                              "    root htdocs;\n    access_log @TMP@/all.log all;\n}\n", FILES)
        # prior knowledge, two streams on one connection
        out = subprocess.run([nghttp, "-H", "x-test: h2", p.url("/a.txt?1"), p.url("/a.txt?2")],
                             capture_output=True, timeout=30)
        self.assertEqual(out.stdout, FILES["a.txt"] * 2, out.stderr)
        got = sorted(self.entries(p, 2), key=lambda e: e["args"])
        for e in got:
            self.assertEqual(e["http2"], "h2c")
            self.assertEqual(e["server_protocol"], "HTTP/2.0")
            self.assertEqual(e["http_x_test"], "h2")
            self.assertEqual(e["body_bytes_sent"], str(len(FILES["a.txt"])))
            self.assertEqual(e["connection"], got[0]["connection"])
        self.assertEqual(got[0]["request"], "GET /a.txt?1 HTTP/2.0")
        self.assertEqual(sorted(e["connection_requests"] for e in got), ["1", "2"])


class Combined(PorterTestCase):
    def test_default_is_nginx_combined(self):
        p = self.start_porter("log_format mine '$remote_addr - $remote_user [$time_local] '\n"
                              "    '\"$request\" $status $body_bytes_sent '\n"
                              "    '\"$http_referer\" \"$http_user_agent\"';\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    access_log @TMP@/default.log;\n"
                              "    access_log @TMP@/named.log combined;\n"
                              "    access_log @TMP@/mine.log mine;\n}\n", FILES)
        self.assertStatus(p.get("/a.txt", headers=[("Referer", "http://r/"), ("User-Agent", "ua 1")]), 200)
        self.assertStatus(p.get("/missing"), 404)
        p.stop()
        default = read_lines(os.path.join(p.tmp, "default.log"))
        self.assertEqual(len(default), 2, default)
        m = COMBINED.match(default[0])
        self.assertIsNotNone(m, default[0])
        self.assertEqual(m.group("addr"), "127.0.0.1")
        self.assertEqual(m.group("user"), "-")
        self.assertEqual(m.group("request"), "GET /a.txt HTTP/1.1")
        self.assertEqual((m.group("status"), m.group("bytes")), ("200", str(len(FILES["a.txt"]))))
        self.assertEqual((m.group("referer"), m.group("ua")), ("http://r/", "ua 1"))
        m = COMBINED.match(default[1])
        self.assertEqual((m.group("status"), m.group("referer"), m.group("ua")), ("404", "-", "-"))
        # the same text whether named, or written out as nginx defines it
        self.assertEqual(read_lines(os.path.join(p.tmp, "named.log")), default)
        self.assertEqual(read_lines(os.path.join(p.tmp, "mine.log")), default)


# What a hostile client may put in a request porter accepts: quotes and backslashes, a tab,
# bytes that are not UTF-8 (lone continuation and lead bytes, an overlong form, a surrogate),
# and real UTF-8.
HOSTILE = [b'q"uo\\te', b"tab\there", b"\xff\xfe", b"cut \xc3", b"\xc3\x28", b"\xc0\xaf",
           b"\xed\xa0\x80", "é€😀".encode(), b'}"],"x":{"']


class Escaping(PorterTestCase):
    def start(self):
        return self.start_porter(
            "max_request_header_length 64k;\n"
            "log_format j escape=json '{\"ua\":\"$http_user_agent\",\"ref\":\"$http_referer\","
            "\"request\":\"$request\",\"uri\":\"$uri\",\"n\":$status}';\n"
            "log_format d '$http_user_agent|$request|$http_referer';\n"
            "log_format raw escape=none '$http_user_agent|$http_referer';\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    access_log @TMP@/j.log j;\n    access_log @TMP@/d.log d;\n"
            "    access_log @TMP@/raw.log raw;\n}\n", FILES)

    def send(self, p, ua, target=b"/a.txt?q=%22\"\\"):
        with p.connect() as c:
            c.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: " + ua +
                   b"\r\nConnection: close\r\n\r\n")
            return c.read_response()

    def test_json_lines_are_json(self):
        p = self.start()
        for ua in HOSTILE:
            self.assertStatus(self.send(p, ua), 200)
        p.stop()
        with open(os.path.join(p.tmp, "j.log"), "rb") as f:
            raw = f.read()
        raw.decode("utf-8")  # the whole file is UTF-8
        lines = raw.split(b"\n")[:-1]
        self.assertEqual(len(lines), len(HOSTILE))
        for ua, line in zip(HOSTILE, lines):
            e = json.loads(line)
            self.assertEqual(sorted(e), ["n", "ref", "request", "ua", "uri"], line)
            self.assertEqual(e["n"], 200)
            self.assertEqual(e["request"], 'GET /a.txt?q=%22"\\ HTTP/1.1')
            self.assertEqual(e["ref"], "")
            # what is UTF-8 comes back as sent; each byte that is not, as U+FFFD
            self.assertEqual(e["ua"], self.expected(ua), line)

    @staticmethod
    def expected(ua):
        """The value json.loads gives back: valid UTF-8 as it is, every other byte U+FFFD."""
        out, i = [], 0
        while i < len(ua):
            for k in (4, 3, 2, 1):
                try:
                    ch = ua[i:i + k].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if len(ch) == 1:
                    out.append(ch)
                    i += k
                    break
            else:
                out.append("\ufffd")
                i += 1
        return "".join(out)

    def test_default_and_none(self):
        p = self.start()
        self.assertStatus(self.send(p, b'a"b\\c\td\xff'), 200)
        p.stop()
        (d,) = read_bytes_lines(os.path.join(p.tmp, "d.log"))
        # nginx's escapes: ", \, control bytes and bytes above 126 as \xHH; empty as "-"
        self.assertEqual(d, b'a\\x22b\\x5Cc\\x09d\\xFF|GET /a.txt?q=%22\\x22\\x5C HTTP/1.1|-')
        (raw,) = read_bytes_lines(os.path.join(p.tmp, "raw.log"))
        self.assertEqual(raw, b'a"b\\c\td\xff|')

    def test_long_json_line_stays_json(self):
        # a value longer than a line is cut at an escape's boundary: the line still parses
        p = self.start()
        self.assertStatus(self.send(p, b'"\\' * 4000 + b"\xff" * 3000), 200)
        p.stop()
        (line,) = read_bytes_lines(os.path.join(p.tmp, "j.log"))
        e = json.loads(line)
        self.assertEqual(e["n"], 200)
        self.assertTrue(e["ua"].startswith('"\\' * 100))
        self.assertLess(len(line), 16384)


class Scopes(PorterTestCase):
    def test_location_logs_and_several_per_scope(self):
        p = self.start_porter(
            "log_format short '$uri $status';\n"
            "access_log @TMP@/top.log short;\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    access_log @TMP@/server.log short;\n"
            "    access_log @TMP@/server2.log;\n"
            "    location /loc/ { access_log @TMP@/loc.log short; access_log @TMP@/both.log short; }\n"
            "    location /quiet/ { access_log off; }\n"
            "    location /inherits/ { }\n"
            "}\n", FILES)
        for path in ("/a.txt", "/loc/b.txt", "/quiet/x", "/inherits/y"):
            p.get(path)
        p.stop()
        log = lambda name: read_lines(os.path.join(p.tmp, name))  # noqa: E731
        # a server's own lines replace the top level's; a location's replace the server's
        self.assertEqual(log("top.log"), [])
        self.assertEqual(log("server.log"), ["/a.txt 200", "/inherits/y 404"])
        self.assertEqual(len(log("server2.log")), 2)
        self.assertRegex(log("server2.log")[1], COMBINED)
        self.assertEqual(log("loc.log"), ["/loc/b.txt 200"])
        self.assertEqual(log("both.log"), ["/loc/b.txt 200"])

    def test_condition(self):
        p = self.start_porter("log_format short '$uri';\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    access_log @TMP@/cond.log short if=$http_x_log;\n"
                              "    access_log @TMP@/all.log short;\n}\n", FILES)
        for value in ("1", "0", None, "yes", ""):
            headers = [("X-Log", value)] if value is not None else []
            p.get("/a.txt?%s" % value, headers=headers)
        p.stop()
        self.assertEqual(len(read_lines(os.path.join(p.tmp, "all.log"))), 5)
        # empty or "0": not logged
        self.assertEqual(read_lines(os.path.join(p.tmp, "cond.log")), ["/a.txt", "/a.txt"])


class Buffering(PorterTestCase):
    def test_flush_time(self):
        p = self.start_porter("server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    access_log @TMP@/buf.log combined buffer=64k flush=3s;\n}\n",
                              FILES)
        path = os.path.join(p.tmp, "buf.log")
        start = time.monotonic()
        self.assertStatus(p.get("/a.txt"), 200)
        self.assertStatus(p.get("/a.txt"), 200)
        time.sleep(1.5)  # past the default once-a-second flush: these lines wait for theirs
        if time.monotonic() - start < 2.8:
            self.assertEqual(read_lines(path), [], "written before flush=3s")
        lines = wait_lines(path, 2, timeout=6)
        took = time.monotonic() - start
        self.assertEqual(len(lines), 2, lines)
        self.assertGreater(took, 2.5, "written before flush=3s")
        # and a later line starts a new wait: the timer is the buffer's, not the request's
        self.assertStatus(p.get("/a.txt"), 200)
        self.assertEqual(len(wait_lines(path, 3, timeout=6)), 3)

    def test_held_until_reopen_and_stop(self):
        p = self.start_porter("server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    access_log @TMP@/buf.log combined buffer=64k;\n"
                              "    access_log @TMP@/plain.log;\n}\n", FILES)
        path = os.path.join(p.tmp, "buf.log")
        for _ in range(3):
            self.assertStatus(p.get("/a.txt"), 200)
        # the default log is written within a second; the buffered one waits
        self.assertEqual(len(wait_lines(os.path.join(p.tmp, "plain.log"), 3)), 3)
        time.sleep(1.2)
        self.assertEqual(read_lines(path), [])
        os.rename(path, path + ".1")
        p.signal(signal.SIGUSR1)  # rotation: what was buffered goes to the old file
        harness.wait_until(lambda: len(read_lines(path + ".1")) == 3, 5,
                           "the buffered lines written at SIGUSR1")
        self.assertStatus(p.get("/a.txt"), 200)
        self.assertStatus(p.get("/missing"), 404)
        time.sleep(1.2)
        self.assertEqual(read_lines(path), [])
        p.stop()
        lines = read_lines(path)
        self.assertEqual(len(lines), 2, "nothing lost at stop: %r" % lines)
        self.assertIn('"GET /missing HTTP/1.1" 404', lines[1])


class Syslog(PorterTestCase):
    def udp(self, host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind((host, 0))
        s.settimeout(10)
        return s, s.getsockname()[1]

    def messages(self, s, n):
        out = []
        while len(out) < n:
            out.append(s.recv(65536))
        return out

    HEAD = r"^<(?P<pri>\d+)>(?P<time>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) "

    def test_access_log_over_udp(self):
        s, port = self.udp()
        p = self.start_porter(
            "log_format short '$request $status';\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    access_log syslog:server=127.0.0.1:%d,facility=local3,tag=web,severity=notice short;\n"
            "    location /nohost/ {\n"
            "        access_log syslog:server=127.0.0.1:%d,nohostname;\n    }\n}\n"
            % (port, port), FILES)
        self.assertStatus(p.get("/a.txt"), 200)
        (m,) = self.messages(s, 1)
        got = re.match(self.HEAD + r"(?P<host>\S+) (?P<tag>[^:]+): (?P<msg>.*)$", m.decode())
        self.assertIsNotNone(got, m)
        self.assertEqual(int(got.group("pri")), 19 * 8 + 5)  # local3, notice
        self.assertEqual(got.group("host"), socket.gethostname())
        self.assertEqual(got.group("tag"), "web")
        self.assertEqual(got.group("msg"), "GET /a.txt HTTP/1.1 200")
        self.assertStatus(p.get("/nohost/x"), 404)
        (m,) = self.messages(s, 1)
        got = re.match(self.HEAD + r"porter: (?P<msg>.*)$", m.decode())
        self.assertIsNotNone(got, m)
        self.assertEqual(int(got.group("pri")), 23 * 8 + 6)  # the defaults: local7, info
        self.assertRegex(got.group("msg"), COMBINED)
        self.assertFalse(os.path.exists(os.path.join(p.tmp, "syslog:server=127.0.0.1:%d,nohostname" % port)))

    def test_error_log_over_udp(self):
        s, port = self.udp()
        p = self.start_porter(
            "error_log syslog:server=127.0.0.1:%d,facility=daemon,tag=porter_e notice;\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    error_log syslog:server=127.0.0.1:%d info;\n}\n" % (port, port),
            FILES, listen_log=False)
        pid = p.pid
        # the process's log: "listening on", at notice
        (m,) = self.messages(s, 1)
        got = re.match(self.HEAD + r"\S+ porter_e: (?P<msg>.*)$", m.decode())
        self.assertIsNotNone(got, m)
        self.assertEqual(int(got.group("pri")), 3 * 8 + 5)  # daemon, notice
        # as nginx sends it: the error log's own line, its time, level and pid included
        self.assertRegex(got.group("msg"), r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[notice\] %d: "
                                           r"listening on http://127\.0\.0\.1:%d$" % (pid, p.port))
        # the server's own log: a missing file at info
        self.assertStatus(p.get("/missing"), 404)
        (m,) = self.messages(s, 1)
        got = re.match(self.HEAD + r"\S+ porter: (?P<msg>.*)$", m.decode())
        self.assertIsNotNone(got, m)
        self.assertEqual(int(got.group("pri")), 23 * 8 + 6)  # local7, info: the level's
        self.assertRegex(got.group("msg"), r'\[info\] %d: open\(\) ".*/missing" failed' % pid)

    def test_ipv6(self):
        try:
            s, port = self.udp("::1")
        except OSError:
            self.skipTest("no IPv6 loopback")
        p = self.start_porter("server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    access_log syslog:server=[::1]:%d;\n}\n" % port, FILES)
        self.assertStatus(p.get("/a.txt"), 200)
        (m,) = self.messages(s, 1)
        self.assertRegex(m.decode(), self.HEAD + r"\S+ porter: 127\.0\.0\.1 - - .*\"GET /a\.txt HTTP/1\.1\" 200")

    def test_unix_datagram_socket(self):
        d = tempfile.mkdtemp(prefix="porter-syslog-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "log.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(path)
        s.settimeout(10)
        p = self.start_porter("server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    access_log syslog:server=unix:%s,tag=unix;\n}\n" % path, FILES)
        self.assertStatus(p.get("/a.txt"), 200)
        m = s.recv(65536).decode()
        self.assertRegex(m, self.HEAD + r"\S+ unix: 127\.0\.0\.1 - - .*\"GET /a\.txt HTTP/1\.1\" 200")
        # a syslog that goes away and comes back: messages in between are lost, none after
        s.close()
        os.unlink(path)
        self.assertStatus(p.get("/a.txt"), 200)
        s2 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s2.close)
        s2.bind(path)
        s2.settimeout(10)
        self.assertStatus(p.get("/loc/b.txt"), 200)
        self.assertIn('"GET /loc/b.txt HTTP/1.1" 200', s2.recv(65536).decode())


class ErrorLogLines(PorterTestCase):
    LINE = r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?P<level>[a-z]+)\] (?P<pid>\d+): (?P<msg>.*)$"

    def test_stderr(self):
        p = self.start_porter("error_log stderr notice;\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n", FILES)
        self.assertStatus(p.get("/missing"), 404)
        p.stop()
        lines = [l for l in p.output.splitlines() if "listening on" in l]
        self.assertEqual(len(lines), 1, p.output)
        m = re.match(self.LINE, lines[0])
        self.assertIsNotNone(m, lines[0])
        self.assertEqual(m.group("level"), "notice")
        self.assertNotIn("missing", p.output, "an info message at level notice")

    def test_master_messages_in_the_error_log(self):
        p = self.start_porter("worker_processes 2;\nerror_log @TMP@/error.log notice;\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n",
                              FILES, log_file="@TMP@/error.log")
        log = os.path.join(p.tmp, "error.log")
        workers = harness.wait_workers(p, 2)
        os.kill(workers[0], signal.SIGKILL)
        harness.wait_until(lambda: "starting another" in open(log).read(), 10,
                           "the worker's death in the error log")
        with open(p.conf_path, "a") as f:
            f.write("# touched\n")
        p.signal(signal.SIGHUP)
        harness.wait_until(lambda: "configuration reloaded" in open(log).read(), 10,
                           "the reload in the error log")
        with open(p.conf_path, "a") as f:
            f.write("server { listen 127.0.0.1:0; bogus_directive 1; }\n")
        p.signal(signal.SIGHUP)
        harness.wait_until(lambda: "reload failed" in open(log).read(), 10,
                           "the failed reload in the error log")
        text = open(log).read()
        got = {}
        for line in text.splitlines():
            m = re.match(self.LINE, line)
            self.assertIsNotNone(m, line)
            got[m.group("msg")] = (m.group("level"), int(m.group("pid")))
        died = [k for k in got if k.startswith("worker %d killed by signal 9" % workers[0])]
        self.assertEqual(len(died), 1, text)
        self.assertEqual(got[died[0]], ("error", p.pid))
        self.assertEqual(got["configuration reloaded: 2 workers"], ("notice", p.pid))
        failed = [k for k in got if k.startswith("reload failed")]
        self.assertEqual(len(failed), 1, text)
        self.assertRegex(failed[0], r'porter\.conf:\d+:\d+: unknown directive "bogus_directive"')
        self.assertEqual(got[failed[0]][0], "error")
        # stderr is not a terminal, and the log is a file: none of it went there
        self.assertNotIn("configuration reloaded", p.output)
        self.assertNotIn("starting another", p.output)


class ConfErrors(PorterTestCase):
    CASES = [
        ("server {\n    access_log logs/a.log nosuch;\n}\n", 2, 27, 'unknown log format "nosuch"'),
        ("log_format f '$remote_addr'\n    ' $nosuch_var';\nserver { }\n", 2, 5,
         'unknown variable "$nosuch_var" in "log_format"'),
        ("log_format f escape=xml '$status';\nserver { }\n", 1, 14,
         'unknown log format escaping "xml"'),
        ("log_format combined '$status';\nserver { }\n", 1, 12,
         'duplicate "log_format" name "combined"'),
        ("server {\n  access_log syslog:server=127.0.0.1,colour=red;\n}\n", 2, 14,
         'unknown syslog parameter "colour=red"'),
        ("server {\n  access_log syslog:server=127.0.0.1,facility=local9;\n}\n", 2, 14,
         'unknown syslog facility "local9"'),
        ("server {\n  access_log syslog:tag=x;\n}\n", 2, 14, "no syslog server specified"),
        ("error_log syslog:server=127.0.0.1:99999;\nserver { }\n", 1, 11,
         'invalid syslog server "127.0.0.1:99999"'),
        ("server {\n  access_log logs/a.log combined buffer=lots;\n}\n", 2, 34,
         'invalid buffer size "lots"'),
        ("server {\n  access_log logs/a.log combined flush=5s;\n}\n", 2, 14,
         'no buffer is defined for access_log "logs/a.log"'),
        ("server {\n  access_log syslog:server=127.0.0.1 combined buffer=4k;\n}\n", 2, 14,
         "logs to syslog cannot be buffered"),
        ("server {\n  access_log logs/a.log combined if=$nope;\n}\n", 2, 34,
         'unknown variable "$nope" in "if=" of "access_log"'),
        ("server {\n  access_log a.log combined buffer=4k;\n"
         "  location / { access_log a.log combined buffer=8k; }\n}\n", 3, 27,
         "already defined with conflicting parameters"),
    ]

    def test_reported_with_their_place(self):
        d = tempfile.mkdtemp(prefix="porter-logconf-")
        self.addCleanup(shutil.rmtree, d, True)
        os.makedirs(os.path.join(d, "htdocs"))
        os.makedirs(os.path.join(d, "logs"))
        for text, line, col, what in self.CASES:
            with self.subTest(what=what):
                path = os.path.join(d, "porter.conf")
                with open(path, "w") as f:
                    f.write(text)
                code, _, err = harness.run_porter(["-t", "-p", d, "-c", path])
                self.assertEqual(code, 1, err)
                self.assertRegex(err, r"%s:%d:%d: .*%s" % (re.escape(path), line, col,
                                                             re.escape(what)))

    def test_good_ones_pass(self):
        d = tempfile.mkdtemp(prefix="porter-logconf-")
        self.addCleanup(shutil.rmtree, d, True)
        os.makedirs(os.path.join(d, "htdocs"))
        path = os.path.join(d, "porter.conf")
        with open(path, "w") as f:
            f.write(ALL_FORMAT + "error_log syslog:server=[::1]:5140,facility=local0 warn;\n"
                    "server {\n    access_log syslog:server=unix:/nonexistent/log,tag=a_1;\n"
                    "    access_log stderr all buffer=8k flush=1m if=$http_x;\n"
                    "    location / { access_log off; }\n}\n")
        code, _, err = harness.run_porter(["-t", "-p", d, "-c", path])
        self.assertEqual(code, 0, err)


if __name__ == "__main__":
    harness.main()
