#!/bin/sh
# coverage.sh [TARGET…] — line/branch coverage of the decoders reached by the corpora that
# run.sh grew: builds each target with clang source-based coverage (no sanitizers) in
# $FUZZ_BUILD/cov, replays $FUZZ_BUILD/corpus/TARGET and the seeds, and prints llvm-cov's
# report for src/x509 and src/base. Add `show` detail by hand:
#   llvm-cov show $FUZZ_BUILD/cov/fuzz_bundle -instr-profile=$FUZZ_BUILD/cov/fuzz_bundle.profdata src/x509/decode.c
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
B=${FUZZ_BUILD:-build-fuzz}
targets=${*:-fuzz_bundle fuzz_der fuzz_names}
mkdir -p "$B/cov"
for t in $targets; do
    s=${t#fuzz_}
    [ -d "$B/corpus/$t" ] || { echo "coverage: no corpus for $t; run tests/fuzz/run.sh first" >&2; exit 2; }
    # shellcheck disable=SC2046 # the list of sources
    clang -g -O1 -fprofile-instr-generate -fcoverage-mapping -fsanitize=fuzzer -std=c17 \
        -D_GNU_SOURCE -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED -DTG_VERSION='"fuzz"' \
        -Isrc "tests/fuzz/$t.c" src/base/*.c src/x509/*.c $(pkg-config --libs libcrypto) \
        -o "$B/cov/$t"
    rm -f "$B/cov/$t.profraw"
    LLVM_PROFILE_FILE="$B/cov/$t.profraw" "$B/cov/$t" -runs=0 "$B/corpus/$t" "$B/seeds/$s" \
        >/dev/null 2>&1 || true
    llvm-profdata merge -sparse "$B/cov/$t.profraw" -o "$B/cov/$t.profdata"
    echo "== $t (corpus $(find "$B/corpus/$t" -type f | wc -l) files + seeds)"
    llvm-cov report "$B/cov/$t" -instr-profile="$B/cov/$t.profdata" src/x509 src/base
done
