#!/bin/sh
# Builds the libFuzzer targets (if needed) and runs each for SECONDS
# (default 50: the five targets take under 5 minutes): first over the
# saved crash reproducers in fuzz/regressions/, then fuzzing from a scratch
# copy of the seed corpus, so the repository's corpus is never modified. Exits non-zero if any target crashes, leaks,
# times out or trips an invariant; the input that did it is left in
# $BUILD_DIR/artifacts/ (copy it to fuzz/regressions/<target>/ with the fix).
#
#   fuzz/run.sh [SECONDS]
#   H2POOL_FUZZ_BUILD_DIR=/path/to/build  (default: <repo>/build-fuzz)
#   H2POOL_FUZZ_TARGETS="connection url_headers decompress"  (default: all;
#     decompress_br and decompress_zstd when the build has those codings)
#
# Needs clang with libFuzzer (Debian: clang libclang-rt-14-dev).
set -eu

SECONDS_EACH=${1:-50}
case $SECONDS_EACH in
'' | *[!0-9]*)
  echo "usage: $0 [SECONDS]" >&2
  exit 2
  ;;
esac

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${H2POOL_FUZZ_BUILD_DIR:-$REPO/build-fuzz}

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S "$REPO" -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DH2POOL_BUILD_FUZZERS=ON -DH2POOL_SANITIZE=address,undefined \
    -DH2POOL_BUILD_TESTS=OFF -DH2POOL_BUILD_TOOLS=OFF >/dev/null
else
  # Refreshed, so the cache names the codings the sources now know.
  cmake "$BUILD_DIR" >/dev/null
fi
# The per-coding targets exist when their coding is built in.
default_targets="connection url_headers decompress"
for coding in BROTLI:br ZSTD:zstd; do
  if grep -q "^H2POOL_WITH_${coding%%:*}:BOOL=ON" "$BUILD_DIR/CMakeCache.txt"; then
    default_targets="$default_targets decompress_${coding#*:}"
  fi
done
TARGETS=${H2POOL_FUZZ_TARGETS:-$default_targets}
build_targets=
for t in $TARGETS; do build_targets="$build_targets fuzz_$t"; done
# shellcheck disable=SC2086 # word splitting of the target list is wanted
cmake --build "$BUILD_DIR" --parallel "$(nproc)" --target $build_targets

bin_dir=$BUILD_DIR/fuzz
artifacts=$BUILD_DIR/artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "$BUILD_DIR/fuzz-run.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# Leaks are checked at the end of each input; -timeout turns a hang into a
# failure instead of eating the time budget.
common="-timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1"
failed=
for t in $TARGETS; do
  bin=$bin_dir/fuzz_$t
  # Reproducers first: a known bug must stay fixed before new ones are looked
  # for. Listed individually, each runs once.
  regressions=$(find "$REPO/fuzz/regressions/$t" -type f ! -name '.*' 2>/dev/null | sort)
  if [ -n "$regressions" ]; then
    echo "== fuzz_$t: replaying $(echo "$regressions" | wc -l) regression input(s)"
    # shellcheck disable=SC2086
    if ! "$bin" $common $regressions >"$work/$t.regressions.log" 2>&1; then
      cat "$work/$t.regressions.log" >&2
      echo "FAIL: fuzz_$t crashes on a saved regression input" >&2
      failed="$failed $t"
      continue
    fi
  fi

  mkdir -p "$work/corpus-$t"
  cp "$REPO/fuzz/corpus/$t/"* "$work/corpus-$t/"
  echo "== fuzz_$t: fuzzing for ${SECONDS_EACH}s"
  # shellcheck disable=SC2086
  if "$bin" $common -max_total_time="$SECONDS_EACH" \
    -artifact_prefix="$artifacts/$t-" "$work/corpus-$t" \
    >"$work/$t.log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
      "$work/$t.log" | sed "s/^/  /"
  else
    tail -n 60 "$work/$t.log" >&2
    echo "FAIL: fuzz_$t found a crash; reproducer in $artifacts/$t-*" >&2
    failed="$failed $t"
  fi
done

if [ -n "$failed" ]; then
  echo "failed:$failed" >&2
  exit 1
fi
echo "all fuzz targets passed"
