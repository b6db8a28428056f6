#!/usr/bin/env bash
# `h2pool get` as a curl user drives it: -w/--write-out timings checked
# against a server's known delay, -I/--head, --include with trailers after a
# body without a final newline, file options that name the file and the
# reason they cannot be loaded, --verbose, and the progress meter drawn on
# a terminal (a pty from python3) but not when stderr is redirected.
#
#   cli_writeout.sh PATH_TO_H2POOL
set -uo pipefail

CLI=${1:?usage: cli_writeout.sh PATH_TO_H2POOL}
CLI_TIMEOUT=60
DEADLINE_MS=10000

HARNESS_PREFIX=cli-w
# shellcheck source=SCRIPTDIR/../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh" || exit 1
require_cli

WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-cliw.XXXXXX") || exit 1
on_exit kill_serve_and_cleanup
start_serve --max-concurrent-streams 100

# --- -w against a 300 ms delay before the response ----------------------------
out=$(h2pool get -o /dev/null -w '%{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}\n' \
  "$URL/?delay_ms=300&size=1000" 2>"$WORK/err")
rc=$?
if ((rc == 0)) && python3 - "$out" <<'PY'; then
import re, sys
line = sys.argv[1]
assert re.fullmatch(r"\d+\.\d{6} \d+\.\d{6} \d+\.\d{6} \d+\.\d{6}", line), line
connect, appconnect, start, total = map(float, line.split())
assert appconnect == 0.0, "cleartext: curl prints 0 for appconnect"
assert connect < start <= total, line
assert start >= 0.300 and total >= 0.300, line
assert total < 10.0, line # generous: loaded CI machines
PY
  pass "-w times follow the 300 ms delay: $out"
else
  fail "-w times: exit $rc, '$out' $(cat "$WORK/err")"
fi

out=$(h2pool get -o /dev/null -w '%{http_code} %{size_download} %{remote_ip} %{num_connects} %{http_version} 100%%\t%{size_upload}\n' \
  "$URL/?size=1234&status=201" 2>"$WORK/err")
port=${URL##*:}
if [[ $out == $'201 1234 127.0.0.1 1 2 100%\t0' ]]; then
  pass "-w variables, %% and \\t: '$out'"
else
  fail "-w variables: '$out' $(cat "$WORK/err")"
fi
out=$(h2pool get -o /dev/null -w '%{remote_port}' "$URL/" 2>/dev/null)
if [[ $out == "$port" ]]; then pass "-w remote_port $out"; else fail "-w remote_port '$out', want $port"; fi

out=$(h2pool get -o /dev/null -w 'a%{no_such_thing}b' "$URL/" 2>"$WORK/err")
if [[ $out == ab ]] && grep -q "unknown --write-out variable: 'no_such_thing'" "$WORK/err"; then
  pass "unknown -w variable: warned, expands to nothing (as curl)"
else
  fail "unknown -w variable: '$out' $(cat "$WORK/err")"
fi

printf '%s' '%{http_code}' >"$WORK/fmt"
out=$(h2pool get -o /dev/null -w "@$WORK/fmt" "$URL/?status=204" 2>/dev/null)
if [[ $out == 204 ]]; then pass "-w @FILE"; else fail "-w @FILE gave '$out'"; fi

out=$(h2pool get -w '%{exitcode} %{time_connect}' "http://127.0.0.1:1/" 2>"$WORK/err")
if [[ $out == "1 0.000000" ]]; then
  pass "-w after a refused connection: '$out'"
else
  fail "-w after a refused connection: '$out'"
fi

# -s hides the error line (the exit status stays), -S brings it back.
h2pool get -s "http://127.0.0.1:1/" >/dev/null 2>"$WORK/err"
rc=$?
if ((rc == 1)) && [[ ! -s $WORK/err ]]; then
  pass "-s: exit 1 and no error text"
else
  fail "-s: exit $rc, stderr '$(cat "$WORK/err")'"
fi
h2pool get -sS "http://127.0.0.1:1/" >/dev/null 2>"$WORK/err"
if grep -q '^h2pool: http://127.0.0.1:1/: ' "$WORK/err"; then
  pass "-sS: the error is shown"
else
  fail "-sS: stderr '$(cat "$WORK/err")'"
fi

# --- -I/--head and --include -----------------------------------------------------
out=$(h2pool get -I "$URL/?size=50" 2>"$WORK/err")
if [[ $(printf '%s' "$out" | head -n 1) == $'HTTP/2 200\r' ]] &&
  grep -q $'^content-length: 50\r$' <<<"$out" &&
  [[ $(printf '%s' "$out" | tail -c 4 | od -An -c | tr -d ' ') == '\r\n\r\n' ||
     $(printf '%s\n' "$out" | tail -n 1) == $'\r' ]]; then
  pass "-I prints the head of a HEAD response and no body"
else
  fail "-I output: $(printf '%s' "$out" | od -c | head -n 5)"
fi

h2pool get -i "$URL/?size=5&trailer=x-check:1" >"$WORK/inc" 2>"$WORK/err"
if tail -n 1 "$WORK/inc" | grep -q $'^x-check: 1\r$'; then
  pass "--include: the trailer is on a line of its own after a body without a newline"
else
  fail "--include trailer: $(od -c "$WORK/inc" | tail -n 4)"
fi

# --- file options name the file and the reason --------------------------------
for opt in "--cacert $WORK/none.pem" "--capath $WORK/nodir" \
  "--cert $WORK/none.crt --key $WORK/none.key"; do
  # shellcheck disable=SC2086 # the option and its value are two words
  h2pool get $opt "https://127.0.0.1:1/" >/dev/null 2>"$WORK/err"
  rc=$?
  if ((rc == 1)) && grep -q "$WORK/none\|$WORK/nodir" "$WORK/err" &&
    grep -q "No such file or directory" "$WORK/err"; then
    pass "$opt: $(head -n 1 "$WORK/err")"
  else
    fail "$opt: exit $rc: $(cat "$WORK/err")"
  fi
done

# --- --help, --verbose -----------------------------------------------------------
if h2pool --help | grep -q 'HTTP/2 and HTTP/1.1' && ! h2pool --help | grep -q 'h2c, prior knowledge) client'; then
  pass "--help describes HTTP/2 and HTTP/1.1"
else
  fail "--help: $(h2pool --help | head -n 4)"
fi
h2pool get -v -H 'x-v: 1' "$URL/v?size=3" >/dev/null 2>"$WORK/err"
if grep -q '^> GET /v?size=3$' "$WORK/err" && grep -q '^> x-v: 1$' "$WORK/err" &&
  grep -q '^\* conn 1: connected to .*(127.0.0.1 port' "$WORK/err" &&
  grep -q '^< HTTP/2 200$' "$WORK/err" &&
  grep -q '^\* conn 1: frames received: .*HEADERS 1.*SETTINGS' "$WORK/err"; then
  pass "--verbose shows request, connect, response and frame counts"
else
  fail "--verbose: $(cat "$WORK/err")"
fi

# on_pty ARGS...: runs `h2pool ARGS...` with stderr on a pseudo-terminal
# (python3's pty module) and prints what it wrote there, as a Python repr.
on_pty() {
  timeout "$CLI_TIMEOUT" python3 - "$CLI" "$@" <<'PY'
import os, pty, subprocess, sys
master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
data = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:  # EIO: the child closed its end
        break
    if not chunk:
        break
    data += chunk
p.wait()
print(repr(data.decode(errors="replace")))
PY
}

# --- progress: on a terminal only ------------------------------------------------
h2pool get -o "$WORK/big" "$URL/?size=3000000" 2>"$WORK/err"
if [[ ! -s $WORK/err ]]; then
  pass "no progress meter when stderr is not a terminal"
else
  fail "stderr not a terminal, yet: $(head -c 200 "$WORK/err")"
fi
if command -v python3 >/dev/null 2>&1; then
  for style in meter bar silent; do
    case $style in
    meter) args=() ;;
    bar) args=(-#) ;;
    silent) args=(-s) ;;
    esac
    got=$(on_pty get -o "$WORK/big" "${args[@]}" "$URL/?size=3000000")
    case $style in
    meter) want='*100.0%*2.9 MiB of 2.9 MiB*' ;;
    bar) want='*###*100.0%*' ;;
    silent) want="''" ;;
    esac
    # shellcheck disable=SC2053 # $want is a pattern
    if [[ $got == $want ]]; then
      pass "progress on a terminal ($style): ${got:0:90}"
    else
      fail "progress on a terminal ($style): $got"
    fi
  done
fi

# bench: a live line on a terminal for a run past a second, none when
# stderr is redirected (a 2 s run: 40 sequential requests of 50 ms).
h2pool bench -n 40 "$URL/?delay_ms=50" >/dev/null 2>"$WORK/err"
if ! grep -q '^bench: ' "$WORK/err"; then
  pass "bench prints no live line when stderr is not a terminal"
else
  fail "bench live line without a terminal: $(head -c 200 "$WORK/err")"
fi
if command -v python3 >/dev/null 2>&1; then
  got=$(on_pty bench -n 40 "$URL/?delay_ms=50")
  if [[ $got == *'\rbench: '*'/40 requests ('*'req/s, 0 failed'* ]]; then
    pass "bench live line on a terminal: ${got:0:80}"
  else
    fail "bench live line on a terminal: $got"
  fi
fi

log "$checks checks, $failures failed"
((failures == 0))
