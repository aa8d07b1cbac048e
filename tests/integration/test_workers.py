"""worker_processes 2: a master and two workers on one port; every connection is served and
SIGTERM stops them all cleanly."""

import sys
import os
import signal
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

FILES = {"index.html": b"<html>workers</html>\n", "a.txt": b"alpha\n", "big.bin": os.urandom(200000)}


class Workers(PorterTestCase):
    def start(self, extra=""):
        p = self.start_porter("worker_processes 2;\n" + extra +
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n", FILES)
        return p, harness.wait_workers(p, 2)

    def test_serves_and_stops(self):
        p, workers = self.start()
        conns = []
        for i in range(8):
            c = p.connect()
            self.addCleanup(c.close)
            conns.append(c)
        for i, c in enumerate(conns):
            c.send(request("GET", "/a.txt"))
        for c in conns:
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")
        for i in range(20):
            r = p.get("/big.bin" if i % 2 else "/")
            self.assertStatus(r, 200)
            self.assertEqual(r.body, FILES["big.bin"] if i % 2 else FILES["index.html"])
        for c in conns:
            c.close()
        p.signal(signal.SIGTERM)
        p.wait(10)
        p.check_exit()
        harness.wait_until(lambda: not any(harness.proc_alive(w) for w in workers), 5,
                           lambda: "workers left running: %r"
                           % [w for w in workers if harness.proc_alive(w)])

    def test_stop_with_idle_keepalive(self):
        p, workers = self.start()
        c = p.connect()
        self.addCleanup(c.close)
        c.send(request("GET", "/a.txt"))
        self.assertStatus(c.read_response(), 200)
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        closed, _, _ = c.wait_closed(5)
        self.assertTrue(closed)
        p.wait(10)
        # At once, not at the 10 s grace period: 4 s is the margin for ASan and the workers.
        self.assertLess(time.monotonic() - start, 4.0)
        p.check_exit()
        self.assertEqual([w for w in workers if harness.proc_alive(w)], [])

    def test_dead_worker_is_replaced(self):
        p, workers = self.start()
        # Keep-alive connections spread over both workers; once the workers have reported them
        # (once a second), one worker is killed: only its own connections are lost, the master
        # says how many, and another worker takes its place within a second.
        conns = []
        for _ in range(12):
            c = p.connect()
            self.addCleanup(c.close)
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
            conns.append(c)
        time.sleep(1.5)
        killed = time.monotonic()
        os.kill(workers[0], signal.SIGKILL)
        harness.wait_workers(p, 2, exclude=[workers[0]], timeout=5)
        self.assertLess(time.monotonic() - killed, 1.5, "the replacement took too long")
        lost = 0
        for c in conns:
            try:
                c.send(request("GET", "/a.txt"))
                r = c.read_response(timeout=5)
                self.assertStatus(r, 200)
            except (harness.Closed, OSError):
                lost += 1
        self.assertTrue(0 < lost < len(conns), "lost %d of %d connections" % (lost, len(conns)))
        self.assertTrue(harness.wait_for(lambda: "worker %d killed by signal 9" % workers[0]
                                         in p.output, 5), p.output)
        self.assertIn("worker %d killed by signal 9 with %d connections" % (workers[0], lost),
                      p.output)
        for _ in range(6):
            self.assertStatus(p.get("/a.txt"), 200)
        p.signal(signal.SIGTERM)
        p.wait(10)
        # The killed worker's exit is reported; the rest must be clean.
        self.assertEqual(p.exit_code, 0, p.output)
        harness.assert_clean_output(p.output)
        p.check_exit()

if __name__ == "__main__":
    harness.main()
