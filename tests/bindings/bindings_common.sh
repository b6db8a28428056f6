# Sourced by bindings_go.sh and bindings_rust.sh.
# Arguments: SOURCE_DIR BUILD_DIR H2POOL_CLI WORK_DIR [CONFIG] [SANITIZE]
# Installs BUILD_DIR into WORK_DIR/prefix and points pkg-config, the dynamic
# linker and the tests (H2POOL_CLI) at it.
set -euo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 SOURCE_DIR BUILD_DIR H2POOL_CLI WORK_DIR [CONFIG] [SANITIZE]" >&2
  exit 2
fi
src_dir=$1
build_dir=$2
export H2POOL_CLI=$3
work_dir=$4
build_config=${5:-}
sanitize=${6:-}

skip() {
  echo "SKIP: $*"
  exit 77
}

if [ -n "$sanitize" ]; then
  # A sanitized libh2pool needs its runtime loaded first, which neither the
  # Go race detector nor cargo's test binaries arrange.
  skip "the library is built with -fsanitize=$sanitize"
fi

install_prefix() {
  local cmake=${CMAKE:-cmake}
  prefix=$work_dir/prefix
  rm -rf "$prefix"
  mkdir -p "$work_dir"
  local args=(--install "$build_dir" --prefix "$prefix")
  if [ -n "$build_config" ]; then
    args+=(--config "$build_config")
  fi
  "$cmake" "${args[@]}" >"$work_dir/install.log"
  local pc
  pc=$(find "$prefix" -name h2pool.pc -print -quit)
  if [ -z "$pc" ]; then
    echo "no h2pool.pc under $prefix" >&2
    exit 1
  fi
  local libdir
  libdir=$(dirname "$(dirname "$pc")")
  export PKG_CONFIG_PATH=$(dirname "$pc")
  export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "installed into $prefix (libdir $libdir)"
}
