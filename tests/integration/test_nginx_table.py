"""docs/nginx.md and the conf loader agree: the directives the page says porter does not support
are exactly those the loader's table of nginx's names holds (server/conf/nginx.c), none of them is
one of porter's own directives, and `porter -t` answers each of them with "not supported by
porter; see docs/nginx.md" at its place."""

import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, run_porter

SOURCE = harness.SOURCE_DIR
ROW = re.compile(r"^\| `([a-z0-9_]+)`(?:, `[a-z0-9_]+`)* \| ([^|]+?) \|$", re.M)


def doc_rows():
    with open(os.path.join(SOURCE, "docs", "nginx.md")) as f:
        text = f.read()
    return {name: status for name, status in ROW.findall(text)}


def loader_names():
    with open(os.path.join(SOURCE, "server", "conf", "nginx.c")) as f:
        text = f.read()
    table = text[text.index("unsupported[] = {"):text.index("};")]
    return set(re.findall(r'"([a-z0-9_]+)"', table))


def porter_directives():
    names = set()
    folder = os.path.join(SOURCE, "server", "conf")
    for name in os.listdir(folder):
        if name.endswith(".c") and name != "nginx.c":
            with open(os.path.join(folder, name)) as f:
                names |= set(re.findall(r'^\s*\{"([a-z0-9_]+)", C_', f.read(), re.M))
    return names


class NginxTable(PorterTestCase):
    def test_doc_and_loader_agree(self):
        rows = doc_rows()
        self.assertGreater(len(rows), 200, "docs/nginx.md's table was not read")
        for name, status in rows.items():
            self.assertRegex(status, r"^(same|differs|not supported)\b",
                             "%s: a row says same, differs or not supported" % name)
        unsupported = {n for n, s in rows.items() if s.startswith("not supported")}
        loader = loader_names()
        self.assertEqual(sorted(unsupported - loader), [],
                         "docs/nginx.md says not supported, the loader does not know them")
        self.assertEqual(sorted(loader - unsupported), [],
                         "the loader says not supported, docs/nginx.md does not")
        self.assertEqual(sorted(loader & porter_directives()), [],
                         "porter has these directives: they are not \"not supported\"")

    def test_each_is_reported_at_its_place(self):
        d = tempfile.mkdtemp(prefix="porter-itest-nginx-")
        self.addCleanup(shutil.rmtree, d, True)
        names = sorted(loader_names())
        # a check keeps 100 errors at most: the names in a few files
        for start in range(0, len(names), 80):
            chunk = names[start:start + 80]
            path = os.path.join(d, "nginx.conf")
            with open(path, "w") as f:
                f.write("server { listen 127.0.0.1:0; }\n")
                for name in chunk:
                    f.write("  %s x;\n" % name)
            code, out, err = run_porter(["-t", "-c", path, "-p", d])
            harness.assert_clean_output(out + err)
            self.assertEqual(code, 1)
            for i, name in enumerate(chunk):
                self.assertIn('%s:%d:3: "%s" directive is not supported by porter; see '
                              'docs/nginx.md' % (path, i + 2, name), err)


if __name__ == "__main__":
    harness.main()
