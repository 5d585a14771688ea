"""Tests for ferrows.asyncio.client: connect, unix_connect, ClientConnection."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import os
import pathlib
import re
import tempfile
import time
import uuid
from typing import Any

import pytest

import ferrows
from ferrows import Headers, Request, Response, State, unix_serve
from ferrows.asyncio.client import ClientConnection, connect, unix_connect
from ferrows.exceptions import (
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    SecurityError,
)

from .utils import (
    MS,
    TIMEOUT,
    captured_logs,
    echo,
    port_of,
    serving,
    stream_server,
    uri_of,
    wait_for,
)


def fast_retries() -> Any:
    return itertools.repeat(10 * MS)


def recording(requests: list[Request]) -> Any:
    def process_request(connection: Any, request: Request) -> None:
        requests.append(request)

    return process_request


# ----------------------------------------------------------------- connect


async def test_async_with() -> None:
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        async with connect(uri_of(server)) as ws:
            assert isinstance(ws, ClientConnection)
            await ws.send("hello")
            assert await ws.recv() == "hello"
        assert ws.closed
        assert ws.close_code == 1000


async def test_await() -> None:
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        ws = await connect(uri_of(server))
        try:
            assert ws.state is State.OPEN
            await ws.send(b"hello")
            assert await ws.recv() == b"hello"
        finally:
            await ws.close()
        assert ws.state is State.CLOSED


async def test_enter_twice() -> None:
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        connecting = connect(uri_of(server))
        async with connecting:
            with pytest.raises(RuntimeError):
                async with connecting:
                    pass


async def test_client_connection_properties() -> None:
    async with serving(echo) as server, asyncio.timeout(TIMEOUT):
        async with connect(uri_of(server, "/a/b?c=d")) as ws:
            assert ws.closed is False
            assert ws.local_address[0] == "127.0.0.1"
            assert ws.remote_address == ("127.0.0.1", port_of(server))
            assert ws.subprotocol is None
            assert isinstance(ws.request, Request)
            assert ws.request.path == "/a/b?c=d"
            assert ws.request_headers is ws.request.headers
            assert ws.request_headers["Host"] == f"127.0.0.1:{port_of(server)}"
            assert isinstance(ws.response, Response)
            assert ws.response.status_code == 101
            assert ws.response_headers is ws.response.headers
            assert ws.state is State.OPEN
            assert ws.close_code is None and ws.close_reason is None
            assert ws.latency == 0.0
            assert isinstance(ws.id, uuid.UUID)
            assert ws.logger.name == "websockets.client"
            (server_side,) = server.connections
            assert server_side.remote_address == ws.local_address
        assert ws.closed


async def test_invalid_uri() -> None:
    for uri in ["http://127.0.0.1/", "not a uri", "ws://"]:
        with pytest.raises(InvalidURI):
            async with asyncio.timeout(TIMEOUT):
                await connect(uri)


async def test_invalid_compression() -> None:
    with pytest.raises(ValueError):
        connect("ws://127.0.0.1/", compression="bogus")


async def test_connection_refused() -> None:
    async with serving(echo) as server:
        uri = uri_of(server)
    with pytest.raises(OSError):
        async with asyncio.timeout(TIMEOUT):
            await connect(uri)


async def test_invalid_status() -> None:
    def process_request(connection: Any, request: Request) -> Response:
        return connection.respond(404, "Not here.\n")

    async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as raised:
            await connect(uri_of(server))
        assert raised.value.response.status_code == 404
        assert raised.value.response.body == b"Not here.\n"
        assert "404" in str(raised.value)


async def test_not_a_websocket_server() -> None:
    async def http_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    async with asyncio.timeout(TIMEOUT):
        async with stream_server(http_server) as server:
            with pytest.raises(InvalidStatus) as raised:
                await connect(f"ws://127.0.0.1:{port_of(server)}/")
            assert raised.value.response.status_code == 200
            assert raised.value.response.body == b"OK"


async def test_garbage_response() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")

    async with asyncio.timeout(TIMEOUT):
        async with stream_server(garbage) as server:
            with pytest.raises(InvalidHandshake):
                await connect(f"ws://127.0.0.1:{port_of(server)}/")


async def test_open_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with asyncio.timeout(TIMEOUT):
        async with stream_server(silent) as server:
            start = time.monotonic()
            with pytest.raises(TimeoutError) as raised:
                await connect(f"ws://127.0.0.1:{port_of(server)}/", open_timeout=50 * MS)
            assert 40 * MS <= time.monotonic() - start < 1.0
            assert "opening handshake" in str(raised.value)


# ----------------------------------------------------------------- headers


async def test_additional_headers() -> None:
    requests: list[Request] = []
    async with serving(echo, process_request=recording(requests)) as server, asyncio.timeout(TIMEOUT):
        for headers in [{"X-A": "1"}, [("X-A", "1")], Headers(X_A="ignored", **{"X-A": "1"})]:
            async with connect(uri_of(server), additional_headers=headers):
                pass
    assert [r.headers.get_all("X-A") for r in requests] == [["1"]] * 3


async def test_extra_headers_is_a_deprecated_alias() -> None:
    requests: list[Request] = []
    async with serving(echo, process_request=recording(requests)) as server, asyncio.timeout(TIMEOUT):
        with pytest.warns(DeprecationWarning):
            connecting = connect(uri_of(server), extra_headers={"X-Old": "1"}, additional_headers={"X-New": "2"})
        async with connecting:
            pass
    assert requests[0].headers["X-Old"] == "1"
    assert requests[0].headers["X-New"] == "2"


async def test_user_agent_header() -> None:
    requests: list[Request] = []
    async with serving(echo, process_request=recording(requests)) as server, asyncio.timeout(TIMEOUT):
        async with connect(uri_of(server)):
            pass
        async with connect(uri_of(server), user_agent_header="MyClient/1.0"):
            pass
        async with connect(uri_of(server), user_agent_header=None):
            pass
    assert re.fullmatch(r"Python/3\.\d+ ferrows/\S+", requests[0].headers["User-Agent"])
    assert requests[1].headers.get_all("User-Agent") == ["MyClient/1.0"]
    assert requests[2].headers.get_all("User-Agent") == []


async def test_origin() -> None:
    requests: list[Request] = []
    async with serving(echo, process_request=recording(requests)) as server, asyncio.timeout(TIMEOUT):
        async with connect(uri_of(server), origin="https://example.com"):
            pass
        async with connect(uri_of(server)):
            pass
    assert requests[0].headers["Origin"] == "https://example.com"
    assert "Origin" not in requests[1].headers


async def test_credentials_in_uri() -> None:
    requests: list[Request] = []
    async with serving(echo, process_request=recording(requests)) as server, asyncio.timeout(TIMEOUT):
        async with connect(f"ws://alice:p%40ss@127.0.0.1:{port_of(server)}/"):
            pass
        assert requests[0].headers["Host"] == f"127.0.0.1:{port_of(server)}"
    expected = "Basic " + base64.b64encode(b"alice:p@ss").decode()
    assert requests[0].headers["Authorization"] == expected


async def test_credentials_in_uri_with_basic_auth() -> None:
    process_request = ferrows.basic_auth(realm="r", credentials=("alice", "s3cret"))
    async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
        async with connect(f"ws://alice:s3cret@127.0.0.1:{port_of(server)}/") as ws:
            await ws.send("in")
            assert await ws.recv() == "in"
        with pytest.raises(InvalidStatus) as raised:
            await connect(f"ws://alice:wrong@127.0.0.1:{port_of(server)}/")
        assert raised.value.response.status_code == 401


# ------------------------------------------------------------- subprotocols


async def test_subprotocols() -> None:
    async with serving(echo, subprotocols=["v2", "v1"]) as server, asyncio.timeout(TIMEOUT):
        async with connect(uri_of(server), subprotocols=["v1"]) as ws:
            assert ws.subprotocol == "v1"
            assert ws.request_headers["Sec-WebSocket-Protocol"] == "v1"
        async with connect(uri_of(server), subprotocols=["v1", "v2"]) as ws:
            assert ws.subprotocol == "v2"


async def test_subprotocol_not_offered_is_refused() -> None:
    def process_response(connection: Any, request: Request, response: Response) -> None:
        response.headers["Sec-WebSocket-Protocol"] = "unexpected"

    async with serving(echo, process_response=process_response) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(NegotiationError):
            await connect(uri_of(server), subprotocols=["chat"])
        with pytest.raises(NegotiationError):
            await connect(uri_of(server))


def test_invalid_subprotocols() -> None:
    with pytest.raises(ValueError):
        connect("ws://127.0.0.1/", subprotocols=["not a token"])


# ---------------------------------------------------------------- redirects


def redirect_to(location: Any, status: int = 302) -> Any:
    def process_request(connection: Any, request: Request) -> Response:
        target = location() if callable(location) else location
        return Response(status, "Redirect", Headers({"Location": target}))

    return process_request


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect(status: int) -> None:
    async def hello(ws: Any) -> None:
        await ws.send(f"hello {ws.request.path}")

    async with serving(hello) as target, asyncio.timeout(TIMEOUT):
        async with serving(echo, process_request=redirect_to(uri_of(target, "/landed"), status)) as origin:
            async with connect(uri_of(origin)) as ws:
                assert ws.remote_address[1] == port_of(target)
                assert await ws.recv() == "hello /landed"


async def test_relative_redirect() -> None:
    def process_request(connection: Any, request: Request) -> Response | None:
        if request.path == "/old":
            return Response(302, "Found", Headers({"Location": "/new"}))
        return None

    async def path(ws: Any) -> None:
        await ws.send(ws.request.path)

    async with serving(path, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
        async with connect(uri_of(server, "/old")) as ws:
            assert await ws.recv() == "/new"


async def test_same_origin_redirect_keeps_uri_credentials() -> None:
    requests: list[Request] = []

    def process_request(connection: Any, request: Request) -> Response | None:
        requests.append(request)
        if request.path == "/old":
            return Response(302, "Found", Headers({"Location": "/new"}))
        return None

    with captured_logs("websockets.client", logging.INFO) as records:
        async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
            async with connect(f"ws://alice:p%40ss@127.0.0.1:{port_of(server)}/old") as ws:
                assert ws.request.path == "/new"
    expected = "Basic " + base64.b64encode(b"alice:p@ss").decode()
    assert [r.headers.get("Authorization") for r in requests] == [expected, expected]
    # The credentials don't end up in the logs.
    messages = [r.getMessage() for r in records]
    assert any("redirecting" in m for m in messages)
    assert not any("p%40ss" in m or "p@ss" in m for m in messages)


async def test_cross_origin_redirect_drops_credentials() -> None:
    requests: list[Request] = []
    async with serving(echo, process_request=recording(requests)) as target, asyncio.timeout(TIMEOUT):
        async with serving(echo, process_request=redirect_to(uri_of(target))) as origin:
            headers = {"Authorization": "Bearer secret", "Cookie": "session=1", "X-Keep": "yes"}
            async with connect(uri_of(origin), additional_headers=headers):
                pass
            async with connect(f"ws://alice:s3cret@127.0.0.1:{port_of(origin)}/"):
                pass
    assert len(requests) == 2
    for request in requests:
        assert "Authorization" not in request.headers
        assert "Cookie" not in request.headers
    assert requests[0].headers["X-Keep"] == "yes"


@pytest.mark.parametrize("redirects, succeeds", [(10, True), (11, False)])
async def test_too_many_redirects(redirects: int, succeeds: bool) -> None:
    count = 0

    def process_request(connection: Any, request: Request) -> Response | None:
        nonlocal count
        if count < redirects:
            count += 1
            return Response(302, "Found", Headers({"Location": f"/{count}"}))
        return None

    async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
        if succeeds:
            async with connect(uri_of(server)) as ws:
                assert ws.request.path == f"/{redirects}"
        else:
            with pytest.raises(SecurityError):
                await connect(uri_of(server))
            assert count == 11


async def test_redirect_without_location_is_invalid_status() -> None:
    def process_request(connection: Any, request: Request) -> Response:
        return Response(302, "Found", Headers())

    async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus):
            await connect(uri_of(server))


async def test_process_redirect_decides_whether_to_follow() -> None:
    """connect.process_redirect is websockets' policy hook: a subclass that
    answers with the exception stops at the redirect; the default follows it."""

    class NoRedirects(connect):
        def process_redirect(self, exc: Exception) -> Exception | str:
            assert isinstance(super().process_redirect(exc), str)
            return exc

    class Refuse(connect):
        def process_redirect(self, exc: Exception) -> Exception | str:
            return PermissionError("redirects are not allowed here")

    async with serving(echo) as target, asyncio.timeout(TIMEOUT):
        async with serving(echo, process_request=redirect_to(uri_of(target, "/landed"))) as origin:
            with pytest.raises(InvalidStatus) as raised:
                await NoRedirects(uri_of(origin))
            assert raised.value.response.headers["Location"] == uri_of(target, "/landed")
            with pytest.raises(PermissionError) as refused:
                await Refuse(uri_of(origin))
            assert isinstance(refused.value.__cause__, InvalidStatus)
            # What the default policy answers for a non-redirect.
            other = ValueError("not a redirect")
            assert connect(uri_of(origin)).process_redirect(other) is other


# ------------------------------------------------------------- reconnection


async def test_reconnect_after_failed_attempt() -> None:
    """The first attempts fail (nothing listens); then the server starts."""
    async with serving(echo) as probe:
        port = port_of(probe)
    attempts = 0

    def retries() -> Any:
        nonlocal attempts
        for _ in itertools.count():
            attempts += 1
            yield 10 * MS

    async with asyncio.timeout(TIMEOUT):
        iterating = connect(f"ws://127.0.0.1:{port}/", reconnect_delays=retries).__aiter__()
        getting = asyncio.ensure_future(iterating.__anext__())
        await wait_for(lambda: attempts >= 2)
        assert not getting.done()
        server = await ferrows.serve(echo, "127.0.0.1", port)
        try:
            ws = await getting
            await ws.send("finally")
            assert await ws.recv() == "finally"
            await iterating.aclose()
            assert ws.closed
        finally:
            server.close()
            await server.wait_closed()


async def test_reconnect_after_server_restart() -> None:
    counter = itertools.count()

    async def greet(ws: Any) -> None:
        await ws.send(f"connection {next(counter)}")
        await ws.wait_closed()

    received = []
    async with asyncio.timeout(TIMEOUT):
        server = await ferrows.serve(greet, "127.0.0.1", 0)
        port = port_of(server)
        async for ws in connect(f"ws://127.0.0.1:{port}/", reconnect_delays=fast_retries):
            try:
                received.append(await ws.recv())
                if len(received) == 3:
                    break
                # Restart the server on the same port.
                server.close()
                await ws.wait_closed()
                assert ws.close_code == 1001
                await server.wait_closed()
                server = await ferrows.serve(greet, "127.0.0.1", port)
                await ws.recv()
            except ConnectionClosedOK:
                continue
        # Leaving the loop finalizes the generator, which closes ws.
        await ws.wait_closed()
        assert ws.close_code == 1000
        server.close()
        await server.wait_closed()
    assert received == ["connection 0", "connection 1", "connection 2"]


async def test_reconnect_retries_503_and_raises_403() -> None:
    statuses = iter([503, 500, 403])

    def process_request(connection: Any, request: Request) -> Response:
        return connection.respond(next(statuses), "No.\n")

    async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as raised:
            async for _ in connect(uri_of(server), reconnect_delays=fast_retries):
                pytest.fail("connected")
        assert raised.value.response.status_code == 403


async def test_reconnect_process_exception() -> None:
    def process_request(connection: Any, request: Request) -> Response:
        return connection.respond(403, "No.\n")

    def process_exception(exc: Exception) -> Exception | None:
        return ValueError("replaced")

    async with serving(echo, process_request=process_request) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(ValueError, match="replaced") as raised:
            async for _ in connect(uri_of(server), process_exception=process_exception):
                pytest.fail("connected")
        assert isinstance(raised.value.__cause__, InvalidStatus)


# ---------------------------------------------------------------------- unix


async def test_unix_connect() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "ws.sock")
        async with asyncio.timeout(TIMEOUT), unix_serve(echo, path) as server:
            async with unix_connect(path) as ws:
                assert ws.request_headers["Host"] == "localhost"
                await ws.send("over unix")
                assert await ws.recv() == "over unix"
                (server_side,) = server.connections
                assert server_side.local_address == path
            async with unix_connect(path, uri="ws://example.com/chat") as ws:
                assert ws.request.path == "/chat"
                assert ws.request_headers["Host"] == "example.com"


async def test_unix_socket_path_like() -> None:
    """A pathlib.Path names the socket on both sides, as the PathLike
    annotations say."""
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "ws.sock"
        async with asyncio.timeout(TIMEOUT), unix_serve(echo, path):
            async with unix_connect(path) as ws:
                await ws.send("by path")
                assert await ws.recv() == "by path"
