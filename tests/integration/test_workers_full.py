"""worker_processes in full: `auto` starts one worker per CPU; connections spread over every
worker (SO_REUSEPORT, a socket per worker); a worker that dies is replaced and its replacement
accepts on the dead one's socket, including the clients that queued there meanwhile; the other
workers are not disturbed; a stop lets downloads on every worker finish; SIGQUIT stops without
closing a connection a client may be sending on; SIGUSR1 reopens the logs of every worker."""

import sys
import os
import select
import signal
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

BIG = os.urandom(4 * 1024 * 1024)
FILES = {"a.txt": b"alpha\n", "index.html": b"<html>w</html>\n", "big.bin": BIG}


def conf(n, extra="", server_extra=""):
    return ("worker_processes %s;\n%s"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n%s}\n" % (n, extra, server_extra))


def stopping(workers):
    """True once every worker has closed its listening sockets: the stop reached them all."""
    return all(not harness.listening_sockets(w) for w in workers if harness.proc_alive(w))


def sockets_of(pids):
    return {pid: harness.proc_fd_count(pid, "socket") for pid in pids}


class Workers(PorterTestCase):
    def start(self, n, extra="", server_extra="", **kw):
        p = self.start_porter(conf(n, extra, server_extra), FILES, **kw)
        count = os.sysconf("SC_NPROCESSORS_ONLN") if n == "auto" else n
        workers = harness.wait_workers(p, count if count > 1 else 0)
        return p, workers

    def keepalive_conns(self, p, n):
        conns = []
        for _ in range(n):
            c = p.connect()
            self.addCleanup(c.close)
            c.send(request("GET", "/a.txt"))
            conns.append(c)
        for c in conns:
            r = c.read_response()
            self.assertStatus(r, 200)
        return conns

    def test_auto_is_one_worker_per_cpu(self):
        p, workers = self.start("auto")
        ncpu = os.sysconf("SC_NPROCESSORS_ONLN")
        self.assertEqual(len(workers), ncpu if ncpu > 1 else 0)
        for _ in range(10):
            self.assertStatus(p.get("/a.txt"), 200)

    def test_connections_spread_over_every_worker(self):
        p, workers = self.start(3)
        before = sockets_of(workers)
        self.keepalive_conns(p, 30)
        after = sockets_of(workers)
        per = {w: after[w] - before[w] for w in workers}
        self.assertEqual(sum(per.values()), 30, per)
        self.assertTrue(all(n > 0 for n in per.values()),
                        "a worker got no connection out of 30: %r" % per)

    def test_replaced_workers_accept_on_their_sockets(self):
        p, workers = self.start(3)
        gone = []
        for victim in list(workers):
            os.kill(victim, signal.SIGKILL)
            gone.append(victim)
            workers = harness.wait_workers(p, 3, exclude=gone)
        # Every socket has a live worker behind it: 30 fresh clients are all served promptly
        # (one hashed to a socket nobody watches would hang).
        for i in range(30):
            c = harness.Conn(p.host, p.port, 3)
            try:
                c.send(request("GET", "/a.txt", close=True))
                r = c.read_response(timeout=3)
            finally:
                c.close()
            self.assertStatus(r, 200)
        self.assertEqual(p.output.count("starting another"), 3, p.output)

    def test_clients_queued_on_a_dead_workers_socket_are_served(self):
        p, workers = self.start(2)
        victim = workers[0]
        os.kill(victim, signal.SIGSTOP)
        self.addCleanup(lambda: harness.proc_alive(victim) and os.kill(victim, signal.SIGKILL))
        conns = []
        for _ in range(20):
            c = p.connect()
            self.addCleanup(c.close)
            c.send(request("GET", "/a.txt", close=True))
            conns.append(c)

        def settled():
            # Every client is answered by the live worker or waits in the stopped one's queue.
            answered = [c for c in conns if select.select([c.sock], [], [], 0)[0]]
            return len(answered) + harness.backlog(p.port) == len(conns)

        harness.wait_until(settled, 5, lambda: "20 clients answered or queued (%d queued)"
                           % harness.backlog(p.port))
        waiting = [c for c in conns if not select.select([c.sock], [], [], 0)[0]]
        self.assertTrue(waiting, "no client hashed to the stopped worker's socket; cannot tell")
        os.kill(victim, signal.SIGKILL)
        harness.wait_workers(p, 2, exclude=[victim])
        for c in conns:
            r = c.read_response(timeout=5)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")

    def test_a_crash_does_not_disturb_the_other_workers(self):
        p, workers = self.start(2)
        base = sockets_of(workers)
        downloads = []
        per = {}
        # Downloads on both workers, or the crash of one says nothing about the other's: the
        # kernel spreads connections by a hash, so open them until each worker has three.
        while len(downloads) < 40 and (len(per) < 2 or min(per.values()) < 3):
            c = harness.Conn(p.host, p.port, 10, rcvbuf=32 * 1024)
            self.addCleanup(c.close)
            c.send(request("GET", "/big.bin"))
            self.assertTrue(c.read_head().startswith(b"HTTP/1.1 200 "))
            downloads.append(c)
            now = sockets_of(workers)
            per = {w: now[w] - base[w] for w in workers}
        self.assertEqual(sum(per.values()), len(downloads), per)
        self.assertGreaterEqual(min(per.values()), 3,
                                "the downloads did not reach both workers: %r" % per)
        victim, survivor = workers
        os.kill(victim, signal.SIGKILL)
        harness.wait_workers(p, 2, exclude=[victim])
        complete = 0
        for c in downloads:
            try:
                body = c.read_exact(len(BIG), timeout=10)
                self.assertTrue(body == BIG)
                complete += 1
            except harness.Closed:
                pass  # one of the killed worker's
        # The survivor's downloads all complete; the victim's were cut (each got 32 KiB of
        # receive buffer and 4 MiB to send: none was done before the kill).
        self.assertEqual(complete, per[survivor],
                         "downloads on the surviving worker were cut by the other's crash")
        for _ in range(10):
            self.assertStatus(p.get("/a.txt"), 200)

    def test_stop_lets_downloads_on_every_worker_finish(self):
        p, workers = self.start(2, "shutdown_grace_period 10s;\n")
        before = sockets_of(workers)
        downloads = []
        for _ in range(10):
            c = harness.Conn(p.host, p.port, 15, rcvbuf=32 * 1024)
            self.addCleanup(c.close)
            c.send(request("GET", "/big.bin"))
            self.assertTrue(c.read_head().startswith(b"HTTP/1.1 200 "))
            downloads.append(c)
        after = sockets_of(workers)
        self.assertTrue(all(after[w] > before[w] for w in workers),
                        "the downloads did not reach both workers: %r %r" % (before, after))
        p.signal(signal.SIGTERM)
        harness.wait_until(lambda: stopping(workers), 5, "the workers stopping")
        for c in downloads:
            body = c.read_exact(len(BIG), timeout=15)
            self.assertTrue(body == BIG, "a download was cut by the stop")
            closed, extra, _ = c.wait_closed(5)
            self.assertTrue(closed)
        p.wait(10)
        p.check_exit()
        self.assertEqual([w for w in workers if harness.proc_alive(w)], [])

    def test_stop_closes_idle_connections_on_every_worker(self):
        p, workers = self.start(3)
        conns = self.keepalive_conns(p, 12)
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        for c in conns:
            closed, extra, _ = c.wait_closed(5)
            self.assertTrue(closed)
            self.assertEqual(extra, b"")
        p.wait(10)
        # At once, not at the 10 s grace period: 4 s is the margin for ASan and three workers.
        self.assertLess(time.monotonic() - start, 4.0)
        p.check_exit()

    def test_second_sigterm_stops_every_worker_at_once(self):
        p, workers = self.start(2, "shutdown_grace_period 30s;\n")
        stalled = []
        for _ in range(6):
            c = harness.Conn(p.host, p.port, 10, rcvbuf=16 * 1024)
            self.addCleanup(c.close)
            c.send(request("GET", "/big.bin"))
            self.assertTrue(c.read_head().startswith(b"HTTP/1.1 200 "))
            stalled.append(c)  # and never read again
        p.signal(signal.SIGTERM)
        time.sleep(1.0)  # a second of the grace period: porter must still be there
        self.assertTrue(p.alive(), "porter did not wait for the stalled downloads")
        self.assertTrue(any(harness.proc_alive(w) for w in workers))
        start = time.monotonic()
        p.signal(signal.SIGTERM)
        p.wait(10)
        # Not at the 30 s grace period: 3 s is the margin for ASan and the workers.
        self.assertLess(time.monotonic() - start, 3.0, "a second SIGTERM did not stop at once")
        p.check_exit()
        self.assertEqual([w for w in workers if harness.proc_alive(w)], [])

    def sigquit_keeps_idle_connections(self, n):
        p, workers = self.start(n, "keepalive_timeout 3s;\n")
        conns = self.keepalive_conns(p, 6)
        p.signal(signal.SIGQUIT)
        harness.wait_until(lambda: stopping(workers or [p.pid]), 5, "porter stopping")
        self.assertTrue(p.alive())
        # A request crossing the stop is answered, and told the connection ends.
        for c in conns:
            c.send(request("GET", "/a.txt"))
            r = c.read_response(timeout=5)
            self.assertStatus(r, 200)
            self.assertTrue(r.has_token("Connection", "close"), r)
            closed, _, _ = c.wait_closed(3)
            self.assertTrue(closed)
        p.wait(10)
        p.check_exit()

    def test_sigquit_answers_requests_on_idle_connections_single(self):
        self.sigquit_keeps_idle_connections(1)

    def test_sigquit_answers_requests_on_idle_connections_workers(self):
        self.sigquit_keeps_idle_connections(2)

    def test_sigquit_exits_after_keepalive_timeout(self):
        p, workers = self.start(2, "keepalive_timeout 1s;\n")
        conns = self.keepalive_conns(p, 4)
        # The last connection's idle time starts after its response, so after this request.
        start = time.monotonic()
        conns[-1].send(request("GET", "/a.txt"))
        self.assertStatus(conns[-1].read_response(), 200)
        p.signal(signal.SIGQUIT)
        # The idle connections are not closed by the signal but at their keep-alive timeout
        # (1 s): porter exits after it.
        p.wait(10)
        elapsed = time.monotonic() - start
        self.assertTimedOut(elapsed, 1.0, margin=3.0, what="the exit at keepalive_timeout")
        p.check_exit()

    def reopen_logs(self, n):
        extra = {"logs/.keep": b""}
        p = self.start_porter(
            "worker_processes %d;\nerror_log @TMP@/logs/error.log info;\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    access_log @TMP@/logs/access.log;\n}\n" % n,
            FILES, extra=extra, log_file="@TMP@/logs/error.log")
        workers = harness.wait_workers(p, n if n > 1 else 0)
        logs = os.path.join(p.tmp, "logs")

        def hit(tag, count):
            for i in range(count):
                self.assertEqual(p.get("/%s-%d" % (tag, i)).status, 404)

        hit("old", 20)
        # Access logs are flushed once a second: all 20 lines are out before the rotation.
        old_path = os.path.join(logs, "access.log")
        harness.wait_until(lambda: open(old_path).read().count("GET /old-") == 20, 5,
                           "the 20 old lines flushed")
        os.rename(os.path.join(logs, "access.log"), os.path.join(logs, "access.log.1"))
        os.rename(os.path.join(logs, "error.log"), os.path.join(logs, "error.log.1"))
        p.signal(signal.SIGUSR1)
        # Reopened when no process of porter holds a rotated file any more.
        procs = [p.pid] + workers
        harness.wait_until(lambda: not harness.holds_path(procs, ".log.1"), 5,
                           "every process reopened its logs")
        hit("new", 20)
        path = os.path.join(logs, "access.log")
        ok = harness.wait_for(lambda: os.path.exists(path) and
                              open(path).read().count("GET /new-") == 20, 5)
        with open(os.path.join(logs, "access.log.1")) as f:
            old_text = f.read()
        new_text = open(path).read() if os.path.exists(path) else ""
        self.assertTrue(ok, "after SIGUSR1 the access log was not reopened by every worker:\n"
                        "new file: %d of 20 new requests; old file: %d" %
                        (new_text.count("GET /new-"), old_text.count("GET /new-")))
        self.assertEqual(old_text.count("GET /old-"), 20)
        self.assertEqual(old_text.count("GET /new-"), 0)
        self.assertEqual(new_text.count("GET /old-"), 0)
        # Error messages (missing files at info) go to the new error log too.
        err_path = os.path.join(logs, "error.log")
        self.assertTrue(harness.wait_for(lambda: os.path.exists(err_path) and
                                         "/new-" in open(err_path).read(), 5),
                        "the error log was not reopened")
        with open(os.path.join(logs, "error.log.1")) as f:
            self.assertNotIn("/new-", f.read())
        return p

    def test_sigusr1_reopens_logs_single(self):
        self.reopen_logs(1)

    def test_sigusr1_reopens_logs_workers(self):
        self.reopen_logs(2)


if __name__ == "__main__":
    harness.main()
