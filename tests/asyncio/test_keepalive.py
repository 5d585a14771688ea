"""websockets' keepalive surface on the asyncio layer: start_keepalive(),
keepalive_task, pings drawn with random.getrandbits; and the safety nets
that turn an unexpected error of the protocol into ConnectionClosedError."""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any
from unittest.mock import patch

import pytest

from ferrows.asyncio.connection import Connection
from ferrows.exceptions import ConnectionClosedError
from ferrows.protocol import CLIENT, SERVER, Protocol
from frame_utils import PING, client_frame, parse_frames

from .utils import MS, TIMEOUT, wait_for


async def pair(**kwargs: Any) -> tuple[Connection, socket.socket]:
    """A server connection over a socketpair, and the raw socket of its peer."""
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(lambda: Connection(Protocol(SERVER), **kwargs), sock=ours)
    theirs.setblocking(False)
    return connection, theirs


async def read_frames(sock: socket.socket) -> list[tuple[int, bytes, bool, int]]:
    data = await asyncio.get_running_loop().sock_recv(sock, 65536)
    return parse_frames(data)


async def test_ping_payload_is_drawn_as_websockets_draws_it() -> None:
    connection, peer = await pair()
    with patch("random.getrandbits", side_effect=itertools.count(1918987876)) as getrandbits:
        await connection.ping()
        await connection.ping()
    assert getrandbits.call_count == 2
    assert [f[:2] for f in await read_frames(peer)] == [(PING, b"rand"), (PING, b"rane")]
    connection.transport.abort()
    peer.close()


async def test_keepalive_task_times_out_without_pongs() -> None:
    """A peer that reads but never answers: the task's ping goes out, then
    the close frame with 1011 once ping_timeout passed."""
    connection, peer = await pair(ping_interval=None, close_timeout=TIMEOUT)
    connection.start_keepalive()
    assert connection.keepalive_task is None, "no interval, no task"
    connection.ping_interval, connection.ping_timeout = 5 * MS, 5 * MS
    connection.start_keepalive()
    assert connection.keepalive_task is not None
    frames: list[Any] = []
    async with asyncio.timeout(TIMEOUT):
        while not any(f[0] == 8 for f in frames):
            frames += await read_frames(peer)
    assert frames[0][:1] == (PING,)
    assert frames[-1][1][:2] == (1011).to_bytes(2, "big")
    peer.close()
    await wait_for(lambda: connection.keepalive_task is not None and connection.keepalive_task.done())


async def test_keepalive_task_measures_latency() -> None:
    connection, peer = await pair(ping_interval=None)
    connection.ping_interval = 5 * MS
    connection.start_keepalive()
    async with asyncio.timeout(TIMEOUT):
        (opcode, payload, _, _), *_ = await read_frames(peer)
        assert opcode == PING
        await asyncio.get_running_loop().sock_sendall(peer, client_frame(0xA, payload))
        await wait_for(lambda: connection.latency > 0)
    connection.transport.abort()
    await connection.wait_closed()
    assert connection.keepalive_task is not None and connection.keepalive_task.cancelled()
    peer.close()


async def test_unexpected_error_reading_closes_the_connection() -> None:
    connection, peer = await pair()
    with patch.object(Protocol, "events_received", side_effect=AssertionError):
        await asyncio.get_running_loop().sock_sendall(peer, client_frame(1, b"hi"))
        with pytest.raises(ConnectionClosedError) as raised:
            await asyncio.wait_for(connection.recv(), TIMEOUT)
    assert isinstance(raised.value.__cause__, AssertionError)
    peer.close()


@pytest.mark.parametrize("message", ["text", b"binary"])
async def test_unexpected_error_sending_closes_the_connection(message: Any) -> None:
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(lambda: Connection(Protocol(CLIENT)), sock=ours)
    name = "send_text" if isinstance(message, str) else "send_binary"
    with patch.object(Protocol, name, side_effect=AssertionError):
        with pytest.raises(ConnectionClosedError) as raised:
            await connection.send(message)
    assert isinstance(raised.value.__cause__, AssertionError)
    theirs.close()
