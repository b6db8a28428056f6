#!/usr/bin/env bash
# Interop test: the h2pool command-line tool speaking HTTP/1.1 to real
# servers (nginx, h2o, apache2), over cleartext and over TLS, on loopback
# only. Over TLS the servers offer http/1.1 alone in ALPN (nginx and apache
# without their HTTP/2 modules) and the client is run both ways: offering
# h2 and http/1.1 (it must fall back) and with --http1.1. h2o offers h2 as
# well, so against it only --http1.1 asks for HTTP/1.1.
#
#   interop_h1.sh PATH_TO_H2POOL [nginx|h2o|apache2]...
#
# Per server and transport: GET of a small file (status line shown as
# HTTP/1.1), a 1 MiB random file downloaded byte-exact, a 1 MiB random
# file uploaded byte-exact (PUT then GET for nginx and apache, an echo
# handler for h2o), and a 20,000-request bench. Exits 0 when every check
# passed, 1 on any failure, 77 when none of the servers is installed.
set -uo pipefail

CLI=${1:?usage: interop_h1.sh PATH_TO_H2POOL [nginx|h2o|apache2]...}
shift
SERVERS=("$@")
if [[ ${#SERVERS[@]} -eq 0 ]]; then
  SERVERS=(nginx h2o apache2)
fi
BENCH_N=${BENCH_N:-20000}

CLI_TIMEOUT=120
START_DEADLINE_MS=10000
STOP_DEADLINE_MS=5000

HARNESS_PREFIX=interop-h1
# shellcheck source=SCRIPTDIR/../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh" || exit 1

require_cli

WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-interop-h1.XXXXXX") || exit 1
# Servers started as root drop to an unprivileged user, which must read the
# docroot (and write the upload directory).
chmod 755 "$WORK"
[[ -n ${KEEP_WORK:-} ]] || on_exit cleanup

binary_of() {
  case $1 in
  apache2) echo /usr/sbin/apache2 ;;
  *) command -v "$1" ;;
  esac
}

# A throwaway CA-less certificate for localhost, trusted with --cacert.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost >/dev/null 2>&1 || {
  log "cannot make a certificate"
  exit 1
}
chmod 644 "$WORK/key.pem" "$WORK/cert.pem"

write_config() {
  local name=$1 port=$2 mode=$3
  local tls_nginx="" tls_apache=""
  case $name in
  nginx)
    mkdir -p "$WORK/nginx/tmp"
    [[ $mode == tls ]] && tls_nginx="ssl"
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log info;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  client_max_body_size 8m;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$port $tls_nginx;
    server_name localhost;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    root $WORK/docroot;
    location /up/ { dav_methods PUT; }
  }
}
EOF
    ;;
  h2o)
    {
      echo "listen:"
      echo "  host: 127.0.0.1"
      echo "  port: $port"
      if [[ $mode == tls ]]; then
        echo "  ssl:"
        echo "    certificate-file: $WORK/cert.pem"
        echo "    key-file: $WORK/key.pem"
      fi
      cat <<EOF
hosts:
  default:
    paths:
      /echo:
        mruby.handler: |
          Proc.new do |env|
            [200, {"content-type" => "application/octet-stream"}, [env["rack.input"].read]]
          end
      /:
        file.dir: $WORK/docroot
EOF
    } >"$WORK/h2o.conf"
    ;;
  apache2)
    # The DAV lock database is written by the unprivileged user.
    mkdir -p "$WORK/apache/lock"
    chmod 777 "$WORK/apache/lock"
    if [[ $mode == tls ]]; then
      tls_apache="SSLEngine on
SSLCertificateFile $WORK/cert.pem
SSLCertificateKeyFile $WORK/key.pem"
    fi
    cat >"$WORK/apache/httpd.conf" <<EOF
ServerName localhost
ServerRoot $WORK/apache
Listen 127.0.0.1:$port
PidFile $WORK/apache/httpd.pid
ErrorLog $WORK/apache/error.log
DefaultRuntimeDir $WORK/apache
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dav_module /usr/lib/apache2/modules/mod_dav.so
LoadModule dav_fs_module /usr/lib/apache2/modules/mod_dav_fs.so
LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so
User nobody
Group nogroup
Protocols http/1.1
KeepAlive On
MaxKeepAliveRequests 0
DavLockDB $WORK/apache/lock/davlock
DocumentRoot $WORK/docroot
<Directory $WORK/docroot>
  Require all granted
</Directory>
<Directory $WORK/docroot/up>
  Dav On
</Directory>
$tls_apache
EOF
    ;;
  esac
}

start_server() {
  local name=$1 mode=$2 attempt rc logf="$WORK/$1.log"
  for attempt in 1 2 3 4 5; do
    PORT=$(pick_port) || return 1
    write_config "$name" "$PORT" "$mode"
    case $name in
    nginx)
      setsid nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
        -g 'daemon off;' >"$logf" 2>&1 &
      ;;
    h2o)
      setsid h2o -c "$WORK/h2o.conf" >"$logf" 2>&1 &
      ;;
    apache2)
      setsid /usr/sbin/apache2 -f "$WORK/apache/httpd.conf" -DFOREGROUND \
        >"$logf" 2>&1 &
      ;;
    esac
    SERVER_PID=$!
    SERVER_NAME=$name
    SERVER_PGID=$SERVER_PID # setsid: the server leads its own group
    wait_for_port "$PORT" "$logf" "$attempt"
    rc=$?
    ((rc == 0)) && return 0
    if ((rc == 2)); then
      stop_server
      return 1
    fi
  done
  return 1
}

# check_exchange NAME LABEL BASE [CLIENT_ARGS...]: the checks, with the
# client run with CLIENT_ARGS against BASE.
check_exchange() {
  local name=$1 label=$2 base=$3
  shift 3
  local -a args=("$@")
  local out="$WORK/out" err="$WORK/err" d="$WORK/docroot" rc what

  what="$name $label: GET small file over HTTP/1.1"
  h2pool get -v "${args[@]}" "$base/small.txt" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)) && cmp -s "$out" "$d/small.txt" &&
    grep -q '^< HTTP/1.1 200 OK' "$err"; then
    pass "$what ($(grep -m1 '^< HTTP' "$err"))"
  else
    fail "$what: exit $rc: $(head -c 400 "$err")"
  fi

  what="$name $label: GET 1 MiB random file"
  h2pool get "${args[@]}" "$base/big.bin" >"$out" 2>"$err"
  rc=$?
  if ((rc == 0)); then
    same_bytes "$out" "$d/big.bin" "$what"
  else
    fail "$what: exit $rc: $(cat "$err")"
  fi

  what="$name $label: 1 MiB random upload, byte-exact"
  local up="$WORK/upload.bin"
  head -c 1048576 /dev/urandom >"$up"
  if [[ $name == h2o ]]; then
    h2pool get -X POST --data "@$up" "${args[@]}" "$base/echo" >"$out" \
      2>"$err"
    rc=$?
  else
    local target="up/$label.$RANDOM.bin"
    h2pool get -v -X PUT --data "@$up" "${args[@]}" "$base/$target" \
      >/dev/null 2>"$err" && grep -q '^< HTTP/1.1 20[14]' "$err" &&
      h2pool get "${args[@]}" "$base/$target" >"$out" 2>>"$err"
    rc=$?
  fi
  if ((rc == 0)); then
    same_bytes "$out" "$up" "$what"
  else
    fail "$what: exit $rc: $(cat "$err")"
  fi

  what="$name $label: bench -n $BENCH_N -c 8"
  h2pool bench -n "$BENCH_N" -c 8 "${args[@]}" "$base/small.txt" \
    >"$out" 2>"$err"
  rc=$?
  local json
  json=$(tail -n 1 "$out")
  if ((rc == 0)) && grep -q "\"requests\":$BENCH_N," <<<"$json" &&
    grep -q "\"succeeded\":$BENCH_N," <<<"$json" &&
    grep -q '"failed":0,' <<<"$json"; then
    pass "$what: $(grep -o '"rps":[0-9.]*' <<<"$json"), $(grep -o '"connections":[0-9]*' <<<"$json")"
  else
    fail "$what: exit $rc, last line: $json, stderr: $(head -c 400 "$err")"
  fi
}

mkdir -p "$WORK/docroot/up"
printf 'hello\n' >"$WORK/docroot/small.txt"
head -c 1048576 /dev/urandom >"$WORK/docroot/big.bin"
chmod 755 "$WORK/docroot"
chmod 777 "$WORK/docroot/up"
chmod 644 "$WORK/docroot"/*.txt "$WORK/docroot"/*.bin

log "client: $("$CLI" --version 2>&1)"
tested=0
for name in "${SERVERS[@]}"; do
  case $name in
  nginx | h2o | apache2) ;;
  *)
    log "unknown server '$name'"
    exit 1
    ;;
  esac
  if [[ -z $(binary_of "$name") || ! -x $(binary_of "$name") ]]; then
    log "SKIP $name: not installed"
    continue
  fi
  tested=$((tested + 1))
  for mode in clear tls; do
    if ! start_server "$name" "$mode"; then
      fail "$name $mode: could not be started"
      continue
    fi
    log "$name ($mode) listening on 127.0.0.1:$PORT"
    if [[ $mode == clear ]]; then
      check_exchange "$name" cleartext "http://127.0.0.1:$PORT" --http1.1
    else
      tls_args=(--cacert "$WORK/cert.pem")
      check_exchange "$name" tls-alpn-http1.1 "https://localhost:$PORT" \
        --http1.1 "${tls_args[@]}"
      if [[ $name != h2o ]]; then
        # Offering h2 and http/1.1, to a server that has only the latter.
        check_exchange "$name" tls-fallback "https://localhost:$PORT" \
          "${tls_args[@]}"
      fi
    fi
    stop_server
  done
done

check_no_jobs

if ((tested == 0 && failures == 0)); then
  log "SKIPPED: none of ${SERVERS[*]} is installed"
  exit 77
fi
log "$checks checks, $failures failed"
((failures == 0))
