"""The asyncio connection shared by servers and clients.

One :class:`asyncio.Protocol` per TCP connection, over a Sans-I/O
:class:`~ferrows.protocol.Protocol` in ``assemble`` mode, whose public
methods are all it calls. ``data_received`` hands each chunk to
``protocol.receive_events`` once (the Rust core itself, without Python
extensions) and dispatches what comes back: whole messages, and the fragments of fragmented
messages as they arrive, go to the receive queue,
:class:`~ferrows.asyncio.messages.Assembler` (``recv_messages``), which
``recv()`` reads without a task switch when a message is waiting;
pings are answered by the core; pongs resolve the futures returned by
``ping()``. ``send()`` frames with ``protocol.send_data`` and writes to the
transport, awaiting only when the write buffer is above its high-water mark.
There are no streams and no reader task.

A protocol violation by the peer stops reading, but the messages received
before it are delivered first: the connection fails (close frame with the
violation's code) once the application asks for the next message, or after
``close_timeout`` if it does not, so that its answers to those messages go
out before the close frame.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self, cast, overload

from .._core import send_to_all
from .._logging import connection_logger
from .._messages import whole_message_queued
from ..connection import (
    COALESCE_LIMIT,
    WRITE_APART,
    WRITE_LINGER,
    ConnectionBase,
    acknowledged_pings,
    closed_exception,
    decode_message,
    frames_through_protocol,
    invalid_utf8_reason,
    keepalive_payload,
    limits,
    ping_payload,
    pong_payload,
)
from ..connection import linger_clock as _monotonic
from ..events import CloseReceived, PongReceived, ProtocolViolation
from ..exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidState,
    ProtocolError,
)
from ..frames import CloseCode
from ..http11 import Request, Response
from ..protocol import CLIENT, CONNECTING, OPEN, Protocol
from ..protocol import Protocol as _Protocol
from ..server import broadcast_arguments, broadcast_frame_key, broadcast_skipped, encode_broadcast_frame
from ..typing import Data, DataLike, LoggerLike
from .messages import Assembler
from .wheel import wheel_for

__all__ = ["Connection", "broadcast"]

_TEXT, _BINARY, _CONT = 1, 2, 0
_PING, _PONG = 9, 10
# A connection's pings while it has none: read-only, so that a write to it
# fails rather than reach every connection.
_NO_PINGS = cast(dict[bytes, Any], MappingProxyType({}))
_CONCURRENT_RECV = "cannot call recv while another coroutine is already running recv or recv_streaming"
_CONCURRENT_STREAM = "cannot call recv_streaming while another coroutine is already running recv or recv_streaming"

# The protocol's methods as defined. The fast paths call the core directly;
# when one of these was replaced on the class (a test injecting a fault, as
# websockets' tests do), reads and sends go through the protocol's methods
# instead, so that what they do happens. An identity check per read or send
# costs next to nothing.
_EVENTS_RECEIVED = _Protocol.events_received
_SEND_TEXT = _Protocol.send_text
_SEND_BINARY = _Protocol.send_binary

READ_BUFFER_SIZE = 256 * 1024
"""Size of the buffer the transports read into: asyncio's own read size."""

_read_buffers = threading.local()


def _read_buffer() -> memoryview:
    """The buffer this thread's connections read into, shared by all of them.

    ``asyncio.Protocol.data_received`` gets a new ``bytes`` per read, for
    which the transport allocates its whole read size (256 KiB) and shrinks
    it: above glibc's mmap threshold, that is a mapping, page faults and an
    unmapping for every read, most of the cost of a small message. As a
    ``BufferedProtocol``, the connection has the transport read into this
    buffer instead; the core copies out what it keeps before the next read,
    so one buffer per thread (per event loop) serves every connection.
    """
    view: memoryview | None = getattr(_read_buffers, "view", None)
    if view is None:
        view = _read_buffers.view = memoryview(bytearray(READ_BUFFER_SIZE))
    return view


class Connection(ConnectionBase, asyncio.BufferedProtocol):
    """A WebSocket connection over an asyncio transport.

    :class:`~ferrows.asyncio.server.ServerConnection` and
    :class:`~ferrows.asyncio.client.ClientConnection` add their side's
    opening handshake; everything after it lives here.
    """

    # Slots keep an idle connection small; __dict__ stays, created on first use,
    # for attributes that subclasses, tests and applications set.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_broadcast_key",
        "_broadcast_wrote",
        "_close_at",
        "_close_handle",
        "_connection_exc",
        "_corked",
        "_corked_at",
        "_drain_waiters",
        "_fd",
        "_fd_transport",
        "_fragmented_send",
        "_keepalive_at",
        "_keepalive_ping",
        "_keepalive_pong_at",
        "_lost",
        "_lost_waiter",
        "_pings",
        "_queue",
        "_read_view",
        "_reading_paused",
        "_receive",
        "_send",
        "_uncork_handle",
        "_violation",
        "_wheel_slot",
        "_writing_paused",
        "close_timeout",
        "debug",
        "keepalive_task",
        "latency",
        "logger",
        "loop",
        "ping_interval",
        "ping_timeout",
        "protocol",
        "recv_messages",
        "request",
        "response",
        "transport",
        "write_limit",
    )

    _corked_at: float  # when _send_data() held the first frame of a write

    def __init__(
        self,
        protocol: Protocol,
        *,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_queue: int | tuple[int | None, int | None] | None = 32,
        read_limit: int | None = 2**16,
        write_limit: int | tuple[int, int | None] = 2**16,
    ) -> None:
        self.protocol = protocol
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        high, low = limits(max_queue)
        self.write_limit = write_limit
        self.loop = asyncio.get_running_loop()
        self._read_view = _read_buffer()
        # Records carry this connection as ``websocket``, as in websockets.
        self.logger: LoggerLike = connection_logger(protocol.logger, self)
        protocol.logger = self.logger
        self.debug = protocol.debug
        self.request: Request | None = None
        self.response: Response | None = None
        self.latency: float = 0.0
        """Round-trip time of the last ping, in seconds (0 before one)."""

        protocol.assemble = True
        protocol.fragments = True
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        # The protocol's entry points once the connection is open (the
        # core's own methods without Python extensions), looked up once.
        self._receive: Any = None
        self._send = protocol.send_data
        self.recv_messages = Assembler(
            high, low, pause=self._pause_reading, resume=self._resume_reading, read_limit=limits(read_limit)
        )
        """Messages received and not read yet, with the flow control on
        them: ``max_queue`` frames and ``read_limit`` bytes."""
        # Its queue and its non-blocking read, looked up once for recv().
        self._queue = self.recv_messages.frames.queue
        self._reading_paused = False
        # The peer violated the protocol; the failure waits for the
        # application to take the messages before it (see _fail_pending).
        self._violation = False
        # Write flow control.
        self._writing_paused = False
        # Empty tuples and a shared empty mapping until needed, for these
        # three: an idle connection would keep two empty lists and an empty
        # dict, 230 bytes, for nothing. There is rarely more than one waiter.
        self._drain_waiters: tuple[asyncio.Future[None], ...] = ()
        self._fragmented_send: asyncio.Future[None] | None = None
        # Small frames held back while more received messages wait: see
        # _send_data().
        self._corked: list[bytes] | tuple[()] = ()
        self._uncork_handle: asyncio.Handle | None = None
        # A broadcast frame was written in this loop iteration; the next ones
        # are held until its end (see write_broadcast_frame()).
        self._broadcast_wrote = False
        self._broadcast_key: Any = None
        self._fd = -1
        self._fd_transport: asyncio.BaseTransport | None = None
        # Pings awaiting their pong: payload -> (future, time sent).
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = _NO_PINGS
        # Keepalive runs on the loop's shared timers (see wheel.py): when the
        # next ping is due, and the last keepalive ping while it awaits its pong.
        self._wheel_slot: tuple[int, int] | None = None
        self._keepalive_at = 0.0
        self._keepalive_ping: asyncio.Future[float] | None = None
        self._keepalive_pong_at = 0.0
        self.keepalive_task: asyncio.Task[None] | None = None
        """The task :meth:`start_keepalive` started, if any."""
        # When the closing handshake and TCP close time out (0.0: not
        # closing), on the shared timers as well; _close_handle is the rarer
        # timer that fails the connection after a peer's violation.
        self._close_at = 0.0
        self._close_handle: asyncio.TimerHandle | None = None
        self._lost = False
        self._connection_exc: BaseException | None = None
        # Created when something waits for the end (see connection_lost_waiter).
        self._lost_waiter: asyncio.Future[None] | None = None

    # ------------------------------------------------------------ properties

    @property
    def connection_lost_waiter(self) -> asyncio.Future[None]:
        """A future done once the TCP connection is closed.

        Made on first use: most connections end without anyone waiting for
        it, and a future on each would cost an idle connection 150 bytes.
        """
        waiter = self._lost_waiter
        if waiter is None:
            waiter = self._lost_waiter = self.loop.create_future()
            if self._lost:
                waiter.set_result(None)
        return waiter

    @property
    def local_address(self) -> Any:
        """Local address: ``(host, port)`` for TCP, a path for Unix sockets."""
        return self.transport.get_extra_info("sockname")

    @property
    def remote_address(self) -> Any:
        """Remote address: ``(host, port)`` for TCP, a path or ``""`` for Unix."""
        return self.transport.get_extra_info("peername")

    # ------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports implement the interface
        # without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        # As given: asyncio puts the low-water mark at a quarter of the high
        # one when it is missing, as limits() would.
        high, low = self.write_limit if isinstance(self.write_limit, tuple) else (self.write_limit, None)
        self.transport.set_write_buffer_limits(high, low)
        if self.protocol.state is not CONNECTING and self._receive is None:
            # A protocol opened elsewhere (the caller did the handshake).
            self._start()

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the transport reads: the thread's shared read buffer."""
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        """Handles the ``nbytes`` the transport read into the buffer."""
        # A view of the shared buffer: everything below copies what it keeps.
        self.data_received(self._read_view[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        receive = self._receive
        if receive is None:
            self._handshake_data(data)
            return
        try:
            if _Protocol.events_received is not _EVENTS_RECEIVED:
                receive = self._receive_through_protocol
            events = receive(data)
            if events:
                self._deliver(events)
        except Exception as exc:
            # A safety net: answering the peer failed (the transport), or a
            # bug. The connection closes and reports it as the cause.
            self._transport_failed(exc)

    def _receive_through_protocol(self, data: bytes | memoryview) -> list[Any]:
        """A read through the protocol's own methods (see _EVENTS_RECEIVED)."""
        self.protocol.receive_data(data)
        return self.protocol.events_received()

    def _deliver(self, events: list[Any]) -> None:
        """Queues the messages and fragments of one read and handles its
        control events."""
        others = self.recv_messages.put_events(events)
        if others:
            for event in others:
                self._handle_control(event)
            self._flush()

    def eof_received(self) -> bool | None:
        protocol = self.protocol
        try:
            protocol.receive_eof()
            events = protocol.events_received()
            if self._receive is not None:
                self._deliver(events)
            else:
                self._flush()
        except Exception as exc:
            # The safety net of data_received().
            self._transport_failed(exc)
        # Returning None closes the transport: the peer is done writing and,
        # by then, so are we (the close frames were exchanged or never will be).
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        protocol = self.protocol
        try:
            protocol.receive_eof()
            for event in protocol.events_received():
                if type(event) is PongReceived:
                    self._acknowledge_pings(event.data)
            protocol.data_to_send()
        except Exception:
            # A safety net, as in data_received(): whatever failed, the
            # connection is closed and everything below must still happen.
            if self.debug:
                self.logger.debug("! error while closing", exc_info=True)
        self._unschedule()
        if self._close_handle is not None:
            self._close_handle.cancel()
        if self.keepalive_task is not None:
            self.keepalive_task.cancel()
        recv_messages = self.recv_messages
        recv_messages.close()
        # Nothing to pause or resume any more; and without these bound
        # methods, the queue no longer refers back to the connection, which
        # reference counting then frees at once.
        recv_messages.pause = recv_messages.resume = _nothing
        for future, _ in self._pings.values():
            if not future.done():
                future.set_exception(self._closed_exception())
                future.exception()  # keep asyncio from logging "never retrieved"
        self._pings = _NO_PINGS
        self._wake_drain_waiters()
        waiter = self._lost_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._on_closed()

    def pause_writing(self) -> None:
        self._writing_paused = True
        # A peer that floods pings without reading would grow the write
        # buffer by one pong per ping: above the high-water mark the core
        # keeps only the latest (RFC 6455 section 5.5.3).
        self.protocol.hold_pongs(True)

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.protocol.hold_pongs(False) and not self._lost:
            self._flush()
        self._wake_drain_waiters()

    def _wake_drain_waiters(self) -> None:
        if self._drain_waiters:
            waiters, self._drain_waiters = self._drain_waiters, ()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    # ----------------------------------------------------------- subclasses

    def _handshake_data(self, data: bytes | memoryview) -> None:
        """Receives bytes while the opening handshake is in progress."""
        raise NotImplementedError

    def _on_closed(self) -> None:
        """Called once the TCP connection is closed."""

    # -------------------------------------------------------------- opening

    def _start(self, events: list[Any] | None = None) -> None:
        """Starts the connection once the handshake succeeded: takes the
        protocol's entry points, starts the keepalive and delivers the
        frames that arrived with the handshake (``events``, or whatever the
        protocol holds)."""
        protocol = self.protocol
        self._receive = protocol.receive_events
        self._send = protocol.send_data
        # For broadcast(): which connections share a frame (fixed once open).
        # The socket it may write to directly is looked up on the first
        # broadcast (see _direct_fd): most connections never get one.
        self._broadcast_key = broadcast_frame_key(protocol)
        self._schedule_keepalive()
        if events is None:
            events = protocol.events_received()
        self._deliver(events)
        self._flush()

    def _direct_fd(self) -> int:
        """The socket :func:`broadcast` may write to directly, for a plain
        TCP or Unix socket (not TLS, not a proxy's or a test's wrapper
        transport), else -1; looked up again when the transport changed."""
        transport = self.transport
        self._fd = _socket_fd(transport)
        self._fd_transport = transport
        return self._fd

    # ------------------------------------------------------------- control

    def _handle_control(self, event: Any) -> None:
        kind = type(event)
        if kind is PongReceived:
            self._acknowledge_pings(event.data)
        elif kind is CloseReceived:
            self._arm_close_timer()
        elif kind is ProtocolViolation:
            self._violation_received()
        # Pings are answered by the core; nothing else to do.

    def _violation_received(self) -> None:
        """The peer broke the protocol after the messages queued so far.

        Reading stops (the core ignores the rest anyway); the connection
        fails once the application has taken those messages and asks for
        another, or after ``close_timeout``, whichever comes first.
        """
        if self.protocol.state is not OPEN:
            return  # failed at once: the peer's EOF cut a frame short
        self._violation = True
        self._pause_reading()
        if self.recv_messages.reader_waiting and not whole_message_queued(self._queue):
            # The application already waits for a message: nothing to answer.
            self._fail_pending()
        elif self._close_handle is None and not self._lost and self.close_timeout is not None:
            self._close_handle = self.loop.call_later(self.close_timeout, self._fail_pending)

    def _fail_pending(self) -> None:
        """Fails the connection for the peer's violation (see above)."""
        if self._close_handle is not None:
            self._close_handle.cancel()
            self._close_handle = None
        if self.protocol.fail_pending():
            # Read on, whatever the queue holds: the peer's close frame and
            # EOF end the connection.
            self._reading_paused = False
            if not self._lost:
                self.transport.resume_reading()
        self._flush_quietly()

    def _flush_quietly(self) -> None:
        """:meth:`_flush` for the event loop's callbacks (timers, transport
        events): a failed write has closed the connection and recorded why
        already, and nothing may escape into the loop, which would log it
        as an unexpected error."""
        try:
            self._flush()
        except ConnectionClosed:
            pass

    def _flush(self) -> None:
        """Writes what the protocol queued (pongs, close frames, EOF) and
        arms the close timer when the TCP connection should close soon."""
        protocol = self.protocol
        for data in protocol.data_to_send():
            self._write(data)
        if protocol.close_expected():
            self._arm_close_timer()

    def _send_data(self, data: bytes) -> None:
        """Writes a data frame, coalescing the answers to a burst.

        A handler answering messages that arrived in one read would cost one
        ``send()`` system call per answer: half of the server's time in the
        pipelined benchmark. While more received messages wait in the queue,
        small frames are held and written together with the answer to the
        last one; a callback writes them anyway at the end of the current
        loop iteration, and with the first answer made after they waited
        ``WRITE_LINGER``, so that the peer works on them meanwhile.
        """
        if self._queue and len(data) < COALESCE_LIMIT:
            self._cork(data)
            handle = self._uncork_handle
            if handle is None:
                self._uncork_handle = self.loop.call_soon(self._uncork)
                self._corked_at = _monotonic()
            elif _monotonic() - self._corked_at >= WRITE_LINGER:
                handle.cancel()
                self._uncork()
            return
        if self._corked:
            if len(data) >= WRITE_APART:
                self._uncork()
            else:
                data = b"".join((*self._corked, data))
                self._corked = ()
        try:
            self.transport.write(data)
        except Exception as exc:
            raise self._transport_failed(exc)

    def _cork(self, data: bytes) -> None:
        """Holds a frame for the next write (see :meth:`_send_data`)."""
        corked = self._corked
        if isinstance(corked, list):
            corked.append(data)
        else:
            self._corked = [data]

    def _uncork(self) -> None:
        """Writes the frames held by _send_data(); a failure closes the
        connection, and the next call on it reports the error."""
        self._uncork_handle = None
        if self._corked:
            data = b"".join(self._corked)
            self._corked = ()
            if not self._lost:
                try:
                    self.transport.write(data)
                except Exception as exc:
                    self._transport_failed(exc)

    def _write(self, data: bytes) -> None:
        # Frames held back go first, to keep the order of the core's output.
        if self._corked:
            self._uncork()
        transport = self.transport
        try:
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                # Half-close: the peer sees EOF and closes its side.
                if self.debug:
                    self.logger.debug("x half-closing TCP connection")
                transport.write_eof()
            else:
                # TLS cannot half-close: close once the buffer is flushed.
                if self.debug:
                    self.logger.debug("x closing TCP connection")
                transport.close()
        except Exception as exc:
            raise self._transport_failed(exc)

    def _transport_failed(self, exc: Exception) -> BaseException:
        """Records why the transport failed (a write after ``write_eof()``, a
        bug), drops the connection, and returns the exception to raise: the
        closed connection's, with that failure as its cause, as in websockets."""
        if self._connection_exc is None:
            # Without its traceback, which would keep this connection alive
            # through the frames it holds.
            self._connection_exc = exc.with_traceback(None)
        if self.debug:
            self.logger.debug("! transport failed", exc_info=exc)
        if not self._lost:
            self.transport.abort()
        return self._closed_exception()

    def _arm_close_timer(self) -> None:
        """Bounds the closing handshake and TCP close by ``close_timeout``.

        On the loop's shared timers, in place of the keepalive, which a
        closing connection no longer needs: a timer of its own per closing
        connection, cancelled a moment later by nearly every close, cost a
        ``TimerHandle`` and the heap's upkeep for each.
        """
        if not self._close_at and not self._lost:
            timeout = self.close_timeout
            if timeout is not None:
                self._close_at = self.loop.time() + timeout
                wheel_for(self.loop).schedule(self, timeout)

    def _close_timed_out(self) -> None:
        if not self._lost:
            if self.debug:
                self.logger.debug("! timed out waiting for TCP close")
            if self._connection_exc is None:
                self._connection_exc = TimeoutError("timed out while closing connection")
            self.transport.abort()

    # ------------------------------------------------------------ receiving

    def _pause_reading(self) -> None:
        """Stops reading: the receive queue is above its high-water marks,
        or the peer broke the protocol."""
        if not self._reading_paused:
            self._reading_paused = True
            if not self._lost:
                self.transport.pause_reading()

    def _resume_reading(self) -> None:
        """Reads again once the receive queue is below its low-water marks,
        unless reading stays paused until a violation fails the connection."""
        if self._violation and self.protocol.state is OPEN:
            return
        if self._reading_paused:
            self._reading_paused = False
            if not self._lost:
                self.transport.resume_reading()

    @overload
    async def recv(self, decode: Literal[True]) -> str: ...

    @overload
    async def recv(self, decode: Literal[False]) -> bytes: ...

    @overload
    async def recv(self, decode: bool | None = None) -> Data: ...

    async def recv(self, decode: bool | None = None) -> Data:
        """Receives the next message.

        Returns a :class:`str` for a text message and :class:`bytes` for a
        binary message, once its last fragment is in. ``decode=False``
        returns text as UTF-8 bytes; ``decode=True`` decodes binary messages
        as UTF-8.

        Cancelling ``recv()`` is safe: no message is lost.

        Raises:
            ConnectionClosed: When the connection is closed.
            ConcurrencyError: If two coroutines call ``recv()`` concurrently.
        """
        try:
            # Assembler.get_nowait(), inlined: a whole message waiting is
            # what most calls find, and the call cost them a sixth more
            # instructions (small messages, 5,900 instead of 5,100).
            queue = self._queue
            assembler = self.recv_messages
            if queue and not assembler.pieces and not assembler.get_in_progress:
                message = queue.popleft()
                assembler.size -= len(message)
                if assembler.paused:
                    assembler.maybe_resume()
                if decode is None:
                    return message  # type: ignore[no-any-return]
                return decode_message(message, decode)
            return await self._recv_waiting(decode)
        except ConcurrencyError:
            raise ConcurrencyError(_CONCURRENT_RECV) from None
        except UnicodeDecodeError as exc:
            await self._invalid_utf8(exc)
            raise  # unreachable: the line above raises

    async def _recv_waiting(self, decode: bool | None) -> Data:
        """recv() when no whole message waits: the assembler waits for one."""
        self._fail_if_nothing_left()
        try:
            return await self.recv_messages.get(decode)
        except EOFError:
            pass
        # Raised outside the handler: the cause is the connection's.
        raise self._closed_exception()

    def _fail_if_nothing_left(self) -> None:
        """After a violation, fails the connection once the application asks
        for more than the messages that came before it."""
        if self._violation and not whole_message_queued(self._queue):
            self._fail_pending()

    async def _invalid_utf8(self, exc: UnicodeDecodeError) -> None:
        """RFC 6455 section 8.1, as websockets: invalid UTF-8 where the
        application expects text fails the connection with 1007.

        Raises:
            ConnectionClosed: Always, once the connection is closed.
        """
        self._fail(CloseCode.INVALID_DATA, invalid_utf8_reason(exc))
        await asyncio.shield(self.connection_lost_waiter)
        raise self._closed_exception() from None

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """Receives the next message in fragments.

        Yields each fragment of a fragmented message as soon as it is
        received, before the next one arrives: its text decoded as far as it
        goes, or its bytes. A message sent in one frame is one fragment.
        ``decode`` works as for :meth:`recv`. ``max_size`` bounds the whole
        message: a message too big fails the connection after the fragments
        within the limit were yielded.

        Iterate it to the end before receiving again. Cancelling it after
        the first fragment leaves the rest of the message unreadable: the
        next receive raises :exc:`ConcurrencyError`, as in websockets.

        Raises:
            ConnectionClosed: When the connection is closed.
            ConcurrencyError: If two coroutines receive concurrently.
        """
        self._fail_if_nothing_left()
        try:
            async for fragment in self.recv_messages.get_iter(decode):
                yield fragment
            return
        except ConcurrencyError:
            raise ConcurrencyError(_CONCURRENT_STREAM) from None
        except EOFError:
            pass
        except UnicodeDecodeError as exc:
            await self._invalid_utf8(exc)
        raise self._closed_exception()

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        """Yields messages until the connection closes: quietly for a normal
        closure, raising ConnectionClosedError otherwise.

        It waits for messages itself rather than through ``recv()``, so that
        the usual end of a handler's ``async for`` raises and catches no
        exception: that cost a few microseconds per connection.
        """
        queue, assembler = self._queue, self.recv_messages
        frames = assembler.frames
        while True:
            if not queue:
                self._fail_if_nothing_left()
                # It awaits the queue's future itself, rather than through
                # Assembler.wait(): a coroutine fewer kept by every handler
                # waiting for a message. A concurrent read finds that future
                # pending and raises ConcurrencyError.
                if assembler.get_in_progress:
                    raise ConcurrencyError(_CONCURRENT_RECV)
                try:
                    while not queue and not frames.aborted:
                        await frames.waiter()
                except ConcurrencyError:
                    raise ConcurrencyError(_CONCURRENT_RECV) from None
                if not queue:
                    if self.protocol._closed_ok():
                        return
                    raise self._closed_exception()
            try:
                message = await self.recv()
            except ConnectionClosedOK:
                return  # a message cut short by a normal closure
            yield message

    def _closed_exception(self) -> BaseException:
        """The exception for using a connection that is closing or closed:
        while closing, it reports the close frames known so far.

        A new one for each raise. One kept on the connection would keep,
        through its traceback, the frames that raised it and with them the
        connection: every closed connection would then wait for the cyclic
        garbage collector instead of being freed at once.

        See :func:`~ferrows.connection.closed_exception` for its cause.
        """
        return closed_exception(self.protocol, self._connection_exc)

    # -------------------------------------------------------------- sending

    async def send(
        self,
        message: DataLike | Iterable[DataLike] | AsyncIterable[DataLike],
        text: bool | None = None,
    ) -> None:
        """Sends a message.

        A :class:`str` is sent as a text frame, bytes-like objects as a
        binary frame; ``text=True`` or ``text=False`` overrides that. An
        iterable or async iterable of strings or bytes-likes sends one
        fragmented message.

        Waits only when the write buffer is above ``write_limit``.

        Raises:
            ConnectionClosed: When the connection is closed.
            TypeError: For an unsupported message type.
        """
        data: bytes | None
        if (
            type(message) is bytes
            and text is None
            and self._fragmented_send is None
            and _Protocol.send_binary is _SEND_BINARY
        ):
            # The common case, without the checks below.
            if len(message) >= WRITE_APART:
                data = self._send_frame(_BINARY, message, True, apart=True)
            else:
                try:
                    data = self._send(_BINARY, message)
                except InvalidState:
                    raise self._closed_exception() from None
        else:
            data = await self._frame_message(message, text)
            if data is None:
                return  # sent as fragments
        self._send_data(data)
        if self._writing_paused or self.transport.is_closing():
            await self._drain()

    async def _frame_message(self, message: Any, text: bool | None) -> bytes | None:
        """The frame that sends ``message``, once no fragmented message is
        in progress; :obj:`None` after sending an iterable as fragments."""
        while self._fragmented_send is not None:
            await asyncio.shield(self._fragmented_send)
        if isinstance(message, str):
            if text is False:
                return self._send_frame(_BINARY, message.encode(), True)
            return self._send_frame(_TEXT, message, True)
        if isinstance(message, (bytes, bytearray, memoryview)):
            # Immutable bytes only: the transport may keep the object queued.
            apart = not text and type(message) is bytes and len(message) >= WRITE_APART
            return self._send_frame(_TEXT if text else _BINARY, message, True, apart)
        if isinstance(message, Mapping):
            raise TypeError("data is a dict-like object")
        if isinstance(message, Iterable):
            await self._send_fragments(iter(message), None, text)
            return None
        if isinstance(message, AsyncIterable):
            await self._send_fragments(None, aiter(message), text)
            return None
        raise TypeError("data must be str, bytes, iterable, or async iterable")

    def _send_frame(self, opcode: int, data: Any, fin: bool, apart: bool = False) -> bytes:
        """Frames data, turning a closed connection into the exception
        websockets raises.

        With ``apart`` (a large ``bytes`` payload), a server writes the frame
        header now and returns the payload itself, to be written next.
        """
        try:
            if _Protocol.send_text is not _SEND_TEXT or _Protocol.send_binary is not _SEND_BINARY:
                return self._send_through_protocol(opcode, data, fin)
            if apart:
                header = self.protocol.send_header(opcode, len(data), fin)
                if header is not None:
                    self._send_data(header)
                    return data  # type: ignore[no-any-return]
            return self._send(opcode, data, fin)
        except InvalidState:
            raise self._closed_exception() from None

    def _send_through_protocol(self, opcode: int, data: Any, fin: bool) -> bytes:
        """Frames data with the protocol's own methods (see _EVENTS_RECEIVED).
        An unexpected error in them drops the connection, as a failed write
        does, and the send raises ConnectionClosedError with it as the cause.
        """
        try:
            return b"".join(frames_through_protocol(self.protocol, self._send, opcode, data, fin))
        except (InvalidState, ProtocolError):
            raise
        except Exception as exc:
            raise self._transport_failed(exc)

    async def _send_fragments(
        self,
        sync_iter: Iterable[Data] | None,
        async_iter: AsyncIterator[Data] | None,
        text: bool | None,
    ) -> None:
        """Sends a fragmented message; other sends wait until it is done.

        Each chunk goes out as soon as the iterable produces it, and an empty
        final fragment ends the message, as websockets does: the peer gets
        the first fragment without waiting for the second chunk.
        """
        done: asyncio.Future[None] = self.loop.create_future()
        self._fragmented_send = done
        started = False
        try:
            opcode = _BINARY
            kind: Any = None  # the message type comes from the first chunk
            async for chunk in _chain(sync_iter, async_iter):
                if kind is None:
                    if isinstance(chunk, str):
                        opcode = _BINARY if text is False else _TEXT
                        kind = str
                    elif isinstance(chunk, (bytes, bytearray, memoryview)):
                        opcode = _TEXT if text else _BINARY
                        kind = (bytes, bytearray, memoryview)
                    else:
                        raise TypeError("iterable must contain bytes or str")
                elif not isinstance(chunk, kind):
                    raise TypeError("iterable must contain uniform types")
                data = chunk.encode() if isinstance(chunk, str) and text is False else chunk
                self._write(self._send_frame(_CONT if started else opcode, data, False))
                started = True
                if self._writing_paused or self.transport.is_closing():
                    await self._drain()
            if not started:
                return  # empty iterable: nothing to send
            self._write(self._send_frame(_CONT, b"", True))
        except BaseException:
            if self.protocol.state is OPEN and started:
                # A message cannot be abandoned halfway: fail the connection.
                self._fail(CloseCode.INTERNAL_ERROR, "error in fragmented message")
            raise
        finally:
            self._fragmented_send = None
            done.set_result(None)
        if self._writing_paused or self.transport.is_closing():
            await self._drain()

    async def _drain(self) -> None:
        """Waits until the write buffer drops below its low-water mark.

        When the transport is closing (it failed, e.g. the peer reset the
        connection), yields once so that ``connection_lost`` runs and the
        send raises: otherwise a loop of sends that never wait would spin
        forever on a dead transport (uvloop even resumes writing then).
        """
        if self.transport.is_closing() and not self._lost:
            await asyncio.sleep(0)
        while self._writing_paused and not self._lost:
            waiter = self.loop.create_future()
            self._drain_waiters = (*self._drain_waiters, waiter)
            await waiter
        if self._lost:
            raise self._closed_exception()

    async def ping(self, data: DataLike | None = None) -> Awaitable[float]:
        """Sends a ping.

        Returns a future that resolves to the round-trip time in seconds when
        the matching pong arrives: ``latency = await (await ws.ping())``.

        Args:
            data: Payload; 4 random bytes by default. A :class:`str` is
                encoded as UTF-8.

        Raises:
            ConnectionClosed: When the connection is closed.
            ConcurrencyError: If a ping with the same payload awaits its pong.
        """
        future = self._send_ping(ping_payload(data, self._pings))
        if self._writing_paused or self.transport.is_closing():
            await self._drain()
        return future

    def _send_ping(self, payload: bytes) -> asyncio.Future[float]:
        data = self._send_frame(_PING, payload, True)
        future: asyncio.Future[float] = self.loop.create_future()
        if self._pings is _NO_PINGS:
            self._pings = {}
        self._pings[payload] = (future, time.monotonic())
        self._write(data)
        return future

    async def pong(self, data: DataLike = b"") -> None:
        """Sends an unsolicited pong (a unidirectional heartbeat).

        Raises:
            ConnectionClosed: When the connection is closed.
        """
        self._write(self._send_frame(_PONG, pong_payload(data), True))
        if self._writing_paused or self.transport.is_closing():
            await self._drain()

    def _acknowledge_pings(self, payload: bytes) -> None:
        """A pong acknowledges its ping and every ping sent before it
        (RFC 6455 section 5.5.3 allows answering only the latest)."""
        acked = acknowledged_pings(self._pings, payload)
        if not acked:
            return
        now = time.monotonic()
        for _, (future, sent_at) in acked:
            if not future.done():
                future.set_result(now - sent_at)
        self.latency = now - acked[-1][1][1]

    # ------------------------------------------------------------ keepalive

    @property
    def pending_pings(self) -> dict[bytes, tuple[asyncio.Future[float], float]]:
        """Pings awaiting their pong: payload -> (future, time sent)."""
        if self._pings is _NO_PINGS:
            self._pings = {}
        return self._pings

    def start_keepalive(self) -> None:
        """Runs :meth:`keepalive` in :attr:`keepalive_task`, unless
        ``ping_interval`` is :obj:`None`, as websockets' connections do.

        ferrows' clients and servers need not call it: their connections
        send keepalive pings from a timer of the event loop, which costs
        less than a task per connection. This starts websockets' task
        instead of that timer, for code that manages keepalive itself.
        """
        if not self._close_at:
            self._unschedule()
        self._keepalive_at = 0.0
        if self.ping_interval is not None:
            self.keepalive_task = self.loop.create_task(self.keepalive())

    async def keepalive(self) -> None:
        """Sends a ping every ``ping_interval`` seconds and fails the
        connection with 1011 when its pong does not come within
        ``ping_timeout``; logs an unexpected error and stops."""
        assert self.ping_interval is not None
        latency = 0.0
        try:
            while True:
                # A pong slower than the interval delays the next ping.
                await asyncio.sleep(self.ping_interval - latency)
                try:
                    pong_received = await self.ping()
                except ConnectionClosed:
                    return
                if self.debug:
                    self.logger.debug("% sent keepalive ping")
                if self.ping_timeout is None:
                    continue
                try:
                    async with asyncio.timeout(self.ping_timeout):
                        latency = await pong_received
                except TimeoutError:
                    if self.protocol.state is OPEN:
                        if self.debug:
                            self.logger.debug("- timed out waiting for keepalive pong")
                        self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    return
                except ConnectionClosed:
                    return
                if self.debug:
                    self.logger.debug("% received keepalive pong")
        except Exception:
            self.logger.error("keepalive ping failed", exc_info=True)

    def _schedule_keepalive(self) -> None:
        if self.ping_interval is not None and not self._lost:
            self._keepalive_at = self.loop.time() + self.ping_interval
            wheel_for(self.loop).schedule(self, self.ping_interval)

    def _unschedule(self) -> None:
        """Takes the connection off the loop's shared timers."""
        if self._wheel_slot is not None:
            wheel_for(self.loop).cancel(self)

    def _on_wheel(self, now: float) -> None:
        """The shared timer's call: the close timed out, the keepalive
        pong's deadline passed, or the next ping is due (whichever the
        connection was waiting for)."""
        if self._close_at:
            if now >= self._close_at:
                self._close_timed_out()
            elif not self._lost:
                wheel_for(self.loop).schedule(self, self._close_at - now)
            return
        if self._keepalive_ping is not None:
            if self._keepalive_ping.done():
                self._keepalive_ping = None
            elif now >= self._keepalive_pong_at:
                ping, self._keepalive_ping = self._keepalive_ping, None
                self._keepalive_timeout(ping)
                return
        if self._keepalive_at and now >= self._keepalive_at:
            self._keepalive()
        if self._lost or not self._keepalive_at or self._close_at:
            return  # closed, no keepalive, or the close timer took the slot
        # Back on the shared timers for the earlier of the next ping and the
        # pending pong's deadline.
        due = self._keepalive_at
        if self._keepalive_ping is not None:
            due = min(due, self._keepalive_pong_at)
        wheel_for(self.loop).schedule(self, due - now)

    def _keepalive(self) -> None:
        """Sends a keepalive ping; a peer that does not answer within
        ``ping_timeout`` is closed with 1011."""
        if self.protocol.state is not OPEN or self._violation:
            self._keepalive_at = 0.0
            return
        assert self.ping_interval is not None
        # A ping is due every ping_interval whether or not the last pong came.
        self._keepalive_at = self.loop.time() + self.ping_interval
        try:
            future = self._send_ping(keepalive_payload(self._pings, time.monotonic()))
        except ConnectionClosed:
            self._keepalive_at = 0.0
            return
        if self.debug:
            self.logger.debug("% sent keepalive ping")
            future.add_done_callback(self._log_keepalive_pong)
        if self.protocol.side is CLIENT:
            # Servers free idle compression state in their sweep, clients
            # here: one caller per connection, since each call resets the
            # idle mark of the previous one.
            self.protocol.compact_if_idle()
        if self.ping_timeout is not None and self._keepalive_ping is None:
            # The oldest unanswered ping sets the deadline: a pong answers
            # every ping before it, so a later one cannot come sooner.
            self._keepalive_ping = future
            self._keepalive_pong_at = self.loop.time() + self.ping_timeout

    def _log_keepalive_pong(self, future: asyncio.Future[float]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.logger.debug("% received keepalive pong")

    def _keepalive_timeout(self, future: asyncio.Future[float]) -> None:
        if not future.done() and self.protocol.state is OPEN:
            if self.debug:
                self.logger.debug("- timed out waiting for keepalive pong")
            self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            self._flush_quietly()
            self._arm_close_timer()

    # -------------------------------------------------------------- closing

    def _fail(self, code: int, reason: str = "") -> None:
        """Fails the connection from our side (RFC 6455 section 7.1.7)."""
        self.protocol.fail(code, reason)
        self._flush()
        self._arm_close_timer()

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Performs the closing handshake and waits for the TCP close.

        Idempotent. Bounded by ``close_timeout``, after which the TCP
        connection is aborted.

        Raises:
            ProtocolError: If ``code`` is not a valid close code.
        """
        try:
            if self._violation:
                # The peer broke the protocol: fail with its close code.
                self._fail_pending()
            elif self.protocol.state is OPEN:
                if self._fragmented_send is not None:
                    # Closing in the middle of a fragmented message is an error.
                    self._fail(CloseCode.INTERNAL_ERROR, "close during fragmented message")
                else:
                    try:
                        self.protocol.send_close(code, reason)
                    except InvalidState:
                        pass
                    self._flush()
                    self._arm_close_timer()
        except ConnectionClosed:
            pass  # the transport failed: it is being dropped already
        await asyncio.shield(self.connection_lost_waiter)

    async def wait_closed(self) -> None:
        """Waits until the TCP connection is closed."""
        await asyncio.shield(self.connection_lost_waiter)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.close(CloseCode.INTERNAL_ERROR)


def _nothing() -> None:
    """A flow-control callback of a closed connection."""


async def _chain(sync_iter: Iterable[Data] | None, async_iter: AsyncIterator[Data] | None) -> AsyncIterator[Data]:
    if sync_iter is not None:
        for item in sync_iter:
            yield item
    else:
        assert async_iter is not None
        async for item in async_iter:
            yield item


def broadcast(
    connections: Iterable[Connection] | None = None,
    message: DataLike | None = None,
    raise_exceptions: bool = False,
    *,
    text: bool | None = None,
    websockets: Iterable[Connection] | None = None,
) -> None:
    """Sends a message to many connections at once, without waiting.

    The message is framed once and the same bytes are written to every open
    connection that can share them; others get their own frame. The shared
    frame goes to all the plain TCP and Unix sockets with nothing buffered in
    one call, outside Python (``_core.send_to_all``); what a socket does not
    take, and the frames of TLS connections, go through each transport. Closed or
    closing connections are skipped, and so are connections in the middle of
    a fragmented message. There is no backpressure: a slow client's buffer
    grows.

    Args:
        connections: Connections to send to (``websockets=`` also works, as
            the user's documentation names it).
        message: Text (:class:`str`) or binary (bytes-like) message.
        raise_exceptions: Raise an :class:`ExceptionGroup` of the failures
            at the end, instead of logging them.
        text: Force a text (True) or binary (False) frame.

    Raises:
        TypeError: If ``message`` is neither text nor bytes-like.
    """
    connections, opcode, payload = broadcast_arguments(connections, websockets, message, text)
    shared: dict[Any, bytes] = {}
    # Shared frames for sockets with nothing buffered, written in one call
    # per frame after the loop: frame -> (connections, their sockets).
    direct: dict[bytes, tuple[list[Connection], list[int]]] = {}
    exceptions: list[Exception] = []
    pending: dict[asyncio.AbstractEventLoop, list[Connection]] = {}
    # The last frame's group and the last loop's pending list, looked up
    # once rather than once per connection: every connection of a broadcast
    # usually shares both. A fifth of the Python cost of a delivery.
    last_frame: bytes | None = None
    last_group: tuple[list[Connection], list[int]] = ([], [])
    last_loop: asyncio.AbstractEventLoop | None = None
    last_pending: list[Connection] = []
    for connection in connections:
        if connection.protocol.state is not OPEN:
            continue
        if connection._fragmented_send is not None:
            skipped = ConcurrencyError("sending a fragmented message")
            broadcast_skipped(connection, skipped, raise_exceptions, exceptions)
            continue
        try:
            key = connection._broadcast_key
            if key is None:
                data = connection._send_frame(opcode, payload, True)
            else:
                data = shared.get(key)  # type: ignore[assignment]
                if data is None:
                    data = shared[key] = encode_broadcast_frame(key, opcode, payload)
                transport = connection.transport
                fd = connection._fd if transport is connection._fd_transport else connection._direct_fd()
                if (
                    fd >= 0
                    and not connection._broadcast_wrote
                    and not connection._corked
                    and not transport.get_write_buffer_size()
                    and not transport.is_closing()
                ):
                    connection._broadcast_wrote = True
                    loop = connection.loop
                    if loop is not last_loop:
                        last_loop, last_pending = loop, pending.setdefault(loop, [])
                    last_pending.append(connection)
                    if data is not last_frame:
                        group = direct.get(data)
                        if group is None:
                            group = direct[data] = ([], [])
                        last_frame, last_group = data, group
                    last_group[0].append(connection)
                    last_group[1].append(fd)
                    continue
            write_broadcast_frame(connection, data, pending)
        except ConnectionClosed as closed:
            # The write failed and closed the connection: report why.
            broadcast_skipped(connection, closed.__cause__ or closed, raise_exceptions, exceptions)
        except Exception as error:
            broadcast_skipped(connection, error, raise_exceptions, exceptions)
    for frame, (targets, fds) in direct.items():
        # What a socket did not take goes through its transport, which
        # buffers it, or meets the socket's error and closes the connection.
        for index, sent in send_to_all(fds, frame):
            target = targets[index]
            try:
                target._write(frame[sent:] if sent else frame)
            except ConnectionClosed as closed:
                broadcast_skipped(target, closed.__cause__ or closed, raise_exceptions, exceptions)
    for loop, held in pending.items():
        loop.call_soon(_flush_broadcast, held)
    if raise_exceptions and exceptions:
        raise ExceptionGroup("skipped broadcast", exceptions)


def _socket_fd(transport: asyncio.BaseTransport) -> int:
    """The file descriptor that :func:`broadcast` may write to directly: the
    socket of a plain TCP or Unix socket transport of asyncio or uvloop; -1
    for TLS and for any other transport."""
    if transport.get_extra_info("sslcontext") is not None:
        return -1
    if type(transport).__module__ not in _DIRECT_TRANSPORT_MODULES:
        return -1
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM:
        return -1
    try:
        return int(sock.fileno())
    except (OSError, ValueError):
        return -1


# Transports whose write() does nothing but send() when their buffer is
# empty, so that writing to their socket directly is the same.
_DIRECT_TRANSPORT_MODULES = frozenset({"asyncio.selector_events", "uvloop.loop", "uvloop"})


def write_broadcast_frame(
    connection: Connection, data: bytes, pending: dict[asyncio.AbstractEventLoop, list[Connection]]
) -> None:
    """Writes a broadcast frame: at once if it is the connection's first
    broadcast in this loop iteration, else held until the end of it.

    A lone broadcast (a chat message, a price tick) is then on the transport
    when :func:`broadcast` returns, as in websockets. A server broadcasting
    several messages in a row (a batch of updates) makes two ``send()``
    system calls per connection instead of one per message, which was most
    of its time. Held frames join the connection's held-back answers
    (``_send_data``), so any write of the connection flushes them first and
    the order is kept. A connection's first broadcast of the iteration puts
    it in ``pending``, for which the caller schedules :func:`_flush_broadcast`.
    Large frames are written at once, as joining them would copy them.
    """
    if not connection._broadcast_wrote:
        connection._broadcast_wrote = True
        pending.setdefault(connection.loop, []).append(connection)
        if not connection._corked:
            connection._write(data)
            return
    if len(data) >= COALESCE_LIMIT:
        connection._write(data)
        return
    connection._cork(data)


def _flush_broadcast(connections: list[Connection]) -> None:
    """Writes what the broadcasts of this loop iteration held: all but each
    connection's first (see :func:`write_broadcast_frame`).

    Connections holding the same frames (the same broadcasts, and nothing
    else) on an idle socket get them in one ``send_to_all`` call, as the
    first broadcast did: a hub relaying a burst of messages read from Redis
    in one go makes one call for all its members, not one write each. The
    others, and what a socket did not take, go through :meth:`_uncork`.
    """
    direct: dict[tuple[int, ...], tuple[list[Connection], list[int]]] = {}
    for connection in connections:
        connection._broadcast_wrote = False
        held = connection._corked
        if not held:
            continue
        transport = connection.transport
        fd = connection._fd if transport is connection._fd_transport else connection._direct_fd()
        if fd >= 0 and not connection._lost and not transport.get_write_buffer_size() and not transport.is_closing():
            # The same frame objects, in the same order: the same bytes.
            group = direct.get(key := tuple(map(id, held)))
            if group is None:
                group = direct[key] = ([], [])
            group[0].append(connection)
            group[1].append(fd)
        else:
            connection._uncork()
    for targets, fds in direct.values():
        data = b"".join(targets[0]._corked)
        for target in targets:
            target._corked = ()
        for index, sent in send_to_all(fds, data):
            target = targets[index]
            target._cork(data[sent:] if sent else data)
            target._uncork()
