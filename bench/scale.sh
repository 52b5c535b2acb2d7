#!/usr/bin/env bash
# Scale: a zone of 1,000,000 records (900k A + 100k TXT) plus 100,000 pools of 4
# members. Measures time to the ready line, RSS, and how long a reload takes to be
# visible (a changed record answered), with a query load running during the reload.
# Usage: bench/scale.sh [RECORDS] [POOLS]     (needs dig and dnsperf)
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
POOLS=${2:-100000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release --quiet
python3 bench/scale.py "$work" "$RECORDS" "$POOLS"
echo "zone: $(wc -l < "$work/big.zone") lines, config: $(wc -l < "$work/lbdns.toml") lines"

start=$(date +%s.%N)
./target/release/lbdns --config "$work/lbdns.toml" > "$work/ready" 2> "$work/log" &
pid=$!
while [ ! -s "$work/ready" ]; do sleep 0.02; kill -0 $pid || { cat "$work/log"; exit 1; }; done
ready=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
printf 'ready in %.2f s, RSS %.0f MB\n' "$(echo "$ready - $start" | bc)" "$(echo "$rss / 1024" | bc -l)"
dig @127.0.0.1 -p 5305 h12345.big.test +short
dig @127.0.0.1 -p 5305 p777.big.test +short | head -2

# Reload under load: change one record, SIGHUP, time until it is answered.
printf 'h1.big.test A\nt1.big.test TXT\np1.big.test A\nnope.big.test A\n' > "$work/q.txt"
dnsperf -s 127.0.0.1 -p 5305 -d "$work/q.txt" -l 30 -Q 20000 -c 4 > "$work/dnsperf.txt" 2>&1 &
dp=$!
sleep 2
sed -i 's/^h1 IN A .*/h1 IN A 192.0.2.99/' "$work/big.zone"
t0=$(date +%s.%N)
kill -HUP $pid
until [ "$(dig @127.0.0.1 -p 5305 h1.big.test +short +time=1 +tries=1)" = "192.0.2.99" ]; do sleep 0.01; done
t1=$(date +%s.%N)
printf 'reload visible in %.2f s\n' "$(echo "$t1 - $t0" | bc)"
rss2=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
printf 'RSS after reload %.0f MB\n' "$(echo "$rss2 / 1024" | bc -l)"
wait $dp || true
grep -E "Queries sent|Queries completed|Queries lost|Queries per second" "$work/dnsperf.txt"
grep -E "reload" "$work/log" | sed 's/\x1b\[[0-9;]*m//g' | tail -2
kill $pid
