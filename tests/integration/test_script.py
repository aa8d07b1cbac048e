"""The rewrite module's script and the conf's own variables: `set` (values with variables,
expanded per request; a variable known everywhere, empty until set), `map` (exact keys ignoring
case, regexes with captures in the value, `default`, `hostnames` wildcards, `include`,
`volatile`; computed once per request), `if` with every kind of condition (`$var`, `=`, `!=`,
`~`, `~*`, `!~`, `!~*`, `-f`, `-d`, `-e`, `-x` and their `!`), what an `if` changes in the
answer (add_header, limit_rate, proxy_pass to an upstream block), `break`, and the order in
which a level's rewrite, return, set and if run: the one written. The variables reach every
directive that names variables: return, rewrite, try_files, proxy_set_header, log_format,
access_log's if= and a zone's key. And the conf errors `porter -t` reports at their place."""

import json
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request, run_porter  # noqa: E402
from test_proxy import Backend  # noqa: E402

FILES = {"index.html": b"index\n", "a.txt": b"file a\n", "dir/x.txt": b"x\n",
         "fallback.txt": b"fallback\n", "en/page.txt": b"english\n", "fr/page.txt": b"french\n"}


def ask(p, path, headers=None, host="localhost"):
    with p.connect() as c:
        c.send(request("GET", path, headers=headers, host=host))
        return c.read_response()


class Set(PorterTestCase):
    def test_values_are_expanded_per_request(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    set $who \"server:$arg_n\";\n"
            "    location /a { set $x \"$uri+$who\"; set $x \"[$x]\"; return 200 \"$x\"; }\n"
            "    location /b { return 200 \"x=$x who=$who\"; }\n"
            "    location /c { set $y literal; return 200 \"$y\"; }\n"
            "}\n", FILES)
        self.assertEqual(p.get("/a?n=1").body, b"[/a+server:1]")
        self.assertEqual(p.get("/a?n=2").body, b"[/a+server:2]")
        # known everywhere: set in another location, not run for this request, reads empty
        self.assertEqual(p.get("/b?n=3").body, b"x= who=server:3")
        self.assertEqual(p.get("/c").body, b"literal")

    def test_a_value_survives_a_new_location(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location /from { set $orig $uri; rewrite ^ /to last; }\n"
            "    location /to { return 200 \"orig=$orig now=$uri\"; }\n"
            "}\n", FILES)
        self.assertEqual(p.get("/from/x").body, b"orig=/from/x now=/to")

    def test_every_directive_reads_them(self):
        b = Backend()
        self.addCleanup(b.stop)
        p = self.start_porter(
            "log_format v '$request_uri lang=$lang';\n"
            "upstream app { server %s; }\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    access_log @TMP@/access.log v;\n"
            "    set $lang en;\n"
            "    if ($arg_lang) { set $lang $arg_lang; }\n"
            "    location /page { try_files /$lang$uri.txt =404; }\n"
            "    location /go { rewrite ^ /page/$lang? redirect; }\n"
            "    location /headers { proxy_set_header X-Lang $lang; proxy_pass http://app; }\n"
            "}\n" % b.address, FILES)
        self.assertEqual(p.get("/page").body, b"english\n")
        self.assertEqual(p.get("/page?lang=fr").body, b"french\n")
        self.assertStatus(p.get("/page?lang=de"), 404)
        r = p.get("/go?lang=fr")
        self.assertStatus(r, 302)
        self.assertTrue(r.header("Location").endswith("/page/fr"), r.header("Location"))
        r = p.get("/headers?lang=xx")
        h = {n.lower(): v for n, v in json.loads(r.body)["headers"]}
        self.assertEqual(h["x-lang"], "xx")
        log = os.path.join(p.tmp, "access.log")
        self.assertTrue(harness.wait_for(
            lambda: os.path.exists(log) and "/page?lang=fr lang=fr" in open(log).read(), 5))


class Map(PorterTestCase):
    def start(self, files=None, extra=None):
        return self.start_porter(
            "map $http_x_key $exact {\n"
            "    default none;\n"
            "    Alpha A;\n"
            "    \\default escaped;\n"  # the word, not the parameter
            "    ~^num-(?<n>\\d+)$ \"number $n\";\n"
            "    ~*^CASE-(\\w+)$ \"case $1\";\n"
            "    include @TMP@/more.map;\n"
            "}\n"
            "map $http_host $site {\n"
            "    hostnames;\n"
            "    default other;\n"
            "    example.com exact;\n"
            "    *.example.com sub;\n"
            "    *.deep.example.com deeper;\n"
            "    .example.net net;\n"
            "    mail.* mail;\n"
            "    ~^w(\\d)\\. \"regex $1\";\n"
            "}\n"
            "map $arg_a $chain { default \"[$exact]\"; 1 one; }\n"
            "map $uri $once { ~^/once/(.*)$ \"$1-$arg_t\"; }\n"
            "map $uri $every { volatile; ~^/(.*)$ \"$1-$arg_t\"; }\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location /exact { return 200 \"$exact\"; }\n"
            "    location /site { return 200 \"$site\"; }\n"
            "    location /chain { return 200 \"$chain\"; }\n"
            "    location /once/ { set $first $once; rewrite ^ /then?t=later last; }\n"
            "    location /then { return 200 \"$first|$once\"; }\n"
            "    location /every/ { set $first $every; rewrite ^ /again?t=later last; }\n"
            "    location /again { return 200 \"$first|$every\"; }\n"
            "}\n", files or FILES, extra={"more.map": b"included from-file;\n"})

    def key(self, p, value):
        return ask(p, "/exact", headers={"X-Key": value}).body.decode()

    def test_exact_regex_default_include(self):
        p = self.start()
        self.assertEqual(self.key(p, "alpha"), "A")  # exact keys ignore case
        self.assertEqual(self.key(p, "ALPHA"), "A")
        self.assertEqual(self.key(p, "default"), "escaped")
        self.assertEqual(self.key(p, "num-42"), "number 42")  # a named capture in the value
        self.assertEqual(self.key(p, "num-x"), "none")
        self.assertEqual(self.key(p, "case-word"), "case word")  # ~*: ignoring case
        self.assertEqual(self.key(p, "included"), "from-file")
        self.assertEqual(self.key(p, "nothing"), "none")
        self.assertEqual(p.get("/exact").body, b"none")  # no regex tried on an empty value

    def test_hostnames_order(self):
        p = self.start()
        cases = {
            "example.com": "exact",  # exact before any wildcard
            "a.example.com": "sub",
            "x.deep.example.com": "deeper",  # the longest leading wildcard
            "example.net": "net",  # ".example.net": the domain
            "a.b.example.net": "net",  # and its subdomains
            "mail.example.org": "mail",  # a trailing wildcard
            "w1.example.org": "regex 1",  # a regex after every wildcard
            "EXAMPLE.COM.": "exact",  # ignoring case and a trailing dot
            "unknown.test": "other",
        }
        for host, want in cases.items():
            self.assertEqual(ask(p, "/site", host=host).body.decode(), want, host)

    def test_a_map_reads_another(self):
        p = self.start()
        r = ask(p, "/chain", headers={"X-Key": "alpha"})
        self.assertEqual(r.body, b"[A]")
        self.assertEqual(p.get("/chain?a=1").body, b"one")

    def test_computed_once_per_request(self):
        p = self.start()
        # computed at the first read (t=first), kept after the URI and the argument changed
        self.assertEqual(p.get("/once/x?t=first").body, b"x-first|x-first")
        # volatile: computed at each read
        self.assertEqual(p.get("/every/y?t=first").body, b"every/y-first|again-later")


class If(PorterTestCase):
    def start(self):
        files = dict(FILES)
        files["tool.sh"] = b"#!/bin/sh\n"
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location /var { if ($arg_v) { return 200 \"true\"; } return 200 \"false\"; }\n"
            "    location /eq {\n"
            "        if ($request_method = POST) { return 200 \"post\"; }\n"
            "        if ($arg_v != \"\") { return 200 \"not empty\"; }\n"
            "        return 200 \"empty\";\n"
            "    }\n"
            "    location /re {\n"
            "        if ($http_user_agent ~ MSIE) { return 200 \"msie\"; }\n"
            "        if ($http_user_agent ~* ^curl/(?<ver>[0-9.]+)) { return 200 \"curl $ver\"; }\n"
            "        if ($arg_w !~ ^[a-z]+$) { return 200 \"not a word\"; }\n"
            "        if ($arg_w !~* ^WORD$) { return 200 \"a word\"; }\n"
            "        return 200 \"the word\";\n"
            "    }\n"
            "    location /cap {\n"
            "        if ($uri ~ ^/cap/(\\w+)/(\\w+)) { set $a $2; }\n"
            "        return 200 \"$a-$1\";\n"
            "    }\n"
            "    location /files/ {\n"
            "        if (-f @TMP@/htdocs/$arg_p) { return 200 \"file\"; }\n"
            "        if (-d @TMP@/htdocs/$arg_p) { return 200 \"dir\"; }\n"
            "        return 200 \"neither\";\n"
            "    }\n"
            "    location /not/ {\n"
            "        if (!-e @TMP@/htdocs/$arg_p) { return 200 \"missing\"; }\n"
            "        if (!-f @TMP@/htdocs/$arg_p) { return 200 \"not a file\"; }\n"
            "        if (!-d @TMP@/htdocs/$arg_p) { return 200 \"not a dir\"; }\n"
            "        return 200 \"?\";\n"
            "    }\n"
            "    location /exec/ {\n"
            "        if (-x @TMP@/htdocs/$arg_p) { return 200 \"executable\"; }\n"
            "        if (!-x @TMP@/htdocs/$arg_p) { return 200 \"not executable\"; }\n"
            "    }\n"
            "}\n", files)
        os.chmod(os.path.join(p.htdocs, "tool.sh"), 0o755)
        os.chmod(os.path.join(p.htdocs, "a.txt"), 0o644)
        return p

    def test_a_variable(self):
        p = self.start()
        self.assertEqual(p.get("/var?v=x").body, b"true")
        self.assertEqual(p.get("/var?v=0").body, b"false")  # "0" is false
        self.assertEqual(p.get("/var?v=").body, b"false")  # empty is false
        self.assertEqual(p.get("/var?v=00").body, b"true")

    def test_comparisons(self):
        p = self.start()
        self.assertEqual(p.get("/eq", method="POST").body, b"post")
        self.assertEqual(p.get("/eq?v=1").body, b"not empty")
        self.assertEqual(p.get("/eq").body, b"empty")

    def test_regexes(self):
        p = self.start()
        ua = lambda v: ask(p, "/re?w=word", headers={"User-Agent": v}).body  # noqa: E731
        self.assertEqual(ua("Mozilla/4.0 (compatible; MSIE 6.0)"), b"msie")
        self.assertEqual(ua("msie"), b"the word")  # ~ is case-sensitive
        self.assertEqual(ua("CURL/8.5.0"), b"curl 8.5.0")  # ~*: a named capture
        self.assertEqual(p.get("/re?w=a1").body, b"not a word")
        self.assertEqual(p.get("/re?w=other").body, b"a word")
        self.assertEqual(p.get("/re?w=word").body, b"the word")
        # the groups are $1.. in the block and after it
        self.assertEqual(p.get("/cap/one/two").body, b"two-one")
        self.assertEqual(p.get("/cap").body, b"-")

    def test_files(self):
        p = self.start()
        self.assertEqual(p.get("/files/?p=a.txt").body, b"file")
        self.assertEqual(p.get("/files/?p=dir").body, b"dir")
        self.assertEqual(p.get("/files/?p=nothing").body, b"neither")
        self.assertEqual(p.get("/not/?p=nothing").body, b"missing")
        self.assertEqual(p.get("/not/?p=dir").body, b"not a file")
        self.assertEqual(p.get("/not/?p=a.txt").body, b"not a dir")
        self.assertEqual(p.get("/exec/?p=tool.sh").body, b"executable")
        self.assertEqual(p.get("/exec/?p=a.txt").body, b"not executable")
        self.assertEqual(p.get("/exec/?p=nothing").body, b"not executable")

    def test_what_a_block_changes(self):
        b = Backend()
        self.addCleanup(b.stop)
        p = self.start_porter(
            "log_format rate '$request_uri $limit_rate';\n"
            "upstream app { server %s; }\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    access_log @TMP@/access.log rate;\n"
            "    location / {\n"
            "        add_header X-Loc loc;\n"
            "        try_files $uri /fallback.txt;\n"
            "        if ($arg_h) { add_header X-If yes always; }\n"
            "        if ($arg_deny) { add_header X-Denied yes always; return 403; }\n"
            "        if ($arg_slow) { limit_rate 100k; }\n"
            "        if ($arg_up) { proxy_pass http://app; }\n"
            "        if ($arg_move) { add_header X-If moved; rewrite ^ /plain/a.txt last; }\n"
            "    }\n"
            "    location /plain/ { alias htdocs/; }\n"
            "}\n" % b.address, FILES)
        r = p.get("/a.txt")
        self.assertEqual((r.body, r.header("X-Loc"), r.header("X-If")), (b"file a\n", "loc", None))
        # the block's lines replace the location's (nginx's if); try_files still applies
        r = p.get("/a.txt?h=1")
        self.assertEqual((r.body, r.header("X-Loc"), r.header("X-If")), (b"file a\n", None, "yes"))
        r = p.get("/missing?h=1")  # the fallback runs the location's script again
        self.assertEqual((r.body, r.header("X-Loc"), r.header("X-If")),
                         (b"fallback\n", None, "yes"))
        r = p.get("/x?move=1")  # another location answers: the block's lines are not its
        self.assertEqual((r.body, r.header("X-If")), (b"file a\n", None))
        r = p.get("/a.txt?deny=1")
        self.assertStatus(r, 403)
        self.assertEqual(r.header("X-Denied"), "yes")
        r = p.get("/a.txt?up=1")
        self.assertEqual(r.body, b"ok /a.txt?up=1")  # proxied, the request's URI as sent
        self.assertEqual(len(b.requests), 1)
        p.get("/a.txt?slow=1")
        p.get("/a.txt?plain=1")
        log = os.path.join(p.tmp, "access.log")
        self.assertTrue(harness.wait_for(
            lambda: "/a.txt?plain=1 0" in open(log).read(), 5), open(log).read())
        self.assertIn("/a.txt?slow=1 102400", open(log).read())

    def test_a_rate_in_a_block_holds_the_answer_back(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location / { if ($arg_slow) { limit_rate 64k; } }\n"
            "}\n", {"big.bin": os.urandom(192 * 1024)})
        start = time.monotonic()
        r = p.get("/big.bin?slow=1")
        self.assertEqual(len(r.body), 192 * 1024)
        self.assertGreater(time.monotonic() - start, 1.5)  # 3 s at 64k/s, less a first burst


class Order(PorterTestCase):
    def test_the_order_written(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            # a server's return before its rewrite: the rewrite is not reached
            "    if ($arg_early) { return 200 \"early\"; }\n"
            "    rewrite ^/srv/(.*)$ /$1;\n"
            "    location /ret { return 200 \"first\"; rewrite ^ /a.txt last; }\n"
            "    location /rw { rewrite ^ /a.txt last; return 200 \"not reached\"; }\n"
            "    location /set { set $v one; return 200 \"$v\"; set $v two; }\n"
            "    location /seq { set $v one; if ($v = one) { set $v two; } set $v \"$v+\";\n"
            "        return 200 \"$v\"; }\n"
            "    location /brk { set $v one; break; set $v two; }\n"
            "    location /brk2 { if ($arg_b) { break; } return 200 \"no break\"; }\n"
            "    location /rwbrk { rewrite ^ /a.txt; break; return 200 \"not reached\"; }\n"
            "}\n", FILES)
        self.assertEqual(p.get("/srv/a.txt?early=1").body, b"early")
        self.assertEqual(p.get("/srv/a.txt").body, b"file a\n")
        self.assertEqual(p.get("/ret").body, b"first")
        self.assertEqual(p.get("/rw").body, b"file a\n")
        self.assertEqual(p.get("/set").body, b"one")
        self.assertEqual(p.get("/seq").body, b"two+")
        # break: the script ends, the location's files answer
        self.assertStatus(p.get("/brk"), 404)
        self.assertStatus(p.get("/brk2?b=1"), 404)
        self.assertEqual(p.get("/brk2").body, b"no break")
        # break after a rewrite: this location answers the new URI
        self.assertEqual(p.get("/rwbrk").body, b"file a\n")

    def test_rewrites_in_a_block_count_toward_the_loop(self):
        p = self.start_porter(
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location /loop { if ($uri) { rewrite ^ /loop last; } }\n"
            "}\n", FILES)
        self.assertStatus(p.get("/loop"), 500)
        self.assertTrue(harness.wait_for(
            lambda: "rewrite or internal redirection cycle" in p.log_text(), 5), p.log_text())


class ZoneKey(PorterTestCase):
    def test_a_map_as_a_zone_key(self):
        p = self.start_porter(
            "map $http_x_tenant $tenant { default \"\"; ~^(?<t>[a-z]+)$ $t; }\n"
            "limit_req_zone $tenant zone=t:1m rate=1r/m;\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
            "    location / { limit_req zone=t; }\n"
            "}\n", FILES)
        h = {"X-Tenant": "acme"}
        self.assertStatus(ask(p, "/a.txt", headers=h), 200)
        self.assertStatus(ask(p, "/a.txt", headers=h), 503)  # the tenant's one a minute
        self.assertStatus(ask(p, "/a.txt", headers={"X-Tenant": "other"}), 200)
        # an empty key is not counted (nginx's rule)
        for _ in range(3):
            self.assertStatus(p.get("/a.txt"), 200)


class ConfErrors(PorterTestCase):
    def check(self, conf):
        d = tempfile.mkdtemp(prefix="porter-script-conf-")
        self.addCleanup(shutil.rmtree, d, True)
        os.makedirs(os.path.join(d, "htdocs"))
        path = os.path.join(d, "porter.conf")
        with open(path, "w") as f:
            f.write(conf)
        code, out, err = run_porter(["-t", "-c", path, "-p", d])
        return code, (out + err).replace(path, "porter.conf")

    def test_errors_name_the_place(self):
        cases = [
            ("server {\n    location / { return 200 \"$nope\"; }\n}\n",
             "porter.conf:2:29: unknown variable \"$nope\" in \"return\""),
            ("server {\n    set $a \"$nope\";\n}\n",
             "porter.conf:2:12: unknown variable \"$nope\" in \"set\""),
            ("server {\n    set $uri /x;\n}\n",
             "porter.conf:2:9: the variable \"$uri\" is porter's own: \"set\" cannot change it"),
            ("map $host $http_x { default 1; }\nserver { }\n",
             "porter.conf:1:11: the variable \"$http_x\" is porter's own: \"map\" cannot "
             "change it"),
            ("server {\n    location / {\n        if ($a) { try_files $uri =404; }\n"
             "    }\n    set $a 1;\n}\n",
             "porter.conf:3:19: \"try_files\" directive is not allowed inside \"if\""),
            ("server {\n    if ($host) { add_header X 1; }\n}\n",
             "porter.conf:2:18: \"add_header\" directive is not allowed inside \"if\""),
            ("server {\n    if ($host) { if ($uri) { } }\n}\n",
             "porter.conf:2:18: \"if\" directive is not allowed inside \"if\""),
            ("server {\n    if ($host == x) { }\n}\n",
             "porter.conf:2:15: unexpected \"==\" in condition"),
            ("server {\n    if $host { }\n}\n",
             "porter.conf:2:8: invalid condition \"$host\": it starts with \"(\""),
            ("server {\n    if (-q /x) { }\n}\n",
             "porter.conf:2:8: invalid condition \"-q\""),
            ("server {\n    if (-f x.txt) { }\n}\n",
             "porter.conf:2:12: the path \"x.txt\" in \"if\" is relative"),
            ("server {\n    if ($host ~ ^(x) { }\n}\n",
             "porter.conf:2:17: invalid regular expression \"^(x\" in \"if\""),
            ("server {\n    if ($nope) { }\n}\n",
             "porter.conf:2:8: unknown variable \"$nope\" in \"if\""),
            ("upstream app { server 127.0.0.1:9; }\nserver {\n    location / {\n"
             "        if ($host) { proxy_pass http://127.0.0.1:9; }\n    }\n}\n",
             "porter.conf:4:33: \"proxy_pass\" inside \"if\" names an upstream block"),
            ("map $host $m {\n    default 1;\n    default 2;\n}\nserver { }\n",
             "porter.conf:3:5: duplicate default map parameter"),
            ("map $host $m {\n    a 1;\n    A 2;\n}\nserver { }\n",
             "porter.conf:3:5: conflicting parameter \"A\" in \"map\""),
            ("map $host $m {\n    a 1;\n    hostnames;\n}\nserver { }\n",
             "porter.conf:3:5: \"hostnames\" stands before the entries of \"map\""),
            ("map $host $m {\n    hostnames;\n    a*b 1;\n}\nserver { }\n",
             "porter.conf:3:5: invalid hostname or wildcard \"a*b\" in \"map\""),
            ("map $host $m {\n    a 1 2;\n}\nserver { }\n",
             "porter.conf:2:5: invalid number of the map parameters"),
            ("map $host $m { default 1; }\nmap $uri $m { default 2; }\nserver { }\n",
             "porter.conf:2:10: the variable \"$m\" has a map already (porter.conf:1)"),
            ("map $host $m { ~^(?<x>a)$ $y; }\nserver { }\n",
             "porter.conf:1:27: unknown variable \"$y\" in \"map\""),
            ("server {\n    set $id 1;\n    location ~ ^/(?<id>\\d+)$ { }\n}\n",
             "porter.conf:2:9: the variable \"$id\" is also a named group of a regular "
             "expression"),
        ]
        for conf, want in cases:
            code, out = self.check(conf)
            self.assertEqual(code, 1, conf + out)
            self.assertIn(want, out, conf)

    def test_a_variable_is_known_before_its_set(self):
        code, out = self.check(
            "log_format v '$later $mapped';\n"
            "server {\n    access_log stderr v;\n"
            "    location / { return 200 \"$later $mapped\"; }\n"
            "    location /s { set $later 1; }\n}\n"
            "map $uri $mapped { default x; }\n")
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    harness.main()
