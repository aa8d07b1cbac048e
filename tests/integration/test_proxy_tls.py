"""TLS to upstreams (`proxy_pass https://`): the certificate verified against
proxy_ssl_trusted_certificate or the system's store, by host name or address; SNI sent unless
proxy_ssl_server_name is off; proxy_ssl_verify off; connections reused. The backend is
test_proxy.py's, wrapped in Python's ssl; certificates are made with the openssl CLI.
"""

import os
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_proxy import ProxyTestCase  # noqa: E402

OPENSSL = harness.tool("openssl")


def make_cert(directory, name, san):
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=" + name, "-addext", "subjectAltName=" + san, "-keyout", key, "-out",
                    cert], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)
    return cert, key


@unittest.skipUnless(OPENSSL, "needs openssl")
class UpstreamTlsTest(ProxyTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="porter-proxy-tls-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.dir]))
        self.cert, key = make_cert(self.dir, "localhost", "DNS:localhost,IP:127.0.0.1")
        self.other, other_key = make_cert(self.dir, "other.test", "DNS:other.test")
        self.sni = []
        self.ctx = self._context(self.cert, key)
        self.other_ctx = self._context(self.other, other_key)

    def _context(self, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.sni_callback = lambda sock, name, c: self.sni.append(name)
        return ctx

    def tls_proxy(self, server, settings, ctx=None):
        b = self.backend(ssl_context=ctx or self.ctx)
        p = self.proxy([server % b.port], location="location / { %s proxy_pass https://app; }"
                       % settings)
        return b, p

    def test_verified_by_name_with_sni_and_reuse(self):
        b, p = self.tls_proxy("localhost:%d", "proxy_ssl_trusted_certificate %s;" % self.cert)
        with p.connect() as c:
            for i in range(5):
                c.send(harness.request("GET", "/t%d" % i))
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertEqual(r.body, b"ok /t%d" % i)
        self.assertEqual(b.connections, 1)
        self.assertEqual(self.sni, ["localhost"])
        r = p.get("/headers")
        self.assertIn(b'"X-Forwarded-Proto", "http"', r.body)

    def test_verified_by_address_without_sni(self):
        b, p = self.tls_proxy("127.0.0.1:%d", "proxy_ssl_trusted_certificate %s;" % self.cert)
        self.assertStatus(p.get("/a"), 200)
        self.assertEqual(self.sni, [None])

    def test_untrusted_certificate_is_502(self):
        b, p = self.tls_proxy("localhost:%d", "")  # the system's store knows nothing of it
        self.assertStatus(p.get("/a"), 502)
        self.assertTrue(harness.wait_for(lambda: "certificate verify failed" in p.output, 5), p.output)

    def test_wrong_name_is_502(self):
        b, p = self.tls_proxy("localhost:%d", "proxy_ssl_trusted_certificate %s;" % self.other,
                              ctx=self.other_ctx)
        self.assertStatus(p.get("/a"), 502)
        self.assertTrue(harness.wait_for(lambda: "certificate verify failed" in p.output, 5), p.output)

    def test_verification_off(self):
        b, p = self.tls_proxy("localhost:%d", "proxy_ssl_verify off;", ctx=self.other_ctx)
        self.assertStatus(p.get("/a"), 200)

    def test_server_name_off(self):
        b, p = self.tls_proxy("localhost:%d", "proxy_ssl_server_name off; "
                              "proxy_ssl_trusted_certificate %s;" % self.cert)
        self.assertStatus(p.get("/a"), 200)
        self.assertEqual(self.sni, [None])

    def test_missing_trusted_certificate_file(self):
        p = harness.Porter("location / { proxy_ssl_trusted_certificate /nonexistent/ca.pem; "
                           "proxy_pass https://127.0.0.1:1; }", start=False)
        try:
            code, out, err = harness.run_porter(["-t", "-p", p.tmp, "-c", p.conf_path])
        finally:
            p.cleanup()
        self.assertEqual(code, 1)
        self.assertRegex(err, r"porter\.conf:\d+:\d+: proxy_ssl_trusted_certificate")


if __name__ == "__main__":
    harness.main()
