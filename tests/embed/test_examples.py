"""The examples of embedding porter (examples/), compiled and run as a user would.

Compiled: each, with the public headers as installed, as C11 and as C++17 under -Wall -Wextra
-pedantic, must compile without a single warning and link against the shared library (from C++
too: the headers' extern "C" at work).

Run: each starts on an ephemeral port, is asked over HTTP, and is stopped with SIGTERM. Each must
then exit 0: porter's resource counts are back to zero and the sanitizers found nothing.

Python 3 standard library only. The binaries come from $PORTER_EXAMPLES_DIR, the repository
from $PORTER_SOURCE_DIR; the compilers from $PORTER_CC and $PORTER_CXX, the public headers from
$PORTER_PUBLIC_INCLUDE (and libev's from $PORTER_EV_INCLUDE), the shared library from
$PORTER_LIBRARY, flags for every compile and link (a sanitized build's) from $PORTER_FLAGS.
"""

import http.client
import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("PORTER_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
EXAMPLES_DIR = os.environ.get("PORTER_EXAMPLES_DIR") or os.path.join(SOURCE_DIR, "build", "examples")
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error", "leak:")
TIMEOUT = 10.0


def _child_setup():
    """In the child before exec: die with the test (a killed test leaves no example running)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Example:
    """A running example: its port, and its exit status and output once stopped."""

    def __init__(self, name, *args):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        env.setdefault("TZ", "UTC")
        self.name = name
        self.proc = subprocess.Popen(
            [os.path.join(EXAMPLES_DIR, name)] + list(args) + ["127.0.0.1", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=_child_setup,
        )
        line = self._first_line()
        m = re.search(r"listening on http://[0-9.]+:(\d+)", line)
        if not m:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("%s did not start: %r %r" % (name, line, err))
        self.port = int(m.group(1))

    def _first_line(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        return self.proc.stdout.readline().decode() if ready else ""

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def stop(self):
        """SIGTERM, then the exit status and the rest of stdout and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("%s did not stop on SIGTERM" % self.name)
        err = err.decode("utf-8", "replace")
        for marker in SANITIZER_MARKERS:
            if marker in err:
                raise AssertionError("%s stderr contains %r:\n%s" % (self.name, marker, err))
        return self.proc.returncode, out.decode("utf-8", "replace"), err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def read_events(sock, count, deadline):
    """Reads a chunked event stream from `sock` until `count` events arrived; returns them."""
    data = b""
    while data.count(b"\n\n") < count:
        if time.monotonic() > deadline:
            raise AssertionError("events did not come: %r" % data)
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return re.findall(rb"data: (tick \d+)", data), data


class CompileTest(unittest.TestCase):
    """Every example, as C11 and as C++17, pedantic and without a warning."""

    WARNINGS = ["-Wall", "-Wextra", "-pedantic", "-Werror"]

    def setUp(self):
        for var in ("PORTER_CC", "PORTER_CXX", "PORTER_PUBLIC_INCLUDE", "PORTER_LIBRARY"):
            if not os.environ.get(var):
                self.fail("$%s is not set (tests/CMakeLists.txt sets it)" % var)
        self.include = ["-I" + os.environ["PORTER_PUBLIC_INCLUDE"]]
        if os.environ.get("PORTER_EV_INCLUDE"):
            self.include.append("-I" + os.environ["PORTER_EV_INCLUDE"])
        self.flags = shlex.split(os.environ.get("PORTER_FLAGS", ""))
        self.library = os.environ["PORTER_LIBRARY"]
        self.examples = sorted(f for f in os.listdir(os.path.join(SOURCE_DIR, "examples"))
                               if f.endswith(".c"))
        self.assertGreaterEqual(len(self.examples), 3)

    def build(self, compiler, language, std, source, out):
        cmd = ([compiler, "-std=" + std] + self.WARNINGS + self.flags + self.include +
               ["-x", language, source, "-x", "none", self.library, "-lev",
                "-Wl,-rpath," + os.path.dirname(self.library), "-o", out])
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return r.returncode, r.stdout, " ".join(cmd)

    def test_c11_and_cxx17(self):
        with tempfile.TemporaryDirectory(prefix="porter-examples.") as tmp:
            for name in self.examples:
                source = os.path.join(SOURCE_DIR, "examples", name)
                for compiler, language, std in ((os.environ["PORTER_CC"], "c", "c11"),
                                                (os.environ["PORTER_CXX"], "c++", "c++17")):
                    with self.subTest(example=name, std=std):
                        out = os.path.join(tmp, "%s-%s" % (name, std))
                        code, output, cmd = self.build(compiler, language, std, source, out)
                        self.assertEqual((code, output), (0, ""), cmd)
                        self.assertTrue(os.access(out, os.X_OK))


class HelloTest(unittest.TestCase):
    def setUp(self):
        self.ex = Example("porter-hello")

    def tearDown(self):
        self.ex.kill()

    def test_json_api(self):
        status, headers, body = self.ex.request("GET", "/hello")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        doc = json.loads(body)
        self.assertEqual(doc["hello"], "world")
        self.assertTrue(doc["client"].startswith("127.0.0.1:"))

        payload = json.dumps({"items": list(range(2000))}).encode()
        status, _, body = self.ex.request("POST", "/echo", body=payload)
        self.assertEqual((status, body), (200, payload))

        status, headers, _ = self.ex.request("DELETE", "/hello")
        self.assertEqual((status, headers["Allow"]), (405, "GET, HEAD"))
        status, _, _ = self.ex.request("GET", "/nothing")
        self.assertEqual(status, 404)
        status, _, _ = self.ex.request("POST", "/echo", body=b"x" * (2 << 20))
        self.assertEqual(status, 413)
        code, _, _ = self.ex.stop()
        self.assertEqual(code, 0)


class StaticApiTest(unittest.TestCase):
    def setUp(self):
        self.root = os.path.join(SOURCE_DIR, "htdocs")
        self.ex = Example("porter-static-api", self.root)

    def tearDown(self):
        self.ex.kill()

    def test_files_and_api(self):
        status, headers, body = self.ex.request("GET", "/")
        with open(os.path.join(self.root, "index.html"), "rb") as f:
            self.assertEqual((status, body), (200, f.read()))
        self.assertIn("ETag", headers)
        status, headers, _ = self.ex.request("GET", "/style.css")
        self.assertEqual((status, headers["Content-Type"]), (200, "text/css"))

        status, headers, body = self.ex.request("GET", "/api/time")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Cache-Control"], "no-store")
        doc = json.loads(body)
        self.assertLess(abs(doc["time"] - time.time()), 5)
        self.assertEqual(doc["scheme"], "http")
        status, _, _ = self.ex.request("GET", "/missing.html")
        self.assertEqual(status, 404)

        code, out, _ = self.ex.stop()
        self.assertEqual(code, 0)
        self.assertRegex(out, r'"GET /api/time HTTP/1.1" 200 \d+')
        self.assertRegex(out, r'"GET /missing.html HTTP/1.1" 404 \d+')


class SseTest(unittest.TestCase):
    def setUp(self):
        self.ex = Example("porter-sse")

    def tearDown(self):
        self.ex.kill()

    def open_stream(self, path):
        sock = socket.create_connection(("127.0.0.1", self.ex.port), timeout=TIMEOUT)
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        return sock

    def test_events(self):
        status, headers, body = self.ex.request("GET", "/events?count=3")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/event-stream")
        self.assertEqual(headers["Transfer-Encoding"], "chunked")
        self.assertEqual(re.findall(rb"data: (tick \d+)", body), [b"tick 1", b"tick 2", b"tick 3"])

        # A client that leaves mid-stream: the example hears of it, and nothing is left.
        sock = self.open_stream(b"/events")
        events, _ = read_events(sock, 2, time.monotonic() + TIMEOUT)
        self.assertGreaterEqual(len(events), 2)
        sock.close()
        time.sleep(0.5)
        status, _, page = self.ex.request("GET", "/")
        self.assertIn(b"EventSource", page)

        # Stopped with a stream open: it is cut at the grace period (2 s), and the exit is clean.
        sock = self.open_stream(b"/events")
        read_events(sock, 1, time.monotonic() + TIMEOUT)
        started = time.monotonic()
        code, _, err = self.ex.stop()
        took = time.monotonic() - started
        sock.close()
        self.assertEqual(code, 0)
        self.assertIn("client went away after", err)
        self.assertGreater(took, 1.5)
        self.assertLess(took, 8)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed else 0)
