#!/bin/sh
# run.sh [SECONDS [TARGET…]] — builds the libFuzzer targets (clang, ASan+UBSan; CMake option
# TG_FUZZ in $FUZZ_BUILD, default build-fuzz), makes the seed corpora (seeds.sh) and runs
# each target for SECONDS (default 20), at most $FUZZ_JOBS (default nproc) at a time.
# Fails on any crash, leak, undefined behaviour, broken invariant, timeout (>10 s for one
# input) or out-of-memory; the reproducer is in $FUZZ_BUILD/artifacts/.
# The corpus grows in $FUZZ_BUILD/corpus/TARGET across runs. Extra libFuzzer flags:
# FUZZ_FLAGS (e.g. FUZZ_FLAGS=-use_value_profile=1).
set -eu
secs=${1:-20}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
B=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
targets=${*:-fuzz_bundle fuzz_der fuzz_names fuzz_sans fuzz_kdf fuzz_multipart}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS [TARGET…]]" >&2; exit 2 ;; esac

if [ ! -f "$B/CMakeCache.txt" ]; then
    cmake -S . -B "$B" -DCMAKE_C_COMPILER="${FUZZ_CC:-clang}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DTG_FUZZ=ON >/dev/null
fi
cmake --build "$B" --target tg_fuzz -j "$jobs"

stamp=$(cksum <"$here/seeds.sh")
if [ "$(cat "$B/seeds/.done" 2>/dev/null)" != "$stamp" ]; then
    sh "$here/seeds.sh" "$B/seeds"
    echo "$stamp" >"$B/seeds/.done"
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$B/logs" "$B/artifacts"

run_one() {
    t=$1
    s=${t#fuzz_}
    mkdir -p "$B/corpus/$t" "$B/seeds/$s"
    set -- -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$t-"
    dict=$s
    [ "$s" = kdf ] && dict=bundle # the same formats: PEM framing, PKCS OIDs
    [ -f "$here/$dict.dict" ] && set -- "$@" -dict="$here/$dict.dict"
    # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
    if timeout -k 10 $((secs * 2 + 120)) "$B/$t" "$@" ${FUZZ_FLAGS:-} "$B/corpus/$t" "$B/seeds/$s" \
        >"$B/logs/$t.log" 2>&1; then
        echo 0 >"$B/logs/$t.rc"
    else
        echo $? >"$B/logs/$t.rc"
    fi
}

echo "fuzz: ${secs}s per target, $jobs at a time: $targets"
pids=""
for t in $targets; do
    [ -x "$B/$t" ] || { echo "fuzz: no target $t" >&2; exit 2; }
    rm -f "$B/logs/$t.rc"
    run_one "$t" &
    pids="$pids $!"
    # shellcheck disable=SC2086 # a list of pids
    set -- $pids
    if [ $# -ge "$jobs" ]; then
        wait "$1" || true
        shift
        pids="$*"
    fi
done
for p in $pids; do wait "$p" || true; done

failed=0
for t in $targets; do
    log=$B/logs/$t.log
    rc=$(cat "$B/logs/$t.rc" 2>/dev/null || echo 99)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
    corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n 1)
    if [ "$rc" = 0 ]; then
        echo "fuzz: $t ok: ${runs:-?} runs, ${cov:-no coverage line}, ${corp:-}"
    else
        failed=1
        echo "fuzz: $t FAILED (exit $rc): log $log" >&2
        tail -n 60 "$log" >&2
        ls -l "$B/artifacts/$t-"* 2>/dev/null >&2 || true
    fi
done
exit $failed
