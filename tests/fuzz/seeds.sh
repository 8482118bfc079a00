#!/bin/sh
# seeds.sh DIR — writes seed corpora for the fuzz targets with the openssl CLI, so that no
# binary blob is committed: DIR/bundle (every format tg_bundle_decode detects), DIR/der
# (DER certificates and PKCS#8 keys), DIR/names (inputs in fuzz_names.c's layout) and
# DIR/kdf (every encrypted format of DIR/bundle plus the hostile key-derivation files of
# tests/interop/kdf_files.py, built by hand in DER).
# Encrypted seeds use the password fuzz_bundle.c supplies ("fuzzpass").
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
PASS=fuzzpass
rm -rf "$1/bundle" "$1/der" "$1/names" "$1/sans" "$1/kdf" # ours only: DIR may hold other things
mkdir -p "$1/bundle" "$1/der" "$1/names" "$1/sans" "$1/kdf" "$1/multipart"
out=$(cd "$1" && pwd)
interop=$(cd "$(dirname "$0")/../interop" && pwd)
b=$out/bundle d=$out/der n=$out/names s=$out/sans
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# A seed openssl cannot make (another version, another build) is skipped, not fatal.
o() { openssl "$@" 2>/dev/null || echo "seeds.sh: skipped: openssl $*" >&2; }

# Keys: small and fast ones (the decoders do not care about strength; fuzzing does care
# about speed) plus one of each kind tlsgate creates.
o genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec256.key
o genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.key
o genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048.key
o genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.key
o genpkey -algorithm ED25519 -out ed25519.key
o genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:1024 -out pss.key

# Certificates: a CA, a leaf with every kind of SAN, self-signed P-384, Ed25519, RSA-PSS
# and SHA-1 ones.
o req -x509 -new -key ec256.key -subj "/C=DE/O=Fuzz CA/CN=Fuzz Root" -days 30 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem
o req -new -key rsa2048.key -subj "/C=US/ST=CA/L=SF/O=Example/OU=Ops/CN=www.example.com/emailAddress=ops@example.com" \
    -addext "subjectAltName=DNS:www.example.com,DNS:*.example.com,IP:192.0.2.1,IP:2001:db8::1,email:ops@example.com,URI:https://example.com/,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:u@example.com,RID:1.2.3.4" \
    -addext "extendedKeyUsage=serverAuth,clientAuth" -out leaf.csr
o x509 -req -in leaf.csr -CA ca.pem -CAkey ec256.key -CAcreateserial -days 30 \
    -copy_extensions copyall -out leaf.pem
o req -x509 -new -key ec384.key -subj "/CN=self.example.org" -days 1 -sha384 -out self384.pem
o req -x509 -new -key ed25519.key -subj "/CN=ed25519 \\/ UTF-8 ü" -utf8 -days 1 -out ed.pem
o req -x509 -new -key pss.key -subj "/CN=pss" -days 1 -out pss.pem
o x509 -req -in leaf.csr -signkey rsa1024.key -days 1 -sha1 -out sha1.pem
for c in ca leaf self384 ed pss sha1; do
    [ -s $c.pem ] || continue
    cp $c.pem "$b/$c.pem"
    o x509 -in $c.pem -outform DER -out "$d/$c.der"
    cp "$d/$c.der" "$b/$c.der"
done
# Not DER: 5 unused bits in the signature BIT STRING (fuzz_der's first finding; OpenSSL
# accepts it and re-encodes the signature).
sig=$(o asn1parse -inform DER -in "$d/ca.der" | tail -n 1 | sed -n 's/^ *\([0-9]*\):d=1 *hl=\([0-9]*\).*BIT STRING.*/\1 \2/p')
if [ -n "$sig" ]; then
    cp "$d/ca.der" "$d/noncanonical-sig.der"
    printf '\005' | dd of="$d/noncanonical-sig.der" bs=1 seek=$(($(echo "$sig" | tr ' ' '+'))) conv=notrunc 2>/dev/null
    cp "$d/noncanonical-sig.der" "$b/noncanonical-sig.der"
fi
cat leaf.pem ca.pem > "$b/chain.pem"
o x509 -in leaf.pem -text > "$b/leaf-with-text.pem"
o x509 -in ca.pem -trustout -addtrust serverAuth -out "$b/trusted.pem"
cp leaf.csr "$b/request.pem"

# Keys in every container: PKCS#8 plain/encrypted (PEM, DER), traditional (PKCS#1/SEC1)
# plain and encrypted, PKCS#8 with the legacy PBE.
for k in ec256 ec384 rsa1024 ed25519 pss; do
    o pkcs8 -topk8 -nocrypt -in $k.key -outform DER -out "$d/$k.p8.der"
    cp "$d/$k.p8.der" "$b/$k.p8.der"
    o pkcs8 -topk8 -nocrypt -in $k.key -out "$b/$k.p8.pem"
    o pkcs8 -topk8 -v2 aes-256-cbc -iter 1 -passout pass:$PASS -in $k.key -out "$b/$k.p8enc.pem"
    o pkcs8 -topk8 -v2 aes-128-cbc -iter 1 -passout pass:$PASS -in $k.key -outform DER \
        -out "$b/$k.p8enc.der"
done
o pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA512 -passout pass:$PASS -in ec384.key -out "$b/ec384.p8enc-default.pem"
o pkcs8 -topk8 -scrypt -scrypt_N 1024 -scrypt_r 8 -scrypt_p 1 -passout pass:$PASS -in ec256.key -outform DER -out "$b/ec256.p8scrypt.der"
o pkcs8 -topk8 -v1 PBE-SHA1-3DES -iter 1 -passout pass:$PASS -in ec256.key -outform DER -out "$b/ec256.p8pbe1.der"
for k in ec256 rsa1024; do
    o pkey -in $k.key -traditional -out "$b/$k.trad.pem"
    o pkey -in $k.key -traditional -outform DER -out "$b/$k.trad.der"
    o pkey -in $k.key -traditional -aes256 -passout pass:$PASS -out "$b/$k.tradenc.pem"
    o pkey -in $k.key -traditional -des3 -passout pass:$PASS -out "$b/$k.tradenc-des3.pem"
done
cp rsa2048.key "$b/rsa2048.key.pem"
cat leaf.pem rsa2048.key ca.pem > "$b/leaf+key+ca.pem"
o ecparam -name prime256v1 > "$b/ecparams.pem" && cat ec256.key >> "$b/ecparams.pem"
o pkey -in ec256.key -pubout -out "$b/pubkey.pem"

# PKCS#7 certificate bundles, PEM and DER.
o crl2pkcs7 -nocrl -certfile leaf.pem -certfile ca.pem -out "$b/chain.p7b"
o crl2pkcs7 -nocrl -certfile leaf.pem -certfile ca.pem -outform DER -out "$b/chain.p7b.der"

# PKCS#12: modern (AES, PBKDF2, SHA-256 MAC), low iteration counts for speed, legacy
# (RC2/3DES, SHA-1 MAC), no MAC, no encryption, certificates only, key only, empty password.
p12() { o pkcs12 -export -passout pass:$PASS "$@"; }
p12 -inkey ec256.key -in ca.pem -name "fuzz ca" -out "$b/modern.p12"
p12 -inkey rsa2048.key -in leaf.pem -certfile ca.pem -name leaf -iter 1 -out "$b/modern-iter1.p12"
p12 -legacy -inkey ec256.key -in ca.pem -iter 1 -out "$b/legacy.p12"
p12 -inkey ec256.key -in ca.pem -nomac -iter 1 -out "$b/nomac.p12"
p12 -inkey ec256.key -in ca.pem -keypbe NONE -certpbe NONE -nomac -out "$b/plain.p12"
p12 -nokeys -in leaf.pem -certfile ca.pem -iter 1 -out "$b/certs-only.p12"
p12 -nocerts -inkey ed25519.key -iter 1 -out "$b/key-only.p12"
o pkcs12 -export -passout pass: -inkey ec256.key -in ca.pem -iter 1 -out "$b/emptypass.p12"
o pkcs12 -export -passout pass:wrong -inkey ec256.key -in ca.pem -iter 1 -out "$b/wrongpass.p12"

# fuzz_kdf: the encrypted seeds above, and files that ask for hours of key derivation
# (scrypt N=2^16 r=2 p=65532, 20 PEM blocks of 1,000,000 PBKDF2 iterations, PKCS#12 MAC,
# bags and safes over the budget), made by hand without deriving anything.
cp "$b"/*enc* "$b"/*scrypt* "$b"/*pbe1* "$b"/*.p12 "$out/kdf/" 2>/dev/null || true
python3 "$interop/kdf_files.py" "$out/kdf" || echo "seeds.sh: skipped: kdf_files.py" >&2

# Broken inputs the decoder must refuse cleanly.
head -c 200 "$b/leaf.pem" > "$b/truncated.pem"
printf 'just some text\n' > "$b/text.txt"
printf -- '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n' > "$b/badb64.pem"

# fuzz_names: byte 0 is the mask of present subject fields (country, state, locality, org,
# unit, cn, email = bits 0..6); then the fields and the SANs, one per line.
seed() { name=$1; shift; { printf '%b' "\\0$(printf %03o "$1")"; shift; printf '%s\n' "$@"; } > "$n/$name"; }
seed cn-only 32 "" "" "" "" "" "www.example.com"
seed full 127 "DE" "Bayern" "München" "Example GmbH" "IT" "shop.example.com" "ops@example.com" \
    "DNS:example.com" "IP:192.0.2.1" "email:a@example.com"
seed sans 32 "" "" "" "" "" "host" "" "*.example.com" "xn--bcher-kva.example" "IP:2001:db8::1" \
    "::ffff:10.0.0.1" "10.0.0.1" "DNS:EXAMPLE.COM" "example.com" "user@example.com"
seed bad 97 "XX" "" "" "" "" "*.*.example.com" "" "DNS:-bad-.example" "IP:1.2.3" "foo:bar.baz" \
    "email:@x" "a..b" "*.com" "ex ample.com" "trailing.dot."
seed ipcn 32 "" "" "" "" "" "2001:DB8:0:0:0:0:0:1" "" "IP:::" "IP:0.0.0.0"
seed long 32 "" "" "" "" "" "$(printf 'a%.0s' $(seq 64)).example.com" "" \
    "$(printf 'label%.0s.' $(seq 50))com"
# 1001 distinct SANs: one more than tg_sans_build allows.
{ printf '%b' '\040'; printf '\n\n\n\n\nmany.example\n\n'; seq 1001 | sed 's/.*/h&.example/'; } >"$n/too-many"

# fuzz_sans: byte 0 is the byte limit for cleaning and cutting; then a CN and SANs, one per
# line. The reproductions of issue 8: a dNSName that spells two names when joined with
# ", ", invalid UTF-8 (0xff, truncated, overlong, a surrogate), bidi overrides and
# zero-width characters, a 200-byte CN of two-byte characters cut at 128, an e-mail
# local part holding a comma.
sseed() { name=$1; shift; { printf '%b' "\\0$(printf %03o "$1")"; shift; printf '%s\n' "$@"; } > "$s/$name"; }
sseed joined 128 "evil.example.net" "DNS:evil.example.net, DNS:bank.example.com" \
    "evil.example.net, DNS:bank.example.com" "x.example.net,DNS:bank.example.com"
sseed smuggle 128 "s.example.com" "email:a,DNS:bank.example.com@example.com" "IP:10.0.0.1"
sseed hosts 128 "*.*.example.com" "a.*.example.com" "*.com" "bank.example.com." \
    "bank.example.com evil" "-a.example.com" "xn--bcher-kva.example" "*.example.com"
printf '\200bad\377name\nbad\303\nbad\300\257\nbad\355\240\200\n' > "$s/not-utf8"
printf '\200evil\342\200\256gnp.exe\nba\342\200\213nk\357\273\277\nna\342\201\240me\nc1\302\205x\n' > "$s/invisible"
{ printf '\200'; printf '\303\251%.0s' $(seq 100); printf '\n'; } > "$s/long-cn"
{ printf '\177'; printf '\360\237\230\200%.0s' $(seq 40); printf '\n'; } > "$s/emoji-cut"
# fuzz_multipart: the Content-Type's parameters, '\n', then the body (fuzz_multipart.c)
m=$out/multipart
printf '; boundary=XyZ\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.pem"\r\nContent-Type: application/x-pem-file\r\n\r\n-----BEGIN CERTIFICATE-----\r\n--XyZ\r\nContent-Disposition: form-data; name="password"\r\n\r\nsecret\r\n--XyZ--\r\n' > "$m/two-parts"
printf '; boundary="a b;c"\npreamble\r\n--a b;c\r\nContent-Disposition: form-data; name=name\r\n\r\nx\r\n--a b;c--' > "$m/quoted"
printf '; charset=utf-8; BOUNDARY=q\n--q\r\n\r\nno headers\r\n--q--' > "$m/no-disposition"
printf '; boundary=q\n--q\r\nContent-Disposition: form-data; name="f"; filename="\\"x\\".pem"\r\n\r\n' > "$m/unterminated"
printf 'generated %s seeds\n' "$(find "$out" -type f | wc -l)" >&2
