"""Bad input: every malformed or forbidden input gets its documented exit status, a clear
message on standard error, and leaves the store exactly as it was (README, "Exit statuses":
"A failing command changes nothing").

Test material is made with the openssl CLI (and os.urandom), never by tlsgate itself.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
from tglib import BIN, CONFLICT, INVALID, IO, NOTFOUND, PASSWORD, USAGE  # noqa: E402

PW = "correct horse battery"
WRONG_PW = "not the password"

# A minimal openssl config so that `openssl req -x509` makes end-entity certificates.
OPENSSL_CNF = """\
[req]
distinguished_name = dn
x509_extensions = ee
prompt = no
[dn]
CN = placeholder
[ee]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
"""

# Messages must be sentences for a person, not library error dumps.
JUNK = re.compile(r"error:[0-9A-Fa-f]{8}|Traceback|\(null\)|Segmentation|Assertion", re.I)


def openssl(cwd, *args, stdin=None):
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, input=stdin)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
    return proc


class BadInput(tglib.TgCase):
    """Each test: a store with a few objects, one bad command (plain and with --json),
    the documented status and message, and the same store dump afterwards."""

    @classmethod
    def setUpClass(cls):
        cls.mat = tempfile.mkdtemp(prefix="tg-bad-mat-")
        d = cls.mat
        m = lambda n: os.path.join(d, n)  # noqa: E731
        with open(m("openssl.cnf"), "w") as f:
            f.write(OPENSSL_CNF)
        with open(m("pw"), "w") as f:
            f.write(PW + "\n")
        with open(m("wrongpw"), "w") as f:
            f.write(WRONG_PW + "\n")
        with open(m("shortpw"), "w") as f:
            f.write("short\n")

        def selfsigned(stem, cn, newkey):
            openssl(d, "req", "-x509", "-config", "openssl.cnf", "-newkey", newkey, "-nodes",
                    "-keyout", f"{stem}.key", "-out", f"{stem}.crt", "-subj", f"/CN={cn}",
                    "-days", "30")

        # RSA-1024: certificate + key, separately, concatenated and as PKCS#12.
        selfsigned("rsa1024", "weak.example.com", "rsa:1024")
        with open(m("rsa1024-both.pem"), "w") as f:
            f.write(open(m("rsa1024.crt")).read() + open(m("rsa1024.key")).read())
        openssl(d, "pkcs12", "-export", "-in", "rsa1024.crt", "-inkey", "rsa1024.key",
                "-passout", "file:pw", "-out", "rsa1024.p12")
        # Two unrelated EC certificates with their keys.
        for stem, cn in (("a", "a.example.net"), ("b", "b.example.net")):
            openssl(d, "req", "-x509", "-config", "openssl.cnf", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{stem}.key",
                    "-out", f"{stem}.crt", "-subj", f"/CN={cn}", "-days", "30")
        # a's key encrypted: PKCS#8 PEM and DER (PBES2/AES-256), and a PKCS#12 of a.
        openssl(d, "pkcs8", "-topk8", "-in", "a.key", "-v2", "aes-256-cbc", "-passout",
                "file:pw", "-out", "a-enc.p8.pem")
        openssl(d, "pkcs8", "-topk8", "-in", "a.key", "-v2", "aes-256-cbc", "-passout",
                "file:pw", "-outform", "DER", "-out", "a-enc.p8.der")
        openssl(d, "pkcs12", "-export", "-in", "a.crt", "-inkey", "a.key", "-passout",
                "file:pw", "-out", "a.p12")
        openssl(d, "pkcs12", "-export", "-nomac", "-in", "a.crt", "-inkey", "a.key",
                "-passout", "file:pw", "-out", "a-nomac.p12")
        # A CSR.
        openssl(d, "req", "-new", "-config", "openssl.cnf", "-key", "b.key",
                "-subj", "/CN=csr.example.net", "-out", "b.csr")
        # Broken files.
        openssl(d, "x509", "-in", "a.crt", "-outform", "DER", "-out", "a.der")
        der = open(m("a.der"), "rb").read()
        with open(m("trunc.der"), "wb") as f:
            f.write(der[: len(der) // 2])
        pem_lines = open(m("a.crt")).read().splitlines()
        with open(m("trunc.pem"), "w") as f:  # BEGIN line and part of the base64, no END
            f.write("\n".join(pem_lines[: len(pem_lines) // 2]) + "\n")
        garbage = list(pem_lines)
        mid = len(garbage) // 2
        garbage[mid] = garbage[mid][:10] + "!!@@##$$%%^^" + garbage[mid][22:]
        with open(m("garbage.pem"), "w") as f:
            f.write("\n".join(garbage) + "\n")
        open(m("empty.pem"), "wb").close()
        with open(m("random.bin"), "wb") as f:
            f.write(os.urandom(5 * 1024 * 1024))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.mat, ignore_errors=True)

    def m(self, name):
        return os.path.join(self.mat, name)

    def setUp(self):
        super().setUp()
        self.ok("init")
        self.ok("cert", "create", "web", "--cn", "www.example.com", "--san", "DNS:example.com",
                "--key", "ec:p256", "--days", "90")
        self.ok("cert", "create", "locked", "--cn", "locked.example.com", "--key", "ec:p256",
                "--no-export")
        self.ok("request", "create", "shop", "--cn", "shop.example.com", "--country", "DE",
                "--key", "ec:p256")
        self.ok("cert", "import", self.m("b.crt"), "--name", "imported b")

    # -- the core check -----------------------------------------------------------------

    def bad(self, status, *args, msg=None, env=None, out=None, run=None):
        """Run args plainly and with a leading --json: the same status, a clear message
        (matching regex msg, case-insensitive), no output file, and the store unchanged."""
        before = self.dump()
        results = []
        for variant in (list(args), ["--json", *args]):
            with self.subTest(cmd=" ".join(variant)):
                if out and os.path.exists(out):
                    os.unlink(out)
                r = run(*variant) if run else self.tg(*variant, env=env)
                results.append(r)
                self.assertEqual(r.rc, status, f"tlsgate {' '.join(variant)}: wanted exit "
                                                f"{status}: {r}")
                self.assertTrue(r.err.startswith("tlsgate: ") and len(r.err.strip()) > 20,
                                f"no clear message: {r.err!r}")
                self.assertIsNone(JUNK.search(r.err), f"library junk in the message: {r.err!r}")
                if msg:
                    self.assertRegex(r.err.lower(), msg, f"message does not say why: {r.err!r}")
                self.assertEqual(self.dump(), before,
                                 f"tlsgate {' '.join(variant)} failed but changed the store")
                if out:
                    self.assertFalse(os.path.exists(out),
                                     f"failed export left an output file {out}")
        return results

    def run_notty(self, *args):
        """Like self.tg, but in a new session: no controlling terminal to prompt on."""
        e = dict(os.environ)
        e.pop("TLSGATE_PASSWORD", None)
        e["TLSGATE_HOME"] = self.home
        proc = subprocess.run([BIN, *args], capture_output=True, text=True, env=e,
                              stdin=subprocess.DEVNULL, start_new_session=True, timeout=60)
        return tglib.Result(proc)

    # -- subject fields -------------------------------------------------------------------

    def test_country_not_iso3166(self):
        for c in ("XX", "USA", "D", "ZZ", "1A", "U$"):
            self.bad(INVALID, "cert", "create", "n1", "--cn", "n1.example.com", "--country", c,
                     "--key", "ec:p256", msg=r"country|iso 3166")
        self.bad(INVALID, "request", "create", "r1", "--cn", "r1.example.com", "--country",
                 "XX", "--key", "ec:p256", msg=r"country|iso 3166")

    def test_empty_cn(self):
        self.bad(INVALID, "cert", "create", "n1", "--cn", "", "--key", "ec:p256",
                 msg=r"common name|--cn|\bcn\b")
        self.bad(INVALID, "request", "create", "r1", "--cn", "", "--key", "ec:p256",
                 msg=r"common name|--cn|\bcn\b")

    def test_missing_cn(self):
        # A missing required option is a usage error (README, "Exit statuses"; the keyring's
        # rule, so the API says the same): refused with a message naming --cn, nothing stored.
        for cmd in (("cert", "create", "n1", "--key", "ec:p256"),
                    ("request", "create", "r1", "--key", "ec:p256")):
            before = self.dump()
            for variant in (cmd, ("--json", *cmd)):
                r = self.tg(*variant)
                self.assertIn(r.rc, (USAGE, INVALID), r)
                self.assertEqual(r.rc, USAGE, r)
                self.assertTrue(r.err.startswith("tlsgate: "), r)
                self.assertRegex(r.err.lower(), r"--cn|common name", r)
                self.assertEqual(self.dump(), before)

    def test_days_out_of_range(self):
        # README, Rules: "Validity: 1-36500 days" - a value that breaks a rule is status 3.
        for days in ("0", "99999", "36501"):
            self.bad(INVALID, "cert", "create", "n1", "--cn", "n1.example.com", "--key",
                     "ec:p256", "--days", days, msg=r"days")

    # -- SANs -------------------------------------------------------------------------------

    def test_wildcard_not_whole_leftmost_label(self):
        for name in ("www.*.example.com", "w*.example.com", "*.com", "*w.example.com",
                     "*.*.example.com", "example.*"):
            self.bad(INVALID, "cert", "create", "n1", "--cn", "n1.example.com", "--key",
                     "ec:p256", "--san", "DNS:" + name, msg=r"wildcard|\*")
        self.bad(INVALID, "request", "create", "r1", "--cn", "r1.example.com", "--key",
                 "ec:p256", "--san", "DNS:www.*.example.com", msg=r"wildcard|\*")

    def test_non_ascii_dns_san(self):
        for name in ("bücher.example", "例え.jp", "caf\u00e9.example.com"):
            self.bad(INVALID, "cert", "create", "n1", "--cn", "n1.example.com", "--key",
                     "ec:p256", "--san", "DNS:" + name, msg=r"ascii|a-label|xn--|dns")

    def test_bad_ip_san(self):
        for ip in ("1.2.3.256", "999.1.1.1", "1::2::3", "fe80::zz", "1.2.3", ""):
            self.bad(INVALID, "cert", "create", "n1", "--cn", "n1.example.com", "--key",
                     "ec:p256", "--san", "IP:" + ip, msg=r"ip|address")

    # -- keys -------------------------------------------------------------------------------

    def test_rsa_below_2048_on_create(self):
        self.bad(INVALID, "cert", "create", "n1", "--cn", "n1.example.com", "--key", "rsa:1024",
                 msg=r"2048")
        self.bad(INVALID, "request", "create", "r1", "--cn", "r1.example.com", "--key",
                 "rsa:1024", msg=r"2048")

    def test_rsa_1024_import_refused(self):
        self.bad(INVALID, "cert", "import", self.m("rsa1024.crt"), "--key", self.m("rsa1024.key"),
                 msg=r"1024|2048")
        self.bad(INVALID, "cert", "import", self.m("rsa1024-both.pem"), msg=r"1024|2048")
        self.bad(INVALID, "cert", "import", self.m("rsa1024.p12"), "--password-file",
                 self.m("pw"), msg=r"1024|2048")

    def test_mismatched_key(self):
        self.bad(INVALID, "cert", "import", self.m("a.crt"), "--key", self.m("b.key"),
                 msg=r"does not match|doesn't match|not match|does not belong|not belong")

    # -- names ------------------------------------------------------------------------------

    def test_duplicate_name_on_create(self):
        self.bad(CONFLICT, "cert", "create", "web", "--cn", "other.example.com", "--key",
                 "ec:p256", msg=r"web")
        self.bad(CONFLICT, "cert", "create", "appliance default", "--cn", "x.example.com",
                 "--key", "ec:p256", msg=r"appliance default")
        self.bad(CONFLICT, "request", "create", "shop", "--cn", "x.example.com", "--key",
                 "ec:p256", msg=r"shop")

    def test_duplicate_name_on_import(self):
        self.bad(CONFLICT, "cert", "import", self.m("a.crt"), "--name", "web", msg=r"web")
        self.bad(CONFLICT, "cert", "import", self.m("a.crt"), "--key", self.m("a.key"),
                 "--name", "web", msg=r"web")
        self.bad(CONFLICT, "cert", "import", self.m("a.p12"), "--password-file", self.m("pw"),
                 "--name", "appliance default", msg=r"appliance default")

    # -- passwords --------------------------------------------------------------------------

    WRONG = r"password.*(wrong|incorrect|not correct)|(wrong|incorrect) password"
    NOT_DECODE = re.compile(r"damaged|corrupt|malformed|not a certificate|cannot be read|"
                            r"decod|parse|asn", re.I)

    def _wrong_password(self, *args):
        for how in ("file", "env"):
            if how == "file":
                rs = self.bad(PASSWORD, *args, "--password-file", self.m("wrongpw"),
                              msg=self.WRONG)
            else:
                rs = self.bad(PASSWORD, *args, env={"TLSGATE_PASSWORD": WRONG_PW},
                              msg=self.WRONG)
            for r in rs:
                with self.subTest(how=how, check="not a decoding message"):
                    self.assertIsNone(self.NOT_DECODE.search(r.err),
                                      f"wrong password reported as a decoding problem: "
                                      f"{r.err!r}")

    def test_wrong_password_pkcs8_pem(self):
        self._wrong_password("cert", "import", self.m("a.crt"), "--key", self.m("a-enc.p8.pem"))

    def test_wrong_password_pkcs8_der(self):
        self._wrong_password("cert", "import", self.m("a.crt"), "--key", self.m("a-enc.p8.der"))

    def test_wrong_password_pkcs12(self):
        self._wrong_password("cert", "import", self.m("a.p12"))

    def test_wrong_password_pkcs12_without_mac(self):
        # `openssl pkcs12 -export -nomac` (also what keytool writes for some stores): no
        # MAC to check the password against, so a wrong one shows as a failed decryption
        # of the key bag - which is still a wrong password, not a damaged file.
        self._wrong_password("cert", "import", self.m("a-nomac.p12"))
        # Control: the right password imports it (openssl reads this file).
        with self.subTest(check="right password"):
            self.ok("cert", "import", self.m("a-nomac.p12"), "--password-file", self.m("pw"),
                    "--name", "nomac")
            self.assertIs(self.ok("--json", "cert", "show", "nomac").json()["private_key"],
                          True)

    def test_no_password_no_terminal(self):
        for args in (("cert", "import", self.m("a.crt"), "--key", self.m("a-enc.p8.pem")),
                     ("cert", "import", self.m("a.p12")),
                     ("cert", "export", "web", "--format", "p12", "--with-key", "--out",
                      self.path("web.p12"))):
            self.bad(PASSWORD, *args, run=self.run_notty, msg=r"password|passphrase",
                     out=self.path("web.p12"))

    def test_export_passphrase_too_short(self):
        self.bad(PASSWORD, "cert", "export", "web", "--format", "p12", "--with-key",
                 "--passphrase-file", self.m("shortpw"), "--out", self.path("web.p12"),
                 out=self.path("web.p12"), msg=r"8|short|at least")
        self.bad(PASSWORD, "cert", "export", "web", "--format", "p12", "--with-key",
                 "--out", self.path("web.p12"), env={"TLSGATE_PASSWORD": "1234567"},
                 out=self.path("web.p12"), msg=r"8|short|at least")
        self.bad(PASSWORD, "cert", "export", "web", "--format", "p8",
                 "--passphrase-file", self.m("shortpw"), "--out", self.path("web.p8"),
                 out=self.path("web.p8"), msg=r"8|short|at least")

    # -- broken files -----------------------------------------------------------------------

    def test_truncated_der(self):
        self.bad(INVALID, "cert", "import", self.m("trunc.der"), msg=r"trunc\.der")

    def test_truncated_pem(self):
        self.bad(INVALID, "cert", "import", self.m("trunc.pem"), msg=r"trunc\.pem")

    def test_pem_with_garbage_base64(self):
        self.bad(INVALID, "cert", "import", self.m("garbage.pem"), msg=r"garbage\.pem")

    def test_empty_file(self):
        self.bad(INVALID, "cert", "import", self.m("empty.pem"), msg=r"empty")
        self.bad(INVALID, "cert", "import", self.m("a.crt"), "--key", self.m("empty.pem"),
                 msg=r"empty")

    def test_random_5mb_file(self):
        self.bad(INVALID, "cert", "import", self.m("random.bin"), msg=r"random\.bin")
        self.bad(INVALID, "cert", "import", self.m("a.crt"), "--key", self.m("random.bin"),
                 msg=r"random\.bin")

    def test_missing_file(self):
        self.bad(NOTFOUND, "cert", "import", self.path("nosuch.pem"), msg=r"nosuch\.pem")
        self.bad(NOTFOUND, "cert", "import", self.m("a.crt"), "--key", self.path("nosuch.key"),
                 msg=r"nosuch\.key")
        self.bad(NOTFOUND, "cert", "import", self.m("a.p12"), "--password-file",
                 self.path("nosuch.pw"), msg=r"nosuch\.pw")

    def test_csr_given_to_cert_import(self):
        self.bad(INVALID, "cert", "import", self.m("b.csr"), msg=r"request|csr")

    # -- export -----------------------------------------------------------------------------

    def test_export_non_exportable_key(self):
        out = self.path("locked.p12")
        self.bad(CONFLICT, "cert", "export", "locked", "--format", "p12", "--with-key",
                 "--passphrase-file", self.m("pw"), "--out", out, out=out,
                 msg=r"export")
        # The key formats added with commit 581c452 (PKCS#8, PKCS#1/SEC1, PKCS#12
        # profiles) must not be a way around --no-export either.
        for extra in (("--format", "p8", "--passphrase-file", self.m("pw")),
                      ("--format", "pkcs1", "--no-passphrase"),
                      ("--format", "p12", "--with-key", "--p12-profile", "legacy-des",
                       "--passphrase-file", self.m("pw"))):
            self.bad(CONFLICT, "cert", "export", "locked", *extra, "--out", out, out=out,
                     msg=r"export")

    def test_export_key_as_pem_is_usage(self):
        out = self.path("web.pem")
        self.bad(USAGE, "cert", "export", "web", "--with-key", "--format", "pem",
                 "--out", out, out=out, msg=r"p12|pkcs#12|pkcs12")
        self.bad(USAGE, "cert", "export", "web", "--with-key", "--format", "der",
                 "--out", out, out=out, msg=r"p12|pkcs#12|pkcs12")
        # a PKCS#12 profile names how a PKCS#12 is made: with pem it is a mistake
        self.bad(USAGE, "cert", "export", "web", "--format", "pem", "--p12-profile",
                 "legacy-des", "--out", out, out=out, msg=r"p12|PKCS#12")

    def test_export_unwritable_output(self):
        self.bad(IO, "cert", "export", "web", "--format", "der", "--out",
                 self.path("no/such/dir/web.der"), msg=r"web\.der")

    # -- delete / default / show ------------------------------------------------------------

    def test_delete_factory_default(self):
        self.bad(CONFLICT, "cert", "delete", "appliance default", msg=r"default")
        self.ok("cert", "default", "web")  # no longer the default, still protected
        self.bad(CONFLICT, "cert", "delete", "appliance default", msg=r"factory|default")

    def test_delete_the_default_certificate(self):
        self.ok("cert", "default", "web")
        self.bad(CONFLICT, "cert", "delete", "web", msg=r"default certificate")

    def test_unknown_name(self):
        for args in (("cert", "show", "nosuch"), ("cert", "delete", "nosuch"),
                     ("cert", "default", "nosuch"),
                     ("cert", "export", "nosuch", "--format", "der", "--out",
                      self.path("x.der")),
                     ("cert", "replace", "nosuch", self.m("a.crt")),
                     ("request", "show", "nosuch"), ("request", "delete", "nosuch"),
                     ("request", "export", "nosuch", "--out", self.path("x.csr"))):
            self.bad(NOTFOUND, *args, msg=r"nosuch")
        self.assertFalse(os.path.exists(self.path("x.der")))
        self.assertFalse(os.path.exists(self.path("x.csr")))

    # -- command line -----------------------------------------------------------------------

    def test_unknown_option(self):
        self.bad(USAGE, "cert", "list", "--bogus", msg=r"--bogus")
        self.bad(USAGE, "cert", "create", "n1", "--cn", "n1.example.com", "--bogus",
                 msg=r"--bogus")
        self.bad(USAGE, "--bogus", "cert", "list", msg=r"--bogus")

    def test_unknown_subcommand(self):
        self.bad(USAGE, "cert", "frobnicate", msg=r"frobnicate")
        self.bad(USAGE, "request", "frobnicate", msg=r"frobnicate")
        self.bad(USAGE, "frobnicate", msg=r"frobnicate")

    def test_factory_reset_without_yes(self):
        self.bad(USAGE, "factory-reset", msg=r"--yes")
        self.assertEqual(len(self.ok("--json", "cert", "list").json()), 4)

    # -- --json after the command -----------------------------------------------------------

    def test_json_after_read_command_keeps_status(self):
        # README: "Every read command takes --json (before or after the command)".
        cases = [
            (0, ("cert", "list")),
            (0, ("cert", "show", "web")),
            (0, ("request", "list")),
            (0, ("request", "show", "shop")),
            (NOTFOUND, ("cert", "show", "nosuch")),
            (NOTFOUND, ("request", "show", "nosuch")),
            (USAGE, ("cert", "list", "--bogus")),
        ]
        before = self.dump()
        for status, args in cases:
            for variant in (["--json", *args], [*args, "--json"]):
                with self.subTest(cmd=" ".join(variant)):
                    r = self.tg(*variant)
                    self.assertEqual(r.rc, status, f"tlsgate {' '.join(variant)}: {r}")
                    if status == 0:
                        r.json()
        self.assertEqual(self.dump(), before)


if __name__ == "__main__":
    tglib.main()
