"""The loop's shared timers (ferrows.asyncio.wheel), alone and under the
keepalive of many connections."""

from __future__ import annotations

import asyncio
import math

import pytest

import ferrows
from ferrows.asyncio import wheel as wheel_module
from ferrows.asyncio.wheel import wheel_for


class Owner:
    def __init__(self, loop: asyncio.AbstractEventLoop, log: list[tuple[str, float]], name: str) -> None:
        self._wheel_slot: tuple[int, int] | None = None
        self.loop = loop
        self.log = log
        self.name = name

    def _on_wheel(self, now: float) -> None:
        self.log.append((self.name, now))


async def test_calls_come_no_earlier_than_asked_and_within_a_sixteenth() -> None:
    loop = asyncio.get_running_loop()
    log: list[tuple[str, float]] = []
    owners = [Owner(loop, log, f"o{i}") for i in range(3)]
    start = loop.time()
    for owner, delay in zip(owners, (0.05, 0.2, 0.1), strict=True):
        wheel_for(loop).schedule(owner, delay)
    await asyncio.sleep(0.35)
    assert [name for name, _ in log] == ["o0", "o2", "o1"]
    for (name, now), delay in zip(log, (0.05, 0.1, 0.2), strict=True):
        assert start + delay <= now <= start + delay + max(delay / 16, 2**-7) + 1e-9, name
    assert all(owner._wheel_slot is None for owner in owners)
    assert loop not in wheel_module._wheels  # nothing scheduled: the registry let it go


async def test_owners_due_together_share_one_timer() -> None:
    loop = asyncio.get_running_loop()
    log: list[tuple[str, float]] = []
    owners = [Owner(loop, log, f"o{i}") for i in range(500)]
    for owner in owners:
        wheel_for(loop).schedule(owner, 8.0)
    assert len(wheel_for(loop).slots) <= 2  # 0.5 s slots: at most a boundary between them
    for owner in owners:
        wheel_for(loop).cancel(owner)
    assert loop not in wheel_module._wheels
    assert log == []


async def test_cancel_and_reschedule() -> None:
    loop = asyncio.get_running_loop()
    log: list[tuple[str, float]] = []
    a, b = Owner(loop, log, "a"), Owner(loop, log, "b")
    wheel = wheel_for(loop)
    wheel.schedule(a, 0.05)
    wheel.schedule(b, 0.05)
    wheel.cancel(a)
    wheel.cancel(a)  # twice is harmless
    wheel.schedule(b, 0.15)  # moves it
    await asyncio.sleep(0.1)
    assert log == []
    await asyncio.sleep(0.1)
    assert [name for name, _ in log] == ["b"]


async def test_a_failing_owner_does_not_skip_the_others() -> None:
    loop = asyncio.get_running_loop()
    log: list[tuple[str, float]] = []
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))

    class Failing(Owner):
        def _on_wheel(self, now: float) -> None:
            raise RuntimeError("boom")

    owners = [Owner(loop, log, "first"), Failing(loop, log, "x"), Owner(loop, log, "last")]
    for owner in owners:
        wheel_for(loop).schedule(owner, 0.02)
    await asyncio.sleep(0.1)
    assert [name for name, _ in log] == ["first", "last"]
    assert len(errors) == 1 and isinstance(errors[0]["exception"], RuntimeError)


async def test_an_owner_cancelled_by_another_in_the_same_slot_is_not_called() -> None:
    loop = asyncio.get_running_loop()
    log: list[tuple[str, float]] = []
    victim = Owner(loop, log, "victim")

    class Canceller(Owner):
        def _on_wheel(self, now: float) -> None:
            super()._on_wheel(now)
            wheel_for(loop).cancel(victim)

    wheel_for(loop).schedule(Canceller(loop, log, "canceller"), 0.02)
    wheel_for(loop).schedule(victim, 0.02)
    await asyncio.sleep(0.1)
    assert [name for name, _ in log] == ["canceller"]


@pytest.mark.parametrize("ping_timeout", [0.5, None])
async def test_many_connections_ping_on_few_timers(ping_timeout: float | None) -> None:
    """200 connections opened together are pinged once per interval from a
    few shared timers (one per sixteenth of the interval that their opening
    took), and closed ones leave them."""
    loop = asyncio.get_running_loop()
    interval = 1.0
    async with ferrows.serve(
        lambda ws: ws.wait_closed(), "127.0.0.1", 0, ping_interval=interval, ping_timeout=ping_timeout
    ) as server:
        port = server.sockets[0].getsockname()[1]
        started = loop.time()
        clients = [await ferrows.connect(f"ws://127.0.0.1:{port}", ping_interval=None) for _ in range(200)]
        opened_in = loop.time() - started
        try:
            await asyncio.sleep(0.05)
            wheel = wheel_for(loop)
            assert sum(len(owners) for owners, *_ in wheel.slots.values()) == 200
            assert len(wheel.slots) <= opened_in / (interval / 16) + 2
            assert len(wheel.slots) < 200
            await asyncio.sleep(interval * 1.3 - 0.05)  # one ping each since the last one opened
            connections = list(server.connections)
            assert len(connections) == 200
            assert all(connection.latency > 0 for connection in connections)
            assert all(connection.protocol.state is ferrows.State.OPEN for connection in connections)
        finally:
            for client in clients:
                await client.close()
        await asyncio.sleep(0.05)
        assert sum(len(owners) for owners, *_ in wheel_for(loop).slots.values()) == 0


UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_closing_connections_time_out_on_shared_timers() -> None:
    """Server connections whose peers never answer the close frame are
    aborted after close_timeout (not before, and within a sixteenth of it
    plus scheduling), from shared timers rather than one each; a keepalive
    ping awaiting its pong does not take the slot back."""
    loop = asyncio.get_running_loop()
    timeout = 0.4
    closing: dict[ferrows.ServerConnection, float] = {}

    async def handler(ws: ferrows.ServerConnection) -> None:
        await asyncio.sleep(0.15)  # keepalive pings go out, unanswered
        assert ws._keepalive_ping is not None
        closing[ws] = loop.time()
        await ws.close()

    async with ferrows.serve(handler, "127.0.0.1", 0, close_timeout=timeout, ping_interval=0.05) as server:
        port = server.sockets[0].getsockname()[1]
        peers = []
        for _ in range(50):
            # A peer that upgrades, then neither reads nor answers anything.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(UPGRADE)
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            peers.append(writer)
        deadline = loop.time() + 5
        while len(closing) < 50 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert len(closing) == 50
        await asyncio.sleep(0.05)
        wheel = wheel_for(loop)
        assert all(c.protocol.state is ferrows.State.CLOSING for c in closing)
        assert sum(len(owners) for owners, *_ in wheel.slots.values()) == 50
        assert len(wheel.slots) < 50
        for c in closing:
            # Each waits in the slot of its close deadline, not its keepalive's.
            assert c._wheel_slot is not None and c._close_at > 0
            exp, index = c._wheel_slot
            assert c._close_at <= math.ldexp(index, exp) <= c._close_at + timeout / 16
        lost_at: dict[ferrows.ServerConnection, float] = {}
        for c in closing:
            c.connection_lost_waiter.add_done_callback(lambda _, c=c: lost_at.setdefault(c, loop.time()))
        await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in closing)), 5)
        for c, started in closing.items():
            assert timeout <= lost_at[c] - started <= timeout * (1 + 1 / 16) + 0.25
            assert isinstance(c._connection_exc, TimeoutError)
        for writer in peers:
            writer.transport.abort()
    assert sum(len(owners) for owners, *_ in wheel_for(loop).slots.values()) == 0
