"""The file cache seen from outside: a file changed, replaced, removed or created on disk is
served as it now is once the validity interval has passed; a response in flight keeps the file
it started with; open files are bounded by open_file_cache max."""

import email.utils
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import PorterTestCase, request  # noqa: E402

SMALL = b"version one\n"
BIG = os.urandom(1024 * 1024)


def conf(top):
    return top + "\nserver {\n    listen 127.0.0.1:0;\n    root htdocs;\n}\n"


def write(p, rel, data):
    path = os.path.join(p.htdocs, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)  # a new inode, as deployment tools do


def rewrite_in_place(p, rel, data):
    with open(os.path.join(p.htdocs, rel), "r+b") as f:
        f.truncate(0)
        f.write(data)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def settled_fds(pid, want):
    """The fd count once it reaches `want` (a connection just closed by the client takes porter a
    moment to see), or whatever it is after two seconds."""
    if harness.wait_for(lambda: open_fds(pid) == want, 2):
        return want
    return open_fds(pid)


class Invalidation(PorterTestCase):
    def test_every_request_sees_changes_with_validity_0(self):
        p = self.start_porter(conf("file_cache_valid 0;"), {"a.txt": SMALL, "big.bin": BIG})
        self.assertEqual(p.get("/a.txt").body, SMALL)
        rewrite_in_place(p, "a.txt", b"version two, longer\n")
        self.assertEqual(p.get("/a.txt").body, b"version two, longer\n")
        write(p, "a.txt", b"version three\n")
        self.assertEqual(p.get("/a.txt").body, b"version three\n")
        # a big file, held open
        self.assertTrue(p.get("/big.bin").body == BIG)
        big2 = os.urandom(len(BIG) + 100)
        write(p, "big.bin", big2)
        self.assertTrue(p.get("/big.bin").body == big2)
        os.unlink(os.path.join(p.htdocs, "big.bin"))
        self.assertStatus(p.get("/big.bin"), 404)
        os.unlink(os.path.join(p.htdocs, "a.txt"))
        self.assertStatus(p.get("/a.txt"), 404)
        # a file that appears after a 404 (the miss was remembered)
        write(p, "a.txt", b"back\n")
        self.assertEqual(p.get("/a.txt").body, b"back\n")

    def test_default_interval(self):
        # file_cache_valid 1s: a change is seen at most a second (and a bit) later
        p = self.start_porter("", {"a.txt": SMALL, "big.bin": BIG})
        self.assertEqual(p.get("/a.txt").body, SMALL)
        self.assertStatus(p.get("/new.txt"), 404)
        self.assertTrue(p.get("/big.bin").body == BIG)
        write(p, "a.txt", b"second version\n")
        write(p, "new.txt", b"new\n")
        big2 = BIG[::-1]
        write(p, "big.bin", big2)
        # Within the second (and 1.5 s of margin for a loaded machine).
        harness.wait_until(lambda: p.get("/a.txt").body == b"second version\n"
                           and p.get("/new.txt").body == b"new\n"
                           and p.get("/big.bin").body == big2, 2.5, "the three changes seen")

    def test_directory_index_change(self):
        p = self.start_porter(conf("file_cache_valid 0;"), {"d/index.html": b"one\n"})
        self.assertEqual(p.get("/d/").body, b"one\n")
        write(p, "d/index.html", b"two\n")
        self.assertEqual(p.get("/d/").body, b"two\n")

    def test_memory_cache_off(self):
        p = self.start_porter(conf("file_cache_size off;\nfile_cache_valid 0;"), {"a.txt": SMALL})
        for _ in range(3):
            self.assertEqual(p.get("/a.txt").body, SMALL)
        write(p, "a.txt", b"changed\n")
        self.assertEqual(p.get("/a.txt").body, b"changed\n")


class InFlight(PorterTestCase):
    def test_response_in_flight_keeps_its_file(self):
        # A slow reader starts a big download; the file is replaced and its cache entry (and the
        # cache's fd) dropped by another request; the download still gets the old bytes, whole.
        big = os.urandom(8 * 1024 * 1024)
        p = self.start_porter(conf("file_cache_valid 0;"), {"big.bin": big})
        c = harness.Conn(p.host, p.port, 20, rcvbuf=16 * 1024)
        self.addCleanup(c.close)
        c.send(request("GET", "/big.bin"))
        head = c.read_head()
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        got = bytearray(c.buf)
        c.buf = bytearray()
        new = os.urandom(len(big))
        write(p, "big.bin", new)
        r = p.get("/big.bin")  # revalidates: the old entry and its fd go
        self.assertTrue(r.body == new)
        os.unlink(os.path.join(p.htdocs, "big.bin"))
        self.assertStatus(p.get("/big.bin"), 404)
        while len(got) < len(big):
            data = c.sock.recv(1 << 20)
            if not data:
                break
            got += data
        self.assertEqual(len(got), len(big))
        self.assertTrue(bytes(got) == big, "the download in flight changed content")


class OpenFiles(PorterTestCase):
    def test_open_files_are_bounded(self):
        files = {"f%02d.bin" % i: os.urandom(64 * 1024) for i in range(40)}
        p = self.start_porter(conf("open_file_cache max=5;"), files)
        base = open_fds(p.pid)
        with p.connect() as c:
            for _ in range(2):
                for name, data in sorted(files.items()):
                    c.send(request("GET", "/" + name))
                    r = c.read_response()
                    self.assertTrue(r.body == data)
        self.assertLessEqual(settled_fds(p.pid, base + 5), base + 5)
        # and the remembered misses count against the same bound
        for i in range(20):
            self.assertStatus(p.get("/missing-%d" % i), 404)
        self.assertLessEqual(settled_fds(p.pid, base), base + 5)

    def test_open_file_cache_off(self):
        files = {"f.bin": os.urandom(100 * 1024)}
        p = self.start_porter(conf("open_file_cache off;"), files)
        base = open_fds(p.pid)
        for _ in range(3):
            self.assertTrue(p.get("/f.bin").body == files["f.bin"])
        self.assertEqual(settled_fds(p.pid, base), base)

    def test_hot_big_file_stays_open(self):
        files = {"f.bin": os.urandom(100 * 1024)}
        p = self.start_porter("", files)
        base = open_fds(p.pid)
        with p.connect() as c:
            for _ in range(10):
                c.send(request("GET", "/f.bin"))
                self.assertTrue(c.read_response().body == files["f.bin"])
        self.assertEqual(settled_fds(p.pid, base + 1), base + 1)  # the cache's; no dup left


class BiggerMemoryFiles(PorterTestCase):
    def test_file_cache_max_file(self):
        data = os.urandom(60 * 1024)
        p = self.start_porter(conf("file_cache_max_file 64k;\nopen_file_cache off;"), {"m.bin": data})
        base = open_fds(p.pid)
        for _ in range(3):
            self.assertTrue(p.get("/m.bin").body == data)
        self.assertEqual(settled_fds(p.pid, base), base)  # held in memory: no fd kept


class Heads(PorterTestCase):
    """A cached file's response head is made once a second and reused: what changes with the
    second (Date, Expires), with the request (Connection) or with an error_page must still be
    right in every response."""

    def test_reused_head_keeps_time_connection_and_status(self):
        p = self.start_porter(
            "\nserver {\n    listen 127.0.0.1:0;\n    root htdocs;\n    expires 1h;\n"
            "    error_page 404 /a.txt;\n}\n", {"a.txt": SMALL})

        def exchange(conn, raw, methods=("GET",)):
            """Sends `raw`, reads one response per method; checks every Date is the wall
            clock's second of the exchange and a 200's Expires an hour after it (an error has
            none: `expires` is for 2xx and 3xx answers)."""
            before = time.time()
            conn.send(raw)
            rs = [conn.read_response(m) for m in methods]
            after = time.time()
            for r in rs:
                date = email.utils.parsedate_to_datetime(r.header("Date")).timestamp()
                self.assertTrue(int(before) <= date <= after,
                                "Date %s is not the time of the request (%.2f to %.2f)"
                                % (r.header("Date"), before, after))
                if r.status != 200:
                    self.assertEqual((r.header("Expires"), r.header("Cache-Control")),
                                     (None, None), r)
                    continue
                expires = email.utils.parsedate_to_datetime(r.header("Expires")).timestamp()
                self.assertEqual(expires - date, 3600, r)
            return rs if len(rs) > 1 else rs[0]

        def rest(r):
            return [(n, v) for n, v in r.headers if n not in ("Date", "Expires", "Connection")]

        c = p.connect()
        self.addCleanup(c.close)
        r1 = exchange(c, request("GET", "/a.txt"))
        self.assertEqual((r1.status, r1.body), (200, SMALL))
        self.assertEqual(r1.header("Content-Length"), str(len(SMALL)))
        self.assertEqual(r1.header("Cache-Control"), "max-age=3600")
        self.assertIsNone(r1.header("Connection"))
        d1 = email.utils.parsedate_to_datetime(r1.header("Date")).timestamp()

        # the same head, now with HEAD and three pipelined GETs, then in the next second
        heads = exchange(c, request("HEAD", "/a.txt") + request("GET", "/a.txt") * 3,
                         ("HEAD", "GET", "GET", "GET"))
        for r in heads:
            self.assertEqual(r.status, 200)
            self.assertEqual(rest(r), rest(r1))
            self.assertIsNone(r.header("Connection"))
        self.assertEqual([r.body for r in heads], [b"", SMALL, SMALL, SMALL])
        # Waiting for the clock is the behaviour under test: a head made in an earlier second
        # must not be reused.
        harness.wait_until(lambda: time.time() >= d1 + 1.05, 3, "the next second")
        r2 = exchange(c, request("GET", "/a.txt"))
        self.assertGreater(email.utils.parsedate_to_datetime(r2.header("Date")).timestamp(), d1)
        self.assertEqual(rest(r2), rest(r1))

        # an error_page served from the same file keeps its status, and the 200 after it
        # is a 200 again
        r3 = exchange(c, request("GET", "/missing"))
        self.assertEqual((r3.status, r3.body), (404, SMALL))
        r = exchange(c, request("GET", "/a.txt"))
        self.assertEqual((r.status, r.body), (200, SMALL))
        self.assertEqual(rest(r), rest(r1))

        # the Connection line follows each request
        r4 = exchange(c, request("GET", "/a.txt", close=True))
        self.assertEqual((r4.status, r4.header_all("Connection")), (200, ["close"]))
        c10 = p.connect()
        self.addCleanup(c10.close)
        r5 = exchange(c10, request("GET", "/a.txt", headers={"Connection": "keep-alive"},
                                   version="1.0"))
        self.assertEqual((r5.status, r5.header_all("Connection")), (200, ["keep-alive"]))
        self.assertEqual(rest(r5), rest(r1))
        c11 = p.connect()
        self.addCleanup(c11.close)
        r6 = exchange(c11, request("GET", "/a.txt"))
        self.assertEqual((r6.status, r6.header_all("Connection")), (200, []))
        self.assertEqual(rest(r6), rest(r1))


if __name__ == "__main__":
    harness.main()
