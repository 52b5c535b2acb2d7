#!/usr/bin/env bash
# PowerDNS with lb.example signed online (bench/dnssec.sh): started by the reference harness as a
# `cmd:` server, in its scratch directory, with PORT exported. www.lb.example is a LUA record over
# the eight addresses of the lbdns pools (bench/lbdns*-signed.toml): `pickrandom` (rr) or
# `pickwrandom` with the weighted pool's weights (weighted); each answers one address. The rest of
# the zone is bench/zones/lb.example.zone. The zone is signed with one ECDSAP256SHA256 key
# (`pdnsutil secure-zone`, PowerDNS's default, the algorithm of lbdns's key), kept in a fresh
# bind-backend DNSSEC database; PowerDNS signs each LUA answer when it is asked with DO=1.
#
#   bench/pdns/signed.sh rr|weighted
set -euo pipefail
policy="${1:?rr or weighted}"
BENCH="$(cd "$(dirname "$0")/.." && pwd)"
D="$PWD"
ips=(192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5 192.0.2.6 192.0.2.7 192.0.2.8)
weights=(2 3 1 2 3 1 2 3)
case "$policy" in
  rr) lua="pickrandom({$(printf "'%s'," "${ips[@]}" | sed 's/,$//')})" ;;
  weighted)
    pairs=""
    for i in "${!ips[@]}"; do pairs+="{${weights[$i]},'${ips[$i]}'},"; done
    lua="pickwrandom({${pairs%,}})" ;;
  *) echo "bench/pdns/signed.sh: rr or weighted, not $policy" >&2; exit 64 ;;
esac
{ cat "$BENCH/zones/lb.example.zone"; echo "www 30 IN LUA A \"$lua\""; } > "$D/lb.example.zone"
echo "zone \"lb.example\" { type master; file \"$D/lb.example.zone\"; };" > "$D/named.conf"
cat > "$D/pdns.conf" <<EOF
launch=bind
bind-config=$D/named.conf
bind-dnssec-db=$D/dnssec.sqlite3
local-address=127.0.0.1
local-port=$PORT
socket-dir=$D
enable-lua-records=yes
cache-ttl=20
receiver-threads=${SRV_THREADS:-1}
reuseport=yes
distributor-threads=2
daemon=no
guardian=no
disable-syslog=yes
loglevel=4
webserver=no
api=no
security-poll-suffix=
EOF
rm -f "$D/dnssec.sqlite3"
pdnsutil --config-dir="$D" create-bind-db "$D/dnssec.sqlite3" >/dev/null
pdnsutil --config-dir="$D" secure-zone lb.example >/dev/null
exec pdns_server --config-dir="$D"
