#!/usr/bin/env bash
# End to end under valgrind memcheck: the Release coserved serves every
# service (TCP and UDP), metrics, a reload that adds, changes and removes
# instances, resets mid-download and mid-upload, then SIGTERM. memcheck must
# report no error and no definite or indirect leak.
# Usage: e2e_valgrind.sh PATH/TO/coserved (a build without sanitizers)
set -uo pipefail
coserved=${1:?usage: e2e_valgrind.sh coserved}
work=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
source "$(dirname "$0")/e2e_lib.sh"

mkdir "$work/files"
printf 'hello file\n' >"$work/files/hello.txt"
head -c $((2 << 20)) /dev/zero >"$work/files/big.bin"
make_test_certs "$work" || { echo "FAIL: test certificates"; exit 1; }  # for the TLS listeners
tls_keys="tls = 127.0.0.1:0
tls_cert = server.pem
tls_key = server.key"
services() {
  cat <<INI
[server]
shutdown_grace = 2s
log_level = debug
[metrics]
http = 127.0.0.1:0
[echo]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
$tls_keys
[uppercase]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[daytime]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[time]
tcp = 127.0.0.1:0
[adder]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[hello]
tcp = 127.0.0.1:0
[discard]
tcp = 127.0.0.1:0
[chargen]
tcp = 127.0.0.1:0
[chat]
tcp = 127.0.0.1:0
$tls_keys
[files]
tcp = 127.0.0.1:0
root = files
allow_upload = true
$tls_keys
INI
}
services >"$work/v.ini"
valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --log-file="$work/valgrind.log" \
  "$coserved" --config "$work/v.ini" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q 'service files: tcp' "$work/log" && break; sleep 0.1; done
# "service NAME: tcp ADDR:PORT; udp ADDR:PORT" in the start-up log.
port() { grep -o "service $1: .*" "$work/log" | head -1 | grep -o "$2 [^;]*" | grep -o ':[0-9]*$' | tr -d :; }
mport=$(grep -o 'metrics] http 127.0.0.1:[0-9]*' "$work/log" | grep -o '[0-9]*$')
nct() { timeout 60 nc -N 127.0.0.1 "$1"; }
ncu() { timeout 60 nc -u -w5 127.0.0.1 "$1"; }

check "echo" "hi" "$(printf 'hi\n' | nct "$(port echo tcp)")"
check "echo over UDP" "hu" "$(printf 'hu\n' | ncu "$(port echo udp)")"
check "uppercase" "STRASSE" "$(printf 'straße\n' | nct "$(port uppercase tcp)")"
check "uppercase over UDP" "ABC" "$(printf 'abc\n' | ncu "$(port uppercase udp)")"
check "daytime answers a line" 1 "$(nct "$(port daytime tcp)" </dev/null | wc -l)"
check "time answers 4 bytes" 4 "$(nct "$(port time tcp)" </dev/null | wc -c)"
check "adder" "$(printf '90\r\nERR not a number: "x"\r')" "$(printf '50,40\r\nx\r\n' | nct "$(port adder tcp)")"
check "adder over UDP" "3" "$(printf '1,2\n' | ncu "$(port adder udp)")"
check "hello: banner and reply" 2 "$(printf 'Ann\n' | nct "$(port hello tcp)" | grep -c -e 'Hi, we are connected!' -e hello)"
check "discard" "" "$(head -c 100000 /dev/zero | nct "$(port discard tcp)")"
check "chargen (first 1000 bytes)" 1000 "$(timeout 60 nc 127.0.0.1 "$(port chargen tcp)" </dev/null | head -c 1000 | wc -c)"
check "files GET" "$(printf 'OK 11\nhello file')" "$(printf 'GET hello.txt\n' | nct "$(port files tcp)")"
check "files PUT" "$(printf 'OK send\nOK stored')" "$( (printf 'PUT up.txt 5\n'; sleep 2; printf 'abcde') | nct "$(port files tcp)")"
chat=$(port chat tcp)
(printf '/nick ann\n'; sleep 6; printf 'hello bob\n/quit\n') | timeout 60 nc 127.0.0.1 "$chat" >"$work/ann" &
ann=$!
sleep 2
(printf '/nick bob\n'; sleep 10; printf '/quit\n') | timeout 60 nc 127.0.0.1 "$chat" >"$work/bob"
wait "$ann"
check "chat between two clients" 1 "$(grep -c '<ann> hello bob' "$work/bob")"
# TLS (openssl s_client, verifying against the test CA; -quiet implies ignoring stdin's end, hence -no_ign_eof).
tlsc() { timeout 60 openssl s_client -connect "127.0.0.1:$1" -CAfile "$work/ca.pem" -verify_return_error -quiet -no_ign_eof 2>/dev/null; }
check "echo over TLS" "hi tls" "$( (printf 'hi tls\n'; sleep 3) | tlsc "$(port echo tls)")"
check "files GET over TLS" "$(printf 'OK 11\nhello file')" "$( (printf 'GET hello.txt\n'; sleep 3) | tlsc "$(port files tls)")"
check "files GET of 2 MiB over TLS" $((2 << 20)) "$( (printf 'GET big.bin\n'; sleep 8) | tlsc "$(port files tls)" | tail -c +12 | wc -c)"
(printf '/nick tina\n'; sleep 6; printf 'hello from tls\n/quit\n'; sleep 2) | tlsc "$(port chat tls)" >"$work/tina" &
tina=$!
sleep 2
(printf '/nick pat\n'; sleep 10; printf '/quit\n') | timeout 60 nc 127.0.0.1 "$chat" >"$work/pat"
wait "$tina"
check "chat: a plaintext member hears a TLS member" 1 "$(grep -c '<tina> hello from tls' "$work/pat")"
check "chat: the TLS member hears the plaintext one" yes "$(grep -q 'pat' "$work/tina" && echo yes)"
check "plaintext sent to a TLS port gets nothing back" "" "$(printf 'hello\n' | nct "$(port echo tls)" | tr -d '\0')"
check "metrics" 1 "$(timeout 60 curl -s "http://127.0.0.1:$mport/metrics" | grep -c '^coserve_connections_total{instance="echo"')"
# Resets mid-download and mid-upload.
for _ in 1 2 3; do
  exec {fd}<>"/dev/tcp/127.0.0.1/$(port files tcp)"
  printf 'GET big.bin\n' >&"$fd"; sleep 0.5; exec {fd}<&-
  exec {fd}<>"/dev/tcp/127.0.0.1/$(port files tcp)"
  printf 'PUT part.bin 1000000\nxxxx' >&"$fd"; sleep 0.5; exec {fd}<&-
done
# Reload: remove hello, change echo, add a second echo.
services | sed '/^\[hello\]/,/^tcp/d; s/^\[echo\]$/[echo]\nidle_timeout = 7m/' >"$work/v.ini"
printf '[echo2]\nservice = echo\ntcp = 127.0.0.1:0\n' >>"$work/v.ini"
kill -HUP "$pid"
for _ in $(seq 300); do grep -q 'service echo: tcp' <(grep -A100 'received SIGHUP' "$work/log") && grep -q 'reload' "$work/log" && break; sleep 0.1; done
sleep 2
check "the reload changed one instance, started one and stopped one" 1 "$(grep -c 'reload: 1 started, 1 changed, 1 stopped' "$work/log")"
check "after a reload, the new instance serves" "two" "$(printf 'two\n' | nct "$(grep -o 'service echo: tcp [^;]*' "$work/log" | tail -1 | grep -o '[0-9]*$')")"

# Judged as every coserved is (e2e_lib.sh); memcheck's leak search at exit is slow.
stop_seconds=120
stop_judged "coserved under memcheck (status 99 is a memcheck error)" "$pid" "$work/log"; pid=
# valgrind 3.19 does not know openat2 (syscall 437) and says so on lines
# starting with --PID--; files then resolves paths by its fallback.
check "memcheck: no errors, no leaks" "" "$(grep -v -e '^==[0-9]*== *$' -e '^--[0-9]*--' "$work/valgrind.log")"
[[ $failures -eq 0 ]] || { echo "--- valgrind log"; head -60 "$work/valgrind.log"; echo "--- coserved log"; tail -30 "$work/log"; }
finish e2e_valgrind
