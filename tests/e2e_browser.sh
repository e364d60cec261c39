#!/usr/bin/env bash
# End to end: chat's page in a real browser. Debian's chromium, headless,
# driven by puppeteer-core (tests/browser/chat.test.js; npm installs it from
# the lock file, pointed at /usr/bin/chromium: no browser is downloaded):
# two pages and an nc user talk in one room, /nick and /join from the page,
# an HTML line shown as text, a dropped connection (coserved restarted on the
# same ports) reconnected, the page over websocket_tls with the test CA
# trusted in the browser's own certificate database. Writes a screenshot
# (SCREENSHOT, default: in the scratch directory). Every coserved is stopped
# with SIGTERM and judged (e2e_lib.sh). All on loopback; the browser
# resolves no name (--host-resolver-rules).
# Usage: e2e_browser.sh PATH/TO/coserved
set -uo pipefail
coserved=$(readlink -f "${1:?usage: e2e_browser.sh PATH/TO/coserved}")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
source "$here/e2e_lib.sh"
pid=
node_pid=
cleanup() {
  [[ -n $node_pid ]] && kill -TERM "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
for tool in chromium node nc openssl certutil; do
  command -v "$tool" >/dev/null || { echo "e2e_browser: $tool is missing (scripts/install-deps installs it)"; exit 1; }
done
[[ -d $here/browser/node_modules/puppeteer-core ]] ||
  { echo "e2e_browser: puppeteer-core is missing (scripts/install-deps runs npm ci in tests/browser)"; exit 1; }

make_test_certs "$work" || { echo "e2e_browser: could not make test certificates"; exit 1; }
# The browser's HOME, with the test CA in its NSS database (what Chromium trusts on Linux).
export HOME=$work/home
mkdir -p "$HOME/.pki/nssdb"
certutil -N -d "sql:$HOME/.pki/nssdb" --empty-password &&
  certutil -A -d "sql:$HOME/.pki/nssdb" -t "C,," -n "coserve test CA" -i "$work/ca.pem" ||
  { echo "e2e_browser: could not trust the test CA"; exit 1; }

config() {  # TCP WS WSS: the config, on these ports (0: chosen by the OS)
  cat >"$work/chat.ini" <<EOF
[server]
shutdown_grace = 1s
[chat]
tcp = 127.0.0.1:$1
websocket = 127.0.0.1:$2
websocket_tls = 127.0.0.1:$3
tls_cert = server.pem
tls_key = server.key
EOF
}
start() {  # LOG
  (cd "$work" && exec "$coserved" --config "$work/chat.ini") >"$1" 2>&1 &
  pid=$!
  poll_for 20 grep -q -F "service chat:" "$1" || { echo "coserved did not start:"; cat "$1"; exit 1; }
}
config 0 0 0
start "$work/log1"
read -r tcp ws wss < <(sed -n 's/.*tcp 127.0.0.1:\([0-9]*\); websocket 127.0.0.1:\([0-9]*\); websocket_tls 127.0.0.1:\([0-9]*\);.*/\1 \2 \3/p' "$work/log1")
[[ -n $wss ]] || { echo "no ports in the log:"; cat "$work/log1"; exit 1; }

WORK=$work TCP_PORT=$tcp WS_PORT=$ws WSS_PORT=$wss SCREENSHOT=${SCREENSHOT:-$work/chat-page.png} \
  timeout 240 node "$here/browser/chat.test.js" >"$work/node.out" 2>&1 &
node_pid=$!
# The page's dropped connection: coserved stopped (judged) and started again on the same ports.
restarted=no
while ! gone "$node_pid"; do
  if [[ $restarted == no && -e $work/restart.request ]]; then
    stop_judged "coserved (first run)" "$pid" "$work/log1"
    config "$tcp" "$ws" "$wss"
    start "$work/log2"
    touch "$work/restart.done"
    restarted=yes
  fi
  sleep 0.1
done
wait "$node_pid"
node_rc=$?
node_pid=
cat "$work/node.out"
passes=$((passes + $(grep -c '^ok: ' "$work/node.out")))
failures=$((failures + $(grep -c '^FAIL: ' "$work/node.out")))
check "the browser test exited 0" 0 "$node_rc"
check "the browser test ran its checks" yes "$( (( $(grep -c '^ok: ' "$work/node.out") >= 40 )) && echo yes || echo no)"
check "coserved was restarted for the dropped connection" yes "$restarted"
check "the screenshot is a PNG" yes "$(file -b "${SCREENSHOT:-$work/chat-page.png}" | grep -q '^PNG image' && echo yes || echo no)"
check "no error in coserved's logs" "" "$(cat "$work"/log* | grep -E ' (error|warning) ' | grep -v 'the certificate expires' | head -3)"
[[ -n $pid ]] && stop_judged "coserved (second run)" "$pid" "$work/log2"
pid=
finish e2e_browser
