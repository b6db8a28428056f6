#!/usr/bin/env bash
# Runs examples/epoll_loop.c (an external pool in a plain epoll loop)
# against `h2pool serve` on loopback: three GETs fetched at once, each line
# checked, and a refused URL reported with a failing exit status.
#
#   epoll_example.sh PATH_TO_H2POOL PATH_TO_EPOLL_LOOP
set -uo pipefail

CLI=${1:?usage: epoll_example.sh PATH_TO_H2POOL PATH_TO_EPOLL_LOOP}
EXAMPLE=${2:?usage: epoll_example.sh PATH_TO_H2POOL PATH_TO_EPOLL_LOOP}
CLI_TIMEOUT=60
DEADLINE_MS=10000

HARNESS_PREFIX=epoll_loop
# shellcheck source=SCRIPTDIR/../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh" || exit 1
require_cli
WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-epoll.XXXXXX") || exit 1
on_exit kill_serve_and_cleanup

start_serve
timeout 30 "$EXAMPLE" "$URL/a?size=1000" "$URL/b?size=0" \
  "$URL/c?status=404&size=7" >"$WORK/out" 2>"$WORK/err"
rc=$?
if ((rc == 0)); then pass "three GETs: exit 0"; else fail "exit $rc: $(cat "$WORK/err")"; fi
for want in "$URL/a?size=1000: 200, 1000 bytes" "$URL/b?size=0: 200, 0 bytes" \
  "$URL/c?status=404&size=7: 404, 7 bytes"; do
  if grep -qxF "$want" "$WORK/out"; then pass "printed '$want'"; else
    fail "no line '$want' in: $(cat "$WORK/out")"
  fi
done

timeout 30 "$EXAMPLE" "$URL/a" "ftp://127.0.0.1/x" >"$WORK/out" 2>"$WORK/err"
rc=$?
if ((rc == 1)) && grep -q "ftp://127.0.0.1/x" "$WORK/err" &&
  grep -q "^$URL/a: 200" "$WORK/out"; then
  pass "a refused URL is reported and the other still fetched (exit 1)"
else
  fail "refused URL: exit $rc, out: $(cat "$WORK/out"), err: $(cat "$WORK/err")"
fi
log "$checks checks, $failures failed"
((failures == 0))
