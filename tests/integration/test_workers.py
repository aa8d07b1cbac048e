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


def children_of(pid):
    """PIDs whose parent is `pid` (from /proc)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # The command may hold spaces or parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(name))
    return kids


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


class Workers(PorterTestCase):
    def start(self, extra=""):
        p = self.start_porter("worker_processes 2;\n" + extra +
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n", FILES)
        deadline = time.monotonic() + 10
        while len(children_of(p.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = children_of(p.pid)
        self.assertEqual(len(workers), 2, "expected two workers under the master")
        return p, workers

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
        deadline = time.monotonic() + 5
        while any(pid_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([w for w in workers if pid_alive(w)], [], "workers left running")

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
        self.assertLess(time.monotonic() - start, 4.0)
        p.check_exit()
        self.assertEqual([w for w in workers if pid_alive(w)], [])

    def test_dead_worker_is_replaced(self):
        p, workers = self.start()
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        now = []
        while time.monotonic() < deadline:
            now = children_of(p.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.05)
        self.assertEqual(len(now), 2, "the killed worker was not replaced")
        self.assertNotIn(workers[0], now)
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
