"""Many clients each send numbered messages; the server checks that every
message arrives exactly once and in order, and echoes a count at the end.

The long version of tests/asyncio/test_hostile.py's 200 x 500 test: by
default 1000 clients x 2000 messages. Talks only to 127.0.0.1; bounded by
``--timeout``. Exit status 0 when nothing was lost.

    python stress/no_loss.py --clients 1000 --messages 2000 [--uvloop] [--compression deflate]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import ferrows


async def run(clients: int, messages: int, compression: str | None) -> dict[str, object]:
    received: dict[int, list[int]] = {}
    problems: list[str] = []

    async def handler(ws: ferrows.ServerConnection) -> None:
        numbers = received.setdefault(int(ws.request.path[1:]), [])  # type: ignore[union-attr]
        async for message in ws:
            numbers.append(int(message))
            if len(numbers) == messages:
                await ws.send(str(len(numbers)))

    async def client(port: int, n: int) -> None:
        async with ferrows.connect(f"ws://127.0.0.1:{port}/{n}", compression=compression, open_timeout=60) as ws:
            for i in range(messages):
                await ws.send(str(i))
            if await ws.recv() != str(messages):
                problems.append(f"client {n}: wrong count")

    start = time.monotonic()
    async with ferrows.serve(handler, "127.0.0.1", 0, compression=compression, backlog=4096) as server:
        port = server.sockets[0].getsockname()[1]
        # Connect in waves so that the listen backlog is never the limit.
        for first in range(0, clients, 500):
            await asyncio.gather(*[client(port, n) for n in range(first, min(first + 500, clients))])
    elapsed = time.monotonic() - start
    for n in range(clients):
        if received.get(n) != list(range(messages)):
            got = received.get(n, [])
            problems.append(f"client {n}: {len(got)} messages, in order: {got == sorted(got)}")
    return {
        "clients": clients,
        "messages_each": messages,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(clients * messages / elapsed),
        "problems": problems[:10],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--compression", choices=["deflate"], default=None)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    async def bounded() -> dict[str, object]:
        async with asyncio.timeout(args.timeout):
            return await run(args.clients, args.messages, args.compression)

    if args.uvloop:
        import uvloop

        result = uvloop.run(bounded())
    else:
        result = asyncio.run(bounded())
    for key, value in result.items():
        print(f"{key:20} {value}")
    print("OK" if not result["problems"] else "FAILED")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
