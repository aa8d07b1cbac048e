"""HTTP/2 at the frame level: a client that writes any frame it likes (hpack for the header
blocks) and reads every frame the server sends, GOAWAY and RST_STREAM codes included, over a
plain socket to an h2c address (`listen ... http2`), and Python's h2 package for the
well-behaved requests.

Covers RFC 9113's connection errors (a bad preface, DATA on stream 0, HEADERS on an even or a
lower stream id, WINDOW_UPDATE overflowing a window), its stream errors (malformed requests:
missing or misplaced pseudo-headers, upper-case names, connection-specific fields) that leave
the other streams of the connection alone, the limits (header list size, concurrent streams)
and the floods porter's limits exist for: rapid reset, CONTINUATION, SETTINGS, PING, PRIORITY
and empty DATA frames, each answered with GOAWAY and a close. After each attack a fresh
connection still gets its 200, and porter exits clean (no leak, no sanitizer report).

The helpers here (RawH2, h2_request, the error codes) are shared with test_h2.py.
"""

import os
import socket
import struct
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    import hpack
except ImportError:  # an interpreter of its own (pyenv): Debian's python3-h2 is pure Python
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import h2.config
        import h2.connection
        import h2.events
        import h2.settings
        import hpack
    except ImportError:
        h2 = hpack = None

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
# Flags
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
# Error codes (RFC 9113 7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM = range(12)
ERROR_NAMES = {v: k for k, v in dict(
    NO_ERROR=0, PROTOCOL_ERROR=1, INTERNAL_ERROR=2, FLOW_CONTROL_ERROR=3, SETTINGS_TIMEOUT=4,
    STREAM_CLOSED=5, FRAME_SIZE_ERROR=6, REFUSED_STREAM=7, CANCEL=8, COMPRESSION_ERROR=9,
    CONNECT_ERROR=10, ENHANCE_YOUR_CALM=11, INADEQUATE_SECURITY=12,
    HTTP_1_1_REQUIRED=13).items()}
# Settings (RFC 9113 6.5.2)
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3

ATTACK_SECONDS = 5.0  # the bound on each attack and on the server's answer to it


def error_name(code):
    return ERROR_NAMES.get(code, "0x%x" % code) if code is not None else None


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def settings_payload(settings):
    return b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())


class Frame:
    def __init__(self, ftype, flags, sid, payload):
        self.type, self.flags, self.sid, self.payload = ftype, flags, sid, payload
        self.headers = None  # decoded, on the frame that ends a header block

    @property
    def error_code(self):
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        return None

    @property
    def last_stream_id(self):
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    def __repr__(self):
        names = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
                 "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
        name = names[self.type] if self.type < len(names) else "type%d" % self.type
        extra = ""
        if self.error_code is not None:
            extra = " %s" % error_name(self.error_code)
        if self.type == GOAWAY:
            extra += " last=%d %r" % (self.last_stream_id, self.payload[8:80])
        if self.headers is not None:
            extra = " %r" % (self.headers,)
        return "<%s flags=0x%x stream=%d len=%d%s>" % (name, self.flags, self.sid,
                                                       len(self.payload), extra)


class RawH2:
    """An HTTP/2 client connection that sends raw frames and records every frame received.

    The client's preface and SETTINGS (`settings`: {id: value}) go at once unless
    preface=False. The server's SETTINGS are acknowledged as they are read (ack=False leaves
    them unacknowledged). Header blocks are encoded with hpack and no dynamic table (a block
    the server refuses leaves nothing to get out of step); the server's are decoded in order."""

    def __init__(self, port, settings=None, preface=True, ack=True, timeout=harness.IO_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.frames = []
        self.closed = False  # EOF or reset seen
        self.send_failed = False  # the server stopped taking bytes (closed)
        self.ack = ack
        self.enc = hpack.Encoder()
        self.enc.header_table_size = 0
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 24
        self._block = None  # (first frame, bytes) of a header block in pieces
        if preface:
            self.send(PREFACE + frame(SETTINGS, 0, 0, settings_payload(settings)))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- sending ----

    def send(self, data):
        """Sends; False (and nothing raised) once the server has closed."""
        if self.send_failed:
            return False
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.send_failed = True
            return False

    def block(self, headers, huffman=True):
        """The header block for `headers`: (name, value) pairs as given, no checks."""
        return self.enc.encode([(n.encode() if isinstance(n, str) else n,
                                 v.encode() if isinstance(v, str) else v) for n, v in headers],
                               huffman=huffman)

    def headers_frame(self, sid, headers, end_stream=True):
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid,
                     self.block(headers))

    def request(self, sid, path="/small.txt", method="GET", extra=(), end_stream=True):
        """Sends a request's HEADERS (a GET, ending the stream, unless told otherwise)."""
        return self.send(self.headers_frame(sid, request_headers(path, method) + list(extra),
                                            end_stream))

    # ---- receiving ----

    def _parse(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                return
            ftype, flags = self.buf[3], self.buf[4]
            sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
            f = Frame(ftype, flags, sid, bytes(self.buf[9:9 + length]))
            del self.buf[:9 + length]
            self.frames.append(f)
            if ftype == SETTINGS and not flags & ACK and self.ack:
                self.send(frame(SETTINGS, ACK, 0))
            if ftype in (HEADERS, PUSH_PROMISE):
                self._block = (f, _header_fragment(f))
            elif ftype == CONTINUATION and self._block:
                self._block = (self._block[0], self._block[1] + f.payload)
            if ftype in (HEADERS, PUSH_PROMISE, CONTINUATION) and flags & END_HEADERS \
                    and self._block:
                first, data = self._block
                self._block = None
                try:
                    first.headers = [(n.decode("latin-1"), v.decode("latin-1"))
                                     for n, v in self.dec.decode(data, raw=True)]
                except Exception as e:  # noqa: BLE001 - recorded for the failure message
                    first.headers = [("decode-error", str(e))]

    def poll(self, timeout):
        """Reads what arrives within `timeout` (at least one recv); returns False once closed."""
        if self.closed:
            return False
        self.sock.settimeout(max(0.001, timeout))
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return True
        except (ConnectionResetError, ConnectionAbortedError):
            self.closed = True
            return False
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            self.closed = True
            return False
        self.buf += data
        self._parse()
        return True

    def read_until(self, pred, timeout=ATTACK_SECONDS):
        """Reads until pred() is true (True), the server closes or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0 or not self.poll(left):
                return bool(pred())
        return True

    def wait_closed(self, timeout=ATTACK_SECONDS):
        """Reads until the server closes; True if it did within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.poll(left)
        return True

    # ---- what was received ----

    def of(self, sid, ftype=None):
        return [f for f in self.frames if f.sid == sid and (ftype is None or f.type == ftype)]

    def goaway(self):
        g = [f for f in self.frames if f.type == GOAWAY]
        return g[0] if g else None

    def reset_code(self, sid):
        r = self.of(sid, RST_STREAM)
        return r[0].error_code if r else None

    def status(self, sid):
        for f in self.of(sid):
            if f.headers:
                for n, v in f.headers:
                    if n == ":status":
                        return int(v)
        return None

    def body(self, sid):
        return b"".join(_data_payload(f) for f in self.of(sid, DATA))

    def ended(self, sid):
        """The server ended the stream: END_STREAM or RST_STREAM."""
        return any(f.flags & END_STREAM and f.type in (DATA, HEADERS) or f.type == RST_STREAM
                   for f in self.of(sid))

    def summary(self, limit=30):
        fs = self.frames
        shown = fs if len(fs) <= limit else fs[:10] + ["..."] + fs[-(limit - 10):]
        return "%d frames%s: %r" % (len(fs), " then closed" if self.closed else "", shown)


def _header_fragment(f):
    p = f.payload
    pad = 0
    if f.flags & 0x8:  # PADDED
        pad = p[0]
        p = p[1:]
    if f.type == HEADERS and f.flags & 0x20:  # PRIORITY
        p = p[5:]
    if f.type == PUSH_PROMISE:
        p = p[4:]
    return p[:len(p) - pad] if pad else p


def _data_payload(f):
    p = f.payload
    if f.flags & 0x8:
        return p[1:len(p) - p[0]]
    return p


def request_headers(path="/small.txt", method="GET", authority="localhost"):
    return [(":method", method), (":scheme", "http"), (":authority", authority), (":path", path)]


# ---- the h2 package: well-behaved requests ----


def h2_connection():
    return h2.connection.H2Connection(config=h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8"))


def h2_request(port, path="/small.txt", method="GET", headers=(), body=None, sock=None,
               scheme="http", authority="localhost", timeout=harness.IO_TIMEOUT):
    """One request over HTTP/2 with the h2 package (a fresh h2c connection unless `sock`: a
    connected socket, TLS with ALPN h2 already agreed). Returns a dict: status, headers (a
    list), body, trailers, reset (the error code of a RST_STREAM), goaway (the error code of
    a GOAWAY) and events."""
    own = sock is None
    if own:
        sock = socket.create_connection(("127.0.0.1", port), timeout)
    sock.settimeout(timeout)
    conn = h2_connection()
    out = {"status": None, "headers": [], "body": b"", "trailers": [], "reset": None,
           "goaway": None, "events": [], "ended": False}
    try:
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        hs = [(":method", method), (":scheme", scheme), (":authority", authority),
              (":path", path)] + list(headers)
        conn.send_headers(sid, hs, end_stream=body is None)
        sock.sendall(conn.data_to_send())
        if body is not None:
            _h2_send_body(sock, conn, sid, body, out, timeout)
        deadline = time.monotonic() + timeout
        while not out["ended"] and out["reset"] is None and out["goaway"] is None:
            if time.monotonic() > deadline:
                raise AssertionError("no complete answer within %ss: %r" % (timeout, out["events"]))
            data = sock.recv(1 << 20)
            if not data:
                raise AssertionError("closed before the answer: %r" % out["events"])
            _h2_events(conn, data, sid, out)
            sock.sendall(conn.data_to_send())
    finally:
        if own:
            sock.close()
    return out


def _h2_send_body(sock, conn, sid, body, out, timeout):
    """Sends `body` on stream `sid` within the flow-control windows, reading what comes."""
    sent = 0
    deadline = time.monotonic() + timeout
    while sent < len(body):
        room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
        if room > 0:
            n = min(room, len(body) - sent)
            conn.send_data(sid, body[sent:sent + n], end_stream=sent + n == len(body))
            sent += n
            sock.sendall(conn.data_to_send())
            continue
        if time.monotonic() > deadline:
            raise AssertionError("the server's windows stayed shut after %d body bytes" % sent)
        data = sock.recv(1 << 20)
        if not data:
            raise AssertionError("closed after %d body bytes" % sent)
        _h2_events(conn, data, sid, out)
        sock.sendall(conn.data_to_send())
        if out["reset"] is not None or out["ended"]:
            return
    if not body:
        conn.end_stream(sid)
        sock.sendall(conn.data_to_send())


def _h2_events(conn, data, sid, out):
    for ev in conn.receive_data(data):
        out["events"].append(ev)
        if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
            out["headers"] = list(ev.headers)
            out["status"] = int(dict(ev.headers)[":status"])
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            pass
        elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
            out["trailers"] = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
            out["body"] += ev.data
            conn.acknowledge_received_data(ev.flow_controlled_length, sid)
        elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
            out["ended"] = True
        elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
            out["reset"] = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            out["goaway"] = ev.error_code


# ---- the server ----

SMALL = b"small file\n"
BIG = os.urandom(1024 * 1024)
FILES = {"small.txt": SMALL, "big.bin": BIG, "index.html": b"<html>index</html>\n"}


def conf(extra="", location=""):
    return ("error_log stderr info;\n"
            "server {\n"
            "    listen 127.0.0.1:0 http2;\n"
            "    root htdocs;\n"
            "    location /porter-status { status; }\n"
            "%s\n%s\n"
            "}\n" % (extra, location))


class FrameCase(PorterTestCase):
    EXTRA = ""

    def setUp(self):
        if h2 is None:
            self.skipTest("needs python3-h2")
        self.p = self.start_porter(conf(self.EXTRA), FILES)
        self.port = self.p.port

    def client(self, **kw):
        c = RawH2(self.port, **kw)
        self.addCleanup(c.close)
        return c

    def assertServes(self):
        """A fresh HTTP/2 connection gets its 200, and so does an HTTP/1.1 one."""
        r = h2_request(self.port)
        self.assertEqual((r["status"], r["body"], r["reset"], r["goaway"]),
                         (200, SMALL, None, None), r["events"])
        self.assertStatus(self.p.get("/small.txt"), 200)
        self.assertTrue(self.p.alive())

    def assertGoaway(self, c, codes, timeout=ATTACK_SECONDS):
        """The server sent GOAWAY with one of `codes` and closed the connection."""
        if isinstance(codes, int):
            codes = (codes,)
        c.read_until(lambda: c.goaway() is not None, timeout)
        g = c.goaway()
        self.assertIsNotNone(g, "no GOAWAY: %s" % c.summary())
        self.assertIn(g.error_code, codes, "GOAWAY %s, expected %s: %s"
                      % (error_name(g.error_code), [error_name(x) for x in codes], c.summary()))
        self.assertTrue(c.wait_closed(timeout),
                        "the connection stayed open after GOAWAY: %s" % c.summary())
        return g

    def assertStreamError(self, c, sid, code=PROTOCOL_ERROR):
        c.read_until(lambda: c.ended(sid) or c.goaway() is not None)
        self.assertEqual(error_name(c.reset_code(sid)), error_name(code),
                         "stream %d: expected RST_STREAM %s: %s"
                         % (sid, error_name(code), c.summary()))
        self.assertIsNone(c.status(sid), "stream %d was answered: %s" % (sid, c.summary()))

    def assertAnswered(self, c, sid, status=200, body=SMALL):
        c.read_until(lambda: c.ended(sid))
        self.assertEqual((c.status(sid), c.body(sid)), (status, body),
                         "stream %d: %s" % (sid, c.summary()))
        self.assertIsNone(c.reset_code(sid), c.summary())


class ConnectionErrors(FrameCase):
    """Connection errors: GOAWAY PROTOCOL_ERROR (or FLOW_CONTROL_ERROR) and a close."""

    def test_a_good_connection_first(self):
        # The client itself: a request answered, the server's SETTINGS first.
        c = self.client()
        c.request(1)
        self.assertAnswered(c, 1)
        self.assertEqual(c.frames[0].type, SETTINGS, c.summary())
        self.assertIsNone(c.goaway())

    def test_closed_before_a_byte(self):
        # A client that connects and closes without sending anything (a browser's unused
        # preconnection): the choice between HTTP/1 and HTTP/2 sees an end with nothing read.
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", self.port), harness.IO_TIMEOUT)
            s.close()
        with harness.connect("127.0.0.1", self.port) as c:
            c.send(harness.request("GET", "/small.txt"))
            self.assertStatus(c.read_response(), 200)
        self.assertServes()

    def test_bad_preface(self):
        # The magic's last line wrong: not HTTP/2, and not an HTTP/1.1 request either.
        c = self.client(preface=False)
        c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(SETTINGS, 0, 0))
        self.assertTrue(c.wait_closed(), "still open after a bad preface: %s" % c.summary())
        g = c.goaway()
        if g is not None:
            self.assertEqual(error_name(g.error_code), "PROTOCOL_ERROR", c.summary())
        self.assertNotIn(b" 200 ", bytes(c.buf))
        self.assertServes()

    def test_preface_not_followed_by_settings(self):
        c = self.client(preface=False)
        c.send(PREFACE + frame(PING, 0, 0, b"12345678"))
        self.assertGoaway(c, PROTOCOL_ERROR)
        self.assertServes()

    def test_data_on_stream_zero(self):
        c = self.client()
        c.send(frame(DATA, 0, 0, b"hello"))
        self.assertGoaway(c, PROTOCOL_ERROR)
        self.assertServes()

    def test_headers_on_an_even_stream(self):
        c = self.client()
        c.request(2)
        self.assertGoaway(c, PROTOCOL_ERROR)
        self.assertIsNone(c.status(2))
        self.assertServes()

    def test_stream_id_going_down(self):
        # Stream 3 was implicitly closed when 5 opened (RFC 9113 section 5.1.1). nghttp2 makes a
        # HEADERS there a connection error only when it is sure the stream is not one it closed
        # itself (trailers racing a reset are legitimate); otherwise it ignores the frame. Either
        # way stream 3 is never answered, and the connection stays coherent.
        c = self.client()
        c.request(5)
        self.assertAnswered(c, 5)
        c.request(3)
        c.request(7)
        c.read_until(lambda: c.ended(7) or c.goaway() is not None)
        self.assertIsNone(c.status(3), c.summary())
        g = c.goaway()
        if g is not None:
            self.assertEqual((g.error_code, g.last_stream_id), (PROTOCOL_ERROR, 5), c.summary())
        else:
            self.assertAnswered(c, 7)
        self.assertServes()

    def test_connection_window_overflow(self):
        c = self.client()
        c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)) * 2)
        self.assertGoaway(c, FLOW_CONTROL_ERROR)
        self.assertServes()

    def test_stream_window_overflow(self):
        # A download the server cannot send (the stream's window is 0), its window then
        # overflowed: a stream error, or a connection error, both FLOW_CONTROL_ERROR.
        c = self.client(settings={SETTINGS_INITIAL_WINDOW_SIZE: 0})
        c.request(1, "/big.bin")
        self.assertTrue(c.read_until(lambda: c.status(1) is not None), c.summary())
        c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0x7FFFFFFF)) * 2)
        c.read_until(lambda: c.reset_code(1) is not None or c.goaway() is not None)
        codes = [c.reset_code(1), c.goaway().error_code if c.goaway() else None]
        self.assertIn(FLOW_CONTROL_ERROR, codes, c.summary())
        self.assertLess(len(c.body(1)), len(BIG))
        self.assertServes()


class StreamErrors(FrameCase):
    """Malformed requests (RFC 9113 8.1.1): RST_STREAM PROTOCOL_ERROR for that stream; the
    next stream on the same connection is answered."""

    def malformed(self, headers):
        c = self.client()
        c.send(c.headers_frame(1, headers))
        c.request(3)
        self.assertStreamError(c, 1, PROTOCOL_ERROR)
        self.assertAnswered(c, 3)
        self.assertIsNone(c.goaway(), c.summary())
        return c

    def test_missing_method(self):
        self.malformed([(":scheme", "http"), (":authority", "localhost"), (":path", "/small.txt")])

    def test_missing_path(self):
        self.malformed([(":method", "GET"), (":scheme", "http"), (":authority", "localhost")])

    def test_missing_scheme(self):
        self.malformed([(":method", "GET"), (":authority", "localhost"), (":path", "/small.txt")])

    def test_empty_path(self):
        self.malformed(request_headers("")[:3] + [(":path", "")])

    def test_pseudo_header_after_a_regular_one(self):
        self.malformed([(":method", "GET"), (":scheme", "http"), ("x-a", "1"),
                        (":authority", "localhost"), (":path", "/small.txt")])

    def test_unknown_pseudo_header(self):
        self.malformed(request_headers() + [(":foo", "bar")])

    def test_upper_case_name(self):
        self.malformed(request_headers() + [("X-Upper", "1")])

    def test_connection_keep_alive(self):
        self.malformed(request_headers() + [("connection", "keep-alive")])

    def test_transfer_encoding(self):
        self.malformed(request_headers() + [("transfer-encoding", "chunked")])

    def test_te_other_than_trailers(self):
        self.malformed(request_headers() + [("te", "gzip")])

    def test_te_trailers_is_fine(self):
        c = self.client()
        c.request(1, extra=[("te", "trailers")])
        self.assertAnswered(c, 1)


class Limits(FrameCase):
    EXTRA = "    http2_max_concurrent_streams 4;\n"

    def test_header_list_too_large(self):
        # 48 KiB of one header (the default limit is 32 KiB, decoded), in a HEADERS and two
        # CONTINUATION frames.
        c = self.client()
        block = c.block(request_headers() + [("x-big", "a" * 48 * 1024)], huffman=False)
        pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        data = frame(HEADERS, END_STREAM, 1, pieces[0])
        for i, piece in enumerate(pieces[1:], 1):
            data += frame(CONTINUATION, END_HEADERS if i == len(pieces) - 1 else 0, 1, piece)
        c.send(data)
        c.read_until(lambda: c.ended(1) or c.closed)
        self.assertNotEqual(c.status(1), 200, "a 48 KiB header list was taken: %s" % c.summary())
        self.assertTrue(c.status(1) == 431 or c.reset_code(1) is not None
                        or c.goaway() is not None, c.summary())
        self.assertServes()

    def test_header_list_within_the_limit(self):
        c = self.client()
        c.send(c.headers_frame(1, request_headers() + [("x-big", "a" * 8 * 1024)]))
        self.assertAnswered(c, 1)

    def test_concurrent_streams_before_the_settings_are_known(self):
        # Eight downloads at once from a client that has not seen the server's SETTINGS (4
        # streams): the first four are taken (their responses wait on the window of 0), the
        # other four refused with REFUSED_STREAM: safe to retry.
        c = self.client(settings={SETTINGS_INITIAL_WINDOW_SIZE: 0}, ack=False)
        c.send(b"".join(c.headers_frame(sid, request_headers("/big.bin"))
                        for sid in range(1, 17, 2)))
        c.read_until(lambda: all(c.status(s) or c.reset_code(s) is not None
                                 for s in range(1, 17, 2)))
        self.assertEqual([c.status(s) for s in (1, 3, 5, 7)], [200] * 4, c.summary())
        self.assertEqual([error_name(c.reset_code(s)) for s in (9, 11, 13, 15)],
                         ["REFUSED_STREAM"] * 4, c.summary())
        self.assertIsNone(c.goaway(), c.summary())
        # The advertised limit is the conf's.
        s = [f for f in c.frames if f.type == SETTINGS and not f.flags & ACK][0]
        advertised = dict(struct.unpack(">HI", s.payload[i:i + 6])
                          for i in range(0, len(s.payload), 6))
        self.assertEqual(advertised.get(SETTINGS_MAX_CONCURRENT_STREAMS), 4, c.summary())

    def test_concurrent_streams_after_the_settings(self):
        # A client that knows the limit and goes past it: the extra streams are refused
        # (REFUSED_STREAM or PROTOCOL_ERROR, RFC 9113 5.1.2), as a stream or a connection
        # error; none of them is answered.
        c = self.client(settings={SETTINGS_INITIAL_WINDOW_SIZE: 0})
        self.assertTrue(c.read_until(lambda: any(f.type == SETTINGS and f.flags & ACK
                                                 for f in c.frames)), c.summary())
        c.send(b"".join(c.headers_frame(sid, request_headers("/big.bin"))
                        for sid in range(1, 13, 2)))
        c.read_until(lambda: c.goaway() is not None
                     or all(c.status(s) or c.reset_code(s) is not None for s in range(1, 13, 2)))
        for s in (9, 11):
            self.assertIsNone(c.status(s), c.summary())
            g = c.goaway()
            self.assertTrue(c.reset_code(s) in (REFUSED_STREAM, PROTOCOL_ERROR)
                            or (g is not None and g.error_code == PROTOCOL_ERROR
                                and g.last_stream_id < s), c.summary())
        self.assertServes()


class Floods(FrameCase):
    """Each flood is answered with GOAWAY (ENHANCE_YOUR_CALM) and a close, within
    ATTACK_SECONDS; the server keeps serving others."""

    def setUp(self):
        if h2 is None:
            self.skipTest("needs python3-h2")
        import test_proxy

        self.backend = test_proxy.Backend()
        self.addCleanup(self.backend.stop)
        self.p = self.start_porter(conf("    http2_reset_rate_limit 20 10;\n",
                                        "    location /app/ { proxy_pass http://%s; }\n"
                                        % self.backend.address), FILES)
        self.port = self.p.port

    def flood(self, c, data, count):
        """Sends `data` `count` times in batches, without reading, for ATTACK_SECONDS at most
        (stops when the server closes). Returns how many were sent."""
        deadline = time.monotonic() + ATTACK_SECONDS
        sent = 0
        batch = 200
        while sent < count and time.monotonic() < deadline:
            n = min(batch, count - sent)
            if not c.send(data * n):
                break
            sent += n
        return sent

    def status_counter(self, word):
        """A counter of the status page's totals whose name says HTTP/2 and `word`."""
        doc = harness.get_status(self.p)
        found = find_h2_counters(doc.get("total", doc), word)
        self.assertTrue(found, "no HTTP/2 counter named like %r on the status page: %r"
                        % (word, doc.get("total", doc)))
        return max(found.values())

    def test_rapid_reset(self):
        c = self.client()
        sent = 0
        deadline = time.monotonic() + ATTACK_SECONDS
        sid = 1
        while sid < 2 * 5000 and time.monotonic() < deadline:
            data = b""
            for _ in range(50):
                data += c.headers_frame(sid, request_headers()) + \
                    frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
                sid += 2
            if not c.send(data):
                break
            sent += 50
            c.poll(0.001)
            if c.goaway() is not None:
                break
        self.assertGoaway(c, (ENHANCE_YOUR_CALM, INTERNAL_ERROR))
        self.assertServes()
        self.assertGreaterEqual(self.status_counter("flood"), 1)

    def test_resets_at_a_gentle_pace_are_fine(self):
        # Fewer than the burst: a client that cancels a few requests is not an attacker.
        c = self.client()
        for sid in range(1, 21, 2):
            c.send(c.headers_frame(sid, request_headers("/big.bin"))
                   + frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL)))
        c.request(21)
        self.assertAnswered(c, 21)
        self.assertIsNone(c.goaway(), c.summary())

    def test_continuation_flood(self):
        before = self.status_counter("flood")
        c = self.client()
        first = c.block(request_headers())
        c.send(frame(HEADERS, END_STREAM, 1, first))
        piece = frame(CONTINUATION, 0, 1, c.block([("x-pad", "a")]))
        self.flood(c, piece, 10000)
        c.send(frame(CONTINUATION, END_HEADERS, 1, c.block([("x-end", "1")])))
        self.assertGoaway(c, (ENHANCE_YOUR_CALM, PROTOCOL_ERROR, INTERNAL_ERROR,
                              COMPRESSION_ERROR))
        self.assertIsNone(c.status(1), c.summary())
        self.assertServes()
        # One connection ended for one flood, counted once.
        self.assertEqual(self.status_counter("flood"), before + 1)

    def test_empty_continuation_flood(self):
        c = self.client()
        c.send(frame(HEADERS, END_STREAM, 1, c.block(request_headers())))
        self.flood(c, frame(CONTINUATION, 0, 1), 100000)
        self.assertGoaway(c, (ENHANCE_YOUR_CALM, PROTOCOL_ERROR, INTERNAL_ERROR))
        self.assertIsNone(c.status(1), c.summary())
        self.assertServes()

    def test_continuations_within_the_limit(self):
        # Four pieces (the limit is 8): an ordinary large header block.
        c = self.client()
        c.send(frame(HEADERS, END_STREAM, 1, c.block(request_headers())))
        for i in range(4):
            c.send(frame(CONTINUATION, END_HEADERS if i == 3 else 0, 1,
                         c.block([("x-pad-%d" % i, "a" * 100)])))
        self.assertAnswered(c, 1)

    def control_flood(self, data, count=10000):
        c = self.client()
        self.flood(c, data, count)
        self.assertGoaway(c, ENHANCE_YOUR_CALM)
        self.assertServes()
        return c

    def test_settings_flood(self):
        self.control_flood(frame(SETTINGS, 0, 0))

    def test_ping_flood(self):
        self.control_flood(frame(PING, 0, 0, b"pingping"))

    def test_priority_flood(self):
        self.control_flood(frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 15)))

    def test_empty_data_flood(self):
        # A request body that never comes: a stream kept open, empty DATA frames on it.
        c = self.client()
        c.request(1, "/app/sha", method="POST", end_stream=False)
        self.flood(c, frame(DATA, 0, 1), 10000)
        self.assertGoaway(c, ENHANCE_YOUR_CALM)
        self.assertServes()

    def test_some_pings_are_fine(self):
        c = self.client()
        c.send(b"".join(frame(PING, 0, 0, b"ping%04d" % i) for i in range(20)))
        c.read_until(lambda: len([f for f in c.frames if f.type == PING]) == 20)
        acks = [f for f in c.frames if f.type == PING]
        self.assertEqual([f.payload for f in acks], [b"ping%04d" % i for i in range(20)])
        self.assertTrue(all(f.flags & ACK for f in acks))
        c.request(1)
        self.assertAnswered(c, 1)


def find_h2_counters(obj, word, path=""):
    """{dotted name: value} of the integer counters under `obj` (the status page's JSON) whose
    names (or whose parents' names) mention h2 or http2, and whose own name contains `word`."""
    found = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            name = "%s.%s" % (path, k) if path else k
            found.update(find_h2_counters(v, word, name))
    elif isinstance(obj, int) and not isinstance(obj, bool):
        low = path.lower()
        last = low.rsplit(".", 1)[-1]
        if ("h2" in low or "http2" in low) and word in last:
            found[path] = obj
    return found


if __name__ == "__main__":
    harness.main()
