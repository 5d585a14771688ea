"""Tests for ferrows.asyncio.server: Server, ServerConnection, the handshake
hooks, basic_auth, broadcast and the server's timeouts."""

from __future__ import annotations

import asyncio
import base64
import gc
import http
import logging
import re
import socket
import struct
import time
import uuid
import weakref
from typing import Any

import pytest

import ferrows
from ferrows import Headers, Request, Response, State, basic_auth, broadcast
from ferrows.asyncio.server import Server, ServerConnection, serve
from ferrows.connection import COALESCE_LIMIT
from ferrows.exceptions import (
    ConcurrencyError,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    NegotiationError,
)

from ..frame_utils import CLOSE, PING, PONG, TEXT, client_frame, close_payload
from .utils import (
    MS,
    TIMEOUT,
    RecordingTransport,
    captured_logs,
    echo,
    handshake_request,
    parse_close,
    port_of,
    raw_connect,
    read_frame,
    recording_writes,
    serving,
    uri_of,
    wait_for,
)

# ------------------------------------------------------------------- Server


async def test_sockets_is_a_tuple_of_listening_sockets() -> None:
    async with serving(echo) as server:
        assert isinstance(server, Server)
        assert isinstance(server.sockets, tuple)
        assert len(server.sockets) == 1
        host, port = server.sockets[0].getsockname()
        assert host == "127.0.0.1" and port > 0


async def test_connections_and_websockets() -> None:
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        assert server.connections == set()
        async with ferrows.connect(uri_of(server)) as one, ferrows.connect(uri_of(server)) as two:
            await wait_for(lambda: len(server.connections) == 2)
            assert server.websockets == server.connections
            assert all(isinstance(c, ServerConnection) for c in server.connections)
            remote_ports = {c.remote_address[1] for c in server.connections}
            assert remote_ports == {one.local_address[1], two.local_address[1]}
            await one.close()
            await wait_for(lambda: len(server.connections) == 1)
        await wait_for(lambda: not server.connections)


async def test_async_context_manager_closes_server() -> None:
    async with asyncio.timeout(TIMEOUT):
        async with serve(echo, "127.0.0.1", 0) as server:
            assert isinstance(server, Server)
            assert server.is_serving()
            assert server.get_loop() is asyncio.get_running_loop()
            port = port_of(server)
        assert not server.is_serving()
        with pytest.raises(OSError):
            await ferrows.connect(f"ws://127.0.0.1:{port}/")


async def test_await_serve() -> None:
    async with asyncio.timeout(TIMEOUT):
        server = await serve(echo, "127.0.0.1", 0)
        try:
            async with ferrows.connect(uri_of(server)) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
        finally:
            server.close()
            await server.wait_closed()


async def test_bind_error_raises_oserror() -> None:
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(OSError):
            await serve(echo, "127.0.0.1", port_of(server))


async def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        serve(echo, "127.0.0.1", 0, compression="bogus")
    with pytest.raises(ValueError):
        serve(echo, "127.0.0.1", 0, subprotocols=["not a token"])
    with pytest.raises(TypeError):
        async with asyncio.timeout(TIMEOUT):
            await serve(echo, "127.0.0.1", 0, no_such_argument=True)


async def test_close_closes_connections_with_1001() -> None:
    async with asyncio.timeout(TIMEOUT):
        server = await serve(echo, "127.0.0.1", 0)
        port = port_of(server)
        async with ferrows.connect(uri_of(server)) as ws:
            await wait_for(lambda: len(server.connections) == 1)
            server.close()
            server.close()  # idempotent
            with pytest.raises(ConnectionClosedOK) as raised:
                await ws.recv()
            assert raised.value.rcvd.code == 1001
            await server.wait_closed()
        assert not server.is_serving()
        assert server.connections == set()
        with pytest.raises(OSError):
            await ferrows.connect(f"ws://127.0.0.1:{port}/")


async def test_close_with_code_and_reason() -> None:
    async with asyncio.timeout(TIMEOUT):
        server = await serve(echo, "127.0.0.1", 0)
        async with ferrows.connect(uri_of(server)) as ws:
            await wait_for(lambda: len(server.connections) == 1)
            server.close(code=4000, reason="maintenance")
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4000, "maintenance")
        await server.wait_closed()


async def test_close_without_closing_connections() -> None:
    async with asyncio.timeout(TIMEOUT):
        server = await serve(echo, "127.0.0.1", 0)
        async with ferrows.connect(uri_of(server)) as ws:
            await wait_for(lambda: len(server.connections) == 1)
            server.close(close_connections=False)
            closed = asyncio.ensure_future(server.wait_closed())
            await ws.send("still there")
            assert await ws.recv() == "still there"
            assert not closed.done()
        await closed


async def test_close_answers_handshake_in_progress_with_503() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def process_request(connection: Any, request: Request) -> None:
        started.set()
        await release.wait()

    async with asyncio.timeout(TIMEOUT):
        server = await serve(echo, "127.0.0.1", 0, process_request=process_request)
        connecting = asyncio.ensure_future(ferrows.connect(uri_of(server)))
        await started.wait()
        server.close()
        await asyncio.sleep(10 * MS)
        release.set()
        with pytest.raises(InvalidStatus) as raised:
            await connecting
        assert raised.value.response.status_code == 503
        await server.wait_closed()


async def test_wait_closed_waits_for_handlers() -> None:
    release = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()
        await release.wait()

    async with asyncio.timeout(TIMEOUT):
        server = await serve(handler, "127.0.0.1", 0)
        async with ferrows.connect(uri_of(server)):
            await wait_for(lambda: len(server.connections) == 1)
        server.close()
        closed = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(20 * MS)
        assert not closed.done()
        release.set()
        await closed


async def test_serve_forever_cancel_closes_server() -> None:
    async with asyncio.timeout(TIMEOUT):
        server = await serve(echo, "127.0.0.1", 0)
        task = asyncio.create_task(server.serve_forever())
        async with ferrows.connect(uri_of(server)) as ws:
            await wait_for(lambda: len(server.connections) == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001
        assert not server.is_serving()
        await server.wait_closed()


async def test_start_serving() -> None:
    async with asyncio.timeout(TIMEOUT):
        server = await serve(echo, "127.0.0.1", 0, start_serving=False)
        try:
            assert not server.is_serving()
            await server.start_serving()
            assert server.is_serving()
            async with ferrows.connect(uri_of(server)) as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"
        finally:
            server.close()
            await server.wait_closed()


# -------------------------------------------------------- ServerConnection


async def test_server_connection_properties() -> None:
    seen: dict[str, Any] = {}
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        seen["open"] = dict(
            closed=ws.closed,
            local_address=ws.local_address,
            remote_address=ws.remote_address,
            subprotocol=ws.subprotocol,
            request_headers=ws.request_headers,
            response_headers=ws.response_headers,
            request=ws.request,
            response=ws.response,
            state=ws.state,
            close_code=ws.close_code,
            close_reason=ws.close_reason,
            latency=ws.latency,
            id=ws.id,
            username=ws.username,
            server=ws.server,
            logger=ws.logger,
        )
        await ws.wait_closed()
        seen["closed"] = (ws.closed, ws.state, ws.close_code, ws.close_reason)
        done.set()

    async with serving(handler) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server, "/path?q=1"), additional_headers={"X-Test": "yes"}) as ws:
            await wait_for(lambda: "open" in seen)
            client_port = ws.local_address[1]
            server_address = server.sockets[0].getsockname()
            await ws.close(4321, "bye")
        await done.wait()

    info = seen["open"]
    assert info["closed"] is False
    assert info["local_address"] == server_address
    assert info["remote_address"] == ("127.0.0.1", client_port)
    assert info["subprotocol"] is None
    assert info["request_headers"]["X-Test"] == "yes"
    assert info["request_headers"] is info["request"].headers
    assert info["response_headers"]["Upgrade"] == "websocket"
    assert info["response_headers"] is info["response"].headers
    assert isinstance(info["request"], Request) and info["request"].path == "/path?q=1"
    assert isinstance(info["response"], Response) and info["response"].status_code == 101
    assert info["state"] is State.OPEN
    assert info["close_code"] is None and info["close_reason"] is None
    assert info["latency"] == 0.0
    assert isinstance(info["id"], uuid.UUID)
    assert info["username"] is None
    assert info["server"] is server
    assert info["logger"].name == "websockets.server"
    assert seen["closed"] == (True, State.CLOSED, 4321, "bye")


async def test_respond() -> None:
    def process_request(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(http.HTTPStatus.NOT_FOUND, "No such thing.\n")

    async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as raised:
            await ferrows.connect(uri_of(server))
        response = raised.value.response
        assert response.status_code == 404
        assert response.body == b"No such thing.\n"
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["Content-Length"] == "15"
        assert response.headers["Connection"] == "close"
        assert "Date" in response.headers


# ------------------------------------------------------------------ handler


async def test_handler_return_closes_with_1000() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("bye")

    async with serving(handler) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            assert [message async for message in ws] == ["bye"]
            assert ws.close_code == 1000


async def test_handler_exception_is_logged_once_and_closes_with_1011() -> None:
    async def handler(ws: ServerConnection) -> None:
        raise RuntimeError("boom")

    with captured_logs("websockets.server") as records:
        async with serving(handler) as server, asyncio.timeout(TIMEOUT):
            async with ferrows.connect(uri_of(server)) as ws:
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
                assert ws.close_code == 1011
                assert ws.close_reason == ""
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)
    assert "boom" in logging.Formatter().format(errors[0])


async def test_handler_ending_on_connection_closed_logs_no_error() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()

    with captured_logs("websockets.server") as records:
        async with serving(handler) as server, asyncio.timeout(TIMEOUT):
            async with ferrows.connect(uri_of(server)):
                pass
            await wait_for(lambda: not server._handlers)
    assert [r for r in records if r.levelno >= logging.ERROR] == []


# ------------------------------------------------------------------- hooks


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_process_request_returns_response(is_async: bool) -> None:
    requests: list[Request] = []

    def reject(connection: ServerConnection, request: Request) -> Response | None:
        requests.append(request)
        if request.path == "/forbidden":
            return Response(403, "Forbidden", b"Access denied")
        return None

    async def async_reject(connection: ServerConnection, request: Request) -> Response | None:
        await asyncio.sleep(0)
        return reject(connection, request)

    hook = async_reject if is_async else reject
    async with serving(echo, process_request=hook) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as raised:
            await ferrows.connect(uri_of(server, "/forbidden"))
        response = raised.value.response
        assert (response.status_code, response.reason_phrase, response.body) == (403, "Forbidden", b"Access denied")
        assert response.headers["Content-Length"] == "13"
        async with ferrows.connect(uri_of(server, "/allowed")) as ws:
            await ws.send("in")
            assert await ws.recv() == "in"
        assert [r.path for r in requests] == ["/forbidden", "/allowed"]


async def test_process_request_exception_gives_500() -> None:
    def process_request(connection: ServerConnection, request: Request) -> None:
        raise ValueError("bad hook")

    with captured_logs("websockets.server") as records:
        async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
            with pytest.raises(InvalidStatus) as raised:
                await ferrows.connect(uri_of(server))
            assert raised.value.response.status_code == 500
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and isinstance(errors[0].exc_info[1], ValueError)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_process_response_edits_headers(is_async: bool) -> None:
    def edit(connection: ServerConnection, request: Request, response: Response) -> None:
        assert response.status_code == 101
        response.headers["X-Path"] = request.path

    async def async_edit(connection: ServerConnection, request: Request, response: Response) -> None:
        edit(connection, request, response)

    async with serving(echo, process_response=async_edit if is_async else edit) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server, "/here")) as ws:
            assert ws.response_headers["X-Path"] == "/here"


async def test_process_response_replaces_response() -> None:
    def replace(connection: ServerConnection, request: Request, response: Response) -> Response:
        return connection.respond(http.HTTPStatus.IM_A_TEAPOT, "teapot\n")

    async with serving(echo, process_response=replace) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as raised:
            await ferrows.connect(uri_of(server))
        assert raised.value.response.status_code == 418
        assert raised.value.response.body == b"teapot\n"
        assert server.connections == set()


async def test_process_response_exception_gives_500() -> None:
    def process_response(connection: ServerConnection, request: Request, response: Response) -> None:
        raise ValueError("bad hook")

    with captured_logs("websockets.server"):
        async with serving(echo, process_response=process_response) as server, asyncio.timeout(TIMEOUT):
            with pytest.raises(InvalidStatus) as raised:
                await ferrows.connect(uri_of(server))
            assert raised.value.response.status_code == 500


async def test_server_header_default() -> None:
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            (value,) = ws.response_headers.get_all("Server")
            assert re.fullmatch(r"Python/3\.\d+ ferrows/\S+", value), value


@pytest.mark.parametrize("value", ["MyServer/2.0", None])
async def test_server_header(value: str | None) -> None:
    async with serving(echo, server_header=value) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            assert ws.response_headers.get_all("Server") == ([value] if value else [])


@pytest.mark.parametrize(
    "extra",
    [
        {"X-One": "1", "Server": "Mine/1.0"},
        [("X-One", "1"), ("Server", "Mine/1.0")],
        Headers({"X-One": "1", "Server": "Mine/1.0"}),
        lambda connection, request: {"X-One": "1", "Server": "Mine/1.0"},
    ],
    ids=["dict", "pairs", "Headers", "callable"],
)
async def test_extra_headers(extra: Any) -> None:
    async with serving(echo, extra_headers=extra) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            assert ws.response_headers.get_all("X-One") == ["1"]
            assert ws.response_headers.get_all("Server") == ["Mine/1.0"]


async def test_extra_headers_new_name_only() -> None:
    async with serving(echo, extra_headers={"X-Absent": "1"}) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as ws:
            assert ws.response_headers["X-Absent"] == "1"
            assert len(ws.response_headers.get_all("Server")) == 1


async def test_extra_headers_callable_exception_gives_500() -> None:
    def extra(connection: ServerConnection, request: Request) -> dict[str, str]:
        raise ValueError("bad headers")

    with captured_logs("websockets.server") as records:
        async with serving(echo, extra_headers=extra) as server, asyncio.timeout(TIMEOUT):
            with pytest.raises(InvalidStatus) as raised:
                await ferrows.connect(uri_of(server))
            assert raised.value.response.status_code == 500
    assert len([r for r in records if r.levelno >= logging.ERROR]) == 1


async def test_process_request_returning_garbage_drops_connection() -> None:
    def process_request(connection: ServerConnection, request: Request) -> Any:
        return "not a response"

    with captured_logs("websockets.server") as records:
        async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
            with pytest.raises(InvalidHandshake):
                await ferrows.connect(uri_of(server))
    assert len([r for r in records if r.levelno >= logging.ERROR]) == 1


async def test_extra_headers_callable_gets_connection_and_request() -> None:
    def extra(connection: ServerConnection, request: Request) -> dict[str, str]:
        assert isinstance(connection, ServerConnection)
        return {"X-Path": request.path}

    async with serving(echo, extra_headers=extra) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server, "/p")) as ws:
            assert ws.response_headers["X-Path"] == "/p"


async def test_origins() -> None:
    origins = ["https://good.example", re.compile(r"https://[a-z]+\.trusted\.example")]
    async with serving(echo, origins=origins) as server, asyncio.timeout(TIMEOUT):
        for origin in ["https://good.example", "https://api.trusted.example"]:
            async with ferrows.connect(uri_of(server), origin=origin) as ws:
                assert ws.request_headers["Origin"] == origin
        for origin in ["https://bad.example", "https://api.trusted.example.evil", None]:
            with pytest.raises(InvalidStatus) as raised:
                await ferrows.connect(uri_of(server), origin=origin)
            assert raised.value.response.status_code == 403


async def test_origins_none_allows_missing_header() -> None:
    async with serving(echo, origins=[None]) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)):
            pass
        with pytest.raises(InvalidStatus):
            await ferrows.connect(uri_of(server), origin="https://any.example")


async def test_subprotocols() -> None:
    subprotocols: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        subprotocols.append(ws.subprotocol)

    async with serving(handler, subprotocols=["chat", "superchat"]) as server, asyncio.timeout(TIMEOUT):
        # The server's order of preference wins.
        async with ferrows.connect(uri_of(server), subprotocols=["superchat", "chat"]) as ws:
            assert ws.subprotocol == "chat"
        async with ferrows.connect(uri_of(server), subprotocols=["other", "superchat"]) as ws:
            assert ws.subprotocol == "superchat"
        for offered in [None, ["other"]]:
            with pytest.raises(InvalidStatus) as raised:
                await ferrows.connect(uri_of(server), subprotocols=offered)
            assert raised.value.response.status_code == 400
        await wait_for(lambda: len(subprotocols) == 2)
    assert subprotocols == ["chat", "superchat"]


async def test_select_subprotocol() -> None:
    def select_subprotocol(connection: Any, subprotocols: list[str]) -> str | None:
        if "refuse" in subprotocols:
            raise NegotiationError("refused")
        return subprotocols[-1] if subprotocols else None

    async with serving(echo, subprotocols=["a"], select_subprotocol=select_subprotocol) as server:
        async with asyncio.timeout(TIMEOUT):
            async with ferrows.connect(uri_of(server), subprotocols=["x", "y"]) as ws:
                assert ws.subprotocol == "y"
            async with ferrows.connect(uri_of(server)) as ws:
                assert ws.subprotocol is None
            with pytest.raises(InvalidStatus) as raised:
                await ferrows.connect(uri_of(server), subprotocols=["refuse"])
            assert raised.value.response.status_code == 400


async def test_invalid_handshake_request() -> None:
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await reader.read()
        writer.close()
        assert response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
        assert b"\r\nUpgrade: websocket\r\n" in response


# --------------------------------------------------------------- basic_auth


def authorization(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


async def check_basic_auth(server: Any, realm: str, good: tuple[str, str], username_seen: list[str]) -> None:
    async with asyncio.timeout(TIMEOUT):
        for headers in [None, authorization(good[0], "wrong"), authorization("wrong", good[1])]:
            with pytest.raises(InvalidStatus) as raised:
                await ferrows.connect(uri_of(server), additional_headers=headers)
            response = raised.value.response
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"] == f'Basic realm="{realm}", charset="UTF-8"'
        async with ferrows.connect(uri_of(server), additional_headers=authorization(*good)) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        assert username_seen == [good[0]]


def recording_echo(usernames: list[str]) -> Any:
    async def handler(ws: ServerConnection) -> None:
        usernames.append(ws.username)
        await echo(ws)

    return handler


async def test_basic_auth_decorator() -> None:
    usernames: list[str] = []
    handler = basic_auth("alice", "s3cret", realm="Area")(recording_echo(usernames))
    async with serving(handler) as server:
        await check_basic_auth(server, "Area", ("alice", "s3cret"), usernames)


async def test_basic_auth_decorator_as_process_request() -> None:
    usernames: list[str] = []
    process_request = basic_auth("alice", "s3cret")
    async with serving(recording_echo(usernames), process_request=process_request) as server:
        await check_basic_auth(server, "WebSocket", ("alice", "s3cret"), usernames)


async def test_basic_auth_decorator_runs_before_process_request() -> None:
    calls: list[str | None] = []

    def process_request(connection: ServerConnection, request: Request) -> None:
        calls.append(connection.username)

    handler = basic_auth("alice", "s3cret")(echo)
    async with serving(handler, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus):
            await ferrows.connect(uri_of(server))
        async with ferrows.connect(uri_of(server), additional_headers=authorization("alice", "s3cret")):
            pass
    assert calls == ["alice"]


@pytest.mark.parametrize(
    "credentials", [("alice", "s3cret"), [("bob", "x"), ("alice", "s3cret")]], ids=["pair", "pairs"]
)
async def test_basic_auth_credentials(credentials: Any) -> None:
    usernames: list[str] = []
    process_request = basic_auth(realm="test", credentials=credentials)
    async with serving(recording_echo(usernames), process_request=process_request) as server:
        await check_basic_auth(server, "test", ("alice", "s3cret"), usernames)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_basic_auth_check_credentials(is_async: bool) -> None:
    def check(username: str, password: str) -> bool:
        return (username, password) == ("alice", "s3cret")

    async def async_check(username: str, password: str) -> bool:
        await asyncio.sleep(0)
        return check(username, password)

    usernames: list[str] = []
    process_request = basic_auth(realm="test", check_credentials=async_check if is_async else check)
    async with serving(recording_echo(usernames), process_request=process_request) as server:
        await check_basic_auth(server, "test", ("alice", "s3cret"), usernames)


def test_basic_auth_arguments() -> None:
    with pytest.raises(ValueError):
        basic_auth(realm="test")
    with pytest.raises(ValueError):
        basic_auth(realm="test", credentials=("a", "b"), check_credentials=lambda u, p: True)
    with pytest.raises(TypeError):
        basic_auth(realm="test", credentials="alice:s3cret")
    with pytest.raises(TypeError):
        basic_auth(realm="test", credentials=[("alice",)])


async def test_closed_connections_are_freed_without_the_garbage_collector() -> None:
    """Nothing a closed connection keeps (its close exception's traceback,
    in particular) refers back to it: reference counting frees it, so a busy
    server does not wait on the cyclic collector."""
    refs: list[weakref.ref[Any]] = []

    async def handler(ws: ServerConnection) -> None:
        refs.append(weakref.ref(ws))
        async for _ in ws:
            pass
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()

    gc.collect()
    gc.disable()
    try:
        async with serving(handler) as server, asyncio.timeout(TIMEOUT):
            for _ in range(3):
                async with ferrows.connect(uri_of(server)) as client:
                    refs.append(weakref.ref(client))
                    await client.send("hello")
                with pytest.raises(ConnectionClosedOK):
                    await client.recv()
                del client
            await wait_for(lambda: not server.connections)
            await wait_for(lambda: all(ref() is None for ref in refs))
        assert len(refs) == 6
    finally:
        gc.enable()


async def test_handler_runs_when_the_client_closes_at_once() -> None:
    """Frames right behind the request, a close frame included: the
    handshake succeeded, so the handler runs and sees them."""
    seen: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(await ws.recv())
        try:
            await ws.recv()
        except ConnectionClosedOK as exc:
            seen.append(exc.rcvd.code if exc.rcvd else None)

    async with serving(handler) as server, asyncio.timeout(TIMEOUT):
        port = port_of(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(handshake_request(port) + client_frame(TEXT, b"early") + client_frame(CLOSE, close_payload(1000)))
        response = await reader.read()
        writer.close()
        assert response.startswith(b"HTTP/1.1 101 ")
        await wait_for(lambda: len(seen) == 2)
    assert seen == ["early", 1000]


# ---------------------------------------------------------------- broadcast


async def test_broadcast() -> None:
    async with serving(lambda ws: ws.wait_closed()) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as one, ferrows.connect(uri_of(server)) as two:
            await wait_for(lambda: len(server.connections) == 2)
            broadcast(server.connections, "text")
            broadcast(server.connections, b"binary")
            broadcast(server.connections, b"forced text", text=True)
            broadcast(server.connections, "forced binary", text=False)
            broadcast(websockets=server.connections, message="seed name")
            broadcast(server.connections, "positional", True)
            for ws in (one, two):
                assert [await ws.recv() for _ in range(6)] == [
                    "text",
                    b"binary",
                    "forced text",
                    b"forced binary",
                    "seed name",
                    "positional",
                ]
            with pytest.raises(TypeError):
                broadcast(server.connections, {"not": "data"})


async def test_a_lone_broadcast_is_on_the_transport_when_broadcast_returns() -> None:
    async with serving(lambda ws: ws.wait_closed(), compression=None) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)):
            await wait_for(lambda: len(server.connections) == 1)
            (connection,) = server.connections
            writes = recording_writes(connection)
            broadcast(server.connections, "now")
            assert writes == [b"\x81\x03now"]


async def test_broadcast_raises_an_exception_group_of_write_failures() -> None:
    async with serving(lambda ws: ws.wait_closed(), compression=None) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)):
            await wait_for(lambda: len(server.connections) == 1)
            (connection,) = server.connections

            def failing_write(data: Any) -> None:
                raise OSError("write failed")

            recorder = RecordingTransport(connection.transport)
            recorder.write = failing_write  # type: ignore[method-assign]
            connection.transport = recorder  # type: ignore[assignment]
            with pytest.raises(ExceptionGroup) as raised:
                broadcast(server.connections, "x", raise_exceptions=True)
            (error,) = raised.value.exceptions
            assert isinstance(error, RuntimeError) and isinstance(error.__cause__, OSError)
            connection.transport = recorder.transport


async def test_broadcasts_of_one_loop_iteration_are_written_together() -> None:
    async with serving(lambda ws: ws.wait_closed(), compression=None) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as one, ferrows.connect(uri_of(server)) as two:
            await wait_for(lambda: len(server.connections) == 2)
            first, second = sorted(server.connections, key=lambda c: c.remote_address[1] != one.local_address[1])
            writes = {c: recording_writes(c) for c in (first, second)}
            big = b"x" * COALESCE_LIMIT
            for i in range(20):
                broadcast(server.connections, f"m{i}")
            broadcast(server.connections, big)
            broadcast(server.connections, "after big")
            # The connection's own send and close keep their place.
            await first.send("direct")
            broadcast(server.connections, "last")
            await first.close()
            expected: list[Any] = [f"m{i}" for i in range(20)] + [big, "after big"]
            assert [await one.recv() for _ in range(24)] == [*expected, "direct", "last"]
            with pytest.raises(ConnectionClosedOK):
                await one.recv()
            assert [await two.recv() for _ in range(23)] == [*expected, "last"]
            # The first frame at once, as websockets writes it; the next
            # nineteen small frames in one write, then the big one at once.
            for connection in (first, second):
                assert writes[connection][0] == b"\x81\x02m0"
                assert len(writes[connection][1]) == sum(2 + len(f"m{i}") for i in range(1, 20))
                assert writes[connection][2] == b"\x82\x7e\x40\x00" + big


async def test_broadcast_skips_closed_and_fragmenting_connections() -> None:
    async with serving(lambda ws: ws.wait_closed()) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server)) as one, ferrows.connect(uri_of(server)) as two:
            await wait_for(lambda: len(server.connections) == 2)
            first, second = sorted(server.connections, key=lambda c: c.remote_address[1] != one.local_address[1])
            await first.close()
            # Still in the set given to broadcast, but closed: skipped quietly.
            broadcast([first, second], "after close", raise_exceptions=True)
            assert await two.recv() == "after close"

            release = asyncio.Event()

            async def fragments() -> Any:
                yield "frag"
                await release.wait()
                yield "ment"

            sending = asyncio.create_task(second.send(fragments()))
            await asyncio.sleep(10 * MS)
            with pytest.raises(ExceptionGroup) as raised:
                broadcast([second], "skipped", raise_exceptions=True)
            (exc,) = raised.value.exceptions
            assert isinstance(exc, ConcurrencyError)
            with captured_logs("websockets.server", logging.WARNING) as records:
                broadcast([second], "skipped")
            assert len(records) == 1
            release.set()
            await sending
            assert await two.recv() == "fragment"
            broadcast([second], "next")
            assert await two.recv() == "next"


# ----------------------------------------------------------------- timeouts


async def test_open_timeout_drops_silent_client() -> None:
    async with serving(echo, open_timeout=50 * MS) as server, asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        start = time.monotonic()
        try:
            data = await reader.read()
        except ConnectionResetError:
            data = b""
        elapsed = time.monotonic() - start
        writer.close()
        assert data == b""
        assert 40 * MS <= elapsed < 1.0
        await wait_for(lambda: not server._handlers)


async def test_open_timeout_drops_slow_request() -> None:
    async with serving(echo, open_timeout=50 * MS) as server, asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(handshake_request(port_of(server))[:20])
        try:
            data = await reader.read()
        except ConnectionResetError:
            data = b""
        writer.close()
        assert data == b""


async def test_keepalive_closes_unresponsive_peer_with_1011() -> None:
    closed: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            closed.append(exc)

    kwargs = dict(ping_interval=50 * MS, ping_timeout=50 * MS, close_timeout=50 * MS)
    async with serving(handler, **kwargs) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        start = time.monotonic()
        fin, opcode, payload = await read_frame(reader)
        assert (fin, opcode, len(payload)) == (True, PING, 4)
        # Don't answer: after ping_timeout, the server closes with 1011.
        fin, opcode, payload = await read_frame(reader)
        assert opcode == CLOSE
        assert parse_close(payload)[0] == 1011
        assert 80 * MS <= time.monotonic() - start < 1.0
        # Nor answer the close: the server aborts after close_timeout.
        assert await reader.read() == b""
        writer.close()
        await wait_for(lambda: bool(closed))
    assert closed[0].sent.code == 1011


async def test_keepalive_answered_keeps_connection_open() -> None:
    async with serving(echo, ping_interval=20 * MS, ping_timeout=20 * MS) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server), ping_interval=None) as ws:
            await wait_for(lambda: any(c.latency > 0 for c in server.connections))
            await asyncio.sleep(100 * MS)
            await ws.send("alive")
            assert await ws.recv() == "alive"


async def test_close_timeout_bounds_unresponsive_peer() -> None:
    durations: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        start = time.monotonic()
        await ws.close()
        durations.append(time.monotonic() - start)

    async with serving(handler, close_timeout=50 * MS) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        _fin, opcode, payload = await read_frame(reader)
        assert opcode == CLOSE and parse_close(payload) == (1000, "")
        # Never answer the close frame.
        assert await reader.read() == b""
        writer.close()
        await wait_for(lambda: bool(durations))
    assert 40 * MS <= durations[0] < 1.0


async def test_ping_answered_by_hand() -> None:
    """A raw client's ping gets a pong with the same payload."""
    async with serving(lambda ws: ws.wait_closed()) as server, asyncio.timeout(TIMEOUT):
        reader, writer, _ = await raw_connect(port_of(server))
        writer.write(client_frame(PING, b"raw"))
        assert await read_frame(reader) == (True, PONG, b"raw")
        writer.write(client_frame(CLOSE, close_payload(1000, "done")))
        assert await read_frame(reader) == (True, CLOSE, close_payload(1000, "done"))
        assert await reader.read() == b""
        writer.close()


@pytest.mark.parametrize("size", [1, 2**20], ids=["small", "large"])
async def test_send_loop_ends_when_peer_resets(size: int) -> None:
    """Sends that don't wait for the buffer still notice a transport that
    failed (they yield so that connection_lost runs) instead of spinning."""
    loop = asyncio.get_running_loop()
    peer: list[socket.socket] = []
    outcome: list[BaseException | str] = []

    async def handler(ws: ServerConnection) -> None:
        await wait_for(lambda: bool(peer))
        # Reset the client's socket without letting the event loop run.
        peer[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer[0].close()
        message = b"x" * size
        try:
            for _ in range(100_000):
                await ws.send(message)
            outcome.append("sends kept succeeding on a dead connection")
        except ConnectionClosedError as exc:
            outcome.append(exc)

    async with serving(handler, compression=None) as server, asyncio.timeout(TIMEOUT):
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port_of(server)))
        await loop.sock_sendall(sock, handshake_request(port_of(server)))
        response = b""
        while b"\r\n\r\n" not in response:
            response += await loop.sock_recv(sock, 4096)
        peer.append(sock)
        await wait_for(lambda: bool(outcome))
    assert isinstance(outcome[0], ConnectionClosedError), outcome[0]


async def test_serve_forever_returns_when_the_server_is_closed() -> None:
    """As websockets: ``close()`` ends ``serve_forever()`` normally."""
    async with serving(echo) as server:
        forever = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(10 * MS)
        server.close()
        async with asyncio.timeout(TIMEOUT):
            assert await forever is None


async def test_cancelling_serve_forever_closes_the_server() -> None:
    async with serving(echo) as server:
        forever = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(10 * MS)
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever
        async with asyncio.timeout(TIMEOUT):
            await server.wait_closed()


@pytest.mark.parametrize("start_serving", [True, False])
async def test_cancelling_serve_forever_at_once_closes_the_server(start_serving: bool) -> None:
    """Cancelled before it got past starting to serve, it still closes."""
    server = await serve(echo, "127.0.0.1", 0, start_serving=start_serving)
    forever = asyncio.ensure_future(server.serve_forever())
    await asyncio.sleep(0)
    forever.cancel()
    with pytest.raises(asyncio.CancelledError):
        await forever
    assert not server.is_serving()
    async with asyncio.timeout(TIMEOUT):
        await server.wait_closed()


async def test_select_subprotocol_gets_the_connection() -> None:
    seen: list[Any] = []

    def select(connection: Any, offered: Any) -> Any:
        seen.append(connection)
        return offered[-1]

    async def handler(ws: Any) -> None:
        await ws.send(ws.subprotocol)

    async with serving(handler, subprotocols=["a", "b"], select_subprotocol=select) as server:
        async with ferrows.connect(uri_of(server), subprotocols=["a", "b"]) as ws:
            assert await ws.recv() == "b"
    (connection,) = seen
    assert isinstance(connection, ServerConnection)
