"""ferrows.asgi as part of a uvicorn server: refused upgrades, the Denial
Response extension, shutdown, TLS, the log lines and the command line."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trustme
import websockets
from websockets.exceptions import InvalidStatus

import ferrows
import ferrows.sync.client

from ..asyncio.utils import handshake_request
from .utils import TIMEOUT, echo_app, port_of, serving, uri_of, wait_for


async def http_exchange(port: int, request: bytes) -> bytes:
    """Sends ``request`` and returns everything the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    try:
        return await reader.read()
    finally:
        writer.close()


async def test_invalid_upgrade_is_answered_without_the_app() -> None:
    called: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        port = port_of(server)
        request = handshake_request(port).replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8")
        answer = await http_exchange(port, request)
    assert answer.startswith(b"HTTP/1.1 426 ")
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in answer
    assert b"\r\nserver: uvicorn\r\n" in answer
    assert called == []


def denial_app(*messages: dict[str, Any]) -> Any:
    """An app that answers the upgrade with ``messages`` and records the
    event it receives after them."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for message in messages:
            await send(message)
        app.after = await receive()  # type: ignore[attr-defined]

    return app


async def test_denial_response_buffered() -> None:
    """Without a length from the app, the body parts are sent together with
    a Content-Length and uvicorn's headers."""
    app = denial_app(
        {"type": "websocket.http.response.start", "status": 403, "headers": [(b"x-why", b"no token")]},
        {"type": "websocket.http.response.body", "body": b"Forbidden: ", "more_body": True},
        {"type": "websocket.http.response.body", "body": b"no token"},
    )
    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as exc_info:
            async with websockets.connect(uri_of(server)):
                pass
        await wait_for(lambda: hasattr(app, "after"))
    response = exc_info.value.response
    assert response.status_code == 403
    assert response.reason_phrase == "Forbidden"
    assert response.body == b"Forbidden: no token"
    assert response.headers["content-length"] == "19"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["connection"] == "close"
    assert response.headers["x-why"] == "no token"
    assert response.headers["server"] == "uvicorn"
    assert app.after == {"type": "websocket.disconnect", "code": 1006}


async def test_denial_response_streamed() -> None:
    """With a Content-Length from the app, the head goes out at once and each
    body part as it comes; ferrows' client reads it too."""
    parts = [b"a" * 100_000, b"b" * 100_000, b""]
    app = denial_app(
        {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [(b"content-length", b"200000"), (b"content-type", b"application/octet-stream")],
        },
        *[{"type": "websocket.http.response.body", "body": part, "more_body": bool(part)} for part in parts],
    )
    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        with pytest.raises(ferrows.InvalidStatus) as exc_info:
            async with ferrows.connect(uri_of(server)):
                pass
    response = exc_info.value.response
    assert response.status_code == 401
    assert response.body == b"".join(parts)
    assert response.headers.get_all("content-type") == ["application/octet-stream"]


async def test_denial_response_unknown_status_and_no_body() -> None:
    app = denial_app(
        {"type": "websocket.http.response.start", "status": 599, "headers": []},
        {"type": "websocket.http.response.body"},
    )
    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        answer = await http_exchange(port_of(server), handshake_request(port_of(server)))
    assert answer.startswith(b"HTTP/1.1 599 \r\n")
    assert answer.endswith(b"\r\n\r\n")
    assert b"\r\ncontent-length: 0\r\n" in answer.lower()


async def test_denial_response_app_ends_early() -> None:
    """An app that starts a response and returns: a 500 if nothing is out
    yet; the connection closes after a head already sent."""

    async def buffered(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 403})

    async def streamed(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})

    for app, status in [(buffered, b"500"), (streamed, b"404")]:
        async with serving(app) as server, asyncio.timeout(TIMEOUT):
            answer = await http_exchange(port_of(server), handshake_request(port_of(server)))
        assert answer.startswith(b"HTTP/1.1 " + status), answer


@pytest.mark.parametrize("client", ["ferrows", "websockets"])
async def test_shutdown_closes_connections_with_1012(client: str) -> None:
    events: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        events.append(await receive())
        events.append("done")

    module: Any = ferrows if client == "ferrows" else websockets
    async with asyncio.timeout(TIMEOUT):
        async with serving(app) as server:
            ws = await module.connect(uri_of(server))
        # serving() returned: uvicorn shut down, after the app ended.
        assert events == [{"type": "websocket.disconnect", "code": 1012}, "done"]
        with pytest.raises((ferrows.ConnectionClosed, websockets.ConnectionClosed)):
            await ws.recv()
        assert ws.close_code == 1012
        assert server.server_state.connections == set()


async def test_shutdown_before_accept_is_500() -> None:
    started = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        started.set()
        await receive()  # the disconnect, once the server answered 500

    async with asyncio.timeout(TIMEOUT):
        async with serving(app) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
            writer.write(handshake_request(port_of(server)))
            await started.wait()
        answer = await reader.read()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")


async def test_shutdown_during_the_closing_handshake() -> None:
    """A connection whose close frame awaits its answer is closed at once."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001})
        await receive()

    async with asyncio.timeout(TIMEOUT):
        async with serving(app) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
            writer.write(handshake_request(port_of(server)))
            await reader.readuntil(b"\r\n\r\n")
            assert (await reader.readexactly(4))[:2] == b"\x88\x02"  # close 4001, never answered
        assert await reader.read() == b""
        writer.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (key and cert files, as uvicorn takes
    them) and a client context that trusts only its CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    directory = tmp_path_factory.mktemp("tls")
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    cert.private_key_pem.write_to_path(key_file)
    cert.cert_chain_pems[0].write_to_path(cert_file)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    return key_file, cert_file, client_context


@pytest.mark.parametrize("client", ["ferrows", "websockets"])
async def test_tls(client: str, certificate: tuple[Path, Path, ssl.SSLContext]) -> None:
    key_file, cert_file, client_context = certificate
    schemes: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        schemes.append(scope["scheme"])
        await echo_app(scope, receive, send)

    module: Any = ferrows if client == "ferrows" else websockets
    async with serving(app, ssl_keyfile=str(key_file), ssl_certfile=str(cert_file)) as server:
        async with asyncio.timeout(TIMEOUT), module.connect(uri_of(server, scheme="wss"), ssl=client_context) as ws:
            assert ws.transport.get_extra_info("ssl_object") is not None
            for message in ["secure", b"\x00" * 300_000]:
                await ws.send(message)
                assert await ws.recv() == message
    assert schemes == ["wss"]
    assert ws.close_code == 1000


async def test_access_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    """uvicorn's lines, on ``uvicorn.error`` as its own implementations log
    them: accepted, refused (403), and the status of a denial response."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        if scope["path"] == "/yes":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})
        elif scope["path"] == "/no":
            await send({"type": "websocket.close"})
        else:
            await send({"type": "websocket.http.response.start", "status": 418})
            await send({"type": "websocket.http.response.body", "body": b"teapot"})

    caplog.set_level(logging.INFO, "uvicorn.error")
    async with serving(app) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server, "/yes?q=1")) as ws:
            await ws.wait_closed()
        client = f"127.0.0.1:{ws.local_address[1]}"
        for path in ["/no", "/tea%20pot"]:
            with pytest.raises(ferrows.InvalidStatus):
                await ferrows.connect(uri_of(server, path))
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.error" and "WebSocket" in r.getMessage()]
    assert lines[0] == f'{client} - "WebSocket /yes?q=1" [accepted]'
    assert re.fullmatch(r'127\.0\.0\.1:\d+ - "WebSocket /no" 403', lines[1])
    assert re.fullmatch(r'127\.0\.0\.1:\d+ - "WebSocket /tea%20pot" 418', lines[2])
    assert len(lines) == 3


def test_trace_log(caplog: pytest.LogCaptureFixture) -> None:
    """``--log-level trace`` adds uvicorn's lines for the connection's life."""

    async def main() -> None:
        async with serving(echo_app, log_level="trace") as server, asyncio.timeout(TIMEOUT):
            async with ferrows.connect(uri_of(server)) as ws:
                await ws.send("traced")
                await ws.recv()

    names = ["uvicorn.error", "uvicorn.access", "uvicorn.asgi"]  # the levels uvicorn sets
    levels = [logging.getLogger(name).level for name in names]
    caplog.set_level(1)
    try:
        asyncio.run(main())
    finally:
        for name, level in zip(names, levels, strict=True):
            logging.getLogger(name).setLevel(level)
    messages = caplog.messages
    assert any(m.endswith(" - WebSocket connection made") for m in messages)
    assert any(m.endswith(" - WebSocket connection lost") for m in messages)


def test_command_line(tmp_path: Path) -> None:
    """``uvicorn module:app --ws ferrows.asgi:WebSocketProtocol``."""
    (tmp_path / "echo_module.py").write_text(
        textwrap.dedent(
            """
            async def app(scope, receive, send):
                await receive()
                await send({"type": "websocket.accept"})
                message = await receive()
                await send({"type": "websocket.send", "text": "cli: " + message["text"]})
                await send({"type": "websocket.close"})
            """
        )
    )
    command = [sys.executable, "-m", "uvicorn", "echo_module:app", "--app-dir", str(tmp_path)]
    command += ["--host", "127.0.0.1", "--port", "0", "--ws", "ferrows.asgi:WebSocketProtocol"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        port = None
        for _ in range(50):  # uvicorn's first lines
            line = process.stderr.readline()
            if match := re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line):
                port = int(match.group(1))
                break
        assert port is not None
        with ferrows.sync.client.connect(f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT) as ws:
            ws.send("hello")
            assert ws.recv(timeout=TIMEOUT) == "cli: hello"
    finally:
        process.terminate()
        process.wait(TIMEOUT)
        if process.stderr is not None:
            process.stderr.close()
