#!/usr/bin/env bash
# Smoke test of the h2pool command-line tool on its own: argument handling
# and exit statuses, then get/bench/demo against `h2pool serve` on loopback.
#
#   cli.sh PATH_TO_H2POOL                  # the smoke test
#   cli.sh PATH_TO_H2POOL after-settings-goaway
#                                          # only: get against a server that
#                                          # sends GOAWAY right after SETTINGS
set -uo pipefail

CLI=${1:?usage: cli.sh PATH_TO_H2POOL [after-settings-goaway]}
MODE=${2:-smoke}
CLI_TIMEOUT=60
DEADLINE_MS=10000

HARNESS_PREFIX=cli
# shellcheck source=SCRIPTDIR/../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh" || exit 1

require_cli

WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-cli.XXXXXX") || exit 1
# `h2pool serve` is stopped by the test itself (a clean SIGTERM exit is one
# of the checks); on an early exit it is simply killed.
on_exit kill_serve_and_cleanup

# expect_exit WANT DESCRIPTION ARGS...: runs the CLI, checks its exit status;
# stdout and stderr are left in $WORK/out and $WORK/err.
expect_exit() {
  local want=$1 what=$2
  shift 2
  expect_status "$want" "$what" h2pool "$@"
}

# check DESCRIPTION COMMAND...: passes or fails on COMMAND's status.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# --- get against a server that refuses every stream up front ----------------

# How the client handles GOAWAY is being redesigned, so only what any correct
# client must do is asserted: fail, say GOAWAY, and not hang or spin.
if [[ $MODE == after-settings-goaway ]]; then
  start_serve --after-settings goaway
  t0=$(now_ms)
  timeout 30 "$CLI" get "$URL/" >"$WORK/out" 2>"$WORK/err"
  rc=$?
  elapsed=$(($(now_ms) - t0))
  if ((rc == 124)); then
    fail "get against GOAWAY after SETTINGS still running after 30 s"
  elif ((rc == 0)); then
    fail "get against GOAWAY after SETTINGS succeeded"
  else
    pass "get against GOAWAY after SETTINGS fails (exit $rc, ${elapsed} ms)"
  fi
  if grep -q GOAWAY "$WORK/err"; then
    pass "its error names GOAWAY: $(head -n 1 "$WORK/err")"
  else
    fail "its error does not name GOAWAY: $(head -c 400 "$WORK/err")"
  fi
  log "$checks checks, $failures failed"
  ((failures == 0))
  exit
fi

# --- argument handling ------------------------------------------------------

expect_exit 0 "--version" --version &&
  if grep -Eq '^h2pool [0-9]+\.[0-9]+\.[0-9]+$' "$WORK/out"; then
    pass "--version prints 'h2pool X.Y.Z': $(cat "$WORK/out")"
  else
    fail "--version output: $(cat "$WORK/out")"
  fi
expect_exit 0 "--help" --help &&
  check "--help prints usage on stdout" grep -q '^Usage: h2pool' "$WORK/out"
for cmd in get bench serve demo; do
  expect_exit 0 "$cmd --help" "$cmd" --help &&
    check "$cmd --help prints its usage on stdout" \
      grep -q "^Usage: h2pool $cmd" "$WORK/out"
done
expect_exit 2 "no arguments"
expect_exit 2 "unknown command" frobnicate
expect_exit 2 "unknown top-level option" --frob
expect_exit 2 "get without URL" get
expect_exit 2 "get with unknown option" get --frob http://127.0.0.1:1/ &&
  check "unknown option: message and usage on stderr" \
    grep -Pzq "unknown option '--frob'(.|\\n)*Usage: h2pool get" "$WORK/err"
expect_exit 2 "get --header without colon" get --header nocolon http://127.0.0.1:1/
expect_exit 2 "get --timeout-ms missing value" get http://127.0.0.1:1/ --timeout-ms
for bad in u=8 u=1,x 'u=1 i' i,u=1 u= ''; do
  expect_exit 2 "get --priority '$bad' rejected" get --priority "$bad" http://127.0.0.1:1/
done
for bad in abc -1 +5 1.5 '' 0x10 5k 99999999999999999999999; do
  expect_exit 2 "bench -n '$bad' rejected" bench -n "$bad" http://127.0.0.1:1/
done
expect_exit 2 "bench -c 0 rejected" bench -c 0 http://127.0.0.1:1/
expect_exit 2 "bench -c 10001 rejected" bench -c 10001 http://127.0.0.1:1/
expect_exit 2 "bench -m 4294967296 rejected" bench -m 4294967296 http://127.0.0.1:1/
expect_exit 2 "bench --threads above -c rejected" bench -c 2 --threads 3 http://127.0.0.1:1/
expect_exit 2 "bench without URL" bench -n 10
expect_exit 2 "bench with two URLs" bench http://127.0.0.1:1/ http://127.0.0.1:2/
expect_exit 2 "serve --port 65536 rejected" serve --port 65536
expect_exit 2 "serve with a positional argument" serve extra
expect_exit 2 "serve --after-settings bogus rejected" serve --after-settings bogus
expect_exit 2 "serve --after-settings protocol-error=bogus rejected" \
  serve --after-settings protocol-error=bogus
expect_exit 2 "serve --after-settings goaway=NOT_A_CODE rejected" \
  serve --after-settings goaway=NOT_A_CODE
expect_exit 2 "serve --refuse-every -1 rejected" serve --refuse-every -1
expect_exit 2 "serve --initial-window-size 2147483648 rejected" \
  serve --initial-window-size 2147483648
expect_exit 2 "demo -n 0 rejected" demo -n 0
expect_exit 1 "get of a non-http URL fails" get ftp://example/x &&
  check "error line for a refused URL: $(head -n 1 "$WORK/err")" \
    grep -q '^h2pool: ftp://example/x: ' "$WORK/err"

# --- against h2pool serve ---------------------------------------------------

start_serve --max-concurrent-streams 64

expect_exit 0 "get sized body" get "$URL/a?size=100000&seed=7" &&
  if [[ $(stat -c %s "$WORK/out") == 100000 ]]; then
    cp "$WORK/out" "$WORK/seed7"
    pass "get returned 100000 bytes"
  else
    fail "get returned $(stat -c %s "$WORK/out") bytes, want 100000"
  fi
expect_exit 0 "same seed, other path" get "$URL/b?seed=7&size=100000" &&
  if cmp -s "$WORK/out" "$WORK/seed7"; then
    pass "same seed and size give the same bytes"
  else
    fail "same seed and size gave different bytes"
  fi
expect_exit 0 "get three bodies in one call" get "$URL/?size=10&seed=1" \
  "$URL/?size=100000&seed=7" "$URL/?size=10&seed=2" &&
  if [[ $(stat -c %s "$WORK/out") == 100020 ]] &&
    cmp -s <(head -c 100010 "$WORK/out" | tail -c 100000) "$WORK/seed7"; then
    pass "bodies written in argument order"
  else
    fail "bodies out of order or wrong length ($(stat -c %s "$WORK/out"))"
  fi
expect_exit 0 "POST via --data to /echo" get --data 'hello, echo' "$URL/echo" &&
  if [[ $(cat "$WORK/out") == 'hello, echo' ]]; then
    pass "echo returned the request body"
  else
    fail "echo returned '$(cat "$WORK/out")'"
  fi
expect_exit 0 "--verbose with status=503 and header=" get --verbose \
  --header 'X-Test: yes' "$URL/?status=503&header=x-extra:42" &&
  if grep -q '^< HTTP/2 503$' "$WORK/err" && grep -q '^< x-extra: 42$' "$WORK/err"; then
    pass "verbose shows status 503 and the scripted header"
  else
    fail "verbose output: $(cat "$WORK/err")"
  fi
# --compressed asks for every coding the library decodes, -v shows which,
# and a body with all of them chained decodes.
codings=
expect_exit 0 "--compressed -v" get --compressed -v "$URL/" &&
  codings=$(sed -n 's/^> accept-encoding: //p' "$WORK/err") &&
  if [[ $codings == "gzip, deflate"* ]]; then
    pass "verbose shows the accept-encoding sent: $codings"
  else
    fail "no accept-encoding in: $(cat "$WORK/err")"
  fi
ce=${codings//, /,}
expect_exit 0 "--compressed with ce=$ce" get --compressed \
  "$URL/?size=70000&seed=5&ce=$ce" &&
  if [[ $(stat -c %s "$WORK/out") == 70000 ]]; then
    pass "$ce decoded"
  else
    fail "ce=$ce: $(stat -c %s "$WORK/out") bytes"
  fi
expect_exit 1 "timeout reported as failure" get --timeout-ms 200 \
  "$URL/?delay_ms=5000" &&
  if grep -q "^h2pool: $URL/?delay_ms=5000: " "$WORK/err"; then
    pass "timeout error line: $(head -n 1 "$WORK/err")"
  else
    fail "timeout error line: $(cat "$WORK/err")"
  fi

expect_exit 0 "bench -n 2000 -c 4 -m 50 --threads 2" bench -n 2000 -c 4 -m 50 \
  --threads 2 "$URL/?size=64"
json=$(tail -n 1 "$WORK/out")
if grep -q '"succeeded":2000,' <<<"$json" && grep -q '"failed":0,' <<<"$json"; then
  pass "bench JSON: $json"
else
  fail "bench JSON: $json"
fi
if command -v python3 >/dev/null 2>&1; then
  if python3 -c 'import json, sys
d = json.loads(sys.argv[1])
need = ["requests", "succeeded", "failed", "wall_s", "user_s", "sys_s",
        "rps", "cpu_us_per_req", "connections"]
missing = [k for k in need if k not in d]
sys.exit(1 if missing else 0)' "$json"; then
    pass "bench last line is JSON with every required key"
  else
    fail "bench last line is not valid JSON with the required keys"
  fi
fi

expect_exit 0 "demo -n 3000" demo -n 3000 &&
  check "demo reports PASS" grep -q 'result: *PASS' "$WORK/out"
sed 's/^/    /' "$WORK/out"

# SIGTERM: a background job of a non-interactive shell starts with SIGINT
# ignored, so SIGINT would not reach it.
kill -TERM "$SERVE_PID"
deadline=$(($(now_ms) + DEADLINE_MS))
while kill -0 "$SERVE_PID" 2>/dev/null && (($(now_ms) <= deadline)); do
  sleep 0.02
done
if kill -0 "$SERVE_PID" 2>/dev/null; then
  fail "h2pool serve still running after SIGTERM"
else
  wait "$SERVE_PID"
  rc=$?
  SERVE_PID=""
  if ((rc == 0)) && grep -q 'SIGTERM received' "$WORK/serve.err"; then
    pass "serve stopped cleanly on SIGTERM: $(tail -n 1 "$WORK/serve.err")"
  else
    fail "serve exit $rc on SIGTERM: $(cat "$WORK/serve.err")"
  fi
fi

log "$checks checks, $failures failed"
((failures == 0))
