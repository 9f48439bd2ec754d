# Helpers shared by the bench scripts (sourced): a private dockerd, a docker-registry on a
# loopback port, the busybox base image, timing. The caller sets WORK (a scratch dir),
# DOCKERDS=() and REG_PIDS=(), and on exit stops each dockerd of DOCKERDS and each registry of
# REG_PIDS (bench_cleanup does all of it).

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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_registry NAME VAR: a docker-registry on a free loopback port, storage in $WORK/NAME;
# sets VAR to host:port. (Not run in a $(...) subshell, so that cleanup sees the pid.)
start_registry() {
  local dir=$WORK/$1 port
  port=$(free_port)
  mkdir -p "$dir/storage"
  cat > "$dir/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
  secret: xbuild-bench-secret
EOF
  docker-registry serve "$dir/registry.yml" > "$dir/registry.log" 2>&1 &
  REG_PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/v2/" > /dev/null && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$port/v2/" > /dev/null || { cat "$dir/registry.log" >&2; exit 1; }
  printf -v "$2" '%s' "127.0.0.1:$port"
}

# make_busybox_base TAR: busybox-static with every applet, as scripts/main-job.sh makes
# busybox:local, imported with the caller's `xb` function and saved to TAR (docker load, xbuild
# load and buildah pull docker-archive: read it), so every tool starts from the same image.
make_busybox_base() {
  local base=$WORK/busybox-rootfs app
  mkdir -p "$base/bin" "$base/etc" "$base/tmp"
  chmod 1777 "$base/tmp"
  cp /bin/busybox "$base/bin/busybox"
  for app in $(/bin/busybox --list); do [[ -e $base/bin/$app ]] || ln -s busybox "$base/bin/$app"; done
  echo "root:x:0:0:root:/root:/bin/sh" > "$base/etc/passwd"
  xb --root "$WORK/xb-base" import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' "$base" busybox:local > /dev/null
  xb --root "$WORK/xb-base" save -o "$1" busybox:local
}

now() { date +%s.%N; }
# timed VAR CMD...: seconds CMD took (its output goes to $WORK/last.log, shown on failure), after
# a sync so that the previous step's writeback is not charged to it.
timed() {
  local _var=$1 _t0 _t1
  shift
  sync
  _t0=$(now)
  if ! "$@" > "$WORK/last.log" 2>&1; then
    echo "failed: $*" >&2
    tail -30 "$WORK/last.log" >&2
    exit 1
  fi
  _t1=$(now)
  printf -v "$_var" '%s' "$(echo "$_t1 - $_t0" | bc)"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# bench_cleanup: for `trap bench_cleanup EXIT`: stops every dockerd and registry started, unmounts
# and removes $WORK, and exits with the script's status.
bench_cleanup() {
  local rc=$? p d
  set +e
  for d in "${DOCKERDS[@]}"; do stop_dockerd "$d"; done
  for p in "${REG_PIDS[@]}"; do kill -TERM "$p" 2> /dev/null; wait "$p" 2> /dev/null; done
  unmount_under "$WORK"
  rm -rf "$WORK"
  exit $rc
}
