#!/usr/bin/env bash
# Resolver comparison behind src/resolver.h: c-ares and libevent's evdns,
# N (default 1000) lookups of distinct names at once against a dnsmasq on
# a free loopback port, then one lookup alone. Needs dnsmasq, libc-ares-dev
# and libevent-dev (evdns lives in libevent_extra).
#   bench/run_dns.sh [N]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
n="${1:-1000}"
tmp="$(mktemp -d)"
trap 'kill "$dns_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
cc -O2 -Wall -Wextra -o "$tmp/dns_bench" "$here/dns_bench.c" \
  $(pkg-config --cflags --libs libcares libevent_extra libevent_core)
port="$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
dnsmasq -k --port="$port" --no-resolv --no-hosts --cache-size=0 --pid-file= \
  --address=/bench.test/127.0.0.1 --address=/bench.test/::1 \
  --listen-address=127.0.0.1 --bind-interfaces 2>"$tmp/dnsmasq.log" &
dns_pid=$!
for _ in $(seq 50); do
  "$tmp/dns_bench" cares "$port" 1 >/dev/null 2>&1 && break
  sleep 0.1
done
for m in cares evdns cares evdns; do
  "$tmp/dns_bench" "$m" "$port" "$n" 2> >(grep -v '^\[msg' >&2) || true
done
for m in cares evdns; do "$tmp/dns_bench" "$m" "$port" 1; done
