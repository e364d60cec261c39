#!/usr/bin/env bash
# The .deb and `cmake --install`: build the package from a build directory,
# unpack it into a scratch root, and run the installed binary: --check-config
# on the installed config, then a short real run. Usage: e2e_package.sh BUILD_DIR
set -uo pipefail
build=$(cd "${1:?usage: e2e_package.sh BUILD_DIR}" && pwd)
work=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/e2e_lib.sh"

(cd "$build" && cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1); rc=$?
check "cpack -G DEB builds the package" 0 "$rc"
deb=$(ls "$work"/pkg/coserved_*_amd64.deb 2>/dev/null | head -1)
check "one .deb" yes "$([[ -f $deb ]] && echo yes || echo no)"
info=$(dpkg-deb -I "$deb")
check "Depends names the runtime libraries" 1 "$(grep -c '^ Depends: libboost-program-options1.81.0, libboost-log1.81.0, libicu72, libssl3, libsystemd0, libhiredis0.14$' <<<"$info")"
check "the config is a conffile" /etc/coserve/coserved.ini "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)"
check "postinst enables the unit where systemd runs" 1 "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst | grep -c 'systemctl enable coserved.service')"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/coserved ./etc/coserve/coserved.ini ./usr/lib/systemd/system/coserved.service ./usr/lib/systemd/system/coserved-echo.socket \
         ./usr/share/coserved/files/hello.txt ./usr/share/doc/coserved/README.md ./usr/lib/coserve/plugins/; do
  check "the package holds $f" 1 "$(grep -cx "$f" <<<"$contents")"
done

root=$work/root
dpkg -x "$deb" "$root"
unit=$root/usr/lib/systemd/system/coserved.service
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
    "$(systemd-analyze verify "$unit" "$root/usr/lib/systemd/system/coserved-echo.socket" 2>&1 |
       grep -vx 'coserved.service: Command /usr/bin/coserved is not executable: No such file or directory')"
else
  echo "skip: systemd-analyze verify (systemd-analyze is not installed: Debian package systemd)"
fi

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
