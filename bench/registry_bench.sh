#!/usr/bin/env bash
# Times push and pull of a ~500 MB, 5-layer image through a local docker-registry 2.8:
# xbuild vs docker (a private dockerd) vs skopeo (OCI layout <-> registry).
# usage: [ROUNDS=N] bench/registry_bench.sh [path/to/xbuild] [path/to/xbuild-layer-bench]
#   defaults: build/cli/xbuild, and build/bench/xbuild-layer-bench when present (configure with
#   -DXBUILD_BENCH=ON; without it the "ready to run" figure extracts with tar -xzf).
#   ROUNDS (default 1): push/pull rounds, each with fresh registries and empty stores; the
#   table shows the best of them (the image is built once). See bench/README.md.
# Run as root (dockerd). Everything lives under a mktemp dir in /tmp (~5 GB at peak); dockerd,
# its containerd, the registries and the mounts are stopped/removed on exit, failure included.
set -euo pipefail

XB=${1:-build/cli/xbuild}
[[ -x $XB ]] || { echo "no xbuild binary at $XB" >&2; exit 2; }
XB=$(realpath "$XB")
LB=${2:-$(dirname "$XB")/../bench/xbuild-layer-bench}
if [[ -x $LB ]]; then LB=$(realpath "$LB"); else LB=""; fi
for t in /usr/sbin/dockerd /usr/bin/docker docker-registry skopeo python3 bc curl; do
  command -v "$t" > /dev/null || { echo "$t is missing: run scripts/setup-deps.sh" >&2; exit 2; }
done
[[ $(id -u) -eq 0 ]] || { echo "run as root (dockerd)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/xbuild-registry-bench.XXXXXX)
REG_PIDS=()
DOCKERDS=()

# shellcheck source=bench/dockerd_lib.sh
source "$(dirname "$0")/dockerd_lib.sh"

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
# timed VAR CMD...: seconds CMD took, after a sync so that the last step's writeback is not charged to it.
timed() {
  local _var=$1 _t0 _t1  # names the caller's variables will not shadow
  shift
  sync
  _t0=$(now); "$@"; _t1=$(now)
  printf -v "$_var" '%s' "$(secs "$_t0" "$_t1")"
}
min() { printf '%s\n' "$@" | sort -g | head -1; }
xb() { XBUILD_CONFIG='' DOCKER_CONFIG=$WORK/xb-client "$XB" "$@"; }
sk() { TMPDIR=$WORK REGISTRY_AUTH_FILE=$WORK/auth.json skopeo "$@"; }
# Layer digests (manifest order) of the manifest in file $1.
layers_of() { python3 -c 'import json,sys; [print(l["digest"][7:]) for l in json.load(open(sys.argv[1]))["layers"]]' "$1"; }
# extract_lb|extract_tar DIR BLOB... : apply the gzip layers in order.
extract_lb() { local dir=$1 b; shift; for b in "$@"; do "$LB" apply "$dir" "$b" > /dev/null; done; }
extract_tar() { local dir=$1 b; shift; mkdir -p "$dir"; for b in "$@"; do tar -xzf "$b" -C "$dir"; done; }

echo "work dir: $WORK; $(nproc) cores; load average $(cut -d" " -f1-3 /proc/loadavg)"
echo "== content: five ~100 MiB layers of files copied from /usr (sorted walk, deterministic on one machine)"
python3 - "$WORK/ctx" <<'PY'
import os, shutil, sys
out = sys.argv[1]
budget = 100 << 20
# Each layer draws from its own trees: shared libraries, data and docs, executables,
# the rest of /usr/lib (JVM, compilers, Python), headers.
layers = [
    (["/usr/lib/x86_64-linux-gnu"], []),
    (["/usr/share"], []),
    (["/usr/bin", "/usr/sbin"], []),
    (["/usr/lib"], ["/usr/lib/x86_64-linux-gnu"]),
    (["/usr/include", "/usr/libexec"], []),
]
for i, (roots, skip) in enumerate(layers, 1):
    dest = os.path.join(out, "l%d" % i)
    total = files = 0
    for root in roots:
        for d, dirs, names in os.walk(root):
            dirs[:] = sorted(x for x in dirs if os.path.join(d, x) not in skip)
            for n in sorted(names):
                src = os.path.join(d, n)
                if total >= budget or os.path.islink(src) or not os.path.isfile(src):
                    continue
                size = os.path.getsize(src)
                if size > 32 << 20:
                    continue
                dst = dest + src
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst)
                total += size
                files += 1
            if total >= budget:
                break
        if total >= budget:
            break
    print("l%d: %d files, %.0f MiB from %s" % (i, files, total / 2**20, " ".join(roots)))
PY
printf 'FROM scratch\nCOPY l1/ /\nCOPY l2/ /\nCOPY l3/ /\nCOPY l4/ /\nCOPY l5/ /\nCMD ["/usr/bin/true"]\n' > "$WORK/ctx/Dockerfile"
RAW=$(du -sb "$WORK/ctx" | cut -f1)

echo "== building the image with dockerd #1 (not timed), and gzip copies for xbuild and skopeo"
start_dockerd dockerd-build D1
DOCKER_BUILDKIT=0 dk "$D1" build -q -t bench:1 "$WORK/ctx" > /dev/null
rm -rf "$WORK/ctx"
dk "$D1" save -o "$WORK/docker-archive.tar" bench:1
# docker save writes uncompressed layers, and `xbuild load` stores layers as the archive holds
# them; so both xbuild and skopeo start from a gzip OCI layout skopeo made from that archive.
sk copy -q --dest-compress --dest-compress-format gzip "docker-archive:$WORK/docker-archive.tar" "oci:$WORK/oci-src:bench"
rm -f "$WORK/docker-archive.tar"
tar -C "$WORK/oci-src" -cf "$WORK/oci-src.tar" .
XB_ID=$(xb --root "$WORK/xb-src" load -i "$WORK/oci-src.tar" | sed -n 's/^Loaded image ID: //p')
rm -f "$WORK/oci-src.tar"
SRC_MANIFEST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$WORK/oci-src/index.json")
mapfile -t SRC_LAYERS < <(layers_of "$WORK/oci-src/blobs/sha256/$SRC_MANIFEST")
GZ=0
for l in "${SRC_LAYERS[@]}"; do
  b=$WORK/xb-src/content/blobs/sha256/$l
  [[ $(head -c 2 "$b" | od -An -tx1 | tr -d ' ') == 1f8b ]] || { echo "xbuild's layer $l is not gzip" >&2; exit 1; }
  GZ=$((GZ + $(stat -c %s "$b")))
done
echo "image: ${#SRC_LAYERS[@]} layers, $((RAW >> 20)) MiB of files, $((GZ >> 20)) MiB gzip (ratio $(echo "scale=2; $RAW / $GZ" | bc)); xbuild's store holds the gzip blobs"

ROUNDS=${ROUNDS:-1}
EXTRACTOR=${LB:+xbuild-layer-bench apply}
EXTRACTOR=${EXTRACTOR:-tar -xzf}
declare -A T  # T[metric] = space-separated seconds, one per round

# One round: fresh registries, the three pushes, then the three pulls into empty stores
# (registries kept), the extraction of xbuild's pulled layers, and digest checks.
round() {
  local r=$1 reg_xb reg_dk reg_sk dpull v
  local n=${#REG_PIDS[@]}
  start_registry "r$r-reg-xbuild" reg_xb
  start_registry "r$r-reg-docker" reg_dk
  start_registry "r$r-reg-skopeo" reg_sk
  xb --root "$WORK/xb-src" tag "$XB_ID" "$reg_xb/bench:1"
  dk "$D1" tag bench:1 "$reg_dk/bench:1"

  timed PUSH_XB xb --root "$WORK/xb-src" push -q "$reg_xb/bench:1" > /dev/null
  timed PUSH_DK dk "$D1" push "$reg_dk/bench:1" > "$WORK/docker-push.out"
  timed PUSH_SK sk copy -q --dest-tls-verify=false "oci:$WORK/oci-src:bench" "docker://$reg_sk/bench:1"
  local dk_digest
  dk_digest=$(sed -n 's/^1: digest: \(sha256:[0-9a-f]*\) .*/\1/p' "$WORK/docker-push.out")
  if [[ $r == 1 ]]; then
    DK_GZ=$(sk inspect --raw --tls-verify=false "docker://$reg_dk/bench:1" | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
    echo "docker push compressed the layers to $((DK_GZ >> 20)) MiB"
  fi

  start_dockerd "r$r-dockerd-pull" dpull
  timed PULL_XB xb --root "$WORK/r$r-xb" pull "$reg_xb/bench:1" > "$WORK/xbuild-pull.out"
  timed PULL_DK dk "$dpull" pull -q "$reg_dk/bench:1" > /dev/null
  timed PULL_SK sk copy -q --src-tls-verify=false "docker://$reg_sk/bench:1" "oci:$WORK/r$r-oci:bench"

  # What xbuild and skopeo still owe before a container could start: extracting the layers.
  # Their blobs are the same bytes (the same gzip layers went up), so xbuild's are extracted.
  # This VM's disk is noisy (the first big write after deletes can take 3x longer), so each
  # extractor runs twice, in the order A B B A, and the faster run counts.
  local blobs=("${SRC_LAYERS[@]/#/$WORK/r$r-xb/content/blobs/sha256/}") e1="" e2="" x1="" x2=""
  EXT_LB=""
  if [[ -n $LB ]]; then
    timed e1 extract_lb "$WORK/r$r-rootfs-lb1" "${blobs[@]}"
    timed x1 extract_tar "$WORK/r$r-rootfs-tar1" "${blobs[@]}"
    timed x2 extract_tar "$WORK/r$r-rootfs-tar2" "${blobs[@]}"
    timed e2 extract_lb "$WORK/r$r-rootfs-lb2" "${blobs[@]}"
    EXT_LB=$(min "$e1" "$e2")
    diff -r "$WORK/r$r-rootfs-lb1" "$WORK/r$r-rootfs-tar1" > /dev/null || { echo "xbuild-layer-bench apply and tar -xzf trees differ" >&2; exit 1; }
  else
    timed x1 extract_tar "$WORK/r$r-rootfs-tar1" "${blobs[@]}"
    timed x2 extract_tar "$WORK/r$r-rootfs-tar2" "${blobs[@]}"
  fi
  EXT_TAR=$(min "$x1" "$x2")

  # Every pull got the manifest its push wrote.
  grep -qx "Digest: sha256:$SRC_MANIFEST" "$WORK/xbuild-pull.out" || { echo "xbuild pulled another manifest" >&2; exit 1; }
  [[ $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$WORK/r$r-oci/index.json") == "$SRC_MANIFEST" ]] ||
    { echo "skopeo pulled another manifest" >&2; exit 1; }
  [[ $(dk "$dpull" image inspect -f '{{index .RepoDigests 0}}' "$reg_dk/bench:1") == "$reg_dk/bench@$dk_digest" ]] ||
    { echo "docker pulled another digest than it pushed ($dk_digest)" >&2; exit 1; }

  local ext=${EXT_LB:-$EXT_TAR}
  T[push_xb]+=" $PUSH_XB"; T[push_dk]+=" $PUSH_DK"; T[push_sk]+=" $PUSH_SK"
  T[pull_xb]+=" $PULL_XB"; T[pull_dk]+=" $PULL_DK"; T[pull_sk]+=" $PULL_SK"
  T[ready_xb]+=" $(echo "$PULL_XB + $ext" | bc)"; T[ready_sk]+=" $(echo "$PULL_SK + $ext" | bc)"
  T[ext]+=" $ext"; T[ext_tar]+=" $EXT_TAR"
  printf "round %d: push xbuild %.2fs docker %.2fs skopeo %.2fs; pull xbuild %.2fs docker %.2fs skopeo %.2fs; extract %.2fs (tar -xzf %.2fs); load %s\n" \
    "$r" "$PUSH_XB" "$PUSH_DK" "$PUSH_SK" "$PULL_XB" "$PULL_DK" "$PULL_SK" "$ext" "$EXT_TAR" "$(cut -d' ' -f1-3 /proc/loadavg)"

  # Leave only the pushing side for the next round.
  stop_dockerd "$dpull"
  for v in "${REG_PIDS[@]:n}"; do kill -TERM "$v" 2> /dev/null; wait "$v" 2> /dev/null || true; done
  REG_PIDS=("${REG_PIDS[@]:0:n}")
  dk "$D1" rmi "$reg_dk/bench:1" > /dev/null
  rm -rf "$WORK"/r"$r"-*
}

echo "== $ROUNDS round(s): push (each tool to its own fresh registry), then pull into empty stores"
for r in $(seq 1 "$ROUNDS"); do round "$r"; done

best() { tr ' ' '\n' <<< "${T[$1]}" | grep . | sort -g | head -1; }
ratio() { echo "scale=2; $1 / $2" | bc; }
row() { # name xbuild-metric other-metric
  local a b
  a=$(best "$2"); b=$(best "$3")
  printf "%-36s %7.2fs %7.2fs %7.2f %7.2f\n" "$1" "$a" "$b" "$(ratio "$a" "$b")" "$(ratio "$b" "$a")"
}
echo
echo "== results: seconds, best of $ROUNDS, warm page cache; ratio = xbuild/other, speedup = other/xbuild"
printf "%-36s %8s %8s %7s %7s\n" "" "xbuild" "other" "ratio" "speedup"
row "push vs docker push" push_xb push_dk
row "push vs skopeo copy oci->registry" push_xb push_sk
row "pull (blobs) vs skopeo registry->oci" pull_xb pull_sk
row "pull+extract vs skopeo+extract" ready_xb ready_sk
row "pull+extract vs docker pull" ready_xb pull_dk
printf "extract of the 5 layers in order: %s %.2fs" "$EXTRACTOR" "$(best ext)"
if [[ -n $LB ]]; then printf "; tar -xzf %.2fs" "$(best ext_tar)"; fi
echo
