"""The management API (issue 10; docs/api.md), driven with curl over TLS.

serve runs with --admin on a free port; curl checks the admin certificate against the
default certificate exported by the CLI (no -k), sends a bearer token made by `tlsgate
user token`, and every answer is compared with what the CLI says of the same object: the
API and `--json` print one document.
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
import tglib  # noqa: E402
from test_serve import SLOW, ServeCase  # noqa: E402

REQUEST_SECS = 15  # TG_API_REQUEST_SECS


class ApiCase(ServeCase):
    def setUp(self):
        super().setUp()
        self.ok("init")
        self.ca = self.path("admin-ca.pem")
        self.ok("cert", "export", "appliance default", "--format", "pem", "--out", self.ca)
        self.aport = None
        self.tokens = {}

    def start(self):
        for _ in range(5):
            self.aport = tglib.free_port()
            srv = self.serve("--admin", f"127.0.0.1:{self.aport}")
            deadline = time.monotonic() + 10 * SLOW
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.aport), timeout=0.5).close()
                    return srv
                except OSError:
                    if srv.proc.poll() is not None:
                        break
                    time.sleep(0.05)
            self.stop(srv)
            self.servers.remove(srv)
        self.fail("the admin listener did not accept")

    def user(self, name, role):
        """A user of that role and a token for it."""
        pw = self.write(f"{name}.pw", "correct horse battery staple\n")
        self.ok("user", "add", name, "--role", role, "--password-file", pw)
        self.tokens[name] = self.ok("--json", "user", "token", name).json()["token"]
        return self.tokens[name]

    def api(self, method, path, body=None, token=None, raw=None, headers=(), jar=None):
        """(HTTP status, parsed JSON or text) of one request made by curl (jar: a cookie
        file curl reads and writes, as a browser keeps its cookies)."""
        argv = ["curl", "-sS", "--max-time", str(20 * SLOW), "--cacert", self.ca, "-X", method,
                "-o", self.path("body.out"), "-w", "%{http_code}", "-D", self.path("head.out")]
        if jar:
            argv += ["-b", jar, "-c", jar]
        if token:
            argv += ["-H", f"Authorization: Bearer {token}"]
        for h in headers:
            argv += ["-H", h]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
            raw = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else body
        elif raw is not None:
            argv += ["--data-binary", "@-"]
        if isinstance(raw, str):
            raw = raw.encode()
        argv.append(f"https://127.0.0.1:{self.aport}{path}")
        p = subprocess.run(argv, input=raw, capture_output=True, timeout=40 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("body.out"), "rb") as f:
            data = f.read()
        try:
            doc = json.loads(data)
        except ValueError:
            doc = data.decode(errors="replace")
        return int(p.stdout), doc

    def headers_out(self):
        """The last answer's header lines, lower-cased names."""
        with open(self.path("head.out")) as f:
            return [ln.strip() for ln in f if ":" in ln]

    def assert_error(self, got, status, name, field=None):
        code, doc = got
        self.assertEqual(code, status, doc)
        self.assertEqual(doc["error"], name, doc)
        self.assertTrue(len(doc["message"]) > 10, doc)
        if field:
            self.assertEqual(doc.get("field"), field, doc)
        return doc

    def count(self):
        return len(self.ok("--json", "cert", "list").json())


class TestApi(ApiCase):
    def test_tls_and_tokens(self):
        """The admin listener speaks TLS with the default certificate (checked by curl and
        by openssl), answers nothing without a valid token, and its status counts what the
        CLI counts."""
        self.start()
        admin = self.user("api-admin", "Administrator")
        p, certs = self.s_client(self.aport, None)
        self.assertEqual(self.x509_fp(certs[0]), self.fp("appliance default"))
        for tok in (None, "tg_" + "A" * 43, admin[:-1] + ("A" if admin[-1] != "A" else "B")):
            self.assert_error(self.api("GET", "/api/v1/status", token=tok), 401, "unauthorized")
        code, doc = self.api("GET", "/api/v1/status", token=admin)
        self.assertEqual(code, 200, doc)
        self.assertEqual(doc["certificates"], self.count())
        self.assertEqual(doc["version"], self.ok("--version").out.split()[-1])
        # plain HTTP on the admin port gets no answer
        p = subprocess.run(["curl", "-sS", "--max-time", "5",
                            f"http://127.0.0.1:{self.aport}/api/v1/status"],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)

    def test_certificates(self):
        """Create, show, make default, delete: the CLI sees each change, the API's
        documents are the CLI's, refusals carry the CLI's sentence and field."""
        self.start()
        tok = self.user("certs", "Certificate manager")
        code, doc = self.api("POST", "/api/v1/certificates", {
            "name": "web", "cn": "web.example.com", "san": ["DNS:www.example.com"],
            "key": "ec:p256", "days": 90}, token=tok)  # far from the 30-day warning
        self.assertEqual(code, 201, doc)
        cli = self.ok("--json", "cert", "show", "web").json()
        code, api = self.api("GET", "/api/v1/certificates/web", token=tok)
        self.assertEqual((code, api), (200, cli))
        self.assertEqual(doc, cli)
        # the certificate is what openssl reads from the CLI's export
        pem = self.path("web.pem")
        self.ok("cert", "export", "web", "--format", "pem", "--out", pem)
        text = self.sh("openssl", "x509", "-in", pem, "-noout", "-ext", "subjectAltName").stdout
        self.assertIn("DNS:www.example.com", text)
        # a name with a space, percent-encoded
        code, api = self.api("GET", "/api/v1/certificates/appliance%20default", token=tok)
        self.assertEqual(api, self.ok("--json", "cert", "show", "appliance default").json())
        # the default, then a refused delete with the CLI's sentence
        code, doc = self.api("POST", "/api/v1/certificates/web/default", token=tok)
        self.assertEqual(code, 200, doc)
        self.assertTrue(self.ok("--json", "cert", "show", "web").json()["default"])
        before = self.count()
        doc = self.assert_error(self.api("DELETE", "/api/v1/certificates/web", token=tok), 409,
                                "conflict")
        r = self.fails(tglib.CONFLICT, "cert", "delete", "web")
        self.assertIn(doc["message"], r.err)
        self.assertEqual(doc["exit_status"], tglib.CONFLICT)
        self.assertEqual(self.count(), before)
        self.ok("cert", "default", "appliance default")
        code, doc = self.api("DELETE", "/api/v1/certificates/web", token=tok)
        self.assertEqual((code, doc), (200, {"deleted": "web"}))
        self.assertEqual(self.count(), before - 1)
        self.assert_error(self.api("GET", "/api/v1/certificates/web", token=tok), 404,
                          "not_found")
        # a field the keyring refuses is named as the member
        self.assert_error(self.api("POST", "/api/v1/certificates",
                                   {"name": "bad", "cn": "bad.example", "days": 0}, token=tok),
                          400, "invalid", "days")

    def test_pages(self):
        """100,000 certificates must not be one answer: pages follow each other by name."""
        for i in range(23):
            self.ok("cert", "create", f"page-{i:02d}", "--cn", f"p{i}.paging.example", "--key",
                    "ec:p256", "--days", "30")
        self.start()
        tok = self.user("reader", "Auditor")
        names, after, total = [], None, None
        for _ in range(10):
            q = "/api/v1/certificates?limit=5" + (f"&after={after}" if after else "")
            code, doc = self.api("GET", q, token=tok)
            self.assertEqual(code, 200, doc)
            total = doc["total"]
            names += [row["name"] for row in doc["items"]]
            after = doc.get("next")
            if after is None:
                break
        cli = [row["name"] for row in self.ok("--json", "cert", "list").json()]
        self.assertEqual(names, cli)
        self.assertEqual(total, len(cli))
        code, doc = self.api("GET", "/api/v1/certificates?q=P1&limit=100", token=tok)
        self.assertEqual(sorted(r["name"] for r in doc["items"]),
                         [f"page-{i:02d}" for i in [1] + list(range(10, 20))])
        self.assert_error(self.api("GET", "/api/v1/certificates?limit=1001", token=tok), 400,
                          "usage", "limit")

    def test_bad_requests(self):
        """Broken JSON, wrong types, unknown members, a 20 MiB body, unknown paths and
        methods: clear errors, and the store unchanged."""
        self.start()
        tok = self.user("certs", "Certificate manager")
        before = self.count()
        self.assert_error(self.api("POST", "/api/v1/certificates", raw="{bad", token=tok,
                                   headers=["Content-Type: application/json"]), 400, "usage")
        self.assert_error(self.api("POST", "/api/v1/certificates", [1, 2], token=tok), 400,
                          "usage")
        self.assert_error(self.api("POST", "/api/v1/certificates",
                                   {"name": "x", "cn": "x.example", "days": "30"}, token=tok),
                          400, "usage", "days")
        self.assert_error(self.api("POST", "/api/v1/certificates",
                                   {"name": "x", "cn": "x.example", "san": "DNS:a"}, token=tok),
                          400, "usage", "san")
        self.assert_error(self.api("POST", "/api/v1/certificates",
                                   {"name": "x", "cn": "x.example", "dayz": 30}, token=tok),
                          400, "usage", "dayz")
        self.assert_error(self.api("POST", "/api/v1/certificates", {"cn": "x"}, token=tok),
                          400, "usage", "name")
        code, _ = self.api("POST", "/api/v1/certificates", raw=b"{" + b" " * (20 << 20) + b"}",
                           token=tok, headers=["Content-Type: application/json"])
        self.assertEqual(code, 413)
        self.assert_error(self.api("GET", "/api/v1/nothing", token=tok), 404, "not_found")
        self.assert_error(self.api("PUT", "/api/v1/certificates", token=tok), 405, "usage")
        self.assertEqual(self.count(), before)
        # the listener still serves
        self.assertEqual(self.api("GET", "/api/v1/status", token=tok)[0], 200)

    def test_roles(self):
        """An Auditor reads and changes nothing; an Inspection manager cannot touch
        certificates; a Certificate manager can."""
        self.start()
        aud = self.user("aud", "Auditor")
        insp = self.user("insp", "Inspection manager")
        cm = self.user("cm", "Certificate manager")
        spec = {"name": "r1", "cn": "r1.example", "key": "ec:p256"}
        for tok in (aud, insp):
            self.assertEqual(self.api("GET", "/api/v1/certificates", token=tok)[0], 200)
            self.assert_error(self.api("POST", "/api/v1/certificates", spec, token=tok), 403,
                              "forbidden")
            self.assert_error(self.api("DELETE", "/api/v1/certificates/appliance%20default",
                                       token=tok), 403, "forbidden")
            self.assert_error(self.api("POST", "/api/v1/refresh", token=tok), 403, "forbidden")
        self.ok("cert", "show", "appliance default")
        self.fails(tglib.NOTFOUND, "cert", "show", "r1")
        self.assertEqual(self.api("POST", "/api/v1/certificates", spec, token=cm)[0], 201)

    def test_audit(self):
        """Every change made through the API is in the audit log with its user, its source
        and its outcome, refusals too, and no token in it."""
        self.start()
        tok = self.user("auditme", "Certificate manager")
        self.api("POST", "/api/v1/certificates", {"name": "a1", "cn": "a1.example",
                                                  "key": "ec:p256"}, token=tok)
        self.api("DELETE", "/api/v1/certificates/appliance%20default", token=tok)
        rows = self.ok("--json", "audit").json()
        rows = rows["items"] if isinstance(rows, dict) else rows
        mine = [r for r in rows if r["actor"] == "auditme"][::-1]  # the log lists newest first
        self.assertEqual([(r["action"], r["object"], r["outcome"]) for r in mine][-2:],
                         [("cert.create", "a1", "ok"),
                          ("cert.delete", "appliance default", "conflict")])
        self.assertTrue(all(r["source"] == "api 127.0.0.1" for r in mine), mine)
        with open(os.path.join(self.home, "store.db"), "rb") as f:
            self.assertNotIn(tok.encode(), f.read())

    def test_request_deadline(self):
        """A client that drips its request is cut at the deadline, and others are served
        meanwhile."""
        self.start()
        tok = self.user("x", "Auditor")
        ctx = ssl.create_default_context(cafile=self.ca)
        raw = socket.create_connection(("127.0.0.1", self.aport), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        s.settimeout(1)
        t0 = time.monotonic()
        closed = None
        head = b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
        for i in range(len(head) + 200):
            try:
                s.send(head[i:i + 1] if i < len(head) else b"a")
                if s.recv(1) == b"":
                    closed = time.monotonic() - t0
                    break
            except (socket.timeout, TimeoutError):
                pass
            except (ssl.SSLError, OSError):
                closed = time.monotonic() - t0
                break
            if i == 3:
                self.assertEqual(self.api("GET", "/api/v1/status", token=tok)[0], 200)
            if time.monotonic() - t0 > REQUEST_SECS + 10 * SLOW:
                break
        s.close()
        self.assertIsNotNone(closed, "a dripping client was never cut")
        self.assertLess(closed, REQUEST_SECS + 5 * SLOW)
        self.assertGreater(closed, REQUEST_SECS - 1)


class TestSession(ApiCase):
    """Console sessions: a password login, an HttpOnly Secure SameSite=Strict cookie, a
    CSRF token on every change, the one-time password changed first, rate-limited logins."""

    def login(self, user, password, jar):
        return self.api("POST", "/api/v1/session", {"user": user, "password": password},
                        jar=jar)

    def test_login_cookie_csrf_logout(self):
        self.start()
        self.user("web", "Certificate manager")
        jar = self.path("jar")
        code, doc = self.login("web", "correct horse battery staple", jar)
        self.assertEqual(code, 201, doc)
        self.assertEqual((doc["user"], doc["role"], doc["must_change"]),
                         ("web", "Certificate manager", False))
        cookie = [h for h in self.headers_out() if h.lower().startswith("set-cookie:")]
        self.assertEqual(len(cookie), 1, cookie)
        for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            self.assertIn(flag, cookie[0])
        csrf = doc["csrf_token"]
        # reads need only the cookie; a change needs the CSRF token too
        self.assertEqual(self.api("GET", "/api/v1/certificates", jar=jar)[0], 200)
        spec = {"name": "s1", "cn": "s1.example", "key": "ec:p256"}
        self.assert_error(self.api("POST", "/api/v1/certificates", spec, jar=jar), 400, "usage")
        self.assert_error(self.api("POST", "/api/v1/certificates", spec, jar=jar,
                                   headers=["X-CSRF-Token: " + "x" * len(csrf)]), 400, "usage")
        self.fails(tglib.NOTFOUND, "cert", "show", "s1")
        code, doc = self.api("POST", "/api/v1/certificates", spec, jar=jar,
                             headers=["X-CSRF-Token: " + csrf])
        self.assertEqual(code, 201, doc)
        self.assertEqual(self.api("GET", "/api/v1/session", jar=jar)[1]["csrf_token"], csrf)
        # the session follows the user: a demotion takes effect at once
        self.ok("user", "role", "web", "auditor")
        self.assert_error(self.api("DELETE", "/api/v1/certificates/s1", jar=jar,
                                   headers=["X-CSRF-Token: " + csrf]), 403, "forbidden")
        # logout ends it; the old cookie is worth nothing
        with open(jar) as f:
            old = f.read()
        code, _ = self.api("DELETE", "/api/v1/session", jar=jar, headers=["X-CSRF-Token: " + csrf])
        self.assertEqual(code, 200)
        stale = self.write("stale", old)
        self.assert_error(self.api("GET", "/api/v1/status", jar=stale), 401, "unauthorized")
        # a disabled user's session ends
        self.ok("user", "role", "web", "certificate-manager")
        self.assertEqual(self.login("web", "correct horse battery staple", jar)[0], 201)
        self.ok("user", "disable", "web")
        self.assert_error(self.api("GET", "/api/v1/status", jar=jar), 401, "unauthorized")
        # the audit log has the logins, never the password
        rows = self.ok("--json", "audit").json()
        rows = rows["items"] if isinstance(rows, dict) else rows
        self.assertIn(("session.login", "web", "ok"),
                      [(r["action"], r["actor"], r["outcome"]) for r in rows])
        self.assertNotIn("correct horse", json.dumps(rows))

    def test_one_time_password_first(self):
        """The first administrator's one-time password logs in, and nothing else works
        until it is changed."""
        self.ok("factory-reset", "--yes")
        pw = self.ok("--json", "init").json()["first_admin_password"]
        self.ok("cert", "export", "appliance default", "--format", "pem", "--out", self.ca,
                "--force")  # the reset made a new default certificate
        self.start()
        jar = self.path("jar")
        code, doc = self.login("admin", pw, jar)
        self.assertEqual((code, doc["must_change"]), (201, True), doc)
        self.assert_error(self.api("GET", "/api/v1/certificates", jar=jar), 403,
                          "password_change_required")
        self.assertEqual(self.api("GET", "/api/v1/session", jar=jar)[0], 200)

    def test_login_rate_limit(self):
        """Five wrong passwords from one address lock it out for a minute, the right one
        included; the store is not touched by a refused login."""
        self.start()
        self.user("rl", "Auditor")
        jar = self.path("jar")
        for _ in range(5):
            self.assert_error(self.login("rl", "wrong password here", jar), 401, "unauthorized")
        self.assert_error(self.login("rl", "correct horse battery staple", jar), 429,
                          "too_many_logins")
        retry = [h for h in self.headers_out() if h.lower().startswith("retry-after:")]
        self.assertTrue(retry and 0 < int(retry[0].split(":")[1]) <= 60, retry)
        # an unknown user is refused like a wrong password
        other = self.path("jar2")
        code, doc = self.api("POST", "/api/v1/session", {"user": "nobody", "password": "x" * 12},
                             jar=other)
        self.assertIn(code, (401, 429), doc)


if __name__ == "__main__":
    tglib.main()
