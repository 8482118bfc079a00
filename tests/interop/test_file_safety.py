"""Files that are not what they seem (issue 8): a FIFO, a directory or an oversized file
given as an input or password file is refused at once with its documented status, never
waited on; the store directory and its files are private even when they were created
loose; an export never writes into the store nor follows or replaces what it did not make.

Every command runs under a subprocess timeout, so a hang fails the test instead of
blocking the suite.
"""
import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
from tglib import INVALID, PASSWORD  # noqa: E402

PW = "correct horse battery"


class FileTypes(tglib.TgCase):
    """Input and password files: only regular files, checked without blocking."""

    def setUp(self):
        super().setUp()
        self.ok("init")
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                "-subj", "/CN=files.example.com", "-days", "5")
        self.sh("openssl", "pkcs8", "-topk8", "-in", "k.pem", "-v2", "aes-256-cbc",
                "-passout", "pass:" + PW, "-out", "k.p8")
        self.pw = self.write("pw", PW + "\n")
        self.fifo = self.path("fifo")
        os.mkfifo(self.fifo)
        self.dirp = self.path("adir")
        os.mkdir(self.dirp)

    def refused(self, status, *args, msg):
        before = self.dump()
        try:
            r = self.tg(*args, timeout=10)
        except subprocess.TimeoutExpired:
            self.fail(f"tlsgate {' '.join(args)} hung (waited on a FIFO?)")
        self.assertEqual(r.rc, status, f"tlsgate {' '.join(args)}: wanted exit {status}: {r}")
        self.assertTrue(r.err.startswith("tlsgate: "), r)
        self.assertRegex(r.err.lower(), msg, r)
        self.assertEqual(before, self.dump())
        return r

    def test_fifo_and_directory_as_input(self):
        for bad, msg in ((self.fifo, r"fifo.*not a regular file|not a regular file"),
                         (self.dirp, r"directory")):
            with self.subTest(bad=bad):
                self.refused(INVALID, "cert", "import", bad, msg=msg)
                self.refused(INVALID, "cert", "import", self.path("c.pem"), "--key", bad,
                             msg=msg)
                self.refused(INVALID, "verify", bad, "--ca-file", self.path("c.pem"), msg=msg)
                self.refused(INVALID, "verify", self.path("c.pem"), "--ca-file", bad, msg=msg)
                self.refused(INVALID, "ca", "import", bad, msg=msg)

    def test_fifo_directory_and_oversize_as_password_file(self):
        big = self.write("bigpw", "x" * 100000 + "\n")
        for bad, msg in ((self.fifo, r"password file.*not a regular file"),
                         (self.dirp, r"password file.*directory"),
                         (big, r"password file.*too large")):
            with self.subTest(bad=bad):
                self.refused(PASSWORD, "cert", "import", self.path("c.pem"), "--key",
                             self.path("k.p8"), "--password-file", bad, msg=msg)
                out = self.path("x.p12")
                self.refused(PASSWORD, "cert", "export", "appliance default", "--format", "p12",
                             "--with-key", "--passphrase-file", bad, "--out", out, msg=msg)
                self.assertFalse(os.path.exists(out))
        # the good file still works
        self.ok("cert", "import", self.path("c.pem"), "--key", self.path("k.p8"),
                "--password-file", self.pw)

    def test_fifo_with_a_writer_is_still_refused(self):
        # Even when something writes into the FIFO, its content is not read as a file.
        w = subprocess.Popen(["sh", "-c", f"exec cat {self.path('c.pem')} > {self.fifo}"])
        try:
            self.refused(INVALID, "cert", "import", self.fifo, msg=r"not a regular file")
        finally:
            w.kill()
            w.wait()

    def test_fifo_as_master_key(self):
        mk = os.path.join(self.home, "master.key")
        os.unlink(mk)
        os.mkfifo(mk)
        self.refused(tglib.STORE, "cert", "export", "appliance default", "--format", "p8",
                     "--passphrase-file", self.pw, "--out", self.path("k.out"),
                     msg=r"master key")


class StoreModes(tglib.TgCase):
    """A store directory (and files) made loose by someone else is tightened on open."""

    def modes(self):
        out = {".": stat.S_IMODE(os.stat(self.home).st_mode)}
        for fn in ("master.key", "store.db", "store.db-wal", "store.db-shm"):
            p = os.path.join(self.home, fn)
            if os.path.exists(p):
                out[fn] = stat.S_IMODE(os.stat(p).st_mode)
        return out

    def test_existing_loose_directory_is_tightened(self):
        os.mkdir(self.home)
        os.chmod(self.home, 0o777)
        self.ok("init")
        self.assertEqual(self.modes()["."], 0o700)

    def test_loose_files_are_tightened(self):
        self.ok("init")
        os.chmod(self.home, 0o755)
        for fn in ("master.key", "store.db", "store.db-wal", "store.db-shm"):
            p = os.path.join(self.home, fn)
            if os.path.exists(p):
                os.chmod(p, 0o666)
        self.ok("cert", "list")  # a read command tightens too
        m = self.modes()
        self.assertEqual(m.pop("."), 0o700)
        self.assertIn("master.key", m)
        self.assertIn("store.db", m)
        for fn, mode in m.items():
            self.assertEqual(mode, 0o600, fn)


class ExportTarget(tglib.TgCase):
    """`--out` never writes into the store, never follows a symbolic link and never
    replaces a file without --force (exit 5, README "Limits")."""

    def setUp(self):
        super().setUp()
        self.ok("init")
        self.pw = self.write("pw", PW + "\n")

    def store_state(self):
        """The store's files: their bytes, but the database's content as SQL without the
        audit log (a refused export is recorded there, README "Users and audit")."""
        out = {}
        for fn in sorted(os.listdir(self.home)):
            p = os.path.join(self.home, fn)
            if os.path.isfile(p) and not fn.endswith(("-wal", "-shm")):
                out[fn] = self.dump() if fn == "store.db" else self.rd(p, "rb")
        return out

    def export(self, out, *extra, fmt="pem"):
        args = ["cert", "export", "appliance default", "--format", fmt, "--out", out, *extra]
        if fmt in ("p8", "p12"):
            args += ["--passphrase-file", self.pw]
        return self.tg(*args, timeout=30)

    def refused(self, out, *extra, msg, fmt="pem", cwd_home=False):
        before = self.store_state()
        r = self.export(out, *extra, fmt=fmt)
        self.assertEqual(r.rc, tglib.CONFLICT, f"export to {out} {extra}: {r}")
        self.assertTrue(r.err.startswith("tlsgate: "), r)
        self.assertRegex(r.err.lower(), msg, r)
        self.assertEqual(before, self.store_state(), "the store's files changed")
        self.ok("cert", "export", "appliance default", "--format", "p8", "--passphrase-file",
                self.pw, "--out", self.path("still-works.p8"), "--force")

    def test_never_into_the_store_directory(self):
        for fn in ("master.key", "store.db", "store.db-wal", "new-file.pem"):
            for extra in ((), ("--force",)):
                with self.subTest(fn=fn, extra=extra):
                    self.refused(os.path.join(self.home, fn), *extra, msg=r"store")
        # a key export too, and the request export
        self.refused(os.path.join(self.home, "master.key"), "--force", fmt="p8", msg=r"store")
        self.ok("request", "create", "r", "--cn", "r.example.com", "--key", "ec:p256")
        r = self.tg("request", "export", "r", "--out", os.path.join(self.home, "store.db"),
                    "--force")
        self.assertEqual(r.rc, tglib.CONFLICT, r)
        # a subdirectory of the store, a path through a symbolic link to it, a relative
        # path from inside it, and a path with ".." that lands in it
        os.mkdir(os.path.join(self.home, "sub"))
        self.refused(os.path.join(self.home, "sub", "x.pem"), msg=r"store")
        os.symlink(self.home, self.path("alias"))
        self.refused(self.path("alias/master.key"), "--force", msg=r"store")
        self.refused(os.path.join(self.home, "sub", "..", "store.db"), "--force", msg=r"store")
        e = dict(os.environ, TLSGATE_HOME=self.home)
        p = subprocess.run([tglib.BIN, "cert", "export", "appliance default", "--format", "pem",
                            "--out", "master.key", "--force"], cwd=self.home, env=e,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, tglib.CONFLICT, p.stderr)

    def test_existing_file_needs_force(self):
        out = self.write("taken.pem", "someone else's file\n")
        self.refused(out, msg=r"exists.*--force")
        self.assertEqual(self.rd(out), "someone else's file\n")
        r = self.export(out, "--force")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("BEGIN CERTIFICATE", self.rd(out))
        # a fresh name needs nothing
        self.assertEqual(self.export(self.path("fresh.pem")).rc, 0)

    def test_symlink_at_the_final_component_is_refused(self):
        target = self.write("target.txt", "precious\n")
        link = self.path("link.pem")
        os.symlink(target, link)
        dangling = self.path("dangling.pem")
        os.symlink(self.path("nowhere/else"), dangling)
        for p in (link, dangling):
            for extra in ((), ("--force",)):
                with self.subTest(path=p, extra=extra):
                    self.refused(p, *extra, msg=r"symbolic link")
                    self.assertTrue(os.path.islink(p))
        self.assertEqual(self.rd(target), "precious\n")
        self.assertFalse(os.path.exists(self.path("nowhere")))

    def test_directory_as_out(self):
        d = self.path("outdir")
        os.mkdir(d)
        r = self.export(d, "--force")
        self.assertIn(r.rc, (tglib.CONFLICT, tglib.IO), r)
        self.assertTrue(os.path.isdir(d))


if __name__ == "__main__":
    tglib.main()
