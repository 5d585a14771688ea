"""Sans-I/O WebSocket protocol: bytes in, events and bytes out.

:class:`Protocol` keeps no socket, clock or event loop. The I/O layer feeds it
what the network delivered with :meth:`~Protocol.receive_data`, reads
:meth:`~Protocol.events_received`, and writes what
:meth:`~Protocol.data_to_send` returns. After the handshake the work is done
by the Rust core (``ferrows._core.Connection``); this class adapts it to
websockets' API and handles extensions written in Python.
"""

from __future__ import annotations

import codecs
import enum
import logging
import os
import uuid
from collections.abc import Sequence
from typing import Any

from . import _core
from .exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidState, PayloadTooBig, ProtocolError
from .extensions.base import Extension
from .extensions.permessage_deflate import PerMessageDeflate
from .frames import OK_CLOSE_CODES, Close, CloseCode, Frame, Opcode
from .http11 import Request, Response
from .typing import LoggerLike, Subprotocol

__all__ = ["SEND_EOF", "Event", "Protocol", "Side", "State"]


class Side(enum.IntEnum):
    """Whether a :class:`Protocol` is a server or a client."""

    SERVER = 0
    CLIENT = 1


class State(enum.IntEnum):
    """State of a WebSocket connection (RFC 6455 sections 4 and 7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


SERVER, CLIENT = Side.SERVER, Side.CLIENT
CONNECTING, OPEN, CLOSING, CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED

Event = Request | Response | Frame
"""Events that :meth:`~Protocol.events_received` returns."""

SEND_EOF = b""
"""Item of :meth:`~Protocol.data_to_send` meaning: half-close the transport."""

_STATES = (CONNECTING, OPEN, CLOSING, CLOSED)
_OPCODES = {op.value: op for op in Opcode}
_FAILED = _core.FAILED

MAX_FRAGMENTS = int(os.environ.get("WEBSOCKETS_MAX_FRAGMENTS", "4096"))
"""Most frames in one message: bounds the work of reassembling tiny
fragments, which :data:`max_size` alone does not."""


def _message_limit(max_size: int | tuple[int | None, int | None] | None) -> int | None:
    """websockets accepts ``(message, fragment)`` pairs for ``max_size``: the
    first bounds messages, the second each frame (``max_frame_size``)."""
    if isinstance(max_size, tuple):
        return max_size[0]
    return max_size


class Protocol:
    """Sans-I/O implementation of a WebSocket connection.

    Args:
        side: :attr:`~Side.CLIENT` or :attr:`~Side.SERVER`.
        state: Initial state; :attr:`~State.OPEN` for a connection whose
            handshake happened elsewhere.
        max_size: Largest incoming message in bytes, after decompression;
            :obj:`None` for no limit.
        logger: Logger for this connection; defaults to
            ``logging.getLogger("ferrows.client")`` or ``"ferrows.server"``.
        extensions: Extensions already negotiated, when ``state`` is OPEN.
    """

    def __init__(
        self,
        side: Side,
        *,
        state: State = OPEN,
        max_size: int | tuple[int | None, int | None] | None = 2**20,
        logger: LoggerLike | None = None,
        extensions: Sequence[Extension] | None = None,
    ) -> None:
        self._id: uuid.UUID | None = None
        if logger is None:
            logger = logging.getLogger(f"ferrows.{side.name.lower()}")
        self.logger: LoggerLike = logger
        """Logger for this connection."""
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self.side = side
        self.max_size = _message_limit(max_size)
        self.max_frame_size = max_size[1] if isinstance(max_size, tuple) else None
        self.extensions: list[Extension] = list(extensions or [])
        """Extensions in use, once the handshake is done."""
        self.subprotocol: Subprotocol | None = None
        """Subprotocol in use, once the handshake is done."""
        self.handshake_exc: Exception | None = None
        """Why the opening handshake failed, or :obj:`None`."""
        self.parser_exc: Exception | None = None
        self.events: list[Event] = []
        self.writes: list[bytes] = []
        self._state = state
        self._eof_sent = False
        self._eof_rcvd = False
        self._core: _core.Connection | None = None
        # Python extensions decode frames above the core, which then cannot
        # check sizes and UTF-8 itself: this tracks the message in progress.
        self._py_size = 0
        self._py_text: codecs.IncrementalDecoder | None = None
        self._py_fragments = 0
        self._py_extensions: list[Extension] = []
        # The asyncio and threading layers set this before the handshake so
        # that the core delivers whole messages as str/bytes, which they then
        # read from the core directly (the fast path).
        self._assemble = False
        if state is not CONNECTING:
            self._open()

    @property
    def id(self) -> uuid.UUID:
        """Unique identifier of the connection, useful in logs.

        Drawn on first use: most connections never log one, and drawing it
        cost a system call per handshake.
        """
        if self._id is None:
            self._id = uuid.uuid4()
        return self._id

    @id.setter
    def id(self, value: uuid.UUID) -> None:
        self._id = value

    # ------------------------------------------------------------ state

    def _open(self) -> None:
        """Creates the core connection once the handshake succeeded.

        permessage-deflate runs in the core. Any other extension is written
        in Python: then every extension, deflate included, runs in Python
        in negotiation order, and the core only frames.
        """
        native = [ext for ext in self.extensions if type(ext) is PerMessageDeflate]
        has_py_ext = len(native) != len(self.extensions)
        self._py_extensions = self.extensions if has_py_ext else []
        self._core = _core.Connection(
            self.side is CLIENT,
            max_size=None if has_py_ext else self.max_size,
            max_fragments=MAX_FRAGMENTS,
            max_frame=None if has_py_ext else self.max_frame_size,
            extra_rsv=0b111 if has_py_ext else 0,
            check_text=not has_py_ext,
            assemble=self._assemble and not has_py_ext,
        )
        if not has_py_ext:
            for ext in native:
                self._core.enable_deflate(*ext.core_settings())
        self._state = OPEN

    @property
    def state(self) -> State:
        """State of the WebSocket connection."""
        if self._core is None:
            return self._state
        return _STATES[self._core.state]

    @state.setter
    def state(self, state: State) -> None:
        if self.debug:
            self.logger.debug("= connection is %s", state.name)
        self._state = state

    @property
    def close_rcvd(self) -> Close | None:
        """Close frame received, or :obj:`None`."""
        if self._core is None or (c := self._core.close_rcvd) is None:
            return None
        return Close(c[0], c[1])

    @property
    def close_sent(self) -> Close | None:
        """Close frame sent, or :obj:`None`."""
        if self._core is None or (c := self._core.close_sent) is None:
            return None
        return Close(c[0], c[1])

    @property
    def close_rcvd_then_sent(self) -> bool | None:
        """Whether the close frame was received before one was sent."""
        return None if self._core is None else self._core.close_rcvd_then_sent

    @property
    def eof_sent(self) -> bool:
        """Whether EOF was queued for the transport."""
        return self._eof_sent or (self._core is not None and self._core.eof_sent)

    @property
    def close_code(self) -> int | None:
        """WebSocket close code received from the peer, once closed.

        1006 when the TCP connection closed without a close frame.
        """
        if self.state is not CLOSED:
            return None
        rcvd = self.close_rcvd
        return CloseCode.ABNORMAL_CLOSURE if rcvd is None else rcvd.code

    @property
    def close_reason(self) -> str | None:
        """WebSocket close reason received from the peer, once closed."""
        if self.state is not CLOSED:
            return None
        rcvd = self.close_rcvd
        return "" if rcvd is None else rcvd.reason

    @property
    def close_exc(self) -> Exception:
        """Exception to raise when using the connection after it closed.

        :exc:`~ferrows.exceptions.ConnectionClosedOK` when both close frames
        carried 1000, 1001 or no code; otherwise
        :exc:`~ferrows.exceptions.ConnectionClosedError`, whose ``__cause__``
        is the protocol violation, if any.
        """
        assert self.state is CLOSED, "connection isn't closed yet"
        return self._connection_closed()

    def _connection_closed(self) -> Exception:
        """The exception describing the close frames exchanged so far; the
        I/O layers also raise it while the connection is still closing."""
        rcvd, sent = self.close_rcvd, self.close_sent
        ok = rcvd is not None and sent is not None and rcvd.code in OK_CLOSE_CODES and sent.code in OK_CLOSE_CODES
        exc_type = ConnectionClosedOK if ok else ConnectionClosedError
        exc: Exception = exc_type(rcvd, sent, self.close_rcvd_then_sent)
        exc.__cause__ = self.parser_exc
        return exc

    # ------------------------------------------------------------ input

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feeds bytes received from the network.

        Afterwards, call :meth:`events_received` and :meth:`data_to_send`.
        A protocol violation by the peer does not raise: the connection fails
        with the right close code and :attr:`close_exc` reports it later.

        Raises:
            EOFError: If :meth:`receive_eof` was called already.
        """
        if self._eof_rcvd:
            raise EOFError("stream ended")
        if self._core is None:
            self._receive_handshake(bytes(data))
        else:
            self._dispatch(self._core.receive_data(data))

    def receive_eof(self) -> None:
        """Records that the peer closed its side of the TCP connection.

        Idempotent. Afterwards, call :meth:`events_received` and
        :meth:`data_to_send`.
        """
        if self._eof_rcvd:
            return
        self._eof_rcvd = True
        if self._core is None:
            self._receive_handshake_eof()
        else:
            self._dispatch(self._core.receive_eof())

    def _receive_handshake(self, data: bytes) -> None:
        """Parses the opening handshake; bytes after a failed one are ignored."""

    def _receive_handshake_eof(self) -> None:
        if not self._eof_sent and self.side is CLIENT:
            self._send_eof()
        self._state = CLOSED

    def _dispatch(self, items: list[Any]) -> None:
        assert self._core is not None
        if self._assemble and not self._py_extensions:
            # Raw core events for the I/O layer's fast path.
            for item in items:
                if type(item) is tuple and item[0] == _FAILED:
                    self.parser_exc = self._core.parser_exc
            self.events.extend(items)
            self.writes.extend(self._core.data_to_send())
            return
        events = self.events
        has_ext = bool(self._py_extensions)
        for item in items:
            opcode, data, fin, rsv = item
            if opcode == _FAILED:
                self.parser_exc = self._core.parser_exc
                continue
            frame = Frame(_OPCODES[opcode], data, fin, bool(rsv & 4), bool(rsv & 2), bool(rsv & 1))
            if has_ext and opcode < 8:
                decoded = self._decode_with_extensions(frame)
                if decoded is None:
                    break
                frame = decoded
            events.append(frame)
        assert self._core is not None
        self.writes.extend(self._core.data_to_send())

    def _decode_with_extensions(self, frame: Frame) -> Frame | None:
        """Applies Python extensions, then the checks the core skipped."""
        assert self._core is not None
        if frame.opcode is not Opcode.CONT:
            self._py_size = 0
            self._py_fragments = 0
            self._py_text = codecs.getincrementaldecoder("utf-8")() if frame.opcode is Opcode.TEXT else None
        remaining = None if self.max_size is None else self.max_size - self._py_size
        try:
            for extension in reversed(self._py_extensions):
                frame = extension.decode(frame, max_size=remaining)
            if frame.rsv1 or frame.rsv2 or frame.rsv3:
                raise ProtocolError("reserved bits must be 0")
            self._py_size += len(frame.data)
            self._py_fragments += 1
            if self.max_size is not None and self._py_size > self.max_size:
                raise PayloadTooBig(self._py_size, self.max_size)
            if self._py_text is not None:
                self._py_text.decode(frame.data, frame.fin)
        except PayloadTooBig as exc:
            self._fail_from_python(exc, CloseCode.MESSAGE_TOO_BIG, str(exc))
        except UnicodeDecodeError as exc:
            self._fail_from_python(exc, CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
        except ProtocolError as exc:
            self._fail_from_python(exc, CloseCode.PROTOCOL_ERROR, str(exc))
        except Exception as exc:
            self.logger.error("unexpected exception in extension", exc_info=True)
            self._fail_from_python(exc, CloseCode.INTERNAL_ERROR, "")
        else:
            return frame
        return None

    def _fail_from_python(self, exc: Exception, code: int, reason: str) -> None:
        self.parser_exc = exc
        self.fail(code, reason)

    def events_received(self) -> list[Event]:
        """Returns and forgets the events received since the last call."""
        events, self.events = self.events, []
        return events

    def data_to_send(self) -> list[bytes]:
        """Returns and forgets the data to write since the last call.

        An empty bytes item, :data:`SEND_EOF`, means: half-close the
        transport (``write_eof()`` or ``shutdown(SHUT_WR)``).
        """
        writes, self.writes = self.writes, []
        return writes

    def close_expected(self) -> bool:
        """Whether the TCP connection is expected to close soon.

        True after sending a close frame, or a failed handshake. The I/O
        layer then arms a timer and aborts the connection when it expires.
        """
        if self._core is None:
            return self._state is CONNECTING and self._eof_sent
        return self._core.close_expected()

    # ----------------------------------------------------------- output

    def _require_core(self) -> _core.Connection:
        if self._core is None:
            raise InvalidState(f"connection is {self.state.name.lower()}")
        return self._core

    def _encode(self, opcode: Opcode, data: bytes | str, fin: bool) -> bytes | None:
        """Sends a data frame through Python extensions, if any."""
        if not self._py_extensions:
            return None
        core = self._require_core()
        if isinstance(data, str):
            data = data.encode()
        frame = Frame(opcode, bytes(data), fin)
        for extension in self._py_extensions:
            frame = extension.encode(frame)
        rsv = frame.rsv1 << 2 | frame.rsv2 << 1 | frame.rsv3
        return core.send_frame(int(frame.opcode), frame.data, frame.fin, rsv)

    def send_continuation(self, data: bytes | str, fin: bool) -> None:
        """Sends a continuation frame.

        Raises:
            ProtocolError: If no fragmented message is being sent.
            InvalidState: If the connection is not open.
        """
        out = self._encode(Opcode.CONT, data, fin)
        self.writes.append(self._require_core().send_continuation(data, fin) if out is None else out)

    def send_text(self, data: bytes | str, fin: bool = True) -> None:
        """Sends a text frame; ``data`` is UTF-8 bytes (or a str).

        Raises:
            ProtocolError: If a fragmented message is being sent.
            InvalidState: If the connection is not open.
        """
        out = self._encode(Opcode.TEXT, data, fin)
        self.writes.append(self._require_core().send_text(data, fin) if out is None else out)

    def send_binary(self, data: bytes | str, fin: bool = True) -> None:
        """Sends a binary frame.

        Raises:
            ProtocolError: If a fragmented message is being sent.
            InvalidState: If the connection is not open.
        """
        out = self._encode(Opcode.BINARY, data, fin)
        self.writes.append(self._require_core().send_binary(data, fin) if out is None else out)

    def send_close(self, code: int | None = None, reason: str = "") -> None:
        """Sends a close frame, starting the closing handshake.

        Args:
            code: Close code; :obj:`None` sends a close frame without one.
            reason: Close reason; requires a code.

        Raises:
            ProtocolError: If the code is invalid, or a reason has no code.
            InvalidState: If the connection is not open.
        """
        self.writes.append(self._require_core().send_close(code, reason))

    def send_ping(self, data: bytes | str) -> None:
        """Sends a ping (allowed while closing, too).

        Raises:
            ProtocolError: If ``data`` is longer than 125 bytes.
            InvalidState: If the connection is neither open nor closing.
        """
        self.writes.append(self._require_core().send_ping(data))

    def send_pong(self, data: bytes | str) -> None:
        """Sends a pong (allowed while closing, too).

        Raises:
            ProtocolError: If ``data`` is longer than 125 bytes.
            InvalidState: If the connection is neither open nor closing.
        """
        self.writes.append(self._require_core().send_pong(data))

    def fail(self, code: int, reason: str = "") -> None:
        """Fails the connection (RFC 6455 section 7.1.7).

        Sends a close frame with ``code`` unless it is 1006 (the network is
        gone) or one was already sent; a server also closes TCP. Incoming
        data is ignored from then on.
        """
        if self._core is None:
            if not self._eof_sent:
                self._send_eof()
            return
        self._core.fail(code, reason)
        self.writes.extend(self._core.data_to_send())

    def _send_eof(self) -> None:
        assert not self._eof_sent
        self._eof_sent = True
        self.writes.append(SEND_EOF)
