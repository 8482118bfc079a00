"""Concurrent writers (README: "Concurrent commands wait up to 10 s for the write lock").

The busy timeout holds from the first statement on, also while a fresh store is being
created: another process holding the write lock on a new (empty) database, or a second
tlsgate creating the same store at the same moment, makes a command wait, not fail at
once with exit 7.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402

# Holds a write lock (BEGIN IMMEDIATE) on a database in a process of its own, for the
# given seconds; the journal mode is the database's own or the one given.
HOLDER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[3] != "-":
    con.execute("PRAGMA journal_mode=" + sys.argv[3])
con.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("COMMIT")
con.close()
"""


class Busy(tglib.TgCase):
    def hold(self, secs, mode="-"):
        os.makedirs(self.home, exist_ok=True)
        p = subprocess.Popen([sys.executable, "-c", HOLDER, os.path.join(self.home, "store.db"),
                              str(secs), mode], stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline().strip(), "locked")
        return p

    def waits_and_succeeds(self, holder, *args, at_least=1.0):
        t0 = time.monotonic()
        r = self.tg(*args, timeout=30)
        took = time.monotonic() - t0
        holder.wait(10)
        holder.stdout.close()
        self.assertEqual(r.rc, 0, f"tlsgate {' '.join(args)} gave up after {took:.3f} s: {r}")
        self.assertGreaterEqual(took, at_least, "it did not wait for the lock")
        return r

    def test_fresh_empty_database_locked_by_another_process(self):
        # The database file exists but is empty (rollback journal mode) and locked.
        h = self.hold(1.5)
        self.waits_and_succeeds(h, "init")
        self.ok("cert", "list")

    def test_gives_up_after_10_s_with_the_store_status(self):
        h = self.hold(12)
        t0 = time.monotonic()
        r = self.fails(tglib.STORE, "init", timeout=30)
        took = time.monotonic() - t0
        h.wait(20)
        h.stdout.close()
        self.assertRegex(r.err, "busy")
        self.assertGreaterEqual(took, 9.5)
        self.assertLess(took, 11.9)

    def test_fresh_wal_database_locked_by_another_process(self):
        h = self.hold(1.5, "WAL")
        self.waits_and_succeeds(h, "init")

    def test_existing_store_locked(self):
        self.ok("init")
        h = self.hold(1.5)
        self.waits_and_succeeds(h, "cert", "create", "web", "--cn", "web.example.com",
                                "--key", "ec:p256")

    def test_two_commands_create_the_same_store_at_once(self):
        e = dict(os.environ, TLSGATE_HOME=self.home)
        e.pop("TLSGATE_PASSWORD", None)
        for attempt in range(5):
            home = os.path.join(self.dir, f"h{attempt}")
            e["TLSGATE_HOME"] = home
            # only init creates a store (issue 14, item 4): four at once on one home
            ps = [subprocess.Popen([tglib.BIN, "init"], env=e, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(4)]
            for p in ps:
                out, err = p.communicate(timeout=60)
                self.assertEqual(p.returncode, 0, f"attempt {attempt}: {err}")
            r = self.ok("--json", "cert", "list", home=home)
            self.assertIn("appliance default", [c["name"] for c in r.json()])


if __name__ == "__main__":
    tglib.main()
