"""A hostile peer written by hand with blocking sockets, against ferrows'
servers and clients on every I/O layer (asyncio on both loops, threading):
it sends exactly the bytes it is told, in the pieces and at the times it is
told, and records the frames ferrows answers with."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvloop

import ferrows
import ferrows.sync.client
from ferrows.exceptions import ConnectionClosedError
from frame_utils import CLOSE, xor

from .sync.utils import answer_handshake, asyncio_server, handshake_request, serving

TIMEOUT = 5.0
MASK = b"\x01\x02\x03\x04"
LAYERS = ["asyncio", "uvloop", "sync"]
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}

Frames = list[tuple[int, bytes]]


def splits(data: bytes) -> list[list[bytes]]:
    """The data in one write, then cut in two at every byte."""
    return [[data]] + [[data[:i], data[i:]] for i in range(1, len(data))]


def send_pieces(sock: socket.socket, pieces: list[bytes], gap: float = 0.002) -> None:
    """Writes each piece, ``gap`` seconds apart (separate reads on the other
    end, most of the time: the socket does not delay small writes)."""
    for i, piece in enumerate(pieces):
        if i:
            time.sleep(gap)
        sock.sendall(piece)


def parse_frames(data: bytes, *, masked: bool) -> tuple[Frames, bytes]:
    """The complete frames at the start of ``data``, and what follows."""
    frames = []
    while len(data) >= 2:
        b0, b1 = data[0], data[1]
        assert bool(b1 & 0x80) is masked, "masking is the sender's side's"
        length, pos = b1 & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                break
            (length,) = struct.unpack("!H", data[2:4])
            pos = 4
        assert length < 2**16
        key = b""
        if masked:
            key, pos = data[pos : pos + 4], pos + 4
        if len(data) < pos + length:
            break
        payload = data[pos : pos + length]
        frames.append((b0 & 0x0F, xor(payload, key) if masked else payload))
        data = data[pos + length :]
    return frames, data


def read_frames(sock: socket.socket, *, masked: bool, until_close: bool = False, timeout: float = TIMEOUT) -> Frames:
    """Frames received until EOF, or with ``until_close`` until a close
    frame, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    frames: Frames = []
    while True:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        frames, _ = parse_frames(data, masked=masked)
        if until_close and frames and frames[-1][0] == CLOSE:
            break
    return frames


def close_codes(frames: Frames) -> Frames:
    """Frames with close payloads cut to the code (reasons are informative)."""
    return [(op, data[:2] if op == CLOSE else data) for op, data in frames]


def close_frame(code: int) -> tuple[int, bytes]:
    return (CLOSE, struct.pack("!H", code))


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


@contextlib.contextmanager
def raw_client(port: int) -> Iterator[socket.socket]:
    """A connection to a server on ``port``, after the opening handshake."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(handshake_request(port))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 ")
        yield sock


# ------------------------------------------------------------------ clients


@contextlib.contextmanager
def raw_server(script: Callable[[socket.socket], Any]) -> Iterator[tuple[int, list[Any]]]:
    """A server that answers one handshake, then runs ``script`` on the
    connection; yields its port and, once done, the script's result."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    results: list[Any] = []

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(TIMEOUT)
            answer_handshake(conn)
            results.append(script(conn))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield listener.getsockname()[1], results
    finally:
        thread.join(3 * TIMEOUT)
        listener.close()
        assert not thread.is_alive()


def run_client(layer: str, uri: str) -> BaseException | None:
    """ferrows' echo client on ``layer``; returns the ConnectionClosedError
    that ended it, or None after a normal closure."""
    if layer == "sync":
        with ferrows.sync.client.connect(uri, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            try:
                for message in ws:
                    ws.send(message)
            except ConnectionClosedError as exc:
                return exc
        return None

    async def main() -> BaseException | None:
        async with asyncio.timeout(3 * TIMEOUT):
            async with ferrows.connect(uri, close_timeout=TIMEOUT) as ws:
                try:
                    async for message in ws:
                        await ws.send(message)
                except ConnectionClosedError as exc:
                    return exc
        return None

    with asyncio.Runner(loop_factory=LOOPS[layer]) as runner:
        return runner.run(main())
