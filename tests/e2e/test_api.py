"""The management API (issue 10; docs/api.md), driven with curl over TLS.

serve runs with --admin on a free port; curl checks the admin certificate against the
default certificate exported by the CLI (no -k), sends a bearer token made by `tlsgate
user token`, and every answer is compared with what the CLI says of the same object: the
API and `--json` print one document. Files that leave through the API are read by openssl
(x509, pkey, pkcs12, req); files that arrive are made by openssl and sent by curl, raw
(--data-binary) and as multipart form data (-F). Every JSON answer of every test here is
validated against the OpenAPI document (docs/openapi.json, which the API serves) with
python's jsonschema (OpenAPI 3.1 schemas are JSON Schema 2020-12).
"""
import glob
import json
import os
import re
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
OPENAPI_PATH = os.path.join(tglib.ROOT, "docs", "openapi.json")
with open(OPENAPI_PATH) as _f:
    OPENAPI = json.load(_f)
try:
    import jsonschema
except ImportError:  # Debian python3-jsonschema; CI installs it (scripts/bootstrap.sh)
    jsonschema = None


def openapi_schema(method, path, code):
    """The schema OpenAPI gives for this answer: (schema, why) with schema None when the
    document names no JSON answer (a file, /metrics) and why saying what is missing."""
    p = path.split("?", 1)[0]
    if not p.startswith("/api/v1/"):
        return None, None  # /metrics, the console: not JSON resources
    p = p[len("/api/v1"):]
    # a concrete path matches before a templated one (OpenAPI 3.1, "Path Templating
    # Matching": /ca/rollover-plan before /ca/{name})
    for template, ops in sorted(OPENAPI["paths"].items(), key=lambda kv: kv[0].count("{")):
        rx = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(rx, p) and method.lower() in ops:
            responses = ops[method.lower()]["responses"]
            r = responses.get(str(code)) or (responses.get("default") if code >= 400 else None)
            if r is None:
                return None, f"{method} {template} documents no {code} answer"
            content = r.get("content", {}).get("application/json")
            return (content["schema"] if content else None), None
    return None, None if code in (401, 404, 405) else f"{method} {p} is not in the document"


class ApiCase(ServeCase):
    def setUp(self):
        super().setUp()
        self.ok("init")
        self.ca = self.path("admin-ca.pem")
        self.ok("cert", "export", "appliance default", "--format", "pem", "--out", self.ca)
        self.aport = None
        self.tokens = {}

    def start(self, env=None):
        for _ in range(5):
            self.aport = tglib.free_port()
            srv = self.serve("--admin", f"127.0.0.1:{self.aport}", env=env)
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
        self.check_openapi(method, path, int(p.stdout), doc)
        return int(p.stdout), doc

    def check_openapi(self, method, path, code, doc):
        """The answer is what docs/openapi.json says it is (a JSON document only: evhttp's
        own refusals, such as 413, are HTML)."""
        if isinstance(doc, str) or jsonschema is None and not os.environ.get("CI"):
            return
        self.assertIsNotNone(jsonschema, "python3-jsonschema is needed (scripts/bootstrap.sh)")
        schema, why = openapi_schema(method, path, code)
        self.assertIsNone(why, why)
        if schema is None:
            return
        full = dict(schema, components=OPENAPI["components"])  # the $refs resolve from here
        errors = sorted(jsonschema.Draft202012Validator(full).iter_errors(doc),
                        key=lambda e: list(e.path))
        self.assertEqual([], [f"{list(e.path)}: {e.message}" for e in errors[:5]],
                         f"{method} {path} -> {code} is not as docs/openapi.json says")

    def headers_out(self):
        """The last answer's header lines, lower-cased names."""
        with open(self.path("head.out")) as f:
            return [ln.strip() for ln in f if ":" in ln]
    def call(self, method, path, token=None, args=(), headers=(), stdin=None):
        """(HTTP status, body bytes, response headers with lower-case names) of one curl
        request; args: more curl arguments (-F, --data-binary)."""
        body, head = self.path("call.out"), self.path("call.head")
        argv = ["curl", "-sS", "--max-time", str(20 * SLOW), "--cacert", self.ca, "-X", method,
                "-o", body, "-D", head, "-w", "%{http_code}"]
        if token:
            argv += ["-H", f"Authorization: Bearer {token}"]
        for h in headers:
            argv += ["-H", h]
        argv += list(args) + [f"https://127.0.0.1:{self.aport}{path}"]
        p = subprocess.run(argv, input=stdin, capture_output=True, timeout=40 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        hdrs = {}
        for line in self.rd(head).splitlines()[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        return int(p.stdout), self.rd(body, "rb"), hdrs

    def jcall(self, *a, **kw):
        """call() with the body parsed as JSON: (status, document)."""
        code, data, _ = self.call(*a, **kw)
        doc = json.loads(data)
        self.check_openapi(a[0], a[1], code, doc)
        return code, doc

    def assert_error(self, got, status, name, field=None):
        code, doc = got
        self.assertEqual(code, status, doc)
        self.assertEqual(doc["error"], name, doc)
        self.assertTrue(len(doc["message"]) > 10, doc)
        if field:
            self.assertEqual(doc.get("field"), field, doc)
        return doc

    def count(self):
        """Every certificate, as the API counts them (the CLI lists the CAs apart)."""
        return sum(len(self.ok("--json", cmd, "list").json()) for cmd in ("cert", "ca"))


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
        # the listeners, as serve wrote them: its front and this admin listener
        self.assertIn({"address": f"127.0.0.1:{self.aport}", "kind": "admin", "name": "admin"},
                      doc["listeners"])
        self.assertIn("front", [l["kind"] for l in doc["listeners"]])
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
            "name": "web", "cn": "web.example.com", "san": ["DNS:www.example.com", "IP:127.0.0.1"],
            "key": "ec:p256", "days": 90}, token=tok)  # far from the 30-day warning
        self.assertEqual(code, 201, doc)
        cli = self.ok("--json", "cert", "show", "web").json()
        # the admin listener presents the default certificate, and 'web' becomes the default
        # below: curl trusts both from here on (the switch comes within a second)
        pem = self.path("web-ca.pem")
        self.ok("cert", "export", "web", "--format", "pem", "--out", pem)
        with open(self.ca, "a") as bundle, open(pem) as f:
            bundle.write(f.read())
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
        # the admin listener follows the default certificate for new connections
        self.wait_for("the admin listener presenting the new default",
                      lambda: self.x509_fp(self.s_client(self.aport, None)[1][0]) ==
                      self.fp("web"), 5 * SLOW)
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
        # the API's table holds every certificate; the CLI splits off the CAs (ca list)
        cli = sorted(row["name"] for cmd in ("cert", "ca")
                     for row in self.ok("--json", cmd, "list").json())
        self.assertEqual(names, cli)
        self.assertEqual(total, len(cli))
        code, doc = self.api("GET", "/api/v1/certificates?q=P1&limit=100", token=tok)
        self.assertEqual(sorted(r["name"] for r in doc["items"]),
                         [f"page-{i:02d}" for i in [1] + list(range(10, 20))])
        # one search rule for both faces: the CLI's --filter finds the same (the CA rows
        # are ca list's), and a SAN's type word ("DNS") is not a value that matches
        for q in ("P1", "dns", "page-0"):
            code, doc = self.api("GET", f"/api/v1/certificates?q={q}&limit=1000", token=tok)
            cli = sorted(row["name"] for cmd in ("cert", "ca")
                         for row in self.ok("--json", cmd, "list", "--filter", q).json())
            self.assertEqual(sorted(r["name"] for r in doc["items"]), cli, q)
        self.assertEqual(doc["total"], 10)  # page-00 … page-09
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
        # the common name: missing is a usage error, empty an invalid value (as in the CLI)
        self.assert_error(self.api("POST", "/api/v1/certificates", {"name": "x"}, token=tok),
                          400, "usage", "cn")
        self.assert_error(self.api("POST", "/api/v1/certificates", {"name": "x", "cn": ""},
                                   token=tok), 400, "invalid", "cn")
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


class TestOpenApi(ApiCase):
    def test_document(self):
        """/api/v1/openapi.json is docs/openapi.json, a valid OpenAPI 3.1 document whose
        paths are exactly the route table's (src/api/routes.c): neither can drift."""
        self.start()
        tok = self.user("doc", "Auditor")
        code, doc = self.api("GET", "/api/v1/openapi.json", token=tok)
        self.assertEqual((code, doc), (200, OPENAPI))
        self.assertEqual(doc["openapi"], "3.1.0")
        if jsonschema is not None:  # every schema in it is a valid JSON Schema 2020-12
            for name, sch in doc["components"]["schemas"].items():
                jsonschema.Draft202012Validator.check_schema(sch)
        with open(os.path.join(tglib.ROOT, "src", "api", "routes.c")) as f:
            table = re.findall(r"\{EVHTTP_REQ_(GET|POST|DELETE|PUT|PATCH),\s*\"([^\"]+)\"", f.read())
        routes = {(m.lower(), "/" + p.replace("{}", "{x}")) for m, p in table
                  if not p.startswith("/")}  # "/metrics" is outside the API
        documented = {(m, re.sub(r"\{[^}]+\}", "{x}", p)) for p, ops in doc["paths"].items()
                      for m in ops}
        self.assertEqual(routes - documented, set(), "routes missing from docs/openapi.json")
        self.assertEqual(documented - routes, set(), "docs/openapi.json names routes that do not exist")
        # without a token, not even the document
        self.assert_error(self.api("GET", "/api/v1/openapi.json"), 401, "unauthorized")


class TestMatrix(ApiCase):
    """Every route of the OpenAPI document: none answers without a token or a session (401),
    none changes anything for a session without its CSRF token (400), and each role gets
    exactly what README's capability table gives it."""

    ROLES = {  # role -> the endpoint classes it may use (README "Users and audit")
        "Administrator": {"read", "certs", "users", "audit", "inspection"},
        "Certificate manager": {"read", "certs"},
        "Inspection manager": {"read", "inspection"},
        "Auditor": {"read", "audit"},
    }
    CLASSES = {  # one harmless endpoint per class
        "read": ("GET", "/api/v1/certificates?limit=1"),
        "certs": ("POST", "/api/v1/refresh"),
        "users": ("GET", "/api/v1/users"),
        "audit": ("GET", "/api/v1/audit?limit=1"),
        "inspection": ("POST", "/api/v1/categories/clear"),
    }

    def test_every_route_needs_credentials_and_csrf(self):
        self.start()
        self.user("m", "Administrator")
        jar = self.path("jar")
        code, sess = self.api("POST", "/api/v1/session",
                              {"user": "m", "password": "correct horse battery staple"}, jar=jar)
        self.assertEqual(code, 201, sess)
        before = (self.ok("--json", "cert", "list").out, self.ok("--json", "user", "list").out)
        n = 0
        for template, ops in OPENAPI["paths"].items():
            path = "/api/v1" + template.replace("{name}", "appliance%20default").replace("{id}", "1")
            for method in ops:
                if (template, method) == ("/session", "post"):
                    continue  # the login itself
                with self.subTest(f"{method} {template}"):
                    self.assert_error(self.api(method.upper(), path), 401, "unauthorized")
                    if method != "get":
                        doc = self.assert_error(self.api(method.upper(), path, jar=jar), 400,
                                                "usage")
                        self.assertIn("CSRF", doc["message"])
                    n += 1
        self.assertGreater(n, 40)
        self.assertEqual(before, (self.ok("--json", "cert", "list").out,
                                  self.ok("--json", "user", "list").out))
        # the session itself still works
        self.assertEqual(self.api("GET", "/api/v1/session", jar=jar)[0], 200)

    def test_roles(self):
        self.start()
        for i, (role, allowed) in enumerate(self.ROLES.items()):
            tok = self.user(f"r{i}", role)
            for cls, (method, path) in self.CLASSES.items():
                with self.subTest(role=role, endpoint=cls):
                    code, doc = self.api(method, path, token=tok)
                    if cls in allowed:
                        self.assertEqual(code, 200, doc)
                    else:
                        self.assert_error((code, doc), 403, "forbidden")


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
P12_PASS = "p12-import-secret-7"
EXPORT_PASS = "export-secret-passphrase-9"
NEW_PASS = "a new password for cm, long"


class FilesCase(ApiCase):
    """Files made by openssl: a CA, a leaf it signed (with its key), a PKCS#12 of both."""

    def pki(self):
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                "-days", "30", "-subj", "/CN=API Test CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf.example")
        leaf_ext = self.write("leaf.ext", "subjectAltName=DNS:leaf.example\n"
                                          "extendedKeyUsage=serverAuth\n")
        self.sh("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "leaf.pem", "-days", "10", "-extfile", leaf_ext)
        self.sh("openssl", "pkcs12", "-export", "-in", "leaf.pem", "-inkey", "leaf.key",
                "-out", "leaf.p12", "-passout", "pass:" + P12_PASS)
        # "expires in 10 days" becomes "in 9 days" one second after issue: documents of the
        # same certificate compared across that second would differ
        time.sleep(1.1)
        return {k: self.path(k) for k in ("ca.pem", "ca.key", "leaf.pem", "leaf.key", "leaf.p12")}

    def no_secret_anywhere(self, *secrets):
        """No secret in the audit log (as the CLI prints it) nor in any file of the store."""
        log = self.ok("--json", "audit", "--limit", "100000").out
        for sec in secrets:
            self.assertNotIn(sec, log)
            for f in glob.glob(os.path.join(self.home, "*")):
                if os.path.isfile(f):
                    self.assertNotIn(sec.encode(), self.rd(f, "rb"), f)

    def mine(self, actor):
        """The audit rows of actor, oldest first: (action, object, outcome)."""
        rows = self.ok("--json", "audit", "--limit", "100000").json()
        return [(r["action"], r["object"], r["outcome"]) for r in rows
                if r["actor"] == actor][::-1]


class TestApiFiles(FilesCase):
    def test_import(self):
        """A PKCS#12 as multipart form data and as a raw body with the password in a
        header; a PEM certificate with its key as two parts; a wrong password and
        malformed bodies refused with the store unchanged."""
        f = self.pki()
        self.start()
        tok = self.user("certs", "Certificate manager")
        leaf_fp = self.fingerprint(f["leaf.pem"])
        # raw: the body is the file (curl --data-binary @file), the password in a header
        code, doc = self.jcall("POST", "/api/v1/certificates/import?name=raw&no_export=true",
                               tok, ["--data-binary", f"@{f['leaf.p12']}"],
                               ["Content-Type: application/x-pkcs12",
                                f"X-Tlsgate-Password: {P12_PASS}"])
        self.assertEqual(code, 201, doc)
        raw = self.ok("--json", "cert", "show", "raw").json()
        self.assertEqual(raw["sha256"].upper(), leaf_fp)
        self.assertFalse(raw["exportable"], raw)
        self.ok("cert", "delete", "raw")
        # multipart: the file, its password and a name as parts (curl -F)
        code, doc = self.jcall("POST", "/api/v1/certificates/import", tok, [
            "-F", f"file=@{f['leaf.p12']}", "--form-string", f"password={P12_PASS}",
            "-F", "name=mp"])
        self.assertEqual(code, 201, doc)
        self.assertEqual([i["name"] for i in doc["imported"] if not i["ca"]], ["mp"])
        cli = self.ok("--json", "cert", "show", "mp").json()
        self.assertEqual(cli["sha256"].upper(), leaf_fp)
        self.assertTrue(cli["private_key"])
        self.assertEqual(self.jcall("GET", "/api/v1/certificates/mp", tok), (200, cli))
        # PEM certificate and key as two parts
        self.ok("cert", "delete", "mp")
        code, doc = self.jcall("POST", "/api/v1/certificates/import", tok, [
            "-F", f"file=@{f['leaf.pem']}", "-F", f"key=@{f['leaf.key']}", "-F", "name=pem"])
        self.assertEqual(code, 201, doc)
        self.assertTrue(self.ok("--json", "cert", "show", "pem").json()["private_key"])
        # a wrong password: the CLI's error, and nothing stored
        before = self.dump()
        wrong = self.path("wrong.pw")
        self.write("wrong.pw", "not-the-password\n")
        r = self.fails(tglib.PASSWORD, "cert", "import", f["leaf.p12"], "--name", "w",
                       "--password-file", wrong)
        doc = self.assert_error(self.jcall("POST", "/api/v1/certificates/import", tok, [
            "-F", f"file=@{f['leaf.p12']}", "--form-string", "password=not-the-password",
            "-F", "name=w"]), 400, "password")
        # (the CLI names the file by its path, the API by the part's filename)
        self.assertIn(doc["message"].replace("leaf.p12", f["leaf.p12"]), r.err)
        self.assertEqual(doc["exit_status"], tglib.PASSWORD)
        self.assertEqual(self.dump(), before)
        # a password never goes in a URL
        self.assert_error(self.jcall("POST", f"/api/v1/certificates/import?password={P12_PASS}",
                                     tok, ["--data-binary", f"@{f['leaf.p12']}"]),
                          400, "usage", "password")
        # malformed multipart bodies: each refused naming what is wrong
        pem = self.rd(f["leaf.pem"], "rb")
        ct = "Content-Type: multipart/form-data; boundary=XyZ"
        part = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.pem"\r\n'
                b'\r\n' + pem + b'\r\n')
        bad = {
            "no closing boundary": (ct, part),
            "no boundary parameter": ("Content-Type: multipart/form-data", part + b"--XyZ--"),
            "no boundary line": (ct, b"just some bytes"),
            "no Content-Disposition": (ct, b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n"
                                           b"--XyZ--\r\n"),
            "headers without an end": (ct, b"--XyZ\r\nContent-Disposition: form-data; "
                                           b"name=\"file\"" + b"x" * 9000),
            "no name": (ct, b'--XyZ\r\nContent-Disposition: form-data; filename="a"\r\n\r\n'
                            b"x\r\n--XyZ--\r\n"),
            "17 parts": (ct, b"".join(b'--XyZ\r\nContent-Disposition: form-data; name="file"'
                                      b"\r\n\r\nx\r\n" for _ in range(17)) + b"--XyZ--\r\n"),
            "an unknown part": (ct, b'--XyZ\r\nContent-Disposition: form-data; name="bogus"'
                                    b"\r\n\r\nx\r\n--XyZ--\r\n"),
        }
        for what, (header, body) in bad.items():
            code, doc = self.jcall("POST", "/api/v1/certificates/import", tok,
                                   ["--data-binary", "@-"], [header], stdin=body)
            self.assertEqual((code, doc["error"]), (400, "usage"), (what, doc))
        self.assertEqual(self.dump(), before)
        # the same part well formed is taken
        self.ok("cert", "delete", "pem")
        code, doc = self.jcall("POST", "/api/v1/certificates/import?name=wf", tok,
                               ["--data-binary", "@-"], [ct], stdin=part + b"--XyZ--\r\n")
        self.assertEqual(code, 201, doc)
        self.assertEqual(self.ok("--json", "cert", "show", "wf").json()["sha256"].upper(),
                         leaf_fp)
        self.assertEqual([a for a in self.mine("certs") if a[0] == "cert.import"][:4],
                         [("cert.import", "raw", "ok"), ("cert.import", "mp", "ok"),
                          ("cert.import", "pem", "ok"), ("cert.import", "w", "password")])
        self.no_secret_anywhere(P12_PASS, tok)

    def test_export(self):
        """Exports answer the file's bytes (read by openssl); a key leaves only for a
        role that manages certificates, never when it is non-exportable (not even for an
        Administrator), and every export is audited without its passphrase."""
        self.ok("cert", "create", "exp", "--cn", "exp.example", "--key", "ec:p256",
                "--days", "30")
        self.ok("cert", "create", "locked", "--cn", "locked.example", "--key", "ec:p256",
                "--days", "30", "--no-export")
        self.start()
        cm = self.user("cm", "Certificate manager")
        aud = self.user("aud", "Auditor")
        adm = self.user("adm", "Administrator")
        cli_fp = self.fp("exp")
        # a PEM by an Auditor (no key): openssl x509 reads it
        code, data, h = self.call("POST", "/api/v1/certificates/exp/export", aud,
                                  ["--data-binary", json.dumps({"format": "pem"})],
                                  ["Content-Type: application/json"])
        self.assertEqual(code, 200, data)
        self.assertEqual(h["content-type"], "application/x-pem-file")
        self.assertIn('filename="exp.pem"', h["content-disposition"])
        self.assertEqual(h["cache-control"], "no-store")
        self.assertEqual(self.fingerprint(self.write("exp.pem", data, "wb")), cli_fp)
        # DER too, the same bytes as the CLI's export
        code, data, h = self.call("POST", "/api/v1/certificates/exp/export", aud,
                                  ["--data-binary", '{"format": "der"}'])
        self.assertEqual((code, h["content-type"]), (200, "application/pkix-cert"))
        self.ok("cert", "export", "exp", "--format", "der", "--out", self.path("cli.der"))
        self.assertEqual(data, self.rd(self.path("cli.der"), "rb"))
        # a PKCS#12 with the key: a Certificate manager may; openssl opens it
        spec = {"format": "p12", "with_key": True, "passphrase": EXPORT_PASS}
        self.assert_error(self.jcall("POST", "/api/v1/certificates/exp/export", aud,
                                     ["--data-binary", json.dumps(spec)]), 403, "forbidden")
        code, data, h = self.call("POST", "/api/v1/certificates/exp/export", cm,
                                  ["--data-binary", json.dumps(spec)])
        self.assertEqual((code, h["content-type"]), (200, "application/x-pkcs12"), data[:200])
        self.assertIn('filename="exp.p12"', h["content-disposition"])
        p12 = self.write("exp.p12", data, "wb")
        certs = self.sh("openssl", "pkcs12", "-in", p12, "-passin", "pass:" + EXPORT_PASS,
                        "-nokeys").stdout
        self.assertEqual(self.fingerprint(self.write("p12cert.pem", certs)), cli_fp)
        key = self.sh("openssl", "pkcs12", "-in", p12, "-passin", "pass:" + EXPORT_PASS,
                      "-nocerts", "-nodes").stdout
        self.assertEqual(self.key_pubkey(self.write("p12key.pem", key)),
                         self.cert_pubkey(self.path("exp.pem")))
        # a PKCS#8 key: openssl pkey opens it with the passphrase
        code, data, _ = self.call("POST", "/api/v1/certificates/exp/export", cm, [
            "--data-binary", json.dumps({"format": "p8", "passphrase": EXPORT_PASS})])
        self.assertEqual(code, 200, data[:200])
        self.assertIn(b"ENCRYPTED PRIVATE KEY", data)
        passfile = self.write("exp.pass", EXPORT_PASS)
        self.assertEqual(self.key_pubkey(self.write("exp.p8", data, "wb"), passin=passfile),
                         self.cert_pubkey(self.path("exp.pem")))
        # a short passphrase: the keyring's sentence
        self.assert_error(self.jcall("POST", "/api/v1/certificates/exp/export", cm, [
            "--data-binary", json.dumps({"format": "p12", "passphrase": "short"})]),
            400, "password")
        # a non-exportable key never leaves, whoever asks
        r = self.fails(tglib.CONFLICT, "cert", "export", "locked", "--format", "p8", "--out",
                       self.path("locked.p8"), "--no-passphrase")
        for tok in (cm, adm):
            for spec in ({"format": "p12", "with_key": True, "passphrase": EXPORT_PASS},
                         {"format": "p8", "no_passphrase": True},
                         {"format": "pkcs1", "passphrase": EXPORT_PASS}):
                doc = self.assert_error(self.jcall("POST", "/api/v1/certificates/locked/export",
                                                   tok, ["--data-binary", json.dumps(spec)]),
                                        409, "conflict")
                self.assertIn(doc["message"], r.err)
        # its certificate still may
        code, data, _ = self.call("POST", "/api/v1/certificates/locked/export", aud,
                                  ["--data-binary", '{"format": "pem"}'])
        self.assertEqual(code, 200)
        # refusals of the options: the keyring's field
        self.assert_error(self.jcall("POST", "/api/v1/certificates/exp/export", cm,
                                     ["--data-binary", "{}"]), 400, "usage", "format")
        self.assert_error(self.jcall("POST", "/api/v1/certificates/exp/export", cm,
                                     ["--data-binary", '{"format": "zip"}']), 400, "usage",
                          "format")
        self.assert_error(self.jcall("POST", "/api/v1/certificates/exp/export", cm, [
            "--data-binary", '{"format": "der", "with_chain": true}']), 400, "usage",
            "with_chain")
        self.assertEqual(self.mine("cm")[:2], [("cert.export", "exp", "ok"),
                                               ("cert.export", "exp", "ok")])
        self.assertIn(("cert.export", "locked", "conflict"), self.mine("adm"))
        self.assertIn(("cert.export", "exp", "conflict"), self.mine("aud"))  # the 403
        self.no_secret_anywhere(EXPORT_PASS)

    def test_replace_and_request_export(self):
        """cert replace as an upload; a request's PEM read by openssl req."""
        f = self.pki()
        self.ok("cert", "create", "site", "--cn", "leaf.example", "--key", "ec:p256",
                "--days", "30")
        old_fp = self.fp("site")
        self.start()
        tok = self.user("cm", "Certificate manager")
        code, doc = self.jcall("POST", "/api/v1/certificates/site/replace", tok, [
            "-F", f"file=@{f['leaf.pem']}", "-F", f"key=@{f['leaf.key']}"])
        self.assertEqual(code, 200, doc)
        self.assertEqual(self.fp("site"), self.fingerprint(f["leaf.pem"]))
        self.assertEqual(self.fp("site_REPLACED"), old_fp)
        self.assertEqual(self.jcall("GET", "/api/v1/certificates/site", tok),
                         (200, self.ok("--json", "cert", "show", "site").json()))
        self.assert_error(self.jcall("POST", "/api/v1/certificates/nothing/replace", tok, [
            "-F", f"file=@{f['leaf.pem']}"]), 404, "not_found")
        # a request made through the API, its PEM exported as a file
        code, doc = self.jcall("POST", "/api/v1/requests", tok,
                               ["--data-binary", json.dumps({"name": "csr1",
                                                             "cn": "csr.example",
                                                             "key": "ec:p256"})])
        self.assertEqual(code, 201, doc)
        code, data, h = self.call("GET", "/api/v1/requests/csr1/export", tok)
        self.assertEqual((code, h["content-type"]), (200, "application/x-pem-file"))
        self.assertIn('filename="csr1.csr"', h["content-disposition"])
        self.assertEqual(data, self.ok("request", "export", "csr1").out.encode())
        req = self.write("csr1.csr", data, "wb")
        text = self.sh("openssl", "req", "-in", req, "-noout", "-verify", "-subject").stdout
        self.assertIn("csr.example", text)
        self.assertEqual(self.mine("cm"), [("cert.replace", "site", "ok"),
                                           ("cert.replace", "nothing", "not found"),
                                           ("request.create", "csr1", "ok"),
                                           ("request.export", "csr1", "ok")])

    def test_ca(self):
        """CA certificates: import (raw PEM), show, export, replace, reissue, delete."""
        f = self.pki()
        self.start()
        tok = self.user("cm", "Certificate manager")
        code, doc = self.jcall("POST", "/api/v1/ca/import?name=testca", tok,
                               ["--data-binary", f"@{f['ca.pem']}"],
                               ["Content-Type: application/x-pem-file"])
        self.assertEqual(code, 201, doc)
        cli = self.ok("--json", "ca", "show", "testca").json()
        self.assertEqual(cli["sha256"].upper(), self.fingerprint(f["ca.pem"]))
        self.assertEqual(self.jcall("GET", "/api/v1/ca/testca", tok), (200, cli))
        # a leaf is not a CA: the keyring's refusal
        r = self.tg("ca", "import", f["leaf.pem"], "--name", "notca")
        doc = self.assert_error(self.jcall("POST", "/api/v1/ca/import?name=notca", tok,
                                           ["--data-binary", f"@{f['leaf.pem']}"]),
                                {3: 400, 5: 409}[r.rc], {3: "invalid", 5: "conflict"}[r.rc])
        # (the CLI names the file by its path, the API a raw body as "upload")
        self.assertIn(doc["message"].replace("upload", f["leaf.pem"]), r.err)
        code, data, h = self.call("POST", "/api/v1/ca/testca/export", tok,
                                  ["--data-binary", '{"format": "pem"}'])
        self.assertEqual(code, 200, data)
        self.assertEqual(self.fingerprint(self.write("ca-out.pem", data, "wb")),
                         self.fingerprint(f["ca.pem"]))
        # export of something that is not a CA
        self.assert_error(self.jcall("POST", "/api/v1/ca/appliance%20default/export", tok,
                                     ["--data-binary", '{"format": "pem"}']), 404, "not_found")
        # replace with another CA made by openssl
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca2.key", "-out", "ca2.pem",
                "-days", "60", "-subj", "/CN=API Test CA 2")
        code, doc = self.jcall("POST", "/api/v1/ca/testca/replace", tok,
                               ["-F", f"file=@{self.path('ca2.pem')}"])
        self.assertEqual(code, 200, doc)
        self.assertEqual(self.fp("testca"), self.fingerprint(self.path("ca2.pem")))
        # reissue needs a key we hold: a signing certificate made here
        self.ok("cert", "create", "signer", "--cn", "Signer", "--signing", "--key", "ec:p256",
                "--days", "30")
        self.assert_error(self.jcall("POST", "/api/v1/ca/signer/reissue", tok,
                                     ["--data-binary", "{}"]), 400, "usage", "days")
        code, doc = self.jcall("POST", "/api/v1/ca/signer/reissue", tok,
                               ["--data-binary", '{"days": 90, "name": "signer2"}'])
        self.assertEqual(code, 201, doc)
        self.assertEqual(doc, self.ok("--json", "ca", "show", "signer2").json())
        self.assertEqual(doc["subject"], self.ok("--json", "ca", "show", "signer").json()[
            "subject"])
        # the rollover plan (ca rollover-plan) and its lead time (ca rollover-lead)
        code, plan = self.jcall("GET", "/api/v1/ca/rollover-plan", tok)
        self.assertEqual(code, 200, plan)
        cli_plan = self.ok("--json", "ca", "rollover-plan").json()
        self.assertEqual([r["name"] for r in plan], [r["name"] for r in cli_plan])
        self.assertIn("signer", [r["name"] for r in plan])
        self.assert_error(self.jcall("POST", "/api/v1/ca/rollover-lead", tok,
                                     ["--data-binary", '{"days": -1}']), 400, "invalid", "days")
        self.assert_error(self.jcall("POST", "/api/v1/ca/rollover-lead", tok,
                                     ["--data-binary", "{}"]), 400, "usage", "days")
        code, doc = self.jcall("POST", "/api/v1/ca/rollover-lead", tok,
                               ["--data-binary", '{"days": 200}'])
        self.assertEqual((code, doc), (200, {"ca_rollover_lead_days": 200}))
        self.assertEqual(self.ok("--json", "config", "show").json()["ca_rollover_lead_days"], 200)
        # the plan's path is not a CA name
        self.fails(tglib.INVALID, "ca", "import", f["ca.pem"], "--name", "rollover-plan")
        # delete
        code, doc = self.jcall("DELETE", "/api/v1/ca/testca_REPLACED", tok)
        self.assertEqual((code, doc), (200, {"deleted": "testca_REPLACED"}))
        self.fails(tglib.NOTFOUND, "ca", "show", "testca_REPLACED")
        self.assert_error(self.jcall("DELETE", "/api/v1/ca/appliance%20default", tok), 404,
                          "not_found")
        acts = self.mine("cm")
        self.assertEqual(acts[0], ("ca.import", "testca", "ok"))
        self.assertIn(("ca.reissue", "signer", "ok"), acts)
        self.assertIn(("ca.delete", "testca_REPLACED", "ok"), acts)
        self.assertIn(("ca.rollover-lead", "ok"), [(a[0], a[2]) for a in acts])

    def test_truststores_and_verify(self):
        """Trust stores made, changed and deleted; verify answers the CLI's verdict, valid
        or not."""
        f = self.pki()
        bundle = f["ca.pem"]
        self.start(env={"TLSGATE_CA_BUNDLE": bundle})
        tok = self.user("cm", "Certificate manager")
        self.ok("ca", "import", f["ca.pem"], "--name", "testca")
        code, doc = self.jcall("POST", "/api/v1/truststores", tok, ["--data-binary", json.dumps(
            {"name": "ts1", "description": "for the API test"})])
        self.assertEqual(code, 201, doc)
        code, doc = self.jcall("POST", "/api/v1/truststores/ts1/add", tok,
                               ["--data-binary", '{"ca": ["testca"]}'])
        self.assertEqual(code, 200, doc)
        cli = self.ok("--json", "truststore", "show", "ts1").json()
        self.assertEqual(doc, cli)
        self.assertEqual(self.jcall("GET", "/api/v1/truststores/ts1", tok), (200, cli))
        self.assert_error(self.jcall("POST", "/api/v1/truststores/ts1/add", tok,
                                     ["--data-binary", '{"ca": []}']), 400, "usage", "ca")
        self.assert_error(self.jcall("POST", "/api/v1/truststores/ts1/add", tok,
                                     ["--data-binary", '{"ca": ["nothing"]}']), 404,
                          "not_found")
        # verify: multipart with the CA file, then raw with the trust store
        # (one validation time for both: the verdict's sentence names it)
        at = str(int(time.time()))
        argv = ["--json", "verify", f["leaf.pem"], "--ca-file", f["ca.pem"], "--host",
                "leaf.example", "--at", at]
        cli = self.tg(*argv)
        self.assertEqual(cli.rc, 0, cli)
        code, doc = self.jcall("POST", "/api/v1/verify", tok, [
            "-F", f"file=@{f['leaf.pem']}", "-F", f"ca_file=@{f['ca.pem']}",
            "-F", "host=leaf.example", "-F", f"at={at}"])
        self.assertEqual((code, doc), (200, cli.json()))
        self.assertEqual(doc["verdict"], "valid")
        code, doc = self.jcall("POST", f"/api/v1/verify?truststore=ts1&host=other.example&at={at}",
                               tok, ["--data-binary", f"@{f['leaf.pem']}"])
        cli = self.tg("--json", "verify", f["leaf.pem"], "--truststore", "ts1", "--host",
                      "other.example", "--at", at)
        self.assertEqual(cli.rc, 1, cli)
        self.assertEqual((code, doc), (200, cli.json()))
        self.assertEqual(doc["verdict"], "invalid")
        self.assert_error(self.jcall("POST", "/api/v1/verify?purpose=nope&truststore=ts1", tok,
                                     ["--data-binary", f"@{f['leaf.pem']}"]), 400, "usage",
                          "purpose")
        # remove, update the default package, delete
        code, doc = self.jcall("POST", "/api/v1/truststores/ts1/remove", tok,
                               ["--data-binary", '{"ca": ["testca"]}'])
        self.assertEqual(code, 200, doc)
        self.assertEqual(doc, self.ok("--json", "truststore", "show", "ts1").json())
        code, doc = self.jcall("POST", "/api/v1/truststores/update-defaults", tok)
        self.assertEqual(code, 200, doc)
        self.assertEqual(doc["default_ca_count"], 1)
        code, doc = self.jcall("DELETE", "/api/v1/truststores/ts1", tok)
        self.assertEqual((code, doc), (200, {"deleted": "ts1"}))
        self.fails(tglib.NOTFOUND, "truststore", "show", "ts1")
        self.assertEqual([a[0] for a in self.mine("cm")],
                         ["truststore.create", "truststore.add", "truststore.add",
                          "truststore.add", "truststore.remove",
                          "truststore.update-defaults", "truststore.delete"])


class TestApiUsers(FilesCase):
    def test_users_and_tokens(self):
        """An Administrator manages users through the API as the CLI does; a Certificate
        manager may not touch others but changes its own password and makes its own
        token; no password or token is in the audit log or the store."""
        self.start()
        adm = self.user("adm", "Administrator")
        cm = self.user("cm", "Certificate manager")
        first = "the first password of bob"
        code, doc = self.jcall("POST", "/api/v1/users", adm, ["--data-binary", json.dumps(
            {"name": "bob", "role": "auditor", "password": first})])
        self.assertEqual(code, 201, doc)
        self.assertEqual(doc["role"], "Auditor")
        cli = {u["name"]: u for u in self.ok("--json", "user", "list").json()}
        self.assertEqual(doc, cli["bob"])
        self.assertEqual(self.jcall("GET", "/api/v1/users", adm),
                         (200, self.ok("--json", "user", "list").json()))
        self.assertEqual(self.jcall("GET", "/api/v1/users/bob", adm), (200, cli["bob"]))
        self.assert_error(self.jcall("POST", "/api/v1/users", adm, ["--data-binary", json.dumps(
            {"name": "shorty", "role": "auditor", "password": "short"})]), 400, "password",
            "password")
        self.assert_error(self.jcall("POST", "/api/v1/users", adm, ["--data-binary", json.dumps(
            {"name": "nopw", "role": "auditor"})]), 400, "password", "password")
        self.assert_error(self.jcall("POST", "/api/v1/users", adm, ["--data-binary", json.dumps(
            {"name": "x", "role": "king", "password": first})]), 400, "invalid", "role")
        # role, disable, enable
        code, doc = self.jcall("POST", "/api/v1/users/bob/role", adm,
                               ["--data-binary", '{"role": "certificate-manager"}'])
        self.assertEqual((code, doc["role"]), (200, "Certificate manager"))
        code, doc = self.jcall("POST", "/api/v1/users/bob/disable", adm)
        self.assertEqual((code, doc["disabled"]), (200, True))
        code, doc = self.jcall("POST", "/api/v1/users/bob/enable", adm)
        self.assertEqual((code, doc["disabled"]), (200, False))
        self.assertEqual(doc, {u["name"]: u for u in self.ok("--json", "user", "list").json()}[
            "bob"])
        # the last Administrator stays (init's admin is disabled: adm is the last)
        self.ok("user", "disable", "admin")
        self.assert_error(self.jcall("POST", "/api/v1/users/adm/role", adm,
                                     ["--data-binary", '{"role": "auditor"}']), 409, "conflict")
        # a Certificate manager: not the users, but itself
        for method, path, body in (("GET", "/api/v1/users", None),
                                   ("POST", "/api/v1/users", {"name": "e", "role": "auditor",
                                                              "password": first}),
                                   ("GET", "/api/v1/users/bob", None),
                                   ("DELETE", "/api/v1/users/bob", None),
                                   ("POST", "/api/v1/users/bob/role", {"role": "auditor"}),
                                   ("POST", "/api/v1/users/bob/password",
                                    {"password": NEW_PASS}),
                                   ("POST", "/api/v1/users/bob/disable", None),
                                   ("GET", "/api/v1/users/bob/tokens", None),
                                   ("POST", "/api/v1/users/bob/tokens", {}),
                                   ("DELETE", "/api/v1/users/adm/tokens/1", None),
                                   ("POST", "/api/v1/factory-reset", {"confirm": True})):
            args = ["--data-binary", json.dumps(body)] if body is not None else []
            self.assert_error(self.jcall(method, path, cm, args), 403, "forbidden")
        code, doc = self.jcall("GET", "/api/v1/users/CM", cm)  # its own, by any case
        self.assertEqual((code, doc["name"]), (200, "cm"))
        # one's own password: only with the current one (a stolen token must not lock out)
        self.assert_error(self.jcall("POST", "/api/v1/users/cm/password", cm,
                                     ["--data-binary", json.dumps({"password": NEW_PASS})]),
                          400, "usage", "current_password")
        self.assert_error(self.jcall("POST", "/api/v1/users/cm/password", cm, [
            "--data-binary", json.dumps({"password": NEW_PASS,
                                         "current_password": "not the current one"})]),
            400, "password", "current_password")
        code, doc = self.jcall("POST", "/api/v1/users/cm/password", cm, [
            "--data-binary", json.dumps({"password": NEW_PASS,
                                         "current_password": "correct horse battery staple"})])
        self.assertEqual((code, doc), (200, {"changed": True}))
        self.check_hash("cm", NEW_PASS)
        code, doc = self.jcall("POST", "/api/v1/users/cm/tokens", cm,
                               ["--data-binary", '{"label": "mine", "days": 7}'])
        self.assertEqual(code, 201, doc)
        fresh = doc.pop("token")
        self.assertTrue(fresh.startswith("tg_"))
        rows = self.ok("--json", "user", "tokens", "cm").json()
        self.assertIn(doc, rows)
        self.assertEqual(self.jcall("GET", "/api/v1/users/cm/tokens", cm), (200, rows))
        self.assertEqual(self.jcall("GET", "/api/v1/users/cm/tokens", fresh)[0], 200)
        code, doc = self.jcall("DELETE", f"/api/v1/users/cm/tokens/{doc['id']}", cm)
        self.assertEqual(code, 200, doc)
        self.assert_error(self.jcall("GET", "/api/v1/status", fresh), 401, "unauthorized")
        self.assert_error(self.jcall("DELETE", "/api/v1/users/cm/tokens/x", cm), 400, "usage")
        # an Administrator sets another's password and makes another's token
        code, doc = self.jcall("POST", "/api/v1/users/bob/password", adm,
                               ["--data-binary", json.dumps({"password": NEW_PASS + "!"})])
        self.assertEqual(code, 200, doc)
        self.check_hash("bob", NEW_PASS + "!")
        code, doc = self.jcall("POST", "/api/v1/users/bob/tokens", adm)
        self.assertEqual(code, 201, doc)
        bobtok = doc["token"]
        self.assertEqual(self.jcall("GET", "/api/v1/status", bobtok)[0], 200)
        code, doc = self.jcall("DELETE", "/api/v1/users/bob", adm)
        self.assertEqual((code, doc), (200, {"deleted": "bob"}))
        self.assertNotIn("bob", [u["name"] for u in self.ok("--json", "user", "list").json()])
        self.assert_error(self.jcall("GET", "/api/v1/status", bobtok), 401, "unauthorized")
        acts = self.mine("adm")
        for a in (("user.add", "bob", "ok"), ("user.role", "bob", "ok"),
                  ("user.disable", "bob", "ok"), ("user.enable", "bob", "ok"),
                  ("user.passwd", "bob", "ok"), ("user.token", "bob", "ok"),
                  ("user.del", "bob", "ok"), ("user.add", "shorty", "password")):
            self.assertIn(a, acts)
        rows = self.ok("--json", "audit").json()
        tokrows = [r for r in rows if r["action"] == "user.token" and r["outcome"] == "ok"]
        self.assertTrue(all("token_id" in r["detail"] for r in tokrows), tokrows)
        self.no_secret_anywhere(first, NEW_PASS, fresh, bobtok, adm, cm)

    def check_hash(self, name, password):
        """The stored scrypt hash is of password: recomputed by hashlib."""
        import base64
        import hashlib
        import sqlite3
        con = sqlite3.connect(os.path.join(self.home, "store.db"))
        try:
            stored = con.execute("SELECT password FROM users WHERE name=?", (name,)).fetchone()[0]
        finally:
            con.close()
        _, n, r, p, salt, digest = stored.split("$")
        salt, digest = base64.b64decode(salt), base64.b64decode(digest)
        self.assertEqual(hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r),
                                        p=int(p), maxmem=64 << 20, dklen=len(digest)), digest)

    def test_audit_reading(self):
        """An Auditor reads the audit log (the CLI's document, with its filters) and may
        change nothing; a Certificate manager may not read it."""
        self.ok("cert", "create", "keep", "--cn", "keep.example", "--key", "ec:p256",
                "--days", "30")
        self.ok("ca", "import", self.pki()["ca.pem"], "--name", "keepca")
        self.ok("truststore", "create", "keepts")
        self.ok("request", "create", "keepreq", "--cn", "r.example", "--key", "ec:p256")
        self.start()
        aud = self.user("aud", "Auditor")
        cm = self.user("cm", "Certificate manager")
        code, doc = self.jcall("GET", "/api/v1/audit", aud)
        self.assertEqual((code, doc), (200, self.ok("--json", "audit").json()))
        code, doc = self.jcall("GET", "/api/v1/audit?limit=2&offset=1", aud)
        self.assertEqual(doc, self.ok("--json", "audit", "--limit", "2", "--offset",
                                      "1").json())
        code, doc = self.jcall("GET", "/api/v1/audit?since=2999-01-01", aud)
        self.assertEqual((code, doc), (200, []))
        self.assert_error(self.jcall("GET", "/api/v1/audit?limit=0", aud), 400, "invalid",
                          "limit")
        self.assert_error(self.jcall("GET", "/api/v1/audit?since=yesterday", aud), 400,
                          "invalid", "since")
        self.assert_error(self.jcall("GET", "/api/v1/audit", cm), 403, "forbidden")
        # every change endpoint refuses an Auditor before it reads anything
        before = self.dump()
        pem = self.write("x.pem", "not a certificate")
        changes = [
            ("POST", "/api/v1/certificates", {"name": "n", "cn": "n.example"}),
            ("DELETE", "/api/v1/certificates/keep", None),
            ("POST", "/api/v1/certificates/keep/default", None),
            ("POST", "/api/v1/certificates/import", pem),
            ("POST", "/api/v1/certificates/keep/replace", pem),
            ("POST", "/api/v1/certificates/keep/export", {"format": "p12", "with_key": True,
                                                          "passphrase": EXPORT_PASS}),
            ("POST", "/api/v1/requests", {"name": "n", "cn": "n.example"}),
            ("DELETE", "/api/v1/requests/keepreq", None),
            ("POST", "/api/v1/ca/import", pem),
            ("POST", "/api/v1/ca/keepca/replace", pem),
            ("DELETE", "/api/v1/ca/keepca", None),
            ("POST", "/api/v1/ca/keepca/reissue", {"days": 30}),
            ("POST", "/api/v1/ca/keepca/export", {"format": "p8", "no_passphrase": True}),
            ("POST", "/api/v1/truststores", {"name": "n"}),
            ("POST", "/api/v1/truststores/keepts/add", {"ca": ["keepca"]}),
            ("POST", "/api/v1/truststores/keepts/remove", {"ca": ["keepca"]}),
            ("DELETE", "/api/v1/truststores/keepts", None),
            ("POST", "/api/v1/truststores/update-defaults", None),
            ("POST", "/api/v1/refresh", None),
            ("POST", "/api/v1/users", {"name": "n", "role": "auditor", "password": NEW_PASS}),
            ("DELETE", "/api/v1/users/cm", None),
            ("POST", "/api/v1/users/cm/role", {"role": "auditor"}),
            ("POST", "/api/v1/users/cm/password", {"password": NEW_PASS}),
            ("POST", "/api/v1/users/cm/disable", None),
            ("POST", "/api/v1/users/cm/enable", None),
            ("POST", "/api/v1/users/cm/tokens", {}),
            ("DELETE", "/api/v1/users/cm/tokens/1", None),
            ("POST", "/api/v1/factory-reset", {"confirm": True}),
        ]
        for method, path, body in changes:
            if isinstance(body, str):
                args = ["-F", f"file=@{body}"]
            else:
                args = ["--data-binary", json.dumps(body)] if body is not None else []
            self.assert_error(self.jcall(method, path, aud, args), 403, "forbidden")
        self.assertEqual(self.dump(), before)
        # reading is allowed, and the refusals are in the log
        for path in ("/api/v1/certificates", "/api/v1/ca", "/api/v1/truststores/keepts",
                     "/api/v1/requests/keepreq", "/api/v1/users/aud", "/api/v1/users/aud/tokens"):
            self.assertEqual(self.jcall("GET", path, aud)[0], 200, path)
        refused = [a for a in self.mine("aud") if a[2] == "conflict"]
        self.assertEqual(len(refused), len(changes))

    def test_factory_reset(self):
        """Only a role that manages users resets, and only when it confirms."""
        self.ok("cert", "create", "gone", "--cn", "gone.example", "--key", "ec:p256",
                "--days", "30")
        self.start()
        adm = self.user("adm", "Administrator")
        cm = self.user("cm", "Certificate manager")
        self.assert_error(self.jcall("POST", "/api/v1/factory-reset", cm,
                                     ["--data-binary", '{"confirm": true}']), 403, "forbidden")
        self.assert_error(self.jcall("POST", "/api/v1/factory-reset", adm), 400, "usage",
                          "confirm")
        self.assert_error(self.jcall("POST", "/api/v1/factory-reset", adm,
                                     ["--data-binary", '{"confirm": false}']), 400, "usage",
                          "confirm")
        self.ok("cert", "show", "gone")
        code, doc = self.jcall("POST", "/api/v1/factory-reset", adm,
                               ["--data-binary", '{"confirm": true}'])
        self.assertEqual((code, doc), (200, {"reset": True}))
        # the reset made a new factory default, which the admin listener takes up within a
        # second: curl trusts the old and the new one from here on (the listener switched
        # before the next request once, under ASan)
        pem = self.path("new-default.pem")
        self.ok("cert", "export", "appliance default", "--format", "pem", "--out", pem)
        with open(self.ca, "a") as bundle, open(pem) as f:
            bundle.write(f.read())
        self.fails(tglib.NOTFOUND, "cert", "show", "gone")
        self.assertEqual(self.ok("--json", "user", "list").json(), [])
        self.assert_error(self.jcall("GET", "/api/v1/status", adm), 401, "unauthorized")
        # the newest row but the CLI's own export of the new default above
        rows = [r for r in self.ok("--json", "audit").json() if r["action"] != "cert.export"]
        self.assertEqual((rows[0]["action"], rows[0]["actor"], rows[0]["outcome"]),
                         ("factory-reset", "adm", "ok"))


class TestApiInspection(ApiCase):
    """Client proxies, decryption policies, the default never-decrypt list and the category
    map through the API: each answer is the CLI's --json document of the same object."""

    def body(self, doc):
        return ["--data-binary", json.dumps(doc)]

    def mine(self, actor):
        rows = self.ok("--json", "audit", "--limit", "100000").json()
        return [(r["action"], r["object"], r["outcome"]) for r in rows
                if r["actor"] == actor][::-1]

    def test_proxies_and_policies(self):
        self.ok("cert", "create", "sca", "--cn", "Inspect CA", "--signing")
        self.ok("truststore", "create", "up", "--include-defaults")
        self.start()
        im = self.user("im", "Inspection manager")
        cm = self.user("cm", "Certificate manager")
        au = self.user("au", "Auditor")
        # a policy, made through the API
        code, doc = self.jcall("POST", "/api/v1/policies", im, self.body({
            "name": "office", "description": "Office LAN", "never_domain": ["bank.example"],
            "never_category": ["finance"], "never_source": ["10.0.0.0/8"],
            "always_source": ["192.168.1.5"]}))
        self.assertEqual(code, 201, doc)
        self.assertEqual(doc, self.ok("--json", "policy", "show", "office").json())
        self.assertEqual(doc["always_sources"], ["192.168.1.5/32"])
        # a client proxy on it
        code, doc = self.jcall("POST", "/api/v1/proxies/client", im, self.body({
            "name": "web", "signing": "sca", "truststore": "up", "listen": "127.0.0.1:3128",
            "ports": "443,8443", "policy": "office", "block_invalid": True, "fail_open": 30,
            "description": "the web"}))
        self.assertEqual(code, 201, doc)
        cli = self.ok("--json", "proxy", "client", "show", "web").json()
        self.assertEqual(doc, cli)
        self.assertEqual((doc["block_invalid"], doc["fail_open_secs"], doc["ports"]),
                         (True, 30, [[443, 443], [8443, 8443]]))
        # reads: anyone who may read, the same documents as the CLI's
        for tok in (im, cm, au):
            self.assertEqual(self.jcall("GET", "/api/v1/proxies/client/web", tok), (200, cli))
            self.assertEqual(self.jcall("GET", "/api/v1/proxies/client", tok),
                             (200, self.ok("--json", "proxy", "client", "list").json()))
            self.assertEqual(self.jcall("GET", "/api/v1/policies", tok),
                             (200, self.ok("--json", "policy", "list").json()))
            self.assertEqual(self.jcall("GET", "/api/v1/policies/office", tok),
                             (200, self.ok("--json", "policy", "show", "office").json()))
        # set: the members given change, the others stay
        code, doc = self.jcall("POST", "/api/v1/proxies/client/web/set", im,
                               self.body({"max_conns": 10, "log": True, "block_expired": True}))
        self.assertEqual(code, 200, doc)
        self.assertEqual(doc, self.ok("--json", "proxy", "client", "show", "web").json())
        self.assertEqual((doc["max_conns"], doc["log"], doc["block_expired"],
                          doc["block_invalid"], doc["policy"], doc["description"]),
                         (10, True, True, True, "office", "the web"))
        code, doc = self.jcall("POST", "/api/v1/proxies/client/web/set", im,
                               self.body({"block_invalid": False, "no_policy": True}))
        self.assertEqual(code, 200, doc)
        self.assertEqual((doc["block_invalid"], doc["policy"], doc["log"]), (False, None, True))
        self.assertEqual(doc, self.ok("--json", "proxy", "client", "show", "web").json())
        code, doc = self.jcall("POST", "/api/v1/policies/office/set", im, self.body({
            "add_never_domain": ["*.health.example"], "remove_never_source": ["10.0.0.0/8"],
            "no_defaults": True}))
        self.assertEqual(code, 200, doc)
        self.assertEqual(doc, self.ok("--json", "policy", "show", "office").json())
        self.assertEqual((doc["never_domains"], doc["never_sources"], doc["no_defaults"]),
                         (["*.health.example", "bank.example"], [], True))
        # refusals: the role, a member's type, an unknown member, the keyring's own rules
        for tok in (cm, au):
            self.assert_error(self.jcall("POST", "/api/v1/policies", tok,
                                         self.body({"name": "x"})), 403, "forbidden")
            self.assert_error(self.jcall("POST", "/api/v1/proxies/client/web/set", tok,
                                         self.body({"log": False})), 403, "forbidden")
            self.assert_error(self.jcall("DELETE", "/api/v1/proxies/client/web", tok), 403,
                              "forbidden")
            self.assert_error(self.jcall("POST", "/api/v1/categories/clear", tok), 403,
                              "forbidden")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/client/web/set", im,
                                     self.body({"max_conns": "10"})), 400, "usage", "max_conns")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/client/web/set", im,
                                     self.body({"log": "yes"})), 400, "usage", "log")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/client/web/set", im,
                                     self.body({"max-conns": 10})), 400, "usage", "max-conns")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/client/web/set", im,
                                     self.body({"name": "other"})), 400, "usage", "name")
        self.assert_error(self.jcall("POST", "/api/v1/policies/office/set", im,
                                     self.body({"add_never_domain": "x.example"})), 400, "usage",
                          "add_never_domain")
        self.assert_error(self.jcall("POST", "/api/v1/policies", im,
                                     self.body({"name": "p2", "never_domains": ["x.example"]})),
                          400, "usage", "never_domains")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/client/web/set", im,
                                     self.body({"mode": "sideways"})), 400, "usage")
        self.assert_error(self.jcall("GET", "/api/v1/policies/nothing", au), 404, "not_found")
        self.assertEqual(self.ok("--json", "proxy", "client", "show", "web").json()["max_conns"],
                         10)
        # export: the file the CLI writes; import it back under another name
        code, data, hdrs = self.call("GET", "/api/v1/policies/office/export", au)
        self.assertEqual(code, 200, data)
        self.assertTrue(hdrs["content-type"].startswith("application/json"), hdrs)
        self.assertEqual(json.loads(data),
                         self.ok("policy", "export", "office", "--out", "-").json())
        self.check_openapi("GET", "/api/v1/policies/office/export", code, json.loads(data))
        code, doc = self.jcall("POST", "/api/v1/policies/import?name=copy", im,
                               ["--data-binary", "@-"], stdin=data)
        self.assertEqual(code, 201, doc)
        self.assertEqual(doc, self.ok("--json", "policy", "show", "copy").json())
        self.assert_error(self.jcall("POST", "/api/v1/policies/import?name=copy", im,
                                     ["--data-binary", "@-"], stdin=data), 409, "conflict")
        code, doc = self.jcall("POST", "/api/v1/policies/import", im, [
            "-F", "file=@-;filename=office.json", "-F", "name=copy", "-F", "replace=true"],
            stdin=data)
        self.assertEqual(code, 201, doc)
        # proxy stats: what the CLI says (no client proxy runs in this serve)
        cli = self.tg("--json", "proxy", "stats")
        code, doc = self.jcall("GET", "/api/v1/proxies/stats", au)
        if cli.rc == 0:
            self.assertEqual(code, 200, doc)
        else:
            self.assertEqual(cli.rc, tglib.NOTFOUND, cli)
            self.assert_error((code, doc), 404, "not_found")
        # deletions: a policy in use is refused, as in the CLI
        code, doc = self.jcall("POST", "/api/v1/proxies/client/web/set", im,
                               self.body({"policy": "office"}))
        self.assertEqual(code, 200, doc)
        self.assert_error(self.jcall("DELETE", "/api/v1/policies/office", im), 409, "conflict")
        self.assertEqual(self.jcall("DELETE", "/api/v1/proxies/client/web", im),
                         (200, {"deleted": "web"}))
        self.fails(tglib.NOTFOUND, "proxy", "client", "show", "web")
        self.assertEqual(self.jcall("DELETE", "/api/v1/policies/office", im),
                         (200, {"deleted": "office"}))
        self.fails(tglib.NOTFOUND, "policy", "show", "office")
        self.assertEqual([a[0] for a in self.mine("im")],
                         ["policy.create", "proxy.client.create", "proxy.client.set",
                          "proxy.client.set", "policy.set", "proxy.client.set",
                          "proxy.client.set", "proxy.client.set", "proxy.client.set",
                          "policy.set", "policy.create", "proxy.client.set", "policy.import",
                          "policy.import", "policy.import", "proxy.client.set",
                          "policy.delete", "proxy.client.delete", "policy.delete"])
        self.assertEqual([a for a in self.mine("au") if a[2] == "ok"],
                         [("policy.export", "office", "ok")])
        refused = self.mine("cm")  # refused, and recorded as refusals
        self.assertEqual([a[0] for a in refused], ["policy.create", "proxy.client.set",
                                                   "proxy.client.delete", "category.clear"])
        self.assertNotIn("ok", [a[2] for a in refused])

    def test_groups_limit_changes(self):
        self.ok("cert", "create", "sca", "--cn", "Inspect CA", "--signing")
        self.ok("truststore", "create", "up")
        self.ok("group", "create", "branch")
        self.ok("group", "deny", "branch", "--proxy", "p1")  # before p1 exists
        self.ok("group", "deny", "branch", "--policy", "pol1")
        self.start()
        im = self.user("im", "Inspection manager")
        self.ok("user", "group", "im", "branch")

        ports = {"p1": "8443", "p2": "9443", "p3": "10443"}

        def proxy(name):
            return self.body({"name": name, "signing": "sca", "truststore": "up",
                              "listen": "127.0.0.1:3128", "ports": ports[name]})

        # denied: a new proxy of that name, a policy of that name
        doc = self.assert_error(self.jcall("POST", "/api/v1/proxies/client", im, proxy("p1")),
                                403, "forbidden")
        self.assertIn("branch", doc["message"])
        self.assertIn("'p1'", doc["message"])
        self.assert_error(self.jcall("POST", "/api/v1/policies", im,
                                     self.body({"name": "pol1"})), 403, "forbidden")
        # made by the CLI, they stay closed to the group's users
        self.ok("proxy", "client", "create", "p1", "--signing", "sca", "--truststore", "up",
                "--listen", "127.0.0.1:3129", "--ports", "8443")
        self.ok("policy", "create", "pol1")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/client/p1/set", im,
                                     self.body({"max_conns": 5})), 403, "forbidden")
        self.assert_error(self.jcall("DELETE", "/api/v1/proxies/client/p1", im), 403, "forbidden")
        self.assert_error(self.jcall("POST", "/api/v1/policies/pol1/set", im,
                                     self.body({"description": "x"})), 403, "forbidden")
        self.assert_error(self.jcall("DELETE", "/api/v1/policies/pol1", im), 403, "forbidden")
        export = self.path("pol1.json")
        self.ok("policy", "export", "pol1", "--out", export)
        code, _, _ = self.call("POST", "/api/v1/policies/import", im,
                               args=["-F", f"file=@{export}", "-F", "replace=true"])
        self.assertEqual(code, 403)
        self.assertNotEqual(
            self.ok("--json", "proxy", "client", "show", "p1").json()["max_conns"], 5)
        # reads are not limited; other objects are not either, new ones included
        self.assertEqual(self.jcall("GET", "/api/v1/proxies/client/p1", im)[0], 200)
        code, doc = self.jcall("POST", "/api/v1/proxies/client", im, proxy("p2"))
        self.assertEqual(code, 201, doc)
        self.assertEqual(self.jcall("POST", "/api/v1/proxies/client/p2/set", im,
                                    self.body({"max_conns": 5}))[0], 200)
        self.assertEqual(self.jcall("POST", "/api/v1/policies", im,
                                    self.body({"name": "pol2"}))[0], 201)
        self.assertEqual(self.jcall("DELETE", "/api/v1/policies/pol2", im)[0], 200)
        self.assertEqual(self.jcall("DELETE", "/api/v1/proxies/client/p2", im)[0], 200)
        # the refusals are in the audit log
        refused = [a for a in self.mine("im") if a[2] != "ok"]
        self.assertIn(("proxy.client.set", "p1", "conflict"), refused)
        self.assertIn(("proxy.client.delete", "p1", "conflict"), refused)
        self.assertIn(("policy.delete", "pol1", "conflict"), refused)
        # allowed again, then out of the group: unlimited
        self.ok("group", "allow", "branch", "--policy", "pol1")
        self.assertEqual(self.jcall("POST", "/api/v1/policies/pol1/set", im,
                                    self.body({"description": "x"}))[0], 200)
        self.ok("user", "group", "im", "--none")
        code, doc = self.jcall("POST", "/api/v1/proxies/client/p1/set", im,
                               self.body({"max_conns": 5}))
        self.assertEqual((code, doc["max_conns"]), (200, 5))
        self.assertEqual(self.jcall("DELETE", "/api/v1/proxies/client/p1", im)[0], 200)
        self.assertEqual(self.jcall("DELETE", "/api/v1/policies/pol1", im)[0], 200)
        # a group's deletion leaves its users unlimited
        self.ok("user", "group", "im", "branch")
        self.ok("group", "deny", "branch", "--proxy", "p3")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/client", im, proxy("p3")),
                          403, "forbidden")
        self.ok("group", "delete", "branch")
        self.assertEqual(self.jcall("POST", "/api/v1/proxies/client", im, proxy("p3"))[0], 201)

    def test_server_proxies(self):
        """proxies/server mirrors the CLI's proxy server commands, with the group check."""
        for n in ("www", "shop"):
            self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.path(f"{n}.key"),
                    "-out", self.path(f"{n}.pem"), "-subj", f"/CN={n}.example", "-days", "30",
                    "-addext", f"subjectAltName=DNS:{n}.example", "-addext",
                    "basicConstraints=critical,CA:FALSE")
        self.ok("cert", "import", self.path("www.pem"), self.path("www.key"))
        self.ok("cert", "import", self.path("shop.pem"))  # its key is missing
        self.ok("group", "create", "branch")
        self.ok("group", "deny", "branch", "--proxy", "denied")
        self.start()
        im = self.user("im", "Inspection manager")
        au = self.user("au", "Auditor")
        code, doc = self.jcall("POST", "/api/v1/proxies/server", im, self.body({
            "name": "web", "dest": ["192.0.2.10", "2001:db8::/64"], "ports": "443",
            "cert": ["www.example", "shop.example", "www.example"], "source_except":
            ["198.51.100.0/24"], "http2_downgrade": True, "description": "the web"}))
        self.assertEqual(code, 201, doc)
        cli = self.ok("--json", "proxy", "server", "show", "web").json()
        self.assertEqual(doc, cli)
        self.assertEqual([(c["name"], c["key"]) for c in doc["certificates"]],
                         [("www.example", "ok"), ("shop.example", "missing")])
        self.assertEqual(self.jcall("GET", "/api/v1/proxies/server/web", au), (200, cli))
        self.assertEqual(self.jcall("GET", "/api/v1/proxies/server", au),
                         (200, self.ok("--json", "proxy", "server", "list").json()))
        self.assertEqual(self.jcall("GET", "/api/v1/proxies/client", au), (200, []))
        code, doc = self.jcall("POST", "/api/v1/proxies/server/web/set", im, self.body({
            "remove_cert": ["shop.example"], "add_dest": ["192.0.2.11"], "tcp_reset": True}))
        self.assertEqual(code, 200, doc)
        self.assertEqual(([c["name"] for c in doc["certificates"]], doc["dest"], doc["tcp_reset"]),
                         (["www.example"], ["192.0.2.10/32", "192.0.2.11/32", "2001:db8::/64"],
                          True))
        # refusals: the CLI's sentences and statuses; a client proxy's member is unknown here
        self.assert_error(self.jcall("POST", "/api/v1/proxies/server/web/set", im,
                                     self.body({"signing": "x"})), 400, "usage")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/server/web/set", im,
                                     self.body({"remove_cert": ["www.example"]})), 400, "invalid")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/server", im, self.body({
            "name": "web2", "dest": ["192.0.2.0/24"], "cert": ["www.example"]})), 409, "conflict")
        self.assert_error(self.jcall("GET", "/api/v1/proxies/server/nope", au), 404, "not_found")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/server/web/set", au,
                                     self.body({"log": True})), 403, "forbidden")
        # a group that denies a proxy denies it whatever its kind
        self.ok("user", "group", "im", "branch")
        body = {"name": "denied", "dest": ["192.0.2.99"], "cert": ["www.example"], "ports": "8443"}
        doc = self.assert_error(self.jcall("POST", "/api/v1/proxies/server", im, self.body(body)),
                                403, "forbidden")
        self.assertIn("branch", doc["message"])
        self.ok("proxy", "server", "create", "denied", "--dest", "192.0.2.99", "--cert",
                "www.example", "--ports", "8443")
        self.assert_error(self.jcall("POST", "/api/v1/proxies/server/denied/set", im,
                                     self.body({"log": True})), 403, "forbidden")
        self.assert_error(self.jcall("DELETE", "/api/v1/proxies/server/denied", im), 403,
                          "forbidden")
        self.assertEqual(self.jcall("DELETE", "/api/v1/proxies/server/web", im),
                         (200, {"deleted": "web"}))
        refused = [a for a in self.mine("im") if a[2] != "ok"]
        self.assertIn(("proxy.server.set", "denied", "conflict"), refused)
        self.assertIn(("proxy.server.delete", "denied", "conflict"), refused)
        self.assertIn(("proxy.server.create", "web", "ok"), self.mine("im"))

    def test_defaults_categories_and_stats(self):
        self.ok("cert", "create", "sca", "--cn", "Inspect CA", "--signing")
        self.ok("truststore", "create", "up", "--include-defaults")
        self.ok("proxy", "client", "create", "st", "--signing", "sca", "--truststore", "up",
                "--listen", f"127.0.0.1:{tglib.free_port()}")
        self.start()
        im = self.user("im", "Inspection manager")
        au = self.user("au", "Auditor")
        # serve's counters of its running proxy (written once a second), as the CLI reads them
        deadline = time.monotonic() + 10 * SLOW
        while True:
            code, doc = self.jcall("GET", "/api/v1/proxies/stats?name=st", au)
            if code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(code, 200, doc)
        self.assertEqual([p["name"] for p in doc["proxies"]], ["st"])
        cli = self.ok("--json", "proxy", "stats", "st").json()
        self.assertEqual(set(doc), set(cli))
        self.assertEqual(doc["pid"], cli["pid"])
        self.assert_error(self.jcall("GET", "/api/v1/proxies/stats?name=none", au), 404,
                          "not_found")
        builtin = self.ok("--json", "policy", "defaults", "show").json()
        self.assertEqual(self.jcall("GET", "/api/v1/policies/defaults", au), (200, builtin))
        code, data, hdrs = self.call("GET", "/api/v1/policies/defaults/export", au)
        self.assertEqual(code, 200, data)
        # the same export but for the moment in its first line ("exported <time>"): the two
        # were made a second apart once
        def dated(text):
            return re.sub(r", exported [^\n]*", ", exported <time>", text, count=1)
        self.assertEqual(dated(data.decode()),
                         dated(self.ok("policy", "defaults", "export", "--out", "-").out))
        self.assertRegex(data.decode().splitlines()[0], r", exported \d{4}-\d\d-\d\d ")
        lst = self.write("defaults.txt", "# ours\nbank.example\n*.health.example\n")
        code, doc = self.jcall("POST", "/api/v1/policies/defaults/import", im,
                               ["--data-binary", f"@{lst}"])
        self.assertEqual(code, 200, doc)
        self.assertEqual(doc, self.ok("--json", "policy", "defaults", "show").json())
        self.assertEqual((doc["source"], doc["domains"]),
                         ("imported", ["*.health.example", "bank.example"]))
        self.assert_error(self.jcall("POST", "/api/v1/policies/defaults/import", im,
                                     ["--data-binary", "bank.example finance\n"]), 400,
                          "invalid")
        code, doc = self.jcall("POST", "/api/v1/policies/defaults/reset", im)
        self.assertEqual((code, doc), (200, builtin))
        # categories: a raw upload, then a multipart one that replaces the map
        first = self.write("first.txt", "bank.example finance\n*.news.example news\n")
        code, doc = self.jcall("POST", "/api/v1/categories/import", im,
                               ["--data-binary", f"@{first}"])
        self.assertEqual(code, 200, doc)
        self.assertEqual(doc, {"lines": 2, "mappings": 2, "domain_count": 2, "replaced": False})
        self.assertEqual(self.ok("--json", "category", "show", "a.news.example").json()["category"],
                         "news")
        second = self.write("second.txt", "# map\nshop.example shopping\n")
        code, doc = self.jcall("POST", "/api/v1/categories/import", im,
                               ["-F", f"file=@{second}", "-F", "replace=true"])
        self.assertEqual(code, 200, doc)
        self.assertEqual((doc["mappings"], doc["domain_count"], doc["replaced"]), (1, 1, True))
        for host in ("shop.example", "a.news.example", "bank.example"):
            cli = self.ok("--json", "category", "show", host).json()
            self.assertEqual(self.jcall("GET", f"/api/v1/categories/{host}", au), (200, cli))
        self.assertEqual(self.ok("--json", "category", "show", "shop.example").json()["category"],
                         "shopping")
        self.assertIsNone(self.ok("--json", "category", "show", "bank.example").json()["category"])
        self.assertEqual(self.jcall("GET", "/api/v1/categories", au),
                         (200, self.ok("--json", "category", "list").json()))
        self.assert_error(self.jcall("POST", "/api/v1/categories/import?replace=maybe", im,
                                     ["--data-binary", f"@{first}"]), 400, "usage", "replace")
        self.assert_error(self.jcall("POST", "/api/v1/categories/import", im,
                                     ["--data-binary", "not a line\n"]), 400, "invalid")
        self.assert_error(self.jcall("POST", "/api/v1/categories/import", au,
                                     ["--data-binary", f"@{first}"]), 403, "forbidden")
        self.assertEqual(self.jcall("POST", "/api/v1/categories/clear", im),
                         (200, {"removed": 1}))
        self.assertEqual(self.ok("--json", "category", "list").json(), [])
        self.assertEqual([a[0] for a in self.mine("im")],
                         ["policy.defaults.import", "policy.defaults.import",
                          "policy.defaults.reset", "category.import", "category.import",
                          "category.import", "category.import", "category.clear"])
        self.assertEqual([a[0] for a in self.mine("au") if a[2] == "ok"],
                         ["policy.defaults.export"])

    def test_acme_reads(self):
        """The ACME resources read what acme account list/show and acme list/show print
        (orders and renewals against a CA are tests/e2e/test_acme.py's)."""
        self.start()
        au = self.user("au", "Auditor")
        self.assertEqual(self.jcall("GET", "/api/v1/acme/accounts", au), (200, []))
        self.assertEqual(self.jcall("GET", "/api/v1/acme/certificates", au), (200, []))
        self.assert_error(self.jcall("GET", "/api/v1/acme/accounts/default", au), 404,
                          "not_found")
        self.assert_error(self.jcall("GET", "/api/v1/acme/certificates/web", au), 404,
                          "not_found")


if __name__ == "__main__":
    tglib.main()
