#!/usr/bin/env python
"""Echo server: sends every message back to the client that sent it.

    python examples/echo_server.py --port 8765

The port comes from ``--port``, else the ``PORT`` environment variable, else 8765;
0 picks a free one. The server prints its address once it listens, and stops
cleanly on Ctrl-C or SIGTERM (open connections are closed with 1001).
"""

import argparse
import asyncio
import os
import signal

import ferrows as websockets


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main(host, port):
    async with websockets.serve(echo, host, port) as server:
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
