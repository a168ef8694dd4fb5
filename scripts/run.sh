#!/usr/bin/env bash
# Builds trestled and runs it on its built-in default configuration
# (router-config/standalone.conf). Extra arguments go to trestled, e.g. --log-level debug.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRESTLE_TESTS=OFF -DTRESTLE_BENCH=OFF
cmake --build build --target trestled
exec build/trestled "$@"
