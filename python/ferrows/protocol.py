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
from collections.abc import Callable, Sequence
from typing import Any

from . import _core
from ._logging import CLIENT_LOGGER, SERVER_LOGGER, get_logger
from .events import CloseReceived, Fragment, PingReceived, PongReceived, ProtocolViolation
from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    PayloadTooBig,
    ProtocolError,
)
from .extensions.base import Extension
from .extensions.permessage_deflate import PerMessageDeflate
from .frames import OK_CLOSE_CODES, Close, CloseCode, Frame, Opcode
from .http11 import Request, Response
from .typing import BytesLike, LoggerLike, Subprotocol

__all__ = ["SEND_EOF", "Protocol", "Side", "State"]


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

Event = (
    Request
    | Response
    | Frame
    | str
    | bytes
    | Fragment
    | PingReceived
    | PongReceived
    | CloseReceived
    | ProtocolViolation
)
"""Events that :meth:`~Protocol.events_received` returns: the handshake's
request or response, then frames, or in ``assemble`` mode messages and the
events of :mod:`ferrows.events`."""

SEND_EOF = b""
"""Item of :meth:`~Protocol.data_to_send` meaning: half-close the transport."""

_STATES = (CONNECTING, OPEN, CLOSING, CLOSED)
_OPCODES = {op.value: op for op in Opcode}

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

    By default it behaves as websockets' ``Protocol``:
    :meth:`events_received` returns one :class:`~ferrows.frames.Frame` per
    frame, and a protocol violation fails the connection at once (the close
    frame is in :meth:`data_to_send` right away).

    With ``assemble=True`` (the mode ferrows' asyncio and threading
    connections use) it delivers what an I/O layer needs and nothing more:

    * whole messages as :class:`str` (text) and :class:`bytes` (binary),
      reassembled and decoded by the extensions, checked for size and UTF-8;
      with ``fragments=True``, the frames of a fragmented message come as
      they arrive instead, one :class:`~ferrows.events.Fragment` each (see
      :attr:`fragments`);
    * :class:`~ferrows.events.PingReceived`,
      :class:`~ferrows.events.PongReceived` and
      :class:`~ferrows.events.CloseReceived` for control frames; the answers
      (pong, close reply) are already in :meth:`data_to_send`;
    * :class:`~ferrows.events.ProtocolViolation` when the peer broke the
      protocol. Parsing stops there, but the connection is not failed yet:
      every message received before the violation comes first, and the
      application may still answer them. Call :meth:`fail_pending` once it
      has handled them (or after a timeout): the close frame then follows
      those answers on the wire, so no accepted message is lost to a
      violation that came after it.

    Only output of the I/O layers crosses into the core in that mode: with
    no extension written in Python, :meth:`receive_events` and
    :meth:`send_data` are the core's own methods.

    A client masks its frames with keys the core draws from the operating
    system, unless :func:`secrets.token_bytes` was replaced (websockets
    draws its keys with it, and tests patch it for deterministic frames):
    each send, and each read for the replies it queues, then takes its key
    from the replacement. Checking costs one attribute lookup per call.

    Args:
        side: :attr:`~Side.CLIENT` or :attr:`~Side.SERVER`.
        state: Initial state; :attr:`~State.OPEN` for a connection whose
            handshake happened elsewhere.
        max_size: Largest incoming message in bytes, after decompression;
            :obj:`None` for no limit. ``(message, frame)`` also bounds each
            frame.
        logger: Logger for this connection, or its name; defaults to
            ``logging.getLogger("websockets.client")`` or
            ``"websockets.server"``.
        extensions: Extensions already negotiated, when ``state`` is OPEN.
        assemble: Deliver messages and typed control events, as above.
        fragments: In ``assemble`` mode, deliver each frame of a fragmented
            message as it arrives (see :attr:`fragments`).
    """

    # Slots keep an idle connection small (issue 12: memory per connection);
    # __dict__ stays, created only on first use, so that subclasses, tests and
    # applications may still set attributes of their own on an instance.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_assemble",
        "_core",
        "_eof_rcvd",
        "_eof_sent",
        "_events",
        "_extensions",
        "_fragments",
        "_id",
        "_logged_state",
        "_parser_exc",
        "_pongs_held",
        "_py_answer_pings",
        "_py_discard",
        "_py_extensions",
        "_py_failure",
        "_py_fragment_text",
        "_py_fragments",
        "_py_frame_count",
        "_py_held_ping",
        "_py_message_text",
        "_py_size",
        "_py_text",
        "_state",
        "_writes",
        "debug",
        "handshake_exc",
        "logger",
        "max_frame_size",
        "max_size",
        "receive_events",
        "send_data",
        "side",
        "subprotocol",
    )

    def __init__(
        self,
        side: Side,
        *,
        state: State = OPEN,
        max_size: int | tuple[int | None, int | None] | None = 2**20,
        logger: LoggerLike | str | None = None,
        extensions: Sequence[Extension] | None = None,
        assemble: bool = False,
        fragments: bool = False,
    ) -> None:
        self._id: uuid.UUID | None = None
        logger = get_logger(logger, CLIENT_LOGGER if side is Side.CLIENT else SERVER_LOGGER)
        self.logger: LoggerLike = logger
        """Logger for this connection."""
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self.side = side
        self.max_size = _message_limit(max_size)
        self.max_frame_size = max_size[1] if isinstance(max_size, tuple) else None
        self._extensions: list[Extension] = list(extensions or [])
        self.subprotocol: Subprotocol | None = None
        """Subprotocol in use, once the handshake is done."""
        self.handshake_exc: Exception | None = None
        """Why the opening handshake failed, or :obj:`None`."""
        self._parser_exc: Exception | None = None
        # Created when something is added: an idle connection would keep
        # two empty lists for nothing (see the properties below).
        self._events: list[Event] | None = None
        self._writes: list[bytes] | None = None
        self._state = state
        self._logged_state = state
        if self.debug:
            # The initial state too, as websockets logs it.
            self.logger.debug("= connection is %s", state.name)
        self._pongs_held = False
        self._eof_sent = False
        self._eof_rcvd = False
        self._core: _core.Connection | None = None
        self._assemble = assemble
        self._fragments = fragments
        # Python extensions decode frames above the core, which then cannot
        # check sizes and UTF-8 itself: this tracks the message in progress.
        # Empty tuples rather than lists until needed: an idle connection
        # would keep two empty lists (150 bytes) for nothing.
        self._py_extensions: Sequence[Extension] = ()
        self._py_size = 0
        self._py_text: codecs.IncrementalDecoder | None = None
        self._py_fragments: list[bytes] | tuple[()] = ()
        self._py_message_text = False
        # With fragments: the frame count and the text decoder of the
        # message in progress (the core does this on the fast path).
        self._py_frame_count = 0
        self._py_fragment_text: codecs.IncrementalDecoder | None = None
        # A violation found in Python (by an extension) waiting for
        # fail_pending(), as the core keeps its own; and whether input is
        # now ignored.
        self._py_failure: tuple[int, str] | None = None
        self._py_discard = False
        # With Python extensions, pings are answered here, once decoded, not
        # by the core: a violation only Python sees must stop the answers to
        # the frames after it, which the core parsed already. Pongs held back
        # (hold_pongs) keep the latest ping's payload.
        self._py_held_ping: bytes | None = None
        self._py_answer_pings = False
        self.receive_events: Callable[[bytes | bytearray | memoryview], list[Any]] = self._receive_events
        """Feeds bytes received from the network and returns the events
        they complete: :meth:`receive_data` and :meth:`events_received` in
        one call. In ``assemble`` mode without Python extensions this is the
        core's own method, so that a read crosses into Rust once and runs no
        Python code in between."""
        self.send_data: Callable[..., bytes] = self._send_data
        """``send_data(opcode, data, fin=True)`` frames a data frame (text,
        binary, continuation), a ping or a pong, and returns the bytes to
        write, after whatever the core had queued before. It raises
        :exc:`~ferrows.exceptions.InvalidState` unless the connection is
        open (closing, for pings and pongs) and
        :exc:`~ferrows.exceptions.ProtocolError` for a frame out of
        sequence. Without Python extensions this is the core's own method."""
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
        self._py_extensions = self.extensions if has_py_ext else ()
        self._core = _core.Connection(
            self.side is CLIENT,
            max_size=None if has_py_ext else self.max_size,
            max_fragments=MAX_FRAGMENTS,
            max_frame=None if has_py_ext else self.max_frame_size,
            extra_rsv=0b111 if has_py_ext else 0,
            check_text=not has_py_ext,
        )
        if not has_py_ext:
            for ext in native:
                self._core.enable_deflate(*ext.core_settings())
        self._state = OPEN
        self._configure()
        if self.debug:
            self._log_state()

    def _configure(self) -> None:
        """Sets the core's mode from :attr:`assemble` and picks the entry
        points: the core's own methods when no Python code has to run
        between the network and the core."""
        core = self._core
        if core is None:
            return
        # A subclass that extends recv_frame() gets every frame.
        fast = self._assemble and not self._py_extensions and type(self).recv_frame is Protocol.recv_frame
        core.assemble = fast
        core.fragments = self._fragments
        core.defer_failure = self._assemble
        if fast:
            self.receive_events = core.receive_data
        else:
            self.receive_events = self._receive_events
        if self._py_extensions:
            self.send_data = self._send_data
            # The core holds every pong for good; see _answer_ping().
            core.hold_pongs(True)
        else:
            self.send_data = core.send_data_frame
        if self.debug:
            self._debug_entry_points(fast)

    @property
    def extensions(self) -> list[Extension]:
        """Extensions in use, once the handshake is done.

        Assigning them to a protocol that is already open, as websockets'
        tests do, sets the core up for them again: do it before any frame
        is sent or received.
        """
        return self._extensions

    @extensions.setter
    def extensions(self, value: list[Extension]) -> None:
        self._extensions = value
        if self._core is not None:
            self._open()

    @property
    def assemble(self) -> bool:
        """Whether :meth:`events_received` returns whole messages and typed
        control events (see the class docstring) rather than frames.

        Set it before feeding data; a connection built over a protocol that
        is already open sets it first thing.
        """
        return self._assemble

    @assemble.setter
    def assemble(self, value: bool) -> None:
        self._assemble = value
        self._configure()

    @property
    def fragments(self) -> bool:
        """Whether, in ``assemble`` mode, the frames of a fragmented message
        are reported as they arrive, one :class:`~ferrows.events.Fragment`
        each, rather than as one message once the last frame is in.

        A message sent in one frame is a :class:`str` or :class:`bytes`
        either way. The text of a fragment is decoded as far as it goes: a
        character split across frames is in the fragment that completes it.
        ``max_size`` and the UTF-8 check apply to the whole message, so a
        violation can come after some fragments of the message. The I/O
        layers set it, so that ``recv_streaming()`` hands each fragment to
        the application as soon as it is received. Set it before feeding
        data, like :attr:`assemble`.
        """
        return self._fragments

    @fragments.setter
    def fragments(self, value: bool) -> None:
        self._fragments = value
        self._configure()

    @property
    def state(self) -> State:
        """State of the WebSocket connection."""
        if self._core is None:
            return self._state
        return _STATES[self._core.state]

    @property
    def parser_exc(self) -> Exception | None:
        """The peer's protocol violation, or :obj:`None`.

        The ``__cause__`` of :attr:`close_exc` when the peer failed the
        connection.
        """
        if self._parser_exc is None and self._core is not None:
            self._parser_exc = self._core.parser_exc
        return self._parser_exc

    @parser_exc.setter
    def parser_exc(self, exc: Exception | None) -> None:
        self._parser_exc = exc

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
    def close_exc(self) -> ConnectionClosed:
        """Exception to raise when using the connection after it closed.

        :exc:`~ferrows.exceptions.ConnectionClosedOK` when both close frames
        carried 1000, 1001 or no code; otherwise
        :exc:`~ferrows.exceptions.ConnectionClosedError`, whose ``__cause__``
        is the protocol violation, if any.

        websockets requires the CLOSED state; ferrows also answers while
        the connection is closing, with the close frames exchanged so far,
        which its I/O layers raise for a send after the closing handshake
        started. A new exception for each read: one kept on the connection
        would keep, through its traceback, the frames that raised it and
        with them the connection, for the cyclic garbage collector to free.
        """
        exc_type = ConnectionClosedOK if self._closed_ok() else ConnectionClosedError
        exc = exc_type(self.close_rcvd, self.close_sent, self.close_rcvd_then_sent)
        exc.__cause__ = self.parser_exc
        return exc

    def _closed_ok(self) -> bool:
        """Whether :attr:`close_exc` would be a :exc:`ConnectionClosedOK`,
        without building it: the usual end of an ``async for`` asks."""
        core = self._core
        if core is None:
            return False
        rcvd, sent = core.close_rcvd, core.close_sent
        return rcvd is not None and sent is not None and rcvd[0] in OK_CLOSE_CODES and sent[0] in OK_CLOSE_CODES

    # ------------------------------------------------------------ input

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feeds bytes received from the network.

        Afterwards, call :meth:`events_received` and :meth:`data_to_send`.
        A protocol violation by the peer does not raise: the connection fails
        with the right close code (see ``assemble`` for when) and
        :attr:`close_exc` reports it later.

        Raises:
            EOFError: If :meth:`receive_eof` was called already.
        """
        if self._eof_rcvd:
            raise EOFError("stream ended")
        core = self._core
        if core is None:
            self._receive_handshake(bytes(data))
        elif self.debug:
            sent, count = core.close_sent, len(self.events)
            self._py_answer_pings = core.state == OPEN
            self._dispatch(core.receive_data(data))
            self._log_received(self.events[count:])
            self._log_close_sent(sent)
        else:
            self._py_answer_pings = core.state == OPEN
            self._dispatch(core.receive_data(data))

    def _receive_events(self, data: bytes | bytearray | memoryview) -> list[Any]:
        self.receive_data(data)
        return self.events_received()

    def receive_eof(self) -> None:
        """Records that the peer closed its side of the TCP connection.

        Idempotent. Afterwards, call :meth:`events_received` and
        :meth:`data_to_send`.
        """
        if self._eof_rcvd:
            return
        self._eof_rcvd = True
        if self.debug:
            self.logger.debug("< EOF")
        count = len(self.events)
        if self._core is None:
            self._receive_handshake_eof()
        else:
            self._py_answer_pings = False
            self._dispatch(self._core.receive_eof())
        if self.debug:
            self._log_received(self.events[count:])
            self._log_state()
        if self.side is SERVER:
            # The TCP connection is over, as websockets logs it, rejected
            # handshakes included.
            self.logger.info("connection closed")

    def _receive_handshake(self, data: bytes) -> None:
        """Parses the opening handshake; bytes after a failed one are ignored."""

    def _receive_handshake_eof(self) -> None:
        if not self._eof_sent and self.side is CLIENT:
            self._send_eof()
        self._state = CLOSED

    def _dispatch(self, items: list[Any]) -> None:
        """Turns the core's events into this protocol's: as they are in
        ``assemble`` mode without Python extensions, frames otherwise."""
        core = self._core
        assert core is not None
        if core.assemble:
            self.events.extend(items)  # the core's output waits in the core
            return
        # The core's answers first: close replies, pongs without Python
        # extensions. With them, the pongs of this batch come from the loop,
        # before the close reply that followed their pings.
        answers = core.data_to_send()
        for item in items:
            if self._py_discard:
                break
            if type(item) is tuple:
                # A data frame, or a control frame with RSV bits for the
                # Python extensions to decode.
                opcode, data, fin, rsv = item
                frame = Frame(_OPCODES[opcode], data, fin, bool(rsv & 4), bool(rsv & 2), bool(rsv & 1))
                if opcode == Opcode.CLOSE:
                    self._py_answer_pings = False
            elif type(item) is ProtocolViolation:
                if self._assemble:
                    self.events.append(item)
                continue
            else:
                if type(item) is CloseReceived:
                    self._py_answer_pings = False
                frame = Frame(_CONTROL[type(item)], item.data)
            try:
                self._receive_frame(frame)
            except Exception as exc:
                # A bug in a recv_frame() of a subclass, say: the connection
                # fails with 1011, and parser_exc says why, as websockets
                # handles an error while parsing.
                self._fail_for(exc, "parser failed")
        self.writes.extend(answers)

    def _receive_frame(self, frame: Frame) -> None:
        """Frame mode, or Python extensions: decodes and checks a frame,
        then reports it as a frame or, assembling, as part of a message."""
        if self._py_extensions:
            decoded = self._decode_with_extensions(frame)
            if decoded is None:
                return
            frame = decoded
            if frame.opcode is Opcode.PING and self._py_answer_pings:
                self._answer_ping(bytes(frame.data))
        self.recv_frame(frame)

    def recv_frame(self, frame: Frame) -> None:
        """Reports a frame received, once extensions decoded it and the core
        checked it and answered it (pong, close reply): as a frame, or when
        assembling, as part of a message or as a control event.

        websockets' method of that name; a subclass may extend it (to record
        frames, say), at the cost of the fast path: frames then cross into
        Python one by one.
        """
        if not self._assemble:
            self.events.append(frame)
            return
        opcode = frame.opcode
        if self._fragments and (opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT):
            self._fragment_received(frame)
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
            if opcode is not Opcode.CONT:
                self._py_message_text = opcode is Opcode.TEXT
            fragments = self._py_fragments
            if opcode is not Opcode.CONT or not isinstance(fragments, list):
                fragments = self._py_fragments = []
            fragments.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(fragments)
                self._py_fragments = ()
                # The core, or the incremental decoder with Python
                # extensions, validated the text already.
                self.events.append(data.decode() if self._py_message_text else data)
        else:
            self.events.append(_CONTROL_EVENTS[opcode](bytes(frame.data)))

    def _fragment_received(self, frame: Frame) -> None:
        """A data frame in ``fragments`` mode, off the fast path: a message
        in one frame whole, any frame of a longer one as a fragment, its
        text decoded as far as it goes, as the core does."""
        if frame.opcode is not Opcode.CONT:
            self._py_frame_count = 0
            text = frame.opcode is Opcode.TEXT
            self._py_fragment_text = codecs.getincrementaldecoder("utf-8")() if text else None
        self._py_frame_count += 1
        decoder = self._py_fragment_text
        data = bytes(frame.data)
        if frame.fin and self._py_frame_count == 1:
            # The core, or the incremental decoder with Python extensions,
            # validated the text already.
            self.events.append(data.decode() if decoder is not None else data)
            return
        self.events.append(Fragment(decoder.decode(data, frame.fin) if decoder is not None else data, frame.fin))

    def _answer_ping(self, payload: bytes) -> None:
        """Section 5.5.2: a pong with the ping's data (Python extensions)."""
        if self._pongs_held:
            self._py_held_ping = payload
        else:
            self.writes.append(self._send_data(Opcode.PONG.value, payload, True))

    def _decode_with_extensions(self, frame: Frame) -> Frame | None:
        """Applies Python extensions, then the checks the core skipped."""
        data_frame = frame.opcode.value < 8
        if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
            self._py_size = 0
            self._py_text = codecs.getincrementaldecoder("utf-8")() if frame.opcode is Opcode.TEXT else None
        remaining = None if self.max_size is None or not data_frame else self.max_size - self._py_size
        # websockets' current_size: the message's bytes before this frame.
        current = self._py_size if frame.opcode is Opcode.CONT else None
        try:
            for extension in reversed(self._py_extensions):
                frame = extension.decode(frame, max_size=remaining)
            if frame.rsv1 or frame.rsv2 or frame.rsv3:
                raise ProtocolError("reserved bits must be 0")
            if data_frame:
                self._py_size += len(frame.data)
                if remaining is not None and len(frame.data) > remaining:
                    raise PayloadTooBig(len(frame.data), remaining)
                if self._py_text is not None:
                    self._py_text.decode(frame.data, frame.fin)
        except PayloadTooBig as exc:
            # The frame's limit becomes the message's, as websockets
            # reports it: "frame with 2 bytes after reading 2 bytes...".
            if exc.current_size is None:
                exc.set_current_size(current)
            self._fail_for(exc, "unexpected exception in extension")
        except Exception as exc:
            self._fail_for(exc, "unexpected exception in extension")
        else:
            return frame
        return None

    def _fail_for(self, exc: Exception, log: str) -> None:
        """Fails the connection for an exception raised while handling
        received frames in Python, with the close code and reason websockets
        sends for it: 1009, 1007 or 1002 with the exception's text, 1011
        without details for anything else (logged: it is a bug)."""
        if isinstance(exc, PayloadTooBig):
            self._fail_from_python(exc, CloseCode.MESSAGE_TOO_BIG, str(exc))
        elif isinstance(exc, UnicodeDecodeError):
            self._fail_from_python(exc, CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
        elif isinstance(exc, ProtocolError):
            self._fail_from_python(exc, CloseCode.PROTOCOL_ERROR, str(exc))
        else:
            self.logger.error(log, exc_info=True)
            self._fail_from_python(exc, CloseCode.INTERNAL_ERROR, "")

    def _fail_from_python(self, exc: Exception, code: int, reason: str) -> None:
        """A violation an extension found: handled as the core handles its
        own, deferred when assembling."""
        self._parser_exc = exc
        self._py_discard = True
        self._py_fragments = ()
        if self._assemble:
            self._py_failure = (code, reason)
            self.events.append(ProtocolViolation(code))
        else:
            self.fail(code, reason)

    def fail_pending(self) -> bool:
        """Fails the connection for the violation reported by a
        :class:`~ferrows.events.ProtocolViolation` event (``assemble``
        mode); returns whether it did.

        Sends the close frame with the violation's code (1002, 1007,
        1009...) after whatever was sent since, and, for a server, closes
        TCP: the output is in :meth:`data_to_send`. Does nothing if there is
        no such violation, it was applied already, or the connection is no
        longer open.
        """
        if self._py_failure is not None:
            (code, reason), self._py_failure = self._py_failure, None
            if self.state is not OPEN:
                return False
            self.fail(code, reason)
            return True
        core = self._core
        if core is None:
            return False
        sent = self.debug and core.close_sent
        if not core.fail_pending():
            return False
        self.writes.extend(core.data_to_send())
        if self.debug:
            self._log_close_sent(sent)
        return True

    @property
    def events(self) -> list[Event]:
        """Events received and not returned by :meth:`events_received` yet."""
        events = self._events
        if events is None:
            events = self._events = []
        return events

    @events.setter
    def events(self, events: list[Event]) -> None:
        self._events = events

    @property
    def writes(self) -> list[bytes]:
        """Data to write not returned by :meth:`data_to_send` yet."""
        writes = self._writes
        if writes is None:
            writes = self._writes = []
        return writes

    @writes.setter
    def writes(self, writes: list[bytes]) -> None:
        self._writes = writes

    def events_received(self) -> list[Event]:
        """Returns and forgets the events received since the last call."""
        events, self._events = self._events, None
        return [] if events is None else events

    def data_to_send(self) -> list[bytes]:
        """Returns and forgets the data to write since the last call.

        An empty bytes item, :data:`SEND_EOF`, means: half-close the
        transport (``write_eof()`` or ``shutdown(SHUT_WR)``).
        """
        writes, self._writes = self._writes, None
        if writes is None:
            writes = []
        core = self._core
        if core is not None:
            writes.extend(core.data_to_send())
        if self.debug:
            if SEND_EOF in writes:
                self.logger.debug("> EOF")
            self._log_state()
        return writes

    def close_expected(self) -> bool:
        """Whether the TCP connection is expected to close soon.

        True after sending a close frame, or a failed handshake. The I/O
        layer then arms a timer and aborts the connection when it expires.
        """
        if self._core is None:
            return self._state is CONNECTING and self._eof_sent
        return self._core.close_expected()

    # ------------------------------------------------ connection upkeep

    def hold_pongs(self, hold: bool) -> bool:
        """Holds back the automatic pongs while ``hold`` is true; releasing
        queues one pong, for the latest ping (RFC 6455 section 5.5.3).

        The I/O layers hold pongs while their write buffer is above its
        high-water mark, so that a peer flooding pings without reading
        cannot grow it without bound. Returns whether output now waits in
        :meth:`data_to_send`.
        """
        core = self._core
        if core is None:
            return False
        self._pongs_held = hold
        if not self._py_extensions:
            return core.hold_pongs(hold)
        if not hold and self._py_held_ping is not None:
            payload, self._py_held_ping = self._py_held_ping, None
            if self.state is OPEN:
                self._answer_ping(payload)
        return bool(self.writes)

    def compact_if_idle(self) -> bool:
        """Frees the compression state if no message went through it since
        the previous call; returns whether it did.

        The "since the previous call" makes one caller per connection the
        rule: two callers would reset each other's idle mark. The servers'
        sweep calls it for server connections, the keepalive of clients.
        """
        core = self._core
        return core is not None and bool(self.extensions) and core.compact_if_idle()

    # ----------------------------------------------------------- output

    def _require_core(self) -> _core.Connection:
        if self._core is None:
            raise InvalidState(f"connection is {self.state.name.lower()}")
        return self._core

    def _send_data(self, opcode: int, data: Any, fin: bool = True) -> bytes:
        """:attr:`send_data` before the handshake, and with Python
        extensions: every frame goes through them, control frames too."""
        core = self._require_core()
        if not self._py_extensions:
            return core.send_data_frame(opcode, data, fin)
        if isinstance(data, str):
            data = data.encode()
        frame = Frame(_OPCODES[opcode], bytes(data), fin)
        for extension in self._py_extensions:
            frame = extension.encode(frame)
        # Pings and pongs too keep the RSV bits the extensions set.
        rsv = frame.rsv1 << 2 | frame.rsv2 << 1 | frame.rsv3
        return core.send_frame(int(frame.opcode), frame.data, frame.fin, rsv)

    def send_header(self, opcode: int, length: int, fin: bool) -> bytes | None:
        """Starts a data frame whose payload the caller writes itself,
        unchanged, right after the returned header: a server sending a
        large ``bytes`` message then copies nothing.

        Returns :obj:`None` when the payload must go through
        :attr:`send_data` instead (clients mask it, extensions transform
        it, or earlier output must go first); nothing was sent then.
        """
        if self._py_extensions:
            return None
        header = self._require_core().send_header(opcode, length, fin)
        if self.debug and header is not None:
            self.logger.debug("> %s [%d bytes%s]", _OPCODES[opcode].name, length, "" if fin else ", continued")
        return header

    def send_frame(self, frame: Frame) -> None:
        """Sends a frame, as websockets' method of that name: through the
        extensions, queued for :meth:`data_to_send`.

        Raises:
            ProtocolError: For a frame out of sequence or a bad close frame.
            InvalidState: If the connection is not open.
        """
        if frame.opcode.value >= 8 and not frame.fin:
            raise ProtocolError("fragmented control frame")  # RFC 6455 section 5.5
        if frame.opcode is Opcode.CLOSE:
            close = Close.parse(frame.data) if frame.data else None
            if close is None:
                self.send_close()
            else:
                self.send_close(close.code, close.reason)
            return
        self.writes.append(self.send_data(frame.opcode.value, frame.data, frame.fin))

    def send_continuation(self, data: BytesLike | str, fin: bool) -> None:
        """Sends a continuation frame.

        Raises:
            ProtocolError: If no fragmented message is being sent.
            InvalidState: If the connection is not open.
        """
        self.writes.append(self.send_data(Opcode.CONT.value, data, fin))

    def send_text(self, data: BytesLike | str, fin: bool = True) -> None:
        """Sends a text frame; ``data`` is UTF-8 bytes (or a str).

        Raises:
            ProtocolError: If a fragmented message is being sent.
            InvalidState: If the connection is not open.
        """
        self.writes.append(self.send_data(Opcode.TEXT.value, data, fin))

    def send_binary(self, data: BytesLike | str, fin: bool = True) -> None:
        """Sends a binary frame.

        Raises:
            ProtocolError: If a fragmented message is being sent.
            InvalidState: If the connection is not open.
        """
        self.writes.append(self.send_data(Opcode.BINARY.value, data, fin))

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
        if self.debug:
            self.logger.debug("> %s", _close_frame(code, reason))
            self._log_state()

    def send_ping(self, data: BytesLike | str) -> None:
        """Sends a ping (allowed while closing, too).

        Raises:
            ProtocolError: If ``data`` is longer than 125 bytes.
            InvalidState: If the connection is neither open nor closing.
        """
        self.writes.append(self.send_data(Opcode.PING.value, data, True))

    def send_pong(self, data: BytesLike | str) -> None:
        """Sends a pong (allowed while closing, too).

        Raises:
            ProtocolError: If ``data`` is longer than 125 bytes.
            InvalidState: If the connection is neither open nor closing.
        """
        self.writes.append(self.send_data(Opcode.PONG.value, data, True))

    def send_eof(self) -> None:
        """Queues a half-close of the transport (:data:`SEND_EOF`), once.

        Raises:
            InvalidState: If EOF was queued already.
        """
        if self.eof_sent:
            raise InvalidState("EOF already sent")
        self._send_eof()

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
        sent = self.debug and self._core.close_sent
        self._core.fail(code, reason)
        self.writes.extend(self._core.data_to_send())
        if self.debug:
            self._log_close_sent(sent)

    def _send_eof(self) -> None:
        assert not self._eof_sent
        self._eof_sent = True
        self.writes.append(SEND_EOF)

    # ---------------------------------------------------- debug logging
    # websockets logs every frame, state change and EOF at DEBUG. Nothing
    # below runs unless the logger had DEBUG enabled when the protocol was
    # created: the entry points of the I/O layers are then wrapped once, so
    # that the path of a frame gains no call when DEBUG is off.

    def _debug_entry_points(self, fast: bool) -> None:
        """Wraps :attr:`send_data`, and :attr:`receive_events` when it is
        the core's own method (:meth:`receive_data` logs the other path),
        with logging versions."""
        core, send = self._core, self.send_data
        assert core is not None

        def receive_events(data: bytes | bytearray | memoryview) -> list[Any]:
            sent = core.close_sent
            events = core.receive_data(data)
            self._log_received(events)
            self._log_close_sent(sent)
            return events

        def send_data(opcode: int, data: Any, fin: bool = True) -> bytes:
            output = send(opcode, data, fin)
            payload = data.encode() if isinstance(data, str) else bytes(data)
            self.logger.debug("> %s", Frame(_OPCODES[opcode], payload, fin))
            return output

        if fast:
            self.receive_events = receive_events
        self.send_data = send_data

    def _log_received(self, events: list[Any]) -> None:
        """Logs received frames, or messages and control frames in
        ``assemble`` mode, with the answers the core queued for them."""
        for event in events:
            kind = type(event)
            if kind is Frame:
                self.logger.debug("< %s", event)
            elif kind is str:
                self.logger.debug("< %s", Frame(Opcode.TEXT, event.encode()))
            elif kind is bytes:
                self.logger.debug("< %s", Frame(Opcode.BINARY, event))
            elif kind is Fragment:
                data = event.data
                payload = data.encode() if isinstance(data, str) else data
                self.logger.debug("< fragment %s", Frame(Opcode.CONT, payload, event.fin))
            elif kind in _CONTROL:
                self.logger.debug("< %s", Frame(_CONTROL[kind], event.data))
                if kind is PingReceived and not self._pongs_held and self.state is OPEN:
                    self.logger.debug("> %s", Frame(Opcode.PONG, event.data))
            elif kind is ProtocolViolation:
                self.logger.debug("! protocol error: %s", self.parser_exc)

    def _log_close_sent(self, before: object) -> None:
        """Logs the close frame the core sent on its own (a reply, or a
        failure), if it sent one since ``before``, its earlier
        ``close_sent``."""
        if not before:
            close = self.close_sent
            if close is not None:
                self.logger.debug("> %s", _close_frame(close.code, close.reason))
        self._log_state()

    def _log_state(self) -> None:
        state = self.state
        if state is not self._logged_state:
            self._logged_state = state
            self.logger.debug("= connection is %s", state.name)


def _close_frame(code: int | None, reason: str) -> Frame:
    """The close frame sent with ``code`` and ``reason``, for logs; 1005
    stands for no code, as in :attr:`Protocol.close_sent`."""
    if code is None or code == CloseCode.NO_STATUS_RCVD:
        return Frame(Opcode.CLOSE, b"")
    return Frame(Opcode.CLOSE, Close(code, reason).serialize())


_CONTROL: dict[type, Opcode] = {
    PingReceived: Opcode.PING,
    PongReceived: Opcode.PONG,
    CloseReceived: Opcode.CLOSE,
}
_CONTROL_EVENTS: dict[Opcode, Callable[[bytes], Any]] = {
    Opcode.PING: PingReceived,
    Opcode.PONG: PongReceived,
    Opcode.CLOSE: CloseReceived,
}
