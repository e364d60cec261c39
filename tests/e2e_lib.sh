# Shared by the end-to-end scripts: `check NAME EXPECTED ACTUAL` records a
# result; `finish NAME` prints the "N passed, N failed" line and sets the exit status;
# stop_judged and stop_daemon_judged (below) end a coserved the same way everywhere.
failures=0
passes=0
check() {
  if [[ $2 == "$3" ]]; then passes=$((passes + 1)); echo "ok: $1"
  else failures=$((failures + 1)); echo "FAIL: $1"; echo "  expected: $(printf %q "$2")"; echo "  actual:   $(printf %q "$3")"; fi
}
finish() {
  echo "$1: $passes passed, $failures failed"
  [[ $failures -eq 0 ]]
}
# like NAME GLOB ACTUAL: a check that ACTUAL matches the shell pattern GLOB.
like() { check "$1" yes "$([[ $3 == $2 ]] && echo yes || echo "no: $3")"; }
# make_test_certs DIR: a test CA (DIR/ca.pem) and a server certificate it
# signed for 127.0.0.1 and localhost (DIR/server.pem, key DIR/server.key,
# mode 600), made here with the openssl command, never committed.
make_test_certs() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=coserve test CA" \
    -keyout "$1/ca.key" -out "$1/ca.pem" 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$1/server.key" -out "$1/server.csr" 2>/dev/null &&
  openssl x509 -req -in "$1/server.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n') -out "$1/server.pem" 2>/dev/null &&
  chmod 600 "$1/server.key"
}
# poll_for SECONDS COMMAND...: runs COMMAND every 50ms until it succeeds or SECONDS pass.
poll_for() {
  local i n=$(($1 * 20)); shift
  for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.05; done
  "$@"
}

# Every coserved a script starts is judged at its end: stopped with SIGTERM,
# gone within $stop_seconds (else SIGKILL), exit status 0, and no sanitizer
# report in its full log, read after the exit (LeakSanitizer reports last,
# after "stopped").
stop_seconds=10
# gone PID: the process has exited (reaped, or a zombie waiting to be).
gone() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [[ ${stat%% *} == [ZX] ]]
}
# wait_gone_for PID SECONDS: 0 once PID is gone, 1 if still there after SECONDS.
wait_gone_for() {
  local i
  for ((i = 0; i < $2 * 20; i++)); do gone "$1" && return 0; sleep 0.05; done
  gone "$1"
}
# stopped_in_time NAME PID: a check that PID is gone within $stop_seconds; SIGKILL if not.
stopped_in_time() {
  local in_time=yes
  wait_gone_for "$2" "$stop_seconds" || { in_time=no; kill -KILL "$2" 2>/dev/null; }
  check "$1: exits within ${stop_seconds}s of SIGTERM" yes "$in_time"
}
# no_sanitizer_report NAME FILE...: a check that none of the files (missing
# ones are fine) holds a report of ASan, LSan, TSan or UBSan.
no_sanitizer_report() {
  local name=$1; shift
  check "$name: no sanitizer report in its log" "" \
    "$(cat "$@" 2>/dev/null | grep -a -E 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|MemorySanitizer|runtime error' | head -5)"
}
# stop_judged NAME PID LOG...: PID is a child of this shell, LOG its stderr
# (and any further file it reports into).
stop_judged() {
  local name=$1 pid=$2 rc; shift 2
  kill -TERM "$pid" 2>/dev/null
  stopped_in_time "$name" "$pid"
  wait "$pid"; rc=$?
  check "$name: exit status 0 after SIGTERM" 0 "$rc"
  no_sanitizer_report "$name" "$@"
}
# stop_daemon_judged NAME PID LOG SANITIZER_PREFIX: the same for a --daemon,
# which is not our child, so its exit status cannot be had: it must be gone
# within $stop_seconds with "stopped" as its log's last message, and
# the sanitizers (started through with_sanitizer_log, as its stderr is
# /dev/null) must have written no SANITIZER_PREFIX.* file with a report.
stop_daemon_judged() {
  local name=$1 pid=$2 log=$3 prefix=$4
  kill -TERM "$pid" 2>/dev/null
  stopped_in_time "$name" "$pid"
  local last
  last=$(tail -n1 "$log" 2>/dev/null)
  check "$name: its log ends with \"stopped\" (a clean stop)" yes \
    "$([[ $last =~ (\ info\ stopped$|\"message\":\"stopped\") ]] && echo yes || echo "no: $last")"
  no_sanitizer_report "$name" "$log" "$prefix".*
}
# with_sanitizer_log PREFIX COMMAND...: runs COMMAND with the sanitizers'
# reports going to PREFIX.PID instead of stderr (for --daemon, whose stderr is
# /dev/null); options already in the environment are kept.
with_sanitizer_log() {
  local p=$1; shift
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$p LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}log_path=$p \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$p TSAN_OPTIONS=${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$p "$@"
}
