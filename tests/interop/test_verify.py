"""tlsgate verify (SPEC C5): path building, name checks and the verdict, case by case.

Every certificate is made here with the openssl CLI (root -> intermediate -> leaf and
variants). Each case asserts tlsgate's verdict and exit status, and that `openssl verify
-x509_strict -partial_chain …` agrees wherever OpenSSL can express the check; the cases where
tlsgate is deliberately stricter (the Web PKI's rules) say so and assert the difference.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
from tglib import INVALID, NOTFOUND, USAGE  # noqa: E402

DAY = 86400

CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca_dn]
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ica]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ica_notca]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ica_nc_dot]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical,permitted;DNS:.allowed.test
[ica_nc]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical,permitted;DNS:allowed.test
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:www.example.com,DNS:*.example.com,IP:192.0.2.10
[leaf_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:www.example.com
[leaf_noeku]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:www.example.com
[leaf_nosan]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_allowed]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:www.allowed.test
[leaf_other]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:other.test
[ca]
default_ca = ca_default
[ca_default]
database = index.txt
new_certs_dir = .
serial = serial.txt
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
[policy_any]
commonName = supplied
"""


def openssl(cwd, *args):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {p.stderr}")
    return p


class Material:
    """A small PKI made with the openssl CLI in a temporary directory."""

    def __init__(self, d):
        self.d = d
        with open(self.p("x.cnf"), "w") as f:
            f.write(CNF)
        open(self.p("index.txt"), "w").close()
        with open(self.p("serial.txt"), "w") as f:
            f.write("7A01\n")
        self.now = int(time.time())
        self.root("root", "Test Root")
        self.root("decoy_root", "Decoy Root")
        self.issue("ica", "Test Intermediate", "root", "ica", days=3650)
        self.issue("decoy_ica", "Test Intermediate", "decoy_root", "ica", days=3650)
        self.issue("other_ica", "Other Intermediate", "decoy_root", "ica", days=3650)
        self.issue("ica_notca", "Not A CA", "root", "ica_notca", days=3650)
        self.issue("ica_nc_dot", "Constrained Dot", "root", "ica_nc_dot", days=3650)
        self.issue("ica_nc", "Constrained", "root", "ica_nc", days=3650)
        self.issue("leaf", "www.example.com", "ica", "leaf", days=30)
        self.issue("leaf_client", "www.example.com", "ica", "leaf_client", days=30)
        self.issue("leaf_noeku", "www.example.com", "ica", "leaf_noeku", days=30)
        self.issue("leaf_nosan", "www.example.com", "ica", "leaf_nosan", days=30)
        self.issue("leaf_notca", "www.example.com", "ica_notca", "leaf", days=30)
        self.issue("leaf_dot_other", "other.test", "ica_nc_dot", "leaf_other", days=30)
        self.issue("leaf_dot_allowed", "www.allowed.test", "ica_nc_dot", "leaf_allowed", days=30)
        self.issue("leaf_nc_other", "other.test", "ica_nc", "leaf_other", days=30)
        self.issue("leaf_nc_allowed", "www.allowed.test", "ica_nc", "leaf_allowed", days=30)
        self.issue("leaf_rsa1024", "www.example.com", "ica", "leaf", days=30, key="rsa1024")
        self.issue("leaf_sha1", "www.example.com", "ica", "leaf", days=30, md="sha1")
        # not yet valid: openssl ca can set the start date (x509 -req cannot in 3.0)
        self.key("leaf_future")
        openssl(d, "req", "-new", "-key", "leaf_future.key", "-subj", "/CN=www.example.com",
                "-config", "x.cnf", "-out", "leaf_future.csr")
        openssl(d, "ca", "-batch", "-config", "x.cnf", "-cert", "ica.pem", "-keyfile", "ica.key",
                "-in", "leaf_future.csr", "-out", "leaf_future.pem", "-notext",
                "-startdate", time.strftime("%Y%m%d%H%M%SZ", time.gmtime(self.now + 10 * DAY)),
                "-enddate", time.strftime("%Y%m%d%H%M%SZ", time.gmtime(self.now + 40 * DAY)),
                "-extfile", "x.cnf", "-extensions", "leaf")
        self.cat("chain.pem", "ica")
        # decoys in any order: unrelated roots and intermediates, one with the real ICA's name
        self.cat("decoys.pem", "decoy_ica", "other_ica", "decoy_root", "ica", "leaf_client")
        self.cat("roots.pem", "decoy_root", "root")

    def p(self, name):
        return os.path.join(self.d, name)

    def key(self, name, kind="ec"):
        if kind == "rsa1024":
            openssl(self.d, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
                    "-out", name + ".key")
        else:
            openssl(self.d, "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", name + ".key")

    def root(self, name, cn):
        self.key(name)
        openssl(self.d, "req", "-x509", "-new", "-key", name + ".key", "-subj", "/CN=" + cn,
                "-days", "3650", "-config", "x.cnf", "-extensions", "root", "-out", name + ".pem")

    def issue(self, name, cn, ca, ext, days, key="ec", md="sha256"):
        self.key(name, key)
        openssl(self.d, "req", "-new", "-key", name + ".key", "-subj", "/CN=" + cn, "-config",
                "x.cnf", "-out", name + ".csr")
        openssl(self.d, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
                ca + ".key", "-CAcreateserial", "-days", str(days), "-" + md, "-extfile",
                "x.cnf", "-extensions", ext, "-out", name + ".pem")

    def cat(self, out, *names):
        with open(self.p(out), "w") as f:
            for n in names:
                with open(self.p(n + ".pem")) as g:
                    f.write(g.read())


# name, leaf, --chain, --ca-file, host, at (offset from now in days), purpose, expected valid,
# how openssl compares: "same" (asserted equal) or "stricter" (tlsgate refuses what
# `openssl verify` accepts, on purpose; the comment says which Web PKI rule).
CASES = [
    ("valid", "leaf", "chain", "root", "www.example.com", None, "server", True, "same"),
    ("valid without host", "leaf", "chain", "root", None, None, "server", True, "same"),
    ("host case-insensitive", "leaf", "chain", "root", "WWW.Example.COM", None, "server", True,
     "same"),
    ("wrong host", "leaf", "chain", "root", "mail.example.org", None, "server", False, "same"),
    ("wildcard one label", "leaf", "chain", "root", "a.example.com", None, "server", True, "same"),
    ("wildcard too deep", "leaf", "chain", "root", "a.b.example.com", None, "server", False,
     "same"),
    ("wildcard not the apex", "leaf", "chain", "root", "example.com", None, "server", False,
     "same"),
    ("expired leaf", "leaf", "chain", "root", "www.example.com", 60, "server", False, "same"),
    ("valid at a time", "leaf", "chain", "root", "www.example.com", 20, "server", True, "same"),
    ("not yet valid", "leaf_future", "chain", "root", "www.example.com", None, "server", False,
     "same"),
    ("intermediate CA:FALSE", "leaf_notca", "ica_notca", "root", "www.example.com", None,
     "server", False, "same"),
    ("leaf clientAuth only", "leaf_client", "chain", "root", "www.example.com", None, "server",
     False, "same"),
    ("client purpose", "leaf_client", "chain", "root", "www.example.com", None, "client", True,
     "same"),
    ("server leaf as client", "leaf", "chain", "root", "www.example.com", None, "client", False,
     "same"),
    # Stricter: CA/B BR 7.1.2.7.10 — a TLS server certificate must list serverAuth; RFC 5280
    # (and openssl) treat a missing extendedKeyUsage as "any purpose".
    ("leaf without EKU", "leaf_noeku", "chain", "root", "www.example.com", None, "server", False,
     "stricter"),
    # Stricter: no fallback to the common name (RFC 6125 6.4.4, CA/B BR); openssl's
    # -verify_hostname falls back to the CN when the certificate has no DNS SAN.
    ("no SAN, name only in CN", "leaf_nosan", "chain", "root", "www.example.com", None, "server",
     False, "stricter"),
    ("NC leading period, other host", "leaf_dot_other", "ica_nc_dot", "root", "other.test", None,
     "server", False, "same"),
    # Stricter: a DNS name constraint is a host name; ".allowed.test" (leading period) is
    # malformed under RFC 5280 4.2.1.10, so tlsgate refuses the constrained CA; openssl reads
    # it as "subdomains of allowed.test".
    ("NC leading period, inside", "leaf_dot_allowed", "ica_nc_dot", "root", "www.allowed.test",
     None, "server", False, "stricter"),
    ("NC permitted, outside", "leaf_nc_other", "ica_nc", "root", "other.test", None, "server",
     False, "same"),
    ("NC permitted, inside", "leaf_nc_allowed", "ica_nc", "root", "www.allowed.test", None,
     "server", True, "same"),
    ("IP SAN match", "leaf", "chain", "root", "192.0.2.10", None, "server", True, "same"),
    ("IP SAN mismatch", "leaf", "chain", "root", "192.0.2.11", None, "server", False, "same"),
    ("IP not matched by DNS SANs", "leaf_nc_allowed", "ica_nc", "root", "192.0.2.10", None,
     "server", False, "same"),
    ("decoys in --chain", "leaf", "decoys", "roots", "www.example.com", None, "server", True,
     "same"),
    ("no path: only decoys", "leaf", "decoy_ica", "roots", "www.example.com", None, "server",
     False, "same"),
    ("intermediate as trust anchor", "leaf", None, "ica", "www.example.com", None, "server", True,
     "same"),
    ("untrusted root", "leaf", "chain", "decoy_root", "www.example.com", None, "server", False,
     "same"),
    # Stricter: CA/B BR 6.1.5 wants RSA keys of 2048 bits or more; openssl verify's default
    # security level (1) accepts 1024.
    ("RSA 1024 leaf", "leaf_rsa1024", "chain", "root", "www.example.com", None, "server", False,
     "stricter"),
    # Stricter: SHA-1 signatures are refused (CA/B BR 7.1.3.2); openssl verify's default
    # security level (1) still accepts them on certificates.
    ("SHA-1 signature", "leaf_sha1", "chain", "root", "www.example.com", None, "server", False,
     "stricter"),
]


class Verify(tglib.TgCase):
    @classmethod
    def setUpClass(cls):
        cls.matdir = tempfile.mkdtemp(prefix="tg-verify-mat-")
        cls.m = Material(cls.matdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.matdir, ignore_errors=True)

    def openssl_ok(self, leaf, chain, ca, host, at, purpose):
        m = self.m
        cmd = ["openssl", "verify", "-x509_strict", "-partial_chain", "-no-CApath", "-no-CAstore",
               "-CAfile", m.p(ca + ".pem"), "-purpose",
               "sslserver" if purpose == "server" else "sslclient"]
        if chain:
            cmd += ["-untrusted", m.p(chain + ".pem")]
        if host:
            cmd += ["-verify_ip" if host[0].isdigit() else "-verify_hostname", host]
        if at is not None:
            cmd += ["-attime", str(m.now + at * DAY)]
        p = subprocess.run(cmd + [m.p(leaf + ".pem")], capture_output=True, text=True)
        return p.returncode == 0 and p.stdout.rstrip().endswith(": OK")

    def tg_verify(self, leaf, chain, ca, host, at, purpose, *extra):
        m = self.m
        args = ["verify", m.p(leaf + ".pem"), "--ca-file", m.p(ca + ".pem"), "--purpose", purpose]
        if chain:
            args += ["--chain", m.p(chain + ".pem")]
        if host:
            args += ["--host", host]
        if at is not None:
            args += ["--at", str(m.now + at * DAY)]
        return self.tg(*args, *extra)

    def test_cases(self):
        for name, leaf, chain, ca, host, at, purpose, want, how in CASES:
            with self.subTest(name):
                r = self.tg_verify(leaf, chain, ca, host, at, purpose)
                self.assertEqual(r.rc, 0 if want else 1, f"{name}: {r}")
                self.assertEqual(r.err, "", f"{name}: a verdict writes nothing to stderr: {r}")
                last = r.out.strip().splitlines()[-1]
                self.assertTrue(last.startswith("Verdict: " + ("valid: " if want else "invalid: ")),
                                f"{name}: {r.out}")
                ossl = self.openssl_ok(leaf, chain, ca, host, at, purpose)
                if how == "same":
                    self.assertEqual(ossl, want, f"{name}: openssl verify disagrees")
                else:
                    self.assertTrue(ossl and not want, f"{name}: expected openssl to accept")

    def test_json_and_chain(self):
        r = self.tg_verify("leaf", "decoys", "roots", "www.example.com", None, "server", "--json")
        self.assertEqual(r.rc, 0, r)
        doc = r.json()
        self.assertEqual(list(doc), ["verdict", "reason", "chain"])
        self.assertEqual(doc["verdict"], "valid")
        self.assertIn("www.example.com", doc["reason"])
        subjects = [c["subject"] for c in doc["chain"]]
        self.assertEqual(subjects, ["CN=www.example.com", "CN=Test Intermediate", "CN=Test Root"])
        self.assertEqual([c["issuer"] for c in doc["chain"]],
                         ["CN=Test Intermediate", "CN=Test Root", "CN=Test Root"])
        self.assertTrue(doc["chain"][-1]["trust_anchor"])
        # the expiry printed is the certificate's notAfter as openssl reads it
        end = self.sh("openssl", "x509", "-in", self.m.p("leaf.pem"), "-noout", "-enddate",
                      "-dateopt", "iso_8601").stdout.strip().split("=", 1)[1]
        self.assertEqual(doc["chain"][0]["not_after"], end.replace(" ", "T"))
        # the human form: one line per certificate, then the verdict
        r = self.tg_verify("leaf", "chain", "root", "www.example.com", None, "server")
        lines = r.out.strip().splitlines()
        self.assertEqual(len(lines), 5, r.out)
        self.assertIn("subject: CN=www.example.com | issuer: CN=Test Intermediate", lines[1])
        self.assertTrue(lines[3].endswith("(trust anchor)"), lines[3])

    def test_invalid_json(self):
        r = self.tg_verify("leaf", "chain", "root", "a.b.example.com", None, "server", "--json")
        self.assertEqual(r.rc, 1, r)
        doc = r.json()
        self.assertEqual(doc["verdict"], "invalid")
        self.assertIn("a.b.example.com", doc["reason"])
        self.assertEqual(len(doc["chain"]), 3)

    def test_leaf_file_with_chain(self):
        # a server's full chain in the LEAF file: the first certificate is verified
        self.m.cat("full.pem", "leaf", "ica")
        full = self.m.p("full.pem")
        r = self.tg("verify", full, "--ca-file", self.m.p("root.pem"), "--host", "www.example.com")
        self.assertEqual(r.rc, 0, r)

    def test_no_store_touched(self):
        self.tg_verify("leaf", "chain", "root", "www.example.com", None, "server")
        self.assertFalse(os.path.exists(self.home), "verify must not create a store")

    def test_at_rfc3339(self):
        """--at takes an RFC 3339 date as well as Unix seconds: the leaf's notAfter as
        openssl prints it, then one second later, in UTC and with an offset."""
        import datetime
        end = self.sh("openssl", "x509", "-in", self.m.p("leaf.pem"), "-noout", "-enddate",
                      "-dateopt", "iso_8601").stdout.strip().split("=", 1)[1]
        t = datetime.datetime.strptime(end, "%Y-%m-%d %H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        plus1 = datetime.timezone(datetime.timedelta(hours=1))
        for at, valid in ((t.strftime("%Y-%m-%dT%H:%M:%SZ"), True),
                          (t.astimezone(plus1).isoformat(), True),
                          (str(int(t.timestamp())), True),
                          ((t + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           False),
                          ((t + datetime.timedelta(seconds=1)).astimezone(plus1).isoformat(),
                           False),
                          (str(int(t.timestamp()) + 1), False)):
            with self.subTest(at):
                r = self.tg("verify", self.m.p("leaf.pem"), "--chain", self.m.p("chain.pem"),
                            "--ca-file", self.m.p("root.pem"), "--at", at)
                self.assertEqual(r.rc, 0 if valid else 1, r)

    def test_usage_and_input_errors(self):
        m = self.m
        # one source of trust: a trust store or CA files, not both (the keyring's rule)
        r = self.fails(USAGE, "verify", m.p("leaf.pem"), "--ca-file", m.p("root.pem"),
                       "--truststore", "any")
        self.assertIn("not both", r.err)
        self.assertFalse(os.path.exists(self.home), "a refused verify must not create a store")
        self.fails(USAGE, "verify", m.p("leaf.pem"), "--ca-file", m.p("root.pem"), "--host", "")
        self.fails(USAGE, "verify", m.p("leaf.pem"), "--ca-file", m.p("root.pem"), "--at",
                   "2026-02-29T00:00:00Z")
        self.fails(USAGE, "verify", m.p("leaf.pem"))
        self.fails(USAGE, "verify", "--ca-file", m.p("root.pem"))
        self.fails(USAGE, "verify", m.p("leaf.pem"), "--ca-file", m.p("root.pem"), "--purpose",
                   "email")
        self.fails(USAGE, "verify", m.p("leaf.pem"), "--ca-file", m.p("root.pem"), "--at",
                   "yesterday")
        self.fails(USAGE, "verify", m.p("leaf.pem"), m.p("ica.pem"), "--ca-file",
                   m.p("root.pem"))
        self.fails(USAGE, "verify", m.p("leaf.pem"), "--ca-file", m.p("root.pem"), "--bogus")
        self.fails(NOTFOUND, "verify", self.path("missing.pem"), "--ca-file", m.p("root.pem"))
        self.fails(NOTFOUND, "verify", m.p("leaf.pem"), "--ca-file", self.path("missing.pem"))
        junk = self.write("junk.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                      "-----END CERTIFICATE-----\n")
        self.fails(INVALID, "verify", junk, "--ca-file", m.p("root.pem"))
        self.fails(INVALID, "verify", m.p("leaf.pem"), "--ca-file", m.p("leaf.csr"))
        empty = self.write("empty.pem", "no certificates here\n")
        self.fails(INVALID, "verify", m.p("leaf.pem"), "--ca-file", empty)


if __name__ == "__main__":
    tglib.main()
