"""The threading connection shared by servers and clients.

One background thread per connection reads the socket. It feeds each chunk
once to the Sans-I/O :class:`~ferrows.protocol.Protocol` (in ``assemble``
mode: the Rust core itself without Python extensions), under
:attr:`Connection.protocol_mutex`, queues the whole messages, and the
fragments of fragmented messages as they arrive, that come back in the
receive queue, :class:`~ferrows.sync.messages.Assembler`
(``recv_messages``, which shares that lock), lets the core answer pings,
and resolves the events returned by :meth:`~Connection.ping`. It calls nothing but the
protocol's public methods.
The same thread runs the timers (keepalive pings, the keepalive timeout and
the closing-handshake timeout): it waits for the socket with a timeout that
ends at the next deadline, so a connection costs one thread, not three.

Writes. Every frame is built by the core under ``protocol_mutex`` and
appended, still under the lock, to an output list, so bytes leave in the
order the core produced them and frames of concurrent ``send()`` calls never
interleave. One thread at a time writes that list to the socket, outside the
lock; a sender waits until its own bytes are written. The reading thread
never waits for a write: when another thread is writing, it leaves its
pongs and close frames in the list for that thread. Hence a peer that stops
reading blocks our senders but not our reader, and two peers sending large
messages at each other cannot deadlock on the lock.

A protocol violation by the peer stops reading, but the messages received
before it are delivered first: the connection fails (close frame with the
violation's code) once the application asks for the next message, or after
``close_timeout`` if it does not, so that its answers to those messages go
out before the close frame.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Literal, Self, overload

from .._logging import connection_logger
from .._messages import whole_message_queued
from ..connection import (
    COALESCE_LIMIT,
    WRITE_APART,
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
from ..events import PongReceived, ProtocolViolation
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
from ..server import broadcast_arguments, broadcast_skipped, shared_broadcast_frame
from ..typing import Data, DataLike, LoggerLike
from .messages import Assembler

__all__ = ["Connection", "broadcast"]

_TEXT, _BINARY, _CONT = 1, 2, 0
_PING, _PONG = 9, 10
_CONCURRENT_SEND = "cannot call send while another thread is already running send"
_CONCURRENT_RECV = "cannot call recv while another thread is already running recv or recv_streaming"
_CONCURRENT_STREAM = "cannot call recv_streaming while another thread is already running recv or recv_streaming"

# The protocol's methods as defined; see the asyncio layer's: when one was
# replaced on the class, reads and sends go through the protocol's methods.
_EVENTS_RECEIVED = _Protocol.events_received
_SEND_TEXT = _Protocol.send_text
_SEND_BINARY = _Protocol.send_binary


class Connection(ConnectionBase):
    """A WebSocket connection over a blocking socket.

    :class:`~ferrows.sync.server.ServerConnection` and
    :class:`~ferrows.sync.client.ClientConnection` add their side's opening
    handshake; everything after it lives here. The reading thread starts
    when the object is created.

    Args:
        sock: Connected socket (plain, TLS or Unix).
        protocol: Sans-I/O protocol of this side, before the handshake.
        ping_interval: Seconds between keepalive pings; :obj:`None` disables.
        ping_timeout: Seconds to wait for a keepalive pong before closing
            with 1011; :obj:`None` waits forever.
        close_timeout: Seconds for the closing handshake and the TCP close,
            after which the socket is aborted.
        max_queue: High-water mark of received messages waiting for
            :meth:`recv` (or ``(high, low)``, or :obj:`None` for no limit):
            the connection stops reading above it and resumes at the low mark.
    """

    recv_bufsize = 65536

    _read_at_init = True
    """Whether the reading thread starts with the connection; a client
    starts it once its handshake request is written."""

    def __init__(
        self,
        sock: socket.socket,
        protocol: Protocol,
        *,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_queue: int | tuple[int | None, int | None] | None = 16,
    ) -> None:
        self.socket = sock
        self.protocol = protocol
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        high, low = limits(max_queue)
        # Records carry this connection as ``websocket``, as in websockets.
        self.logger: LoggerLike = connection_logger(protocol.logger, self)
        """Logger for this connection."""
        protocol.logger = self.logger
        self.debug = protocol.debug
        self.request: Request | None = None
        """Opening handshake request."""
        self.response: Response | None = None
        """Opening handshake response."""
        self.latency: float = 0.0
        """Round-trip time of the last ping, in seconds (0 before one)."""

        protocol.assemble = True
        protocol.fragments = True
        # A TLS socket's SSL object may be used by one thread at a time: the
        # reading thread and the writers take turns under this lock, with
        # the socket non-blocking, and wait for it outside the lock.
        self._tls_lock: threading.Lock | None = None
        if isinstance(sock, ssl.SSLSocket):
            self._tls_lock = threading.Lock()
            sock.setblocking(False)
        self.protocol_mutex = threading.RLock()
        """Serialises every call into the protocol and the core, and guards
        the receive queue. Reentrant: the reading thread queues messages
        with it held."""
        # One condition for every wait: messages, writes, fragmented sends,
        # closing. Waits are short and connections have few threads.
        self._cond = threading.Condition(self.protocol_mutex)
        # The protocol's entry points once the connection is open (the
        # core's own methods without Python extensions), looked up once.
        self._receive: Any = None
        self._send = protocol.send_data
        self.recv_flow_control = threading.Lock()
        """Held while reading is paused because too many messages wait, as
        in websockets."""
        self.recv_messages = Assembler(
            high, low, pause=self._pause_reading_locked, resume=self._resume_reading_locked, mutex=self.protocol_mutex
        )
        """Messages received and not read yet, with the flow control on
        them (``max_queue`` frames)."""
        self._queue = self.recv_messages.frames
        self._get_nowait = self.recv_messages.get_nowait
        # The peer violated the protocol; the failure waits for the
        # application to take the messages before it, until this deadline.
        self._violation = False
        self._violation_deadline: float | None = None
        # Output waiting to be written, as a FIFO with sequence numbers:
        # chunk number n is written once _written > n.
        self._out: list[bytes] = []
        self._queued = 0
        self._written = 0
        self._writing = False
        self._waiters = 0
        # Thread sending a fragmented message; others wait for it.
        self._fragmenting: int | None = None
        # Pings awaiting their pong: payload -> (event, time sent, ack_on_close).
        self._pings: dict[bytes, tuple[threading.Event, float, bool]] = {}
        # Timers run by the reading thread (time.monotonic() deadlines).
        self._next_ping: float | None = None
        self.keepalive_thread: threading.Thread | None = None
        """The thread :meth:`start_keepalive` started, if any."""
        self._keepalive_payload: bytes | None = None
        self._keepalive_deadline: float | None = None
        self._close_deadline: float | None = None
        # Closing.
        self._aborted = False
        self._reader_done = False
        self._connection_exc: BaseException | None = None

        if protocol.state is not CONNECTING:
            # A protocol opened elsewhere (the caller did the handshake).
            self._start_locked()
        self._reader = threading.Thread(target=self._recv_events, name=f"ferrows-{self.id}", daemon=True)
        self._reading = False
        if self._read_at_init:
            self._start_reading()

    def _start_reading(self) -> None:
        """Starts the reading thread, once."""
        if not self._reading:
            self._reading = True
            self._reader.start()

    # ------------------------------------------------------------ properties

    @property
    def recv_events_thread(self) -> threading.Thread:
        """The thread reading the socket (the name websockets uses)."""
        return self._reader

    @property
    def local_address(self) -> Any:
        """Local address: ``(host, port)`` for TCP, a path for Unix sockets."""
        return self.socket.getsockname()

    @property
    def remote_address(self) -> Any:
        """Remote address: ``(host, port)`` for TCP, a path or ``""`` for Unix."""
        return self.socket.getpeername()

    # ------------------------------------------------------------ receiving

    @overload
    def recv(self, timeout: float | None, decode: Literal[True]) -> str: ...

    @overload
    def recv(self, timeout: float | None, decode: Literal[False]) -> bytes: ...

    @overload
    def recv(self, timeout: float | None = None, *, decode: Literal[True]) -> str: ...

    @overload
    def recv(self, timeout: float | None = None, *, decode: Literal[False]) -> bytes: ...

    @overload
    def recv(self, timeout: float | None = None, decode: bool | None = None) -> Data: ...

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> Data:
        """Receives the next message.

        Returns a :class:`str` for a text message and :class:`bytes` for a
        binary message, once its last fragment is in. ``decode=False``
        returns text as UTF-8 bytes; ``decode=True`` decodes binary messages
        as UTF-8.

        Args:
            timeout: Seconds to wait; :obj:`None` waits forever, zero or less
                only returns a message already received.
            decode: Overrides the type returned, see above.

        Raises:
            ConnectionClosed: When the connection is closed.
            ConcurrencyError: If two threads call :meth:`recv` or
                :meth:`recv_streaming` concurrently.
            TimeoutError: If no message arrived within ``timeout``.
        """
        try:
            message = self._get_nowait()
            if message is None:
                return self._recv_waiting(timeout, decode)
            if decode is None:
                return message
            return decode_message(message, decode)
        except ConcurrencyError:
            raise ConcurrencyError(_CONCURRENT_RECV) from None
        except UnicodeDecodeError as exc:
            self._invalid_utf8(exc)
            raise  # unreachable: the line above raises

    def _recv_waiting(self, timeout: float | None, decode: bool | None) -> Data:
        """recv() when no whole message waits: the assembler waits for one."""
        self._fail_if_nothing_left()
        try:
            return self.recv_messages.get(timeout, decode)
        except EOFError:
            pass
        # Raised outside the handler: the cause is the connection's.
        raise self._closed_exception()

    def _fail_if_nothing_left(self) -> None:
        """After a violation, fails the connection once the application asks
        for more than the messages that came before it."""
        with self._cond:
            if self._violation and not whole_message_queued(self._queue):
                self._fail_pending_soon_locked()

    def _invalid_utf8(self, exc: UnicodeDecodeError) -> None:
        """RFC 6455 section 8.1, as websockets: invalid UTF-8 where the
        application expects text fails the connection with 1007.

        Raises:
            ConnectionClosed: Always, once the connection is closed.
        """
        self._fail(CloseCode.INVALID_DATA, invalid_utf8_reason(exc), exc)
        self._wait_closed_then_raise()

    @overload
    def recv_streaming(self, decode: Literal[True]) -> Iterator[str]: ...

    @overload
    def recv_streaming(self, decode: Literal[False]) -> Iterator[bytes]: ...

    @overload
    def recv_streaming(self, decode: bool | None = None) -> Iterator[Data]: ...

    def recv_streaming(self, decode: bool | None = None) -> Iterator[Data]:
        """Receives the next message in fragments.

        Yields each fragment of a fragmented message as soon as it is
        received, before the next one arrives: its text decoded as far as it
        goes, or its bytes. A message sent in one frame is one fragment.
        ``decode`` works as for :meth:`recv`. ``max_size`` bounds the whole
        message: a message too big fails the connection after the fragments
        within the limit were yielded. Iterate it to the end before
        receiving again.

        Raises:
            ConnectionClosed: When the connection is closed.
            ConcurrencyError: If two threads receive concurrently.
        """
        self._fail_if_nothing_left()
        try:
            yield from self.recv_messages.get_iter(decode)
            return
        except ConcurrencyError:
            raise ConcurrencyError(_CONCURRENT_STREAM) from None
        except EOFError:
            pass
        except UnicodeDecodeError as exc:
            self._invalid_utf8(exc)
        raise self._closed_exception()

    def __iter__(self) -> Iterator[Data]:
        """Yields messages until the connection closes: quietly after a
        normal closure (1000, 1001), raising ConnectionClosedError otherwise."""
        try:
            while True:
                yield self.recv()
        except ConnectionClosedOK:
            return

    # -------------------------------------------------------------- sending

    def send(
        self,
        message: DataLike | Iterable[DataLike],
        text: bool | None = None,
    ) -> None:
        """Sends a message.

        A :class:`str` is sent as a text frame, bytes-like objects as a
        binary frame; ``text=True`` or ``text=False`` overrides that. An
        iterable of strings or of bytes-likes sends one fragmented message,
        each chunk as soon as the iterable produces it.

        Safe to call from several threads at once: each message goes out
        whole, in the order the calls took the lock.

        Raises:
            ConnectionClosed: When the connection is closed.
            ConcurrencyError: If another thread is sending a fragmented
                message, as websockets raises.
            TypeError: For an unsupported message type.
        """
        if isinstance(message, str):
            if text is False:
                self._send_data(_BINARY, message.encode(), True)
            else:
                self._send_data(_TEXT, message, True)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self._send_data(_TEXT if text else _BINARY, message, True)
        elif isinstance(message, Mapping):
            raise TypeError("data is a dict-like object")
        elif isinstance(message, Iterable):
            self._send_fragments(iter(message), text)
        else:
            raise TypeError("data must be str, bytes, or iterable")

    def _send_data(self, opcode: int, data: Any, fin: bool, fragment: bool = False) -> None:
        """Frames one data frame and writes it.

        Raises:
            ConcurrencyError: If a fragmented message is being sent (unless
                this is one of its fragments), as websockets raises.
        """
        failed: BaseException | None = None
        with self._cond:
            if not fragment and self._fragmenting is not None:
                raise ConcurrencyError(_CONCURRENT_SEND)
            try:
                chunks = self._frames_locked(opcode, data, fin)
            except InvalidState:
                closed = True
            except _SendFailed as exc:
                closed, failed = True, exc.__cause__
            else:
                closed = False
                seq, batch = self._submit_locked(chunks)
        if failed is not None:
            self._abort(failed)
        if closed:
            self._wait_closed_then_raise()
        self._drain(batch, seq)

    def _compact_if_idle(self) -> bool:
        # The reading thread and senders use the core under this lock.
        with self._cond:
            return super()._compact_if_idle()

    def _frames_locked(self, opcode: int, data: Any, fin: bool) -> list[bytes]:
        """The chunks that send one data frame: a server writes a large
        ``bytes`` payload as it is after the header, without copying it."""
        if _Protocol.send_text is not _SEND_TEXT or _Protocol.send_binary is not _SEND_BINARY:
            return self._frames_through_protocol_locked(opcode, data, fin)
        if opcode == _BINARY and type(data) is bytes and len(data) >= WRITE_APART:
            header = self.protocol.send_header(opcode, len(data), fin)
            if header is not None:
                return [header, data]
        return [self._send(opcode, data, fin)]

    def _frames_through_protocol_locked(self, opcode: int, data: Any, fin: bool) -> list[bytes]:
        """Frames data with the protocol's own methods (see _EVENTS_RECEIVED).

        Raises:
            _SendFailed: For an unexpected error in them, which then drops
                the connection, as a failed write does.
        """
        try:
            return frames_through_protocol(self.protocol, self._send, opcode, data, fin)
        except (InvalidState, ProtocolError):
            raise
        except Exception as exc:
            raise _SendFailed from exc

    def _send_fragments(self, chunks: Iterator[Any], text: bool | None) -> None:
        """Sends a fragmented message, holding the send side until done."""
        try:
            first = next(chunks)
        except StopIteration:
            return  # empty iterable: nothing to send
        if isinstance(first, str):
            opcode = _BINARY if text is False else _TEXT
            encode = text is False
        elif isinstance(first, (bytes, bytearray, memoryview)):
            opcode = _TEXT if text else _BINARY
            encode = False
        else:
            raise TypeError("iterable must contain bytes or str")
        kind: Any = str if isinstance(first, str) else (bytes, bytearray, memoryview)
        with self._cond:
            if self._fragmenting is not None:
                raise ConcurrencyError(_CONCURRENT_SEND)
            self._fragmenting = threading.get_ident()
        try:
            # Each chunk goes out as soon as the iterable produces it, and an
            # empty final fragment ends the message, as websockets does.
            self._send_data(opcode, first.encode() if encode else first, False, fragment=True)
            for chunk in chunks:
                if not isinstance(chunk, kind):
                    raise TypeError("iterable must contain uniform types")
                self._send_data(_CONT, chunk.encode() if encode else chunk, False, fragment=True)
            self._send_data(_CONT, b"", True, fragment=True)
        except ConnectionClosed:
            raise
        except BaseException:
            # A message cannot be abandoned halfway: fail the connection.
            with self._cond:
                midway = self.protocol.state is OPEN
            if midway:
                self._fail(CloseCode.INTERNAL_ERROR, "error in fragmented message")
            raise
        finally:
            with self._cond:
                self._fragmenting = None
                self._cond.notify_all()

    def ping(
        self,
        data: DataLike | None = None,
        *,
        ack_on_close: bool = False,
    ) -> threading.Event:
        """Sends a ping.

        Args:
            data: Payload; 4 random bytes by default. A :class:`str` is
                encoded as UTF-8.
            ack_on_close: Also set the event when the connection closes,
                so that waiting never hangs; check :attr:`state` to tell a
                pong from a closure.

        Returns:
            An event set when the matching pong arrives:
            ``ws.ping().wait(timeout)``.

        Raises:
            ConnectionClosed: When the connection is closed.
            ConcurrencyError: If a ping with the same payload awaits its pong.
        """
        event = threading.Event()
        with self._cond:
            payload = ping_payload(data, self._pings)
            try:
                frame = self._control_locked(_PING, payload)
            except InvalidState:
                closed = True
            else:
                closed = False
                self._pings[payload] = (event, time.monotonic(), ack_on_close)
                seq, batch = self._submit_locked([frame])
        if closed:
            self._wait_closed_then_raise()
        self._drain(batch, seq)
        return event

    def pong(self, data: DataLike = b"") -> None:
        """Sends an unsolicited pong (a unidirectional heartbeat).

        Raises:
            ConnectionClosed: When the connection is closed.
        """
        payload = pong_payload(data)
        with self._cond:
            try:
                frame = self._control_locked(_PONG, payload)
            except InvalidState:
                closed = True
            else:
                closed = False
                seq, batch = self._submit_locked([frame])
        if closed:
            self._wait_closed_then_raise()
        self._drain(batch, seq)

    def _control_locked(self, opcode: int, payload: bytes) -> bytes:
        return self._send(opcode, payload, True)

    # ------------------------------------------------------------- writing

    def _submit_locked(self, chunks: list[bytes]) -> tuple[int, list[bytes] | None]:
        """Queues output in core order.

        Returns the sequence number to pass to :meth:`_drain`, and the batch
        to write when no other thread is writing: the caller then becomes
        the writer. While a thread writes, ``_out`` holds what others
        queued meanwhile, and that thread (or a waiting one) writes it next.
        """
        self._out.extend(chunks)
        self._queued += len(chunks)
        if self._writing or self._aborted or not self._out:
            return self._queued, None
        self._writing = True
        batch, self._out = self._out, []
        return self._queued, batch

    def _take_output_locked(self) -> list[bytes]:
        """What the protocol queued (pongs, close frames, EOF)."""
        return self.protocol.data_to_send()

    def _drain(self, batch: list[bytes] | None, seq: int, wait: bool = True) -> BaseException | None:
        """Writes ``batch`` if given, then, with ``wait``, waits until output
        up to ``seq`` is written, writing it when no other thread does.

        Without ``wait`` (the reading thread, broadcasts, failing), returns
        once its own batch is written, handing what others queued to a
        waiting thread if there is one.

        Returns:
            Without ``wait``, the write error, if any.

        Raises:
            ConnectionClosed: If the socket failed (with ``wait`` only).
        """
        cond = self._cond
        while True:
            if batch is not None:
                error = self._write_chunks(batch)
                with cond:
                    if error is None:
                        self._written += len(batch)
                    batch = None
                    if (
                        error is None
                        and not self._aborted
                        and self._out
                        and (self._written < seq or self._waiters == 0)
                    ):
                        batch, self._out = self._out, []
                    else:
                        self._writing = False
                        cond.notify_all()
                if error is not None:
                    self._abort(error)
                    if not wait:
                        return error
                    break
                if batch is not None:
                    continue
            if not wait:
                return None
            with cond:
                self._waiters += 1
                try:
                    while self._written < seq and self._writing and not self._aborted:
                        cond.wait()
                finally:
                    self._waiters -= 1
                if self._written >= seq:
                    return None
                if self._aborted:
                    break
                self._writing = True
                batch, self._out = self._out, []
        self._wait_closed_then_raise()
        return None  # unreachable

    def _write_chunks(self, chunks: list[bytes]) -> BaseException | None:
        """Writes to the socket without holding the lock."""
        sock = self.socket
        tls_lock = self._tls_lock
        try:
            for chunk in _coalesce(chunks):
                if chunk:
                    if tls_lock is None:
                        sock.sendall(chunk)
                    else:
                        _send_tls(sock, tls_lock, chunk)
                else:
                    # Half-close: the peer sees EOF and closes its side.
                    if self.debug:
                        self.logger.debug("x half-closing TCP connection")
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        except Exception as exc:
            if self.debug:
                self.logger.debug("! error while sending data", exc_info=True)
            return exc
        return None

    # -------------------------------------------------------------- closing

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Performs the closing handshake and waits for the TCP close.

        Idempotent. Bounded by ``close_timeout``, after which the socket is
        aborted.

        Raises:
            ProtocolError: If ``code`` is not a valid close code.
        """
        self._start_close(code, reason)
        self._wait_closed()

    def _start_close(self, code: int, reason: str) -> None:
        """Sends the close frame (or fails a fragmented message)."""
        with self._cond:
            if self._violation:
                # The peer broke the protocol: fail with its close code.
                self._fail_pending_soon_locked()
                return
            if self.protocol.state is not OPEN:
                return
            if self._fragmenting is not None:
                self.protocol.fail(CloseCode.INTERNAL_ERROR, "close during fragmented message")
            else:
                try:
                    self.protocol.send_close(code, reason)
                except InvalidState:
                    return
            seq, batch = self._submit_locked(self._take_output_locked())
            self._arm_close_timer_locked()
            # The reading thread may be paused on a full queue: it must read
            # on to see the peer's close frame.
            self._cond.notify_all()
        self._drain(batch, seq, wait=False)

    def _fail(self, code: int, reason: str, exc: BaseException | None = None) -> None:
        """Fails the connection from our side (RFC 6455 section 7.1.7)."""
        with self._cond:
            if exc is not None and self._connection_exc is None:
                self._connection_exc = exc
            self.protocol.fail(code, reason)
            seq, batch = self._submit_locked(self._take_output_locked())
            self._arm_close_timer_locked()
            self._cond.notify_all()
        self._drain(batch, seq, wait=False)

    def _arm_close_timer_locked(self) -> None:
        if self._close_deadline is None and self.close_timeout is not None:
            self._close_deadline = time.monotonic() + self.close_timeout

    def _wait_closed(self) -> None:
        """Waits for the reading thread to end, within the close deadline."""
        if threading.current_thread() is self._reader:
            return
        with self._cond:
            deadline = self._close_deadline
            if deadline is None and self.close_timeout is not None:
                deadline = time.monotonic() + self.close_timeout
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._start_reading()
        self._reader.join(timeout)
        if self._reader.is_alive():
            if self.debug:
                self.logger.debug("! timed out waiting for TCP close")
            self._abort(TimeoutError("timed out while closing connection"))
            self._reader.join()

    def _wait_closed_then_raise(self) -> None:
        self._wait_closed()
        raise self._closed_exception()

    def _closed_exception(self) -> BaseException:
        return closed_exception(self.protocol, self._connection_exc)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Waits until the connection is closed; False if ``timeout`` expired."""
        self._start_reading()
        self._reader.join(timeout)
        return not self._reader.is_alive()

    def _abort(self, exc: BaseException | None = None) -> None:
        """Drops the TCP connection; the reading thread then finishes."""
        with self._cond:
            if exc is not None and self._connection_exc is None:
                self._connection_exc = exc
            if self._aborted:
                return
            self._aborted = True
            self._cond.notify_all()
        _shutdown(self.socket)

    def close_socket(self) -> None:
        """Aborts the connection and waits for the reading thread to end."""
        self._abort()
        if threading.current_thread() is not self._reader:
            self._start_reading()
            self._reader.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.close(CloseCode.INTERNAL_ERROR)

    # --------------------------------------------------------- reading thread

    def _recv_events(self) -> None:
        """Body of the reading thread."""
        sock = self.socket
        poller = select.poll() if hasattr(select, "poll") else None
        if poller is not None:
            poller.register(sock.fileno(), select.POLLIN)
        tls = isinstance(sock, ssl.SSLSocket)
        try:
            while True:
                with self._cond:
                    if self._aborted:
                        break
                    timeout, out = self._run_timers_locked()
                    if self._aborted:
                        break
                    if out:
                        seq, batch = self._submit_locked(out)
                    elif (self.recv_messages.paused or self._violation) and self.protocol.state is OPEN:
                        # Flow control: let the kernel buffer (and the peer
                        # block) until recv() drains the queue. After a
                        # violation, read nothing more until it is applied.
                        self._cond.wait(timeout)
                        continue
                if out:
                    self._drain(batch, seq, wait=False)
                    continue
                # TLS may hold decrypted bytes the socket no longer shows.
                if not (tls and self._tls_pending()):
                    if poller is not None:
                        ready = bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1)))
                    else:  # pragma: no cover - Windows
                        ready = bool(select.select([sock], [], [], timeout)[0])
                    if not ready:
                        continue
                try:
                    if tls:
                        data = self._recv_tls()
                        if data is None:
                            continue  # a partial TLS record: wait for the rest
                    else:
                        data = sock.recv(self.recv_bufsize)
                except Exception as exc:
                    if self.debug:
                        self.logger.debug("! error while receiving data", exc_info=True)
                    with self._cond:
                        if self._connection_exc is None and not self._aborted:
                            self._connection_exc = exc
                    break
                if not data:
                    break
                with self._cond:
                    self._receive_locked(data)
                    out = self._take_output_locked()
                    if out:
                        seq, batch = self._submit_locked(out)
                    close_expected = self.protocol.close_expected()
                    if close_expected:
                        self._arm_close_timer_locked()
                if out:
                    self._drain(batch, seq, wait=False)
                if close_expected and self.protocol.state is CONNECTING:
                    # The handshake failed and the protocol closed its side:
                    # nothing more to read (websockets issue 1596).
                    break
        except Exception as exc:
            # A safety net: nothing above is expected to raise.
            self.logger.error("unexpected internal error", exc_info=True)
            with self._cond:
                if self._connection_exc is None:
                    self._connection_exc = exc
        finally:
            self._finish()

    def _tls_pending(self) -> bool:
        assert self._tls_lock is not None
        with self._tls_lock:
            return bool(self.socket.pending())  # type: ignore[attr-defined]

    def _recv_tls(self) -> bytes | None:
        """Reads decrypted bytes without blocking; :obj:`None` when the SSL
        object needs more from the network (or room to write) first."""
        assert self._tls_lock is not None
        with self._tls_lock:
            try:
                return self.socket.recv(self.recv_bufsize)
            except ssl.SSLWantReadError:
                return None
            except ssl.SSLWantWriteError:
                pass
        _wait_socket(self.socket, write=True)
        return None

    def _finish(self) -> None:
        """Records EOF, closes the socket and wakes every waiter."""
        with self._cond:
            try:
                self.protocol.receive_eof()
                self._handle_events_locked(self.protocol.events_received())
                out = self._take_output_locked()
            except Exception:  # pragma: no cover - safety net
                self.logger.error("unexpected internal error", exc_info=True)
                out = []
            if out:
                seq, batch = self._submit_locked(out)
        if out:
            self._drain(batch, seq, wait=False)
        with self._cond:
            # Let a thread still writing notice the socket is gone first.
            self._aborted = True
            _shutdown(self.socket)
            deadline = time.monotonic() + 1.0
            while self._writing and time.monotonic() < deadline:
                self._cond.wait(0.05)
            try:
                self.socket.close()
            except OSError:  # pragma: no cover
                pass
            for waiter, _, ack_on_close in self._pings.values():
                if ack_on_close:
                    waiter.set()
            self._pings.clear()
            recv_messages = self.recv_messages
            recv_messages.close()
            # Without these bound methods, the queue no longer refers back
            # to the connection, which reference counting then frees at once.
            recv_messages.pause = recv_messages.resume = _nothing
            self._on_closed_locked()
            self._reader_done = True
            self._cond.notify_all()

    def _receive_locked(self, data: bytes) -> None:
        receive = self._receive
        if receive is None or _Protocol.events_received is not _EVENTS_RECEIVED:
            self.protocol.receive_data(data)
            self._handle_events_locked(self.protocol.events_received())
        else:
            self._handle_events_locked(receive(data))

    def _handle_events_locked(self, events: list[Any]) -> None:
        for event in self.recv_messages.put_events(events):
            kind = type(event)
            if kind is PongReceived:
                self._acknowledge_pings_locked(event.data)
            elif kind is ProtocolViolation:
                self._violation_received_locked()
            elif isinstance(event, (Request, Response)):
                self._handshake_event_locked(event)
            # Pings are answered by the core; close frames too.

    def _pause_reading_locked(self) -> None:
        """The receive queue went above its high-water mark: the reading
        thread, which checks ``recv_messages.paused``, waits."""
        self.recv_flow_control.acquire(blocking=False)

    def _resume_reading_locked(self) -> None:
        """The receive queue went back to its low-water mark: wakes the
        reading thread."""
        if self.recv_flow_control.locked():
            self.recv_flow_control.release()
        self._cond.notify_all()

    def _violation_received_locked(self) -> None:
        """The peer broke the protocol after the messages queued so far.

        Reading stops; the connection fails once the application has taken
        those messages and asks for another, or after ``close_timeout``.
        """
        if self.protocol.state is not OPEN:
            return  # failed at once: the peer's EOF cut a frame short
        self._violation = True
        if self.recv_messages.get_in_progress and not whole_message_queued(self._queue):
            # The application already waits for a message: nothing to answer.
            self._violation_deadline = 0.0
        elif self.close_timeout is not None:
            self._violation_deadline = time.monotonic() + self.close_timeout
        self._cond.notify_all()

    def _fail_pending_soon_locked(self) -> None:
        """Has the reading thread apply the violation now (it writes the
        close frame; callers of this may not block on the socket)."""
        if self._violation_deadline != 0.0:
            self._violation_deadline = 0.0
            self._cond.notify_all()

    def _acknowledge_pings_locked(self, payload: bytes) -> None:
        """A pong acknowledges its ping and every ping sent before it
        (RFC 6455 section 5.5.3 allows answering only the latest)."""
        acked = acknowledged_pings(self._pings, payload)
        if not acked:
            return
        for key, (event, _, _) in acked:
            event.set()
            if key == self._keepalive_payload:
                self._keepalive_payload = None
                self._keepalive_deadline = None
                if self.debug:
                    self.logger.debug("% received keepalive pong")
        self.latency = time.monotonic() - acked[-1][1][1]

    def _handshake_event_locked(self, event: Any) -> None:
        """A :class:`Request` or :class:`Response`; see subclasses."""
        raise NotImplementedError

    def _on_closed_locked(self) -> None:
        """Called once when the reading thread ends; see subclasses."""

    def _start_locked(self) -> None:
        """Takes the protocol's entry points once the handshake succeeded,
        and starts the keepalive timer."""
        self._receive = self.protocol.receive_events
        self._send = self.protocol.send_data
        if self.ping_interval is not None:
            self._next_ping = time.monotonic() + self.ping_interval

    # ------------------------------------------------------------ keepalive

    def start_keepalive(self) -> None:
        """Runs :meth:`keepalive` in :attr:`keepalive_thread`, unless
        ``ping_interval`` is :obj:`None`, as websockets' connections do.

        ferrows' clients and servers need not call it: the reading thread
        sends their keepalive pings, so that a connection costs one thread.
        This starts websockets' thread instead, for code that manages
        keepalive itself.
        """
        with self._cond:
            self._next_ping = None
        if self.ping_interval is not None:
            self.keepalive_thread = threading.Thread(target=self.keepalive, name=f"ferrows-keepalive-{self.id}")
            self.keepalive_thread.daemon = True
            self.keepalive_thread.start()

    def keepalive(self) -> None:
        """Sends a ping every ``ping_interval`` seconds and fails the
        connection with 1011 when its pong does not come within
        ``ping_timeout``; ends with the connection, and logs an unexpected
        error."""
        assert self.ping_interval is not None
        try:
            while True:
                # Waiting on the reading thread ends the wait when the
                # connection closes. A pong slower than the interval delays
                # the next ping.
                self._reader.join(max(0.0, self.ping_interval - self.latency))
                if not self._reader.is_alive():
                    break
                try:
                    pong_received = self.ping(ack_on_close=True)
                except ConnectionClosed:
                    break
                if self.debug:
                    self.logger.debug("% sent keepalive ping")
                if self.ping_timeout is None:
                    continue
                if not pong_received.wait(self.ping_timeout):
                    if self.debug:
                        self.logger.debug("- timed out waiting for keepalive pong")
                    self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    break
                if self.debug:
                    self.logger.debug("% received keepalive pong")
        except Exception:
            self.logger.error("keepalive ping failed", exc_info=True)

    # ------------------------------------------------------------ timers

    def _run_timers_locked(self) -> tuple[float | None, list[bytes]]:
        """Runs due timers; returns the delay until the next one and the
        output to write."""
        now = time.monotonic()
        out: list[bytes] = []
        delays: list[float] = []
        if self._close_deadline is not None:
            if now >= self._close_deadline:
                if self.debug:
                    self.logger.debug("! timed out waiting for TCP close")
                if self._connection_exc is None:
                    self._connection_exc = TimeoutError("timed out while closing connection")
                self._aborted = True
                return 0.0, out
            delays.append(self._close_deadline - now)
        if self._violation_deadline is not None:
            if now >= self._violation_deadline:
                self._violation_deadline = None
                if self.protocol.fail_pending():
                    out.extend(self._take_output_locked())
                    self._arm_close_timer_locked()
                    if self._close_deadline is not None:
                        delays.append(self._close_deadline - now)
            else:
                delays.append(self._violation_deadline - now)
        if self.protocol.state is OPEN and not self._violation:
            if self._keepalive_deadline is not None:
                if now >= self._keepalive_deadline:
                    if self.debug:
                        self.logger.debug("- timed out waiting for keepalive pong")
                    self._keepalive_deadline = None
                    self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    out.extend(self._take_output_locked())
                    self._arm_close_timer_locked()
                    assert self._close_deadline is not None or self.close_timeout is None
                    if self._close_deadline is not None:
                        delays.append(self._close_deadline - now)
                    return (min(delays) if delays else None), out
                delays.append(self._keepalive_deadline - now)
            if self._next_ping is not None and self.ping_interval is not None:
                if now >= self._next_ping:
                    self._next_ping = now + self.ping_interval
                    if self._keepalive_payload is None:
                        out.append(self._keepalive_ping_locked(now))
                delays.append(self._next_ping - now)
        return (max(0.0, min(delays)) if delays else None), out

    def _keepalive_ping_locked(self, now: float) -> bytes:
        payload = keepalive_payload(self._pings, now)
        frame = self._control_locked(_PING, payload)
        self._pings[payload] = (threading.Event(), now, False)
        self._keepalive_payload = payload
        if self.ping_timeout is not None:
            self._keepalive_deadline = now + self.ping_timeout
        if self.debug:
            self.logger.debug("% sent keepalive ping")
        if self.protocol.side is CLIENT:
            # Servers free idle compression state in their sweep, clients
            # here: one caller per connection, since each call resets the
            # idle mark of the previous one.
            self.protocol.compact_if_idle()
        return frame


def _nothing() -> None:
    """A flow-control callback of a closed connection."""


class _SendFailed(Exception):
    """The protocol failed to frame a message, unexpectedly: its cause is
    the error."""


def _shutdown(sock: Any) -> None:
    """Shuts the socket down both ways, to end the reading thread.

    For TLS, socket.socket's method rather than SSLSocket's, which would drop
    the TLS state under the reading thread's feet; any other socket-like
    object (a wrapper, a test's mock) gets its own method called.
    """
    try:
        if isinstance(sock, ssl.SSLSocket):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _coalesce(chunks: list[bytes]) -> list[bytes]:
    """Joins runs of small chunks, so that a burst of small frames (answers,
    pongs, broadcasts queued while another thread wrote) costs one system
    call rather than one per frame. Large chunks stay whole, not copied, and
    the empty chunk that stands for EOF keeps its place."""
    if len(chunks) < 2:
        return chunks
    out: list[bytes] = []
    run: list[bytes] = []
    for chunk in chunks:
        if chunk and len(chunk) < COALESCE_LIMIT:
            run.append(chunk)
            continue
        if run:
            out.append(b"".join(run))
            run = []
        out.append(chunk)
    if run:
        out.append(b"".join(run))
    return out


def _send_tls(sock: Any, lock: threading.Lock, data: bytes) -> None:
    """``sendall`` for a non-blocking TLS socket shared with a reading
    thread: each step through the SSL object holds ``lock``, and waiting
    for the socket does not. Retries pass the same bytes, as OpenSSL
    requires after a write that could not complete."""
    view = memoryview(data)
    while view:
        with lock:
            try:
                sent = sock.send(view)
            except ssl.SSLWantWriteError:
                sent, write = 0, True
            except ssl.SSLWantReadError:
                sent, write = 0, False
        if sent:
            view = view[sent:]
        else:
            _wait_socket(sock, write=write)


def _wait_socket(sock: Any, *, write: bool) -> None:
    """Blocks until ``sock`` is writable (or readable), or fails."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLOUT if write else select.POLLIN)
        poller.poll()
    else:  # pragma: no cover - Windows
        select.select([] if write else [sock], [sock] if write else [], [sock])


def broadcast(
    connections: Iterable[Connection] | None = None,
    message: DataLike | None = None,
    raise_exceptions: bool = False,
    *,
    text: bool | None = None,
    websockets: Iterable[Connection] | None = None,
) -> None:
    """Sends a message to many connections at once.

    The message is framed once and the same bytes go to every open server
    connection that can share them (see
    :func:`ferrows.server.broadcast_frame_key`); others get their own frame.
    Closed or closing connections are skipped, and so are connections in the
    middle of a fragmented message. Waits for no connection: when another
    thread is writing to a connection, that thread writes the message.

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
    exceptions: list[Exception] = []
    for connection in connections:
        error: BaseException | None = None
        with connection._cond:
            if connection.protocol.state is not OPEN:
                continue
            if connection._fragmenting is not None:
                skipped = ConcurrencyError("sending a fragmented message")
                broadcast_skipped(connection, skipped, raise_exceptions, exceptions)
                continue
            try:
                data = shared_broadcast_frame(connection.protocol, opcode, payload, shared)
                if data is None:
                    data = connection._send(opcode, payload, True)
                seq, batch = connection._submit_locked([data])
            except Exception as exc:
                error = exc
        if error is None:
            error = connection._drain(batch, seq, wait=False)
        if error is not None:
            broadcast_skipped(connection, error, raise_exceptions, exceptions)
    if raise_exceptions and exceptions:
        raise ExceptionGroup("skipped broadcast", exceptions)
