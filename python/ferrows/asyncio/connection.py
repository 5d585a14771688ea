"""The asyncio connection shared by servers and clients.

One :class:`asyncio.Protocol` per TCP connection, over a Sans-I/O
:class:`~ferrows.protocol.Protocol` in ``assemble`` mode, whose public
methods are all it calls. ``data_received`` hands each chunk to
``protocol.receive_events`` once (the Rust core itself, without Python
extensions) and dispatches what comes back: whole messages go to a bounded
queue that ``recv()`` reads without a task switch when a message is waiting;
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
import collections
import socket
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, Self, cast, overload

from .._core import send_to_all
from .._logging import connection_logger
from ..connection import (
    COALESCE_LIMIT,
    WRITE_APART,
    ConnectionBase,
    acknowledged_pings,
    closed_exception,
    decode_message,
    invalid_utf8_reason,
    keepalive_payload,
    limits,
    ping_payload,
    pong_payload,
)
from ..events import CloseReceived, PongReceived, ProtocolViolation
from ..exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidState,
)
from ..frames import CloseCode
from ..http11 import Request, Response
from ..protocol import CLIENT, CONNECTING, OPEN, Protocol
from ..server import broadcast_arguments, broadcast_frame_key, broadcast_skipped, encode_broadcast_frame
from ..typing import Data, DataLike, LoggerLike

__all__ = ["Connection", "broadcast"]

_TEXT, _BINARY, _CONT = 1, 2, 0
_PING, _PONG = 9, 10
_CONCURRENT_RECV = "cannot call recv while another coroutine is already running recv or recv_streaming"


class Connection(ConnectionBase, asyncio.Protocol):
    """A WebSocket connection over an asyncio transport.

    :class:`~ferrows.asyncio.server.ServerConnection` and
    :class:`~ferrows.asyncio.client.ClientConnection` add their side's
    opening handshake; everything after it lives here.
    """

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
        self.max_queue_high, self.max_queue_low = limits(max_queue)
        self.read_limit_high, self.read_limit_low = limits(read_limit)
        self.write_limit = write_limit
        self.loop = asyncio.get_running_loop()
        # Records carry this connection as ``websocket``, as in websockets.
        self.logger: LoggerLike = connection_logger(protocol.logger, self)
        protocol.logger = self.logger
        self.debug = protocol.debug
        self.request: Request | None = None
        self.response: Response | None = None
        self.latency: float = 0.0
        """Round-trip time of the last ping, in seconds (0 before one)."""

        protocol.assemble = True
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        # The protocol's entry points once the connection is open (the
        # core's own methods without Python extensions), looked up once.
        self._receive: Any = None
        self._send = protocol.send_data
        # Received messages waiting for recv(): the queue and its size.
        self._messages: collections.deque[str | bytes] = collections.deque()
        self._queued_bytes = 0
        self._reading_paused = False
        self._recv_waiter: asyncio.Future[None] | None = None
        self._recv_busy = False
        # The peer violated the protocol; the failure waits for the
        # application to take the messages before it (see _fail_pending).
        self._violation = False
        # Write flow control.
        self._writing_paused = False
        self._drain_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._fragmented_send: asyncio.Future[None] | None = None
        # Small frames held back while more received messages wait: see
        # _send_data().
        self._corked: list[bytes] = []
        self._uncork_handle: asyncio.Handle | None = None
        # A broadcast frame was written in this loop iteration; the next ones
        # are held until its end (see write_broadcast_frame()).
        self._broadcast_wrote = False
        self._broadcast_key: Any = None
        self._fd = -1
        self._fd_transport: asyncio.BaseTransport | None = None
        # Pings awaiting their pong: payload -> (future, time sent).
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._keepalive_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._lost = False
        self._connection_exc: BaseException | None = None
        self.connection_lost_waiter: asyncio.Future[None] = self.loop.create_future()

    # ------------------------------------------------------------ properties

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

    def data_received(self, data: bytes) -> None:
        receive = self._receive
        if receive is None:
            self._handshake_data(data)
            return
        try:
            events = receive(data)
            if events:
                self._deliver(events)
        except Exception as exc:
            # A safety net: answering the peer failed (the transport), or a
            # bug. The connection closes and reports it as the cause.
            self._transport_failed(exc)

    def _deliver(self, events: list[Any]) -> None:
        """Queues the messages and handles the control events of one read."""
        messages = self._messages
        control = False
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                messages.append(event)
                self._queued_bytes += len(event)
            else:
                control = True
                self._handle_control(event)
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done() and (messages or self._violation):
            waiter.set_result(None)
        if control:
            self._flush()
        self._check_read_pause()

    def eof_received(self) -> bool | None:
        protocol = self.protocol
        protocol.receive_eof()
        events = protocol.events_received()
        if self._receive is not None:
            # Answering may fail (the peer reset right after its EOF): the
            # connection closes with that as the cause, and nothing escapes
            # into the transport.
            try:
                self._deliver(events)
            except ConnectionClosed:
                pass
        else:
            self._flush_quietly()
        # Returning None closes the transport: the peer is done writing and,
        # by then, so are we (the close frames were exchanged or never will be).
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        protocol = self.protocol
        protocol.receive_eof()
        for event in protocol.events_received():
            if type(event) is PongReceived:
                self._acknowledge_pings(event.data)
        protocol.data_to_send()
        for handle in (self._keepalive_handle, self._close_handle):
            if handle is not None:
                handle.cancel()
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        for future, _ in self._pings.values():
            if not future.done():
                future.set_exception(self._closed_exception())
                future.exception()  # keep asyncio from logging "never retrieved"
        self._pings.clear()
        self._wake_drain_waiters()
        if not self.connection_lost_waiter.done():
            self.connection_lost_waiter.set_result(None)
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
        while self._drain_waiters:
            waiter = self._drain_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # ----------------------------------------------------------- subclasses

    def _handshake_data(self, data: bytes) -> None:
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
        # For broadcast(): which connections share a frame (fixed once open),
        # and the socket to write it to directly, for a plain TCP or Unix
        # socket (not TLS, not a proxy's or a test's wrapper transport).
        self._broadcast_key = broadcast_frame_key(protocol)
        self._fd = _socket_fd(self.transport)
        self._fd_transport = self.transport
        self._schedule_keepalive()
        if events is None:
            events = protocol.events_received()
        self._deliver(events)
        self._flush()

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
        if not self._reading_paused and not self._lost:
            self._reading_paused = True
            self.transport.pause_reading()
        if not self._messages and self._recv_waiter is not None:
            # The application already waits for a message: nothing to answer.
            self._fail_pending()
        elif self._close_handle is None and not self._lost and self.close_timeout is not None:
            self._close_handle = self.loop.call_later(self.close_timeout, self._fail_pending)

    def _fail_pending(self) -> None:
        """Fails the connection for the peer's violation (see above)."""
        if self._close_handle is not None:
            self._close_handle.cancel()
            self._close_handle = None
        if self.protocol.fail_pending() and not self._lost:
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
        loop iteration, so nothing waits for long.
        """
        if self._messages and len(data) < COALESCE_LIMIT:
            self._corked.append(data)
            if self._uncork_handle is None:
                self._uncork_handle = self.loop.call_soon(self._uncork)
            return
        if self._corked:
            if len(data) >= WRITE_APART:
                self._uncork()
            else:
                self._corked.append(data)
                data = b"".join(self._corked)
                self._corked.clear()
        try:
            self.transport.write(data)
        except Exception as exc:
            raise self._transport_failed(exc)

    def _uncork(self) -> None:
        """Writes the frames held by _send_data(); a failure closes the
        connection, and the next call on it reports the error."""
        self._uncork_handle = None
        if self._corked:
            data = b"".join(self._corked)
            self._corked.clear()
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
        """Bounds the closing handshake and TCP close by ``close_timeout``."""
        if self._close_handle is None and not self._lost:
            timeout = self.close_timeout
            if timeout is not None:
                self._close_handle = self.loop.call_later(timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        if not self._lost:
            if self.debug:
                self.logger.debug("! timed out waiting for TCP close")
            if self._connection_exc is None:
                self._connection_exc = TimeoutError("timed out while closing connection")
            self.transport.abort()

    # ------------------------------------------------------------ receiving

    def _check_read_pause(self) -> None:
        """Pauses reading above the high-water marks (``max_queue`` messages
        or ``read_limit`` bytes of unread messages)."""
        if self._reading_paused:
            return
        high = self.max_queue_high
        limit = self.read_limit_high
        if (high is not None and len(self._messages) >= high) or (limit is not None and self._queued_bytes > limit):
            self._reading_paused = True
            self.transport.pause_reading()

    def _check_read_resume(self) -> None:
        low = self.max_queue_low
        limit = self.read_limit_low
        if (low is None or len(self._messages) <= low) and (limit is None or self._queued_bytes <= limit):
            if self._violation and self.protocol.state is OPEN:
                return  # reading stays paused until the connection fails
            self._reading_paused = False
            if not self._lost:
                self.transport.resume_reading()

    async def _wait_message(self) -> bool:
        """Waits until a message is queued; False if the connection closed.

        Raises:
            ConcurrencyError: If another coroutine is receiving.
        """
        if self._recv_busy:
            raise ConcurrencyError(_CONCURRENT_RECV)
        self._recv_busy = True
        try:
            while not self._messages:
                if self._lost:
                    return False
                if self._violation:
                    # The application took every message received before
                    # the violation: the connection can fail now.
                    self._fail_pending()
                waiter = self.loop.create_future()
                self._recv_waiter = waiter
                try:
                    await waiter
                finally:
                    self._recv_waiter = None
            return True
        finally:
            self._recv_busy = False

    @overload
    async def recv(self, decode: Literal[True]) -> str: ...

    @overload
    async def recv(self, decode: Literal[False]) -> bytes: ...

    @overload
    async def recv(self, decode: bool | None = None) -> Data: ...

    async def recv(self, decode: bool | None = None) -> Data:
        """Receives the next message.

        Returns a :class:`str` for a text message and :class:`bytes` for a
        binary message. ``decode=False`` returns text as UTF-8 bytes;
        ``decode=True`` decodes binary messages as UTF-8.

        Cancelling ``recv()`` is safe: no message is lost.

        Raises:
            ConnectionClosed: When the connection is closed.
            ConcurrencyError: If two coroutines call ``recv()`` concurrently.
        """
        if self._recv_busy:
            raise ConcurrencyError(_CONCURRENT_RECV)
        messages = self._messages
        if not messages and not await self._wait_message():
            raise self._closed_exception()
        message = messages.popleft()
        self._queued_bytes -= len(message)
        # While paused, check the low-water marks only once the queue is
        # short enough: a pipelining peer keeps reading paused for dozens
        # of messages at a time.
        if self._reading_paused and (self.max_queue_low is None or len(messages) <= self.max_queue_low):
            self._check_read_resume()
        if decode is None:
            return message
        try:
            return decode_message(message, decode)
        except UnicodeDecodeError as exc:
            # RFC 6455 section 8.1, as websockets: invalid UTF-8 where the
            # application expects text fails the connection with 1007.
            self._fail(CloseCode.INVALID_DATA, invalid_utf8_reason(exc))
            await asyncio.shield(self.connection_lost_waiter)
            raise self._closed_exception() from None

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """Receives the next message in fragments.

        The core reassembles messages before they reach Python, so the
        message arrives as one fragment; code written for fragments works
        unchanged.

        Raises:
            ConnectionClosed: When the connection is closed.
            ConcurrencyError: If two coroutines receive concurrently.
        """
        if self._recv_busy:
            raise ConcurrencyError(
                "cannot call recv_streaming while another coroutine is already running recv or recv_streaming"
            )
        yield await self.recv(decode)

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        """Yields messages until the connection closes: quietly for a normal
        closure, raising ConnectionClosedError otherwise.

        It waits for messages itself rather than through ``recv()``, so that
        the usual end of a handler's ``async for`` raises and catches no
        exception: that cost a few microseconds per connection.
        """
        while True:
            if not self._messages and not await self._wait_message():
                closed = self._closed_exception()
                if isinstance(closed, ConnectionClosedOK):
                    return
                raise closed
            yield await self.recv()

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
        if type(message) is bytes and text is None and self._fragmented_send is None:
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
            if apart:
                header = self.protocol.send_header(opcode, len(data), fin)
                if header is not None:
                    self._send_data(header)
                    return data  # type: ignore[no-any-return]
            return self._send(opcode, data, fin)
        except InvalidState:
            raise self._closed_exception() from None

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
            self._drain_waiters.append(waiter)
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

    def _schedule_keepalive(self) -> None:
        if self.ping_interval is not None and not self._lost:
            self._keepalive_handle = self.loop.call_later(self.ping_interval, self._keepalive)

    def _keepalive(self) -> None:
        """Sends a keepalive ping; a peer that does not answer within
        ``ping_timeout`` is closed with 1011."""
        if self.protocol.state is not OPEN or self._violation:
            return
        try:
            future = self._send_ping(keepalive_payload(self._pings, time.monotonic()))
        except ConnectionClosed:
            return
        if self.debug:
            self.logger.debug("% sent keepalive ping")
            future.add_done_callback(self._log_keepalive_pong)
        if self.protocol.side is CLIENT:
            # Servers free idle compression state in their sweep, clients
            # here: one caller per connection, since each call resets the
            # idle mark of the previous one.
            self.protocol.compact_if_idle()
        if self.ping_timeout is not None:
            timeout_handle = self.loop.call_later(self.ping_timeout, self._keepalive_timeout, future)
            future.add_done_callback(lambda _: timeout_handle.cancel())
        self._schedule_keepalive()

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
                if (
                    connection._fd >= 0
                    and transport is connection._fd_transport
                    and not connection._broadcast_wrote
                    and not connection._corked
                    and not transport.get_write_buffer_size()
                    and not transport.is_closing()
                ):
                    connection._broadcast_wrote = True
                    pending.setdefault(connection.loop, []).append(connection)
                    group = direct.get(data)
                    if group is None:
                        group = direct[data] = ([], [])
                    group[0].append(connection)
                    group[1].append(connection._fd)
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
    connection._corked.append(data)


def _flush_broadcast(connections: list[Connection]) -> None:
    for connection in connections:
        connection._broadcast_wrote = False
        connection._uncork()
