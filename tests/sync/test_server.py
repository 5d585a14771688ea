"""The threading server (ferrows.sync.server) with ferrows' clients and the
websockets package's clients: handshake hooks, TLS, Unix sockets, shutdown,
handler failures, basic_auth and broadcast."""

from __future__ import annotations

import asyncio
import http
import logging
import os
import pathlib
import socket
import ssl
import tempfile
import threading
import time
from typing import Any

import pytest
import trustme
import websockets.asyncio.client
import websockets.sync.client

import ferrows
import ferrows.sync.server
from ferrows.datastructures import Headers
from ferrows.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from ferrows.http11 import Request, Response
from ferrows.server import compact_idle
from ferrows.sync import (
    ServerConnection,
    basic_auth,
    broadcast,
    connect,
    serve,
    unix_connect,
    unix_serve,
)
from ferrows.sync.client import ClientConnection, reconnect

from ..frame_utils import CLOSE, TEXT, client_frame, close_payload
from .utils import (
    MS,
    TIMEOUT,
    assert_each_thread_in_order,
    captured_logs,
    echo,
    handshake_request,
    running,
    serving,
    uri_of,
)

COMPRESSION = pytest.mark.parametrize("compression", ["deflate", None])


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client TLS contexts for a certificate of 127.0.0.1."""
    ca = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client_context)
    return server_context, client_context


# ----------------------------------------------------------- interoperability


@COMPRESSION
def test_with_ferrows_asyncio_client(compression: str | None) -> None:
    async def client(uri: str) -> list[Any]:
        async with ferrows.connect(uri, compression=compression) as ws:
            await ws.send("text")
            await ws.send(b"\x00" * 100_000)
            return [await ws.recv(), len(await ws.recv())]

    with serving(echo, compression=compression) as server:
        assert asyncio.run(client(uri_of(server))) == ["text", 100_000]


@COMPRESSION
def test_with_websockets_sync_client(compression: str | None) -> None:
    with serving(echo, compression=compression) as server:
        with websockets.sync.client.connect(uri_of(server), compression=compression) as ws:
            ws.send("text")
            assert ws.recv(TIMEOUT) == "text"
            ws.send(["frag", "ments"])
            assert ws.recv(TIMEOUT) == "fragments"
            big = os.urandom(300_000)
            ws.send(big)
            assert ws.recv(TIMEOUT) == big
            if compression:
                assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
            else:
                assert "Sec-WebSocket-Extensions" not in ws.response.headers


@COMPRESSION
def test_with_websockets_asyncio_client(compression: str | None) -> None:
    async def client(uri: str) -> list[Any]:
        async with websockets.asyncio.client.connect(uri, compression=compression) as ws:
            await ws.send("text")
            await ws.send(b"bin")
            result = [await ws.recv(), await ws.recv()]
            await ws.close(1001)
            return result

    with serving(echo, compression=compression) as server:
        assert asyncio.run(client(uri_of(server))) == ["text", b"bin"]


def test_tls(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls
    with serving(echo, ssl=server_context) as server:
        uri = uri_of(server, scheme="wss")
        with connect(uri, ssl=client_context) as ws:
            ws.send("secure")
            assert ws.recv(TIMEOUT) == "secure"
            big = os.urandom(200_000)
            ws.send(big)
            assert ws.recv(TIMEOUT) == big
            assert isinstance(ws.socket, ssl.SSLSocket)
        with websockets.sync.client.connect(uri, ssl=client_context) as ws2:
            ws2.send("interop")
            assert ws2.recv(TIMEOUT) == "interop"


def test_tls_default_context_rejects_unknown_ca(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, _ = tls
    with serving(echo, ssl=server_context) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(uri_of(server, scheme="wss"))


def test_unix_socket() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        path = os.path.join(directory, "ws.sock")
        with running(unix_serve(echo, path)) as server:
            assert server.socket.family == socket.AF_UNIX
            with unix_connect(path) as ws:
                ws.send("over unix")
                assert ws.recv(TIMEOUT) == "over unix"
                assert ws.request is not None and ws.request.headers["Host"] == "localhost"


def test_unix_socket_path_like_and_reconnect() -> None:
    """A pathlib.Path names the socket on both sides, as the PathLike
    annotations say; ``legacy=False`` gives a reconnect object that
    connects on ``with``."""
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        path = pathlib.Path(directory) / "ws.sock"
        with running(unix_serve(echo, path)):
            connecter = unix_connect(path, legacy=False)
            assert isinstance(connecter, reconnect)
            with connecter as ws:
                ws.send("by path")
                assert ws.recv(TIMEOUT) == "by path"
            with unix_connect(path, legacy=True) as ws:
                assert isinstance(ws, ClientConnection)


# ---------------------------------------------------------------- handshake


def test_server_header_and_extra_headers() -> None:
    def extra(connection: ServerConnection, request: Request) -> dict[str, str]:
        assert isinstance(connection, ServerConnection)
        return {"X-Path": request.path, "Server": "Mine/1.0"}

    with (
        serving(echo, extra_headers=extra) as server,
        connect(uri_of(server, "/p")) as ws,
    ):
        assert ws.response_headers.get_all("Server") == ["Mine/1.0"]
        assert ws.response_headers["X-Path"] == "/p"
    with serving(echo, server_header=None) as server, connect(uri_of(server)) as ws:
        assert "Server" not in ws.response_headers
    with serving(echo, server_header="Custom") as server, connect(uri_of(server)) as ws:
        assert ws.response_headers["Server"] == "Custom"


def test_process_request_rejects() -> None:
    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/forbidden":
            return connection.respond(http.HTTPStatus.FORBIDDEN, "No\n")
        return None

    with serving(echo, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as raised:
            connect(uri_of(server, "/forbidden"))
        assert raised.value.response.status_code == 403
        assert raised.value.response.body == b"No\n"
        with connect(uri_of(server, "/ok")) as ws:
            ws.send("ok")
            assert ws.recv(TIMEOUT) == "ok"


def test_process_response_edits_and_replaces() -> None:
    def process_response(connection: ServerConnection, request: Request, response: Response) -> Response | None:
        if request.path == "/replace":
            return Response(404, "Not Found", Headers(), b"gone")
        response.headers["X-Added"] = "1"
        return None

    with serving(echo, process_response=process_response) as server:
        with connect(uri_of(server)) as ws:
            assert ws.response_headers["X-Added"] == "1"
        with pytest.raises(InvalidStatus) as raised:
            connect(uri_of(server, "/replace"))
        assert raised.value.response.status_code == 404


def test_hook_exception_gives_500_and_one_log() -> None:
    def process_request(connection: ServerConnection, request: Request) -> None:
        raise ValueError("hook bug")

    with captured_logs("websockets.server") as records:
        with serving(echo, process_request=process_request) as server:
            with pytest.raises(InvalidStatus) as raised:
                connect(uri_of(server))
            assert raised.value.response.status_code == 500
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None


def test_select_subprotocol_receives_connection() -> None:
    seen: list[Any] = []

    def select(connection: ServerConnection, offered: Any) -> str | None:
        seen.append(connection)
        return "b" if "b" in offered else None

    with serving(echo, subprotocols=["a", "b"], select_subprotocol=select) as server:
        with connect(uri_of(server), subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"
    assert len(seen) == 1 and isinstance(seen[0], ServerConnection)


def test_origins() -> None:
    with serving(echo, origins=["https://good"]) as server:
        with connect(uri_of(server), origin="https://good") as ws:  # type: ignore[arg-type]
            assert ws.subprotocol is None
        with pytest.raises(InvalidStatus) as raised:
            connect(uri_of(server), origin="https://evil")  # type: ignore[arg-type]
        assert raised.value.response.status_code == 403


def test_open_timeout_drops_silent_client() -> None:
    with serving(echo, open_timeout=100 * MS) as server:
        with socket.create_connection(("127.0.0.1", server.socket.getsockname()[1]), timeout=TIMEOUT) as raw:
            start = time.monotonic()
            try:
                data = raw.recv(1024)
            except ConnectionResetError:
                data = b""
            assert data == b""
            assert 80 * MS <= time.monotonic() - start < TIMEOUT


def test_bad_request_gets_an_http_error() -> None:
    with serving(echo) as server:
        port = server.socket.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
            raw.sendall(handshake_request(port).replace(b"Upgrade: websocket\r\n", b""))
            response = b""
            while chunk := raw.recv(4096):
                response += chunk
        assert response.startswith(b"HTTP/1.1 426 ")


# ------------------------------------------------------------------ handler


def test_handler_runs_when_the_client_closes_at_once() -> None:
    """A client may send frames, its close frame included, right behind its
    request: the handshake succeeded, so the handler runs and sees them (as
    with asyncio), however fast the reading thread processes the close."""
    seen: list[Any] = []

    def handler(ws: ServerConnection) -> None:
        seen.append(ws.recv(TIMEOUT))
        try:
            ws.recv(TIMEOUT)
        except ConnectionClosedOK as exc:
            seen.append(exc.rcvd.code if exc.rcvd else None)

    with serving(handler) as server:
        port = server.socket.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
            raw.sendall(
                handshake_request(port) + client_frame(TEXT, b"early") + client_frame(CLOSE, close_payload(1000))
            )
            response = b""
            while chunk := raw.recv(4096):
                response += chunk
        assert response.startswith(b"HTTP/1.1 101 ")
        deadline = time.monotonic() + TIMEOUT
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(MS)
    assert seen == ["early", 1000]


def test_handler_exception_closes_1011_and_logs_once() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.recv()
        raise RuntimeError("handler bug")

    with captured_logs("websockets.server") as records:
        with serving(handler) as server, connect(uri_of(server)) as ws:
            ws.send("trigger")
            with pytest.raises(ConnectionClosedError) as raised:
                ws.recv(TIMEOUT)
            assert raised.value.rcvd is not None and raised.value.rcvd.code == 1011
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].getMessage() == "connection handler failed"
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError


def test_handler_return_closes_1000() -> None:
    with serving(lambda ws: ws.send("bye")) as server, connect(uri_of(server)) as ws:
        assert ws.recv(TIMEOUT) == "bye"
        with pytest.raises(ConnectionClosedOK):
            ws.recv(TIMEOUT)
        assert ws.close_code == 1000


# ----------------------------------------------------------------- shutdown


def test_shutdown_closes_open_connections_with_1001() -> None:
    finished: list[str] = []

    def handler(ws: ServerConnection) -> None:
        try:
            for message in ws:
                ws.send(message)
        finally:
            finished.append("done")

    server = serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    clients = [connect(uri_of(server)) for _ in range(3)]
    for ws in clients:
        ws.send("hi")
        assert ws.recv(TIMEOUT) == "hi"
    deadline = time.monotonic() + TIMEOUT
    while len(server.connections) < 3 and time.monotonic() < deadline:
        time.sleep(MS)
    assert len(server.connections) == 3 and server.websockets == server.connections
    server.shutdown()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert finished == ["done"] * 3
    assert server.connections == set()
    for ws in clients:
        with pytest.raises(ConnectionClosedOK):
            ws.recv(TIMEOUT)
        assert ws.close_code == 1001
    server.shutdown()  # idempotent


def test_shutdown_custom_code_and_without_serving() -> None:
    server = serve(echo, "127.0.0.1", 0)
    server.shutdown(code=1012, reason="restart")  # never served: returns at once
    with serving(echo) as server:
        ws = connect(uri_of(server))
        server.shutdown(code=1012, reason="restart")
        with pytest.raises(ConnectionClosedError) as raised:
            ws.recv(TIMEOUT)
        assert raised.value.rcvd is not None
        assert (raised.value.rcvd.code, raised.value.rcvd.reason) == (1012, "restart")


def test_shutdown_answers_503_to_pending_handshake() -> None:
    in_hook = threading.Event()
    release = threading.Event()

    def process_request(connection: ServerConnection, request: Request) -> None:
        in_hook.set()
        # The hook outlives the listening socket: the shutdown is under way.
        assert connection.server.socket_closed.wait(TIMEOUT)
        release.wait(TIMEOUT)

    server = serve(echo, "127.0.0.1", 0, process_request=process_request)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            connect(uri_of(server))
        except BaseException as exc:
            errors.append(exc)

    client_thread = threading.Thread(target=client)
    client_thread.start()
    assert in_hook.wait(TIMEOUT)
    shutdown_thread = threading.Thread(target=server.shutdown)
    shutdown_thread.start()
    assert server.socket_closed.wait(TIMEOUT)
    release.set()
    for t in (client_thread, shutdown_thread, thread):
        t.join(TIMEOUT)
        assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], InvalidStatus)
    assert errors[0].response.status_code == 503


def test_shutdown_without_closing_connections_waits_for_handlers() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send(ws.recv())

    server = serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    ws = connect(uri_of(server))
    shutdown_thread = threading.Thread(target=server.shutdown, kwargs={"close_connections": False})
    shutdown_thread.start()
    time.sleep(30 * MS)
    assert shutdown_thread.is_alive()  # the handler is still running
    ws.send("last")
    assert ws.recv(TIMEOUT) == "last"
    shutdown_thread.join(TIMEOUT)
    thread.join(TIMEOUT)
    assert not shutdown_thread.is_alive() and not thread.is_alive()
    ws.close()


def test_server_fileno_and_context_manager() -> None:
    server = serve(echo, "127.0.0.1", 0)
    with server:
        assert server.fileno() == server.socket.fileno()
    assert server.socket.fileno() == -1


# --------------------------------------------------------------- basic_auth


def test_basic_auth_decorator_form() -> None:
    @basic_auth("admin", "secret", realm="Test")
    def handler(ws: ServerConnection) -> None:
        ws.send(ws.username or "")

    with serving(handler) as server:
        with connect(uri_of(server).replace("ws://", "ws://admin:secret@")) as ws:
            assert ws.recv(TIMEOUT) == "admin"
        with pytest.raises(InvalidStatus) as raised:
            connect(uri_of(server).replace("ws://", "ws://admin:wrong@"))
        assert raised.value.response.status_code == 401
        assert raised.value.response.headers["WWW-Authenticate"] == 'Basic realm="Test", charset="UTF-8"'
        with pytest.raises(InvalidStatus):
            connect(uri_of(server))


@pytest.mark.parametrize(
    "auth",
    [
        {"credentials": ("alice", "pw")},
        {"credentials": [("alice", "pw"), ("bob", "pw2")]},
        {"check_credentials": lambda u, p: (u, p) == ("alice", "pw")},
    ],
    ids=["pair", "pairs", "check"],
)
def test_basic_auth_hook_form(auth: dict[str, Any]) -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send(ws.username or "")

    with serving(handler, process_request=basic_auth(realm="r", **auth)) as server:
        with connect(uri_of(server).replace("ws://", "ws://alice:pw@")) as ws:
            assert ws.recv(TIMEOUT) == "alice"
        with pytest.raises(InvalidStatus) as raised:
            connect(uri_of(server).replace("ws://", "ws://alice:nope@"))
        assert raised.value.response.status_code == 401


def test_basic_auth_hook_form_refuses_async_check() -> None:
    async def check(username: str, password: str) -> bool:  # pragma: no cover - never called
        return True

    # The threading server would get a truthy coroutine object and let
    # everyone in: refuse it up front.
    with pytest.raises(TypeError):
        basic_auth(realm="r", check_credentials=check)
    with pytest.raises(ValueError):
        basic_auth(realm="r")


# ---------------------------------------------------------------- broadcast


@COMPRESSION
def test_broadcast(compression: str | None) -> None:
    ready = threading.Barrier(4, timeout=TIMEOUT)

    def handler(ws: ServerConnection) -> None:
        ready.wait()
        ws.recv()

    with serving(handler, compression=compression) as server:
        clients = [connect(uri_of(server), compression=compression) for _ in range(3)]
        ready.wait()
        broadcast(server.connections, "to all")
        broadcast(server.connections, b"bytes", text=True)
        broadcast(websockets=server.connections, message=b"\x01")
        for ws in clients:
            assert ws.recv(TIMEOUT) == "to all"
            assert ws.recv(TIMEOUT) == "bytes"
            assert ws.recv(TIMEOUT) == b"\x01"
            ws.close()
        with pytest.raises(TypeError):
            broadcast(server.connections, 42)  # type: ignore[arg-type]
        # Closed connections are skipped silently.
        broadcast(list(server._all), "nobody", raise_exceptions=True)


def test_idle_connections_give_back_compression_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """The accepting thread sweeps connections as the asyncio server does:
    idle ones drop their zlib state, and the next messages still decode on
    a peer that kept its whole history (websockets' client)."""
    monkeypatch.setattr(ferrows.sync.server, "COMPACT_INTERVAL", 0.01)
    freed: list[int] = []
    monkeypatch.setattr(ferrows.sync.server, "compact_idle", lambda conns: freed.append(compact_idle(conns)))
    text = "the quick brown fox jumps over the lazy dog; " * 50
    with serving(echo) as server:
        with websockets.sync.client.connect(uri_of(server)) as client:
            assert "permessage-deflate" in client.response.headers["Sec-WebSocket-Extensions"]
            for i in range(4):
                before = sum(freed)
                client.send(f"{i}: {text}")
                assert client.recv(TIMEOUT) == f"{i}: {text}"
                deadline = time.monotonic() + TIMEOUT
                while sum(freed) == before and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert sum(freed) > before, "the idle connection was not compacted"


def test_the_sweep_visits_only_connections_with_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ferrows.sync.server, "COMPACT_INTERVAL", 0.01)
    swept: list[set[Any]] = []
    monkeypatch.setattr(ferrows.sync.server, "compact_idle", lambda conns: swept.append(set(conns)) or 0)
    with serving(echo) as server:
        with connect(uri_of(server), compression=None), websockets.sync.client.connect(uri_of(server)) as compressed:
            compressed.send("hello")
            assert compressed.recv(TIMEOUT) == "hello"
            (deflating,) = [c for c in server.connections if c.protocol.extensions]
            swept.clear()
            deadline = time.monotonic() + TIMEOUT
            while len(swept) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(swept) >= 3 and all(visited == {deflating} for visited in swept)


def test_tls_senders_and_reader_take_turns(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """Over TLS, four threads send while the reading thread receives the
    echoes: every byte arrives, as the SSL object is used by one thread at a
    time and writes wait for the socket outside the lock."""
    server_context, client_context = tls
    threads_count, per_thread = 4, 30

    def payload(tid: int, i: int) -> bytes:
        return bytes([tid, i]) * (50_000 if i % 5 == 0 else 100 + i)

    with serving(echo, ssl=server_context, compression=None) as server:
        with connect(uri_of(server, scheme="wss"), ssl=client_context, max_size=None) as ws:
            errors: list[BaseException] = []

            def sender(tid: int) -> None:
                try:
                    for i in range(per_thread):
                        ws.send(payload(tid, i))
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            senders = [threading.Thread(target=sender, args=(tid,)) for tid in range(threads_count)]
            for thread in senders:
                thread.start()
            received = [ws.recv(TIMEOUT) for _ in range(threads_count * per_thread)]
            for thread in senders:
                thread.join(TIMEOUT)
            assert errors == []
    assert_each_thread_in_order(received, threads_count, payload)


def test_tls_sender_waits_for_a_paused_reader(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """A TLS sender facing a peer that stopped reading waits for the socket
    without holding the SSL object, and resumes when the peer reads."""
    server_context, client_context = tls
    count, size = 40, 100_000
    messages = [bytes([i]) * size for i in range(count)]

    def producer(ws: ServerConnection) -> None:
        for message in messages:
            ws.send(message)
        ws.recv(TIMEOUT)

    with serving(producer, ssl=server_context, compression=None) as server:
        with connect(uri_of(server, scheme="wss"), ssl=client_context, max_queue=(2, 1), max_size=None) as ws:
            # Paused after two messages: the server's writes fill the socket
            # buffers and its sender has to wait.
            time.sleep(50 * MS)
            assert [ws.recv(TIMEOUT) for _ in range(count)] == messages
            ws.send("done")
