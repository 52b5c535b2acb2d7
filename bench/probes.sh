#!/usr/bin/env bash
# Health-probe load: N members (default 1000) probed over HTTP every second against a
# local backend. Reports lbdns CPU (share of one core), RSS, and probe-interval
# accuracy per member, and the mean probe duration lbdns measured
# (lbdns_probe_duration_seconds over the run: an answer's time, not the tick's). Usage: bench/probes.sh [MEMBERS] [SECONDS]
# KEEPALIVE=false probes with a connection per probe (default: the config default,
# keep-alive). PERF=1 records a profile of lbdns meanwhile and prints its top symbols.
# LBDNS_BIN=path runs that binary instead of building target/release/lbdns (to
# compare builds: copy the "before" binary aside first).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
SECS=${2:-30}
PORT=18081
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

BIN=${LBDNS_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet
  BIN=./target/release/lbdns
fi
cp zones/example.test.zone "$work/"
{
  printf '[dns]\nlisten = ["127.0.0.1:0"]\n[admin]\nlisten = "127.0.0.1:0"\n'
  printf '[[zone]]\norigin = "example.test."\nfile = "example.test.zone"\n'
  printf '[[pool]]\nname = "many.example.test."\nmax_answers = 4\n'
  printf '[pool.health]\ncheck = "http"\nport = %d\npath = "/health"\ninterval = "1s"\ntimeout = "500ms"\n' "$PORT"
  [ -n "${KEEPALIVE:-}" ] && printf 'keepalive = %s\n' "$KEEPALIVE"
  for i in $(seq 0 $((N - 1))); do
    printf '[[pool.member]]\naddress = "127.1.%d.%d"\n' $((i / 250)) $((i % 250 + 1))
  done
} > "$work/lbdns.toml"

python3 bench/probe_backend.py "$PORT" "$work/requests.log" &
sleep 0.5
$BIN --config "$work/lbdns.toml" > "$work/ready" 2> "$work/lbdns.log" &
pid=$!
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
cat "$work/ready"
sleep 5   # warm-up
ticks=$(getconf CLK_TCK)
# Context switches by thread name: where the wake-ups are.
switches() { for t in /proc/$pid/task/*; do
  printf '%s %s\n' "$(tr ' ' _ < "$t/comm")" "$(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")"; done; }
switches > "$work/sw0"
admin=$(sed -n 's/.*admin=\([^ ]*\).*/\1/p' "$work/ready")
# The probe duration histogram's sum and count, in seconds and probes.
durations() { python3 -c 'import sys, urllib.request
s = c = 0.0
for l in urllib.request.urlopen(sys.argv[1]).read().decode().splitlines():
    if l.startswith("lbdns_probe_duration_seconds_sum"): s += float(l.split()[-1])
    if l.startswith("lbdns_probe_duration_seconds_count"): c += float(l.split()[-1])
print(s, c)' "http://$admin/metrics"; }
durations > "$work/d0"
cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat); t0=$(date +%s.%N)
if [ -n "${PERF:-}" ]; then
  perf record -q -F 499 -g -p "$pid" -o "$work/perf.data" -- sleep "$SECS" 2>/dev/null
else
  sleep "$SECS"
fi
cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
switches > "$work/sw1"
durations > "$work/d1"
kill $pid
if [ -n "${PERF:-}" ]; then
  report() { perf report -i "$work/perf.data" --no-children --percent-limit 1.5 --stdio "$@" 2>/dev/null | grep -E '^ +[0-9]' | cut -c1-110; }
  echo "profile by object:"; report --sort dso | head -8
  echo "profile by symbol:"; report --sort dso,symbol | head -20
fi
python3 - "$work/requests.log" "$cpu0" "$cpu1" "$t0" "$t1" "$ticks" "$rss" "$N" "$work/sw0" "$work/sw1" "$work/d0" "$work/d1" <<'PY'
import sys, statistics, collections
log, cpu0, cpu1, t0, t1, ticks, rss, n, sw0, sw1, d0, d1 = sys.argv[1:]
def sw(path):
    c = collections.Counter()
    for line in open(path):
        name, count = line.split()
        c[name] += int(count)
    return c
d = sw(sw1); d.subtract(sw(sw0))
secs = float(t1) - float(t0)
print("context switches/s by thread: " + ", ".join(f"{k} {v / secs:.0f}" for k, v in d.most_common() if v > 0))
cpu = (float(cpu1) - float(cpu0)) / int(ticks) / (float(t1) - float(t0))
by = {}
for line in open(log):
    t, ip = line.split()
    by.setdefault(ip, []).append(float(t))
# From each member's second probe on: the first interval (from the start-up round
# to a random point of the next interval, which spreads the members) is not one.
iv = sorted(b - a for ts in by.values() for a, b in zip(ts[1:], ts[2:]))
q = lambda p: iv[min(len(iv) - 1, int(p * len(iv)))]
print(f"members={n} probed={len(by)} probes={sum(map(len, by.values()))}")
print(f"lbdns cpu={cpu * 100:.1f}% of one core, rss={int(rss) / 1024:.1f} MiB")
(s0, c0), (s1, c1) = ([float(x) for x in open(p).read().split()] for p in (d0, d1))
print(f"probe duration (lbdns_probe_duration_seconds) mean={(s1 - s0) / max(c1 - c0, 1) * 1000:.3f} ms over {c1 - c0:.0f} probes")
print(f"interval s: mean={statistics.mean(iv):.3f} p1={q(0.01):.3f} p50={q(0.5):.3f} p99={q(0.99):.3f} min={iv[0]:.3f} max={iv[-1]:.3f}")
PY
