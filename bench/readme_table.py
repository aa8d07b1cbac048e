#!/usr/bin/env python3
"""README.md's benchmark table, from the committed report bench/results/latest.md.

    bench/readme_table.py            rewrites the table in README.md (between its two markers)
    bench/readme_table.py --check    exits 1, saying so, if README.md's table is not the report's

The table has a row per scenario of the report, in the order of their letters, with porter's
own row of each: its throughput (or bytes per idle connection), the ratios to the best peer and
to nginx, and its CPU per request relative to nginx's. The line above it names the commit the
report measured and the run's rounds. bench/run.sh runs this after a run that wrote
bench/results/; tests/integration/test_bench.py checks that the two agree.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "results" / "latest.md"
README = ROOT / "README.md"
BEGIN = "<!-- bench/readme_table.py writes what follows, from bench/results/latest.md -->"
END = "<!-- end of bench/readme_table.py's table -->"


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse(text):
    """The report's commit, rounds, seconds, and its scenarios: [(letter, title, header, rows)],
    rows being {server: {column: cell}}."""
    commit = re.search(r"^- commit: (\S+)", text, re.M)
    if not commit:
        raise SystemExit(f"{REPORT}: no '- commit:' line: which commit did it measure?")
    rounds = re.search(r"^- (\d+) interleaved rounds of (\d+) s", text, re.M)
    scenarios = []
    for m in re.finditer(r"^## ([a-z])\. (.*)$", text, re.M):
        body = text[m.end():]
        nxt = re.search(r"^## ", body, re.M)
        body = body[:nxt.start()] if nxt else body
        lines = [line for line in body.splitlines() if line.startswith("|")]
        if len(lines) < 3:
            continue
        header = cells(lines[0])
        rows = {}
        for line in lines[2:]:
            c = cells(line)
            rows[c[0]] = dict(zip(header, c))
        scenarios.append((m.group(1), m.group(2), header, rows))
    scenarios.sort(key=lambda s: s[0])
    return commit.group(1), rounds.groups() if rounds else ("?", "?"), scenarios


def table(text):
    commit, (rounds, seconds), scenarios = parse(text)
    out = [BEGIN,
           f"From that run (commit {commit}, {rounds} rounds of {seconds} s):",
           "",
           "| scenario | porter | vs best peer | vs nginx | porter CPU/request vs nginx |",
           "|---|---:|---:|---:|---:|"]
    for letter, title, header, rows in scenarios:
        porter = rows.get("porter")
        if not porter:
            continue
        measure = header[1]
        if measure.startswith("bytes/conn"):
            peers = ", ".join(f"{name} {rows[name][measure]}" for name in ("nginx", "lighttpd", "h2o")
                              if name in rows)
            first = f"{porter[measure]} B ({peers})"
        else:
            first = f"{porter[measure]} {measure}"
        out.append(f"| {letter}. {title} | {first} | {porter.get('vs best peer', '')} | "
                   f"{porter.get('vs nginx', '')} | {porter.get('CPU/req vs nginx', '')} |")
    out.append(END)
    return "\n".join(out)


def replace(readme, new):
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{README}: the markers of the benchmark table are missing")
    return readme[:start] + new + readme[end + len(END):]


def main():
    new = table(REPORT.read_text())
    readme = README.read_text()
    updated = replace(readme, new)
    if sys.argv[1:] == ["--check"]:
        if updated != readme:
            print(f"{README}: the benchmark table is not {REPORT}'s: run bench/readme_table.py",
                  file=sys.stderr)
            return 1
        return 0
    if updated != readme:
        README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
