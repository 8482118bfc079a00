"""The PCAP writer (src/proxy/pcap.c) judged by tshark, which we did not write.

tests/unit/pcapgen.c writes the packets of a script; tshark must validate every IP and
TCP checksum, find no fault in the TCP conversation (no retransmission, no missing
segment, no expert warning), and "Follow TCP stream" must give back exactly the bytes
written, in order, in both directions, for an IPv4 and an IPv6 flow with 200 KB bodies.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tglib  # noqa: E402

GEN = os.environ.get("TG_PCAPGEN") or os.path.join(tglib.ROOT, "build", "pcapgen")
TSHARK = "tshark"
CHECK = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]
# Application dissectors judge the payload, not our headers: random bytes on port 443 are
# "unknown TLS records", and decrypted HTTP there is "unencrypted HTTP over an encrypted
# port" (a true warning about a real capture, and not what this test is about).
NOAPP = ["--disable-protocol", "tls", "--disable-protocol", "http"]
FAULTS = "tcp.analysis.flags || _ws.expert.severity >= warning"

BODY = 200 * 1000 + 1  # odd: the last segment of a body ends on half a checksum word


class PcapTshark(tglib.TgCase):
    def setUp(self):
        super().setUp()
        self.data = {}
        for name in ("c0", "s0", "c1", "s1"):
            self.data[name] = os.urandom(BODY)
            with open(self.path(name), "wb") as f:
                f.write(self.data[name])
        self.data["req"] = b"GET /big HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
        with open(self.path("req"), "wb") as f:
            f.write(self.data["req"])
        # Two flows written interleaved, bodies in whole calls and in 16 KiB calls:
        # stream 0 is IPv4, stream 1 IPv6.
        p = self.path
        self.script = "\n".join([
            "flow 0 192.0.2.10 51000 198.51.100.20 443",
            "flow 1 2001:db8::10 51001 2001:db8:1::20 8443",
            "open 0",
            "open 1",
            f"data 0 c {p('req')}",
            f"data 1 c {p('c1')} 16384",
            f"data 0 s {p('s0')}",
            "flush",
            f"data 1 s {p('s1')}",
            f"data 0 c {p('c0')} 16384",
            "close 1",
            "close 0",
        ]) + "\n"
        self.want = {
            0: (self.data["req"] + self.data["c0"], self.data["s0"]),
            1: (self.data["c1"], self.data["s1"]),
        }

    def gen(self, out, *extra):
        r = subprocess.run([GEN, out, *extra], input=self.script.encode(),
                           capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def tshark(self, *args, piped=False):
        """tshark's output on args; piped: reading `pcapgen -` (a stream) on its stdin."""
        if not piped:
            r = subprocess.run([TSHARK, *args], capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout
        gen = subprocess.Popen([GEN, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        ts = subprocess.Popen([TSHARK, *args], stdin=gen.stdout, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        gen.stdout.close()
        gen.stdin.write(self.script.encode())
        gen.stdin.close()
        out, err = ts.communicate(timeout=300)
        self.assertEqual(gen.wait(timeout=60), 0, gen.stderr.read())
        gen.stderr.close()
        self.assertEqual(ts.returncode, 0, err)
        return out

    def follow(self, src, stream):
        """The bytes of each direction of a TCP stream as tshark reassembles them, and
        the two endpoints."""
        out = self.tshark("-r", src, *CHECK, "-q", "-z", f"follow,tcp,raw,{stream}",
                          piped=src == "-")
        nodes, sent = {}, [bytearray(), bytearray()]
        body = False
        for line in out.splitlines():
            if line.startswith("Node "):
                n, addr = line[5:].split(": ", 1)
                nodes[int(n)] = addr
                body = int(n) == 1
            elif line.startswith("====="):
                body = False
            elif body and line.strip():
                side = 1 if line.startswith("\t") else 0
                sent[side] += bytes.fromhex(line.strip())
        return nodes, bytes(sent[0]), bytes(sent[1])

    def assert_streams(self, src):
        ends = {0: ("192.0.2.10:51000", "198.51.100.20:443"),
                1: ("[2001:db8::10]:51001", "[2001:db8:1::20]:8443")}
        for stream in (0, 1):
            with self.subTest(stream=stream):
                nodes, c2s, s2c = self.follow(src, stream)
                self.assertEqual((nodes.get(0), nodes.get(1)), ends[stream])
                want_c, want_s = self.want[stream]
                self.assertEqual(len(c2s), len(want_c))
                self.assertTrue(c2s == want_c, "client bytes differ")
                self.assertEqual(len(s2c), len(want_s))
                self.assertTrue(s2c == want_s, "server bytes differ")

    def test_01_file(self):
        """Checksums valid, no TCP fault, the exact bytes back; a corrupted copy is caught."""
        out = self.path("two.pcap")
        self.gen(out)
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)

        faults = self.tshark("-r", out, *CHECK, *NOAPP, "-Y", FAULTS)
        self.assertEqual(faults.strip(), "", "tshark reports faults")

        # Every checksum was verified and found good (1), none left unverified.
        rows = self.tshark("-r", out, *CHECK, "-T", "fields", "-e", "ip.version",
                           "-e", "ip.checksum.status", "-e", "tcp.checksum.status").splitlines()
        v4 = [r for r in rows if r.startswith("4")]
        v6 = [r for r in rows if r.startswith("6")]
        self.assertEqual(set(v4), {"4\t1\t1"})
        self.assertEqual(set(r.split("\t")[2] for r in v6), {"1"})
        # handshake 3, two packets per segment (data and ACK), close 3; each call of
        # CHUNK bytes is cut into segments of at most 65,000
        def segs(total, chunk=BODY):
            calls = [chunk] * (total // chunk) + ([total % chunk] if total % chunk else [])
            return sum(-(-c // 65000) for c in calls)

        frames0 = 3 + 2 * (1 + segs(BODY) + segs(BODY, 16384)) + 3
        frames1 = 3 + 2 * (segs(BODY, 16384) + segs(BODY)) + 3
        self.assertEqual((len(v4), len(v6)), (frames0, frames1))

        conv = self.tshark("-r", out, "-q", "-z", "conv,tcp")
        lines = [ln.split() for ln in conv.splitlines() if "<->" in ln]
        got = sorted((ln[0], ln[2], int(ln[9])) for ln in lines)  # total frames
        self.assertEqual(got, sorted([("192.0.2.10:51000", "198.51.100.20:443", frames0),
                                      ("2001:db8::10:51001", "2001:db8:1::20:8443", frames1)]),
                         conv)

        self.assert_streams(out)

        # The check is real: one flipped payload byte is a bad TCP checksum, one flipped
        # TTL a bad IPv4 header checksum.
        with open(out, "rb") as f:
            image = bytearray(f.read())
        first = 24 + 16  # the first record's datagram: an IPv4 SYN
        bad = bytearray(image)
        bad[first + 8] ^= 0x01
        bad[-1] ^= 0x01  # the last packet's last byte: the closing ACK's TCP header
        with open(self.path("bad.pcap"), "wb") as f:
            f.write(bad)
        flagged = self.tshark("-r", self.path("bad.pcap"), *CHECK, *NOAPP, "-T", "fields",
                              "-e", "frame.number", "-Y",
                              "ip.checksum.status == 0 || tcp.checksum.status == 0")
        self.assertEqual(flagged.split(), ["1", str(frames0 + frames1)])

    def test_02_stream(self):
        """The same packets as a stream (tg_pcap_fd on a pipe) read by `tshark -r -`."""
        faults = self.tshark("-r", "-", *CHECK, *NOAPP, "-Y", FAULTS, piped=True)
        self.assertEqual(faults.strip(), "", "tshark reports faults")
        self.assert_streams("-")

    def test_03_cap(self):
        """A capped file stops at the cap with whole packets, and says what it dropped."""
        out = self.path("capped.pcap")
        r = self.gen(out, "300000")
        size = os.path.getsize(out)
        self.assertLessEqual(size, 300000)
        self.assertGreater(size, 300000 - 65100)
        dropped = int(r.stderr.decode().split()[-1])
        self.assertGreater(dropped, 0)
        # tshark reads every record to the end: none cut short
        rows = self.tshark("-r", out, *CHECK, *NOAPP, "-T", "fields", "-e", "frame.number")
        written = int(r.stderr.decode().split()[1])
        self.assertEqual(len(rows.split()), written)


if __name__ == "__main__":
    tglib.main()
