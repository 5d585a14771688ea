"""WebSocket frames and close payloads, as Python values.

The Rust core parses and builds frames on the wire; this module only holds
the values it hands to Python (and that extensions and logs work with):
:class:`Frame`, :class:`Close`, and the :class:`Opcode` and
:class:`CloseCode` enumerations of RFC 6455 §5.2 and §7.4.
"""

from __future__ import annotations

import codecs
import dataclasses
import enum
import os
import re
import secrets
import struct
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, ClassVar, Self

from . import _core
from .exceptions import PayloadTooBig, ProtocolError
from .typing import BytesLike

if TYPE_CHECKING:
    from .extensions.base import Extension

__all__ = [
    "CLOSE_CODE_EXPLANATIONS",
    "CTRL_OPCODES",
    "DATA_OPCODES",
    "EXTERNAL_CLOSE_CODES",
    "OK_CLOSE_CODES",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Close",
    "CloseCode",
    "Frame",
    "Opcode",
]


class Opcode(enum.IntEnum):
    """Frame opcodes defined by RFC 6455 §5.2.

    An :class:`~enum.IntEnum` so that values coming from the Rust core as
    plain integers compare equal to the members.
    """

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


OP_CONT = CONT = Opcode.CONT
OP_TEXT = TEXT = Opcode.TEXT
OP_BINARY = BINARY = Opcode.BINARY
OP_CLOSE = CLOSE = Opcode.CLOSE
OP_PING = PING = Opcode.PING
OP_PONG = PONG = Opcode.PONG

# RFC 6455 §5.5: control opcodes have the high bit of the nibble set.
DATA_OPCODES = (CONT, TEXT, BINARY)
CTRL_OPCODES = (CLOSE, PING, PONG)


class CloseCode(enum.IntEnum):
    """Close codes of RFC 6455 §7.4.1 and the IANA registry.

    1005, 1006 and 1015 describe situations; they never appear in a frame.
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    # 1004 is reserved.
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


# Short texts shown in logs and exception messages. They are the same as in
# websockets so that log lines and str(exc) read identically.
CLOSE_CODE_EXPLANATIONS: dict[int, str] = {
    CloseCode.NORMAL_CLOSURE: "OK",
    CloseCode.GOING_AWAY: "going away",
    CloseCode.PROTOCOL_ERROR: "protocol error",
    CloseCode.UNSUPPORTED_DATA: "unsupported data",
    CloseCode.NO_STATUS_RCVD: "no status received [internal]",
    CloseCode.ABNORMAL_CLOSURE: "abnormal closure [internal]",
    CloseCode.INVALID_DATA: "invalid frame payload data",
    CloseCode.POLICY_VIOLATION: "policy violation",
    CloseCode.MESSAGE_TOO_BIG: "message too big",
    CloseCode.MANDATORY_EXTENSION: "mandatory extension",
    CloseCode.INTERNAL_ERROR: "internal error",
    CloseCode.SERVICE_RESTART: "service restart",
    CloseCode.TRY_AGAIN_LATER: "try again later",
    CloseCode.BAD_GATEWAY: "bad gateway",
    CloseCode.TLS_HANDSHAKE: "TLS handshake failure [internal]",
}

# Codes below 3000 that may travel in a close frame (RFC 6455 §7.4.1 and
# §7.4.2): everything defined except 1004, 1005, 1006 and 1015.
EXTERNAL_CLOSE_CODES: frozenset[int] = frozenset(
    code
    for code in CloseCode
    if code
    not in (
        CloseCode.NO_STATUS_RCVD,
        CloseCode.ABNORMAL_CLOSURE,
        CloseCode.TLS_HANDSHAKE,
    )
)

# Codes that make a closing handshake "OK" (ConnectionClosedOK). A close
# frame without a code is reported as 1005 and counts as a clean close.
OK_CLOSE_CODES: frozenset[int] = frozenset(
    {
        CloseCode.NORMAL_CLOSURE,
        CloseCode.GOING_AWAY,
        CloseCode.NO_STATUS_RCVD,
    }
)


def _explain(code: int) -> str:
    """Return the text shown in parentheses after a close code."""
    # RFC 6455 §7.4.2: 3000-3999 are registered with IANA by libraries and
    # frameworks; 4000-4999 are for private use between applications.
    if 3000 <= code < 4000:
        return "registered"
    if 4000 <= code < 5000:
        return "private use"
    return CLOSE_CODE_EXPLANATIONS.get(code, "unknown")


# Control characters (in the Latin-1 range, where repr() shows ``\xNN``)
# suggest that a payload is binary even when it decodes as UTF-8. Tab, LF and
# CR are common in text and don't count.
_BINARY_HINT = re.compile(
    "[" + "".join(re.escape(chr(i)) for i in range(256) if not chr(i).isprintable() and chr(i) not in "\t\n\r") + "]"
)

# Control frame payloads are shown as text only when they are plain ASCII.
_PRINTABLE_ASCII = re.compile(rb"[\x09-\x0d\x20-\x7e]*")


def _looks_like_text(data: bytes, *, cut_start: bool, cut_end: bool) -> bool:
    """Guess whether ``data`` is (a piece of) UTF-8 text.

    Args:
        data: Bytes to inspect.
        cut_start: Whether ``data`` may start in the middle of a character,
            as in a continuation frame or the tail of a long payload.
        cut_end: Whether ``data`` may end in the middle of a character, as
            in a non-final frame or the head of a long payload.
    """
    if cut_start:
        # A UTF-8 character has at most three continuation bytes.
        skip = 0
        while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
            skip += 1
        data = data[skip:]
    # The incremental decoder keeps an incomplete trailing character pending
    # instead of failing when it isn't told that the input is final.
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(data, final=not cut_end)
    except UnicodeDecodeError:
        return False
    return not _BINARY_HINT.search(text)


def is_utf8_fragment(data: bytes, must_start_clean: bool = False, must_end_clean: bool = False) -> bool:
    """Guess whether ``data`` is a piece of UTF-8 text, as websockets' function of that name.

    Logs use it to show a fragment of a message as text or as hex.

    Args:
        data: Bytes to inspect.
        must_start_clean: Whether ``data`` must start on a character
            boundary (the first frame of a message).
        must_end_clean: Whether ``data`` must end on a character boundary
            (the last frame of a message).
    """
    return _looks_like_text(data, cut_start=not must_start_clean, cut_end=not must_end_clean)


def _hex(data: BytesLike) -> str:
    return " ".join(f"{byte:02x}" for byte in bytes(data))


@dataclasses.dataclass
class Frame:
    """A WebSocket frame, with the fields that matter after parsing.

    Masking and the payload length belong to the wire format, which the Rust
    core handles, so they are not fields.

    Attributes:
        opcode: Frame type.
        data: Payload, unmasked.
        fin: FIN bit: whether this is the last frame of a message.
        rsv1: RSV1 bit, used by permessage-deflate (RFC 7692).
        rsv2: RSV2 bit.
        rsv3: RSV3 bit.
    """

    opcode: Opcode
    data: BytesLike
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    # Longest payload representation shown by str(), in characters. Frames
    # are logged at DEBUG level, one line each, so lines must stay short.
    MAX_LOG_SIZE: ClassVar[int] = int(os.environ.get("WEBSOCKETS_MAX_LOG_SIZE", "75"))

    def __str__(self) -> str:
        """Summarise the frame on one line, for logs.

        The output is not meant to be parsed back. Long payloads show only
        their beginning and end, and any payload, even an invalid one, can
        be shown. Binary frames are decoded when they hold UTF-8, because
        applications often send text in binary frames.
        """
        size = len(self.data)
        shown, is_text = self._payload_summary()
        expected: bool | None = {TEXT: True, BINARY: False, CLOSE: True}.get(self.opcode)
        details = []
        if is_text != expected:
            details.append("text" if is_text else "binary")
        details.append(f"{size} byte{'' if size == 1 else 's'}")
        if not self.fin:
            details.append("continued")
        return f"{self.opcode.name} {shown} [{', '.join(details)}]"

    def _payload_summary(self) -> tuple[str, bool | None]:
        """Return the payload as shown by :meth:`__str__`, and whether it is text.

        Whether it is text is :obj:`None` for an empty payload of a frame
        type that has no natural kind (continuation, ping, pong).
        """
        limit = self.MAX_LOG_SIZE
        if not self.data:
            return "''", {TEXT: True, BINARY: False, CLOSE: True}.get(self.opcode)

        shown: str
        is_text: bool
        if self.opcode == CLOSE:
            try:
                shown, is_text = str(Close.parse(self.data)), True
            except (ProtocolError, UnicodeDecodeError):
                shown, is_text = _hex(self.data), False
        elif self.opcode in CTRL_OPCODES:
            payload = bytes(self.data)
            if _PRINTABLE_ASCII.fullmatch(payload):
                shown, is_text = repr(payload.decode("ascii")), True
            else:
                shown, is_text = _hex(payload), False
        else:
            starts_message = self.opcode != CONT
            if len(self.data) > 4 * limit:
                # Decoding a whole multi-megabyte payload for one log line
                # would be wasteful: look at both ends only.
                head = bytes(self.data[: 8 * limit // 3])
                tail = bytes(self.data[-(4 * limit // 3) :])
                is_text = _looks_like_text(head, cut_start=not starts_message, cut_end=True) and _looks_like_text(
                    tail, cut_start=True, cut_end=not self.fin
                )
                sample = head + tail
            else:
                sample = bytes(self.data)
                is_text = _looks_like_text(sample, cut_start=not starts_message, cut_end=not self.fin)
            if is_text:
                # Characters cut at either end show as U+FFFD.
                shown = repr(sample.decode("utf-8", errors="replace"))
            else:
                shown = self._binary_summary(limit)

        if len(shown) > limit:
            keep = limit // 3 - 1
            shown = f"{shown[: 2 * keep]}...{shown[-keep:]}"
        return shown, is_text

    def _binary_summary(self, limit: int) -> str:
        """Hex dump of a data payload, elided in the middle if too long."""
        data = self.data
        # Each byte takes three characters ("xx "), so this many fit.
        if len(data) <= limit // 3:
            return _hex(data)
        keep = (limit // 3 - 1) // 3
        return f"{_hex(data[: 2 * keep])} ... {_hex(data[-keep:])}"

    @classmethod
    def parse(
        cls,
        read_exact: Callable[[int], Generator[None, None, bytes | bytearray]],
        *,
        mask: bool,
        max_size: int | None = None,
        extensions: Sequence[Extension] | None = None,
    ) -> Generator[None, None, Frame]:
        """Read one frame, as a generator-based coroutine (websockets' calling convention).

        ferrows' connections parse frames in the Rust core. This method
        serves code that drives websockets' Sans-I/O parsers by hand, e.g.
        with a :class:`~ferrows.streams.StreamReader`. Unmasking runs in
        the core.

        Args:
            read_exact: Generator-based coroutine that returns exactly the
                number of bytes asked for, or raises :exc:`EOFError`.
            mask: Whether the frame must be masked, i.e. whether this is the
                server side (RFC 6455 §5.1: clients mask, servers don't).
            max_size: Largest payload accepted, in bytes.
            extensions: Extensions to decode the frame with, applied in
                reverse order of negotiation.

        Raises:
            EOFError: If the stream ends within the frame.
            PayloadTooBig: If the payload is longer than ``max_size``.
            ProtocolError: If the frame breaks RFC 6455 §5.2 or §5.5.
        """
        head = yield from read_exact(2)
        head1, head2 = head[0], head[1]
        try:
            opcode = Opcode(head1 & 0x0F)
        except ValueError:
            raise ProtocolError("invalid opcode") from None
        if bool(head2 & 0x80) != mask:
            raise ProtocolError("incorrect masking")
        # §5.2: 7-bit length, or 126 then 16 bits, or 127 then 64 bits.
        length = head2 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", (yield from read_exact(2)))
        elif length == 127:
            (length,) = struct.unpack("!Q", (yield from read_exact(8)))
        if max_size is not None and length > max_size:
            raise PayloadTooBig(length, max_size)
        key = (yield from read_exact(4)) if mask else b""
        data = yield from read_exact(length)
        frame = cls(
            opcode,
            _core.apply_mask(data, bytes(key)) if mask else bytes(data),
            bool(head1 & 0x80),
            bool(head1 & 0x40),
            bool(head1 & 0x20),
            bool(head1 & 0x10),
        )
        for extension in reversed(extensions or ()):
            frame = extension.decode(frame, max_size=max_size)
        frame.check()
        return frame

    def serialize(self, *, mask: bool, extensions: Sequence[Extension] | None = None) -> bytes:
        """Build the frame's bytes on the wire (RFC 6455 §5.2).

        Args:
            mask: Whether to mask the payload, i.e. whether this is the
                client side. The masking key comes from
                :func:`secrets.token_bytes` (§5.3: unpredictable).
            extensions: Extensions to encode the frame with, in order.

        Raises:
            ProtocolError: If the frame breaks the rules of :meth:`check`.
        """
        self.check()
        frame = self
        for extension in extensions or ():
            frame = extension.encode(frame)
        head1 = (
            (0x80 if frame.fin else 0)
            | (0x40 if frame.rsv1 else 0)
            | (0x20 if frame.rsv2 else 0)
            | (0x10 if frame.rsv3 else 0)
            | frame.opcode
        )
        head2 = 0x80 if mask else 0
        length = len(frame.data)
        if length < 126:
            header = struct.pack("!BB", head1, head2 | length)
        elif length < 65536:
            header = struct.pack("!BBH", head1, head2 | 126, length)
        else:
            header = struct.pack("!BBQ", head1, head2 | 127, length)
        if not mask:
            return header + bytes(frame.data)
        key = secrets.token_bytes(4)
        return header + key + _core.apply_mask(frame.data, key)

    def check(self) -> None:
        """Check the rules of RFC 6455 that do not depend on the connection.

        Extensions call it on frames they build; the Rust core applies the
        same rules to frames it parses.

        Raises:
            ProtocolError: If a reserved bit is set (§5.2: no extension
                negotiated them at this point), or if a control frame is
                fragmented or longer than 125 bytes (§5.5).
        """
        if self.rsv1 or self.rsv2 or self.rsv3:
            raise ProtocolError("reserved bits must be 0")
        if self.opcode in CTRL_OPCODES:
            if len(self.data) > 125:
                raise ProtocolError("control frame too long")
            if not self.fin:
                raise ProtocolError("fragmented control frame")


@dataclasses.dataclass
class Close:
    """Code and reason carried by a close frame (RFC 6455 §5.5.1).

    Attributes:
        code: Close code; a :class:`CloseCode` member or any integer.
        reason: Close reason, already decoded from UTF-8.
    """

    code: CloseCode | int
    reason: str

    def __str__(self) -> str:
        """Render as ``1000 (OK) reason``, the form used in logs and errors."""
        text = f"{int(self.code)} ({_explain(self.code)})"
        if self.reason:
            text += f" {self.reason}"
        return text

    @classmethod
    def parse(cls, data: BytesLike) -> Self:
        """Read the payload of a close frame.

        Args:
            data: Payload of the close frame.

        Returns:
            The code and reason. An empty payload means that the peer gave
            no code, reported as 1005 with an empty reason (§7.1.5).

        Raises:
            ProtocolError: If the payload is one byte long (§5.5.1 requires
                a two-byte code first) or the code may not be sent.
            UnicodeDecodeError: If the reason isn't valid UTF-8 (§5.5.1);
                the caller fails the connection with 1007.
        """
        payload = bytes(data)
        if not payload:
            return cls(CloseCode.NO_STATUS_RCVD, "")
        if len(payload) < 2:
            raise ProtocolError("close frame too short")
        (code,) = struct.unpack("!H", payload[:2])
        close = cls(code, payload[2:].decode("utf-8"))
        close.check()
        return close

    def serialize(self) -> bytes:
        """Build the payload of a close frame.

        Raises:
            ProtocolError: If the code may not be sent.
        """
        self.check()
        return struct.pack("!H", self.code) + self.reason.encode("utf-8")

    def check(self) -> None:
        """Check that the code may appear in a close frame.

        RFC 6455 §7.4 reserves 1004, 1005, 1006 and 1015, leaves 1016-2999
        for future revisions, and gives 3000-4999 to applications.

        Raises:
            ProtocolError: If the code may not be sent.
        """
        if not (self.code in EXTERNAL_CLOSE_CODES or 3000 <= self.code < 5000):
            raise ProtocolError(f"invalid status code {int(self.code)}")
