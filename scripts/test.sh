#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the whole test suite:
# once as a normal optimised build, once under AddressSanitizer and
# UndefinedBehaviorSanitizer.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
"$src/scripts/install-deps.sh"

run_suite() {
  local name="$1" dir="$2"
  shift 2
  echo "=== $name: building in $dir"
  "$src/scripts/build.sh" "$dir" "$@"
  echo "=== $name: testing"
  ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" --timeout 600
}

run_suite "release" "$src/build"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  run_suite "asan+ubsan" "$src/build-asan" \
  -DCMAKE_BUILD_TYPE=Debug -DH2POOL_SANITIZE=address,undefined
echo "=== all suites passed"
