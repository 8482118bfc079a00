#!/bin/bash
# bench/enroll.sh [TLSGATE] — the enrollment CA's issuance rate (issue 11, "How we will
# know": bench/enroll.sh) beside `openssl ca` in a loop.
#
#   bash bench/enroll.sh                 # build/tlsgate, COUNT=300, ROUNDS=3
#
# tlsgate: `enroll-ca serve` on CPU 0; bench/est_load.py on CPU 1 sends COUNT
# /simplereenroll requests (requests made beforehand, EC P-256) on one keep-alive
# connection with mutual TLS, as a device renewing does: every request is checked against
# the CA, the client certificate's revocation state, and issued, recorded and audited in a
# transaction of its own.
# openssl: `openssl ca -batch` in a loop over COUNT requests made beforehand, one process
# per certificate (how a script drives it), with an EC P-384 CA as tlsgate's; its database
# is the index.txt file.
# ACME: bench/acme_orders.py runs ACME_COUNT `tlsgate acme order` commands one after
# another against Pebble (PEBBLE_VA_NOSLEEP=1; http-01 answered by serve), each a new name.
# Figures: certificates per second (wall) and, for tlsgate, the server's CPU per
# certificate (utime+stime from /proc/PID/stat); medians of ROUNDS interleaved rounds
# (../shared/tools/README.md); ACME orders per minute and the order command's CPU each. The results replace the section "Enrollment CA
# (bench/enroll.sh)" of bench/RESULTS.md (RESULTS=- to skip).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$here/../build/tlsgate}
COUNT=${COUNT:-300}
ACME_COUNT=${ACME_COUNT:-20}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-19445}
RESULTS=${RESULTS:-$here/RESULTS.md}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac

work=$(mktemp -d /tmp/tg-bench-enroll.XXXXXX)
est_pid=
cleanup() {
    [ -n "$est_pid" ] && kill "$est_pid" 2>/dev/null && wait "$est_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export TLSGATE_HOME=$work/ca

"$BIN" init >/dev/null # only init (and serve) make a store
"$BIN" enroll-ca init >/dev/null
"$BIN" cert create est-server --cn localhost --san IP:127.0.0.1 --key ec:p256 >/dev/null
"$BIN" cert export est-server --format pem --out "$work/est.pem" >/dev/null
secret=$("$BIN" --json enroll-ca secret | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')

taskset -c 0 "$BIN" enroll-ca serve --listen 127.0.0.1:$PORT --cert est-server >"$work/est.log" 2>&1 &
est_pid=$!
for _ in $(seq 100); do grep -q listening "$work/est.log" 2>/dev/null && break; sleep 0.05; done

# the device's first certificate, with the secret (curl and openssl, as in tests/e2e)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/dev.key" \
    -subj /CN=bench-device -outform DER -out "$work/dev.der" 2>/dev/null
base64 "$work/dev.der" > "$work/dev.b64"
curl -sS --cacert "$work/est.pem" -u "bench-device:$secret" -H 'Content-Type: application/pkcs10' \
    --data-binary @"$work/dev.b64" -o "$work/dev.p7b64" https://127.0.0.1:$PORT/.well-known/est/simpleenroll
tr -d "\r" < "$work/dev.p7b64" | base64 -d | openssl pkcs7 -inform DER -print_certs -out "$work/dev.pem"

# openssl ca: an EC P-384 root, its requests made beforehand
mkdir -p "$work/ossl/new"
cd "$work/ossl"
touch index.txt
echo 1000 > serial
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout ca.key -out ca.pem \
    -subj "/CN=openssl bench CA" -days 3650 2>/dev/null
cat > ca.cnf <<CNF
[ ca ]
default_ca = bench
[ bench ]
dir = $work/ossl
database = \$dir/index.txt
new_certs_dir = \$dir/new
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
serial = \$dir/serial
default_md = sha384
default_days = 1825
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = leaf
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
for i in $(seq "$COUNT"); do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
        -subj "/CN=dev-$i" -out "req-$i.pem" 2>/dev/null
done
cd "$here"

cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat"; }
rows=()
for r in $(seq "$ROUNDS"); do
    c0=$(cpu_ms "$est_pid")
    read -r n secs issued < <(taskset -c 1 python3 "$here/est_load.py" 127.0.0.1 "$PORT" \
        "$work/est.pem" "$work/dev.pem" "$work/dev.key" "$COUNT")
    c1=$(cpu_ms "$est_pid")
    [ "$issued" = "$n" ] || { echo "only $issued of $n issued" >&2; exit 1; }
    rows+=("tlsgate $r $n $secs $((c1 - c0))")
    t0=$(date +%s.%N)
    for i in $(seq "$COUNT"); do
        taskset -c 0 openssl ca -batch -config "$work/ossl/ca.cnf" -in "$work/ossl/req-$i.pem" \
            -out /dev/null -notext 2>/dev/null
    done
    t1=$(date +%s.%N)
    rows+=("openssl $r $COUNT $(echo "$t1 - $t0" | bc -l | xargs printf '%.3f') -")
    # the next round issues again to the same names
    : > "$work/ossl/index.txt"
done

kill "$est_pid" 2>/dev/null; wait "$est_pid" 2>/dev/null || true
est_pid=
read -r an asecs acpu < <(python3 "$here/acme_orders.py" "$BIN" "$ACME_COUNT" | tail -1)
apm=$(echo "$an * 60 / $asecs" | bc -l | xargs printf '%.1f')
acpu_each=$(echo "$acpu / $an" | bc -l | xargs printf '%.0f')

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
rate() { printf '%s\n' "${rows[@]}" | awk -v w="$1" '$1==w {printf "%.1f\n", $3/$4}' | median; }
cpu() { printf '%s\n' "${rows[@]}" | awk '$1=="tlsgate" {printf "%.0f\n", $5*1000/$3}' | median; }
tg=$(rate tlsgate); os=$(rate openssl); tgcpu=$(cpu)
ratio=$(echo "$tg / $os" | bc -l | xargs printf '%.1f')
machine="$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | awk '{print $1, $2}'); $(openssl version | cut -d' ' -f1-2)"
section=$(cat <<MD
## Enrollment CA (bench/enroll.sh)

Run $(date -u +%FT%TZ) (tlsgate $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo ?)), $machine.
$COUNT certificates a round, medians of $ROUNDS interleaved rounds. tlsgate: \`enroll-ca
serve\` on CPU 0, /simplereenroll over one keep-alive mutual-TLS connection from CPU 1
(each request checked, issued, recorded and audited in its own transaction). openssl:
\`openssl ca -batch\` a process per certificate on CPU 0, requests made beforehand.

| issuer | certificates/s | server CPU per certificate |
| --- | --- | --- |
| tlsgate enroll-ca (EST) | $tg | $tgcpu µs |
| \`openssl ca\` in a loop | $os | (a process each) |

ACME against Pebble (bench/acme_orders.py): $an orders in $asecs s, **$apm orders per
minute**, $acpu_each ms of the order command's CPU each (a new key, account lookup, order,
one http-01 authorization answered by serve, finalize, download, import).

tlsgate issues ${ratio}× as many per second as openssl ca. Every round (who, round, certificates,
seconds, server CPU ms):

\`\`\`
$(printf '%s\n' "${rows[@]}")
\`\`\`
MD
)
echo "$section"
if [ "$RESULTS" != "-" ]; then
    python3 - "$RESULTS" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
head = "## Enrollment CA (bench/enroll.sh)"
if head in text:
    start = text.index(head)
    nxt = text.find("\n## ", start + 1)
    text = text[:start] + section + "\n" + (text[nxt + 1:] if nxt >= 0 else "")
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
fi
