#!/usr/bin/python3
"""Interop tests for the configuration of server inspection proxies (issue 12, item 1 and
the configuration parts of items 2 and 3): `tlsgate proxy server create|list|show|set|delete`,
driven through the real binary, with certificates made by the openssl CLI and Python's
cryptography.

  * create, list, show, set, delete; the JSON document's fields and types; CIDRs in
    canonical form; duplicate certificates discarded;
  * every refusal with its exit status (README, "Exit statuses"), the store unchanged
    after it (its SQL dump compared);
  * two server proxies whose destinations overlap on a common port are refused, naming
    both; a client proxy beside them is not;
  * names unique across client proxies, server proxies and policies;
  * 1,000 certificates accepted, 1,001 refused;
  * a certificate in use cannot be deleted; `cert replace` moves the reference;
  * a key missing or broken is shown as such and mended by importing the key alone;
  * a factory reset clears them.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_server_proxy_conf.py
"""
import datetime
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import CONFLICT, INVALID, NOTFOUND, USAGE, TgCase  # noqa: E402

FIELDS = {
    "name": str, "kind": str, "description": (str, type(None)),
    "truststore": (str, type(None)), "verify_upstream": bool, "certificates": list,
    "mode": str, "listen": (str, type(None)), "upstream": (str, type(None)), "dest": list,
    "ports": list, "service": str, "source_except": list, "protocols": list,
    "ciphers": (str, type(None)), "http2_downgrade": bool, "tcp_reset": bool, "log": bool,
    "created": str, "created_unix": int, "updated": str, "updated_unix": int,
}


class ServerProxyConf(TgCase):
    def leaf(self, name, key=True):
        """A self-signed end-entity certificate for name.example, imported (with its key
        unless key is False); returns the stored name."""
        pem, k = self.openssl_x509(name, f"{name}.example",
                                   f"subjectAltName=DNS:{name}.example,DNS:*.{name}.example",
                                   "basicConstraints=critical,CA:FALSE")
        self.ok("cert", "import", pem, *([k] if key else []))
        return f"{name}.example"

    def create(self, name, *extra):
        return self.ok("--json", "proxy", "server", "create", name, *extra).json()

    def show(self, name):
        return self.ok("--json", "proxy", "server", "show", name).json()

    def check_types(self, doc):
        self.assertEqual(list(doc), list(FIELDS))  # every field, in the documented order
        for k, t in FIELDS.items():
            self.assertIsInstance(doc[k], t, k)
        for c in doc["certificates"]:
            self.assertEqual(list(c), ["name", "cn", "sans", "key"])
            self.assertIn(c["key"], ("ok", "missing", "broken"))

    def test_lifecycle(self):
        www, shop, blog = self.leaf("www"), self.leaf("shop"), self.leaf("blog")
        doc = self.create("web", "--dest", "192.0.2.10", "--dest", "2001:DB8::/64", "--dest",
                          "192.0.2.10/32", "--ports", "8443,443", "--cert", www, "--cert", shop,
                          "--cert", www, "--source-except", "198.51.100.0/24", "--log")
        self.check_types(doc)
        self.assertEqual(doc["kind"], "server")
        self.assertEqual(doc["mode"], "transparent")
        self.assertEqual(doc["dest"], ["192.0.2.10/32", "2001:db8::/64"])
        self.assertEqual(doc["ports"], [[443, 443], [8443, 8443]])
        self.assertEqual(doc["source_except"], ["198.51.100.0/24"])
        self.assertEqual([c["name"] for c in doc["certificates"]], [www, shop])  # once each
        self.assertEqual(doc["certificates"][0]["key"], "ok")
        self.assertEqual(doc["certificates"][0]["cn"], "www.example")
        self.assertIn({"type": "DNS", "value": "*.www.example"}, doc["certificates"][0]["sans"])
        self.assertEqual((doc["truststore"], doc["verify_upstream"]), (None, False))
        self.assertEqual((doc["listen"], doc["upstream"]), (None, None))
        self.assertTrue(doc["log"])
        self.assertEqual(self.show("web"), doc)
        # the service gives the port when --ports is not given
        self.assertEqual(self.create("mail", "--dest", "192.0.2.20", "--service", "imaps",
                                     "--cert", blog)["ports"], [[993, 993]])
        rows = self.ok("--json", "proxy", "server", "list").json()
        self.assertEqual([r["name"] for r in rows], ["mail", "web"])
        # the configuration as one document lists them (issue 12, item 6), as list does
        conf = self.ok("--json", "config", "show").json()
        self.assertEqual(conf["server_proxies"], rows)
        self.assertEqual(conf["client_proxies"], [])
        text = self.ok("config", "show").out
        self.assertIn("\nServer proxies\n", text)
        self.assertRegex(text, r"web +transparent, 192\.0\.2\.10/32, 2001:db8::/64, "
                               r"ports 443,8443, 2 certificates")
        table = self.ok("proxy", "server", "list").out
        self.assertIn("192.0.2.10/32, 2001:db8::/64", table)
        self.assertEqual(self.ok("--json", "proxy", "client", "list").json(), [])
        self.assertIn("[key ok]", self.ok("proxy", "server", "show", "web").out)
        # set: only what is given; lists whole or an entry at a time
        doc = self.ok("--json", "proxy", "server", "set", "web", "--add-cert", blog,
                      "--remove-cert", www, "--add-dest", "192.0.2.128/25", "--remove-dest",
                      "192.0.2.10", "--tcp-reset", "--no-log").json()
        self.assertEqual([c["name"] for c in doc["certificates"]], [shop, blog])
        self.assertEqual(doc["dest"], ["192.0.2.128/25", "2001:db8::/64"])
        self.assertEqual((doc["tcp_reset"], doc["log"]), (True, False))
        self.assertEqual(doc["source_except"], ["198.51.100.0/24"])
        doc = self.ok("--json", "proxy", "server", "set", "web", "--cert", www, "--dest",
                      "10.0.0.0/8", "--source-except", "203.0.113.7").json()
        self.assertEqual([c["name"] for c in doc["certificates"]], [www])
        self.assertEqual(doc["dest"], ["10.0.0.0/8"])
        self.assertEqual(doc["source_except"], ["203.0.113.7/32"])
        # a trust store to verify the real servers against, and back to none
        self.ok("truststore", "create", "internal")
        doc = self.ok("--json", "proxy", "server", "set", "web", "--truststore", "internal").json()
        self.assertEqual((doc["truststore"], doc["verify_upstream"]), ("internal", True))
        self.refused(CONFLICT, "truststore", "delete", "internal", says=("server proxy 'web'",))
        doc = self.ok("--json", "proxy", "server", "set", "web", "--no-truststore").json()
        self.assertEqual((doc["truststore"], doc["verify_upstream"]), (None, False))
        # explicit mode: a reverse proxy; its destinations go with the old mode
        doc = self.ok("--json", "proxy", "server", "set", "web", "--mode", "explicit", "--listen",
                      "127.0.0.1:8443", "--upstream", "[2001:db8::1]:443").json()
        self.assertEqual((doc["mode"], doc["listen"], doc["upstream"], doc["dest"]),
                         ("explicit", "127.0.0.1:8443", "[2001:db8::1]:443", []))
        # back to transparent without destinations: a usage error (the mode's settings are
        # missing), not a list emptied by removals
        self.refused(USAGE, "proxy", "server", "set", "web", "--mode", "transparent",
                     says=("give them with the mode", "--dest"))
        doc = self.ok("--json", "proxy", "server", "set", "web", "--mode", "transparent",
                      "--dest", "192.0.2.10").json()
        self.assertEqual((doc["listen"], doc["upstream"], doc["dest"]),
                         (None, None, ["192.0.2.10/32"]))
        doc = self.create("rev", "--mode", "explicit", "--listen", "127.0.0.1:9443",
                          "--upstream", "192.0.2.30:443", "--cert", shop)
        self.assertEqual((doc["mode"], doc["dest"]), ("explicit", []))
        self.ok("proxy", "server", "delete", "web")
        self.refused(NOTFOUND, "proxy", "server", "show", "web")
        self.refused(NOTFOUND, "proxy", "server", "delete", "web")
        self.ok("cert", "delete", www)  # no longer in use

    def test_refusals(self):
        www = self.leaf("www")
        self.ok("cert", "create", "someca", "--signing", "--cn", "Some CA")
        self.create("web", "--dest", "192.0.2.0/24", "--cert", www)

        def create(*args, status, says=()):
            return self.refused(status, "proxy", "server", "create", "new", *args, says=says)

        base = ("--dest", "198.51.100.1", "--cert", www)
        # usage (2)
        create("--dest", "198.51.100.1", status=USAGE, says=("at least one certificate",))
        create("--cert", www, status=USAGE, says=("networks of the servers",))
        create(*base, "--listen", "127.0.0.1:1", status=USAGE, says=("explicit mode",))
        create(*base, "--upstream", "192.0.2.1:443", status=USAGE, says=("explicit mode",))
        create("--mode", "explicit", "--listen", "127.0.0.1:1", "--cert", www, status=USAGE,
               says=("upstream",))
        create("--mode", "explicit", "--listen", "127.0.0.1:1", "--upstream", "192.0.2.1:1",
               "--cert", www, "--dest", "10.0.0.1", status=USAGE, says=("no destinations",))
        create(*base, "--mode", "mirror", status=USAGE, says=("explicit or transparent",))
        create(*base, "--service", "ftp", status=USAGE)
        create(*base, "--service", "other", status=USAGE, says=("ports",))
        create(*base, "--signing", "ca", status=USAGE, says=("not known here",))
        create(*base, "--add-cert", www, status=USAGE, says=("not known here",))
        self.refused(USAGE, "proxy", "server", "create", "a", "b", *base)
        self.refused(USAGE, "proxy", "server", "set", "web")  # nothing to change
        self.refused(USAGE, "proxy", "server", "list", "--dest", "1.2.3.4")
        self.refused(USAGE, "proxy", "server", "set", "web", "--listen", "127.0.0.1:1",
                     says=("explicit mode",))
        self.refused(USAGE, "proxy", "server", "set", "web", "--truststore", "x",
                     "--no-truststore")
        # invalid (3)
        create("--dest", "192.0.2.1/24", "--cert", www, status=INVALID, says=("192.0.2.0/24",))
        create("--dest", "300.1.1.1", "--cert", www, status=INVALID)
        create(*base, "--source-except", "nonsense", status=INVALID)
        create(*base, "--ports", "0", status=INVALID)
        create(*base, "--protocols", "1.0,1.3", status=INVALID, says=("contiguous",))
        create(*base, "--ciphers", "NOT-A-CIPHER", status=INVALID)
        self.refused(INVALID, "proxy", "server", "create", "x" * 129, *base,
                     says=("at most 128 characters",))
        many = [a for i in range(257) for a in ("--dest", f"10.0.{i // 256}.{i % 256}")]
        create("--cert", www, *many, status=INVALID, says=("at most 256 destinations",))
        self.refused(INVALID, "proxy", "server", "set", "web", "--remove-cert", www,
                     says=("no certificate left",))
        self.refused(INVALID, "proxy", "server", "set", "web", "--remove-dest", "192.0.2.0/24",
                     says=("no destination left",))
        # not found (4)
        create("--dest", "198.51.100.1", "--cert", "nope", status=NOTFOUND, says=("'nope'",))
        create(*base, "--truststore", "nope", status=NOTFOUND)
        self.refused(NOTFOUND, "proxy", "server", "set", "nope", "--log")
        self.refused(NOTFOUND, "proxy", "server", "set", "web", "--remove-dest", "10.9.9.9",
                     says=("10.9.9.9/32",))
        self.refused(NOTFOUND, "proxy", "server", "set", "web", "--remove-cert", "someca",
                     says=("not among the certificates",))
        # conflict (5)
        create("--dest", "198.51.100.1", "--cert", "someca", status=CONFLICT,
               says=("'someca' is a CA certificate",))
        self.refused(CONFLICT, "proxy", "server", "create", "web", *base,
                     says=("already exists",))
        self.refused(CONFLICT, "cert", "delete", www,
                     says=("certificate of server proxy 'web'", "--remove-cert"))

    def test_overlaps(self):
        www = self.leaf("www")
        self.create("a", "--dest", "192.0.2.0/24", "--ports", "443,8443", "--cert", www)
        r = self.refused(CONFLICT, "proxy", "server", "create", "b", "--dest", "192.0.2.77",
                         "--ports", "8000-9000", "--cert", www)
        self.assertIn("server proxy 'b'", r.err)
        self.assertIn("server proxy 'a'", r.err)
        self.assertIn("192.0.2.77/32 and 192.0.2.0/24", r.err)
        self.assertIn("port 8443", r.err)
        # another port, another network, or IPv6 against IPv4: fine
        self.create("b", "--dest", "192.0.2.77", "--ports", "993", "--cert", www)
        self.create("c", "--dest", "192.0.3.0/24", "--cert", www)
        self.create("d", "--dest", "::ffff:c000:200/120", "--cert", www)
        self.refused(CONFLICT, "proxy", "server", "set", "b", "--remove-dest", "192.0.2.77",
                     "--add-dest", "192.0.3.1", "--ports", "443",
                     says=("server proxy 'b'", "server proxy 'c'"))
        # explicit proxies intercept nothing; their listen addresses are exclusive
        self.create("e", "--mode", "explicit", "--listen", "127.0.0.1:4443", "--upstream",
                    "192.0.2.1:443", "--cert", www)
        self.refused(CONFLICT, "proxy", "server", "create", "f", "--mode", "explicit",
                     "--listen", "127.0.0.1:4443", "--upstream", "192.0.2.2:443", "--cert", www,
                     says=("already listens on 127.0.0.1:4443",))
        # a client proxy on the same port is allowed: the server proxy wins at run time
        self.ok("cert", "create", "inspect", "--signing", "--cn", "Inspect CA")
        self.ok("truststore", "create", "up")
        self.ok("proxy", "client", "create", "cp", "--signing", "inspect", "--truststore", "up",
                "--listen", "127.0.0.1:3128", "--mode", "transparent", "--ports", "443")
        self.refused(CONFLICT, "proxy", "client", "create", "cp2", "--signing", "inspect",
                     "--truststore", "up", "--listen", "127.0.0.1:4443", "--ports", "9999",
                     says=("server proxy 'e' already listens",))

    def test_names_unique_across_kinds_and_policies(self):
        www = self.leaf("www")
        self.ok("cert", "create", "inspect", "--signing", "--cn", "Inspect CA")
        self.ok("truststore", "create", "up")
        self.ok("proxy", "client", "create", "office", "--signing", "inspect", "--truststore",
                "up", "--listen", "127.0.0.1:3128")
        self.ok("policy", "create", "strict")
        self.create("web", "--dest", "192.0.2.1", "--cert", www)
        self.refused(CONFLICT, "proxy", "server", "create", "office", "--dest", "192.0.2.2",
                     "--cert", www, says=("a client proxy",))
        self.refused(CONFLICT, "proxy", "server", "create", "strict", "--dest", "192.0.2.2",
                     "--cert", www, says=("name of a policy",))
        self.refused(CONFLICT, "proxy", "client", "create", "web", "--signing", "inspect",
                     "--truststore", "up", "--listen", "127.0.0.1:3129", says=("a server proxy",))
        self.refused(CONFLICT, "policy", "create", "web")
        # one kind's commands do not see the other's proxies
        self.refused(NOTFOUND, "proxy", "client", "show", "web")
        self.refused(NOTFOUND, "proxy", "server", "delete", "office")
        self.refused(USAGE, "proxy", "server", "set", "web", "--policy", "strict")

    def test_thousand_certificates(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        pems = []
        for i in range(1001):
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"h{i:04}.example")])
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(key.public_key()).serial_number(i + 1)
                    .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                    .add_extension(x509.SubjectAlternativeName(
                        [x509.DNSName(f"h{i:04}.example")]), False)
                    .sign(key, hashes.SHA256()))
            pems.append(cert.public_bytes(serialization.Encoding.PEM))
        self.write("many.pem", b"".join(pems), "wb")
        self.ok("cert", "import", self.path("many.pem"))
        names = [f"h{i:04}.example" for i in range(1001)]
        args = [a for n in names[:1000] for a in ("--cert", n)]
        doc = self.create("big", "--dest", "192.0.2.0/24", *args)
        self.assertEqual(len(doc["certificates"]), 1000)
        self.assertEqual({c["key"] for c in doc["certificates"]}, {"missing"})
        self.refused(INVALID, "proxy", "server", "set", "big", "--add-cert", names[1000],
                     says=("at most 1000 certificates",))
        self.refused(INVALID, "proxy", "server", "create", "bigger", "--dest", "192.0.3.0/24",
                     *args, "--cert", names[1000], says=("at most 1000",))
        # one key imported alone mends all of them (they share it)
        self.write("many.key", key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), "wb")
        r = self.ok("--json", "cert", "import", self.path("many.key")).json()
        self.assertEqual([e["action"] for e in r["imported"]], ["private key added"] * 1001)
        self.assertEqual({c["key"] for c in self.show("big")["certificates"]}, {"ok"})
        # a certificate in the middle now exports with the key, and openssl finds the pair
        mid = "h0500.example"
        self.ok("cert", "export", mid, "--format", "pem", "--out", self.path("mid.pem"))
        self.ok("cert", "export", mid, "--format", "p8", "--no-passphrase", "--out",
                self.path("mid.key"))
        cert_pub = self.sh("openssl", "x509", "-in", self.path("mid.pem"), "-noout", "-pubkey")
        key_pub = self.sh("openssl", "pkey", "-in", self.path("mid.key"), "-pubout")
        self.assertEqual(cert_pub.stdout, key_pub.stdout)
        self.assertIn("BEGIN PUBLIC KEY", cert_pub.stdout)

    def test_cert_in_use_and_replace(self):
        www, shop = self.leaf("www"), self.leaf("shop")
        self.create("web", "--dest", "192.0.2.1", "--cert", www, "--cert", shop)
        self.refused(CONFLICT, "cert", "delete", www, says=("server proxy 'web'",))
        # K7: the replacement takes the name and the reference; the old one is free
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "new.key", "-out", "new.pem", "-subj", "/CN=www.example",
                "-days", "60", "-addext", "subjectAltName=DNS:www.example,DNS:new.www.example",
                "-addext", "basicConstraints=critical,CA:FALSE")
        self.ok("cert", "replace", www, self.path("new.pem"), "--key", self.path("new.key"))
        doc = self.show("web")
        self.assertEqual([c["name"] for c in doc["certificates"]], [www, shop])
        self.assertIn({"type": "DNS", "value": "new.www.example"}, doc["certificates"][0]["sans"])
        self.ok("cert", "delete", f"{www}_REPLACED")
        # a CA cannot take a server certificate's place while a proxy shows it
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=A CA",
                "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE")
        self.refused(CONFLICT, "cert", "replace", shop, self.path("ca.pem"), "--key",
                     self.path("ca.key"), says=("server proxy 'web'",))
        # the foreign key is the backstop behind the keyring's refusal
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        con.execute("PRAGMA foreign_keys = ON")
        with self.assertRaises(sqlite3.IntegrityError):
            con.execute("DELETE FROM certs WHERE name = ?", (shop,))
        con.close()
        self.ok("proxy", "server", "delete", "web")
        self.ok("cert", "delete", shop)

    def test_key_missing_then_repaired(self):
        www = self.leaf("www", key=False)
        shop = self.leaf("shop")
        doc = self.create("web", "--dest", "192.0.2.1", "--cert", www, "--cert", shop)
        self.assertEqual([c["key"] for c in doc["certificates"]], ["missing", "ok"])
        self.assertIn("[key missing]", self.ok("proxy", "server", "show", "web").out)
        self.assertIn("1 missing", self.ok("proxy", "server", "list").out)
        # the repair: the key alone
        self.ok("cert", "import", self.path("www.key"))
        self.assertEqual([c["key"] for c in self.show("web")["certificates"]], ["ok", "ok"])
        # a key row whose sealed blob no longer opens is broken; importing it again mends it
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        con.execute("UPDATE keys SET sealed = x'00112233' WHERE id = "
                    "(SELECT key_id FROM certs WHERE name = ?)", (shop,))
        con.commit()
        con.close()
        self.assertEqual([c["key"] for c in self.show("web")["certificates"]], ["ok", "broken"])
        r = self.ok("cert", "import", self.path("shop.key"))
        self.assertIn("repaired", r.out)
        self.assertEqual([c["key"] for c in self.show("web")["certificates"]], ["ok", "ok"])
        # and the repaired key is the certificate's own: export matches openssl's view
        out = self.path("shop-out.key")
        self.ok("cert", "export", shop, "--format", "p8", "--with-key", "--out", out,
                "--no-passphrase")
        self.assertEqual(self.key_pubkey(out), self.cert_pubkey(self.path("shop.pem")))

    def test_factory_reset_clears(self):
        www = self.leaf("www")
        self.create("web", "--dest", "192.0.2.1", "--cert", www)
        self.ok("factory-reset", "--yes")
        self.assertEqual(self.ok("--json", "proxy", "server", "list").json(), [])
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        self.assertEqual(con.execute("SELECT count(*) FROM proxy_certs").fetchone()[0], 0)
        con.close()

    def test_older_store_is_upgraded(self):
        self.ok("proxy", "server", "list")  # the store, made by init
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        con.executescript("DROP TABLE proxy_certs; PRAGMA user_version = 10;")
        con.close()
        www = self.leaf("www")
        self.create("web", "--dest", "192.0.2.1", "--cert", www)
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0], tglib.SCHEMA_VERSION)
        con.close()


if __name__ == "__main__":
    tglib.main()
