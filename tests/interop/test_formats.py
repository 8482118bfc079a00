#!/usr/bin/python3
"""Interop tests for import and export formats (SPEC F1-F3): every input file is made at
test time by a tool we did not write (openssl, keytool, certtool, certutil/pk12util,
Python cryptography), and every export is read back by those tools.

Run: cd /work/main && TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_formats.py
"""
import datetime
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import INVALID, PASSWORD, USAGE, TgCase  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

FILE_PW = "import-secret-7"      # passwords of the files we import
EXPORT_PW = "export-passphrase-9"  # passphrase of tlsgate's exports

PEM_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.S)

KEY_KINDS = {
    "rsa2048": ("RSA", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "RSA 2048"),
    "rsa3072": ("RSA", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"], "RSA 3072"),
    "rsa4096": ("RSA", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"], "RSA 4096"),
    "p256": ("EC", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "EC P-256"),
    "p384": ("EC", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "EC P-384"),
}

INT_EXT = ("basicConstraints=critical,CA:TRUE,pathlen:0\n"
           "keyUsage=critical,keyCertSign,cRLSign\n"
           "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
LEAF_EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:{cn}\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")


def colon_hex(fp):
    return ":".join(fp[i:i + 2] for i in range(0, len(fp), 2))


class Formats(TgCase):
    # ----------------------------------------------------------------- helpers

    def pwfile(self, pw=FILE_PW, name="file-pw.txt"):
        return self.write(name, pw + "\n")

    def cert_names(self, home=None):
        return [c["name"] for c in self.ok("--json", "cert", "list", home=home).json()]

    def ca_list(self, home=None):
        return self.ok("--json", "ca", "list", home=home).json()

    def genkey(self, kind, out):
        self.sh("openssl", "genpkey", *KEY_KINDS[kind][1], "-out", self.path(out))
        return self.path(out)

    def self_signed(self, prefix, cn, key, days=60):
        crt = self.path(prefix + ".pem")
        self.sh("openssl", "req", "-x509", "-key", key, "-out", crt, "-days", str(days),
                "-subj", f"/CN={cn}/O=Formats Interop",
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
                "-addext", f"subjectAltName=DNS:{cn}")
        return crt

    def make_chain(self, leaf_kind="p256", cn="leaf.example.com", prefix=""):
        """root -> intermediate -> leaf, made with openssl. Returns a dict of paths."""
        p = lambda n: self.path(prefix + n)  # noqa: E731
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", p("root.key"), "-out", p("root.pem"), "-days", "3650",
                "-subj", f"/CN={prefix}Formats Root CA/O=Formats Interop",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", p("int.key"), "-out", p("int.csr"),
                "-subj", f"/CN={prefix}Formats Intermediate CA/O=Formats Interop")
        self.write(prefix + "int.ext", INT_EXT)
        self.sh("openssl", "x509", "-req", "-in", p("int.csr"), "-CA", p("root.pem"),
                "-CAkey", p("root.key"), "-days", "1825", "-extfile", p("int.ext"),
                "-out", p("int.pem"))
        leaf_key = self.genkey(leaf_kind, prefix + "leaf.key")
        self.sh("openssl", "req", "-new", "-key", leaf_key, "-out", p("leaf.csr"),
                "-subj", f"/CN={cn}")
        self.write(prefix + "leaf.ext", LEAF_EXT.format(cn=cn))
        self.sh("openssl", "x509", "-req", "-in", p("leaf.csr"), "-CA", p("int.pem"),
                "-CAkey", p("int.key"), "-days", "365", "-extfile", p("leaf.ext"),
                "-out", p("leaf.pem"))
        self.sh("openssl", "verify", "-CAfile", p("root.pem"), "-untrusted", p("int.pem"),
                p("leaf.pem"))
        return dict(root=p("root.pem"), root_key=p("root.key"), int=p("int.pem"),
                    int_key=p("int.key"), leaf=p("leaf.pem"), leaf_key=leaf_key,
                    root_cn=f"{prefix}Formats Root CA", int_cn=f"{prefix}Formats Intermediate CA")

    def import_with_password(self, i, *args, home=None, pw=FILE_PW):
        """cert import with the password alternately from a file and from the environment."""
        if i % 2 == 0:
            return self.ok("cert", "import", *args, "--password-file",
                           self.pwfile(pw, f"pw{i}.txt"), home=home)
        return self.ok("cert", "import", *args, env={"TLSGATE_PASSWORD": pw}, home=home)

    def assert_linked(self, name, fp, home=None, keydesc=None):
        """name has a private key, and that key is the certificate's (checked by openssl)."""
        j = self.show(name, home=home)
        self.assertTrue(j["private_key"], f"{name}: no private key linked: {j}")
        self.assertEqual(j["sha256"].upper(), fp)
        if keydesc:
            self.assertEqual(j["key"], keydesc)
        stem = re.sub(r"[^A-Za-z0-9]", "_", name) + "-" + fp[:8]
        crt, key = self.path(stem + ".crt.pem"), self.path(stem + ".key.pem")
        # the same certificate is checked again after other imports: --force replaces
        self.ok("cert", "export", name, "--format", "pem", "--out", crt, "--force", home=home)
        self.ok("cert", "export", name, "--format", "p8", "--no-passphrase", "--out", key,
                "--force", home=home)
        self.assertEqual(self.fingerprint(crt), fp)
        self.assertEqual(self.key_pubkey(key), self.cert_pubkey(crt),
                         f"{name}: the linked key is not the certificate's")
        return j

    def assert_cas_once(self, fps, home=None):
        """Every fingerprint in fps is in ca list exactly once; returns {fp: name}."""
        rows = self.ca_list(home=home)
        got = [r["sha256"].upper() for r in rows]
        for fp in fps:
            self.assertEqual(got.count(fp), 1, f"CA {fp} listed {got.count(fp)} times: {rows}")
        return {r["sha256"].upper(): r["name"] for r in rows}

    def pem_blocks_fps(self, text):
        fps = []
        for i, blk in enumerate(PEM_CERT_RE.findall(text)):
            fps.append(self.fingerprint(self.write(f"blk-{len(text)}-{i}.pem", blk + "\n")))
        return fps

    # --------------------------------------------------------- imports: openssl
    def test_01_openssl_key_encodings(self):
        """F1/F2: every key type x every key encoding, with the certificate as DER or PEM."""
        encodings = {
            "p8.der": (["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"], False),
            "p8.pem": (["pkcs8", "-topk8", "-nocrypt"], False),
            "p8enc.pem": (["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout",
                           "pass:" + FILE_PW], True),
            "p8enc.der": (["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-outform", "DER",
                           "-passout", "pass:" + FILE_PW], True),
            "scrypt.pem": (["pkcs8", "-topk8", "-scrypt", "-passout", "pass:" + FILE_PW], True),
            "trad.pem": (["pkey", "-traditional"], False),
            "tradenc.pem": (["pkey", "-traditional", "-aes256", "-passout",
                             "pass:" + FILE_PW], True),
        }
        n = 0
        for kind in ("rsa2048", "rsa3072", "rsa4096", "p256", "p384"):
            key = self.genkey(kind, kind + ".key")
            cn = f"{kind}.formats.example"
            pem = self.self_signed(kind, cn, key)
            der = self.path(kind + ".der")
            self.sh("openssl", "x509", "-in", pem, "-outform", "DER", "-out", der)
            fp = self.fingerprint(pem)
            for enc, (args, encrypted) in encodings.items():
                n += 1
                with self.subTest(key=kind, encoding=enc):
                    kf = self.path(f"{kind}.{enc}")
                    self.sh("openssl", *args, "-in", key, "-out", kf)
                    body = self.rd(kf, "rb")
                    if enc.startswith("trad"):
                        hdr = "RSA PRIVATE KEY" if kind.startswith("rsa") else "EC PRIVATE KEY"
                        self.assertIn(b"-----BEGIN " + hdr.encode(), body)
                        self.assertEqual(b"Proc-Type: 4,ENCRYPTED" in body, encrypted)
                    if enc == "p8enc.pem" or enc == "scrypt.pem":
                        self.assertIn(b"ENCRYPTED PRIVATE KEY", body)
                    home = self.path(f"home-{kind}-{enc}")
                    certfile = der if n % 2 else pem
                    files = [certfile, "--key", kf] if n % 3 else [certfile, kf]
                    if encrypted:
                        self.import_with_password(n, *files, home=home)
                    else:
                        self.ok("cert", "import", *files, home=home)
                    self.assert_linked(cn, fp, home=home, keydesc=KEY_KINDS[kind][2])
                    self.assertEqual(self.key_pubkey(kf, self.pwfile() if encrypted else None),
                                     self.cert_pubkey(pem))

    def test_02_pem_bundle_any_order(self):
        """F1: several certificates and a key in one PEM, in any order, text around."""
        c = self.make_chain("rsa2048")
        fps = {k: self.fingerprint(c[k]) for k in ("root", "int", "leaf")}
        parts = {"root": self.rd(c["root"]), "int": self.rd(c["int"]),
                 "leaf": self.rd(c["leaf"]), "key": self.rd(c["leaf_key"])}
        orders = [("root", "key", "leaf", "int"), ("leaf", "int", "root", "key"),
                  ("key", "int", "leaf", "root")]
        for order in orders:
            with self.subTest(order=order):
                tag = "-".join(order)
                text = "Exported from a vendor appliance\r\nsubject: somebody\n"
                for i, part in enumerate(order):
                    text += f"\n== part {i}: {part} ==\nBag Attributes\n    friendlyName: x\n"
                    text += parts[part]
                text += "\n-- end of file, nothing more --\n"
                home = self.path("home-" + tag)
                bundle = self.write(tag + ".pem", text)
                self.ok("cert", "import", bundle, home=home)
                self.assert_linked("leaf.example.com", fps["leaf"], home=home,
                                   keydesc="RSA 2048")
                names = self.assert_cas_once([fps["root"], fps["int"]], home=home)
                self.assertEqual(names[fps["root"]], c["root_cn"])
                self.assertEqual(names[fps["int"]], c["int_cn"])
                listed = self.cert_names(home=home)
                self.assertEqual(listed.count("leaf.example.com"), 1)
                # the whole chain again: nothing new, nothing changed, no duplicates
                before = self.dump(home=home)
                self.nothing_new("cert", "import", bundle, home=home, present=3)
                self.nothing_new("cert", "import", c["leaf"], c["int"], c["root"], home=home,
                                 present=3)
                self.assertEqual(self.dump(home=home), before)
                self.assert_cas_once([fps["root"], fps["int"]], home=home)
                self.assertEqual(self.cert_names(home=home), listed)

    def test_03_pkcs7_chain(self):
        """F1: PKCS#7 (.p7b) in DER and PEM; the leaf is a certificate, the rest CAs, once."""
        c = self.make_chain("p384")
        fps = {k: self.fingerprint(c[k]) for k in ("root", "int", "leaf")}
        p7der, p7pem = self.path("chain.p7b"), self.path("chain.p7b.pem")
        for out, form in ((p7der, "DER"), (p7pem, "PEM")):
            self.sh("openssl", "crl2pkcs7", "-nocrl", "-certfile", c["root"], "-certfile",
                    c["leaf"], "-certfile", c["int"], "-outform", form, "-out", out)
        self.assertTrue(self.rd(p7pem).startswith("-----BEGIN PKCS7-----"))
        for first, second in ((p7der, p7pem), (p7pem, p7der)):
            with self.subTest(first=os.path.basename(first)):
                home = self.path("home-" + os.path.basename(first))
                self.ok("cert", "import", first, home=home)
                j = self.show("leaf.example.com", home=home)
                self.assertEqual(j["sha256"].upper(), fps["leaf"])
                self.assertFalse(j["private_key"])
                self.assertEqual(j["type"], "identity")
                self.assertEqual(j["chain_status"], "valid")
                self.assert_cas_once([fps["root"], fps["int"]], home=home)
                before = self.dump(home=home)
                self.nothing_new("cert", "import", second, home=home)
                self.assertEqual(self.dump(home=home), before)
                self.assertEqual(self.cert_names(home=home).count("leaf.example.com"), 1)
                self.assert_cas_once([fps["root"], fps["int"]], home=home)

    def test_04_openssl_pkcs12_variants(self):
        """F2: PKCS#12 from openssl: modern, -legacy, no password, -nomac, with a chain."""
        c = self.make_chain("rsa2048")
        fps = {k: self.fingerprint(c[k]) for k in ("root", "int", "leaf")}
        ec_key = self.genkey("p256", "ec.key")
        ec_pem = self.self_signed("ec", "p12ec.example.com", ec_key)
        ec_fp = self.fingerprint(ec_pem)
        base = ["openssl", "pkcs12", "-export", "-name", "the alias"]
        chainfile = self.write("cas.pem", self.rd(c["int"]) + self.rd(c["root"]))
        variants = {
            "modern": ([*base, "-in", c["leaf"], "-inkey", c["leaf_key"],
                        "-passout", "pass:" + FILE_PW], FILE_PW, "leaf.example.com", False),
            "legacy": ([*base, "-legacy", "-in", ec_pem, "-inkey", ec_key,
                        "-passout", "pass:" + FILE_PW], FILE_PW, "p12ec.example.com", False),
            "nopass": ([*base, "-in", ec_pem, "-inkey", ec_key, "-passout", "pass:"],
                       None, "p12ec.example.com", False),
            "nomac": ([*base, "-in", c["leaf"], "-inkey", c["leaf_key"], "-passout", "pass:",
                       "-nomac"], None, "leaf.example.com", False),
            "chain": ([*base, "-in", c["leaf"], "-inkey", c["leaf_key"], "-certfile", chainfile,
                       "-passout", "pass:" + FILE_PW], FILE_PW, "leaf.example.com", True),
            "legacy-chain": ([*base, "-legacy", "-in", c["leaf"], "-inkey", c["leaf_key"],
                              "-certfile", chainfile, "-passout", "pass:" + FILE_PW],
                             FILE_PW, "leaf.example.com", True),
        }
        for i, (tag, (cmd, pw, name, chain)) in enumerate(variants.items()):
            with self.subTest(variant=tag):
                p12 = self.path(tag + ".p12")
                self.sh(*cmd, "-out", p12)
                if tag.startswith("legacy"):
                    info = self.sh("openssl", "pkcs12", "-in", p12, "-info", "-noout", "-legacy",
                                   "-passin", "pass:" + pw)
                    self.assertIn("RC2", info.stdout + info.stderr)
                home = self.path("home-" + tag)
                if pw is None:
                    self.ok("cert", "import", p12, home=home)  # no password needed, none asked
                else:
                    self.import_with_password(i, p12, home=home, pw=pw)
                fp = ec_fp if name.startswith("p12ec") else fps["leaf"]
                self.assert_linked(name, fp, home=home)
                if chain:
                    self.assert_cas_once([fps["root"], fps["int"]], home=home)
                    self.assertEqual(self.show(name, home=home)["chain_status"], "valid")
                    before = self.dump(home=home)
                    self.nothing_new("cert", "import", p12, env={"TLSGATE_PASSWORD": pw},
                                     home=home, present=3)
                    self.assertEqual(self.dump(home=home), before)
                    self.assert_cas_once([fps["root"], fps["int"]], home=home)
                else:
                    self.assertEqual(self.ca_list(home=home), [])

    # ------------------------------------------------------- imports: other tools
    def test_05_keytool_keystore(self):
        """F2: a Java PKCS12 keystore with two key entries and a trusted CA."""
        ca_key = self.path("ktca.key")
        ca = self.path("ktca.pem")
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", ca_key, "-out", ca, "-days", "365",
                "-subj", "/CN=Keytool Trusted CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        ks = self.path("ks.p12")
        common = ["-keystore", ks, "-storetype", "PKCS12", "-storepass", FILE_PW]
        self.sh("keytool", "-genkeypair", "-alias", "web", "-keyalg", "RSA", "-keysize", "2048",
                "-dname", "CN=web.example.com,O=Keytool", "-ext", "SAN=dns:web.example.com",
                "-validity", "90", "-keypass", FILE_PW, *common)
        self.sh("keytool", "-genkeypair", "-alias", "mail", "-keyalg", "EC", "-groupname",
                "secp384r1", "-dname", "CN=mail.example.com", "-validity", "90",
                "-keypass", FILE_PW, *common)
        self.sh("keytool", "-importcert", "-noprompt", "-alias", "trustedca", "-file", ca,
                *common)
        listing = self.sh("keytool", "-list", *common).stdout
        kt_fp = {}
        for alias, fp in re.findall(r"^(\w+), .*\n.*\(SHA-256\): ([0-9A-F:]+)", listing, re.M):
            kt_fp[alias] = fp.replace(":", "")
        self.assertEqual(set(kt_fp), {"web", "mail", "trustedca"}, listing)
        self.assertEqual(kt_fp["trustedca"], self.fingerprint(ca))

        for i, (base, opts) in enumerate((("ks", []), ("site", ["--name", "site"]))):
            with self.subTest(base=base):
                home = self.path("home-" + base)
                self.import_with_password(i, ks, *opts, home=home)
                names = set(self.cert_names(home=home))
                self.assertIn(f"{base}-web", names)
                self.assertIn(f"{base}-mail", names)
                self.assert_linked(f"{base}-web", kt_fp["web"], home=home, keydesc="RSA 2048")
                self.assert_linked(f"{base}-mail", kt_fp["mail"], home=home, keydesc="EC P-384")
                cas = self.assert_cas_once([kt_fp["trustedca"]], home=home)
                self.assertEqual(len(cas), 1)
                ca_name = cas[kt_fp["trustedca"]]
                self.assertFalse(self.ok("--json", "ca", "show", ca_name,
                                         home=home).json()["private_key"])

    def test_06_gnutls_certtool(self):
        """F1/F2: certtool's key (with its text preamble), self-signed certificate and PKCS#12."""
        key, crt, p12 = self.path("gt.key"), self.path("gt.pem"), self.path("gt.p12")
        self.sh("certtool", "--generate-privkey", "--key-type", "ecdsa", "--curve", "secp256r1",
                "--outfile", key)
        tmpl = self.write("gt.tmpl", 'cn = "gnutls.example.com"\norganization = "GnuTLS"\n'
                          'dns_name = "gnutls.example.com"\nserial = 4660\n'
                          'expiration_days = 90\ntls_www_server\nsigning_key\n')
        self.sh("certtool", "--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                "--outfile", crt)
        self.sh("certtool", "--to-p12", "--load-privkey", key, "--load-certificate", crt,
                "--p12-name", "gtalias", "--password", FILE_PW, "--outder", "--outfile", p12)
        fp = self.fingerprint(crt)

        home = self.path("home-pem")
        self.ok("cert", "import", crt, "--key", key, home=home)
        self.assert_linked("gnutls.example.com", fp, home=home, keydesc="EC P-256")
        home = self.path("home-p12")
        self.import_with_password(1, p12, home=home)
        self.assert_linked("gnutls.example.com", fp, home=home, keydesc="EC P-256")
        # the certificate alone, the key in the same PEM file after it
        home = self.path("home-both")
        both = self.write("both.pem", self.rd(crt) + "\n" + self.rd(key))
        self.ok("cert", "import", both, home=home)
        self.assert_linked("gnutls.example.com", fp, home=home)

    def test_07_nss_pk12util(self):
        """F2: PKCS#12 exported from an NSS database by pk12util."""
        db = "sql:" + self.path("nssdb")
        os.mkdir(self.path("nssdb"))
        self.sh("certutil", "-N", "-d", db, "--empty-password")
        self.write("noise", os.urandom(64).hex())
        self.sh("certutil", "-S", "-d", db, "-n", "nss server", "-s",
                "CN=nss.example.com,O=NSS", "-x", "-t", "u,u,u", "-k", "rsa", "-g", "2048",
                "-v", "3", "-z", self.path("noise"), "-8", "nss.example.com", "--keyUsage",
                "digitalSignature,keyEncipherment")
        p12 = self.path("nss.p12")
        self.sh("pk12util", "-o", p12, "-n", "nss server", "-d", db, "-W", FILE_PW)
        crt = self.write("nss.pem", self.sh("openssl", "pkcs12", "-in", p12, "-nokeys",
                                            "-passin", "pass:" + FILE_PW).stdout)
        home = self.path("home")
        self.import_with_password(0, p12, home=home)
        self.assert_linked("nss.example.com", self.fingerprint(crt), home=home,
                           keydesc="RSA 2048")

    def test_08_python_pkcs12(self):
        """F2: PKCS#12 by Python cryptography (BestAvailableEncryption), with a CA."""
        now = datetime.datetime.utcnow()
        ca_key = ec.generate_private_key(ec.SECP384R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Python Test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=365))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                           False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                             critical=False)
              .sign(ca_key, hashes.SHA384()))
        key = rsa.generate_private_key(65537, 2048)
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                            "py.example.com")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=90))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("py.example.com")]),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        blob = pkcs12.serialize_key_and_certificates(
            b"py alias", key, leaf, [ca], serialization.BestAvailableEncryption(FILE_PW.encode()))
        p12 = self.write("py.p12", blob, "wb")
        leaf_pem = self.write("py.pem", leaf.public_bytes(serialization.Encoding.PEM), "wb")
        ca_pem = self.write("pyca.pem", ca.public_bytes(serialization.Encoding.PEM), "wb")
        home = self.path("home")
        self.import_with_password(1, p12, home=home)
        self.assert_linked("py.example.com", self.fingerprint(leaf_pem), home=home,
                           keydesc="RSA 2048")
        self.assert_cas_once([self.fingerprint(ca_pem)], home=home)
        self.assertEqual(self.show("py.example.com", home=home)["chain_status"], "valid")

    # ------------------------------------------------------------------ exports
    def _export_setup(self):
        c = self.make_chain("rsa2048")
        self.ok("cert", "import", c["leaf"], c["leaf_key"], c["int"], c["root"])
        ec_key = self.genkey("p384", "ec.key")
        ec_crt = self.self_signed("ec", "ec.export.example", ec_key)
        self.ok("cert", "import", ec_crt, "--key", ec_key)
        c["fps"] = {k: self.fingerprint(c[k]) for k in ("root", "int", "leaf")}
        c["ec_key"], c["ec_crt"] = ec_key, ec_crt
        return c

    def test_10_export_certificates(self):
        """F3: certificate alone as DER and PEM, chain as PEM and PKCS#7; read by openssl and
        certtool; exporting changes nothing."""
        c = self._export_setup()
        fps = c["fps"]
        chain_fps = [fps["leaf"], fps["int"], fps["root"]]
        before = self.dump()
        name = "leaf.example.com"
        der, pem = self.path("x.der"), self.path("x.pem")
        self.ok("cert", "export", name, "--format", "der", "--out", der)
        self.ok("cert", "export", name, "--format", "pem", "--out", pem)
        self.assertEqual(self.fingerprint(der, "DER"), fps["leaf"])
        self.assertEqual(self.fingerprint(pem), fps["leaf"])
        self.assertEqual(len(PEM_CERT_RE.findall(self.rd(pem))), 1)
        self.assertFalse(self.rd(der, "rb").startswith(b"-----"))
        for f, opts in ((der, ["--inder"]), (pem, [])):
            info = self.sh("certtool", "--certificate-info", *opts, "--infile", f).stdout
            self.assertIn("sha256:" + fps["leaf"].lower(), info)
            self.assertIn("CN=leaf.example.com", info)

        chain_pem = self.path("chain.pem")
        self.ok("cert", "export", name, "--format", "pem", "--with-chain", "--out", chain_pem)
        self.assertEqual(self.pem_blocks_fps(self.rd(chain_pem)), chain_fps)
        v = self.sh("openssl", "verify", "-CAfile", c["root"], "-untrusted", chain_pem, pem,
                    check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

        for chain in (False, True):
            with self.subTest(p7b_chain=chain):
                p7 = self.path(f"x{chain}.p7b")
                self.ok("cert", "export", name, "--format", "p7b",
                        *(["--with-chain"] if chain else []), "--out", p7)
                raw = self.rd(p7, "rb")
                if raw.startswith(b"-----BEGIN PKCS7"):
                    inform, certtool_opts = "PEM", []
                else:
                    inform, certtool_opts = "DER", ["--inder"]
                printed = self.sh("openssl", "pkcs7", "-inform", inform, "-in", p7,
                                  "-print_certs").stdout
                want = chain_fps if chain else chain_fps[:1]
                self.assertEqual(sorted(self.pem_blocks_fps(printed)), sorted(want))
                info = self.sh("certtool", "--p7-info", *certtool_opts, "--infile", p7).stdout
                self.assertIn(f"Number of certificates: {len(want)}", info)
                # and tlsgate reads its own PKCS#7 back: nothing new
                self.nothing_new("cert", "import", p7, present=len(want))
        self.assertEqual(self.dump(), before, "an export changed the store")

    def test_11_export_keys(self):
        """F3: key alone as PKCS#8 (encrypted or not) and PKCS#1 / SEC1 (traditional)."""
        c = self._export_setup()
        pw = self.pwfile(EXPORT_PW, "export-pw.txt")
        wrong = self.pwfile("wrong-passphrase", "wrong.txt")
        for name, crt, hdr in (("leaf.example.com", c["leaf"], "RSA PRIVATE KEY"),
                               ("ec.export.example", c["ec_crt"], "EC PRIVATE KEY")):
            want = self.cert_pubkey(crt)
            with self.subTest(name=name, format="p8"):
                enc, plain = self.path(name + ".p8"), self.path(name + ".plain.p8")
                self.ok("cert", "export", name, "--format", "p8", "--passphrase-file", pw,
                        "--out", enc)
                self.ok("cert", "export", name, "--format", "p8", "--no-passphrase",
                        "--out", plain)
                t = self.rd(enc)
                self.assertTrue(t.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----"), t[:60])
                self.assertEqual(self.key_pubkey(enc, pw), want)
                self.assertNotEqual(self.sh("openssl", "pkey", "-in", enc, "-passin",
                                            "file:" + wrong, "-noout", check=False).returncode,
                                    0)
                self.assertTrue(self.rd(plain).startswith("-----BEGIN PRIVATE KEY-----"))
                self.assertEqual(self.key_pubkey(plain), want)
                self.assertEqual(oct(os.stat(enc).st_mode & 0o777), "0o600")
            with self.subTest(name=name, format="pkcs1"):
                enc, plain = self.path(name + ".p1"), self.path(name + ".plain.p1")
                self.ok("cert", "export", name, "--format", "pkcs1", "--passphrase-file", pw,
                        "--out", enc)
                self.ok("cert", "export", name, "--format", "pkcs1", "--no-passphrase",
                        "--out", plain)
                t = self.rd(enc)
                self.assertTrue(t.startswith(f"-----BEGIN {hdr}-----"), t[:60])
                self.assertIn("Proc-Type: 4,ENCRYPTED", t)
                self.assertIn("DEK-Info: ", t)
                self.assertEqual(self.key_pubkey(enc, pw), want)
                self.assertNotEqual(self.sh("openssl", "pkey", "-in", enc, "-passin",
                                            "file:" + wrong, "-noout", check=False).returncode,
                                    0)
                t = self.rd(plain)
                self.assertTrue(t.startswith(f"-----BEGIN {hdr}-----"), t[:60])
                self.assertNotIn("Proc-Type", t)
                self.assertEqual(self.key_pubkey(plain), want)
                # and Python cryptography reads the traditional form too
                k = serialization.load_pem_private_key(self.rd(enc, "rb"), EXPORT_PW.encode())
                with open(crt, "rb") as f:
                    cert = x509.load_pem_x509_certificate(f.read())
                self.assertEqual(k.public_key().public_numbers(),
                                 cert.public_key().public_numbers())
        # a key export with a passphrase that is too short
        short = self.pwfile("short", "short.txt")
        self.fails(PASSWORD, "cert", "export", "leaf.example.com", "--format", "p8",
                   "--passphrase-file", short, "--out", self.path("short.p8"))

    def test_12_export_pkcs12_profiles(self):
        """F3: PKCS#12 with key and chain in every profile, read by openssl, keytool,
        pk12util and Python cryptography."""
        c = self._export_setup()
        fps = c["fps"]
        pw = self.pwfile(EXPORT_PW, "export-pw.txt")
        name = "leaf.example.com"
        want_pub = self.cert_pubkey(c["leaf"])
        expected = {
            "modern": (["MAC: sha256", "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC",
                        "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC", "hmacWithSHA256",
                        "Iteration 10000"], ["RC2", "TripleDES", "MAC: sha1"]),
            "legacy-des": (["MAC: sha1", "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC",
                            "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"],
                           ["AES", "RC2", "MAC: sha256"]),
            "legacy-rc2": (["MAC: sha1", "PKCS7 Encrypted data: pbeWithSHA1And40BitRC2-CBC",
                            "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"],
                           ["AES", "MAC: sha256"]),
        }
        with open(c["leaf"], "rb") as f:
            leaf_cert = x509.load_pem_x509_certificate(f.read())
        with open(c["int"], "rb") as f:
            int_cert = x509.load_pem_x509_certificate(f.read())
        with open(c["root"], "rb") as f:
            root_cert = x509.load_pem_x509_certificate(f.read())
        for profile, (present, absent) in expected.items():
            with self.subTest(profile=profile):
                p12 = self.path(profile + ".p12")
                self.ok("cert", "export", name, "--format", "p12", "--with-key", "--with-chain",
                        "--p12-profile", profile, "--passphrase-file", pw, "--out", p12)
                legacy = ["-legacy"] if profile != "modern" else []
                info = self.sh("openssl", "pkcs12", "-in", p12, "-info", "-noout", *legacy,
                               "-passin", "file:" + pw)
                text = info.stdout + info.stderr
                for s in present:
                    self.assertIn(s, text)
                for s in absent:
                    self.assertNotIn(s, text)
                # key and certificates by openssl
                keypem = self.write(profile + ".key.pem", self.sh(
                    "openssl", "pkcs12", "-in", p12, "-nocerts", "-nodes", *legacy,
                    "-passin", "file:" + pw).stdout)
                self.assertEqual(self.key_pubkey(keypem), want_pub)
                leafpem = self.sh("openssl", "pkcs12", "-in", p12, "-clcerts", "-nokeys",
                                  *legacy, "-passin", "file:" + pw).stdout
                self.assertEqual(self.pem_blocks_fps(leafpem), [fps["leaf"]])
                capem = self.sh("openssl", "pkcs12", "-in", p12, "-cacerts", "-nokeys",
                                *legacy, "-passin", "file:" + pw).stdout
                self.assertEqual(sorted(self.pem_blocks_fps(capem)),
                                 sorted([fps["int"], fps["root"]]))
                # keytool (Java 17)
                kt = self.sh("keytool", "-list", "-v", "-keystore", p12, "-storetype", "PKCS12",
                             "-storepass:file", pw).stdout
                self.assertIn("Your keystore contains 1 entry", kt)
                self.assertIn("Entry type: PrivateKeyEntry", kt)
                self.assertIn("Certificate chain length: 3", kt)
                self.assertIn(colon_hex(fps["leaf"]), kt)
                # NSS
                dbdir = self.path("nss-" + profile)
                os.mkdir(dbdir)
                self.sh("certutil", "-N", "-d", "sql:" + dbdir, "--empty-password")
                self.sh("pk12util", "-i", p12, "-d", "sql:" + dbdir, "-w", pw)
                certs = self.sh("certutil", "-L", "-d", "sql:" + dbdir).stdout
                self.assertIn(name, certs)
                keys = self.sh("certutil", "-K", "-d", "sql:" + dbdir).stdout
                self.assertIn(name, keys)
                self.assertRegex(keys, r"\brsa\b")
                nss_crt = self.write(profile + ".nss.pem", self.sh(
                    "certutil", "-L", "-d", "sql:" + dbdir, "-n", name, "-a").stdout)
                self.assertEqual(self.fingerprint(nss_crt), fps["leaf"])
                # Python cryptography
                key, cert, extra = pkcs12.load_key_and_certificates(self.rd(p12, "rb"),
                                                                    EXPORT_PW.encode())
                self.assertEqual(cert, leaf_cert)
                self.assertEqual(key.public_key().public_numbers(),
                                 leaf_cert.public_key().public_numbers())
                self.assertEqual(sorted(extra, key=lambda x: x.fingerprint(hashes.SHA256())),
                                 sorted([int_cert, root_cert],
                                        key=lambda x: x.fingerprint(hashes.SHA256())))
                with self.assertRaises(ValueError):
                    pkcs12.load_key_and_certificates(self.rd(p12, "rb"), b"wrong-passphrase")
                # and tlsgate reads it back: nothing new
                self.nothing_new("cert", "import", p12, env={"TLSGATE_PASSWORD": EXPORT_PW})

    def test_13_support_bundle(self):
        """F3: a support export carries certificates (PEM and PKCS#7), never a key."""
        c = self._export_setup()
        fps = c["fps"]
        before = self.dump()
        out = self.path("support.txt")
        self.ok("cert", "export", "leaf.example.com", "--support-bundle", "--out", out)
        text = self.rd(out)
        self.assertNotIn("PRIVATE KEY", text)
        self.assertNotIn("Proc-Type", text)
        self.assertEqual(self.pem_blocks_fps(text), [fps["leaf"], fps["int"], fps["root"]])
        m = re.search(r"-----BEGIN PKCS7-----\r?\n.*?-----END PKCS7-----", text, re.S)
        self.assertIsNotNone(m, "no PKCS#7 in the support bundle")
        p7 = self.write("support.p7", m.group(0) + "\n")
        printed = self.sh("openssl", "pkcs7", "-in", p7, "-print_certs").stdout
        self.assertEqual(sorted(self.pem_blocks_fps(printed)), sorted(fps.values()))
        # a support bundle with a key is refused, whatever the format
        pw = self.pwfile(EXPORT_PW, "export-pw.txt")
        for extra in (["--with-key", "--format", "p12"], ["--format", "p8"],
                      ["--format", "pkcs1"]):
            with self.subTest(extra=extra):
                bad = self.path("bad-support.out")
                self.fails(USAGE, "cert", "export", "leaf.example.com", "--support-bundle",
                           *extra, "--passphrase-file", pw, "--out", bad)
                self.assertFalse(os.path.exists(bad))
        self.assertEqual(self.dump(), before)

    # ---------------------------------------------------------------- bad input
    def test_20_bad_input(self):
        """X1 for formats: a clear message, the right status, the store unchanged."""
        self.ok("init")
        key = self.genkey("p256", "k.pem")
        crt = self.self_signed("c", "bad.example.com", key)
        der = self.path("c.der")
        self.sh("openssl", "x509", "-in", crt, "-outform", "DER", "-out", der)
        p12 = self.path("c.p12")
        self.sh("openssl", "pkcs12", "-export", "-in", crt, "-inkey", key, "-out", p12,
                "-passout", "pass:" + FILE_PW)
        legacy = self.path("c-legacy.p12")
        self.sh("openssl", "pkcs12", "-export", "-legacy", "-in", crt, "-inkey", key,
                "-out", legacy, "-passout", "pass:" + FILE_PW)
        before = self.dump()

        for f in (p12, legacy):
            with self.subTest(wrong_password=os.path.basename(f)):
                r = self.fails(PASSWORD, "cert", "import", f, "--password-file",
                               self.pwfile("not-the-password", "wrong.txt"))
                self.assertIn("password", r.err.lower())
                r = self.fails(PASSWORD, "cert", "import", f,
                               env={"TLSGATE_PASSWORD": "not-the-password"})
                self.assertIn("password", r.err.lower())
                self.assertEqual(self.dump(), before)

        data = self.rd(der, "rb")
        lines = self.rd(crt).splitlines()
        mid = len(lines) // 2
        garbage = lines[:mid] + ["%%% this is not base64 !!! @@@"] + lines[mid:]
        bad_files = {
            "truncated.der": (data[:len(data) // 2], "wb"),
            "truncated-p12.p12": (self.rd(p12, "rb")[:300], "wb"),
            "garbage.pem": ("\n".join(garbage) + "\n", "w"),
            "empty.pem": ("", "w"),
            "empty.der": (b"", "wb"),
            "noise.txt": ("just some words, no PEM block at all\n", "w"),
        }
        for fname, (content, mode) in bad_files.items():
            with self.subTest(bad=fname):
                f = self.write(fname, content, mode)
                r = self.fails(INVALID, "cert", "import", f,
                               env={"TLSGATE_PASSWORD": FILE_PW})
                self.assertIn(fname, r.err, "the message does not name the file")
                self.assertEqual(self.dump(), before)
                # also when given next to a good file, and as --key
                self.fails(INVALID, "cert", "import", crt, f, env={"TLSGATE_PASSWORD": FILE_PW})
                self.fails(INVALID, "cert", "import", crt, "--key", f,
                           env={"TLSGATE_PASSWORD": FILE_PW})
                self.assertEqual(self.dump(), before)
        self.assertNotIn("bad.example.com", self.cert_names())


if __name__ == "__main__":
    tglib.main()
