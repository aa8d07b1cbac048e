"""Access control: allow/deny (a second client address bound to 127.0.0.2, IPv6 ::1, ranges, a
location's rules over its server's, 403 through error_page), auth_basic (401 with its
WWW-Authenticate, every hash format made by htpasswd and openssl at run time, wrong and unknown
users, auth_basic off, error_page 401, HTTP/2, a reload that reads the user file again, a bad
line refused by -t with its place), satisfy all and any, and bcrypt checked off the loop: other
connections are answered meanwhile, a client that leaves during the check leaves nothing
behind, workers that fork before their threads start."""

import base64
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request, run_porter  # noqa: E402

FILES = {
    "index.html": b"home\n",
    "denied.html": b"custom denied page\n",
    "401.html": b"custom login page\n",
    "second/x.txt": b"second\n",
    "lan/x.txt": b"lan\n",
    "v6only/x.txt": b"v6\n",
    "open/x.txt": b"open\n",
    "public/x.txt": b"public\n",
    "custom/x.txt": b"custom\n",
    "other/x.txt": b"other\n",
    "all/x.txt": b"all\n",
    "any/x.txt": b"any\n",
    "slow/x.txt": b"slow\n",
    "fast.txt": b"fast\n",
}

HAS_HTPASSWD = harness.tool("htpasswd") is not None
HAS_OPENSSL = harness.tool("openssl") is not None


def basic(user, password):
    raw = ("%s:%s" % (user, password)).encode("utf-8")
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def out(*cmd):
    """The first line a tool prints."""
    return subprocess.run(list(cmd), check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          timeout=60).stdout.decode().splitlines()[0]


def htpasswd_line(flag, user, password, *more):
    return out("htpasswd", "-nb" + flag, *more, user, password)


def ssha(password, salt=b"s4lt"):
    """{SSHA} made with openssl's SHA-1 (not porter's)."""
    digest = subprocess.run(["openssl", "dgst", "-sha1", "-binary"], input=password.encode() + salt,
                            check=True, stdout=subprocess.PIPE, timeout=30).stdout
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


class ClientMixin:
    def get_from(self, port, source, path, headers=None, host="127.0.0.1", method="GET"):
        if source is None:
            c = harness.Conn(host, port)
        else:
            c = harness.connect_from(host, port, source)
        with c:
            c.send(request(method, path, headers=headers, close=True))
            return c.read_response(method)


class AllowDeny(PorterTestCase, ClientMixin):
    @classmethod
    def setUpClass(cls):
        cls.v6 = harness.has_ipv6_loopback()
        conf = """
server {
    listen 127.0.0.1:0;
    %s
    root htdocs;
    allow 127.0.0.1;
    allow ::1;
    deny all;
    error_page 403 /denied.html;
    location = /denied.html { allow all; }
    location /second/ { allow 127.0.0.2; deny all; }
    location /lan/ { allow 127.0.0.0/30; deny 127.0.0.0/8; }
    location /v6only/ { allow ::1/128; deny all; }
    location /open/ { allow all; }
}
""" % ("listen [::1]:0;" if cls.v6 else "")
        cls.p = harness.Porter(conf, FILES)
        ports = cls.p.ports(2 if cls.v6 else 1)
        cls.port = ports[0]
        cls.port6 = ports[1] if cls.v6 else None

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def get(self, source, path):
        return self.get_from(self.port, source, path)

    def test_second_address_denied_by_the_server(self):
        r = self.get("127.0.0.1", "/")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"home\n")
        r = self.get("127.0.0.2", "/")
        self.assertStatus(r, 403)
        self.assertEqual(r.body, b"custom denied page\n")  # through error_page
        self.assertTrue(harness.wait_for(
            lambda: "access forbidden by rule, client: 127.0.0.2" in self.p.output, 5),
            self.p.output[-2000:])

    def test_location_rules_replace_the_servers(self):
        self.assertStatus(self.get("127.0.0.1", "/second/x.txt"), 403)
        r = self.get("127.0.0.2", "/second/x.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"second\n")
        self.assertStatus(self.get("127.0.0.2", "/open/x.txt"), 200)

    def test_ranges(self):
        # allow 127.0.0.0/30 (.0 to .3), then deny 127.0.0.0/8
        for a in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            self.assertStatus(self.get(a, "/lan/x.txt"), 200)
        for a in ("127.0.0.4", "127.1.0.1"):
            self.assertStatus(self.get(a, "/lan/x.txt"), 403)

    def test_ipv6(self):
        if not self.v6:
            self.skipTest("no IPv6 loopback on this host")
        r = self.get_from(self.port6, None, "/", host="::1")
        self.assertStatus(r, 200)
        r = self.get_from(self.port6, None, "/v6only/x.txt", host="::1")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"v6\n")
        self.assertStatus(self.get_from(self.port6, None, "/second/x.txt", host="::1"), 403)
        self.assertStatus(self.get("127.0.0.1", "/v6only/x.txt"), 403)


@unittest.skipUnless(HAS_HTPASSWD and HAS_OPENSSL,
                     "htpasswd (apache2-utils) or openssl is not installed: "
                     "scripts/install-deps.sh installs them")
class AuthBasic(PorterTestCase, ClientMixin):
    @classmethod
    def setUpClass(cls):
        # One user per format, each hash made here by the tool users make it with.
        cls.users = {
            "u_bcrypt": ("bcrypt pw", lambda u, p: htpasswd_line("B", u, p, "-C", "4")),
            "u_apr1": ("apr1 pw", lambda u, p: htpasswd_line("m", u, p)),
            "u_sha": ("sha pw", lambda u, p: htpasswd_line("s", u, p)),
            "u_md5": ("md5 pw", lambda u, p: u + ":" + out("openssl", "passwd", "-1", p)),
            "u_oapr1": ("o apr1", lambda u, p: u + ":" + out("openssl", "passwd", "-apr1", p)),
            "u_sha256": ("s256 pw", lambda u, p: u + ":" + out("openssl", "passwd", "-5", p)),
            "u_sha512": ("s512 pw", lambda u, p: u + ":" + out("openssl", "passwd", "-6", p)),
            "u_ssha": ("ssha pw", lambda u, p: u + ":" + ssha(p)),
            "u_plain": ("plain pw", lambda u, p: u + ":{PLAIN}" + p),
            "u_utf8": ("w\u00f6rd:with colon", lambda u, p: htpasswd_line("B", u, p, "-C", "4")),
        }
        if subprocess.run(["htpasswd", "-nb2", "u", "x"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0:
            cls.users["u_h256"] = ("h256 pw", lambda u, p: htpasswd_line("2", u, p))
            cls.users["u_h512"] = ("h512 pw", lambda u, p: htpasswd_line("5", u, p))
        lines = ["# made by the test"]
        for user, (pw, make) in cls.users.items():
            lines.append(make(user, pw))
        conf = """
server {
    listen 127.0.0.1:0 http2;
    root htdocs;
    auth_basic "Staff \\"only\\"";
    auth_basic_user_file users;
    location /public/ { auth_basic off; }
    location /custom/ { error_page 401 /401.html; }
    location = /401.html { auth_basic off; }
    location /other/ { auth_basic "Other realm"; }
}
"""
        cls.p = harness.Porter(conf, FILES, extra={"users": "\n".join(lines) + "\n"})

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def get(self, path, headers=None, method="GET"):
        return self.get_from(self.p.port, None, path, headers, method=method)

    def assertChallenge(self, r, realm='Staff \\"only\\"'):
        self.assertStatus(r, 401)
        self.assertEqual(r.header_all("WWW-Authenticate"),
                         ['Basic realm="%s", charset="UTF-8"' % realm])

    def test_no_credentials(self):
        r = self.get("/")
        self.assertChallenge(r)
        self.assertIn(b"401 Unauthorized", r.body)
        r = self.get("/", method="HEAD")
        self.assertChallenge(r)
        self.assertTrue(harness.wait_for(
            lambda: "no user/password was provided for basic authentication" in self.p.output,
            5), self.p.output[-2000:])

    def test_each_format_right_and_wrong(self):
        for user, (pw, _) in self.users.items():
            with self.subTest(user=user):
                r = self.get("/", basic(user, pw))
                self.assertStatus(r, 200)
                self.assertEqual(r.body, b"home\n")
                self.assertIsNone(r.header("WWW-Authenticate"))
                self.assertChallenge(self.get("/", basic(user, pw + "x")))
                self.assertChallenge(self.get("/", basic(user, pw[:-1])))
                self.assertChallenge(self.get("/", basic(user.upper(), pw)))
        self.assertTrue(harness.wait_for(
            lambda: 'user "u_apr1": password mismatch' in self.p.output, 5),
            self.p.output[-2000:])

    def test_unknown_user_and_malformed_credentials(self):
        self.assertChallenge(self.get("/", basic("nobody", "x")))
        path = os.path.join(self.p.tmp, "users")
        self.assertTrue(harness.wait_for(
            lambda: 'user "nobody" was not found in "%s"' % path in self.p.output, 5),
            self.p.output[-2000:])
        for value in ("Basic !!!", "Bearer abc", "Basic", "Basic " + base64.b64encode(
                b"no colon").decode(), "Basic " + base64.b64encode(b":nouser").decode()):
            with self.subTest(value=value):
                self.assertChallenge(self.get("/", {"Authorization": value}))
        # a user name that would write a line of its own in the log is escaped there
        self.assertChallenge(self.get("/", basic("evil\nname", "x")))
        self.assertTrue(harness.wait_for(lambda: 'user "evil\\x0Aname"' in self.p.output, 5),
                        self.p.output[-2000:])

    def test_off_in_a_location(self):
        r = self.get("/public/x.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"public\n")

    def test_error_page_keeps_the_challenge(self):
        r = self.get("/custom/x.txt")
        self.assertChallenge(r)
        self.assertEqual(r.body, b"custom login page\n")
        r = self.get("/custom/x.txt", basic("u_plain", "plain pw"))
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"custom\n")

    def test_a_locations_realm(self):
        self.assertChallenge(self.get("/other/x.txt"), "Other realm")
        self.assertStatus(self.get("/other/x.txt", basic("u_sha", "sha pw")), 200)

    def test_http2(self):
        curl = harness.tool("curl")
        if not curl:
            self.skipTest("curl is not installed")
        url = "http://127.0.0.1:%d/" % self.p.port

        def fetch(*args):
            r = subprocess.run([curl, "-s", "--http2-prior-knowledge", "-D", "-", "-o",
                                "/dev/null", *args, url], stdout=subprocess.PIPE, timeout=30)
            return r.stdout.decode("latin-1")

        head = fetch()
        self.assertIn("HTTP/2 401", head)
        self.assertIn('www-authenticate: Basic realm="Staff \\"only\\"", charset="UTF-8"', head)
        # bcrypt: checked off the loop, the stream held meanwhile
        self.assertIn("HTTP/2 200", fetch("-u", "u_bcrypt:bcrypt pw"))
        self.assertIn("HTTP/2 401", fetch("-u", "u_bcrypt:wrong"))


@unittest.skipUnless(HAS_HTPASSWD, "htpasswd (apache2-utils) is not installed: "
                     "scripts/install-deps.sh installs it")
class Satisfy(PorterTestCase, ClientMixin):
    @classmethod
    def setUpClass(cls):
        conf = """
server {
    listen 127.0.0.1:0;
    root htdocs;
    auth_basic "r";
    auth_basic_user_file users;
    allow 127.0.0.1;
    deny all;
    location /all/ { satisfy all; }
    location /any/ { satisfy any; }
}
"""
        users = htpasswd_line("B", "alice", "wonder", "-C", "4") + "\nbob:{PLAIN}builder\n"
        cls.p = harness.Porter(conf, FILES, extra={"users": users})

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def status(self, source, path, who=None):
        return self.get_from(self.p.port, source, path, basic(*who) if who else None).status

    def test_all(self):
        # the address allowed and the password right
        self.assertEqual(self.status("127.0.0.1", "/all/x.txt", ("alice", "wonder")), 200)
        self.assertEqual(self.status("127.0.0.1", "/all/x.txt", ("bob", "builder")), 200)
        self.assertEqual(self.status("127.0.0.1", "/all/x.txt"), 401)
        self.assertEqual(self.status("127.0.0.1", "/all/x.txt", ("alice", "no")), 401)
        self.assertEqual(self.status("127.0.0.2", "/all/x.txt", ("alice", "wonder")), 403)
        self.assertEqual(self.status("127.0.0.2", "/all/x.txt"), 403)
        self.assertEqual(self.status("127.0.0.1", "/"), 401)  # the server's: all by default

    def test_any(self):
        # either: an allowed address needs no password
        self.assertEqual(self.status("127.0.0.1", "/any/x.txt"), 200)
        self.assertEqual(self.status("127.0.0.1", "/any/x.txt", ("alice", "no")), 200)
        self.assertEqual(self.status("127.0.0.2", "/any/x.txt", ("alice", "wonder")), 200)
        self.assertEqual(self.status("127.0.0.2", "/any/x.txt", ("bob", "builder")), 200)
        # a denied address without the password is asked for it, as nginx does: 401, not 403
        r = self.get_from(self.p.port, "127.0.0.2", "/any/x.txt")
        self.assertStatus(r, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="r", charset="UTF-8"')
        self.assertEqual(self.status("127.0.0.2", "/any/x.txt", ("alice", "no")), 401)


@unittest.skipUnless(HAS_HTPASSWD, "htpasswd (apache2-utils) is not installed: "
                     "scripts/install-deps.sh installs it")
class SlowHashes(PorterTestCase, ClientMixin):
    # bcrypt at cost 12: about 0.3 s of CPU on an idle machine, more under load
    COST = "12"

    def porter(self, workers=1):
        users = htpasswd_line("B", "slow", "pw", "-C", self.COST) + "\n"
        users += htpasswd_line("B", "quick", "pw", "-C", "4") + "\n"
        conf = """
worker_processes %d;
server {
    listen 127.0.0.1:0;
    root htdocs;
    location /slow/ { auth_basic "r"; auth_basic_user_file users; }
}
""" % workers
        return self.start_porter(conf, FILES, extra={"users": users})

    def test_other_connections_are_answered_meanwhile(self):
        p = self.porter()
        with harness.Conn("127.0.0.1", p.port) as slow:
            slow.send(request("GET", "/slow/x.txt", headers=basic("slow", "pw"), close=True))
            sent = time.monotonic()
            # while the hash is computed, static files on other connections go on
            latencies = []
            for _ in range(5):
                t = time.monotonic()
                r = self.get_from(p.port, None, "/fast.txt")
                latencies.append(time.monotonic() - t)
                self.assertStatus(r, 200)
                self.assertEqual(r.body, b"fast\n")
            readable, _, _ = select.select([slow.sock], [], [], 0)
            still_waiting = not readable
            r = slow.read_response()
            took = time.monotonic() - sent
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"slow\n")
        # The check took longer than the five static answers together, and they came while it
        # ran: a loop blocked by bcrypt would have answered them after it. (Each static answer
        # is bounded generously for ASan on a loaded machine; unblocked, it takes a few ms.)
        self.assertTrue(still_waiting, "the bcrypt check ended before the static requests "
                        "(%.3f s for %s): raise COST" % (took, latencies))
        self.assertLess(max(latencies), 0.5, "static answers took %s while bcrypt ran %.3f s"
                        % (latencies, took))

    def test_many_at_once(self):
        p = self.porter()
        conns = [harness.Conn("127.0.0.1", p.port) for _ in range(6)]
        try:
            for i, c in enumerate(conns):
                pw = "pw" if i % 2 == 0 else "wrong"
                c.send(request("GET", "/slow/x.txt", headers=basic("quick", pw), close=True))
            statuses = [c.read_response().status for c in conns]
        finally:
            for c in conns:
                c.close()
        self.assertEqual(statuses, [200, 401] * 3)

    def test_client_leaves_during_the_check(self):
        p = self.porter()
        for _ in range(3):
            c = harness.Conn("127.0.0.1", p.port)
            c.send(request("GET", "/slow/x.txt", headers=basic("slow", "pw")))
            harness.reset_close(c.sock)
        # porter goes on serving, the checks finish and go nowhere; it stops clean (no leak,
        # no live custodian: the harness checks its exit)
        r = self.get_from(p.port, None, "/slow/x.txt", basic("quick", "pw"))
        self.assertStatus(r, 200)
        p.stop()

    def test_stop_during_a_check(self):
        p = self.porter()
        c = harness.Conn("127.0.0.1", p.port)
        c.send(request("GET", "/slow/x.txt", headers=basic("slow", "pw"), close=True))
        time.sleep(0.05)  # the scenario: the stop comes while the hash is computed
        p.signal(signal.SIGTERM)
        # the request in flight is answered before porter exits (graceful stop)
        r = c.read_response()
        c.close()
        self.assertStatus(r, 200)
        p.wait()
        p.check_exit()

    def test_workers(self):
        # the threads start in each worker, after the fork, with its first slow check
        p = self.porter(workers=2)
        for _ in range(4):
            self.assertStatus(self.get_from(p.port, None, "/slow/x.txt", basic("quick", "pw")),
                              200)


@unittest.skipUnless(HAS_HTPASSWD, "htpasswd (apache2-utils) is not installed: "
                     "scripts/install-deps.sh installs it")
class Reload(PorterTestCase, ClientMixin):
    def test_reload_reads_the_user_file_again(self):
        port = self.reserve_port()
        conf = """
server {
    listen 127.0.0.1:%d;
    root htdocs;
    auth_basic "r";
    auth_basic_user_file users;
}
""" % port
        p = self.start_porter(conf, FILES, extra={"users": "alice:{PLAIN}one\n"})
        self.assertEqual(self.get_from(port, None, "/", basic("alice", "one")).status, 200)
        self.assertEqual(self.get_from(port, None, "/", basic("alice", "two")).status, 401)
        with open(os.path.join(p.tmp, "users"), "w") as f:
            f.write(htpasswd_line("m", "alice", "two") + "\n")
        # read at load, not per request: nothing changes before the reload
        self.assertEqual(self.get_from(port, None, "/", basic("alice", "one")).status, 200)
        marks = p.output.count("configuration reloaded")
        p.signal(signal.SIGHUP)
        self.assertTrue(harness.wait_for(lambda: p.output.count("configuration reloaded") > marks,
                                         10), p.output[-2000:])
        self.assertEqual(self.get_from(port, None, "/", basic("alice", "two")).status, 200)
        self.assertEqual(self.get_from(port, None, "/", basic("alice", "one")).status, 401)
        # a broken file: the reload fails and the running conf stays
        with open(os.path.join(p.tmp, "users"), "w") as f:
            f.write("alice:{PLAIN}three\nbroken line\n")
        fails = p.output.count("reload failed")
        p.signal(signal.SIGHUP)
        self.assertTrue(harness.wait_for(lambda: p.output.count("reload failed") > fails, 10),
                        p.output[-2000:])
        line = [l for l in p.output.splitlines() if "reload failed" in l][-1]
        self.assertIn("users:2: no ':' after the user name", line)
        self.assertEqual(self.get_from(port, None, "/", basic("alice", "two")).status, 200)


class ConfCheck(PorterTestCase):
    def check(self, conf, users=None):
        d = self.tmp = tempfile.mkdtemp(prefix="porter-access-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "porter.conf"), "w") as f:
            f.write(conf)
        if users is not None:
            with open(os.path.join(d, "users"), "w") as f:
                f.write(users)
        return run_porter(["-t", "-p", d, "-c", os.path.join(d, "porter.conf")])

    def test_bad_user_file_line(self):
        conf = "server {\n    auth_basic r;\n    auth_basic_user_file users;\n}\n"
        code, _, err = self.check(conf, "# users\nalice:{PLAIN}x\nbob\n")
        self.assertEqual(code, 1, err)
        self.assertIn("porter.conf:3:26: in \"auth_basic_user_file\": %s/users:3: no ':' after "
                      "the user name" % self.tmp, err)
        self.assertIn("test failed", err)

    @unittest.skipUnless(HAS_HTPASSWD, "htpasswd (apache2-utils) is not installed")
    def test_des_refused(self):
        conf = "server {\n    auth_basic r;\n    auth_basic_user_file users;\n}\n"
        code, _, err = self.check(conf, htpasswd_line("d", "alice", "secret") + "\n")
        self.assertEqual(code, 1, err)
        self.assertIn("%s/users:1: user \"alice\": traditional DES crypt is refused" % self.tmp,
                      err)

    def test_other_refusals(self):
        cases = [
            ("server { auth_basic r; auth_basic_user_file missing; }",
             "porter.conf:1:45: in \"auth_basic_user_file\": "),
            ("server {\n  location / { auth_basic r; }\n}\n",
             "porter.conf:2:27: \"auth_basic\" has no \"auth_basic_user_file\" here"),
            ("server { allow 10.0.0.1/8; }",
             "porter.conf:1:16: invalid address \"10.0.0.1/8\" in \"allow\": bits are set beyond "
             "the prefix length, write \"10.0.0.0/8\" for the range"),
            ("server { deny example.com; }", "porter.conf:1:15: invalid address \"example.com\""),
            ("server { satisfy maybe; }", "porter.conf:1:18: invalid value \"maybe\""),
        ]
        for conf, want in cases:
            with self.subTest(conf=conf):
                code, _, err = self.check(conf)
                self.assertEqual(code, 1, err)
                self.assertIn(want, err)

    def test_good(self):
        conf = ("allow 10.0.0.0/8;\nserver {\n    satisfy any;\n    auth_basic \"x y\";\n"
                "    auth_basic_user_file users;\n    deny all;\n"
                "    location /a/ { auth_basic off; allow all; }\n}\n")
        code, _, err = self.check(conf, "alice:{PLAIN}x\n")
        self.assertEqual(code, 0, err)


if __name__ == "__main__":
    harness.main()
