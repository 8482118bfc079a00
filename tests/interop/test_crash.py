"""Crash safety: tlsgate killed with SIGKILL at random moments never damages the store,
never loses a certificate it reported as imported, and never leaves half an object.

The certificates are made with Python cryptography; the store is checked with SQLite's
own integrity_check and the exported DER is compared with the input byte for byte.
"""
import datetime
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
from tglib import BIN, NOTFOUND  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

N_CERTS = 300
N_KILLS = 40
LOOP_BUDGET = 40.0  # seconds


def make_cert(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=60))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert


class CrashCase(tglib.TgCase):
    def setUp(self):
        super().setUp()
        self.ok("init")
        self.rng = random.Random(int.from_bytes(os.urandom(8), "big"))
        seed = self.rng.randrange(1 << 30)
        self.rng.seed(seed)
        self.seed = seed

    def env(self):
        e = dict(os.environ)
        e.pop("TLSGATE_PASSWORD", None)
        e["TLSGATE_HOME"] = self.home
        return e

    def popen(self, *args):
        return subprocess.Popen([os.path.abspath(BIN), *args], env=self.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=self.dir)

    def check_store_sound(self):
        """SQLite's own view: the database file is intact and its references hold."""
        db = os.path.join(self.home, "store.db")
        con = sqlite3.connect(db)
        try:
            res = con.execute("PRAGMA integrity_check").fetchall()
            self.assertEqual(res, [("ok",)], f"integrity_check (seed {self.seed}): {res}")
            fk = con.execute("PRAGMA foreign_key_check").fetchall()
            self.assertEqual(fk, [], f"foreign_key_check (seed {self.seed}): {fk}")
            # Every command is one transaction: no key without the certificate or request
            # it was made or imported for.
            orphans = con.execute(
                "SELECT id, descr FROM keys WHERE id NOT IN "
                "(SELECT key_id FROM certs WHERE key_id IS NOT NULL) AND id NOT IN "
                "(SELECT key_id FROM requests)").fetchall()
            self.assertEqual(orphans, [], f"keys left without an owner (seed {self.seed})")
        finally:
            con.close()

    def listed(self):
        r = self.ok("--json", "cert", "list")
        return {c["name"]: c for c in r.json()}

    def exported_der(self, name):
        out = self.path("export.der")
        if os.path.exists(out):
            os.unlink(out)
        self.ok("cert", "export", name, "--format", "der", "--out", out)
        with open(out, "rb") as f:
            return f.read()

    # ---------------------------------------------------------------------------------

    def test_kill_imports_at_random_moments(self):
        start = time.monotonic()
        files = {}  # CN -> (path, DER)
        for i in range(N_CERTS):
            cn = f"crash-{i:03d}.example.org"
            cert = make_cert(cn)
            der = cert.public_bytes(serialization.Encoding.DER)
            # Half PEM, half DER: both import paths are exercised.
            if i % 2:
                p = self.path(f"c{i:03d}.der")
                data = der
            else:
                p = self.path(f"c{i:03d}.pem")
                data = cert.public_bytes(serialization.Encoding.PEM)
            with open(p, "wb") as f:
                f.write(data)
            files[cn] = (p, der)
        cns = sorted(files)

        # Calibrate: how long does one import take here (the first few are not killed)?
        durations = []
        imported, killed, failed = set(), set(), {}
        calib = 8
        for cn in cns[:calib]:
            t0 = time.monotonic()
            r = self.tg("cert", "import", files[cn][0])
            durations.append(time.monotonic() - t0)
            self.assertEqual(r.rc, 0, r)
            self.assertIn("imported", r.out)
            imported.add(cn)
        typical = sorted(durations)[len(durations) // 2]

        kill_at = set(self.rng.sample(range(calib, N_CERTS), N_KILLS))
        kills_sent = 0
        for i, cn in enumerate(cns[calib:], start=calib):
            if time.monotonic() - start > LOOP_BUDGET:
                break
            t0 = time.monotonic()
            p = self.popen("cert", "import", files[cn][0])
            if i in kill_at:
                # Anywhere from before exec to just after the commit; "typical" follows the
                # machine's load (the median of the last imports that ran to the end), so
                # that a machine that gets faster meanwhile still sees imports killed.
                typical = sorted(durations[-8:])[len(durations[-8:]) // 2]
                time.sleep(self.rng.uniform(0.0, typical * 1.3))
                p.send_signal(signal.SIGKILL)
                kills_sent += 1
            out, err = p.communicate(timeout=60)
            if i not in kill_at:
                durations.append(time.monotonic() - t0)
            if p.returncode == 0:
                self.assertIn("imported", out, f"{cn}: exit 0 but: {out!r} {err!r}")
                imported.add(cn)
            elif p.returncode == -signal.SIGKILL:
                killed.add(cn)
            else:
                failed[cn] = (p.returncode, err)

        self.assertGreaterEqual(kills_sent, N_KILLS * 3 // 4, "the loop ran out of time")
        self.assertGreater(len(killed), N_KILLS // 4,
                           f"too few imports were actually killed ({len(killed)}); "
                           f"typical import {typical * 1000:.1f} ms")
        # A process killed earlier never makes a later, untouched one fail.
        self.assertEqual(failed, {}, f"imports failed after earlier kills (seed {self.seed})")

        # 1. The database file is intact.
        self.check_store_sound()
        # 2. tlsgate opens it and lists it.
        listed = self.listed()
        self.assertIn("appliance default", listed)
        # 3. Everything reported imported is there, byte for byte.
        for cn in sorted(imported):
            self.assertIn(cn, listed, f"{cn} was reported imported but is missing "
                                      f"(seed {self.seed})")
            self.assertEqual(self.exported_der(cn), files[cn][1],
                             f"{cn}: stored DER differs from the file")
        # 4. A killed import left either the whole certificate or nothing.
        for cn in sorted(killed):
            if cn in listed:
                self.assertEqual(self.exported_der(cn), files[cn][1],
                                 f"{cn} (killed): stored DER differs from the file")
        for name in listed:
            self.assertTrue(name == "appliance default" or name in files,
                            f"unexpected object {name!r} in the store")
        # 5. Killed imports can be repeated: each either imports now or is already there.
        for cn in sorted(killed):
            r = self.tg("cert", "import", files[cn][0])
            if cn in listed:
                self.assertEqual(r.rc, 0, f"{cn} is stored but re-import says {r}")
                self.assertIn("0 new, 1 already present", r.out, r)
            else:
                self.assertEqual(r.rc, 0, f"{cn} is absent but re-import says {r}")
        self.check_store_sound()
        self.assertTrue(set(imported | killed) <= set(self.listed()))
        print(f"\n  crash loop: seed {self.seed}, {len(imported)} imported, "
              f"{len(killed)} killed mid-way ({kills_sent} kills sent), "
              f"typical import {typical * 1000:.1f} ms, {time.monotonic() - start:.1f} s",
              file=sys.stderr)

    def test_kill_rsa4096_create(self):
        """cert create with an RSA-4096 key (slow key generation) killed part-way through:
        the store opens and 'big' is either complete or absent."""
        wal = os.path.join(self.home, "store.db-wal")
        before_names = set(self.listed())
        outcomes = []
        deadline = time.monotonic() + 35
        modes = ["random"] * 4 + ["wal"] * 3
        self.rng.shuffle(modes)
        for attempt, mode in enumerate(modes):
            if time.monotonic() > deadline:
                break
            p = self.popen("cert", "create", "big", "--cn", "big.example.org",
                           "--key", "rsa:4096", "--days", "30")
            if mode == "random":
                time.sleep(self.rng.uniform(0.05, 2.5))
            else:
                # Kill the moment the store starts to change (the write transaction).
                def size():
                    try:
                        return os.stat(wal).st_size
                    except FileNotFoundError:
                        return -1
                time.sleep(0.002)
                base = size()
                t_end = time.monotonic() + 20
                while p.poll() is None and time.monotonic() < t_end:
                    if size() > max(base, 0):
                        break
            p.send_signal(signal.SIGKILL)
            p.communicate(timeout=60)
            rc = p.returncode

            self.check_store_sound()
            listed = self.listed()
            self.assertEqual(set(listed) - {"big"}, before_names)
            if rc == 0:
                self.assertIn("big", listed, "create exited 0 but 'big' is missing")
            if "big" in listed:
                outcomes.append("present")
                c = listed["big"]
                self.assertTrue(c["private_key"], f"'big' stored without its key: {c}")
                s = self.ok("--json", "cert", "show", "big").json()
                self.assertIn("RSA", str(s))
                der = self.exported_der("big")
                cert = x509.load_der_x509_certificate(der)
                self.assertEqual(cert.public_key().key_size, 4096)
                pw = self.write("pw", "a long enough passphrase\n")
                self.ok("cert", "export", "big", "--format", "p12", "--with-key",
                        "--passphrase-file", pw, "--out", self.path("big.p12"), "--force")
                self.ok("cert", "delete", "big")
            else:
                outcomes.append("absent")
                self.fails(NOTFOUND, "cert", "show", "big")
            self.check_store_sound()
        self.assertGreaterEqual(len(outcomes), 3)
        # The store still works normally afterwards.
        self.ok("cert", "create", "after", "--cn", "after.example.org", "--key", "ec:p256")
        print(f"\n  rsa-4096 kills (seed {self.seed}): {list(zip(modes, outcomes))}",
              file=sys.stderr)


if __name__ == "__main__":
    tglib.main()
