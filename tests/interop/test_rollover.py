#!/usr/bin/python3
"""CA rollovers planned ahead (issue 11 item 5, SPEC K10) and the expiry check (item 6, K9).

  * `ca rollover-plan`: every CA's dates, checked against `openssl x509 -enddate`, its
    warning threshold, rollover state and due date;
  * `serve` reissues at start a signing root made 265 days ago for a year (the lead time
    is a year, and half its validity has passed), not one made now for 100 days:
    the successor has the same subject and public key (openssl), a later notAfter, and a
    leaf signed by the old copy's key verifies against the new copy alone (openssl
    verify); the proxy that signed with the old copy signs with the new one and its CA
    page offers both; the audit log has the row; a second start reissues nothing;
  * `ca rollover-lead 0` turns it off; bad values are refused and change nothing;
  * `cert list --expiring DAYS`: soonest first, with days left in the table and in --json.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_rollover.py
"""
import datetime
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import BIN, INVALID, OK, TgCase, free_port  # noqa: E402

DAY = 86400
SLOW = 4 if tglib.is_asan() else 1


def openssl_time(text):
    """'notAfter=Mar  7 20:32:43 2027 GMT' as unix seconds (read by Python)."""
    v = text.strip().split("=", 1)[1]
    return int(datetime.datetime.strptime(v, "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=datetime.timezone.utc).timestamp())


class Rollover(TgCase):
    def setUp(self):
        super().setUp()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            self.stop(p)
        super().tearDown()

    # ---- helpers ----

    def j(self, *args):
        return self.ok("--json", *args).json()

    def plan(self):
        return {r["name"]: r for r in self.j("ca", "rollover-plan")}

    def pem_of(self, name, out):
        self.ok("ca", "export", name, "--format", "pem", "--out", self.path(out))
        return self.path(out)

    def x509(self, pem, *what):
        return self.sh("openssl", "x509", "-in", pem, "-noout", *what).stdout

    def serve(self):
        """Starts serve (the enrollment thread runs the rollover job at start)."""
        port = free_port()
        log = self.path(f"serve-{len(self.procs)}.log")
        e = dict(os.environ, TLSGATE_HOME=self.home)
        e.pop("TLSGATE_PASSWORD", None)
        with open(log, "wb") as f:
            p = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--no-admin",
                                  "--threads", "1"], stdin=subprocess.DEVNULL, stdout=f,
                                 stderr=f, env=e, cwd=self.dir)
        p.log = log
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15 * SLOW)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        return p.returncode

    def log_of(self, p):
        with open(p.log, errors="replace") as f:
            return f.read()

    def wait_for(self, what, fn, limit=10):
        deadline = time.monotonic() + limit * SLOW
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.1)
        self.fail(f"{what}: not within {limit * SLOW} s")

    def audit_rollovers(self):
        return [r for r in self.j("audit", "--limit", "1000") if r["action"] == "ca.rollover"]

    def http_get(self, port, path):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        head, _, body = data.partition(b"\r\n\r\n")
        return head.split(b"\r\n")[0], body

    def backdated_ca(self, name, cn, ago_days, left_days):
        """A self-signed CA with its key, valid from ago_days ago to left_days ahead (made
        with Python's cryptography: the openssl CLI here cannot backdate), imported with
        its key; its key is left in NAME.key."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example")])
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=ago_days))
                .not_valid_after(now + datetime.timedelta(days=left_days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))
        self.write(name + ".pem", cert.public_bytes(serialization.Encoding.PEM), "wb")
        self.write(name + ".key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), "wb")
        self.ok("cert", "import", self.path(name + ".pem"), "--key", self.path(name + ".key"),
                "--name", name)

    # ---- the plan ----

    def test_plan_dates(self):
        self.ok("cert", "create", "short", "--signing", "--cn", "Short CA", "--days", "100",
                "--key", "ec:p256")
        self.ok("cert", "create", "long", "--signing", "--cn", "Long CA", "--days", "4000",
                "--key", "ec:p256")
        # a CA without its key, made by openssl: the plan lists it, nothing can reissue it
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "ext.key", "-out", "ext.pem", "-subj", "/CN=External CA",
                "-days", "20", "-addext", "basicConstraints=critical,CA:TRUE")
        self.ok("ca", "import", self.path("ext.pem"), "--name", "external")
        now = int(time.time())
        plan = self.plan()
        for name in ("short", "long", "external"):
            row = plan[name]
            pem = self.pem_of(name, name + ".pem")
            self.assertEqual(row["not_after_unix"], openssl_time(self.x509(pem, "-enddate")), name)
            self.assertEqual(row["not_before_unix"], openssl_time(self.x509(pem, "-startdate")),
                             name)
            left = row["not_after_unix"] - now  # whole days, rounded up
            self.assertIn(row["days_left"], (-(-left // DAY), -(-(left - 5) // DAY)), name)
            self.assertFalse(row["expired"])
            self.assertIsNone(row["successor"])
            # due a lead time (365 days) before the end, but not before half the validity
            half = row["not_before_unix"] + (row["not_after_unix"] - row["not_before_unix"]) // 2
            self.assertEqual(row["rollover_due_unix"],
                             max(row["not_after_unix"] - 365 * DAY, half), name)
        self.assertEqual(plan["long"]["rollover_due_unix"], plan["long"]["not_after_unix"] - 365 * DAY)
        self.assertEqual(plan["short"]["rollover_due_unix"],
                         plan["short"]["not_before_unix"] + 50 * DAY)
        self.assertEqual((plan["short"]["warning"], plan["long"]["warning"],
                          plan["external"]["warning"]), (180, 0, 30))
        self.assertEqual((plan["short"]["rollover"], plan["long"]["rollover"],
                          plan["external"]["rollover"]), ("automatic", "automatic", "manual"))
        self.assertEqual((plan["short"]["due"], plan["long"]["due"], plan["external"]["due"]),
                         (False, False, False))
        self.assertFalse(plan["external"]["private_key"])
        # soonest expiry first
        order = [r["name"] for r in self.j("ca", "rollover-plan")]
        self.assertLess(order.index("external"), order.index("short"))
        self.assertLess(order.index("short"), order.index("long"))
        # the table fits 80 columns and shows the same facts
        table = self.ok("ca", "rollover-plan").out
        for line in table.splitlines():
            self.assertLessEqual(len(line), 80, line)
        due = time.strftime("%Y-%m-%d", time.gmtime(plan["short"]["rollover_due_unix"]))
        self.assertRegex(table, r"short\s+\S+\s+\d+\s+180\s+automatic\s+" + due)
        self.assertRegex(table, r"external\s+\S+\s+\d+\s+30\s+manual")

    # ---- the lead time ----

    def test_lead_setting(self):
        self.ok("init")
        self.assertEqual(self.j("config", "show")["ca_rollover_lead_days"], 365)
        for bad in ("abc", "36501", "1.5", ""):
            r = self.tg("ca", "rollover-lead", bad)
            self.assertEqual(r.rc, INVALID, r)
            self.assertIn("from 0 (off) to 36500", r.err)
        self.assertEqual(self.j("config", "show")["ca_rollover_lead_days"], 365)
        self.assertEqual(self.tg("ca", "rollover-lead").rc, tglib.USAGE)
        self.assertEqual(self.j("ca", "rollover-lead", "90"), {"ca_rollover_lead_days": 90})
        self.assertEqual(self.j("config", "show")["ca_rollover_lead_days"], 90)
        self.assertIn("CA rollover            90 days", self.ok("config", "show").out)
        self.ok("ca", "rollover-lead", "0")
        self.assertIn("CA rollover            off", self.ok("config", "show").out)

    def test_lead_zero_turns_it_off(self):
        self.backdated_ca("sig", "Off CA", 265, 100)
        self.assertTrue(self.plan()["sig"]["due"])
        self.ok("ca", "rollover-lead", "0")
        row = self.plan()["sig"]
        self.assertEqual((row["rollover"], row["due"]), ("off", False))
        p = self.serve()
        self.wait_for("the warning for the CA",
                      lambda: "automatic rollover is off" in self.log_of(p))
        self.assertEqual(self.stop(p), 0)
        self.assertEqual([r["name"] for r in self.j("ca", "list")], ["sig"])
        self.assertEqual(self.audit_rollovers(), [])

    # ---- serve does it ----

    def test_serve_reissues(self):
        # a root made 265 days ago for a year: within the lead time, past half its validity
        self.backdated_ca("sig", "Rollover CA", 265, 100)
        # one made now for 100 days: within the lead time, but not due before half of it
        self.ok("cert", "create", "young", "--signing", "--cn", "Young CA", "--days", "100",
                "--key", "ec:p256")
        old = self.pem_of("sig", "old.pem")
        # a leaf signed with the old copy
        self.sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf.example")
        self.write("leaf.ext", "subjectAltName=DNS:leaf.example\nbasicConstraints=CA:FALSE\n"
                   "authorityKeyIdentifier=keyid\n")
        self.sh("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", old, "-CAkey", "sig.key",
                "-CAcreateserial", "-days", "30", "-extfile", "leaf.ext", "-out", "leaf.pem")
        # a proxy that signs with it
        self.ok("truststore", "create", "ts")
        pport = free_port()
        self.ok("proxy", "client", "create", "px", "--signing", "sig", "--truststore", "ts",
                "--listen", f"127.0.0.1:{pport}")
        p = self.serve()
        succ = self.wait_for("the rollover", lambda: self.plan()["sig"]["successor"])
        plan = self.plan()
        self.assertEqual(plan["sig"]["rollover"], "done")
        self.assertTrue(succ.startswith("sig until "), succ)
        new = self.pem_of(succ, "new.pem")
        self.assertEqual(self.x509(new, "-subject"), self.x509(old, "-subject"))
        self.assertEqual(self.x509(new, "-pubkey"), self.x509(old, "-pubkey"))
        self.assertNotEqual(self.x509(new, "-serial"), self.x509(old, "-serial"))
        self.assertGreater(openssl_time(self.x509(new, "-enddate")),
                           openssl_time(self.x509(old, "-enddate")))
        # 365 days, the original's length, from the moment of the reissue
        self.assertEqual(openssl_time(self.x509(new, "-enddate")) -
                         openssl_time(self.x509(new, "-startdate")), 365 * DAY)
        self.assertLess(abs(openssl_time(self.x509(new, "-startdate")) - time.time()), 60)
        day = time.strftime("%Y-%m-%d", time.gmtime(plan[succ]["not_after_unix"]))
        self.assertEqual(succ, f"sig until {day}")
        self.sh("openssl", "verify", "-x509_strict", "-CAfile", new, self.path("leaf.pem"))
        # the copy is not due again before half its validity
        self.assertEqual(plan[succ]["rollover"], "automatic")
        self.assertFalse(plan[succ]["due"])
        self.assertEqual(plan[succ]["rollover_due_unix"],
                         plan[succ]["not_before_unix"] + 365 * DAY // 2)
        self.assertEqual((plan["young"]["rollover"], plan["young"]["due"],
                          plan["young"]["successor"]), ("automatic", False, None))
        # both copies offered: the ca list, and the proxy's CA page (new copy first)
        names = [r["name"] for r in self.j("ca", "list")]
        self.assertIn("sig", names)
        self.assertIn(succ, names)
        self.assertEqual(self.j("proxy", "client", "show", "px")["signing"], succ)

        def page_has_both():
            try:
                st1, b1 = self.http_get(pport, "/ca.pem")
                st2, b2 = self.http_get(pport, "/ca-2.pem")
            except OSError:
                return False
            # the proxy is rebuilt once a second: a build read while the rollover committed
            # may show the copies the other way round until the next one
            return (b" 200 " in st1 and b" 200 " in st2 and
                    b1.decode().strip() == self.rd(new).strip() and (b1, b2))
        b1, b2 = self.wait_for("the proxy's CA page with both copies, the new one first",
                               page_has_both)
        self.assertEqual(b1.decode().strip(), self.rd(new).strip())
        self.assertEqual(b2.decode().strip(), self.rd(old).strip())
        # the audit log and the log
        rows = self.audit_rollovers()
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual((rows[0]["actor"], rows[0]["object"], rows[0]["outcome"]),
                         ("serve", "sig", "ok"))
        self.assertEqual(rows[0]["detail"]["successor"], succ)
        self.assertEqual(rows[0]["detail"]["proxies_moved"], 1)
        self.wait_for("the log line", lambda: f"reissued as '{succ}'" in self.log_of(p))
        self.assertEqual(self.stop(p), 0)
        log = self.log_of(p)
        self.assertEqual(log.count("CA certificate 'sig' expires within 180 days"), 1, log)
        # a second start: nothing more to do
        before = len(self.j("ca", "list"))
        p2 = self.serve()
        self.wait_for("the second run's warnings",
                      lambda: f"CA certificate '{succ}' expires within" in self.log_of(p2))
        time.sleep(0.5)
        self.assertEqual(self.stop(p2), 0)
        self.assertEqual(len(self.j("ca", "list")), before)
        self.assertEqual(len(self.audit_rollovers()), 1)
        self.assertNotIn("reissued as", self.log_of(p2))
        # a copy of the copy is named after the family, not "sig until A until B"
        third = self.j("ca", "reissue", succ, "--days", "400")
        day = time.strftime("%Y-%m-%d", time.gmtime(third["not_after_unix"]))
        self.assertEqual(third["name"], f"sig until {day}")
        self.assertEqual(third["predecessor"], succ)

    # ---- K9: the scriptable expiry check ----

    def test_expiring_soonest_first(self):
        for name, days in (("a-late", 50), ("b-soon", 5), ("c-mid", 20), ("d-far", 400)):
            self.ok("cert", "create", name, "--cn", f"{name}.example", "--days", str(days),
                    "--key", "ec:p256")
        now = int(time.time())
        rows = self.j("cert", "list", "--expiring", "60")
        self.assertEqual([r["name"] for r in rows], ["b-soon", "c-mid", "a-late"])
        for r, days in zip(rows, (5, 20, 50)):
            pem = self.path(r["name"] + ".pem")
            self.ok("cert", "export", r["name"], "--format", "pem", "--out", pem)
            end = openssl_time(self.x509(pem, "-enddate"))
            self.assertEqual(r["not_after_unix"], end)
            self.assertIn(r["days_left"], (-(-(end - now) // DAY), -(-(end - now - 5) // DAY)))
            self.assertEqual(r["days_left"], days)  # rounded up: made for N days, N left
        # without --expiring: name order, every row with its days left
        allrows = self.j("cert", "list")
        self.assertEqual([r["name"] for r in allrows], sorted(r["name"] for r in allrows))
        self.assertTrue(all(isinstance(r["days_left"], int) for r in allrows))
        table = self.ok("cert", "list", "--expiring", "60", "--wide").out.splitlines()
        self.assertIn("Days Left", table[0])
        self.assertEqual([ln.split()[0] for ln in table[1:-1]], ["b-soon", "c-mid", "a-late"])
        self.assertTrue(table[-1].startswith("3 certificates expiring within 60 days"), table)
        col = table[0].index("Days Left")
        for ln, r in zip(table[1:-1], rows):  # a second may have passed since
            self.assertIn(int(ln[col:].split()[0]), (r["days_left"], r["days_left"] - 1), ln)
        self.assertEqual(self.j("cert", "list", "--expiring", "0"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
