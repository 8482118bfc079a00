"""End-to-end test of the ACME client (issue 11, E5) against Pebble.

Debian's `pebble` ships the binaries only: the test writes Pebble's configuration and TLS
certificate, runs `pebble-challtestsrv` as the DNS server only (every name resolves to
127.0.0.1), and Pebble with its validation ports pointed at `tlsgate serve`: httpPort at
serve's --http listener (http-01), tlsPort at serve's TLS listener (tls-alpn-01).

Debian's Pebble 2.4 predates ARI (RFC 9773): every ACME request goes through a small
HTTPS responder in this file that forwards to Pebble unchanged (Host kept, so Pebble's
URLs and the JWS "url" headers name the responder), adds `renewalInfo` and two profiles
(`meta.profiles`) to the directory, answers renewalInfo with the window the test chooses,
and records each newOrder's `replaces` and `profile`.

What is checked:
  * an account is created (the key stays in the store: no file, no exportable key); one
    with external account binding (Pebble checks the MAC; a wrong key is refused); an
    account whose stored URL was lost is found again by its key (onlyReturnExisting);
  * an order with http-01, one with tls-alpn-01 (asking for a profile the directory
    lists) and one with dns-01 through a hook (a wildcard) succeed; serve serves each certificate
    by SNI and `openssl s_client -verify_return_error` verifies it against Pebble's root
    (fetched from Pebble's management port);
  * `acme order` refuses at once when serve is not running (nothing ordered);
  * failures: a challenge that cannot succeed (the name does not resolve) fails the
    renewal with the CA's problem in the sentence, counted in the stored state, and the
    old certificate keeps serving; nonce rejections (PEBBLE_WFE_NONCEREJECT) are retried;
  * ARI: a window in the past makes serve's enrollment thread renew without a restart;
    while the validation fails it retries with backoff (counted, logged, the old
    certificate serving); once the name resolves again the renewal succeeds:
    serve serves a new certificate (another serial) and the newOrder carried `replaces`
    = the old certificate's ARI id.
"""
import base64
import datetime
import http.server
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
import tglib  # noqa: E402
from tglib import free_port  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

BIN = os.path.abspath(tglib.BIN)
EAB_KEY = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_dec(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_tls(dirpath):
    """A CA and a server certificate for 127.0.0.1/localhost (Pebble and the responder)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme test TLS CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {n: os.path.join(dirpath, n) for n in ("ca.pem", "cert.pem", "key.pem")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert.pem"], "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(paths["key.pem"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


class Responder:
    """HTTPS in front of Pebble: forwards everything (Host kept), adds renewalInfo."""

    def __init__(self, tls, pebble_port):
        self.pebble = pebble_port
        self.past = set()  # ARI certIDs whose window is in the past (others: far ahead)
        self.replaces = []
        self.profiles = []
        self.ari_hits = 0
        self.lock = threading.Lock()
        outer = self
        up = ssl.create_default_context(cafile=tls["ca.pem"])

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status, body, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if self.path.startswith("/order-plz") and body:
                    try:
                        payload = json.loads(b64u_dec(json.loads(body)["payload"]))
                        with outer.lock:
                            outer.replaces.append(payload.get("replaces"))
                            outer.profiles.append(payload.get("profile"))
                    except (ValueError, KeyError):
                        pass
                req = urllib.request.Request(
                    f"https://127.0.0.1:{outer.pebble}{self.path}", data=body,
                    method=self.command)
                for k, v in self.headers.items():
                    if k.lower() not in ("content-length", "connection", "accept-encoding"):
                        req.add_header(k, v)
                req.add_unredirected_header("Host", self.headers.get("Host"))
                try:
                    r = urllib.request.urlopen(req, context=up, timeout=20)
                except urllib.error.HTTPError as e:
                    r = e
                data = r.read()
                hdrs = [(k, v) for k, v in r.headers.items()
                        if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                             "date", "server")]
                status = r.status if hasattr(r, "status") else r.code
                if self.path == "/dir" and status == 200:
                    d = json.loads(data)
                    d["renewalInfo"] = f"https://{self.headers.get('Host')}/renewal-info/"
                    d.setdefault("meta", {})["profiles"] = {"classic": "the usual",
                                                            "shortlived": "6 days"}
                    data = json.dumps(d).encode()
                self.send(status, data, hdrs)

            def ari(self):
                cert_id = self.path[len("/renewal-info/"):]
                now = datetime.datetime.now(datetime.timezone.utc)
                with outer.lock:
                    outer.ari_hits += 1
                    past = cert_id in outer.past
                if past:
                    w = (now - datetime.timedelta(hours=2), now - datetime.timedelta(hours=1))
                else:
                    w = (now + datetime.timedelta(days=300), now + datetime.timedelta(days=301))
                fmt = "%Y-%m-%dT%H:%M:%SZ"
                body = json.dumps({"suggestedWindow": {"start": w[0].strftime(fmt),
                                                       "end": w[1].strftime(fmt)}}).encode()
                self.send(200, body, [("Content-Type", "application/json"),
                                      ("Retry-After", "1")])

            def do_GET(self):
                if self.path.startswith("/renewal-info/"):
                    return self.ari()
                self.forward()

            do_POST = forward
            do_HEAD = forward

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        sctx.load_cert_chain(tls["cert.pem"], tls["key.pem"])
        self.httpd.socket = sctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@unittest.skipUnless(os.path.exists(PEBBLE) and os.path.exists(CHALLTESTSRV),
                     "Debian's pebble is not installed")
class PebbleCase(tglib.TgCase):
    """challtestsrv (DNS only), Pebble and the responder, on free ports."""

    nonce_reject = 0

    def setUp(self):
        super().setUp()
        self.procs = []
        self.tls = make_tls(self.dir)
        self.http_port, self.tls_port = free_port(), free_port()
        self.dns_port, self.chall_mgmt = free_port(), free_port()
        self.start_challtestsrv()
        self.start_pebble()
        self.resp = Responder(self.tls, self.pebble_port)
        self.directory = f"https://127.0.0.1:{self.resp.port}/dir"

    def tearDown(self):
        problems = []
        try:
            self.resp.close()
        except Exception:
            pass
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    problems.append(f"{p.args[0]} did not stop on SIGTERM")
        serve = getattr(self, "serve_proc", None)
        if serve is not None:
            log = self.rd(self.path("serve.log"))
            if serve.returncode != 0:
                problems.append(f"serve exited {serve.returncode}: {log[-2000:]}")
            if any(m in log for m in SANITIZER_MARKS):
                problems.append(f"sanitizer report: {log[-4000:]}")
        super().tearDown()
        if problems:
            self.fail("; ".join(problems))

    def spawn(self, argv, name, env=None):
        e = dict(os.environ)
        e.update(env or {})
        f = open(self.path(name + ".log"), "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=e,
                             cwd=self.dir)
        f.close()
        self.procs.append(p)
        return p

    def wait_port(self, port, proc, what):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail(f"{what} exited: {self.rd(self.path(what + '.log'))[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.fail(f"{what} does not listen on {port}")

    def start_challtestsrv(self):
        p = self.spawn([CHALLTESTSRV, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                        "-http01", "", "-https01", "", "-tlsalpn01", "",
                        "-dns01", f"127.0.0.1:{self.dns_port}",
                        "-management", f"127.0.0.1:{self.chall_mgmt}"], "challtestsrv")
        self.wait_port(self.chall_mgmt, p, "challtestsrv")

    def start_pebble(self):
        self.pebble_port, self.pebble_mgmt = free_port(), free_port()
        conf = {"pebble": {"listenAddress": f"127.0.0.1:{self.pebble_port}",
                           "managementListenAddress": f"127.0.0.1:{self.pebble_mgmt}",
                           "certificate": self.tls["cert.pem"],
                           "privateKey": self.tls["key.pem"],
                           "httpPort": self.http_port, "tlsPort": self.tls_port,
                           "ocspResponderURL": "", "externalAccountBindingRequired": False,
                           "externalAccountMACKeys": {"kid-1": EAB_KEY}}}
        self.write("pebble.json", json.dumps(conf))
        env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": str(self.nonce_reject),
               "PEBBLE_AUTHZREUSE": "0"}
        p = self.spawn([PEBBLE, "-config", self.path("pebble.json"),
                        "-dnsserver", f"127.0.0.1:{self.dns_port}"], "pebble", env)
        self.wait_port(self.pebble_port, p, "pebble")

    def pebble_root(self):
        ctx = ssl.create_default_context(cafile=self.tls["ca.pem"])
        with urllib.request.urlopen(f"https://127.0.0.1:{self.pebble_mgmt}/roots/0",
                                    context=ctx, timeout=10) as r:
            return self.write("pebble-root.pem", r.read().decode())

    def chall(self, path, doc):
        req = urllib.request.Request(f"http://127.0.0.1:{self.chall_mgmt}{path}",
                                     data=json.dumps(doc).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def serve(self):
        e = {"TLSGATE_HOME": self.home}
        p = self.spawn([BIN, "serve", "--listen", f"127.0.0.1:{self.tls_port}",
                        "--http", f"127.0.0.1:{self.http_port}", "--threads", "2",
                        "--no-admin", "--check-every", "3600"], "serve", e)
        self.wait_port(self.tls_port, p, "serve")
        self.wait_port(self.http_port, p, "serve")
        self.serve_proc = p
        return p

    def served(self, name, root):
        """The certificate serve offers for SNI name, verified by openssl against root."""
        r = self.sh("openssl", "s_client", "-connect", f"127.0.0.1:{self.tls_port}",
                    "-servername", name, "-verify_return_error", "-verify_hostname", name,
                    "-CAfile", root, check=False, input="", timeout=20)
        self.assertEqual(r.returncode, 0, f"s_client for {name}: {r.stdout[-1500:]}"
                                          f"{r.stderr[-1500:]}")
        self.assertIn("Verify return code: 0 (ok)", r.stdout)
        start = r.stdout.index("-----BEGIN CERTIFICATE-----")
        end = r.stdout.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
        return x509.load_pem_x509_certificate(r.stdout[start:end].encode())

    def ari_id(self, cert):
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        serial = cert.serial_number
        sb = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # DER: a leading 0 if needed
        return f"{b64u(aki.key_identifier)}.{b64u(sb)}"

    def wait_for(self, pred, secs, what):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.25)
        self.fail(f"timed out: {what}; serve log: {self.rd(self.path('serve.log'))[-3000:]}")

    def try_served(self, name, root):
        try:
            return self.served(name, root)
        except AssertionError:
            return None

    def state_if(self, name, pred):
        st = self.ok("--json", "acme", "show", name).json()
        return st if pred(st) else None

    def renewed(self, name, root, old_serial):
        c = self.try_served(name, root)
        return c if c is not None and c.serial_number != old_serial else None


class AcmeTest(PebbleCase):
    def test_acme(self):
        t0 = time.monotonic()
        # an account; the directory's TLS is trusted through --directory-ca only
        acc = self.ok("--json", "acme", "account", "create", "--directory", self.directory,
                      "--directory-ca", self.tls["ca.pem"], "--email", "ops@example.com").json()
        self.assertEqual(acc["name"], "default")
        self.assertTrue(acc["url"].startswith(f"https://127.0.0.1:{self.resp.port}/"), acc)
        self.assertEqual(self.ok("--json", "acme", "account", "list").json()[0]["name"],
                         "default")
        self.fails(tglib.CONFLICT, "acme", "account", "create", "--directory", self.directory,
                   "--directory-ca", self.tls["ca.pem"])
        # external account binding (RFC 8555 §7.3.4): Pebble checks the HS256 MAC
        hmac_file = self.write("eab.key", EAB_KEY + "\n")
        eab = self.ok("--json", "acme", "account", "create", "--name", "eab", "--directory",
                      self.directory, "--directory-ca", self.tls["ca.pem"], "--eab-kid", "kid-1",
                      "--eab-hmac-file", hmac_file).json()
        self.assertEqual(eab["eab_kid"], "kid-1")
        bad = self.write("bad.key", b64u(b"another key of 32 bytes........") + "\n")
        r = self.fails(tglib.IO, "acme", "account", "create", "--name", "eab2", "--directory",
                       self.directory, "--directory-ca", self.tls["ca.pem"], "--eab-kid",
                       "kid-1", "--eab-hmac-file", bad)
        self.assertIn("unauthorized", r.err)
        self.ok("acme", "account", "delete", "eab")
        self.assertEqual([a["name"] for a in self.ok("--json", "acme", "account", "list").json()],
                         ["default"])

        # serve is not running: refused at once, nothing stored
        r = self.fails(tglib.CONFLICT, "acme", "order", "web", "--domain", "web.example.com")
        self.assertIn("start serve", r.err)
        self.assertEqual(self.ok("--json", "acme", "list").json(), [])

        self.serve()
        root = self.pebble_root()

        # serve's http-01 listener answers only pending tokens on the one path
        def http(req):
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=5) as so:
                so.sendall(req)
                data = b""
                while True:
                    chunk = so.recv(65536)
                    if not chunk:
                        return data
                    data += chunk
        self.assertTrue(http(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404"))
        self.assertTrue(http(b"GET /.well-known/acme-challenge/nothere HTTP/1.1\r\n"
                             b"Host: x\r\n\r\n").startswith(b"HTTP/1.1 404"))
        self.assertTrue(http(b"GET /.well-known/acme-challenge/../x HTTP/1.1\r\n\r\n")
                        .startswith(b"HTTP/1.1 404"))
        self.assertTrue(http(b"GET / HTTP/1.1\r\nX: " + b"a" * 6000 + b"\r\n\r\n")
                        .startswith(b"HTTP/1.1 400"))

        # bad input: a clear sentence, its exit status, nothing stored
        before = self.dump()
        self.fails(tglib.INVALID, "acme", "order", "x", "--domain", "not a name")
        self.fails(tglib.USAGE, "acme", "order", "x", "--domain", "x.example.com",
                   "--challenge", "http-02")
        self.fails(tglib.USAGE, "acme", "order", "x", "--domain", "*.example.com")
        self.fails(tglib.NOTFOUND, "acme", "order", "x", "--domain", "x.example.com",
                   "--account", "other")
        self.fails(tglib.INVALID, "acme", "order", "x", "--domain", "x.example.com",
                   "--profile", "none-such")
        self.assertEqual(self.dump(), before)

        # http-01
        doc = self.ok("--json", "acme", "order", "web", "--domain", "web.example.com",
                      "--domain", "www.example.com").json()
        self.assertEqual(doc["state"], "valid", doc)
        self.assertEqual(doc["challenge"], "http-01")
        c1 = self.wait_for(lambda: self.try_served("web.example.com", root), 5,
                           "serve offers web.example.com")
        self.assertIn("www.example.com", [n.value for n in c1.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value])
        shown = self.show("web")
        self.assertTrue(shown["private_key"], shown)  # the key made here for the request
        self.assertFalse(shown["exportable"], shown)  # ... and never exportable
        self.assertEqual(self.ok("--json", "request", "list").json(), [])  # consumed

        # the stored account URL is lost: the account is found again by its key
        # (onlyReturnExisting) and kept
        con = sqlite3.connect(os.path.join(self.home, "store.db"), timeout=10)
        con.execute("UPDATE acme_accounts SET doc = json_remove(doc, '$.url')")
        # and a challenge left by an order that was killed two hours ago
        con.execute("INSERT INTO acme_challenges(token, domain, type, keyauth, created) "
                    "VALUES ('stale', 'old.example.com', 'http-01', 'stale.x', ?)",
                    (int(time.time()) - 7200,))
        con.commit()
        con.close()
        self.assertIsNone(self.ok("--json", "acme", "account", "show", "default").json()
                          .get("url"))

        # tls-alpn-01
        doc = self.ok("--json", "acme", "order", "alpn.example.com", "--domain",
                      "alpn.example.com", "--challenge", "tls-alpn-01", "--profile",
                      "shortlived").json()
        self.assertEqual(doc["name"], "alpn.example.com")
        self.assertEqual((doc["profile"], self.resp.profiles[-1]), ("shortlived", "shortlived"))
        self.assertEqual(self.ok("--json", "acme", "account", "show", "default").json()["url"],
                         acc["url"])
        con = sqlite3.connect(os.path.join(self.home, "store.db"), timeout=10)
        self.assertEqual(con.execute("SELECT count(*) FROM acme_challenges").fetchone()[0], 0)
        con.close()
        self.assertEqual(doc["state"], "valid", doc)
        self.wait_for(lambda: self.try_served("alpn.example.com", root), 5,
                      "serve offers alpn.example.com")

        # dns-01 through a hook (argv; the record in its environment), a wildcard name
        hook = self.write("dns-hook", f"""#!/usr/bin/env python3
import json, os, sys, urllib.request
name = os.environ["TLSGATE_ACME_TXT_NAME"] + "."
if sys.argv[-1] == "add":
    path, doc = "/set-txt", {{"host": name, "value": os.environ["TLSGATE_ACME_TXT_VALUE"]}}
else:
    path, doc = "/clear-txt", {{"host": name}}
with open({self.path("hook.log")!r}, "a") as f:
    f.write(sys.argv[-1] + " " + name + "\\n")
urllib.request.urlopen(urllib.request.Request(
    "http://127.0.0.1:{self.chall_mgmt}" + path, data=json.dumps(doc).encode(),
    method="POST"), timeout=5).read()
""")
        os.chmod(hook, 0o755)
        doc = self.ok("--json", "acme", "order", "wild", "--domain", "*.wild.example.com",
                      "--challenge", "dns-01", "--dns-hook", hook).json()
        self.assertEqual(doc["state"], "valid", doc)
        self.assertEqual(self.rd(self.path("hook.log")).split("\n")[:2],
                         ["add _acme-challenge.wild.example.com.",
                          "remove _acme-challenge.wild.example.com."])
        self.wait_for(lambda: self.try_served("x.wild.example.com", root), 5,
                      "serve offers x.wild.example.com")

        # a renewal whose challenge cannot succeed: counted, the old certificate serves on
        self.chall("/set-servfail", {"host": "web.example.com."})  # the name cannot resolve
        r = self.fails(tglib.IO, "acme", "renew", "web")
        self.assertIn("could not validate", r.err)
        st = self.ok("--json", "acme", "show", "web").json()
        self.assertEqual(st["failure_count"], 1, st)
        self.assertIn("web.example.com", st["last_error"])
        self.assertEqual(self.served("web.example.com", root).serial_number, c1.serial_number)

        # ARI: web's window is in the past, so serve's enrollment thread renews it without a
        # restart; while the validation still fails it retries with backoff, counting
        old_id = self.ari_id(c1)
        with self.resp.lock:
            self.resp.past.add(old_id)
        st = self.wait_for(lambda: self.state_if("web", lambda d: d["failure_count"] >= 2), 30,
                           "serve tries to renew web and fails")
        self.assertEqual(st["state"], "renewal-failing", st)
        self.assertIsNotNone(st["next_try_unix"], st)
        self.assertIn("renewing 'web' failed", self.rd(self.path("serve.log")))
        self.assertEqual(self.served("web.example.com", root).serial_number, c1.serial_number)
        self.chall("/clear-servfail", {"host": "web.example.com."})  # it resolves to serve again
        c2 = self.wait_for(lambda: self.renewed("web.example.com", root, c1.serial_number), 45,
                           "serve renews web through ARI")
        self.assertNotEqual(c2.serial_number, c1.serial_number)
        self.assertIn(old_id, self.resp.replaces, self.resp.replaces)
        st = self.ok("--json", "acme", "show", "web").json()
        self.assertEqual(st["state"], "valid", st)
        self.assertEqual(st["failure_count"], 0, st)
        self.assertEqual(st["replaced"], old_id, st)
        # docs/json.md: timestamps in pairs, every member present
        self.assertGreater(st["issued_unix"], 0)
        self.assertTrue(st["issued"].endswith("Z"), st)
        if st["ari"] is not None:  # null until serve has read the new one's window
            self.assertEqual(set(st["ari"]), {"start", "start_unix", "end", "end_unix",
                                              "explanation"}, st)
        self.assertIsNone(st["next_try"])
        self.assertEqual(set(st), set(self.ok("--json", "acme", "list").json()[0]))
        self.assertEqual(self.serve_proc.poll(), None)
        sys.stderr.write(f"[{time.monotonic() - t0:.1f} s] ")


class NonceRejectTest(PebbleCase):
    """Pebble refuses 30 % of the nonces: a refusal is retried (3 tries) with the fresh nonce
    it carried; an exchange refused twice fails its command whole (nothing half stored),
    and trying again gets the certificate."""

    nonce_reject = 30

    def test_nonce_rejections(self):
        for _ in range(8):
            r = self.tg("--json", "acme", "account", "create", "--directory", self.directory,
                        "--directory-ca", self.tls["ca.pem"])
            if r.rc == 0:
                break
            self.assertIn("badNonce", r.err)
            self.assertEqual(self.ok("--json", "acme", "account", "list").json(), [])
        else:
            self.fail("no account after 8 tries")
        self.serve()
        root = self.pebble_root()
        for _ in range(8):
            r = self.tg("--json", "acme", "order", "n", "--domain", "n.example.com")
            if r.rc == 0:
                break
            self.assertIn("badNonce", r.err, r)
            self.assertNotIn("n", [c["name"] for c in self.ok("--json", "cert", "list").json()])
            self.ok("acme", "delete", "n")
        else:
            self.fail("no certificate after 8 orders")
        self.wait_for(lambda: self.try_served("n.example.com", root), 5, "serve offers n")


if __name__ == "__main__":
    tglib.main()
