"""ferrows.asyncio.messages.Assembler: what the core hands over (whole
messages, Fragment events) and what ferrows adds to websockets' assembler
(the bytes limit, get_nowait, wait). websockets' own tests of its API run in
tools/websockets_suite.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ferrows.asyncio.messages import Assembler
from ferrows.events import Fragment, PingReceived
from ferrows.exceptions import ConcurrencyError
from ferrows.frames import Frame, Opcode


def flow() -> tuple[Assembler, list[str]]:
    calls: list[str] = []
    assembler = Assembler(2, 1, pause=lambda: calls.append("pause"), resume=lambda: calls.append("resume"))
    return assembler, calls


async def test_put_events_queues_messages_and_returns_the_rest() -> None:
    assembler, calls = flow()
    ping = PingReceived(b"p")
    assert assembler.put_events(["a", b"b"]) == ()
    assert assembler.put_events([ping, Fragment("c", False), Fragment("d", True)]) == [ping]
    assert calls == ["pause"]  # four frames waiting, above high=2
    assert assembler.size == 4
    assert assembler.get_nowait() == "a"
    assert await assembler.get() == b"b"
    assert calls == ["pause"]
    assert assembler.get_nowait() is None, "a fragment comes first"
    assert await assembler.get(decode=False) == b"cd"
    assert calls == ["pause", "resume"]
    assert assembler.size == 0 and assembler.pieces == 0
    assert assembler.get_nowait() is None


async def test_get_iter_converts_fragments() -> None:
    assembler = Assembler()
    assembler.put_events([Fragment("é", False), Fragment("t", True)])
    assert [f async for f in assembler.get_iter(decode=False)] == ["é".encode(), b"t"]
    assembler.put_events([Fragment(b"\xc3", False), Fragment(b"\xa9", True)])
    assert [f async for f in assembler.get_iter(decode=True)] == ["", "é"]
    assembler.put_events(["whole", Fragment(b"x", False), Fragment(b"y", True)])
    assert [f async for f in assembler.get_iter(decode=False)] == [b"whole"]
    assert [f async for f in assembler.get_iter()] == [b"x", b"y"]
    # Frames put as websockets' assembler takes them, mixed with the rest.
    assembler.put(Frame(Opcode.TEXT, b"caf\xc3", fin=False))
    assembler.put(Frame(Opcode.CONT, b"\xa9"))
    assert [f async for f in assembler.get_iter()] == ["caf", "é"]
    assembler.put(Frame(Opcode.BINARY, b"\xc3\xa9"))
    assert await assembler.get(decode=True) == "é"
    assert assembler.pieces == 0 and assembler.size == 0


async def test_cancelled_get_puts_fragments_back() -> None:
    assembler = Assembler()
    assembler.put_events([Fragment(b"a", False)])
    task = asyncio.create_task(assembler.get())
    await asyncio.sleep(0)
    assert len(assembler.frames) == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(assembler.frames) == 1 and assembler.pieces == 1 and assembler.size == 1
    assembler.put_events([Fragment(b"b", True)])
    assert await assembler.get() == b"ab"


async def test_bytes_limit_pauses_and_resumes() -> None:
    calls: list[str] = []
    assembler = Assembler(pause=lambda: calls.append("pause"), resume=lambda: calls.append("resume"), read_limit=(4, 2))
    assembler.put_events([b"abc"])
    assert calls == []
    assembler.put_events([b"de"])
    assert calls == ["pause"]
    assert assembler.get_nowait() == b"abc"
    assert calls == ["pause", "resume"]


async def test_wait_and_close() -> None:
    assembler = Assembler()
    waiter = asyncio.create_task(assembler.wait())
    await asyncio.sleep(0)
    with pytest.raises(ConcurrencyError):
        assembler.get_nowait()
    with pytest.raises(ConcurrencyError):
        await assembler.wait()
    assembler.put_events(["a"])
    assert await waiter is True
    assert await assembler.wait() is True
    assembler.close()
    assert assembler.get_nowait() == "a"
    assert await assembler.wait() is False
    waiter = asyncio.create_task(Assembler().wait())
    await asyncio.sleep(0)
    with pytest.raises(EOFError):
        assembler.put(Frame(Opcode.TEXT, b"late"))


@pytest.mark.parametrize("marks", [(-1, None), (1, 2)])
async def test_invalid_water_marks(marks: Any) -> None:
    with pytest.raises(ValueError):
        Assembler(*marks)
