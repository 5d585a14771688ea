"""Exception classes raised by ferrows.

The tree, the base classes and the constructor signatures are those of
websockets 17, so that ``except websockets.ConnectionClosedOK:`` and friends
keep working after ``import ferrows as websockets``::

    WebSocketException
    ├── ConnectionClosed
    │   ├── ConnectionClosedOK
    │   └── ConnectionClosedError
    ├── InvalidURI
    ├── InvalidProxy
    ├── InvalidHandshake
    │   ├── SecurityError
    │   │   ├── RequestLineTooLong
    │   │   ├── StatusLineTooLong
    │   │   ├── HeaderLineTooLong
    │   │   └── TooManyHeaders
    │   ├── ProxyError
    │   │   ├── InvalidProxyMessage
    │   │   └── InvalidProxyStatus
    │   ├── InvalidMessage
    │   ├── InvalidMethod
    │   ├── InvalidProtocol
    │   ├── InvalidStatus
    │   ├── InvalidHeader
    │   │   ├── InvalidHeaderFormat
    │   │   ├── InvalidHeaderValue
    │   │   ├── InvalidOrigin
    │   │   └── InvalidUpgrade
    │   └── NegotiationError
    │       ├── DuplicateParameter
    │       ├── InvalidParameterName
    │       └── InvalidParameterValue
    ├── ProtocolError
    ├── PayloadTooBig
    ├── TooManyFragments
    ├── InvalidState          (also an AssertionError)
    └── ConcurrencyError      (also a RuntimeError)

Every constructor stores its arguments in ``args`` as well as in named
attributes. websockets leaves ``args`` empty for most classes, which breaks
``pickle`` and therefore ``multiprocessing``; keeping them costs nothing.

This module must stay importable without the Rust extension, and without
importing :mod:`ferrows.frames` or :mod:`ferrows.http11` at import time,
because both of them import exceptions from here.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .frames import Close
    from .http11 import Response

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DuplicateParameter",
    "HeaderLineTooLong",
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
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "RequestLineTooLong",
    "SecurityError",
    "StatusLineTooLong",
    "TooManyFragments",
    "TooManyHeaders",
    "WebSocketException",
]


class WebSocketException(Exception):
    """Root of every exception that ferrows defines.

    Catch it to handle any failure specific to WebSocket, and nothing else.
    """


# Closed connections


class ConnectionClosed(WebSocketException):
    """The connection is closed; nothing more can be sent or received.

    The I/O layer raises it from ``recv()``, ``send()``, iteration and so on.
    The close frames, when there were any, tell the application why.

    Args:
        rcvd: Code and reason of the close frame received from the peer, or
            :obj:`None` if none arrived (for example after a TCP reset).
        sent: Code and reason of the close frame this side sent, or
            :obj:`None` if it sent none.
        rcvd_then_sent: When both frames exist, :obj:`True` if the peer
            started the closing handshake and :obj:`False` if this side did.
            :obj:`None` when at most one frame exists (or when the order is
            unknown).

    Attributes:
        rcvd: See Args.
        sent: See Args.
        rcvd_then_sent: See Args.
    """

    def __init__(
        self,
        rcvd: Close | None = None,
        sent: Close | None = None,
        rcvd_then_sent: bool | None = None,
    ) -> None:
        # Defaults of None follow the tile (API.md §9 DEC); websockets 17
        # requires rcvd and sent, so every call written for it still works.
        super().__init__(rcvd, sent, rcvd_then_sent)
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent

    def __str__(self) -> str:
        rcvd, sent = self.rcvd, self.sent
        if rcvd is None and sent is None:
            return "no close frame received or sent"
        if rcvd is None:
            return f"sent {sent}; no close frame received"
        if sent is None:
            return f"received {rcvd}; no close frame sent"
        if self.rcvd_then_sent is None:
            # websockets asserts this cannot happen; a message is more useful
            # than an AssertionError while an exception is being reported.
            return f"received {rcvd}; sent {sent}"
        if self.rcvd_then_sent:
            return f"received {rcvd}; then sent {sent}"
        return f"sent {sent}; then received {rcvd}"

    @property
    def code(self) -> int:
        """Close code received from the peer (deprecated).

        Kept because websockets 17 still offers it; like websockets, it warns.
        It reports 1006 (abnormal closure) when no close frame was received,
        which is the value RFC 6455 §7.1.5 assigns to that situation.
        """
        warnings.warn(
            "ConnectionClosed.code is deprecated; use Protocol.close_code or ConnectionClosed.rcvd.code",
            DeprecationWarning,
            stacklevel=2,
        )
        if self.rcvd is None:
            from .frames import CloseCode

            return CloseCode.ABNORMAL_CLOSURE
        return self.rcvd.code

    @property
    def reason(self) -> str:
        """Close reason received from the peer (deprecated).

        Empty when no close frame was received. Warns like :attr:`code`.
        """
        warnings.warn(
            "ConnectionClosed.reason is deprecated; use Protocol.close_reason or ConnectionClosed.rcvd.reason",
            DeprecationWarning,
            stacklevel=2,
        )
        if self.rcvd is None:
            return ""
        return self.rcvd.reason


class ConnectionClosedOK(ConnectionClosed):
    """The connection ended with a clean closing handshake.

    Both close frames carried 1000 (OK), 1001 (going away) or no code at all
    (1005), which is how websockets 17 draws the line.
    """


class ConnectionClosedError(ConnectionClosed):
    """The connection ended abnormally.

    A close frame carried any code other than 1000, 1001 or none, or the
    closing handshake did not complete (a frame is missing on either side).
    """


# Invalid addresses


class InvalidURI(WebSocketException):
    """The URI given to ``connect()`` is not a usable ``ws://`` or ``wss://`` URI.

    Args:
        uri: The URI as the caller gave it.
        msg: What is wrong with it.
    """

    def __init__(self, uri: str, msg: str) -> None:
        super().__init__(uri, msg)
        self.uri = uri
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.uri} isn't a valid URI: {self.msg}"


class InvalidProxy(WebSocketException):
    """The proxy URI is not one ferrows can connect through.

    Args:
        proxy: The proxy URI as configured.
        msg: What is wrong with it.
    """

    def __init__(self, proxy: str, msg: str) -> None:
        super().__init__(proxy, msg)
        self.proxy = proxy
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.proxy} isn't a valid proxy: {self.msg}"


# Opening handshake


class InvalidHandshake(WebSocketException):
    """The opening handshake failed.

    Catch it to handle every handshake failure, whatever the cause.
    """


class SecurityError(InvalidHandshake):
    """The peer's handshake exceeded a limit that protects this process.

    The limits come from ``WEBSOCKETS_MAX_LINE_LENGTH``,
    ``WEBSOCKETS_MAX_NUM_HEADERS`` and ``WEBSOCKETS_MAX_BODY_SIZE``; see
    :mod:`ferrows.http11`.

    Args:
        status: See :attr:`status` (keyword-only).
    """

    status: int | None = None
    """HTTP status a server answers this failure with (a ferrows addition,
    like :attr:`InvalidMessage.status`). The subclasses declare theirs,
    such as :class:`RequestLineTooLong` (414); the handshake parser gives
    413 for a body too large."""

    def __init__(self, *args: Any, status: int | None = None) -> None:
        super().__init__(*args)
        if status is not None:
            self.status = status


def _limit_init(self: Any, limit: int | str | None = None, read: int | None = None) -> None:
    """``__init__`` of the four limit exceptions below.

    websockets raises them with a free-form message, so a :class:`str` is
    still accepted as the first argument; ferrows passes the limit as an
    :class:`int`, kept in ``limit`` (:obj:`None` if unknown), and for a line
    the bytes of it read when it crossed the limit, kept in ``read``.
    """
    if read is None:
        SecurityError.__init__(self, limit)
    else:
        SecurityError.__init__(self, limit, read)
    self.limit = None if isinstance(limit, str) else limit
    self.read = read
    self._message = limit if isinstance(limit, str) else None


def _limit_str(self: Any) -> str:
    """``__str__`` of the four limit exceptions below: websockets' wording
    when the numbers are known ("read 8202 bytes, expected no more than
    8192 bytes", "expected no more than 128 headers")."""
    if self._message is not None:
        return str(self._message)
    if self.limit is None:
        return str(self.what)
    if self.read is not None:
        return f"read {self.read} bytes, expected no more than {self.limit} bytes"
    if not self.unit:
        return f"expected no more than {self.limit} headers"
    return f"{self.what}: limit is {self.limit}{self.unit}"


class RequestLineTooLong(SecurityError):
    """The request line of a handshake request is longer than
    ``MAX_LINE_LENGTH`` bytes.

    Args:
        limit: The limit in bytes, the CRLF included, or a message as
            websockets accepts.
        read: Bytes of the line read when it crossed the limit.
    """

    what = "request line too long"
    unit = " bytes"
    status = 414  # URI Too Long (RFC 9110 section 15.5.15)
    limit: int | None
    read: int | None
    __init__ = _limit_init
    __str__ = _limit_str


class StatusLineTooLong(SecurityError):
    """The status line of a handshake response is longer than
    ``MAX_LINE_LENGTH`` bytes.

    Args:
        limit: The limit in bytes, the CRLF included, or a message as
            websockets accepts.
        read: Bytes of the line read when it crossed the limit.
    """

    what = "status line too long"
    unit = " bytes"
    limit: int | None
    read: int | None
    __init__ = _limit_init
    __str__ = _limit_str


class HeaderLineTooLong(SecurityError):
    """A header line of a handshake is longer than ``MAX_LINE_LENGTH``
    bytes.

    Args:
        limit: The limit in bytes, the CRLF included, or a message as
            websockets accepts.
        read: Bytes of the line read when it crossed the limit.
    """

    what = "header line too long"
    unit = " bytes"
    status = 431  # Request Header Fields Too Large (RFC 6585 section 5)
    limit: int | None
    read: int | None
    __init__ = _limit_init
    __str__ = _limit_str


class TooManyHeaders(SecurityError):
    """A handshake has more than ``MAX_NUM_HEADERS`` headers.

    Args:
        limit: The limit, or a message as websockets accepts.
    """

    what = "too many headers"
    unit = ""
    status = 431  # Request Header Fields Too Large (RFC 6585 section 5)
    limit: int | None
    read: int | None
    __init__ = _limit_init
    __str__ = _limit_str


class ProxyError(InvalidHandshake):
    """Connecting through a proxy failed."""


class InvalidProxyMessage(ProxyError):
    """The proxy's answer to ``CONNECT`` is not valid HTTP."""


class InvalidProxyStatus(ProxyError):
    """The proxy refused the ``CONNECT`` request.

    Args:
        response: The proxy's HTTP response.

    Attributes:
        response: See Args.
    """

    def __init__(self, response: Response) -> None:
        super().__init__(response)
        self.response = response

    def __str__(self) -> str:
        return f"proxy rejected connection: HTTP {self.response.status_code:d}"


class InvalidMessage(InvalidHandshake):
    """The handshake request or response is not well-formed HTTP/1.1.

    The parse error, when there is one, is chained as ``__cause__``.

    Args:
        status: See :attr:`status` (keyword-only).
    """

    status: int | None = None
    """HTTP status a server answers this failure with (a ferrows addition,
    like :attr:`SecurityError.status`), or :obj:`None` when it closes the
    connection without answering: the peer did not speak HTTP, or the
    failure does not say. The handshake parser gives the status of the
    particular error, such as 501 for ``Transfer-Encoding``."""

    def __init__(self, *args: Any, status: int | None = None) -> None:
        super().__init__(*args)
        if status is not None:
            self.status = status


class InvalidMethod(InvalidHandshake):
    """The handshake request uses a method other than ``GET`` (RFC 6455 §4.1).

    Args:
        method: The method received.

    Attributes:
        method: See Args.
    """

    def __init__(self, method: str) -> None:
        super().__init__(method)
        self.method = method

    def __str__(self) -> str:
        return f"unsupported HTTP method: {self.method}"


class InvalidProtocol(InvalidHandshake):
    """The handshake request is not HTTP/1.1 (RFC 6455 §4.1).

    Args:
        protocol: The protocol version received, e.g. ``HTTP/1.0``.

    Attributes:
        protocol: See Args.
    """

    status = 505  # HTTP Version Not Supported (RFC 9110 section 15.6.6)

    def __init__(self, protocol: str) -> None:
        super().__init__(protocol)
        self.protocol = protocol

    def __str__(self) -> str:
        return f"unsupported HTTP version: {self.protocol}"


class InvalidStatus(InvalidHandshake):
    """The server answered the handshake with a status other than 101.

    Args:
        response: The server's HTTP response, body included, so that the
            client can show why it was refused.

    Attributes:
        response: See Args.
    """

    def __init__(self, response: Response) -> None:
        super().__init__(response)
        self.response = response

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {self.response.status_code:d}"


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing, empty or wrong.

    Args:
        name: Header name.
        value: Header value; :obj:`None` means the header is missing.

    Attributes:
        name: See Args.
        value: See Args.
    """

    def __init__(self, name: str, value: str | None = None) -> None:
        super().__init__(name, value)
        self.name = name
        self.value = value

    def __str__(self) -> str:
        if self.value is None:
            return f"missing {self.name} header"
        if self.value == "":
            return f"empty {self.name} header"
        return f"invalid {self.name} header: {self.value}"


class InvalidHeaderFormat(InvalidHeader):
    """A header value does not follow the grammar of that header.

    Args:
        name: Header name.
        error: What the parser expected.
        header: The whole header value.
        pos: Offset in ``header`` where parsing failed.

    Attributes:
        error: See Args.
        header: See Args.
        pos: See Args.
    """

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        super().__init__(name, f"{error} at {pos} in {header}")
        # The four constructor arguments, so that pickle can rebuild it.
        self.args = (name, error, header, pos)
        self.error = error
        self.header = header
        self.pos = pos


class InvalidHeaderValue(InvalidHeader):
    """A header is well-formed but its value is not acceptable.

    :class:`~ferrows.datastructures.Headers` also raises it when a value
    contains characters that would allow header injection.
    """


class InvalidOrigin(InvalidHeader):
    """The ``Origin`` of the handshake request is not allowed.

    Args:
        origin: The ``Origin`` received, or :obj:`None` if there was none.
    """

    def __init__(self, origin: str | None) -> None:
        super().__init__("Origin", origin)
        self.args = (origin,)


class InvalidUpgrade(InvalidHeader):
    """The ``Upgrade`` or ``Connection`` header does not ask for WebSocket."""


class NegotiationError(InvalidHandshake):
    """Negotiating a subprotocol or an extension failed."""


class DuplicateParameter(NegotiationError):
    """An extension offer repeats a parameter.

    Args:
        name: Parameter name.

    Attributes:
        name: See Args.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"duplicate parameter: {self.name}"


class InvalidParameterName(NegotiationError):
    """An extension offer contains a parameter that the extension does not know.

    Args:
        name: Parameter name.

    Attributes:
        name: See Args.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"invalid parameter name: {self.name}"


class InvalidParameterValue(NegotiationError):
    """An extension parameter has a missing, empty or unacceptable value.

    Args:
        name: Parameter name.
        value: Parameter value; :obj:`None` means it is missing.

    Attributes:
        name: See Args.
        value: See Args.
    """

    def __init__(self, name: str, value: str | None) -> None:
        super().__init__(name, value)
        self.name = name
        self.value = value

    def __str__(self) -> str:
        if self.value is None:
            return f"missing value for parameter {self.name}"
        if self.value == "":
            return f"empty value for parameter {self.name}"
        return f"invalid value for parameter {self.name}: {self.value}"


# Data transfer


class ProtocolError(WebSocketException):
    """A frame, or a sequence of frames, violates RFC 6455.

    The Sans-I/O layer raises it when the application tries to send such a
    frame. Violations received from the peer never escape ``receive_data``:
    they fail the connection, and the I/O layer then raises
    :class:`ConnectionClosedError` with this exception as ``__cause__``.
    """


class PayloadTooBig(WebSocketException):
    """A frame or message is larger than ``max_size``.

    Args:
        size: Size of the payload in bytes, or :obj:`None` when it is not
            known yet (decompression stops as soon as the limit is crossed).
            A :class:`str` is accepted as the message, like websockets
            accepts it, with a :exc:`DeprecationWarning`.
        max_size: The limit in bytes.
        current_size: Bytes of the message already received before this
            frame; see :meth:`set_current_size`.

    Attributes:
        size: See Args.
        max_size: Limit for the whole message, in bytes.
        current_size: See Args.

    Raises:
        TypeError: If ``size`` is an :class:`int` or :obj:`None` and
            ``max_size`` is missing.
    """

    def __init__(
        self,
        size: int | str | None,
        max_size: int | None = None,
        current_size: int | None = None,
    ) -> None:
        super().__init__(size, max_size, current_size)
        self.message: str | None = None
        self.size: int | None = None
        self.max_size: int = 0
        self.current_size: int | None = None
        if isinstance(size, str):
            warnings.warn(
                "PayloadTooBig(message) is deprecated; change to PayloadTooBig(size, max_size)",
                DeprecationWarning,
                stacklevel=2,
            )
            self.message = size
            return
        if max_size is None:
            raise TypeError("PayloadTooBig() requires max_size")
        self.size = size
        self.max_size = max_size
        self.set_current_size(current_size)

    def __str__(self) -> str:
        if self.message is not None:
            return self.message
        text = "frame "
        if self.size is not None:
            text += f"with {self.size} bytes "
        if self.current_size is not None:
            text += f"after reading {self.current_size} bytes "
        return text + f"exceeds limit of {self.max_size} bytes"

    def set_current_size(self, current_size: int | None) -> None:
        """Record how much of the message was received before this frame.

        The frame parser only knows the limit left for the current frame;
        the message assembler knows what came before and calls this so that
        :attr:`max_size` and the message describe the whole message.

        Args:
            current_size: Bytes already received, or :obj:`None` to leave
                the exception unchanged.

        Raises:
            ValueError: If the current size was already set.
        """
        if current_size is None:
            return
        if self.current_size is not None:
            raise ValueError("current size is already set")
        self.max_size += current_size
        self.current_size = current_size


class TooManyFragments(WebSocketException):
    """A fragmented message has more frames than ``WEBSOCKETS_MAX_FRAGMENTS``.

    Bounding the number of fragments bounds the work of reassembly even when
    each fragment is tiny.

    Args:
        max_fragments: The limit.

    Attributes:
        max_fragments: See Args.
    """

    def __init__(self, max_fragments: int) -> None:
        super().__init__(max_fragments)
        self.max_fragments = max_fragments

    def __str__(self) -> str:
        return f"fragmented message exceeds limit of {self.max_fragments} frames"


class InvalidState(WebSocketException, AssertionError):
    """The operation is not allowed in the connection's current state.

    For example sending a data frame once the connection is no longer OPEN.
    It signals a bug in the caller, hence the :exc:`AssertionError` base.
    """


class ConcurrencyError(WebSocketException, RuntimeError):
    """Two coroutines or threads received, or sent, at the same time.

    Receiving concurrently with sending is fine; two receivers or two
    senders would interleave or steal each other's messages.
    """
