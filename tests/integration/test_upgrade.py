"""Binary upgrade: `porter -s upgrade` (SIGUSR2) starts porter's executable again with the
listening sockets inherited; once the new process's workers accept, the old one retires gently,
and the pid file names the new one. Under load (keep-alive clients in Python, and wrk when it is
installed) not one request fails, and the listening sockets are the same sockets before and after
(never closed or bound again). A new process that cannot load its conf exits; the old one serves
on and has its pid file back."""

import os
import re
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

FILES = {"a.txt": b"alpha\n" * 100}


def listen_inodes(port):
    """The inodes of the sockets listening on 127.0.0.1:`port`, from the kernel's table."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                inodes.add(fields[9])
    return inodes


class Load:
    """Clients on keep-alive connections asking for a.txt back to back: a response that says
    `Connection: close` is followed by a new connection, anything else that goes wrong (a
    refused or reset connection, a short or wrong answer) is a failure."""

    def __init__(self, p, clients=8):
        self.p = p
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def run(self):
        conn = None
        while not self.stopping.is_set():
            try:
                if conn is None:
                    conn = harness.Conn(self.p.host, self.p.port, timeout=10)
                conn.send(request("GET", "/a.txt"))
                r = conn.read_response()
                if r.status != 200 or r.body != FILES["a.txt"]:
                    raise AssertionError("answer %d, %d bytes" % (r.status, len(r.body)))
                with self.lock:
                    self.ok += 1
                if r.has_token("Connection", "close"):
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001: every failure is counted and reported
                with self.lock:
                    self.failures.append(repr(e))
                if conn:
                    conn.close()
                conn = None
        if conn:
            conn.close()

    def served(self):
        with self.lock:
            return self.ok

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(15)
        return self.ok, self.failures


class Upgrade(PorterTestCase):
    def start(self, workers):
        p = self.start_porter("pid @TMP@/porter.pid;\nworker_processes %d;\n"
                              "keepalive_timeout 30s;\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n"
                              % workers, FILES)
        if workers > 1:
            harness.wait_workers(p, workers)
        self.pid_file = os.path.join(p.tmp, "porter.pid")
        harness.wait_until(lambda: os.path.exists(self.pid_file), 5, "the pid file")
        return p

    def read_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def upgrade(self, p):
        code, out, err = harness.run_porter(["-p", p.tmp, "-c", p.conf_path, "-s", "upgrade"])
        self.assertEqual(code, 0, err)

    def kill_later(self, pid):
        """The new process is not the harness's child: it is stopped by the test, or killed."""
        def kill():
            if harness.proc_alive(pid):
                for k in [pid] + harness.proc_live_children(pid):
                    try:
                        os.kill(k, signal.SIGKILL)
                    except OSError:
                        pass
        self.addCleanup(kill)

    def stop_new(self, p, new):
        """Stops the new process gently and waits for the old one's harness to see the end of
        the output both wrote (with every sanitizer line in it)."""
        code, out, err = harness.run_porter(["-p", p.tmp, "-c", p.conf_path, "-s", "quit"])
        self.assertEqual(code, 0, err)
        harness.wait_until(lambda: not harness.proc_alive(new), 15, "the new process stops")
        p._reader.join(10)
        harness.assert_clean_output(p.output)

    def upgrade_under_load(self, workers):
        p = self.start(workers)
        old = p.pid
        old_workers = harness.proc_live_children(old)
        inodes = listen_inodes(p.port)
        self.assertEqual(len(inodes), max(workers, 1))
        load = Load(p)
        self.addCleanup(load.stop)
        harness.wait_until(lambda: load.served() >= 200, 20, "the load is served")
        self.upgrade(p)
        # the old process hands over and exits 0 once its connections are done
        harness.wait_until(lambda: self.read_pid() not in (None, old), 20,
                           lambda: "a new pid in the pid file:\n" + p.output)
        new = self.read_pid()
        self.kill_later(new)
        self.assertEqual(p.wait(30), 0, p.output)
        p.check_exit()
        self.assertIn("binary upgrade: process %d serves now; this one retires" % new, p.output)
        self.assertFalse(os.path.exists(self.pid_file + ".oldbin"))
        # the new process serves, with its own workers, on the very same sockets
        self.assertTrue(harness.proc_alive(new))
        if workers > 1:
            harness.wait_until(lambda: len(harness.proc_live_children(new)) == workers, 10,
                               "the new process's workers")
        for w in old_workers:
            harness.wait_until(lambda: not harness.proc_alive(w), 10, "old worker %d exits" % w)
        self.assertEqual(listen_inodes(p.port), inodes, "the listening sockets were replaced")
        after = load.served()
        harness.wait_until(lambda: load.served() >= after + 200, 20,
                           "the new process serves the load")
        ok, failures = load.stop()
        self.assertEqual(failures, [], "requests failed across the upgrade (%d ok)" % ok)
        self.stop_new(p, new)

    def test_upgrade_under_load_workers(self):
        self.upgrade_under_load(2)

    def test_upgrade_under_load_one_process(self):
        self.upgrade_under_load(1)

    def test_upgrade_under_wrk(self):
        if not harness.tool("wrk"):
            self.skipTest("wrk is not installed")
        p = self.start(2)
        old = p.pid
        wrk = harness.Wrk(p.url("/a.txt"), duration=120, threads=2, connections=16)
        self.addCleanup(wrk.stop)
        harness.wait_until(lambda: harness.established_to(p.port) >= 16, 10,
                           "wrk's 16 connections to porter")
        time.sleep(1)  # some load before
        self.upgrade(p)
        harness.wait_until(lambda: self.read_pid() not in (None, old), 20, "a new pid")
        new = self.read_pid()
        self.kill_later(new)
        self.assertEqual(p.wait(30), 0, p.output)
        time.sleep(1)  # some load after
        self.assertTrue(wrk.running(), "the load ended before the upgrade was over")
        result = wrk.stop()
        self.assertGreater(result["requests"], 100, result["text"])
        errors = {k: result[k] for k in ("connect", "read", "write", "timeout", "non2xx")
                  if result[k]}
        self.assertEqual(errors, {}, "requests failed across the upgrade:\n" + result["text"])
        self.stop_new(p, new)

    def test_failed_upgrade_leaves_the_old_process_serving(self):
        p = self.start(2)
        old = p.pid
        old_workers = sorted(harness.proc_live_children(old))
        with open(p.conf_path) as f:
            good = f.read()
        with open(p.conf_path, "w") as f:
            f.write(good + "\nbogus_directive 1;\n")
        self.upgrade(p)  # the pid file is found in the bad conf all the same
        harness.wait_until(lambda: "binary upgrade failed: process" in p.output, 20,
                           lambda: "the failure reported:\n" + p.output)
        m = re.search(r"binary upgrade failed: process (\d+) exited with status 1", p.output)
        self.assertTrue(m, p.output)
        self.assertIn('unknown directive "bogus_directive"', p.output)  # the new one's reason
        self.assertFalse(harness.proc_alive(int(m.group(1))))
        self.assertEqual(self.read_pid(), old)
        self.assertFalse(os.path.exists(self.pid_file + ".oldbin"))
        self.assertTrue(p.alive())
        self.assertEqual(sorted(harness.proc_live_children(old)), old_workers)
        for _ in range(10):
            self.assertEqual(p.get("/a.txt").status, 200)
        # once the conf is good again, an upgrade goes through
        with open(p.conf_path, "w") as f:
            f.write(good)
        self.upgrade(p)
        harness.wait_until(lambda: self.read_pid() not in (None, old), 20, "a new pid")
        new = self.read_pid()
        self.kill_later(new)
        self.assertEqual(p.wait(30), 0, p.output)
        self.assertEqual(p.get("/a.txt").status, 200)
        self.stop_new(p, new)


if __name__ == "__main__":
    harness.main()
