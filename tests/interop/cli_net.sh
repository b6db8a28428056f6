#!/usr/bin/env bash
# The curl-named network options of `h2pool get` and `bench` against
# `h2pool serve` on loopback: --resolve, --connect-to, --unix-socket,
# --abstract-unix-socket, --interface, --local-port, --dns-servers,
# --happy-eyeballs-timeout-ms, --keepalive-time, --no-keepalive. DNS goes
# to a port nothing answers on, so no lookup leaves the machine.
#
#   cli_net.sh PATH_TO_H2POOL
set -uo pipefail

CLI=${1:?usage: cli_net.sh PATH_TO_H2POOL}
DEADLINE_MS=10000
HARNESS_PREFIX=cli-net
# shellcheck source=SCRIPTDIR/../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh" || exit 1
require_cli

WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-cli-net.XXXXXX") || exit 1
PIDS=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
stop_all() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
on_exit stop_all

expect_exit() {
  local want=$1 what=$2
  shift 2
  expect_status "$want" "$what" timeout 30 "$CLI" "$@"
}
err_has() {
  if grep -qF -- "$2" "$WORK/err"; then pass "$1"; else
    fail "$1: stderr lacks '$2': $(head -c 400 "$WORK/err")"; fi
}
out_is() {
  if [[ $(cat "$WORK/out") == "$2" ]]; then pass "$1"; else
    fail "$1: stdout is '$(head -c 200 "$WORK/out")', want '$2'"; fi
}

# start_serve NAME ARGS...: `h2pool serve ARGS...`, its URL in $URL.
start_serve() {
  local name=$1 deadline
  shift
  "$CLI" serve "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  deadline=$(($(now_ms) + DEADLINE_MS))
  while :; do
    URL=$(head -n 1 "$WORK/$name.out" 2>/dev/null)
    [[ $URL == http://* ]] && break
    if (($(now_ms) > deadline)); then
      fail "h2pool serve $* did not start: $(cat "$WORK/$name.err")"
      exit 1
    fi
    sleep 0.02
  done
}

# A UDP port with nothing behind it: lookups that reach it time out.
NO_DNS="127.0.0.1:$(pick_port)"
BODY='?size=5&seed=7'

start_serve tcp
PORT=${URL##*:}

# --- usage errors name the option ---------------------------------------------
expect_exit 2 "--resolve without address" get --resolve a.test:1 http://a.test:1/ &&
  err_has "... names --resolve" "--resolve"
expect_exit 2 "--connect-to with three fields" get --connect-to a:1:b http://a:1/ &&
  err_has "... names --connect-to" "--connect-to"
expect_exit 2 "--dns-servers not an address" get --dns-servers dns.example http://a/
expect_exit 2 "--local-port range backwards" get --local-port 2000-1000 http://a/
expect_exit 2 "--happy-eyeballs-timeout-ms too large" get --happy-eyeballs-timeout-ms 60001 http://a/
expect_exit 2 "--keepalive-time 0" get --keepalive-time 0 http://a/
missing=0
for cmd in get bench; do
  help=$("$CLI" "$cmd" --help 2>/dev/null)
  for opt in --resolve --connect-to --unix-socket --abstract-unix-socket \
    --interface --local-port --dns-servers --happy-eyeballs-timeout-ms \
    --keepalive-time --no-keepalive; do
    [[ $help == *"$opt"* ]] || { fail "$cmd --help does not list $opt"; missing=1; }
  done
done
((missing)) || pass "get and bench --help list every network option"

# --- overrides ----------------------------------------------------------------
expect_exit 0 "--resolve a name DNS does not know" get --dns-servers "$NO_DNS" \
  --resolve "app.test:$PORT:127.0.0.1" "http://app.test:$PORT/$BODY" &&
  out_is "... body" "$("$CLI" get "$URL/$BODY")"
expect_exit 0 "--connect-to another port" get --dns-servers "$NO_DNS" \
  --connect-to "app.test:80:127.0.0.1:$PORT" "http://app.test/$BODY"
expect_exit 0 "--happy-eyeballs-timeout-ms with two addresses, ::1 first" get \
  --happy-eyeballs-timeout-ms 100 --resolve "two.test:$PORT:[::1],127.0.0.1" \
  --dns-servers "$NO_DNS" "http://two.test:$PORT/$BODY"

# --- local end ----------------------------------------------------------------
LP=$(pick_port)
expect_exit 0 "--interface 127.0.0.1 --local-port $LP-$((LP + 10))" get \
  --interface 127.0.0.1 --local-port "$LP-$((LP + 10))" "$URL/$BODY"
expect_exit 1 "--interface with a device that does not exist" get \
  --interface h2poolnoif0 "$URL/" && err_has "... names it" "h2poolnoif0"
expect_exit 0 "--keepalive-time 5" get --keepalive-time 5 "$URL/$BODY"
expect_exit 0 "--no-keepalive" get --no-keepalive "$URL/$BODY"
expect_exit 0 "bench with --resolve" bench -n 20 --dns-servers "$NO_DNS" \
  --resolve "app.test:$PORT:127.0.0.1" "http://app.test:$PORT/"

# --- Unix sockets -------------------------------------------------------------
start_serve uds --unix-socket "$WORK/h2.sock"
expect_exit 0 "--unix-socket" get --unix-socket "$WORK/h2.sock" "http://sidecar/$BODY" &&
  out_is "... body" "$("$CLI" get "http://127.0.0.1:$PORT/$BODY")"
ABSTRACT="h2pool-cli-net-$$"
start_serve abstract --unix-socket "@$ABSTRACT"
expect_exit 0 "--abstract-unix-socket" get --abstract-unix-socket "$ABSTRACT" \
  "http://sidecar/$BODY"
expect_exit 1 "--unix-socket that does not exist" get \
  --unix-socket "$WORK/none.sock" "http://sidecar/" &&
  err_has "... names the path" "$WORK/none.sock"

log "$checks checks, $failures failed"
((failures == 0))
