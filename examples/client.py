#!/usr/bin/env python
"""asyncio client: sends each message given on the command line and prints the
answer to each.

    python examples/client.py ws://127.0.0.1:8765 hello world

Against ``echo_server.py`` it prints ``hello`` and ``world``. It gives up after
10 seconds without an answer.
"""

import argparse
import asyncio

import ferrows as websockets


async def main(uri, messages):
    async with websockets.connect(uri, open_timeout=10) as websocket:
        for message in messages:
            await websocket.send(message)
            answer = await asyncio.wait_for(websocket.recv(), timeout=10)
            print(answer, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    parser.add_argument("messages", nargs="+")
    args = parser.parse_args()
    asyncio.run(main(args.uri, args.messages))
