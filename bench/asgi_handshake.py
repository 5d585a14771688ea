"""The Python-side cost of one WebSocket handshake inside uvicorn, per
protocol class, in-process and without the network.

    python bench/asgi_handshake.py [--count 4000] [--starlette] [--ws ferrows,websockets-sansio,wsproto,floor]
    python bench/asgi_handshake.py --sansio [--count 20000]

Each handshake creates the protocol as uvicorn's HTTP protocol does, replays
the upgrade request (what uvicorn writes back after parsing it), runs the
application (accept, then wait for the disconnect), feeds the client's close
frame and lets the protocol close the transport, a stand-in that records
writes. The figure is the process CPU time per handshake: what the protocol
class, uvicorn's middleware and the application cost, without the system
calls, uvicorn's HTTP parsing and the client that the ``handshake`` scenario
of run.py also counts.

``floor`` is a protocol that does only what a handshake needs (a task for the
application, a constant 101, a close frame): what no implementation can go
below with this application on this event loop.

``--sansio`` measures the shared Sans-I/O part alone, without uvicorn or an
event loop: ``ServerProtocol`` of ferrows and of websockets each parse the same
request (with a permessage-deflate offer, as browsers send), accept it with the
server's ``Server`` header, send the 101 and open the connection.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import os
import time
from typing import Any

REQUEST = (
    b"GET / HTTP/1.1\r\nhost: 127.0.0.1:8000\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
    b"sec-websocket-key: " + base64.b64encode(os.urandom(16)) + b"\r\nsec-websocket-version: 13\r\n"
    b"sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)
CLOSE_1000 = bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2])
WS = {"ferrows": "ferrows.asgi:WebSocketProtocol", "floor": "asgi_handshake:Floor"}


class Transport(asyncio.Transport):
    """Records writes; close() calls connection_lost() soon, as asyncio's do."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False
        self.protocol: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol


class Floor(asyncio.Protocol):
    """The least a uvicorn WebSocket protocol does for a handshake."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        self.app = config.loaded_app
        self.tasks = server_state.tasks
        self.loop = asyncio.get_event_loop()
        self.scope: dict[str, Any] | None = None
        self.connected = False
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.scope is None:
            self.scope = {"type": "websocket", "path": "/", "raw_path": b"/", "root_path": "", "query_string": b""}
            self.scope.update(headers=[], subprotocols=[], asgi={"version": "3.0"}, scheme="ws", state={})
            self.scope.update(server=None, client=None, extensions={})
            task = self.loop.create_task(self.app(self.scope, self.receive, self.send))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            self.transport.write(b"\x88\x02\x03\xe8")
            self.transport.close()
            if self.waiter is not None:
                self.waiter.set_result(None)

    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        self.waiter = self.loop.create_future()
        await self.waiter
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: Any) -> None:
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n")


async def plain_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def starlette_app() -> Any:
    from servers import starlette_echo_app

    return starlette_echo_app()


async def measure(ws: str, count: int, starlette: bool) -> float:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    config = Config(starlette_app() if starlette else plain_app, ws=WS.get(ws, ws), lifespan="off", log_level="warning")
    config.load()
    state = ServerState()

    async def handshake() -> None:
        transport = Transport()
        protocol = config.ws_protocol_class(config=config, server_state=state, app_state={})  # type: ignore[misc]
        transport.protocol = protocol
        protocol.connection_made(transport)
        protocol.data_received(REQUEST)
        for _ in range(10):  # until the application accepted
            await asyncio.sleep(0)
            if transport.writes:
                break
        if not transport.writes[0].startswith(b"HTTP/1.1 101 "):
            raise RuntimeError(f"{ws}: {transport.writes[0][:60]!r}")
        protocol.data_received(CLOSE_1000)
        for _ in range(10):  # until closed and the application returned
            await asyncio.sleep(0)
            if transport.closing and not state.tasks:
                break
        if not transport.closing or state.tasks:
            raise RuntimeError(f"{ws}: not closed")

    for _ in range(count // 10):  # warm-up
        await handshake()
    start = time.process_time()
    for _ in range(count):
        await handshake()
    return (time.process_time() - start) / count


def sansio_handshake(lib: str) -> Any:
    """One Sans-I/O handshake of ``lib``, as a function of no arguments."""
    deflate = importlib.import_module(f"{lib}.extensions.permessage_deflate")
    server = importlib.import_module(f"{lib}.server")
    SERVER = importlib.import_module(f"{lib}.http11").SERVER
    ServerProtocol, ServerPerMessageDeflateFactory = server.ServerProtocol, deflate.ServerPerMessageDeflateFactory
    factories = [ServerPerMessageDeflateFactory()]

    def handshake() -> Any:
        protocol = ServerProtocol(extensions=factories)
        protocol.receive_data(REQUEST)
        [request] = protocol.events_received()
        if lib == "ferrows":
            # What ferrows' asyncio server calls: accept() and its Server header.
            response = protocol._accept(request, SERVER)
        else:
            # What websockets' asyncio server does.
            response = protocol.accept(request)
            response.headers["Server"] = SERVER
        protocol.send_response(response)
        return protocol.data_to_send()

    return handshake


def measure_sansio(lib: str, count: int) -> float:
    handshake = sansio_handshake(lib)
    if not handshake()[0].startswith(b"HTTP/1.1 101 "):
        raise RuntimeError(f"{lib}: not accepted")
    for _ in range(count // 10):  # warm-up
        handshake()
    start = time.process_time()
    for _ in range(count):
        handshake()
    return (time.process_time() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--starlette", action="store_true", help="the Starlette echo app of servers.py")
    parser.add_argument("--ws", default="ferrows,websockets-sansio,wsproto,floor")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions; the minimum is reported")
    parser.add_argument("--sansio", action="store_true", help="ServerProtocol alone, ferrows and websockets")
    args = parser.parse_args()
    names = ["ferrows", "websockets"] if args.sansio else [name for name in args.ws.split(",") if name]
    best: dict[str, float] = {}
    for _ in range(args.reps):
        for name in names:
            if args.sansio:
                cost = measure_sansio(name, args.count)
            else:
                cost = asyncio.run(measure(name, args.count, args.starlette))
            best[name] = min(best.get(name, cost), cost)
    what = "Sans-I/O handshake" if args.sansio else "handshake"
    for name in names:
        print(f"{name:20} {best[name] * 1e6:7.1f} µs CPU per {what}")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
