"""`tlsgate serve` under abuse: what an attacker of the appliance found (issue 8, serve).

Each test starts the daemon on 127.0.0.1 (helpers from test_serve.py). What is checked:

  * request head: its size (up to and including the blank line) is checked whether or
    not the head is complete: 8192 bytes pass, 8193 get 431;
  * the status page names the served certificate by its subject, never its friendly
    name.
"""
import os
import re
import resource
import select
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve import (ASAN, ROOT, SLOW, ServeCase, client_hello, fetch,  # noqa: E402
                        http_get, page_field, read_all, tls_connect, vm_rss_kb)

from cryptography import x509  # noqa: E402


def _limit(name, default):
    try:
        with open(os.path.join(ROOT, "src", "tls", "tls.h")) as f:
            m = re.search(r"#define\s+%s\s+(\d+)" % name, f.read())
        return int(m.group(1)) if m else default
    except OSError:
        return default


HANDSHAKE_SECS = _limit("TG_SERVE_HANDSHAKE_SECS", 10)
REQUEST_SECS = _limit("TG_SERVE_REQUEST_SECS", 10)
REQUEST_MAX = _limit("TG_SERVE_REQUEST_MAX", 8192)
LOG_BOUND = 4096  # bytes of standard error a whole attack may cause


def raise_own_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile(soft, hard):
    """A preexec_fn: serve runs under this open-file limit."""
    def fn():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return fn


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def soft_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no 'Max open files' line")


def closed(sock):
    """True when the peer closed or reset sock (data that arrives is read and dropped)."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        sock.setblocking(False)
        try:
            return sock.recv(65536) == b""
        finally:
            sock.setblocking(True)
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True


def connect_raw(port):
    s = socket.socket()
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


class AbuseCase(ServeCase):
    def setUp(self):
        super().setUp()
        raise_own_nofile(8192)

    def connect_many(self, port, n):
        socks = []
        for _ in range(n):
            socks.append(self.track(connect_raw(port)))
        return socks

    def cap_of(self, srv):
        """The connection cap serve logged at start (None if it did not say)."""
        deadline = time.monotonic() + 2 * SLOW
        while True:
            m = re.search(r"connection cap (\d+)", srv.stderr()[:4096])
            if m or time.monotonic() > deadline:
                return int(m.group(1)) if m else None
            time.sleep(0.05)

    def healthz_loop(self, srv, seconds, work=None, every=0.3):
        """Asks /healthz every `every` s for `seconds` (calling work() between), returns
        [(seconds since start, outcome)] of the failures and the slowest answer."""
        failures, slowest = [], 0.0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            t = time.monotonic()
            try:
                with tls_connect(srv.port, "localhost", timeout=3 * SLOW) as s:
                    got = http_get(s, "/healthz")
                if got != (200, "ok\n"):
                    failures.append((round(t - t0, 2), repr(got)))
            except OSError as e:
                failures.append((round(t - t0, 2), repr(e)))
            slowest = max(slowest, time.monotonic() - t)
            if work:
                work()
            time.sleep(max(0.0, every - (time.monotonic() - t)))
        return failures, slowest

    def assert_log_bounded(self, srv, what):
        size = os.path.getsize(srv.errpath)
        err = srv.stderr() if size < 1 << 20 else f"(first bytes) {self.rd(srv.errpath)[:1500]}"
        self.assertLess(size, LOG_BOUND, f"{what}: {size} bytes of log: {err[:1500]}")
        self.assertNotIn("Error from accept() call", err)
        return size


class TestRequestHead(AbuseCase):
    """5. the request head limit holds for complete heads too."""

    def head(self, total, complete=True, extra=b""):
        start = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: "
        end = b"\r\n\r\n" if complete else b"\r\n"
        return start + b"a" * (total - len(start) - len(end)) + end + extra

    def status(self, port, data):
        with tls_connect(port, "localhost") as s:
            s.sendall(data)
            raw = read_all(s)
        return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.") else raw[:80]

    def test_head_size(self):
        srv = self.serve()
        cases = [
            ("complete, exactly the limit", self.head(REQUEST_MAX), 200),
            ("complete, one byte over", self.head(REQUEST_MAX + 1), 431),
            ("complete, 9 KiB", self.head(9 * 1024), 431),
            ("incomplete, 9 KiB", self.head(9 * 1024, complete=False), 431),
            ("small head, 9 KiB after it", self.head(200, extra=b"b" * 9 * 1024), 200),
        ]
        for what, data, want in cases:
            with self.subTest(what):
                self.assertEqual(self.status(srv.port, data), want)


class TestStatusPage(AbuseCase):
    """15d. the status page names the certificate by subject, not by friendly name."""

    def test_subject_not_friendly_name(self):
        self.ok("cert", "create", "internal-billing-prod", "--cn", "shop.example.com",
                "--org", "Example & Co", "--key", "ec:p256", "--days", "30")
        self.ok("cert", "create", "secret-default", "--cn", "fallback.test", "--days", "30")
        self.ok("cert", "default", "secret-default")
        srv = self.serve()
        for sni, friendly in (("shop.example.com", "internal-billing-prod"),
                              (None, "secret-default")):
            with self.subTest(sni=sni):
                with tls_connect(srv.port, sni) as s:
                    der = s.getpeercert(binary_form=True)
                    status, body = http_get(s, "/", sni or "127.0.0.1")
                subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
                self.assertEqual(status, 200)
                self.assertNotIn(friendly, body)
                want = subject.replace("&", "&amp;")
                self.assertEqual(page_field(body, "certificate"), want, body)
        _, _, body = fetch(srv.port, "shop.example.com")
        self.assertIn("O=Example &amp; Co", body)


if __name__ == "__main__":
    import tglib
    tglib.main()
