#!/usr/bin/env python3
"""The disk's SQLite commit rate, for bench/admin.sh: single-row INSERT + COMMIT in a
loop, in WAL mode with synchronous=FULL as lbdns opens its store
(src/persist/sqlite.rs), for SECONDS (default 5). Prints commits/s.
Usage: sqlite_commits.py DIR [SECONDS]"""
import os
import sqlite3
import sys
import time

path = os.path.join(sys.argv[1], "commit-rate.sqlite3")
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
con = sqlite3.connect(path, isolation_level=None)  # autocommit: BEGIN/COMMIT by hand
assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
con.execute("PRAGMA synchronous=FULL")
con.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
row = '{"ttl":60,"data":["10.0.0.1"]}'  # about what one API RRset write stores
n = 0
start = time.monotonic()
while time.monotonic() - start < seconds:
    con.execute("BEGIN")
    con.execute("INSERT INTO t VALUES (?, ?)", (n, row))
    con.execute("COMMIT")
    n += 1
took = time.monotonic() - start
con.close()
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(path + suffix):
        os.remove(path + suffix)
print(f"sqlite commits={n} seconds={took:.2f} commits_per_s={n / took:.0f} (WAL, synchronous=FULL, {sys.argv[1]})")
