"""Admission and overload: at max_concurrent porter stops accepting (clients wait in the
backlog) and resumes below it; under pressure idle keep-alive connections are closed first,
oldest first, and busy ones never; max_concurrent_per_client refuses a client's extra
connections with a 503; when the fd table is full (a lowered RLIMIT_NOFILE) the connections
already open are still served, the loop does not spin, and the clients that waited are served
once fds are free again."""

import sys
import os
import resource
import select
import subprocess
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

BIG = os.urandom(200 * 1024)  # larger than the file cache takes
FILES = {"a.txt": b"alpha\n", "index.html": b"<html>i</html>\n", "big.bin": BIG}
LONG = "request_read_timeout 30s;\nkeepalive_timeout 30s;\n"


def served(c, timeout=5):
    c.send(request("GET", "/a.txt"))
    r = c.read_response(timeout=timeout)
    return r.status == 200 and r.body == b"alpha\n"


def busy(p):
    """A connection in the middle of a request head: busy, never evicted."""
    c = p.connect()
    c.send(b"GET /a.txt HTTP/1.1\r\n")
    return c


def idle(p):
    """A keep-alive connection after one request: idle."""
    c = p.connect()
    c.send(request("GET", "/a.txt"))
    r = c.read_response()
    assert r.status == 200, r
    return c


def no_response(c, wait):
    """True if nothing at all arrives on `c` for `wait` seconds (and it stays open)."""
    return quiet([c], wait)


def quiet(conns, wait):
    """True if nothing at all (no byte, no close) arrives on any of `conns` for `wait`
    seconds, watched together."""
    r, _, _ = select.select([c.sock for c in conns], [], [], wait)
    return not r


def taken_in(p, n):
    """Waits until porter holds `n` client connections (it has accepted them)."""
    harness.wait_until(lambda: harness.accepted(p) == n, 5,
                       lambda: "porter holds %d connections, not %d" % (harness.accepted(p), n))


class MaxConcurrent(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter(LONG + "max_concurrent 4;", FILES)

    def conns(self, n, make):
        out = []
        for _ in range(n):
            c = make(self.p)
            self.addCleanup(c.close)
            out.append(c)
        return out

    def test_at_the_limit_clients_wait_then_are_served(self):
        held = self.conns(4, busy)
        taken_in(self.p, 4)
        # The fifth connects (the kernel completes the handshake) and waits in the backlog.
        w = self.p.connect()
        self.addCleanup(w.close)
        w.send(request("GET", "/a.txt"))
        self.assertTrue(no_response(w, 1.0), "a fifth connection was answered at max_concurrent 4")
        # One finishes and closes: the waiting client is taken in and served.
        held[0].send(b"Host: x\r\nConnection: close\r\n\r\n")
        self.assertStatus(held[0].read_response(), 200)
        start = time.monotonic()
        r = w.read_response(timeout=5)
        self.assertStatus(r, 200)
        # At once (milliseconds); 2 s is the margin for ASan on a loaded machine.
        self.assertLess(time.monotonic() - start, 2.0, "admission did not resume promptly")
        # The other held connections were not disturbed.
        for c in held[1:]:
            c.send(b"Host: x\r\n\r\n")
            self.assertStatus(c.read_response(), 200)

    def test_several_waiters_are_all_served_in_turn(self):
        held = self.conns(4, busy)
        taken_in(self.p, 4)
        waiters = []
        for _ in range(6):
            w = self.p.connect()
            self.addCleanup(w.close)
            w.send(request("GET", "/a.txt", close=True))
            waiters.append(w)
        # Watched for half a second together: none is taken in or answered meanwhile.
        self.assertTrue(quiet(waiters, 0.5), "a waiter was answered at max_concurrent 4")
        self.assertEqual(harness.accepted(self.p), 4)
        for c in held:
            c.send(b"Host: x\r\nConnection: close\r\n\r\n")
            self.assertStatus(c.read_response(), 200)
        for w in waiters:
            r = w.read_response(timeout=5)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")

    def test_idle_connections_are_evicted_oldest_first(self):
        # Each is idle once its client has read the answer, so before the next one connects.
        a = idle(self.p)
        self.addCleanup(a.close)
        b = idle(self.p)
        self.addCleanup(b.close)
        c = idle(self.p)
        self.addCleanup(c.close)
        # a serves another request: now b has been idle the longest, then c, then a.
        self.assertTrue(served(a))
        x = busy(self.p)
        self.addCleanup(x.close)
        taken_in(self.p, 4)
        order = []
        for i in range(3):
            n = self.p.connect()
            self.addCleanup(n.close)
            self.assertTrue(served(n), "a new client was not served at the limit")
            for name, conn in (("a", a), ("b", b), ("c", c)):
                if name not in order and conn.wait_closed(0.3)[0]:
                    order.append(name)
            self.assertEqual(len(order), i + 1, "closed so far: %r" % order)
        self.assertEqual(order, ["b", "c", "a"], "idle connections not evicted oldest first")
        # The busy one was never touched.
        x.send(b"Host: x\r\n\r\n")
        self.assertStatus(x.read_response(), 200)

    def test_evicted_idle_connection_gets_no_bytes(self):
        a = idle(self.p)
        self.addCleanup(a.close)
        held = self.conns(3, busy)
        n = self.p.connect()
        self.addCleanup(n.close)
        self.assertTrue(served(n))
        closed, extra, _ = a.wait_closed(3)
        self.assertTrue(closed, "the idle connection was not evicted")
        self.assertEqual(extra, b"", "an evicted idle connection must be closed silently")
        for c in held:
            self.assertOpen(c, wait=0.1)

    def test_busy_connections_are_never_evicted(self):
        held = self.conns(4, busy)
        taken_in(self.p, 4)
        w = self.p.connect()
        self.addCleanup(w.close)
        w.send(request("GET", "/a.txt"))
        # A second with a client waiting: no busy connection is closed to make room.
        self.assertTrue(quiet(held, 1.0), "a busy connection was closed or answered")
        for c in held:
            c.send(b"Host: x\r\n\r\n")
            self.assertStatus(c.read_response(), 200)
        # All four are idle now: the waiting client evicts one and is served.
        self.assertStatus(w.read_response(timeout=5), 200)


def listen_queue(port):
    """(waiting, backlog) of the listening socket on 127.0.0.1:port, from ss(8); None if ss is
    missing."""
    if not harness.tool("ss"):
        return None
    out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=10).stdout.decode()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and f[3].endswith(":%d" % port):
            return int(f[1]), int(f[2])
    raise AssertionError("no listening socket on port %d in:\n%s" % (port, out))


class Backlog(PorterTestCase):
    def test_max_waiting_is_the_backlog_and_clients_wait_there(self):
        p = self.start_porter(LONG + "max_concurrent 2;\nmax_waiting 7;", FILES)
        q = listen_queue(p.port)
        if q is None:
            self.skipTest("ss is not installed")
        self.assertEqual(q, (0, 7), "max_waiting 7 is not the listen backlog")
        held = [busy(p), busy(p)]
        waiters = []
        for _ in range(3):
            w = p.connect()
            w.send(request("GET", "/a.txt", close=True))
            waiters.append(w)
        self.addCleanup(lambda: [c.close() for c in held + waiters])
        # Accepting is paused: the three wait in the kernel's queue, not in porter.
        harness.wait_until(lambda: listen_queue(p.port) == (3, 7), 5,
                           lambda: "three in the backlog: %r" % (listen_queue(p.port),))
        self.assertEqual(harness.accepted(p), 2)
        for c in held:
            c.send(b"Host: x\r\nConnection: close\r\n\r\n")
            self.assertStatus(c.read_response(), 200)
        for w in waiters:
            self.assertStatus(w.read_response(timeout=5), 200)
        self.assertEqual(listen_queue(p.port), (0, 7))


class PerClient(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter(LONG + "max_concurrent_per_client 2;", FILES)

    def test_extra_connection_gets_503_then_close(self):
        a, b = idle(self.p), idle(self.p)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        with self.p.connect() as c:
            r = c.read_response(timeout=5)
            self.assertStatus(r, 503)
            self.assertTrue(r.has_token("Connection", "close"), r)
            self.assertClosed(c, timeout=3)
        # The two admitted ones still work.
        self.assertTrue(served(a))
        self.assertTrue(served(b))

    def test_a_slot_frees_when_a_connection_closes(self):
        a, b = idle(self.p), idle(self.p)
        self.addCleanup(b.close)
        with self.p.connect() as c:
            self.assertStatus(c.read_response(timeout=5), 503)
        a.close()
        taken_in(self.p, 1)  # porter has seen the close
        with self.p.connect() as c:
            self.assertTrue(served(c), "the freed slot was not given back")
            # And the cap holds again.
            with self.p.connect() as d:
                self.assertStatus(d.read_response(timeout=5), 503)

    def test_other_addresses_are_counted_apart(self):
        a, b = idle(self.p), idle(self.p)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        for src in ("127.0.0.2", "127.0.0.3"):
            try:
                x = harness.connect_from(self.p.host, self.p.port, src)
            except OSError as e:
                self.skipTest("cannot bind %s: %s" % (src, e))
            y = harness.connect_from(self.p.host, self.p.port, src)
            self.addCleanup(x.close)
            self.addCleanup(y.close)
            self.assertTrue(served(x), "a client from %s was refused" % src)
            self.assertTrue(served(y))
            z = harness.connect_from(self.p.host, self.p.port, src)
            self.addCleanup(z.close)
            self.assertStatus(z.read_response(timeout=5), 503)

    def test_many_clients_coming_and_going(self):
        # Counts must return to zero: after 40 rounds of two connections each (closed by
        # porter, so the count is down before the client sees the end), still exactly two.
        for i in range(40):
            a, b = self.p.connect(), self.p.connect()
            for c in (a, b):
                c.send(request("GET", "/a.txt", close=True))
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertClosed(c, timeout=3)
                c.close()
        a, b = idle(self.p), idle(self.p)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        with self.p.connect() as c:
            self.assertStatus(c.read_response(timeout=5), 503)


NOFILE = 48


class LimitedPorter(harness.Porter):
    """A porter whose RLIMIT_NOFILE is NOFILE."""

    def _preexec(self):
        super()._preexec()
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class FdExhaustion(PorterTestCase):
    def start_limited(self):
        p = LimitedPorter(LONG, FILES)
        self.addCleanup(p.cleanup)
        self.addCleanup(self._stop_if_passing, p)
        return p

    def hold(self, p, n, path="/a.txt"):
        """Opens n connections that each send a request head without its final empty line: the
        ones porter takes in are busy reading (never idle, so never evicted), the others wait in
        the backlog. Returns them once porter has taken in all of them, or as many as its
        descriptors allow (it then pauses accepting and logs it)."""
        taken = harness.accepted(p)
        episodes = p.output.count("accept() failed")
        conns = []
        for _ in range(n):
            c = p.connect()
            self.addCleanup(c.close)
            c.send(("GET %s HTTP/1.1\r\nHost: localhost\r\n" % path).encode())
            conns.append(c)
        harness.wait_until(lambda: harness.accepted(p) == taken + n
                           or p.output.count("accept() failed") > episodes, 10,
                           lambda: "porter took in %d of %d and did not report a full fd table"
                           % (harness.accepted(p) - taken, n))
        return conns

    def assert_reported(self, p):
        n = p.output.count("accept() failed")
        self.assertGreaterEqual(n, 1, "the full fd table was not reported:\n" + p.output[-2000:])
        self.assertLess(n, 20, "accept() failures were logged %d times" % n)

    def test_full_fd_table_keeps_old_connections_and_recovers(self):
        p = self.start_limited()
        old = self.hold(p, 4)  # taken in before the table fills
        held = self.hold(p, NOFILE + 20)

        # No busy loop while the table is full and clients wait (the CPU time of a 1.5 s
        # stretch: waiting is the behaviour measured).
        cpu0 = harness.proc_cpu_seconds(p.pid)
        time.sleep(1.5)  # the stretch measured
        cpu = harness.proc_cpu_seconds(p.pid) - cpu0
        self.assertLess(cpu, 0.5, "porter used %.2f s of CPU in 1.5 s with a full fd table" % cpu)

        # The connections already open are still served, files opened from the reserve.
        for c in old:
            c.send(b"\r\n")
            r = c.read_response(timeout=5)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")

        # Every waiting client is taken in and served: each one answered goes idle and gives its
        # descriptor up to the next.
        for c in held:
            c.send(b"\r\n")
        for c in held:
            r = c.read_response(timeout=10)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")
        with p.connect() as c:
            self.assertTrue(served(c))
        self.assert_reported(p)

    def test_idle_connections_give_way_under_fd_pressure(self):
        # Like max_concurrent: with clients waiting for a descriptor, idle keep-alive
        # connections are closed, the longest idle first (their clients simply reconnect).
        p = self.start_limited()
        idle_conns = [idle(p) for _ in range(4)]
        for c in idle_conns:
            self.addCleanup(c.close)
        self.hold(p, NOFILE + 20)
        for c in idle_conns:
            closed, extra, _ = c.wait_closed(5)
            self.assertTrue(closed, "an idle connection kept its descriptor while clients waited")
            self.assertEqual(extra, b"")
        self.assert_reported(p)

    def test_recovers_twice(self):
        p = self.start_limited()
        with p.connect() as c:
            self.assertTrue(served(c))
        for round_ in range(2):
            held = self.hold(p, NOFILE + 10)
            for c in held:
                c.send(b"\r\n")
            for c in held:
                self.assertStatus(c.read_response(timeout=10), 200)
                c.close()
            harness.wait_until(lambda: harness.accepted(p) == 0, 5, "every connection closed")
        with p.connect() as c:
            self.assertTrue(served(c))
        self.assert_reported(p)

    def test_open_connections_can_still_open_files(self):
        # Serving a request may need an fd of its own (a file too large for the file cache):
        # a connection already open must not get a 500 because accepted clients took every fd.
        p = self.start_limited()
        old = self.hold(p, 1, "/big.bin")[0]
        self.hold(p, NOFILE + 20)
        old.send(b"\r\n")
        r = old.read_response(timeout=5)
        self.assertEqual(r.status, 200,
                         "a connection open before the fd table filled got %d for a file it could "
                         "not open; porter kept no fd in reserve:\n%s" % (r.status, p.output[-600:]))
        self.assertEqual(r.body, BIG)
        self.assert_reported(p)

    def test_clients_taken_in_near_the_limit_are_served(self):
        # Cold file cache: every request needs an open(). Clients that porter accepts while the
        # table fills must be answered 200, not 500; the others wait and are served in turn.
        p = self.start_limited()
        conns = []
        for _ in range(NOFILE + 20):
            c = p.connect()
            self.addCleanup(c.close)
            conns.append(c)
        # porter takes in what its descriptors allow, then pauses accepting and says so.
        harness.wait_until(lambda: "accept() failed" in p.output, 10,
                           lambda: "a full fd table reported:\n" + p.output[-2000:])
        for c in conns:
            c.send(request("GET", "/a.txt"))
        statuses = [c.read_response(timeout=10).status for c in conns]
        self.assertEqual(sorted(set(statuses)), [200],
                         "clients accepted near the fd limit got %r:\n%s"
                         % (sorted(set(statuses)), p.output[-600:]))
        self.assert_reported(p)


if __name__ == "__main__":
    harness.main()
