#!/usr/bin/env python3
"""Cluster propagation for bench/cluster.sh: writes an A record through one
server's admin API and times until another server answers it over DNS (UDP,
polled every 0.2 ms). Prints the write latency and the propagation delay
percentiles. With --pools ZONE POOLS it adds a member to pool p{i}.ZONE (i
cycling over POOLS, as bench/scale.py names them) instead, and times until the
other server's answer for that pool holds the new address.
Usage: cluster_propagation.py ADMIN TOKEN DNS N [--pools ZONE POOLS]"""
import http.client
import socket
import struct
import sys
import time

admin, token, dns, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pools = sys.argv[5:8] if len(sys.argv) > 5 and sys.argv[5] == "--pools" else None
ahost, aport = admin.rsplit(":", 1)
dhost, dport = dns.rsplit(":", 1)
conn = http.client.HTTPConnection(ahost, int(aport), timeout=30)
hdr = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(1)


def answered(name, qid, address=None):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    sock.sendto(q, (dhost, int(dport)))
    while True:
        r, _ = sock.recvfrom(4096)
        if r[:2] == q[:2]:
            if address is not None:  # an A record's length and data
                return b"\x00\x04" + socket.inet_aton(address) in r[len(q):]
            return struct.unpack(">H", r[6:8])[0] > 0


def write(i):
    """One write through the admin API; returns what the other server should answer."""
    if pools:
        zone, count = pools[1], int(pools[2])
        name, address = f"p{i % count}.{zone}", f"10.{200 + (i >> 16 & 15)}.{i >> 8 & 255}.{i & 255}"
        path, body, want = f"/v1/pools/{name}/members/{address}", "{}", 201
    else:
        name, address = f"prop{i}-{int(time.time())}.example.test.", None
        path, body, want = f"/v1/zones/example.test./records/{name}/A", '{"ttl":60,"data":["192.0.2.1"]}', 201
    conn.request("PUT", path, body, hdr)
    r = conn.getresponse()
    r.read()
    if r.status != want:
        sys.exit(f"write {i}: HTTP {r.status}")
    return name, address


writes, delays = [], []
for i in range(n):
    t0 = time.monotonic()
    name, address = write(i)
    t1 = time.monotonic()
    while not answered(name, i & 0xFFFF, address):
        if time.monotonic() - t1 > 30:
            sys.exit(f"{name} not answered by the other server within 30 s")
        time.sleep(0.0002)
    writes.append(t1 - t0)
    delays.append(time.monotonic() - t1)


total = [w + d for w, d in zip(writes, delays)]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000


print(
    f"writes={n} write_ms p50={pct(writes, 50):.2f} p99={pct(writes, 99):.2f}; "
    f"seen_by_other_server_ms p50={pct(delays, 50):.2f} p99={pct(delays, 99):.2f} max={max(delays) * 1000:.2f}; "
    f"sent_to_answered_by_other_ms p50={pct(total, 50):.2f} p99={pct(total, 99):.2f}"
)
