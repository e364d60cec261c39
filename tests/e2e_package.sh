#!/usr/bin/env bash
# The .deb (built by `make deb`: debhelper, debian/) and `cmake --install`:
# lintian's verdict, the control fields, the files and maintainer scripts
# debhelper made, the man pages; then the package unpacked into a scratch
# root and its binary run: --check-config on the installed config, then a
# short real run. The package under a real systemd is tests/e2e_systemd.sh.
#   usage: e2e_package.sh PATH/TO/coserved_VERSION_ARCH.deb BUILD_DIR
set -uo pipefail
deb=$(readlink -f "${1:?usage: e2e_package.sh PATH/TO/coserved.deb BUILD_DIR}")
build=$(cd "${2:?usage: e2e_package.sh PATH/TO/coserved.deb BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/e2e_lib.sh"
[[ -f $deb ]] || { echo "e2e_package: no package at $deb (make deb)"; exit 1; }

# Debian's checker: no error and no warning (an override would need a reason in debian/).
lintian --tag-display-limit 0 --display-info "$deb" >"$work/lintian.out" 2>&1
sed 's/^/  lintian: /' "$work/lintian.out"
check "lintian: no errors and no warnings" "" "$(grep -E '^[EW]: ' "$work/lintian.out")"

info=$(dpkg-deb -f "$deb")
version=$(sed -n 's/^project(coserve VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
check "the package's version is the project's" "$version" "$(dpkg-deb -f "$deb" Version)"
depends=$(dpkg-deb -f "$deb" Depends)
for d in 'libc6 (>= ' 'libstdc++6 (>= ' 'libssl3 (>= ' 'libboost-log1.81.0' 'libboost-program-options1.81.0' \
         'libicu72 (>= ' 'libsystemd0' 'libhiredis0.14 (>= ' 'procps'; do
  like "Depends (dh_shlibdeps): $d" "*$d*" "$depends"
done
like "an extended description" "*Description: *
 *" "$info"
like "a real-looking maintainer address" "*@*.*" "$(dpkg-deb -f "$deb" Maintainer)"
check "the conffiles: the config and the logrotate rule" "/etc/coserve/coserved.ini /etc/logrotate.d/coserved" \
  "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | sort | tr '\n' ' ' | sed 's/ $//')"
postinst=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst)
like "postinst: enables and starts the unit through debhelper's snippet" "*Automatically added by dh_installsystemd*deb-systemd-helper enable 'coserved.service'*_dh_action=start*deb-systemd-invoke \$_dh_action 'coserved.service'*" "$postinst"
check "no maintainer script calls systemctl directly (outside debhelper's snippets)" "" \
  "$(for f in postinst prerm postrm; do dpkg-deb --ctrl-tarfile "$deb" | tar -xO "./$f" 2>/dev/null; done |
     sed '/# Automatically added by/,/# End automatically added section/d' | grep -n 'systemctl')"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/coserved ./etc/coserve/coserved.ini ./lib/systemd/system/coserved.service ./lib/systemd/system/coserved-echo.socket \
         ./usr/share/coserved/files/hello.txt ./usr/share/doc/coserved/README.md.gz ./usr/share/doc/coserved/copyright \
         ./usr/share/doc/coserved/changelog.gz ./usr/share/man/man8/coserved.8.gz ./usr/share/man/man5/coserved.ini.5.gz \
         ./etc/logrotate.d/coserved ./usr/lib/coserve/plugins/; do
  check "the package holds $f" 1 "$(grep -cx "$f" <<<"$contents")"
done
check "nothing of the library for other programs (headers, .a, .so)" "" "$(grep -E '^\./usr/(include|lib/.*\.(a|so))' <<<"$contents")"

root=$work/root
dpkg -x "$deb" "$root"
unit=$root/lib/systemd/system/coserved.service
check "the unit is Type=notify" 1 "$(grep -cx 'Type=notify' "$unit")"
check "the unit runs the installed binary with the installed config" 1 \
  "$(grep -cx 'ExecStart=/usr/bin/coserved --config /etc/coserve/coserved.ini' "$unit")"
# systemd-analyze verify, judged: any line it prints about the units fails,
# except one: ExecStart's /usr/bin/coserved is resolved against this
# machine's /, where the package is not installed. (--root="$root" would find
# it, but then none of the system's units either: sysinit.target, /bin/kill.)
# Its exit status is 1 for that line alone, so the output is what is judged.
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify: no warning or error about coserved.service and coserved-echo.socket" "" \
    "$(systemd-analyze verify "$unit" "$root/lib/systemd/system/coserved-echo.socket" 2>&1 |
       grep -vx 'coserved.service: Command /usr/bin/coserved is not executable: No such file or directory')"
else
  echo "skip: systemd-analyze verify (systemd-analyze is not installed: Debian package systemd)"
fi

like "the binary is stripped (its symbols are in the -dbgsym package)" "*, stripped*" "$(file -b "$root/usr/bin/coserved")"
man_out=$(MANWIDTH=80 man -l "$root/usr/share/man/man8/coserved.8.gz" 2>&1)
like "man coserved: coserved(8) renders" "*coserved(8)*NAME*coserved - *SYNOPSIS*SIGNALS*" "$(tr '\n' ' ' <<<"$man_out")"
like "man coserved.ini: coserved.ini(5) renders" "*coserved.ini(5)*NAME*PROXY PROTOCOL*proxy_protocol*" \
  "$(MANWIDTH=80 man -l "$root/usr/share/man/man5/coserved.ini.5.gz" 2>&1 | tr '\n' ' ')"
check "the man pages render without groff warnings" "" \
  "$(for p in "$root"/usr/share/man/man*/coserved*; do LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$p" 2>&1 >/dev/null; done)"

# The installed config, pointed at the unpacked root instead of /.
sed "s|/usr/share/coserved/files|$root/usr/share/coserved/files|" "$root/etc/coserve/coserved.ini" >"$work/production.ini"
out=$("$root/usr/bin/coserved" --config "$work/production.ini" --check-config 2>&1); rc=$?
check "the installed binary accepts the installed config" 0 "$rc"
check "which serves the well-known ports" 1 "$(grep -c 'tcp = \*:7$' <<<"$out")"
check "and keeps UDP chargen off" 1 "$(sed -n '/^\[chargen\]/,/^\[/p' <<<"$out" | grep -c 'udp = (none)')"

# A short real run of the installed binary, on loopback with OS-chosen ports.
printf '[files]\ntcp = 127.0.0.1:0\nroot = %s\n' "$root/usr/share/coserved/files" >"$work/run.ini"
"$root/usr/bin/coserved" --config "$work/run.ini" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'service files: tcp' "$work/log" && break; sleep 0.05; done
port=$(grep -o 'tcp 127.0.0.1:[0-9]*' "$work/log" | head -1 | sed 's/.*://')
check "the installed binary serves the installed sample files" "OK 3" "$(printf 'LIST\n' | timeout 5 nc -N 127.0.0.1 "$port" | head -1)"
stop_judged "the installed coserved" "$pid" "$work/log"; pid=

# cmake --install into a DESTDIR puts the same files in the same places.
DESTDIR=$work/destdir cmake --install "$build" --prefix /usr >/dev/null; rc=$?
check "cmake --install with DESTDIR" 0 "$rc"
check "installs the binary, config and unit" 3 "$(ls "$work/destdir/usr/bin/coserved" "$work/destdir/etc/coserve/coserved.ini" \
  "$work/destdir/usr/lib/systemd/system/coserved.service" 2>/dev/null | wc -l)"

finish e2e_package
