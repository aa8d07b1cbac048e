"""systemd's readiness protocol (sd_notify), spoken by hand: with NOTIFY_SOCKET set, porter sends
a datagram "READY=1" (with its MAINPID) once it accepts (with workers: once every worker does),
"RELOADING=1" then "READY=1" around a reload (a failed one too), and "STOPPING=1" when it stops.
The socket here is the test's own, a path or an abstract name (systemd uses both)."""

import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase


class Listener:
    """A datagram socket standing for systemd's notification socket."""

    def __init__(self, tmp=None, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "porter-notify-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = os.path.join(tmp, "notify.sock")
            self.sock.bind(path)
            self.env = path
        self.sock.settimeout(harness.IO_TIMEOUT)

    def next(self):
        """The next message, as text."""
        return self.sock.recv(4096).decode()

    def none_within(self, secs):
        self.sock.settimeout(secs)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(harness.IO_TIMEOUT)

    def close(self):
        self.sock.close()


class Notify(PorterTestCase):
    def start(self, listener, workers=1):
        p = self.start_porter("worker_processes %d;\nserver {\n    listen 127.0.0.1:0;\n"
                              "    root htdocs;\n}\n" % workers, {"a.txt": b"alpha\n"},
                              env={"NOTIFY_SOCKET": listener.env}, start=False)
        p.start()
        return p

    def lifecycle(self, listener, workers):
        p = self.start(listener, workers)
        self.assertEqual(listener.next(), "READY=1\nMAINPID=%d" % p.pid)
        if workers > 1:
            # ready means every worker accepts: each has been forked and started by then
            self.assertEqual(len(harness.proc_live_children(p.pid)), workers)
        self.assertEqual(p.get("/a.txt").status, 200)
        p.signal(signal.SIGHUP)
        self.assertEqual(listener.next(), "RELOADING=1")
        self.assertEqual(listener.next(), "READY=1\nMAINPID=%d" % p.pid if workers > 1
                         else "READY=1")
        # a reload that fails says so too: systemd must not wait for READY=1 forever
        with open(p.conf_path, "a") as f:
            f.write("\nbogus 1;\n")
        p.signal(signal.SIGHUP)
        self.assertEqual(listener.next(), "RELOADING=1")
        self.assertEqual(listener.next(), "READY=1")
        p.signal(signal.SIGTERM)
        self.assertEqual(listener.next(), "STOPPING=1")
        self.assertEqual(p.wait(10), 0)
        p.check_exit()
        self.assertIsNone(listener.none_within(0.3), "a message after STOPPING=1")

    def test_one_process(self):
        tmp = self.tmpdir()
        listener = Listener(tmp)
        self.addCleanup(listener.close)
        self.lifecycle(listener, 1)

    def test_workers(self):
        listener = Listener(self.tmpdir())
        self.addCleanup(listener.close)
        self.lifecycle(listener, 2)

    def test_abstract_socket(self):
        listener = Listener(abstract=True)
        self.addCleanup(listener.close)
        p = self.start(listener, 2)
        self.assertEqual(listener.next(), "READY=1\nMAINPID=%d" % p.pid)

    def test_without_notify_socket_nothing_is_sent(self):
        # the variable absent: porter runs as before (and a socket nobody named hears nothing)
        listener = Listener(self.tmpdir())
        self.addCleanup(listener.close)
        p = self.start_porter("server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n",
                              {"a.txt": b"alpha\n"})
        self.assertEqual(p.get("/a.txt").status, 200)
        self.assertIsNone(listener.none_within(0.3))

    def tmpdir(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="porter-itest-notify-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


if __name__ == "__main__":
    harness.main()
