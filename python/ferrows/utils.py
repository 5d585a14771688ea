"""Helpers that websockets documents in ``websockets.utils``.

The handshake keys (RFC 6455 §4.1 and §4.2.2) and masking (§5.3) are
computed by the Rust core; these functions give them websockets' names and
argument checks.
"""

from __future__ import annotations

import socket

from . import _core
from .typing import BytesLike

__all__ = ["accept_key", "apply_mask", "generate_key", "get_socket_name"]

# RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def generate_key() -> str:
    """Return a random ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded (§4.1)."""
    return _core.generate_key()


def accept_key(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` that answers ``key`` (§4.2.2, step 5.4).

    Args:
        key: Value of the client's ``Sec-WebSocket-Key`` header.
    """
    return _core.accept_key(key)


def apply_mask(data: BytesLike, mask: bytes | bytearray) -> bytes:
    """XOR ``data`` with a 4-byte masking key, repeated (§5.3).

    Masking and unmasking are the same operation.

    Raises:
        TypeError: If ``data`` or ``mask`` isn't bytes-like.
        ValueError: If ``mask`` isn't 4 bytes long.
    """
    # The core also takes str, which websockets refuses.
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be a bytes-like object, not {type(data).__name__}")
    if not isinstance(mask, (bytes, bytearray, memoryview)):
        raise TypeError(f"mask must be a bytes-like object, not {type(mask).__name__}")
    if len(mask) != 4:
        raise ValueError("mask must contain 4 bytes")
    if isinstance(data, memoryview) and not data.c_contiguous:
        data = bytes(data)
    return _core.apply_mask(data, bytes(mask))


def get_socket_name(sock: socket.socket) -> str:
    """Show the local address of ``sock`` as logs show it: ``host:port``, ``[host]:port`` or a path."""
    if sock.family == socket.AF_INET:
        host, port = sock.getsockname()
        return f"{host}:{port}"
    if sock.family == socket.AF_INET6:
        host, port = sock.getsockname()[:2]
        return f"[{host}]:{port}"
    if sock.family == getattr(socket, "AF_UNIX", None):
        return str(sock.getsockname())
    raise AssertionError("unsupported socket family")
