"""Graceful stop: SIGTERM lets an in-flight download finish within shutdown_grace_period, closes
idle keep-alive connections at once, refuses new connections, and a second SIGTERM or SIGINT
stops at once. porter exits 0 with nothing leaked in every case."""

import sys
import hashlib
import os
import signal
import socket
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

BIG = os.urandom(20 * 1024 * 1024)
FILES = {"big.bin": BIG, "a.txt": b"alpha\n", "index.html": b"<html>i</html>\n"}


def small_rcvbuf_conn(p, rcvbuf=32 * 1024, timeout=30):
    """A connection whose receive buffer is small, so the server cannot push the whole file
    into the kernel at once: the download lasts as long as the reader makes it."""
    return harness.Conn(p.host, p.port, timeout, rcvbuf=rcvbuf)


def refused(p):
    try:
        socket.create_connection((p.host, p.port), 2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return True
    return False


class Signals(PorterTestCase):
    def test_sigterm_lets_download_finish(self):
        p = self.start_porter("shutdown_grace_period 5s;", FILES)
        c = small_rcvbuf_conn(p)
        self.addCleanup(c.close)
        c.send(request("GET", "/big.bin"))
        head = c.read_head()
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        self.assertIn(b"Content-Length: %d" % len(BIG), head)
        got = bytearray(c.buf)
        c.buf = bytearray()
        while len(got) < 512 * 1024:
            got += c.sock.recv(65536)
        p.signal(signal.SIGTERM)
        harness.wait_until(lambda: refused(p), 5, "new connections refused while stopping")
        self.assertTrue(p.alive(), "porter did not wait for the download:\n" + p.output)
        # Finish at a bounded pace (about 1.5 s), well inside the 5 s grace period.
        start = time.monotonic()
        while len(got) < len(BIG):
            data = c.sock.recv(1024 * 1024)
            if not data:
                break
            got += data
            if len(got) % (4 * 1024 * 1024) < len(data):
                time.sleep(0.2)  # the reader's pace
        self.assertEqual(len(got), len(BIG), "download cut short after SIGTERM")
        self.assertEqual(hashlib.sha256(bytes(got)).hexdigest(), hashlib.sha256(BIG).hexdigest())
        self.assertLess(time.monotonic() - start, 5.0)  # within the grace period: not cut
        closed, extra, _ = c.wait_closed(5)
        self.assertTrue(closed, "connection kept open after the last response while stopping")
        self.assertEqual(extra, b"")
        p.wait(10)
        p.check_exit()

    def test_sigterm_closes_idle_keepalive_at_once(self):
        p = self.start_porter("", FILES)  # default grace period: 10 s
        conns = []
        for _ in range(3):
            c = p.connect()
            self.addCleanup(c.close)
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
            conns.append(c)
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        for c in conns:
            closed, extra, _ = c.wait_closed(5)
            self.assertTrue(closed, "idle keep-alive connection not closed on SIGTERM")
            self.assertEqual(extra, b"")
        # At once, not at the 10 s grace period: 2.5 s and 3 s are the margins for ASan.
        self.assertLess(time.monotonic() - start, 2.5)
        p.wait(5)
        self.assertLess(time.monotonic() - start, 3.0, "porter waited for idle connections")
        p.check_exit()

    def test_sigterm_with_nothing_open(self):
        p = self.start_porter("", FILES)
        self.assertStatus(p.get("/a.txt"), 200)
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        p.wait(5)
        self.assertLess(time.monotonic() - start, 3.0)  # at once; 3 s of margin for ASan
        p.check_exit()

    def test_sigint_is_graceful_too(self):
        p = self.start_porter("", FILES)
        c = p.connect()
        self.addCleanup(c.close)
        c.send(request("GET", "/a.txt"))
        self.assertStatus(c.read_response(), 200)
        p.signal(signal.SIGINT)
        closed, _, _ = c.wait_closed(5)
        self.assertTrue(closed)
        p.wait(5)
        p.check_exit()

    def stalled_download(self, p):
        c = small_rcvbuf_conn(p)
        self.addCleanup(c.close)
        c.send(request("GET", "/big.bin"))
        head = c.read_head()
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        return c  # and never read again

    def second_signal(self, sig):
        p = self.start_porter("shutdown_grace_period 30s;", FILES)
        self.stalled_download(p)
        p.signal(signal.SIGTERM)
        time.sleep(1.0)  # a second of the grace period: porter must still be there
        self.assertTrue(p.alive(), "porter did not wait for the download in its grace period")
        start = time.monotonic()
        p.signal(sig)
        p.wait(10)
        # At once, not at the 30 s grace period: 3 s is the margin for ASan.
        self.assertLess(time.monotonic() - start, 3.0, "a second signal did not stop porter promptly")
        p.check_exit()

    def test_second_sigterm_stops_at_once(self):
        self.second_signal(signal.SIGTERM)

    def test_sigint_after_sigterm_stops_at_once(self):
        self.second_signal(signal.SIGINT)

    def test_grace_period_expires(self):
        p = self.start_porter("shutdown_grace_period 1s;", FILES)
        c = self.stalled_download(p)
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        p.wait(10)
        elapsed = time.monotonic() - start
        self.assertTimedOut(elapsed, 1.0, early=0.3, margin=3.0, what="shutdown_grace_period")
        p.check_exit()
        # The stalled download was cut, not completed.
        data = c.read_until_close(5)
        self.assertLess(len(data), len(BIG))

    def test_pipelined_requests_during_stop(self):
        # A connection mid-response when the stop begins gets its response, then is closed.
        p = self.start_porter("shutdown_grace_period 5s;", FILES)
        c = small_rcvbuf_conn(p)
        self.addCleanup(c.close)
        c.send(request("GET", "/big.bin") + request("GET", "/a.txt"))
        c.read_head()
        p.signal(signal.SIGTERM)
        harness.wait_until(lambda: refused(p), 5, "porter stopping (new connections refused)")
        body = c.read_exact(len(BIG), timeout=20)
        self.assertTrue(body == BIG)
        # The pipelined second request (possibly answered before the signal came) is either
        # answered or dropped with the connection; never left hanging.
        try:
            r = c.read_response(timeout=5)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")
        except harness.Closed:
            pass
        closed, _, _ = c.wait_closed(5)
        self.assertTrue(closed)
        p.wait(10)
        p.check_exit()


class PidFile(PorterTestCase):
    """`pid PATH`: the master's pid (the only process's with one worker), written before
    porter listens, kept while it runs (through reloads and replaced workers), removed at
    exit. A relative path starts from the prefix."""

    def pid_in(self, path):
        with open(path) as f:
            text = f.read()
        self.assertRegex(text, r"^\d+\n$")
        return int(text)

    def test_single_process(self):
        p = self.start_porter("pid run/porter.pid;\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n",
                              FILES, extra={"run/.keep": b""})
        path = os.path.join(p.tmp, "run", "porter.pid")
        self.assertEqual(self.pid_in(path), p.pid)
        marks = p.output.count("configuration reloaded")
        p.signal(signal.SIGHUP)
        harness.wait_until(lambda: p.output.count("configuration reloaded") > marks, 10,
                           lambda: "the reload reported:\n" + p.output)
        self.assertEqual(self.pid_in(path), p.pid)
        p.stop()
        self.assertFalse(os.path.exists(path), "the pid file outlived porter")

    def test_master_and_workers(self):
        p = self.start_porter("worker_processes 2;\npid @TMP@/porter.pid;\n"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n",
                              FILES)
        path = os.path.join(p.tmp, "porter.pid")
        workers = harness.wait_workers(p, 2)
        self.assertEqual(self.pid_in(path), p.pid)
        # A worker that dies and its replacement leave it alone ...
        os.kill(workers[0], signal.SIGKILL)
        workers = harness.wait_workers(p, 2, exclude=[workers[0]])
        self.assertEqual(self.pid_in(path), p.pid)
        # ... and so do a reload and the old workers that exit after it.
        p.signal(signal.SIGHUP)
        harness.wait_workers(p, 2, exclude=workers)
        self.assertStatus(p.get("/a.txt"), 200)
        self.assertEqual(self.pid_in(path), p.pid)
        p.stop()
        self.assertFalse(os.path.exists(path), "the pid file outlived porter")


if __name__ == "__main__":
    harness.main()
