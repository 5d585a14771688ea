"""The asyncio connection over its Sans-I/O protocol: both paths through it
(the core's, and extensions written in Python above the core), a protocol
that is already open, the failure of a peer's violation, UTF-8 decoding and
who frees idle compression state."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import ferrows
from ferrows.asyncio.connection import Connection
from ferrows.exceptions import ConnectionClosedError, ProtocolError
from ferrows.protocol import CLIENT, SERVER, Protocol
from frame_utils import PING, TEXT, frame
from xor_extension import ClientXorFactory, ServerXorFactory, XorExtension

from .utils import MS, TIMEOUT, count_compactions, echo, handshake_request, raw_connect, read_frame, serving, uri_of

XOR = {"extensions": [ServerXorFactory()], "compression": None}


async def test_python_extension_path_end_to_end() -> None:
    async with serving(echo, **XOR) as server:
        async with ferrows.connect(uri_of(server), extensions=[ClientXorFactory(42)], compression=None) as ws:
            assert [type(e).__name__ for e in ws.protocol.extensions] == ["XorExtension"]
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00" * 100_000)
            assert await ws.recv() == b"\x00" * 100_000
            await ws.send(["frag", "ments"])
            assert await ws.recv() == "fragments"
            latency = await asyncio.wait_for(await ws.ping(b"p"), TIMEOUT)
            assert latency >= 0
            await ws.pong(b"unsolicited")
            await ws.send("after pong")
            assert await ws.recv() == "after pong"


async def test_python_extension_violation_closes_with_its_code() -> None:
    """A frame the XOR extension refuses (RSV1, which it does not define):
    the server fails the connection with 1002 through the Python path."""
    async with serving(echo, **XOR) as server:
        reader, writer, _ = await raw_connect_with_xor(server)
        writer.write(frame(TEXT, b"x", rsv=0b100, mask=b"abcd"))
        _fin, opcode, payload = await asyncio.wait_for(read_frame(reader), TIMEOUT)
        assert opcode == 8 and payload[:2] == (1002).to_bytes(2, "big")
        writer.close()


async def raw_connect_with_xor(server: Any) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    writer.write(
        handshake_request(server.sockets[0].getsockname()[1], headers="Sec-WebSocket-Extensions: x-xor; key=7\r\n")
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert b"x-xor; key=7" in head
    return reader, writer, head


@pytest.mark.parametrize("python_extension", [False, True])
async def test_connection_over_an_open_protocol(python_extension: bool) -> None:
    """websockets' users bring their own handshake this way: a connection
    built over a protocol that is already OPEN delivers messages both ways."""
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    extensions = [XorExtension(3)] if python_extension else []
    _, client = await loop.create_connection(lambda: Connection(Protocol(CLIENT, extensions=extensions)), sock=a)
    _, server = await loop.create_connection(lambda: Connection(Protocol(SERVER, extensions=extensions)), sock=b)
    async with asyncio.timeout(TIMEOUT):
        await client.send("from client")
        assert await server.recv() == "from client"
        await server.send(b"from server")
        assert await client.recv() == b"from server"
        await client.close()
        await server.wait_closed()
    assert client.close_code == 1000 and server.close_code == 1000


async def test_violation_waits_for_a_handler_that_does_not_read() -> None:
    """The handler takes one message and stops reading: the close frame for
    the violation behind it comes after ``close_timeout``, and a later
    ``recv()`` raises ConnectionClosedError with the violation's code."""
    done: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(ws: Any) -> None:
        await ws.recv()
        await asyncio.sleep(0.5)
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            done.set_result(exc)

    async with serving(handler, close_timeout=0.2) as server:
        reader, writer, _ = await raw_connect(server.sockets[0].getsockname()[1])
        writer.write(frame(TEXT, b"hi", mask=b"abcd") + frame(5, b"", mask=b"abcd"))
        start = asyncio.get_running_loop().time()
        _fin, opcode, payload = await asyncio.wait_for(read_frame(reader), TIMEOUT)
        elapsed = asyncio.get_running_loop().time() - start
        assert opcode == 8 and payload[:2] == (1002).to_bytes(2, "big")
        assert elapsed >= 0.15
        exc = await asyncio.wait_for(done, TIMEOUT)
        assert exc.sent is not None and exc.sent.code == 1002  # type: ignore[attr-defined]
        assert isinstance(exc.__cause__, ProtocolError)
        writer.close()


async def test_ping_after_a_violation_is_not_answered_while_waiting() -> None:
    async def handler(ws: Any) -> None:
        await ws.recv()
        await ws.wait_closed()  # without reading

    async with serving(handler, close_timeout=0.3) as server:
        reader, writer, _ = await raw_connect(server.sockets[0].getsockname()[1])
        writer.write(frame(TEXT, b"hi", mask=b"abcd") + frame(11, b"", mask=b"abcd"))
        await asyncio.sleep(50 * MS)
        writer.write(frame(PING, b"x", mask=b"abcd"))
        _fin, opcode, _ = await asyncio.wait_for(read_frame(reader), TIMEOUT)
        assert opcode == 8  # the close frame, no pong before it
        writer.close()


async def test_recv_decode_invalid_utf8_fails_with_1007() -> None:
    """As websockets: ``recv(decode=True)`` on a binary message that is not
    UTF-8 fails the connection with 1007 and raises ConnectionClosedError."""

    async def handler(ws: Any) -> None:
        await ws.send(b"\xff\xfe")
        await ws.wait_closed()

    async with serving(handler) as server, ferrows.connect(uri_of(server)) as ws:
        with pytest.raises(ConnectionClosedError) as raised:
            await asyncio.wait_for(ws.recv(decode=True), TIMEOUT)
        assert raised.value.sent is not None and raised.value.sent.code == 1007
        assert ws.protocol.close_sent is not None


async def test_keepalive_compacts_clients_only() -> None:
    """The server's sweep frees idle compression state of server connections,
    the keepalive that of clients: one caller per connection, since each
    call resets the idle mark the other relies on."""
    calls = {"server": 0, "client": 0}

    async def handler(ws: Any) -> None:
        count_compactions(ws.protocol, calls, "server")
        await ws.wait_closed()

    async with serving(handler, ping_interval=20 * MS) as server:
        async with ferrows.connect(uri_of(server), ping_interval=20 * MS) as ws:
            count_compactions(ws.protocol, calls, "client")
            await ws.send("x")
            await asyncio.sleep(0.3)
    assert calls["client"] >= 5
    assert calls["server"] <= 1  # at most one sweep (once a second) in 0.3 s
