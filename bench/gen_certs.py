#!/usr/bin/python3
"""gen_certs.py COUNT OUTDIR — COUNT distinct small certificates for bench/store.sh.

Each certificate is EC P-256, CN hNNNNN.bench.test with the same name as its one DNS
SAN, its own serial, signed by one bench CA (ca.pem in OUTDIR, never imported). All
leaves share ONE key: signing is the only per-certificate cost, so 10,000 take a few
seconds. Files: OUTDIR/hNNNNN.pem (zero-padded to at least five digits) and
OUTDIR/files.txt (the list, one path a line, relative to OUTDIR). The set is written
into OUTDIR.tmp and renamed when complete, so an interrupted run leaves no half set.
"""
import datetime
import os
import shutil
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen_certs.py COUNT OUTDIR")
    count = int(sys.argv[1])
    out = sys.argv[2].rstrip("/")
    width = max(5, len(str(count)))
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)

    now = datetime.datetime.utcnow().replace(microsecond=0)
    not_before = now - datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlsgate bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    with open(os.path.join(tmp, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))

    leaf_pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    not_after = now + datetime.timedelta(days=365)
    bc = x509.BasicConstraints(ca=False, path_length=None)
    names = []
    for i in range(1, count + 1):
        host = "h%0*d.bench.test" % (width, i)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name)
            .public_key(leaf_pub)
            .serial_number(i)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(bc, critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        name = "h%0*d.pem" % (width, i)
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        names.append(name)
    with open(os.path.join(tmp, "files.txt"), "w") as f:
        f.write("\n".join(names) + "\n")

    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
