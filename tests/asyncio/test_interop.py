"""Interoperability with the websockets package over real sockets, in both
directions: ferrows server with websockets client, websockets server with
ferrows client. permessage-deflate is off on the websockets side."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
import websockets.exceptions
from websockets.frames import Frame, Opcode

import ferrows
import ferrows.exceptions

from .utils import TIMEOUT, port_of

MAX_SIZE = 2**23


@contextlib.asynccontextmanager
async def interop_pair(direction: str, max_size: int = MAX_SIZE) -> AsyncIterator[tuple[Any, Any]]:
    """Yields ``(ours, theirs)``: connected ferrows and websockets
    connections, ferrows being the server or the client per ``direction``;
    ``max_size`` applies to ferrows."""
    accepted: asyncio.Queue[Any] = asyncio.Queue()

    async def handler(ws: Any) -> None:
        accepted.put_nowait(ws)
        await ws.wait_closed()

    async with asyncio.timeout(TIMEOUT):
        if direction == "ferrows-server":
            async with ferrows.serve(handler, "127.0.0.1", 0, max_size=max_size) as server:
                uri = f"ws://127.0.0.1:{port_of(server)}/"
                async with websockets.connect(uri, compression=None, max_size=MAX_SIZE) as theirs:
                    ours = await accepted.get()
                    yield ours, theirs
        else:
            async with websockets.serve(handler, "127.0.0.1", 0, compression=None, max_size=MAX_SIZE) as server:
                uri = f"ws://127.0.0.1:{port_of(server)}/"
                async with ferrows.connect(uri, max_size=max_size) as ours:
                    theirs = await accepted.get()
                    yield ours, theirs


@pytest.fixture(params=["ferrows-server", "websockets-server"])
def direction(request: pytest.FixtureRequest) -> str:
    return request.param


SIZES = [0, 1, 125, 126, 65535, 65536, 2**20, 2**22]


@pytest.mark.parametrize("size", SIZES)
async def test_binary_messages(direction: str, size: int) -> None:
    payload = os.urandom(size)
    async with interop_pair(direction) as (ours, theirs):
        await ours.send(payload)
        assert await theirs.recv() == payload
        await theirs.send(payload)
        assert await ours.recv() == payload


@pytest.mark.parametrize("size", SIZES)
async def test_text_messages(direction: str, size: int) -> None:
    # Multi-byte characters exercise UTF-8 validation across frame reads.
    text = ("aé☃" * (size // 6 + 1))[: max(size // 2, 0)] if size else ""
    async with interop_pair(direction) as (ours, theirs):
        await ours.send(text)
        assert await theirs.recv() == text
        await theirs.send(text)
        assert await ours.recv() == text


async def test_fragmented_messages(direction: str) -> None:
    async with interop_pair(direction) as (ours, theirs):
        await ours.send(["frag", "mé", "nts"])
        # ferrows ends a fragmented message with an empty fragment, as websockets does.
        assert [f async for f in theirs.recv_streaming()] == ["frag", "mé", "nts", ""]
        await ours.send([b"\x00", b"", b"\xff" * 70000])
        assert b"".join([f async for f in theirs.recv_streaming()]) == b"\x00" + b"\xff" * 70000
        await theirs.send(["frag", "mé", "nts"])
        assert await ours.recv() == "fragménts"
        await theirs.send([b"one", b"two"])
        assert await ours.recv() == b"onetwo"


async def test_ping_pong(direction: str) -> None:
    async with interop_pair(direction) as (ours, theirs):
        assert await (await ours.ping(b"from ferrows")) > 0
        assert await (await ours.ping()) > 0
        # websockets measures with loop.time(), which uvloop rounds to 1 ms.
        assert await (await theirs.ping(b"from websockets")) >= 0
        await ours.pong(b"unsolicited")
        await theirs.pong(b"unsolicited")
        await ours.send("still open")
        assert await theirs.recv() == "still open"


@pytest.mark.parametrize("code, reason", [(1000, ""), (1001, "bye"), (4000, "custom reason")])
async def test_close_from_ferrows(direction: str, code: int, reason: str) -> None:
    async with interop_pair(direction) as (ours, theirs):
        await ours.close(code, reason)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as raised:
            await theirs.recv()
        assert (raised.value.rcvd.code, raised.value.rcvd.reason) == (code, reason)
        ok = code in (1000, 1001)
        assert isinstance(raised.value, websockets.exceptions.ConnectionClosedOK) is ok
        assert (ours.close_code, ours.close_reason) == (code, reason)


@pytest.mark.parametrize("code, reason", [(1000, ""), (1001, "bye"), (4000, "custom reason")])
async def test_close_from_websockets(direction: str, code: int, reason: str) -> None:
    async with interop_pair(direction) as (ours, theirs):
        await theirs.close(code, reason)
        with pytest.raises(ferrows.exceptions.ConnectionClosed) as raised:
            await ours.recv()
        assert (raised.value.rcvd.code, raised.value.rcvd.reason) == (code, reason)
        ok = code in (1000, 1001)
        assert isinstance(raised.value, ferrows.exceptions.ConnectionClosedOK) is ok
        await ours.wait_closed()
        assert (ours.close_code, ours.close_reason) == (code, reason)


def send_raw_frame(theirs: Any, frame: Frame) -> None:
    """Makes websockets send a frame its public API refuses to build."""
    theirs.protocol.send_frame(frame)
    for data in theirs.protocol.data_to_send():
        theirs.transport.write(data)


async def test_protocol_error_detected_by_ferrows(direction: str) -> None:
    async with interop_pair(direction) as (ours, theirs):
        send_raw_frame(theirs, Frame(Opcode.TEXT, b"\xff\xfe invalid utf-8"))
        with pytest.raises(ferrows.exceptions.ConnectionClosedError) as raised:
            await ours.recv()
        assert raised.value.sent.code == 1007
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as their_error:
            await theirs.recv()
        assert their_error.value.rcvd.code == 1007


async def test_reserved_opcode_detected_by_ferrows(direction: str) -> None:
    async with interop_pair(direction) as (ours, theirs):
        # ferrows fails the connection once its application asks for the
        # next message (or after close_timeout): here it is waiting already.
        receiving = asyncio.ensure_future(ours.recv())
        await asyncio.sleep(0)
        theirs.transport.write(_frame(0x3, b"", masked=direction == "ferrows-server"))
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as raised:
            await theirs.recv()
        assert raised.value.rcvd.code == 1002
        with pytest.raises(ferrows.exceptions.ConnectionClosedError):
            await receiving
        assert isinstance(ours.protocol.close_exc.__cause__, ferrows.exceptions.ProtocolError)


async def test_message_too_big_for_ferrows(direction: str) -> None:
    # A small limit: websockets' client (17.4) fails on exit with an
    # AttributeError from asyncio when the peer closes while megabytes are
    # still in its write buffer, whichever library the server is.
    async with interop_pair(direction, max_size=1000) as (ours, theirs):
        await theirs.send(b"x" * 1000)
        assert await ours.recv() == b"x" * 1000
        await theirs.send(b"x" * 1001)
        with pytest.raises(ferrows.exceptions.ConnectionClosedError) as raised:
            await ours.recv()
        assert raised.value.sent.code == 1009
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as their_error:
            await theirs.recv()
        assert their_error.value.rcvd.code == 1009


def _frame(opcode: int, payload: bytes, *, masked: bool) -> bytes:
    from ..frame_utils import frame

    return frame(opcode, payload, mask=b"\x01\x02\x03\x04" if masked else None)
