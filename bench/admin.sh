#!/usr/bin/env bash
# Admin API write throughput (sequential and 8 concurrent clients), and DNS
# throughput measured with dnsperf before and during a write burst.
# Needs python3 and dnsperf (apt-get install dnsperf). Usage: bench/admin.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release --quiet
cp zones/example.test.zone "$work/"; cp -r geoip "$work/"
sed -e 's|^# token_file = "admin.token".*|token_file = "admin.token"|' \
    -e 's|^listen = \["127.0.0.1:5353"\].*|listen = ["127.0.0.1:0"]|' \
    -e 's|^listen = "127.0.0.1:8053".*|listen = "127.0.0.1:0"|' \
    -e 's|file = "zones/|file = "|' lbdns.toml > "$work/lbdns.toml"
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')   # 32 hex characters: the shortest lbdns accepts
echo "$token" > "$work/admin.token"; chmod 600 "$work/admin.token"
./target/release/lbdns --config "$work/lbdns.toml" > "$work/ready" 2> "$work/log" &
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
read -r _ _ dns admin _ < "$work/ready"; dns=${dns#dns=}; admin=${admin#admin=}
echo "server: dns=$dns admin=$admin"

python3 bench/admin_writes.py "$admin" "$token" 1000 1 seq
python3 bench/admin_writes.py "$admin" "$token" 2000 8 conc

printf 'www.example.test A\nstatic.example.test A\nnope.example.test A\n' > "$work/q.txt"
dport=${dns##*:}
echo "dnsperf, 10 s, no writes:"
dnsperf -s 127.0.0.1 -p "$dport" -d "$work/q.txt" -l 10 -c 4 -q 200 2>&1 | grep -E "Queries per second|Queries lost"
echo "dnsperf, 10 s, during a burst of writes from 8 clients:"
python3 bench/admin_writes.py "$admin" "$token" 4000 8 burst > "$work/burst.txt" &
dnsperf -s 127.0.0.1 -p "$dport" -d "$work/q.txt" -l 10 -c 4 -q 200 2>&1 | grep -E "Queries per second|Queries lost"
wait %2 2>/dev/null || true
cat "$work/burst.txt"

# Sequential writes into a big zone (BIG records, default 1,000,000, added to the
# example zone as h0..hN A records): an RRset write should cost what it changes,
# not what the zone holds.
big=${BIG:-1000000}
kill %1 2>/dev/null || true
rm -rf "$work/state"
python3 - "$work/example.test.zone" "$big" <<'PY'
import sys
with open(sys.argv[1], "a") as z:
    for i in range(int(sys.argv[2])):
        z.write(f"h{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
PY
: > "$work/ready"
./target/release/lbdns --config "$work/lbdns.toml" > "$work/ready" 2> "$work/log2" &
for _ in $(seq 1200); do [ -s "$work/ready" ] && break; sleep 0.1; done
read -r _ _ _ admin _ < "$work/ready"; admin=${admin#admin=}
echo "sequential writes into a zone of $big more records:"
python3 bench/admin_writes.py "$admin" "$token" 300 1 big
