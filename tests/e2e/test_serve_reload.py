"""serve rebuilds its name index off the workers (src/tls/rebuild.c; issue 13, item 4).

With one worker thread and every rebuild made to last seconds
($TLSGATE_TEST_REBUILD_DELAY_MS, a test-only knob read by the builder thread), handshakes
go on while the new index is built: each one completes in a fraction of the delay, the
previous index answers meanwhile (the new certificate is not served yet), and the new one
is served once the build is done. Were the build run on the worker's own loop, as
before, every handshake in that window would wait for it.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve import SLOW, ServeCase, fetch, page_field  # noqa: E402
import tglib  # noqa: E402  (test_serve put tests/interop on the path)

DELAY_S = 4 * SLOW  # how long each rebuild is made to take


class TestReloadOffTheWorkers(ServeCase):

    def test_handshakes_continue_during_a_rebuild(self):
        first = self.create("first", "first.example.com")
        self.ok("cert", "default", "first")
        srv = self.serve(threads=1, quiet=False,
                         env={"TLSGATE_TEST_REBUILD_DELAY_MS": str(DELAY_S * 1000)})
        fp, status, body = fetch(srv.port, "first.example.com")
        self.assertEqual(page_field(body, "match"), "exact", body)
        self.assertEqual(fp, first, "python ssl: the certificate served")

        second = self.create("second", "second.example.com")  # a commit: the poll asks for a build
        committed = time.monotonic()
        time.sleep(1.0)  # the poll (every 250 ms) has seen it; the build is sleeping
        slowest = 0.0
        while time.monotonic() - committed < DELAY_S - 1.0:
            t0 = time.monotonic()
            fp, status, body = fetch(srv.port, "second.example.com")
            slowest = max(slowest, time.monotonic() - t0)
            self.assertEqual(status, 200, body)
            # the previous index still answers: second.example.com gets the default
            self.assertEqual(page_field(body, "match"), "default", body)
            self.assertEqual(fp, first, "python ssl: the default served meanwhile")
            time.sleep(0.1)
        self.assertLess(slowest, DELAY_S / 3,
                        f"a handshake waited {slowest:.2f} s during a {DELAY_S} s rebuild")

        deadline = committed + DELAY_S + 5 * SLOW
        while True:
            fp, status, body = fetch(srv.port, "second.example.com")
            if page_field(body, "match") == "exact" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(page_field(body, "match"), "exact", "the new index never came")
        self.assertEqual(fp, second, "python ssl: the new certificate served")
        self.assertIn("store changed:", srv.stderr())
        sys.stderr.write(f"(slowest handshake during the rebuild {slowest:.3f} s) ")


if __name__ == "__main__":
    tglib.main()
