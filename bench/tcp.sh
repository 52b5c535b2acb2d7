#!/usr/bin/env bash
# TCP: lbdns and Knot with `dnsperf -m tcp` (the reference harness has no TCP mode).
# Each server pinned to CPU 1, dnsperf to CPU 0, 10 s, 8 clients; prints qps and the
# server's CPU seconds, so qps per CPU-second compares the two.
# Needs: dnsperf, knot (apt-get install dnsperf knot). Usage: bench/tcp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED="$ROOT/../shared/bench"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release --quiet
mkdir -p "$work/knot/db"
sed -e "s|@PORT@|5303|g" -e "s|@RUN@|$work/knot|g" -e "s|@ZONES@|$SHARED/zones|g" \
    -e "s|@THREADS@|1|g" -e "s|@ROTATE@|off|g" "$SHARED/conf/knot/knot.conf.in" > "$work/knot/knot.conf"
run() { # NAME PORT COMMAND...
  local name=$1 port=$2; shift 2
  taskset -c 1 "$@" > "$work/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do dig @127.0.0.1 -p "$port" www.lb.example +tcp +short +time=1 | grep -q . && break; sleep 0.2; done
  local c0; c0=$(awk '{print $14 + $15}' /proc/$pid/stat)
  local qps; qps=$(taskset -c 0 dnsperf -m tcp -s 127.0.0.1 -p "$port" -d "$SHARED/queries.txt" -l 10 -c 8 -q 100 2>&1 \
    | awk '/Queries per second/ {print int($4)}')
  local c1; c1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  local cpu; cpu=$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l)
  printf '%-6s tcp qps=%s server_cpu_s=%.2f qps_per_cpu_s=%.0f\n' "$name" "$qps" "$cpu" "$(echo "$qps * 10 / $cpu" | bc -l)"
  kill $pid; wait $pid 2>/dev/null || true
}
run knot 5303 knotd -c "$work/knot/knot.conf"
run lbdns 5305 "$ROOT/target/release/lbdns" --config "$ROOT/bench/lbdns.toml"
