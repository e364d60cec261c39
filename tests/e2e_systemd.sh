#!/usr/bin/env bash
# End to end under a real systemd: Debian 12 booted with systemd as PID 1 in a
# container (systemd-nspawn -b, on a root made by debootstrap and cached:
# scripts/debian-root systemd), the .deb installed there with apt, and then,
# as a user would meet it: readiness (Type=notify), every service of the
# packaged config answering on its well-known port, the process as a dynamic
# non-root user with CAP_NET_BIND_SERVICE alone, systemctl reload with an open
# connection, the journal, the watchdog, syslog through rsyslog, the logrotate
# rule, the example socket unit, systemctl stop, apt purge, and the unit's
# systemd-analyze security score. The container has its own network
# namespace with loopback only: the packaged config's *:7 is bound there, not
# on this machine; clients are this machine's nc, curl and rdate run inside
# that namespace (nsenter -n). Needs root.
#   usage: e2e_systemd.sh PATH/TO/coserved_VERSION_ARCH.deb
set -uo pipefail
deb=$(readlink -f "${1:?usage: e2e_systemd.sh PATH/TO/coserved.deb}")
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/tests/e2e_lib.sh"
started_at=$(date +%s)
section() { echo "-- $* (at $(($(date +%s) - started_at)) s)"; }
[[ $(id -u) -eq 0 ]] || { echo "skipped: needs root (systemd-nspawn)"; exit 77; }
for t in systemd-nspawn nsenter nc curl rdate ss; do
  command -v "$t" >/dev/null || { echo "e2e_systemd: $t missing (scripts/install-deps)"; exit 1; }
done
[[ -f $deb ]] || { echo "e2e_systemd: no package at $deb (make deb)"; exit 1; }
# Inside a chroot (as tools/fresh-check runs make test), / is no mount point
# and systemd-nspawn cannot make it a slave mount ("Failed to mount n/a on
# /"): nothing here could boot, so say so and skip, rather than fail.
mountpoint -q / || { echo "skipped: / is not a mount point (a chroot?): systemd-nspawn cannot boot a container here"; exit 77; }

tar=$("$top/scripts/debian-root" systemd) || exit 1
work=$(mktemp -d /var/tmp/coserve-systemd.XXXXXX)
root=$work/root
nspawn=
cleanup() {
  if [[ -n $nspawn ]] && ! gone "$nspawn"; then
    kill -TERM "$nspawn" 2>/dev/null  # nspawn asks the container's systemd to power off
    wait_gone_for "$nspawn" 30 || kill -KILL "$nspawn" 2>/dev/null
  fi
  for m in proc sys dev; do umount -l "$root/$m" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$root" && tar --numeric-owner -C "$root" -xf "$tar" || exit 1
pkg=/root/$(basename "$deb")  # where the container sees it
cp "$deb" "$root$pkg"


# The package's dependencies are fetched first, in the root as a chroot (the
# container has no network but its own loopback); apt installs from them
# after boot, resolving them as it does for any user.
mount -t proc proc "$root/proc" && mount --rbind /sys "$root/sys" && mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
DEBIAN_FRONTEND=noninteractive chroot "$root" sh -c 'apt-get update -qq && apt-get install -y -qq --download-only "$0"' "$pkg" \
  >"$work/download.log" 2>&1
check "apt fetches the package's dependencies" 0 "$?"
: >"$root/etc/resolv.conf"
for m in proc sys dev; do umount -l "$root/$m"; done

# ---- boot --------------------------------------------------------------------
section "boot"
systemd-nspawn -q -b -D "$root" -M coserve-e2e --private-network --register=no --keep-unit --console=pipe \
  </dev/null >"$work/boot.log" 2>&1 &
nspawn=$!
lead=
find_leader() {
  local p
  for p in $(pgrep -P "$nspawn"); do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == systemd ]] && { lead=$p; return 0; }
  done
  return 1
}
poll_for 30 find_leader || { echo "FAIL: the container did not start:"; cat "$work/boot.log"; exit 1; }
# inside COMMAND...: COMMAND in the container (all its namespaces, its root).
inside() { nsenter -t "$lead" -a -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
# net COMMAND...: this machine's COMMAND in the container's network namespace.
net() { nsenter -t "$lead" -n "$@"; }
booted() { state=$(inside systemctl is-system-running 2>&1); [[ $state == running || $state == degraded ]]; }
poll_for 90 booted
like "systemd boots as PID 1 in the container" "@(running|degraded)" "$state"
[[ $state == degraded ]] && inside systemctl --failed --no-legend | sed 's/^/  failed unit: /'

# ---- install -----------------------------------------------------------------
section "install"
inside apt-get install -y -q "$pkg" >"$work/install.log" 2>&1
rc=$?
check "apt-get install ./coserved.deb under systemd" 0 "$rc"
[[ $rc -ne 0 ]] && tail -20 "$work/install.log"
check "procps came with it (the unit's ExecReload needs /bin/kill)" "install ok installed" \
  "$(inside dpkg-query -W -f='${Status}' procps 2>&1)"
like "man coserved works where the package is installed" "*coserved - asynchronous TCP and UDP services*" \
  "$(inside env MANWIDTH=100 man -P cat coserved 2>&1 | tr '\n' ' ' | tr -s ' ')"
like "and man coserved.ini" "*coserved.ini - the configuration file of coserved(8)*" \
  "$(inside env MANWIDTH=100 man -P cat coserved.ini 2>&1 | tr '\n' ' ' | tr -s ' ')"
active() { [[ $(inside systemctl is-active coserved.service) == active ]]; }
poll_for 20 active
check "coserved is active after install (Type=notify: ready once every endpoint is bound)" active \
  "$(inside systemctl is-active coserved.service)"
pid=$(inside systemctl show -p MainPID --value coserved.service)
wd_first=$(inside systemctl show -p WatchdogTimestampMonotonic --value coserved.service)
status=$(inside cat "/proc/$pid/status")
field() { sed -n "s/^$1:[[:space:]]*//p" <<<"$status" | awk '{print $1}'; }
uid=$(field Uid)
like "runs as a dynamic user (uid $uid, in systemd's 61184-65519)" yes "$([[ ${uid:-0} -ge 61184 && ${uid:-0} -le 65519 ]] && echo yes || echo "no: $uid")"
check "the user's name" coserved "$(inside systemctl show -p User --value coserved.service)"
for c in CapEff CapPrm CapBnd CapAmb; do
  check "$c: CAP_NET_BIND_SERVICE alone" 0000000000000400 "$(field "$c")"
done
check "NoNewPrivs" 1 "$(field NoNewPrivs)"
check "a seccomp filter (SystemCallFilter)" 2 "$(field Seccomp)"

# ---- the services of coserved.production.ini ---------------------------------
section "the services of coserved.production.ini"
listening=$(net ss -Hltn | awk '{print $4}' | sort -u | tr '\n' ' ')
for port in 7 9 13 19 37 7777 7070; do
  like "listens on the well-known port $port (all interfaces)" "*\*:$port *" "$listening"
done
like "metrics on loopback only" "*127.0.0.1:9187 *" "$listening"
check "echo (7)" "hello systemd" "$(printf 'hello systemd\n' | net timeout 5 nc -q 1 127.0.0.1 7)"
check "discard (9): accepts and answers nothing" "" "$(printf 'gone\n' | net timeout 5 nc -q 1 127.0.0.1 9)"
like "daytime (13)" "[A-Z][a-z][a-z] [A-Z][a-z][a-z] *[0-9]* [0-9][0-9]:[0-9][0-9]:[0-9][0-9] 20[0-9][0-9]*" \
  "$(net timeout 5 nc -d 127.0.0.1 13 </dev/null)"
check "chargen (19): the RFC 864 pattern" ' !"#$%&'"'"'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefg' \
  "$(net timeout 5 nc -d 127.0.0.1 19 </dev/null | head -1 | tr -d '\r')"
like "time (37): rdate reads it" "*20[0-9][0-9]*" "$(net timeout 5 rdate -p -o 37 127.0.0.1 2>&1)"
like "chat (7777): the welcome" "*welcome to #lobby*" "$(printf '/quit\r\n' | net timeout 5 nc -q 2 127.0.0.1 7777 | tr -d '\r' | head -3 | tr '\n' ' ')"
like "files (7070): LIST" "OK [0-9]*" "$(printf 'LIST\r\n' | net timeout 5 nc -q 1 127.0.0.1 7070 | head -1 | tr -d '\r')"
check "metrics: /healthz" ok "$(net curl -s --max-time 5 http://127.0.0.1:9187/healthz)"
journal=$(inside journalctl -u coserved.service --no-pager -o cat)
like "journalctl -u coserved has the start-up lines" "*coserved 3.* starting*service echo: tcp \[::\]:7;*service files: tcp \[::\]:7070;*" "$(tr '\n' ' ' <<<"$journal")"

# ---- reload with a connection open -------------------------------------------
section "reload with a connection open"
mkfifo "$work/held.in"
net nc 127.0.0.1 7 <"$work/held.in" >"$work/held.out" 2>/dev/null &
held=$!
exec {held_in}>"$work/held.in"
printf 'before reload\n' >&"$held_in"
poll_for 5 grep -q 'before reload' "$work/held.out"
printf '\n[hello]\ntcp = *:9999\nbanner = "added by a reload"\n' >>"$root/etc/coserve/coserved.ini"
inside systemctl reload coserved.service
check "systemctl reload coserved" 0 "$?"
check "the reload is logged" 1 "$(inside journalctl -u coserved.service --no-pager -o cat | grep -c 'reload: 1 started, 0 changed, 0 stopped')"
check "the instance the reload added answers" "added by a reload" \
  "$(net timeout 5 nc -q 1 127.0.0.1 9999 </dev/null | head -1 | tr -d '\r')"
printf 'after reload\n' >&"$held_in"
poll_for 5 grep -q 'after reload' "$work/held.out"
check "the connection open across the reload still echoes" "before reload|after reload" "$(paste -sd'|' "$work/held.out")"
check "the same process (a reload, not a restart)" "$pid" "$(inside systemctl show -p MainPID --value coserved.service)"
exec {held_in}>&-
kill "$held" 2>/dev/null; wait "$held" 2>/dev/null

# ---- the unit's exposure, as systemd rates it --------------------------------
section "the unit's exposure, as systemd rates it"
security=$(inside systemd-analyze security --no-pager coserved.service 2>&1)
score=$(sed -n 's/.*Overall exposure level for coserved.service: \([0-9.]*\).*/\1/p' <<<"$security")
echo "  systemd-analyze security coserved.service: ${score:-?} ($(grep -o 'Overall exposure level.*' <<<"$security"))"
like "systemd-analyze security: exposure 1.5 or lower (it is ${score:-?})" yes \
  "$(awk -v s="${score:-9}" 'BEGIN { print (s <= 1.5 ? "yes" : "no") }')"

# ---- syslog through rsyslog --------------------------------------------------
section "syslog through rsyslog"
cat >"$root/etc/rsyslog.d/30-e2e-test.conf" <<'EOF'
template(name="coserveTest" type="string" string="%syslogfacility-text%.%syslogseverity-text% %programname%: %msg%\n")
if $programname == 'coserved' then { action(type="omfile" file="/var/log/e2e-test.log" template="coserveTest") }
EOF
inside systemctl restart rsyslog.service
cp "$root/etc/coserve/coserved.ini" "$work/good.ini"
sed -i 's/^\[server\]$/[server]\nsyslog = true/' "$root/etc/coserve/coserved.ini"
inside systemctl reload coserved.service
inside kill -USR1 "$pid"  # a status summary, at info
# A broken config at reload: logged at error, the running configuration stays.
printf 'no_such_key = 1\n' >>"$root/etc/coserve/coserved.ini"
inside systemctl reload coserved.service
syslog_has() { grep -q -- "$1" "$root/var/log/e2e-test.log" 2>/dev/null; }
poll_for 10 syslog_has 'daemon.err coserved: .*the running configuration stays'
like "syslog: the status summary arrives as daemon.info" "*daemon.info coserved:*status:*" \
  "$(grep 'status:' "$root/var/log/e2e-test.log" | head -1)"
like "syslog: a refused reload arrives as daemon.err" "*daemon.err coserved:*no_such_key*the running configuration stays*" \
  "$(grep 'the running configuration stays' "$root/var/log/e2e-test.log" | head -1)"
check "still serving after the refused reload" "still" "$(printf 'still\n' | net timeout 5 nc -q 1 127.0.0.1 7)"

# ---- log_file and the package's logrotate rule -------------------------------
section "log_file and the package's logrotate rule"
sed 's/^\[server\]$/[server]\nlog_file = \/var\/log\/coserve\/coserved.log/' "$work/good.ini" >"$root/etc/coserve/coserved.ini"
inside systemctl reload coserved.service
log_has() { grep -q -- "$2" "$root/var/log/coserve/$1" 2>/dev/null; }
inside kill -USR1 "$pid"
poll_for 10 log_has coserved.log 'status:'
check "log_file in the unit's LogsDirectory is written" yes "$(log_has coserved.log 'status:' && echo yes || echo no)"
inside logrotate -f /etc/logrotate.d/coserved
check "logrotate -f /etc/logrotate.d/coserved" 0 "$?"
poll_for 10 log_has coserved.log 'reload: '
check "the old log moved to coserved.log.1" yes "$(log_has coserved.log.1 'status:' && echo yes || echo no)"
check "coserved reopened a new coserved.log (postrotate: systemctl reload)" yes \
  "$(log_has coserved.log 'reload: ' && ! log_has coserved.log 'status:' && echo yes || echo no)"
check "the log file is coserved's alone (UMask=0077)" 600 "$(stat -c %a "$(readlink -f "$root/var/log/coserve")/coserved.log")"
cp "$work/good.ini" "$root/etc/coserve/coserved.ini"
inside systemctl reload coserved.service

# ---- the watchdog ------------------------------------------------------------
section "the watchdog"
# WatchdogSec=30s: coserved pings every 15 s; systemd records each ping.
wd_fed() { [[ $(inside systemctl show -p WatchdogTimestampMonotonic --value coserved.service) != "$wd_first" ]]; }
poll_for 20 wd_fed
check "the watchdog is fed (WatchdogTimestamp moved)" yes "$(wd_fed && echo yes || echo no)"
check "no restart meanwhile" 0 "$(inside systemctl show -p NRestarts --value coserved.service)"

# ---- stop, and the example socket unit ---------------------------------------
section "stop, and the example socket unit"
inside systemctl stop coserved.service
check "systemctl stop coserved: a clean stop" "success 0" \
  "$(inside systemctl show -p Result --value coserved.service) $(inside systemctl show -p ExecMainStatus --value coserved.service)"
check "the journal's last line of it is \"stopped\"" "stopped" \
  "$(inside journalctl -u coserved.service --no-pager -o cat | grep -v 'coserved\.service' | tail -1 | sed 's/.* //')"
inside systemctl start coserved-echo.socket
check "the example socket unit listens; coserved is not running" "active inactive" \
  "$(inside systemctl is-active coserved-echo.socket) $(inside systemctl is-active coserved.service)"
check "the first connection to port 7 starts coserved, which echoes" "activated" \
  "$(printf 'activated\n' | net timeout 10 nc -q 1 127.0.0.1 7)"
check "coserved is active, started by the socket" active "$(inside systemctl is-active coserved.service)"
like "and serves the socket systemd passed (echo-tcp)" "*tcp *:7: from the service manager (echo-tcp)*" \
  "$(inside journalctl -u coserved.service --no-pager -o cat | grep 'from the service manager' | tail -1)"
inside systemctl stop coserved-echo.socket coserved.service

# ---- purge -------------------------------------------------------------------
section "purge"
rm -f "$root/etc/rsyslog.d/30-e2e-test.conf" "$root/var/log/e2e-test.log"  # this test's own
inside apt-get purge -y -q coserved >"$work/purge.log" 2>&1
check "apt-get purge coserved" 0 "$?"
left=$(inside find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /root \) -prune \
  -o -name '*coserve*' -print 2>/dev/null)
check "nothing named coserve* is left" "" "$left"
check "the dynamic user's state and logs directories are gone" "" \
  "$(ls -d "$root"/var/lib/private/coserve "$root"/var/log/private/coserve 2>/dev/null)"

echo "e2e_systemd: $(($(date +%s) - started_at)) s"
finish e2e_systemd
