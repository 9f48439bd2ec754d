# Helpers to run a private dockerd (sourced by the bench scripts). The caller sets WORK (a
# scratch dir) and DOCKERDS=() and calls stop_dockerd on each entry of DOCKERDS on exit.

# Detaches every mount under $1, deepest first.
unmount_under() {
  python3 - "$1" <<'PY'
import ctypes, sys
root = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
points = []
for line in open("/proc/self/mountinfo"):
    p = line.split()[4].encode().decode("unicode_escape")
    if p == root or p.startswith(root + "/"):
        points.append(p)
for p in sorted(points, key=len, reverse=True):
    libc.umount2(p.encode(), 2)  # MNT_DETACH
PY
}

stop_dockerd() {
  local d=$1 pid c
  [[ -f $d/child.pid ]] || return 0
  pid=$(cat "$d/child.pid")
  rm -f "$d/child.pid"
  if kill -0 "$pid" 2> /dev/null; then
    kill -TERM "$pid" 2> /dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2> /dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2> /dev/null; then kill -KILL "$pid" 2> /dev/null || true; fi
    wait "$pid" 2> /dev/null || true
  fi
  # Its managed containerd stops with it, unless dockerd was killed.
  if [[ -f $d/exec/containerd/containerd.pid ]]; then
    c=$(cat "$d/exec/containerd/containerd.pid")
    if [[ -n $c ]] && grep -q containerd "/proc/$c/cmdline" 2> /dev/null; then kill -KILL "$c" || true; fi
  fi
  unmount_under "$d"
}

# start_dockerd NAME VAR: a private dockerd with a fresh data root $WORK/NAME/data; sets VAR
# to its dir, the first argument of dk.
start_dockerd() {
  local d=$WORK/$1
  mkdir -p "$d/data" "$d/exec" "$d/client"
  echo '{}' > "$d/daemon.json"
  DOCKERDS+=("$d")
  /usr/sbin/dockerd -H "unix://$d/docker.sock" --config-file "$d/daemon.json" --data-root "$d/data" \
    --exec-root "$d/exec" --pidfile "$d/docker.pid" --bridge=none --iptables=false --ip6tables=false \
    > "$d/dockerd.log" 2>&1 &
  echo $! > "$d/child.pid"
  printf -v "$2" '%s' "$d"
  for _ in $(seq 1 300); do dk "$d" version > /dev/null 2>&1 && return 0; sleep 0.2; done
  tail -20 "$d/dockerd.log" >&2
  exit 1
}
# dk DOCKERD_DIR ARGS...: the docker client for that dockerd
dk() { local d=$1; shift; DOCKER_CONFIG=$d/client /usr/bin/docker -H "unix://$d/docker.sock" "$@"; }
