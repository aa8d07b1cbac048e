"""Shared helpers for porter's integration tests: a running porter, raw HTTP over sockets, and
a small unittest runner that ends with the line "N passed, M failed".

Python 3 standard library only. The binary comes from $PORTER_BIN (ctest sets it to the build's
porter) unless $PORTER_TEST_BIN names another (`make test` runs the tests again with the Release
porter), the repository from $PORTER_SOURCE_DIR. Every socket operation has a timeout, every porter started here is
stopped (or killed) and its temporary directory removed, even when a test fails.
"""

import atexit
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("PORTER_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
PORTER_BIN = (os.environ.get("PORTER_TEST_BIN") or os.environ.get("PORTER_BIN")
              or os.path.join(SOURCE_DIR, "build", "porter"))

# Lines in porter's stderr that mean a memory or UB error, or something left alive at exit.
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error", "porter: leak")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
IO_TIMEOUT = 10.0

_live = set()  # Porter instances not yet cleaned up, for the atexit safety net


def _child_setup():
    """In the child before exec: die with the test process (a killed test leaves no porter)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.setdefault("LSAN_OPTIONS", "")
    # Porter's log stamps use local time; keep the access-log regexes simple.
    env.setdefault("TZ", "UTC")
    return env


def run_porter(args, timeout=30.0, cwd=None):
    """Runs porter with `args` to completion; returns (exit code, stdout, stderr) as text."""
    p = subprocess.run(
        [PORTER_BIN] + list(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
        cwd=cwd,
        env=sanitizer_env(),
        preexec_fn=_child_setup,
    )
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def assert_clean_output(text, what="porter"):
    for marker in SANITIZER_MARKERS:
        if marker in text:
            raise AssertionError("%s output contains %r:\n%s" % (what, marker, text))


_SERVER_BLOCK = re.compile(r"(^|[\s;}])server\s*\{")
# porter's start-up line for each listening address, port 0 resolved ("listening on
# http://127.0.0.1:40123"), in the order of the conf's addresses.
_LISTENING = re.compile(r"listening on (https?)://(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)")


def build_conf(conf_text, error_log=True, user_root=True):
    """Completes a test's conf text. Without a `server {` block the text is taken as server
    directives and wrapped in one that listens on 127.0.0.1:0 with root htdocs. Without an
    error_log directive, `error_log stderr info;` is added at the top. When the tests run as root
    and the text has no `user` directive, `user root;` is added at the end (`user_root=False`
    leaves it out): workers then run as the test does, as they would for any other user, rather
    than as porter's default for root, `nobody`, which cannot reach the test's private temporary
    directory (test_user.py tests the switch)."""
    if not _SERVER_BLOCK.search(conf_text):
        conf_text = (
            "server {\n"
            "    listen 127.0.0.1:0;\n"
            "    root htdocs;\n"
            "%s\n"
            "}\n" % conf_text
        )
    if error_log and not re.search(r"(^|[\s;{}])error_log\s", conf_text):
        conf_text = "error_log stderr info;\n" + conf_text
    if user_root and os.geteuid() == 0 and not re.search(r"(^|[\s;{}])user\s", conf_text):
        conf_text += "\nuser root;\n"
    return conf_text


def write_files(base, files):
    for rel, data in (files or {}).items():
        path = os.path.join(base, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        with open(path, "wb") as f:
            f.write(data)


class Porter:
    """A porter process serving a temporary directory.

    `conf_text` may use "@TMP@" for the temporary directory's absolute path. `files` maps
    paths relative to TMP/htdocs to bytes. `log_file`, if given, is a path (may use @TMP@)
    where porter's error log goes: the "listening on" line is looked for there instead of on
    stderr. `extra` maps paths relative to TMP (not htdocs) to bytes.

    The port is the one porter reports ("listening on ..."; port 0 resolved). With
    `listen_log=False` (a conf whose log level hides that line) it is read from the kernel's
    table of the process's listening sockets instead. `env` adds to (or replaces) porter's
    environment (sanitizer_env()). `user_root=False`: no `user root;` is added when the tests
    run as root (build_conf()).
    """

    def __init__(self, conf_text="", files=None, extra=None, log_file=None, start=True,
                 prefix="porter-itest-", run_as=None, listen_log=True, env=None,
                 user_root=True):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.env = sanitizer_env()
        self.env.update(env or {})
        self.run_as = run_as  # a uid to drop to (when the tests run as root)
        self.listen_log = listen_log
        if run_as is not None:
            os.chmod(self.tmp, 0o755)
        self.htdocs = os.path.join(self.tmp, "htdocs")
        os.makedirs(self.htdocs)
        self.proc = None
        self.port = None
        self.host = None
        self.exit_code = None
        self._chunks = []
        self._lock = threading.Lock()
        self._reader = None
        self._stopped = False
        _live.add(self)
        try:
            write_files(self.htdocs, files)
            write_files(self.tmp, extra)
            text = build_conf(conf_text, user_root=user_root).replace("@TMP@", self.tmp)
            self.conf_path = os.path.join(self.tmp, "porter.conf")
            with open(self.conf_path, "w") as f:
                f.write(text)
            self.log_file = log_file.replace("@TMP@", self.tmp) if log_file else None
            if start:
                self.start()
        except BaseException:
            self.cleanup()
            raise

    # ---- process ----

    def start(self):
        self.proc = subprocess.Popen(
            [PORTER_BIN, "-p", self.tmp, "-c", self.conf_path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
            env=self.env,
            preexec_fn=self._preexec,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.listen_log:
                found = listening_sockets(self.pid)
                if found:
                    self.host, self.port = found[0]
                    return
            m = _LISTENING.search(self.log_text())
            if self.listen_log and m:
                self.host = m.group(2).strip("[]")
                self.port = int(m.group(3))
                return
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise AssertionError(
                    "porter exited with %s before listening:\n%s" % (self.proc.returncode, self.output)
                )
            time.sleep(0.02)  # polling for the line above
        raise AssertionError("porter did not report listening within %ss:\n%s" % (START_TIMEOUT, self.output))

    def _preexec(self):
        _child_setup()
        if self.run_as is not None:
            os.setgroups([])
            os.setgid(self.run_as)
            os.setuid(self.run_as)

    def _read_output(self):
        fd = self.proc.stdout
        while True:
            try:
                data = fd.read1(65536) if hasattr(fd, "read1") else os.read(fd.fileno(), 65536)
            except (OSError, ValueError):
                break
            if not data:
                break
            with self._lock:
                self._chunks.append(data)

    @property
    def output(self):
        """Everything porter wrote to stderr (and stdout) so far."""
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", "replace")

    def log_text(self):
        """Where porter's "listening on" lines go: its error log file if it has one, else its
        output."""
        if self.log_file and os.path.exists(self.log_file):
            with open(self.log_file, "r", errors="replace") as f:
                return f.read()
        return self.output

    def listening(self, n=1, since=0, timeout=5.0):
        """The addresses porter reported listening on, as (scheme, host, port) in the conf's
        order, from the log text after offset `since` (a reload logs them again). Waits until
        at least `n` are there (the lines come one by one)."""
        got = []

        def enough():
            got[:] = [(m.group(1), m.group(2).strip("[]"), int(m.group(3)))
                      for m in _LISTENING.finditer(self.log_text()[since:])]
            return len(got) >= n

        wait_until(enough, timeout, lambda: "porter reported %d of %d listening addresses:\n%s"
                   % (len(got), n, self.log_text()[-3000:]))
        return list(got)

    def ports(self, n, since=0):
        """The ports of porter's first `n` listening addresses, in the conf's order."""
        return [port for _, _, port in self.listening(n, since)[:n]]

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for porter to exit; returns the exit code (raises on timeout)."""
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("porter did not exit within %ss:\n%s" % (timeout, self.output))
        if self._reader:
            self._reader.join(5)
        return self.exit_code

    def check_exit(self):
        """Asserts a clean exit: code 0, no sanitizer report, nothing left alive."""
        self._stopped = True
        if self.exit_code != 0:
            raise AssertionError("porter exited with %r:\n%s" % (self.exit_code, self.output))
        assert_clean_output(self.output)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait, and assert a clean exit."""
        if self._stopped:
            return
        self._stopped = True
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        self.wait(timeout)
        self.check_exit()

    def cleanup(self):
        """Kills what is left (the whole process group) and removes the temporary directory."""
        _live.discard(self)
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            else:
                # Workers of a master that died are in its process group too.
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            if self._reader:
                self._reader.join(2)
            try:
                self.proc.stdout.close()
            except Exception:
                pass
        if self.tmp and os.path.isdir(self.tmp):
            # chmod'ed files would not stop rmtree for root, but do for others.
            for d, dirs, fs in os.walk(self.tmp):
                for name in dirs + fs:
                    p = os.path.join(d, name)
                    if not os.path.islink(p):
                        try:
                            os.chmod(p, 0o755)
                        except OSError:
                            pass
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self.stop()
        finally:
            self.cleanup()
        return False

    # ---- clients ----

    def connect(self, timeout=IO_TIMEOUT):
        return Conn(self.host, self.port, timeout)

    def url(self, path="/"):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d%s" % (h, self.port, path)

    def get(self, path, headers=None, method="GET", version="1.1"):
        """One request on a fresh connection with Connection: close; returns the Response."""
        with self.connect() as c:
            c.send(request(method, path, headers=headers, version=version, close=True))
            return c.read_response(method)


@atexit.register
def _cleanup_all():
    for p in list(_live):
        try:
            p.cleanup()
        except Exception:
            pass


# ---- raw HTTP ----


def request(method="GET", target="/", headers=None, version="1.1", body=b"", host="localhost",
            close=False):
    """Builds a request. `headers` is a list of (name, value) or a dict; Host is added for
    HTTP/1.1 unless host is None or headers name one."""
    lines = ["%s %s HTTP/%s" % (method, target, version)]
    hs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if host is not None and version == "1.1" and not any(n.lower() == "host" for n, _ in hs):
        hs.insert(0, ("Host", host))
    if close:
        hs.append(("Connection", "close"))
    for n, v in hs:
        lines.append("%s: %s" % (n, v))
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if isinstance(body, str):
        body = body.encode()
    return raw + body


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has_token(self, name, token):
        v = self.header(name)
        return v is not None and token.lower() in [t.strip().lower() for t in v.split(",")]

    def __repr__(self):
        return "<Response %s %s %r body=%d bytes>" % (self.status, self.reason, self.headers, len(self.body))


class Closed(Exception):
    """The server closed the connection before a complete response."""


class Conn:
    """A client connection with a read buffer."""

    def __init__(self, host, port, timeout=IO_TIMEOUT, family=None, rcvbuf=None):
        if family is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            # Set before connect so the window is small from the start.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        try:
            self.sock.connect((host, port))
        except BaseException:
            self.sock.close()
            raise
        self.buf = bytearray()  # received, not yet consumed
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def settimeout(self, t):
        self.timeout = t
        self.sock.settimeout(t)

    def _fill(self, deadline):
        """Reads more bytes into the buffer; raises Closed on EOF or reset, socket.timeout when
        the deadline passes."""
        if self.eof:
            raise Closed("connection closed")
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            self.eof = True
            raise Closed("connection reset")
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            self.eof = True
            raise Closed("connection closed")
        self.buf += data

    def read_head(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            try:
                self._fill(deadline)
            except Closed:
                raise Closed("closed after %d bytes of a response head: %r" % (len(self.buf), bytes(self.buf[:200])))
        head = bytes(self.buf[:end])
        del self.buf[:end + 4]
        return head

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            try:
                self._fill(deadline)
            except Closed:
                raise Closed("closed after %d of %d body bytes" % (len(self.buf), n))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_until_close(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                self._fill(deadline)
            except Closed:
                break
        data = bytes(self.buf)
        self.buf = bytearray()
        return data

    def read_response(self, method="GET", timeout=None):
        """Reads one response. HEAD, 1xx, 204 and 304 have no body; otherwise the body is
        framed by chunked, Content-Length, or the end of the connection."""
        head = self.read_head(timeout)
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        m = re.match(r"^HTTP/(\d\.\d) (\d{3}) ?(.*)$", lines[0])
        if not m:
            raise AssertionError("bad status line: %r" % lines[0])
        headers = []
        for line in lines[1:]:
            if ":" not in line:
                raise AssertionError("bad header line %r in %r" % (line, text))
            n, v = line.split(":", 1)
            if n != n.strip() or not n:
                raise AssertionError("bad header name %r" % n)
            headers.append((n, v.strip()))
        status = int(m.group(2))
        resp = Response(m.group(1), status, m.group(3), headers, b"", head)
        if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header_all("Content-Length")
        if te and "chunked" in te.lower():
            resp.body = self._read_chunked(timeout)
        elif cl:
            if len(set(cl)) != 1:
                raise AssertionError("conflicting Content-Length: %r" % cl)
            resp.body = self.read_exact(int(cl[0]), timeout)
        else:
            resp.body = self.read_until_close(timeout)
        return resp

    def _read_chunked(self, timeout):
        deadline = time.monotonic() + (timeout or self.timeout)
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill(deadline)
            i = self.buf.find(b"\r\n")
            line = bytes(self.buf[:i])
            del self.buf[:i + 2]
            size = int(line.split(b";")[0], 16)
            if size == 0:  # trailer fields, then an empty line
                while not (self.buf.startswith(b"\r\n") or b"\r\n\r\n" in self.buf):
                    self._fill(deadline)
                if self.buf.startswith(b"\r\n"):
                    del self.buf[:2]
                else:
                    del self.buf[:self.buf.find(b"\r\n\r\n") + 4]
                return body
            body += self.read_exact(size, max(0.01, deadline - time.monotonic()))
            self.read_exact(2, max(0.01, deadline - time.monotonic()))

    def read_responses(self, methods, timeout=None):
        """Reads one response per entry of `methods` (pipelined requests), in order."""
        return [self.read_response(m, timeout) for m in methods]

    def wait_closed(self, timeout=5.0):
        """Waits for the server to close. Returns (closed, extra bytes received meanwhile,
        seconds waited). closed is True on EOF or ECONNRESET, False at the timeout."""
        start = time.monotonic()
        deadline = start + timeout
        extra = self.buf
        self.buf = bytearray()
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, bytes(extra), time.monotonic() - start
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                self.eof = True
                break
            finally:
                self.sock.settimeout(self.timeout)
            if not data:
                self.eof = True
                break
            extra += data
        return True, bytes(extra), time.monotonic() - start


def connect(host, port, timeout=IO_TIMEOUT):
    return Conn(host, port, timeout)


def closed_at(conns, timeout):
    """Watches the connections (Conns or sockets) together until the peer has closed each
    one (EOF or reset) or `timeout` seconds pass; returns for each the time.monotonic() at
    which its close was seen, or None. A close is seen when it happens, never earlier, so a
    time here bounds from above when the peer closed (bytes received meanwhile are
    dropped)."""
    import select

    socks = [c.sock if isinstance(c, Conn) else c for c in conns]
    seen = [None] * len(socks)
    for i, c in enumerate(conns):
        if isinstance(c, Conn) and c.eof:
            seen[i] = time.monotonic()
    deadline = time.monotonic() + timeout
    while None in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([s for s, t in zip(socks, seen) if t is None], [], [], left)
        now = time.monotonic()
        for s in ready:
            i = socks.index(s)
            try:
                data = s.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:  # a reset
                data = b""
            if not data:
                seen[i] = now
    return seen


def reserve_port(hosts=("127.0.0.1",)):
    """A port held for porter, for a conf that must name it before porter starts: several
    server blocks on one address (`listen X:0` is a socket of its own in each) or the port
    written into the conf itself. Returns (port, sockets): the port is bound on each of
    `hosts` with SO_REUSEADDR and not listening, so no other bind takes it (an ephemeral port
    of the kernel's or another test's bind) while porter, which also sets SO_REUSEADDR, binds
    and listens on it. Close the sockets once porter listens (PorterTestCase.reserve_port
    does it at the end of the test)."""
    for _ in range(20):
        held = []
        try:
            port = 0
            for host in hosts:
                s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
                held.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
                port = s.getsockname()[1]
            return port, held
        except OSError as e:
            for s in held:
                s.close()
            if e.errno != errno.EADDRINUSE:  # the first host's port was taken in another
                raise
    raise AssertionError("no port free on all of %r" % (hosts,))


def closed_port(host="127.0.0.1"):
    """(port, socket): a port that refuses connections and stays so while the socket is open
    (bound without SO_REUSEADDR and not listening: nothing else can listen on it)."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, 0))
    return s.getsockname()[1], s


def listening_sockets(pid):
    """(host, port) of the TCP sockets `pid` listens on, from /proc (its fds' inodes matched
    against the kernel's socket tables), lowest fd first."""
    inodes = {}
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return []
    for name in names:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes[link[8:-1]] = int(name)
    found = []
    for table, v6 in (("tcp", False), ("tcp6", True)):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: TCP_LISTEN
                continue
            addr, port = fields[1].split(":")
            raw = bytes.fromhex(addr)
            if v6:  # four 32-bit words, each in host (little-endian) order
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                host = socket.inet_ntop(socket.AF_INET6, raw)
            else:
                host = socket.inet_ntop(socket.AF_INET, raw[::-1])
            found.append((inodes[fields[9]], host, int(port, 16)))
    return [(h, p) for _, h, p in sorted(found)]


def has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---- test base and runner ----


class PorterTestCase(unittest.TestCase):
    """Adds start_porter(): a porter stopped (asserting a clean exit) at the end of the test and
    removed in every case."""

    def start_porter(self, conf_text="", files=None, **kw):
        p = Porter(conf_text, files, **kw)
        self.addCleanup(p.cleanup)
        self.addCleanup(self._stop_if_passing, p)
        return p

    def reserve_port(self, hosts=("127.0.0.1",)):
        """reserve_port(), the sockets closed at the end of the test."""
        port, held = reserve_port(hosts)
        for s in held:
            self.addCleanup(s.close)
        return port

    def closed_port(self, host="127.0.0.1"):
        """closed_port(), the socket closed at the end of the test."""
        port, s = closed_port(host)
        self.addCleanup(s.close)
        return port

    def _stop_if_passing(self, p):
        # Always stop; if porter misbehaves at exit, the test fails with its output.
        p.stop()

    def assertTimedOut(self, elapsed, timeout, early=0.2, margin=2.0, what="the timeout"):
        """Asserts that `elapsed`, the seconds the client measured until it saw porter act, is
        porter's `timeout`, checked from both sides. Not before timeout - `early`: libev reads
        its clock once per loop iteration, so a timer armed from a stale reading fires early by
        as much (0.1 to 0.2 s), and a client that starts its clock after porter armed the timer
        (after reading a response) sees it sooner still. Not after timeout + `margin`: the
        seconds allowed to ASan and a loaded 2-core machine."""
        self.assertGreaterEqual(elapsed, timeout - early, "%s (%g s) came after %.2f s: early"
                                % (what, timeout, elapsed))
        self.assertLess(elapsed, timeout + margin, "%s (%g s) came after %.2f s: %g s late"
                        % (what, timeout, elapsed, elapsed - timeout))

    def assertStatus(self, resp, status):
        self.assertEqual(resp.status, status, "expected %d, got %r\n%r" % (status, resp, resp.body[:300]))

    def assertClosed(self, conn, timeout=5.0, allow_extra=False):
        closed, extra, _ = conn.wait_closed(timeout)
        self.assertTrue(closed, "the server did not close the connection within %ss" % timeout)
        if not allow_extra:
            self.assertEqual(extra, b"", "unexpected bytes before the close")

    def assertOpen(self, conn, wait=0.3):
        closed, extra, _ = conn.wait_closed(wait)
        self.assertFalse(closed, "the server closed the connection")
        self.assertEqual(extra, b"", "unexpected bytes on an idle connection")


class _Result(unittest.TextTestResult):
    """Remembers the id of every test started (run, failed or skipped)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.started = set()

    def startTest(self, test):
        self.started.add(test.id())
        super().startTest(test)


def _unreachable_tests(module):
    """Tests the module's text defines that no run would see, as sentences: a class or
    function after the `if __name__ == "__main__": harness.main()` block (main() exits before
    Python reaches it), a top-level class the module did not define by the time main() runs,
    and a class or test method defined twice (the second hides the first)."""
    import ast

    path = getattr(module, "__file__", None)
    if not path:
        return []
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    problems = []
    seen = {}
    main_at = None
    for node in tree.body:
        is_main = (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                   and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")
        if is_main and main_at is None:
            main_at = node.lineno
            continue
        if main_at is not None and not isinstance(node, (ast.Import, ast.ImportFrom)):
            problems.append("line %d: %s after the harness.main() block of line %d never "
                            "runs: move the block to the end of the module"
                            % (node.lineno, type(node).__name__, main_at))
        if not isinstance(node, ast.ClassDef):
            continue
        if node.name in seen:
            problems.append("line %d: class %s is defined again (line %d): the first one's "
                            "tests never run" % (node.lineno, node.name, seen[node.name]))
        seen[node.name] = node.lineno
        if main_at is None and not isinstance(vars(module).get(node.name), type):
            problems.append("line %d: class %s is not defined when harness.main() runs"
                            % (node.lineno, node.name))
        methods = {}
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if item.name.startswith("test") and item.name in methods:
                    problems.append("line %d: %s.%s is defined again (line %d): the first one "
                                    "never runs" % (item.lineno, node.name, item.name,
                                                    methods[item.name]))
                methods[item.name] = item.lineno
    return problems


_known_bugs = []  # (test id, what) of the known_bug tests that failed as described


def known_bug(what, match):
    """Marks a test that asserts what porter promises and fails today for a known reason in
    porter (`what`, said in the run's summary). The test passes only while it fails with an
    AssertionError whose message contains `match`; any other failure is a failure, and so is
    a pass (the bug is gone: remove the mark)."""
    import functools

    def mark(fn):
        @functools.wraps(fn)
        def run(self, *args, **kw):
            try:
                fn(self, *args, **kw)
            except AssertionError as e:
                if match not in str(e):
                    raise
                _known_bugs.append((self.id(), what))
                return
            raise AssertionError("known porter bug no longer seen (remove @known_bug): " + what)

        return run

    return mark


def _defined_tests(module):
    """The ids of every test method of the TestCase classes the module defines."""
    ids = set()
    loader = unittest.defaultTestLoader
    for obj in vars(module).values():
        if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                and obj.__module__ == module.__name__):
            for name in loader.getTestCaseNames(obj):
                ids.add("%s.%s.%s" % (module.__name__, obj.__qualname__, name))
    return ids


def main():
    """Runs the calling module's tests; prints "N passed, M failed" as the last line and exits
    0 only if nothing failed. A test the module defines but that cannot run (defined after
    this call, hidden by a second definition) or that did not run counts as a failure."""
    if not os.access(PORTER_BIN, os.X_OK):
        print("PORTER_BIN %r is not an executable" % PORTER_BIN)
        print("0 passed, 1 failed")
        sys.exit(1)
    print("porter: %s" % PORTER_BIN)

    def interrupted(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    # Stopped from outside (a test driver's timeout): unwind so every porter is killed and
    # every temporary directory removed. (SIGKILL cannot be caught: PR_SET_PDEATHSIG at least
    # takes the porter processes down with us.)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    module = sys.modules["__main__"]
    dead = _unreachable_tests(module)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    if len(sys.argv) > 1:  # names of tests to run: "test_x", "Class.test_x" or "Class"
        wanted = sys.argv[1:]
        flat = []

        def walk(s):
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    walk(t)
                else:
                    flat.append(t)

        walk(suite)
        suite = unittest.TestSuite(
            t for t in flat
            if any(t.id().endswith("." + w) or ("." + w + ".") in t.id() for w in wanted)
        )
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=_Result)
    start = time.monotonic()
    try:
        result = runner.run(suite)
    except KeyboardInterrupt:
        _cleanup_all()
        print("interrupted")
        print("0 passed, 1 failed")
        sys.exit(1)
    _cleanup_all()
    if len(sys.argv) == 1:
        dead += ["%s never ran" % t for t in sorted(_defined_tests(module) - result.started)]
    problems = result.failures + result.errors
    failed = len(problems) + len(result.unexpectedSuccesses) + len(dead)
    skipped = len(result.skipped)
    # A failing setUpClass/tearDownClass is reported but is not one of the tests run.
    failed_tests = len([t for t, _ in problems if isinstance(t, unittest.TestCase)])
    passed = (result.testsRun - failed_tests - len(result.unexpectedSuccesses) - skipped
              - len(_known_bugs))
    if skipped:
        print("%d skipped" % skipped)
    for line in dead:
        print("DEAD TEST: %s" % line)
    for test_id, what in _known_bugs:
        print("KNOWN PORTER BUG (%s): %s" % (test_id, what))
    print("(%.1f s)" % (time.monotonic() - start))
    sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    sys.exit(0 if failed == 0 and result.testsRun > 0 else 1)


# ---- helpers for process, load and status tests ----


def proc_children(pid):
    """PIDs whose parent is `pid`, from /proc (zombies included)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # The command may hold spaces or parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(name))
    return kids


def proc_alive(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def proc_live_children(pid):
    return [k for k in proc_children(pid) if proc_alive(k)]


def proc_cpu_seconds(pid):
    """User plus system CPU time `pid` has used so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_fd_count(pid, kind=None):
    """Open fds of `pid`; with kind="socket" only sockets."""
    n = 0
    for name in os.listdir("/proc/%d/fd" % pid):
        if kind is None:
            n += 1
            continue
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith(kind + ":"):
                n += 1
        except OSError:
            pass
    return n


def silent_client_waits_in_the_kernel(port):
    """Whether a client that connects to 127.0.0.1:`port` and sends nothing stays unaccepted
    (SYN-RECV on the server's side: TCP_DEFER_ACCEPT) rather than handed to the server. Needs
    ss (iproute2)."""
    with socket.create_connection(("127.0.0.1", port), 5):
        time.sleep(0.3)  # silent for a while: a socket without TCP_DEFER_ACCEPT is accepted
        out = subprocess.run(["ss", "-Htn", "state", "syn-recv", "( sport = :%d )" % port],
                             capture_output=True, text=True, check=True).stdout
        return bool(out.strip())


def wait_for(pred, timeout=10.0, interval=0.05):
    """Polls `pred` until it returns a true value (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)  # the polling's pace


def wait_until(pred, timeout=10.0, message="the condition"):
    """Polls `pred` until it returns a true value, which is returned; after `timeout` seconds
    raises AssertionError with `message` (a string, or a function called then for one). The
    timeout is a bound for a loaded machine, not a pace: a condition met at once returns at
    once."""
    v = wait_for(pred, timeout)
    if not v:
        text = message() if callable(message) else message
        raise AssertionError("not met within %gs: %s" % (timeout, text))
    return v


def wait_workers(p, n, timeout=10.0, exclude=()):
    """Waits until porter's master has exactly `n` live workers, none of them in `exclude`;
    returns their pids (sorted) or raises."""
    got = []

    def ok():
        got[:] = sorted(proc_live_children(p.pid))
        return len(got) == n and not (set(got) & set(exclude))

    if not wait_for(ok, timeout):
        raise AssertionError("expected %d workers (not %r), have %r:\n%s"
                             % (n, sorted(exclude), got, p.output))
    return list(got)


def connect_from(host, port, source, timeout=IO_TIMEOUT):
    """A Conn whose local address is `source` (another loopback address: 127.0.0.2)."""
    c = Conn.__new__(Conn)
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.settimeout(timeout)
    c.timeout = timeout
    try:
        c.sock.bind((source, 0))
        c.sock.connect((host, port))
    except BaseException:
        c.sock.close()
        raise
    c.buf = bytearray()
    c.eof = False
    return c


def reset_close(sock):
    """Closes with a reset (SO_LINGER 0): the way a killed client goes."""
    import struct

    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def tool(name):
    """The path of an installed program, or None."""
    return shutil.which(name)


def _wrk_cmd(url, duration, threads, connections, timeout, extra):
    return ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration,
            "--timeout", timeout] + list(extra) + [url]


def _wrk_result(code, text):
    """wrk's summary as a dict: requests, non2xx, and the socket errors connect, read, write,
    timeout (0 when wrk prints none), plus the raw output as "text"."""
    out = {"text": text, "code": code, "requests": 0, "non2xx": 0,
           "connect": 0, "read": 0, "write": 0, "timeout": 0}
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        for k, v in zip(("connect", "read", "write", "timeout"), m.groups()):
            out[k] = int(v)
    return out


def run_wrk(url, duration=5, threads=2, connections=16, timeout="5s", extra=()):
    """Runs wrk against `url` for `duration` seconds; returns its summary (_wrk_result)."""
    p = subprocess.run(_wrk_cmd(url, duration, threads, connections, timeout, extra),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=duration + 30, preexec_fn=_child_setup)
    return _wrk_result(p.returncode, p.stdout.decode("utf-8", "replace"))


class Wrk:
    """wrk running in the background until stop() (at most `duration` seconds): a load that
    lasts exactly as long as the test needs it."""

    def __init__(self, url, duration=120, threads=2, connections=16, timeout="5s", extra=()):
        self.connections = connections
        self.proc = subprocess.Popen(_wrk_cmd(url, duration, threads, connections, timeout, extra),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=_child_setup)

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        """Stops wrk (SIGINT: it prints its summary) and returns the summary."""
        if self.running():
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return _wrk_result(self.proc.returncode, out.decode("utf-8", "replace"))


def server_side(pids, port, client):
    """(pid, fd) of the socket that one of `pids` (porter and its workers) holds for the
    client connection `client` (a Conn or socket) to porter's `port`, or None."""
    sock = client.sock if isinstance(client, Conn) else client
    cport = sock.getsockname()[1]
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/net/%s" % table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if (fields[3] == "01" and int(fields[1].split(":")[1], 16) == port
                    and int(fields[2].split(":")[1], 16) == cport):
                inodes.add("socket:[%s]" % fields[9])
    for pid in pids:
        try:
            names = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, name)) in inodes:
                    return pid, int(name)
            except OSError:
                pass
    return None


def _socket_inodes(pids):
    inodes = set()
    for pid in pids:
        try:
            names = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for name in names:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, name))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    return inodes


def accepted(p, port=None):
    """How many client connections porter (its master and workers) holds on `port` (its first
    listening port by default): the connections it has taken in, not those waiting in the
    listen backlog."""
    port = p.port if port is None else port
    inodes = _socket_inodes([p.pid] + proc_live_children(p.pid))
    n = 0
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (p.pid, table)) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if (fields[3] != "0A" and fields[9] in inodes
                    and int(fields[1].split(":")[1], 16) == port):
                n += 1
    return n


def backlog(port):
    """How many connections wait in the accept queues of the sockets listening on `port` (all
    of them: one per worker with SO_REUSEPORT), from the kernel's table."""
    n = 0
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                n += int(fields[4].split(":")[1], 16)  # rx_queue: the accept queue's length
    return n


def holds_path(pids, suffix):
    """Whether any of `pids` has a file open whose path ends with `suffix`."""
    for pid in pids:
        try:
            names = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, name)).endswith(suffix):
                    return True
            except OSError:
                pass
    return False


def fd_of(pid, fd):
    """A duplicate of file descriptor `fd` of process `pid` in this process (pidfd_getfd(2),
    Linux 5.6; needs the right to ptrace it), or None when the kernel refuses. The caller
    closes it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd, the same on every arch
    finally:
        os.close(pidfd)
    return dup if dup >= 0 else None


class Strace:
    """strace attached to a running process (all its threads), recording the calls named by
    `calls` (a regex of syscall names) until stop(). Detach before the process exits: its
    leak check at exit needs ptrace itself."""

    def __init__(self, pid, calls):
        self.path = tempfile.mktemp(prefix="porter-strace-")
        self.proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-e", "trace=/^(%s)$" % calls, "-o", self.path,
             "-p", str(pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_child_setup)
        # Attached once the tracee shows a tracer in its status.
        tracer = wait_for(lambda: _tracer_of(pid), 10)
        if tracer != self.proc.pid:
            self.stop()
            raise AssertionError("strace did not attach to %d: %s"
                                 % (pid, self.proc.stderr.read().decode("utf-8", "replace")))

    def stop(self):
        """Detaches; returns the recorded lines."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        try:
            with open(self.path) as f:
                return f.read().splitlines()
        except OSError:
            return []
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _tracer_of(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def established_to(port):
    """How many TCP connections on this machine are established to 127.0.0.1:`port` (the
    clients' side), from /proc/net/tcp."""
    n = 0
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "01" and fields[2] == "0100007F:%04X" % port:
                n += 1
    return n


STATUS_CONF = "    location /porter-status { status; }\n"


def get_status(p, path="/porter-status?format=json", conn=None):
    """porter's status page as parsed JSON. Raises AssertionError with a clear message when the
    page is missing or is not JSON (the status location is not supported)."""
    import json

    if conn is None:
        r = p.get(path)
    else:
        conn.send(request("GET", path))
        r = conn.read_response()
    if r.status != 200:
        raise AssertionError("the status page %s answered %d, not 200 (is `location "
                             "/porter-status { status; }` supported?): %r"
                             % (path, r.status, r.body[:200]))
    try:
        return json.loads(r.body.decode("utf-8"))
    except ValueError as e:
        raise AssertionError("the status page %s is not JSON (%s): %r" % (path, e, r.body[:300]))
