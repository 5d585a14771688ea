"""The receive queue of an asyncio connection, as websockets'
:class:`Assembler`.

A connection puts what the core hands over for each network read into it
with :meth:`Assembler.put_events`: whole messages, and the fragments of
fragmented messages as they arrive. ``recv()`` takes whole messages with
:meth:`Assembler.get` (without awaiting when one is waiting, through
:meth:`Assembler.get_nowait`), ``recv_streaming()`` takes fragments with
:meth:`Assembler.get_iter`. :meth:`Assembler.put` takes websockets'
:class:`~ferrows.frames.Frame` objects, for code written for websockets'
assembler.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Generic, Literal, TypeVar, overload

from .._core import Fifo
from .._messages import FlowControl, FragmentConverter, is_last, item_size, join_message, queue_events
from ..exceptions import ConcurrencyError
from ..frames import Frame
from ..typing import Data

__all__ = ["Assembler"]

T = TypeVar("T")

_NOTHING: tuple[Any, ...] = ()
_CONCURRENT = "get() or get_iter() is already running"


class SimpleQueue(Generic[T]):
    """The part of :class:`asyncio.Queue` the assembler needs, without its
    locks and its unbounded waiters: one consumer at most."""

    __slots__ = ("aborted", "get_waiter", "loop", "queue")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.get_waiter: asyncio.Future[None] | None = None
        # Not a collections.deque: an empty deque holds a 64-slot block, the
        # largest part of an idle connection; an empty Fifo holds nothing.
        self.queue: Fifo[T] = Fifo()
        self.aborted = False

    def __len__(self) -> int:
        return len(self.queue)

    def put(self, item: T) -> None:
        """Adds an item, waking the consumer."""
        self.queue.append(item)
        self.wake()

    def wake(self) -> None:
        """Wakes the consumer, after items were added to :attr:`queue`."""
        waiter = self.get_waiter
        if waiter is not None:
            self.get_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    @property
    def waiting(self) -> bool:
        """Whether a consumer awaits a future from :meth:`waiter`."""
        waiter = self.get_waiter
        return waiter is not None and not waiter.done()

    def waiter(self) -> asyncio.Future[None]:
        """A future that the next :meth:`put`, :meth:`wake` or :meth:`abort`
        completes, for the consumer to await when the queue is empty.

        Awaited by the consumer's own coroutine rather than through one of
        the queue's: a coroutine waiting is a frame that every idle
        connection keeps.

        Raises:
            ConcurrencyError: If another consumer waits already.
        """
        if self.waiting:
            raise ConcurrencyError(_CONCURRENT)
        waiter = self.get_waiter = self.loop.create_future()
        return waiter

    async def wait(self) -> bool:
        """Waits until an item is queued; False if the queue was aborted
        before one came. Raises nothing at the end of the stream, so that
        the usual end of a connection costs no exception."""
        while not self.queue:
            if self.aborted:
                return False
            await self.waiter()
        return True

    async def get(self, block: bool = True) -> T:
        """Removes and returns the next item, waiting for one if ``block``.

        Raises:
            EOFError: If there is none and none will come: ``block`` is
                false or the queue was aborted.
        """
        if not self.queue and (not block or not await self.wait()):
            raise EOFError("stream of frames ended")
        return self.queue.popleft()

    def reset(self, items: Iterable[T]) -> None:
        """Puts items taken by a cancelled consumer back in front."""
        self.queue.extendleft(reversed(list(items)))

    def abort(self) -> None:
        """Ends the queue: a waiting :meth:`get` raises :exc:`EOFError`."""
        self.aborted = True
        self.wake()


class Assembler(FlowControl):
    """Messages received and not read yet, and the flow control on them.

    Reading pauses when more than ``high`` frames wait (messages in one
    frame, fragments, frames put) and resumes once no more than ``low``
    remain, as in websockets. ferrows' asyncio connection also bounds the
    bytes waiting, with ``read_limit``.

    Args:
        high: High-water mark of frames; :obj:`None` for no limit.
        low: Low-water mark; a quarter of ``high`` by default.
        pause: Called when the queue goes above a high-water mark; should
            pause reading from the network.
        resume: Called when the queue goes back below the low-water marks;
            should resume reading.
        read_limit: ``(high, low)`` water marks of the bytes waiting, or
            :obj:`None`.

    Raises:
        ValueError: For water marks out of order or negative.
    """

    __slots__ = ("frames",)

    def __init__(
        self,
        high: int | None = None,
        low: int | None = None,
        pause: Callable[[], Any] = lambda: None,
        resume: Callable[[], Any] = lambda: None,
        *,
        read_limit: tuple[int | None, int | None] | None = None,
    ) -> None:
        super().__init__(high, low, pause, resume, read_limit)
        self.frames: SimpleQueue[Any] = SimpleQueue()
        """What waits to be read, one item per frame received."""

    # ------------------------------------------------------------ feeding

    def put(self, frame: Frame) -> None:
        """Adds a data frame to the next message, as websockets' assembler.

        Raises:
            EOFError: If the assembler was closed.
        """
        if self.closed:
            raise EOFError("stream of frames ended")
        self.frames.put(frame)
        self.size += len(frame.data)
        self.pieces += 1
        self.maybe_pause()

    def put_events(self, events: list[Any]) -> list[Any] | tuple[Any, ...]:
        """Queues the messages and fragments among the events of one network
        read, in order, and returns the other events (control frames,
        violations) for the connection to handle.

        One call per read, not one per message: that is most of what a
        small message costs on its way to ``recv()``.
        """
        queue = self.frames.queue
        count = len(queue)
        size, pieces, others = queue_events(events, queue)
        if len(queue) != count:
            self.pieces += pieces
            self.size += size
            self.frames.wake()
            self.maybe_pause()
        return _NOTHING if others is None else others

    # ------------------------------------------------------------ reading

    @property
    def reader_waiting(self) -> bool:
        """Whether a read is in progress: a :meth:`get`, :meth:`get_iter` or
        :meth:`wait`, or a reader awaiting :meth:`SimpleQueue.waiter` itself
        (the connection's ``async for``)."""
        return self.get_in_progress or self.frames.waiting

    def get_nowait(self) -> str | bytes | None:
        """The next message if it is whole and already here, else
        :obj:`None`: ``recv()`` returns it without awaiting anything.

        Raises:
            ConcurrencyError: If a :meth:`get` or :meth:`get_iter` is running.
        """
        if self.get_in_progress:
            raise ConcurrencyError(_CONCURRENT)
        queue = self.frames.queue
        if not queue:
            return None
        if self.pieces and type(queue[0]) not in (str, bytes):
            return None  # a fragment first: get() waits for the rest
        item = queue.popleft()
        self.size -= len(item)
        if self.paused:
            self.maybe_resume()
        return item  # type: ignore[no-any-return]

    async def _next(self) -> Any:
        item = await self.frames.get(not self.closed)
        kind = type(item)
        if kind is str or kind is bytes:
            self.size -= len(item)
        else:
            self.size -= len(item.data)
            self.pieces -= 1
        if self.paused:
            self.maybe_resume()
        return item

    @overload
    async def get(self, decode: Literal[True]) -> str: ...

    @overload
    async def get(self, decode: Literal[False]) -> bytes: ...

    @overload
    async def get(self, decode: bool | None = None) -> Data: ...

    async def get(self, decode: bool | None = None) -> Data:
        """Reads the next message, waiting for all its fragments.

        Cancelling it is safe: fragments taken already go back in the queue.

        Args:
            decode: :obj:`False` returns text as UTF-8 bytes, :obj:`True`
                decodes binary messages as UTF-8.

        Raises:
            EOFError: If the stream ended before a whole message.
            UnicodeDecodeError: If text to decode is not UTF-8.
            ConcurrencyError: If a :meth:`get` or :meth:`get_iter` is running.
        """
        if self.get_in_progress:
            raise ConcurrencyError(_CONCURRENT)
        self.get_in_progress = True
        try:
            item = await self._next()
            parts = [item]
            while not is_last(item):
                try:
                    item = await self._next()
                except asyncio.CancelledError:
                    self._put_back(parts)
                    raise
                parts.append(item)
        finally:
            self.get_in_progress = False
        return join_message(parts, decode)

    def _put_back(self, parts: list[Any]) -> None:
        self.frames.reset(parts)
        self.size += sum(item_size(item) for item in parts)
        self.pieces += sum(not isinstance(item, (str, bytes)) for item in parts)

    async def wait(self) -> bool:
        """Waits until something is queued; False once the stream ended
        with nothing left. An ``async for`` over a connection waits with it,
        so that its usual end raises and catches no exception.

        Raises:
            ConcurrencyError: If a :meth:`get` or :meth:`get_iter` is running.
        """
        if self.get_in_progress:
            raise ConcurrencyError(_CONCURRENT)
        if self.frames.queue:
            return True
        if self.closed:
            return False
        self.get_in_progress = True
        try:
            return await self.frames.wait()
        finally:
            self.get_in_progress = False

    @overload
    def get_iter(self, decode: Literal[True]) -> AsyncIterator[str]: ...

    @overload
    def get_iter(self, decode: Literal[False]) -> AsyncIterator[bytes]: ...

    @overload
    def get_iter(self, decode: bool | None = None) -> AsyncIterator[Data]: ...

    async def get_iter(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """Yields the next message fragment by fragment, each as soon as it
        is received.

        Iterate it to the end before reading again. Cancelling it before the
        first fragment is safe; after it, the rest of the message cannot be
        read, as the fragments before were handed out already: the next read
        raises :exc:`ConcurrencyError`, as in websockets.

        Raises:
            EOFError: If the stream ended before the end of the message.
            UnicodeDecodeError: If text to decode is not UTF-8.
            ConcurrencyError: If a :meth:`get` or :meth:`get_iter` is running.
        """
        if self.get_in_progress:
            raise ConcurrencyError(_CONCURRENT)
        self.get_in_progress = True
        try:
            item = await self._next()
        except BaseException:
            self.get_in_progress = False
            raise
        converter = FragmentConverter(item, decode)
        yield converter.convert(item)
        while not is_last(item):
            item = await self._next()
            yield converter.convert(item)
        self.get_in_progress = False

    # ------------------------------------------------------- flow control

    def maybe_pause(self) -> None:
        """Pauses reading if the queue is above a high-water mark."""
        self._check_pause(len(self.frames.queue))

    def maybe_resume(self) -> None:
        """Resumes reading if the queue is below the low-water marks."""
        self._check_resume(len(self.frames.queue))

    def close(self) -> None:
        """Ends the stream: once the queue is empty, reads raise
        :exc:`EOFError`; what is queued can still be read. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.frames.abort()
