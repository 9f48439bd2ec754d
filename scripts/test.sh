#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit and
# integration) through CTest. Run as root: integration tests use real tools.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
bash scripts/build.sh
cd "${XBUILD_BUILD_DIR:-build}"
ctest --output-on-failure -j2 --timeout 600
