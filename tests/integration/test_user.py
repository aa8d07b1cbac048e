"""Who the workers run as. Started by root, the master keeps root (it binds, reads keys, opens
logs) and its workers switch to the conf's `user USER [GROUP]` (setgid, setgroups, setuid), or to
`nobody` when the conf names none; `user root;` keeps root. Logs reopened on SIGUSR1 are given to
that user so the workers can reopen them. One process (worker_processes 1) does not switch, as
nginx without a master; started by another user, `user` is ignored with a warning. A worker that
cannot switch stops with the reason and is not started again.

These tests need root: run as another user they are skipped (and say so)."""

import grp
import os
import pwd
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase

FILES = {"a.txt": b"alpha\n"}


def ids(pid):
    """(real uid, effective uid, real gid, effective gid, supplementary groups) of `pid`."""
    uid = gid = groups = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = [int(x) for x in line.split()[1:3]]
            elif line.startswith("Gid:"):
                gid = [int(x) for x in line.split()[1:3]]
            elif line.startswith("Groups:"):
                groups = sorted(int(x) for x in line.split()[1:])
    return uid[0], uid[1], gid[0], gid[1], groups


def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


class User(PorterTestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("switching user needs root: these tests run as uid %d" % os.geteuid())
        self.nobody = nobody()
        if self.nobody is None:
            self.skipTest("no user nobody on this system")

    def start(self, conf, **kw):
        # The workers reach the logs and files by path, as under /var/log and /var/www: the
        # test's directory must be open to them (mkdtemp makes it private).
        p = self.start_porter(conf, FILES, user_root=False, start=False,
                              extra={"logs/.keep": b""}, **kw)
        os.chmod(p.tmp, 0o755)
        p.start()
        return p

    def conf(self, user_line, workers=2, log=True):
        return ("%sworker_processes %d;\nserver {\n    listen 127.0.0.1:0;\n    root htdocs;\n"
                "%s}\n" % (user_line, workers,
                           "    access_log @TMP@/logs/access.log;\n" if log else ""))

    def workers_switched(self, p, n, uid):
        """The pids of the master's `n` workers once each runs as `uid` (a worker switches
        just after it is forked)."""
        got = []

        def ok():
            got[:] = harness.proc_live_children(p.pid)
            return len(got) == n and all(ids(w)[1] == uid for w in got)

        harness.wait_until(ok, 10, lambda: "%d workers running as uid %d: %r\n%s"
                           % (n, uid, [(w, ids(w)) for w in got], p.output))
        return got

    def test_workers_run_as_the_user(self):
        group = grp.getgrgid(self.nobody.pw_gid).gr_name
        p = self.start(self.conf("user nobody %s;\n" % group))
        workers = self.workers_switched(p, 2, self.nobody.pw_uid)
        self.assertEqual(ids(p.pid)[:4], (0, 0, 0, 0), "the master keeps root")
        for w in workers:
            uid, euid, gid, egid, groups = ids(w)
            self.assertEqual((uid, euid), (self.nobody.pw_uid, self.nobody.pw_uid))
            self.assertEqual((gid, egid), (self.nobody.pw_gid, self.nobody.pw_gid))
            # nobody's groups only: root's supplementary groups are gone
            want = sorted({self.nobody.pw_gid} | {g.gr_gid for g in grp.getgrall()
                                                  if "nobody" in g.gr_mem})
            self.assertEqual(groups, want)
        self.assertEqual(p.get("/a.txt").body, b"alpha\n")

    def test_without_user_workers_run_as_nobody(self):
        p = self.start(self.conf(""))
        for w in self.workers_switched(p, 2, self.nobody.pw_uid):
            self.assertEqual(ids(w)[:4], (self.nobody.pw_uid, self.nobody.pw_uid,
                                          self.nobody.pw_gid, self.nobody.pw_gid))
        self.assertEqual(p.get("/a.txt").status, 200)

    def test_user_root_keeps_root(self):
        p = self.start(self.conf("user root;\n"))
        for w in self.workers_switched(p, 2, 0):
            self.assertEqual(ids(w)[:4], (0, 0, 0, 0))

    def test_one_process_does_not_switch(self):
        p = self.start(self.conf("user nobody %s;\n" % grp.getgrgid(self.nobody.pw_gid).gr_name,
                                 workers=1))
        self.assertEqual(ids(p.pid)[:2], (0, 0))
        self.assertIn("one process (worker_processes 1) does not switch user", p.output)
        self.assertEqual(p.get("/a.txt").status, 200)

    def test_reopened_logs_belong_to_the_workers(self):
        p = self.start(self.conf("pid @TMP@/porter.pid;\n"))
        self.workers_switched(p, 2, self.nobody.pw_uid)
        log = os.path.join(p.tmp, "logs", "access.log")
        self.assertEqual(p.get("/a.txt").status, 200)
        harness.wait_until(lambda: os.path.exists(log) and os.path.getsize(log) > 0, 5,
                           "the first access line")
        self.assertEqual(os.stat(log).st_uid, 0, "opened by the master, as root")
        os.rename(log, log + ".1")
        code, out, err = harness.run_porter(["-p", p.tmp, "-c", p.conf_path, "-s", "reopen"])
        self.assertEqual(code, 0, err)
        harness.wait_until(lambda: os.path.exists(log), 5, "the log reopened")
        self.assertEqual(os.stat(log).st_uid, self.nobody.pw_uid)
        pids = [p.pid] + harness.proc_live_children(p.pid)
        harness.wait_until(lambda: not harness.holds_path(pids, "access.log.1"), 5,
                           lambda: "every process reopened the log:\n" + p.output)
        # every worker reopened it as nobody and writes there
        for _ in range(8):
            self.assertEqual(p.get("/a.txt?after").status, 200)
        harness.wait_until(lambda: open(log).read().count("?after") == 8, 5,
                           lambda: "the reopened log:\n%s\nporter:\n%s"
                           % (open(log).read(), p.output))
        self.assertNotIn("cannot reopen", p.output)

    def test_unknown_user_is_a_conf_error(self):
        p = self.start_porter(self.conf("user no-such-user-x;\n", log=False), FILES,
                              user_root=False, start=False)
        code, out, err = harness.run_porter(["-t", "-c", p.conf_path, "-p", p.tmp])
        self.assertEqual(code, 1)
        # line 2: the harness puts error_log first
        self.assertIn('%s:2:6: unknown user "no-such-user-x" in "user"' % p.conf_path, err)
        p._stopped = True

    def test_ignored_when_not_started_by_root(self):
        p = self.start_porter(self.conf("user root;\n", log=False), FILES, user_root=False,
                              run_as=self.nobody.pw_uid)
        for w in harness.wait_workers(p, 2):
            self.assertEqual(ids(w)[0], self.nobody.pw_uid)
        self.assertIn('the "user" directive makes sense only if porter is started by root',
                      p.output)
        self.assertEqual(p.get("/a.txt").status, 200)

    def test_a_worker_that_cannot_switch_stops_with_the_reason(self):
        setpriv = harness.tool("setpriv")
        if not setpriv:
            self.skipTest("setpriv (util-linux) is not installed")
        p = self.start_porter(self.conf("user nobody %s;\n"
                                        % grp.getgrgid(self.nobody.pw_gid).gr_name, log=False),
                              FILES, user_root=False, start=False)
        # root without CAP_SETGID and CAP_SETUID: the workers' switch fails
        r = subprocess.run([setpriv, "--bounding-set", "-setgid,-setuid", harness.PORTER_BIN,
                            "-p", p.tmp, "-c", p.conf_path], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30, env=harness.sanitizer_env(),
                           preexec_fn=harness._child_setup)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn('worker cannot run as user "nobody": setgid(%d): Operation not permitted'
                      % self.nobody.pw_gid, err)
        self.assertEqual(err.count("it is not started again"), 2, err)
        self.assertIn("no worker could start: porter stops", err)
        p._stopped = True


if __name__ == "__main__":
    harness.main()
