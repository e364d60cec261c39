#!/usr/bin/env bash
# End to end: what needs root. coserved binds a privileged port as root, then
# runs as nobody; and a privileged port without root fails clearly. Not root:
# prints "skipped: needs root" and exits 77 (ctest: SKIP_RETURN_CODE 77), so a
# run without root says skipped rather than passed.
# Usage: e2e_daemon_root.sh PATH/TO/coserved
set -uo pipefail
coserved=${1:?usage: e2e_daemon_root.sh coserved}
if [[ $(id -u) -ne 0 ]]; then echo "skipped: needs root"; exit 77; fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/e2e_lib.sh"
wait_for() { for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# nobody must reach the configs and the binary's folder.
chmod 755 "$work"

# A privileged port free on this machine: 7 (echo's) if it is, else the
# highest free one below 1024.
port=$(python3 -c '
import socket
for p in [7] + list(range(1023, 511, -1)):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()
')
check "a free privileged port for the test" yes "$([[ -n $port ]] && echo yes || echo no)"

# Privileges: bind as root, then run as nobody.
printf '[server]\nuser = nobody\nshutdown_grace = 1s\n[echo]\ntcp = 127.0.0.1:%s\n' "$port" >"$work/priv.ini"
"$coserved" --config "$work/priv.ini" 2>"$work/priv.log" &
ppid_=$!; pids+=("$ppid_")
wait_for "$work/priv.log" 'running as user nobody'
check "binds port $port as root, then runs as nobody" "$(id -u nobody)" "$(awk '/^Uid:/ {print $2}' "/proc/$ppid_/status")"
check "and serves on port $port" hi "$(printf 'hi\n' | timeout 5 nc -N 127.0.0.1 "$port")"
stop_judged "coserved run as nobody" "$ppid_" "$work/priv.log"

# A privileged port without root: exit 1 and a clear message.
printf '[echo]\ntcp = 127.0.0.1:%s\n' "$port" >"$work/low.ini"
chmod 644 "$work/low.ini"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$coserved" --config "$work/low.ini" >"$work/low.log" 2>&1; rc=$?
check "a privileged port without root exits 1" 1 "$rc"
check "and says what is needed" 1 "$(grep -c 'ports below 1024 need root or CAP_NET_BIND_SERVICE' "$work/low.log")"
no_sanitizer_report "coserved without root on a privileged port" "$work/low.log"

finish e2e_daemon_root
