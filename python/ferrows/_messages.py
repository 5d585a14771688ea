"""What the asyncio and threading :class:`Assembler` classes share: the items
of their receive queue, and how a message or a fragment becomes what
``recv()`` and ``recv_streaming()`` return.

The queue holds three kinds of items, one per frame received:

* :class:`str` and :class:`bytes`: a whole message in one frame, as the core
  hands it over (the common case, which costs nothing more to queue);
* :class:`~ferrows.events.Fragment`: one frame of a fragmented message, its
  text already decoded as far as it goes by the core;
* :class:`~ferrows.frames.Frame`: a data frame given to ``put()``, as
  websockets' assembler takes them, still raw bytes.

Both assemblers count items against their high and low water marks, as
websockets counts frames, and bytes against the ``read_limit`` marks of the
asyncio layer.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable
from typing import Any

from .events import Fragment
from .frames import Frame, Opcode

__all__ = [
    "FlowControl",
    "FragmentConverter",
    "is_last",
    "item_size",
    "join_message",
    "queue_events",
    "water_marks",
    "whole_message_queued",
]

_UTF8Decoder = codecs.getincrementaldecoder("utf-8")


def queue_events(events: list[Any], queue: Any) -> tuple[int, int, list[Any] | None]:
    """Appends the messages and fragments among the events of one network
    read to ``queue``, in order.

    Returns:
        Their size in bytes (characters for text), how many of them are
        fragments, and the other events (control frames, violations, the
        handshake) for the connection, or :obj:`None` if there are none.
    """
    size = pieces = 0
    others: list[Any] | None = None
    for event in events:
        kind = type(event)
        if kind is str or kind is bytes:
            queue.append(event)
            size += len(event)
        elif kind is Fragment:
            queue.append(event)
            size += len(event.data)
            pieces += 1
        elif others is None:
            others = [event]
        else:
            others.append(event)
    return size, pieces, others


def water_marks(high: int | None, low: int | None) -> tuple[int | None, int | None]:
    """websockets' water marks: a missing one derived from the other (low is
    a quarter of high), both :obj:`None` to disable flow control.

    Raises:
        ValueError: If low is negative or above high.
    """
    if high is not None and low is None:
        low = high // 4
    if high is None and low is not None:
        high = low * 4
    if high is not None and low is not None:
        if low < 0:
            raise ValueError("low must be positive or equal to zero")
        if high < low:
            raise ValueError("high must be greater than or equal to low")
    return high, low


class FlowControl:
    """The water marks of a receive queue and the callbacks that pause and
    resume reading, as websockets' assemblers have them.

    Reading pauses when more than ``high`` frames wait (so that ``high=0``
    works) or more than ``size_high`` bytes, and resumes once the queue is
    at or below every low-water mark set; never without one.
    """

    __slots__ = (
        "__weakref__",
        "closed",
        "get_in_progress",
        "high",
        "low",
        "pause",
        "paused",
        "pieces",
        "resume",
        "size",
        "size_high",
        "size_low",
    )

    def __init__(
        self,
        high: int | None,
        low: int | None,
        pause: Callable[[], Any],
        resume: Callable[[], Any],
        read_limit: tuple[int | None, int | None] | None,
    ) -> None:
        self.high, self.low = water_marks(high, low)
        self.size_high, self.size_low = read_limit if read_limit is not None else (None, None)
        self.size = 0
        """Bytes (characters, for decoded text) waiting in the queue."""
        self.pause = pause
        self.resume = resume
        self.paused = False
        self.pieces = 0
        """Queued items that are part of a message (fragments, frames put):
        while there is none, the next item is a whole message, which
        ``recv()`` takes without looking at it first."""
        self.get_in_progress = False
        """A ``get()`` or ``get_iter()`` is running: one reader at a time."""
        self.closed = False

    def _check_pause(self, count: int) -> None:
        if self.paused:
            return
        if (self.high is not None and count > self.high) or (self.size_high is not None and self.size > self.size_high):
            self.paused = True
            self.pause()

    def _check_resume(self, count: int) -> None:
        if not self.paused or (self.low is None and self.size_low is None):
            return
        if (self.low is None or count <= self.low) and (self.size_low is None or self.size <= self.size_low):
            self.paused = False
            self.resume()


def item_size(item: Any) -> int:
    """Bytes (or characters, for decoded text) an item holds."""
    kind = type(item)
    if kind is str or kind is bytes:
        return len(item)
    return len(item.data)


def is_last(item: Any) -> bool:
    """Whether an item ends its message."""
    kind = type(item)
    return kind is str or kind is bytes or bool(item.fin)


def whole_message_queued(queue: Iterable[Any]) -> bool:
    """Whether a read of the queue would find a whole message: the end of
    one is in it. Only the last message queued can be incomplete, so this is
    false exactly when a read would wait for more frames."""
    return any(map(is_last, queue))


def _convert(message: str | bytes, decode: bool | None) -> str | bytes:
    """A whole message as ``decode`` asks: text as UTF-8 bytes with False,
    binary decoded as UTF-8 with True, as received with None.

    Raises:
        UnicodeDecodeError: If a binary message to decode is not UTF-8.
    """
    if decode is None:
        return message
    if decode:
        return message.decode() if type(message) is bytes else message
    return message.encode() if type(message) is str else message


def join_message(parts: list[Any], decode: bool | None) -> str | bytes:
    """The message made of ``parts``, the items of one message in order.

    Raises:
        UnicodeDecodeError: If text (a text frame put as a
            :class:`~ferrows.frames.Frame`, or binary data to decode) is not
            UTF-8.
    """
    first = parts[0]
    kind = type(first)
    if kind is str or kind is bytes:
        return _convert(first, decode)
    if kind is Fragment:
        data = first.data
        joined: str | bytes
        if type(data) is str:
            joined = "".join([part.data for part in parts])
        else:
            joined = b"".join([part.data for part in parts])
        return _convert(joined, decode)
    # Frames, as websockets' assembler gets them: raw bytes.
    raw = b"".join([bytes(part.data) for part in parts])
    if decode is None:
        decode = first.opcode is Opcode.TEXT
    return raw.decode() if decode else raw


class FragmentConverter:
    """Turns the items of one message, first to last, into the fragments
    ``recv_streaming()`` yields, decoding or encoding as ``decode`` asks.

    Text split across frames decodes as an incremental decoder does: each
    fragment holds the characters its frame completes.

    Args:
        first: The message's first item.
        decode: As for ``recv_streaming()``.
    """

    def __init__(self, first: Any, decode: bool | None) -> None:
        kind = type(first)
        if kind is Frame:
            text = first.opcode is Opcode.TEXT
            raw = True
        else:
            data = first if kind is str or kind is bytes else first.data
            text = type(data) is str
            raw = not text
        if decode is None:
            decode = text
        # Raw bytes to decode (a binary message with decode=True, text
        # frames from put()) go through an incremental decoder; decoded
        # text to return as bytes is encoded.
        self._decoder = _UTF8Decoder() if decode and raw else None
        self._encode = not decode and not raw

    def convert(self, item: Any) -> str | bytes:
        """The fragment of ``item``.

        Raises:
            UnicodeDecodeError: If bytes to decode are not UTF-8.
        """
        kind = type(item)
        data = item if kind is str or kind is bytes else item.data
        if self._decoder is not None:
            return self._decoder.decode(data, is_last(item))
        if self._encode:
            return data.encode()  # type: ignore[no-any-return]
        return data if type(data) is str else bytes(data)
