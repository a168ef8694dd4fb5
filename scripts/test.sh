#!/usr/bin/env bash
# Builds Trestle and runs the whole test suite (unit + integration) on a fresh Debian 12.
# Environment: BUILD_DIR (default build), CMAKE_ARGS (extra cmake arguments), JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build test
# Third-party client SDKs the integration tests drive (versions pinned by package-lock.json).
(cd tests/integration/node && npm ci --no-audit --no-fund --loglevel=error)
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
# Tests on, explicitly: scripts/run.sh configures the same build directory with them off, and a
# cached TRESTLE_TESTS=OFF would otherwise leave nothing to run.
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRESTLE_TESTS=ON ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j "$JOBS"
# --no-tests=error: a build that registered no tests fails instead of passing with nothing run.
ctest --test-dir "$BUILD_DIR" -j "$JOBS" --output-on-failure --timeout 300 --no-tests=error
