#!/usr/bin/env bash
# The main job, offline: installs what is missing, builds xbuild, makes two base images from
# the host's Debian packages (busybox-static; a C toolchain from scripts/make-toolchain-rootfs.sh),
# builds examples/Dockerfiles/hello and the multi-stage C example on them (`xbuild -t NAME DIR`,
# as a CI job would) and runs both, then saves hello in both archive formats and checks both
# with tools nobody here wrote (skopeo, umoci). Run it as root (the sandbox is runc on overlayfs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
bash scripts/build.sh
XB="$PWD/${XBUILD_BUILD_DIR:-build}/cli/xbuild"
WORK="$(mktemp -d /tmp/xbuild-main-job.XXXXXX)"
# Mounts under the state root (a network's namespace lives as long as the network) go first,
# after the slirp4netns processes serving them (their arguments name the namespace's path).
cleanup() {
  for pid in $(pgrep -x slirp4netns || true); do
    if tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "^$WORK/"; then kill "$pid" || true; fi
  done
  awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$WORK"
}
trap cleanup EXIT
export XBUILD_ROOT="${XBUILD_ROOT:-$WORK/state}"

echo "== base rootfs from busybox-static"
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc"
cp /bin/busybox "$WORK/rootfs/bin/busybox"
# Every applet, as in Docker's busybox image: the examples' RUN steps use mkdir, wc, tr, find...
# (`--list` names busybox itself too: existing files are skipped).
for app in $(/bin/busybox --list); do [ -e "$WORK/rootfs/bin/$app" ] || ln -s busybox "$WORK/rootfs/bin/$app"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$WORK/rootfs/etc/passwd"

echo "== xbuild import"
"$XB" import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' "$WORK/rootfs" busybox:local
echo "== xbuild -t hello:1 examples/Dockerfiles/hello"
"$XB" -t hello:1 examples/Dockerfiles/hello
echo "== xbuild run --rm hello:1"
"$XB" run --rm hello:1
echo "== toolchain rootfs from the host's gcc and libc6-dev packages; xbuild import"
bash scripts/make-toolchain-rootfs.sh "$WORK/toolchain"
"$XB" import "$WORK/toolchain" toolchain:local
echo "== xbuild -t primes:1 examples/Dockerfiles/c-multistage"
"$XB" -t primes:1 examples/Dockerfiles/c-multistage
echo "== xbuild run --rm primes:1"
"$XB" run --rm primes:1
echo "== xbuild images"
"$XB" images
echo "== xbuild save (docker and oci)"
"$XB" save -o "$WORK/hello-docker.tar" hello:1
"$XB" save --format oci -o "$WORK/hello-oci.tar" hello:1
ls -l "$WORK"/*.tar
echo "== skopeo inspect docker-archive:"
skopeo inspect "docker-archive:$WORK/hello-docker.tar" | head -20
echo "== umoci unpack (oci)"
mkdir -p "$WORK/layout" && tar -xf "$WORK/hello-oci.tar" -C "$WORK/layout"
umoci unpack --image "$WORK/layout:1" "$WORK/bundle" >/dev/null
ls "$WORK/bundle/rootfs/bin/busybox" "$WORK/bundle/rootfs/app"
echo "main job: OK"
