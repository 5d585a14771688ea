"""Instruction-count probe of a whole server handshake (accept, upgrade,
close), steadier than the server CPU that run.py's ``handshake`` scenario
reads on a shared machine.

One process runs the server of the chosen library and rawclient.py's peer
on one asyncio loop over loopback TCP: N times, 8 at a time, the peer
connects, upgrades with a browser's permessage-deflate offer, sends a close
frame and waits for the server to hang up. Count it under callgrind
with two values of N and divide the difference by the difference of N; the
peer's share is the same for every library, and ``floor`` (a protocol that
answers a constant 101 and a close frame, no WebSocket code) shows it::

    for n in 100 200; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            "$(python -c 'import sys; print(sys.executable)')" \\
            bench/handshake_instructions.py ferrows $n 2>&1 | grep Collected
    done

Libraries: ``ferrows``, ``ferrows-plain`` (``compression=None``: nothing
negotiated, as picows, which has no permessage-deflate), ``websockets``,
``picows``, ``floor``; and the ASGI rows of run.py, the Starlette echo app
on uvicorn with each ``ws`` setting (``uvicorn-ferrows``,
``uvicorn-websockets-sansio``, ``uvicorn-websockets``, ``uvicorn-wsproto``),
whose handshakes are bound by the server's CPU, so that the ratio of their
counts is the ratio of their rates on a quiet machine. granian runs its
server in threads of its Rust runtime and is not counted here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rawclient import BROWSER_OFFER, CLOSE_1000, open_raw  # noqa: E402
from scenarios import HANDSHAKE_CONCURRENCY as CONCURRENCY  # noqa: E402
from servers import UVICORN_WS, start_uvicorn  # noqa: E402

FLOOR_101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Floor(asyncio.Protocol):
    """Answers any request with a 101 (its key found by a substring search,
    no HTTP parsing), then a close frame with a close frame and a
    half-close: the peer's and asyncio's share alone."""

    transport: Any = None
    opened = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.opened:
            self.opened = True
            start = data.index(b"Sec-WebSocket-Key: ") + 19
            key = data[start : data.index(b"\r\n", start)]
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            self.transport.write(FLOOR_101 + accept + b"\r\n\r\n")
        else:
            self.transport.write(b"\x88\x02\x03\xe8")
            self.transport.write_eof()

    def eof_received(self) -> bool | None:
        return None


async def start(lib: str, sock: socket.socket) -> Any:
    """Starts the library's server on ``sock``; returns an object to close."""

    async def echo(websocket: Any) -> None:
        async for message in websocket:
            await websocket.send(message)

    if lib in ("ferrows", "ferrows-plain", "websockets"):
        if lib == "websockets":
            from websockets.asyncio.server import serve
        else:
            from ferrows.asyncio.server import serve  # type: ignore[assignment]
        options: dict[str, Any] = {"compression": None} if lib == "ferrows-plain" else {}
        return await serve(echo, sock=sock, **options)
    if lib == "picows":
        from picows import WSListener, WSMsgType, ws_create_server

        class Echo(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code(), frame.get_close_message())
                    transport.disconnect()

        return await ws_create_server(lambda request: Echo(), sock=sock)
    if lib == "floor":
        return await asyncio.get_running_loop().create_server(Floor, sock=sock)
    if lib in UVICORN_WS:
        return await Uvicorn.start(lib, sock)
    raise SystemExit(f"unknown library {lib}")


class Uvicorn:
    """uvicorn serving run.py's Starlette echo app on ``sock``, with a
    server's ``close()`` and ``wait_closed()``."""

    def __init__(self, server: Any, task: asyncio.Future[None]) -> None:
        self.server, self.task = server, task

    @classmethod
    async def start(cls, lib: str, sock: socket.socket) -> Uvicorn:
        return cls(*await start_uvicorn(lib, sock))

    def close(self) -> None:
        self.server.should_exit = True

    async def wait_closed(self) -> None:
        await self.task


async def main(lib: str, count: int) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = await start(lib, sock)

    async def worker(n: int) -> None:
        for _ in range(n):
            conn = await open_raw(port, offer=BROWSER_OFFER)
            conn.close_sent = True
            conn.transport.write(CLOSE_1000)  # type: ignore[union-attr]
            await asyncio.wait_for(asyncio.shield(conn.closed), 5)
            if not conn.got_close:
                raise ConnectionError("no close frame from the server")

    # In flight together, as in run.py's scenario (N is rounded down to a
    # multiple): a server's shared timers
    # and batched callbacks work as they do under load.
    await asyncio.gather(*(worker(count // CONCURRENCY) for _ in range(CONCURRENCY)))
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
