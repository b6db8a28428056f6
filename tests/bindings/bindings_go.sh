#!/usr/bin/env bash
# go vet and go test -race of bindings/go against the installed library.
# Usage: bindings_go.sh SOURCE_DIR BUILD_DIR H2POOL_CLI WORK_DIR [CONFIG] [SANITIZE]
source "$(dirname "$0")/bindings_common.sh"

go=$(command -v go || true)
if [ -z "$go" ] && [ -x /usr/lib/go/bin/go ]; then
  go=/usr/lib/go/bin/go
fi
[ -n "$go" ] || skip "go not found (apt-get install golang-go)"
command -v pkg-config >/dev/null || skip "pkg-config not found"

install_prefix

# Everything Go writes stays in the build tree; nothing is fetched.
export GOCACHE=$work_dir/gocache
export GOPATH=$work_dir/gopath
export GOTMPDIR=
export GOENV=off
export GOFLAGS=
export GOWORK=off
export GOTOOLCHAIN=local
export GOPROXY=off
export GO111MODULE=on
export CGO_ENABLED=1

cd "$src_dir/bindings/go"
"$go" version
"$go" vet ./...
"$go" test -race -count=1 ./...
