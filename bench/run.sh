#!/usr/bin/env bash
# h2pool benchmark: h2pool bench vs h2load vs libcurl (bench/curl_bench)
# against one local h2o, plus h2pool's memory per connection and per stream.
#
#   bench/run.sh [--quick] [--repeat R] [--build-dir DIR] [--no-build]
#                [--no-mem] [--mem-only] [--only KEY_GLOB]
#
# See bench/README.md. Loopback only: every URL is http(s)://127.0.0.1.
# Prints markdown tables and saves them to bench/results/latest.md (raw
# figures in bench/results/latest.tsv). Exits non-zero, loudly, if any
# client reports a failed request or a non-2xx response.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD_DIR=${H2POOL_BENCH_BUILD_DIR:-$REPO/build-bench}
QUICK=0
REPEAT=5
DO_BUILD=1
DO_LOAD=1
DO_MEM=1
ONLY=""
CLIENT_TIMEOUT=120

die() {
  printf '\n[bench] FATAL: %s\n' "$*" >&2
  exit 1
}
log() { printf '[bench] %s\n' "$*" >&2; }

while [[ $# -gt 0 ]]; do
  case $1 in
  --quick) QUICK=1 ;;
  --repeat)
    REPEAT=${2:?--repeat needs a value}
    shift
    ;;
  --build-dir)
    BUILD_DIR=${2:?--build-dir needs a value}
    shift
    ;;
  --no-build) DO_BUILD=0 ;;
  --no-mem) DO_MEM=0 ;;
  --only)
    ONLY=${2:?--only needs a pattern}
    shift
    ;;
  --mem-only) DO_LOAD=0 ;;
  -h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat wants a positive integer"

# ---------------------------------------------------------------- deps ----
need_pkgs=()
command -v h2o >/dev/null || need_pkgs+=(h2o)
command -v h2load >/dev/null || need_pkgs+=(nghttp2-client)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
command -v cmake >/dev/null || need_pkgs+=(cmake)
pkg-config --exists libcurl 2>/dev/null || need_pkgs+=(libcurl4-openssl-dev)
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    die "missing packages: ${need_pkgs[*]} (run as root or apt-get install them)"
  fi
  log "installing missing packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null; } ||
    die "apt-get install ${need_pkgs[*]} failed"
fi

# --------------------------------------------------------------- build ----
if [[ $DO_BUILD -eq 1 ]]; then
  log "building in $BUILD_DIR (Release, H2POOL_BUILD_BENCH=ON)"
  cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    -DH2POOL_BUILD_BENCH=ON >"$BUILD_DIR.cmake.log" 2>&1 ||
    { cat "$BUILD_DIR.cmake.log" >&2; die "cmake configure failed"; }
  cmake --build "$BUILD_DIR" -j"$(nproc)" \
    --target h2pool_cli h2pool_curl_bench h2pool_mem_probe h2pool_runstat >"$BUILD_DIR.build.log" 2>&1 ||
    { tail -40 "$BUILD_DIR.build.log" >&2; die "build failed"; }
fi
H2POOL=$BUILD_DIR/tools/h2pool
CURL_BENCH=$BUILD_DIR/bench/curl_bench
MEM_PROBE=$BUILD_DIR/bench/mem_probe
RUNSTAT=$BUILD_DIR/bench/runstat
for b in "$H2POOL" "$CURL_BENCH" "$MEM_PROBE" "$RUNSTAT"; do
  [[ -x $b ]] || die "$b not built (configure with -DH2POOL_BUILD_BENCH=ON)"
done

# ------------------------------------------------------- CPU placement ----
# Client and server share this machine. With 2+ CPUs the server is pinned to
# CPU 0 and every client to CPU 1, so each side has a core of its own and
# the clients compete on equal terms (all three drive the load from one
# thread: h2load -t 1, curl_bench, h2pool bench's single pool loop thread).
NCPU=$(nproc)
if [[ $NCPU -ge 2 ]]; then
  SERVER_PIN=(taskset -c 0)
  CLIENT_PIN=(taskset -c 1)
  PLACEMENT="h2o (num-threads 1) pinned to CPU 0, each client pinned to CPU 1"
else
  SERVER_PIN=()
  CLIENT_PIN=()
  PLACEMENT="single CPU: server and client share it (figures are indicative only)"
fi

# ----------------------------------------------------------- work dir ----
WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-bench.XXXXXX")
# h2o started as root drops to 'nobody', which must read docroot and cert.
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pick_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # PORT PID
  local i
  for i in $(seq 200); do
    port_accepts "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# Raise the descriptor limit (1,000 pooled connections need > 1,024 fds in
# both the probe and the server); root may raise the hard limit too.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ------------------------------------------------------- machine info ----
machine_info() {
  local cpu h2ov h2lv curlv kern commit
  cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
  h2ov=$(h2o --version 2>/dev/null | head -1)
  h2lv=$(h2load --version 2>/dev/null | head -1)
  curlv=$(pkg-config --modversion libcurl 2>/dev/null || echo unknown)
  kern=$(uname -r)
  commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [[ -n $(git -C "$REPO" status --porcelain -- src include 2>/dev/null) ]]; then
    commit="$commit (src/ or include/ modified)"
  fi
  cat <<EOF
- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); h2pool $("$H2POOL" --version | sed 's/^h2pool //') at $commit, Release build
- machine: $(uname -m), $NCPU CPUs, $cpu; Linux $kern
- server: $h2ov (num-threads 1, static files, $(openssl version | cut -d' ' -f1-2)); placement: $PLACEMENT
- clients: $h2lv (-t 1); libcurl $curlv (bench/curl_bench, multi interface); h2pool bench
- parameters: $([[ $QUICK -eq 1 ]] && echo "--quick (N/10)" || echo "full"), $REPEAT repetitions per client, medians reported
- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these CPUs skews every figure; throughput most)
EOF
}

RESULTS_DIR=$HERE/results
mkdir -p "$RESULTS_DIR"
RAW=$WORK/results.tsv
MEMRAW=$WORK/mem.tsv
printf 'scenario\ttitle\tkind\tclient\trep\trequests\tbody_size\twall_s\tuser_s\tsys_s\tmaxrss_kib\tstall_s\n' >"$RAW"

# ---------------------------------------------------------- h2o setup ----
start_h2o() {
  mkdir -p "$WORK/docroot"
  printf 'hello\n' >"$WORK/docroot/6b"
  head -c 1024 /dev/urandom >"$WORK/docroot/1k"
  head -c 1048576 /dev/urandom >"$WORK/docroot/1m"
  chmod 755 "$WORK/docroot"
  chmod 644 "$WORK/docroot"/*
  # Throwaway self-signed certificate for 127.0.0.1 (P-256, 2 days).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 ||
    die "openssl could not generate a certificate"
  chmod 644 "$WORK/key.pem" "$WORK/cert.pem"
  local attempt
  for attempt in 1 2 3 4 5; do
    H2C_PORT=$(pick_port)
    TLS_PORT=$(pick_port)
    [[ $H2C_PORT != "$TLS_PORT" ]] || continue
    # Tuned for throughput on a shared 2-CPU box: one worker thread (the
    # other CPU is the client's), no access log (none is configured),
    # no OCSP stapling fetches, 100 streams per connection (h2o's default,
    # stated explicitly since the scenarios rely on it). http2-idle-timeout
    # stays at h2o's default 10 s: it is what ends libcurl 7.88's occasional
    # bulk-download stalls (see curl_bench.c), so it bounds their cost.
    cat >"$WORK/h2o.conf" <<EOF
num-threads: 1
max-connections: 20000
http2-max-concurrent-requests-per-connection: 100
send-server-name: OFF
listen:
  host: 127.0.0.1
  port: $H2C_PORT
listen:
  host: 127.0.0.1
  port: $TLS_PORT
  ssl:
    certificate-file: $WORK/cert.pem
    key-file: $WORK/key.pem
    minimum-version: TLSv1.2
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        file.dir: $WORK/docroot
        file.etag: OFF
EOF
    setsid "${SERVER_PIN[@]}" h2o -c "$WORK/h2o.conf" >"$WORK/h2o.log" 2>&1 &
    H2O_PID=$!
    PIDS+=("$H2O_PID")
    if wait_port "$H2C_PORT" "$H2O_PID" && wait_port "$TLS_PORT" "$H2O_PID"; then
      return 0
    fi
    log "h2o did not start (attempt $attempt):"
    cat "$WORK/h2o.log" >&2
  done
  die "h2o failed to start"
}

# run_client CLIENT N C M URL -> sets R_WALL R_USER R_SYS R_RSS R_STALL;
# dies on any failure. Every client runs under runstat (GNU time's rusage
# with 1 us resolution), pinned the same way.
CURL_EXTRA=()
# PROTO_ARGS_*: set by scenario() for HTTP/1.1 rows (h2load --h1, h2pool
# bench --http1.1, curl_bench --http1.1), empty for HTTP/2.
PROTO_H2LOAD=() PROTO_H2POOL=() PROTO_CURL=()
run_client() {
  local client=$1 n=$2 c=$3 m=$4 url=$5 out=$WORK/client.out tf=$WORK/time.out
  local -a cmd
  case $client in
  h2load) cmd=(h2load -t 1 "${PROTO_H2LOAD[@]}" -n "$n" -c "$c" -m "$m" "$url") ;;
  # --discard-body: like h2load (and curl_bench's sink), h2pool drops the
  # bodies as they stream instead of buffering each one whole.
  h2pool) cmd=("$H2POOL" bench -k --discard-body "${PROTO_H2POOL[@]}" -n "$n" -c "$c" -m "$m" "$url") ;;
  libcurl) cmd=("$CURL_BENCH" -k "${CURL_EXTRA[@]}" "${PROTO_CURL[@]}" -n "$n" -c "$c" -m "$m" "$url") ;;
  esac
  local rc=0
  rm -f "$tf"
  "$RUNSTAT" "$tf" "$CLIENT_TIMEOUT" "${CLIENT_PIN[@]}" "${cmd[@]}" >"$out" 2>&1 ||
    die "runstat failed for ${cmd[*]}"
  read -r R_USER R_SYS R_RSS rc <"$tf"
  R_STALL=0
  local why=""
  if [[ $rc -ne 0 ]]; then
    why="exit status $rc"
  fi
  case $client in
  h2load)
    # requests: N total, N started, N done, S succeeded, F failed, E errored, T timeout
    local line st
    line=$(grep -E '^requests: ' "$out" || true)
    st=$(grep -E '^status codes: ' "$out" || true)
    if [[ -z $why && ! $line =~ ^requests:\ $n\ total,\ $n\ started,\ $n\ done,\ $n\ succeeded,\ 0\ failed,\ 0\ errored,\ 0\ timeout ]]; then
      why="not all requests succeeded: $line"
    elif [[ -z $why && ! $st =~ ^status\ codes:\ $n\ 2xx ]]; then
      why="non-2xx responses: $st"
    fi
    # finished in 281.67ms, 710053.29 req/s, 23.70MB/s
    R_WALL=$(sed -nE 's/^finished in ([0-9.]+)(ms|s),.*/\1 \2/p' "$out" |
      awk '{ print ($2 == "ms") ? $1 / 1000 : $1 }')
    ;;
  h2pool | libcurl)
    local json
    json=$(tail -n 1 "$out")
    if [[ -z $why ]]; then
      why=$(python3 - "$json" "$n" "$client" <<'EOF' || echo "unparsable output"
import json, sys
j = json.loads(sys.argv[1]); n = int(sys.argv[2])
if j["failed"] != 0 or j["succeeded"] != n:
    print(f"{j['failed']} failed, {j['succeeded']} of {n} succeeded")
elif sys.argv[3] == "h2pool":
    ok = sum(v for k, v in j.get("status", {}).items() if k.startswith("2"))
    if ok != n: print(f"non-2xx responses: {j.get('status')}")
elif j.get("status_2xx") != n:
    print(f"non-2xx responses: {j.get('status_2xx')} of {n} were 2xx")
EOF
      )
    fi
    R_WALL=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["wall_s"])' "$json" 2>/dev/null || echo "")
    if [[ $client == libcurl ]]; then
      R_STALL=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("stall_s", 0) or 0)' "$json" 2>/dev/null || echo 0)
    fi
    ;;
  esac
  if [[ -n $why || -z ${R_WALL:-} ]]; then
    printf '\n[bench] FAILED: %s: %s\n[bench] command: %s\n' "$client" \
      "${why:-could not read its wall time}" "${cmd[*]}" >&2
    sed 's/^/    /' "$out" | tail -n 40 >&2
    die "$client reported failures; results are not valid"
  fi
}

# scenario KEY "TITLE" KIND PATH SIZE N C M SCHEME [h1|st|lt2]
# h1: every client speaks HTTP/1.1. st: h2pool submits from a caller thread
# (bench --submit-thread), the way bindings and most applications use it.
# lt2: h2pool runs two loop threads (bench --loop-threads 2), both on the
# client's one CPU: what a second loop costs when it has no core to gain.
# In st and lt2 rows the reference clients run as in the row without it.
scenario() {
  local key=$1 title=$2 kind=$3 path=$4 size=$5 n=$6 c=$7 m=$8 scheme=$9
  local proto=${10:-h2}
  local url rep client
  # shellcheck disable=SC2053 # ONLY is a glob on purpose
  [[ -z $ONLY || $key == $ONLY ]] || return 0
  PROTO_H2LOAD=() PROTO_H2POOL=() PROTO_CURL=()
  if [[ $proto == h1 ]]; then
    PROTO_H2LOAD=(--h1) PROTO_H2POOL=(--http1.1) PROTO_CURL=(--http1.1)
  elif [[ $proto == st ]]; then
    PROTO_H2POOL=(--submit-thread)
  elif [[ $proto == lt2 ]]; then
    PROTO_H2POOL=(--loop-threads 2)
  fi
  [[ $QUICK -eq 1 ]] && n=$((n / 10))
  if [[ $scheme == https ]]; then
    url="https://127.0.0.1:$TLS_PORT/$path"
  else
    url="http://127.0.0.1:$H2C_PORT/$path"
  fi
  title="$title, N=$n"
  log "$title"
  # libcurl's default 16 KiB receive buffer makes 7.88 stall on multiplexed
  # bulk downloads (see curl_bench.c); 512 KiB (its maximum) avoids it over
  # TLS, so the bulk scenarios use it.
  CURL_EXTRA=()
  [[ $kind == bulk ]] && CURL_EXTRA=(--buffer-size 524288)
  # Warm-up (not recorded): page cache, h2o file descriptors, TLS setup.
  local warm=$(((n + 9) / 10))
  ((warm >= c * m)) || warm=$((c * m))
  run_client h2load "$warm" "$c" "$m" "$url"
  for rep in $(seq "$REPEAT"); do
    # Rotate the client order per repetition so slow drift spreads evenly.
    local -a order=(h2load libcurl h2pool)
    local i k
    for ((i = 0; i < 3; i++)); do
      k=$(((i + rep - 1) % 3))
      client=${order[$k]}
      run_client "$client" "$n" "$c" "$m" "$url"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$title" \
        "$kind" "$client" "$rep" "$n" "$size" "$R_WALL" "$R_USER" "$R_SYS" \
        "$R_RSS" "$R_STALL" >>"$RAW"
      printf '[bench]   rep %s %-8s wall %8.3f s  cpu %7.3f s  rss %6d KiB%s\n' \
        "$rep" "$client" "$R_WALL" "$(echo "$R_USER $R_SYS" | awk '{print $1 + $2}')" \
        "$R_RSS" "$([[ $R_STALL != 0 ]] && echo "  (stalled ${R_STALL} s)")" >&2
    done
  done
}

# ------------------------------------------------------------- memory ----
# mem_probe against `h2pool serve` (h2c, ?delay_ms holds responses open) and
# against h2o over TLS (idle connections only: h2o answers at once).
mem_section() {
  local k=1000 s=1000 delay=3000 port pid
  [[ $QUICK -eq 1 ]] && { k=200; s=200; delay=1500; }
  local nofile
  nofile=$(ulimit -n)
  if [[ $nofile != unlimited && $nofile -lt $((k + 200)) ]]; then
    log "ulimit -n is $nofile: lowering the connection count to $((nofile - 200))"
    k=$((nofile - 200))
  fi
  printf 'probe\tserver\tbaseline RSS KiB\tall in flight: RSS KiB\tafter completion: RSS KiB (after malloc_trim)\tKiB per in-flight unit\tKiB per idle pooled connection\n' >"$MEMRAW"
  port=$(pick_port)
  setsid "${SERVER_PIN[@]}" "$H2POOL" serve --port "$port" \
    --max-concurrent-streams "$s" >"$WORK/serve.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port "$port" "$pid" || { cat "$WORK/serve.log" >&2; die "h2pool serve did not start"; }
  local url="http://127.0.0.1:$port/?size=6&delay_ms=$delay"
  mem_run conns "$k" "$url" "h2pool serve (h2c), delay_ms=$delay" \
    "$k connections, 1 stream each"
  mem_run streams "$s" "$url" "h2pool serve (h2c, max streams $s), delay_ms=$delay" \
    "1 connection, $s streams"
  if [[ $DO_LOAD -eq 0 ]]; then start_h2o; fi
  mem_run conns "$k" "https://127.0.0.1:$TLS_PORT/6b" "h2o (TLS), no delay" \
    "$k TLS connections (idle figure only)" -k
}
mem_run() { # MODE COUNT URL SERVER UNIT [-k]
  local mode=$1 count=$2 url=$3 server=$4 unit=$5 out=$WORK/mem.out rc=0
  log "memory: $mode $count against $server"
  timeout 120 "${CLIENT_PIN[@]}" "$MEM_PROBE" "$mode" "$count" "$url" ${6:-} >"$out" 2>&1 || rc=$?
  sed 's/^/    /' "$out" | head -n -1 >&2
  [[ $rc -eq 0 ]] || { cat "$out" >&2; die "mem_probe $mode failed (status $rc)"; }
  python3 - "$(tail -n 1 "$out")" "$mode" "$server" "$unit" >>"$MEMRAW" <<'EOF'
import json, sys
j = json.loads(sys.argv[1]); mode, server, unit = sys.argv[2:5]
idle = j["rss_idle_kib"]
inflight_ok = j["streams_active"] >= j["count"]
print("\t".join([
    unit, server, f"{j['rss_base_kib']}",
    f"{j['rss_inflight_kib']} ({j['streams_active']} streams, {j['connections_open_inflight']} conns)" if inflight_ok else "- (answered at once)",
    f"{j['rss_idle_raw_kib']} ({idle}), {j['connections_open_idle']} conns open",
    (f"{j['kib_per_inflight']:.1f} per " + ("connection+stream" if mode == "conns" else "stream")) if inflight_ok else "-",
    f"{j['kib_per_idle_connection']:.1f}" if mode == "conns" else "-"]))
EOF
}

# --------------------------------------------------------------- main ----
T_START=$(date +%s)
INFO=$(machine_info)
printf '%s\n' "$INFO" >&2
if awk -v n="$NCPU" '{ exit !($1 > n * 0.5) }' /proc/loadavg; then
  log "WARNING: load average $(cut -d' ' -f1 /proc/loadavg) on $NCPU CPUs: other processes are busy, results will be noisy"
fi

if [[ $DO_LOAD -eq 1 ]]; then
  start_h2o
  log "h2o on 127.0.0.1:$H2C_PORT (h2c) and 127.0.0.1:$TLS_PORT (TLS)"
  #        key          title                                   kind path size     N       C M
  scenario small-c1m1-h2c   "6 B GET, c=1 m=1 (latency), h2c"      rps  6b 6       40000   1 1 http
  scenario small-c1m1-tls   "6 B GET, c=1 m=1 (latency), TLS"      rps  6b 6       40000   1 1 https
  scenario small-c1m100-h2c "6 B GET, c=1 m=100, h2c"              rps  6b 6       200000  1 100 http
  scenario small-c1m100-tls "6 B GET, c=1 m=100, TLS"              rps  6b 6       200000  1 100 https
  scenario small-c4m100-h2c "6 B GET, c=4 m=100 (throughput), h2c" rps  6b 6       200000  4 100 http
  scenario small-c4m100-tls "6 B GET, c=4 m=100 (throughput), TLS" rps  6b 6       200000  4 100 https
  scenario small-c4m100-tls-st "6 B GET, c=4 m=100, TLS, h2pool --submit-thread" rps 6b 6 200000 4 100 https st
  scenario small-c4m100-h2c-lt2 "6 B GET, c=4 m=100, h2c, h2pool --loop-threads 2" rps 6b 6 200000 4 100 http lt2
  scenario small-c4m100-tls-lt2 "6 B GET, c=4 m=100, TLS, h2pool --loop-threads 2" rps 6b 6 200000 4 100 https lt2
  scenario 1k-c4m100-h2c    "1 KiB GET, c=4 m=100, h2c"            rps  1k 1024    200000  4 100 http
  scenario 1k-c4m100-tls    "1 KiB GET, c=4 m=100, TLS"            rps  1k 1024    200000  4 100 https
  scenario bulk-h2c         "1 MiB GET, c=4 m=10 (bulk), h2c"      bulk 1m 1048576 1000    4 10 http
  scenario bulk-tls         "1 MiB GET, c=4 m=10 (bulk), TLS"      bulk 1m 1048576 1000    4 10 https
  scenario h1-small-c50-clear "6 B GET, HTTP/1.1, c=50, cleartext"   rps  6b 6       100000  50 1 http h1
  scenario h1-small-c50-tls   "6 B GET, HTTP/1.1, c=50, TLS"         rps  6b 6       100000  50 1 https h1
fi
if [[ $DO_MEM -eq 1 ]]; then
  mem_section
fi

{
  echo "## h2pool benchmark results"
  echo
  printf '%s\n' "$INFO"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- wall time of this run: $(($(date +%s) - T_START)) s; command: bench/run.sh$([[ $QUICK -eq 1 ]] && echo ' --quick') --repeat $REPEAT"
  echo
  if [[ $DO_LOAD -eq 1 ]]; then
    python3 "$HERE/report.py" "$RAW" "$([[ $DO_MEM -eq 1 ]] && echo "$MEMRAW")"
  else
    python3 "$HERE/report.py" /dev/stdin "$MEMRAW" <<<"$(head -1 "$RAW")"
  fi
  echo "libcurl 7.88.x h2c runs use HTTP/1.1 Upgrade on each connection's first request"
  echo "(prior knowledge breaks on connection reuse there: curl issue #10634); see bench/README.md."
} >"$WORK/latest.md"
cp "$WORK/latest.md" "$RESULTS_DIR/latest.md"
cp "$RAW" "$RESULTS_DIR/latest.tsv"
[[ $DO_MEM -eq 1 ]] && cp "$MEMRAW" "$RESULTS_DIR/latest-mem.tsv"
echo
cat "$RESULTS_DIR/latest.md"
log "saved to $RESULTS_DIR/latest.md ($(($(date +%s) - T_START)) s)"
