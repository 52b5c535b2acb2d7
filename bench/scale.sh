#!/usr/bin/env bash
# Scale: a zone of 1,000,000 records (900k A + 100k TXT) plus 100,000 pools of 4
# members. Measures time to the ready line, RSS and the start-up peak (VmHWM), and
# how long a reload takes to be visible (a changed record answered), with a query
# load running during the reload, the queries lost, and the peak RSS during the
# reload (VmHWM after resetting it through /proc/PID/clear_refs just before the
# SIGHUP) against the steady RSS.
# Also measures a health flip's publish time at POOLS pools. With RECORDS = 0 it
# stops after that (no reload step).
# Usage: bench/scale.sh [RECORDS] [POOLS]     (needs dig and dnsperf)
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
POOLS=${2:-100000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# LBDNS_BIN: a binary built before (e.g. from another commit), instead of building.
BIN=${LBDNS_BIN:-./target/release/lbdns}
[ -n "${LBDNS_BIN:-}" ] || cargo build --release --quiet
python3 bench/scale.py "$work" "$RECORDS" "$POOLS"
sed -i -e 's|"127.0.0.1:5305"|"127.0.0.1:0"|' -e 's|"127.0.0.1:8099"|"127.0.0.1:0"|' "$work/lbdns.toml"
echo "zone: $(wc -l < "$work/big.zone") lines, config: $(wc -l < "$work/lbdns.toml") lines"
kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/$pid/status; }

# The flip pool's member: up while this listener accepts.
listener() {
  python3 -c 'import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 5399)); s.listen(128)
while True: s.accept()[0].close()' &
  lp=$!
  until (exec 3<>/dev/tcp/127.0.0.1/5399) 2>/dev/null; do sleep 0.05; done
}
listener

start=$(date +%s.%N)
LBDNS_LOG=info,lbdns::control=debug "$BIN" --config "$work/lbdns.toml" > "$work/ready" 2> "$work/log" &
pid=$!
while [ ! -s "$work/ready" ]; do sleep 0.02; kill -0 $pid || { cat "$work/log"; exit 1; }; done
ready=$(date +%s.%N)
read -r _ _ dns _ < "$work/ready"; port=${dns##*:}
rss=$(kb VmRSS)
hwm=$(kb VmHWM)
printf 'ready in %.2f s, RSS %.0f MB, peak RSS while starting %.0f MB\n' "$(echo "$ready - $start" | bc)" \
    "$(echo "$rss / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)"
dig @127.0.0.1 -p "$port" h12345.big.test +short
dig @127.0.0.1 -p "$port" p777.big.test +short | head -2

# A health flip at this many pools: the listener stops (member down), then comes
# back (member up); the writer logs how long each took to publish.
flips() { grep -c "health change published" "$work/log" || true; }
kill $lp; wait $lp 2>/dev/null || true
until [ "$(flips)" -ge 1 ]; do sleep 0.05; done
listener
until [ "$(flips)" -ge 2 ]; do sleep 0.05; done
grep "health change published" "$work/log" | sed 's/\x1b\[[0-9;]*m//g'
kill $lp
[ "$RECORDS" -gt 0 ] || { kill $pid; exit 0; }

# Reload under load: change one record, SIGHUP, time until it is answered.
printf 'h1.big.test A\nt1.big.test TXT\np1.big.test A\nnope.big.test A\n' > "$work/q.txt"
# The load runs from 2 s before the SIGHUP until 2 s after the reload is done (SIGINT
# makes dnsperf print its figures; "interrupted" are the few in flight then, not lost).
dnsperf -s 127.0.0.1 -p "$port" -d "$work/q.txt" -l 600 -Q 20000 -c 4 > "$work/dnsperf.txt" 2>&1 &
dp=$!
sleep 2
sed -i 's/^h1 IN A .*/h1 IN A 192.0.2.99/' "$work/big.zone"
steady=$(kb VmRSS)
echo 5 > /proc/$pid/clear_refs   # VmHWM := VmRSS, so that VmHWM below is the reload's peak
t0=$(date +%s.%N)
kill -HUP $pid
until [ "$(dig @127.0.0.1 -p "$port" h1.big.test +short +time=1 +tries=1)" = "192.0.2.99" ]; do sleep 0.01; done
t1=$(date +%s.%N)
printf 'reload visible in %.2f s\n' "$(echo "$t1 - $t0" | bc)"
until grep -q "reload done" "$work/log"; do sleep 0.05; kill -0 $pid; done
peak=$(kb VmHWM)
rss2=$(kb VmRSS)
printf 'RSS before reload %.0f MB, peak during reload %.0f MB (%.2fx), after reload %.0f MB\n' \
    "$(echo "$steady / 1024" | bc -l)" "$(echo "$peak / 1024" | bc -l)" "$(echo "$peak / $steady" | bc -l)" \
    "$(echo "$rss2 / 1024" | bc -l)"
sleep 2
kill -INT $dp; wait $dp || true
grep -E "Queries sent|Queries completed|Queries lost|Queries interrupted|Queries per second" "$work/dnsperf.txt"
grep -E "reload" "$work/log" | sed 's/\x1b\[[0-9;]*m//g' | tail -2
kill $pid
