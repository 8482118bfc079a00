"""Self-test of the origin fixtures (tests/e2e/origins.py), with tools we did not write.

The proxy tests will count on each origin failing validation for the reason it is named
after, and for that reason only. So, for every case, `openssl s_client` (against the
running server, trusting only "Origins Root", checking the name good.test) and `openssl
verify` (on the chain file) must report exactly the intended error:

  good                    verifies (by name, and by IP 127.0.0.1)
  self-signed             18 self-signed certificate
  unknown-ca              20 unable to get local issuer certificate (at depth 1)
  expired                 10 certificate has expired
  not-yet-valid            9 certificate is not yet valid
  wrong-host              62 hostname mismatch (the chain itself verifies)
  ca-false-intermediate   79 invalid CA certificate (s_client adds 26, unsuitable purpose)
  v1-intermediate         79 invalid CA certificate (likewise 26)
  bad-signature            7 certificate signature failure
  rsa-1024                66 EE certificate key too weak at the default level (Debian: 2);
                          verifies with -auth_level 1
  sha1                    68 CA signature digest algorithm too weak at the default level
                          and at -auth_level 1 (OpenSSL 3 counts SHA-1 below 80 bits);
                          verifies only with -auth_level 0
  own-ca                  20 against the root; verifies against the caller's CA
  tls10-only              verifies over TLS 1.0 (client at SECLEVEL=0); TLS 1.2 and 1.3
                          are refused, and so is a default client

Also: every server sends its chain file as is, answers GET with the case's name (HTTP/1.1
and h2), records SNI and ALPN, and stop() leaves no thread and no listener behind.
"""
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "interop"))
import origins  # noqa: E402
import tglib  # noqa: E402

from cryptography.hazmat.primitives import serialization  # noqa: E402

HOST = "good.test"
PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
VERIFY_ERR_RE = re.compile(r"verify error:num=(\d+):(.*)")
TLS10 = ("-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")

# case: (error number, what openssl 3 says) — s_client's first error, trusting the root
EXPECTED = {
    "self-signed": (18, r"self[- ]signed certificate"),
    "unknown-ca": (20, r"unable to get local issuer certificate"),
    "expired": (10, r"certificate has expired"),
    "not-yet-valid": (9, r"certificate is not yet valid"),
    "wrong-host": (62, r"hostname mismatch"),
    "ca-false-intermediate": (79, r"invalid CA certificate"),
    "v1-intermediate": (79, r"invalid CA certificate"),
    "bad-signature": (7, r"certificate signature failure"),
    "rsa-1024": (66, r"EE certificate key too weak"),
    "sha1": (68, r"CA signature digest algorithm too weak"),
    "own-ca": (20, r"unable to get local issuer certificate"),
}
# what else s_client's callback reports after the first error (it goes on when not told
# to -verify_return_error): consequences of the one defect, not other defects
FOLLOW_ON = {
    "ca-false-intermediate": {26},  # unsuitable certificate purpose (issuer is no CA)
    "v1-intermediate": {26},
    "own-ca": {21},                 # unable to verify the first certificate
}


def pems(text):
    return [re.sub(r"\s+", "", p) for p in PEM_RE.findall(text)]


class TestOrigins(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tg-origins-")
        # "our own signing CA", as a caller would hand it over: PEM bytes
        own, own_key = origins.make_ca("tlsgate test signing CA")
        cls.own_ca = (own.public_bytes(serialization.Encoding.PEM),
                      own_key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
        cls.pki = origins.make_pki(os.path.join(cls.dir, "pki"), HOST, own_ca=cls.own_ca)
        cls.origins = origins.OriginSet(cls.pki)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.origins.stop()
        finally:
            shutil.rmtree(cls.dir, ignore_errors=True)

    # --- openssl, not our code -------------------------------------------------------

    def s_client(self, case, *extra, sni=HOST, cafile=None, send="", verify_name=True):
        """openssl s_client against the case's server; returns (process, all output)."""
        argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{self.origins.port(case)}",
                "-CAfile", cafile or self.pki["root"], "-showcerts"]
        argv += ["-servername", sni] if sni else ["-noservername"]
        if verify_name and sni:
            argv += ["-verify_hostname", sni]
        argv += list(extra)
        if send:
            argv.append("-ign_eof")  # read to the server's close
        p = subprocess.run(argv, input=send, capture_output=True, text=True, timeout=20)
        return p, p.stdout + p.stderr

    def verify_errors(self, out):
        return [(int(n), text.strip()) for n, text in VERIFY_ERR_RE.findall(out)]

    def openssl_verify(self, case, *extra, cafile=None):
        """openssl verify of the case's leaf with its chain file as untrusted: returns
        (exit status, [(error number, depth, text)])."""
        p = subprocess.run(["openssl", "verify", "-CAfile", cafile or self.pki["root"],
                            "-untrusted", self.pki[case]["chain"], *extra,
                            self.pki[case]["leaf"]],
                           capture_output=True, text=True, timeout=20)
        errs = re.findall(r"error (\d+) at (\d+) depth lookup: (.*)", p.stdout + p.stderr)
        return p.returncode, [(int(n), int(d), t.strip()) for n, d, t in errs]

    def get(self, case, ctx, sni=HOST, port=None):
        """GET / over Python's ssl: (head, body, negotiated version)."""
        port = port or self.origins.port(case)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=sni) as s:
                s.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\n\r\n".encode())
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                version = s.version()
        head, _, body = data.partition(b"\r\n\r\n")
        return head.decode(), body.decode(), version

    # --- the cases ---------------------------------------------------------------------

    def test_cases_all_present(self):
        self.assertEqual(sorted(self.origins), sorted(origins.CASES))
        self.assertEqual(len(set(self.origins.ports().values())), len(origins.CASES))
        self.assertTrue(os.path.isfile(self.pki["root"]))
        for case in origins.CASES:
            for what in ("chain", "key", "leaf"):
                self.assertTrue(os.path.isfile(self.pki[case][what]), (case, what))

    def test_good(self):
        p, out = self.s_client("good", "-verify_return_error")
        self.assertEqual(p.returncode, 0, out[-2000:])
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertEqual(self.verify_errors(out), [])
        # also valid for the address, without SNI
        p, out = self.s_client("good", "-verify_return_error", "-verify_ip", "127.0.0.1",
                               sni=None)
        self.assertEqual(p.returncode, 0, out[-2000:])
        self.assertEqual(self.openssl_verify("good", "-verify_hostname", HOST,
                                             "-x509_strict"), (0, []))
        # Python's ssl, checking the name, gets the page naming the case
        ctx = ssl.create_default_context(cafile=self.pki["root"])
        head, body, _ = self.get("good", ctx)
        self.assertTrue(head.startswith("HTTP/1.1 200 OK\r\n"), head)
        self.assertIn("Connection: close", head)
        self.assertEqual(body, "origin:good\n")

    def test_bad_cases_fail_for_their_reason(self):
        for case, (num, text) in EXPECTED.items():
            with self.subTest(case=case):
                # told to stop at the first error: the handshake fails, for that error
                p, out = self.s_client(case, "-verify_return_error")
                self.assertNotEqual(p.returncode, 0, f"{case} accepted: {out[-1500:]}")
                errs = self.verify_errors(out)
                self.assertTrue(errs, f"{case}: no verify error: {out[-1500:]}")
                self.assertEqual(errs[0][0], num, f"{case}: {errs}")
                self.assertRegex(errs[0][1], re.compile(text, re.I))
                # told to go on: nothing else wrong with it but the intended defect
                p, out = self.s_client(case)
                self.assertEqual(p.returncode, 0, f"{case}: {out[-1500:]}")
                self.assertEqual({n for n, _ in self.verify_errors(out)},
                                 {num} | FOLLOW_ON.get(case, set()), f"{case}: {out[-1500:]}")

    def test_openssl_verify(self):
        """The same verdicts from `openssl verify` on the files. It checks no security
        level unless asked (-auth_level) and no name unless asked (-verify_hostname)."""
        for case, (num, text) in EXPECTED.items():
            with self.subTest(case=case):
                extra = ["-verify_hostname", HOST]
                if case in ("rsa-1024", "sha1"):
                    extra += ["-auth_level", "2"]
                rc, errs = self.openssl_verify(case, *extra)
                self.assertNotEqual(rc, 0, case)
                self.assertTrue(errs, case)
                self.assertEqual(errs[0][0], num, f"{case}: {errs}")
                self.assertRegex(errs[0][2], re.compile(text, re.I))
        # wrong-host: the chain itself is fine
        self.assertEqual(self.openssl_verify("wrong-host"), (0, []))
        self.assertEqual(self.openssl_verify("wrong-host", "-verify_hostname",
                                             origins.WRONG_HOST), (0, []))
        # where the error is: the intermediate (depth 1) or the leaf (depth 0)
        for case, depth in (("unknown-ca", 1), ("ca-false-intermediate", 1),
                            ("v1-intermediate", 1), ("bad-signature", 0), ("expired", 0)):
            with self.subTest(case=case, depth=depth):
                errs = self.openssl_verify(case)[1]
                self.assertTrue(errs, f"{case}: verifies")
                self.assertEqual(errs[0][1], depth, f"{case}: {errs}")

    def test_weak_keys_and_digests_by_security_level(self):
        # rsa-1024: 80 bits, allowed from level 1 down
        p, out = self.s_client("rsa-1024", "-verify_return_error")
        self.assertEqual(self.verify_errors(out)[:1], [(66, "EE certificate key too weak")])
        p, out = self.s_client("rsa-1024", "-verify_return_error", "-auth_level", "1")
        self.assertEqual((p.returncode, self.verify_errors(out)), (0, []), out[-1500:])
        # sha1: OpenSSL 3 rates a SHA-1 signature below 80 bits, so level 1 rejects it too
        for level in (None, "1"):
            extra = ("-auth_level", level) if level else ()
            p, out = self.s_client("sha1", "-verify_return_error", *extra)
            self.assertNotEqual(p.returncode, 0, level)
            self.assertEqual(self.verify_errors(out)[:1],
                             [(68, "CA signature digest algorithm too weak")], level)
        p, out = self.s_client("sha1", "-verify_return_error", "-auth_level", "0")
        self.assertEqual((p.returncode, self.verify_errors(out)), (0, []), out[-1500:])
        # the weakness is the certificate's, nothing else (openssl verify without a level)
        self.assertEqual(self.openssl_verify("rsa-1024"), (0, []))
        self.assertEqual(self.openssl_verify("sha1"), (0, []))
        text = subprocess.run(["openssl", "x509", "-in", self.pki["sha1"]["leaf"], "-noout",
                               "-text"], capture_output=True, text=True, check=True).stdout
        self.assertIn("Signature Algorithm: ecdsa-with-SHA1", text)
        text = subprocess.run(["openssl", "x509", "-in", self.pki["rsa-1024"]["leaf"],
                               "-noout", "-text"], capture_output=True, text=True,
                              check=True).stdout
        self.assertIn("Public-Key: (1024 bit)", text)

    def test_v1_intermediate_is_v1(self):
        with open(self.pki["v1-intermediate"]["chain"]) as f:
            inter = PEM_RE.findall(f.read())[1]
        text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=inter,
                              capture_output=True, text=True, check=True).stdout
        self.assertIn("Version: 1 (0x0)", text)
        self.assertNotIn("X509v3 extensions", text)

    def test_own_ca(self):
        own = self.pki["own-ca"]["ca"]
        with open(own, "rb") as f:
            self.assertEqual(f.read(), self.own_ca[0])
        p, out = self.s_client("own-ca", "-verify_return_error", cafile=own)
        self.assertEqual((p.returncode, self.verify_errors(out)), (0, []), out[-1500:])
        self.assertEqual(self.openssl_verify("own-ca", cafile=own), (0, []))

    def test_tls10_only(self):
        origin = self.origins["tls10-only"]
        origin.clear()
        p, out = self.s_client("tls10-only", "-verify_return_error", *TLS10,
                               send=f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n")
        self.assertEqual(p.returncode, 0, out[-2000:])
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertRegex(out, r"Protocol\s*: TLSv1\n")
        self.assertIn("origin:tls10-only", out)
        self.assertEqual(origin.wait_connections(1)[-1]["version"], "TLSv1")
        # TLS 1.2 and 1.3 refused, even by a client willing to go to SECLEVEL=0
        for flags in (("-tls1_2",), ("-tls1_2", "-cipher", "DEFAULT:@SECLEVEL=0"),
                      ("-tls1_3",)):
            with self.subTest(client=flags):
                p, out = self.s_client("tls10-only", *flags)
                self.assertNotEqual(p.returncode, 0, out[-1500:])
                self.assertRegex(out, r"unsupported protocol|alert protocol version")
                self.assertNotIn("origin:", out)
        # a default client fails too (Debian: the TLS 1.0 handshake gets as far as the
        # server's SHA-1 key-exchange signature, which level 2 refuses)
        p, out = self.s_client("tls10-only")
        self.assertNotEqual(p.returncode, 0, out[-1500:])
        self.assertRegex(out, r"legacy sigalg disallowed|unsupported protocol|"
                              r"alert protocol version|no protocols available")
        # Python's default client (TLS 1.2 at least) cannot connect
        with self.assertRaises(ssl.SSLError):
            self.get("tls10-only", ssl.create_default_context(cafile=self.pki["root"]))
        self.assertEqual(self.origins["tls10-only"].wait_connections(6)[-1]["version"], None)

    def test_chains_sent_whole(self):
        for case in origins.CASES:
            with self.subTest(case=case):
                extra = TLS10 if case == "tls10-only" else ()
                p, out = self.s_client(case, *extra, verify_name=False)
                self.assertEqual(p.returncode, 0, out[-1500:])
                with open(self.pki[case]["chain"]) as f:
                    chain = pems(f.read())
                self.assertEqual(pems(p.stdout), chain)
                with open(self.pki["root"]) as f:
                    self.assertNotIn(pems(f.read())[0], chain)

    def test_alpn_sni_and_requests(self):
        origin = self.origins["good"]
        for offer, sni, want in (("h2,http/1.1", HOST, "h2"), ("http/1.1", HOST, "http/1.1"),
                                 ("h2", "else.example", "h2"), (None, None, None)):
            with self.subTest(offer=offer, sni=sni):
                origin.clear()
                extra = ("-alpn", offer) if offer else ()
                p, out = self.s_client("good", *extra, sni=sni, verify_name=False)
                self.assertEqual(p.returncode, 0, out[-1500:])
                if want:
                    self.assertIn(f"ALPN protocol: {want}", out)
                origin.wait_connections(1)
                self.assertEqual((origin.last_sni, origin.last_alpn), (sni, want))
        # a whole request each way: curl over h2 and over HTTP/1.1, Python's ssl
        port = self.origins.port("good")
        for flag, alpn in (("--http2", "h2"), ("--http1.1", "http/1.1")):
            with self.subTest(curl=flag):
                origin.clear()
                p = subprocess.run(["curl", "-sS", "--max-time", "10", flag, "--cacert",
                                    self.pki["root"], "--resolve", f"{HOST}:{port}:127.0.0.1",
                                    "-w", "%{http_code} %{http_version}",
                                    f"https://{HOST}:{port}/"],
                                   capture_output=True, text=True, timeout=20)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout, "origin:good\n200 " +
                                 ("2" if alpn == "h2" else "1.1"))
                rec = origin.wait_connections(1)[-1]
                self.assertEqual((rec["sni"], rec["alpn"], rec["error"]), (HOST, alpn, None))
                if alpn == "h2":
                    self.assertTrue(rec["request"].startswith(origins.H2_PREFACE))
                else:
                    self.assertTrue(rec["request"].startswith(b"GET / HTTP/1.1\r\n"))
        origin.clear()
        ctx = ssl.create_default_context(cafile=self.pki["root"])
        head, body, version = self.get("good", ctx)
        self.assertEqual(body, "origin:good\n")
        rec = origin.wait_connections(1)[-1]
        self.assertEqual((rec["sni"], rec["alpn"], rec["version"]), (HOST, None, version))
        # a failed handshake is recorded, with the SNI it came with
        origin.clear()
        with self.assertRaises(ssl.SSLError):
            self.get("good", ssl.create_default_context(), sni="nobody.test")
        rec = origin.wait_connections(1)[-1]
        self.assertEqual(rec["sni"], "nobody.test")
        self.assertIsNotNone(rec["error"])

    def test_stop_cleans_up(self):
        before = set(threading.enumerate())
        with origins.OriginSet(self.pki, cases=["good", "expired"]) as started:
            port = started.port("good")
            origin = started["good"]
            # one request served, then one idle connection and one stuck after half a
            # ClientHello
            ctx = ssl.create_default_context(cafile=self.pki["root"])
            _, body, _ = self.get("good", ctx, port=port)
            self.assertEqual(body, "origin:good\n")
            idle = socket.create_connection(("127.0.0.1", port), timeout=5)
            half = socket.create_connection(("127.0.0.1", port), timeout=5)
            half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            self.assertEqual(len(origin.wait_connections(3, done=False)), 3)
            t0 = time.monotonic()
        took = time.monotonic() - t0
        self.assertLess(took, 3, f"stop took {took:.2f} s with two stuck clients")
        after = set(threading.enumerate())
        self.assertEqual(after - before, set(), "threads left behind")
        for s in (idle, half):
            s.settimeout(2)
            try:
                self.assertEqual(s.recv(100), b"")
            except ConnectionResetError:
                pass
            s.close()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        started.stop()  # twice is harmless


if __name__ == "__main__":
    tglib.main()
