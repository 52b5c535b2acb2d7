#!/usr/bin/env python3
"""Cluster propagation for bench/cluster.sh: writes an A record through one
server's admin API and times until another server answers it over DNS (UDP,
polled every 0.2 ms). Prints the write latency and the propagation delay
percentiles. Usage: cluster_propagation.py ADMIN TOKEN DNS N"""
import http.client
import socket
import struct
import sys
import time

admin, token, dns, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ahost, aport = admin.rsplit(":", 1)
dhost, dport = dns.rsplit(":", 1)
conn = http.client.HTTPConnection(ahost, int(aport), timeout=30)
hdr = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(1)


def answered(name, qid):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    sock.sendto(q, (dhost, int(dport)))
    while True:
        r, _ = sock.recvfrom(4096)
        if r[:2] == q[:2]:
            return struct.unpack(">H", r[6:8])[0] > 0


writes, delays = [], []
for i in range(n):
    name = f"prop{i}-{int(time.time())}.example.test."
    t0 = time.monotonic()
    conn.request("PUT", f"/v1/zones/example.test./records/{name}/A", '{"ttl":60,"data":["192.0.2.1"]}', hdr)
    r = conn.getresponse()
    r.read()
    t1 = time.monotonic()
    if r.status != 201:
        sys.exit(f"write {i}: HTTP {r.status}")
    while not answered(name, i & 0xFFFF):
        if time.monotonic() - t1 > 5:
            sys.exit(f"{name} not answered by the other server within 5 s")
        time.sleep(0.0002)
    writes.append(t1 - t0)
    delays.append(time.monotonic() - t1)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000


print(
    f"writes={n} write_ms p50={pct(writes, 50):.2f} p99={pct(writes, 99):.2f}; "
    f"seen_by_other_server_ms p50={pct(delays, 50):.2f} p99={pct(delays, 99):.2f} max={max(delays) * 1000:.2f}"
)
