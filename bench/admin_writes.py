#!/usr/bin/env python3
"""Admin API write load for bench/admin.sh: PUT RRsets as fast as the server
acknowledges them, from C concurrent keep-alive clients (one connection each).
Prints writes/s. With --seconds, each client stops after that long (for zones
where a write is slow); the rate is of the writes done.
With --pools N, each write is a member PUT instead (a new member added to pool
p{k} of the zone, k spread over N pools, as bench/scale.py names them).
The client speaks HTTP/1.1 over a plain socket (a request written whole, the
response read by its Content-Length): http.client spent about 240 µs of CPU per
write, more than the server's own, on the same 2 cores.
Usage: admin_writes.py HOST:PORT TOKEN TOTAL CLIENTS [PREFIX] [--zone ORIGIN] [--seconds S] [--pools N]"""
import argparse
import socket
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


class Conn:
    """One keep-alive connection: a request out, its response's status back."""

    def __init__(self):
        self.sock = socket.create_connection((host, int(port)), timeout=600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def put(self, path, body):
        body = body.encode()
        head = (f"PUT {path} HTTP/1.1\r\nHost: {args.addr}\r\nAuthorization: Bearer {args.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.sock.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.recv()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next((int(l.split(b":", 1)[1]) for l in lines[1:] if l.lower().startswith(b"content-length:")), 0)
        while len(self.buf) < length:
            self.buf += self.recv()
        self.buf = self.buf[length:]
        return int(lines[0].split()[1])

    def recv(self):
        got = self.sock.recv(65536)
        if not got:
            raise ConnectionError("the server closed the connection")
        return got


def worker(c, start):
    conn = Conn()
    for i in range(per):
        if args.seconds is not None and time.monotonic() - start > args.seconds:
            break
        n = c * per + i
        body = '{"ttl":60,"data":["10.%d.%d.%d"]}' % (n >> 16 & 255, n >> 8 & 255, n & 255)
        if args.pools:
            addr = "203.0.%d.%d" % (n >> 8 & 255, n & 255)
            status = conn.put(f"/v1/pools/p{(n * 7919) % args.pools}.{args.zone}/members/{addr}", "{}")
        else:
            status = conn.put(f"/v1/zones/{args.zone}/records/{args.prefix}{n}.{args.zone}/A", body)
        if status not in (200, 201):
            errors.append(status)
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
