"""Reload (SIGHUP), in a single process and with workers: the new conf is checked first (a bad
one is reported with file:line:col and the old one keeps serving); the new conf takes over;
old workers finish their in-flight responses, answer a request that arrives on an idle
keep-alive connection (telling it to close) and then exit; the listening port never stops
accepting (the reloads under wrk load are in test_reload_load.py)."""

import sys
import os
import shutil
import signal
import socket
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

BIG = os.urandom(4 * 1024 * 1024)
FILES = {"a.txt": b"one\n", "big.bin": BIG, "index.html": b"<html>1</html>\n"}
EXTRA = {"htdocs2/a.txt": b"two\n", "htdocs2/big.bin": BIG, "htdocs2/index.html": b"<html>2</html>\n"}


def conf(workers=1, root="htdocs", extra=""):
    return ("worker_processes %d;\n%s"
            "server {\n    listen 127.0.0.1:%%PORT%%;\n    root %s;\n}\n" % (workers, extra, root))


class ReloadCase(PorterTestCase):
    """Helpers: a porter on a port named in its conf (as a user's is: a reload takes the
    socket over by its address), whose conf the test rewrites and reloads."""

    def start(self, workers=1, extra=""):
        self.port = self.reserve_port()
        self.extra_conf = extra
        p = self.start_porter(conf(workers, extra=extra).replace("%PORT%", str(self.port)),
                              FILES, extra=EXTRA)
        self.workers = harness.wait_workers(p, workers if workers > 1 else 0)
        return p

    def write_conf(self, p, text):
        with open(p.conf_path + ".tmp", "w") as f:
            f.write(harness.build_conf(text.replace("%PORT%", str(self.port))))
        os.rename(p.conf_path + ".tmp", p.conf_path)

    def reload(self, p, workers=1, root="htdocs2"):
        """Writes the conf for `root`, sends SIGHUP and waits until the reload is reported and
        the new conf answers (fresh connections get that root's a.txt)."""
        marks = p.output.count("configuration reloaded")
        fails = p.output.count("reload failed")
        self.write_conf(p, conf(workers, root, self.extra_conf))
        p.signal(signal.SIGHUP)
        self.assertTrue(harness.wait_for(lambda: p.output.count("configuration reloaded") > marks
                                         or p.output.count("reload failed") > fails, 10),
                        "no reload reported:\n" + p.output[-2000:])
        failed = [l for l in p.output.splitlines() if "reload failed" in l][fails:]
        self.assertFalse(failed, "the reload to worker_processes %d failed:\n%s"
                         % (workers, "\n".join(failed)))
        want = b"two\n" if root == "htdocs2" else b"one\n"
        self.assertTrue(harness.wait_for(lambda: all(p.get("/a.txt").body == want
                                                     for _ in range(6)), 10),
                        "the new conf does not answer")


class Reload(ReloadCase):
    # ---- the conf ----

    def reload_applies(self, workers):
        p = self.start(workers)
        self.assertEqual(p.get("/a.txt").body, b"one\n")
        old = list(self.workers)
        self.reload(p, workers, "htdocs2")
        for _ in range(10):
            self.assertEqual(p.get("/a.txt").body, b"two\n")
        if workers > 1:
            new = harness.wait_workers(p, workers, exclude=old)
            self.assertFalse(set(new) & set(old))
        self.reload(p, workers, "htdocs")
        self.assertEqual(p.get("/a.txt").body, b"one\n")

    def test_reload_applies_the_new_conf_single(self):
        self.reload_applies(1)

    @unittest.skipUnless(shutil.which("ss"), "needs ss (iproute2)")
    def test_reload_applies_a_changed_deferred(self):
        p = self.start()
        self.assertFalse(harness.silent_client_waits_in_the_kernel(self.port))
        for deferred in (True, False):
            marks = p.output.count("configuration reloaded")
            self.write_conf(p, conf().replace(";\n    root", " deferred;\n    root")
                            if deferred else conf())
            p.signal(signal.SIGHUP)
            self.assertTrue(harness.wait_for(
                lambda: p.output.count("configuration reloaded") > marks, 10), p.output[-2000:])
            self.assertEqual(harness.silent_client_waits_in_the_kernel(self.port), deferred)
            self.assertEqual(p.get("/a.txt").body, b"one\n")

    def test_reload_applies_the_new_conf_workers(self):
        self.reload_applies(2)

    def bad_conf_keeps_old(self, workers):
        p = self.start(workers)
        old = list(self.workers)
        good = open(p.conf_path).read()
        with open(p.conf_path, "w") as f:
            f.write(good + "\nserver {\n    listen 127.0.0.1:0;\n    bogus_directive 1;\n}\n")
        p.signal(signal.SIGHUP)
        self.assertTrue(harness.wait_for(lambda: "reload failed" in p.output, 10),
                        "a bad conf was not reported:\n" + p.output[-2000:])
        line = [l for l in p.output.splitlines() if "reload failed" in l][0]
        self.assertIn("porter.conf:", line)
        self.assertRegex(line, r"porter\.conf:\d+:\d+", "no file:line:col in %r" % line)
        self.assertIn("bogus_directive", line)
        self.assertTrue(p.alive())
        for _ in range(6):
            r = p.get("/a.txt")
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"one\n")
        if workers > 1:
            self.assertEqual(sorted(harness.proc_live_children(p.pid)), sorted(old),
                             "workers were replaced for a conf that failed")
        # Fixed, the next reload goes through.
        self.reload(p, workers, "htdocs2")

    def test_bad_conf_keeps_the_old_one_single(self):
        self.bad_conf_keeps_old(1)

    def test_bad_conf_keeps_the_old_one_workers(self):
        self.bad_conf_keeps_old(2)

    def test_unusable_conf_keeps_the_old_one(self):
        # Valid syntax, but its root does not exist: rejected before anything changes.
        p = self.start(2)
        old = list(self.workers)
        self.write_conf(p, conf(2, "no-such-dir"))
        p.signal(signal.SIGHUP)
        self.assertTrue(harness.wait_for(lambda: "reload failed" in p.output, 10),
                        p.output[-2000:])
        self.assertIn("no-such-dir", p.output)
        self.assertEqual(p.get("/a.txt").body, b"one\n")
        self.assertEqual(sorted(harness.proc_live_children(p.pid)), sorted(old))

    def test_reload_changes_the_worker_count(self):
        p = self.start(2)
        self.reload(p, 3, "htdocs2")
        new = harness.wait_workers(p, 3)
        self.assertFalse(set(new) & set(self.workers))
        for _ in range(20):
            self.assertEqual(p.get("/a.txt").body, b"two\n")
        self.reload(p, 1, "htdocs")
        # worker_processes 1 after a reload: still a master with one worker, or one process.
        self.assertTrue(harness.wait_for(lambda: len(harness.proc_live_children(p.pid)) <= 1, 10))
        for _ in range(10):
            self.assertEqual(p.get("/a.txt").body, b"one\n")

    # ---- what is in flight ----

    def inflight_download(self, workers):
        p = self.start(workers, "shutdown_grace_period 3s;\n")
        c = harness.Conn(p.host, p.port, 20, rcvbuf=32 * 1024)
        self.addCleanup(c.close)
        c.send(request("GET", "/big.bin"))
        self.assertTrue(c.read_head().startswith(b"HTTP/1.1 200 "))
        got = bytearray(c.buf)
        c.buf = bytearray()
        while len(got) < 256 * 1024:
            got += c.sock.recv(65536)
        start = time.monotonic()
        self.reload(p, workers, "htdocs2")
        if workers > 1:
            # The old worker with the download is still there, the others are gone.
            self.assertTrue(harness.wait_for(
                lambda: len(harness.proc_live_children(p.pid)) == workers + 1, 10),
                "expected the new workers and the one old worker still sending")
        while len(got) < len(BIG):
            data = c.sock.recv(1 << 20)
            if not data:
                break
            got += data
        self.assertEqual(len(got), len(BIG), "the download was cut by the reload")
        self.assertTrue(bytes(got) == BIG)
        # The old generation's connection ends within shutdown_grace_period of the reload,
        # and so does the old worker.
        closed, extra, _ = c.wait_closed(max(0.1, 5 - (time.monotonic() - start)))
        self.assertTrue(closed, "a retired connection outlived shutdown_grace_period")
        if workers > 1:
            self.assertTrue(harness.wait_for(
                lambda: len(harness.proc_live_children(p.pid)) == workers, 3),
                "the old worker did not exit after shutdown_grace_period")

    def test_inflight_download_survives_reload_single(self):
        self.inflight_download(1)

    def inflight_download_two_reloads(self, workers):
        # A second reload while the first one's old generation still sends a download: that
        # generation is retiring already and must go on doing so, not be stopped at once.
        p = self.start(workers, "shutdown_grace_period 5s;\n")
        c = harness.Conn(p.host, p.port, 20, rcvbuf=32 * 1024)
        self.addCleanup(c.close)
        c.send(request("GET", "/big.bin"))
        self.assertTrue(c.read_head().startswith(b"HTTP/1.1 200 "))
        got = bytearray(c.buf)
        c.buf = bytearray()
        self.reload(p, workers, "htdocs2")
        self.reload(p, workers, "htdocs")
        while len(got) < len(BIG):
            data = c.sock.recv(1 << 20)
            if not data:
                break
            got += data
        self.assertEqual(len(got), len(BIG), "download cut by the second reload after %d of "
                         "%d bytes" % (len(got), len(BIG)))
        self.assertTrue(bytes(got) == BIG)

    def test_inflight_download_survives_two_reloads_single(self):
        self.inflight_download_two_reloads(1)

    def test_inflight_download_survives_two_reloads_workers(self):
        self.inflight_download_two_reloads(2)

    def test_inflight_download_survives_reload_workers(self):
        self.inflight_download(2)

    def idle_connection_request_not_lost(self, workers):
        p = self.start(workers, "keepalive_timeout 30s;\n")
        conns = []
        for _ in range(6):
            c = p.connect()
            self.addCleanup(c.close)
            c.send(request("GET", "/a.txt"))
            self.assertEqual(c.read_response().body, b"one\n")
            conns.append(c)
        self.reload(p, workers, "htdocs2")
        # A request on a connection of the old generation is answered, not dropped, and the
        # answer says the connection ends.
        for c in conns:
            c.send(request("GET", "/a.txt"))
            r = c.read_response(timeout=5)
            self.assertStatus(r, 200)
            self.assertTrue(r.has_token("Connection", "close"), r)
            closed, _, _ = c.wait_closed(3)
            self.assertTrue(closed)
        if workers > 1:
            self.assertTrue(harness.wait_for(
                lambda: len(harness.proc_live_children(p.pid)) == workers, 10),
                "old workers did not exit once their connections were done")

    def test_idle_connection_request_after_reload_single(self):
        self.idle_connection_request_not_lost(1)

    def test_idle_connection_request_after_reload_workers(self):
        self.idle_connection_request_not_lost(2)

    def test_port_keeps_accepting_during_reloads(self):
        p = self.start(2)
        failures = []
        done = threading.Event()
        count = [0]

        def hammer():
            while not done.is_set():
                try:
                    c = harness.Conn(p.host, p.port, 5)
                    try:
                        c.send(request("GET", "/a.txt", close=True))
                        r = c.read_response(timeout=5)
                        if r.status != 200:
                            failures.append(r.status)
                    finally:
                        c.close()
                    count[0] += 1
                except (OSError, harness.Closed) as e:
                    failures.append(repr(e))

        t = threading.Thread(target=hammer, daemon=True)
        t.start()
        try:
            for i in range(5):
                time.sleep(0.4)  # requests between reloads: the scenario's pace
                self.reload(p, 2, "htdocs2" if i % 2 == 0 else "htdocs")
        finally:
            done.set()
            t.join(10)
        self.assertGreater(count[0], 20)
        self.assertEqual(failures, [], "%d of %d requests failed across reloads"
                         % (len(failures), count[0] + len(failures)))


TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)


class ReloadListen(ReloadCase):
    """What a reload does to the listening addresses: one the new conf no longer lists is
    closed, one it adds is opened, one it keeps is taken over with its changed options."""

    def addresses(self, workers, listens, root):
        return ("worker_processes %d;\nserver {\n%s    root %s;\n}\n"
                % (workers, "".join("    listen %s;\n" % l for l in listens), root))

    def reload_to(self, p, text, want):
        """Rewrites the conf, SIGHUP; waits until the reload is reported and fresh connections
        get `want` for /a.txt. Returns the log offset where the reload began."""
        since = len(p.log_text())
        marks = p.output.count("configuration reloaded")
        self.write_conf(p, text)
        p.signal(signal.SIGHUP)
        harness.wait_until(lambda: p.output.count("configuration reloaded") > marks, 10,
                           lambda: "the reload reported:\n" + p.output[-2000:])
        self.assertNotIn("reload failed", p.output[since:])
        harness.wait_until(lambda: p.get("/a.txt").body == want, 10, "the new conf answers")
        return since

    def refused(self, host, port):
        try:
            socket.create_connection((host, port), 2).close()
        except ConnectionRefusedError:
            return True
        return False

    def drop_and_add(self, workers):
        # 127.0.0.1 is kept, 127.0.0.2 dropped, 127.0.0.3 added (all of 127/8 is loopback).
        self.port = 0
        p = self.start_porter(self.addresses(workers, ["127.0.0.1:0", "127.0.0.2:0"], "htdocs"),
                              FILES, extra=EXTRA)
        harness.wait_workers(p, workers if workers > 1 else 0)
        first = {host: port for _, host, port in p.listening(2)}
        self.assertEqual(sorted(first), ["127.0.0.1", "127.0.0.2"])
        for host, port in first.items():
            with harness.Conn(host, port) as c:
                c.send(request("GET", "/a.txt", close=True))
                self.assertEqual(c.read_response().body, b"one\n")
        since = self.reload_to(p, self.addresses(workers, ["127.0.0.1:0", "127.0.0.3:0"],
                                                 "htdocs2"), b"two\n")
        now = {host: port for _, host, port in p.listening(2, since)}
        self.assertEqual(sorted(now), ["127.0.0.1", "127.0.0.3"])
        # The kept address is the same socket (the same port, though the conf says 0).
        self.assertEqual(now["127.0.0.1"], first["127.0.0.1"])
        with harness.Conn("127.0.0.3", now["127.0.0.3"]) as c:
            c.send(request("GET", "/a.txt", close=True))
            self.assertEqual(c.read_response().body, b"two\n")
        # The dropped one is closed once the old generation is gone (no connection holds it).
        harness.wait_until(lambda: self.refused("127.0.0.2", first["127.0.0.2"]), 10,
                           "the dropped address refuses connections")
        held = [a for pid in [p.pid] + harness.proc_live_children(p.pid)
                for a in harness.listening_sockets(pid)]
        self.assertNotIn(("127.0.0.2", first["127.0.0.2"]), held)
        self.assertIn(("127.0.0.3", now["127.0.0.3"]), held)

    def test_reload_drops_and_adds_addresses_single(self):
        self.drop_and_add(1)

    def test_reload_drops_and_adds_addresses_workers(self):
        self.drop_and_add(2)

    def lowat_of(self, p, c):
        """The TCP_NOTSENT_LOWAT of porter's side of connection `c` (0: the kernel's default,
        no bound), read from a duplicate of porter's own socket."""
        pids = [p.pid] + harness.proc_live_children(p.pid)
        where = harness.server_side(pids, self.port, c)
        self.assertIsNotNone(where, "porter's socket of the connection was not found")
        dup = harness.fd_of(*where)
        if dup is None:
            self.skipTest("pidfd_getfd(2) is refused here: cannot read porter's socket option")
        s = socket.socket(fileno=dup)
        try:
            return s.getsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT)
        finally:
            s.close()

    def lowat_reloads(self, workers):
        p = self.start(workers)  # listen without notsent_lowat: 16k, the default

        def fresh():
            c = p.connect()
            self.addCleanup(c.close)
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)  # accepted and answered
            return c

        before, had = fresh(), 16 * 1024
        self.assertEqual(self.lowat_of(p, before), had)
        for option, root, want in (("notsent_lowat=64k", "htdocs2", 64 * 1024),
                                   ("notsent_lowat=off", "htdocs", 0),
                                   ("", "htdocs2", 16 * 1024)):
            text = conf(workers, root).replace("%PORT%;", "%%PORT%% %s;" % option)
            self.reload_to(p, text.replace("%PORT%", str(self.port)),
                           b"two\n" if root == "htdocs2" else b"one\n")
            after = fresh()
            self.assertEqual(self.lowat_of(p, after), want, option)
            # A connection accepted before the reload keeps what it had.
            self.assertEqual(self.lowat_of(p, before), had, option)
            before, had = after, want

    def test_reload_applies_a_changed_notsent_lowat_single(self):
        self.lowat_reloads(1)

    def test_reload_applies_a_changed_notsent_lowat_workers(self):
        self.lowat_reloads(2)


if __name__ == "__main__":
    harness.main()
