#!/usr/bin/env bash
# A member write through one server until another answers it, at scale: one etcd
# and two lbdns servers on loopback, both loading bench/scale.py's zone of
# RECORDS records and POOLS pools. Each write adds a member to pool p{i} through
# server a's admin API; the time until server b's DNS answer for that pool holds
# it is what applying another server's change costs there.
# LBDNS=path runs another build (default: a release build of this tree).
# Usage: [LBDNS=path] bench/cluster_scale.sh [RECORDS] [POOLS] [WRITES]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-100000}; pools=${2:-10000}; writes=${3:-50}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -z "${LBDNS:-}" ]; then cargo build --release --quiet; LBDNS=./target/release/lbdns; fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client=$(free_port); peer=$(free_port)
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$client" \
     --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
     --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "default=http://127.0.0.1:$peer" \
     --logger=zap --log-level=error > "$work/etcd.log" 2>&1 &
for _ in $(seq 100); do curl -s "http://127.0.0.1:$client/health" | grep -q true && break; sleep 0.1; done
python3 bench/scale.py "$work" "$records" "$pools"
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token" > "$work/admin.token"; chmod 600 "$work/admin.token"
for n in a b; do
  # scale.py's config with loopback ports chosen by the system and the cluster added.
  sed -e 's/127.0.0.1:5305/127.0.0.1:0/' -e 's/^listen = "127.0.0.1:8099"/listen = "127.0.0.1:0"\ntoken_file = "admin.token"/' \
      -e '/^state_dir/d' "$work/lbdns.toml" > "$work/$n.toml"
  printf '[cluster]\nstore = "etcd"\nendpoints = ["http://127.0.0.1:%s"]\nnode = "%s"\n' "$client" "$n" >> "$work/$n.toml"
  "$LBDNS" --config "$work/$n.toml" > "$work/$n.ready" 2> "$work/$n.log" &
done
for n in a b; do
  for _ in $(seq 1200); do [ -s "$work/$n.ready" ] && break; sleep 0.1; done
  [ -s "$work/$n.ready" ] || { echo "server $n did not start:"; cat "$work/$n.log"; exit 1; }
done
read -r _ _ _ admin_a < "$work/a.ready"; read -r _ _ dns_b _ < "$work/b.ready"
dns_b=${dns_b#dns=}; admin_a=${admin_a#admin=}
echo "lbdns: $LBDNS; $records records, $pools pools; load: $(uptime | sed 's/.*load average: //')"
python3 bench/cluster_propagation.py "$admin_a" "$token" "$dns_b" "$writes" --pools big.test. "$pools"
echo "load: $(uptime | sed 's/.*load average: //')"
