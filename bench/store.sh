#!/bin/sh
# bench/store.sh [TLSGATE] — the store under many certificates (SPEC P3).
#
#   sh bench/store.sh build/tlsgate            # 10,000 certificates
#   COUNT=100000 sh bench/store.sh build/tlsgate
#
# Environment: COUNT (default 10000) certificates, BATCH (default 1000) files per
# command in the batched import, RUNS (default 5) runs per read figure (median).
# The certificates (EC P-256, one shared key, signed by one bench CA, CN and DNS SAN
# hNNNNN.bench.test) are made by bench/gen_certs.py with /usr/bin/python3 and the
# cryptography module, and cached in bench/out/certs-COUNT; generation is not timed.
# Every measurement runs on a fresh TLSGATE_HOME in a temporary directory:
#   (a) import of all COUNT in batches of BATCH files per command (xargs -n BATCH)
#   (b) import of all COUNT as ONE command (as few as the argument limit allows)
#   (c) `tlsgate --json cert list` and `tlsgate cert list` on store (a), median of RUNS
#   (d) size of store.db + store.db-wal of (a) and (b), also after a TRUNCATE checkpoint
#   (e) `tlsgate cert show` of one certificate in the middle, median of RUNS
set -eu

BIN=${1:-build/tlsgate}
COUNT=${COUNT:-10000}
BATCH=${BATCH:-1000}
RUNS=${RUNS:-5}
PY=/usr/bin/python3

here=$(cd "$(dirname "$0")" && pwd)
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
[ -x "$BIN" ] || { echo "store.sh: $BIN is not an executable (build first)" >&2; exit 2; }
case $COUNT in '' | *[!0-9]*) echo "store.sh: COUNT must be a number" >&2; exit 2 ;; esac
case $BATCH in '' | *[!0-9]*) echo "store.sh: BATCH must be a number" >&2; exit 2 ;; esac

# --- the certificates (cached) ---------------------------------------------------------
certs=$here/out/certs-$COUNT
if [ ! -f "$certs/files.txt" ]; then
    mkdir -p "$here/out"
    echo "generating $COUNT certificates into $certs ..." >&2
    g0=$(date +%s%N)
    "$PY" "$here/gen_certs.py" "$COUNT" "$certs"
    g1=$(date +%s%N)
    echo "generated in $(awk -v a="$g0" -v b="$g1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s" >&2
fi
[ "$(wc -l <"$certs/files.txt")" -eq "$COUNT" ] || { echo "store.sh: $certs is incomplete; remove it" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tlsgate-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
# a private copy: a rebuild of build/tlsgate during the run does not disturb it
cp "$BIN" "$work/tlsgate"
load0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
rev=$(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown)
BIN=$work/tlsgate

# --- helpers -------------------------------------------------------------------------
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# the median wall time of RUNS runs of "$@" (output discarded)
time_median() {
    i=0
    : >"$work/times"
    while [ "$i" -lt "$RUNS" ]; do
        t0=$(now)
        "$@" >/dev/null
        t1=$(now)
        secs "$t0" "$t1" >>"$work/times"
        echo >>"$work/times"
        i=$((i + 1))
    done
    median <"$work/times"
}
# user+sys CPU seconds of the finished children in file $1 (written by `times`, which
# must run in the shell that waited for them, not in a $(...) subshell)
cpu_of() {
    awk 'NR == 2 { t = 0; for (i = 1; i <= NF; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] } printf "%.3f", t }' "$1"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
fsize() { if [ -f "$1" ]; then stat -c %s "$1"; else echo 0; fi; }
store_bytes() { echo $(($(fsize "$1/store.db") + $(fsize "$1/store.db-wal"))); }
ncerts() { TLSGATE_HOME=$1 "$BIN" --json cert list | grep -c '"sha256"'; }

# import every file in files.txt into home $1, at most $2 files per command; prints
# "WALL-SECONDS COMMANDS CPU-SECONDS" (CPU: user+sys of tlsgate and the wrappers). The
# wrapper counts the commands xargs actually ran (it splits a list longer than the
# system's argument limit); it costs one sh per command.
import_all() {
    home=$1
    n=$2
    : >"$work/cmds"
    # the largest command line the system allows, so -n decides the batching alone
    max=$(xargs --show-limits </dev/null 2>&1 | awk -F: '/actually use/ { gsub(/ /, "", $2); print $2 }')
    [ -n "$max" ] || max=131072
    times >"$work/cpu0"
    t0=$(now)
    # shellcheck disable=SC2016 # expanded by the wrapper sh
    if ! (cd "$certs" && TLSGATE_HOME=$home xargs -n "$n" -s "$max" \
        sh -c 'echo >>"$0"; exec "$@"' "$work/cmds" "$BIN" cert import \
        <files.txt >/dev/null 2>"$work/import.err"); then
        echo "store.sh: import failed:" >&2
        tail -5 "$work/import.err" >&2
        exit 1
    fi
    t1=$(now)
    times >"$work/cpu1"
    c0=$(cpu_of "$work/cpu0") c1=$(cpu_of "$work/cpu1")
    echo "$(secs "$t0" "$t1") $(wc -l <"$work/cmds") $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')"
}

# --- (a) batched import --------------------------------------------------------------
A=$work/home-a
mkdir -m 700 "$A"
TLSGATE_HOME=$A "$BIN" init >/dev/null # the store and factory default, not timed
echo "(a) importing $COUNT certificates, $BATCH per command ..." >&2
r=$(import_all "$A" "$BATCH")
# shellcheck disable=SC2086 # three words on purpose
set -- $r
a_secs=$1 a_cmds=$2 a_cpu=$3
a_n=$(ncerts "$A")
[ "$a_n" -eq $((COUNT + 1)) ] || { echo "store.sh: (a) store holds $a_n certificates, not $((COUNT + 1))" >&2; exit 1; }

# --- (b) one command -----------------------------------------------------------------
B=$work/home-b
mkdir -m 700 "$B"
TLSGATE_HOME=$B "$BIN" init >/dev/null
echo "(b) importing $COUNT certificates in one command ..." >&2
r=$(import_all "$B" "$COUNT")
# shellcheck disable=SC2086
set -- $r
b_secs=$1 b_cmds=$2 b_cpu=$3
b_n=$(ncerts "$B")
[ "$b_n" -eq $((COUNT + 1)) ] || { echo "store.sh: (b) store holds $b_n certificates, not $((COUNT + 1))" >&2; exit 1; }

# --- (c) listing, (e) show -----------------------------------------------------------
echo "(c) listing, (e) show, $RUNS runs each ..." >&2
export TLSGATE_HOME="$A"
json_bytes=$("$BIN" --json cert list | wc -c)
c_json=$(time_median "$BIN" --json cert list)
c_human=$(time_median "$BIN" cert list)
width=$((${#COUNT} > 5 ? ${#COUNT} : 5))
show_name=$(printf 'h%0*d.bench.test' "$width" $(((COUNT + 1) / 2)))
"$BIN" cert show "$show_name" >/dev/null
e_show=$(time_median "$BIN" cert show "$show_name")
e_show_json=$(time_median "$BIN" --json cert show "$show_name")
unset TLSGATE_HOME

# --- (d) store size ------------------------------------------------------------------
d_a=$(store_bytes "$A") d_a_wal=$(fsize "$A/store.db-wal")
d_b=$(store_bytes "$B") d_b_wal=$(fsize "$B/store.db-wal")
if command -v sqlite3 >/dev/null 2>&1; then
    sqlite3 "$A/store.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    sqlite3 "$B/store.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    d_a_ck="$(mib "$(store_bytes "$A")") MiB"
    d_b_ck="$(mib "$(store_bytes "$B")") MiB"
else
    d_a_ck="n/a (no sqlite3)" d_b_ck="n/a (no sqlite3)"
fi
pem_bytes=$(cd "$certs" && xargs cat <files.txt | wc -c)

# --- results -------------------------------------------------------------------------
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }')
a_rate=$(awk -v n="$COUNT" -v s="$a_secs" 'BEGIN { printf "%.0f", n / s }')
b_rate=$(awk -v n="$COUNT" -v s="$b_secs" 'BEGIN { printf "%.0f", n / s }')
verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { print (v < lim) ? "met" : "MISSED" }'; }
if [ "$COUNT" -eq 10000 ]; then
    aims="aims (issue): import < 10 s: (a) $(verdict "$a_secs" 10), (b) $(verdict "$b_secs" 10); cert list --json < 1 s: $(verdict "$c_json" 1)"
else
    aims="aims (issue) are stated for 10,000 certificates (SPEC P3: 100,000 \"in seconds\")"
fi
b_how="one command"
[ "$b_cmds" -eq 1 ] || b_how="$b_cmds commands: the argument limit split the list"

cat <<EOF

== tlsgate store benchmark (bench/store.sh) ==
machine: $(uname -m), $(nproc) CPUs, ${cpu:-unknown CPU}, $(date -u '+%Y-%m-%d %H:%M UTC'), tlsgate $rev
load average at start: $load0
certificates: $COUNT (EC P-256, CA-signed, 1 DNS SAN, $(mib "$pem_bytes") MiB of PEM)
(a) import, $BATCH per command ($a_cmds commands): $a_secs s  ($a_rate certs/s; CPU user+sys $a_cpu s)
(b) import, all in one transaction ($b_how): $b_secs s  ($b_rate certs/s; CPU user+sys $b_cpu s)
(c) cert list --json (median of $RUNS, $(mib "$json_bytes") MiB out): $c_json s
    cert list        (median of $RUNS): $c_human s
(d) store (a): $(mib "$d_a") MiB (store.db + wal, wal $(mib "$d_a_wal") MiB); after checkpoint: $d_a_ck
    store (b): $(mib "$d_b") MiB (store.db + wal, wal $(mib "$d_b_wal") MiB); after checkpoint: $d_b_ck
(e) cert show $show_name (median of $RUNS): $e_show s  (--json: $e_show_json s)
$aims
EOF
