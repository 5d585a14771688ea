"""The fixed client of the "server only" mode: raw sockets, no WebSocket
library, so every server meets exactly the same peer.

It is an :class:`asyncio.Protocol` that writes the upgrade request itself,
masks the pool's frames once at start-up (a masked frame can be resent as
is: the key only has to be unpredictable to the network, and these are
random), batches its writes per read, and checks every byte it gets back.
Compression, when negotiated, uses zlib directly with the windows the
server accepted.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import zlib
from collections.abc import Callable
from typing import Any

from common import FrameReader, accept_key, frame

DEFLATE_OFFER = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
"""The offer of the compression scenario: 12-bit windows both ways."""
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"
"""What browsers offer; used by the handshake and memory scenarios."""
CLOSE_1000 = frame(8, (1000).to_bytes(2, "big"), masked=True)


class HandshakeError(Exception):
    pass


def parse_extensions(value: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    parts = [p.strip() for p in value.split(";")]
    params["name"] = parts[0]
    for p in parts[1:]:
        k, _, v = p.partition("=")
        params[k.strip()] = v.strip().strip('"') if v else None
    return params


class RawConnection(asyncio.Protocol):
    """One client connection. ``on_message(conn, opcode, payload)`` gets each
    data message, decompressed; :attr:`opened` resolves after the handshake
    (or at once without one), :attr:`closed` when the TCP connection ends."""

    def __init__(
        self,
        port: int,
        *,
        handshake: bool = True,
        offer: str | None = None,
        on_message: Callable[[RawConnection, int, bytes], None] | None = None,
        index: int = 0,
        path: str = "/",
    ) -> None:
        loop = asyncio.get_running_loop()
        self.port = port
        self.path = path
        self.handshake = handshake
        self.offer = offer
        self.on_message = on_message
        self.index = index
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.got_close = False
        self.close_sent = False
        self.reader = FrameReader(unmask=handshake)
        self.head = b""
        self.extensions = ""
        self.compressor: Any = None
        self.decompressor: Any = None
        self.server_bits = 15
        self.client_bits = 15
        self.error: str | None = None
        self.outbox: list[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.handshake:
            self.opened.set_result(None)
            return
        self.key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
        )
        if self.offer:
            request += f"Sec-WebSocket-Extensions: {self.offer}\r\n"
        self.transport.write((request + "\r\n").encode())

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > 16384:
                    self.fail("response head too large")
                return
            data = self.head[end + 4 :]
            try:
                self.check_response(self.head[:end].decode("latin-1"))
            except HandshakeError as exc:
                self.fail(str(exc))
                return
            self.opened.set_result(None)
            if not data:
                return
        self.outbox = []
        try:
            messages = self.reader.feed(data)
        except ValueError as exc:
            self.fail(str(exc))
            return
        for opcode, rsv1, payload in messages:
            if opcode == 9:
                self.outbox.append(frame(10, payload, masked=True))
            elif opcode == 8:
                self.got_close = True
                if not self.close_sent:
                    self.close_sent = True
                    self.outbox.append(CLOSE_1000)
            elif opcode in (1, 2):
                if rsv1:
                    if self.decompressor is None:
                        self.fail("RSV1 set without permessage-deflate")
                        return
                    payload = self.decompressor.decompress(payload + b"\x00\x00\xff\xff")
                    if self.server_nct:
                        self.decompressor = zlib.decompressobj(wbits=-self.server_bits)
                if self.on_message is not None:
                    self.on_message(self, opcode, payload)
        if self.outbox:
            self.transport.write(b"".join(self.outbox))  # type: ignore[union-attr]
        self.outbox = None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(self.error or "connection lost during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- helpers

    def check_response(self, head: str) -> None:
        lines = head.split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise HandshakeError(f"status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers[name] = (headers[name] + ", " if name in headers else "") + value.strip()
        if headers.get("sec-websocket-accept") != accept_key(self.key):
            raise HandshakeError("wrong Sec-WebSocket-Accept")
        self.extensions = headers.get("sec-websocket-extensions", "")
        self.server_nct = self.client_nct = False
        if self.extensions:
            params = parse_extensions(self.extensions)
            if params["name"] != "permessage-deflate" or not self.offer:
                raise HandshakeError(f"unexpected extension {self.extensions!r}")
            self.server_bits = int(params.get("server_max_window_bits") or 15)
            self.client_bits = int(params.get("client_max_window_bits") or 12)
            self.server_nct = "server_no_context_takeover" in params
            self.client_nct = "client_no_context_takeover" in params
            # Our own window is 12 bits whatever the server allows.
            self.client_bits = min(self.client_bits, 12)
            self.compressor = zlib.compressobj(wbits=-self.client_bits)
            self.decompressor = zlib.decompressobj(wbits=-self.server_bits)

    def fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
        if self.transport is not None:
            self.transport.abort()

    def send_frame(self, data: bytes) -> None:
        """Writes a prepared frame (batched while handling a read)."""
        if self.outbox is not None:
            self.outbox.append(data)
        else:
            self.transport.write(data)  # type: ignore[union-attr]

    def compressed_frame(self, opcode: int, payload: bytes) -> bytes:
        data = self.compressor.compress(payload) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.client_nct:
            self.compressor = zlib.compressobj(wbits=-self.client_bits)
        return frame(opcode, data[:-4], masked=True, rsv1=True)

    async def close(self, timeout: float = 2.0) -> None:
        """Closing handshake, bounded; then drop the connection."""
        if self.transport is None or self.transport.is_closing():
            return
        if not self.handshake:
            self.transport.close()
            return
        if not self.close_sent:
            self.close_sent = True
            self.transport.write(CLOSE_1000)
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            pass
        finally:
            self.transport.abort()


async def open_raw(port: int, **kwargs: Any) -> RawConnection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: RawConnection(port, **kwargs), "127.0.0.1", port)
    await asyncio.wait_for(conn.opened, 10)
    return conn


# -- scenarios --------------------------------------------------------------


async def echo(
    port: int,
    driver: Any,
    *,
    handshake: bool,
    compress: bool,
    text: bool,
    timeout: float,
) -> dict:
    opcode = 1 if text else 2
    encoded = [p.encode() if text else p for p in driver.pool]
    # The driver works on the pool's objects; the wire carries bytes.
    by_id = {id(p): e for p, e in zip(driver.pool, encoded, strict=True)}
    done = asyncio.get_running_loop().create_future()

    def on_message(conn: RawConnection, op: int, payload: bytes) -> None:
        if op != opcode:
            driver.error = f"message {driver.received}: opcode {op}, expected {opcode}"
            driver.done = True
        else:
            try:
                message = payload.decode() if text else payload
            except UnicodeDecodeError:
                driver.error = f"message {driver.received}: invalid UTF-8"
                driver.done = True
            else:
                nxt = driver.on_message(message)
                if nxt is not None:
                    conn.send_frame(make(conn, nxt))
        if driver.done and not done.done():
            done.set_result(None)

    prepared = {id(p): frame(opcode, e, masked=True) for p, e in zip(driver.pool, encoded, strict=True)}
    if not handshake:
        # A tcp echo returns the masked frames as sent: expect exactly those
        # (payload after the 4-byte key), without paying to unmask them.
        masked = []
        for p in driver.pool:
            f = prepared[id(p)]
            n = f[1] & 0x7F
            masked.append(f[{126: 8, 127: 14}.get(n, 6) :])
        prepared = {id(m): prepared[id(p)] for p, m in zip(driver.pool, masked, strict=True)}
        driver.pool = masked
        text = False

    def make(conn: RawConnection, payload: Any) -> bytes:
        if compress:
            return conn.compressed_frame(opcode, by_id[id(payload)])
        return prepared[id(payload)]

    conn = await open_raw(
        port,
        handshake=handshake,
        offer=DEFLATE_OFFER if compress else None,
        on_message=on_message,
    )
    try:
        if compress and conn.compressor is None:
            raise HandshakeError(f"compression not negotiated (extensions: {conn.extensions!r})")
        conn.transport.write(b"".join(make(conn, p) for p in driver.first()))  # type: ignore[union-attr]
        await asyncio.wait_for(
            asyncio.wait([done, conn.closed], return_when=asyncio.FIRST_COMPLETED),
            timeout,
        )
        if not done.done():
            raise ConnectionError(conn.error or "connection closed by the server")
    finally:
        await conn.close()
    return {"extensions": conn.extensions}


async def broadcast(port: int, driver: Any, *, handshake: bool, conns: int, timeout: float) -> dict:
    done = asyncio.get_running_loop().create_future()

    def on_message(conn: RawConnection, op: int, payload: bytes) -> None:
        driver.on_message(conn.index, payload)
        if driver.done and not done.done():
            done.set_result(None)

    connections: list[RawConnection] = []
    try:
        for start in range(0, conns, 20):
            connections += await asyncio.gather(
                *(
                    open_raw(port, handshake=handshake, on_message=on_message, index=i)
                    for i in range(start, min(conns, start + 20))
                )
            )
        command = frame(1, driver.command().encode(), masked=True)
        driver.round_done = lambda: None if driver.done else connections[0].send_frame(command)
        await asyncio.sleep(0.1)  # let the server register the last ones
        driver.begin()
        connections[0].send_frame(command)
        closed = [c.closed for c in connections]
        await asyncio.wait_for(asyncio.wait([done, *closed], return_when=asyncio.FIRST_COMPLETED), timeout)
        if not done.done():
            raise ConnectionError(next((c.error for c in connections if c.error), None) or "connection closed")
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    return {"conns": len(connections)}


async def handshakes(
    port: int,
    meter: Any,
    *,
    warmup: float,
    duration: float,
    concurrency: int,
    max_ops: int,
) -> dict:
    """Workers connect, upgrade, close and wait for the server to hang up,
    over and over; counts the completed cycles in the measured window."""
    count = 0
    phase = 0
    mark = 0
    deadline = time.perf_counter() + warmup
    extensions: set[str] = set()

    async def worker() -> None:
        nonlocal count, phase, mark, deadline
        while phase < 2:
            conn = await open_raw(port, offer=BROWSER_OFFER)
            extensions.add(conn.extensions)
            conn.close_sent = True
            conn.transport.write(CLOSE_1000)  # type: ignore[union-attr]
            await asyncio.wait_for(asyncio.shield(conn.closed), 5)
            if not conn.got_close:
                raise ConnectionError("no close frame from the server")
            count += 1
            now = time.perf_counter()
            if phase == 0 and now >= deadline:
                meter.start()
                mark = count
                deadline = meter.t0 + duration
                phase = 1
            elif phase == 1 and (now >= deadline or count - mark >= max_ops):
                meter.stop(count - mark)
                phase = 2

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"extensions": sorted(extensions)}


async def memory(
    port: int, server_pid: int, *, handshake: bool, conns: int, idle: float, compress: bool = True
) -> dict:
    """Server RSS growth per idle connection, with compression negotiated
    (a browser's offer) or without (no offer).

    Each connection echoes one 1 KiB compressible text message (so the
    server's compression state exists, as on any connection that was used),
    then all of them stay idle for ``idle`` seconds before the server's RSS
    is read: a server may free per-connection state when a connection goes
    idle. The bare TCP peer (``handshake=False``) sends nothing."""
    from common import proc_rss, text_pool

    offer = BROWSER_OFFER if handshake and compress else None
    message = text_pool(1024, 1, seed=1024)[0].encode()
    opened: list[RawConnection] = []
    loop = asyncio.get_running_loop()

    async def open_one() -> RawConnection:
        conn = await open_raw(port, handshake=handshake, offer=offer)
        if not handshake:
            return conn
        echoed = loop.create_future()

        def on_message(c: RawConnection, opcode: int, payload: bytes) -> None:
            if not echoed.done():
                echoed.set_result((opcode, payload))

        conn.on_message = on_message
        conn.transport.write(  # type: ignore[union-attr]
            conn.compressed_frame(1, message) if conn.compressor else frame(1, message, masked=True)
        )
        opcode, payload = await asyncio.wait_for(echoed, 10)
        if opcode != 1 or payload != message:
            raise ValueError(f"wrong echo on an idle connection: opcode {opcode}, {len(payload)} bytes")
        return conn

    async def open_many(n: int) -> None:
        for start in range(0, n, 25):
            opened.extend(await asyncio.gather(*(open_one() for _ in range(min(25, n - start)))))

    try:
        await open_many(25)  # warm-up: lazy imports, first allocations
        await asyncio.sleep(0.3)
        before = proc_rss(server_pid)
        t0 = time.perf_counter()
        await open_many(conns)
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(idle)
        after = proc_rss(server_pid)
        alive = sum(1 for c in opened if not c.closed.done())
        if alive != len(opened):
            raise ConnectionError(f"{len(opened) - alive} idle connections were closed by the server")
        negotiated = {c.extensions for c in opened}
    finally:
        for c in opened:
            if c.transport is not None:
                c.transport.abort()
    per_conn = (after - before) / conns
    return {
        "ops": conns,
        "elapsed": elapsed,
        "rate": per_conn / 1024,
        "rss_before": before,
        "rss_after": after,
        "extensions": sorted(negotiated),
    }
