#!/usr/bin/env bash
# Quick start: install what is missing, build, and run `h2pool demo`.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
"$src/scripts/install-deps.sh"
"$src/scripts/build.sh" "$src/build" -DH2POOL_BUILD_TESTS=OFF
exec "$src/build/tools/h2pool" demo "$@"
