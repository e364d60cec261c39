#!/usr/bin/env bash
# The installed library, from outside the tree: `cmake --install --component
# dev` into a scratch prefix, then tests/consumer built against it with
# find_package(coserve 1) (shared and static) and with pkg-config, and run;
# the examples built and tested against it, and kv.so loaded into coserved.
# Usage: e2e_install.sh BUILD_DIR (a Release build: the installed library
# must not need a sanitizer runtime).
set -uo pipefail
build=${1:?usage: e2e_install.sh BUILD_DIR}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/e2e_lib.sh"

cmake --install "$build" --prefix "$work/prefix" --component dev >"$work/install.log" 2>&1
check "cmake --install --component dev" 0 $?
for f in include/coserve/server.hpp include/coserve/service.hpp include/coserve/version.hpp include/coserve/plugin.hpp \
         lib/libcoserve.a lib/libcoserve.so lib/cmake/coserve/coserveConfig.cmake \
         lib/cmake/coserve/coserveConfigVersion.cmake lib/pkgconfig/coserve.pc; do
  check "installs $f" yes "$([[ -e $work/prefix/$f ]] && echo yes || echo no)"
done
check "no internal header is installed" "" "$(ls "$work/prefix/include/coserve" | grep -v -x -e config.hpp -e connection.hpp -e lines.hpp -e log.hpp -e plugin.hpp -e server.hpp -e service.hpp -e version.hpp)"

# build_against_prefix NAME SOURCE BUILD: configures and builds an outside
# project against the scratch prefix, and records whether that worked.
build_against_prefix() {
  if cmake -S "$2" -B "$3" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >"$3.log" 2>&1 &&
     cmake --build "$3" -j2 >>"$3.log" 2>&1; then
    check "$1" 0 0
  else
    check "$1" 0 1; cat "$3.log"
  fi
}

cp -r "$top/tests/consumer" "$work/src"
build_against_prefix "an outside project builds with find_package(coserve 1)" "$work/src" "$work/bld"
version=$(sed -n 's/^project(coserve VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
check "it runs against libcoserve.so" "coserve $version (headers $version): echo answered ping" \
  "$(LD_LIBRARY_PATH="$work/prefix/lib" "$work/bld/consumer" 2>/dev/null)"
check "and against libcoserve.a" "coserve $version (headers $version): echo answered ping" "$("$work/bld/consumer_static" 2>/dev/null)"
deps=$(ldd "$work/bld/consumer" 2>/dev/null)
check "the shared one really is shared" yes "$([[ $deps == *libcoserve.so.1* ]] && echo yes || echo no)"

# A major version it cannot satisfy is refused by the package's version file.
sed -i 's/find_package(coserve 1 REQUIRED)/find_package(coserve 2 REQUIRED)/' "$work/src/CMakeLists.txt"
cmake -S "$work/src" -B "$work/bld2" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/cmake2.log" 2>&1
check "find_package(coserve 2) is refused" 1 $?

if PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" g++ -O1 "$top/tests/consumer/main.cpp" -o "$work/consumer_pc" \
     $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs coserve) >"$work/pc.log" 2>&1; then
  check "builds with pkg-config --cflags --libs coserve" 0 0
else
  check "builds with pkg-config --cflags --libs coserve" 0 1; cat "$work/pc.log"
fi
check "and runs" "coserve $version (headers $version): echo answered ping" \
  "$(LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer_pc" 2>/dev/null)"
# examples/kv: a service of its own, with its own main and Catch2 test,
# built against the installed package only.
cp -r "$top/examples/kv" "$work/kv"
build_against_prefix "examples/kv builds against the installed package" "$work/kv" "$work/kv/build"
(cd "$work/kv/build" && LD_LIBRARY_PATH="$work/prefix/lib" ctest --output-on-failure >"$work/kv-test.log" 2>&1)
check "examples/kv's own tests pass" 0 $?
grep -q "100% tests passed" "$work/kv-test.log" || cat "$work/kv-test.log"
printf '[kv]\ntcp = 127.0.0.1:0\nmax_keys = 2\n[echo]\ntcp = 127.0.0.1:0\n' >"$work/kv.ini"
LD_LIBRARY_PATH="$work/prefix/lib" "$work/kv/build/kvd" "$work/kv.ini" >"$work/kvd.log" 2>&1 &
kvd=$!
for _ in $(seq 100); do grep -q 'service echo: tcp' "$work/kvd.log" && break; sleep 0.05; done
port=$(grep -o 'service kv: tcp 127.0.0.1:[0-9]*' "$work/kvd.log" | sed 's/.*://')
check "kvd answers nc" "STORED|VALUE 1|STORED|ERR full (2 keys)|" \
  "$(printf 'SET a 1\nGET a\nSET b 2\nSET c 3\n' | nc -N -w 5 127.0.0.1 "$port" | tr -d '\r' | tr '\n' '|')"
kill -TERM "$kvd"
wait "$kvd"
check "kvd stops on SIGTERM" 0 $?

# The same service built as a plugin (kv.so, against the installed headers
# only) and loaded into the stock coserved of this build, by a path relative
# to the config file.
mkdir -p "$work/plugin"
check "examples/kv builds kv.so" yes "$([[ -f $work/kv/build/kv.so ]] && echo yes || echo no)"
cp "$work/kv/build/kv.so" "$work/plugin/kv.so"
check "kv.so does not link libcoserve (the host provides it)" "" "$(ldd "$work/plugin/kv.so" | grep libcoserve)"
printf '[kv]\nplugin = kv.so\ntcp = 127.0.0.1:0\nudp = 127.0.0.1:0\nmax_keys = 2\n[daytime]\ntcp = 127.0.0.1:0\n' >"$work/plugin/coserved.ini"
"$build/coserved" --config "$work/plugin/coserved.ini" >"$work/plugin/log" 2>&1 &
daemon=$!
for _ in $(seq 100); do grep -q 'service daytime: tcp' "$work/plugin/log" && break; sleep 0.05; done
line=$(grep -o 'service kv: tcp 127.0.0.1:[0-9]*; udp 127.0.0.1:[0-9]*' "$work/plugin/log")
tcp=$(sed 's/.*tcp 127.0.0.1:\([0-9]*\);.*/\1/' <<<"$line")
udp=$(sed 's/.*udp 127.0.0.1://' <<<"$line")
check "coserved loads kv.so and nc talks to it" "STORED|VALUE 1|STORED|ERR full (2 keys)|" \
  "$(printf 'SET a 1\nGET a\nSET b 2\nSET c 3\n' | nc -N -w 5 127.0.0.1 "$tcp" | tr -d '\r' | tr '\n' '|')"
check "and over UDP (nc -u)" "VALUE 1" "$(printf 'GET a\n' | nc -u -w 1 127.0.0.1 "$udp")"
kill -TERM "$daemon"
wait "$daemon"
check "coserved with the plugin stops on SIGTERM" 0 $?
check "no error in its log" "" "$(grep -i -e error -e warning "$work/plugin/log")"
finish e2e_install
