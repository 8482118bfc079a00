"""TLS origin servers for the upstream-validation failure matrix (test fixtures only).

An intercepting proxy must validate the certificate of the origin it connects to and
block or flag every bad one. This module makes the origins: a PKI with one leaf per
failure case (make_pki) and one TLS server per case on 127.0.0.1 (OriginSet). It tests
nothing of tlsgate itself; tests/e2e/test_origins.py checks, with the openssl CLI, that
each case fails for the reason it is named after.

    pki = make_pki(tmpdir)                       # or make_pki(tmpdir, own_ca=(cert, key))
    with OriginSet(pki) as origins:              # or OriginSet(pki, cases=["good"])
        port = origins.port("good")
        ...                                      # trust pki["root"], connect, GET
        origins["good"].last_sni, origins["good"].last_alpn

The cases (CASES), all under the trusted root "Origins Root" unless said otherwise, all
with SAN DNS:<host> and IP:127.0.0.1 unless said otherwise, all P-256 ECDSA-SHA256:

  good                    leaf <- "Origins Intermediate" <- root
  self-signed             the leaf signs itself
  unknown-ca              leaf <- intermediate <- "Origins Untrusted Root" (not in pki["root"])
  expired                 the leaf's notAfter is a day ago
  not-yet-valid           the leaf's notBefore is a day from now
  wrong-host              SAN DNS:other.test only
  ca-false-intermediate   the intermediate says basicConstraints CA:FALSE (keyCertSign set)
  v1-intermediate         the intermediate is X.509 v1, no extensions at all
  bad-signature           one byte of the leaf's signature flipped
  rsa-1024                an RSA 1024-bit leaf, otherwise good
  sha1                    the leaf signed with ecdsa-with-SHA1 by the intermediate
  own-ca                  the leaf is issued by the caller's own CA (make_pki(own_ca=...)),
                          or by a stand-in "Origins Own CA" made here when none is given
  tls10-only              a good chain, but the server speaks TLS 1.0 and nothing else

Every server sends its whole chain file (leaf, then intermediates; never the root),
ignores SNI when choosing (there is one certificate per server), offers ALPN h2 and
http/1.1 (server preference: h2 if the client offers it), and answers a request with
"HTTP/1.1 200 OK", Connection: close and the body "origin:<case>\\n" (over h2, when
negotiated: just enough HTTP/2 for one request, a 200 with that body, then GOAWAY).
Each connection is recorded (Origin.connections): SNI, ALPN, TLS version, cipher, the
request head as received, or the handshake error.

Servers are threads in the calling process (socketserver); stop() shuts each listener,
shuts the open connections and joins every thread it started, by reference.
"""
import datetime
import ipaddress
import os
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CASES = (
    "good", "self-signed", "unknown-ca", "expired", "not-yet-valid", "wrong-host",
    "ca-false-intermediate", "v1-intermediate", "bad-signature", "rsa-1024", "sha1",
    "own-ca", "tls10-only",
)
WRONG_HOST = "other.test"
ROOT_CN = "Origins Root"

# Server contexts that must go below OpenSSL's default security level to load their
# certificate (RSA 1024, a SHA-1 signature) or to speak TLS 1.0 at all.
SECLEVEL0_CASES = ("rsa-1024", "sha1", "tls10-only")
TLS10_CASES = ("tls10-only",)

IO_TIMEOUT = 10.0  # per connection: handshake and request, so no thread waits forever
DAY = datetime.timedelta(days=1)


# --- DER: just enough to take a certificate apart and put it back together ----------

def _der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _der_tlv(tag, content):
    return bytes([tag]) + _der_len(len(content)) + content


def _der_items(data):
    """The top-level TLVs of data as a list of (tag, whole TLV bytes, content bytes)."""
    out, pos = [], 0
    while pos < len(data):
        tag = data[pos]
        first = data[pos + 1]
        if first < 0x80:
            length, hdr = first, 2
        else:
            nb = first & 0x7F
            length = int.from_bytes(data[pos + 2:pos + 2 + nb], "big")
            hdr = 2 + nb
        end = pos + hdr + length
        if end > len(data):
            raise ValueError("truncated DER")
        out.append((tag, data[pos:end], data[pos + hdr:end]))
        pos = end
    return out


def _cert_parts(der):
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }."""
    (tag, _, body), = _der_items(der)
    if tag != 0x30:
        raise ValueError("not a certificate")
    tbs, alg, sig = _der_items(body)
    if sig[0] != 0x03:
        raise ValueError("no signature BIT STRING")
    return tbs[1], alg[1], sig[2]  # the TBS TLV, the AlgorithmIdentifier TLV, BIT STRING content


def _cert_join(tbs_tlv, alg_tlv, bitstring_content):
    return _der_tlv(0x30, tbs_tlv + alg_tlv + _der_tlv(0x03, bitstring_content))


def _sign_raw(key, data, algorithm):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        from cryptography.hazmat.primitives.asymmetric import padding
        return key.sign(data, padding.PKCS1v15(), algorithm)
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return key.sign(data)
    raise TypeError(f"cannot sign with {type(key).__name__}")


def make_v1(cert, issuer_key):
    """The same certificate as X.509 v1: the version field and the extensions dropped
    from the TBS, which is then signed again (same algorithm) by issuer_key."""
    tbs_tlv, alg_tlv, _ = _cert_parts(cert.public_bytes(serialization.Encoding.DER))
    (_, _, tbs_body), = _der_items(tbs_tlv)
    kept = [whole for tag, whole, _ in _der_items(tbs_body) if tag not in (0xA0, 0xA3)]
    tbs = _der_tlv(0x30, b"".join(kept))
    sig = _sign_raw(issuer_key, tbs, cert.signature_hash_algorithm)
    return x509.load_der_x509_certificate(_cert_join(tbs, alg_tlv, b"\x00" + sig))


def corrupt_signature(cert):
    """The same certificate with the last byte of its signature value flipped. The
    lengths do not change; for ECDSA the last byte is inside s, so the signature is still
    well-formed DER, only wrong."""
    tbs_tlv, alg_tlv, bits = _cert_parts(cert.public_bytes(serialization.Encoding.DER))
    bad = bits[:-1] + bytes([bits[-1] ^ 0xFF])
    return x509.load_der_x509_certificate(_cert_join(tbs_tlv, alg_tlv, bad))


# --- the PKI -------------------------------------------------------------------------

def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _name(cn, ou=None):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsgate origins")]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def _ski(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None


def _akid(issuer_cert, issuer_key):
    """The AKID for a certificate issued by issuer_cert (None: self-signed): the issuer's
    SKID, or (a v1 issuer has none) the key identifier of its public key."""
    ski = _ski(issuer_cert) if issuer_cert is not None else None
    if ski is not None:
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def _sign_alg(key, want=None):
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    return want or hashes.SHA256()


def _builder(subject, issuer_name, pub, not_before, not_after):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
            .public_key(pub).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))


def make_ca(cn, issuer=None, ca=True, pathlen=None, days=3650):
    """A CA certificate and key (P-256). issuer: (cert, key) or None for a self-signed
    root. ca=False writes basicConstraints CA:FALSE (keyUsage still allows keyCertSign)."""
    key = _ec_key()
    now = _now()
    icert, ikey = issuer if issuer else (None, key)
    b = _builder(_name(cn), icert.subject if icert else _name(cn), key.public_key(),
                 now - DAY, now + days * DAY)
    b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen if ca else None),
                        critical=True)
    b = b.add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False,
                                      key_agreement=False, key_cert_sign=True, crl_sign=True,
                                      encipher_only=False, decipher_only=False), critical=True)
    if icert is not None:
        b = b.add_extension(_akid(icert, ikey), critical=False)
    return b.sign(ikey, _sign_alg(ikey)), key


def _leaf_builder(case, host, key, issuer_cert, issuer_key, not_before, not_after,
                  dns=None, ip=True):
    pub = key.public_key()
    names = dns or [host]
    b = _builder(_name(names[0], ou=case), issuer_cert.subject if issuer_cert else
                 _name(names[0], ou=case), pub, not_before, not_after)
    sans = [x509.DNSName(n) for n in names]
    if ip:
        sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                      key_encipherment=is_rsa, data_encipherment=False,
                                      key_agreement=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False,
                                      decipher_only=False), critical=True)
    b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                        critical=False)
    return b.add_extension(_akid(issuer_cert, issuer_key), critical=False)


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def _load_pem(value):
    """PEM data (bytes or str) or the path of a PEM file, as bytes."""
    if isinstance(value, str) and "-----BEGIN" not in value:
        with open(value, "rb") as f:
            return f.read()
    return value.encode() if isinstance(value, str) else bytes(value)


def _sha1_by_openssl(dirpath, case, host, key, inter, inter_key, not_before, not_after):
    """The sha1 leaf made by `openssl x509 -req -sha1`, for a cryptography that refuses to
    sign with SHA-1 (48 does; Debian's 38 only warns)."""
    work = tempfile.mkdtemp(prefix="sha1-", dir=dirpath)
    csr = (x509.CertificateSigningRequestBuilder().subject_name(_name(host, ou=case))
           .sign(key, hashes.SHA256()))
    _write(os.path.join(work, "leaf.csr"), csr.public_bytes(serialization.Encoding.PEM))
    _write(os.path.join(work, "inter.pem"), _pem(inter))
    _write(os.path.join(work, "inter.key"), _key_pem(inter_key), 0o600)
    days = max(1, (not_after - _now()).days)
    with open(os.path.join(work, "ext.cnf"), "w") as f:
        f.write("[v3]\nbasicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n"
                f"subjectAltName = DNS:{host}, IP:127.0.0.1\n"
                "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n")
    subprocess.run(["openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "inter.pem",
                    "-CAkey", "inter.key", "-sha1", "-days", str(days),
                    "-set_serial", str(x509.random_serial_number()),
                    "-extfile", "ext.cnf", "-extensions", "v3", "-out", "leaf.pem"],
                   cwd=work, check=True, capture_output=True, timeout=30)
    with open(os.path.join(work, "leaf.pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    for n in os.listdir(work):
        os.unlink(os.path.join(work, n))
    os.rmdir(work)
    return cert


def make_pki(dirpath, host="good.test", own_ca=None):
    """Writes the PKI into dirpath and returns

        {"root": path of the trusted root PEM ("Origins Root"),
         <case>: {"chain": PEM path (leaf, then intermediates, no root),
                  "key": PEM path (PKCS#8, unencrypted),
                  "leaf": PEM path of the leaf alone,
                  "host": the name the leaf is meant for (host, or other.test),
                  "ca": (own-ca, unknown-ca only) PEM path of the CA at the chain's top},
         ... for every case in CASES}

    own_ca: (cert, key) of "our own signing CA", each PEM bytes/str or a file path (the
    key unencrypted); the own-ca leaf is issued under it. A self-issued own CA is not
    sent in the chain; one that is not is sent after the leaf (then trusting it alone
    takes -partial_chain). None: a stand-in "Origins Own CA" is made here."""
    os.makedirs(dirpath, exist_ok=True)
    now = _now()
    good_span = (now - DAY, now + 90 * DAY)
    root, root_key = make_ca(ROOT_CN)
    inter, inter_key = make_ca("Origins Intermediate", (root, root_key), pathlen=0)
    pki = {"root": _write(os.path.join(dirpath, "root.pem"), _pem(root))}
    _write(os.path.join(dirpath, "root.key"), _key_pem(root_key), 0o600)
    _write(os.path.join(dirpath, "intermediate.pem"), _pem(inter))

    def leaf(case, issuer, issuer_key, key=None, span=good_span, dns=None, ip=True,
             alg=None):
        key = key or _ec_key()
        b = _leaf_builder(case, host, key, issuer, issuer_key, *span, dns=dns, ip=ip)
        return b.sign(issuer_key, _sign_alg(issuer_key, alg)), key

    def save(case, cert, key, chain=(), **extra):
        stem = os.path.join(dirpath, case)
        pki[case] = {
            "chain": _write(stem + ".chain.pem", b"".join(_pem(c) for c in (cert, *chain))),
            "key": _write(stem + ".key.pem", _key_pem(key), 0o600),
            "leaf": _write(stem + ".leaf.pem", _pem(cert)),
            "host": extra.pop("host", host),
            **extra,
        }

    for case in ("good", "tls10-only"):
        save(case, *leaf(case, inter, inter_key), chain=[inter])

    key = _ec_key()
    b = _leaf_builder("self-signed", host, key, None, key, *good_span)
    save("self-signed", b.sign(key, hashes.SHA256()), key)

    other_root, other_root_key = make_ca("Origins Untrusted Root")
    other_inter, other_inter_key = make_ca("Origins Untrusted Intermediate",
                                           (other_root, other_root_key), pathlen=0)
    save("unknown-ca", *leaf("unknown-ca", other_inter, other_inter_key),
         chain=[other_inter],
         ca=_write(os.path.join(dirpath, "unknown-ca.root.pem"), _pem(other_root)))

    save("expired", *leaf("expired", inter, inter_key, span=(now - 60 * DAY, now - DAY)),
         chain=[inter])
    save("not-yet-valid", *leaf("not-yet-valid", inter, inter_key,
                                span=(now + DAY, now + 90 * DAY)), chain=[inter])
    save("wrong-host", *leaf("wrong-host", inter, inter_key, dns=[WRONG_HOST], ip=False),
         chain=[inter], host=WRONG_HOST)

    notca, notca_key = make_ca("Origins Not-A-CA Intermediate", (root, root_key), ca=False)
    save("ca-false-intermediate", *leaf("ca-false-intermediate", notca, notca_key),
         chain=[notca])

    v1, v1_key = make_ca("Origins V1 Intermediate", (root, root_key), pathlen=0)
    v1 = make_v1(v1, root_key)
    save("v1-intermediate", *leaf("v1-intermediate", v1, v1_key), chain=[v1])

    cert, key = leaf("bad-signature", inter, inter_key)
    save("bad-signature", corrupt_signature(cert), key, chain=[inter])

    save("rsa-1024", *leaf("rsa-1024", inter, inter_key,
                           key=rsa.generate_private_key(public_exponent=65537,
                                                        key_size=1024)), chain=[inter])

    key = _ec_key()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CryptographyDeprecationWarning: SHA-1
            cert, _ = leaf("sha1", inter, inter_key, key=key, alg=hashes.SHA1())
    except (UnsupportedAlgorithm, ValueError, TypeError):
        cert = _sha1_by_openssl(dirpath, "sha1", host, key, inter, inter_key, *good_span)
    save("sha1", cert, key, chain=[inter])

    if own_ca is None:
        own, own_key = make_ca("Origins Own CA")
    else:
        own = x509.load_pem_x509_certificate(_load_pem(own_ca[0]))
        own_key = serialization.load_pem_private_key(_load_pem(own_ca[1]), password=None)
    own_path = _write(os.path.join(dirpath, "own-ca.ca.pem"), _pem(own))
    # a self-issued own CA is a root: not sent; an intermediate one is
    chain = [] if own.issuer == own.subject else [own]
    save("own-ca", *leaf("own-ca", own, own_key), chain=chain, ca=own_path)
    return pki


# --- the servers ---------------------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_HEAD = 65536


class _Closed(Exception):
    pass


def _h2_frame(ftype, flags, stream, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
            stream.to_bytes(4, "big") + payload)


def _hpack_literal(static_index, value):
    """A literal header field without indexing, name from the static table (index > 15),
    value not Huffman-coded (RFC 7541, 6.2.2)."""
    value = value.encode()
    return bytes([0x0F, static_index - 15, len(value)]) + value


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        origin = self.server.origin
        rec = {"case": origin.case, "peer": self.client_address, "sni": None,
               "alpn": None, "version": None, "cipher": None, "request": None,
               "error": None, "time": time.time()}
        origin._record(rec)
        raw = self.request
        raw.settimeout(IO_TIMEOUT)
        tls = origin._wrap(raw, rec)
        if tls is None:
            return
        self.tls, self.rec, self.buf = tls, rec, b""
        self.body = f"origin:{origin.case}\n".encode()
        try:
            try:
                tls.do_handshake()
            except (OSError, ValueError) as e:
                rec["error"] = f"handshake: {e}"
                return
            rec["alpn"] = tls.selected_alpn_protocol()
            rec["version"] = tls.version()
            rec["cipher"] = (tls.cipher() or (None,))[0]
            try:
                if rec["alpn"] == "h2":
                    self.serve_h2()
                else:
                    self.serve_http1()
            except _Closed:
                pass  # the client went away before asking anything (or mid-request)
            except (OSError, ValueError) as e:
                rec["error"] = f"{type(e).__name__}: {e}"
                return
            # close_notify, then a short wait for the client's (it normally hangs up)
            tls.settimeout(2.0)
            try:
                tls.unwrap()
            except (OSError, ValueError):
                pass
        finally:
            if self.buf and rec["request"] is None:
                rec["request"] = self.buf
            origin._release(tls)

    def more(self):
        chunk = self.tls.recv(65536)
        if not chunk:
            raise _Closed()
        self.buf += chunk

    def serve_http1(self):
        """Reads up to the blank line after the head, answers 200 with Connection: close.
        A client that talks HTTP/2 without having negotiated it by ALPN is served as h2."""
        while b"\r\n\r\n" not in self.buf and len(self.buf) < MAX_HEAD:
            if self.buf.startswith(H2_PREFACE):
                return self.serve_h2()
            self.more()
        self.rec["request"] = self.buf.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        self.tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(self.body) +
                         self.body)

    def serve_h2(self):
        """Just enough HTTP/2 for one request: SETTINGS (and their ACK), the first HEADERS
        block (with CONTINUATIONs), then a 200 on that stream and GOAWAY. The request
        record holds the bytes as received (the header block is HPACK, not decoded)."""
        self.tls.sendall(_h2_frame(4, 0, 0))  # our SETTINGS: all defaults
        while len(self.buf) < len(H2_PREFACE):
            self.more()
        if not self.buf.startswith(H2_PREFACE):
            raise ValueError("h2 negotiated but no HTTP/2 preface")
        pos = len(H2_PREFACE)
        stream = None
        while True:
            while len(self.buf) < pos + 9:
                self.more()
            length = int.from_bytes(self.buf[pos:pos + 3], "big")
            ftype, flags = self.buf[pos + 3], self.buf[pos + 4]
            sid = int.from_bytes(self.buf[pos + 5:pos + 9], "big") & 0x7FFFFFFF
            if length > MAX_HEAD:
                raise ValueError(f"h2 frame of {length} bytes")
            while len(self.buf) < pos + 9 + length:
                self.more()
            pos += 9 + length
            if ftype == 4 and not flags & 0x1:      # SETTINGS, not an ACK
                self.tls.sendall(_h2_frame(4, 0x1, 0))
            elif ftype == 1 and stream is None:     # HEADERS
                stream = sid
                if flags & 0x4:                     # END_HEADERS
                    break
            elif ftype == 9 and sid == stream:      # CONTINUATION
                if flags & 0x4:
                    break
            elif ftype == 7:                        # GOAWAY
                raise _Closed()
        self.rec["request"] = self.buf[:pos]
        head = (b"\x88" + _hpack_literal(31, "text/plain") +          # :status 200
                _hpack_literal(28, str(len(self.body))))
        self.tls.sendall(_h2_frame(1, 0x4, stream, head) +             # END_HEADERS
                         _h2_frame(0, 0x1, stream, self.body) +        # END_STREAM
                         _h2_frame(7, 0, 0, stream.to_bytes(4, "big") + bytes(4)))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = False   # handler threads are joined by server_close (block_on_close)
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, origin, bind="127.0.0.1"):
        self.origin = origin
        super().__init__((bind, 0), _Handler)

    def handle_error(self, request, client_address):
        pass  # the handler records what went wrong; nothing for stderr

    def shutdown_request(self, request):
        try:
            request.close()  # the handler's SSLSocket took the descriptor (detached)
        except OSError:
            pass


class Origin:
    """One TLS server for one case. connections: a record per accepted connection (dicts
    with case, peer, sni, alpn, version, cipher, request (bytes), error, time)."""

    def __init__(self, case, chain, key, alpn=("h2", "http/1.1"), bind="127.0.0.1"):
        self.case = case
        self.chain, self.key = chain, key
        self.connections = []
        self._lock = threading.Lock()
        self._live = set()  # SSLSockets being served, so stop() can wake their threads
        self._stopping = False
        self.context = self._context(alpn)
        self.server = _Server(self, bind)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       name=f"origin-{case}", daemon=True)
        self.thread.start()

    def _context(self, alpn):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.case in SECLEVEL0_CASES:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # before the certificate is loaded
        if self.case in TLS10_CASES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = ssl.TLSVersion.TLSv1
        ctx.load_cert_chain(self.chain, self.key)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))

        def on_sni(sock, server_name, _ctx):
            rec = getattr(sock, "_origin_record", None)
            if rec is not None:
                rec["sni"] = server_name
            return None  # SNI-agnostic: the one certificate whatever the name
        ctx.sni_callback = on_sni
        return ctx

    # bookkeeping, called from the server's threads
    def _record(self, rec):
        with self._lock:
            self.connections.append(rec)

    def _wrap(self, raw, rec):
        """The connection as an SSLSocket (handshake not done), known to stop(); None
        when stopping. Under the lock: wrapping detaches raw, and stop() must see the
        socket that owns the descriptor."""
        with self._lock:
            if self._stopping:
                raw.close()
                return None
            try:
                tls = self.context.wrap_socket(raw, server_side=True,
                                               do_handshake_on_connect=False)
            except (OSError, ValueError) as e:
                rec["error"] = f"wrap: {e}"
                raw.close()
                return None
            tls._origin_record = rec  # for the SNI callback
            self._live.add(tls)
            return tls

    def _release(self, tls):
        with self._lock:
            self._live.discard(tls)
        tls.close()

    @property
    def last(self):
        with self._lock:
            return self.connections[-1] if self.connections else None

    @property
    def last_sni(self):
        rec = self.last
        return rec["sni"] if rec else None

    @property
    def last_alpn(self):
        rec = self.last
        return rec["alpn"] if rec else None

    def clear(self):
        with self._lock:
            self.connections.clear()

    def wait_connections(self, count=1, timeout=5.0, done=True):
        """Waits until count connections are recorded (done: and finished, i.e. their
        thread has let go of the socket) and returns the records."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                enough = len(self.connections) >= count and not (done and self._live)
                if enough:
                    return list(self.connections)
            if time.monotonic() > deadline:
                raise TimeoutError(f"origin {self.case}: {len(self.connections)} of {count} "
                                   f"connections after {timeout} s")
            time.sleep(0.02)

    def stop(self, timeout=5.0):
        if self.thread is None:
            return
        self.server.shutdown()  # serve_forever returns: no new connections
        with self._lock:
            self._stopping = True
            live = list(self._live)
        for s in live:  # wake handlers blocked in a handshake or recv
            try:
                # the plain socket's shutdown: SSLSocket.shutdown would drop its SSL
                # object under the handler's feet
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except OSError:
                pass
        self.server.server_close()  # closes the listener, joins the handler threads
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError(f"origin {self.case}: server thread did not end")
        self.thread = None


class OriginSet:
    """One Origin per case, each on its own free 127.0.0.1 port.

    pki: make_pki's result; cases: an iterable of case names (default: every case in
    pki). origins[case] is the Origin (last_sni, last_alpn, connections, ...)."""

    def __init__(self, pki, cases=None, alpn=("h2", "http/1.1"), bind="127.0.0.1"):
        self.pki = pki
        names = list(cases) if cases is not None else [c for c in CASES if c in pki]
        unknown = [c for c in names if c not in CASES or c not in pki]
        if unknown:
            raise ValueError(f"unknown cases: {unknown}")
        self.origins = {}
        try:
            for case in names:
                self.origins[case] = Origin(case, pki[case]["chain"], pki[case]["key"], alpn,
                                            bind)
        except BaseException:
            self.stop()
            raise

    def __getitem__(self, case):
        return self.origins[case]

    def __iter__(self):
        return iter(self.origins)

    def port(self, case):
        return self.origins[case].port

    def ports(self):
        return {case: o.port for case, o in self.origins.items()}

    def stop(self):
        errors = []
        for o in self.origins.values():
            try:
                o.stop()
            except Exception as e:  # stop the others all the same
                errors.append(e)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
