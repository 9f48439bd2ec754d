#!/usr/bin/env bash
# What a RUN step's own network costs (issue 16): a 30-step build (30 x `RUN echo >>`) and a
# one-step build, --no-cache, under each of xbuild's RUN network modes, interleaved by round:
#   host     the host's network: the default before issue 16 (no namespace, no slirp4netns)
#   default  a namespace of the step's own with a way out (src/exec/netns_pool.h)
#   none     a namespace with only loopback (runc makes it)
# Per-step cost = (median(default) - median(host)) / steps, and the same against none.
# usage: [ROUNDS=N] bench/run_network_bench.sh [path/to/xbuild]   (as root; see bench/README.md)
set -euo pipefail

XB=${1:-build/cli/xbuild}
[[ -x $XB ]] || { echo "no xbuild binary at $XB" >&2; exit 2; }
XB=$(realpath "$XB")
[[ $(id -u) -eq 0 ]] || { echo "run as root (runc, overlayfs, network namespaces)" >&2; exit 2; }
ROUNDS=${ROUNDS:-9}
WORK=$(mktemp -d /tmp/xbuild-run-network-bench.XXXXXX)
DOCKERDS=()
REG_PIDS=()
source "$(dirname "$0")/dockerd_lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

xb() { XBUILD_CONFIG='' "$XB" --root "$WORK/xb" "$@"; }
make_busybox_base "$WORK/busybox.tar"
xb load -q -i "$WORK/busybox.tar" > /dev/null
# bench_steps N: N RUN steps, ROUNDS rounds of host/default/none, the medians and per-step cost.
bench_steps() {
  local steps=$1 ctx=$WORK/ctx$1 mode r t h d n
  mkdir -p "$ctx"
  {
    echo "FROM busybox:local"
    for i in $(seq 1 "$steps"); do echo "RUN echo $i >> /steps.log"; done
  } > "$ctx/Dockerfile"
  build() { xb build -q --no-cache --network "$1" -t bench:1 "$ctx"; }
  build default > /dev/null  # the base unpacked once, outside the timings
  declare -A T=()
  for r in $(seq 1 "$ROUNDS"); do
    for mode in host default none; do
      timed t build "$mode"
      T[$mode]+=" $t"
    done
  done
  h=$(median ${T[host]}); d=$(median ${T[default]}); n=$(median ${T[none]})
  echo "== $steps RUN step(s), --no-cache, median of $ROUNDS: host ${h}s, default ${d}s, none ${n}s"
  echo "   per RUN step: default - host $(echo "scale=2; ($d - $h) * 1000 / $steps" | bc) ms," \
    "default - none $(echo "scale=2; ($d - $n) * 1000 / $steps" | bc) ms"
}
# 30 steps: the steady state (namespaces reused); 1 step: the worst case, where the step may
# wait for the first namespace to be made.
bench_steps 30
bench_steps 1
