"""End-to-end: serve sends the chain stored with each certificate's status (issue 9,
"First, make room").

A certificate's chain is built when its status is computed (import, and every recompute:
CA import/replace/reissue/delete, refresh) and stored as ids; serve loads a certificate
with one query and one unseal and never builds a chain. Checked with `openssl s_client
-showcerts` verifying against the root:
  * the stored chain (the intermediate, not the root) is sent;
  * after the intermediate is reissued (same key and subject) the new copy is sent within
    a second, and after it is deleted the leaf goes alone (missing intermediate);
  * a stored chain that names a certificate that is gone, or one that did not issue the
    leaf (a store edited behind tlsgate's back), is cut short: never a crash, never a
    wrong certificate.
"""
import os
import random
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve import CHAIN_CNF, ServeCase  # noqa: E402
import tglib  # noqa: E402  (test_serve put tests/interop on the path)

NAME = "chain.example.com"
INTER = "tlsgate e2e intermediate"  # the CA name derived from its CN


class TestStoredChain(ServeCase):

    def make(self, stem, issuer, ext, cn, days):
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        cnf = self.path("chain.cnf")
        if issuer is None:
            self.sh("openssl", "req", "-x509", "-config", cnf, "-extensions", ext, *newkey,
                    "-keyout", stem + ".key", "-out", stem + ".pem", "-days", str(days),
                    "-sha256", "-subj", "/CN=" + cn)
            return
        self.sh("openssl", "req", "-new", "-config", cnf, *newkey, "-keyout", stem + ".key",
                "-out", stem + ".csr", "-subj", "/CN=" + cn)
        self.sh("openssl", "x509", "-req", "-in", stem + ".csr", "-CA", issuer + ".pem",
                "-CAkey", issuer + ".key", "-set_serial", str(random.randrange(1 << 60)),
                "-days", str(days), "-sha256", "-extfile", cnf, "-extensions", ext,
                "-out", stem + ".pem")

    def sent(self, port):
        """The fingerprints serve sends for NAME, after openssl verified them (or not)
        against the root: (verified, [fingerprints])."""
        p, certs = self.s_client(port, NAME, "-CAfile", self.path("root.pem"),
                                 "-verify_hostname", NAME)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        return "Verify return code: 0 (ok)" in p.stdout, [self.x509_fp(c) for c in certs]

    def chain_ids(self, name):
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        try:
            return con.execute("SELECT chain_ids FROM certs WHERE name=?", (name,)).fetchone()[0]
        finally:
            con.close()

    def edit(self, sql, *args):
        con = sqlite3.connect(os.path.join(self.home, "store.db"), timeout=10)
        try:
            con.execute(sql, args)
            con.commit()
        finally:
            con.close()

    def make_pki(self):
        """root → inter → leaf, and "other" (also under root), made by openssl; returns
        the fingerprints of leaf and inter as openssl computes them."""
        self.write("chain.cnf", CHAIN_CNF)
        self.make("root", None, "v3_root", "tlsgate e2e root", 30)
        self.make("inter", "root", "v3_inter", "tlsgate e2e intermediate", 20)
        self.make("leaf", "inter", "v3_leaf", NAME, 10)
        self.make("other", "root", "v3_inter", "tlsgate e2e other", 20)
        fps = []
        for stem in ("leaf", "inter"):
            with open(self.path(stem + ".pem")) as f:
                fps.append(self.x509_fp(f.read()))
        return fps

    def test_stored_chain_is_sent_and_follows_the_cas(self):
        leaf, inter = self.make_pki()
        self.ok("ca", "import", self.path("root.pem"))
        self.ok("cert", "import", self.path("inter.pem"), "--key", self.path("inter.key"))
        self.ok("cert", "import", self.path("leaf.pem"), "--key", self.path("leaf.key"),
                "--name", "chainleaf")
        self.assertEqual(self.show("chainleaf")["chain_status"], "valid")
        srv = self.serve()

        # 1. the stored chain: leaf and intermediate, verified against the root
        ok, fps = self.sent(srv.port)
        self.assertTrue(ok)
        self.assertEqual(fps, [leaf, inter])

        # 2. the intermediate reissued by the root (same key and subject, later expiry) and
        # imported: the import's recompute rebuilds the chain, and serve sends the new
        # copy within a second
        self.sh("openssl", "x509", "-req", "-in", self.path("inter.csr"), "-CA",
                self.path("root.pem"), "-CAkey", self.path("root.key"), "-set_serial",
                str(random.randrange(1 << 60)), "-days", "25", "-sha256", "-extfile",
                self.path("chain.cnf"), "-extensions", "v3_inter", "-out",
                self.path("inter2.pem"))
        with open(self.path("inter2.pem")) as f:
            inter2 = self.x509_fp(f.read())
        self.assertNotEqual(inter2, inter)
        self.ok("ca", "import", self.path("inter2.pem"))
        inter2_name = [c["name"] for c in self.ok("--json", "ca", "list").json()
                       if c["sha256"].upper() == inter2][0]
        took = self.wait_for("the reissued intermediate is sent",
                             lambda: self.sent(srv.port) == (True, [leaf, inter2]), 1.0 * SLOW)
        sys.stderr.write(f"[reissued intermediate sent after {took:.2f} s] ")

        # 3. both copies deleted: the leaf goes alone, its status says why
        self.ok("ca", "delete", inter2_name)
        self.ok("ca", "delete", INTER)
        self.assertEqual(self.chain_ids("chainleaf"), "[]")
        self.assertEqual(self.show("chainleaf")["chain_status"], "missing intermediate")
        self.wait_for("the leaf is sent alone", lambda: self.sent(srv.port) == (False, [leaf]),
                      1.0 * SLOW)

    def test_a_stale_stored_chain_is_cut_short(self):
        """Rows edited behind tlsgate's back (no recompute): a member that is gone, or one
        that did not issue the certificate below it, ends the chain there."""
        leaf, inter = self.make_pki()
        self.ok("ca", "import", self.path("root.pem"), self.path("inter.pem"))
        self.ok("ca", "import", self.path("other.pem"))
        self.ok("cert", "import", self.path("leaf.pem"), "--key", self.path("leaf.key"),
                "--name", "chainleaf")
        good = self.chain_ids("chainleaf")
        srv = self.serve()
        self.assertEqual(self.sent(srv.port), (True, [leaf, inter]))

        # an id that no longer exists (and then a valid member after it)
        self.edit("UPDATE certs SET chain_ids=? WHERE name='chainleaf'",
                  "[999999," + good.strip("[]") + "]")
        self.wait_for("a missing member ends the chain",
                      lambda: self.sent(srv.port) == (False, [leaf]), 1.0 * SLOW)
        # another CA, which did not issue the leaf
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        other_id = con.execute("SELECT id FROM certs WHERE subject_cn='tlsgate e2e other'"
                               ).fetchone()[0]
        con.close()
        self.edit("UPDATE certs SET chain_ids=? WHERE name='chainleaf'", f"[{other_id}]")
        self.wait_for("a member that is not the issuer ends the chain",
                      lambda: self.sent(srv.port) == (False, [leaf]), 1.0 * SLOW)
        # damaged text
        self.edit("UPDATE certs SET chain_ids='[1,' WHERE name='chainleaf'")
        self.wait_for("a damaged list is no chain",
                      lambda: self.sent(srv.port) == (False, [leaf]), 1.0 * SLOW)
        # a refresh puts the right chain back
        self.ok("refresh")
        self.assertEqual(self.chain_ids("chainleaf"), good)
        self.wait_for("refresh restores the chain",
                      lambda: self.sent(srv.port) == (True, [leaf, inter]), 1.0 * SLOW)


SLOW = 4 if tglib.is_asan() else 1

if __name__ == "__main__":
    tglib.main()
