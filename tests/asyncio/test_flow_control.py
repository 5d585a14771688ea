"""Backpressure: bounded buffers when a peer doesn't read, and reading that
pauses and resumes with the receive queue."""

from __future__ import annotations

import asyncio
from typing import Any

import ferrows

from .utils import MS, TIMEOUT, serving, uri_of, wait_for

MIB = 2**20
FRAME_HEADER = 14


class BufferMonitor:
    """Samples a transport's write buffer size every millisecond."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.peak = 0
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        while not self.connection.closed:
            self.peak = max(self.peak, self.connection.transport.get_write_buffer_size())
            await asyncio.sleep(MS)

    def stop(self) -> None:
        self.task.cancel()


async def stalled(task: asyncio.Task[Any], progress: Any, duration: float = 50 * MS) -> bool:
    """True if ``task`` makes no progress (``progress()`` unchanged) for
    ``duration`` seconds while not done."""
    before = progress()
    await asyncio.sleep(duration)
    return not task.done() and progress() == before


async def test_server_send_to_client_that_does_not_read() -> None:
    """(a) 100 MB to a client that doesn't read: the server's write buffer
    stays at write_limit plus one frame, and other clients are served."""
    payload = b"\xab" * MIB
    count = 100
    sent = 0
    flooding: dict[str, Any] = {}

    async def handler(ws: Any) -> None:
        nonlocal sent
        if ws.request.path == "/flood":
            flooding["connection"] = ws
            flooding["monitor"] = BufferMonitor(ws)
            for _ in range(count):
                await ws.send(payload)
                sent += 1
            await ws.wait_closed()
        else:
            async for message in ws:
                await ws.send(message)

    async with serving(handler, ping_interval=None, compression=None) as server:
        async with asyncio.timeout(4 * TIMEOUT):
            async with ferrows.connect(uri_of(server, "/flood"), ping_interval=None, compression=None) as slow:
                await wait_for(lambda: "connection" in flooding)
                task = server_task = next(iter(server._tasks))
                # The handler gets stuck: sending waits for the buffer to drain.
                await wait_for(lambda: sent > 0)
                while not await stalled(task, lambda: sent):
                    pass
                assert sent < count // 4, "no backpressure: the handler kept sending"
                server_side = flooding["connection"]
                assert server_side.transport.get_write_buffer_size() <= 2**16 + MIB + FRAME_HEADER
                # The client stopped reading too: it holds at most about one
                # message beyond read_limit.
                assert slow.recv_messages.size <= 2**16 + MIB
                assert not slow.transport.is_reading()

                # Other clients are served meanwhile.
                async with ferrows.connect(uri_of(server, "/echo")) as other:
                    await other.send("still served")
                    assert await other.recv() == "still served"
                assert not server_task.done() and sent < count

                # Now read everything: all 100 MB arrive, buffers stay bounded.
                for _ in range(count):
                    message = await slow.recv()
                    assert len(message) == MIB
                assert sent == count
                monitor = flooding["monitor"]
                monitor.stop()
                assert 0 < monitor.peak <= 2**16 + MIB + FRAME_HEADER


async def test_client_send_to_server_that_does_not_read() -> None:
    """(b) A handler that doesn't read: the server pauses reading, holding
    about one message, and the client's send() waits."""
    payload = b"\xcd" * MIB
    count = 100
    release = asyncio.Event()
    received: list[int] = []
    server_side: list[Any] = []

    async def handler(ws: Any) -> None:
        server_side.append(ws)
        await release.wait()
        for _ in range(count):
            received.append(len(await ws.recv()))

    async with serving(handler, ping_interval=None, compression=None) as server, asyncio.timeout(4 * TIMEOUT):
        async with ferrows.connect(uri_of(server), ping_interval=None, compression=None) as ws:
            sent = 0

            async def flood() -> None:
                nonlocal sent
                for _ in range(count):
                    await ws.send(payload)
                    sent += 1

            task = asyncio.create_task(flood())
            await wait_for(lambda: sent > 0)
            while not await stalled(task, lambda: sent):
                pass
            assert sent < count // 4, "no backpressure: send() never waited"
            assert ws.transport.get_write_buffer_size() <= 2**16 + MIB + FRAME_HEADER
            (conn,) = server_side
            assert not conn.transport.is_reading()
            assert len(conn.recv_messages.frames) <= 2
            assert conn.recv_messages.size <= 2**16 + MIB

            release.set()
            await task
            await wait_for(lambda: len(received) == count)
    assert received == [MIB] * count


async def test_max_queue_pause_and_resume() -> None:
    """(c) Reading pauses above max_queue messages, resumes once recv()
    drains the queue to the low-water mark, and no message is lost."""
    count = 300
    size = 4096
    reading: list[bool] = []
    received: list[int] = []
    ready = asyncio.Event()
    paused = asyncio.Event()

    async def handler(ws: Any) -> None:
        ready.set()
        await wait_for(lambda: not ws.transport.is_reading())
        paused.set()
        # One read can bring many messages; beyond that, the queue is capped.
        assert len(ws.recv_messages.frames) <= 8 + 256 * 1024 // size
        reading.append(ws.transport.is_reading())
        while len(received) < count:
            message = await ws.recv()
            received.append(int(message[:6]))
            if len(ws.recv_messages.frames) <= 2:
                # At the low-water mark (8 // 4), reading has resumed.
                reading.append(ws.transport.is_reading())

    async with serving(handler, max_queue=8, read_limit=None, compression=None) as server:
        async with asyncio.timeout(TIMEOUT), ferrows.connect(uri_of(server), compression=None) as ws:
            await ready.wait()
            for i in range(count):
                await ws.send(f"{i:06d}".ljust(size, "."))
            await paused.wait()
            await wait_for(lambda: len(received) == count)
    assert received == list(range(count))
    assert reading[0] is False
    assert True in reading[1:]


async def test_read_limit_pauses_on_bytes() -> None:
    """read_limit counts bytes of unread messages, independently of
    max_queue."""
    server_side: list[Any] = []

    async def handler(ws: Any) -> None:
        server_side.append(ws)
        await ws.wait_closed()

    async with serving(handler, max_queue=None, read_limit=10_000, compression=None) as server:
        async with asyncio.timeout(TIMEOUT), ferrows.connect(uri_of(server), compression=None) as ws:
            await wait_for(lambda: bool(server_side))
            (conn,) = server_side
            await ws.send(b"x" * 5_000)
            await wait_for(lambda: len(conn.recv_messages.frames) == 1)
            assert conn.transport.is_reading()
            await ws.send(b"x" * 6_000)
            await wait_for(lambda: not conn.transport.is_reading())
            assert await conn.recv() == b"x" * 5_000
            # 6_000 bytes left: above the low-water mark (10_000 // 4).
            assert not conn.transport.is_reading()
            assert await conn.recv() == b"x" * 6_000
            assert conn.transport.is_reading()


async def test_send_waiting_for_drain_raises_when_connection_drops() -> None:
    payload = b"\xee" * MIB
    outcome: list[BaseException] = []

    async def handler(ws: Any) -> None:
        try:
            while True:
                await ws.send(payload)
        except ferrows.ConnectionClosed as exc:
            outcome.append(exc)

    async with serving(handler, ping_interval=None, compression=None) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server), ping_interval=None, compression=None) as ws:
            await wait_for(lambda: any(c._writing_paused for c in server.connections))
            ws.transport.abort()
        await wait_for(lambda: bool(outcome))
    assert isinstance(outcome[0], ferrows.ConnectionClosedError)


async def test_server_close_bounded_by_close_timeout_with_stuck_client() -> None:
    """The close frame sits behind megabytes the client never reads: the
    server gives up after close_timeout and the handler's send() fails."""
    payload = b"\xee" * MIB
    outcome: list[BaseException] = []

    async def handler(ws: Any) -> None:
        try:
            while True:
                await ws.send(payload)
        except ferrows.ConnectionClosed as exc:
            outcome.append(exc)

    async with asyncio.timeout(TIMEOUT):
        server = await ferrows.serve(
            handler, "127.0.0.1", 0, ping_interval=None, close_timeout=100 * MS, compression=None
        )
        async with ferrows.connect(uri_of(server), ping_interval=None, compression=None, close_timeout=100 * MS):
            await wait_for(lambda: any(c._writing_paused for c in server.connections))
            loop = asyncio.get_running_loop()
            start = loop.time()
            server.close()
            await server.wait_closed()
            assert loop.time() - start < 1.0
    assert len(outcome) == 1
