#!/usr/bin/env python3
"""Identity and enrollment (issue 11, SPEC E1-E4) end to end on loopback.

tlsgate as the enrollment CA (`enroll-ca serve`, RFC 7030) is checked with clients we did
not write: curl and openssl speak the EST exchange (base64 PKCS#10 in, base64 PKCS#7 out)
and openssl judges the certificates. tlsgate as the EST client (`identity enroll`, serve's
enrollment thread) is checked against that server, in two homes: with the CA down at
first (retries with growing gaps, the identity arrives without a restart once it is up),
after a factory reset (a new key and certificate), and with the identity refused on every
export path.
"""
import base64
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve import ServeCase, SLOW, free_port  # noqa: E402
from test_api import ApiCase  # noqa: E402
import tglib  # noqa: E402
from tglib import CONFLICT, INVALID, IO, OK, USAGE  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs7  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

BIN = os.path.abspath(tglib.BIN)


class EstCase(ServeCase):
    """self.home is the enrollment CA's store; self.dev a device's."""

    def setUp(self):
        super().setUp()
        self.dev = os.path.join(self.dir, "device")
        self.est = None
        self.ok("enroll-ca", "init")
        self.ok("cert", "create", "est-server", "--cn", "localhost", "--san", "IP:127.0.0.1",
                "--key", "ec:p256")
        self.ok("cert", "export", "est-server", "--format", "pem", "--out", self.path("est.pem"))
        self.ok("cert", "export", TG_CA, "--format", "pem", "--out", self.path("ca.pem"))

    def tearDown(self):
        if self.est is not None:
            self.stop_est()
        super().tearDown()

    def start_est(self, port=None):
        port = port or free_port()
        self.est_log = self.path(f"est-{port}.log")
        with open(self.est_log, "wb") as log:
            self.est = subprocess.Popen(
                [BIN, "enroll-ca", "serve", "--listen", f"127.0.0.1:{port}", "--cert",
                 "est-server"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=dict(os.environ, TLSGATE_HOME=self.home))
        self.est_port = port
        self.wait_for("the EST server", lambda: "listening" in self.rd(self.est_log), 10 * SLOW)
        return port

    def stop_est(self):
        self.est.send_signal(signal.SIGTERM)
        try:
            rc = self.est.wait(10 * SLOW)
        except subprocess.TimeoutExpired:
            self.est.kill()
            self.est.wait(5)
            self.fail("enroll-ca serve did not stop on SIGTERM")
        self.est = None
        self.assertEqual(rc, 0, self.rd(self.est_log))
        self.assertNotIn("ERROR: AddressSanitizer", self.rd(self.est_log))

    def url(self, op=""):
        return f"https://127.0.0.1:{self.est_port}/.well-known/est/{op}"

    def secret(self, label="device"):
        return self.ok("--json", "enroll-ca", "secret", "--label", label).json()["secret"]

    # ---- EST with curl and openssl ----

    def csr(self, cn, stem):
        """A key and a request made by openssl; the request's base64 DER on disk."""
        key, der = self.path(stem + ".key"), self.path(stem + ".der")
        self.sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-subj", f"/CN={cn}", "-outform", "DER", "-out", der)
        b64 = self.path(stem + ".b64")
        with open(der, "rb") as f, open(b64, "wb") as out:
            out.write(base64.encodebytes(f.read()))
        return key, b64

    def curl(self, op, *extra, body=None):
        """(status, headers text, body bytes) of one EST exchange."""
        hdr, out = self.path("h.txt"), self.path("b.out")
        args = ["curl", "-sS", "--max-time", str(20 * SLOW), "--cacert", self.path("est.pem"),
                "-D", hdr, "-o", out, *extra]
        if body is not None:
            args += ["-H", "Content-Type: application/pkcs10", "--data-binary", "@" + body]
        self.sh(*args, self.url(op))
        head = self.rd(hdr)
        status = int(head.split()[1])
        return status, head, self.rd(out, "rb")

    def p7_certs(self, body, stem):
        """openssl's reading of a base64 certs-only PKCS#7: PEM certificates on disk."""
        der = self.path(stem + ".p7")
        with open(der, "wb") as f:
            f.write(base64.b64decode(body))
        pem = self.path(stem + ".pem")
        self.sh("openssl", "pkcs7", "-inform", "DER", "-in", der, "-print_certs", "-out", pem)
        return pem


TG_CA = "enrollment-ca"


class TestEstServer(EstCase):
    def test_rfc7030_with_curl_and_openssl(self):
        self.start_est()
        # /cacerts: the enrollment CA, as openssl reads it
        st, head, body = self.curl("cacerts")
        self.assertEqual(st, 200, body)
        self.assertIn("application/pkcs7-mime", head)
        cas = self.p7_certs(body, "cacerts")
        self.assertEqual(self.fingerprint(cas), self.fingerprint(self.path("ca.pem")))

        # /simpleenroll with a bootstrap secret (HTTP basic password)
        s1 = self.secret("curl-1")
        key, b64 = self.csr("curl-device", "d1")
        st, head, body = self.curl("simpleenroll", "-u", "curl-device:" + s1, body=b64)
        self.assertEqual(st, 200, body)
        leaf = self.p7_certs(body, "leaf1")
        v = self.sh("openssl", "verify", "-CAfile", self.path("ca.pem"), "-purpose", "sslclient",
                    leaf, check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        cert = x509.load_pem_x509_certificate(self.rd(leaf, "rb"))
        self.assertEqual(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                         "curl-device")
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.CLIENT_AUTH, eku)
        days = (cert.not_valid_after - cert.not_valid_before).days
        self.assertTrue(1824 <= days <= 1826, days)  # five years by default (E4)
        self.assertEqual(self.cert_pubkey(leaf), self.key_pubkey(key))

        # the same request again (a device retrying after a lost answer): the same certificate
        st, _, body = self.curl("simpleenroll", body=b64)
        self.assertEqual(st, 200, body)
        self.assertEqual(self.fingerprint(self.p7_certs(body, "again")), self.fingerprint(leaf))

        # a spent secret, a wrong one, none at all: 401 asking for basic authentication
        _, b64b = self.csr("other-device", "d2")
        for auth in (["-u", "x:" + s1], ["-u", "x:not-a-secret"], []):
            st, head, body = self.curl("simpleenroll", *auth, body=b64b)
            self.assertEqual(st, 401, body)
            self.assertIn("WWW-Authenticate: Basic", head)

        # not a request, not a path of ours
        bad = self.write("bad.b64", "bm90IGEgcmVxdWVzdA==\n")
        self.assertEqual(self.curl("simpleenroll", "-u", "x:" + self.secret(), body=bad)[0], 400)
        self.assertEqual(self.curl("serverkeygen", body=bad)[0], 404)

        # /simplereenroll with the issued certificate (mutual TLS): a new certificate for the
        # same device; for another device id it is refused
        _, b64r = self.csr("curl-device", "r1")
        st, _, body = self.curl("simplereenroll", "--cert", leaf, "--key", key, body=b64r)
        self.assertEqual(st, 200, body)
        renewed = self.p7_certs(body, "renewed")
        self.assertNotEqual(self.fingerprint(renewed), self.fingerprint(leaf))
        self.assertEqual(self.sh("openssl", "verify", "-CAfile", self.path("ca.pem"),
                                 renewed, check=False).returncode, 0)
        _, b64x = self.csr("someone-else", "x1")
        st, _, body = self.curl("simplereenroll", "--cert", leaf, "--key", key, body=b64x)
        self.assertEqual(st, 403, body)
        # re-enrollment needs the client certificate
        _, b64n = self.csr("curl-device", "r0")
        self.assertEqual(self.curl("simplereenroll", body=b64n)[0], 401)

        # revoked: its certificate may no longer re-enroll
        serial = format(cert.serial_number, "X")
        self.ok("enroll-ca", "revoke", serial, "--reason", "stolen")
        _, b64r2 = self.csr("curl-device", "r2")
        st, _, body = self.curl("simplereenroll", "--cert", leaf, "--key", key, body=b64r2)
        self.assertEqual(st, 403, body)
        self.assertIn(b"revoked", body)

        # manual approval: 202 with Retry-After, then the approved certificate
        self.ok("enroll-ca", "set", "--approval", "manual", "--retry-after", "7")
        _, b64m = self.csr("waiting-device", "m1")
        st, head, body = self.curl("simpleenroll", body=b64m)
        self.assertEqual(st, 202, body)
        self.assertIn("Retry-After: 7", head)
        rows = self.ok("--json", "enroll-ca", "list").json()
        pending = [r for r in rows if r["device"] == "waiting-device"]
        self.assertEqual([r["state"] for r in pending], ["pending"])
        self.assertEqual(self.curl("simpleenroll", body=b64m)[0], 202)  # still waiting
        self.ok("enroll-ca", "approve", str(pending[0]["id"]))
        self.fails(CONFLICT, "enroll-ca", "approve", str(pending[0]["id"]))  # not pending now
        st, _, body = self.curl("simpleenroll", body=b64m)
        self.assertEqual(st, 200, body)
        approved = self.p7_certs(body, "approved")
        self.assertEqual(self.sh("openssl", "verify", "-CAfile", self.path("ca.pem"),
                                 approved, check=False).returncode, 0)

        # every issuance and refusal is in the audit log, never a secret
        audit = self.ok("--json", "audit", "--limit", "1000").json()
        actions = [a["action"] for a in audit if a["actor"] == "est"]
        self.assertGreaterEqual(actions.count("est.issue"), 4, actions)
        self.assertGreaterEqual(actions.count("est.refuse"), 5, actions)
        self.assertIn("est.pending", actions)
        self.assertNotIn(s1, json.dumps(audit))
        self.stop_est()

    def test_settings_and_refusals(self):
        self.fails(CONFLICT, "enroll-ca", "init")  # once only
        self.fails(INVALID, "enroll-ca", "set", "--approval", "sometimes")
        self.fails(INVALID, "enroll-ca", "set", "--retry-after", "99999")
        self.fails(USAGE, "enroll-ca", "set")
        self.fails(USAGE, "enroll-ca", "serve")  # --listen is required
        self.fails(INVALID, "enroll-ca", "secret", "--days", "400")
        self.fails(tglib.NOTFOUND, "enroll-ca", "approve", "99")
        self.fails(tglib.NOTFOUND, "enroll-ca", "revoke", "nobody")
        doc = self.ok("--json", "enroll-ca", "show").json()
        self.assertEqual((doc["device_days"], doc["approval"], doc["retry_after"]),
                         (1825, "secret", 60))
        # the CA's key never leaves
        self.fails(CONFLICT, "cert", "export", TG_CA, "--format", "p8", "--out", self.path("k"))
        # no CA here: every enroll-ca command says what to run
        other = os.path.join(self.dir, "other")
        r = self.fails(tglib.NOTFOUND, "enroll-ca", "show", home=other)
        self.assertIn("enroll-ca init", r.err)


class TestIdentity(EstCase):
    def enroll(self, *extra, expect=OK):
        sec = self.write("secret.txt", self.secret() + "\n")
        r = self.tg("identity", "enroll", "--server", f"https://127.0.0.1:{self.est_port}",
                    "--ca-file", self.path("est.pem"), "--secret-file", sec, *extra,
                    home=self.dev)
        self.assertEqual(r.rc, expect, r)
        return r

    def identity(self):
        return self.ok("--json", "identity", "show", home=self.dev).json()

    def test_enroll_reenroll_and_never_exported(self):
        self.start_est()
        self.enroll("--serial", "SN-0001")
        doc = self.identity()
        ident = doc["identity"]
        self.assertTrue(ident["certificate"])
        self.assertEqual(ident["device_id"], "SN-0001")
        self.assertEqual(doc["device_id_source"], "configured")
        self.assertFalse(doc["settings"]["bootstrap_secret"])  # spent, so forgotten
        rows = self.ok("--json", "enroll-ca", "list").json()
        self.assertEqual([(r["device"], r["serial"]) for r in rows],
                         [("SN-0001", ident["serial"])])
        # renewal at two thirds of the lifetime
        life = ident["not_after_unix"] - ident["not_before_unix"]
        self.assertAlmostEqual(ident["renew_at_unix"] - ident["not_before_unix"], life * 2 // 3,
                               delta=2)
        # on demand: re-enrollment with the current identity (mutual TLS), a new key
        before = self.show("appliance-key", home=self.dev)
        self.ok("identity", "renew", home=self.dev)
        after = self.show("appliance-key", home=self.dev)
        self.assertNotEqual(before["sha256"], after["sha256"])
        rows = self.ok("--json", "enroll-ca", "list").json()
        self.assertEqual(len(rows), 2)
        audit = self.ok("--json", "audit", "--limit", "100").json()
        self.assertEqual(sum(a["action"] == "est.issue" for a in audit), 2)

        # the identity never leaves: every export form, the support bundle, with or
        # without the key, is refused and writes nothing
        out = self.path("x.out")
        for fmt in (["--format", "pem"], ["--format", "der"], ["--format", "p7b"],
                    ["--format", "p8"], ["--format", "pkcs1"],
                    ["--format", "p12", "--with-key"], ["--format", "pem", "--support-bundle"],
                    ["--format", "pem", "--with-chain"]):
            r = self.fails(CONFLICT, "cert", "export", "appliance-key", *fmt, "--out", out,
                           home=self.dev, env={"TLSGATE_PASSWORD": "a long passphrase"})
            self.assertIn("never leaves", r.err)
            self.assertFalse(os.path.exists(out))
        # and no operator's certificate may take its name
        self.fails(INVALID, "cert", "create", "appliance-key", "--cn", "x", home=self.dev)
        self.fails(INVALID, "request", "create", "appliance-key", "--cn", "x", home=self.dev)
        self.fails(INVALID, "cert", "import", self.path("est.pem"), "--name", "Appliance-Key",
                   home=self.dev)
        # a certificate whose CN is the name gets another
        self.ok("cert", "create", "cn-clash", "--cn", "appliance-key", home=self.dev)
        self.ok("cert", "export", "cn-clash", "--format", "pem", "--out", self.path("cc.pem"),
                home=self.dev)
        imp = self.ok("--json", "cert", "import", self.path("cc.pem"), home=self.home).json()
        self.assertNotEqual(imp["imported"][0]["name"].lower(), "appliance-key")

    def test_ca_down_then_up_and_factory_reset(self):
        port = free_port()
        self.est_port = port
        # the CA is down: the command says so, keeps the settings for serve
        r = self.enroll(expect=IO)
        self.assertIn("serve keeps trying", r.err)
        self.ok("init", home=self.dev)
        saved = self.home
        self.home = self.dev  # serve runs on the device's store
        try:
            srv = self.serve(quiet=False)
        finally:
            self.home = saved
        # retried with growing gaps (exponential backoff with jitter)
        gaps = []

        def failures():
            st = self.identity()["attempt"] or {}
            if st.get("state") == "unreachable" and st["failures"] >= 1:
                gap = st["next_try_unix"] - st["last_attempt_unix"]
                if not gaps or gaps[-1][0] != st["failures"]:
                    gaps.append((st["failures"], gap))
            return len(gaps) >= 1 and gaps[-1][0] >= 4

        self.wait_for("four failed tries", failures, 60 * SLOW)
        by = dict(gaps)
        self.assertGreater(by[max(by)], by[min(by)], gaps)  # the gaps grow
        self.assertLessEqual(max(by.values()), 2 ** max(by), gaps)
        # the CA comes up on that port: the identity arrives, serve not restarted
        self.start_est(port)
        self.wait_for("the identity",
                      lambda: self.identity()["identity"]["certificate"] is True, 30 * SLOW)
        self.assertIsNone(srv.proc.poll())
        first = self.show("appliance-key", home=self.dev)
        self.assertIn("identity: enrolled as", srv.stderr())

        # factory reset: the identity goes, the settings stay; the next start asks anew.
        # No secret survives the reset, so the CA takes it for a manual approval.
        self.stop(srv)
        self.ok("enroll-ca", "set", "--approval", "manual", "--retry-after", "1")
        self.ok("factory-reset", "--yes", home=self.dev)
        doc = self.identity()
        self.assertFalse(doc["identity"]["certificate"])
        self.assertTrue(doc["configured"])
        self.home = self.dev
        try:
            srv = self.serve()
        finally:
            self.home = saved

        def pending():
            rows = self.ok("--json", "enroll-ca", "list").json()
            return [r for r in rows if r["state"] == "pending"] or None

        self.wait_for("a pending request", lambda: pending() is not None, 30 * SLOW)
        self.ok("enroll-ca", "approve", str(pending()[0]["id"]))
        self.wait_for("the new identity",
                      lambda: self.identity()["identity"]["certificate"] is True, 30 * SLOW)
        second = self.show("appliance-key", home=self.dev)
        self.assertNotEqual(first["sha256"], second["sha256"])
        self.assertNotEqual(first["serial"], second["serial"])
        rows = self.ok("--json", "enroll-ca", "list").json()
        issued = [r for r in rows if r["state"] == "issued"]
        self.assertEqual([r["serial"] for r in issued], [first["serial"], second["serial"]])


class TestApi(ApiCase):
    """The identity and the enrollment CA through the API, every answer checked against
    docs/openapi.json (ApiCase.api); the enrollment server is another store's."""

    def test_identity_and_enrollment_ca_routes(self):
        ca_home = os.path.join(self.dir, "ca")
        self.ok("enroll-ca", "init", home=ca_home)
        self.ok("cert", "create", "est-server", "--cn", "localhost", "--san", "IP:127.0.0.1",
                "--key", "ec:p256", home=ca_home)
        self.ok("cert", "export", "est-server", "--format", "pem", "--out",
                self.path("est.pem"), home=ca_home)
        secret = self.ok("--json", "enroll-ca", "secret", home=ca_home).json()["secret"]
        port = free_port()
        log = self.path("est.log")
        with open(log, "wb") as f:
            est = subprocess.Popen([BIN, "enroll-ca", "serve", "--listen", f"127.0.0.1:{port}",
                                    "--cert", "est-server"], stdout=f, stderr=f,
                                   stdin=subprocess.DEVNULL,
                                   env=dict(os.environ, TLSGATE_HOME=ca_home))
        try:
            self.wait_for("the EST server", lambda: "listening" in self.rd(log), 10 * SLOW)
            self.start()
            admin = self.user("ada", "administrator")
            auditor = self.user("aud", "auditor")
            st, doc = self.api("GET", "/api/v1/identity", token=auditor)
            self.assertEqual((st, doc["configured"], doc["identity"]["certificate"]),
                             (200, False, False))
            body = {"server": f"https://127.0.0.1:{port}", "ca_pem": self.rd(self.path("est.pem")),
                    "secret": secret, "serial": "API-DEVICE"}
            self.assertEqual(self.api("POST", "/api/v1/identity", body, token=auditor)[0], 403)
            st, doc = self.api("POST", "/api/v1/identity", body, token=admin)
            self.assertEqual(st, 202, doc)
            self.assertTrue(doc["settings"]["bootstrap_secret"])
            # serve's enrollment thread, woken by the change, enrolls within seconds
            self.wait_for("the identity", lambda: self.api(
                "GET", "/api/v1/identity", token=auditor)[1]["identity"]["certificate"],
                20 * SLOW)
            st, doc = self.api("GET", "/api/v1/identity", token=auditor)
            self.assertEqual((doc["identity"]["device_id"], doc["attempt"]["state"]),
                             ("API-DEVICE", "enrolled"))
            self.assertNotIn(secret, json.dumps(self.ok("--json", "audit").json()))
            # the identity never leaves through the API either
            for fmt in ("pem", "der", "p12"):
                st, doc = self.api("POST", "/api/v1/certificates/appliance-key/export",
                                   {"format": fmt}, token=admin)
                self.assertEqual(st, 409, doc)
                self.assertIn("never leaves", doc["error"]["message"]
                              if isinstance(doc.get("error"), dict) else json.dumps(doc))
        finally:
            est.send_signal(signal.SIGTERM)
            est.wait(10 * SLOW)
        # this appliance as an enrollment CA, through the API
        admin = self.tokens["ada"]
        self.assertEqual(self.api("GET", "/api/v1/enroll-ca", token=admin)[0], 404)
        st, doc = self.api("POST", "/api/v1/enroll-ca",
                           {"approval": "manual", "device_days": 365}, token=admin)
        self.assertEqual((st, doc["approval"], doc["device_days"]), (201, "manual", 365))
        st, doc = self.api("POST", "/api/v1/enroll-ca/secrets", {"label": "rack 4"}, token=admin)
        self.assertEqual(st, 201, doc)
        self.assertTrue(doc["secret"].startswith("tg_"))
        self.assertNotIn(doc["secret"], json.dumps(self.ok("--json", "audit").json()))
        st, doc = self.api("POST", "/api/v1/enroll-ca/set", {"retry_after": 5}, token=admin)
        self.assertEqual((st, doc["retry_after"]), (200, 5))
        st, doc = self.api("POST", "/api/v1/enroll-ca/set", {"approval": "often"}, token=admin)
        self.assertEqual(st, 400, doc)
        st, doc = self.api("POST", "/api/v1/enroll-ca/requests/1/approve", token=admin)
        self.assertEqual(st, 404, doc)
        st, doc = self.api("POST", "/api/v1/enroll-ca/devices/nobody/revoke", {}, token=admin)
        self.assertEqual(st, 404, doc)
        st, doc = self.api("GET", "/api/v1/enroll-ca", token=self.tokens["aud"])
        self.assertEqual((st, len(doc["secrets"])), (200, 1))


if __name__ == "__main__":
    tglib.main()
