"""No accepted message is lost to a protocol violation that follows it.

A hostile peer sends a valid text message, then a frame that violates the
protocol, then a ping, all in one write, and again split at every byte. On
both sides (server and client), on both I/O layers (asyncio on both loops,
threading), ferrows' application must receive the message, and its echo
must be on the wire before the close frame, which carries 1002; the ping
after the bad frame gets no pong.

The peer is written by hand with blocking sockets, so that it sends exactly
the bytes a hostile peer would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvloop

import ferrows
import ferrows.sync.client
from ferrows import _core
from ferrows.exceptions import ConnectionClosedError
from frame_utils import BINARY, CLOSE, CONT, PING, TEXT, frame, xor

from .sync.utils import asyncio_server, handshake_request, serving

TIMEOUT = 5.0
MASK = b"\x01\x02\x03\x04"
LAYERS = ["asyncio", "uvloop", "sync"]
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}

# The bytes after the valid message: a violation, then a ping that must
# not be answered. Each is built for a sender that masks or not.
VIOLATIONS: dict[str, Callable[[bytes | None], bytes]] = {
    "rsv2": lambda mask: frame(TEXT, b"bad", rsv=0b010, mask=mask),
    "opcode 5": lambda mask: frame(5, b"", mask=mask),
    "opcode 11": lambda mask: frame(11, b"", mask=mask),
    "text inside a fragmented message": lambda mask: (
        frame(BINARY, b"a", fin=False, mask=mask) + frame(TEXT, b"b", mask=mask)
    ),
    "continuation without a start": lambda mask: frame(CONT, b"x", mask=mask),
}


def hostile_bytes(violation: str, *, masked: bool) -> bytes:
    mask = MASK if masked else None
    return frame(TEXT, b"hello", mask=mask) + VIOLATIONS[violation](mask) + frame(PING, b"late", mask=mask)


def splits(data: bytes) -> list[list[bytes]]:
    """The data in one write, then cut in two at every byte."""
    return [[data]] + [[data[:i], data[i:]] for i in range(1, len(data))]


def send_pieces(sock: socket.socket, pieces: list[bytes]) -> None:
    for i, piece in enumerate(pieces):
        if i:
            time.sleep(0.002)  # separate reads on the other end, most of the time
        sock.sendall(piece)


def read_frames(sock: socket.socket, *, masked: bool) -> list[tuple[int, bytes]]:
    """Frames received until EOF (or a close frame and then EOF)."""
    sock.settimeout(TIMEOUT)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    frames = []
    while data:
        b0, b1 = data[0], data[1]
        assert bool(b1 & 0x80) is masked
        length, pos = b1 & 0x7F, 2
        if length == 126:
            (length,) = struct.unpack("!H", data[2:4])
            pos = 4
        key = b""
        if masked:
            key, pos = data[pos : pos + 4], pos + 4
        payload = data[pos : pos + length]
        frames.append((b0 & 0x0F, xor(payload, key) if masked else payload))
        data = data[pos + length :]
    return frames


def expected_frames() -> list[tuple[int, bytes]]:
    return [(TEXT, b"hello"), (CLOSE, struct.pack("!H", 1002))]


def check(frames: list[tuple[int, bytes]], pieces: list[bytes]) -> None:
    # Close reasons are informative: compare the code only.
    got = [(op, data[:2] if op == CLOSE else data) for op, data in frames]
    assert got == expected_frames(), f"split {[len(p) for p in pieces]}: {frames}"


# ------------------------------------------------------------------ servers


async def async_echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


def sync_echo(ws: Any) -> None:
    for message in ws:
        ws.send(message)


@contextlib.contextmanager
def ferrows_server(layer: str) -> Iterator[int]:
    """An echo server of ``layer`` on 127.0.0.1; yields its port."""
    if layer == "sync":
        with serving(sync_echo) as server:
            yield server.socket.getsockname()[1]
    else:

        async def start() -> Any:
            return await ferrows.serve(async_echo, "127.0.0.1", 0)

        with asyncio_server(start, loop_factory=LOOPS[layer]) as server:
            yield server.sockets[0].getsockname()[1]


def raw_client(port: int, pieces: list[bytes]) -> list[tuple[int, bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(handshake_request(port))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 ")
        send_pieces(sock, pieces)
        return read_frames(sock, masked=False)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_server_answers_before_failing(layer: str, violation: str) -> None:
    with ferrows_server(layer) as port:
        for pieces in splits(hostile_bytes(violation, masked=True)):
            check(raw_client(port, pieces), pieces)


# ------------------------------------------------------------------ clients


@contextlib.contextmanager
def raw_server(pieces: list[bytes]) -> Iterator[tuple[int, list[list[tuple[int, bytes]]]]]:
    """A server that answers one handshake, sends ``pieces`` and records the
    frames the client sends until it closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    received: list[list[tuple[int, bytes]]] = []

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(1)
            key = next(
                line.split(b":", 1)[1].strip().decode()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + _core.accept_key(key).encode() + b"\r\n\r\n"
            )
            send_pieces(conn, pieces)
            frames = []
            # The client closes TCP only after the server: stop reading at
            # its close frame, then close.
            conn.settimeout(TIMEOUT)
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
                frames = read_frames_from(data)
                if frames and frames[-1][0] == CLOSE:
                    break
            received.append(frames)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        thread.join(TIMEOUT)
        listener.close()
        assert not thread.is_alive()


def read_frames_from(data: bytes) -> list[tuple[int, bytes]]:
    """Complete masked frames at the start of ``data``."""
    frames = []
    while len(data) >= 6:
        length = data[1] & 0x7F
        assert length < 126
        if len(data) < 6 + length:
            break
        frames.append((data[0] & 0x0F, xor(data[6 : 6 + length], data[2:6])))
        data = data[6 + length :]
    return frames


def run_client(layer: str, uri: str) -> BaseException | None:
    """ferrows' echo client; returns what ended its loop."""
    if layer == "sync":
        with ferrows.sync.client.connect(uri, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            try:
                for message in ws:
                    ws.send(message)
            except ConnectionClosedError as exc:
                return exc
        return None

    async def main() -> BaseException | None:
        async with asyncio.timeout(2 * TIMEOUT):
            async with ferrows.connect(uri, close_timeout=TIMEOUT) as ws:
                try:
                    async for message in ws:
                        await ws.send(message)
                except ConnectionClosedError as exc:
                    return exc
        return None

    with asyncio.Runner(loop_factory=LOOPS[layer]) as runner:
        return runner.run(main())


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_client_answers_before_failing(layer: str, violation: str) -> None:
    for pieces in splits(hostile_bytes(violation, masked=False)):
        with raw_server(pieces) as (port, received):
            exc = run_client(layer, f"ws://127.0.0.1:{port}/")
        assert isinstance(exc, ConnectionClosedError)
        assert exc.sent is not None and exc.sent.code == 1002
        assert exc.rcvd is None
        assert received, "the raw server got nothing"
        check(received[0], pieces)
