#!/usr/bin/env bash
# The performance benchmark: lbdns beside gdnsd and Knot (and PowerDNS LUA once) with
# the reference harness in ../shared/bench, in capacity mode (the server held to 25%
# of one core, so dnsperf can saturate it). See bench/RESULTS.md.
#
#   bench/run.sh                 round-robin series: lbdns, gdnsd, knot (3 rounds), then pdns-lua once
#   bench/run.sh policies        lbdns round-robin, weighted, affinity, geo and gdnsd (3 rounds)
#   bench/run.sh tcp             TCP: lbdns and knot with dnsperf -m tcp (needs a harness that passes it)
#
# Needs: apt-get install -y dnsperf dnsutils gdnsd knot nsd pdns-server pdns-backend-bind
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HARNESS="$ROOT/../shared/bench/run.sh"
[ -x "$HARNESS" ] || { echo "bench/run.sh: the reference harness $HARNESS is missing" >&2; exit 1; }
cargo build --release --quiet
BIN="$ROOT/target/release/lbdns"
L() { echo "$1=cmd:$BIN --config $ROOT/bench/$2"; }
export CPU_QUOTA="${CPU_QUOTA:-25}"
mode="${1:-series}"
case "$mode" in
  series)
    "$HARNESS" series "${ROUNDS:-3}" "$(L lbdns lbdns.toml)" gdnsd knot
    "$HARNESS" series 1 pdns-lua
    ;;
  policies)
    "$HARNESS" series "${ROUNDS:-3}" "$(L lbdns-rr lbdns.toml)" "$(L lbdns-weighted lbdns-weighted.toml)" \
      "$(L lbdns-affinity lbdns-affinity.toml)" "$(L lbdns-geo lbdns-geo.toml)" gdnsd
    ;;
  *)
    echo "usage: bench/run.sh [series|policies]" >&2; exit 64 ;;
esac
