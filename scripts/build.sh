#!/usr/bin/env bash
# Configures and builds xbuild into build/ (Ninja, ccache when present, -j2 by default).
# Extra arguments go to CMake, e.g. scripts/build.sh -DXBUILD_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${XBUILD_BUILD_DIR:-build}"
JOBS="${XBUILD_JOBS:-2}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DXBUILD_WERROR=ON "$@" >/dev/null
ninja -C "$BUILD_DIR" -j"$JOBS"
