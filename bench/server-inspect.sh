#!/bin/bash
# bench/server-inspect.sh [TLSGATE] — server inspection (issue 12) beside HAProxy.
#
#   bash bench/server-inspect.sh                      # build/tlsgate, 5 rounds of 10 s
#   ROUNDS=3 SECS=5 bash bench/server-inspect.sh build/tlsgate
#   PEERS=hp bash bench/server-inspect.sh             # HAProxy only (no tlsgate needed)
#
# Two TLS-terminating, re-encrypting reverse proxies on loopback in front of one protected
# server, each on CPU 0 (taskset, one thread), loaded from CPU 1. Both are given the SAME
# certificate and key files: the protected server's EC P-256 leaf for www.protected.test
# and shop.protected.test, issued by a bench root made for the run.
#   tg  `tlsgate serve --threads 1 --quiet --no-admin --no-tickets` in a fresh
#       TLSGATE_HOME: `init`, `cert import LEAF --key KEY --name www`, `proxy server
#       create bench --mode explicit --listen 127.0.0.1:TGP --upstream 127.0.0.1:W --cert
#       www` (no trust store: the server is not verified, as HAProxy's `verify none`).
#   hp  HAProxy (Debian's package, installed with apt-get if missing), `nbthread 1`,
#       `mode tcp`: a byte relay between the two TLS sessions, like for like with
#       tlsgate's pipe (mode http would parse and rewrite every request and response).
#       Frontend `bind … ssl crt COMBINED.pem` (the same leaf and key in one file), TLS
#       1.2 and 1.3, no tickets, no session cache, tlsgate's TLS 1.3 suite order and
#       groups; backend `server s 127.0.0.1:W ssl verify none sni ssl_fc_sni`. HAProxy
#       keeps its upstream session for reuse (its default); the origin never resumes.
# The protected server is bench/origin.c on CPU 1 (one thread per connection, no session
# cache, no stateless tickets: every upstream handshake is a full one; ORIGIN_TICKETS (1)
# stateful tickets that never resume are sent after a TLS 1.3 handshake) serving the same
# leaf and key on port W; GET /big answers BIG_MB MB (10^6 bytes), any other path "ok\n".
#
# Cases:
#   conn  ../shared/tools/tlsload.c -P PROCS -3 straight at the proxy's listen address
#         (SNI and Host www.protected.test, no CONNECT): every request a new connection,
#         a full TLS 1.3 handshake on both sides and one GET of a 3-byte body. The figure
#         is the proxy's CPU time per completed connection (utime+stime of the process
#         and its descendants from /proc, before and after the round) and connections/s.
#   bulk  BULK_CONNS curl --http1.1 (on CPU 1) in parallel, each fetching BIG_MB MB through
#         the proxy: MB/s (all bytes over the wall time of the slowest) and the proxy's CPU
#         ms per MB; also straight from the origin ("direct", for reference). The origin
#         and curl share CPU 1.
# Interleaved rounds (tg, hp, tg, hp, …) after a 2 s warm-up per proxy; medians, the
# ratios tlsgate/HAProxy and every run are reported, with the verdict against the bar of
# the issue (CPU per connection at most HAProxy's; bulk at least 90% of HAProxy's).
#
# The report goes to the section "Server inspection (bench/server-inspect.sh)" of
# bench/RESULTS.md (RESULTS=- to skip); the section is replaced, whatever follows
# "<!-- server-inspect.sh: notes -->" in it is kept.
#
# Environment: ROUNDS (5), SECS (10), PROCS (8), BIG_MB (256), BULK_ROUNDS (ROUNDS),
# BULK_CONNS (1), CASES ("conn bulk"), PEERS ("tg hp"), ORIGIN_TICKETS (1), PORT (19500:
# the origin's W; its second port, tlsgate's serve, tlsgate's server proxy and HAProxy
# follow it), RESULTS. Raw output of the last run: bench/out/server-inspect-last/ (keys
# and the store live in a temporary directory removed on exit). Every process started is
# stopped by its PID on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$here/../build/tlsgate}
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-10}
PROCS=${PROCS:-8}
BIG_MB=${BIG_MB:-256}
BULK_ROUNDS=${BULK_ROUNDS:-$ROUNDS}
BULK_CONNS=${BULK_CONNS:-1}
CASES=${CASES:-conn bulk}
PEERS=${PEERS:-tg hp}
PORT=${PORT:-19500}
ORIGIN_TICKETS=${ORIGIN_TICKETS:-1}
RESULTS=${RESULTS:-$here/RESULTS.md}
PY=/usr/bin/python3
TLSLOAD_SRC=${TLSLOAD_SRC:-$here/../../shared/tools/tlsload.c}
WWW=www.protected.test
SHOP=shop.protected.test

log() { echo "server-inspect.sh: $*" >&2; }
for v in ROUNDS SECS PROCS BIG_MB BULK_ROUNDS BULK_CONNS PORT ORIGIN_TICKETS; do
    case ${!v} in '' | *[!0-9]*) log "$v must be a number"; exit 2 ;; esac
done
[ "$ROUNDS" -ge 1 ] && [ "$SECS" -ge 1 ] && [ "$BULK_CONNS" -ge 1 ] && [ "$BIG_MB" -ge 1 ] ||
    { log "ROUNDS, SECS, BULK_CONNS and BIG_MB must be at least 1"; exit 2; }
for p in $PEERS; do case $p in tg | hp) ;; *) log "PEERS: tg and/or hp, not '$p'"; exit 2 ;; esac; done
for c in $CASES; do case $c in conn | bulk) ;; *) log "CASES: conn and/or bulk, not '$c'"; exit 2 ;; esac; done
case " $PEERS " in *" tg "*)
    case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
    [ -x "$BIN" ] || { log "$BIN is not an executable (build first, or PEERS=hp)"; exit 2; } ;;
esac

# --- what it needs (apt, non-interactive, only what is missing) ----------------------
need_pkgs=()
case " $PEERS " in *" hp "*) command -v haproxy >/dev/null || need_pkgs+=(haproxy) ;; esac
command -v curl >/dev/null || need_pkgs+=(curl)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
command -v cc >/dev/null || need_pkgs+=(gcc)
command -v openssl >/dev/null || need_pkgs+=(openssl)
[ -f /usr/include/openssl/ssl.h ] || need_pkgs+=(libssl-dev)
. "$here/lib.sh"
install_missing "${need_pkgs[@]+"${need_pkgs[@]}"}"

W=$PORT N=$((PORT + 1)) TGS=$((PORT + 2)) TGP=$((PORT + 3)) HPP=$((PORT + 4))
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $W $N $TGS $TGP $HPP; do
    port_free "$p" || { log "127.0.0.1:$p is in use; set PORT"; exit 1; }
done

out=$here/out
work=$out/server-inspect-last
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
tmp=$(mktemp -d /tmp/server-inspect.XXXXXX)

# --- processes we started (stopped by PID on every exit): bench/lib.sh's cleanup -------
trap cleanup EXIT
trap 'exit 130' INT TERM
name_of() { case $1 in tg) echo tlsgate ;; hp) echo HAProxy ;; direct) echo direct ;; esac; }
port_of() { case $1 in tg) echo "$TGP" ;; hp) echo "$HPP" ;; direct) echo "$W" ;; esac; }
wait_port() { # PORT PID WHAT LOG [SECONDS]
    local t0 lim=${5:-60}; t0=$(now)
    until ! port_free "$1"; do
        kill -0 "$2" 2>/dev/null || { log "$3 did not start:"; cat "$4" >&2; exit 1; }
        [ $(($(now) - t0)) -lt $((lim * 1000000000)) ] || return 1
        sleep 0.1
    done
}

# --- tools and key material ------------------------------------------------------------------
cc -O2 -Wall -o "$tmp/tlsload" "$TLSLOAD_SRC" -lssl -lcrypto
cc -O2 -Wall -pthread -o "$tmp/origin" "$here/origin.c" -lssl -lcrypto
LOAD=$tmp/tlsload
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/root.key" \
    -out "$tmp/root.pem" -days 365 -subj "/CN=Bench Protected Root" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/www.key" \
    -out "$tmp/www.csr" -subj "/CN=$WWW" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:$WWW,DNS:$SHOP" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "authorityKeyIdentifier=keyid" "subjectKeyIdentifier=hash" >"$tmp/www.ext"
openssl x509 -req -in "$tmp/www.csr" -CA "$tmp/root.pem" -CAkey "$tmp/root.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 365 -sha256 -extfile "$tmp/www.ext" -out "$tmp/www.pem" 2>/dev/null
cat "$tmp/www.pem" "$tmp/www.key" >"$tmp/www-combined.pem" # HAProxy's crt: the same two files in one
LEAF_FP=$(openssl x509 -in "$tmp/www.pem" -noout -fingerprint -sha256 | sed 's/.*=//')

# --- start --------------------------------------------------------------------------------
declare -A PID
taskset -c 1 "$tmp/origin" "$tmp/root.pem" "$tmp/root.key" "$W" "$N" "$BIG_MB" "$ORIGIN_TICKETS" 0 \
    "$tmp/www.pem" "$tmp/www.key" >"$work/origin.log" 2>&1 &
OPID=$!
PIDS+=("$OPID")
wait_port "$N" "$OPID" origin "$work/origin.log" || { log "origin not listening after 60 s"; exit 1; }

tgver=""
case " $PEERS " in *" tg "*)
    export TLSGATE_HOME=$tmp/tghome
    mkdir -p "$TLSGATE_HOME"
    TG=$tmp/tlsgate
    cp "$BIN" "$TG" # a rebuild during the run does not disturb it
    {
        "$TG" init # only init (and serve) make a store
        "$TG" cert import "$tmp/www.pem" --key "$tmp/www.key" --name www
        "$TG" proxy server create bench --mode explicit --listen "127.0.0.1:$TGP" \
            --upstream "127.0.0.1:$W" --cert www
        "$TG" proxy server show bench
    } </dev/null >"$work/tg-setup.log" 2>&1 || { log "tlsgate setup failed:"; cat "$work/tg-setup.log" >&2; exit 1; }
    tgver=$("$TG" --version 2>/dev/null | sed -n 1p || true)
    taskset -c 0 "$TG" serve --threads 1 --quiet --no-admin --no-tickets \
        --listen "127.0.0.1:$TGS" >"$work/tg.log" 2>&1 &
    PID[tg]=$!
    PIDS+=("${PID[tg]}")
    wait_port "$TGS" "${PID[tg]}" tlsgate "$work/tg.log" || { log "tlsgate serve not listening after 60 s"; exit 1; }
    # serve opens its listeners together: once its own is up the server proxy's follows at once
    wait_port "$TGP" "${PID[tg]}" tlsgate "$work/tg.log" 10 || {
        log "tlsgate serve runs (127.0.0.1:$TGS) but nothing listens on its server proxy's address"
        log "127.0.0.1:$TGP: this build does not run server proxies (PEERS=hp measures HAProxy alone)"
        exit 1
    }
    ;;
esac

hpver=""
case " $PEERS " in *" hp "*)
    cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
    tune.ssl.cachesize 0
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    ssl-default-bind-curves X25519:P-256:P-384
    ssl-server-verify none
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend protected
    bind 127.0.0.1:$HPP ssl crt $tmp/www-combined.pem
    default_backend origin
backend origin
    server s 127.0.0.1:$W ssl verify none sni ssl_fc_sni
EOF
    haproxy -c -f "$work/haproxy.cfg" >"$work/hp.log" 2>&1 || { log "haproxy refuses its configuration:"; cat "$work/hp.log" >&2; exit 1; }
    hpver=$(haproxy -v 2>/dev/null | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p')
    taskset -c 0 haproxy -f "$work/haproxy.cfg" -db >>"$work/hp.log" 2>&1 &
    PID[hp]=$!
    PIDS+=("${PID[hp]}")
    wait_port "$HPP" "${PID[hp]}" haproxy "$work/hp.log" || { log "haproxy not listening after 60 s"; exit 1; }
    ;;
esac

# --- checks: each shows the protected server's own leaf for both names and relays a GET ---
: >"$work/checks"
for p in $PEERS; do
    for nm in $WWW $SHOP; do
        for v in -tls1_3 -tls1_2; do
            fp=$(openssl s_client -connect "127.0.0.1:$(port_of "$p")" -servername "$nm" "$v" \
                -CAfile "$tmp/root.pem" -verify_hostname "$nm" -verify_return_error </dev/null 2>/dev/null |
                openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//') || true
            ok=no
            [ "$fp" = "$LEAF_FP" ] && ok=yes
            echo "$p $nm $v: the protected server's leaf, verified: $ok" >>"$work/checks"
            [ $ok = yes ] || { log "$(name_of "$p") does not show the protected leaf for $nm ($v): '$fp'"; cat "$work/$p.log" >&2; exit 1; }
        done
        body=$(curl -s --http1.1 --max-time 10 --cacert "$tmp/root.pem" --resolve "$nm:$(port_of "$p"):127.0.0.1" \
            "https://$nm:$(port_of "$p")/" 2>&1) || true
        echo "$p $nm curl: '$body'" >>"$work/checks"
        [ "$body" = ok ] || { log "$(name_of "$p"): GET through it gave '$body'"; cat "$work/$p.log" >&2; exit 1; }
    done
done
cat "$work/checks" >&2

# --- one measured conn round: appends "peer round us conns fails rate" to $work/runs ------
declare -A DEAD
check_alive() { # PEER WHAT
    if ! kill -0 "${PID[$1]}" 2>/dev/null; then
        DEAD[$1]=1
        echo "$(name_of "$1") exited during $2; its log: $(tail -5 "$work/$1.log" | tr '\n' ' ')" >>"$work/anomalies"
        log "$(name_of "$1") died"
    fi
}
conn() { # PEER ROUND
    local p=$1 round=$2 secs=$SECS c0 c1 r conns fails rate us
    [ "$round" = warm ] && secs=2
    [ -z "${DEAD[$p]:-}" ] || return 0
    c0=$(cpu_ticks "${PID[$p]}")
    r=$(taskset -c 1 "$LOAD" -a "127.0.0.1:$(port_of "$p")" -n "$WWW" -t "$secs" -P "$PROCS" -3)
    c1=$(cpu_ticks "${PID[$p]}")
    conns=$(field conns "$r"); fails=$(field fails "$r"); rate=$(field conn_per_s "$r")
    us=$(awk -v t=$((c1 - c0)) -v k="$TCK" -v c="$conns" 'BEGIN { printf "%.0f", c ? t * 1e6 / k / c : 0 }')
    echo "$p $round $us $conns $fails $rate" >>"$work/runs"
    log "  $(name_of "$p") conn round $round: $us us/conn ($conns conns, $fails failed, $rate/s, $(field proto "$r"))"
    [ "$fails" -le $((conns / 100)) ] ||
        echo "$(name_of "$p") conn round $round: $fails failed of $((conns + fails)) ($r)" >>"$work/anomalies"
    check_alive "$p" "conn round $round"
}

# --- one bulk round: appends "peer round MB/s cpu_ms_per_MB bytes_ok" to $work/bulk -------
bulk() { # PEER ROUND
    local p=$1 round=$2 c0=0 c1=0 t0 t1 i pids=() code size bytes=0 bad=0 mbs cpu
    [ "$p" = direct ] || [ -z "${DEAD[$p]:-}" ] || return 0
    [ "$p" = direct ] || c0=$(cpu_ticks "${PID[$p]}")
    t0=$(now)
    for i in $(seq "$BULK_CONNS"); do
        taskset -c 1 curl -sS --http1.1 --max-time 120 --cacert "$tmp/root.pem" -o /dev/null \
            -w '%{http_code} %{size_download}\n' --resolve "$WWW:$(port_of "$p"):127.0.0.1" \
            "https://$WWW:$(port_of "$p")/big" >"$tmp/curl.$i" 2>"$tmp/curl.$i.err" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    t1=$(now)
    [ "$p" = direct ] || c1=$(cpu_ticks "${PID[$p]}")
    for i in $(seq "$BULK_CONNS"); do
        read -r code size <"$tmp/curl.$i" || true
        if [ "${code:-}" = 200 ] && [ "${size:-0}" = $((BIG_MB * 1000000)) ]; then
            bytes=$((bytes + size))
        else
            bad=$((bad + 1))
            echo "bulk $(name_of "$p") round $round, curl $i: HTTP ${code:-none}, ${size:-0} bytes of $((BIG_MB * 1000000)) $(head -c 300 "$tmp/curl.$i.err")" >>"$work/anomalies"
        fi
    done
    mbs=$(awk -v b="$bytes" -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", t ? b * 1000 / t : 0 }')
    cpu=$(awk -v t=$((c1 - c0)) -v k="$TCK" -v b="$bytes" 'BEGIN { printf "%.2f", b ? t * 1000 / k / (b / 1e6) : 0 }')
    [ "$p" != direct ] || cpu=-
    echo "$p $round $mbs $cpu $bytes $bad" >>"$work/bulk"
    log "  bulk $(name_of "$p") round $round: $mbs MB/s, proxy CPU $cpu ms per MB ($bytes bytes, $bad failed)"
    [ "$p" = direct ] || check_alive "$p" "bulk round $round"
}

# --- the run ---------------------------------------------------------------------------
machine="$(uname -r), $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), nproc $(nproc), $(openssl version | sed 's/ (Library.*//')"
rev=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%FT%TZ)
T0=$(now)
: >"$work/runs"; : >"$work/bulk"; : >"$work/anomalies"
declare -A RSS0 RSS1
for p in $PEERS; do RSS0[$p]=$(rss_kb "${PID[$p]}"); done

for cs in $CASES; do
    case $cs in
        conn)
            log "== conn: a new connection and a full TLS 1.3 handshake per GET =="
            for p in $PEERS; do conn "$p" warm; done
            for r in $(seq "$ROUNDS"); do for p in $PEERS; do conn "$p" "$r"; done; done
            ;;
        bulk)
            log "== bulk: $BULK_CONNS x $BIG_MB MB =="
            for r in $(seq "$BULK_ROUNDS"); do for p in direct $PEERS; do bulk "$p" "$r"; done; done
            ;;
    esac
done
for p in $PEERS; do RSS1[$p]=$(rss_kb "${PID[$p]}" 2>/dev/null || echo 0); done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( ($(now) - T0) / 1000000000 ))
# each proxy is stopped now, tlsgate with SIGTERM, HAProxy with SIGUSR1 (its graceful
# stop; SIGTERM is its hard stop, status 143): one that does not exit within 10 s, or not
# with status 0, is an anomaly (cleanup still stops everything by PID on any exit)
for p in $PEERS; do
    if [ -z "${DEAD[$p]:-}" ] && ! kill -0 "${PID[$p]}" 2>/dev/null; then
        echo "$(name_of "$p") was not running at the end; its log: $(tail -5 "$work/$p.log" | tr '\n' ' ')" >>"$work/anomalies"
        continue
    fi
    [ -z "${DEAD[$p]:-}" ] || continue
    sig=TERM
    [ "$p" != hp ] || sig=USR1
    kill -"$sig" "${PID[$p]}" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "${PID[$p]}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${PID[$p]}" 2>/dev/null; then
        echo "$(name_of "$p") still running 10 s after SIG$sig" >>"$work/anomalies"
    else
        st=0
        wait "${PID[$p]}" 2>/dev/null || st=$?
        log "$(name_of "$p") exited with status $st on SIG$sig"
        [ "$st" = 0 ] || echo "$(name_of "$p") exited with status $st on SIG$sig; its log: $(tail -5 "$work/$p.log" | tr '\n' ' ')" >>"$work/anomalies"
    fi
done
log "measured in $elapsed s"

# --- the report ------------------------------------------------------------------------------
med() { awk -v p="$1" '$1 == p && $2 != "warm" { print $'"$2"' }' "$work/runs" | median; }
bmed() { awk -v p="$1" '$1 == p { print $'"$2"' }' "$work/bulk" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "–"; else printf "%.2f", a / b }'; }
has() { case " $PEERS " in *" $1 "*) return 0 ;; esac; return 1; }
hascase() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }
cell() { if has "$1"; then echo "$2"; else echo "–"; fi; }
report=$work/report.md
{
    echo "## Server inspection (bench/server-inspect.sh)"
    echo
    if has tg; then who="tlsgate $rev${tgver:+ ($tgver)}"; else who="tree $rev, HAProxy alone"; fi
    echo "Run $started, $who; machine: $machine."
    echo "Peers: $(has tg && echo "tlsgate serve (one thread, --no-tickets, server proxy in explicit mode)")$(has tg && has hp && echo "; ")$(has hp && echo "HAProxy $hpver (nbthread 1, mode tcp, no tickets, no session cache)"); origin bench/origin.c (full handshakes only, $ORIGIN_TICKETS non-resuming TLS 1.3 ticket(s))."
    echo "Load average before/after: $load0 / $load1. Whole run: $elapsed s."
    echo "Each proxy on CPU 0 terminates TLS with the protected server's own EC P-256 leaf (the same"
    echo "files for both) and re-encrypts to the origin (no upstream verification); the load and"
    echo "the origin on CPU 1. conn: tlsload -P $PROCS -3 straight at the proxy (SNI $WWW), a new"
    echo "connection, full TLS 1.3 handshakes on both sides and one GET of 3 bytes per request,"
    echo "$ROUNDS interleaved rounds of $SECS s after a 2 s warm-up; CPU = utime+stime of the proxy"
    echo "per completed connection. bulk: $BULK_CONNS curl --http1.1 of $BIG_MB MB (10^6 bytes) each, $BULK_ROUNDS"
    echo "interleaved rounds; MB/s over the wall time, proxy CPU per MB."
    echo
    echo "| figure (median) | tlsgate | HAProxy | tlsgate/HAProxy |"
    echo "| --- | ---: | ---: | ---: |"
    if hascase conn; then
        tgc=$(cell tg "$(med tg 3)"); hpc=$(cell hp "$(med hp 3)")
        echo "| conn: CPU µs per connection (bar: ratio ≤ 1.00) | $tgc | $hpc | $(ratio "$tgc" "$hpc") |"
        tgr=$(cell tg "$(med tg 6)"); hpr=$(cell hp "$(med hp 6)")
        echo "| conn: connections/s | $tgr | $hpr | $(ratio "$tgr" "$hpr") |"
    fi
    if hascase bulk; then
        tgb=$(cell tg "$(bmed tg 3)"); hpb=$(cell hp "$(bmed hp 3)")
        echo "| bulk: MB/s (bar: ratio ≥ 0.90; direct $(bmed direct 3)) | $tgb | $hpb | $(ratio "$tgb" "$hpb") |"
        tgm=$(cell tg "$(bmed tg 4)"); hpm=$(cell hp "$(bmed hp 4)")
        echo "| bulk: proxy CPU ms per MB | $tgm | $hpm | $(ratio "$tgm" "$hpm") |"
    fi
    echo
    echo "Memory (VmRSS) after start / at the end:"
    for p in $PEERS; do echo "$(name_of "$p") $((RSS0[$p] / 1024)) / $((RSS1[$p] / 1024)) MiB;"; done | tr '\n' ' ' | sed 's/; $/./'
    echo
    echo
    echo "Every run (conn: µs per connection, connections, failed, conn/s; bulk: MB/s, CPU ms per MB, bytes, failed transfers):"
    echo
    echo '```'
    awk '{ printf "conn %-8s %-4s %7s us  %6d conns  %4d failed  %5s/s\n", $1 == "tg" ? "tlsgate" : "HAProxy", $2, $3, $4, $5, $6 }' "$work/runs"
    awk '{ printf "bulk %-8s %-4s %5s MB/s  %6s ms/MB  %s bytes  %s failed\n", $1 == "tg" ? "tlsgate" : $1 == "hp" ? "HAProxy" : "direct", $2, $3, $4, $5, $6 }' "$work/bulk"
    echo '```'
    if [ -s "$work/anomalies" ]; then
        echo
        echo "Anomalies:"
        echo
        sed 's/^/- /' "$work/anomalies"
    fi
    if has tg && has hp; then
        echo
        echo "### The bar (issue 12: CPU per connection at most HAProxy's; bulk at least 90% of HAProxy's)"
        echo
        verdict=met
        if hascase conn; then
            v=$(awk -v t="$tgc" -v h="$hpc" 'BEGIN { print (t != "nan" && h != "nan" && t <= h) ? "met" : "missed" }')
            [ "$v" = met ] || verdict=missed
            echo "- conn: $(ratio "$tgc" "$hpc")× HAProxy's CPU per connection (bar 1.00) $v"
        fi
        if hascase bulk; then
            v=$(awk -v t="$tgb" -v h="$hpb" 'BEGIN { print (t != "nan" && h != "nan" && h > 0 && t >= 0.9 * h) ? "met" : "missed" }')
            [ "$v" = met ] || verdict=missed
            echo "- bulk: $(ratio "$tgb" "$hpb")× HAProxy's MB/s (bar 0.90) $v"
        fi
        echo
        echo "**Verdict: the bar is $verdict.**"
    fi
    echo
} >"$report"

cat "$report"

if [ "$RESULTS" != - ]; then
    "$PY" "$here/results_section.py" "$RESULTS" "$report" "## Server inspection (bench/server-inspect.sh)" "<!-- server-inspect.sh: notes -->"
    log "section written to $RESULTS"
fi
