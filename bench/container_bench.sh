#!/usr/bin/env bash
# Times starting containers: `xbuild run --rm base true` and `xbuild exec` into a running
# container, against the floor (`runc run` of a prepared bundle, the same busybox rootfs) and,
# when dockerd is installed, `docker run --rm` / `docker exec` on a private dockerd.
# usage: [N=20] bench/container_bench.sh [path/to/xbuild]
# Run as root. Everything lives under a mktemp dir in /tmp, removed on exit with its mounts,
# containers and dockerd. Prints the median and best of N runs of each.
set -euo pipefail

XB=$(realpath "${1:-build/cli/xbuild}")
N=${N:-20}
[[ -x $XB ]] || { echo "no xbuild binary at $XB" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "run as root (runc)" >&2; exit 2; }
for t in runc busybox python3; do command -v "$t" > /dev/null || { echo "$t is missing" >&2; exit 2; }; done

WORK=$(mktemp -d /tmp/xbuild-container-bench.XXXXXX)
DOCKERDS=()
# shellcheck source=bench/dockerd_lib.sh
source "$(dirname "$0")/dockerd_lib.sh"
cleanup() {
  local rc=$? d
  set +e
  xb rm -f bench-exec bench-floor > /dev/null 2>&1
  runc --root "$WORK/runc" delete --force floor > /dev/null 2>&1
  runc --root "$WORK/runc" delete --force floor2 > /dev/null 2>&1
  for d in "${DOCKERDS[@]}"; do stop_dockerd "$d"; done
  unmount_under "$WORK"
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

xb() { XBUILD_CONFIG='' "$XB" --root "$WORK/xb" "$@"; }
# stats LABEL CMD...: N timed runs of CMD (output dropped); prints median and best in ms.
stats() {
  local label=$1
  shift
  python3 - "$N" "$label" "$@" <<'PY'
import subprocess, sys, time
n, label, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
times = []
for _ in range(n):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(f"{label:<34} median {times[len(times)//2]:7.1f} ms   best {times[0]:7.1f} ms")
PY
}

# Lets the kernel finish what the previous section's containers left it to do in the background
# (network namespaces are torn down by a kernel worker after their last process exits).
settle() { sleep 3; }

# paired LABEL FLOOR_CMD -- CMD: N pairs of the two run back to back (their order alternating);
# prints the median and quartiles of CMD's time minus FLOOR_CMD's. This machine's speed drifts
# by more than the overhead being measured within one run of this script, so a difference of two
# separate medians can be off by ±15 ms; the paired difference sees both at the same moment.
paired() {
  local label=$1
  shift
  python3 - "$N" "$label" "$@" <<'PY'
import subprocess, sys, time
n, label, rest = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
sep = rest.index("--")
floor, cmd = rest[:sep], rest[sep + 1:]
def timed(c):
    t0 = time.perf_counter()
    subprocess.run(c, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000
diffs = []
for i in range(n):
    if i % 2:
        b = timed(cmd); a = timed(floor)
    else:
        a = timed(floor); b = timed(cmd)
    diffs.append(b - a)
diffs.sort()
q = lambda f: diffs[min(len(diffs) - 1, int(len(diffs) * f))]
print(f"{label:<34} median {q(0.5):+7.1f} ms   quartiles {q(0.25):+.1f} / {q(0.75):+.1f} ms")
PY
}

echo "$(nproc) cores; load average $(cut -d" " -f1-3 /proc/loadavg); $N runs each; $(runc --version | head -1)"
mkdir -p "$WORK/rootfs/bin" "$WORK/bundle"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in sh true sleep; do ln -s busybox "$WORK/rootfs/bin/$a"; done
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
xb import "$WORK/rootfs.tar" base:1 > /dev/null

# The floor: runc's default spec (no network namespace, as xbuild's host network), process `true`.
cp -a "$WORK/rootfs" "$WORK/bundle/rootfs"
(cd "$WORK/bundle" && runc spec)
python3 - "$WORK/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
json.dump(c, open(p, "w"))
PY
stats "runc run (prepared bundle)" runc --root "$WORK/runc" run --bundle "$WORK/bundle" floor

# The same floor on the bundle xbuild writes for `run --network none` (Docker's seccomp profile,
# masked paths, cgroup, hosts/resolv.conf/hostname binds): what runc itself costs for the
# container xbuild asks for, so that the rest of `xbuild run` is xbuild's own overhead.
xb run -d --network none --name bench-floor base:1 sleep 100000 > /dev/null
floor_id=$(xb inspect --format '{{.Id}}' bench-floor)
mkdir -p "$WORK/xbundle"
cp -a "$WORK/rootfs" "$WORK/xbundle/rootfs"
cp "$WORK/xb/containers/$floor_id/bundle/"{hosts,resolv.conf,hostname} "$WORK/xbundle/"
python3 - "$WORK/xb/containers/$floor_id/bundle/config.json" "$WORK/xbundle" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
c = json.load(open(src))
c["root"] = {"path": dst + "/rootfs", "readonly": False}
c["process"]["args"] = ["/bin/true"]
for m in c["mounts"]:
    if m["type"] == "bind" and m["source"].endswith(("/hosts", "/resolv.conf", "/hostname")):
        m["source"] = dst + "/" + m["source"].rsplit("/", 1)[1]
c["linux"]["cgroupsPath"] = "/xbuild-bench-floor"
json.dump(c, open(dst + "/config.json", "w"))
PY
xb rm -f bench-floor > /dev/null
stats "runc run (xbuild's bundle)" runc --root "$WORK/runc" run --bundle "$WORK/xbundle" floor2
settle
stats "xbuild run --rm --network none" "$XB" --root "$WORK/xb" run --rm --network none base:1 true
stats "xbuild run --rm --network host" "$XB" --root "$WORK/xb" run --rm --network host base:1 true
echo "-- over runc on xbuild's bundle, paired (the 20 ms target):"
paired "xbuild run --rm --network none" runc --root "$WORK/runc" run --bundle "$WORK/xbundle" floor2 \
  -- "$XB" --root "$WORK/xb" run --rm --network none base:1 true
paired "xbuild run --rm --network host" runc --root "$WORK/runc" run --bundle "$WORK/xbundle" floor2 \
  -- "$XB" --root "$WORK/xb" run --rm --network host base:1 true
settle
xb run -d --name bench-exec base:1 sleep 100000 > /dev/null
stats "xbuild exec bench-exec true" "$XB" --root "$WORK/xb" exec bench-exec true
# exec's floor: runc exec straight into the same container (its state is under xbuild's root).
exec_id=$(xb inspect --format '{{.Id}}' bench-exec)
stats "runc exec (same container)" runc --root "$WORK/xb/runc" exec "$exec_id" /bin/true
paired "xbuild exec, over runc exec" runc --root "$WORK/xb/runc" exec "$exec_id" /bin/true \
  -- "$XB" --root "$WORK/xb" exec bench-exec true
xb rm -f bench-exec > /dev/null
# The bridge last: each run leaves the kernel tearing down a network namespace and a veth pair in
# the background for a while, which would be charged to whatever is timed next.
settle
stats "xbuild run --rm base:1 true (bridge)" "$XB" --root "$WORK/xb" run --rm base:1 true
settle

if [[ -x /usr/sbin/dockerd && -x /usr/bin/docker ]]; then
  start_dockerd docker D
  dk "$D" import "$WORK/rootfs.tar" base:1 > /dev/null
  stats "docker run --rm base:1 true" /usr/bin/docker -H "unix://$D/docker.sock" run --rm --network none base:1 true
  dk "$D" run -d --name bench-exec --network none base:1 sleep 100000 > /dev/null
  stats "docker exec bench-exec true" /usr/bin/docker -H "unix://$D/docker.sock" exec bench-exec true
  dk "$D" rm -f bench-exec > /dev/null
else
  echo "(no dockerd: docker figures skipped)"
fi
