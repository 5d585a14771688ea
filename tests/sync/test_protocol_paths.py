"""The threading connection over its Sans-I/O protocol: both paths through it
(the core's, and extensions written in Python above the core), a protocol
that is already open, the failure of a peer's violation, and who frees idle
compression state."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from ferrows.exceptions import ConnectionClosedError, ProtocolError
from ferrows.protocol import CLIENT, SERVER, Protocol
from ferrows.sync import connect
from ferrows.sync.connection import Connection
from frame_utils import PING, TEXT, frame
from xor_extension import ClientXorFactory, ServerXorFactory, XorExtension

from ..asyncio.utils import count_compactions
from .utils import MS, TIMEOUT, echo, handshake_request, serving, uri_of

XOR = {"extensions": [ServerXorFactory()], "compression": None}


def test_python_extension_path_end_to_end() -> None:
    with serving(echo, **XOR) as server:
        with connect(uri_of(server), extensions=[ClientXorFactory(42)], compression=None) as ws:
            assert [type(e).__name__ for e in ws.protocol.extensions] == ["XorExtension"]
            ws.send("héllo")
            assert ws.recv(TIMEOUT) == "héllo"
            ws.send(b"\x00" * 100_000)
            assert ws.recv(TIMEOUT) == b"\x00" * 100_000
            ws.send(["frag", "ments"])
            assert ws.recv(TIMEOUT) == "fragments"
            assert ws.ping(b"p").wait(TIMEOUT)
            ws.pong(b"unsolicited")
            ws.send("after pong")
            assert ws.recv(TIMEOUT) == "after pong"


def raw_client(port: int, headers: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(handshake_request(port, headers=headers))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 ")
    return sock


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One short unmasked frame: ``(opcode, payload)``."""
    head = sock.recv(2, socket.MSG_WAITALL)
    length = head[1] & 0x7F
    assert length < 126
    return head[0] & 0x0F, sock.recv(length, socket.MSG_WAITALL) if length else b""


def test_python_extension_violation_closes_with_its_code() -> None:
    with serving(echo, **XOR) as server:
        with raw_client(server.socket.getsockname()[1], "Sec-WebSocket-Extensions: x-xor; key=7\r\n") as sock:
            sock.sendall(frame(TEXT, b"x", rsv=0b100, mask=b"abcd"))
            opcode, payload = read_frame(sock)
            assert opcode == 8 and payload[:2] == (1002).to_bytes(2, "big")


@pytest.mark.parametrize("python_extension", [False, True])
def test_connection_over_an_open_protocol(python_extension: bool) -> None:
    """websockets' users bring their own handshake this way: a connection
    built over a protocol that is already OPEN delivers messages both ways."""
    a, b = socket.socketpair()
    extensions = [XorExtension(3)] if python_extension else []
    client = Connection(a, Protocol(CLIENT, extensions=extensions))
    server = Connection(b, Protocol(SERVER, extensions=extensions))
    client.send("from client")
    assert server.recv(TIMEOUT) == "from client"
    server.send(b"from server")
    assert client.recv(TIMEOUT) == b"from server"
    client.close()
    assert server.wait_closed(TIMEOUT)
    assert client.close_code == 1000 and server.close_code == 1000


def test_violation_waits_for_a_handler_that_does_not_read() -> None:
    """The handler takes one message and stops reading: the close frame for
    the violation behind it comes after ``close_timeout``, and a later
    ``recv()`` raises ConnectionClosedError with the violation's code."""
    raised: list[BaseException] = []
    finished = threading.Event()

    def handler(ws: Any) -> None:
        ws.recv()
        time.sleep(0.5)
        try:
            ws.recv()
        except ConnectionClosedError as exc:
            raised.append(exc)
        finished.set()

    with serving(handler, close_timeout=0.2) as server:
        with raw_client(server.socket.getsockname()[1]) as sock:
            sock.sendall(frame(TEXT, b"hi", mask=b"abcd") + frame(5, b"", mask=b"abcd"))
            start = time.monotonic()
            opcode, payload = read_frame(sock)
            elapsed = time.monotonic() - start
            assert opcode == 8 and payload[:2] == (1002).to_bytes(2, "big")
            assert elapsed >= 0.15
            assert finished.wait(TIMEOUT)
    (exc,) = raised
    assert exc.sent is not None and exc.sent.code == 1002  # type: ignore[attr-defined]
    assert isinstance(exc.__cause__, ProtocolError)


def test_ping_after_a_violation_is_not_answered_while_waiting() -> None:
    def handler(ws: Any) -> None:
        ws.recv()
        ws.wait_closed(TIMEOUT)  # without reading

    with serving(handler, close_timeout=0.3) as server:
        with raw_client(server.socket.getsockname()[1]) as sock:
            sock.sendall(frame(TEXT, b"hi", mask=b"abcd") + frame(11, b"", mask=b"abcd"))
            time.sleep(50 * MS)
            sock.sendall(frame(PING, b"x", mask=b"abcd"))
            opcode, _ = read_frame(sock)
            assert opcode == 8  # the close frame, no pong before it


def test_keepalive_compacts_clients_only() -> None:
    """The server's sweep frees idle compression state of server connections,
    the keepalive that of clients: one caller per connection."""
    calls = {"server": 0, "client": 0}

    def handler(ws: Any) -> None:
        count_compactions(ws.protocol, calls, "server")
        ws.wait_closed(TIMEOUT)

    with serving(handler, ping_interval=20 * MS) as server:
        with connect(uri_of(server), ping_interval=20 * MS) as ws:
            count_compactions(ws.protocol, calls, "client")
            ws.send("x")
            time.sleep(0.3)
    assert calls["client"] >= 5
    assert calls["server"] <= 1  # at most one sweep (once a second) in 0.3 s
