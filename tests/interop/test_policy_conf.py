#!/usr/bin/python3
"""Interop tests for decryption policies and the remaining client-proxy switches (issue 9,
items 5 and 6), driven through the real binary:

  * policy create|set|show|list|delete|export|import, the JSON documents' fields and types;
  * policy defaults show|export|import|reset, and what a factory reset leaves;
  * category import|list|show|clear, refusals naming the line, the size and line limits;
  * every refusal with its exit status (README, "Exit statuses") and the store unchanged
    after it (its SQL dump compared);
  * a policy in use cannot be deleted; policies and proxies are named apart;
  * the proxy switches --no-sni, --ech, --non-tls, --fail-open, --keylog and --policy in
    the proxy's document;
  * a store of schema 5 is upgraded (old proxies get the switches' defaults).

Domains, networks and counts are checked against Python's own reading (ipaddress, re),
not against our code.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_policy_conf.py
"""
import ipaddress
import json
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import CONFLICT, INVALID, NOTFOUND, USAGE, TgCase  # noqa: E402

OPT_STR = (str, type(None))  # optional text: null when there is none (docs/json.md)
POLICY_FIELDS = {
    "name": str, "description": OPT_STR, "no_defaults": bool, "never_domains": list,
    "never_categories": list, "never_sources": list, "always_sources": list, "used_by": list,
    "created": str, "created_unix": int, "updated": str, "updated_unix": int,
}
ROW_FIELDS = {
    "name": str, "description": OPT_STR, "no_defaults": bool, "never_domain_count": int,
    "never_category_count": int, "never_source_count": int, "always_source_count": int,
    "used_by": list, "created": str, "created_unix": int, "updated": str, "updated_unix": int,
}
LISTS = ("never_domains", "never_categories", "never_sources", "always_sources")
LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN = re.compile(rf"^(\*\.{LABEL}(\.{LABEL})+|{LABEL}(\.{LABEL})*)$")


def canonical_net(text):
    """What Python's ipaddress makes of a network (strict: host bits must be zero)."""
    return str(ipaddress.ip_network(text, strict=True))


class PolicyConf(TgCase):
    def setUp(self):
        super().setUp()
        self.ok("cert", "create", "inspect", "--signing", "--cn", "Inspect CA", "--key", "ec:p256",
                "--days", "3650")
        self.ok("truststore", "create", "upstream")

    def proxy(self, name, *extra, listen="127.0.0.1:3128", ports="443"):
        return self.ok("--json", "proxy", "client", "create", name, "--signing", "inspect",
                       "--truststore", "upstream", "--listen", listen, "--ports", ports,
                       *extra).json()

    def policy(self, name):
        return self.ok("--json", "policy", "show", name).json()

    def check_doc(self, doc, fields=POLICY_FIELDS):
        self.assertEqual(list(doc), list(fields))  # every field, in the documented order
        for k, t in fields.items():
            self.assertIsInstance(doc[k], t, k)
        for k in LISTS:
            if k in doc:
                self.assertEqual(doc[k], sorted(doc[k]), k)  # byte order, each once
                self.assertEqual(len(doc[k]), len(set(doc[k])), k)
        for d in doc.get("never_domains", []):
            self.assertRegex(d, DOMAIN)
        for k in ("never_sources", "always_sources"):
            for n in doc.get(k, []):
                self.assertEqual(n, canonical_net(n))

    def test_lifecycle(self):
        doc = self.ok("--json", "policy", "create", "office", "--description", "Büro",
                      "--never-domain", "Bank.Example", "--never-domain", "*.Health.example",
                      "--never-domain", "bank.example", "--never-category", "Finance",
                      "--never-category", "health-care", "--never-source", "10.0.0.0/8",
                      "--never-source", "2001:DB8:0::/32", "--always-source", "192.0.2.7").json()
        self.check_doc(doc)
        self.assertEqual(doc["name"], "office")
        self.assertEqual(doc["description"], "Büro")
        self.assertIs(doc["no_defaults"], False)
        self.assertEqual(doc["never_domains"], ["*.health.example", "bank.example"])
        self.assertEqual(doc["never_categories"], ["finance", "health-care"])
        self.assertEqual(doc["never_sources"], ["10.0.0.0/8", "2001:db8::/32"])
        self.assertEqual(doc["always_sources"], ["192.0.2.7/32"])
        self.assertEqual(doc["used_by"], [])
        self.assertEqual(doc["created_unix"], doc["updated_unix"])
        self.assertEqual(self.policy("office"), doc)
        out = self.ok("policy", "show", "office").out
        for s in ("Policy:", "office", "Never-decrypt domains (2):", "  bank.example",
                  "Always-decrypt sources (1):", "  192.0.2.7/32", "included"):
            self.assertIn(s, out)

        bare = self.ok("--json", "policy", "create", "guest wifi", "--no-defaults").json()
        self.check_doc(bare)
        self.assertIs(bare["no_defaults"], True)
        self.assertEqual([bare[k] for k in LISTS], [[], [], [], []])

        rows = self.ok("--json", "policy", "list").json()
        self.assertEqual([r["name"] for r in rows], ["guest wifi", "office"])
        for r in rows:
            self.check_doc(r, ROW_FIELDS)
        self.assertEqual([rows[1][k] for k in ("never_domain_count", "never_category_count",
                                               "never_source_count", "always_source_count")],
                         [2, 2, 2, 1])
        table = self.ok("policy", "list").out.splitlines()
        self.assertTrue(table[0].startswith("Name"))
        self.assertTrue(any(line.split()[:7] == ["office", "Büro", "Yes", "2", "2", "2", "1"]
                            for line in table), table)

        # set: removals, then additions, only what is given
        time.sleep(1.1)
        d = self.ok("--json", "policy", "set", "office", "--remove-never-domain", "BANK.example",
                    "--add-never-domain", "new.example", "--add-never-domain", "bank.example",
                    "--remove-never-source", "10.0.0.0/8", "--add-always-source", "10.0.0.0/8",
                    "--remove-always-source", "192.0.2.7/32", "--add-never-category", "adult",
                    "--remove-never-category", "finance", "--no-defaults").json()
        self.check_doc(d)
        self.assertEqual(d["never_domains"], ["*.health.example", "bank.example", "new.example"])
        self.assertEqual(d["never_categories"], ["adult", "health-care"])
        self.assertEqual(d["never_sources"], ["2001:db8::/32"])
        self.assertEqual(d["always_sources"], ["10.0.0.0/8"])
        self.assertIs(d["no_defaults"], True)
        self.assertEqual(d["description"], "Büro")
        self.assertGreater(d["updated_unix"], d["created_unix"])
        self.assertEqual(d["created_unix"], doc["created_unix"])
        d = self.ok("--json", "policy", "set", "office", "--defaults", "--description", "").json()
        self.assertIs(d["no_defaults"], False)
        self.assertIsNone(d["description"])
        # adding what is there already changes nothing
        same = self.ok("--json", "policy", "set", "office", "--add-never-domain",
                       "new.example").json()
        self.assertEqual(same["never_domains"], d["never_domains"])

        r = self.ok("policy", "delete", "guest wifi")
        self.assertIn("Deleted policy 'guest wifi'", r.out)
        self.refused(NOTFOUND, "policy", "show", "guest wifi", says=("no policy is named",))
        self.refused(NOTFOUND, "policy", "delete", "guest wifi")
        self.assertIn("No policies", self.ok("--home", self.path("empty"), "policy", "list").out)

    def test_refusals(self):
        self.ok("policy", "create", "office", "--never-source", "10.0.0.0/8")
        self.proxy("web")
        # names: the proxy rule, unique, apart from proxies
        self.refused(INVALID, "policy", "create", "bad/name", says=("letters, digits",))
        self.refused(INVALID, "policy", "create", "x" * 129, says=("at most 128",))
        self.refused(INVALID, "policy", "create", " lead", says=("space",))
        self.refused(INVALID, "policy", "create", "", says=("empty",))
        # "defaults" is the default list's own name (policy defaults …, the API's path)
        self.refused(INVALID, "policy", "create", "Defaults", says=("default never-decrypt",))
        self.ok("policy", "create", "y" * 128)
        self.refused(CONFLICT, "policy", "create", "office", says=("already exists",))
        self.refused(CONFLICT, "policy", "create", "web", says=("'web'", "client proxy"))
        self.refused(CONFLICT, "proxy", "client", "create", "office", "--signing", "inspect",
                     "--truststore", "upstream", "--listen", "127.0.0.1:4000", "--ports", "9",
                     says=("'office'", "policy"))
        self.refused(INVALID, "policy", "create", "p2", "--description", "bell\a",
                     says=("description",))
        self.refused(INVALID, "policy", "create", "p2", "--description", "é" * 513,
                     says=("at most 512",))
        # domains
        for bad, why in (("*.com", "top-level"), ("192.0.2.1", "IPv4 address"),
                         ("bad_name.example", "neither"), ("bank.example.", "final dot"),
                         ("a.*.example", "neither"), ("*", "neither"), ("bänk.example", "xn--"),
                         ("a" * 64 + ".example", "neither"), ("a." * 127 + "ab", "longer than 253")):
            self.refused(INVALID, "policy", "create", "p2", "--never-domain", "ok.example",
                         "--never-domain", bad, says=(why,))
            self.refused(INVALID, "policy", "set", "office", "--add-never-domain", bad)
        # categories
        for bad in ("a_b", "a b", "a.b", "c" * 65, ""):
            self.refused(INVALID, "policy", "create", "p2", "--never-category", bad)
        # networks: what Python's ipaddress refuses, we refuse
        for bad in ("10.1.2.3/8", "192.0.2.129/25", "2001:db8::1/64", "10.0.0.0/33",
                    "2001:db8::/129", "10.0.0/8", "256.0.0.0/8", "example.com/8", "10.0.0.0/"):
            with self.assertRaises(ValueError):
                canonical_net(bad)
            self.refused(INVALID, "policy", "create", "p2", "--never-source", bad)
        # stricter than Python: a scope zone means nothing in a source network
        self.refused(INVALID, "policy", "create", "p2", "--never-source", "fe80::1%eth0")
        r = self.refused(INVALID, "policy", "create", "p2", "--always-source", "10.1.2.3/8")
        self.assertIn("the network is 10.0.0.0/8", r.err)
        self.assertIn("10.1.2.3/32", r.err)
        # one source in both lists
        self.refused(INVALID, "policy", "create", "p2", "--never-source", "10.0.0.0/8",
                     "--always-source", "10.0.0.0/8", says=("both", "10.0.0.0/8"))
        self.refused(INVALID, "policy", "set", "office", "--add-always-source", "10.0.0.0/8",
                     says=("both", "one list only"))
        # removing what is not there, an unknown policy
        self.refused(NOTFOUND, "policy", "set", "office", "--remove-never-domain", "x.example",
                     says=("not among the never-decrypt domains",))
        self.refused(NOTFOUND, "policy", "set", "nothing", "--add-never-domain", "x.example",
                     says=("no policy is named 'nothing'",))
        self.refused(NOTFOUND, "policy", "export", "nothing", "--out", self.path("x.json"))
        # limits: one over each is refused, the limits themselves are fine
        doms = [f"h{i}.example" for i in range(10001)]
        args = [a for d in doms for a in ("--never-domain", d)]
        self.refused(INVALID, "policy", "create", "p2", *args, says=("at most 10000",))
        d = self.ok("--json", "policy", "create", "p2", *args[:-2]).json()
        self.assertEqual(len(d["never_domains"]), 10000)
        self.refused(INVALID, "policy", "set", "p2", "--add-never-domain", "one.more.example",
                     says=("10001", "limit is 10000"))
        cats = [a for i in range(101) for a in ("--never-category", f"c{i}")]
        self.refused(INVALID, "policy", "create", "p3", *cats, says=("at most 100",))
        self.ok("policy", "create", "p3", *cats[:-2])
        nets = [str(n) for n in ipaddress.ip_network("10.0.0.0/14").subnets(new_prefix=24)]
        both = ([a for n in nets[:600] for a in ("--never-source", n)] +
                [a for n in nets[600:1001] for a in ("--always-source", n)])
        self.refused(INVALID, "policy", "create", "p4", *both, says=("1001", "limit is 1000"))
        self.ok("policy", "create", "p4", *both[:-2])
        # usage
        self.refused(USAGE, "policy", "set", "office", says=("nothing to change",))
        self.refused(USAGE, "policy", "set", "office", "--defaults", "--no-defaults")
        self.refused(USAGE, "policy", "create", "p5", "--add-never-domain", "a.example")
        self.refused(USAGE, "policy", "set", "office", "--never-domain", "a.example")
        self.refused(USAGE, "policy", "create", "a", "b")
        self.refused(USAGE, "policy", "export", "office")
        self.refused(USAGE, "policy", "frobnicate")
        self.refused(USAGE, "policy", "defaults", "frobnicate")
        self.refused(USAGE, "policy", "--never-domain")
        self.refused(USAGE, "category", "show")
        self.refused(USAGE, "category", "import", "--replace")

    def test_in_use(self):
        self.ok("policy", "create", "office")
        doc = self.proxy("web", "--policy", "office")
        self.assertEqual(doc["policy"], "office")
        self.assertEqual(self.policy("office")["used_by"], ["web"])
        r = self.refused(CONFLICT, "policy", "delete", "office")
        self.assertIn("policy 'office' is used by client proxy 'web': change or delete the proxy "
                      "first", r.err)
        # moved elsewhere, or off, it may go
        self.ok("policy", "create", "other")
        self.assertEqual(self.ok("--json", "proxy", "client", "set", "web", "--policy",
                                 "other").json()["policy"], "other")
        self.ok("policy", "delete", "office")
        self.assertIsNone(self.ok("--json", "proxy", "client", "set", "web",
                                  "--no-policy").json()["policy"])
        self.ok("policy", "delete", "other")
        # deleting the proxy frees its policy too
        self.ok("policy", "create", "third")
        self.proxy("mail", "--policy", "third", listen="127.0.0.1:3129", ports="993")
        self.refused(CONFLICT, "policy", "delete", "third")
        self.ok("proxy", "client", "delete", "mail")
        self.ok("policy", "delete", "third")

    def test_proxy_switches(self):
        doc = self.proxy("web")
        self.assertEqual((doc["policy"], doc["no_sni"], doc["ech"], doc["non_tls"],
                          doc["fail_open_secs"], doc["keylog"]),
                         (None, "decrypt", "bypass", "bypass", 0, False))
        self.ok("policy", "create", "office")
        full = self.proxy("all", "--policy", "office", "--no-sni", "block", "--ech", "decrypt",
                          "--non-tls", "block", "--fail-open", "60", "--keylog",
                          listen="127.0.0.1:3129", ports="8443")
        self.assertEqual((full["policy"], full["no_sni"], full["ech"], full["non_tls"],
                          full["fail_open_secs"], full["keylog"]),
                         ("office", "block", "decrypt", "block", 60, True))
        self.assertEqual(self.ok("--json", "proxy", "client", "show", "all").json(), full)
        d = self.ok("--json", "proxy", "client", "set", "web", "--no-sni", "bypass", "--ech",
                    "block", "--fail-open", "86400", "--keylog").json()
        self.assertEqual((d["no_sni"], d["ech"], d["non_tls"], d["fail_open_secs"], d["keylog"]),
                         ("bypass", "block", "bypass", 86400, True))
        d = self.ok("--json", "proxy", "client", "set", "web", "--fail-open", "10", "--no-keylog",
                    "--non-tls", "block").json()
        self.assertEqual((d["fail_open_secs"], d["keylog"], d["non_tls"]), (10, False, "block"))
        d = self.ok("--json", "proxy", "client", "set", "web", "--fail-open", "0").json()
        self.assertEqual(d["fail_open_secs"], 0)
        out = self.ok("proxy", "client", "show", "all").out
        for s in ("Decryption policy:     office", "No SNI:", "ECH:", "Not TLS:",
                  "Fail open (s):         60", "TLS key log:           yes"):
            self.assertIn(s, out)
        for secs in ("1", "9", "86401", "-1"):
            self.refused(INVALID, "proxy", "client", "set", "web", "--fail-open", secs,
                         says=("fail-open", "10 to 86400"))
        self.refused(USAGE, "proxy", "client", "set", "web", "--fail-open", "soon")
        self.refused(USAGE, "proxy", "client", "set", "web", "--no-sni", "maybe",
                     says=("decrypt, bypass or block",))
        self.refused(USAGE, "proxy", "client", "set", "web", "--ech", "strip")
        self.refused(USAGE, "proxy", "client", "set", "web", "--non-tls", "decrypt",
                     says=("bypass or block",))
        self.refused(NOTFOUND, "proxy", "client", "set", "web", "--policy", "nothing",
                     says=("no policy is named 'nothing'",))
        self.refused(USAGE, "proxy", "client", "set", "web", "--policy", "office", "--no-policy")
        self.refused(NOTFOUND, "proxy", "client", "create", "p3", "--signing", "inspect",
                     "--truststore", "upstream", "--listen", "127.0.0.1:4000", "--ports", "9",
                     "--policy", "nothing")

    def test_export_import(self):
        self.ok("policy", "create", "office", "--description", "the office", "--never-domain",
                "bank.example", "--never-domain", "*.clinic.example", "--never-category",
                "finance", "--never-source", "10.0.0.0/8", "--always-source", "2001:db8::/32",
                "--no-defaults")
        f = self.path("office.json")
        r = self.ok("policy", "export", "office", "--out", f)
        self.assertIn(f"Exported policy 'office' to {f}", r.out)
        data = json.loads(self.rd(f))
        self.assertEqual(data, {"tlsgate_policy": 1, "name": "office",
                                "description": "the office", "no_defaults": True,
                                "never_domains": ["*.clinic.example", "bank.example"],
                                "never_categories": ["finance"], "never_sources": ["10.0.0.0/8"],
                                "always_sources": ["2001:db8::/32"]})
        self.assertEqual(os.stat(f).st_mode & 0o777, 0o644)
        # the file's refusals (exit 5 before anything is written), then --force
        self.refused(CONFLICT, "policy", "export", "office", "--out", f, says=("exists",))
        self.ok("policy", "export", "office", "--out", f, "--force")
        self.refused(CONFLICT, "policy", "export", "office", "--out",
                     os.path.join(self.home, "p.json"), says=("store directory",))
        self.assertEqual(json.loads(self.ok("policy", "export", "office", "--out", "-").out),
                         data)
        # import: under another name, then replacing, keeping the proxy on it
        copy = self.ok("--json", "policy", "import", f, "--name", "copy").json()
        mine = self.policy("office")
        for k in LISTS + ("description", "no_defaults"):
            self.assertEqual(copy[k], mine[k], k)
        self.refused(CONFLICT, "policy", "import", f, says=("already exists", "--replace"))
        self.proxy("web", "--policy", "copy")
        data["never_domains"] = ["Only.Example"]
        data["no_defaults"] = False
        data["name"] = "copy"
        self.write("changed.json", json.dumps(data))
        d = self.ok("--json", "policy", "import", self.path("changed.json"), "--replace").json()
        self.assertEqual((d["never_domains"], d["no_defaults"], d["used_by"]),
                         (["only.example"], False, ["web"]))
        # a show --json document is taken back too
        self.write("shown.json", json.dumps(self.policy("office")))
        d = self.ok("--json", "policy", "import", self.path("shown.json"), "--name", "third").json()
        self.assertEqual(d["never_domains"], mine["never_domains"])
        # refused files change nothing
        for text, why in (("not json", "not JSON"), ("[]", "not a JSON object"),
                          ('{"name": "z", "colour": 1}', "colour"),
                          ('{"name": "z", "tlsgate_policy": 2}', "format"),
                          ('{"never_domains": []}', "--name"),
                          ('{"name": "z", "never_sources": ["10.0.0.1/8"]}', "host bits"),
                          ('{"name": "z", "never_domains": "a.example"}', "list of strings"),
                          ('{"name": "z", "never_domains": [1]}', "not a string"),
                          ('{"name": "z", "name": "y"}', "duplicate"),
                          ('{"name": "z/z"}', "letters, digits"),
                          ('{"name": "web"}', "client proxy")):
            p = self.write("bad.json", text)
            st = CONFLICT if why == "client proxy" else INVALID
            self.refused(st, "policy", "import", p, says=(why,))
        self.refused(NOTFOUND, "policy", "import", self.path("missing.json"))
        os.mkfifo(self.path("fifo"))
        self.refused(INVALID, "policy", "import", self.path("fifo"))

    def defaults(self):
        return self.ok("--json", "policy", "defaults", "show").json()

    def test_defaults(self):
        d = self.defaults()
        self.assertEqual(list(d), ["source", "domain_count", "domains"])
        self.assertEqual(d["source"], "built-in")
        self.assertTrue(20 <= d["domain_count"] <= 40, d["domain_count"])
        self.assertEqual(d["domain_count"], len(d["domains"]))
        self.assertEqual(d["domains"], sorted(set(d["domains"])))
        for dom in d["domains"]:
            self.assertRegex(dom, DOMAIN)
        for dom in ("*.push.apple.com", "*.windowsupdate.com", "aus5.mozilla.org",
                    "*.dropbox.com"):
            self.assertIn(dom, d["domains"])
        self.assertIn("Default never-decrypt list (built-in):",
                      self.ok("policy", "defaults", "show").out)
        # export: one domain a line after comments; import takes it back
        f = self.path("defaults.txt")
        self.ok("policy", "defaults", "export", "--out", f)
        lines = [ln for ln in self.rd(f).splitlines() if ln and not ln.startswith("#")]
        self.assertEqual(lines, d["domains"])
        self.refused(CONFLICT, "policy", "defaults", "export", "--out", f)
        self.refused(USAGE, "policy", "defaults", "export")
        i = self.ok("--json", "policy", "defaults", "import", f).json()
        self.assertEqual((i["source"], i["domains"]), ("imported", d["domains"]))
        # a list of our own, any case, CRLF and comments
        self.write("mine.txt", "# ours\r\nBank.Example\r\n\r\n*.clinic.example # a clinic\n")
        i = self.ok("--json", "policy", "defaults", "import", self.path("mine.txt")).json()
        self.assertEqual(i["domains"], ["*.clinic.example", "bank.example"])
        # refusals name the line and change nothing
        for text, why in (("ok.example\nbad_one.example\n", "line 2"),
                          ("ok.example\n\n# c\nx.example y\n", "line 4"),
                          ("ok.example\n*.com\n", "line 2"),
                          ("# nothing\n\n", "no domain"),
                          ("ok.example\n" + "x" * 5000 + "\n", "line 2 of the default list is "
                                                             "longer than 4096")):
            p = self.write("bad.txt", text)
            self.refused(INVALID, "policy", "defaults", "import", p, says=(why,))
        self.write("many.txt", "".join(f"h{i}.example\n" for i in range(10001)))
        self.refused(INVALID, "policy", "defaults", "import", self.path("many.txt"),
                     says=("line 10001", "more than 10000"))
        # an imported list stays when the store is opened again; reset brings back ours
        self.assertEqual(self.defaults()["domains"], ["*.clinic.example", "bank.example"])
        r = self.ok("--json", "policy", "defaults", "reset").json()
        self.assertEqual(r, d)
        # a factory reset restores it too
        self.ok("policy", "defaults", "import", self.path("mine.txt"))
        self.ok("factory-reset", "--yes")
        self.assertEqual(self.defaults(), d)

    def categories(self):
        return {r["category"]: r["domain_count"]
                for r in self.ok("--json", "category", "list").json()}

    def category(self, name):
        return self.ok("--json", "category", "show", name).json()

    def test_categories(self):
        text = ("# a map\n"
                "bank.example finance\n"
                "*.clinic.example Health   # trailing comment\r\n"
                "\n"
                "*.example.com misc\n"
                "*.deep.example.com deep\n"
                "a.deep.example.com exact\n"
                "pay.example\tfinance\n"
                "BANK.example banking\n")
        f = self.write("map.txt", text)
        r = self.ok("--json", "category", "import", f).json()
        self.assertEqual(r, {"lines": 9, "mappings": 7, "domain_count": 6, "replaced": False})
        self.assertIn("the category map now holds 6", self.ok("category", "import", f).out)
        # counts per category, as Python counts them (the last line for a domain wins)
        want = {}
        for ln in text.splitlines():
            ln = ln.split("#")[0].split()
            if ln:
                want[ln[0].lower()] = ln[1].lower()
        counts = {}
        for c in want.values():
            counts[c] = counts.get(c, 0) + 1
        self.assertEqual(self.categories(), counts)
        table = self.ok("category", "list").out.splitlines()
        self.assertEqual(table[0].split(), ["Category", "Domains"])
        # lookups: exact first, then the nearest "*." parent, never the apex
        for name, cat, matched in (("bank.example", "banking", "bank.example"),
                                   ("www.bank.example", None, None),
                                   ("x.clinic.example", "health", "*.clinic.example"),
                                   ("a.b.clinic.example", "health", "*.clinic.example"),
                                   ("clinic.example", None, None),
                                   ("a.deep.example.com", "exact", "a.deep.example.com"),
                                   ("b.deep.example.com", "deep", "*.deep.example.com"),
                                   ("x.y.deep.example.com", "deep", "*.deep.example.com"),
                                   ("deep.example.com", "misc", "*.example.com"),
                                   ("WWW.Example.COM", "misc", "*.example.com"),
                                   ("*.z.example.com", "misc", "*.example.com"),
                                   ("example.com", None, None)):
            d = self.category(name)
            self.assertEqual((d["name"], d["category"], d["matched"]),
                             (name.lower(), cat, matched), name)
        self.assertIn("health (from *.clinic.example)",
                      self.ok("category", "show", "x.clinic.example").out)
        self.assertIn("no category", self.ok("category", "show", "nothing.example").out)
        self.refused(INVALID, "category", "show", "not a host")
        self.refused(INVALID, "category", "show", "10.0.0.1")
        # refusals name the line; the whole file is refused, nothing changes
        for bad, why in (("ok.example a\nonly-one\n", "line 2 of the category file has one "
                                                     "field"),
                         ("ok.example a\n\n# x\nx.example a b\n", "line 4"),
                         ("ok.example a\n*.com a\n", "line 2"),
                         ("ok.example a\nx.example a_b\n", "line 2"),
                         ("ok.example a\n10.0.0.1 a\n", "line 2"),
                         ("ok.example a\nx.example " + "c" * 65 + "\n", "line 2"),
                         ("ok.example a\nbad..example a\n", "line 2"),
                         ("ok.example a\nx.example a\0b\n", "line 2 of the category file holds "
                                                            "a NUL")):
            p = self.write("bad.txt", bad)
            self.refused(INVALID, "category", "import", p, says=(why,))
            self.refused(INVALID, "category", "import", p, "--replace", says=(why,))
        self.refused(NOTFOUND, "category", "import", self.path("missing.txt"))
        os.mkfifo(self.path("fifo"))
        self.refused(INVALID, "category", "import", self.path("fifo"))
        # --replace replaces; clear empties
        self.write("two.txt", "one.example a\ntwo.example b")
        r = self.ok("--json", "category", "import", self.path("two.txt"), "--replace").json()
        self.assertEqual((r["domain_count"], r["replaced"]), (2, True))
        self.assertEqual(self.categories(), {"a": 1, "b": 1})
        self.assertEqual(self.ok("--json", "category", "clear").json(), {"removed": 2})
        self.assertEqual(self.categories(), {})
        self.assertIn("empty", self.ok("category", "list").out)
        self.assertIn("Removed 0", self.ok("category", "clear").out)

    def test_category_limits(self):
        # 64 MiB: a larger file is refused before it is read
        big = self.path("big.txt")
        with open(big, "wb") as f:
            f.truncate(64 * 1024 * 1024 + 1)
        self.refused(INVALID, "category", "import", big, says=("too large", "67108864"))
        # 1,000,000 lines are read; one more is refused before anything is stored
        lines = "".join(f"h{i}.d{i % 1000}.example c{i % 7}\n" for i in range(1000000))
        self.write("million.txt", lines)
        t = time.monotonic()
        r = self.ok("--json", "category", "import", self.path("million.txt")).json()
        took = time.monotonic() - t
        self.assertEqual((r["lines"], r["domain_count"]), (1000000, 1000000))
        self.assertLess(took, 60)
        self.assertEqual(sum(self.categories().values()), 1000000)
        self.assertEqual(self.category("h999999.d999.example")["category"], "c" + str(999999 % 7))
        self.write("more.txt", lines + "one.more.example c0\n")
        self.refused(INVALID, "category", "import", self.path("more.txt"), "--replace",
                     says=("1000001 lines", "at most 1000000"))
        # the map never holds more than 1,000,000
        self.write("one.txt", "one.more.example c0\n")
        self.refused(INVALID, "category", "import", self.path("one.txt"),
                     says=("1000001 domains", "--replace"))
        r = self.ok("--json", "category", "import", self.path("one.txt"), "--replace").json()
        self.assertEqual(r["domain_count"], 1)

    def test_factory_reset(self):
        self.ok("policy", "create", "office", "--never-domain", "a.example")
        self.proxy("web", "--policy", "office")
        self.write("map.txt", "bank.example finance\n")
        self.ok("category", "import", self.path("map.txt"))
        self.ok("factory-reset", "--yes")
        self.assertEqual(self.ok("--json", "policy", "list").json(), [])
        self.assertEqual(self.ok("--json", "category", "list").json(), [])
        self.assertEqual(self.defaults()["source"], "built-in")
        self.ok("policy", "create", "office")  # the name is free again

    def test_schema_5_store_is_upgraded(self):
        self.proxy("web")
        want = self.ok("--json", "proxy", "client", "show", "web").json()
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        con.executescript(tglib.DROP_SINCE_9 + """
            DROP TABLE tokens; DROP TABLE users; DROP TABLE audit;
            DROP TABLE group_denied; DROP TABLE groups;
            DROP INDEX proxies_policy;
            CREATE TABLE proxies5 (
              id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
              kind TEXT NOT NULL CHECK (kind IN ('client', 'server')),
              signing_cert_id INTEGER REFERENCES certs(id),
              truststore_id INTEGER REFERENCES truststores(id),
              config TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);
            INSERT INTO proxies5 SELECT id, name, kind, signing_cert_id, truststore_id,
              json_remove(config, '$.no_sni', '$.ech', '$.non_tls', '$.fail_open_secs',
                          '$.keylog'), created, updated FROM proxies;
            DROP TABLE proxies;
            ALTER TABLE proxies5 RENAME TO proxies;
            CREATE INDEX proxies_signing ON proxies(signing_cert_id);
            CREATE INDEX proxies_truststore ON proxies(truststore_id);
            DROP TABLE policy_entries; DROP TABLE policies;
            DROP TABLE default_domains; DROP TABLE categories;
            DELETE FROM settings WHERE k IN ('default_domains', 'categories_stamp');
            PRAGMA user_version = 5;
        """)
        con.commit()
        con.close()
        # the old document (without item 6's switches) reads with their defaults
        self.assertEqual(self.ok("--json", "proxy", "client", "show", "web").json(), want)
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        try:
            self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0],
                             tglib.SCHEMA_VERSION)
            self.assertIn("policy_id", [r[1] for r in con.execute("PRAGMA table_info(proxies)")])
            n = con.execute("SELECT count(*) FROM default_domains").fetchone()[0]
        finally:
            con.close()
        self.assertEqual(n, self.defaults()["domain_count"])  # seeded on the first open
        self.ok("policy", "create", "office")
        self.ok("proxy", "client", "set", "web", "--policy", "office")
        # the store's own checks hold behind the keyring's back too
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        try:
            con.execute("PRAGMA foreign_keys = ON")
            with self.assertRaises(sqlite3.IntegrityError):
                con.execute("DELETE FROM policies WHERE name = 'office'")
            pid = con.execute("SELECT id FROM policies").fetchone()[0]
            with self.assertRaises(sqlite3.IntegrityError):
                con.execute("INSERT INTO policy_entries VALUES (?, 'sometimes', 'x')", (pid,))
        finally:
            con.close()

    def test_builtin_revision(self):
        """A stored built-in list of an older revision is replaced on open; an imported
        list never is."""
        builtin = self.defaults()
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        con.executescript("""
            DELETE FROM default_domains;
            INSERT INTO default_domains VALUES ('old.example');
            UPDATE settings SET v = 'built-in 0' WHERE k = 'default_domains';
        """)
        con.commit()
        con.close()
        self.assertEqual(self.defaults(), builtin)
        self.write("mine.txt", "mine.example\n")
        self.ok("policy", "defaults", "import", self.path("mine.txt"))
        self.assertEqual(self.defaults()["domains"], ["mine.example"])
        self.assertEqual(self.defaults()["domains"], ["mine.example"])


if __name__ == "__main__":
    tglib.main()
