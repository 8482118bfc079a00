#!/usr/bin/python3
"""Interop tests for chains and trust (SPEC C1-C4) and root CA rollover (K10): chains made
with openssl (and Python cryptography where openssl 3.0 cannot set the dates), statuses
checked against `openssl verify`.

Run: cd /work/main && TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_chains.py
"""
import datetime
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import CONFLICT, INVALID, NOTFOUND, TgCase  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

CA_NAME_RE = re.compile(r"^[A-Za-z0-9 _-]+$")  # C3

INT_EXT = ("basicConstraints=critical,CA:TRUE,pathlen:0\n"
           "keyUsage=critical,keyCertSign,cRLSign\n"
           "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
LEAF_EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:{cn}\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
EC_P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]


def utcnow():
    return datetime.datetime.utcnow().replace(microsecond=0)


class Chains(TgCase):
    # ----------------------------------------------------------------- helpers

    def status(self, name, home=None):
        return self.show(name, home=home)["chain_status"]

    def listed(self, home=None):
        return {c["name"]: c for c in self.ok("--json", "cert", "list", home=home).json()}

    def ca_names(self, home=None):
        return [c["name"] for c in self.ok("--json", "ca", "list", home=home).json()]

    def subject(self, path):
        return self.sh("openssl", "x509", "-in", path, "-noout", "-subject",
                       "-nameopt", "RFC2253").stdout.strip()

    def load(self, path):
        return x509.load_pem_x509_certificate(self.rd(path, "rb"))

    def verify(self, leaf, cafile, untrusted=()):
        """openssl verify; returns (ok, output)."""
        args = ["openssl", "verify", "-CAfile", cafile]
        for u in untrusted:
            args += ["-untrusted", u]
        r = self.sh(*args, leaf, check=False)
        out = r.stdout + r.stderr
        return r.returncode == 0 and r.stdout.strip() == f"{leaf}: OK", out

    def make_root(self, prefix, cn, days=3650):
        key, crt = self.path(prefix + ".key"), self.path(prefix + ".pem")
        self.sh("openssl", "req", "-x509", *EC_P256, "-nodes", "-keyout", key, "-out", crt,
                "-days", str(days), "-subj", f"/CN={cn}/O=Chains Interop",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return key, crt

    def make_int(self, prefix, cn, ca_key, ca_pem, days=1825):
        key, csr, crt = (self.path(prefix + s) for s in (".key", ".csr", ".pem"))
        self.sh("openssl", "req", "-new", *EC_P256, "-nodes", "-keyout", key, "-out", csr,
                "-subj", f"/CN={cn}/O=Chains Interop")
        ext = self.write(prefix + ".ext", INT_EXT)
        self.sh("openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
                "-days", str(days), "-extfile", ext, "-out", crt)
        return key, crt

    def make_leaf(self, prefix, cn, ca_key, ca_pem, days=365):
        key, csr, crt = (self.path(prefix + s) for s in (".key", ".csr", ".pem"))
        self.sh("openssl", "req", "-new", *EC_P256, "-nodes", "-keyout", key, "-out", csr,
                "-subj", f"/CN={cn}")
        ext = self.write(prefix + ".ext", LEAF_EXT.format(cn=cn))
        self.sh("openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
                "-days", str(days), "-extfile", ext, "-out", crt)
        return key, crt

    def make_chain(self, tag="Chains"):
        rk, root = self.make_root("root", f"{tag} Root CA")
        ik, inter = self.make_int("int", f"{tag} Intermediate CA", rk, root)
        lk, leaf = self.make_leaf("leaf", "leaf.example.com", ik, inter)
        ok, out = self.verify(leaf, root, [inter])
        self.assertTrue(ok, out)
        return dict(root=root, root_key=rk, int=inter, int_key=ik, leaf=leaf, leaf_key=lk,
                    root_cn=f"{tag} Root CA", int_cn=f"{tag} Intermediate CA")

    def py_copy(self, template_pem, issuer_key_pem, out, not_before, not_after):
        """A copy of a certificate (same subject, key and extensions) with other dates,
        signed by issuer_key_pem: what `openssl x509 -req` 3.0 cannot do (-not_after)."""
        tmpl = self.load(template_pem)
        ikey = serialization.load_pem_private_key(self.rd(issuer_key_pem, "rb"), None)
        b = (x509.CertificateBuilder().subject_name(tmpl.subject).issuer_name(tmpl.issuer)
             .public_key(tmpl.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(not_before).not_valid_after(not_after))
        for e in tmpl.extensions:
            b = b.add_extension(e.value, e.critical)
        cert = b.sign(ikey, hashes.SHA256())
        return self.write(out, cert.public_bytes(serialization.Encoding.PEM), "wb")

    def assert_status_agrees_with_openssl(self, status, leaf, root, untrusted):
        """valid <=> openssl verify OK with the root as the only CAfile."""
        ok, out = self.verify(leaf, root, untrusted)
        self.assertEqual(status == "valid", ok,
                         f"tlsgate says {status!r}, openssl verify says: {out}")
        return out

    # ------------------------------------------------------------------- tests
    def test_1_status_follows_the_cas(self):
        """C2: missing intermediate -> no trust anchor -> valid as the CAs arrive; C1 types;
        the built chain; C2 recomputation when a CA is deleted."""
        c = self.make_chain()
        fp = {k: self.fingerprint(c[k]) for k in ("root", "int", "leaf")}
        name = "leaf.example.com"

        self.ok("cert", "import", c["leaf"], "--key", c["leaf_key"])
        j = self.show(name)
        self.assertEqual(j["type"], "identity")
        self.assertEqual(j["chain_status"], "missing intermediate")
        self.assertIn("missing intermediate", self.listed()[name]["warnings"])
        self.assertIn("missing intermediate", j["warnings"])
        self.assertEqual([e["sha256"].upper() for e in j["chain"]], [fp["leaf"]])
        self.assert_status_agrees_with_openssl(j["chain_status"], c["leaf"], c["root"], [])

        self.ok("ca", "import", c["int"])
        j = self.show(name)
        self.assertEqual(j["chain_status"], "no trust anchor")
        self.assertIn("no trust anchor", self.listed()[name]["warnings"])
        self.assertNotIn("missing intermediate", self.listed()[name]["warnings"])
        self.assertEqual([e["type"] for e in j["chain"]], ["identity", "intermediate"])
        # openssl: without the root nothing verifies, with it everything does
        other_key, other_root = self.make_root("other", "Unrelated Root CA")
        ok, out = self.verify(c["leaf"], other_root, [c["int"]])
        self.assertFalse(ok, out)

        self.ok("ca", "import", c["root"])
        j = self.show(name)
        self.assertEqual(j["chain_status"], "valid")
        self.assert_status_agrees_with_openssl("valid", c["leaf"], c["root"], [c["int"]])
        rows = self.listed()
        for w in ("missing intermediate", "no trust anchor"):
            self.assertNotIn(w, rows[name]["warnings"])
        self.assertEqual(rows[name]["warnings"], [])
        self.assertEqual(len(j["chain"]), 3)
        self.assertEqual([e["type"] for e in j["chain"]], ["identity", "intermediate", "root"])
        self.assertEqual([e["sha256"].upper() for e in j["chain"]],
                         [fp["leaf"], fp["int"], fp["root"]])
        self.assertEqual([e["subject"] for e in j["chain"]],
                         [j["subject"], self.show(c["int_cn"])["subject"],
                          self.show(c["root_cn"])["subject"]])
        # the table view lists the same chain
        text = self.ok("cert", "show", name).out
        self.assertIn("valid", text)
        chain_lines = [ln for ln in text.splitlines()
                       if re.match(r"\s+\d+\s+(identity|intermediate|root)\s", ln)]
        self.assertEqual(len(chain_lines), 3, text)
        for ln, t in zip(chain_lines, ("identity", "intermediate", "root")):
            self.assertIn(t, ln)
        self.assertIn(c["int_cn"], chain_lines[1])
        self.assertIn(c["root_cn"], chain_lines[2])

        # C1: the type in every view (the CA certificates are ca list's, not cert list's)
        self.assertEqual(set(rows), {name, "appliance default"})
        rows.update({r["name"]: r for r in self.ok("--json", "ca", "list").json()})
        for n, t in ((name, "identity"), (c["int_cn"], "intermediate"), (c["root_cn"], "root")):
            self.assertEqual(rows[n]["type"], t)
            self.assertEqual(self.show(n)["type"], t)
        for row in self.ok("--json", "ca", "list").json():
            self.assertEqual(row["type"], {c["int_cn"]: "intermediate",
                                           c["root_cn"]: "root"}[row["name"]])
        self.assertEqual(self.ok("--json", "ca", "show", c["root_cn"]).json()["type"], "root")
        self.assertEqual(self.ok("--json", "ca", "show", c["int_cn"]).json()["chain_status"],
                         "valid")
        self.assertEqual(self.ok("--json", "refresh").json()["changed"], 0)

        # C2: deleting the root recomputes the status at once; refresh agrees
        self.ok("ca", "delete", c["root_cn"])
        self.assertEqual(self.status(name), "no trust anchor")
        # (the intermediate itself now lacks its issuer: not valid either)
        self.assertNotEqual(self.ok("--json", "ca", "show", c["int_cn"]).json()["chain_status"],
                            "valid")
        r = self.ok("--json", "refresh").json()
        self.assertEqual(r, {"changed": 0}, "ca delete left a stale status behind")
        self.assertEqual(self.status(name), "no trust anchor")
        self.assertIn("no trust anchor", self.listed()[name]["warnings"])
        self.assertIn("0 certificate(s) changed", self.ok("refresh").out)
        # and back
        self.ok("ca", "import", c["root"])
        self.assertEqual(self.status(name), "valid")

    def test_2_refresh_reports_changes(self):
        """C2: `tlsgate refresh` recomputes what time has changed and says how many."""
        now = utcnow()
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Short Lived Root"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Chains Interop")])
        not_after = now + datetime.timedelta(seconds=4)
        ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        root = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                             False, False), critical=True)
                .add_extension(ski, critical=False)
                .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                            "short.example.com")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("short.example.com")]),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                    ski), critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        root_pem = self.write("short-root.pem", root.public_bytes(pem), "wb")
        leaf_pem = self.write("short-leaf.pem", leaf.public_bytes(pem), "wb")
        key_pem = self.write("short-leaf.key", key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), "wb")
        self.ok("ca", "import", root_pem)
        self.ok("cert", "import", leaf_pem, "--key", key_pem)
        status = self.status("short.example.com")
        changed = self.ok("--json", "refresh").json()["changed"]
        if utcnow() >= not_after:  # e.g. under a slow sanitizer build
            self.skipTest("the machine is too slow for a 4-second certificate")
        self.assertEqual(status, "valid")
        self.assertEqual(changed, 0)

        time.sleep(max(0.0, (not_after - utcnow()).total_seconds()) + 2.0)
        r = self.ok("--json", "refresh").json()
        self.assertEqual(r["changed"], 2, "the root and its leaf have expired: " + repr(r))
        self.assertEqual(self.status("short.example.com"), "expired")
        self.assertEqual(self.status("Short Lived Root"), "expired")
        self.assertIn("chain expired", self.listed()["short.example.com"]["warnings"])
        self.assert_status_agrees_with_openssl("expired", leaf_pem, root_pem, [])
        self.assertEqual(self.ok("--json", "refresh").json()["changed"], 0)

    def test_3_expired_and_not_yet_valid_intermediate(self):
        """C2: an expired (or not yet valid) intermediate makes the chain so; openssl agrees.
        A valid copy of the same intermediate next to it gives a valid path again."""
        c = self.make_chain("Dates")
        now = utcnow()
        expired = self.py_copy(c["int"], c["root_key"], "int-expired.pem",
                               now - datetime.timedelta(days=400),
                               now - datetime.timedelta(days=1))
        future = self.py_copy(c["int"], c["root_key"], "int-future.pem",
                              now + datetime.timedelta(days=2),
                              now + datetime.timedelta(days=400))
        self.assertEqual(self.cert_pubkey(expired), self.cert_pubkey(c["int"]))
        cases = (("expired", expired, "expired", "has expired"),
                 ("future", future, "not yet valid", "not yet valid"))
        for tag, inter, want, ossl_msg in cases:
            with self.subTest(intermediate=tag):
                home = self.path("home-" + tag)
                self.ok("ca", "import", c["root"], inter, home=home)
                self.ok("cert", "import", c["leaf"], "--key", c["leaf_key"], home=home)
                j = self.show("leaf.example.com", home=home)
                self.assertEqual(j["chain_status"], want)
                self.assertEqual([e["type"] for e in j["chain"]],
                                 ["identity", "intermediate", "root"])
                warnings = self.listed(home=home)["leaf.example.com"]["warnings"]
                self.assertIn("chain expired" if tag == "expired" else "not yet valid", warnings)
                ca = self.ok("--json", "ca", "show", c["int_cn"], home=home).json()
                self.assertEqual(ca["type"], "intermediate")
                self.assertEqual(ca["chain_status"], want)
                self.assertIn("expired" if tag == "expired" else "not yet valid", ca["warnings"])
                out = self.assert_status_agrees_with_openssl(want, c["leaf"], c["root"], [inter])
                self.assertIn(ossl_msg, out)
                # the good copy arrives: a valid path exists, and both tools find it
                self.ok("ca", "import", c["int"], home=home)
                self.assertEqual(self.status("leaf.example.com", home=home), "valid")
                self.assert_status_agrees_with_openssl("valid", c["leaf"], c["root"],
                                                       [inter, c["int"]])
        # the other order: the good copy first, then the bad one: still valid
        home = self.path("home-good-first")
        self.ok("ca", "import", c["root"], c["int"], home=home)
        self.ok("cert", "import", c["leaf"], "--key", c["leaf_key"], home=home)
        self.ok("ca", "import", expired, home=home)
        self.assertEqual(self.status("leaf.example.com", home=home), "valid")
        self.assert_status_agrees_with_openssl("valid", c["leaf"], c["root"],
                                               [c["int"], expired])

    def test_4_ca_import_rules(self):
        """C3: only CA certificates, and only names of letters, digits, '-', '_', ' '."""
        c = self.make_chain("Rules")
        self.ok("init")
        before = self.dump()
        r = self.fails(INVALID, "ca", "import", c["leaf"])
        self.assertIn("CA", r.err)
        self.fails(INVALID, "ca", "import", c["int"], c["leaf"])  # all or nothing
        for bad in ("Root.CA", "a.b", "ca", "root/ca", "root:ca", "Ünïcode"):
            with self.subTest(name=bad):
                self.fails(INVALID, "ca", "import", c["root"], "--name", bad)
        self.assertEqual(self.dump(), before)
        self.assertEqual(self.ca_names(), [])

        good = "My_Root-CA 2"
        self.ok("ca", "import", c["root"], "--name", good)
        self.assertEqual(self.ca_names(), [good])
        self.assertEqual(self.ok("--json", "ca", "show", good).json()["sha256"].upper(),
                         self.fingerprint(c["root"]))
        # a CA whose CN is a host name gets a name that obeys the rule
        rk, dotted = self.make_root("dotted", "ca.example.com")
        self.ok("ca", "import", dotted)
        names = self.ca_names()
        self.assertEqual(len(names), 2)
        for n in names:
            self.assertRegex(n, CA_NAME_RE)
            self.assertNotEqual(n.lower(), "ca")
        # ca export reads back with openssl
        out = self.path("exported-root.pem")
        self.ok("ca", "export", good, "--format", "pem", "--out", out)
        self.assertEqual(self.fingerprint(out), self.fingerprint(c["root"]))
        # ca show / delete of something that is not a CA
        self.ok("cert", "import", c["leaf"], "--key", c["leaf_key"])
        self.fails(NOTFOUND, "ca", "show", "leaf.example.com")
        before = self.dump()
        self.fails(NOTFOUND, "ca", "delete", "leaf.example.com")
        self.fails(NOTFOUND, "ca", "delete", "no such CA")
        self.assertEqual(self.dump(), before)

    def test_5_trust_stores(self):
        """C4: create (description, default package), add/remove, list, show, delete; limits;
        a CA in a trust store cannot be deleted."""
        c = self.make_chain("Trust")
        self.ok("ca", "import", c["root"], c["int"])
        bundle = self.rd("/etc/ssl/certs/ca-certificates.crt")
        n_system = bundle.count("-----BEGIN CERTIFICATE-----")

        doc = self.ok("--json", "truststore", "create", "web-clients", "--description",
                      "Public roots plus our own", "--include-defaults").json()
        self.assertEqual(doc["name"], "web-clients")
        show = self.ok("--json", "truststore", "show", "web-clients").json()
        self.assertEqual(show["description"], "Public roots plus our own")
        self.assertTrue(show["include_defaults"])
        self.assertGreater(show["default_ca_count"], 100)
        self.assertLessEqual(show["default_ca_count"], n_system)
        self.assertEqual(show["ca_count"], 0)

        show = self.ok("--json", "truststore", "add", "web-clients", c["root_cn"],
                       c["int_cn"]).json()
        self.assertEqual(show["ca_count"], 2)
        entries = [e["name"] for e in show["entries"]]
        self.assertIn(c["root_cn"], entries)
        self.assertIn(c["int_cn"], entries)
        # the default package is counted, not a placeholder entry among the CA certificates
        self.assertEqual(len(entries), 2, entries)
        table = self.ok("truststore", "show", "web-clients").out
        self.assertIn(f"Default CA package ({show['default_ca_count']} certificates)", table)

        self.ok("truststore", "create", "internal")
        self.ok("truststore", "add", "internal", c["root_cn"])
        rows = {t["name"]: t for t in self.ok("--json", "truststore", "list").json()}
        self.assertEqual(set(rows), {"web-clients", "internal"})
        self.assertEqual(rows["internal"]["ca_count"], 1)
        self.assertEqual(rows["internal"]["default_ca_count"], 0)
        self.assertFalse(rows["internal"]["include_defaults"])
        self.assertEqual(rows["web-clients"]["ca_count"], 2)
        text = self.ok("truststore", "list").out
        self.assertIn("web-clients", text)
        self.assertIn("internal", text)

        # a CA in a trust store is not deleted; the message names the trust store
        before = self.dump()
        r = self.fails(CONFLICT, "ca", "delete", c["int_cn"])
        self.assertIn("web-clients", r.err)
        r = self.fails(CONFLICT, "ca", "delete", c["root_cn"])
        self.assertTrue("web-clients" in r.err or "internal" in r.err, r.err)
        self.assertEqual(self.dump(), before)
        # unknown CA names: 4, and nothing added (not even the good one before it)
        self.fails(NOTFOUND, "truststore", "add", "internal", "No Such CA")
        self.fails(NOTFOUND, "truststore", "add", "internal", c["int_cn"], "No Such CA")
        self.fails(NOTFOUND, "truststore", "add", "internal", "leaf-not-a-ca")
        self.fails(NOTFOUND, "truststore", "add", "no-such-store", c["int_cn"])
        self.fails(NOTFOUND, "truststore", "show", "no-such-store")
        self.assertEqual(self.dump(), before)

        show = self.ok("--json", "truststore", "remove", "web-clients", c["int_cn"]).json()
        self.assertEqual(show["ca_count"], 1)
        self.assertNotIn(c["int_cn"], [e["name"] for e in show["entries"]])
        self.ok("ca", "delete", c["int_cn"])
        self.assertNotIn(c["int_cn"], self.ca_names())

        # limits: name <= 64 characters, description <= 512
        before = self.dump()
        self.fails(INVALID, "truststore", "create", "n" * 65)
        self.fails(INVALID, "truststore", "create", "d513", "--description", "d" * 513)
        self.fails(INVALID, "truststore", "create", "bad.name")
        self.fails(CONFLICT, "truststore", "create", "internal")
        self.assertEqual(self.dump(), before)
        self.ok("truststore", "create", "n" * 64, "--description", "d" * 512)
        show = self.ok("--json", "truststore", "show", "n" * 64).json()
        self.assertEqual(show["description"], "d" * 512)

        self.ok("truststore", "delete", "web-clients")
        self.fails(NOTFOUND, "truststore", "show", "web-clients")
        self.assertEqual({t["name"] for t in self.ok("--json", "truststore", "list").json()},
                         {"internal", "n" * 64})
        self.fails(NOTFOUND, "truststore", "delete", "web-clients")

    def test_6_root_reissue(self):
        """K10: a root reissued with the same key and subject and a later expiry; what the old
        copy signed verifies under the new one; both are listed; successor/predecessor."""
        rk, root = self.make_root("root", "K10 Root CA", days=365)
        ik, inter = self.make_int("int", "K10 Intermediate CA", rk, root)
        lk, leaf = self.make_leaf("leaf", "k10.example.com", ik, inter)
        self.ok("cert", "import", root, "--key", rk)
        old = self.ok("--json", "ca", "show", "K10 Root CA").json()
        self.assertTrue(old["private_key"])
        self.assertEqual(old["type"], "root")
        self.ok("ca", "import", inter)
        self.ok("cert", "import", leaf, "--key", lk)

        doc = self.ok("--json", "ca", "reissue", "K10 Root CA", "--days", "3650").json()
        new_name = doc["name"]
        self.assertNotEqual(new_name, "K10 Root CA")
        self.assertRegex(new_name, CA_NAME_RE)
        new = self.ok("--json", "ca", "show", new_name).json()
        old = self.ok("--json", "ca", "show", "K10 Root CA").json()
        self.assertEqual(new["predecessor"], "K10 Root CA")
        self.assertEqual(old["successor"], new_name)
        self.assertTrue(new["private_key"])
        self.assertEqual(new["type"], "root")
        self.assertNotEqual(new["sha256"], old["sha256"])
        self.assertIn("K10 Root CA", self.ca_names())
        self.assertIn(new_name, self.ca_names())

        new_pem, new_der = self.path("new-root.pem"), self.path("new-root.der")
        self.ok("ca", "export", new_name, "--format", "pem", "--out", new_pem)
        self.ok("ca", "export", new_name, "--format", "der", "--out", new_der)
        self.assertEqual(self.fingerprint(new_pem), new["sha256"].upper())
        self.assertEqual(self.subject(new_pem), self.subject(root))
        self.assertEqual(self.cert_pubkey(new_pem), self.cert_pubkey(root))
        n, o = self.load(new_pem), self.load(root)
        self.assertEqual(n.subject, o.subject)
        self.assertEqual(n.issuer, n.subject)
        self.assertGreater(n.not_valid_after, o.not_valid_after)
        self.assertGreater(n.not_valid_after, utcnow() + datetime.timedelta(days=3640))
        self.assertNotEqual(n.serial_number, o.serial_number)
        self.assertTrue(n.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        ku = n.extensions.get_extension_for_class(x509.KeyUsage).value
        self.assertTrue(ku.key_cert_sign)
        self.assertEqual(
            n.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value,
            o.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value)
        self.assertEqual(x509.load_der_x509_certificate(self.rd(new_der, "rb")), n)
        # the new copy alone verifies what the old one signed, and itself
        r = self.sh("openssl", "verify", "-CAfile", new_pem, "-untrusted", inter, leaf,
                    check=False)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, f"{leaf}: OK"), r.stderr)
        r = self.sh("openssl", "verify", "-CAfile", new_pem, inter, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.sh("openssl", "verify", "-CAfile", new_pem, new_pem, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # and so does the old one still
        r = self.sh("openssl", "verify", "-CAfile", root, "-untrusted", inter, leaf,
                    check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # the leaf stays valid under either copy
        self.assertEqual(self.status("k10.example.com"), "valid")
        self.ok("ca", "delete", "K10 Root CA")
        self.assertEqual(self.status("k10.example.com"), "valid")
        self.assertEqual(self.show("k10.example.com")["chain"][2]["sha256"], new["sha256"])

        # an explicit name; refusals
        doc = self.ok("--json", "ca", "reissue", new_name, "--days", "7300",
                      "--name", "K10 Root 2045").json()
        self.assertEqual(doc["name"], "K10 Root 2045")
        before = self.dump()
        r = self.fails(CONFLICT, "ca", "reissue", "K10 Intermediate CA", "--days", "3650")
        self.assertIn("key", r.err)
        self.fails(NOTFOUND, "ca", "reissue", "No Such Root", "--days", "3650")
        self.fails(NOTFOUND, "ca", "reissue", "k10.example.com", "--days", "3650")
        self.fails(INVALID, "ca", "reissue", "K10 Root 2045", "--days", "0")
        self.fails(INVALID, "ca", "reissue", "K10 Root 2045", "--days", "3650", "--name", "a.b")
        self.fails(CONFLICT, "ca", "reissue", "K10 Root 2045", "--days", "3650",
                   "--name", new_name)
        self.assertEqual(self.dump(), before)

    def test_7_reissue_without_key(self):
        """K10: a root CA imported without its key cannot be reissued (5)."""
        rk, root = self.make_root("root", "Keyless Root CA")
        self.ok("ca", "import", root)
        self.assertFalse(self.ok("--json", "ca", "show", "Keyless Root CA").json()["private_key"])
        before = self.dump()
        r = self.fails(CONFLICT, "ca", "reissue", "Keyless Root CA", "--days", "3650")
        self.assertIn("Keyless Root CA", r.err)
        self.assertEqual(self.dump(), before)
        self.assertEqual(self.ca_names(), ["Keyless Root CA"])


if __name__ == "__main__":
    tglib.main()
