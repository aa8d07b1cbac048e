#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_h2 (tests/fuzz/corpus/fuzz_h2/): HTTP/2 frames a client sends
after the connection preface (which the target prepends), to the paths of the fuzz harness's
site. Header blocks are HPACK literals without indexing and without Huffman coding, so the
bytes stay readable in a hex dump.

    python3 tests/fuzz/fuzz_h2_seeds.py [DIR]
"""
import os
import struct
import sys

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def literal(name, value):
    """A literal field without indexing, new name (RFC 7541 section 6.2.2)."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def block(method, path, authority="fuzz.test", extra=()):
    fields = [(":method", method), (":scheme", "http"), (":authority", authority),
              (":path", path)] + list(extra)
    return b"".join(literal(n, v) for n, v in fields)


def request(stream, method, path, end=True, **kw):
    return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), stream,
                 block(method, path, **kw))


def body(stream, data, end=True):
    return frame(DATA, END_STREAM if end else 0, stream, data)


HELLO = settings((2, 0), (4, 65535))  # ENABLE_PUSH 0, INITIAL_WINDOW_SIZE

SEEDS = {
    "get_index": HELLO + request(1, "GET", "/"),
    "get_head_files": HELLO + request(1, "GET", "/small.txt") + request(3, "HEAD", "/big.bin") +
    request(5, "GET", "/files/") + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)),
    "post_echo": HELLO + request(1, "POST", "/echo", end=False,
                                 extra=[("content-length", "11")]) +
    body(1, b"hello ", end=False) + body(1, b"world"),
    "proxy": HELLO + request(1, "GET", "/proxy/a?b=c", extra=[("cookie", "a=1"),
                                                              ("cookie", "b=2")]) +
    request(3, "POST", "/raw/x", end=False) + body(3, b"to the upstream"),
    "later_stream_reset": HELLO + request(1, "GET", "/later") + request(3, "GET", "/stream") +
    frame(RST_STREAM, 0, 3, struct.pack(">I", 8)) +
    frame(PING, 0, 0, b"12345678") + frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)),
    "small_window": settings((4, 100)) + request(1, "GET", "/big.bin") +
    frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 5000)) +
    frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 5000)),
    "continuation_priority": HELLO +
    frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 15)) +
    frame(HEADERS, END_STREAM, 1, block("GET", "/gz/app.js")[:20]) +
    frame(CONTINUATION, 0, 1, block("GET", "/gz/app.js")[20:30]) +
    frame(CONTINUATION, END_HEADERS, 1, block("GET", "/gz/app.js",
                                              extra=[("accept-encoding", "br, gzip")])[30:]),
    "expect_continue": HELLO + request(1, "POST", "/echo", end=False,
                                       extra=[("expect", "100-continue"),
                                              ("content-length", "4")]) + body(1, b"ping"),
    "range_status_other": HELLO +
    request(1, "GET", "/big.bin", extra=[("range", "bytes=0-9,100-")]) +
    request(3, "GET", "/porter-status") + request(5, "GET", "/", authority="other.test") +
    request(7, "OPTIONS", "*") + frame(SETTINGS, ACK, 0),
    "padded": HELLO + frame(HEADERS, END_HEADERS | PADDED, 1,
                            b"\x03" + block("POST", "/echo") + b"\0\0\0") +
    frame(DATA, END_STREAM | PADDED, 1, b"\x02abc\0\0"),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "fuzz_h2")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
