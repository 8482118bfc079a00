#!/bin/sh
# Runs the command-line paths under valgrind and fails on any leak or memory error.
# Kept small (one run per path) because valgrind is slow; ASan covers the whole suite.
set -eu
BIN=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { echo "valgrind missing (make bootstrap)"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TLSGATE_HOME="$T/home"
VG="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99"
run() { # expected-status command...
    want=$1; shift
    set +e
    $VG "$BIN" "$@" >"$T/out" 2>"$T/err"
    got=$?
    set -e
    if [ "$got" != "$want" ]; then
        echo "valgrind: tlsgate $* exited $got (wanted $want)"; cat "$T/err"; exit 1
    fi
}
cd "$T"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -subj "/CN=VG Root" -days 30 2>/dev/null
run 4 --home "$T/none" cert list
run 0 init
run 0 help --json
run 0 help --man
run 0 help --bash-completion
run 0 proxy client create --help
run 2 cret list
run 2 cert create --nope
run 0 cert create vg --cn vg.example.com --san DNS:a.example.com --key ec:p256 --days 30
run 0 request create vgreq --cn req.example.com --key rsa:2048
run 0 request export vgreq --out req.pem
openssl x509 -req -in req.pem -CA ca.pem -CAkey ca.key -CAcreateserial -days 10 -out signed.pem 2>/dev/null
run 0 cert import signed.pem ca.pem
run 0 --json cert list
run 0 cert show vg
run 0 request list
printf 'valgrind-pass\n' > pass.txt
run 0 cert export vg --format p12 --with-key --with-chain --passphrase-file pass.txt --out vg.p12
run 0 --home "$T/home2" init
run 0 --home "$T/home2" cert import vg.p12 --name vg-copy --password-file pass.txt
run 0 --home "$T/home2" cert import - --password-file pass.txt <vg.p12
run 2 --home "$T/home2" cert import - --key - <signed.pem
run 0 cert export vgreq --format pem --with-chain --out chain.pem
run 5 cert export vgreq --format pem --out chain.pem
run 0 cert export vgreq --format pem --out chain.pem --force
run 5 cert export vgreq --format pem --out "$T/home/store.db" --force
mkfifo fifo
run 3 cert import fifo
python3 "$HERE/../interop/kdf_files.py" kdf
run 3 cert import kdf/p12-bags.p12 --password-file pass.txt
run 0 cert default vgreq
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout new.key -out new.pem -subj "/CN=new.example.com" -days 5 2>/dev/null
run 0 cert replace vgreq new.pem --key new.key
run 3 cert create bad --cn x --key rsa:1024
run 0 cert create vgca --signing --cn "VG Inspection CA" --key ec:p256 --days 30
run 0 --json ca list
run 0 ca show vgca
run 0 ca reissue vgca --days 60 --name vgca-2
run 0 truststore create vgts
run 0 proxy client create vgp --signing vgca --truststore vgts --listen 127.0.0.1:3128 --ports 443,8443 --ciphers HIGH
run 0 --json proxy client list
run 0 proxy client set vgp --no-ciphers --block-invalid --max-conns 10
run 5 proxy client create vgp2 --signing vgca --truststore vgts --listen 127.0.0.1:3129 --ports 8000-9000
run 5 cert delete vgca
run 3 proxy client create vgp3 --signing vgca --truststore vgts --listen localhost:3130 --ports 1
run 0 policy create vgpol --never-domain bank.example --never-category finance --never-source 10.0.0.0/8 --always-source 2001:db8::/32
run 0 proxy client set vgp --policy vgpol --no-sni block --ech decrypt --non-tls block --fail-open 60 --keylog
run 5 policy delete vgpol
run 0 --json proxy client show vgp
run 0 policy set vgpol --add-never-domain '*.health.example' --remove-never-source 10.0.0.0/8 --no-defaults
run 3 policy set vgpol --add-never-source 10.1.0.0/8
run 0 --json policy list
run 0 policy show vgpol
run 0 policy export vgpol --out pol.json
run 0 policy import pol.json --name vgpol2
run 5 policy import pol.json
run 0 policy import pol.json --replace
run 0 policy defaults show
run 0 policy defaults export --out defaults.txt
run 0 policy defaults import defaults.txt
printf 'ok.example\nbad_one.example\n' > baddef.txt
run 3 policy defaults import baddef.txt
run 0 policy defaults reset
printf '# map\nbank.example finance\n*.clinic.example health\n' > cats.txt
run 0 category import cats.txt
printf 'ok.example a\nbad line here\n' > badcats.txt
run 3 category import badcats.txt
run 0 --json category list
run 0 category show a.b.clinic.example
run 0 category clear
run 0 proxy client delete vgp
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.pem -subj "/CN=srv.example" -addext "subjectAltName=DNS:srv.example" -addext basicConstraints=critical,CA:FALSE -days 5 2>/dev/null
run 0 cert import srv.pem
run 0 proxy server create vgs --dest 192.0.2.0/24 --dest 2001:db8::/64 --cert srv.example --cert srv.example --source-except 198.51.100.7 --truststore vgts --log
run 0 --json proxy server list
run 0 proxy server list
run 0 proxy server show vgs
run 0 cert import srv.key
run 0 proxy server set vgs --add-dest 203.0.113.0/24 --remove-dest 192.0.2.0/24 --no-truststore --tcp-reset
run 5 proxy server create vgs2 --dest 203.0.113.9 --cert srv.example
run 3 proxy server set vgs --remove-cert srv.example
run 4 proxy server set vgs --remove-dest 10.0.0.0/8
run 5 cert delete srv.example
run 0 proxy server set vgs --mode explicit --listen 127.0.0.1:8443 --upstream 192.0.2.1:443
run 0 --json proxy server show vgs
run 0 proxy server delete vgs
run 0 proxy server create --help
run 4 proxy stats
run 4 --json proxy stats vgp
run 3 cert create vgbad --signing --cn "VG CA" --days 0
run 3 cert create "vg/bad" --signing --cn "VG CA"
run 4 cert show nothing
run 5 cert delete "appliance default"
run 3 cert import pass.txt
run 0 cert delete vg
printf 'valgrind-password\n' > upw.txt
run 0 user add vguser --role "certificate manager" --password-file upw.txt
run 5 user add VGUSER --role auditor --password-file upw.txt
run 3 user add vg2 --role boss --password-file upw.txt
printf 'too-short\n' > ushort.txt
run 6 user add vg3 --role auditor --password-file ushort.txt
run 0 --json user list
run 0 user role vguser inspection-manager
run 0 --json user token vguser --label vg --days 7
run 0 user token vguser
run 0 user tokens vguser
run 0 user revoke vguser 1
run 4 user revoke vguser 1
run 0 user passwd vguser --password-file upw.txt
run 5 user del admin
run 0 user disable vguser
run 0 group create vgg
run 5 group create VGG
run 0 group deny vgg --proxy vgp
run 0 --json group deny vgg --policy vgpol
run 2 group deny vgg
run 0 group allow vgg --policy vgpol
run 0 user group vguser vgg
run 4 user group vguser nogroup
run 0 --json group show vgg
run 0 group list
run 0 --json user list
run 0 user group vguser --none
run 0 user group vguser vgg
run 0 group delete vgg
run 4 group delete vgg
run 0 user del vguser
run 0 --json audit --limit 5
run 0 audit --since 2020-01-01
run 3 audit --since yesterday
run 0 config show
run 0 --json config show
run 2 verify
run 2 verify ca.pem --ca-file ca.pem --truststore nothing
run 1 verify ca.pem --ca-file ca.pem --at 2026-01-01T00:00:00Z
run 2 serve --threads 65 --no-admin
# enrollment (issue 11): the CA's commands, and a device enrolling against it (the EST
# server itself runs without valgrind; ASan covers it in the suite)
run 0 --home "$T/ca" init
run 0 --home "$T/ca" enroll-ca init --approval secret
run 5 --home "$T/ca" enroll-ca init
run 0 --home "$T/ca" cert create est --cn localhost --san IP:127.0.0.1 --key ec:p256
run 0 --home "$T/ca" cert export est --format pem --out est.pem
run 0 --home "$T/ca" --json enroll-ca secret --label vg
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret"])' "$T/out" > secret.txt
run 0 --home "$T/ca" enroll-ca set --device-days 30 --retry-after 5
run 3 --home "$T/ca" enroll-ca set --approval often
run 4 --home "$T/ca" enroll-ca revoke nobody
ESTPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --home "$T/ca" enroll-ca serve --listen 127.0.0.1:$ESTPORT --cert est > est.log 2>&1 &
EST=$!
for _ in $(seq 100); do grep -q listening est.log 2>/dev/null && break; sleep 0.05; done
run 0 identity enroll --server https://127.0.0.1:$ESTPORT --ca-file est.pem --secret-file secret.txt --serial VG-1
run 0 --json identity show
run 0 identity renew
run 5 cert export appliance-key --format p12 --with-key --passphrase-file pass.txt --out id.p12
run 0 --home "$T/ca" --json enroll-ca show
run 0 --home "$T/ca" enroll-ca revoke VG-1 --reason vg
run 5 identity renew
kill $EST; wait $EST 2>/dev/null || true
run 8 identity enroll --server https://127.0.0.1:$ESTPORT --ca-file est.pem
run 0 factory-reset --yes
run 0 --json init
echo "valgrind: no leaks or memory errors in the CLI paths"
