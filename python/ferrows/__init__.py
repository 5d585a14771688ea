"""ferrows: a fast WebSocket library with a Rust core and the API of websockets.

``import ferrows as websockets`` runs code written for websockets. Names are
imported lazily, on first access, so that ``import ferrows`` stays cheap and
the asyncio, threading and routing layers load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .imports import lazy_import
from .version import __version__

__all__ = [
    "ClientConnection",
    # Sans-I/O
    "ClientProtocol",
    # data structures
    "Close",
    "CloseCode",
    # exceptions
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    # typing
    "Data",
    "DuplicateParameter",
    "ExtensionName",
    "ExtensionParameter",
    "Frame",
    "HeaderLineTooLong",
    "Headers",
    "HeadersLike",
    # groups across processes
    "Hub",
    "HubUnavailable",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidMessage",
    "InvalidMethod",
    "InvalidOrigin",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidProtocol",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUpgrade",
    "LoggerLike",
    "MultipleValuesError",
    "NegotiationError",
    "Opcode",
    "Origin",
    "PayloadTooBig",
    "Protocol",
    "ProtocolError",
    "ProxyError",
    "Request",
    "RequestLineTooLong",
    "Response",
    "Router",
    "SecurityError",
    "Server",
    "ServerConnection",
    "ServerProtocol",
    "Side",
    "State",
    "StatusLike",
    "StatusLineTooLong",
    "Subprotocol",
    "TooManyFragments",
    "TooManyHeaders",
    "WebSocketException",
    # asyncio server
    "basic_auth",
    "broadcast",
    # asyncio client
    "connect",
    # routing
    "route",
    "serve",
    "unix_connect",
    "unix_route",
    "unix_serve",
]

# Where each public name lives.
_LAZY = {
    "connect": ".asyncio.client",
    "unix_connect": ".asyncio.client",
    "ClientConnection": ".asyncio.client",
    "basic_auth": ".asyncio.server",
    "broadcast": ".asyncio.server",
    "serve": ".asyncio.server",
    "unix_serve": ".asyncio.server",
    "Server": ".asyncio.server",
    "ServerConnection": ".asyncio.server",
    "Hub": ".asyncio.hub",
    "HubUnavailable": ".asyncio.hub",
    "route": ".asyncio.router",
    "unix_route": ".asyncio.router",
    "Router": ".asyncio.router",
    "ClientProtocol": ".client",
    "Protocol": ".protocol",
    "ServerProtocol": ".server",
    "Side": ".protocol",
    "State": ".protocol",
    "Headers": ".datastructures",
    "HeadersLike": ".datastructures",
    "MultipleValuesError": ".datastructures",
    "Close": ".frames",
    "CloseCode": ".frames",
    "Frame": ".frames",
    "Opcode": ".frames",
    "Request": ".http11",
    "Response": ".http11",
    "Data": ".typing",
    "ExtensionName": ".typing",
    "ExtensionParameter": ".typing",
    "LoggerLike": ".typing",
    "StatusLike": ".typing",
    "Origin": ".typing",
    "Subprotocol": ".typing",
}


# The exceptions are all the other public names.
lazy_import(globals(), aliases={**dict.fromkeys(__all__, ".exceptions"), **_LAZY})
del _LAZY


if TYPE_CHECKING:
    from .asyncio.client import ClientConnection, connect, unix_connect
    from .asyncio.hub import Hub, HubUnavailable
    from .asyncio.router import Router, route, unix_route
    from .asyncio.server import Server, ServerConnection, basic_auth, broadcast, serve, unix_serve
    from .client import ClientProtocol
    from .datastructures import Headers, HeadersLike, MultipleValuesError
    from .exceptions import *
    from .frames import Close, CloseCode, Frame, Opcode
    from .http11 import Request, Response
    from .protocol import Protocol, Side, State
    from .server import ServerProtocol
    from .typing import Data, ExtensionName, ExtensionParameter, LoggerLike, Origin, StatusLike, Subprotocol
