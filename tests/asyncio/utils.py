"""Helpers for the asyncio tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import struct
from collections.abc import AsyncIterator
from typing import Any

import ferrows

MS = 0.001 * float(os.environ.get("FERROWS_TESTS_TIMEOUT_FACTOR", "1"))
"""One millisecond, scaled for slow machines: express timeouts in it."""

TIMEOUT = 5.0
"""Bound on any wait that should succeed quickly."""


def port_of(server: Any) -> int:
    return server.sockets[0].getsockname()[1]


def uri_of(server: Any, path: str = "/", scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{port_of(server)}{path}"


@contextlib.asynccontextmanager
async def serving(handler: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """A ferrows server on 127.0.0.1 and a free port, closed on exit."""
    async with asyncio.timeout(TIMEOUT):
        server = await ferrows.serve(handler, "127.0.0.1", 0, **kwargs)
    try:
        yield server
    finally:
        server.close()
        async with asyncio.timeout(TIMEOUT):
            await server.wait_closed()


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def wait_for(predicate: Any, timeout: float = TIMEOUT) -> None:
    """Polls ``predicate`` until it is true, at most ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(MS)


class ListHandler(logging.Handler):
    """Collects log records."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured_logs(name: str, level: int = logging.ERROR) -> Any:
    logger = logging.getLogger(name)
    handler = ListHandler()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# A peer written by hand, for behaviour ferrows' own client would not show:
# not answering pings or close frames, or not finishing the handshake.


def handshake_request(port: int, path: str = "/", headers: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    ).encode()


async def raw_connect(port: int, path: str = "/") -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Opens a connection by hand; returns the streams and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(handshake_request(port, path))
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer, head


async def read_frame(reader: asyncio.StreamReader) -> tuple[bool, int, bytes]:
    """Reads one unmasked frame; returns ``(fin, opcode, payload)``."""
    b0, b1 = await reader.readexactly(2)
    assert not b1 & 0x80, "server frames are not masked"
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return bool(b0 & 0x80), b0 & 0x0F, await reader.readexactly(length)


def parse_close(payload: bytes) -> tuple[int, str]:
    (code,) = struct.unpack("!H", payload[:2])
    return code, payload[2:].decode()


@contextlib.asynccontextmanager
async def stream_server(handler: Any) -> AsyncIterator[asyncio.Server]:
    """A plain TCP server (not WebSocket) on a free port; every connection
    is closed and every handler finished on exit, so nothing leaks."""
    tasks: set[asyncio.Task[Any]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.close()
        async with asyncio.timeout(TIMEOUT):
            await server.wait_closed()
            if tasks:
                await asyncio.wait(tasks)


class RecordingTransport:
    """Wraps a transport (uvloop's have read-only methods) to record writes."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def recording_writes(connection: Any) -> list[bytes]:
    """Records what ``connection`` writes to its transport."""
    recorder = RecordingTransport(connection.transport)
    connection.transport = recorder
    return recorder.writes


def count_compactions(protocol: Any, calls: dict[str, int], key: str) -> None:
    """Counts the calls of ``protocol.compact_if_idle`` in ``calls[key]``."""
    original = protocol.compact_if_idle

    def compact_if_idle() -> bool:
        calls[key] += 1
        return bool(original())

    protocol.compact_if_idle = compact_if_idle
