"""WebSocket through the reverse proxy: a hand-written RFC 6455 echo backend (minimal framing),
the 101 passed through, messages both ways (one larger than every buffer), half-closes passed
on in both directions, bytes sent right behind the 101, an upgrade the backend refuses, and the
idle bound of an upgraded connection. Everything on loopback, bounded in time.
"""

import base64
import hashlib
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_proxy import ProxyTestCase  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload, opcode=1, mask=None):
    """One final frame; masked when `mask` (4 bytes) is given, as a client must."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = _unmask(payload, mask)
        head += mask
    return head + payload


class Reader:
    """Frames from a socket, with whatever came before them."""

    def __init__(self, sock, buf=b""):
        self.sock = sock
        self.buf = bytearray(buf)

    def _need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(1 << 20)
            if not d:
                raise EOFError
            self.buf += d

    def frame(self):
        """(opcode, payload); raises EOFError at the end of the stream."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, pos = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
        mask = None
        if b1 & 0x80:
            self._need(pos + 4)
            mask = bytes(self.buf[pos:pos + 4])
            pos += 4
        self._need(pos + n)
        payload = bytes(self.buf[pos:pos + n])
        del self.buf[:pos + n]
        if mask:
            payload = _unmask(payload, mask)
        return b0 & 0x0F, payload

    def at_eof(self, timeout=5):
        """True if the stream ends (after no more bytes) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            return not self.buf and self.sock.recv(1) == b""
        except socket.timeout:
            return False


def _unmask(payload, mask):
    key = (mask * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(len(payload), "big")


class WsBackend:
    """An echo server: answers the handshake with 101 (or with `refuse`), echoes every data
    frame, and records what it saw: `eof` once the client side ended. `mode`:
    "echo"   echo until a close frame or the end of the stream, then say "bye" and close;
    "greet"  like echo, with a "hi" frame sent in the same write as the 101;
    "shut"   send "hello", half-close, then read (recording frames) until the end."""

    def __init__(self, test, mode="echo", refuse=None):
        self.mode = mode
        self.refuse = refuse
        self.eof = threading.Event()
        self.received = []
        self.request = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(10)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        test.addCleanup(self.sock.close)

    def _run(self):
        try:
            s, _ = self.sock.accept()
        except OSError:
            return
        s.settimeout(10)
        try:
            self._serve(s)
        except (OSError, EOFError):
            pass
        finally:
            s.close()

    def _serve(self, s):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        self.request = head
        if self.refuse:
            s.sendall(self.refuse)
            return
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
               if l.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        resp = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        if self.mode == "greet":
            resp += frame(b"hi")
        s.sendall(resp)
        r = Reader(s, rest)
        if self.mode == "shut":
            s.sendall(frame(b"hello"))
            s.shutdown(socket.SHUT_WR)
            try:
                while True:
                    self.received.append(r.frame())
            except EOFError:
                self.eof.set()
            return
        while True:
            try:
                op, data = r.frame()
            except EOFError:
                self.eof.set()
                s.sendall(frame(b"bye"))
                return
            self.received.append((op, data))
            if op == 8:
                s.sendall(frame(data, opcode=8))
                return
            s.sendall(frame(data, opcode=op))


def upgrade_request(path="/ws"):
    key = base64.b64encode(os.urandom(16)).decode()
    return harness.request("GET", path, headers=[
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13")]), key


def open_ws(test, p, path="/ws"):
    """Connects through porter and completes the handshake: (socket, Reader)."""
    s = socket.create_connection((p.host, p.port), timeout=10)
    test.addCleanup(s.close)
    req, key = upgrade_request(path)
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        test.assertTrue(d, "closed during the handshake: %r" % buf)
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    test.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
    test.assertIn(b"Sec-WebSocket-Accept: " + accept, head)
    test.assertIn(b"Upgrade: websocket", head)
    return s, Reader(s, rest)


MASK = b"\x12\x34\x56\x78"


class WebSocketTest(ProxyTestCase):
    def porter_for(self, ws, extra=""):
        return self.proxy([ws.address], location="location /ws { %s proxy_pass http://app; }" % extra)

    def test_echo(self):
        ws = WsBackend(self)
        p = self.porter_for(ws)
        s, r = open_ws(self, p)
        for msg in (b"one", b"two" * 100, os.urandom(300000)):
            s.sendall(frame(msg, opcode=2, mask=MASK))
            self.assertEqual(r.frame(), (2, msg))
        s.sendall(frame(b"", opcode=8, mask=MASK))
        self.assertEqual(r.frame()[0], 8)
        self.assertTrue(r.at_eof())
        # the request went up with its upgrade headers, and porter logged the 101
        self.assertIn(b"Upgrade: websocket", ws.request)
        self.assertIn(b"Connection: upgrade", ws.request)

    def test_bytes_right_behind_the_101(self):
        ws = WsBackend(self, mode="greet")
        p = self.porter_for(ws)
        s, r = open_ws(self, p)
        self.assertEqual(r.frame(), (1, b"hi"))
        s.sendall(frame(b"x", mask=MASK))
        self.assertEqual(r.frame(), (1, b"x"))

    def test_client_half_close_reaches_the_backend(self):
        ws = WsBackend(self)
        p = self.porter_for(ws)
        s, r = open_ws(self, p)
        s.sendall(frame(b"last", mask=MASK))
        s.shutdown(socket.SHUT_WR)
        # the backend sees the end of the client's stream, and can still answer
        self.assertTrue(ws.eof.wait(5), "the half-close did not reach the backend")
        self.assertEqual(r.frame(), (1, b"last"))
        self.assertEqual(r.frame(), (1, b"bye"))
        self.assertTrue(r.at_eof())

    def test_backend_half_close_reaches_the_client(self):
        ws = WsBackend(self, mode="shut")
        p = self.porter_for(ws)
        s, r = open_ws(self, p)
        self.assertEqual(r.frame(), (1, b"hello"))
        self.assertTrue(r.at_eof(), "the backend's half-close did not reach the client")
        # the other direction is still open
        s.sendall(frame(b"still here", mask=MASK))
        harness.wait_until(lambda: ws.received == [(1, b"still here")], 5,
                           lambda: "the frame reached the backend: %r" % ws.received)
        s.shutdown(socket.SHUT_WR)
        self.assertTrue(ws.eof.wait(5))
        self.assertEqual(ws.received, [(1, b"still here")])

    def test_refused_upgrade_is_an_ordinary_answer(self):
        ws = WsBackend(self, refuse=b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
        p = self.porter_for(ws)
        with p.connect() as c:
            req, _ = upgrade_request()
            c.send(req)
            r = c.read_response()
            self.assertStatus(r, 403)
            self.assertEqual(r.body, b"no")
            self.assertIsNone(r.header("Upgrade"))

    def test_idle_upgraded_connection_is_closed(self):
        ws = WsBackend(self)
        p = self.porter_for(ws, "proxy_read_timeout 500ms;")
        start = time.monotonic()  # before the upgrade: the idle bound runs from the 101 on
        s, r = open_ws(self, p)
        s.settimeout(5)
        with self.assertRaises(EOFError):
            r.frame()
        waited = time.monotonic() - start
        self.assertTimedOut(waited, 0.5, margin=2.5, what="proxy_read_timeout")


if __name__ == "__main__":
    harness.main()
