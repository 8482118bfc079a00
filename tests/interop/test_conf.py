"""serve's configuration file (`serve --config FILE`, default /etc/tlsgate/tlsgate.conf;
README "Install", src/cli/conf.c).

  * every key's value is taken: what serve writes to serve-state.json (listeners, threads,
    cache, check interval, tickets, admin listener) and its start-up lines say so;
  * a flag on the command line wins over the file, any --listen replaces the file's list,
    --no-admin drops the file's admin listener, and a 0 given as a flag is a value too;
  * a bad file is refused with exit status 3 and a sentence naming FILE, line N: unknown
    key, bad values, a key given twice, a line too long, control characters, a file too
    large, too many listen lines; a missing --config file is 4; in every refusal nothing
    started: no store was created and nothing listens.
"""
import json
import os
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import tglib  # noqa: E402
from test_serve import SLOW, Serve, ServeCase  # noqa: E402

BIN = os.path.abspath(tglib.BIN)


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class ConfCase(ServeCase):
    def conf(self, text, name="tlsgate.conf"):
        path = self.path(name)
        with open(path, "w" if isinstance(text, str) else "wb") as f:
            f.write(text)
        return path

    def serve_conf(self, conf, *args, port):
        """Starts `serve --config conf ARGS` and waits until port accepts."""
        e = dict(os.environ)
        e.pop("TLSGATE_PASSWORD", None)
        e["TLSGATE_HOME"] = self.home
        errpath = self.path(f"serve-{len(self.servers)}.err")
        with open(errpath, "wb") as errf:
            proc = subprocess.Popen([BIN, "serve", "--config", conf, *args],
                                    stdin=subprocess.DEVNULL, stdout=errf, stderr=errf, env=e,
                                    cwd=self.dir)
        srv = Serve(proc, port, errpath)
        self.servers.append(srv)
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            if accepts(port):
                return srv
            time.sleep(0.05)
        self.fail(f"serve --config did not accept on port {port} (exit {proc.poll()}): "
                  f"{srv.stderr()}")

    def state(self, want=lambda s: True):
        """serve-state.json once it is written (and want(state) holds)."""
        path = os.path.join(self.home, "serve-state.json")
        got = None
        for _ in range(100):
            try:
                with open(path) as f:
                    got = json.load(f)
                if want(got):
                    return got
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.fail(f"serve-state.json not as expected: {got}")

    @staticmethod
    def listeners(state, kind=None):
        return sorted(ln["address"] for ln in state["listeners"]
                      if kind is None or ln.get("kind") == kind or ln.get("name") == kind)


class TestValues(ConfCase):
    def test_every_value_taken(self):
        p1, p2, admin = tglib.free_port(), tglib.free_port(), tglib.free_port()
        conf = self.conf(
            "# serve's settings\n"
            "\n"
            f"listen = 127.0.0.1:{p1}\n"
            f"   listen\t=\t127.0.0.1:{p2}   \r\n"  # blanks, tabs and CRLF
            "threads = 3\n"
            "  # an indented comment\n"
            "cache = 77\n"
            "check-every = 60\n"
            "no-tickets = yes\n"
            f"admin = 127.0.0.1:{admin}\n"
            "log = stderr\n"
            "quiet = no\n")
        srv = self.serve_conf(conf, port=p1)
        self.assertTrue(accepts(p2), "the second listen line")
        self.wait_for("the admin listener of the file", lambda: accepts(admin), 10 * SLOW)
        st = self.state(lambda s: any(str(admin) in ln["address"] for ln in s["listeners"]))
        self.assertEqual((st["threads"], st["cache"], st["check_every"], st["session_tickets"]),
                         (3, 77, 60, False), st)
        addrs = " ".join(ln["address"] for ln in st["listeners"])
        for port in (p1, p2, admin):
            self.assertIn(f"127.0.0.1:{port}", addrs)
        self.assertEqual(self.healthz(p2), (200, "ok\n"))
        self.assertIn(f"listening on 127.0.0.1:{p1} (3 threads)", srv.stderr())
        self.assert_clean_exit(srv, "serve --config")

    def test_quiet_and_no_admin(self):
        port = tglib.free_port()
        conf = self.conf(f"listen = 127.0.0.1:{port}\nno-admin = yes\nquiet = yes\n"
                         "threads = 1\nlog = stderr\n")
        srv = self.serve_conf(conf, port=port)
        st = self.state()
        self.assertEqual([ln["address"] for ln in st["listeners"]], [f"127.0.0.1:{port}"], st)
        self.assert_clean_exit(srv, "serve --config, quiet")
        self.assertEqual(srv.stderr(), "", "quiet = yes printed something")


class TestOverride(ConfCase):
    def test_flags_win(self):
        p_file, p_flag = tglib.free_port(), tglib.free_port()
        admin = tglib.free_port()
        conf = self.conf(f"listen = 127.0.0.1:{p_file}\nthreads = 3\ncache = 77\n"
                         f"check-every = 60\nadmin = 127.0.0.1:{admin}\nlog = stderr\n")
        # --listen replaces the file's list, --threads and --cache win (0 is a value: the
        # default), --no-admin drops the file's admin listener
        srv = self.serve_conf(conf, "--listen", f"127.0.0.1:{p_flag}", "--threads", "2",
                              "--cache", "0", "--no-admin", port=p_flag)
        st = self.state()
        self.assertEqual([ln["address"] for ln in st["listeners"]], [f"127.0.0.1:{p_flag}"], st)
        self.assertEqual((st["threads"], st["cache"], st["check_every"]), (2, 10000, 60), st)
        self.assertFalse(accepts(p_file), "the file's listen was not replaced")
        self.assertFalse(accepts(admin), "--no-admin did not drop the file's admin")
        self.assert_clean_exit(srv, "serve --config with flags")

    def test_admin_flag_beats_no_admin(self):
        port, admin = tglib.free_port(), tglib.free_port()
        conf = self.conf(f"listen = 127.0.0.1:{port}\nno-admin = yes\nthreads = 1\n")
        srv = self.serve_conf(conf, "--admin", f"127.0.0.1:{admin}", "--quiet", port=port)
        # the admin listener starts on a thread of its own, a moment after the front end
        self.wait_for("--admin winning over the file's no-admin", lambda: accepts(admin),
                      10 * SLOW)
        self.assert_clean_exit(srv, "serve --config --admin")


class TestRefusals(ConfCase):
    def refused(self, text, rc, *needles, line=None, args=(), no_store=True):
        port = tglib.free_port()
        if isinstance(text, bytes):
            path = self.conf(text.replace(b"PORT", str(port).encode()))
        else:
            path = self.conf(text.replace("PORT", str(port)))
        r = self.tg("serve", "--config", path, "--no-admin", *args, home=self.home)
        self.assertEqual(r.rc, rc, r)
        if line is not None:
            self.assertIn(f"{path}, line {line}: ", r.err)
        for n in needles:
            self.assertIn(n, r.err)
        if rc == tglib.INVALID:
            self.assertEqual(len(r.err.strip().splitlines()), 1, f"one sentence: {r.err}")
        # nothing started: no store, nothing on the file's port
        if no_store:
            self.assertFalse(os.path.exists(self.home), "a refused serve created the store")
        self.assertFalse(accepts(port))
        return r

    def test_bad_lines(self):
        ok = "listen = 127.0.0.1:PORT\n# a comment\n"
        cases = [
            (ok + "bogus = 1\n", 3, "unknown key 'bogus'"),
            (ok + "Threads = 2\n", 3, "unknown key 'Threads'"),
            (ok + "--threads = 2\n", 3, "unknown key '--threads'"),
            (ok + "threads = 65\n", 3, "threads takes a number from 0 to 64"),
            (ok + "threads = two\n", 3, "'two'"),
            (ok + "cache = 10000001\n", 3, "cache takes"),
            (ok + "check-every = 5\n", 3, "check-every takes"),
            (ok + "listen = nowhere\n", 3, "listen needs ADDRESS:PORT"),
            (ok + "backend = 127.0.0.1\n", 3, "backend needs ADDRESS:PORT"),
            (ok + "admin = 127.0.0.1:0\n", 3, "admin needs ADDRESS:PORT"),
            (ok + "http = 1.2.3.4.5:80\n", 3, "http needs ADDRESS:PORT"),
            (ok + "log = journal\n", 3, "log takes stderr, syslog or both"),
            (ok + "log-socket = dev/log\n", 3, "log-socket takes the absolute path"),
            (ok + "quiet = maybe\n", 3, "quiet takes yes or no"),
            (ok + "no-tickets =\n", 3, "no-tickets needs a value"),
            (ok + "threads\n", 3, "expected 'key = value'"),
            (ok + "cache = 5\ncache = 6\n", 3, "cache is given twice (first on line 3)"),
            (ok + "admin-cert = web\nno-admin = yes\n", 3, "no-admin turns the admin listener off"),
            (ok + "backend = 127.0.0.1:80\x01\n", 3, "control character"),
            (ok + "admin-cert = " + "x" * 1100 + "\n", 3, "longer than 1024 bytes"),
        ]
        for text, rc, needle in cases:
            with self.subTest(needle):
                self.refused(text, rc, needle, line=3 if "given twice" not in needle
                             and "no-admin turns" not in needle else 4)

    def test_limits(self):
        lines = "".join(f"listen = 127.0.0.1:{20000 + i}\n" for i in range(65))
        self.refused(lines, 3, "more than 64 listen lines", line=65)
        big = "# " + "x" * 1000 + "\n"
        self.refused(big * 66, 3, "larger than 65536 bytes")
        self.refused(b"listen = 127.0.0.1:PORT\n\0\n", 3, "control character", line=2)

    def test_missing_file(self):
        missing = self.path("nowhere.conf")
        r = self.tg("serve", "--config", missing, "--no-admin", home=self.home)
        self.assertEqual(r.rc, tglib.NOTFOUND, r)
        self.assertIn(f"the configuration file {missing} does not exist", r.err)
        self.assertFalse(os.path.exists(self.home), "a refused serve created the store")
        r = self.tg("serve", "--config", "", "--no-admin", home=self.home)
        self.assertEqual(r.rc, tglib.USAGE, r)
        self.assertIn("--config", r.err)
        r = self.tg("serve", "--config", self.dir, "--no-admin", home=self.home)
        self.assertEqual(r.rc, tglib.INVALID, r)
        self.assertIn("is a directory", r.err)
        self.assertFalse(os.path.exists(self.home), "a refused serve created the store")

    def test_flags_still_judged(self):
        """A bad flag is still a usage error (2), also with a good file (judged below the CLI,
        after the store is opened, as before the file existed)."""
        self.refused("listen = 127.0.0.1:PORT\n", 2, "--threads", args=("--threads", "65"),
                     no_store=False)


if __name__ == "__main__":
    unittest.main()
