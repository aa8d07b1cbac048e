#!/usr/bin/env python3
"""porter under faults: mixed static and proxied keep-alive load for a while, with reloads, a
worker kill, a backend restart and a log reopen on a schedule. It prints the requests made, the
failed ones by the fault they followed, and the trend of porter's memory and descriptors, and
exits non-zero when a request failed that no fault excuses.

    tests/soak/soak.py [--minutes M] [--connections N] [--reload-every S]
                       [--faults reload,kill,backend,reopen]

What a fault may cost: a worker killed with SIGKILL loses the requests in flight on its own
connections; a backend restart may cost proxied requests while the backend is down (502). A
reload and a log reopen cost nothing. A failure is put down to the last fault that began
within two seconds before it; anything else is a failure of porter's.

A client here is strict HTTP/1.1: it reuses its connection while answers say so, opens a new
one after `Connection: close`, and counts as failed a request that got no complete answer (an
end of connection or a reset before it), a wrong body, or a status other than 200. It does not
retry. The binary is $PORTER_BIN (default build/release/porter, `make soak`'s), as for the integration tests.
"""

import argparse
import http.server
import os
import random
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.dont_write_bytecode = True
if not os.environ.get("PORTER_BIN") and not os.environ.get("PORTER_TEST_BIN"):
    os.environ["PORTER_BIN"] = os.path.join(HERE, "..", "..", "build", "release", "porter")
import harness  # noqa: E402

STATIC = {"a.txt": b"static\n" * 20, "b.bin": os.urandom(64 * 1024)}
APP_BODY = b"proxied\n" * 50
EXCUSED = {"kill": "any", "backend": "proxied"}  # what each fault may cost
BLAME_WINDOW = 2.0


class _AppHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(APP_BODY)))
        self.end_headers()
        self.wfile.write(APP_BODY)

    def log_message(self, *args):
        pass


class _AppServer(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # porter closing a pooled connection is not news


class Backend:
    """The upstream: a threaded HTTP/1.1 server on a fixed port, which can be restarted."""

    def __init__(self):
        self.server = None
        self.port = 0
        self.start()

    def start(self):
        self.server = _AppServer(("127.0.0.1", self.port), _AppHandler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []  # (time, proxied, what)
        self.faults = []  # (time, name)

    def fault(self, name):
        with self.lock:
            self.faults.append((time.monotonic(), name))

    def failed(self, proxied, what):
        with self.lock:
            self.failures.append((time.monotonic(), proxied, what))

    def blame(self, when):
        """The fault that began last within BLAME_WINDOW before `when`, or None."""
        found = None
        for t, name in self.faults:
            if when - BLAME_WINDOW <= t <= when:
                found = name
        return found


def client(porter, tally, stop, seed):
    rnd = random.Random(seed)
    conn = None
    while not stop.is_set():
        proxied = rnd.random() < 0.5
        path = "/app/x" if proxied else rnd.choice(["/a.txt", "/b.bin"])
        want = APP_BODY if proxied else STATIC[path[1:]]
        try:
            if conn is None:
                conn = harness.Conn(porter.host, porter.port, 10)
            conn.send(harness.request("GET", path))
            r = conn.read_response(timeout=10)
        except (harness.Closed, OSError) as e:
            tally.failed(proxied, "%s: %s" % (path, e))
            if conn:
                conn.close()
            conn = None
            continue
        if r.status != 200 or r.body != want:
            tally.failed(proxied, "%s: status %d, %d bytes" % (path, r.status, len(r.body)))
        else:
            with tally.lock:
                tally.ok += 1
        if r.has_token("Connection", "close"):
            conn.close()
            conn = None
    if conn:
        conn.close()


def porter_pids(porter):
    return [porter.pid] + sorted(harness.proc_live_children(porter.pid))


def sample(porter):
    """(RSS KiB, open descriptors) summed over the master and its workers."""
    rss = fds = 0
    for pid in porter_pids(porter):
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            fds += len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            pass
    return rss, fds


def reload(porter):
    marks = porter.output.count("configuration reloaded")
    porter.signal(signal.SIGHUP)
    if not harness.wait_for(lambda: porter.output.count("configuration reloaded") > marks, 10):
        raise RuntimeError("no reload reported:\n" + porter.output[-2000:])


def run(seconds, connections=32, reload_every=15.0, faults=("reload", "kill", "backend", "reopen"),
        out=sys.stdout):
    """Runs the soak; returns (ok requests, failures porter is to blame for, report text)."""
    backend = Backend()
    port, held = harness.reserve_port()
    conf = ("worker_processes 2;\nshutdown_grace_period 10s;\nkeepalive_timeout 60s;\n"
            "upstream app {\n    server 127.0.0.1:%d;\n    keepalive 16;\n}\n"
            "server {\n    listen 127.0.0.1:%d;\n    root htdocs;\n"
            "    access_log @TMP@/access.log;\n"
            "    location /app/ { proxy_pass http://app; }\n}\n"
            % (backend.port, port))
    try:
        porter = harness.Porter(conf, STATIC, prefix="porter-soak-")
    finally:
        for s in held:
            s.close()
    tally = Tally()
    stop = threading.Event()
    try:
        harness.wait_workers(porter, 2)
        threads = [threading.Thread(target=client, args=(porter, tally, stop, i), daemon=True)
                   for i in range(connections)]
        for t in threads:
            t.start()
        start = time.monotonic()
        end = start + seconds
        plan = []  # (at, fault)
        t = reload_every
        while t < seconds - 2:
            if "reload" in faults:
                plan.append((t, "reload"))
            t += reload_every
        # The other faults halfway between two reloads, so no failure has two causes.
        def between(at):
            return (int(at / reload_every) + 0.5) * reload_every

        if "reopen" in faults:
            plan.append((between(seconds * 0.3), "reopen"))
        if "kill" in faults:
            plan.append((between(seconds * 0.5), "kill"))
        if "backend" in faults:
            plan.append((between(seconds * 0.7), "backend"))
        plan.sort()
        samples = [sample(porter)]
        next_sample = start + 5
        while time.monotonic() < end:
            now = time.monotonic()
            while plan and start + plan[0][0] <= now:
                _, name = plan.pop(0)
                tally.fault(name)
                if name == "reload":
                    reload(porter)
                elif name == "reopen":
                    porter.signal(signal.SIGUSR1)
                elif name == "kill":
                    workers = sorted(harness.proc_live_children(porter.pid))
                    os.kill(workers[0], signal.SIGKILL)
                elif name == "backend":
                    backend.stop()
                    time.sleep(0.5)
                    backend.start()
                print("%6.1f s  %s" % (now - start, name), file=out, flush=True)
            if now >= next_sample:
                samples.append(sample(porter))
                next_sample += 5
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(15)
        samples.append(sample(porter))
        porter.stop()
        bad = []
        by_fault = {}
        for when, proxied, what in tally.failures:
            fault = tally.blame(when)
            by_fault[fault or "none"] = by_fault.get(fault or "none", 0) + 1
            excused = EXCUSED.get(fault)
            if not (excused == "any" or (excused == "proxied" and proxied)):
                bad.append("%s (after %s)" % (what, fault or "no fault"))
        lines = ["requests answered: %d in %.0f s (%.0f/s), %d connections"
                 % (tally.ok, seconds, tally.ok / seconds, connections),
                 "faults: %s" % ", ".join("%s x%d" % (f, sum(1 for _, n in tally.faults if n == f))
                                          for f in sorted({n for _, n in tally.faults})),
                 "failed requests by the fault before them: %s"
                 % (", ".join("%s %d" % kv for kv in sorted(by_fault.items())) or "none"),
                 "porter RSS KiB first/max/last: %d / %d / %d; descriptors: %d / %d / %d"
                 % (samples[0][0], max(s[0] for s in samples), samples[-1][0],
                    samples[0][1], max(s[1] for s in samples), samples[-1][1]),
                 "failures no fault excuses: %d" % len(bad)]
        lines += ["  " + b for b in bad[:20]]
        report = "\n".join(lines)
        print(report, file=out, flush=True)
        return tally.ok, bad, report
    finally:
        stop.set()
        porter.cleanup()
        backend.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--reload-every", type=float, default=15)
    ap.add_argument("--faults", default="reload,kill,backend,reopen")
    a = ap.parse_args()
    print("porter: %s" % harness.PORTER_BIN, flush=True)
    ok, bad, _ = run(a.minutes * 60, a.connections, a.reload_every, a.faults.split(","))
    sys.exit(1 if bad or ok == 0 else 0)


if __name__ == "__main__":
    main()
