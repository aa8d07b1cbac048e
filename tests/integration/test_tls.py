"""TLS with real clients: curl, openssl s_client and Python's ssl module against porter.

SNI picks the server block and its certificate (RSA and ECDSA side by side), ALPN answers
http/1.1 (h2 first where HTTP/2 is on), TLS 1.0 and 1.1 are refused, sessions resume (tickets across workers, reloads and
key rotations; the session cache), and the static-file and keep-alive behaviour is the same
over TLS as over TCP. Certificates are made in a temporary directory with the openssl CLI.

The helpers here (certificates, TLS connections, s_client, the conf) are shared with
test_tls_bad.py.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402

OPENSSL = harness.tool("openssl")
CURL = harness.tool("curl")

# The names the certificates are for; the tests reach them with --resolve / server_hostname.
NAME_A = "a.test"
NAME_B = "b.test"

_certs = {}  # file name in tls/ -> bytes, made once per process


def _openssl(*args):
    subprocess.run([OPENSSL] + list(args), check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


def certificates():
    """A self-signed RSA and ECDSA certificate for a.test (and localhost), an ECDSA one for
    b.test, and all.pem holding the three for clients to trust. Returns {name: bytes}."""
    if _certs:
        return _certs
    d = tempfile.mkdtemp(prefix="porter-tls-certs-")
    try:
        specs = [
            ("a-rsa", ["-newkey", "rsa:2048"], NAME_A),
            ("a-ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], NAME_A),
            ("b", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], NAME_B),
        ]
        for stem, key, name in specs:
            _openssl("req", "-x509", *key, "-nodes", "-days", "2",
                     "-keyout", os.path.join(d, stem + ".key"),
                     "-out", os.path.join(d, stem + ".crt"),
                     "-subj", "/CN=" + name,
                     "-addext", "subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1" % name)
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                _certs[name] = f.read()
        _certs["all.pem"] = _certs["a-rsa.crt"] + _certs["a-ec.crt"] + _certs["b.crt"]
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return _certs


def tls_extra():
    """The certificates as Porter(extra=...) files under TMP/tls/."""
    return {"tls/" + k: v for k, v in certificates().items()}


def conf(port, a_extra="", top="", b=True, plain_extra="", workers=1):
    """A plain-HTTP server (the status page; porter's first "listening on http://" line) and
    one or two TLS servers on 127.0.0.1:port: a.test (default; RSA and ECDSA) and b.test."""
    text = ("error_log stderr info;\n"
            "worker_processes %d;\n"
            "%s\n"
            "server {\n"
            "    listen 127.0.0.1:0;\n"
            "    root htdocs;\n"
            "    location /porter-status { status; }\n"
            "%s\n"
            "}\n"
            "server {\n"
            "    listen 127.0.0.1:%d ssl default_server;\n"
            "    server_name a.test localhost;\n"
            "    root htdocs;\n"
            "    ssl_certificate tls/a-rsa.crt;\n"
            "    ssl_certificate_key tls/a-rsa.key;\n"
            "    ssl_certificate tls/a-ec.crt;\n"
            "    ssl_certificate_key tls/a-ec.key;\n"
            "    location /porter-status { status; }\n"
            "%s\n"
            "}\n" % (workers, top, plain_extra, port, a_extra))
    if b:
        text += ("server {\n"
                 "    listen 127.0.0.1:%d ssl;\n"
                 "    server_name b.test;\n"
                 "    root htdocs/b;\n"
                 "    ssl_certificate tls/b.crt;\n"
                 "    ssl_certificate_key tls/b.key;\n"
                 "}\n" % port)
    return text


_HTTPS = re.compile(r"listening on https://127\.0\.0\.1:(\d+)")


def tls_port(p):
    # The harness returns at the first "listening on" line; the next may still be on its way.
    m = harness.wait_for(lambda: _HTTPS.search(p.output), 5)
    if not m:
        raise AssertionError("no \"listening on https://\" line:\n%s" % p.output)
    return int(m.group(1))


_contexts = {}


def client_context(tls_max=None):
    """A client context trusting our certificates (one per version bound: sessions only resume
    through the context that made them)."""
    if tls_max not in _contexts:
        ctx = ssl.create_default_context(cadata=certificates()["all.pem"].decode())
        if tls_max:
            ctx.maximum_version = tls_max
        _contexts[tls_max] = ctx
    return _contexts[tls_max]


def tls_connect(port, name=NAME_A, timeout=harness.IO_TIMEOUT, ctx=None, session=None):
    """A harness.Conn over TLS (verified against our certificates, SNI `name`)."""
    c = harness.Conn.__new__(harness.Conn)
    raw = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        c.sock = (ctx or client_context()).wrap_socket(raw, server_hostname=name, session=session)
    except BaseException:
        raw.close()
        raise
    c.sock.settimeout(timeout)
    c.timeout = timeout
    c.buf = bytearray()
    c.eof = False
    return c


def s_client(port, args=(), data=None, timeout=15):
    """Runs openssl s_client against 127.0.0.1:port; sends `data` (then waits for the server
    to close: use Connection: close). Returns (exit code, output)."""
    cmd = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port] + list(args)
    if data is not None:
        cmd.append("-ign_eof")
    p = subprocess.run(cmd, input=data or b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, preexec_fn=harness._child_setup)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def curl(args, timeout=20):
    """Runs curl; returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run([CURL, "-sS", "--max-time", "10"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, preexec_fn=harness._child_setup)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def resolve(port, name=NAME_A):
    return ["--resolve", "%s:%d:127.0.0.1" % (name, port)]


def get_request(path="/", host=NAME_A):
    return request("GET", path, host=host, close=True)


class TLSCase(PorterTestCase):
    """Starts porter with conf(); self.p and self.tport (the TLS port)."""

    def start_tls(self, files=None, **kw):
        # a.test and b.test share the TLS address: its port is named in the conf (port 0 would
        # give each server a socket of its own), held until porter listens on it.
        port = self.reserve_port()
        self.p = self.start_porter(conf(port, **kw), files or FILES, extra=tls_extra())
        self.tport = tls_port(self.p)
        self.assertEqual(self.tport, port)
        return self.p

    def count(self, text):
        return self.p.output.count(text)


FILES = {
    "index.html": b"<html>a</html>\n",
    "small.txt": b"small file\n",
    "big.bin": bytes(range(256)) * 1024 + b"tail",  # 256 KiB: beyond the in-memory cache
    "dir/x.txt": b"x\n",
    "b/index.html": b"<html>b</html>\n",
}


@unittest.skipUnless(OPENSSL and CURL, "needs openssl and curl")
class Certificates(TLSCase):
    def setUp(self):
        self.start_tls()

    def subject(self, args):
        code, out = s_client(self.tport, args, get_request())
        self.assertEqual(code, 0, out)
        m = re.search(r"subject=\s*CN\s*=\s*(\S+)", out)
        self.assertIsNotNone(m, out)
        return m.group(1), out

    def test_sni_picks_the_server_and_its_certificate(self):
        for name, body in [(NAME_A, FILES["index.html"]), (NAME_B, FILES["b/index.html"])]:
            code, out, err = curl(["--cacert", os.path.join(self.p.tmp, "tls/all.pem"), "-v"]
                                  + resolve(self.tport, name) + ["https://%s:%d/" % (name, self.tport)])
            self.assertEqual(code, 0, err)
            self.assertEqual(out, body)
            self.assertIn("subject: CN=%s" % name, err)
        self.assertEqual(self.subject(["-servername", NAME_B])[0], NAME_B)
        # No SNI, or a name no server has: the address's default server answers.
        self.assertEqual(self.subject(["-noservername"])[0], NAME_A)
        self.assertEqual(self.subject(["-servername", "nobody.test"])[0], NAME_A)

    def test_rsa_and_ecdsa_certificates_side_by_side(self):
        _, out = self.subject(["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256",
                               "-servername", NAME_A])
        self.assertIn("Server public key is 2048 bit", out)
        self.assertIn("ECDHE-RSA-AES128-GCM-SHA256", out)
        _, out = self.subject(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256",
                               "-servername", NAME_A])
        self.assertIn("Server public key is 256 bit", out)
        # TLS 1.3: the client's signature algorithms decide.
        _, out = self.subject(["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256", "-servername", NAME_A])
        self.assertIn("Server public key is 2048 bit", out)
        _, out = self.subject(["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256",
                               "-servername", NAME_A])
        self.assertIn("Server public key is 256 bit", out)

    def test_alpn_offers_http11(self):
        code, _, err = curl(["--cacert", os.path.join(self.p.tmp, "tls/all.pem"), "-v",
                             "--http1.1"] + resolve(self.tport)
                            + ["https://a.test:%d/small.txt" % self.tport])
        self.assertEqual(code, 0, err)
        self.assertIn("ALPN: server accepted http/1.1", err)
        code, out = s_client(self.tport, ["-alpn", "h2,http/1.1"], get_request())
        self.assertIn("ALPN protocol: http/1.1", out)
        # A client offering only protocols porter does not speak gets no ALPN answer.
        code, out = s_client(self.tport, ["-alpn", "h2"], get_request())
        self.assertIn("No ALPN negotiated", out)

    def test_safe_ciphers_only(self):
        # Forward secrecy and AEAD: no plain RSA key exchange, no CBC.
        for cipher in ("AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "AES256-SHA256"):
            code, out = s_client(self.tport, ["-tls1_2", "-cipher", cipher + "@SECLEVEL=0"], b"")
            self.assertNotEqual(code, 0, "%s was accepted:\n%s" % (cipher, out))
        code, out = s_client(self.tport, ["-tls1_2"], get_request())
        self.assertRegex(out, r"Cipher is ECDHE-(ECDSA|RSA)-AES128-GCM-SHA256")

    def test_certificate_rejected_by_the_client_is_logged(self):
        code, _, err = curl(["https://127.0.0.1:%d/" % self.tport])  # no --cacert: untrusted
        self.assertNotEqual(code, 0)
        self.assertTrue(harness.wait_for(
            lambda: re.search(r"TLS handshake failed: .*alert unknown ca, client: 127\.0\.0\.1",
                              self.p.output), 5), self.p.output)


# An OpenSSL configuration that refuses nothing by itself: no protocol floor, security level 0.
_PERMISSIVE_OPENSSL_CONF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = None
CipherString = DEFAULT@SECLEVEL=0
"""

# Ciphers TLS 1.0 and 1.1 can use (CBC with SHA-1) besides the usual ones, at security level 0.
_LEGACY_CIPHERS = ("ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
                   "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0")


@unittest.skipUnless(OPENSSL and CURL, "needs openssl and curl")
class OldProtocols(TLSCase):
    """TLS 1.0 and 1.1 are refused by porter's protocol floor, and by nothing else here.

    OpenSSL 3 refuses them by itself at security level 1 and up, and porter's default ciphers
    are TLS 1.2 ones: so the server's conf lowers its level to 0 and adds ciphers those versions
    can use (as a conf copied from an old guide would), porter and the clients read an OpenSSL
    configuration that refuses nothing (a system one could have a floor of its own), and the
    clients ask for level 0. With porter's floor taken out of server/tls_ctx.c these handshakes
    succeed and the test fails."""

    def setUp(self):
        self.openssl_conf = os.path.join(tempfile.mkdtemp(prefix="porter-tls-old-"), "openssl.cnf")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.openssl_conf), True)
        with open(self.openssl_conf, "w") as f:
            f.write(_PERMISSIVE_OPENSSL_CONF)
        saved = os.environ.get("OPENSSL_CONF")
        os.environ["OPENSSL_CONF"] = self.openssl_conf  # porter's environment
        try:
            self.start_tls(a_extra='    ssl_ciphers "%s";\n' % _LEGACY_CIPHERS)
        finally:
            if saved is None:
                del os.environ["OPENSSL_CONF"]
            else:
                os.environ["OPENSSL_CONF"] = saved

    def client(self, cmd):
        """Runs an OpenSSL client with the permissive configuration; returns (code, output)."""
        env = dict(os.environ, OPENSSL_CONF=self.openssl_conf)
        p = subprocess.run(cmd, input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=20, env=env, preexec_fn=harness._child_setup)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def s_client(self, args):
        return self.client([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % self.tport]
                           + args)

    def test_old_protocols_are_refused(self):
        before = self.count("unsupported protocol")
        code, out = self.client([CURL, "-sS", "--max-time", "10", "-k", "--tlsv1.1", "--tls-max",
                                 "1.1", "--ciphers", "DEFAULT@SECLEVEL=0",
                                 "https://127.0.0.1:%d/" % self.tport])
        self.assertNotEqual(code, 0, out)
        self.assertIn("protocol version", out)  # the server's alert
        for flag in ("-tls1", "-tls1_1"):
            for cipher in ("ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA"):
                code, out = self.s_client([flag, "-cipher", cipher + "@SECLEVEL=0"])
                self.assertNotEqual(code, 0, out)
                self.assertIn("alert protocol version", out)
        # Each refusal is logged once, with OpenSSL's reason: the protocol, not the ciphers.
        self.assertTrue(harness.wait_for(lambda: self.count("unsupported protocol") == before + 5,
                                         5), self.p.output)
        self.assertNotIn("no shared cipher", self.p.output)
        # The same ciphers over TLS 1.2 are taken: nothing but the version was refused.
        for cipher in ("ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA"):
            code, out = self.s_client(["-tls1_2", "-cipher", cipher + "@SECLEVEL=0"])
            self.assertEqual(code, 0, out)
            self.assertIn("Protocol  : TLSv1.2", out)
            self.assertIn("Cipher    : " + cipher, out)
        for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            code, out = s_client(self.tport, [flag], get_request())
            self.assertEqual(code, 0, out)
            self.assertIn("Protocol  : %s" % version, out)


@unittest.skipUnless(OPENSSL and CURL, "needs openssl and curl")
class Resumption(TLSCase):
    def resume(self, port, args, sess, n=1):
        """Makes a session, then resumes it `n` times; returns the outputs of the resumptions."""
        code, out = s_client(port, args + ["-sess_out", sess], get_request())
        self.assertEqual(code, 0, out)
        self.assertIn("New, ", out)
        outs = []
        for _ in range(n):
            code, out = s_client(port, args + ["-sess_in", sess], get_request())
            self.assertEqual(code, 0, out)
            outs.append(out)
        return outs

    def test_tls13_ticket_resumes(self):
        self.start_tls()
        sess = os.path.join(self.p.tmp, "sess")
        for out in self.resume(self.tport, ["-tls1_3", "-servername", NAME_A], sess, 3):
            self.assertIn("Reused, TLSv1.3", out)
        # A session from a.test also resumes with b.test's name (one key set for the process
        # tree, as nginx with a shared ssl_session_ticket_key), but b.test's own certificate is
        # what a full handshake to it shows.
        code, out = s_client(self.tport, ["-servername", NAME_B], get_request())
        self.assertIn("CN = b.test", out)

    def test_tls13_resumption_renews_the_ticket(self):
        # TLS 1.3 clients use a ticket once (OpenSSL's, browsers): each resumption must bring
        # a new ticket, or every other connection of a returning client is a full handshake.
        self.start_tls()
        sess = os.path.join(self.p.tmp, "sess")
        args = ["-tls1_3", "-servername", NAME_A]
        code, out = s_client(self.tport, args + ["-sess_out", sess], get_request())
        self.assertIn("New, ", out)
        for _ in range(3):
            code, out = s_client(self.tport, args + ["-sess_in", sess, "-sess_out", sess],
                                 get_request())
            self.assertEqual(code, 0, out)
            self.assertIn("Reused, TLSv1.3", out)
            self.assertEqual(out.count("Post-Handshake New Session Ticket arrived"), 1, out)

    def test_tls12_ticket_and_cache_resume(self):
        self.start_tls()
        sess = os.path.join(self.p.tmp, "sess")
        for out in self.resume(self.tport, ["-tls1_2"], sess, 2):
            self.assertIn("Reused, TLSv1.2", out)
        # Without tickets: the session cache (by session id).
        for out in self.resume(self.tport, ["-tls1_2", "-no_ticket"], sess, 2):
            self.assertIn("Reused, TLSv1.2", out)

    def test_no_resumption_when_turned_off(self):
        self.start_tls(top="ssl_session_tickets off;\nssl_session_cache off;")
        sess = os.path.join(self.p.tmp, "sess")
        for args in (["-tls1_3"], ["-tls1_2"]):
            for out in self.resume(self.tport, args, sess):
                self.assertNotIn("Reused", out)

    def test_tickets_resume_on_every_worker_across_reloads_and_expire_with_rotation(self):
        self.start_tls(workers=2, top="ssl_session_ticket_rotate 2s;")
        workers = harness.wait_workers(self.p, 2)
        session = self.python_session()
        # The kernel spreads connections over both workers: each resumes wherever it lands.
        self.assertEqual(self.resumed_on(session), set(workers))
        # A reload keeps the keys: the ticket still resumes on the new workers.
        self.p.signal(signal.SIGHUP)
        workers = harness.wait_workers(self.p, 2, exclude=workers)
        self.assertEqual(self.resumed_on(session), set(workers))
        # The master rotates the shared keys every 2s; a ticket outlives two rotations at most.
        sess = os.path.join(self.p.tmp, "sess")
        code, out = s_client(self.tport, ["-tls1_3", "-sess_out", sess], get_request())
        self.assertIn("New, ", out)
        time.sleep(2.5)  # one or two rotations: the key is an old one, still decrypting
        code, out = s_client(self.tport, ["-tls1_3", "-sess_in", sess], get_request())
        self.assertIn("Reused, TLSv1.3", out)
        time.sleep(4.5)  # three rotations or more: the key is gone
        code, out = s_client(self.tport, ["-tls1_3", "-sess_in", sess], get_request())
        self.assertIn("New, ", out)
        self.assertNotIn("Reused", out)

    def python_session(self):
        with tls_connect(self.tport) as c:
            c.send(get_request("/small.txt"))
            c.read_response()  # TLS 1.3 tickets come after the handshake
            self.assertFalse(c.sock.session_reused)
            return c.sock.session

    def resumed_on(self, session, want=2, tries=40):
        """Resumes `session` until `want` distinct workers answered; returns their pids."""
        pids = set()
        for _ in range(tries):
            with tls_connect(self.tport, session=session) as c:
                self.assertTrue(c.sock.session_reused)
                st = harness.get_status(self.p, conn=c)
                pids.update(w["pid"] for w in st["workers"] if w["self"])
            if len(pids) >= want:
                break
        return pids

    def test_single_process_reload_keeps_tickets(self):
        self.start_tls()
        sess = os.path.join(self.p.tmp, "sess")
        self.resume(self.tport, ["-tls1_3"], sess, 0)
        self.p.signal(signal.SIGHUP)
        self.assertTrue(harness.wait_for(lambda: "configuration reloaded" in self.p.output, 10))
        code, out = s_client(self.tport, ["-tls1_3", "-sess_in", sess], get_request())
        self.assertIn("Reused, TLSv1.3", out)


@unittest.skipUnless(OPENSSL and CURL, "needs openssl and curl")
class StaticOverTLS(TLSCase):
    def setUp(self):
        self.start_tls(a_extra="    keepalive_requests 5;\n"
                               "    location = /scheme { return 200 \"$scheme $host $uri\\n\"; }\n")

    def test_files_ranges_validators_and_errors(self):
        with tls_connect(self.tport) as c:
            for path, body in [("/small.txt", FILES["small.txt"]), ("/big.bin", FILES["big.bin"]),
                               ("/", FILES["index.html"])]:
                c.send(request("GET", path, host=NAME_A))
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertEqual(r.body, body)
            c.send(request("HEAD", "/big.bin", host=NAME_A))
            r = c.read_response("HEAD")
            self.assertEqual(int(r.header("Content-Length")), len(FILES["big.bin"]))
            etag = r.header("ETag")
            c.send(request("GET", "/big.bin", host=NAME_A, headers=[("If-None-Match", etag)],
                           close=True))
            self.assertStatus(c.read_response(), 304)
        with tls_connect(self.tport) as c:
            c.send(request("GET", "/big.bin", host=NAME_A, headers=[("Range", "bytes=1000-1999")]))
            r = c.read_response()
            self.assertStatus(r, 206)
            self.assertEqual(r.body, FILES["big.bin"][1000:2000])
            c.send(request("GET", "/dir", host=NAME_A))
            r = c.read_response()
            self.assertStatus(r, 301)
            self.assertTrue(r.header("Location").endswith("/dir/"), r.headers)
            c.send(request("GET", "/missing", host=NAME_A))
            self.assertStatus(c.read_response(), 404)
        # The vhost is chosen by Host per request, over a connection SNI opened for a.test.
        with tls_connect(self.tport) as c:
            c.send(request("GET", "/", host=NAME_B, close=True))
            self.assertEqual(c.read_response().body, FILES["b/index.html"])
        # How files go out over TLS is said once at start.
        self.assertRegex(self.p.output, r"TLS file bodies: (sendfile via kernel TLS|read \+ SSL_write)")

    def test_curl_downloads_a_large_file(self):
        out_path = os.path.join(self.p.tmp, "got.bin")
        code, _, err = curl(["--cacert", os.path.join(self.p.tmp, "tls/all.pem"), "-o", out_path]
                            + resolve(self.tport) + ["https://a.test:%d/big.bin" % self.tport])
        self.assertEqual(code, 0, err)
        with open(out_path, "rb") as f:
            self.assertEqual(f.read(), FILES["big.bin"])

    def test_keep_alive_and_pipelining(self):
        with tls_connect(self.tport) as c:
            c.send(request("GET", "/small.txt", host=NAME_A))
            self.assertEqual(c.read_response().body, FILES["small.txt"])
            self.assertOpen(c)
            # The next four in one write: answered in order; the fifth request of the
            # connection (keepalive_requests 5) says close, and the connection ends.
            c.send(request("GET", "/", host=NAME_A) + request("GET", "/big.bin", host=NAME_A)
                   + request("HEAD", "/", host=NAME_A) + request("GET", "/small.txt", host=NAME_A))
            rs = c.read_responses(["GET", "GET", "HEAD", "GET"])
            self.assertEqual([r.body for r in rs],
                             [FILES["index.html"], FILES["big.bin"], b"", FILES["small.txt"]])
            self.assertNotEqual(rs[2].header("Connection"), "close")
            self.assertEqual(rs[3].header("Connection"), "close")
            self.assertClosed(c)
        with tls_connect(self.tport) as c:
            c.send(b"".join(request("GET", "/small.txt", host=NAME_A) for _ in range(2))
                   + request("GET", "/", host=NAME_A, close=True))
            rs = c.read_responses(["GET"] * 3)
            self.assertEqual([r.status for r in rs], [200, 200, 200])
            self.assertClosed(c)

    def test_half_close_after_the_request_is_answered(self):
        # As over TCP: the client's end of stream (no close_notify) after a complete request.
        with tls_connect(self.tport) as c:
            c.send(request("GET", "/small.txt", host=NAME_A))
            socket.socket.shutdown(c.sock, socket.SHUT_WR)  # TCP only: no close_notify
            self.assertEqual(c.read_response().body, FILES["small.txt"])
            self.assertClosed(c)
        self.assertNotIn("TLS connection failed", self.p.output)

    def test_errors_close_after_the_answer(self):
        with tls_connect(self.tport) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n")
            self.assertStatus(c.read_response(), 400)
            self.assertClosed(c, allow_extra=True)

    def test_scheme_and_host(self):
        with tls_connect(self.tport) as c:
            c.send(request("GET", "/scheme", host="A.Test:%d" % self.tport, close=True))
            self.assertEqual(c.read_response().body, b"https a.test /scheme\n")

    def test_status_page_over_tls(self):
        with tls_connect(self.tport) as c:
            st = harness.get_status(self.p, conn=c)
        self.assertGreaterEqual(st["total"]["connections"]["active"], 1)


@unittest.skipUnless(OPENSSL and CURL, "needs openssl and curl")
class SlowReader(TLSCase):
    HUGE = os.urandom(6 * 1024 * 1024)

    def test_a_large_file_arrives_whole(self):
        # A client with a small window that reads in small steps and pauses: porter's socket
        # fills, the TLS records it did not take go out later, whole and in order. (The
        # close_notify after them is sent when the socket takes it at the close; porter does not
        # wait for a full socket to drain before closing, so under load it can be missing: an
        # end without one is accepted here.)
        self.start_tls(files=dict(FILES, **{"huge.bin": self.HUGE}))
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        raw.settimeout(harness.IO_TIMEOUT)
        raw.connect(("127.0.0.1", self.tport))
        s = client_context().wrap_socket(raw, server_hostname=NAME_A, suppress_ragged_eofs=True)
        with s:
            s.sendall(request("GET", "/huge.bin", host=NAME_A, close=True))
            data = bytearray()
            paused = 0
            while True:
                chunk = s.recv(8192)
                if not chunk:
                    break
                data += chunk
                if len(data) // 65536 > paused:
                    paused = len(data) // 65536
                    time.sleep(0.003)
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        self.assertRegex(head.split(b"\r\n")[0], rb"^HTTP/1\.1 200 ")
        self.assertEqual(len(body), len(self.HUGE))
        self.assertTrue(body == self.HUGE, "the body differs from the file")


@unittest.skipUnless(OPENSSL and CURL, "needs openssl and curl")
class Redirect(TLSCase):
    def test_plain_http_redirects_to_https(self):
        port = self.reserve_port()  # written in the redirect's URL
        self.p = self.start_porter(
            conf(port, plain_extra="    server_name a.test;\n"
                                   "    location / { return 301 https://$host:%d$request_uri; }\n"
                                   "    location = /scheme { return 200 \"$scheme\\n\"; }\n" % port),
            FILES, extra=tls_extra())
        r = self.p.get("/dir/x.txt?q=1%20", headers=[("Host", "a.test:%d" % self.p.port)])
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "https://a.test:%d/dir/x.txt?q=1%%20" % port)
        self.assertEqual(self.p.get("/scheme").body, b"http\n")
        # curl follows it to the TLS server.
        code, out, err = curl(["-L", "--cacert", os.path.join(self.p.tmp, "tls/all.pem")]
                              + resolve(port) + resolve(self.p.port)
                              + ["http://a.test:%d/dir/x.txt" % self.p.port])
        self.assertEqual(code, 0, err)
        self.assertEqual(out, FILES["dir/x.txt"])


class Return(PorterTestCase):
    """`return` (plain HTTP: it is not TLS's own, but the redirect to https needs it)."""

    def setUp(self):
        port = self.reserve_port()  # two servers on one address
        self.p = self.start_porter(
            "server {\n"
            "    listen 127.0.0.1:%d;\n"
            "    root htdocs;\n"
            "    error_page 404 /404.html;\n"
            "    location = /gone { return 410; }\n"
            "    location = /missing { return 404; }\n"
            "    location /teapot { return 418 \"short and stout: $uri\\n\"; }\n"
            "    location = /empty { return 204; }\n"
            "    location /old { return https://example.com/new$uri; }\n"
            "    location /perm { return 308 /new${request_uri}; }\n"
            "}\n"
            "server {\n"
            "    listen 127.0.0.1:%d;\n"
            "    server_name r.test;\n"
            "    root htdocs;\n"
            "    return 301 https://$host$request_uri;\n"
            "    location / { return 200 \"never\"; }\n"
            "}\n" % (port, port),
            {"404.html": b"custom 404\n", "index.html": b"index\n"})

    def test_codes_texts_and_redirects(self):
        r = self.p.get("/gone")
        self.assertStatus(r, 410)
        self.assertIn(b"<h1>410", r.body)
        r = self.p.get("/missing")  # through error_page, keeping the code
        self.assertStatus(r, 404)
        self.assertEqual(r.body, b"custom 404\n")
        r = self.p.get("/teapot/pot")
        self.assertStatus(r, 418)
        self.assertEqual(r.body, b"short and stout: /teapot/pot\n")
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")  # default_type
        r = self.p.get("/teapot", method="HEAD")
        self.assertStatus(r, 418)
        self.assertEqual(r.body, b"")
        r = self.p.get("/empty")
        self.assertStatus(r, 204)
        self.assertIsNone(r.header("Content-Length"))
        r = self.p.get("/old/a%20b/%25")
        self.assertStatus(r, 302)
        # $uri is the decoded path: what a URL cannot hold is encoded again.
        self.assertEqual(r.header("Location"), "https://example.com/new/old/a%20b/%25")
        r = self.p.get("/perm/x?a=b&c")
        self.assertStatus(r, 308)
        self.assertEqual(r.header("Location"), "/new/perm/x?a=b&c")

    def test_server_level_return_comes_before_locations(self):
        r = self.p.get("/any/where?q", headers=[("Host", "R.test:8080")])
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "https://r.test/any/where?q")
        self.assertIn(b"301", r.body)


@unittest.skipUnless(OPENSSL, "needs openssl")
class ALPN(PorterTestCase):
    """ALPN selects h2 before http/1.1 where HTTP/2 is on: for the server SNI chose when it says
    `http2 on`, and for every server on an address one of whose listens says `ssl http2`."""

    def setUp(self):
        self.x = self.reserve_port()
        self.y = self.reserve_port()
        text = ("error_log stderr info;\n"
                "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n"
                "server {\n"
                "    listen 127.0.0.1:%d ssl default_server;\n"
                "    listen 127.0.0.1:%d ssl http2;\n"
                "    server_name a.test;\n    root htdocs;\n"
                "    ssl_certificate tls/a-ec.crt;\n    ssl_certificate_key tls/a-ec.key;\n"
                "    http2 on;\n"
                "}\n"
                "server {\n"
                "    listen 127.0.0.1:%d ssl;\n"
                "    listen 127.0.0.1:%d ssl;\n"
                "    server_name b.test;\n    root htdocs/b;\n"
                "    ssl_certificate tls/b.crt;\n    ssl_certificate_key tls/b.key;\n"
                "}\n" % (self.x, self.y, self.x, self.y))
        self.p = self.start_porter(text, FILES, extra=tls_extra())
        if not harness.wait_for(lambda: len(_HTTPS.findall(self.p.output)) >= 2, 5):
            raise AssertionError("no two \"listening on https://\" lines:\n%s" % self.p.output)

    def alpn(self, port, name, offer):
        """The protocol ALPN selects for a client naming `name` and offering `offer` (None:
        none selected)."""
        ctx = ssl.create_default_context(cadata=certificates()["all.pem"].decode())
        ctx.set_alpn_protocols(offer)
        raw = socket.create_connection(("127.0.0.1", port), harness.IO_TIMEOUT)
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            return s.selected_alpn_protocol()

    def test_sni_chooses_the_servers_answer(self):
        # x: no listen says http2; a.test says `http2 on`, b.test does not
        self.assertEqual(self.alpn(self.x, NAME_A, ["h2", "http/1.1"]), "h2")
        self.assertEqual(self.alpn(self.x, NAME_A, ["http/1.1", "h2"]), "h2")  # the server's order
        self.assertEqual(self.alpn(self.x, NAME_A, ["http/1.1"]), "http/1.1")
        self.assertEqual(self.alpn(self.x, NAME_B, ["h2", "http/1.1"]), "http/1.1")
        # a client offering only h2 to a server without it gets no ALPN answer
        self.assertIsNone(self.alpn(self.x, NAME_B, ["h2"]))

    def test_an_http2_listen_offers_h2_for_every_server_on_the_address(self):
        # y: a.test's listen says `ssl http2`, b.test's does not: the address offers h2
        self.assertEqual(self.alpn(self.y, NAME_B, ["h2", "http/1.1"]), "h2")
        self.assertEqual(self.alpn(self.y, NAME_B, ["h2"]), "h2")
        self.assertEqual(self.alpn(self.y, NAME_A, ["h2", "http/1.1"]), "h2")
        self.assertEqual(self.alpn(self.y, NAME_B, ["http/1.1"]), "http/1.1")


class ConfCheck(PorterTestCase):
    """porter -t reads and matches certificates as a start would, and says where."""

    def check(self, text, extra=None):
        tmp = tempfile.mkdtemp(prefix="porter-tls-t-")
        try:
            os.makedirs(os.path.join(tmp, "htdocs"))
            harness.write_files(tmp, extra or {})
            path = os.path.join(tmp, "porter.conf")
            with open(path, "w") as f:
                f.write(text)
            return harness.run_porter(["-t", "-p", tmp, "-c", path])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @unittest.skipUnless(OPENSSL, "needs openssl")
    def test_certificates_are_checked(self):
        good = ("server {\n    listen 127.0.0.1:8443 ssl;\n"
                "    ssl_certificate tls/a-ec.crt;\n    ssl_certificate_key %s;\n}\n")
        code, _, err = self.check(good % "tls/a-ec.key", tls_extra())
        self.assertEqual(code, 0, err)
        code, _, err = self.check(good % "tls/b.key", tls_extra())
        self.assertEqual(code, 1)
        self.assertRegex(err, r"porter\.conf:3:5: cannot load certificate key \".*b\.key\".*mismatch")
        code, _, err = self.check(good % "tls/missing.key", tls_extra())
        self.assertEqual(code, 1)
        self.assertRegex(err, r"porter\.conf:3:5: cannot load certificate key \".*missing\.key\"")

    def test_ssl_listen_without_certificate(self):
        code, _, err = self.check("server {\n    listen 127.0.0.1:8443 ssl;\n}\n")
        self.assertEqual(code, 1)
        self.assertIn("porter.conf:2:12: no \"ssl_certificate\" is defined for the "
                      "\"listen ... ssl\" directive", err)


if __name__ == "__main__":
    harness.main()
