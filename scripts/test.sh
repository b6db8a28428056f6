#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the whole test suite:
# as a normal optimised build, under AddressSanitizer and
# UndefinedBehaviorSanitizer, and under ThreadSanitizer; then a short fuzz
# run.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
"$src/scripts/install-deps.sh"

# run_suite NAME BUILD_DIR "CTEST ARGS" [CMAKE ARGS...]
run_suite() {
  local name="$1" dir="$2" ctest_args="$3"
  shift 3
  echo "=== $name: building in $dir"
  # Tests on, whatever the directory's cache says: scripts/demo.sh builds
  # into the same build/ with them off.
  "$src/scripts/build.sh" "$dir" -DH2POOL_BUILD_TESTS=ON "$@"
  echo "=== $name: testing"
  # A suite that finds no tests has tested nothing: that is a failure.
  # shellcheck disable=SC2086
  ctest --test-dir "$dir" --output-on-failure --no-tests=error \
    -j"$(nproc)" --timeout 600 $ctest_args
}

# The fault-schedule simulator (tests/sim) runs this many seeds per pass;
# sanitizer builds are slower, so fewer, with more scheduling slack.
H2POOL_SIM_SEEDS=${H2POOL_SIM_SEEDS_RELEASE:-2000} \
  run_suite "release" "$src/build" ""
H2POOL_SIM_SEEDS=${H2POOL_SIM_SEEDS_ASAN:-400} H2POOL_SIM_SLACK_MS=1500 \
H2POOL_SIM_PACE_TOLERANCE_MS=20 \
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  run_suite "asan+ubsan" "$src/build-asan" "-LE soak|bindings" \
  -DCMAKE_BUILD_TYPE=Debug -DH2POOL_SANITIZE=address,undefined
# ThreadSanitizer for everything that runs threads against each other:
# submission, cancel and destroy racing completions.
H2POOL_SIM_SEEDS=${H2POOL_SIM_SEEDS_TSAN:-300} H2POOL_SIM_SLACK_MS=2000 \
H2POOL_SIM_PACE_TOLERANCE_MS=30 H2POOL_SIM_RSS_MB=256 \
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
  run_suite "tsan" "$src/build-tsan" "-LE soak|bindings|install|abi" \
  -DH2POOL_SANITIZE=thread
# A short fuzz run of each libFuzzer target (clang, ASan+UBSan): the saved
# reproducers in fuzz/regressions first, then fresh inputs from the seeds.
echo "=== fuzz: ${H2POOL_FUZZ_SECONDS:-20} s per target"
H2POOL_FUZZ_BUILD_DIR="$src/build-fuzz" "$src/fuzz/run.sh" \
  "${H2POOL_FUZZ_SECONDS:-20}"
echo "=== all suites passed"
