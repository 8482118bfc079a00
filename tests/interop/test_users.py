"""Users, roles, tokens and the audit log driven through the binary (issue 10, items 3-4).

The password hash is recomputed with Python's hashlib.scrypt (not our code) from the
salt and parameters stored beside it; the token is checked to be absent from every file
of the store, only its SHA-256 present.
"""
import base64
import glob
import hashlib
import json
import os
import pwd
import sqlite3
import time

from tglib import TgCase, main, OK, USAGE, INVALID, NOTFOUND, CONFLICT, PASSWORD
import tglib

PW = "correct horse battery staple"


class Users(TgCase):
    def setUp(self):
        super().setUp()
        self.pwfile = self.write("pw.txt", PW + "\n")

    def db(self):
        return sqlite3.connect(os.path.join(self.home, "store.db"))

    def users(self):
        return {u["name"]: u for u in self.ok("--json", "user", "list").json()}

    def audit(self, *args):
        return self.ok("--json", "audit", *args).json()

    def test_init_first_admin_once(self):
        r = self.ok("--json", "init")
        doc = r.json()
        self.assertEqual(doc["first_admin"], "admin")
        once = doc["first_admin_password"]
        self.assertRegex(once, r"^[A-Za-z0-9_-]{24}$")
        u = self.users()["admin"]
        self.assertEqual(u["role"], "Administrator")
        self.assertTrue(u["must_change"])
        # the password is the one stored: scrypt recomputed by hashlib
        self.check_hash("admin", once)
        # only once: a second init creates no user and shows no password
        doc2 = self.ok("--json", "init").json()
        self.assertIsNone(doc2["first_admin"])
        self.assertNotIn("first_admin_password", doc2)
        r = self.ok("init")
        self.assertNotIn("one-time", r.out)
        # never in the audit log
        self.assertNotIn(once, json.dumps(self.audit()))
        # passwd clears must_change
        self.ok("user", "passwd", "admin", "--password-file", self.pwfile)
        self.assertFalse(self.users()["admin"]["must_change"])
        self.check_hash("admin", PW)

    def test_no_user_then_init(self):
        # a store without users (here: after a factory reset) has none until init
        self.ok("init")
        self.ok("factory-reset", "--yes")
        self.assertEqual(self.users(), {})
        doc = self.ok("--json", "init").json()
        self.assertEqual(doc["first_admin"], "admin")

    def check_hash(self, name, password):
        con = self.db()
        try:
            stored = con.execute("SELECT password FROM users WHERE name=?", (name,)).fetchone()[0]
        finally:
            con.close()
        kind, n, r, p, salt, digest = stored.split("$")
        self.assertEqual((kind, n, r, p), ("scrypt", "32768", "8", "1"))
        salt, digest = base64.b64decode(salt), base64.b64decode(digest)
        self.assertEqual(len(salt), 16)
        want = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p),
                              maxmem=64 * 1024 * 1024, dklen=len(digest))
        self.assertEqual(want, digest)

    def test_add_list_role_del(self):
        self.ok("init")
        doc = self.ok("--json", "user", "add", "alice", "--role", "certificate manager",
                      "--password-file", self.pwfile).json()
        self.assertEqual(doc["role"], "Certificate manager")
        self.assertFalse(doc["must_change"])
        self.check_hash("alice", PW)
        # TLSGATE_PASSWORD works as elsewhere
        self.ok("user", "add", "bob", "--role", "AUDITOR", env={"TLSGATE_PASSWORD": PW + "!"})
        self.check_hash("bob", PW + "!")
        users = self.users()
        self.assertEqual(sorted(users), ["admin", "alice", "bob"])
        self.assertEqual(users["bob"]["role"], "Auditor")
        for key in ("created", "created_unix", "changed", "changed_unix", "disabled", "token_count"):
            self.assertIn(key, users["bob"])
        out = self.ok("user", "list").out
        self.assertIn("Certificate manager", out)
        self.assertNotIn("scrypt", out + json.dumps(users))
        doc = self.ok("--json", "user", "role", "bob", "inspection-manager").json()
        self.assertEqual(doc["role"], "Inspection manager")
        self.ok("user", "role", "alice", "Administrator")
        self.ok("user", "del", "admin")  # alice is an Administrator now
        self.assertEqual(sorted(self.users()), ["alice", "bob"])
        r = self.fails(CONFLICT, "user", "del", "alice")
        self.assertIn("last Administrator", r.err)
        self.fails(CONFLICT, "user", "role", "alice", "auditor")
        self.fails(CONFLICT, "user", "disable", "alice")
        self.ok("user", "disable", "bob")
        self.assertTrue(self.users()["bob"]["disabled"])
        self.ok("user", "enable", "bob")

    def test_wrong_inputs_change_nothing(self):
        self.ok("init")
        self.ok("user", "add", "alice", "--role", "auditor", "--password-file", self.pwfile)
        before = self.dump()
        short = self.write("short.txt", "elevenchars\n")
        cases = [
            (USAGE, ["user", "add", "carol", "--password-file", self.pwfile]),  # no --role
            (USAGE, ["user", "add", "--role", "auditor", "--password-file", self.pwfile]),
            (USAGE, ["user", "add", "carol", "--role", "auditor", "--label", "x",
                     "--password-file", self.pwfile]),
            (USAGE, ["user", "revoke", "alice", "one"]),
            (USAGE, ["user", "frobnicate", "alice"]),
            (USAGE, ["audit", "--limit", "x"]),
            (INVALID, ["user", "add", "carol", "--role", "superuser", "--password-file",
                       self.pwfile]),
            (INVALID, ["user", "add", "cli:carol", "--role", "auditor", "--password-file",
                       self.pwfile]),
            (INVALID, ["user", "add", "car\u202eol", "--role", "auditor", "--password-file",
                       self.pwfile]),
            (INVALID, ["user", "role", "alice", "boss"]),
            (INVALID, ["user", "token", "alice", "--days", "-1"]),
            (INVALID, ["user", "token", "alice", "--label", "a\tb"]),
            (INVALID, ["audit", "--since", "yesterday"]),
            (INVALID, ["audit", "--limit", "0"]),
            (NOTFOUND, ["user", "del", "nobody"]),
            (NOTFOUND, ["user", "passwd", "nobody", "--password-file", self.pwfile]),
            (NOTFOUND, ["user", "token", "nobody"]),
            (NOTFOUND, ["user", "revoke", "alice", "42"]),
            (NOTFOUND, ["user", "add", "carol", "--role", "auditor", "--password-file",
                        self.path("missing.txt")]),
            (CONFLICT, ["user", "add", "ALICE", "--role", "auditor", "--password-file",
                        self.pwfile]),
            (CONFLICT, ["user", "del", "admin"]),
            (PASSWORD, ["user", "add", "carol", "--role", "auditor", "--password-file", short]),
            (PASSWORD, ["user", "add", "carol", "--role", "auditor"]),  # no terminal, no file
            (PASSWORD, ["user", "passwd", "alice", "--password-file", short]),
        ]
        for status, args in cases:
            with self.subTest(args=args):
                r = self.fails(status, *args)
                self.assertNotIn(PW, r.err)
                self.assertEqual(self.dump(), before)
        # the refusals that reached the store are in the audit log, with no password
        rows = self.audit("--limit", "1000")
        self.assertNotIn(PW, json.dumps(rows))
        outcomes = {(r["action"], r["object"], r["outcome"]) for r in rows}
        self.assertIn(("user.add", "ALICE", "conflict"), outcomes)
        self.assertIn(("user.add", "carol", "password"), outcomes)
        self.assertIn(("user.del", "admin", "conflict"), outcomes)

    def test_token_once_and_hashed(self):
        self.ok("init")
        self.ok("user", "add", "ci", "--role", "certificate manager", "--password-file",
                self.pwfile)
        doc = self.ok("--json", "user", "token", "ci", "--label", "pipeline", "--days",
                      "30").json()
        token = doc["token"]
        self.assertRegex(token, r"^tg_[A-Za-z0-9_-]{43}$")
        self.assertEqual(doc["label"], "pipeline")
        self.assertAlmostEqual(doc["expires_unix"], time.time() + 30 * 86400, delta=120)
        human = self.ok("user", "token", "ci")
        second = [w for w in human.out.split() if w.startswith("tg_")]
        self.assertEqual(len(second), 1)
        self.assertNotEqual(second[0], token)
        # the list never shows a token
        rows = self.ok("--json", "user", "tokens", "ci").json()
        self.assertEqual([r["label"] for r in rows], ["pipeline", None])
        self.assertIsNone(rows[1]["expires"])
        listing = json.dumps(rows) + self.ok("user", "tokens", "ci").out
        self.assertNotIn(token[3:], listing)
        # only the SHA-256 is stored: the text is in no file of the store (WAL included)
        con = self.db()
        try:
            hashes = {bytes(h) for (h,) in con.execute("SELECT sha256 FROM tokens")}
            stored = "\n".join(con.iterdump())
        finally:
            con.close()
        self.assertIn(hashlib.sha256(token.encode()).digest(), hashes)
        self.assertNotIn(token[3:], stored)
        for f in glob.glob(os.path.join(self.home, "*")):
            with open(f, "rb") as fh:
                data = fh.read()
            self.assertNotIn(token[3:].encode(), data, f)
            self.assertNotIn(second[0][3:].encode(), data, f)
        # nor in the audit log, which has the token's id
        rows_a = self.audit()
        self.assertNotIn(token[3:], json.dumps(rows_a))
        made = [r for r in rows_a if r["action"] == "user.token"]
        self.assertEqual(sorted(r["detail"]["token_id"] for r in made), [1, 2])
        # revoke
        self.ok("user", "revoke", "ci", "1")
        self.assertEqual([r["id"] for r in self.ok("--json", "user", "tokens", "ci").json()], [2])
        self.fails(NOTFOUND, "user", "revoke", "ci", "1")
        # deleting the user deletes its tokens
        self.ok("user", "del", "ci")
        con = self.db()
        try:
            self.assertEqual(con.execute("SELECT count(*) FROM tokens").fetchone()[0], 0)
        finally:
            con.close()

    def test_audit_of_cli_changes(self):
        self.ok("init")
        self.ok("cert", "create", "web", "--cn", "web.example.com", "--key", "ec:p256")
        self.ok("cert", "list")  # read: not audited
        self.ok("cert", "show", "web")
        self.ok("cert", "export", "web", "--format", "pem", "--out", self.path("web.pem"))
        self.fails(NOTFOUND, "cert", "delete", "nothing")
        self.ok("truststore", "create", "ts1")
        self.ok("truststore", "list")
        self.ok("cert", "delete", "web")
        self.ok("user", "add", "alice", "--role", "auditor", "--password-file", self.pwfile)
        self.ok("user", "list")
        rows = self.audit()
        me = "cli:" + pwd.getpwuid(os.geteuid()).pw_name
        seen = [(r["action"], r["object"], r["outcome"]) for r in reversed(rows)]
        self.assertEqual(seen, [
            ("init", None, "ok"),
            ("cert.create", "web", "ok"),
            ("cert.export", "web", "ok"),
            ("cert.delete", "nothing", "not found"),
            ("truststore.create", "ts1", "ok"),
            ("cert.delete", "web", "ok"),
            ("user.add", "alice", "ok"),
        ])
        for r in rows:
            self.assertEqual(r["actor"], me)
            self.assertEqual(r["source"], "cli")
            self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        failed = [r for r in rows if r["outcome"] != "ok"][0]
        self.assertIn("nothing", failed["detail"]["error"])
        self.assertNotIn(PW, json.dumps(rows))
        # the human table, --limit, --since
        out = self.ok("audit").out
        self.assertIn("cert.create", out)
        self.assertEqual(len(self.audit("--limit", "2")), 2)
        self.assertEqual(self.audit("--limit", "2", "--offset", "5")[-1]["action"], "init")
        self.assertEqual(self.audit("--since", "2999-01-01T00:00:00Z"), [])
        self.assertEqual(len(self.audit("--since", "0")), len(rows))
        self.assertEqual(len(self.audit("--since", str(rows[-1]["time_unix"]))), len(rows))
        # a factory reset removes the users, keeps the log and is recorded in it
        self.ok("factory-reset", "--yes")
        self.assertEqual(self.users(), {})
        rows2 = self.audit()
        self.assertEqual(rows2[0]["action"], "factory-reset")
        self.assertEqual(len(rows2), len(rows) + 1)
        # the next init makes a new first administrator
        self.assertEqual(self.ok("--json", "init").json()["first_admin"], "admin")

    def on_terminal(self, args, answers):
        """Runs tlsgate with a controlling terminal (a pty), typing answers at its prompts;
        returns (exit status, what it wrote)."""
        import pty
        import select
        env = dict(os.environ)
        env.pop("TLSGATE_PASSWORD", None)
        env["TLSGATE_HOME"] = self.home
        from tglib import BIN
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(BIN, [BIN, *args], env)
        out, pending, seen = b"", list(answers), 0
        while True:
            r, _, _ = select.select([fd], [], [], 30)
            if not r:
                os.kill(pid, 9)  # a prompt never came: fail, never hang
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            # answer a new prompt only: the newline after an answer is not one (typed
            # early, the answer would be flushed by the next prompt's TCSAFLUSH)
            if pending and out[seen:].strip() and out.rstrip().endswith(b":"):
                os.write(fd, pending.pop(0).encode() + b"\n")
                out += b"\n"
                seen = len(out)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return os.waitstatus_to_exitcode(status), out.decode(errors="replace")

    def test_groups(self):
        self.ok("init")
        self.ok("user", "add", "ian", "--role", "inspection manager", "--password-file",
                self.pwfile)
        doc = self.ok("--json", "group", "create", "Branch").json()
        self.assertEqual(doc["name"], "Branch")
        self.assertEqual(doc["denied"], {"proxies": [], "policies": []})
        self.assertEqual(doc["users"], [])
        for key in ("created", "created_unix"):
            self.assertIn(key, doc)
        r = self.fails(CONFLICT, "group", "create", "branch")  # names alike without case
        self.assertIn("exists already", r.err)
        self.fails(INVALID, "group", "create", "bad\u202ename")
        # denials by name: a proxy or policy not made yet may be denied
        self.ok("group", "deny", "Branch", "--proxy", "p1")
        self.ok("group", "deny", "Branch", "--proxy", "p1")  # again: no change
        self.ok("group", "deny", "Branch", "--policy", "pol1")
        self.ok("group", "deny", "Branch", "--proxy", "p3")
        doc = self.ok("--json", "group", "allow", "Branch", "--proxy", "p3").json()
        self.assertEqual(doc["denied"], {"proxies": ["p1"], "policies": ["pol1"]})
        self.fails(USAGE, "group", "deny", "Branch")
        self.fails(USAGE, "group", "deny", "Branch", "--proxy", "a", "--policy", "b")
        r = self.fails(NOTFOUND, "group", "deny", "nope", "--proxy", "p1")
        self.assertIn("no group is named 'nope'", r.err)
        self.fails(NOTFOUND, "group", "show", "nope")
        self.fails(NOTFOUND, "group", "delete", "nope")
        # a user's group
        self.assertIsNone(self.users()["ian"]["group"])
        doc = self.ok("--json", "user", "group", "ian", "branch").json()
        self.assertEqual(doc["group"], "Branch")
        self.fails(NOTFOUND, "user", "group", "ian", "nope")
        self.fails(NOTFOUND, "user", "group", "nobody", "Branch")
        self.fails(USAGE, "user", "group", "ian")
        self.fails(USAGE, "user", "group", "ian", "Branch", "--none")
        doc = self.ok("--json", "group", "show", "Branch").json()
        self.assertEqual(doc["users"], ["ian"])
        self.assertEqual(doc["denied"]["proxies"], ["p1"])
        out = self.ok("group", "show", "Branch").out
        self.assertIn("p1", out)
        self.assertIn("ian", out)
        self.assertEqual([g["name"] for g in self.ok("--json", "group", "list").json()],
                         ["Branch"])
        self.assertIn("Branch", self.ok("user", "list").out)
        doc = self.ok("--json", "user", "group", "ian", "--none").json()
        self.assertIsNone(doc["group"])
        self.ok("user", "group", "ian", "Branch")
        # deleting the group leaves its users in none, and its denials go with it
        self.ok("group", "delete", "BRANCH")
        self.assertIsNone(self.users()["ian"]["group"])
        self.assertEqual(self.ok("--json", "group", "list").json(), [])
        con = self.db()
        try:
            self.assertEqual(con.execute("SELECT count(*) FROM group_denied").fetchone()[0], 0)
        finally:
            con.close()
        # every change audited, with what was denied
        rows = [r for r in self.audit() if r["action"].startswith("group.")]
        deny = [r for r in rows if r["action"] == "group.deny" and r["outcome"] == "ok"]
        self.assertTrue(any((r.get("detail") or {}).get("policy") == "pol1" for r in deny), deny)
        self.assertIn(("group.delete", "BRANCH", "ok"),
                      [(r["action"], r["object"], r["outcome"]) for r in rows])

    def test_schema_7_store_is_upgraded(self):
        self.ok("init")
        self.ok("user", "add", "ian", "--role", "auditor", "--password-file", self.pwfile)
        con = self.db()
        con.executescript(tglib.DROP_SINCE_9 + """
            PRAGMA foreign_keys = OFF;
            DROP INDEX users_group;
            CREATE TABLE users7 (
              id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
              role TEXT NOT NULL, password TEXT NOT NULL, must_change INTEGER NOT NULL,
              disabled INTEGER NOT NULL, created INTEGER NOT NULL, changed INTEGER NOT NULL);
            INSERT INTO users7 SELECT id, name, role, password, must_change, disabled, created,
              changed FROM users;
            DROP TABLE users;
            ALTER TABLE users7 RENAME TO users;
            DROP TABLE group_denied; DROP TABLE groups;
            PRAGMA user_version = 7;
        """)
        con.commit()
        con.close()
        self.assertIsNone(self.users()["ian"]["group"])
        self.ok("group", "create", "g")
        self.ok("user", "group", "ian", "g")
        con = self.db()
        try:
            self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0],
                             tglib.SCHEMA_VERSION)
        finally:
            con.close()

    def test_password_asked_twice_on_a_terminal(self):
        self.ok("init")
        rc, out = self.on_terminal(["user", "add", "tty", "--role", "auditor"], [PW, PW])
        self.assertEqual(rc, OK, out)
        self.assertIn("New password for tty:", out)
        self.assertIn("Repeat", out)
        self.assertNotIn(PW, out)  # not echoed
        self.check_hash("tty", PW)
        rc, out = self.on_terminal(["user", "passwd", "tty"], [PW + "1", PW + "2"])
        self.assertEqual(rc, PASSWORD, out)
        self.assertIn("differ", out)
        self.check_hash("tty", PW)

    def test_password_prompt_needs_a_terminal(self):
        # no file, no environment, no terminal: refused before anything is stored
        self.ok("init")
        r = self.fails(PASSWORD, "user", "add", "dan", "--role", "auditor")
        self.assertIn("--password-file", r.err)
        self.assertNotIn("dan", self.users())


if __name__ == "__main__":
    main()
