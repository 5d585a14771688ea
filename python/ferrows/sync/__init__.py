"""Threading implementation of WebSocket servers and clients.

``from ferrows.sync import connect, serve`` works as the user's
documentation shows; the modules are :mod:`ferrows.sync.client` and
:mod:`ferrows.sync.server`, as in websockets.
"""

from __future__ import annotations

from .client import ClientConnection, connect, reconnect, unix_connect, unix_reconnect
from .server import Server, ServerConnection, basic_auth, broadcast, serve, unix_serve

__all__ = [
    "ClientConnection",
    "Server",
    "ServerConnection",
    "basic_auth",
    "broadcast",
    "connect",
    "reconnect",
    "serve",
    "unix_connect",
    "unix_reconnect",
    "unix_serve",
]
