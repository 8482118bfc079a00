#!/bin/sh
# make run: set up the embedded store (first use creates it with the factory-default
# certificate), show what it holds, and start the TLS front end on 127.0.0.1:8443.
set -eu
BIN=${1:-build/tlsgate}
LISTEN=${TLSGATE_LISTEN:-127.0.0.1:8443}
echo "Store: $TLSGATE_HOME"
"$BIN" init
echo
"$BIN" cert list
PORT=${LISTEN##*:}
cat <<MSG

Serving on $LISTEN. In another terminal:
  curl -k https://localhost:$PORT/            # the status page names the certificate served
  curl -k https://localhost:$PORT/healthz
  $BIN --home $TLSGATE_HOME cert create demo --cn demo.example.com --key ec:p256
  curl -k --resolve demo.example.com:$PORT:127.0.0.1 https://demo.example.com:$PORT/
The web console: https://127.0.0.1:9443/appliance/ (user admin, the one-time password
printed by the first init above; it asks for a new one). The JSON API is under
https://127.0.0.1:9443/api/v1/ (docs/api.md); a token for it:
  $BIN --home $TLSGATE_HOME user token admin
Changes to the store take effect within a second. Ctrl-C stops (open connections drain).

MSG
exec "$BIN" serve --listen "$LISTEN"
