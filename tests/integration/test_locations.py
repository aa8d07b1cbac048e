"""Locations: exact and prefix matching, root and alias (without nginx's off-by-slash
traversal), try_files for single-page applications, error_page, add_header and expires,
autoindex, and the status page as a location handler."""

import email.utils
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402

FILES = {
    "index.html": b"root index\n",
    "page.html": b"root page\n",
    "404.html": b"custom not found\n",
    "50x.html": b"custom server error\n",
    "exact": b"exact file\n",
    "exactly": b"exactly file\n",
    "a/file.txt": b"a file\n",
    "a/b/file.txt": b"a/b file\n",
    "other/file.txt": b"other root file\n",
    "static/app.css": b"body{}\n",
    "static/missing-dir/.keep": b"",
}
EXTRA = {
    "pictures/cat.png": b"\x89PNG cat",
    "pictures/sub/dog.png": b"\x89PNG dog",
    "secret.txt": b"outside every root\n",
    "imgsecret.txt": b"beside the alias\n",
    "spa/index.html": b"<app/>\n",
    "spa/assets/app.js": b"app();\n",
    "spa/about/index.html": b"about index\n",
    "second/a/file.txt": b"second root a\n",
    "second/a/b/file.txt": b"second root a/b\n",
    "list/b.txt": b"bb",
    "list/a.txt": b"a",
    "list/zdir/x": b"",
    "list/adir/x": b"",
    "list/.hidden": b"",
    "list/<script>&\"'.txt": b"evil name",
    "list/sp ace.txt": b"",
}


class Locations(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        conf = """
    error_page 404 /404.html;
    add_header X-Server s;
    location = /exact { add_header X-Loc exact; }
    location /a/ { add_header X-Loc a; }
    location /a/b/ { add_header X-Loc ab; root @TMP@/second; }
    location /img { alias @TMP@/pictures; add_header X-Loc img; }
    location /img2/ { alias @TMP@/pictures/; }
    location /spa/ {
        alias @TMP@/spa/;
        try_files $uri $uri/ /spa/index.html;
    }
    location /strict/ { try_files $uri =404; }
    location /static/ {
        expires 1h;
        add_header Cache-Control public always;
        add_header X-Always yes always;
        error_page 500 /50x.html;  # replaces the server's list: its 404s are built-in pages
    }
    location /list/ { alias @TMP@/list/; autoindex on; }
    location /list.json/ { alias @TMP@/list/; autoindex on; autoindex_format json; }
    location /status { status; }
    location /oops/ { error_page 404 =200 /page.html; }
    location /gone/ { error_page 404 =301 https://example.com/moved; }
    location /away/ { error_page 404 http://example.com/away; }
    location /loop/ { error_page 404 /loop/missing.html; }
    location /cycle/ { try_files $uri /cycle/again; }
    location /nopage/ { error_page 404 /no-such-error-page.html; }
"""
        cls.p = harness.Porter(conf, FILES, extra=EXTRA)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.p.stop()
        finally:
            cls.p.cleanup()

    def get(self, path, **kw):
        return self.p.get(path, **kw)

    def test_exact_and_prefix(self):
        r = self.get("/exact")
        self.assertEqual((r.status, r.body, r.header("X-Loc")), (200, b"exact file\n", "exact"))
        r = self.get("/exactly")
        self.assertEqual((r.status, r.header("X-Loc")), (200, None))
        r = self.get("/a/file.txt")
        self.assertEqual((r.body, r.header("X-Loc")), (b"a file\n", "a"))
        r = self.get("/a/b/../file.txt")  # normalised before matching: /a/file.txt
        self.assertEqual((r.body, r.header("X-Loc")), (b"a file\n", "a"))

    def test_root_per_location(self):
        # the longest prefix wins, with its own root
        r = self.get("/a/b/file.txt")
        self.assertEqual((r.status, r.body, r.header("X-Loc")), (200, b"second root a/b\n", "ab"))
        self.assertStatus(self.get("/a/b/"), 403)  # the directory, without an index
        self.assertStatus(self.get("/a/b/../b/nope"), 404)

    def test_alias(self):
        r = self.get("/img/cat.png")
        self.assertEqual((r.status, r.body, r.header("X-Loc")), (200, b"\x89PNG cat", "img"))
        self.assertEqual(r.header("Content-Type"), "image/png")
        self.assertEqual(self.get("/img/sub/dog.png").body, b"\x89PNG dog")
        self.assertEqual(self.get("/img2/cat.png").body, b"\x89PNG cat")
        r = self.get("/img")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "/img/")
        self.assertStatus(self.get("/img/"), 403)  # no index, no autoindex

    def test_alias_has_no_off_by_slash_traversal(self):
        # nginx with `location /img { alias /x/pictures/; }` maps /img../secret.txt to
        # /x/pictures/../secret.txt; here the location does not even match
        # here the location does not even match: the path is the root's, a file that does not
        # exist there (404, the server's error page), or above the root (400)
        for path, status in (("/img../secret.txt", 404), ("/img..%2fsecret.txt", 404),
                             ("/img../imgsecret.txt", 404), ("/imgsecret.txt", 404),
                             ("/img/../secret.txt", 404), ("/img/..%2f..%2fsecret.txt", 400),
                             ("/img2../secret.txt", 404), ("/img2/../secret.txt", 404)):
            r = self.get(path)
            self.assertEqual(r.status, status, path)
            if status == 404:
                self.assertEqual(r.body, b"custom not found\n", path)
            self.assertNotIn(b"outside", r.body, path)
            self.assertNotIn(b"beside", r.body, path)

    def test_error_page_keeps_the_status(self):
        r = self.get("/nope.html")
        self.assertStatus(r, 404)
        self.assertEqual(r.body, b"custom not found\n")
        self.assertEqual(r.header("Content-Type"), "text/html")
        r = self.get("/nope.html", method="HEAD")
        self.assertStatus(r, 404)
        self.assertEqual(r.header("Content-Length"), str(len(b"custom not found\n")))

    def test_error_page_with_a_new_status(self):
        r = self.get("/oops/missing")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"root page\n")

    def test_error_page_redirect(self):
        r = self.get("/gone/x")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "https://example.com/moved")
        r = self.get("/away/x")
        self.assertStatus(r, 302)
        self.assertEqual(r.header("Location"), "http://example.com/away")

    def test_error_page_missing_gives_the_builtin_page(self):
        r = self.get("/nopage/x")
        self.assertStatus(r, 404)
        self.assertIn(b"<center><h1>404 Not Found</h1></center>", r.body)
        r = self.get("/loop/x")  # the error page's own 404 is not redirected again
        self.assertStatus(r, 404)
        self.assertIn(b"404 Not Found", r.body)

    def test_error_page_is_not_used_for_conditionals_or_ranges(self):
        r = self.get("/nope.html", headers=[("Range", "bytes=0-3")])
        self.assertStatus(r, 404)
        self.assertEqual(r.body, b"custom not found\n")

    def test_try_files_single_page_application(self):
        r = self.get("/spa/assets/app.js")
        self.assertEqual((r.status, r.body), (200, b"app();\n"))
        for path in ("/spa/", "/spa/route/deep/link", "/spa/users/42?tab=x", "/spa/missing.js"):
            r = self.get(path)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, b"<app/>\n", path)
        # $uri/ finds a directory and its index
        r = self.get("/spa/about/")
        self.assertEqual(r.body, b"about index\n")
        r = self.get("/spa/about")
        self.assertEqual(r.body, b"about index\n")
        # many times on one connection: the misses are remembered
        with self.p.connect() as c:
            for i in range(20):
                c.send(request("GET", "/spa/route/%d" % (i % 3)))
                self.assertEqual(c.read_response().body, b"<app/>\n")

    def test_try_files_code(self):
        self.assertStatus(self.get("/strict/"), 404)
        r = self.get("/strict/x")
        self.assertStatus(r, 404)
        self.assertEqual(r.body, b"custom not found\n")  # error_page applies to =404

    def test_redirect_cycle_is_500(self):
        r = self.get("/cycle/x")
        self.assertStatus(r, 500)
        harness.wait_until(lambda: "internal redirection cycle" in self.p.output, 5,
                           lambda: "the cycle logged:\n" + self.p.output[-2000:])

    def test_add_header_and_expires(self):
        r = self.get("/page.html")
        self.assertEqual(r.header("X-Server"), "s")
        self.assertIsNone(r.header("Expires"))
        r = self.get("/static/app.css")
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("X-Server"))  # the location's add_header replaces the server's
        self.assertEqual(r.header("X-Always"), "yes")
        self.assertEqual(r.header_all("Cache-Control"), ["public", "max-age=3600"])
        expires = email.utils.parsedate_to_datetime(r.header("Expires")).timestamp()
        date = email.utils.parsedate_to_datetime(r.header("Date")).timestamp()
        self.assertEqual(expires - date, 3600)
        # 304 keeps them
        r2 = self.get("/static/app.css", headers=[("If-None-Match", r.header("ETag"))])
        self.assertStatus(r2, 304)
        self.assertEqual(r2.header("X-Always"), "yes")
        self.assertIsNotNone(r2.header("Expires"))
        # a 404: only the `always` ones, no expires (after an error_page redirect it would be
        # the headers of the error page's location, as in nginx)
        r = self.get("/static/nope.css")
        self.assertStatus(r, 404)
        self.assertEqual(r.header("X-Always"), "yes")
        self.assertEqual(r.header_all("Cache-Control"), ["public"])
        self.assertIsNone(r.header("Expires"))
        # the 301 to a directory is a 3xx: all of them
        r = self.get("/static/missing-dir")
        self.assertStatus(r, 301)
        self.assertEqual(r.header_all("Cache-Control"), ["public", "max-age=3600"])

    def test_server_add_header_on_errors(self):
        r = self.get("/nope-at-all.html")
        self.assertStatus(r, 404)
        self.assertIsNone(r.header("X-Server"))  # not `always`

    def test_autoindex_html(self):
        r = self.get("/list/")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        text = r.body.decode()
        self.assertIn("<title>Index of /list/</title>", text)
        names = re.findall(r'<a href="([^"]*)">([^<]*)</a>', text)
        self.assertEqual(names, [
            ("../", "../"), ("adir/", "adir/"), ("zdir/", "zdir/"),
            ("%3Cscript%3E%26%22%27.txt", "&lt;script&gt;&amp;&quot;&#39;.txt"),
            ("a.txt", "a.txt"), ("b.txt", "b.txt"), ("sp%20ace.txt", "sp ace.txt"),
        ])
        self.assertNotIn(".hidden", text)
        self.assertNotIn("<script>", text)
        line = [l for l in text.split("\r\n") if '"b.txt"' in l][0]
        self.assertRegex(line, r"\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d +2$")
        line = [l for l in text.split("\r\n") if '"adir/"' in l][0]
        self.assertTrue(line.endswith(" -"), line)
        # the escaped link works
        self.assertEqual(self.get("/list/%3Cscript%3E%26%22%27.txt").body, b"evil name")

    def test_autoindex_json(self):
        r = self.get("/list.json/")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Type"), "application/json; charset=utf-8")
        entries = json.loads(r.body)
        self.assertEqual([e["name"] for e in entries],
                         ["adir", "zdir", "<script>&\"'.txt", "a.txt", "b.txt", "sp ace.txt"])
        self.assertEqual(entries[0]["type"], "directory")
        self.assertNotIn("size", entries[0])
        self.assertEqual(entries[4], {"name": "b.txt", "type": "file", "size": 2,
                                      "mtime": entries[4]["mtime"]})
        email.utils.parsedate_to_datetime(entries[4]["mtime"])

    def test_autoindex_off_by_default(self):
        os.makedirs(os.path.join(self.p.htdocs, "noindex"), exist_ok=True)
        self.assertStatus(self.get("/noindex/"), 403)

    def test_status_location(self):
        r = self.get("/status")
        self.assertStatus(r, 200)
        self.assertGreater(len(r.body), 0)


class RegexLocations(PorterTestCase):
    """`location ~ RE` / `~* RE` in nginx's order: after the longest prefix, unless it is ^~,
    the first regex written that matches the decoded, normalised path."""

    def setUp(self):
        self.p = self.start_porter("""
    location ~* \\.(css|js)$ { add_header X-Loc asset; expires 1h; }
    location ^~ /raw/ { add_header X-Loc raw; }
    location ~ \\.secret$ { return 403; }
    location /plain/ { add_header X-Loc plain; }
""", {"app.css": b"body{}\n", "APP2.JS": b"js\n", "raw/app.css": b"raw css\n",
         "x.secret": b"no\n", "raw/x.secret": b"raw secret\n", "plain/a.css": b"a\n",
         "plain/a.txt": b"t\n"})

    def test_regex_after_prefix(self):
        r = self.p.get("/app.css?v=2")  # the path is matched, not the query
        self.assertEqual((r.status, r.header("X-Loc"), r.header("Cache-Control")),
                         (200, "asset", "max-age=3600"))
        self.assertEqual(self.p.get("/APP2.JS").header("X-Loc"), "asset")  # ~* ignores case
        self.assertEqual(self.p.get("/plain/a.css").header("X-Loc"), "asset")  # beats /plain/
        self.assertEqual(self.p.get("/plain/a.txt").header("X-Loc"), "plain")
        self.assertEqual(self.p.get("/x.secret").status, 403)
        self.assertEqual(self.p.get("/x%2Esecret").status, 403)  # decoded before matching

    def test_no_regex_after_a_caret_tilde_prefix(self):
        r = self.p.get("/raw/app.css")
        self.assertEqual((r.status, r.body, r.header("X-Loc")), (200, b"raw css\n", "raw"))
        self.assertEqual(self.p.get("/raw/x.secret").body, b"raw secret\n")


class AutoindexSizes(PorterTestCase):
    def test_human_sizes(self):
        files = {"d/k.bin": b"x" * 1536, "d/m.bin": b"x" * (3 * 1024 * 1024 + 1), "d/b.bin": b"x" * 1000}
        p = self.start_porter("autoindex on;\nautoindex_exact_size off;", files)
        text = p.get("/d/").body.decode()
        self.assertRegex(text, r'"b.bin">b.bin</a> .* +1000\r\n')
        self.assertRegex(text, r'"k.bin">k.bin</a> .* +2K\r\n')
        self.assertRegex(text, r'"m.bin">m.bin</a> .* +3M\r\n')


class ServerTryFiles(PorterTestCase):
    def test_server_level_try_files_is_not_inherited(self):
        files = {"index.html": b"app\n", "assets/a.js": b"a\n"}
        p = self.start_porter("try_files $uri /index.html;\nlocation /assets/ { expires max; }", files)
        self.assertEqual(p.get("/some/route").body, b"app\n")
        self.assertStatus(p.get("/assets/missing.js"), 404)
        self.assertEqual(p.get("/assets/a.js").body, b"a\n")


if __name__ == "__main__":
    harness.main()
