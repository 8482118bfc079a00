#!/usr/bin/env python3
"""The README's tour (issue 14, item 7: it pastes as is): the first ```sh block under "A
short tour" is run by bash -e in a scratch directory with `build` pointing at the binary
under test. Only what a shared test machine needs changes: the front end's and the
proxy's ports become free ones, the admin listener gets a free port too (its default is
one per machine), and the one-second wait for serve becomes a wait for /healthz."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402


def tour():
    with open(os.path.join(tglib.ROOT, "README.md")) as f:
        text = f.read()
    start = text.index("## A short tour\n")
    block = text.index("```sh\n", start) + len("```sh\n")
    return text[block:text.index("```\n", block)]


class Tour(tglib.TgCase):
    def test_tour_pastes_as_is(self):
        script = tour()
        self.assertIn("tlsgate serve --listen 127.0.0.1:8443 & sleep 1", script)
        front, proxy, admin = tglib.free_port(), tglib.free_port(), tglib.free_port()
        script = script.replace("127.0.0.1:3128", f"127.0.0.1:{proxy}")
        script = script.replace(
            "tlsgate serve --listen 127.0.0.1:8443 & sleep 1",
            f"tlsgate serve --listen 127.0.0.1:{front} --admin 127.0.0.1:{admin} & "
            f"for i in $(seq 200); do curl -sk https://127.0.0.1:{front}/healthz >/dev/null "
            "&& break; sleep 0.1; done")
        script = re.sub(r"shop\.example\.com:8443", f"shop.example.com:{front}", script)
        self.assertNotIn("127.0.0.1:8443", script)
        self.assertNotIn(":8443/", script)
        os.symlink(os.path.dirname(os.path.abspath(tglib.BIN)), self.path("build"))
        env = dict(os.environ)
        for k in ("TLSGATE_HOME", "TLSGATE_PASSWORD"):
            env.pop(k, None)
        p = subprocess.run(["bash", "-e", "-c", script], cwd=self.dir, env=env,
                           capture_output=True, text=True, timeout=240)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out[-3000:])
        self.assertIn("Chain status:          valid", out)
        self.assertIn("shop_REPLACED", out)
        self.assertIn("Verdict: valid", out)
        self.assertRegex(out, r"(?m)^ok$")  # /healthz through serve
        self.assertIn("Factory reset done", out)


if __name__ == "__main__":
    tglib.main()
