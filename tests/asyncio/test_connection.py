"""Tests for ferrows.asyncio.connection, the API shared by both sides.

Each test runs twice: with the client as the local end and the server's
connection as the remote end, then the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import ferrows
from ferrows import State
from ferrows.asyncio import connection as connection_module
from ferrows.asyncio.connection import Connection
from ferrows.connection import WRITE_LINGER
from ferrows.exceptions import (
    ConcurrencyError,
    ConnectionClosedError,
    ConnectionClosedOK,
    ProtocolError,
)

from .utils import MS, TIMEOUT, recording_writes, serving, uri_of


@contextlib.asynccontextmanager
async def connection_pair(side: str, **kwargs: Any) -> AsyncIterator[tuple[Connection, Connection]]:
    """Yields ``(local, remote)``: a client and the server's connection to
    it, in the order ``side`` asks for. Keyword arguments go to both ends."""
    accepted: asyncio.Queue[Connection] = asyncio.Queue()

    async def handler(ws: Connection) -> None:
        accepted.put_nowait(ws)
        await ws.wait_closed()

    async with serving(handler, **kwargs) as server, asyncio.timeout(TIMEOUT):
        async with ferrows.connect(uri_of(server), **kwargs) as client:
            remote = await accepted.get()
            yield (client, remote) if side == "client" else (remote, client)


@pytest.fixture(params=["client", "server"])
def side(request: pytest.FixtureRequest) -> str:
    return request.param


def opcodes_and_fins(writes: list[bytes]) -> list[tuple[int, bool]]:
    """The first frame of each write, as (opcode, fin)."""
    return [(w[0] & 0x0F, bool(w[0] & 0x80)) for w in writes if w]


# ------------------------------------------------------------------ sending


@pytest.mark.parametrize(
    "message, expected",
    [
        ("café", "café"),
        ("", ""),
        (b"\x00\xff", b"\x00\xff"),
        (bytearray(b"array"), b"array"),
        (memoryview(b"view"), b"view"),
        (memoryview(b"0123456789")[2:5], b"234"),
    ],
    ids=["str", "empty-str", "bytes", "bytearray", "memoryview", "memoryview-slice"],
)
async def test_send_recv(side: str, message: Any, expected: Any) -> None:
    async with connection_pair(side) as (local, remote):
        await local.send(message)
        received = await remote.recv()
        assert type(received) is type(expected)
        assert received == expected


async def test_send_text_argument(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        await local.send(b"bytes as text", text=True)
        assert await remote.recv() == "bytes as text"
        await local.send("str as binary", text=False)
        assert await remote.recv() == b"str as binary"
        await local.send(memoryview(b"view as text"), text=True)
        assert await remote.recv() == "view as text"


async def test_send_iterable_is_fragmented(side: str) -> None:
    async with connection_pair(side, compression=None) as (local, remote):
        writes = recording_writes(local)
        await local.send(["frag", "men", "ted"])
        assert await remote.recv() == "fragmented"
        # Each chunk as it comes, then an empty final fragment (websockets' frames).
        assert opcodes_and_fins(writes) == [(1, False), (0, False), (0, False), (0, True)]
        writes.clear()
        await local.send([b"a", bytearray(b"b"), memoryview(b"c")])
        assert await remote.recv() == b"abc"
        assert opcodes_and_fins(writes) == [(2, False), (0, False), (0, False), (0, True)]
        writes.clear()
        await local.send([b"by", b"tes"], text=True)
        assert await remote.recv() == "bytes"
        assert opcodes_and_fins(writes)[0] == (1, False)


async def test_send_async_iterable_is_fragmented(side: str) -> None:
    async def fragments() -> AsyncIterator[str]:
        for fragment in ["as", "ync"]:
            await asyncio.sleep(0)
            yield fragment

    async with connection_pair(side, compression=None) as (local, remote):
        writes = recording_writes(local)
        await local.send(fragments())
        assert await remote.recv() == "async"
        assert opcodes_and_fins(writes) == [(1, False), (0, False), (0, True)]


async def test_first_fragment_goes_out_before_the_next_chunk(side: str) -> None:
    resume = asyncio.Event()

    async def fragments() -> AsyncIterator[str]:
        yield "first"
        await resume.wait()
        yield "second"

    async with connection_pair(side, compression=None) as (local, remote):
        writes = recording_writes(local)
        sending = asyncio.ensure_future(local.send(fragments()))
        async with asyncio.timeout(TIMEOUT):
            while not writes:
                await asyncio.sleep(MS)
        assert opcodes_and_fins(writes) == [(1, False)]
        resume.set()
        await sending
        assert await remote.recv() == "firstsecond"


async def test_send_empty_iterable_sends_nothing(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        await local.send([])
        await local.send("after")
        assert await remote.recv() == "after"


async def test_send_waits_for_fragmented_message(side: str) -> None:
    release = asyncio.Event()

    async def fragments() -> AsyncIterator[str]:
        yield "first "
        await release.wait()
        yield "message"

    async with connection_pair(side) as (local, remote):
        sending = asyncio.create_task(local.send(fragments()))
        await asyncio.sleep(10 * MS)
        second = asyncio.create_task(local.send("second message"))
        await asyncio.sleep(10 * MS)
        assert not second.done()
        release.set()
        await sending
        await second
        assert await remote.recv() == "first message"
        assert await remote.recv() == "second message"


async def test_send_mixed_iterable_fails_connection(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        with pytest.raises(TypeError):
            await local.send(["text", b"bytes"])
        with pytest.raises(ConnectionClosedError):
            await remote.recv()
        assert remote.close_code == 1011


@pytest.mark.parametrize("message", [{"a": 1}, {}, 42, None, [1, 2]], ids=["dict", "empty-dict", "int", "None", "ints"])
async def test_send_invalid_type(side: str, message: Any) -> None:
    async with connection_pair(side) as (local, remote):
        with pytest.raises(TypeError):
            await local.send(message)
        if local.state is State.OPEN:
            await local.send("still open")
            assert await remote.recv() == "still open"


@pytest.mark.parametrize("late", ["late", b"late", b"x" * 70_000, bytearray(b"late")])
async def test_send_after_close(side: str, late: Any) -> None:
    async with connection_pair(side, compression=None) as (local, remote):
        await local.close()
        with pytest.raises(ConnectionClosedOK):
            await local.send(late)
        with pytest.raises(ConnectionClosedOK):
            await remote.send(late)


# ---------------------------------------------------------------- receiving


async def test_recv_decode(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        await local.send("tëxt")
        assert await remote.recv(decode=False) == "tëxt".encode()
        await local.send("tëxt".encode())
        assert await remote.recv(decode=True) == "tëxt"
        await local.send("text")
        assert await remote.recv(decode=True) == "text"
        await local.send(b"bin")
        assert await remote.recv(decode=False) == b"bin"


async def test_concurrent_recv_raises_concurrency_error(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        first = asyncio.create_task(remote.recv())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError):
            await remote.recv()
        with pytest.raises(ConcurrencyError):
            async for _ in remote.recv_streaming():
                pass
        await local.send("only one")
        assert await first == "only one"


async def test_async_for_while_recv_waits_raises(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        waiting = asyncio.create_task(remote.recv())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError):
            async for _ in remote:
                pass
        await local.send("for recv")
        assert await asyncio.wait_for(waiting, TIMEOUT) == "for recv"


async def test_async_for_and_recv_exclude_each_other(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        received: list[Any] = []

        async def iterate() -> None:
            async for message in remote:
                received.append(message)

        iterating = asyncio.create_task(iterate())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError):
            await remote.recv()
        with pytest.raises(ConcurrencyError, match="recv_streaming"):
            async for _ in remote.recv_streaming():
                pass
        await local.send("one")
        await local.close()
        await asyncio.wait_for(iterating, TIMEOUT)
        assert received == ["one"]
        # The iteration ended quietly; so does a new one.
        async for _ in remote:
            raise AssertionError("no message left")


async def test_recv_cancellation_loses_nothing(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        receiving = asyncio.create_task(remote.recv())
        await asyncio.sleep(0)
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        await local.send("kept")
        assert await remote.recv() == "kept"


async def test_recv_streaming(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        await local.send(["stre", "am"])
        assert "".join([f async for f in remote.recv_streaming()]) == "stream"
        await local.send(b"binary")
        assert b"".join([f async for f in remote.recv_streaming()]) == b"binary"
        await local.send("decoded")
        assert b"".join([f async for f in remote.recv_streaming(decode=False)]) == b"decoded"


async def test_messages_arrive_in_order(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        for i in range(100):
            await local.send(str(i) if i % 2 else bytes([i]))
        for i in range(100):
            assert await remote.recv() == (str(i) if i % 2 else bytes([i]))


async def test_large_bytes_from_a_server_are_written_apart_in_order() -> None:
    """A server writes a large bytes payload as is, after its header; the
    small answers held back before it still go first."""
    big = os.urandom(100_000)
    burst: list[str | bytes] = ["a", big, b"b", bytearray(big[:70_000]), big[:65_535], "c"]
    async with connection_pair("server", max_size=2**20, compression=None) as (server, client):
        writes = recording_writes(server)
        # While requests wait, the server's small answers are held back.
        for i in range(len(burst)):
            await client.send(str(i))
        for message in burst:
            await server.recv()
            await server.send(message)
        for message in burst:
            assert await client.recv() == (bytes(message) if isinstance(message, bytearray) else message)
    # Only the bytes object at least WRITE_APART long went apart; the
    # bytearray (mutable) and the smaller payload were framed by the core.
    apart = [w for w in writes if w == big]
    assert len(apart) == 1
    assert not any(w == big[:70_000] or w == big[:65_535] for w in writes)


async def test_held_answers_go_out_once_the_first_waited_write_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small answers held while requests wait are written once the first of
    them has waited WRITE_LINGER, so the peer gets the first ones while the
    server makes the rest; with no time passing, they go out in one write."""
    clock = [0.0]
    monkeypatch.setattr(connection_module, "_monotonic", lambda: clock[0])
    for step, expected in ((WRITE_LINGER * 0.6, [[0, 1, 2], [3, 4, 5]]), (0.0, [[0, 1, 2, 3, 4, 5]])):
        async with connection_pair("server", compression=None) as (server, client):
            writes = recording_writes(server)
            for i in range(6):
                await client.send(bytes([i]))
            deadline = time.monotonic() + TIMEOUT
            while len(server._queue) < 6 and time.monotonic() < deadline:
                await asyncio.sleep(MS)
            for _ in range(6):
                await server.send(await server.recv())
                clock[0] += step
            assert [await client.recv() for _ in range(6)] == [bytes([i]) for i in range(6)]
            assert writes == [b"".join(b"\x82\x01" + bytes([i]) for i in group) for group in expected]


async def test_max_size(side: str) -> None:
    async with connection_pair(side, max_size=1000) as (local, remote):
        await local.send("x" * 1000)
        assert await remote.recv() == "x" * 1000
        await local.send("x" * 1001)
        with pytest.raises(ConnectionClosedError) as raised:
            await remote.recv()
        assert raised.value.sent.code == 1009
        with pytest.raises(ConnectionClosedError):
            await local.recv()
        assert local.close_code == 1009


# ------------------------------------------------------------------ ping/pong


async def test_ping_returns_latency(side: str) -> None:
    async with connection_pair(side) as (local, _remote):
        assert local.latency == 0.0
        pong_waiter = await local.ping()
        latency = await pong_waiter
        assert isinstance(latency, float)
        assert 0 < latency < 1
        assert local.latency == latency


@pytest.mark.parametrize("data", [b"bytes", "text", b"", bytearray(b"array")])
async def test_ping_payloads(side: str, data: Any) -> None:
    async with connection_pair(side) as (local, _remote):
        assert await (await local.ping(data)) > 0


async def test_ping_same_payload_pending_raises_concurrency_error(side: str) -> None:
    async with connection_pair(side) as (local, _remote):
        pong_waiter = await local.ping(b"dup")
        with pytest.raises(ConcurrencyError):
            await local.ping(b"dup")
        await pong_waiter
        await (await local.ping(b"dup"))


async def test_pong_acknowledges_earlier_pings(side: str) -> None:
    async with connection_pair(side) as (local, _remote):
        waiters = [await local.ping(bytes([i])) for i in range(3)]
        results = await asyncio.gather(*waiters)
        assert all(r > 0 for r in results)


async def test_unsolicited_pong(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        await local.pong(b"heartbeat")
        await local.pong()
        await local.send("after pongs")
        assert await remote.recv() == "after pongs"


async def test_ping_and_pong_after_close(side: str) -> None:
    async with connection_pair(side) as (local, _remote):
        await local.close()
        with pytest.raises(ConnectionClosedOK):
            await local.ping()
        with pytest.raises(ConnectionClosedOK):
            await local.pong()


async def test_pending_ping_fails_on_close(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        remote.transport.pause_reading()
        pong_waiter = await local.ping()
        local.transport.abort()
        with pytest.raises(ConnectionClosedError):
            await pong_waiter
        remote.transport.resume_reading()


# ------------------------------------------------------------------ closing


@pytest.mark.parametrize("code, reason", [(1000, ""), (1001, "going away"), (4000, "custom"), (3000, "é" * 60)])
async def test_close_code_and_reason(side: str, code: int, reason: str) -> None:
    async with connection_pair(side) as (local, remote):
        start = time.monotonic()
        await local.close(code, reason)
        assert time.monotonic() - start < 1.0
        assert local.state is State.CLOSED and local.closed
        exc_type = ConnectionClosedOK if code in (1000, 1001) else ConnectionClosedError
        with pytest.raises(exc_type) as raised:
            await remote.recv()
        assert (raised.value.rcvd.code, raised.value.rcvd.reason) == (code, reason)
        await remote.wait_closed()
        assert (remote.close_code, remote.close_reason) == (code, reason)
        # The peer echoes the code.
        assert (local.close_code, local.close_reason) == (code, reason)


async def test_close_is_idempotent(side: str) -> None:
    async with connection_pair(side) as (local, _remote):
        await asyncio.gather(local.close(), local.close())
        await local.close(4000)
        assert local.close_code == 1000


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
async def test_close_invalid_code(side: str, code: int) -> None:
    async with connection_pair(side) as (local, remote):
        with pytest.raises(ProtocolError):
            await local.close(code)
        assert local.state is State.OPEN
        await local.send("still open")
        assert await remote.recv() == "still open"


async def test_close_reason_too_long(side: str) -> None:
    async with connection_pair(side) as (local, _remote):
        with pytest.raises(ProtocolError):
            await local.close(1000, "x" * 124)
        assert local.state is State.OPEN


@pytest.mark.parametrize("code", [1000, 1001])
async def test_async_for_ends_quietly_on_normal_closure(side: str, code: int) -> None:
    async with connection_pair(side) as (local, remote):
        await local.send("one")
        await local.send("two")
        await local.close(code)
        assert [message async for message in remote] == ["one", "two"]


@pytest.mark.parametrize("code", [1011, 4000])
async def test_async_for_raises_on_error_closure(side: str, code: int) -> None:
    async with connection_pair(side) as (local, remote):
        await local.send("one")
        await local.close(code)
        received = []
        with pytest.raises(ConnectionClosedError) as raised:
            async for message in remote:
                received.append(message)
        assert received == ["one"]
        assert raised.value.rcvd.code == code


async def test_abort_is_abnormal_closure(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        local.transport.abort()
        with pytest.raises(ConnectionClosedError) as raised:
            await remote.recv()
        assert raised.value.rcvd is None
        assert remote.close_code == 1006
        with pytest.raises(ConnectionClosedError):
            async for _ in remote:
                pass


async def test_async_with_closes_connection(side: str) -> None:
    async with connection_pair(side) as (local, _remote):
        async with local:
            pass
        assert local.closed
        assert local.close_code == 1000


async def test_async_with_exception_closes_with_1011(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        with pytest.raises(RuntimeError):
            async with local:
                raise RuntimeError
        with pytest.raises(ConnectionClosedError):
            await remote.recv()
        assert remote.close_code == 1011


async def test_wait_closed(side: str) -> None:
    async with connection_pair(side) as (local, remote):
        waiting = asyncio.create_task(local.wait_closed())
        await asyncio.sleep(10 * MS)
        assert not waiting.done()
        await remote.close()
        await waiting
        assert local.closed


@pytest.mark.parametrize("data", [[], {}, 42])
async def test_ping_and_pong_refuse_other_types(side: str, data: Any) -> None:
    """As websockets: a payload is a str or bytes-like, nothing else."""
    async with connection_pair(side) as (local, _remote):
        with pytest.raises(TypeError):
            await local.ping(data)
        with pytest.raises(TypeError):
            await local.pong(data)
        assert local.state is State.OPEN


async def test_pong_after_write_eof_raises_connection_closed_with_the_cause(side: str) -> None:
    """As websockets: a write the transport refuses closes the connection,
    and the ConnectionClosedError says why."""
    async with connection_pair(side) as (local, _remote):
        local.transport.write_eof()
        with pytest.raises(ConnectionClosedError) as raised:
            await local.pong()
        assert isinstance(raised.value.__cause__, RuntimeError)


async def test_close_timeout_is_the_cause() -> None:
    """A peer that never answers the close frame: close() gives up after
    close_timeout, and the exception's cause is the TimeoutError."""
    from ..sync.utils import raw_server

    with raw_server("ignore") as (port, _received):
        async with asyncio.timeout(TIMEOUT):
            ws = await ferrows.connect(f"ws://127.0.0.1:{port}/", close_timeout=50 * MS)
            await ws.close()
            with pytest.raises(ConnectionClosedError) as raised:
                await ws.recv()
    assert str(raised.value) == "sent 1000 (OK); no close frame received"
    assert isinstance(raised.value.__cause__, TimeoutError)


async def test_recv_streaming_during_recv_names_itself(side: str) -> None:
    async with connection_pair(side) as (local, _remote):
        receiving = asyncio.ensure_future(local.recv())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError, match="cannot call recv_streaming while"):
            async for _ in local.recv_streaming():
                pass
        receiving.cancel()


async def test_write_limit_reaches_the_transport_as_given(side: str) -> None:
    """As websockets: ``write_limit=(high, low)``, or ``high`` alone, goes to
    ``set_write_buffer_limits`` unchanged."""
    for limit, expected in [(4096, (4096, None)), ((4096, 2048), (4096, 2048))]:
        async with connection_pair(side, write_limit=limit) as (local, _remote):
            assert local.transport.get_write_buffer_limits() == (expected[1] or 1024, expected[0])
