#!/usr/bin/env bash
# DNSSEC online signing: what signing costs lbdns (see bench/RESULTS.md, "DNSSEC").
#
#   bench/dnssec.sh              capacity (the reference harness, CPU_QUOTA=25): round-robin and
#                                weighted pools unsigned (bench/lbdns*.toml, queries without DO)
#                                and signed (bench/lbdns*-signed.toml, DO=1 on every query),
#                                ROUNDS (3) interleaved rounds, medians; beside them in the signed
#                                series, PowerDNS with the zone signed (`pdnsutil secure-zone`) and
#                                www a LUA record over the same eight addresses, `pickrandom` and
#                                `pickwrandom` with the same weights (bench/pdns/signed.sh), DO=1
#   bench/dnssec.sh signatures   a weighted pool of 100 members answering 2 (4,950 distinct sets,
#                                bench/lbdns-signatures.toml) queried with DO=1 at full speed for
#                                DURATION (15) s: signatures per second, cache hit rate, cache
#                                memory and the server's RSS
#   bench/dnssec.sh static       a signed zone of NAMES (100000) static A records, each name asked
#                                once in a random order, then again, with DO=1 for DURATION (15) s:
#                                signatures made while answering per second (0 once the static
#                                RRsets are signed ahead), how long signing ahead took from start,
#                                and its memory per RRset (lbdns_dnssec_presigned_bytes / _presigned).
#                                BIN=path runs another build (e.g. one from before pre-signing, which
#                                has no lbdns_dnssec_presigned: it is then not waited for)
#
# DO=1 on every query: dnsperf -D, through a `dnsperf` wrapper put first on the PATH of the
# harness for the signed runs (the harness itself passes no such flag). The keys are made once
# with `lbdns dnssec keygen` into target/bench-dnssec-keys.
# NO_BUILD=1 uses target/release/lbdns as it is.
# Needs: apt-get install -y dnsperf dnsutils pdns-server pdns-backend-bind
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HARNESS="${HARNESS:-$ROOT/../shared/bench/run.sh}"
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet
BIN="${BIN:-$ROOT/target/release/lbdns}"
KEYS="$ROOT/target/bench-dnssec-keys"
if ! ls "$KEYS"/Klb.example.+*.private >/dev/null 2>&1; then
  "$BIN" --config "$ROOT/bench/lbdns-signed.toml" dnssec keygen lb.example. >/dev/null
fi
WRAP="$ROOT/target/bench-dnssec-do"
mkdir -p "$WRAP"
printf '#!/bin/sh\nexec %s -D "$@"\n' "$(command -v dnsperf)" > "$WRAP/dnsperf"
chmod +x "$WRAP/dnsperf"
L() { echo "$1=cmd:$BIN --config $ROOT/bench/$2"; }
mode="${1:-capacity}"
case "$mode" in
  capacity)
    [ -x "$HARNESS" ] || { echo "bench/dnssec.sh: the reference harness $HARNESS is missing" >&2; exit 1; }
    export CPU_QUOTA="${CPU_QUOTA:-25}"
    out="$ROOT/bench/results/dnssec-capacity.$(date +%Y%m%d-%H%M%S).txt"
    echo "# $(date -Is) CPU_QUOTA=$CPU_QUOTA DURATION=${DURATION:-15} load: $(cut -d' ' -f1-3 /proc/loadavg)" > "$out"
    for r in $(seq 1 "${ROUNDS:-3}"); do
      "$HARNESS" series 1 "$(L rr lbdns.toml)" "$(L weighted lbdns-weighted.toml)" | grep -E '^(rr|weighted) qps=' | tee -a "$out"
      PATH="$WRAP:$PATH" "$HARNESS" series 1 "$(L rr-signed lbdns-signed.toml)" \
        "$(L weighted-signed lbdns-weighted-signed.toml)" "pdns-rr-signed=cmd:$ROOT/bench/pdns/signed.sh rr" \
        "pdns-weighted-signed=cmd:$ROOT/bench/pdns/signed.sh weighted" |
        grep -E '^(pdns-)?(rr|weighted)-signed qps=' | tee -a "$out"
    done
    echo "# medians"
    for s in rr weighted rr-signed weighted-signed pdns-rr-signed pdns-weighted-signed; do
      awk -v s="$s" '$1 == s { sub("qps=", "", $2); print $2 }' "$out" | sort -n |
        awk -v s="$s" '{ a[NR] = $1 } END { printf "%-20s runs=%d median_qps=%d\n", s, NR, (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
    done | tee -a "$out"
    echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
    echo "# raw lines: $out"
    ;;
  signatures)
    DURATION="${DURATION:-15}"
    taskset -c 1 "$BIN" --config "$ROOT/bench/lbdns-signatures.toml" >/dev/null 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
    for _ in $(seq 1 100); do dig +short @127.0.0.1 -p 5305 big.lb.example A >/dev/null 2>&1 && break; sleep 0.1; done
    metric() { curl -s http://127.0.0.1:5399/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
    q="$ROOT/target/bench-dnssec-do/queries.txt"
    echo "big.lb.example A" > "$q"
    s0=$(metric lbdns_dnssec_signatures_total)
    res=$(taskset -c 0 dnsperf -D -s 127.0.0.1 -p 5305 -d "$q" -l "$DURATION" -c 8 -T 2 -q 200 2>&1)
    s1=$(metric lbdns_dnssec_signatures_total)
    qps=$(awk '/Queries per second:/ {printf "%d", $4}' <<<"$res")
    done_q=$(awk '/Queries completed:/ {print $3}' <<<"$res")
    sigs=$((s1 - s0))
    echo "$(date -Is) queries=$done_q qps=$qps signatures=$sigs signatures_per_s=$((sigs / DURATION))" \
      "hit_rate=$(awk -v s="$sigs" -v q="$done_q" 'BEGIN { printf "%.4f", 1 - s / q }')" \
      "cache_bytes=$(metric lbdns_dnssec_cache_bytes) rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
    ;;
  static)
    DURATION="${DURATION:-15}" NAMES="${NAMES:-100000}"
    dir="$ROOT/target/bench-dnssec-static"
    mkdir -p "$dir/state"
    awk -v n="$NAMES" 'BEGIN {
      print "$ORIGIN lb.example.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 10.0.0.1"
      for (i = 0; i < n; i++) printf "h%d A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
    }' > "$dir/lb.example.zone"
    awk -v n="$NAMES" 'BEGIN { for (i = 0; i < n; i++) printf "h%d.lb.example A\n", i }' | shuf > "$dir/queries.txt"
    printf '[dns]\nlisten = ["127.0.0.1:5306"]\nthreads = 1\n[admin]\nlisten = "127.0.0.1:5398"\nstate_dir = "state"\n[[zone]]\norigin = "lb.example."\nfile = "lb.example.zone"\n[zone.dnssec]\nkey_dir = "%s"\n' \
      "$KEYS" > "$dir/lbdns.toml"
    t0=$(date +%s.%N)
    taskset -c 1 "$BIN" --config "$dir/lbdns.toml" >/dev/null 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
    metric() { curl -s http://127.0.0.1:5398/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
    for _ in $(seq 1 600); do dig +short @127.0.0.1 -p 5306 h0.lb.example A >/dev/null 2>&1 && break; sleep 0.1; done
    t1=$(date +%s.%N)
    # Signing ahead: wait (up to 10 minutes) until every RRset is held, if this build does it.
    if [ -n "$(metric lbdns_dnssec_presigned)" ]; then
      for _ in $(seq 1 6000); do [ "$(metric lbdns_dnssec_presigned)" -ge "$NAMES" ] && break; sleep 0.1; done
    fi
    t2=$(date +%s.%N)
    held=$(metric lbdns_dnssec_presigned) bytes=$(metric lbdns_dnssec_presigned_bytes)
    s0=$(metric lbdns_dnssec_signatures_total)
    res=$(taskset -c 0 dnsperf -D -s 127.0.0.1 -p 5306 -d "$dir/queries.txt" -l "$DURATION" -c 8 -T 2 -q 200 2>&1)
    s1=$(metric lbdns_dnssec_signatures_total)
    qps=$(awk '/Queries per second:/ {printf "%d", $4}' <<<"$res")
    sigs=$((s1 - s0))
    echo "$(date -Is) names=$NAMES answering_after_s=$(echo "$t1 - $t0" | bc) presigned_after_s=$(echo "$t2 - $t0" | bc)" \
      "presigned=${held:-none} presigned_bytes=${bytes:-none}" \
      "bytes_per_rrset=$([ -n "$held" ] && [ "$held" -gt 0 ] && echo $((bytes / held)) || echo none)" \
      "qps=$qps signatures=$sigs signatures_per_s=$((sigs / DURATION))" \
      "rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status) load: $(cut -d' ' -f1-3 /proc/loadavg)"
    ;;
  *)
    echo "usage: bench/dnssec.sh [capacity|signatures|static]" >&2; exit 64 ;;
esac
