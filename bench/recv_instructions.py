"""Instruction-count probe of ``recv()`` for small messages, steadier than
wall-clock timing on a shared machine.

A raw socket peer writes N small text frames in one go; the connection of
the chosen layer receives them with ``recv()``. Run it under callgrind with
N and with 0, and divide the difference by N::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/recv_instructions.py asyncio 20000   # then with 0

Build the extension with ``maturin develop --release`` first.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading

from ferrows.protocol import CLIENT, OPEN, Protocol

FRAME = b"\x81\x05hello"  # an unmasked text frame, as a server sends it


def main(layer: str, count: int) -> None:
    ours, peer = socket.socketpair()
    writer = threading.Thread(target=peer.sendall, args=(FRAME * count,))
    if layer == "asyncio":
        from ferrows.asyncio.connection import Connection

        async def receive() -> None:
            loop = asyncio.get_running_loop()
            protocol = Protocol(CLIENT, state=OPEN)
            _, conn = await loop.create_connection(
                lambda: Connection(protocol, max_queue=None, read_limit=None), sock=ours
            )
            writer.start()
            for _ in range(count):
                await conn.recv()
            conn.transport.abort()

        asyncio.run(receive())
    else:
        from ferrows.sync.connection import Connection as SyncConnection

        conn = SyncConnection(ours, Protocol(CLIENT, state=OPEN), max_queue=None)
        writer.start()
        for _ in range(count):
            conn.recv()
        conn.close_socket()
    writer.join()
    peer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "asyncio", int(sys.argv[2]) if len(sys.argv) > 2 else 20000)
