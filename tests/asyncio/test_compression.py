"""permessage-deflate over real sockets: interoperability with the websockets
package in both directions, compression=None, broadcast() and a
decompression bomb against a server in another process."""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
import websockets.asyncio.client
import websockets.asyncio.server
import websockets.extensions.permessage_deflate as ws_deflate

import ferrows
from ferrows import _core, broadcast
from ferrows.client import ClientProtocol
from ferrows.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from ferrows.protocol import CLOSED, OPEN

from .utils import TIMEOUT, echo, serving, uri_of, wait_for

MAX_SIZE = 2**20 + 1024
FOUR_VALUES = bytes(i & 3 for i in range(256))
"""Room for the largest test message (1 MiB) on both sides."""


def sample_messages() -> list[str | bytes]:
    """Text and binary messages from 0 bytes to 1 MiB."""
    rng = random.Random(1009)
    words = ["deflate", "window", "bits", "context", "takeover", "é", "€", "😀", "\n"]
    text = "".join(rng.choice(words) for _ in range(2**18)).encode()[: 2**20].decode(errors="ignore")
    return [
        "",
        b"",
        "a",
        b"\x00",
        "x" * 125,
        rng.randbytes(126),
        text[:65_536],
        rng.randbytes(65_536) * 2,
        text,
        # A MiB of random bytes among four values: 2 bits of entropy each.
        rng.randbytes(2**20).translate(FOUR_VALUES),
    ]


MESSAGES = sample_messages()


@pytest.fixture
def websockets_rsv1(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """RSV1 of the first frame of each message that websockets' deflate
    extension decodes: whether ferrows compressed what it sent."""
    seen: list[bool] = []
    decode = ws_deflate.PerMessageDeflate.decode

    def recording_decode(self: Any, frame: Any, *, max_size: int | None = None) -> Any:
        if frame.opcode in (websockets.frames.Opcode.TEXT, websockets.frames.Opcode.BINARY):
            seen.append(frame.rsv1)
        return decode(self, frame, max_size=max_size)

    monkeypatch.setattr(ws_deflate.PerMessageDeflate, "decode", recording_decode)
    yield seen


async def exchange(ws: Any) -> None:
    """Sends every sample message through an echo server and checks it."""
    for message in MESSAGES:
        await ws.send(message)
        assert await ws.recv() == message


# Settings of websockets' side, and the header they negotiate with ferrows'
# defaults (12-bit windows on the server, client_max_window_bits offered).
CUSTOM = {
    "server_max_window_bits": 10,
    "client_max_window_bits": 11,
    "server_no_context_takeover": True,
    "client_no_context_takeover": True,
}
CUSTOM_HEADER = (
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
    "server_max_window_bits=10; client_max_window_bits=11"
)
DEFAULT_HEADER = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"


@pytest.mark.parametrize(
    ("client_kwargs", "header", "windows"),
    [
        ({}, DEFAULT_HEADER, (12, 12)),
        (
            {"extensions": [ws_deflate.ClientPerMessageDeflateFactory(**CUSTOM)], "compression": None},
            CUSTOM_HEADER,
            (10, 11),
        ),
        (
            {"extensions": [ws_deflate.ClientPerMessageDeflateFactory(client_max_window_bits=None)]},
            "permessage-deflate; server_max_window_bits=12",
            (12, 15),
        ),
    ],
)
async def test_ferrows_server_websockets_client(
    client_kwargs: dict[str, Any], header: str, windows: tuple[int, int], websockets_rsv1: list[bool]
) -> None:
    async with (
        serving(echo, max_size=MAX_SIZE) as server,
        asyncio.timeout(4 * TIMEOUT),
        websockets.asyncio.client.connect(uri_of(server), max_size=MAX_SIZE, **client_kwargs) as ws,
    ):
        assert ws.response.headers["Sec-WebSocket-Extensions"] == header
        [ws_ext] = ws.protocol.extensions
        assert (ws_ext.remote_max_window_bits, ws_ext.local_max_window_bits) == windows
        [connection] = server.connections
        assert connection.response.headers["Sec-WebSocket-Extensions"] == header
        [ext] = connection.protocol.extensions
        assert isinstance(ext, PerMessageDeflate)
        assert (ext.local_max_window_bits, ext.remote_max_window_bits) == windows
        await exchange(ws)
    assert websockets_rsv1 == [True] * len(MESSAGES), "ferrows compressed every message"


@pytest.mark.parametrize(
    ("server_kwargs", "header", "windows"),
    [
        ({}, DEFAULT_HEADER, (12, 12)),
        (
            {"extensions": [ws_deflate.ServerPerMessageDeflateFactory(**CUSTOM)], "compression": None},
            CUSTOM_HEADER,
            (10, 11),
        ),
        (
            {"extensions": [ws_deflate.ServerPerMessageDeflateFactory()], "compression": None},
            "permessage-deflate",
            (15, 15),
        ),
    ],
)
async def test_ferrows_client_websockets_server(
    server_kwargs: dict[str, Any], header: str, windows: tuple[int, int], websockets_rsv1: list[bool]
) -> None:
    requests = []

    async def handler(ws: Any) -> None:
        requests.append(ws.request)
        await echo(ws)

    async with (
        asyncio.timeout(4 * TIMEOUT),
        websockets.asyncio.server.serve(handler, "127.0.0.1", 0, max_size=MAX_SIZE, **server_kwargs) as server,
        ferrows.connect(uri_of(server), max_size=MAX_SIZE) as ws,
    ):
        assert ws.response.headers["Sec-WebSocket-Extensions"] == header
        [ext] = ws.protocol.extensions
        assert isinstance(ext, PerMessageDeflate)
        assert (ext.remote_max_window_bits, ext.local_max_window_bits) == windows
        await exchange(ws)
    [request] = requests
    assert request.headers["Sec-WebSocket-Extensions"] == "permessage-deflate; client_max_window_bits"
    assert websockets_rsv1 == [True] * len(MESSAGES), "ferrows compressed every message"


async def test_compression_none_on_ferrows_server(websockets_rsv1: list[bool]) -> None:
    async with serving(echo, compression=None) as server, asyncio.timeout(TIMEOUT):
        async with websockets.asyncio.client.connect(uri_of(server)) as ws:
            assert "Sec-WebSocket-Extensions" in ws.request.headers
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            assert ws.protocol.extensions == []
            await ws.send("plain")
            assert await ws.recv() == "plain"
        async with ferrows.connect(uri_of(server)) as fws:
            assert "Sec-WebSocket-Extensions" not in fws.response.headers
            assert fws.protocol.extensions == []
            await fws.send(b"plain")
            assert await fws.recv() == b"plain"
    assert websockets_rsv1 == []


async def test_compression_none_on_ferrows_client() -> None:
    requests = []

    async def handler(ws: Any) -> None:
        requests.append(ws.request)
        await echo(ws)

    async with (
        asyncio.timeout(TIMEOUT),
        websockets.asyncio.server.serve(handler, "127.0.0.1", 0) as server,
        ferrows.connect(uri_of(server), compression=None) as ws,
    ):
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
        await ws.send("plain")
        assert await ws.recv() == "plain"
        await wait_for(lambda: len(requests) == 1)
        assert "Sec-WebSocket-Extensions" not in requests[0].headers
    async with serving(echo) as server, ferrows.connect(uri_of(server), compression=None) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        [connection] = server.connections
        assert connection.protocol.extensions == []
        await ws.send(b"plain")
        assert await ws.recv() == b"plain"


def test_compression_must_be_deflate_or_none() -> None:
    with pytest.raises(ValueError):
        ferrows.connect("ws://127.0.0.1:1/", compression="gzip")


# ---------------------------------------------------------------- broadcast


@pytest.fixture
def deflate_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Sizes of the messages that broadcast() compressed once for all."""
    calls: list[int] = []
    deflate_message = _core.deflate_message

    def counting(data: Any, *args: Any) -> bytes:
        calls.append(len(data))
        return deflate_message(data, *args)

    monkeypatch.setattr(_core, "deflate_message", counting)
    yield calls


BROADCASTS: list[str | bytes] = [
    "hello",
    b"",
    "",
    "context " * 2000,
    random.Random(5).randbytes(50_000),
    "context " * 2000,
]


async def broadcast_and_check(server_kwargs: dict[str, Any], interleave: bool) -> list[Any]:
    """Connects ferrows and websockets clients with various settings,
    broadcasts :data:`BROADCASTS`, optionally interleaved with messages to
    each connection, and checks that every client got the right ones."""
    connected: list[Any] = []

    async def handler(ws: Any) -> None:
        connected.append(ws)
        await ws.wait_closed()

    async with serving(handler, **server_kwargs) as server, asyncio.timeout(4 * TIMEOUT):
        uri = uri_of(server)
        clients = [
            await ferrows.connect(uri),
            await ferrows.connect(uri),
            await ferrows.connect(uri, compression=None),
            await websockets.asyncio.client.connect(uri),
            await websockets.asyncio.client.connect(
                uri, extensions=[ws_deflate.ClientPerMessageDeflateFactory(client_max_window_bits=9)]
            ),
            await websockets.asyncio.client.connect(uri, compression=None),
        ]
        await wait_for(lambda: len(connected) == len(clients))
        expected: dict[int, list[Any]] = {id(ws): [] for ws in connected}
        for i, message in enumerate(BROADCASTS):
            broadcast(connected, message)
            for ws in connected:
                expected[id(ws)].append(message)
            if interleave:
                for k, ws in enumerate(connected):
                    own = f"to {k} after {i}: " + "own " * (k * 50)
                    await ws.send(own)
                    expected[id(ws)].append(own)
        # Map each server connection to its client through the ports.
        by_port = {ws.remote_address[1]: expected[id(ws)] for ws in connected}
        for client in clients:
            expected_messages = by_port[client.local_address[1]]
            received = [await client.recv() for _ in expected_messages]
            assert received == expected_messages
        for client in clients:
            await client.close()
        return connected


async def test_broadcast_without_context_takeover_shares_frames(deflate_calls: list[int]) -> None:
    factory = ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        server_max_window_bits=12,
        client_max_window_bits=12,
        compress_settings={"memLevel": 5},
    )
    connected = await broadcast_and_check({"extensions": [factory]}, interleave=False)
    deflating = [ws for ws in connected if ws.protocol.extensions]
    assert len(deflating) == 4
    assert all(ws.protocol.extensions[0].local_no_context_takeover for ws in deflating)
    # Each message was compressed once, for all four connections.
    assert deflate_calls == [len(m.encode() if isinstance(m, str) else m) for m in BROADCASTS]


async def test_broadcast_without_context_takeover_interleaved(deflate_calls: list[int]) -> None:
    factory = ServerPerMessageDeflateFactory(server_no_context_takeover=True)
    await broadcast_and_check({"extensions": [factory]}, interleave=True)
    assert len(deflate_calls) == len(BROADCASTS)


@pytest.mark.parametrize("interleave", [False, True])
async def test_broadcast_with_context_takeover(deflate_calls: list[int], interleave: bool) -> None:
    connected = await broadcast_and_check({}, interleave=interleave)
    deflating = [ws for ws in connected if ws.protocol.extensions]
    assert len(deflating) == 4
    assert not any(ws.protocol.extensions[0].local_no_context_takeover for ws in deflating)
    # Each connection compressed with its own context.
    assert deflate_calls == []


# -------------------------------------------------------- decompression bomb

SERVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import ferrows

    async def handler(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with ferrows.serve(handler, "127.0.0.1", 0, max_size=2**20) as server:
            print(server.sockets[0].getsockname()[1], flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())
    """
)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        return {
            m.group(1): int(m.group(2)) for m in re.finditer(r"^(VmRSS|VmHWM):\s+(\d+) kB", status.read(), re.MULTILINE)
        }


def bomb_payload(window_bits: int, segments: int) -> bytes:
    """Raw deflate data that inflates to ``segments`` MiB of zeros.

    One MiB of zeros compresses to about 1 KiB; after a full flush the
    compressor keeps no history, so the same bytes can be repeated.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -window_bits)
    segment = compressor.compress(bytes(2**20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = segment * segments
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def client_frame_bytes(payload: bytes, rsv1: bool) -> bytes:
    """A masked binary frame, built by hand."""
    mask = os.urandom(4)
    head = bytes([0x80 | (0x40 if rsv1 else 0) | 0x2])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 2**16:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + _core.apply_mask(payload, mask)


def open_raw(port: int) -> tuple[socket.socket, ClientProtocol]:
    """A client connection driven by hand: ferrows' Sans-I/O handshake over
    a blocking socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    proto = ClientProtocol(f"ws://127.0.0.1:{port}/", extensions=[ClientPerMessageDeflateFactory()])
    proto.send_request(proto.connect())
    for data in proto.data_to_send():
        sock.sendall(data)
    while proto.state is not OPEN:
        data = sock.recv(65536)
        assert data, "connection closed during the handshake"
        proto.receive_data(data)
    proto.events_received()
    return sock, proto


def read_until_closed(sock: socket.socket, proto: ClientProtocol) -> None:
    deadline = time.monotonic() + TIMEOUT
    while proto.state is not CLOSED and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            proto.receive_eof()
            break
        proto.receive_data(data)
        for out in proto.data_to_send():
            if out:
                sock.sendall(out)


def test_decompression_bomb() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())

        # Warm up: a legitimate compressed message of almost max_size.
        sock, proto = open_raw(port)
        [ext] = proto.extensions
        assert isinstance(ext, PerMessageDeflate)
        message = random.Random(2).randbytes(2**20 - 10).translate(FOUR_VALUES)
        compressor = zlib.compressobj(wbits=-ext.local_max_window_bits)
        data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        sock.sendall(client_frame_bytes(data[:-4], rsv1=True))
        received = b""
        while len(received) < 2**20:
            chunk = sock.recv(2**20)
            assert chunk
            proto.receive_data(chunk)
            received += chunk
            if any(frame.fin for frame in proto.events_received()):
                break
        sock.close()
        time.sleep(0.2)
        before = memory_kib(server.pid)

        # The bomb: about 1 MB on the wire, about 1 GB inflated.
        sock, proto = open_raw(port)
        [ext] = proto.extensions
        bomb = bomb_payload(ext.local_max_window_bits, segments=1000)
        assert 900_000 < len(bomb) < 2**20, "within max_size: only inflating can exceed it"
        start = time.monotonic()
        sock.sendall(client_frame_bytes(bomb, rsv1=True))
        read_until_closed(sock, proto)
        elapsed = time.monotonic() - start
        sock.close()
        after = memory_kib(server.pid)

        assert proto.close_rcvd is not None and proto.close_rcvd.code == 1009
        # Inflating stopped at the limit, before the frame's size was known,
        # and says so in websockets' words.
        assert proto.close_rcvd.reason == f"frame exceeds limit of {2**20} bytes"
        assert elapsed < 2.0, f"took {elapsed:.2f}s"
        growth = after["VmHWM"] - before["VmHWM"]
        assert growth < 8 * 1024, f"peak RSS grew by {growth} KiB"
        # The server is still serving.
        sock, proto = open_raw(port)
        sock.close()
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(TIMEOUT)
        if server.stdout is not None:
            server.stdout.close()
