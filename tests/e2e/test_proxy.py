#!/usr/bin/env python3
"""End-to-end tests of client inspection (issue 9, SPEC I1–I7): `tlsgate serve` runs the
client proxies of the store; curl, openssl s_client and Python's ssl go through them to
TLS origins made by tests/e2e/origins.py on 127.0.0.1.

  * explicit mode (HTTP CONNECT): a client trusting only our signing CA fetches through
    the proxy; the forged leaf carries the upstream's names, SHA-256, our CA as issuer;
    a second connection is served from the mint cache; ALPN h2 passes, and is taken off
    with --http2-downgrade;
  * the upstream failure matrix: every bad origin is either blocked (a TLS alert) or
    shown to the client under the untrusted CA, never silently accepted; `good` passes;
  * a port outside the detection ports is passed through: the client sees the origin's
    own certificate;
  * live changes: a proxy created, changed or deleted while serve runs;
  * transparent mode: iptables REDIRECT from a network namespace the test makes (root
    only), the original destination recovered;
  * the SSL log and `tlsgate proxy stats`.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/e2e/test_proxy.py
"""
import datetime
import re
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import origins  # noqa: E402
import tglib  # noqa: E402
from test_serve import SLOW, ServeCase  # noqa: E402
from tglib import free_port  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

BAD = [c for c in origins.CASES if c not in ("good",)]

# Durumeric et al. (NDSS 2017) grade A: what a modern browser offers. Suites a ClientHello
# may carry: TLS 1.3, ECDHE with AES-GCM or ChaCha20, ECDHE with AES-CBC (as browsers
# still offer), and the renegotiation SCSV. Nothing without forward secrecy, no RC4,
# 3DES, NULL, export or anonymous suites.
GRADE_A_SUITES = {0x1301, 0x1302, 0x1303, 0xC02B, 0xC02C, 0xC02F, 0xC030, 0xCCA8, 0xCCA9,
                  0xC009, 0xC00A, 0xC013, 0xC014, 0xC023, 0xC024, 0xC027, 0xC028, 0x00FF}


def parse_client_hello(data):
    """(legacy version, suites, compression methods, {extension type: bytes}) of a
    ClientHello in one TLS record (test-side reading, to grade what the proxy offers)."""
    assert data[0] == 0x16 and data[5] == 0x01, "not a ClientHello"
    p = 9
    version = int.from_bytes(data[p:p + 2], "big")
    p += 2 + 32
    p += 1 + data[p]
    n = int.from_bytes(data[p:p + 2], "big")
    suites = [int.from_bytes(data[p + 2 + i:p + 4 + i], "big") for i in range(0, n, 2)]
    p += 2 + n
    comp = list(data[p + 1:p + 1 + data[p]])
    p += 1 + data[p]
    exts = {}
    end = p + 2 + int.from_bytes(data[p:p + 2], "big")
    p += 2
    while p + 4 <= end:
        t, ln = int.from_bytes(data[p:p + 2], "big"), int.from_bytes(data[p + 2:p + 4], "big")
        exts[t] = data[p + 4:p + 4 + ln]
        p += 4 + ln
    return version, suites, comp, exts


def validity(cert):
    """(not before, not after) as aware datetimes, with old and new cryptography."""
    if hasattr(cert, "not_valid_before_utc"):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    utc = datetime.timezone.utc
    return (cert.not_valid_before.replace(tzinfo=utc), cert.not_valid_after.replace(tzinfo=utc))


def cn(name):
    return name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


class ProxyCase(ServeCase):
    def setUp(self):
        super().setUp()
        self.ok("cert", "create", "inspect", "--signing", "--cn", "Inspect Test CA",
                "--key", "ec:p256")
        self.ok("ca", "export", "inspect", "--format", "pem", "--out", self.path("ca.pem"))
        self.ok("ca", "export", "inspect", "--format", "p8", "--no-passphrase", "--out",
                self.path("ca.key"))
        # own-ca: an origin whose chain ends in our own signing CA
        self.pki = origins.make_pki(self.path("pki"),
                                    own_ca=(self.path("ca.pem"), self.path("ca.key")))
        self.ok("ca", "import", self.pki["root"], "--name", "origins-root")
        self.ok("truststore", "create", "web")
        # our signing CA in the trust store too: the proxy must still never trust it
        self.ok("truststore", "add", "web", "origins-root", "inspect")
        self.hosts = self.path("hosts")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1 good.test other.test\n")
        self.origins = None

    def tearDown(self):
        if self.origins:
            self.origins.stop()
        super().tearDown()

    def start_origins(self, cases=None):
        self.origins = origins.OriginSet(self.pki, cases=cases)
        return self.origins

    def create_proxy(self, name, ports, *extra, mode="explicit", listen=None):
        port = free_port() if listen is None else None
        listen = listen or f"127.0.0.1:{port}"
        self.ok("proxy", "client", "create", name, "--signing", "inspect", "--truststore", "web",
                "--listen", listen, "--mode", mode, "--ports", ",".join(map(str, ports)), "--log",
                *extra)
        return listen

    def good_proxy(self, *extra):
        """The `good` origin, a client proxy "web" for its port (extra: more create
        options) and serve running it: (origins, port, proxy address, serve)."""
        og = self.start_origins(["good"])
        port = og.port("good")
        listen = self.create_proxy("web", [port], *extra)
        srv = self.start()
        self.wait_listening(listen, srv)
        return og, port, listen, srv

    def start(self, *args):
        return self.serve(*args, env={"TLSGATE_TEST_HOSTS": self.hosts}, quiet=False)

    def wait_listening(self, listen, srv, present=True):
        host, port = listen.rsplit(":", 1)
        deadline = time.monotonic() + 5 * SLOW
        import socket
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=0.5).close()
                if present:
                    return
            except OSError:
                if not present:
                    return
            time.sleep(0.1)
        self.fail(f"proxy on {listen} {'not listening' if present else 'still listening'}: "
                  f"{srv.stderr()[-2000:]}")

    def curl(self, listen, url, *extra, cafile=None):
        cafile = cafile or self.path("ca.pem")
        return subprocess.run(["curl", "-sS", "--max-time", str(10 * SLOW), "--proxy",
                               f"http://{listen}", "--cacert", cafile, *extra, url],
                              capture_output=True, text=True, timeout=30 * SLOW)

    def leaf_via(self, listen, host, port, servername=None):
        """The certificate chain the client sees through the explicit proxy (s_client)."""
        p = subprocess.run(["openssl", "s_client", "-proxy", listen, "-connect", f"{host}:{port}",
                            "-servername", servername or host, "-showcerts"],
                           input="", capture_output=True, text=True, timeout=20 * SLOW)
        pems = []
        text = p.stdout
        while "-----BEGIN CERTIFICATE-----" in text:
            a = text.index("-----BEGIN CERTIFICATE-----")
            b = text.index("-----END CERTIFICATE-----", a) + len("-----END CERTIFICATE-----")
            pems.append(x509.load_pem_x509_certificate(text[a:b].encode()))
            text = text[b:]
        return pems, p

    # ---- explicit mode ----

    def test_explicit_decrypts_with_a_forged_leaf(self):
        og, port, listen, srv = self.good_proxy()
        url = f"https://good.test:{port}/"
        r = self.curl(listen, url)
        self.assertEqual(r.returncode, 0, r.stderr + srv.stderr()[-2000:])
        self.assertEqual(r.stdout, "origin:good\n")
        self.assertEqual(og["good"].last_sni, "good.test", "the client's SNI reaches upstream")
        # trusting the origin's own root instead fails: the client did not get its chain
        r = self.curl(listen, url, cafile=self.pki["root"])
        self.assertNotEqual(r.returncode, 0, "the origin's certificate reached the client")

        chain, p = self.leaf_via(listen, "good.test", port)
        self.assertTrue(chain, p.stdout + p.stderr)
        leaf = chain[0]
        with open(self.pki["good"]["leaf"], "rb") as f:
            up = x509.load_pem_x509_certificate(f.read())
        self.assertEqual(cn(leaf.issuer), "Inspect Test CA")
        self.assertEqual(leaf.subject, up.subject)
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertIn("good.test", sans.get_values_for_type(x509.DNSName))
        self.assertEqual(leaf.signature_hash_algorithm.name, "sha256")
        self.assertGreaterEqual(validity(leaf)[0], validity(up)[0])
        self.assertLessEqual(validity(leaf)[1], validity(up)[1])
        self.assertEqual(cn(chain[1].subject), "Inspect Test CA", "the CA is sent with the leaf")
        # openssl verifies the forged chain against our CA alone
        sc = subprocess.run(["openssl", "s_client", "-proxy", listen, "-connect",
                             f"good.test:{port}", "-servername", "good.test", "-CAfile",
                             self.path("ca.pem"), "-verify_return_error", "-verify_hostname",
                             "good.test"], input="", capture_output=True, text=True,
                            timeout=20 * SLOW)
        self.assertIn("Verify return code: 0 (ok)", sc.stdout, sc.stdout[-1500:])

        st = self.stats("web", lambda st: st["decrypted"] >= 3)
        self.assertGreaterEqual(st["decrypted"], 3)
        self.assertEqual(st["mints"], 1, st)
        self.assertGreaterEqual(st["cache_hits"], 2, st)
        lines = [ln for ln in self.wait_log(lambda ln: ln["outcome"] == "decrypted")
                 if ln["outcome"] == "decrypted"]
        self.assertTrue(lines, self.log_lines())
        ln = lines[0]
        self.assertEqual(ln["sni"], "good.test")
        self.assertEqual(ln["proxy"], "web")
        self.assertEqual(ln["target"], f"good.test:{port}")
        self.assertIn(ln["upstream_version"], ("TLSv1.3", "TLSv1.2"))
        self.assertEqual(len(ln["upstream_sha256"]), 64)
        self.assertEqual(len(ln["forged_sha256"]), 64)
        self.assertGreater(ln["bytes_from_upstream"], 0)
        self.assert_clean_exit(srv, "explicit proxy")

    @unittest.skipUnless(shutil.which("tshark"), "tshark (Debian package) is not installed")
    def test_pcap_and_content_log(self):
        og = self.start_origins(["good"])
        port = og.port("good")
        listen = self.create_proxy("web", [port])
        pcap = self.path("flows.pcap")
        content = self.path("content")
        srv = self.start("--pcap", pcap, "--content-log", content)
        self.wait_listening(listen, srv)
        r = self.curl(listen, f"https://good.test:{port}/", "--http1.1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_clean_exit(srv, "pcap")  # flushed and closed at exit
        t = subprocess.run(["tshark", "-r", pcap, "-o", "tcp.check_checksum:TRUE", "-q", "-z",
                            "follow,tcp,ascii,0"], capture_output=True, text=True, timeout=60)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("GET / HTTP/1.1", t.stdout, "the client's request in clear")
        self.assertIn("origin:good", t.stdout, "the origin's answer in clear")
        self.assertIn(f":{port}", t.stdout, "the conversation is with the origin's port")
        bad = subprocess.run(["tshark", "-r", pcap, "-o", "tcp.check_checksum:TRUE",
                              "--disable-protocol", "tls", "--disable-protocol", "http", "-Y",
                              "tcp.analysis.flags || _ws.expert.severity >= warning"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(bad.stdout.strip(), "", "tshark flags the synthetic TCP")
        # the content log: one file for the flow, records "<ms> <client|server> <len>\n"+bytes
        files = os.listdir(content)
        self.assertEqual(len(files), 1, files)
        self.assertEqual(os.stat(content).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(content, files[0])).st_mode & 0o777, 0o600)
        with open(os.path.join(content, files[0]), "rb") as f:
            data = f.read()
        sides = {"client": b"", "server": b""}
        while data:
            head, data = data.split(b"\n", 1)
            ms, side, n = head.split(b" ")
            sides[side.decode()] += data[:int(n)]
            data = data[int(n):]
        self.assertTrue(sides["client"].startswith(b"GET / HTTP/1.1\r\n"), sides["client"][:80])
        self.assertTrue(sides["server"].startswith(b"HTTP/1.1 200"), sides["server"][:80])
        self.assertTrue(sides["server"].endswith(b"origin:good\n"))

    def test_ca_download_page(self):
        listen = self.create_proxy("web", [443])
        srv = self.start()
        self.wait_listening(listen, srv)
        with open(self.path("ca.pem"), "rb") as f:
            ours = x509.load_pem_x509_certificate(f.read())
        got = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://{listen}/ca.pem"],
                             capture_output=True, timeout=30)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(x509.load_pem_x509_certificate(got.stdout), ours)
        # as a browser set to use the proxy asks for http://tlsgate.ca/
        got = subprocess.run(["curl", "-sS", "--max-time", "10", "--proxy", f"http://{listen}",
                              "http://tlsgate.ca/ca.der"], capture_output=True, timeout=30)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(x509.load_der_x509_certificate(got.stdout), ours)
        page = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://{listen}/"],
                              capture_output=True, text=True, timeout=30)
        fp = ours.fingerprint(hashes.SHA256()).hex().upper()
        self.assertIn(":".join(fp[i:i + 2] for i in range(0, 64, 2)), page.stdout)
        self.assertIn("update-ca-certificates", page.stdout)
        self.assertNotIn("PRIVATE KEY", page.stdout)
        other = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                "--max-time", "10", f"http://{listen}/ca.key"],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(other.stdout, "405")
        # a rollover (ca reissue): both copies are offered
        self.ok("ca", "reissue", "inspect", "--days", "800", "--name", "inspect-next")
        self.ok("ca", "export", "inspect-next", "--format", "pem", "--out", self.path("next.pem"))
        with open(self.path("next.pem"), "rb") as f:
            nxt = x509.load_pem_x509_certificate(f.read())
        fp2 = nxt.fingerprint(hashes.SHA256()).hex().upper()
        fp2 = ":".join(fp2[i:i + 2] for i in range(0, 64, 2))
        deadline = time.monotonic() + 5 * SLOW
        while True:
            page = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://{listen}/"],
                                  capture_output=True, text=True, timeout=30)
            if fp2 in page.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertIn(fp2, page.stdout, "the rollover copy is not on the page")
        got = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://{listen}/ca-2.der"],
                             capture_output=True, timeout=30)
        self.assertEqual(x509.load_der_x509_certificate(got.stdout), nxt)
        self.assertEqual(nxt.public_key().public_numbers(), ours.public_key().public_numbers())
        self.assert_clean_exit(srv, "CA page")

    @unittest.skipUnless(shutil.which("chromium") and shutil.which("certutil"),
                         "chromium and certutil (Debian chromium, libnss3-tools) are needed")
    def test_chromium_through_the_proxy(self):
        """Headless Chromium with our CA in its NSS database loads a page through the
        proxy without a warning; without the CA it gets the certificate interstitial."""
        og, port, listen, srv = self.good_proxy()
        home = self.path("chromium-home")
        nssdb = os.path.join(home, ".pki", "nssdb")
        os.makedirs(nssdb)
        self.sh("certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password")

        def load():
            env = dict(os.environ, HOME=home)
            return subprocess.run(
                ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                 "--no-first-run", f"--user-data-dir={home}/profile",
                 f"--proxy-server=http://{listen}", "--virtual-time-budget=5000",
                 "--dump-dom", f"https://good.test:{port}/"],
                capture_output=True, text=True, env=env, timeout=90 * SLOW)

        r = load()
        self.assertNotIn("origin:good", r.stdout, "loaded without trusting our CA")
        self.sh("certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "inspect", "-i",
                self.path("ca.pem"))
        r = load()
        self.assertIn("origin:good", r.stdout, r.stdout[-2000:] + r.stderr[-2000:])
        self.assertEqual(og["good"].last_sni, "good.test")
        self.assert_clean_exit(srv, "chromium")

    def test_upstream_client_hello_grade_a(self):
        """The ClientHello the proxy sends upstream: TLS 1.2 and 1.3 only, grade-A suites,
        no compression, the client's SNI. And towards clients: no TLS 1.1, no suite
        without forward secrecy."""
        import socket
        import threading
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        port = lsock.getsockname()[1]
        got = {}

        def accept():
            c, _ = lsock.accept()
            c.settimeout(10)
            buf = b""
            while len(buf) < 5 or len(buf) < 5 + int.from_bytes(buf[3:5], "big"):
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf += chunk
            got["hello"] = buf
            c.close()
        t = threading.Thread(target=accept)
        t.start()
        listen = self.create_proxy("web", [port])
        srv = self.start()
        self.wait_listening(listen, srv)
        self.curl(listen, f"https://good.test:{port}/")
        t.join(20)
        lsock.close()
        self.assertIn("hello", got, "no ClientHello reached the origin")
        version, suites, comp, exts = parse_client_hello(got["hello"])
        self.assertEqual(version, 0x0303)
        weak = [hex(x) for x in suites if x not in GRADE_A_SUITES]
        self.assertEqual(weak, [], "suites below grade A offered upstream")
        self.assertTrue(set(suites) & {0x1301, 0x1302, 0x1303}, "no TLS 1.3 suite")
        self.assertEqual(comp, [0])
        sv = exts.get(43, b"")
        versions = {int.from_bytes(sv[1 + i:3 + i], "big") for i in range(0, sv[0], 2)} if sv else set()
        self.assertEqual(versions, {0x0304, 0x0303}, "only TLS 1.3 and 1.2 offered")
        self.assertIn(b"good.test", exts.get(0, b""), "the client's SNI is passed on")
        # the client side: TLS 1.1 and suites without forward secrecy are refused
        og = self.start_origins(["good"])
        self.ok("proxy", "client", "set", "web", "--ports", str(og.port("good")))
        time.sleep(1.5 * SLOW)
        for args in (["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
                     ["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
                     ["-tls1_2", "-cipher", "AES128-SHA"]):
            with self.subTest(offer=args):
                p = subprocess.run(["openssl", "s_client", "-proxy", listen, "-connect",
                                    f"good.test:{og.port('good')}", "-servername", "good.test",
                                    *args], input="", capture_output=True, text=True,
                                   timeout=20 * SLOW)
                self.assertNotIn("BEGIN CERTIFICATE", p.stdout + "", p.stdout[-800:])
                self.assertNotEqual(p.returncode, 0)
        self.assert_clean_exit(srv, "grade")

    def test_upstream_resumption(self):
        """A second flow to the same origin resumes the upstream TLS session, and is still
        checked and forged (the chain from the full handshake is verified again)."""
        og = self.start_origins(["good", "self-signed"])
        listen = self.create_proxy("web", [og.port("good"), og.port("self-signed")])
        srv = self.start()
        self.wait_listening(listen, srv)
        for case, want in (("good", 0), ("self-signed", 60)):
            for i in range(3):
                r = self.curl(listen, f"https://good.test:{og.port(case)}/", "--http1.1")
                self.assertEqual(r.returncode, want, (case, i, r.stderr))
        lines = self.wait_log(lambda ln: sum(x["upstream_resumed"] for x in self.log_lines()
                                             if x["target"].endswith(f":{og.port('good')}")) >= 2)
        good = [ln for ln in lines if ln["target"] == f"good.test:{og.port('good')}"]
        self.assertEqual(len(good), 3)
        self.assertTrue(all(ln["outcome"] == "decrypted" for ln in good), good)
        self.assertFalse(good[0]["upstream_resumed"])
        self.assertTrue(any(ln["upstream_resumed"] for ln in good[1:]), good)
        bad = [ln for ln in lines if ln["target"] == f"good.test:{og.port('self-signed')}"]
        self.assertTrue(bad and all(ln["untrusted_ca"] for ln in bad),
                        "a resumed session skipped the upstream check")
        self.assert_clean_exit(srv, "resumption")

    def test_max_conns(self):
        """Over --max-conns new flows pass through uninspected (bypass) or are refused
        (block); the log says so once per crossing."""
        import socket
        og, port, listen, srv = self.good_proxy("--max-conns", "1")
        host, pport = listen.rsplit(":", 1)
        hold = socket.create_connection((host, int(pport)), timeout=5)
        self.track(hold)
        hold.sendall(f"CONNECT good.test:{port} HTTP/1.1\r\n\r\n".encode())
        self.assertIn(b" 200 ", hold.recv(100))  # one flow in setup, waiting for its hello
        time.sleep(0.3)
        self.assertEqual(self.issuer_via(listen, port), "Origins Intermediate",
                         "over --max-conns (bypass): the origin's own certificate")
        self.ok("proxy", "client", "set", "web", "--over-max", "block")
        time.sleep(1.5 * SLOW)
        chain, _ = self.leaf_via(listen, "good.test", port)
        self.assertEqual(chain, [], "over --max-conns (block): refused")
        hold.close()
        time.sleep(0.5 * SLOW)
        self.assertEqual(self.issuer_via(listen, port), "Inspect Test CA", "below it again")
        # one crossing (the block came during it), and its end
        self.assertEqual(len(re.findall(r"more than 1 concurrent sessions", srv.stderr())), 1,
                         srv.stderr()[-1500:])
        self.assertIn("below --max-conns 1 again", srv.stderr())
        self.assert_clean_exit(srv, "max-conns")

    def test_client_version_capped_at_upstream(self):
        """A TLS 1.2-only origin: the client, offering 1.3, gets 1.2 from the proxy too."""
        import socketserver
        import ssl as pyssl
        import threading
        ctx = pyssl.SSLContext(pyssl.PROTOCOL_TLS_SERVER)
        ctx.maximum_version = pyssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.pki["good"]["chain"], self.pki["good"]["key"])

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    with ctx.wrap_socket(self.request, server_side=True) as t:
                        t.recv(4096)
                        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                  b"Connection: close\r\n\r\ntls12")
                except OSError:
                    pass
        srv12 = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
        t = threading.Thread(target=srv12.serve_forever, kwargs={"poll_interval": 0.1})
        t.start()
        try:
            port = srv12.server_address[1]
            listen = self.create_proxy("web", [port])
            srv = self.start()
            self.wait_listening(listen, srv)
            r = self.curl(listen, f"https://good.test:{port}/", "--http1.1", "-v")
            self.assertEqual(r.returncode, 0, r.stderr[-1500:])
            self.assertIn("tls12", r.stdout)
            self.assertIn("TLSv1.2", r.stderr, "the client saw a version above upstream's")
            line = [ln for ln in self.wait_log(lambda ln: ln["target"].endswith(f":{port}"))][-1]
            self.assertEqual((line["client_version"], line["upstream_version"]),
                             ("TLSv1.2", "TLSv1.2"))
            self.assert_clean_exit(srv, "version cap")
        finally:
            srv12.shutdown()
            srv12.server_close()
            t.join(5)

    def test_alpn_h2_and_downgrade(self):
        og, port, listen, srv = self.good_proxy()
        url = f"https://good.test:{port}/"
        r = self.curl(listen, url, "--http2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(og["good"].last_alpn, "h2", "h2 passes through by default")
        self.ok("proxy", "client", "set", "web", "--http2-downgrade")
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            r = self.curl(listen, url, "--http2")
            if og["good"].last_alpn == "http/1.1":
                break
            time.sleep(0.3)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(og["good"].last_alpn, "http/1.1", "the downgrade did not reach upstream")
        self.assert_clean_exit(srv, "alpn")

    def test_failure_matrix(self):
        og = self.start_origins()
        ports = [og.port(c) for c in origins.CASES]
        listen = self.create_proxy("web", ports)
        srv = self.start()
        self.wait_listening(listen, srv)
        ok = self.curl(listen, f"https://good.test:{og.port('good')}/")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        for case in BAD:
            with self.subTest(case=case, mode="untrusted"):
                r = self.curl(listen, f"https://good.test:{og.port(case)}/")
                self.assertNotEqual(r.returncode, 0, f"{case} was accepted silently")
                self.assertNotIn("origin:", r.stdout)
                chain, _ = self.leaf_via(listen, "good.test", og.port(case))
                if case == "tls10-only":  # no upstream handshake: blocked
                    self.assertEqual(chain, [], "TLS 1.0-only upstream was not blocked")
                else:
                    self.assertTrue(chain, f"{case}: no certificate reached the client")
                    self.assertEqual(cn(chain[0].issuer), "tlsgate untrusted CA - do not trust",
                                     f"{case}: forged under the trusted CA")
        self.ok("proxy", "client", "set", "web", "--block-invalid", "--block-expired")
        time.sleep(1.5 * SLOW)
        for case in BAD:
            with self.subTest(case=case, mode="block"):
                r = self.curl(listen, f"https://good.test:{og.port(case)}/")
                self.assertNotEqual(r.returncode, 0, f"{case} was accepted silently")
                chain, _ = self.leaf_via(listen, "good.test", og.port(case))
                self.assertEqual(chain, [], f"{case}: a certificate was forged despite block")
        ok = self.curl(listen, f"https://good.test:{og.port('good')}/")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        blocked = [ln for ln in self.wait_log(
            lambda ln: sum(x["outcome"] == "blocked" for x in self.log_lines()) >= len(BAD))
            if ln["outcome"] == "blocked"]
        self.assertGreaterEqual(len(blocked), len(BAD), "one blocked line per bad origin")
        self.assertTrue(all(ln["reason"] for ln in blocked))
        st = self.stats("web", lambda st: st["blocked"] >= len(BAD))
        self.assertGreaterEqual(st["blocked"], len(BAD))
        self.assert_clean_exit(srv, "failure matrix")

    def test_port_outside_detection_passes_through(self):
        og = self.start_origins(["good"])
        port = og.port("good")
        listen = self.create_proxy("web", [port + 1 if port < 65535 else port - 1])
        srv = self.start()
        self.wait_listening(listen, srv)
        r = self.curl(listen, f"https://good.test:{port}/", cafile=self.pki["root"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "origin:good\n")
        chain, _ = self.leaf_via(listen, "good.test", port)
        self.assertEqual(cn(chain[0].issuer), "Origins Intermediate")
        self.assertEqual(self.stats("web", lambda st: st["not_decrypted"] >= 2)["not_decrypted"], 2)
        self.assert_clean_exit(srv, "pass-through")

    def test_ipv6_listener(self):
        og = self.start_origins(["good"])
        port = og.port("good")
        listen = self.create_proxy("six", [port], listen=f"[::1]:{free_port()}")
        srv = self.start()
        deadline = time.monotonic() + 5 * SLOW
        while True:
            r = self.curl(listen, f"https://good.test:{port}/")
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r.returncode, 0, r.stderr + srv.stderr()[-1500:])
        self.assertEqual(r.stdout, "origin:good\n")
        line = [ln for ln in self.wait_log(lambda ln: ln["proxy"] == "six")
                if ln["proxy"] == "six"][-1]
        self.assertTrue(line["client"].startswith("[::1]:"), line)
        self.assert_clean_exit(srv, "ipv6")

    def issuer_via(self, listen, port, servername="good.test", host="good.test"):
        chain, p = self.leaf_via(listen, host, port, servername=servername)
        self.assertTrue(chain, p.stdout[-800:] + p.stderr[-800:])
        return cn(chain[0].issuer)

    def wait_issuer(self, listen, port, want, **kw):
        """The issuer a client sees, once a change has reached serve (within ~1 s)."""
        deadline = time.monotonic() + 5 * SLOW
        while True:
            got = self.issuer_via(listen, port, **kw)
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.3)

    def test_policies(self):
        """Never-decrypt domains, categories and sources reach the client with the origin's
        own certificate; an always-decrypt source wins; without SNI the upstream
        certificate's names decide."""
        og, port, listen, srv = self.good_proxy()
        self.assertEqual(self.issuer_via(listen, port), "Inspect Test CA")
        # a never-decrypt domain (by SNI): "*.good.test" covers www.good.test, not good.test
        self.ok("policy", "create", "pol", "--never-domain", "*.good.test", "--no-defaults")
        self.ok("proxy", "client", "set", "web", "--policy", "pol")
        self.assertEqual(self.wait_issuer(listen, port, "Origins Intermediate",
                                          servername="www.good.test"), "Origins Intermediate")
        self.assertEqual(self.issuer_via(listen, port), "Inspect Test CA",
                         "the apex is not under *.good.test")
        # an always-decrypt source wins over the domain
        self.ok("policy", "set", "pol", "--add-always-source", "127.0.0.0/8")
        # (decrypted: forged, under the untrusted CA as www.good.test is not the origin's name)
        untrusted = "tlsgate untrusted CA - do not trust"
        self.assertEqual(self.wait_issuer(listen, port, untrusted, servername="www.good.test"),
                         untrusted)
        # a never-decrypt source
        self.ok("policy", "set", "pol", "--remove-always-source", "127.0.0.0/8",
                "--remove-never-domain", "*.good.test", "--add-never-source", "127.0.0.1")
        self.assertEqual(self.wait_issuer(listen, port, "Origins Intermediate",
                                          servername="other.example"), "Origins Intermediate")
        # a never-decrypt category, from the category map
        self.write("cats.txt", "# test map\ngood.test finance\n")
        self.ok("category", "import", self.path("cats.txt"))
        self.ok("policy", "set", "pol", "--remove-never-source", "127.0.0.1",
                "--add-never-category", "finance")
        time.sleep(1.5 * SLOW)  # the result looks like the last one's: let the change land
        self.assertEqual(self.wait_issuer(listen, port, "Origins Intermediate"),
                         "Origins Intermediate")
        # without SNI (CONNECT to the address): the certificate's names decide
        self.ok("policy", "set", "pol", "--remove-never-category", "finance",
                "--add-never-domain", "good.test")
        time.sleep(1.5 * SLOW)
        p = subprocess.run(["openssl", "s_client", "-proxy", listen, "-connect",
                            f"127.0.0.1:{port}", "-noservername", "-showcerts"], input="",
                           capture_output=True, text=True, timeout=20 * SLOW)
        self.assertIn("Origins Intermediate", p.stdout.split("---")[1] if "---" in p.stdout
                      else p.stdout, p.stdout[-1500:])
        lines = [ln["reason"] for ln in self.wait_log(lambda ln: "no SNI" in ln["reason"])
                 if ln["outcome"] == "not_decrypted"]
        for part in ("never-decrypt domain *.good.test", "never-decrypt source 127.0.0.1/32",
                     "never-decrypt category finance", "by the certificate: no SNI"):
            self.assertTrue(any(part in r for r in lines), (part, lines))
        self.assert_clean_exit(srv, "policies")

    def test_item6_switches(self):
        """No SNI blocked, non-TLS blocked, fail-open after a rejected leaf, key log."""
        og = self.start_origins(["good"])
        port = og.port("good")
        listen = self.create_proxy("web", [port], "--no-sni", "block", "--non-tls", "block",
                                   "--fail-open", "30", "--keylog")
        srv = self.start()
        self.wait_listening(listen, srv)
        p = subprocess.run(["openssl", "s_client", "-proxy", listen, "-connect",
                            f"127.0.0.1:{port}", "-noservername"], input="",
                           capture_output=True, text=True, timeout=20 * SLOW)
        self.assertNotIn("BEGIN CERTIFICATE", p.stdout, "no SNI was not blocked")
        # plain HTTP on a detection port
        r = self.curl(listen, f"http://good.test:{port}/", "--proxytunnel")
        self.assertNotIn("origin:", r.stdout)
        # a client that rejects the forged leaf (curl trusting only the origin's root)
        r = self.curl(listen, f"https://good.test:{port}/", cafile=self.pki["root"])
        self.assertNotEqual(r.returncode, 0)
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:  # the next ones pass through uninspected
            r = self.curl(listen, f"https://good.test:{port}/", cafile=self.pki["root"])
            if r.returncode == 0:
                break
            time.sleep(0.2)
        self.assertEqual(r.returncode, 0, r.stderr + srv.stderr()[-1500:])
        self.assertIn("--fail-open", srv.stderr())
        reasons = [ln["reason"] for ln in self.wait_log(lambda ln: "fail-open" in ln["reason"])]
        self.assertTrue(any("without SNI: blocked" in x for x in reasons), reasons)
        self.assertTrue(any("not TLS on a detection port: blocked" in x for x in reasons), reasons)
        self.assertTrue(any("fail-open" in x for x in reasons), reasons)
        keys = os.path.join(self.home, "tls-keys.log")
        self.assertTrue(os.path.exists(keys))
        self.assertEqual(os.stat(keys).st_mode & 0o777, 0o600)
        with open(keys) as f:
            text = f.read()
        self.assertIn("CLIENT_HANDSHAKE_TRAFFIC_SECRET", text)
        self.assert_clean_exit(srv, "item 6")

    def test_live_changes(self):
        og = self.start_origins(["good"])
        port = og.port("good")
        srv = self.start()
        listen = self.create_proxy("late", [port])
        self.wait_listening(listen, srv)
        r = self.curl(listen, f"https://good.test:{port}/")
        self.assertEqual(r.returncode, 0, r.stderr + srv.stderr()[-1500:])
        other = f"127.0.0.1:{free_port()}"
        self.ok("proxy", "client", "set", "late", "--listen", other)
        self.wait_listening(other, srv)
        self.wait_listening(listen, srv, present=False)
        self.ok("proxy", "client", "delete", "late")
        self.wait_listening(other, srv, present=False)
        self.assert_clean_exit(srv, "live changes")


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("iptables") and shutil.which("ip"),
                     "transparent mode needs root, iptables and ip (network namespaces)")
class TransparentCase(ProxyCase):
    """A client in a network namespace of its own reaches the host over a veth pair; the
    host's PREROUTING redirects its TCP to the proxy (iptables REDIRECT)."""

    def setUp(self):
        super().setUp()
        tag = f"{os.getpid() % 10000}{int(time.monotonic() * 1000) % 1000}"
        self.ns = f"tgc{tag}"
        self.veth = f"tgh{tag}"
        self.octet = 100 + int(tag) % 150
        self.host_ip = f"10.{self.octet}.77.1"
        self.client_ip = f"10.{self.octet}.77.2"
        self.rule = None
        self.sh("ip", "netns", "add", self.ns)
        self.sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0",
                "netns", self.ns)
        self.sh("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.veth)
        self.sh("ip", "link", "set", self.veth, "up")
        for cmd in (["ip", "addr", "add", f"{self.client_ip}/24", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
            self.sh("ip", "netns", "exec", self.ns, *cmd)

    def tearDown(self):
        if self.rule:
            subprocess.run(["iptables", "-t", "nat", "-D", *self.rule], capture_output=True)
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        super().tearDown()

    def test_redirect(self):
        self.origins = origins.OriginSet(self.pki, cases=["good"], bind="0.0.0.0")
        port = self.origins.port("good")
        pport = free_port()
        listen = self.create_proxy("tp", [port], mode="transparent",
                                   listen=f"{self.host_ip}:{pport}")
        self.rule = ["PREROUTING", "-i", self.veth, "-p", "tcp", "--dport", str(port), "-j",
                     "REDIRECT", "--to-ports", str(pport)]
        self.sh("iptables", "-t", "nat", "-A", *self.rule)
        srv = self.start()
        self.wait_listening(listen, srv)
        r = subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-sS", "--max-time",
                            str(10 * SLOW), "--cacert", self.path("ca.pem"), "--resolve",
                            f"good.test:{port}:{self.host_ip}", f"https://good.test:{port}/"],
                           capture_output=True, text=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr + srv.stderr()[-2000:])
        self.assertEqual(r.stdout, "origin:good\n")
        lines = [ln for ln in self.wait_log(lambda ln: ln["proxy"] == "tp") if ln["proxy"] == "tp"]
        self.assertTrue(lines)
        self.assertEqual(lines[-1]["target"], f"{self.host_ip}:{port}",
                         "the original destination was not recovered")
        self.assertEqual(lines[-1]["outcome"], "decrypted")
        # a direct connection to the transparent port (not redirected) is refused
        r = subprocess.run(["curl", "-sS", "--max-time", "5", "-k", f"https://{listen}/"],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assert_clean_exit(srv, "transparent")

    # the explicit-mode tests are not repeated here
    test_explicit_decrypts_with_a_forged_leaf = None
    test_alpn_h2_and_downgrade = None
    test_failure_matrix = None
    test_port_outside_detection_passes_through = None
    test_live_changes = None
    test_pcap_and_content_log = None
    test_ca_download_page = None
    test_chromium_through_the_proxy = None
    test_upstream_client_hello_grade_a = None
    test_ipv6_listener = None
    test_policies = None
    test_item6_switches = None
    test_upstream_resumption = None
    test_max_conns = None
    test_client_version_capped_at_upstream = None


if __name__ == "__main__":
    tglib.main()
