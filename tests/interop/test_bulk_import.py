"""A bulk import in one command (issue 13, item 3): beyond 4,096 files tlsgate decodes and
stores a chunk at a time inside the one transaction, so that memory stays bounded. The
outcome must be the one a single load gives, whatever chunk a key falls into, and a
failure anywhere still changes nothing. The certificates are made here with Python's
cryptography (one CA, one shared leaf key, as bench/gen_certs.py does) and read back with
the openssl CLI.
"""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
from tglib import INVALID  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

COUNT = 4300  # more than one chunk of 4,096


class BulkImport(tglib.TgCase):
    @classmethod
    def setUpClass(cls):
        """COUNT certificates for hNNNN.bulk.test, all with one key, in a directory of
        their own (made once: about two seconds)."""
        import tempfile
        cls.set = tempfile.mkdtemp(prefix="tg-bulk-")
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bulk Test CA")])
        key = ec.generate_private_key(ec.SECP256R1())
        cls.files = []
        for i in range(COUNT):
            host = f"h{i:04d}.bulk.test"
            cert = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
                    .issuer_name(ca_name).public_key(key.public_key())
                    .serial_number(1000 + i)
                    .not_valid_before(now - datetime.timedelta(days=1))
                    .not_valid_after(now + datetime.timedelta(days=90))
                    .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), False)
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                    .sign(ca_key, hashes.SHA256()))
            path = os.path.join(cls.set, f"h{i:04d}.pem")
            with open(path, "wb") as f:
                f.write(cert.public_bytes(serialization.Encoding.PEM))
            cls.files.append(path)
        cls.key = os.path.join(cls.set, "key.pem")
        with open(cls.key, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.set, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.ok("init")

    def listed(self):
        return {c["name"]: c for c in self.ok("--json", "cert", "list").json()}

    def check_all_keyed(self, doc):
        self.assertEqual(doc["new"], COUNT, {k: doc[k] for k in ("new", "already_present")})
        self.assertEqual(len(doc["imported"]), COUNT)
        self.assertTrue(all(e["private_key"] for e in doc["imported"]),
                        [e["name"] for e in doc["imported"] if not e["private_key"]][:5])
        rows = self.listed()
        bulk = {n: r for n, r in rows.items() if n.endswith(".bulk.test")}
        self.assertEqual(len(bulk), COUNT)
        self.assertTrue(all(r["private_key"] for r in bulk.values()))
        # the stored certificate is the file's (openssl's fingerprint), key and all
        for i in (0, COUNT // 2, COUNT - 1):
            name = f"h{i:04d}.bulk.test"
            self.assertEqual(bulk[name]["sha256"], self.fingerprint(self.files[i]))
        out = self.path("back.pem")
        self.ok("cert", "export", f"h{COUNT - 1:04d}.bulk.test", "--format", "pem", "--out", out)
        self.assertEqual(self.cert_pubkey(out), self.key_pubkey(self.key))

    def test_key_after_every_chunk(self):
        # the one key comes last: the certificates of the first chunk get it at the end
        doc = self.ok("--json", "cert", "import", *self.files, self.key, timeout=600).json()
        self.check_all_keyed(doc)

    def test_key_alone_in_a_later_chunk(self):
        # exactly one chunk of certificates, then the key alone in a chunk of its own: it
        # reaches every one of them, each reported once, as a single load reports it
        files = self.files[:4096]
        doc = self.ok("--json", "cert", "import", *files, self.key, timeout=600).json()
        self.assertEqual(doc["new"], len(files))
        names = [e["name"] for e in doc["imported"]]
        self.assertEqual(len(names), len(set(names)), "a certificate reported twice")
        self.assertEqual(len(names), len(files))
        self.assertTrue(all(e["private_key"] for e in doc["imported"]))
        out = self.path("first.pem")
        self.ok("cert", "export", "h0000.bulk.test", "--format", "pem", "--out", out)
        self.assertEqual(self.cert_pubkey(out), self.key_pubkey(self.key))

    def test_keyless_then_key_before_every_chunk_then_again(self):
        # first without the key: every certificate stored without one
        doc = self.ok("--json", "cert", "import", *self.files, timeout=600).json()
        self.assertEqual(doc["new"], COUNT)
        self.assertFalse(any(e["private_key"] for e in doc["imported"]))
        # then the key first and the same certificates: each gains it, in every chunk
        doc = self.ok("--json", "cert", "import", self.key, *self.files, timeout=600).json()
        self.assertEqual(doc["new"], COUNT)
        self.assertEqual({e["action"] for e in doc["imported"]}, {"private key added"})
        self.assertTrue(all(r["private_key"] for n, r in self.listed().items()
                            if n.endswith(".bulk.test")))
        r = self.ok("cert", "import", *self.files, self.key, timeout=600)
        # the key belongs to certificates that have it: no line of its own
        self.assertEqual(r.out.splitlines()[-1], f"0 new, {COUNT} already present")

    def test_failure_in_a_later_chunk_changes_nothing(self):
        junk = self.write("junk.pem", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
        before = self.dump()
        files = self.files[:4200] + [junk] + self.files[4200:]
        r = self.fails(INVALID, "cert", "import", *files, self.key, timeout=600)
        self.assertIn("junk.pem", r.err)
        self.assertEqual(self.dump(), before)
        # a key that belongs to nothing, after every chunk: refused, nothing stored
        other = self.path("other.key")
        self.sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", other)
        r = self.fails(INVALID, "cert", "import", *self.files, other, timeout=600)
        self.assertIn("other.key", r.err)
        self.assertEqual(self.dump(), before)


if __name__ == "__main__":
    tglib.main()
