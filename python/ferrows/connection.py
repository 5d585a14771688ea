"""What asyncio and threading connections expose alike.

Both hold a Sans-I/O :class:`~ferrows.protocol.Protocol` in ``protocol`` and
the handshake's ``request`` and ``response``; these properties read them.
"""

from __future__ import annotations

import os
import random
import struct
import time
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from .exceptions import ConcurrencyError
from .frames import Opcode
from .protocol import CLOSED, State

if TYPE_CHECKING:
    from .datastructures import Headers
    from .http11 import Request, Response
    from .protocol import Protocol
    from .typing import Subprotocol

__all__ = [
    "ConnectionBase",
    "acknowledged_pings",
    "closed_exception",
    "decode_message",
    "invalid_utf8_reason",
    "keepalive_payload",
    "limits",
    "ping_payload",
    "pong_payload",
    "ssl_context_argument",
]


WRITE_APART = 64 * 1024
"""Payload size from which a server writes a message's bytes as they are,
after the frame header, instead of copying them into one frame: one more
write is cheaper than copying 64 KiB."""

COALESCE_LIMIT = 16 * 1024
"""Frames smaller than this, queued together, go out in one write."""

WRITE_LINGER = 100e-6
"""Seconds after which answers held for one write go out with the next one.
Answers to the messages of one read are held and written together, one
system call for the lot; without a bound in time the peer gets none of them
until the last is ready, and then both sides take turns: the server answers
a burst while the peer waits, the peer sends the next burst while the server
waits. Written about every tenth of a millisecond, the peer works on the
first answers while the server makes the rest, and a write costs a few
microseconds, a few percent of the work it carries. The clock is read when
an answer is held, so an application that takes longer than this over one
answer writes the held ones with it; they never wait past the end of the
loop iteration either."""

linger_clock = time.monotonic
"""The clock ``WRITE_LINGER`` is measured on: not ``loop.time()``, which
uvloop moves once per loop iteration, not within a callback."""


def limits(value: int | tuple[int | None, int | None] | None) -> tuple[int | None, int | None]:
    """A high-water mark given as ``high``, ``(high, low)`` or :obj:`None`,
    as ``(high, low)``; low defaults to a quarter of high."""
    high, low = value if isinstance(value, tuple) else (value, None)
    if high is None:
        return None, None
    return high, (high // 4 if low is None else low)


def decode_message(message: str | bytes, decode: bool) -> str | bytes:
    """``recv(decode=...)``: text as UTF-8 bytes with ``decode=False``, a
    binary message decoded as UTF-8 with ``decode=True``.

    Raises:
        UnicodeDecodeError: If a binary message to decode is not UTF-8; both
            I/O layers then fail the connection with 1007, as websockets does.
    """
    if decode:
        return message.decode() if type(message) is bytes else message
    return message.encode() if type(message) is str else message


def invalid_utf8_reason(exc: UnicodeDecodeError) -> str:
    """The close reason for a message that is not valid UTF-8."""
    return f"{exc.reason} at position {exc.start}"


def pong_payload(data: Any) -> bytes:
    """The payload of ``pong(data)``: a str encoded as UTF-8, or bytes.

    Raises:
        TypeError: For anything else (websockets raises it for ``[]``).
    """
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError("data must be str or bytes-like")


def ping_payload(data: Any, pings: dict[bytes, Any]) -> bytes:
    """The payload of ``ping(data)``: as :func:`pong_payload`, or 4 random
    bytes that no ping awaiting its pong uses, for :obj:`None`.

    Raises:
        ConcurrencyError: If a ping with the same payload awaits its pong.
        TypeError: For a payload neither str nor bytes-like.
    """
    if data is None:
        # Drawn as websockets draws it, so that code patching
        # random.getrandbits to get known payloads works the same.
        while (payload := struct.pack("!I", random.getrandbits(32))) in pings:
            pass
        return payload
    payload = pong_payload(data)
    if payload in pings:
        raise ConcurrencyError("already waiting for a pong with the same data")
    return payload


def keepalive_payload(pings: dict[bytes, Any], now: float) -> bytes:
    """A keepalive ping's payload: the time in milliseconds, as websockets'
    peers see it in their logs, or random bytes if a ping still uses it."""
    payload = struct.pack("!I", int(now * 1000) & 0xFFFFFFFF)
    while payload in pings:
        payload = os.urandom(4)
    return payload


_Entry = TypeVar("_Entry")


def acknowledged_pings(pings: dict[bytes, _Entry], payload: bytes) -> list[tuple[bytes, _Entry]]:
    """Removes and returns, oldest first, the pings a pong with ``payload``
    acknowledges: its own and every one sent before it (RFC 6455 section
    5.5.3 allows answering only the latest). None for an unknown payload."""
    if payload not in pings:
        return []
    acked = []
    for key in pings:
        acked.append(key)
        if key == payload:
            break
    return [(key, pings.pop(key)) for key in acked]


def closed_exception(protocol: Protocol, connection_exc: BaseException | None) -> BaseException:
    """The exception for using a closing or closed connection, with its cause.

    The cause is the peer's protocol violation if there was one; else what
    broke the transport (a close timeout, a failed read or write), as
    websockets reports it, rather than the "unexpected EOF" that follows
    when ferrows drops the connection itself.
    """
    exc = protocol.close_exc
    if connection_exc is not None and (exc.__cause__ is None or isinstance(exc.__cause__, EOFError)):
        exc.__cause__ = connection_exc
    return exc


def frames_through_protocol(protocol: Protocol, send: Any, opcode: int, data: Any, fin: bool) -> list[bytes]:
    """Frames a data frame with the protocol's own ``send_text()`` or
    ``send_binary()`` (what the I/O layers do when a test or an application
    replaced one of them on the class); other opcodes go through ``send``,
    the layer's usual entry point. Raises what those methods raise."""
    if opcode == Opcode.TEXT:
        protocol.send_text(data, fin)
    elif opcode == Opcode.BINARY:
        protocol.send_binary(data, fin)
    else:
        return [send(opcode, data, fin)]
    return protocol.data_to_send()


def ssl_context_argument(kwargs: dict[str, Any]) -> None:
    """websockets' deprecated ``ssl_context=``, renamed ``ssl``, with its
    warning: moved to ``ssl`` in ``kwargs`` unless ``ssl`` is given."""
    if "ssl_context" in kwargs:
        import warnings

        context = kwargs.pop("ssl_context")
        warnings.warn("ssl_context was renamed to ssl", DeprecationWarning, stacklevel=3)
        if kwargs.get("ssl") is None:
            kwargs["ssl"] = context


def __getattr__(name: str) -> Any:
    """``Connection``: websockets' deprecated name of
    :class:`~ferrows.protocol.Protocol` in this module, with its warning."""
    if name == "Connection":
        import warnings

        from .protocol import Protocol

        warnings.warn(
            "websockets.connection was renamed to websockets.protocol and Connection was renamed to Protocol",
            DeprecationWarning,
            stacklevel=2,
        )
        return Protocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ConnectionBase:
    """State of a connection, read from its protocol and handshake."""

    __slots__ = ()

    protocol: Protocol
    request: Request | None
    response: Response | None

    def _compact_if_idle(self) -> bool:
        """Frees the connection's compression state if no message went
        through it since the previous call (see ``compact_idle``)."""
        return self.protocol.compact_if_idle()

    @property
    def id(self) -> uuid.UUID:
        """Unique identifier of the connection, useful in logs."""
        return self.protocol.id

    @property
    def state(self) -> State:
        """State of the WebSocket connection."""
        return self.protocol.state

    @property
    def closed(self) -> bool:
        """True once the connection is fully closed."""
        return self.protocol.state is CLOSED

    @property
    def subprotocol(self) -> Subprotocol | None:
        """Subprotocol negotiated in the handshake, or :obj:`None`."""
        return self.protocol.subprotocol

    @property
    def close_code(self) -> int | None:
        """Close code received from the peer, once the connection is closed."""
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        """Close reason received from the peer, once the connection is closed."""
        return self.protocol.close_reason

    @property
    def request_headers(self) -> Headers:
        """Headers of the handshake request."""
        assert self.request is not None, "handshake not done"
        return self.request.headers

    @property
    def response_headers(self) -> Headers:
        """Headers of the handshake response."""
        assert self.response is not None, "handshake not done"
        return self.response.headers
