"""A websockets user's program, type-checked against ferrows.

Written with ``import ferrows as websockets`` and websockets' module paths,
as code moved from websockets is; ``assert_type`` pins what mypy infers.
``tests/test_typing.py`` runs ``mypy --strict`` on it: it must pass clean.
It is never executed.
"""

from __future__ import annotations

import http
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import assert_type

from werkzeug.routing import Map, Rule

import ferrows as websockets
from ferrows.asyncio.client import ClientConnection, connect
from ferrows.asyncio.router import route
from ferrows.asyncio.server import Server, ServerConnection, basic_auth, broadcast, serve, unix_serve
from ferrows.auth import BasicAuth
from ferrows.datastructures import Headers
from ferrows.exceptions import ConnectionClosed, InvalidStatus
from ferrows.frames import Close, Frame, Opcode
from ferrows.http11 import Request, Response
from ferrows.protocol import State
from ferrows.sync import client as sync_client
from ferrows.sync import server as sync_server
from ferrows.sync.router import route as sync_route
from ferrows.typing import BytesLike

# ------------------------------------------------------------------ asyncio


async def echo(websocket: ServerConnection) -> None:
    async for message in websocket:
        assert_type(message, str | bytes)
        await websocket.send(message)
    assert_type(await websocket.recv(), str | bytes)
    assert_type(await websocket.recv(decode=True), str)
    assert_type(await websocket.recv(decode=False), bytes)
    assert_type(websocket.request, Request | None)
    assert_type(websocket.response, Response | None)
    assert_type(websocket.state, State)
    assert_type(websocket.subprotocol, websockets.Subprotocol | None)
    assert_type(await websocket.ping(), Awaitable[float])
    await websocket.send(bytearray(b"x"))
    await websocket.send(["frag", "ments"])
    await websocket.close(websockets.CloseCode.GOING_AWAY, "bye")


def health(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    assert_type(request.headers, Headers)
    return None


async def stamp(connection: ServerConnection, request: Request, response: Response) -> Response | None:
    response.headers["X-Stamp"] = "1"
    return None


async def check(username: str, password: str) -> bool:
    return password == "secret"


async def asyncio_side(context: ssl.SSLContext, connection: ServerConnection) -> None:
    async with serve(echo, "127.0.0.1", 0, process_request=health, process_response=stamp) as server:
        assert_type(server, Server)
        broadcast(server.connections, "news")
        assert_type(server.connections, set[ServerConnection])
    started = await websockets.serve(echo, "127.0.0.1", 0, ssl=context, max_queue=(16, None))
    assert_type(started, Server)
    started.close()
    await started.wait_closed()
    assert_type(await unix_serve(echo, path="/run/ws.sock"), Server)

    async with connect("ws://127.0.0.1:8765", open_timeout=5, additional_headers={"X": "y"}) as websocket:
        assert_type(websocket, ClientConnection)
        assert_type(websocket.response, Response | None)
    assert_type(await websockets.connect("ws://127.0.0.1:8765"), ClientConnection)
    async for reconnecting in connect("ws://127.0.0.1:8765"):
        assert_type(reconnecting, ClientConnection)
        break
    assert_type(await websockets.unix_connect("/run/ws.sock"), ClientConnection)

    # basic_auth(): websockets' form returns a process_request hook, a
    # coroutine function when check_credentials is one.
    plain = basic_auth(realm="dev", credentials=("admin", "secret"))
    assert_type(plain, Callable[[ServerConnection, Request], Response | None])
    awaited = basic_auth(realm="dev", check_credentials=check)
    assert_type(awaited, Callable[[ServerConnection, Request], Awaitable[Response | None]])
    async with serve(echo, "127.0.0.1", 0, process_request=awaited):
        pass

    # The decorator form keeps the handler's type.
    @basic_auth("admin", "secret")
    async def private(websocket: ServerConnection) -> None:
        await websocket.send("hello")

    assert_type(await private(connection), None)
    assert_type(basic_auth("admin", "secret"), BasicAuth)

    url_map = Map([Rule("/", endpoint=echo)])
    async with route(url_map, "127.0.0.1", 0) as routed:
        assert_type(routed, Server)

    try:
        await websockets.connect("ws://127.0.0.1:8765")
    except InvalidStatus as exc:
        assert_type(exc.response, Response)
        assert_type(exc.response.status_code, int)
    except ConnectionClosed as exc:
        assert_type(exc.rcvd, Close | None)
        assert_type(exc.code, int)


# ---------------------------------------------------------------- threading


def sync_echo(websocket: sync_server.ServerConnection) -> None:
    for message in websocket:
        assert_type(message, str | bytes)
        websocket.send(message)
    assert_type(websocket.recv(timeout=1.0), str | bytes)
    assert_type(websocket.recv(decode=False), bytes)
    assert_type(websocket.request, Request | None)


def sync_health(connection: sync_server.ServerConnection, request: Request) -> Response | None:
    return connection.respond(http.HTTPStatus.NOT_FOUND, "no\n") if request.path == "/x" else None


def sync_side(connection: sync_server.ServerConnection) -> None:
    with sync_server.serve(sync_echo, "127.0.0.1", 0, process_request=sync_health) as server:
        assert_type(server, sync_server.Server)
        sync_server.broadcast(server.connections, b"news")
        server.shutdown()
    assert_type(sync_server.unix_serve(sync_echo, "/run/ws.sock"), sync_server.Server)

    with sync_client.connect("ws://127.0.0.1:8765", open_timeout=5) as websocket:
        assert_type(websocket, sync_client.ClientConnection)
        websocket.send("hello")
    assert_type(sync_client.connect("ws://127.0.0.1:8765"), sync_client.ClientConnection)
    assert_type(sync_client.connect("ws://127.0.0.1:8765", legacy=True), sync_client.ClientConnection)
    assert_type(sync_client.connect("ws://127.0.0.1:8765", legacy=False), sync_client.reconnect)
    assert_type(sync_client.unix_connect("/run/ws.sock"), sync_client.ClientConnection)
    connections: Iterator[sync_client.ClientConnection] = iter(sync_client.reconnect("ws://127.0.0.1:8765"))
    assert_type(next(connections), sync_client.ClientConnection)

    hook = sync_server.basic_auth(realm="dev", credentials=[("admin", "secret"), ("guest", "guest")])
    assert_type(hook, Callable[[sync_server.ServerConnection, Request], Response | None])
    sync_server.serve(sync_echo, "127.0.0.1", 0, process_request=hook).shutdown()

    @sync_server.basic_auth("admin", "secret")
    def private(websocket: sync_server.ServerConnection) -> None:
        websocket.send("hello")

    assert_type(private(connection), None)

    url_map = Map([Rule("/", endpoint=sync_echo)])
    assert_type(sync_route(url_map, "127.0.0.1", 0), sync_server.Server)


# ------------------------------------------------------------------ Sans-I/O


def sans_io() -> None:
    protocol = websockets.ServerProtocol()
    protocol.receive_data(b"GET / HTTP/1.1\r\n\r\n")
    for event in protocol.events_received():
        if isinstance(event, Request):
            response = protocol.accept(event)
            assert_type(response, Response)
            protocol.send_response(response)
        elif isinstance(event, Frame):
            assert_type(event.opcode, Opcode)
            assert_type(event.data, BytesLike)
    assert_type(protocol.data_to_send(), list[bytes])
    assert_type(protocol.state, State)
    protocol.send_text(b"caf\xc3\xa9")
    protocol.send_binary(memoryview(b"data"))
    client = websockets.ClientProtocol(websockets.uri.parse_uri("ws://example.com/"))
    assert_type(client.connect(), Request)
    headers = Headers({"A": "1"})
    headers["B"] = "2"
    assert_type(headers.get_all("A"), list[str])
    assert_type(headers.get("C"), str | None)
    refusal = protocol.reject(http.HTTPStatus.FORBIDDEN, "no\n")
    assert_type(refusal, Response)
    assert_type(refusal.body, bytes | bytearray)
    assert_type(refusal.reason_phrase, str)
    assert_type(protocol.close_exc, ConnectionClosed)
    assert_type(Close(websockets.CloseCode.NORMAL_CLOSURE, "").code, int)
