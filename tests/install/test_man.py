"""The manual pages are complete: porter.conf(5) has an entry for every directive of porter's conf
tables (server/conf/*.c), porter(8) one for every option `porter -h` lists, and both format
without a warning (groff, when it is installed)."""

import os
import re
import shutil
import subprocess
import sys

SOURCE = os.environ.get("PORTER_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
PORTER = os.environ.get("PORTER_BIN", "")
MAN = os.path.join(SOURCE, "docs", "man")


def directives():
    names = set()
    folder = os.path.join(SOURCE, "server", "conf")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".c"):
            with open(os.path.join(folder, name)) as f:
                names |= set(re.findall(r'^\s*\{"([a-z0-9_]+)", C_', f.read(), re.M))
    return names


def entry_words(page):
    """The words the page sets in bold at the head of an entry (.TP) or in a section's list."""
    words = set()
    with open(os.path.join(MAN, page)) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if i > 0 and lines[i - 1] == ".TP" and line.startswith((".B", ".BR", ".BI")):
            text = re.sub(r"\\f[BIRP]", " ", line)
            words |= set(re.findall(r"[a-z0-9_]+", text.replace("\\-", "-")))
            words |= set(re.findall(r"-[a-zA-Z]\b", text.replace("\\-", "-")))
    return words


def main():
    failures = []
    names = directives()
    if len(names) < 100:
        failures.append("only %d directives found in server/conf/*.c" % len(names))
    conf_words = entry_words("porter.conf.5")
    missing = sorted(names - conf_words)
    if missing:
        failures.append("porter.conf(5) has no entry for: " + ", ".join(missing))

    if PORTER:
        usage = subprocess.run([PORTER, "-h"], capture_output=True, text=True).stdout
        options = set(re.findall(r"^  (-[a-zA-Z])\b", usage, re.M))
        if len(options) < 5:
            failures.append("porter -h lists %d options:\n%s" % (len(options), usage))
        missing = sorted(options - entry_words("porter.8"))
        if missing:
            failures.append("porter(8) has no entry for: " + ", ".join(missing))

    if shutil.which("groff"):
        for page in ("porter.8", "porter.conf.5"):
            r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(MAN, page)],
                               capture_output=True, text=True)
            if r.returncode or r.stderr:
                failures.append("%s: groff says:\n%s" % (page, r.stderr))

    for f in failures:
        print("FAIL: " + f)
    if not failures:
        print("man pages: %d directives in porter.conf(5), every option in porter(8)" % len(names))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
