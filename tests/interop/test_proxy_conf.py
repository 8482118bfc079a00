#!/usr/bin/python3
"""Interop tests for the configuration of client inspection proxies (issue 9, item 2):
`tlsgate proxy client create|list|show|set|delete`, driven through the real binary.

  * create, list, show, set, delete; the JSON document's fields and types;
  * every refusal with its exit status (README, "Exit statuses"), and the store unchanged
    after it (its SQL dump compared);
  * overlapping ports and a shared listen address name both proxies;
  * a signing certificate or trust store in use cannot be deleted; replacement moves the
    reference, a reissue keeps it;
  * cipher lists are judged as the openssl CLI judges them;
  * a store of schema 4 is upgraded.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_proxy_conf.py
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import CONFLICT, INVALID, NOTFOUND, USAGE, TgCase  # noqa: E402

FIELDS = {
    "name": str, "kind": str, "description": (str, type(None)), "signing": str,
    "truststore": str, "policy": (str, type(None)), "listen": str, "mode": str, "ports": list,
    "service": str, "block_invalid": bool, "block_expired": bool, "min_key_bits": int,
    "protocols": list, "ciphers": (str, type(None)), "http2_downgrade": bool, "max_conns": int,
    "over_max": str, "tcp_reset": bool, "log": bool, "no_sni": str, "ech": str, "non_tls": str,
    "fail_open_secs": int, "keylog": bool, "created": str, "created_unix": int, "updated": str,
    "updated_unix": int,
}


class ProxyConf(TgCase):
    def setUp(self):
        super().setUp()
        self.ok("cert", "create", "inspect", "--signing", "--cn", "Inspect CA", "--key", "ec:p256",
                "--days", "3650")
        self.ok("truststore", "create", "upstream", "--include-defaults",
                env={"TLSGATE_CA_BUNDLE": self.bundle()})

    def bundle(self):
        """A one-root CA bundle (the default package need not be installed)."""
        p = self.path("bundle.pem")
        if not os.path.exists(p):
            self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.path("b.key"), "-out", p,
                    "-subj", "/CN=Bundle Root", "-days", "30")
        return p

    def create(self, name, *extra, listen="127.0.0.1:3128"):
        return self.ok("--json", "proxy", "client", "create", name, "--signing", "inspect",
                       "--truststore", "upstream", "--listen", listen, *extra).json()

    def show(self, name):
        return self.ok("--json", "proxy", "client", "show", name).json()

    def check_types(self, doc):
        self.assertEqual(list(doc), list(FIELDS))  # every field, in the documented order
        for k, t in FIELDS.items():
            self.assertIsInstance(doc[k], t, k)
            if t is bool:
                self.assertIn(doc[k], (True, False), k)
        for r in doc["ports"]:
            self.assertEqual(len(r), 2)
            self.assertTrue(1 <= r[0] <= r[1] <= 65535)
        for v in doc["protocols"]:
            self.assertIn(v, ("1.0", "1.1", "1.2", "1.3"))

    def test_lifecycle(self):
        doc = self.create("web")
        self.check_types(doc)
        self.assertEqual(doc["name"], "web")
        self.assertEqual(doc["kind"], "client")
        self.assertIsNone(doc["description"])
        self.assertEqual(doc["signing"], "inspect")
        self.assertEqual(doc["truststore"], "upstream")
        self.assertEqual(doc["listen"], "127.0.0.1:3128")
        self.assertEqual(doc["mode"], "explicit")
        self.assertEqual(doc["service"], "https")
        self.assertEqual(doc["ports"], [[443, 443]])
        self.assertEqual(doc["protocols"], ["1.2", "1.3"])
        self.assertIsNone(doc["ciphers"])
        self.assertEqual((doc["min_key_bits"], doc["max_conns"], doc["over_max"]),
                         (0, 0, "bypass"))
        for b in ("block_invalid", "block_expired", "http2_downgrade", "tcp_reset", "log"):
            self.assertIs(doc[b], False)
        self.assertEqual(doc["created_unix"], doc["updated_unix"])
        self.assertEqual(self.show("web"), doc)

        # the service's own port when --ports is not given
        for service, port in (("imaps", 993), ("pop3s", 995), ("smtps", 465)):
            d = self.create("mail-" + service, "--service", service,
                            listen=f"127.0.0.1:{port + 10000}")
            self.assertEqual((d["service"], d["ports"]), (service, [[port, port]]))

        # every option at once, given in a loose form and stored canonically
        full = self.create("all of it", "--mode", "transparent", "--ports",
                           "10100, 8443,10000-10099,8444", "--service", "other",
                           "--description", "Ünïcode ok", "--block-invalid", "--block-expired",
                           "--min-key-bits", "2048", "--protocols", "1.3,1.2,1.1", "--ciphers",
                           "ECDHE+AESGCM:ECDHE+CHACHA20", "--http2-downgrade", "--max-conns",
                           "5000", "--over-max", "block", "--tcp-reset", "--log",
                           listen="[0:0::1]:3128")
        self.check_types(full)
        self.assertEqual(full["listen"], "[::1]:3128")
        self.assertEqual(full["ports"], [[8443, 8444], [10000, 10100]])
        self.assertEqual(full["protocols"], ["1.1", "1.2", "1.3"])
        self.assertEqual(full["ciphers"], "ECDHE+AESGCM:ECDHE+CHACHA20")
        self.assertEqual((full["mode"], full["service"], full["description"]),
                         ("transparent", "other", "Ünïcode ok"))
        self.assertEqual((full["min_key_bits"], full["max_conns"], full["over_max"]),
                         (2048, 5000, "block"))
        for b in ("block_invalid", "block_expired", "http2_downgrade", "tcp_reset", "log"):
            self.assertIs(full[b], True)

        rows = self.ok("--json", "proxy", "client", "list").json()
        self.assertEqual([r["name"] for r in rows],
                         ["all of it", "mail-imaps", "mail-pop3s", "mail-smtps", "web"])
        self.assertEqual(rows[-1], doc)
        table = self.ok("proxy", "client", "list").out.splitlines()
        self.assertEqual(table[0].split(), ["Name", "Mode", "Listen", "Ports", "Signing",
                                            "Trust", "store"])
        self.assertTrue(any(line.split()[:6] == ["web", "explicit", "127.0.0.1:3128", "443",
                                                 "inspect", "upstream"] for line in table))
        self.assertIn("Signing certificate:", self.ok("proxy", "client", "show", "web").out)

        # set: only what is given; the rest, and created, stay
        time.sleep(1.1)
        d = self.ok("--json", "proxy", "client", "set", "web", "--ports", "443,8080",
                    "--block-invalid", "--ciphers", "HIGH:!aNULL").json()
        self.check_types(d)
        self.assertEqual((d["ports"], d["block_invalid"], d["ciphers"]),
                         ([[443, 443], [8080, 8080]], True, "HIGH:!aNULL"))
        self.assertGreater(d["updated_unix"], d["created_unix"])
        same = {k: v for k, v in d.items()
                if k not in ("ports", "block_invalid", "ciphers", "updated",
                             "updated_unix")}
        self.assertEqual(same, {k: v for k, v in doc.items() if k in same})
        d = self.ok("--json", "proxy", "client", "set", "web", "--no-block-invalid",
                    "--no-ciphers", "--description", "shop", "--mode", "transparent").json()
        self.assertEqual((d["block_invalid"], d["ciphers"], d["description"], d["mode"]),
                         (False, None, "shop", "transparent"))
        # its own ports and address are no overlap with itself
        self.ok("proxy", "client", "set", "web", "--ports", "443", "--listen", "127.0.0.1:3128")
        off = self.ok("--json", "proxy", "client", "set", "all of it", "--no-block-invalid",
                      "--no-block-expired", "--no-http2-downgrade", "--no-tcp-reset",
                      "--no-log").json()
        for b in ("block_invalid", "block_expired", "http2_downgrade", "tcp_reset", "log"):
            self.assertIs(off[b], False)

        r = self.ok("proxy", "client", "delete", "web")
        self.assertIn("Deleted client proxy 'web'", r.out)
        self.refused(NOTFOUND, "proxy", "client", "show", "web", says=("no client proxy",))
        self.refused(NOTFOUND, "proxy", "client", "delete", "web")
        self.assertEqual(len(self.ok("--json", "proxy", "client", "list").json()), 4)
        self.assertIn("No client proxies", self.ok("--home", self.path("empty"), "proxy",
                                                   "client", "list").out)

    def test_refusals(self):
        self.create("web", "--ports", "443,8443")
        base = ["proxy", "client", "create", "p2", "--signing", "inspect", "--truststore",
                "upstream", "--listen", "127.0.0.1:4000", "--ports", "9000"]

        def create(*change, status, says=()):
            args = list(base)
            for i in range(0, len(change), 2):
                opt, val = change[i], change[i + 1]
                if opt in args:
                    j = args.index(opt)
                    if val is None:
                        del args[j:j + 2]
                    else:
                        args[j + 1] = val
                elif val is None:
                    args.append(opt)
                else:
                    args += [opt, val]
            return self.refused(status, *args, says=says)

        # names
        self.refused(INVALID, *(["proxy", "client", "create", "bad/name"] + base[4:]),
                     says=("letters, digits",))
        self.refused(INVALID, *(["proxy", "client", "create", "x" * 129] + base[4:]),
                     says=("at most 128",))
        self.refused(INVALID, *(["proxy", "client", "create", " lead"] + base[4:]))
        self.refused(CONFLICT, *(["proxy", "client", "create", "web"] + base[4:]),
                     says=("already exists",))
        create("--description", "é" * 513, status=INVALID, says=("at most 512",))
        create("--description", "bell\a", status=INVALID, says=("description",))
        # references
        create("--signing", "nothing", status=NOTFOUND, says=("nothing",))
        create("--signing", "appliance default", status=CONFLICT, says=("not a CA",))
        create("--truststore", "nothing", status=NOTFOUND, says=("trust store",))
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "nokey.key", "-out", "nokey.pem", "-subj", "/CN=No Key",
                "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE")
        self.ok("ca", "import", self.path("nokey.pem"), "--name", "nokey")
        create("--signing", "nokey", status=CONFLICT, says=("private key", "not in the store"))
        # listen addresses
        for bad in ("localhost:4000", "127.0.0.1", "::1:4000", "127.0.0.1:0", "127.0.0.1:70000",
                    "[::1]", "1.2.3:x"):
            create("--listen", bad, status=INVALID)
        r = create("--listen", "127.0.0.1:3128", status=CONFLICT)
        self.assertIn("'web'", r.err)
        self.assertIn("'p2'", r.err)
        # mode, service, ports
        create("--mode", "sideways", status=USAGE, says=("explicit or transparent",))
        create("--service", "gopher", status=USAGE, says=("https",))
        create("--ports", None, "--service", "other", status=USAGE, says=("--ports",))
        for bad in ("0", "65536", "10-5", "https", "443,", "1-2-3", ""):
            create("--ports", bad, status=INVALID)
        r = create("--ports", "8000-9000", status=CONFLICT)
        for s in ("'web'", "'p2'", "8443"):
            self.assertIn(s, r.err)
        create("--ports", None, status=CONFLICT, says=("port 443",))  # https's own port
        # TLS settings
        create("--protocols", "1.1,1.3", status=INVALID, says=("contiguous",))
        create("--protocols", "1.4", status=INVALID)
        create("--protocols", "TLSv1.2", status=INVALID)
        create("--ciphers", "NO-SUCH-CIPHER", status=INVALID, says=("selects no",))
        create("--ciphers", "TLS_AES_128_GCM_SHA256", status=INVALID)
        create("--ciphers", "HIGH", "--no-ciphers", None, status=USAGE)
        # numbers
        for bad in ("100", "511", "16385", "-1"):
            create("--min-key-bits", bad, status=INVALID, says=("minimum key size",))
        create("--min-key-bits", "many", status=USAGE)
        for bad in ("1000001", "-1"):
            create("--max-conns", bad, status=INVALID, says=("connection limit",))
        create("--over-max", "drop", status=USAGE, says=("bypass or block",))
        # usage
        create("--listen", None, status=USAGE, says=("--listen",))
        create("--signing", None, status=USAGE)
        self.refused(USAGE, "proxy", "client", "create", "a", "b")
        self.refused(USAGE, "proxy", "client", "list", "--ports", "1")
        self.refused(USAGE, "proxy", "client", "frobnicate")
        self.refused(USAGE, "proxy", "waiter", "list")
        self.refused(USAGE, "proxy")
        # the edges themselves are fine
        self.ok("proxy", "client", "create", "y" * 128, "--signing", "inspect", "--truststore",
                "upstream", "--listen", "127.0.0.1:4001", "--ports", "1,65535", "--description",
                "é" * 512, "--min-key-bits", "16384", "--max-conns", "1000000")
        self.ok("proxy", "client", "set", "y" * 128, "--min-key-bits", "512", "--max-conns", "1")
        self.ok("proxy", "client", "set", "y" * 128, "--min-key-bits", "0", "--max-conns", "0")

        # set: the same rules, against the others only
        self.create("other", "--ports", "9443", listen="127.0.0.1:5000")
        self.refused(CONFLICT, "proxy", "client", "set", "other", "--ports", "8000-8443",
                     says=("'web'", "'other'", "port 8443"))
        self.refused(CONFLICT, "proxy", "client", "set", "other", "--listen", "127.0.0.1:3128",
                     says=("'web'", "'other'"))
        self.refused(NOTFOUND, "proxy", "client", "set", "nothing", "--log")
        self.refused(USAGE, "proxy", "client", "set", "other")
        self.refused(INVALID, "proxy", "client", "set", "other", "--ports", "0")
        self.refused(CONFLICT, "proxy", "client", "set", "other", "--signing", "nokey")
        self.refused(NOTFOUND, "proxy", "client", "set", "other", "--truststore", "none")
        self.refused(USAGE, "proxy", "client", "set", "other", "--signing")

    def test_ciphers_judged_as_openssl_does(self):
        self.create("web")
        for lst in ("HIGH", "ECDHE+AESGCM", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384",
                    "NO-SUCH", "TLS_AES_256_GCM_SHA384", "aNULL:!aNULL", "DEFAULT:!ECDHE:!DHE:!RSA"):
            # what openssl says of the list (TLS 1.3 suites are not part of it)
            theirs = self.sh("openssl", "ciphers", "-tls1_2", lst, check=False)
            names = [c for c in theirs.stdout.strip().split(":") if c and not c.startswith("TLS_")]
            r = self.tg("proxy", "client", "set", "web", "--ciphers", lst)
            self.assertEqual(r.rc == 0, theirs.returncode == 0 and bool(names), (lst, r, theirs))
            if r.rc != 0:
                self.assertEqual(r.rc, INVALID)

    def test_in_use(self):
        self.create("web")
        r = self.refused(CONFLICT, "cert", "delete", "inspect")
        self.assertIn("'inspect' is the signing certificate of client proxy 'web': change or "
                      "delete the proxy first", r.err)
        self.refused(CONFLICT, "ca", "delete", "inspect", says=("client proxy 'web'",))
        r = self.refused(CONFLICT, "truststore", "delete", "upstream")
        self.assertIn("trust store 'upstream' is used by client proxy 'web': change or delete "
                      "the proxy first", r.err)
        # moved elsewhere, they may go
        self.ok("cert", "create", "other-ca", "--signing", "--cn", "Other CA", "--key", "ec:p256")
        self.ok("truststore", "create", "other-ts")
        d = self.ok("--json", "proxy", "client", "set", "web", "--signing", "other-ca",
                    "--truststore", "other-ts").json()
        self.assertEqual((d["signing"], d["truststore"]), ("other-ca", "other-ts"))
        self.ok("cert", "delete", "inspect")
        self.ok("truststore", "delete", "upstream")
        self.ok("proxy", "client", "delete", "web")
        self.ok("ca", "delete", "other-ca")
        self.ok("truststore", "delete", "other-ts")

    def test_replace_and_reissue_keep_the_reference(self):
        self.create("web")
        before = self.show("web")
        # K10: the reissued copy is a new certificate; the proxy keeps the one it names
        self.ok("ca", "reissue", "inspect", "--days", "400", "--name", "inspect-2")
        self.assertEqual(self.show("web")["signing"], "inspect")
        self.refused(CONFLICT, "cert", "delete", "inspect")
        self.ok("cert", "delete", "inspect-2")
        # K7: a replacement takes the name and the reference
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "new.key", "-out", "new.pem", "-subj", "/CN=New Inspect CA",
                "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.ok("cert", "replace", "inspect", self.path("new.pem"), "--key", self.path("new.key"))
        after = self.show("web")
        self.assertEqual(after["signing"], "inspect")
        self.assertEqual(self.ok("--json", "cert", "show", "inspect").json()["issued_to"],
                         "New Inspect CA")
        self.assertEqual({k: v for k, v in after.items() if not k.startswith("updated")},
                         {k: v for k, v in before.items() if not k.startswith("updated")})
        self.ok("cert", "delete", "inspect_REPLACED")  # no longer in use
        # a replacement that cannot sign is refused while a proxy signs with it
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "leaf.key", "-out", "leaf.pem", "-subj",
                "/CN=leaf.example.com", "-days", "30", "-addext",
                "basicConstraints=critical,CA:FALSE")
        self.refused(CONFLICT, "cert", "replace", "inspect", self.path("leaf.pem"), "--key",
                     self.path("leaf.key"), says=("client proxy 'web'",))

    def test_factory_reset_removes_proxies(self):
        self.create("web")
        self.ok("factory-reset", "--yes")
        self.assertEqual(self.ok("--json", "proxy", "client", "list").json(), [])

    def test_schema_4_store_is_upgraded(self):
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        con.executescript(tglib.DROP_SINCE_9 + """
            DROP TABLE tokens; DROP TABLE users; DROP TABLE audit;
            DROP TABLE group_denied; DROP TABLE groups;
            DROP TABLE proxies;
            DROP TABLE policy_entries; DROP TABLE policies;
            DROP TABLE default_domains; DROP TABLE categories;
            PRAGMA user_version = 4;
        """)
        con.commit()
        con.close()
        want = self.ok("--json", "cert", "list").json()
        self.assertEqual(self.ok("--json", "proxy", "client", "list").json(), [])
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        try:
            self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0],
                             tglib.SCHEMA_VERSION)
            cols = [r[1] for r in con.execute("PRAGMA table_info(proxies)")]
            self.assertEqual(cols, ["id", "name", "kind", "signing_cert_id", "truststore_id",
                                    "config", "created", "updated", "policy_id"])
        finally:
            con.close()
        self.create("web")
        self.assertEqual(self.ok("--json", "cert", "list").json(), want)
        # the store's own checks hold behind the keyring's back too
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        try:
            con.execute("PRAGMA foreign_keys = ON")
            with self.assertRaises(sqlite3.IntegrityError):
                con.execute("UPDATE proxies SET kind = 'other'")
            with self.assertRaises(sqlite3.IntegrityError):
                con.execute("DELETE FROM certs WHERE name = 'inspect'")
        finally:
            con.close()


if __name__ == "__main__":
    tglib.main()
