#!/usr/bin/env python3
"""bench/est_load.py HOST PORT CAFILE CERT KEY COUNT: COUNT /simplereenroll requests on one
keep-alive HTTPS connection (mutual TLS with CERT/KEY), one after another, each with a
request made beforehand (EC P-256, CN = the client certificate's CN, so the CA issues).
Prints "requests seconds issued"."""
import base64
import http.client
import ssl
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

host, port, cafile, cert, key, count = sys.argv[1:7]
count = int(count)
cn = x509.load_pem_x509_certificate(open(cert, "rb").read()).subject.get_attributes_for_oid(
    NameOID.COMMON_NAME)[0].value
bodies = []
for _ in range(count):
    k = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
           .sign(k, hashes.SHA256()))
    bodies.append(base64.encodebytes(csr.public_bytes(serialization.Encoding.DER)))
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
ctx.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
issued = 0
t0 = time.monotonic()
for b in bodies:
    conn.request("POST", "/.well-known/est/simplereenroll", body=b,
                 headers={"Content-Type": "application/pkcs10"})
    r = conn.getresponse()
    r.read()
    issued += r.status == 200
print(count, f"{time.monotonic() - t0:.3f}", issued)
