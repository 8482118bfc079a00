#!/bin/sh
# make run: set up the embedded store (first use creates it with the factory default
# certificate) and show what it holds.
set -eu
BIN=${1:-build/tlsgate}
echo "Store: $TLSGATE_HOME"
"$BIN" init
echo
"$BIN" cert list
echo
echo "Try: $BIN --home $TLSGATE_HOME cert create demo --cn demo.example.com --key ec:p256"
