"""Names and SANs as an attacker sends them (issue 8, items 3, 10, 14a, 14b).

  * SANs travel as a list of (type, value) from the certificate to the store, the JSON
    documents and the SNI index; a dNSName holding ", DNS:other" stays one value, and a
    dNSName that is not a host name is kept but reported (import warning, not indexed);
  * friendly names are printable UTF-8 (no C0/C1 controls, bidi overrides or isolates,
    zero-width characters) whether given or derived from a CN, a file name or a
    replaced certificate's name, at most 128 bytes cut on a character boundary; invalid
    input is refused with exit 3 and commits nothing; lists never drop a row;
  * many certificates with one CN get their names in few lookups (14a); many SANs are
    listed in linear time and imports have a bound (14b).

Certificates are made with Python's cryptography and read back with the openssl CLI.
"""
import datetime
import json
import os
import sqlite3
import subprocess
import warnings

import tglib
from tglib import INVALID, OK

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID




ASAN = tglib.is_asan()
KEY = ec.generate_private_key(ec.SECP256R1())
BAD_CHARS = {
    "invalid UTF-8": "bad\udcffname",        # byte 0xff (surrogateescape)
    "truncated sequence": "bad\udcc3",       # a lead byte without continuation
    "overlong": "bad\udcc0\udcafname",         # C0 AF: overlong '/'
    "surrogate": "bad\udced\udca0\udc80",       # ED A0 80: U+D800 in UTF-8
    "C1 control": "bad\u0085name",
    "bidi override": "evil\u202egnp.exe",
    "bidi isolate": "evil\u2066name",
    "zero width space": "ba\u200bnk",
    "zero width joiner": "ba\u200dnk",
    "BOM": "\ufeffname",
    "word joiner": "na\u2060me",
    "tab": "bad\tname",
}


def utf8_ok(s):
    """No surrogate escapes (bytes that were not UTF-8) and no forbidden characters."""
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF or o < 0x20 or 0x7F <= o <= 0x9F:
            return False
        if 0x200B <= o <= 0x200F or 0x202A <= o <= 0x202E or 0x2066 <= o <= 0x2069:
            return False
        if o in (0x2060, 0xFEFF):
            return False
    return True


def make_cert(cn=None, sans=None, days=90, key=KEY, serial=None):
    attrs = []
    if cn is not None:
        with warnings.catch_warnings():  # a foreign CA may issue CNs over 64 characters
            warnings.simplefilter("ignore")
            attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)]
    name = x509.Name(attrs)
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key())
         .serial_number(serial or x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=days)))
    if sans is not None:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(key, hashes.SHA256())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key=KEY):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Names(tglib.TgCase):
    def tgb(self, *args, **kw):
        """tlsgate with arguments that may hold undecodable bytes; output decoded strictly."""
        e = dict(os.environ)
        e.pop("TLSGATE_PASSWORD", None)
        e["TLSGATE_HOME"] = self.home
        proc = subprocess.run([tglib.BIN, *args], capture_output=True, env=e,
                              stdin=subprocess.DEVNULL, timeout=kw.get("timeout", 300))
        r = tglib.Result(proc)
        r.out = proc.stdout.decode("utf-8")  # raises on invalid UTF-8 output
        r.err = proc.stderr.decode("utf-8", "replace")
        return r

    def all_names(self):
        rows = self.ok("--json", "cert", "list").json()
        return [r["name"] for r in rows]

    def rows_in_store(self):
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        try:
            return con.execute("SELECT count(*) FROM certs").fetchone()[0]
        finally:
            con.close()

    def assert_listable(self):
        """Every stored certificate appears in the list, its name valid, and shows."""
        names = self.all_names()
        self.assertEqual(len(names), self.rows_in_store())
        for n in names:
            self.assertTrue(utf8_ok(n), repr(n))
            self.assertLessEqual(len(n.encode()), 128, repr(n))
            self.assertEqual(self.show(n)["name"], n)
        r = self.ok("cert", "list")
        self.assertEqual(len(r.out.strip().splitlines()), len(names) + 2)  # a head, a total

    # ---- item 10: names given ----

    def test_given_names_must_be_printable_utf8(self):
        self.ok("init")
        f = self.write("c.pem", pem(make_cert("given.example.com")).decode())
        before = self.dump()
        for what, bad in BAD_CHARS.items():
            with self.subTest(what):
                for args in (["cert", "create", bad, "--cn", "x.example.com", "--key", "ec:p256"],
                             ["request", "create", bad, "--cn", "x.example.com", "--key",
                              "ec:p256"],
                             ["cert", "import", f, "--name", bad]):
                    r = self.tgb(*args)
                    self.assertEqual(r.rc, INVALID, f"{args[:2]} {what}: {r}")
                    self.assertIn("friendly name", r.err)
                    self.assertEqual(self.dump(), before, f"{args[:2]} {what} changed the store")
        self.assert_listable()

    def test_subject_fields_must_be_printable_utf8(self):
        self.ok("init")
        before = self.dump()
        for what, bad in BAD_CHARS.items():
            with self.subTest(what):
                for opt in ("--cn", "--org", "--ou", "--locality", "--state"):
                    args = ["--cn", "ok.example.com", "--key", "ec:p256"]
                    if opt == "--cn":
                        args = args[2:]
                    r = self.tgb("request", "create", "r", opt, bad, *args)
                    self.assertEqual(r.rc, INVALID, f"{opt} {what}: {r}")
                    self.assertIn("printable UTF-8", r.err)
                self.assertEqual(self.dump(), before)

    def test_truststore_description_must_be_printable_utf8(self):
        self.ok("init")
        before = self.dump()
        for what, bad in BAD_CHARS.items():
            with self.subTest(what):
                r = self.tgb("truststore", "create", "ts", "--description", bad)
                self.assertEqual(r.rc, INVALID, f"{what}: {r}")
                self.assertIn("description", r.err)
                self.assertEqual(self.dump(), before)
        self.ok("truststore", "create", "ts", "--description", "Grüße, 日本")
        self.assertEqual(self.ok("--json", "truststore", "list").json()[0]["description"],
                         "Grüße, 日本")

    def test_good_unicode_names_are_kept(self):
        self.ok("init")
        for n in ("Zertifikat für Grüße", "日本語の証明書", "a" * 126 + "é"):
            self.ok("cert", "create", n, "--cn", "u.example.com", "--key", "ec:p256")
            self.assertEqual(self.show(n)["name"], n)

    # ---- item 10: names derived ----

    def test_names_derived_from_cn_are_clean_and_cut_on_a_character(self):
        self.ok("init")
        cns = ["é" * 100,                    # 200 bytes: cut to 128 on a boundary
               "日本" * 40,                   # 3-byte characters
               "evil\u202egnp.exe",           # bidi override marked
               "ba\u200bnk\ufeff",            # zero-width and BOM marked
               "ctl\u0085c1",                 # C1 control marked
               "😀" * 40]                     # 4-byte characters
        for i, cn in enumerate(cns):
            for _ in range(2):  # the second one gets a "-2": still within 128 bytes
                f = self.write(f"c{i}.pem", pem(make_cert(cn)).decode())
                self.ok("cert", "import", f)
        self.assert_listable()
        names = self.all_names()
        # the CN as shown marks each control, bidi or invisible character with '?'
        self.assertIn("evil?gnp.exe", names)
        self.assertIn("ba?nk?", names)
        self.assertIn("ba?nk?-2", names)
        self.assertIn("ctl?c1", names)
        self.assertIn("é" * 64, names)
        self.assertIn("é" * 63 + "-2", names)

    def test_name_from_a_file_name_that_is_not_utf8(self):
        self.ok("init")
        p = os.path.join(os.fsencode(self.dir), b"bad\xff\xfename.pem")
        with open(p, "wb") as f:
            f.write(pem(make_cert(None, [x509.DNSName("nocn.example.com")])))
        r = self.tgb("cert", "import", p)
        self.assertEqual(r.rc, OK, r)
        self.assert_listable()

    def test_replaced_name_stays_within_128_bytes(self):
        self.ok("init")
        name = "r" * 125 + "é"  # 127 bytes
        k2 = ec.generate_private_key(ec.SECP256R1())
        f1 = self.write("1.pem", pem(make_cert("r.example.com")).decode())
        self.write("1.key", key_pem().decode())
        self.ok("cert", "import", f1, "--key", self.path("1.key"), "--name", name)
        for i in range(3):  # _REPLACED, _REPLACED_2, _REPLACED_3
            k = ec.generate_private_key(ec.SECP256R1())
            f = self.write(f"n{i}.pem", pem(make_cert("r.example.com", key=k)).decode())
            self.write(f"n{i}.key", key_pem(k).decode())
            self.ok("cert", "replace", name, f, "--key", self.path(f"n{i}.key"))
        del k2
        self.assert_listable()
        names = self.all_names()
        self.assertIn(name, names)
        moved = [n for n in names if "_REPLACED" in n]
        self.assertEqual(len(moved), 3, names)
        for m in moved:
            self.assertTrue(m.startswith("r" * 100), m)

    def test_list_never_drops_a_row(self):
        """A store written by an older tlsgate may hold a name that is not UTF-8: the
        row is listed (with a replacement character and a warning) and can be shown."""
        self.ok("init")
        f = self.write("c.pem", pem(make_cert("legacy.example.com")).decode())
        self.ok("cert", "import", f, "--name", "legacy")
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        con.execute("UPDATE certs SET name = CAST(X'6c6567ff6379' AS TEXT) WHERE name='legacy'")
        con.commit()
        con.close()
        r = self.tgb("--json", "cert", "list")
        self.assertEqual(r.rc, OK, r)
        rows = json.loads(r.out)
        self.assertEqual(len(rows), 2, rows)
        bad = [x for x in rows if x["name"] != "appliance default"][0]
        self.assertEqual(bad["name"], "leg\ufffdcy")
        self.assertTrue(any("UTF-8" in w for w in bad["warnings"]), bad)
        r = self.tgb("cert", "list")
        self.assertEqual(r.rc, OK, r)
        self.assertEqual(len(r.out.strip().splitlines()), 4)  # a head, two rows, a total

    # ---- item 14a: many certificates with one CN ----

    def test_many_same_cn_imports(self):
        n = 1500 if ASAN else 5000
        certs = b"".join(pem(make_cert("same.example.com", serial=i + 1)) for i in range(n))
        p = self.path("many.pem")
        with open(p, "wb") as f:
            f.write(certs)
        self.ok("init")
        self.ok("cert", "import", p, timeout=300)
        names = set(self.all_names())
        want = {"same.example.com"} | {f"same.example.com-{i}" for i in range(2, n + 1)}
        self.assertEqual(names - {"appliance default"}, want)
        # one more, in its own command, after a gap in the numbers
        self.ok("cert", "delete", "same.example.com-7")
        f = self.write("one.pem", pem(make_cert("same.example.com", serial=n + 10)).decode())
        r = self.ok("--json", "cert", "import", f).json()
        got = r["imported"][0]["name"]
        self.assertTrue(got.startswith("same.example.com-"), got)
        self.assertEqual(len(set(self.all_names())), n + 1)


    # ---- item 3: SANs as a list ----

    def test_sans_are_a_list_of_type_and_value(self):
        import ipaddress
        evil = "evil.example.net, DNS:bank.example.com"
        sans = [x509.DNSName("www.example.com"), x509.DNSName(evil),
                x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
                x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
                x509.RFC822Name("ops@example.com"),
                x509.UniformResourceIdentifier("https://example.com/a,b")]
        f = self.write("s.pem", pem(make_cert("s.example.com", sans)).decode())
        self.ok("init")
        r = self.ok("--json", "cert", "import", f)
        entry = r.json()["imported"][0]
        self.assertEqual(len(entry["warnings"]), 1, entry)
        self.assertIn(evil, entry["warnings"][0])
        doc = self.show("s.example.com")
        # what openssl (not our code) reads from the certificate, in order
        text = self.sh("openssl", "x509", "-in", f, "-noout", "-ext",
                       "subjectAltName").stdout
        self.assertIn("DNS:" + evil, text)
        want = [{"type": "DNS", "value": "www.example.com"}, {"type": "DNS", "value": evil},
                {"type": "IP", "value": "192.0.2.7"}, {"type": "IP", "value": "2001:db8::1"},
                {"type": "email", "value": "ops@example.com"},
                {"type": "URI", "value": "https://example.com/a,b"}]
        self.assertEqual(doc["alternative_names"], want)
        self.assertTrue(any("not a host name" in w for w in doc["warnings"]), doc)
        rows = self.ok("--json", "cert", "list").json()
        row = [x for x in rows if x["name"] == "s.example.com"][0]
        self.assertEqual(row["alternative_names"], want)
        # requests too
        self.ok("request", "create", "rq", "--cn", "rq.example.com", "--san", "IP:10.0.0.1",
                "--san", "email:a@example.com", "--key", "ec:p256")
        self.assertEqual(self.ok("--json", "request", "show", "rq").json()["alternative_names"],
                         [{"type": "DNS", "value": "rq.example.com"},
                          {"type": "IP", "value": "10.0.0.1"},
                          {"type": "email", "value": "a@example.com"}])

    def test_created_names_cannot_smuggle_another(self):
        """An e-mail local part may hold a comma: it once reached OpenSSL's config syntax
        joined with ',' and became a second name."""
        self.ok("init")
        self.ok("cert", "create", "smuggle", "--cn", "s.example.com", "--san",
                "email:a,DNS:bank.example.com@example.com", "--key", "ec:p256")
        self.ok("cert", "export", "smuggle", "--format", "pem", "--out", self.path("s.pem"))
        with open(self.path("s.pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["s.example.com"])
        self.assertEqual(san.get_values_for_type(x509.RFC822Name),
                         ["a,DNS:bank.example.com@example.com"])

    def test_upgrade_of_a_version_2_store(self):
        """A store written by the previous schema (SANs joined as text) is migrated on
        first use: the lists come from the certificates and requests themselves, not
        from the joined text, and key facts from the DER."""
        from cryptography.hazmat.primitives.asymmetric import rsa
        self.ok("init")
        evil = "evil.example.net, DNS:bank.example.com"
        f = self.write("e.pem", pem(make_cert("evil.example.net", [x509.DNSName(evil)])).decode())
        self.write("e.key", key_pem().decode())
        self.ok("cert", "import", f, "--key", self.path("e.key"), "--name", "evil")
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        f = self.write("w.pem", pem(make_cert("weak.example.net", key=weak)).decode())
        self.ok("cert", "import", f, "--name", "weak")
        self.ok("request", "create", "rq", "--cn", "rq.example.com", "--san", "IP:10.0.0.1",
                "--key", "ec:p256")
        before = {r["name"]: r for r in self.ok("--json", "cert", "list").json()}
        # back to the version-2 shape, with the joined text an older tlsgate wrote
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        con.executescript(tglib.DROP_SINCE_9 + """
            DROP TABLE tokens; DROP TABLE users; DROP TABLE audit;
            DROP TABLE group_denied; DROP TABLE groups;
            DROP TABLE proxies;
            DROP TABLE policy_entries; DROP TABLE policies;
            DROP TABLE default_domains; DROP TABLE categories;
            DROP INDEX certs_unfilled; DROP INDEX requests_unfilled;
            DROP INDEX certs_chain_unfilled; ALTER TABLE certs DROP COLUMN chain_ids;
            ALTER TABLE certs ADD COLUMN sans TEXT NOT NULL DEFAULT '';
            ALTER TABLE certs DROP COLUMN san_list;
            ALTER TABLE certs DROP COLUMN key_type;
            ALTER TABLE certs DROP COLUMN key_bits;
            ALTER TABLE requests ADD COLUMN sans TEXT NOT NULL DEFAULT '';
            ALTER TABLE requests DROP COLUMN san_list;
            UPDATE certs SET sans = 'DNS:evil.example.net, DNS:bank.example.com'
              WHERE name = 'evil';
            UPDATE requests SET sans = 'DNS:rq.example.com, IP:10.0.0.1';
            PRAGMA user_version = 2;
        """)
        con.commit()
        con.close()
        after = {r["name"]: r for r in self.ok("--json", "cert", "list").json()}
        self.assertEqual(after, before)
        self.assertEqual(after["evil"]["alternative_names"], [{"type": "DNS", "value": evil}])
        self.assertIn("weak key", after["weak"]["warnings"])
        self.assertEqual(self.ok("--json", "request", "show", "rq").json()["alternative_names"],
                         [{"type": "DNS", "value": "rq.example.com"},
                          {"type": "IP", "value": "10.0.0.1"}])
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        try:
            self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0],
                             tglib.SCHEMA_VERSION)
            self.assertEqual(con.execute(
                "SELECT count(*) FROM certs WHERE san_list IS NULL").fetchone()[0], 0)
            self.assertEqual(con.execute(
                "SELECT count(*) FROM certs WHERE chain_ids IS NULL").fetchone()[0], 0)
            self.assertEqual(con.execute(
                "SELECT key_type, key_bits FROM certs WHERE name='weak'").fetchone(), ("RSA", 1024))
        finally:
            con.close()

    # ---- item 14b: many SANs ----

    def test_san_bound_on_import(self):
        self.ok("init")
        names = [x509.DNSName(f"h{i}.example.com") for i in range(10001)]
        f = self.write("over.pem", pem(make_cert("over.example.com", names)).decode())
        before = self.dump()
        r = self.fails(INVALID, "cert", "import", f)
        self.assertIn("10001 subject alternative names", r.err)
        self.assertEqual(self.dump(), before)
        f = self.write("at.pem", pem(make_cert("at.example.com", names[:10000])).decode())
        self.ok("cert", "import", f)
        self.assertEqual(len(self.show("at.example.com")["alternative_names"]), 10000)

    def test_list_and_show_with_very_many_sans(self):
        """A store may hold more SANs than an import allows (a store from before the
        bound): table and details are built in linear time. The values are long so that
        joining by repeated strcat (quadratic) would take minutes, far beyond the
        timeout, while the linear join takes about a second."""
        n = 100000 if ASAN else 300000
        self.ok("init")
        f = self.write("m.pem", pem(make_cert("m.example.com", [x509.DNSName("m.example.com")])
                                    ).decode())
        self.ok("cert", "import", f, "--name", "many")
        pad = "x" * 50
        sans = [["DNS", f"h{i}.{pad}.example.com"] for i in range(n)]
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        con.execute("UPDATE certs SET san_list=? WHERE name='many'", (json.dumps(sans),))
        con.commit()
        con.close()
        limit = 120 if ASAN else 60
        r = self.ok("cert", "show", "many", timeout=limit)
        line = [ln for ln in r.out.splitlines() if ln.startswith("Alternative names:")][0]
        self.assertEqual(line.count(", ") + 1, n)
        self.assertIn(f"DNS:h{n - 1}.{pad}.example.com", line)
        r = self.ok("cert", "list", timeout=limit)
        self.assertIn("h0.", r.out)
        self.assertIn(f" +{n - 1}", r.out)  # the first and the count of the others
        r = self.ok("cert", "list", "--wide", timeout=limit)
        self.assertIn("DNS:h0.", r.out)
        r = self.ok("--json", "cert", "list", timeout=limit)
        row = [x for x in r.json() if x["name"] == "many"][0]
        self.assertEqual(len(row["alternative_names"]), n)


if __name__ == "__main__":
    tglib.main()
