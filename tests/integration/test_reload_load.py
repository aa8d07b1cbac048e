"""Reloads under load: wrk keeps 16 connections busy while porter reloads 10 times (in a single
process, with 2 workers, and alternating between 2 and 3 workers); each generation serves the
load before the next reload, not one request may fail, and afterwards only the last generation
of workers is left."""

import os
import signal
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from test_reload import ReloadCase, conf


class ReloadUnderLoad(ReloadCase):
    def reloads_under_wrk(self, counts):
        if not harness.tool("wrk"):
            self.skipTest("wrk is not installed")

        def extra(generation):
            # Each generation logs to a file of its own: what it served is told apart.
            return "keepalive_timeout 30s;\naccess_log gen%d.log;\n" % generation

        def served(generation):
            try:
                with open(os.path.join(p.tmp, "gen%d.log" % generation), "rb") as f:
                    return f.read().count(b"\n")
            except OSError:
                return 0

        p = self.start(counts[0], extra(0))
        # wrk runs until it is stopped (120 s at most), so every reload happens under load.
        wrk = harness.Wrk(p.url("/a.txt"), duration=120, threads=2, connections=16)
        self.addCleanup(wrk.stop)
        harness.wait_until(lambda: harness.established_to(p.port) >= 16, 10,
                           "wrk's 16 connections to porter")
        for i in range(10):
            n = counts[(i + 1) % len(counts)]
            marks = p.output.count("configuration reloaded")
            self.write_conf(p, conf(n, "htdocs2" if i % 2 == 0 else "htdocs", extra(i + 1)))
            p.signal(signal.SIGHUP)
            harness.wait_until(lambda: p.output.count("configuration reloaded") > marks, 5,
                               lambda: "reload %d reported:\n%s" % (i + 1, p.output[-2000:]))
            # The load reaches the new generation before the next reload: it has served (and
            # logged: access logs are flushed once a second) a hundred of wrk's requests.
            harness.wait_until(lambda: served(i + 1) >= 100, 10,
                               lambda: "generation %d served %d requests"
                               % (i + 1, served(i + 1)))
        self.assertTrue(wrk.running(), "the load ended before the last reload was over")
        result = wrk.stop()
        self.assertGreater(result["requests"], 100, result["text"])
        errors = {k: result[k] for k in ("connect", "read", "write", "timeout", "non2xx")
                  if result[k]}
        self.assertEqual(errors, {}, "requests failed across 10 reloads:\n" + result["text"])
        # The old generations are gone; the last conf answers.
        last = counts[10 % len(counts)]
        self.assertTrue(harness.wait_for(
            lambda: len(harness.proc_live_children(p.pid)) == (last if last > 1 else 0), 15),
            "old workers are still running: %r" % harness.proc_live_children(p.pid))
        self.assertEqual(p.get("/a.txt").body, b"one\n")

    def test_ten_reloads_under_load_single(self):
        self.reloads_under_wrk([1])

    def test_ten_reloads_under_load_workers(self):
        self.reloads_under_wrk([2])

    def test_ten_reloads_under_load_changing_worker_count(self):
        self.reloads_under_wrk([2, 3])


if __name__ == "__main__":
    harness.main()
