#!/bin/sh
# Installs the Debian packages that building, testing and benchmarking need, once.
# Safe to run repeatedly: it asks apt only for what dpkg says is missing.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# playwright-core, as locked in tests/e2e/console/package-lock.json (it drives Debian's
# chromium; it downloads no browser of its own)
console_modules() {
    [ -d "$ROOT/tests/e2e/console/node_modules/playwright-core" ] && return 0
    echo "bootstrap: npm ci in tests/e2e/console"
    (cd "$ROOT/tests/e2e/console" && npm ci --no-audit --no-fund --loglevel=error)
}
# debhelper, dpkg-dev, fakeroot, lintian, adduser: the Debian package (debian/) that
# tests/e2e/test_package.py builds, checks and installs. man-db, groff-base:
# tests/interop/test_help.py renders the man page and runs the completion. nginx-light:
# the protected server of tests/e2e/test_server_proxy.py (HTTP/2, two names), started by
# the test itself: its package's own service is not started at install (policy-rc.d).
PKGS="build-essential cmake pkg-config libssl-dev openssl libsqlite3-dev sqlite3 libjansson-dev
libevent-dev libcurl4-openssl-dev libcmocka-dev python3 python3-cryptography
default-jre-headless gnutls-bin libnss3-tools clang libclang-rt-14-dev valgrind
publicsuffix ca-certificates curl tshark iptables iproute2 chromium python3-prometheus-client
nodejs python3-jsonschema pebble
debhelper dpkg-dev fakeroot lintian adduser man-db groff-base nginx-light"
# The console's browser tests (tests/e2e/console) run node with playwright-core from npm.
# Debian's npm, unless an npm is there already (a nodejs from elsewhere brings its own, and
# Debian's npm would not install beside it).
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && { console_modules; exit 0; }
echo "bootstrap: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
# tshark (tests/interop/test_pcap_tshark.py) brings wireshark-common, which asks whether
# non-root users may capture: no, and without asking.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
# a package's service (nginx) is not started at install: the tests start what they need
norc=""
if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    norc=1
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing || { [ -n "$norc" ] && rm -f /usr/sbin/policy-rc.d; exit 1; }
[ -n "$norc" ] && rm -f /usr/sbin/policy-rc.d
console_modules
