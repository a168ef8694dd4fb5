#!/usr/bin/env bash
# Formats the C++ sources with the root .clang-format (clang-format 14, Debian 12's).
# --check: change nothing, exit 1 and list the files that differ (CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh format
CF=clang-format-14
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' | grep -v '^tests/integration/node/')
if [ "${1:-}" = "--check" ]; then
  bad=()
  for f in "${files[@]}"; do
    $CF --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf 'not formatted (run scripts/format.sh): %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files clean"
else
  $CF -i "${files[@]}"
fi
