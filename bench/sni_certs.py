#!/usr/bin/python3
"""sni_certs.py ALG COUNT OUTDIR [KEYS] — server certificates for bench/sni.sh.

ALG is ecdsa (P-256) or rsa (2048). Writes COUNT files OUTDIR/pem/h<i>.pem, i = 0..COUNT-1,
each holding one self-signed certificate (CN and the one DNS SAN h<i>.bench.test, its
own serial, ecdsa-with-SHA256 or sha256WithRSAEncryption, 1 year) followed by its
private key (PKCS#8, unencrypted): the form HAProxy's `crt DIR/` loads and tlsgate's
`cert import` links by itself; OUTDIR/pem/ holds nothing else, for HAProxy's `crt DIR/`.
OUTDIR/files.txt lists the files, relative to OUTDIR (pem/h<i>.pem).

Keys: a pool of KEYS keys (default 1000, at most COUNT), certificate i uses key
i mod KEYS, so generation costs one signature per certificate plus KEYS key
generations (RSA-2048: about a quarter of a second each here). Not ONE key for all:
tlsgate's import looks up "the newest certificate of this key" (renewal, K5) with
`WHERE spki_sha256=? ORDER BY not_after DESC` — every certificate of the key is read
and sorted, so with one key shared by 100,000 certificates the import is quadratic
(hours). Neither server's handshake cost depends on how many certificates share a key.

With CHAIN=1 in the environment the certificates are not self-signed: one root and one
intermediate CA (same ALG) are made first, every certificate is issued by the
intermediate, and each file holds the certificate, the intermediate, then the key (the
chain both servers send); the root is written to OUTDIR/root.pem and is not served.

Two worker processes, each making whole keys and their certificates; the set is written into
OUTDIR.tmp and renamed when complete, so an interrupted run leaves no half set.
"""
import datetime
import multiprocessing
import os
import shutil
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ALG = None
NKEYS = COUNT = 0
_ca = None  # CHAIN=1: (intermediate key, its Name, its PEM, its SKI)
_dir = None
_nb = _na = None


def _make(j):
    """Key j and the certificates that use it: h<i> for i = j, j + NKEYS, ..."""
    if ALG == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key()
    bc = x509.BasicConstraints(ca=False, path_length=None)
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    n = 0
    for i in range(j, COUNT, NKEYS):
        host = "h%d.bench.test" % i
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        b = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(_ca[1] if _ca else name)
            .public_key(pub)
            .serial_number(1000 + i)
            .not_valid_before(_nb)
            .not_valid_after(_na)
            .add_extension(bc, critical=True)
            .add_extension(eku, critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        )
        if _ca:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ca[3]), critical=False
            )
        cert = b.sign(_ca[0] if _ca else key, hashes.SHA256())
        with open(os.path.join(_dir, "pem", "h%d.pem" % i), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM) + (_ca[2] if _ca else b"") + key_pem)
        n += 1
    return n


def _newkey():
    if ALG == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _make_cas(out):
    """CHAIN=1: a root and an intermediate; the leaves are issued by the intermediate."""
    global _ca
    rk, ik = _newkey(), _newkey()
    rn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench root")])
    iname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench intermediate")])
    ku = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    rski = x509.SubjectKeyIdentifier.from_public_key(rk.public_key())
    root = (
        x509.CertificateBuilder().subject_name(rn).issuer_name(rn).public_key(rk.public_key())
        .serial_number(1).not_valid_before(_nb).not_valid_after(_na + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ku, critical=True).add_extension(rski, critical=False)
        .sign(rk, hashes.SHA256())
    )
    iski = x509.SubjectKeyIdentifier.from_public_key(ik.public_key())
    inter = (
        x509.CertificateBuilder().subject_name(iname).issuer_name(rn).public_key(ik.public_key())
        .serial_number(2).not_valid_before(_nb).not_valid_after(_na + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ku, critical=True).add_extension(iski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(rski),
                       critical=False)
        .sign(rk, hashes.SHA256())
    )
    with open(os.path.join(out, "root.pem"), "wb") as f:
        f.write(root.public_bytes(serialization.Encoding.PEM))
    _ca = (ik, iname, inter.public_bytes(serialization.Encoding.PEM), iski)


def main():
    global ALG, NKEYS, COUNT, _dir, _nb, _na
    if len(sys.argv) not in (4, 5) or sys.argv[1] not in ("ecdsa", "rsa"):
        sys.exit("usage: sni_certs.py ecdsa|rsa COUNT OUTDIR [KEYS]")
    ALG, COUNT, out = sys.argv[1], int(sys.argv[2]), sys.argv[3].rstrip("/")
    NKEYS = max(1, min(COUNT, int(sys.argv[4]) if len(sys.argv) == 5 else 1000))
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "pem"))
    now = datetime.datetime.utcnow().replace(microsecond=0)
    _dir = tmp
    _nb, _na = now - datetime.timedelta(days=1), now + datetime.timedelta(days=365)
    if os.environ.get("CHAIN") == "1":
        _make_cas(tmp)
    workers = min(2, os.cpu_count() or 1)
    with multiprocessing.get_context("fork").Pool(workers) as pool:  # workers inherit the globals
        done = sum(pool.imap_unordered(_make, range(NKEYS), chunksize=max(1, NKEYS // (8 * workers))))
    assert done == COUNT
    with open(os.path.join(tmp, "files.txt"), "w") as f:
        f.write("".join("pem/h%d.pem\n" % i for i in range(COUNT)))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
