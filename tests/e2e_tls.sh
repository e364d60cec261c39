#!/usr/bin/env bash
# End to end, TLS: the built coserved with `tls =` listeners and [metrics]
# https, certificates made here by the openssl command (a test CA, server,
# client, untrusted, expired and soon-expiring certificates), driven by real
# clients on loopback: openssl s_client (TLS 1.2 and 1.3), ncat --ssl, socat,
# gnutls-cli, curl and a python3 asyncio client (1000 connections at once).
# Every TCP service is compared byte for byte inside and outside TLS. Every
# coserved it runs is stopped with SIGTERM and judged (e2e_lib.sh:
# stop_judged). Usage: e2e_tls.sh PATH/TO/coserved
set -uo pipefail
coserved=$(readlink -f "${1:?usage: e2e_tls.sh PATH/TO/coserved}")
work=$(mktemp -d)
pid=
bg_pids=()
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
keep_log() { cp "$work/log" "/tmp/e2e-tls-$1.log"; }
source "$(dirname "$0")/e2e_lib.sh"
started_at=$(date +%s%N)

# 1000 TLS clients at once need descriptors on both sides (the server is our child).
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---- helpers -----------------------------------------------------------------

log_has() { [[ $(grep -c -E -- "$1" "$work/log") -ge ${2:-1} ]]; }
# wait_log REGEX [COUNT]: until the log holds COUNT (default 1) lines matching REGEX, at most 20s.
wait_log() { poll_for 20 log_has "$@"; }
log_count() { grep -c -E -- "$1" "$work/log"; }
size_at_least() { [[ $(stat -c %s "$1" 2>/dev/null || echo 0) -ge $2 ]]; }

# Starts coserved on $1 (a config) from / (so relative paths must be the
# config folder's), logging to $work/log; sets pid. Ready once the metrics
# endpoint is announced (it comes after every instance) or, with $2, once
# that instance is.
start() {
  : >"$work/log"
  (cd / && exec "$coserved" --config "$1") >>"$work/log" 2>&1 &
  pid=$!
  local ready=${2:-'\[metrics\] https .*: GET /metrics'} i
  for ((i = 0; i < 400; i++)); do
    log_has "$ready" && return 0
    gone "$pid" && return 1
    sleep 0.05
  done
  return 1
}
# tls_port INSTANCE / tcp_port INSTANCE: the port of its first tls (127.0.0.1) or
# tcp ([::1]) listener, from its start-up line "[I] service T: tcp A; tls B; udp -".
tls_port() { grep -m1 -o "\[$1\] service [a-z]*: .*" "$work/log" | grep -o '; tls 127\.0\.0\.1:[0-9]*' | sed 's/.*://'; }
tcp_port() { grep -m1 -o "\[$1\] service [a-z]*: .*" "$work/log" | grep -o 'tcp \[::1\]:[0-9]*' | sed 's/.*://'; }

ca=$work/ca.pem
# sc PORT INPUT WANT [s_client options...]: what openssl s_client (verifying
# the server against the test CA) receives for INPUT; it closes its side once
# WANT bytes have arrived (s_client stops reading at its input's end), at most 10s.
sc() {
  local port=$1 input=$2 want=$3 out=$work/sc.out; shift 3
  : >"$out"
  { printf %s "$input"; poll_for 10 size_at_least "$out" "$want"; } |
    timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$ca" -verify_return_error -quiet -no_ign_eof \
      -nocommands "$@" >"$out" 2>"$work/sc.err"
  cat "$out"
}
# sc_wait PORT INPUT [s_client options...]: the same, reading until the server closes.
sc_wait() {
  local port=$1 input=$2; shift 2
  printf %s "$input" | timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$ca" -verify_return_error \
    -quiet -nocommands "$@" 2>"$work/sc.err"
}
# serial PORT: the serial number of the certificate the server presents.
serial() {
  timeout 20 openssl s_client -connect "127.0.0.1:$1" -CAfile "$ca" </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null
}
socat_tls() { timeout 60 socat -t 30 - "OPENSSL:127.0.0.1:$1,cafile=$ca"; }
# (ncat half-closes TCP under TLS at its input's end, then may fail to send
# its close_notify: "Input/output error", exit 1, after a complete exchange.)
ncat_tls() { timeout 20 ncat --ssl --ssl-trustfile "$ca" --ssl-servername localhost 127.0.0.1 "$1" 2>>"$work/ncat.err"; }
gnutls_tls() { timeout 20 gnutls-cli --logfile=/dev/null --x509cafile="$ca" --port "$1" 127.0.0.1; }
plain() { timeout 60 nc -N ::1 "$1"; }

metrics_text() { timeout 20 curl -sS --cacert "$ca" "https://127.0.0.1:$mport/metrics"; }
# metric_is NAME 'LABELS' VALUE: a check that /metrics shows NAME{LABELS} VALUE
# (polled for up to 10s: the server counts a failure as it sees it, maybe
# after the client has gone).
metric_line() { metrics_text | grep -F "coserve_$1{$2} "; }
metric_has() { [[ $(metric_line "$1" "$2") == "coserve_$1{$2} $3" ]]; }
metric_is() {
  poll_for 10 metric_has "$@"
  check "/metrics: $1{$2} $3" "coserve_$1{$2} $3" "$(metric_line "$1" "$2")"
}
failures_is() { metric_is tls_handshake_failures_total "instance=\"$1\",service=\"echo\",reason=\"$2\"" "$3"; }

# spawn NAME COMMAND...: runs COMMAND in the background with its input and
# output on fifos: ${NAME}_in and ${NAME}_out are this shell's ends, ${NAME}_pid its pid.
spawn() {
  local name=$1 w r; shift
  mkfifo "$work/$name.in" "$work/$name.out"
  "$@" <"$work/$name.in" >"$work/$name.out" 2>"$work/$name.err" &
  bg_pids+=($!)
  printf -v "${name}_pid" %s $!
  exec {w}>"$work/$name.in" {r}<"$work/$name.out"
  printf -v "${name}_in" %s "$w"
  printf -v "${name}_out" %s "$r"
}
# readln FD: one line from FD (its CR dropped), waiting at most 20s.
readln() {
  local line=
  IFS= read -r -t 20 line <&"$1"
  printf '%s' "${line%$'\r'}"
}
# hold PORT [BYTES]: connects, sends BYTES (a printf format), and prints how
# many ms pass until the server closes (at most 10 s).
hold() {
  local fd t0 t1
  exec {fd}<>"/dev/tcp/127.0.0.1/$1" || { echo "cannot connect"; return; }
  [[ -n ${2:-} ]] && printf "$2" >&"$fd"
  t0=$(date +%s%N)
  timeout 10 cat <&"$fd" >/dev/null
  t1=$(date +%s%N)
  exec {fd}<&-
  echo $(((t1 - t0) / 1000000))
}

# ---- certificates ----------------------------------------------------------

cd "$work" || exit 1
openssl_quiet() { openssl "$@" >>"$work/openssl.log" 2>&1 || { echo "FAIL: openssl $*"; cat "$work/openssl.log"; exit 1; }; }
newkey() { openssl_quiet genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; chmod 600 "$1"; }
# make_ca NAME CN: a self-signed CA, NAME.pem and NAME.key.
make_ca() {
  newkey "$1.key"
  openssl_quiet req -x509 -new -key "$1.key" -out "$1.pem" -days 3650 -subj "/CN=$2"
}
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >server.ext
printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >client.ext
# leaf NAME CN SERIAL DAYS CA EXT: NAME.pem (and a new NAME.key) signed by CA.
leaf() {
  newkey "$1.key"
  openssl_quiet req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  openssl_quiet x509 -req -in "$1.csr" -CA "$5.pem" -CAkey "$5.key" -set_serial "$3" -days "$4" -extfile "$6" -out "$1.pem"
}
make_ca ca "coserve test CA"
make_ca rogue "rogue CA"
leaf server localhost 0x1001 365 ca server.ext
leaf server2 localhost 0x1002 400 ca server.ext
leaf soon localhost 0x1003 5 ca server.ext
leaf alice alice 0x2001 30 ca client.ext
leaf mallory mallory 0x3001 30 rogue client.ext
newkey wrong.key
openssl_quiet genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key && chmod 600 rsa.key
install -m 600 ca.pem certkey.pem
# An expired certificate: `openssl x509 -days` cannot go back in time; `openssl
# ca` takes explicit dates.
mkdir -p cadb && : >cadb/index.txt && echo 4001 >cadb/serial
cat >ca.cnf <<'CNF'
[ca]
default_ca = test
[test]
database = cadb/index.txt
new_certs_dir = cadb
serial = cadb/serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = copy
[any]
commonName = supplied
CNF
newkey expired.key
openssl_quiet req -new -key expired.key -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -out expired.csr
openssl_quiet ca -batch -config ca.cnf -in expired.csr -out expired.pem -notext -startdate 20200101000000Z -enddate 20210101000000Z
openssl_quiet x509 -in server.pem -outform DER -out server.der
echo "this is not a certificate" >notes.txt
printf -- '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' >garbage.pem
cp server.key loose.key && chmod 644 loose.key
cp server.key group.key && chmod 640 group.key
cp ca.pem clients-ca.pem
cd - >/dev/null || exit 1
# "2027-12-01 11:37:09 UTC", as the server prints a certificate's expiry.
expiry_of() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" '+%Y-%m-%d %H:%M:%S UTC'; }
epoch_of() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
check "test certificates made (expired one included)" "notAfter=Jan  1 00:00:00 2021 GMT" \
  "$(openssl x509 -in "$work/expired.pem" -noout -enddate)"

# ---- configuration errors ---------------------------------------------------

# config_error NAME 'INSTANCE KEYS' EXPECTED_MESSAGE: the file [echo] (tls =
# 127.0.0.1:0 plus the keys, one per line) is refused by --check-config and at
# start, exit 2, with the one line "coserved: FILE: MESSAGE" (a glob).
config_error() {
  local ini=$work/bad.ini out rc pat=${3//[/\\[}
  printf '[echo]\ntls = 127.0.0.1:0\n%s\n' "$2" >"$ini"
  out=$("$coserved" --config "$ini" --check-config 2>&1); rc=$?
  check "config error, $1: --check-config exits 2" 2 "$rc"
  like "config error, $1: the message" "coserved: $ini: $pat" "$out"
  out=$("$coserved" --config "$ini" 2>&1); rc=$?
  check "config error, $1: start exits 2 with the same line" "2 yes" "$rc $([[ $out == "coserved: $ini: "$pat ]] && echo yes || echo "no: $out")"
}
keys="tls_cert = server.pem
tls_key = server.key"
w=$work
config_error "missing tls_cert file" "tls_cert = missing.pem
tls_key = server.key" "[echo] tls_cert: $w/missing.pem: cannot read: No such file or directory"
config_error "tls_cert in DER" "tls_cert = server.der
tls_key = server.key" "[echo] tls_cert: $w/server.der: not PEM (expected a certificate between -----BEGIN and -----END lines)"
config_error "tls_cert a text file" "tls_cert = notes.txt
tls_key = server.key" "[echo] tls_cert: $w/notes.txt: not PEM (expected a certificate between -----BEGIN and -----END lines)"
config_error "tls_cert PEM armour around garbage" "tls_cert = garbage.pem
tls_key = server.key" "[echo] tls_cert: $w/garbage.pem: no usable certificate: ?*"
# (OpenSSL compares a key of the certificate's type as it loads it; the server's
# own "does not match the certificate" comes for a key of another type.)
config_error "key not matching the certificate" "tls_cert = server.pem
tls_key = wrong.key" "[echo] tls_key: $w/wrong.key: no usable private key: key values mismatch"
config_error "key of another type than the certificate's" "tls_cert = server.pem
tls_key = rsa.key" "[echo] tls_key: $w/rsa.key: does not match the certificate in $w/server.pem (?*)"
config_error "key mode 0644" "tls_cert = server.pem
tls_key = loose.key" "[echo] tls_key: $w/loose.key: permissions 0644 let group or others read or change the private key; chmod 600 it"
config_error "key mode 0640" "tls_cert = server.pem
tls_key = group.key" "[echo] tls_key: $w/group.key: permissions 0640 let group or others read or change the private key; chmod 600 it"
config_error "a certificate as tls_key" "tls_cert = server.pem
tls_key = certkey.pem" "[echo] tls_key: $w/certkey.pem: no usable private key: ?*"
config_error "tls_min_version = 1.1" "$keys
tls_min_version = 1.1" '[echo] tls_min_version: expected one of 1.2, 1.3, got "1.1"'
config_error "tls = without tls_cert" "tls_key = server.key" \
  "[echo] tls_cert: is needed by tls (a PEM file: the certificate, then its chain)"
config_error "tls = without tls_cert or any tls_ key" "" \
  "[echo] tls_cert: is needed by tls (a PEM file: the certificate, then its chain)"
config_error "tls = without tls_key" "tls_cert = server.pem" \
  "[echo] tls_key: is needed for TLS (a PEM file with the certificate's private key)"
config_error "tls_client_auth = require without tls_client_ca" "$keys
tls_client_auth = require" "[echo] tls_client_ca: is needed by tls_client_auth (the CAs client certificates come from)"
config_error "tls_client_ca without tls_client_auth" "$keys
tls_client_ca = ca.pem" "[echo] tls_client_ca: is used only with tls_client_auth = optional or require"
config_error "tls_client_ca not PEM" "$keys
tls_client_auth = optional
tls_client_ca = notes.txt" "[echo] tls_client_ca: $w/notes.txt: not PEM (expected CA certificates between -----BEGIN and -----END lines)"
config_error "tls_client_auth = maybe" "$keys
tls_client_auth = maybe" '[echo] tls_client_auth: expected one of none, optional, require, got "maybe"'
config_error "bad tls_ciphers" "$keys
tls_ciphers = NO-SUCH-CIPHER" "[echo] tls_ciphers: no cipher in NO-SUCH-CIPHER is usable (?*)"
config_error "bad tls_ciphersuites" "$keys
tls_ciphersuites = TLS_NO_SUCH_SUITE" "[echo] tls_ciphersuites: no TLS 1.3 cipher suite in TLS_NO_SUCH_SUITE is usable (?*)"
config_error "tls_handshake_timeout under 100ms" "$keys
tls_handshake_timeout = 50ms" "[echo] tls_handshake_timeout: expected a duration from 100ms to *, got *"

# [metrics] https: the same keys, the same checks.
printf '[metrics]\nhttps = 127.0.0.1:0\n' >"$work/bad.ini"
out=$("$coserved" --config "$work/bad.ini" --check-config 2>&1); rc=$?
check "config error, [metrics] https without tls_cert" \
  "2 coserved: $work/bad.ini: [metrics] tls_cert: is needed by https (a PEM file: the certificate, then its chain)" "$rc $out"
printf '[metrics]\nhttps = 127.0.0.1:0\ntls_cert = server.pem\ntls_key = loose.key\n' >"$work/bad.ini"
out=$("$coserved" --config "$work/bad.ini" 2>&1); rc=$?
check "config error, [metrics] tls_key mode 0644" \
  "2 coserved: $work/bad.ini: [metrics] tls_key: $work/loose.key: permissions 0644 let group or others read or change the private key; chmod 600 it" \
  "$rc $out"

# --check-config: relative paths are the config folder's, and each TLS
# instance shows its certificate.
cat >"$work/ok.ini" <<INI
[metrics]
https = 127.0.0.1:0
tls_cert = server.pem
tls_key = server.key
[echo]
tls = 127.0.0.1:0
tls_cert = soon.pem
tls_key = soon.key
INI
out=$(cd / && "$coserved" --config "$work/ok.ini" --check-config 2>&1); rc=$?
check "--check-config with TLS exits 0 (run from /: paths relative to the config's folder)" 0 "$rc"
check "--check-config shows the resolved tls_cert" "    tls_cert = \"$work/soon.pem\"" "$(grep 'tls_cert =' <<<"$out")"
check "--check-config prints the certificate of [metrics] and of [echo]" \
  "    certificate: subject CN=localhost, expires $(expiry_of "$work/server.pem")
    certificate: subject CN=localhost, expires $(expiry_of "$work/soon.pem")" "$(grep '^    certificate: ' <<<"$out")"

# ---- tcp and tls on the same address, both with port 0 ---------------------

cat >"$work/same.ini" <<INI
[server]
shutdown_grace = 1s
[echo]
tcp = 127.0.0.1:0
tls = 127.0.0.1:0
tls_cert = server.pem
tls_key = server.key
INI
start "$work/same.ini" '\[echo\] service echo: '; rc=$?
check "tcp = 127.0.0.1:0 beside tls = 127.0.0.1:0 in one instance: starts" "0 running" "$rc $(gone "$pid" && echo exited || echo running)"
line=$(grep -m1 -o 'service echo: .*' "$work/log")
like "and announces both listeners" "service echo: tcp 127.0.0.1:[0-9]*; tls 127.0.0.1:[0-9]*; udp -" "$line"
p_tcp=$(sed -n 's/.*tcp 127\.0\.0\.1:\([0-9]*\);.*/\1/p' <<<"$line")
p_tls=$(sed -n 's/.*tls 127\.0\.0\.1:\([0-9]*\);.*/\1/p' <<<"$line")
if [[ -n $p_tcp && -n $p_tls ]]; then
  check "and echoes in plain TCP" "plain" "$(printf 'plain\n' | timeout 10 nc -N 127.0.0.1 "$p_tcp")"
  check "and inside TLS" "secret" "$(printf 'secret\n' | socat_tls "$p_tls")"
fi
[[ $(log_count 'runtime error|Sanitizer') -gt 0 ]] && { echo "  its log:"; sed 's/^/    /' "$work/log" | head -20; }
keep_log same
stop_judged "coserved with tcp and tls on 127.0.0.1:0" "$pid" "$work/log"; pid=

# ---- reloads that change an instance's TLS listeners and settings -----------

cat >"$work/rl.ini" <<INI
[server]
shutdown_grace = 1s
[echo]
tcp = [::1]:0
tls = 127.0.0.1:0
tls_cert = server.pem
tls_key = server.key
INI
start "$work/rl.ini" '\[echo\] service echo: ' || { cat "$work/log"; echo "FAIL: coserved did not start"; exit 1; }
p=$(tls_port echo)
check "reload of settings: TLS 1.2 served before" "v12" "$(sc "$p" $'v12\n' 4 -tls1_2)"
echo "tls_min_version = 1.3" >>"$work/rl.ini"
kill -HUP "$pid"
wait_log 'reload: 0 started, 1 changed, 0 stopped, 0 unchanged'
check "tls_min_version changed at reload: the instance is rebuilt on the same port" "$p" "$(grep -o '\[echo\] service echo: .*' "$work/log" | tail -1 | grep -o '; tls 127\.0\.0\.1:[0-9]*' | sed 's/.*://')"
check "and refuses TLS 1.2 now" "" "$(sc_wait "$p" $'v12\n' -tls1_2)"
check "and serves TLS 1.3" "v13" "$(sc "$p" $'v13\n' 4 -tls1_3)"
# tls = [::1]:0 added beside tcp = [::1]:0 (the same address, both port 0).
sed -i 's/^tls = 127\.0\.0\.1:0$/tls = 127.0.0.1:0, [::1]:0/' "$work/rl.ini"
kill -HUP "$pid"
reloaded_again() { log_has 'reload: 0 started, 1 changed, 0 stopped, 0 unchanged' 2 || gone "$pid"; }
poll_for 20 reloaded_again
check "tls = [::1]:0 added at reload beside tcp = [::1]:0: the server survives the reload" "running 2" \
  "$(gone "$pid" && echo exited || echo running) $(log_count 'reload: 0 started, 1 changed')"
line=$(grep '\[echo\] service echo: ' "$work/log" | tail -1)
like "and announces the listeners (127.0.0.1 kept)" "*service echo: tcp \[::1\]:[0-9]*; tls 127.0.0.1:$p, \[::1\]:[0-9]*; udp -" "$line"
p6=$(sed -n 's/.*; tls 127\.0\.0\.1:[0-9]*, \[::1\]:\([0-9]*\);.*/\1/p' <<<"$line")
if [[ -n $p6 ]]; then
  check "the new TLS listener on [::1] serves (ncat)" "six" \
    "$(printf 'six\n' | timeout 20 ncat --ssl --ssl-trustfile "$ca" --ssl-servername localhost ::1 "$p6" 2>>"$work/ncat.err")"
  check "the kept one on 127.0.0.1 too" "four" "$(sc "$p" $'four\n' 5 -tls1_3)"
fi
[[ $(log_count 'runtime error|Sanitizer') -gt 0 ]] && { echo "  its log:"; sed 's/^/    /' "$work/log" | tail -5; }
keep_log reload-listeners
stop_judged "coserved reloaded with new TLS listeners and settings" "$pid" "$work/log"; pid=

# ---- the main server -------------------------------------------------------

mkdir -p "$work/files/docs"
printf 'hello over tls\nsecond line of the small file\n' >"$work/files/small.txt"
echo doc >"$work/files/docs/readme.txt"
head -c $((64 << 20)) /dev/urandom >"$work/files/big.bin"
head -c $((1 << 20)) /dev/urandom >"$work/one.bin"

# tls_instance NAME SERVICE [EXTRA KEYS] [CERTIFICATE KEYS]: an instance serving
# SERVICE only inside TLS (with server.pem unless told).
tls_instance() { printf '[%s]\nservice = %s\ntls = 127.0.0.1:0\n%s\n%s\n' "$1" "${2:-echo}" "${4:-$keys}" "${3:-}"; }
# both NAME [EXTRA KEYS]: an instance in plain TCP on [::1] and in TLS on 127.0.0.1.
both() { printf '[%s]\ntcp = [::1]:0\ntls = 127.0.0.1:0\n%s\n%s\n' "$1" "$keys" "${2:-}"; }
{
  # Several event-loop threads (4 under TSan, COSERVE_TEST_THREADS): handshakes,
  # reloads and chat between TLS and plaintext members race as they would in use.
  printf '[server]\nlog_level = debug\nshutdown_grace = 2s\nmax_connections = 5000\nthreads = %s\n' "${COSERVE_TEST_THREADS:-2}"
  printf '[metrics]\nhttps = 127.0.0.1:0, [::1]:0\n%s\n' "$keys"
  both echo "max_connections = 2000
max_per_source = 0
tls_handshake_timeout = 60s"
  both uppercase; both adder; both hello; both daytime; both time; both discard; both chargen; both chat
  both files "root = files
allow_upload = true"
  tls_instance strict echo "tls_min_version = 1.3"
  tls_instance ciphers echo "tls_ciphers = ECDHE-ECDSA-AES256-GCM-SHA384
tls_ciphersuites = TLS_CHACHA20_POLY1305_SHA256"
  tls_instance slow echo "tls_handshake_timeout = 1s"
  tls_instance mtls echo "tls_client_auth = require
tls_client_ca = clients-ca.pem"
  tls_instance mtls_opt echo "tls_client_auth = optional
tls_client_ca = ca.pem"
  tls_instance soon echo "" "tls_cert = soon.pem
tls_key = soon.key"
  tls_instance expired echo "" "tls_cert = expired.pem
tls_key = expired.key"
} >"$work/main.ini"

start "$work/main.ini" || { cat "$work/log"; echo "FAIL: coserved did not start"; exit 1; }
mport=$(grep -m1 -o 'https 127\.0\.0\.1:[0-9]*: GET /metrics' "$work/log" | sed 's/https 127\.0\.0\.1:\([0-9]*\):.*/\1/')
mport6=$(grep -m1 -o 'https \[::1\]:[0-9]*: GET /metrics' "$work/log" | sed 's/.*\]:\([0-9]*\):.*/\1/')
like "start-up line: tcp and tls listeners" "*info \[echo\] service echo: tcp \[::1\]:[0-9]*; tls 127.0.0.1:[0-9]*; udp -" \
  "$(grep -m1 '\[echo\] service echo:' "$work/log")"
like "start-up line: a TLS-only instance" "*info \[strict\] service echo: tcp -; tls 127.0.0.1:[0-9]*; udp -" \
  "$(grep -m1 '\[strict\] service echo:' "$work/log")"
check "start-up line: [metrics] https on IPv4 and IPv6" 2 "$(log_count '\[metrics\] https (127\.0\.0\.1|\[::1\]):[0-9]+: GET /metrics, /healthz, /instances$')"

soon_warning="$work/soon.pem: the certificate expires on $(expiry_of "$work/soon.pem") (in 5 days)"
expired_warning="$work/expired.pem: the certificate expired on 2021-01-01 00:00:00 UTC"
check "a certificate expiring in 5 days: warned at start" 1 "$(grep -c -F " warning [soon] $soon_warning" "$work/log")"
check "an expired certificate: warned at start" 1 "$(grep -c -F " warning [expired] $expired_warning" "$work/log")"
check "certificates far from expiry: no warning" 0 "$(grep -c -E 'warning \[(echo|metrics)\].*certificate' "$work/log")"

# -- every service, inside TLS and outside ------------------------------------

# echo: 1 MiB of random bytes through socat and through nc; lines through
# s_client (TLS 1.2 and 1.3), ncat, gnutls-cli and socat.
p=$(tls_port echo); pp=$(tcp_port echo)
socat_tls "$p" <"$work/one.bin" >"$work/one.tls"
plain "$pp" <"$work/one.bin" >"$work/one.plain"
check "echo: 1 MiB of random bytes through socat come back unchanged" yes "$(cmp -s "$work/one.bin" "$work/one.tls" && echo yes || echo "no: $(stat -c %s "$work/one.tls") bytes")"
check "echo: and the same through plain TCP" yes "$(cmp -s "$work/one.bin" "$work/one.plain" && echo yes || echo no)"
check "echo: openssl s_client, TLS 1.3" "tls13 line" "$(sc "$p" $'tls13 line\n' 11 -tls1_3)"
wait_log '\[echo\] 127\.0\.0\.1:[0-9]+: tls: TLSv1\.3 [A-Z0-9_]+, no client certificate$'
check "echo: the debug log names version and cipher" 1 "$(log_count '\[echo\] 127\.0\.0\.1:[0-9]+: tls: TLSv1\.3 [A-Z0-9_]+, no client certificate$' | sed 's/^[1-9][0-9]*$/1/')"
check "echo: openssl s_client, TLS 1.2" "tls12 line" "$(sc "$p" $'tls12 line\n' 11 -tls1_2)"
check "echo: ncat --ssl" "ncat line" "$(printf 'ncat line\n' | ncat_tls "$p")"
check "echo: gnutls-cli" "gnutls line" "$(printf 'gnutls line\n' | gnutls_tls "$p")"
check "echo: socat" "socat line" "$(printf 'socat line\n' | socat_tls "$p")"
wait_log '\[echo\] 127\.0\.0\.1:[0-9]+: closed: bytes in 11, out 11,'
check "echo: the close is logged with the application's byte counts" 1 "$(log_count '\[echo\] 127\.0\.0\.1:[0-9]+: closed: bytes in 11, out 11,' | sed 's/^[1-9][0-9]*$/1/')"

# same NAME INPUT_FILE CLIENT: a check that CLIENT (a function taking the
# port) gets inside TLS exactly what nc gets outside for INPUT_FILE.
same() {
  local name=$1 input=$2 client=$3
  "$client" "$(tls_port "$name")" <"$input" >"$work/$name.tls"
  plain "$(tcp_port "$name")" <"$input" >"$work/$name.plain"
  check "$name: inside TLS ($client) as outside, byte for byte ($(stat -c %s "$work/$name.plain") bytes)" yes \
    "$(cmp -s "$work/$name.tls" "$work/$name.plain" && [[ -s $work/$name.plain ]] && echo yes || echo "no: $(od -c "$work/$name.tls" | head -3)")"
}
printf 'straße café ﬁ\nhello upper\n' >"$work/in.upper"
same uppercase "$work/in.upper" ncat_tls
check "uppercase: the answer" $'STRASSE CAFÉ FI\nHELLO UPPER' "$(cat "$work/uppercase.tls")"
printf '50,40\n1.5 + 2.25\n0.1,0.2\n99999999999999999999,1\nabc\n\n7,8' >"$work/in.adder"
same adder "$work/in.adder" gnutls_tls
check "adder: the answer (the last line, unfinished at the close, summed too)" \
  $'90\n3.75\n0.3\n100000000000000000000\nERR not a number: "abc"\nERR empty line\n15' "$(cat "$work/adder.tls")"
printf 'hi\nhow are you\n' >"$work/in.hello"
same hello "$work/in.hello" socat_tls
check "hello: the answer (the banner ends in CRLF)" $'Hi, we are connected!\r\nhello\nhello\n.' "$(cat "$work/hello.tls"; echo .)"
files_session() { printf 'LIST\nLIST docs\nSIZE small.txt\nSHA256 small.txt\nGET small.txt\nGET small.txt 10\nGET small.txt 999\nGET ../x\nGET nothere\nGET docs\nBOGUS\nQUIT\n'; }
files_session >"$work/in.files"
same files "$work/in.files" socat_tls
check "files: LIST, SIZE, SHA256, GET, GET with offset, errors" \
  "OK 3
f 67108864 big.bin
d 0 docs
f 45 small.txt
OK 1
f 4 readme.txt
OK 45
OK $(sha256sum <"$work/files/small.txt" | cut -d' ' -f1)
OK 45
hello over tls
second line of the small file
OK 35
 tls
second line of the small file
ERR bad offset
ERR forbidden
ERR not found
ERR is a directory
ERR bad request
OK bye" "$(cat "$work/files.tls")"

# discard: 1 MiB in, nothing out, both counted alike.
p=$(tls_port discard)
check "discard: 1 MiB through socat, nothing comes back" 0 "$(socat_tls "$p" <"$work/one.bin" | wc -c)"
check "discard: and through plain TCP" 0 "$(plain "$(tcp_port discard)" <"$work/one.bin" | wc -c)"
wait_log '\[discard\] (127\.0\.0\.1|\[::1\]):[0-9]+: closed: bytes in 1048576, out 0,' 2
check "discard: both closes logged with bytes in 1048576, out 0" 2 "$(log_count '\[discard\] (127\.0\.0\.1|\[::1\]):[0-9]+: closed: bytes in 1048576, out 0,')"

# chargen: the first 20000 bytes (more than one 95-line period).
tls_head() { timeout 20 socat -u "OPENSSL:127.0.0.1:$1,cafile=$ca" - 2>/dev/null | head -c "$2"; }
tls_head "$(tls_port chargen)" 20000 >"$work/chargen.tls"
timeout 20 nc ::1 "$(tcp_port chargen)" </dev/null | head -c 20000 >"$work/chargen.plain"
check "chargen: the first 20000 bytes inside TLS as outside" "yes 20000" \
  "$(cmp -s "$work/chargen.tls" "$work/chargen.plain" && echo yes || echo no) $(stat -c %s "$work/chargen.tls")"
check "chargen: the RFC 864 pattern's first line" ' !"#$%&'\''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefg' "$(head -1 "$work/chargen.tls" | tr -d '\r')"

# daytime and time: the clock moves, so the shape, and the times within 2 s.
d_tls=$(sc_wait "$(tls_port daytime)" "")
d_plain=$(timeout 20 nc -N ::1 "$(tcp_port daytime)" </dev/null)
ctime_re='^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 123][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}'$'\r''$'
check "daytime: inside TLS (s_client), one ctime line ending in CRLF" yes "$([[ $d_tls =~ $ctime_re ]] && echo yes || echo "no: $(printf %q "$d_tls")")"
check "daytime: the same shape and length outside" "yes ${#d_tls}" "$([[ $d_plain =~ $ctime_re ]] && echo yes || echo no) ${#d_plain}"
dt=$(( $(date -d "${d_tls%$'\r'}" +%s) - $(date -d "${d_plain%$'\r'}" +%s) ))
check "daytime: the two times within 2s ($dt s)" yes "$([[ ${dt#-} -le 2 ]] && echo yes || echo no)"
t_tls=$(ncat_tls "$(tls_port time)" </dev/null | od -An -tu1 | xargs)
t_plain=$(timeout 20 nc -N ::1 "$(tcp_port time)" </dev/null | od -An -tu1 | xargs)
be() { local s=0 b; for b in $1; do s=$((s * 256 + b)); done; echo "$s"; }
now1900=$(($(date +%s) + 2208988800))
check "time: 4 bytes inside TLS (ncat) as outside" "4 4" "$(wc -w <<<"$t_tls") $(wc -w <<<"$t_plain")"
dt=$(($(be "$t_tls") - $(be "$t_plain")))
check "time: the two within 2s of each other ($dt s) and of now" "yes yes" \
  "$([[ ${dt#-} -le 2 ]] && echo yes || echo no) $(d=$(($(be "$t_tls") - now1900)); [[ ${d#-} -le 2 ]] && echo yes || echo no)"

# files: 64 MiB through TLS, checked with sha256sum; PUT; SIZE and SHA256.
p=$(tls_port files)
t0=$(date +%s%N)
printf 'GET big.bin\n' | socat_tls "$p" >"$work/big.out"
ms=$((($(date +%s%N) - t0) / 1000000))
first=$(head -1 "$work/big.out")
check "files: GET of 64 MiB through TLS: the reply line" "OK 67108864" "$first"
check "files: and the bytes' SHA-256 (${ms} ms)" "$(sha256sum <"$work/files/big.bin" | cut -d' ' -f1)" \
  "$(tail -c +$((${#first} + 2)) "$work/big.out" | sha256sum | cut -d' ' -f1)"
rm -f "$work/big.out"
check "files: SHA256 and SIZE of it through TLS" "OK $(sha256sum <"$work/files/big.bin" | cut -d' ' -f1)
OK 67108864" "$(printf 'SHA256 big.bin\nSIZE big.bin\n' | socat_tls "$p")"
put_session() { printf 'PUT %s 1048576\n' "$1"; cat "$work/one.bin"; printf 'SIZE %s\nSHA256 %s\nQUIT\n' "$1" "$1"; }
put_session up.bin | socat_tls "$p" >"$work/put.tls"
check "files: PUT of 1 MiB through TLS" "OK send
OK stored
OK 1048576
OK $(sha256sum <"$work/one.bin" | cut -d' ' -f1)
OK bye" "$(cat "$work/put.tls")"
check "files: the uploaded file is the client's, byte for byte" yes "$(cmp -s "$work/one.bin" "$work/files/up.bin" && echo yes || echo no)"
rm -f "$work/files/up.bin"
put_session up.bin | plain "$(tcp_port files)" >"$work/put.plain"
check "files: the PUT's replies outside TLS are the same" yes "$(cmp -s "$work/put.tls" "$work/put.plain" && echo yes || echo no)"
printf 'GET big.bin 60000000\n' | socat_tls "$p" >"$work/big.out"
first=$(head -1 "$work/big.out")
check "files: GET big.bin 60000000 through TLS: the reply line" "OK $(((64 << 20) - 60000000))" "$first"
check "files: and the bytes' SHA-256" "$(tail -c +60000001 "$work/files/big.bin" | sha256sum | cut -d' ' -f1)" \
  "$(tail -c +$((${#first} + 2)) "$work/big.out" | sha256sum | cut -d' ' -f1)"
rm -f "$work/big.out"

# chat: a TLS member (s_client) and a plain one (nc) in the same room.
spawn tchat timeout 60 openssl s_client -connect "127.0.0.1:$(tls_port chat)" -CAfile "$ca" -verify_return_error -quiet -no_ign_eof -nocommands
welcome=$(readln "$tchat_out")
like "chat: the TLS member's welcome" '\* welcome to #lobby, you are guest[0-9]* (type /help for commands)' "$welcome"
tguest=$(grep -o 'guest[0-9]*' <<<"$welcome")
spawn pchat timeout 60 nc -N ::1 "$(tcp_port chat)"
welcome=$(readln "$pchat_out")
like "chat: the plain member's welcome" '\* welcome to #lobby, you are guest[0-9]* (type /help for commands)' "$welcome"
pguest=$(grep -o 'guest[0-9]*' <<<"$welcome")
check "chat: the TLS member sees the plain one join" "* $pguest joined #lobby" "$(readln "$tchat_out")"
printf '/nick tlsuser\n' >&"$tchat_in"
check "chat: /nick through TLS" "* you are now known as tlsuser" "$(readln "$tchat_out")"
check "chat: the plain member sees it" "* $tguest is now known as tlsuser" "$(readln "$pchat_out")"
printf 'hello from tls\n' >&"$tchat_in"
check "chat: the plain member gets the TLS member's line" "<tlsuser> hello from tls" "$(readln "$pchat_out")"
printf 'hello from plain\n' >&"$pchat_in"
check "chat: the TLS member gets the plain member's line" "<$pguest> hello from plain" "$(readln "$tchat_out")"
printf '/who\n' >&"$pchat_in"
check "chat: /who lists both" "* 2 in #lobby: $pguest, tlsuser" "$(readln "$pchat_out")"
printf '/quit done\n' >&"$tchat_in"
check "chat: /quit through TLS" "* bye" "$(readln "$tchat_out")"
check "chat: the plain member sees the TLS member leave" "* tlsuser left (done)" "$(readln "$pchat_out")"
exec {tchat_in}>&- {pchat_in}>&-
wait "$tchat_pid" "$pchat_pid" 2>/dev/null
exec {tchat_out}<&- {pchat_out}<&-

# -- handshake failures ----------------------------------------------------------

# [strict] (tls_min_version = 1.3): plaintext, then a TLS 1.2 client.
p=$(tls_port strict)
out=$(printf 'hello\n' | timeout 10 nc -N 127.0.0.1 "$p"); rc=$?
check "plaintext to a TLS port: nothing echoed, closed by the server" "0 " "$rc $out"
failures_is strict plaintext 1
check "a TLS 1.2 client where tls_min_version = 1.3: nothing echoed" "" "$(sc_wait "$p" $'hello\n' -tls1_2)"
failures_is strict version 1
check "a TLS 1.3 client there: served" "thirteen" "$(sc "$p" $'thirteen\n' 9 -tls1_3)"
metric_is tls_handshakes_total 'instance="strict",service="echo",version="TLSv1.3"' 1
metric_is tls_handshakes_total 'instance="strict",service="echo",version="TLSv1.2"' 0
like "the first failure from a source is logged at info" \
  "* info \[strict\] 127.0.0.1:[0-9]*: tls handshake failed (plaintext): *; logged once a minute per source" \
  "$(grep '\[strict\].*tls handshake failed (plaintext)' "$work/log")"
like "the next one within the minute at debug" "* debug \[strict\] 127.0.0.1:[0-9]*: tls handshake failed (version): *" \
  "$(grep '\[strict\].*tls handshake failed (version)' "$work/log")"

# [ciphers]: tls_ciphers for TLS 1.2, tls_ciphersuites for TLS 1.3.
p=$(tls_port ciphers)
check "tls_ciphers: a TLS 1.2 client is served" "c12" "$(sc "$p" $'c12\n' 4 -tls1_2)"
wait_log '\[ciphers\] .*: tls: TLSv1\.2 ECDHE-ECDSA-AES256-GCM-SHA384, no client certificate$'
check "tls_ciphers: with the configured cipher" 1 "$(log_count '\[ciphers\] .*: tls: TLSv1\.2 ECDHE-ECDSA-AES256-GCM-SHA384, no client certificate$')"
check "tls_ciphersuites: a TLS 1.3 client is served" "c13" "$(sc "$p" $'c13\n' 4 -tls1_3)"
wait_log '\[ciphers\] .*: tls: TLSv1\.3 TLS_CHACHA20_POLY1305_SHA256, no client certificate$'
check "tls_ciphersuites: with the configured suite" 1 "$(log_count '\[ciphers\] .*: tls: TLSv1\.3 TLS_CHACHA20_POLY1305_SHA256, no client certificate$')"
check "a TLS 1.2 client with no cipher in common: nothing echoed" "" "$(sc_wait "$p" $'x\n' -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256)"
failures_is ciphers no_shared_cipher 1
metric_is tls_handshakes_total 'instance="ciphers",service="echo",version="TLSv1.2"' 1
metric_is tls_handshakes_total 'instance="ciphers",service="echo",version="TLSv1.3"' 1

# [expired]: the client refuses the certificate and says so with an alert.
check "an expired certificate: s_client refuses it" "" "$(sc_wait "$(tls_port expired)" $'x\n')"
check "and says why" 1 "$(grep -c 'certificate has expired' "$work/sc.err")"
failures_is expired peer_alert 1

# [slow] (tls_handshake_timeout = 1s): silence, and half a ClientHello, are
# closed at the timeout; half a ClientHello then a close is "closed".
p=$(tls_port slow)
hold "$p" >"$work/hold.silent" &
h1=$!
hold "$p" '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x01\x02\x03' >"$work/hold.half" &
h2=$!
wait "$h1" "$h2"
for what in silent half; do
  ms=$(cat "$work/hold.$what")
  check "handshake timeout 1s, a client sending $what: closed after 0.9-3s (${ms}ms)" yes \
    "$([[ $ms =~ ^[0-9]+$ && $ms -ge 900 && $ms -le 3000 ]] && echo yes || echo no)"
done
failures_is slow timeout 2
like "the timeout logged" "* \[slow\] 127.0.0.1:[0-9]*: tls handshake failed (timeout): not finished within 1s*" \
  "$(grep -m1 'tls handshake failed (timeout)' "$work/log")"
exec {fd}<>"/dev/tcp/127.0.0.1/$p" && printf '\x16\x03\x01\x02\x00\x01\x00' >&"$fd" && exec {fd}>&-
failures_is slow closed 1
like "a client gone mid-handshake is logged at debug only" "* debug \[slow\] 127.0.0.1:[0-9]*: tls handshake failed (closed): *" \
  "$(grep 'tls handshake failed (closed)' "$work/log")"

# Mutual TLS: require, then optional.
p=$(tls_port mtls)
alice=(-cert "$work/alice.pem" -key "$work/alice.key")
mallory=(-cert "$work/mallory.pem" -key "$work/mallory.key")
check "require: alice (a client certificate from the CA) is served" "hi alice" "$(sc "$p" $'hi alice\n' 9 "${alice[@]}")"
wait_log '\[mtls\] 127\.0\.0\.1:[0-9]+ CN=alice: closed: '
like "require: the log names the client's subject, version and cipher" \
  "* debug \[mtls\] 127.0.0.1:[0-9]* CN=alice: tls: TLSv1.3 TLS_*, client certificate verified" \
  "$(grep '\[mtls\] .*CN=alice: tls: ' "$work/log")"
like "require: and so does the close" "* debug \[mtls\] 127.0.0.1:[0-9]* CN=alice: closed: bytes in 9, out 9, *" \
  "$(grep '\[mtls\] .*CN=alice: closed' "$work/log")"
check "require: alice with TLS 1.2 too" "alice12" "$(sc "$p" $'alice12\n' 8 -tls1_2 "${alice[@]}")"
check "require: no client certificate (TLS 1.3): nothing echoed" "" "$(sc_wait "$p" $'nocert\n' -tls1_3)"
failures_is mtls no_client_certificate 1
check "require: no client certificate (TLS 1.2): nothing echoed" "" "$(sc_wait "$p" $'nocert\n' -tls1_2)"
failures_is mtls no_client_certificate 2
check "require: a certificate from another CA: nothing echoed" "" "$(sc_wait "$p" $'mallory\n' "${mallory[@]}")"
failures_is mtls bad_client_certificate 1
p=$(tls_port mtls_opt)
check "optional: alice is served" "opt alice" "$(sc "$p" $'opt alice\n' 10 "${alice[@]}")"
wait_log '\[mtls_opt\] 127\.0\.0\.1:[0-9]+ CN=alice: tls: TLSv1\.3 [A-Z0-9_]+, client certificate verified$'
check "optional: alice's subject logged" 1 "$(log_count '\[mtls_opt\] 127\.0\.0\.1:[0-9]+ CN=alice: tls: TLSv1\.3 [A-Z0-9_]+, client certificate verified$')"
check "optional: no client certificate, served too" "opt none" "$(sc "$p" $'opt none\n' 9)"
wait_log '\[mtls_opt\] 127\.0\.0\.1:[0-9]+: tls: TLSv1\.3 [A-Z0-9_]+, no client certificate$'
check "optional: logged without a subject" 1 "$(log_count '\[mtls_opt\] 127\.0\.0\.1:[0-9]+: tls: TLSv1\.3 [A-Z0-9_]+, no client certificate$')"
check "optional: a certificate from another CA is refused" "" "$(sc_wait "$p" $'mallory\n' "${mallory[@]}")"
failures_is mtls_opt bad_client_certificate 1
metric_is tls_handshakes_total 'instance="mtls_opt",service="echo",version="TLSv1.3"' 2

# -- https metrics -----------------------------------------------------------------

check "https /healthz through curl (IPv4), verified against the CA" 200 \
  "$(timeout 20 curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" "https://127.0.0.1:$mport/healthz")"
check "https /healthz through curl (IPv6)" 200 \
  "$(timeout 20 curl -s -g -o /dev/null -w '%{http_code}' --cacert "$ca" "https://[::1]:$mport6/healthz")"
check "https /instances lists the instances" yes "$(timeout 20 curl -s --cacert "$ca" "https://127.0.0.1:$mport/instances" | grep -q '"mtls_opt"' && echo yes || echo no)"
check "plain http to the https endpoint: no answer" "000" "$(timeout 20 curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/healthz")"
metric_is tls_handshake_failures_total 'instance="metrics",service="metrics",reason="plaintext"' 1
metric_is tls_certificate_expiry_timestamp_seconds "instance=\"echo\",service=\"echo\",file=\"$work/server.pem\"" "$(epoch_of "$work/server.pem")"
metric_is tls_certificate_expiry_timestamp_seconds "instance=\"metrics\",service=\"metrics\",file=\"$work/server.pem\"" "$(epoch_of "$work/server.pem")"
metric_is tls_certificate_expiry_timestamp_seconds "instance=\"expired\",service=\"echo\",file=\"$work/expired.pem\"" "$(epoch_of "$work/expired.pem")"
metric_is tls_handshake_failures_total 'instance="echo",service="echo",reason="other"' 0

# -- 1000 TLS clients at once ------------------------------------------------------

cat >"$work/many.py" <<'PY'
# many.py PORT CAFILE N: N TLS connections open at once to an echo port; says
# "open K" once all are up, waits for a line on stdin, then each sends its own
# line and checks its own echo.
import asyncio, ssl, sys, time

async def main(port, cafile, n):
    ctx = ssl.create_default_context(cafile=cafile)
    t0 = time.monotonic()
    async def connect():
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=ctx, ssl_handshake_timeout=120), 150)
    results = await asyncio.gather(*(connect() for _ in range(n)), return_exceptions=True)
    conns = [c for c in results if not isinstance(c, BaseException)]
    errors = [repr(c) for c in results if isinstance(c, BaseException)]
    t1 = time.monotonic()
    print(f"open {len(conns)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    async def talk(i, r, w):
        line = f"client {i} of {n}: {i * 7919 % 100003}\n".encode()
        w.write(line)
        await w.drain()
        return await asyncio.wait_for(r.readline(), 120) == line
    t2 = time.monotonic()
    oks = await asyncio.gather(*(talk(i, r, w) for i, (r, w) in enumerate(conns)), return_exceptions=True)
    good = sum(1 for o in oks if o is True)
    errors += [repr(o) for o in oks if isinstance(o, BaseException)]
    t3 = time.monotonic()
    for r, w in conns:
        w.close()
    await asyncio.gather(*(w.wait_closed() for r, w in conns), return_exceptions=True)
    print(f"echoed {good}", flush=True)
    print(f"connect and handshake {t1 - t0:.2f}s, echo {t3 - t2:.2f}s, errors {len(errors)}{': ' + errors[0] if errors else ''}", flush=True)

asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
PY
before=$(metric_line tls_handshakes_total 'instance="echo",service="echo",version="TLSv1.3"' | awk '{print $2}')
spawn many timeout 240 python3 "$work/many.py" "$(tls_port echo)" "$ca" 1000
check "1000 TLS clients: all connected and handshaken at once" "open 1000" "$(IFS= read -r -t 200 l <&"$many_out"; echo "$l")"
kill -USR1 "$pid"
wait_log 'status: [0-9]+ connection\(s\) open'
open_now=$(grep -o 'status: [0-9]* connection(s) open' "$work/log" | tail -1 | grep -o '[0-9]*')
check "1000 TLS clients: the server holds them all at once ($open_now open)" yes "$([[ ${open_now:-0} -ge 1000 ]] && echo yes || echo no)"
echo go >&"$many_in"
check "1000 TLS clients: each got its own line back" "echoed 1000" "$(IFS= read -r -t 200 l <&"$many_out"; echo "$l")"
IFS= read -r -t 60 l <&"$many_out"; echo "  1000 TLS clients: $l"
exec {many_in}>&- {many_out}<&-
wait "$many_pid"
metric_is tls_handshakes_total 'instance="echo",service="echo",version="TLSv1.3"' $((before + 1000))
metric_is tls_handshake_failures_total 'instance="echo",service="echo",reason="timeout"' 0
check "echo still serves after them" "after many" "$(printf 'after many\n' | socat_tls "$(tls_port echo)")"

# -- a client that never answers close_notify cannot hold a close ---------------
# daytime writes its line and closes: close_notify, at most 1 s for the
# client's, FIN, at most 1 s of draining. This client completes the handshake,
# then neither reads, writes nor closes for 20 s.
cat >"$work/silent.py" <<'PY'
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="127.0.0.1")
print(s.getsockname()[1], flush=True)
time.sleep(20)
PY
spawn silent timeout 30 python3 "$work/silent.py" "$(tls_port daytime)" "$ca"
IFS= read -r -t 20 silent_port <&"$silent_out"
wait_log "\[daytime\] 127\.0\.0\.1:${silent_port:-none}: closed: "
closed_line=$(grep -E "\[daytime\] 127\.0\.0\.1:${silent_port:-none}: closed: " "$work/log" | tail -1)
like "a silent TLS client: the session still ends, in under 3 s" "*closed: bytes in 0, out *, duration [0-2].[0-9][0-9][0-9]s" "$closed_line"
check "and the client had not closed (it sleeps on)" running "$(gone "$silent_pid" && echo gone || echo running)"
kill -TERM "$silent_pid" 2>/dev/null; wait "$silent_pid" 2>/dev/null
exec {silent_in}>&- {silent_out}<&-

# -- reload: new certificate files, then a broken one ------------------------------

p=$(tls_port echo)
check "before the reload: the server presents serial 1001" "serial=1001" "$(serial "$p")"
spawn old timeout 120 openssl s_client -connect "127.0.0.1:$p" -CAfile "$ca" -verify_return_error -quiet -no_ign_eof -nocommands
printf 'before\n' >&"$old_in"
check "a connection opened before the reload echoes" "before" "$(readln "$old_out")"
# Swap in the new files (whole files, in one rename each), INI untouched; the
# client CA of [mtls] becomes the rogue CA.
install -m 600 "$work/server2.key" "$work/server.key.new" && mv "$work/server.key.new" "$work/server.key"
install -m 644 "$work/server2.pem" "$work/server.pem.new" && mv "$work/server.pem.new" "$work/server.pem"
install -m 644 "$work/rogue.pem" "$work/clients-ca.pem.new" && mv "$work/clients-ca.pem.new" "$work/clients-ca.pem"
kill -HUP "$pid"
wait_log 'reload: [0-9]+ started, [0-9]+ changed, [0-9]+ stopped, [0-9]+ unchanged'
like "SIGHUP with the INI unchanged: the reload is logged" "* info reload: 0 started, 0 changed, 0 stopped, * unchanged" \
  "$(grep -E 'reload: [0-9]+ started' "$work/log" | tail -1)"
check "after the reload: a new connection gets the new certificate" "serial=1002" "$(serial "$p")"
check "and the https metrics endpoint too" "serial=1002" "$(serial "$mport")"
check "and [files] (same files) too" "serial=1002" "$(serial "$(tls_port files)")"
printf 'after\n' >&"$old_in"
check "the connection opened before the reload still echoes" "after" "$(readln "$old_out")"
metric_is tls_certificate_expiry_timestamp_seconds "instance=\"echo\",service=\"echo\",file=\"$work/server.pem\"" "$(epoch_of "$work/server2.pem")"
metric_is tls_certificate_expiry_timestamp_seconds "instance=\"metrics\",service=\"metrics\",file=\"$work/server.pem\"" "$(epoch_of "$work/server2.pem")"
check "the expiry warnings again at the reload" "2 2" \
  "$(grep -c -F " warning [soon] $soon_warning" "$work/log") $(grep -c -F " warning [expired] $expired_warning" "$work/log")"
p=$(tls_port mtls)
check "the client CA re-read: alice now refused" "" "$(sc_wait "$p" $'alice\n' "${alice[@]}")"
failures_is mtls bad_client_certificate 2
check "the client CA re-read: mallory now served" "mallory" "$(sc "$p" $'mallory\n' 8 "${mallory[@]}")"
wait_log '\[mtls\] 127\.0\.0\.1:[0-9]+ CN=mallory: tls: '

# A broken certificate file: the reload is refused, the old one still served.
cp "$work/notes.txt" "$work/server.pem"
reloads=$(log_count 'the running configuration stays')
kill -HUP "$pid"
wait_log 'the running configuration stays' $((reloads + 1))
like "a broken certificate at reload: refused and logged" \
  "* error reload: $work/main.ini: \[metrics\] tls_cert: $work/server.pem: not PEM (expected a certificate between -----BEGIN and -----END lines); the running configuration stays" \
  "$(grep 'the running configuration stays' "$work/log" | tail -1)"
check "the certificate in use still served" "serial=1002" "$(serial "$(tls_port echo)")"
check "and on the metrics endpoint" "serial=1002" "$(serial "$mport")"
printf 'still\n' >&"$old_in"
check "the old connection still echoes" "still" "$(readln "$old_out")"
check "new connections still echo" "new" "$(printf 'new\n' | ncat_tls "$(tls_port echo)")"
check "no expiry warning at the refused reload" "2" "$(grep -c -F " warning [soon] $soon_warning" "$work/log")"
exec {old_in}>&-
wait "$old_pid" 2>/dev/null
exec {old_out}<&-

check "no handshake failures counted on [echo] in all this" "" \
  "$(metrics_text | grep '^coserve_tls_handshake_failures_total{instance="echo"' | grep -v ' 0$')"
keep_log main
stop_judged "coserved with TLS" "$pid" "$work/log"; pid=

echo "e2e_tls: $(( ($(date +%s%N) - started_at) / 1000000 )) ms"
finish e2e_tls
