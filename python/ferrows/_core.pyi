"""Type stubs of ``ferrows._core``, the Rust extension module.

The Sans-I/O core: framing, masking, UTF-8 validation, the closing handshake
and HTTP/1.1 parsing. Python layers call it once per network read and once
per frame sent.
"""

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar, final

from typing_extensions import Buffer

__all__ = [
    "CloseReceived",
    "Connection",
    "Fifo",
    "Fragment",
    "HttpParser",
    "PingReceived",
    "PongReceived",
    "ProtocolViolation",
    "accept_key",
    "apply_mask",
    "deflate_message",
    "encode_frame",
    "generate_key",
    "is_valid_key",
    "release_memory",
    "scope_headers",
    "send_to_all",
    "upgrade_response",
]

@final
class PingReceived:
    """A ping; the pong is already queued while the connection is open."""

    def __new__(cls, data: bytes = ...) -> PingReceived: ...
    @property
    def data(self) -> bytes:
        """Payload."""

@final
class PongReceived:
    """A pong."""

    def __new__(cls, data: bytes = ...) -> PongReceived: ...
    @property
    def data(self) -> bytes:
        """Payload."""

@final
class CloseReceived:
    """A close frame with its raw payload; the reply is already queued."""

    def __new__(cls, data: bytes = ...) -> CloseReceived: ...
    @property
    def data(self) -> bytes:
        """Payload."""

@final
class ProtocolViolation:
    """The peer violated the protocol; ``code`` is the close code it calls for."""

    def __new__(cls, code: int) -> ProtocolViolation: ...
    @property
    def code(self) -> int:
        """Close code."""

@final
class Fragment:
    """A frame of a fragmented message (``fragments=True``): the text it
    completes or its bytes; ``fin`` on the last one."""

    def __new__(cls, data: str | bytes, fin: bool = False) -> Fragment: ...
    @property
    def data(self) -> str | bytes:
        """Text (a text message) or bytes (a binary one)."""
    @property
    def fin(self) -> bool:
        """Last fragment of the message."""

_Event = (
    str
    | bytes
    | Fragment
    | tuple[int, bytes, bool, int]
    | PingReceived
    | PongReceived
    | CloseReceived
    | ProtocolViolation
)

@final
class Connection:
    """A WebSocket connection after the opening handshake.

    ``receive_data`` returns events: ``str``/``bytes`` for whole messages when
    ``assemble`` is true (and a ``Fragment`` per frame of a fragmented one
    with ``fragments``), otherwise tuples ``(opcode, payload, fin, rsv)``
    for data frames; the event classes above for control frames and
    violations (see ``parser_exc``).
    """

    def __new__(
        cls,
        client: bool,
        *,
        max_size: int | None = ...,
        max_fragments: int | None = ...,
        max_frame: int | None = None,
        assemble: bool = False,
        fragments: bool = False,
        extra_rsv: int = 0,
        check_text: bool = True,
        defer_failure: bool = False,
    ) -> Connection: ...
    def receive_data(self, data: Buffer | str) -> list[_Event]:
        """Feeds received bytes; raises EOFError after ``receive_eof``."""
    def receive_eof(self) -> list[_Event]:
        """Records the peer's EOF."""
    def send_text(self, data: Buffer | str, fin: bool = True) -> bytes:
        """Frames a text fragment; returns the bytes to write."""
    def send_binary(self, data: Buffer | str, fin: bool = True) -> bytes:
        """Frames a binary fragment; returns the bytes to write."""
    def send_continuation(self, data: Buffer | str, fin: bool) -> bytes:
        """Frames a continuation fragment; returns the bytes to write."""
    def send_frame(self, opcode: int, data: Buffer | str, fin: bool, rsv: int) -> bytes:
        """Frames a data frame, a ping or a pong already encoded by Python
        extensions, with their RSV bits."""
    def send_data_frame(self, opcode: int, data: Buffer | str, fin: bool = True) -> bytes:
        """Frames a data frame, a ping or a pong by opcode."""
    def send_header(self, opcode: int, length: int, fin: bool) -> bytes | None:
        """Starts a frame whose payload the caller writes unchanged after the
        returned header; None when it must go through ``send_*``."""
    def send_ping(self, data: Buffer | str) -> bytes:
        """Frames a ping; returns the bytes to write."""
    def send_pong(self, data: Buffer | str) -> bytes:
        """Frames a pong; returns the bytes to write."""
    def send_close(self, code: int | None = None, reason: str = "") -> bytes:
        """Frames a close frame, starting the closing handshake."""
    def fail_pending(self) -> bool:
        """With ``defer_failure``, sends the close frame of the violation
        that the last ``ProtocolViolation`` event reported; whether it did."""
    def fail(self, code: int, reason: str = "") -> None:
        """Fails the connection; output is in ``data_to_send``."""
    def enable_deflate(
        self,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        level: int = 6,
        mem_level: int = 8,
    ) -> None:
        """Adds permessage-deflate with negotiated parameters."""
    def data_to_send(self) -> list[bytes]:
        """Bytes to write, then ``b""`` to half-close the transport."""
    def compact_if_idle(self) -> bool:
        """Frees compression state if idle since the previous call; True if
        anything was freed."""
    def hold_pongs(self, hold: bool) -> bool:
        """Holds back pongs; releasing queues one for the latest ping.
        Returns whether bytes wait in :meth:`data_to_send`."""
    def close_expected(self) -> bool:
        """Whether the TCP connection should close soon."""
    def set_fixed_mask(self, key: bytes) -> None:
        """Uses a fixed masking key (tests only)."""
    @property
    def state(self) -> int:
        """1 OPEN, 2 CLOSING, 3 CLOSED."""
    @property
    def close_rcvd(self) -> tuple[int, str] | None:
        """Close code and reason received."""
    @property
    def close_sent(self) -> tuple[int, str] | None:
        """Close code and reason sent."""
    @property
    def close_rcvd_then_sent(self) -> bool | None:
        """Whether the close frame was received first."""
    @property
    def eof_sent(self) -> bool:
        """Whether EOF was queued."""
    @property
    def sending_fragments(self) -> bool:
        """Whether a fragmented message is being sent."""
    @property
    def parser_exc(self) -> Exception | None:
        """The peer's violation, as an exception."""
    @property
    def failure_code(self) -> int | None:
        """Close code of the peer's violation."""
    @property
    def max_size(self) -> int | None:
        """Message size limit."""
    @max_size.setter
    def max_size(self, value: int | None) -> None: ...
    @property
    def assemble(self) -> bool:
        """Whether messages are delivered whole."""
    @assemble.setter
    def assemble(self, value: bool) -> None: ...
    @property
    def fragments(self) -> bool:
        """Whether fragmented messages come as ``Fragment`` events."""
    @fragments.setter
    def fragments(self, value: bool) -> None: ...
    @property
    def defer_failure(self) -> bool:
        """Whether a violation waits for ``fail_pending``."""
    @defer_failure.setter
    def defer_failure(self, value: bool) -> None: ...

@final
class HttpParser:
    """Incremental HTTP/1.1 request or response parser with hard limits."""

    def __new__(
        cls, response: bool, *, max_line: int = 8192, max_headers: int = 128, max_body: int = ...
    ) -> HttpParser: ...
    def feed(
        self, data: bytes
    ) -> tuple[str, str, str, list[tuple[str, str]]] | tuple[str, int, str, list[tuple[str, str]], bytes] | None:
        """Feeds bytes; returns the message once complete."""
    def feed_upgrade(
        self, data: bytes
    ) -> tuple[str, str, str, str, bytes, tuple[str, str | None, tuple[str, ...], list[str]] | None] | None:
        """Feeds bytes of a request; once complete, returns ``(method, path,
        protocol, packed headers, remaining bytes, upgrade)``, where upgrade
        is ``(accept, origin, extension offers, subprotocols)`` for a plain
        valid WebSocket upgrade and None otherwise."""
    def feed_eof(self) -> tuple[str, int, str, list[tuple[str, str]], bytes] | None:
        """Completes a body read until EOF, or raises."""
    def take_remaining(self) -> bytes:
        """Bytes received after the message."""

_T = TypeVar("_T")

@final
class Fifo(Generic[_T]):
    """A first-in, first-out queue, as much of ``collections.deque`` as the
    asyncio connection needs; an empty one owns no storage."""

    def __new__(cls, items: Iterable[_T] | None = None) -> Fifo[_T]: ...
    def append(self, item: _T) -> None: ...
    def popleft(self) -> _T:
        """Removes and returns the first item; IndexError if empty."""
    def extendleft(self, items: Iterable[_T]) -> None:
        """Adds items at the front, in reverse order, as ``deque.extendleft``."""
    def clear(self) -> None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: int, /) -> _T: ...
    def __iter__(self) -> Iterator[_T]:
        """Iterates over a snapshot."""

def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a key."""

def upgrade_response(
    accept: str,
    date: str | None,
    extensions: str | None,
    subprotocol: str | None,
    extra: list[tuple[str, str]] = ...,
) -> tuple[bytes, str] | None:
    """The 101 accepting an upgrade: its head as sent and its headers packed;
    None when a value or a name of ``extra`` is invalid."""

def scope_headers(packed: str) -> list[tuple[bytes, bytes]]:
    """An ASGI scope's headers from packed headers: lower-case names."""

def generate_key() -> str:
    """A random ``Sec-WebSocket-Key``."""

def is_valid_key(key: str) -> bool:
    """Whether ``key`` is base64 for 16 bytes."""

def encode_frame(opcode: int, data: Buffer | str, fin: bool = True, rsv: int = 0) -> bytes:
    """One unmasked frame, for broadcasting the same bytes to many servers' peers."""

def deflate_message(data: Buffer | str, window_bits: int, level: int = 6, mem_level: int = 8) -> bytes:
    """A whole message compressed without context (RFC 7692), tail removed."""

def release_memory() -> bool:
    """Returns freed heap memory to the system (glibc); False elsewhere."""

def send_to_all(fds: list[int], data: Buffer) -> list[tuple[int, int]]:
    """Writes ``data`` to each socket without blocking; returns (index, bytes
    taken) for each one that did not take all of it (0 on an error)."""

def apply_mask(data: Buffer | str, mask: bytes) -> bytes:
    """XORs ``data`` with a 4-byte mask."""
