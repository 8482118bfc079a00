#!/bin/bash
# bench/inspect.sh [TLSGATE] — client inspection (SPEC P2) against sslsplit and mitmproxy.
#
#   bash bench/inspect.sh                       # build/tlsgate, 5 rounds of 10 s
#   ROUNDS=3 SECS=5 bash bench/inspect.sh build/tlsgate
#   PEERS="ss mp" bash bench/inspect.sh         # the peers only (no tlsgate needed)
#
# Three TLS-intercepting proxies on loopback, each on CPU 0 (taskset), loaded from CPU 1:
#   tg  `tlsgate serve --threads 1 --quiet` with one client proxy in a fresh TLSGATE_HOME:
#       `cert create inspect --signing --key ec:p256`, the origin's root imported as a CA
#       into trust store `bench`, `proxy client create bench --mode explicit --ports W,N`.
#       Names resolve through TLSGATE_TEST_HOSTS (a hosts file of all the names used).
#   ss  sslsplit (Debian; one process, its privilege-separated child does the work, all
#       its threads on CPU 0). sslsplit has no CONNECT mode: two static proxyspecs
#       `https 127.0.0.1 PORT 127.0.0.1 W|N` take the TLS connection directly (as after a
#       NAT redirect, without the NAT lookup). CA and leaf key EC P-256 (-c/-k/-K), no -P
#       (a connection that cannot be split fails rather than passing uninspected).
#       sslsplit does not verify upstream certificates.
#   mp  mitmdump (Debian's mitmproxy) in regular (CONNECT) mode, the same CA in its
#       confdir (mitmproxy's leaves reuse the CA's key: EC P-256), ssl_insecure off and
#       the origin root as ssl_verify_upstream_trusted_ca, stream_large_bodies=1m, and a
#       one-line addon (bench/inspect_route.py) that connects every upstream to 127.0.0.1
#       on the CONNECT port (mitmproxy has no hosts-file option).
# The origin is bench/origin.c on CPU 1 (one thread per connection, no session cache, no
# stateless tickets, so every upstream handshake is a full one; ORIGIN_TICKETS (1)
# stateful TLS 1.3 tickets that never resume are still sent after the handshake, as most
# servers send something then; 0 makes a proxy without TCP_NODELAY upstream wait for a
# delayed ACK, ~40 ms, before its first request): port W serves one certificate for
# *.bench.test, port N mints a new certificate for every connection (CN and SAN the SNI
# name, a fresh serial), so that a proxy's cache of forged leaves — keyed by the upstream
# certificate in tlsgate and sslsplit, by names in mitmproxy — misses every time. Both
# are issued by an origin root (EC P-256) that tlsgate and mitmproxy trust.
#
# Cases (the load: ../shared/tools/tlsload.c, -P PROCS -3, a new connection, a full TLS
# 1.3 handshake and one GET of a 3-byte body per request; explicit proxies get a CONNECT
# first):
#   cached   one name (h0.bench.test) on W: every proxy forges once and then hits its cache.
#   newname  a new name every connection (hN.bench.test, NAMES in turn) on W: one upstream
#            certificate, so tlsgate and sslsplit hit their caches; mitmproxy mints.
#   mint     a new name every connection on N: a new upstream certificate every time,
#            every proxy mints a leaf for every connection.
# The figure is the proxy's CPU time per completed connection (utime+stime of the proxy's
# process and its descendants from /proc, before and after the run). Interleaved rounds
# (tg, ss, mp, tg, …) after a 2 s warm-up each; medians and every run are reported.
# Bulk: curl --http1.1 (on CPU 1) fetches BIG_MB MB from W directly and through each
# proxy, BULK_ROUNDS interleaved rounds; MB/s (10^6 bytes) median, as % of direct, and
# the proxy's CPU time per 100 MB. Direct and proxied the origin and curl share CPU 1.
#
# The machine line, the figures and the verdict against the bar of the issue (tlsgate's
# CPU per connection at most 1/2.5 of sslsplit's and 1/10 of mitmproxy's, cached and
# mint; bulk at least 90% of direct) go to the section "Client inspection
# (bench/inspect.sh)" of bench/RESULTS.md (RESULTS=- to skip); the section is replaced,
# whatever follows "<!-- inspect.sh: notes -->" in it is kept.
#
# Environment: ROUNDS (5), SECS (10), PROCS (8), NAMES (2000), BIG_MB (100),
# BULK_ROUNDS (3), ORIGIN_TICKETS (1), ORIGIN_RESUME (0; 1: the origin's TLS 1.3 tickets
# resume, for proxies that keep upstream sessions), CASES ("cached newname mint"), PEERS ("tg ss mp"), PORT (19400: the
# origin's W; N, tlsgate's serve and proxy, sslsplit's two and mitmproxy's follow it),
# RESULTS. Raw output of the last run: bench/out/inspect-last/ (keys and stores live in
# a temporary directory removed on exit). Every process started is stopped by its PID.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$here/../build/tlsgate}
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-10}
PROCS=${PROCS:-8}
NAMES=${NAMES:-2000}
BIG_MB=${BIG_MB:-100}
BULK_ROUNDS=${BULK_ROUNDS:-3}
CASES=${CASES:-cached newname mint}
PEERS=${PEERS:-tg ss mp}
PORT=${PORT:-19400}
ORIGIN_TICKETS=${ORIGIN_TICKETS:-1}
ORIGIN_RESUME=${ORIGIN_RESUME:-0}
RESULTS=${RESULTS:-$here/RESULTS.md}
PY=/usr/bin/python3
TLSLOAD_SRC=${TLSLOAD_SRC:-$here/../../shared/tools/tlsload.c}

log() { echo "inspect.sh: $*" >&2; }
for v in ROUNDS SECS PROCS NAMES BIG_MB BULK_ROUNDS PORT ORIGIN_TICKETS ORIGIN_RESUME; do
    case ${!v} in '' | *[!0-9]*) log "$v must be a number"; exit 2 ;; esac
done
[ "$ROUNDS" -ge 1 ] && [ "$NAMES" -ge 2 ] && [ "$SECS" -ge 1 ] || { log "ROUNDS >= 1, SECS >= 1, NAMES >= 2"; exit 2; }
case " $PEERS " in *" tg "*)
    case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
    [ -x "$BIN" ] || { log "$BIN is not an executable (build first, or PEERS=\"ss mp\")"; exit 2; } ;;
esac

# --- what it needs (apt, non-interactive, only what is missing) ----------------------
need_pkgs=()
command -v sslsplit >/dev/null || need_pkgs+=(sslsplit)
command -v mitmdump >/dev/null || need_pkgs+=(mitmproxy)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
command -v cc >/dev/null || need_pkgs+=(gcc)
command -v openssl >/dev/null || need_pkgs+=(openssl)
[ -f /usr/include/openssl/ssl.h ] || need_pkgs+=(libssl-dev)
. "$here/lib.sh"
install_missing "${need_pkgs[@]+"${need_pkgs[@]}"}"

W=$PORT N=$((PORT + 1)) TGS=$((PORT + 2)) TGP=$((PORT + 3)) SSW=$((PORT + 4)) SSN=$((PORT + 5)) MPP=$((PORT + 6))
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $W $N $TGS $TGP $SSW $SSN $MPP; do
    port_free "$p" || { log "127.0.0.1:$p is in use; set PORT"; exit 1; }
done

out=$here/out
work=$out/inspect-last
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
tmp=$(mktemp -d /tmp/inspect.XXXXXX)

# --- processes we started (stopped by PID on every exit): bench/lib.sh's cleanup -------
trap cleanup EXIT
trap 'exit 130' INT TERM
name_of() { case $1 in tg) echo tlsgate ;; ss) echo sslsplit ;; mp) echo mitmproxy ;; direct) echo direct ;; esac; }

# --- tools and key material ------------------------------------------------------------------
cc -O2 -Wall -o "$tmp/tlsload" "$TLSLOAD_SRC" -lssl -lcrypto
cc -O2 -Wall -pthread -o "$tmp/origin" "$here/origin.c" -lssl -lcrypto
LOAD=$tmp/tlsload
ossl_ca() { # KEY CERT CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1" -out "$2" \
        -days 30 -subj "/CN=$3" -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
ossl_ca "$tmp/root.key" "$tmp/root.pem" "Bench Origin Root"
ossl_ca "$tmp/ca.key" "$tmp/ca.pem" "Bench CA"           # sslsplit's and mitmproxy's
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/leaf.key" 2>/dev/null
# the hosts file for tlsgate: every name used, 50 a line
awk -v n="$NAMES" 'BEGIN { for (i = 0; i < n; i++) { if (i % 50 == 0) printf "%s127.0.0.1", (i ? "\n" : ""); printf " h%d.bench.test", i } print "" }' >"$tmp/hosts"

# --- start --------------------------------------------------------------------------------
declare -A PID CAFILE
wait_port() { # PORT PID WHAT LOG
    local t0; t0=$(now)
    until ! port_free "$1"; do
        kill -0 "$2" 2>/dev/null || { log "$3 did not start:"; cat "$4" >&2; exit 1; }
        [ $(($(now) - t0)) -lt 60000000000 ] || { log "$3 not listening after 60 s"; exit 1; }
        sleep 0.1
    done
}

taskset -c 1 "$tmp/origin" "$tmp/root.pem" "$tmp/root.key" "$W" "$N" "$BIG_MB" "$ORIGIN_TICKETS" "$ORIGIN_RESUME" >"$work/origin.log" 2>&1 &
OPID=$!
PIDS+=("$OPID")
wait_port "$N" "$OPID" origin "$work/origin.log"

tgver=""
case " $PEERS " in *" tg "*)
    export TLSGATE_HOME=$tmp/tghome
    mkdir -p "$TLSGATE_HOME"
    TG=$tmp/tlsgate
    cp "$BIN" "$TG" # a rebuild during the run does not disturb it
    {
        "$TG" init # only init (and serve) make a store
        "$TG" cert create inspect --signing --cn "Bench CA" --key ec:p256
        "$TG" ca import "$tmp/root.pem" --name origin-root
        "$TG" truststore create bench
        "$TG" truststore add bench origin-root
        "$TG" proxy client create bench --signing inspect --truststore bench \
            --listen "127.0.0.1:$TGP" --mode explicit --ports "$W,$N"
        "$TG" proxy client show bench
    } >"$work/tg-setup.log" 2>&1 || { log "tlsgate setup failed:"; cat "$work/tg-setup.log" >&2; exit 1; }
    "$TG" ca export inspect --format pem --out "$tmp/tg-ca.pem" >>"$work/tg-setup.log" 2>&1 ||
        "$TG" cert export inspect --format pem --out "$tmp/tg-ca.pem" >>"$work/tg-setup.log" 2>&1 || true
    CAFILE[tg]=$tmp/tg-ca.pem
    tgver=$("$TG" --version 2>/dev/null | sed -n 1p || true)
    TLSGATE_TEST_HOSTS=$tmp/hosts taskset -c 0 "$TG" serve --threads 1 --quiet --no-admin \
        --listen "127.0.0.1:$TGS" >"$work/tg.log" 2>&1 &
    PID[tg]=$!
    PIDS+=("${PID[tg]}")
    wait_port "$TGP" "${PID[tg]}" tlsgate "$work/tg.log"
    ;;
esac

case " $PEERS " in *" ss "*)
    # no -P: a connection that cannot be split is dropped (counted as failed), not passed
    taskset -c 0 sslsplit -k "$tmp/ca.key" -c "$tmp/ca.pem" -K "$tmp/leaf.key" \
        https 127.0.0.1 "$SSW" 127.0.0.1 "$W" https 127.0.0.1 "$SSN" 127.0.0.1 "$N" >"$work/ss.log" 2>&1 &
    PID[ss]=$!
    PIDS+=("${PID[ss]}")
    CAFILE[ss]=$tmp/ca.pem
    wait_port "$SSN" "${PID[ss]}" sslsplit "$work/ss.log"
    ;;
esac

case " $PEERS " in *" mp "*)
    mkdir -p "$tmp/mitm"
    cat "$tmp/ca.key" "$tmp/ca.pem" >"$tmp/mitm/mitmproxy-ca.pem"
    cp "$tmp/ca.pem" "$tmp/mitm/mitmproxy-ca-cert.pem"
    taskset -c 0 mitmdump --mode regular --listen-host 127.0.0.1 --listen-port "$MPP" \
        --set confdir="$tmp/mitm" --set ssl_insecure=false \
        --set ssl_verify_upstream_trusted_ca="$tmp/root.pem" --set stream_large_bodies=1m \
        --set termlog_verbosity=warn --set flow_detail=0 -s "$here/inspect_route.py" >"$work/mp.log" 2>&1 &
    PID[mp]=$!
    PIDS+=("${PID[mp]}")
    CAFILE[mp]=$tmp/ca.pem
    wait_port "$MPP" "${PID[mp]}" mitmproxy "$work/mp.log"
    ;;
esac

# --- how to reach ORIGINPORT (W or N) with NAME through each ------------------------------
load_args() { # PEER ORIGINPORT -> tlsload -a/-x
    case $1 in
        tg) echo "-a 127.0.0.1:$TGP -x SNI:$2" ;;
        mp) echo "-a 127.0.0.1:$MPP -x SNI:$2" ;;
        ss) if [ "$2" = "$W" ]; then echo "-a 127.0.0.1:$SSW"; else echo "-a 127.0.0.1:$SSN"; fi ;;
        direct) echo "-a 127.0.0.1:$2" ;;
    esac
}
curl_args() { # PEER ORIGINPORT NAME
    case $1 in
        tg) echo "-x http://127.0.0.1:$TGP https://$3:$2" ;;
        mp) echo "-x http://127.0.0.1:$MPP https://$3:$2" ;;
        ss) local p=$SSW; [ "$2" = "$W" ] || p=$SSN; echo "--resolve $3:$p:127.0.0.1 https://$3:$p" ;;
        direct) echo "--resolve $3:$2:127.0.0.1 https://$3:$2" ;;
    esac
}
# the certificate a proxy shows for NAME: "subject | issuer | key type"
shown_cert() { # PEER ORIGINPORT NAME
    local a
    case $1 in
        tg) a="-proxy 127.0.0.1:$TGP -connect $3:$2" ;;
        mp) a="-proxy 127.0.0.1:$MPP -connect $3:$2" ;;
        ss) if [ "$2" = "$W" ]; then a="-connect 127.0.0.1:$SSW"; else a="-connect 127.0.0.1:$SSN"; fi ;;
    esac
    # shellcheck disable=SC2086
    openssl s_client $a -servername "$3" </dev/null 2>/dev/null |
        openssl x509 -noout -subject -issuer -text 2>/dev/null |
        awk '/^subject=/ { s = $0 } /^issuer=/ { i = $0 } /Public-Key: \(/ { b = $0; sub(/.*\(/, "", b); sub(/\).*/, "", b) }
             /ASN1 OID:/ { k = $NF } /Public Key Algorithm:/ && !a { a = $NF } END { printf "%s | %s | %s %s %s\n", s, i, a, k, b }'
}

# --- checks: each proxy intercepts (its CA signs what it shows) and serves the origin's body
: >"$work/checks"
for p in $PEERS; do
    for op in $W $N; do
        nm=h1.bench.test
        c=$(shown_cert "$p" "$op" "$nm")
        echo "$p port $([ "$op" = "$W" ] && echo W || echo N) $nm: $c" >>"$work/checks"
        case $c in *"Bench CA"*) ;; *) log "$(name_of "$p") does not show a Bench CA leaf for $nm on $op: '$c'"; cat "$work/$p.log" >&2; exit 1 ;; esac
    done
    ca=(--cacert "${CAFILE[$p]}")
    [ -s "${CAFILE[$p]}" ] || ca=(-k)
    # shellcheck disable=SC2046
    body=$(curl -s --http1.1 "${ca[@]}" $(curl_args "$p" "$N" h2.bench.test)/ 2>&1) || true
    echo "$p curl (verified with ${ca[*]}): '$body'" >>"$work/checks"
    [ "$body" = ok ] || { log "$(name_of "$p"): GET through it gave '$body'"; cat "$work/$p.log" >&2; exit 1; }
done
cat "$work/checks" >&2

# --- one measured run: appends "peer case round us conns fails rate" to $work/runs --------
declare -A OFF DEAD
run() { # PEER CASE ROUND
    local p=$1 cs=$2 round=$3 secs=$SECS args op
    [ "$round" = warm ] && secs=2
    [ -z "${DEAD[$p]:-}" ] || return 0
    case $cs in
        cached) op=$W; args=(-n h0.bench.test) ;;
        newname) op=$W; args=(-u "h%d.bench.test" -M "$NAMES" -O "${OFF[$p]:-0}") ;;
        mint) op=$N; args=(-u "h%d.bench.test" -M "$NAMES" -O "${OFF[$p]:-0}") ;;
    esac
    local c0 c1 r
    c0=$(cpu_ticks "${PID[$p]}")
    # shellcheck disable=SC2046
    r=$(taskset -c 1 "$LOAD" $(load_args "$p" "$op") -t "$secs" -P "$PROCS" -3 "${args[@]}")
    c1=$(cpu_ticks "${PID[$p]}")
    local conns fails rate us
    conns=$(field conns "$r"); fails=$(field fails "$r"); rate=$(field conn_per_s "$r")
    OFF[$p]=$(( (${OFF[$p]:-0} + conns + fails) % NAMES ))
    us=$(awk -v t=$((c1 - c0)) -v k="$TCK" -v c="$conns" 'BEGIN { printf "%.0f", c ? t * 1e6 / k / c : 0 }')
    echo "$p $cs $round $us $conns $fails $rate" >>"$work/runs"
    log "  $(name_of "$p") $cs round $round: $us us/conn ($conns conns, $fails failed, $rate/s, $(field proto "$r"))"
    if [ "$fails" -gt $((conns / 100)) ]; then
        echo "$(name_of "$p") $cs round $round: $fails failed of $((conns + fails)) ($r)" >>"$work/anomalies"
    fi
    if ! kill -0 "${PID[$p]}" 2>/dev/null; then
        DEAD[$p]=1
        echo "$(name_of "$p") exited during $cs round $round; its log: $(tail -5 "$work/$p.log" | tr '\n' ' ')" >>"$work/anomalies"
        log "$(name_of "$p") died"
    fi
}

bulk() { # PEER ROUND
    local p=$1 round=$2 c0=0 c1=0 ca r
    [ "$p" = direct ] || [ -z "${DEAD[$p]:-}" ] || return 0
    ca=(--cacert "$tmp/root.pem")
    [ "$p" = direct ] || ca=(--cacert "${CAFILE[$p]}")
    [ "$p" = direct ] || [ -s "${CAFILE[$p]}" ] || ca=(-k)
    [ "$p" = direct ] || c0=$(cpu_ticks "${PID[$p]}")
    # shellcheck disable=SC2046
    r=$(taskset -c 1 curl -s --http1.1 --max-time 120 "${ca[@]}" -o /dev/null \
        -w '%{http_code} %{size_download} %{speed_download}' $(curl_args "$p" "$W" h0.bench.test)/big) || true
    [ "$p" = direct ] || c1=$(cpu_ticks "${PID[$p]}")
    local code size speed mbs cpu
    read -r code size speed <<<"$r"
    mbs=$(awk -v s="${speed:-0}" 'BEGIN { printf "%.0f", s / 1e6 }')
    cpu=$(awk -v t=$((c1 - c0)) -v k="$TCK" -v b="${size:-0}" 'BEGIN { printf "%.0f", b ? t * 1000 / k * 1e8 / b : 0 }')
    echo "$p $round $mbs $cpu $code $size" >>"$work/bulk"
    log "  bulk $(name_of "$p") round $round: $mbs MB/s (HTTP $code, $size bytes, proxy CPU $cpu ms per 100 MB)"
    if [ "$code" != 200 ] || [ "$size" != $((BIG_MB * 1000000)) ]; then
        echo "bulk $(name_of "$p") round $round: HTTP $code, $size bytes of $((BIG_MB * 1000000))" >>"$work/anomalies"
    fi
}

# --- the run ---------------------------------------------------------------------------
# (no `| head` under pipefail: the writer's SIGPIPE would fail the assignment)
machine="$(uname -r), $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), nproc $(nproc), $(openssl version | sed 's/ (Library.*//')"
ssver=$(sslsplit -V 2>&1 | sed -n 1p)
mpver=$(mitmdump --version 2>/dev/null | sed -n 's/^Mitmproxy: */mitmproxy /p')
rev=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%FT%TZ)
T0=$(now)
: >"$work/runs"; : >"$work/bulk"; : >"$work/anomalies"
declare -A RSS0
for p in $PEERS; do RSS0[$p]=$(rss_kb "${PID[$p]}"); done

for cs in $CASES; do
    log "== $cs =="
    for p in $PEERS; do run "$p" "$cs" warm; done
    for r in $(seq "$ROUNDS"); do
        for p in $PEERS; do run "$p" "$cs" "$r"; done
    done
done
log "== bulk: $BIG_MB MB =="
for r in $(seq "$BULK_ROUNDS"); do
    for p in direct $PEERS; do bulk "$p" "$r"; done
done
declare -A RSS1
for p in $PEERS; do RSS1[$p]=$(rss_kb "${PID[$p]}" 2>/dev/null || echo 0); done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( ($(now) - T0) / 1000000000 ))
[ -n "${PID[tg]:-}" ] && cp "$TLSGATE_HOME/proxy-stats.json" "$work/tg-proxy-stats.json" 2>/dev/null || true
for p in $PEERS; do
    [ -n "${DEAD[$p]:-}" ] || kill -0 "${PID[$p]}" 2>/dev/null ||
        echo "$(name_of "$p") was not running at the end; its log: $(tail -5 "$work/$p.log" | tr '\n' ' ')" >>"$work/anomalies"
done
log "measured in $elapsed s"

# --- the report ------------------------------------------------------------------------------
med() { awk -v p="$1" -v c="$2" '$1 == p && $2 == c && $3 != "warm" { print $'"$3"' }' "$work/runs" | median; }
bmed() { awk -v p="$1" '$1 == p { print $'"$2"' }' "$work/bulk" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "–"; else printf "%.2f", a / b }'; }
has() { case " $PEERS " in *" $1 "*) return 0 ;; esac; return 1; }
report=$work/report.md
{
    echo "## Client inspection (bench/inspect.sh)"
    echo
    echo "Run $started, tlsgate $rev${tgver:+ ($tgver)}; machine: $machine."
    echo "Peers: $ssver; $mpver; origin bench/origin.c (full handshakes only, $ORIGIN_TICKETS non-resuming TLS 1.3 ticket(s))."
    echo "Load average before/after: $load0 / $load1."
    echo "Each proxy on CPU 0 (one tlsgate thread; sslsplit's threads and mitmdump's process"
    echo "all on CPU 0), the load (tlsload -P $PROCS -3: new connection, full TLS 1.3 handshake, one"
    echo "GET of 3 bytes) and the origin on CPU 1. $ROUNDS interleaved rounds of $SECS s per case after a"
    echo "2 s warm-up. CPU = utime+stime of the proxy (process and descendants) per completed"
    echo "connection. cached: one name, one upstream certificate; newname: a new name per"
    echo "connection ($NAMES in turn), one wildcard upstream certificate (tlsgate and sslsplit cache"
    echo "forged leaves by upstream certificate: hits; mitmproxy by name: mints); mint: a new"
    echo "name and a freshly minted upstream certificate per connection (every proxy mints)."
    echo "Whole run: $elapsed s."
    echo
    echo "### CPU per connection (median µs) and wall rate"
    echo
    echo "| case | tlsgate µs | sslsplit µs | mitmproxy µs | tlsgate/sslsplit | tlsgate/mitmproxy | conn/s tg / ss / mp |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for cs in $CASES; do
        tg=$(med tg "$cs" 4); ss=$(med ss "$cs" 4); mp=$(med mp "$cs" 4)
        echo "$cs $tg $ss $mp" >>"$work/medians"
        echo "| $cs | $tg | $ss | $mp | $(ratio "$tg" "$ss") | $(ratio "$tg" "$mp") | $(med tg "$cs" 7) / $(med ss "$cs" 7) / $(med mp "$cs" 7) |"
    done
    echo
    echo "### Bulk: $BIG_MB MB over one connection (curl --http1.1, median of $BULK_ROUNDS)"
    echo
    d=$(bmed direct 3)
    echo "| path | MB/s | % of direct | proxy CPU ms per 100 MB |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| direct | $d | 100% | – |"
    for p in $PEERS; do
        b=$(bmed "$p" 3)
        echo "| $(name_of "$p") | $b | $(awk -v a="$b" -v d="$d" 'BEGIN { if (a == "nan" || !d) print "–"; else printf "%.0f%%", a * 100 / d }') | $(bmed "$p" 4) |"
    done
    echo
    echo "Memory (VmRSS, process and descendants) after start / at the end:"
    for p in $PEERS; do echo "$(name_of "$p") $((RSS0[$p] / 1024)) / $((RSS1[$p] / 1024)) MiB;"; done | tr '\n' ' ' | sed 's/; $/./'
    echo
    echo
    echo "Every run (µs per connection; connections; failed; conn/s):"
    echo
    echo '```'
    awk '{ printf "%-9s %-7s %-4s %7s us  %6d conns  %4d failed  %5s/s\n", $1 == "tg" ? "tlsgate" : $1 == "ss" ? "sslsplit" : "mitmproxy", $2, $3, $4, $5, $6, $7 }' "$work/runs"
    awk '{ printf "bulk %-9s round %s  %5s MB/s  proxy CPU %s ms/100 MB  HTTP %s  %s bytes\n", $1 == "tg" ? "tlsgate" : $1 == "ss" ? "sslsplit" : $1 == "mp" ? "mitmproxy" : "direct", $2, $3, $4, $5, $6 }' "$work/bulk"
    echo '```'
    echo
    echo "What each proxy showed (\`openssl s_client\`, h1.bench.test; W: the wildcard origin, N: the minting one):"
    echo
    echo '```'
    cat "$work/checks"
    echo '```'
    if [ -s "$work/anomalies" ]; then
        echo
        echo "Anomalies:"
        echo
        sed 's/^/- /' "$work/anomalies"
    fi
    if has tg && has ss && has mp; then
        echo
        echo "### The bar (issue: CPU per connection at most 1/2.5 of sslsplit's and 1/10 of mitmproxy's, cached and mint; bulk at least 90% of direct)"
        echo
        verdict=()
        while read -r cs tg ss mp; do
            [ "$cs" = newname ] && continue
            a=$(awk -v t="$tg" -v s="$ss" 'BEGIN { print (t != "nan" && s != "nan" && t <= s / 2.5) ? "met" : "missed" }')
            b=$(awk -v t="$tg" -v m="$mp" 'BEGIN { print (t != "nan" && m != "nan" && t <= m / 10) ? "met" : "missed" }')
            verdict+=("$cs: vs sslsplit $(ratio "$tg" "$ss")× (bar 0.40) $a, vs mitmproxy $(ratio "$tg" "$mp")× (bar 0.10) $b")
        done <"$work/medians"
        b=$(bmed tg 3)
        pc=$(awk -v a="$b" -v d="$d" 'BEGIN { if (a == "nan" || !d) print 0; else printf "%.0f", a * 100 / d }')
        verdict+=("bulk: ${pc}% of direct (bar 90%) $([ "$pc" -ge 90 ] && echo met || echo missed)")
        for v in "${verdict[@]}"; do echo "- $v"; done
        echo
        all=met
        for v in "${verdict[@]}"; do case $v in *missed*) all=missed ;; esac; done
        echo "**Verdict: the bar is $all.**"
    fi
    echo
} >"$report"

cat "$report"

if [ "$RESULTS" != - ]; then
    "$PY" "$here/results_section.py" "$RESULTS" "$report" "## Client inspection (bench/inspect.sh)" "<!-- inspect.sh: notes -->"
    log "section written to $RESULTS"
fi
