"""The location tree and what names files: nested locations in nginx's order (its documented
example answered for real, a nested location's regexes before the outer level's, `^~` stopping
its own level only), what a nested location inherits, nginx's conf errors for misplaced ones;
$document_root, $realpath_root and $request_filename in the directives that take variables;
error_page with variables and captures, and named locations as targets; regex_match_limit."""

import json
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request, run_porter  # noqa: E402
import test_log_format  # noqa: E402
import test_proxy  # noqa: E402

SERVER = "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n%s}\n"


def check_conf(test, conf, extra_dirs=()):
    """`porter -t` on `conf` (in a temporary directory with htdocs/ and `extra_dirs`): its exit
    code and output, the conf's path written porter.conf."""
    d = tempfile.mkdtemp(prefix="porter-tree-conf-")
    test.addCleanup(shutil.rmtree, d, True)
    for sub in ("htdocs",) + tuple(extra_dirs):
        os.makedirs(os.path.join(d, sub))
    path = os.path.join(d, "porter.conf")
    with open(path, "w") as f:
        f.write(conf)
    code, out, err = run_porter(["-t", "-c", path, "-p", d])
    return code, (out + err).replace(path, "porter.conf")


class DocumentedOrder(PorterTestCase):
    """nginx's documentation of `location`: its example, its requests and the configuration
    each one gets."""

    def test_nginx_example(self):
        p = self.start_porter(SERVER % (
            "    location = / { return 200 A; }\n"
            "    location / { return 200 B; }\n"
            "    location /documents/ { return 200 C; }\n"
            "    location ^~ /images/ { return 200 D; }\n"
            "    location ~* \\.(gif|jpg|jpeg)$ { return 200 E; }\n"))
        for path, want in [("/", b"A"), ("/index.html", b"B"), ("/documents/document.html", b"C"),
                           ("/images/1.gif", b"D"), ("/documents/1.jpg", b"E"),
                           ("/documents/1.JPG", b"E"), ("/documents/x.txt", b"C")]:
            r = p.get(path)
            self.assertStatus(r, 200)
            self.assertEqual(r.body, want, path)


FILES = {
    "index.html": b"root index\n",
    "a/page.html": b"a page\n",
    "a/b/page.html": b"a/b page\n",
    "a/x.php": b"php source\n",
    "hidden/in/page.html": b"hidden page\n",
}
EXTRA = {
    "pics/cat.png": b"\x89PNG cat",
    "pics/sub/dog.png": b"\x89PNG dog",
    "pics/home.html": b"pics home\n",
    "other/sub2/x.html": b"other root\n",
    "secret.dat": b"beside the alias\n",
}


class Nested(PorterTestCase):
    def start(self):
        return self.start_porter(SERVER % (
            "    location /a/ {\n"
            "        location /a/b/ { add_header X-Level ab; }\n"
            "        location ~ \\.php$ { return 200 \"nested php $1\"; }\n"
            "        location ^~ /a/s/ { return 200 \"a/s\"; }\n"
            "        location = /a/e { return 200 \"exact inside\"; }\n"
            "        add_header X-Level a;\n"  # after the blocks: inherited all the same
            "    }\n"
            "    location ~ \\.(php|txt)$ { return 200 \"outer regex\"; }\n"
            "    location ^~ /n/ {\n"
            "        return 200 n;\n"
            "        location ~ \\.txt$ { return 200 \"n txt\"; }\n"
            "    }\n"
            "    location ~ ^/u/(\\d+)/ {\n"
            "        return 200 \"user $1\";\n"
            "        location ~ \\.json$ { return 200 \"user $1 as json\"; }\n"
            "        location ~ ^/u/\\d+/(\\w+)$ { return 200 \"user word $1\"; }\n"
            "    }\n"
            "    location /img/ {\n"
            "        alias @TMP@/pics/;\n"
            "        index home.html;\n"
            "        expires 1h;\n"
            "        location /img/sub/ { add_header X-Sub yes; }\n"
            "        location /img/sub2/ { root @TMP@/other; rewrite ^/img/(.*)$ /$1 break; }\n"
            "    }\n"
            "    location /pic {\n"
            "        alias @TMP@/pics;\n"
            "        location /pic/sub/ { }\n"
            "        location /pic.. { }\n"
            "    }\n"
            "    location /hidden/ {\n"
            "        internal;\n"
            "        location /hidden/in/ { }\n"
            "    }\n"
            "    location /via/ { rewrite ^/via/(.*)$ /hidden/$1 last; }\n"), FILES, extra=EXTRA)

    def test_order(self):
        p = self.start()
        cases = [
            ("/a/page.html", 200, b"a page\n", "a"),
            ("/a/b/page.html", 200, b"a/b page\n", "ab"),
            ("/a/x.php", 200, b"nested php ", "a"),  # a nested regex before the outer one
            ("/a/b/x.php", 200, b"nested php ", "a"),  # /a/b/ holds none: /a/'s next
            ("/a/x.txt", 200, b"outer regex", None),  # no nested regex matches
            ("/a/s/x.html", 200, b"a/s", "a"),
            ("/a/s/x.php", 200, b"outer regex", None),  # a nested ^~ stops /a/'s only
            ("/a/e", 200, b"exact inside", "a"),
            ("/n/x.txt", 200, b"n txt", None),  # regexes inside a ^~ location are tried
            ("/n/x.php", 200, b"n", None),  # the outer level's are not
            ("/index.html", 200, b"root index\n", None),
        ]
        for path, status, body, level in cases:
            r = p.get(path)
            self.assertStatus(r, status)
            self.assertEqual(r.body, body, path)
            self.assertEqual(r.header("X-Level"), level, path)

    def test_captures_of_nested_regexes(self):
        p = self.start()
        self.assertEqual(p.get("/u/7/").body, b"user 7")
        # a nested pattern without groups keeps its holder's $1, as in nginx
        self.assertEqual(p.get("/u/7/a.json").body, b"user 7 as json")
        self.assertEqual(p.get("/u/7/abc").body, b"user word abc")

    def test_inherited_alias_and_settings(self):
        p = self.start()
        r = p.get("/img/sub/dog.png")  # alias of /img/, replacing /img/
        self.assertStatus(r, 200)
        self.assertEqual(r.body, EXTRA["pics/sub/dog.png"])
        self.assertEqual(r.header("X-Sub"), "yes")
        self.assertIn("max-age=3600", r.header("Cache-Control", ""))  # expires of /img/
        r = p.get("/img/sub/")
        self.assertStatus(r, 403)  # index home.html is inherited, pics/sub/ has none
        self.assertEqual(p.get("/img/").body, EXTRA["pics/home.html"])
        # a root of its own replaces the alias inherited
        r = p.get("/img/sub2/x.html")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, EXTRA["other/sub2/x.html"])
        self.assertEqual(p.get("/pic/sub/dog.png").body, EXTRA["pics/sub/dog.png"])
        # off-by-slash: an inherited alias still replaces whole segments only
        r = p.get("/pic../secret.dat")
        self.assertStatus(r, 404)
        self.assertNotEqual(r.body, EXTRA["secret.dat"])

    def test_internal_is_inherited(self):
        p = self.start()
        self.assertStatus(p.get("/hidden/in/page.html"), 404)
        r = p.get("/via/in/page.html")  # by a rewrite: internal
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["hidden/in/page.html"])


class NestingErrors(PorterTestCase):
    def test_nginx_errors_with_their_place(self):
        cases = [
            ("server {\n    location = /a {\n        location /a/b { }\n    }\n}\n",
             "porter.conf:3:18: location \"/a/b\" cannot be inside the exact location \"/a\""),
            ("server {\n    location @a {\n        location /b { }\n    }\n}\n",
             "porter.conf:3:18: location \"/b\" cannot be inside the named location \"@a\""),
            ("server {\n    location /a/ {\n        location @b { }\n    }\n}\n",
             "porter.conf:3:18: named location \"@b\" can be on the server level only"),
            ("server {\n    location /a/ {\n        location /b/ { }\n    }\n}\n",
             "porter.conf:3:18: location \"/b/\" is outside location \"/a/\""),
            ("server {\n    location ~ ^/r/ {\n        location /r/x { }\n    }\n}\n",
             "porter.conf:3:18: location \"/r/x\" is outside location \"^/r/\""),
            ("server {\n    location /a/ {\n        location ~ x { }\n"
             "        location ~ x { }\n    }\n}\n",
             "porter.conf:4:20: duplicate location \"x\""),
        ]
        for conf, want in cases:
            code, out = check_conf(self, conf)
            self.assertEqual(code, 1, out)
            self.assertIn(want, out)

    def test_a_nested_regex_location_and_the_same_pattern_outside(self):
        code, out = check_conf(self, "server {\n    location ~ x { }\n"
                                     "    location /a/ {\n        location ~ x { }\n    }\n}\n")
        self.assertEqual(code, 0, out)


class FileVariables(PorterTestCase):
    def test_in_return_and_rewrite(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location /fv/ { return 200 \"[$document_root][$request_filename]\"; }\n"
            "    location /al/ {\n        alias @TMP@/pics/;\n"
            "        return 200 \"[$document_root][$request_filename]\";\n    }\n"
            "    location /rw/ { rewrite ^ /show?f=$request_filename? redirect; }\n"
            "    location /to/ { return 302 /where?root=$document_root; }\n"
            "}\n", FILES, extra=EXTRA)
        root = p.htdocs
        pics = os.path.join(p.tmp, "pics")
        self.assertEqual(p.get("/fv/a%20b").body.decode(), "[%s][%s/fv/a b]" % (root, root))
        self.assertEqual(p.get("/al/sub/dog.png").body.decode(),
                         "[%s][%s/sub/dog.png]" % (pics, pics))
        self.assertEqual(p.get("/al/").body.decode(), "[%s][%s/]" % (pics, pics))
        r = p.get("/rw/x")
        self.assertStatus(r, 302)
        self.assertTrue(r.header("Location").endswith("/show?f=%s/rw/x" % root),
                        r.header("Location"))
        r = p.get("/to/")
        self.assertStatus(r, 302)
        self.assertTrue(r.header("Location").endswith("/where?root=%s" % root),
                        r.header("Location"))

    def test_realpath_root_resolves_symbolic_links(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root @TMP@/link/site;\n"
            "    location / { return 200 \"$realpath_root|$document_root\"; }\n}\n",
            extra={"real/site/.keep": b""}, start=False)
        os.symlink(os.path.join(p.tmp, "real"), os.path.join(p.tmp, "link"))
        p.start()
        real = os.path.join(os.path.realpath(p.tmp), "real", "site")
        self.assertEqual(p.get("/x").body.decode(),
                         "%s|%s" % (real, os.path.join(p.tmp, "link", "site")))

    def test_in_a_log_line(self):
        p = self.start_porter(
            "log_format files '$document_root $request_filename $realpath_root';\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    access_log @TMP@/files.log files;\n"
            "    location /img/ { alias @TMP@/pics/; }\n}\n", FILES, extra=EXTRA)
        self.assertStatus(p.get("/img/cat.png"), 200)
        self.assertStatus(p.get("/a/page.html"), 200)
        lines = test_log_format.wait_lines(os.path.join(p.tmp, "files.log"), 2)
        pics = os.path.join(p.tmp, "pics")
        self.assertEqual(lines[0], "%s %s/cat.png %s" % (pics, pics, os.path.realpath(pics)))
        root = os.path.join(p.tmp, "htdocs")
        self.assertEqual(lines[1], "%s %s/a/page.html %s" % (root, root, os.path.realpath(root)))

    def test_in_proxy_set_header(self):
        b = test_proxy.Backend()
        self.addCleanup(b.stop)
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location /headers/ {\n"
            "        proxy_set_header X-File $request_filename;\n"
            "        proxy_set_header X-Root $document_root;\n"
            "        proxy_pass http://%s;\n    }\n}\n" % b.address, FILES)
        r = p.get("/headers/q")
        self.assertStatus(r, 200)
        seen = dict(json.loads(r.body)["headers"])
        root = os.path.join(p.tmp, "htdocs")
        self.assertEqual(seen["X-File"], root + "/headers/q")
        self.assertEqual(seen["X-Root"], root)

    def test_every_user_that_names_files_takes_them(self):
        code, out = check_conf(self, SERVER % (
            "    location /a/ { try_files $uri /x$request_filename =404; }\n"
            "    location /b/ { rewrite ^ /c?d=$document_root&r=$realpath_root; }\n"
            "    location /c/ { proxy_set_header X-F $request_filename; "
            "proxy_pass http://127.0.0.1:1; }\n"
            "    location /d/ { return 200 \"$request_filename\"; }\n"))
        self.assertEqual(code, 0, out)
        code, out = check_conf(self, "limit_req_zone $request_filename zone=z:1m rate=1r/s;\n" +
                               SERVER % "")
        self.assertEqual(code, 1, out)
        self.assertIn("unknown variable \"$request_filename\"", out)


class ErrorPages(PorterTestCase):
    """error_page with variables and captures in its URI, and named locations as the targets of
    try_files and error_page."""

    def start(self):
        return self.start_porter(SERVER % (
            "    location ~ ^/docs/(\\w+)$ { error_page 404 /errors/$1.html; }\n"
            "    location ~ ^/id/(?<name>\\w+)$ { error_page 404 /errors/${name}.html?from=$uri; }\n"
            "    location /moved/ { error_page 404 =301 https://$host/new$uri; }\n"
            "    location /scheme/ { error_page 404 $scheme://$host/s/; }\n"
            "    location /app/ { try_files $uri @fallback; }\n"
            "    location /e/ { error_page 404 @fallback; }\n"
            "    location /e2/ { error_page 404 =200 @fallback; }\n"
            "    location @fallback { return 200 \"fallback for $uri\"; }\n"
            "    location /errors/ { internal; }\n"), {
                "errors/intro.html": b"intro is missing\n",
                "errors/q.html": b"q is missing\n",
                "app/here.txt": b"here\n",
            })

    def test_captures_in_the_uri(self):
        p = self.start()
        r = p.get("/docs/intro")
        self.assertStatus(r, 404)  # the code is kept
        self.assertEqual(r.body, b"intro is missing\n")
        r = p.get("/id/q")
        self.assertStatus(r, 404)
        self.assertEqual(r.body, b"q is missing\n")
        r = p.get("/docs/other")  # its error page is missing too: the built-in one
        self.assertStatus(r, 404)
        self.assertIn(b"404 Not Found", r.body)

    def test_variables_in_a_redirect(self):
        p = self.start()
        r = p.get("/moved/a%20b")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "https://localhost/new/moved/a%20b")
        r = p.get("/scheme/x")
        self.assertStatus(r, 302)
        self.assertEqual(r.header("Location"), "http://localhost/s/")

    def test_named_locations_as_targets(self):
        p = self.start()
        self.assertEqual(p.get("/app/here.txt").body, b"here\n")
        r = p.get("/app/nothing")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"fallback for /app/nothing")
        r = p.get("/e/nothing")
        self.assertStatus(r, 404)  # error_page keeps the code without "="
        self.assertEqual(r.body, b"fallback for /e/nothing")
        r = p.get("/e2/nothing")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"fallback for /e2/nothing")

    def test_conf_errors(self):
        for conf, want in [
            (SERVER % "    error_page 404 /$nope;\n",
             "porter.conf:4:20: unknown variable \"$nope\" in \"error_page\""),
            (SERVER % "    error_page 404 @x$1;\n    location @x { }\n",
             "porter.conf:4:20: invalid named location \"@x$1\""),
        ]:
            code, out = check_conf(self, conf)
            self.assertEqual(code, 1, out)
            self.assertIn(want, out)


class RegexMatchLimit(PorterTestCase):
    """regex_match_limit: PCRE2's match limit of a level's regexes (a location's own pattern and
    rewrites take the location's). `^/(a|aa)+$` against 20 a's and a b needs some 28000 steps of
    PCRE2's before it fails: within the default, beyond 1000."""

    def start(self):
        return self.start_porter(
            "regex_match_limit 1000;\n" + SERVER % (
                "    location / { return 200 prefix; }\n"
                "    location ~ ^/(a|aa)+$ { return 200 matched; }\n"
                "    location ~ ^/big/(a|aa)+$ { regex_match_limit 1000000; return 200 big; }\n"
                "    location /rw/ { rewrite ^/rw/(a|aa)+$ /x; return 200 rw; }\n"
                "    location /rwbig/ {\n        regex_match_limit 1000000;\n"
                "        rewrite ^/rwbig/(a|aa)+$ /x;\n        return 200 rwbig;\n    }\n"
                "    location /nest/ {\n        regex_match_limit 1000000;\n"
                "        return 200 nest;\n"
                "        location ~ ^/nest/(a|aa)+$ { return 200 \"nest matched\"; }\n    }\n"))

    def test_a_small_limit_answers_500_and_a_larger_one_lets_it_pass(self):
        p = self.start()
        moderate = "a" * 20 + "b"
        r = p.get("/" + moderate)
        self.assertStatus(r, 500)
        self.assertTrue(harness.wait_for(
            lambda: "location \"^/(a|aa)+$\": the regex match limit was hit" in p.log_text(), 5),
            p.log_text())
        self.assertEqual(p.get("/aaaa").body, b"matched")  # little work: within 1000
        self.assertEqual(p.get("/big/" + moderate).body, b"prefix")  # its own, larger limit
        self.assertEqual(p.get("/big/aaaa").body, b"big")
        self.assertStatus(p.get("/rw/" + moderate), 500)
        self.assertTrue(harness.wait_for(
            lambda: "rewrite \"^/rw/(a|aa)+$\": the regex match limit was hit" in p.log_text(), 5),
            p.log_text())
        self.assertEqual(p.get("/rwbig/" + moderate).body, b"rwbig")
        # a nested regex location takes the limit of the location holding it
        self.assertEqual(p.get("/nest/" + moderate).body, b"nest")
        self.assertEqual(p.get("/nest/aaaa").body, b"nest matched")

    def test_the_default_lets_it_pass(self):
        p = self.start_porter(SERVER % (
            "    location / { return 200 prefix; }\n"
            "    location ~ ^/(a|aa)+$ { return 200 matched; }\n"))
        self.assertEqual(p.get("/" + "a" * 20 + "b").body, b"prefix")
        self.assertEqual(p.get("/aaaa").body, b"matched")

    def test_a_server_name_regex_takes_its_servers(self):
        port = self.reserve_port()
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:%d default_server;\n    return 200 default;\n}\n"
            "server {\n    listen 127.0.0.1:%d;\n    regex_match_limit 1000;\n"
            "    server_name ~^(a|aa)+$;\n    return 200 named;\n}\n"
            "server {\n    listen 127.0.0.1:%d;\n    server_name ~^(b|bb)+$;\n"
            "    return 200 \"named b\";\n}\n" % (port, port, port))
        for host, want in [("aaaa", b"named"), ("a" * 20 + "x", b"default"),
                           ("b" * 20 + "x", b"default"), ("bbbb", b"named b")]:
            with p.connect() as c:
                c.send(request("GET", "/", host=host))
                self.assertEqual(c.read_response().body, want, host)
        # the host's regex gave up within its server's limit; the other's default is larger
        self.assertTrue(harness.wait_for(
            lambda: "server_name \"~^(a|aa)+$\": the regex match limit was hit" in p.log_text(),
            5), p.log_text())
        self.assertNotIn("(b|bb)", p.log_text())

    def test_conf_errors(self):
        for value in ("0", "-1", "4294967296", "many"):
            code, out = check_conf(self, SERVER % ("    regex_match_limit %s;\n" % value))
            self.assertEqual(code, 1, out)
            self.assertIn("porter.conf:4:23: invalid value \"%s\" in \"regex_match_limit\", it "
                          "must be 1..4294967295" % value, out)


if __name__ == "__main__":
    harness.main()
