"""`make bench`'s pieces that need no benchmark run: a port it needs that is in use stops it with
one line naming BASE_PORT (no traceback); the scenarios run, and show in the report and the
chart, in the order of their letters; the committed report names the commit it measured (one in
this repository's history); and README.md's table is the report's (bench/readme_table.py), with
porter's numbers as the report has them."""

import os
import re
import socket
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402

SRC = harness.SOURCE_DIR
BENCH = os.path.join(SRC, "bench")
sys.path.insert(0, BENCH)
import bench  # noqa: E402


def report():
    with open(os.path.join(BENCH, "results", "latest.md")) as f:
        return f.read()


class Ports(unittest.TestCase):
    def test_a_port_in_use_is_one_line_naming_base_port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            env = dict(os.environ, BASE_PORT=str(port))
            r = subprocess.run([sys.executable, "-B", os.path.join(BENCH, "bench.py"),
                                "--check-ports"], capture_output=True, text=True, env=env,
                               timeout=60, cwd=SRC)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stdout, "")
        self.assertNotIn("Traceback", r.stderr)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("port %d on 127.0.0.1 is in use" % port, lines[0])
        self.assertIn("BASE_PORT", lines[0])

    def test_the_ports_cover_every_listener(self):
        # Each server's plain, TLS, proxy and HTTP/2 listeners and the proxies' upstream.
        ports = bench.ports_needed(bench.ALL)
        base = bench.BASE_PORT
        for offset in (0, bench.TLS_OFFSET, bench.PROXY_OFFSET, bench.H2_OFFSET,
                       bench.H2C_OFFSET, 300, 301):
            self.assertIn(base + offset, ports)
        self.assertEqual(len(ports), len(set(ports)))


class Order(unittest.TestCase):
    def test_scenarios_in_the_order_of_their_letters(self):
        keys = "".join(sorted({s.key for s in bench.SCENARIOS}, reverse=True))
        chosen = [s.key for s in bench.select_scenarios(keys)]
        self.assertEqual(chosen, sorted(chosen))
        self.assertEqual(set(chosen), {s.key for s in bench.SCENARIOS})


class Report(unittest.TestCase):
    def test_it_names_the_commit_it_measured(self):
        m = re.search(r"(?m)^- commit: ([0-9a-f]{7,40})\b", report())
        self.assertTrue(m, "bench/results/latest.md has no '- commit: HASH' line")
        if not os.path.isdir(os.path.join(SRC, ".git")) and not os.path.isfile(
                os.path.join(SRC, ".git")):
            return  # a source tree without its history: the hash cannot be looked up
        r = subprocess.run(["git", "-C", SRC, "cat-file", "-t", m.group(1)],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), "commit", "the report's commit %s is not in this "
                         "repository's history" % m.group(1))

    def test_readme_table_is_the_reports(self):
        r = subprocess.run([sys.executable, "-B", os.path.join(BENCH, "readme_table.py"),
                            "--check"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # And it says what the report says: porter's row of each scenario, read here directly.
        with open(os.path.join(SRC, "README.md")) as f:
            readme = f.read()
        text = report()
        commit = re.search(r"(?m)^- commit: (\S+)", text).group(1)
        self.assertIn("From that run (commit %s," % commit, readme)
        sections = re.split(r"(?m)^## ", text)[1:]
        self.assertTrue(sections)
        for section in sections:
            letter = section[0]
            porter = re.search(r"(?m)^\| porter \| ([^|]+) \|(.*)$", section)
            if not porter:
                continue
            head = [c.strip() for c in re.search(r"(?m)^\| server \|(.*)$", section)
                    .group(1).strip(" |").split("|")]
            row = dict(zip(head[1:], [c.strip() for c in porter.group(2).strip(" |").split("|")]))
            line = re.search(r"(?m)^\| %s\. .*$" % letter, readme)
            self.assertTrue(line, "README has no row for scenario %s" % letter)
            readme_cells = [c.strip() for c in line.group(0).strip("|").split("|")]
            self.assertTrue(readme_cells[1].startswith(porter.group(1).strip()), line.group(0))
            self.assertEqual(readme_cells[2:4], [row["vs best peer"], row["vs nginx"]],
                             line.group(0))


if __name__ == "__main__":
    harness.main()
