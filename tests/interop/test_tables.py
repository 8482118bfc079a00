#!/usr/bin/python3
"""The certificates tables (cert list, ca list): fitted to 80 columns with the name never
cut, --wide with every column, CA certificates only in ca list, --expiring soonest first,
--filter on names and SANs, and the total line. The CA is made by openssl, not by us.

Run: cd /work/main && TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/interop/test_tables.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tglib  # noqa: E402
from tglib import INVALID, TgCase  # noqa: E402

C80 = {"COLUMNS": "80"}
LONG_SAN = "DNS:" + "a-very-long-label-that-goes-on." * 3 + "example.com"
LONG_NAME = "n" * 50 + "-sixty-ch"  # 59 ...
LONG_NAME += "x"  # ... 60 characters


class TablesTest(TgCase):
    def setUp(self):
        super().setUp()
        self.ok("init")

    def create(self, name, *sans, days=365, cn=None):
        args = ["cert", "create", name, "--cn", cn or name + ".example.com", "--days", str(days)]
        for s in sans:
            args += ["--san", s]
        self.ok(*args)

    def import_root(self, name="corp-root"):
        root, _ = self.openssl_root("root", "Corp Root", days=3650)
        self.ok("ca", "import", root, "--name", name)

    def names(self, *args):
        return [r["name"] for r in self.ok("--json", *args).json()]

    def lines(self, *args):
        return self.ok(*args, env=C80).out.rstrip("\n").split("\n")

    def test_fits_80_columns(self):
        self.create("shop", "DNS:shop.example.com", LONG_SAN, "DNS:b.example.com",
                    "IP:192.0.2.7")
        self.create("expiring", "DNS:soon.example.com", days=10)
        out = self.lines("cert", "list")
        for ln in out:
            self.assertLessEqual(len(ln), 80, repr(ln))
            self.assertEqual(ln, ln.rstrip(), repr(ln))
        self.assertEqual(out[0].split()[:4], ["Name", "Type", "Expires", "Status"])
        row = [ln for ln in out if ln.startswith("shop ")][0]
        # the first SAN, cut if need be, and the count of the others stays
        self.assertIn("shop.example.com +3", row)
        self.assertIn("identity", row)
        soon = [ln for ln in out if ln.startswith("expiring ")][0]
        self.assertRegex(soon, r"\d{4}-\d\d-\d\d \(10d\)")
        self.assertIn(" expiring", soon[len("expiring"):])
        # a narrower terminal: cut further (with an ellipsis), still within the width
        narrow = self.ok("cert", "list", env={"COLUMNS": "70"}).out
        self.assertIn("\u2026", narrow)
        for ln in narrow.splitlines():
            self.assertLessEqual(len(ln), 70, repr(ln))
        # no terminal and no valid COLUMNS: 80
        for ln in self.ok("cert", "list", env={"COLUMNS": "junk"}).out.splitlines():
            self.assertLessEqual(len(ln), 80, repr(ln))

    def test_cut_cells_have_an_ellipsis(self):
        self.create("s", LONG_SAN)
        out = self.ok("cert", "list", env={"COLUMNS": "70"}).out
        self.assertIn("\u2026", out)
        self.assertNotIn(LONG_SAN[4:], out)

    def test_name_never_cut(self):
        self.assertEqual(len(LONG_NAME), 60)
        self.create(LONG_NAME, LONG_SAN, cn="long.example.com")
        out = self.lines("cert", "list")
        row = [ln for ln in out if ln.startswith(LONG_NAME)]
        self.assertEqual(len(row), 1, out)
        self.assertEqual(row[0].split()[0], LONG_NAME)

    def test_wide_has_every_column(self):
        self.create("shop", "DNS:shop.example.com", LONG_SAN)
        out = self.ok("cert", "list", "--wide", env=C80).out
        head = out.splitlines()[0]
        for title in ("Friendly Name", "Type", "Issued To", "Issued By", "Expiration",
                      "Days Left", "Alternative Name(s)", "Private Key?", "Signing",
                      "Default", "Warnings"):
            self.assertIn(title, head)
        self.assertIn(LONG_SAN, out)  # nothing cut
        self.assertNotIn("\u2026", out)
        self.import_root()
        head = self.ok("ca", "list", "--wide").out.splitlines()[0]
        self.assertIn("Issued By", head)
        self.assertIn("Warnings", head)

    def test_cas_only_in_ca_list(self):
        self.create("www", "DNS:www.example.com")
        self.import_root()
        self.ok("cert", "create", "inspect", "--cn", "Inspect CA", "--signing")
        certs = self.names("cert", "list")
        self.assertIn("www", certs)
        self.assertNotIn("corp-root", certs)
        self.assertNotIn("inspect", certs)
        self.assertEqual(self.names("ca", "list"), ["corp-root", "inspect"])
        for row in self.ok("--json", "cert", "list").json():
            self.assertEqual(row["type"], "identity", row)
        text = self.ok("cert", "list", env=C80).out
        self.assertNotIn("corp-root", text)
        ca = self.lines("ca", "list")
        self.assertEqual(ca[0].split(), ["Name", "Type", "Subject", "Expires", "Key", "Signing"])
        root = [ln for ln in ca if ln.startswith("corp-root ")][0].split()
        self.assertEqual(root[1], "root")
        self.assertEqual(root[-2:], ["No", "No"])  # Key: openssl kept it; Signing: no key
        inspect = [ln for ln in ca if ln.startswith("inspect ")][0]
        self.assertTrue(inspect.endswith("Yes  Yes"), inspect)
        self.assertEqual(ca[-1], "2 CA certificates (0 expiring within 30 days, 0 expired)")
        for ln in ca:
            self.assertLessEqual(len(ln), 80, repr(ln))

    def test_expiring_soonest_first(self):
        self.create("c", days=20)
        self.create("a", days=5)
        self.create("b", days=12)
        self.create("later", days=400)
        want = ["a", "b", "c"]
        self.assertEqual(self.names("cert", "list", "--expiring", "30"), want)
        rows = [ln.split()[0] for ln in self.lines("cert", "list", "--expiring", "30")[1:-1]]
        self.assertEqual(rows, want)
        self.assertEqual(self.lines("cert", "list", "--expiring", "30")[-1],
                         "3 certificates expiring within 30 days (3 expiring within 30 days, "
                         "0 expired)")
        self.assertEqual(self.lines("cert", "list", "--expiring", "1"),
                         ["No certificates expiring within 1 day."])

    def test_filter(self):
        self.create("www", "DNS:www.example.com", "DNS:Shop.Example.org")
        self.create("shop-api", "DNS:api.example.com")
        self.create("other", "DNS:other.example.net")
        self.import_root("shop-root")
        # name, and a SAN value (any case)
        self.assertEqual(self.names("cert", "list", "--filter", "SHOP"), ["shop-api", "www"])
        self.assertEqual(self.names("cert", "list", "--filter", "example.net"), ["other"])
        # the common name too
        self.assertEqual(self.names("cert", "list", "--filter", "api.example"), ["shop-api"])
        self.assertEqual(self.names("ca", "list", "--filter", "shop"), ["shop-root"])
        self.assertEqual(self.names("ca", "list", "--filter", "corp root"), ["shop-root"])
        # a SAN's values, never its type word: every row here has DNS names
        self.assertEqual(self.names("cert", "list", "--filter", "dns"), [])
        total = self.lines("cert", "list", "--filter", "shop")[-1]
        # www, shop-api, other and the appliance's own certificate
        self.assertEqual(total, "2 of 4 certificates match 'shop' (0 expiring within 30 days, "
                                "0 expired)")
        self.assertEqual(self.lines("cert", "list", "--filter", "nothing-like-it"),
                         ["No certificates match 'nothing-like-it' (4 in all)."])
        self.assertEqual(self.names("cert", "list", "--filter", "nothing-like-it"), [])
        self.fails(INVALID, "cert", "list", "--filter", "x" * 300)

    def test_total_line(self):
        self.create("soon", days=10)
        self.create("fine", days=300)
        out = self.lines("cert", "list")
        # the appliance's own, soon and fine; one header
        self.assertEqual(len(out), 1 + 3 + 1)
        self.assertEqual(out[-1], "3 certificates (1 expiring within 30 days, 0 expired)")
        self.assertNotIn("certificates (", self.ok("--json", "cert", "list").out)
        self.assertEqual(self.lines("cert", "list", "--filter", "soon")[-1],
                         "1 of 3 certificates matches 'soon' (1 expiring within 30 days, "
                         "0 expired)")
        self.assertEqual(self.lines("ca", "list"), ["No CA certificates."])


if __name__ == "__main__":
    tglib.main()
