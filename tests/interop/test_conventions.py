"""The command-line conventions of issue 14 (item 3) and the report of a self-signed CA
certificate with server names (item 6), each checked against material the openssl CLI
made and read back by openssl where the outcome is a file:

  * "-" is standard input for every file argument (cert import, --key, verify's LEAF and
    --ca-file, --password-file, ca import), read once: a second "-" is status 2, an empty
    one status 3, one over the 10 MiB limit status 3; nothing changes on a refusal;
  * an existing --out file is never overwritten without --force (every export command);
  * a repeated import succeeds with "0 new, N already present" and changes nothing;
  * a bulk import shows progress on a terminal (a pty here), never in a pipe or with
    --json, and ends with a summary line;
  * --at takes RFC 3339 as well as Unix seconds (the same verdicts);
  * a missing required option is status 2 for every command that has one;
  * `openssl req -x509` (CA:TRUE by default) with server names: the import says how it
    was filed and how to file it otherwise; --as-server files it as a server certificate;
  * no silent stores (item 4): every command's own help example, run where there is no
    store, exits 4 naming the directory and `tlsgate init`, and creates nothing; init
    creates the store.
"""
import calendar
import shlex
import json
import os
import pty
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
from tglib import BIN, CONFLICT, INVALID, OK, USAGE  # noqa: E402

LEAF_EXT = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:{name}
"""


class Conventions(tglib.TgCase):
    def setUp(self):
        super().setUp()
        self.ok("init")

    # -- material made by openssl ------------------------------------------------------
    def root(self):
        if not os.path.exists(self.path("root.pem")):
            self.openssl_root("root", "Conventions Root")
        return self.path("root.pem")

    def leaf(self, name="a.example.com", days=20):
        """A leaf for name signed by root(): (cert path, key path)."""
        self.root()
        self.write(name + ".ext", LEAF_EXT.format(name=name))
        self.sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=" + name)
        self.sh("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "root.pem", "-CAkey",
                "root.key", "-CAcreateserial", "-days", str(days), "-extfile", name + ".ext",
                "-out", name + ".pem")
        return self.path(name + ".pem"), self.path(name + ".key")

    def names(self):
        db = self.ok("--json", "cert", "list").json() + self.ok("--json", "ca", "list").json()
        return {c["sha256"]: c["name"] for c in db}

    # -- "-" is standard input ---------------------------------------------------------
    def test_stdin_for_every_file_argument(self):
        cert, key = self.leaf()
        fp = self.fingerprint(cert)
        # certificate and key together on standard input
        r = self.ok("--json", "cert", "import", "-", input=self.rd(cert) + self.rd(key))
        doc = r.json()
        self.assertEqual(doc["new"], 1, r)
        self.assertTrue(doc["imported"][0]["private_key"], r)
        self.assertEqual(self.show("a.example.com")["sha256"], fp)
        # the key alone on standard input, the certificate from a file
        cert2, key2 = self.leaf("b.example.com")
        self.ok("cert", "import", cert2, "--key", "-", input=self.rd(key2))
        self.assertTrue(self.show("b.example.com")["private_key"])
        # a CA certificate on standard input
        r = self.ok("--json", "ca", "import", "-", "--name", "Conv Root", input=self.rd(self.root()))
        self.assertIn(self.fingerprint(self.root()), self.names())
        # verify: the leaf, then the trusted roots, from standard input
        self.ok("verify", "-", "--ca-file", self.root(), "--host", "a.example.com",
                input=self.rd(cert))
        self.ok("verify", cert, "--ca-file", "-", "--host", "a.example.com",
                input=self.rd(self.root()))
        # a PKCS#12 file's password from standard input
        self.sh("openssl", "pkcs12", "-export", "-in", cert2, "-inkey", key2, "-out", "b.p12",
                "-passout", "pass:p12-secret")
        self.ok("cert", "delete", "b.example.com")
        self.ok("cert", "import", self.path("b.p12"), "--password-file", "-",
                input="p12-secret\n")
        self.assertTrue(self.show("b.example.com")["private_key"])
        # one password from standard input serves every file that needs one
        cert3, key3 = self.leaf("c.example.com")
        self.sh("openssl", "pkcs12", "-export", "-in", cert3, "-inkey", key3, "-out", "c.p12",
                "-passout", "pass:p12-secret")
        self.ok("cert", "delete", "b.example.com")
        r = self.ok("cert", "import", self.path("b.p12"), self.path("c.p12"), "--password-file",
                    "-", input="p12-secret\n")
        self.assertIn("2 new, 0 already present", r.out)
        self.assertTrue(self.show("c.example.com")["private_key"])

    def test_stdin_refusals_change_nothing(self):
        cert, key = self.leaf()
        before = self.dump()
        r = self.fails(USAGE, "cert", "import", "-", "--key", "-", input=self.rd(cert))
        self.assertIn("given twice (first for a certificate file, then for --key)", r.err)
        r = self.fails(USAGE, "verify", "-", "--ca-file", "-", input=self.rd(cert))
        self.assertIn("only once", r.err)
        self.assertIn("first for the certificate to verify, then for --ca-file", r.err)
        r = self.fails(INVALID, "cert", "import", "-", input="")
        self.assertIn("standard input is empty", r.err)
        r = self.fails(INVALID, "cert", "import", "-", input="A" * (10 * 1024 * 1024 + 1))
        self.assertIn("too large", r.err)
        r = self.fails(INVALID, "cert", "import", "-", input="not a certificate\n")
        self.assertIn("standard input", r.err)
        self.assertEqual(self.dump(), before)

    # -- --out is never overwritten without --force ------------------------------------
    def test_out_needs_force_for_every_export(self):
        self.ok("cert", "create", "www", "--cn", "www.example.com", "--key", "ec:p256")
        self.ok("request", "create", "req", "--cn", "req.example.com", "--key", "ec:p256")
        self.ok("ca", "import", self.root(), "--name", "Conv Root")
        self.ok("policy", "create", "pol", "--never-domain", "bank.example")
        exports = [
            ("cert", "export", "www", "--format", "pem"),
            ("ca", "export", "Conv Root", "--format", "pem"),
            ("request", "export", "req"),
            ("policy", "export", "pol"),
            ("policy", "defaults", "export"),
        ]
        for cmd in exports:
            with self.subTest(cmd=" ".join(cmd[:2])):
                out = self.path("existing.out")
                self.write("existing.out", "keep me\n")
                r = self.fails(CONFLICT, *cmd, "--out", out)
                self.assertIn("--force", r.err)
                self.assertEqual(self.rd(out), "keep me\n")
                self.ok(*cmd, "--out", out, "--force")
                self.assertNotEqual(self.rd(out), "keep me\n")
        # what the certificate export wrote is what openssl reads as the stored one
        self.ok("cert", "export", "www", "--format", "pem", "--out", self.path("www.pem"))
        self.assertEqual(self.fingerprint(self.path("www.pem")), self.show("www")["sha256"])

    # -- a repeated import ------------------------------------------------------------
    def test_repeated_import_succeeds_and_changes_nothing(self):
        cert, key = self.leaf()
        r = self.ok("cert", "import", cert, key, self.root())
        self.assertIn("2 new, 0 already present", r.out)
        before = self.dump()
        self.nothing_new("cert", "import", cert, key, self.root(), present=2)
        self.nothing_new("cert", "import", key, present=1)
        doc = self.ok("--json", "cert", "import", cert).json()
        self.assertEqual((doc["new"], doc["already_present"]), (0, 1))
        self.assertEqual(self.dump(), before)
        # one new, one present
        cert2, key2 = self.leaf("b.example.com")
        r = self.ok("cert", "import", cert, cert2, key2)
        self.assertIn("1 new, 1 already present", r.out)

    # -- progress on a terminal only --------------------------------------------------
    def many_files(self, n):
        files = []
        for i in range(n):
            c, k = self.leaf(f"bulk{i}.example.com")
            files += [c, k]
        return files

    def run_on_pty(self, *args):
        """Runs tlsgate with standard error on a pseudo-terminal: (rc, stdout, terminal)."""
        master, slave = pty.openpty()
        env = dict(os.environ, TLSGATE_HOME=self.home)
        proc = subprocess.Popen([BIN, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=slave, env=env)
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the terminal closed: the process is done
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        out = proc.stdout.read().decode()
        proc.stdout.close()
        rc = proc.wait(timeout=30)
        os.close(master)
        return rc, out, seen.decode(errors="replace")

    def test_progress_on_a_terminal_only(self):
        files = self.many_files(12)
        rc, out, term = self.run_on_pty("cert", "import", *files)
        self.assertEqual(rc, 0, out + term)
        self.assertIn("reading", term)
        self.assertRegex(term, r"\d+ of 24 \(\d+%\)")
        self.assertIn("12 new, 0 already present", out)
        self.assertNotIn("reading", out)
        # the same again in a pipe: no progress, the summary line all the same
        r = self.ok("cert", "import", *files)
        self.assertEqual(r.err, "")
        self.assertIn("0 new, 12 already present", r.out)
        # with --json on a terminal: no progress either
        rc, out, term = self.run_on_pty("--json", "cert", "import", *files)
        self.assertEqual(rc, 0, out + term)
        self.assertNotIn("reading", term)
        self.assertEqual(json.loads(out)["already_present"], 12)

    # -- a bulk import decodes on every core: order, errors and keys as with one ----------
    def test_bulk_import_in_parallel_keeps_the_order_and_the_rules(self):
        pairs = [self.leaf(f"p{i:02d}.example.com") for i in range(40)]
        # keys first, then their certificates: matched across files, whatever the order
        files = [k for _, k in pairs] + [c for c, _ in pairs]
        # a damaged file in the middle: the first failure in the order given, nothing stored
        self.write("junk.pem", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
        before = self.dump()
        r = self.fails(INVALID, "cert", "import", *files[:50], self.path("junk.pem"), *files[50:])
        self.assertIn("junk.pem", r.err)
        self.assertEqual(self.dump(), before)
        # an encrypted PKCS#12 among them, its password from a file
        c, k = self.leaf("enc.example.com")
        self.sh("openssl", "pkcs12", "-export", "-in", c, "-inkey", k, "-out", "enc.p12",
                "-passout", "pass:bulk-secret")
        self.write("pw", "bulk-secret\n")
        doc = self.ok("--json", "cert", "import", *files[:30], self.path("enc.p12"), *files[30:],
                      "--password-file", self.path("pw")).json()
        self.assertEqual(doc["new"], 41)
        # reported (and stored) in the order of the files, whichever thread decoded them
        # (the first 30 files are keys: the PKCS#12's certificate is the first certificate)
        want = ["enc.example.com"] + [f"p{i:02d}.example.com" for i in range(40)]
        self.assertEqual([e["name"] for e in doc["imported"]], want)
        for cert, key in pairs + [(c, k)]:
            name = os.path.basename(cert)[:-4]
            show = self.show(name)
            self.assertTrue(show["private_key"], name)
            self.assertEqual(show["sha256"], self.fingerprint(cert))
        # the same without a password source and no terminal: the encrypted one is refused
        self.ok("cert", "delete", "enc.example.com")
        before = self.dump()
        r = self.fails(tglib.PASSWORD, "cert", "import", *files, self.path("enc.p12"))
        self.assertEqual(self.dump(), before)

    # -- a streamed list that cannot be written is a failure, not a short success ---------
    def test_list_to_a_full_device_fails(self):
        with open("/dev/full", "w") as full:
            r = self.tg("--json", "cert", "list", stdout=full)
        self.assertEqual(r.rc, tglib.IO, r)
        self.assertIn("cannot write", r.err)

    # -- --at ----------------------------------------------------------------------------
    def test_at_takes_rfc3339_and_unix_seconds(self):
        cert, _ = self.leaf(days=20)
        # the moments around the certificate's end as openssl reads it, not as assumed
        end = self.sh("openssl", "x509", "-in", cert, "-noout", "-enddate").stdout
        not_after = calendar.timegm(time.strptime(end.strip().split("=", 1)[1],
                                                  "%b %d %H:%M:%S %Y GMT"))
        for when, verdict in ((not_after - 86400, OK), (not_after + 86400, 1)):
            rfc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
            a = self.tg("verify", cert, "--ca-file", self.root(), "--at", str(when))
            b = self.tg("verify", cert, "--ca-file", self.root(), "--at", rfc)
            self.assertEqual((a.rc, b.rc), (verdict, verdict), (a, b))
        self.fails(USAGE, "verify", cert, "--ca-file", self.root(), "--at", "next tuesday")

    # -- missing required options -------------------------------------------------------
    def test_missing_required_options_are_status_2(self):
        self.ok("cert", "create", "www", "--cn", "www.example.com", "--key", "ec:p256")
        cert, _ = self.leaf()
        cases = [
            ("cert", "create", "x"),
            ("request", "create", "x"),
            ("cert", "export", "www", "--out", self.path("o")),
            ("cert", "export", "www", "--format", "pem"),
            ("ca", "export", "www", "--format", "pem"),
            ("ca", "reissue", "www"),
            ("ca", "rollover-lead"),
            ("cert", "import"),
            ("cert", "replace", "www"),
            ("verify", cert),
            ("proxy", "client", "create", "p", "--truststore", "t", "--listen", "127.0.0.1:9"),
            ("proxy", "client", "create", "p", "--signing", "s", "--listen", "127.0.0.1:9"),
            ("proxy", "client", "create", "p", "--signing", "s", "--truststore", "t"),
            ("user", "add", "bob"),
            ("group", "deny", "g"),
            ("policy", "export", "x"),
            ("policy", "defaults", "export"),
            ("acme", "account", "create"),
            ("identity", "enroll"),
            ("enroll-ca", "serve"),
            ("enroll-ca", "set"),
            ("serve", "--listen"),
        ]
        before = self.dump()
        for args in cases:
            with self.subTest(args=" ".join(args)):
                self.fails(USAGE, *args)
        self.assertEqual(self.dump(), before)

    # -- item 6: openssl req -x509's CA:TRUE with server names ---------------------------
    def openssl_self_signed(self, name):
        """What `openssl req -x509` makes with the default configuration: CA:TRUE."""
        self.openssl_x509(name, name, "subjectAltName=DNS:" + name)
        text = self.sh("openssl", "x509", "-in", name + ".pem", "-noout", "-text").stdout
        self.assertIn("CA:TRUE", text)  # the premise: openssl's default made a CA
        return self.path(name + ".pem"), self.path(name + ".key")

    def test_self_signed_ca_with_server_names_is_reported(self):
        cert, key = self.openssl_self_signed("shop.example.com")
        fp = self.fingerprint(cert)
        r = self.ok("cert", "import", cert, key)
        self.assertIn("self-signed CA certificate", r.err)
        self.assertIn("DNS:shop.example.com", r.err)
        self.assertIn("filed as a CA certificate", r.err)
        self.assertIn("--as-server", r.err)
        cas = {c["sha256"]: c for c in self.ok("--json", "ca", "list").json()}
        self.assertIn(fp, cas)
        self.assertIn("a CA certificate that names servers", cas[fp]["warnings"])
        doc = self.ok("--json", "ca", "show", cas[fp]["name"]).json()
        self.assertIn("a CA certificate that names servers", doc["warnings"])
        # filed the other way, as the sentence says
        self.ok("ca", "delete", cas[fp]["name"])
        r = self.ok("--json", "cert", "import", cert, key, "--as-server")
        entry = r.json()["imported"][0]
        self.assertEqual(entry["name"], "shop.example.com")
        self.assertFalse(entry["ca"])
        self.assertEqual(entry["warnings"], [])
        show = self.show("shop.example.com")
        self.assertEqual((show["sha256"], show["type"]), (fp, "identity"))
        self.assertNotIn(fp, {c["sha256"] for c in self.ok("--json", "ca", "list").json()})
        # exported, it is the very certificate openssl made (CA:TRUE and all)
        self.ok("cert", "export", "shop.example.com", "--format", "pem", "--out",
                self.path("back.pem"))
        self.assertEqual(self.fingerprint(self.path("back.pem")), fp)

    def test_as_server_refused_where_it_files_nothing(self):
        cert, key = self.leaf()
        before = self.dump()
        r = self.fails(INVALID, "cert", "import", cert, key, "--as-server")
        self.assertIn("--as-server", r.err)
        self.assertEqual(self.dump(), before)
        # nor does a key alone (it mends a stored certificate, filing nothing)
        self.ok("cert", "import", cert)
        before = self.dump()
        r = self.fails(INVALID, "cert", "import", key, "--as-server")
        self.assertIn("--as-server", r.err)
        self.assertEqual(self.dump(), before)
        # a CA's import keeps its own meaning: no such option there
        self.fails(USAGE, "ca", "import", self.root(), "--as-server")


class NoSilentStore(tglib.TgCase):
    auto_init = False

    def examples(self):
        """Every (sub)command's example line from the parser's own tables."""
        doc = json.loads(self.sh(BIN, "help", "--json").stdout)

        def walk(c):
            subs = c.get("subcommands") or []
            if not subs:
                yield c
            for s in subs:
                yield from walk(s)
        for top in doc["commands"]:
            yield from walk(top)

    def test_only_init_creates_a_store(self):
        missing = os.path.join(self.dir, "typo", "store")
        env = dict(os.environ, TLSGATE_HOME=missing)
        ran = 0
        for c in self.examples():
            words = shlex.split(c["example"])
            # init creates (below); serve creates too; verify with --ca-file needs none
            if words[0] in ("init", "serve", "verify"):
                continue
            with self.subTest(example=c["example"]):
                for args in (words, ["--json", *words]):
                    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env,
                                       cwd=self.dir, stdin=subprocess.DEVNULL, timeout=60)
                    self.assertEqual(p.returncode, tglib.NOTFOUND, (args, p.stderr))
                    self.assertIn(f"there is no store in {missing} ($TLSGATE_HOME)", p.stderr)
                    self.assertIn("tlsgate init", p.stderr)
                    self.assertEqual(p.stdout, "")
                ran += 1
            self.assertFalse(os.path.exists(os.path.dirname(missing)), c["example"])
        self.assertGreater(ran, 50)
        # --home names the option the directory came from
        p = subprocess.run([BIN, "--home", missing, "cert", "list"], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(p.returncode, tglib.NOTFOUND, p.stderr)
        self.assertIn(f"there is no store in {missing} (--home)", p.stderr)
        # init makes it, owner-only; then the same commands find it
        p = subprocess.run([BIN, "init"], capture_output=True, text=True, env=env,
                           stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.stat(missing).st_mode & 0o777, 0o700)
        p = subprocess.run([BIN, "--json", "cert", "list"], capture_output=True, text=True,
                           env=env, stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("appliance default", [c["name"] for c in json.loads(p.stdout)])


if __name__ == "__main__":
    tglib.main()
