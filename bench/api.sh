#!/bin/bash
# bench/api.sh [TLSGATE] — the management API beside the CLI on a store of COUNT
# certificates (issue 10, "How we will know": bench/api.sh).
#
#   bash bench/api.sh                      # build/tlsgate, COUNT=100000
#   COUNT=10000 ROUNDS=3 bash bench/api.sh build/tlsgate
#
# The store is bench/sni.sh's cached ECDSA store of COUNT certificates (bench/stores.sh;
# made once, gitignored). `tlsgate serve --threads 1 --quiet --admin 127.0.0.1:PORT` runs
# on CPU 0; bench/api_load.py (one keep-alive HTTPS connection, requests one after
# another, TLS checked against the exported default certificate) on CPU 1.
#   page:   GET /api/v1/certificates?limit=100&after=NAME, NAME at random over the table,
#           beside the CLI listing the same store (`tlsgate --json cert list`: the CLI has
#           no pages, so its figure is per row, as is the API's);
#   create: POST /api/v1/certificates (EC P-256, 30 days), beside `tlsgate cert create` run
#           as one process per certificate, as a script would.
# Figures: requests per second (wall) and the server's CPU per request (utime+stime from
# /proc/PID/stat), medians of ROUNDS interleaved rounds of SECS seconds (API, CLI, API, …)
# after a warm-up; the method of ../shared/tools/README.md for these noisy machines.
# The results replace the section "Management API (bench/api.sh)" of bench/RESULTS.md
# (RESULTS=- to skip).
#
# Environment: COUNT (100000), ROUNDS (3), SECS (10), PORT (19443), KEYS (1000), BATCH
# (500), REIMPORT, RESULTS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$here/../build/tlsgate}
COUNT=${COUNT:-100000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
PORT=${PORT:-19443}
KEYS=${KEYS:-1000}
BATCH=${BATCH:-500}
REIMPORT=${REIMPORT:-0}
RESULTS=${RESULTS:-$here/RESULTS.md}
CHAINSFX=
PY=/usr/bin/python3

case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
[ -x "$BIN" ] || { echo "api.sh: $BIN is not an executable (build first)" >&2; exit 2; }
for v in COUNT ROUNDS SECS PORT KEYS BATCH; do
    case ${!v} in '' | *[!0-9]*) echo "api.sh: $v must be a number" >&2; exit 2 ;; esac
done
log() { echo "api.sh: $*" >&2; }
now() { date +%s%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

command -v taskset >/dev/null || { log "taskset (util-linux) is needed"; exit 2; }
"$PY" -c 'import cryptography' 2>/dev/null || { log "python3-cryptography is needed"; exit 2; }

out=$here/out
work=$out/api-last
rm -rf "$work"
mkdir -p "$work"
cp "$BIN" "$work/tlsgate" # a rebuild during the run does not disturb it
TG=$work/tlsgate
. "$here/stores.sh"

SPID=
cleanup() { [ -z "$SPID" ] || { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; }; }
trap cleanup EXIT
trap 'exit 130' INT TERM

certset ecdsa "$COUNT" >/dev/null
src=$(store ecdsa "$COUNT")
home=$work/home
cp -a "$src" "$home"
"$TG" --home "$home" init >/dev/null # a store made before users existed gets its first admin
printf 'bench password 123\n' >"$work/pw"
"$TG" --home "$home" user add bench --role administrator --password-file "$work/pw" >/dev/null
TOKEN=$("$TG" --home "$home" --json user token bench | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$TG" --home "$home" cert export "appliance default" --format pem --out "$work/ca.pem" >/dev/null
"$TG" --home "$home" --json cert list | "$PY" -c 'import json,sys
for r in json.load(sys.stdin): print(r["name"])' >"$work/names"
rows=$(wc -l <"$work/names")
log "store: $rows certificates"

taskset -c 0 "$TG" --home "$home" serve --listen "127.0.0.1:$((PORT + 1))" --threads 1 --quiet \
    --admin "127.0.0.1:$PORT" >"$work/serve.log" 2>&1 &
SPID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
# serve checks every certificate's chain once at start (then daily): on a large store that
# is seconds of CPU and a write transaction; the rounds start once serve is idle
t0=$(now)
prev=$(cpu_ticks "$SPID")
while :; do
    sleep 1
    cur=$(cpu_ticks "$SPID")
    [ $((cur - prev)) -le 2 ] && break
    prev=$cur
    [ $(( ($(now) - t0) / 1000000000 )) -lt 300 ] || { log "serve never went idle"; exit 1; }
done
log "serve idle after its start-up check: $(( ($(now) - t0) / 1000000 )) ms, $(( cur * 1000 / TCK )) ms CPU in all"

: >"$work/runs"
api_round() { # MODE ROUND
    local c0 c1 r
    c0=$(cpu_ticks "$SPID")
    r=$(taskset -c 1 "$PY" "$here/api_load.py" "$1" "$PORT" "$work/ca.pem" "$TOKEN" "$SECS" "$work/names")
    c1=$(cpu_ticks "$SPID")
    local n s
    n=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$r"); s=$(sed -n 's/.*secs=\([0-9.]*\).*/\1/p' <<<"$r")
    echo "api $1 $2 $n $s $(( (c1 - c0) * 1000 / TCK ))" >>"$work/runs"
}
cli_list_round() { # ROUND: the whole table once, per row
    local t0 t1 u
    t0=$(now)
    u=$( { time taskset -c 0 "$TG" --home "$home" --json cert list >/dev/null; } 2>&1 )
    t1=$(now)
    echo "cli page $1 $rows $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $(awk -v u="$u" 'BEGIN { split(u, x, " "); printf "%.0f", (x[1] + x[2]) * 1000 }')" >>"$work/runs"
}
cli_create_round() { # ROUND: one process per certificate for SECS seconds
    local t0 n=0 cpu=0 u
    t0=$(now)
    while [ $(( ($(now) - t0) / 1000000000 )) -lt "$SECS" ]; do
        u=$( { time taskset -c 0 "$TG" --home "$home" cert create "cli-$1-$n" --cn "c$n.bench.test" --key ec:p256 --days 30 >/dev/null; } 2>&1 )
        cpu=$(awk -v c="$cpu" -v u="$u" 'BEGIN { split(u, x, " "); printf "%.0f", c + (x[1] + x[2]) * 1000 }')
        n=$((n + 1))
    done
    echo "cli create $1 $n $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $cpu" >>"$work/runs"
}
TIMEFORMAT='%3U %3S' # bash's time: user and system seconds of the command, in ms steps

started=$(date -u +%FT%TZ)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
SECS_SAVE=$SECS; SECS=2
api_round page warm; api_round create warm
SECS=$SECS_SAVE
for r in $(seq "$ROUNDS"); do
    api_round page "$r"
    cli_list_round "$r"
    api_round create "$r"
    cli_create_round "$r"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# per round: requests (or rows), seconds, server CPU ms -> req/s and CPU µs per request or row
fig() { # WHO MODE -> "median_rate median_cpu_us_per_item"
    local rate cpu
    rate=$(awk -v w="$1" -v m="$2" '$1 == w && $2 == m && $3 != "warm" { printf "%.1f\n", $4 / $5 }' "$work/runs" | median)
    cpu=$(awk -v w="$1" -v m="$2" '$1 == w && $2 == m && $3 != "warm" && $4 > 0 { printf "%.1f\n", $6 * 1000 / $4 }' "$work/runs" | median)
    echo "$rate $cpu"
}
read -r ap_rate ap_cpu <<<"$(fig api page)"
read -r cl_rate cl_cpu <<<"$(fig cli page)"
read -r ac_rate ac_cpu <<<"$(fig api create)"
read -r cc_rate cc_cpu <<<"$(fig cli create)"
machine="$(uname -m), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
rev=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
report=$work/report.md
{
    echo "## Management API (bench/api.sh)"
    echo
    echo "Run $started (tlsgate $rev), $machine; $(openssl version | sed 's/ (Library.*//')."
    echo "Load average before/after: $load0 / $load1. Store: $rows certificates (ECDSA)."
    echo "serve on CPU 0 (one worker thread; the API has a thread of its own), the client on"
    echo "CPU 1: one keep-alive HTTPS connection, requests one after another. Medians of"
    echo "$ROUNDS interleaved rounds of $SECS s."
    echo
    echo "| operation | API | CLI |"
    echo "| --- | --- | --- |"
    echo "| a page of 100 rows (GET ?limit=100&after=random) | $ap_rate pages/s, $ap_cpu µs CPU per page | \`cert list --json\` of all $rows rows: $(awk -v r="$cl_rate" 'BEGIN { printf "%.0f", r }') rows/s, $cl_cpu µs CPU per row ($(awk -v c="$cl_cpu" 'BEGIN { printf "%.0f", c * 100 }') µs per 100 rows) |"
    echo "| create a certificate (EC P-256) | $ac_rate/s, $ac_cpu µs CPU each | \`cert create\`, a process each: $cc_rate/s, $cc_cpu µs CPU each |"
    echo
    echo "Every round (who, operation, round, requests or rows, seconds, server CPU ms):"
    echo
    echo '```'
    cat "$work/runs"
    echo '```'
} >"$report"
cat "$report"
if [ "$RESULTS" != - ]; then
    "$PY" - "$RESULTS" "$report" <<'EOF'
import re, sys
path, rep = sys.argv[1], open(sys.argv[2]).read().rstrip() + "\n"
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmark results\n"
head = "## Management API (bench/api.sh)"
m = re.search(r"^" + re.escape(head) + r"\n.*?(?=^## |\Z)", text, re.S | re.M)
text = (text[:m.start()] + rep + "\n" + text[m.end():]) if m else text.rstrip() + "\n\n" + rep
open(path, "w").write(text)
EOF
    log "results in $RESULTS"
fi
