"""limit_req and limit_conn over shared zones (docs/access.md): the rate a key is held to,
measured; burst, nodelay and delay=; limit_req_status and the log levels; dry runs; a bucket
per client address and per API key; a request counted once across internal redirects; the
least recently used keys evicted from a full zone; concurrent slow downloads per client
(HTTP/1.1 connections and HTTP/2 streams) and a slot given back when a download ends; the same
limits across two workers; zones kept across reloads; the zones on the status page; and the
conf errors at -t."""

import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request, run_porter  # noqa: E402
import test_h2_frames as frames  # noqa: E402

BIG = os.urandom(8 * 1024 * 1024)
FILES = {"a.txt": b"alpha\n", "big.bin": BIG, "err.html": b"<p>slow down</p>\n"}


def conf(top, location, workers=1, server_extra="", listen="listen 127.0.0.1:0;"):
    return ("worker_processes %d;\nerror_log stderr info;\n%s\n"
            "server {\n    %s\n    root htdocs;\n"
            "    location /porter-status { status; }\n%s\n"
            "    location / {\n%s\n    }\n}\n" % (workers, top, listen, server_extra, location))


def statuses(p, n, path="/a.txt", headers=None):
    """`n` requests one after the other on one keep-alive connection: their statuses."""
    got = []
    with p.connect() as c:
        for _ in range(n):
            c.send(request("GET", path, headers=headers))
            got.append(c.read_response().status)
    return got


def logged(p, pattern):
    """Waits for porter's output to hold `pattern` (a regular expression): its error log lines
    are written as it answers, and read here a moment later."""
    harness.wait_until(lambda: re.search(pattern, p.output), 10,
                       lambda: "no line matching %r in:\n%s" % (pattern, p.output[-3000:]))


def zone_stats(p, name):
    doc = harness.get_status(p)
    for z in doc["zones"]:
        if z["name"] == name:
            return z
    raise AssertionError("no zone %r on the status page: %r" % (name, doc.get("zones")))


def answer_times(p, n, path="/a.txt"):
    """`n` requests sent at once on `n` connections; for each, (seconds from the send to its
    answer, status), in the order the answers came."""
    conns = [p.connect(timeout=15) for _ in range(n)]
    results = [None] * n
    try:
        start = time.monotonic()
        for c in conns:
            c.send(request("GET", path, close=True))

        def read(i):
            r = conns[i].read_response()
            results[i] = (time.monotonic() - start, r.status)

        threads = [threading.Thread(target=read, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    finally:
        for c in conns:
            c.close()
    if None in results:
        raise AssertionError("not every request was answered: %r" % results)
    return sorted(results)


class Rate(PorterTestCase):
    RATE = 20  # requests a second

    def accepted_over(self, p, seconds, conns=1, per_conn=None):
        """Requests as fast as porter answers them for `seconds`, on `conns` keep-alive
        connections; returns (accepted, refused)."""
        counts = [0, 0]
        lock = threading.Lock()
        stop = time.monotonic() + seconds
        errors = []

        def run():
            c = None
            try:
                while time.monotonic() < stop:
                    if c is None:
                        c = p.connect()
                    c.send(request("GET", "/a.txt"))
                    r = c.read_response()
                    with lock:
                        counts[0 if r.status == 200 else 1] += 1
                    if r.status not in (200, 503):
                        errors.append(r.status)
                    if r.has_token("Connection", "close"):  # keepalive_requests
                        c.close()
                        c = None
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                if c:
                    c.close()

        threads = [threading.Thread(target=run) for _ in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 20)
        self.assertEqual(errors, [])
        return counts

    def test_rate_over_three_seconds(self):
        p = self.start_porter(conf("limit_req_zone $binary_remote_addr zone=z:1m rate=%dr/s;"
                                   % self.RATE, "limit_req zone=z nodelay;"), FILES)
        # several clients, so that a request arrives soon after each one the rate lets in
        accepted, refused = self.accepted_over(p, 3.0, conns=4)
        # the first at once, then one each 1/RATE s: RATE * 3 + 1, within 10%
        expected = self.RATE * 3
        self.assertGreater(refused, accepted, "the client did not outrun the rate")
        self.assertLessEqual(abs(accepted - expected), expected * 0.1,
                             "%d accepted in 3 s at %d r/s" % (accepted, self.RATE))

    def test_rate_per_minute(self):
        # 60r/m is nginx's 1000 milli-requests a second as well: one a second
        p = self.start_porter(conf("limit_req_zone $binary_remote_addr zone=z:1m rate=60r/m;",
                                   "limit_req zone=z nodelay;"), FILES)
        accepted, refused = self.accepted_over(p, 2.5)
        self.assertIn(accepted, (3, 4))

    def test_two_workers_share_the_rate(self):
        p = self.start_porter(conf("limit_req_zone $binary_remote_addr zone=z:1m rate=%dr/s;"
                                   % self.RATE, "limit_req zone=z nodelay;", workers=2), FILES)
        harness.wait_workers(p, 2)
        accepted, refused = self.accepted_over(p, 3.0, conns=8)
        expected = self.RATE * 3
        self.assertLessEqual(abs(accepted - expected), expected * 0.1,
                             "%d accepted in 3 s at %d r/s by two workers" % (accepted, self.RATE))
        # both workers answered (their numbers reach the board within a second) and either
        # one's page shows the zone's totals
        time.sleep(1.2)  # the workers publish their numbers once a second
        doc = harness.get_status(p)
        self.assertEqual(len(doc["workers"]), 2)
        self.assertTrue(all(w["requests"] > 0 for w in doc["workers"]), doc["workers"])
        z = [z for z in doc["zones"] if z["name"] == "z"][0]
        self.assertEqual(z["rejected"], refused)
        self.assertEqual(z["requests"], accepted + refused)


class Burst(PorterTestCase):
    def start(self, location, top="", extra=""):
        return self.start_porter(conf("limit_req_zone $binary_remote_addr zone=z:1m rate=%s;\n%s"
                                      % (extra or "1r/m", top), location), FILES)

    def test_burst_then_refused(self):
        # at 1r/m nothing leaks while the test runs: 1 + burst pass, the rest are refused
        p = self.start("limit_req zone=z burst=5 nodelay;")
        self.assertEqual(statuses(p, 9), [200] * 6 + [503] * 3)
        z = zone_stats(p, "z")
        self.assertEqual((z["kind"], z["requests"], z["rejected"], z["delayed"]),
                         ("limit_req", 9, 3, 0))
        logged(p, re.escape('limiting requests, excess: 6.000 by zone "z"'))

    def test_nodelay_answers_the_burst_at_once(self):
        p = self.start("limit_req zone=z burst=3 nodelay;", extra="2r/s")
        got = answer_times(p, 5)
        self.assertEqual(sorted(s for _, s in got), [200, 200, 200, 200, 503], got)
        self.assertLess(max(t for t, _ in got), 0.4, got)

    def test_delay_spaces_the_burst(self):
        # 2r/s: the k-th of a burst waits until its excess has leaked, (k - 1) / 2 s
        p = self.start("limit_req zone=z burst=3;", extra="2r/s")
        got = answer_times(p, 5)
        ok = [t for t, s in got if s == 200]
        self.assertEqual(len(ok), 4, got)
        self.assertEqual([s for _, s in got].count(503), 1, got)
        for k, t in enumerate(ok):
            # not before its time (less libev's stale clock), not later than 1 s of margin
            self.assertGreaterEqual(t, k * 0.5 - 0.15, got)
            self.assertLess(t, k * 0.5 + 1.0, got)
        # the second request's excess: 1, less what leaked in the milliseconds between the two
        # (a loaded machine spaces them by a few)
        logged(p, r'delaying request, excess: (1\.000|0\.9[5-9]\d), by zone "z"')
        # delays are logged one level below refusals (error): warn
        logged(p, r"\[warn\] \d+: delaying request")
        self.assertEqual(zone_stats(p, "z")["delayed"], 3)

    def test_delay_after_some_at_once(self):
        # delay=2: the first three (excess up to 2) at once, then spaced out from the fourth
        p = self.start("limit_req zone=z burst=4 delay=2;", extra="2r/s")
        got = answer_times(p, 6)
        self.assertEqual([s for _, s in got].count(503), 1, got)
        ok = [t for t, s in got if s == 200]
        for t in ok[:3]:
            self.assertLess(t, 0.4, got)
        for k, t in enumerate(ok[3:], 1):
            self.assertGreaterEqual(t, k * 0.5 - 0.15, got)
            self.assertLess(t, k * 0.5 + 1.0, got)

    def test_status_and_log_level(self):
        p = self.start("limit_req zone=z;\n        limit_req_status 429;\n"
                       "        limit_req_log_level notice;")
        self.assertEqual(statuses(p, 2), [200, 429])
        logged(p, r'\[notice\] \d+: limiting requests, excess: 1\.000 by zone "z"')

    def test_dry_run(self):
        p = self.start("limit_req zone=z;\n        limit_req_dry_run on;")
        self.assertEqual(statuses(p, 5), [200] * 5)
        logged(p, re.escape('limiting requests, dry run, excess: 1.000 by zone "z"'))
        z = zone_stats(p, "z")
        self.assertEqual((z["rejected"], z["rejected_dry_run"]), (0, 4))

    def test_a_refused_request_counts_in_no_zone(self):
        # `wide` (by X-Key, burst 2) is checked first, then z (by address, no burst) refuses:
        # the refused requests leave the key's bucket in `wide` as the first one left it
        p = self.start_porter(conf("limit_req_zone $binary_remote_addr zone=z:1m rate=1r/m;\n"
                                   "limit_req_zone $http_x_key zone=wide:1m rate=1r/m;",
                                   "limit_req zone=wide burst=2 nodelay;\n"
                                   "        limit_req zone=z;",
                                   server_extra="    location /w/ { limit_req zone=wide burst=2 "
                                   "nodelay; alias htdocs/; }"), FILES)
        key = [("X-Key", "k")]
        self.assertEqual(statuses(p, 4, headers=key), [200, 503, 503, 503])
        # `wide` alone: the key's bucket holds the first request only, two more fit its burst
        self.assertEqual(statuses(p, 3, "/w/a.txt", headers=key), [200, 200, 503])
        z = zone_stats(p, "wide")
        self.assertEqual((z["requests"], z["rejected"]), (7, 1))


class Keys(PorterTestCase):
    def test_second_client_address_has_its_own_bucket(self):
        p = self.start_porter(conf("limit_req_zone $binary_remote_addr zone=z:1m rate=1r/m;",
                                   "limit_req zone=z;"), FILES)
        self.assertEqual(statuses(p, 2), [200, 503])
        with harness.connect_from(p.host, p.port, "127.0.0.2") as c:
            for want in (200, 503):
                c.send(request("GET", "/a.txt"))
                self.assertStatus(c.read_response(), want)
        self.assertEqual(statuses(p, 1), [503])

    def test_api_key(self):
        p = self.start_porter(conf("limit_req_zone $http_x_api_key zone=keys:1m rate=1r/m;",
                                   "limit_req zone=keys burst=1 nodelay;"), FILES)
        self.assertEqual(statuses(p, 3, headers=[("X-Api-Key", "alpha")]), [200, 200, 503])
        self.assertEqual(statuses(p, 3, headers=[("X-Api-Key", "beta")]), [200, 200, 503])
        # keys longer than an entry holds are keys of their own too
        long_a, long_b = "k" * 300 + "a", "k" * 300 + "b"
        self.assertEqual(statuses(p, 3, headers=[("X-Api-Key", long_a)]), [200, 200, 503])
        self.assertEqual(statuses(p, 1, headers=[("X-Api-Key", long_b)]), [200])
        # no key: not counted
        self.assertEqual(statuses(p, 6), [200] * 6)
        self.assertEqual(zone_stats(p, "keys")["requests"], 10)

    def test_key_of_text_and_variables(self):
        p = self.start_porter(conf("limit_req_zone \"$server_name:$http_x_user\" zone=z:1m "
                                   "rate=1r/m;", "limit_req zone=z;",
                                   server_extra="    server_name example.test;"), FILES)
        self.assertEqual(statuses(p, 2, headers=[("X-User", "u1")]), [200, 503])
        self.assertEqual(statuses(p, 1, headers=[("X-User", "u2")]), [200])
        # without the header the key is still "example.test:": counted
        self.assertEqual(statuses(p, 2), [200, 503])

    def test_counted_once_across_internal_redirects(self):
        top = "limit_req_zone $binary_remote_addr zone=z:1m rate=1r/m;"
        loc = ("limit_req zone=z burst=1 nodelay;\n        try_files $uri /fallback/a.txt;\n"
               "        error_page 503 /errors/err.html;")
        extra = ("    location /fallback/ { limit_req zone=z burst=1 nodelay; alias htdocs/; }\n"
                 "    location /errors/ { limit_req zone=z nodelay; alias htdocs/; }")
        p = self.start_porter(conf(top, loc, server_extra=extra), FILES)
        # /missing -> /fallback/a.txt: the second location does not count it again
        r1, r2 = p.get("/missing"), p.get("/missing")
        self.assertEqual((r1.status, r1.body, r2.status), (200, FILES["a.txt"], 200))
        # refused: the error page's location (its own limit_req) answers with the page
        r3 = p.get("/a.txt")
        self.assertEqual((r3.status, r3.body), (503, FILES["err.html"]))
        self.assertEqual(zone_stats(p, "z")["requests"], 3)

    def test_least_recently_used_keys_are_evicted(self):
        # a 32k zone holds a few hundred keys; the oldest goes when a new one finds no room
        p = self.start_porter(conf("limit_req_zone $http_x_api_key zone=small:32k rate=1r/m;",
                                   "limit_req zone=small nodelay;"), FILES)
        self.assertEqual(statuses(p, 2, headers=[("X-Api-Key", "victim")]), [200, 503])
        cap = zone_stats(p, "small")["capacity"]
        self.assertGreater(cap, 300)
        with p.connect() as c:
            for i in range(cap):
                c.send(request("GET", "/a.txt", headers=[("X-Api-Key", "k%d" % i)]))
                self.assertStatus(c.read_response(), 200)
        z = zone_stats(p, "small")
        self.assertEqual((z["entries"], z["evicted"], z["rejected"]), (cap, 1, 1))
        # the victim was the oldest: evicted, its bucket starts again
        self.assertEqual(statuses(p, 1, headers=[("X-Api-Key", "victim")]), [200])
        # the most recent keys are still held
        self.assertEqual(statuses(p, 1, headers=[("X-Api-Key", "k%d" % (cap - 1))]), [503])


class SlowClient:
    """A client that asks for the big file and does not read it: its download stays in flight
    (a small receive buffer, porter holding the rest)."""

    def __init__(self, p, path="/big.bin", source=None):
        self.c = harness.Conn.__new__(harness.Conn)
        self.c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.c.sock.settimeout(harness.IO_TIMEOUT)
        self.c.timeout = harness.IO_TIMEOUT
        self.c.buf = bytearray()
        self.c.eof = False
        try:
            # a small window from the start: the file stays in porter, the download in flight
            self.c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            if source:
                self.c.sock.bind((source, 0))
            self.c.sock.connect((p.host, p.port))
        except BaseException:
            self.c.sock.close()
            raise
        self.c.send(request("GET", path))
        self.head = self.c.read_head().decode("latin-1")
        self.status = int(self.head.split()[1])

    def finish(self):
        """Reads the rest of the download."""
        n = int(re.search(r"Content-Length: (\d+)", self.head).group(1))
        body = self.c.read_exact(n, timeout=30)
        return body

    def close(self):
        self.c.close()


class Conn(PorterTestCase):
    def start(self, location, top="", listen="listen 127.0.0.1:0;"):
        return self.start_porter(conf("limit_conn_zone $binary_remote_addr zone=c:1m;\n" + top,
                                      location, listen=listen), FILES)

    def slow(self, p, **kw):
        s = SlowClient(p, **kw)
        self.addCleanup(s.close)
        return s

    def test_slow_downloads(self):
        p = self.start("limit_conn c 2;")
        a, b = self.slow(p), self.slow(p)
        self.assertEqual((a.status, b.status), (200, 200))
        c = self.slow(p)
        self.assertEqual(c.status, 503)
        logged(p, re.escape('limiting connections by zone "c"'))
        self.assertEqual(zone_stats(p, "c")["active"], 2)
        # another client address has slots of its own
        self.assertEqual(self.slow(p, source="127.0.0.2").status, 200)
        # a download that ends gives its slot back
        self.assertEqual(a.finish(), BIG)
        harness.wait_until(lambda: self.slow(p).status == 200, 10,
                           "a finished download did not give its slot back")
        # and one whose client goes away too: the new one and 127.0.0.2's are left
        b.close()
        harness.wait_until(lambda: zone_stats(p, "c")["active"] == 2, 10,
                           lambda: "counts: %r" % zone_stats(p, "c"))

    def test_counts_go_back_to_zero(self):
        p = self.start("limit_conn c 3;")
        clients = [self.slow(p) for _ in range(3)]
        self.assertEqual([c.status for c in clients], [200] * 3)
        self.assertEqual(self.slow(p).status, 503)
        clients[0].finish()
        for c in clients:
            c.close()
        # given back once each, however each ended: nothing counted, the key's entry gone
        harness.wait_until(lambda: zone_stats(p, "c")["active"] == 0, 10,
                           lambda: "counts: %r" % zone_stats(p, "c"))
        self.assertEqual(zone_stats(p, "c")["entries"], 0)
        self.assertEqual(zone_stats(p, "c")["rejected"], 1)
        self.assertEqual([self.slow(p).status for _ in range(3)], [200] * 3)

    def test_status_and_dry_run(self):
        p = self.start("limit_conn c 1;\n        limit_conn_status 429;\n"
                       "        limit_conn_log_level warn;")
        self.assertEqual(self.slow(p).status, 200)
        self.assertEqual(self.slow(p).status, 429)
        logged(p, r'\[warn\] \d+: limiting connections by zone "c"')
        p2 = self.start("limit_conn c 1;\n        limit_conn_dry_run on;")
        self.assertEqual([self.slow(p2).status for _ in range(3)], [200] * 3)
        logged(p2, re.escape('limiting connections, dry run, by zone "c"'))
        z = zone_stats(p2, "c")
        self.assertEqual((z["active"], z["rejected"], z["rejected_dry_run"]), (1, 0, 2))

    def test_http2_streams_count_one_each(self):
        if frames.h2 is None:
            self.skipTest("needs python3-h2")
        p = self.start("limit_conn c 2;", listen="listen 127.0.0.1:0 http2;")
        # a window of 1 byte: the streams' bodies stay in porter, the streams open
        c = frames.RawH2(p.port, settings={frames.SETTINGS_INITIAL_WINDOW_SIZE: 1})
        self.addCleanup(c.close)
        for sid in (1, 3, 5):
            c.request(sid, "/big.bin")
        self.assertTrue(c.read_until(lambda: all(c.status(s) for s in (1, 3, 5)), 10),
                        c.summary())
        self.assertEqual([c.status(s) for s in (1, 3, 5)], [200, 200, 503])
        self.assertFalse(c.ended(1) or c.ended(3), c.summary())
        self.assertEqual(zone_stats(p, "c")["active"], 2)
        # an HTTP/1.1 request from the same address has no slot either
        self.assertEqual(statuses(p, 1), [503])
        c.close()
        harness.wait_until(lambda: zone_stats(p, "c")["active"] == 0, 10,
                           lambda: "counts: %r" % zone_stats(p, "c"))
        self.assertEqual(statuses(p, 1), [200])


class Reload(PorterTestCase):
    def reload(self, p, text):
        with open(p.conf_path + ".tmp", "w") as f:
            f.write(harness.build_conf(text))
        os.rename(p.conf_path + ".tmp", p.conf_path)
        marks = p.output.count("configuration reloaded")
        p.signal(signal.SIGHUP)
        harness.wait_until(lambda: p.output.count("configuration reloaded") > marks, 10,
                           lambda: "no reload reported:\n" + p.output[-2000:])
        self.assertNotIn("reload failed", p.output)

    def keeps_state(self, workers):
        port = self.reserve_port()
        listen = "listen 127.0.0.1:%d;" % port

        def text(size):
            return conf("limit_req_zone $binary_remote_addr zone=z:%s rate=1r/m;" % size,
                        "limit_req zone=z;", workers=workers, listen=listen)

        p = self.start_porter(text("1m"), FILES)
        if workers > 1:
            harness.wait_workers(p, workers)
        self.assertEqual(statuses(p, 1), [200])
        # the same zone: its bucket is where the last request left it, whoever answers
        self.reload(p, text("1m"))
        self.assertEqual(statuses(p, 4), [503] * 4)
        # another size: another zone, empty
        self.reload(p, text("2m"))
        logged(p, r'zone "z" changed its size: it starts empty')
        harness.wait_until(lambda: statuses(p, 1) == [200], 10, "the resized zone was not new")
        self.assertEqual(statuses(p, 1), [503])

    def test_single_process_keeps_zones(self):
        self.keeps_state(1)

    def test_workers_keep_zones(self):
        self.keeps_state(2)


class Status(PorterTestCase):
    def test_html_lists_the_zones(self):
        p = self.start_porter(conf("limit_req_zone $binary_remote_addr zone=reqs:1m rate=1r/m;\n"
                                   "limit_conn_zone $binary_remote_addr zone=conns:64k;",
                                   "limit_req zone=reqs;\n        limit_conn conns 1;"), FILES)
        self.assertEqual(statuses(p, 2), [200, 503])
        text = p.get("/porter-status").body.decode()
        self.assertIn("<h2>Zones</h2>", text)
        self.assertRegex(text, r"<tr><th>reqs</th><td>limit_req</td><td[^>]*>1</td>")
        self.assertRegex(text, r"<tr><th>conns</th><td>limit_conn</td><td[^>]*>0</td>")
        doc = harness.get_status(p)
        self.assertEqual([(z["name"], z["kind"], z["size"]) for z in doc["zones"]],
                         [("reqs", "limit_req", 1 << 20), ("conns", "limit_conn", 64 << 10)])


class ConfErrors(PorterTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="porter-itest-limits-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.makedirs(os.path.join(self.dir, "htdocs"))

    def check(self, text, line, col, message):
        path = os.path.join(self.dir, "t.conf")
        with open(path, "w") as f:
            f.write(text)
        code, out, err = run_porter(["-t", "-c", path, "-p", self.dir], cwd=self.dir)
        harness.assert_clean_output(out + err)
        self.assertEqual(code, 1, err)
        self.assertIn("%s:%d:%d: %s" % (path, line, col, message), err)

    def server(self, location):
        return "server {\n    listen 127.0.0.1:0;\n    location / { %s }\n}\n" % location

    def test_errors(self):
        zone = "limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s;\n"
        cases = [
            (zone + self.server("limit_req zone=nope;"), 4, 28,
             'unknown limit_req_zone "nope"'),
            ("limit_req_zone $binary_remote_addr zone=z:1m rate=fast;\n", 1, 46,
             'invalid rate "rate=fast"'),
            ("limit_req_zone $binary_remote_addr zone=z:1m rate=0r/s;\n", 1, 46,
             'invalid rate "rate=0r/s"'),
            ("limit_req_zone $binary_remote_addr zone=z:10x rate=1r/s;\n", 1, 36,
             'invalid zone size "zone=z:10x"'),
            ("limit_req_zone $binary_remote_addr zone=z:1k rate=1r/s;\n", 1, 36,
             'zone "zone=z:1k" is too small'),
            (zone + "limit_req_zone $binary_remote_addr zone=z:2m rate=1r/s;\n", 2, 36,
             'the size 2097152 of zone "z" conflicts with the size 1048576 declared at'),
            (zone + "limit_req_zone $remote_addr zone=z:1m rate=1r/s;\n", 2, 29,
             'limit_req_zone "z" is already bound to key "$binary_remote_addr"'),
            (zone + "limit_conn_zone $binary_remote_addr zone=z:1m;\n", 2, 37,
             'zone "z" is already declared by "limit_req_zone"'),
            (zone + self.server("limit_conn z 1;"), 4, 29,
             'zone "z" is declared by "limit_req_zone", "limit_conn" needs a "limit_conn_zone"'),
            ("limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s sync;\n", 1, 56,
             '"sync" is not supported'),
            ("limit_req_zone $nope zone=z:1m rate=1r/s;\n", 1, 16,
             'unknown variable "$nope" in "limit_req_zone"'),
            (zone + self.server("limit_req zone=z burst=0;"), 4, 35,
             'invalid burst value "burst=0"'),
            (zone + self.server("limit_req zone=z; limit_req zone=z;"), 4, 46,
             'zone "z" is named twice in "limit_req"'),
            (zone + self.server("limit_req_status 302;"), 4, 35,
             'invalid value "302" in "limit_req_status", it must be 400..599'),
            (zone + self.server("limit_req_log_level debug;"), 4, 38,
             'invalid value "debug" in "limit_req_log_level"'),
            ("limit_conn_zone $binary_remote_addr zone=c:1m;\n" + self.server("limit_conn c 0;"),
             4, 31, 'invalid number of connections "0"'),
            (self.server("limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s;"), 3, 18,
             '"limit_req_zone" directive is not allowed here'),
            ("limit_req_zone $binary_remote_addr rate=1r/s;\n", 1, 1,
             '"limit_req_zone" must have "zone" parameter'),
        ]
        for text, line, col, message in cases:
            with self.subTest(message=message):
                self.check(text, line, col, message)

    def test_a_good_conf(self):
        path = os.path.join(self.dir, "t.conf")
        with open(path, "w") as f:
            f.write("limit_req zone=later burst=5 nodelay;\n"
                    "limit_req_zone $binary_remote_addr zone=later:10m rate=30r/m;\n"
                    "limit_conn_zone $server_name zone=perserver:10m;\n"
                    "server {\n    listen 127.0.0.1:0;\n    limit_conn perserver 100;\n"
                    "    location / { limit_req zone=later delay=2 burst=4; }\n}\n")
        code, out, err = run_porter(["-t", "-c", path, "-p", self.dir], cwd=self.dir)
        self.assertEqual(code, 0, err)


if __name__ == "__main__":
    harness.main()
