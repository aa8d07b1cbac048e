#!/usr/bin/env python3
"""porter's benchmark: porter against nginx, lighttpd and h2o, and two floors (bench/floor.c, and
bench/floor_deps.c: the same on libev and llhttp).

Run it through bench/run.sh (`make bench`), which installs the peers, builds porter and the
floor and raises the fd limit first. Every server gets a conf generated from its template in
bench/, serves the same docroot on its own port on 127.0.0.1 and is pinned to CPU 0; the load
generator is pinned to CPU 1. Scenarios run in interleaved rounds and medians are reported.
Writes bench/results/latest.md and latest.png and prints the tables. The compression scenarios
(p to s) first check that each server's answer is compressed and decodes to the file.

Environment: ROUNDS (3), DURATION (seconds per run, 5), BASE_PORT (18080), IDLE_CONNS (5000),
SERVERS and SCENARIOS (comma-separated subsets, for a quick look), RESULTS (output folder),
PORTER (another porter binary than build/release/porter), BASELINE (a second porter binary measured
beside it as "porter-before", for before/after numbers in one run), OTHER_MAX and RETRIES
(repeating runs disturbed by other processes). See bench/README.md.
"""

import datetime
import gzip
import http.client
import io
import json
import os
import platform
import random
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / "work"
DOCROOT, CONF, RUN, LOGS, TMP = (WORK / d for d in ("docroot", "conf", "run", "logs", "tmp"))
TLS_DIR = WORK / "tls"
PIDS_FILE = RUN / "pgids"  # process groups started; run.sh's EXIT trap kills what is left

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
BASE_PORT = int(os.environ.get("BASE_PORT", "18080"))
IDLE_CONNS = int(os.environ.get("IDLE_CONNS", "5000"))
RESULTS = Path(os.environ.get("RESULTS", BENCH / "results"))
PORTER = Path(os.environ.get("PORTER") or ROOT / "build/release/porter").resolve()
BASELINE = Path(os.environ["BASELINE"]).resolve() if os.environ.get("BASELINE") else None
FLOOR_DEPS = ROOT / "build/release/floor_deps"
CONNS = 50
PIPELINE_DEPTH = 16
SERVER_CPU, CLIENT_CPU = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

FILES = {"1k.bin": 1024, "100k.bin": 100 * 1024, "10m.bin": 10 * 1024 * 1024}
# The page of the compression scenarios (p to s): generated HTML-like text (make_html).
HTML = "html/100k.html"
HTML_SIZE = 100 * 1024
PEERS = ["nginx", "lighttpd", "h2o"]
NAN = float("nan")
OTHER_MAX = float(os.environ.get("OTHER_MAX", "0.25"))  # a CPU share; see run_once()
RETRIES = int(os.environ.get("RETRIES", "2"))
repeated_runs = 0
NOTES = {}  # server: what the report must say about it (a conf it did not take as written)
retry_budget = 0  # repeats allowed in the whole run: a third of the planned runs


# --- Servers ---------------------------------------------------------------------------------


# Each server's TLS, reverse-proxy and HTTP/2 (over TLS, and cleartext h2c) listeners sit at
# fixed offsets from its plain port; both proxies forward to one backend (a floor responder)
# started for the proxy scenario.
TLS_OFFSET, PROXY_OFFSET, H2_OFFSET, H2C_OFFSET = 100, 200, 400, 500
BACKEND_PORT = BASE_PORT + 300


class Server:
    """One server under test: its conf, its process tree, its CPU time and memory."""

    def __init__(self, name, port, close_port=None):
        self.name = name
        self.port = port
        self.tls_port = port + TLS_OFFSET
        self.proxy_port = port + PROXY_OFFSET
        self.h2_port = port + H2_OFFSET
        self.h2c_port = port + H2C_OFFSET
        self.close_port = close_port or port  # the floor closes connections on its own port
        self.proc = None

    def command(self):
        conf = CONF / f"{self.name}.conf"
        if self.name == "porter":
            return [str(PORTER), "-p", str(WORK), "-c", str(conf)]
        if self.name == "porter-before":
            return [str(BASELINE), "-p", str(WORK), "-c", str(conf)]
        if self.name == "nginx":
            prefix = WORK / "nginx"
            prefix.mkdir(exist_ok=True)
            return ["nginx", "-p", f"{prefix}/", "-c", str(conf), "-e", str(LOGS / "nginx-error.log")]
        if self.name == "lighttpd":
            return ["lighttpd", "-D", "-f", str(conf)]
        if self.name == "h2o":
            return ["/usr/bin/h2o", "-m", "worker", "-c", str(conf)]
        if self.name == "floor":
            return [str(WORK / "floor"), str(self.port), str(self.close_port)]
        if self.name == "floor-deps":
            return [str(FLOOR_DEPS), str(self.port)]
        raise ValueError(self.name)

    def write_conf(self):
        if self.name in FLOORS:
            return
        root = os.geteuid() == 0
        user = os.environ.get("USER") or "root"
        values = {
            "PORT": str(self.port),
            "DOCROOT": str(DOCROOT),
            "RUN": str(RUN),
            "LOGS": str(LOGS),
            "TMP": str(TMP),
            # As root, nginx's workers and h2o would switch to "nobody"; keep the current user.
            "TLS_PORT": str(self.tls_port),
            "PROXY_PORT": str(self.proxy_port),
            "H2_PORT": str(self.h2_port),
            "H2C_PORT": str(self.h2c_port),
            "BACKEND_PORT": str(BACKEND_PORT),
            "CERT": str(TLS_DIR / "bench.crt"),
            "KEY": str(TLS_DIR / "bench.key"),
            "NGINX_USER": f"user {user};" if root else "",
            "H2O_USER": f"user: {user}" if root else "",
        }
        template = "porter" if self.name == "porter-before" else self.name
        text = (BENCH / f"{template}.conf").read_text()
        text = re.sub(r"@([A-Z0-9_]+)@", lambda m: values[m.group(1)], text)
        conf = CONF / f"{self.name}.conf"
        conf.write_text(text)
        if template == "porter" and not self.conf_ok():
            self.write_older_porter_conf(conf, text)

    # What an older porter may reject, how its conf does without it, and what the report says.
    OLDER_PORTER = {
        # Without HTTP/2, `listen ... http2` loses the word: those addresses speak HTTP/1.1,
        # and the HTTP/2 scenarios report errors for it instead of a number.
        "http2": (lambda text: re.sub(r"^(\s*listen\s[^;]*?) http2\b", r"\1", text, flags=re.M),
                  "no HTTP/2 in this binary (`porter -t` rejects `listen ... http2`): its HTTP/2 "
                  "addresses speak HTTP/1.1, its HTTP/2 runs fail"),
        # Without compression on the fly, the block that sets it up goes: the page is then
        # served as it is, and the compression scenarios report that instead of a number.
        "compression": (lambda text: re.sub(r"^[ \t]*# begin: compression\n.*?"
                                            r"^[ \t]*# end: compression\n", "", text,
                                            flags=re.M | re.S),
                        "no compression on the fly in this binary (`porter -t` rejects `gzip "
                        "on`): its compression checks fail, it has no numbers there"),
    }

    def write_older_porter_conf(self, conf, text):
        """The conf without what this porter rejects: HTTP/2, compression, or both."""
        for drop in (["http2"], ["compression"], ["http2", "compression"]):
            out = text
            for what in drop:
                out = self.OLDER_PORTER[what][0](out)
            conf.write_text(out)
            if self.conf_ok():
                NOTES[self.name] = "; ".join(self.OLDER_PORTER[what][1] for what in drop)
                print(f"bench: {self.name}: {NOTES[self.name]}", file=sys.stderr)
                return
        conf.write_text(text)
        self.conf_ok()
        raise RuntimeError(f"{self.name}: its conf is rejected:\n" + self.conf_error)

    def conf_ok(self):
        """porter -t on the written conf."""
        out = subprocess.run(self.command() + ["-t"], capture_output=True, text=True, cwd=WORK)
        self.conf_error = (out.stdout + out.stderr).strip()
        return out.returncode == 0

    def start(self):
        ensure_port_free(self.port)
        if self.name in TLS_SERVERS:
            ensure_port_free(self.tls_port)
            ensure_port_free(self.proxy_port)
        if self.name in H2_SERVERS:
            ensure_port_free(self.h2_port)
            ensure_port_free(self.h2c_port)
        if self.close_port != self.port:
            ensure_port_free(self.close_port)
        log = open(LOGS / f"{self.name}.out", "ab")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU] + self.command(),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=WORK, start_new_session=True,
        )
        log.close()
        with open(PIDS_FILE, "a") as f:
            f.write(f"{self.proc.pid}\n")
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start ({self.proc.returncode}):\n"
                                   + self.log_tail())
            try:
                status, _ = http_get(self.port, "/1k.bin")
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} does not answer on port {self.port}:\n"
                                   + self.log_tail())
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        pgid = self.proc.pid  # a session leader: its pid is its process group
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            self.proc.wait()
        # Workers may outlive their master for a moment; the group must be empty.
        for _ in range(100):
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.killpg(pgid, signal.SIGKILL)
        remaining = [p for p in PIDS_FILE.read_text().split() if p != str(pgid)]
        PIDS_FILE.write_text("".join(p + "\n" for p in remaining))
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        """The server's process and all its descendants (master and workers)."""
        children = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    ppid = int(read_stat(entry.name)[1])
                except (OSError, IndexError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def cpu_seconds(self):
        """utime + stime of every process of the server, in seconds."""
        ticks = 0
        for pid in self.pids():
            try:
                fields = read_stat(pid)
                ticks += int(fields[11]) + int(fields[12])
            except (OSError, IndexError):
                pass
        return ticks / CLK_TCK

    def memory_kib(self):
        """(Pss, Rss) summed over every process of the server, in KiB."""
        pss = rss = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            pss += int(line.split()[1])
                        elif line.startswith("Rss:"):
                            rss += int(line.split()[1])
            except OSError:
                pass
        return pss, rss

    def log_tail(self, lines=15):
        out = []
        for path in sorted(LOGS.glob(f"{self.name}*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            if text:
                out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def read_stat(pid):
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()


class PortInUse(Exception):
    """A port the run needs is taken: said in one line, not a traceback."""


def port_free(port):
    with socket.socket() as s:
        # Like the servers, ignore connections in TIME_WAIT; only a listener makes it busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def port_in_use_message(port):
    return (f"port {port} on 127.0.0.1 is in use; set BASE_PORT to another base (now {BASE_PORT}; "
            f"the run takes ports from BASE_PORT to BASE_PORT+{H2C_OFFSET + len(ALL)})")


def ensure_port_free(port):
    if not port_free(port):
        raise PortInUse(port_in_use_message(port))


def ports_needed(names):
    """Every port a run of the servers `names` listens on (the backend's included)."""
    ports = {BACKEND_PORT, BACKEND_PORT + 1}
    if "floor" in names:
        ports.add(BASE_PORT + len(ALL))  # the floor's port for connections it closes
    for i, name in enumerate(ALL):
        if name not in names:
            continue
        server = Server(name, BASE_PORT + i)
        ports.add(server.port)
        if name in TLS_SERVERS:
            ports |= {server.tls_port, server.proxy_port}
        if name in H2_SERVERS:
            ports |= {server.h2_port, server.h2c_port}
    return sorted(ports)


def check_ports(names):
    """Exits with one line naming BASE_PORT if a port the run needs is in use."""
    for port in ports_needed(names):
        if not port_free(port):
            sys.exit("bench: " + port_in_use_message(port))


def http_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# --- Load generators -------------------------------------------------------------------------


def tcp_passive_opens():
    """Connections accepted by this machine's TCP stack so far (on a shared machine, other
    programs' connections count too: a ratio a little above 1 is their noise)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("PassiveOpens")])


def machine_busy_seconds():
    """CPU time the machine spent in processes (user, system) or lost to the hypervisor (steal),
    on every CPU. Interrupt and softirq time is left out: there the kernel delivers the
    benchmark's own loopback packets, charged to no process."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    return (user + nice + system + steal) / CLK_TCK


def client_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_client(server, argv, check=True):
    """Runs a load generator pinned to its CPU; returns its stdout and what the run cost."""
    cpu0, client0, opens0 = server.cpu_seconds(), client_cpu_seconds(), tcp_passive_opens()
    busy0, t0 = machine_busy_seconds(), time.monotonic()
    out = subprocess.run(["taskset", "-c", CLIENT_CPU] + argv, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=DURATION + 60)
    wall = time.monotonic() - t0
    cpu = server.cpu_seconds() - cpu0
    client = client_cpu_seconds() - client0
    # What neither the server nor the client used: other work on this shared machine.
    other = machine_busy_seconds() - busy0 - cpu - client
    cost = {"wall": wall, "cpu": cpu, "client": client, "other": max(other, 0.0),
            "conns": tcp_passive_opens() - opens0}
    if check and out.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return out.stdout, cost


def wrk_command(port, path, script, extra=(), scheme="http", headers=()):
    head = [a for h in headers for a in ("-H", h)]
    return (["wrk", "-t1", f"-c{CONNS}", f"-d{DURATION}s", "--timeout", "10s"] + head +
            ["-s", str(BENCH / script), f"{scheme}://127.0.0.1:{port}{path}"] + list(extra))


def run_wrk(server, path, pipelined=False, port=None, scheme="http", headers=()):
    extra = ["--", str(PIPELINE_DEPTH)] if pipelined else []
    argv = wrk_command(port or server.port, path, "pipeline.lua" if pipelined else "report.lua",
                       extra, scheme, headers)
    stdout, cost = run_client(server, argv)
    line = next((l for l in stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError("wrk printed no summary:\n" + stdout)
    s = json.loads(line[len("BENCH_JSON "):])
    seconds = s["duration_us"] / 1e6
    errors = {k: s[k] for k in ("connect", "read", "write", "timeout") if s[k]}
    if s["status"]:
        errors["non-2xx/3xx"] = s["status"]
    return measurement(s["requests"], s["bytes"], seconds, cost, errors)


def ab_command(port, path, scheme="http"):
    # -t before -n: ab's -t resets the request count, and -n then sets the ceiling.
    return ["ab", "-r", "-c", str(CONNS), "-t", str(DURATION), "-n", str(DURATION * 200000),
            f"{scheme}://127.0.0.1:{port}{path}"]


def run_ab(server, path, port=None, scheme="http"):
    stdout, cost = run_client(server, ab_command(port or server.close_port, path, scheme))

    def field(name, default=None):
        m = re.search(rf"^{name}:\s+([\d.]+)", stdout, re.M)
        if m is None and default is None:
            raise RuntimeError(f"ab printed no '{name}':\n" + stdout)
        return float(m.group(1)) if m else default

    requests = int(field("Complete requests"))
    errors = {}
    failed = int(field("Failed requests", 0))
    if failed:
        detail = re.search(r"^Failed requests:.*\n\s+\((.*)\)", stdout, re.M)
        errors["failed"] = f"{failed} ({detail.group(1)})" if detail else failed
    if field("Non-2xx responses", 0):
        errors["non-2xx"] = int(field("Non-2xx responses"))
    return measurement(requests, int(field("Total transferred")), field("Time taken for tests"),
                       cost, errors)


H2_STREAMS = 10  # concurrent streams per connection in the HTTP/2 scenarios
H2_LOAD = "klm"  # the HTTP/2 scenarios run with h2load


def h2load_command(port, path, scheme="https"):
    # --npn-list=h2: ALPN offers h2 alone, so that a server without HTTP/2 fails the run
    # instead of answering over HTTP/1.1. Over http:// h2load sends the HTTP/2 preface at once
    # (h2c with prior knowledge).
    return (["h2load", "-t1", f"-c{CONNS}", f"-m{H2_STREAMS}", f"-D{DURATION}", "--npn-list=h2"]
            + [f"{scheme}://127.0.0.1:{port}{path}"])


def run_h2load(server, path, port, scheme="https"):
    """An HTTP/2 run. A server that does not speak HTTP/2 there (no ALPN h2, or no answer to
    the preface) gives a result without a number and with its errors, not an exception."""
    stdout, cost = run_client(server, h2load_command(port, path, scheme), check=False)

    def numbers(pattern):
        m = re.search(pattern, stdout, re.M)
        return [float(x) for x in m.groups()] if m else None

    finished = re.search(r"^finished in ([\d.]+)(m?s),", stdout, re.M)
    seconds = (float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
               if finished else NAN)
    reqs = numbers(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                   r"(\d+) failed, (\d+) errored, (\d+) timeout")
    codes = numbers(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
    traffic = numbers(r"^traffic: .*?\((\d+)\) total")
    proto = re.search(r"^Application protocol: (\S+)", stdout, re.M)
    tls = re.search(r"^TLS Protocol: (\S+)\s*\nCipher: (\S+)", stdout, re.M)
    errors = {}
    if reqs:
        for name, n in zip(("failed", "errored", "timeout"), reqs[4:]):
            if n:
                errors[name] = int(n)
    if codes and codes[2] + codes[3]:
        errors["non-2xx/3xx"] = int(codes[2] + codes[3])
    # h2load says "h2c" for prior knowledge, whatever the server answers: there, only
    # responses show that the server spoke HTTP/2.
    if proto is None or proto.group(1) != ("h2" if scheme == "https" else "h2c"):
        errors["no HTTP/2"] = 1
    if reqs is None:
        errors["h2load"] = (stdout.strip().splitlines() or ["no summary"])[-1][:200]
    ok = int(codes[0] + codes[1]) if codes and "no HTTP/2" not in errors else 0
    if not ok or seconds != seconds:
        # h2load counts no failure for requests that never got an answer (a server that
        # took the h2c preface for a bad HTTP/1.1 request).
        errors.setdefault("no HTTP/2", 1)
        # Nothing to measure: the errors say why; the numbers stay empty ("—").
        return {"rps": NAN, "mbps": NAN, "cpu_us": NAN, "errors": errors,
                "proto": "none"}
    result = measurement(ok, int(traffic[0]) if traffic else 0, seconds, cost, errors)
    result["proto"] = f"h2, {tls.group(1)}, {tls.group(2)}" if tls else "h2c"
    return result


def measurement(requests, nbytes, seconds, cost, errors):
    nan = float("nan")
    return {
        "rps": requests / seconds,
        "mbps": nbytes / seconds / 1e6,
        "cpu_us": cost["cpu"] / requests * 1e6 if requests else nan,
        "server_cpu": cost["cpu"] / cost["wall"],
        "client_cpu": cost["client"] / cost["wall"],
        "other_cpu": cost["other"] / cost["wall"],
        "conns_per_req": cost["conns"] / requests if requests else nan,
        "resp_bytes": nbytes / requests if requests else nan,  # head and body, as received
        "errors": errors,
    }


IDLE_SETTLE = float(os.environ.get("IDLE_SETTLE", "2.0"))


def idle_command(server, h2=None):
    """idle_conns.py's arguments: HTTP/1.1 keep-alive after one request, or the HTTP/2
    handshake alone (h2: "h2c" cleartext, "h2" over TLS)."""
    if h2 == "h2c":
        return ["--h2c", str(server.h2c_port), str(IDLE_CONNS)]
    if h2 == "h2":
        return ["--h2", str(server.h2_port), str(IDLE_CONNS)]
    return [str(server.port), "/1k.bin", str(IDLE_CONNS)]


def run_idle(server, h2=None):
    """Scenarios f, n and o on a fresh server: Pss before and after IDLE_CONNS idle connections."""
    server.restart()
    for _ in range(10):  # one-time allocations (file cache, first-request paths) come first
        http_get(server.port, "/1k.bin")
    time.sleep(0.5)
    pss0, rss0 = server.memory_kib()
    client = subprocess.Popen(
        ["taskset", "-c", CLIENT_CPU, sys.executable, str(BENCH / "idle_conns.py")]
        + idle_command(server, h2),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = read_tagged(client, "READY")
        # Idle means idle: every server gets the same two seconds to settle into its idle state
        # before the reading (porter parks connections idle for half a second).
        time.sleep(IDLE_SETTLE)
        pss1, rss1 = server.memory_kib()
        client.stdin.write("\n")
        client.stdin.flush()
        done = read_tagged(client, "DONE")
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    errors = dict(ready["errors"])
    if ready["failed"]:
        errors["failed"] = ready["failed"]
    if done["alive"] != ready["ok"]:
        errors["closed by server"] = ready["ok"] - done["alive"]
    if not ready["ok"]:
        # Not one connection (a server without HTTP/2 there): no number, only the errors.
        return {"bytes_per_conn": NAN, "conns": 0, "errors": errors}
    ok = ready["ok"]
    return {
        "bytes_per_conn": (pss1 - pss0) * 1024 / ok,
        "rss_per_conn": (rss1 - rss0) * 1024 / ok,
        "pss_before": pss0,
        "pss_after": pss1,
        "conns": ready["ok"],
        "errors": errors,
    }


def read_tagged(proc, tag):
    line = proc.stdout.readline()  # bounded: the client gives up after its own deadline
    if not line.startswith(tag + " "):
        raise RuntimeError(f"idle_conns.py: expected {tag}, got {line!r}")
    return json.loads(line[len(tag) + 1:])


# --- Compression -----------------------------------------------------------------------------


# The level every server is given for each coding (its conf template says the same).
LEVELS = {"gzip": 6, "br": 5, "zstd": 3}
COMPRESS_PATH = "/" + HTML
NOCACHE_PATH = "/html-nocache/100k.html"  # porter's location with compress_cache off
PORTERS = ["porter", "porter-before"]
CHECKS = {}  # (scenario key, server): what the check before timing found (check_compressed)


def compress_path(server, cache=True):
    """The page's path on `server`: porter's location without the compressed copies when
    `cache` is off; the other servers keep no copies, so they have one path."""
    return NOCACHE_PATH if server.name in PORTERS and not cache else COMPRESS_PATH


def decoder(coding):
    """bytes -> bytes for a Content-Encoding. brotli and zstandard are Debian's python3-brotli
    and python3-zstandard; an interpreter other than Debian's may need their directory."""
    if coding == "gzip":
        return gzip.decompress
    try:
        import brotli
        import zstandard
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        import brotli
        import zstandard
    if coding == "br":
        return brotli.decompress
    if coding == "zstd":
        def unzstd(data):
            # A streamed body's frame does not say its size: read it as a stream.
            with zstandard.ZstdDecompressor().stream_reader(
                    io.BytesIO(data), read_across_frames=True) as r:
                return r.read()
        return unzstd
    raise ValueError(coding)


def fetch(port, path, coding):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": coding})
        resp = conn.getresponse()
        body = resp.read()  # http.client undoes the chunked framing, not the coding
        return resp.status, resp.getheader("Content-Encoding"), resp.getheader("Content-Length"), \
            resp.getheader("Transfer-Encoding"), body
    finally:
        conn.close()


def check_compressed(server, path, coding, page):
    """Two requests for the page with `Accept-Encoding: CODING` (the second may come from a
    copy kept by the first): each must be compressed in that coding and decode to the page.
    Returns what the report shows: the compressed sizes and how each body was framed."""
    decode = decoder(coding)
    found = []
    for attempt in (1, 2):
        status, encoding, length, te, body = fetch(server.port, path, coding)
        what = f"GET {path} with Accept-Encoding: {coding} (request {attempt})"
        if status != 200:
            raise RuntimeError(f"{what}: status {status}")
        if (encoding or "").lower() != coding:
            raise RuntimeError(f"{what}: Content-Encoding {encoding!r}, {len(body)} bytes")
        try:
            plain = decode(body)
        except Exception as e:  # each decoder raises its own error type
            raise RuntimeError(f"{what}: {len(body)} bytes that do not decode: {e}")
        if plain != page:
            raise RuntimeError(f"{what}: decodes to {len(plain)} bytes that are not the page")
        framing = ("Content-Length" if length is not None else
                   "chunked" if (te or "").lower() == "chunked" else "close")
        found.append((len(body), framing))
    return {"sizes": [s for s, _ in found], "framing": [f for _, f in found]}


# --- Scenarios -------------------------------------------------------------------------------


class Scenario:
    def __init__(self, key, title, measures, servers, run, command, unit="req/s", metric="rps",
                 coding=None, cache=True):
        self.key, self.title, self.measures = key, title, measures
        self.servers, self.run, self.command = servers, run, command
        self.unit, self.metric = unit, metric
        # The compression scenarios: the coding asked for, and whether porter keeps copies.
        self.coding, self.cache = coding, cache


def compress_scenario(key, coding, cache, title, measures, servers):
    header = [f"Accept-Encoding: {coding}"]
    return Scenario(
        key, title, measures, servers,
        lambda s: run_wrk(s, compress_path(s, cache), headers=header),
        lambda p: shlex.join(wrk_command(p, NOCACHE_PATH if not cache else COMPRESS_PATH,
                                         "report.lua", headers=header)),
        coding=coding, cache=cache)


# With BASELINE, "porter-before" (that binary) runs wherever porter does, right after it.
BEFORE = ["porter-before"] if BASELINE else []
ALL = ["porter"] + BEFORE + ["nginx", "lighttpd", "h2o", "floor", "floor-deps"]
FLOORS = ["floor", "floor-deps"]  # no conf, one answer: the same 1 KiB for every request
FILE_SERVERS = ["porter"] + BEFORE + ["nginx", "lighttpd", "h2o"]  # the floors: only 1 KiB
TLS_SERVERS = ["porter"] + BEFORE + ["nginx", "h2o"]  # TLS: lighttpd's TLS is a module apart
PROXY_SERVERS = ["porter"] + BEFORE + ["nginx"]  # the proxy scenario: porter against nginx
H2_SERVERS = FILE_SERVERS  # HTTP/2: every server, over TLS and as h2c
# Compression on the fly: gzip and brotli in every server (nginx's brotli is Debian's
# libnginx-mod-http-brotli-filter), zstd in porter and lighttpd (not in nginx or h2o 2.2).
GZIP_SERVERS = BR_SERVERS = FILE_SERVERS
ZSTD_SERVERS = ["porter"] + BEFORE + ["lighttpd"]

SCENARIOS = [
    Scenario("a", "1 KiB file, keep-alive, 50 connections",
             "the request path: parse, route, small-file response, one write per request",
             ALL, lambda s: run_wrk(s, "/1k.bin"),
             lambda p: " ".join(wrk_command(p, "/1k.bin", "report.lua"))),
    Scenario("b", "1 KiB file, keep-alive, 50 connections, 16 requests pipelined",
             "per-request overhead without the syscall per request: batching of reads and writes",
             ALL, lambda s: run_wrk(s, "/1k.bin", pipelined=True),
             lambda p: " ".join(wrk_command(p, "/1k.bin", "pipeline.lua", ["--", "16"]))),
    Scenario("c", "100 KiB file, keep-alive, 50 connections",
             "the large-file path (sendfile for most servers) at a size where headers still matter",
             FILE_SERVERS, lambda s: run_wrk(s, "/100k.bin"),
             lambda p: " ".join(wrk_command(p, "/100k.bin", "report.lua"))),
    Scenario("d", "10 MiB file, keep-alive, 50 connections",
             "bulk throughput; the client copies every byte, so it is often the limit here",
             FILE_SERVERS, lambda s: run_wrk(s, "/10m.bin"),
             lambda p: " ".join(wrk_command(p, "/10m.bin", "report.lua")),
             unit="MB/s", metric="mbps"),
    Scenario("e", "1 KiB file, a new connection per request, 50 concurrent",
             "accept, connection set-up and tear-down: HTTP/1.0 without keep-alive, the server closes",
             ALL, lambda s: run_ab(s, "/1k.bin"),
             lambda p: " ".join(ab_command(p, "/1k.bin"))),
    Scenario("g", "TLS: 1 KiB file, keep-alive, 50 connections",
             "the request path under TLS (TLS 1.3, ECDSA P-256, AES-GCM): records, not handshakes",
             TLS_SERVERS, lambda s: run_wrk(s, "/1k.bin", port=s.tls_port, scheme="https"),
             lambda p: " ".join(wrk_command(p + TLS_OFFSET, "/1k.bin", "report.lua",
                                            scheme="https"))),
    Scenario("h", "TLS: a new connection per request, resumed, 50 concurrent",
             "handshakes per second for returning clients: wrk reconnects after every response "
             "and offers the ticket of its previous connection (as a browser does), so its "
             "handshakes are TLS 1.3 resumptions (a key exchange, no certificate)",
             TLS_SERVERS, lambda s: run_wrk(s, "/1k.bin", port=s.tls_port, scheme="https",
                                            headers=["Connection: close"]),
             lambda p: shlex.join(wrk_command(p + TLS_OFFSET, "/1k.bin", "report.lua",
                                              scheme="https", headers=["Connection: close"]))),
    Scenario("j", "TLS: a new connection per request, full handshake, 50 concurrent",
             "handshakes per second for new clients: ab offers no session, so every handshake "
             "is a full one (key exchange and certificate signature); HTTP/1.0, the server closes",
             TLS_SERVERS, lambda s: run_ab(s, "/1k.bin", port=s.tls_port, scheme="https"),
             lambda p: " ".join(ab_command(p + TLS_OFFSET, "/1k.bin", "https"))),
    Scenario("i", "reverse proxy: 1 KiB from a keep-alive upstream, 50 connections",
             "proxy_pass to one upstream (the floor responder) over pooled keep-alive connections",
             PROXY_SERVERS, lambda s: run_wrk(s, "/1k.bin", port=s.proxy_port),
             lambda p: " ".join(wrk_command(p + PROXY_OFFSET, "/1k.bin", "report.lua"))),
    Scenario("f", f"memory per idle keep-alive connection ({IDLE_CONNS} connections)",
             "what an open, idle keep-alive connection costs the server in user memory (Pss)",
             ALL, run_idle,
             lambda p: f"bench/idle_conns.py {p} /1k.bin {IDLE_CONNS}",
             unit="bytes/conn", metric="bytes_per_conn"),
    Scenario("k", f"HTTP/2 over TLS: 1 KiB file, 50 connections x {H2_STREAMS} streams",
             "the HTTP/2 request path under TLS (ALPN h2, the certificate and ciphers of g): "
             "frames, HPACK, streams multiplexed on each connection",
             H2_SERVERS, lambda s: run_h2load(s, "/1k.bin", s.h2_port),
             lambda p: " ".join(h2load_command(p + H2_OFFSET, "/1k.bin"))),
    Scenario("l", f"HTTP/2 over TLS: 100 KiB file, 50 connections x {H2_STREAMS} streams",
             "large responses over HTTP/2 and TLS: DATA frames, flow control, record encryption",
             H2_SERVERS, lambda s: run_h2load(s, "/100k.bin", s.h2_port),
             lambda p: " ".join(h2load_command(p + H2_OFFSET, "/100k.bin"))),
    Scenario("m", f"HTTP/2 cleartext (h2c, prior knowledge): 1 KiB file, 50 connections x "
             f"{H2_STREAMS} streams",
             "the HTTP/2 request path without TLS: what the protocol costs next to scenario a",
             H2_SERVERS, lambda s: run_h2load(s, "/1k.bin", s.h2c_port, scheme="http"),
             lambda p: " ".join(h2load_command(p + H2C_OFFSET, "/1k.bin", "http"))),
    Scenario("n", f"memory per idle HTTP/2 connection, h2c ({IDLE_CONNS} connections)",
             "what an open, idle HTTP/2 connection costs the server in user memory (Pss), after "
             "the handshake (preface, SETTINGS both ways and acknowledged), without TLS",
             H2_SERVERS, lambda s: run_idle(s, "h2c"),
             lambda p: f"bench/idle_conns.py --h2c {p + H2C_OFFSET} {IDLE_CONNS}",
             unit="bytes/conn", metric="bytes_per_conn"),
    Scenario("o", f"memory per idle HTTP/2 connection over TLS ({IDLE_CONNS} connections)",
             "the same over TLS (ALPN h2): the HTTP/2 state and the TLS state of an idle "
             "connection",
             H2_SERVERS, lambda s: run_idle(s, "h2"),
             lambda p: f"bench/idle_conns.py --h2 {p + H2_OFFSET} {IDLE_CONNS}",
             unit="bytes/conn", metric="bytes_per_conn"),
    compress_scenario(
        "p", "gzip", True, "gzip level 6: a 100 KiB HTML page, keep-alive, 50 connections",
        "compression on the fly with `Accept-Encoding: gzip`, every server at level 6: porter "
        "keeps the compressed copy in its file cache (compress_cache on, its default) and "
        "answers from it; nginx, lighttpd (without deflate.cache-dir) and h2o compress at "
        "every request", GZIP_SERVERS),
    compress_scenario(
        "q", "gzip", False, "gzip level 6 without porter's copies: the same page, keep-alive, "
        "50 connections",
        "the same with porter's `compress_cache off` (its location /html-nocache/, the same "
        "file): porter compresses at every request too, as the others do (they run as in p)",
        GZIP_SERVERS),
    compress_scenario(
        "r", "br", True, "brotli quality 5: the 100 KiB page, keep-alive, 50 connections",
        "compression on the fly with `Accept-Encoding: br`, every server at quality 5: porter "
        "answers from its copy; nginx (Debian's brotli filter module), lighttpd and h2o "
        "compress at every request", BR_SERVERS),
    compress_scenario(
        "s", "zstd", True, "zstd level 3: the 100 KiB page, keep-alive, 50 connections",
        "compression on the fly with `Accept-Encoding: zstd`, level 3: porter answers from "
        "its copy, lighttpd compresses at every request (nginx and h2o have no zstd)",
        ZSTD_SERVERS),
]


# --- Setup -----------------------------------------------------------------------------------


def make_cert():
    """One self-signed ECDSA P-256 certificate for every TLS listener of the run."""
    crt, key = TLS_DIR / "bench.crt", TLS_DIR / "bench.key"
    if crt.exists() and key.exists():
        return
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(crt)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_html(size):
    """A page of `size` bytes that compresses as real HTML does (about 4.5 times with gzip at
    level 6): paragraphs, headings, lists of links and tables, their words drawn from an
    invented vocabulary with a long tail, ids and numbers that do not repeat. Deterministic
    (a fixed seed), so every run and every server compresses the same bytes."""
    rnd = random.Random(1)
    syllables = ["ka", "to", "ri", "se", "na", "mo", "lu", "pe", "di", "ga", "vo", "chi", "an",
                 "el", "or", "us", "in", "et", "ba", "ne", "ur", "qi", "fa", "xo", "em"]
    vocab = sorted({"".join(rnd.choice(syllables) for _ in range(rnd.randint(1, 4)))
                    for _ in range(800)})
    rnd.shuffle(vocab)
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf: a few words are most of the text

    def words(n):
        return " ".join(rnd.choices(vocab, weights, k=n))

    classes = ["nav", "item", "card", "title", "meta", "content", "footer", "btn", "btn-primary",
               "row", "col-md-4", "col-md-8", "list", "link", "badge", "muted", "lead"]
    parts = ['<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>',
             words(6), '</title>\n<link rel="stylesheet" href="/static/site.css">\n</head>\n'
             '<body>\n<div class="container">\n']
    length = sum(map(len, parts))
    while length < size:
        kind = rnd.random()
        if kind < 0.45:
            part = f'<p class="{rnd.choice(classes)}">{words(rnd.randint(12, 60))}.</p>\n'
        elif kind < 0.65:
            part = (f'<div class="{rnd.choice(classes)} {rnd.choice(classes)}" '
                    f'id="s{rnd.randint(1, 99999)}">\n<h2>{words(rnd.randint(2, 7))}</h2>\n</div>\n')
        elif kind < 0.9:
            part = '<ul class="list">\n' + "".join(
                f'  <li><a href="/{rnd.choice(vocab)}/{rnd.choice(vocab)}-{rnd.randint(1, 9999)}'
                f'.html" class="link">{words(rnd.randint(1, 5))}</a> '
                f'<span class="badge">{rnd.randint(0, 999)}</span></li>\n'
                for _ in range(rnd.randint(2, 8))) + '</ul>\n'
        else:
            part = '<table class="data">\n' + "".join(
                f'<tr><td>{words(2)}</td><td>{rnd.randint(0, 999)}</td>'
                f'<td>{rnd.random():.2f}</td></tr>\n'
                for _ in range(rnd.randint(2, 6))) + '</table>\n'
        parts.append(part)
        length += len(part)
    tail = "</div>\n</body>\n</html>\n"
    text = "".join(parts)[:size - len(tail)]
    text = text[:text.rfind("\n") + 1] + tail
    return (text + " " * (size - len(text))).encode()  # padded to the byte (ASCII only)


def make_docroot():
    DOCROOT.mkdir(parents=True, exist_ok=True)
    (DOCROOT / "html").mkdir(exist_ok=True)
    pattern = bytes(range(256))
    expected = {name: (pattern * (size // len(pattern) + 1))[:size] for name, size in FILES.items()}
    expected[HTML] = make_html(HTML_SIZE)
    for name, data in expected.items():
        path = DOCROOT / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    (DOCROOT / "index.html").write_text("<!doctype html><title>bench</title>\n")
    return expected


def check_files(server, expected):
    """Every server must serve every file whole before its numbers mean anything."""
    for name, data in expected.items():
        if server.name in FLOORS:
            break
        status, body = http_get(server.port, "/" + name)
        if status != 200 or body != data:
            raise RuntimeError(f"{server.name}: GET /{name} gave {status} and {len(body)} bytes")


def measured_commit():
    """The commit porter was built from: the tree's (with "-dirty" if it had changes not
    committed), or, for a binary named by PORTER, that binary."""
    if "PORTER" in os.environ:
        return f"none: the binary {PORTER}, not built from this tree"
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty",
                          "--abbrev=7", "--exclude=*"], capture_output=True, text=True)
    return (git.stdout.strip() or "unknown (not a git checkout)") + " (porter built from it)"


def versions():
    def first_line(argv):
        out = subprocess.run(argv, capture_output=True, text=True)
        return (out.stdout or out.stderr).strip().splitlines()[0]

    custom = "PORTER" in os.environ  # another build: the work tree's commit says nothing of it
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    return {
        "porter": first_line([str(PORTER), "-V"]) + (f" (binary {PORTER})" if custom
                                                      else f" ({git})" if git else ""),
        **({"porter-before": first_line([str(BASELINE), "-V"]) + f" (binary {BASELINE})"}
           if BASELINE else {}),
        "nginx": first_line(["nginx", "-v"]).replace("nginx version: ", ""),
        "lighttpd": first_line(["lighttpd", "-v"]).split(" - ")[0],
        "h2o": first_line(["/usr/bin/h2o", "-v"]),
        "floor": "bench/floor.c, " + first_line(["cc", "--version"]) + ", -O2",
        "floor-deps": "bench/floor_deps.c on " + first_line([str(FLOOR_DEPS), "-V"])
                      + ", built with porter (Release)",
        "wrk": first_line(["wrk", "-v"]).split(" Copyright")[0],
        "ab": first_line(["ab", "-V"]).replace("This is ", "").replace(" <$Revision$>", ""),
        "h2load": first_line(["h2load", "--version"]),
        "compression": ", ".join(f"{pkg} {deb_version(pkg)}" for pkg in COMPRESSION_PACKAGES)
                       + "; h2o carries its own brotli encoder",
    }


# Debian's packages behind the compression scenarios: the libraries porter, nginx and lighttpd
# link, nginx's brotli filter and lighttpd's mod_deflate.
COMPRESSION_PACKAGES = ["zlib1g", "libbrotli1", "libzstd1", "libnginx-mod-http-brotli-filter",
                        "lighttpd-mod-deflate"]


def deb_version(package):
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "(not installed)"


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}"


# --- Report ----------------------------------------------------------------------------------


def fmt_num(x, digits=0):
    return "—" if x != x else f"{x:,.{digits}f}"


def fmt_pct(x):
    return "—" if x is None or x != x else f"{x * 100:.0f}%"


def fmt_ratio(x):
    return "—" if x is None or x != x else f"{x:.2f}"


def fmt_errors(runs):
    total = {}
    for r in runs:
        for k, v in r["errors"].items():
            if isinstance(v, int) and isinstance(total.get(k, 0), int):
                total[k] = total.get(k, 0) + v
            else:
                total[k] = v
    return ", ".join(f"{k} {v}" for k, v in sorted(total.items())) or "0"


def median_of(runs, key):
    values = [r[key] for r in runs if key in r and r[key] == r[key]]
    return statistics.median(values) if values else float("nan")


def summarize(scenario, runs_by_server):
    """Rows of (server, medians, ratios) in a fixed server order."""
    med = {name: {k: median_of(runs, k) for k in set().union(*runs)
                  if k not in ("errors", "proto")}
           for name, runs in runs_by_server.items() if runs}
    for name, runs in runs_by_server.items():
        if runs:  # what the HTTP/2 runs negotiated: "h2, TLSv1.3, TLS_AES_256_GCM_SHA384"
            med[name]["proto"] = "; ".join(sorted({r["proto"] for r in runs if "proto" in r}))
    lower_is_better = scenario.metric == "bytes_per_conn"
    peers = [v for v in (med[p][scenario.metric] for p in PEERS if p in med) if v == v]
    best = (min(peers) if lower_is_better else max(peers)) if peers else None
    nginx = med.get("nginx", {}).get(scenario.metric)
    rows = []
    for name in ALL:
        if name not in med:
            continue
        m = med[name]
        value = m[scenario.metric]
        rows.append({
            "server": name,
            "m": m,
            "vs_best": value / best if best else None,
            "vs_nginx": value / nginx if nginx else None,
            "cpu_vs_nginx": (m["cpu_us"] / med["nginx"]["cpu_us"]
                             if "cpu_us" in m and med.get("nginx", {}).get("cpu_us") else None),
            "errors": fmt_errors(runs_by_server[name]),
        })
    return rows


def scenario_table(scenario, rows, ports):
    out = [f"## {scenario.key}. {scenario.title}", "", f"Measures {scenario.measures}.", ""]
    command = scenario.command(ports["porter"]).replace(str(ROOT) + "/", "")
    out.append(f"Command (porter's port shown): `{command}`")
    out.append("")
    if scenario.metric == "bytes_per_conn":
        out.append("| server | bytes/conn (Pss) | vs best peer | vs nginx | bytes/conn (Rss) "
                   "| Pss before (KiB) | Pss after (KiB) | connections | errors |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            m = r["m"]
            out.append(f"| {r['server']} | {fmt_num(m.get('bytes_per_conn', NAN))} | {fmt_ratio(r['vs_best'])} "
                       f"| {fmt_ratio(r['vs_nginx'])} | {fmt_num(m.get('rss_per_conn', NAN))} "
                       f"| {fmt_num(m.get('pss_before', NAN))} | {fmt_num(m.get('pss_after', NAN))} "
                       f"| {fmt_num(m.get('conns', NAN))} | {r['errors']} |")
    else:
        digits = 1 if scenario.metric == "mbps" else 0
        # Scenario e shows that every request really had its own TCP connection.
        conns = scenario.key == "e"
        # The HTTP/2 scenarios show what each run negotiated (protocol, TLS version, cipher).
        proto = scenario.key in H2_LOAD
        # The compression scenarios show the bytes received per response (head and body): a
        # server that stopped compressing during a run would show about 100 KiB.
        comp = scenario.coding is not None
        out.append(f"| server | {scenario.unit} | CPU µs/req | vs best peer | vs nginx "
                   "| CPU/req vs nginx | server CPU | client CPU | other CPU |"
                   + (" TCP conns/req |" if conns else "") + (" negotiated |" if proto else "")
                   + (" bytes/resp |" if comp else "") + " errors |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if conns else "")
                   + ("---|" if proto else "") + ("---:|" if comp else "") + "---|")
        for r in rows:
            m = r["m"]
            out.append(f"| {r['server']} | {fmt_num(m[scenario.metric], digits)} "
                       f"| {fmt_num(m.get('cpu_us', NAN), 2)} | {fmt_ratio(r['vs_best'])} "
                       f"| {fmt_ratio(r['vs_nginx'])} | {fmt_ratio(r['cpu_vs_nginx'])} "
                       f"| {fmt_pct(m.get('server_cpu'))} | {fmt_pct(m.get('client_cpu'))} "
                       f"| {fmt_pct(m.get('other_cpu'))} |"
                       + (f" {fmt_ratio(m.get('conns_per_req'))} |" if conns else "")
                       + (f" {m.get('proto') or '—'} |" if proto else "")
                       + (f" {fmt_num(m.get('resp_bytes', NAN))} |" if comp else "")
                       + f" {r['errors']} |")
    out.append("")
    if scenario.coding:
        out += check_table(scenario, rows)
    return out


def check_table(scenario, rows):
    """What the check before timing found: the compressed size per server (the same level
    should give about the same size) and how the body was framed."""
    coding = scenario.coding
    out = [f"Checked before timing: two requests per server with `Accept-Encoding: {coding}` "
           f"(the second may be answered from a copy the first left), each compressed in "
           f"{coding} at {'quality' if coding == 'br' else 'level'} {LEVELS[coding]} and decoded "
           f"to the page ({HTML_SIZE:,} bytes):", "",
           "| server | path | compressed bytes (1st, 2nd) | ratio | framing (1st, 2nd) |",
           "|---|---|---:|---:|---|"]
    for r in rows:
        check = CHECKS.get((scenario.key, r["server"]))
        if check is None:
            out.append(f"| {r['server']} | — | — | — | failed: see errors |")
            continue
        sizes = check["sizes"]
        shown = (f"{sizes[0]:,}" if sizes[0] == sizes[1] else f"{sizes[0]:,}, {sizes[1]:,}")
        framing = ", ".join(check["framing"]) if check["framing"][0] != check["framing"][1] \
            else check["framing"][0]
        path = NOCACHE_PATH if r["server"] in PORTERS and not scenario.cache else COMPRESS_PATH
        out.append(f"| {r['server']} | `{path}` | {shown} | {HTML_SIZE / sizes[-1]:.2f} "
                   f"| {framing} |")
    out.append("")
    return out


def write_report(summaries, ports, started, elapsed, command):
    ver = versions()
    lines = [
        "# porter benchmark",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- commit: {measured_commit()}",
        f"- {ROUNDS} interleaved rounds of {DURATION} s per run; every number is the median "
        "over the rounds; errors are summed over them",
        "- servers pinned to CPU 0, the load generator to CPU 1, all traffic on 127.0.0.1",
        "- each server: one worker, no access log, keep-alive; docroot of generated files "
        "(1 KiB, 100 KiB, 10 MiB, and a 100 KiB HTML page for the compression scenarios)",
        "- CPU µs/req: the server's utime + stime (all its processes) over the run, divided by "
        "the requests completed; server CPU, client CPU: share of one CPU during the run; other "
        "CPU: user, system and steal time of the machine used by neither (other processes on "
        "this shared machine; softirq time, where loopback packets are delivered, is not in any "
        "of the three)",
        f"- runs repeated because other processes took more than {OTHER_MAX:.0%} of a CPU: "
        f"{repeated_runs} (up to {RETRIES} times each, at most a third of the runs in all; "
        "the quietest attempt is kept)",
        "- floor: bench/floor.c, an epoll loop that answers every request with the same 1 KiB "
        "without parsing it, the limit of this machine's loopback path; floor-deps: the same "
        "on libev and llhttp (bench/floor_deps.c), what porter's two request-path libraries "
        "cost on their own",
        "- vs best peer / vs nginx: this server's throughput divided by the best of nginx, "
        "lighttpd, h2o / by nginx's (above 1 is faster); for memory, bytes divided by the "
        "lowest peer's / by nginx's (above 1 uses more)",
        "",
        "| program | version |",
        "|---|---|",
    ]
    lines += [f"| {name} | {v} |" for name, v in ver.items()]
    lines.append("")
    lines += [f"- {name}: {note}" for name, note in NOTES.items()] + ([""] if NOTES else [])
    for scenario, rows in summaries:
        lines += scenario_table(scenario, rows, ports)
    lines.append("![throughput and cost relative to nginx](latest.png)")
    lines.append("")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text("\n".join(lines))
    return "\n".join(lines)


def write_chart(summaries):
    """Two data files for bench/plot.gp: throughput and cost, each relative to nginx."""
    labels = {"a": "a. 1 KiB", "b": "b. 1 KiB x16 pipelined", "c": "c. 100 KiB",
              "d": "d. 10 MiB", "e": "e. conn per request", "f": "f. idle conn memory",
              "g": "g. TLS 1 KiB", "h": "h. TLS resumed conn", "i": "i. proxy 1 KiB",
              "j": "j. TLS full handshake", "k": "k. h2 TLS 1 KiB", "l": "l. h2 TLS 100 KiB",
              "m": "m. h2c 1 KiB", "n": "n. idle h2c conn memory",
              "o": "o. idle h2 TLS conn memory", "p": "p. gzip 6", "q": "q. gzip 6, no copy",
              "r": "r. brotli 5", "s": "s. zstd 3"}
    speed, cost = [], []
    present = [s for s in ALL if any(r["server"] == s for _, rows in summaries for r in rows)]
    header = "scenario " + " ".join(present)
    for scenario, rows in summaries:
        by = {r["server"]: r for r in rows}
        label = f'"{labels[scenario.key]}"'
        if scenario.metric == "bytes_per_conn":
            cost.append(label + " " + " ".join(ratio_cell(by, s, "vs_nginx") for s in present))
        else:
            speed.append(label + " " + " ".join(ratio_cell(by, s, "vs_nginx") for s in present))
            cost.append(label + " " + " ".join(ratio_cell(by, s, "cpu_vs_nginx") for s in present))
    (WORK / "speed.dat").write_text("\n".join([header] + speed) + "\n")
    (WORK / "cost.dat").write_text("\n".join([header] + cost) + "\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    colors = {"porter": "#d62728", "porter-before": "#f4a582", "nginx": "#1f77b4", "lighttpd": "#ff7f0e", "h2o": "#2ca02c",
              "floor": "#7f7f7f", "floor-deps": "#c7c7c7"}
    subprocess.run(["gnuplot", "-e", f"speed='{WORK / 'speed.dat'}'; cost='{WORK / 'cost.dat'}'; "
                    f"out='{RESULTS / 'latest.png'}'; n={len(present)}; "
                    f"colors='{' '.join(colors[s] for s in present)}'", str(BENCH / "plot.gp")],
                   check=True)


def ratio_cell(by, server, key):
    r = by.get(server)
    value = r[key] if r else None
    # A negative ratio (memory that shrank) would draw below the axis; show it as zero.
    return "NaN" if value is None or value != value else f"{max(value, 0):.3f}"


def run_once(scenario, server):
    """One measurement. A server that fails or dies is reported in the errors and restarted.
    A run during which other processes took more than OTHER_MAX of a CPU is repeated (up to
    RETRIES times) and the quietest attempt is kept."""
    global repeated_runs  # counted against retry_budget, set in main()
    best = None
    for attempt in range(RETRIES + 1):
        if not server.alive():
            server.restart()
        try:
            result = scenario.run(server)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            print(f"bench: {server.name}, scenario {scenario.key}: {e}", file=sys.stderr)
            return {scenario.metric: float("nan"), "errors": {"run failed": 1}}
        if best is None or result.get("other_cpu", 0) < best.get("other_cpu", 0):
            best = result
        if best.get("other_cpu", 0) <= OTHER_MAX or not server.alive():
            break
        if repeated_runs >= retry_budget:
            break  # a machine that stays busy would only make the whole run longer
        repeated_runs += 1
        print(f"bench: other processes took {result['other_cpu']:.0%} of a CPU; repeating",
              file=sys.stderr)
    result = best
    if not server.alive():
        # Counted per run, with how it ended (-6: SIGABRT): summed over the rounds as the
        # other errors are, where a sum of exit statuses would mean nothing.
        key = f"server exited ({server.proc.returncode})"
        result["errors"][key] = result["errors"].get(key, 0) + 1
        print(f"bench: {server.name} exited during {scenario.key}:\n" + server.log_tail(),
              file=sys.stderr)
    return result


# --- Main ------------------------------------------------------------------------------------


def check_compression(scenarios, servers, runs, page):
    """Before any timing: every server of a compression scenario must answer with the page
    compressed in the scenario's coding (check_compressed). One that does not is left out of
    that scenario, with the reason as its error. Returns the (scenario, server) left out."""
    failed = set()
    for scenario in scenarios:
        if not scenario.coding:
            continue
        for name in runs[scenario.key]:
            server = servers[name]
            try:
                CHECKS[scenario.key, name] = check_compressed(
                    server, compress_path(server, scenario.cache), scenario.coding, page)
            except (RuntimeError, OSError) as e:
                print(f"bench: {name}, scenario {scenario.key}: {e}", file=sys.stderr)
                failed.add((scenario.key, name))
                runs[scenario.key][name].append(
                    {scenario.metric: NAN, "errors": {"check before timing": str(e)}})
    return failed


def main():
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    names = server_names()
    keys = os.environ.get("SCENARIOS", "abcdefghijklmnopqrs").replace(",", "")
    unknown = set(names) - set(ALL)
    if unknown:
        sys.exit(f"bench: unknown server(s) {', '.join(sorted(unknown))}; known: {', '.join(ALL)}")
    if BEFORE and "porter" in names and "porter-before" not in names:
        names.append("porter-before")  # it runs wherever porter does
    scenarios = select_scenarios(keys)
    check_ports(names)

    for d in (DOCROOT, CONF, RUN, LOGS, TMP, TLS_DIR):
        d.mkdir(parents=True, exist_ok=True)
    make_cert()
    for old in LOGS.iterdir():
        old.unlink()
    PIDS_FILE.write_text("")
    expected = make_docroot()

    ports = {name: BASE_PORT + i for i, name in enumerate(ALL)}
    servers = {}
    for name in ALL:
        if name in names:
            close_port = BASE_PORT + len(ALL) if name == "floor" else None
            servers[name] = Server(name, ports[name], close_port)
    runs = {s.key: {name: [] for name in servers if name in s.servers} for s in scenarios}
    global retry_budget
    retry_budget = ROUNDS * sum(len(r) for r in runs.values()) // 3

    # The proxies' upstream: a floor responder on its own ports (pinned with the servers).
    backend = Server("floor", BACKEND_PORT, BACKEND_PORT + 1)
    try:
        if any(s.key == "i" for s in scenarios):
            backend.start()
        for server in servers.values():
            server.write_conf()
            server.start()
            check_files(server, expected)
            warm_up = ["wrk", "-t1", f"-c{CONNS}", "-d1s", f"http://127.0.0.1:{server.port}/1k.bin"]
            run_client(server, warm_up)
        unchecked = check_compression(scenarios, servers, runs, expected[HTML])
        for rnd in range(ROUNDS):
            # Rotate the order every round so that no server always runs first or last.
            order = list(servers.values())
            order = order[rnd % len(order):] + order[:rnd % len(order)]
            for scenario in scenarios:
                for server in order:
                    if server.name not in runs[scenario.key]:
                        continue
                    if (scenario.key, server.name) in unchecked:
                        continue  # its answer is not the compressed page: nothing to time
                    result = run_once(scenario, server)
                    runs[scenario.key][server.name].append(result)
                    shown = fmt_num(result[scenario.metric], 1)
                    print(f"round {rnd + 1}/{ROUNDS} {scenario.key} {server.name:8} "
                          f"{shown:>12} {scenario.unit}"
                          + (f"  errors: {result['errors']}" if result["errors"] else ""),
                          file=sys.stderr, flush=True)
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for server in servers.values():
            server.stop()
        backend.stop()

    summaries = [(s, summarize(s, runs[s.key])) for s in scenarios]
    command = os.environ.get("BENCH_COMMAND", "python3 bench/bench.py")
    elapsed = time.monotonic() - t0
    print(write_report(summaries, ports, started, elapsed, command))
    write_chart(summaries)


def select_scenarios(keys):
    """The scenarios whose letters are in `keys`, in the order of their letters: so they run,
    and so the report and the chart show them."""
    return sorted((s for s in SCENARIOS if s.key in keys), key=lambda s: s.key)


def server_names():
    return os.environ.get("SERVERS", ",".join(ALL)).split(",")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if sys.argv[1:] == ["--check-ports"]:
        # bench/run.sh, before it builds anything: the ports this run needs are free.
        check_ports(server_names())
        sys.exit(0)
    try:
        main()
    except PortInUse as e:  # taken between the check and a server's start
        sys.exit(f"bench: {e}")
