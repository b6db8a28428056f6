#!/usr/bin/env bash
# WebSockets over HTTP/2 (RFC 8441) against real servers: examples/websocket_h2
# talking to
#   - Node's http2 module (nodejs, with settings.enableConnectProtocol) running
#     ws_echo_server.js, over h2c with prior knowledge and over TLS: the whole
#     exchange, close handshake and END_STREAM both ways included;
#   - Debian's hypercorn 0.13 (python3-hypercorn, run with Debian's
#     /usr/bin/python3) serving a small ASGI echo application (wsproto does
#     the RFC 6455 side): open, messages, close handshake. hypercorn never
#     ends its side of the stream after a close handshake and drops the whole
#     connection (a KeyError) when the client's END_STREAM comes after it,
#     so the example runs with --reset-after-close there;
#   - nghttpd, which does not enable extended CONNECT.
# Loopback only.
#
#   websocket_interop.sh PATH_TO_websocket_h2 PATH_TO_gen_certs.sh
#
# Exits 0 when every check passed, 1 on a failure, 77 (skipped) when neither
# node nor hypercorn is installed.
set -uo pipefail

EXAMPLE=${1:?usage: websocket_interop.sh WEBSOCKET_H2 GEN_CERTS}
GEN_CERTS=${2:?usage: websocket_interop.sh WEBSOCKET_H2 GEN_CERTS}
PYTHON=/usr/bin/python3
RUN_TIMEOUT=60
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

HARNESS_PREFIX=websocket
# shellcheck source=SCRIPTDIR/../lib/harness.sh
source "$HERE/../lib/harness.sh" || exit 1

if [[ ! -x $EXAMPLE ]]; then
  log "example not found: $EXAMPLE"
  exit 1
fi
have_node=0
have_hypercorn=0
command -v node >/dev/null 2>&1 && have_node=1
"$PYTHON" -c 'import hypercorn, h2' 2>/dev/null && have_hypercorn=1
if ((!have_node && !have_hypercorn)); then
  log "neither node nor hypercorn (python3-hypercorn for $PYTHON) installed"
  exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-websocket.XXXXXX") || exit 1
on_exit cleanup
if ! bash "$GEN_CERTS" "$WORK/certs" >/dev/null 2>&1; then
  log "gen_certs.sh failed"
  exit 1
fi

# The echo application: every text or binary message comes back as it was.
cat >"$WORK/echo_app.py" <<'PY'
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"not a websocket\n"})
        return
    # websocket: RFC 8441 over HTTP/2 (scope["http_version"] == "2")
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        elif message["type"] == "websocket.disconnect":
            return
PY

# start NAME COMMAND...: starts COMMAND (with PORT substituted for the
# literal word PORT) in its own process group on a fresh port, waits until
# the port accepts connections, and sets PORT.
start() {
  local name=$1 attempt rc
  shift
  for attempt in 1 2 3 4 5; do
    PORT=$(pick_port) || return 1
    local -a cmd=("${@//PORT/$PORT}")
    (cd "$WORK" && exec setsid "${cmd[@]}") >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    SERVER_PGID=$SERVER_PID
    SERVER_NAME=$name
    wait_for_port "$PORT" "$WORK/$name.log" "$attempt"
    rc=$?
    ((rc == 0)) && return 0
    ((rc == 2)) && stop_server && return 1
  done
  return 1
}

example() { timeout "$RUN_TIMEOUT" "$EXAMPLE" "$@"; }

# check WHAT N_MESSAGES EXAMPLE_ARGS...: runs the example, which must
# succeed, with every tunnel echoing N_MESSAGES and closing with 1000, all
# on one connection.
check() {
  local what=$1 n=$2 conns lines tunnels
  shift 2
  expect_status 0 "$what" example "$@" || return
  tunnels=$(grep -c '^tunnel ' "$WORK/out")
  lines=$(grep -c "^tunnel [0-9]*: connection [0-9]*, $n messages echoed, close 1000\$" "$WORK/out")
  conns=$(sed -n 's/^tunnel [0-9]*: connection \([0-9]*\),.*/\1/p' "$WORK/out" | sort -u | wc -l)
  if [[ $lines == "$tunnels" && $conns == 1 ]]; then
    pass "$what: $tunnels tunnel(s) on one connection, $n messages each, close 1000"
  else
    fail "$what: unexpected output: $(cat "$WORK/out")"
  fi
}

CERT="$WORK/certs/localhost.pem"
KEY="$WORK/certs/localhost.key"
CA="$WORK/certs/ca.pem"

# --- Node's http2 -----------------------------------------------------------------
if ((have_node)); then
  if start node node "$HERE/ws_echo_server.js" PORT; then
    # 1 MiB is more than node's 64 KiB receive window and the 64 KiB stream
    # window the example grants with --stream-window.
    check "node h2c: messages, one larger than both windows, close" 3 \
      --stream-window 65535 "ws://127.0.0.1:$PORT/echo" hello @1048576 \
      "after the large one"
    check "node h2c: 4 tunnels at once" 3 --tunnels 4 \
      "ws://127.0.0.1:$PORT/echo" one two @200000
    stop_server
  else
    fail "node (h2c) did not start"
  fi
  if start node-tls node "$HERE/ws_echo_server.js" PORT "$CERT" "$KEY"; then
    check "node TLS: wss:// messages and close" 3 --cacert "$CA" \
      "wss://127.0.0.1:$PORT/echo" hello @300000 bye
    stop_server
  else
    fail "node (TLS) did not start"
  fi
else
  log "node not installed; its checks are skipped"
fi

# --- hypercorn -------------------------------------------------------------------
if ((have_hypercorn)); then
  if start hypercorn "$PYTHON" -m hypercorn --bind 127.0.0.1:PORT --workers 1 \
    echo_app:app; then
    check "hypercorn h2c: messages, one larger than both windows, close" 3 \
      --reset-after-close --stream-window 65535 "ws://127.0.0.1:$PORT/echo" \
      hello @1048576 "after the large one"
    check "hypercorn h2c: 4 tunnels at once" 3 --reset-after-close \
      --tunnels 4 "ws://127.0.0.1:$PORT/echo" one two @200000
    stop_server
  else
    fail "hypercorn (h2c) did not start"
  fi
  if start hypercorn-tls "$PYTHON" -m hypercorn --bind 127.0.0.1:PORT \
    --workers 1 --certfile "$CERT" --keyfile "$KEY" echo_app:app; then
    check "hypercorn TLS: wss:// messages and close" 3 --reset-after-close \
      --cacert "$CA" "wss://127.0.0.1:$PORT/echo" hello @300000 bye
    stop_server
  else
    fail "hypercorn (TLS) did not start"
  fi
else
  log "hypercorn not installed; its checks are skipped"
fi

# --- a server without SETTINGS_ENABLE_CONNECT_PROTOCOL -------------------------------
if command -v nghttpd >/dev/null 2>&1; then
  mkdir -p "$WORK/docroot"
  if start nghttpd nghttpd --no-tls -a 127.0.0.1 -d "$WORK/docroot" PORT; then
    if expect_status 1 "nghttpd: no extended CONNECT" \
      example "ws://127.0.0.1:$PORT/echo" hello; then
      if grep -q 'server does not support extended CONNECT' "$WORK/out"; then
        pass "nghttpd: failed with H2POOL_ERR_CONNECT_PROTOCOL_UNSUPPORTED"
      else
        fail "nghttpd: unexpected output: $(cat "$WORK/out")"
      fi
    fi
    stop_server
  else
    fail "nghttpd did not start"
  fi
else
  log "nghttpd not installed; its check is skipped"
fi

check_no_jobs
log "$checks checks, $failures failures"
((failures == 0))
