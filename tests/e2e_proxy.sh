#!/usr/bin/env bash
# End to end, the PROXY protocol: the built coserved behind a real HAProxy
# (send-proxy for v1, send-proxy-v2 for v2, and TLS passed through with a v2
# header before the ClientHello; health checks with check-send-proxy, which
# sends LOCAL), and curl --haproxy-protocol for v1. Clients connect to HAProxy
# from other loopback addresses (127.0.0.2-5) so that coserved can only know
# them from the header: its logs, its `deny` ACL and max_per_source must see
# them, not HAProxy's 127.0.0.1. A client that bypasses HAProxy, or sends no
# header, is refused and counted. Usage: e2e_proxy.sh PATH/TO/coserved
set -uo pipefail
coserved=$(readlink -f "${1:?usage: e2e_proxy.sh PATH/TO/coserved}")
work=$(mktemp -d)
pid=
haproxy_pid=
bg_pids=()
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  [[ -n $haproxy_pid ]] && kill -TERM "$haproxy_pid" 2>/dev/null
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [[ -n ${KEEP:-} ]] && cp "$work/log" /tmp/e2e-proxy.log; rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/e2e_lib.sh"

log_has() { [[ $(grep -c -E -- "$1" "$work/log") -ge ${2:-1} ]]; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_of() { grep -m1 -o "\[$1\] service [a-z]*: .*" "$work/log" | grep -o "$2 127\.0\.0\.1:[0-9]*" | sed 's/.*://'; }
metric() { curl -s "http://127.0.0.1:$metrics/metrics" | sed -n "s/^$1 //p"; }
rejected() { metric "coserve_connections_rejected_total{instance=\"$1\",service=\"$2\",reason=\"$3\"}"; }
# echo_from SOURCE PORT TEXT: what an nc client bound to SOURCE gets back for TEXT (it closes after 2 s).
echo_from() { printf '%s\n' "$3" | timeout 5 nc -s "$1" -q 2 127.0.0.1 "$2" 2>/dev/null; }

# ---- a certificate for the TLS listener --------------------------------------
make_test_certs "$work" || { echo "FAIL: test certificates"; exit 1; }

# ---- coserved ------------------------------------------------------------------
cat >"$work/coserved.ini" <<EOF
[server]
log_level = debug
[metrics]
http = 127.0.0.1:0
[echo]
tcp = 127.0.0.1:0
tls = 127.0.0.1:0
tls_cert = server.pem
tls_key = server.key
proxy_protocol = any
proxy_from = 127.0.0.1
deny = 127.0.0.3
max_per_source = 2
[daytime]
tcp = 127.0.0.1:0
proxy_protocol = v1
proxy_from = 127.0.0.1
EOF
"$coserved" --config "$work/coserved.ini" >"$work/log" 2>&1 &
pid=$!
poll_for 20 log_has '\[metrics\] http .*: GET /metrics' || { cat "$work/log"; exit 1; }
echo_tcp=$(port_of echo tcp)
echo_tls=$(port_of echo tls)
daytime=$(port_of daytime tcp)
metrics=$(grep -m1 -o '\[metrics\] http 127\.0\.0\.1:[0-9]*' "$work/log" | sed 's/.*://')
like "coserved --check-config shows the setting" "*proxy_protocol = any*proxy_from = 127.0.0.1*" \
  "$("$coserved" --check-config --config "$work/coserved.ini" 2>&1 | tr '\n' ' ')"

# ---- HAProxy in front ----------------------------------------------------------
v1=$(free_port); v2=$(free_port); tlsfront=$(free_port)
cat >"$work/haproxy.cfg" <<EOF
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend v1
    bind 127.0.0.1:$v1
    default_backend v1
backend v1
    server s 127.0.0.1:$echo_tcp send-proxy check check-send-proxy inter 300ms
frontend v2
    bind 127.0.0.1:$v2
    default_backend v2
backend v2
    server s 127.0.0.1:$echo_tcp send-proxy-v2 check check-send-proxy inter 300ms
frontend tls
    bind 127.0.0.1:$tlsfront
    default_backend tls
backend tls
    server s 127.0.0.1:$echo_tls send-proxy-v2
EOF
/usr/sbin/haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
poll_for 10 port_open "$tlsfront" || { echo "haproxy did not start:"; cat "$work/haproxy.log"; exit 1; }

check "send-proxy (v1): echo through HAProxy from 127.0.0.2" "hello v1" "$(echo_from 127.0.0.2 "$v1" "hello v1")"
check "send-proxy-v2: echo through HAProxy from 127.0.0.2" "hello v2" "$(echo_from 127.0.0.2 "$v2" "hello v2")"
poll_for 10 log_has '\[echo\] 127\.0\.0\.2:[0-9]+: via proxy 127\.0\.0\.1:[0-9]+$' 2
check "coserved logs the client (127.0.0.2) from the header, and the proxy beside it" yes \
  "$(log_has '\[echo\] 127\.0\.0\.2:[0-9]+: via proxy 127\.0\.0\.1:[0-9]+$' 2 && echo yes || echo no)"
check "the sessions' close lines name the client too" yes \
  "$(poll_for 10 log_has '\[echo\] 127\.0\.0\.2:[0-9]+: closed: bytes in 9, out 9' 2 && echo yes || echo no)"

check "HAProxy sees the server up" "" "$(grep -i 'is DOWN' "$work/haproxy.log")"

# deny = 127.0.0.3 holds behind the proxy: the ACL sees the header's address.
check "deny = 127.0.0.3: refused through HAProxy" "" "$(echo_from 127.0.0.3 "$v2" "let me in")"
check "deny = 127.0.0.3: while 127.0.0.2 is served" "still me" "$(echo_from 127.0.0.2 "$v1" "still me")"
poll_for 10 log_has '\[echo\] 127\.0\.0\.3:[0-9]+: refused \(acl\)'
check "the refusal names 127.0.0.3" yes "$(log_has '\[echo\] 127\.0\.0\.3:[0-9]+: refused \(acl\)' && echo yes || echo no)"
check "counted as acl" 1 "$(rejected echo echo acl)"

# max_per_source = 2 counts the client, not HAProxy: a third from 127.0.0.4 is refused, 127.0.0.5 is not.
mkfifo "$work/hold1" "$work/hold2"
for i in 1 2; do
  nc -s 127.0.0.4 127.0.0.1 "$v2" <"$work/hold$i" >"$work/held$i" 2>/dev/null & bg_pids+=($!)
  exec {fd}>"$work/hold$i"; eval "hold_fd$i=$fd"
  printf 'held %s\n' "$i" >&"$fd"
done
# Each nc writes what comes back in its own time: wait for both answers.
poll_for 10 grep -q 'held 2' "$work/held2"
poll_for 10 grep -q 'held 1' "$work/held1"
check "two held from 127.0.0.4" "held 1|held 2" "$(cat "$work/held1")|$(cat "$work/held2")"
check "a third from 127.0.0.4 is refused (max_per_source = 2)" "" "$(echo_from 127.0.0.4 "$v2" "third")"
check "127.0.0.5 is served meanwhile" "other" "$(echo_from 127.0.0.5 "$v2" "other")"
check "counted as per_source" 1 "$(rejected echo echo per_source)"
exec {hold_fd1}>&- {hold_fd2}>&-

# TLS behind the proxy: the v2 header comes before the ClientHello.
tls_out=$(printf 'secret\n' | timeout 10 socat -t 2 - \
  "OPENSSL:127.0.0.1:$tlsfront,bind=127.0.0.2,cafile=$work/ca.pem,verify=1" 2>"$work/socat.err")
check "TLS through HAProxy with send-proxy-v2 (socat from 127.0.0.2)" "secret" "$tls_out"
check "the TLS session is logged with the client's address" yes \
  "$(poll_for 10 log_has '\[echo\] 127\.0\.0\.2:[0-9]+: tls: TLSv1\.3' && echo yes || echo no)"

# curl --haproxy-protocol (v1) to daytime: the header, then the daytime line and the close.
day=$(timeout 10 curl -s --http0.9 --haproxy-protocol "http://127.0.0.1:$daytime/")
like "curl --haproxy-protocol gets the daytime line" "[A-Z][a-z][a-z] [A-Z][a-z][a-z] *20[0-9][0-9]*" "$day"
check "coserved read curl's v1 header" yes \
  "$(poll_for 10 log_has '\[daytime\] 127\.0\.0\.1:[0-9]+: via proxy 127\.0\.0\.1:[0-9]+$' && echo yes || echo no)"
# Without a header the daytime instance says nothing: the header is never guessed.
check "daytime without a header: nothing, closed" "" "$(timeout 10 nc -q 2 127.0.0.1 "$daytime" </dev/null 2>/dev/null)"
check "counted as proxy_header" 1 "$(rejected daytime daytime proxy_header)"
# A v2 header where only v1 is taken.
check "daytime (v1 only) refuses a v2 header" "" \
  "$(printf '\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x02\x7f\x00\x00\x01\x30\x39\x00\x0d' | timeout 10 nc -q 2 127.0.0.1 "$daytime" 2>/dev/null)"
check "counted as proxy_header" 2 "$(rejected daytime daytime proxy_header)"

# Spoofing: a client that bypasses HAProxy and writes a header itself is refused unread.
check "a header from 127.0.0.2 (outside proxy_from) is refused" "" \
  "$(printf 'PROXY TCP4 10.9.9.9 127.0.0.1 1 7\r\nspoof\n' | timeout 10 nc -s 127.0.0.2 -q 2 127.0.0.1 "$echo_tcp" 2>/dev/null)"
check "counted as proxy_from" 1 "$(rejected echo echo proxy_from)"
check "no session ever ran as the spoofed 10.9.9.9" 0 "$(grep -c '10\.9\.9\.9' "$work/log")"
# The v2 health checks (check-send-proxy: a LOCAL header) are the proxy itself, and not refused.
check "HAProxy's v2 health checks arrive as LOCAL" yes \
  "$(poll_for 30 log_has 'via proxy 127\.0\.0\.1:[0-9]+ \(LOCAL: the proxy itself\)' && echo yes || echo no)"
check "HAProxy's health checks were never refused" 0 "$(rejected echo echo proxy_header)"

kill -TERM "$haproxy_pid" 2>/dev/null; wait "$haproxy_pid" 2>/dev/null; haproxy_pid=
stop_judged "coserved behind HAProxy" "$pid" "$work/log"; pid=
finish e2e_proxy
