"""The first five minutes: what `make run` serves, as it serves it. conf/porter.conf passes
`porter -t` as it is; run from a copy of the tree (its listen on port 0), its front page
(htdocs/index.html) says what serves it, where the conf is and how to change it, and every link
on it answers; a missing page gets htdocs/404.html with a 404; the status page answers the local
machine (127.0.0.1) and refuses another address (127.0.0.2).

The status page's HTML shows every field its JSON has, with the same values (read between two
JSON reads on one connection): workers, servers (requests by status class and method, duration
histograms), upstream servers, zones; and fits a 1280 px window: a headless Chromium (Debian's
`chromium`) loads it in a 1280 px frame and measures the document, and takes a screenshot of it
at 1280x800. Loaded in Chromium, the page follows the JSON: requests made after it loaded show
in its cells, updated in place, with the JSON's values. Without chromium these tests skip, unless
CI is set: there they fail.
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
                    "idle": "connections.idle", "parked": "connections.parked",
                    "lingering": "connections.lingering", "draining": "connections.draining",
                    "accepted": "accepted", "handled": "handled", "rejected": "rejected"},
    "Requests": {"requests": "requests", "invalid": "invalid_requests", "bytes in": "bytes_in",
                 "bytes out": "bytes_out", "custodians": "custodians", "timers": "timers"},
    "File cache": {"hits": "file_cache.hits", "misses": "file_cache.misses",
                   "bytes": "file_cache.bytes"},
    "HTTP/2": {"connections": "http2.connections", "active": "http2.active",
               "streams": "http2.streams", "resets received": "http2.resets_received",
               "floods refused": "http2.floods", "protocol errors": "http2.protocol_errors"},
    "TLS": {"handshakes": "tls.handshakes", "resumed": "tls.resumed", "failed": "tls.failed"},
}
# The servers' tables: a row per server, named in the first column. A histogram's table has a
# column per bucket bound (the JSON's "buckets"), then "all" (its count) and "sum (s)".
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
           "other")
SERVER_COLUMNS = {
    "Servers": dict([("requests", "requests"), ("bytes in", "bytes_in"),
                     ("bytes out", "bytes_out")] + [(c, "statuses." + c) for c in CLASSES]),
    "Methods": {m: "methods." + m for m in METHODS},
}
UPSTREAM_COLUMNS = dict([("state", "state"), ("active", "active"), ("failures", "failures"),
                         ("checks passed", "health_checks.passed"),
                         ("checks failed", "health_checks.failed")] +
                        [(c, "responses." + c) for c in CLASSES])
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
    location /app/ { proxy_pass http://application-servers; }
}
upstream application-servers { server 127.0.0.1:1; server [::1]:1; }
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
        for path in ("/a.txt", "/a.txt", "/limited/b.txt", "/nothing", "/app/x"):
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
        # The servers, the upstream servers and their histograms.
        self.check_series(page, first, second, within)
        # upstream_state (the upstream blocks' servers: up, down, checks) is in the JSON only
        # so far; docs/operations.md says so.
        self.assertEqual(set(first) - {"workers", "total", "zones", "servers", "upstreams",
                                       "buckets", "upstream_state"}, {"version", "pid"},
                         "top-level JSON fields the HTML does not show")

    def check_series(self, page, first, second, within):
        def rows_by_name(title, names):
            rows = page.tables[title]
            head, body = rows[0], rows[1:]
            self.assertEqual(len(body), len(names), title)
            for row, name in zip(body, names):
                self.assertEqual(tuple(row[:len(name)]), name, title)
            return head, [dict(zip(head, row)) for row in body]

        def number(text):
            return float(text) if "." in text else int(text)

        bounds = first["buckets"]
        self.assertEqual(bounds, sorted(bounds))
        heads = ["\u2264%gms" % (b * 1000) if b < 1 else "\u2264%gs" % b for b in bounds]

        def check_histogram(what, cells, h1, h2):
            self.assertEqual(len(h1["buckets"]), len(bounds) + 1, what)
            self.assertEqual(h1["buckets"], sorted(h1["buckets"]), "%s: not cumulative" % what)
            self.assertEqual(h1["buckets"][-1], h1["count"], "%s: +Inf is not the count" % what)
            for i, head in enumerate(heads):
                within("%s: %s" % (what, head), number(cells[head]), h1["buckets"][i],
                       h2["buckets"][i])
            within("%s: all" % what, number(cells["all"]), h1["count"], h2["count"])
            within("%s: sum" % what, number(cells["sum (s)"]), h1["sum"], h2["sum"])

        names = [(s["name"],) for s in first["servers"]]
        self.assertEqual(names, [(s["name"],) for s in second["servers"]])
        self.assertTrue(any(s["requests"] for s in first["servers"]), first["servers"])
        for title, columns in SERVER_COLUMNS.items():
            head, rows = rows_by_name(title, names)
            self.assertEqual(set(head), {"server"} | set(columns), title)
            for s1, s2, cells in zip(first["servers"], second["servers"], rows):
                f1, f2 = flatten(s1), flatten(s2)
                for col, field in columns.items():
                    within("%s: %s of %s" % (title, col, s1["name"]), number(cells[col]),
                           f1[field], f2[field])
        head, rows = rows_by_name("Request durations", names)
        self.assertEqual(head, ["server"] + heads + ["all", "sum (s)"])
        for s1, s2, cells in zip(first["servers"], second["servers"], rows):
            self.assertEqual(set(s1), {"name", "requests", "statuses", "methods", "bytes_in",
                                       "bytes_out", "duration"}, "server fields")
            self.assertEqual(s1["requests"], s1["duration"]["count"])
            check_histogram("durations of " + s1["name"], cells, s1["duration"], s2["duration"])

        # The upstream servers: those of the conf's upstream, each attempt counted; what the
        # upstream side does not report is neither in the JSON nor in the cells.
        names = [(u["upstream"], u["server"]) for u in first["upstreams"]]
        self.assertEqual(names, [("application-servers", "127.0.0.1:1"),
                                 ("application-servers", "[::1]:1")])
        head, rows = rows_by_name("Upstreams", names)
        self.assertEqual(set(head), {"upstream", "server"} | set(UPSTREAM_COLUMNS))
        self.assertEqual(sum(u["responses"]["5xx"] for u in first["upstreams"]), 2,
                         "the one request to /app/ tried both servers: %r" % first["upstreams"])
        for u1, u2, cells in zip(first["upstreams"], second["upstreams"], rows):
            f1, f2 = flatten(u1), flatten(u2)
            for col, field in UPSTREAM_COLUMNS.items():
                if field in f1:
                    within("Upstreams: %s" % col, number(cells[col]), f1[field], f2[field])
                else:
                    self.assertEqual(cells[col], "", "Upstreams: %s is not reported" % col)
        head, rows = rows_by_name("Upstream response times", names)
        self.assertEqual(head, ["upstream", "server"] + heads + ["all", "sum (s)"])
        for u1, u2, cells in zip(first["upstreams"], second["upstreams"], rows):
            self.assertLessEqual(set(u1) - {"state", "active", "failures", "health_checks"},
                                 {"upstream", "server", "responses", "response_time"})
            self.assertEqual(sum(u1["responses"].values()), u1["response_time"]["count"])
            check_histogram("response times of " + u1["server"], cells, u1["response_time"],
                            u2["response_time"])

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
        self.assertEqual(int(got["tables"]), 12, "the page's tables: " + dom[-500:])

        shots = tempfile.mkdtemp(prefix="porter-itest-shots-")
        self.addCleanup(shutil.rmtree, shots, True)
        shot = os.path.join(shots, "status.png")
        chromium(self, exe, "--window-size=1280,800", "--hide-scrollbars",
                 "--screenshot=" + shot, self.p.url("/porter-status"))
        self.assertEqual(png_size(shot), (1280, 800))
        print("status page: %d px wide (tables to %d px) in a 1280 px window; screenshot "
              "1280x800, %d bytes" % (scroll, int(got["tables-right"]), os.path.getsize(shot)))


LIVE_CONF = """worker_processes 2;
server {
    listen 127.0.0.1:0;
    server_name site.test;
    root htdocs;
}
server {
    listen 127.0.0.1:0;
    server_name status.test;
    root htdocs;
    location = /porter-status { status; }
}
"""

# The test's own page on the status server: the status page in a frame; once it has loaded,
# the page asks the other server for SITE_PATHS (no-cors: the answers stay opaque, the requests
# are made), then waits until the frame draws them (its script refreshes every 2 s), and copies
# what the frame draws into its own DOM for --dump-dom. A frame that loaded again (not updated
# in place) says so.
LIVE_PAGE = """<!doctype html><html><body data-state="loading">
<iframe id="f" src="/porter-status" style="width:1280px;height:800px;border:0"></iframe>
<pre id="drawn"></pre><script>
var SITE = "http://127.0.0.1:%(port)d", PATHS = %(paths)s;
var f = document.getElementById("f"), started = false;
f.addEventListener("load", function () {
  if (started) { document.body.setAttribute("data-reloaded", "1"); return; }
  started = true;
  f.contentWindow.firstLoad = true;
  var doc = f.contentDocument, cell = doc.querySelector('[data-k="servers.0.requests"]');
  var before = +cell.textContent, i = 0, polls = 0;
  document.body.setAttribute("data-before", before);
  function next() {
    if (i === PATHS.length) { wait(); return; }
    fetch(SITE + PATHS[i++], {mode: "no-cors", cache: "no-store"}).then(next, next);
  }
  function wait() {
    if (+cell.textContent !== before + PATHS.length && ++polls < 100) {
      setTimeout(wait, 250); return;
    }
    document.body.setAttribute("data-in-place", f.contentWindow.firstLoad ? "1" : "0");
    document.getElementById("drawn").textContent = doc.body.innerHTML;
    document.body.setAttribute("data-state", "drawn");
  }
  next();
});
</script></body></html>
"""
# What the page asks the site for: 7 answered 200, 3 answered 404.
SITE_PATHS = ["/a.txt"] * 7 + ["/missing-%d" % i for i in range(3)]

# The status page's cells that hold gauges (a number of now, not a count so far), by the end
# of their field's name; the rest only grow.
GAUGES = re.compile(r"(^|\.)(connections\.\w+|custodians|timers|http2\.active|"
                    r"file_cache\.bytes|uptime|pid)$")


class Cells(html.parser.HTMLParser):
    """The cells of a page that name their JSON field (data-k), as {field: text}."""

    def __init__(self, text):
        super().__init__()
        self.cells, self._key = {}, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-k" in a:
            self._key = a["data-k"]
            self.cells[self._key] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self._key = None

    def handle_data(self, data):
        if self._key:
            self.cells[self._key] += data


def field(doc, key):
    for part in key.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


class StatusPageLive(PorterTestCase):
    def test_it_draws_the_json_as_it_refreshes(self):
        exe = chromium_or_skip(self)
        p = self.start_porter(LIVE_CONF, {"a.txt": b"a\n"})
        harness.wait_workers(p, 2)
        site, status = p.ports(2)

        def json_now():
            with harness.Conn(p.host, status) as c:
                return harness.get_status(p, conn=c)

        for path in ("/a.txt", "/missing"):  # before the page: what it first draws
            with harness.Conn(p.host, site) as c:
                c.send(request("GET", path, close=True))
                c.read_response()
        with open(os.path.join(p.htdocs, "live.html"), "w") as f:
            f.write(LIVE_PAGE % {"port": site, "paths": json.dumps(SITE_PATHS)})
        before = json_now()
        self.assertEqual([s["name"] for s in before["servers"]], ["site.test", "status.test"])
        self.assertEqual(before["servers"][0]["requests"], 2, before["servers"])

        dom = chromium(self, exe, "--window-size=1300,900", "--virtual-time-budget=30000",
                       "--dump-dom", "http://127.0.0.1:%d/live.html" % status)
        after = json_now()
        attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', dom[:dom.index("<iframe")]))
        self.assertEqual(attrs.get("state"), "drawn", "the frame never drew the requests:\n"
                         + dom[-1500:])
        self.assertEqual(attrs.get("before"), "2", attrs)
        self.assertEqual(attrs.get("in-place"), "1", "the page loaded again instead of updating")
        self.assertNotIn("reloaded", attrs)
        m = re.search(r'<pre id="drawn">(.*?)</pre>', dom, re.S)
        drawn = Cells(html.unescape(m.group(1))).cells
        self.assertGreater(len(drawn), 100, drawn)

        # The site's numbers: the requests made before the page, then the page's own ten, as
        # the JSON has them now (nothing asked the site since).
        site_keys = [k for k in drawn if k.startswith("servers.0.")]
        self.assertGreater(len(site_keys), 30, site_keys)
        for k in site_keys:
            want = field(after, k)
            got = float(drawn[k]) if isinstance(want, float) else int(drawn[k])
            self.assertEqual(got, want, "%s: drawn %s, the JSON has %s" % (k, drawn[k], want))
        self.assertEqual(int(drawn["servers.0.requests"]), 2 + len(SITE_PATHS))
        self.assertEqual(int(drawn["servers.0.statuses.2xx"]), 1 + 7)
        self.assertEqual(int(drawn["servers.0.statuses.4xx"]), 1 + 3)
        self.assertEqual(int(drawn["servers.0.methods.GET"]), 2 + len(SITE_PATHS))

        # Every other number: a count between what the JSON said before the page and after
        # it, a gauge a number.
        for k, text in drawn.items():
            if k in site_keys:
                continue
            if GAUGES.search(k):
                self.assertRegex(text, r"^\d+(d \d\dh \d\dm \d\ds|h \d\dm \d\ds|m \d\ds|s)?$",
                                 k)
                continue
            lo, hi = field(before, k), field(after, k)
            got = float(text) if isinstance(lo, float) else int(text)
            self.assertTrue(lo <= got <= hi, "%s: drawn %s, the JSON had %s then %s"
                            % (k, text, lo, hi))
        # The status server's own count moved while the page refreshed.
        self.assertGreater(int(drawn["servers.1.requests"]), before["servers"][1]["requests"])


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
