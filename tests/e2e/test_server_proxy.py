#!/usr/bin/env python3
"""End-to-end tests of server inspection (issue 12, SPEC I5–I8, K7): `tlsgate serve` runs
the server proxies of the store in front of a protected server.

  * transparent (root: network namespaces): a client namespace routes through the host,
    where tlsgate runs, to a server namespace running nginx (two names on one address, its
    own certificates for them, HTTP/2 on). The host's PREROUTING redirects the client's
    TCP to the server to serve's intercept address. curl, openssl s_client and a TLS
    client get each name's certificate as tlsgate holds it (not nginx's, not a forged
    one); nginx receives the requests; tshark reads the cleartext HTTP from serve's PCAP; a source exception's
    flow shows nginx's own certificate and is not in the SSL log; plain text to the port
    is dropped and counted; a flow that a client proxy and the server proxy both match is
    the server proxy's; --http2-downgrade makes nginx see HTTP/1.1, without it HTTP/2.
  * explicit (no root): a reverse proxy on loopback; `cert replace` under a loop of
    handshakes (none fails; the replacement is served within a second); the real server
    verified against a trust store when the proxy has one; an expired certificate still
    served is an error in serve's log.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/e2e/test_server_proxy.py
"""
import datetime
import os
import shutil
import ssl
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import origins  # noqa: E402
import tglib  # noqa: E402
from test_serve import SLOW, ServeCase, leaf_fp  # noqa: E402
from tglib import free_port  # noqa: E402

DAY = datetime.timedelta(days=1)

# A TLS client run inside a namespace: prints the SHA-256 of the certificate it was shown,
# then the protocol version; binds to a source address when given.
PROBE = r"""
import hashlib, socket, ssl, sys
host, port, sni, src = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = socket.create_connection((host, port), timeout=10, source_address=(src, 0) if src else None)
t = ctx.wrap_socket(s, server_hostname=sni)
print(hashlib.sha256(t.getpeercert(True)).hexdigest().upper())
print(t.version())
t.close()
"""


class ServerProxyCase(ServeCase):
    def setUp(self):
        super().setUp()
        self.root, self.root_key = origins.make_ca("Protected Servers Root")
        self.root_pem = origins._write(self.path("root.pem"), origins._pem(self.root))

    def leaf(self, stem, name, days=90, past=False):
        """A leaf for name under the test root: (cert path, key path)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        span = (now - 10 * DAY, now - DAY) if past else (now - DAY, now + days * DAY)
        key = origins._ec_key()
        b = origins._leaf_builder(stem, name, key, self.root, self.root_key, *span, ip=False)
        cert = b.sign(self.root_key, origins._sign_alg(self.root_key))
        cp = origins._write(self.path(f"{stem}.pem"), origins._pem(cert))
        kp = origins._write(self.path(f"{stem}.key"), origins._key_pem(key), 0o600)
        return cp, kp

    def start(self, *args):
        return self.serve(*args, quiet=False)

    def fp(self, pem_path):
        """A PEM file's SHA-256 fingerprint, as openssl computes it."""
        return self.x509_fp(self.rd(pem_path))

    def logged(self, pred):
        """The SSL log's lines that satisfy pred, once there is one (or none after 5 s)."""
        return [ln for ln in self.wait_log(pred) if pred(ln)]


class ExplicitCase(ServerProxyCase):
    """A reverse proxy on loopback in front of openssl s_server."""

    def origin(self, cert, key):
        port = free_port()
        p = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", cert,
                              "-key", key, "-www", "-quiet", "-naccept", "100000"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (p.kill(), p.wait(5)))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return port
            except OSError:
                time.sleep(0.05)
        self.fail("openssl s_server did not start")

    def shown(self, listen, sni):
        """The SHA-256 of the certificate the proxy at listen shows for sni."""
        return leaf_fp(int(listen.rsplit(":", 1)[1]), sni)

    def shown_soon(self, listen, sni):
        """shown(), once a handshake succeeds within 5 s (None if none did)."""
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            try:
                return self.shown(listen, sni)
            except (ssl.SSLError, OSError):
                time.sleep(0.2)
        return None

    def test_replacement_under_load(self):
        cert, key = self.leaf("www", "www.a.test")
        self.ok("cert", "import", cert, "--key", key, "--name", "www")
        up = self.origin(cert, key)
        listen = f"127.0.0.1:{free_port()}"
        self.ok("proxy", "server", "create", "rev", "--mode", "explicit", "--listen", listen,
                "--upstream", f"127.0.0.1:{up}", "--cert", "www", "--log")
        srv = self.start()
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            try:
                if self.shown(listen, "www.a.test") == self.fp(cert):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            self.fail("the explicit server proxy does not answer: " + srv.stderr()[-2000:])
        new_cert, new_key = self.leaf("www2", "www.a.test")
        seen, errors, stop = [], [], threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    seen.append((time.monotonic(), self.shown(listen, "www.a.test")))
                except Exception as e:  # every failure counts
                    errors.append(repr(e))

        t = threading.Thread(target=loop)
        t.start()
        try:
            time.sleep(1)
            started = time.monotonic()  # handshakes before this saw the old certificate
            self.ok("cert", "replace", "www", new_cert, "--key", new_key)
            replaced = time.monotonic()  # the replacement is committed by now
            time.sleep(2.5 * SLOW)
        finally:
            stop.set()
            t.join(30)
        self.assertEqual(errors, [], "a handshake failed while the certificate was replaced")
        before = [fp for ts, fp in seen if ts < started]
        self.assertTrue(before and all(fp == self.fp(cert) for fp in before))
        late = [fp for ts, fp in seen if ts > replaced + 1.0 * SLOW + 0.3]
        self.assertTrue(late, "no handshakes after the replacement")
        self.assertEqual(set(late), {self.fp(new_cert)},
                         "the replacement was not served within a second")
        self.assertGreater(len(seen), 50, "too few handshakes to call it a load")
        # the old one is kept as NAME_REPLACED, the proxy moved to the new one
        self.ok("cert", "show", "www_REPLACED")
        doc = self.ok("--json", "proxy", "server", "show", "rev").json()
        self.assertEqual([c["name"] for c in doc["certificates"]], ["www"])
        self.assert_clean_exit(srv, "replacement")

    def test_verification_and_expired(self):
        good, good_key = self.leaf("good", "www.a.test")
        old, old_key = self.leaf("old", "old.a.test", past=True)
        self.ok("cert", "import", good, "--key", good_key, "--name", "www")
        self.ok("cert", "import", old, "--key", old_key, "--name", "old")
        up = self.origin(good, good_key)
        listen = f"127.0.0.1:{free_port()}"
        self.ok("ca", "import", self.root_pem, "--name", "prot-root")
        self.ok("truststore", "create", "inner")
        self.ok("proxy", "server", "create", "rev", "--mode", "explicit", "--listen", listen,
                "--upstream", f"127.0.0.1:{up}", "--cert", "www", "--cert", "old",
                "--truststore", "inner", "--log")
        srv = self.start()
        time.sleep(1.5 * SLOW)
        # an empty trust store: the real server cannot be verified, the flow is refused
        with self.assertRaises((ssl.SSLError, OSError)):
            self.shown(listen, "www.a.test")
        lines = self.logged(lambda ln: ln["proxy"] == "rev" and ln["outcome"] == "blocked")
        self.assertTrue(lines, "the refused flow is not in the SSL log")
        self.assertIn("the proxy's trust store has no certificates", lines[-1]["reason"])
        # another root in it: verified, and refused
        other, other_key = origins.make_ca("Someone Else's Root")
        origins._write(self.path("other.pem"), origins._pem(other))
        self.ok("ca", "import", self.path("other.pem"), "--name", "other-root")
        self.ok("truststore", "add", "inner", "other-root")
        n = len(lines)
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            with self.assertRaises((ssl.SSLError, OSError)):
                self.shown(listen, "www.a.test")
            lines = self.logged(lambda ln: ln["outcome"] == "blocked")
            if len(lines) > n and "is invalid" in lines[-1]["reason"]:
                break
            n = len(lines)
            time.sleep(0.3)
        self.assertIn("the real server's certificate is invalid", lines[-1]["reason"])
        # the root in the trust store: verified, decrypted
        self.ok("truststore", "add", "inner", "prot-root")
        self.assertEqual(self.shown_soon(listen, "www.a.test"), self.fp(good))
        lines = self.logged(lambda ln: ln["outcome"] == "decrypted")
        self.assertEqual(lines[-1]["reason"], "the real server's certificate is valid")
        self.assertEqual(lines[-1]["certificate"], "www")
        self.assertEqual(lines[-1]["certificate_pick"], "exact")
        # the expired certificate is still served for its name, and serve says so (the
        # real server does not hold that name: not verified any more, so that it passes)
        self.ok("proxy", "server", "set", "rev", "--no-truststore")
        self.assertEqual(self.shown_soon(listen, "old.a.test"), self.fp(old))
        self.assertRegex(srv.stderr(), r"error: server proxy rev: certificate old expired on "
                                       r"\S+ and is still served")
        self.assert_clean_exit(srv, "verification")


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    log_format t '$ssl_server_name $server_protocol $request_uri';
    access_log {d}/access.log t;
    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
    server {{
        listen {ip}:443 ssl http2;
        server_name www.a.test;
        ssl_certificate {d}/www-srv.pem; ssl_certificate_key {d}/www-srv.key;
        location / {{ return 200 "www $server_protocol\\n"; }}
    }}
    server {{
        listen {ip}:443 ssl http2;
        server_name shop.a.test;
        ssl_certificate {d}/shop-srv.pem; ssl_certificate_key {d}/shop-srv.key;
        location / {{ return 200 "shop $server_protocol\\n"; }}
    }}
}}
"""


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("iptables") and shutil.which("ip") and
                     shutil.which("nginx") and shutil.which("tshark"),
                     "needs root, iptables, ip (network namespaces), nginx and tshark")
class TransparentCase(ServerProxyCase):
    """client ns (10.N.77.2, .3) -> host (tlsgate; 10.N.77.1 | 10.N.78.1) -> server ns
    (10.N.78.2, nginx on 443)."""

    def must(self, *cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            self.fail(f"{' '.join(cmd)}: {r.stderr}")
        return r.stdout

    def setUp(self):
        super().setUp()
        tag = f"{os.getpid() % 10000}{int(time.monotonic() * 1000) % 1000}"
        n = 100 + int(tag) % 150
        self.cns, self.sns = f"tgsc{tag}", f"tgss{tag}"
        self.cveth, self.sveth = f"tgc{tag}", f"tgs{tag}"
        self.host_c, self.client, self.client2 = f"10.{n}.77.1", f"10.{n}.77.2", f"10.{n}.77.3"
        self.host_s, self.server = f"10.{n}.78.1", f"10.{n}.78.2"
        self.rules = []
        self.addCleanup(self.undo)
        for ns, veth, host_ip, addrs in ((self.cns, self.cveth, self.host_c,
                                          [self.client, self.client2]),
                                         (self.sns, self.sveth, self.host_s, [self.server])):
            self.must("ip", "netns", "add", ns)
            self.must("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.must("ip", "addr", "add", f"{host_ip}/24", "dev", veth)
            self.must("ip", "link", "set", veth, "up")
            for a in addrs:
                self.must("ip", "netns", "exec", ns, "ip", "addr", "add", f"{a}/24", "dev", "eth0")
            for cmd in (["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"],
                        ["ip", "route", "add", "default", "via", host_ip]):
                self.must("ip", "netns", "exec", ns, *cmd)
        # the protected server: nginx with certificates of its own for both names
        d = self.path("nginx")
        os.makedirs(os.path.join(d, "tmp"))
        for stem, name in (("www-srv", "www.a.test"), ("shop-srv", "shop.a.test")):
            c, k = self.leaf(stem, name)
            shutil.copy(c, d)
            shutil.copy(k, d)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(d=d, ip=self.server))
        self.nginx_dir = d
        self.nginx = subprocess.Popen(["ip", "netns", "exec", self.sns, "nginx", "-p", d, "-c",
                                       os.path.join(d, "nginx.conf"), "-e",
                                       os.path.join(d, "error.log")],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(d, "nginx.pid")):
            if time.monotonic() > deadline or self.nginx.poll() is not None:
                self.fail("nginx did not start: " + self.rd(os.path.join(d, "error.log")))
            time.sleep(0.1)

    def undo(self):
        if getattr(self, "nginx", None):
            self.nginx.terminate()
            try:
                self.nginx.wait(5)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait(5)
        for rule in self.rules:
            subprocess.run(["iptables", "-t", "nat", "-D", *rule], capture_output=True)
        for veth, ns in ((self.cveth, self.cns), (self.sveth, self.sns)):
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def redirect(self, port):
        """The client's TCP to the server's 443 goes to port on the host (one rule)."""
        for rule in self.rules:
            subprocess.run(["iptables", "-t", "nat", "-D", *rule], capture_output=True)
        rule = ["PREROUTING", "-i", self.cveth, "-p", "tcp", "-d", self.server, "--dport", "443",
                "-j", "REDIRECT", "--to-ports", str(port)]
        self.must("iptables", "-t", "nat", "-A", *rule)
        self.rules = [rule]

    def probe(self, sni, src=""):
        r = subprocess.run(["ip", "netns", "exec", self.cns, sys.executable, "-c", PROBE,
                            self.server, "443", sni, src], capture_output=True, text=True,
                           timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        fp, version = r.stdout.split()
        return fp, version

    def ns_curl(self, name, *extra):
        return subprocess.run(["ip", "netns", "exec", self.cns, "curl", "-sS", "--max-time",
                               str(10 * SLOW), "--cacert", self.root_pem, "--resolve",
                               f"{name}:443:{self.server}", *extra, f"https://{name}/"],
                              capture_output=True, text=True, timeout=30 * SLOW)

    def access(self):
        with open(os.path.join(self.nginx_dir, "access.log")) as f:
            return [ln.split() for ln in f if ln.strip()]

    def test_transparent(self):
        www, www_key = self.leaf("www", "www.a.test")
        shop, shop_key = self.leaf("shop", "shop.a.test")
        self.ok("cert", "import", www, "--key", www_key, "--name", "www")
        self.ok("cert", "import", shop, "--key", shop_key, "--name", "shop")
        self.ok("proxy", "server", "create", "web", "--dest", self.server, "--ports", "443",
                "--cert", "www", "--cert", "shop", "--source-except", f"{self.client2}/32",
                "--log")
        ipt = free_port()
        self.redirect(ipt)
        pcap = self.path("flows.pcap")
        srv = self.start("--intercept", f"0.0.0.0:{ipt}", "--pcap", pcap)
        self.wait_for("serve's intercept address", lambda: f"intercept 0.0.0.0:{ipt}:" in
                      srv.stderr(), 5 * SLOW)

        # two names on one address: each its own certificate, as tlsgate holds it
        self.assertEqual(self.probe("www.a.test")[0], self.fp(www))
        self.assertEqual(self.probe("shop.a.test")[0], self.fp(shop))
        for name, pem in (("www.a.test", www), ("shop.a.test", shop)):
            r = subprocess.run(["ip", "netns", "exec", self.cns, "openssl", "s_client",
                                "-connect", f"{self.server}:443", "-servername", name,
                                "-CAfile", self.root_pem, "-verify_return_error"],
                               input="", capture_output=True, text=True, timeout=30 * SLOW)
            self.assertEqual(r.returncode, 0, r.stderr)
            a = r.stdout.index("-----BEGIN CERTIFICATE-----")
            b = r.stdout.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
            self.assertEqual(self.x509_fp(r.stdout[a:b] + "\n"), self.fp(pem), name)
            self.assertIn("Verify return code: 0 (ok)", r.stdout)
        for name in ("www", "shop"):
            r = self.ns_curl(f"{name}.a.test", "--http1.1")
            self.assertEqual(r.returncode, 0, r.stderr + srv.stderr()[-2000:])
            self.assertEqual(r.stdout, f"{name} HTTP/1.1\n")
        got = self.access()
        self.assertIn(["www.a.test", "HTTP/1.1", "/"], got)
        self.assertIn(["shop.a.test", "HTTP/1.1", "/"], got)
        lines = self.logged(lambda ln: ln["proxy"] == "web" and ln["sni"] == "shop.a.test"
                              and ln["outcome"] == "decrypted")
        self.assertTrue(lines)
        self.assertEqual(lines[-1]["certificate"], "shop")
        self.assertEqual(lines[-1]["target"], f"{self.server}:443")
        self.assertEqual(lines[-1]["kind"], "server")

        # a source exception: nginx's own handshake, untouched, not in the SSL log
        before = len(self.log_lines())
        fp, _ = self.probe("www.a.test", src=self.client2)
        self.assertEqual(fp, self.fp(os.path.join(self.nginx_dir, "www-srv.pem")))
        time.sleep(0.5)
        self.assertFalse([ln for ln in self.log_lines()[before:]
                          if ln["client"].startswith(self.client2 + ":")])

        # cleartext to the TLS port: dropped, counted, never reaching nginx
        n_access = len(self.access())
        r = subprocess.run(["ip", "netns", "exec", self.cns, "curl", "-sS", "--max-time", "5",
                            f"http://{self.server}:443/plain"], capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        st = self.stats("web", lambda s: s["cleartext_dropped"] >= 1)
        self.assertEqual(st["cleartext_dropped"], 1, st)
        self.assertGreaterEqual(st["bypassed"], 1, st)
        self.assertEqual(len(self.access()), n_access, "the cleartext reached the server")

        # HTTP/2: passes as h2; with --http2-downgrade nginx sees HTTP/1.1
        r = self.ns_curl("www.a.test", "--http2")
        self.assertEqual((r.returncode, r.stdout), (0, "www HTTP/2.0\n"), r.stderr)
        self.ok("proxy", "server", "set", "web", "--http2-downgrade")
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            r = self.ns_curl("www.a.test", "--http2")
            if r.stdout == "www HTTP/1.1\n":
                break
            time.sleep(0.2)
        self.assertEqual((r.returncode, r.stdout), (0, "www HTTP/1.1\n"), r.stderr)
        self.assertEqual(self.access()[-1][:2], ["www.a.test", "HTTP/1.1"])

        # a flow a client proxy and the server proxy both match: the server's certificate
        self.ok("cert", "create", "inspect", "--signing", "--cn", "Inspect Test CA", "--key",
                "ec:p256")
        cport = free_port()
        self.ok("truststore", "create", "web")
        self.ok("proxy", "client", "create", "cp", "--signing", "inspect", "--truststore", "web",
                "--mode", "transparent", "--listen", f"{self.host_c}:{cport}", "--ports", "443",
                "--log")
        self.wait_for("the client proxy's listener",
                      lambda: "client proxy cp: transparent" in srv.stderr(), 5 * SLOW)
        self.redirect(cport)  # the flow now reaches the client proxy's listener
        before = len(self.log_lines())
        self.assertEqual(self.probe("www.a.test")[0], self.fp(www))
        self.wait_for("the probe's SSL log line", lambda: len(self.log_lines()) > before,
                      5 * SLOW)
        new = self.log_lines()[before:]
        self.assertEqual([(ln["proxy"], ln["kind"], ln["outcome"]) for ln in new],
                         [("web", "server", "decrypted")], new)
        self.assertFalse([ln for ln in self.log_lines() if ln["proxy"] == "cp"],
                         "the client proxy took a flow the server proxy protects")

        self.assert_clean_exit(srv, "transparent")
        # the PCAP: tshark reads the cleartext requests
        r = subprocess.run(["tshark", "-r", pcap, "-Y", "http.request", "-T", "fields", "-e",
                            "http.host", "-e", "http.request.uri"], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        hosts = {ln.split("\t")[0] for ln in r.stdout.splitlines()}
        self.assertIn("www.a.test", hosts)
        self.assertIn("shop.a.test", hosts)


if __name__ == "__main__":
    tglib.main()
