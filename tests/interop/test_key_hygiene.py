"""Key hygiene (issue 8, docs/store.md "Key hygiene"): what a copied store directory or a
core dump can reveal after keys are gone.

- A deleted key's sealed blob is not left in store.db, its WAL or the shared-memory file,
  also while another process (serve) keeps the database open so that the WAL survives.
- A factory reset makes a new master key and a new data key (checked by unsealing the
  data key with Python cryptography's AES-GCM, not by tlsgate) and leaves no old sealed
  blob behind.
- Commands that may unseal run with core dumps off (RLIMIT_CORE 0, not dumpable): a
  crash leaves no core file and another process of the same user cannot read the
  process's memory through /proc.
"""
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

PW = "export passphrase 1234"
DATAKEY_AAD = b"tlsgate data key v1\0"
STORE_FILES = ("store.db", "store.db-wal", "store.db-shm")


def windows(blob, size=16, step=4):
    """Byte windows of blob: any one of them found means a piece of it survived."""
    return [blob[i:i + size] for i in range(0, len(blob) - size + 1, step)]


free_port = tglib.free_port


class ServeCase(tglib.TgCase):
    """A store with `tlsgate serve` running on it."""

    def setUp(self):
        super().setUp()
        self.ok("init")
        self.db = os.path.join(self.home, "store.db")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        super().tearDown()

    def serve(self, preexec_fn=None, cwd=None, user=None):
        e = dict(os.environ)
        e.pop("TLSGATE_PASSWORD", None)
        e["TLSGATE_HOME"] = self.home
        for _ in range(5):
            port = free_port()
            p = subprocess.Popen([getattr(self, "bin", tglib.BIN), "serve", "--listen", f"127.0.0.1:{port}",
                                  "--threads", "1", "--no-admin"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e,
                                 cwd=cwd or self.dir, preexec_fn=preexec_fn, user=user)
            self.procs.append(p)
            deadline = time.monotonic() + 10
            while p.poll() is None and time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    return p, port
                except OSError:
                    time.sleep(0.05)
            if p.poll() is None:
                self.fail("serve did not start")
        self.fail(f"serve did not start: {p.stderr.read()}")

    def served(self, port):
        import hashlib
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                with ctx.wrap_socket(sock) as tls:
                    return hashlib.sha256(tls.getpeercert(True)).hexdigest().upper()
        except (OSError, ssl.SSLError):
            return None


# A reader in the middle of a read transaction, in a process of its own (POSIX locks are
# per process: a connection of the test's own would share them): it holds its snapshot
# until a line arrives on its standard input, then stays connected (its own close, as
# the last connection, would checkpoint and delete the WAL and hide what a command left).
READER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN")
con.execute("SELECT count(*) FROM certs").fetchall()
print("ready", flush=True)
sys.stdin.readline()
con.execute("COMMIT")
print("released", flush=True)
sys.stdin.readline()  # stays connected, idle, like serve: its close would checkpoint
con.close()
"""


class KeyHygiene(ServeCase):
    def setUp(self):
        super().setUp()
        # A reader in a read transaction (as `tlsgate serve` is while it rebuilds its
        # index) keeps the WAL from being checkpointed and deleted when a command closes
        # the store: the frames that held a key stay in it.
        self.reader = subprocess.Popen([sys.executable, "-c", READER, self.db],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.assertEqual(self.reader.stdout.readline().strip(), "ready")
        self.timer = None

    def tearDown(self):
        if self.timer:
            self.timer.join()
        if self.reader.poll() is None:
            self.reader.kill()
        self.reader.wait(10)
        super().tearDown()

    def release_reader_in(self, secs):
        """The reader finishes its transaction secs from now (while a command runs)."""
        def done():
            time.sleep(secs)
            self.reader.stdin.write("\n")
            self.reader.stdin.flush()
            self.reader.stdout.readline()
        self.timer = threading.Thread(target=done)
        self.timer.start()

    def q(self, sql, *args):
        con = sqlite3.connect(self.db)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def sealed_of(self, name):
        rows = self.q("SELECT k.sealed FROM keys k JOIN certs c ON c.key_id = k.id "
                      "WHERE c.name = ?", name)
        self.assertEqual(len(rows), 1)
        return bytes(rows[0][0])

    def store_bytes(self):
        out = {}
        for fn in STORE_FILES:
            p = os.path.join(self.home, fn)
            if os.path.exists(p):
                out[fn] = self.rd(p, "rb")
        return out

    def assert_gone(self, blobs, where):
        files = self.store_bytes()
        for label, blob in blobs.items():
            for fn, data in files.items():
                left = [w for w in windows(blob) if w in data]
                self.assertFalse(left, f"{where}: {len(left)} pieces of {label} are still "
                                       f"in {fn}")

    def data_key(self):
        mk = self.rd(os.path.join(self.home, "master.key"), "rb")
        meta = dict(self.q("SELECT k, v FROM meta"))
        sid, sealed = bytes(meta["store_id"]), bytes(meta["data_key"])
        self.assertEqual(sealed[0], 1)
        dk = AESGCM(mk).decrypt(sealed[1:13], sealed[13:], DATAKEY_AAD + sid)
        self.assertEqual(len(dk), 32)
        return mk, dk, sid

    def test_deleted_key_leaves_no_sealed_blob(self):
        self.ok("cert", "create", "gone", "--cn", "gone.example.com", "--key", "ec:p256")
        self.ok("cert", "create", "stays", "--cn", "stays.example.com", "--key", "ec:p256")
        self.ok("request", "create", "req gone", "--cn", "rq.example.com", "--key", "ec:p256")
        blob = self.sealed_of("gone")
        req_blob = bytes(self.q("SELECT k.sealed FROM keys k JOIN requests r ON "
                                "r.key_id = k.id WHERE r.name = 'req gone'")[0][0])
        stays = self.sealed_of("stays")
        # Control: the blobs are there to be found before the deletion.
        files = self.store_bytes()
        self.assertTrue(any(blob in d for d in files.values()), "control: blob not found")
        # While the reader holds on, a delete still succeeds (its WAL scrub gives up
        # after 2 s; the next one, or the last close, truncates the WAL).
        t0 = time.monotonic()
        self.ok("request", "delete", "req gone")
        self.assertLess(time.monotonic() - t0, 5)
        self.release_reader_in(1.0)
        self.ok("cert", "delete", "gone")
        self.timer.join()
        self.assert_gone({"the deleted certificate's key": blob,
                          "the deleted request's key": req_blob}, "after delete")
        # The rest of the store is intact and usable.
        self.assertEqual(self.sealed_of("stays"), stays)
        self.ok("cert", "export", "stays", "--format", "p8", "--passphrase-file",
                self.write("pw", PW + "\n"), "--out", self.path("stays.p8"))

    def test_factory_reset_rekeys_and_leaves_no_old_blob(self):
        self.ok("cert", "create", "a", "--cn", "a.example.com", "--key", "ec:p256")
        self.ok("cert", "create", "b", "--cn", "b.example.com", "--key", "rsa:2048")
        old = {name: self.sealed_of(name) for name in ("a", "b", "appliance default")}
        mk1, dk1, sid1 = self.data_key()
        sealed_dk1 = bytes(dict(self.q("SELECT k, v FROM meta"))["data_key"])
        self.release_reader_in(1.0)
        self.ok("factory-reset", "--yes")
        self.timer.join()
        mk2, dk2, sid2 = self.data_key()
        self.assertNotEqual(mk1, mk2, "the master key file is unchanged")
        self.assertNotEqual(dk1, dk2, "the data key is unchanged")
        self.assertNotEqual(sid1, sid2, "the store id is unchanged")
        old["the old sealed data key"] = sealed_dk1
        self.assert_gone(old, "after factory-reset")
        # No old master key anywhere in the directory (e.g. a leftover temporary file).
        for fn in os.listdir(self.home):
            data = self.rd(os.path.join(self.home, fn), "rb")
            self.assertFalse(mk1 in data, f"the old master key is in {fn}")
        # The new keys work: the new default certificate's key can be exported.
        self.ok("cert", "export", "appliance default", "--format", "p8", "--passphrase-file",
                self.write("pw", PW + "\n"), "--out", self.path("def.p8"))
        self.ok("cert", "create", "c", "--cn", "c.example.com", "--key", "ec:p256")


    def test_reset_interrupted_before_the_new_master_key_was_in_place(self):
        # The state a crash between the commit and the rename leaves: the store's data
        # key is sealed under master.key.new, master.key is the old one.
        mk1 = self.rd(os.path.join(self.home, "master.key"), "rb")
        self.reader.stdin.write("\n")
        self.reader.stdin.flush()
        self.reader.stdout.readline()
        self.ok("factory-reset", "--yes")
        mk = os.path.join(self.home, "master.key")
        os.rename(mk, mk + ".new")
        with open(mk, "wb") as f:
            f.write(mk1)
        self.ok("cert", "export", "appliance default", "--format", "p8", "--passphrase-file",
                self.write("pw", PW + "\n"), "--out", self.path("def.p8"))
        self.assertFalse(os.path.exists(mk + ".new"))
        self.assertNotEqual(self.rd(mk, "rb"), mk1)


class ServeAfterReset(ServeCase):
    def default_sha(self):
        return self.ok("--json", "cert", "show", "appliance default").json()["sha256"] \
            .replace(":", "").upper()

    def test_serve_uses_the_new_keys_after_a_factory_reset(self):
        srv, port = self.serve()
        # serve has unsealed with the old data key (and keeps it) before the reset
        before = self.served(port)
        self.assertIsNotNone(before)
        # Other commands come and go meanwhile: opening the store must not drop the locks
        # serve holds (closing any descriptor of store.db or its -shm would), or their
        # close deletes the WAL and -shm under serve, which then misses every change.
        self.ok("cert", "list")
        self.ok("cert", "create", "x", "--cn", "x.example.com", "--key", "ec:p256")
        self.ok("factory-reset", "--yes")
        deadline = time.monotonic() + 10
        got = before
        while time.monotonic() < deadline and got == before:
            time.sleep(0.2)
            got = self.served(port)
        self.assertEqual(got, self.default_sha(), "serve does not serve the new default "
                         "certificate after the reset")
        self.assertIsNone(srv.poll(), "serve exited")

sanitized = tglib.is_asan


def raise_core_limit():
    """In the child before exec: allow core files, as a careless service manager would."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):  # not allowed to raise the hard limit: up to it
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


class CoreDumps(ServeCase):
    """A serve process holds private keys and the store's data key: it must not be dumped."""

    def test_no_core_limit_and_no_core_file(self):
        cwd = self.path("cwd")
        os.mkdir(cwd)
        srv, port = self.serve(preexec_fn=raise_core_limit, cwd=cwd)
        self.assertIsNotNone(self.served(port))  # a key has been unsealed
        with open(f"/proc/{srv.pid}/limits") as f:
            line = [x for x in f if x.startswith("Max core file size")][0]
        self.assertEqual(line.split()[4:6], ["0", "0"], line)
        srv.send_signal(signal.SIGSEGV)
        srv.wait(10)
        # (under AddressSanitizer its SIGSEGV handler reports and aborts)
        self.assertIn(srv.returncode, (-signal.SIGSEGV, -signal.SIGABRT))
        self.assertEqual([f for f in os.listdir(cwd) if f.startswith("core")], [],
                         "a crash left a core file")

    def test_not_dumpable(self):
        # Run as an ordinary user: /proc/PID of a process that is not dumpable belongs to
        # root, so that user's other processes cannot read its memory or environment.
        if os.geteuid() != 0:
            self.skipTest("needs root to run serve as another user (CI runs as root)")
        nobody = 65534
        # the checkout may sit where that user cannot reach (/root): run a copy of ours
        self.bin = self.path("tlsgate")
        shutil.copy2(tglib.BIN, self.bin)
        for root, dirs, files in os.walk(self.dir):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, nobody, nobody)
        srv, port = self.serve(user=nobody)
        self.assertIsNotNone(self.served(port))
        for fn in ("environ", "mem", "maps"):
            self.assertEqual(os.stat(f"/proc/{srv.pid}/{fn}").st_uid, 0,
                             f"/proc/PID/{fn} belongs to the user: the process is dumpable")

    def test_keys_in_locked_memory_left_out_of_dumps(self):
        srv, port = self.serve()
        self.assertIsNotNone(self.served(port))  # the data key has been unsealed
        with open(f"/proc/{srv.pid}/smaps") as f:
            flags = [x.split(":", 1)[1].split() for x in f if x.startswith("VmFlags:")]
        if sanitized():  # AddressSanitizer turns mlock into a no-op
            self.assertTrue(any("dd" in fl for fl in flags), "no not-dumped (dd) mapping")
            return
        self.assertTrue(any("lo" in fl and "dd" in fl for fl in flags),
                        "no locked (lo), not-dumped (dd) mapping: where is the data key?")
        with open(f"/proc/{srv.pid}/status") as f:
            vmlck = [int(x.split()[1]) for x in f if x.startswith("VmLck:")][0]
        self.assertGreater(vmlck, 0)


if __name__ == "__main__":
    tglib.main()
