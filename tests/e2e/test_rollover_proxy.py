#!/usr/bin/env python3
"""An automatic CA rollover under a running client proxy (issue 11 item 5, SPEC K10):
serve reissues the proxy's signing CA at start (a root made 265 days ago for a year, its
key in the store: within the year's lead time and past half its validity), moves the
proxy to the new copy, and clients keep working whichever copy they trust: curl and
openssl s_client through the proxy verify the forged leaf against the old copy alone and
against the new copy alone; the forged leaf is signed by the new copy (its issuer, its
chain), and the CA page offers both.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/e2e/test_rollover_proxy.py
"""
import datetime
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import test_proxy  # noqa: E402
from test_serve import SLOW  # noqa: E402
from tglib import free_port  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


class RolloverUnderProxy(test_proxy.ProxyCase):
    """test_proxy's set-up and helpers; only the test below runs (load_tests)."""

    def backdated_root(self, name, cn):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=265))
                .not_valid_after(now + datetime.timedelta(days=100))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        pem, keyf = self.path(name + ".pem"), self.path(name + ".key")
        with open(pem, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(keyf, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        self.ok("cert", "import", pem, "--key", keyf, "--name", name)
        return pem, cert

    def test_clients_keep_working(self):
        old_pem, old = self.backdated_root("roll", "Rollover Proxy CA")
        og = self.start_origins(["good"])
        port = og.port("good")
        listen = f"127.0.0.1:{free_port()}"
        self.ok("proxy", "client", "create", "web", "--signing", "roll", "--truststore", "web",
                "--listen", listen, "--ports", str(port))
        srv = self.start()
        self.wait_listening(listen, srv)
        deadline = time.monotonic() + 10 * SLOW
        while True:
            signing = self.ok("--json", "proxy", "client", "show", "web").json()["signing"]
            if signing != "roll" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(signing.startswith("roll until "), signing)
        new_pem = self.path("new.pem")
        self.ok("ca", "export", signing, "--format", "pem", "--out", new_pem)
        with open(new_pem, "rb") as f:
            new = x509.load_pem_x509_certificate(f.read())
        self.assertEqual(new.subject, old.subject)
        self.assertEqual(new.public_key().public_numbers(), old.public_key().public_numbers())
        self.assertGreater(test_proxy.validity(new)[1], test_proxy.validity(old)[1])
        url = f"https://good.test:{port}/"

        def through(cafile):
            r = self.curl(listen, url, cafile=cafile)
            return r.returncode == 0 and r.stdout == "origin:good\n", r

        # the engine reloads after the change: wait until the forged chain carries the new copy
        deadline = time.monotonic() + 10 * SLOW
        while True:
            chain, p = self.leaf_via(listen, "good.test", port)
            if (len(chain) > 1 and chain[1] == new) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertEqual(chain[1], new, "the proxy does not sign with the new copy")
        self.assertEqual(chain[0].issuer, new.subject)
        new.public_key().verify(chain[0].signature, chain[0].tbs_certificate_bytes,
                                ec.ECDSA(chain[0].signature_hash_algorithm))
        # a client that trusts only the old copy, and one that trusts only the new one
        for label, cafile in (("old copy", old_pem), ("new copy", new_pem)):
            ok, r = through(cafile)
            self.assertTrue(ok, f"{label}: {r.stderr} {srv.stderr()[-1500:]}")
            sc = subprocess.run(["openssl", "s_client", "-proxy", listen, "-connect",
                                 f"good.test:{port}", "-servername", "good.test", "-CAfile",
                                 cafile, "-verify_return_error", "-verify_hostname",
                                 "good.test"], input="", capture_output=True, text=True,
                                timeout=20 * SLOW)
            self.assertIn("Verify return code: 0 (ok)", sc.stdout, f"{label}: {sc.stdout[-800:]}")
        # the CA page: the copy it signs with first, the old one second
        for path, want in (("/ca.pem", new), ("/ca-2.pem", old)):
            got = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://{listen}{path}"],
                                 capture_output=True, timeout=30)
            self.assertEqual(x509.load_pem_x509_certificate(got.stdout), want, path)
        self.assertIn("CA rollover: 'roll' reissued as", srv.stderr())
        self.assert_clean_exit(srv, "rollover under a proxy")


def load_tests(loader, tests, pattern):
    """Only this file's test, not the ones RolloverUnderProxy inherits from test_proxy."""
    return unittest.TestSuite([RolloverUnderProxy("test_clients_keep_working")])


if __name__ == "__main__":
    unittest.main(verbosity=2)
