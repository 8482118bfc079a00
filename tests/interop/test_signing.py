#!/usr/bin/python3
"""Interop tests for signing certificates (issue 9, SPEC I1, K10, X3): `cert create
--signing` makes a self-signed CA for client inspection; `request create --signing`
gets one from another CA. Checked with the openssl CLI and Python cryptography.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_signing.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import CONFLICT, INVALID, PASSWORD, USAGE, TgCase  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.oid import ExtensionOID, NameOID  # noqa: E402

PASSPHRASE = "signing-passphrase-42"
KEYS = {"rsa:2048": (rsa, 2048), "rsa:3072": (rsa, 3072), "rsa:4096": (rsa, 4096),
        "ec:p256": (ec, 256), "ec:p384": (ec, 384)}


def days_of(cert):
    """Validity in days (Debian 12's cryptography has no not_valid_*_utc)."""
    after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    before = getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before
    return (after - before).days


class Signing(TgCase):
    def create(self, name, *extra, key="ec:p256"):
        return self.ok("--json", "cert", "create", name, "--signing", "--cn", "Inspect CA " + name,
                       "--org", "Example GmbH", "--country", "DE", "--key", key, "--days", "3650",
                       *extra).json()

    def export_pem(self, name, out):
        self.ok("ca", "export", name, "--format", "pem", "--out", self.path(out))
        with open(self.path(out), "rb") as f:
            return x509.load_pem_x509_certificate(f.read())

    def row(self, rows, name):
        found = [r for r in rows if r["name"] == name]
        self.assertEqual(len(found), 1, rows)
        return found[0]

    def check_extensions(self, cert, sans=None):
        exts = {e.oid: e for e in cert.extensions}
        want = {ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE,
                ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER}
        if sans:
            want.add(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        self.assertEqual(set(exts), want)  # exactly these: no EKU on a root (CA/B BR 7.1.2.1.2)
        bc = exts[ExtensionOID.BASIC_CONSTRAINTS]
        self.assertTrue(bc.critical)
        self.assertTrue(bc.value.ca)
        self.assertEqual(bc.value.path_length, 0)  # it signs leaves only
        ku = exts[ExtensionOID.KEY_USAGE]
        self.assertTrue(ku.critical)
        v = ku.value
        self.assertTrue(v.key_cert_sign and v.crl_sign and v.digital_signature)
        self.assertFalse(v.key_encipherment or v.content_commitment or v.data_encipherment
                         or v.key_agreement)
        ski = exts[ExtensionOID.SUBJECT_KEY_IDENTIFIER]
        self.assertFalse(ski.critical)
        self.assertEqual(ski.value.digest,
                         x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest)
        aki = exts[ExtensionOID.AUTHORITY_KEY_IDENTIFIER]
        self.assertFalse(aki.critical)
        self.assertEqual(aki.value.key_identifier, ski.value.digest)
        self.assertEqual(cert.issuer, cert.subject)

    def test_each_key_type(self):
        for spec, (mod, bits) in KEYS.items():
            with self.subTest(key=spec):
                name = "ca-" + spec.replace(":", "-")
                doc = self.create(name, key=spec)
                self.assertTrue(doc["ca"])
                self.assertTrue(doc["private_key"])
                self.assertTrue(doc["signing"])
                self.assertTrue(doc["exportable"])
                self.assertEqual(doc["type"], "root")
                self.assertEqual(doc["chain_status"], "valid")
                cert = self.export_pem(name, name + ".pem")
                self.check_extensions(cert)
                pub = cert.public_key()
                if mod is rsa:
                    self.assertIsInstance(pub, rsa.RSAPublicKey)
                    self.assertIsInstance(cert.signature_hash_algorithm, hashes.SHA256)
                else:
                    self.assertIsInstance(pub, ec.EllipticCurvePublicKey)
                    self.assertIsInstance(cert.signature_hash_algorithm,
                                          hashes.SHA384 if bits == 384 else hashes.SHA256)
                self.assertEqual(pub.key_size, bits)
                self.assertEqual(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                                 "Inspect CA " + name)
                days = days_of(cert)
                self.assertEqual(days, 3650)
                text = self.sh("openssl", "x509", "-in", self.path(name + ".pem"), "-noout",
                               "-text").stdout
                self.assertIn("CA:TRUE, pathlen:0", text)
                self.assertIn("Certificate Sign, CRL Sign", text)
                self.assertNotIn("Extended Key Usage", text)
                ok = self.sh("openssl", "verify", "-x509_strict", "-CAfile",
                             self.path(name + ".pem"), self.path(name + ".pem")).stdout
                self.assertIn(": OK", ok)

    def test_subject_fields_and_sans(self):
        self.ok("cert", "create", "full", "--signing", "--cn", "Full CA", "--country", "de",
                "--state", "Bayern", "--locality", "München", "--org", "Example GmbH", "--ou",
                "Security", "--email", "pki@example.com", "--san", "DNS:ca.example.com",
                "--key", "ec:p256", "--no-export")
        cert = self.export_pem("full", "full.pem")
        self.check_extensions(cert, sans=True)
        got = {a.oid: a.value for a in cert.subject}
        self.assertEqual(got[NameOID.COUNTRY_NAME], "DE")
        self.assertEqual(got[NameOID.LOCALITY_NAME], "München")
        self.assertEqual(got[NameOID.EMAIL_ADDRESS], "pki@example.com")
        days = days_of(cert)
        self.assertEqual(days, 365)  # the default validity

    def test_lists_say_private_key(self):
        self.create("listed")
        rows = self.ok("--json", "ca", "list").json()
        r = self.row(rows, "listed")
        self.assertTrue(r["private_key"])
        self.assertTrue(r["signing"])
        self.assertEqual(r["type"], "root")
        for wide in ((), ("--wide",)):
            table = self.ok("ca", "list", *wide).out
            line = [ln for ln in table.splitlines() if ln.startswith("listed")]
            self.assertEqual(len(line), 1, table)
            self.assertIn("Yes", line[0])
        # a signing certificate is a CA: ca list's, not cert list's
        self.assertNotIn("listed", [r["name"] for r in self.ok("--json", "cert", "list").json()])
        self.assertNotIn("listed", self.ok("cert", "list").out)
        doc = self.ok("--json", "ca", "show", "listed").json()
        self.assertTrue(doc["private_key"])
        self.assertTrue(doc["signing"])
        self.assertTrue(doc["exportable"])
        shown = self.ok("ca", "show", "listed").out
        self.assertRegex(shown, r"Signing:\s+yes")
        # a CA imported without its key is listed, but cannot sign
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ext.key", "-out", "ext.pem",
                "-subj", "/CN=External Root", "-days", "30")
        self.ok("ca", "import", self.path("ext.pem"), "--name", "External")
        r = self.row(self.ok("--json", "ca", "list").json(), "External")
        self.assertFalse(r["private_key"])
        self.assertFalse(r["signing"])

    def test_exported_key_signs_a_leaf(self):
        """The certificate and key work as a CA for openssl: a leaf it signs verifies."""
        for spec in ("ec:p256", "rsa:2048"):
            with self.subTest(key=spec):
                name = "signer-" + spec.replace(":", "-")
                self.create(name, key=spec)
                ca = self.path(name + ".pem")
                key = self.path(name + ".key")
                self.export_pem(name, name + ".pem")
                self.ok("ca", "export", name, "--format", "p8", "--no-passphrase", "--out", key)
                self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
                self.sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key", "-out",
                        "leaf.csr", "-subj", "/CN=shop.example.com")
                self.write("leaf.ext", "subjectAltName=DNS:shop.example.com\n"
                           "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
                           "basicConstraints=critical,CA:FALSE\n"
                           "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
                self.sh("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", ca, "-CAkey", key,
                        "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "leaf.ext",
                        "-out", "leaf.pem")
                out = self.sh("openssl", "verify", "-x509_strict", "-purpose", "sslserver",
                              "-verify_hostname", "shop.example.com", "-CAfile", ca,
                              "leaf.pem").stdout
                self.assertIn("leaf.pem: OK", out)
                r = self.tg("verify", self.path("leaf.pem"), "--ca-file", ca, "--host",
                            "shop.example.com")
                self.assertEqual(r.rc, 0, r)

    def test_key_export_rules(self):
        self.create("kept")
        self.write("pass", PASSPHRASE + "\n")
        p12 = self.path("kept.p12")
        self.ok("ca", "export", "kept", "--format", "p12", "--with-key", "--passphrase-file",
                self.path("pass"), "--out", p12)
        self.sh("openssl", "pkcs12", "-in", p12, "-passin", "file:" + self.path("pass"),
                "-nodes", "-out", self.path("kept.all.pem"))
        self.assertIn("PRIVATE KEY", self.rd(self.path("kept.all.pem")))
        self.write("short", "short\n")
        self.fails(PASSWORD, "ca", "export", "kept", "--format", "p12", "--with-key",
                   "--passphrase-file", self.path("short"), "--out", self.path("short.p12"))
        self.fails(USAGE, "ca", "export", "kept", "--format", "p8", "--out", "-")

        self.create("locked", "--no-export")
        doc = self.ok("--json", "ca", "show", "locked").json()
        self.assertFalse(doc["exportable"])
        before = self.dump()
        for fmt in ("p12", "p8", "pkcs1"):
            args = ["--with-key"] if fmt == "p12" else ["--no-passphrase"]
            if fmt == "p12":
                args += ["--passphrase-file", self.path("pass")]
            r = self.fails(CONFLICT, "ca", "export", "locked", "--format", fmt, *args, "--out",
                           self.path("locked." + fmt))
            self.assertIn("non-exportable", r.err)
            self.assertFalse(os.path.exists(self.path("locked." + fmt)))
        self.assertEqual(self.dump(), before)
        self.ok("ca", "export", "locked", "--format", "pem", "--out", self.path("locked.pem"))

    def test_reissue_keeps_signing(self):
        self.create("roll")
        old = self.export_pem("roll", "old.pem")
        doc = self.ok("--json", "ca", "reissue", "roll", "--days", "730", "--name",
                      "roll-2").json()
        self.assertTrue(doc["private_key"])
        self.assertTrue(doc["signing"])
        self.assertEqual(doc["predecessor"], "roll")
        new = self.export_pem("roll-2", "new.pem")
        self.check_extensions(new)
        self.assertEqual(new.subject, old.subject)
        self.assertEqual(new.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
            old.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))
        self.assertNotEqual(new.serial_number, old.serial_number)
        rows = self.ok("--json", "ca", "list").json()
        self.assertTrue(self.row(rows, "roll")["private_key"])
        self.assertTrue(self.row(rows, "roll-2")["private_key"])

    def test_request_path_completes(self):
        """request create --signing, signed as an intermediate by an openssl-made root,
        imported: it lands with its key and can sign."""
        self.ok("request", "create", "sub", "--signing", "--cn", "Inspect Sub CA", "--org",
                "Example GmbH", "--key", "ec:p256")
        self.ok("request", "export", "sub", "--out", self.path("sub.csr"))
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", "root.key", "-out", "root.pem",
                "-subj", "/CN=Corp Root", "-days", "3650", "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign")
        self.write("sub.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                   "keyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        self.sh("openssl", "x509", "-req", "-in", "sub.csr", "-CA", "root.pem", "-CAkey",
                "root.key", "-CAcreateserial", "-days", "365", "-sha256", "-extfile", "sub.ext",
                "-out", "sub.pem")
        out = self.ok("--json", "cert", "import", self.path("sub.pem"),
                      self.path("root.pem")).json()
        names = {i["name"]: i for i in out["imported"]}
        self.assertIn("sub", names, out)
        self.assertTrue(names["sub"]["private_key"])
        req = self.ok("--json", "request", "show", "sub").json()
        self.assertEqual(req["status"], "completed")
        self.assertTrue(req["signing"])
        rows = self.ok("--json", "ca", "list").json()
        sub = self.row(rows, "sub")
        self.assertTrue(sub["private_key"])
        self.assertTrue(sub["signing"])
        self.assertEqual(sub["type"], "intermediate")
        doc = self.ok("--json", "ca", "show", "sub").json()
        self.assertEqual(doc["chain_status"], "valid")
        self.assertTrue(doc["private_key"])
        # its key signs a leaf that verifies up to the root
        self.ok("ca", "export", "sub", "--format", "p8", "--no-passphrase", "--out",
                self.path("sub.key"))
        self.sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
                "-subj", "/CN=leaf.example.com")
        self.write("leaf.ext", "subjectAltName=DNS:leaf.example.com\n"
                   "extendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n"
                   "authorityKeyIdentifier=keyid\n")
        self.sh("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "sub.pem", "-CAkey",
                "sub.key", "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "leaf.ext",
                "-out", "leaf.pem")
        out = self.sh("openssl", "verify", "-purpose", "sslserver", "-CAfile", "root.pem",
                      "-untrusted", "sub.pem", "leaf.pem").stdout
        self.assertIn("leaf.pem: OK", out)

    def test_request_completed_by_ca_import(self):
        self.ok("request", "create", "sub2", "--signing", "--cn", "Sub Two", "--key", "rsa:2048")
        self.ok("request", "export", "sub2", "--out", self.path("s2.csr"))
        self.sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "r.key",
                "-out", "r.pem", "-subj", "/CN=Root Two", "-days", "30")
        self.write("e", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                   "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
                   "authorityKeyIdentifier=keyid\n")
        self.sh("openssl", "x509", "-req", "-in", "s2.csr", "-CA", "r.pem", "-CAkey", "r.key",
                "-CAcreateserial", "-days", "10", "-extfile", "e", "-out", "s2.pem")
        out = self.ok("--json", "ca", "import", self.path("s2.pem")).json()
        self.assertEqual(out["imported"][0]["request"], "sub2")
        self.assertTrue(out["imported"][0]["private_key"])
        r = self.row(self.ok("--json", "ca", "list").json(), "sub2")
        self.assertTrue(r["private_key"] and r["signing"])

    def test_bad_input_changes_nothing(self):
        self.create("taken")
        before = self.dump()
        bad = [
            (INVALID, ["--days", "0"]),
            (INVALID, ["--days", "36501"]),
            (INVALID, ["--key", "rsa:1024"]),
            (INVALID, ["--country", "XX"]),
            (INVALID, ["--san", "DNS:*.*.example.com"]),
        ]
        for status, extra in bad:
            with self.subTest(extra=extra):
                self.fails(status, "cert", "create", "fresh", "--signing", "--cn", "X CA", *extra)
                self.assertEqual(self.dump(), before)
        # a CA's name: letters, digits, hyphen, underscore and space (SPEC C3)
        r = self.fails(INVALID, "cert", "create", "bad/name", "--signing", "--cn", "X CA")
        self.assertIn("letters, digits", r.err)
        self.fails(INVALID, "cert", "create", "ca", "--signing", "--cn", "X CA")
        self.fails(CONFLICT, "cert", "create", "taken", "--signing", "--cn", "X CA")
        # --signing where it has no meaning
        self.fails(USAGE, "cert", "import", self.path("x.pem"), "--signing")
        self.fails(USAGE, "ca", "reissue", "taken", "--days", "30", "--signing")
        self.assertEqual(self.dump(), before)


if __name__ == "__main__":
    tglib.main()
