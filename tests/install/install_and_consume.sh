#!/usr/bin/env bash
# Installs the build tree into a temporary prefix and uses the result the
# three ways a consumer would (examples/): pkg-config, dlopen, and CMake's
# find_package. Each program then completes one GET against a local
# `h2pool serve` and its output is compared byte for byte.
#
# usage: install_and_consume.sh SRC_DIR BUILD_DIR LIBDIR INCLUDEDIR VERSION
#                               CLI CC [CONFIG] [EXTRA_FLAGS]
#   LIBDIR, INCLUDEDIR: CMAKE_INSTALL_LIBDIR/INCLUDEDIR (relative to prefix)
#   CLI: the built `h2pool` tool; CC: the C compiler CMake uses
#   CONFIG: build configuration (multi-config generators), may be empty
#   EXTRA_FLAGS: compile+link flags every consumer needs (sanitizers)
#
# Environment: CMAKE and PKG_CONFIG name the programs to use (default: PATH).
# Exits 0 on success, 77 (skipped) when the layout cannot be relocated.
set -euo pipefail
cmake=${CMAKE:-cmake}
pkg_config=${PKG_CONFIG:-pkg-config}

if (($# < 7)); then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
src=$1 build=$2 libdir=$3 includedir=$4 version=$5 cli=$6 cc=$7
config=${8:-} extra_flags=${9:-}
major=${version%%.*}
expected_body='hello from h2pool test server'

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "--- $*"; }

if [[ $libdir == /* || $includedir == /* ]]; then
  echo "absolute CMAKE_INSTALL_LIBDIR/INCLUDEDIR: cannot install into a temporary prefix; skipping"
  exit 77
fi
[[ -x $cli ]] || fail "h2pool tool not built: $cli"

work=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-install-test.XXXXXX")
prefix=$work/prefix
server_pid=

cleanup() {
  local rc=$?
  if [[ -n $server_pid ]]; then
    # SIGTERM stops `h2pool serve` cleanly; give it 10 s, then SIGKILL.
    kill "$server_pid" 2>/dev/null || true
    timeout 10 tail --pid="$server_pid" -f /dev/null 2>/dev/null ||
      kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if ((rc != 0)) && [[ -s $work/server.err ]]; then
    echo "--- server stderr:" >&2
    cat "$work/server.err" >&2
  fi
  if ((rc != 0)) && [[ -n ${H2POOL_KEEP_TMP:-} ]]; then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# Word-split on purpose: these are flag lists.
# shellcheck disable=SC2206
extra=($extra_flags)
warn=(-Wall -Wextra -Werror)

# --- install -----------------------------------------------------------------
step "cmake --install into $prefix"
install_args=(--install "$build" --prefix "$prefix")
[[ -n $config ]] && install_args+=(--config "$config")
"$cmake" "${install_args[@]}" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "cmake --install"; }

lib=$prefix/$libdir
for f in "$prefix/$includedir/h2pool.h" "$lib/libh2pool.so" \
  "$lib/libh2pool.so.$major" "$lib/libh2pool.so.$version" \
  "$lib/pkgconfig/h2pool.pc" "$lib/cmake/h2pool/h2poolConfig.cmake" \
  "$lib/cmake/h2pool/h2poolConfigVersion.cmake" \
  "$lib/cmake/h2pool/h2poolTargets.cmake"; do
  [[ -e $f ]] || fail "not installed: ${f#"$prefix"/}"
done
headers=$(cd "$prefix/$includedir" && find . -type f | sort)
[[ $headers == "./h2pool.h" ]] || fail "unexpected installed headers: $headers"
archives=$(find "$prefix" -name '*.a')
[[ -z $archives ]] || fail "static archives installed: $archives"
grep -qFx "$lib/pkgconfig/h2pool.pc" "$build/install_manifest.txt" ||
  fail "h2pool.pc missing from install_manifest.txt"
if readelf -d "$lib/libh2pool.so.$major" | grep -E 'R(UN)?PATH' | grep -qF "$build"; then
  fail "installed library keeps a run path into the build tree"
fi
# The tool finds the library installed beside it, under any prefix, with
# nothing in the environment pointing there.
tool=$prefix/bin/h2pool
[[ -x $tool ]] || fail "not installed: bin/h2pool"
tool_rpath=$(readelf -d "$tool" | grep -E 'R(UN)?PATH' || true)
# shellcheck disable=SC2016 # a literal $ORIGIN
grep -qF '$ORIGIN/../'"$libdir" <<<"$tool_rpath" ||
  fail "bin/h2pool has no \$ORIGIN/../$libdir run path: ${tool_rpath:-none}"
if grep -qF "$build" <<<"$tool_rpath"; then
  fail "bin/h2pool keeps a run path into the build tree: $tool_rpath"
fi
tool_version=$(env -u LD_LIBRARY_PATH "$tool" --version) ||
  fail "installed bin/h2pool --version failed without LD_LIBRARY_PATH"
[[ $tool_version == "h2pool $version" ]] ||
  fail "installed bin/h2pool --version: '$tool_version', want 'h2pool $version'"

# --- pkg-config --------------------------------------------------------------
step "pkg-config"
export PKG_CONFIG_PATH=$lib/pkgconfig
"$pkg_config" --validate h2pool || fail "pkg-config --validate h2pool"
pc_version=$("$pkg_config" --modversion h2pool)
[[ $pc_version == "$version" ]] || fail "pkg-config version $pc_version, want $version"
pc_prefix=$("$pkg_config" --variable=prefix h2pool)
[[ $pc_prefix == "$prefix" ]] || fail "pkg-config prefix $pc_prefix, want $prefix"
pc_libdir=$("$pkg_config" --variable=libdir h2pool)
[[ $pc_libdir == "$lib" ]] || fail "pkg-config libdir $pc_libdir, want $lib"
pc_libs=$("$pkg_config" --libs h2pool)
[[ " $pc_libs " == *" -L$lib "* && " $pc_libs " == *" -lh2pool "* ]] ||
  fail "pkg-config --libs: $pc_libs"
# Dependencies are private to the shared library: a consumer must not be told
# to link them.
[[ $pc_libs != *-lnghttp2* && $pc_libs != *-levent* && $pc_libs != *-lssl* ]] ||
  fail "pkg-config --libs leaks private dependencies: $pc_libs"
pc_static=$("$pkg_config" --static --libs h2pool)
[[ $pc_static == *-lnghttp2* && $pc_static == *-levent_core* ]] ||
  fail "pkg-config --static --libs lacks Requires.private: $pc_static"
pc_cflags=$("$pkg_config" --cflags h2pool)

step "build examples/minimal.c with pkg-config"
# shellcheck disable=SC2086  # pkg-config output is a flag list
"$cc" "${warn[@]}" "${extra[@]}" "$src/examples/minimal.c" $pc_cflags $pc_libs \
  -pthread "-Wl,-rpath,$pc_libdir" -o "$work/minimal"
readelf -d "$work/minimal" | grep -qF "[libh2pool.so.$major]" ||
  fail "minimal does not depend on libh2pool.so.$major"

step "build examples/dlopen_client.c with only -ldl"
"$cc" "${warn[@]}" "${extra[@]}" -I"$prefix/$includedir" \
  "$src/examples/dlopen_client.c" -ldl -pthread -o "$work/dlopen_client"
if readelf -d "$work/dlopen_client" | grep -q 'libh2pool'; then
  fail "dlopen_client links libh2pool"
fi

step "build examples/cmake_consumer with find_package(h2pool)"
consumer_args=(-S "$src/examples/cmake_consumer" -DCMAKE_PREFIX_PATH="$prefix"
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS=${warn[*]} ${extra[*]}"
  "-DCMAKE_EXE_LINKER_FLAGS=${extra[*]}")
"$cmake" "${consumer_args[@]}" -B "$work/consumer" >"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "configuring cmake_consumer"; }
found_dir=$(sed -n 's/^h2pool_DIR:PATH=//p' "$work/consumer/CMakeCache.txt")
[[ $found_dir == "$lib/cmake/h2pool" ]] ||
  fail "find_package(h2pool) used $found_dir, want $lib/cmake/h2pool"
"$cmake" --build "$work/consumer" >>"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "building cmake_consumer"; }

step "find_package(h2pool $((major + 1)).0) is refused (SameMajorVersion)"
if "$cmake" "${consumer_args[@]}" -B "$work/consumer-next" \
  -DH2POOL_MIN_VERSION=$((major + 1)).0 >"$work/consumer-next.log" 2>&1; then
  fail "find_package accepted version $((major + 1)).0"
fi
# CMake names the candidate it rejected and the version its version file gave.
grep -qF "h2poolConfig.cmake, version: $version" "$work/consumer-next.log" ||
  { cat "$work/consumer-next.log" >&2; fail "refusal did not come from the version file"; }

# Each binary must load the installed library, not the build tree's.
for bin in "$work/minimal" "$work/consumer/h2pool_consumer"; do
  resolved=$(env -u LD_LIBRARY_PATH ldd "$bin" | awk '/libh2pool\.so/ {print $3}')
  [[ $resolved == "$lib/libh2pool.so.$major" ]] ||
    fail "${bin##*/} loads '$resolved', want $lib/libh2pool.so.$major"
done

# --- run against a local server -----------------------------------------------
step "start $cli serve --port 0"
coproc SERVER { exec "$cli" serve --port 0 2>"$work/server.err"; }
# shellcheck disable=SC2153  # set by coproc
server_pid=$SERVER_PID
line=
read -r -t 20 line <&"${SERVER[0]}" ||
  fail "h2pool serve exited or printed no URL within 20 s"
url=$(grep -oE 'http://[^[:space:]]+' <<<"$line" | head -n1) ||
  fail "no http:// URL in the server's first line: $line"
url=${url%/}/
echo "server: $url"

run() {
  local name=$1
  shift
  local rc=0
  env -u LD_LIBRARY_PATH timeout 60 "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
  if ((rc != 0)); then
    cat "$work/$name.out" "$work/$name.err" >&2
    fail "$name exited $rc"
  fi
}
# expect_output NAME FORMAT ARGS...: NAME's stdout must equal printf's.
expect_output() {
  local name=$1
  shift
  # shellcheck disable=SC2059  # the format is the expectation
  if ! diff -u <(printf "$@") "$work/$name.out" >&2; then
    fail "$name: unexpected output (diff above)"
  fi
}

step "run minimal (pkg-config build)"
run minimal "$work/minimal" "$url"
expect_output minimal 'status: 200\n%s\n' "$expected_body"

step "run dlopen_client"
run dlopen_client "$work/dlopen_client" "$lib/libh2pool.so.$major" "$url"
expect_output dlopen_client 'library: %s\nstatus: 200\nbody bytes: %d\n' \
  "$version" $((${#expected_body} + 1))

step "run cmake_consumer"
run consumer "$work/consumer/h2pool_consumer" "$url"
expect_output consumer 'status: 200\n%s\n' "$expected_body"

echo "PASS"
