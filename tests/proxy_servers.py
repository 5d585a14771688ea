"""Real proxies on 127.0.0.1 for the client tests: an HTTP proxy that opens
tunnels with CONNECT (optionally over TLS, optionally asking for
credentials, or refusing and misbehaving on demand) and a SOCKS proxy
(versions 4, 4a and 5, with RFC 1929 credentials when asked).

Each runs an asyncio server on its own event loop in a thread, so the
threading and the asyncio tests use the same proxies. They relay only to
127.0.0.1: any other destination is refused. Every read has a time limit
and every connection is cancelled when the proxy stops.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import ssl
import struct
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["HTTPProxy", "SOCKSProxy", "closed_port", "env_without_proxies", "silent_server"]

LIMIT = 5.0
"""Seconds any single read by a proxy may take."""

PROXY_VARIABLES = ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy", "socks_proxy", "no_proxy")


def env_without_proxies(monkeypatch: Any) -> None:
    """Removes every proxy variable (both spellings), so that tests start
    from a known environment."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def _allowed(host: str) -> str | None:
    """The address to connect to for ``host``, or None if it isn't local."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return host if address == ipaddress.ip_address("127.0.0.1") else None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (OSError, ssl.SSLError):
        writer.close()


class _ThreadedServer:
    """An asyncio server on a loop in a thread; a context manager."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-proxy", daemon=True)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.tunnels = 0
        """Connections relayed to a server."""
        self.port = 0

    @property
    def url(self) -> str:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        self.server = future.result(LIMIT)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl_context)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.add(writer)
        try:
            await asyncio.wait_for(self.serve(reader, writer), 30)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()
            self.writers.discard(writer)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _stop(self) -> None:
        self.server.close()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), LIMIT)
        for writer in list(self.writers):
            writer.transport.abort()
        # Since Python 3.12, wait_closed() also waits for the connections,
        # including those still in their TLS handshake, which no task holds
        # yet. A client that failed that handshake closes its socket from
        # its own event loop, which is blocked in __exit__ meanwhile: abort
        # them here (Python 3.13+), or wait_closed() waits for LIMIT.
        if hasattr(self.server, "abort_clients"):
            self.server.abort_clients()
        await asyncio.wait_for(self.server.wait_closed(), LIMIT)
        # Connections still in their TLS handshake belong to tasks of the
        # loop: give them a moment to fail, then cancel them, which closes
        # their sockets.
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:
            _, pending = await asyncio.wait(others, timeout=1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=LIMIT)
        # Let the transports just closed release their sockets.
        for _ in range(5):
            await asyncio.sleep(0)

    def __exit__(self, *exc_info: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(LIMIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(LIMIT)
        assert not self.thread.is_alive()
        self.loop.close()


async def _connect_and_pipe(
    address: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: bytes
) -> None:
    """Connects to the server, sends ``reply`` and relays both ways."""
    up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(address, port), LIMIT)
    try:
        writer.write(reply)
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        up_writer.transport.abort()


class HTTPProxy(_ThreadedServer):
    """A CONNECT proxy.

    Args:
        credentials: ``(user, password)`` to require, answering 407 otherwise.
        status: Answer this status (e.g. 403) instead of opening tunnels.
        answer: Raw bytes to answer instead of a valid response, then close.
        ssl_context: Serve over TLS (an ``https://`` proxy).

    Attributes:
        requests: ``(request line, headers)`` of each CONNECT received;
            headers is a list of ``(name, value)``.
    """

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        status: int | None = None,
        answer: bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(ssl_context)
        self.credentials = credentials
        self.status = status
        self.answer = answer
        self.requests: list[tuple[str, list[tuple[str, str]]]] = []

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def headers(self, index: int = -1) -> dict[str, str]:
        """Headers of a request, by lower-case name."""
        return {name.lower(): value for name, value in self.requests[index][1]}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), LIMIT)
        request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        headers = [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines)]
        self.requests.append((request_line, headers))
        if self.answer is not None:
            writer.write(self.answer)
            await writer.drain()
            return
        method, target, _ = request_line.split(" ")
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if dict((name.lower(), value) for name, value in headers).get("proxy-authorization") != expected:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
                )
                await writer.drain()
                return
        host, _, port = target.rpartition(":")
        address = _allowed(host.strip("[]"))
        status = self.status or (200 if method == "CONNECT" and address is not None else 403)
        if status != 200:
            writer.write(f"HTTP/1.1 {status} Refused\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        assert address is not None
        self.tunnels += 1
        await _connect_and_pipe(address, int(port), reader, writer, b"HTTP/1.1 200 Connection established\r\n\r\n")


class SOCKSProxy(_ThreadedServer):
    """A SOCKS 4, 4a and 5 proxy (CONNECT only).

    Args:
        credentials: ``(user, password)`` that SOCKS 5 clients must send
            (RFC 1929); SOCKS 4 clients are then refused.

    Attributes:
        requests: ``(version, host, port)`` of each CONNECT; ``host`` is
            what the client sent: an address, or a name it let the proxy
            resolve.
    """

    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.credentials = credentials
        self.requests: list[tuple[int, str, int]] = []

    @property
    def url(self) -> str:
        return f"socks5h://127.0.0.1:{self.port}"

    def url_for(self, scheme: str) -> str:
        if self.credentials is None:
            return f"{scheme}://127.0.0.1:{self.port}"
        user, password = self.credentials
        return f"{scheme}://{user}:{password}@127.0.0.1:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def read(n: int) -> bytes:
            return await asyncio.wait_for(reader.readexactly(n), LIMIT)

        version = (await read(1))[0]
        if version == 4:
            await self._serve_v4(read, reader, writer)
        elif version == 5:
            await self._serve_v5(read, reader, writer)

    async def _serve_v4(self, read: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command, port = struct.unpack("!BH", await read(3))
        raw_address = await read(4)
        await asyncio.wait_for(reader.readuntil(b"\x00"), LIMIT)  # user id
        if raw_address[:3] == b"\x00\x00\x00" and raw_address[3]:
            # SOCKS 4a: the name follows.
            host = (await asyncio.wait_for(reader.readuntil(b"\x00"), LIMIT))[:-1].decode()
        else:
            host = str(ipaddress.IPv4Address(raw_address))
        self.requests.append((4, host, port))
        address = _allowed(host)
        if command != 1 or address is None or self.credentials is not None:
            writer.write(b"\x00\x5b" + b"\x00" * 6)
            return
        self.tunnels += 1
        await _connect_and_pipe(address, port, reader, writer, b"\x00\x5a" + b"\x00" * 6)

    async def _serve_v5(self, read: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        methods = await read((await read(1))[0])
        wanted = 2 if self.credentials is not None else 0
        if wanted not in methods:
            writer.write(b"\x05\xff")
            return
        writer.write(bytes([5, wanted]))
        if wanted == 2:
            # RFC 1929: version 1, user name, password.
            await read(1)
            user = (await read((await read(1))[0])).decode()
            password = (await read((await read(1))[0])).decode()
            if (user, password) != self.credentials:
                writer.write(b"\x01\x01")
                return
            writer.write(b"\x01\x00")
        _, command, _, kind = await read(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await read(4)))
        elif kind == 3:
            host = (await read((await read(1))[0])).decode()
        else:
            host = str(ipaddress.IPv6Address(await read(16)))
        (port,) = struct.unpack("!H", await read(2))
        self.requests.append((5, host, port))
        address = _allowed(host)
        if command != 1 or address is None:
            # 2: connection not allowed by ruleset.
            writer.write(b"\x05\x02\x00\x01" + b"\x00" * 6)
            return
        self.tunnels += 1
        await _connect_and_pipe(address, port, reader, writer, b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (just released)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])
