"""Every declaration of the public API carries a Doxygen comment.

The public headers are include/porter.h and the headers it includes, directly or not: those of
include/porter/ (porter/version.h is made from include/porter/version.h.in) and the layer
headers (the set `cmake --install` installs). Functions, types (struct, union and enum definitions,
typedefs other than forward ones of opaque structs), their members (those of a nested union go
with it) and #defines must each have
a /** ... */ comment above them, or a trailing /**< ... */ one. Several alike in a row with no
blank line between (a function and its counterpart, a group of fields) may share the comment
above the first.

Python 3 standard library only; $PORTER_SOURCE_DIR is the repository.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("PORTER_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
INCLUDE = re.compile(r'^#include "((?:connmgr|listener|porter)/[a-z_]+\.h)"', re.M)


def source_of(header):
    """The file in the tree a public header comes from."""
    if header.startswith("porter/"):
        header = "include/" + header
        if not os.path.exists(os.path.join(SOURCE_DIR, header)):
            header += ".in"  # made by CMake's configure_file()
    return header


def public_headers():
    seen, pending = [], ["include/porter.h"]
    while pending:
        h = source_of(pending.pop(0))
        if h in seen:
            continue
        seen.append(h)
        with open(os.path.join(SOURCE_DIR, h)) as f:
            pending += INCLUDE.findall(f.read())
    return seen


def code_lines(text):
    """The lines with comments blanked (newlines kept) and C++ linkage blocks removed."""
    code = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    lines = code.split("\n")
    skipping = False
    for i, line in enumerate(lines):
        if line.strip() == "#ifdef __cplusplus":
            skipping = True
        if skipping:
            lines[i] = ""
            if line.strip() == "#endif":
                skipping = False
    return lines


def declarations(text):
    """(line index, kind, text) of every declaration that needs a comment."""
    code = code_lines(text)
    out = []
    stack = []  # kinds of the open braces: "aggregate" or "body"
    start = None  # first line of the top-level statement being read
    i = 0
    while i < len(code):
        s = code[i].strip()
        if not stack and start is None and s.startswith("#"):
            m = re.match(r"#\s*define\s+(\w+)", s)
            if m and not re.match(r"PORTER_(\w+_)?H$", m.group(1)):
                out.append((i, "macro", s))
            while code[i].rstrip().endswith("\\"):
                i += 1
            i += 1
            continue
        if s and not stack and start is None:
            start = i
        if s and stack == ["aggregate"] and not s.startswith(("{", "}")):
            if not re.match(r"^(struct|union)\b[^;]*\{$", s):
                out.append((i, "member", s))
        for ch in code[i]:
            if ch == "{":
                joined = " ".join(c.strip() for c in code[start if start is not None else i : i + 1])
                head = joined[: joined.rfind("{")].rstrip()
                stack.append("body" if head.endswith(")") else "aggregate")
            elif ch == "}" and stack:
                stack.pop()
        if start is not None and not stack and re.search(r"[;}]\s*$", s):
            whole = " ".join(c.strip() for c in code[start : i + 1])
            if not re.match(r"^typedef\s+(struct|union|enum)\s+\w+\s+\w+\s*;$", whole):
                out.append((start, "declaration", code[start].strip()))
            start = None
        i += 1
    return out


def documented(lines, i, kind, kinds):
    if "/**<" in lines[i]:
        return True
    j = i - 1
    while j >= 0 and kinds.get(j) == kind and not lines[j].rstrip().endswith("*/"):
        j -= 1  # shares the comment of the run it belongs to
    while j >= 0 and kinds.get(j) is None and lines[j].strip() and not lines[j].rstrip().endswith("*/"):
        j -= 1  # the lines of a multi-line declaration above
    if j < 0 or not lines[j].rstrip().endswith("*/"):
        return False
    k = j
    while k >= 0 and "/*" not in lines[k]:
        k -= 1
    return k >= 0 and lines[k].lstrip().startswith(("/**", "/*!"))


def main():
    missing = []
    headers = public_headers()
    for h in headers:
        with open(os.path.join(SOURCE_DIR, h)) as f:
            text = f.read()
        lines = text.split("\n")
        decls = declarations(text)
        kinds = {i: ("member" if k == "member" else "top") for i, k, _ in decls}
        for i, kind, first in decls:
            if not documented(lines, i, "member" if kind == "member" else "top", kinds):
                missing.append("%s:%d: %s without a /** */ comment: %s" % (h, i + 1, kind, first))
    for m in missing:
        print(m)
    print("%d public headers, %d undocumented declarations" % (len(headers), len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
