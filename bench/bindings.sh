#!/usr/bin/env bash
# Language bindings against net/http: the same load through Go's net/http,
# the Go binding's Pool.Do and a stock http.Client over its RoundTripper,
# the Rust binding's send, send_async and send_with (when cargo is found;
# --no-rust skips them) and any other client given with --client, each in
# its own process, reporting CPU us/request and peak RSS; then 1 GiB up and
# 1 GiB down through the bindings.
#
#   bench/bindings.sh [--build-dir DIR] [--repeat R] [-n N] [-c G]
#                     [--bytes B] [--no-rust] [--client NAME=COMMAND]...
#
# See bench/README.md. Loopback only. Prints a markdown table and saves it
# to bench/results/bindings.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD_DIR=$REPO/build-bench
REPEAT=3
N=50000
G=400
BYTES=$((1 << 30))
EXTRA=()
RUST=1

die() {
  printf '[bindings] FATAL: %s\n' "$*" >&2
  exit 1
}
log() { printf '[bindings] %s\n' "$*" >&2; }

while [[ $# -gt 0 ]]; do
  case $1 in
  --build-dir) BUILD_DIR=${2:?}; shift ;;
  --repeat) REPEAT=${2:?}; shift ;;
  -n) N=${2:?}; shift ;;
  -c) G=${2:?}; shift ;;
  --bytes) BYTES=${2:?}; shift ;;
  --client) EXTRA+=("${2:?}"); shift ;;
  --no-rust) RUST=0 ;;
  -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1" ;;
  esac
  shift
done
for tool in go h2o openssl python3 cmake; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
H2POOL=$BUILD_DIR/tools/h2pool
[[ -x $H2POOL ]] || die "$H2POOL not built (scripts/build.sh $BUILD_DIR)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/h2pool-bindings.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The binding as a Go program builds it: against the installed library.
cmake --install "$BUILD_DIR" --prefix "$WORK/prefix" >/dev/null
PC=$(dirname "$(find "$WORK/prefix" -name h2pool.pc -print -quit)")
export PKG_CONFIG_PATH=$PC LD_LIBRARY_PATH=$(dirname "$PC")
export GOCACHE=$WORK/gocache GOPATH=$WORK/gopath GOFLAGS= GOPROXY=off GOWORK=off CGO_ENABLED=1
(cd "$HERE/go" && go build -o "$WORK/gobench" .) || die "building bench/go failed"

# The Rust binding's bench example, against the same installed library
# (offline: the crates have no dependencies). Its target directory lives in
# the build directory, so that reruns do not rebuild it.
RUST_SPECS=() RUST_BULK=()
if [[ $RUST == 1 ]]; then
  CARGO=$(command -v cargo || true)
  [[ -x /usr/bin/cargo ]] && CARGO=/usr/bin/cargo
  if [[ -n $CARGO ]]; then
    log "building the Rust bench with $CARGO"
    (cd "$REPO/bindings/rust" && CARGO_HOME=$WORK/cargo-home CARGO_NET_OFFLINE=true \
      CARGO_TARGET_DIR=$BUILD_DIR/rust-bench-target \
      "$CARGO" build --offline --release --quiet --example bench) || die "building the Rust bench failed"
    RB=$BUILD_DIR/rust-bench-target/release/examples/bench
    RUST_SPECS=("Rust binding, send=$RB" "Rust binding, send_async=$RB --futures"
      "Rust binding, send_with=$RB --callbacks")
    RUST_BULK=("Rust binding, send=$RB")
  else
    log "cargo not found: no Rust rows"
  fi
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# h2o over TLS (net/http speaks HTTP/2 only over TLS) serving a 6-byte file.
mkdir -p "$WORK/docroot" && printf 'hello\n' >"$WORK/docroot/6b" && chmod -R a+rX "$WORK/docroot"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
chmod 644 "$WORK/key.pem" "$WORK/cert.pem"
TLS_PORT=$(port)
cat >"$WORK/h2o.conf" <<CONF
num-threads: 1
listen: {host: 127.0.0.1, port: $TLS_PORT, ssl: {certificate-file: $WORK/cert.pem, key-file: $WORK/key.pem, ocsp-update-interval: 0}}
hosts: {default: {paths: {/: {file.dir: $WORK/docroot}}}}
CONF
PIN_SERVER=() PIN_CLIENT=()
if [[ $(nproc) -ge 2 ]]; then PIN_SERVER=(taskset -c 0) PIN_CLIENT=(taskset -c 1); fi
"${PIN_SERVER[@]}" h2o -c "$WORK/h2o.conf" >"$WORK/h2o.log" 2>&1 &
PIDS+=($!)
wait_port "$TLS_PORT" || { cat "$WORK/h2o.log" >&2; die "h2o did not start"; }
URL=https://127.0.0.1:$TLS_PORT/6b

# h2pool serve (h2c) for the bulk transfers: it discards uploads, counting
# them, and generates downloads without holding them.
"$H2POOL" serve --port 0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
PIDS+=($!)
for _ in $(seq 200); do [[ -s $WORK/serve.out ]] && break; sleep 0.05; done
SERVE=$(head -1 "$WORK/serve.out")
[[ $SERVE == http://* ]] || die "h2pool serve printed no URL"

RAW=$WORK/raw.jsonl
run() { # LABEL COMMAND... ; appends {"label":..., ...result}
  local label=$1 out
  shift
  out=$("${PIN_CLIENT[@]}" "$@") || die "$label failed: $out"
  printf '{"label": "%s", "result": %s}\n' "$label" "$out" >>"$RAW"
}

log "GET $URL: N=$N from $G goroutines, $REPEAT repetitions"
for rep in $(seq "$REPEAT"); do
  run "Go net/http" "$WORK/gobench" -client nethttp -url "$URL" -n "$N" -c "$G"
  run "Go binding, Pool.Do" "$WORK/gobench" -client do -url "$URL" -n "$N" -c "$G"
  run "Go binding, http.Client over RoundTripper" "$WORK/gobench" -client rt -url "$URL" -n "$N" -c "$G"
  for spec in ${RUST_SPECS[@]+"${RUST_SPECS[@]}"} ${EXTRA[@]+"${EXTRA[@]}"}; do
    # NAME=COMMAND: COMMAND gets the same flags and prints the same JSON.
    read -r -a cmd <<<"${spec#*=}"
    run "${spec%%=*}" "${cmd[@]}" -url "$URL" -n "$N" -c "$G"
  done
done
log "bulk: $BYTES bytes up and down through the bindings"
run "Go binding, Pool.Do, upload" "$WORK/gobench" -client do -upload "$BYTES" -url "$SERVE/"
run "Go binding, Pool.Do, download" "$WORK/gobench" -client do -download "$BYTES" -url "$SERVE/?zeros=$BYTES"
for spec in ${RUST_BULK[@]+"${RUST_BULK[@]}"} ${EXTRA[@]+"${EXTRA[@]}"}; do
  read -r -a cmd <<<"${spec#*=}"
  run "${spec%%=*}, upload" "${cmd[@]}" -upload "$BYTES" -url "$SERVE/"
  run "${spec%%=*}, download" "${cmd[@]}" -download "$BYTES" -url "$SERVE/?zeros=$BYTES"
done

mkdir -p "$HERE/results"
python3 - "$RAW" "$N" "$G" "$BYTES" <<'PY' | tee "$HERE/results/bindings.md"
import json, statistics, sys
raw, n, g, nbytes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = {}
for line in open(raw):
    r = json.loads(line)
    rows.setdefault(r["label"], []).append(r["result"])
med = lambda rs, k: statistics.median(x[k] for x in rs)
base = med(rows["Go net/http"], "cpu_us_per_req")
print(f"GET of 6 B over TLS from h2o, {n} requests from {g} goroutines, medians of {len(rows['Go net/http'])}:\n")
print("| client | CPU us/req | vs net/http | req/s | peak RSS MiB | Go allocs/req |")
print("|---|---:|---:|---:|---:|---:|")
for label, rs in rows.items():
    if rs[0]["scenario"] != "get":
        continue
    cpu = med(rs, "cpu_us_per_req")
    allocs = med(rs, "allocs_per_req") if all("allocs_per_req" in x for x in rs) else None
    shown = f"{allocs:.1f}" if allocs else "-"
    print(f"| {label} | {cpu:.1f} | {cpu / base:.2f}x | {med(rs, 'requests') / med(rs, 'wall_s'):,.0f} | {med(rs, 'peak_rss_kib') / 1024:.1f} | {shown} |")
print(f"\nBulk through h2pool serve (h2c), {nbytes / 2**30:g} GiB in one request:\n")
print("| client | MB/s | CPU s | peak RSS MiB |")
print("|---|---:|---:|---:|")
for label, rs in rows.items():
    if rs[0]["scenario"] == "get":
        continue
    r = rs[0]
    print(f"| {label} | {r['bytes'] / r['wall_s'] / 1e6:,.0f} | {r['cpu_s']:.2f} | {r['peak_rss_kib'] / 1024:.1f} |")
PY
