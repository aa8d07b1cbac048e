"""The first five minutes: what `make run` serves, as it serves it. conf/porter.conf passes
`porter -t` as it is; run from a copy of the tree (its listen on port 0), its front page
(htdocs/index.html) says what serves it, where the conf is and how to change it, and every link
on it answers; a missing page gets htdocs/404.html with a 404; the status page answers the local
machine (127.0.0.1) and refuses another address (127.0.0.2).

The status page's HTML shows every field its JSON has, with the same values (read between two
JSON reads on one connection), and fits a 1280 px window: a headless Chromium (Debian's
`chromium`) loads it in a 1280 px frame and measures the document, and takes a screenshot of it
at 1280x800. Without chromium these tests skip, unless CI is set: there they fail.
"""

import html.parser
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request, run_porter  # noqa: E402

SRC = harness.SOURCE_DIR


def read(rel):
    with open(os.path.join(SRC, rel), "rb") as f:
        return f.read()


def tree_files(rel):
    """The files under SRC/rel, as {path relative to rel: bytes}."""
    out = {}
    base = os.path.join(SRC, rel)
    for root, _, names in os.walk(base):
        for n in names:
            path = os.path.join(root, n)
            out[os.path.relpath(path, base)] = read(os.path.relpath(path, SRC))
    return out


def default_conf(workers=None):
    """conf/porter.conf as it is, but on port 0 (and with `workers` worker processes)."""
    text = read("conf/porter.conf").decode()
    text, n = re.subn(r"listen 127\.0\.0\.1:8080\b", "listen 127.0.0.1:0", text)
    assert n == 1, "conf/porter.conf no longer listens on 127.0.0.1:8080"
    if workers:
        text = re.sub(r"(?m)^worker_processes \d+;", "worker_processes %d;" % workers, text)
    return text


class Page(html.parser.HTMLParser):
    """The parts of an HTML page the tests look at: links and resources, the text, the
    element with an id, and each table under the h2 before it, as rows of cell texts."""

    def __init__(self, text):
        super().__init__()
        self.links, self.resources, self.lang, self.title = [], [], None, ""
        self.tables, self.heading, self.text = {}, None, ""
        self._in, self._cell, self._row, self._table = [], None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._in.append(tag)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag in ("link", "script", "img", "iframe") and (a.get("href") or a.get("src")):
            self.resources.append(a.get("href") or a.get("src"))
        if tag == "h2":
            self.heading = ""
        if tag == "table":
            self._table = []
            self.tables[self.heading] = self._table
        if tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text += data
        if self._in and self._in[-1] == "title":
            self.title += data
        if self._in and self._in[-1] == "h2":
            self.heading += data
        if self._cell is not None:
            self._cell += data


def chromium_or_skip(test):
    path = shutil.which("chromium")
    if path:
        return path
    if os.environ.get("CI"):
        test.fail("chromium is not installed (scripts/install-deps.sh test installs it), and CI "
                  "is set: the status page's width must be checked there")
    test.skipTest("chromium is not installed (scripts/install-deps.sh test installs it)")


def chromium(test, exe, *args):
    """Runs a headless Chromium with its own profile; returns its stdout."""
    profile = tempfile.mkdtemp(prefix="porter-itest-chromium-")
    test.addCleanup(shutil.rmtree, profile, True)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", "--disable-background-networking",
           "--user-data-dir=" + profile] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    test.assertEqual(r.returncode, 0, "%s\n%s" % (cmd, r.stderr[-2000:]))
    return r.stdout


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", head
    return struct.unpack(">II", head[16:24])


class DefaultConf(PorterTestCase):
    def test_it_passes_porter_t_as_it_is(self):
        code, out, err = run_porter(["-t", "-p", SRC, "-c", "conf/porter.conf"], cwd=SRC)
        self.assertEqual(code, 0, out + err)
        self.assertIn("test is successful", err)


class DefaultSite(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter(default_conf(), tree_files("htdocs"),
                                   extra={"docs/" + k: v for k, v in tree_files("docs").items()})

    def test_front_page_says_what_serves_it_and_how_to_change_it(self):
        r = self.p.get("/")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, read("htdocs/index.html"))
        page = Page(r.body.decode())
        self.assertEqual(page.lang, "en")
        self.assertTrue(page.title.strip())
        text = " ".join(page.text.split())
        for said in ("porter", "conf/porter.conf", "porter -t -c conf/porter.conf", "SIGHUP",
                     "make run", "htdocs/"):
            self.assertIn(said, text)
        # Its version comes from the Server header (what the page's script shows).
        self.assertRegex(r.header("Server"), r"^porter/\d+\.\d+\.\d+$")
        self.assertIn("/porter-status", page.links)
        self.assertTrue(any(h.startswith("/docs/") for h in page.links), page.links)
        self.assertLess(len(r.body), 8 * 1024, "the front page is meant to stay small")

    def test_every_link_and_resource_is_here_and_answers(self):
        for name in ("/", "/404.html"):
            page = Page(self.p.get(name).body.decode())
            for ref in page.links + page.resources:
                with self.subTest(page=name, ref=ref):
                    self.assertTrue(ref.startswith("/") and not ref.startswith("//"),
                                    "%s points off this server: %s" % (name, ref))
                    self.assertStatus(self.p.get(ref), 200)

    def test_missing_page_gets_404_html(self):
        r = self.p.get("/no/such/page")
        self.assertStatus(r, 404)
        self.assertEqual(r.body, read("htdocs/404.html"))
        self.assertIn("error_page 404 /404.html", " ".join(Page(r.body.decode()).text.split()))

    def test_status_page_answers_this_machine_only(self):
        r = self.p.get("/porter-status")
        self.assertStatus(r, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/html"), r)
        self.assertEqual(harness.get_status(self.p)["pid"], self.p.pid)
        # 127.0.0.2 is this machine too, but not the address the conf allows.
        with harness.connect_from(self.p.host, self.p.port, "127.0.0.2") as c:
            c.send(request("GET", "/porter-status?format=json"))
            self.assertStatus(c.read_response(), 403)


# The HTML's tables (under their h2) and columns, and the JSON field each shows. A JSON field
# no column names fails test_html_shows_every_json_field.
WORKER_COLUMNS = {
    "Connections": {"pid": "pid", "uptime": "uptime", "active": "connections.active",
                    "reading": "connections.reading", "writing": "connections.writing",
                    "idle": "connections.idle", "lingering": "connections.lingering",
                    "accepted": "accepted", "handled": "handled", "rejected": "rejected"},
    "Requests": {"requests": "requests", "invalid": "invalid_requests", "bytes in": "bytes_in",
                 "bytes out": "bytes_out", "custodians": "custodians", "timers": "timers"},
    "File cache": {"hits": "file_cache.hits", "misses": "file_cache.misses",
                   "bytes": "file_cache.bytes"},
    "HTTP/2": {"connections": "http2.connections", "active": "http2.active",
               "streams": "http2.streams", "resets received": "http2.resets_received",
               "floods refused": "http2.floods", "protocol errors": "http2.protocol_errors"},
}
ZONE_COLUMNS = {
    "Zones": {"zone": "name", "kind": "kind", "entries": "entries", "capacity": "capacity",
              "size": "size", "full": "full", "evicted": "evicted"},
    "Zone counters": {"zone": "name", "requests": "requests", "active": "active",
                      "delayed": "delayed", "rejected": "rejected",
                      "delayed (dry run)": "delayed_dry_run",
                      "rejected (dry run)": "rejected_dry_run"},
}

STATUS_CONF = """worker_processes 2;
limit_req_zone $binary_remote_addr zone=perip:1m rate=100r/s;
limit_conn_zone $binary_remote_addr zone=conns:64k;
server {
    listen 127.0.0.1:0 http2;
    root htdocs;
    location = /porter-status { status; }
    location /limited/ { limit_req zone=perip burst=10; limit_conn conns 4; }
}
"""


def flatten(obj, prefix=""):
    out = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def seconds(text):
    """The status page's uptime ("1h 02m 03s") in seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([dhms])", text)
    assert parts and "".join(a + b for a, b in parts) == text.replace(" ", ""), text
    return sum(int(n) * units[u] for n, u in parts)


class StatusPage(PorterTestCase):
    def setUp(self):
        self.p = self.start_porter(STATUS_CONF, {"a.txt": b"a\n", "limited/b.txt": b"b\n"})
        harness.wait_workers(self.p, 2)
        for path in ("/a.txt", "/a.txt", "/limited/b.txt", "/nothing"):
            self.p.get(path)

    def read_both(self):
        """JSON, HTML, JSON, on one connection (one worker)."""
        with self.p.connect() as c:
            first = harness.get_status(self.p, conn=c)
            c.send(request("GET", "/porter-status"))
            r = c.read_response()
            self.assertStatus(r, 200)
            second = harness.get_status(self.p, conn=c)
        return first, r.body.decode(), second

    def test_html_shows_every_json_field(self):
        first, text, second = self.read_both()
        page = Page(text)
        self.assertEqual(page.lang, "en")
        for title in list(WORKER_COLUMNS) + list(ZONE_COLUMNS):
            self.assertIn(title, page.tables, "no table under <h2>%s</h2>" % title)

        def within(what, shown, a, b):
            if isinstance(a, str):
                self.assertEqual(shown, a, what)
                self.assertEqual(a, b, what)
                return
            lo, hi = min(a, b), max(a, b)
            self.assertTrue(lo <= shown <= hi, "%s: the HTML shows %s, the JSON %s then %s"
                            % (what, shown, a, b))

        # Every worker's row of every table, and the totals.
        covered = {"slot", "self"}
        for title, columns in WORKER_COLUMNS.items():
            rows = page.tables[title]
            head, body = rows[0], rows[1:]
            self.assertEqual(head[0], "worker")
            self.assertEqual(set(head[1:]), set(columns), title)
            self.assertEqual(len(body), len(first["workers"]) + 1, title)
            for w1, w2, row in zip(first["workers"] + [first["total"]],
                                   second["workers"] + [second["total"]], body):
                cells = dict(zip(head, row))
                total = "slot" not in w1
                want_name = "total" if total else "%d%s" % (
                    w1["slot"], " (this page)" if w1["self"] else "")
                self.assertEqual(row[0], want_name, title)
                f1, f2 = flatten(w1), flatten(w2)
                for col, field in columns.items():
                    covered.add(field)
                    if total and field in ("pid", "uptime"):
                        self.assertEqual(cells[col], "", "%s: total %s" % (title, col))
                        continue
                    shown = cells[col]
                    shown = seconds(shown) if field == "uptime" else int(shown)
                    within("%s: %s of %s" % (title, col, row[0]), shown, f1[field], f2[field])
        # The fields of the JSON's workers (and totals) each have a column.
        every = set()
        for w in first["workers"] + [first["total"]]:
            every |= set(flatten(w))
        self.assertEqual(every - covered, set(), "JSON fields the HTML does not show")

        # The zones, both tables.
        self.assertEqual(len(first["zones"]), 2)
        zone_fields = set()
        for title, columns in ZONE_COLUMNS.items():
            rows = page.tables[title]
            head, body = rows[0], rows[1:]
            self.assertEqual(set(head), set(columns), title)
            self.assertEqual(len(body), len(first["zones"]))
            for z1, z2, row in zip(first["zones"], second["zones"], body):
                cells = dict(zip(head, row))
                for col, field in columns.items():
                    zone_fields.add(field)
                    shown = cells[col] if isinstance(z1[field], str) else int(cells[col])
                    within("%s: %s of %s" % (title, col, z1["name"]), shown, z1[field],
                           z2[field])
        self.assertEqual(set(first["zones"][0]) - zone_fields, set(),
                         "zone fields the HTML does not show")

        # The version and the answering process.
        self.assertIn("porter %s" % first["version"], page.text)
        self.assertIn("pid %d" % first["pid"], page.text)
        self.assertEqual(set(first) - {"workers", "total", "zones"}, {"version", "pid"},
                         "top-level JSON fields the HTML does not show")

    def test_fits_a_1280_px_window(self):
        exe = chromium_or_skip(self)
        # A page of the test's own that shows the status page in a frame 1280 px wide, then
        # writes what the frame's document measures into its own DOM.
        measure = (
            "<!doctype html><html><body style=\"margin:0\">"
            "<iframe id=\"f\" src=\"/porter-status\" style=\"width:1280px;height:800px;"
            "border:0\"></iframe><script>"
            "document.getElementById('f').addEventListener('load', function () {"
            "  var d = this.contentDocument.documentElement;"
            "  document.body.setAttribute('data-scroll-width', d.scrollWidth);"
            "  document.body.setAttribute('data-client-width', d.clientWidth);"
            "  var right = 0;"
            "  this.contentDocument.querySelectorAll('table').forEach(function (t) {"
            "    right = Math.max(right, t.getBoundingClientRect().right); });"
            "  document.body.setAttribute('data-tables-right', Math.ceil(right));"
            "  document.body.setAttribute('data-tables',"
            "    this.contentDocument.querySelectorAll('table').length);"
            "});</script></body></html>\n")
        with open(os.path.join(self.p.htdocs, "measure.html"), "w") as f:
            f.write(measure)
        dom = chromium(self, exe, "--window-size=1280,800", "--virtual-time-budget=10000",
                       "--dump-dom", self.p.url("/measure.html"))
        got = dict(re.findall(r'data-([a-z-]+)="(\d+)"', dom))
        self.assertIn("scroll-width", got, "the frame did not load:\n" + dom[-1000:])
        scroll, client = int(got["scroll-width"]), int(got["client-width"])
        self.assertLessEqual(scroll, client, "the status page is %d px wide in a 1280 px window "
                             "(%d px of it visible)" % (scroll, client))
        self.assertLessEqual(client, 1280)
        self.assertLessEqual(int(got["tables-right"]), client)
        self.assertEqual(int(got["tables"]), 6, "the page's tables: " + dom[-500:])

        shots = tempfile.mkdtemp(prefix="porter-itest-shots-")
        self.addCleanup(shutil.rmtree, shots, True)
        shot = os.path.join(shots, "status.png")
        chromium(self, exe, "--window-size=1280,800", "--hide-scrollbars",
                 "--screenshot=" + shot, self.p.url("/porter-status"))
        self.assertEqual(png_size(shot), (1280, 800))
        print("status page: %d px wide (tables to %d px) in a 1280 px window; screenshot "
              "1280x800, %d bytes" % (scroll, int(got["tables-right"]), os.path.getsize(shot)))


class FrontPageInABrowser(PorterTestCase):
    def test_it_names_the_version_serving_it(self):
        exe = chromium_or_skip(self)
        p = self.start_porter(default_conf(), tree_files("htdocs"),
                              extra={"docs/" + k: v for k, v in tree_files("docs").items()})
        server = p.get("/").header("Server")  # porter/VERSION
        dom = chromium(self, exe, "--window-size=1280,800", "--virtual-time-budget=10000",
                       "--dump-dom", p.url("/"))
        m = re.search(r'<strong id="server">([^<]*)</strong>', dom)
        self.assertTrue(m, dom[:1000])
        self.assertEqual(m.group(1), server.replace("/", " "))
        shots = tempfile.mkdtemp(prefix="porter-itest-shots-")
        self.addCleanup(shutil.rmtree, shots, True)
        shot = os.path.join(shots, "index.png")
        chromium(self, exe, "--window-size=1280,800", "--hide-scrollbars",
                 "--virtual-time-budget=10000", "--screenshot=" + shot, p.url("/"))
        self.assertEqual(png_size(shot), (1280, 800))
        print("front page: screenshot 1280x800, %d bytes" % os.path.getsize(shot))


if __name__ == "__main__":
    harness.main()
