#!/usr/bin/python3
"""Interop tests for the certificate lifecycle: tlsgate's outputs checked by tools we
did not write (the openssl CLI, Python cryptography, keytool).

Run: cd /work/main && TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_lifecycle.py
"""
import datetime
import ipaddress
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import TgCase  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

PASSPHRASE = "interop-passphrase-42"

SUBJECT_OIDS = {
    "country": NameOID.COUNTRY_NAME,
    "state": NameOID.STATE_OR_PROVINCE_NAME,
    "locality": NameOID.LOCALITY_NAME,
    "org": NameOID.ORGANIZATION_NAME,
    "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "cn": NameOID.COMMON_NAME,
    "email": NameOID.EMAIL_ADDRESS,
}

PEM_CSR_RE = re.compile(
    r"-----BEGIN CERTIFICATE REQUEST-----\r?\n.*?-----END CERTIFICATE REQUEST-----", re.S)


def rfc3339(dt):
    """A cryptography (naive UTC) datetime in tlsgate's JSON format (RFC 3339, UTC)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_ts(dt):
    return int(dt.replace(tzinfo=datetime.timezone.utc).timestamp())


def san_strings(ext_value):
    """GeneralNames -> ["DNS:…", "IP:…", "email:…"] in the order they are encoded."""
    out = []
    for gn in ext_value:
        if isinstance(gn, x509.DNSName):
            out.append("DNS:" + gn.value)
        elif isinstance(gn, x509.IPAddress):
            out.append("IP:" + str(gn.value))
        elif isinstance(gn, x509.RFC822Name):
            out.append("email:" + gn.value)
        else:
            out.append("other:" + repr(gn))
    return out


def subject_opts(subj):
    args = []
    for k in ("country", "state", "locality", "org", "ou", "email"):
        if k in subj:
            args += ["--" + k, subj[k]]
    return args



def sans_doc(spelled):
    """The documents' form of SANs ([{"type", "value"}]) for "TYPE:value" spellings."""
    return [dict(zip(("type", "value"), x.split(":", 1))) for x in spelled]

class Lifecycle(TgCase):
    # ----------------------------------------------------------------- helpers

    def cert_list(self, *extra):
        return {c["name"]: c for c in self.ok("--json", "cert", "list", *extra).json()}

    def req_list(self):
        return {r["name"]: r for r in self.ok("--json", "request", "list").json()}

    def passfile(self):
        return self.write("pass.txt", PASSPHRASE + "\n")

    def load_cert(self, path):
        with open(path, "rb") as f:
            return x509.load_pem_x509_certificate(f.read())

    def make_ca(self, prefix, cn, keyalg=("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")):
        key, crt = self.path(prefix + ".key"), self.path(prefix + ".pem")
        self.sh("openssl", "req", "-x509", *keyalg, "-nodes", "-keyout", key, "-out", crt,
                "-days", "365", "-subj", f"/CN={cn}/O=Interop Test CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return key, crt

    def sign(self, csr, ca_key, ca_pem, days, out):
        self.sh("openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
                "-days", str(days), "-copy_extensions", "copy", "-out", self.path(out))
        return self.path(out)

    def self_signed_leaf(self, prefix, cn, days, keyalg=("-newkey", "ec", "-pkeyopt",
                                                          "ec_paramgen_curve:P-256")):
        key, crt = self.path(prefix + ".key"), self.path(prefix + ".pem")
        self.sh("openssl", "req", "-x509", *keyalg, "-nodes", "-keyout", key, "-out", crt,
                "-days", str(days), "-subj", f"/CN={cn}",
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", f"subjectAltName=DNS:{cn}")
        return key, crt

    def export_p12(self, name, out, *extra):
        p = self.path(out)
        self.ok("cert", "export", name, "--format", "p12", "--with-key", *extra,
                "--passphrase-file", self.passfile(), "--out", p)
        self.assertTrue(os.path.getsize(p) > 0)
        return p

    def p12_key_pubkey(self, p12):
        """The public key of the private key inside a PKCS#12 file, via openssl."""
        pem = self.sh("openssl", "pkcs12", "-in", p12, "-nodes", "-nocerts",
                      "-passin", "file:" + self.passfile()).stdout
        self.assertIn("PRIVATE KEY-----", pem)
        keyfile = self.write(os.path.basename(p12) + ".key.pem", pem)
        return self.key_pubkey(keyfile)

    # ------------------------------------------------------------------- tests
    def test_1_self_signed_create_export(self):
        cases = [
            dict(name="web rsa2048", key="rsa:2048", kind=("RSA", 2048), days=90,
                 subj=dict(cn="www.example.com", country="DE", state="Bayern",
                           locality="München", org="Beispiel GmbH", ou="Web Team",
                           email="admin@example.com"),
                 sans=["DNS:example.com", "DNS:*.example.com", "IP:192.0.2.10",
                       "email:webmaster@example.com"]),
            dict(name="api rsa3072", key="rsa:3072", kind=("RSA", 3072), days=400,
                 subj=dict(cn="api.example.net", country="FR", state="Île-de-France",
                           locality="Paris", org="ACME SA", ou="Ops",
                           email="hostmaster@example.net"),
                 sans=["DNS:*.api.example.net", "IP:2001:db8::1", "email:ops@example.net",
                       "DNS:api2.example.net"]),
            dict(name="mail p256", key="ec:p256", kind=("EC", "secp256r1"), days=825,
                 subj=dict(cn="mail.example.org", country="US", state="California",
                           locality="San Francisco", org="Example Inc", ou="Mail",
                           email="postmaster@example.org"),
                 sans=["DNS:smtp.example.org", "DNS:*.mail.example.org", "IP:198.51.100.7",
                       "IP:10.1.2.3", "email:abuse@example.org"]),
            # A CN that is no DNS name (no dot) and no IP address is not made a SAN.
            dict(name="internal p384", key="ec:p384", kind=("EC", "secp384r1"), days=7,
                 subj=dict(cn="Internal Service", country="GB", state="London",
                           locality="Westminster", org="Example Ltd", ou="Platform",
                           email="platform@example.co.uk"),
                 sans=["DNS:internal.example.co.uk", "DNS:*.svc.example.co.uk",
                       "IP:fd00::10", "email:oncall@example.co.uk"]),
        ]
        for c in cases:
            with self.subTest(c["name"]):
                self._check_self_signed(c)

    def _check_self_signed(self, c):
        name, subj, days = c["name"], c["subj"], c["days"]
        args = ["cert", "create", name, "--cn", subj["cn"], *subject_opts(subj),
                "--key", c["key"], "--days", str(days)]
        for s in c["sans"]:
            args += ["--san", s]
        t0 = datetime.datetime.utcnow().replace(microsecond=0)
        self.ok(*args)
        t1 = datetime.datetime.utcnow()

        stem = name.replace(" ", "_")
        pem, der = self.path(stem + ".pem"), self.path(stem + ".der")
        self.ok("cert", "export", name, "--format", "pem", "--out", pem)
        self.ok("cert", "export", name, "--format", "der", "--out", der)
        with open(pem) as f:
            self.assertTrue(f.read().startswith("-----BEGIN CERTIFICATE-----"))

        # openssl CLI
        text = self.sh("openssl", "x509", "-in", pem, "-text", "-noout").stdout
        self.assertIn("Version: 3 (0x2)", text)
        self.assertIn("CA:FALSE", text)
        if c["kind"][0] == "RSA":
            self.assertIn(f"Public-Key: ({c['kind'][1]} bit)", text)
        else:
            self.assertIn("NIST CURVE: " + {"secp256r1": "P-256", "secp384r1": "P-384"}[c["kind"][1]],
                          text)
        for s in c["sans"]:
            if not s.startswith("IP:"):  # openssl prints IPs in its own spelling
                self.assertIn(s, text)
        der_text = self.sh("openssl", "x509", "-inform", "DER", "-in", der, "-text",
                           "-noout").stdout
        self.assertEqual(der_text, text, "DER and PEM exports differ")
        v = self.sh("openssl", "verify", "-CAfile", pem, pem, check=False)
        self.assertEqual(v.returncode, 0, f"openssl verify: {v.stdout} {v.stderr}")
        self.assertEqual(v.stdout.strip(), f"{pem}: OK")
        fp = self.fingerprint(pem)
        self.assertEqual(self.fingerprint(der, "DER"), fp)

        # Python cryptography
        cert = self.load_cert(pem)
        with open(der, "rb") as f:
            self.assertEqual(x509.load_der_x509_certificate(f.read()), cert)
        self.assertEqual(cert.version, x509.Version.v3)
        self.assertEqual(cert.issuer, cert.subject)
        want_oids = {SUBJECT_OIDS[k] for k in subj}
        self.assertEqual({a.oid for a in cert.subject}, want_oids)
        for k, v in subj.items():
            got = [a.value for a in cert.subject.get_attributes_for_oid(SUBJECT_OIDS[k])]
            self.assertEqual(got, [v], f"subject {k}")
        want_sans = list(c["sans"])
        if "." in subj["cn"]:
            want_sans.insert(0, "DNS:" + subj["cn"])
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        self.assertEqual(san_strings(san.value), want_sans)
        for s in want_sans:  # typed, not just spelled alike
            if s.startswith("IP:"):
                self.assertIn(ipaddress.ip_address(s[3:]),
                              san.value.get_values_for_type(x509.IPAddress))
        pub = cert.public_key()
        if c["kind"][0] == "RSA":
            self.assertIsInstance(pub, rsa.RSAPublicKey)
            self.assertEqual(pub.key_size, c["kind"][1])
        else:
            self.assertIsInstance(pub, ec.EllipticCurvePublicKey)
            self.assertEqual(pub.curve.name, c["kind"][1])
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertFalse(bc.value.ca)
        self.assertGreater(cert.serial_number, 0)
        self.assertLess(cert.serial_number.bit_length(), 160)  # at most 20 octets
        self.assertLessEqual(cert.not_valid_before, t1)
        self.assertEqual(cert.not_valid_after - cert.not_valid_before,
                         datetime.timedelta(days=days))
        self.assertGreaterEqual(cert.not_valid_after, t0 + datetime.timedelta(days=days)
                                - datetime.timedelta(minutes=5))
        self.assertLessEqual(cert.not_valid_after, t1 + datetime.timedelta(days=days))

        # tlsgate's own view agrees with the certificate
        j = self.show(name)
        self.assertEqual(j["name"], name)
        self.assertEqual(j["sha256"].upper(), fp)
        self.assertEqual(j["key"], f"{c['kind'][0]} {c['kind'][1]}" if c["kind"][0] == "RSA"
                         else {"secp256r1": "EC P-256", "secp384r1": "EC P-384"}[c["kind"][1]])
        self.assertEqual(j["not_after"], rfc3339(cert.not_valid_after))
        self.assertEqual(j["not_after_unix"], utc_ts(cert.not_valid_after))
        self.assertEqual(j["not_before"], rfc3339(cert.not_valid_before))
        self.assertEqual(int(j["serial"], 16), cert.serial_number)
        self.assertEqual(j["alternative_names"], sans_doc(want_sans))
        self.assertTrue(j["private_key"])
        self.assertFalse(j["ca"])
        self.assertTrue(j["self_signed"])
        self.assertEqual(j["issued_to"], subj["cn"])

    def test_2_request_create(self):
        subj = dict(cn="shop.example.com", country="DE", state="Hessen",
                    locality="Frankfurt am Main", org="Example GmbH", ou="E-Commerce",
                    email="certs@example.com")
        sans = ["DNS:www.shop.example.com", "DNS:*.static.example.com", "IP:203.0.113.9",
                "email:shop@example.com"]
        args = ["request", "create", "shop", "--cn", subj["cn"], *subject_opts(subj),
                "--key", "ec:p256"]
        for s in sans:
            args += ["--san", s]
        self.ok(*args)
        self.ok("request", "create", "subca", "--cn", "Example Issuing CA", "--org",
                "Example GmbH", "--country", "DE", "--key", "ec:p384", "--signing")

        for name in ("shop", "subca"):
            out = self.path(name + ".csr")
            self.ok("request", "export", name, "--out", out)
            v = self.sh("openssl", "req", "-in", out, "-verify", "-noout", check=False)
            self.assertEqual(v.returncode, 0, v.stderr)
            self.assertIn("ok", (v.stdout + v.stderr).lower())
            with open(out) as f:
                pem = f.read()
            # request show prints the same PEM
            shown = PEM_CSR_RE.findall(self.ok("request", "show", name).out)
            self.assertEqual(len(shown), 1)
            self.assertEqual(shown[0].strip(), pem.strip())

        with open(self.path("shop.csr"), "rb") as f:
            csr = x509.load_pem_x509_csr(f.read())
        self.assertTrue(csr.is_signature_valid)
        self.assertEqual({a.oid for a in csr.subject}, {SUBJECT_OIDS[k] for k in subj})
        for k, v in subj.items():
            self.assertEqual([a.value for a in csr.subject.get_attributes_for_oid(SUBJECT_OIDS[k])],
                             [v], f"subject {k}")
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        self.assertEqual(san_strings(san.value), ["DNS:" + subj["cn"], *sans])
        self.assertIsInstance(csr.public_key(), ec.EllipticCurvePublicKey)
        self.assertEqual(csr.public_key().curve.name, "secp256r1")
        try:
            bc = csr.extensions.get_extension_for_class(x509.BasicConstraints)
            self.assertFalse(bc.value.ca, "a request without --signing asks for a CA")
        except x509.ExtensionNotFound:
            pass

        with open(self.path("subca.csr"), "rb") as f:
            sub = x509.load_pem_x509_csr(f.read())
        self.assertTrue(sub.is_signature_valid)
        self.assertEqual(sub.public_key().curve.name, "secp384r1")
        self.assertEqual([a.value for a in sub.subject.get_attributes_for_oid(NameOID.COMMON_NAME)],
                         ["Example Issuing CA"])
        bc = sub.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertTrue(bc.value.ca)
        self.assertEqual(bc.value.path_length, 0, "a signing CA signs leaves only")
        try:
            ku = sub.extensions.get_extension_for_class(x509.KeyUsage).value
            self.assertTrue(ku.key_cert_sign)
        except x509.ExtensionNotFound:
            pass
        text = self.sh("openssl", "req", "-in", self.path("subca.csr"), "-noout", "-text").stdout
        self.assertIn("CA:TRUE", text)

        reqs = self.req_list()
        self.assertEqual(set(reqs), {"shop", "subca"})
        self.assertEqual(reqs["shop"]["status"], "pending")
        self.assertIsNone(reqs["shop"]["certificate"])
        self.assertFalse(reqs["shop"]["signing"])
        self.assertEqual(reqs["subca"]["status"], "pending")
        self.assertTrue(reqs["subca"]["signing"])
        self.assertEqual(reqs["shop"]["alternative_names"],
                         sans_doc(["DNS:" + subj["cn"], *sans]))
        # README: "Every read command takes --json (before or after the command)".
        trailing = self.ok("request", "list", "--json").json()
        self.assertEqual({r["name"]: r["status"] for r in trailing},
                         {"shop": "pending", "subca": "pending"})

    def test_3_csr_signed_by_external_ca(self):
        ca_key, ca_pem = self.make_ca("ca", "Interop Root CA")
        self.ok("request", "create", "shop", "--cn", "shop.example.com", "--san",
                "DNS:www.shop.example.com", "--country", "DE", "--org", "Example GmbH",
                "--key", "rsa:2048")
        csr = self.path("shop.csr")
        self.ok("request", "export", "shop", "--out", csr)
        signed = self.sign(csr, ca_key, ca_pem, 90, "signed.pem")
        self.sh("openssl", "verify", "-CAfile", ca_pem, signed)

        self.ok("cert", "import", signed)
        j = self.show("shop")
        self.assertEqual(j["sha256"].upper(), self.fingerprint(signed))
        self.assertTrue(j["private_key"])
        self.assertEqual(j["request"], "shop")
        self.assertEqual(j["issued_by"], "Interop Root CA")
        self.assertEqual(j["alternative_names"], sans_doc(["DNS:shop.example.com",
                                                           "DNS:www.shop.example.com"]))
        self.assertEqual(j["key"], "RSA 2048")
        reqs = self.req_list()
        self.assertEqual(reqs["shop"]["status"], "completed")
        self.assertEqual(reqs["shop"]["certificate"], "shop")

        # the held key really is the certificate's key
        p12 = self.export_p12("shop", "shop.p12")
        allpem = self.sh("openssl", "pkcs12", "-in", p12, "-nodes",
                         "-passin", "file:" + self.passfile()).stdout
        self.assertIn("PRIVATE KEY-----", allpem)
        keyfile = self.write("extracted.pem", allpem)
        self.assertEqual(self.key_pubkey(keyfile), self.cert_pubkey(signed))
        self.assertEqual(self.fingerprint(keyfile), self.fingerprint(signed))
        with open(csr, "rb") as f:
            csr_pub = x509.load_pem_x509_csr(f.read()).public_key()
        self.assertEqual(csr_pub.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
                         .decode().strip(), self.cert_pubkey(signed))

    def test_4_pkcs12_export(self):
        ca_key, ca_pem = self.make_ca("ca", "P12 Root CA", ("-newkey", "rsa:2048"))
        self.ok("request", "create", "p12", "--cn", "p12.example.com", "--key", "ec:p256")
        csr = self.path("p12.csr")
        self.ok("request", "export", "p12", "--out", csr)
        signed = self.sign(csr, ca_key, ca_pem, 60, "p12.pem")
        self.ok("cert", "import", signed, ca_pem)
        ca_entry = self.show("P12 Root CA")
        self.assertEqual(ca_entry["sha256"].upper(), self.fingerprint(ca_pem))
        leaf_fp = self.fingerprint(signed)
        pw = self.passfile()

        for chain in (False, True):
            with self.subTest(with_chain=chain):
                out = "chain.p12" if chain else "plain.p12"
                p12 = self.export_p12("p12", out, *(["--with-chain"] if chain else []))
                info = self.sh("openssl", "pkcs12", "-in", p12, "-info", "-noout",
                               "-passin", "file:" + pw)
                info_text = info.stdout + info.stderr
                for s in ("MAC: sha256", "Iteration 10000", "AES-256-CBC", "PBKDF2",
                          "hmacWithSHA256", "Shrouded Keybag"):
                    self.assertIn(s, info_text)
                bad = self.write("wrong.txt", "wrong-passphrase\n")
                self.assertNotEqual(self.sh("openssl", "pkcs12", "-in", p12, "-info", "-noout",
                                            "-passin", "file:" + bad, check=False).returncode, 0)

                # extraction of certificate and key
                leaf = self.write(out + ".leaf.pem", self.sh(
                    "openssl", "pkcs12", "-in", p12, "-clcerts", "-nokeys",
                    "-passin", "file:" + pw).stdout)
                self.assertEqual(self.fingerprint(leaf), leaf_fp)
                self.assertEqual(self.p12_key_pubkey(p12), self.cert_pubkey(signed))
                cacerts = self.sh("openssl", "pkcs12", "-in", p12, "-cacerts", "-nokeys",
                                  "-passin", "file:" + pw).stdout
                if chain:
                    self.assertEqual(self.fingerprint(self.write(out + ".ca.pem", cacerts)),
                                     self.fingerprint(ca_pem))
                else:
                    self.assertNotIn("BEGIN CERTIFICATE", cacerts)

                # Python cryptography reads it too
                with open(p12, "rb") as f:
                    key, cert, extra = pkcs12.load_key_and_certificates(f.read(),
                                                                        PASSPHRASE.encode())
                self.assertEqual(cert, self.load_cert(signed))
                self.assertEqual(key.public_key().public_numbers(),
                                 cert.public_key().public_numbers())
                self.assertEqual(extra, [self.load_cert(ca_pem)] if chain else [])

                # keytool (Java)
                kt = self.sh("keytool", "-list", "-v", "-keystore", p12, "-storetype", "PKCS12",
                             "-storepass:file", pw)
                self.assertIn("Your keystore contains 1 entry", kt.stdout)
                self.assertIn("Entry type: PrivateKeyEntry", kt.stdout)
                self.assertIn(f"Certificate chain length: {2 if chain else 1}", kt.stdout)
                colon_fp = ":".join(leaf_fp[i:i + 2] for i in range(0, len(leaf_fp), 2))
                self.assertIn(colon_fp, kt.stdout)
                kt_short = self.sh("keytool", "-list", "-keystore", p12, "-storetype",
                                   "PKCS12", "-storepass:file", pw)
                self.assertIn("PrivateKeyEntry", kt_short.stdout)

    def test_5_renewal_successor(self):
        ca_key, ca_pem = self.make_ca("ca", "Renewal Root CA")
        self.ok("request", "create", "renew", "--cn", "renew.example.com", "--key", "ec:p256")
        csr = self.path("renew.csr")
        self.ok("request", "export", "renew", "--out", csr)
        first = self.sign(csr, ca_key, ca_pem, 10, "first.pem")
        second = self.sign(csr, ca_key, ca_pem, 20, "second.pem")
        fp1, fp2 = self.fingerprint(first), self.fingerprint(second)
        self.assertNotEqual(fp1, fp2)

        self.ok("cert", "import", first)
        self.assertEqual(self.show("renew")["sha256"].upper(), fp1)
        self.ok("cert", "default", "renew")
        self.assertTrue(self.cert_list()["renew"]["default"])

        self.ok("cert", "import", second)
        by_fp = {c["sha256"].upper(): c for c in self.cert_list().values()}
        self.assertIn(fp1, by_fp)
        self.assertIn(fp2, by_fp)
        n1, n2 = by_fp[fp1]["name"], by_fp[fp2]["name"]
        self.assertEqual(n1, "renew")
        self.assertNotEqual(n1, n2)
        j1, j2 = self.show(n1), self.show(n2)
        self.assertEqual(j2["predecessor"], n1)
        self.assertEqual(j1["successor"], n2)
        self.assertTrue(j2["private_key"])
        self.assertTrue(j2["default"])
        self.assertFalse(j1["default"])
        listed = self.cert_list()
        self.assertEqual([n for n, c in listed.items() if c["default"]], [n2])
        # both certificates carry the same (held) key
        self.assertEqual(self.p12_key_pubkey(self.export_p12(n2, "second.p12")),
                         self.cert_pubkey(second))

    def test_6_replace(self):
        self.ok("cert", "create", "site", "--cn", "site.example.com", "--key", "ec:p256",
                "--days", "30")
        old_pem = self.path("old.pem")
        self.ok("cert", "export", "site", "--format", "pem", "--out", old_pem)
        old_fp = self.fingerprint(old_pem)
        self.ok("cert", "default", "site")
        self.assertTrue(self.show("site")["default"])

        new_key, new_pem = self.self_signed_leaf("new", "site.example.com", 200,
                                                 ("-newkey", "rsa:2048"))
        new_fp = self.fingerprint(new_pem)
        self.ok("cert", "replace", "site", new_pem, "--key", new_key)

        cur, old = self.show("site"), self.show("site_REPLACED")
        self.assertEqual(cur["sha256"].upper(), new_fp)
        self.assertEqual(old["sha256"].upper(), old_fp)
        self.assertTrue(cur["private_key"])
        self.assertEqual(cur["key"], "RSA 2048")
        self.assertTrue(cur["default"])
        self.assertFalse(old["default"])
        listed = self.cert_list()
        self.assertEqual([n for n, c in listed.items() if c["default"]], ["site"])
        exported = self.path("site_now.pem")
        self.ok("cert", "export", "site", "--format", "pem", "--out", exported)
        self.assertEqual(self.fingerprint(exported), new_fp)
        # the new key is the one held for "site"
        self.assertEqual(self.p12_key_pubkey(self.export_p12("site", "site.p12")),
                         self.key_pubkey(new_key))

    def test_7_import_bundle_and_conflict(self):
        ca_key, ca_pem = self.make_ca("ca", "Bundle Root CA", ("-newkey", "rsa:2048"))
        leaf_key = self.path("leaf.key")
        self.sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", leaf_key)
        csr = self.path("leaf.csr")
        self.sh("openssl", "req", "-new", "-key", leaf_key, "-out", csr, "-subj",
                "/CN=bundle.example.com", "-addext", "subjectAltName=DNS:bundle.example.com",
                "-addext", "basicConstraints=critical,CA:FALSE")
        leaf = self.sign(csr, ca_key, ca_pem, 60, "leaf.pem")

        def rd(p):
            with open(p) as f:
                return f.read()
        orders = {
            # CA first, then the key, then the leaf, with text around every block
            "ca-key-leaf": "Bundle exported by some other product\nsubject=/CN=Bundle Root CA\n"
                           + rd(ca_pem) + "\nBag Attributes\n    localKeyID: 01 02 03\n"
                           + rd(leaf_key) + "some words between blocks\n"
                           + rd(leaf) + "\n-- end of bundle --\n",
            # leaf first, CA last, the key in between
            "leaf-key-ca": "leaf:\n" + rd(leaf) + "key:\n" + rd(leaf_key)
                           + "issuer:\n" + rd(ca_pem) + "done\n",
        }
        for order, content in orders.items():
            with self.subTest(order=order):
                home = self.path("home-" + order)
                bundle = self.write(order + ".pem", content)
                self.ok("cert", "import", bundle, home=home)
                listed = {c["name"]: c for c in
                          self.ok("--json", "cert", "list", home=home).json() +
                          self.ok("--json", "ca", "list", home=home).json()}
                by_fp = {c["sha256"].upper(): c for c in listed.values()}
                leaf_entry = by_fp[self.fingerprint(leaf)]
                ca_entry = by_fp[self.fingerprint(ca_pem)]
                self.assertEqual(leaf_entry["name"], "bundle.example.com")
                self.assertTrue(leaf_entry["private_key"])
                self.assertEqual(ca_entry["name"], "Bundle Root CA")
                self.assertFalse(ca_entry["private_key"])
                ca_show = self.ok("--json", "cert", "show", ca_entry["name"], home=home).json()
                self.assertEqual(ca_show["type"], "root")
                self.assertFalse(ca_show["private_key"])
                self.assertTrue(ca_show["ca"])
                leaf_show = self.ok("--json", "cert", "show", leaf_entry["name"],
                                    home=home).json()
                self.assertEqual(leaf_show["type"], "identity")
                self.assertEqual(leaf_show["issued_by"], "Bundle Root CA")
                # the key in the bundle is the one linked to the leaf
                p12 = self.path(order + ".p12")
                self.ok("cert", "export", leaf_entry["name"], "--format", "p12", "--with-key",
                        "--passphrase-file", self.passfile(), "--out", p12, home=home)
                self.assertEqual(self.p12_key_pubkey(p12), self.key_pubkey(leaf_key))

                before = self.dump(home=home)
                self.nothing_new("cert", "import", bundle, home=home, present=2)
                self.assertEqual(self.dump(home=home), before)
                self.assertEqual({c["name"]: c for c in
                                  self.ok("--json", "cert", "list", home=home).json() +
                                  self.ok("--json", "ca", "list", home=home).json()}, listed)

    def test_8_list_expiring(self):
        now = time.time()
        soon_key, soon = self.self_signed_leaf("soon", "soon.example.com", 5)
        later_key, later = self.self_signed_leaf("later", "later.example.com", 100)
        self.ok("cert", "import", soon, "--key", soon_key)
        self.ok("cert", "import", later, "--key", later_key)
        every = self.cert_list()
        self.assertIn("soon.example.com", every)
        self.assertIn("later.example.com", every)
        self.assertIn("appliance default", every)  # 825 days

        within30 = self.cert_list("--expiring", "30")
        self.assertEqual(set(within30), {"soon.example.com"})
        self.assertEqual(within30["soon.example.com"]["sha256"].upper(), self.fingerprint(soon))
        self.assertEqual(set(self.cert_list("--expiring", "150")),
                         {"soon.example.com", "later.example.com"})
        self.assertEqual(set(self.cert_list("--expiring", "4")), set())
        self.assertEqual(set(self.cert_list("--expiring", "1000")), set(every))
        for c in self.cert_list("--expiring", "150").values():
            self.assertLessEqual(c["not_after_unix"], now + 150 * 86400 + 60)
        text = self.ok("cert", "list", "--expiring", "30").out
        self.assertIn("soon.example.com", text)
        self.assertNotIn("later.example.com", text)

    def test_9_json_after_the_command(self):
        """README: every read command takes --json before or after the command."""
        self.ok("cert", "create", "j", "--cn", "j.example.com", "--key", "ec:p256")
        self.ok("request", "create", "jr", "--cn", "jr.example.com", "--key", "ec:p256")
        for cmd in (["cert", "list"], ["cert", "list", "--expiring", "1000"],
                    ["cert", "show", "j"], ["request", "list"], ["request", "show", "jr"]):
            with self.subTest(cmd=" ".join(cmd)):
                before = self.ok("--json", *cmd).json()
                after = self.ok(*cmd, "--json").json()
                self.assertEqual(after, before)


if __name__ == "__main__":
    tglib.main()
