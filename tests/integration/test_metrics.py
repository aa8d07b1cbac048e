"""The metrics, `location = /metrics { metrics; }`: Prometheus' text format (0.0.4), or
OpenMetrics 1.0 when the Accept header asks for it first, read by a strict parser written here
(names, HELP and TYPE before their samples, escapes, label syntax, families whole, no series
twice, histograms' buckets cumulative to +Inf = _count; OpenMetrics' family names and # EOF) and,
when Debian's python3-prometheus-client is there, by its parsers too. With two workers, every
counter is the sum of both: the requests a test sent (7 GETs answered 200 and 3 answered 404 are
exactly those increments), their bytes to the byte, the proxy's attempts per upstream server,
TLS handshakes and resumptions, HTTP/2 streams, limit_req refusals, requests refused as
malformed. A reload starts the counts again, and the replaced workers' connections show as
draining until they are done. `metrics` takes no argument and goes in a location only.
"""

import math
import os
import re
import signal
import socket
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request, run_porter  # noqa: E402
from test_proxy import Backend  # noqa: E402
import test_tls  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families as client_text
    from prometheus_client.openmetrics.parser import \
        text_string_to_metric_families as client_openmetrics
except ImportError:  # an interpreter of its own (pyenv): Debian's package is pure Python
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families as client_text
        from prometheus_client.openmetrics.parser import \
            text_string_to_metric_families as client_openmetrics
    except ImportError:
        client_text = client_openmetrics = None

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# What Prometheus 2.x sends.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")

# ---- a strict parser of the exposition ----

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z|[+-]Inf\Z|NaN\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
OM_TYPES = {"counter", "gauge", "histogram", "gaugehistogram", "stateset", "info", "summary",
            "unknown"}
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"),
            "info": ("_info",)}


class Invalid(AssertionError):
    pass


class Family:
    def __init__(self, name):
        self.name, self.type, self.help, self.samples = name, None, None, []

    def values(self, sample_name=None, **labels):
        """{tuple of the other labels' values: value} of the samples matching `labels`."""
        out = {}
        for name, ls, v in self.samples:
            if sample_name and name != sample_name:
                continue
            if all(ls.get(k) == w for k, w in labels.items()):
                out[tuple(sorted((k, w) for k, w in ls.items() if k not in labels))] = v
        return out


def unescape(text, allowed, what):
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 == len(text) or text[i + 1] not in allowed:
                raise Invalid("%s: a bad escape in %r" % (what, text))
            out.append({"n": "\n"}.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if c == "\n":
            raise Invalid("%s: a newline in %r" % (what, text))
        out.append(c)
        i += 1
    return "".join(out)


def parse_labels(text, i, where):
    """Parses '{a="x",b="y"}' from text[i] (at '{'); returns (labels, index after '}')."""
    labels = {}
    i += 1
    if text[i:i + 1] == "}":
        return labels, i + 1
    while True:
        m = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"").match(text, i)
        if not m:
            raise Invalid("%s: a bad label at %r" % (where, text[i:]))
        name = m.group(1)
        if name.startswith("__"):
            raise Invalid("%s: label %s is reserved" % (where, name))
        j = m.end()
        value = []
        while True:
            if j >= len(text):
                raise Invalid("%s: unterminated label value" % where)
            if text[j] == "\\":
                value.append(text[j:j + 2])
                j += 2
                continue
            if text[j] == '"':
                break
            value.append(text[j])
            j += 1
        if name in labels:
            raise Invalid("%s: label %s twice" % (where, name))
        labels[name] = unescape("".join(value), '\\"n', where)
        i = j + 1
        if text[i:i + 1] == "}":
            return labels, i + 1
        if text[i:i + 1] != ",":
            raise Invalid("%s: expected , or } at %r" % (where, text[i:]))
        i += 1
        if text[i:i + 1] == "}":  # a trailing comma: 0.0.4 takes it, porter writes none
            raise Invalid("%s: a trailing comma" % where)


def parse(text, om=False):
    """Parses an exposition strictly; returns {family name: Family}."""
    if not text.endswith("\n"):
        raise Invalid("the exposition does not end with a newline")
    lines = text.split("\n")[:-1]
    if om:
        if lines[-1:] != ["# EOF"]:
            raise Invalid("no # EOF at the end: %r" % lines[-3:])
        lines = lines[:-1]
    families, done, series = {}, set(), set()
    current = None
    for no, line in enumerate(lines, 1):
        where = "line %d (%r)" % (no, line)
        if line == "":
            raise Invalid("%s: an empty line" % where)
        if line.startswith("#"):
            m = re.match(r"# (HELP|TYPE) (\S+) (.+)\Z", line)
            if not m:
                raise Invalid("%s: not a HELP or TYPE line" % where)
            kind, name, rest = m.groups()
            if not METRIC_NAME.match(name):
                raise Invalid("%s: invalid name" % where)
            if name in done:
                raise Invalid("%s: family %s again after others" % (where, name))
            fam = families.get(name)
            if fam is None:
                fam = families[name] = Family(name)
            if current is not None and current is not fam:
                done.add(current.name)
            current = fam
            if fam.samples:
                raise Invalid("%s: %s after its samples" % (where, kind))
            if kind == "TYPE":
                if fam.type:
                    raise Invalid("%s: TYPE twice" % where)
                if rest not in (OM_TYPES if om else TYPES):
                    raise Invalid("%s: unknown type" % where)
                if om and rest == "counter" and name.endswith("_total"):
                    raise Invalid("%s: an OpenMetrics counter family ends in _total" % where)
                fam.type = rest
            else:
                if fam.help is not None:
                    raise Invalid("%s: HELP twice" % where)
                fam.help = unescape(rest, '\\n"' if om else "\\n", where)
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
        if not m:
            raise Invalid("%s: no metric name" % where)
        name, i = m.group(1), m.end()
        labels = {}
        if line[i:i + 1] == "{":
            labels, i = parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise Invalid("%s: no space before the value" % where)
        parts = line[i + 1:].split(" ")
        if len(parts) != 1:
            raise Invalid("%s: porter writes no timestamps" % where)
        if not NUMBER.match(parts[0]):
            raise Invalid("%s: invalid value %r" % (where, parts[0]))
        value = float(parts[0])
        fam = current
        if fam is None or fam.type is None:
            raise Invalid("%s: a sample before its family's TYPE" % where)
        if fam.type == "counter" and not om:
            names = [fam.name]  # porter names a counter's family as its samples, _total
        else:
            names = [fam.name + suffix for suffix in SUFFIXES.get(fam.type, ("",))]
        if name not in names:
            raise Invalid("%s: %s is not a sample of family %s (%s)" % (where, name, fam.name,
                                                                         fam.type))
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise Invalid("%s: the series again" % where)
        series.add(key)
        if fam.type == "counter" and (value < 0 or math.isnan(value)):
            raise Invalid("%s: a counter below zero" % where)
        fam.samples.append((name, labels, value))
    for fam in families.values():
        if fam.type is None or not fam.help:
            raise Invalid("family %s without TYPE or HELP" % fam.name)
        if fam.type == "histogram":
            check_histogram(fam)
    return families


def check_histogram(fam):
    groups = {}
    for name, labels, value in fam.samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            if "le" not in labels:
                raise Invalid("%s%r: a bucket without le" % (fam.name, rest))
            g["buckets"].append((labels["le"], value))
        elif "le" in labels:
            raise Invalid("%s%r: le on %s" % (fam.name, rest, name))
        elif name.endswith("_sum"):
            g["sum"] = value
        else:
            g["count"] = value
    for rest, g in groups.items():
        what = "%s%r" % (fam.name, rest)
        les = [float(le) for le, _ in g["buckets"]]
        if not g["buckets"] or g["buckets"][-1][0] != "+Inf":
            raise Invalid("%s: the last bucket is not +Inf" % what)
        if les != sorted(set(les)):
            raise Invalid("%s: bucket bounds not increasing: %r" % (what, les))
        counts = [v for _, v in g["buckets"]]
        if counts != sorted(counts):
            raise Invalid("%s: buckets not cumulative: %r" % (what, counts))
        if g["count"] is None or g["sum"] is None:
            raise Invalid("%s: no _count or _sum" % what)
        if counts[-1] != g["count"]:
            raise Invalid("%s: +Inf %s is not _count %s" % (what, counts[-1], g["count"]))
        for le, _ in g["buckets"][:-1]:
            if le != repr(float(le)):  # one spelling of each bound: "1.0", "0.005"
                raise Invalid("%s: le %r is not written as %r" % (what, le, repr(float(le))))


# ---- what porter exposes ----

FAMILIES = {
    "porter_build_info": "gauge",
    "porter_workers": "gauge",
    "porter_connections": "gauge",
    "porter_connections_parked": "gauge",
    "porter_connections_draining": "gauge",
    "porter_connections_accepted_total": "counter",
    "porter_connections_closed_total": "counter",
    "porter_connections_rejected_total": "counter",
    "porter_invalid_requests_total": "counter",
    "porter_connection_received_bytes_total": "counter",
    "porter_connection_sent_bytes_total": "counter",
    "porter_custodians": "gauge",
    "porter_timers": "gauge",
    "porter_file_cache_hits_total": "counter",
    "porter_file_cache_misses_total": "counter",
    "porter_file_cache_bytes": "gauge",
    "porter_tls_handshakes_total": "counter",
    "porter_tls_resumptions_total": "counter",
    "porter_tls_handshake_failures_total": "counter",
    "porter_http2_connections_total": "counter",
    "porter_http2_active_connections": "gauge",
    "porter_http2_streams_total": "counter",
    "porter_http2_resets_received_total": "counter",
    "porter_http2_floods_total": "counter",
    "porter_http2_protocol_errors_total": "counter",
    "porter_http_requests_total": "counter",
    "porter_http_request_duration_seconds": "histogram",
    "porter_http_received_bytes_total": "counter",
    "porter_http_sent_bytes_total": "counter",
}
UPSTREAM_FAMILIES = {
    "porter_upstream_responses_total": "counter",
    "porter_upstream_response_duration_seconds": "histogram",
}
ZONE_FAMILIES = {
    "porter_limit_requests_total": "counter",
    "porter_limit_delayed_total": "counter",
    "porter_limit_rejected_total": "counter",
    "porter_limit_active": "gauge",
    "porter_limit_zone_entries": "gauge",
    "porter_limit_zone_capacity": "gauge",
    "porter_limit_zone_full_total": "counter",
    "porter_limit_zone_evicted_total": "counter",
}

# A site, and apart from it the server the metrics are read from (so that reading them adds
# nothing to the site's numbers).
CONF = """worker_processes 2;
%(top)s
server {
    listen 127.0.0.1:0;
    server_name site.test;
    root htdocs;
%(site)s
}
server {
    listen 127.0.0.1:0;
    server_name metrics.test;
    root htdocs;
    location = /metrics { metrics; }
    location = /porter-status { status; }
}
"""
FILES = {"a.txt": b"alpha\n", "b.txt": b"bravo bravo\n"}


def raw_len(r):
    return len(r.raw_head) + 4 + len(r.body)


class MetricsCase(PorterTestCase):
    def start(self, site="", top="", **kw):
        self.p = self.start_porter(CONF % {"site": site, "top": top}, FILES, **kw)
        harness.wait_workers(self.p, 2)
        self.site, self.mport = self.p.ports(2)
        return self.p

    def scrape(self, accept=None, conn=None, method="GET"):
        """The metrics (a Response), on `conn` or a connection of their own."""
        headers = [("Accept", accept)] if accept else []
        raw = request(method, "/metrics", headers=headers, close=conn is None)
        if conn is None:
            with harness.Conn(self.p.host, self.mport) as c:
                c.send(raw)
                return c.read_response()
        conn.send(raw)
        return conn.read_response()

    def metrics(self, conn=None):
        r = self.scrape(conn=conn)
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Type"), TEXT)
        return parse(r.body.decode("utf-8"))

    def value(self, fams, name, **labels):
        """The one sample named `name` with `labels` (0 when absent)."""
        fam = fams.get(name) or fams[re.sub(r"_(sum|count|bucket)$", "", name)]
        found = fam.values(name, **labels)
        vals = [v for k, v in found.items() if k == ()]
        self.assertLessEqual(len(vals), 1, (name, labels, found))
        return vals[0] if vals else 0

    def site_get(self, path, host="site.test"):
        """GET `path` from the site on a connection of its own; the response and the request's
        bytes."""
        raw = request("GET", path, host=host, close=True)
        with harness.Conn(self.p.host, self.site) as c:
            c.send(raw)
            r = c.read_response()
        return r, raw

    def requests_of(self, fams, server="site.test"):
        return {(dict(k)["method"], dict(k)["status"]): v
                for k, v in fams["porter_http_requests_total"].values(server=server).items()}

    def wait_metric(self, name, want, **labels):
        """Waits until every worker has published `name` (once a second) and it is `want`."""
        seen = []
        harness.wait_until(lambda: seen.append(self.value(self.metrics(), name, **labels))
                           or seen[-1] == want, 5,
                           lambda: "%s%r: %r, not %r" % (name, labels, seen[-1:], want))


class Exposition(MetricsCase):
    def test_a_strict_parser_takes_it_and_it_names_every_family(self):
        self.start()
        self.site_get("/a.txt")
        r = self.scrape()
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Type"), TEXT)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(r.header("Vary"), "Accept")
        text = r.body.decode("utf-8")
        fams = parse(text)
        self.assertEqual({n: f.type for n, f in fams.items()}, FAMILIES)
        for name, fam in fams.items():
            self.assertTrue(name.startswith("porter_"), name)
            self.assertTrue(fam.samples, name)
            if fam.type == "counter":
                self.assertTrue(name.endswith("_total"), name)
        self.assertEqual(self.value(fams, "porter_workers"), 2)
        self.assertEqual(fams["porter_build_info"].samples[0][1]["version"],
                         self.p.get("/").header("Server").split("/")[1])
        self.assertEqual(set(dict(k)["state"] for k in fams["porter_connections"].values()),
                         {"reading", "writing", "idle", "lingering"})
        durations = fams["porter_http_request_duration_seconds"]
        self.assertEqual(sorted(dict(k)["server"] for k in
                                durations.values("porter_http_request_duration_seconds_count")),
                         ["metrics.test", "site.test"])
        les = [float(s[1]["le"]) for s in durations.samples
               if s[0].endswith("_bucket") and s[1]["server"] == "site.test"]
        self.assertEqual(les, [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                               10, 30, 60, math.inf])
        if client_text is None:
            self.skip_without_client()
            return
        theirs = {f.name: f.type for f in client_text(text)}
        self.assertEqual(theirs, {n.replace("_total", "") if t == "counter" else n: t
                                  for n, t in FAMILIES.items()})

    def skip_without_client(self):
        if os.environ.get("CI"):
            self.fail("python3-prometheus-client is not installed (scripts/install-deps.sh "
                      "test installs it), and CI is set")
        self.skipTest("python3-prometheus-client is not installed")

    def test_the_parser_here_refuses_what_prometheus_would(self):
        # The parser is the judge of the other tests: it must fail where the format says no.
        good = ("# HELP x_total A count.\n# TYPE x_total counter\nx_total{a=\"1\"} 3\n"
                "# HELP h Times.\n# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\n"
                "h_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n")
        parse(good)
        bad = [
            good.replace("x_total{a", "x_total{__a"),                         # reserved label
            good.replace('a="1"', 'a="1",a="2"'),                           # a label twice
            good.replace('a="1"', 'a="1\\t"'),                              # a bad escape
            good.replace('a="1"', 'a="1",'),                                # trailing comma
            good.replace("x_total{a=\"1\"} 3", "x_total{a=\"1\"} 3 1700000000"),  # timestamp
            good.replace(" 3\n", " three\n"),                               # not a number
            good.replace("h_bucket{le=\"+Inf\"} 2", "h_bucket{le=\"+Inf\"} 0"),  # not cumulative
            good.replace("h_count 2", "h_count 3"),                         # +Inf != _count
            good.replace("h_bucket{le=\"+Inf\"} 2\n", ""),                  # no +Inf
            good.replace("le=\"1.0\"", "le=\"1\""),                         # two spellings
            good.replace("# TYPE x_total counter\n", ""),                   # no TYPE
            good + "x_total{a=\"2\"} 1\n",                                  # family split
            good.replace("} 3\n", "} 3\nx_total{a=\"1\"} 4\n"),                # series twice
            good + "\n",                                                    # an empty line
            good[:-1],                                                      # no final newline
            good.replace("# TYPE x_total counter\nx_total", "x_total") + "# TYPE x_total counter\n",
        ]
        for i, text in enumerate(bad):
            with self.subTest(case=i):
                with self.assertRaises(Invalid, msg=text):
                    parse(text)
        with self.assertRaises(Invalid):
            parse(good, om=True)  # no # EOF, and counter families named with _total

    def test_openmetrics_when_the_client_asks_for_it_first(self):
        self.start()
        for accept, om in ((None, False), ("text/plain", False), ("*/*", False),
                           ("application/openmetrics-text", True),
                           ("application/openmetrics-text; version=1.0.0", True),
                           (PROMETHEUS_ACCEPT, True),
                           ("application/openmetrics-text;q=0", False),
                           ("text/plain;q=1, application/openmetrics-text;q=0.5", False),
                           ("text/plain;q=0.5, application/OpenMetrics-Text;q=0.9", True)):
            with self.subTest(accept=accept):
                r = self.scrape(accept)
                self.assertStatus(r, 200)
                self.assertEqual(r.header("Content-Type"), OPENMETRICS if om else TEXT)
                fams = parse(r.body.decode("utf-8"), om=om)
                self.assertEqual(r.body.endswith(b"\n# EOF\n"), om)
                if not om:
                    continue
                # The same families, OpenMetrics' way: counters named without _total (their
                # samples keep it), porter_build as an info.
                want = {(n[:-len("_total")] if t == "counter" else n): t
                        for n, t in FAMILIES.items()}
                want["porter_build"] = "info"
                del want["porter_build_info"]
                self.assertEqual({n: f.type for n, f in fams.items()}, want)
                self.assertEqual(self.value(fams, "porter_workers"), 2)
        if client_openmetrics is None:
            self.skip_without_client()
            return
        text = self.scrape(PROMETHEUS_ACCEPT).body.decode("utf-8")
        theirs = {f.name: f.type for f in client_openmetrics(text)}
        self.assertEqual(theirs["porter_http_requests"], "counter")
        self.assertEqual(theirs["porter_build"], "info")
        self.assertEqual(len(theirs), len(FAMILIES))

    def test_head_and_other_methods(self):
        self.start()
        with harness.Conn(self.p.host, self.mport) as c:
            c.send(request("HEAD", "/metrics", close=True))
            r = c.read_response("HEAD")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("Content-Type"), TEXT)
        self.assertEqual(self.scrape(method="POST").status, 405)


class Counters(MetricsCase):
    def test_requests_are_exactly_those_sent_summed_over_both_workers(self):
        self.start()
        before = self.metrics()
        self.assertEqual(self.requests_of(before), {})
        sent = received = 0
        # Each on a connection of its own: the two workers each take some.
        for path in ["/a.txt"] * 4 + ["/b.txt"] * 3 + ["/missing%d" % i for i in range(3)]:
            r, raw = self.site_get(path)
            self.assertStatus(r, 404 if "missing" in path else 200)
            sent += len(raw)
            received += raw_len(r)

        # Read by each worker (one answers a connection; its status JSON says which), every
        # count is the same: each adds the other's slot to its own.
        answers = {}
        for _ in range(200):
            with harness.Conn(self.p.host, self.mport) as c:
                pid = harness.get_status(self.p, conn=c)["pid"]
                if pid not in answers:
                    answers[pid] = self.metrics(conn=c)
            if len(answers) == 2:
                break
        self.assertEqual(len(answers), 2, "200 connections, all to one worker")
        for pid, fams in answers.items():
            with self.subTest(worker=pid):
                self.assertEqual(self.requests_of(fams),
                                 {("GET", "2xx"): 7, ("GET", "4xx"): 3})
                h = fams["porter_http_request_duration_seconds"]
                self.assertEqual(h.values("porter_http_request_duration_seconds_count",
                                          server="site.test"), {(): 10})
                # $request_length and $bytes_sent, as the client counted them.
                self.assertEqual(self.value(fams, "porter_http_received_bytes_total",
                                            server="site.test"), sent)
                self.assertEqual(self.value(fams, "porter_http_sent_bytes_total",
                                            server="site.test"), received)
        # Whichever worker took the site's requests, the other one's answer counted them: it
        # read its slot.

    def test_every_method_and_status_class_and_a_malformed_request(self):
        self.maxDiff = None
        self.start(site="    location = /gone { return 410; }\n"
                        "    location = /moved { return 301 /a.txt; }\n")
        sent = []
        for method, path in (("HEAD", "/a.txt"), ("POST", "/a.txt"), ("OPTIONS", "/a.txt"),
                             ("DELETE", "/a.txt"), ("PATCH", "/a.txt"), ("PUT", "/a.txt"),
                             ("PROPFIND", "/a.txt"), ("GET", "/gone"), ("GET", "/moved")):
            with harness.Conn(self.p.host, self.site) as c:
                c.send(request(method, path, host="site.test", close=True))
                sent.append((method, c.read_response(method).status))
        # Refused as malformed: once its head was read (two Hosts), and before (a TLS hello),
        # which has no method: "-" in the access log, "other" here.
        for raw in (b"GET / HTTP/1.1\r\nHost: site.test\r\nHost: b.test\r\n\r\n",
                    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 32):
            with harness.Conn(self.p.host, self.site) as c:
                c.send(raw)
                self.assertStatus(c.read_response(), 400)
        sent += [("GET", 400), ("-", 400)]
        want = {}
        for method, status in sent:
            key = (method if method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                        "OPTIONS") else "other", "%dxx" % (status // 100))
            want[key] = want.get(key, 0) + 1
        fams = self.metrics()
        self.assertEqual(self.requests_of(fams), want, sent)
        self.wait_metric("porter_invalid_requests_total", 2)

    def test_http2_streams_count_as_requests(self):
        curl = harness.tool("curl")
        if not curl:
            self.skipTest("needs curl")
        self.start(site="    http2 on;\n")
        url = "http://127.0.0.1:%d/a.txt" % self.site
        # One request per curl: curl 7.88 fails a second request on a reused prior-knowledge
        # connection (curl/curl#10634, fixed in 8.0).
        for _ in range(3):
            out = subprocess.run([curl, "-s", "--http2-prior-knowledge", "-o", "/dev/null",
                                  "-w", "%{http_version} %{http_code}", "-H", "Host: site.test",
                                  url], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.stdout, "2 200", out.stderr)
        self.assertEqual(self.requests_of(self.metrics()), {("GET", "2xx"): 3})
        self.wait_metric("porter_http2_streams_total", 3)
        self.wait_metric("porter_http2_connections_total", 3)

    def test_limit_req_refusals(self):
        self.start(top="limit_req_zone $binary_remote_addr zone=slow:1m rate=1r/m;",
                   site="    location /limited/ { limit_req zone=slow; }\n")
        statuses = [self.site_get("/limited/x")[0].status for _ in range(3)]
        self.assertEqual(statuses, [404, 503, 503])
        fams = self.metrics()
        labels = {"zone": "slow", "kind": "limit_req"}
        self.assertEqual({n: f.type for n, f in fams.items() if n.startswith("porter_limit")},
                         ZONE_FAMILIES)
        self.assertEqual(self.value(fams, "porter_limit_requests_total", **labels), 3)
        self.assertEqual(self.value(fams, "porter_limit_rejected_total", dry_run="false",
                                    **labels), 2)
        self.assertEqual(self.value(fams, "porter_limit_rejected_total", dry_run="true",
                                    **labels), 0)
        self.assertEqual(self.value(fams, "porter_limit_zone_entries", **labels), 1)
        self.assertEqual(self.requests_of(fams), {("GET", "4xx"): 1, ("GET", "5xx"): 2})


class Upstreams(MetricsCase):
    def test_each_attempt_in_its_upstream_servers_series(self):
        b = Backend()
        self.addCleanup(b.stop)
        dead = self.closed_port()
        self.start(top="upstream app { server %s; }\nupstream gone { server 127.0.0.1:%d; }"
                       % (b.address, dead),
                   site="    location /app/ { proxy_pass http://app/; }\n"
                        "    location /gone/ { proxy_pass http://gone/; }\n"
                        "    location /direct/ { proxy_pass http://%s/; }\n" % b.address)
        before = self.metrics()
        self.assertEqual({n: f.type for n, f in before.items() if n.startswith("porter_up")},
                         UPSTREAM_FAMILIES)
        for path, status in (("/app/x", 200), ("/app/slow/0.3", 200), ("/app/status/503", 503),
                             ("/gone/x", 502), ("/gone/y", 502), ("/direct/z", 200)):
            self.assertStatus(self.site_get(path)[0], status)
        fams = self.metrics()
        # The slow one's time, in the request's histogram and in its attempt's: above 250 ms.
        for name, labels in (("porter_http_request_duration_seconds", {"server": "site.test"}),
                             ("porter_upstream_response_duration_seconds",
                              {"upstream": "app", "server": b.address})):
            count = self.value(fams, name + "_count", **labels)
            self.assertEqual(self.value(fams, name + "_bucket", le="0.25", **labels), count - 1)
            self.assertGreaterEqual(self.value(fams, name + "_sum", **labels), 0.3)
        got = {}
        for k, v in fams["porter_upstream_responses_total"].values().items():
            k = dict(k)
            got[(k["upstream"], k["server"], k["status"])] = v
        self.assertEqual(got, {("app", b.address, "2xx"): 2, ("app", b.address, "5xx"): 1,
                               ("gone", "127.0.0.1:%d" % dead, "5xx"): 2,
                               (b.address, b.address, "2xx"): 1})
        h = fams["porter_upstream_response_duration_seconds"]
        counts = {(dict(k)["upstream"], dict(k)["server"]): v
                  for k, v in h.values("porter_upstream_response_duration_seconds_count").items()}
        self.assertEqual(counts, {("app", b.address): 3, ("gone", "127.0.0.1:%d" % dead): 2,
                                  (b.address, b.address): 1})
        # What the upstream side does not report yet is not shown as a zero.
        for name in ("porter_upstream_server_state", "porter_upstream_active_connections",
                     "porter_upstream_failures_total", "porter_upstream_health_checks_total"):
            self.assertNotIn(name, fams)
        self.assertEqual(self.requests_of(fams), {("GET", "2xx"): 3, ("GET", "5xx"): 3})


class Reload(MetricsCase):
    def test_a_reload_starts_again_and_shows_the_old_workers_connections_as_draining(self):
        self.start(top="keepalive_timeout 60s;")
        self.site_get("/a.txt")
        held = harness.Conn(self.p.host, self.site)
        self.addCleanup(held.close)
        held.send(request("GET", "/a.txt", host="site.test"))
        self.assertStatus(held.read_response(), 200)
        self.assertEqual(self.requests_of(self.metrics()), {("GET", "2xx"): 2})
        self.assertEqual(self.value(self.metrics(), "porter_connections_draining"), 0)
        old = harness.wait_workers(self.p, 2)
        self.p.signal(signal.SIGHUP)
        # The new workers answer; the old one holding the keep-alive connection lives on.
        harness.wait_until(lambda: len(set(harness.proc_live_children(self.p.pid)) - set(old))
                           == 2, 10, "two new workers")
        seen = []
        harness.wait_until(lambda: seen.append(self.metrics()) or
                           self.value(seen[-1], "porter_connections_draining") == 1, 10,
                           lambda: "draining: %r" % self.value(seen[-1],
                                                               "porter_connections_draining"))
        # New workers, new counts: a counter reset.
        self.assertEqual(self.requests_of(seen[-1]), {})
        self.site_get("/b.txt")
        self.assertEqual(self.requests_of(self.metrics()), {("GET", "2xx"): 1})
        held.close()  # its worker finishes, and is gone
        harness.wait_until(lambda: seen.append(self.metrics()) or
                           self.value(seen[-1], "porter_connections_draining") == 0, 10,
                           "no connection draining once the old worker is done")


@unittest.skipUnless(test_tls.OPENSSL, "needs openssl")
class Tls(PorterTestCase):
    def test_handshakes_resumptions_and_failures(self):
        port = self.reserve_port()
        p = self.start_porter(test_tls.conf(port, workers=2, b=False,
                                            plain_extra="    location = /metrics { metrics; }"),
                              test_tls.FILES, extra=test_tls.tls_extra())
        self.assertEqual(test_tls.tls_port(p), port)
        harness.wait_workers(p, 2)

        def metric(name):
            return parse(p.get("/metrics").body.decode())[name].samples[0][2]

        sess = os.path.join(p.tmp, "sess")
        code, out = test_tls.s_client(port, ["-tls1_3", "-sess_out", sess],
                                      test_tls.get_request())
        self.assertEqual(code, 0, out)
        for _ in range(2):
            code, out = test_tls.s_client(port, ["-tls1_3", "-sess_in", sess],
                                          test_tls.get_request())
            self.assertEqual(code, 0, out)
            self.assertIn("Reused, ", out)
        with socket.create_connection(("127.0.0.1", port)) as s:  # no handshake at all
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            s.recv(100)
        want = {"porter_tls_handshakes_total": 3, "porter_tls_resumptions_total": 2,
                "porter_tls_handshake_failures_total": 1}
        seen = []
        harness.wait_until(lambda: seen.append({n: metric(n) for n in want}) or seen[-1] == want,
                           5, lambda: "%r, not %r" % (seen[-1:], want))


class Directive(PorterTestCase):
    def test_conf_errors(self):
        for text, message in (
                ("server { location / { metrics on; } }",
                 ":1:23: invalid number of arguments in \"metrics\" directive"),
                ("server { listen 127.0.0.1:0; metrics; }",
                 ":1:30: \"metrics\" directive is not allowed here"),
                ("metrics;\nserver { listen 127.0.0.1:0; }",
                 ":1:1: \"metrics\" directive is not allowed here"),
                ("server { location / { metrics; status; } }",
                 ":1:32: \"status\" and \"metrics\" in one location")):
            with self.subTest(conf=text):
                path = os.path.join(self.tmpdir(), "m.conf")
                with open(path, "w") as f:
                    f.write(text + "\n")
                code, out, err = run_porter(["-t", "-c", path])
                self.assertEqual(code, 1, out + err)
                self.assertIn(path + message, err)

    def tmpdir(self):
        import tempfile
        import shutil
        d = tempfile.mkdtemp(prefix="porter-itest-metrics-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


if __name__ == "__main__":
    harness.main()
