"""Clients' masking keys come from ``secrets.token_bytes`` once it is replaced.

websockets draws each key with ``secrets.token_bytes(4)``; its users and its
tests patch that function to get deterministic frames. ferrows' core draws
keys from the operating system itself, faster, and uses a replacement as
soon as there is one: on the Sans-I/O protocol and on both I/O layers.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from unittest.mock import patch

import pytest

import ferrows
import ferrows.sync.client
from ferrows.exceptions import ConnectionClosedOK
from ferrows.frames import Frame, Opcode
from ferrows.protocol import CLIENT, SERVER, Protocol
from frame_utils import frame
from xor_extension import XorExtension

from .hostile_peer import TIMEOUT, raw_server

KEY = b"\x00\x44\x88\xcc"


def token_bytes(key: bytes = KEY) -> object:
    return patch("secrets.token_bytes", return_value=key)


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (lambda p: p.send_text(b"\xf0\x9f\x98\x80"), frame(0x1, b"\xf0\x9f\x98\x80", mask=KEY)),
        (lambda p: p.send_binary(b"\x01\x02", fin=False), frame(0x2, b"\x01\x02", fin=False, mask=KEY)),
        (lambda p: p.send_ping(b"ping"), frame(0x9, b"ping", mask=KEY)),
        (lambda p: p.send_pong(b""), frame(0xA, b"", mask=KEY)),
        (lambda p: p.send_close(1001, "bye"), frame(0x8, b"\x03\xe9bye", mask=KEY)),
        (lambda p: p.send_close(), frame(0x8, b"", mask=KEY)),
        (lambda p: p.send_frame(Frame(Opcode.TEXT, b"hi")), frame(0x1, b"hi", mask=KEY)),
        (lambda p: p.send_data(Opcode.BINARY.value, b"hi"), frame(0x2, b"hi", mask=KEY)),
    ],
)
def test_sends_use_the_replaced_function(send: object, expected: bytes) -> None:
    client = Protocol(CLIENT)
    with token_bytes():
        out = send(client)  # type: ignore[operator]
    written = b"".join(client.data_to_send()) or out
    assert written == expected


def test_replies_use_the_replaced_function() -> None:
    # The pong and the close reply the core queues while reading.
    client = Protocol(CLIENT)
    with token_bytes(b"<<<<"):
        client.receive_data(b"\x89\x01p\x88\x00")
    assert client.data_to_send() == [frame(0xA, b"p", mask=b"<<<<") + frame(0x8, b"", mask=b"<<<<")]


def test_each_send_draws_a_key() -> None:
    client = Protocol(CLIENT)
    with patch("secrets.token_bytes", side_effect=[b"\x01\x01\x01\x01", b"\x02\x02\x02\x02"]) as drawn:
        client.send_text(b"a")
        client.send_text(b"b")
    assert drawn.call_count == 2
    assert client.data_to_send() == [
        frame(0x1, b"a", mask=b"\x01\x01\x01\x01"),
        frame(0x1, b"b", mask=b"\x02\x02\x02\x02"),
    ]


def test_python_extensions_path_uses_it_too() -> None:
    client = Protocol(CLIENT, extensions=[XorExtension(1)])
    with token_bytes():
        client.send_text(b"skip")  # sent as is by the extension
        client.send_ping(b"")
    assert client.data_to_send() == [frame(0x1, b"skip", mask=KEY), frame(0x9, b"", mask=KEY)]


def test_restored_function_gives_random_keys_again() -> None:
    client = Protocol(CLIENT)
    with token_bytes():
        client.send_binary(b"\x00")
    # The original is back: the core's own keys, one per frame.
    for _ in range(4):
        client.send_binary(b"\x00")
    keys = [data[2:6] for data in client.data_to_send()]
    assert keys[0] == KEY
    assert len(set(keys[1:])) == 4 and KEY not in keys[1:]


def test_servers_never_draw_a_key() -> None:
    server = Protocol(SERVER)
    with patch("secrets.token_bytes", side_effect=AssertionError("servers do not mask")):
        server.send_text(b"a")
        server.receive_data(frame(0x9, b"p", mask=b"\x01\x02\x03\x04"))
    assert server.data_to_send() == [frame(0x1, b"a"), frame(0xA, b"p")]


def test_replacement_must_return_four_bytes() -> None:
    client = Protocol(CLIENT)
    with token_bytes(b"\x00"), pytest.raises(ValueError, match="must return 4 bytes"):
        client.send_text(b"a")


def first_frame_then_close(sock: socket.socket) -> bytes:
    """The server's script: the client's first frame as it came, raw, then
    a normal closure."""
    data = b""
    while len(data) < 2 or len(data) < 6 + (data[1] & 0x7F):
        chunk = sock.recv(4096)
        assert chunk, "the client closed before sending its frame"
        data += chunk
    size = 6 + (data[1] & 0x7F)
    sock.sendall(b"\x88\x02" + struct.pack("!H", 1000))
    # The client's close frame (8 bytes); the server closes TCP first.
    while len(data) < size + 8:
        chunk = sock.recv(4096)
        assert chunk, "the client closed before answering the close frame"
        data += chunk
    return data[:size]


def test_asyncio_client_uses_it() -> None:
    async def main(port: int) -> None:
        async with asyncio.timeout(3 * TIMEOUT):
            async with ferrows.connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
                await ws.send("hi")
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv()

    with raw_server(first_frame_then_close) as (port, results), token_bytes():
        asyncio.run(main(port))
    assert results == [frame(0x1, b"hi", mask=KEY)]


def test_sync_client_uses_it() -> None:
    with raw_server(first_frame_then_close) as (port, results), token_bytes():
        with ferrows.sync.client.connect(f"ws://127.0.0.1:{port}", compression=None, open_timeout=TIMEOUT) as ws:
            ws.send("hi")
            with pytest.raises(ConnectionClosedOK):
                ws.recv(timeout=TIMEOUT)
    assert results == [frame(0x1, b"hi", mask=KEY)]


def test_deleted_function_gives_random_keys() -> None:
    client = Protocol(CLIENT)
    with patch.dict(secrets.__dict__):
        del secrets.token_bytes
        client.send_binary(b"\x00")
        client.send_binary(b"\x00")
    keys = [data[2:6] for data in client.data_to_send()]
    assert len(set(keys)) == 2
