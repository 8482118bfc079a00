"""The web console (issue 10, item 5) in a real browser: Debian's chromium, headless,
driven by playwright-core (npm, tests/e2e/console/package.json) from console/run.mjs.

serve runs with --admin as in test_api.py; the browser logs in, creates a self-signed
certificate and a request through the forms, copies the request data, which this test signs
outside with openssl (a test CA with an intermediate), imports it, sees the warning for the
missing intermediate, makes it the default by its radio (openssl s_client then receives it
on serve's --listen port), tries to delete it and reads the refusal, and pages through
1,000+ certificates. What happens outside the browser is asked of this test by run.mjs
("@ {json}" lines on its stdout, answered on its stdin).

The browser accepts the admin listener's certificate with ignoreHTTPSErrors: it is here to
test the console; the listener's TLS is checked with curl --cacert and openssl s_client in
test_api.py. Screenshots are kept in test-artifacts/console/ beside the binary (printed).
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "interop"))
import tglib  # noqa: E402
from test_api import ApiCase  # noqa: E402
from test_serve import SLOW  # noqa: E402

CONSOLE = os.path.join(HERE, "console")
CHROMIUM = "/usr/bin/chromium"
BULK = 1000  # certificates for the paging test
BROWSER_SECS = 150 * SLOW
ARTIFACTS = os.environ.get("TG_ARTIFACTS") or os.path.join(
    os.path.dirname(os.path.abspath(tglib.BIN)), "test-artifacts", "console")


def tools():
    """None when node, chromium and playwright-core are there (npm ci brings the last
    when npm is there), else what is missing."""
    if not shutil.which("node"):
        return "node is not installed (scripts/bootstrap.sh installs nodejs)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (scripts/bootstrap.sh installs chromium)"
    if not os.path.isdir(os.path.join(CONSOLE, "node_modules", "playwright-core")):
        if not shutil.which("npm"):
            return "playwright-core is not installed and npm is missing"
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CONSOLE,
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            return f"npm ci failed: {p.stderr[-1000:]}"
    return None


class ConsoleCase(ApiCase):
    @classmethod
    def setUpClass(cls):
        missing = tools()
        if missing:
            if os.environ.get("CI"):  # CI has run the bootstrap: never skipped there
                raise AssertionError(f"the browser test cannot run: {missing}")
            raise unittest.SkipTest(missing)

    def make_ca(self):
        """A root and an intermediate made by openssl, outside the store."""
        d = self.path("ca")
        os.makedirs(d, exist_ok=True)
        self.ca_dir = d
        j = lambda n: os.path.join(d, n)  # noqa: E731
        self.write("ca/ca.ext", "basicConstraints=critical,CA:true\n"
                                "keyUsage=critical,keyCertSign,cRLSign\n")
        self.write("ca/leaf.ext", "basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\n"
                                  "extendedKeyUsage=serverAuth\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        self.sh("openssl", "req", "-x509", *ec, "-keyout", j("root.key"), "-out", j("root.pem"),
                "-subj", "/CN=Console Test Root", "-days", "30", "-addext",
                "basicConstraints=critical,CA:true", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign")
        self.sh("openssl", "req", *ec, "-keyout", j("int.key"), "-out", j("int.csr"), "-subj",
                "/CN=Console Test Intermediate")
        self.sh("openssl", "x509", "-req", "-in", j("int.csr"), "-CA", j("root.pem"), "-CAkey",
                j("root.key"), "-CAcreateserial", "-out", j("int.pem"), "-days", "30",
                "-extfile", j("ca.ext"))

    def bulk(self, n):
        """n certificates made by the CLI, two at a time, before serve starts. (Through the
        API they cost more as the store grows while serve runs: ~5 ms each in an empty
        store, ~45 ms at 300 certificates; the CLI's stay ~25 ms.)"""
        e = dict(os.environ, TLSGATE_HOME=self.home)
        e.pop("TLSGATE_PASSWORD", None)
        script = ('exec "$0" cert create "bulk-$1" --cn "b$1.bulk.example" --key ec:p256 '
                  '--days 90 >/dev/null')
        p = subprocess.run(["xargs", "-P", "2", "-n", "1", "sh", "-c", script, tglib.BIN],
                           input="\n".join(f"{i:04d}" for i in range(n)), text=True, env=e,
                           capture_output=True, timeout=300 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])

    # ---- what run.mjs asks for ----

    def on_status(self, a):
        return {"version": self.ok("--version").out.split()[-1], "certificates": self.count()}

    def on_cli(self, a):
        r = self.tg(*a["args"])
        return {"rc": r.rc, "out": r.out, "err": r.err}

    def on_sign(self, a):
        """openssl signs the request the browser copied, with the test intermediate; the
        request's own names are kept (-copy_extensions)."""
        csr = self.write("console-req.csr", a["csr"])
        self.sh("openssl", "req", "-in", csr, "-noout", "-verify")
        leaf = self.path("console-req.pem")
        d = self.ca_dir
        self.sh("openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(d, "int.pem"),
                "-CAkey", os.path.join(d, "int.key"), "-CAcreateserial", "-out", leaf,
                "-days", "20", "-extfile", os.path.join(d, "leaf.ext"), "-copy_extensions",
                "copy")
        return {"leaf": leaf, "intermediate": os.path.join(d, "int.pem"),
                "root": os.path.join(d, "root.pem")}

    def on_served(self, a):
        """openssl s_client without SNI on serve's --listen port receives the default."""
        want = self.fp(a["name"])
        got = []

        def served():
            got[:] = [self.openssl_leaf(self.srv.port, None)]
            return got[0] == want
        self.wait_for(f"s_client receives {a['name']}", served, 10 * SLOW)
        return {"fingerprint": got[0]}

    def on_p12(self, a):
        p = self.sh("openssl", "pkcs12", "-in", a["file"], "-passin", f"pass:{a['passphrase']}",
                    "-nokeys", "-clcerts")
        self.assertEqual(self.x509_fp(p.stdout), self.fp(a["name"]))
        return {}

    def on_password_changed(self, a):
        code, doc = self.api("POST", "/api/v1/session", {"user": "admin",
                                                         "password": a["password"]},
                             jar=self.path("jar"))
        self.assertEqual((code, doc.get("must_change")), (201, False), doc)
        return {}

    # ---- running the browser ----

    def browse(self, scenario, user, password):
        shots = os.path.join(self.dir, "artifacts", scenario)
        env = dict(os.environ, TG_CONSOLE_URL=f"https://127.0.0.1:{self.aport}",
                   TG_SHOTS=shots, TG_USER=user, TG_PASSWORD=password)
        errpath = self.path(f"node-{scenario}.err")
        t0 = time.monotonic()
        with open(errpath, "w") as errf:
            proc = subprocess.Popen(["node", "run.mjs", scenario], cwd=CONSOLE, env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf,
                                    text=True, bufsize=1)
        watchdog = threading.Timer(BROWSER_SECS, proc.kill)
        watchdog.start()
        result, log = None, []
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line.startswith("@ "):
                    ask = json.loads(line[2:])
                    try:
                        answer = getattr(self, "on_" + ask["op"])(ask)
                    except Exception as e:  # the browser side stops; the failure is ours
                        log.append(f"{ask['op']} failed: {e}")
                        proc.stdin.write(json.dumps({"error": str(e)[:2000]}) + "\n")
                        proc.stdin.flush()
                        raise
                    proc.stdin.write(json.dumps(answer) + "\n")
                    proc.stdin.flush()
                elif line.startswith("RESULT "):
                    result = json.loads(line[7:])
                else:
                    log.append(line)
            proc.wait(30)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            proc.stdin.close()
            proc.stdout.close()
            if os.environ.get("TG_CONSOLE_LOG"):
                sys.stderr.write("\n".join(log) + "\n")
            keep = os.path.join(ARTIFACTS, scenario)
            shutil.rmtree(keep, ignore_errors=True)
            if os.path.isdir(shots):
                shutil.copytree(shots, keep)
                sys.stderr.write(f"\n  screenshots: {keep}\n")
        with open(errpath) as f:
            err = f.read()
        self.assertIsNotNone(result, f"run.mjs ended without a result (rc {proc.returncode}): "
                                     f"{err[-3000:]}\n" + "\n".join(log[-40:]))
        self.assertIsNone(result["failed"], result["failed"])
        result["wall"] = time.monotonic() - t0
        for n in result["notes"]:
            sys.stderr.write(f"  note: {n}\n")
        return result


class TestConsoleFiles(ApiCase):
    """The console's files, fetched by curl (TLS checked with --cacert): public, with their
    headers, while the API under /api/v1/ still asks who is there."""

    def test_files_and_headers(self):
        self.start()
        code, _ = self.api("GET", "/")
        self.assertEqual(code, 302)
        self.assertIn("Location: /appliance/", self.headers_out())
        for path, ctype in [("/appliance/", "text/html"), ("/appliance/app.js", "text/javascript"),
                            ("/appliance/console.css", "text/css")]:
            code, body = self.api("GET", path)
            self.assertEqual(code, 200, path)
            head = {h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip()
                    for h in self.headers_out()}
            self.assertTrue(head["content-type"].startswith(ctype), head)
            self.assertEqual(head["content-security-policy"],
                             "default-src 'self'; frame-ancestors 'none'")
            self.assertEqual(head["x-frame-options"], "DENY")
            self.assertEqual(head["x-content-type-options"], "nosniff")
            self.assertEqual(head["cache-control"], "no-store")
            self.assertEqual(head["referrer-policy"], "no-referrer")
            with open(os.path.join(os.path.dirname(os.path.dirname(HERE)), "console",
                                   path.split("/")[-1] or "index.html")) as f:
                self.assertEqual(body, f.read(), f"{path} is the file in console/")
        # no inline script or style: the CSP would refuse them
        _, html = self.api("GET", "/appliance/")
        self.assertNotRegex(html, r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=")
        self.assertEqual(self.api("GET", "/appliance/nothing.js")[0], 404)
        self.assertEqual(self.api("POST", "/appliance/", raw="x")[0], 405)
        self.assert_error(self.api("GET", "/api/v1/status"), 401, "unauthorized")
        self.assert_error(self.api("GET", "/elsewhere"), 401, "unauthorized")


class TestConsole(ConsoleCase):
    def test_console(self):
        """Login, create, request, copy, sign outside, import, warning, default seen by
        s_client, a refused delete read on the page, 1,000+ certificates paged and
        searched; and the audit log shows the browser's steps, never a password."""
        t0 = time.monotonic()
        self.make_ca()
        self.user("web", "Administrator")
        t1 = time.monotonic()
        self.bulk(BULK)
        t2 = time.monotonic()
        self.srv = self.start()
        r = self.browse("main", "web", "correct horse battery staple")
        # every route the console uses exists now: no step may fall back to the CLI
        self.assertTrue(r.get("import_via_console"), r.get("notes"))
        self.assertTrue(any("exported a PKCS#12" in n for n in r.get("notes", [])),
                        r.get("notes"))
        rows = self.ok("--json", "audit", "--limit", "200").json()
        rows = rows["items"] if isinstance(rows, dict) else rows
        mine = {(x["action"], x["object"], x["outcome"]) for x in rows
                if x["actor"] == "web" and x["source"] == "api 127.0.0.1"}
        for step in [("cert.create", "console-self", "ok"), ("request.create", "console-req", "ok"),
                     ("cert.import", "console-req.pem", "ok"), ("cert.export", "console-self", "ok"),
                     ("cert.default", "console-req", "ok"), ("user.token", "web", "ok"),
                     ("user.revoke", "web", "ok"), ("user.add", "ops", "ok"),
                     ("user.role", "ops", "ok"), ("user.disable", "ops", "ok"),
                     ("user.del", "ops", "ok"),
                     ("cert.delete", "console-req", "conflict")]:
            self.assertIn(step, mine)
        self.assertIn(("session.login", "web"),
                      {(x["action"], x["actor"]) for x in rows if x["outcome"] == "ok"})
        self.assertNotIn("correct horse", json.dumps(rows))
        sys.stderr.write(f"\n  timings: setup {t1 - t0:.1f} s, {BULK} certificates {t2 - t1:.1f} s,"
                         f" browser {r['wall']:.1f} s (paging {r['timings'].get('paging_s')} s)\n")

    def test_forced_password_change(self):
        """The first administrator's one-time password: the console asks for a new one
        before anything else (POST /api/v1/users/{name}/password)."""
        self.ok("factory-reset", "--yes")
        pw = self.ok("--json", "init").json()["first_admin_password"]
        self.ok("cert", "export", "appliance default", "--format", "pem", "--out", self.ca,
                "--force")
        self.srv = self.start()
        r = self.browse("password", "admin", pw)
        if r.get("skip"):
            self.skipTest(r["skip"])


if __name__ == "__main__":
    tglib.main()
