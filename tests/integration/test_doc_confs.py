"""Every configuration the documentation shows works as written: each ```nginx block of
README.md and docs/*.md passes `porter -t`, so the docs cannot drift from what porter accepts.

Each block is checked in a temporary prefix holding the files it names: the directories of
`root` and `alias`, an empty file for `auth_basic_user_file` and `include` (a glob is left
alone), the directories of log and pid files, and for the TLS directives a test certificate and
key (test_tls.py's: ECDSA where the file's name says "ecdsa" or "ec", RSA otherwise). A path the
block writes absolute (`/srv/files/`, `/etc/porter/ca.pem`) is made under the prefix and the
block checked with it pointing there; that is the only change made to a block's text.

The rule for fragments: a block is checked as it stands, as a whole porter.conf. If porter says
it lacks its context (a directive "is not allowed here", or there is 'no "server" block'), it is
checked again followed by an empty `server { }` (directives of the top level: zones, formats),
then inside `server { ... }`, then inside `server { location / { ... } }`; the first context it
passes in is its own. Any other error fails the block at once, with porter's messages and the
block's file and line. A block that is not a configuration (a directive's synopsis with [optional]
parts) belongs in a plain ``` block, not an nginx one.
"""

import os
import re
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import run_porter  # noqa: E402
import test_tls  # noqa: E402

SRC = harness.SOURCE_DIR
FENCE = re.compile(r"^```nginx[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)

# Directives whose first argument is a path, and what it names there.
DIRS = {"root", "alias"}
FILES = {"auth_basic_user_file", "include"}
PARENTS = {"access_log", "error_log", "pid"}
CERTS = {"ssl_certificate", "proxy_ssl_certificate"}
KEYS = {"ssl_certificate_key", "proxy_ssl_certificate_key"}
CAS = {"ssl_trusted_certificate", "ssl_client_certificate", "proxy_ssl_trusted_certificate"}

ELSEWHERE = re.compile(r'is not allowed here|no "server" block')
WRAPPINGS = [("as it stands", "{}"), ("before a server", "{}\nserver {{\n}}\n"),
             ("in a server", "server {{\n{}\n}}\n"),
             ("in a location", "server {{\n    location / {{\n{}\n    }}\n}}\n")]


def doc_blocks():
    """(file relative to SRC, line of the fence, text) of every ```nginx block."""
    names = ["README.md"] + sorted("docs/" + n for n in os.listdir(os.path.join(SRC, "docs"))
                                   if n.endswith(".md"))
    out = []
    for name in names:
        with open(os.path.join(SRC, name)) as f:
            text = f.read()
        for m in FENCE.finditer(text):
            out.append((name, text.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


def statements(text):
    """Each directive of `text` as its list of words (quotes removed), nesting ignored."""
    out, words, word, quote, i = [], [], None, None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and i + 1 < len(text):
                word += text[i + 1]
                i += 2
                continue
            if ch == quote:
                quote = None
            else:
                word += ch
        elif ch in "\"'":
            quote, word = ch, word or ""
        elif ch == "#" and word is None:
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif ch.isspace() or ch in ";{}":
            if word is not None:
                words.append(word)
                word = None
            if ch in ";{}" and words:
                out.append(words)
                words = []
        else:
            word = (word or "") + ch
        i += 1
    return out


class Prefix:
    """A temporary prefix with what a block names; `text` is the block as porter reads it."""

    def __init__(self, text):
        self.dir = tempfile.mkdtemp(prefix="porter-itest-docs-")
        certs = test_tls.certificates()
        for words in statements(text):
            name, args = words[0], words[1:]
            if not args or name not in DIRS | FILES | PARENTS | CERTS | KEYS | CAS:
                continue  # not a path (a location's path is not moved)
            path = args[0]
            if name in PARENTS and (path in ("off", "stderr") or path.startswith("syslog:")):
                continue
            where = self.place(path)
            if where != path:  # this directive's argument, not the same text elsewhere
                text = re.sub(r"(\b%s\s+[\"']?)%s(?=[\"';\s])" % (name, re.escape(path)),
                              lambda m: m.group(1) + where, text)
            if name in DIRS:
                os.makedirs(self.full(where), exist_ok=True)
            elif name in PARENTS:
                os.makedirs(os.path.dirname(self.full(where)) or self.dir, exist_ok=True)
            elif name == "include" and any(c in where for c in "*?["):
                continue
            elif name in FILES:
                self.write(where, b"")
            elif name in CERTS | KEYS | CAS:
                kind = "a-ec" if re.search(r"ecdsa|\bec\b|[-_.]ec[-_.]", os.path.basename(where)) \
                    else "a-rsa"
                data = certs["all.pem"] if name in CAS else \
                    certs[kind + (".key" if name in KEYS else ".crt")]
                self.write(where, data)
        self.text = text

    def place(self, path):
        """An absolute path moves under the prefix; a relative one is the prefix's already."""
        return self.dir + path if path.startswith("/") else path

    def full(self, path):
        return path if os.path.isabs(path) else os.path.join(self.dir, path)

    def write(self, path, data):
        full = self.full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)

    def check(self, conf):
        with open(os.path.join(self.dir, "porter.conf"), "w") as f:
            f.write(conf)
        code, out, err = run_porter(["-t", "-p", self.dir, "-c", "porter.conf"], cwd=self.dir)
        return code, out + err

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class DocConfs(unittest.TestCase):
    def test_every_block_is_found_and_closed(self):
        # Each line opening an nginx block has a block, ended by its own fence before the next
        # one opens (a fence lost in a merge would swallow the prose after it).
        opened = 0
        for name in ["README.md"] + ["docs/" + n for n in os.listdir(os.path.join(SRC, "docs"))
                                     if n.endswith(".md")]:
            with open(os.path.join(SRC, name)) as f:
                opened += sum(1 for line in f if line.rstrip() == "```nginx")
        blocks = doc_blocks()
        self.assertGreater(opened, 0)
        self.assertEqual(len(blocks), opened)
        for name, line, block in blocks:
            self.assertNotIn("```", block, "%s:%d: a block holds a fence" % (name, line))

    def test_every_block_passes_porter_t(self):
        for name, line, block in doc_blocks():
            with self.subTest(block="%s:%d" % (name, line)):
                p = Prefix(block)
                self.addCleanup(p.remove)
                tried = []
                for how, wrap in WRAPPINGS:
                    code, output = p.check(wrap.format(p.text))
                    tried.append("%s: exit %d\n%s" % (how, code, output))
                    if code == 0 or not ELSEWHERE.search(output):
                        break
                self.assertEqual(code, 0, "%s:%d does not pass porter -t:\n%s\n--- the block:\n%s"
                                 % (name, line, "\n".join(tried), block))


if __name__ == "__main__":
    harness.main()
