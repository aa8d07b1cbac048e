"""Regular expressions (PCRE2): regex locations with numbered and named captures used in
`return`, try_files and proxy_set_header; server names with regexes (and their captures),
leading and trailing wildcards chosen in nginx's order; `return 444` closing without an answer;
a pattern that backtracks without end answered 500, not a hung worker; and the conf errors
`porter -t` gives (with the place in the pattern)."""

import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request, run_porter  # noqa: E402

FILES = {"pics/cat.png": b"\x89PNG cat", "index.html": b"index\n"}


class RegexLocations(PorterTestCase):
    def test_numbered_and_named_captures(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location ~ ^/u/(\\d+)/(.*)$ { return 200 \"user=$1 rest=$2\"; }\n"
            "    location ~ ^/n/(?<id>[0-9]+)-(?<tag>[a-z]+)$ { return 200 \"id=$id tag=${tag}!\"; }\n"
            "    location ~* ^/CASE/(\\w+)$ { return 200 \"w=$1\"; }\n"
            "    location ~ ^/img/(.+)$ { try_files /pics/$1 =404; }\n"
            "    location ~ ^/redir/(.*)$ { return 301 /to/$1; }\n"
            "}\n", FILES)
        self.assertEqual(p.get("/u/42/x/y").body, b"user=42 rest=x/y")
        self.assertEqual(p.get("/n/7-abc").body, b"id=7 tag=abc!")
        self.assertEqual(p.get("/case/Word").body, b"w=Word")
        r = p.get("/img/cat.png")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["pics/cat.png"])
        self.assertStatus(p.get("/img/dog.png"), 404)
        r = p.get("/redir/a/b")
        self.assertStatus(r, 301)
        self.assertTrue(r.header("Location").endswith("/to/a/b"), r.header("Location"))
        # the capture is of the decoded, normalised path
        self.assertEqual(p.get("/u/1/a/../b%20c").body, b"user=1 rest=b c")

    def test_arguments_and_cookies(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location /v { return 200 \"[$arg_id][$is_args][$cookie_sid]\"; }\n"
            "    location /to { rewrite ^ /v$is_args$args? redirect; }\n"  # "?": no second copy
            "}\n", FILES)
        with p.connect() as c:
            c.send(request("GET", "/v?x=1&ID=7", headers={"Cookie": "a=1; sid=s3"}))
            self.assertEqual(c.read_response().body, b"[7][?][s3]")
        self.assertEqual(p.get("/v").body, b"[][][]")
        r = p.get("/to?k=v")
        self.assertStatus(r, 302)
        self.assertTrue(r.header("Location").endswith("/v?k=v"), r.header("Location"))

    def test_a_capture_that_did_not_take_part_is_empty(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location ~ ^/o/(a)?(b)$ { return 200 \"[$1][$2][$3]\"; }\n"
            "}\n", FILES)
        self.assertEqual(p.get("/o/b").body, b"[][b][]")
        self.assertEqual(p.get("/o/ab").body, b"[a][b][]")

    def test_backtracking_without_end_is_a_500(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location ~ ^/(a|aa)+$ { return 200 \"matched\"; }\n"
            "}\n", FILES)
        start = time.monotonic()
        r = p.get("/" + "a" * 60 + "b")
        self.assertStatus(r, 500)
        self.assertLess(time.monotonic() - start, 5)
        self.assertTrue(harness.wait_for(lambda: "match limit" in p.log_text(), 5), p.log_text())
        self.assertEqual(p.get("/aaaa").body, b"matched")


class Rewrite(PorterTestCase):
    def start(self):
        files = dict(FILES)
        files.update({"files/a.txt": b"file a\n", "z.txt": b"zed\n", "int/x.txt": b"inner\n"})
        return self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    rewrite ^/srv/(.*)$ /files/$1;\n"
            "    location /old/ { rewrite ^/old/(.*)$ /new/$1 permanent; }\n"
            "    location /r/ { rewrite ^/r/(.*)$ /files/$1 last; }\n"
            "    location /b/ { rewrite ^/b/(.*)$ /pics/$1 break; return 418; }\n"
            "    location /chain { rewrite ^/chain$ /y; rewrite ^/y$ /z.txt; }\n"
            "    location /qr { rewrite ^/qr$ /to?x=1 redirect; }\n"
            "    location /qd { rewrite ^/qd$ /to? redirect; }\n"
            "    location /abs { rewrite ^ https://example.test$uri; }\n"
            "    location /loop { rewrite ^ /loop last; }\n"
            "    location /int/ { internal; }\n"
            "    location /via/ { rewrite ^/via/(.*)$ /int/$1 last; }\n"
            "}\n", files)

    def test_flags(self):
        p = self.start()
        r = p.get("/old/x?a=1")
        self.assertStatus(r, 301)
        self.assertTrue(r.header("Location").endswith("/new/x?a=1"), r.header("Location"))
        self.assertEqual(p.get("/r/a.txt").body, b"file a\n")  # last: a new location
        r = p.get("/b/cat.png")  # break: this location answers, its return not reached
        self.assertStatus(r, 200)
        self.assertEqual(r.body, FILES["pics/cat.png"])
        self.assertEqual(p.get("/chain").body, b"zed\n")  # one rewrite after the other
        self.assertEqual(p.get("/srv/a.txt").body, b"file a\n")  # the server's, first

    def test_arguments(self):
        p = self.start()
        r = p.get("/qr?y=2")
        self.assertStatus(r, 302)
        self.assertTrue(r.header("Location").endswith("/to?x=1&y=2"), r.header("Location"))
        r = p.get("/qd?y=2")
        self.assertStatus(r, 302)
        self.assertTrue(r.header("Location").endswith("/to"), r.header("Location"))
        r = p.get("/abs/p")
        self.assertStatus(r, 302)
        self.assertEqual(r.header("Location"), "https://example.test/abs/p")

    def test_loop_and_internal(self):
        p = self.start()
        self.assertStatus(p.get("/loop"), 500)
        self.assertTrue(harness.wait_for(
            lambda: "rewrite or internal redirection cycle" in p.log_text(), 5), p.log_text())
        self.assertStatus(p.get("/int/x.txt"), 404)  # internal: not from outside
        self.assertEqual(p.get("/via/x.txt").body, b"inner\n")  # but from a rewrite


class ServerNames(PorterTestCase):
    def start(self):
        port, held = harness.reserve_port()
        self.addCleanup(lambda: [s.close() for s in held])
        servers = [
            ("default", "_"),
            ("leading", "*.example.com"),
            ("leading-longer", "*.a.example.com"),
            ("dot", ".example.net"),
            ("trailing", "mail.example.*"),
            ("issue", "~^(www\\.)?example\\.io$"),
            ("regex-www", "~^www\\."),
            ("exact", "www.example.com"),
            ("regex-sub", "~^(?<sub>[a-z]+)\\.example\\.org$"),
        ]
        conf = ""
        for body, names in servers:
            answer = "$sub" if body == "regex-sub" else body
            conf += ("server {\n    listen 127.0.0.1:%d%s;\n    server_name %s;\n"
                     "    return 200 \"%s\";\n}\n"
                     % (port, " default_server" if body == "default" else "", names, answer))
        return self.start_porter(conf, FILES)

    def host(self, p, name):
        with p.connect() as c:
            c.send(request("GET", "/", host=name))
            return c.read_response().body.decode()

    def test_nginx_order(self):
        p = self.start()
        cases = {
            "www.example.com": "exact",  # exact beats every wildcard and regex
            "foo.example.com": "leading",
            "x.a.example.com": "leading-longer",  # the longest leading wildcard
            "example.net": "dot",  # ".example.net": the domain itself
            "deep.sub.example.net": "dot",  # and its subdomains
            "mail.example.org": "trailing",  # a trailing wildcard beats a regex
            "www.example.org": "regex-www",
            "www.other.test": "regex-www",  # regexes in the conf's order
            "abc.example.org": "abc",  # a regex's named capture as a variable
            "example.io": "issue",
            "www.example.io": "issue",
            "WWW.Example.IO": "issue",  # names ignore case
            "wwwexample.io": "default",
            "nothing.test": "default",
        }
        for host, want in cases.items():
            self.assertEqual(self.host(p, host), want, host)


class Return444(PorterTestCase):
    def test_closes_without_an_answer(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location /drop { return 444; }\n}\n", FILES)
        with p.connect() as c:
            c.send(request("GET", "/drop"))
            closed, extra, _ = c.wait_closed(5)
            self.assertTrue(closed)
            self.assertEqual(extra, b"", "return 444 sent bytes")
        self.assertStatus(p.get("/index.html"), 200)


class ConfErrors(PorterTestCase):
    def check(self, conf):
        d = tempfile.mkdtemp(prefix="porter-regex-conf-")
        self.addCleanup(shutil.rmtree, d, True)
        os.makedirs(os.path.join(d, "htdocs"))
        path = os.path.join(d, "porter.conf")
        with open(path, "w") as f:
            f.write(conf)
        code, out, err = run_porter(["-t", "-c", path, "-p", d])
        return code, (out + err).replace(path, "porter.conf")

    def test_errors_name_the_place(self):
        cases = [
            ("server {\n    location ~ ^/(a { }\n}\n",
             "porter.conf:2:16: invalid regular expression \"^/(a\": missing closing "
             "parenthesis at offset 4"),
            ("server {\n    server_name ~^(x;\n}\n",
             "porter.conf:2:17: invalid regular expression \"^(x\" in \"server_name\": "
             "missing closing parenthesis at offset 3"),
            ("server {\n    server_name a*b.com;\n}\n",
             "porter.conf:2:17: invalid server name or wildcard \"a*b.com\""),
            ("server {\n    location ~ ^/(?<id>\\d+)$ { return 200 \"$nope\"; }\n}\n",
             "porter.conf:2:43: unknown variable \"$nope\" in \"return\""),
            ("server {\n    rewrite ^/(a /b;\n}\n",
             "porter.conf:2:13: invalid regular expression \"^/(a\" in \"rewrite\""),
            ("server {\n    rewrite ^/a /b sideways;\n}\n",
             "porter.conf:2:20: invalid parameter \"sideways\""),
            ("server {\n    internal;\n}\n",
             "porter.conf:2:5: \"internal\" directive is not allowed here"),
        ]
        for conf, want in cases:
            code, out = self.check(conf)
            self.assertEqual(code, 1, out)
            self.assertIn(want, out)

    def test_named_capture_known_after_its_regex(self):
        code, out = self.check(
            "server {\n    location ~ ^/(?<id>\\d+)$ { return 200 \"$id\"; }\n}\n")
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    harness.main()
