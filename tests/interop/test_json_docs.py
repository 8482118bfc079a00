#!/usr/bin/python3
"""The --json documents keep the conventions of docs/json.md (issue 10: one document per
object for --json and the API alike).

A store with certificates (self-signed, signing, a chain from openssl, a CA without its
key, a reissued root), a completed and a pending request, trust stores, policies, a
client proxy and categories; every command's --json output is walked:
  * every `X_unix` is an integer with an RFC 3339 UTC sibling `X` that Python's datetime
    reads as the same second, and no timestamp is a display string ("… GMT");
  * one name, one type: a member name has the same JSON type in every document (null
    aside; the one documented exception is `signing`);
  * null only for optional text/objects: never for a boolean, number or list;
  * no placeholder strings ("", "-", "none") and no joined lists ("a, b", "443,8443");
  * list rows and show documents agree on the members they share;
  * certificate dates agree with what `openssl x509 -dateopt iso_8601` reads.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_json_docs.py
"""
import datetime
import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import TgCase  # noqa: E402

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DISPLAY_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
PLACEHOLDERS = {"", "-", "none", "None", "n/a", "null"}
# Members whose value is free text (a DN, a sentence, a user's description, PEM): commas
# and such are part of the text, not a joined list.
FREE_TEXT = {"subject", "issuer", "issued_to", "issued_by", "reason", "description", "pem",
             "warnings", "action", "home", "store", "out", "source"}
# docs/json.md: a certificate's `signing` says whether it is a signing certificate (a
# boolean); a proxy's `signing` names its signing certificate, as `--signing CERT` does.
TYPE_EXCEPTIONS = {"signing": {"bool", "str"}}


def jtype(v):
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list",
            dict: "object", type(None): "null"}[type(v)]


def unix_of(text):
    """An RFC 3339 UTC timestamp as seconds, read by Python (not by our code)."""
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp())


class JsonDocs(TgCase):
    home_dir = None
    docs = {}

    @classmethod
    def setUpClass(cls):
        cls.home_dir = tempfile.mkdtemp(prefix="tg-json-")
        case = cls("test_walk")
        case.dir = cls.home_dir
        case.home = os.path.join(cls.home_dir, "home")
        cls.docs = case.build()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.home_dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.home = os.path.join(self.home_dir, "home")
        self.pki = self.home_dir

    def j(self, *args):
        return self.ok("--json", *args).json()

    def openssl_ca(self, name, subj, issuer=None, days=3650):
        d = self.dir
        key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        if issuer is None:
            self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem, "-subj",
                    subj, "-days", str(days), "-extensions", "v3_ca", "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign")
        else:
            csr = os.path.join(d, name + ".csr")
            self.sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj",
                    subj)
            self.sh("openssl", "x509", "-req", "-in", csr, "-CA", issuer + ".pem", "-CAkey",
                    issuer + ".key", "-CAcreateserial", "-days", str(days), "-extfile", ext,
                    "-out", pem)
        return pem

    def build(self):
        """Makes the store; returns {label: document} of every command run with --json."""
        docs = {}
        docs["init"] = self.j("init")
        docs["cert create"] = self.j("cert", "create", "web", "--cn", "www.example.com", "--san",
                                     "DNS:www.example.com", "--san", "IP:192.0.2.1", "--key",
                                     "ec:p256", "--days", "20")
        docs["cert create signing"] = self.j("cert", "create", "inspect", "--signing", "--cn",
                                             "JSON Inspect CA", "--key", "ec:p256")
        self.openssl_ca("root", "/CN=JSON Root")
        self.openssl_ca("inter", "/CN=JSON Intermediate", issuer="root", days=1000)
        docs["ca import"] = self.j("ca", "import", self.path("root.pem"), "--name", "root")
        docs["ca import 2"] = self.j("ca", "import", self.path("inter.pem"), "--name", "inter")
        docs["request create"] = self.j("request", "create", "site", "--cn", "site.example",
                                        "--san", "DNS:site.example", "--key", "ec:p256")
        self.j("request", "create", "pending", "--cn", "pending.example", "--key", "ec:p256")
        docs["request export"] = self.j("request", "export", "site", "--out", self.path("site.csr"))
        with open(self.path("site.ext"), "w") as f:
            f.write("subjectAltName=DNS:site.example\nextendedKeyUsage=serverAuth\n"
                    "keyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n")
        self.sh("openssl", "x509", "-req", "-in", "site.csr", "-CA", "inter.pem", "-CAkey",
                "inter.key", "-CAcreateserial", "-days", "90", "-extfile", "site.ext", "-out",
                "site.pem")
        docs["cert import"] = self.j("cert", "import", self.path("site.pem"))
        docs["truststore create"] = self.j("truststore", "create", "ts", "--description",
                                           "JSON test")
        docs["truststore add"] = self.j("truststore", "add", "ts", "root")
        docs["truststore create defaults"] = self.j("truststore", "create", "pub",
                                                    "--include-defaults")
        docs["policy create"] = self.j("policy", "create", "office", "--description", "Office",
                                       "--never-domain", "bank.example", "--never-category",
                                       "finance", "--never-source", "10.0.0.0/8")
        docs["policy create bare"] = self.j("policy", "create", "bare")
        docs["proxy create"] = self.j("proxy", "client", "create", "web1", "--signing", "inspect",
                                      "--truststore", "ts", "--listen",
                                      f"127.0.0.1:{tglib.free_port()}", "--ports",
                                      "8444,443,8443", "--policy", "office")
        docs["proxy set"] = self.j("proxy", "client", "set", "web1", "--description", "Shop")
        self.write("cats.txt", "bank.example finance\n*.news.example news\n")
        docs["category import"] = self.j("category", "import", self.path("cats.txt"))
        self.ok("cert", "default", "web")
        docs["ca reissue"] = self.j("ca", "reissue", "inspect", "--days", "400", "--name",
                                    "inspect2")
        docs["cert export"] = self.j("cert", "export", "web", "--format", "pem", "--out",
                                     self.path("web.pem"))
        docs["policy export"] = json.loads(self.ok("policy", "export", "office", "--out",
                                                   "-").out)
        docs["policy export bare"] = json.loads(self.ok("policy", "export", "bare", "--out",
                                                        "-").out)
        r = self.ok("--json", "verify", self.path("site.pem"), "--chain", self.path("inter.pem"),
                    "--truststore", "ts", "--host", "site.example")
        docs["verify"] = r.json()
        docs["refresh"] = self.j("refresh")
        docs["truststore update-defaults"] = self.j("truststore", "update-defaults")
        # the reads, last: they see everything above
        docs["cert list"] = self.j("cert", "list")
        for row in docs["cert list"]:
            docs["cert show " + row["name"]] = self.j("cert", "show", row["name"])
        docs["ca list"] = self.j("ca", "list")
        for row in docs["ca list"]:
            docs["ca show " + row["name"]] = self.j("ca", "show", row["name"])
            # cert show shows a CA certificate too (cert list leaves them to ca list)
            docs["cert show " + row["name"]] = self.j("cert", "show", row["name"])
        docs["request list"] = self.j("request", "list")
        for row in docs["request list"]:
            docs["request show " + row["name"]] = self.j("request", "show", row["name"])
        docs["truststore list"] = self.j("truststore", "list")
        for row in docs["truststore list"]:
            docs["truststore show " + row["name"]] = self.j("truststore", "show", row["name"])
        docs["policy list"] = self.j("policy", "list")
        for row in docs["policy list"]:
            docs["policy show " + row["name"]] = self.j("policy", "show", row["name"])
        docs["policy defaults show"] = self.j("policy", "defaults", "show")
        docs["category list"] = self.j("category", "list")
        docs["category show hit"] = self.j("category", "show", "www.news.example")
        docs["category show miss"] = self.j("category", "show", "nothing.example")
        docs["proxy client list"] = self.j("proxy", "client", "list")
        docs["proxy client show"] = self.j("proxy", "client", "show", "web1")
        docs["ca rollover-plan"] = self.j("ca", "rollover-plan")
        docs["ca rollover-lead"] = self.j("ca", "rollover-lead", "365")
        return docs

    # ---- the walker ----

    def walk(self, label, v, types, path="$"):
        """Checks v and everything in it; types collects {member name: {JSON types}}."""
        if isinstance(v, list):
            for i, x in enumerate(v):
                self.walk(label, x, types, f"{path}[{i}]")
            return
        if not isinstance(v, dict):
            return
        where = f"{label}: {path}"
        for k, x in v.items():
            t = jtype(x)
            types.setdefault(k, {}).setdefault(t, where + "." + k)
            if k.endswith("_unix"):
                base = k[:-len("_unix")]
                self.assertIs(type(x), int, f"{where}.{k} is not an integer")
                self.assertIn(base, v, f"{where}.{k} has no RFC 3339 sibling '{base}'")
                self.assertRegex(v[base], RFC3339, f"{where}.{base}")
                self.assertEqual(unix_of(v[base]), x, f"{where}.{base} and {k} disagree")
            if isinstance(x, str):
                self.assertNotIn(x, PLACEHOLDERS, f"{where}.{k} is a placeholder {x!r}")
                if DISPLAY_TIME.fullmatch(x.replace("Z", "").replace(" GMT", "")):
                    self.assertIn(k + "_unix", v, f"{where}.{k} is a time without {k}_unix")
                    self.assertRegex(x, RFC3339, f"{where}.{k}")
                if k not in FREE_TEXT:
                    self.assertNotIn(",", x, f"{where}.{k} looks like a joined list: {x!r}")
            if isinstance(x, list) and k not in ("ports",):
                for item in x:  # a list of strings holds single items
                    if isinstance(item, str) and k not in FREE_TEXT:
                        self.assertNotIn(", ", item, f"{where}.{k} holds a joined item")
            self.walk(label, x, types, f"{path}.{k}")

    def test_walk(self):
        types = {}
        for label, doc in self.docs.items():
            self.walk(label, doc, types)
        problems = []
        for name, seen in types.items():
            kinds = set(seen) - {"null"}
            allowed = TYPE_EXCEPTIONS.get(name)
            if len(kinds) > 1 and (allowed is None or not kinds <= allowed):
                problems.append(f"'{name}' has several types: {seen}")
            if "null" in seen and not kinds <= {"str", "object"}:
                # null only for optional text or objects: never a boolean, number or list
                problems.append(f"'{name}' is null somewhere and {kinds} elsewhere: {seen}")
        self.assertEqual(problems, [])
        # what the walk must have met, so that a vanished member cannot pass unseen
        for name in ("not_after", "not_before", "created", "updated", "exportable", "new_store",
                     "private_key", "ports", "used_by", "default_certificate"):
            self.assertIn(name, types)
        self.assertEqual(set(types["exportable"]), {"bool"})

    def test_rows_agree_with_show(self):
        for list_label, show_prefix in (("cert list", "cert show "), ("ca list", "ca show "),
                                        ("request list", "request show "),
                                        ("truststore list", "truststore show "),
                                        ("policy list", "policy show ")):
            rows = self.docs[list_label]
            self.assertGreater(len(rows), 0, list_label)
            for row in rows:
                shown = self.docs[show_prefix + row["name"]]
                shared = set(row) & set(shown)
                self.assertIn("name", shared)
                for k in shared:
                    self.assertEqual(row[k], shown[k], f"{list_label} / show {row['name']}: {k}")
        # cert list leaves the CA certificates to ca list
        self.assertEqual({r["type"] for r in self.docs["cert list"]}, {"identity"})
        self.assertEqual({r["type"] for r in self.docs["ca list"]}, {"root", "intermediate"})
        # a certificate's list row is a subset of its show document
        for row in self.docs["cert list"] + self.docs["ca list"]:
            self.assertLessEqual(set(row), set(self.docs["cert show " + row["name"]]), row["name"])
        proxies = self.docs["proxy client list"]
        self.assertEqual(proxies, [self.docs["proxy client show"]])
        # what a create or change answers is the show document of the object
        self.assertEqual(self.docs["proxy set"]["name"], "web1")
        self.assertEqual(set(self.docs["proxy create"]), set(proxies[0]))
        self.assertEqual(set(self.docs["cert create"]), set(self.docs["cert show web"]))
        self.assertEqual(set(self.docs["truststore create"]), set(self.docs["truststore show ts"]))

    def test_dates_agree_with_openssl(self):
        seen = 0
        for row in self.docs["cert list"] + self.docs["ca list"]:
            name = row["name"]
            pem = self.ok("cert", "export", name, "--format", "pem", "--out", "-").out
            self.write("x.pem", pem)
            out = self.sh("openssl", "x509", "-in", "x.pem", "-noout", "-startdate", "-enddate",
                          "-dateopt", "iso_8601").stdout
            dates = dict(line.split("=", 1) for line in out.strip().splitlines())
            shown = self.docs["cert show " + name]
            self.assertEqual(shown["not_before"], dates["notBefore"].replace(" ", "T"), name)
            self.assertEqual(shown["not_after"], dates["notAfter"].replace(" ", "T"), name)
            self.assertEqual(row["not_after"], shown["not_after"], name)
            # the chain's first link is the certificate itself
            self.assertEqual(shown["chain"][0]["not_after"], shown["not_after"], name)
            seen += 1
        self.assertGreaterEqual(seen, 6)
        # verify's chain: leaf and intermediate as openssl reads them
        chain = self.docs["verify"]["chain"]
        for link, f in zip(chain, ("site.pem", "inter.pem", "root.pem")):
            end = self.sh("openssl", "x509", "-in", os.path.join(self.pki, f), "-noout",
                          "-enddate", "-dateopt", "iso_8601").stdout.strip().split("=", 1)[1]
            self.assertEqual(link["not_after"], end.replace(" ", "T"), f)

    def test_specific_members(self):
        d = self.docs
        # booleans are never null: a CA without its key has exportable false
        root = d["cert show root"]
        self.assertEqual((root["private_key"], root["exportable"]), (False, False))
        self.assertEqual(d["cert show web"]["used_by"], ["default certificate"])
        self.assertEqual(d["cert show inspect2"]["predecessor"], "inspect")
        self.assertEqual(d["cert show site"]["request"], "site")
        self.assertEqual([c["type"] for c in d["cert show site"]["chain"]],
                         ["identity", "intermediate", "root"])
        self.assertEqual(d["request show site"]["certificate"], "site")
        self.assertIsNone(d["request show pending"]["certificate"])
        # lists are lists
        self.assertEqual(d["proxy client show"]["ports"], [[443, 443], [8443, 8444]])
        self.assertEqual(d["cert show web"]["alternative_names"],
                         [{"type": "DNS", "value": "www.example.com"},
                          {"type": "IP", "value": "192.0.2.1"}])
        # no placeholder entry: the default package is a count
        pub = d["truststore show pub"]
        self.assertTrue(pub["include_defaults"])
        self.assertGreater(pub["default_ca_count"], 0)
        self.assertEqual((pub["ca_count"], pub["entries"]), (0, []))
        self.assertIsNone(pub["description"])
        self.assertIsNone(d["policy show bare"]["description"])
        # every import entry has the same members
        entries = d["cert import"]["imported"] + d["ca import"]["imported"]
        self.assertEqual({tuple(e) for e in entries}, {tuple(entries[0])})
        self.assertEqual(d["cert import"]["imported"][0]["request"], "site")
        self.assertEqual(d["init"]["default_certificate"], "appliance default")
        self.assertEqual(set(d["cert export"]), {"name", "out", "bytes"})

    def test_policy_export_round_trip_with_null(self):
        f = self.write("bare.json", json.dumps(self.docs["policy export bare"]))
        self.assertIsNone(self.docs["policy export bare"]["description"])
        back = self.j("policy", "import", f, "--name", "bare-copy")
        self.assertIsNone(back["description"])
        self.ok("policy", "delete", "bare-copy")


if __name__ == "__main__":
    tglib.main()
