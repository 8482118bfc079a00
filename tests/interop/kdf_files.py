"""Hostile password-based encryption, built by hand in DER: files whose key derivation
(PBKDF2, scrypt, the PKCS#12 KDF) would cost minutes to hours of CPU. Nothing is
derived here, so the files are made instantly; the ciphertexts are random bytes, since
a reader pays for the derivation before it can tell that they do not decrypt.

Used by tests/interop/test_kdf_cost.py and, as `python3 kdf_files.py DIR`, by
tests/fuzz/seeds.sh for the fuzz_kdf seed corpus.
"""
import base64
import os
import sys


# -- DER -----------------------------------------------------------------------------

def _len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + _len(len(body)) + body


def seq(*items):
    return tlv(0x30, b"".join(items))


def integer(n):
    b = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)
    return tlv(0x02, b)


def octets(b):
    return tlv(0x04, b)


def null():
    return b"\x05\x00"


def explicit0(body):
    return tlv(0xA0, body)


def oid(dotted):
    parts = [int(x) for x in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return tlv(0x06, bytes(out))


PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
SCRYPT = "1.3.6.1.4.1.11591.4.11"
HMAC_SHA256 = "1.2.840.113549.2.9"
AES256_CBC = "2.16.840.1.101.3.4.1.42"
SHA256 = "2.16.840.1.101.3.4.2.1"
PBE_SHA1_3DES = "1.2.840.113549.1.12.1.3"
P7_DATA = "1.2.840.113549.1.7.1"
P7_ENCRYPTED = "1.2.840.113549.1.7.6"
SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"


# -- algorithm identifiers ------------------------------------------------------------

def pbes2_pbkdf2(iterations):
    kdf = seq(oid(PBKDF2), seq(octets(os.urandom(16)), integer(iterations),
                                seq(oid(HMAC_SHA256), null())))
    return seq(oid(PBES2), seq(kdf, seq(oid(AES256_CBC), octets(os.urandom(16)))))


def pbes2_scrypt(n, r, p):
    kdf = seq(oid(SCRYPT), seq(octets(os.urandom(16)), integer(n), integer(r), integer(p)))
    return seq(oid(PBES2), seq(kdf, seq(oid(AES256_CBC), octets(os.urandom(16)))))


def pkcs12_pbe(iterations):
    return seq(oid(PBE_SHA1_3DES), seq(octets(os.urandom(8)), integer(iterations)))


# -- containers ------------------------------------------------------------------------

def pkcs8(alg):
    """EncryptedPrivateKeyInfo (PKCS#8) with random ciphertext."""
    return seq(alg, octets(os.urandom(144)))


def pem(der, label="ENCRYPTED PRIVATE KEY"):
    b = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def shrouded_bag(alg):
    return seq(oid(SHROUDED_KEY_BAG), explicit0(pkcs8(alg)))


def p7_data(bags):
    return seq(oid(P7_DATA), explicit0(octets(seq(*bags))))


def p7_encrypted(alg, ciphertext=None):
    eci = seq(oid(P7_DATA), alg, tlv(0x80, ciphertext or os.urandom(64)))
    return seq(oid(P7_ENCRYPTED), explicit0(seq(integer(0), eci)))


def pbes2_encrypt(plain, password, iterations):
    """(AlgorithmIdentifier, ciphertext): PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC."""
    import hashlib
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    salt, iv = os.urandom(16), os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", password, salt, iterations, 32)
    kdf = seq(oid(PBKDF2), seq(octets(salt), integer(iterations),
                                seq(oid(HMAC_SHA256), null())))
    alg = seq(oid(PBES2), seq(kdf, seq(oid(AES256_CBC), octets(iv))))
    pad = padding.PKCS7(128).padder()
    data = pad.update(plain) + pad.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return alg, enc.update(data) + enc.finalize()


def shrouded_bag_real(pkcs8_der, password, iterations):
    """A key bag that does decrypt (the derivation is paid once, here)."""
    alg, ct = pbes2_encrypt(pkcs8_der, password, iterations)
    return seq(oid(SHROUDED_KEY_BAG), explicit0(seq(alg, octets(ct))))


def p7_encrypted_real(bags, password, iterations=1):
    """An encrypted safe that does decrypt: the bags inside it are seen only by a reader
    that knows the password."""
    alg, ct = pbes2_encrypt(seq(*bags), password, iterations)
    return p7_encrypted(alg, ct)


def pfx(contents, mac_iterations=None):
    """PKCS#12: contents is a list of ContentInfo; a SHA-256 MAC when mac_iterations."""
    auth = seq(oid(P7_DATA), explicit0(octets(seq(*contents))))
    items = [integer(3), auth]
    if mac_iterations is not None:
        items.append(seq(seq(seq(oid(SHA256), null()), octets(os.urandom(32))),
                         octets(os.urandom(8)), integer(mac_iterations)))
    return seq(*items)


# -- the hostile set -------------------------------------------------------------------

def hostile():
    """name -> bytes: each asks for far more derivation work than one file may."""
    return {
        # The example: scrypt N=2^16, r=2, p=65532 (each alone is small).
        "scrypt-p.p8.der": pkcs8(pbes2_scrypt(1 << 16, 2, 65532)),
        # scrypt wanting 1 GiB of memory (128*N*r) with p=1.
        "scrypt-mem.p8.der": pkcs8(pbes2_scrypt(1 << 20, 8, 1)),
        # scrypt with a huge r.
        "scrypt-r.p8.der": pkcs8(pbes2_scrypt(1 << 10, 1 << 20, 1)),
        # 20 PEM blocks, each at the former per-block cap of 1,000,000 iterations.
        "pbkdf2-20-blocks.pem": "".join(pem(pkcs8(pbes2_pbkdf2(1000000)))
                                        for _ in range(20)).encode(),
        # A PKCS#12 whose MAC alone is over the budget.
        "p12-mac.p12": pfx([p7_data([shrouded_bag(pbes2_pbkdf2(1))])], 5000000),
        # A PKCS#12 with 20 shrouded key bags at 1,000,000 iterations each.
        "p12-bags.p12": pfx([p7_data([shrouded_bag(pbes2_pbkdf2(1000000))
                                      for _ in range(20)])], 1),
        # A PKCS#12 without a MAC, 10 encrypted safe contents at 1,000,000 (PKCS#12 PBE).
        "p12-safes.p12": pfx([p7_encrypted(pkcs12_pbe(1000000)) for _ in range(10)]),
        # The budget spent in parts: a MAC, a safe and a bag, each below it.
        "p12-mixed.p12": pfx([p7_encrypted(pbes2_pbkdf2(900000)),
                              p7_data([shrouded_bag(pbes2_scrypt(1 << 14, 8, 16))])], 900000),
    }


def main(argv):
    if len(argv) != 2:
        print("usage: kdf_files.py DIR", file=sys.stderr)
        return 2
    os.makedirs(argv[1], exist_ok=True)
    for name, data in hostile().items():
        with open(os.path.join(argv[1], name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
