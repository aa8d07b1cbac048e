"""What porter refuses in an HTTP/1.1 request, and in an upstream's response (RFC 9110, RFC 9112):
every request another server could frame or route differently is answered with the one status
the RFC names and the connection is closed (what follows cannot be trusted); each refusal is
logged at info with the client's address and the reason, and counted on the status page. A
proxied request that is refused never reaches the backend; an upstream's response that is
refused is a 502 and its connection is not reused.

Each case runs on a fresh connection. The statuses are those docs/strictness.md lists.
"""

import os
import socket
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402
from test_proxy import Backend, RawBackend, read_request_head  # noqa: E402

FILES = {"index.html": b"<html>index</html>\n", "a.txt": b"alpha\n"}


class Requests(PorterTestCase):
    """One porter with a proxy location, the status page, and a location that answers with the
    name it is asked under."""

    @classmethod
    def setUpClass(cls):
        cls.backend = Backend()
        conf = """
            error_log stderr info;
            upstream app { server %s; }
            server {
                listen 127.0.0.1:0;
                server_name localhost;
                root htdocs;
                location /porter-status { status; }
                location /app/ { proxy_pass http://app/; }
                location = /host { return 200 "$host"; }
                access_log @TMP@/access.log;
            }
        """ % cls.backend.address
        cls.p = harness.Porter(conf, FILES)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()
            cls.backend.stop()

    def setUp(self):
        with self.backend.lock:
            del self.backend.requests[:]

    def reject(self, raw, status, reason=None, method="GET"):
        """Sends `raw` on a fresh connection and expects exactly one answer, `status` with
        Connection: close, then the close (a request sent after it gets no answer). With
        `reason`, the error log must say it, with the client's address. Returns the response."""
        log_before = len(self.p.output)
        with self.p.connect() as c:
            c.send(raw)
            r = c.read_response(method)
            self.assertEqual(r.status, status, "request %r: got %r %r" % (raw[:160], r, r.body[:200]))
            self.assertTrue(r.has_token("Connection", "close"), "no Connection: close on %r" % r)
            try:
                c.send(request("GET", "/a.txt"))
            except OSError:
                pass
            self.assertClosed(c)
        if reason:
            want = "client sent an invalid request (%d): %s" % (status, reason)
            got = harness.wait_for(lambda: want in self.p.output[log_before:], 5)
            self.assertTrue(got, "no log line %r in:\n%s" % (want, self.p.output[log_before:]))
            line = [x for x in self.p.output[log_before:].splitlines() if want in x][0]
            self.assertIn("[info]", line)
            self.assertIn("client: 127.0.0.1", line)
        return r

    def ok(self, raw, status=200, body=None):
        """Sends `raw` on a fresh connection and expects `status` on a connection left open."""
        with self.p.connect() as c:
            c.send(raw)
            r = c.read_response()
            self.assertEqual(r.status, status, "request %r: got %r %r" % (raw[:160], r, r.body[:200]))
            if body is not None:
                self.assertEqual(r.body, body)
            self.assertOpen(c)
            return r

    # ---- header lines: obs-fold, whitespace and CR ----

    def test_obs_fold_is_400(self):
        self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: a\r\n b\r\n\r\n", 400,
                    "obsolete line folding in a header field")

    def test_obs_fold_with_tab_and_of_an_empty_value(self):
        self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: a\r\n\tb\r\n\r\n", 400)
        self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX:\r\n b\r\n\r\n", 400)
        self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: a\r\n \r\n\r\n", 400)

    def test_obs_fold_arriving_in_pieces(self):
        # the fold split across reads, at each byte around the line break
        raw = b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: a\r\n b\r\n\r\n"
        at = raw.index(b"\r\n b")
        for cut in range(at - 1, at + 4):
            with self.p.connect() as c:
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.send(raw[:cut])
                if cut <= at + 2:  # the fold's space not yet sent: the rest is awaited
                    self.assertOpen(c, wait=0.1)
                c.send(raw[cut:])
                r = c.read_response()
                self.assertEqual(r.status, 400, "cut at %d" % cut)
                self.assertClosed(c)

    def test_value_split_across_reads_is_not_a_fold(self):
        raw = b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-Long: a b c\r\n\r\n"
        cut = raw.index(b" b c")
        with self.p.connect() as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.send(raw[:cut])
            self.assertOpen(c, wait=0.1)
            c.send(raw[cut:])
            self.assertStatus(c.read_response(), 200)

    def test_empty_values_are_fine(self):
        self.ok(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-Empty:\r\nX-Blank:   \r\n\r\n",
                body=b"alpha\n")

    def test_obs_fold_in_the_host_line_hides_a_header(self):
        # what would be " Content-Length: 1" on a line of its own continues Host
        self.reject(b"POST /app/x HTTP/1.1\r\nHost: localhost\r\n Content-Length: 1\r\n\r\nx", 400,
                    method="POST")

    def test_whitespace_before_the_first_header(self):
        self.reject(b"GET /a.txt HTTP/1.1\r\n Host: localhost\r\n\r\n", 400)
        self.reject(b"GET /a.txt HTTP/1.1\r\n\tX: y\r\nHost: localhost\r\n\r\n", 400)

    def test_bare_cr_before_a_field_name(self):
        self.reject(b"POST /a.txt HTTP/1.1\r\nHost: localhost\r\n\rTransfer-Encoding: chunked\r\n"
                    b"\r\n0\r\n\r\n", 400, method="POST")

    def test_bare_cr_in_or_after_a_value(self):
        self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: a\rb\r\n\r\n", 400)
        self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: ab\r\r\n\r\n", 400)

    def test_control_characters_in_values(self):
        for ch in (b"\x00", b"\x01", b"\x1f", b"\x7f"):
            self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: a" + ch + b"b\r\n\r\n", 400)

    def test_obs_text_in_values_is_fine(self):
        self.ok(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: caf\xc3\xa9\r\n\r\n", body=b"alpha\n")

    def test_field_names(self):
        self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n: empty-name\r\n\r\n", 400)
        for name in (b"X(a)", b"X/a", b"X@a", b"X\"a", b"X{a}", b"X\xc3\xa9"):
            self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n" + name + b": v\r\n\r\n", 400)

    def test_a_refused_head_is_logged_with_its_own_fields(self):
        # The fields after the one that is refused are in place too when the access log reads
        # them: they once held what an earlier request left in that memory (the fuzzer's input:
        # "Transfer-Encoding: chu" followed by more fields).
        self.ok(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-Pad: 1\r\n"
                b"User-Agent: earlier-agent\r\n\r\n")
        self.reject(b"POST /a.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chu\r\n"
                    b"User-Agent: later-agent\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400,
                    "Transfer-Encoding without chunked last", method="POST")
        log = os.path.join(self.p.tmp, "access.log")

        def refused_line():
            with open(log, "rb") as f:
                return [x for x in f.read().splitlines() if b'"POST /a.txt HTTP/1.1" 400 ' in x]

        self.assertTrue(harness.wait_for(refused_line, 5), "no access log line for the 400")
        self.assertTrue(refused_line()[-1].endswith(b'"later-agent"'), refused_line()[-1])

    # ---- Host ----

    def test_invalid_hosts(self):
        for host in (b"a b/c", b"a/b", b"a\\b", b"user@localhost", b"localhost:80x", b"[::1",
                     b"[::1]x", b"[zz::1]", b"a..b", b"%zz", b"local?host", b"local#host", b""):
            self.reject(b"GET /a.txt HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400,
                        None if host else "invalid Host")
        self.reject(b"GET /a.txt HTTP/1.0\r\nHost: a b\r\n\r\n", 400)

    def test_valid_hosts(self):
        for host in (b"localhost", b"localhost:8080", b"127.0.0.1", b"[::1]", b"[::1]:80",
                     b"xn--bcher-kva.example", b"a-b_c~d.example:", b"%41.example", b"LOCALHOST"):
            self.ok(b"GET /a.txt HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", body=b"alpha\n")

    def test_missing_and_duplicate_host(self):
        self.reject(b"GET /a.txt HTTP/1.1\r\n\r\n", 400, "missing Host")
        self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n", 400,
                    "duplicate Host")

    # ---- the request line and the target ----

    def test_extra_tokens_after_the_version(self):
        self.reject(b"GET / HTTP/1.1 x\r\nHost: localhost\r\n\r\n", 400)
        self.reject(b"GET / HTTP/1.1x\r\nHost: localhost\r\n\r\n", 400)

    def test_versions(self):
        self.reject(b"GET / HTTP/1.2\r\nHost: localhost\r\n\r\n", 505)
        self.reject(b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505)
        self.reject(b"GET / HTTP/0.9\r\nHost: localhost\r\n\r\n", 505)
        self.reject(b"GET / http/1.1\r\nHost: localhost\r\n\r\n", 400)
        self.reject(b"GET / HTTP/1.10\r\nHost: localhost\r\n\r\n", 400)
        self.reject(b"GET / HTTP/11\r\nHost: localhost\r\n\r\n", 400)

    def test_request_line_without_a_version(self):
        self.reject(b"GET /a.txt\r\n\r\n", 400, "request line without an HTTP version")

    def test_options_asterisk(self):
        r = self.ok(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n", 204)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        self.assertIsNone(r.header("Content-Length"))
        self.assertEqual(r.body, b"")
        # with a body, discarded before the next request
        with self.p.connect() as c:
            c.send(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc" +
                   request("GET", "/a.txt"))
            self.assertStatus(c.read_response(), 204)
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")

    def test_asterisk_for_other_methods(self):
        for m in (b"GET", b"HEAD", b"POST", b"DELETE"):
            self.reject(m + b" * HTTP/1.1\r\nHost: localhost\r\n\r\n", 400,
                        "asterisk-form target of a method other than OPTIONS",
                        method=m.decode())

    def test_connect(self):
        r = self.reject(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405,
                        "CONNECT is not offered")
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        self.reject(b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", 405)
        for target in (b"/", b"example.com", b"example.com:", b"http://example.com/",
                       b"u@example.com:443", b"[::1]"):
            self.reject(b"CONNECT " + target + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 400,
                        "CONNECT without an authority-form target")

    def test_authority_form_for_other_methods(self):
        self.reject(b"GET localhost:80 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400)

    def test_absolute_form_target_wins_over_host(self):
        # $host is the name the request is served under
        self.ok(b"GET http://other.example/host HTTP/1.1\r\nHost: localhost\r\n\r\n",
                body=b"other.example")
        self.ok(b"GET HTTP://localhost/host HTTP/1.1\r\nHost: other.example\r\n\r\n",
                body=b"localhost")
        self.ok(b"GET https://other.example:8443/host?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n",
                body=b"other.example")

    def test_invalid_absolute_form_targets(self):
        self.reject(b"GET ftp://localhost/a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n", 400,
                    "request target of a scheme other than http or https")
        for target in (b"http://user@localhost/a.txt", b"http:///a.txt", b"http://a..b/",
                       b"http://local%host/"):
            self.reject(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 400,
                        "invalid authority in the request target")
        # the Host field must be valid even when the target names the server
        self.reject(b"GET http://localhost/a.txt HTTP/1.1\r\nHost: a b\r\n\r\n", 400)

    # ---- framing: Transfer-Encoding and Content-Length ----

    def test_transfer_encoding_in_http10(self):
        self.reject(b"POST /a.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                    "Transfer-Encoding in an HTTP/1.0 request", method="POST")

    def test_chunked_not_last(self):
        for te in (b"chunked, gzip", b"gzip", b"identity", b"chunked, chunked", b"chunked,",
                   b"chunked, identity"):
            self.reject(b"POST /a.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: " + te +
                        b"\r\n\r\n0\r\n\r\n", 400, method="POST")
        self.reject(b"POST /a.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, method="POST")

    def test_unknown_coding_before_chunked_is_501(self):
        self.reject(b"POST /a.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked"
                    b"\r\n\r\n0\r\n\r\n", 501, "unsupported transfer coding", method="POST")

    def test_transfer_encoding_with_content_length(self):
        for order in ((b"Content-Length: 5", b"Transfer-Encoding: chunked"),
                      (b"Transfer-Encoding: chunked", b"Content-Length: 5")):
            self.reject(b"POST /app/echo HTTP/1.1\r\nHost: localhost\r\n" + b"\r\n".join(order) +
                        b"\r\n\r\n0\r\n\r\n", 400, method="POST")
        self.assertEqual(self.backend.requests, [])

    def test_content_length_forms(self):
        for cl in (b"1, 1", b"1,1", b"+1", b"-1", b"1 1", b"", b"0x1", b"1.0",
                   b"99999999999999999999999"):
            self.reject(b"POST /app/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + cl +
                        b"\r\n\r\nx", 400, method="POST")
        self.reject(b"POST /app/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n"
                    b"Content-Length: 1\r\n\r\nx", 400, method="POST")
        self.assertEqual(self.backend.requests, [])
        # leading zeros are digits
        r = self.ok(b"POST /app/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 003\r\n\r\nabc")
        self.assertEqual(r.body, b"abc")

    # ---- chunked bodies (read by the proxy, so the error is the answer) ----

    def chunked(self, body):
        return (b"POST /app/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                + body)

    def test_chunk_size_overflow(self):
        self.reject(self.chunked(b"fffffffffffffffff\r\nx\r\n0\r\n\r\n"), 400, method="POST")
        self.reject(self.chunked(b"10000000000000000\r\nx\r\n0\r\n\r\n"), 400, method="POST")

    def test_chunk_framing(self):
        for body in (b"1;a=\x01\r\nx\r\n0\r\n\r\n",   # a control byte in an extension
                     b"1;a=\"b\r\nx\r\n0\r\n\r\n",    # an unterminated quoted extension
                     b"1\nx\r\n0\r\n\r\n",            # a bare LF after the size
                     b"1\r\nxy\r\n0\r\n\r\n",         # data longer than its size
                     b"1\r\nx\rz0\r\n\r\n",           # no CRLF after the data
                     b"1 \r\nx\r\n0\r\n\r\n",         # space after the size
                     b"-1\r\nx\r\n0\r\n\r\n",
                     b"0\r\nX: a\r\n b\r\n\r\n"):     # a folded trailer
            self.reject(self.chunked(body), 400, method="POST")
        self.assertEqual(self.backend.requests, [])

    def test_valid_chunking_passes(self):
        # extensions llhttp takes: a name, name=token, name="quoted", several names
        r = self.ok(self.chunked(b"1;name=value\r\na\r\n2;q=\"x\"\r\nbc\r\n1;a;b\r\nd\r\n"
                                 b"0\r\nX-T: t\r\n\r\n"))
        self.assertEqual(r.body, b"abcd")

    # ---- Expect, Connection: close ----

    def test_expectations(self):
        self.reject(request("GET", "/a.txt", headers=[("Expect", "something-else")]), 417,
                    "unsupported expectation")
        # HTTP/1.0 cannot have asked for 100 Continue: the answer is the final one
        with self.p.connect() as c:
            c.send(b"GET /a.txt HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")

    def test_nothing_is_answered_after_connection_close(self):
        with self.p.connect() as c:
            c.send(request("GET", "/a.txt", close=True) + request("GET", "/index.html") +
                   request("GET", "/a.txt"))
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"alpha\n")
            self.assertClosed(c)

    # ---- a proxied request that is refused never reaches the backend ----

    def test_smuggling_by_folding_never_reaches_the_backend(self):
        hidden = b"GET /app/smuggled HTTP/1.1\r\nHost: localhost\r\n"
        for raw in (b"GET /app/echo HTTP/1.1\r\nHost: localhost\r\nX: a\r\n " + hidden + b"\r\n",
                    b"GET /app/echo HTTP/1.1\r\nHost: localhost\r\nX:\r\n " + hidden + b"\r\n",
                    b"GET /app/echo HTTP/1.1\r\nHost: localhost\r\n\r" + hidden + b"\r\n"):
            self.reject(raw, 400)
        self.assertEqual(self.backend.requests, [])

    # ---- counted ----

    def test_refusals_are_counted_on_the_status_page(self):
        before = harness.get_status(self.p)["total"]["invalid_requests"]
        self.reject(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: a\r\n b\r\n\r\n", 400)
        self.reject(b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505)
        self.reject(b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", 405)
        self.ok(request("GET", "/a.txt"))  # an answered request is not one
        after = harness.get_status(self.p)["total"]["invalid_requests"]
        self.assertEqual(after - before, 3)


class UpstreamResponses(harness.PorterTestCase):
    """An upstream's response that another reader could frame differently is a 502 while no byte
    of it has reached the client, and the upstream connection that carried it is closed."""

    ANSWERS = {
        b"/te-cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                   b"3\r\nabc\r\n0\r\n\r\n",
        b"/cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n0\r\n\r\n",
        b"/fold": b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 3\r\n\r\nabc",
        b"/fold-empty": b"HTTP/1.1 200 OK\r\nX:\r\n Content-Length: 9\r\nContent-Length: 3\r\n\r\nabc",
        b"/cr-end": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\rXabc",
        b"/http10-te": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"/chunked-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc",
        b"/nul": b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 3\r\n\r\nabc",
        b"/space-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc",
        b"/bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
        b"/cl-list": b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
        b"/empty-name": b"HTTP/1.1 200 OK\r\n: b\r\nContent-Length: 3\r\n\r\nabc",
        b"/name-paren": b"HTTP/1.1 200 OK\r\nX(A): b\r\nContent-Length: 3\r\n\r\nabc",
        b"/name-obs-text": b"HTTP/1.1 200 OK\r\nX\xc3\xa9: b\r\nContent-Length: 3\r\n\r\nabc",
        b"/status-043": b"HTTP/1.1 043 Old\r\nContent-Length: 3\r\n\r\nabc",
        b"/status-000": b"HTTP/1.1 000 None\r\nContent-Length: 3\r\n\r\nabc",
        b"/status-600": b"HTTP/1.1 600 New\r\nContent-Length: 3\r\n\r\nabc",
        b"/status-999-no-body": b"HTTP/1.1 999 X\r\n\r\n",
    }

    def setUp(self):
        self.closed = []  # paths whose upstream connection porter closed
        self.lock = threading.Lock()

        def handler(s, srv):
            while True:
                head = read_request_head(s)
                if not head:
                    return
                path = head.split(b" ")[1]
                s.sendall(self.ANSWERS.get(path, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
                if path in self.ANSWERS:
                    # porter must close this connection, not send another request on it
                    s.settimeout(5)
                    rest = s.recv(1)
                    with self.lock:
                        self.closed.append((path, rest))
                    return

        self.rb = RawBackend(handler)
        self.addCleanup(self.rb.stop)
        self.p = self.start_porter("""
            upstream app { server %s; keepalive 4; }
            server { listen 127.0.0.1:0; location / { proxy_pass http://app; } }
        """ % self.rb.address)

    def test_refused_responses_are_502_and_not_reused(self):
        for path in self.ANSWERS:
            with self.subTest(path=path):
                before = self.rb.connections
                r = self.p.get(path.decode())
                self.assertStatus(r, 502)
                self.assertTrue(harness.wait_for(
                    lambda: any(x[0] == path for x in self.closed), 5),
                    "the upstream connection of %r was not closed" % path)
                self.assertEqual([x[1] for x in self.closed if x[0] == path], [b""])
                # the next request needs a connection of its own
                # (the backend read the end of that connection, not a next request on it)
                r = self.p.get("/fine")
                self.assertStatus(r, 200)
                self.assertGreater(self.rb.connections, before)
        self.assertIn("sent an invalid response: obsolete line folding", self.p.output)
        self.assertIn("sent an invalid response: empty header field name", self.p.output)
        self.assertIn("sent an invalid response: status code out of 100-599", self.p.output)

    def test_bad_chunking_after_the_head_closes_the_client_connection(self):
        def handler(s, srv):
            read_request_head(s)
            s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n")
            s.settimeout(5)
            with self.lock:
                self.closed.append((b"/chunk", s.recv(1)))

        rb = RawBackend(handler)
        self.addCleanup(rb.stop)
        p = self.start_porter("server { listen 127.0.0.1:0; location / { proxy_pass http://%s; } }"
                              % rb.address)
        with p.connect() as c:
            c.send(request("GET", "/chunk"))
            head = c.read_head()
            self.assertIn(b" 200 ", head)
            # the client sees the body end without its last chunk: never a complete response
            closed, extra, _ = c.wait_closed(5)
            self.assertTrue(closed)
            self.assertNotIn(b"0\r\n\r\n", extra)
        self.assertTrue(harness.wait_for(lambda: self.closed, 5))
        self.assertEqual(self.closed, [(b"/chunk", b"")])


if __name__ == "__main__":
    harness.main()
