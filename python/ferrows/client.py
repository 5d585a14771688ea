"""Sans-I/O client side: the opening handshake, then the connection; plus
the reconnection policy shared by the asyncio and threading clients."""

from __future__ import annotations

import os
import random
import urllib.parse
import urllib.request
import warnings
from collections.abc import Generator, Sequence
from typing import Any, cast

from . import _core
from .datastructures import Headers, HeadersLike
from .exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidStatus,
    NegotiationError,
    SecurityError,
    StatusLineTooLong,
)
from .extensions.base import ClientExtensionFactory, Extension
from .headers import (
    build_authorization_basic,
    build_extension,
    build_host,
    build_subprotocol,
    check_upgrade,
    parse_all,
    parse_extension,
    parse_subprotocol,
    single_header,
)
from .http11 import MAX_BODY_SIZE, MAX_LINE_LENGTH, MAX_NUM_HEADERS, Request, Response
from .protocol import CLIENT, CONNECTING, Protocol, State
from .typing import LoggerLike, Origin, Subprotocol
from .uri import WebSocketURI, parse_uri
from .utils import generate_key

__all__ = ["ClientProtocol"]


class ClientProtocol(Protocol):
    """Sans-I/O implementation of a WebSocket client connection.

    Args:
        uri: URI of the server, as a :class:`~ferrows.uri.WebSocketURI` or a
            string.
        origin: ``Origin`` header to send.
        extensions: Client extension factories, offered in this order.
        subprotocols: Subprotocols to offer, in order of preference.
        state: Initial state.
        max_size: Largest incoming message in bytes; :obj:`None` for no limit.
        logger: Logger or logger name; defaults to ``logging.getLogger("websockets.client")``.
    """

    __slots__ = ("_http", "available_extensions", "available_subprotocols", "key", "origin", "uri")

    def __init__(
        self,
        uri: WebSocketURI | str,
        *,
        origin: Origin | None = None,
        extensions: Sequence[ClientExtensionFactory] | None = None,
        subprotocols: Sequence[Subprotocol] | None = None,
        state: State = CONNECTING,
        max_size: int | tuple[int | None, int | None] | None = 2**20,
        logger: LoggerLike | str | None = None,
    ) -> None:
        super().__init__(side=CLIENT, state=state, max_size=max_size, logger=logger)
        self.uri = parse_uri(uri) if isinstance(uri, str) else uri
        self.origin = origin
        self.available_extensions = extensions
        self.available_subprotocols = subprotocols
        self.key = generate_key()
        self._http: _core.HttpParser | None = _core.HttpParser(
            True, max_line=MAX_LINE_LENGTH, max_headers=MAX_NUM_HEADERS, max_body=MAX_BODY_SIZE
        )

    def connect(self) -> Request:
        """Builds the handshake request; send it with :meth:`send_request`."""
        headers = Headers()
        headers["Host"] = build_host(self.uri.host, self.uri.port, self.uri.secure)
        if self.uri.user_info:
            headers["Authorization"] = build_authorization_basic(*self.uri.user_info)
        if self.origin is not None:
            headers["Origin"] = self.origin
        headers["Upgrade"] = "websocket"
        headers["Connection"] = "Upgrade"
        headers["Sec-WebSocket-Key"] = self.key
        headers["Sec-WebSocket-Version"] = "13"
        if self.available_extensions is not None:
            headers["Sec-WebSocket-Extensions"] = build_extension(
                [(factory.name, factory.get_request_params()) for factory in self.available_extensions]
            )
        if self.available_subprotocols is not None:
            headers["Sec-WebSocket-Protocol"] = build_subprotocol(self.available_subprotocols)
        return Request(self.uri.resource_name, headers)

    def send_request(self, request: Request) -> None:
        """Sends the handshake request."""
        if self.debug:
            self.logger.debug("> GET %s HTTP/1.1", request.path)
            for name, value in request.headers.raw_items():
                self.logger.debug("> %s: %s", name, value)
        self.writes.append(request.serialize())
        # Sent: its headers are now seldom read (see Headers._pack()).
        request.headers._pack()

    # ------------------------------------------------------------ input

    def _receive_handshake(self, data: bytes) -> None:
        if self._eof_sent:
            return  # handshake failed: ignore until EOF
        assert self._http is not None
        try:
            parsed = self._http.feed(data)
        except StatusLineTooLong as exc:
            # Its own handshake_exc, as in websockets; other errors are the
            # cause of an InvalidMessage.
            self._handshake_failed(exc, None)
            return
        except Exception as exc:
            self._handshake_failed(InvalidMessage("did not receive a valid HTTP response"), exc)
            return
        if parsed is not None:
            self._handshake_received(cast("tuple[str, int, str, list[tuple[str, str]], bytes]", parsed))

    def _receive_handshake_eof(self) -> None:
        if not self._eof_sent and self._http is not None:
            try:
                parsed = self._http.feed_eof()
            except Exception as exc:
                self._handshake_failed(InvalidMessage("did not receive a valid HTTP response"), exc)
            else:
                if parsed is not None:
                    self._handshake_received(parsed)
        self._state = State.CLOSED
        if self._core is not None:
            self._dispatch(self._core.receive_eof())

    def _handshake_received(self, parsed: tuple[str, int, str, list[tuple[str, str]], bytes]) -> None:
        _, status, reason, raw_headers, body = parsed
        response = Response(status, reason, Headers._trusted(raw_headers), body)
        if self.debug:
            self.logger.debug("< HTTP/1.1 %d %s", status, reason)
            for name, value in raw_headers:
                self.logger.debug("< %s: %s", name, value)
            if body:
                self.logger.debug("< [body] (%d bytes)", len(body))
        try:
            self.process_response(response)
        except InvalidHandshake as exc:
            self.events.append(response)
            self._handshake_failed(exc, None)
            return
        assert self._http is not None
        remaining = self._http.take_remaining()
        # The parser's buffers would otherwise live as long as the connection.
        self._http = None
        self._open()
        response.headers._pack()
        self.events.append(response)
        if remaining:
            self.receive_data(remaining)

    def _handshake_failed(self, exc: Exception, cause: Exception | None) -> None:
        if cause is not None:
            exc.__cause__ = cause
        self.handshake_exc = exc
        if self.debug:
            self.logger.debug("! opening handshake failed", exc_info=exc)
        if not self._eof_sent:
            self._send_eof()

    def process_response(self, response: Response) -> None:
        """Validates a handshake response and applies what it negotiated.

        Raises:
            InvalidHandshake: If the response is not a valid handshake.
        """
        if response.status_code != 101:
            raise InvalidStatus(response)
        headers = response.headers

        check_upgrade(headers)
        accept = single_header(headers, "Sec-WebSocket-Accept")
        if accept != _core.accept_key(self.key):
            raise InvalidHeaderValue("Sec-WebSocket-Accept", accept)

        self.extensions = self.process_extensions(headers)
        self.subprotocol = self.process_subprotocol(headers)

    def process_extensions(self, headers: Headers) -> list[Extension]:
        """Applies the extensions the server accepted.

        Raises:
            NegotiationError: If the server accepted something not offered,
                or with parameters the factory refuses.
        """
        accepted: list[Extension] = []
        values = headers.get_all("Sec-WebSocket-Extensions")
        if values:
            if self.available_extensions is None:
                raise NegotiationError("no extensions supported")
            for name, params in parse_all(headers, "Sec-WebSocket-Extensions", parse_extension):
                refused: NegotiationError | None = None
                for factory in self.available_extensions:
                    if factory.name != name:
                        continue
                    try:
                        extension = factory.process_response_params(params, accepted)
                    except NegotiationError as exc:
                        refused = exc
                        continue
                    accepted.append(extension)
                    break
                else:
                    # websockets' words, then why our factory refused, if it
                    # did: which parameter was missing or wrong.
                    message = f"Unsupported extension: name = {name}, params = {params}"
                    if refused is not None and str(refused):
                        message = f"{message}: {refused}"
                    raise NegotiationError(message)
        return accepted

    def process_subprotocol(self, headers: Headers) -> Subprotocol | None:
        """Checks the subprotocol the server selected.

        Raises:
            NegotiationError: If it was not offered, or several came back.
        """
        values = headers.get_all("Sec-WebSocket-Protocol")
        if not values:
            return None
        if self.available_subprotocols is None:
            raise NegotiationError("no subprotocols supported")
        parsed = parse_all(headers, "Sec-WebSocket-Protocol", parse_subprotocol)
        if len(parsed) > 1:
            raise InvalidHeader("Sec-WebSocket-Protocol", f"multiple values: {', '.join(parsed)}")
        # parse_subprotocol tolerates empty list elements, so an empty
        # header parses to []: refuse it rather than fail with IndexError.
        if not parsed:
            raise InvalidHeader("Sec-WebSocket-Protocol", "")
        subprotocol = parsed[0]
        if subprotocol not in self.available_subprotocols:
            raise NegotiationError(f"unsupported subprotocol: {subprotocol}")
        return subprotocol


# ------------------------------------------------------------ reconnection

BACKOFF_INITIAL_DELAY = float(os.environ.get("WEBSOCKETS_BACKOFF_INITIAL_DELAY", "5"))
BACKOFF_MIN_DELAY = float(os.environ.get("WEBSOCKETS_BACKOFF_MIN_DELAY", "3.1"))
BACKOFF_MAX_DELAY = float(os.environ.get("WEBSOCKETS_BACKOFF_MAX_DELAY", "90.0"))
BACKOFF_FACTOR = float(os.environ.get("WEBSOCKETS_BACKOFF_FACTOR", "1.618"))


def backoff(
    initial_delay: float = BACKOFF_INITIAL_DELAY,
    min_delay: float = BACKOFF_MIN_DELAY,
    max_delay: float = BACKOFF_MAX_DELAY,
    factor: float = BACKOFF_FACTOR,
) -> Generator[float]:
    """Delays between reconnection attempts: exponential, with jitter.

    The first delay is random below ``initial_delay`` so that many clients
    cut off at once by a server restart do not all come back at once; then
    ``min_delay`` grows by ``factor`` up to ``max_delay``.
    """
    yield random.random() * initial_delay
    delay = min_delay
    while delay < max_delay:
        yield delay
        delay *= factor
    while True:
        yield max_delay


def process_exception(exc: Exception) -> Exception | None:
    """Decides whether a failed connection attempt is worth retrying.

    Returns :obj:`None` to retry: network errors, timeouts, a server that
    closed the connection during the handshake, and 500, 502, 503 and 504
    answers, which are usually temporary. Otherwise returns the exception
    to raise.
    """
    if isinstance(exc, (OSError, TimeoutError)):
        return None
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError):
        return None
    if isinstance(exc, InvalidStatus) and exc.response.status_code in (500, 502, 503, 504):
        return None
    return exc


# ------------------------------------------------- helpers for the I/O layers
# The asyncio and threading clients share these so that both follow
# redirects and read proxy settings the same way.

MAX_REDIRECTS = int(os.environ.get("WEBSOCKETS_MAX_REDIRECTS", "10"))
"""Most redirects followed while opening one connection."""

REDIRECT_STATUSES = (300, 301, 302, 303, 307, 308)


def process_redirect(
    wsuri: WebSocketURI,
    exc: InvalidStatus,
    additional_headers: HeadersLike | None,
    *,
    target: str | None = None,
) -> tuple[WebSocketURI, HeadersLike | None, str]:
    """Follows a 3xx answer to the opening handshake.

    Args:
        wsuri: URI that answered ``exc``.
        exc: The handshake failure carrying the response.
        additional_headers: Extra request headers in use.
        target: What fixes where the connection goes, if anything: ``"sock"``
            (a socket connected already: no redirect can be followed),
            ``"unix"`` (a Unix socket) or ``"host"`` (an explicit host or
            port): with these two, only a redirect to the same origin.

    Returns:
        The new URI, the request headers to use there (``Authorization``,
        ``Cookie`` and ``Proxy-Authorization`` dropped for another origin,
        so that credentials do not leak), and the absolute location.

    Raises:
        InvalidStatus: ``exc`` itself, if it is not a redirect.
        SecurityError: For a redirect from ``wss://`` to ``ws://``.
        ValueError: For a redirect that ``target`` rules out.
    """
    response = exc.response
    if response.status_code not in REDIRECT_STATUSES or "Location" not in response.headers:
        raise exc
    scheme = "wss" if wsuri.secure else "ws"
    host = f"[{wsuri.host}]" if ":" in wsuri.host else wsuri.host
    netloc = host if wsuri.port == (443 if wsuri.secure else 80) else f"{host}:{wsuri.port}"
    location = urllib.parse.urljoin(f"{scheme}://{netloc}{wsuri.resource_name}", response.headers["Location"])
    if target == "sock":
        raise ValueError(f"cannot follow redirect to {location} with a preexisting socket")
    if wsuri.user_info is not None:
        # The URI's credentials survive a same-origin relative redirect, as
        # urljoin() on the original URI would have it; the returned location,
        # which gets logged, goes without them.
        user_info = ":".join(urllib.parse.quote(part, safe="") for part in wsuri.user_info)
        new = parse_uri(
            urllib.parse.urljoin(
                f"{scheme}://{user_info}@{host}:{wsuri.port}{wsuri.resource_name}", response.headers["Location"]
            )
        )
    else:
        new = parse_uri(location)
    if wsuri.secure and not new.secure:
        raise SecurityError(f"cannot follow redirect to non-secure URI {location}")
    cross_origin = (new.secure, new.host, new.port) != (wsuri.secure, wsuri.host, wsuri.port)
    if cross_origin and target in ("unix", "host"):
        fixed_by = "a Unix socket" if target == "unix" else "an explicit host or port"
        raise ValueError(f"cannot follow cross-origin redirect to {location} with {fixed_by}")
    if cross_origin and additional_headers:
        headers = Headers(additional_headers)
        for name in ("Authorization", "Cookie", "Proxy-Authorization"):
            # Headers raise KeyError when deleting an absent name.
            if name in headers:
                del headers[name]
        additional_headers = headers
    return new, additional_headers, location


class ClientConnection(ClientProtocol):
    """websockets' deprecated name of :class:`ClientProtocol`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn("ClientConnection was renamed to ClientProtocol", DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)
