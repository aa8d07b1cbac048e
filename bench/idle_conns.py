#!/usr/bin/env python3
"""Opens N keep-alive connections to a server, each sends one request and reads the whole
response, then all stay open and idle.

    idle_conns.py PORT PATH N

When every connection has its response it prints one line `READY {"ok": ..., "failed": ...}`
and waits. On a line on standard input (or its end) it checks how many connections the server
still holds open, prints `DONE {"alive": ...}`, closes them all and exits. Only 127.0.0.1.
"""

import errno
import json
import resource
import selectors
import socket
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


def main():
    port, path, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    raise_fd_limit(total + 100)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    idle = []
    started = failed = 0
    errors = {}
    deadline = time.monotonic() + DEADLINE_S

    while len(idle) + failed < total and time.monotonic() < deadline:
        while started < total and started - len(idle) - failed < CONNECT_AT_ONCE:
            c = Conn(port, request)
            sel.register(c.sock, selectors.EVENT_WRITE, c)
            started += 1
        for key, events in sel.select(timeout=1.0):
            c = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    c.on_writable()
                    if not c.out:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                elif c.on_readable():
                    sel.unregister(c.sock)
                    idle.append(c)
            except OSError as e:
                sel.unregister(c.sock)
                c.sock.close()
                failed += 1
                errors[str(e)] = errors.get(str(e), 0) + 1

    failed += started - len(idle) - failed  # whatever had not finished by the deadline
    print("READY " + json.dumps({"ok": len(idle), "failed": failed, "errors": errors}), flush=True)
    sys.stdin.readline()

    # A connection the server has closed reads as EOF (or a reset) without blocking.
    alive = 0
    for c in idle:
        try:
            c.sock.recv(1)  # EOF, or bytes nobody asked for: not an idle open connection
        except BlockingIOError:
            alive += 1  # nothing to read: still open
        except OSError:
            pass  # reset
        c.sock.close()
    print("DONE " + json.dumps({"alive": alive}), flush=True)


if __name__ == "__main__":
    main()
