"""Sans-I/O server side: the opening handshake, then the connection."""

from __future__ import annotations

import base64
import binascii
import copy
import email.utils
import http
import re
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from . import _core
from .datastructures import Headers, HeadersLike, MultipleValuesError
from .exceptions import (
    ConcurrencyError,
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidMethod,
    InvalidOrigin,
    InvalidProtocol,
    InvalidUpgrade,
    NegotiationError,
)
from .extensions.base import Extension, ServerExtensionFactory
from .extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory
from .headers import (
    build_extension,
    check_upgrade,
    parse_all,
    parse_extension,
    parse_subprotocol,
    single_header,
)
from .http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS, Request, Response
from .protocol import CONNECTING, SERVER, Protocol, State
from .typing import LoggerLike, Origin, StatusLike, Subprotocol

__all__ = ["ServerProtocol"]

SelectSubprotocol = Callable[["ServerProtocol", Sequence[Subprotocol]], "Subprotocol | None"]


_date_cache: tuple[int, Callable[..., str], str] = (0, email.utils.formatdate, "")


def http_date() -> str:
    """The ``Date`` header value, formatted once per second rather than once
    per handshake (it showed in handshake profiles).

    A replaced ``email.utils.formatdate`` (tests patch it for a fixed date,
    as websockets' do) is called at once rather than after the second ends.
    """
    global _date_cache
    now, formatdate = int(time.time()), email.utils.formatdate
    if _date_cache[0] != now or _date_cache[1] is not formatdate:
        _date_cache = (now, formatdate, formatdate(now, usegmt=True))
    return _date_cache[2]


class ServerProtocol(Protocol):
    """Sans-I/O implementation of a WebSocket server connection.

    Args:
        origins: Acceptable ``Origin`` values: strings compared exactly,
            compiled regular expressions matched in full, and :obj:`None` to
            accept requests without the header. :obj:`None` accepts all.
        extensions: Server extension factories, in order of preference.
        subprotocols: Supported subprotocols, in order of preference.
        select_subprotocol: Picks the subprotocol instead of the default
            (the first of ``subprotocols`` that the client offers).
        state: Initial state.
        max_size: Largest incoming message in bytes; :obj:`None` for no limit.
        logger: Logger or logger name; defaults to ``logging.getLogger("websockets.server")``.
    """

    __slots__ = (
        "_accept_called",
        "_http",
        "_pending",
        "_request",
        "_upgrade",
        "available_extensions",
        "available_subprotocols",
        "origin",
        "origins",
        "server_header",
    )

    def __init__(
        self,
        *,
        origins: Sequence[Origin | re.Pattern[str] | None] | None = None,
        extensions: Sequence[ServerExtensionFactory] | None = None,
        subprotocols: Sequence[Subprotocol] | None = None,
        select_subprotocol: SelectSubprotocol | None = None,
        state: State = CONNECTING,
        max_size: int | tuple[int | None, int | None] | None = 2**20,
        logger: LoggerLike | str | None = None,
    ) -> None:
        super().__init__(side=SERVER, state=state, max_size=max_size, logger=logger)
        self.origins = origins
        self.available_extensions = extensions
        self.available_subprotocols = subprotocols
        if select_subprotocol is not None:
            # Bind the user's function as a method, as websockets does.
            self.select_subprotocol = select_subprotocol.__get__(self, self.__class__)  # type: ignore[method-assign]
        self._http: _core.HttpParser | None = _core.HttpParser(
            False, max_line=MAX_LINE_LENGTH, max_headers=MAX_NUM_HEADERS
        )
        self._pending = b""
        self._request: Request | None = None
        # The parsed request, its packed headers and what the core found in
        # them when it is a plain valid upgrade: see _upgrade_info().
        self._upgrade: tuple[Request, str, _Upgrade] | None = None
        self._accept_called = False
        self.server_header: str | None = None
        """``Server`` header of the error responses this protocol sends on
        its own (a request over a parser limit); the I/O layers set it."""

    # ------------------------------------------------------------ input

    def _receive_handshake(self, data: bytes) -> None:
        if self._eof_sent or self._request is not None:
            # Rejected: ignore until EOF. Waiting for accept(): buffer.
            if self._request is not None and not self._eof_sent:
                self._pending += data
            return
        assert self._http is not None
        try:
            # One call parses the request, checks it as an upgrade and
            # computes the accept value; the headers stay one string until
            # something reads them.
            parsed = self._http.feed_upgrade(data)
        except Exception as exc:
            self._handshake_parse_failed(exc)
            return
        if parsed is None:
            return
        method, path, protocol, packed, self._pending, upgrade = parsed
        # The parser's buffers would otherwise live as long as the connection.
        self._http = None
        headers = Headers._from_packed(packed)
        request = Request(path, headers, method=method, protocol=protocol)
        self._request = request
        if upgrade is not None:
            self._upgrade = (request, packed, cast("_Upgrade", upgrade))
        if self.debug:
            self.logger.debug("< %s %s %s", method, path, protocol)
            for name, value in headers.raw_items():
                self.logger.debug("< %s: %s", name, value)
        self.events.append(request)

    def _receive_handshake_eof(self) -> None:
        if self._http is not None and not self._eof_sent:
            try:
                self._http.feed_eof()
            except Exception as exc:
                self._handshake_parse_failed(exc)
        self._state = State.CLOSED

    def _handshake_parse_failed(self, exc: Exception) -> None:
        """Records why the request could not be parsed, answers with an HTTP
        error when the request was HTTP but broke a limit, and closes.

        A request refused with a status (a limit such as RequestLineTooLong,
        or a body) is its own ``handshake_exc``, as in websockets; anything
        that isn't HTTP becomes InvalidMessage with the parse error as cause.
        """
        status = getattr(exc, "status", None)
        if status is not None and isinstance(exc, InvalidHandshake):
            self.handshake_exc = exc
        else:
            self.handshake_exc = InvalidMessage("did not receive a valid HTTP request")
            self.handshake_exc.__cause__ = exc
        if self.debug:
            # websockets' records: the client's doing, worth DEBUG, never
            # ERROR, with the parser's exception (the cause) attached.
            if status == 414:
                what = "request line too long"
            elif status == 431:
                what = "header fields too large"
            else:
                what = "no valid HTTP request"
            self.logger.debug("! %s", what, exc_info=exc)
        if status is not None and not self._eof_sent:
            response = self.reject(status, f"Failed to open a WebSocket connection: {exc}.\n")
            if self.server_header is not None:
                response.headers["Server"] = self.server_header
            self.send_response(response)
        if not self._eof_sent:
            self._send_eof()

    # -------------------------------------------------------- handshake

    def accept(self, request: Request) -> Response:
        """Builds the handshake response to ``request``.

        Validates the request and negotiates extensions and subprotocol.
        On failure, the response is an HTTP error and :attr:`handshake_exc`
        says why. Send the response with :meth:`send_response`.
        """
        return self._accept(request, None)

    def _accept(self, request: Request, server_header: str | None) -> Response:
        """:meth:`accept`, and a 101 that ends with ``Server: server_header``
        when that is not :obj:`None`, as the servers send it.

        For the request this protocol parsed, when the core found it a plain
        valid upgrade and nothing changed it since, the checks are not run
        again and the core builds the 101, headers and bytes, in one call;
        anything else (an invalid request above all) takes the full path.

        Raises:
            InvalidHeaderValue: If the subprotocol or ``server_header`` is
                not a valid header value.
        """
        self._accept_called = True
        try:
            upgrade = self._upgrade_info(request)
            if upgrade is None:
                (
                    accept_header,
                    extensions_header,
                    protocol_header,
                ) = self.process_request(request)
            else:
                accept_header, extensions_header, protocol_header = self._process_upgrade(request, upgrade)
        except _Reject as exc:
            self.handshake_exc = exc.cause
            if self.debug:
                self.logger.debug("! invalid %s", _REJECTED.get(type(exc.cause), "handshake"), exc_info=exc.cause)
            response = self.reject(exc.status, f"Failed to open a WebSocket connection: {exc.cause}.\n")
            for name, value in exc.headers:
                response.headers[name] = value
            return response
        except InvalidOrigin as exc:
            self.handshake_exc = exc
            if self.debug:
                self.logger.debug("! invalid origin", exc_info=True)
            return self.reject(http.HTTPStatus.FORBIDDEN, f"Failed to open a WebSocket connection: {exc}.\n")
        except InvalidUpgrade as exc:
            self.handshake_exc = exc
            if self.debug:
                self.logger.debug("! invalid upgrade", exc_info=True)
            response = self.reject(
                http.HTTPStatus.UPGRADE_REQUIRED,
                f"Failed to open a WebSocket connection: {exc}.\n\n"
                "You cannot access a WebSocket server directly with a browser. You need a WebSocket client.\n",
            )
            response.headers["Upgrade"] = "websocket"
            return response
        except InvalidHandshake as exc:
            self.handshake_exc = exc
            if self.debug:
                self.logger.debug("! invalid handshake", exc_info=True)
            cause = f"; {exc.__cause__}" if exc.__cause__ is not None else ""
            return self.reject(http.HTTPStatus.BAD_REQUEST, f"Failed to open a WebSocket connection: {exc}{cause}.\n")
        except Exception as exc:
            self.handshake_exc = exc
            self.logger.error("opening handshake failed", exc_info=True)
            return self.reject(
                http.HTTPStatus.INTERNAL_SERVER_ERROR,
                "Failed to open a WebSocket connection.\nSee server log for more information.\n",
            )

        extra = [] if server_header is None else [("Server", server_header)]
        built = _core.upgrade_response(accept_header, http_date(), extensions_header, protocol_header, extra)
        if built is not None:
            head, packed = built
            response = Response(101, "Switching Protocols", Headers._from_packed(packed))
            response._wire = (packed, head)
            return response
        # The core refused a value: built here, so that the error is the
        # one Headers raises. Every value is valid by construction (the
        # extensions header is built from tokens) except the subprotocol,
        # which user code chose, and the Server header.
        headers = Headers._trusted(
            [
                ("Date", http_date()),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_header),
            ]
        )
        if extensions_header is not None:
            headers.set_insecure("Sec-WebSocket-Extensions", extensions_header)
        if protocol_header is not None:
            headers["Sec-WebSocket-Protocol"] = protocol_header
        if server_header is not None:
            headers["Server"] = server_header
        return Response(101, "Switching Protocols", headers)

    def _upgrade_info(self, request: Request) -> _Upgrade | None:
        """What the core found in ``request`` when it parsed it, if that
        still holds: the request is the one parsed, its method, version and
        headers are unchanged, and the checks are this class's own (a
        subclass or an instance that replaces one gets the full path)."""
        upgrade = self._upgrade
        if (
            upgrade is None
            or upgrade[0] is not request
            or request.headers._source is not upgrade[1]
            or request.method != "GET"
            or request.protocol != "HTTP/1.1"
            or getattr(self.process_request, "__func__", None) is not _PROCESS_REQUEST
            or getattr(self.process_origin, "__func__", None) is not _PROCESS_ORIGIN
            or getattr(self.process_subprotocol, "__func__", None) is not _PROCESS_SUBPROTOCOL
        ):
            return None
        return upgrade[2]

    def _process_upgrade(self, request: Request, upgrade: _Upgrade) -> tuple[str, str | None, str | None]:
        """:meth:`process_request` for a request the core checked already:
        the origin, extensions and subprotocol are negotiated in the same
        order and with the same errors, from what the core extracted."""
        accept_header, origin, offers, subprotocols = upgrade
        self.origin = self._check_origin(origin)
        if getattr(self.process_extensions, "__func__", None) is _PROCESS_EXTENSIONS:
            extensions_header, self.extensions = self._negotiate(offers)
        else:
            extensions_header, self.extensions = self.process_extensions(request.headers)
        protocol_header = self.subprotocol = self.select_subprotocol(subprotocols)
        return accept_header, extensions_header, protocol_header

    def _negotiate(self, offers: tuple[str, ...]) -> tuple[str | None, list[Extension]]:
        """:meth:`process_extensions` for the ``Sec-WebSocket-Extensions``
        values ``offers``, from a table when the factory is permessage-deflate's
        own: the answer then depends on the offer and the factory's settings
        only, and clients send a handful of offers (a browser, always the
        same one). Each connection gets copies of the extensions.

        :meth:`process_extensions` reads the offers only: it gets them
        without the request's other headers, which stay packed."""
        factories = self.available_extensions
        if not offers or not factories:
            return None, []
        factory = factories[0]
        if len(factories) != 1 or type(factory) is not ServerPerMessageDeflateFactory:
            return ServerProtocol.process_extensions(self, _offers_only(offers))
        table = _NEGOTIATED.get(factory)
        if table is None:
            table = _NEGOTIATED[factory] = {}
        key = (
            offers,
            factory.server_no_context_takeover,
            factory.client_no_context_takeover,
            factory.server_max_window_bits,
            factory.client_max_window_bits,
            factory.require_client_max_window_bits,
            id(factory.compress_settings),
        )
        known = table.get(key)
        if known is None:
            known = ServerProtocol.process_extensions(self, _offers_only(offers))
            if len(table) < _NEGOTIATED_LIMIT:
                table[key] = known
        header, extensions = known
        return header, [_copy_extension(extension) for extension in extensions]

    def process_request(self, request: Request) -> tuple[str, str | None, str | None]:
        """Validates a handshake request and negotiates what it offers.

        Returns:
            ``Sec-WebSocket-Accept``, ``Sec-WebSocket-Extensions`` and
            ``Sec-WebSocket-Protocol`` values for the response.

        Raises:
            InvalidHandshake: If the request is not a valid handshake.
        """
        # RFC 6455 section 4.2.1, item 1: a GET over HTTP/1.1 or later. The
        # causes are InvalidMethod and InvalidProtocol, as in websockets, so
        # that handshake_exc tells applications which rule was broken.
        if request.method != "GET":
            cause: InvalidHandshake = InvalidMethod(request.method)
            raise _Reject(http.HTTPStatus.METHOD_NOT_ALLOWED, cause, [("Allow", "GET")])
        if request.protocol != "HTTP/1.1":
            cause = InvalidProtocol(request.protocol)
            raise _Reject(http.HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, cause)
        headers = request.headers

        # RFC 6455 section 4.2.1, item 2, and RFC 9112 section 3.2: a request
        # without Host, or with several, gets 400. websockets does not check;
        # ws:// URIs always have an authority, so an empty value is refused too.
        host = single_header(headers, "Host")
        if not host:
            raise InvalidHeaderValue("Host", host)
        check_upgrade(headers)
        key = single_header(headers, "Sec-WebSocket-Key")
        if not _core.is_valid_key(key):
            raise InvalidHeaderValue("Sec-WebSocket-Key", key) from _base64_error(key)

        version = single_header(headers, "Sec-WebSocket-Version")
        if version != "13":
            # RFC 6455 section 4.2.2: answer 426 with the version we speak.
            cause = InvalidHeaderValue("Sec-WebSocket-Version", version)
            raise _Reject(http.HTTPStatus.UPGRADE_REQUIRED, cause, [("Sec-WebSocket-Version", "13")])

        self.origin = self.process_origin(headers)
        extensions_header, self.extensions = self.process_extensions(headers)
        protocol_header = self.subprotocol = self.process_subprotocol(headers)
        return _core.accept_key(key), extensions_header, protocol_header

    def process_origin(self, headers: Headers) -> Origin | None:
        """Checks the ``Origin`` header against :attr:`origins`.

        Raises:
            InvalidOrigin: If the origin is not acceptable.
        """
        try:
            origin = headers.get("Origin")
        except MultipleValuesError:
            raise InvalidHeader("Origin", "multiple values") from None
        return self._check_origin(origin)

    def _check_origin(self, origin: str | None) -> Origin | None:
        """Matches one ``Origin`` value, or its absence, against :attr:`origins`.

        Raises:
            InvalidOrigin: If the origin is not acceptable.
        """
        if self.origins is not None:
            for allowed in self.origins:
                if allowed is None:
                    if origin is None:
                        break
                elif isinstance(allowed, re.Pattern):
                    if origin is not None and allowed.fullmatch(origin):
                        break
                elif origin == allowed:
                    break
            else:
                raise InvalidOrigin(origin)
        return cast("Origin | None", origin)

    def process_extensions(self, headers: Headers) -> tuple[str | None, list[Extension]]:
        """Accepts the client's extension offers that a factory agrees to.

        Offers are considered in the client's order; each extension name is
        accepted at most once, and an offer a factory declines (with
        :exc:`NegotiationError`) is skipped (RFC 6455 section 9.1).
        """
        response_params: list[tuple[str, list[tuple[str, str | None]]]] = []
        accepted: list[Extension] = []
        header_values = headers.get_all("Sec-WebSocket-Extensions")
        if header_values and self.available_extensions:
            offers = parse_all(headers, "Sec-WebSocket-Extensions", parse_extension)
            for name, params in offers:
                # The docstring's promise: a second offer of an extension
                # already accepted is skipped here rather than left to each
                # factory, since running an extension twice would corrupt
                # every frame.
                if any(extension.name == name for extension in accepted):
                    continue
                for factory in self.available_extensions:
                    if factory.name != name:
                        continue
                    try:
                        params_out, extension = factory.process_request_params(params, accepted)
                    except NegotiationError:
                        continue
                    response_params.append((name, list(params_out)))
                    accepted.append(extension)
                    break
        header = build_extension(response_params) if response_params else None  # type: ignore[arg-type]
        return header, accepted

    def process_subprotocol(self, headers: Headers) -> Subprotocol | None:
        """Selects the subprotocol among the client's offers.

        Raises:
            NegotiationError: If the server supports subprotocols and none
                of the client's offers is acceptable.
        """
        offered = parse_all(headers, "Sec-WebSocket-Protocol", parse_subprotocol)
        return self.select_subprotocol(offered)

    def select_subprotocol(self, subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        """Default selection: the first of the server's subprotocols, in its
        order of preference, that the client offered.

        Raises:
            NegotiationError: If the server has subprotocols and none match.
        """
        if not self.available_subprotocols:
            return None
        if not subprotocols:
            raise NegotiationError("missing subprotocol")
        for subprotocol in self.available_subprotocols:
            if subprotocol in subprotocols:
                return subprotocol
        raise NegotiationError("invalid subprotocol; expected one of " + ", ".join(self.available_subprotocols))

    def reject(self, status: StatusLike, text: str) -> Response:
        """Builds a plain-text HTTP error response.

        Args:
            status: HTTP status code.
            text: Body, sent as UTF-8 text.
        """
        status = http.HTTPStatus(status)
        body = text.encode()
        headers = Headers(
            [
                ("Date", http_date()),
                ("Connection", "close"),
                ("Content-Length", str(len(body))),
                ("Content-Type", "text/plain; charset=utf-8"),
            ]
        )
        return Response(status.value, status.phrase, headers, body)

    def send_response(self, response: Response) -> None:
        """Sends the handshake response.

        101 opens the connection (and processes frames the client sent early);
        anything else closes it.
        """
        if self.debug:
            self.logger.debug("> HTTP/1.1 %d %s", response.status_code, response.reason_phrase)
            for name, value in response.headers.raw_items():
                self.logger.debug("> %s: %s", name, value)
            if response.body:
                self.logger.debug("> [body] (%d bytes)", len(response.body))
        self.writes.append(response.serialize())
        # What the fast path kept for the handshake would otherwise live as
        # long as the connection (the 101's bytes, the core's findings).
        self._upgrade = None
        if getattr(response, "_wire", None) is not None:
            response._wire = None
        if response.status_code == 101:
            assert self._state is CONNECTING
            self._open()
            # The handshake is over: its headers are now seldom read.
            response.headers._pack()
            if self._request is not None:
                self._request.headers._pack()
            self.logger.info("connection open")
            pending, self._pending = self._pending, b""
            if pending:
                self.receive_data(pending)
        else:
            if self.handshake_exc is None:
                from .exceptions import InvalidStatus

                self.handshake_exc = InvalidStatus(response)
            # As websockets: "rejected" once accept() refused the request,
            # "HTTP response sent" for a response of process_request.
            self.logger.info(
                "connection rejected (%d %s)" if self._accept_called else "HTTP response sent (%d %s)",
                response.status_code,
                response.reason_phrase,
            )
            if not self._eof_sent:
                self._send_eof()


def connection_selector(
    select_subprotocol: Callable[[Any, Sequence[Subprotocol]], Subprotocol | None] | None, holder: list[Any]
) -> SelectSubprotocol | None:
    """``select_subprotocol`` as the servers take it, ``f(connection,
    offered)`` as in websockets, adapted to the Sans-I/O protocol, which
    calls it with itself: the connection is ``holder[0]``, put there by the
    server once the connection exists."""
    if select_subprotocol is None:
        return None
    select = select_subprotocol

    def protocol_select(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        return select(holder[0], offered)

    return protocol_select


class ServerConnection(ServerProtocol):
    """websockets' deprecated name of :class:`ServerProtocol`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn("ServerConnection was renamed to ServerProtocol", DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)


_Upgrade = tuple[str, str | None, tuple[str, ...], list[Subprotocol]]
"""What the core extracts from a plain valid upgrade request: the accept
value, the origin, the extension offers and the subprotocols offered."""

_PROCESS_REQUEST = ServerProtocol.process_request
_PROCESS_ORIGIN = ServerProtocol.process_origin
_PROCESS_EXTENSIONS = ServerProtocol.process_extensions
_PROCESS_SUBPROTOCOL = ServerProtocol.process_subprotocol

_NEGOTIATED: weakref.WeakKeyDictionary[
    ServerExtensionFactory, dict[tuple[Any, ...], tuple[str | None, list[Extension]]]
] = weakref.WeakKeyDictionary()
"""Negotiations of permessage-deflate per factory and offer, forgotten with
the factory."""

_NEGOTIATED_LIMIT = 64
"""Distinct offers kept per factory: a client that sends a new one each
time must not grow the table."""


def _offers_only(offers: tuple[str, ...]) -> Headers:
    """Headers with the ``Sec-WebSocket-Extensions`` values ``offers`` only."""
    return Headers._trusted([("Sec-WebSocket-Extensions", offer) for offer in offers])


def _copy_extension(extension: Extension) -> Extension:
    """A copy of a negotiated extension that has not run yet (its state is
    its settings): what :func:`copy.copy` makes, in a third of the time for
    permessage-deflate."""
    if type(extension) is PerMessageDeflate:
        clone = object.__new__(PerMessageDeflate)
        clone.__dict__.update(extension.__dict__)
        return clone
    return copy.copy(extension)


def _base64_error(key: str) -> Exception | None:
    """Why ``key`` is not base64, as Python's decoder says it ("Only base64
    data is allowed"), for the cause of the error, as websockets reports it;
    :obj:`None` for base64 of the wrong length. Runs for bad keys only."""
    try:
        base64.b64decode(key.encode(), validate=True)
    except (binascii.Error, ValueError) as exc:
        return exc
    return None


_REJECTED: dict[type[Exception], str] = {InvalidMethod: "method", InvalidProtocol: "protocol"}
"""What the debug log calls a request refused with a specific status."""


class _Reject(InvalidHandshake):
    """A request refused with a specific status and headers (405, 505, 426
    for the WebSocket version) rather than the generic 400."""

    def __init__(
        self, status: http.HTTPStatus, cause: InvalidHandshake, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(str(cause))
        self.status = status
        self.cause = cause
        self.headers = headers


# ------------------------------------------------- helpers for the I/O layers
# The asyncio and threading servers share these so that both build the same
# 101 response and frame broadcasts the same way.


COMPACT_INTERVAL = 1.0
"""Seconds between sweeps that free the compression state of idle
connections: idle for one to two sweeps, a connection keeps only its last
window of bytes (4 KiB each way with the default 12-bit windows) instead of
zlib's full state."""


def compact_idle(connections: Iterable[Any]) -> int:
    """Frees the compression state of the connections that exchanged no
    message since the previous sweep, then returns the freed heap to the
    system; returns how many connections gave state back.

    Both servers run this from one timer for all their connections rather
    than one per connection. The core keeps the last window of bytes, so a
    connection that wakes up resumes where it was.
    """
    freed = sum(1 for connection in connections if connection._compact_if_idle())
    if freed:
        _core.release_memory()
    return freed


def add_response_headers(
    response: Response,
    server_header: str | None,
    extra_headers: HeadersLike | Callable[[Any, Request], HeadersLike] | None,
    connection: Any,
    request: Request,
) -> None:
    """Sets ``Server`` then ``extra_headers`` on a 101 response.

    Each replaces headers of the same name, so that one ``Server`` header is
    sent even when ``extra_headers`` carries its own. A callable
    ``extra_headers`` is called as ``f(connection, request)``.
    """
    if server_header is not None:
        response.headers["Server"] = server_header
    extra = extra_headers
    if extra is None:
        return
    if callable(extra):
        extra = extra(connection, request)
    headers = extra if isinstance(extra, Headers) else Headers(extra)
    for name in set(headers.keys()):
        # Headers raises KeyError when deleting an absent name.
        if name in response.headers:
            del response.headers[name]
    for name, value in headers.raw_items():
        response.headers[name] = value


def broadcast_arguments(
    connections: Iterable[Any] | None, websockets: Iterable[Any] | None, message: Any, text: bool | None
) -> tuple[Iterable[Any], int, Any]:
    """The connections, opcode and payload of a ``broadcast()`` call, which
    takes its connections under either name.

    Raises:
        TypeError: If no connections are given, or if ``message`` is neither
            a str nor bytes-like.
    """
    if websockets is not None:
        connections = websockets
    if connections is None:
        raise TypeError("broadcast() missing the connections to send to")
    return (connections, *_broadcast_payload(message, text))


def _broadcast_payload(message: Any, text: bool | None) -> tuple[int, Any]:
    if isinstance(message, str):
        if text is False:
            return 2, message.encode()
        return 1, message
    if isinstance(message, (bytes, bytearray, memoryview)):
        return (1 if text else 2), message
    raise TypeError("data must be str or bytes")


def broadcast_frame_key(protocol: Protocol) -> Any:
    """Which connections can share one encoded frame.

    Server connections frame identically when nothing transforms their
    frames, and also when permessage-deflate keeps no context between their
    messages and uses the same window and settings: those share the key
    returned here. Clients mask each frame, Python extensions run per
    connection, and connections with context takeover compress against their
    own history: those return :obj:`None` and need their own frame.
    """
    if protocol.side is not SERVER or protocol._core is None or protocol._py_extensions:
        return None
    extensions = protocol.extensions
    if not extensions:
        return ()
    # Exact type: a subclass may override encode(), which the core bypasses.
    if len(extensions) == 1 and type(extensions[0]) is PerMessageDeflate:
        deflate = extensions[0]
        if deflate.local_no_context_takeover:
            # Window, level and memLevel, as the core compresses with them.
            return (deflate.local_max_window_bits, *deflate.core_settings()[4:])
    return None


def shared_broadcast_frame(protocol: Protocol, opcode: int, payload: Any, shared: dict[Any, bytes]) -> bytes | None:
    """The frame this connection can share with others in one broadcast,
    encoded on first use and kept in ``shared``; :obj:`None` when the
    connection needs its own frame (always so before it opened, and with
    extensions written in Python)."""
    key = broadcast_frame_key(protocol)
    if key is None:
        return None
    frame = shared.get(key)
    if frame is None:
        frame = shared[key] = encode_broadcast_frame(key, opcode, payload)
    return frame


def broadcast_skipped(
    connection: Any, error: BaseException, raise_exceptions: bool, exceptions: list[Exception]
) -> None:
    """Records a connection that a broadcast could not reach: collected for
    the final ``ExceptionGroup``, or logged without a traceback."""
    if raise_exceptions:
        if isinstance(error, ConcurrencyError):
            exceptions.append(error)
        else:
            wrapped = RuntimeError("failed to write message")
            wrapped.__cause__ = error
            exceptions.append(wrapped)
    elif isinstance(error, ConcurrencyError):
        connection.logger.warning("skipped broadcast: %s", error)
    else:
        connection.logger.warning(
            "skipped broadcast: failed to write message: %s",
            traceback.format_exception_only(type(error), error)[0].strip(),
        )


def encode_broadcast_frame(key: Any, opcode: int, payload: Any) -> bytes:
    """Encodes the frame that every connection with ``key`` can send."""
    if not key:
        return _core.encode_frame(opcode, payload)
    window_bits, level, mem_level = key
    compressed = _core.deflate_message(payload, window_bits, level, mem_level)
    return _core.encode_frame(opcode, compressed, True, 0b100)
