#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit and
# integration) through CTest, then again with AddressSanitizer + UBSan. Run as root:
# integration tests use real tools. XBUILD_SKIP_SANITIZE=1 skips the sanitizer pass, which
# leaves out the tests labelled "integration-peers" (dockerd, buildah, the toolchain image: they exercise
# the peers more than our code, and their time would double the run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
bash scripts/build.sh
(cd "${XBUILD_BUILD_DIR:-build}" && ctest --output-on-failure -j2 --timeout 600)
if [ "${XBUILD_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== again under AddressSanitizer + UndefinedBehaviorSanitizer"
  XBUILD_BUILD_DIR=build-asan bash scripts/build.sh -DXBUILD_SANITIZE=ON
  (cd build-asan && ctest --output-on-failure -j2 --timeout 600 -LE peers)
fi
