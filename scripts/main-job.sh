#!/usr/bin/env bash
# The main job, offline: installs what is missing, builds xbuild, makes a base image from
# Debian's busybox-static, imports it, lists it, saves it in both archive formats and checks
# both with tools nobody here wrote (skopeo, umoci).
#
# (`xbuild build` arrives with the build issue; this script then builds
# examples/Dockerfiles/hello on that base and runs it.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
bash scripts/build.sh
XB="$PWD/${XBUILD_BUILD_DIR:-build}/cli/xbuild"
WORK="$(mktemp -d /tmp/xbuild-main-job.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export XBUILD_ROOT="${XBUILD_ROOT:-$WORK/state}"

echo "== base rootfs from busybox-static"
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc"
cp /bin/busybox "$WORK/rootfs/bin/busybox"
for app in sh ls cat echo; do ln -sf busybox "$WORK/rootfs/bin/$app"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$WORK/rootfs/etc/passwd"

echo "== xbuild import"
"$XB" import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' "$WORK/rootfs" busybox:local
echo "== xbuild images"
"$XB" images
echo "== xbuild save (docker and oci)"
"$XB" save -o "$WORK/busybox-docker.tar" busybox:local
"$XB" save --format oci -o "$WORK/busybox-oci.tar" busybox:local
ls -l "$WORK"/*.tar
echo "== skopeo inspect docker-archive:"
skopeo inspect "docker-archive:$WORK/busybox-docker.tar" | head -20
echo "== umoci unpack (oci)"
mkdir -p "$WORK/layout" && tar -xf "$WORK/busybox-oci.tar" -C "$WORK/layout"
umoci unpack --image "$WORK/layout:local" "$WORK/bundle" >/dev/null
ls "$WORK/bundle/rootfs/bin"
echo "main job: OK"
