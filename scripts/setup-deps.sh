#!/usr/bin/env bash
# Installs every Debian package xbuild needs to build, test and run its main job.
# Fast and silent when everything is already present.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache git
  # libraries (found by CMake)
  antlr4 default-jre-headless libantlr4-runtime-dev libgit2-dev libarchive-dev libssl-dev libtbb-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev libcurl4-openssl-dev libsqlite3-dev libyaml-dev
  libzstd-dev zlib1g-dev
  # runtime parts and independent checkers used by the tests
  runc skopeo umoci docker-registry apache2-utils busybox-static tar gzip zstd openssl iproute2
  # CNI plugins (bridge, host-local) for container networks (src/exec/cni.h)
  containernetworking-plugins
  # outbound access for those networks (src/exec/outbound.h), masqueraded with iptables
  slirp4netns iptables
  # Docker's default seccomp profile (/usr/share/containers/seccomp.json) for the sandbox
  golang-github-containers-common
  # run --init: tini-static as /usr/bin/docker-init, bound into the container
  tini
  # the examples' toolchain base image: scripts/make-toolchain-rootfs.sh copies these packages
  gcc libc6-dev
  # peers for interop tests and bench/ (a real dockerd, buildah)
  docker.io buildah
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
