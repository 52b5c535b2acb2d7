#!/usr/bin/env python3
"""Admin API write load for bench/admin.sh: PUT RRsets as fast as the server
acknowledges them, from C concurrent keep-alive clients. Prints writes/s.
Usage: admin_writes.py HOST:PORT TOKEN TOTAL CLIENTS [PREFIX]"""
import http.client
import sys
import threading
import time

addr, token, total, clients = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
prefix = sys.argv[5] if len(sys.argv) > 5 else "w"
host, port = addr.rsplit(":", 1)
per = total // clients
errors = []


def worker(c):
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    hdr = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for i in range(per):
        n = c * per + i
        body = '{"ttl":60,"data":["10.%d.%d.%d"]}' % (n >> 16 & 255, n >> 8 & 255, n & 255)
        conn.request("PUT", f"/v1/zones/example.test./records/{prefix}{n}.example.test./A", body, hdr)
        r = conn.getresponse()
        r.read()
        if r.status not in (200, 201):
            errors.append(r.status)


start = time.monotonic()
threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - start
print(f"clients={clients} writes={per * clients} seconds={took:.2f} writes_per_s={per * clients / took:.0f} errors={len(errors)}")
