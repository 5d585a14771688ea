"""What asyncio and threading connections expose alike.

Both hold a Sans-I/O :class:`~ferrows.protocol.Protocol` in ``protocol`` and
the handshake's ``request`` and ``response``; these properties read them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .protocol import CLOSED, State

if TYPE_CHECKING:
    from .datastructures import Headers
    from .http11 import Request, Response
    from .protocol import Protocol
    from .typing import Subprotocol

__all__ = ["ConnectionBase", "decode_message", "invalid_utf8_reason", "limits"]


WRITE_APART = 64 * 1024
"""Payload size from which a server writes a message's bytes as they are,
after the frame header, instead of copying them into one frame: one more
write is cheaper than copying 64 KiB."""

COALESCE_LIMIT = 16 * 1024
"""Frames smaller than this, queued together, go out in one write."""


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


class ConnectionBase:
    """State of a connection, read from its protocol and handshake."""

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
