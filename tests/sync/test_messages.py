"""ferrows.sync.messages.Assembler: what the core hands over (whole
messages, Fragment events), timeouts, and the shared lock. websockets' own
tests of its API run in tools/websockets_suite.py."""

from __future__ import annotations

import threading
import time

import pytest

from ferrows.events import Fragment, PongReceived
from ferrows.exceptions import ConcurrencyError
from ferrows.frames import Frame, Opcode
from ferrows.sync.messages import Assembler

from .utils import TIMEOUT

MS = 0.001


def test_put_events_queues_messages_and_returns_the_rest() -> None:
    calls: list[str] = []
    assembler = Assembler(2, 1, pause=lambda: calls.append("pause"), resume=lambda: calls.append("resume"))
    pong = PongReceived(b"p")
    assert assembler.put_events(["a", Fragment("b", False), pong, Fragment("c", True)]) == [pong]
    assert calls == ["pause"]
    assert assembler.frames.qsize() == 3
    assert assembler.get_nowait() == "a"
    assert assembler.get_nowait() is None, "a fragment comes first"
    assert list(assembler.get_iter(decode=False)) == [b"b", b"c"]
    assert calls == ["pause", "resume"]
    assert assembler.size == 0 and assembler.pieces == 0


def test_get_waits_for_fragments_from_another_thread() -> None:
    assembler = Assembler()

    def feed() -> None:
        for fragment in (Fragment(b"\xc3", False), Fragment(b"\xa9", True)):
            time.sleep(MS)
            assembler.put_events([fragment])

    thread = threading.Thread(target=feed)
    thread.start()
    assert assembler.get(TIMEOUT, decode=True) == "é"
    thread.join()


def test_timeout_puts_fragments_back() -> None:
    assembler = Assembler()
    assembler.put_events([Fragment("a", False)])
    with pytest.raises(TimeoutError):
        assembler.get(timeout=MS)
    assert assembler.pieces == 1 and assembler.size == 1
    assembler.put_events([Fragment("b", True)])
    assert assembler.get(timeout=0) == "ab"


def test_one_reader_at_a_time() -> None:
    assembler = Assembler()
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(assembler.get(TIMEOUT)))
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not assembler.get_in_progress and time.monotonic() < deadline:
        time.sleep(MS)
    with pytest.raises(ConcurrencyError):
        assembler.get_nowait()
    with pytest.raises(ConcurrencyError):
        next(assembler.get_iter())
    assembler.put(Frame(Opcode.BINARY, b"x"))
    thread.join()
    assert result == [b"x"]


def test_close_ends_waits_and_resumes() -> None:
    calls: list[str] = []
    assembler = Assembler(0, 0, resume=lambda: calls.append("resume"))
    assembler.put_events([b"x"])
    assert assembler.paused
    assembler.close()
    assert calls == ["resume"]
    assert assembler.get(0) == b"x"
    with pytest.raises(EOFError):
        assembler.get()
    with pytest.raises(EOFError):
        assembler.put(Frame(Opcode.TEXT, b"late"))
