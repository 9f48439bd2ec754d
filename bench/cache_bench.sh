#!/usr/bin/env bash
# The CI scenario, xbuild vs BuildKit: runner A builds a multi-stage Dockerfile and leaves its
# build cache in a registry; runner B, a fresh machine with only the base image loaded, builds
# the same with --cache-from. Runner B's build is what is timed:
#   unchanged  nothing changed since A: every step is cached, B pulls the final image's layers
#   changed    one file of the final stage changed: its COPY and the RUN after it run on B
# xbuild, two variants: A `--cache-to type=registry,ref=R,mode=max` ("registry"), or
#   `--cache-to type=inline --push -t IMAGE` ("inline"); B `--cache-from R` / `--cache-from IMAGE`.
# BuildKit (Debian's dockerd 20.10, DOCKER_BUILDKIT=1, a private dockerd per runner, each with a
#   fresh --data-root): A `--build-arg BUILDKIT_INLINE_CACHE=1` + `docker push`; B
#   `--cache-from IMAGE`. BuildKit in dockerd has no registry cache exporter, so inline it is.
# Both start from the same busybox image (one tar, `xbuild load` / `docker load`), build with
# the host's network and push to one docker-registry on a loopback port.
# usage: [RUNS=N] bench/cache_bench.sh [path/to/xbuild]     (RUNS default 3; figures are medians)
# Run as root. Everything lives under a mktemp dir in /tmp, removed on exit with its mounts,
# dockerds and registry. See bench/README.md.
set -euo pipefail

XB=${1:-build/cli/xbuild}
[[ -x $XB ]] || { echo "no xbuild binary at $XB" >&2; exit 2; }
XB=$(realpath "$XB")
for t in /usr/sbin/dockerd /usr/bin/docker docker-registry python3 bc curl /bin/busybox; do
  command -v "$t" > /dev/null || { echo "$t is missing: run scripts/setup-deps.sh" >&2; exit 2; }
done
[[ $(id -u) -eq 0 ]] || { echo "run as root (dockerd, runc, overlayfs)" >&2; exit 2; }
RUNS=${RUNS:-3}

WORK=$(mktemp -d /tmp/xbuild-cache-bench.XXXXXX)
DOCKERDS=()
REG_PIDS=()
# shellcheck source=bench/dockerd_lib.sh
source "$(dirname "$0")/dockerd_lib.sh"

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

xb() { XBUILD_CONFIG='' DOCKER_CONFIG=$WORK/xb-client "$XB" "$@"; }

echo "work dir: $WORK; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "xbuild $("$XB" version 2>/dev/null | head -1); $(/usr/bin/docker --version)"

make_busybox_base "$WORK/busybox.tar"
start_registry registry REG

# The build stage makes 32 MiB that does not compress and takes ~3 s of RUN; the final image has
# three step layers (the build's output, a context file, a RUN writing 8 MiB).
CTX=$WORK/ctx
mkdir -p "$CTX"
cat > "$CTX/Dockerfile" <<'EOF'
FROM busybox:local AS build
RUN sleep 2 && mkdir -p /out && head -c 33554432 /dev/urandom > /out/data
COPY src.txt /src.txt
RUN sleep 1 && cat /src.txt > /out/version && md5sum /out/data > /out/data.md5
FROM busybox:local
COPY --from=build /out /app
COPY conf.txt /conf.txt
RUN sleep 1 && cat /conf.txt /app/version > /app/info && head -c 8388608 /dev/urandom > /blob
CMD ["cat", "/app/info"]
EOF
echo "source 1" > "$CTX/src.txt"

# ---- runner A of each tool (untimed), then runner B (timed) on a fresh root / dockerd.
# a_<variant> RUN: A's build and push.  fresh_b_<tool>: a new runner B with the base loaded.
# b_<variant> RUN: B's build (timed).  show_<tool>: what B's image prints (/app/info).
a_xbuild_registry() {
  xb --root "$WORK/a-$1" load -q -i "$WORK/busybox.tar" > /dev/null
  xb --root "$WORK/a-$1" build -q -t app:a --cache-to "type=registry,ref=$REG/xb-registry-$1/cache:main,mode=max" "$CTX" > /dev/null
}
a_xbuild_inline() {
  xb --root "$WORK/a-$1" load -q -i "$WORK/busybox.tar" > /dev/null
  xb --root "$WORK/a-$1" build -q --cache-to type=inline --push -t "$REG/xb-inline-$1/app:1" "$CTX" > /dev/null
}
fresh_b_xbuild() {
  unmount_under "$WORK/b"
  rm -rf "$WORK/b"
  xb --root "$WORK/b" load -q -i "$WORK/busybox.tar" > /dev/null
}
b_xbuild_registry() { xb --root "$WORK/b" build --progress=plain -t app:b --cache-from "type=registry,ref=$REG/xb-registry-$1/cache:main" "$CTX"; }
b_xbuild_inline() { xb --root "$WORK/b" build --progress=plain -t app:b --cache-from "$REG/xb-inline-$1/app:1" "$CTX"; }
show_xbuild() { xb --root "$WORK/b" run --rm app:b; }

a_buildkit() {
  local a
  start_dockerd "bk-a-$1" a
  dk "$a" load -q -i "$WORK/busybox.tar" > /dev/null
  DOCKER_BUILDKIT=1 dk "$a" build --network=host -q --build-arg BUILDKIT_INLINE_CACHE=1 -t "$REG/bk-$1/app:1" "$CTX" > /dev/null
  dk "$a" push -q "$REG/bk-$1/app:1" > /dev/null
  stop_dockerd "$a"
}
BK_B=""
fresh_b_buildkit() {
  [[ -n $BK_B ]] && { stop_dockerd "$BK_B"; rm -rf "$BK_B"; }
  start_dockerd "bk-b-$(date +%s%N)" BK_B
  dk "$BK_B" load -q -i "$WORK/busybox.tar" > /dev/null
}
b_buildkit_inline() { DOCKER_BUILDKIT=1 dk "$BK_B" build --progress=plain --network=host -t app:b --cache-from "$REG/bk-$1/app:1" "$CTX"; }
show_buildkit() { dk "$BK_B" run --rm --network=none app:b; }

# check TOOL LOG: B's image holds the current conf.txt and A's build-stage output; in the
# unchanged build no RUN step ran (its output line would be there).
check() {
  local got want
  got=$("show_$1")
  want="$(cat "$CTX/conf.txt")"$'\n'"source 1"
  [[ $got == "$want" ]] || { echo "$1: B's image says \"$got\", not \"$want\"" >&2; exit 1; }
}
ran_steps() { grep -cE '^#[0-9]+ \[[^]]+\] RUN' "$1" | awk -v c="$(grep -cE '^#[0-9]+ CACHED' "$1")" '{print $1 " RUN shown, " c " CACHED"}'; }

declare -A T  # T[variant.state] = seconds, one per run
VARIANTS=(xbuild-registry xbuild-inline buildkit-inline)
for r in $(seq 1 "$RUNS"); do
  echo "conf 1" > "$CTX/conf.txt"
  a_xbuild_registry "$r"
  a_xbuild_inline "$r"
  a_buildkit "$r"
  for state in unchanged changed; do
    [[ $state == changed ]] && echo "conf $r changed" > "$CTX/conf.txt"
    for v in "${VARIANTS[@]}"; do
      tool=${v%%-*}
      "fresh_b_$tool"
      timed t "b_${v//-/_}" "$r"
      cp "$WORK/last.log" "$WORK/b-$v-$state-$r.log"
      check "$tool"
      T[$v.$state]+=" $t"
      printf "run %d %-9s %-16s B %6.2fs  (%s; load %s)\n" "$r" "$state" "$v" "$t" \
        "$(ran_steps "$WORK/b-$v-$state-$r.log")" "$(cut -d' ' -f1-3 /proc/loadavg)"
    done
  done
done

ratio() { echo "scale=3; $1 / $2" | bc; }
echo
echo "== runner B's build, seconds, median of $RUNS; ratio = xbuild / BuildKit (target <= 0.5)"
printf "%-10s %-16s %9s %9s %7s\n" state xbuild-variant xbuild buildkit ratio
for state in unchanged changed; do
  bk=$(median ${T[buildkit-inline.$state]})
  for v in xbuild-registry xbuild-inline; do
    x=$(median ${T[$v.$state]})
    printf "%-10s %-16s %8.2fs %8.2fs %7.3f\n" "$state" "${v#xbuild-}" "$x" "$bk" "$(ratio "$x" "$bk")"
  done
done
