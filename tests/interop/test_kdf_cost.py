"""A file may not name a password-hashing cost that takes minutes to pay (decode.c).

Encrypted PKCS#8, PEM and PKCS#12 carry their own KDF parameters (PBKDF2 and PKCS#12
iterations, scrypt N, r and p). tlsgate adds up the work of every encrypted part of a
file and refuses more than its budget (README, "Limits") before deriving anything, with
exit 3, quickly, store unchanged. Ordinary files (openssl's and Python cryptography's
defaults, tlsgate's own exports) still import. Hostile files are built by hand in DER
(kdf_files.py); the ordinary ones by the openssl CLI and Python cryptography.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
import kdf_files  # noqa: E402


class KdfCost(tglib.TgCase):
    def setUp(self):
        super().setUp()
        self.ok("init")
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-subj", "/CN=kdf.example.com",
                "-days", "5")
        self.write("pw", "longpassphrase\n")

    def refused_fast(self, *files, within=2.0):
        before = self.dump()
        t0 = time.monotonic()
        try:
            r = self.fails(tglib.INVALID, "cert", "import", *files, "--password-file",
                           self.path("pw"), timeout=30)
        except subprocess.TimeoutExpired:
            self.fail(f"importing {files} ran for 30 s: the derivation cost was paid")
        self.assertLess(time.monotonic() - t0, within, "the cost was paid before refusing")
        self.assertRegex(r.err, r"password-hashing work .* limit is 4,000,000|"
                                r"scrypt memory .* limit is 32 MiB")
        self.assertEqual(before, self.dump())
        return r

    def test_hostile_files_refused_before_any_derivation(self):
        for name, data in kdf_files.hostile().items():
            with self.subTest(file=name):
                p = self.write(name, data, "wb")
                t0 = time.monotonic()
                r = self.refused_fast(p)
                if name.startswith("scrypt-mem") or name.startswith("scrypt-r"):
                    self.assertIn("memory", r.err)
                print(f"  {name} ({len(data)} bytes): refused in "
                      f"{time.monotonic() - t0:.3f} s", file=sys.stderr)
                # the same file given as --key
                self.refused_fast(self.path("c.pem"), "--key", p)

    def test_budget_is_per_file_and_summed(self):
        # Three PEM blocks of 1,500,000 iterations: each fits, together they do not.
        one = kdf_files.pem(kdf_files.pkcs8(kdf_files.pbes2_pbkdf2(1500000)))
        self.refused_fast(self.write("three.pem", one * 3))
        # 1,601 blocks of 1 iteration: each derivation counts at least 2,500.
        tiny = kdf_files.pem(kdf_files.pkcs8(kdf_files.pbes2_pbkdf2(1)))
        self.refused_fast(self.write("many.pem", tiny * 1601))

    def test_too_many_private_keys_in_one_file(self):
        # Not key derivation, the same class of cost: every private key block costs about
        # 0.5 ms to decode, so a 10 MiB PEM of 43,000 plain keys took 21 s. At most 1,000
        # private keys per file; the 1,001st is refused before it is decoded.
        key = self.rd(self.path("k.pem"))
        self.write("many-keys.pem", self.rd(self.path("c.pem")) + key * 1001)
        r = self.fails(tglib.INVALID, "cert", "import", self.path("many-keys.pem"), timeout=30)
        self.assertRegex(r.err, "more than 1,000 private keys")
        self.write("ok-keys.pem", self.rd(self.path("c.pem")) + key * 3)
        self.ok("cert", "import", self.path("ok-keys.pem"))

    def test_bags_revealed_by_decryption_are_charged(self):
        # The outer safe costs little and decrypts with the password; the three key bags
        # inside it (1,500,000 iterations each, and they do decrypt) are seen only then,
        # and the budget stops the third while decoding: the check made before decoding
        # cannot see them.
        self.sh("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", "k.pem", "-outform", "DER",
                "-out", "k.p8.der")
        bag = kdf_files.shrouded_bag_real(self.rd(self.path("k.p8.der"), "rb"),
                                          b"longpassphrase", 1500000)
        data = kdf_files.pfx([kdf_files.p7_encrypted_real([bag] * 3, b"longpassphrase")])
        # Two of the bags are paid for (3,000,000 units, about 0.8 s here, several seconds
        # under the sanitizers), the third is refused: bounded, not free.
        self.refused_fast(self.write("hidden.p12", data, "wb"), within=20.0)

    def test_usual_files_still_import(self):
        pw = self.path("pw")
        # openssl defaults: PBKDF2 2048 (PKCS#8), scrypt N=16384 r=8 p=1, PKCS#12 2048.
        self.sh("openssl", "pkcs8", "-topk8", "-in", "k.pem", "-v2", "aes-256-cbc",
                "-passout", "pass:longpassphrase", "-out", "d.p8")
        self.sh("openssl", "pkcs8", "-topk8", "-in", "k.pem", "-scrypt", "-passout",
                "pass:longpassphrase", "-out", "s.p8")
        self.sh("openssl", "pkcs12", "-export", "-in", "c.pem", "-inkey", "k.pem",
                "-passout", "pass:longpassphrase", "-out", "d.p12")
        self.sh("openssl", "pkcs12", "-export", "-legacy", "-in", "c.pem", "-inkey", "k.pem",
                "-passout", "pass:longpassphrase", "-out", "l.p12")
        for f in ("d.p8", "s.p8"):
            with self.subTest(file=f):
                self.ok("cert", "import", self.path("c.pem"), "--key", self.path(f),
                        "--password-file", pw, "--name", "k-" + f)
                self.ok("cert", "delete", "k-" + f)
        for f in ("d.p12", "l.p12"):
            with self.subTest(file=f):
                self.ok("cert", "import", self.path(f), "--password-file", pw, "--name", f)
                self.ok("cert", "delete", f)
        # Python cryptography's PKCS#12 (its default KDF settings).
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
        from cryptography import x509
        key = serialization.load_pem_private_key(self.rd(self.path("k.pem"), "rb"), None)
        cert = x509.load_pem_x509_certificate(self.rd(self.path("c.pem"), "rb"))
        data = pkcs12.serialize_key_and_certificates(
            b"py", key, cert, None,
            serialization.BestAvailableEncryption(b"longpassphrase"))
        self.write("py.p12", data, "wb")
        self.ok("cert", "import", self.path("py.p12"), "--password-file", pw, "--name", "py")
        # tlsgate's own exports, every profile.
        profiles = ("modern", "legacy-des", "legacy-rc2")
        for prof in profiles:
            self.ok("cert", "export", "py", "--format", "p12", "--with-key", "--p12-profile",
                    prof, "--passphrase-file", pw, "--out", self.path(prof + ".p12"))
        out = self.path("own.p8")
        self.ok("cert", "export", "py", "--format", "p8", "--passphrase-file", pw, "--out", out)
        self.ok("cert", "delete", "py")
        for prof in profiles:
            with self.subTest(profile=prof):
                self.ok("cert", "import", self.path(prof + ".p12"), "--password-file", pw,
                        "--name", "again")
                self.ok("cert", "delete", "again")
        self.ok("cert", "import", self.path("c.pem"), "--key", out, "--password-file", pw)

    def test_pkcs8_iterations(self):
        self.sh("openssl", "pkcs8", "-topk8", "-in", "k.pem", "-v2", "aes-256-cbc", "-iter",
                "4100000", "-passout", "pass:longpassphrase", "-outform", "DER", "-out", "k.p8")
        self.refused_fast(self.path("c.pem"), "--key", self.path("k.p8"))
        # the usual cost is fine
        self.sh("openssl", "pkcs8", "-topk8", "-in", "k.pem", "-v2", "aes-256-cbc", "-iter",
                "100000", "-passout", "pass:longpassphrase", "-out", "ok.p8")
        self.ok("cert", "import", self.path("c.pem"), "--key", self.path("ok.p8"),
                "--password-file", self.path("pw"))

    def test_pkcs12_iterations(self):
        self.sh("openssl", "pkcs12", "-export", "-in", "c.pem", "-inkey", "k.pem", "-iter",
                "1500000", "-passout", "pass:longpassphrase", "-out", "big.p12")
        r = self.refused_fast(self.path("big.p12"))
        self.assertRegex(r.err, "iterations")


if __name__ == "__main__":
    tglib.main()
