"""Type aliases used in the signatures of ferrows' public API.

The names and meanings are those of ``websockets.typing`` so that annotations
written for websockets keep type-checking.
"""

from __future__ import annotations

import http
import logging
import os
from collections.abc import Sequence
from typing import Any, NewType

# The names websockets' ``__all__`` lists: the top-level package re-exports
# exactly these. BytesLike, DataLike and PathLike are importable too, as in
# websockets, but not star-exported.
__all__ = [
    "Data",
    "ExtensionName",
    "ExtensionParameter",
    "LoggerLike",
    "Origin",
    "StatusLike",
    "Subprotocol",
]

# A WebSocket message: str travels in a text frame, bytes in a binary frame
# (RFC 6455 §5.6).
Data = str | bytes

# Accepted wherever bytes are; memoryview lets callers avoid copies.
BytesLike = bytes | bytearray | memoryview

# Accepted wherever a message is.
DataLike = str | bytes | bytearray | memoryview

# A logger or a LoggerAdapter wrapping one, as websockets accepts.
LoggerLike = logging.Logger | logging.LoggerAdapter[Any]

# HTTP status given as a number or as an http.HTTPStatus member.
StatusLike = http.HTTPStatus | int

# Filesystem path for Unix sockets.
PathLike = str | bytes | os.PathLike[str] | os.PathLike[bytes]

# Value of an Origin header (RFC 6454 §7).
Origin = NewType("Origin", str)

# One subprotocol of Sec-WebSocket-Protocol (RFC 6455 §11.3.4).
Subprotocol = NewType("Subprotocol", str)

# Name of an extension in Sec-WebSocket-Extensions (RFC 6455 §9.1).
ExtensionName = NewType("ExtensionName", str)

# One extension parameter: name, and value or None when it has no value.
ExtensionParameter = tuple[str, str | None]

# Internal types shared by the handshake modules; not part of __all__.

# One extension of a Sec-WebSocket-Extensions header: name and parameters.
ExtensionHeader = tuple[ExtensionName, Sequence[ExtensionParameter]]

# One option of a Connection header (RFC 9110 §7.6.1).
ConnectionOption = NewType("ConnectionOption", str)

# One protocol of an Upgrade header (RFC 9110 §7.8).
UpgradeProtocol = NewType("UpgradeProtocol", str)
