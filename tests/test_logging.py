"""What ferrows logs, and where: websockets' loggers and records, on real
sockets with the asyncio and threading servers and clients.

A websockets user's logging configuration (a level or a handler on
``"websockets"``) must see ferrows' records, with websockets' messages and
levels: handshake lines and headers, frames, state changes and EOF at DEBUG,
connections opening and closing at INFO on the server, failed handshakes at
DEBUG once, never at ERROR.
"""

from __future__ import annotations

import asyncio
import http
import logging
import socket
import ssl
import time
from typing import Any

import pytest
import trustme

import ferrows
import ferrows.sync.client
import ferrows.sync.server
from ferrows import Protocol, Side
from ferrows.frames import Frame, Opcode
from ferrows.http11 import SERVER
from ferrows.server import ServerProtocol

from .asyncio.utils import (
    TIMEOUT,
    ListHandler,
    captured_logs,
    echo,
    handshake_request,
    port_of,
    serving,
    uri_of,
    wait_for,
)
from .sync import utils as sync_utils
from .xor_extension import connected_pair, pump


def websockets_logs(level: int = logging.DEBUG) -> Any:
    """Records of every ``websockets.*`` logger, configured as a websockets
    user would: a level and a handler on the parent ``"websockets"``."""
    return captured_logs("websockets", level)


def lines(records: list[logging.LogRecord], name: str, level: int | None = None) -> list[str]:
    """Messages of the records of logger ``name`` (at ``level``)."""
    return [r.getMessage() for r in records if r.name == name and (level is None or r.levelno == level)]


def about_connection(records: list[logging.LogRecord], name: str) -> list[logging.LogRecord]:
    """Records of logger ``name`` logged once the connection exists: all but
    the protocol's initial state, logged before (as in websockets)."""
    records = [r for r in records if r.name == name]
    assert records[0].getMessage() == "= connection is CONNECTING"
    assert not hasattr(records[0], "websocket")
    return records[1:]


def in_order(messages: list[str], expected: list[str]) -> bool:
    """Whether ``expected`` appear in ``messages`` in this order."""
    it = iter(messages)
    return all(any(m == e for m in it) for e in expected)


def exchange(port: int, data: bytes) -> bytes:
    """Sends ``data`` on a new connection and reads until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


# Requests a server must refuse before the WebSocket handshake: websockets'
# debug record for each, the parser's message attached, and the status of
# the response, if any.
BAD_REQUESTS = [
    pytest.param(
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(40),
        None,
        ("! no valid HTTP request", "invalid HTTP request line: "),
        id="tls",
    ),
    pytest.param(
        b"HELO relay.invalid\r\n\r\n",
        None,
        ("! no valid HTTP request", "invalid HTTP request line: HELO relay.invalid"),
        id="not-http",
    ),
    pytest.param(
        b"GET /\r\n\r\n", None, ("! no valid HTTP request", "invalid HTTP request line: GET /"), id="request-line"
    ),
    pytest.param(b"", None, ("! no valid HTTP request", "connection closed while reading HTTP request line"), id="eof"),
    pytest.param(
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
        414,
        ("! request line too long", "read "),
        id="414",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
        431,
        ("! header fields too large", "expected no more than 128 headers"),
        id="431",
    ),
]


def check_refused(
    records: list[logging.LogRecord], response: bytes, status: int | None, expected: tuple[str, str]
) -> None:
    """One DEBUG record, websockets' message, the cause attached as in
    websockets (its tests compare ``str(record.exc_info[1])``); nothing at
    WARNING or above."""
    failures = [r for r in records if r.getMessage().startswith("! ")]
    assert [r.getMessage() for r in failures] == [expected[0]]
    (failure,) = failures
    assert failure.name == "websockets.server"
    assert failure.levelno == logging.DEBUG
    assert failure.exc_info is not None
    assert str(failure.exc_info[1]).startswith(expected[1]), failure.exc_info
    assert not [r for r in records if r.levelno >= logging.WARNING]
    if status is None:
        assert response == b""
        assert not [m for m in lines(records, "websockets.server", logging.INFO) if "HTTP response" in m]
    else:
        assert response.startswith(b"HTTP/1.1 %d " % status)
        assert f"\r\nServer: {SERVER}\r\n".encode() in response.split(b"\r\n\r\n")[0] + b"\r\n"
        assert any(m.startswith(f"HTTP response sent ({status} ") for m in lines(records, "websockets.server"))


# ----------------------------------------------------------------- asyncio


async def test_default_loggers_have_websockets_names() -> None:
    """``import ferrows as websockets`` users configured these names."""
    async with serving(echo) as server, ferrows.connect(uri_of(server)) as client:
        assert server.logger.name == "websockets.server"
        assert client.logger.name == "websockets.client"
        (connection,) = server.connections
        assert connection.logger.name == "websockets.server"


async def test_asyncio_server_records() -> None:
    async with serving(echo) as server:
        port = port_of(server)
        with websockets_logs() as records:
            async with ferrows.connect(uri_of(server)) as client:
                await client.send("hello")
                assert await client.recv() == "hello"
            await wait_for(lambda: "connection closed" in lines(records, "websockets.server"))
    server_lines = lines(records, "websockets.server")
    assert in_order(
        server_lines,
        [
            "< GET / HTTP/1.1",
            f"< Host: 127.0.0.1:{port}",
            "< Upgrade: websocket",
            "> HTTP/1.1 101 Switching Protocols",
            "> Upgrade: websocket",
            f"> Server: {SERVER}",
            "= connection is OPEN",
            "connection open",
            "< TEXT 'hello' [5 bytes]",
            "> TEXT 'hello' [5 bytes]",
            "< CLOSE 1000 (OK) [2 bytes]",
            "> CLOSE 1000 (OK) [2 bytes]",
            "= connection is CLOSING",
            "> EOF",
            "x half-closing TCP connection",
            "< EOF",
            "= connection is CLOSED",
            "connection closed",
        ],
    ), server_lines
    assert lines(records, "websockets.server", logging.INFO) == [
        "connection open",
        "connection closed",
    ]
    # Every connection record carries its connection, as in websockets.
    connection_records = about_connection(records, "websockets.server")
    assert all(type(r.websocket).__name__ == "ServerConnection" for r in connection_records)  # type: ignore[attr-defined]


async def test_asyncio_client_records() -> None:
    async with serving(echo) as server:
        port = port_of(server)
        with websockets_logs() as records:
            async with ferrows.connect(uri_of(server)) as client:
                await client.send(b"\x00\xff")
                assert await client.recv() == b"\x00\xff"
    client_lines = lines(records, "websockets.client")
    assert in_order(
        client_lines,
        [
            "> GET / HTTP/1.1",
            f"> Host: 127.0.0.1:{port}",
            "> Sec-WebSocket-Version: 13",
            "< HTTP/1.1 101 Switching Protocols",
            f"< Server: {SERVER}",
            "= connection is OPEN",
            "> BINARY 00 ff [2 bytes]",
            "< BINARY 00 ff [2 bytes]",
            "> CLOSE 1000 (OK) [2 bytes]",
            "= connection is CLOSING",
            "< CLOSE 1000 (OK) [2 bytes]",
            "< EOF",
            "= connection is CLOSED",
        ],
    ), client_lines
    assert all(r.levelno == logging.DEBUG for r in records if r.name == "websockets.client")
    assert all(r.websocket is client for r in about_connection(records, "websockets.client"))  # type: ignore[attr-defined]


async def test_asyncio_pings_and_keepalive_are_logged() -> None:
    async with serving(echo) as server:
        with websockets_logs() as records:
            async with ferrows.connect(uri_of(server), ping_interval=0.02) as client:
                await client.ping(b"abc")
                await wait_for(lambda: "% received keepalive pong" in lines(records, "websockets.client"))
    client_lines = lines(records, "websockets.client")
    assert in_order(client_lines, ["> PING 'abc' [text, 3 bytes]", "< PONG 'abc' [text, 3 bytes]"])
    assert in_order(client_lines, ["% sent keepalive ping", "% received keepalive pong"])
    assert in_order(
        lines(records, "websockets.server"), ["< PING 'abc' [text, 3 bytes]", "> PONG 'abc' [text, 3 bytes]"]
    )


async def test_asyncio_process_request_response_is_sent_not_rejected() -> None:
    """websockets' words: a response of ``process_request`` is "sent"; a
    request that ``accept()`` refused is "rejected"."""

    def process_request(connection: Any, request: Any) -> Any:
        if request.path == "/forbidden":
            return connection.respond(http.HTTPStatus.FORBIDDEN, "No\n")
        return None

    async with serving(echo, process_request=process_request) as server:
        with websockets_logs(logging.INFO) as records:
            with pytest.raises(ferrows.InvalidStatus):
                await ferrows.connect(uri_of(server, "/forbidden"))
            port = port_of(server)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert (await reader.read()).startswith(b"HTTP/1.1 426 ")
            writer.close()
            await wait_for(lambda: lines(records, "websockets.server").count("connection closed") == 2)
    info = lines(records, "websockets.server", logging.INFO)
    assert "HTTP response sent (403 Forbidden)" in info
    assert "connection rejected (426 Upgrade Required)" in info
    assert not [m for m in info if m == "connection open"]
    assert not [r for r in records if r.levelno >= logging.WARNING]


async def test_asyncio_failing_hooks_use_websockets_words() -> None:
    def process_request(connection: Any, request: Any) -> None:
        if request.path == "/request":
            raise RuntimeError("boom")

    def process_response(connection: Any, request: Any, response: Any) -> None:
        if request.path == "/response":
            raise RuntimeError("bang")

    async with serving(echo, process_request=process_request, process_response=process_response) as server:
        with websockets_logs(logging.ERROR) as records:
            for path in ("/request", "/response"):
                with pytest.raises(ferrows.InvalidStatus) as info:
                    await ferrows.connect(uri_of(server, path))
                assert info.value.response.status_code == 500
    assert [(r.getMessage(), r.levelno) for r in records] == [
        ("process_request failed", logging.ERROR),
        ("process_response failed", logging.ERROR),
    ]
    assert all(r.exc_info is not None for r in records)


@pytest.mark.parametrize(("request_bytes", "status", "expected"), BAD_REQUESTS)
async def test_asyncio_refused_requests_are_logged_once_at_debug(
    request_bytes: bytes, status: int | None, expected: tuple[str, str]
) -> None:
    async with serving(echo) as server:
        with websockets_logs() as records:
            response = await asyncio.to_thread(exchange, port_of(server), request_bytes)
            await wait_for(lambda: "connection closed" in lines(records, "websockets.server"))
    check_refused(records, response, status, expected)


async def test_asyncio_503_of_a_closing_server_has_the_server_header() -> None:
    started = asyncio.Event()

    async def process_request(connection: Any, request: Any) -> None:
        started.set()
        await asyncio.sleep(0.2)

    server = await ferrows.serve(echo, "127.0.0.1", 0, process_request=process_request)
    port = port_of(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(handshake_request(port))
    async with asyncio.timeout(TIMEOUT):
        await started.wait()
        server.close()
        response = await reader.read()
        writer.close()
        await server.wait_closed()
    assert response.startswith(b"HTTP/1.1 503 ")
    assert f"\r\nServer: {SERVER}\r\n".encode() in response


async def test_debug_off_logs_nothing_and_keeps_the_cores_entry_points() -> None:
    """With DEBUG off, frames go straight to the core: no Python wrapper,
    no DEBUG record; with DEBUG on, the wrappers log."""
    async with serving(echo) as server:
        with websockets_logs(logging.INFO) as records:
            async with ferrows.connect(uri_of(server)) as client:
                await client.send("hi")
                assert await client.recv() == "hi"
                assert not client.debug
                assert type(client.protocol.receive_events).__name__ == "builtin_function_or_method"
                assert type(client.protocol.send_data).__name__ == "builtin_function_or_method"
        assert not [r for r in records if r.levelno < logging.INFO]
        with websockets_logs(logging.DEBUG):
            async with ferrows.connect(uri_of(server)) as client:
                assert client.debug
                assert type(client.protocol.receive_events).__name__ == "function"


async def test_logger_argument_takes_a_name_or_an_adapter() -> None:
    seen: list[Any] = []

    class Adapter(logging.LoggerAdapter[logging.Logger]):
        def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
            # Records about the server itself carry no connection.
            seen.append(kwargs.get("extra", {}).get("websocket"))
            return f"[adapted] {msg}", kwargs

    custom = logging.getLogger("ferrows-test.custom")
    handler = ListHandler()
    custom.addHandler(handler)
    custom.setLevel(logging.INFO)
    try:
        async with serving(echo, logger=Adapter(custom)) as server:
            async with ferrows.connect(uri_of(server), logger="ferrows-test.client") as client:
                assert client.logger.name == "ferrows-test.client"
                await client.send("x")
                await client.recv()
            await wait_for(lambda: any(r.getMessage() == "[adapted] connection closed" for r in handler.records))
    finally:
        custom.removeHandler(handler)
        custom.setLevel(logging.NOTSET)
    messages = [r.getMessage() for r in handler.records]
    assert "[adapted] connection open" in messages
    assert any(m.startswith("[adapted] server listening on 127.0.0.1:") for m in messages)
    assert any(type(ws).__name__ == "ServerConnection" for ws in seen)


async def test_connection_logger_does_not_keep_the_connection_alive() -> None:
    """The adapter refers to its connection weakly: a closed connection is
    freed by reference counting, and a record logged afterwards (by code
    still holding the adapter) says ``websocket=None``."""
    async with serving(echo) as server:
        async with ferrows.connect(uri_of(server)) as client:
            logger = client.logger
        del client
        handler = ListHandler()
        logging.getLogger("websockets.client").addHandler(handler)
        try:
            logger.warning("late")
        finally:
            logging.getLogger("websockets.client").removeHandler(handler)
    assert handler.records[0].websocket is None  # type: ignore[attr-defined]


# --------------------------------------------------------------- threading


def test_sync_server_and_client_records() -> None:
    with websockets_logs() as records:
        with sync_utils.serving(sync_utils.echo) as server:
            with ferrows.sync.client.connect(sync_utils.uri_of(server), ping_interval=0.02) as client:
                client.send("hello")
                assert client.recv() == "hello"
                deadline = time.monotonic() + TIMEOUT
                while "% received keepalive pong" not in lines(records, "websockets.client"):
                    assert time.monotonic() < deadline
                    time.sleep(0.005)
            deadline = time.monotonic() + TIMEOUT
            while "connection closed" not in lines(records, "websockets.server"):
                assert time.monotonic() < deadline
                time.sleep(0.005)
    server_lines = lines(records, "websockets.server")
    assert in_order(
        server_lines,
        [
            "< GET / HTTP/1.1",
            "> HTTP/1.1 101 Switching Protocols",
            f"> Server: {SERVER}",
            "= connection is OPEN",
            "connection open",
            "< TEXT 'hello' [5 bytes]",
            "> TEXT 'hello' [5 bytes]",
            "< CLOSE 1000 (OK) [2 bytes]",
            "> CLOSE 1000 (OK) [2 bytes]",
            "= connection is CLOSING",
            "> EOF",
            "x half-closing TCP connection",
            "= connection is CLOSED",
            "connection closed",
        ],
    ), server_lines
    client_lines = lines(records, "websockets.client")
    assert in_order(
        client_lines,
        [
            "> GET / HTTP/1.1",
            "< HTTP/1.1 101 Switching Protocols",
            "= connection is OPEN",
            "> TEXT 'hello' [5 bytes]",
            "< TEXT 'hello' [5 bytes]",
            "> CLOSE 1000 (OK) [2 bytes]",
            "< CLOSE 1000 (OK) [2 bytes]",
            "= connection is CLOSED",
        ],
    ), client_lines
    assert in_order(client_lines, ["% sent keepalive ping", "% received keepalive pong"])
    assert all(r.websocket is client for r in about_connection(records, "websockets.client"))  # type: ignore[attr-defined]


def test_sync_process_request_response_is_sent() -> None:
    def process_request(connection: Any, request: Any) -> Any:
        return connection.respond(http.HTTPStatus.NOT_FOUND, "Nope\n")

    with websockets_logs(logging.INFO) as records:
        with sync_utils.serving(sync_utils.echo, process_request=process_request) as server:
            with pytest.raises(ferrows.InvalidStatus):
                ferrows.sync.client.connect(sync_utils.uri_of(server))
            deadline = time.monotonic() + TIMEOUT
            while "connection closed" not in lines(records, "websockets.server"):
                assert time.monotonic() < deadline
                time.sleep(0.005)
    info = lines(records, "websockets.server", logging.INFO)
    assert "HTTP response sent (404 Not Found)" in info
    assert not [m for m in info if m.startswith("connection rejected")]


@pytest.mark.parametrize(("request_bytes", "status", "expected"), BAD_REQUESTS)
def test_sync_refused_requests_are_logged_once_at_debug(
    request_bytes: bytes, status: int | None, expected: tuple[str, str]
) -> None:
    with websockets_logs() as records:
        with sync_utils.serving(sync_utils.echo) as server:
            response = exchange(sync_utils.port_of(server), request_bytes)
            deadline = time.monotonic() + TIMEOUT
            while "connection closed" not in lines(records, "websockets.server"):
                assert time.monotonic() < deadline
                time.sleep(0.005)
    check_refused(records, response, status, expected)


def test_sync_failing_hook_is_logged_with_websockets_words() -> None:
    def process_response(connection: Any, request: Any, response: Any) -> None:
        raise RuntimeError("bang")

    with websockets_logs(logging.ERROR) as records:
        with sync_utils.serving(sync_utils.echo, process_response=process_response) as server:
            with pytest.raises(ferrows.InvalidStatus):
                ferrows.sync.client.connect(sync_utils.uri_of(server))
    assert [r.getMessage() for r in records] == ["process_response failed"]


# ---------------------------------------------------------------- Sans-I/O


def test_sansio_frames_and_failure_are_logged() -> None:
    """Frame mode (websockets' Protocol API): received frames, frames sent,
    the close frame of a failure and the state changes."""
    with websockets_logs() as records:
        protocol = Protocol(Side.SERVER)
        protocol.receive_data(Frame(Opcode.TEXT, b"hi").serialize(mask=True))
        assert protocol.events_received() == [Frame(Opcode.TEXT, b"hi")]
        protocol.send_text(b"yo")
        protocol.receive_data(b"\x81\x05")  # unmasked: a protocol error
        protocol.data_to_send()
    messages = lines(records, "websockets.server")
    assert in_order(
        messages,
        [
            "< TEXT 'hi' [2 bytes]",
            "> TEXT 'yo' [2 bytes]",
            "> CLOSE 1002 (protocol error) incorrect masking [19 bytes]",
            "= connection is CLOSING",
        ],
    ), messages


@pytest.mark.parametrize("side", [Side.SERVER, Side.CLIENT])
def test_sansio_initial_state_is_logged(side: Side) -> None:
    """As websockets' protocols do, once, on creation, with a custom logger."""
    logger = logging.getLogger("ferrows-test.initial")
    handler = ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        ServerProtocol(logger=logger) if side is Side.SERVER else Protocol(side, logger=logger)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    expected = "CONNECTING" if side is Side.SERVER else "OPEN"
    assert [r.getMessage() for r in handler.records] == [f"= connection is {expected}"]


def test_sansio_close_without_code_and_held_pongs() -> None:
    with websockets_logs() as records:
        protocol = Protocol(Side.CLIENT, assemble=True)
        protocol.hold_pongs(True)
        protocol.receive_events(b"\x89\x01p")
        protocol.hold_pongs(False)
        protocol.send_close()
        protocol.data_to_send()
    messages = lines(records, "websockets.client")
    assert "< PING 'p' [text, 1 byte]" in messages
    assert "> PONG 'p' [text, 1 byte]" not in messages  # held, answered later
    assert in_order(messages, ["> CLOSE '' [0 bytes]", "= connection is CLOSING"]), messages


def test_sansio_python_extensions_log_frames_and_close_replies() -> None:
    """With an extension written in Python, frames go through Python:
    what the I/O layers see is still logged, close replies included."""
    with websockets_logs() as records:
        client, server = connected_pair()
        client.send_text(b"hi")
        pump(client, server)
        client.send_close(1000, "bye")
        pump(client, server)
        server.data_to_send()
    messages = lines(records, "websockets.server")
    assert in_order(
        messages,
        [
            "= connection is OPEN",
            "connection open",
            "< TEXT 'hi' [2 bytes]",
            "< CLOSE 1000 (OK) bye [5 bytes]",
            "> CLOSE 1000 (OK) bye [5 bytes]",
            "= connection is CLOSING",
        ],
    ), messages


def test_sansio_assembled_violation_is_logged() -> None:
    with websockets_logs() as records:
        protocol = Protocol(Side.SERVER, assemble=True)
        protocol.receive_events(b"\x81\x05hello")  # unmasked
        assert protocol.fail_pending()
    messages = lines(records, "websockets.server")
    assert in_order(
        messages,
        [
            "! protocol error: incorrect masking",
            "> CLOSE 1002 (protocol error) incorrect masking [19 bytes]",
        ],
    ), messages


@pytest.mark.parametrize(
    ("request_head", "expected"),
    [
        ("POST / HTTP/1.1\r\nHost: h\r\n", ("! invalid method", "unsupported HTTP method: POST")),
        ("GET / HTTP/1.1\r\nHost: h\r\n", ("! invalid upgrade", "missing Connection header")),
        (
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nOrigin: https://evil\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
            ("! invalid origin", "invalid Origin header: https://evil"),
        ),
        (
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\n",
            ("! invalid handshake", "invalid Sec-WebSocket-Key header: x"),
        ),
    ],
)
def test_sansio_refused_handshakes_are_logged_at_debug(request_head: str, expected: tuple[str, str]) -> None:
    with websockets_logs() as records:
        server = ServerProtocol(origins=["https://good"] if "Origin" in request_head else None)
        server.receive_data((request_head + "\r\n").encode())
        (request,) = server.events_received()
        response = server.accept(request)
        server.send_response(response)
    failures = [r for r in records if r.getMessage().startswith("! ")]
    assert [r.getMessage() for r in failures] == [expected[0]]
    assert failures[0].levelno == logging.DEBUG
    assert failures[0].exc_info is not None
    assert str(failures[0].exc_info[1]) == expected[1]
    assert f"connection rejected ({response.status_code} {response.reason_phrase})" in lines(
        records, "websockets.server", logging.INFO
    )


async def test_asyncio_client_logs_a_refusal_and_its_body() -> None:
    def process_request(connection: Any, request: Any) -> Any:
        return connection.respond(http.HTTPStatus.FORBIDDEN, "No\n")

    async with serving(echo, process_request=process_request) as server:
        with websockets_logs() as records:
            with pytest.raises(ferrows.InvalidStatus):
                await ferrows.connect(uri_of(server))
    client_lines = lines(records, "websockets.client")
    assert in_order(
        client_lines,
        [
            "< HTTP/1.1 403 Forbidden",
            "< Content-Length: 3",
            "< [body] (3 bytes)",
            "! opening handshake failed",
        ],
    ), client_lines
    assert "> [body] (3 bytes)" in lines(records, "websockets.server")


async def test_asyncio_tls_connections_close_tcp_instead_of_half_closing() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    async with serving(echo, ssl=server_context) as server:
        with websockets_logs() as records:
            async with ferrows.connect(uri_of(server, scheme="wss"), ssl=client_context) as client:
                await client.send("x")
                await client.recv()
            await wait_for(lambda: "connection closed" in lines(records, "websockets.server"))
    assert "x closing TCP connection" in lines(records, "websockets.server")
    assert "x half-closing TCP connection" not in lines(records, "websockets.server")


async def test_asyncio_large_payload_written_apart_is_logged() -> None:
    """A server writes a large ``bytes`` payload after its header, without
    copying: the frame is still logged, by its size."""
    payload = bytes(300_000)

    async def handler(ws: Any) -> None:
        await ws.recv()
        await ws.send(payload)

    async with serving(handler, compression=None) as server:
        with websockets_logs() as records:
            async with ferrows.connect(uri_of(server), compression=None, max_size=None) as client:
                await client.send("go")
                assert await client.recv() == payload
    assert "> BINARY [300000 bytes]" in lines(records, "websockets.server")
