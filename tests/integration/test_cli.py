"""The command line around a running porter and its conf: -s reload|reopen|quit|stop through the
pid file (and its errors: no pid directive, no pid file, a stale one), -t reporting every error
with its place, -T printing the conf with its includes, -q, -c under -p, -e, and the messages
for a misspelt directive and for one of nginx's that porter does not have; -v, --version, -V
(with the build) and --help."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request, run_porter

FILES = {"a.txt": b"alpha\n"}


class Signals(PorterTestCase):
    """porter -s against a running porter, in one process and with workers."""

    def start(self, workers=1, extra=""):
        p = self.start_porter("pid @TMP@/porter.pid;\nworker_processes %d;\n%s"
                              "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                              "    location = /v { return 200 \"one\"; }\n"
                              "    access_log @TMP@/logs/access.log;\n}\n" % (workers, extra),
                              FILES, extra={"logs/.keep": b""})
        if workers > 1:
            harness.wait_workers(p, workers)
        harness.wait_until(lambda: os.path.exists(self.pid_file(p)), 5, "the pid file")
        return p

    def pid_file(self, p):
        return os.path.join(p.tmp, "porter.pid")

    def send(self, p, sig):
        return run_porter(["-p", p.tmp, "-c", p.conf_path, "-s", sig], cwd=p.tmp)

    def test_reload(self):
        for workers in (1, 2):
            with self.subTest(workers=workers):
                p = self.start(workers)
                self.assertEqual(p.get("/v").body, b"one")
                with open(p.conf_path) as f:
                    text = f.read()
                with open(p.conf_path, "w") as f:
                    f.write(text.replace('"one"', '"two"'))
                code, out, err = self.send(p, "reload")
                self.assertEqual((code, out, err), (0, "", ""))
                harness.wait_until(lambda: p.get("/v").body == b"two", 10,
                                   lambda: "the reloaded conf answers:\n" + p.output)
                p.stop()

    def test_reopen(self):
        for workers in (1, 2):
            with self.subTest(workers=workers):
                p = self.start(workers)
                log = os.path.join(p.tmp, "logs", "access.log")
                self.assertEqual(p.get("/a.txt").status, 200)
                harness.wait_until(lambda: os.path.exists(log) and os.path.getsize(log) > 0, 5,
                                   "the first access line")
                os.rename(log, log + ".1")
                code, out, err = self.send(p, "reopen")
                self.assertEqual(code, 0, err)
                harness.wait_until(lambda: os.path.exists(log), 5, "the log reopened")
                # every process has let go of the old file once it reopened the log
                pids = [p.pid] + harness.proc_live_children(p.pid)
                harness.wait_until(lambda: not harness.holds_path(pids, "access.log.1"), 5,
                                   "every process reopened the log")
                # so each connection, whichever worker it lands on, is logged in the new file
                for _ in range(8):
                    self.assertEqual(p.get("/a.txt?after").status, 200)
                harness.wait_until(lambda: open(log).read().count("/a.txt?after") == 8, 5,
                                   lambda: "the new log holds every request after the "
                                   "rotation:\n" + open(log).read())
                self.assertNotIn("?after", open(log + ".1").read())
                p.stop()

    def keepalive_conn(self, p):
        c = p.connect()
        self.addCleanup(c.close)
        c.send(request("GET", "/a.txt"))
        self.assertStatus(c.read_response(), 200)
        return c

    def test_stop_closes_idle_connections_at_once(self):
        p = self.start()
        c = self.keepalive_conn(p)
        code, out, err = self.send(p, "stop")  # SIGTERM
        self.assertEqual(code, 0, err)
        closed, _, _ = c.wait_closed(5)
        self.assertTrue(closed, "an idle connection outlived -s stop")
        self.assertEqual(p.wait(10), 0)
        p.check_exit()
        self.assertFalse(os.path.exists(self.pid_file(p)), "the pid file outlived porter")

    def test_quit_answers_the_next_request_then_closes(self):
        for workers in (1, 2):
            with self.subTest(workers=workers):
                p = self.start(workers)
                c = self.keepalive_conn(p)
                code, out, err = self.send(p, "quit")  # SIGQUIT: gently
                self.assertEqual(code, 0, err)
                time.sleep(0.5)  # what -s stop would have closed by now
                c.send(request("GET", "/a.txt"))
                r = c.read_response()
                self.assertStatus(r, 200)
                self.assertTrue(r.has_token("Connection", "close"), r)
                self.assertEqual(p.wait(10), 0)
                p.check_exit()

    def test_errors(self):
        p = self.start()
        pid_file = self.pid_file(p)
        # an unknown signal
        code, out, err = self.send(p, "restart")
        self.assertEqual(code, 2)
        self.assertIn('invalid signal "restart"', err)
        # porter not running: no pid file
        p.stop()
        code, out, err = self.send(p, "reload")
        self.assertEqual(code, 1)
        self.assertIn('cannot open the pid file "%s": No such file or directory' % pid_file, err)
        # a stale pid file: a pid no process has
        dead = harness.subprocess.Popen(["true"])
        dead.wait()
        with open(pid_file, "w") as f:
            f.write("%d\n" % dead.pid)
        code, out, err = self.send(p, "reload")
        self.assertEqual(code, 1)
        self.assertIn("no process %d" % dead.pid, err)
        self.assertIn("stale", err)
        with open(pid_file, "w") as f:
            f.write("twelve\n")
        code, out, err = self.send(p, "stop")
        self.assertEqual(code, 1)
        self.assertIn('invalid pid "twelve"', err)
        # a conf without a pid directive
        conf = os.path.join(p.tmp, "nopid.conf")
        with open(conf, "w") as f:
            f.write("server { listen 127.0.0.1:0; }\n")
        code, out, err = run_porter(["-p", p.tmp, "-c", conf, "-s", "reload"])
        self.assertEqual(code, 1)
        self.assertIn("names no pid file", err)

    def test_signal_reaches_porter_whose_conf_now_has_an_error(self):
        # A conf broken since porter started still names the pid file: -s reaches porter,
        # whose reload then reports the error and keeps serving.
        p = self.start()
        with open(p.conf_path, "a") as f:
            f.write("\nbogus_directive 1;\n")
        code, out, err = self.send(p, "reload")
        self.assertEqual(code, 0, err)
        harness.wait_until(lambda: "reload failed" in p.output, 5,
                           lambda: "the reload's error:\n" + p.output)
        self.assertIn('unknown directive "bogus_directive"', p.output)
        self.assertEqual(p.get("/v").body, b"one")


class Check(PorterTestCase):
    """-t, -T, -q, -c under -p, -e."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="porter-itest-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.makedirs(os.path.join(self.dir, "htdocs"))

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_porter(self, *args, cwd=None):
        code, out, err = run_porter(list(args), cwd=cwd or self.dir)
        harness.assert_clean_output(out + err)
        return code, out, err

    def test_t_reports_every_error(self):
        inc = self.write("conf.d/site.conf", "server {\n    listen 127.0.0.1:0;\n"
                         "    keepalive_timeout soon;\n}\n")
        path = self.write("main.conf", "worker_processes many;\n"
                          "include conf.d/*.conf;\n"
                          "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                          "    location / {\n        sendfile maybe;\n    }\n}\n")
        code, out, err = self.run_porter("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1, err)
        errors = re.findall(r"^porter: (\S+?):(\d+):(\d+): (.*)$", err, re.M)
        self.assertEqual([(f, int(l), int(c)) for f, l, c, _ in errors],
                         [(path, 1, 18), (inc, 3, 23), (path, 7, 18)], err)
        self.assertIn('"many"', errors[0][3])
        self.assertIn('"soon"', errors[1][3])
        self.assertIn('"maybe"', errors[2][3])
        self.assertIn("test failed", err)
        self.assertNotIn("successful", err)

    def test_t_reports_missing_directories_with_conf_errors(self):
        # the checks of what the conf names (roots, logs) come after its own errors
        path = self.write("main.conf", "server {\n    listen 127.0.0.1:0;\n    root nowhere;\n"
                          "    bogus 1;\n    access_log no-such-dir/a.log;\n}\n")
        code, out, err = self.run_porter("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1, err)
        lines = [line for line in err.splitlines() if re.match(r"porter: /", line)]
        self.assertEqual(len(lines), 3, err)
        self.assertRegex(lines[0], r":4:5: unknown directive \"bogus\"")
        self.assertRegex(lines[1], r":3:5: root \"%s\": No such file" % re.escape(
            os.path.join(self.dir, "nowhere")))
        self.assertRegex(lines[2], r":1:1: cannot open access log")

    def test_q_quiets_a_good_test(self):
        path = self.write("main.conf", "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n")
        code, out, err = self.run_porter("-t", "-q", "-c", path, "-p", self.dir)
        self.assertEqual((code, out, err), (0, "", ""))
        code, out, err = self.run_porter("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 0)
        self.assertIn("test is successful", err)
        # errors are never quiet
        self.write("main.conf", "server {\n    listen 127.0.0.1:0;\n    bogus;\n}\n")
        code, out, err = self.run_porter("-t", "-q", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1)
        self.assertIn("bogus", err)

    def test_T_prints_the_conf_with_its_includes(self):
        a = "server {\n    listen 127.0.0.1:0;\n    include snippets/common.conf;\n}\n"
        b = "server {\n    listen 127.0.0.1:0;\n    include snippets/common.conf;\n}\n"
        common = "# shared\nroot htdocs;\nindex index.html;\n"
        self.write("sites/a.conf", a)
        self.write("sites/b.conf", b)
        self.write("sites/snippets/common.conf", common)
        main = "worker_processes 1;\ninclude sites/*.conf;\n"
        path = self.write("main.conf", main)
        code, out, err = self.run_porter("-T", "-c", path, "-p", self.dir)
        self.assertEqual(code, 0, err)
        self.assertIn("test is successful", err)
        d = self.dir
        want = ("# configuration file %s/main.conf:\n%s\n"
                "# configuration file %s/sites/a.conf:\n%s\n"
                "# configuration file %s/sites/snippets/common.conf:\n%s\n"
                "# configuration file %s/sites/b.conf:\n%s\n"
                % (d, main, d, a, d, common, d, b))
        self.assertEqual(out, want)  # common.conf once, though included twice
        # -q: the conf alone
        code, out, err = self.run_porter("-T", "-q", "-c", path, "-p", self.dir)
        self.assertEqual((code, out, err), (0, want, ""))
        # nothing printed for a conf that fails its test
        self.write("sites/b.conf", b + "bogus 1;\n")
        code, out, err = self.run_porter("-T", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertIn("bogus", err)

    def test_c_is_relative_to_the_prefix(self):
        self.write("site/site.conf", "server {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n")
        os.makedirs(os.path.join(self.dir, "site", "htdocs"))
        elsewhere = tempfile.mkdtemp(prefix="porter-itest-cwd-")
        self.addCleanup(shutil.rmtree, elsewhere, True)
        code, out, err = self.run_porter("-t", "-p", os.path.join(self.dir, "site"),
                                         "-c", "site.conf", cwd=elsewhere)
        self.assertEqual(code, 0, err)
        self.assertIn("%s/site/site.conf test is successful" % self.dir, err)
        # without -p it is relative to the current directory, as before
        code, out, err = self.run_porter("-t", "-c", "site/site.conf", cwd=self.dir)
        self.assertIn("site/site.conf", err)

    def test_e_takes_messages_before_the_conf(self):
        path = self.write("main.conf", "server {\n    listen 127.0.0.1:0;\n    bogus 1;\n}\n")
        code, out, err = self.run_porter("-e", "early.log", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1)
        self.assertEqual(err, "")
        with open(os.path.join(self.dir, "early.log")) as f:
            log = f.read()
        self.assertIn('unknown directive "bogus"', log)
        # "stderr" is standard error
        code, out, err = self.run_porter("-e", "stderr", "-c", path, "-p", self.dir)
        self.assertIn('unknown directive "bogus"', err)
        # a log that cannot be opened is said so
        code, out, err = self.run_porter("-e", "/no-such-dir/e.log", "-c", path)
        self.assertEqual(code, 1)
        self.assertIn('cannot open the error log "/no-such-dir/e.log"', err)

    def test_did_you_mean(self):
        path = self.write("main.conf", "server {\n    listen 127.0.0.1:0;\n"
                          "    server_nmae example.com;\n    keepalive_timout 5s;\n}\n")
        code, out, err = self.run_porter("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1)
        self.assertIn('%s:3:5: unknown directive "server_nmae", did you mean "server_name"?'
                      % path, err)
        self.assertIn('%s:4:5: unknown directive "keepalive_timout", did you mean '
                      '"keepalive_timeout"?' % path, err)

    def test_nginx_directive_not_supported(self):
        path = self.write("main.conf", "worker_rlimit_nofile 65536;\nserver {\n"
                          "    listen 127.0.0.1:0;\n    location / {\n"
                          "        proxy_buffering off;\n    }\n}\n")
        code, out, err = self.run_porter("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1)
        self.assertIn('%s:1:1: "worker_rlimit_nofile" directive is not supported by porter; '
                      'see docs/nginx.md' % path, err)
        self.assertIn('%s:5:9: "proxy_buffering" directive is not supported by porter; '
                      'see docs/nginx.md' % path, err)

    def test_listen_unix_is_said_unsupported(self):
        path = self.write("main.conf", "server {\n    listen unix:/run/porter.sock;\n}\n")
        code, out, err = self.run_porter("-t", "-c", path, "-p", self.dir)
        self.assertEqual(code, 1)
        self.assertIn("%s:2:12: \"listen unix:/run/porter.sock\": porter listens on TCP "
                      "addresses only" % path, err)


class Version(PorterTestCase):
    """-v and --version print the version, -V adds how porter was built (the compiler, the
    libraries' versions, the configure options), -h and --help the usage; all on stdout, exit
    0. The version is the one the tree's CMakeLists.txt declares; the libraries' are
    pkg-config's."""

    def project_version(self):
        with open(os.path.join(harness.SOURCE_DIR, "CMakeLists.txt")) as f:
            return re.search(r"project\(porter VERSION (\d+\.\d+\.\d+)", f.read()).group(1)

    def test_v_and_version(self):
        for opt in ("-v", "--version"):
            with self.subTest(opt=opt):
                code, out, err = run_porter([opt])
                self.assertEqual((code, out, err), (0, "porter %s\n" % self.project_version(), ""))

    def test_V_adds_the_build(self):
        code, out, err = run_porter(["-V"])
        self.assertEqual((code, err), (0, ""), err)
        lines = out.splitlines()
        self.assertEqual(lines[0], "porter %s" % self.project_version(), out)
        built_by = re.search(r"^built by (gcc|clang) (\d+\.\d+\.\d+)", out, re.M)
        self.assertTrue(built_by, out)
        configure = re.search(r"^configure arguments: (.*)$", out, re.M)
        self.assertTrue(configure, out)
        self.assertIn("-DCMAKE_BUILD_TYPE=", configure.group(1))
        compiler = re.search(r"-DCMAKE_C_COMPILER=(\S+)", configure.group(1))
        self.assertTrue(compiler, out)
        # The compiler the configure line names is the one whose version -V says.
        cc = subprocess.run([compiler.group(1), "--version"], capture_output=True, text=True)
        self.assertIn(built_by.group(2), cc.stdout.splitlines()[0])
        # OpenSSL's line, and every library with the version pkg-config has for it.
        self.assertRegex(out, r"(?m)^built with OpenSSL 3\.\d+\.\d+")
        libraries = re.search(r"^libraries: (.*)$", out, re.M)
        self.assertTrue(libraries, out)
        got = dict(re.findall(r"(\S+) (\d+\.\d+(?:\.\d+)?)", libraries.group(1)))
        for name, module in (("nghttp2", "libnghttp2"), ("zlib", "zlib"), ("zstd", "libzstd"),
                             ("brotli", "libbrotlienc"), ("pcre2", "libpcre2-8")):
            want = subprocess.run(["pkg-config", "--modversion", module], capture_output=True,
                                  text=True).stdout.strip()
            self.assertEqual(got.get(name), want, "%s in: %s" % (name, libraries.group(1)))
        self.assertRegex(libraries.group(1), r"libev \d+\.\d+")
        self.assertRegex(libraries.group(1), r"llhttp \d+\.\d+\.\d+")

    def test_help(self):
        for opt in ("-h", "--help"):
            with self.subTest(opt=opt):
                code, out, err = run_porter([opt])
                self.assertEqual((code, err), (0, ""))
                self.assertTrue(out.startswith("usage: porter "), out)
                for o in ("-c FILE", "-p PREFIX", "-e FILE", "-s SIGNAL", "-t", "-T", "-q",
                          "-h, --help", "-v, --version", "-V"):
                    self.assertRegex(out, r"(?m)^  %s\b" % re.escape(o))

    def test_unknown_long_option(self):
        code, out, err = run_porter(["--verbose"])
        self.assertEqual((code, out), (2, ""))
        self.assertIn("usage: porter", err)


if __name__ == "__main__":
    harness.main()
