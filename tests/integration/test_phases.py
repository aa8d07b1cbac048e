"""Every phase of a connection's one timer, with short timeouts: the request head must arrive
within request_read_timeout of its first byte; the body gets request_body_timeout between
reads; response_send_timeout bounds each stall while writing, not the whole response; the
keep-alive idle timeout; keepalive_requests; and the lingering close after an error, so the
client reads the error response rather than a reset, bounded by lingering_timeout.

Lower bounds show that the intended timer (not another one, nor an error) ended the
connection; upper bounds are generous for a sanitizer build on a loaded machine."""

import sys
import os
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

BIG = os.urandom(8 * 1024 * 1024)
MID = os.urandom(5 * 1024 * 1024)
FILES = {"a.txt": b"alpha\n", "big.bin": BIG, "mid.bin": MID}


def send_slowly(c, data, gap):
    for i in range(len(data)):
        c.send(data[i:i + 1])
        time.sleep(gap)  # the client's pace


class HeadDeadline(PorterTestCase):
    """request_read_timeout 1s: the deadline of a head starts at its first byte."""

    def setUp(self):
        self.p = self.start_porter("request_read_timeout 1s;\nkeepalive_timeout 30s;\n"
                                   "lingering_timeout 2s;", FILES)

    def test_head_started_late_is_timed_from_its_first_byte(self):
        # Connected 0.6 s before the first byte, the head takes 0.7 s more: 1.3 s after the
        # connect, but within 1 s of its first byte.
        with self.p.connect() as c:
            time.sleep(0.6)  # the client's pace, as said above
            raw = request("GET", "/a.txt")
            c.send(raw[:3])
            time.sleep(0.35)  # the client's pace
            c.send(raw[3:20])
            time.sleep(0.35)  # the client's pace
            c.send(raw[20:])
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")

    def test_trickle_gets_408_and_the_response_survives(self):
        # A byte every 0.1 s keeps arriving; the head is cut 1 s after its first byte, and
        # because porter lingers instead of closing over unread input, the 408 is read, not
        # lost to a reset.
        with self.p.connect() as c:
            c.send(b"G")
            start = time.monotonic()
            stop = threading.Event()

            def trickle():
                for ch in b"ET /a.txt HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                    if stop.is_set():
                        return
                    try:
                        c.sock.send(bytes([ch]))
                    except OSError:
                        return
                    time.sleep(0.1)  # the trickle's pace

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            try:
                r = c.read_response(timeout=6)
                elapsed = time.monotonic() - start
            finally:
                stop.set()
                t.join(5)
            self.assertStatus(r, 408)
            self.assertTrue(r.has_token("Connection", "close"), r)
            # Not extended by the trickle: 1 s from the first byte.
            self.assertTimedOut(elapsed, 1.0, what="request_read_timeout")

    def test_next_request_head_on_keepalive_gets_its_own_deadline(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
            # Idle for longer than request_read_timeout: the keep-alive timer applies here.
            self.assertOpen(c, wait=1.5)
            c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n")
            start = time.monotonic()
            r = c.read_response(timeout=6)
            elapsed = time.monotonic() - start
            self.assertStatus(r, 408)
            self.assertTimedOut(elapsed, 1.0, what="request_read_timeout")
            self.assertClosed(c, timeout=4)


class BodyTimeout(PorterTestCase):
    """request_body_timeout 1s bounds each wait for body bytes, not the whole body."""

    def setUp(self):
        self.p = self.start_porter("request_body_timeout 1s;\nrequest_read_timeout 30s;\n"
                                   "keepalive_timeout 30s;", FILES)

    def test_stalled_body_closes_the_connection(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt", headers=[("Content-Length", "1000")]) + b"x" * 100)
            # The handler answers at the end of the head; the body is discarded as it comes.
            r = c.read_response()
            self.assertStatus(r, 200)
            start = time.monotonic()
            closed, extra, _ = c.wait_closed(6)
            elapsed = time.monotonic() - start
            self.assertTrue(closed, "a stalled body was never cut off")
            self.assertEqual(extra, b"")
            # Timed from porter's last read of the body, a little before the client's clock.
            self.assertTimedOut(elapsed, 1.0, early=0.3, what="request_body_timeout")

    def test_slow_body_with_short_gaps_is_not_cut(self):
        with self.p.connect() as c:
            body = b"0123456"
            c.send(request("GET", "/a.txt", headers=[("Content-Length", str(len(body)))]))
            self.assertStatus(c.read_response(), 200)
            # 7 bytes, 0.4 s apart: 2.8 s in all, never 1 s without a byte.
            send_slowly(c, body, 0.4)
            c.send(request("GET", "/a.txt"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")

    def test_chunked_body_stall_closes(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt", headers=[("Transfer-Encoding", "chunked")]) +
                   b"5\r\nhello\r\n")
            self.assertStatus(c.read_response(), 200)
            closed, extra, elapsed = c.wait_closed(6)
            self.assertTrue(closed, "a stalled chunked body was never cut off")
            self.assertEqual(extra, b"")
            self.assertTimedOut(elapsed, 1.0, early=0.3, what="request_body_timeout")


class BodyNotBoundByHeadTimeout(PorterTestCase):
    """The body phase is request_body_timeout's, not request_read_timeout's."""

    def test_body_outlasts_request_read_timeout(self):
        p = self.start_porter("request_read_timeout 1s;\nrequest_body_timeout 10s;\n"
                              "keepalive_timeout 30s;", FILES)
        with p.connect() as c:
            body = b"abcdef"
            c.send(request("GET", "/a.txt", headers=[("Content-Length", str(len(body)))]))
            self.assertStatus(c.read_response(), 200)
            send_slowly(c, body, 0.45)  # 2.7 s
            c.send(request("GET", "/a.txt"))
            self.assertEqual(c.read_response().body, b"alpha\n")


class SendTimeout(PorterTestCase):
    """response_send_timeout 1s: each stall while writing, not the whole response."""

    def setUp(self):
        self.p = self.start_porter("response_send_timeout 1s;\nkeepalive_timeout 30s;", FILES)

    def test_reader_that_stops_is_cut_off(self):
        c = harness.Conn(self.p.host, self.p.port, 10, rcvbuf=32 * 1024)
        self.addCleanup(c.close)
        c.send(request("GET", "/big.bin"))
        head = c.read_head()
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        time.sleep(3.0)  # a stall three times response_send_timeout
        data = c.read_until_close(10)
        self.assertLess(len(c.buf) + len(data), len(BIG), "a stalled response was not cut off")

    def test_steady_slow_reader_gets_everything(self):
        # The client reads 64 KiB every 0.1 s (640 KiB/s): it never stalls for anything near
        # response_send_timeout (1 s), though the download takes about 8 s. Porter writes into
        # the kernel's send buffer (up to 4 MiB on loopback), which tells it "writable" again
        # only once a third of it has drained: more than a second at this pace. That is not a
        # stall of the client and must not cut the response.
        c = harness.Conn(self.p.host, self.p.port, 10, rcvbuf=32 * 1024)
        self.addCleanup(c.close)
        c.send(request("GET", "/mid.bin"))
        head = c.read_head()
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        got = bytearray(c.buf)
        c.buf = bytearray()
        start = time.monotonic()
        next_pause = 64 * 1024
        while len(got) < len(MID):
            try:
                data = c.sock.recv(64 * 1024)
            except ConnectionResetError:
                break
            if not data:
                break
            got += data
            if len(got) >= next_pause:
                time.sleep(0.1)  # the reader's pace
                next_pause += 64 * 1024
        self.assertEqual(len(got), len(MID),
                         "a client reading 64 KiB every 0.1 s was cut off (EOF after %.1f s) by "
                         "response_send_timeout 1s" % (time.monotonic() - start))
        self.assertTrue(bytes(got) == MID)
        # The connection is still usable.
        c.send(request("GET", "/a.txt"))
        self.assertEqual(c.read_response().body, b"alpha\n")


class KeepaliveLimits(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter("keepalive_timeout 1s;\nkeepalive_requests 3;\n"
                                   "request_read_timeout 30s;", FILES)

    def test_idle_timeout_after_each_response(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
            time.sleep(0.6)  # idle for most of keepalive_timeout, then a request restarts it
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
            start = time.monotonic()
            closed, extra, _ = c.wait_closed(5)
            elapsed = time.monotonic() - start
            self.assertTrue(closed, "idle keep-alive connection not closed")
            self.assertEqual(extra, b"", "an idle close must not send anything")
            # From the second response: the idle timer restarted after the request.
            self.assertTimedOut(elapsed, 1.0, early=0.3, what="keepalive_timeout")

    def test_keepalive_requests_ends_the_connection(self):
        with self.p.connect() as c:
            for i in range(3):
                c.send(request("GET", "/a.txt"))
                r = c.read_response()
                self.assertStatus(r, 200)
                if i < 2:
                    self.assertFalse(r.has_token("Connection", "close"), (i, r))
                else:
                    self.assertTrue(r.has_token("Connection", "close"),
                                    "the last allowed request must say Connection: close")
            self.assertClosed(c, timeout=3)

    def test_keepalive_requests_with_pipelining(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt") * 5)
            rs = c.read_responses(["GET"] * 3)
            self.assertEqual([r.status for r in rs], [200, 200, 200])
            self.assertTrue(rs[2].has_token("Connection", "close"))
            closed, extra, _ = c.wait_closed(3)
            self.assertTrue(closed)
            self.assertEqual(extra, b"", "requests past keepalive_requests were answered")


class LingeringClose(PorterTestCase):
    """After an error response porter half-closes and discards input for up to
    lingering_timeout, so a client still sending reads the response, not a reset."""

    def setUp(self):
        self.p = self.start_porter("lingering_timeout 1s;\nmax_request_body_length 1k;\n"
                                   "request_read_timeout 30s;", FILES)

    def test_client_still_sending_reads_the_error(self):
        for attempt in range(3):
            with self.p.connect() as c:
                head = request("POST", "/a.txt", headers=[("Content-Length", str(4 << 20))])
                c.send(head)
                sent = [0]
                stop = threading.Event()

                def pump():
                    chunk = b"z" * 65536
                    c.sock.settimeout(5)
                    while not stop.is_set() and sent[0] < (4 << 20):
                        try:
                            sent[0] += c.sock.send(chunk)
                        except OSError:
                            return

                t = threading.Thread(target=pump, daemon=True)
                t.start()
                # the body is arriving when the 413 goes out
                harness.wait_until(lambda: sent[0] > 0, 5, "the body on its way")
                try:
                    r = c.read_response(timeout=5)
                finally:
                    stop.set()
                    t.join(6)
                self.assertStatus(r, 413)
                self.assertTrue(r.has_token("Connection", "close"), r)

    def test_garbage_after_bad_request_does_not_destroy_the_response(self):
        with self.p.connect() as c:
            # A 400 on the first line, with 200 KiB more already on its way.
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n" + b"q" * (200 * 1024))
            r = c.read_response(timeout=5)
            self.assertStatus(r, 400)

    def test_lingering_is_bounded(self):
        with self.p.connect() as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
            r = c.read_response(timeout=5)
            self.assertStatus(r, 400)
            # The write side is shut: end of stream right after the response.
            closed, extra, _ = c.wait_closed(2)
            self.assertTrue(closed)
            self.assertEqual(extra, b"")
            # Keep sending: porter discards it while lingering, then closes for good and the
            # sends start failing with a reset.
            start = time.monotonic()
            failed_at = None
            while time.monotonic() - start < 6:
                try:
                    c.sock.send(b"more input ")
                except OSError:
                    failed_at = time.monotonic() - start
                    break
                time.sleep(0.05)  # the client's pace
            self.assertIsNotNone(failed_at, "porter lingered without bound")
            # porter's clock started at the 400, before the client's: 0.4 s early at most.
            self.assertTimedOut(failed_at, 1.0, early=0.4, margin=2.5, what="lingering_timeout")


if __name__ == "__main__":
    harness.main()
