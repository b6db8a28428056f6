#!/usr/bin/env bash
# The command-line tool through a proxy: -x/--proxy, --proxy-user,
# --noproxy and the proxy environment (read by default, as curl does),
# against tinyproxy and `h2pool serve` on loopback. Skips (77) without
# tinyproxy.
#
#   cli_proxy.sh PATH_TO_H2POOL
set -uo pipefail

CLI=${1:?usage: cli_proxy.sh PATH_TO_H2POOL}
CLI_TIMEOUT=60
DEADLINE_MS=10000
TINYPROXY=/usr/bin/tinyproxy

HARNESS_PREFIX=cli-proxy
# shellcheck source=SCRIPTDIR/../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh" || exit 1

require_cli
if [[ ! -x $TINYPROXY ]]; then
  log "tinyproxy is not installed; skipping"
  exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-cli-proxy.XXXXXX") || exit 1
SERVE_PID=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
stop_all() {
  if [[ -n $SERVE_PID ]]; then
    kill -KILL "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID" 2>/dev/null
  fi
  cleanup
}
on_exit stop_all

"$CLI" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
deadline=$(($(now_ms) + DEADLINE_MS))
URL=""
while [[ $URL != http://* ]]; do
  URL=$(head -n 1 "$WORK/serve.out" 2>/dev/null)
  if ! kill -0 "$SERVE_PID" 2>/dev/null || (($(now_ms) > deadline)); then
    fail "h2pool serve did not print its URL: $(cat "$WORK/serve.err")"
    exit 1
  fi
  sleep 0.02
done
ORIGIN_PORT=${URL##*:}
ORIGIN_PORT=${ORIGIN_PORT%%/*}

PORT=$(pick_port)
cat >"$WORK/tinyproxy.conf" <<CONF
Port $PORT
Listen 127.0.0.1
Allow 127.0.0.1
Timeout 30
LogLevel Connect
BasicAuth alice s3cret
ConnectPort $ORIGIN_PORT
CONF
SERVER_NAME=tinyproxy
"$TINYPROXY" -d -c "$WORK/tinyproxy.conf" >"$WORK/tinyproxy.log" 2>&1 &
SERVER_PID=$!
if ! wait_for_port "$PORT" "$WORK/tinyproxy.log" 1; then
  fail "tinyproxy did not start"
  exit 1
fi
PROXY=http://127.0.0.1:$PORT
CLOSED=http://127.0.0.1:$(pick_port)

# run WANT_EXIT DESCRIPTION ARGS...: stdout/stderr in $WORK/out, $WORK/err.
run() {
  local want=$1 what=$2
  shift 2
  expect_status "$want" "$what" h2pool "$@"
}
connects() { grep -c 'CONNECT' "$WORK/tinyproxy.log"; }
# check DESCRIPTION COMMAND...: passes or fails on COMMAND's status.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what: $(head -c 300 "$WORK/err")"; fi
}
grew() { (($(connects) > $1)); }

before=$(connects)
run 0 "get -x with --proxy-user" get -x "$PROXY" --proxy-user alice:s3cret "$URL/"
check "body came through the tunnel" grep -q 'hello from h2pool test server' "$WORK/out"
check "tinyproxy saw the CONNECT" grew "$before"

run 1 "get with wrong proxy credentials fails" get -x "$PROXY" \
  -U alice:WRONGPW "$URL/"
check "the error is proxy authentication" grep -q 'proxy authentication failed' "$WORK/err"
check "the error names the status" grep -q '401' "$WORK/err"
check "the password is not in the error" bash -c "! grep -q WRONGPW '$WORK/err'"

run 1 "get through a closed proxy port fails" get -x "$CLOSED" "$URL/"
check "named: cannot reach the proxy" grep -q 'cannot reach the proxy' "$WORK/err"

run 0 "--noproxy exempts the origin" get -x "$CLOSED" --noproxy 127.0.0.1 "$URL/"

before=$(connects)
http_proxy="http://alice:s3cret@127.0.0.1:$PORT" run 0 \
  "http_proxy from the environment is used" get "$URL/"
check "tinyproxy saw the CONNECT" grew "$before"
http_proxy=$CLOSED run 0 '--proxy "" ignores the environment' get -x "" "$URL/"
http_proxy=$CLOSED NO_PROXY=127.0.0.1 run 0 "NO_PROXY from the environment" \
  get "$URL/"

run 1 "a bad proxy URL is refused" get -x "ftp://127.0.0.1:21" "$URL/"
check "named: --proxy" grep -q -- '--proxy: invalid argument' "$WORK/err"

run 0 "bench through the proxy" bench -n 20 -c 1 -x "$PROXY" \
  -U alice:s3cret "$URL/"

stop_server
log "$checks checks, $failures failed"
((failures == 0))
