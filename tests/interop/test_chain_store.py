"""Interop: the chain built with each certificate's status is stored as ids (schema 4,
certs.chain_ids; issue 9 "First, make room"), read back from the store file with Python's
sqlite3. The chains are made by the openssl CLI and checked with `openssl verify`.

  * leaf + intermediate + root: the leaf's stored chain is [intermediate] (the root is not
    stored: serve does not send it), the intermediate's and root's are [];
  * deleting the intermediate recomputes: [] and "missing intermediate";
  * members from the default CA package are stored as minus their row in default_cas,
    and follow `truststore update-defaults`;
  * a store from schema 3 gets its chains on first open, equal to freshly computed ones.
"""
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402
from tglib import TgCase  # noqa: E402
import test_chains  # noqa: E402  (its helpers; a bare import keeps its tests out)


class ChainStore(TgCase):
    # the openssl helpers of test_chains, without its tests
    make_root = test_chains.Chains.make_root
    make_int = test_chains.Chains.make_int
    make_leaf = test_chains.Chains.make_leaf
    make_chain = test_chains.Chains.make_chain
    verify = test_chains.Chains.verify

    def db(self):
        return sqlite3.connect(os.path.join(self.home, "store.db"), timeout=10)

    def rows(self):
        """{subject CN: (id, chain ids or None, status)}"""
        con = self.db()
        try:
            return {cn: (i, None if ids is None else json.loads(ids), st)
                    for i, cn, ids, st in con.execute(
                        "SELECT id, subject_cn, chain_ids, status FROM certs")}
        finally:
            con.close()

    def test_1_chain_stored_and_recomputed(self):
        c = self.make_chain("Store")
        self.ok("cert", "import", c["leaf"], "--key", c["leaf_key"])
        self.ok("ca", "import", c["int"], c["root"])
        r = self.rows()
        leaf, inter, root = r["leaf.example.com"], r[c["int_cn"]], r[c["root_cn"]]
        self.assertEqual(leaf[1], [inter[0]], r)  # root not stored: serve does not send it
        self.assertEqual(leaf[2], "valid")
        self.assertEqual(inter[1], [])
        self.assertEqual(root[1], [])
        ok, out = self.verify(c["leaf"], c["root"], [c["int"]])
        self.assertTrue(ok, out)

        self.ok("ca", "delete", c["int_cn"])
        r = self.rows()
        self.assertNotIn(c["int_cn"], r)
        self.assertEqual(r["leaf.example.com"][1], [])
        self.assertEqual(r["leaf.example.com"][2], "missing intermediate")
        self.assertEqual(self.show("leaf.example.com")["chain_status"], "missing intermediate")

        # back again: the recompute of the CA import stores the new row's id
        self.ok("ca", "import", c["int"])
        r = self.rows()
        self.assertEqual(r["leaf.example.com"][1], [r[c["int_cn"]][0]])
        self.assertEqual(r["leaf.example.com"][2], "valid")

    def test_2_default_ca_members(self):
        c = self.make_chain("Package")
        bundle = self.write("bundle.pem", self.rd(c["root"]) + self.rd(c["int"]))
        self.ok("truststore", "update-defaults", env={"TLSGATE_CA_BUNDLE": bundle})
        self.ok("cert", "import", c["leaf"], "--key", c["leaf_key"])
        con = self.db()
        rowid = con.execute("SELECT rowid FROM default_cas WHERE subject LIKE ?",
                            (f"%CN={c['int_cn']}%",)).fetchone()[0]
        con.close()
        r = self.rows()
        self.assertEqual(r["leaf.example.com"][1], [-rowid])
        self.assertEqual(r["leaf.example.com"][2], "valid")
        # a package without the intermediate: recomputed with the reload
        only_root = self.write("root-only.pem", self.rd(c["root"]))
        self.ok("truststore", "update-defaults", env={"TLSGATE_CA_BUNDLE": only_root})
        r = self.rows()
        self.assertEqual(r["leaf.example.com"][1], [])
        self.assertEqual(r["leaf.example.com"][2], "missing intermediate")

    def test_3_schema_3_store_gets_its_chains(self):
        c = self.make_chain("Upgrade")
        self.ok("cert", "import", c["leaf"], "--key", c["leaf_key"])
        self.ok("ca", "import", c["int"], c["root"])
        want = self.rows()
        con = self.db()
        con.executescript("""
            DROP TABLE acme_challenges; DROP TABLE acme_certs; DROP TABLE acme_accounts;
            DROP TABLE tokens; DROP TABLE users; DROP TABLE audit;
            DROP TABLE group_denied; DROP TABLE groups;
            DROP TABLE proxies;
            DROP TABLE policy_entries; DROP TABLE policies;
            DROP TABLE default_domains; DROP TABLE categories;
            DROP INDEX certs_chain_unfilled;
            ALTER TABLE certs DROP COLUMN chain_ids;
            UPDATE certs SET status = 'stale';
            PRAGMA user_version = 3;
        """)
        con.commit()
        con.close()
        self.ok("cert", "list")
        con = self.db()
        self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0], 9)
        con.close()
        self.assertEqual(self.rows(), want)


if __name__ == "__main__":
    tglib.main()
