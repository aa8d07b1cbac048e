"""The soak (tests/soak/soak.py) for 20 seconds: mixed static and proxied keep-alive load on 32
connections with 5 reloads; not one request may fail."""

import io
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "soak"))
import harness  # noqa: E402
import soak  # noqa: E402


class SoakShort(unittest.TestCase):
    def test_reloads_cost_no_request(self):
        out = io.StringIO()
        ok, bad, report = soak.run(20, connections=32, reload_every=3.5, faults=("reload",),
                                   out=out)
        self.assertEqual(out.getvalue().count("reload\n"), 5, out.getvalue())
        self.assertGreater(ok, 1000, report)
        self.assertEqual(bad, [], report)


if __name__ == "__main__":
    harness.main()
