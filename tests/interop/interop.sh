#!/usr/bin/env bash
# Interop test: the h2pool command-line tool against real HTTP/2 servers
# (nghttpd and h2o), cleartext HTTP/2 with prior knowledge, on loopback only.
#
#   interop.sh PATH_TO_H2POOL [nghttpd|h2o]...
#
# With no server names both are tested. Exits 0 when every check passed,
# 1 on any failure, 77 (CTest's SKIP_RETURN_CODE) when none of the requested
# server binaries is installed.
set -uo pipefail

CLI=${1:?usage: interop.sh PATH_TO_H2POOL [nghttpd|h2o]...}
shift
SERVERS=("$@")
if [[ ${#SERVERS[@]} -eq 0 ]]; then
  SERVERS=(nghttpd h2o)
fi

# Every CLI invocation is bounded so a hang fails the test instead of
# stalling CTest.
CLI_TIMEOUT=60
START_DEADLINE_MS=10000
STOP_DEADLINE_MS=5000

HARNESS_PREFIX=interop
# shellcheck source=SCRIPTDIR/../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh" || exit 1

require_cli

WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-interop.XXXXXX") || exit 1
# h2o started as root drops to 'nobody', which must be able to read the
# docroot; mktemp -d creates the directory 0700.
chmod 755 "$WORK"

on_exit cleanup

# start_server NAME: starts NAME on a fresh port in its own process group,
# waits until the port accepts connections, and sets PORT. Returns non-zero
# if it could not be started.
start_server() {
  local name=$1 attempt rc
  for attempt in 1 2 3 4 5; do
    PORT=$(pick_port) || return 1
    local logf="$WORK/$name.log"
    case $name in
    nghttpd)
      setsid nghttpd --no-tls -a 127.0.0.1 -d "$WORK/docroot" "$PORT" \
        >"$logf" 2>&1 &
      ;;
    h2o)
      cat >"$WORK/h2o.conf" <<EOF
listen:
  host: 127.0.0.1
  port: $PORT
hosts:
  default:
    paths:
      # Debian's h2o has brotli built in (it bundles the library).
      /br:
        file.dir: $WORK/docroot
        compress: [br]
      /:
        file.dir: $WORK/docroot
EOF
      setsid h2o -c "$WORK/h2o.conf" >"$logf" 2>&1 &
      ;;
    esac
    SERVER_PID=$!
    SERVER_NAME=$name
    SERVER_PGID=""
    wait_for_port "$PORT" "$logf" "$attempt"
    rc=$?
    if ((rc == 0)); then
      # setsid made the server a process-group leader, so its group id is
      # its pid; read it back rather than assume it.
      local st
      local -a f
      st=$(cat "/proc/$SERVER_PID/stat" 2>/dev/null) || st=""
      st=${st##*) }
      read -r -a f <<<"$st"
      SERVER_PGID=${f[2]:-}
      [[ $SERVER_PGID == "$SERVER_PID" ]] || SERVER_PGID=""
      return 0
    fi
    if ((rc == 2)); then
      stop_server
      return 1
    fi
  done
  return 1
}

# check_h2o_br BASE OUT ERR DOCROOT: h2o compresses /br/ with brotli when
# asked; h2pool, asking for every coding it decodes, gets br and decodes it.
check_h2o_br() {
  local base=$1 out=$2 err=$3 d=$4 rc
  h2pool get --include -H 'accept-encoding: br' "$base/br/words.txt" \
    >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)) && grep -q $'^content-encoding: br\r$' "$out"; then
    pass "h2o: asked for br alone, answers with content-encoding: br"
  else
    fail "h2o: br by request: exit $rc: $(head -c 600 "$out") $(cat "$err")"
    return
  fi
  if ! grep -qw br <<<"$(h2pool get --compressed -v "$base/" 2>&1 >/dev/null)"; then
    log "h2o: this h2pool does not decode br; skipping the decode check"
    return
  fi
  h2pool get --compressed "$base/br/words.txt" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$d/words.txt" "h2o: br body decoded by --compressed"
  else
    fail "h2o: --compressed br: exit $rc: $(cat "$err")"
  fi
}

run_checks() {
  local name=$1 base="http://127.0.0.1:$PORT" out="$WORK/out" err="$WORK/err"
  local d="$WORK/docroot" rc

  h2pool get "$base/small.txt" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$d/small.txt" "$name: get small file"
  else
    fail "$name: get small file: exit $rc: $(cat "$err")"
  fi

  h2pool get "$base/big.bin" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$d/big.bin" "$name: get 1 MiB random file"
  else
    fail "$name: get 1 MiB file: exit $rc: $(cat "$err")"
  fi

  # RFC 9218: the priority header (u=0, i) must not upset the server.
  h2pool get --priority u=0,i "$base/big.bin" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$d/big.bin" "$name: get 1 MiB with --priority u=0,i"
  else
    fail "$name: get with --priority: exit $rc: $(cat "$err")"
  fi

  local -a files=(a.txt big.bin b.txt small.txt c.txt a.txt) urls=() paths=()
  local f
  for f in "${files[@]}"; do
    urls+=("$base/$f")
    paths+=("$d/$f")
  done
  cat "${paths[@]}" >"$WORK/expect"
  h2pool get "${urls[@]}" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$WORK/expect" "$name: get ${#urls[@]} URLs in one call, order kept"
  else
    fail "$name: get several URLs: exit $rc: $(cat "$err")"
  fi

  # The reverse order too, so a pass cannot come from completion order.
  local -a rurls=() rpaths=()
  local i
  for ((i = ${#files[@]} - 1; i >= 0; i--)); do
    rurls+=("${urls[i]}")
    rpaths+=("${paths[i]}")
  done
  cat "${rpaths[@]}" >"$WORK/expect"
  h2pool get "${rurls[@]}" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$WORK/expect" "$name: same URLs reversed, order kept"
  else
    fail "$name: get several URLs reversed: exit $rc: $(cat "$err")"
  fi

  if [[ $name == h2o ]]; then
    check_h2o_br "$base" "$out" "$err" "$d"
  fi

  h2pool get --verbose "$base/no-such-file" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)) && grep -q '^< HTTP/2 404$' "$err"; then
    pass "$name: 404 is a response: exit 0, status 404 reported"
  else
    fail "$name: 404: exit $rc (want 0), stderr: $(cat "$err")"
  fi

  # One URL that cannot connect: exit 1, the others still printed, and an
  # error line naming the URL.
  local dead_port dead_url
  dead_port=$(pick_port)
  dead_url="http://127.0.0.1:$dead_port/x"
  h2pool get --timeout-ms 10000 "$base/small.txt" "$dead_url" "$base/a.txt" \
    >"$out" 2>"$err"
  rc=$?
  cat "$d/small.txt" "$d/a.txt" >"$WORK/expect"
  if ((rc == 1)) && cmp -s "$out" "$WORK/expect" &&
    grep -q "^h2pool: $dead_url: " "$err"; then
    pass "$name: failed URL: exit 1, error on stderr ($(head -n 1 "$err")), others printed"
  else
    fail "$name: failed URL: exit $rc (want 1), stderr: $(cat "$err")"
  fi

  h2pool bench -n 1000 -c 2 -m 10 "$base/small.txt" >"$out" 2>"$err"
  rc=$?
  sed 's/^/    /' "$out"
  local json
  json=$(tail -n 1 "$out")
  local conns
  conns=$(grep -o '"connections":[0-9]*' <<<"$json" | cut -d: -f2)
  if ((rc == 0)) && [[ $json == \{*\} ]] &&
    grep -q '"requests":1000,' <<<"$json" &&
    grep -q '"succeeded":1000,' <<<"$json" &&
    grep -q '"failed":0,' <<<"$json" &&
    [[ -n $conns ]] && ((conns >= 1 && conns <= 2)); then
    pass "$name: bench -n 1000 -c 2 -m 10: 1000 succeeded on $conns connection(s)"
  else
    fail "$name: bench: exit $rc, last line: $json, stderr: $(cat "$err")"
  fi

  # Submissions from a caller thread instead of the completion callback.
  h2pool bench --submit-thread --discard-body -n 2000 -c 2 -m 10 \
    "$base/small.txt" >"$out" 2>"$err"
  rc=$?
  json=$(tail -n 1 "$out")
  if ((rc == 0)) && grep -q '"requests":2000,' <<<"$json" &&
    grep -q '"succeeded":2000,' <<<"$json" &&
    grep -q '"failed":0,' <<<"$json"; then
    pass "$name: bench --submit-thread -n 2000: 2000 succeeded"
  else
    fail "$name: bench --submit-thread: exit $rc, last line: $json, stderr: $(cat "$err")"
  fi
}

# Test data: a 6-byte file, a 1 MiB random file, small distinct files, and
# 229 KB of text.
mkdir -p "$WORK/docroot"
printf 'hello\n' >"$WORK/docroot/small.txt"
head -c 1048576 /dev/urandom >"$WORK/docroot/big.bin"
printf 'first file\n' >"$WORK/docroot/a.txt"
printf 'second file, a bit longer\n' >"$WORK/docroot/b.txt"
printf 'third\n' >"$WORK/docroot/c.txt"
# Text h2o compresses (text/plain, well past its minimum size).
seq 1 40000 >"$WORK/docroot/words.txt"
chmod 755 "$WORK/docroot"
chmod 644 "$WORK/docroot"/*

log "client: $("$CLI" --version 2>&1)"
tested=0
for name in "${SERVERS[@]}"; do
  case $name in
  nghttpd | h2o) ;;
  *)
    log "unknown server '$name'"
    exit 1
    ;;
  esac
  if ! command -v "$name" >/dev/null 2>&1; then
    log "SKIP $name: not installed"
    continue
  fi
  log "server: $("$name" --version 2>&1 | head -n 1) ($(command -v "$name"))"
  if ! start_server "$name"; then
    fail "$name: could not be started"
    continue
  fi
  tested=$((tested + 1))
  log "$name listening on 127.0.0.1:$PORT (pid $SERVER_PID, pgid ${SERVER_PGID:-?})"
  if ss_out=$(ss -Hltnp "sport = :$PORT" 2>/dev/null) && [[ -n $ss_out ]]; then
    if grep -qv '127.0.0.1:' <<<"$ss_out"; then
      fail "$name: listens beyond loopback: $ss_out"
    else
      pass "$name: listens on loopback only"
    fi
  fi

  run_checks "$name"

  pgid=$SERVER_PGID pid=$SERVER_PID
  stop_server
  left=""
  if [[ -n $pgid ]]; then
    left=$(group_members "$pgid")
  elif kill -0 "$pid" 2>/dev/null; then
    left=$pid
  fi
  if [[ -z $left ]] && ! port_accepts "$PORT"; then
    pass "$name: stopped, no process left, port closed"
  else
    fail "$name: still running after stop: pids '$left'"
  fi
done

# Nothing started by this script may outlive it.
check_no_jobs

if ((tested == 0 && failures == 0)); then
  log "SKIPPED: none of ${SERVERS[*]} is installed"
  exit 77
fi
log "$checks checks, $failures failed"
((failures == 0))
