"""The command line and the configuration file: -t, error messages with FILE:LINE:COL, start-up
failures, -h and -V."""

import sys
import os
import re
import shutil
import socket
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, run_porter


class ConfFiles(PorterTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="porter-itest-conf-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.makedirs(os.path.join(self.dir, "htdocs"))

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, *args):
        code, out, err = run_porter(list(args), cwd=self.dir)
        harness.assert_clean_output(out + err)
        return code, out, err

    def assertConfError(self, name, text, line, col=None, files=None, what=None):
        for n, t in (files or {}).items():
            self.write(n, t)
        path = self.write(name, text)
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1, "exit code for a bad conf; stderr:\n" + err)
        pat = r"%s:%d:%s: " % (re.escape(path if what is None else what), line, col if col else r"\d+")
        self.assertRegex(err, pat, "no FILE:LINE:COL: location")
        self.assertNotIn("test is successful", err)
        return err

    def test_good_conf(self):
        path = self.write("good.conf", "error_log stderr info;\nserver {\n    listen 127.0.0.1:0;\n"
                          "    root htdocs;\n    keepalive_timeout 5s;\n    max_request_body_length 1m;\n}\n")
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 0, err)
        self.assertIn("test is successful", err + out)

    def test_shipped_conf_is_valid(self):
        src = harness.SOURCE_DIR
        conf = os.path.join(src, "conf", "porter.conf")
        if not os.path.exists(conf):
            self.skipTest("no conf/porter.conf")
        code, out, err = self.check("-t", "-c", conf, "-p", src)
        self.assertEqual(code, 0, err)
        self.assertIn("test is successful", err + out)

    def test_unknown_directive(self):
        err = self.assertConfError("bad.conf", "server {\n    listen 127.0.0.1:0;\n    bogus_directive 1;\n}\n",
                                   3, 5)
        self.assertIn("bogus_directive", err)

    def test_bad_size(self):
        err = self.assertConfError("bad.conf", "server {\n    listen 127.0.0.1:0;\n}\n"
                                   "max_request_body_length 12q;\n", 4)
        self.assertIn("12q", err)

    def test_bad_time(self):
        self.assertConfError("bad.conf", "server {\n    listen 127.0.0.1:0;\n"
                             "    keepalive_timeout soon;\n}\n", 3)

    def test_missing_semicolon_at_end_of_file(self):
        self.assertConfError("bad.conf", "server {\n    listen 127.0.0.1:0;\n}\nworker_processes 1", 4)

    def test_unclosed_block(self):
        self.assertConfError("bad.conf", "server {\n    listen 127.0.0.1:0;\n", 3)

    def test_error_in_included_file(self):
        self.write("conf.d/extra.conf", "# an included file\nsendfile on;\n    unknown_in_include yes;\n")
        path = self.write("main.conf", "server {\n    listen 127.0.0.1:0;\n    include conf.d/extra.conf;\n}\n")
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1, err)
        self.assertRegex(err, r"extra\.conf:3:5: ")
        self.assertIn("unknown_in_include", err)
        self.assertNotRegex(err, r"main\.conf:\d+:\d+: ")

    def test_include_cycle(self):
        self.write("a.conf", "include b.conf;\n")
        self.write("b.conf", "include a.conf;\n")
        path = self.write("main.conf", "include a.conf;\nserver { listen 127.0.0.1:0; }\n")
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1, err)
        self.assertRegex(err, r"\.conf:\d+:\d+: ")

    def test_invalid_regex_location(self):
        err = self.assertConfError("bad.conf", "server {\n    listen 127.0.0.1:0;\n"
                                   "    location ~ \"(\" {\n    }\n}\n", 3, 16)
        self.assertIn("invalid regular expression \"(\"", err)

    def test_location_with_a_missing_alias(self):
        # the error names the alias directive, at the start and with -t
        err = self.assertConfError("bad.conf", "server {\n    listen 127.0.0.1:0;\n    root .;\n"
                                   "    location /x/ {\n        alias nope/;\n    }\n}\n", 5, 9)
        self.assertIn("nope", err)
        code, out, err = self.check("-c", os.path.join(self.dir, "bad.conf"), "-p", self.dir)
        self.assertEqual(code, 1, err)
        self.assertRegex(err, r'bad\.conf:5:9: alias "[^"]*nope": No such file')

    def test_missing_conf_file(self):
        code, out, err = self.check("-c", "/nonexistent.conf")
        self.assertEqual(code, 1)
        self.assertIn("/nonexistent.conf", err)
        self.assertRegex(err, r"(?i)(no such file|cannot open)")

    def test_missing_conf_file_with_t(self):
        code, out, err = self.check("-t", "-c", "/nonexistent.conf")
        self.assertEqual(code, 1)
        self.assertIn("/nonexistent.conf", err)

    def test_missing_root_fails_at_start(self):
        # the error names the root directive (line 4, column 5), not the server block, both at
        # the start and with -t
        root = os.path.join(self.dir, "no-such-root")
        path = self.write("p.conf", "# a site\n  server {\n    listen 127.0.0.1:0;\n"
                          "    root %s;\n}\n" % root)
        want = '%s:4:5: root "%s": No such file or directory' % (path, root)
        code, out, err = self.check("-c", path, "-p", self.dir)
        self.assertEqual(code, 1, err)
        self.assertIn(want, err)
        self.assertNotIn("listening on", err)
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1, err)
        self.assertIn(want, err)

    def test_logs_that_cannot_be_opened_fail_the_test_with_their_server(self):
        # -t opens every log start-up opens, a server's own error log included, and names the
        # server block whose log it is
        for directive, what in (("access_log", "access log"), ("error_log", "error log")):
            with self.subTest(directive=directive):
                log = os.path.join(self.dir, "no-such-dir", "x.log")
                path = self.write("p.conf", "server {\n    listen 127.0.0.1:0;\n}\n"
                                  "server {\n    listen 127.0.0.1:0;\n    %s %s;\n}\n"
                                  % (directive, log))
                want = '%s:4:1: cannot open %s "%s": No such file or directory' % (path, what, log)
                code, out, err = self.check("-t", "-c", path, "-p", self.dir)
                self.assertEqual(code, 1, err)
                self.assertIn(want, err)
                code, out, err = self.check("-c", path, "-p", self.dir)
                self.assertEqual(code, 1, err)  # and start-up agrees
                self.assertNotIn("listening on", err)
        # the top level's error log, inherited by a server, is that server's
        log = os.path.join(self.dir, "no-such-dir", "top.log")
        path = self.write("p.conf", "error_log %s;\nserver {\n    listen 127.0.0.1:0;\n}\n" % log)
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1, err)
        self.assertIn('%s:2:1: cannot open error log "%s"' % (path, log), err)

    def test_relative_root_is_under_prefix(self):
        path = self.write("p.conf", "server {\n    listen 127.0.0.1:0;\n    root missing-dir;\n}\n")
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1, err)
        self.assertIn(os.path.join(self.dir, "missing-dir"), err)

    def test_address_in_use_fails_at_start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        path = self.write("p.conf", "server {\n    listen 127.0.0.1:%d;\n    root htdocs;\n}\n" % port)
        code, out, err = self.check("-c", path, "-p", self.dir)
        self.assertEqual(code, 1, err)
        self.assertIn(str(port), err)
        self.assertRegex(err, r"p\.conf:2:\d+: ")

    def test_help(self):
        code, out, err = self.check("-h")
        self.assertEqual(code, 0)
        self.assertIn("usage: porter", out + err)
        self.assertIn("-c FILE", out + err)

    def test_version(self):
        code, out, err = self.check("-V")
        self.assertEqual(code, 0)
        self.assertRegex(out + err, r"porter \d+\.\d+\.\d+")

    def test_bad_option(self):
        code, out, err = self.check("-Z")
        self.assertNotEqual(code, 0)
        self.assertIn("usage", err)

    def test_http2_directives(self):
        path = self.write("h2.conf", "http2 on;\nhttp2_max_concurrent_streams 64;\n"
                          "http2_max_header_list_size 16k;\nhttp2_max_frame_size 32k;\n"
                          "http2_stream_window 128k;\nhttp2_connection_window 4m;\n"
                          "http2_reset_rate_limit 100 10;\nhttp2_max_continuations 4;\n"
                          "http2_max_settings 16;\nhttp2_control_frame_limit 200 50;\n"
                          "server {\n    listen 127.0.0.1:0 http2;\n    root htdocs;\n"
                          "    http2 off;\n    http2_max_frame_size 16k;\n}\n")
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 0, err)
        self.assertIn("test is successful", err + out)
        # each out-of-range value is refused at its place
        for text, line, col, reason in [
                ("server {\n    listen 127.0.0.1:0;\n    http2_max_frame_size 8k;\n}\n", 3, 26,
                 'invalid value "8k" in "http2_max_frame_size", it must be 16384..16777215'),
                ("http2_stream_window 3g;\nserver {\n    listen 127.0.0.1:0;\n}\n", 1, 21,
                 'invalid value "3g" in "http2_stream_window", it must be 65535..2147483647'),
                ("server {\n    listen 127.0.0.1:0;\n    http2_reset_rate_limit 10 0;\n}\n", 3, 31,
                 'invalid value "0" in "http2_reset_rate_limit", it must be 1..2147483647'),
                ("server {\n    listen 127.0.0.1:0 ssl http2 spdy;\n}\n", 2, 34,
                 'invalid parameter "spdy" in "listen"')]:
            with self.subTest(text=text):
                err = self.assertConfError("bad.conf", text, line, col)
                self.assertIn(reason, err)

    def test_compression_directives(self):
        # every compression directive, at the levels it may stand at (docs/compression.md)
        path = self.write("z.conf", "http {\n    gzip on;\n    brotli on;\n    zstd on;\n"
                          "    gzip_comp_level 6;\n    brotli_comp_level 5;\n    zstd_comp_level 9;\n"
                          "    gzip_types text/css application/javascript;\n    brotli_types *;\n"
                          "    zstd_types text/css image/svg+xml;\n    gzip_min_length 256;\n"
                          "    brotli_min_length 1k;\n    zstd_min_length 1k;\n"
                          "    gzip_proxied expired no-cache no-store private auth;\n"
                          "    gzip_vary on;\n    gzip_disable msie6 \"Lynx/[0-9]\";\n"
                          "    gzip_http_version 1.0;\n    compress_order br zstd gzip;\n"
                          "    compress_cache on;\n"
                          "    server {\n        listen 127.0.0.1:0;\n        root htdocs;\n"
                          "        gzip_types application/json;\n        gzip_proxied any;\n"
                          "        location /raw/ {\n            gzip off;\n            brotli off;\n"
                          "            zstd_comp_level 19;\n            gzip_disable \"^curl/\";\n"
                          "            compress_order gzip zstd br;\n            compress_cache off;\n"
                          "        }\n    }\n}\n")
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 0, err)
        self.assertIn("test is successful", err + out)
        # an nginx directive porter does not honour is refused at its place with what to use
        err = self.assertConfError("bad.conf", "server {\n    listen 127.0.0.1:0;\n"
                                   "    location / {\n        gzip_static on;\n    }\n}\n", 4, 9)
        self.assertIn('"gzip_static" is not supported, use "precompressed on"', err)
        err = self.assertConfError("bad.conf", "gzip_comp_level 10;\nserver {\n"
                                   "    listen 127.0.0.1:0;\n}\n", 1, 17)
        self.assertIn('invalid value "10" in "gzip_comp_level", it must be 1..9', err)

    def test_conf_with_nginx_wrappers(self):
        path = self.write("n.conf", "events {\n    worker_connections 64;\n}\nhttp {\n"
                          "    server {\n        listen 127.0.0.1:0;\n        root htdocs;\n    }\n}\n")
        code, out, err = self.check("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 0, err)


class ConfEffects(PorterTestCase):
    """Directives that change what is served."""

    def test_index_and_server_tokens(self):
        p = self.start_porter("index home.htm index.html;\nserver_tokens off;\n",
                              {"home.htm": b"home\n", "index.html": b"index\n", "d/index.html": b"d\n"})
        r = p.get("/")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"home\n")
        self.assertEqual(r.header("Server"), "porter")
        r = p.get("/d/")
        self.assertEqual(r.body, b"d\n")

    def test_types_at_top_level(self):
        p = self.start_porter(
            "default_type text/plain;\ntypes {\n    application/x-porter-test ptt;\n}\n"
            "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n",
            {"x.ptt": b"t\n", "noext": b"n\n"})
        self.assertEqual(p.get("/x.ptt").header("Content-Type"), "application/x-porter-test")
        self.assertEqual(p.get("/noext").header("Content-Type"), "text/plain")

    def test_types_in_server(self):
        # conf/conf.h: a server's own `types` block replaces the inherited table for that server.
        p = self.start_porter("types {\n    application/x-porter-test ptt;\n}\n", {"x.ptt": b"t\n"})
        self.assertEqual(p.get("/x.ptt").header("Content-Type"), "application/x-porter-test")

    def test_default_type_in_server(self):
        p = self.start_porter("default_type text/plain;\n", {"noext": b"n\n"})
        self.assertEqual(p.get("/noext").header("Content-Type"), "text/plain")

    def test_virtual_hosts(self):
        port = self.reserve_port()  # two servers on one address: the conf names its port
        conf = ("server {\n    listen 127.0.0.1:%d;\n    server_name a.test;\n    root htdocs/a;\n}\n"
                "server {\n    listen 127.0.0.1:%d default_server;\n    server_name b.test *.b.test;\n"
                "    root htdocs/b;\n}\n" % (port, port))
        p = self.start_porter(conf, {"a/index.html": b"site a\n", "b/index.html": b"site b\n"})
        self.assertEqual(p.port, port)
        for host, body in [("a.test", b"site a\n"), ("A.TEST", b"site a\n"), ("a.test:%d" % port, b"site a\n"),
                           ("b.test", b"site b\n"), ("www.b.test", b"site b\n"), ("other.test", b"site b\n")]:
            r = p.get("/", headers=[("Host", host)])
            self.assertStatus(r, 200)
            self.assertEqual(r.body, body, host)
        # An absolute-form target names the host, whatever the Host header says.
        r = p.get("http://a.test/", headers=[("Host", "b.test")])
        self.assertEqual(r.body, b"site a\n")

if __name__ == "__main__":
    harness.main()
