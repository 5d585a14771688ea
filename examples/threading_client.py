#!/usr/bin/env python
"""Threading client: sends each line read from standard input and prints the
answer, without asyncio.

    python examples/threading_client.py ws://127.0.0.1:8765 < messages.txt

It stops at the end of the input, closing the connection normally, and gives up
on an answer after 10 seconds.
"""

import argparse
import sys

from ferrows.sync.client import connect


def main(uri):
    with connect(uri, open_timeout=10) as websocket:
        for line in sys.stdin:
            websocket.send(line.rstrip("\n"))
            print(websocket.recv(timeout=10), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    args = parser.parse_args()
    main(args.uri)
