"""Timeouts: a stalled request head gets 408 and the connection ends; a slowloris trickle does
not extend the head's deadline; an idle keep-alive connection is closed silently. Upper bounds
are generous (sanitizer build, loaded machine); lower bounds show the timer, not an error,
closed the connection."""

import shutil
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

FILES = {"index.html": b"<html>index</html>\n", "a.txt": b"alpha\n"}


class RequestReadTimeout(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter("request_read_timeout 1s;\nkeepalive_timeout 30s;", FILES)

    def test_half_request_line_gets_408(self):
        with self.p.connect() as c:
            start = time.monotonic()
            c.send(b"GET /ind")
            r = c.read_response(timeout=6)
            elapsed = time.monotonic() - start
            self.assertStatus(r, 408)
            self.assertTrue(r.has_token("Connection", "close"), r)
            self.assertClosed(c, timeout=3)
            elapsed_close = time.monotonic() - start
            self.assertTimedOut(elapsed, 1.0, margin=3.0, what="request_read_timeout")
            self.assertTimedOut(elapsed_close, 1.0, margin=3.0, what="the close after the 408")

    def test_headers_without_end_get_408(self):
        with self.p.connect() as c:
            start = time.monotonic()
            c.send(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n")
            r = c.read_response(timeout=6)
            elapsed = time.monotonic() - start
            self.assertStatus(r, 408)
            self.assertTimedOut(elapsed, 1.0, margin=3.0, what="request_read_timeout")
            self.assertClosed(c, timeout=3)

    def test_slowloris_is_not_extended(self):
        with self.p.connect() as c:
            c.send(b"GET /a.txt HTTP/1.1\r\n")
            start = time.monotonic()
            trickle = b"X-Slow: " + b"a" * 100
            got = b""
            closed_at = None
            for i in range(len(trickle)):
                try:
                    c.send(trickle[i:i + 1])
                except OSError:
                    closed_at = time.monotonic()
                    break
                closed, extra, _ = c.wait_closed(0.3)
                got += extra
                if closed:
                    closed_at = time.monotonic()
                    break
                if time.monotonic() - start > 8:
                    break
            self.assertIsNotNone(closed_at, "a trickling client was never cut off")
            elapsed = closed_at - start
            # Not extended by the trickle.
            self.assertTimedOut(elapsed, 1.0, margin=2.5, what="request_read_timeout")
            if got:  # the 408 may be lost to a reset if bytes were still arriving
                self.assertTrue(got.startswith(b"HTTP/1.1 408 "), got[:100])

    def test_new_connection_sending_nothing_is_closed(self):
        with self.p.connect() as c:
            start = time.monotonic()
            closed, extra, _ = c.wait_closed(6)
            elapsed = time.monotonic() - start
            self.assertTrue(closed, "an idle new connection was never closed")
            self.assertTimedOut(elapsed, 1.0, margin=3.0, what="request_read_timeout")
            # Nothing was asked, so at most a 408; never another status.
            self.assertTrue(extra == b"" or extra.startswith(b"HTTP/1.1 408 "), extra[:100])

    def test_completed_request_is_not_cut_by_request_timer(self):
        # Keep-alive waiting uses keepalive_timeout (30 s) after a request, not the 1 s timer.
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 200)
            self.assertOpen(c, wait=2.0)
            c.send(request("GET", "/a.txt"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")

    def test_slow_but_timely_request_is_served(self):
        with self.p.connect() as c:
            raw = request("GET", "/a.txt")
            half = len(raw) // 2
            c.send(raw[:half])
            time.sleep(0.4)  # the client's pace: the head is slow but within its deadline
            c.send(raw[half:])
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")


class KeepaliveTimeout(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter("keepalive_timeout 1s;\nrequest_read_timeout 30s;", FILES)

    def test_idle_keepalive_closed(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt"))
            r = c.read_response()
            self.assertStatus(r, 200)
            start = time.monotonic()
            closed, extra, _ = c.wait_closed(6)
            elapsed = time.monotonic() - start
            self.assertTrue(closed, "idle keep-alive connection not closed")
            self.assertEqual(extra, b"", "an idle close must not send a response")
            self.assertTimedOut(elapsed, 1.0, early=0.3, margin=3.0, what="keepalive_timeout")

    def test_activity_resets_idle_timer(self):
        with self.p.connect() as c:
            for _ in range(4):
                c.send(request("GET", "/a.txt"))
                self.assertStatus(c.read_response(), 200)
                time.sleep(0.5)  # idle, but for less than keepalive_timeout
            # 2 s of life in total, never 1 s idle.
            c.send(request("GET", "/a.txt"))
            self.assertEqual(c.read_response().body, b"alpha\n")

    def test_pipelined_then_idle(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt") * 3)
            rs = c.read_responses(["GET"] * 3)
            self.assertEqual([r.status for r in rs], [200] * 3)
            closed, extra, elapsed = c.wait_closed(6)
            self.assertTrue(closed)
            self.assertEqual(extra, b"")
            # Idle from the third response on.
            self.assertTimedOut(elapsed, 1.0, early=0.3, margin=3.0, what="keepalive_timeout")


class DeferredListen(PorterTestCase):
    """`listen ... deferred` (TCP_DEFER_ACCEPT): porter sees a connection with its first bytes;
    a client that sends nothing is still accepted after about a second, and then meets
    request_read_timeout like any other."""

    def setUp(self):
        self.p = self.start_porter(
            "server {\n    listen 127.0.0.1:0 deferred;\n    root htdocs;\n"
            "    request_read_timeout 1s;\n}\n", FILES)

    def test_requests_are_served(self):
        with self.p.connect() as c:
            for _ in range(2):
                c.send(request("GET", "/a.txt"))
                self.assertEqual(c.read_response().body, b"alpha\n")
        self.assertStatus(self.p.get("/index.html"), 200)

    @unittest.skipUnless(shutil.which("ss"), "needs ss (iproute2)")
    def test_options_given_by_any_server_on_the_address(self):
        # As in nginx, one listen of an address gives its socket options, whichever server.
        port = self.reserve_port()  # two servers name the address: port 0 would be two sockets
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:%d;\n    root htdocs;\n}\n"
            "server {\n    listen 127.0.0.1:%d deferred;\n    server_name b;\n    root htdocs;\n}\n"
            % (port, port), FILES)
        self.assertTrue(harness.silent_client_waits_in_the_kernel(port),
                        "the silent client was accepted: deferred not applied")
        self.assertEqual(p.get("/a.txt").body, b"alpha\n")

    def test_silent_connection_is_accepted_late_and_closed(self):
        with self.p.connect() as c:
            closed, extra, elapsed = c.wait_closed(10)
            self.assertTrue(closed, "a silent connection was never closed")
            self.assertTrue(extra == b"" or extra.startswith(b"HTTP/1.1 408 "), extra[:100])
            self.assertGreater(elapsed, 0.9)  # the timeout, not an error, closed it


if __name__ == "__main__":
    harness.main()
