"""Upstream blocks against real backends started by the tests: the balancing methods
(least_conn, ip_hash, hash and hash consistent, random two), backup and down servers, max_conns
with and without a queue (one count for every worker), and the status page's view of the
servers. The backends are test_proxy.py's."""

import ctypes
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_proxy  # noqa: E402
import test_proxy_tls  # noqa: E402
from test_proxy import ProxyTestCase, read_request_head  # noqa: E402

# The backends answer WebDAV's LOCK as any other method (a method porter does not tell apart).
test_proxy._Handler.do_LOCK = test_proxy._Handler._handle


def port_of(r):
    return int(r.body)


class Parallel:
    """Requests sent at once on their own connections; results collected by join()."""

    def __init__(self, p, paths, timeout=20):
        self.results = [None] * len(paths)
        self.threads = []
        for i, path in enumerate(paths):
            t = threading.Thread(target=self._one, args=(p, i, path, timeout), daemon=True)
            t.start()
            self.threads.append(t)

    def _one(self, p, i, path, timeout):
        start = time.monotonic()
        try:
            with harness.Conn("127.0.0.1", p.port, timeout=timeout) as c:
                c.send(harness.request("GET", path))
                r = c.read_response(timeout=timeout)
            self.results[i] = (r, time.monotonic() - start)
        except Exception as e:  # reported by join()
            self.results[i] = (e, time.monotonic() - start)

    def join(self):
        for t in self.threads:
            t.join(30)
        return self.results


class BalancingTest(ProxyTestCase):
    def test_least_conn_avoids_the_busy_server(self):
        a, b = self.backend(), self.backend()
        p = self.proxy([a.address, b.address], upstream_extra="least_conn;")
        slow = Parallel(p, ["/slow/2"])
        # the slow request holds a connection to one of them
        self.assertTrue(harness.wait_for(lambda: len(a.requests) + len(b.requests) == 1, 5))
        busy = a if a.requests else b
        other = b if busy is a else a
        seen = [port_of(p.get("/port")) for _ in range(6)]
        self.assertEqual(seen, [other.port] * 6)
        r, _ = slow.join()[0]
        self.assertStatus(r, 200)
        # both idle again: they share the requests
        seen = [port_of(p.get("/port")) for _ in range(4)]
        self.assertEqual(sorted(seen), sorted([a.port, b.port] * 2))

    def test_round_robin_does_not_look_at_load(self):
        # the contrast: without least_conn the busy server still gets its turn
        a, b = self.backend(), self.backend()
        p = self.proxy([a.address, b.address])
        slow = Parallel(p, ["/slow/1"])
        self.assertTrue(harness.wait_for(lambda: len(a.requests) + len(b.requests) == 1, 5))
        seen = [port_of(p.get("/port")) for _ in range(4)]
        self.assertEqual(sorted(seen), sorted([a.port, b.port] * 2))
        slow.join()

    def test_ip_hash_keeps_a_client_on_one_server(self):
        backends = [self.backend() for _ in range(3)]
        p = self.proxy([b.address for b in backends], upstream_extra="ip_hash;")
        seen = {port_of(p.get("/port")) for _ in range(9)}
        self.assertEqual(len(seen), 1)

    def test_hash_by_key(self):
        backends = [self.backend() for _ in range(3)]
        p = self.proxy([b.address for b in backends], upstream_extra="hash $arg_user;")
        where = {}
        for user in range(30):
            first = port_of(p.get("/port?user=u%d" % user))
            self.assertEqual(port_of(p.get("/port?user=u%d&x=1" % user)), first)
            where[user] = first
        # the keys spread over the servers
        self.assertEqual(len(set(where.values())), 3)

    def test_consistent_hash_keeps_keys_when_a_server_fails(self):
        backends = [self.backend() for _ in range(4)]
        p = self.proxy(["%s max_fails=1 fail_timeout=30s" % b.address for b in backends],
                       # no pooled connection outlives the backend's stop
                       upstream_extra="hash $uri consistent; keepalive 0;")
        where = {k: port_of(p.get("/port/%d" % k)) for k in range(40)}
        self.assertEqual(len(set(where.values())), 4)
        gone = backends[1]
        gone.stop()
        for k in range(40):
            r = p.get("/port/%d" % k)
            self.assertStatus(r, 200)  # its keys go to the next server on the ring
            if where[k] != gone.port:
                self.assertEqual(port_of(r), where[k], "key %d moved" % k)
            else:
                self.assertNotEqual(port_of(r), gone.port)

    def test_random_two(self):
        a, b = self.backend(), self.backend()
        p = self.proxy([a.address, b.address], upstream_extra="random two least_conn;")
        slow = Parallel(p, ["/slow/2"])
        self.assertTrue(harness.wait_for(lambda: len(a.requests) + len(b.requests) == 1, 5))
        busy = a if a.requests else b
        # two drawn, the one with fewer connections taken: never the busy one
        seen = {port_of(p.get("/port")) for _ in range(6)}
        self.assertNotIn(busy.port, seen)
        slow.join()

    def test_backup_only_when_primaries_fail(self):
        primary, backup = self.backend(), self.backend()
        p = self.proxy(["%s max_fails=1 fail_timeout=30s" % primary.address,
                        "%s backup" % backup.address], upstream_extra="keepalive 0;")
        self.assertEqual({port_of(p.get("/port")) for _ in range(5)}, {primary.port})
        self.assertEqual(backup.requests, [])
        primary.stop()
        for _ in range(5):
            r = p.get("/port")
            self.assertStatus(r, 200)
            self.assertEqual(port_of(r), backup.port)

    def test_down_server_gets_nothing(self):
        a, b = self.backend(), self.backend()
        p = self.proxy([a.address, "%s down" % b.address])
        self.assertEqual({port_of(p.get("/port")) for _ in range(6)}, {a.port})
        self.assertEqual(b.requests, [])

    def test_the_last_answer_passes_when_the_others_are_down(self):
        # proxy_next_upstream http_503 with no other server to ask (down): the 503 is the
        # client's answer, not a 502 for want of a server
        busy, spare = RetryTest.busy_backend(self), self.backend()
        p = self.proxy([busy.address, "%s down" % spare.address],
                       top="proxy_next_upstream error timeout http_503;")
        r = p.get("/x")
        self.assertEqual((r.status, r.body), (503, b"busy"))
        self.assertEqual(spare.requests, [])

    def test_every_server_down_is_502(self):
        a = self.backend()
        p = self.proxy(["%s down" % a.address, "127.0.0.1:%d" % self.closed_port()])
        self.assertStatus(p.get("/port"), 502)
        self.assertEqual(a.requests, [])


class MaxConnsTest(ProxyTestCase):
    def test_max_conns_without_a_queue_is_503(self):
        b = self.backend(delay=1.0)
        p = self.proxy(["%s max_conns=1" % b.address])
        run = Parallel(p, ["/a", "/b"])
        res = run.join()
        statuses = sorted(r.status for r, _ in res)
        self.assertEqual(statuses, [200, 503])
        quick = [t for r, t in res if r.status == 503][0]
        self.assertLess(quick, 0.9)  # refused at once, not after the first one ended
        self.assertEqual(len(b.requests), 1)
        self.assertIn("is at max_conns", p.output)

    def test_queue_waits_for_a_free_connection(self):
        b = self.backend(delay=0.6)
        p = self.proxy(["%s max_conns=1" % b.address], upstream_extra="queue 1 timeout=10s;")
        run = Parallel(p, ["/a"])
        self.assertTrue(harness.wait_for(lambda: len(b.requests) == 1, 5))
        more = Parallel(p, ["/b", "/c"])
        res = run.join() + more.join()
        statuses = [r.status for r, _ in res]
        # one waits in the queue and is served after the first; the queue has no room for the
        # third
        self.assertEqual(sorted(statuses), [200, 200, 503])
        self.assertEqual(len(b.requests), 2)
        served_late = [t for r, t in res[1:] if r.status == 200][0]
        self.assertGreater(served_late, 0.6)
        # the backend never had two at once
        self.assertEqual(b.connections, 1)

    def test_queue_timeout_is_503(self):
        b = self.backend(delay=3.0)
        p = self.proxy(["%s max_conns=1" % b.address], upstream_extra="queue 5 timeout=400ms;")
        run = Parallel(p, ["/a"])
        self.assertTrue(harness.wait_for(lambda: len(b.requests) == 1, 5))
        waiting = Parallel(p, ["/b", "/c"])
        for r, took in waiting.join():
            self.assertStatus(r, 503)
            self.assertTimedOut(took, 0.4)
        self.assertIn("within the queue's timeout", p.output)
        r, _ = run.join()[0]
        self.assertStatus(r, 200)
        self.assertEqual(len(b.requests), 1)

    def test_max_conns_counts_every_worker(self):
        # Two workers, one connection allowed: whichever workers the clients reach, only one
        # request is with the backend at a time.
        b = self.backend(delay=0.5)
        top = "worker_processes 2;"
        p = self.proxy(["%s max_conns=1" % b.address], top=top)
        for _ in range(3):
            res = Parallel(p, ["/x%d" % i for i in range(4)]).join()
            statuses = [r.status for r, _ in res]
            self.assertEqual(statuses.count(200), 1, statuses)
            self.assertEqual(statuses.count(503), 3, statuses)
        # and the counts went back to zero: one request passes again
        self.assertStatus(p.get("/again"), 200)


class RetryTest(ProxyTestCase):
    def busy_backend(self):
        """A server that answers every request 503 (`received`: the request heads)."""
        def handler(s, srv):
            head = read_request_head(s)
            if head:
                srv.received.append(head)
                s.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
                          b"busy")
        return self.raw_backend(handler)

    def test_non_idempotent_methods_go_again_only_when_asked(self):
        busy, good = self.busy_backend(), self.backend()
        # max_fails=0 keeps the busy server first in turn (its 503s are not failures then)
        servers = ["%s max_fails=0" % busy.address, good.address]
        p = self.proxy(servers, top="proxy_next_upstream error timeout http_503;")
        q = self.proxy(servers, top="proxy_next_upstream error timeout http_503 non_idempotent;")
        for method in ("POST", "PATCH", "LOCK"):
            # round-robin alternates: the request that meets the busy server first is the one
            # that shows whether it goes on
            for porter, retried in ((p, False), (q, True)):
                for _ in range(2):
                    before = len(busy.received)
                    r = porter.get("/m", method=method)
                    if len(busy.received) > before:
                        break
                self.assertEqual(len(busy.received), before + 1)
                if retried:
                    self.assertEqual((r.status, r.body), (200, b"ok /m"), method)
                else:
                    self.assertEqual((r.status, r.body), (503, b"busy"), method)
        # an idempotent one goes on either way
        for _ in range(2):
            self.assertStatus(p.get("/g", method="PUT"), 200)
        self.assertTrue(all(h.split(b" ")[0] in (b"POST", b"PATCH", b"LOCK", b"PUT")
                            for h in busy.received))


def status_of(p):
    return json.loads(p.get("/status?format=json").body)


def servers_of(doc, name="app"):
    ups = {u["name"]: u for u in doc["upstream_state"]}
    return {s["address"]: s for s in ups[name]["servers"]}


class HealthTest(ProxyTestCase):
    STATUS = "location / { proxy_pass http://app; }\n    location = /status { status; }"

    def state_of(self, p, address):
        return servers_of(status_of(p))[address]["state"]

    def wait_state(self, p, address, state, timeout=5):
        return harness.wait_for(lambda: self.state_of(p, address) == state, timeout)

    def worker_requests(self, p):
        """Requests each worker has counted (a second old at most), by pid."""
        return {w["pid"]: w["requests"] for w in status_of(p)["workers"]}

    def test_a_dead_server_is_skipped_by_every_worker_and_comes_back(self):
        a, b = self.backend(), self.backend()
        # max_fails=0: only the checks take a server out; keepalive 0: no pooled connection
        # outlives a backend that stops
        p = self.proxy(["%s max_fails=0" % a.address, "%s max_fails=0" % b.address],
                       top="worker_processes 2;",
                       upstream_extra="health_check interval=300ms uri=/health; keepalive 0;",
                       location=self.STATUS)
        self.assertTrue(harness.wait_for(
            lambda: all(s["checks"] > 0 for s in servers_of(status_of(p)).values()), 5))
        self.assertTrue(any(r["path"] == "/health" for r in a.requests))
        seen = {port_of(p.get("/port")) for _ in range(6)}
        self.assertEqual(seen, {a.port, b.port})

        a.stop()
        marked = time.monotonic()
        self.assertTrue(self.wait_state(p, a.address, "unhealthy"), p.output)
        # within one interval of its first failed check (plus the page's own delay)
        self.assertLess(time.monotonic() - marked, 0.3 + 1.5)
        self.assertIn("marked down", p.output)
        time.sleep(1.1)  # the workers' request counts on the page are a second old
        before = self.worker_requests(p)
        refused = p.output.count("refused the connection")
        for i in range(24):
            r = p.get("/port")  # a new connection each: both workers get some
            self.assertStatus(r, 200)
            self.assertEqual(port_of(r), b.port)
        # no request even tried the dead server, in either worker
        self.assertEqual(p.output.count("refused the connection"), refused, p.output)
        time.sleep(1.1)
        after = self.worker_requests(p)
        self.assertEqual(len(after), 2)
        for pid, n in after.items():
            self.assertGreater(n - before.get(pid, 0), 0, "worker %d served none of them" % pid)

        # back where it was: the checks see it and the workers send it requests again
        back = self.backend(port=a.port)
        self.assertTrue(self.wait_state(p, a.address, "up"), p.output)
        self.assertIn("back up", p.output)
        seen = {port_of(p.get("/port")) for _ in range(6)}
        self.assertEqual(seen, {a.port, b.port})
        self.assertTrue(any(r["path"] == "/port" for r in back.requests))

    def test_checks_pass_but_requests_fail(self):
        flaky, good = self.backend(), self.backend()
        p = self.proxy(["%s max_fails=1 fail_timeout=30s" % flaky.address, good.address],
                       top="proxy_next_upstream error timeout http_500;",
                       upstream_extra="health_check interval=300ms;",
                       location=self.STATUS)
        self.assertTrue(harness.wait_for(
            lambda: servers_of(status_of(p))[flaky.address]["checks"] > 0, 5))
        # a request that fails on it (a 500 proxy_next_upstream names): out, though its checks
        # go on passing
        for _ in range(2):
            r = p.get("/status/500")
            if r.status == 500:
                break
        self.assertTrue(self.wait_state(p, flaky.address, "failed"), p.output)
        time.sleep(0.7)  # two more checks pass
        s = servers_of(status_of(p))[flaky.address]
        self.assertEqual((s["state"], s["checks_failed"]), ("failed", 0))

    def test_health_checks_of_a_down_server_and_none_without_the_directive(self):
        a, b = self.backend(), self.backend()
        p = self.proxy([a.address, "%s down" % b.address],
                       upstream_extra="health_check interval=200ms uri=/health;",
                       location=self.STATUS)
        self.assertTrue(harness.wait_for(
            lambda: servers_of(status_of(p))[a.address]["checks"] >= 2, 5))
        self.assertEqual(b.requests, [])  # a server marked down is not asked
        q = self.proxy([a.address], location=self.STATUS)
        doc = status_of(q)
        self.assertFalse(doc["upstream_state"][0]["health_checks"])
        time.sleep(0.5)
        self.assertEqual(servers_of(status_of(q))[a.address]["checks"], 0)

    @unittest.skipUnless(test_proxy_tls.OPENSSL, "needs openssl")
    def test_checks_of_an_https_upstream_verify_it(self):
        d = tempfile.mkdtemp(prefix="porter-health-tls-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        cert, key = test_proxy_tls.make_cert(d, "localhost", "DNS:localhost,IP:127.0.0.1")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        good = self.backend(ssl_context=ctx)
        bad = self.backend(host="127.0.0.2", ssl_context=ctx)
        # the second answers on an address its certificate does not name
        p = self.proxy(["localhost:%d" % good.port, "127.0.0.2:%d" % bad.port],
                       upstream_extra="health_check interval=300ms uri=/health;",
                       location="location / { proxy_ssl_trusted_certificate %s; "
                                "proxy_pass https://app; }\n"
                                "    location = /status { status; }" % cert)
        self.assertTrue(harness.wait_for(
            lambda: servers_of(status_of(p))["localhost:%d" % good.port]["checks"] >= 2, 5))
        s = servers_of(status_of(p))
        self.assertEqual(s["localhost:%d" % good.port]["state"], "up")
        self.assertEqual(s["localhost:%d" % good.port]["last_check_status"], 200)
        self.assertEqual(s["localhost:%d" % good.port]["checks_failed"], 0)
        self.assertTrue(any(r["path"] == "/health" for r in good.requests))
        self.assertTrue(self.wait_state(p, "127.0.0.2:%d" % bad.port, "unhealthy"), p.output)
        self.assertEqual(bad.requests, [])  # refused at the handshake, never asked

    def test_a_reload_keeps_what_the_checks_found(self):
        a, b = self.backend(), self.backend()
        servers = [a.address, b.address]
        p = self.proxy(servers, top="worker_processes 2;",
                       upstream_extra="health_check interval=200ms;", location=self.STATUS)
        self.assertTrue(harness.wait_for(
            lambda: servers_of(status_of(p))[a.address]["checks"] >= 8, 10))

        # the same servers: the new workers see the counts (and verdicts) of the old ones
        self.reload(p, servers, 2)
        self.assertGreaterEqual(servers_of(status_of(p))[a.address]["checks"], 8)
        # another list: the block starts afresh
        c = self.backend()
        self.reload(p, servers + [c.address], 3)
        self.assertLess(servers_of(status_of(p))[a.address]["checks"], 8)

    def reload(self, p, servers, generation, checks="health_check interval=200ms;"):
        """Reloads `p` with the upstream's `servers` and `checks`, and waits until the new
        workers answer."""
        text = ("worker_processes 2;\nupstream app {\n%s    %s\n}\n"
                "server {\n    listen 127.0.0.1:%d;\n    root htdocs;\n    %s\n"
                "    location = /gen { return 200 \"%d\"; }\n}\n"
                % ("".join("    server %s;\n" % s for s in servers), checks, p.port, self.STATUS,
                   generation))
        with open(p.conf_path + ".tmp", "w") as f:
            f.write(harness.build_conf(text))
        os.rename(p.conf_path + ".tmp", p.conf_path)
        p.signal(signal.SIGHUP)
        want = b"%d" % generation

        def answers():
            # (a fresh connection an old worker took as it retired may be reset: porter's
            # reload does that too without upstreams; this waits for the new conf, not that)
            try:
                return all(p.get("/gen").body == want for _ in range(6))
            except (OSError, harness.Closed):
                return False

        self.assertTrue(harness.wait_for(answers, 10), p.output)

    def test_a_reload_without_checks_forgets_their_verdict(self):
        a = self.backend()
        dead = "127.0.0.1:%d" % self.closed_port()
        servers = [a.address, dead]
        p = self.proxy(servers, top="worker_processes 2;",
                       upstream_extra="health_check interval=200ms;", location=self.STATUS)
        self.assertTrue(self.wait_state(p, dead, "unhealthy"), p.output)
        # no checks any more: nothing would ever bring it back, so the verdict goes
        self.reload(p, servers, 2, checks="")
        self.assertEqual(self.state_of(p, dead), "up")


# ---- names that change: porter in a mount namespace of its own, its /etc/hosts the test's ----

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18


def _can_bind_hosts():
    if os.geteuid() != 0 or not os.path.exists("/etc/hosts"):
        return False
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


CAN_BIND_HOSTS = _can_bind_hosts()


class HostsPorter(harness.Porter):
    """A porter that sees `hosts` as /etc/hosts: started in a mount namespace of its own (the
    mounts private, so nothing leaks to the host) with the file bound over /etc/hosts. The
    system resolver reads the file at each lookup: the test changes a name's addresses by
    rewriting it in place (the same inode: a bound file is that inode)."""

    def __init__(self, hosts, *args, **kw):
        self.hosts = hosts
        super().__init__(*args, **kw)

    def _preexec(self):
        super()._preexec()
        libc = ctypes.CDLL(None, use_errno=True)
        if (libc.unshare(CLONE_NEWNS) != 0
                or libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0
                or libc.mount(self.hosts.encode(), b"/etc/hosts", None, MS_BIND, None) != 0):
            os._exit(97)


@unittest.skipUnless(CAN_BIND_HOSTS, "needs root and mount namespaces (unshare -m) to give "
                     "porter a hosts file of the test's")
class ResolveTest(ProxyTestCase):
    def write_hosts(self, text):
        with open(self.hosts, "r+") as f:  # in place: the bound inode
            f.truncate(0)
            f.write("127.0.0.1 localhost\n" + text)

    def test_a_name_that_changes_its_addresses(self):
        fd, self.hosts = tempfile.mkstemp(prefix="porter-itest-hosts-")
        os.close(fd)
        self.addCleanup(os.unlink, self.hosts)
        self.write_hosts("127.0.0.2 app.test\n")
        # one port, three addresses: which backend answers says which address was used
        one = self.backend(host="127.0.0.2")
        port = one.port
        two = self.backend(host="127.0.0.3", port=port)
        three = self.backend(host="127.0.0.4", port=port)
        conf = ("upstream app {\n    server app.test:%d resolve;\n    resolver_interval 200ms;\n"
                "}\nserver {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                "    location / { proxy_pass http://app; }\n}\n" % port)
        p = HostsPorter(self.hosts, conf)
        self.addCleanup(p.cleanup)
        self.addCleanup(p.stop)

        backends = (one, two, three)

        def served_by():
            """The backends a request (on a client connection of its own) reached."""
            before = [len(b.requests) for b in backends]
            with p.connect() as c:
                c.send(harness.request("GET", "/x", close=True))
                self.assertStatus(c.read_response(), 200)
            return [b for b, n in zip(backends, before) if len(b.requests) > n]

        for _ in range(3):
            self.assertEqual(served_by(), [one])
        self.assertEqual(one.connections, 1)  # the pooled connection carries them

        # The name moves: within an interval or two the requests go to its new address, and the
        # pooled connection to the old one is closed (else it would carry them on).
        self.write_hosts("127.0.0.3 app.test\n")
        self.assertTrue(harness.wait_for(lambda: "resolves to 127.0.0.3" in p.output, 5),
                        p.output)
        for _ in range(3):
            self.assertEqual(served_by(), [two])
        self.assertEqual(len(one.requests), 3)

        # A second address: the connection pooled to the first one stays in use; new
        # connections take the addresses in turn.
        connections = two.connections
        self.write_hosts("127.0.0.3 app.test\n127.0.0.4 app.test\n")
        self.assertTrue(harness.wait_for(
            lambda: "resolves to 127.0.0.3, 127.0.0.4" in p.output, 5), p.output)
        self.assertEqual(served_by(), [two])
        self.assertEqual(two.connections, connections)
        # four requests at once need three new connections: they take the two addresses in
        # turn, so the new one gets some
        res = Parallel(p, ["/slow/0.5"] * 4).join()
        self.assertEqual([r.status for r, _ in res], [200] * 4)
        self.assertIn(len(three.requests), (1, 2))

        # The name stops resolving: its last addresses are kept, and it says so once.
        self.write_hosts("")
        self.assertTrue(harness.wait_for(lambda: "does not resolve" in p.output, 5), p.output)
        self.assertIn("its last addresses are kept: 127.0.0.3, 127.0.0.4", p.output)
        for _ in range(4):
            with p.connect() as c:
                c.send(harness.request("GET", "/port", close=True))
                self.assertStatus(c.read_response(), 200)
        time.sleep(0.5)
        self.assertEqual(p.output.count("does not resolve"), 1)
        # and back
        self.write_hosts("127.0.0.2 app.test\n")
        self.assertTrue(harness.wait_for(
            lambda: p.output.count("resolves to 127.0.0.2") >= 1, 5), p.output)


class StatusTest(ProxyTestCase):
    def test_status_json_shows_the_servers(self):
        a, b = self.backend(), self.backend()
        dead = self.closed_port()
        p = self.proxy([a.address, "%s backup" % b.address,
                        "127.0.0.1:%d max_fails=1 fail_timeout=30s" % dead,
                        "127.0.0.9:1 down"],
                       upstream_extra="least_conn;",
                       location="location / { proxy_pass http://app; }\n"
                                "    location = /status { status; }")
        for i in range(4):
            self.assertStatus(p.get("/x%d" % i), 200)
        r = p.get("/status?format=json")
        self.assertStatus(r, 200)
        doc = json.loads(r.body)
        ups = {u["name"]: u for u in doc["upstream_state"]}
        app = ups["app"]
        self.assertEqual(app["balance"], "least_conn")
        servers = {s["address"]: s for s in app["servers"]}
        self.assertEqual(servers[a.address]["state"], "up")
        self.assertEqual(servers[a.address]["active"], 0)
        self.assertTrue(servers[b.address]["backup"])
        self.assertEqual(servers["127.0.0.1:%d" % dead]["state"], "failed")
        self.assertEqual(servers["127.0.0.1:%d" % dead]["fails"], 1)
        self.assertEqual(servers["127.0.0.9:1"]["state"], "down")
        # a request in flight counts as active
        slow = Parallel(p, ["/slow/1.5"])
        self.assertTrue(harness.wait_for(lambda: any("/slow" in q["path"] for q in a.requests), 5))
        doc = json.loads(p.get("/status?format=json").body)
        servers = {s["address"]: s for s in doc["upstream_state"][0]["servers"]}
        self.assertEqual(servers[a.address]["active"], 1)
        slow.join()

    def test_a_proxy_pass_address_is_an_upstream_of_its_own(self):
        a = self.backend()
        p = self.start_porter("location /a/ { proxy_pass http://localhost:%d; }\n"
                              "location /b/ { proxy_pass http://localhost:%d/b/; }\n"
                              "location = /status { status; }" % (a.port, a.port))
        self.assertStatus(p.get("/a/x"), 200)
        self.assertStatus(p.get("/b/x"), 200)
        ups = status_of(p)["upstream_state"]
        # one for both locations, named by its address with its port
        self.assertEqual([u["name"] for u in ups], ["localhost:%d" % a.port])
        self.assertEqual(ups[0]["servers"][0]["state"], "up")


if __name__ == "__main__":
    harness.main()
