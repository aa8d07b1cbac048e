#!/usr/bin/env python3
"""Opens N keep-alive connections to a server, each sends one request and reads the whole
response, then all stay open and idle.

    idle_conns.py PORT PATH N
    idle_conns.py --h2c PORT N      HTTP/2 with prior knowledge, cleartext
    idle_conns.py --h2 PORT N       HTTP/2 over TLS (ALPN h2; the certificate is not checked)

With --h2c or --h2 a connection sends no request: it completes the HTTP/2 handshake (the
client's preface and SETTINGS, the server's SETTINGS, and both acknowledged) and stays idle.

When every connection has its response it prints one line `READY {"ok": ..., "failed": ...}`
and waits. On a line on standard input (or its end) it checks how many connections the server
still holds open, prints `DONE {"alive": ...}`, closes them all and exits. Only 127.0.0.1.
"""

import errno
import json
import resource
import selectors
import socket
import ssl
import struct
import sys
import time

CONNECT_AT_ONCE = 200  # connections in progress at a time, to stay inside the listen backlog
DEADLINE_S = 60


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


class Conn:
    def __init__(self, port, request):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.out = request
        self.buf = b""
        self.need = None  # bytes of the whole response, once its head has arrived
        err = self.sock.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, "connect")

    def on_writable(self):
        n = self.sock.send(self.out)
        self.out = self.out[n:]

    def on_readable(self):
        """Returns True when the response is complete; raises on EOF or a bad response."""
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed before the response was complete")
        self.buf += data
        if self.need is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = self.buf[:end].decode("latin-1").split("\r\n")
            if not head[0].startswith("HTTP/1.1 200"):
                raise ConnectionError("status line: " + head[0])
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            self.need = end + 4 + length
        return len(self.buf) >= self.need


# HTTP/2 (RFC 9113): the client preface, then an empty SETTINGS frame (the defaults).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS, H2_GOAWAY = 0x4, 0x7
H2_ACK = 0x1


def h2_frame(kind, flags=0, payload=b""):
    head = struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", 0)
    return head + payload


class H2Conn(Conn):
    """The HTTP/2 handshake, over TLS when `tls` (a client context) is given."""

    def __init__(self, port, tls):
        super().__init__(port, H2_PREFACE + h2_frame(H2_SETTINGS))
        self.settings = self.acked = False
        self.tls = tls
        self.handshaking = tls is not None

    def tls_handshake(self, sel):
        """Returns the event the TLS handshake waits for, or None once it is done."""
        if not isinstance(self.sock, ssl.SSLSocket):
            # TCP is connected: TLS on the same descriptor, under a new socket object.
            sel.unregister(self.sock)
            self.sock = self.tls.wrap_socket(self.sock, do_handshake_on_connect=False)
            sel.register(self.sock, selectors.EVENT_WRITE, self)
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            return selectors.EVENT_READ
        except ssl.SSLWantWriteError:
            return selectors.EVENT_WRITE
        self.handshaking = False
        if self.sock.selected_alpn_protocol() != "h2":
            raise ConnectionError(f"ALPN: {self.sock.selected_alpn_protocol()} instead of h2")
        return None

    def on_writable(self):
        try:
            super().on_writable()
        except ssl.SSLWantWriteError:
            pass

    def on_readable(self):
        """Returns True once the handshake is complete; raises on EOF or what is not HTTP/2."""
        try:
            data = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return False  # a TLS record without application data (a session ticket)
        if not data:
            raise ConnectionError("closed during the HTTP/2 handshake")
        self.buf += data
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            kind, flags = self.buf[3], self.buf[4]
            if not self.settings and kind != H2_SETTINGS:
                raise ConnectionError(f"not HTTP/2: {bytes(self.buf[:16])!r}")
            if len(self.buf) < 9 + length:
                break
            self.buf = self.buf[9 + length:]
            if kind == H2_GOAWAY:
                raise ConnectionError("GOAWAY during the HTTP/2 handshake")
            if kind == H2_SETTINGS and flags & H2_ACK:
                self.acked = True
            elif kind == H2_SETTINGS:
                self.settings = True
                self.out += h2_frame(H2_SETTINGS, H2_ACK)
        return self.complete()

    def complete(self):
        return self.settings and self.acked and not self.out


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


def main():
    h2 = sys.argv[1] in ("--h2c", "--h2")
    if h2:
        port, total = int(sys.argv[2]), int(sys.argv[3])
        tls = tls_context() if sys.argv[1] == "--h2" else None
        make = lambda: H2Conn(port, tls)
    else:
        port, path, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        make = lambda: Conn(port, request)
    raise_fd_limit(total + 100)
    sel = selectors.DefaultSelector()
    idle = []
    started = failed = 0
    errors = {}
    deadline = time.monotonic() + DEADLINE_S

    while len(idle) + failed < total and time.monotonic() < deadline:
        while started < total and started - len(idle) - failed < CONNECT_AT_ONCE:
            c = make()
            sel.register(c.sock, selectors.EVENT_WRITE, c)
            started += 1
        for key, events in sel.select(timeout=1.0):
            c = key.data
            try:
                if h2 and c.handshaking:
                    # TCP connected (or TLS progressed): on with the TLS handshake.
                    wait = c.tls_handshake(sel)
                    sel.modify(c.sock, wait or selectors.EVENT_WRITE, c)
                elif events & selectors.EVENT_WRITE:
                    c.on_writable()
                    if not c.out and h2 and c.complete():  # the last thing was our ACK
                        sel.unregister(c.sock)
                        idle.append(c)
                    elif not c.out:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                elif c.on_readable():
                    sel.unregister(c.sock)
                    idle.append(c)
                elif c.out:
                    sel.modify(c.sock, selectors.EVENT_WRITE, c)  # the SETTINGS ACK to send
            except OSError as e:
                if sel.get_map().get(c.sock.fileno()) is not None:
                    sel.unregister(c.sock)
                c.sock.close()
                failed += 1
                errors[str(e)] = errors.get(str(e), 0) + 1

    failed += started - len(idle) - failed  # whatever had not finished by the deadline
    print("READY " + json.dumps({"ok": len(idle), "failed": failed, "errors": errors}), flush=True)
    sys.stdin.readline()

    # A connection the server has closed reads as EOF (or a reset) without blocking.
    # HTTP/2 allows frames while idle (a WINDOW_UPDATE, a session ticket over TLS): for those
    # only EOF or a reset counts as closed.
    alive = 0
    for c in idle:
        try:
            while c.sock.recv(65536 if h2 else 1) and h2:
                pass
            # EOF, or HTTP/1.1 bytes nobody asked for: not an idle open connection
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            alive += 1  # nothing (more) to read: still open
        except OSError:
            pass  # reset
        c.sock.close()
    print("DONE " + json.dumps({"alive": alive}), flush=True)


if __name__ == "__main__":
    main()
