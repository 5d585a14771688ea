"""Tests for ferrows.streams.StreamReader, the reader of websockets' generator-based parsers."""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

import pytest

from ferrows.streams import StreamReader

T = TypeVar("T")


def run(gen: Generator[None, None, T]) -> T:
    """Run a generator-based coroutine that must complete without waiting."""
    with pytest.raises(StopIteration) as raised:
        next(gen)
    value: T = raised.value.value
    return value


def test_read_line_waits_for_the_newline() -> None:
    reader = StreamReader()
    reader.feed_data(b"spa")
    gen = reader.read_line(32)
    next(gen)  # waits
    reader.feed_data(b"m\neggs")
    assert run(gen) == b"spam\n"
    assert run(reader.read_exact(4)) == b"eggs"


def test_read_line_limits() -> None:
    reader = StreamReader()
    reader.feed_data(b"spa")
    # More bytes than the limit without a newline fail at once.
    with pytest.raises(ValueError, match=r"^read 3 bytes, expected no more than 2 bytes$"):
        next(reader.read_line(2, too_long_exc_type=ValueError))
    reader.feed_eof()
    with pytest.raises(EOFError, match=r"^stream ends after 3 bytes, before end of line$"):
        next(reader.read_line(32))


def test_read_exact_and_eof() -> None:
    reader = StreamReader()
    gen = reader.at_eof()
    next(gen)
    reader.feed_data(b"spa")
    assert run(gen) is False
    reader.feed_eof()
    with pytest.raises(EOFError, match=r"^stream ends after 3 bytes, expected 4 bytes$"):
        next(reader.read_exact(4))
    with pytest.raises(EOFError, match=r"^stream ended$"):
        reader.feed_data(b"m")
    with pytest.raises(EOFError, match=r"^stream ended$"):
        reader.feed_eof()
    assert run(reader.read_to_eof(32)) == b"spa"
    assert run(reader.at_eof()) is True


def test_read_to_eof_limit() -> None:
    reader = StreamReader()
    gen = reader.read_to_eof(2)
    next(gen)
    reader.feed_data(b"spam")
    with pytest.raises(RuntimeError, match=r"^read 4 bytes, expected no more than 2 bytes$"):
        next(gen)
