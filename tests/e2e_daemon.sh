#!/usr/bin/env bash
# End to end: coserved as a daemon. --daemon, the pid file and its lock,
# signals (SIGUSR1 status, SIGHUP log reopen, --reload, SIGTERM), JSON logs,
# size rotation, sd_notify. Every coserved it starts is judged at its end
# (e2e_lib.sh: stop_judged, stop_daemon_judged). What needs root (privilege
# drop, low ports) is in e2e_daemon_root.sh. Usage: e2e_daemon.sh PATH/TO/coserved
set -uo pipefail
coserved=${1:?usage: e2e_daemon.sh coserved}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/e2e_lib.sh"
wait_for() { for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }

mkdir -p "$work/run"
cat >"$work/d.ini" <<INI
[server]
pid_file = run/coserved.pid
log_file = coserved.log
log_format = json
log_level = debug
shutdown_grace = 1s
[echo]
tcp = 127.0.0.1:0
[hello]
tcp = 127.0.0.1:0
INI

# --daemon: returns once bound, with the pid file written. Its stderr is
# /dev/null: the sanitizers report to $work/sanitizer.PID instead.
with_sanitizer_log "$work/sanitizer" "$coserved" --config "$work/d.ini" --daemon; rc=$?
check "--daemon exits 0 once serving" 0 "$rc"
pid=$(cat "$work/run/coserved.pid" 2>/dev/null)
pids+=("$pid")
check "the pid file names a live process" yes "$(kill -0 "$pid" 2>/dev/null && echo yes)"
read -r -a stat <"/proc/$pid/stat"
check "the daemon has no controlling terminal" 0 "${stat[6]}"
check "the daemon is not a session leader (it forked twice)" yes "$([[ ${stat[5]} != "$pid" && ${stat[5]} != "$(ps -o sid= $$ | tr -d ' ')" ]] && echo yes || echo "no: session ${stat[5]}")"
check "the daemon's working directory is /" / "$(readlink "/proc/$pid/cwd")"
port=$(jq -r 'select(.instance == "echo" and (.message | startswith("service echo"))) | .message' "$work/coserved.log" | grep -o '127.0.0.1:[0-9]*' | sed 's/.*://')
check "it serves" hi "$(printf 'hi\n' | timeout 5 nc -N 127.0.0.1 "$port")"

out=$(with_sanitizer_log "$work/sanitizer" "$coserved" --config "$work/d.ini" --daemon 2>&1); rc=$?
check "a second coserved with the same pid file is refused (exit 1)" 1 "$rc"
check "with a clear message" 1 "$(grep -c "another coserved is running (pid $pid, pid file $work/run/coserved.pid)" <<<"$out")"

kill -USR1 "$pid"
wait_for "$work/coserved.log" '"message":"status: '
check "SIGUSR1 logs a status summary" 1 "$(jq -r .message "$work/coserved.log" | grep -c "^status: 0 connection(s) open")"

mv "$work/coserved.log" "$work/coserved.log.old"
"$coserved" --config "$work/d.ini" --reload >/dev/null; rc=$?
check "--reload signals the daemon" 0 "$rc"
wait_for "$work/coserved.log" 'received SIGHUP'
check "SIGHUP reopens the log file (logrotate)" 1 "$(grep -c 'received SIGHUP: log reopened' "$work/coserved.log")"
check "every log line is a JSON object with time, level and message" "" \
  "$(cat "$work/coserved.log.old" "$work/coserved.log" | jq -c 'select((.time|type) != "string" or (.level|type) != "string" or (.message|type) != "string")' 2>&1)"
check "JSON logs carry instance and peer" 1 \
  "$(jq -r 'select(.message == "accepted") | [.instance, (.peer | test("^127.0.0.1:[0-9]+$"))] | @tsv' "$work/coserved.log.old" | sort -u | grep -c "^echo	true$")"

# SIGHUP with a changed config: [hello] removed, [daytime] added, [echo]
# changed; an open echo connection keeps working, the echo port never closes.
hport_line=$(jq -r 'select(.instance == "hello" and (.message | startswith("service hello"))) | .message' "$work/coserved.log.old")
hport=$(grep -o '127.0.0.1:[0-9]*' <<<"$hport_line" | sed 's/.*://')
check "[hello] serves before the reload" "Hi, we are connected!" "$(timeout 5 nc -N 127.0.0.1 "$hport" </dev/null | tr -d '\r')"
exec 7<>"/dev/tcp/127.0.0.1/$port"
printf 'before\n' >&7
check "an echo connection is open" before "$(timeout 5 head -n1 <&7)"
cat >"$work/d.ini" <<INI
[server]
pid_file = run/coserved.pid
log_file = coserved.log
log_format = json
log_level = debug
shutdown_grace = 1s
[echo]
tcp = 127.0.0.1:$port
max_connections = 5
[daytime]
tcp = 127.0.0.1:0
utc = true
INI
kill -HUP "$pid"
wait_for "$work/coserved.log" '"message":"reload: '
check "the reload is logged with what changed" 1 "$(jq -r .message "$work/coserved.log" | grep -c '^reload: 1 started, 1 changed, 1 stopped, 0 unchanged$')"
printf 'after\n' >&7
check "the open echo connection survives the reload" after "$(timeout 5 head -n1 <&7)"
exec 7>&-
check "new echo connections are served on the same port" again "$(printf 'again\n' | timeout 5 nc -N 127.0.0.1 "$port")"
check "the removed [hello] no longer listens" refused "$(timeout 5 nc -z 127.0.0.1 "$hport" && echo listening || echo refused)"
dport=$(jq -r 'select(.instance == "daytime" and (.message | startswith("service daytime"))) | .message' "$work/coserved.log" | grep -o '127.0.0.1:[0-9]*' | sed 's/.*://')
check "the added [daytime] serves" yes "$(timeout 5 nc -N 127.0.0.1 "$dport" </dev/null | grep -qE '^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} [0-9]{4}' && echo yes || echo no)"

# SIGHUP with a broken config: logged, nothing changes.
printf 'bogus line without equals\n' >>"$work/d.ini"
kill -HUP "$pid"
wait_for "$work/coserved.log" 'the running configuration stays'
check "a broken config on reload is logged" 1 "$(jq -r 'select(.level == "error") | .message' "$work/coserved.log" | grep -c 'the running configuration stays')"
check "and the daemon keeps serving as before" still "$(printf 'still\n' | timeout 5 nc -N 127.0.0.1 "$port")"
check "including what the last good reload added" yes "$(timeout 5 nc -N 127.0.0.1 "$dport" </dev/null | grep -qE '[0-9]{4}' && echo yes || echo no)"

stop_daemon_judged "SIGTERM to the daemon" "$pid" "$work/coserved.log" "$work/sanitizer"
check "and removes its pid file" no "$([[ -e $work/run/coserved.pid ]] && echo yes || echo no)"

# A port in use: the original process reports the daemon's failure.
cat >"$work/clash.ini" <<INI
[server]
log_file = clash.log
[echo]
tcp = 127.0.0.1:$port
INI
exec 5< <(timeout 20 nc -l 127.0.0.1 "$port")
listener=$!
sleep 0.3
out=$(with_sanitizer_log "$work/clash-sanitizer" "$coserved" --config "$work/clash.ini" --daemon 2>&1); rc=$?
check "--daemon with a port in use exits 1" 1 "$rc"
check "and prints why" 1 "$(grep -c "tcp 127.0.0.1:$port: cannot bind: Address already in use" <<<"$out")"
no_sanitizer_report "the refused --daemon" "$work/clash.log" "$work"/clash-sanitizer.*
exec 5<&-
kill "$listener" 2>/dev/null

# Size rotation.
cat >"$work/rot.ini" <<INI
[server]
log_file = rot.log
log_rotate_size = 2K
log_level = debug
[echo]
tcp = 127.0.0.1:0
INI
"$coserved" --config "$work/rot.ini" >"$work/rot.err" 2>&1 &
rpid=$!; pids+=("$rpid")
wait_for "$work/rot.log" 'service echo'
rport=$(grep -o 'tcp 127.0.0.1:[0-9]*' "$work/rot.log" | head -1 | sed 's/.*://')
for _ in $(seq 40); do printf 'x\n' | timeout 5 nc -N 127.0.0.1 "$rport" >/dev/null; done
stop_judged "coserved with log_rotate_size" "$rpid" "$work/rot.err"
rotated=$(ls "$work" | grep -c '^rot\.log\.[0-9]*$')
check "log_rotate_size rotates the file" yes "$([[ $rotated -ge 1 ]] && echo yes || echo "no ($rotated)")"
check "no log file grows far past the size" "" "$(find "$work" -name 'rot.log*' -size +8k)"

# sd_notify on a NOTIFY_SOCKET of ours.
rm -f "$work/notify.sock"
timeout 10 nc -lkuU "$work/notify.sock" >"$work/notify.out" &
npid=$!; pids+=("$npid")
for _ in $(seq 50); do [[ -S $work/notify.sock ]] && break; sleep 0.05; done
printf '[server]\nshutdown_grace = 1s\n[echo]\ntcp = 127.0.0.1:0\n' >"$work/n.ini"
NOTIFY_SOCKET=$work/notify.sock WATCHDOG_USEC=200000 "$coserved" --config "$work/n.ini" 2>"$work/n.log" &
spid=$!; pids+=("$spid")
wait_for "$work/notify.out" 'READY=1'
sleep 0.5
kill -HUP "$spid"
sleep 0.3
stop_judged "coserved under NOTIFY_SOCKET" "$spid" "$work/n.log"
sleep 0.2
notes=$(cat "$work/notify.out")
check "sd_notify: READY=1 first, once bound" READY=1 "$(head -n1 <<<"$notes")"
check "sd_notify: MAINPID and STATUS with it" yes "$(grep -q "^MAINPID=$spid" <<<"$notes" && grep -q 'STATUS=serving 1 instance(s)' <<<"$notes" && echo yes || echo no)"
check "sd_notify: WATCHDOG=1 at half of WATCHDOG_USEC" yes "$([[ $(grep -o 'WATCHDOG=1' <<<"$notes" | wc -l) -ge 3 ]] && echo yes || echo no)"
check "sd_notify: STOPPING=1 on SIGTERM" 1 "$(grep -c 'STOPPING=1' <<<"$notes")"
check "sd_notify: RELOADING=1 with MONOTONIC_USEC, then READY=1, around a reload" yes \
  "$(tr -d '\n' <<<"$notes" | grep -qE 'RELOADING=1MONOTONIC_USEC=[0-9]+.*READY=1STATUS=serving 1 instance' && echo yes || echo no)"
kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null

finish e2e_daemon
