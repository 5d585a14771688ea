"""Helpers for the threading tests: servers run in a thread, asyncio
servers run on a loop in a thread, and a hand-written peer for behaviour
ferrows' own peers never show (ignoring pings or close frames)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ferrows import _core
from ferrows.sync import serve

from ..asyncio.utils import MS, TIMEOUT, captured_logs

__all__ = [
    "MS",
    "TIMEOUT",
    "answer_handshake",
    "asyncio_server",
    "captured_logs",
    "echo",
    "raw_server",
    "running",
    "uri_of",
]


def port_of(server: Any) -> int:
    sock = server.socket if hasattr(server, "socket") else server.sockets[0]
    return sock.getsockname()[1]


def uri_of(server: Any, path: str = "/", scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{port_of(server)}{path}"


def echo(ws: Any) -> None:
    for message in ws:
        ws.send(message)


@contextlib.contextmanager
def running(server: Any) -> Iterator[Any]:
    """Runs ``server.serve_forever()`` in a thread; shuts down on exit."""
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
        assert not thread.is_alive()


@contextlib.contextmanager
def serving(handler: Callable[..., None], **kwargs: Any) -> Iterator[Any]:
    """A ferrows threading server on 127.0.0.1 and a free port."""
    with running(serve(handler, "127.0.0.1", 0, **kwargs)) as server:
        yield server


@contextlib.contextmanager
def asyncio_server(
    start: Callable[[], Any], loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
) -> Iterator[Any]:
    """Runs an asyncio server on an event loop in a thread.

    ``start`` is a coroutine function returning a server with ``close()``
    and ``wait_closed()``.
    """
    loop = loop_factory()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    server = None
    try:
        server = asyncio.run_coroutine_threadsafe(start(), loop).result(TIMEOUT)
        yield server
    finally:
        if server is not None:

            async def stop() -> None:
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        loop.close()


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("peer closed during the handshake")
        data += chunk
    return data


def answer_handshake(conn: socket.socket) -> None:
    """Reads a client's opening handshake and accepts it, by hand."""
    head = _read_head(conn)
    key = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + _core.accept_key(key).encode() + b"\r\n\r\n"
    )


@contextlib.contextmanager
def raw_server(behaviour: str) -> Iterator[tuple[int, list[bytes]]]:
    """A server that accepts the handshake of one client, then either
    ``"ignore"`` (reads and discards everything, answering nothing) or
    ``"silent"`` (never answers the request). Yields its port and the list
    of bytes received after the handshake."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    received: list[bytes] = []
    stop = threading.Event()

    def run() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(0.05)
            if behaviour != "silent":
                conn.settimeout(TIMEOUT)
                answer_handshake(conn)
                conn.settimeout(0.05)
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                received.append(data)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        stop.set()
        thread.join(TIMEOUT)
        listener.close()
        assert not thread.is_alive()


def handshake_request(port: int, path: str = "/", headers: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    ).encode()


def assert_each_thread_in_order(received: list[Any], threads_count: int, payload: Callable[[int, int], bytes]) -> None:
    """Checks binary messages ``payload(tid, i)`` sent by several threads:
    each arrived whole, and each thread's in the order it sent them (the
    first two bytes of a message are its thread and index)."""
    last = [-1] * threads_count
    for message in received:
        tid, i = message[0], message[1]
        assert message == payload(tid, i)
        assert i == last[tid] + 1
        last[tid] = i
