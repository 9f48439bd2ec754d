#!/usr/bin/env bash
# Times `xbuild build` against BuildKit (Debian's docker.io 20.10: a private dockerd,
# DOCKER_BUILDKIT=1 docker build) and buildah (`buildah bud`) on the same four Dockerfiles, each
# cold (empty build cache, base image present), warm (nothing changed) and after one context file
# changed. Scenarios:
#   parallel  4 independent stages, each `RUN sleep 1`, and a final stage copying from all four
#             (and changed.txt from the context)
#   steps     45 small steps (15 x ENV, COPY of one file, RUN)
#   files     a 20,000-file context COPYed in, then one RUN over it
#   big       a RUN writing 400 MB (from /dev/urandom, so compression cannot shrink it)
# usage: [RUNS=N] [SCENARIOS="parallel steps files big"] [TOOLS="xbuild xbuildhost buildkit"]
#        bench/build_bench.sh [path/to/xbuild]
#   TOOLS (default "xbuild buildkit buildah"): xbuildhost is xbuild with --network host.
#   RUNS (default 3): each figure is the median of N cold/warm/changed sequences.
# Run as root (dockerd, runc, overlayfs). Offline: the base is busybox-static made here,
# imported into xbuild, `xbuild save`d, `docker load`ed and `buildah pull docker-archive:`ed.
# Everything lives under a mktemp dir in /tmp (~3 GB at peak) and is stopped, unmounted and
# removed on exit, failure included. See bench/README.md.
set -euo pipefail

XB=${1:-build/cli/xbuild}
[[ -x $XB ]] || { echo "no xbuild binary at $XB" >&2; exit 2; }
XB=$(realpath "$XB")
for t in /usr/sbin/dockerd /usr/bin/docker buildah python3 bc /bin/busybox; do
  command -v "$t" > /dev/null || { echo "$t is missing: run scripts/setup-deps.sh" >&2; exit 2; }
done
[[ $(id -u) -eq 0 ]] || { echo "run as root (dockerd, runc, overlayfs)" >&2; exit 2; }
RUNS=${RUNS:-3}
SCENARIOS=${SCENARIOS:-parallel steps files big}

WORK=$(mktemp -d /tmp/xbuild-build-bench.XXXXXX)
DOCKERD=""

# unmount_under DIR (every mount below it, deepest first: the overlay snapshots of all three
# tools), stop_dockerd DIR, make_busybox_base, timed and median, shared with the other bench
# scripts.
source "$(dirname "$0")/dockerd_lib.sh"

cleanup() {
  local rc=$?
  set +e
  [[ -n $DOCKERD ]] && stop_dockerd "$DOCKERD"
  unmount_under "$WORK"
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

xb() { XBUILD_CONFIG='' DOCKER_CONFIG=$WORK/xb-client "$XB" "$@"; }
dk() { DOCKER_CONFIG=$DOCKERD/client /usr/bin/docker -H "unix://$DOCKERD/docker.sock" "$@"; }
# bh ROOT ARGS...: buildah on its own storage; vfs would copy every layer, overlay is its default.
bh() {
  local r=$1
  shift
  buildah --root "$r/storage" --runroot "$r/run" --storage-driver overlay "$@"
}

echo "work dir: $WORK; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "xbuild $("$XB" version 2>/dev/null | head -1); $(/usr/bin/docker --version); $(buildah --version)"

# ---- the base: busybox-static with every applet (dockerd_lib.sh)
make_busybox_base "$WORK/busybox.tar"

# ---- the scenarios' contexts; changed.txt is the file the third build of each run changes, and
# CHECK[s] is where its content lands in the final image.
declare -A CHECK
mkctx() { mkdir -p "$WORK/ctx/$1"; echo "initial" > "$WORK/ctx/$1/changed.txt"; }

mkctx parallel
{
  for s in a b c d; do
    echo "FROM busybox:local AS $s"
    echo "RUN sleep 1 && echo $s > /$s"
  done
  echo "FROM busybox:local"
  for s in a b c d; do echo "COPY --from=$s /$s /$s"; done
  echo "COPY changed.txt /"
} > "$WORK/ctx/parallel/Dockerfile"
CHECK[parallel]=/changed.txt

mkctx steps
{
  echo "FROM busybox:local"
  for i in $(seq -w 1 15); do
    echo "ENV STEP_$i=value-$i"
    if [[ $i == 12 ]]; then echo "COPY changed.txt /"; else echo "COPY f$i.txt /files/"; fi
    echo "RUN echo \"\$STEP_$i\" >> /steps.log"
  done
} > "$WORK/ctx/steps/Dockerfile"
for i in $(seq -w 1 15); do echo "file $i" > "$WORK/ctx/steps/f$i.txt"; done
CHECK[steps]=/changed.txt

mkctx files
python3 - "$WORK/ctx/files" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(200):
    dd = os.path.join(root, "src", "mod%03d" % d)
    os.makedirs(dd)
    for f in range(100):
        with open(os.path.join(dd, "file%03d.c" % f), "w") as fh:
            fh.write("/* module %d file %d */\nint f_%d_%d(void) { return %d; }\n" % (d, f, d, f, d * 100 + f))
PY
printf 'FROM busybox:local\nCOPY . /ctx\nRUN find /ctx -type f | wc -l > /count\n' > "$WORK/ctx/files/Dockerfile"
CHECK[files]=/ctx/changed.txt

mkctx big
printf 'FROM busybox:local\nCOPY changed.txt /\nRUN dd if=/dev/urandom of=/big bs=1M count=400 2>/dev/null && ls -l /big\n' > "$WORK/ctx/big/Dockerfile"
CHECK[big]=/changed.txt

# ---- the peers' setup
DOCKERD=$WORK/dockerd
mkdir -p "$DOCKERD/data" "$DOCKERD/exec" "$DOCKERD/client"
echo '{}' > "$DOCKERD/daemon.json"
/usr/sbin/dockerd -H "unix://$DOCKERD/docker.sock" --config-file "$DOCKERD/daemon.json" \
  --data-root "$DOCKERD/data" --exec-root "$DOCKERD/exec" --pidfile "$DOCKERD/docker.pid" \
  --bridge=none --iptables=false --ip6tables=false > "$DOCKERD/dockerd.log" 2>&1 &
echo $! > "$DOCKERD/child.pid"
for _ in $(seq 1 300); do dk version > /dev/null 2>&1 && break; sleep 0.2; done
dk version > /dev/null || { tail -20 "$DOCKERD/dockerd.log" >&2; exit 1; }
dk load -q -i "$WORK/busybox.tar" > /dev/null

# ---- one tool's cold, warm and changed build of one scenario.
# reset_<tool>: untimed, empties the build cache and leaves the base image in place.
# build_<tool> CTX: the timed build, tagging bench:1.  show_<tool> PATH: cat PATH in the image.
reset_xbuild() {
  unmount_under "$WORK/xb"
  rm -rf "$WORK/xb"
  xb --root "$WORK/xb" load -q -i "$WORK/busybox.tar" > /dev/null
}
build_xbuild() { xb --root "$WORK/xb" build -q -t bench:1 "$1"; }
show_xbuild() { xb --root "$WORK/xb" run --rm bench:1 cat "$1"; }
# xbuildhost: xbuild with its RUN steps on the host's network (`--network host`, the default
# before issue 16), for the cost of a step's own network namespace; TOOLS="... xbuildhost".
reset_xbuildhost() { reset_xbuild; }
build_xbuildhost() { xb --root "$WORK/xb" build -q --network host -t bench:1 "$1"; }
show_xbuildhost() { show_xbuild "$@"; }

reset_buildkit() {
  dk rmi -f bench:1 > /dev/null 2>&1 || true
  dk builder prune -af > /dev/null
}
build_buildkit() { DOCKER_BUILDKIT=1 dk build --network=host -q -t bench:1 "$1"; }
show_buildkit() { dk run --rm --network=none bench:1 cat "$1"; }

reset_buildah() {
  unmount_under "$WORK/bh"
  rm -rf "$WORK/bh"
  bh "$WORK/bh" pull -q "docker-archive:$WORK/busybox.tar" > /dev/null
}
# --layers: cache steps (its default is to squash-commit each build with no step cache).
# --jobs 4: run independent stages in parallel (its default runs them one after another).
build_buildah() { (cd "$1" && bh "$WORK/bh" bud --isolation=chroot --layers --jobs 4 --pull=never -q -t bench:1 .); }
show_buildah() {
  local c out
  c=$(bh "$WORK/bh" from -q --pull=never bench:1)
  out=$(bh "$WORK/bh" run --isolation=chroot "$c" cat "$1")
  bh "$WORK/bh" rm "$c" > /dev/null
  printf '%s\n' "$out"
}

read -r -a TOOLS <<< "${TOOLS:-xbuild buildkit buildah}"
declare -A T  # T[scenario.tool.state] = seconds, one per run
for s in $SCENARIOS; do
  ctx=$WORK/ctx/$s
  for tool in "${TOOLS[@]}"; do
    for r in $(seq 1 "$RUNS"); do
      "reset_$tool"
      timed cold "build_$tool" "$ctx"
      timed warm "build_$tool" "$ctx"
      echo "$tool run $r $(now)" > "$ctx/changed.txt"
      timed changed "build_$tool" "$ctx"
      # The changed build used the new content.
      got=$("show_$tool" "${CHECK[$s]}")
      [[ $got == "$(cat "$ctx/changed.txt")" ]] || { echo "$s/$tool: ${CHECK[$s]} is \"$got\", not the changed file" >&2; exit 1; }
      T[$s.$tool.cold]+=" $cold"; T[$s.$tool.warm]+=" $warm"; T[$s.$tool.changed]+=" $changed"
      printf "%-8s %-8s run %d: cold %6.2fs  warm %6.2fs  changed %6.2fs  (load %s)\n" \
        "$s" "$tool" "$r" "$cold" "$warm" "$changed" "$(cut -d' ' -f1-3 /proc/loadavg)"
    done
  done
done

ratio() { echo "scale=4; $1 / $2" | bc; }
echo
echo "== seconds, median of $RUNS; ratio = xbuild/peer (below 1: xbuild is faster)"
# table A B C [REF_HEADER B/C_HEADER]: per scenario and state, the medians of tools A, B and C,
# then the ratios A/B and A/C; with the two extra headers, A/C and B/C (C is the reference).
table() {
  local x=$1 y=$2 z=$3 s st a b c
  printf "%-9s %-8s %10s %10s %10s %12s %12s\n" scenario state "$x" "$y" "$z" "$x/${4:-$y}" "${5:-$x/$z}"
  for s in $SCENARIOS; do
    for st in cold warm changed; do
      a=$(median ${T[$s.$x.$st]}); b=$(median ${T[$s.$y.$st]}); c=$(median ${T[$s.$z.$st]})
      if [[ -n ${4:-} ]]; then  # the last tool is the reference
        printf "%-9s %-8s %9.2fs %9.2fs %9.2fs %12.3f %12.3f\n" "$s" "$st" "$a" "$b" "$c" "$(ratio "$a" "$c")" "$(ratio "$b" "$c")"
      else
        printf "%-9s %-8s %9.2fs %9.2fs %9.2fs %12.3f %12.3f\n" "$s" "$st" "$a" "$b" "$c" "$(ratio "$a" "$b")" "$(ratio "$a" "$c")"
      fi
    done
  done
}
[[ " ${TOOLS[*]} " == *" buildah "* ]] && table xbuild buildkit buildah
if [[ " ${TOOLS[*]} " == *" xbuildhost "* ]]; then
  echo "== xbuildhost: --network host (no namespace per RUN step)"
  table xbuild xbuildhost buildkit buildkit xbuildhost/buildkit
fi
