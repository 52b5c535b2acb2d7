#!/usr/bin/env python3
"""Admin API write load for bench/admin.sh: PUT RRsets as fast as the server
acknowledges them, from C concurrent keep-alive clients (one connection each).
Prints writes/s. With --seconds, each client stops after that long (for zones
where a write is slow); the rate is of the writes done.
With --pools N, each write is a member PUT instead (a new member added to pool
p{k} of the zone, k spread over N pools, as bench/scale.py names them).
Usage: admin_writes.py HOST:PORT TOKEN TOTAL CLIENTS [PREFIX] [--zone ORIGIN] [--seconds S] [--pools N]"""
import argparse
import http.client
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("addr")
ap.add_argument("token")
ap.add_argument("total", type=int)
ap.add_argument("clients", type=int)
ap.add_argument("prefix", nargs="?", default="w")
ap.add_argument("--zone", default="example.test.")
ap.add_argument("--seconds", type=float, default=None)
ap.add_argument("--pools", type=int, default=None)
args = ap.parse_args()
host, port = args.addr.rsplit(":", 1)
per = args.total // args.clients
errors = []
done = [0] * args.clients


def worker(c, start):
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    hdr = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    for i in range(per):
        if args.seconds is not None and time.monotonic() - start > args.seconds:
            break
        n = c * per + i
        body = '{"ttl":60,"data":["10.%d.%d.%d"]}' % (n >> 16 & 255, n >> 8 & 255, n & 255)
        if args.pools:
            addr = "203.0.%d.%d" % (n >> 8 & 255, n & 255)
            path = f"/v1/pools/p{(n * 7919) % args.pools}.{args.zone}/members/{addr}"
            conn.request("PUT", path, "{}", hdr)
        else:
            conn.request("PUT", f"/v1/zones/{args.zone}/records/{args.prefix}{n}.{args.zone}/A", body, hdr)
        r = conn.getresponse()
        r.read()
        if r.status not in (200, 201):
            errors.append(r.status)
        done[c] += 1


start = time.monotonic()
threads = [threading.Thread(target=worker, args=(c, start)) for c in range(args.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - start
writes = sum(done)
kind = "members" if args.pools else "rrsets"
print(f"kind={kind} zone={args.zone} clients={args.clients} writes={writes} seconds={took:.2f} "
      f"writes_per_s={writes / took:.2f} errors={len(errors)}")
