"""A file may not name a password-hashing cost that takes minutes to pay (decode.c).

Encrypted PKCS#8 and PKCS#12 carry their own PBKDF2 iteration count; tlsgate refuses
more than 1,000,000 before deriving anything, with exit 3, quickly, store unchanged.
The files are made by the openssl CLI.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402


class KdfCost(tglib.TgCase):
    def setUp(self):
        super().setUp()
        self.ok("init")
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-subj", "/CN=kdf.example.com",
                "-days", "5")
        self.write("pw", "longpassphrase\n")

    def refused_fast(self, *files):
        before = self.dump()
        t0 = time.monotonic()
        r = self.fails(tglib.INVALID, "cert", "import", *files, "--password-file",
                       self.path("pw"))
        self.assertLess(time.monotonic() - t0, 2.0, "the cost was paid before refusing")
        self.assertRegex(r.err, "cost above|MAC iterations")
        self.assertEqual(before, self.dump())
        return r

    def test_pkcs8_iterations(self):
        self.sh("openssl", "pkcs8", "-topk8", "-in", "k.pem", "-v2", "aes-256-cbc", "-iter",
                "3000000", "-passout", "pass:longpassphrase", "-outform", "DER", "-out", "k.p8")
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
