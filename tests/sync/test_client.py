"""The threading client (ferrows.sync.client) against ferrows' asyncio and
threading servers and the websockets package's asyncio server: handshake
options, redirects, timeouts and the reconnect iterator."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest
import websockets.asyncio.server

import ferrows
import ferrows.asyncio.server
from ferrows.exceptions import InvalidStatus, InvalidURI, SecurityError
from ferrows.http11 import Request, Response
from ferrows.sync import ServerConnection, connect, reconnect, unix_connect
from ferrows.sync.client import ClientConnection

from .utils import (
    MS,
    TIMEOUT,
    asyncio_server,
    captured_logs,
    echo,
    raw_server,
    serving,
    uri_of,
)

COMPRESSION = pytest.mark.parametrize("compression", ["deflate", None])


async def async_echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


@COMPRESSION
def test_against_ferrows_asyncio_server(compression: str | None) -> None:
    async def start() -> Any:
        return await ferrows.asyncio.server.serve(async_echo, "127.0.0.1", 0, compression=compression)

    with (
        asyncio_server(start) as server,
        connect(uri_of(server), compression=compression) as ws,
    ):
        ws.send("text")
        assert ws.recv(TIMEOUT) == "text"
        big = b"\x07" * 500_000
        ws.send(big)
        assert ws.recv(TIMEOUT) == big
        ws.send(["a", "b"])
        assert ws.recv(TIMEOUT) == "ab"
        assert ws.ping().wait(TIMEOUT)


@COMPRESSION
def test_against_websockets_asyncio_server(compression: str | None) -> None:
    async def start() -> Any:
        return await websockets.asyncio.server.serve(async_echo, "127.0.0.1", 0, compression=compression)

    with (
        asyncio_server(start) as server,
        connect(uri_of(server), compression=compression) as ws,
    ):
        ws.send("text")
        assert ws.recv(TIMEOUT) == "text"
        big = bytes(range(256)) * 2000
        ws.send(big)
        assert ws.recv(TIMEOUT) == big
        ws.send([b"x", b"y"])
        assert ws.recv(TIMEOUT) == b"xy"
        assert ws.ping(b"p").wait(TIMEOUT)
        assert ("Sec-WebSocket-Extensions" in ws.response_headers) is (compression is not None)
    assert ws.close_code == 1000


def test_request_headers() -> None:
    with serving(echo) as server:
        with connect(
            uri_of(server),
            additional_headers={"X-Extra": "1"},
            user_agent_header="Agent/1",
            origin="https://o",  # type: ignore[arg-type]
        ) as ws:
            assert ws.request_headers["X-Extra"] == "1"
            assert ws.request_headers["User-Agent"] == "Agent/1"
            assert ws.request_headers["Origin"] == "https://o"
        with connect(uri_of(server), user_agent_header=None) as ws:
            assert "User-Agent" not in ws.request_headers


def test_connect_errors() -> None:
    with pytest.raises(InvalidURI):
        connect("http://127.0.0.1/")
    with pytest.raises(ValueError):
        connect("ws://127.0.0.1/", ssl=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        connect("ws://127.0.0.1/", compression="zstd")
    with pytest.raises(ConnectionRefusedError):
        with serving(echo) as server:
            port = server.socket.getsockname()[1]
        connect(f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT)


def test_unix_connect_refuses_path_with_sock(tmp_path: Any) -> None:
    """Refused before anything is connected: the socket is left untouched."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        with pytest.raises(ValueError, match=r"^path is incompatible with sock$"):
            unix_connect(path=str(tmp_path / "nowhere"), sock=sock)
        assert sock.fileno() >= 0


def test_open_timeout_when_server_does_not_answer() -> None:
    with raw_server("silent") as (port, _):
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            connect(f"ws://127.0.0.1:{port}", open_timeout=100 * MS)
        assert time.monotonic() - start < TIMEOUT


def test_redirect() -> None:
    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/old":
            response = connection.respond(302, "moved\n")
            response.headers["Location"] = "/new"
            return response
        return None

    with serving(lambda ws: ws.send(ws.request.path), process_request=process_request) as server:
        with captured_logs("websockets.client", logging.INFO) as records:
            with connect(uri_of(server, "/old")) as ws:
                assert ws.recv(TIMEOUT) == "/new"
        assert any("redirecting to" in r.getMessage() for r in records)


def test_redirect_loop_and_downgrade() -> None:
    def loop(connection: ServerConnection, request: Request) -> Response:
        response = connection.respond(301, "again\n")
        response.headers["Location"] = "/again"
        return response

    with serving(echo, process_request=loop) as server:
        with pytest.raises(SecurityError):
            connect(uri_of(server))


def test_legacy_false_returns_reconnect() -> None:
    with serving(echo) as server:
        connecter = connect(uri_of(server), legacy=False)
        assert isinstance(connecter, reconnect)
        with connecter as ws:
            assert isinstance(ws, ClientConnection)
            ws.send("x")
            assert ws.recv(TIMEOUT) == "x"
        with pytest.raises(RuntimeError), connecter, connecter:
            pass  # pragma: no cover


def test_reconnect_retries_then_succeeds() -> None:
    attempts: list[int] = []

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        attempts.append(1)
        if len(attempts) == 1:
            return connection.respond(503, "try later\n")
        return None

    with serving(echo, process_request=process_request) as server:
        with captured_logs("websockets.client", logging.INFO) as records:
            for ws in reconnect(uri_of(server), reconnect_delays=lambda: iter([10 * MS] * 5)):
                ws.send("made it")
                assert ws.recv(TIMEOUT) == "made it"
                break
        assert ws.closed
        assert len(attempts) == 2
        assert any("reconnecting in" in r.getMessage() for r in records)


def test_reconnect_raises_fatal_errors() -> None:
    def process_request(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(403, "never\n")

    with serving(echo, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as raised:
            for _ in reconnect(uri_of(server), reconnect_delays=lambda: iter([MS] * 5)):
                pass  # pragma: no cover
        assert raised.value.response.status_code == 403


def test_reconnect_after_connection_refused() -> None:
    with serving(echo) as server:
        port = server.socket.getsockname()[1]
    # Nothing listens any more; process_exception turns the second refusal
    # into the exception raised, so the loop ends.
    calls: list[Exception] = []

    def process_exception(exc: Exception) -> Exception | None:
        calls.append(exc)
        return None if len(calls) == 1 else exc

    with pytest.raises(ConnectionRefusedError):
        for _ in reconnect(
            f"ws://127.0.0.1:{port}",
            process_exception=process_exception,
            reconnect_delays=lambda: iter([MS] * 5),
        ):
            pass  # pragma: no cover
    assert len(calls) == 2


def test_public_imports() -> None:
    import ferrows.sync
    from ferrows.sync import (  # noqa: F401
        ClientConnection,
        Server,
        ServerConnection,
        basic_auth,
        broadcast,
        connect,
        reconnect,
        serve,
        unix_connect,
        unix_reconnect,
        unix_serve,
    )

    assert sorted(ferrows.sync.__all__) == sorted(
        [
            "ClientConnection",
            "Server",
            "ServerConnection",
            "basic_auth",
            "broadcast",
            "connect",
            "reconnect",
            "serve",
            "unix_connect",
            "unix_reconnect",
            "unix_serve",
        ]
    )
    assert ferrows.sync.serve.__module__ == "ferrows.sync.server"
    assert ferrows.sync.connect.__module__ == "ferrows.sync.client"


def test_reading_starts_after_the_handshake_request_is_written() -> None:
    """Only one thread at a time may use a TLS socket's SSL object: the
    reading thread starts once the request is written, so that a TLS 1.3
    server's session tickets are not read while the request is written."""
    alive_while_writing: list[bool] = []

    class Recording(ClientConnection):
        def _write_chunks(self, chunks: list[bytes]) -> BaseException | None:
            if not alive_while_writing:
                alive_while_writing.append(self._reader.is_alive())
            return super()._write_chunks(chunks)

    with serving(echo) as server:
        with connect(uri_of(server), create_connection=Recording) as ws:
            ws.send("hello")
            assert ws.recv(TIMEOUT) == "hello"
    assert alive_while_writing == [False]
