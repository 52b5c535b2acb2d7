#!/usr/bin/env bash
# Cluster (etcd) write rate and propagation: one etcd and two lbdns servers on
# loopback serving the example zone. Measures sequential writes through one
# server, racing writes through both at once (8 clients each), and how long a
# write acknowledged by one server takes to be answered by the other.
# ZONES=N adds N more zones of 2,000 records each (default 0), to show that
# applying another server's write costs what the write touches, not the data.
# LBDNS=path runs another build of lbdns (to compare). Needs etcd
# (apt-get install etcd-server) and python3. Usage: [ZONES=N] bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release --quiet
LBDNS=${LBDNS:-./target/release/lbdns}
ZONES=${ZONES:-0}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client=$(free_port); peer=$(free_port)
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$client" \
     --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
     --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "default=http://127.0.0.1:$peer" \
     --logger=zap --log-level=error > "$work/etcd.log" 2>&1 &
for _ in $(seq 100); do curl -s "http://127.0.0.1:$client/health" | grep -q true && break; sleep 0.1; done
echo "lbdns: $LBDNS, $ZONES extra zones"
echo "etcd $(etcd --version | head -1 | cut -d' ' -f3) on 127.0.0.1:$client"
cp zones/example.test.zone "$work/"
extra=""
for i in $(seq 1 "$ZONES"); do
  python3 - "$work/z$i.test.zone" "z$i.test." <<'PY'
import sys
path, origin = sys.argv[1], sys.argv[2]
with open(path, "w") as f:
    f.write(f"$ORIGIN {origin}\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n")
    for j in range(2000):
        f.write(f"h{j} IN A 10.{j >> 8 & 255}.{j & 255}.1\n")
PY
  extra+=$(printf '\n[[zone]]\norigin = "z%s.test."\nfile = "z%s.test.zone"\n' "$i" "$i")
done
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')   # 32 hex characters: the shortest lbdns accepts
echo "$token" > "$work/admin.token"; chmod 600 "$work/admin.token"
for n in a b; do
  cat > "$work/$n.toml" <<CONF
[dns]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
token_file = "admin.token"
[cluster]
store = "etcd"
endpoints = ["http://127.0.0.1:$client"]
node = "$n"
[[zone]]
origin = "example.test."
file = "example.test.zone"
$extra
CONF
  "$LBDNS" --config "$work/$n.toml" > "$work/$n.ready" 2> "$work/$n.log" &
done
for n in a b; do
  for _ in $(seq 100); do [ -s "$work/$n.ready" ] && break; sleep 0.1; done
  [ -s "$work/$n.ready" ] || { echo "server $n did not start:"; cat "$work/$n.log"; exit 1; }
done
read -r _ _ dns_a admin_a < "$work/a.ready"; read -r _ _ dns_b admin_b < "$work/b.ready"
dns_b=${dns_b#dns=}; admin_a=${admin_a#admin=}; admin_b=${admin_b#admin=}

echo "sequential writes through one server:"
python3 bench/admin_writes.py "$admin_a" "$token" 1000 1 seq
echo "racing writes, 8 clients through each server at once:"
python3 bench/admin_writes.py "$admin_a" "$token" 1000 8 ra &
racer=$!
python3 bench/admin_writes.py "$admin_b" "$token" 1000 8 rb
wait $racer
for a in "$admin_a" "$admin_b"; do
  curl -s "http://$a/metrics" | grep '^lbdns_admin_write_retries_total'
done
echo "propagation (write through a, answered by b):"
python3 bench/cluster_propagation.py "$admin_a" "$token" "$dns_b" 200
