#!/usr/bin/env bash
# Start-up only: the scale test's files (bench/scale.py: RECORDS records, 90% A
# and 10% TXT, and POOLS pools of 4 members), the time from exec to the ready line,
# RSS then and the start-up peak (VmHWM), RUNS times; then the server is stopped.
# A few seconds per run plus the generation (the reload and flip measurements are
# bench/scale.sh's).
# Usage: [LBDNS_BIN=BINARY] bench/startup.sh [RECORDS] [POOLS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
POOLS=${2:-100000}
RUNS=${3:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
BIN=${LBDNS_BIN:-./target/release/lbdns}
[ -n "${LBDNS_BIN:-}" ] || cargo build --release --quiet
python3 bench/scale.py "$work" "$RECORDS" "$POOLS"
sed -i -e 's|"127.0.0.1:5305"|"127.0.0.1:0"|' -e 's|"127.0.0.1:8099"|"127.0.0.1:0"|' "$work/lbdns.toml"
echo "zone: $(wc -l < "$work/big.zone") lines, config: $(wc -l < "$work/lbdns.toml") lines; $(uptime)"
for _ in $(seq "$RUNS"); do
  rm -rf "$work/state" "$work/ready"
  start=$(date +%s.%N)
  "$BIN" --config "$work/lbdns.toml" > "$work/ready" 2> "$work/log" &
  pid=$!
  while [ ! -s "$work/ready" ]; do sleep 0.02; kill -0 $pid || { cat "$work/log"; exit 1; }; done
  ready=$(date +%s.%N)
  rss=$(awk '$1 == "VmRSS:" {print $2}' /proc/$pid/status)
  hwm=$(awk '$1 == "VmHWM:" {print $2}' /proc/$pid/status)
  read -r _ _ dns _ < "$work/ready"; port=${dns##*:}
  answer=$(dig @127.0.0.1 -p "$port" h12345.big.test +short)
  printf 'ready in %.2f s, RSS %.0f MB, peak RSS while starting %.0f MB, h12345 -> %s\n' \
    "$(echo "$ready - $start" | bc)" "$(echo "$rss / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)" "$answer"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
echo "$(uptime)"
