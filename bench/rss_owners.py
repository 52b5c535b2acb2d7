#!/usr/bin/env python3
"""Sums the heap a process still held when it was stopped (heaptrack's `leaked`
cost: heaptrack_print --flamegraph-cost-type leaked -F STACKS, demangled with
c++filt) by owner: the first rule, in order, whose text occurs in a stack's
frames names its owner. Prints MB per owner, largest first.
Usage: rss_owners.py STACKS"""
import collections
import re
import subprocess
import sys

# (owner, text in a frame); the first match wins, so specific rules go first.
RULES = [
    ("answer rates (status page sparklines)", "sample_counts"),
    ("writer's all-down map (pool events)", "note_all_down"),
    ("state/ (index, overlay's pools in effect)", "(index.rs)"),
    ("state/ (index, overlay's pools in effect)", "effective_pools"),
    ("health (probe specs, tables, probe thread)", "lbdns::health"),
    ("health (probe specs, tables, probe thread)", "(probe.rs)"),
    ("health (probe specs, tables, probe thread)", "(schedule.rs)"),
    ("metrics registries", "prometheus_client"),
    ("metrics registries", "(metrics.rs)"),
    ("snapshot pools (snapshot/: Pool, members, policy, counters, chunks)", "build_pool"),
    ("snapshot pools (snapshot/: Pool, members, policy, counters, chunks)", "lbdns::snapshot::Pool"),
    ("snapshot pools (snapshot/: Pool, members, policy, counters, chunks)", "(build.rs)"),
    ("zone (records, node and RRset tables, line tags)", "load_zone"),
    ("zone (records, node and RRset tables, line tags)", "(loader.rs)"),
    ("zone (records, node and RRset tables, line tags)", "(builder.rs)"),
    ("pool definitions (config: PoolDef, members, health settings)", "PoolDef"),
    ("pool definitions (config: PoolDef, members, health settings)", "(parse.rs)"),
    ("pool definitions (config: PoolDef, members, health settings)", "(split.rs)"),
    ("pool definitions (config: PoolDef, members, health settings)", "load_reusing"),
    ("DNS workers (receive and send buffers)", "spawn_worker"),
    ("persistence (SQLite)", "sqlite"),
    ("tokio, TLS roots, logging, admin router", ""),
]

HASH = re.compile(r"\[[0-9a-f]{16}\]")


def main():
    text = subprocess.run(["c++filt"], stdin=open(sys.argv[1]), capture_output=True, text=True).stdout
    owners = collections.Counter()
    for line in text.splitlines():
        stack, _, cost = line.rpartition(" ")
        if not cost.isdigit() or cost == "0":
            continue
        stack = HASH.sub("", stack)
        owner = next(o for o, needle in RULES if needle in stack)
        owners[owner] += int(cost)
    for owner, cost in owners.most_common():
        print(f"{cost / 1e6:8.1f} MB  {owner}")
    print(f"{sum(owners.values()) / 1e6:8.1f} MB  live heap in all")


main()
