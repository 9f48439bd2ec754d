#!/usr/bin/env bash
# The test command: installs what is missing, builds xbuild and its tests with AddressSanitizer
# + UndefinedBehaviorSanitizer (build-asan/), and runs every test (unit and integration) through
# CTest against that build, so the whole suite exercises sanitized code in one compile (two
# compiles, plain and sanitized, took the CI run past its 30-minute budget on 2 cores). Run as
# root: integration tests use real tools (runc, overlayfs, docker-registry, dockerd, buildah).
# XBUILD_SANITIZE=0 builds and tests the plain build (build/) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
if [ "${XBUILD_SANITIZE:-1}" = "0" ]; then
  dir="${XBUILD_BUILD_DIR:-build}"
  XBUILD_BUILD_DIR="$dir" bash scripts/build.sh
else
  dir="${XBUILD_BUILD_DIR:-build-asan}"
  echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer ($dir)"
  XBUILD_BUILD_DIR="$dir" bash scripts/build.sh -DXBUILD_SANITIZE=ON
fi
(cd "$dir" && ctest --output-on-failure -j2 --timeout 900)
