"""The servers under test, one per library, each written the way that
library's documentation writes an echo server.

Run as ``python bench/servers.py --lib LIB --kind echo|broadcast --loop
asyncio|uvloop``; it listens on 127.0.0.1, port 0, prints ``READY <port>``
and serves until the runner stops it by PID (or for ``--lifetime`` seconds
at most).

Every server echoes each text or binary message as it came. With ``--kind
broadcast``, a text message ``go:N`` makes it send the first N messages of
:func:`common.broadcast_pool` to every connected client, using the
library's broadcast helper where it has one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import socket
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import BROADCAST_POOL, broadcast_pool, frame, raise_nofile, run

MAX_SIZE = 2**21
"""Largest message the servers accept: the 1 MiB scenario plus headroom."""


def batch_of(command: str) -> list[bytes]:
    """The messages requested by a broadcast command ``go:N`` or ``one:N``."""
    name, _, count = command.partition(":")
    n = int(count)
    if name not in ("go", "one") or not 0 < n <= BROADCAST_POOL:
        raise ValueError(f"bad command {command!r}")
    return POOL[:n]


def spread(command: str) -> bool:
    """Whether a broadcast command asks for one message per loop iteration."""
    return command.startswith("one:")


async def send_spread(payloads: list[bytes], send_all: Any) -> None:
    """Calls ``send_all(payload)`` for each payload, one per loop iteration."""
    for payload in payloads:
        send_all(payload)
        await asyncio.sleep(0)


POOL = broadcast_pool()


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def ready(sock: socket.socket) -> None:
    """Tells the runner the server is up, and on which port."""
    print("READY", sock.getsockname()[1], flush=True)


# -- ferrows and websockets: the same code, as ferrows promises -------------


async def serve_websockets_like(module_name: str, kind: str, sock: socket.socket) -> None:
    if module_name == "ferrows":
        from ferrows.asyncio.server import broadcast, serve
    else:
        from websockets.asyncio.server import broadcast, serve

    clients: set = set()

    async def echo(websocket):  # type: ignore[no-untyped-def]
        async for message in websocket:
            await websocket.send(message)

    async def broadcaster(websocket):  # type: ignore[no-untyped-def]
        clients.add(websocket)
        try:
            async for message in websocket:
                if spread(message):
                    await send_spread(batch_of(message), lambda payload: broadcast(clients, payload))
                else:
                    for payload in batch_of(message):
                        broadcast(clients, payload)
        finally:
            clients.discard(websocket)

    handler = broadcaster if kind == "broadcast" else echo
    # Defaults otherwise: permessage-deflate with 12-bit windows is enabled
    # and used when a client offers it.
    async with serve(handler, sock=sock, max_size=MAX_SIZE) as server:
        ready(sock)
        await server.serve_forever()


# -- picows: a listener per connection, called per frame --------------------


async def serve_picows(kind: str, sock: socket.socket) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    transports: set = set()
    tasks: set = set()  # spread broadcasts under way (kept referenced)

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport):  # type: ignore[no-untyped-def]
            transports.add(transport)

        def on_ws_disconnected(self, transport):  # type: ignore[no-untyped-def]
            transports.discard(transport)

        def on_ws_frame(self, transport, frame):  # type: ignore[no-untyped-def]
            msg_type = frame.msg_type
            if msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif not frame.fin or msg_type == WSMsgType.CONTINUATION:
                # The clients never fragment; don't echo half a message.
                transport.send_close(1003, b"fragmented")
                transport.disconnect()
            elif kind == "broadcast" and msg_type == WSMsgType.TEXT:
                command = frame.get_payload_as_ascii_text()

                def send_all(payload: bytes) -> None:
                    for t in transports:
                        t.send(WSMsgType.BINARY, payload)

                if spread(command):
                    task = asyncio.ensure_future(send_spread(batch_of(command), send_all))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                else:
                    for payload in batch_of(command):
                        send_all(payload)
            elif msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
                transport.send(msg_type, frame.get_payload_as_memoryview())

    server = await ws_create_server(lambda request: Echo(), sock=sock, max_frame_size=MAX_SIZE)
    async with server:
        ready(sock)
        await server.serve_forever()


# -- aiohttp: web.Application with a WebSocketResponse handler --------------


async def serve_aiohttp(kind: str, sock: socket.socket) -> None:
    from aiohttp import WSMsgType, web

    clients: set = set()

    async def handler(request):  # type: ignore[no-untyped-def]
        ws = web.WebSocketResponse(compress=True, max_msg_size=MAX_SIZE)
        await ws.prepare(request)
        clients.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    if kind == "broadcast":
                        for payload in batch_of(msg.data):
                            for client in list(clients):
                                await client.send_bytes(payload)
                            if spread(msg.data):
                                await asyncio.sleep(0)
                    else:
                        await ws.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
        finally:
            clients.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    ready(sock)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


# -- plain asyncio TCP: the ceiling for a Python server ---------------------


async def serve_tcp(kind: str, sock: socket.socket) -> None:
    """Echoes bytes as they come (no WebSocket at all); for broadcast, reads
    the clients' masked ``go:N`` frames and writes prebuilt frames."""
    from common import FrameReader

    transports: set = set()
    tasks: set = set()  # spread broadcasts under way (kept referenced)
    frames = [frame(2, p, masked=False) for p in POOL]

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.transport = transport

        def data_received(self, data):  # type: ignore[no-untyped-def]
            self.transport.write(data)

    class Broadcast(asyncio.Protocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.transport = transport
            self.reader = FrameReader()
            transports.add(transport)

        def connection_lost(self, exc):  # type: ignore[no-untyped-def]
            transports.discard(self.transport)

        def data_received(self, data):  # type: ignore[no-untyped-def]
            for opcode, _, payload in self.reader.feed(data):
                if opcode == 1:
                    # One write per message and connection, as a broadcast
                    # API called once per message does.
                    command = payload.decode()
                    encoded_batch = frames[: len(batch_of(command))]

                    def write_all(encoded: bytes) -> None:
                        for t in transports:
                            t.write(encoded)

                    if spread(command):
                        task = asyncio.ensure_future(send_spread(encoded_batch, write_all))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    else:
                        for encoded in encoded_batch:
                            write_all(encoded)
                elif opcode == 8:
                    self.transport.close()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Broadcast if kind == "broadcast" else Echo, sock=sock)
    async with server:
        ready(sock)
        await server.serve_forever()


# -- uvicorn with each of its WebSocket implementations, and ferrows' --------

UVICORN_WS = {
    "uvicorn-websockets": "websockets",
    "uvicorn-websockets-sansio": "websockets-sansio",
    "uvicorn-wsproto": "wsproto",
    "uvicorn-ferrows": "ferrows.asgi:WebSocketProtocol",
}
"""The ``uvicorn-*`` servers: the same Starlette echo endpoint on uvicorn,
with the value of its ``ws`` setting. ``websockets-sansio`` is what uvicorn
picks by default (``ws="auto"``) when websockets is installed."""


def starlette_echo_app() -> Any:
    """The Starlette echo endpoint every ASGI server here serves."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])

    return Starlette(routes=[WebSocketRoute("/", echo)])


async def start_uvicorn(lib: str, sock: socket.socket) -> tuple[Any, asyncio.Future[None]]:
    """Starts uvicorn serving the Starlette echo app on ``sock`` with the
    ``ws`` setting of ``lib``; returns the server (``should_exit`` stops
    it) and its task, once it serves."""
    import uvicorn

    # Without the INFO line per handshake that uvicorn logs by default, as
    # a production server logs at WARNING.
    config = uvicorn.Config(
        starlette_echo_app(), ws=UVICORN_WS[lib], ws_max_size=MAX_SIZE, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task


async def serve_uvicorn(lib: str, kind: str, sock: socket.socket) -> None:
    if kind != "echo":
        raise SystemExit("the uvicorn servers only echo")
    _, task = await start_uvicorn(lib, sock)
    ready(sock)
    await task


# -- granian: the same Starlette app on granian's Rust HTTP/WebSocket server --


def serve_granian(kind: str, loop: str, lifetime: float) -> None:
    """Serves the Starlette echo app as granian's command line does by
    default: one worker process (the one that does the work; the CPU
    accounting counts the server's descendants), its ASGI interface without
    lifespan (as the uvicorn servers run), the loop of the trial.

    granian binds its own socket, so this takes a free port first; the
    thread that announces the port waits until the worker answers."""
    import signal
    import threading
    import time

    from granian import Granian

    if kind != "echo":
        raise SystemExit("the granian server only echoes")
    probe = listening_socket()
    port = probe.getsockname()[1]
    probe.close()

    def announce() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                # An answer to a plain GET (Starlette's 404) means the worker serves.
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    if not probe.recv(64):
                        raise ConnectionError
            except OSError:
                time.sleep(0.02)
                continue
            print("READY", port, flush=True)
            break
        time.sleep(lifetime)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=announce, daemon=True).start()
    Granian(
        "servers:starlette_echo_app",
        factory=True,
        working_dir=pathlib.Path(__file__).resolve().parent,
        address="127.0.0.1",
        port=port,
        interface="asginl",
        workers=1,
        loop=loop,
        log_level="warning",
        # To stderr: the runner reads READY on stdout.
        log_dictconfig={
            "handlers": {
                name: {"formatter": formatter, "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
                for name, formatter in (("console", "generic"), ("access", "access"))
            }
        },
    ).serve()


async def main(lib: str, kind: str, lifetime: float) -> None:
    sock = listening_socket()
    if lib in UVICORN_WS:
        coro = serve_uvicorn(lib, kind, sock)
    elif lib in ("ferrows", "websockets"):
        coro = serve_websockets_like(lib, kind, sock)
    elif lib == "picows":
        coro = serve_picows(kind, sock)
    elif lib == "aiohttp":
        coro = serve_aiohttp(kind, sock)
    elif lib == "tcp":
        coro = serve_tcp(kind, sock)
    else:
        raise SystemExit(f"unknown library {lib}")
    try:
        await asyncio.wait_for(coro, lifetime)
    except TimeoutError:
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", required=True)
    parser.add_argument("--kind", default="echo", choices=["echo", "broadcast"])
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    parser.add_argument("--lifetime", type=float, default=300.0)
    args = parser.parse_args()
    raise_nofile()
    if args.lib == "granian":
        serve_granian(args.kind, args.loop, args.lifetime)
        raise SystemExit
    # Import the library before announcing the port, so it isn't measured.
    if args.lib in ("ferrows", "websockets", "picows", "aiohttp"):
        __import__(args.lib)
    elif args.lib in UVICORN_WS:
        __import__("uvicorn")
        __import__("starlette.applications")
    run(main(args.lib, args.kind, args.lifetime), args.loop)
