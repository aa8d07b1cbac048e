"""The TLS settings take effect, seen from real clients (openssl s_client, Python's ssl module).

ssl_ciphers and ssl_ciphersuites decide what a handshake may use: a client offering only what
the server excludes is refused, one offering what the server added (beyond the defaults) gets
it. ssl_prefer_server_ciphers decides whose order wins, in TLS 1.2 and 1.3. ssl_protocols
narrowed to one version refuses the other. ssl_session_timeout bounds resumption by ticket and by
session id; a shared:NAME:SIZE cache resumes session ids (tickets off) and keeps about SIZE / 256
of them; with two workers, session ids resume on the worker that made them (the cache is per
process) and tickets on every worker (their keys are shared), as docs/tls.md says.

These are the settings of the address's default server; the conf and certificates are
test_tls.py's.
"""

import os
import re
import shutil
import ssl
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase  # noqa: E402
from test_tls import (FILES, NAME_A, OPENSSL, certificates, conf, get_request,  # noqa: E402
                      s_client, tls_connect, tls_extra, tls_port)

NO_TICKET = ["-tls1_2", "-no_ticket"]  # s_client resuming by session id only

_PROTOCOL = re.compile(r"^\s*Protocol\s*: (\S+)", re.M)
_CIPHER = re.compile(r"^\s*Cipher\s*: (\S+)", re.M)


class Handshake:
    """What one s_client run saw: ok, protocol, cipher, reused, and its whole output."""

    def __init__(self, code, out):
        self.out = out
        self.ok = code == 0 and "Cipher is (NONE)" not in out
        m = _PROTOCOL.search(out)
        self.protocol = m.group(1) if m else None
        m = _CIPHER.search(out)
        self.cipher = m.group(1) if m else None
        self.reused = "\nReused, " in out
        self.new = "\nNew, " in out

    def __repr__(self):
        return self.out


@unittest.skipUnless(OPENSSL, "needs openssl")
class SettingsCase(PorterTestCase):
    def start(self, top="", a_extra="", workers=1):
        """A porter whose default TLS server (a.test, on port 0) has `a_extra`; returns (porter,
        the port it bound)."""
        p = self.start_porter(conf(0, a_extra=a_extra, top=top, b=False, workers=workers),
                              FILES, extra=tls_extra())
        return p, tls_port(p)

    def handshake(self, port, args):
        """s_client with `args`: a request sent and its answer read (TLS 1.3 tickets come
        after the handshake), or a refused handshake."""
        code, out = s_client(port, ["-servername", NAME_A] + list(args), get_request())
        return Handshake(code, out)

    def assert_refused(self, p, port, args, reason):
        """The handshake fails, and porter logs why (`reason`, OpenSSL's words)."""
        before = p.output.count(reason)
        h = self.handshake(port, args)
        self.assertFalse(h.ok, "%s was not refused:\n%s" % (args, h.out))
        self.assertNotIn("HTTP/1.1 200", h.out)
        self.assertTrue(harness.wait_for(lambda: p.output.count(reason) > before, 5),
                        "no \"%s\" in the log:\n%s" % (reason, p.output))

    def assert_served(self, h, protocol=None, cipher=None):
        self.assertTrue(h.ok, h.out)
        self.assertIn("HTTP/1.1 200", h.out)
        if protocol:
            self.assertEqual(h.protocol, protocol, h.out)
        if cipher:
            self.assertEqual(h.cipher, cipher, h.out)


class Ciphers(SettingsCase):
    def test_ssl_ciphers_narrows_and_widens_the_tls12_ciphers(self):
        # AES128-GCM is one of the defaults, left out here; AES256-SHA384 (CBC) is not one of
        # them, added here.
        p, port = self.start(a_extra="    ssl_ciphers ECDHE-RSA-AES256-GCM-SHA384:"
                                     "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-SHA384;\n")
        for cipher in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256",
                       "ECDHE-RSA-CHACHA20-POLY1305"):
            self.assert_refused(p, port, ["-tls1_2", "-cipher", cipher], "no shared cipher")
        self.assert_served(self.handshake(port, ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA384"]),
                           "TLSv1.2", "ECDHE-RSA-AES256-SHA384")
        # A client offering everything gets one of the server's.
        h = self.handshake(port, ["-tls1_2"])
        self.assert_served(h, "TLSv1.2")
        self.assertIn(h.cipher, ("ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"))
        # TLS 1.3 has its own list, untouched.
        self.assert_served(self.handshake(port, ["-tls1_3"]), "TLSv1.3")

    def test_ssl_ciphersuites_narrows_and_widens_the_tls13_suites(self):
        # AES-128-GCM is the client's first choice and one of the defaults, left out here;
        # AES-128-CCM is in neither OpenSSL's nor porter's defaults, added here.
        p, port = self.start(a_extra="    ssl_ciphersuites TLS_CHACHA20_POLY1305_SHA256:"
                                     "TLS_AES_128_CCM_SHA256;\n")
        for suite in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"):
            self.assert_refused(p, port, ["-tls1_3", "-ciphersuites", suite], "no shared cipher")
        self.assert_served(self.handshake(port, ["-tls1_3", "-ciphersuites",
                                                 "TLS_AES_128_CCM_SHA256"]),
                           "TLSv1.3", "TLS_AES_128_CCM_SHA256")
        self.assert_served(self.handshake(port, ["-tls1_3"]), "TLSv1.3",
                           "TLS_CHACHA20_POLY1305_SHA256")
        # TLS 1.2 has its own list, untouched.
        self.assert_served(self.handshake(port, ["-tls1_2", "-cipher",
                                                 "ECDHE-RSA-AES128-GCM-SHA256"]),
                           "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")

    def test_prefer_server_ciphers_decides_whose_order_wins(self):
        server = ("    ssl_ciphers ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256;\n"
                  "    ssl_ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256;\n")
        # The client lists the same two the other way round.
        tls12 = ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"]
        tls13 = ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"]
        _, on = self.start(a_extra=server)  # on is the default
        _, explicit_on = self.start(a_extra=server + "    ssl_prefer_server_ciphers on;\n")
        _, off = self.start(a_extra=server + "    ssl_prefer_server_ciphers off;\n")
        for port in (on, explicit_on):
            self.assert_served(self.handshake(port, tls12), "TLSv1.2",
                               "ECDHE-RSA-AES256-GCM-SHA384")
            self.assert_served(self.handshake(port, tls13), "TLSv1.3", "TLS_AES_256_GCM_SHA384")
        self.assert_served(self.handshake(off, tls12), "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
        self.assert_served(self.handshake(off, tls13), "TLSv1.3", "TLS_AES_128_GCM_SHA256")


class Protocols(SettingsCase):
    def test_one_protocol_refuses_the_other(self):
        p13, only13 = self.start(a_extra="    ssl_protocols TLSv1.3;\n")
        p12, only12 = self.start(a_extra="    ssl_protocols TLSv1.2;\n")
        self.assert_refused(p13, only13, ["-tls1_2"], "unsupported protocol")
        self.assert_refused(p12, only12, ["-tls1_3"], "unsupported protocol")
        # A client offering both gets the one the server has.
        self.assert_served(self.handshake(only13, []), "TLSv1.3")
        self.assert_served(self.handshake(only12, []), "TLSv1.2")
        self.assert_served(self.handshake(only13, ["-tls1_3"]), "TLSv1.3")
        self.assert_served(self.handshake(only12, ["-tls1_2"]), "TLSv1.2")
        # Python's ssl module, refused the same way.
        with self.assertRaises(ssl.SSLError):
            tls_connect(only13, ctx=client_ctx(ssl.TLSVersion.TLSv1_2,
                                               ssl.TLSVersion.TLSv1_2)).close()
        with self.assertRaises(ssl.SSLError):
            tls_connect(only12, ctx=client_ctx(ssl.TLSVersion.TLSv1_3,
                                               ssl.TLSVersion.TLSv1_3)).close()


class Resumption(SettingsCase):
    """Resumption with s_client's saved sessions (-sess_out, then -sess_in)."""

    def new_session(self, port, args, path):
        h = self.handshake(port, args + ["-sess_out", path])
        self.assert_served(h)
        self.assertTrue(h.new, h.out)
        self.assertTrue(os.path.exists(path) and os.path.getsize(path) > 0,
                        "no session saved:\n" + h.out)
        return h

    def resume(self, port, args, path):
        """A connection offering the saved session; returns its Handshake (served)."""
        h = self.handshake(port, args + ["-sess_in", path])
        self.assert_served(h)
        return h

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="porter-tls-sessions-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def test_session_timeout_bounds_tickets_and_session_ids(self):
        # Tickets alone (no cache), then the cache alone (no tickets): the timeout is each
        # one's. The two servers run side by side so one wait serves both.
        top = "ssl_session_timeout 3s;\n"
        _, tickets = self.start(top=top + "ssl_session_cache off;")
        _, ids = self.start(top=top + "ssl_session_tickets off;\nssl_session_cache shared:SSL:1m;")
        d = self.tmpdir()
        cases = [(tickets, ["-tls1_3"]), (tickets, ["-tls1_2"]), (ids, NO_TICKET)]
        paths = [os.path.join(d, "s%d" % i) for i in range(len(cases))]
        for (port, args), path in zip(cases, paths):
            self.new_session(port, args, path)
            h = self.resume(port, args, path)
            self.assertTrue(h.reused, "%s did not resume within the timeout:\n%s" % (args, h.out))
        # OpenSSL counts whole seconds: a session made in second T lasts until T + 3 is over.
        time.sleep(4.5)
        for (port, args), path in zip(cases, paths):
            h = self.resume(port, args, path)
            self.assertFalse(h.reused, "%s resumed after the timeout:\n%s" % (args, h.out))
            self.assertTrue(h.new, h.out)

    def sessions(self, port, n):
        """Makes `n` sessions by session id (TLS 1.2, no ticket); returns their files."""
        d = self.tmpdir()
        paths = [os.path.join(d, "s%d" % i) for i in range(n)]
        for path in paths:
            self.new_session(port, NO_TICKET, path)
        return paths

    def resumed(self, port, paths):
        """Offers each session, the newest first (a miss makes a session, which may push an
        older one out); returns which resumed, in the order they were made."""
        return [self.resume(port, NO_TICKET, path).reused for path in reversed(paths)][::-1]

    def test_shared_cache_resumes_session_ids_within_its_size(self):
        top = "ssl_session_tickets off;\nssl_session_cache shared:SSL:%s;"
        _, small = self.start(top=top % "1k")  # 1024 / 256: four sessions
        _, large = self.start(top=top % "1m")
        # Of five sessions the small cache has lost the first and kept the last three (or four).
        got = self.resumed(small, self.sessions(small, 5))
        self.assertFalse(got[0], got)
        self.assertEqual(got[2:], [True] * 3, got)
        # The large one has kept all five.
        self.assertEqual(self.resumed(large, self.sessions(large, 5)), [True] * 5)

    # OpenSSL 3.0 counts the session it is adding before it makes room
    # (SSL_CTX_add_session): porter asks it for one more, so 1k keeps four, not three.
    def test_shared_cache_holds_size_over_256_sessions(self):
        _, small = self.start(top="ssl_session_tickets off;\nssl_session_cache shared:SSL:1k;")
        self.assertEqual(self.resumed(small, self.sessions(small, 4)), [True] * 4)

    def test_two_workers_session_ids_on_their_own_worker_tickets_on_every_one(self):
        p, port = self.start(top="ssl_session_cache shared:SSL:1m;", workers=2)
        workers = set(harness.wait_workers(p, 2))
        # A TLS 1.2 client without tickets: resumed by session id on the worker that made the
        # session, a full handshake on the other (the cache is per process).
        no_tickets = client_ctx(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
        no_tickets.options |= ssl.OP_NO_TICKET
        session, maker = self.session_and_worker(port, no_tickets)
        seen = self.resumptions(port, no_tickets, session)
        self.assertEqual(set(seen), workers, seen)
        self.assertEqual(seen[maker], {True}, seen)
        self.assertEqual(seen[(workers - {maker}).pop()], {False}, seen)
        # A TLS 1.3 client with tickets: resumed on both (the ticket keys are shared).
        tickets = client_ctx(ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
        session, _ = self.session_and_worker(port, tickets)
        seen = self.resumptions(port, tickets, session)
        self.assertEqual(seen, {pid: {True} for pid in workers})

    def session_and_worker(self, port, ctx):
        """A new session (its connection answered, so TLS 1.3's ticket has come) and the pid of
        the worker that made it."""
        with tls_connect(port, ctx=ctx) as c:
            pid = worker_of(c)
            self.assertFalse(c.sock.session_reused)
            return c.sock.session, pid

    def resumptions(self, port, ctx, session, tries=40):
        """Offers `session` on new connections until both workers were reached (and six
        connections made); returns {worker pid: {reused, ...}}."""
        seen = {}
        for n in range(1, tries + 1):
            with tls_connect(port, ctx=ctx, session=session) as c:
                seen.setdefault(worker_of(c), set()).add(c.sock.session_reused)
            if len(seen) == 2 and n >= 6:
                break
        return seen


def client_ctx(lo, hi):
    """A client context trusting our certificates, for TLS versions lo to hi."""
    ctx = ssl.create_default_context(cadata=certificates()["all.pem"].decode())
    ctx.minimum_version = lo
    ctx.maximum_version = hi
    return ctx


def worker_of(c):
    """The pid of the worker serving connection `c` (the one the status page calls "self")."""
    st = harness.get_status(None, conn=c)
    return [w["pid"] for w in st["workers"] if w["self"]][0]


if __name__ == "__main__":
    harness.main()
