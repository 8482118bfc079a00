"""Shared helpers for the interop tests: run the tlsgate binary on a temporary store.

Every test gets its own TLSGATE_HOME. Outputs are checked with tools we did not write
(the openssl CLI, Python cryptography, keytool); this module only runs things.
"""
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("TLSGATE_BIN") or os.path.join(ROOT, "build", "tlsgate")

def is_asan(path=None):
    """Whether the binary (default: the one under test) is built with AddressSanitizer."""
    try:
        with open(path or BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# The store's schema version (src/store/db.c, TG_SCHEMA_VERSION): an upgraded store ends there.
SCHEMA_VERSION = 11
# What the migrations after version 8 created: a test that turns a store back into an older
# one drops these first (each new migration adds its own here).
DROP_SINCE_9 = """
    DROP TABLE identity_conf; DROP TABLE sealed_values;
    DROP TABLE est_secrets; DROP TABLE est_devices;
    DROP TABLE acme_challenges; DROP TABLE acme_certs; DROP TABLE acme_accounts;
    DROP TABLE proxy_certs;
"""

# Exit statuses (README, "Exit statuses").
OK, USAGE, INVALID, NOTFOUND, CONFLICT, PASSWORD, STORE, IO, INTERNAL = 0, 2, 3, 4, 5, 6, 7, 8, 9


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout if proc.stdout is not None else ""
        self.err = proc.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"<rc={self.rc} out={self.out[:400]!r} err={self.err[:400]!r}>"


class TgCase(unittest.TestCase):
    """A test case with a fresh store (self.home) and a scratch directory (self.dir)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tg-test-")
        self.home = os.path.join(self.dir, "home")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    # Only init and serve create a store (issue 14, item 4); tests that are not about that
    # get one made by init before their first command on a home (auto_init = False: not).
    auto_init = True
    NO_STORE_NEEDED = {"init", "serve", "verify", "help", "version", "--help", "-h",
                       "--version"}

    def ensure_store(self, args, env):
        """Runs `tlsgate init` for the home a command will use when it has no store yet."""
        words = list(args)
        home = env.get("TLSGATE_HOME")
        while words and words[0] in ("--json", "--home"):
            if words[0] == "--home" and len(words) > 1:
                home = words[1]
                words = words[2:]
            else:
                words = words[1:]
        if not words or words[0] in self.NO_STORE_NEEDED or "--help" in words or "-h" in words:
            return
        if home and not os.path.exists(os.path.join(home, "store.db")):
            e = dict(env, TLSGATE_HOME=home)
            proc = subprocess.run([BIN, "init"], capture_output=True, text=True, env=e,
                                  stdin=subprocess.DEVNULL, timeout=120)
            if proc.returncode != 0:
                raise AssertionError(f"tlsgate init for {home} failed: {proc.stderr}")

    def tg(self, *args, env=None, stdin=None, input=None, home=None, timeout=120, stdout=None):
        """Runs tlsgate; stdin: a file object for its standard input, or input: text fed to
        it (else standard input is empty)."""
        e = dict(os.environ)
        e.pop("TLSGATE_PASSWORD", None)
        e["TLSGATE_HOME"] = home or self.home
        if env:
            e.update(env)
        if self.auto_init:
            self.ensure_store(args, e)
        kw = {"input": input} if input is not None else \
            {"stdin": subprocess.DEVNULL if stdin is None else stdin}
        out = {"stdout": subprocess.PIPE} if stdout is None else {"stdout": stdout}
        proc = subprocess.run([BIN, *args], stderr=subprocess.PIPE, text=True, env=e,
                              timeout=timeout, **kw, **out)
        return Result(proc)

    def ok(self, *args, **kw):
        r = self.tg(*args, **kw)
        self.assertEqual(r.rc, 0, f"tlsgate {' '.join(args)} failed: {r}")
        return r

    def fails(self, status, *args, **kw):
        r = self.tg(*args, **kw)
        self.assertEqual(r.rc, status, f"tlsgate {' '.join(args)}: wanted exit {status}: {r}")
        self.assertTrue(r.err.startswith("tlsgate: ") and len(r.err.strip()) > 20,
                        f"no clear message: {r.err!r}")
        return r

    def refused(self, status, *args, says=()):
        """The command fails with status, says each phrase, and changes nothing."""
        before = self.dump()
        r = self.fails(status, *args)
        for s in says:
            self.assertIn(s, r.err)
        self.assertEqual(self.dump(), before, f"{args} changed the store")
        return r

    def nothing_new(self, *args, present=None, **kw):
        """An import of what the store already holds: exit 0, "0 new, N already present"
        (issue 14, item 3); present: the N expected, when the caller knows it."""
        r = self.tg(*args, **kw)
        self.assertEqual(r.rc, 0, f"tlsgate {' '.join(args)}: a repeated import must succeed: {r}")
        m = re.search(r"^0 new, (\d+) already present$", r.out, re.M)
        self.assertTrue(m, f"no '0 new, N already present' line: {r.out!r}")
        if present is not None:
            self.assertEqual(int(m.group(1)), present, r.out)
        return r

    def openssl_x509(self, stem, cn, *addext, days=30):
        """An EC P-256 self-signed certificate made by `openssl req -x509` (each addext an
        -addext value; none: openssl's default configuration, which makes a CA) in the
        test's directory as STEM.pem with its key STEM.key: (cert path, key path)."""
        exts = [a for e in addext for a in ("-addext", e)]
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", stem + ".key", "-out",
                stem + ".pem", "-subj", "/CN=" + cn, "-days", str(days), *exts)
        return self.path(stem + ".pem"), self.path(stem + ".key")

    def openssl_root(self, stem, cn, days=30):
        """A root CA certificate made by openssl (see openssl_x509)."""
        return self.openssl_x509(stem, cn, "basicConstraints=critical,CA:TRUE",
                                 "keyUsage=critical,keyCertSign,cRLSign", days=days)

    def sh(self, *cmd, check=True, **kw):
        proc = subprocess.run(list(cmd), capture_output=True, text=True, cwd=self.dir, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed: {proc.stdout}\n{proc.stderr}")
        return proc

    def write(self, name, data, mode="w"):
        p = self.path(name)
        with open(p, mode) as f:
            f.write(data)
        return p

    def rd(self, p, mode="r"):
        with open(p, mode) as f:
            return f.read()

    def show(self, name, home=None):
        """`tlsgate --json cert show NAME` as a dict."""
        return self.ok("--json", "cert", "show", name, home=home).json()

    # What openssl (not our code) says of a file.
    def fingerprint(self, path, inform="PEM"):
        out = self.sh("openssl", "x509", "-inform", inform, "-in", path, "-noout",
                      "-fingerprint", "-sha256").stdout.strip()
        self.assertIn("=", out, out)
        return out.split("=", 1)[1].replace(":", "").upper()

    def cert_pubkey(self, path, inform="PEM"):
        return self.sh("openssl", "x509", "-inform", inform, "-in", path, "-pubkey",
                       "-noout").stdout.strip()

    def key_pubkey(self, path, passin=None):
        args = ["-passin", "file:" + passin] if passin else []
        return self.sh("openssl", "pkey", "-in", path, *args, "-pubout").stdout.strip()

    def dump(self, home=None):
        """The store's content as SQL text (compare before/after a failing command).

        The audit log is left out: a failing command records its failure there (README,
        "Users and audit"), and that row is the one thing it adds."""
        db = os.path.join(home or self.home, "store.db")
        con = sqlite3.connect(db)
        try:
            return "\n".join(l for l in con.iterdump() if not l.startswith('INSERT INTO "audit"'))
        finally:
            con.close()


def main():
    unittest.main(verbosity=2)
