"""limit_rate and limit_rate_after: how fast a response goes, measured by the client.

A file of rate x 2 + limit_rate_after bytes arrives in 2 s (within 10 %), with sendfile and
without, over TCP and TLS; the first limit_rate_after bytes arrive at once; a location without
a limit (or with `limit_rate 0` under a server that has one) goes at full speed, and a location
inherits its server's; the limit is the request's: the next response on a keep-alive
connection (pipelined or not) goes at its own speed, and over HTTP/2 two streams of one
connection each go at the rate while a third without a limit is not held back. A pause for the
rate longer than response_send_timeout does not end the response. Through the proxy the
upstream's X-Accel-Limit-Rate sets the rate (0: none) and is not passed on, and $limit_rate
reads the location's. Bad values are refused by `porter -t` with FILE:LINE:COL.

Everything on 127.0.0.1; each download takes at most a few seconds.
"""

import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request, run_porter  # noqa: E402
import test_h2_frames as frames  # noqa: E402
import test_proxy  # noqa: E402
import test_tls  # noqa: E402

RATE = 256 * 1024
AFTER = 64 * 1024
TWO_SECONDS = os.urandom(2 * RATE + AFTER)  # 2 s at RATE once AFTER is out
HALF_SECOND = os.urandom(RATE // 2 + AFTER)
BIG = os.urandom(2 * 1024 * 1024)
FREE = BIG[:512 * 1024]
FILES = {"two.bin": TWO_SECONDS, "half.bin": HALF_SECOND, "big.bin": BIG, "free.bin": FREE}

# The bounds of a download of 2 s at the rate: 10 % either side.
LOW, HIGH = 1.8, 2.2


def conf(listen="listen 127.0.0.1:0;", top="", server_extra=""):
    """One server: `/` without a limit, locations at RATE after AFTER (with sendfile and
    without), a slow one after a large AFTER, and a second server whose own limit its locations
    inherit (`/off/` turns it off)."""
    return ("error_log stderr info;\n"
            "%s\n"
            "server {\n"
            "    %s\n"
            "    root htdocs;\n"
            "%s\n"
            "    location /rated/ { alias htdocs/; limit_rate 256k; limit_rate_after 64k; }\n"
            "    location /copied/ {\n"
            "        alias htdocs/; limit_rate 256k; limit_rate_after 64k; sendfile off;\n"
            "    }\n"
            "    location /after/ { alias htdocs/; limit_rate 128k; limit_rate_after 1m; }\n"
            "}\n"
            "server {\n"
            "    listen 127.0.0.1:0;\n"
            "    root htdocs;\n"
            "    limit_rate 512k;\n"
            "    location /inherits/ { alias htdocs/; }\n"
            "    location /off/ { alias htdocs/; limit_rate 0; }\n"
            "}\n" % (top, listen, server_extra))


def timed_get(c, path, marks=(), close=True, send=True):
    """GETs `path` on the harness Conn `c` (already sent when not `send`). Returns (status,
    headers as a dict of lower-case names, body, [seconds until each of `marks` body bytes had
    come, then until the last]), timed from the request."""
    if send:
        c.send(request("GET", path, close=close))
    t0 = time.monotonic()
    head = c.read_head(timeout=20).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    n = int(headers["content-length"])
    body, at = b"", []
    for m in sorted(marks) + [n]:
        body += c.read_exact(m - len(body), timeout=20)
        at.append(time.monotonic() - t0)
    return status, headers, body, at


class RateCase(PorterTestCase):
    def assertAtRate(self, seconds, what):
        self.assertGreaterEqual(seconds, LOW, "%s came in %.2f s: faster than the rate" %
                                (what, seconds))
        self.assertLessEqual(seconds, HIGH, "%s came in %.2f s: slower than the rate" %
                             (what, seconds))


class Files(RateCase):
    def setUp(self):
        self.p = self.start_porter(conf(), FILES)

    def download(self, path, marks=(), port=None):
        with harness.connect("127.0.0.1", port or self.p.port, timeout=20) as c:
            status, headers, body, at = timed_get(c, path, marks)
        self.assertEqual(status, 200)
        return headers, body, at

    def test_download_goes_at_the_rate(self):
        _, body, at = self.download("/rated/two.bin")
        self.assertEqual(body, TWO_SECONDS)
        self.assertAtRate(at[-1], "2 s at 256k after 64k (sendfile)")

    def test_download_goes_at_the_rate_without_sendfile(self):
        _, body, at = self.download("/copied/two.bin")
        self.assertEqual(body, TWO_SECONDS)
        self.assertAtRate(at[-1], "2 s at 256k after 64k (read and written)")

    def test_limit_rate_after_goes_at_once(self):
        # 1m first, then 128k/s: the first megabyte (less the head) at once, the rest in 1 s
        body = BIG[:1024 * 1024 + 128 * 1024]
        with open(os.path.join(self.p.htdocs, "after.bin"), "wb") as f:
            f.write(body)
        _, got, at = self.download("/after/after.bin", marks=(1000 * 1024,))
        self.assertEqual(got, body)
        self.assertLess(at[0], 0.5, "the first 1000k came in %.2f s, not at once" % at[0])
        # (the rest went at the rate from when the first megabyte was written, not read)
        self.assertGreater(at[1], 0.85, "the 128k past limit_rate_after went faster than 128k/s"
                           " (all in %.2f s)" % at[1])
        self.assertLess(at[1], 2.0)

    def test_a_location_without_a_limit_goes_at_full_speed(self):
        _, body, at = self.download("/big.bin")
        self.assertEqual(body, BIG)
        self.assertLess(at[-1], 1.0, "2m without a limit took %.2f s" % at[-1])

    def test_a_location_inherits_its_servers_limit(self):
        # 512k/s from the server block: 576k take about 1.1 s; turned off, no time at all
        port = self.p.ports(2)[1]
        _, body, at = self.download("/inherits/two.bin", port=port)
        self.assertEqual(body, TWO_SECONDS)
        self.assertGreater(at[-1], 0.8, "the server's 512k/s not inherited: %.2f s" % at[-1])
        self.assertLess(at[-1], 1.5, "the server's 512k/s not inherited: %.2f s" % at[-1])
        _, body, at = self.download("/off/big.bin", port=port)
        self.assertEqual(body, BIG)
        self.assertLess(at[-1], 1.0, "limit_rate 0 did not turn the server's off: %.2f s"
                        % at[-1])

    def test_the_limit_ends_with_its_response(self):
        # keep-alive: a limited response, then one without a limit at full speed
        with harness.connect("127.0.0.1", self.p.port, timeout=20) as c:
            _, _, body, at = timed_get(c, "/rated/half.bin", close=False)
            self.assertEqual(body, HALF_SECOND)
            self.assertGreater(at[-1], 0.3, "128k past 64k at 256k/s in %.2f s" % at[-1])
            _, _, body, at = timed_get(c, "/big.bin", close=False)
            self.assertEqual(body, BIG)
            self.assertLess(at[-1], 1.0, "the next response held to the rate: %.2f s" % at[-1])
            # pipelined: the second waits for the first, then goes at its own speed
            c.send(request("GET", "/rated/half.bin") + request("GET", "/big.bin", close=True))
            _, _, body, first = timed_get(c, None, send=False)
            self.assertEqual(body, HALF_SECOND)
            t = time.monotonic()
            _, _, body, _ = timed_get(c, None, send=False)
            second = time.monotonic() - t
            self.assertEqual(body, BIG)
            self.assertGreater(first[-1], 0.3, "128k past 64k at 256k/s in %.2f s" % first[-1])
            self.assertLess(second, 1.0, "the pipelined response held to the rate: %.2f s"
                            % second)


class SendTimeout(RateCase):
    def test_a_pause_for_the_rate_is_not_a_stalled_write(self):
        # 1k/s writes 1 KiB, then waits 1 s: more than response_send_timeout each time
        p = self.start_porter("response_send_timeout 300ms;\nlimit_rate 1k;\n",
                              {"three.bin": TWO_SECONDS[:3000]})
        with p.connect(timeout=20) as c:
            status, _, body, at = timed_get(c, "/three.bin")
        self.assertEqual(status, 200)
        self.assertEqual(body, TWO_SECONDS[:3000])
        self.assertGreater(at[-1], 1.5, "3000 bytes at 1k/s in %.2f s" % at[-1])


class TLS(RateCase):
    def test_download_over_tls_goes_at_the_rate(self):
        listen = ("listen 127.0.0.1:0 ssl;\n    ssl_certificate tls/a-ec.crt;\n"
                  "    ssl_certificate_key tls/a-ec.key;")
        p = self.start_porter(conf(listen=listen), FILES, extra=test_tls.tls_extra())
        c = test_tls.tls_connect(p.port, timeout=20)
        try:
            status, _, body, at = timed_get(c, "/rated/two.bin")
            self.assertEqual(status, 200)
            self.assertEqual(body, TWO_SECONDS)
            self.assertAtRate(at[-1], "2 s at 256k after 64k over TLS")
            # the same without sendfile (what TLS does anyway, unless the kernel encrypts)
            c2 = test_tls.tls_connect(p.port, timeout=20)
            try:
                status, _, body, at = timed_get(c2, "/copied/two.bin")
            finally:
                c2.close()
            self.assertEqual(body, TWO_SECONDS)
            self.assertAtRate(at[-1], "2 s at 256k after 64k over TLS, sendfile off")
        finally:
            c.close()


class HTTP2(RateCase):
    def setUp(self):
        if frames.h2 is None:
            self.skipTest("needs python3-h2")
        self.p = self.start_porter(conf(listen="listen 127.0.0.1:0 http2;"), FILES)

    def test_each_stream_goes_at_the_rate(self):
        # two limited streams and one without a limit, at once on one connection (512k: at
        # the rate it would take 1.75 s)
        paths = ["/rated/two.bin", "/copied/two.bin", "/free.bin"]
        want = [TWO_SECONDS, TWO_SECONDS, FREE]
        sock = socket.create_connection(("127.0.0.1", self.p.port), 20)
        conn = frames.h2_connection()
        conn.initiate_connection()
        # windows wide enough for every body: the client's pace is not what is measured
        conn.update_settings({frames.h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        conn.increment_flow_control_window(4 << 20)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sids = []
        for path in paths:
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, frames.request_headers(path), end_stream=True)
            sids.append(sid)
        t0 = time.monotonic()
        sock.sendall(conn.data_to_send())
        bodies = {sid: b"" for sid in sids}
        ended, status = {}, {}
        try:
            while len(ended) < len(sids):
                self.assertLess(time.monotonic() - t0, 15, "streams unfinished: %r" % ended)
                data = sock.recv(1 << 20)
                self.assertTrue(data, "closed before the answers")
                for ev in conn.receive_data(data):
                    if isinstance(ev, frames.h2.events.ResponseReceived):
                        status[ev.stream_id] = dict(ev.headers)[":status"]
                    elif isinstance(ev, frames.h2.events.DataReceived):
                        bodies[ev.stream_id] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, frames.h2.events.StreamEnded):
                        ended[ev.stream_id] = time.monotonic() - t0
                    elif isinstance(ev, (frames.h2.events.StreamReset,
                                         frames.h2.events.ConnectionTerminated)):
                        self.fail("unexpected %r" % ev)
                sock.sendall(conn.data_to_send())
        finally:
            sock.close()
        for sid, body in zip(sids, want):
            self.assertEqual(status[sid], "200")
            self.assertEqual(bodies[sid], body)
        # each limited stream at the rate: together they went at twice it
        self.assertAtRate(ended[sids[0]], "stream 1 (sendfile on)")
        self.assertAtRate(ended[sids[1]], "stream 3 (sendfile off)")
        self.assertLess(ended[sids[2]], 1.0, "the stream without a limit was held back")


class Proxy(RateCase):
    """The upstream's X-Accel-Limit-Rate: GET /r/VALUE answers 2 x 128k bytes with that
    header value; anything else without one."""

    BODY = os.urandom(2 * 128 * 1024)

    def setUp(self):
        self.heads = []

        def answer(s, backend):
            head = test_proxy.read_request_head(s)
            self.heads.append(head)
            m = re.match(rb"GET /r/(\S*) ", head)
            extra = b"X-Accel-Limit-Rate: %s\r\n" % m.group(1) if m else b""
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n"
                      % (len(self.BODY), extra) + self.BODY)

        self.backend = test_proxy.RawBackend(answer)
        self.addCleanup(self.backend.stop)
        self.p = self.start_porter(
            "location / {\n"
            "    proxy_pass http://%s;\n"
            "    limit_rate 64k;\n"
            "    proxy_set_header X-Limit-Rate $limit_rate;\n"
            "}\n"
            "location /pass/ {\n"
            "    proxy_pass http://%s/;\n"
            "    proxy_pass_header X-Accel-Limit-Rate;\n"
            "}\n" % (self.backend.address, self.backend.address))

    def get(self, path):
        with self.p.connect(timeout=20) as c:
            status, headers, body, at = timed_get(c, path)
        self.assertEqual(status, 200)
        self.assertEqual(body, self.BODY)
        return headers, at[-1]

    def test_the_upstreams_rate_replaces_the_locations(self):
        headers, seconds = self.get("/r/131072")
        self.assertNotIn("x-accel-limit-rate", headers)
        # 256k at 128k/s: 2 s (the location's 64k/s would be 4 s)
        self.assertAtRate(seconds, "256k at the upstream's 128k/s")
        # what the upstream was told: the location's rate, $limit_rate
        self.assertIn(b"\r\nX-Limit-Rate: 65536\r\n", self.heads[-1])

    def test_the_upstreams_zero_turns_the_limit_off(self):
        headers, seconds = self.get("/r/0")
        self.assertNotIn("x-accel-limit-rate", headers)
        self.assertLess(seconds, 1.0, "X-Accel-Limit-Rate: 0 left a limit: %.2f s" % seconds)

    def test_proxy_pass_header_passes_it_on(self):
        headers, seconds = self.get("/pass/r/0")
        self.assertEqual(headers.get("x-accel-limit-rate"), "0")
        self.assertLess(seconds, 1.0)

    def test_an_invalid_value_is_ignored(self):
        # nginx reads digits only: "128k" is no rate, and the location's 64k/s stays
        headers, seconds = self.get("/r/128k")
        self.assertNotIn("x-accel-limit-rate", headers)
        self.assertGreater(seconds, 3.0, "256k at the location's 64k/s took %.2f s" % seconds)


class Conf(unittest.TestCase):
    """`porter -t`: what limit_rate and limit_rate_after accept, and where."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="porter-itest-rate-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.makedirs(os.path.join(self.dir, "htdocs"))

    def check(self, text):
        path = os.path.join(self.dir, "porter.conf")
        with open(path, "w") as f:
            f.write(text)
        code, out, err = run_porter(["-t", "-c", path, "-p", self.dir], cwd=self.dir)
        harness.assert_clean_output(out + err)
        return code, path, err

    def assertRefused(self, text, line, col, words):
        code, path, err = self.check(text)
        self.assertEqual(code, 1, "a bad conf passed -t:\n%s\n%s" % (text, err))
        self.assertIn("%s:%d:%d: " % (path, line, col), err)
        for w in words:
            self.assertIn(w, err)

    def test_valid_values_at_every_level(self):
        code, _, err = self.check(
            "http {\n    limit_rate 1m;\n    limit_rate_after 0;\n"
            "    server {\n        listen 127.0.0.1:0;\n        limit_rate 0;\n"
            "        limit_rate_after 512k;\n"
            "        location / { limit_rate 100k; limit_rate_after 1g; }\n    }\n}\n")
        self.assertEqual(code, 0, err)

    def test_bad_values_are_refused(self):
        server = "server {\n    listen 127.0.0.1:0;\n    %s\n}\n"
        for value in ("fast", "-1", "1x", "10kb", "", "1.5m"):
            self.assertRefused(server % ("limit_rate \"%s\";" % value), 3, 16,
                               ["limit_rate", "must be a size"])
        self.assertRefused(server % "limit_rate_after 12q;", 3, 22,
                           ["12q", "limit_rate_after", "must be a size"])
        self.assertRefused(server % "limit_rate 99999999999999999999;", 3, 16,
                           ["out of range"])
        self.assertRefused(server % "limit_rate_after 99999999999g;", 3, 22, ["out of range"])

    def test_wrong_places_and_forms_are_refused(self):
        self.assertRefused("server {\n    listen 127.0.0.1:0;\n    limit_rate;\n}\n", 3, 5,
                           ["invalid number of arguments"])
        self.assertRefused("server {\n    listen 127.0.0.1:0;\n    limit_rate 1k 2k;\n}\n", 3, 5,
                           ["invalid number of arguments"])
        self.assertRefused("server {\n    listen 127.0.0.1:0;\n    limit_rate 1k;\n"
                           "    limit_rate 2k;\n}\n", 4, 5, ["duplicate"])
        self.assertRefused("events {\n    limit_rate 1k;\n}\n"
                           "server {\n    listen 127.0.0.1:0;\n}\n", 2, 5, ["not allowed here"])


if __name__ == "__main__":
    harness.main()
