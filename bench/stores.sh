# bench/stores.sh — sourced by bench/sni.sh and bench/api.sh: the cached certificate sets
# and tlsgate stores of the benches. The caller sets here, out, PY, TG, KEYS, BATCH,
# REIMPORT, CHAINSFX and the functions log and now.
#   certset ALG N  -> the directory of N certificates (bench/sni_certs.py), made when missing
#   store ALG N    -> a tlsgate store with them imported, made when missing
certset() { # ALG N -> path; generated when missing
    local d=$out/sni-certs-$1-$2$CHAINSFX
    if [ ! -f "$d/files.txt" ] || [ "$(wc -l <"$d/files.txt")" -ne "$2" ]; then
        log "generating $2 $1 certificates into $d (not timed) ..."
        local t0; t0=$(now)
        "$PY" "$here/sni_certs.py" "$1" "$2" "$d" "$KEYS"
        log "generated in $(( ($(now) - t0) / 1000000000 )) s"
    fi
    echo "$d"
}
store() { # ALG N -> path of the cached store imported from certset ALG N
    local set=$out/sni-certs-$1-$2$CHAINSFX st=$out/sni-store-$1-$2$CHAINSFX
    if [ "$REIMPORT" = 1 ] || [ ! -f "$st/import.txt" ] || [ "$set/files.txt" -nt "$st/import.txt" ]; then
        log "importing $2 $1 certificates into a new store $st (BATCH=$BATCH) ..."
        rm -rf "$st" "$st.tmp"
        mkdir -p "$st.tmp"
        local t0 t1
        t0=$(now)
        "$TG" --home "$st.tmp" init >/dev/null
        (cd "$set" && xargs -n "$BATCH" "$TG" --home "$st.tmp" cert import <files.txt >/dev/null)
        t1=$(now)
        local n; n=$("$TG" --home "$st.tmp" --json cert list | grep -c '"sha256"' || true)
        echo "secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) / 1e9 }') batch=$BATCH certs=$n date=$(date -u +%FT%TZ)" >"$st.tmp/import.txt"
        mv "$st.tmp" "$st"
        log "imported: $(cat "$st/import.txt")"
    fi
    echo "$st"
}

