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
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j "$JOBS"
ctest --test-dir "$BUILD_DIR" -j "$JOBS" --output-on-failure --timeout 300
