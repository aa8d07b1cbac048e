"""The shared library exports exactly what the installed headers declare.

`cmake --install` of the build tree into a temporary prefix, then two sets compared:

  - the functions and variables the installed headers (include/porter.h and include/porter/)
    declare: every declaration at file scope that is not a typedef, a definition (the
    headers' static inline functions are compiled into the program, not exported) or a
    function pointer;
  - the symbols `nm -D --defined-only` finds defined in the installed libporter.so.

A symbol exported and declared nowhere is an internal function a program could come to depend
on; a declaration not exported is a function a program cannot link against (a declaration
without PT_API, under -fvisibility=hidden). Either fails the test, with the names.

    test_exports.py BUILD_DIR

Python 3 standard library, nm (binutils) and cmake.
"""

import os
import re
import subprocess
import sys
import tempfile


def code_of(text):
    """The header's code: comments, preprocessor lines and C++ linkage blocks removed."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    out = []
    skipping = False
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s == "#ifdef __cplusplus":
            skipping = True
        if s.startswith("#"):
            while lines[i].rstrip().endswith("\\"):
                i += 1
            if skipping and s == "#endif":
                skipping = False
            i += 1
            continue
        if not skipping:
            out.append(line)
        i += 1
    return "\n".join(out)


def strip_attributes(s):
    """`s` without GNU __attribute__((...)) and the export macro's own text."""
    while True:
        m = re.search(r"__attribute__\s*\(\(", s)
        if not m:
            return s
        depth, j = 0, m.end() - 2
        while j < len(s):
            depth += {"(": 1, ")": -1}.get(s[j], 0)
            j += 1
            if depth == 0:
                break
        s = s[: m.start()] + " " + s[j:]


def declared(text):
    """Names of the functions and variables declared (not defined) at file scope in `text`."""
    code = code_of(text)
    names, stmt, depth = [], "", 0
    for ch in code:
        stmt += ch
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and stmt[: stmt.find("{")].rstrip().endswith(")"):
                stmt = ""  # a function's definition (static inline): nothing to link
        elif ch == ";" and depth == 0:
            s = " ".join(strip_attributes(stmt).split())
            stmt = ""
            if not s or s.startswith("typedef") or "{" in s:
                continue  # types: no symbol
            m = re.match(r"^(?:[\w\s\*]+?)\b(\w+)\s*\(", s)
            if m:
                names.append(m.group(1))  # a function; `T (*p)(...)` does not match
                continue
            m = re.match(r"^extern\b[\w\s\*]*?\b(\w+)\s*(\[[^\]]*\])?\s*;$", s)
            if m:
                names.append(m.group(1))  # a variable
    return names


def main():
    build = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="porter-exports.") as prefix:
        r = subprocess.run(["cmake", "--install", build, "--prefix", prefix],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print(r.stdout)
            print("FAIL: cmake --install")
            return 1
        headers, libs = [], []
        for root, _, files in os.walk(prefix):
            for f in files:
                path = os.path.join(root, f)
                if f.endswith(".h") and os.sep + "include" + os.sep in path:
                    headers.append(path)
                if f.startswith("libporter.so.") and not os.path.islink(path):
                    libs.append(path)
        if len(libs) != 1 or not any(h.endswith(os.sep + "porter.h") for h in headers):
            print("FAIL: the install holds %d shared libraries and %d headers" % (len(libs), len(headers)))
            return 1
        decl = {}
        for h in sorted(headers):
            with open(h) as f:
                for name in declared(f.read()):
                    decl.setdefault(name, os.path.relpath(h, prefix))
        nm = subprocess.run(["nm", "-D", "--defined-only", libs[0]], stdout=subprocess.PIPE,
                            text=True, check=True).stdout
        exported = set()
        for line in nm.splitlines():
            fields = line.split()
            if len(fields) == 3:
                exported.add(fields[2].split("@")[0])
    undeclared = sorted(exported - set(decl))
    unexported = sorted(set(decl) - exported)
    for name in undeclared:
        print("exported, declared in no installed header: %s" % name)
    for name in unexported:
        print("declared in %s, not exported: %s" % (decl[name], name))
    print("%d symbols exported, %d declared in %d installed headers; %d undeclared, %d unexported"
          % (len(exported), len(decl), len(headers), len(undeclared), len(unexported)))
    return 1 if undeclared or unexported else 0


if __name__ == "__main__":
    sys.exit(main())
