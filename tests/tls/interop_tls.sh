#!/usr/bin/env bash
# TLS interop test: the h2pool command-line tool against real HTTP/2 servers
# over TLS (nginx, h2o, nghttpd), on loopback only.
#
#   interop_tls.sh PATH_TO_H2POOL [CERT_DIR [PATH_TO_TLS_POST [SERVER...]]]
#
# CERT_DIR holds gen_certs.sh's output (generated into a temporary directory
# when empty or absent). PATH_TO_TLS_POST is the tls_post helper, used for the
# 1 MiB POST (the tool's --data takes a string argument, which Linux caps at
# 128 KiB); without it that check is skipped. SERVERs default to all three.
#
# Exits 0 when every check passed, 1 on any failure, 77 (CTest's
# SKIP_RETURN_CODE) when nothing failed but a server binary is missing.
set -uo pipefail

CLI=${1:?usage: interop_tls.sh PATH_TO_H2POOL [CERT_DIR [TLS_POST [SERVER...]]]}
CERTS=${2:-}
POST_HELPER=${3:-}
shift $(($# < 3 ? $# : 3))
SERVERS=("$@")
if [[ ${#SERVERS[@]} -eq 0 ]]; then
  SERVERS=(nginx h2o nghttpd)
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Every client invocation is bounded so a hang fails the test instead of
# stalling CTest.
CLI_TIMEOUT=60
START_DEADLINE_MS=10000
STOP_DEADLINE_MS=5000

missing=0

HARNESS_PREFIX=tls-interop
# shellcheck source=SCRIPTDIR/../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh" || exit 1

require_cli
if ! command -v openssl >/dev/null 2>&1; then
  log "openssl not installed"
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-tls-interop.XXXXXX") || exit 1
# Servers started as root drop to 'nobody' for their workers, which must be
# able to read the docroot; mktemp -d creates the directory 0700.
chmod 755 "$WORK"

if [[ -z $CERTS ]]; then
  CERTS=$WORK/certs
  bash "$HERE/gen_certs.sh" "$CERTS" >/dev/null || exit 1
fi
CERTS=$(cd "$CERTS" && pwd) || exit 1
for f in ca.pem localhost.pem localhost.key client.pem client.key; do
  [[ -r $CERTS/$f ]] || {
    log "missing $CERTS/$f (run gen_certs.sh)"
    exit 1
  }
done

on_exit cleanup

write_config() {
  local name=$1 port=$2
  case $name in
  nginx)
    mkdir -p "$WORK/nginx/tmp"
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log info;
events { worker_connections 256; }
http {
  access_log $WORK/nginx/access.log;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  client_max_body_size 8m;
  server {
    listen 127.0.0.1:$port ssl http2;
    server_name localhost;
    ssl_certificate $CERTS/localhost.pem;
    ssl_certificate_key $CERTS/localhost.key;
    root $WORK/docroot;
  }
}
EOF
    ;;
  h2o)
    cat >"$WORK/h2o.conf" <<EOF
listen:
  host: 127.0.0.1
  port: $port
  ssl:
    certificate-file: $CERTS/localhost.pem
    key-file: $CERTS/localhost.key
hosts:
  default:
    paths:
      /:
        file.dir: $WORK/docroot
EOF
    ;;
  esac
}

# start_server NAME [EXTRA_NGHTTPD_ARGS...]: starts NAME over TLS on a fresh
# port in its own process group, waits until the port accepts connections,
# and sets PORT. Returns non-zero if it could not be started.
start_server() {
  local name=$1 attempt rc logf="$WORK/$1.log"
  shift
  for attempt in 1 2 3 4 5; do
    PORT=$(pick_port) || return 1
    write_config "$name" "$PORT"
    case $name in
    nginx)
      setsid nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
        -g 'daemon off;' >"$logf" 2>&1 &
      ;;
    h2o)
      setsid h2o -c "$WORK/h2o.conf" >"$logf" 2>&1 &
      ;;
    nghttpd)
      setsid nghttpd --address=127.0.0.1 --htdocs="$WORK/docroot" \
        --echo-upload "$@" "$PORT" "$CERTS/localhost.key" \
        "$CERTS/localhost.pem" >"$logf" 2>&1 &
      ;;
    esac
    SERVER_PID=$!
    SERVER_NAME=$name
    # setsid made the server a process-group leader: stop_server signals
    # the whole group (nginx and h2o fork workers).
    SERVER_PGID=$SERVER_PID
    wait_for_port "$PORT" "$logf" "$attempt"
    rc=$?
    if ((rc == 0)); then
      return 0
    fi
    if ((rc == 2)); then
      sed 's/^/    /' "$logf"
      stop_server
      return 1
    fi
  done
  return 1
}

# The server negotiates h2 with a certificate that verifies against the
# test CA, independently of h2pool (so a failure below is h2pool's).
check_handshake() {
  local name=$1 out
  out=$(timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
    -servername localhost -alpn h2 -CAfile "$CERTS/ca.pem" \
    -verify_hostname localhost -verify_return_error </dev/null 2>&1 |
    tr -d '\000')
  if grep -q '^ALPN protocol: h2$' <<<"$out" &&
    grep -q 'Verify return code: 0 (ok)' <<<"$out"; then
    pass "$name: openssl s_client: ALPN h2, certificate verifies"
  else
    fail "$name: openssl s_client handshake: $(grep -E 'ALPN|Verify return|error' <<<"$out" | head -n 3)"
  fi
}

run_checks() {
  local name=$1 base="https://localhost:$PORT" out="$WORK/out" err="$WORK/err"
  local d="$WORK/docroot" ca="$CERTS/ca.pem" rc i

  check_handshake "$name"

  h2pool get --cacert "$ca" "$base/small" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$d/small" "$name: get --cacert small file"
  else
    fail "$name: get --cacert small file: exit $rc: $(cat "$err")"
  fi

  # Without --cacert the system trust store does not know the test CA.
  h2pool get "$base/small" >"$out" 2>"$err"
  rc=$?
  if ((rc == 1)) && [[ ! -s $out ]] &&
    grep -q "^h2pool: $base/small: TLS certificate verification failed" "$err"; then
    pass "$name: get without --cacert: exit 1, $(head -n 1 "$err")"
  else
    fail "$name: get without --cacert: exit $rc (want 1), stdout $(stat -c %s "$out") bytes, stderr: $(cat "$err")"
  fi

  h2pool get --insecure "$base/small" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$d/small" "$name: get --insecure without a CA"
  else
    fail "$name: get --insecure: exit $rc: $(cat "$err")"
  fi

  # 50 URLs in one invocation: bodies concatenated in argument order.
  local -a urls=()
  : >"$WORK/expect"
  for ((i = 0; i < 50; i++)); do
    urls+=("$base/big")
    cat "$d/big" >>"$WORK/expect"
  done
  h2pool get --cacert "$ca" "${urls[@]}" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$WORK/expect" "$name: get 50 x 1 MiB in one call"
  else
    fail "$name: get 50 x 1 MiB: exit $rc: $(head -c 600 "$err")"
  fi

  h2pool bench -n 1000 -c 2 -m 100 --cacert "$ca" "$base/small" \
    >"$out" 2>"$err"
  rc=$?
  sed 's/^/    /' "$out"
  local json
  json=$(tail -n 1 "$out")
  if ((rc == 0)) && [[ $json == \{*\} ]] &&
    grep -q '"succeeded":1000,' <<<"$json" &&
    grep -q '"failed":0,' <<<"$json"; then
    pass "$name: bench -n 1000 -c 2 -m 100 over TLS: 1000 succeeded"
  else
    fail "$name: bench: exit $rc, last line: $json, stderr: $(head -c 600 "$err")"
  fi

  # A 1 MiB POST. Static file servers answer 405 (nginx, h2o), possibly
  # before reading the body; nghttpd --echo-upload sends it back. Either way
  # a response must arrive.
  if [[ -n $POST_HELPER ]]; then
    local target="$base/small"
    [[ $name == nghttpd ]] && target="$base/echo"
    timeout "$CLI_TIMEOUT" "$POST_HELPER" "$ca" "$target" "$d/big" \
      >"$out" 2>"$err"
    rc=$?
    local status
    status=$(sed -n 's/^status \([0-9]*\)$/\1/p' "$err")
    if ((rc == 0)) && [[ -n $status ]]; then
      if [[ $name == nghttpd ]]; then
        if [[ $status == 200 ]] && cmp -s "$out" "$d/big"; then
          pass "$name: 1 MiB POST echoed byte-exact (status 200)"
        else
          fail "$name: 1 MiB POST: status $status, echo $(cmp "$out" "$d/big" 2>&1 | head -n 1)"
        fi
      else
        pass "$name: 1 MiB POST got a response (status $status)"
      fi
    else
      fail "$name: 1 MiB POST: exit $rc: $(cat "$err")"
    fi
  fi
}

# Mutual TLS through the tool's --cert/--key, against nghttpd
# --verify-client (which requires a client certificate).
run_mtls_checks() {
  local base="https://localhost:$PORT" out="$WORK/out" err="$WORK/err" rc
  local ca="$CERTS/ca.pem"
  h2pool get --cacert "$ca" --cert "$CERTS/client.pem" \
    --key "$CERTS/client.key" "$base/small" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$WORK/docroot/small" "nghttpd --verify-client: get --cert --key"
  else
    fail "nghttpd --verify-client: get --cert --key: exit $rc: $(cat "$err")"
  fi
  h2pool get --cacert "$ca" "$base/small" >"$out" 2>"$err"
  rc=$?
  if ((rc == 1)) && [[ ! -s $out ]] &&
    grep -q "^h2pool: $base/small: TLS handshake failed" "$err"; then
    pass "nghttpd --verify-client: get without --cert: exit 1, $(head -n 1 "$err")"
  else
    fail "nghttpd --verify-client: get without --cert: exit $rc (want 1), stderr: $(cat "$err")"
  fi
  h2pool get --cacert "$ca" --cert "$CERTS/client.pem" "$base/small" \
    >"$out" 2>"$err"
  rc=$?
  if ((rc == 2)); then
    pass "--cert without --key is a usage error (exit 2)"
  else
    fail "--cert without --key: exit $rc (want 2), stderr: $(cat "$err")"
  fi
}

# Test data: a 6-byte file and a 1 MiB random file.
mkdir -p "$WORK/docroot"
printf 'hello\n' >"$WORK/docroot/small"
head -c 1048576 /dev/urandom >"$WORK/docroot/big"
chmod 755 "$WORK/docroot"
chmod 644 "$WORK/docroot"/*

log "client: $("$CLI" --version 2>&1)"
log "openssl: $(openssl version)"
for name in "${SERVERS[@]}"; do
  case $name in
  nginx | h2o | nghttpd) ;;
  *)
    log "unknown server '$name'"
    exit 1
    ;;
  esac
  if ! command -v "$name" >/dev/null 2>&1; then
    log "SKIP $name: not installed"
    missing=$((missing + 1))
    continue
  fi
  case $name in
  nginx) version=$(nginx -v 2>&1) ;;
  *) version=$("$name" --version 2>&1 | head -n 1) ;;
  esac
  log "server: $version ($(command -v "$name"))"
  if ! start_server "$name"; then
    fail "$name: could not be started over TLS"
    continue
  fi
  log "$name listening on 127.0.0.1:$PORT with TLS (pgid $SERVER_PID)"
  run_checks "$name"
  port=$PORT pgid=$SERVER_PID
  stop_server

  if [[ $name == nghttpd ]]; then
    if start_server nghttpd --verify-client; then
      log "nghttpd --verify-client listening on 127.0.0.1:$PORT"
      run_mtls_checks
      stop_server
    else
      fail "nghttpd --verify-client could not be started"
    fi
  fi

  left=$(group_members "$pgid")
  if [[ -z $left ]] && ! port_accepts "$port"; then
    pass "$name: stopped, no process left, port closed"
  else
    fail "$name: still running after stop: pids '$left'"
  fi
done

check_no_jobs

log "$checks checks, $failures failed, $missing server(s) missing"
if ((failures > 0)); then
  exit 1
fi
if ((missing > 0)); then
  exit 77
fi
exit 0
