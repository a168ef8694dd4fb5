#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 60), starting from
# the checked-in corpus. A crash leaves its input in build-fuzz/artifacts and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
scripts/deps.sh build fuzz
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DTRESTLE_FUZZ=ON -DTRESTLE_TESTS=OFF -DTRESTLE_BENCH=OFF
targets=$(ls tests/fuzz/fuzz_*.cpp | xargs -n1 basename | sed 's/\.cpp$//')
# shellcheck disable=SC2086
cmake --build build-fuzz --target $targets
mkdir -p build-fuzz/artifacts
for t in $targets; do
  name=${t#fuzz_}
  work=build-fuzz/corpus/$name
  mkdir -p "$work"
  echo "== $t for ${SECONDS_EACH}s"
  build-fuzz/tests/fuzz/$t -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
      -artifact_prefix=build-fuzz/artifacts/"$t"- "$work" tests/fuzz/corpus/"$name" 2>&1 \
      | grep -E "^#[0-9]+ +DONE|ERROR|SUMMARY|stat::number_of_executed_units" || true
  if ls build-fuzz/artifacts/"$t"-* >/dev/null 2>&1; then
    echo "$t found a failing input:"; ls build-fuzz/artifacts/"$t"-*; exit 1
  fi
done
