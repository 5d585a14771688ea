#!/usr/bin/env python
"""Broadcast server: a message from any client goes to every connected client,
the sender included, prefixed with the sender's number.

    python examples/broadcast_server.py --port 8765

Connect two clients (``python -m ferrows ws://127.0.0.1:8765`` in two terminals)
and type in one of them. The port comes from ``--port``, else the ``PORT``
environment variable, else 8765; 0 picks a free one.
"""

import argparse
import asyncio
import itertools
import os
import signal

import ferrows as websockets

CLIENTS = set()
NUMBERS = itertools.count(1)


async def relay(websocket):
    number = next(NUMBERS)
    CLIENTS.add(websocket)
    try:
        await websocket.send(f"you are client {number}")
        async for message in websocket:
            # broadcast() does not wait: a client that stops reading cannot
            # slow the others down (its own buffer grows instead).
            websockets.broadcast(CLIENTS, f"{number}: {message}")
    finally:
        CLIENTS.discard(websocket)


async def main(host, port):
    async with websockets.serve(relay, host, port) as server:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.close)
        host, port = server.sockets[0].getsockname()[:2]
        print(f"listening on ws://{host}:{port}", flush=True)
        await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8765")))
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
