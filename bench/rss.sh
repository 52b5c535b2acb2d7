#!/usr/bin/env bash
# Where the RSS goes after start-up, in MB, by owner: the scale test's files
# (bench/scale.py: RECORDS records and POOLS pools of 4 members), started twice.
# 1. Plainly, SETTLE seconds after the ready line: VmRSS; the binary's and the
#    other files' pages, thread stacks, the heap (smaps); the allocator's own view
#    of the heap (malloc_info through gdb: bytes in use and free in its arenas).
# 2. Under heaptrack, stopped with SIGKILL SETTLE seconds after the ready line:
#    the heap still held, summed by owner (bench/rss_owners.py). heaptrack counts
#    requested bytes; the allocator's chunk headers and rounding, and the free
#    memory it keeps between live chunks, are the difference to (1).
# Needs gdb and heaptrack (apt-get install gdb heaptrack).
# Usage: [LBDNS_BIN=BINARY] [SETTLE=10] bench/rss.sh [RECORDS] [POOLS]
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
POOLS=${2:-100000}
SETTLE=${SETTLE:-10}
here=$PWD
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
BIN=$(realpath "${LBDNS_BIN:-./target/release/lbdns}")
[ -n "${LBDNS_BIN:-}" ] || cargo build --release --quiet
python3 bench/scale.py "$work" "$RECORDS" "$POOLS"
sed -i -e 's|"127.0.0.1:5305"|"127.0.0.1:0"|' -e 's|"127.0.0.1:8099"|"127.0.0.1:0"|' "$work/lbdns.toml"
cd "$work"
echo "$RECORDS records, $POOLS pools, $SETTLE s after ready; $(uptime)"

# Starts "$@" (the server, possibly under heaptrack), waits for the ready line and SETTLE.
start() {
  rm -rf state ready
  "$@" --config lbdns.toml > ready 2> log &
  while ! grep -q "lbdns ready" ready 2>/dev/null; do sleep 0.05; kill -0 $! || { cat log; exit 1; }; done
  sleep "$SETTLE"
  pid=$(pgrep -f -n "^$BIN --config lbdns.toml")
}

start "$BIN"
awk '$1 == "VmRSS:" {printf "%8.1f MB  VmRSS\n", $2 / 1024}' /proc/$pid/status
python3 - "$BIN" /proc/$pid/smaps <<'PY'
import sys
# smaps: a mapping's header line, then its fields; stacks are the 2 or 8 MiB
# read-write mappings just above a guard page.
kb, what, guard = {}, None, False
for line in open(sys.argv[2]):
    f = line.split()
    if "-" in f[0] and not f[0].endswith(":"):
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        size, path = (hi - lo) // 1024, f[5] if len(f) > 5 else ""
        what = "binary" if path == sys.argv[1] else "files" if path.startswith("/") else "heap" if path == "[heap]" else "anon"
        if path == "[stack]" or (what == "anon" and guard and size in (2048, 8192)):
            what = "stacks"
        guard = f[1] == "---p" and size == 4
    elif f[0] == "Rss:":
        kb[what] = kb.get(what, 0) + int(f[1])
for key, text in [("binary", "the binary (text and data)"), ("files", "other files (libc, ...)"), ("stacks", "thread stacks"),
                  ("heap", "heap: main arena"), ("anon", "heap: thread arenas and large allocations (anon)")]:
    print(f"{kb.get(key, 0) / 1024:8.1f} MB  {text}")
PY
gdb -p "$pid" -batch -ex 'call (int)malloc_info(0, stderr)' > /dev/null 2>&1 || echo "(no gdb: no allocator figures)"
python3 - log <<'PY'
import re, sys
xml = open(sys.argv[1]).read()
xml = xml[xml.rfind('<malloc version'):]
total = xml[xml.rfind('</heap>'):]
free = sum(int(s) for s in re.findall(r'<total type="(?:fast|rest)" count="\d+" size="(\d+)"/>', total))
system = int(re.search(r'<system type="current" size="(\d+)"/>', total).group(1))
mmap = int(re.search(r'<total type="mmap" count="\d+" size="(\d+)"/>', total).group(1))
print(f"{(system + mmap - free) / 1e6:8.1f} MB  allocator: in use (arenas and mmapped chunks)")
print(f"{free / 1e6:8.1f} MB  allocator: free in its arenas (fragmentation; resident or not)")
PY
kill "$pid"; wait "$pid" 2>/dev/null || true

start heaptrack -o "$work/heap" "$BIN"
kill -9 "$pid"
while pgrep -f "heaptrack_interpret" > /dev/null && [ ! -s "$work/heap.zst" ]; do sleep 0.2; done
sleep 2
heaptrack_print -t 0 -f "$work"/heap.zst --flamegraph-cost-type leaked -F stacks.txt > /dev/null
python3 "$here/bench/rss_owners.py" stacks.txt
echo "$(uptime)"
