"""A decrypted flow's bytes through the pump (src/tls/pump.c), end to end.

An explicit server proxy on loopback decrypts between a Python TLS client and a Python
TLS origin (the `ssl` module, OpenSSL underneath, but neither side is tlsgate's code).
What is checked:

  * bulk both ways: 48 MB from the origin and 24 MB to it arrive whole (SHA-256 on the
    far side), and the SSL log counts exactly those bytes;
  * backpressure: a client that reads 16 MB slowly while the origin writes as fast as it
    can does not grow serve's memory by more than a few MiB (the pump stops reading the
    origin while the client's socket is full);
  * the end: an origin that ends with a close_notify gives the client a close_notify
    (a clean end: `recv` returns b""), one that just closes its socket gives the client
    a TCP close without one (a truncation the client can tell), and what the origin sent
    before either arrives first;
  * many flows at once (32 in parallel, 1 MB each) all arrive whole.

Run: TLSGATE_BIN=build/tlsgate /usr/bin/python3 tests/e2e/test_pump.py
"""
import hashlib
import os
import socket
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from test_serve import ASAN, SLOW, vm_rss_kb  # noqa: E402
from test_server_proxy import ServerProxyCase  # noqa: E402
from tglib import free_port  # noqa: E402

MB = 1000 * 1000


def pattern(n, seed=b"tlsgate"):
    """n deterministic bytes that do not repeat within a record."""
    out = bytearray()
    block = hashlib.sha512(seed).digest()
    while len(out) < n:
        block = hashlib.sha512(block).digest()
        out += block * 64  # 4 KiB per step: quick, and different every 4 KiB
    return bytes(out[:n])


def read_line(s):
    """Bytes up to and including a newline (or what came before the end)."""
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    return line


class Origin:
    """A TLS origin on loopback. A request is one line: 'get N END', 'put N' (then N
    bytes; the answer is their SHA-256 in hex), where END is 'notify' (close_notify, then
    close) or 'cut' (close the socket without one)."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.errors = []
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, raw):
        s = None
        try:
            raw.settimeout(60 * SLOW)
            s = self.ctx.wrap_socket(raw, server_side=True)
            words = read_line(s).split()
            if not words:
                return
            if words[0] == b"get":
                n, end = int(words[1]), words[2]
                data = pattern(n)
                for i in range(0, n, 1 << 20):
                    s.sendall(data[i:i + (1 << 20)])
                if end == b"notify":
                    s.unwrap()
                else:
                    raw.shutdown(socket.SHUT_RDWR)
                    raw.close()
            elif words[0] == b"put":
                n, h, got = int(words[1]), hashlib.sha256(), 0
                while got < n:
                    b = s.recv(min(1 << 20, n - got))
                    if not b:
                        break
                    h.update(b)
                    got += len(b)
                s.sendall(h.hexdigest().encode() + b"\n")
                s.unwrap()
        except Exception as e:  # noqa: BLE001 (reported by the test that needs it)
            self.errors.append(repr(e))
        finally:
            for x in (s, raw):
                if x is not None:
                    x.close()

    def close(self):
        self.stop = True
        self.sock.close()


class PumpCase(ServerProxyCase):
    def setUp(self):
        super().setUp()
        cert, key = self.leaf("www", "www.a.test")
        self.ok("cert", "import", cert, "--key", key, "--name", "www")
        self.origin = Origin(cert, key)
        self.addCleanup(self.origin.close)
        self.listen = f"127.0.0.1:{free_port()}"
        self.ok("proxy", "server", "create", "rev", "--mode", "explicit", "--listen", self.listen,
                "--upstream", f"127.0.0.1:{self.origin.port}", "--cert", "www", "--log")
        env = None
        if ASAN:  # a small quarantine, so that RSS says what serve holds, not what ASan does
            env = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") +
                                    ":quarantine_size_mb=4:allocator_release_to_os_interval_ms=100"
                                    ).lstrip(":")}
        self.srv = self.serve(quiet=False, env=env)
        self.cctx = ssl.create_default_context(cafile=self.root_pem)
        # Debian's Python sets this by default: a bare close would then read as a clean end
        self.cctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        deadline = time.monotonic() + 5 * SLOW
        while True:
            try:
                socket.create_connection(self.addr(), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.fail("the proxy does not listen: " + self.srv.stderr()[-2000:])
                time.sleep(0.05)

    def addr(self):
        host, port = self.listen.rsplit(":", 1)
        return host, int(port)

    def connect(self):
        raw = socket.create_connection(self.addr(), timeout=60 * SLOW)
        return self.cctx.wrap_socket(raw, server_hostname="www.a.test",
                                     suppress_ragged_eofs=False)

    def fetch(self, n, end="notify", slow=0.0):
        """GET n bytes: (data, how it ended: 'notify', 'ragged' or an error)."""
        s = self.connect()
        s.sendall(f"get {n} {end}\n".encode())
        buf = bytearray()
        how = None
        try:
            while True:
                b = s.recv(1 << 16)
                if not b:
                    how = "notify"
                    break
                buf += b
                if slow:
                    time.sleep(slow)
        except ssl.SSLEOFError:
            how = "ragged"
        except ssl.SSLError as e:  # Debian's Python: the same EOF, as a plain SSLError
            how = "ragged" if "UNEXPECTED_EOF" in str(e) else repr(e)
        except OSError as e:
            how = repr(e)
        s.close()
        return bytes(buf), how

    def flow_lines(self, count):
        return self.wait_log(lambda ln: len([x for x in self.log_lines()
                                             if x.get("proxy") == "rev"]) >= count)

    def test_bulk_both_ways(self):
        n = 48 * MB
        t0 = time.monotonic()
        data, how = self.fetch(n)
        secs = time.monotonic() - t0
        self.assertEqual(how, "notify")
        self.assertEqual(len(data), n)
        self.assertEqual(hashlib.sha256(data).digest(), hashlib.sha256(pattern(n)).digest())
        up = 24 * MB
        body = pattern(up, b"upload")
        s = self.connect()
        s.sendall(f"put {up}\n".encode())
        s.sendall(body)
        answer = read_line(s)
        s.close()
        self.assertEqual(answer.decode().strip(), hashlib.sha256(body).hexdigest(),
                         self.origin.errors)
        lines = [x for x in self.flow_lines(2) if x.get("proxy") == "rev"]
        got = sorted((x["bytes_from_client"], x["bytes_from_upstream"]) for x in lines)
        self.assertIn((len(f"get {n} notify\n"), n), got)
        self.assertIn((len(f"put {up}\n") + up, 65), got)
        sys.stderr.write(f"({n / MB:.0f} MB down in {secs:.2f} s) ")

    def test_slow_reader_bounded_memory(self):
        self.fetch(1 * MB)  # the first flow: the pump's buffers and OpenSSL's are made
        time.sleep(0.3)
        rss0 = vm_rss_kb(self.srv.pid)
        peak = [rss0]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], vm_rss_kb(self.srv.pid))
                time.sleep(0.05)
        threading.Thread(target=watch, daemon=True).start()
        n = 16 * MB
        data, how = self.fetch(n, slow=0.004)  # 64 KiB per 4 ms: about 16 MB/s
        done.set()
        self.assertEqual((len(data), how), (n, "notify"))
        self.assertEqual(hashlib.sha256(data).digest(), hashlib.sha256(pattern(n)).digest())
        grew = peak[0] - rss0
        sys.stderr.write(f"(VmRSS {rss0} kB, at most +{grew} kB while a slow client read "
                         f"{n // MB} MB) ")
        bound = 16 if ASAN else 8  # MiB (ASan: its quarantine and allocator caches too)
        self.assertLess(grew, bound * 1024, "serve buffered what the client did not read yet")

    def test_end_notify_and_cut(self):
        for end, want in (("notify", "notify"), ("cut", "ragged")):
            with self.subTest(end=end):
                n = 3 * MB + 12345
                data, how = self.fetch(n, end=end)
                self.assertEqual(len(data), n)
                self.assertEqual(data, pattern(n))
                self.assertEqual(how, want)

    def test_many_flows(self):
        results = [None] * 32

        def one(i):
            results[i] = self.fetch(1 * MB)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120 * SLOW)
        want = pattern(1 * MB)
        for i, r in enumerate(results):
            self.assertIsNotNone(r, f"flow {i} did not finish")
            self.assertEqual((len(r[0]), r[1]), (len(want), "notify"), f"flow {i}")
            self.assertEqual(r[0], want, f"flow {i}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
