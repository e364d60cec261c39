#!/usr/bin/env bash
# End to end, the container image: docker/Dockerfile built by a real OCI
# builder (Debian's buildah, chroot isolation; base images from
# scripts/base-images where no registry is reachable), then run. With a
# working container runtime (podman run) the image runs there; where there is
# none, its own root file system (buildah mount) runs under chroot, as the
# image's user, with the image's entrypoint, environment and config, in
# namespaces of its own (network: loopback only; pid: coserved is PID 1, as
# in a container). Checked: every service of the image's config answers, the
# HEALTHCHECK command succeeds, the process is not root, SIGTERM stops it with
# exit status 0. Also: the compose files pass a real compose implementation's
# `config`. Prints the image's size. Needs root.
#   usage: e2e_image.sh
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/tests/e2e_lib.sh"
started_at=$(date +%s)
[[ $(id -u) -eq 0 ]] || { echo "skipped: needs root (buildah, chroot)"; exit 77; }
for t in buildah unshare nsenter nc rdate jq docker-compose; do
  command -v "$t" >/dev/null || { echo "e2e_image: $t missing (scripts/install-deps)"; exit 1; }
done
image=localhost/coserved:e2e
work=$(mktemp -d)
ctr=
pid=
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  [[ -n $ctr ]] && { buildah umount "$ctr" >/dev/null 2>&1; buildah rm "$ctr" >/dev/null 2>&1; }
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the compose files, by a compose implementation ------------------------------
for f in compose.yaml compose.cluster.yaml; do
  out=$(cd "$top/docker" && docker-compose -f "$f" config 2>&1); rc=$?
  check "docker-compose config accepts docker/$f" 0 "$rc"
  [[ $rc -ne 0 ]] && sed 's/^/  /' <<<"$out" | head -10
done
cluster=$(cd "$top/docker" && docker-compose -f compose.cluster.yaml config 2>/dev/null)
check "compose.cluster.yaml: two coserved behind haproxy, redis" "coserved-a coserved-b haproxy redis" \
  "$(docker-compose -f "$top/docker/compose.cluster.yaml" config --services 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//')"
like "compose.cluster.yaml: haproxy.cfg sends PROXY v2 headers" "*send-proxy-v2*" "$(grep 'server a' "$top/docker/haproxy.cfg" | head -1)"

# ---- build ------------------------------------------------------------------------
# Inside a chroot (as tools/fresh-check runs make test), / is no mount point
# and buildah cannot set up its storage ("remount /: invalid argument"): the
# compose checks above count; the image is skipped, and says so.
if ! mountpoint -q /; then
  echo "skipped: / is not a mount point (a chroot?): buildah cannot build or mount images here"
  finish e2e_image || exit 1
  exit 77
fi
"$top/scripts/base-images" || { echo "FAIL: the base images could not be made"; exit 1; }
(cd "$top" && buildah bud --quiet --isolation chroot --pull=false --format docker --layers=false \
   -f docker/Dockerfile -t "$image" .) >"$work/build.log" 2>&1
rc=$?
check "buildah bud -f docker/Dockerfile (chroot isolation)" 0 "$rc"
[[ $rc -ne 0 ]] && { tail -30 "$work/build.log"; finish e2e_image; exit 1; }
size=$(buildah images --format '{{.Size}}' "$image" | head -1)
echo "  image $image: $size (base debian:bookworm-slim: $(buildah images --format '{{.Size}}' docker.io/library/debian:bookworm-slim | head -1))"
cfg=$(buildah inspect --type image "$image")
user=$(jq -r '.Docker.config.User' <<<"$cfg")
check "the image runs as the user coserve" coserve "$user"
mapfile -t entry < <(jq -r '.Docker.config.Entrypoint[]' <<<"$cfg")
check "the entrypoint" "/usr/bin/coserved --config /etc/coserve/coserved.ini" "${entry[*]}"
mapfile -t health < <(jq -r '.Docker.config.Healthcheck.Test[]' <<<"$cfg")
check "a HEALTHCHECK (CMD form)" CMD "${health[0]:-none}"
mapfile -t env < <(jq -r '.Docker.config.Env[]' <<<"$cfg")

# ---- run ------------------------------------------------------------------------------
ctr=$(buildah from --pull=false "$image")
mnt=$(buildah mount "$ctr")
ids=$(awk -F: -v u="$user" '$1 == u { print $3 ":" $4 }' "$mnt/etc/passwd")
like "the user exists in the image ($ids)" "[1-9]*:[1-9]*" "$ids"
if podman run --rm "$image" --version >/dev/null 2>&1; then
  echo "  note: podman run works here; the chroot run below is what this test judges"
fi
# New namespaces: mount (the image's /proc and /dev stay private), net (only
# lo, brought up), pid (coserved is PID 1, as under a container runtime).
unshare --mount --net --pid --fork --kill-child sh -c '
  mnt=$1 ids=$2; shift 2
  ip link set lo up &&
  mount -t proc proc "$mnt/proc" && mount --rbind /dev "$mnt/dev" && mount -t tmpfs tmpfs "$mnt/tmp" &&
  cd "$mnt" && exec env -i "$@"' sh "$mnt" "$ids" "${env[@]}" \
  chroot --userspec="$ids" --groups= "$mnt" "${entry[@]}" >"$work/log" 2>&1 &
runner=$!
# coserved's pid as this machine sees it: the child of the unshare process.
find_pid() { pid=$(pgrep -P "$runner" | head -1); [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == coserved ]]; }
poll_for 10 find_pid || { echo "FAIL: coserved did not start in the image:"; cat "$work/log"; exit 1; }
net() { nsenter -t "$pid" -n "$@"; }
ready() { grep -q '\[metrics\] http ' "$work/log"; }
poll_for 20 ready || { echo "FAIL: not ready:"; cat "$work/log"; }
check "the process is not root (uid ${ids%%:*})" "${ids%%:*}" "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")"
check "it is PID 1 of its namespace, as in a container" 1 "$(awk '/^NSpid:/ {print $3}' "/proc/$pid/status")"

check "echo (7007)" "in the image" "$(printf 'in the image\n' | net timeout 5 nc -q 1 127.0.0.1 7007)"
check "echo over UDP (7007)" "datagram" "$(printf 'datagram' | net timeout 3 nc -u -w 1 127.0.0.1 7007)"
check "uppercase (12000)" "STRASSE" "$(printf 'straße\n' | net timeout 5 nc -q 1 127.0.0.1 12000)"
like "daytime (7013)" "[A-Z][a-z][a-z] [A-Z][a-z][a-z] *20[0-9][0-9]*" "$(net timeout 5 nc -d 127.0.0.1 7013 </dev/null)"
like "time (7037): rdate" "*20[0-9][0-9]*" "$(net timeout 5 rdate -p -o 7037 127.0.0.1 2>&1)"
check "adder (12345)" "90" "$(printf '50,40\n' | net timeout 5 nc -q 1 127.0.0.1 12345 | tr -d '\r')"
check "hello (9999)" "Hi, we are connected!|hello" "$(printf 'hi\n' | net timeout 5 nc -q 1 127.0.0.1 9999 | tr -d '\r' | paste -sd'|')"
check "discard (7009)" "" "$(printf 'x\n' | net timeout 5 nc -q 1 127.0.0.1 7009)"
check "chargen (7019)" 72 "$(net timeout 5 nc -d 127.0.0.1 7019 </dev/null | head -1 | tr -d '\r' | wc -c | awk '{print $1 - 1}')"
like "chat (7777)" "*welcome to #lobby*" "$(printf '/quit\r\n' | net timeout 5 nc -q 2 127.0.0.1 7777 | tr -d '\r' | tr '\n' ' ')"
like "chat over IRC (6667)" "*:coserve 001 probe :Welcome*" "$(printf 'NICK probe\r\nUSER probe 0 * :p\r\nQUIT\r\n' | net timeout 5 nc -q 2 127.0.0.1 6667 | tr -d '\r' | tr '\n' ' ')"
like "files (7070): LIST" "OK [0-9]*" "$(printf 'LIST\r\n' | net timeout 5 nc -q 1 127.0.0.1 7070 | head -1 | tr -d '\r')"
check "file-once (7071): the sample file" "$(wc -c <"$top/config/files/sample.bin")" "$(net timeout 5 nc -d 127.0.0.1 7071 </dev/null | wc -c)"

# The HEALTHCHECK, run as Docker runs it: in the container's namespaces, as its user.
hc=("${health[@]:1}")
nsenter -t "$pid" -n -m chroot --userspec="$ids" --groups= "$mnt" "${hc[@]}"
check "the HEALTHCHECK command succeeds" 0 "$?"

kill -TERM "$pid"
wait "$runner"; rc=$?
check "SIGTERM: coserved exits with status 0" 0 "$rc"
like "and logs its stop" "* stopped" "$(tail -1 "$work/log")"
no_sanitizer_report "coserved in the image" "$work/log"
pid=

echo "e2e_image: image $size; $(($(date +%s) - started_at)) s"
finish e2e_image
