"""recv_streaming() over real sockets: each fragment reaches the application
as it arrives, before the peer sent the next one, compressed or not; recv()
still returns whole messages; max_size bounds the whole message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

import ferrows
from ferrows.exceptions import ConnectionClosedError

from .utils import TIMEOUT, port_of

compressions = pytest.mark.parametrize("compression", ["deflate", None])


async def gated(first: str, gate: asyncio.Event, rest: list[str]) -> AsyncIterator[str]:
    """Fragments for websockets' send(): the first, then the rest once the
    gate opens, which only the receiving side opens."""
    yield first
    await asyncio.wait_for(gate.wait(), TIMEOUT)
    for fragment in rest:
        yield fragment


@compressions
async def test_fragments_arrive_before_the_last_is_sent(compression: str | None) -> None:
    gate = asyncio.Event()
    received: list[Any] = []

    async def handler(ws: Any) -> None:
        async for fragment in ws.recv_streaming():
            received.append(fragment)
            gate.set()  # the peer sends the rest only now
        received.append(await ws.recv())

    async with ferrows.serve(handler, "127.0.0.1", 0, compression=compression) as server:
        uri = f"ws://127.0.0.1:{port_of(server)}/"
        async with asyncio.timeout(TIMEOUT), websockets.connect(uri, compression=compression) as client:
            # A code point split across frames comes out whole, once.
            await client.send(gated("😀 first, ", gate, ["then ", "last"]))
            await client.send(["whole ", "message"])
            await client.wait_closed()
    assert received == ["😀 first, ", "then ", "last", "", "whole message"]


@compressions
async def test_binary_fragments_as_they_arrive(compression: str | None) -> None:
    gate = asyncio.Event()

    async def handler(ws: Any) -> None:
        fragments = []
        async for fragment in ws.recv_streaming():
            fragments.append(fragment)
            gate.set()
        await ws.send(repr(fragments))

    async def chunks() -> AsyncIterator[bytes]:
        yield b"\x00" * 1000
        await asyncio.wait_for(gate.wait(), TIMEOUT)
        yield b"\xff"

    async with ferrows.serve(handler, "127.0.0.1", 0, compression=compression) as server:
        uri = f"ws://127.0.0.1:{port_of(server)}/"
        async with asyncio.timeout(TIMEOUT), websockets.connect(uri, compression=compression) as client:
            await client.send(chunks())
            assert await client.recv() == repr([b"\x00" * 1000, b"\xff", b""])


async def test_split_code_point_and_decode() -> None:
    """A character split across frames, as a ferrows client sends bytes
    fragments of text: it comes out in the fragment that completes it, and
    decode=False gives the text's bytes back."""
    smiley = "😀".encode()

    async def handler(ws: Any) -> None:
        await ws.send(repr([fragment async for fragment in ws.recv_streaming()]))
        await ws.send(repr([fragment async for fragment in ws.recv_streaming(decode=False)]))
        await ws.send(repr(await ws.recv()))

    async with ferrows.serve(handler, "127.0.0.1", 0) as server:
        uri = f"ws://127.0.0.1:{port_of(server)}/"
        async with asyncio.timeout(TIMEOUT), ferrows.connect(uri) as client:
            for _ in range(3):
                await client.send([b"a" + smiley[:1], smiley[1:3], smiley[3:]], text=True)
            assert await client.recv() == repr(["a", "", "😀", ""])
            assert await client.recv() == repr([b"a", b"", smiley, b""])
            assert await client.recv() == repr("a😀")


async def test_max_size_bounds_the_whole_message() -> None:
    """The fragments within the limit come, then the connection fails with
    1009 at the fragment that goes over."""
    outcome: list[Any] = []

    async def handler(ws: Any) -> None:
        try:
            async for fragment in ws.recv_streaming():
                outcome.append(fragment)
        except ConnectionClosedError as exc:
            outcome.append(exc.sent.code if exc.sent else None)

    async with ferrows.serve(handler, "127.0.0.1", 0, max_size=10) as server:
        uri = f"ws://127.0.0.1:{port_of(server)}/"
        async with asyncio.timeout(TIMEOUT), websockets.connect(uri) as client:
            # The server may fail the connection before the last fragment
            # goes out: then send() raises, else recv().
            with pytest.raises(websockets.exceptions.ConnectionClosedError) as raised:
                await client.send(["12345678", "90ab", "cd"])
                await client.recv()
    assert raised.value.rcvd is not None and raised.value.rcvd.code == 1009
    assert outcome == ["12345678", 1009]
