"""The live status page, `location /porter-status { status; }`: JSON when asked for
(Accept: application/json or ?format=json), HTML otherwise; connections by state (reading,
writing, idle, lingering; parked and draining apart), live custodians, timers, accepted/handled/rejected, requests, bytes
in and out, per worker and in total; and every counter agrees with what the test did."""

import sys
import json
import os
import signal

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

BIG = os.urandom(4 * 1024 * 1024)
FILES = {"a.txt": b"alpha\n", "big.bin": BIG}
STATUS = harness.STATUS_CONF
COUNTERS = ("accepted", "handled", "rejected", "requests", "bytes_in", "bytes_out",
            "custodians", "timers")
STATES = ("active", "reading", "writing", "idle", "lingering")


def raw_len(r):
    """Bytes of a response on the wire (head, blank line, body)."""
    return len(r.raw_head) + 4 + len(r.body)


class StatusFormat(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter(STATUS, FILES)

    def check_json(self, r):
        self.assertEqual(r.status, 200, "the status page answered %d (is `location "
                         "/porter-status { status; }` supported?)" % r.status)
        self.assertTrue(r.header("Content-Type", "").startswith("application/json"), r)
        doc = json.loads(r.body.decode())
        self.assertEqual(len(doc["workers"]), 1)
        for part in (doc["total"], doc["workers"][0]):
            for k in COUNTERS:
                self.assertIsInstance(part[k], int, k)
            for k in STATES:
                self.assertIsInstance(part["connections"][k], int, k)
        self.assertEqual(doc["workers"][0]["pid"], self.p.pid)
        return doc

    def test_json_by_accept_header(self):
        r = self.p.get("/porter-status", headers=[("Accept", "application/json")])
        self.check_json(r)

    def test_json_by_query(self):
        self.check_json(self.p.get("/porter-status?format=json"))

    def test_html_otherwise(self):
        for headers in ([], [("Accept", "text/html,*/*;q=0.8")]):
            r = self.p.get("/porter-status", headers=headers)
            self.assertEqual(r.status, 200, "the status page answered %d" % r.status)
            self.assertTrue(r.header("Content-Type", "").startswith("text/html"), r)
            text = r.body.decode()
            self.assertIn("<table", text)
            for word in ("reading", "writing", "idle", "lingering", "accepted", "handled",
                         "rejected", "requests", "custodians", "timers"):
                self.assertIn(word, text)
            self.assertIn("pid %d" % self.p.pid, text)

    def test_not_cached_head_and_other_methods(self):
        r = self.p.get("/porter-status?format=json")
        self.assertEqual(r.status, 200, "the status page answered %d" % r.status)
        self.assertIn("no-store", r.header("Cache-Control", ""))
        h = self.p.get("/porter-status?format=json", method="HEAD")
        self.assertStatus(h, 200)
        self.assertEqual(h.body, b"")
        self.assertEqual(self.p.get("/porter-status", method="POST").status, 405)

    def test_other_paths_are_not_the_status_page(self):
        self.assertStatus(self.p.get("/a.txt"), 200)
        self.assertEqual(self.p.get("/a.txt").body, b"alpha\n")
        # A prefix location, as in nginx: a shorter path or another directory is not it.
        self.assertStatus(self.p.get("/porter-stat"), 404)
        self.assertStatus(self.p.get("/x/porter-status"), 404)


class StatusCounters(PorterTestCase):
    def test_counters_match_what_was_done(self):
        p = self.start_porter(STATUS, FILES)
        c0 = p.connect()
        self.addCleanup(c0.close)
        req0 = request("GET", "/porter-status?format=json", close=True)
        c0.send(req0)
        r0 = c0.read_response()
        self.assertEqual(r0.status, 200, "the status page answered %d" % r0.status)
        s0 = json.loads(r0.body.decode())["total"]
        sent = received = 0
        for i in range(10):
            raw = request("GET", "/a.txt", close=True)
            with p.connect() as c:
                c.send(raw)
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertClosed(c)
            sent += len(raw)
            received += raw_len(r)
        ka = p.connect()
        self.addCleanup(ka.close)
        for i in range(5):
            raw = request("GET", "/a.txt" if i % 2 else "/missing")
            ka.send(raw)
            r = ka.read_response()
            sent += len(raw)
            received += raw_len(r)
        req1 = request("GET", "/porter-status?format=json", close=True)
        with p.connect() as c1:
            c1.send(req1)
            s1 = json.loads(c1.read_response().body.decode())["total"]
        d = {k: s1[k] - s0[k] for k in COUNTERS}
        # Requests: the 15, and the second status request itself.
        self.assertEqual(d["requests"], 16, (s0, s1))
        # Connections: the 10, the keep-alive one and the second status one.
        self.assertEqual(d["accepted"], 12, (s0, s1))
        # Closed in between: the first status connection and the 10.
        self.assertEqual(d["handled"], 11, (s0, s1))
        self.assertEqual(d["rejected"], 0)
        # Bytes: read after the first snapshot up to the second one's request; written after
        # the first snapshot (its own response included) up to the second one.
        self.assertEqual(d["bytes_in"], sent + len(req1), (s0, s1))
        self.assertEqual(d["bytes_out"], raw_len(r0) + received, (s0, s1))
        # Open now: the keep-alive one (idle) and the one asking (writing).
        self.assertEqual(s1["connections"]["active"], 2, s1)
        self.assertEqual(s1["connections"]["idle"], 1, s1)
        self.assertEqual(s1["connections"]["writing"], 1, s1)
        self.assertEqual(s1["accepted"] - s1["handled"], s1["connections"]["active"])

    def test_connections_by_state(self):
        p = self.start_porter(STATUS + "lingering_timeout 10s;\nrequest_read_timeout 30s;\n"
                              "keepalive_timeout 30s;\nresponse_send_timeout 30s;", FILES)
        conns = []

        def keep(c):
            self.addCleanup(c.close)
            conns.append(c)
            return c

        for _ in range(3):  # idle
            c = keep(p.connect())
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
        for _ in range(2):  # reading: half a head
            keep(p.connect()).send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n")
        # writing: a download the client does not read
        w = keep(harness.Conn(p.host, p.port, 10, rcvbuf=16 * 1024))
        w.send(request("GET", "/big.bin"))
        self.assertTrue(w.read_head().startswith(b"HTTP/1.1 200 "))
        # lingering: an error answered, the client still connected
        g = keep(p.connect())
        g.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
        self.assertStatus(g.read_response(), 400)
        # The status request's own connection is writing too. (porter takes in the half heads
        # and moves the 400's connection to lingering a moment after the client is done.)
        # Idle ones are parked after half a second: still idle, and parked too.
        want = {"active": 8, "reading": 2, "writing": 2, "idle": 3, "lingering": 1,
                "draining": 0}
        seen = []
        harness.wait_until(lambda: seen.append(harness.get_status(p)["total"]["connections"])
                           or {k: seen[-1][k] for k in want} == want, 5,
                           lambda: "%r, not %r" % (seen[-1], want))
        self.assertLessEqual(seen[-1]["parked"], 3, seen[-1])
        # Left alone, the three keep-alive ones are all parked in the end.
        harness.wait_until(lambda: seen.append(harness.get_status(p)["total"]["connections"])
                           or (seen[-1]["parked"], seen[-1]["idle"]) == (3, 3), 5,
                           lambda: "%r: not 3 idle, all parked" % (seen[-1],))
        for c in conns:
            c.close()
        settled = harness.wait_for(
            lambda: harness.get_status(p)["total"]["connections"]["active"] == 1, 5)
        self.assertTrue(settled, harness.get_status(p))

    def test_rejected_counts_refused_clients(self):
        p = self.start_porter(STATUS + "max_concurrent_per_client 3;\nkeepalive_timeout 30s;",
                              FILES)
        mine = p.connect()
        self.addCleanup(mine.close)
        held = []
        for _ in range(2):
            c = p.connect()
            self.addCleanup(c.close)
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
            held.append(c)
        for _ in range(4):
            with p.connect() as c:
                self.assertStatus(c.read_response(timeout=5), 503)
        t = harness.get_status(p, conn=mine)["total"]
        self.assertEqual(t["rejected"], 4, t)
        self.assertEqual(t["accepted"], 3, t)
        self.assertEqual(t["connections"]["active"], 3, t)

    def test_custodians_and_timers_follow_connections(self):
        p = self.start_porter(STATUS + "keepalive_timeout 30s;", FILES)
        base = harness.get_status(p)["total"]
        conns = []
        for _ in range(50):
            c = p.connect()
            self.addCleanup(c.close)
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
            conns.append(c)
        t = harness.get_status(p)["total"]
        self.assertEqual(t["connections"]["idle"], 50, t)
        self.assertGreaterEqual(t["custodians"], base["custodians"] + 50)
        # Every idle connection waits with its keep-alive timer armed.
        self.assertGreaterEqual(t["timers"], base["timers"] + 50)
        for c in conns:
            c.close()
        back = harness.wait_for(
            lambda: harness.get_status(p)["total"]["connections"]["active"] == 1, 5)
        self.assertTrue(back)
        t = harness.get_status(p)["total"]
        self.assertEqual(t["custodians"], base["custodians"], (base, t))
        self.assertEqual(t["timers"], base["timers"], (base, t))


class StatusWorkers(PorterTestCase):
    def start(self, n=2):
        p = self.start_porter("worker_processes %d;\nserver {\n    listen 127.0.0.1:0;\n"
                              "    root htdocs;\n%s}\n" % (n, STATUS), FILES)
        return p, harness.wait_workers(p, n)

    def test_one_entry_per_worker_and_totals(self):
        p, workers = self.start(2)
        for _ in range(40):
            self.assertStatus(p.get("/a.txt"), 200)
        # Other workers publish their numbers once a second: wait until both show theirs.
        docs = []

        def published():
            docs.append(harness.get_status(p))
            return (len(docs[-1]["workers"]) == 2 and docs[-1]["total"]["requests"] >= 41
                    and all(w["requests"] > 0 for w in docs[-1]["workers"]))

        harness.wait_until(published, 5, lambda: "40 requests on both workers: %r" % docs[-1])
        doc = docs[-1]
        pids = sorted(w["pid"] for w in doc["workers"])
        self.assertEqual(pids, workers, doc)
        self.assertEqual(sorted(w["slot"] for w in doc["workers"]), [0, 1])
        self.assertEqual([w["self"] for w in doc["workers"]].count(True), 1)
        for k in COUNTERS:
            self.assertEqual(doc["total"][k], sum(w[k] for w in doc["workers"]), k)
        for k in STATES:
            self.assertEqual(doc["total"]["connections"][k],
                             sum(w["connections"][k] for w in doc["workers"]), k)
        # 40 requests and this one, over both workers.
        self.assertGreaterEqual(doc["total"]["requests"], 41)
        self.assertTrue(all(w["requests"] > 0 for w in doc["workers"]),
                        "a worker served none of 40 connections: %r" % doc["workers"])

    def test_a_replaced_worker_shows_in_its_slot(self):
        p, workers = self.start(2)
        os.kill(workers[0], signal.SIGKILL)
        now = harness.wait_workers(p, 2, exclude=[workers[0]])
        # Within a second (the workers publish once a second) the page lists the replacement.
        docs = []
        harness.wait_until(lambda: docs.append(harness.get_status(p))
                           or sorted(w["pid"] for w in docs[-1]["workers"]) == now, 5,
                           lambda: "the status page lists the workers %r: %r"
                           % (now, docs[-1]["workers"]))
        self.assertEqual(sorted(w["slot"] for w in docs[-1]["workers"]), [0, 1])

    def test_after_a_reload_the_new_workers_are_listed(self):
        p, workers = self.start(2)
        for _ in range(10):
            self.assertStatus(p.get("/a.txt"), 200)
        p.signal(signal.SIGHUP)
        new = harness.wait_workers(p, 2, exclude=workers)
        docs = []
        harness.wait_until(lambda: docs.append(harness.get_status(p))
                           or sorted(w["pid"] for w in docs[-1]["workers"]) == new, 5,
                           lambda: "the status page lists the new generation %r: %r"
                           % (new, docs[-1]["workers"]))


if __name__ == "__main__":
    harness.main()
