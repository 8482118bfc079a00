"""End-to-end: serve never answers for a name a certificate does not hold as a host name
(issue 8, item 3).

A certificate whose dNSName is the single string "evil.example.net, DNS:bank.example.com"
once was served for bank.example.com: its SANs were joined with ", " into the store and
split again by the SNI index. SANs now travel as a list, and the index takes only
dNSNames that are host names; such certificates are still imported (with a warning) and
listed, but a handshake for bank.example.com gets the default certificate. Checked with
Python's ssl and `openssl s_client`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve import ServeCase, fetch, page_field  # noqa: E402
import tglib  # noqa: E402  (test_serve put tests/interop on the path)


class TestHostileNames(ServeCase):

    def test_joined_or_malformed_dns_names_are_never_served(self):
        fps = {"dflt": self.create("dflt", "fallback.test"),
               "bank": self.create("bank", "bank5.example.com")}
        self.ok("cert", "default", "dflt")
        hostile = {
            # one dNSName that spells two when joined with ", " and split again
            "evil": ("evil.example.net", ["evil.example.net, DNS:bank.example.com"]),
            # joined with "," only, or with a space
            "evil2": ("evil2.example.net", ["x.example.net,DNS:bank2.example.com"]),
            "evil3": ("evil3.example.net", ["bank3.example.com evil"]),
            # a malformed wildcard, and a CN that must not stand in for a bad DNS SAN
            "evil4": ("bank4.example.com", ["*.*.bank4.example.com"]),
        }
        for name, (cn, sans) in hostile.items():
            c, k, fps[name] = self.make_cert(name, cn, sans=sans)
            r = self.ok("cert", "import", c, k, "--name", name)
            self.assertIn("not a host name", r.err, f"{name}: no warning on import: {r}")
            doc = self.ok("--json", "cert", "show", name).json()
            self.assertEqual(doc["alternative_names"],
                             [{"type": "DNS", "value": v} for v in sans], name)
            self.assertTrue(any("not a host name" in w for w in doc["warnings"]), doc)
        srv = self.serve()
        cases = [
            ("bank.example.com", "dflt", "default"),
            ("bank2.example.com", "dflt", "default"),
            ("bank3.example.com", "dflt", "default"),
            ("bank4.example.com", "dflt", "default"),
            ("a.bank4.example.com", "dflt", "default"),
            ("evil.example.net", "dflt", "default"),
            ("bank5.example.com", "bank", "exact"),
        ]
        for sni, name, how in cases:
            with self.subTest(sni=sni):
                fp, status, body = fetch(srv.port, sni)
                self.assertEqual(status, 200, body)
                self.assertEqual(page_field(body, "certificate"), self.subject(name), body)
                self.assertEqual(page_field(body, "match"), how, body)
                self.assertEqual(fp, fps[name], f"python ssl, SNI {sni}: wanted {name}")
                self.assertEqual(self.openssl_leaf(srv.port, sni), fps[name],
                                 f"s_client, SNI {sni}: wanted {name}")


if __name__ == "__main__":
    tglib.main()
