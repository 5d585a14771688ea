"""What asyncio and threading connections expose alike.

Both hold a Sans-I/O :class:`~ferrows.protocol.Protocol` in ``protocol`` and
the handshake's ``request`` and ``response``; these properties read them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .protocol import CLOSED, State

if TYPE_CHECKING:
    from . import _core
    from .datastructures import Headers
    from .http11 import Request, Response
    from .protocol import Protocol
    from .typing import Subprotocol

__all__ = ["ConnectionBase", "limits"]


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


class ConnectionBase:
    """State of a connection, read from its protocol and handshake."""

    protocol: Protocol
    request: Request | None
    response: Response | None
    _core: _core.Connection | None

    def _compact_if_idle(self) -> bool:
        """Frees the connection's compression state if no message went
        through it since the previous call (see ``compact_idle``)."""
        core = self._core
        return core is not None and bool(self.protocol.extensions) and core.compact_if_idle()

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
