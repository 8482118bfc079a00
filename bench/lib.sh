# bench/lib.sh — sourced by the bench scripts that run peers side by side (inspect.sh,
# server-inspect.sh; sni.sh for install_missing): the processes they start, stopped by PID on every exit, and the
# readings of /proc they measure with. Not run on its own.
#
# A script appends each PID it starts to PIDS; cleanup (the EXIT trap) stops each and its
# descendants (TERM, up to 2 s, then KILL) and removes $tmp when it is set.
# install_missing PKG… installs Debian packages (apt-get, non-interactive) when given any.

install_missing() {
    [ $# -gt 0 ] || return 0
    echo "$(basename "$0"): installing $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >&2 || { apt-get update -q >&2 && apt-get install -y -q "$@" >&2; }
}

PIDS=()
cleanup() {
    # each process we started and its descendants (sslsplit's privilege-separated child)
    local p all=()
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do all+=($(tree "$p")); done
    for p in "${all[@]+"${all[@]}"}"; do kill "$p" 2>/dev/null || true; done
    for p in "${all[@]+"${all[@]}"}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    [ -z "${tmp:-}" ] || rm -rf "$tmp"
}

now() { date +%s%N; }
TCK=$(getconf CLK_TCK)
tree() { # PID -> PID and its descendants
    local p=$1 c
    echo "$p"
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done
}
cpu_ticks() { # PID -> utime+stime of PID and its descendants
    local t=0 p v
    for p in $(tree "$1"); do
        v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || v=0
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
rss_kb() { local t=0 p v; for p in $(tree "$1"); do v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || v=0; t=$((t + ${v:-0})); done; echo "$t"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
