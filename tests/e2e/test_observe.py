"""Logs, metrics and the configuration document (issue 10, item 6; SPEC M4, K9).

  * serve's periodic check (--check-every) logs a warning for each certificate in use
    that expires within 30/14/7/1 days and an error for an expired default certificate,
    on standard error and to syslog: serve is given --log-socket, a datagram socket this
    test binds, and the datagrams are read as a syslog daemon would (priority, tag, pid);
  * GET /metrics on the admin listener, read with curl and parsed by prometheus_client's
    own text parser (python3-prometheus-client): handshake counts match the handshakes
    made with openssl s_client (exact, wildcard, default SNI outcomes), API answer counts
    match the requests made;
  * `tlsgate config show` without serve, with serve (listeners: front, admin, a client
    proxy), after serve was killed with SIGKILL (its state file is stale) and after a clean
    stop (the file is gone).
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
import tglib  # noqa: E402
from test_api import ApiCase  # noqa: E402
from test_serve import SLOW, ServeCase  # noqa: E402

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

CHECK_SECS = 10  # TG_SERVE_CHECK_MIN: the shortest period serve takes


class SyslogSocket:
    """A datagram socket where serve's syslog lines arrive (as /dev/log would get them)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.lines = []

    def read(self):
        while True:
            try:
                self.lines.append(self.sock.recv(4096).decode("utf-8", "replace"))
            except BlockingIOError:
                return self.lines

    def close(self):
        self.sock.close()
        os.unlink(self.path)


class TestExpiryLog(ServeCase):
    def test_warnings_and_error(self):
        self.ok("init")
        self.create("far", "far.example.com", days=100)
        self.create("in20", "in20.example.com", days=20)
        self.create("in10", "in10.example.com", days=10)
        self.create("in5", "in5.example.com", days=5)
        self.create("in1", "in1.example.com", days=1)
        c, k, _ = self.make_cert("old", "old.example.com", sans=["old.example.com"],
                                 valid_from=-60, valid_to=-1)
        self.ok("cert", "import", c, k, "--name", "old")
        self.ok("cert", "default", "old")
        # the period has a floor: a check every few seconds would be a mistake
        r = self.fails(2, "serve", "--check-every", "5", "--no-admin")
        self.assertIn("--check-every", r.err)
        self.assertIn("every 10 to", r.err)
        log = SyslogSocket(self.path("log.sock"))
        try:
            srv = self.serve("--check-every", str(CHECK_SECS), "--log", "both", "--log-socket",
                             log.path, quiet=False)
            self.wait_for("the first check", lambda: "expiry check:" in srv.stderr(), 10 * SLOW)
            err = srv.stderr()
            want = {"in20": "expires within 30 days", "in10": "expires within 14 days",
                    "in5": "expires within 7 days", "in1": "expires within 1 day,"}
            for name, text in want.items():
                line = [ln for ln in err.splitlines() if f"certificate '{name}'" in ln]
                self.assertEqual(len(line), 1, f"{name}: {err}")
                self.assertTrue(line[0].startswith("tlsgate serve: warning: "), line[0])
                self.assertIn(text, line[0])
                self.assertIn(f"served for 1 name", line[0])
            self.assertNotIn("'far'", err)
            expired = [ln for ln in err.splitlines() if "certificate 'old'" in ln]
            self.assertEqual(len(expired), 1, err)
            self.assertTrue(expired[0].startswith("tlsgate serve: error: certificate 'old' "
                                                  "expired on "), expired[0])
            self.assertIn("still in use (the default certificate", expired[0])
            self.assertIn("expiry check: expiring within 30 days 4, expired 1", err)
            # the same lines reached syslog: daemon facility, warning (4) and error (3)
            lines = log.read()
            tag = f" tlsgate[{srv.pid}]: "
            for name in want:
                got = [ln for ln in lines if f"certificate '{name}'" in ln]
                self.assertEqual(len(got), 1, f"{name}: {lines}")
                self.assertTrue(got[0].startswith("<28>"), got[0])
                self.assertIn(tag, got[0])
            got = [ln for ln in lines if "certificate 'old'" in ln]
            self.assertEqual(len(got), 1, lines)
            self.assertTrue(got[0].startswith("<27>"), got[0])
            self.assertTrue(any(ln.startswith("<30>") and "listening on" in ln for ln in lines),
                            lines)
            # the check comes again after the period: one more line per certificate
            took = self.wait_for("the second check",
                                 lambda: srv.stderr().count("expiry check:") >= 2,
                                 CHECK_SECS + 10 * SLOW)
            self.assertGreater(took, CHECK_SECS / 2)
            self.assertEqual(srv.stderr().count("certificate 'in5'"), 2)
            self.assertEqual(len([ln for ln in log.read() if "certificate 'old'" in ln]), 2)
            self.assertEqual(self.stop(srv), [])
        finally:
            log.close()

    def test_quiet_keeps_warnings(self):
        """--quiet drops information, never a warning or an error."""
        self.ok("init")
        self.create("in5", "in5.example.com", days=5)
        srv = self.serve("--log", "stderr", quiet=True)
        self.wait_for("the warning", lambda: "certificate 'in5'" in srv.stderr(), 10 * SLOW)
        self.assertEqual(self.stop(srv), [])
        lines = srv.stderr().splitlines()
        self.assertTrue(lines and all(ln.startswith("tlsgate serve: warning: ") for ln in lines),
                        lines)


def families(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class TestMetrics(ApiCase):
    def scrape(self, token):
        argv = ["curl", "-sS", "--max-time", str(20 * SLOW), "--cacert", self.ca, "-D",
                self.path("headers.out"), "-H", f"Authorization: Bearer {token}",
                f"https://127.0.0.1:{self.aport}/metrics"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=40 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("headers.out")) as f:
            head = f.read()
        self.assertIn(" 200", head.splitlines()[0])
        self.assertRegex(head, r"(?i)content-type: text/plain; version=0\.0\.4")
        return p.stdout, families(p.stdout)

    def handshake(self, port, sni):
        p, certs = self.s_client(port, sni)
        self.assertEqual(p.returncode, 0, p.stdout[-1000:] + p.stderr[-1000:])
        self.assertTrue(certs)

    def test_metrics(self):
        self.create("exact", "exact.example.com")
        self.create("wild", "*.wild.example.com")
        self.create("soon", "soon.example.com", days=3)
        token = self.user("watcher", "Auditor")  # any role may read the metrics
        srv = self.start()
        for _ in range(3):
            self.handshake(srv.port, "exact.example.com")
        for _ in range(2):
            self.handshake(srv.port, "a.wild.example.com")
        self.handshake(srv.port, "unknown.example.org")  # no match: the default
        self.handshake(srv.port, None)  # no SNI: the default
        # answers by status: 200 twice, 404 once, 401 twice (no token, a wrong one)
        self.assertEqual(self.api("GET", "/api/v1/status", token=token)[0], 200)
        self.assertEqual(self.api("GET", "/api/v1/status", token=token)[0], 200)
        self.assertEqual(self.api("GET", "/api/v1/nothing", token=token)[0], 404)
        self.assertEqual(self.api("GET", "/metrics")[0], 401)
        self.assertEqual(self.api("GET", "/metrics", token="tg_wrong")[0], 401)
        text, m = self.scrape(token)
        hs = "tlsgate_handshakes_total"
        # the counters are summed from the workers when asked: the last handshake's count
        # is in by the time s_client has finished (it is counted before the first byte)
        self.assertEqual(m[(hs, (("outcome", "exact"),))], 3, text)
        self.assertEqual(m[(hs, (("outcome", "wildcard"),))], 2, text)
        self.assertEqual(m[(hs, (("outcome", "default"),))], 2, text)
        self.assertEqual(m[(hs, (("outcome", "none"),))], 0, text)
        api = "tlsgate_api_requests_total"
        self.assertEqual(m[(api, (("code", "200"),))], 2, text)
        self.assertEqual(m[(api, (("code", "404"),))], 1, text)
        self.assertEqual(m[(api, (("code", "401"),))], 2, text)
        self.assertNotIn((api, (("code", "500"),)), m)
        # certificates: counts as the CLI lists them, the earliest expiry of a servable one
        # (cert list leaves the CA certificates to ca list)
        rows = self.ok("--json", "cert", "list").json() + self.ok("--json", "ca", "list").json()
        by_status = {k[1][0][1]: v for k, v in m.items() if k[0] == "tlsgate_certificates"}
        self.assertEqual(sum(by_status.values()), len(rows), text)
        self.assertEqual(by_status.get("valid"), len(rows), text)
        self.assertEqual(m[("tlsgate_servable_certificates", (("validity", "valid"),))],
                         len([r for r in rows if r["private_key"]]))
        soonest = min(r["not_after_unix"] for r in rows if r["private_key"])
        left = m[("tlsgate_certificate_earliest_expiry_seconds", ())]
        self.assertAlmostEqual(left, soonest - time.time(), delta=30 * SLOW)
        self.assertLess(left, 3 * 86400 + 60)
        for name in ("tlsgate_evicted_total", "tlsgate_refused_total",
                     "tlsgate_accept_pauses_total"):
            self.assertEqual(m[(name, ())], 0, text)
        self.assertGreater(m[("tlsgate_connection_cap", ())], 0)
        # a scrape counts itself in the next one; handshakes go on being counted
        self.handshake(srv.port, "exact.example.com")
        _, m = self.scrape(token)
        self.assertEqual(m[(api, (("code", "200"),))], 3)
        self.assertEqual(m[(hs, (("outcome", "exact"),))], 4)
        # the route is /metrics only, and takes GET only
        self.assertEqual(self.api("GET", "/api/v1/metrics", token=token)[0], 404)
        self.assertEqual(self.api("POST", "/metrics", token=token)[0], 405)


class TestConfigShow(ApiCase):
    def test_config_show(self):
        self.ok("cert", "create", "inspect", "--signing", "--cn", "Inspect Test CA")
        self.ok("truststore", "create", "web", "--include-defaults")
        self.ok("policy", "create", "careful", "--never-domain", "bank.example")
        pport = tglib.free_port()
        self.ok("proxy", "client", "create", "outbound", "--signing", "inspect", "--truststore",
                "web", "--listen", f"127.0.0.1:{pport}", "--policy", "careful")
        self.user("operator", "Certificate manager")
        doc = self.ok("--json", "config", "show").json()
        self.assertEqual(doc["serve"], {"running": False})
        self.assertEqual(doc["default_certificate"], "appliance default")
        self.assertEqual(doc["certificates"], len(self.ok("--json", "cert", "list").json()) +
                         len(self.ok("--json", "ca", "list").json()))
        self.assertEqual([t["name"] for t in doc["truststores"]], ["web"])
        self.assertEqual([p["name"] for p in doc["client_proxies"]], ["outbound"])
        self.assertEqual(doc["client_proxies"][0]["listen"], f"127.0.0.1:{pport}")
        self.assertEqual([p["name"] for p in doc["policies"]], ["careful"])
        self.assertEqual(doc["policies"][0]["used_by"], ["outbound"])
        users = {u["name"]: u["role"] for u in doc["users"]}
        self.assertEqual(users.get("operator"), "Certificate manager")
        raw = self.ok("--json", "config", "show").out
        for secret in ("password", "hash", "tg_", "token"):
            self.assertNotIn(secret, raw.lower().replace("tokens", ""))
        text = self.ok("config", "show").out
        self.assertIn("serve is not running", text)
        self.assertRegex(text, r"default certificate\s+appliance default")
        self.assertRegex(text, r"outbound\s+explicit on 127\.0\.0\.1:%d" % pport)
        # with serve: its listeners, the admin listener and the proxy among them
        srv = self.start()
        doc = self.wait_state(lambda d: d["running"] and any(
            ls["kind"] == "proxy" for ls in d.get("listeners", [])))
        self.assertEqual(doc["pid"], srv.pid)
        got = sorted((ls["kind"], ls["address"]) for ls in doc["listeners"])
        self.assertEqual(got, sorted([("front", f"127.0.0.1:{srv.port}"),
                                      ("admin", f"127.0.0.1:{self.aport}"),
                                      ("proxy", f"127.0.0.1:{pport}")]))
        text = self.ok("config", "show").out
        self.assertIn(f"pid {srv.pid}", text)
        self.assertRegex(text, r"front\s+127\.0\.0\.1:%d" % srv.port)
        self.assertRegex(text, r"admin\s+127\.0\.0\.1:%d" % self.aport)
        self.assertRegex(text, r"proxy outbound\s+127\.0\.0\.1:%d" % pport)
        # killed: the file stays, and is known for what it is
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        srv.checked = True
        doc = self.ok("--json", "config", "show").json()["serve"]
        self.assertEqual(doc, {"running": False, "stale_pid": srv.pid,
                               "stale_written": doc.get("stale_written")})
        self.assertIsNotNone(doc["stale_written"])
        text = self.ok("config", "show").out
        self.assertIn("serve is not running (its state file", text)
        self.assertIn(f"pid {srv.pid}", text)
        # a clean stop removes the file
        srv = self.start()
        self.wait_state(lambda d: d["running"])
        self.assertEqual(self.stop(srv), [])
        self.assertEqual(self.ok("--json", "config", "show").json()["serve"], {"running": False})

    def wait_state(self, cond):
        box = {}

        def ready():
            box["doc"] = self.ok("--json", "config", "show").json()["serve"]
            return bool(cond(box["doc"]))
        self.wait_for("serve's state file", ready, 10 * SLOW)
        return box["doc"]


if __name__ == "__main__":
    tglib.main()
