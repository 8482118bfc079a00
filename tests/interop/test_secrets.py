"""Secrets at rest: no private key material appears in the store's files (other than the
master key file), the files have private modes, and a sealed key that was altered or moved
to another row is refused with the store status (7) instead of being used.

Key material is obtained independently: exported as PKCS#12 by tlsgate, then unpacked by
the openssl CLI and parsed by Python cryptography.
"""
import base64
import os
import sqlite3
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
from tglib import STORE  # noqa: E402

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

PASS = "export passphrase 1234"

CA_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[ee]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
"""


def int_bytes(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return n.to_bytes(length, "big")


def needles_for(der_pkcs8):
    """Byte strings that must not appear in the store: the key in several encodings and
    its raw secret numbers."""
    key = serialization.load_der_private_key(der_pkcs8, password=None)
    out = {
        "PKCS#8 DER": der_pkcs8,
        "traditional DER": key.private_bytes(serialization.Encoding.DER,
                                             serialization.PrivateFormat.TraditionalOpenSSL,
                                             serialization.NoEncryption()),
        # A stretch of the base64 (PEM body) past the common header, over the secret.
        "PKCS#8 DER base64": base64.b64encode(der_pkcs8)[64:112],
    }
    nums = key.private_numbers()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        out["EC private value"] = int_bytes(nums.private_value, size)
        out["EC private value (hex)"] = int_bytes(nums.private_value, size).hex().encode()
        out["EC private value (HEX)"] = int_bytes(nums.private_value, size).hex().upper().encode()
    elif isinstance(key, rsa.RSAPrivateKey):
        half = key.key_size // 16
        out["RSA p"] = int_bytes(nums.p, half)
        out["RSA q"] = int_bytes(nums.q, half)
        out["RSA d"] = int_bytes(nums.d)
        out["RSA p (hex)"] = int_bytes(nums.p, half).hex().encode()
    else:
        raise AssertionError(f"unexpected key type {type(key)}")
    return key, out


class Secrets(tglib.TgCase):
    def setUp(self):
        super().setUp()
        self.ok("init")
        self.pw = self.write("pw", PASS + "\n")

    # -- helpers --------------------------------------------------------------------------

    def key_der(self, name):
        """PKCS#8 DER of NAME's private key: tlsgate PKCS#12 export -> openssl."""
        p12 = self.path(f"{name}.p12")
        self.ok("cert", "export", name, "--format", "p12", "--with-key",
                "--passphrase-file", self.pw, "--out", p12)
        self.sh("openssl", "pkcs12", "-in", p12, "-nocerts", "-nodes", "-passin",
                f"file:{self.pw}", "-out", f"{name}.key.pem")
        self.sh("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", f"{name}.key.pem",
                "-outform", "DER", "-out", f"{name}.p8.der")
        with open(self.path(f"{name}.p8.der"), "rb") as f:
            return f.read()

    def store_files(self):
        found = {}
        for root, _dirs, files in os.walk(self.home):
            for fn in files:
                p = os.path.join(root, fn)
                if os.path.abspath(p) == os.path.abspath(os.path.join(self.home, "master.key")):
                    continue
                with open(p, "rb") as f:
                    found[os.path.relpath(p, self.home)] = f.read()
        return found

    def assert_no_secrets(self, needles, where):
        files = self.store_files()
        self.assertIn("store.db", files)
        for fn, data in files.items():
            for marker in (b"PRIVATE KEY", b"PRIVATE-KEY", b"private key-----"):
                self.assertNotIn(marker, data, f"{where}: {fn} contains {marker!r}")
            for label, needle in needles.items():
                self.assertGreaterEqual(len(needle), 16, label)
                self.assertNotIn(needle, data, f"{where}: {fn} contains the {label}")
        return sorted(files)

    def make_ca(self):
        self.write("ca.cnf", CA_CNF)
        self.sh("openssl", "req", "-x509", "-config", "ca.cnf", "-extensions", "ca",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Test Secrets CA",
                "-days", "30")

    def sign_csr(self, csr, out):
        self.sh("openssl", "x509", "-req", "-in", csr, "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "30", "-extfile", "ca.cnf", "-extensions", "ee",
                "-out", out)

    # -- the scan -------------------------------------------------------------------------

    def test_no_private_key_material_in_store_files(self):
        db = os.path.join(self.home, "store.db")
        # Hold a read transaction open while the objects are made: the WAL then cannot
        # be checkpointed away, so its content is scanned as well.
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM certs").fetchall()
        try:
            self.ok("cert", "create", "rsa web", "--cn", "rsa.example.com", "--key", "rsa:2048")
            self.ok("cert", "create", "ec web", "--cn", "ec.example.com", "--key", "ec:p256")
            self.ok("cert", "create", "ec384 web", "--cn", "ec384.example.com", "--key",
                    "ec:p384", "--san", "IP:192.0.2.1")
            self.ok("request", "create", "req rsa", "--cn", "reqrsa.example.com", "--key",
                    "rsa:2048", "--country", "DE", "--org", "Example GmbH")
            self.ok("request", "create", "req ec", "--cn", "reqec.example.com", "--key",
                    "ec:p384")
            self.ok("request", "create", "req pending", "--cn", "pending.example.com",
                    "--key", "ec:p256")
            # Complete two requests with certificates signed by an openssl CA, so that
            # their keys become exportable (and comparable).
            self.make_ca()
            for req in ("req rsa", "req ec"):
                csr = self.path(req.replace(" ", "_") + ".csr")
                self.ok("request", "export", req, "--out", csr)
                crt = self.path(req.replace(" ", "_") + ".crt")
                self.sign_csr(csr, crt)
                self.ok("cert", "import", crt, "--name", req)
            # A certificate + key PEM made by openssl.
            self.sh("openssl", "req", "-x509", "-config", "ca.cnf", "-extensions", "ee",
                    "-newkey", "rsa:2048", "-nodes", "-keyout", "imp.key", "-out", "imp.crt",
                    "-subj", "/CN=imported.example.com", "-days", "30")
            with open(self.path("imp.crt")) as c, open(self.path("imp.key")) as k, \
                    open(self.path("imp.pem"), "w") as f:
                f.write(c.read() + k.read())
            self.ok("cert", "import", self.path("imp.pem"), "--name", "imported")
            # An imported key with --no-export: cannot be exported, but must not be in
            # the store in clear either.
            self.sh("openssl", "req", "-x509", "-config", "ca.cnf", "-extensions", "ee",
                    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "noexp.key", "-out", "noexp.crt",
                    "-subj", "/CN=noexp.example.com", "-days", "30")
            self.ok("cert", "import", self.path("noexp.crt"), "--key", self.path("noexp.key"),
                    "--name", "noexp", "--no-export")

            needles = {}
            exported = {}
            for name in ("appliance default", "rsa web", "ec web", "ec384 web", "req rsa",
                         "req ec", "imported"):
                der = self.key_der(name)
                key, n = needles_for(der)
                exported[name] = key
                for label, v in n.items():
                    needles[f"{label} of '{name}'"] = v
            # The imported keys as openssl wrote them (independent of our export).
            for stem in ("imp", "noexp"):
                with open(self.path(f"{stem}.key"), "rb") as f:
                    k = serialization.load_pem_private_key(f.read(), password=None)
                der = k.private_bytes(serialization.Encoding.DER,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
                _, n = needles_for(der)
                for label, v in n.items():
                    needles[f"{label} of {stem}.key"] = v
            # Sanity: the export of 'imported' is the key openssl made.
            with open(self.path("imp.key"), "rb") as f:
                imp = serialization.load_pem_private_key(f.read(), None)
            self.assertEqual(exported["imported"].private_numbers(), imp.private_numbers())

            # Control: the needles do find the key where it is in clear (openssl's file).
            with open(self.path("imp.key"), "rb") as f:
                clear = f.read()
            self.assertIn(b"PRIVATE KEY", clear)
            for label in ("PKCS#8 DER base64 of imp.key", "PKCS#8 DER base64 of 'imported'"):
                self.assertIn(needles[label], clear, label)
            with open(self.path("imported.p8.der"), "rb") as f:
                clear = f.read()
            for label in ("PKCS#8 DER of imp.key", "RSA p of imp.key", "RSA q of imp.key",
                          "RSA d of imp.key"):
                self.assertIn(needles[label], clear, label)

            files = self.assert_no_secrets(needles, "with the WAL held open")
            self.assertIn("store.db-wal", files, "the WAL should still be there")
            self.assertGreater(len(self.store_files()["store.db-wal"]), 10000)
        finally:
            reader.execute("COMMIT")
            reader.close()
        # After a clean close (checkpoint), the main database file has everything.
        self.ok("cert", "list")
        self.assert_no_secrets(needles, "after checkpoint")
        con = sqlite3.connect(db)
        try:
            n_keys = con.execute("SELECT count(*) FROM keys").fetchone()[0]
        finally:
            con.close()
        self.assertEqual(n_keys, 9)  # default, 3 created, 3 requests, 2 imported

    # -- file modes -----------------------------------------------------------------------

    def check_modes(self, home):
        self.assertEqual(stat.S_IMODE(os.stat(home).st_mode), 0o700, "home directory")
        for fn in ("master.key", "store.db"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(home, fn)).st_mode), 0o600, fn)
        for fn in ("store.db-wal", "store.db-shm"):
            p = os.path.join(home, fn)
            if os.path.exists(p):
                self.assertEqual(stat.S_IMODE(os.stat(p).st_mode) & 0o077, 0, fn)

    def test_file_modes(self):
        self.ok("cert", "create", "web", "--cn", "web.example.com", "--key", "ec:p256")
        self.check_modes(self.home)

    def test_file_modes_with_permissive_umask(self):
        home = os.path.join(self.dir, "loose", "home")
        old = os.umask(0)
        try:
            self.ok("init", home=home)
            self.ok("cert", "create", "web", "--cn", "web.example.com", "--key", "ec:p256",
                    home=home)
        finally:
            os.umask(old)
        self.check_modes(home)

    # -- tampering ------------------------------------------------------------------------

    def sealed_of(self, con, name):
        return con.execute("SELECT k.id, k.sealed FROM keys k JOIN certs c ON c.key_id = k.id "
                           "WHERE c.name = ?", (name,)).fetchone()

    def export_key(self, name):
        out = self.path(f"{name}.p12")
        if os.path.exists(out):
            os.unlink(out)
        return out, ("cert", "export", name, "--with-key", "--format", "p12",
                     "--passphrase-file", self.pw, "--out", out)

    def tamper_setup(self):
        self.ok("cert", "create", "t1", "--cn", "t1.example.com", "--key", "ec:p256")
        self.ok("cert", "create", "t2", "--cn", "t2.example.com", "--key", "ec:p256")
        for n in ("t1", "t2"):
            _, args = self.export_key(n)
            self.ok(*args)
        return os.path.join(self.home, "store.db")

    def test_flipped_byte_in_sealed_key(self):
        db = self.tamper_setup()
        con = sqlite3.connect(db)
        kid, orig = self.sealed_of(con, "t1")
        orig = bytes(orig)
        con.close()
        positions = {"nonce": 1, "first ciphertext byte": 13, "middle": len(orig) // 2,
                     "tag": len(orig) - 1, "version": 0}
        for where, pos in positions.items():
            with self.subTest(where=where, pos=pos):
                bad = bytearray(orig)
                bad[pos] ^= 0x01
                con = sqlite3.connect(db)
                con.execute("UPDATE keys SET sealed = ? WHERE id = ?", (bytes(bad), kid))
                con.commit()
                con.close()
                out, args = self.export_key("t1")
                r = self.fails(STORE, *args)
                msg = r"integrity" if where != "version" else r"integrity|damaged|altered"
                self.assertRegex(r.err.lower(), msg, r)
                self.assertFalse(os.path.exists(out), "a failed export left a file")
                # The other key is untouched and still usable.
                out2, args2 = self.export_key("t2")
                self.ok(*args2)
                con = sqlite3.connect(db)
                con.execute("UPDATE keys SET sealed = ? WHERE id = ?", (orig, kid))
                con.commit()
                con.close()
        out, args = self.export_key("t1")
        self.ok(*args)  # restored: works again

    def test_swapped_sealed_keys(self):
        db = self.tamper_setup()
        con = sqlite3.connect(db)
        id1, s1 = self.sealed_of(con, "t1")
        id2, s2 = self.sealed_of(con, "t2")
        self.assertNotEqual(id1, id2)
        con.execute("UPDATE keys SET sealed = ? WHERE id = ?", (s2, id1))
        con.execute("UPDATE keys SET sealed = ? WHERE id = ?", (s1, id2))
        con.commit()
        con.close()
        for n in ("t1", "t2"):
            out, args = self.export_key(n)
            r = self.fails(STORE, *args)
            self.assertRegex(r.err.lower(), r"integrity", r)
            self.assertFalse(os.path.exists(out))

    def test_wrong_master_key(self):
        self.tamper_setup()
        mk = os.path.join(self.home, "master.key")
        with open(mk, "rb") as f:
            data = bytearray(f.read())
        data[5] ^= 0x80
        with open(mk, "wb") as f:
            f.write(bytes(data))
        out, args = self.export_key("t1")
        r = self.fails(STORE, *args)
        self.assertRegex(r.err.lower(), r"master key|integrity", r)
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    tglib.main()
