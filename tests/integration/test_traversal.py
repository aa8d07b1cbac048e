"""Path traversal: targets sent raw (no client normalises them) must never reach a file outside
the document root, whether by "..", encoded dots and slashes, NUL bytes, double encoding or a
symlink. Outside files carry a marker that must never appear in any response."""

import sys
import os

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request

MARKER = b"TOP-SECRET-MARKER-7f3a9c"

FILES = {
    "index.html": b"<html>index</html>\n",
    "a/b/deep.txt": b"deep\n",
    "public.txt": b"public\n",
    "foo": b"foo without extension\n",
}

# Outside the root: TMP/secret.txt, TMP/etc/passwd (what "/../etc/passwd" would reach from
# TMP/htdocs), and a directory TMP/outside/.
EXTRA = {
    "secret.txt": MARKER + b" secret\n",
    "etc/passwd": MARKER + b" root:x:0:0\n",
    "outside/inner.txt": MARKER + b" inner\n",
}

CORPUS = [
    "/../../etc/passwd",
    "/../etc/passwd",
    "/..",
    "/../",
    "/../secret.txt",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2e%2e/etc/passwd",
    "/%2E%2E/secret.txt",
    "/..%2f..%2fetc/passwd",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%2E%2E%2F",
    "/%2e%2e%2fsecret.txt",
    "/a/../../etc/passwd",
    "/a/b/../../../secret.txt",
    "/a/%2e%2e/%2e%2e/secret.txt",
    "/foo%00.html",
    "/public.txt%00",
    "/secret.txt%00.html",
    "/%00",
    "/%252e%252e/",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/.%2e/.%2e/etc/passwd",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/..\\secret.txt",
    "/..%5csecret.txt",
    "/....//secret.txt",
    "/.../secret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt",
    "/a/b/../../../../../../../../../../etc/passwd",
    "/./../secret.txt",
    "/%2e%2e",
    "/%",
    "/%2",
    "/%zz/secret.txt",
    "/link-out.txt",
    "/link-abs.txt",
    "/link-dir/inner.txt",
    "/link-dir/../secret.txt",
    "/link-etc",
    "/link-etc/passwd",
    "/a/link-up/secret.txt",
    "/loop",
]


class Traversal(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = harness.Porter("", FILES, extra=EXTRA)
        h, t = cls.p.htdocs, cls.p.tmp
        os.symlink(os.path.join(t, "secret.txt"), os.path.join(h, "link-abs.txt"))
        os.symlink("../secret.txt", os.path.join(h, "link-out.txt"))
        os.symlink("../outside", os.path.join(h, "link-dir"))
        os.symlink(os.path.join(t, "etc"), os.path.join(h, "link-etc"))
        os.symlink("../../../", os.path.join(h, "a", "link-up"))
        os.symlink("loop", os.path.join(h, "loop"))
        # Symlinks that stay inside the root.
        os.symlink("public.txt", os.path.join(h, "link-in.txt"))
        os.symlink("a/b/deep.txt", os.path.join(h, "link-deep.txt"))
        os.symlink("../../public.txt", os.path.join(h, "a", "b", "link-back.txt"))
        os.symlink("a/b", os.path.join(h, "link-subdir"))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def send_raw(self, target, method="GET"):
        with self.p.connect() as c:
            c.send(("%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % (method, target)).encode("latin-1"))
            r = c.read_response(method)
            rest = c.read_until_close(5)
            return r, rest

    def test_corpus(self):
        bad = []
        for target in CORPUS:
            r, rest = self.send_raw(target)
            if MARKER in r.body or MARKER in rest or b"root:x:0:0" in r.body:
                bad.append("%s -> %d LEAKED the outside file" % (target, r.status))
            elif r.status not in (400, 403, 404):
                bad.append("%s -> %d (expected 400, 403 or 404)" % (target, r.status))
        self.assertEqual(bad, [], "\n" + "\n".join(bad))

    def test_real_etc_passwd_not_reachable(self):
        for target in ["/../../../../../../../../etc/passwd", "/%2e%2e/" * 12 + "etc/passwd",
                       "/..%2f" * 12 + "etc/passwd", "/etc/passwd"]:
            r, _ = self.send_raw(target)
            self.assertNotIn(b"root:", r.body, target)
            # above the root: 400; /etc/passwd is the root's etc/passwd, which does not exist
            self.assertEqual(r.status, 404 if target == "/etc/passwd" else 400, target)

    def test_specific_statuses(self):
        # Climbing above the root is a bad request; a NUL is a bad request.
        for target in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd",
                       "/%2E%2E%2F", "/a/../../etc/passwd", "/.%2e/.%2e/etc/passwd", "/foo%00.html"]:
            r, _ = self.send_raw(target)
            self.assertEqual(r.status, 400, target)
        # Double encoding decodes once: a literal "%2e%2e" directory, which does not exist.
        r, _ = self.send_raw("/%252e%252e/")
        self.assertEqual(r.status, 404)
        # A symlink out of the root is refused: 403 (README, "Static files").
        for target in ["/link-out.txt", "/link-abs.txt", "/link-dir/inner.txt", "/link-etc/passwd",
                       "/a/link-up/secret.txt"]:
            r, _ = self.send_raw(target)
            self.assertEqual(r.status, 403, target)
            self.assertNotIn(MARKER, r.body, target)

    def test_head_and_absolute_form_too(self):
        for target, status in [("/../secret.txt", 400), ("/link-out.txt", 403),
                               ("/%2e%2e/secret.txt", 400)]:
            r, _ = self.send_raw(target, method="HEAD")
            self.assertEqual(r.status, status, target)
        for target, status in [("http://localhost/../secret.txt", 400),
                               ("http://localhost/%2e%2e/secret.txt", 400),
                               ("http://localhost/link-out.txt", 403),
                               ("http://localhost/..%2fsecret.txt", 400)]:
            r, rest = self.send_raw(target)
            self.assertNotIn(MARKER, r.body + rest, target)
            self.assertEqual(r.status, status, target)

    def test_symlinks_inside_are_served(self):
        for target, body in [("/link-in.txt", b"public\n"), ("/link-deep.txt", b"deep\n"),
                             ("/a/b/link-back.txt", b"public\n"), ("/link-subdir/deep.txt", b"deep\n")]:
            r, _ = self.send_raw(target)
            self.assertEqual(r.status, 200, target)
            self.assertEqual(r.body, body, target)

    def test_dotdot_inside_root_is_fine(self):
        r, _ = self.send_raw("/a/b/../../public.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"public\n")
        r, _ = self.send_raw("/a/%2e%2e/public.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"public\n")

    def test_server_survives_the_corpus(self):
        with self.p.connect() as c:
            # The whole corpus pipelined on one connection; each answer in order, no leak.
            raw = b"".join(request("GET", t) for t in CORPUS)
            c.send(raw)
            seen = b""
            try:
                for _ in CORPUS:
                    r = c.read_response()
                    seen += r.body
                    if r.has_token("Connection", "close"):
                        break
            except harness.Closed:
                pass
            self.assertNotIn(MARKER, seen)
        r, _ = self.send_raw("/public.txt")
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    harness.main()
