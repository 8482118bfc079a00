"""Import and verify rules found by the attacker's review (issue 8, items 11, 13, 15a, 15b
and 16), each checked against material made by the openssl CLI:

  * --no-export on a key that is already stored makes it non-exportable (the stricter
    flag wins, never the reverse) and the output says so; an export is then refused;
  * importing a key that is already there adds nothing: since issue 14 (item 3) that is
    a success saying "0 new, 1 already present", and the store is unchanged;
  * `cert import ROOT --name X` names the CA certificate X (it was ignored);
  * `verify LEAF --ca-file LEAF` (a leaf trusted directly) is a verdict, not "out of
    memory";
  * an EC key or certificate written with explicit curve parameters matches the same key
    written with the curve's name; parameters of no named curve are refused.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
from tglib import CONFLICT, INVALID, OK, USAGE  # noqa: E402

LEAF_EXT = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:a.example.com
"""


class ImportRules(tglib.TgCase):
    def leaf(self, cn="a.example.com"):
        """An EC P-256 end-entity certificate and its key, made by openssl."""
        return self.openssl_x509("c", cn, "basicConstraints=critical,CA:FALSE",
                                 "keyUsage=critical,digitalSignature",
                                 "extendedKeyUsage=serverAuth", "subjectAltName=DNS:" + cn)

    def export_key(self, name):
        self.write("pw", "export passphrase\n")
        return self.tg("cert", "export", name, "--format", "p8", "--passphrase-file",
                       self.path("pw"), "--out", self.path("out-%d.p8" % len(os.listdir(self.dir))))

    # -- item 11: --no-export on a key already stored -----------------------------------
    def test_no_export_tightens_a_stored_key(self):
        cert, key = self.leaf()
        self.ok("cert", "import", cert, key)
        self.assertTrue(self.show("a.example.com")["exportable"])
        self.assertEqual(self.export_key("a.example.com").rc, OK)
        r = self.ok("--json", "cert", "import", key, "--no-export")
        entry = r.json()["imported"][0]
        self.assertEqual(entry["action"], "private key made non-exportable", r)
        self.assertFalse(self.show("a.example.com")["exportable"])
        r = self.export_key("a.example.com")
        self.assertEqual(r.rc, CONFLICT, r)
        self.assertIn("non-exportable", r.err)
        # never the reverse: importing without the flag leaves it non-exportable
        self.tg("cert", "import", cert, key)
        self.assertFalse(self.show("a.example.com")["exportable"])

    def test_no_export_with_the_certificate_again(self):
        cert, key = self.leaf()
        self.ok("cert", "import", cert, key)
        r = self.ok("cert", "import", cert, key, "--no-export")
        self.assertIn("non-exportable", r.out)
        self.assertFalse(self.show("a.example.com")["exportable"])

    def test_no_export_for_a_new_certificate_of_a_stored_key(self):
        cert, key = self.leaf()
        self.ok("cert", "import", cert, key)
        # a second certificate for the same key (renewal), given without the key
        self.sh("openssl", "req", "-new", "-key", key, "-subj", "/CN=a.example.com",
                "-out", "r.csr")
        self.write("ext2.cnf", LEAF_EXT)
        self.sh("openssl", "x509", "-req", "-in", "r.csr", "-signkey", key, "-days", "60",
                "-extfile", "ext2.cnf", "-out", "c2.pem")
        r = self.ok("--json", "cert", "import", self.path("c2.pem"), "--no-export")
        self.assertTrue(r.json()["imported"][0].get("key_made_non_exportable"), r)
        for c in self.ok("--json", "cert", "list").json():
            if c["name"].startswith("a.example.com"):
                self.assertFalse(self.show(c["name"])["exportable"], c["name"])

    # -- item 15b: a key already present is nothing new ---------------------------------
    def test_reimporting_a_present_key_adds_nothing(self):
        cert, key = self.leaf()
        self.ok("cert", "import", cert, key)
        before = self.dump()
        r = self.nothing_new("cert", "import", key, present=1)
        self.assertIn("already has this private key", r.out)
        self.assertEqual(self.dump(), before)
        doc = self.ok("--json", "cert", "import", key).json()
        self.assertEqual((doc["new"], doc["already_present"], doc["imported"]), (0, 1, []))
        self.assertEqual(self.dump(), before)

    # -- item 15a: --name for a single CA certificate -----------------------------------
    def test_name_for_a_root_given_to_cert_import(self):
        root, _ = self.openssl_root("root", "My Root")
        self.ok("cert", "import", root, "--name", "Corp Root")
        names = [c["name"] for c in self.ok("--json", "ca", "list").json()]
        self.assertIn("Corp Root", names)
        self.assertNotIn("My-Root", names)

    def test_name_for_several_ca_certificates_is_refused(self):
        for n in ("r1", "r2"):
            self.openssl_x509(n, n, "basicConstraints=critical,CA:TRUE")
        self.ok("init")
        before = self.dump()
        r = self.fails(USAGE, "cert", "import", self.path("r1.pem"), self.path("r2.pem"),
                       "--name", "Both")
        self.assertIn("--name", r.err)
        self.assertEqual(self.dump(), before)

    # -- item 13: a leaf trusted directly ------------------------------------------------
    def test_verify_a_leaf_that_is_its_own_anchor(self):
        cert, _ = self.leaf()
        r = self.tg("--json", "verify", cert, "--ca-file", cert, "--host", "a.example.com")
        self.assertEqual(r.rc, OK, r)
        self.assertEqual(r.json()["verdict"], "valid", r)
        # and openssl agrees that this path is acceptable with the leaf as anchor
        self.sh("openssl", "verify", "-partial_chain", "-CAfile", cert, cert)
        r = self.tg("verify", cert, "--ca-file", cert, "--host", "b.example.com")
        self.assertEqual(r.rc, 1, r)

    # -- item 16: explicit curve parameters ---------------------------------------------
    def test_explicit_parameters_key_matches_named_certificate(self):
        cert, key = self.leaf()
        self.sh("openssl", "ec", "-in", key, "-param_enc", "explicit", "-out", "kexp.pem")
        self.assertIn("Field Type", self.sh("openssl", "pkey", "-in", "kexp.pem", "-text",
                                            "-noout").stdout)
        self.ok("cert", "import", cert, self.path("kexp.pem"))
        d = self.show("a.example.com")
        self.assertEqual(d["key"], "EC P-256")
        # the stored key is written with the curve's name and still is the same key
        self.write("pw", "export passphrase\n")
        self.ok("cert", "export", "a.example.com", "--format", "p8", "--passphrase-file",
                self.path("pw"), "--out", self.path("back.p8"))
        text = self.sh("openssl", "pkey", "-in", "back.p8", "-passin", "file:pw", "-text",
                       "-noout").stdout
        self.assertIn("NIST CURVE: P-256", text)
        self.assertEqual(self.key_pubkey(self.path("back.p8"), passin=self.path("pw")),
                         self.cert_pubkey(cert))

    def test_explicit_parameters_certificate_matches_named_key(self):
        cert, key = self.leaf()
        self.write("pub.pem", self.cert_pubkey(cert) + "\n")
        self.sh("openssl", "ec", "-pubin", "-in", "pub.pem", "-param_enc", "explicit",
                "-pubout", "-out", "pubexp.pem")
        self.write("ext.cnf", LEAF_EXT)
        self.sh("openssl", "x509", "-new", "-subj", "/CN=a.example.com", "-key", key,
                "-force_pubkey", "pubexp.pem", "-extfile", "ext.cnf", "-days", "30", "-out",
                "cexp.pem")
        self.assertIn("Field Type", self.sh("openssl", "x509", "-in", "cexp.pem", "-noout",
                                            "-text").stdout)
        r = self.ok("--json", "cert", "import", self.path("cexp.pem"), key)
        self.assertTrue(r.json()["imported"][0]["private_key"], r)

    def test_explicit_parameters_of_no_named_curve_are_refused(self):
        # P-256's parameters with a different base point: a curve no name stands for
        self.sh("openssl", "ecparam", "-name", "prime256v1", "-param_enc", "explicit",
                "-out", "p.pem")
        der = subprocess.run(["openssl", "ecparam", "-in", self.path("p.pem"), "-outform",
                              "DER"], capture_output=True, check=True).stdout
        # the generator is an uncompressed point (04 || X || Y) of 65 bytes in the DER
        g = der.find(b"\x04\x41\x04")
        self.assertGreater(g, 0)
        # replace G by 2G: the same group, but no longer the named curve's parameters
        self.write("p.der", der, mode="wb")
        two_g = subprocess.run([sys.executable, "-c", TWO_G], capture_output=True,
                               check=True).stdout
        self.assertEqual(len(two_g), 65)
        mod = der[:g + 2] + two_g + der[g + 2 + 65:]
        self.write("p2.der", mod, mode="wb")
        r = self.sh("openssl", "ecparam", "-inform", "DER", "-in", "p2.der", "-genkey",
                    "-noout", "-out", "odd.pem", check=False)
        if r.returncode != 0:
            self.fail("openssl will not generate a key on these parameters: " + r.stderr)
        self.assertIn("Field Type", self.sh("openssl", "pkey", "-in", "odd.pem", "-text",
                                            "-noout").stdout)
        self.ok("init")
        before = self.dump()
        r = self.fails(INVALID, "cert", "import", self.path("odd.pem"))
        self.assertIn("explicit curve parameters", r.err)
        self.assertEqual(self.dump(), before)


# 2G on P-256, computed with the curve arithmetic of Python's cryptography (which does
# not know explicit parameters): the public key of the private scalar 2.
TWO_G = """
import sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
k = ec.derive_private_key(2, ec.SECP256R1())
sys.stdout.buffer.write(k.public_key().public_bytes(serialization.Encoding.X962,
                        serialization.PublicFormat.UncompressedPoint))
"""

if __name__ == "__main__":
    tglib.main()
