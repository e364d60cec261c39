#!/usr/bin/env bash
# The installed library, from outside the tree: `cmake --install --component
# dev` into a scratch prefix, then tests/consumer built against it with
# find_package(coserve 3) (shared and static) and with pkg-config, and run;
# the examples built and tested against it, and kv.so loaded into coserved.
# Usage: e2e_install.sh BUILD_DIR (a Release build: the installed library
# must not need a sanitizer runtime).
set -uo pipefail
build=${1:?usage: e2e_install.sh BUILD_DIR}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
daemon=
trap '[[ -n $daemon ]] && kill -TERM "$daemon" 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "$0")/e2e_lib.sh"

cmake --install "$build" --prefix "$work/prefix" --component dev >"$work/install.log" 2>&1
check "cmake --install --component dev" 0 $?
for f in include/coserve/server.hpp include/coserve/service.hpp include/coserve/version.hpp include/coserve/plugin.hpp \
         lib/libcoserve.a lib/libcoserve.so lib/cmake/coserve/coserveConfig.cmake \
         lib/cmake/coserve/coserveConfigVersion.cmake lib/pkgconfig/coserve.pc lib/pkgconfig/coserve-services.pc \
         lib/libcoserve-services.so lib/libcoserve-services.a lib/cmake/coserve/coserveServicesTargets.cmake; do
  check "installs $f" yes "$([[ -e $work/prefix/$f ]] && echo yes || echo no)"
done
check "no internal header is installed" "" "$(ls "$work/prefix/include/coserve" | grep -v -x -e config.hpp -e connection.hpp -e lines.hpp -e log.hpp -e plugin.hpp -e server.hpp -e service.hpp -e services.hpp -e token_bucket.hpp -e version.hpp)"

# succeeds NAME LOG COMMAND...: runs COMMAND (its output to LOG) and records
# whether it worked, showing LOG when not.
succeeds() {
  local name=$1 log=$2; shift 2
  if "$@" >"$log" 2>&1; then
    check "$name" 0 0
  else
    check "$name" 0 1; cat "$log"
  fi
}
# cmake_project SOURCE BUILD: configures and builds an outside project against
# the scratch prefix (warnings are errors there too).
cmake_project() {
  cmake -S "$1" -B "$2" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS="-Wall -Wextra -Wpedantic -Werror" && cmake --build "$2" -j2
}
build_against_prefix() { succeeds "$1" "$3.log" cmake_project "$2" "$3"; }

cp -r "$top/tests/consumer" "$work/src"
build_against_prefix "an outside project builds with find_package(coserve 3)" "$work/src" "$work/bld"
version=$(sed -n 's/^project(coserve VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
check "it runs against libcoserve.so" "coserve $version (headers $version): echo answered ping" \
  "$(LD_LIBRARY_PATH="$work/prefix/lib" "$work/bld/consumer" 2>/dev/null)"
check "and against libcoserve.a" "coserve $version (headers $version): echo answered ping" "$("$work/bld/consumer_static" 2>/dev/null)"
deps=$(ldd "$work/bld/consumer" 2>/dev/null)
check "the shared one really is shared" yes "$([[ $deps == *libcoserve.so.3* ]] && echo yes || echo no)"

# A major version it cannot satisfy is refused by the package's version file.
sed -i 's/find_package(coserve 3 /find_package(coserve 4 /' "$work/src/CMakeLists.txt"
cmake -S "$work/src" -B "$work/bld2" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/cmake2.log" 2>&1
check "find_package(coserve 4) is refused" 1 $?
check "for its version, not for another reason" 2 \
  "$(grep -c -e 'compatible with requested version "4"' -e "version: $version" "$work/cmake2.log")"

succeeds "builds with pkg-config --cflags --libs coserve-services" "$work/pc.log" g++ -O1 "$top/tests/consumer/main.cpp" \
  -o "$work/consumer_pc" $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs coserve-services)
check "and runs" "coserve $version (headers $version): echo answered ping" \
  "$(LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer_pc" 2>/dev/null)"
# example NAME: examples/NAME (a service of its own, with its own main and
# Catch2 test) built against the installed package only and tested; its
# plugin NAME.so goes to $work/plugin for coserved below.
mkdir -p "$work/plugin"
example() {
  cp -r "$top/examples/$1" "$work/$1"
  build_against_prefix "examples/$1 builds against the installed package" "$work/$1" "$work/$1/build"
  (cd "$work/$1/build" && LD_LIBRARY_PATH="$work/prefix/lib" ctest --output-on-failure >"$work/$1-test.log" 2>&1)
  check "examples/$1's own tests pass" 0 $?
  grep -q "100% tests passed" "$work/$1-test.log" || cat "$work/$1-test.log"
  check "examples/$1 builds $1.so" yes "$([[ -f $work/$1/build/$1.so ]] && echo yes || echo no)"
  cp "$work/$1/build/$1.so" "$work/plugin/"
  check "$1.so does not link libcoserve (the host provides it)" "" "$(ldd "$work/plugin/$1.so" | grep libcoserve)"
}
# start LOG LAST PROGRAM ARGS...: runs a server in the background ($daemon,
# logging to $daemon_log) until its start-up line for instance LAST.
start() {
  local last=$2
  daemon_log=$1; shift 2
  LD_LIBRARY_PATH="$work/prefix/lib" "$@" >"$daemon_log" 2>&1 &
  daemon=$!
  for _ in $(seq 100); do grep -q "\[$last\] service" "$daemon_log" && break; sleep 0.05; done
}
# port LOG INSTANCE tcp|udp: the port it announced.
port() { grep -o "\[$2\] service [a-z]*: tcp .*" "$1" | grep -o "$3 127.0.0.1:[0-9]*" | sed 's/.*://'; }
# stop NAME: SIGTERM, judged as every server the e2e scripts start (e2e_lib.sh).
stop() {
  stop_judged "$1" "$daemon" "$daemon_log"
  daemon=
}
example kv
example guess

# examples/reverse: README's smallest service, which must be the files built here.
for f in reverse.cpp main.cpp; do
  shown=$(awk -v m="<!-- file: examples/reverse/$f -->" '$0 == m {on = 1; getline; next} on && /^```$/ {exit} on' "$top/README.md")
  check "README shows examples/reverse/$f as it is" "$(cat "$top/examples/reverse/$f")" "$shown"
done
cp -r "$top/examples/reverse" "$work/reverse"
build_against_prefix "examples/reverse builds both ways" "$work/reverse" "$work/reverse/build"
cp "$work/reverse/build/reverse.so" "$work/plugin/"
printf '[reverse]\ntcp = 127.0.0.1:0\n' >"$work/reverse.ini"
start "$work/reversed.log" reverse "$work/reverse/build/reversed" "$work/reverse.ini"
check "reversed answers nc" "olleh" "$(echo hello | nc -N -w 5 127.0.0.1 "$(port "$work/reversed.log" reverse tcp)" | tr -d '\r')"
# The framework alone needs Boost alone; the built-in services bring the rest.
check "reversed (the framework only) links OpenSSL (TLS) but no ICU or hiredis" "libssl " \
  "$(LD_LIBRARY_PATH="$work/prefix/lib" ldd "$work/reverse/build/reversed" | grep -E -o 'libicu[a-z]*|libssl|libhiredis' | sort -u | tr '\n' ' ')"
check "the consumer of the built-in services links them" "libcrypto libhiredis libicuuc " \
  "$(LD_LIBRARY_PATH="$work/prefix/lib" ldd "$work/bld/consumer" | grep -E -o 'libicuuc|libcrypto|libhiredis' | sort -u | tr '\n' ' ')"
stop reversed
printf '[reverse]\nwhat = 1\n' >"$work/reverse.ini"
timeout 10 "$work/reverse/build/reversed" "$work/reverse.ini" >"$work/reversed.log" 2>&1
check "reversed: a bad INI key is exit status 2" 2 $?
check "with a message" "reversed: $work/reverse.ini: [reverse] what: unknown key" "$(cat "$work/reversed.log")"

printf '[kv]\ntcp = 127.0.0.1:0\nmax_keys = 2\n[echo]\ntcp = 127.0.0.1:0\n' >"$work/kv.ini"
start "$work/kvd.log" echo "$work/kv/build/kvd" "$work/kv.ini"
check "kvd answers nc" "STORED|VALUE 1|STORED|ERR full (2 keys)|" \
  "$(printf 'SET a 1\nGET a\nSET b 2\nSET c 3\n' | nc -N -w 5 127.0.0.1 "$(port "$work/kvd.log" kv tcp)" | tr -d '\r' | tr '\n' '|')"
stop kvd

printf '[guess]\ntcp = 127.0.0.1:0\nmax = 10\n[daytime]\ntcp = 127.0.0.1:0\n' >"$work/guess.ini"
start "$work/guessd.log" daytime "$work/guess/build/guessd" "$work/guess.ini"
gport=$(port "$work/guessd.log" guess tcp)
check "guessd answers nc" "guess my number from 1 to 10; you have 7 tries (NEW: another number, SCORE: the scores)|you: won 0 lost 0; everyone: won 0 lost 0 best -|ERR a whole number from 1 to 10, NEW or SCORE|" \
  "$(printf 'SCORE\n11\n' | nc -N -w 5 127.0.0.1 "$gport" | tr -d '\r' | tr '\n' '|')"
printf '[guess]\ntcp = 127.0.0.1:%s\nmax = 1\n' "$gport" >"$work/guess.ini"
kill -HUP "$daemon"
for _ in $(seq 100); do grep -q 'reload:' "$work/guessd.log" && break; sleep 0.05; done
check "guessd refuses a bad edit at SIGHUP and says why" 1 \
  "$(grep -c 'reload: .*guess.ini: \[guess\] max: .*; the running configuration stays' "$work/guessd.log")"
check "and goes on with the running configuration" "guess my number from 1 to 10; you have 7 tries (NEW: another number, SCORE: the scores)" \
  "$(nc -N -w 5 127.0.0.1 "$gport" </dev/null | tr -d '\r')"
stop guessd

# All three as plugins (built against the installed headers only) in the stock
# coserved of this build, by paths relative to the config file.
printf '[kv]\nplugin = kv.so\ntcp = 127.0.0.1:0\nudp = 127.0.0.1:0\nmax_keys = 2\n[game]\nplugin = guess.so\ntcp = 127.0.0.1:0\nmax = 5\n[reverse]\nplugin = reverse.so\ntcp = 127.0.0.1:0\n[daytime]\ntcp = 127.0.0.1:0\n' \
  >"$work/plugin/coserved.ini"
start "$work/plugin/log" daytime "$build/coserved" --config "$work/plugin/coserved.ini"
check "coserved loads kv.so and nc talks to it" "STORED|VALUE 1|STORED|ERR full (2 keys)|" \
  "$(printf 'SET a 1\nGET a\nSET b 2\nSET c 3\n' | nc -N -w 5 127.0.0.1 "$(port "$work/plugin/log" kv tcp)" | tr -d '\r' | tr '\n' '|')"
check "and over UDP (nc -u)" "VALUE 1" "$(printf 'GET a\n' | nc -u -w 1 127.0.0.1 "$(port "$work/plugin/log" kv udp)")"
check "coserved loads guess.so beside it" "guess my number from 1 to 5; you have 7 tries (NEW: another number, SCORE: the scores)|ERR a whole number from 1 to 5, NEW or SCORE|" \
  "$(printf '6\n' | nc -N -w 5 127.0.0.1 "$(port "$work/plugin/log" game tcp)" | tr -d '\r' | tr '\n' '|')"
check "and reverse.so" "olleh" "$(echo hello | nc -N -w 5 127.0.0.1 "$(port "$work/plugin/log" reverse tcp)" | tr -d '\r')"
# A plugin built without CMake: the compile flags from pkg-config, no libraries.
succeeds "a plugin builds with pkg-config --cflags coserve" "$work/pc-plugin.log" g++ -shared -fPIC -O1 \
  "$top/examples/reverse/reverse.cpp" -o "$work/plugin/reverse-pc.so" \
  $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags coserve)
printf '[reverse]\nplugin = reverse-pc.so\ntcp = 127.0.0.1:0\n' >"$work/plugin/pc.ini"
check "and coserved takes it" 1 "$("$build/coserved" --check-config --config "$work/plugin/pc.ini" 2>&1 | grep -c '^\[reverse\] service reverse$')"
stop "coserved with three plugins"
check "no error in its log" "" "$(grep -i -e error -e warning "$work/plugin/log")"
finish e2e_install
