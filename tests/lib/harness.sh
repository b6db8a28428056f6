# shellcheck shell=bash
# Helpers shared by the shell test scripts (tests/interop/interop.sh,
# tests/interop/cli.sh, tests/tls/interop_tls.sh). Sourced, never run:
#
#   HARNESS_PREFIX=interop   # tag printed as "[interop]" on every line
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh" || exit 1
#
# The sourcing script is expected to run under `set -uo pipefail` (not -e:
# a failing check must be counted, not end the script).
#
# Globals the sourcing script may set before calling the helpers:
#   HARNESS_PREFIX     output tag (required, set before sourcing)
#   CLI, CLI_TIMEOUT   the h2pool binary and the bound on each run (h2pool)
#   WORK               scratch directory removed by cleanup
#   START_DEADLINE_MS  how long wait_for_port waits (default 10000)
#   STOP_DEADLINE_MS   how long stop_server waits before SIGKILL (default 5000)
# Globals the helpers maintain:
#   checks, failures   counters updated by pass and fail
#   SERVER_PID         the server started last ("" when none is running)
#   SERVER_PGID        its process group ("" when unknown: signal the pid only)
#   SERVER_NAME        its name, for messages
#   SERVE_PID, URL     `h2pool serve` started by start_serve, and its URL
#                      (start_serve waits DEADLINE_MS for it)

: "${HARNESS_PREFIX:?set HARNESS_PREFIX before sourcing harness.sh}"
# The tool reads the proxy environment as curl does; loopback tests must not
# be sent through whatever proxy the machine running them has configured.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY \
  no_proxy NO_PROXY
START_DEADLINE_MS=${START_DEADLINE_MS:-10000}
STOP_DEADLINE_MS=${STOP_DEADLINE_MS:-5000}

checks=0
failures=0
SERVER_PID=""
SERVER_PGID=""
SERVER_NAME=""

# --- output and counters ------------------------------------------------------

# log MESSAGE...: prints one line tagged with the script's prefix, so that the
# interleaved output of several tests in a CTest log says where it came from.
log() { printf '[%s] %s\n' "$HARNESS_PREFIX" "$*"; }

# pass MESSAGE...: records a passed check (counted in $checks) and says so.
pass() {
  checks=$((checks + 1))
  printf '[%s] ok   %s\n' "$HARNESS_PREFIX" "$*"
}

# fail MESSAGE...: records a failed check (counted in $checks and $failures)
# and says so. It does not exit: the script carries on so one run reports
# every failure, and decides its exit status from $failures at the end.
fail() {
  checks=$((checks + 1))
  failures=$((failures + 1))
  printf '[%s] FAIL %s\n' "$HARNESS_PREFIX" "$*"
}

# expect_status WANT WHAT COMMAND...: runs COMMAND with its output in
# $WORK/out and $WORK/err, and passes if it exits with WANT (failing with
# the start of its stderr otherwise). Returns whether it passed.
expect_status() {
  local want=$1 what=$2 rc
  shift 2
  "$@" >"$WORK/out" 2>"$WORK/err"
  rc=$?
  if ((rc == want)); then
    pass "$what (exit $rc)"
    return 0
  fi
  fail "$what: exit $rc, want $want; stderr: $(head -c 400 "$WORK/err")"
  return 1
}

# now_ms: the wall clock in milliseconds, for deadlines (bash's $SECONDS is
# too coarse for the short polls below).
now_ms() { date +%s%3N; }

# --- the client under test ----------------------------------------------------

# require_cli: exits 1 (a failure, not a skip) unless $CLI is an executable,
# before anything is started, so a wrong path is reported plainly.
require_cli() {
  if [[ ! -x $CLI ]]; then
    log "h2pool binary not found or not executable: $CLI"
    exit 1
  fi
}

# h2pool ARGS...: runs the client under test bounded by $CLI_TIMEOUT seconds,
# so a hang fails the check (timeout exits 124) instead of stalling CTest.
h2pool() { timeout "$CLI_TIMEOUT" "$CLI" "$@"; }

# same_bytes GOT WANT WHAT: passes if file GOT equals file WANT byte for byte,
# otherwise fails naming the first differing byte (cmp's first line).
same_bytes() {
  local got=$1 want=$2 what=$3
  if cmp -s "$got" "$want"; then
    pass "$what ($(stat -c %s "$want") bytes, byte-exact)"
  else
    fail "$what: output differs: $(cmp "$got" "$want" 2>&1 | head -n 1)"
  fi
}

# --- processes and ports ------------------------------------------------------

# group_members PGID: prints the ids (space-separated) of the live processes
# in process group PGID, read from /proc. Zombies are left out so a caller
# polling for the group to empty is done as soon as every member has exited,
# whether or not it has been reaped yet. Servers that fork workers (nginx)
# are stopped and checked through their whole group, not just the leader.
group_members() {
  local pgid=$1 stat rest pid
  local -a fields
  for stat in /proc/[0-9]*/stat; do
    pid=${stat#/proc/}
    pid=${pid%/stat}
    { read -r rest <"$stat"; } 2>/dev/null || continue
    # The command name (field 2) may contain spaces: split after its ')'.
    rest=${rest##*) }
    read -r -a fields <<<"$rest"
    # fields: state ppid pgrp ...
    if [[ ${fields[2]:-} == "$pgid" && ${fields[0]:-} != Z ]]; then
      printf '%s ' "$pid"
    fi
  done
}

# port_accepts PORT: succeeds if something accepts TCP connections on
# 127.0.0.1:PORT (bash's /dev/tcp, in a subshell so the socket is closed at
# once). Used to know a server is up, and that it is gone after stopping.
port_accepts() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_port: prints a currently free loopback port: binds port 0 and reports
# what the kernel chose (without python3, a random port that nothing accepts
# on). The port is released before the server binds it, so another process
# may take it first: start_server retries with a new port when that happens.
pick_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
    return
  fi
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    port_accepts "$p" || {
      echo "$p"
      return
    }
  done
}

# wait_for_port PORT LOGFILE ATTEMPT: after a start_server has launched
# $SERVER_NAME as $SERVER_PID, polls until it accepts connections on PORT,
# for at most $START_DEADLINE_MS. Returns
#   0  the port accepts connections;
#   1  the server exited first (port taken, bad config): its LOGFILE is
#      printed, it is reaped and SERVER_PID is cleared, so the caller can
#      retry on another port (ATTEMPT is only named in the message);
#   2  the deadline passed: the server is still running and the caller
#      must stop it.
# Polling (rather than a fixed sleep) keeps the tests fast when the server
# is quick and still bounded when it hangs.
wait_for_port() {
  local port=$1 logf=$2 attempt=$3 deadline
  deadline=$(($(now_ms) + START_DEADLINE_MS))
  while :; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null
      log "$SERVER_NAME exited during startup (attempt $attempt, port $port):"
      sed 's/^/    /' "$logf"
      SERVER_PID=""
      return 1
    fi
    if port_accepts "$port"; then
      return 0
    fi
    if (($(now_ms) > deadline)); then
      log "$SERVER_NAME did not accept connections on port $port within ${START_DEADLINE_MS} ms"
      return 2
    fi
    sleep 0.02 # throttles the poll for the listening socket
  done
}

# stop_server: stops the current server, if any: SIGTERM to its process group
# (or to SERVER_PID alone when SERVER_PGID is unknown), then waits until no
# member is left (or the pid is gone), sending SIGKILL after
# $STOP_DEADLINE_MS. Servers that fork workers (nginx, h2o) must not leave
# one behind to hold the port or outlive the test. Reaps the server and
# clears SERVER_PID; safe to call twice.
stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  local target=$SERVER_PID deadline
  [[ -n $SERVER_PGID ]] && target=-$SERVER_PGID
  kill -TERM -- "$target" 2>/dev/null
  deadline=$(($(now_ms) + STOP_DEADLINE_MS))
  while server_running; do
    if (($(now_ms) > deadline)); then
      log "$SERVER_NAME did not stop on SIGTERM; sending SIGKILL"
      kill -KILL -- "$target" 2>/dev/null
      break
    fi
    # Zombies are excluded by group_members, so this loop ends as soon as
    # the processes have exited; the pause only throttles the polling.
    sleep 0.05
  done
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}

# server_running: succeeds while any (non-zombie) process of the server's
# group is left, or, with no known group, while SERVER_PID exists.
server_running() {
  if [[ -n $SERVER_PGID ]]; then
    [[ -n $(group_members "$SERVER_PGID") ]]
  else
    kill -0 "$SERVER_PID" 2>/dev/null
  fi
}

# --- h2pool serve as the server -----------------------------------------------

# start_serve ARGS...: starts `$CLI serve ARGS...` in the background and
# waits for the URL it prints (at most $DEADLINE_MS); sets SERVE_PID and URL,
# exits on failure. Its output goes to $WORK/serve.out and serve.err.
SERVE_PID=""
start_serve() {
  local deadline
  "$CLI" serve "$@" >"$WORK/serve.out" 2>"$WORK/serve.err" &
  SERVE_PID=$!
  URL=""
  deadline=$(($(now_ms) + DEADLINE_MS))
  while :; do
    URL=$(head -n 1 "$WORK/serve.out" 2>/dev/null)
    [[ $URL == http://* ]] && break
    if ! kill -0 "$SERVE_PID" 2>/dev/null || (($(now_ms) > deadline)); then
      fail "h2pool serve $* did not print its URL: $(cat "$WORK/serve.err")"
      exit 1
    fi
    sleep 0.02
  done
  log "h2pool serve $* listening at $URL"
}

# kill_serve_and_cleanup: an EXIT handler for scripts that use start_serve:
# kills `h2pool serve` if it still runs (a script that checks its clean
# shutdown stops it itself and clears SERVE_PID) and removes $WORK.
# shellcheck disable=SC2317 # invoked by the EXIT trap
kill_serve_and_cleanup() {
  if [[ -n $SERVE_PID ]]; then
    kill -KILL "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}

# --- exit ---------------------------------------------------------------------

# cleanup: the default EXIT handler: stops the server still running (a check
# failed or the script was interrupted) and removes the scratch directory,
# so nothing the test started or wrote outlives it.
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  stop_server
  rm -rf "$WORK"
}

# on_exit FUNCTION: runs FUNCTION (cleanup, or the script's own handler) when
# the script exits, and turns SIGINT/SIGTERM (Ctrl-C, CTest's timeout) into
# exit 130 so that the EXIT trap runs then too.
on_exit() {
  # shellcheck disable=SC2064 # the handler's name is fixed now, by design
  trap "$1" EXIT
  trap 'exit 130' INT TERM
}

# check_no_jobs: fails if a background job of the script is still running:
# nothing started by a test may outlive it. Called in the script's own shell
# (not a subshell), where `jobs` sees its jobs.
check_no_jobs() {
  if [[ -n $(jobs -pr) ]]; then
    fail "background jobs still running: $(jobs -pr | tr '\n' ' ')"
  fi
}
