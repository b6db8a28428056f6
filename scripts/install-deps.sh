#!/usr/bin/env bash
# Installs, from Debian 12's archive, whatever the build and the tests need and
# this machine lacks. Safe to run repeatedly: it does nothing when all is there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libnghttp2-dev libevent-dev libssl-dev zlib1g-dev
  # Asynchronous DNS on the loop thread.
  libc-ares-dev
  # The br and zstd content-encodings (optional at build time; the tests
  # also use their encoders).
  libbrotli-dev libzstd-dev
  # HTTP/1.1 response parsing.
  libhttp-parser-dev
  libcmocka-dev libgtest-dev
  # Real HTTP/2 peers for the interop tests, and openssl to make their
  # certificates at test time.
  nghttp2-client nghttp2-server h2o nginx openssl
  # HTTP/1.1 interop (nginx and h2o speak it too).
  apache2
  # Real proxies for tests/proxy: HTTP CONNECT and SOCKS5.
  tinyproxy dante-server
  # The Go and Rust bindings are tested with Debian's toolchains (Go 1.19,
  # Rust 1.63), the oldest ones they promise to build with.
  golang-go cargo rustc
  # libFuzzer (clang's runtime) for the fuzz targets in fuzz/.
  clang libclang-rt-14-dev
  # A real DNS server for the resolver tests (tests/faults/resolver_test).
  dnsmasq
  # WebSocket-over-HTTP/2 (RFC 8441) servers for tests/websocket: hypercorn
  # (run with Debian's /usr/bin/python3) and Node's http2 module.
  python3-hypercorn python3-h2 nodejs
  # Used by the test scripts (free-port lookup, binary file comparison).
  python3 iproute2 procps
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  # Packaged servers (h2o) try to start themselves; inside containers and CI
  # there is no init system to do it, and the tests start their own copies.
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
