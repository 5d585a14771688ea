"""The receive queue of a threading connection, as websockets'
:class:`Assembler`.

The reading thread puts what the core hands over for each network read into
it with :meth:`Assembler.put_events`: whole messages, and the fragments of
fragmented messages as they arrive. ``recv()`` takes whole messages with
:meth:`Assembler.get` (at the cost of one lock when a message is waiting,
through :meth:`Assembler.get_nowait`), ``recv_streaming()`` takes fragments
with :meth:`Assembler.get_iter`. :meth:`Assembler.put` takes websockets'
:class:`~ferrows.frames.Frame` objects, for code written for websockets'
assembler.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, overload

from .._messages import FlowControl, FragmentConverter, is_last, item_size, join_message, queue_events
from ..exceptions import ConcurrencyError
from ..frames import Frame
from ..typing import Data

__all__ = ["Assembler"]

_NOTHING: tuple[Any, ...] = ()
_CONCURRENT = "get() or get_iter() is already running"


class FrameQueue(collections.deque[Any]):
    """The queue of an :class:`Assembler`: a deque, with the ``qsize()`` of
    the :class:`queue.SimpleQueue` websockets uses there."""

    def qsize(self) -> int:
        """Number of items waiting."""
        return len(self)


class Assembler(FlowControl):
    """Messages received and not read yet, and the flow control on them.

    Reading pauses when more than ``high`` frames wait (messages in one
    frame, fragments, frames put) and resumes once no more than ``low``
    remain, as in websockets. ``pause`` and ``resume`` are called with
    :attr:`mutex` held, in the order the queue crossed the marks.

    Args:
        high: High-water mark of frames; :obj:`None` for no limit.
        low: Low-water mark; a quarter of ``high`` by default.
        pause: Called when the queue goes above the high-water mark; should
            pause reading from the network.
        resume: Called when the queue goes back to the low-water mark;
            should resume reading.
        mutex: The lock that guards the queue; a connection passes the one
            that guards its protocol, so that reading a network chunk and
            queueing its messages take one lock. It must be reentrant
            (:class:`threading.RLock`) if it is held around calls to the
            assembler.

    Raises:
        ValueError: For water marks out of order or negative.
    """

    def __init__(
        self,
        high: int | None = None,
        low: int | None = None,
        pause: Callable[[], Any] = lambda: None,
        resume: Callable[[], Any] = lambda: None,
        *,
        mutex: threading.RLock | None = None,
    ) -> None:
        super().__init__(high, low, pause, resume, None)
        self.mutex = threading.RLock() if mutex is None else mutex
        self._cond = threading.Condition(self.mutex)
        self.frames = FrameQueue()
        """What waits to be read, one item per frame received."""

    # ------------------------------------------------------------ feeding

    def put(self, frame: Frame) -> None:
        """Adds a data frame to the next message, as websockets' assembler.

        Raises:
            EOFError: If the assembler was closed.
        """
        with self.mutex:
            if self.closed:
                raise EOFError("stream of frames ended")
            self.frames.append(frame)
            self.size += len(frame.data)
            self.pieces += 1
            self._cond.notify()
            self._check_pause(len(self.frames))

    def put_events(self, events: list[Any]) -> list[Any] | tuple[Any, ...]:
        """Queues the messages and fragments among the events of one network
        read, in order, and returns the other events (control frames,
        violations, the handshake) for the connection to handle.
        """
        with self.mutex:
            queue = self.frames
            count = len(queue)
            size, pieces, others = queue_events(events, queue)
            if len(queue) != count:
                self.pieces += pieces
                self.size += size
                self._cond.notify()
                self._check_pause(len(queue))
        return _NOTHING if others is None else others

    # ------------------------------------------------------------ reading

    def get_nowait(self) -> str | bytes | None:
        """The next message if it is whole and already here, else
        :obj:`None`: ``recv()`` returns it without waiting.

        Raises:
            ConcurrencyError: If a :meth:`get` or :meth:`get_iter` is running.
        """
        with self.mutex:
            if self.get_in_progress:
                raise ConcurrencyError(_CONCURRENT)
            queue = self.frames
            if not queue:
                return None
            if self.pieces and type(queue[0]) not in (str, bytes):
                return None  # a fragment first: get() waits for the rest
            item = queue.popleft()
            self.size -= len(item)
            if self.paused:
                self._check_resume(len(queue))
            return item  # type: ignore[no-any-return]

    def _next_locked(self, deadline: float | None, timeout: float | None) -> Any:
        """The next item, waiting until ``deadline`` (monotonic time).

        Raises:
            EOFError: If the queue is empty and closed.
            TimeoutError: If no item came in time.
        """
        queue = self.frames
        while not queue:
            if self.closed:
                raise EOFError("stream of frames ended")
            if deadline is None:
                self._cond.wait()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out in {timeout:.1f}s")
                self._cond.wait(remaining)
        item = queue.popleft()
        kind = type(item)
        if kind is str or kind is bytes:
            self.size -= len(item)
        else:
            self.size -= len(item.data)
            self.pieces -= 1
        if self.paused:
            self._check_resume(len(queue))
        return item

    @overload
    def get(self, timeout: float | None, decode: Literal[True]) -> str: ...

    @overload
    def get(self, timeout: float | None, decode: Literal[False]) -> bytes: ...

    @overload
    def get(self, timeout: float | None = None, *, decode: Literal[True]) -> str: ...

    @overload
    def get(self, timeout: float | None = None, *, decode: Literal[False]) -> bytes: ...

    @overload
    def get(self, timeout: float | None = None, decode: bool | None = None) -> Data: ...

    def get(self, timeout: float | None = None, decode: bool | None = None) -> Data:
        """Reads the next message, waiting for all its fragments.

        The fragments are taken as they come, so that a message of more
        fragments than the high-water mark does not stall reading; on a
        timeout they go back in the queue.

        Args:
            timeout: Seconds to wait for the whole message; :obj:`None`
                waits forever, zero or less takes only what is here.
            decode: :obj:`False` returns text as UTF-8 bytes, :obj:`True`
                decodes binary messages as UTF-8.

        Raises:
            EOFError: If the stream ended before a whole message.
            TimeoutError: If the message was not whole in time.
            UnicodeDecodeError: If text to decode is not UTF-8.
            ConcurrencyError: If a :meth:`get` or :meth:`get_iter` is running.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.mutex:
            if self.get_in_progress:
                raise ConcurrencyError(_CONCURRENT)
            self.get_in_progress = True
            parts: list[Any] = []
            try:
                while True:
                    try:
                        item = self._next_locked(deadline, timeout)
                    except TimeoutError:
                        self.frames.extendleft(reversed(parts))
                        self.size += sum(item_size(part) for part in parts)
                        self.pieces += sum(not isinstance(part, (str, bytes)) for part in parts)
                        raise
                    parts.append(item)
                    if is_last(item):
                        break
            finally:
                self.get_in_progress = False
        return join_message(parts, decode)

    @overload
    def get_iter(self, decode: Literal[True]) -> Iterator[str]: ...

    @overload
    def get_iter(self, decode: Literal[False]) -> Iterator[bytes]: ...

    @overload
    def get_iter(self, decode: bool | None = None) -> Iterator[Data]: ...

    def get_iter(self, decode: bool | None = None) -> Iterator[Data]:
        """Yields the next message fragment by fragment, each as soon as it
        is received. Iterate it to the end before reading again.

        Raises:
            EOFError: If the stream ended before the end of the message.
            UnicodeDecodeError: If text to decode is not UTF-8.
            ConcurrencyError: If a :meth:`get` or :meth:`get_iter` is running.
        """
        with self.mutex:
            if self.get_in_progress:
                raise ConcurrencyError(_CONCURRENT)
            self.get_in_progress = True
            try:
                item = self._next_locked(None, None)
            except BaseException:
                self.get_in_progress = False
                raise
        converter = FragmentConverter(item, decode)
        yield converter.convert(item)
        while not is_last(item):
            with self.mutex:
                item = self._next_locked(None, None)
            yield converter.convert(item)
        with self.mutex:
            self.get_in_progress = False

    # ------------------------------------------------------- flow control

    def maybe_pause(self) -> None:
        """Pauses reading if the queue is above the high-water mark."""
        with self.mutex:
            self._check_pause(len(self.frames))

    def maybe_resume(self) -> None:
        """Resumes reading if the queue is at the low-water mark or below."""
        with self.mutex:
            self._check_resume(len(self.frames))

    def close(self) -> None:
        """Ends the stream: once the queue is empty, reads raise
        :exc:`EOFError`; what is queued can still be read. Resumes a paused
        reader, which has to see the end of the connection. Idempotent."""
        with self.mutex:
            if self.closed:
                return
            self.closed = True
            self._cond.notify_all()
            if self.paused:
                self.paused = False
                self.resume()
