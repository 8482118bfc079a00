#!/bin/bash
# bench/sni.sh [TLSGATE] — the SNI front end against HAProxy (SPEC P1; issue
# "tlsgate serve … 100,000+ certificates").
#
#   bash bench/sni.sh                      # build/tlsgate, COUNT=100000
#   COUNT=10000 ROUNDS=3 bash bench/sni.sh build/tlsgate
#
# For ALG in ecdsa (P-256) and rsa (2048) and for 1 and COUNT certificates, the same
# certificates are served by `tlsgate serve --threads 1 --no-tickets --quiet` and by
# HAProxy (Debian's package, installed with apt-get if missing; one thread, no tickets,
# no session cache, `mode http` answering every request with a small 200 — like
# tlsgate's built-in responder). The load is bench/out/tlsload (../shared/tools/tlsload.c):
# a new connection, full TLS 1.3 handshake and one GET per request, 8 processes; one
# fixed name with 1 certificate, a new name per connection (h%d.bench.test over all
# COUNT, continuing where the previous run of that server stopped) with COUNT.
#
# The method of ../shared/tools/README.md for these noisy 2-core machines: the servers on
# CPU 0, the load on CPU 1 (taskset); the figure is the server's CPU time per handshake
# (utime+stime from /proc/PID/stat before and after a run, over the connections done);
# both servers run side by side and are loaded in interleaved rounds (tlsgate, HAProxy,
# tlsgate, …), ROUNDS rounds of SECS seconds each after a short warm-up; medians and
# every run are reported. With COUNT certificates also: startup (from exec until the port
# completes a TLS handshake and a GET) and VmRSS after startup and after the load.
# With PROFILE (default: if `perf record -e cpu-clock` works) both servers are profiled
# under the same load after the rounds (perf, DWARF call graphs) and the summaries saved.
#
# The results go to the section "SNI front end (bench/sni.sh)" of bench/RESULTS.md
# (RESULTS=- to skip); the section is replaced, other sections are left alone, and
# whatever follows the line "<!-- sni.sh: notes -->" in the section is kept.
#
# Environment: COUNT (100000), ROUNDS (3), SECS (10), PROCS (8), ALGS ("ecdsa rsa"),
# BATCH (500 files per `tlsgate cert import`: an import command matches every certificate
# against every key it was given, so larger batches cost more per file), KEYS (1000 keys
# per certificate set: with one key for all, tlsgate's import is quadratic, see
# bench/sni_certs.py),
# CHAIN (1: certificates issued by one intermediate, sent with it; sets and stores
# cached with the suffix -chain), PROFILE (auto|0|1), PORT (18443: tlsgate; PORT+1: HAProxy), RESULTS, REIMPORT=1.
#
# Cached in bench/out/ (gitignored): the certificate sets sni-certs-ALG-N (made by
# bench/sni_certs.py) and the tlsgate stores imported from them, sni-store-ALG-N (with
# the import time in import.txt; REIMPORT=1 rebuilds them). Each run serves a fresh copy
# of the store. Raw output of the last run: bench/out/sni-last/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$here/../build/tlsgate}
COUNT=${COUNT:-100000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
PROCS=${PROCS:-8}
ALGS=${ALGS:-ecdsa rsa}
BATCH=${BATCH:-500}
KEYS=${KEYS:-1000}
PROFILE=${PROFILE:-auto}
PORT=${PORT:-18443}
RESULTS=${RESULTS:-$here/RESULTS.md}
REIMPORT=${REIMPORT:-0}
CHAIN=${CHAIN:-0}
export CHAIN
CHAINSFX=$([ "$CHAIN" = 1 ] && echo -chain || true)
PY=/usr/bin/python3
TLSLOAD_SRC=${TLSLOAD_SRC:-$here/../../shared/tools/tlsload.c}

case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
[ -x "$BIN" ] || { echo "sni.sh: $BIN is not an executable (build first)" >&2; exit 2; }
for v in COUNT ROUNDS SECS PROCS BATCH KEYS PORT; do
    case ${!v} in '' | *[!0-9]*) echo "sni.sh: $v must be a number" >&2; exit 2 ;; esac
done
[ "$ROUNDS" -ge 1 ] && [ "$COUNT" -ge 2 ] || { echo "sni.sh: ROUNDS >= 1, COUNT >= 2" >&2; exit 2; }

log() { echo "sni.sh: $*" >&2; }

# --- what it needs (apt, non-interactive, only what is missing) ----------------------
need_pkgs=()
command -v haproxy >/dev/null || need_pkgs+=(haproxy)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
command -v cc >/dev/null || need_pkgs+=(gcc)
[ -f /usr/include/openssl/ssl.h ] || need_pkgs+=(libssl-dev)
command -v openssl >/dev/null || need_pkgs+=(openssl)
"$PY" -c 'import cryptography' 2>/dev/null || need_pkgs+=(python3-cryptography)
. "$here/lib.sh"
install_missing "${need_pkgs[@]+"${need_pkgs[@]}"}"

out=$here/out
work=$out/sni-last
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
# a private copy: a rebuild of build/tlsgate during the run does not disturb it
cp "$BIN" "$work/tlsgate"
TG=$work/tlsgate
cc -O2 -Wall -o "$work/tlsload" "$TLSLOAD_SRC" -lssl -lcrypto
LOAD=$work/tlsload
TCK=$(getconf CLK_TCK)

# --- servers we started: killed on every exit ----------------------------------------
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stop() { # PID
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT" $((PORT + 1)); do
    port_free "$p" || { log "127.0.0.1:$p is in use; set PORT"; exit 1; }
done

# --- helpers ---------------------------------------------------------------------------
now() { date +%s%N; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# --- certificates and stores (cached): certset ALG N, store ALG N ----------------------------
. "$here/stores.sh"

# --- starting a server and waiting for its first handshake --------------------------------
# start KIND ALG N NAME -> sets SPID, STARTUP_MS (wall), STARTUP_CPU_MS (the server's
# utime+stime by then: what other jobs on the machine do not inflate), PROBE_MS
probe() { # PORT NAME -> 0 when a handshake and a GET completed
    local r
    r=$(taskset -c 1 "$LOAD" -a "127.0.0.1:$1" -t 2 -P 1 -m 1 -3 -n "$2" 2>/dev/null) || return 1
    [ "$(field conns "$r")" = 1 ]
}
start() {
    local kind=$1 alg=$2 n=$3 name=$4 t0 port log_
    if [ "$kind" = tg ]; then
        port=$PORT
        local home=$work/home-$alg-$n
        rm -rf "$home"
        cp -a "$(store "$alg" "$n")" "$home"
        log_=$work/tlsgate-$alg-$n.log
        t0=$(now)
        taskset -c 0 "$TG" --home "$home" serve --listen "127.0.0.1:$port" --threads 1 \
            --no-tickets --quiet --no-admin >"$log_" 2>&1 &
    else
        port=$((PORT + 1))
        local cfg=$work/haproxy-$alg-$n.cfg
        cat >"$cfg" <<EOF
global
    nbthread 1
    maxconn 4096
    tune.ssl.cachesize 0
    ssl-default-bind-options no-tls-tickets
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    ssl-default-bind-curves X25519:P-256:P-384
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend sni
    bind 127.0.0.1:$port ssl crt $(certset "$alg" "$n")/pem/ no-tls-tickets
    http-request return status 200 content-type text/plain string ok
EOF
        log_=$work/haproxy-$alg-$n.log
        t0=$(now)
        taskset -c 0 haproxy -f "$cfg" -db >"$log_" 2>&1 &
    fi
    SPID=$!
    PIDS+=("$SPID")
    local limit=$((t0 + 1500 * 1000000000))
    until probe "$port" "$name"; do
        if ! kill -0 "$SPID" 2>/dev/null; then
            log "$kind did not start:"; cat "$log_" >&2; exit 1
        fi
        [ "$(now)" -lt "$limit" ] || { log "$kind not up after 1500 s"; exit 1; }
        if [ $(($(now) - t0)) -lt 2000000000 ]; then sleep 0.01; else sleep 0.1; fi
    done
    STARTUP_MS=$(( ($(now) - t0) / 1000000 ))
    STARTUP_CPU_MS=$(( $(cpu_ticks "$SPID") * 1000 / TCK ))
    # what one probe takes once the server is up: the resolution of STARTUP_MS
    local p0; p0=$(now)
    probe "$port" "$name" || true
    PROBE_MS=$(( ($(now) - p0) / 1000000 ))
    # the certificate served for a name in the middle is that name's
    local mid=$name subj
    subj=$(openssl s_client -connect "127.0.0.1:$port" -servername "$mid" -tls1_3 </dev/null 2>/dev/null |
        openssl x509 -noout -subject 2>/dev/null || true)
    case $subj in *"CN = $mid"* | *"CN=$mid"*) ;; *) log "$kind served '$subj' for $mid"; exit 1 ;; esac
}

# --- one measured run: appends "server alg n round us conns fails rate" to $work/runs ----
declare -A OFF
run() { # KIND PID PORT ALG N ROUND [warm]
    local kind=$1 pid=$2 port=$3 alg=$4 n=$5 round=$6 secs=$SECS args
    [ "$round" = warm ] && secs=2
    if [ "$n" -gt 1 ]; then
        args=(-u "h%d.bench.test" -M "$n" -O "${OFF[$kind]:-0}")
    else
        args=(-n h0.bench.test)
    fi
    local c0 c1 r
    c0=$(cpu_ticks "$pid")
    r=$(taskset -c 1 "$LOAD" -a "127.0.0.1:$port" -t "$secs" -P "$PROCS" -3 "${args[@]}")
    c1=$(cpu_ticks "$pid")
    local conns fails rate us
    conns=$(field conns "$r"); fails=$(field fails "$r"); rate=$(field conn_per_s "$r")
    OFF[$kind]=$(( (${OFF[$kind]:-0} + conns + fails) % n ))
    us=$(awk -v t=$((c1 - c0)) -v k="$TCK" -v c="$conns" 'BEGIN { printf "%.1f", c ? t * 1e6 / k / c : 0 }')
    echo "$kind $alg $n $round $us $conns $fails $rate" >>"$work/runs"
    log "  $kind $alg n=$n round $round: $us us/handshake ($conns conns, $fails fails, $rate/s, $(field proto "$r"))"
    [ "$fails" -le $((conns / 100)) ] || { log "too many failed connections: $r"; exit 1; }
}

# --- profiling --------------------------------------------------------------------------
perf_ok=0
if [ "$PROFILE" != 0 ] && command -v perf >/dev/null &&
    perf record -q -e cpu-clock -o "$work/perf-check.data" -- true >/dev/null 2>&1; then
    perf_ok=1
fi
[ "$PROFILE" = 1 ] && [ $perf_ok = 0 ] && { log "PROFILE=1 but perf record does not work here"; exit 1; }
PSECS=$((SECS < 8 ? SECS : 8))
profile() { # KIND PID PORT ALG N
    local kind=$1 pid=$2 port=$3 alg=$4 n=$5 args
    if [ "$n" -gt 1 ]; then args=(-u "h%d.bench.test" -M "$n" -O "${OFF[$kind]:-0}"); else args=(-n h0.bench.test); fi
    local data=$work/perf-$kind-$alg-$n.data
    taskset -c 1 perf record -q -e cpu-clock -F 500 --call-graph dwarf,16384 -p "$pid" -o "$data" \
        -- sleep "$PSECS" >/dev/null 2>&1 &
    local ppid=$!
    sleep 0.3
    taskset -c 1 "$LOAD" -a "127.0.0.1:$port" -t "$PSECS" -P "$PROCS" -3 "${args[@]}" >/dev/null
    wait "$ppid" || true
    # self time by library and by function; inclusive time by function (named ones only)
    perf report -i "$data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep . |
        head -12 >"$work/perf-$kind-$alg-$n.dso.txt" || true
    perf report -i "$data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null | grep -v '^#' |
        grep . | head -40 >"$work/perf-$kind-$alg-$n.self.txt" || true
    perf report -i "$data" --stdio --children --sort symbol -g none 2>/dev/null | grep -v '^#' |
        grep . | grep -v '\] 0x0000' | head -150 >"$work/perf-$kind-$alg-$n.children.txt" || true
    rm -f "$data"
}
# the share of a function (inclusive) in a profile, or nothing
pshare() { awk -v f="$2" '$4 == f { sub(/%$/, "", $1); print $1; exit }' "$1" 2>/dev/null; }
# tlsgate's steps worth naming in the report (inclusive time)
TG_STEPS="on_client_hello tg_certcache_get tg_keyring_serve_load tg_store_cert_get tg_cert_from_der kr_chain kr_key_load tg_store_key_unseal tg_key_from_der OSSL_DECODER_CTX_new_for_pkey tg_db_prep http_read"
HA_STEPS="ssl_sock_io_cb ssl_sock_switchctx_cbk"

# --- the run ---------------------------------------------------------------------------
machine="$(uname -m), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
ossl=$(openssl version | sed 's/ (Library.*//')
hav=$(haproxy -v 2>/dev/null | head -1 | awk '{ print $3 }')
rev=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%FT%TZ)
T0=$(now)
: >"$work/runs"
: >"$work/startup"
: >"$work/probes"

for alg in $ALGS; do
    for n in 1 "$COUNT"; do
        log "== $alg, $n certificate(s) =="
        certset "$alg" "$n" >/dev/null
        store "$alg" "$n" >/dev/null
        name=h0.bench.test
        [ "$n" -gt 1 ] && name=h$((n / 2)).bench.test
        start tg "$alg" "$n" "$name"; tgpid=$SPID; tgms=$STARTUP_MS; tgcpu=$STARTUP_CPU_MS; tgrss0=$(rss_kb "$tgpid")
        log "tlsgate up in $tgms ms ($tgcpu ms CPU; one probe: $PROBE_MS ms), VmRSS $(mib "$tgrss0") MiB"
        echo "tg $alg $n $PROBE_MS" >>"$work/probes"
        start ha "$alg" "$n" "$name"; hapid=$SPID; hams=$STARTUP_MS; hacpu=$STARTUP_CPU_MS; harss0=$(rss_kb "$hapid")
        log "haproxy up in $hams ms ($hacpu ms CPU; one probe: $PROBE_MS ms), VmRSS $(mib "$harss0") MiB"
        echo "ha $alg $n $PROBE_MS" >>"$work/probes"
        OFF=()
        run tg "$tgpid" "$PORT" "$alg" "$n" warm
        run ha "$hapid" $((PORT + 1)) "$alg" "$n" warm
        for r in $(seq "$ROUNDS"); do
            run tg "$tgpid" "$PORT" "$alg" "$n" "$r"
            run ha "$hapid" $((PORT + 1)) "$alg" "$n" "$r"
        done
        tgrss1=$(rss_kb "$tgpid"); harss1=$(rss_kb "$hapid")
        echo "$alg $n $tgms $tgrss0 $tgrss1 $hams $harss0 $harss1 $tgcpu $hacpu" >>"$work/startup"
        if [ $perf_ok = 1 ]; then
            log "profiling (perf, $SECS s each) ..."
            profile tg "$tgpid" "$PORT" "$alg" "$n"
            profile ha "$hapid" $((PORT + 1)) "$alg" "$n"
        fi
        stop "$tgpid"; stop "$hapid"
        rm -rf "$work/home-$alg-$n"
    done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( ($(now) - T0) / 1000000000 ))
log "measured in $elapsed s"

# --- the report ------------------------------------------------------------------------------
report=$work/report.md
{
    echo "## SNI front end (bench/sni.sh)"
    echo
    echo "Run $started (tlsgate $rev), $machine; $ossl, HAProxy $hav."
    echo "Load average before/after: $load0 / $load1 (other jobs shared this machine)."
    echo "$ROUNDS interleaved rounds of $SECS s per case, after a 2 s warm-up each; load:"
    echo "tlsload -P $PROCS -3 (new connection, full TLS 1.3 handshake, one GET), on CPU 1;"
    echo "servers on CPU 0, one thread, no tickets, no session cache. 1 certificate: one fixed"
    echo "SNI name; $COUNT: a new name per connection (h%d.bench.test, all $COUNT in turn)."
    echo "Certificates: self-signed, CN = the one DNS SAN, $KEYS keys per set at most."
    echo "HAProxy: \`mode http\`, \`http-request return status 200\`, \`crt DIR/\`,"
    echo "\`tune.ssl.cachesize 0\`, \`no-tls-tickets\`, the same TLS 1.3 suites and groups."
    echo "CPU = server utime+stime per completed handshake. Whole run: $elapsed s."
    echo
    echo "### CPU per handshake (median of $ROUNDS) and wall rate"
    echo
    echo "| case | tlsgate µs | HAProxy µs | tlsgate/HAProxy | tlsgate conn/s | HAProxy conn/s |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for alg in $ALGS; do
        for n in 1 "$COUNT"; do
            tgm=$(awk -v a="$alg" -v n="$n" '$1 == "tg" && $2 == a && $3 == n && $4 != "warm" { print $5 }' "$work/runs" | median)
            ham=$(awk -v a="$alg" -v n="$n" '$1 == "ha" && $2 == a && $3 == n && $4 != "warm" { print $5 }' "$work/runs" | median)
            tgr=$(awk -v a="$alg" -v n="$n" '$1 == "tg" && $2 == a && $3 == n && $4 != "warm" { print $8 }' "$work/runs" | median)
            har=$(awk -v a="$alg" -v n="$n" '$1 == "ha" && $2 == a && $3 == n && $4 != "warm" { print $8 }' "$work/runs" | median)
            ratio=$(awk -v a="$tgm" -v b="$ham" 'BEGIN { printf "%.2f", a / b }')
            echo "$alg $n $tgm $ham $ratio" >>"$work/medians"
            label=$([ "$alg" = ecdsa ] && echo "ECDSA P-256" || echo "RSA 2048")
            echo "| $label, $n cert$([ "$n" -gt 1 ] && echo s) | $tgm | $ham | $ratio | $tgr | $har |"
        done
    done
    echo
    echo "Every run (µs per handshake; conns; failed):"
    echo
    echo '```'
    awk '{ printf "%-3s %-5s %6s  %-5s %8s us  %6d conns  %d failed  %s/s\n", ($1 == "tg" ? "tg" : "ha"), $2, $3, $4, $5, $6, $7, $8 }' "$work/runs"
    echo '```'
    echo
    echo "### $COUNT certificates: startup and memory"
    echo
    echo "| alg | tlsgate startup (CPU) | HAProxy startup (CPU) | ratio wall (CPU) | tlsgate RSS start / after load | HAProxy RSS start / after load | ratio (after load) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    while read -r alg n tgms tgrss0 tgrss1 hams harss0 harss1 tgcpu hacpu; do
        [ "$n" = "$COUNT" ] || continue
        echo "| $alg | $(awk -v m="$tgms" -v c="$tgcpu" 'BEGIN { printf "%.2f s (%.2f s)", m / 1000, c / 1000 }') | $(awk -v m="$hams" -v c="$hacpu" 'BEGIN { printf "%.1f s (%.1f s)", m / 1000, c / 1000 }') | $(awk -v a="$tgms" -v b="$hams" -v c="$tgcpu" -v d="$hacpu" 'BEGIN { printf "%.3f (%.3f)", a / b, c / d }') | $(mib "$tgrss0") / $(mib "$tgrss1") MiB | $(mib "$harss0") / $(mib "$harss1") MiB | $(awk -v a="$tgrss1" -v b="$harss1" 'BEGIN { printf "%.3f", a / b }') |"
    done <"$work/startup"
    echo
    echo "Startup is from exec until a probe (tlsload, one connection: handshake and GET) succeeds;"
    echo "probes every 10 ms (100 ms after 2 s); one probe against a running server took"
    echo "$(awk '{ print $4 }' "$work/probes" | median) ms (median), so startup figures below a few hundred ms are mostly the probe."
    echo
    echo "1 certificate, for comparison (startup; RSS after load):"
    while read -r alg n tgms tgrss0 tgrss1 hams harss0 harss1 tgcpu hacpu; do
        [ "$n" = 1 ] || continue
        echo "$alg: tlsgate $tgms ms ($tgcpu ms CPU), $(mib "$tgrss1") MiB; HAProxy $hams ms ($hacpu ms CPU), $(mib "$harss1") MiB."
    done <"$work/startup"
    echo
    for alg in $ALGS; do
        [ -f "$out/sni-store-$alg-$COUNT$CHAINSFX/import.txt" ] &&
            echo "tlsgate store for $alg × $COUNT: $(cat "$out/sni-store-$alg-$COUNT$CHAINSFX/import.txt") (\`cert import\`, xargs)."
    done
    echo
    echo "### The bars (issue: CPU per handshake no more than HAProxy's; with $COUNT certificates startup at most a tenth of HAProxy's and memory at most a fifth)"
    echo
    while read -r alg n tgm ham ratio; do
        verdict=$(awk -v r="$ratio" 'BEGIN { if (r <= 1) print "**met**"; else printf "**missed** by %.0f%%", (r - 1) * 100 }')
        echo "- CPU, $alg, $n cert(s): $tgm vs $ham µs = ${ratio}× — $verdict"
    done <"$work/medians"
    while read -r alg n tgms tgrss0 tgrss1 hams harss0 harss1 tgcpu hacpu; do
        [ "$n" = "$COUNT" ] || continue
        r=$(awk -v a="$tgms" -v b="$hams" 'BEGIN { printf "%.3f", a / b }')
        rc=$(awk -v a="$tgcpu" -v b="$hacpu" 'BEGIN { printf "%.3f", a / b }')
        verdict=$(awk -v r="$r" 'BEGIN { if (r <= 0.1) print "**met**"; else printf "**missed** (%.1f× the allowance)", r / 0.1 }')
        echo "- startup, $alg: ${r}× HAProxy's wall time, ${rc}× its CPU time (bar 0.1) — $verdict"
        r=$(awk -v a="$tgrss1" -v b="$harss1" 'BEGIN { printf "%.3f", a / b }')
        r0=$(awk -v a="$tgrss0" -v b="$harss0" 'BEGIN { printf "%.3f", a / b }')
        verdict=$(awk -v r="$r" 'BEGIN { if (r <= 0.2) print "**met**"; else printf "**missed** (%.1f× the allowance)", r / 0.2 }')
        echo "- memory, $alg: ${r}× HAProxy's after the load, ${r0}× after startup (bar 0.2) — $verdict"
    done <"$work/startup"
    if [ $perf_ok = 1 ]; then
        echo
        echo "### Profiles (perf, cpu-clock, self time by library; full reports in bench/out/sni-last/)"
        echo
        for f in "$work"/perf-*-*.dso.txt; do
            b=$(basename "$f" .dso.txt)
            echo "- $b: $(awk '{ sub(/%$/, "", $1); if ($1 + 0 >= 1) printf "%s %s%%, ", $2, $1 }' "$f" | sed 's/, $//')"
        done
        echo
        echo "Inclusive share of the server's CPU (and µs per handshake at the median above):"
        echo
        while read -r alg n tgm ham ratio; do
            for kind in tg ha; do
                f=$work/perf-$kind-$alg-$n.children.txt
                [ -f "$f" ] || continue
                steps=$TG_STEPS; us=$tgm
                [ $kind = ha ] && steps=$HA_STEPS && us=$ham
                line=""
                for st in $steps; do
                    p=$(pshare "$f" "$st")
                    [ -n "$p" ] && line="$line$st $p% ($(awk -v p="$p" -v u="$us" 'BEGIN { printf "%.0f", p * u / 100 }') µs), "
                done
                [ -n "$line" ] && echo "- $kind $alg $n: ${line%, }"
            done
        done <"$work/medians"
        echo
        echo "Top functions by self time with $COUNT certificates:"
        echo
        for alg in $ALGS; do
            for kind in tg ha; do
                f=$work/perf-$kind-$alg-$COUNT.self.txt
                [ -f "$f" ] || continue
                echo "- $kind $alg: $(awk 'NR <= 10 { sub(/%$/, "", $1); s = $2; sub(/^\[/, "", s); sub(/\]$/, "", s); sub(/\.so.*/, "", s); printf "%s %s %s%%, ", s, $4, $1 }' "$f" | sed 's/, $//')"
            done
        done
    fi
    echo
} >"$report"

cat "$report"

if [ "$RESULTS" != - ]; then
    "$PY" "$here/results_section.py" "$RESULTS" "$report" "## SNI front end (bench/sni.sh)" "<!-- sni.sh: notes -->"
    log "section written to $RESULTS"
fi
