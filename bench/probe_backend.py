#!/usr/bin/env python3
"""A minimal asyncio HTTP backend for bench/probes.sh: answers every request with
200 "ok" and logs (monotonic time, local address) so that probe intervals per member
can be measured. Keeps a connection open for further requests (HTTP/1.1 keep-alive)
unless the client sends `Connection: close`. Binds 0.0.0.0, so every 127.x.y.z
address reaches it."""
import asyncio
import sys
import time

PORT = int(sys.argv[1])
LOG = open(sys.argv[2], "w", buffering=1 << 16)


async def handle(reader, writer):
    ip = writer.get_extra_info("sockname")[0]
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            LOG.write(f"{time.monotonic():.6f} {ip}\n")
            close = b"connection: close" in head.lower()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            if close:
                break
    except Exception:
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", PORT, backlog=4096)
    async with server:
        await server.serve_forever()


asyncio.run(main())
