#!/usr/bin/env bash
# cargo test of bindings/rust against the installed library, with Debian's
# cargo/rustc (the oldest supported, 1.63) when present, and also with the
# cargo first on PATH or in ~/.cargo/bin when that is another toolchain.
# Usage: bindings_rust.sh SOURCE_DIR BUILD_DIR H2POOL_CLI WORK_DIR [CONFIG] [SANITIZE]
source "$(dirname "$0")/bindings_common.sh"

candidates=()
[ -x /usr/bin/cargo ] && candidates+=(/usr/bin/cargo)
path_cargo=$(command -v cargo || true)
[ -n "$path_cargo" ] && candidates+=("$path_cargo")
[ -n "${HOME:-}" ] && [ -x "$HOME/.cargo/bin/cargo" ] && candidates+=("$HOME/.cargo/bin/cargo")

toolchains=()
for cargo in "${candidates[@]}"; do
  dup=0
  for seen in "${toolchains[@]}"; do
    [ "$(readlink -f "$seen")" = "$(readlink -f "$cargo")" ] && dup=1
  done
  [ $dup = 1 ] || toolchains+=("$cargo")
done
[ ${#toolchains[@]} -gt 0 ] || skip "cargo not found (apt-get install cargo rustc)"
command -v pkg-config >/dev/null || skip "pkg-config not found"

install_prefix

# No registry, no user configuration: the crates have no dependencies.
export CARGO_HOME=$work_dir/cargo-home
export CARGO_NET_OFFLINE=true
export RUST_BACKTRACE=0
mkdir -p "$CARGO_HOME"

cd "$src_dir/bindings/rust"
n=0
for cargo in "${toolchains[@]}"; do
  n=$((n + 1))
  bin=$(dirname "$cargo")
  # Each cargo runs its own rustc/rustdoc, not whichever is first on PATH
  # (rustup's proxies in ~/.cargo/bin pick their toolchain themselves).
  if [ -x "$bin/rustc" ]; then
    export RUSTC=$bin/rustc
  else
    unset RUSTC
  fi
  if [ -x "$bin/rustdoc" ]; then
    export RUSTDOC=$bin/rustdoc
  else
    unset RUSTDOC
  fi
  if [ "$bin" = "${HOME:-/nonexistent}/.cargo/bin" ]; then
    # rustup finds its toolchains through RUSTUP_HOME (default ~/.rustup).
    export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
  fi
  echo "== $cargo: $("$cargo" --version), $("${RUSTC:-rustc}" --version)"
  export CARGO_TARGET_DIR=$work_dir/target-$n
  "$cargo" test --offline
done
