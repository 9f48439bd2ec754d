#!/usr/bin/env bash
# GPU checks for xbuild (not run by ctest): run on a host with an NVIDIA GPU and its driver, as
# root. Builds xbuild if needed, makes a base image (busybox plus the host's glibc, since the
# driver's nvidia-smi is a glibc program), then checks, each PASS or FAIL:
#   1. xbuild run --rm --gpus all IMAGE nvidia-smi          (the host driver's binary injected)
#   2. xbuild run --rm --gpus '"device=0"' IMAGE nvidia-smi -L   (exactly one GPU listed)
#   3. xbuild run --rm --device nvidia.com/gpu=all ...      (the CDI name itself)
#   4. a build whose step uses the GPU: RUN --device=nvidia.com/gpu=all nvidia-smi -L
# Exit status: 0 when every check passed, 1 otherwise, 2 when the setup failed. On a host
# without a GPU every check fails with xbuild's "could not select device driver" error.
# Environment: XBUILD (the binary; default build/cli/xbuild, built when missing), KEEP=1 keeps the
# scratch state root.
set -uo pipefail
cd "$(dirname "$0")/../.."
XB="${XBUILD:-$PWD/build/cli/xbuild}"
if [ ! -x "$XB" ]; then
  echo "== building xbuild" >&2
  bash scripts/build.sh >&2 || { echo "SETUP FAILED: build" >&2; exit 2; }
fi
[ "$(id -u)" -eq 0 ] || { echo "SETUP FAILED: run as root (runc, overlayfs)" >&2; exit 2; }

SCRATCH="$(mktemp -d /tmp/xbuild-gpu.XXXXXX)"
ROOT="$SCRATCH/state"
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "state root kept: $ROOT" >&2; return; fi
  "$XB" --root "$ROOT" container prune -f >/dev/null 2>&1
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
xb() { "$XB" --root "$ROOT" "$@"; }

# ---- base image: busybox + the host's glibc, merged /usr as the driver's paths expect ----
RFS="$SCRATCH/rootfs"
mkdir -p "$RFS/usr/bin" "$RFS/usr/lib/x86_64-linux-gnu" "$RFS/lib64" "$RFS/etc" "$RFS/tmp"
ln -s usr/lib "$RFS/lib"
ln -s usr/bin "$RFS/bin"
BUSYBOX="$(command -v busybox || true)"
[ -n "$BUSYBOX" ] || { echo "SETUP FAILED: busybox not found (apt-get install busybox-static)" >&2; exit 2; }
cp -L "$BUSYBOX" "$RFS/usr/bin/busybox"
for a in sh ls cat echo; do ln -s busybox "$RFS/usr/bin/$a"; done
for lib in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1; do
  src=""
  for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64; do
    [ -e "$d/$lib" ] && { src="$d/$lib"; break; }
  done
  [ -n "$src" ] || { echo "note: host has no $lib" >&2; continue; }
  cp -L "$src" "$RFS/usr/lib/x86_64-linux-gnu/$lib"
done
ln -s ../usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$RFS/lib64/ld-linux-x86-64.so.2"
[ -e /etc/ld.so.cache ] && cp /etc/ld.so.cache "$RFS/etc/ld.so.cache"
xb import "$RFS" gpubase:1 >/dev/null || { echo "SETUP FAILED: xbuild import" >&2; exit 2; }

if ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
  echo "== host GPUs: $(ls /dev/nvidia[0-9]* | tr '\n' ' ')"
  command -v nvidia-smi >/dev/null && nvidia-smi -L
else
  echo "== no /dev/nvidia[0-9]* on this host: every check below is expected to FAIL with a clear error"
fi

PASS=0
FAIL=0
check() {  # check NAME EXPECTED-REGEX COMMAND...
  local name="$1" want="$2"
  shift 2
  local out rc
  out="$("$@" 2>&1)"
  rc=$?
  if [ $rc -eq 0 ] && grep -Eq -- "$want" <<<"$out"; then
    echo "PASS  $name"
    PASS=$((PASS + 1))
  else
    echo "FAIL  $name (exit $rc)"
    sed 's/^/      | /' <<<"$out" | tail -n 20
    FAIL=$((FAIL + 1))
  fi
}

check "run --gpus all nvidia-smi" "NVIDIA-SMI|Driver Version" \
  xb run --rm --gpus all gpubase:1 nvidia-smi
check "run --gpus '\"device=0\"' nvidia-smi -L (one GPU)" "^GPU 0:" \
  sh -c "\"$XB\" --root \"$ROOT\" run --rm --gpus '\"device=0\"' gpubase:1 nvidia-smi -L | tee /dev/stderr | grep -c '^GPU ' | grep -qx 1 && echo 'GPU 0: one'"
check "run --device nvidia.com/gpu=all (CDI name), device nodes present" "^nodes-ok" \
  xb run --rm --device nvidia.com/gpu=all gpubase:1 sh -c '[ -c /dev/nvidiactl ] && [ -c /dev/nvidia0 ] && echo nodes-ok'

CTX="$SCRATCH/ctx"
mkdir -p "$CTX"
printf 'FROM gpubase:1\nRUN --device=nvidia.com/gpu=all nvidia-smi -L > /gpus.txt && cat /gpus.txt\n' >"$CTX/Dockerfile"
check "build: RUN --device=nvidia.com/gpu=all nvidia-smi -L" "GPU 0:" \
  sh -c "\"$XB\" --root \"$ROOT\" build --progress=plain -t gpuimg:1 \"$CTX\" && \"$XB\" --root \"$ROOT\" run --rm gpuimg:1 cat /gpus.txt"

echo "== $PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
